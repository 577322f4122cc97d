//! The host side of the real-kernel tier.
//!
//! One boot runs a whole batch: the host's root is shared read-only over virtio-9p, the guest puts
//! a tmpfs overlay on it and chroots in, so the host's test binaries run unchanged at the same
//! paths. A second, writable 9p share mounted over the run directory (at the same path inside)
//! carries the run script in and the outputs and exit statuses out.
//!
//! Kernel command line: `cma=128M` (the CMA heap), `vkms.enable_overlay=1` (overlay planes), and
//! two vivid instances, the second with `allocators=1` (dma-contig: a camera that needs contiguous
//! memory).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::libtest::{self, TestResult};

/// Set to `1` to skip the VM tier (prints a SKIPPED banner; the tier's tests do not run).
pub const SKIP_ENV: &str = "WAYHEAP_SKIP_VM";
/// A bzImage to use instead of building one with `scripts/vm-kernel`.
pub const KERNEL_ENV: &str = "WAYHEAP_KERNEL";
/// The same for the matrix's 5.10 kernel (`scripts/vm-kernel --series 5.10`).
pub const KERNEL_510_ENV: &str = "WAYHEAP_KERNEL_5_10";

/// The kernels of the test matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelSeries {
    /// Debian's current linux-source (7.3 today): heaps, udmabuf, vkms with overlays, vivid.
    Current,
    /// Debian bullseye's 5.10, the BSP era: ION, no sync_file export, vkms without overlays.
    Bsp510,
}

impl KernelSeries {
    /// The name `scripts/vm-kernel --series` takes, and the tier prints.
    pub fn name(self) -> &'static str {
        match self {
            KernelSeries::Current => "current",
            KernelSeries::Bsp510 => "5.10",
        }
    }

    fn override_env(self) -> &'static str {
        match self {
            KernelSeries::Current => KERNEL_ENV,
            KernelSeries::Bsp510 => KERNEL_510_ENV,
        }
    }
}
/// Seconds before a guest that has not powered off is killed (default 1800: the current kernel's
/// whole run takes about 900 s on 2 cores).
pub const TIMEOUT_ENV: &str = "WAYHEAP_VM_TIMEOUT";
/// Set to `1` to echo the guest's console while it runs.
pub const VERBOSE_ENV: &str = "WAYHEAP_VM_VERBOSE";

/// The kernel command line every boot uses (besides console and the results path).
pub const KERNEL_ARGS: &str =
    "cma=128M vkms.enable_overlay=1 vivid.n_devs=2 vivid.allocators=0,1 panic=-1 oops=panic";

const INIT: &str = include_str!("../vm/init.sh");

/// The picture the VM demo's camera sees by default (the astronaut client-demo ships), under
/// [`workspace_root`].
pub const DEMO_PICTURE: &str = "client-demo/tests/data/astronaut.png";

/// The workspace root (where `scripts/` lives).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A test kernel of the matrix: `$WAYHEAP_KERNEL` (`$WAYHEAP_KERNEL_5_10`), else built or found
/// in the cache by `scripts/vm-kernel --series`.
pub fn kernel(series: KernelSeries) -> Result<PathBuf, String> {
    let env = series.override_env();
    if let Some(k) = std::env::var_os(env) {
        let k = PathBuf::from(k);
        return if k.is_file() {
            Ok(k)
        } else {
            Err(format!("{env}={} is not a file", k.display()))
        };
    }
    let script = workspace_root().join("scripts/vm-kernel");
    let out = Command::new(&script)
        .args(["--series", series.name()])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}); see its messages above. scripts/install-deps installs what it needs",
            script.display(),
            out.status
        ));
    }
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Ok(PathBuf::from(path))
}

/// A test binary to run in the guest.
#[derive(Debug, Clone)]
pub struct GuestBinary {
    /// The test target's name, e.g. `guest_devices`.
    pub name: String,
    /// The executable on the host (and, thanks to the root share, in the guest).
    pub path: PathBuf,
}

/// Builds the `guest_*` test targets of this crate (feature `guest`) and returns their binaries.
///
/// Runs cargo again from inside `cargo test`: the outer cargo has released its build lock by the
/// time tests run, and the same profile and target directory keep the build incremental.
pub fn build_guest_tests() -> Result<Vec<GuestBinary>, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        // `--workspace`, as the outer `cargo test --workspace`: the same feature unification, so
        // nothing the outer build made (smithay, tract) is built again with other features.
        .args([
            "test",
            "--workspace",
            "--features",
            "wayheap-tests/guest",
            "--no-run",
        ])
        .args([
            "--test",
            "guest_*",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("building the guest tests failed ({})", out.status));
    }
    let mut bins = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let (Some(name), Some(exe)) = (msg["target"]["name"].as_str(), msg["executable"].as_str())
        else {
            continue;
        };
        if name.starts_with("guest_") {
            bins.push(GuestBinary {
                name: name.to_owned(),
                path: PathBuf::from(exe),
            });
        }
    }
    bins.sort_by(|a, b| a.name.cmp(&b.name));
    if bins.is_empty() {
        return Err("cargo built no guest_* test binary".into());
    }
    Ok(bins)
}

/// Builds the programs the guest tests drive (compositor-demo, client-demo, the test client) and returns the
/// environment that tells the guest tests where they are.
pub fn build_guest_programs() -> Result<Vec<(String, PathBuf)>, String> {
    // Every binary of the workspace (the demos, the test clients), unified as the outer build.
    let mut env = Vec::new();
    for (name, exe) in cargo_build_bins(&["--workspace"])? {
        let name = name.as_str();
        let var = match name {
            "compositor-demo" => "WAYHEAP_COMPOSITOR_DEMO",
            "wayheap-test-client" => "WAYHEAP_TEST_CLIENT",
            "client-demo" => "WAYHEAP_CLIENT_DEMO",
            "wayheap-hints-client" => "WAYHEAP_HINTS_CLIENT",
            "wayheap-flip-floor" => "WAYHEAP_FLIP_FLOOR",
            _ => continue,
        };
        env.push((var.to_owned(), exe));
    }
    if env.len() != 5 {
        return Err(format!(
            "expected compositor-demo, client-demo, wayheap-test-client, wayheap-hints-client and wayheap-flip-floor, cargo reported {env:?}"
        ));
    }
    env.push((
        "WAYHEAP_COMPOSITOR_DEMO_RELEASE".to_owned(),
        build_release_compositor()?,
    ));
    env.push((GST_PLUGIN_DIR_ENV.to_owned(), build_gst_plugin()?));
    Ok(env)
}

/// Where the guest tests find `libgstwayheap.so` (for `GST_PLUGIN_PATH`).
pub const GST_PLUGIN_DIR_ENV: &str = "WAYHEAP_GST_PLUGIN_DIR";

/// Builds the GStreamer plugin (crate `gst-wayheap`, a cdylib) and returns the directory of
/// `libgstwayheap.so`.
pub fn build_gst_plugin() -> Result<PathBuf, String> {
    cargo_artifacts(&["build", "-p", "gst-wayheap", "--lib"])?
        .iter()
        .filter(|m| m["target"]["name"] == "gstwayheap")
        .flat_map(|m| m["filenames"].as_array().into_iter().flatten())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "so"))
        .and_then(|f| f.parent().map(Path::to_path_buf))
        .ok_or_else(|| "cargo reported no libgstwayheap.so".to_owned())
}

/// Builds compositor-demo with the release profile (for the benchmarks) and returns its path.
pub fn build_release_compositor() -> Result<PathBuf, String> {
    cargo_build_bins(&["--release", "-p", "compositor-demo"])?
        .into_iter()
        .find_map(|(name, exe)| (name == "compositor-demo").then_some(exe))
        .ok_or_else(|| "cargo reported no release compositor-demo executable".to_owned())
}

/// `cargo build --bins ARGS`: the (target name, executable) of every binary it built.
fn cargo_build_bins(args: &[&str]) -> Result<Vec<(String, PathBuf)>, String> {
    let mut all = vec!["build", "--bins"];
    all.extend_from_slice(args);
    Ok(cargo_artifacts(&all)?
        .iter()
        .filter_map(|m| {
            let name = m["target"]["name"].as_str()?.to_owned();
            let exe = m["executable"].as_str()?;
            Some((name, PathBuf::from(exe)))
        })
        .collect())
}

/// Runs `cargo ARGS` in the workspace and returns its `compiler-artifact` messages (the outer
/// `cargo test` has released its build lock by the time tests run; the same profile and target
/// directory keep the build incremental).
fn cargo_artifacts(args: &[&str]) -> Result<Vec<serde_json::Value>, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo {} failed ({})", args.join(" "), out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .collect())
}

/// What one guest binary did.
#[derive(Debug)]
pub struct BinaryReport {
    /// The test target's name.
    pub name: String,
    /// Its exit status inside the guest (`None`: it never finished).
    pub status: Option<i32>,
    /// Its per-test results.
    pub tests: Vec<TestResult>,
    /// Everything it printed.
    pub output: String,
}

/// What one boot did.
#[derive(Debug)]
pub struct BatchReport {
    /// The kernel's release string, as the guest reported it.
    pub kernel_release: String,
    /// From starting qemu to the first test binary starting.
    pub boot_to_first_test: Option<Duration>,
    /// From starting qemu to its exit.
    pub total: Duration,
    /// One report per binary, in run order.
    pub binaries: Vec<BinaryReport>,
    /// The guest console (serial), for diagnosis.
    pub console: String,
    /// `key: value` lines the guest tests recorded with [`crate::guest::record_fact`].
    pub facts: String,
    /// Binaries that hung, were killed and run again (`WAYHEAP-HUNG` lines).
    pub hung: Vec<String>,
}

/// A qemu guest on the test kernel.
#[derive(Debug, Clone)]
pub struct Vm {
    /// The bzImage.
    pub kernel: PathBuf,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Guest CPUs.
    pub cpus: u32,
    /// Kill the guest after this long.
    pub timeout: Duration,
    /// Names the run directory (`target/vm-tier/run-<pid>-<label>`): one per kernel of a run.
    pub label: String,
    /// qemu in a process group of its own: a Ctrl-C at the terminal does not reach it, and the
    /// caller stops the guest (a demo, which stops cleanly). Tests leave it in theirs, so that
    /// stopping the test run stops the guest.
    pub own_process_group: bool,
}

impl Vm {
    /// A guest on `kernel` with the tier's defaults (2 GiB, 2 CPUs, `$WAYHEAP_VM_TIMEOUT` or 30 min).
    pub fn new(kernel: PathBuf) -> Self {
        let timeout = std::env::var(TIMEOUT_ENV)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1800);
        Self {
            kernel,
            memory_mib: 2048,
            cpus: 2,
            timeout: Duration::from_secs(timeout),
            label: "current".to_owned(),
            own_process_group: false,
        }
    }

    /// Boots once and runs every binary in `bins` (each with `--test-threads=1`), in order.
    pub fn run_batch(
        &self,
        bins: &[GuestBinary],
        env: &[(String, PathBuf)],
    ) -> Result<BatchReport, String> {
        for b in bins {
            if b.path
                .to_str()
                .is_none_or(|p| p.contains(char::is_whitespace))
            {
                return Err(format!(
                    "guest binary path must be plain UTF-8 without spaces: {:?}",
                    b.path
                ));
            }
        }
        let run_dir = workspace_root().join("target/vm-tier").join(format!(
            "run-{}-{}",
            std::process::id(),
            self.label
        ));
        let verbose = std::env::var_os(VERBOSE_ENV).is_some_and(|v| v == "1");
        let echo = verbose.then_some(Echo::Prefixed);
        let boot = self.boot(&run_dir, |dir| run_script(dir, bins, env), echo)?;
        let (start, total) = (boot.start, boot.total);
        let mut console = String::new();
        let mut first_test = None;
        let mut kernel_release = String::new();
        for (at, line) in &boot.lines {
            if first_test.is_none() && line.contains("WAYHEAP-BEGIN ") {
                first_test = Some(*at - start);
            }
            if let Some(r) = line.split("WAYHEAP-KERNEL ").nth(1) {
                kernel_release = r.trim().to_owned();
            }
            let _ = writeln!(console, "{line}");
        }
        let stderr = std::fs::read_to_string(run_dir.join("qemu.log")).unwrap_or_default();
        let _ = std::fs::write(run_dir.join("console.log"), &console);

        let Some(exit) = boot.exit else {
            return Err(format!(
                "the guest did not finish within {}s (set {TIMEOUT_ENV} to allow longer); console:\n{}",
                self.timeout.as_secs(),
                tail(&console, 60)
            ));
        };
        if !exit.success() {
            return Err(format!(
                "qemu failed ({exit}): {stderr}\nconsole:\n{}",
                tail(&console, 60)
            ));
        }
        if !run_dir.join("done").exists() {
            return Err(format!(
                "the guest powered off before finishing its run script; console:\n{}",
                tail(&console, 60)
            ));
        }

        let binaries = bins
            .iter()
            .map(|b| {
                let output = std::fs::read_to_string(run_dir.join(format!("{}.out", b.name)))
                    .unwrap_or_default();
                let status = std::fs::read_to_string(run_dir.join(format!("{}.status", b.name)))
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                BinaryReport {
                    name: b.name.clone(),
                    status,
                    tests: libtest::parse(&output),
                    output,
                }
            })
            .collect();
        let facts = std::fs::read_to_string(run_dir.join("facts.txt")).unwrap_or_default();
        Ok(BatchReport {
            kernel_release,
            boot_to_first_test: first_test,
            total,
            binaries,
            hung: console
                .lines()
                .filter_map(|l| l.split("WAYHEAP-HUNG ").nth(1))
                .map(str::to_owned)
                .collect(),
            console,
            facts,
        })
    }
}

/// How a boot shows the guest's console while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// On stderr, each line after `[guest] ` (a test run's verbose mode).
    Prefixed,
    /// On stdout, as it is (a demo).
    Plain,
}

/// What one boot of the guest left.
#[derive(Debug)]
pub struct Boot {
    /// When qemu started.
    pub start: Instant,
    /// How long it ran.
    pub total: Duration,
    /// qemu's exit status; `None` when the timeout killed it.
    pub exit: Option<std::process::ExitStatus>,
    /// The console's lines, with when each came.
    pub lines: Vec<(Instant, String)>,
}

impl Vm {
    /// Boots the guest with the run directory `run_dir` shared read-write at the same path
    /// (made afresh), runs the script `script(run_dir)` writes in it, and waits until the guest
    /// powers off (or the timeout). The console is kept, and echoed as `echo` says.
    pub fn boot(
        &self,
        run_dir: &Path,
        script: impl FnOnce(&str) -> String,
        echo: Option<Echo>,
    ) -> Result<Boot, String> {
        let qemu = which("qemu-system-x86_64").ok_or(
            "qemu-system-x86_64 not found: install Debian's qemu-system-x86 (scripts/install-deps)",
        )?;
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .ok_or("busybox not found: install Debian's busybox-static (scripts/install-deps)")?;
        let _ = std::fs::remove_dir_all(run_dir);
        std::fs::create_dir_all(run_dir)
            .map_err(|e| format!("creating {}: {e}", run_dir.display()))?;
        let run_dir_str = run_dir
            .to_str()
            .filter(|s| !s.contains(char::is_whitespace))
            .ok_or_else(|| {
                format!(
                    "the run directory {} must be plain UTF-8 without spaces",
                    run_dir.display()
                )
            })?;

        let initramfs = run_dir.join("initramfs.cpio");
        write_initramfs(&initramfs, busybox)?;
        std::fs::write(run_dir.join("run.sh"), script(run_dir_str))
            .map_err(|e| format!("writing run.sh: {e}"))?;

        let append = format!(
            "console=ttyS0 loglevel=4 rdinit=/init {KERNEL_ARGS} wayheap_results={run_dir_str}"
        );
        let qemu_log = std::fs::File::create(run_dir.join("qemu.log"))
            .map_err(|e| format!("creating qemu.log: {e}"))?;
        let mut qemu = Command::new(qemu);
        qemu.args([
            "-accel",
            "tcg",
            "-cpu",
            "max",
            "-nodefaults",
            "-no-reboot",
            "-display",
            "none",
        ])
        .args([
            "-m",
            &self.memory_mib.to_string(),
            "-smp",
            &self.cpus.to_string(),
        ])
        .args(["-serial", "stdio", "-monitor", "none"])
        .arg("-kernel")
        .arg(&self.kernel)
        .arg("-initrd")
        .arg(&initramfs)
        .args(["-append", &append])
        .args([
            "-virtfs",
            "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
        ])
        .arg("-virtfs")
        .arg(format!(
            "local,path={run_dir_str},mount_tag=results,security_model=none,multidevs=remap"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(qemu_log);
        if self.own_process_group {
            qemu.process_group(0);
        }
        let mut child = qemu.spawn().map_err(|e| format!("starting qemu: {e}"))?;
        let start = Instant::now();

        // The console is read on a thread so that the deadline below holds even if the guest hangs.
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel::<(Instant, String)>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match echo {
                    Some(Echo::Prefixed) => eprintln!("[guest] {line}"),
                    Some(Echo::Plain) => println!("{line}"),
                    None => {}
                }
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });

        let deadline = start + self.timeout;
        let exit = loop {
            if let Some(status) = child
                .try_wait()
                .map_err(|e| format!("waiting for qemu: {e}"))?
            {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let total = start.elapsed();
        let _ = reader.join();
        let _ = std::fs::remove_file(&initramfs);
        Ok(Boot {
            start,
            total,
            exit,
            lines: rx.try_iter().collect(),
        })
    }
}

/// The script the guest runs (in the chroot, as root) — one test binary after the other.
/// The guest's runner of one test binary: `bounded NAME COMMAND...` writes `$R/NAME.out` and
/// `$R/NAME.status`. A binary gets `limit_secs`; one that hangs in the kernel is
/// killed, said (`WAYHEAP-HUNG NAME: its last test`, its output kept as `NAME.hung.out`) and run
/// once more. A hang is not a pass: the host prints every one. 5.10's vkms hung about once in
/// twenty boots in an ION-to-writeback commit (the guest spinning at 200% CPU), never twice
/// in a row; without this, the whole tier waited for the guest's timeout and failed.
fn bounded_runner(limit_secs: u64) -> String {
    format!(
        r#"bounded() {{
    name=$1; shift
    timeout -k 10 {limit_secs} "$@" >"$R/$name.out" 2>&1; st=$?
    if [ "$st" = 124 ] || [ "$st" = 137 ]; then
        echo "WAYHEAP-HUNG $name: killed after {limit_secs} s in: $(grep -a '^test ' "$R/$name.out" | tail -n 1)"
        mv "$R/$name.out" "$R/$name.hung.out"
        timeout -k 10 {limit_secs} "$@" >"$R/$name.out" 2>&1; st=$?
    fi
    echo "$st" >"$R/$name.status"
}}
"#
    )
}

/// What the guest's runner allows one test binary (the longest, guest_compositor, takes about 270 s).
pub const BINARY_LIMIT_SECS: u64 = 600;

fn run_script(run_dir: &str, bins: &[GuestBinary], env: &[(String, PathBuf)]) -> String {
    let mut s =
        String::from("#!/bin/sh\n# Written by wayheap-tests' VM tier; runs inside the guest.\n");
    let _ = writeln!(
        s,
        "export {}=1 {}={run_dir} RUST_BACKTRACE=1 HOME=/root",
        crate::guest::GUEST_ENV,
        crate::guest::RESULTS_ENV
    );
    s.push_str("export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
    for (k, v) in env {
        let _ = writeln!(s, "export {k}={}", v.display());
    }
    // The soak's and the fuzzer's knobs (seed, rounds) reach the guest, for long runs by hand.
    for (k, v) in std::env::vars() {
        let knob = k.starts_with("WAYHEAP_SOAK_") || k.starts_with("WAYHEAP_FUZZ_");
        if knob && v.bytes().all(|b| b.is_ascii_alphanumeric()) {
            let _ = writeln!(s, "export {k}={v}");
        }
    }
    let _ = writeln!(s, "R={run_dir}");
    let _ = writeln!(s, "cd {}", workspace_root().display());
    s.push_str("echo \"WAYHEAP-KERNEL $(uname -r)\"\n");
    // Development only: WAYHEAP_VM_FILTER=name runs the matching tests of each binary.
    let filter = std::env::var("WAYHEAP_VM_FILTER")
        .map(|f| format!(" {f}"))
        .unwrap_or_default();
    s.push_str(&bounded_runner(BINARY_LIMIT_SECS));
    for b in bins {
        let _ = writeln!(
            s,
            "echo \"WAYHEAP-BEGIN {} $(cut -d' ' -f1 /proc/uptime)\"",
            b.name
        );
        let _ = writeln!(
            s,
            "bounded {n} {} --test-threads=1{filter}",
            b.path.display(),
            n = b.name
        );
        let _ = writeln!(
            s,
            "echo \"WAYHEAP-END {n} $(cat \"$R/{n}.status\")\"",
            n = b.name
        );
    }
    s.push_str("echo ok >\"$R/done\"\n");
    s
}

/// An initramfs (newc cpio) holding busybox and the tier's /init.
fn write_initramfs(path: &Path, busybox: &Path) -> Result<(), String> {
    let staging = path.with_extension("d");
    let _ = std::fs::remove_dir_all(&staging);
    for d in ["bin", "dev", "proc", "sys", "lower", "rw", "newroot"] {
        std::fs::create_dir_all(staging.join(d)).map_err(|e| format!("initramfs staging: {e}"))?;
    }
    std::fs::copy(busybox, staging.join("bin/busybox"))
        .map_err(|e| format!("copying busybox: {e}"))?;
    std::fs::write(staging.join("init"), INIT).map_err(|e| format!("writing init: {e}"))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(staging.join("init"), std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod init: {e}"))?;

    // busybox's own cpio writes newc archives; no other tool is needed.
    let list = "bin\nbin/busybox\ndev\nproc\nsys\nlower\nrw\nnewroot\ninit\n";
    let out =
        std::fs::File::create(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
    let mut cpio = Command::new(busybox)
        .args(["cpio", "-o", "-H", "newc"])
        .current_dir(&staging)
        .stdin(Stdio::piped())
        .stdout(out)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running busybox cpio: {e}"))?;
    cpio.stdin
        .take()
        .expect("piped")
        .write_all(list.as_bytes())
        .map_err(|e| format!("cpio: {e}"))?;
    let res = cpio.wait_with_output().map_err(|e| format!("cpio: {e}"))?;
    if !res.status.success() {
        return Err(format!(
            "busybox cpio failed: {}",
            String::from_utf8_lossy(&res.stderr)
        ));
    }
    let _ = std::fs::remove_dir_all(&staging);
    Ok(())
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(cmd))
        .find(|p| p.is_file())
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}
