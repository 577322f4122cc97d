//! Helpers for tests that run inside the VM tier's guest.

/// Set to `1` by the guest's run script; nothing else sets it.
pub const GUEST_ENV: &str = "WAYHEAP_GUEST";

/// True inside the VM tier's guest.
pub fn in_guest() -> bool {
    std::env::var_os(GUEST_ENV).is_some_and(|v| v == "1")
}

/// Panics unless running inside the VM tier's guest.
///
/// In-guest tests exercise real kernel interfaces (/dev/dma_heap, /dev/udmabuf, vkms, vivid) that
/// development machines do not have; run anywhere else they must fail, never pass by skipping.
pub fn require_guest() {
    assert!(
        in_guest(),
        "this test runs only inside the VM tier's guest kernel; run `cargo test -p wayheap-tests \
         --test vm_tier` (or scripts/test), which boots the guest and runs it there"
    );
}

/// The running kernel's (major, minor), from `uname -r`.
pub fn kernel_version() -> (u32, u32) {
    let uname = rustix::system::uname();
    let release = uname.release().to_string_lossy();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => (major, minor),
        _ => panic!("cannot read a version from the kernel release {release:?}"),
    }
}

/// True on the matrix's BSP-era kernel (5.10: ION, no sync_file export, vkms without overlay
/// planes, udmabuf limited to 64 MiB); false on the current one. Tests assert each kernel's
/// behaviour explicitly on this, never skip on it.
pub fn is_bsp_kernel() -> bool {
    kernel_version() < (5, 11)
}

/// The DMA-BUF CMA heap's name on this kernel with `cma=128M`: `default_cma_region` since 6.16,
/// `reserved` (the default area's name) before.
pub fn cma_heap_name() -> &'static str {
    if kernel_version() >= (6, 16) {
        "default_cma_region"
    } else {
        "reserved"
    }
}

/// Where the VM tier collects results; set by the guest's run script.
pub const RESULTS_ENV: &str = "WAYHEAP_RESULTS";

/// Records a fact about the guest kernel (e.g. the CMA heap's name) for the host's summary.
///
/// Facts are appended to `facts.txt` in the results share as `key: value` lines.
pub fn record_fact(key: &str, value: impl std::fmt::Display) {
    use std::io::Write;
    let Some(dir) = std::env::var_os(RESULTS_ENV) else {
        return;
    };
    let path = std::path::Path::new(&dir).join("facts.txt");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    writeln!(f, "{key}: {value}").unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Runs `f` on a thread whose credentials are uid/gid 65534 (nobody) with no supplementary
/// groups, and returns its result. Credentials are per thread at the kernel level, and rustix's
/// `set_thread_*` change only the calling thread, so the test process stays root.
pub fn as_nobody<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        use rustix::process::{Gid, Uid};
        let nobody_gid = Gid::from_raw(65534);
        let nobody_uid = Uid::from_raw(65534);
        rustix::thread::set_thread_groups(&[]).expect("dropping supplementary groups");
        rustix::thread::set_thread_res_gid(nobody_gid, nobody_gid, nobody_gid).expect("setresgid");
        rustix::thread::set_thread_res_uid(nobody_uid, nobody_uid, nobody_uid).expect("setresuid");
        f()
    })
    .join()
    .expect("the unprivileged thread panicked")
}

/// A sw_sync timeline (debugfs `sync/sw_sync`): fences that signal when the test says so.
#[derive(Debug)]
pub struct SwSyncTimeline {
    fd: std::fs::File,
}

#[repr(C)]
struct SwSyncCreateFenceData {
    value: u32,
    name: [u8; 32],
    fence: i32,
}

const SW_SYNC_IOC_CREATE_FENCE: rustix::ioctl::Opcode =
    rustix::ioctl::opcode::read_write::<SwSyncCreateFenceData>(b'W', 0);
const SW_SYNC_IOC_INC: rustix::ioctl::Opcode = rustix::ioctl::opcode::write::<u32>(b'W', 1);

impl SwSyncTimeline {
    /// A new timeline at 0.
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            fd: std::fs::File::open("/sys/kernel/debug/sync/sw_sync")?,
        })
    }

    /// A fence that signals when the timeline reaches `value`.
    pub fn fence(&self, value: u32) -> std::io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::FromRawFd;
        let mut data = SwSyncCreateFenceData {
            value,
            name: *b"wayheap-test\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            fence: -1,
        };
        // SAFETY: SW_SYNC_IOC_CREATE_FENCE reads and writes one `sw_sync_create_fence_data`.
        unsafe {
            rustix::ioctl::ioctl(
                &self.fd,
                rustix::ioctl::Updater::<{ SW_SYNC_IOC_CREATE_FENCE }, _>::new(&mut data),
            )
        }?;
        // SAFETY: the kernel installed a new sync_file fd for us.
        Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(data.fence) })
    }

    /// Advances the timeline by `by`, signalling the fences it passes.
    pub fn advance(&self, by: u32) -> std::io::Result<()> {
        // SAFETY: SW_SYNC_IOC_INC reads one u32.
        unsafe {
            rustix::ioctl::ioctl(
                &self.fd,
                rustix::ioctl::Setter::<{ SW_SYNC_IOC_INC }, u32>::new(by),
            )
        }?;
        Ok(())
    }
}

/// Creates a character-device node at `path` for the same device as `like` (e.g. a copy of a heap
/// node in a private directory, to change its mode without touching /dev).
pub fn mknod_like(like: &str, path: &std::path::Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let rdev = std::fs::metadata(like)?.rdev();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(mode),
        rdev,
    )?;
    // mknod applies the umask; set the mode exactly.
    rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(mode))?;
    Ok(())
}

/// A fresh private directory under /tmp (a tmpfs in the guest).
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wayheap-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a temp dir");
    dir
}

/// The `/dev/videoN` node of the V4L2 device whose sysfs name is `name` (e.g. `vivid-001-vid-cap`).
pub fn video_node(name: &str) -> String {
    for entry in std::fs::read_dir("/sys/class/video4linux").expect("/sys/class/video4linux") {
        let entry = entry.expect("sysfs entry");
        let node_name = std::fs::read_to_string(entry.path().join("name")).unwrap_or_default();
        if node_name.trim() == name {
            return format!("/dev/{}", entry.file_name().to_string_lossy());
        }
    }
    panic!("no V4L2 node named {name}");
}

/// What the compositor holds that a client's death must give back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holdings {
    /// Open fds.
    pub fds: usize,
    /// dma-bufs among them (fdinfo).
    pub dmabufs: usize,
    /// DRM framebuffers on the card.
    pub framebuffers: usize,
}

/// The compositor's holdings now.
pub fn holdings(pid: u32) -> Holdings {
    Holdings {
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count()),
        dmabufs: wayheap::accounting::process_dmabufs(Some(pid)).map_or(0, |v| v.len()),
        framebuffers: framebuffers(),
    }
}

/// DRM framebuffers alive on the card (debugfs lists every one, whoever owns it).
pub fn framebuffers() -> usize {
    let list = std::path::Path::new("/sys/kernel/debug/dri/0/framebuffer");
    if !list.exists() {
        let status = std::process::Command::new("mount")
            .args(["-t", "debugfs", "debugfs", "/sys/kernel/debug"])
            .status()
            .expect("running mount");
        assert!(status.success(), "mounting debugfs: {status}");
    }
    let text = std::fs::read_to_string(list).expect("reading the DRM framebuffer list");
    text.lines()
        .filter(|l| l.starts_with("framebuffer["))
        .count()
}

/// Waits until `pid` holds `baseline` again; returns what it holds at the end.
pub fn settle(pid: u32, baseline: Holdings) -> Holdings {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let now = holdings(pid);
        if now == baseline || std::time::Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Starts udevd in the guest once (Debian's systemd-udevd), and has it tag the devices present:
/// libinput reads only devices udev tagged as input devices, and learns of new ones from udevd.
pub fn start_udevd() {
    let run = |program: &str, args: &[&str]| {
        // The guest's tests run in a chroot of the host's root, where systemd's tools would
        // otherwise ignore every request.
        // Its output is kept off the test's own, which the tier parses.
        let out = std::process::Command::new(program)
            .args(args)
            .env("SYSTEMD_IGNORE_CHROOT", "1")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e} (Debian's udev; scripts/install-deps)"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    if !std::path::Path::new("/run/udev/control").exists() {
        run("/lib/systemd/systemd-udevd", &["--daemon"]);
    }
    run("udevadm", &["trigger", "--action=add"]);
    run("udevadm", &["settle", "--timeout=60"]);
}
