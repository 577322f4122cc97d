//! The overlay against a reference picture (tests/data/overlay-reference.png) and hand-checked
//! pixels, and incremental repainting against a full repaint.
//!
//! `WAYHEAP_UPDATE_REFERENCE=1 cargo test -p client-demo --test overlay` rewrites the reference
//! from the current drawing code: look at it before committing it.

use std::path::Path;

use client_demo::detector::{BBox, Face, Point};
use client_demo::overlay::{Painter, Rect, Target, damage, extent};

const WIDTH: u32 = 200;
const HEIGHT: u32 = 150;
/// Rows are padded to show that the stride is honoured and the padding left alone.
const STRIDE: usize = (WIDTH as usize + 8) * 4;
const PADDING_BYTE: u8 = 0x5a;

const GREEN: [u8; 4] = [0, 255, 0, 255]; // B, G, R, A
const RED: [u8; 4] = [0, 0, 255, 255];
const BLACK: [u8; 4] = [0, 0, 0, 255];
const CLEAR: [u8; 4] = [0, 0, 0, 0];

fn face(x0: f32, y0: f32, x1: f32, y1: f32, score: f32) -> Face {
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let (w, h) = (x1 - x0, y1 - y0);
    Face {
        bbox: BBox { x0, y0, x1, y1 },
        score,
        keypoints: [
            Point {
                x: cx - w / 6.0,
                y: cy - h / 6.0,
            },
            Point {
                x: cx + w / 6.0,
                y: cy - h / 6.0,
            },
            Point { x: cx, y: cy },
            Point {
                x: cx,
                y: cy + h / 6.0,
            },
            Point { x: x0 + 2.0, y: cy },
            Point { x: x1 - 2.0, y: cy },
        ],
    }
}

/// The reference scene: a face well inside, and one at the top-right corner whose label has no
/// room above it and is pushed inside the buffer.
fn scene() -> Vec<Face> {
    vec![
        face(40.0, 50.0, 100.0, 120.0, 0.92),
        face(170.0, 4.0, 198.0, 44.0, 0.5),
    ]
}

fn new_buffer() -> Vec<u8> {
    vec![PADDING_BYTE; STRIDE * HEIGHT as usize]
}

fn full() -> Rect {
    Rect {
        x: 0,
        y: 0,
        width: WIDTH as i32,
        height: HEIGHT as i32,
    }
}

/// Paints `faces` into a fresh buffer, all of it.
fn painted(faces: &[Face]) -> Vec<u8> {
    let mut data = new_buffer();
    let mut target = Target::new(&mut data, STRIDE, WIDTH, HEIGHT).expect("valid buffer");
    target.clear();
    Painter::new().paint(&mut target, faces, &[full()]);
    data
}

fn pixel(data: &[u8], x: u32, y: u32) -> [u8; 4] {
    let i = y as usize * STRIDE + x as usize * 4;
    data[i..i + 4].try_into().expect("4 bytes")
}

/// Premultiplied B, G, R, A to straight R, G, B, A rows, as PNG stores them.
fn to_png_rgba(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(WIDTH as usize * HEIGHT as usize * 4);
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let [b, g, r, a] = pixel(data, x, y);
            let straight = |c: u8| {
                if a == 0 {
                    0
                } else {
                    ((c as u32 * 255 + a as u32 / 2) / a as u32).min(255) as u8
                }
            };
            out.extend([straight(r), straight(g), straight(b), a]);
        }
    }
    out
}

fn write_png(path: &Path, rgba: &[u8]) {
    let file = std::fs::File::create(path).expect("create PNG");
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("PNG header");
    writer.write_image_data(rgba).expect("PNG data");
}

fn read_png(path: &Path) -> Vec<u8> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (WAYHEAP_UPDATE_REFERENCE=1 creates it)",
            path.display()
        )
    });
    let mut reader = png::Decoder::new(file).read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG data");
    assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
    assert_eq!(info.color_type, png::ColorType::Rgba);
    buf.truncate(info.buffer_size());
    buf
}

#[test]
fn matches_the_reference_picture() {
    let data = painted(&scene());
    let rgba = to_png_rgba(&data);
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/overlay-reference.png");
    if std::env::var_os("WAYHEAP_UPDATE_REFERENCE").is_some() {
        write_png(&reference, &rgba);
    }
    let expected = read_png(&reference);
    let mut differing = 0;
    for (i, (got, want)) in rgba
        .chunks_exact(4)
        .zip(expected.chunks_exact(4))
        .enumerate()
    {
        // Compare premultiplied, so fully transparent pixels compare equal whatever their colour.
        let pre = |p: &[u8]| {
            p.iter()
                .take(3)
                .map(|&c| c as i32 * p[3] as i32 / 255)
                .collect::<Vec<_>>()
        };
        let close = pre(got)
            .iter()
            .zip(pre(want))
            .all(|(a, b)| (a - b).abs() <= 2)
            && (got[3] as i32 - want[3] as i32).abs() <= 2;
        if !close {
            if differing < 10 {
                let (x, y) = (i as u32 % WIDTH, i as u32 / WIDTH);
                eprintln!("({x},{y}): got RGBA {got:?}, reference {want:?}");
            }
            differing += 1;
        }
    }
    if differing > 0 {
        let actual = Path::new(env!("CARGO_TARGET_TMPDIR")).join("overlay-actual.png");
        write_png(&actual, &rgba);
        panic!(
            "{differing} pixels differ from the reference; this drawing is in {}",
            actual.display()
        );
    }
}

#[test]
fn hand_checked_pixels() {
    let data = painted(&scene());
    // Face 1: box (40,50)-(100,120); the outline is the 3 pixels outside it: x 37..=39 on the left.
    for x in 37..=39 {
        assert_eq!(pixel(&data, x, 90), GREEN, "left edge at x {x}");
    }
    assert_eq!(pixel(&data, 36, 90), CLEAR, "just outside the outline");
    assert_eq!(pixel(&data, 40, 90), CLEAR, "just inside the outline");
    assert_eq!(pixel(&data, 70, 122), GREEN, "bottom edge");
    assert_eq!(pixel(&data, 101, 60), GREEN, "right edge");
    // Inside the box, away from the keypoints: transparent.
    for (x, y) in [(50, 110), (90, 60), (70, 105)] {
        assert_eq!(pixel(&data, x, y), CLEAR, "inside at ({x},{y})");
    }
    // The nose at (70,85): a red dot, opaque in its middle, fading out by 4 pixels away.
    assert_eq!(pixel(&data, 70, 85), RED);
    assert_eq!(pixel(&data, 72, 85), RED);
    assert_eq!(pixel(&data, 75, 85), CLEAR);
    // The label sits on the outline, above it: 40x19 pixels at (37,28), green with black digits.
    assert_eq!(pixel(&data, 37, 28), GREEN, "label corner");
    assert_eq!(pixel(&data, 76, 46), GREEN, "label corner");
    assert_eq!(pixel(&data, 37, 27), CLEAR, "above the label");
    assert_eq!(pixel(&data, 77, 28), CLEAR, "right of the label");
    let text_pixels = (28..47)
        .flat_map(|y| (37..77).map(move |x| (x, y)))
        .filter(|&(x, y)| pixel(&data, x, y) == BLACK)
        .count();
    // "0.92" in a 9x15 bold font: on the order of a hundred pixels, well short of the box.
    assert!(
        (60..300).contains(&text_pixels),
        "{text_pixels} text pixels"
    );
    // Face 2 at the top right: no room above, so its label is at the buffer's top edge and
    // moved left to stay inside: x 160..200.
    assert_eq!(pixel(&data, 160, 0), GREEN);
    assert_eq!(pixel(&data, 199, 18), GREEN);
    // Far from both faces: transparent. Row padding: untouched.
    assert_eq!(pixel(&data, 10, 140), CLEAR);
    for y in 0..HEIGHT as usize {
        let pad = &data[y * STRIDE + WIDTH as usize * 4..(y + 1) * STRIDE];
        assert!(pad.iter().all(|&b| b == PADDING_BYTE), "row {y} padding");
    }
    // Nothing outside the faces' extents.
    let extents: Vec<Rect> = scene()
        .iter()
        .filter_map(|f| extent(f, WIDTH, HEIGHT))
        .collect();
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let inside = extents.iter().any(|r| {
                (r.x..r.x + r.width).contains(&(x as i32))
                    && (r.y..r.y + r.height).contains(&(y as i32))
            });
            if !inside {
                assert_eq!(pixel(&data, x, y), CLEAR, "({x},{y}) outside every extent");
            }
        }
    }
}

#[test]
fn repainting_only_the_damage_equals_a_full_paint() {
    let first = scene();
    // Face 1 moves and changes score, face 2 goes, a new face comes; then nothing changes.
    let second = vec![
        face(48.0, 52.0, 108.0, 122.0, 0.87),
        face(120.0, 90.0, 170.0, 140.0, 0.66),
    ];
    let mut data = painted(&first);
    let mut painter = Painter::new();
    let mut target = Target::new(&mut data, STRIDE, WIDTH, HEIGHT).expect("valid buffer");

    let rects = painter.update(&mut target, &first, &second);
    assert!(!rects.is_empty());
    let area: i32 = rects.iter().map(|r| r.width * r.height).sum();
    assert!(
        area < (WIDTH * HEIGHT) as i32 / 2,
        "damage {rects:?} is most of the buffer"
    );
    for (i, a) in rects.iter().enumerate() {
        for b in &rects[i + 1..] {
            assert_eq!(a.intersection(b), None, "damage rectangles overlap");
        }
    }
    assert_eq!(
        data,
        painted(&second),
        "incremental paint differs from a full paint"
    );

    let mut target = Target::new(&mut data, STRIDE, WIDTH, HEIGHT).expect("valid buffer");
    assert!(painter.update(&mut target, &second, &second).is_empty());
    assert!(damage(&second, &second, WIDTH, HEIGHT).is_empty());
    assert!(painter.update(&mut target, &second, &[]).len() == 2);
    assert_eq!(
        data,
        painted(&[]),
        "all faces gone leaves the buffer transparent"
    );
}
