//! The client side (feature `client`): from the compositor's linux-dmabuf feedback to a decision
//! of how to allocate, to wl_buffers and a swapchain.
//!
//! - [`FeedbackCollector`]: forward the events of a `zwp_linux_dmabuf_feedback_v1` object, get a
//!   validated [`Feedback`] on `done`.
//! - [`decide`]: scan-out (policy usage `scanout`), sampling (`render`), or wl_shm when no tranche
//!   takes LINEAR — with the reason.
//! - [`BufferSpec`]: the linux-dmabuf parameters of a laid-out image; `create_immed`, or `create`
//!   whose refusal becomes a [`BufferError`] naming the parameters.
//! - [`bind_linux_dmabuf`]: versions 3 to 6, whatever the compositor offers; v6's
//!   `main_device`-less feedback and `set_sampling_device` are handled.
//! - [`Swapchain`]: N buffers allocated by the decision (dma-bufs, or wl_shm as the fallback),
//!   handed out only once released, paced by frame callbacks, with damage, buffer age and
//!   presentation feedback counting ZERO_COPY frames (wire them with
//!   [`delegate_swapchain!`](crate::delegate_swapchain)); `outdated_by` tells when new feedback
//!   calls for reallocation.
//! - [`SurfaceStack`]: a main surface plus desynchronised subsurfaces with viewports, so a
//!   camera frame and an overlay can each be on a plane.
//! - [`ImportCache`]: wl_buffers for dma-bufs exported elsewhere (V4L2), one per dma-buf, reused.
//! - [`window`]: a bare xdg toplevel (configure acknowledged, size and close remembered) for
//!   kiosk-style clients; [`delegate_window!`](crate::delegate_window) wires it.
//! - [`hints`]: the `wayheap_heap_hints_v1` client — the heap the compositor says reaches a
//!   plane, opened directly or allocated by the compositor, before any feedback-only decision.
//!
//! ## How to use
//!
//! A complete client: bind linux-dmabuf at the best version, let the surface's feedback choose
//! the heap (CMA for a plane that needs contiguous memory, the system heap for composition,
//! wl_shm when the compositor takes no dma-buf), fill a buffer, submit it, and count the frames
//! the compositor scanned out from it.
//!
//! ```no_run
//! use wayheap::client::{
//!     BufferDescription, Feedback, FeedbackCollector, Swapchain, SwapchainProtocols, decide,
//!     decide_without_linux_dmabuf, bind_linux_dmabuf, surface_feedback,
//! };
//! use wayheap::layout::{Fourcc, Layout, LayoutOptions};
//! use wayheap::policy::Allocator;
//! use wayland_client::globals::{registry_queue_init, GlobalListContents};
//! use wayland_client::protocol::{wl_compositor, wl_registry, wl_shm, wl_shm_pool, wl_surface};
//! use wayland_client::{delegate_noop, Connection, Dispatch, QueueHandle};
//! use wayland_protocols::wp::linux_dmabuf::zv1::client::{
//!     zwp_linux_buffer_params_v1, zwp_linux_dmabuf_feedback_v1, zwp_linux_dmabuf_v1,
//! };
//! use wayland_protocols::wp::presentation_time::client::wp_presentation;
//! use wayland_protocols::xdg::shell::client::{xdg_surface, xdg_toplevel, xdg_wm_base};
//!
//! #[derive(Default)]
//! struct App {
//!     collector: FeedbackCollector,
//!     feedback: Option<Feedback>,
//! }
//!
//! impl Dispatch<zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1, ()> for App {
//!     fn event(
//!         app: &mut Self,
//!         _: &zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1,
//!         event: zwp_linux_dmabuf_feedback_v1::Event,
//!         _: &(),
//!         _: &Connection,
//!         _: &QueueHandle<Self>,
//!     ) {
//!         // Every event goes to the collector; `done` yields validated feedback.
//!         match app.collector.event(event) {
//!             Some(Ok(feedback)) => app.feedback = Some(feedback),
//!             Some(Err(e)) => eprintln!("ignoring bad feedback: {e}"),
//!             None => {}
//!         }
//!     }
//! }
//! impl Dispatch<xdg_wm_base::XdgWmBase, ()> for App {
//!     fn event(_: &mut Self, wm: &xdg_wm_base::XdgWmBase, event: xdg_wm_base::Event, _: &(),
//!              _: &Connection, _: &QueueHandle<Self>) {
//!         if let xdg_wm_base::Event::Ping { serial } = event {
//!             wm.pong(serial);
//!         }
//!     }
//! }
//! impl Dispatch<xdg_surface::XdgSurface, ()> for App {
//!     fn event(_: &mut Self, s: &xdg_surface::XdgSurface, event: xdg_surface::Event, _: &(),
//!              _: &Connection, _: &QueueHandle<Self>) {
//!         if let xdg_surface::Event::Configure { serial } = event {
//!             s.ack_configure(serial);
//!         }
//!     }
//! }
//! impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for App {
//!     fn event(_: &mut Self, _: &wl_registry::WlRegistry, _: wl_registry::Event,
//!              _: &GlobalListContents, _: &Connection, _: &QueueHandle<Self>) {}
//! }
//! impl Dispatch<zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1, BufferDescription> for App {
//!     fn event(_: &mut Self, _: &zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1,
//!              _: zwp_linux_buffer_params_v1::Event, _: &BufferDescription,
//!              _: &Connection, _: &QueueHandle<Self>) {}
//! }
//! delegate_noop!(App: ignore xdg_toplevel::XdgToplevel);
//! delegate_noop!(App: ignore wl_compositor::WlCompositor);
//! delegate_noop!(App: ignore wl_surface::WlSurface);
//! delegate_noop!(App: ignore wl_shm::WlShm);
//! delegate_noop!(App: ignore wl_shm_pool::WlShmPool);
//! delegate_noop!(App: ignore zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1);
//! delegate_noop!(App: ignore wp_presentation::WpPresentation);
//! // wl_buffer.release, frame callbacks and presentation feedback of the swapchain.
//! wayheap::delegate_swapchain!(App);
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let conn = Connection::connect_to_env()?;
//!     let (globals, mut queue) = registry_queue_init::<App>(&conn)?;
//!     let qh = queue.handle();
//!     let compositor: wl_compositor::WlCompositor = globals.bind(&qh, 4..=6, ())?;
//!     let wm: xdg_wm_base::XdgWmBase = globals.bind(&qh, 1..=6, ())?;
//!     let shm: wl_shm::WlShm = globals.bind(&qh, 1..=1, ())?;
//!     let presentation: Option<wp_presentation::WpPresentation> =
//!         globals.bind(&qh, 1..=1, ()).ok();
//!     // Versions 3 to 6; none at all means wl_shm.
//!     let linux_dmabuf = bind_linux_dmabuf(&globals, &qh).ok();
//!
//!     let surface = compositor.create_surface(&qh, ());
//!     let xdg = wm.get_xdg_surface(&surface, &qh, ());
//!     let _toplevel = xdg.get_toplevel(&qh, ());
//!     surface.commit();
//!     let _feedback = linux_dmabuf
//!         .as_ref()
//!         .and_then(|d| surface_feedback(d, &surface, &qh, ()));
//!     let mut app = App::default();
//!     queue.roundtrip(&mut app)?;
//!     queue.roundtrip(&mut app)?;
//!
//!     // The compositor's preferred path for XRGB8888, and why.
//!     let decision = match &linux_dmabuf {
//!         Some(_) => decide(app.feedback.as_ref(), Fourcc::XRGB8888),
//!         None => decide_without_linux_dmabuf(Fourcc::XRGB8888),
//!     };
//!     println!("{decision}");
//!     let layout = Layout::new(Fourcc::XRGB8888, 640, 480, LayoutOptions::default())?;
//!     // The policy ($WAYHEAP_POLICY or the default) maps the decision's usage to heaps.
//!     let alloc = Allocator::from_env()?;
//!     let protocols = SwapchainProtocols {
//!         linux_dmabuf: linux_dmabuf.as_ref(),
//!         shm: Some(&shm),
//!         presentation: presentation.as_ref(),
//!     };
//!     let mut chain = Swapchain::new(&alloc, decision, layout, 2, &protocols, &qh)?;
//!     println!("buffers from {}", chain.provider());
//!
//!     for frame in 0..120u32 {
//!         // Paced by frame callbacks, and only into buffers the compositor released.
//!         while !chain.ready() || chain.acquire().is_none() {
//!             queue.blocking_dispatch(&mut app)?;
//!         }
//!         let index = chain.acquire().expect("checked above");
//!         let grey = (frame * 2 % 256) as u8;
//!         // A dma-buf is written between DMA_BUF_IOCTL_SYNC start and end.
//!         chain.write(index, |pixels| pixels.fill(grey))?;
//!         chain.present(index, &surface, &[], &qh)?;
//!     }
//!     let stats = chain.stats();
//!     println!("{} of {} frames scanned out", stats.zero_copy, stats.presented);
//!     Ok(())
//! }
//! ```
//!
//! The pieces on their own:
//!
//! ```
//! use wayheap::client::{BufferPath, FeedbackCollector, decide};
//! use wayheap::layout::Fourcc;
//!
//! # fn table() -> std::os::fd::OwnedFd { rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::empty()).unwrap() }
//! let mut collector = FeedbackCollector::default();
//! // From the feedback object's events:
//! collector.format_table(table(), 0);
//! collector.main_device(&0u64.to_ne_bytes());
//! let feedback = collector.done().expect("valid feedback");
//! let decision = decide(Some(&feedback), Fourcc::ARGB8888);
//! assert_eq!(decision.path, BufferPath::Shm); // an empty table takes nothing
//! println!("{decision}");
//! ```

mod buffer;
mod decision;
mod feedback;
pub mod hints;
mod import;
mod linux_dmabuf;
mod stack;
mod swapchain;
pub mod window;

pub use buffer::{BufferCreation, BufferDescription, BufferError, BufferSpec, PlaneSpec};
pub use decision::{
    BufferPath, Decision, decide, decide_for_version, decide_v3, decide_without_linux_dmabuf,
};
pub use feedback::{
    Feedback, FeedbackCollector, FeedbackError, FormatModifier, FormatTable, Tranche,
};
pub use import::ImportCache;
pub use linux_dmabuf::{
    LINUX_DMABUF_VERSIONS, LinuxDmabufDispatch, ModifierEvents, ModifierEventsHandler,
    bind_linux_dmabuf, default_feedback, surface_feedback,
};
pub use stack::{Layer, SurfaceStack};
pub use swapchain::{
    FrameData, PresentData, SlotData, Swapchain, SwapchainDispatch, SwapchainError,
    SwapchainProtocols, SwapchainStats,
};
