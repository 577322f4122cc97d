//! Driving compositor-demo and the test client from tests (on the host or in the guest).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The compositor-demo binary of this workspace, built on demand (same profile and target dir).
pub fn compositor_demo_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| workspace_bin("compositor-demo", "WAYHEAP_COMPOSITOR_DEMO"))
        .clone()
}

/// compositor-demo built with the release profile, for benchmarks (what users run; the debug
/// build measures the compiler's unoptimised code): `$WAYHEAP_COMPOSITOR_DEMO_RELEASE` (set in
/// the guest), else built with cargo.
pub fn compositor_demo_release_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("WAYHEAP_COMPOSITOR_DEMO_RELEASE") {
            return PathBuf::from(p);
        }
        crate::vm::build_release_compositor().expect("building compositor-demo --release")
    })
    .clone()
}

/// The client-demo binary of this workspace, built on demand.
pub fn client_demo_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| workspace_bin("client-demo", "WAYHEAP_CLIENT_DEMO"))
        .clone()
}

/// Binary `name` (of the package of that name): `$env` when set (in the guest the host built it
/// before the boot), else built with cargo like the outer build (`--workspace`, so nothing is
/// rebuilt with other features).
fn workspace_bin(name: &str, env: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(crate::vm::workspace_root())
        .args([
            "build",
            "--workspace",
            "--bins",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("running cargo");
    assert!(
        out.status.success(),
        "building the workspace's binaries failed"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|m| {
            (m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
                .then(|| m["executable"].as_str().map(PathBuf::from))
                .flatten()
        })
        .unwrap_or_else(|| panic!("cargo reported no {name} executable"))
}

/// A private XDG_RUNTIME_DIR for one test.
pub fn runtime_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wayheap-xdg-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("runtime dir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    dir
}

/// A running compositor-demo.
#[derive(Debug)]
pub struct Compositor {
    child: Child,
    /// Its socket name.
    pub socket: String,
    /// XDG_RUNTIME_DIR it and its clients use.
    pub runtime: PathBuf,
    /// Where it writes its state.
    pub state_file: PathBuf,
    /// Where it writes screenshots.
    pub screenshot: PathBuf,
    log: PathBuf,
}

/// compositor-demo's arguments for its headless backend at 320x240, composed by `renderer`;
/// more can follow.
pub fn headless_args(renderer: &str) -> Vec<&str> {
    vec![
        "--backend",
        "headless",
        "--size",
        "320x240",
        "--renderer",
        renderer,
    ]
}

impl Compositor {
    /// Starts compositor-demo with `args` plus socket, state file and screenshot path in a
    /// private runtime dir; waits until the socket exists.
    pub fn start(tag: &str, args: &[&str]) -> Compositor {
        Self::start_with(tag, args, &[])
    }

    /// As [`start`](Self::start), wrapping the command with `wrapper` (e.g. `seatd-launch --`).
    pub fn start_with(tag: &str, args: &[&str], wrapper: &[&str]) -> Compositor {
        Self::start_with_env(tag, args, wrapper, &[])
    }

    /// As [`start_with`](Self::start_with), with `env` set (after WAYLAND_DISPLAY and DISPLAY
    /// are removed), e.g. DISPLAY for the nested backend.
    pub fn start_with_env(
        tag: &str,
        args: &[&str],
        wrapper: &[&str],
        env: &[(&str, &str)],
    ) -> Compositor {
        Self::start_binary(&compositor_demo_bin(), tag, args, wrapper, env)
    }

    /// compositor-demo's headless backend at 320x240, composed by `renderer` (`pixman`, `gles`).
    pub fn start_headless(tag: &str, renderer: &str) -> Compositor {
        Self::start(tag, &headless_args(renderer))
    }

    /// compositor-demo on the guest's vkms card through a libseat session (`seatd-launch`), with
    /// `extra` arguments.
    pub fn start_kms(tag: &str, extra: &[&str]) -> Compositor {
        // Debian 12's seatd-launch uses a fixed socket; one left by a killed run blocks the next.
        let _ = std::fs::remove_file("/run/seatd.sock");
        let mut args = vec!["--backend", "kms", "--device", "/dev/dri/card0"];
        args.extend_from_slice(extra);
        Self::start_with(tag, &args, &["seatd-launch", "--"])
    }

    /// As [`start_with_env`](Self::start_with_env), running `bin` (e.g. the release build of
    /// [`compositor_demo_release_bin`]).
    pub fn start_binary(
        bin: &Path,
        tag: &str,
        args: &[&str],
        wrapper: &[&str],
        env: &[(&str, &str)],
    ) -> Compositor {
        let runtime = runtime_dir(tag);
        let socket = format!("wayheap-{tag}");
        let state_file = runtime.join("state.json");
        let screenshot = runtime.join("screenshot.png");
        let log = runtime.join("compositor.log");
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(args)
            .args(["--socket", &socket])
            .arg("--state-file")
            .arg(&state_file)
            .arg("--screenshot")
            .arg(&screenshot)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("RUST_LOG", "info,compositor_demo=debug,smithay=warn")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DISPLAY")
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(runtime.join("stdout.txt")).expect("stdout file"))
            .stderr(std::fs::File::create(&log).expect("log file"));
        let child = cmd.spawn().expect("starting compositor-demo");
        let c = Compositor {
            child,
            socket,
            runtime,
            state_file,
            screenshot,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !c.runtime.join(&c.socket).exists() {
            assert!(
                Instant::now() < deadline,
                "compositor-demo never opened its socket; log:\n{}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The current state file, once it exists.
    pub fn state(&self) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&self.state_file)
                && let Ok(v) = serde_json::from_str(&text)
            {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no state file; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `pred(state)` holds (at most `timeout`), returning that state.
    pub fn wait_state(
        &self,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.state();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "state never matched; last: {s:#}\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asks for a screenshot (SIGUSR1) and returns it decoded as (width, height, RGBA).
    pub fn screenshot(&self) -> (u32, u32, Vec<u8>) {
        let _ = std::fs::remove_file(&self.screenshot);
        let pid = rustix::process::Pid::from_raw(self.pid() as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::USR1).expect("SIGUSR1");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.screenshot.exists() {
            assert!(
                Instant::now() < deadline,
                "no screenshot; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // In the guest, keep a copy with the results, for a person to look at.
        if let Some(dir) = std::env::var_os(crate::guest::RESULTS_ENV) {
            let _ = std::fs::copy(
                &self.screenshot,
                Path::new(&dir).join(format!("{}.png", self.socket)),
            );
        }
        crate::pattern::read_png(&self.screenshot).expect("reading the screenshot")
    }

    /// Asks every window to close (SIGUSR2: the compositor sends `xdg_toplevel.close`).
    pub fn close_windows(&self) {
        let pid = rustix::process::Pid::from_raw(self.pid() as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::USR2).expect("SIGUSR2");
    }

    /// Asks the compositor to close every window and waits (a minute at most) for `client` to
    /// exit on its own, not by a signal; returns its exit status and all it wrote to stderr.
    pub fn close_and_wait(&self, mut client: Client) -> (std::process::ExitStatus, String) {
        use std::os::unix::process::ExitStatusExt;
        self.close_windows();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = client.child.try_wait().expect("waiting for the client") {
                assert!(
                    status.signal().is_none(),
                    "the client died of a signal: {status}\n{}",
                    client.stderr()
                );
                return client.finish();
            }
            assert!(
                Instant::now() < deadline,
                "the client did not exit within 60 s of xdg_toplevel.close\nits stderr:\n{}\n\
                 log:\n{}",
                client.stderr(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Starts a client of this compositor.
    pub fn client(&self, bin: &Path, args: &[&str]) -> Client {
        Client::spawn(&self.runtime, &self.socket, bin, args)
    }

    /// Starts a client of this compositor with `env` added to its environment.
    pub fn client_with_env(
        &self,
        bin: &Path,
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Client {
        Client::spawn_with_env(&self.runtime, &self.socket, bin, args, env)
    }

    /// Stops the compositor (SIGTERM) and returns its exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        // The compositor itself first: a wrapper (seatd-launch) that gets SIGTERM may exit
        // without it, leaving it holding DRM master.
        let pid = rustix::process::Pid::from_child(&self.child);
        // Only when it is not the child itself: a second SIGTERM during shutdown would kill it.
        let own = self.own_pid().filter(|p| *p != pid.as_raw_nonzero().get());
        if let Some(p) = own.and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
        }
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let status = self.child.wait().expect("waiting for compositor-demo");
        let deadline = Instant::now() + Duration::from_secs(10);
        while own.is_some_and(|p| !exited(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(p) = own
            .filter(|p| !exited(*p))
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
        // Nothing left for Drop to stop.
        let _ = std::fs::remove_file(&self.state_file);
        status
    }

    /// Stops the compositor (SIGTERM) and returns what it printed on stdout.
    pub fn stop_with_stdout(self) -> String {
        let path = self.runtime.join("stdout.txt");
        let _ = self.stop();
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// The compositor's pid (from its state file: a wrapper such as seatd-launch has another).
    pub fn pid(&self) -> u32 {
        self.state()["pid"]
            .as_u64()
            .expect("the state file has the pid") as u32
    }

    /// True while it runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Compositor {
    /// Waits until the compositor reports `n` surfaces whose planes all satisfy `accept`
    /// (`"overlay"`, `"composited"`, ...), and returns their (plane, reason) in creation order
    /// (by protocol id: a client's main surface first).
    pub fn wait_surfaces(
        &self,
        n: usize,
        timeout: Duration,
        accept: impl Fn(&str) -> bool,
    ) -> Vec<(String, Option<String>)> {
        let state = self.wait_state(timeout, |s| {
            s["surfaces"].as_object().is_some_and(|m| {
                m.len() == n && m.values().all(|p| p["plane"].as_str().is_some_and(&accept))
            })
        });
        let mut v: Vec<(u32, String, Option<String>)> = state["surfaces"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, p)| {
                (
                    k.trim_start_matches("wl_surface@")
                        .split('[')
                        .next()
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0),
                    p["plane"].as_str().unwrap_or_default().to_owned(),
                    p["reason"].as_str().map(str::to_owned),
                )
            })
            .collect();
        v.sort_by_key(|(id, _, _)| *id);
        v.into_iter().map(|(_, p, r)| (p, r)).collect()
    }

    /// The compositor process's CPU time so far (utime + stime, clock ticks) and the frames it
    /// had rendered then: read right after the state file shows a new frame count, so the two
    /// belong together.
    pub fn cpu_and_frames(&self) -> (u64, u64) {
        let frames = |s: &serde_json::Value| s["frames"].as_u64().unwrap_or(0);
        let before = frames(&self.state());
        let state = self.wait_state(Duration::from_secs(120), |s| frames(s) != before);
        let pid = state["pid"].as_u64().expect("the state has the pid");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/pid/stat");
        (
            stat_cpu_ticks(&stat).expect("utime and stime"),
            frames(&state),
        )
    }

    fn own_pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.state_file)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["pid"].as_i64())
            .map(|p| p as i32)
    }
}

/// True once `pid` has exited (gone, or a zombie nobody reaped yet: it released everything).
fn exited(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

impl Drop for Compositor {
    fn drop(&mut self) {
        // SIGTERM to the compositor itself (its pid is in the state file; a wrapper such as
        // seatd-launch has another) and to the wrapper; wait until both are gone, so the next
        // compositor finds DRM master free; SIGKILL only if that takes too long.
        let own = self.own_pid();
        let signal = |pid: i32, sig| {
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, sig);
            }
        };
        if let Some(p) = own {
            signal(p, rustix::process::Signal::TERM);
        }
        signal(self.child.id() as i32, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let wrapper_done = matches!(self.child.try_wait(), Ok(Some(_)));
            if wrapper_done && own.is_none_or(exited) {
                return;
            }
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(p) = own {
            signal(p, rustix::process::Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running client with its stdout lines and its stderr.
#[derive(Debug)]
pub struct Client {
    /// The process.
    pub child: Child,
    lines: mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    /// Starts `bin` as a client of the compositor listening on `runtime`/`socket`, its stdout
    /// read line by line.
    pub fn spawn(runtime: &Path, socket: &str, bin: &Path, args: &[&str]) -> Client {
        Self::spawn_with_env(runtime, socket, bin, args, &[])
    }

    /// As [`spawn`](Self::spawn), with `env` added to the client's environment.
    pub fn spawn_with_env(
        runtime: &Path,
        socket: &str,
        bin: &Path,
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Client {
        let mut child = Command::new(bin)
            .args(args)
            .env("XDG_RUNTIME_DIR", runtime)
            .env("WAYLAND_DISPLAY", socket)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let err = child.stderr.take().expect("piped");
        let sink = stderr.clone();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                s.push_str(&line);
                s.push('\n');
            }
        });
        Client {
            child,
            lines: rx,
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    /// Waits for a stdout line starting with `prefix`.
    pub fn wait_line(&self, prefix: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(line) => seen.push(line),
                Err(_) => return Err(format!("no {prefix:?} line; saw {seen:?}")),
            }
        }
    }

    /// Waits for a stdout line for which `wanted` holds.
    pub fn wait_line_where(
        &self,
        wanted: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if wanted(&line) => return Ok(line),
                Ok(line) => seen.push(line),
                Err(_) => return Err(format!("no such line; saw {seen:?}")),
            }
        }
    }

    /// The stdout lines read since the last call (or since start), without waiting.
    pub fn drain_lines(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// What the client wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits for the client to exit; returns the status and its stderr.
    pub fn finish(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().expect("wait");
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        (status, self.stderr())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// utime + stime, in clock ticks, from the text of a `/proc/<pid>/stat` (fields 14 and 15,
/// counted after the parenthesised command name, which may contain spaces).
pub fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // after_comm starts at field 3 (state): utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The flip-floor program (`wayheap-flip-floor`): `$WAYHEAP_FLIP_FLOOR` (set in the guest),
/// else this crate's.
pub fn flip_floor_bin() -> PathBuf {
    std::env::var_os("WAYHEAP_FLIP_FLOOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::vm::workspace_root().join("target/debug/wayheap-flip-floor"))
}

/// The test client binary: `$WAYHEAP_TEST_CLIENT` (set in the guest), else this crate's.
pub fn test_client_bin() -> PathBuf {
    std::env::var_os("WAYHEAP_TEST_CLIENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::vm::workspace_root().join("target/debug/wayheap-test-client"))
}

/// A running Weston (Debian's, a compositor nobody here wrote), headless with the pixman
/// renderer and `--debug` so that `weston-screenshooter` may take screenshots.
#[derive(Debug)]
pub struct Weston {
    child: Child,
    /// Its socket name.
    pub socket: String,
    /// XDG_RUNTIME_DIR it and its clients use.
    pub runtime: PathBuf,
    log: PathBuf,
}

impl Weston {
    /// Starts `weston --backend=headless-backend.so --use-pixman` (640x480, desktop shell: the
    /// kiosk shell shows nothing on the headless backend) in a
    /// private runtime dir and waits for its socket.
    pub fn start_headless(tag: &str) -> Weston {
        let runtime = runtime_dir(tag);
        let socket = format!("weston-{tag}");
        let log = runtime.join("weston.log");
        // No startup fade: desktop-shell keeps the output black until its shell client is up,
        // which under TCG can be after the test has looked.
        let config = runtime.join("weston.ini");
        std::fs::write(
            &config,
            "[shell]\nstartup-animation=none\npanel-position=none\n",
        )
        .expect("weston.ini");
        let child = Command::new("weston")
            .args([
                "--backend=headless-backend.so",
                "--use-pixman",
                "--width=640",
                "--height=480",
                "--shell=desktop-shell.so",
                "--debug",
                "--idle-time=0",
            ])
            .arg(format!("--socket={socket}"))
            .arg(format!("--config={}", config.display()))
            .env("XDG_RUNTIME_DIR", &runtime)
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DISPLAY")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("starting weston (Debian package weston; scripts/install-deps installs it)");
        let w = Weston {
            child,
            socket,
            runtime,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !w.runtime.join(&w.socket).exists() {
            assert!(
                Instant::now() < deadline,
                "weston never opened its socket; log:\n{}",
                w.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        w
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Starts a client of this Weston.
    pub fn client(&self, bin: &Path, args: &[&str]) -> Client {
        Client::spawn(&self.runtime, &self.socket, bin, args)
    }

    /// A screenshot of the output through `weston-screenshooter` (RGBA).
    pub fn screenshot(&self) -> (u32, u32, Vec<u8>) {
        let dir = self.runtime.join("shots");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("shots dir");
        let status = Command::new("weston-screenshooter")
            .current_dir(&dir)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("WAYLAND_DISPLAY", &self.socket)
            .status()
            .expect("running weston-screenshooter");
        assert!(
            status.success(),
            "weston-screenshooter: {status}; log:\n{}",
            self.log()
        );
        let png = std::fs::read_dir(&dir)
            .expect("shots dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "png"))
            .unwrap_or_else(|| panic!("weston-screenshooter wrote no PNG; log:\n{}", self.log()));
        // Kept beside the run's results for a look when a test fails.
        if let Some(results) = std::env::var_os(crate::guest::RESULTS_ENV) {
            let _ = std::fs::copy(
                &png,
                std::path::Path::new(&results).join("weston-screenshot.png"),
            );
            let _ = std::fs::copy(&self.log, std::path::Path::new(&results).join("weston.log"));
        }
        crate::pattern::read_png(&png).expect("reading the screenshot")
    }
}

impl Drop for Weston {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
