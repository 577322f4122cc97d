//! wayheap-hints-client: a client of `wayheap_heap_hints_v1`, for the compositor tests.
//!
//! A fullscreen shm window (the `quadrants` pattern) with one desynchronised ARGB8888 subsurface
//! (the `gradient`) whose dma-buf comes from where the compositor's heap hints say (opened
//! directly, or allocated by the compositor when this process cannot open the heap node), or,
//! with `--ignore-hints` or without the global, from the policy's `scanout` usage as a
//! feedback-only client would. Prints `HINTS`, `ALLOC` and `READY` lines, then stays for
//! `--seconds`.
//!
//! `--delegate-until-refused MIB`: asks for delegated buffers of MIB until the compositor
//! refuses, prints `DELEGATED` and `REFUSED`, and holds them. `--hostile KIND` sends a request
//! the compositor must answer with a protocol error (`PROTOCOL-ERROR ...`, exit 3).

use std::time::{Duration, Instant};

use wayheap::client::hints::{
    HeapHintsCollector, HintChoice, HintError, HintedAllocator, ManagerData, Refusal,
    check_delegated, request_delegated, wait_delegated,
};
use wayheap::dmabuf::DmaBuf;
use wayheap::export::MemfdBuffer;
use wayheap::policy::Allocator;
use wayheap::protocols::heap_hints::client::{
    wayheap_heap_hints_manager_v1, wayheap_surface_heap_hints_v1,
};
use wayheap_tests::pattern;
use wayland_client::globals::registry_queue_init;
use wayland_client::protocol::{
    wl_buffer, wl_callback, wl_compositor, wl_shm, wl_subcompositor, wl_surface,
};
use wayland_client::{Connection, Dispatch, QueueHandle, delegate_noop};
use wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_dmabuf_v1;
use wayland_protocols::wp::viewporter::client::wp_viewporter;
use wayland_protocols::xdg::shell::client::xdg_wm_base;

const ARGB8888: u32 = u32::from_le_bytes(*b"AR24");

#[derive(Default)]
struct State {
    hints: HeapHintsCollector,
    hint_lists: Vec<Vec<wayheap::client::hints::HeapHint>>,
    frame_done: bool,
}

impl Dispatch<wayheap_surface_heap_hints_v1::WayheapSurfaceHeapHintsV1, ()> for State {
    fn event(
        st: &mut Self,
        _: &wayheap_surface_heap_hints_v1::WayheapSurfaceHeapHintsV1,
        event: wayheap_surface_heap_hints_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let Some(list) = st.hints.event(event) {
            let text: Vec<String> = list.iter().map(ToString::to_string).collect();
            println!("HINTS n={} [{}]", list.len(), text.join("; "));
            st.hint_lists.push(list.to_vec());
        }
    }
}

impl Dispatch<wl_callback::WlCallback, ()> for State {
    fn event(
        st: &mut Self,
        _: &wl_callback::WlCallback,
        event: wl_callback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { .. } = event {
            st.frame_done = true;
        }
    }
}

// Buffers are made with `create_immed`: no answer to handle.
impl wayheap::client::BufferParamsHandler for State {}
wayheap::delegate_buffer_params!(State);
// The registry, and wl_compositor, wl_surface, wl_subcompositor, wl_subsurface, wl_shm,
// wl_shm_pool, wp_viewporter and wp_viewport, all ignored.
wayheap::delegate_client_globals!(State);
delegate_noop!(State: ignore wl_buffer::WlBuffer);
delegate_noop!(State: ignore zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1);
wayheap::delegate_heap_hints_client!(State);
wayheap::delegate_window!(State);

struct Options {
    sub: (u32, u32, i32, i32),
    ignore_hints: bool,
    seconds: u64,
    delegate_until_refused: Option<u64>,
    close_after: Option<u64>,
    sub_scale: Option<(i32, i32)>,
    hostile: Option<String>,
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "wayheap-hints-client: {msg}\nusage: wayheap-hints-client [--sub WxH@X,Y] [--ignore-hints] [--seconds N] \
         [--delegate-until-refused MIB [--close-after SECS]] [--sub-scale WxH] [--hostile unknown-heap|zero-size|huge-size|double-hints]"
    );
    std::process::exit(2)
}

fn options() -> Options {
    let mut o = Options {
        sub: (256, 192, 100, 80),
        ignore_hints: false,
        seconds: 60,
        delegate_until_refused: None,
        close_after: None,
        sub_scale: None,
        hostile: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--sub" => {
                let v = val();
                let parsed = v.split_once('@').and_then(|(size, at)| {
                    let (w, h) = size.split_once('x')?;
                    let (x, y) = at.split_once(',')?;
                    Some((
                        w.parse().ok()?,
                        h.parse().ok()?,
                        x.parse().ok()?,
                        y.parse().ok()?,
                    ))
                });
                o.sub = parsed.unwrap_or_else(|| usage("--sub WxH@X,Y"));
            }
            "--ignore-hints" => o.ignore_hints = true,
            "--seconds" => o.seconds = val().parse().unwrap_or_else(|_| usage("--seconds N")),
            "--delegate-until-refused" => {
                o.delegate_until_refused = Some(
                    val()
                        .parse()
                        .unwrap_or_else(|_| usage("--delegate-until-refused MIB")),
                )
            }
            "--close-after" => {
                o.close_after = Some(
                    val()
                        .parse()
                        .unwrap_or_else(|_| usage("--close-after SECS")),
                )
            }
            "--sub-scale" => {
                let v = val();
                o.sub_scale = v
                    .split_once('x')
                    .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
                if o.sub_scale.is_none() {
                    usage("--sub-scale WxH");
                }
            }
            "--hostile" => o.hostile = Some(val()),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    o
}

fn protocol_error(conn: &Connection, e: impl std::fmt::Display) -> ! {
    println!(
        "PROTOCOL-ERROR {}",
        conn.protocol_error().map_or(e.to_string(), |p| format!(
            "{} {}: {}",
            p.object_interface, p.code, p.message
        ))
    );
    std::process::exit(3)
}

fn main() {
    let o = options();
    let conn =
        Connection::connect_to_env().unwrap_or_else(|e| usage(&format!("no compositor: {e}")));
    let (globals, mut queue) = registry_queue_init::<State>(&conn).expect("registry");
    let qh = queue.handle();
    let compositor: wl_compositor::WlCompositor =
        globals.bind(&qh, 4..=6, ()).expect("wl_compositor");
    let wm: xdg_wm_base::XdgWmBase = globals.bind(&qh, 1..=6, ()).expect("xdg_wm_base");
    let shm: wl_shm::WlShm = globals.bind(&qh, 1..=1, ()).expect("wl_shm");
    let subcompositor: wl_subcompositor::WlSubcompositor =
        globals.bind(&qh, 1..=1, ()).expect("wl_subcompositor");
    let linux_dmabuf = wayheap::client::bind_linux_dmabuf(&globals, &qh)
        .unwrap_or_else(|e| usage(&format!("no linux-dmabuf: {e}")));
    let manager_data = ManagerData::default();
    let manager: Option<wayheap_heap_hints_manager_v1::WayheapHeapHintsManagerV1> =
        globals.bind(&qh, 1..=1, manager_data.clone()).ok();
    println!(
        "GLOBAL heap_hints={}",
        if manager.is_some() { "yes" } else { "no" }
    );
    let mut st = State::default();

    let window = wayheap::client::window::Window::new(
        &compositor,
        &wm,
        &qh,
        "wayheap-hints-client",
        None,
        false,
    );
    while window.configured().is_none() {
        queue
            .blocking_dispatch(&mut st)
            .expect("waiting for configure");
    }
    let (w, h) = window.size_or((640, 480));
    let surface = window.surface.clone();
    let sub_surface = compositor.create_surface(&qh, ());
    let subsurface = subcompositor.get_subsurface(&sub_surface, &surface, &qh, ());
    subsurface.set_desync();
    subsurface.set_position(o.sub.2, o.sub.3);
    // Scaled by wp_viewporter: planes that cannot scale leave it to composition.
    let _viewport = o.sub_scale.map(|(w, h)| {
        let viewporter: wp_viewporter::WpViewporter =
            globals.bind(&qh, 1..=1, ()).expect("wp_viewporter");
        let viewport = viewporter.get_viewport(&sub_surface, &qh, ());
        viewport.set_destination(w, h);
        viewport
    });

    if let (Some(kind), Some(m)) = (&o.hostile, &manager) {
        hostile(kind, m, &sub_surface, &qh);
        match queue
            .roundtrip(&mut st)
            .and_then(|_| queue.roundtrip(&mut st))
        {
            Ok(_) => {
                println!("NO-ERROR");
                std::process::exit(0)
            }
            Err(e) => protocol_error(&conn, e),
        }
    }

    // The hints of the subsurface (its first list arrives right away).
    let _hints_object = manager
        .as_ref()
        .filter(|_| !o.ignore_hints)
        .map(|m| m.get_surface_hints(&sub_surface, &qh, ()));
    if _hints_object.is_some() {
        while st.hint_lists.is_empty() {
            queue
                .blocking_dispatch(&mut st)
                .unwrap_or_else(|e| protocol_error(&conn, e));
        }
    }

    if let Some(mib) = o.delegate_until_refused {
        delegate_until_refused(&o, mib, manager.as_ref(), &mut queue, &mut st, &conn);
    }

    let (sw, sh) = (o.sub.0, o.sub.1);
    let stride = (sw * 4).div_ceil(256) * 256;
    let len = (stride * sh) as usize;
    let alloc = HintedAllocator::new(Allocator::from_env().expect("policy"));
    let choice = if o.ignore_hints {
        None
    } else {
        alloc.choose(st.hint_lists.last().map(Vec::as_slice))
    };
    let (mut buf, provider, why): (DmaBuf, String, String) = match &choice {
        Some(HintChoice::Delegate(hint)) => {
            let m = manager
                .as_ref()
                .expect("a delegated hint comes from the global");
            let hints = st.hint_lists.last().cloned().unwrap_or_default();
            check_delegated(&manager_data, &hints, &hint.heap, len as u64)
                .unwrap_or_else(|e| usage(&e));
            let (_obj, pending) = request_delegated(m, &hint.heap, len as u64, &qh);
            let buf = wait_delegated(&mut queue, &mut st, &pending).unwrap_or_else(|e| {
                usage(&format!(
                    "delegated allocation: {}",
                    wayheap::error::chain(&e)
                ))
            });
            (buf, hint.heap.clone(), format!("delegated: {hint}"))
        }
        other => {
            let (buf, provider) = alloc
                .allocate(other.as_ref(), "scanout", len)
                .unwrap_or_else(|e| usage(&format!("allocation: {}", wayheap::error::chain(&e))));
            let why = match other {
                Some(c) => format!("hint: {c}"),
                None => "no usable hint: policy usage scanout".to_owned(),
            };
            (buf, provider, why)
        }
    };
    println!(
        "ALLOC provider={provider} delegated={} why={why:?}",
        matches!(choice, Some(HintChoice::Delegate(_)))
    );
    {
        let mut map = buf.map().expect("mapping the dma-buf");
        let mut bytes = map.write().expect("DMA_BUF_IOCTL_SYNC");
        pattern::fill(&mut bytes, stride as usize, sw, sh, pattern::gradient);
    }
    let _ = &mut buf;
    let spec = wayheap::client::BufferSpec {
        width: sw as i32,
        height: sh as i32,
        format: wayheap::layout::Fourcc(ARGB8888),
        modifier: 0,
        planes: vec![wayheap::client::PlaneSpec {
            fd: buf.fd(),
            offset: 0,
            stride,
        }],
        sampling_device: None,
    };
    let sub_buffer = spec.create_immed(&linux_dmabuf, &qh, ());

    // The main surface: shm quadrants.
    let mut mem = MemfdBuffer::new((w * h * 4) as usize).expect("memfd");
    pattern::fill(&mut mem, (w * 4) as usize, w, h, |x, y| {
        pattern::quadrants(x, y, w, h)
    });
    let pool = shm.create_pool(mem.memfd(), (w * h * 4) as i32, &qh, ());
    let main_buffer = pool.create_buffer(
        0,
        w as i32,
        h as i32,
        (w * 4) as i32,
        wl_shm::Format::Argb8888,
        &qh,
        (),
    );
    pool.destroy();
    sub_surface.attach(Some(&sub_buffer), 0, 0);
    sub_surface.damage_buffer(0, 0, sw as i32, sh as i32);
    sub_surface.commit();
    surface.attach(Some(&main_buffer), 0, 0);
    surface.damage_buffer(0, 0, w as i32, h as i32);
    surface.frame(&qh, ());
    surface.commit();
    while !st.frame_done {
        queue
            .blocking_dispatch(&mut st)
            .unwrap_or_else(|e| protocol_error(&conn, e));
    }
    println!("READY");
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    while Instant::now() < deadline {
        if let Err(e) = queue.roundtrip(&mut st) {
            protocol_error(&conn, e);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn delegate_until_refused(
    o: &Options,
    mib: u64,
    manager: Option<&wayheap_heap_hints_manager_v1::WayheapHeapHintsManagerV1>,
    queue: &mut wayland_client::EventQueue<State>,
    st: &mut State,
    conn: &Connection,
) -> ! {
    let m = manager.unwrap_or_else(|| usage("the compositor has no wayheap_heap_hints_v1"));
    let heap = st
        .hint_lists
        .last()
        .and_then(|l| l.iter().find(|h| h.delegated))
        .map(|h| h.heap.clone())
        .unwrap_or_else(|| usage("no hinted heap offers delegated allocation"));
    let qh = queue.handle();
    let mut held = Vec::new();
    fill_until_refused(m, &heap, mib, &mut held, queue, st, conn, &qh);
    if let Some(secs) = o.close_after {
        // Keep them a while (the compositor counts them), then close every fd and mapping:
        // the quota must come back while the connection stays.
        hold(queue, st, conn, Duration::from_secs(secs));
        held.clear();
        println!("CLOSED");
        hold(queue, st, conn, Duration::from_secs(2));
        fill_until_refused(m, &heap, mib, &mut held, queue, st, conn, &qh);
    }
    // Hold the buffers (the compositor keeps counting them) until told to go.
    hold(queue, st, conn, Duration::from_secs(o.seconds));
    drop(held);
    std::process::exit(0)
}

/// Roundtrips for `time`, so the compositor's events (and a protocol error) are seen.
fn hold(
    queue: &mut wayland_client::EventQueue<State>,
    st: &mut State,
    conn: &Connection,
    time: Duration,
) {
    let deadline = Instant::now() + time;
    while Instant::now() < deadline {
        if let Err(e) = queue.roundtrip(st) {
            protocol_error(conn, e);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Asks for `mib` MiB of `heap` until the compositor refuses; prints `DELEGATED` and `REFUSED`.
#[allow(clippy::too_many_arguments)]
fn fill_until_refused(
    m: &wayheap_heap_hints_manager_v1::WayheapHeapHintsManagerV1,
    heap: &str,
    mib: u64,
    held: &mut Vec<DmaBuf>,
    queue: &mut wayland_client::EventQueue<State>,
    st: &mut State,
    conn: &Connection,
    qh: &QueueHandle<State>,
) {
    loop {
        let (_obj, pending) = request_delegated(m, heap, mib << 20, qh);
        match wait_delegated(queue, st, &pending) {
            Ok(buf) => held.push(buf),
            Err(HintError::Refused {
                reason, message, ..
            }) => {
                let bytes: usize = held.iter().map(DmaBuf::size).sum();
                println!("DELEGATED n={} bytes={bytes} heap={heap}", held.len());
                println!(
                    "REFUSED reason={} message={message:?}",
                    match reason {
                        Refusal::QuotaExceeded => "quota_exceeded".to_owned(),
                        Refusal::NotAllowed => "not_allowed".to_owned(),
                        Refusal::HeapFull => "heap_full".to_owned(),
                        Refusal::Unavailable => "unavailable".to_owned(),
                        Refusal::Unknown(r) => format!("unknown {r}"),
                    }
                );
                return;
            }
            Err(e) => protocol_error(conn, e),
        }
    }
}

fn hostile(
    kind: &str,
    m: &wayheap_heap_hints_manager_v1::WayheapHeapHintsManagerV1,
    surface: &wl_surface::WlSurface,
    qh: &QueueHandle<State>,
) {
    match kind {
        "unknown-heap" => {
            let _ = request_delegated(m, "no-such-heap", 4096, qh);
        }
        "zero-size" => {
            let _ = request_delegated(m, "system", 0, qh);
        }
        "huge-size" => {
            let _ = request_delegated(m, "system", u64::MAX, qh);
        }
        "double-hints" => {
            let _a = m.get_surface_hints(surface, qh, ());
            let _b = m.get_surface_hints(surface, qh, ());
        }
        other => usage(&format!("unknown --hostile kind {other:?}")),
    }
}
