//! [`ShmScanout`]: wl_shm buffers on KMS planes, by exporting their pool through `/dev/udmabuf`.
//!
//! Most clients draw with the CPU into wl_shm, and a compositor copies every such frame (a
//! texture upload, or a blit by pixman). Yet their pools are usually memfds sealed against
//! shrinking — exactly the memory `/dev/udmabuf` turns into a dma-buf without a copy. This
//! module does that for every client: the page-rounded range of a buffer's pool becomes a
//! dma-buf (the in-page start is the plane offset), which [`PrimeExporter`](super::PrimeExporter)
//! makes into a framebuffer like any client dma-buf, so the surface can go on a plane.
//!
//! A pool is exported only when that is safe for the display engine: a memfd (shmem or
//! hugetlbfs) that the client **already** sealed against shrinking (a client that could
//! truncate the pool would pull the pages from under the plane — the compositor never adds the
//! seal itself, it would change the client's file) and not sealed against writing (udmabuf
//! refuses that). Otherwise, or when `/dev/udmabuf` is missing or its size limit is below the
//! buffer, the buffer stays composited and [`ShmRefusal`] is the reason the placement report
//! gives.
//!
//! Smithay keeps a pool's fd private; the pool's mapping is not. The file behind a buffer is
//! found from the mapping Smithay made of it (`/proc/self/maps`: device and inode at that
//! address) and the compositor's own fd of that file (`/proc/self/fd`), reopened and checked to
//! be the same inode, once per buffer. Exports are cached per `wl_buffer` and dropped with it
//! (and at most [`MAX_EXPORTS_PER_CLIENT`] live per client), so nothing stays behind when a
//! client goes away.
//!
//! ## How to use
//!
//! ```no_run
//! use smithay::backend::drm::DrmDeviceFd;
//! use smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer;
//! use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
//! use wayheap::smithay::{PrimeExporter, ShmScanout};
//!
//! fn exporter(device: DrmDeviceFd, shm: &ShmScanout) -> PrimeExporter {
//!     // Give the same ShmScanout to the PlacementTracker (through the exporter) and keep one
//!     // for BufferHandler::buffer_destroyed.
//!     PrimeExporter::new(device).with_shm_scanout(shm.clone())
//! }
//!
//! // In `BufferHandler::buffer_destroyed`:
//! fn buffer_destroyed(shm: &ShmScanout, buffer: &WlBuffer) {
//!     shm.buffer_destroyed(buffer); // its udmabuf (and so its framebuffer) goes now
//! }
//!
//! // In `CompositorHandler::commit`, after `on_commit_buffer_handler`:
//! fn commit(shm: &ShmScanout, surface: &WlSurface) {
//!     shm.surface_committed(surface); // the client's CPU writes flushed for the display
//! }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use rustix::fs::{Mode, OFlags, SealFlags};
use rustix::io::Errno;
use smithay::backend::allocator::Modifier;
use smithay::backend::allocator::dmabuf::{Dmabuf, DmabufFlags};
use smithay::reexports::wayland_server::backend::{ClientId, ObjectId};
use smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{Resource, Weak};
use smithay::wayland::shm::{self, BufferAccessError, BufferData};

use crate::dmabuf::DmaBuf;
use crate::export::{ExportError, MemfdRange, Udmabuf};

/// At most this many shm buffers of one client are exported at once; beyond it they are
/// composited ([`ShmRefusal::TooMany`]), so a client cannot pin its whole pool set in the
/// compositor one buffer at a time.
pub const MAX_EXPORTS_PER_CLIENT: usize = 64;

/// What the kernel and the pool's seals say about a pool, when it is not exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShmRefusal {
    /// The shm format has no DRM fourcc.
    Format(String),
    /// The pool is not shmem or hugetlbfs memory (a file on disk, say): udmabuf cannot take it.
    NotMemfd,
    /// The pool can grow and shrink: the client did not seal it with `F_SEAL_SHRINK`.
    NotSealedAgainstShrinking,
    /// The pool is sealed against writing: udmabuf refuses it.
    WriteSealed,
    /// The buffer ends in the pool file's last page, which the file only partly fills: udmabuf
    /// exports whole pages of the file only (a pool sized to whole pages would be exported).
    PartialPage {
        /// The pool file's size in bytes.
        file_size: u64,
    },
    /// The buffer is larger than udmabuf takes in one dma-buf (`size_limit_mb`).
    SizeLimit {
        /// Bytes the buffer's page-rounded range spans.
        bytes: u64,
        /// The module parameter.
        limit_mb: u64,
    },
    /// No `/dev/udmabuf` for the compositor (missing, or no permission), with the reason.
    NoUdmabuf(String),
    /// The client already has [`MAX_EXPORTS_PER_CLIENT`] exported buffers.
    TooMany,
    /// The pool's file could not be found or reopened, or udmabuf failed otherwise.
    Failed(String),
}

impl fmt::Display for ShmRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShmRefusal::Format(format) => write!(f, "shm format {format} has no DRM fourcc"),
            ShmRefusal::NotMemfd => {
                f.write_str("shm pool is not a memfd: udmabuf takes only shmem or hugetlbfs memory")
            }
            ShmRefusal::NotSealedAgainstShrinking => f.write_str(
                "shm pool not sealed against shrinking (F_SEAL_SHRINK): the client could truncate it under the display",
            ),
            ShmRefusal::WriteSealed => {
                f.write_str("shm pool sealed against writing: udmabuf refuses it")
            }
            ShmRefusal::PartialPage { file_size } => write!(
                f,
                "shm buffer ends in the last, partial page of its {file_size}-byte pool: udmabuf exports whole pages only"
            ),
            ShmRefusal::SizeLimit { bytes, limit_mb } => write!(
                f,
                "shm buffer of {bytes} bytes exceeds udmabuf size_limit_mb={limit_mb}"
            ),
            ShmRefusal::NoUdmabuf(why) => write!(f, "no udmabuf for shm scan-out: {why}"),
            ShmRefusal::TooMany => write!(
                f,
                "the client has {MAX_EXPORTS_PER_CLIENT} shm buffers exported already"
            ),
            ShmRefusal::Failed(why) => write!(f, "shm pool export failed: {why}"),
        }
    }
}

impl std::error::Error for ShmRefusal {}

/// What became of one buffer.
#[derive(Debug)]
enum Export {
    /// Its range as a dma-buf: Smithay's view (for the exporter) and the udmabuf it shares
    /// the fd with (accounted under `udmabuf`, usage `shm-scanout`).
    Done {
        dmabuf: Dmabuf,
        udmabuf: DmaBuf,
    },
    Refused(ShmRefusal),
}

#[derive(Debug)]
struct Entry {
    buffer: Weak<WlBuffer>,
    client: Option<ClientId>,
    export: Export,
}

#[derive(Debug, Default)]
struct Inner {
    /// `/dev/udmabuf`, opened at the first shm buffer.
    udmabuf: Option<Result<Udmabuf, String>>,
    buffers: HashMap<ObjectId, Entry>,
}

/// Exports wl_shm buffers as dma-bufs for scan-out, cached per buffer; cheap to clone (the
/// clones share the cache).
#[derive(Debug, Clone, Default)]
pub struct ShmScanout {
    inner: Arc<Mutex<Inner>>,
}

impl ShmScanout {
    /// A scan-out exporter for shm buffers; `/dev/udmabuf` is opened at first use.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The dma-buf of `buffer`'s pixels (exported at the first call, cached until the buffer is
    /// destroyed), or why there is none. `Err(None)`: not a wl_shm buffer.
    pub fn dmabuf(&self, buffer: &WlBuffer) -> Result<Dmabuf, Option<ShmRefusal>> {
        let mut inner = self.lock();
        // Buffers destroyed without `buffer_destroyed` (an adopter that does not call it) go
        // here, at the next look.
        inner.buffers.retain(|_, e| e.buffer.is_alive());
        if let Some(entry) = inner.buffers.get(&buffer.id()) {
            return match &entry.export {
                Export::Done { dmabuf, .. } => Ok(dmabuf.clone()),
                Export::Refused(r) => Err(Some(r.clone())),
            };
        }
        let (ptr, pool_len, data) =
            match shm::with_buffer_contents(buffer, |ptr, len, data| (ptr as usize, len, data)) {
                Ok(found) => found,
                Err(BufferAccessError::NotManaged) => return Err(None),
                Err(e) => return Err(Some(ShmRefusal::Failed(e.to_string()))),
            };
        let client = buffer.client().map(|c| c.id());
        let exported = inner
            .buffers
            .values()
            .filter(|e| e.client == client && matches!(e.export, Export::Done { .. }))
            .count();
        let export = if exported >= MAX_EXPORTS_PER_CLIENT {
            Export::Refused(ShmRefusal::TooMany)
        } else {
            match inner
                .udmabuf
                .get_or_insert_with(|| Udmabuf::open().map_err(|e| crate::error::chain(&e)))
            {
                Err(why) => Export::Refused(ShmRefusal::NoUdmabuf(why.clone())),
                Ok(udmabuf) => match export(udmabuf, ptr, pool_len, &data) {
                    Ok((dmabuf, udmabuf)) => Export::Done { dmabuf, udmabuf },
                    Err(r) => Export::Refused(r),
                },
            }
        };
        match &export {
            Export::Done { .. } => tracing::debug!(buffer = ?buffer.id(), "shm buffer exported"),
            Export::Refused(r) => {
                tracing::debug!(buffer = ?buffer.id(), %r, "shm buffer composited")
            }
        }
        let result = match &export {
            Export::Done { dmabuf, .. } => Ok(dmabuf.clone()),
            Export::Refused(r) => Err(Some(r.clone())),
        };
        inner.buffers.insert(
            buffer.id(),
            Entry {
                buffer: buffer.downgrade(),
                client,
                export,
            },
        );
        result
    }

    /// After `surface`'s commit (call it after Smithay's `on_commit_buffer_handler`): when its
    /// buffer is an exported shm buffer, the client's CPU writes are flushed to the device side
    /// ([`DmaBuf::flush_cpu_writes`]), so a display engine that does not snoop the CPU caches
    /// scans out this frame, not stale cache lines.
    pub fn surface_committed(&self, surface: &WlSurface) {
        let Some(buffer) = super::placement::current_buffer(surface) else {
            return;
        };
        let inner = self.lock();
        if let Some(Entry {
            export: Export::Done { udmabuf, .. },
            ..
        }) = inner.buffers.get(&buffer.id())
            && let Err(err) = udmabuf.flush_cpu_writes()
        {
            tracing::warn!(%err, "flushing a shm buffer's CPU writes failed");
        }
    }

    /// Why `buffer` is not exported, if it was looked at and refused.
    pub fn refusal(&self, buffer: &WlBuffer) -> Option<ShmRefusal> {
        match &self.lock().buffers.get(&buffer.id())?.export {
            Export::Refused(r) => Some(r.clone()),
            Export::Done { .. } => None,
        }
    }

    /// Drops what was made for `buffer` (its udmabuf; its framebuffer goes with the last user).
    /// Call it from `BufferHandler::buffer_destroyed`.
    pub fn buffer_destroyed(&self, buffer: &WlBuffer) {
        self.lock().buffers.remove(&buffer.id());
    }

    /// Buffers exported now (live udmabufs): for leak checks.
    pub fn live_exports(&self) -> usize {
        let mut inner = self.lock();
        inner.buffers.retain(|_, e| e.buffer.is_alive());
        inner
            .buffers
            .values()
            .filter(|e| matches!(e.export, Export::Done { .. }))
            .count()
    }
}

/// Exports the page-rounded range of one buffer of the pool mapped at `ptr`.
fn export(
    udmabuf: &Udmabuf,
    ptr: usize,
    pool_len: usize,
    data: &BufferData,
) -> Result<(Dmabuf, DmaBuf), ShmRefusal> {
    let fourcc = shm::shm_format_to_fourcc(data.format)
        .ok_or_else(|| ShmRefusal::Format(format!("{:?}", data.format)))?;
    let file = pool_file(ptr, pool_len)?;
    check_seals(file.as_fd())?;
    // Smithay checked offset, stride and height against the pool when the buffer was made.
    let (offset, stride, height) = (data.offset as u64, data.stride as u64, data.height as u64);
    let end = offset + stride * height;
    let page = rustix::param::page_size() as u64;
    let start = offset - offset % page;
    let size = end.div_ceil(page) * page - start;
    let file_size = rustix::fs::fstat(&file)
        .map_err(|e| ShmRefusal::Failed(format!("fstat of the pool: {e}")))?
        .st_size as u64;
    if start + size > file_size {
        return Err(ShmRefusal::PartialPage { file_size });
    }
    let range = MemfdRange {
        memfd: file.as_fd(),
        offset: start,
        size,
    };
    let udmabuf = udmabuf
        .export_for(range, "shm-scanout")
        .map_err(|e| match e {
            ExportError::SizeLimit { total, limit_mb } => ShmRefusal::SizeLimit {
                bytes: total,
                limit_mb,
            },
            ExportError::FixedSizeLimit { total } => ShmRefusal::SizeLimit {
                bytes: total,
                limit_mb: crate::export::FIXED_SIZE_LIMIT_MB,
            },
            ExportError::WriteSealed => ShmRefusal::WriteSealed,
            ExportError::NotSealable { .. } => ShmRefusal::NotSealedAgainstShrinking,
            e => ShmRefusal::Failed(crate::error::chain(&e)),
        })?;
    let fd = udmabuf
        .fd()
        .try_clone_to_owned()
        .map_err(|e| ShmRefusal::Failed(format!("duplicating the udmabuf fd: {e}")))?;
    let mut builder = Dmabuf::builder(
        (data.width, data.height),
        fourcc,
        Modifier::Linear,
        DmabufFlags::empty(),
    );
    builder.add_plane(fd, 0, (offset - start) as u32, data.stride as u32);
    let dmabuf = builder
        .build()
        .ok_or_else(|| ShmRefusal::Failed("building the dma-buf".into()))?;
    Ok((dmabuf, udmabuf))
}

/// The seals a pool must already carry: `F_SEAL_SHRINK`, and no write seal. `EINVAL` from
/// `F_GET_SEALS`: not shmem or hugetlbfs.
fn check_seals(file: std::os::fd::BorrowedFd<'_>) -> Result<(), ShmRefusal> {
    let seals = rustix::fs::fcntl_get_seals(file).map_err(|e| match e {
        Errno::INVAL => ShmRefusal::NotMemfd,
        e => ShmRefusal::Failed(format!("F_GET_SEALS: {e}")),
    })?;
    if seals.intersects(SealFlags::WRITE | SealFlags::FUTURE_WRITE) {
        return Err(ShmRefusal::WriteSealed);
    }
    if !seals.contains(SealFlags::SHRINK) {
        return Err(ShmRefusal::NotSealedAgainstShrinking);
    }
    Ok(())
}

/// The file mapped at `ptr` (a mapping of `len` bytes from its start), reopened from this
/// process's own fd of it; [`ShmRefusal::NotMemfd`] when no fd of this process is that file.
fn pool_file(ptr: usize, len: usize) -> Result<OwnedFd, ShmRefusal> {
    let maps = std::fs::read_to_string("/proc/self/maps")
        .map_err(|e| ShmRefusal::Failed(format!("reading /proc/self/maps: {e}")))?;
    let (dev, inode) = maps
        .lines()
        .find_map(|line| mapping_file(line, ptr, len))
        .ok_or_else(|| {
            ShmRefusal::Failed(format!("no file mapping of the pool at {ptr:#x} (+{len})"))
        })?;
    let is_it = |st: &rustix::fs::Stat| {
        (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev)) == dev && st.st_ino == inode
    };
    let fds = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| ShmRefusal::Failed(format!("reading /proc/self/fd: {e}")))?;
    for path in fds.flatten().map(|e| e.path()) {
        if !rustix::fs::stat(&path).is_ok_and(|st| is_it(&st)) {
            continue;
        }
        // A new open file description of that file; checked again, as the fd number may have
        // been reused in between.
        let Ok(file) = rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        else {
            continue;
        };
        if rustix::fs::fstat(&file).is_ok_and(|st| is_it(&st)) {
            return Ok(file);
        }
    }
    // Smithay holds the fd it mapped, so a memfd is always found. A mapping of a file no fd
    // refers to is a stacking filesystem's (overlayfs maps its upper file): not a memfd.
    Err(ShmRefusal::NotMemfd)
}

/// The (device, inode) of a `/proc/self/maps` line that maps a file from offset 0 at `ptr`,
/// at least `len` bytes long. Device numbers are hexadecimal `major:minor`.
fn mapping_file(line: &str, ptr: usize, len: usize) -> Option<((u32, u32), u64)> {
    let mut fields = line.split_ascii_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let (start, end) = (
        usize::from_str_radix(start, 16).ok()?,
        usize::from_str_radix(end, 16).ok()?,
    );
    let _perms = fields.next()?;
    let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
    let (major, minor) = fields.next()?.split_once(':')?;
    let dev = (
        u32::from_str_radix(major, 16).ok()?,
        u32::from_str_radix(minor, 16).ok()?,
    );
    let inode: u64 = fields.next()?.parse().ok()?;
    (start == ptr && end - start >= len && offset == 0 && inode != 0).then_some((dev, inode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maps_line_names_the_file_mapped_at_the_address() {
        let line =
            "7f12a0000000-7f12a0400000 rw-s 00000000 00:01 4242   /memfd:wayland-shm (deleted)";
        assert_eq!(
            mapping_file(line, 0x7f12a0000000, 0x400000),
            Some(((0, 1), 4242))
        );
        assert_eq!(
            mapping_file(line, 0x7f12a0001000, 0x1000),
            None,
            "not its start"
        );
        assert_eq!(
            mapping_file(line, 0x7f12a0000000, 0x400001),
            None,
            "too short"
        );
        let offset = "7f12a0000000-7f12a0400000 rw-s 00001000 fd:1a 99 /x";
        assert_eq!(mapping_file(offset, 0x7f12a0000000, 0x1000), None);
        let anon = "7f12a0000000-7f12a0400000 rw-p 00000000 00:00 0";
        assert_eq!(mapping_file(anon, 0x7f12a0000000, 0x1000), None);
        assert_eq!(mapping_file("garbage", 0, 0), None);
    }

    #[test]
    fn the_file_behind_a_mapping_is_found_and_its_seals_decide() {
        let len = 3 * rustix::param::page_size();
        let memfd = rustix::fs::memfd_create(
            "shm-scanout-test",
            rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
        )
        .unwrap();
        rustix::fs::ftruncate(&memfd, len as u64).unwrap();
        // SAFETY: a fresh shared mapping of our own memfd; nothing else refers to the address.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ,
                rustix::mm::MapFlags::SHARED,
                &memfd,
                0,
            )
        }
        .unwrap();
        let found = pool_file(ptr as usize, len).expect("the memfd behind the mapping");
        let (a, b) = (
            rustix::fs::fstat(&found).unwrap(),
            rustix::fs::fstat(&memfd).unwrap(),
        );
        assert_eq!((a.st_dev, a.st_ino), (b.st_dev, b.st_ino));
        assert_eq!(
            check_seals(found.as_fd()),
            Err(ShmRefusal::NotSealedAgainstShrinking)
        );
        rustix::fs::fcntl_add_seals(&memfd, SealFlags::SHRINK).unwrap();
        assert_eq!(check_seals(found.as_fd()), Ok(()));
        rustix::fs::fcntl_add_seals(&memfd, SealFlags::FUTURE_WRITE).unwrap();
        assert_eq!(check_seals(found.as_fd()), Err(ShmRefusal::WriteSealed));
        // SAFETY: the mapping made above, unmapped once; `found` holds no pointer into it.
        unsafe { rustix::mm::munmap(ptr, len) }.unwrap();
        assert!(
            matches!(pool_file(ptr as usize, len), Err(ShmRefusal::Failed(_))),
            "unmapped"
        );
    }

    #[test]
    fn a_file_on_disk_is_not_a_memfd() {
        let file = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(check_seals(file.as_fd()), Err(ShmRefusal::NotMemfd));
    }
}
