//! compositor-demo on the host: the headless backend with each renderer (pixman, GLES on
//! llvmpipe) and the nested backend in a virtual X server, each showing a known scene whose
//! screenshot is compared with the pixels the scene must have.

use std::time::Duration;

use wayheap_tests::compositor::Compositor;
use wayheap_tests::pattern::{compare_rgba, gradient, quadrants};
use wayheap_tests::xvfb::Xvfb;

const CLIENT: &str = env!("CARGO_BIN_EXE_wayheap-test-client");

/// The known scene on a `w` x `h` output: quadrants, and the gradient subsurface at 100,50.
fn scene(x: u32, y: u32, w: u32, h: u32) -> u32 {
    if (100..164).contains(&x) && (50..98).contains(&y) {
        gradient(x - 100, y - 50)
    } else {
        quadrants(x, y, w, h)
    }
}

/// Shows the test client's known scene (quadrants, a gradient subsurface at 100,50) on a
/// 320x240 output and checks every pixel of the screenshot; returns the state file and the
/// client (the scene stays up while it lives).
fn known_scene(comp: &Compositor) -> (serde_json::Value, wayheap_tests::compositor::Client) {
    let client = comp.client(
        CLIENT.as_ref(),
        &["--seconds", "30", "--sub", "shm:64x48@100,50"],
    );
    client
        .wait_line("READY", Duration::from_secs(60))
        .unwrap_or_else(|e| {
            panic!(
                "{e}\nclient stderr:\n{}\nlog:\n{}",
                client.stderr(),
                comp.log()
            )
        });
    let state = comp.wait_state(Duration::from_secs(10), |s| {
        s["surfaces"].as_object().is_some_and(|m| m.len() == 2)
    });
    for (surface, p) in state["surfaces"].as_object().unwrap() {
        assert_eq!(
            p["plane"], "composited",
            "{surface}: this backend has no planes"
        );
    }

    let (w, h, rgba) = comp.screenshot();
    assert_eq!((w, h), (320, 240));
    let (wrong, examples) = compare_rgba(&rgba, w, h, 2, |x, y| scene(x, y, 320, 240));
    assert_eq!(wrong, 0, "{wrong} pixels differ: {examples:?}");
    (state, client)
}

#[test]
fn headless_pixman_screenshot_matches_the_known_scene() {
    let comp = Compositor::start_headless("headless-scene", "pixman");
    let (state, _client) = known_scene(&comp);
    assert_eq!(state["renderer"]["name"], "pixman", "{state}");
    assert!(comp.stop().success());
}

/// GLES on EGL's surfaceless platform: on this host (no GPU, no /dev/dri) that is Mesa's
/// llvmpipe, which scripts/install-deps installs.
#[test]
fn headless_gles_screenshot_matches_the_known_scene() {
    let comp = Compositor::start_headless("headless-gles", "gles");
    let (state, _client) = known_scene(&comp);
    assert_eq!(state["renderer"]["name"], "gles", "{state}");
    let detail = state["renderer"]["detail"].as_str().unwrap_or_default();
    assert!(!detail.is_empty() && detail != "unknown", "{state}");
    assert!(comp.stop().success());
}

/// With no EGL driver to be found (glvnd pointed at no vendor), `auto` composes with pixman and
/// says why, and `--renderer gles` fails with that reason instead of panicking.
#[test]
fn without_an_egl_driver_auto_falls_back_to_pixman_and_gles_fails_clearly() {
    let no_vendor = [(
        "__EGL_VENDOR_LIBRARY_FILENAMES",
        "/nonexistent/egl-vendor.json",
    )];
    let comp = Compositor::start_with_env(
        "headless-no-egl",
        &["--backend", "headless", "--size", "320x240"],
        &[],
        &no_vendor,
    );
    let (state, _client) = known_scene(&comp);
    assert_eq!(state["renderer"]["name"], "pixman", "{state}");
    let why = state["renderer"]["why"].as_str().unwrap_or_default();
    assert!(
        why.contains("EGL"),
        "the fallback names its reason: {state}"
    );
    assert!(comp.stop().success());

    let out = std::process::Command::new(wayheap_tests::compositor::compositor_demo_bin())
        .args(["--backend", "headless", "--renderer", "gles"])
        .env("__EGL_VENDOR_LIBRARY_FILENAMES", no_vendor[0].1)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--renderer gles") && err.contains("EGL") && !err.contains("panicked"),
        "{err}"
    );
}

/// Inside an X11 session (a virtual X server here), `--backend auto` opens a window and draws
/// into it with GLES; the screenshot, read from the window's own buffer, shows the scene.
#[test]
fn inside_an_x11_session_auto_is_nested_and_the_window_shows_the_known_scene() {
    let x = Xvfb::start();
    let comp = Compositor::start_with_env(
        "nested-x11",
        &["--backend", "auto", "--size", "320x240"],
        &[],
        &[("DISPLAY", &x.display)],
    );
    let (state, _client) = known_scene(&comp);
    assert_eq!(state["backend"], "nested", "{state}");
    assert_eq!(state["window_system"], "x11", "{state}");
    assert_eq!(state["renderer"]["name"], "gles", "{state}");
    // And what the X server shows in the window, read by xwd, is the same scene.
    let (w, h, rgba) = x
        .window_rgba("compositor-demo (wayheap)")
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", comp.log()));
    assert_eq!((w, h), (320, 240), "the window has the --size asked for");
    let (wrong, examples) = compare_rgba(&rgba, w, h, 2, |x, y| scene(x, y, 320, 240));
    assert_eq!(
        wrong, 0,
        "on the X screen, {wrong} pixels differ: {examples:?}"
    );
    let log = comp.log();
    assert!(comp.stop().success(), "log:\n{log}");
}

/// The nested window's pointer and keyboard are the seat's: the X server's pointer moved into
/// the window and clicked there (xdotool, from Debian) reaches the client under it as motion and
/// a BTN_LEFT press and release, at the window's coordinates, and a typed key as its evdev code.
#[test]
fn the_nested_windows_pointer_and_keyboard_reach_the_client_under_it() {
    let x = Xvfb::start();
    let comp = Compositor::start_with_env(
        "nested-pointer",
        &["--backend", "nested", "--size", "320x240"],
        &[],
        &[("DISPLAY", &x.display)],
    );
    let client = comp.client(
        CLIENT.as_ref(),
        &["--seconds", "30", "--pointer", "--keyboard"],
    );
    client
        .wait_line("READY", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", comp.log()));
    comp.wait_state(Duration::from_secs(10), |s| {
        s["surfaces"].as_object().is_some_and(|m| m.len() == 1)
    });
    x.xdotool(&["mousemove", "57", "61", "click", "1"]);
    let at = client
        .wait_line("POINTER-MOTION 57,61", Duration::from_secs(20))
        .or_else(|_| client.wait_line("POINTER-ENTER 57,61", Duration::from_secs(1)))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", comp.log()));
    let press = client
        .wait_line("POINTER-BUTTON", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e} (after {at})\nlog:\n{}", comp.log()));
    assert!(
        press.contains("272") && press.contains("Pressed"),
        "{press}"
    );
    let release = client
        .wait_line("POINTER-BUTTON", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        release.contains("272") && release.contains("Released"),
        "{release}"
    );

    // And its keyboard: with the X focus on the window (there is no window manager to give
    // it), keys typed on the X server reach the client as evdev codes ('a' is KEY_A, 30).
    x.xdotool(&[
        "search",
        "--name",
        "compositor-demo",
        "windowfocus",
        "--sync",
        "key",
        "a",
    ]);
    let key = client
        .wait_line("KEY ", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", comp.log()));
    assert!(
        key.starts_with("KEY 30 ") && key.contains("Pressed"),
        "{key}"
    );
    assert!(comp.stop().success());
}

/// Inside a Wayland session — a second compositor-demo, headless — `--backend auto` opens an
/// xdg toplevel there and draws into it with GLES (Mesa on wl_shm: this host has no GPU). The
/// outer compositor makes the window fullscreen at 400x300, not the 320x240 asked for: the
/// nested output follows the resize, its fullscreen client is reconfigured to 400x300, and the
/// outer compositor's screenshot must be the scene at that size.
#[test]
fn inside_a_wayland_session_auto_is_nested_follows_resizes_and_the_outer_compositor_shows_the_scene()
 {
    let outer = Compositor::start(
        "nested-outer",
        &[
            "--backend",
            "headless",
            "--size",
            "400x300",
            "--renderer",
            "pixman",
        ],
    );
    let host_socket = outer.runtime.join(&outer.socket);
    let inner = Compositor::start_with_env(
        "nested-wayland",
        &["--backend", "auto", "--size", "320x240"],
        &[],
        &[("WAYLAND_DISPLAY", host_socket.to_str().unwrap())],
    );
    let client = inner.client(
        CLIENT.as_ref(),
        &["--seconds", "30", "--sub", "shm:64x48@100,50"],
    );
    client
        .wait_line("READY", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", inner.log()));
    let state = inner.wait_state(Duration::from_secs(20), |s| {
        s["output"] == serde_json::json!([400, 300])
            && s["surfaces"].as_object().is_some_and(|m| m.len() == 2)
    });
    assert_eq!(state["backend"], "nested", "{state}");
    assert_eq!(state["window_system"], "wayland", "{state}");
    assert_eq!(state["renderer"]["name"], "gles", "{state}");
    // The outer compositor has one surface, the inner compositor's window, and shows the scene
    // at the size it gave the window.
    let outer_state = outer.wait_state(Duration::from_secs(20), |s| {
        s["surfaces"].as_object().is_some_and(|m| m.len() == 1)
    });
    let expected = |x: u32, y: u32| scene(x, y, 400, 300);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (wrong, examples) = loop {
        let (w, h, rgba) = outer.screenshot();
        assert_eq!((w, h), (400, 300));
        let r = compare_rgba(&rgba, w, h, 2, expected);
        if r.0 == 0 || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        wrong,
        0,
        "the outer compositor shows {wrong} wrong pixels: {examples:?}\nouter: {outer_state}\ninner log:\n{}",
        inner.log()
    );
    // The nested compositor's own screenshot (read from its window buffer) agrees.
    let (w, h, rgba) = inner.screenshot();
    assert_eq!((w, h), (400, 300));
    let (wrong, examples) = compare_rgba(&rgba, w, h, 2, expected);
    assert_eq!(wrong, 0, "nested screenshot: {examples:?}");
    drop(client);
    let log = inner.log();
    assert!(inner.stop().success(), "log:\n{log}");
    assert!(outer.stop().success());
}

/// Without libEGL at all (hidden in a private mount namespace: /dev/null bound over it), no
/// path reaches Smithay's EGL loader, which would panic: `auto` composes with pixman and names
/// the packages to install, and `--renderer gles` and `--backend nested` fail with that message.
#[test]
fn without_libegl_nothing_panics_and_the_message_names_the_packages() {
    let lib = std::fs::canonicalize("/usr/lib/x86_64-linux-gnu/libEGL.so.1")
        .expect("libEGL.so.1 (scripts/install-deps installs libegl1)");
    let hide = format!("mount --bind /dev/null {} && exec \"$@\"", lib.display());
    let wrapper = ["unshare", "--mount", "sh", "-c", hide.as_str(), "sh"];
    let comp = Compositor::start_with_env(
        "headless-no-libegl",
        &["--backend", "headless", "--size", "320x240"],
        &wrapper,
        &[],
    );
    let (state, _client) = known_scene(&comp);
    assert_eq!(state["renderer"]["name"], "pixman", "{state}");
    let why = state["renderer"]["why"].as_str().unwrap_or_default();
    assert!(
        why.contains("libEGL.so.1 could not be loaded") && why.contains("libegl1"),
        "{state}"
    );
    let log = comp.log();
    assert!(comp.stop().success(), "{log}");

    for args in [
        &["--backend", "headless", "--renderer", "gles"][..],
        &["--backend", "nested"][..],
    ] {
        let out = std::process::Command::new(wrapper[0])
            .args(&wrapper[1..])
            .arg(wayheap_tests::compositor::compositor_demo_bin())
            .args(args)
            .env("DISPLAY", ":0")
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("libEGL.so.1 could not be loaded") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}

/// `auto` with a DISPLAY that leads nowhere (a stale variable, a dead ssh forwarding): the
/// window cannot open, which is logged, and the compositor runs headless instead of failing.
#[test]
fn auto_with_a_dead_display_falls_back_to_headless() {
    let comp = Compositor::start_with_env(
        "auto-dead-display",
        &["--backend", "auto", "--size", "320x240"],
        &[],
        &[("DISPLAY", ":987")],
    );
    let (state, _client) = known_scene(&comp);
    assert_eq!(state["backend"], "headless", "{state}");
    assert!(
        comp.log().contains("trying the next backend"),
        "{}",
        comp.log()
    );
    assert!(comp.stop().success());
}

#[test]
fn nested_without_a_desktop_session_or_with_pixman_is_refused_clearly() {
    let bin = wayheap_tests::compositor::compositor_demo_bin();
    let out = std::process::Command::new(&bin)
        .args(["--backend", "nested"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("DISPLAY") && !err.contains("panicked"),
        "{err}"
    );

    let out = std::process::Command::new(&bin)
        .args(["--backend", "nested", "--renderer", "pixman"])
        .env("DISPLAY", ":0")
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("GLES"), "{err}");
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
        "--renderer",
        "--mode",
    ] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
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

#[test]
fn a_kiosk_starts_its_application_again_whenever_it_exits() {
    // The application shows itself for 2 s and exits; the kiosk brings it back each time.
    let run = format!("{CLIENT} --seconds 2");
    let mut args = wayheap_tests::compositor::headless_args("pixman");
    args.extend(["--kiosk", "--run", &run]);
    let mut comp = Compositor::start("kiosk", &args);
    let state = comp.wait_state(Duration::from_secs(120), |s| {
        s["run_restarts"].as_u64().is_some_and(|n| n >= 2)
            && s["surfaces"].as_object().is_some_and(|m| !m.is_empty())
    });
    assert!(comp.alive(), "the kiosk ended with its application");
    let connections = comp.log().matches("client connected").count() as u64;
    assert!(
        connections > state["run_restarts"].as_u64().unwrap(),
        "each start connects ({connections} connections)"
    );
}

/// Waits until `client` printed a line starting with each of `prefixes` (in any order: events
/// of different objects); returns those lines in the order of `prefixes`.
fn lines_starting(
    client: &wayheap_tests::compositor::Client,
    comp: &Compositor,
    prefixes: &[&str],
) -> Vec<String> {
    let mut found: Vec<Option<String>> = vec![None; prefixes.len()];
    while found.iter().any(Option::is_none) {
        let line = client
            .wait_line_where(
                |l| prefixes.iter().any(|p| l.starts_with(p)),
                Duration::from_secs(60),
            )
            .unwrap_or_else(|e| {
                panic!(
                    "waiting for {prefixes:?} (found {found:?}): {e}\nstderr: {}\nlog:\n{}",
                    client.stderr(),
                    comp.log()
                )
            });
        if let Some(i) = prefixes.iter().position(|p| line.starts_with(p)) {
            found[i].get_or_insert(line);
        }
    }
    found.into_iter().flatten().collect()
}

/// What GTK and Qt ask of any compositor beyond showing buffers: xdg-decoration (a kiosk
/// decorates nothing and says server-side, even to a client that asked for client-side),
/// fractional scale (1: 120/120), and xdg-activation (a window that lost the keyboard to a new
/// one asks with a token and gets it back).
#[test]
fn decoration_fractional_scale_and_activation_answer_as_a_kiosk_should() {
    let comp = Compositor::start_headless("desktop-protocols", "pixman");
    let first = comp.client(
        CLIENT.as_ref(),
        &[
            "--seconds",
            "60",
            "--decoration",
            "--fractional-scale",
            "--activate-when-unfocused",
        ],
    );
    let seen = lines_starting(
        &first,
        &comp,
        &["DECORATION", "FRACTIONAL-SCALE", "KEYBOARD-ENTER", "READY"],
    );
    assert_eq!(seen[0], "DECORATION ServerSide", "the decoration mode");
    assert_eq!(seen[1], "FRACTIONAL-SCALE 120", "scale 1 in 120ths");
    // A second window takes the keyboard; the first asks for it back with a token, and gets it.
    let second = comp.client(CLIENT.as_ref(), &["--seconds", "60", "--keyboard"]);
    lines_starting(&second, &comp, &["KEYBOARD-ENTER"]);
    lines_starting(&first, &comp, &["KEYBOARD-LEAVE"]);
    lines_starting(&first, &comp, &["ACTIVATE"]);
    lines_starting(&first, &comp, &["KEYBOARD-ENTER"]);
    // The proof it was the activation (not the second window leaving): the second, still
    // there, lost the keyboard.
    lines_starting(&second, &comp, &["KEYBOARD-LEAVE"]);
    let mut second = second;
    assert!(
        second.child.try_wait().expect("try_wait").is_none(),
        "the second window's client left"
    );
    assert!(comp.stop().success());
}

/// The seat's keyboard is configured the way libxkbcommon's users expect: XKB_DEFAULT_LAYOUT
/// (and its siblings) in the compositor's environment choose the keymap clients get.
#[test]
fn the_keymap_follows_the_xkb_environment() {
    for (layout, expect) in [("us", "English (US)"), ("de", "German")] {
        let env = [("XKB_DEFAULT_LAYOUT", layout)];
        let args = wayheap_tests::compositor::headless_args("pixman");
        let comp = Compositor::start_with_env("keymap", &args, &[], &env);
        let client = comp.client(CLIENT.as_ref(), &["--seconds", "30", "--keyboard"]);
        let keymap = lines_starting(&client, &comp, &["KEYMAP"]).remove(0);
        assert!(
            keymap.contains(expect),
            "XKB_DEFAULT_LAYOUT={layout}: the keymap's layout should be {expect:?}: {keymap}"
        );
        assert!(comp.stop().success());
    }
}

/// A client asking for activation tokens in a loop does not grow the compositor: at most 16
/// live tokens a client are kept (Smithay keeps every token until the compositor drops it).
#[test]
fn activation_tokens_are_bounded_per_client() {
    let comp = Compositor::start_headless("activation-tokens", "pixman");
    let client = comp.client(CLIENT.as_ref(), &["--seconds", "30", "--tokens", "1000"]);
    lines_starting(&client, &comp, &["TOKENS"]);
    // Once the window shows, the state has seen the tokens.
    let state = comp.wait_state(Duration::from_secs(30), |s| {
        s["activation_tokens"].as_u64().is_some_and(|n| n > 0)
            && s["surfaces"].as_object().is_some_and(|m| !m.is_empty())
    });
    assert_eq!(state["activation_tokens"], 16, "{state}");
    assert!(comp.stop().success());
}
