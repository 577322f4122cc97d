//! Test images whose every pixel is known, shared by the test client and the tests that check
//! what the compositor showed.

/// An ARGB8888 pixel (`0xAARRGGBB`).
pub type Argb = u32;

/// Four opaque quadrants: red, green, blue, white (top-left, top-right, bottom-left,
/// bottom-right) — a shift or a swap of channels cannot pass.
pub fn quadrants(x: u32, y: u32, w: u32, h: u32) -> Argb {
    match (x < w / 2, y < h / 2) {
        (true, true) => 0xffff_0000,
        (false, true) => 0xff00_ff00,
        (true, false) => 0xff00_00ff,
        (false, false) => 0xffff_ffff,
    }
}

/// A different opaque colour for every pixel of a 256x256 tile.
pub fn gradient(x: u32, y: u32) -> Argb {
    0xff00_0000 | ((x & 0xff) << 16) | ((y & 0xff) << 8) | ((x * 7 + y * 13) & 0xff)
}

/// Fills `bytes` (rows of `stride` bytes) with `f(x, y)` as little-endian ARGB8888.
pub fn fill(bytes: &mut [u8], stride: usize, w: u32, h: u32, f: impl Fn(u32, u32) -> Argb) {
    for y in 0..h {
        for x in 0..w {
            let at = y as usize * stride + x as usize * 4;
            bytes[at..at + 4].copy_from_slice(&f(x, y).to_le_bytes());
        }
    }
}

/// Counts the pixels of an RGBA8 image within `tolerance` (per channel) of `colour` (ARGB): how
/// much of a solid-colour frame made it to the screen.
pub fn count_colour(rgba: &[u8], colour: Argb, tolerance: u8) -> usize {
    let want = [(colour >> 16) as u8, (colour >> 8) as u8, colour as u8];
    rgba.chunks_exact(4)
        .filter(|px| px.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= tolerance))
        .count()
}

/// Counts pixels of an RGBA8 image (`width` x `height`) farther than `tolerance` (per channel)
/// from `expected(x, y)` (ARGB), and returns the count with up to 5 examples.
pub fn compare_rgba(
    rgba: &[u8],
    width: u32,
    height: u32,
    tolerance: u8,
    expected: impl Fn(u32, u32) -> Argb,
) -> (usize, Vec<String>) {
    let mut wrong = 0;
    let mut examples = Vec::new();
    for y in 0..height {
        for x in 0..width {
            let at = (y * width + x) as usize * 4;
            let got = [rgba[at], rgba[at + 1], rgba[at + 2]];
            let e = expected(x, y);
            let want = [(e >> 16) as u8, (e >> 8) as u8, e as u8];
            if got.iter().zip(want).any(|(g, w)| g.abs_diff(w) > tolerance) {
                wrong += 1;
                if examples.len() < 5 {
                    examples.push(format!("({x},{y}) got {got:?} want {want:?}"));
                }
            }
        }
    }
    (wrong, examples)
}

/// Decodes an 8-bit RGBA or RGB PNG into (width, height, RGBA8).
pub fn read_png(path: &std::path::Path) -> Result<(u32, u32, Vec<u8>), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    buf.truncate(info.buffer_size());
    match (info.color_type, info.bit_depth) {
        (png::ColorType::Rgba, png::BitDepth::Eight) => Ok((info.width, info.height, buf)),
        // weston-screenshooter writes RGB.
        (png::ColorType::Rgb, png::BitDepth::Eight) => Ok((
            info.width,
            info.height,
            buf.chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 0xff])
                .collect(),
        )),
        (c, d) => Err(format!("expected 8-bit RGBA or RGB, got {c:?} {d:?}")),
    }
}

/// Checks the test client's swapchain mode picture after its 20 frames: a dark 256x192
/// rectangle at (100, 80) of a `w`-pixel-wide RGBA screenshot with only frame 19's square in
/// it. A stale square left by wrong damage or buffer-age handling shows up right beside it
/// (frame 18's square started 16 px to the left).
pub fn check_swapchain_picture(w: u32, rgba: &[u8]) {
    let px = |x: u32, y: u32| {
        let at = ((y * w + x) * 4) as usize;
        [rgba[at], rgba[at + 1], rgba[at + 2]]
    };
    // Frame 19: square at x 112..176, y 64..128 of the buffer; colour (248, 0x80, 7).
    assert_eq!(px(100 + 144, 80 + 96), [248, 0x80, 7], "frame 19's square");
    assert_eq!(
        px(100 + 104, 80 + 96),
        [0x20; 3],
        "frame 18's square was not cleared"
    );
    assert_eq!(px(100 + 180, 80 + 96), [0x20; 3], "right of the square");
    assert_eq!(px(100 + 10, 80 + 10), [0x20; 3], "background");
}

/// Eight colours in a 4x2 grid over a `w` x `h` image (saturated primaries and secondaries,
/// grey and an orange): cells change only on even columns and rows when `w` is a multiple of 8
/// and `h` of 4, so every 2x2 chroma block of a subsampled YUV format is one colour.
pub fn colour_grid(x: u32, y: u32, w: u32, h: u32) -> Argb {
    const COLOURS: [Argb; 8] = [
        0xffff_0000,
        0xff00_ff00,
        0xff00_00ff,
        0xffff_ff00,
        0xff00_ffff,
        0xffff_00ff,
        0xff80_8080,
        0xfff0_a030,
    ];
    let col = (x * 4 / w.max(1)).min(3);
    let row = (y * 2 / h.max(1)).min(1);
    COLOURS[(row * 4 + col) as usize]
}

/// What a YUV rendering of `argb` must look like: the colour through `colour`'s forward matrix
/// (8-bit codes) and back in floating point. Quantisation in limited range moves a channel by
/// up to 2; a converter is then judged against this, not against `argb`.
pub fn through_yuv(colour: wayheap::yuv::Colour, argb: Argb) -> Argb {
    let (y, cb, cr) = colour.from_rgb([(argb >> 16) as u8, (argb >> 8) as u8, argb as u8]);
    let [r, g, b] = colour.to_rgb_reference(y, cb, cr);
    0xff00_0000 | u32::from(r) << 16 | u32::from(g) << 8 | u32::from(b)
}

/// Writes `f(x, y)` (ARGB) as YUV of `layout.format` into `bytes` (one buffer holding every
/// plane at the layout's offsets): [`wayheap::yuv::write_rgb`].
pub fn fill_yuv(
    bytes: &mut [u8],
    layout: &wayheap::layout::Layout,
    colour: wayheap::yuv::Colour,
    f: impl Fn(u32, u32) -> Argb,
) {
    wayheap::yuv::write_rgb(bytes, layout, colour, f).expect("a YUV layout that fits the buffer");
}
