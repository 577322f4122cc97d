//! [`Swapchain`]: N dma-buf wl_buffers of one layout, handed out only when the compositor has
//! released them, allocated through the policy usage the feedback decision chose.
//!
//! The compositor reads a buffer until it sends `wl_buffer.release`; drawing into it before
//! that tears or corrupts what is on screen (and on a plane, the display engine reads it
//! directly). The swapchain tracks releases itself: its buffers carry [`SlotData`], whose
//! dispatch (wired with [`delegate_swapchain!`](crate::delegate_swapchain)) marks them free.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use wayland_client::protocol::wl_buffer::{self, WlBuffer};
use wayland_client::protocol::wl_surface::WlSurface;
use wayland_client::{Connection, Dispatch, QueueHandle};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1, zwp_linux_dmabuf_v1,
};

use super::buffer::{BufferDescription, BufferSpec};
use super::decision::{BufferPath, Decision};
use crate::dmabuf::DmaBuf;
use crate::layout::{Layout, LayoutError};
use crate::policy::{AllocError, Allocator, Constraints};

/// User data of a swapchain's wl_buffers: whether the compositor released it.
#[derive(Debug, Clone, Default)]
pub struct SlotData {
    released: Arc<AtomicBool>,
    releases: Arc<AtomicU64>,
}

/// Why a swapchain could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SwapchainError {
    /// The decision was wl_shm: there is no dma-buf path to this compositor.
    #[error("the compositor takes no LINEAR dma-buf of this format ({0}): use wl_shm")]
    NoDmabufPath(String),
    /// Allocation failed.
    #[error(transparent)]
    Alloc(#[from] AllocError),
    /// The layout does not fit the buffers.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

struct Slot {
    buffer: WlBuffer,
    data: SlotData,
    dmabuf: DmaBuf,
}

/// N buffers of one layout for one surface.
pub struct Swapchain {
    slots: Vec<Slot>,
    layout: Layout,
    decision: Decision,
    provider: String,
}

impl std::fmt::Debug for Swapchain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swapchain")
            .field("buffers", &self.slots.len())
            .field("layout", &self.layout)
            .field("decision", &self.decision)
            .field("provider", &self.provider)
            .finish()
    }
}

impl Swapchain {
    /// Allocates `count` single-buffer images of `layout` through `alloc`, with the usage the
    /// `decision` (from the compositor's feedback) chose, and makes each a wl_buffer.
    pub fn new<D>(
        alloc: &Allocator,
        decision: Decision,
        layout: Layout,
        count: usize,
        linux_dmabuf: &zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
        qh: &QueueHandle<D>,
    ) -> Result<Self, SwapchainError>
    where
        D: Dispatch<zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1, BufferDescription>
            + Dispatch<WlBuffer, SlotData>
            + 'static,
    {
        let Some(usage) = decision.path.usage() else {
            return Err(SwapchainError::NoDmabufPath(decision.reason));
        };
        let mut slots = Vec::with_capacity(count);
        let mut provider = String::new();
        for _ in 0..count {
            let a = alloc.allocate(usage, layout.total_size() as usize, &Constraints::default())?;
            provider = a.provider;
            let data = SlotData {
                released: Arc::new(AtomicBool::new(true)),
                releases: Arc::default(),
            };
            let buffer = BufferSpec::from_layout(&layout, &[&a.buffer], 0)?.create_immed(
                linux_dmabuf,
                qh,
                data.clone(),
            );
            slots.push(Slot {
                buffer,
                data,
                dmabuf: a.buffer,
            });
        }
        tracing::info!(count, %provider, decision = %decision, "swapchain allocated");
        Ok(Self {
            slots,
            layout,
            decision,
            provider,
        })
    }

    /// The decision the buffers were allocated by.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// Who served the buffers (heap name or `udmabuf`).
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The layout of every buffer.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// A buffer the compositor is not using: its index and dma-buf to draw into. `None` when
    /// all are still held (wait for a release, i.e. dispatch events, and try again).
    pub fn acquire(&mut self) -> Option<(usize, &DmaBuf)> {
        let i = self
            .slots
            .iter()
            .position(|s| s.data.released.load(Ordering::Acquire))?;
        Some((i, &self.slots[i].dmabuf))
    }

    /// Attaches buffer `index` to `surface` with full damage and commits; the buffer is busy
    /// until the compositor releases it.
    pub fn submit(&mut self, index: usize, surface: &WlSurface) {
        let slot = &self.slots[index];
        slot.data.released.store(false, Ordering::Release);
        surface.attach(Some(&slot.buffer), 0, 0);
        surface.damage_buffer(0, 0, self.layout.width as i32, self.layout.height as i32);
        surface.commit();
    }

    /// Releases seen so far, per buffer.
    pub fn releases(&self) -> Vec<u64> {
        self.slots
            .iter()
            .map(|s| s.data.releases.load(Ordering::Relaxed))
            .collect()
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

/// Dispatches `wl_buffer.release` for swapchain buffers; wire it into an application's state
/// with [`delegate_swapchain!`](crate::delegate_swapchain).
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

/// Routes swapchain buffer events of an application's state type to [`SwapchainDispatch`].
#[macro_export]
macro_rules! delegate_swapchain {
    ($ty:ty) => {
        wayland_client::delegate_dispatch!($ty: [
            wayland_client::protocol::wl_buffer::WlBuffer: $crate::client::SlotData
        ] => $crate::client::SwapchainDispatch);
    };
}
