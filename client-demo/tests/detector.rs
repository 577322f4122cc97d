//! BlazeFace through tract on a real photo: scikit-image's astronaut (see tests/data/PROVENANCE.md),
//! converted from XRGB8888 as a camera frame would be.

use std::time::Instant;

use client_demo::convert::{Frame, ModelInput, PixelFormat, Plane};
use client_demo::detector::{Detector, Keypoint};

/// The test image as XRGB8888 bytes (B, G, R, X), with its width and height.
fn astronaut_xrgb() -> (Vec<u8>, u32, u32) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/astronaut.png");
    let file = std::fs::File::open(path).expect("open astronaut.png");
    let mut reader = png::Decoder::new(file).read_info().expect("PNG header");
    let mut rgb = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut rgb).expect("PNG data");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let xrgb = rgb[..info.buffer_size()]
        .chunks_exact(3)
        .flat_map(|p| [p[2], p[1], p[0], 0xff])
        .collect();
    (xrgb, info.width, info.height)
}

#[test]
fn finds_the_astronauts_face() {
    let (xrgb, width, height) = astronaut_xrgb();
    let planes = [Plane {
        data: &xrgb,
        stride: width as usize * 4,
    }];
    let frame = Frame {
        format: PixelFormat::Xrgb8888,
        width,
        height,
        planes: &planes,
    };

    let start = Instant::now();
    let detector = Detector::new().expect("model loads");
    eprintln!(
        "Detector::new: {:.0} ms",
        start.elapsed().as_secs_f64() * 1e3
    );

    let mut input = ModelInput::new();
    let mut faces = Vec::new();
    for run in 0..3 {
        let start = Instant::now();
        let letterbox = input.convert(&frame).expect("valid frame");
        let converted = start.elapsed();
        faces = detector.detect(&input, &letterbox).expect("detect");
        eprintln!(
            "run {run}: convert {:.1} ms, detect {:.1} ms",
            converted.as_secs_f64() * 1e3,
            (start.elapsed() - converted).as_secs_f64() * 1e3
        );
    }

    eprintln!("faces: {faces:#?}");
    assert_eq!(faces.len(), 1, "exactly one face: {faces:?}");
    let face = &faces[0];
    let close = |got: f32, want: f32| (got - want).abs() <= 4.0;
    let b = face.bbox;
    assert!(
        close(b.x0, 179.0) && close(b.y0, 81.0) && close(b.x1, 272.0) && close(b.y1, 174.0),
        "box {b:?}, expected about (179,81)-(272,174)"
    );
    assert!((face.score - 0.92).abs() < 0.03, "score {}", face.score);
    // The keypoints lie in the box, eyes above the nose above the mouth, the person's right
    // eye on the image's left.
    for p in face.keypoints {
        assert!(
            p.x > b.x0 - 10.0 && p.x < b.x1 + 10.0 && p.y > b.y0 && p.y < b.y1,
            "{p:?}"
        );
    }
    let (re, le) = (
        face.keypoint(Keypoint::RightEye),
        face.keypoint(Keypoint::LeftEye),
    );
    let (nose, mouth) = (
        face.keypoint(Keypoint::Nose),
        face.keypoint(Keypoint::Mouth),
    );
    assert!(re.x < le.x, "right eye {re:?} left of left eye {le:?}");
    assert!(
        re.y.max(le.y) < nose.y && nose.y < mouth.y,
        "eyes, nose, mouth top to bottom"
    );
}

#[test]
fn no_face_in_a_flat_frame() {
    let xrgb = [128u8, 128, 128, 255].repeat(64 * 48);
    let planes = [Plane {
        data: &xrgb,
        stride: 64 * 4,
    }];
    let frame = Frame {
        format: PixelFormat::Argb8888,
        width: 64,
        height: 48,
        planes: &planes,
    };
    let detector = Detector::new().expect("model loads");
    let mut input = ModelInput::new();
    let letterbox = input.convert(&frame).expect("valid frame");
    let faces = detector.detect(&input, &letterbox).expect("detect");
    assert!(faces.is_empty(), "{faces:?}");
}
