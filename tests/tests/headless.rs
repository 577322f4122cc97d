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
