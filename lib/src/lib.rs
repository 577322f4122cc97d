//! # wayheap
//!
//! Zero-copy dma-buf sharing for Linux graphics stacks: allocate dma-bufs from the kernel's
//! DMA-BUF heaps (`/dev/dma_heap/*`), map them with correct cache synchronisation, and hand them
//! to a display engine, a camera or a Wayland compositor without copying a pixel.
//!
//! ## How to use
//!
//! ```no_run
//! use wayheap::heap::Heap;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The system heap exists on every kernel built with CONFIG_DMABUF_HEAPS_SYSTEM.
//! let heap = Heap::open("system")?;
//! let buf = heap.allocate(640 * 480 * 4)?;
//!
//! // CPU access goes through a guard that brackets it with DMA_BUF_IOCTL_SYNC.
//! let mut map = buf.map()?;
//! map.write()?.fill(0xff);
//!
//! // `buf.fd()` is what linux-dmabuf, DRM PRIME or V4L2 take.
//! # let _ = buf.fd();
//! # Ok(())
//! # }
//! ```
//!
//! Most applications do not name a heap: they name a *usage* and let the [`policy`] choose
//! (CMA first for scanout, system otherwise, udmabuf where heap nodes are not accessible, with
//! fallback when one is full), or they export memory they already hold through [`export`].
//!
//! ## Modules
//! - [`heap`]: DMA-BUF heaps — list and classify them, allocate from one.
//! - [`ion`]: ION (`/dev/ion`), the allocator of 4.12-5.10 and vendor BSP kernels, behind the
//!   same heap classes.
//! - [`export`]: application memory (memfd-backed) as dma-bufs through `/dev/udmabuf`.
//! - [`dmabuf`]: the owned dma-buf handle, its mapping and CPU-access guards, naming, sync_file
//!   fences, and import of foreign dma-buf fds.
//! - [`layout`]: strides, plane offsets and sizes per DRM fourcc.
//! - [`policy`]: usage → ordered providers with constraints, and the allocation walk.
//! - [`pool`]: N equal buffers, reused without allocating.
//! - [`accounting`]: what the process holds, per provider and usage, and any process's dma-bufs.
//! - [`fdinfo`]: parsing a dma-buf's `/proc/<pid>/fdinfo` (shared by `dmabuf` and `accounting`).
//! - [`error`]: printing an error with its whole `source()` chain.
//! - `client` (feature `client`): linux-dmabuf feedback, parsed safely, and the allocation
//!   decision it leads to.
//! - `smithay` (feature `smithay`): the compositor side — PRIME framebuffer export, a heap-backed
//!   swapchain allocator, client dma-buf validation, plane placement with reasons, the heap-hints
//!   server.
//! - `kms` (feature `kms`, part of `smithay`): the writeback connector — an out-fence commit
//!   whose fence memory the library owns, and whole-screen captures.
//! - `protocols` (features `client`, `smithay`): bindings of the protocols wayheap defines
//!   (`wayheap_heap_hints_v1`).
//! - `v4l2` (feature `v4l2`): V4L2 capture straight into dma-bufs.
//! - [`yuv`]: YUV formats, colour matrices (BT.601/709/2020, limited/full) and a row converter to
//!   XRGB8888, for the buffers no plane takes.

#![warn(missing_docs)]

pub mod accounting;
#[cfg(feature = "client")]
pub mod client;
pub mod dmabuf;
pub mod error;
pub mod export;
pub mod fdinfo;
pub mod heap;
pub mod ion;
#[cfg(feature = "kms")]
pub mod kms;
pub mod layout;
pub mod policy;
pub mod pool;
#[cfg(test)]
mod proptest_config;
#[cfg(any(feature = "client", feature = "smithay"))]
pub mod protocols;
#[cfg(feature = "smithay")]
pub mod smithay;
mod sys;
#[cfg(feature = "v4l2")]
pub mod v4l2;
pub mod yuv;
