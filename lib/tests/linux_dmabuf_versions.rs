//! linux-dmabuf version negotiation against a minimal in-process server that offers version 3,
//! 5 or 6: the client binds the highest common version, reads v6 feedback without
//! `main_device` (the sampling tranche names the device), and sends `set_sampling_device` only
//! where the version has it. No kernel is involved: this is protocol logic; the dma-buf itself
//! is a memfd the fake server never imports.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wayheap::client::{
    BufferDescription, BufferPath, BufferSpec, FeedbackCollector, PlaneSpec, bind_linux_dmabuf,
    decide, default_feedback,
};
use wayheap::layout::Fourcc;
use wayland_client::globals::{GlobalListContents, registry_queue_init};
use wayland_client::protocol::{wl_buffer, wl_registry};
use wayland_client::{Connection, Dispatch, Proxy, QueueHandle, delegate_noop};
use wayland_protocols::wp::linux_dmabuf::zv1::client as c;
use wayland_protocols::wp::linux_dmabuf::zv1::server as s;
use wayland_server::backend::ClientData;
use wayland_server::protocol::wl_buffer as swl_buffer;
use wayland_server::{DataInit, Display, GlobalDispatch, New, Resource};

const DISPLAY_DEV: u64 = 5;
const GPU_DEV: u64 = 7;

/// What the fake compositor saw.
#[derive(Debug, Default)]
struct Seen {
    bound_version: Option<u32>,
    sampling_device: Option<Vec<u8>>,
    buffers: u32,
}

struct Server {
    seen: Arc<Mutex<Seen>>,
    /// Version 3: list ARGB8888 LINEAR with a `modifier` event on bind (else list nothing, as
    /// a compositor that cannot import dma-bufs does).
    list_v3: bool,
}

struct Nobody;
impl ClientData for Nobody {}

impl GlobalDispatch<s::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1, ()> for Server {
    fn bind(
        st: &mut Self,
        _: &wayland_server::DisplayHandle,
        _: &wayland_server::Client,
        resource: New<s::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1>,
        _: &(),
        init: &mut DataInit<'_, Self>,
    ) {
        let d = init.init(resource, ());
        st.seen.lock().unwrap().bound_version = Some(d.version());
        if d.version() == 3 && st.list_v3 {
            d.modifier(u32::from_le_bytes(*b"AR24"), 0, 0);
        }
    }
}

impl wayland_server::Dispatch<s::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1, ()> for Server {
    fn request(
        _: &mut Self,
        _: &wayland_server::Client,
        d: &s::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
        request: s::zwp_linux_dmabuf_v1::Request,
        _: &(),
        _: &wayland_server::DisplayHandle,
        init: &mut DataInit<'_, Self>,
    ) {
        use s::zwp_linux_dmabuf_v1::Request;
        match request {
            Request::CreateParams { params_id } => {
                init.init(params_id, ());
            }
            Request::GetDefaultFeedback { id } => {
                let f = init.init(id, ());
                // One entry: AR24 LINEAR.
                let mut table = Fourcc::ARGB8888.0.to_ne_bytes().to_vec();
                table.extend([0; 12]);
                let fd =
                    rustix::fs::memfd_create("table", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
                rustix::io::write(&fd, &table).unwrap();
                f.format_table(fd.as_fd(), 16);
                if d.version() < 6 {
                    f.main_device(DISPLAY_DEV.to_ne_bytes().to_vec());
                }
                // A scan-out tranche for the display, then the sampling tranche for the GPU.
                for (dev, flags) in [
                    (
                        DISPLAY_DEV,
                        s::zwp_linux_dmabuf_feedback_v1::TrancheFlags::Scanout,
                    ),
                    (
                        GPU_DEV,
                        s::zwp_linux_dmabuf_feedback_v1::TrancheFlags::Sampling,
                    ),
                ] {
                    if d.version() < 6 && dev == GPU_DEV {
                        continue;
                    }
                    f.tranche_target_device(dev.to_ne_bytes().to_vec());
                    f.tranche_formats(vec![0, 0]);
                    f.tranche_flags(flags);
                    f.tranche_done();
                }
                f.done();
            }
            _ => {}
        }
    }
}

impl wayland_server::Dispatch<s::zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1, ()>
    for Server
{
    fn request(
        st: &mut Self,
        _: &wayland_server::Client,
        _: &s::zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1,
        request: s::zwp_linux_buffer_params_v1::Request,
        _: &(),
        _: &wayland_server::DisplayHandle,
        init: &mut DataInit<'_, Self>,
    ) {
        use s::zwp_linux_buffer_params_v1::Request;
        match request {
            Request::SetSamplingDevice { device } => {
                st.seen.lock().unwrap().sampling_device = Some(device);
            }
            Request::CreateImmed { buffer_id, .. } => {
                init.init(buffer_id, ());
                st.seen.lock().unwrap().buffers += 1;
            }
            _ => {}
        }
    }
}

impl wayland_server::Dispatch<s::zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1, ()>
    for Server
{
    fn request(
        _: &mut Self,
        _: &wayland_server::Client,
        _: &s::zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1,
        _: s::zwp_linux_dmabuf_feedback_v1::Request,
        _: &(),
        _: &wayland_server::DisplayHandle,
        _: &mut DataInit<'_, Self>,
    ) {
    }
}

impl wayland_server::Dispatch<swl_buffer::WlBuffer, ()> for Server {
    fn request(
        _: &mut Self,
        _: &wayland_server::Client,
        _: &swl_buffer::WlBuffer,
        _: swl_buffer::Request,
        _: &(),
        _: &wayland_server::DisplayHandle,
        _: &mut DataInit<'_, Self>,
    ) {
    }
}

/// Client state: collects the default feedback.
#[derive(Default)]
struct ClientState {
    collector: FeedbackCollector,
    feedback: Option<wayheap::client::Feedback>,
    modifiers: wayheap::client::ModifierEvents,
}

impl Dispatch<c::zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1, ()> for ClientState {
    fn event(
        st: &mut Self,
        _: &c::zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1,
        event: c::zwp_linux_dmabuf_feedback_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let Some(done) = st.collector.event(event) {
            st.feedback = Some(done.expect("valid feedback"));
        }
    }
}

impl Dispatch<c::zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1, BufferDescription>
    for ClientState
{
    fn event(
        _: &mut Self,
        _: &c::zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1,
        _: c::zwp_linux_buffer_params_v1::Event,
        _: &BufferDescription,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for ClientState {
    fn event(
        _: &mut Self,
        _: &wl_registry::WlRegistry,
        _: wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}
impl Dispatch<c::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1, ()> for ClientState {
    fn event(
        st: &mut Self,
        _: &c::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
        event: c::zwp_linux_dmabuf_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        st.modifiers.event(event);
    }
}
delegate_noop!(ClientState: ignore wl_buffer::WlBuffer);

/// What the client ended up with against a server offering `offered`.
struct Outcome {
    client_version: u32,
    seen: Seen,
    decision: wayheap::client::Decision,
}

fn run(offered: u32) -> Outcome {
    run_with(offered, true)
}

fn run_with(offered: u32, list_v3: bool) -> Outcome {
    let (server_end, client_end) = UnixStream::pair().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let (seen, stop) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut display = Display::<Server>::new().unwrap();
            let mut dh = display.handle();
            dh.create_global::<Server, s::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1, ()>(offered, ());
            dh.insert_client(server_end, Arc::new(Nobody)).unwrap();
            let mut st = Server { seen, list_v3 };
            while !stop.load(Ordering::Relaxed) {
                display.dispatch_clients(&mut st).unwrap();
                display.flush_clients().unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };

    let conn = Connection::from_socket(client_end).unwrap();
    let (globals, mut queue) = registry_queue_init::<ClientState>(&conn).unwrap();
    let qh = queue.handle();
    let mut st = ClientState::default();
    let dmabuf = bind_linux_dmabuf(&globals, &qh).expect("bind");
    let client_version = dmabuf.version();
    let _feedback = default_feedback(&dmabuf, &qh, ());
    queue.roundtrip(&mut st).unwrap();
    queue.roundtrip(&mut st).unwrap();
    let decision = if client_version < 4 {
        wayheap::client::decide_v3(&st.modifiers, Fourcc::ARGB8888)
    } else {
        decide(st.feedback.as_ref(), Fourcc::ARGB8888)
    };
    if decision.path == BufferPath::Shm {
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap();
        let seen = std::mem::take(&mut *seen.lock().unwrap());
        return Outcome {
            client_version,
            seen,
            decision,
        };
    }

    let memfd = rustix::fs::memfd_create("plane", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&memfd, 256 * 64).unwrap();
    let spec = BufferSpec {
        width: 64,
        height: 64,
        format: Fourcc::ARGB8888,
        modifier: 0,
        planes: vec![PlaneSpec {
            fd: memfd.as_fd(),
            offset: 0,
            stride: 256,
        }],
        sampling_device: decision.device,
    };
    let _buffer = spec.create_immed(&dmabuf, &qh, ());
    queue.roundtrip(&mut st).unwrap();

    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    Outcome {
        client_version,
        seen,
        decision,
    }
}

#[test]
fn version_6_is_bound_and_the_sampling_tranche_device_is_sent_with_set_sampling_device() {
    let o = run(6);
    assert_eq!((o.client_version, o.seen.bound_version), (6, Some(6)));
    // Feedback without main_device: the device is the sampling tranche's.
    assert_eq!(o.decision.device, Some(GPU_DEV));
    assert_eq!(o.decision.path, BufferPath::Scanout, "{}", o.decision);
    assert_eq!(
        o.seen.sampling_device.as_deref(),
        Some(&GPU_DEV.to_ne_bytes()[..])
    );
    assert_eq!(o.seen.buffers, 1);
}

#[test]
fn version_5_is_bound_the_main_device_decides_and_no_v6_request_is_sent() {
    let o = run(5);
    assert_eq!((o.client_version, o.seen.bound_version), (5, Some(5)));
    assert_eq!(o.decision.device, Some(DISPLAY_DEV));
    assert_eq!(o.decision.path, BufferPath::Scanout);
    assert_eq!(
        o.seen.sampling_device, None,
        "set_sampling_device is v6 only"
    );
    assert_eq!(o.seen.buffers, 1);
}

#[test]
fn version_3_has_no_feedback_and_listed_dmabufs_are_sampled() {
    let o = run(3);
    assert_eq!((o.client_version, o.seen.bound_version), (3, Some(3)));
    assert_eq!(o.decision.path, BufferPath::Sampling, "{}", o.decision);
    assert!(o.decision.reason.contains("v3 lists"), "{}", o.decision);
    assert_eq!(o.seen.buffers, 1);
}

/// A version 3 compositor that lists no format (one that cannot import dma-bufs, e.g. GLES
/// without EGL_EXT_image_dma_buf_import) gets wl_shm, not a dma-buf it would reject with a
/// protocol error.
#[test]
fn version_3_listing_nothing_gets_shm_and_no_dmabuf_is_sent() {
    let o = run_with(3, false);
    assert_eq!(o.decision.path, BufferPath::Shm, "{}", o.decision);
    assert!(
        o.decision.reason.contains("0 formats listed"),
        "{}",
        o.decision
    );
    assert_eq!(o.seen.buffers, 0);
}

#[test]
fn version_2_is_refused() {
    let (server_end, client_end) = UnixStream::pair().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut display = Display::<Server>::new().unwrap();
            let mut dh = display.handle();
            dh.create_global::<Server, s::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1, ()>(2, ());
            dh.insert_client(server_end, Arc::new(Nobody)).unwrap();
            let mut st = Server {
                list_v3: true,
                seen: Arc::default(),
            };
            while !stop.load(Ordering::Relaxed) {
                display.dispatch_clients(&mut st).unwrap();
                display.flush_clients().unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let conn = Connection::from_socket(client_end).unwrap();
    let (globals, queue) = registry_queue_init::<ClientState>(&conn).unwrap();
    let err = bind_linux_dmabuf(&globals, &queue.handle()).unwrap_err();
    assert!(
        matches!(err, wayland_client::globals::BindError::UnsupportedVersion),
        "{err:?}"
    );
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
}
