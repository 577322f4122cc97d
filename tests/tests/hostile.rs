//! A hostile client cannot take compositor-demo down: each message here crashed, stalled or
//! exhausted it before its fix (patches/README.md, `wayheap::smithay::guards`,
//! `wayheap::smithay::ClientListener`). Each test sends one kind of bad input over a raw
//! connection to the headless backend, checks the answer (a protocol error naming the problem, or
//! a disconnect), and then that the compositor still serves a new client.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use wayheap_tests::compositor::Compositor;
use wayheap_tests::wire::{Arg, Global, Outcome, RawConnection};

/// compositor-demo, headless, pixman: the backend every host test can run.
fn compositor(tag: &str) -> Compositor {
    Compositor::start_headless(tag, "pixman")
}

/// A raw connection with the registry's globals.
fn connect(comp: &Compositor) -> (RawConnection, Vec<Global>) {
    let mut conn = RawConnection::connect(&comp.runtime, &comp.socket).expect("connect");
    let globals = conn.globals().expect("registry round trip");
    (conn, globals)
}

/// The compositor is alive and a new client gets a full round trip.
fn assert_serves_others(comp: &mut Compositor) {
    assert!(comp.alive(), "the compositor died; log:\n{}", comp.log());
    let (mut bystander, globals) = connect(comp);
    assert!(!globals.is_empty());
    assert_eq!(bystander.outcome(), Outcome::Alive, "log:\n{}", comp.log());
}

/// The outcome is a protocol error whose message contains `needle`.
fn assert_error(outcome: Outcome, needle: &str, comp: &Compositor) {
    match outcome {
        Outcome::Error { ref message, .. } if message.contains(needle) => {}
        other => panic!(
            "expected an error saying {needle:?}, got {other:?}; log:\n{}",
            comp.log()
        ),
    }
}

/// Starts a compositor, lets `send` misbehave on a connection, and checks that the answer is an
/// error saying `needle` and that the compositor still serves others.
fn assert_refused(tag: &str, needle: &str, send: impl FnOnce(&mut RawConnection, &[Global])) {
    let mut comp = compositor(tag);
    let (mut conn, globals) = connect(&comp);
    send(&mut conn, &globals);
    assert_error(conn.outcome(), needle, &comp);
    assert_serves_others(&mut comp);
}

/// A surface of a fresh `wl_compositor`.
fn surface(conn: &mut RawConnection, compositor: u32) -> u32 {
    let surface = conn.new_id();
    conn.request(compositor, 0, &[Arg::NewId(surface)], &[]);
    surface
}

/// A memfd of `size` bytes.
fn memfd(size: u64) -> OwnedFd {
    let fd = rustix::fs::memfd_create("wayheap-hostile", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, size).unwrap();
    fd
}

/// How many fds the process `pid` holds.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

// ---- The four crashes ------------------------------------------------------------------------

/// wayland-backend 0.3.17: `unreachable!()` on a null interface name (abort).
#[test]
fn bind_with_a_null_interface_is_a_protocol_error() {
    assert_refused("hostile-bind", "null interface name", |conn, globals| {
        let registry = 2;
        let args = [
            Arg::Uint(globals[0].name),
            Arg::Str(None),
            Arg::Uint(1),
            Arg::NewId(conn.new_id()),
        ];
        conn.request(registry, 0, &args, &[]);
    });
}

/// Generated code unwraps non-nullable strings: `xdg_toplevel.set_title(null)` panicked.
#[test]
fn a_null_title_is_a_protocol_error() {
    assert_refused("hostile-title", "xdg_toplevel", |conn, globals| {
        let compositor = conn.bind_global(globals, "wl_compositor", 6);
        let wm_base = conn.bind_global(globals, "xdg_wm_base", 1);
        let surface = surface(conn, compositor);
        let (xdg_surface, toplevel) = (conn.new_id(), conn.peek_id() + 1);
        conn.request(
            wm_base,
            2,
            &[Arg::NewId(xdg_surface), Arg::Uint(surface)],
            &[],
        );
        conn.request(xdg_surface, 1, &[Arg::NewId(conn.peek_id())], &[]);
        conn.new_id();
        assert_eq!(toplevel, conn.peek_id());
        conn.request(toplevel - 1, 2, &[Arg::Str(None)], &[]);
    });
}

/// The project's own protocol: `wayheap_heap_hints_manager_v1.allocate` with a null heap name.
#[test]
fn a_null_heap_name_is_a_protocol_error() {
    assert_refused("hostile-heap-name", "null string", |conn, globals| {
        let manager = conn.bind_global(globals, "wayheap_heap_hints_manager_v1", 1);
        let args = [
            Arg::NewId(conn.peek_id()),
            Arg::Str(None),
            Arg::Uint(0),
            Arg::Uint(4096),
        ];
        conn.request(manager, 2, &args, &[]);
        conn.new_id();
    });
}

/// Smithay 0.7.0 posted the error, then unwrapped a zero `NonZeroUsize`.
#[test]
fn resizing_a_shm_pool_to_zero_or_less_is_a_protocol_error() {
    let mut comp = compositor("hostile-resize");
    for size in [0, -4096] {
        let (mut conn, globals) = connect(&comp);
        let shm = conn.bind_global(&globals, "wl_shm", 1);
        let fd = memfd(4096);
        let pool = conn.new_id();
        conn.request(
            shm,
            0,
            &[Arg::NewId(pool), Arg::Fd, Arg::Int(4096)],
            &[fd.as_fd()],
        );
        conn.request(pool, 2, &[Arg::Int(size)], &[]);
        assert_error(conn.outcome(), "must be positive", &comp);
    }
    assert_serves_others(&mut comp);
}

/// Smithay 0.7.0 panicked on `place_above(itself)` and accepted `place_below(itself)`; the
/// protocol makes both `bad_surface`.
#[test]
fn placing_a_subsurface_relative_to_itself_is_a_protocol_error() {
    let mut comp = compositor("hostile-place");
    for (opcode, name) in [(2u16, "place_above"), (3, "place_below")] {
        let (mut conn, globals) = connect(&comp);
        let compositor = conn.bind_global(&globals, "wl_compositor", 6);
        let subcompositor = conn.bind_global(&globals, "wl_subcompositor", 1);
        let parent = surface(&mut conn, compositor);
        let child = surface(&mut conn, compositor);
        let subsurface = conn.new_id();
        let args = [Arg::NewId(subsurface), Arg::Uint(child), Arg::Uint(parent)];
        conn.request(subcompositor, 1, &args, &[]);
        conn.request(subsurface, opcode, &[Arg::Uint(child)], &[]);
        assert_error(
            conn.outcome(),
            &format!("{name}: a sub-surface cannot be placed relative to itself"),
            &comp,
        );
    }
    assert_serves_others(&mut comp);
}

// ---- Malformed messages: an error, never a stalled connection ----------------------------------

#[test]
fn a_message_shorter_than_its_arguments_is_an_error_not_a_stall() {
    let mut comp = compositor("hostile-short");
    let (mut conn, _) = connect(&comp);
    // wl_display.get_registry without its new_id: a complete 8-byte message.
    conn.send_raw(1, 1, 8, &[], &[]);
    assert_error(conn.outcome(), "malformed message", &comp);
    assert_serves_others(&mut comp);
}

#[test]
fn a_string_running_past_its_message_is_an_error_not_a_stall() {
    assert_refused("hostile-string", "malformed message", |conn, globals| {
        // wl_registry.bind whose interface string claims 1000 bytes in a 24-byte message.
        let mut body = RawConnection::encode(&[Arg::Uint(globals[0].name)]);
        body.extend_from_slice(&1000u32.to_ne_bytes());
        body.extend_from_slice(b"wl_s");
        body.extend_from_slice(&1u32.to_ne_bytes());
        conn.send_raw(2, 0, (body.len() + 8) as u16, &body, &[]);
    });
}

#[test]
fn a_missing_fd_is_an_error_not_a_stall() {
    assert_refused(
        "hostile-no-fd",
        "file descriptor expected in wl_shm",
        |conn, globals| {
            let shm = conn.bind_global(globals, "wl_shm", 1);
            let pool = conn.new_id();
            conn.request(shm, 0, &[Arg::NewId(pool), Arg::Fd, Arg::Int(4096)], &[]);
        },
    );
}

#[test]
fn a_size_field_below_the_header_is_an_error() {
    assert_refused("hostile-size", "malformed message", |conn, _| {
        conn.send_raw(1, 0, 4, &5u32.to_ne_bytes(), &[]);
    });
}

// ---- Exhaustion: fds, objects, a connection that never ends ------------------------------------

/// Fds sent with requests that take none were parked without bound (5,600 for one client).
#[test]
fn surplus_fds_beyond_the_limit_disconnect_the_client_and_are_released() {
    let mut comp = compositor("hostile-fds");
    let baseline = fd_count(comp.pid());
    let (mut conn, _) = connect(&comp);
    let fds: Vec<OwnedFd> = (0..28).map(|_| memfd(4096)).collect();
    let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    // 12 syncs with 28 fds each: 336 fds that no request takes.
    for _ in 0..12 {
        let callback = conn.new_id();
        conn.request(1, 0, &[Arg::NewId(callback)], &borrowed);
    }
    assert_error(conn.outcome(), "too many file descriptors in flight", &comp);
    drop(conn);
    assert_fds_return_to(&comp, baseline);
    assert_serves_others(&mut comp);
}

/// A client that sends the compositor its own connection kept itself connected forever: the
/// compositor held the client's end, so it never saw the client leave.
#[test]
fn a_client_sending_its_own_connection_is_refused_and_cleaned_up() {
    let mut comp = compositor("hostile-own-socket");
    let baseline = fd_count(comp.pid());
    let (mut conn, _) = connect(&comp);
    let callback = conn.new_id();
    let own = conn.socket().try_clone_to_owned().unwrap();
    conn.request(1, 0, &[Arg::NewId(callback)], &[own.as_fd()]);
    assert_error(conn.outcome(), "connection to this display", &comp);
    drop((conn, own));
    assert_fds_return_to(&comp, baseline);
    assert_serves_others(&mut comp);
}

/// Each client may allocate ids up to 65536; beyond, a protocol error naming the limit.
#[test]
fn objects_beyond_the_per_client_limit_are_a_protocol_error() {
    let mut comp = compositor("hostile-objects");
    let (mut conn, globals) = connect(&comp);
    let compositor = conn.bind_global(&globals, "wl_compositor", 6);
    let mut batch = Vec::new();
    while conn.peek_id() <= 65_537 {
        let region = conn.new_id();
        batch.extend_from_slice(&compositor.to_ne_bytes());
        batch.extend_from_slice(&((12u32 << 16) | 1).to_ne_bytes());
        batch.extend_from_slice(&region.to_ne_bytes());
        if batch.len() >= 3000 {
            let _ = conn.send_bytes(&std::mem::take(&mut batch), &[]);
        }
    }
    let _ = conn.send_bytes(&batch, &[]);
    assert_error(
        conn.outcome_within(Duration::from_secs(30)),
        "at most 65536 objects",
        &comp,
    );
    assert_serves_others(&mut comp);
}

/// Waits until the compositor holds `baseline` fds again (the client's are closed).
fn assert_fds_return_to(comp: &Compositor, baseline: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut now = fd_count(comp.pid());
    while now > baseline && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        now = fd_count(comp.pid());
    }
    assert!(
        now <= baseline,
        "the compositor holds {now} fds, {baseline} before the client; log:\n{}",
        comp.log()
    );
}

/// Out of fds, `accept()` fails with EMFILE; Smithay's socket source returned that error to the
/// event loop, which ended the compositor. Now the waiting client is refused and the loop goes on.
#[test]
fn running_out_of_fds_refuses_clients_but_never_ends_the_compositor() {
    // A hard limit of 96 leaves RLIMIT_NOFILE nothing to raise.
    let mut comp = Compositor::start_with(
        "hostile-emfile",
        &wayheap_tests::compositor::headless_args("pixman"),
        &["prlimit", "--nofile=96:96", "--"],
    );
    let held = fd_count(comp.pid());
    let mut connections = Vec::new();
    let (mut refused, mut served) = (0, 0);
    for _ in 0..(96 - held + 16) {
        let mut conn = RawConnection::connect(&comp.runtime, &comp.socket).expect("connect");
        match conn.outcome_within(Duration::from_secs(2)) {
            Outcome::Alive => served += 1,
            Outcome::Closed => refused += 1,
            other => panic!("a client got {other:?}; log:\n{}", comp.log()),
        }
        connections.push(conn);
    }
    assert!(
        refused > 0,
        "never ran out of fds ({served} served); log:\n{}",
        comp.log()
    );
    assert!(
        comp.log().contains("out of file descriptors"),
        "log:\n{}",
        comp.log()
    );
    drop(connections);
    std::thread::sleep(Duration::from_millis(500));
    assert_serves_others(&mut comp);
}

/// Smithay 0.7.0 posted `invalid_dimensions` for a height of 0, then checked the planes anyway,
/// where `offset + stride` overflows (a panic in debug builds).
#[test]
fn a_dmabuf_of_zero_height_is_a_protocol_error() {
    let mut comp = compositor("hostile-dmabuf-size");
    let (mut conn, globals) = connect(&comp);
    let dmabuf = conn.bind_global(&globals, "zwp_linux_dmabuf_v1", 3);
    let params = conn.new_id();
    conn.request(dmabuf, 1, &[Arg::NewId(params)], &[]);
    let fd = memfd(4096);
    // add(fd, plane 0, offset 1, stride 0xffffffff, modifier LINEAR)
    let add = [
        Arg::Fd,
        Arg::Uint(0),
        Arg::Uint(1),
        Arg::Uint(u32::MAX),
        Arg::Uint(0),
        Arg::Uint(0),
    ];
    conn.request(params, 1, &add, &[fd.as_fd()]);
    // create(64, 0, ARGB8888, no flags)
    let create = [
        Arg::Int(64),
        Arg::Int(0),
        Arg::Uint(0x3432_5241),
        Arg::Uint(0),
    ];
    conn.request(params, 2, &create, &[]);
    assert_error(conn.outcome(), "width and height must be positive", &comp);
    assert_serves_others(&mut comp);
}

// ---- Found by wayheap-fuzz ------------------------------------------------------------------

/// An xdg_surface of a fresh surface, and a positioner with a size and an anchor rectangle.
fn xdg_surface_and_positioner(conn: &mut RawConnection, globals: &[Global]) -> (u32, u32) {
    let compositor = conn.bind_global(globals, "wl_compositor", 6);
    let wm_base = conn.bind_global(globals, "xdg_wm_base", 6);
    let surface = surface(conn, compositor);
    let xdg_surface = conn.new_id();
    conn.request(
        wm_base,
        2,
        &[Arg::NewId(xdg_surface), Arg::Uint(surface)],
        &[],
    );
    let positioner = conn.new_id();
    conn.request(wm_base, 1, &[Arg::NewId(positioner)], &[]);
    conn.request(positioner, 1, &[Arg::Int(10), Arg::Int(10)], &[]);
    conn.request(
        positioner,
        2,
        &[Arg::Int(0), Arg::Int(0), Arg::Int(1), Arg::Int(1)],
        &[],
    );
    (xdg_surface, positioner)
}

/// Smithay 0.7.0 accepted a popup whose parent is itself, then walked its parents forever (the
/// compositor hung, serving no one).
#[test]
fn a_popup_that_is_its_own_parent_is_a_protocol_error() {
    assert_refused(
        "hostile-popup-cycle",
        "lead back to itself",
        |conn, globals| {
            let (xdg_surface, positioner) = xdg_surface_and_positioner(conn, globals);
            let popup = conn.new_id();
            let args = [
                Arg::NewId(popup),
                Arg::Uint(xdg_surface),
                Arg::Uint(positioner),
            ];
            conn.request(xdg_surface, 2, &args, &[]);
        },
    );
}

/// Smithay 0.7.0 added positioner coordinates in i32: an anchor at 2^31 - 1 overflowed.
#[test]
fn positioner_coordinates_beyond_the_limit_are_a_protocol_error() {
    assert_refused(
        "hostile-positioner",
        "positioner coordinates are at most",
        |conn, globals| {
            let (_, positioner) = xdg_surface_and_positioner(conn, globals);
            let args = [
                Arg::Int(i32::MAX),
                Arg::Int(0),
                Arg::Int(i32::MAX),
                Arg::Int(1),
            ];
            conn.request(positioner, 2, &args, &[]);
        },
    );
}

/// Smithay's `Size` asserts (debug builds) against the negative sizes these carried.
#[test]
fn negative_sizes_are_refused_or_dropped_never_a_panic() {
    assert_refused(
        "hostile-geometry",
        "the size must be positive",
        |conn, globals| {
            let (xdg_surface, _) = xdg_surface_and_positioner(conn, globals);
            conn.request(xdg_surface, 1, &[Arg::NewId(conn.peek_id())], &[]);
            conn.new_id();
            conn.request(
                xdg_surface,
                3,
                &[Arg::Int(0), Arg::Int(0), Arg::Int(-5), Arg::Int(10)],
                &[],
            );
        },
    );
    assert_refused(
        "hostile-min-size",
        "sizes cannot be negative",
        |conn, globals| {
            let (xdg_surface, _) = xdg_surface_and_positioner(conn, globals);
            let toplevel = conn.new_id();
            conn.request(xdg_surface, 1, &[Arg::NewId(toplevel)], &[]);
            conn.request(toplevel, 8, &[Arg::Int(-1), Arg::Int(-1490182220)], &[]);
        },
    );
    // Damage, a region's rectangle and a positioner's parent size of negative size describe
    // nothing: dropped, and the client goes on.
    let mut comp = compositor("hostile-negative-damage");
    let (mut conn, globals) = connect(&comp);
    let compositor = conn.bind_global(&globals, "wl_compositor", 6);
    let surface = surface(&mut conn, compositor);
    conn.request(
        surface,
        2,
        &[Arg::Int(-64), Arg::Int(4), Arg::Int(-4096), Arg::Int(59)],
        &[],
    );
    conn.request(
        surface,
        9,
        &[Arg::Int(0), Arg::Int(0), Arg::Int(5), Arg::Int(-5)],
        &[],
    );
    let region = conn.new_id();
    conn.request(compositor, 1, &[Arg::NewId(region)], &[]);
    conn.request(
        region,
        1,
        &[Arg::Int(0), Arg::Int(0), Arg::Int(-1), Arg::Int(-1)],
        &[],
    );
    let (_, positioner) = xdg_surface_and_positioner(&mut conn, &globals);
    conn.request(positioner, 8, &[Arg::Int(-3), Arg::Int(7)], &[]);
    assert_eq!(conn.outcome(), Outcome::Alive, "log:\n{}", comp.log());
    assert_serves_others(&mut comp);
}

/// Smithay printed the format it refused; drm-fourcc's `Debug` panics on 0x80000000.
#[test]
fn the_big_endian_flag_as_a_format_is_a_protocol_error() {
    assert_refused(
        "hostile-format",
        "format 0x80000000 is not supported",
        |conn, globals| {
            let dmabuf = conn.bind_global(globals, "zwp_linux_dmabuf_v1", 3);
            let params = conn.new_id();
            conn.request(dmabuf, 1, &[Arg::NewId(params)], &[]);
            let create = [
                Arg::Int(64),
                Arg::Int(64),
                Arg::Uint(0x8000_0000),
                Arg::Uint(0),
            ];
            conn.request(params, 2, &create, &[]);
        },
    );
}
