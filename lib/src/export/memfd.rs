//! [`MemfdBuffer`]: application memory that is a sealed memfd, so it can become a dma-buf.

use std::ffi::c_void;
use std::ops::{Deref, DerefMut, Range};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use rustix::fs::{MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};

use super::{ExportError, ExportedRange, Udmabuf, export_unaligned, page_size};

/// Huge pages for hugetlb memfds: 2 MiB on x86_64 and arm64 with 4 KiB pages.
const HUGE_PAGE: u64 = 2 << 20;

/// A zero-initialised byte buffer backed by a sealed memfd, usable like a `Box<[u8]>`, that can be
/// exported as a dma-buf ([`export_range`](Self::export_range)) without a copy.
///
/// The memfd is sealed against growing and shrinking at creation, so its pages can be pinned by
/// udmabuf at any time; it is never sealed against writes.
#[derive(Debug)]
pub struct MemfdBuffer {
    memfd: OwnedFd,
    ptr: NonNull<u8>,
    len: usize,
    mapped: usize,
}

// SAFETY: the buffer owns its mapping exclusively; `&MemfdBuffer` gives only shared byte access
// and `&mut` exclusive access, exactly like `Box<[u8]>`.
unsafe impl Send for MemfdBuffer {}
// SAFETY: as above.
unsafe impl Sync for MemfdBuffer {}

impl MemfdBuffer {
    /// `len` zero bytes (rounded up to whole pages in the memfd).
    pub fn new(len: usize) -> Result<Self, ExportError> {
        Self::create(len, false)
    }

    /// `len` zero bytes in huge pages (`MFD_HUGETLB`): fewer pages to pin, and contiguous in
    /// 2 MiB chunks. Fails with [`ExportError::Memfd`] when the system has no huge pages reserved
    /// (`/proc/sys/vm/nr_hugepages`).
    pub fn new_hugetlb(len: usize) -> Result<Self, ExportError> {
        Self::create(len, true)
    }

    /// A copy of `bytes`.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ExportError> {
        let mut buf = Self::new(bytes.len().max(1))?;
        buf[..bytes.len()].copy_from_slice(bytes);
        buf.len = bytes.len();
        Ok(buf)
    }

    fn create(len: usize, huge: bool) -> Result<Self, ExportError> {
        if len == 0 {
            return Err(ExportError::Empty);
        }
        let unit = if huge { HUGE_PAGE } else { page_size() };
        let mapped = (len as u64).div_ceil(unit) * unit;
        let mut flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
        if huge {
            flags |= MemfdFlags::HUGETLB;
        }
        let (memfd, ptr) = sealed_memfd_mapping(c"wayheap-buffer", mapped, flags)
            .map_err(|(op, errno)| ExportError::Memfd { op, errno })?;
        let mapped = mapped as usize;
        Ok(Self {
            memfd,
            ptr,
            len,
            mapped,
        })
    }

    /// The memfd behind the buffer.
    pub fn memfd(&self) -> BorrowedFd<'_> {
        self.memfd.as_fd()
    }

    /// The bytes the memfd holds (a whole number of pages, at least `len()`).
    pub fn mapped_len(&self) -> usize {
        self.mapped
    }

    /// Exports `range` of the buffer as a dma-buf. The range need not be page-aligned: the
    /// dma-buf then starts on the page below, and [`ExportedRange::offset`] says where the range
    /// starts in it.
    pub fn export_range(
        &self,
        udmabuf: &Udmabuf,
        range: Range<usize>,
    ) -> Result<ExportedRange, ExportError> {
        self.export_range_for(udmabuf, range, "")
    }

    /// As [`export_range`](Self::export_range), named and accounted under `usage`.
    pub fn export_range_for(
        &self,
        udmabuf: &Udmabuf,
        range: Range<usize>,
        usage: &str,
    ) -> Result<ExportedRange, ExportError> {
        if range.end > self.len || range.start > range.end {
            return Err(ExportError::OutOfRange {
                offset: range.start as u64,
                size: range.end.saturating_sub(range.start) as u64,
                file_size: self.len as u64,
            });
        }
        export_unaligned(
            udmabuf,
            self.memfd(),
            range.start as u64,
            range.end as u64,
            usage,
        )
    }
}

/// A memfd of `len` bytes sealed against growing and shrinking (never against writes), and a
/// shared read-write mapping of all of it. Allocates no heap memory, so the global allocator can
/// use it. On error: which step failed, and the errno.
pub(super) fn sealed_memfd_mapping(
    name: &std::ffi::CStr,
    len: u64,
    flags: MemfdFlags,
) -> Result<(OwnedFd, NonNull<u8>), (&'static str, rustix::io::Errno)> {
    let memfd = rustix::fs::memfd_create(name, flags).map_err(|e| ("memfd_create", e))?;
    rustix::fs::ftruncate(&memfd, len).map_err(|e| ("ftruncate", e))?;
    rustix::fs::fcntl_add_seals(&memfd, SealFlags::SHRINK | SealFlags::GROW)
        .map_err(|e| ("F_ADD_SEALS", e))?;
    // SAFETY: a fresh shared mapping of our own memfd: no Rust memory is aliased; the caller
    // unmaps it exactly once.
    let ptr = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len as usize,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            &memfd,
            0,
        )
    }
    .map_err(|e| ("mmap", e))?;
    let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(("mmap", rustix::io::Errno::FAULT))?;
    Ok((memfd, ptr))
}

impl Deref for MemfdBuffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` maps `mapped >= len` bytes for the buffer's life.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for MemfdBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in Deref; `&mut self` makes this the only slice.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for MemfdBuffer {
    fn drop(&mut self) {
        let (ptr, len) = (self.ptr.as_ptr().cast::<c_void>(), self.mapped);
        // SAFETY: exactly the mapping made in `create`; no slice over it outlives `self`.
        if let Err(errno) = unsafe { rustix::mm::munmap(ptr, len) } {
            tracing::warn!(%errno, "munmap of a memfd buffer failed");
        }
    }
}
