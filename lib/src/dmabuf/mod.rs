//! The owned dma-buf handle, its CPU mapping and the guards that make CPU access coherent.
//!
//! A dma-buf may sit in memory that the CPU caches while a device reads it without snooping
//! (or the other way round). The kernel's rule: bracket every CPU access with
//! `DMA_BUF_IOCTL_SYNC` START and END. [`Mapping::read`], [`Mapping::write`] and
//! [`Mapping::read_write`] return guards that do exactly that, so CPU access without the sync is
//! impossible through this API.
//!
//! Beyond mapping, a [`DmaBuf`] can be named (visible in `/proc/<pid>/fdinfo` and debugfs),
//! can give its implicit fences as a [`SyncFile`] and take an explicit one, and can be built from a
//! dma-buf fd somebody else exported ([`DmaBuf::import`]), after checking that it is one.
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

pub mod sync_file;

/// Parsing a dma-buf's `/proc/<pid>/fdinfo` — now [`crate::fdinfo`], which [`crate::accounting`]
/// shares without depending on this module; this path is kept for compatibility.
pub use crate::fdinfo;

use std::ffi::{CString, c_void};
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use rustix::fs::SeekFrom;
use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};

use crate::accounting::Ticket;
pub use crate::fdinfo::DmaBufFdInfo;
use crate::sys;
pub use sync_file::{FenceState, SyncFile};

/// Where a dma-buf came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Allocated from the named DMA-BUF heap.
    Heap(String),
    /// Exported from memfd memory through `/dev/udmabuf`.
    Udmabuf,
    /// Allocated from the named ION heap ([`crate::ion`]).
    Ion(String),
    /// Imported from a fd another component exported; the exporter as the kernel names it.
    Foreign(String),
}

/// Which side of a dma-buf's implicit fences a sync_file covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceAccess {
    /// Readers: wait for it before writing over the buffer.
    Read,
    /// Writers: wait for it before reading the buffer.
    Write,
    /// Both.
    ReadWrite,
}

impl FenceAccess {
    fn flags(self) -> u32 {
        match self {
            FenceAccess::Read => sys::DMA_BUF_SYNC_READ as u32,
            FenceAccess::Write => sys::DMA_BUF_SYNC_WRITE as u32,
            FenceAccess::ReadWrite => (sys::DMA_BUF_SYNC_READ | sys::DMA_BUF_SYNC_WRITE) as u32,
        }
    }
}

/// An owned dma-buf: the file descriptor, its size and where it came from.
#[derive(Debug)]
pub struct DmaBuf {
    fd: OwnedFd,
    size: usize,
    origin: Origin,
    /// The buffer's line in the library's ledger (`None` for imported buffers).
    ticket: Option<Ticket>,
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
    /// The fd is not a dma-buf.
    #[error(
        "fd {fd} is not a dma-buf (its fdinfo has no exp_name): pass the fd a heap, udmabuf, DRM PRIME or V4L2 EXPBUF gave you"
    )]
    NotADmaBuf {
        /// The fd number.
        fd: i32,
    },
    /// Reading the fd's size or fdinfo failed.
    #[error("inspecting fd {fd} failed: {errno}")]
    Inspect {
        /// The fd number.
        fd: i32,
        /// The kernel's error.
        errno: Errno,
    },
    /// `DMA_BUF_SET_NAME` failed.
    #[error("naming a dma-buf failed: {errno}")]
    SetName {
        /// The kernel's error (EBUSY on kernels before 5.19 once the buffer was attached).
        errno: Errno,
    },
    /// This kernel does not have the operation (it answered ENOTTY): it arrived in a later
    /// Linux.
    #[error("{what} is not in this kernel (ENOTTY): it needs Linux {since} or later{also}")]
    Unsupported {
        /// The operation.
        what: &'static str,
        /// The first Linux release with it.
        since: &'static str,
        /// What else it needs (a config option), with a leading separator, or empty.
        also: &'static str,
    },
    /// Exporting or importing a sync_file failed.
    #[error("{what} failed: {errno}")]
    SyncFile {
        /// Which ioctl.
        what: &'static str,
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
    pub(crate) fn from_parts(
        fd: OwnedFd,
        size: usize,
        origin: Origin,
        ticket: Option<Ticket>,
    ) -> Self {
        Self {
            fd,
            size,
            origin,
            ticket,
        }
    }

    /// A buffer this library just allocated or exported: counted under `provider` and `usage`
    /// in [`crate::accounting`] and named `provider:usage` (or `provider`) for fdinfo. A naming
    /// failure is logged, not returned: the buffer is good either way.
    pub(crate) fn allocated(
        fd: OwnedFd,
        size: u64,
        origin: Origin,
        provider: &str,
        usage: &str,
    ) -> Self {
        let ticket = Ticket::open(provider, usage, size);
        let buf = Self::from_parts(fd, size as usize, origin, Some(ticket));
        let label = if usage.is_empty() {
            provider.to_owned()
        } else {
            format!("{provider}:{usage}")
        };
        if let Err(err) = buf.set_name(&label) {
            tracing::warn!(provider, %err, "could not name the dma-buf");
        }
        buf
    }

    /// Takes a dma-buf fd exported elsewhere (a V4L2 EXPBUF, a DRM PRIME export, another process).
    ///
    /// The fd is checked to be a dma-buf (its fdinfo names an exporter); its size comes from
    /// `lseek(SEEK_END)`, the one size query dma-bufs support.
    pub fn import(fd: OwnedFd) -> Result<Self, DmaBufError> {
        let raw = fd.as_raw_fd();
        let info = fd_info(fd.as_fd())?.ok_or(DmaBufError::NotADmaBuf { fd: raw })?;
        let size = rustix::fs::seek(&fd, SeekFrom::End(0))
            .map_err(|errno| DmaBufError::Inspect { fd: raw, errno })?;
        rustix::fs::seek(&fd, SeekFrom::Start(0))
            .map_err(|errno| DmaBufError::Inspect { fd: raw, errno })?;
        Ok(Self {
            fd,
            size: size as usize,
            origin: Origin::Foreign(info.exporter),
            ticket: None,
        })
    }

    /// What the kernel's fdinfo says of this buffer now (exporter, name, size).
    pub fn info(&self) -> Result<DmaBufFdInfo, DmaBufError> {
        fd_info(self.fd.as_fd())?.ok_or(DmaBufError::NotADmaBuf {
            fd: self.fd.as_raw_fd(),
        })
    }

    /// The usage this buffer was allocated for, if the library allocated it with one.
    pub fn usage(&self) -> Option<&str> {
        self.ticket
            .as_ref()
            .map(|t| t.usage())
            .filter(|u| !u.is_empty())
    }

    /// Names the buffer (`DMA_BUF_SET_NAME`); the name is cut to the kernel's 31 bytes.
    ///
    /// The name shows in fdinfo and `/sys/kernel/debug/dma_buf/bufinfo`: which heap and usage a
    /// leaked buffer came from is then one `cat` away.
    pub fn set_name(&self, name: &str) -> Result<(), DmaBufError> {
        sys::dma_buf_set_name(self.fd.as_fd(), &kernel_name(name)).map_err(|errno| match errno {
            Errno::NOTTY => DmaBufError::Unsupported {
                what: "DMA_BUF_SET_NAME",
                since: "5.3",
                also: "",
            },
            errno => DmaBufError::SetName { errno },
        })
    }

    /// Snapshots the buffer's implicit fences for `access` as a sync_file
    /// (`DMA_BUF_IOCTL_EXPORT_SYNC_FILE`): wait on it before touching the buffer.
    pub fn export_sync_file(&self, access: FenceAccess) -> Result<SyncFile, DmaBufError> {
        sys::dma_buf_export_sync_file(self.fd.as_fd(), access.flags())
            .map(SyncFile::from_fd)
            .map_err(|errno| sync_file_error("DMA_BUF_IOCTL_EXPORT_SYNC_FILE", errno))
    }

    /// Attaches `fence` to the buffer's implicit fences (`DMA_BUF_IOCTL_IMPORT_SYNC_FILE`):
    /// `Write` makes later readers wait for it, `Read` later writers.
    pub fn import_sync_file(
        &self,
        fence: &SyncFile,
        access: FenceAccess,
    ) -> Result<(), DmaBufError> {
        sys::dma_buf_import_sync_file(self.fd.as_fd(), access.flags(), fence.as_fd())
            .map_err(|errno| sync_file_error("DMA_BUF_IOCTL_IMPORT_SYNC_FILE", errno))
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
        let ptr = self.mmap(ProtFlags::READ | ProtFlags::WRITE)?;
        Ok(Mapping { buf: self, ptr })
    }

    /// Maps the whole buffer shared and read-only: for a buffer someone else sent (a client's,
    /// a V4L2 export), whose fd may not allow writing.
    pub fn map_read_only(&self) -> Result<ReadMapping<'_>, DmaBufError> {
        let ptr = self.mmap(ProtFlags::READ)?;
        Ok(ReadMapping { buf: self, ptr })
    }

    fn mmap(&self, prot: ProtFlags) -> Result<NonNull<u8>, DmaBufError> {
        // SAFETY: a fresh shared mapping of a file we hold open: no existing Rust memory is
        // aliased, and the mapping is unmapped exactly once, when its owner drops.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                self.size,
                prot,
                MapFlags::SHARED,
                &self.fd,
                0,
            )
        }
        .map_err(|errno| DmaBufError::Map {
            size: self.size,
            errno,
        })?;
        NonNull::new(ptr.cast::<u8>()).ok_or(DmaBufError::Map {
            size: self.size,
            errno: Errno::FAULT,
        })
    }
}

/// The kernel keeps `DMA_BUF_NAME_LEN - 1` bytes; cut on a character boundary, drop NULs.
/// A sync_file ioctl's failure; ENOTTY is a kernel before 6.0, which has neither.
fn sync_file_error(what: &'static str, errno: Errno) -> DmaBufError {
    match errno {
        Errno::NOTTY => DmaBufError::Unsupported {
            what,
            since: "6.0",
            also: " (built with CONFIG_SYNC_FILE)",
        },
        errno => DmaBufError::SyncFile { what, errno },
    }
}

pub(crate) fn kernel_name(name: &str) -> CString {
    let mut end = name.len().min(sys::DMA_BUF_NAME_LEN - 1);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    CString::new(name[..end].replace('\0', "")).unwrap_or_default()
}

/// What the kernel's fdinfo says of `fd`; `None` when it is not a dma-buf.
pub fn fd_info(fd: BorrowedFd<'_>) -> Result<Option<DmaBufFdInfo>, DmaBufError> {
    let raw = fd.as_raw_fd();
    let text =
        std::fs::read(format!("/proc/self/fdinfo/{raw}")).map_err(|e| DmaBufError::Inspect {
            fd: raw,
            errno: Errno::from_io_error(&e).unwrap_or(Errno::IO),
        })?;
    Ok(fdinfo::parse_bytes(&text))
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
        CpuRead::begin(self.buf, self.bytes())
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
        unmap(self.ptr, self.buf.size);
    }
}

fn unmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: called once per mapping, from its owner's `drop`, with exactly what `mmap`
    // returned; no slice over it outlives the owner.
    if let Err(errno) = unsafe { rustix::mm::munmap(ptr.as_ptr().cast::<c_void>(), len) } {
        tracing::warn!(%errno, "munmap of a dma-buf mapping failed");
    }
}

/// A read-only CPU mapping of a [`DmaBuf`] ([`DmaBuf::map_read_only`]); its bytes are
/// reachable only through [`read`](Self::read), which brackets the access with
/// `DMA_BUF_IOCTL_SYNC`.
#[derive(Debug)]
pub struct ReadMapping<'a> {
    buf: &'a DmaBuf,
    ptr: NonNull<u8>,
}

impl ReadMapping<'_> {
    /// Starts a CPU read: the returned guard derefs to the bytes and ends the access when dropped.
    pub fn read(&self) -> Result<CpuRead<'_>, DmaBufError> {
        // SAFETY: `ptr` maps `size` readable bytes for as long as `self` lives; the mapping is
        // never written through from this process.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.buf.size) };
        CpuRead::begin(self.buf, bytes)
    }
}

impl Drop for ReadMapping<'_> {
    fn drop(&mut self) {
        unmap(self.ptr, self.buf.size);
    }
}

/// A CPU read in progress; ends (`SYNC_END | READ`) when dropped.
#[derive(Debug)]
pub struct CpuRead<'m> {
    buf: &'m DmaBuf,
    bytes: &'m [u8],
}

impl<'m> CpuRead<'m> {
    /// Starts the read (`SYNC_START | READ`) of `bytes`, a mapping of `buf`.
    fn begin(buf: &'m DmaBuf, bytes: &'m [u8]) -> Result<Self, DmaBufError> {
        sync(
            buf,
            sys::DMA_BUF_SYNC_START | sys::DMA_BUF_SYNC_READ,
            "start read",
        )?;
        Ok(CpuRead { buf, bytes })
    }
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

impl DmaBuf {
    /// Makes CPU writes made through another mapping of the same pages (the memfd a udmabuf was
    /// exported from, a client's wl_shm pool) visible to devices: `DMA_BUF_IOCTL_SYNC` with
    /// START then END for writing. On a cache-coherent machine it costs two ioctls; on a SoC
    /// whose display engine does not snoop the CPU caches it cleans them, which a plane reading
    /// the buffer needs after every CPU frame.
    pub fn flush_cpu_writes(&self) -> Result<(), DmaBufError> {
        sync(
            self,
            sys::DMA_BUF_SYNC_START | sys::DMA_BUF_SYNC_WRITE,
            "start",
        )?;
        sync(self, sys::DMA_BUF_SYNC_END | sys::DMA_BUF_SYNC_WRITE, "end")
    }
}

/// `DMA_BUF_IOCTL_SYNC` (retried while the kernel says EINTR or EAGAIN: a fence wait interrupted).
fn sync(buf: &DmaBuf, flags: u64, what: &'static str) -> Result<(), DmaBufError> {
    sys::dma_buf_sync(buf.fd.as_fd(), flags).map_err(|errno| DmaBufError::Sync { what, errno })
}

/// Property tests (issue 15) of the names given to the kernel: 4 000 cases per run.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::proptest_config::config(4_000))]

        /// Any usage string (a caller's, or a client's through heap hints): the kernel gets at
        /// most 31 bytes without NUL, the longest prefix of the name that fits, and the fdinfo
        /// the kernel then prints gives that name back and nothing else.
        #[test]
        fn kernel_names_fit_and_read_back(name in prop_oneof![
            "[a-z:_-]{0,40}",
            "[\0-\u{7f}]{0,40}",
            "\\PC{0,16}",
            "(é|漢|🦀|\0|a){0,40}",
        ]) {
            let k = kernel_name(&name);
            let k = k.to_str().expect("a cut on a character boundary is UTF-8");
            prop_assert!(k.len() < sys::DMA_BUF_NAME_LEN);
            prop_assert!(!k.contains('\0'));
            let without_nul = name.replace('\0', "");
            prop_assert!(without_nul.starts_with(k));
            // The longest run of whole characters that fits, then its NULs dropped.
            let mut end = 0;
            for c in name.chars() {
                if end + c.len_utf8() >= sys::DMA_BUF_NAME_LEN {
                    break;
                }
                end += c.len_utf8();
            }
            prop_assert_eq!(k, name[..end].replace('\0', ""));
            let text = format!("size:\t4096\ncount:\t2\nexp_name:\tsystem\nname:\t{k}\n");
            let info = fdinfo::parse(&text).unwrap();
            prop_assert_eq!(info.name.as_deref(), Some(k));
            prop_assert_eq!((info.size, info.count, info.exporter.as_str()), (4096, Some(2), "system"));
        }
    }
}
