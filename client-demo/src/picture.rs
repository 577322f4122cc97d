//! The picture source (`--image`): a still picture (PNG; the astronaut from scikit-image's data is built in),
//! slowly panned and zoomed so the faces in it move, rendered frame by frame straight into the
//! video buffers (application memory exported through udmabuf, or heap memory) as XRGB8888.

use std::path::Path;

/// A decoded picture, XRGB8888 pixels.
#[derive(Debug)]
pub struct Picture {
    width: u32,
    height: u32,
    pixels: Vec<u32>,
}

/// The built-in picture: NASA's portrait of astronaut Eileen Collins (public domain), as shipped
/// in scikit-image's data (see tests/data/PROVENANCE.md).
const ASTRONAUT: &[u8] = include_bytes!("../tests/data/astronaut.png");

impl Picture {
    /// The built-in picture.
    pub fn builtin() -> Result<Picture, String> {
        Self::decode_png(ASTRONAUT).map_err(|e| format!("the built-in picture: {e}"))
    }

    /// Loads a PNG file.
    pub fn load(path: &Path) -> Result<Picture, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::decode_png(&bytes)
            .map_err(|e| format!("{}: {e} (only PNG pictures are supported)", path.display()))
    }

    fn decode_png(bytes: &[u8]) -> Result<Picture, String> {
        let mut decoder = png::Decoder::new(bytes);
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
        let channels = match info.color_type {
            png::ColorType::Rgba => 4,
            png::ColorType::Rgb => 3,
            png::ColorType::GrayscaleAlpha => 2,
            png::ColorType::Grayscale => 1,
            other => return Err(format!("unsupported PNG colour type {other:?}")),
        };
        let pixels = buf[..info.buffer_size()]
            .chunks_exact(channels)
            .map(|p| {
                let (r, g, b) = if channels >= 3 {
                    (p[0], p[1], p[2])
                } else {
                    (p[0], p[0], p[0])
                };
                0xff00_0000 | u32::from(r) << 16 | u32::from(g) << 8 | u32::from(b)
            })
            .collect();
        if info.width == 0 || info.height == 0 {
            return Err("the picture is empty".into());
        }
        Ok(Picture {
            width: info.width,
            height: info.height,
            pixels,
        })
    }

    /// Renders the picture as seen at `t` seconds into an XRGB8888 frame of `width` x `height`
    /// with `stride` bytes per row: a window of the frame's aspect ratio, zoomed between 1x
    /// and 1.25x and drifting around the centre (`moving = false`: the whole picture, still).
    pub fn render(
        &self,
        t: f32,
        moving: bool,
        frame: &mut [u8],
        stride: usize,
        width: u32,
        height: u32,
    ) {
        let (sw, sh) = (self.width as f32, self.height as f32);
        let aspect = height as f32 / width as f32;
        // The largest window of the frame's aspect that fits, then zoomed in.
        let (mut ww, mut wh) = if sw * aspect <= sh {
            (sw, sw * aspect)
        } else {
            (sh / aspect, sh)
        };
        let (mut cx, mut cy) = (sw / 2.0, sh / 2.0);
        if moving {
            let zoom = 1.0 + 0.125 * (1.0 - (t * 0.4).cos());
            ww /= zoom;
            wh /= zoom;
            cx += (sw - ww) / 2.0 * 0.8 * (t * 0.23).sin();
            cy += (sh - wh) / 2.0 * 0.8 * (t * 0.31).sin();
        }
        let (x0, y0) = (cx - ww / 2.0, cy - wh / 2.0);
        let (sx, sy) = (ww / width as f32, wh / height as f32);
        for y in 0..height as usize {
            let row = &mut frame[y * stride..y * stride + width as usize * 4];
            let src_y = (y0 + (y as f32 + 0.5) * sy) as i64;
            for (x, px) in row.chunks_exact_mut(4).enumerate() {
                let src_x = (x0 + (x as f32 + 0.5) * sx) as i64;
                let v = if (0..self.width as i64).contains(&src_x)
                    && (0..self.height as i64).contains(&src_y)
                {
                    self.pixels[src_y as usize * self.width as usize + src_x as usize]
                } else {
                    0xff00_0000
                };
                px.copy_from_slice(&v.to_le_bytes());
            }
        }
    }
}
