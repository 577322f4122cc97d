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
//! ## Modules
//! - [`heap`]: DMA-BUF heaps — open a heap node, allocate from it.
//! - [`dmabuf`]: the owned dma-buf handle, its memory mapping and the CPU-access guards.

pub mod dmabuf;
pub mod heap;
mod sys;
