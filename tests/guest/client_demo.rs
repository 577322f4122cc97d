//! In-guest: client-demo against compositor-demo on vkms (libseat session): the video (vivid
//! camera frames, or the built-in picture) on one plane, the detector's overlay on another, and
//! the writeback pixels showing both.

use std::time::Duration;

use client_demo::overlay::BOX_COLOR;
use client_demo::picture::Picture;
use wayheap_tests::compositor::{Client, Compositor, client_demo_bin};
use wayheap_tests::guest::{record_fact, require_guest, temp_dir, video_node};

const SEATD: &[&str] = &["seatd-launch", "--"];

/// The frame size the tests ask for, and the display mode they set: the opaque video fills the
/// output exactly (primary plane, no scaling).
const W: u32 = 640;
const H: u32 = 480;

fn kms(tag: &str) -> Compositor {
    kms_with(tag, &[])
}

/// The same output, everything composited.
fn kms_no_planes(tag: &str) -> Compositor {
    kms_with(tag, &["--no-planes"])
}

fn kms_with(tag: &str, extra: &[&str]) -> Compositor {
    // Debian 12's seatd-launch uses a fixed socket; one left by a killed run blocks the next.
    let _ = std::fs::remove_file("/run/seatd.sock");
    // The mode is the frame's size: the opaque video fills the output and can be scanned out
    // from the primary plane, the overlay from an overlay plane above it. (vkms planes have no
    // zpos, so two overlapping surfaces can not both be on overlay planes: their order would be
    // unknown.)
    let mode = format!("{W}x{H}");
    let mut args = vec![
        "--backend",
        "kms",
        "--device",
        "/dev/dri/card0",
        "--mode",
        &mode,
    ];
    args.extend_from_slice(extra);
    Compositor::start_with(tag, &args, SEATD)
}

/// A policy that puts ordinary pages first for the camera (the default puts CMA first): a
/// camera that needs contiguous memory then has to be detected, not served by luck.
fn system_first_policy() -> std::path::PathBuf {
    let path = temp_dir("client-demo-policy").join("policy");
    std::fs::write(&path, "camera @system,@cma,udmabuf\n* @system,udmabuf\n").unwrap();
    path
}

/// Starts client-demo with `args` (native size, stats) and returns it with its `VIDEO` line.
fn start(comp: &Compositor, args: &[&str]) -> (Client, String) {
    let size = format!("{W}x{H}");
    let mut all = vec!["--scale", "native", "--size", &size, "--stats"];
    all.extend_from_slice(args);
    let policy = system_first_policy();
    let client = Client::spawn_with_env(
        &comp.runtime,
        &comp.socket,
        &client_demo_bin(),
        &all,
        &[("WAYHEAP_POLICY", policy.as_os_str())],
    );
    let video = client
        .wait_line("VIDEO", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}\nstderr: {}\nlog:\n{}", client.stderr(), comp.log()));
    (client, video)
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line
        .find(&format!(" {key}="))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
        + key.len()
        + 2;
    let rest = &line[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        &quoted[..quoted.find('"').unwrap_or(quoted.len())]
    } else {
        &rest[..rest.find(' ').unwrap_or(rest.len())]
    }
}

/// Waits until the compositor shows the video on the primary plane and the overlay on an
/// overlay plane, and returns their placements (video first).
fn two_planes(comp: &Compositor) -> Vec<(String, Option<String>)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let p = comp.wait_surfaces(2, Duration::from_secs(180), |p| p != "hidden");
        if p[0].0 == "primary" && p[1].0 == "overlay" {
            return p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "video should be on the primary plane, the overlay on an overlay plane: {p:?}\nlog:\n{}",
            comp.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn rgb(rgba: &[u8], w: u32, x: u32, y: u32) -> [u8; 3] {
    let at = ((y * w + x) * 4) as usize;
    [rgba[at], rgba[at + 1], rgba[at + 2]]
}

/// Checks vivid's colour bars across the video.
fn check_vivid_picture(comp: &Compositor) -> usize {
    let (w, h, rgba) = comp.screenshot();
    assert_eq!((w, h), (W, H), "the output is the frame's size");
    // vivid's 75% colour bars fill the frame's width under its text: eight colours across a
    // row in the lower half.
    let row = H * 3 / 4;
    let colours: std::collections::HashSet<[u8; 3]> =
        (0..W).step_by(4).map(|x| rgb(&rgba, w, x, row)).collect();
    assert!(
        colours.len() >= 8,
        "expected vivid's 8 colour bars at row {row}, got {colours:?}\nlog:\n{}",
        comp.log()
    );
    colours.len()
}

#[test]
fn vivid_frames_and_the_overlay_are_each_on_their_own_plane() {
    require_guest();
    let comp = kms("client-demo-vivid");
    let node = video_node("vivid-000-vid-cap");
    let (client, video) = start(&comp, &["--camera", &node]);
    // vivid offers NV12, YUYV and XR24; compositor-demo takes NV12 (on a plane, or converted
    // when composited), so the camera's own format wins: no conversion anywhere.
    assert_eq!(field(&video, "format"), "NV12", "{video}");
    assert!(field(&video, "format_reason").contains("NV12"), "{video}");
    assert_eq!(field(&video, "provider"), "system", "{video}");
    assert!(video.contains("memory=imported"), "{video}");
    let placements = two_planes(&comp);
    assert_eq!(
        placements.len(),
        2,
        "video and overlay surfaces: {placements:?}"
    );
    // A KMS plane shows one framebuffer: two surfaces on planes in one frame are two planes.
    assert!(
        placements
            .iter()
            .all(|(p, _)| p == "overlay" || p == "primary"),
        "{placements:?}"
    );
    let bars = check_vivid_picture(&comp);
    let stats = client
        .wait_line("STATS", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\nstderr: {}", client.stderr()));
    assert!(stats.contains("copies_per_frame=0"), "{stats}");
    record_fact(
        "client-demo vivid",
        format!(
            "NV12 {W}x{H} in system-heap buffers; video and overlay on planes {placements:?}; {bars} bar colours by writeback; {stats}"
        ),
    );
    let zero_copy = wait_zero_copy(&client);
    record_fact("client-demo vivid zero-copy", zero_copy);
}

/// Waits for a `STATS` line with at least one frame presented ZERO_COPY; returns it.
fn wait_zero_copy(client: &Client) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let line = client
            .wait_line(
                "STATS",
                deadline.saturating_duration_since(std::time::Instant::now()),
            )
            .unwrap_or_else(|e| {
                panic!(
                    "no zero-copy presentation: {e}\nstderr: {}",
                    client.stderr()
                )
            });
        let zc = field(&line, "zero_copy");
        let (n, _) = zc.split_once('/').unwrap();
        if n.parse::<u64>().unwrap() > 0 {
            return line;
        }
    }
}

#[test]
fn a_contiguous_camera_gets_cma_buffers_after_refusing_system_pages() {
    require_guest();
    let comp = kms("client-demo-contig");
    // vivid's second instance uses the dma-contig allocator (allocators=0,1).
    let node = video_node("vivid-001-vid-cap");
    let (_client, video) = start(&comp, &["--camera", &node, "--no-detector"]);
    let provider = field(&video, "provider");
    assert!(
        provider == "default_cma_region" || provider == "reserved",
        "the CMA heap should serve a dma-contig camera: {video}"
    );
    let fallback = field(&video, "fallback");
    assert!(
        fallback.contains("physically contiguous") && fallback.contains("system"),
        "{video}"
    );
    let placements = two_planes(&comp);
    let bars = check_vivid_picture(&comp);
    record_fact(
        "client-demo contiguous camera",
        format!("{provider} after: {fallback}; planes {placements:?}; {bars} bar colours"),
    );
}

/// The face box of a `FACES` line, checked against the astronaut's face (about (179,81)-(272,174)
/// in the 512x512 picture; in the 640x480 frame the picture's middle 512x384, scaled by 1.25),
/// within 20 px on every side.
fn face_box(faces: &str) -> [f32; 4] {
    let b: Vec<f32> = field(faces, "box")
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    let expect = [
        179.0 * 1.25,
        (81.0 - 64.0) * 1.25,
        272.0 * 1.25,
        (174.0 - 64.0) * 1.25,
    ];
    assert!(
        b.len() == 4
            && b.iter()
                .zip(expect)
                .all(|(got, want)| (got - want).abs() < 20.0),
        "face box {b:?} far from the reference {expect:?}"
    );
    [b[0], b[1], b[2], b[3]]
}

#[test]
fn faces_found_in_the_picture_are_drawn_on_the_overlay_plane_over_the_video() {
    require_guest();
    let comp = kms("client-demo-faces");
    let (client, video) = start(&comp, &["--image", "builtin", "--still"]);
    assert_eq!(field(&video, "provider"), "udmabuf", "{video}");
    let faces = client
        .wait_line("FACES", Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("{e}\nstderr: {}\nlog:\n{}", client.stderr(), comp.log()));
    let b = face_box(&faces);
    let (x0, y0, x1, y1) = (b[0], b[1], b[2], b[3]);
    let placements = two_planes(&comp);
    // The overlay must have been committed with the face: wait for it to show.
    let (w, h, rgba) = {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let shot = comp.screenshot();
            let x = x0.round() as u32 - 2;
            let y = ((y0 + y1) / 2.0) as u32;
            if rgb(&shot.2, shot.0, x, y) == BOX_COLOR || std::time::Instant::now() > deadline {
                break shot;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    assert_eq!((w, h), (W, H));
    // The outline (3 px just outside the box) on the left, right and bottom edges.
    let mut outline = 0;
    let mut outline_total = 0;
    for y in (y0 as u32 + 8)..(y1 as u32 - 8) {
        for x in [x0.round() as u32 - 2, x1.round() as u32 + 1] {
            outline_total += 1;
            outline += usize::from(rgb(&rgba, w, x, y) == BOX_COLOR);
        }
    }
    for x in (x0 as u32 + 8)..(x1 as u32 - 8) {
        outline_total += 1;
        outline += usize::from(rgb(&rgba, w, x, y1.round() as u32 + 1) == BOX_COLOR);
    }
    assert!(
        outline * 10 >= outline_total * 9,
        "{outline} of {outline_total} outline pixels are the box colour {BOX_COLOR:?}"
    );
    // Away from the face (the overlay is transparent there) the video is the picture as the
    // client drew it, pixel for pixel.
    let picture = Picture::builtin().unwrap();
    let stride = W as usize * 4;
    let mut frame = vec![0u8; stride * H as usize];
    picture.render(0.0, false, &mut frame, stride, W, H);
    let near_face = |x: u32, y: u32| {
        (x as f32) > x0 - 40.0
            && (x as f32) < x1 + 40.0
            && (y as f32) > y0 - 60.0
            && (y as f32) < y1 + 40.0
    };
    let mut compared = 0;
    let mut wrong = Vec::new();
    for y in 0..H {
        for x in 0..W {
            if near_face(x, y) {
                continue;
            }
            let at = (y as usize * stride) + x as usize * 4;
            let want = [frame[at + 2], frame[at + 1], frame[at]];
            let got = rgb(&rgba, w, x, y);
            compared += 1;
            if got.iter().zip(want).any(|(g, w)| g.abs_diff(w) > 1) && wrong.len() < 5 {
                wrong.push(format!("({x},{y}) got {got:?} want {want:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "video pixels differ: {wrong:?}");
    record_fact(
        "client-demo faces",
        format!(
            "{faces}; planes {placements:?}; {outline}/{outline_total} outline pixels green; {compared} video pixels exact"
        ),
    );
}

/// The picture source in NV12, as a camera gives frames: the detector reads the NV12 frame
/// directly and finds the face; the video goes fullscreen on the primary plane in NV12 (the
/// compositor converts nothing) and the rectangles on an overlay.
#[test]
fn faces_are_found_in_nv12_frames_and_the_nv12_video_is_on_the_primary_plane() {
    require_guest();
    let comp = kms("client-demo-faces-nv12");
    let (client, video) = start(
        &comp,
        &["--image", "builtin", "--still", "--format", "NV12"],
    );
    assert_eq!(field(&video, "format"), "NV12", "{video}");
    let faces = client
        .wait_line("FACES", Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("{e}\nstderr: {}\nlog:\n{}", client.stderr(), comp.log()));
    // The same face as in the XR24 picture.
    let b = face_box(&faces);
    let placements = two_planes(&comp);
    record_fact(
        "client-demo NV12 picture",
        format!("{video}; face {b:?}; planes {placements:?}"),
    );
}

/// One 640x480 NV12 frame of vivid's colour bars, captured here and converted by wayheap's
/// converter (BT.601 limited range, what vivid writes for SD): the reference for what the
/// compositor shows. vivid's bars do not move; only its text at the top does.
fn vivid_nv12_reference(node: &str) -> Vec<u32> {
    use wayheap::v4l2::{Camera, Capture, PixelFormat};
    use wayheap::yuv::{Colour, PlaneView, YuvFormat, YuvImage};
    let camera = Camera::open(node).unwrap();
    let format = camera.set_format(PixelFormat::NV12, W, H).unwrap();
    let mut capture = Capture::exported(&camera, 2).unwrap();
    let frame = capture.dequeue(Duration::from_secs(20)).unwrap();
    let buf = capture.buffer(frame.index);
    let map = buf.map_read_only().unwrap();
    let bytes = map.read().unwrap();
    let stride = format.bytesperline as usize;
    let luma_len = stride * H as usize;
    let planes = [
        PlaneView::new(&bytes[..luma_len], stride),
        PlaneView::new(&bytes[luma_len..], stride),
    ];
    let nv12 = YuvFormat::of(wayheap::layout::Fourcc::NV12).unwrap();
    let image = YuvImage::new(nv12, W, H, &planes).unwrap();
    let mut out = vec![0u32; (W * H) as usize];
    image.convert_rows(Colour::default(), 0..H, &mut out, W as usize);
    out
}

/// The rows of vivid's bars (the lower quarter, below its text) compared with the reference:
/// the pixels more than 2 off per channel, and the largest difference.
fn against_reference(comp: &Compositor, reference: &[u32]) -> (usize, u8) {
    let (w, h, rgba) = comp.screenshot();
    assert_eq!((w, h), (W, H));
    let (mut wrong, mut worst) = (0, 0u8);
    for y in H * 3 / 4..H - 8 {
        for x in 0..W {
            let [_, r, g, b] = reference[(y * W + x) as usize].to_be_bytes();
            let got = rgb(&rgba, w, x, y);
            let d = got
                .iter()
                .zip([r, g, b])
                .map(|(a, b)| a.abs_diff(b))
                .max()
                .unwrap_or(0);
            worst = worst.max(d);
            if d > 2 {
                wrong += 1;
            }
        }
    }
    (wrong, worst)
}

/// vivid's NV12 frames on a plane and, with `--no-planes`, converted by wayheap: both match a
/// reference conversion of a frame captured from the same device, within 2 per channel.
#[test]
fn vivid_nv12_on_a_plane_and_converted_match_a_reference_conversion() {
    require_guest();
    let node = video_node("vivid-000-vid-cap");
    let reference = vivid_nv12_reference(&node);
    let mut facts = Vec::new();
    for (tag, planes) in [
        ("client-demo-nv12-plane", true),
        ("client-demo-nv12-composited", false),
    ] {
        let comp = if planes { kms(tag) } else { kms_no_planes(tag) };
        let (client, video) = start(&comp, &["--camera", &node, "--no-detector"]);
        assert_eq!(field(&video, "format"), "NV12", "{video}");
        let placement = if planes {
            two_planes(&comp)[0].0.clone()
        } else {
            comp.wait_surfaces(2, Duration::from_secs(180), |p| p == "composited")[0]
                .0
                .clone()
        };
        let (wrong, worst) = against_reference(&comp, &reference);
        assert_eq!(
            wrong,
            0,
            "{tag}: {wrong} bar pixels more than 2 off the reference (largest {worst})\nlog:\n{}",
            comp.log()
        );
        facts.push(format!("{placement}: max diff {worst}"));
        drop(client);
    }
    record_fact(
        "vivid NV12 against a reference conversion",
        facts.join("; "),
    );
}
