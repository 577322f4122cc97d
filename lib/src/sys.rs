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

/// `DMA_BUF_NAME_LEN`: the name buffer's size, terminating NUL included.
pub(crate) const DMA_BUF_NAME_LEN: usize = 32;

/// `DMA_BUF_SET_NAME_B`: `_IOW('b', 1, __u64)` — the argument is a pointer to a C string.
pub(crate) const DMA_BUF_SET_NAME: Opcode = opcode::write::<u64>(b'b', 1);

/// `struct dma_buf_export_sync_file`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DmaBufExportSyncFile {
    pub flags: u32,
    pub fd: i32,
}

/// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE`: `_IOWR('b', 2, struct dma_buf_export_sync_file)`.
pub(crate) const DMA_BUF_IOCTL_EXPORT_SYNC_FILE: Opcode =
    opcode::read_write::<DmaBufExportSyncFile>(b'b', 2);

/// `struct dma_buf_import_sync_file`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DmaBufImportSyncFile {
    pub flags: u32,
    pub fd: i32,
}

/// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE`: `_IOW('b', 3, struct dma_buf_import_sync_file)`.
pub(crate) const DMA_BUF_IOCTL_IMPORT_SYNC_FILE: Opcode =
    opcode::write::<DmaBufImportSyncFile>(b'b', 3);

/// `struct udmabuf_create` (`<linux/udmabuf.h>`).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct UdmabufCreate {
    pub memfd: u32,
    pub flags: u32,
    pub offset: u64,
    pub size: u64,
}

/// `struct udmabuf_create_item`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct UdmabufCreateItem {
    pub memfd: u32,
    pub pad: u32,
    pub offset: u64,
    pub size: u64,
}

/// The fixed head of `struct udmabuf_create_list` (its items follow it in memory).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct UdmabufCreateListHead {
    pub flags: u32,
    pub count: u32,
}

pub(crate) const UDMABUF_FLAGS_CLOEXEC: u32 = 0x01;

/// `UDMABUF_CREATE`: `_IOW('u', 0x42, struct udmabuf_create)`.
pub(crate) const UDMABUF_CREATE: Opcode = opcode::write::<UdmabufCreate>(b'u', 0x42);

/// `UDMABUF_CREATE_LIST`: `_IOW('u', 0x43, struct udmabuf_create_list)` (head only in the size).
pub(crate) const UDMABUF_CREATE_LIST: Opcode = opcode::write::<UdmabufCreateListHead>(b'u', 0x43);
