//! Exporting memory the application already holds as dma-bufs, through `/dev/udmabuf`.
//!
//! A frame drawn by CPU code or a decoder's output normally lives in ordinary memory, and getting
//! it to a display or a compositor means a copy into a dma-buf. udmabuf removes the copy: it turns
//! pages of a memfd into a dma-buf. Mainline kernels can do that **only for memfd (shmem or
//! hugetlbfs) memory**, so this module makes application memory memfd-backed from the start:
//!
//! - [`MemfdBuffer`]: a byte buffer, usable like a boxed slice, that is a sealed memfd.
//! - [`MemfdAlloc`]: a `GlobalAlloc` that serves large allocations from sealed memfds, so that
//!   ordinary `Vec`s become exportable; [`export_app_memory`] then exports any range of them.
//! - [`Udmabuf::export`] / [`Udmabuf::export_list`]: one memfd range, or scattered ranges (of one
//!   or several memfds) as one dma-buf.
//!
//! Memory the library did not allocate (plain `malloc`, the stack) cannot be exported by a
//! mainline kernel: [`export_app_memory`] says so ([`ExportError::NotExportable`]) and
//! [`copy_into_export`] is the explicit, counted copy for that case.
//!
//! The kernel's rules, checked here before the ioctl so the error can say which one: offset and
//! size page-aligned; the memfd sealed against shrinking (added for you) and *not* against
//! writing (the pages are pinned for a device that may write them); the total at most
//! `size_limit_mb` (a module parameter, 64 MiB before 6.13, unlimited since) and at most
//! `list_limit` ranges. A range that does not start on a page boundary is exported from the page
//! below it, and the returned [`ExportedRange::offset`] is the plane offset to hand to
//! linux-dmabuf or KMS (importers honour offsets; a dma-buf itself cannot start mid-page).
//!
//! ## How to use
//!
//! ```no_run
//! use wayheap::export::{MemfdBuffer, Udmabuf};
//!
//! # fn main() -> Result<(), wayheap::export::ExportError> {
//! let udmabuf = Udmabuf::open()?;
//! let mut frame = MemfdBuffer::new(640 * 480 * 4)?;
//! frame.fill(0x80); // CPU drawing, straight into what will be the dma-buf
//! let exported = frame.export_range(&udmabuf, 0..frame.len())?;
//! assert_eq!(exported.offset, 0);
//! // exported.dmabuf.fd() goes to linux-dmabuf with plane offset `exported.offset`.
//! # Ok(())
//! # }
//! ```

mod alloc;
mod memfd;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, SealFlags};
use rustix::io::Errno;

use crate::dmabuf::{DmaBuf, Origin};
use crate::sys;
pub use alloc::{MemfdAlloc, export_app_memory, export_app_memory_for};
pub use memfd::MemfdBuffer;

/// The udmabuf device node.
pub const DEFAULT_UDMABUF: &str = "/dev/udmabuf";

/// The provider name udmabuf exports are accounted under.
pub const UDMABUF_PROVIDER: &str = "udmabuf";

/// The udev rule that grants a group access to `/dev/udmabuf`.
pub const UDMABUF_UDEV_RULE_HINT: &str = r#"KERNEL=="udmabuf", GROUP="video", MODE="0660""#;

/// Why memory could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// No udmabuf node.
    #[error("{} does not exist: the kernel needs CONFIG_UDMABUF", path.display())]
    NotFound {
        /// The node looked for.
        path: PathBuf,
    },
    /// The node is not accessible.
    #[error(
        "permission denied opening {}: grant a group with a udev rule such as `{UDMABUF_UDEV_RULE_HINT}`",
        path.display()
    )]
    PermissionDenied {
        /// The node.
        path: PathBuf,
    },
    /// A zero-length range.
    #[error("refusing to export an empty range")]
    Empty,
    /// Offset or size not on a page boundary.
    #[error(
        "udmabuf needs page-aligned ranges ({page} bytes): offset {offset} and size {size} are not; \
         use export_range, which aligns and returns the plane offset"
    )]
    Unaligned {
        /// The offending offset.
        offset: u64,
        /// The offending size.
        size: u64,
        /// The page size.
        page: u64,
    },
    /// The range runs past the end of the memfd.
    #[error("range {offset}+{size} is past the end of the {file_size}-byte memfd")]
    OutOfRange {
        /// Start of the range.
        offset: u64,
        /// Its size.
        size: u64,
        /// The memfd's size.
        file_size: u64,
    },
    /// The fd is not a memfd that can be sealed.
    #[error(
        "fd {fd} cannot carry seals: udmabuf takes only memfds created with MFD_ALLOW_SEALING \
         (MemfdBuffer and MemfdAlloc create them so)"
    )]
    NotSealable {
        /// The fd number.
        fd: i32,
    },
    /// The memfd is sealed against writing.
    #[error(
        "the memfd is sealed against writing (F_SEAL_WRITE/F_SEAL_FUTURE_WRITE): udmabuf refuses it, \
         because a device could write the pinned pages behind the seal's back; export before sealing \
         writes, or copy"
    )]
    WriteSealed,
    /// More than `size_limit_mb` in one dma-buf.
    #[error(
        "{total} bytes exceed udmabuf's size_limit_mb={limit_mb} for one dma-buf (the limit counts the \
         whole list, not each range): raise /sys/module/udmabuf/parameters/size_limit_mb or export \
         one dma-buf per plane"
    )]
    SizeLimit {
        /// Bytes asked for.
        total: u64,
        /// The module parameter.
        limit_mb: u64,
    },
    /// More than the fixed 64 MiB of a udmabuf without the `size_limit_mb` parameter (5.10).
    #[error(
        "{total} bytes exceed this kernel's fixed udmabuf limit of {FIXED_SIZE_LIMIT_MB} MiB per \
         dma-buf (its udmabuf has no size_limit_mb parameter to raise, as in Linux 5.10): export one \
         dma-buf per plane, or allocate from a DMA-BUF heap"
    )]
    FixedSizeLimit {
        /// Bytes asked for.
        total: u64,
    },
    /// A hugetlbfs memfd on a kernel whose udmabuf takes shmem memfds only.
    #[error(
        "this kernel's udmabuf takes shmem memfds only (UDMABUF_CREATE answered EBADFD): \
         hugetlbfs memfds (MFD_HUGETLB) need Linux 5.16 or later; use MemfdBuffer::new"
    )]
    HugetlbUnsupported,
    /// More ranges than `list_limit`.
    #[error(
        "{count} ranges exceed udmabuf's list_limit={limit} (/sys/module/udmabuf/parameters/list_limit)"
    )]
    ListLimit {
        /// Ranges asked for.
        count: usize,
        /// The module parameter.
        limit: u64,
    },
    /// The memory was not allocated by this library, so no memfd backs it.
    #[error(
        "cannot export {len} bytes at {addr:#x}: mainline kernels export only memfd memory through \
         udmabuf, and this range is not in a MemfdBuffer or a MemfdAlloc allocation (plain malloc, \
         stack, or a small allocation under MemfdAlloc's threshold); allocate it with those, or use \
         copy_into_export (one counted copy)"
    )]
    NotExportable {
        /// Start of the range.
        addr: usize,
        /// Its length.
        len: usize,
    },
    /// Creating or growing the memfd failed.
    #[error("memfd {op} failed: {errno}")]
    Memfd {
        /// The operation.
        op: &'static str,
        /// The kernel's error.
        errno: Errno,
    },
    /// The kernel refused the export for a reason not caught above.
    #[error("{op} failed: {errno}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The kernel's error.
        errno: Errno,
    },
}

/// A page-aligned range of a memfd.
#[derive(Debug, Clone, Copy)]
pub struct MemfdRange<'a> {
    /// The memfd.
    pub memfd: BorrowedFd<'a>,
    /// Start, page-aligned.
    pub offset: u64,
    /// Length, page-aligned.
    pub size: u64,
}

/// A dma-buf exported from application memory, with the plane offset of the first byte asked for.
#[derive(Debug)]
pub struct ExportedRange {
    /// The dma-buf (starting on the page that holds the first byte).
    pub dmabuf: DmaBuf,
    /// Where the asked-for range starts inside the dma-buf: the linux-dmabuf/KMS plane offset.
    pub offset: u32,
}

/// The open `/dev/udmabuf` node.
#[derive(Debug)]
pub struct Udmabuf {
    fd: OwnedFd,
}

pub(crate) fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

fn read_param(name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/sys/module/udmabuf/parameters/{name}")).ok()?;
    text.trim().parse().ok()
}

impl Udmabuf {
    /// Opens [`DEFAULT_UDMABUF`].
    pub fn open() -> Result<Self, ExportError> {
        Self::open_at(Path::new(DEFAULT_UDMABUF))
    }

    /// Opens a udmabuf node at `path`.
    pub fn open_at(path: &Path) -> Result<Self, ExportError> {
        let fd = rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()).map_err(
            |errno| match errno {
                Errno::NOENT => ExportError::NotFound {
                    path: path.to_owned(),
                },
                Errno::ACCESS | Errno::PERM => ExportError::PermissionDenied {
                    path: path.to_owned(),
                },
                errno => ExportError::Io {
                    op: "open /dev/udmabuf",
                    errno,
                },
            },
        )?;
        Ok(Self { fd })
    }

    /// The kernel's per-dma-buf limit in bytes (`size_limit_mb`), if the parameter is readable.
    pub fn size_limit() -> Option<u64> {
        read_param("size_limit_mb").map(|mb| mb.saturating_mul(1 << 20))
    }

    /// The kernel's limit on ranges per CREATE_LIST (`list_limit`), if readable.
    pub fn list_limit() -> Option<u64> {
        read_param("list_limit")
    }

    /// Exports one page-aligned memfd range (`UDMABUF_CREATE`).
    pub fn export(&self, range: MemfdRange<'_>) -> Result<DmaBuf, ExportError> {
        self.export_for(range, "")
    }

    /// As [`export`](Self::export), named and accounted under `usage`.
    pub fn export_for(&self, range: MemfdRange<'_>, usage: &str) -> Result<DmaBuf, ExportError> {
        check_ranges(&[range])?;
        let fd = sys::udmabuf_create(
            self.fd.as_fd(),
            range.memfd,
            range.offset,
            range.size,
            sys::UDMABUF_FLAGS_CLOEXEC,
        )
        .map_err(|errno| kernel_error("UDMABUF_CREATE", errno, &[range]))?;
        Ok(self.wrap(fd, range.size, usage))
    }

    /// Exports several page-aligned ranges, of one memfd or several, as one dma-buf
    /// (`UDMABUF_CREATE_LIST`), in order.
    pub fn export_list(
        &self,
        ranges: &[MemfdRange<'_>],
        usage: &str,
    ) -> Result<DmaBuf, ExportError> {
        check_ranges(ranges)?;
        let items: Vec<_> = ranges.iter().map(|r| (r.memfd, r.offset, r.size)).collect();
        let fd = sys::udmabuf_create_list(self.fd.as_fd(), sys::UDMABUF_FLAGS_CLOEXEC, &items)
            .map_err(|errno| kernel_error("UDMABUF_CREATE_LIST", errno, ranges))?;
        let total = ranges.iter().fold(0u64, |t, r| t.saturating_add(r.size));
        Ok(self.wrap(fd, total, usage))
    }

    fn wrap(&self, fd: OwnedFd, size: u64, usage: &str) -> DmaBuf {
        DmaBuf::allocated(fd, size, Origin::Udmabuf, UDMABUF_PROVIDER, usage)
    }
}

/// The limits of a udmabuf without module parameters (Linux 5.10: constants in udmabuf.c).
pub const FIXED_SIZE_LIMIT_MB: u64 = 64;
const FIXED_LIST_LIMIT: u64 = 1024;

/// The kernel's refusal, named where [`check_ranges`] could not know the rule in advance: the
/// fixed limits of a udmabuf without parameters, and hugetlbfs memfds before 5.16.
fn kernel_error(op: &'static str, errno: Errno, ranges: &[MemfdRange<'_>]) -> ExportError {
    let total = ranges.iter().fold(0u64, |t, r| t.saturating_add(r.size));
    match errno {
        Errno::INVAL if Udmabuf::size_limit().is_none() && total > FIXED_SIZE_LIMIT_MB << 20 => {
            ExportError::FixedSizeLimit { total }
        }
        Errno::INVAL
            if Udmabuf::list_limit().is_none() && ranges.len() as u64 > FIXED_LIST_LIMIT =>
        {
            ExportError::ListLimit {
                count: ranges.len(),
                limit: FIXED_LIST_LIMIT,
            }
        }
        Errno::BADFD if ranges.iter().any(|r| on_hugetlbfs(r.memfd)) => {
            ExportError::HugetlbUnsupported
        }
        errno => ExportError::Io { op, errno },
    }
}

/// `HUGETLBFS_MAGIC` (`<linux/magic.h>`).
const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;

// `f_type` is i64 here, i32 or u32 elsewhere: the cast is needed on some architectures.
#[allow(clippy::unnecessary_cast)]
fn on_hugetlbfs(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fstatfs(fd).is_ok_and(|s| s.f_type as i64 == HUGETLBFS_MAGIC)
}

/// The kernel's checks, done first so the error names the rule (the kernel says only EINVAL).
fn check_ranges(ranges: &[MemfdRange<'_>]) -> Result<(), ExportError> {
    if ranges.is_empty() {
        return Err(ExportError::Empty);
    }
    if let Some(limit) = Udmabuf::list_limit()
        && ranges.len() as u64 > limit
    {
        return Err(ExportError::ListLimit {
            count: ranges.len(),
            limit,
        });
    }
    let page = page_size();
    let mut total = 0u64;
    for r in ranges {
        if r.size == 0 {
            return Err(ExportError::Empty);
        }
        if r.offset % page != 0 || r.size % page != 0 {
            return Err(ExportError::Unaligned {
                offset: r.offset,
                size: r.size,
                page,
            });
        }
        let file_size = rustix::fs::fstat(r.memfd)
            .map_err(|errno| ExportError::Memfd { op: "fstat", errno })?
            .st_size as u64;
        if r.offset
            .checked_add(r.size)
            .is_none_or(|end| end > file_size)
        {
            return Err(ExportError::OutOfRange {
                offset: r.offset,
                size: r.size,
                file_size,
            });
        }
        seal_for_export(r.memfd)?;
        // Ranges of one memfd may repeat: their sum can pass 64 bits (and any limit).
        total = total.saturating_add(r.size);
    }
    if let Some(limit) = Udmabuf::size_limit()
        && total > limit
    {
        return Err(ExportError::SizeLimit {
            total,
            limit_mb: limit >> 20,
        });
    }
    Ok(())
}

/// Adds F_SEAL_SHRINK (udmabuf requires it: pinned pages must not be truncated away) and refuses
/// write seals (udmabuf refuses them).
fn seal_for_export(memfd: BorrowedFd<'_>) -> Result<(), ExportError> {
    let fd = memfd.as_raw_fd();
    let seals = rustix::fs::fcntl_get_seals(memfd).map_err(|_| ExportError::NotSealable { fd })?;
    if seals.intersects(SealFlags::WRITE | SealFlags::FUTURE_WRITE) {
        return Err(ExportError::WriteSealed);
    }
    if !seals.contains(SealFlags::SHRINK) {
        if seals.contains(SealFlags::SEAL) {
            return Err(ExportError::NotSealable { fd });
        }
        rustix::fs::fcntl_add_seals(memfd, SealFlags::SHRINK)
            .map_err(|_| ExportError::NotSealable { fd })?;
    }
    Ok(())
}

/// Exports `bytes` by copying them into a fresh [`MemfdBuffer`]: the path for memory the library
/// did not allocate. The copy is counted in [`crate::accounting::copies`].
pub fn copy_into_export(
    udmabuf: &Udmabuf,
    bytes: &[u8],
    usage: &str,
) -> Result<ExportedRange, ExportError> {
    let buf = MemfdBuffer::from_slice(bytes)?;
    crate::accounting::count_copy(bytes.len());
    let range = MemfdRange {
        memfd: buf.memfd(),
        offset: 0,
        size: buf.mapped_len() as u64,
    };
    // The dma-buf pins the pages; the MemfdBuffer (our mapping and fd) can go.
    let dmabuf = udmabuf.export_for(range, usage)?;
    Ok(ExportedRange { dmabuf, offset: 0 })
}

/// Exports `range` (bytes) of `memfd`, aligning it out to pages; shared by the memfd types.
pub(crate) fn export_unaligned(
    udmabuf: &Udmabuf,
    memfd: BorrowedFd<'_>,
    start: u64,
    end: u64,
    usage: &str,
) -> Result<ExportedRange, ExportError> {
    if end <= start {
        return Err(ExportError::Empty);
    }
    let page = page_size();
    let aligned_start = start / page * page;
    let aligned_end = end.div_ceil(page) * page;
    let dmabuf = udmabuf.export_for(
        MemfdRange {
            memfd,
            offset: aligned_start,
            size: aligned_end - aligned_start,
        },
        usage,
    )?;
    Ok(ExportedRange {
        dmabuf,
        offset: (start - aligned_start) as u32,
    })
}

impl AsFd for Udmabuf {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A sealable memfd of `size` bytes (sparse: nothing is allocated).
    fn memfd(size: u64) -> OwnedFd {
        let fd = rustix::fs::memfd_create(
            "ranges",
            rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
        )
        .unwrap();
        rustix::fs::ftruncate(&fd, size).unwrap();
        fd
    }

    #[test]
    fn huge_range_lists_do_not_overflow_the_total() {
        // Found by proptests::ranges_are_checked_by_the_kernels_rules: the ranges' total was
        // added without overflow check (a panic in debug builds, a wrapped total under the
        // size limit in release).
        let fd = memfd(1 << 62);
        let range = MemfdRange {
            memfd: fd.as_fd(),
            offset: 0,
            size: 1 << 62,
        };
        let r = check_ranges(&[range; 5]);
        assert!(
            matches!(r, Ok(()) | Err(ExportError::SizeLimit { .. })),
            "{r:?}"
        );
    }

    /// Property tests (issue 15): 1 500 cases per run.
    mod proptests {
        use super::*;

        fn number(file: u64) -> impl Strategy<Value = u64> {
            let page = page_size();
            prop_oneof![
                (0u64..8).prop_map(move |p| p * page),
                Just(file),
                (0u64..3).prop_map(move |p| file.saturating_sub(p * page)),
                any::<u64>(),
                any::<u64>().prop_map(move |v| v / page * page),
            ]
        }

        proptest! {
            #![proptest_config(crate::proptest_config::config(1_500))]

            /// Any ranges over memfds of any size: the first broken rule, in the kernel's order
            /// (empty, page alignment, inside the memfd), computed without overflow, or the
            /// module's limits; never a panic.
            #[test]
            fn ranges_are_checked_by_the_kernels_rules(
                files in proptest::collection::vec(prop_oneof![Just(0u64), (1u64..16).prop_map(|p| p * page_size()), Just(1u64 << 40), Just(1u64 << 62)], 1..3),
                picks in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u64>(), any::<u64>(), 0u8..3), 0..6),
                shapes in proptest::collection::vec((number(1 << 62), number(1 << 40)), 6),
            ) {
                let fds: Vec<OwnedFd> = files.iter().map(|s| memfd(*s)).collect();
                let page = page_size();
                // Each range: raw numbers, near the file's size, or the whole file.
                let ranges: Vec<(usize, u64, u64)> = picks.iter().zip(&shapes).map(|((i, o, s, kind), (so, ss))| {
                    let f = i.index(files.len());
                    match kind {
                        0 => (f, *o, *s),
                        1 => (f, *so % (files[f] + page), *ss),
                        _ => (f, 0, files[f]),
                    }
                }).collect();
                let list: Vec<MemfdRange<'_>> = ranges.iter().map(|(f, offset, size)| MemfdRange { memfd: fds[*f].as_fd(), offset: *offset, size: *size }).collect();
                let got = check_ranges(&list);
                let expected = (|| {
                    if ranges.is_empty() {
                        return Err(ExportError::Empty);
                    }
                    if let Some(limit) = Udmabuf::list_limit() && ranges.len() as u64 > limit {
                        return Err(ExportError::ListLimit { count: ranges.len(), limit });
                    }
                    let mut total = 0u128;
                    for (f, offset, size) in &ranges {
                        if *size == 0 {
                            return Err(ExportError::Empty);
                        }
                        if offset % page != 0 || size % page != 0 {
                            return Err(ExportError::Unaligned { offset: *offset, size: *size, page });
                        }
                        if u128::from(*offset) + u128::from(*size) > u128::from(files[*f]) {
                            return Err(ExportError::OutOfRange { offset: *offset, size: *size, file_size: files[*f] });
                        }
                        total += u128::from(*size);
                    }
                    match Udmabuf::size_limit() {
                        Some(limit) if total > u128::from(limit) => Err(ExportError::SizeLimit {
                            total: u64::try_from(total).unwrap_or(u64::MAX),
                            limit_mb: limit >> 20,
                        }),
                        _ => Ok(()),
                    }
                })();
                // ExportError is not PartialEq (io errnos): compare what they print.
                prop_assert_eq!(format!("{got:?}"), format!("{expected:?}"));
            }
        }
    }
}
