//! The owned dma-buf handle, its CPU mapping and the guards that make CPU access coherent.
//!
//! A dma-buf may sit in memory that the CPU caches while a device reads it without snooping
//! (or the other way round). The kernel's rule: bracket every CPU access with
//! `DMA_BUF_IOCTL_SYNC` START and END. [`Mapping::read`], [`Mapping::write`] and
//! [`Mapping::read_write`] return guards that do exactly that, so CPU access without the sync is
//! impossible through this API.
//!
//! ## How to use
//!
//! ```no_run
//! # use wayheap::heap::Heap;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let buf = Heap::open("system")?.allocate(4096)?;
//! let mut map = buf.map()?;
//! {
//!     let mut pixels = map.write()?; // SYNC_START | WRITE
//!     pixels[..4].copy_from_slice(&[0, 0, 255, 255]);
//! } // SYNC_END | WRITE
//! assert_eq!(map.read()?[2], 255);
//! # Ok(())
//! # }
//! ```

use std::ffi::c_void;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use rustix::io::Errno;
use rustix::ioctl::{Setter, ioctl};
use rustix::mm::{MapFlags, ProtFlags};

use crate::sys;

/// Where a dma-buf came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Allocated from the named DMA-BUF heap.
    Heap(String),
}

/// An owned dma-buf: the file descriptor, its size and where it came from.
#[derive(Debug)]
pub struct DmaBuf {
    fd: OwnedFd,
    size: usize,
    origin: Origin,
}

/// Why a dma-buf could not be mapped or synchronised.
#[derive(Debug, thiserror::Error)]
pub enum DmaBufError {
    /// `mmap` of the dma-buf failed.
    #[error("mapping a {size}-byte dma-buf failed: {errno}")]
    Map {
        /// The size that was to be mapped.
        size: usize,
        /// The kernel's error.
        errno: Errno,
    },
    /// `DMA_BUF_IOCTL_SYNC` failed.
    #[error("DMA_BUF_IOCTL_SYNC ({what}) failed: {errno}")]
    Sync {
        /// Which bracket: "start read", "end write", ...
        what: &'static str,
        /// The kernel's error.
        errno: Errno,
    },
}

impl DmaBuf {
    pub(crate) fn from_parts(fd: OwnedFd, size: usize, origin: Origin) -> Self {
        Self { fd, size, origin }
    }

    /// The dma-buf's file descriptor, to hand to DRM, V4L2 or linux-dmabuf.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The size in bytes (a whole number of pages).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Where the buffer came from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Maps the whole buffer shared, readable and writable.
    pub fn map(&self) -> Result<Mapping<'_>, DmaBufError> {
        // SAFETY: a fresh shared mapping of a file we hold open: no existing Rust memory is
        // aliased, and the mapping is unmapped exactly once in `Mapping::drop`.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                self.size,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &self.fd,
                0,
            )
        }
        .map_err(|errno| DmaBufError::Map {
            size: self.size,
            errno,
        })?;
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(DmaBufError::Map {
            size: self.size,
            errno: Errno::FAULT,
        })?;
        Ok(Mapping { buf: self, ptr })
    }
}

impl AsFd for DmaBuf {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A CPU mapping of a [`DmaBuf`]. Its bytes are reachable only through the sync guards.
#[derive(Debug)]
pub struct Mapping<'a> {
    buf: &'a DmaBuf,
    ptr: NonNull<u8>,
}

impl Mapping<'_> {
    /// Starts a CPU read: the returned guard derefs to the bytes and ends the access when dropped.
    pub fn read(&self) -> Result<CpuRead<'_>, DmaBufError> {
        sync(
            self.buf,
            sys::DMA_BUF_SYNC_START | sys::DMA_BUF_SYNC_READ,
            "start read",
        )?;
        Ok(CpuRead {
            buf: self.buf,
            bytes: self.bytes(),
        })
    }

    /// Starts a CPU write (the device's view is made coherent when the guard drops).
    pub fn write(&mut self) -> Result<CpuWrite<'_>, DmaBufError> {
        self.access(sys::DMA_BUF_SYNC_WRITE)
    }

    /// Starts a CPU read-modify-write.
    pub fn read_write(&mut self) -> Result<CpuWrite<'_>, DmaBufError> {
        self.access(sys::DMA_BUF_SYNC_READ | sys::DMA_BUF_SYNC_WRITE)
    }

    fn access(&mut self, flags: u64) -> Result<CpuWrite<'_>, DmaBufError> {
        sync(self.buf, sys::DMA_BUF_SYNC_START | flags, "start write")?;
        let buf = self.buf;
        Ok(CpuWrite {
            buf,
            bytes: self.bytes_mut(),
            flags,
        })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `size` bytes for as long as `self` lives; shared access only.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.buf.size) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes this the only slice over the mapping.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.buf.size) }
    }
}

impl Drop for Mapping<'_> {
    fn drop(&mut self) {
        let (ptr, len) = (self.ptr.as_ptr().cast::<c_void>(), self.buf.size);
        // SAFETY: `ptr`/`len` are exactly what `mmap` returned; no slice over them outlives `self`.
        if let Err(errno) = unsafe { rustix::mm::munmap(ptr, len) } {
            tracing::warn!(%errno, "munmap of a dma-buf mapping failed");
        }
    }
}

/// A CPU read in progress; ends (`SYNC_END | READ`) when dropped.
#[derive(Debug)]
pub struct CpuRead<'m> {
    buf: &'m DmaBuf,
    bytes: &'m [u8],
}

impl Deref for CpuRead<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl Drop for CpuRead<'_> {
    fn drop(&mut self) {
        end(self.buf, sys::DMA_BUF_SYNC_READ);
    }
}

/// A CPU write in progress; ends (`SYNC_END | WRITE`) when dropped.
#[derive(Debug)]
pub struct CpuWrite<'m> {
    buf: &'m DmaBuf,
    bytes: &'m mut [u8],
    flags: u64,
}

impl Deref for CpuWrite<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl DerefMut for CpuWrite<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.bytes
    }
}

impl Drop for CpuWrite<'_> {
    fn drop(&mut self) {
        end(self.buf, self.flags);
    }
}

fn end(buf: &DmaBuf, flags: u64) {
    // Drop cannot return the error; the access is over either way, so say it loudly.
    if let Err(err) = sync(buf, sys::DMA_BUF_SYNC_END | flags, "end") {
        tracing::warn!(%err, "ending CPU access to a dma-buf failed");
    }
}

/// `DMA_BUF_IOCTL_SYNC`, retried while the kernel says EINTR or EAGAIN (a fence wait interrupted).
fn sync(buf: &DmaBuf, flags: u64, what: &'static str) -> Result<(), DmaBufError> {
    loop {
        // SAFETY: DMA_BUF_IOCTL_SYNC reads one `struct dma_buf_sync`, mirrored by `DmaBufSync`.
        let res = unsafe {
            ioctl(
                &buf.fd,
                Setter::<{ sys::DMA_BUF_IOCTL_SYNC }, _>::new(sys::DmaBufSync { flags }),
            )
        };
        match res {
            Ok(()) => return Ok(()),
            Err(Errno::INTR | Errno::AGAIN) => continue,
            Err(errno) => return Err(DmaBufError::Sync { what, errno }),
        }
    }
}
