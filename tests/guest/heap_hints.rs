//! In-guest: `wayheap_heap_hints_v1` between compositor-demo (on vkms, its planes reading only
//! contiguous memory) and wayheap-hints-client: the hint takes the client to the CMA heap and its
//! surface onto an overlay plane, where feedback alone would have taken the system heap and been
//! composited; a client that may not open heap nodes gets CMA memory from the compositor, within
//! a quota; hostile requests get protocol errors.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use wayheap_tests::compositor::{Client, Compositor};
use wayheap_tests::guest::{record_fact, require_guest, temp_dir};
use wayheap_tests::pattern::{compare_rgba, gradient, quadrants};

const SEATD: &[&str] = &["seatd-launch", "--"];

fn hints_client_bin() -> std::path::PathBuf {
    std::env::var_os("WAYHEAP_HINTS_CLIENT")
        .expect("WAYHEAP_HINTS_CLIENT (set by the vm_tier runner)")
        .into()
}

fn kms(tag: &str, extra: &[&str]) -> Compositor {
    let _ = std::fs::remove_file("/run/seatd.sock");
    let mut args = vec![
        "--backend",
        "kms",
        "--device",
        "/dev/dri/card0",
        "--contiguous-scanout",
    ];
    args.extend_from_slice(extra);
    Compositor::start_with(tag, &args, SEATD)
}

/// What a feedback-only client with a display engine that has an IOMMU would do: the system
/// heap first for scan-out.
fn system_first_policy() -> std::path::PathBuf {
    let path = temp_dir("hints-policy").join("policy");
    std::fs::write(&path, "scanout @system,@cma,udmabuf\n* @system,udmabuf\n").unwrap();
    path
}

fn start(comp: &Compositor, args: &[&str]) -> Client {
    let policy = system_first_policy();
    Client::spawn_with_env(
        &comp.runtime,
        &comp.socket,
        &hints_client_bin(),
        args,
        &[("WAYHEAP_POLICY", policy.as_os_str())],
    )
}

/// Waits for `client`'s line starting with `prefix`; on failure, says what the client and the
/// compositor said.
fn line(client: &Client, comp: &Compositor, prefix: &str) -> String {
    client
        .wait_line(prefix, Duration::from_secs(120))
        .unwrap_or_else(|e| {
            panic!(
                "{e}
client stderr:
{}
compositor log:
{}",
                client.stderr(),
                comp.log()
            )
        })
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line
        .find(&format!(" {key}="))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
        + key.len()
        + 2;
    let rest = &line[start..];
    &rest[..rest.find(' ').unwrap_or(rest.len())]
}

/// The subsurface's placement once both surfaces are shown: (plane, reason).
fn sub_placement(comp: &Compositor) -> (String, Option<String>) {
    let mut v = comp.wait_surfaces(2, Duration::from_secs(120), |p| p != "hidden");
    v.pop().expect("two surfaces")
}

fn check_pixels(comp: &Compositor) -> usize {
    let (w, h, rgba) = comp.screenshot();
    let expected = |x: u32, y: u32| {
        if (100..356).contains(&x) && (80..272).contains(&y) {
            gradient(x - 100, y - 80)
        } else {
            quadrants(x, y, w, h)
        }
    };
    let (wrong, examples) = compare_rgba(&rgba, w, h, 0, expected);
    assert_eq!(wrong, 0, "{wrong} writeback pixels differ: {examples:?}");
    (w * h) as usize
}

#[test]
fn the_hint_takes_the_client_to_cma_and_onto_an_overlay_plane() {
    require_guest();
    // Without hints (the global withheld): feedback alone, system heap, composited.
    let without = kms("hints-off", &["--no-heap-hints"]);
    let client = start(&without, &["--seconds", "120"]);
    assert_eq!(
        client.wait_line("GLOBAL", Duration::from_secs(60)).unwrap(),
        "GLOBAL heap_hints=no"
    );
    let alloc = line(&client, &without, "ALLOC");
    assert_eq!(field(&alloc, "provider"), "system", "{alloc}");
    line(&client, &without, "READY");
    let (plane, reason) = sub_placement(&without);
    assert_eq!(plane, "composited", "{reason:?}");
    let reason = reason.unwrap();
    assert!(
        reason.contains("contiguous") && reason.contains("system"),
        "{reason}"
    );
    let n = check_pixels(&without);
    record_fact(
        "heap hints off",
        format!("system heap, composited ({reason}); {n} writeback pixels exact"),
    );
    drop(client);
    without.stop();

    // With hints: the CMA heap, an overlay plane.
    let with = kms("hints-on", &[]);
    let client = start(&with, &["--seconds", "120"]);
    let hints = line(&client, &with, "HINTS");
    assert!(hints.contains("contiguous"), "{hints}");
    let alloc = line(&client, &with, "ALLOC");
    let provider = field(&alloc, "provider");
    assert!(
        matches!(provider, "default_cma_region" | "reserved"),
        "{alloc}"
    );
    assert_eq!(
        field(&alloc, "delegated"),
        "false",
        "root opens the heap itself"
    );
    line(&client, &with, "READY");
    let (plane, reason) = sub_placement(&with);
    assert_eq!(plane, "overlay", "{reason:?}\nlog:\n{}", with.log());
    let n = check_pixels(&with);
    record_fact(
        "heap hints on",
        format!("{hints} -> {provider}, overlay plane; {n} writeback pixels exact"),
    );
}

#[test]
fn hints_are_sent_again_when_the_surface_leaves_the_planes() {
    require_guest();
    let comp = kms("hints-moved", &[]);
    // Scaled by the viewport: vkms planes do not scale, so the surface ends up composited.
    let client = start(&comp, &["--sub-scale", "512x384", "--seconds", "120"]);
    let first = line(&client, &comp, "HINTS");
    assert!(first.contains("for overlay"), "{first}");
    // Composited for a reason no memory fixes: the list now says so (it may come before or
    // after the client's READY, which this wait passes over).
    let second = line(&client, &comp, "HINTS");
    assert!(second.contains("for composition"), "{second}");
    let (plane, reason) = sub_placement(&comp);
    assert_eq!(plane, "composited", "{reason:?}");
    let reason = reason.unwrap_or_default();
    assert!(reason.contains("scaling"), "{reason}");
    // The kernel's own answer, from the tracker's TEST_ONLY commit: an errno by name.
    assert!(reason.contains("test commit: E"), "{reason}");
    record_fact(
        "heap hints re-sent",
        format!("{first} -> composited ({reason}) -> {second}"),
    );
}

/// Starts the hints client as uid/gid 65534 (no access to /dev/dma_heap/*), on a connection the
/// test opened and passes down as WAYLAND_SOCKET (as a sandbox hands a socket to an app).
fn start_unprivileged(comp: &Compositor, args: &[&str]) -> (std::process::Child, OwnedFd) {
    let stream = UnixStream::connect(comp.runtime.join(&comp.socket)).expect("connecting");
    let fd: OwnedFd = stream.into();
    // The child inherits it: clear close-on-exec.
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::empty()).unwrap();
    let policy = system_first_policy();
    let child = Command::new(hints_client_bin())
        .args(args)
        .env("WAYLAND_SOCKET", fd.as_raw_fd().to_string())
        .env("WAYHEAP_POLICY", &policy)
        .env_remove("WAYLAND_DISPLAY")
        .env("XDG_RUNTIME_DIR", "/tmp")
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the unprivileged client");
    (child, fd)
}

fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait(rx: &std::sync::mpsc::Receiver<String>, comp: &Compositor, prefix: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            Ok(l) if l.starts_with(prefix) => return l,
            Ok(l) => seen.push(l),
            Err(_) => panic!(
                "no {prefix} line; saw {seen:?}\ncompositor log:\n{}",
                comp.log()
            ),
        }
    }
}

#[test]
fn a_client_that_cannot_open_heaps_gets_cma_from_the_compositor_and_an_overlay() {
    require_guest();
    let comp = kms("hints-delegated", &[]);
    let (mut child, _fd) = start_unprivileged(&comp, &["--seconds", "120"]);
    let rx = lines_of(&mut child);
    let alloc = wait(&rx, &comp, "ALLOC");
    assert_eq!(field(&alloc, "delegated"), "true", "{alloc}");
    let provider = field(&alloc, "provider").to_owned();
    assert!(
        matches!(provider.as_str(), "default_cma_region" | "reserved"),
        "{alloc}"
    );
    wait(&rx, &comp, "READY");
    let (plane, reason) = sub_placement(&comp);
    assert_eq!(plane, "overlay", "{reason:?}\nlog:\n{}", comp.log());
    let n = check_pixels(&comp);
    let state = comp.state();
    let delegated = &state["delegated"];
    assert_eq!(delegated.as_array().map(Vec::len), Some(1), "{state:#}");
    record_fact(
        "heap hints delegated",
        format!(
            "uid 65534: {alloc}; overlay plane, {n} pixels exact; compositor accounts {delegated}"
        ),
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_quota_refuses_more_and_disconnect_returns_it_while_others_are_served() {
    require_guest();
    let comp = kms(
        "hints-quota",
        &["--delegated-quota", "16", "--delegated-total", "24"],
    );
    // A well-behaved client on a plane the whole time.
    let bystander = start(&comp, &["--seconds", "300"]);
    line(&bystander, &comp, "READY");
    // A greedy one, unprivileged: 4 MiB at a time until refused.
    let (mut greedy, fd) = start_unprivileged(
        &comp,
        &[
            "--delegate-until-refused",
            "4",
            "--close-after",
            "10",
            "--seconds",
            "300",
        ],
    );
    let rx = lines_of(&mut greedy);
    let got = wait(&rx, &comp, "DELEGATED");
    let refused = wait(&rx, &comp, "REFUSED");
    assert_eq!(field(&got, "n"), "4", "{got}");
    assert_eq!(field(&refused, "reason"), "quota_exceeded", "{refused}");
    let held = comp.wait_state(Duration::from_secs(10), |s| {
        s["delegated"]
            .as_array()
            .is_some_and(|a| a.iter().any(|u| u["bytes"] == 16u64 << 20))
    });
    // A second connection (another client, or the same one again) meets the total cap: 8 of
    // the 24 MiB all clients together may hold are left.
    let (mut other, _other_fd) = start_unprivileged(
        &comp,
        &["--delegate-until-refused", "4", "--seconds", "300"],
    );
    let other_rx = lines_of(&mut other);
    let other_got = wait(&other_rx, &comp, "DELEGATED");
    let other_refused = wait(&other_rx, &comp, "REFUSED");
    assert_eq!(field(&other_got, "n"), "2", "{other_got}");
    assert!(
        other_refused.contains("all clients together"),
        "{other_refused}"
    );
    // It closes every fd (no mapping, no wl_buffer left): still connected, it gets the whole
    // quota again, and is refused again at its end.
    wait(&rx, &comp, "CLOSED");
    let got_again = wait(&rx, &comp, "DELEGATED");
    let refused_again = wait(&rx, &comp, "REFUSED");
    assert_eq!(
        field(&got_again, "n"),
        "4",
        "closed buffers still counted: {got_again}"
    );
    assert_eq!(field(&refused_again, "reason"), "quota_exceeded");
    // The bystander is still served and on its plane.
    let (plane, _) = sub_placement(&comp);
    assert_eq!(plane, "overlay");
    // Disconnect: the quota comes back.
    let _ = greedy.kill();
    let _ = greedy.wait();
    drop(fd);
    comp.wait_state(Duration::from_secs(60), |s| {
        s["delegated"]
            .as_array()
            .is_some_and(|a| a.iter().all(|u| u["bytes"] != 16u64 << 20))
    });
    let (mut again, _fd2) =
        start_unprivileged(&comp, &["--delegate-until-refused", "4", "--seconds", "5"]);
    let rx2 = lines_of(&mut again);
    let got2 = wait(&rx2, &comp, "DELEGATED");
    assert_eq!(field(&got2, "n"), "4", "the quota is whole again: {got2}");
    let _ = again.kill();
    let _ = again.wait();
    let _ = other.kill();
    let _ = other.wait();
    record_fact(
        "heap hints quota",
        format!(
            "16 MiB quota, 24 MiB total: {got}, then {refused}; compositor held {}; a second client {other_got}, {other_refused}; after closing them {got_again}; after disconnect {got2}",
            held["delegated"]
        ),
    );
    assert!(comp.state()["clients"].as_u64().unwrap() >= 1);
    drop(bystander);
}

#[test]
fn hostile_heap_hint_requests_get_protocol_errors_and_the_compositor_goes_on() {
    require_guest();
    let comp = kms("hints-hostile", &[]);
    let bystander = start(&comp, &["--seconds", "300"]);
    bystander
        .wait_line("READY", Duration::from_secs(120))
        .unwrap();
    let mut seen = Vec::new();
    for (kind, error) in [
        ("unknown-heap", "wayheap_heap_hints_manager_v1 2"),
        ("zero-size", "wayheap_heap_hints_manager_v1 1"),
        ("huge-size", "wayheap_heap_hints_manager_v1 1"),
        ("double-hints", "wayheap_heap_hints_manager_v1 0"),
    ] {
        let client = start(&comp, &["--hostile", kind]);
        let line = client
            .wait_line("PROTOCOL-ERROR", Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{kind}: {e}\n{}", client.stderr()));
        assert!(line.contains(error), "{kind}: {line}");
        let (status, _) = client.finish();
        assert_eq!(status.code(), Some(3), "{kind}");
        seen.push(format!("{kind}: {line}"));
    }
    // After all that, the bystander is still connected and on its plane.
    let (plane, _) = sub_placement(&comp);
    assert_eq!(plane, "overlay");
    check_pixels(&comp);
    record_fact("heap hints hostile", seen.join(" | "));
    drop(bystander);
}
/// A raw Wayland wire message: object, opcode, 32-bit words of arguments.
fn message(object: u32, opcode: u16, args: &[u32]) -> Vec<u8> {
    let size = 8 + 4 * args.len() as u32;
    let mut m = Vec::with_capacity(size as usize);
    m.extend_from_slice(&object.to_ne_bytes());
    m.extend_from_slice(&((size << 16) | u32::from(opcode)).to_ne_bytes());
    for a in args {
        m.extend_from_slice(&a.to_ne_bytes());
    }
    m
}

/// A wire string: length with the NUL, then the bytes padded to 32 bits.
fn string_words(s: &str) -> Vec<u32> {
    let mut bytes = s.as_bytes().to_vec();
    bytes.push(0);
    let mut words = vec![bytes.len() as u32];
    while !bytes.len().is_multiple_of(4) {
        bytes.push(0);
    }
    words.extend(
        bytes
            .chunks_exact(4)
            .map(|c| u32::from_ne_bytes(c.try_into().unwrap())),
    );
    words
}

/// Reads one event: (object, opcode, argument bytes).
/// `None` once the compositor closed the connection.
fn read_event(stream: &mut UnixStream) -> Option<(u32, u16, Vec<u8>)> {
    use std::io::Read;
    let mut header = [0u8; 8];
    match stream.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
        Err(e) => panic!("reading an event: {e}"),
    }
    let object = u32::from_ne_bytes(header[..4].try_into().unwrap());
    let word = u32::from_ne_bytes(header[4..].try_into().unwrap());
    let mut body = vec![0u8; (word >> 16) as usize - 8];
    stream.read_exact(&mut body).ok()?;
    Some((object, word as u16, body))
}

/// libwayland-server answers a request on a destroyed object with wl_display.error
/// (invalid_object); wayland-rs' server backend, under Smithay, ends the connection without an
/// error event. Either way the offender is cut off and the compositor goes on.
/// libwayland-server answers a request on a destroyed object with wl_display.error
/// (invalid_object); wayland-rs' server backend, under Smithay, ends the connection without an
/// error event. Either way the offender is cut off and the compositor goes on.
#[test]
fn a_request_on_a_destroyed_manager_ends_the_offender_and_the_compositor_goes_on() {
    use std::io::Write;
    require_guest();
    let comp = kms("hints-after-destroy", &[]);
    // Written on the wire by hand: wayland-client refuses to send on a destroyed proxy.
    let mut s = UnixStream::connect(comp.runtime.join(&comp.socket)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&message(1, 1, &[2])).unwrap(); // wl_display.get_registry(2)
    s.write_all(&message(1, 0, &[3])).unwrap(); // wl_display.sync(3)
    let mut manager_name = None;
    loop {
        let (object, opcode, body) = read_event(&mut s).unwrap_or_else(|| {
            panic!(
                "the compositor closed during the registry\nlog:\n{}",
                comp.log()
            )
        });
        if object == 2 && opcode == 0 {
            // wl_registry.global(name, interface, version)
            let name = u32::from_ne_bytes(body[..4].try_into().unwrap());
            let len = u32::from_ne_bytes(body[4..8].try_into().unwrap()) as usize;
            let interface = String::from_utf8_lossy(&body[8..8 + len - 1]).into_owned();
            if interface == "wayheap_heap_hints_manager_v1" {
                manager_name = Some(name);
            }
        }
        if object == 3 {
            break; // wl_callback.done
        }
    }
    let name = manager_name.expect("compositor-demo offers wayheap_heap_hints_manager_v1");
    // wl_registry.bind(name, interface, version 1, new id 4)
    let mut bind = vec![name];
    bind.extend(string_words("wayheap_heap_hints_manager_v1"));
    bind.extend([1, 4]);
    s.write_all(&message(2, 0, &bind)).unwrap();
    s.write_all(&message(4, 0, &[])).unwrap(); // manager.destroy
    // manager.allocate(new id 5, "system", 0, 4096) on the destroyed manager
    let mut allocate = vec![5];
    allocate.extend(string_words("system"));
    allocate.extend([0, 4096]);
    s.write_all(&message(4, 2, &allocate)).unwrap();
    let outcome = loop {
        match read_event(&mut s) {
            None => break "connection closed by the compositor".to_owned(),
            Some((1, 0, body)) => {
                // wl_display.error(object, code, message)
                let len = u32::from_ne_bytes(body[8..12].try_into().unwrap()) as usize;
                break format!(
                    "wl_display.error: {}",
                    String::from_utf8_lossy(&body[12..12 + len - 1])
                );
            }
            Some(_) => {}
        }
    };
    // Cut off: nothing more comes.
    assert!(
        read_event(&mut s).is_none(),
        "{outcome}, but the connection is still open"
    );
    // The compositor goes on: a new client still gets its hints.
    let client = start(&comp, &["--seconds", "30"]);
    line(&client, &comp, "READY");
    record_fact("heap hints request after destroy", outcome);
}
