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
    // Debian 12's seatd-launch uses a fixed socket; one left by a killed run blocks the next.
    let _ = std::fs::remove_file("/run/seatd.sock");
    // The mode is the frame's size: the opaque video fills the output and can be scanned out
    // from the primary plane, the overlay from an overlay plane above it. (vkms planes have no
    // zpos, so two overlapping surfaces can not both be on overlay planes: their order would be
    // unknown.)
    let mode = format!("{W}x{H}");
    Compositor::start_with(
        tag,
        &[
            "--backend",
            "kms",
            "--device",
            "/dev/dri/card0",
            "--mode",
            &mode,
        ],
        SEATD,
    )
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
    // vivid offers NV12, YUYV and XR24; compositor-demo composes (and its planes scan out) the
    // RGB formats only, so the feedback makes it XR24.
    assert_eq!(field(&video, "format"), "XR24", "{video}");
    assert!(field(&video, "format_reason").contains("XR24"), "{video}");
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
            "XR24 {W}x{H} in system-heap buffers; video and overlay on planes {placements:?}; {bars} bar colours by writeback; {stats}"
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

#[test]
fn faces_found_in_the_picture_are_drawn_on_the_overlay_plane_over_the_video() {
    require_guest();
    let comp = kms("client-demo-faces");
    let (client, video) = start(&comp, &["--image", "builtin", "--still"]);
    assert_eq!(field(&video, "provider"), "udmabuf", "{video}");
    let faces = client
        .wait_line("FACES", Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("{e}\nstderr: {}\nlog:\n{}", client.stderr(), comp.log()));
    let b: Vec<f32> = field(&faces, "box")
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    let (x0, y0, x1, y1) = (b[0], b[1], b[2], b[3]);
    // The astronaut's face (about (179,81)-(272,174) in the 512x512 picture) in the 640x480
    // frame: the picture's middle 512x384, scaled by 1.25.
    let expect = (
        (179.0 - 0.0) * 1.25,
        (81.0 - 64.0) * 1.25,
        272.0 * 1.25,
        (174.0 - 64.0) * 1.25,
    );
    for (got, want) in [
        (x0, expect.0),
        (y0, expect.1),
        (x1, expect.2),
        (y1, expect.3),
    ] {
        assert!(
            (got - want).abs() < 20.0,
            "face box {b:?} far from the reference {expect:?}"
        );
    }
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
