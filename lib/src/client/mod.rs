//! The client side (feature `client`): from the compositor's linux-dmabuf feedback to a decision
//! of how to allocate, to wl_buffers and a swapchain.
//!
//! - [`FeedbackCollector`]: forward the events of a `zwp_linux_dmabuf_feedback_v1` object, get a
//!   validated [`Feedback`] on `done`; or let
//!   [`delegate_dmabuf_feedback!`](crate::delegate_dmabuf_feedback) do it per object and hand
//!   each result to a [`FeedbackHandler`].
//! - [`decide`]: scan-out (policy usage `scanout`), sampling (`render`), or wl_shm when no tranche
//!   takes LINEAR — with the reason.
//! - [`BufferSpec`]: the linux-dmabuf parameters of a laid-out image; `create_immed`, or `create`
//!   whose refusal becomes a [`BufferError`] naming the parameters (delivered to a
//!   [`BufferParamsHandler`] by [`delegate_buffer_params!`](crate::delegate_buffer_params)).
//! - [`ClientGlobals`]: the globals bound at the versions this library speaks, and the decision
//!   for whatever linux-dmabuf version (or none) the compositor has;
//!   [`delegate_client_globals!`](crate::delegate_client_globals) for the objects whose events
//!   are ignored.
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
//! A complete client: bind the globals, let the surface's feedback choose the heap (CMA for a
//! plane that needs contiguous memory, the system heap for composition), fill a buffer, and
//! submit it through linux-dmabuf. The `delegate_*!` macros write every `Dispatch`
//! implementation; the state keeps only what the handlers deliver.
//!
//! ```no_run
//! use wayheap::client::window::Window;
//! use wayheap::client::{
//!     BufferDescription, BufferError, BufferParamsHandler, BufferSpec, ClientGlobals, Feedback,
//!     FeedbackError, FeedbackHandler, FeedbackTarget,
//! };
//! use wayheap::layout::{Fourcc, Layout, LayoutOptions};
//! use wayheap::policy::{Allocator, Constraints};
//! use wayland_client::{Connection, globals::registry_queue_init, protocol::wl_buffer::WlBuffer};
//! use wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1;
//!
//! #[derive(Default)]
//! struct App {
//!     feedback: Option<Feedback>,
//!     buffer: Option<Result<WlBuffer, BufferError>>,
//! }
//! impl FeedbackHandler for App {
//!     fn feedback(&mut self, _: &FeedbackTarget, feedback: Result<Feedback, FeedbackError>) {
//!         self.feedback = feedback.ok(); // a malformed one is an error, not a panic
//!     }
//! }
//! impl BufferParamsHandler for App {
//!     fn buffer_created(&mut self, _: &ZwpLinuxBufferParamsV1, _: &BufferDescription,
//!                       buffer: Result<WlBuffer, BufferError>) {
//!         self.buffer = Some(buffer);
//!     }
//! }
//! wayheap::delegate_client_globals!(App); // registry, wl_compositor, wl_surface, wl_shm, ...
//! wayheap::delegate_window!(App); // xdg_wm_base, xdg_surface, xdg_toplevel
//! wayheap::delegate_dmabuf_feedback!(App); // zwp_linux_dmabuf_feedback_v1 -> feedback()
//! wayheap::delegate_buffer_params!(App); // zwp_linux_buffer_params_v1 -> buffer_created()
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let conn = Connection::connect_to_env()?;
//!     let (globals, mut queue) = registry_queue_init::<App>(&conn)?;
//!     let qh = queue.handle();
//!     let g = ClientGlobals::bind(&globals, &qh)?; // linux-dmabuf at version 3 to 6, or none
//!     let window = Window::new(&g.compositor, &g.wm_base, &qh, "wayheap", None, false);
//!     let _feedback = g.surface_feedback(&window.surface, &qh);
//!     let mut app = App::default();
//!     queue.roundtrip(&mut app)?; // the window's configure and the surface's feedback
//!
//!     // Scan-out, sampling or wl_shm, and why; the policy ($WAYHEAP_POLICY) maps it to heaps.
//!     let decision = g.decide(app.feedback.as_ref(), Fourcc::XRGB8888);
//!     let usage = decision.path.usage().ok_or("wl_shm only: a Swapchain falls back to it")?;
//!     let layout = Layout::new(Fourcc::XRGB8888, 640, 480, LayoutOptions::default())?;
//!     let size = layout.total_size() as usize;
//!     let heap = Allocator::from_env()?.allocate(usage, size, &Constraints::default())?;
//!     heap.buffer.map()?.write()?.fill(0x80); // between DMA_BUF_IOCTL_SYNC start and end
//!     BufferSpec::from_layout(&layout, &[&heap.buffer], 0)?
//!         .with_sampling_device(decision.device)
//!         .create(g.linux_dmabuf.as_ref().ok_or("no linux-dmabuf")?, &qh);
//!     while app.buffer.is_none() {
//!         queue.blocking_dispatch(&mut app)?;
//!     }
//!     let buffer = app.buffer.take().expect("answered")?; // a refusal names the parameters
//!     window.surface.attach(Some(&buffer), 0, 0);
//!     window.surface.commit();
//!     while !window.closed() {
//!         queue.blocking_dispatch(&mut app)?;
//!     }
//!     Ok(())
//! }
//! ```
//!
//! For a stream of frames, a [`Swapchain`] allocates N buffers by the same decision (or wl_shm
//! buffers when the compositor takes no LINEAR dma-buf), hands out only the ones the compositor
//! released, paces drawing by frame callbacks, and counts the frames the compositor scanned
//! out. It makes its buffers with `create_immed`, so the params handler keeps its defaults:
//!
//! ```no_run
//! # use wayheap::client::{window::Window, BufferParamsHandler, ClientGlobals, Feedback};
//! # use wayheap::client::{FeedbackError, FeedbackHandler, FeedbackTarget, Swapchain};
//! # use wayheap::layout::{Fourcc, Layout, LayoutOptions};
//! # use wayheap::policy::Allocator;
//! # use wayland_client::{Connection, globals::registry_queue_init};
//! # #[derive(Default)]
//! # struct App { feedback: Option<Feedback> }
//! # impl FeedbackHandler for App {
//! #     fn feedback(&mut self, _: &FeedbackTarget, f: Result<Feedback, FeedbackError>) {
//! #         self.feedback = f.ok();
//! #     }
//! # }
//! impl BufferParamsHandler for App {}
//! # wayheap::delegate_client_globals!(App);
//! # wayheap::delegate_window!(App);
//! # wayheap::delegate_dmabuf_feedback!(App);
//! wayheap::delegate_buffer_params!(App);
//! wayheap::delegate_swapchain!(App); // wl_buffer.release, frame callbacks, presentation
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let conn = Connection::connect_to_env()?;
//! # let (globals, mut queue) = registry_queue_init::<App>(&conn)?;
//! # let qh = queue.handle();
//! # let g = ClientGlobals::bind(&globals, &qh)?;
//! # let window = Window::new(&g.compositor, &g.wm_base, &qh, "wayheap", None, false);
//! # let _feedback = g.surface_feedback(&window.surface, &qh);
//! # let mut app = App::default();
//! # queue.roundtrip(&mut app)?;
//! // ... as above, up to the decision:
//! let decision = g.decide(app.feedback.as_ref(), Fourcc::XRGB8888);
//! let layout = Layout::new(Fourcc::XRGB8888, 640, 480, LayoutOptions::default())?;
//! let alloc = Allocator::from_env()?;
//! let mut chain = Swapchain::new(&alloc, decision, layout, 2, &g.protocols(), &qh)?;
//! println!("buffers from {}: {}", chain.provider(), chain.decision());
//! for frame in 0..120u32 {
//!     // Paced by frame callbacks, and only into buffers the compositor released.
//!     while !chain.ready() || chain.acquire().is_none() {
//!         queue.blocking_dispatch(&mut app)?;
//!     }
//!     let index = chain.acquire().expect("checked above");
//!     chain.write(index, |pixels| pixels.fill((frame * 2 % 256) as u8))?;
//!     chain.present(index, &window.surface, &[], &qh)?;
//! }
//! let stats = chain.stats();
//! println!("{} of {} frames scanned out", stats.zero_copy, stats.presented);
//! # Ok(())
//! # }
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
mod globals;
pub mod hints;
mod import;
mod linux_dmabuf;
mod stack;
mod swapchain;
pub mod window;

pub use buffer::{
    BufferCreation, BufferDescription, BufferError, BufferParamsDispatch, BufferParamsHandler,
    BufferSpec, CreatedBuffer, PlaneSpec,
};
pub use decision::{
    BufferPath, Decision, decide, decide_for_version, decide_v3, decide_without_linux_dmabuf,
};
pub use feedback::{
    Feedback, FeedbackCollector, FeedbackData, FeedbackDispatch, FeedbackError, FeedbackHandler,
    FeedbackTarget, FormatModifier, FormatTable, Tranche,
};
pub use globals::{ClientGlobals, ClientGlobalsDispatch, MissingGlobal};
pub use import::ImportCache;
pub use linux_dmabuf::{
    LINUX_DMABUF_VERSIONS, LinuxDmabufData, LinuxDmabufDispatch, ModifierEvents,
    ModifierEventsHandler, bind_linux_dmabuf, bind_linux_dmabuf_with, default_feedback,
    surface_feedback,
};
pub use stack::{Layer, SurfaceStack};
pub use swapchain::{
    FrameData, PresentData, SlotData, Swapchain, SwapchainDispatch, SwapchainError,
    SwapchainProtocols, SwapchainStats,
};
