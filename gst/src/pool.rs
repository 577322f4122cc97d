//! `WayheapBufferPool`: a GstBufferPool whose buffers are wayheap dma-bufs (GstDmaBufMemory)
//! with a GstVideoMeta, allocated by a [`wayheap::policy::Allocator`] for one usage.
//!
//! With the video-meta option (the producer reads strides and offsets from the meta) the planes
//! follow wayheap's layout ([`wayheap::layout::Layout`]: strides and offsets aligned for display
//! engines, the policy's alignment merged in); without it they follow GStreamer's default layout,
//! which a producer that ignores metas assumes. Buffers come back to the pool only when the last
//! holder (a sink waiting for the compositor's release, say) drops them: GstBufferPool's rule.
//! And a buffer back in the pool goes upstream again only once its implicit fences have
//! signalled (`DMA_BUF_IOCTL_EXPORT_SYNC_FILE`, Linux 6.0): a consumer that released the buffer
//! while its GPU or display engine still reads it (a compositor's render job, a V4L2 output
//! queue) leaves a fence there, and the producer must not draw over the frame before it signals.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::sync::{LazyLock, Mutex};

use std::os::fd::RawFd;
use std::time::Duration;

use gst::glib;
use gst::subclass::prelude::*;
use gst_allocators::prelude::*;
use wayheap::dmabuf::{DmaBuf, DmaBufError, FenceAccess, FenceState};
use wayheap::layout::Fourcc;
use wayheap::policy::{Allocator, Constraints};

use crate::formats;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "wayheappool",
        gst::DebugColorFlags::empty(),
        Some("wayheap dma-buf buffer pool"),
    )
});

glib::wrapper! {
    /// A buffer pool of wayheap dma-bufs.
    pub struct WayheapBufferPool(ObjectSubclass<imp::WayheapBufferPool>)
        @extends gst::BufferPool, gst::Object;
}

/// The longest a buffer waits for its consumers' fences before the pool gives up on it: a fence
/// that never signals is a hung device, and the pipeline says so instead of stalling silently.
const FENCE_WAIT: Duration = Duration::from_secs(10);

/// The fd of `buffer`'s memory when it is one whole dma-buf.
pub fn dmabuf_fd(buffer: &gst::BufferRef) -> Option<RawFd> {
    (buffer.n_memory() == 1)
        .then(|| buffer.peek_memory(0))
        .and_then(|m| m.downcast_memory_ref::<gst_allocators::DmaBufMemory>())
        .filter(|m| m.offset() == 0)
        .map(|m| m.fd())
}

/// Why [`WayheapBufferPool::offer`] offered no pool.
#[derive(Debug)]
pub enum OfferError {
    /// No provider can serve the usage here (the policy walk's words): upstream should use its
    /// own memory, which the element says with a warning.
    NoDmaBuf(String),
    /// The query or the pool's configuration is wrong.
    Pool(gst::LoggableError),
}

/// The video caps an ALLOCATION query asks about, and their DRM fourcc.
pub fn queried_video(
    query: &gst::query::Allocation,
) -> Result<(gst::Caps, gst_video::VideoInfo, Fourcc), gst::LoggableError> {
    let (caps, _need_pool) = query.get_owned();
    let caps = caps.ok_or_else(|| gst::loggable_error!(CAT, "allocation query without caps"))?;
    let info = gst_video::VideoInfo::from_caps(&caps)
        .map_err(|e| gst::loggable_error!(CAT, "not video caps {caps}: {e}"))?;
    let fourcc = formats::fourcc(info.format())
        .ok_or_else(|| gst::loggable_error!(CAT, "no DRM layout for {}", info.format()))?;
    Ok((caps, info, fourcc))
}

impl WayheapBufferPool {
    /// A pool allocating through `allocator` for `usage`.
    pub fn new(allocator: Allocator, usage: &str) -> Self {
        let pool: Self = glib::Object::new();
        let mut state = crate::lock(&pool.imp().state);
        state.allocator = Some(allocator);
        state.usage = usage.to_owned();
        drop(state);
        pool
    }

    /// Answers an ALLOCATION query for `caps` with a pool of at least `min_buffers` dma-bufs
    /// for `usage`, with video metas. One image is allocated first, so that where no provider
    /// can serve (no heap, no udmabuf, no access) the caller hears why
    /// ([`OfferError::NoDmaBuf`]) instead of upstream failing with only "not-negotiated".
    pub fn offer(
        query: &mut gst::query::Allocation,
        caps: &gst::Caps,
        info: &gst_video::VideoInfo,
        allocator: Allocator,
        usage: &str,
        min_buffers: u32,
    ) -> Result<Self, OfferError> {
        let fourcc = formats::fourcc(info.format()).ok_or_else(|| {
            OfferError::Pool(gst::loggable_error!(
                CAT,
                "no DRM layout for {}",
                info.format()
            ))
        })?;
        allocator
            .allocate_image(
                usage,
                fourcc,
                info.width(),
                info.height(),
                &Default::default(),
                false,
            )
            .map_err(|e| {
                OfferError::NoDmaBuf(format!(
                    "no dma-buf for usage {usage}: {}",
                    wayheap::error::chain(&e)
                ))
            })?;
        let pool = Self::new(allocator, usage);
        let mut config = pool.config();
        let size = Self::buffer_size(info, true) as u32;
        config.set_params(Some(caps), size, min_buffers, 0);
        config.add_option(gst_video::BUFFER_POOL_OPTION_VIDEO_META.as_ref());
        pool.set_config(config).map_err(|e| {
            OfferError::Pool(gst::loggable_error!(CAT, "configuring the pool: {e}"))
        })?;
        query.add_allocation_pool(Some(&pool), size, min_buffers, 0);
        query.add_allocation_meta::<gst_video::VideoMeta>(None);
        Ok(pool)
    }

    /// The provider that served the last buffer (`system`, `reserved`, `ion:reserved`,
    /// `udmabuf`), with the providers passed over for it, as the policy walk reported.
    pub fn provider(&self) -> Option<String> {
        crate::lock(&self.imp().state).last_provider.clone()
    }

    /// The image size one buffer holds for `info` (the pool's configured size).
    pub fn buffer_size(info: &gst_video::VideoInfo, video_meta: bool) -> usize {
        match (video_meta, formats::fourcc(info.format())) {
            (true, Some(fourcc)) => wayheap::layout::Layout::new(
                fourcc,
                info.width(),
                info.height(),
                Default::default(),
            )
            .map(|l| l.total_size() as usize)
            .unwrap_or(info.size()),
            _ => info.size(),
        }
    }
}

#[derive(Default)]
struct State {
    allocator: Option<Allocator>,
    usage: String,
    info: Option<gst_video::VideoInfo>,
    video_meta: bool,
    /// The wayheap buffers behind the pool's memories, by the memory's fd: kept (and accounted)
    /// as long as the pool has the buffer.
    held: HashMap<i32, DmaBuf>,
    last_provider: Option<String>,
    /// The kernel has no sync_file export (before 6.0): buffers go upstream without a fence
    /// wait (GStreamer's dma-buf mappings still bracket CPU access with DMA_BUF_IOCTL_SYNC).
    no_fence_export: bool,
}

impl State {
    /// The fences a writer of the buffer behind `fd` must wait for, or `None` when there are
    /// none to wait for here.
    fn writer_fences(&mut self, fd: RawFd) -> Option<wayheap::dmabuf::SyncFile> {
        if self.no_fence_export {
            return None;
        }
        match self.held.get(&fd)?.export_sync_file(FenceAccess::Write) {
            Ok(fence) => Some(fence),
            Err(e @ DmaBufError::Unsupported { .. }) => {
                gst::info!(CAT, "no fence waits before reuse: {e}");
                self.no_fence_export = true;
                None
            }
            Err(e) => {
                gst::warning!(CAT, "reading the buffer's fences: {e}");
                None
            }
        }
    }
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct WayheapBufferPool {
        pub(super) state: Mutex<State>,
    }

    impl std::fmt::Debug for WayheapBufferPool {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("WayheapBufferPool").finish_non_exhaustive()
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for WayheapBufferPool {
        const NAME: &'static str = "GstWayheapBufferPool";
        type Type = super::WayheapBufferPool;
        type ParentType = gst::BufferPool;
    }

    impl ObjectImpl for WayheapBufferPool {}
    impl GstObjectImpl for WayheapBufferPool {}

    impl BufferPoolImpl for WayheapBufferPool {
        fn options() -> &'static [&'static str] {
            static OPTIONS: [&str; 1] = ["GstBufferPoolOptionVideoMeta"];
            &OPTIONS
        }

        fn set_config(&self, config: &mut gst::BufferPoolConfigRef) -> bool {
            let Some((Some(caps), _, min, max)) = config.params() else {
                gst::error!(CAT, imp = self, "no caps in the pool's configuration");
                return false;
            };
            let Ok(info) = gst_video::VideoInfo::from_caps(&caps) else {
                gst::error!(CAT, imp = self, "not video caps: {caps}");
                return false;
            };
            if formats::fourcc(info.format()).is_none() {
                gst::error!(
                    CAT,
                    imp = self,
                    "format {} has no DRM layout here",
                    info.format()
                );
                return false;
            }
            let video_meta = config.has_option(gst_video::BUFFER_POOL_OPTION_VIDEO_META.as_ref());
            let size = super::WayheapBufferPool::buffer_size(&info, video_meta) as u32;
            config.set_params(Some(&caps), size, min, max);
            let mut state = crate::lock(&self.state);
            state.info = Some(info);
            state.video_meta = video_meta;
            drop(state);
            self.parent_set_config(config)
        }

        /// A free buffer, once every consumer's fence on it has signalled.
        fn acquire_buffer(
            &self,
            params: Option<&gst::BufferPoolAcquireParams>,
        ) -> Result<gst::Buffer, gst::FlowError> {
            let buffer = self.parent_acquire_buffer(params)?;
            let fence =
                dmabuf_fd(&buffer).and_then(|fd| crate::lock(&self.state).writer_fences(fd));
            if let Some(fence) = fence {
                match fence.wait(FENCE_WAIT) {
                    Ok(FenceState::Signalled) => {}
                    Ok(FenceState::TimedOut) => {
                        gst::error!(
                            CAT,
                            imp = self,
                            "a consumer's fence on a pool buffer did not signal within {FENCE_WAIT:?}: its device hangs"
                        );
                        return Err(gst::FlowError::Error);
                    }
                    Err(e) => gst::warning!(CAT, imp = self, "waiting for a fence: {e}"),
                }
            }
            Ok(buffer)
        }

        fn alloc_buffer(
            &self,
            _params: Option<&gst::BufferPoolAcquireParams>,
        ) -> Result<gst::Buffer, gst::FlowError> {
            let mut state = crate::lock(&self.state);
            let info = state.info.clone().ok_or(gst::FlowError::NotNegotiated)?;
            let allocator = state.allocator.clone().ok_or(gst::FlowError::Error)?;
            let fourcc = formats::fourcc(info.format()).ok_or(gst::FlowError::NotNegotiated)?;
            let fail = |what: String| {
                gst::error!(CAT, imp = self, "{what}");
                gst::FlowError::Error
            };
            // wayheap's layout where the producer reads the meta; GStreamer's otherwise.
            let (allocation, offsets, strides) = if state.video_meta {
                let (layout, mut allocations) = allocator
                    .allocate_image(
                        &state.usage,
                        fourcc,
                        info.width(),
                        info.height(),
                        &Constraints::default(),
                        false,
                    )
                    .map_err(|e| fail(wayheap::error::chain(&e)))?;
                let offsets: Vec<usize> = layout.planes.iter().map(|p| p.offset as usize).collect();
                let strides: Vec<i32> = layout.planes.iter().map(|p| p.stride as i32).collect();
                (allocations.remove(0), offsets, strides)
            } else {
                let allocation = allocator
                    .allocate(&state.usage, info.size(), &Constraints::default())
                    .map_err(|e| fail(wayheap::error::chain(&e)))?;
                (allocation, info.offset().to_vec(), info.stride().to_vec())
            };
            let skipped = allocation
                .skipped
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            gst::debug!(
                CAT,
                imp = self,
                "buffer from {} (passed over: {skipped})",
                allocation.provider
            );
            state.last_provider = Some(if skipped.is_empty() {
                allocation.provider.clone()
            } else {
                format!("{} (passed over: {skipped})", allocation.provider)
            });
            let dmabuf = allocation.buffer;
            let fd = dmabuf
                .fd()
                .try_clone_to_owned()
                .map_err(|e| fail(format!("duplicating the dma-buf fd: {e}")))?;
            let key = fd.as_raw_fd();
            let gst_allocator = gst_allocators::DmaBufAllocator::new();
            // SAFETY: `fd` is a dma-buf (a heap, ION or udmabuf export wayheap just made) of at
            // least `dmabuf.size()` bytes, and is owned: the memory takes it and closes it.
            let memory = unsafe { gst_allocator.alloc_dmabuf(fd, dmabuf.size()) }
                .map_err(|e| fail(format!("wrapping the dma-buf: {e}")))?;
            state.held.insert(key, dmabuf);
            drop(state);
            let mut buffer = gst::Buffer::new();
            {
                let buffer = buffer.get_mut().expect("a new buffer is writable");
                buffer.append_memory(memory);
                gst_video::VideoMeta::add_full(
                    buffer,
                    gst_video::VideoFrameFlags::empty(),
                    info.format(),
                    info.width(),
                    info.height(),
                    &offsets[..info.n_planes() as usize],
                    &strides[..info.n_planes() as usize],
                )
                .map_err(|e| fail(format!("adding the video meta: {e}")))?;
            }
            Ok(buffer)
        }

        fn free_buffer(&self, buffer: gst::Buffer) {
            let fd = buffer
                .peek_memory(0)
                .downcast_memory_ref::<gst_allocators::DmaBufMemory>()
                .map(|m| m.fd());
            if let Some(fd) = fd {
                crate::lock(&self.state).held.remove(&fd);
            }
            self.parent_free_buffer(buffer);
        }
    }
}
