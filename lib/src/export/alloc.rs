//! [`MemfdAlloc`]: a global allocator that makes large allocations exportable.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::c_void;
use std::os::fd::{BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use rustix::fs::MemfdFlags;

use super::{ExportError, ExportedRange, Udmabuf, export_unaligned};

/// How many memfd-backed allocations can be alive at once; beyond that, allocations fall back to
/// the system allocator (and are then not exportable).
const SLOTS: usize = 512;

#[derive(Clone, Copy)]
struct Slot {
    addr: usize,
    len: usize,
    fd: RawFd,
}

const EMPTY: Slot = Slot {
    addr: 0,
    len: 0,
    fd: -1,
};

/// Live memfd allocations. A `Mutex` from std never allocates, so it is usable inside an allocator.
static TABLE: Mutex<[Slot; SLOTS]> = Mutex::new([EMPTY; SLOTS]);

fn table() -> std::sync::MutexGuard<'static, [Slot; SLOTS]> {
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A `GlobalAlloc` that serves allocations of at least `threshold` bytes from their own sealed
/// memfd (shmem) mapping, and everything smaller from the system allocator.
///
/// Large buffers — frames, decoder output, tensors — then are memfd memory, which udmabuf can
/// export with [`export_app_memory`] without a copy. Small allocations are untouched, so the cost
/// is one memfd per large allocation.
///
/// ```no_run
/// use wayheap::export::{MemfdAlloc, Udmabuf, export_app_memory};
///
/// #[global_allocator]
/// static ALLOC: MemfdAlloc = MemfdAlloc::new(1 << 20);
///
/// # fn main() -> Result<(), wayheap::export::ExportError> {
/// let frame = vec![0u8; 1920 * 1080 * 4]; // served from a memfd
/// let exported = export_app_memory(&Udmabuf::open()?, &frame[4096..])?;
/// # drop(exported);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct MemfdAlloc {
    threshold: usize,
}

impl MemfdAlloc {
    /// Allocations of `threshold` bytes or more become memfd-backed.
    pub const fn new(threshold: usize) -> Self {
        Self { threshold }
    }

    fn memfd_alloc(&self, size: usize) -> Option<*mut u8> {
        let page = rustix::param::page_size();
        let len = size.div_ceil(page) * page;
        // No heap allocation from here on: the allocator must not recurse into itself.
        let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
        let (memfd, ptr) =
            super::memfd::sealed_memfd_mapping(c"wayheap-alloc", len as u64, flags).ok()?;
        let ptr = ptr.as_ptr().cast::<c_void>();
        let mut t = table();
        let Some(slot) = t.iter_mut().find(|s| s.addr == 0) else {
            drop(t);
            // SAFETY: the mapping just made, not handed out.
            let _ = unsafe { rustix::mm::munmap(ptr, len) };
            return None;
        };
        *slot = Slot {
            addr: ptr as usize,
            len,
            fd: memfd.into_raw_fd(),
        };
        Some(ptr.cast())
    }
}

// SAFETY: memfd allocations are page-aligned (the only alignments routed to them are <= a page),
// zero-filled, exclusively owned until `dealloc`, which finds them by address in TABLE; all other
// requests go to `System` unchanged.
unsafe impl GlobalAlloc for MemfdAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= self.threshold
            && layout.align() <= rustix::param::page_size()
            && let Some(p) = self.memfd_alloc(layout.size())
        {
            return p;
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= self.threshold && layout.align() <= rustix::param::page_size() {
            // A fresh memfd is zero-filled already.
            if let Some(p) = self.memfd_alloc(layout.size()) {
                return p;
            }
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() >= self.threshold {
            let mut t = table();
            if let Some(slot) = t.iter_mut().find(|s| s.addr == ptr as usize) {
                let Slot { len, fd, .. } = std::mem::replace(slot, EMPTY);
                drop(t);
                // SAFETY: the mapping `memfd_alloc` made for this pointer; the caller gives it up.
                let _ = unsafe { rustix::mm::munmap(ptr.cast::<c_void>(), len) };
                // SAFETY: the fd stored for this allocation, owned by the table until now.
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
                return;
            }
        }
        // SAFETY: not ours, so it came from System with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Exports `bytes` — any range inside one allocation made by [`MemfdAlloc`] — as a dma-buf,
/// without a copy. The returned offset is the plane offset of `bytes[0]` in the dma-buf.
/// (A [`super::MemfdBuffer`] exports itself with [`super::MemfdBuffer::export_range`].)
///
/// Fails with [`ExportError::NotExportable`] for memory that is not memfd-backed: mainline
/// kernels cannot export it (use [`super::copy_into_export`]).
pub fn export_app_memory(udmabuf: &Udmabuf, bytes: &[u8]) -> Result<ExportedRange, ExportError> {
    export_app_memory_for(udmabuf, bytes, "")
}

/// As [`export_app_memory`], named and accounted under `usage`.
pub fn export_app_memory_for(
    udmabuf: &Udmabuf,
    bytes: &[u8],
    usage: &str,
) -> Result<ExportedRange, ExportError> {
    let (addr, len) = (bytes.as_ptr() as usize, bytes.len());
    let found = table()
        .iter()
        .find(|s| s.addr != 0 && addr >= s.addr && addr.saturating_add(len) <= s.addr + s.len)
        .copied();
    let Some(slot) = found else {
        return Err(ExportError::NotExportable { addr, len });
    };
    // SAFETY: the slot's fd stays open while its allocation lives, and `bytes` borrows from that
    // allocation for this whole call.
    let memfd = unsafe { BorrowedFd::borrow_raw(slot.fd) };
    let start = (addr - slot.addr) as u64;
    export_unaligned(udmabuf, memfd, start, start + len as u64, usage)
}
