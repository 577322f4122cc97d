//! Kernel ABI: the structures and ioctl numbers of `<linux/dma-heap.h>` and `<linux/dma-buf.h>`.
//!
//! Kept in one place so the safe wrappers in [`crate::heap`] and [`crate::dmabuf`] read as what they
//! do, not as bit layouts.

use rustix::ioctl::{Opcode, opcode};

/// `struct dma_heap_allocation_data` (`<linux/dma-heap.h>`).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DmaHeapAllocationData {
    pub len: u64,
    pub fd: u32,
    pub fd_flags: u32,
    pub heap_flags: u64,
}

/// `DMA_HEAP_IOCTL_ALLOC`: `_IOWR('H', 0x0, struct dma_heap_allocation_data)`.
pub(crate) const DMA_HEAP_IOCTL_ALLOC: Opcode =
    opcode::read_write::<DmaHeapAllocationData>(b'H', 0);

/// `struct dma_buf_sync` (`<linux/dma-buf.h>`).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DmaBufSync {
    pub flags: u64,
}

/// `DMA_BUF_IOCTL_SYNC`: `_IOW('b', 0, struct dma_buf_sync)`.
pub(crate) const DMA_BUF_IOCTL_SYNC: Opcode = opcode::write::<DmaBufSync>(b'b', 0);

pub(crate) const DMA_BUF_SYNC_READ: u64 = 1;
pub(crate) const DMA_BUF_SYNC_WRITE: u64 = 2;
pub(crate) const DMA_BUF_SYNC_START: u64 = 0;
pub(crate) const DMA_BUF_SYNC_END: u64 = 4;
