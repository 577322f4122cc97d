//! The compositor side: client dma-bufs straight onto KMS planes with Smithay (feature `smithay`).
//!
//! - [`PrimeExporter`]: Smithay's `ExportFramebuffer` for any LINEAR dma-buf — heap, udmabuf,
//!   V4L2-exported — by PRIME import and AddFB2, cached per buffer, no GBM.
//! - [`ShmScanout`]: wl_shm buffers onto planes too, their pools exported through `/dev/udmabuf`
//!   when the client sealed them against shrinking ([`PrimeExporter::with_shm_scanout`]).
//! - [`HeapAllocator`]: Smithay's `Allocator` for the compositor's own swapchain, served by the
//!   core's policy (CMA first for scan-out), so no GBM device is needed to run.
//! - [`validate_client_dmabuf`]: every plane of a client's linux-dmabuf buffer checked before use,
//!   and [`DmabufRejection::notify`] to answer a bad one with the protocol error.
//! - [`PlacementTracker`]: where each surface ended up this frame — primary, overlay or cursor
//!   plane, or composited — and why ([`explain`], [`Reason`]), what changed, and which dma-buf
//!   feedback each surface should get (with hysteresis).
//! - [`heap_hints`]: the `wayheap_heap_hints_v1` server — which heap reaches a plane, per
//!   surface, and delegated allocation with per-client quotas.
//! - [`guards`]: `delegate_compositor_guarded!`, `delegate_shm_guarded!` and
//!   `delegate_dmabuf_guarded!`, Smithay's handlers behind checks for the client requests that
//!   panic in Smithay 0.7; [`guards::DmabufQuota`], live client dma-bufs per client, bounded.
//! - [`ClientListener`]: the listening socket as a calloop source that survives `accept()`
//!   failures (EMFILE included), and [`raise_fd_limit`].
//! - [`yuv_element`]: client YUV dma-bufs (NV12 and kin) as render elements without a renderer
//!   import — on a plane, or converted on the CPU when composited ([`space_elements`]).
//! - [`colour_representation`]: the `wp_color_representation_v1` server — the matrix and range
//!   of each surface's YUV buffers.
//! - [`renderer`]: GLES when EGL is available (on the DRM device, or surfaceless), with the
//!   reason when it is not, so the compositor falls back to pixman instead of panicking.
//!
//! ## How to use
//!
//! Give `DrmCompositor` the exporter and the allocator, validate in the dmabuf handler, and
//! feed each frame's result to a [`PlacementTracker`] (its docs show the ten lines):
//!
//! ```no_run
//! use smithay::backend::drm::DrmDeviceFd;
//! use wayheap::heap::HeapDir;
//! use wayheap::policy::{Allocator, Constraints, Policy};
//! use wayheap::smithay::{HeapAllocator, PrimeExporter};
//!
//! fn parts(device: DrmDeviceFd) -> (HeapAllocator, PrimeExporter) {
//!     let policy = Allocator::new(Policy::default(), HeapDir::default());
//!     // A display engine without an IOMMU would ask for contiguous memory here.
//!     let swapchain = HeapAllocator::new(policy, "scanout", Constraints::default());
//!     (swapchain, PrimeExporter::new(device))
//! }
//! // DrmCompositor::new(output, surface, None, swapchain, exporter, formats, renderer_formats,
//! //                    cursor_size, None::<GbmDevice<DrmDeviceFd>>)
//! ```
//!
//! In `DmabufHandler::dmabuf_imported`:
//!
//! ```no_run
//! # use smithay::backend::allocator::dmabuf::Dmabuf;
//! # use smithay::backend::allocator::format::FormatSet;
//! # use smithay::wayland::dmabuf::ImportNotifier;
//! fn imported(dmabuf: &Dmabuf, advertised: &FormatSet, notifier: ImportNotifier) -> Option<ImportNotifier> {
//!     match wayheap::smithay::validate_client_dmabuf(dmabuf, |f| advertised.contains(f)) {
//!         Ok(()) => Some(notifier), // go on: import, then notifier.successful::<State>()
//!         Err(rejection) => {
//!             tracing::warn!(%rejection, "refusing a client dma-buf");
//!             rejection.notify(notifier); // protocol error or `failed`; the compositor goes on
//!             None
//!         }
//!     }
//! }
//! ```

mod allocator;
pub mod colour_representation;
mod framebuffer;
pub mod guards;
pub mod heap_hints;
mod listener;
pub mod placement;
mod planes;
pub mod renderer;
pub mod shm_scanout;
mod validate;
pub mod yuv_element;

pub use allocator::{HeapAllocator, HeapAllocatorError, HeapBuffer};
pub use framebuffer::{BufferMemory, PrimeError, PrimeExporter, PrimeFramebuffer};
pub use listener::{ClientListener, raise_fd_limit};
pub use placement::{
    FEEDBACK_HYSTERESIS, FeedbackChoice, PlacementChange, PlacementTracker, window_surfaces,
};
pub use planes::{
    BufferKind, ElementFacts, FrameFacts, Placement, PlaneCaps, PlaneKind, Reason, Suspect,
    errno_name, explain,
};
pub use shm_scanout::{ShmRefusal, ShmScanout};
pub use validate::{DmabufRejection, dmabuf_fd_size, validate_client_dmabuf, validate_planes};
pub use yuv_element::{
    PlaneColours, SurfaceElement, YuvColours, YuvComposition, YuvSurfaceElement,
    cpu_converted_formats, space_elements, surface_tree_elements, window_elements,
};

#[doc(hidden)]
pub use smithay as __smithay;
