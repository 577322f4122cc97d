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
