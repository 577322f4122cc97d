//! `scripts/demo` as a newcomer runs it: as root without a login session there is no
//! XDG_RUNTIME_DIR. The demo makes a private one (0700), the compositor comes up in it, a client
//! connects and is drawn (the demo says how long after the command its first frame came), and
//! the directory is gone when the demo is stopped.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use client_demo::overlay::{BOX_COLOR, KEYPOINT_COLOR};

#[test]
fn the_demo_starts_without_xdg_runtime_dir_and_cleans_up() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut demo = Command::new(root.join("scripts/demo"))
        .arg("--scene")
        .current_dir(&root)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DISPLAY")
        // The debug build the tests already made: a cold release build would add minutes.
        .env("WAYHEAP_DEMO_PROFILE", "dev")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("running scripts/demo");
    let (tx, rx) = mpsc::channel();
    for pipe in [
        Box::new(demo.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(demo.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    // Only the reader threads hold senders now: when the demo exits, the channel disconnects
    // and the test fails at once instead of waiting out the deadline.
    drop(tx);
    let deadline = Instant::now() + Duration::from_secs(15 * 60);
    let mut seen = Vec::new();
    let mut runtime = None;
    let mut connected = false;
    let mut first_frame = None;
    while runtime.is_none() || !connected || first_frame.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("the demo never came up ({e}):\n{}", seen.join("\n")));
        if let Some(rest) = line.strip_prefix("demo: no XDG_RUNTIME_DIR: using ") {
            runtime = rest.split_whitespace().next().map(PathBuf::from);
        }
        connected |= line.contains("client connected");
        if line.contains("first client frame") && line.contains("after the demo command") {
            first_frame = Some(line.clone());
        }
        seen.push(line);
    }
    let runtime = runtime.unwrap();
    let mode = std::fs::metadata(&runtime)
        .expect("the private runtime directory")
        .permissions();
    assert_eq!(mode.mode() & 0o777, 0o700, "{}", runtime.display());
    // The client is drawn: the headless demo writes the output picture every second.
    let shot = runtime.join("wayheap-demo/output.png");
    let shown = Instant::now() + Duration::from_secs(120);
    while !shot.exists() {
        assert!(Instant::now() < shown, "no {} written", shot.display());
        std::thread::sleep(Duration::from_millis(200));
    }
    // Ctrl-C, as a user stops it: SIGINT to the demo's process group.
    let group = rustix::process::Pid::from_raw(demo.id() as i32).unwrap();
    rustix::process::kill_process_group(group, rustix::process::Signal::INT).unwrap();
    let status = demo.wait().unwrap();
    assert!(
        !runtime.exists(),
        "{} left behind ({status})",
        runtime.display()
    );
    eprintln!("{}", first_frame.unwrap());
}

/// `scripts/demo --vm` as a newcomer without heaps or a DRM card runs it: the test kernel under
/// qemu, compositor-demo on vkms, client-demo on the vivid camera. It runs for a fixed time,
/// prints the placements every second, writes the writeback picture on the host, and ends
/// cleanly. The camera sees the astronaut's portrait (played into vivid's HDMI loop): the
/// picture is hers, on the primary plane, with the detector's box around her face on an overlay
/// plane.
#[test]
fn the_vm_demo_shows_the_camera_on_a_plane_and_writes_the_picture_here() {
    if std::env::var_os(wayheap_tests::vm::SKIP_ENV).is_some_and(|v| v == "1") {
        eprintln!(
            "\n##  scripts/demo --vm SKIPPED ({}=1): no kernel here to boot.\n",
            wayheap_tests::vm::SKIP_ENV
        );
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(root.join("scripts/demo"))
        .args(["--vm", "--seconds", "90"])
        .current_dir(&root)
        .env("WAYHEAP_DEMO_PROFILE", "dev")
        .stdin(Stdio::null())
        .output()
        .expect("running scripts/demo --vm");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let said = || {
        format!(
            "stdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    };
    assert!(
        out.status.success(),
        "scripts/demo --vm: {}\n{}",
        out.status,
        said()
    );
    // Once a second: the placements; the first frame's time after the command.
    let stats: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("[stats]"))
        .collect();
    assert!(
        stats
            .iter()
            .any(|l| l.contains("primary") && l.contains("overlay")),
        "no stats line with the video on the primary plane and the overlay on an overlay plane\n{}",
        said()
    );
    let first = stdout
        .lines()
        .find(|l| l.contains("first client frame") && l.contains("after the demo command"))
        .unwrap_or_else(|| panic!("no first-frame time\n{}", said()));
    let png = stdout
        .lines()
        .find_map(|l| l.strip_prefix("demo: the output is written to "))
        .and_then(|l| l.split(" once a second").next())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no output path\n{}", said()));
    let (w, h, rgba) = wayheap_tests::pattern::read_png(&png).expect("the demo's picture");
    assert_eq!((w, h), (640, 480), "the 640x480 mode");
    let at = |x: u32, y: u32| {
        let i = ((y * w + x) * 4) as usize;
        [rgba[i], rgba[i + 1], rgba[i + 2]]
    };
    let near = |a: [u8; 3], b: [u8; 3], by: u8| a.iter().zip(b).all(|(p, q)| p.abs_diff(q) <= by);
    // The camera's pixels: the astronaut, 480x480 between black bars, as played into vivid's
    // HDMI output. Compared with the portrait scaled here (nearest pixel; GStreamer scales
    // bilinearly, and NV12 halves the chroma: edges differ, the rest is close).
    let (pw, ph, portrait) =
        wayheap_tests::pattern::read_png(&root.join(wayheap_tests::vm::DEMO_PICTURE)).unwrap();
    let reference = |x: u32, y: u32| {
        let (sx, sy) = ((x - 80) * pw / 480, y * ph / 480);
        let i = ((sy * pw + sx) * 4) as usize;
        [portrait[i], portrait[i + 1], portrait[i + 2]]
    };
    let (mut close, mut picture, mut black, mut bars) = (0, 0, 0, 0);
    for y in 0..h {
        for x in 0..w {
            if (80..560).contains(&x) {
                picture += 1;
                close += u32::from(near(at(x, y), reference(x, y), 32));
            } else {
                bars += 1;
                black += u32::from(near(at(x, y), [0, 0, 0], 20));
            }
        }
    }
    assert!(
        close * 10 >= picture * 8 && black * 100 >= bars * 99,
        "the camera should show the astronaut between black bars: {close}/{picture} pixels \
         close to the portrait, {black}/{bars} black at the sides ({})",
        png.display()
    );
    // The overlay's pixels: the detector's box around her face (about (179,81)-(272,174) in the
    // 512x512 portrait: x 248..335, y 76..163 here), green, with red keypoints inside.
    let (mut outline, mut keypoints) = (0, 0);
    for y in 50..200 {
        for x in 220..370 {
            outline += u32::from(near(at(x, y), BOX_COLOR, 24));
            keypoints += u32::from(near(at(x, y), KEYPOINT_COLOR, 24));
        }
    }
    assert!(
        outline >= 300 && keypoints >= 6,
        "the detector's box should be drawn around the face: {outline} green outline pixels, \
         {keypoints} red keypoint pixels ({})",
        png.display()
    );
    eprintln!(
        "{first}; {}; camera: {close}/{picture} pixels close to the portrait, {black}/{bars} \
         black; overlay: {outline} outline and {keypoints} keypoint pixels; {}",
        stats.last().unwrap(),
        png.display()
    );
}
