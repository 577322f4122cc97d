//! [`Swapchain`]: N wl_buffers of one layout for one surface, allocated the way the feedback
//! decision chose (dma-bufs through the policy, or wl_shm when the compositor takes no LINEAR
//! dma-buf), handed out only when the compositor has released them, presented at the pace of
//! frame callbacks with damage, and counted by presentation feedback.
//!
//! The compositor reads a buffer until it sends `wl_buffer.release`; drawing into it before
//! that tears or corrupts what is on screen (and on a plane, the display engine reads it
//! directly). Drawing faster than frame callbacks arrive only queues frames nobody sees.
//! `wp_presentation_feedback.presented` with the `zero_copy` flag says the compositor showed
//! the buffer itself (scan-out) rather than a copy: the swapchain counts it per frame.
//!
//! wl_shm buffers are made plane-ready: each in its own memfd sealed against shrinking, at
//! offset 0 of a pool of whole pages, with the layout's strides (256-byte aligned by default;
//! [`LayoutOptions::aligned_to`](crate::layout::LayoutOptions::aligned_to) adds a plane's
//! alignments from the compositor's heap hints). A compositor that exports shm pools through
//! udmabuf (wayheap's [`ShmScanout`](crate::smithay::ShmScanout)) can then scan them out
//! without a copy, and the presentation feedback says so.
//!
//! The buffers carry [`SlotData`], frame callbacks [`FrameData`] and presentation feedback
//! [`PresentData`]; [`delegate_swapchain!`](crate::delegate_swapchain) routes all three to
//! [`SwapchainDispatch`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use wayland_client::protocol::wl_buffer::{self, WlBuffer};
use wayland_client::protocol::wl_callback::{self, WlCallback};
use wayland_client::protocol::wl_shm::{self, WlShm};
use wayland_client::protocol::wl_shm_pool::WlShmPool;
use wayland_client::protocol::wl_surface::WlSurface;
use wayland_client::{Connection, Dispatch, QueueHandle, WEnum};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1, zwp_linux_dmabuf_v1,
};
use wayland_protocols::wp::presentation_time::client::{
    wp_presentation::WpPresentation, wp_presentation_feedback,
};

use super::buffer::{BufferDescription, BufferSpec};
use super::decision::{BufferPath, Decision};
use crate::dmabuf::{DmaBuf, DmaBufError};
use crate::export::{ExportError, MemfdBuffer, Udmabuf};
use crate::layout::{Fourcc, Layout, LayoutError};
use crate::policy::{AllocError, Allocator, Constraints};

/// User data of a swapchain's wl_buffers: whether the compositor released it.
#[derive(Debug, Clone, Default)]
pub struct SlotData {
    released: Arc<AtomicBool>,
    releases: Arc<AtomicU64>,
}

/// Counters one swapchain shares with its frame callbacks and presentation feedback.
#[derive(Debug, Default)]
struct Shared {
    frame_pending: AtomicBool,
    frames_done: AtomicU64,
    presented: AtomicU64,
    zero_copy: AtomicU64,
    discarded: AtomicU64,
}

/// User data of a swapchain's frame callbacks.
#[derive(Debug, Clone)]
pub struct FrameData(Arc<Shared>);

/// User data of a swapchain's presentation feedback objects.
#[derive(Debug, Clone)]
pub struct PresentData(Arc<Shared>);

/// What a swapchain has seen so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapchainStats {
    /// Frames committed.
    pub submitted: u64,
    /// Frame callbacks received.
    pub frames_done: u64,
    /// Frames the compositor reports presented.
    pub presented: u64,
    /// Of those, presented with `zero_copy` (scanned out from our buffer).
    pub zero_copy: u64,
    /// Frames the compositor discarded (replaced before they were shown).
    pub discarded: u64,
    /// `wl_buffer.release`s per buffer.
    pub releases: Vec<u64>,
}

/// Why a swapchain could not be made or drawn.
#[derive(Debug, thiserror::Error)]
pub enum SwapchainError {
    /// Neither path is available: the decision was wl_shm and no wl_shm was given, or a
    /// dma-buf path without a bound linux-dmabuf.
    #[error("no way to this compositor for these buffers ({0})")]
    NoPath(String),
    /// wl_shm takes one plane per buffer.
    #[error("{0} has several planes: wl_shm cannot carry it; this compositor needs a dma-buf")]
    ShmMultiPlane(Fourcc),
    /// Allocation failed.
    #[error(transparent)]
    Alloc(#[from] AllocError),
    /// The shared-memory fallback could not be made.
    #[error(transparent)]
    Shm(#[from] ExportError),
    /// The layout does not fit the buffers.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// CPU access to a dma-buf failed.
    #[error(transparent)]
    DmaBuf(#[from] DmaBufError),
    /// The index is not one of the swapchain's buffers.
    #[error("buffer {0} is not in this swapchain")]
    NoSuchBuffer(usize),
}

/// The globals a swapchain presents through.
#[derive(Debug, Clone, Copy, Default)]
pub struct SwapchainProtocols<'a> {
    /// linux-dmabuf (any version from 3): needed for the scan-out and sampling paths.
    pub linux_dmabuf: Option<&'a zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1>,
    /// wl_shm: needed for the shm path.
    pub shm: Option<&'a WlShm>,
    /// wp_presentation: per-frame presentation feedback (ZERO_COPY counting) when given.
    pub presentation: Option<&'a WpPresentation>,
}

enum Memory {
    DmaBuf(DmaBuf),
    /// Application memory (a sealed memfd) and the udmabuf exported from it: the same pages.
    Udmabuf {
        dmabuf: DmaBuf,
        _memory: MemfdBuffer,
    },
    Shm(MemfdBuffer),
}

struct Slot {
    buffer: WlBuffer,
    data: SlotData,
    memory: Memory,
    /// `submitted` count when this buffer was last presented (0: never).
    presented_at: u64,
}

impl SlotData {
    fn fresh() -> Self {
        SlotData {
            released: Arc::new(AtomicBool::new(true)),
            releases: Arc::default(),
        }
    }
}

impl Slot {
    /// A slot for a dma-buf (`memory` is not wl_shm), its wl_buffer made with `create_immed`.
    fn dmabuf<D>(
        memory: Memory,
        layout: &Layout,
        base_offset: u32,
        decision: &Decision,
        linux_dmabuf: &zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
        qh: &QueueHandle<D>,
    ) -> Result<Slot, SwapchainError>
    where
        D: Dispatch<zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1, BufferDescription>
            + Dispatch<WlBuffer, SlotData>
            + 'static,
    {
        let data = SlotData::fresh();
        let buffer = {
            let dmabuf = match &memory {
                Memory::DmaBuf(d) | Memory::Udmabuf { dmabuf: d, .. } => d,
                Memory::Shm(_) => unreachable!("Slot::dmabuf is for dma-bufs"),
            };
            let mut spec = BufferSpec::from_layout(layout, &[dmabuf], base_offset)?;
            spec.sampling_device = decision.device;
            spec.create_immed(linux_dmabuf, qh, data.clone())
        };
        Ok(Slot {
            buffer,
            data,
            memory,
            presented_at: 0,
        })
    }
}

/// N buffers of one layout for one surface.
pub struct Swapchain {
    slots: Vec<Slot>,
    layout: Layout,
    decision: Decision,
    provider: String,
    shared: Arc<Shared>,
    presentation: Option<WpPresentation>,
    submitted: u64,
}

impl std::fmt::Debug for Swapchain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swapchain")
            .field("buffers", &self.slots.len())
            .field("layout", &self.layout)
            .field("decision", &self.decision)
            .field("provider", &self.provider)
            .field("submitted", &self.submitted)
            .finish()
    }
}

fn shm_format(format: Fourcc) -> wl_shm::Format {
    // wl_shm uses DRM fourccs except for its two original formats.
    match format {
        Fourcc::ARGB8888 => wl_shm::Format::Argb8888,
        Fourcc::XRGB8888 => wl_shm::Format::Xrgb8888,
        f => wl_shm::Format::try_from(f.0).unwrap_or(wl_shm::Format::Argb8888),
    }
}

impl Swapchain {
    /// Allocates `count` single-buffer images of `layout` the way `decision` (from the
    /// compositor's feedback, or [`decide_without_linux_dmabuf`](super::decide_without_linux_dmabuf))
    /// chose: dma-bufs through `alloc` with the decision's usage, or memfds shared through
    /// wl_shm; each becomes a wl_buffer.
    pub fn new<D>(
        alloc: &Allocator,
        decision: Decision,
        layout: Layout,
        count: usize,
        protocols: &SwapchainProtocols<'_>,
        qh: &QueueHandle<D>,
    ) -> Result<Self, SwapchainError>
    where
        D: Dispatch<zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1, BufferDescription>
            + Dispatch<WlBuffer, SlotData>
            + Dispatch<WlShmPool, ()>
            + 'static,
    {
        let mut slots = Vec::with_capacity(count);
        let mut provider = String::new();
        let new_data = SlotData::fresh;
        match (decision.path.usage(), protocols.linux_dmabuf, protocols.shm) {
            (Some(usage), Some(linux_dmabuf), _) => {
                for _ in 0..count {
                    let a = alloc.allocate(
                        usage,
                        layout.total_size() as usize,
                        &Constraints::default(),
                    )?;
                    provider = a.provider;
                    slots.push(Slot::dmabuf(
                        Memory::DmaBuf(a.buffer),
                        &layout,
                        0,
                        &decision,
                        linux_dmabuf,
                        qh,
                    )?);
                }
            }
            (None, _, Some(shm)) => {
                let [plane] = layout.planes.as_slice() else {
                    return Err(SwapchainError::ShmMultiPlane(layout.format));
                };
                let len = layout.total_size() as usize;
                for _ in 0..count {
                    let mem = MemfdBuffer::new(len)?;
                    let pool = shm.create_pool(mem.memfd(), len as i32, qh, ());
                    let data = new_data();
                    let buffer = pool.create_buffer(
                        plane.offset as i32,
                        layout.width as i32,
                        layout.height as i32,
                        plane.stride as i32,
                        shm_format(layout.format),
                        qh,
                        data.clone(),
                    );
                    pool.destroy();
                    slots.push(Slot {
                        buffer,
                        data,
                        memory: Memory::Shm(mem),
                        presented_at: 0,
                    });
                }
                provider = "wl_shm".into();
            }
            (Some(_), None, _) => {
                return Err(SwapchainError::NoPath(format!(
                    "{decision}, but no linux-dmabuf is bound"
                )));
            }
            (None, _, None) => {
                return Err(SwapchainError::NoPath(format!(
                    "{decision}, but no wl_shm is bound"
                )));
            }
        }
        tracing::info!(count, %provider, decision = %decision, "swapchain allocated");
        Ok(Self {
            slots,
            layout,
            decision,
            provider,
            shared: Arc::default(),
            presentation: protocols.presentation.cloned(),
            submitted: 0,
        })
    }

    /// As [`new`](Self::new), but the dma-bufs are application memory: `count` sealed memfds
    /// exported through `/dev/udmabuf` (the path for memory a client already holds, or for a
    /// client that may not open heap nodes). A wl_shm decision still gives wl_shm buffers.
    pub fn from_udmabuf<D>(
        udmabuf: &Udmabuf,
        decision: Decision,
        layout: Layout,
        count: usize,
        protocols: &SwapchainProtocols<'_>,
        qh: &QueueHandle<D>,
    ) -> Result<Self, SwapchainError>
    where
        D: Dispatch<zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1, BufferDescription>
            + Dispatch<WlBuffer, SlotData>
            + Dispatch<WlShmPool, ()>
            + 'static,
    {
        let (Some(_), Some(linux_dmabuf)) = (decision.path.usage(), protocols.linux_dmabuf) else {
            // wl_shm, or the error saying why neither path exists.
            return Self::new(
                &Allocator::new(Default::default(), Default::default()),
                decision,
                layout,
                count,
                protocols,
                qh,
            );
        };
        let len = layout.total_size() as usize;
        let mut slots = Vec::with_capacity(count);
        for _ in 0..count {
            let memory = MemfdBuffer::new(len)?;
            let exported = memory.export_range_for(udmabuf, 0..len, "swapchain")?;
            let offset = exported.offset;
            let memory = Memory::Udmabuf {
                dmabuf: exported.dmabuf,
                _memory: memory,
            };
            slots.push(Slot::dmabuf(
                memory,
                &layout,
                offset,
                &decision,
                linux_dmabuf,
                qh,
            )?);
        }
        tracing::info!(count, decision = %decision, "udmabuf swapchain allocated");
        Ok(Self {
            slots,
            layout,
            decision,
            provider: "udmabuf".into(),
            shared: Arc::default(),
            presentation: protocols.presentation.cloned(),
            submitted: 0,
        })
    }

    /// The decision the buffers were allocated by.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// Who served the buffers (heap name, `udmabuf`, or `wl_shm`).
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The layout of every buffer.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// False while the last frame's callback has not arrived: drawing now would only queue a
    /// frame the compositor will not show sooner. Dispatch events and try again.
    pub fn ready(&self) -> bool {
        !self.shared.frame_pending.load(Ordering::Acquire)
    }

    /// A buffer the compositor is not using, by index. `None` when all are still held (wait
    /// for a release, i.e. dispatch events, and try again).
    pub fn acquire(&mut self) -> Option<usize> {
        self.acquire_except(None)
    }

    /// As [`acquire`](Self::acquire), passing over buffer `busy` (one the application itself
    /// still reads, e.g. a detector thread).
    pub fn acquire_except(&mut self, busy: Option<usize>) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .position(|(i, s)| Some(i) != busy && s.data.released.load(Ordering::Acquire))
    }

    /// How many frames old the content of buffer `index` is (as EGL's buffer age): 0 when it
    /// was never presented, 1 when it holds the last frame, N when N-1 frames were presented
    /// since. A client redraws what changed in the last `age` frames, not the whole buffer.
    pub fn age(&self, index: usize) -> u64 {
        self.slots.get(index).map_or(0, |s| {
            if s.presented_at == 0 {
                0
            } else {
                self.submitted + 1 - s.presented_at
            }
        })
    }

    /// The dma-buf behind buffer `index` (`None` on the wl_shm path).
    pub fn dmabuf(&self, index: usize) -> Option<&DmaBuf> {
        match &self.slots.get(index)?.memory {
            Memory::DmaBuf(d) | Memory::Udmabuf { dmabuf: d, .. } => Some(d),
            Memory::Shm(_) => None,
        }
    }

    /// Draws into buffer `index` with CPU access bracketed correctly: a dma-buf is mapped with
    /// a `DMA_BUF_IOCTL_SYNC` write guard, a wl_shm memfd is written directly.
    pub fn write<R>(
        &mut self,
        index: usize,
        draw: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R, SwapchainError> {
        let slot = self
            .slots
            .get_mut(index)
            .ok_or(SwapchainError::NoSuchBuffer(index))?;
        match &mut slot.memory {
            // For udmabuf the mapping is of the application's own pages; the SYNC bracket is
            // what makes the writes visible to a device without cache snooping.
            Memory::DmaBuf(d) | Memory::Udmabuf { dmabuf: d, .. } => {
                let mut map = d.map()?;
                let mut bytes = map.write()?;
                Ok(draw(&mut bytes))
            }
            Memory::Shm(m) => Ok(draw(m)),
        }
    }

    /// Reads buffer `index` with CPU access bracketed correctly (a dma-buf through a
    /// `DMA_BUF_IOCTL_SYNC` read guard, a wl_shm memfd directly).
    pub fn read<R>(
        &self,
        index: usize,
        look: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, SwapchainError> {
        let slot = self
            .slots
            .get(index)
            .ok_or(SwapchainError::NoSuchBuffer(index))?;
        match &slot.memory {
            Memory::DmaBuf(d) | Memory::Udmabuf { dmabuf: d, .. } => {
                let map = d.map()?;
                let bytes = map.read()?;
                Ok(look(&bytes))
            }
            Memory::Shm(m) => Ok(look(m)),
        }
    }

    /// Attaches buffer `index` to `surface`, damages `damage` (buffer coordinates `(x, y, w,
    /// h)`; empty means the whole buffer), asks for a frame callback and presentation feedback,
    /// and commits. The buffer is busy until the compositor releases it; [`ready`](Self::ready)
    /// is false until the frame callback arrives.
    pub fn present<D>(
        &mut self,
        index: usize,
        surface: &WlSurface,
        damage: &[(i32, i32, i32, i32)],
        qh: &QueueHandle<D>,
    ) -> Result<(), SwapchainError>
    where
        D: Dispatch<WlCallback, FrameData>
            + Dispatch<wp_presentation_feedback::WpPresentationFeedback, PresentData>
            + 'static,
    {
        let slot = self
            .slots
            .get_mut(index)
            .ok_or(SwapchainError::NoSuchBuffer(index))?;
        self.submitted += 1;
        slot.presented_at = self.submitted;
        slot.data.released.store(false, Ordering::Release);
        surface.attach(Some(&slot.buffer), 0, 0);
        if damage.is_empty() {
            surface.damage_buffer(0, 0, self.layout.width as i32, self.layout.height as i32);
        }
        for &(x, y, w, h) in damage {
            surface.damage_buffer(x, y, w, h);
        }
        self.shared.frame_pending.store(true, Ordering::Release);
        surface.frame(qh, FrameData(self.shared.clone()));
        if let Some(p) = &self.presentation {
            p.feedback(surface, qh, PresentData(self.shared.clone()));
        }
        surface.commit();
        Ok(())
    }

    /// Frames, presentations and releases so far.
    pub fn stats(&self) -> SwapchainStats {
        SwapchainStats {
            submitted: self.submitted,
            frames_done: self.shared.frames_done.load(Ordering::Relaxed),
            presented: self.shared.presented.load(Ordering::Relaxed),
            zero_copy: self.shared.zero_copy.load(Ordering::Relaxed),
            discarded: self.shared.discarded.load(Ordering::Relaxed),
            releases: self
                .slots
                .iter()
                .map(|s| s.data.releases.load(Ordering::Relaxed))
                .collect(),
        }
    }

    /// Whether buffers allocated by `new` would come from elsewhere than these: the path
    /// (scan-out, sampling, shm) changed with the surface's feedback. The caller then makes a new
    /// swapchain; dropping this one destroys its wl_buffers and closes its dma-bufs.
    pub fn outdated_by(&self, new: &Decision) -> bool {
        new.path != self.decision.path
    }

    /// True when the decision was to scan out (the buffers came from the `scanout` usage).
    pub fn for_scanout(&self) -> bool {
        self.decision.path == BufferPath::Scanout
    }
}

impl Drop for Swapchain {
    fn drop(&mut self) {
        for s in &self.slots {
            s.buffer.destroy();
        }
    }
}

/// Dispatches the events of swapchain objects (`wl_buffer.release`, frame callbacks,
/// presentation feedback); wire it into an application's state with
/// [`delegate_swapchain!`](crate::delegate_swapchain).
#[derive(Debug)]
pub struct SwapchainDispatch;

impl<D> Dispatch<WlBuffer, SlotData, D> for SwapchainDispatch
where
    D: Dispatch<WlBuffer, SlotData>,
{
    fn event(
        _: &mut D,
        _: &WlBuffer,
        event: wl_buffer::Event,
        data: &SlotData,
        _: &Connection,
        _: &QueueHandle<D>,
    ) {
        if let wl_buffer::Event::Release = event {
            data.releases.fetch_add(1, Ordering::Relaxed);
            data.released.store(true, Ordering::Release);
        }
    }
}

impl<D> Dispatch<WlCallback, FrameData, D> for SwapchainDispatch
where
    D: Dispatch<WlCallback, FrameData>,
{
    fn event(
        _: &mut D,
        _: &WlCallback,
        event: wl_callback::Event,
        data: &FrameData,
        _: &Connection,
        _: &QueueHandle<D>,
    ) {
        if let wl_callback::Event::Done { .. } = event {
            data.0.frames_done.fetch_add(1, Ordering::Relaxed);
            data.0.frame_pending.store(false, Ordering::Release);
        }
    }
}

impl<D> Dispatch<wp_presentation_feedback::WpPresentationFeedback, PresentData, D>
    for SwapchainDispatch
where
    D: Dispatch<wp_presentation_feedback::WpPresentationFeedback, PresentData>,
{
    fn event(
        _: &mut D,
        _: &wp_presentation_feedback::WpPresentationFeedback,
        event: wp_presentation_feedback::Event,
        data: &PresentData,
        _: &Connection,
        _: &QueueHandle<D>,
    ) {
        match event {
            wp_presentation_feedback::Event::Presented { flags, .. } => {
                let zero_copy = matches!(flags, WEnum::Value(f)
                    if f.contains(wp_presentation_feedback::Kind::ZeroCopy));
                data.0.presented.fetch_add(1, Ordering::Relaxed);
                data.0
                    .zero_copy
                    .fetch_add(u64::from(zero_copy), Ordering::Relaxed);
            }
            wp_presentation_feedback::Event::Discarded => {
                data.0.discarded.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// Routes swapchain objects' events (buffers, frame callbacks, presentation feedback) of an
/// application's state type to [`SwapchainDispatch`].
#[macro_export]
macro_rules! delegate_swapchain {
    ($ty:ty) => {
        wayland_client::delegate_dispatch!($ty: [
            wayland_client::protocol::wl_buffer::WlBuffer: $crate::client::SlotData
        ] => $crate::client::SwapchainDispatch);
        wayland_client::delegate_dispatch!($ty: [
            wayland_client::protocol::wl_callback::WlCallback: $crate::client::FrameData
        ] => $crate::client::SwapchainDispatch);
        wayland_client::delegate_dispatch!($ty: [
            wayland_protocols::wp::presentation_time::client::wp_presentation_feedback::WpPresentationFeedback: $crate::client::PresentData
        ] => $crate::client::SwapchainDispatch);
    };
}
