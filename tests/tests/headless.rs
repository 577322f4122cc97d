//! compositor-demo's headless backend on the host: a known scene, screenshot, compared with the
//! pixels the scene must have.

use std::time::Duration;

use wayheap_tests::compositor::Compositor;
use wayheap_tests::pattern::{compare_rgba, gradient, quadrants};

const CLIENT: &str = env!("CARGO_BIN_EXE_wayheap-test-client");

#[test]
fn headless_screenshot_matches_the_known_scene() {
    let comp = Compositor::start(
        "headless-scene",
        &["--backend", "headless", "--size", "320x240"],
    );
    let client = comp.client(
        CLIENT.as_ref(),
        &["--seconds", "30", "--sub", "shm:64x48@100,50"],
    );
    client
        .wait_line("READY", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", comp.log()));
    let state = comp.wait_state(Duration::from_secs(10), |s| {
        s["surfaces"].as_object().is_some_and(|m| m.len() == 2)
    });
    for (surface, p) in state["surfaces"].as_object().unwrap() {
        assert_eq!(
            p["plane"], "composited",
            "{surface}: headless has no planes"
        );
    }

    let (w, h, rgba) = comp.screenshot();
    assert_eq!((w, h), (320, 240));
    let expected = |x: u32, y: u32| {
        if (100..164).contains(&x) && (50..98).contains(&y) {
            gradient(x - 100, y - 50)
        } else {
            quadrants(x, y, 320, 240)
        }
    };
    let (wrong, examples) = compare_rgba(&rgba, w, h, 2, expected);
    assert_eq!(wrong, 0, "{wrong} pixels differ: {examples:?}");
    drop(client);
    assert!(comp.stop().success());
}

#[test]
fn help_explains_every_flag() {
    let out = std::process::Command::new(wayheap_tests::compositor::compositor_demo_bin())
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--backend",
        "--run",
        "--screenshot",
        "--state-file",
        "--stats",
        "--no-planes",
        "--device",
        "--size",
        "--contiguous-scanout",
        "--no-heap-hints",
        "--delegated-quota",
        "--delegated-max",
    ] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
}

#[test]
fn nested_is_refused_with_a_clear_message() {
    let out = std::process::Command::new(wayheap_tests::compositor::compositor_demo_bin())
        .args(["--backend", "nested"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("EGL"));
}

#[test]
fn stats_print_a_summary_every_second() {
    let comp = Compositor::start(
        "headless-stats",
        &["--backend", "headless", "--size", "160x120", "--stats"],
    );
    let client = comp.client(CLIENT.as_ref(), &["--seconds", "30"]);
    client
        .wait_line("READY", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", comp.log()));
    std::thread::sleep(Duration::from_millis(2500));
    drop(client);
    let out = comp.stop_with_stdout();
    let line = out
        .lines()
        .find(|l| l.starts_with("[stats]") && l.contains("composited"))
        .unwrap_or_else(|| panic!("no stats line with a placement in:\n{out}"));
    assert!(line.contains("fps"), "{line}");
}

/// client-demo on a machine without DMA-BUF heaps or /dev/udmabuf (this host): the picture and
/// the overlay fall back to wl_shm and say so, the detector finds the astronaut's face, and the
/// composed output shows the green outline around it. (Zero-copy paths are the VM tier's.)
#[test]
fn client_demo_draws_the_detected_face_without_any_dmabuf_device() {
    let comp = Compositor::start(
        "headless-client-demo",
        &["--backend", "headless", "--size", "640x480"],
    );
    let client = comp.client(
        &wayheap_tests::compositor::client_demo_bin(),
        &[
            "--image", "builtin", "--still", "--scale", "native", "--size", "640x480", "--stats",
        ],
    );
    let video = client
        .wait_line("VIDEO", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\nstderr: {}\nlog:\n{}", client.stderr(), comp.log()));
    let faces = client
        .wait_line("FACES", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}\nstderr: {}", client.stderr()));
    let b: Vec<f32> = faces
        .split(" box=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    // The face of the reference (about (179,81)-(272,174) in the 512x512 picture) in the
    // 640x480 frame: the picture's middle 512x384, scaled by 1.25.
    let expect = [224.0, 21.0, 340.0, 137.0];
    for (got, want) in b.iter().zip(expect) {
        assert!((got - want).abs() < 20.0, "{faces}: far from {expect:?}");
    }
    let stats = client
        .wait_line("STATS", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\nstderr: {}", client.stderr()));
    // The overlay is committed after the detection: look until its outline shows.
    let (x, y) = (b[0].round() as u32 - 2, ((b[1] + b[3]) / 2.0) as u32);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let green = loop {
        let (w, _, rgba) = comp.screenshot();
        let at = ((y * w + x) * 4) as usize;
        let px = [rgba[at], rgba[at + 1], rgba[at + 2]];
        if px == client_demo::overlay::BOX_COLOR || std::time::Instant::now() > deadline {
            break px;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(
        green,
        client_demo::overlay::BOX_COLOR,
        "the outline left of the face at ({x},{y})"
    );
    let err = client.stderr();
    assert!(err.contains("wl_shm, which is not zero-copy"), "{err}");
    assert!(video.contains("provider=wl_shm"), "{video}");
    assert!(stats.contains("copies_per_frame=1"), "{stats}");
}

#[test]
fn client_demo_help_and_bad_arguments() {
    let bin = wayheap_tests::compositor::client_demo_bin();
    let out = std::process::Command::new(&bin)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--camera",
        "--image",
        "--format",
        "--scale",
        "--stats",
        "--buffers",
        "--no-detector",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    let out = std::process::Command::new(&bin)
        .args(["--size", "641x480"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("even"));
    // No compositor: a clear error, not a panic.
    let out = std::process::Command::new(&bin)
        .env_remove("WAYLAND_DISPLAY")
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no Wayland compositor"), "{err}");
}
