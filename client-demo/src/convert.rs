//! Camera frames to the face detector's input tensor.
//!
//! This module turns one camera frame (NV12, YUYV, XRGB8888 or ARGB8888, read in place, for example
//! through the mmap of a dma-buf) into the [`ModelInput`] the [`detector`](crate::detector) wants:
//! the frame letterboxed into a centred square with black padding, bilinearly resized to
//! [`INPUT_SIZE`]² RGB pixels, each channel scaled to `px / 127.5 - 1` (so black is -1.0 and white
//! is 1.0), stored NHWC `[1, 128, 128, 3]`. It also returns the [`Letterbox`] that maps the
//! detector's normalized coordinates back to frame pixels.
//!
//! No full-size RGB copy of the frame is made: every output pixel samples its four source
//! neighbours directly, so one conversion reads about 64 K source pixels whatever the frame size.
//!
//! # How to use
//!
//! ```
//! use client_demo::convert::{Frame, ModelInput, PixelFormat, Plane};
//!
//! // A 4x2 XRGB8888 frame (bytes B, G, R, X), all pure red.
//! let pixels = [0u8, 0, 255, 0].repeat(8);
//! let planes = [Plane { data: &pixels, stride: 16 }];
//! let frame = Frame { format: PixelFormat::Xrgb8888, width: 4, height: 2, planes: &planes };
//!
//! let mut input = ModelInput::new();
//! let letterbox = input.convert(&frame)?;
//! assert_eq!(input.as_slice().len(), 128 * 128 * 3);
//! // The centre of the model input is frame content, its top row is padding.
//! let centre = (64 * 128 + 64) * 3;
//! assert_eq!(&input.as_slice()[centre..centre + 3], &[1.0, -1.0, -1.0]);
//! assert_eq!(&input.as_slice()[..3], &[-1.0, -1.0, -1.0]);
//! // Model coordinates (0..1 over the square) back to frame pixels.
//! assert_eq!(letterbox.to_frame(0.5, 0.5), (2.0, 1.0));
//! # Ok::<(), client_demo::convert::ConvertError>(())
//! ```
//!
//! # Colour conversion
//!
//! YUV formats are converted with BT.601 limited ("studio") range, the matrix and range V4L2
//! defines as the default for SDTV YUV and the one vivid produces by default: Y in 16..=235,
//! Cb/Cr in 16..=240 centred on 128. Chroma is taken from the 2x2 (NV12) or 2x1 (YUYV) block a
//! pixel belongs to, without interpolation. Each of the four bilinear neighbours is converted to RGB
//! and clamped to 0..=255 before interpolating, exactly as if an RGB image had been materialised
//! (but without rounding it to 8 bits).

use thiserror::Error;

/// Width and height of the square detector input, in pixels.
pub const INPUT_SIZE: usize = 128;

/// Number of `f32` values in one [`ModelInput`]: `INPUT_SIZE * INPUT_SIZE * 3`.
pub const INPUT_LEN: usize = INPUT_SIZE * INPUT_SIZE * 3;

/// Pixel layout of a camera frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// Two planes: 8-bit Y, then interleaved Cb, Cr at half resolution in both directions
    /// (DRM `NV12`, V4L2 `NV12`/`NV12M`).
    Nv12,
    /// One plane of packed 4:2:2, bytes Y0 Cb Y1 Cr per two pixels (DRM `YUYV`, V4L2 `YUYV`).
    Yuyv,
    /// One plane of 32-bit pixels, little-endian `[31:0] x:R:G:B`, so bytes B, G, R, X
    /// (DRM `XRGB8888`, V4L2 `XBGR32`). The X byte is ignored.
    Xrgb8888,
    /// As [`PixelFormat::Xrgb8888`] with alpha in the fourth byte (DRM `ARGB8888`, V4L2
    /// `ABGR32`). Alpha is ignored: the frame is treated as opaque.
    Argb8888,
}

impl PixelFormat {
    /// The number of planes a [`Frame`] of this format carries.
    pub fn plane_count(self) -> usize {
        match self {
            PixelFormat::Nv12 => 2,
            PixelFormat::Yuyv | PixelFormat::Xrgb8888 | PixelFormat::Argb8888 => 1,
        }
    }

    /// Bytes one row of plane `plane` needs at least, for a frame `width` pixels wide.
    fn row_bytes(self, plane: usize, width: usize) -> Option<usize> {
        let pairs = width.div_ceil(2);
        match (self, plane) {
            (PixelFormat::Nv12, 0) => Some(width),
            (PixelFormat::Nv12, _) => pairs.checked_mul(2),
            (PixelFormat::Yuyv, _) => pairs.checked_mul(4),
            (PixelFormat::Xrgb8888 | PixelFormat::Argb8888, _) => width.checked_mul(4),
        }
    }

    /// Rows plane `plane` has, for a frame `height` pixels high.
    fn rows(self, plane: usize, height: usize) -> usize {
        match (self, plane) {
            (PixelFormat::Nv12, 1) => height.div_ceil(2),
            _ => height,
        }
    }
}

/// One plane of a frame: its bytes, starting at the plane's first row, and its row pitch.
#[derive(Debug, Clone, Copy)]
pub struct Plane<'a> {
    /// The plane's bytes. At least `stride * (rows - 1) + row bytes` long.
    pub data: &'a [u8],
    /// Bytes from the start of one row to the start of the next (V4L2 `bytesperline`).
    pub stride: usize,
}

/// A camera frame, borrowed: the planes are read in place and never copied.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Pixel layout of `planes`.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The planes, as many as [`PixelFormat::plane_count`] says, in fourcc order.
    pub planes: &'a [Plane<'a>],
}

/// Why a frame could not be converted. Nothing is written to the [`ModelInput`] then.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConvertError {
    /// Width or height is zero.
    #[error("frame is empty ({width}x{height})")]
    Empty {
        /// Frame width.
        width: u32,
        /// Frame height.
        height: u32,
    },
    /// The frame has the wrong number of planes for its format.
    #[error("{format:?} takes {expected} plane(s), the frame has {got}")]
    PlaneCount {
        /// The frame's format.
        format: PixelFormat,
        /// Planes the format takes.
        expected: usize,
        /// Planes the frame has.
        got: usize,
    },
    /// A plane's stride is smaller than one row of pixels.
    #[error("plane {plane}: stride {stride} is smaller than a row ({row_bytes} bytes)")]
    StrideTooSmall {
        /// Index of the plane.
        plane: usize,
        /// The plane's stride.
        stride: usize,
        /// Bytes one row takes.
        row_bytes: usize,
    },
    /// A plane holds fewer bytes than its rows need.
    #[error("plane {plane}: {len} bytes, {needed} needed for its rows")]
    PlaneTooShort {
        /// Index of the plane.
        plane: usize,
        /// The plane's length.
        len: usize,
        /// Bytes its rows need.
        needed: usize,
    },
    /// Width, height or stride are so large that the plane size overflows `usize`.
    #[error("frame dimensions overflow (plane {plane})")]
    Overflow {
        /// Index of the plane.
        plane: usize,
    },
}

impl Frame<'_> {
    /// Checks that the planes match the format and are long enough for every row.
    pub fn validate(&self) -> Result<(), ConvertError> {
        let (width, height) = (self.width as usize, self.height as usize);
        if width == 0 || height == 0 {
            return Err(ConvertError::Empty {
                width: self.width,
                height: self.height,
            });
        }
        let expected = self.format.plane_count();
        if self.planes.len() != expected {
            return Err(ConvertError::PlaneCount {
                format: self.format,
                expected,
                got: self.planes.len(),
            });
        }
        for (index, plane) in self.planes.iter().enumerate() {
            let row_bytes = self
                .format
                .row_bytes(index, width)
                .ok_or(ConvertError::Overflow { plane: index })?;
            if plane.stride < row_bytes {
                return Err(ConvertError::StrideTooSmall {
                    plane: index,
                    stride: plane.stride,
                    row_bytes,
                });
            }
            let rows = self.format.rows(index, height);
            let needed = plane
                .stride
                .checked_mul(rows - 1)
                .and_then(|n| n.checked_add(row_bytes))
                .ok_or(ConvertError::Overflow { plane: index })?;
            if plane.data.len() < needed {
                return Err(ConvertError::PlaneTooShort {
                    plane: index,
                    len: plane.data.len(),
                    needed,
                });
            }
        }
        Ok(())
    }

    /// RGB (0.0..=255.0 each) of the pixel at `(x, y)`, which must lie inside a validated frame.
    fn rgb(&self, x: usize, y: usize) -> [f32; 3] {
        let p0 = &self.planes[0];
        match self.format {
            PixelFormat::Nv12 => {
                let p1 = &self.planes[1];
                let luma = p0.data[y * p0.stride + x];
                let c = (y / 2) * p1.stride + (x / 2) * 2;
                yuv_to_rgb(luma, p1.data[c], p1.data[c + 1])
            }
            PixelFormat::Yuyv => {
                let pair = y * p0.stride + (x / 2) * 4;
                let luma = p0.data[pair + (x % 2) * 2];
                yuv_to_rgb(luma, p0.data[pair + 1], p0.data[pair + 3])
            }
            PixelFormat::Xrgb8888 | PixelFormat::Argb8888 => {
                let i = y * p0.stride + x * 4;
                let px = &p0.data[i..i + 3];
                [f32::from(px[2]), f32::from(px[1]), f32::from(px[0])]
            }
        }
    }
}

/// BT.601 limited range Y'CbCr to R'G'B' in 0.0..=255.0.
fn yuv_to_rgb(y: u8, cb: u8, cr: u8) -> [f32; 3] {
    // Kr = 0.299, Kb = 0.114; luma spans 219 codes, chroma 224.
    const Y_SCALE: f32 = 255.0 / 219.0;
    const C_SCALE: f32 = 255.0 / 224.0;
    const R_CR: f32 = C_SCALE * 1.402; // 2 (1 - Kr)
    const G_CB: f32 = C_SCALE * 1.772 * 0.114 / 0.587; // 2 (1 - Kb) Kb / Kg
    const G_CR: f32 = C_SCALE * 1.402 * 0.299 / 0.587; // 2 (1 - Kr) Kr / Kg
    const B_CB: f32 = C_SCALE * 1.772; // 2 (1 - Kb)
    let l = Y_SCALE * (f32::from(y) - 16.0);
    let u = f32::from(cb) - 128.0;
    let v = f32::from(cr) - 128.0;
    [
        (l + R_CR * v).clamp(0.0, 255.0),
        (l - G_CB * u - G_CR * v).clamp(0.0, 255.0),
        (l + B_CB * u).clamp(0.0, 255.0),
    ]
}

/// How the frame sits in the detector's square input: the square is `side` frame pixels wide and
/// starts `pad_x`, `pad_y` pixels before the frame's top-left corner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    /// Edge of the square, in frame pixels: the larger of the frame's width and height.
    pub side: f32,
    /// Padding left of the frame, in frame pixels (0 for frames at least as wide as high).
    pub pad_x: f32,
    /// Padding above the frame, in frame pixels (0 for frames at least as high as wide).
    pub pad_y: f32,
}

impl Letterbox {
    /// The letterbox of a `width` x `height` frame: padding split evenly (the odd pixel, if any,
    /// goes after the frame).
    pub fn for_frame(width: u32, height: u32) -> Letterbox {
        let side = width.max(height);
        Letterbox {
            side: side as f32,
            pad_x: ((side - width) / 2) as f32,
            pad_y: ((side - height) / 2) as f32,
        }
    }

    /// Maps a point in normalized model coordinates (0.0..=1.0 across the square input, the unit
    /// the detector works in) to frame pixel coordinates (0.0 at the frame's left/top edge).
    pub fn to_frame(&self, u: f32, v: f32) -> (f32, f32) {
        (u * self.side - self.pad_x, v * self.side - self.pad_y)
    }
}

/// The detector input: `INPUT_SIZE` x `INPUT_SIZE` RGB pixels, NHWC `[1, 128, 128, 3]`, values
/// `px / 127.5 - 1`. Keep one and [`convert`](ModelInput::convert) every frame into it, so
/// nothing is allocated per frame.
#[derive(Debug, Clone)]
pub struct ModelInput {
    data: Vec<f32>,
}

impl Default for ModelInput {
    fn default() -> Self {
        Self::new()
    }
}

/// One bilinear tap along an axis of the output: the two source rows/columns in frame
/// coordinates (`None` where they fall in the padding) and the weight of the second.
#[derive(Debug, Clone, Copy)]
struct Tap {
    lo: Option<usize>,
    hi: Option<usize>,
    frac: f32,
}

/// Bilinear taps for the `INPUT_SIZE` outputs along one axis: half-pixel centres, the padded
/// square's edge clamped (as OpenCV's `INTER_LINEAR` does), padding outside `0..len`.
fn taps(side: u32, pad: f32, len: u32) -> [Tap; INPUT_SIZE] {
    let scale = side as f32 / INPUT_SIZE as f32;
    let last = (side - 1) as f32;
    let to_frame = |square: f32| {
        let frame = square - pad;
        (frame >= 0.0 && frame < len as f32).then_some(frame as usize)
    };
    std::array::from_fn(|i| {
        let src = ((i as f32 + 0.5) * scale - 0.5).clamp(0.0, last);
        let lo = src.floor();
        let hi = (lo + 1.0).min(last);
        Tap {
            lo: to_frame(lo),
            hi: to_frame(hi),
            frac: src - lo,
        }
    })
}

impl ModelInput {
    /// A model input of all -1.0 (black).
    pub fn new() -> ModelInput {
        ModelInput {
            data: vec![-1.0; INPUT_LEN],
        }
    }

    /// The `INPUT_LEN` values, NHWC.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// Converts `frame` into this input (letterbox, bilinear resize, RGB, `px / 127.5 - 1`) and
    /// returns the letterbox that maps detections back to the frame. On error the input is left
    /// unchanged.
    pub fn convert(&mut self, frame: &Frame<'_>) -> Result<Letterbox, ConvertError> {
        frame.validate()?;
        let letterbox = Letterbox::for_frame(frame.width, frame.height);
        let side = frame.width.max(frame.height);
        let xs = taps(side, letterbox.pad_x, frame.width);
        let ys = taps(side, letterbox.pad_y, frame.height);
        let sample = |x: Option<usize>, y: Option<usize>| match (x, y) {
            (Some(x), Some(y)) => frame.rgb(x, y),
            _ => [0.0; 3],
        };
        for (ty, row) in ys.iter().zip(self.data.chunks_exact_mut(INPUT_SIZE * 3)) {
            for (tx, out) in xs.iter().zip(row.chunks_exact_mut(3)) {
                let a = sample(tx.lo, ty.lo);
                let b = sample(tx.hi, ty.lo);
                let c = sample(tx.lo, ty.hi);
                let d = sample(tx.hi, ty.hi);
                for ch in 0..3 {
                    let top = a[ch] + (b[ch] - a[ch]) * tx.frac;
                    let bottom = c[ch] + (d[ch] - c[ch]) * tx.frac;
                    let px = top + (bottom - top) * ty.frac;
                    out[ch] = px / 127.5 - 1.0;
                }
            }
        }
        Ok(letterbox)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f32 = 1e-3;

    fn assert_rgb(input: &ModelInput, x: usize, y: usize, expected: [f32; 3], eps: f32) {
        let i = (y * INPUT_SIZE + x) * 3;
        let got = &input.as_slice()[i..i + 3];
        for ch in 0..3 {
            assert!(
                (got[ch] - expected[ch]).abs() <= eps,
                "pixel ({x},{y}): got {got:?}, expected {expected:?}"
            );
        }
    }

    fn convert(frame: &Frame<'_>) -> (ModelInput, Letterbox) {
        let mut input = ModelInput::new();
        let letterbox = input.convert(frame).expect("valid frame");
        (input, letterbox)
    }

    /// A square `size`² frame of one YUV colour in `format` (NV12 or YUYV) with padded strides.
    fn solid_yuv(format: PixelFormat, size: usize, y: u8, u: u8, v: u8) -> (Vec<u8>, Vec<u8>) {
        match format {
            PixelFormat::Nv12 => {
                let stride = size + 4;
                let luma = vec![y; stride * size];
                let chroma = [u, v].repeat(stride / 2 * size / 2);
                (luma, chroma)
            }
            PixelFormat::Yuyv => {
                let stride = size * 2 + 8;
                let row: Vec<u8> = [y, u, y, v].repeat(stride / 4);
                (row.repeat(size), Vec::new())
            }
            _ => unreachable!("YUV formats only"),
        }
    }

    fn check_solid_yuv(y: u8, u: u8, v: u8, expected: [f32; 3]) {
        for format in [PixelFormat::Nv12, PixelFormat::Yuyv] {
            let size = 16;
            let (p0, p1) = solid_yuv(format, size, y, u, v);
            let planes_nv12 = [
                Plane {
                    data: &p0,
                    stride: size + 4,
                },
                Plane {
                    data: &p1,
                    stride: size + 4,
                },
            ];
            let planes_yuyv = [Plane {
                data: &p0,
                stride: size * 2 + 8,
            }];
            let planes: &[Plane] = match format {
                PixelFormat::Nv12 => &planes_nv12,
                _ => &planes_yuyv,
            };
            let frame = Frame {
                format,
                width: size as u32,
                height: size as u32,
                planes,
            };
            let (input, _) = convert(&frame);
            for (x, y) in [(0, 0), (64, 64), (127, 127), (3, 100)] {
                assert_rgb(&input, x, y, expected, EPS);
            }
        }
    }

    #[test]
    fn yuv_white_and_black_are_limited_range() {
        // Y 235 is white, Y 16 black, Cb = Cr = 128 no colour.
        check_solid_yuv(235, 128, 128, [1.0, 1.0, 1.0]);
        check_solid_yuv(16, 128, 128, [-1.0, -1.0, -1.0]);
        // Below 16 clamps to black rather than going negative.
        check_solid_yuv(0, 128, 128, [-1.0, -1.0, -1.0]);
    }

    #[test]
    fn yuv_primaries_bt601() {
        // BT.601 limited-range red: Y 81, Cb 90, Cr 240.
        // R = 255/219*65 + 255/224*1.402*112 = 75.685 + 178.755 = 254.440 -> 0.99561
        // G = 75.685 + 0.39176*38 - 0.81297*112 = -0.48 -> clamped 0 -> -1
        // B = 75.685 - 2.01723*38 = -0.97 -> clamped 0 -> -1
        check_solid_yuv(81, 90, 240, [0.99561, -1.0, -1.0]);
        // Green: Y 145, Cb 54, Cr 34.
        // R = 150.205 - 1.59603*94 = 0.179 -> 0.179/127.5-1 = -0.99860
        // G = 150.205 + 0.39176*74 + 0.81297*94 = 255.6 -> clamped 255 -> 1
        // B = 150.205 - 2.01723*74 = 0.930 -> -0.99270
        check_solid_yuv(145, 54, 34, [-0.99860, 1.0, -0.99270]);
        // Blue: Y 41, Cb 240, Cr 110.
        // R = 29.110 - 1.59603*18 = 0.381 -> -0.99701
        // G = 29.110 - 0.39176*112 + 0.81297*18 = -0.146 -> 0 -> -1
        // B = 29.110 + 2.01723*112 = 255.04 -> 255 -> 1
        check_solid_yuv(41, 240, 110, [-0.99701, -1.0, 1.0]);
    }

    #[test]
    fn xrgb_and_argb_byte_order() {
        // Bytes B, G, R, X: (10, 20, 200, 99) is R 200, G 20, B 10 whatever the 4th byte.
        let px = [10u8, 20, 200, 99].repeat(8 * 8);
        let expected = [200.0 / 127.5 - 1.0, 20.0 / 127.5 - 1.0, 10.0 / 127.5 - 1.0];
        for format in [PixelFormat::Xrgb8888, PixelFormat::Argb8888] {
            let planes = [Plane {
                data: &px,
                stride: 32,
            }];
            let frame = Frame {
                format,
                width: 8,
                height: 8,
                planes: &planes,
            };
            let (input, letterbox) = convert(&frame);
            assert_eq!(
                letterbox,
                Letterbox {
                    side: 8.0,
                    pad_x: 0.0,
                    pad_y: 0.0
                }
            );
            for (x, y) in [(0, 0), (64, 64), (127, 0), (0, 127)] {
                assert_rgb(&input, x, y, expected, EPS);
            }
        }
    }

    #[test]
    fn letterbox_pads_with_black() {
        // 256x128 white XRGB frame: square side 256, 64 rows of padding above and below,
        // which is 32 output rows each.
        let (w, h) = (256, 128);
        let px = vec![255u8; w * h * 4];
        let planes = [Plane {
            data: &px,
            stride: w * 4,
        }];
        let frame = Frame {
            format: PixelFormat::Xrgb8888,
            width: 256,
            height: 128,
            planes: &planes,
        };
        let (input, letterbox) = convert(&frame);
        assert_eq!(
            letterbox,
            Letterbox {
                side: 256.0,
                pad_x: 0.0,
                pad_y: 64.0
            }
        );
        for x in [0, 50, 127] {
            for y in (0..32).chain(96..128) {
                assert_rgb(&input, x, y, [-1.0; 3], 0.0);
            }
            for y in 32..96 {
                assert_rgb(&input, x, y, [1.0; 3], 0.0);
            }
        }
        // Back to the frame: the square's centre is the frame's centre, its top-left corner is
        // 64 rows above the frame.
        assert_eq!(letterbox.to_frame(0.5, 0.5), (128.0, 64.0));
        assert_eq!(letterbox.to_frame(0.0, 0.0), (0.0, -64.0));
        assert_eq!(letterbox.to_frame(1.0, 1.0), (256.0, 192.0));

        // Tall frame: padding left and right.
        let px = vec![255u8; 2 * 6 * 4];
        let planes = [Plane {
            data: &px,
            stride: 8,
        }];
        let frame = Frame {
            format: PixelFormat::Xrgb8888,
            width: 2,
            height: 6,
            planes: &planes,
        };
        let (_, letterbox) = convert(&frame);
        assert_eq!(
            letterbox,
            Letterbox {
                side: 6.0,
                pad_x: 2.0,
                pad_y: 0.0
            }
        );
    }

    #[test]
    fn two_by_two_pattern_upscales_bilinearly() {
        // 2x2 frame: top-left red, top-right green, bottom-left blue, bottom-right white.
        // Output pixel i samples source x = (i + 0.5) / 64 - 0.5, clamped to 0..=1.
        #[rustfmt::skip]
        let px = [
            0, 0, 255, 0,   0, 255, 0, 0,
            255, 0, 0, 0,   255, 255, 255, 0,
        ];
        let planes = [Plane {
            data: &px,
            stride: 8,
        }];
        let frame = Frame {
            format: PixelFormat::Xrgb8888,
            width: 2,
            height: 2,
            planes: &planes,
        };
        let (input, _) = convert(&frame);
        // Corners are the pure source pixels (clamped edge).
        assert_rgb(&input, 0, 0, [1.0, -1.0, -1.0], EPS);
        assert_rgb(&input, 127, 0, [-1.0, 1.0, -1.0], EPS);
        assert_rgb(&input, 0, 127, [-1.0, -1.0, 1.0], EPS);
        assert_rgb(&input, 127, 127, [1.0, 1.0, 1.0], EPS);
        // Output (64, 64): source (0.5078, 0.5078): weight of the second column/row 0.5078.
        // R = 255 * ((1-f)^2 + f^2) = 255 * 0.500122 -> 0.000244
        // G = 255 * f = 129.49 -> 0.01562; B = 255 * f = 129.49 -> 0.01562
        let f: f32 = 64.5 / 64.0 - 0.5;
        let r = 255.0 * ((1.0 - f) * (1.0 - f) + f * f);
        let gb = 255.0 * f;
        assert_rgb(
            &input,
            64,
            64,
            [r / 127.5 - 1.0, gb / 127.5 - 1.0, gb / 127.5 - 1.0],
            EPS,
        );
        assert_rgb(&input, 64, 64, [0.000244, 0.01562, 0.01562], EPS);
        // Top row, middle: between red and green only.
        assert_rgb(
            &input,
            64,
            0,
            [(1.0 - f) * 2.0 - 1.0, f * 2.0 - 1.0, -1.0],
            EPS,
        );
    }

    #[test]
    fn nv12_chroma_is_per_2x2_block() {
        // 4x2 NV12: left block Cb/Cr of red, right block of blue.
        let luma = [81, 81, 41, 41, 81, 81, 41, 41];
        let chroma = [90, 240, 240, 110];
        let planes = [
            Plane {
                data: &luma,
                stride: 4,
            },
            Plane {
                data: &chroma,
                stride: 4,
            },
        ];
        let frame = Frame {
            format: PixelFormat::Nv12,
            width: 4,
            height: 2,
            planes: &planes,
        };
        let (input, letterbox) = convert(&frame);
        assert_eq!(
            letterbox,
            Letterbox {
                side: 4.0,
                pad_x: 0.0,
                pad_y: 1.0
            }
        );
        // Output row 64 samples square rows 1 and 2 (frame rows 0 and 1); column 0 is clamped to
        // source column 0, column 127 to source column 3.
        assert_rgb(&input, 0, 64, [0.99561, -1.0, -1.0], EPS);
        assert_rgb(&input, 127, 64, [-0.99701, -1.0, 1.0], EPS);
    }

    #[test]
    fn bad_frames_are_errors() {
        let data = [0u8; 64];
        let one = [Plane {
            data: &data,
            stride: 16,
        }];
        let frame = |format, width, height, planes| Frame {
            format,
            width,
            height,
            planes,
        };
        let mut input = ModelInput::new();
        assert_eq!(
            input.convert(&frame(PixelFormat::Xrgb8888, 0, 4, &one)),
            Err(ConvertError::Empty {
                width: 0,
                height: 4
            })
        );
        assert_eq!(
            input.convert(&frame(PixelFormat::Nv12, 4, 4, &one)),
            Err(ConvertError::PlaneCount {
                format: PixelFormat::Nv12,
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            input.convert(&frame(PixelFormat::Xrgb8888, 5, 2, &one)),
            Err(ConvertError::StrideTooSmall {
                plane: 0,
                stride: 16,
                row_bytes: 20
            })
        );
        assert_eq!(
            input.convert(&frame(PixelFormat::Xrgb8888, 4, 5, &one)),
            Err(ConvertError::PlaneTooShort {
                plane: 0,
                len: 64,
                needed: 80
            })
        );
        // YUYV of odd width still needs whole 4-byte pairs.
        let short = [Plane {
            data: &data,
            stride: 11,
        }];
        assert_eq!(
            input.convert(&frame(PixelFormat::Yuyv, 5, 2, &short)),
            Err(ConvertError::StrideTooSmall {
                plane: 0,
                stride: 11,
                row_bytes: 12
            })
        );
        // NV12's chroma plane has half the rows, rounded up.
        let nv12 = [
            Plane {
                data: &data,
                stride: 8,
            },
            Plane {
                data: &data[..23],
                stride: 8,
            },
        ];
        assert_eq!(
            input.convert(&frame(PixelFormat::Nv12, 8, 5, &nv12)),
            Err(ConvertError::PlaneTooShort {
                plane: 1,
                len: 23,
                needed: 24
            })
        );
        let huge = [Plane {
            data: &data,
            stride: usize::MAX,
        }];
        assert_eq!(
            input.convert(&frame(PixelFormat::Xrgb8888, 4, 3, &huge)),
            Err(ConvertError::Overflow { plane: 0 })
        );
        // Nothing was written.
        assert!(input.as_slice().iter().all(|&v| v == -1.0));
    }
}
