//! The client delegates against a minimal in-process compositor: feedback delivered through
//! `delegate_dmabuf_feedback!` reaches the handler with its target (each object collected on its
//! own, even when the compositor interleaves them), `create` answers delivered through
//! `delegate_buffer_params!` become the wl_buffer or the `BufferError` naming the parameters,
//! and `ClientGlobals` decides right for linux-dmabuf 3 to 6 and for none. No kernel is
//! involved: the dma-buf is a memfd the fake compositor never imports.

#![cfg(feature = "client")]

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use wayheap::client::{
    BufferDescription, BufferError, BufferParamsHandler, BufferPath, BufferSpec, ClientGlobals,
    CreatedBuffer, Feedback, FeedbackError, FeedbackHandler, FeedbackTarget, FormatModifier,
    PlaneSpec,
};
use wayheap::layout::Fourcc;
use wayland_client::globals::registry_queue_init;
use wayland_client::protocol::wl_buffer::WlBuffer;
use wayland_client::{Connection, EventQueue, Proxy};
use wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1;
use wayland_protocols::wp::linux_dmabuf::zv1::server as s;
use wayland_protocols::xdg::shell::server::xdg_wm_base as sxdg_wm_base;
use wayland_server::backend::ClientData;
use wayland_server::protocol::{
    wl_buffer as swl_buffer, wl_compositor as swl_compositor, wl_surface as swl_surface,
};
use wayland_server::{DataInit, Display, DisplayHandle, GlobalDispatch, New, Resource};

const DEV: u64 = 5;
const XR24: u32 = Fourcc::XRGB8888.0;
const AR24: u32 = Fourcc::ARGB8888.0;

// ---------------------------------------------------------------------------------------------
// The fake compositor.

/// What the fake compositor offers.
#[derive(Debug, Clone, Copy)]
struct Offer {
    /// linux-dmabuf's version (`None`: no such global).
    linux_dmabuf: Option<u32>,
    /// Version 3: list AR24 LINEAR on bind.
    list_v3: bool,
    wm_base: bool,
}

/// What the fake compositor saw.
#[derive(Debug, Default)]
struct Seen {
    params_destroyed: u32,
    buffers_destroyed: u32,
}

struct Server {
    offer: Offer,
    seen: Arc<Mutex<Seen>>,
    /// Feedback objects, answered together (interleaved) once three were asked for.
    feedbacks: Vec<s::zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1>,
}

struct Nobody;
impl ClientData for Nobody {}

fn table(entries: &[u32]) -> (OwnedFd, u32) {
    let mut bytes = Vec::new();
    for format in entries {
        bytes.extend(format.to_ne_bytes());
        bytes.extend([0; 12]); // padding, LINEAR
    }
    let fd = rustix::fs::memfd_create("table", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::io::write(&fd, &bytes).unwrap();
    (fd, bytes.len() as u32)
}

impl Server {
    /// Three feedback objects' events, interleaved: the first (a surface's) has XR24 and AR24
    /// and scans out XR24; the second (default) samples AR24; the third refers past its table.
    fn answer_feedbacks(&mut self) {
        use s::zwp_linux_dmabuf_feedback_v1::TrancheFlags;
        let f = std::mem::take(&mut self.feedbacks);
        let tables = [table(&[XR24, AR24]), table(&[AR24]), table(&[AR24])];
        for (f, (fd, size)) in f.iter().zip(&tables) {
            f.format_table(fd.as_fd(), *size);
        }
        for f in &f {
            f.main_device(DEV.to_ne_bytes().to_vec());
            f.tranche_target_device(DEV.to_ne_bytes().to_vec());
        }
        f[0].tranche_formats(vec![0, 0]);
        f[1].tranche_formats(vec![0, 0]);
        f[2].tranche_formats(vec![5, 0]);
        f[0].tranche_flags(TrancheFlags::Scanout);
        f[1].tranche_flags(TrancheFlags::empty());
        f[2].tranche_flags(TrancheFlags::empty());
        for f in &f {
            f.tranche_done();
        }
        for f in &f {
            f.done();
        }
    }
}

impl GlobalDispatch<s::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1, ()> for Server {
    fn bind(
        st: &mut Self,
        _: &DisplayHandle,
        _: &wayland_server::Client,
        resource: New<s::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1>,
        _: &(),
        init: &mut DataInit<'_, Self>,
    ) {
        let d = init.init(resource, ());
        if d.version() == 3 && st.offer.list_v3 {
            d.modifier(AR24, 0, 0);
        }
    }
}

impl wayland_server::Dispatch<s::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1, ()> for Server {
    fn request(
        st: &mut Self,
        _: &wayland_server::Client,
        _: &s::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
        request: s::zwp_linux_dmabuf_v1::Request,
        _: &(),
        _: &DisplayHandle,
        init: &mut DataInit<'_, Self>,
    ) {
        use s::zwp_linux_dmabuf_v1::Request;
        match request {
            Request::CreateParams { params_id } => {
                init.init(params_id, ());
            }
            Request::GetDefaultFeedback { id } | Request::GetSurfaceFeedback { id, .. } => {
                st.feedbacks.push(init.init(id, ()));
                if st.feedbacks.len() == 3 {
                    st.answer_feedbacks();
                }
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
        client: &wayland_server::Client,
        params: &s::zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1,
        request: s::zwp_linux_buffer_params_v1::Request,
        _: &(),
        dh: &DisplayHandle,
        _: &mut DataInit<'_, Self>,
    ) {
        use s::zwp_linux_buffer_params_v1::Request;
        match request {
            // 13 pixels wide is what this compositor refuses.
            Request::Create { width: 13, .. } => params.failed(),
            Request::Create { .. } => {
                let buffer = client
                    .create_resource::<swl_buffer::WlBuffer, (), Server>(dh, 1, ())
                    .unwrap();
                params.created(&buffer);
                // As if it had been shown and let go.
                buffer.release();
            }
            Request::Destroy => st.seen.lock().unwrap().params_destroyed += 1,
            _ => {}
        }
    }
}

/// Requests that need no answer.
macro_rules! ignore_requests {
    ($($iface:ty),*) => {$(
        impl wayland_server::Dispatch<$iface, ()> for Server {
            fn request(
                _: &mut Self,
                _: &wayland_server::Client,
                _: &$iface,
                _: <$iface as Resource>::Request,
                _: &(),
                _: &DisplayHandle,
                _: &mut DataInit<'_, Self>,
            ) {
            }
        }
    )*};
}
ignore_requests!(
    s::zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1,
    swl_surface::WlSurface,
    sxdg_wm_base::XdgWmBase
);

impl wayland_server::Dispatch<swl_buffer::WlBuffer, ()> for Server {
    fn request(
        st: &mut Self,
        _: &wayland_server::Client,
        _: &swl_buffer::WlBuffer,
        request: swl_buffer::Request,
        _: &(),
        _: &DisplayHandle,
        _: &mut DataInit<'_, Self>,
    ) {
        if let swl_buffer::Request::Destroy = request {
            st.seen.lock().unwrap().buffers_destroyed += 1;
        }
    }
}

impl GlobalDispatch<swl_compositor::WlCompositor, ()> for Server {
    fn bind(
        _: &mut Self,
        _: &DisplayHandle,
        _: &wayland_server::Client,
        resource: New<swl_compositor::WlCompositor>,
        _: &(),
        init: &mut DataInit<'_, Self>,
    ) {
        init.init(resource, ());
    }
}

impl wayland_server::Dispatch<swl_compositor::WlCompositor, ()> for Server {
    fn request(
        _: &mut Self,
        _: &wayland_server::Client,
        _: &swl_compositor::WlCompositor,
        request: swl_compositor::Request,
        _: &(),
        _: &DisplayHandle,
        init: &mut DataInit<'_, Self>,
    ) {
        if let swl_compositor::Request::CreateSurface { id } = request {
            init.init(id, ());
        }
    }
}

impl GlobalDispatch<sxdg_wm_base::XdgWmBase, ()> for Server {
    fn bind(
        _: &mut Self,
        _: &DisplayHandle,
        _: &wayland_server::Client,
        resource: New<sxdg_wm_base::XdgWmBase>,
        _: &(),
        init: &mut DataInit<'_, Self>,
    ) {
        init.init(resource, ());
    }
}

/// A running fake compositor and the client's end of its connection.
struct Running {
    conn: Connection,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn serve(offer: Offer) -> Running {
    let (server_end, client_end) = UnixStream::pair().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (seen, stop) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut display = Display::<Server>::new().unwrap();
            let mut dh = display.handle();
            dh.create_global::<Server, swl_compositor::WlCompositor, ()>(5, ());
            if offer.wm_base {
                dh.create_global::<Server, sxdg_wm_base::XdgWmBase, ()>(1, ());
            }
            if let Some(version) = offer.linux_dmabuf {
                dh.create_global::<Server, s::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1, ()>(
                    version,
                    (),
                );
            }
            dh.insert_client(server_end, Arc::new(Nobody)).unwrap();
            let mut st = Server {
                offer,
                seen,
                feedbacks: Vec::new(),
            };
            while !stop.load(Ordering::Relaxed) {
                display.dispatch_clients(&mut st).unwrap();
                display.flush_clients().unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    Running {
        conn: Connection::from_socket(client_end).unwrap(),
        seen,
        stop,
        thread: Some(thread),
    }
}

// ---------------------------------------------------------------------------------------------
// The client: nothing but the handlers and the delegates.

#[derive(Default)]
struct App {
    feedback: Vec<(FeedbackTarget, Result<Feedback, FeedbackError>)>,
    created: Vec<(
        ZwpLinuxBufferParamsV1,
        BufferDescription,
        Result<WlBuffer, BufferError>,
    )>,
    released: Vec<WlBuffer>,
}

impl FeedbackHandler for App {
    fn feedback(&mut self, target: &FeedbackTarget, feedback: Result<Feedback, FeedbackError>) {
        self.feedback.push((target.clone(), feedback));
    }
}

impl BufferParamsHandler for App {
    fn buffer_created(
        &mut self,
        params: &ZwpLinuxBufferParamsV1,
        description: &BufferDescription,
        buffer: Result<WlBuffer, BufferError>,
    ) {
        self.created
            .push((params.clone(), description.clone(), buffer));
    }

    fn buffer_released(&mut self, buffer: &WlBuffer) {
        self.released.push(buffer.clone());
    }
}

wayheap::delegate_client_globals!(App);
wayheap::delegate_window!(App);
wayheap::delegate_dmabuf_feedback!(App);
wayheap::delegate_buffer_params!(App);
// Every delegate in one state: their Dispatch implementations must not overlap.
wayheap::delegate_swapchain!(App);

fn connect(running: &Running) -> (ClientGlobals, EventQueue<App>, App) {
    let (globals, mut queue) = registry_queue_init::<App>(&running.conn).unwrap();
    let g = ClientGlobals::bind(&globals, &queue.handle()).expect("bind");
    let mut app = App::default();
    queue.roundtrip(&mut app).unwrap();
    (g, queue, app)
}

fn formats(f: &Result<Feedback, FeedbackError>) -> Vec<u32> {
    f.as_ref().unwrap().tranches[0]
        .formats
        .iter()
        .map(|FormatModifier { format, .. }| *format)
        .collect()
}

#[test]
fn feedback_reaches_the_handler_per_object_with_its_target() {
    let running = serve(Offer {
        linux_dmabuf: Some(5),
        list_v3: false,
        wm_base: true,
    });
    let (g, mut queue, mut app) = connect(&running);
    let qh = queue.handle();
    let surface = g.compositor.create_surface(&qh, ());
    let _surface_feedback = g.surface_feedback(&surface, &qh).expect("v5 has feedback");
    let _default = g.default_feedback(&qh).expect("v5 has feedback");
    let _bad = g.default_feedback(&qh).expect("v5 has feedback");
    queue.roundtrip(&mut app).unwrap();

    assert_eq!(app.feedback.len(), 3, "one done per object");
    // The events arrived interleaved: each object's own table resolved its tranches.
    let (target, surface_fb) = &app.feedback[0];
    assert_eq!(target, &FeedbackTarget::Surface(surface.clone()));
    assert_eq!(target.surface(), Some(&surface));
    assert_eq!(formats(surface_fb), [XR24]);
    assert!(surface_fb.as_ref().unwrap().tranches[0].scanout);
    assert_eq!(
        g.decide(surface_fb.as_ref().ok(), Fourcc::XRGB8888).path,
        BufferPath::Scanout
    );
    let (target, default_fb) = &app.feedback[1];
    assert_eq!(target, &FeedbackTarget::Default);
    assert_eq!(formats(default_fb), [AR24]);
    assert_eq!(default_fb.as_ref().unwrap().main_device, Some(DEV));
    // A tranche that refers past its table is the handler's error, not a panic.
    let (target, bad) = &app.feedback[2];
    assert_eq!(target, &FeedbackTarget::Default);
    assert_eq!(
        bad,
        &Err(FeedbackError::IndexOutOfRange { index: 5, len: 1 })
    );
}

fn memfd() -> OwnedFd {
    let fd = rustix::fs::memfd_create("plane", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&fd, 256 * 64).unwrap();
    fd
}

fn spec(fd: &OwnedFd, width: i32) -> BufferSpec<'_> {
    BufferSpec {
        width,
        height: 64,
        format: Fourcc::ARGB8888,
        modifier: 0,
        planes: vec![PlaneSpec {
            fd: fd.as_fd(),
            offset: 0,
            stride: 256,
        }],
        sampling_device: None,
    }
}

#[test]
fn created_and_failed_reach_the_handler_and_the_params_are_destroyed() {
    let running = serve(Offer {
        linux_dmabuf: Some(6),
        list_v3: false,
        wm_base: true,
    });
    let (g, mut queue, mut app) = connect(&running);
    let qh = queue.handle();
    let d = g.linux_dmabuf.as_ref().expect("linux-dmabuf");
    let fd = memfd();
    let accepted = spec(&fd, 64);
    let refused = spec(&fd, 13);
    let accepted_params = accepted.create(d, &qh);
    let refused_params = refused.create(d, &qh);
    queue.roundtrip(&mut app).unwrap();
    queue.roundtrip(&mut app).unwrap();

    assert_eq!(app.created.len(), 2, "one answer per create");
    let (params, description, buffer) = &app.created[0];
    assert_eq!(params, &accepted_params);
    assert_eq!(description, &accepted.describe());
    let buffer = buffer.as_ref().expect("created");
    assert!(buffer.is_alive());
    let (params, description, failure) = &app.created[1];
    assert_eq!(params, &refused_params);
    assert_eq!(description, &refused.describe());
    let failure = failure.as_ref().expect_err("refused");
    assert_eq!(failure, &BufferError::Failed(refused.describe()));
    assert!(failure.to_string().contains("13x64"), "{failure}");
    // The release of the created buffer reached the handler and its user data.
    assert_eq!(app.released, std::slice::from_ref(buffer));
    assert_eq!(
        buffer.data::<CreatedBuffer>().map(CreatedBuffer::releases),
        Some(1)
    );
    // Both params objects were destroyed once answered; the buffer is the handler's.
    let seen = running.seen.lock().unwrap();
    assert_eq!((seen.params_destroyed, seen.buffers_destroyed), (2, 0));
    assert!(!accepted_params.is_alive() && !refused_params.is_alive());
}

#[test]
fn the_default_params_handler_destroys_an_unasked_buffer() {
    #[derive(Default)]
    struct Quiet;
    impl BufferParamsHandler for Quiet {}
    wayheap::delegate_buffer_params!(Quiet);
    wayheap::delegate_client_globals!(Quiet);
    wayheap::delegate_window!(Quiet);

    let running = serve(Offer {
        linux_dmabuf: Some(4),
        list_v3: false,
        wm_base: true,
    });
    let (globals, mut queue) = registry_queue_init::<Quiet>(&running.conn).unwrap();
    let qh = queue.handle();
    let g = ClientGlobals::bind(&globals, &qh).unwrap();
    let fd = memfd();
    let params = spec(&fd, 64).create(g.linux_dmabuf.as_ref().unwrap(), &qh);
    queue.roundtrip(&mut Quiet).unwrap();
    queue.roundtrip(&mut Quiet).unwrap();
    assert!(!params.is_alive());
    let seen = running.seen.lock().unwrap();
    assert_eq!((seen.params_destroyed, seen.buffers_destroyed), (1, 1));
}

#[test]
fn client_globals_decide_for_every_linux_dmabuf_version_and_for_none() {
    let decide = |offer| {
        let running = serve(offer);
        let (g, _, _) = connect(&running);
        (
            g.linux_dmabuf_version(),
            g.decide(None, Fourcc::ARGB8888),
            g.modifiers().0.len(),
        )
    };
    let with = |linux_dmabuf, list_v3| Offer {
        linux_dmabuf,
        list_v3,
        wm_base: true,
    };
    // Version 3 lists AR24 LINEAR: sampled.
    let (version, d, listed) = decide(with(Some(3), true));
    assert_eq!((version, listed), (Some(3), 1));
    assert_eq!(d.path, BufferPath::Sampling, "{d}");
    // Version 3 listing nothing: a dma-buf would be refused.
    let (_, d, _) = decide(with(Some(3), false));
    assert_eq!(d.path, BufferPath::Shm, "{d}");
    assert!(d.reason.contains("0 formats listed"), "{d}");
    // No linux-dmabuf at all.
    let (version, d, _) = decide(with(None, false));
    assert_eq!(version, None);
    assert_eq!(d.path, BufferPath::Shm, "{d}");
    assert!(d.reason.contains("no linux-dmabuf"), "{d}");
    // Version 6 without feedback yet: sampled.
    let (version, d, _) = decide(with(Some(6), false));
    assert_eq!(version, Some(6));
    assert_eq!(d.path, BufferPath::Sampling, "{d}");
}

#[test]
fn a_missing_required_global_is_named() {
    let running = serve(Offer {
        linux_dmabuf: Some(6),
        list_v3: false,
        wm_base: false,
    });
    let (globals, queue) = registry_queue_init::<App>(&running.conn).unwrap();
    let err = ClientGlobals::bind(&globals, &queue.handle()).unwrap_err();
    assert_eq!(err.global, "xdg_wm_base");
    assert!(
        err.to_string()
            .starts_with("the compositor lacks xdg_wm_base: "),
        "{err}"
    );
}
