//! Kernel ABI, and the one layer that makes ioctls: the structures and ioctl numbers of
//! `<linux/dma-heap.h>`, `<linux/dma-buf.h>`, `<linux/udmabuf.h>` and ION's `<linux/ion.h>`
//! (staging, 4.12 to 5.10), one safe function per ioctl,
//! and the EINTR retry every call shares ([`retry_on_intr`], [`retry_on_intr_or_again`]).
//!
//! Every `unsafe` `rustix::ioctl::ioctl` of the crate is in this file or in `v4l2::sys` (the
//! `<linux/videodev2.h>` ones); [`crate::heap`], [`crate::dmabuf`] and [`crate::export`] call the
//! safe functions and read as what they do, not as bit layouts.
//!
//! Why the functions can be safe for any fd: every opcode here encodes its argument's direction
//! and size (`_IOR`/`_IOW`/`_IOWR`), the argument is a value or a `#[repr(C)]` mirror of exactly
//! that size owned by the function for the duration of the call, and none of the structures
//! carries a pointer the kernel follows (the exceptions: `DMA_BUF_SET_NAME` gets a `&CStr`,
//! `ION_IOC_HEAP_QUERY` a buffer the function owns). A
//! driver that does not know the number answers ENOTTY.
//!
//! The opcodes and structure sizes are checked at compile time against linux-raw-sys (the
//! kernel's own headers, as rustix uses them) in [`abi_checks`].

use std::ffi::{CStr, c_void};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::fs::OFlags;
use rustix::io::{Errno, Result};
use rustix::ioctl::{IntegerSetter, Ioctl, IoctlOutput, Opcode, Setter, Updater, ioctl, opcode};

/// Runs `f` (one system call) again while it fails with EINTR: a signal arrived before the call
/// did anything, so repeating it is what the caller meant.
pub(crate) fn retry_on_intr<T>(f: impl FnMut() -> Result<T>) -> Result<T> {
    retry_while(f, |e| e == Errno::INTR)
}

/// As [`retry_on_intr`], and also while the call fails with EAGAIN: for the calls that say EAGAIN
/// when a wait inside them was interrupted (`DMA_BUF_IOCTL_SYNC` waiting on fences, a heap
/// allocation), not for non-blocking I/O where EAGAIN means "nothing yet".
pub(crate) fn retry_on_intr_or_again<T>(f: impl FnMut() -> Result<T>) -> Result<T> {
    retry_while(f, |e| e == Errno::INTR || e == Errno::AGAIN)
}

fn retry_while<T>(mut f: impl FnMut() -> Result<T>, again: impl Fn(Errno) -> bool) -> Result<T> {
    loop {
        match f() {
            Err(errno) if again(errno) => continue,
            other => return other,
        }
    }
}

/// `_IOC_SIZE(op)`: the argument size an ioctl number encodes (`<asm-generic/ioctl.h>`; 13 bits on
/// the architectures with a 3-bit direction field).
pub(crate) const fn ioc_size(op: u32) -> usize {
    ((op >> IOC_SIZESHIFT) & ((1 << IOC_SIZEBITS) - 1)) as usize
}

const IOC_SIZESHIFT: u32 = 16;
/// The architectures whose ioctl numbers have a 3-bit direction field and a 13-bit size.
const THREE_BIT_DIRECTION: bool = cfg!(any(
    target_arch = "mips",
    target_arch = "mips32r6",
    target_arch = "mips64",
    target_arch = "mips64r6",
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "sparc",
    target_arch = "sparc64"
));
const IOC_SIZEBITS: u32 = if THREE_BIT_DIRECTION { 13 } else { 14 };

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
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DmaBufImportSyncFile {
    pub flags: u32,
    pub fd: i32,
}

/// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE`: `_IOW('b', 3, struct dma_buf_import_sync_file)`.
pub(crate) const DMA_BUF_IOCTL_IMPORT_SYNC_FILE: Opcode =
    opcode::write::<DmaBufImportSyncFile>(b'b', 3);

/// `struct udmabuf_create` (`<linux/udmabuf.h>`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
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

/// `struct ion_allocation_data` (`drivers/staging/android/uapi/ion.h`, the ABI of Linux 4.12 to
/// 5.10; ION left the kernel in 5.11).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct IonAllocationData {
    pub len: u64,
    pub heap_id_mask: u32,
    pub flags: u32,
    pub fd: u32,
    pub unused: u32,
}

/// `ION_FLAG_CACHED`: the CPU maps the buffer cached (else write-combined).
pub(crate) const ION_FLAG_CACHED: u32 = 1;

/// `MAX_HEAP_NAME`.
pub(crate) const ION_MAX_HEAP_NAME: usize = 32;

/// `struct ion_heap_data`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IonHeapData {
    pub name: [u8; ION_MAX_HEAP_NAME],
    pub heap_type: u32,
    pub heap_id: u32,
    pub reserved0: u32,
    pub reserved1: u32,
    pub reserved2: u32,
}

/// `struct ion_heap_query`.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct IonHeapQuery {
    pub cnt: u32,
    pub reserved0: u32,
    pub heaps: u64,
    pub reserved1: u32,
    pub reserved2: u32,
}

/// `ION_IOC_ALLOC`: `_IOWR('I', 0, struct ion_allocation_data)`. Before 4.12 the structure (and
/// so the number) differed: such a kernel answers ENOTTY.
pub(crate) const ION_IOC_ALLOC: Opcode = opcode::read_write::<IonAllocationData>(b'I', 0);

/// `ION_IOC_HEAP_QUERY`: `_IOWR('I', 8, struct ion_heap_query)` (4.12 and later).
pub(crate) const ION_IOC_HEAP_QUERY: Opcode = opcode::read_write::<IonHeapQuery>(b'I', 8);

/// `ION_IOC_ALLOC` on `/dev/ion`: a dma-buf of `len` bytes from the first heap of
/// `heap_id_mask` that can serve it, with `flags` (`ION_FLAG_CACHED`). Retried on EINTR and EAGAIN.
pub(crate) fn ion_alloc(
    ion: BorrowedFd<'_>,
    len: u64,
    heap_id_mask: u32,
    flags: u32,
) -> Result<OwnedFd> {
    let mut data = IonAllocationData {
        len,
        heap_id_mask,
        flags,
        ..Default::default()
    };
    retry_on_intr_or_again(|| {
        // SAFETY: ION_IOC_ALLOC reads and writes exactly one `ion_allocation_data`, which
        // `IonAllocationData` mirrors with #[repr(C)] (size checked below); `data` outlives the
        // call.
        unsafe { ioctl(ion, Updater::<{ ION_IOC_ALLOC }, _>::new(&mut data)) }
    })?;
    // SAFETY: on success the kernel installed a new dma-buf fd (O_CLOEXEC) in `data.fd` that
    // nothing else owns; ownership is taken exactly once, here.
    Ok(unsafe { OwnedFd::from_raw_fd(data.fd as i32) })
}

/// `ION_IOC_HEAP_QUERY` on `/dev/ion`, twice: the number of heaps, then their descriptions.
/// Retried on EINTR.
pub(crate) fn ion_heap_query(ion: BorrowedFd<'_>) -> Result<Vec<IonHeapData>> {
    let mut count = IonHeapQuery::default();
    retry_on_intr(|| {
        // SAFETY: ION_IOC_HEAP_QUERY reads and writes one `ion_heap_query` (mirrored by
        // #[repr(C)] `IonHeapQuery`); with `heaps` 0 the kernel follows no pointer and only
        // writes the count. `count` outlives the call.
        unsafe { ioctl(ion, Updater::<{ ION_IOC_HEAP_QUERY }, _>::new(&mut count)) }
    })?;
    if count.cnt == 0 {
        return Ok(Vec::new());
    }
    // A mutable buffer of `cnt` descriptions, which the kernel fills through the pointer.
    let mut heaps = vec![IonHeapData::default(); count.cnt as usize];
    let mut query = IonHeapQuery {
        cnt: count.cnt,
        heaps: heaps.as_mut_ptr() as u64,
        ..Default::default()
    };
    retry_on_intr(|| {
        // SAFETY: the kernel writes at most `query.cnt` `ion_heap_data` (mirrored by #[repr(C)]
        // `IonHeapData`, size checked below) through `query.heaps`, which points at the start
        // of `heaps`: a mutable Vec of exactly `cnt` elements that is neither moved nor touched
        // until the call returns. `query` itself is read and written as in the first call.
        unsafe { ioctl(ion, Updater::<{ ION_IOC_HEAP_QUERY }, _>::new(&mut query)) }
    })?;
    heaps.truncate(query.cnt.min(count.cnt) as usize);
    Ok(heaps)
}

/// `DMA_HEAP_IOCTL_ALLOC` on the heap node `heap`: a new dma-buf of `len` bytes (the kernel
/// rounds up to pages), its fd opened with `fd_flags` (`O_RDWR`, `O_CLOEXEC`; nothing else is
/// accepted). `heap_flags` must be 0 on every mainline heap. Retried on EINTR and EAGAIN.
pub(crate) fn dma_heap_alloc(
    heap: BorrowedFd<'_>,
    len: u64,
    fd_flags: OFlags,
    heap_flags: u64,
) -> Result<OwnedFd> {
    let mut data = DmaHeapAllocationData {
        len,
        fd: 0,
        fd_flags: fd_flags.bits(),
        heap_flags,
    };
    retry_on_intr_or_again(|| {
        // SAFETY: DMA_HEAP_IOCTL_ALLOC reads and writes exactly one `dma_heap_allocation_data`,
        // which `DmaHeapAllocationData` mirrors field for field with #[repr(C)] (checked below
        // against the kernel's size); `data` outlives the call.
        unsafe { ioctl(heap, Updater::<{ DMA_HEAP_IOCTL_ALLOC }, _>::new(&mut data)) }
    })?;
    // SAFETY: on success the kernel installed a new dma-buf fd in `data.fd` that nothing else
    // owns; ownership is taken exactly once, here.
    Ok(unsafe { OwnedFd::from_raw_fd(data.fd as i32) })
}

/// `DMA_BUF_IOCTL_SYNC` with `flags` (`DMA_BUF_SYNC_START`/`END` | `READ`/`WRITE`): brackets CPU
/// access to a mapped dma-buf. Retried on EINTR and EAGAIN (a fence wait interrupted).
pub(crate) fn dma_buf_sync(buf: BorrowedFd<'_>, flags: u64) -> Result<()> {
    retry_on_intr_or_again(|| {
        // SAFETY: DMA_BUF_IOCTL_SYNC reads one `struct dma_buf_sync`, mirrored by `DmaBufSync`,
        // which the Setter owns for the duration of the call.
        unsafe {
            ioctl(
                buf,
                Setter::<{ DMA_BUF_IOCTL_SYNC }, _>::new(DmaBufSync { flags }),
            )
        }
    })
}

/// `DMA_BUF_SET_NAME`: names the dma-buf (visible in fdinfo and debugfs). The kernel refuses
/// names of `DMA_BUF_NAME_LEN` bytes or more with EINVAL. Retried on EINTR.
pub(crate) fn dma_buf_set_name(buf: BorrowedFd<'_>, name: &CStr) -> Result<()> {
    retry_on_intr(|| {
        // SAFETY: DMA_BUF_SET_NAME takes a pointer to a NUL-terminated string, which the kernel
        // copies (strndup_user, stopping at the NUL) during the call and never writes; `name`
        // is NUL-terminated and outlives the call.
        unsafe {
            ioctl(
                buf,
                IntegerSetter::<{ DMA_BUF_SET_NAME }>::new_pointer(name.as_ptr() as *mut c_void),
            )
        }
    })
}

/// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE`: the dma-buf's implicit fences selected by `flags`
/// (`DMA_BUF_SYNC_READ`/`WRITE`) as a new sync_file fd. Retried on EINTR.
pub(crate) fn dma_buf_export_sync_file(buf: BorrowedFd<'_>, flags: u32) -> Result<OwnedFd> {
    let mut data = DmaBufExportSyncFile { flags, fd: -1 };
    retry_on_intr(|| {
        // SAFETY: the ioctl reads and writes one `struct dma_buf_export_sync_file`, mirrored by
        // #[repr(C)] `DmaBufExportSyncFile`; `data` outlives the call.
        unsafe {
            ioctl(
                buf,
                Updater::<{ DMA_BUF_IOCTL_EXPORT_SYNC_FILE }, _>::new(&mut data),
            )
        }
    })?;
    // SAFETY: on success the kernel installed a new sync_file fd in `data.fd` that nothing else
    // owns; ownership is taken exactly once, here.
    Ok(unsafe { OwnedFd::from_raw_fd(data.fd) })
}

/// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE`: adds the sync_file `fence` to the dma-buf's implicit fences,
/// as a reader or writer per `flags`. Retried on EINTR.
pub(crate) fn dma_buf_import_sync_file(
    buf: BorrowedFd<'_>,
    flags: u32,
    fence: BorrowedFd<'_>,
) -> Result<()> {
    let data = DmaBufImportSyncFile {
        flags,
        fd: fence.as_raw_fd(),
    };
    retry_on_intr(|| {
        // SAFETY: the ioctl reads one `struct dma_buf_import_sync_file`, mirrored by #[repr(C)]
        // `DmaBufImportSyncFile`; the fence fd in it is borrowed, so open, for the call.
        unsafe {
            ioctl(
                buf,
                Setter::<{ DMA_BUF_IOCTL_IMPORT_SYNC_FILE }, _>::new(data),
            )
        }
    })
}

/// `UDMABUF_CREATE` on the udmabuf node `dev`: bytes `offset..offset + size` of `memfd` as a new
/// dma-buf fd (`flags`: `UDMABUF_FLAGS_CLOEXEC`). Retried on EINTR.
pub(crate) fn udmabuf_create(
    dev: BorrowedFd<'_>,
    memfd: BorrowedFd<'_>,
    offset: u64,
    size: u64,
    flags: u32,
) -> Result<OwnedFd> {
    let data = UdmabufCreate {
        memfd: memfd.as_raw_fd() as u32,
        flags,
        offset,
        size,
    };
    retry_on_intr(|| {
        // SAFETY: UDMABUF_CREATE reads one `struct udmabuf_create` (mirrored by #[repr(C)]
        // `UdmabufCreate`, owned by the Setter for the call) and returns a new fd, which
        // `ReturnsFd` takes ownership of.
        unsafe { ioctl(dev, ReturnsFd(Setter::<{ UDMABUF_CREATE }, _>::new(data))) }
    })
}

/// `UDMABUF_CREATE_LIST` on the udmabuf node `dev`: the ranges `(memfd, offset, size)`, in order,
/// as one new dma-buf fd. More ranges than a `u32` can count are refused with EINVAL. Retried on
/// EINTR.
pub(crate) fn udmabuf_create_list(
    dev: BorrowedFd<'_>,
    flags: u32,
    ranges: &[(BorrowedFd<'_>, u64, u64)],
) -> Result<OwnedFd> {
    let mut words = udmabuf_list_words(flags, ranges)?;
    let arg = words.as_mut_ptr().cast::<c_void>();
    retry_on_intr(|| {
        // SAFETY: UDMABUF_CREATE_LIST reads `struct udmabuf_create_list` from the pointer: the
        // head, then `count` items. `words` holds exactly that layout (built by
        // `udmabuf_list_words` with `count == ranges.len()`), 8-byte aligned, for the whole call;
        // the kernel writes nothing back. The memfds are borrowed, so open. The return value is a
        // new fd, which `ReturnsFd` takes ownership of.
        unsafe {
            ioctl(
                dev,
                ReturnsFd(IntegerSetter::<{ UDMABUF_CREATE_LIST }>::new_pointer(arg)),
            )
        }
    })
}

/// `struct udmabuf_create_list { u32 flags; u32 count; struct udmabuf_create_item list[]; }`,
/// laid out in `u64`s so that the items are 8-byte aligned, without pointer writes.
fn udmabuf_list_words(flags: u32, ranges: &[(BorrowedFd<'_>, u64, u64)]) -> Result<Vec<u64>> {
    /// Two `u32`s as one `u64` whose bytes in memory are `lo`'s then `hi`'s, whatever the order.
    fn pair(lo: u32, hi: u32) -> u64 {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&lo.to_ne_bytes());
        b[4..].copy_from_slice(&hi.to_ne_bytes());
        u64::from_ne_bytes(b)
    }
    let count = u32::try_from(ranges.len()).map_err(|_| Errno::INVAL)?;
    let mut words = Vec::with_capacity(1 + 3 * ranges.len());
    words.push(pair(flags, count));
    for (memfd, offset, size) in ranges {
        // udmabuf_create_item { u32 memfd; u32 __pad; u64 offset; u64 size; }
        words.extend([pair(memfd.as_raw_fd() as u32, 0), *offset, *size]);
    }
    Ok(words)
}

/// An ioctl whose return value is a new fd (udmabuf's CREATE calls) rather than 0.
struct ReturnsFd<I>(I);

// SAFETY: delegates to the wrapped ioctl except for its output, which is the ioctl's return value
// (a new fd) instead of nothing; `IS_MUTATING`, the opcode and the argument are the wrapped one's.
unsafe impl<I: Ioctl> Ioctl for ReturnsFd<I> {
    type Output = OwnedFd;
    const IS_MUTATING: bool = I::IS_MUTATING;
    fn opcode(&self) -> Opcode {
        self.0.opcode()
    }
    fn as_ptr(&mut self) -> *mut c_void {
        self.0.as_ptr()
    }
    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> Result<OwnedFd> {
        // SAFETY: `ReturnsFd` wraps only ioctls that return a new fd on success, which nothing
        // else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(out) })
    }
}

/// Compile-time checks of the declarations above against linux-raw-sys, which rustix's own
/// syscalls are built on (generated from the kernel's uapi headers, per architecture).
///
/// linux-raw-sys (0.12, `ioctl` feature) has the ioctl *numbers* but not the structures
/// (`dma_heap_allocation_data`, `dma_buf_sync`, `udmabuf_create`, ... are in none of its
/// modules), so a structure's size is checked against the size its ioctl number encodes
/// (`_IOC_SIZE`), which is `sizeof` of the kernel's structure. It also lacks
/// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE` and `DMA_BUF_IOCTL_IMPORT_SYNC_FILE` (added in Linux 6.0):
/// those two are checked against the `_IOC` encoding of `<asm-generic/ioctl.h>`, computed here
/// independently of rustix's `opcode` functions, and that encoder is itself checked against
/// linux-raw-sys on the numbers it has. Flag values (`DMA_BUF_SYNC_*`, `UDMABUF_FLAGS_CLOEXEC`)
/// and `DMA_BUF_NAME_LEN` are in no linux-raw-sys module either.
mod abi_checks {
    use std::mem::offset_of;

    use linux_raw_sys::ioctl as k;

    use super::*;

    /// An ioctl number as linux-raw-sys spells it (`u32`), whatever `Opcode` is on this backend.
    const fn op(o: Opcode) -> u64 {
        o as u64
    }

    const _: () = assert!(op(DMA_HEAP_IOCTL_ALLOC) == k::DMA_HEAP_IOCTL_ALLOC as u64);
    const _: () = assert!(op(DMA_BUF_IOCTL_SYNC) == k::DMA_BUF_IOCTL_SYNC as u64);
    const _: () = assert!(op(DMA_BUF_SET_NAME) == k::DMA_BUF_SET_NAME_B as u64);
    const _: () = assert!(op(UDMABUF_CREATE) == k::UDMABUF_CREATE as u64);
    const _: () = assert!(op(UDMABUF_CREATE_LIST) == k::UDMABUF_CREATE_LIST as u64);

    const _: () = assert!(size_of::<DmaHeapAllocationData>() == ioc_size(k::DMA_HEAP_IOCTL_ALLOC));
    const _: () = assert!(size_of::<DmaBufSync>() == ioc_size(k::DMA_BUF_IOCTL_SYNC));
    const _: () = assert!(size_of::<UdmabufCreate>() == ioc_size(k::UDMABUF_CREATE));
    const _: () = assert!(size_of::<UdmabufCreateListHead>() == ioc_size(k::UDMABUF_CREATE_LIST));

    // Field offsets the kernel headers give (all fields are fixed-size, so every architecture).
    const _: () = assert!(offset_of!(DmaHeapAllocationData, fd) == 8);
    const _: () = assert!(offset_of!(DmaHeapAllocationData, fd_flags) == 12);
    const _: () = assert!(offset_of!(DmaHeapAllocationData, heap_flags) == 16);
    const _: () = assert!(offset_of!(UdmabufCreate, offset) == 8);
    const _: () = assert!(offset_of!(UdmabufCreate, size) == 16);
    const _: () = assert!(size_of::<UdmabufCreateItem>() == 24);
    const _: () = assert!(offset_of!(UdmabufCreateItem, offset) == 8);
    const _: () = assert!(size_of::<DmaBufExportSyncFile>() == 8);
    const _: () = assert!(size_of::<DmaBufImportSyncFile>() == 8);

    /// `_IOC(dir, type, nr, size)` as `<asm-generic/ioctl.h>` (and the mips/powerpc/sparc
    /// variants) define it.
    const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
        (dir << IOC_DIRSHIFT) | ((size as u32) << IOC_SIZESHIFT) | ((ty as u32) << 8) | nr as u32
    }
    const fn iow<T>(ty: u8, nr: u8) -> u32 {
        ioc(IOC_WRITE, ty, nr, size_of::<T>())
    }
    const fn iowr<T>(ty: u8, nr: u8) -> u32 {
        ioc(IOC_READ | IOC_WRITE, ty, nr, size_of::<T>())
    }
    const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
    const IOC_WRITE: u32 = if THREE_BIT_DIRECTION { 4 } else { 1 };
    const IOC_READ: u32 = 2;

    // The encoder agrees with linux-raw-sys where linux-raw-sys has the number...
    const _: () = assert!(iowr::<DmaHeapAllocationData>(b'H', 0) == k::DMA_HEAP_IOCTL_ALLOC);
    const _: () = assert!(iow::<DmaBufSync>(b'b', 0) == k::DMA_BUF_IOCTL_SYNC);
    const _: () = assert!(iow::<UdmabufCreate>(b'u', 0x42) == k::UDMABUF_CREATE);
    // ... and checks the numbers it does not have: ION (staging, never in linux-raw-sys) ...
    const _: () = assert!(op(ION_IOC_ALLOC) == iowr::<IonAllocationData>(b'I', 0) as u64);
    const _: () = assert!(op(ION_IOC_HEAP_QUERY) == iowr::<IonHeapQuery>(b'I', 8) as u64);
    const _: () = assert!(size_of::<IonAllocationData>() == 24);
    const _: () = assert!(offset_of!(IonAllocationData, fd) == 16);
    const _: () = assert!(size_of::<IonHeapData>() == 52);
    const _: () = assert!(offset_of!(IonHeapData, heap_id) == 36);
    const _: () = assert!(size_of::<IonHeapQuery>() == 24);
    const _: () = assert!(offset_of!(IonHeapQuery, heaps) == 8);
    // ... and the two sync_file ones (Linux 6.0).
    const _: () =
        assert!(op(DMA_BUF_IOCTL_EXPORT_SYNC_FILE) == iowr::<DmaBufExportSyncFile>(b'b', 2) as u64);
    const _: () =
        assert!(op(DMA_BUF_IOCTL_IMPORT_SYNC_FILE) == iow::<DmaBufImportSyncFile>(b'b', 3) as u64);
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::os::fd::AsFd;

    use super::*;

    /// A call that fails with each of `errors` in turn, then succeeds; counts its calls.
    fn flaky(errors: &[Errno], calls: &Cell<usize>) -> impl FnMut() -> Result<usize> {
        let errors = errors.to_vec();
        move || {
            let n = calls.get();
            calls.set(n + 1);
            match errors.get(n) {
                Some(e) => Err(*e),
                None => Ok(n),
            }
        }
    }

    #[test]
    fn eintr_is_retried_until_the_call_completes() {
        let calls = Cell::new(0);
        let res = retry_on_intr(flaky(&[Errno::INTR, Errno::INTR], &calls));
        assert_eq!(res, Ok(2));
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn other_errors_are_returned_at_once() {
        let calls = Cell::new(0);
        assert_eq!(
            retry_on_intr(flaky(&[Errno::AGAIN, Errno::INTR], &calls)),
            Err(Errno::AGAIN)
        );
        assert_eq!(calls.get(), 1);
        let calls = Cell::new(0);
        assert_eq!(
            retry_on_intr_or_again(flaky(&[Errno::NOMEM], &calls)),
            Err(Errno::NOMEM)
        );
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn the_eagain_variant_retries_both() {
        let calls = Cell::new(0);
        let res = retry_on_intr_or_again(flaky(&[Errno::AGAIN, Errno::INTR, Errno::AGAIN], &calls));
        assert_eq!(res, Ok(3));
        assert_eq!(calls.get(), 4);
    }

    #[test]
    fn udmabuf_list_is_laid_out_as_the_kernel_reads_it() {
        let a = std::fs::File::open("/dev/null").unwrap();
        let b = std::fs::File::open("/dev/null").unwrap();
        let ranges = [(a.as_fd(), 0x1000, 0x2000), (b.as_fd(), 0x3000, 0x4000)];
        let words = udmabuf_list_words(UDMABUF_FLAGS_CLOEXEC, &ranges).unwrap();
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let u32_at = |off: usize| u32::from_ne_bytes(bytes[off..off + 4].try_into().unwrap());
        let u64_at = |off: usize| u64::from_ne_bytes(bytes[off..off + 8].try_into().unwrap());
        let head = size_of::<UdmabufCreateListHead>();
        let item = size_of::<UdmabufCreateItem>();
        assert_eq!(bytes.len(), head + 2 * item);
        assert_eq!(u32_at(0), UDMABUF_FLAGS_CLOEXEC);
        assert_eq!(u32_at(4), 2);
        for (i, (fd, offset, size)) in ranges.iter().enumerate() {
            let base = head + i * item;
            assert_eq!(u32_at(base), fd.as_raw_fd() as u32);
            assert_eq!(u32_at(base + 4), 0);
            assert_eq!(u64_at(base + 8), *offset);
            assert_eq!(u64_at(base + 16), *size);
        }
    }

    #[test]
    fn ioctls_on_a_file_that_is_no_dmabuf_fail_cleanly() {
        let null = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(
            dma_buf_sync(null.as_fd(), DMA_BUF_SYNC_START),
            Err(Errno::NOTTY)
        );
        assert_eq!(
            dma_buf_set_name(null.as_fd(), c"x").unwrap_err(),
            Errno::NOTTY
        );
        assert_eq!(
            dma_heap_alloc(null.as_fd(), 4096, OFlags::RDWR, 0).unwrap_err(),
            Errno::NOTTY
        );
    }
}
