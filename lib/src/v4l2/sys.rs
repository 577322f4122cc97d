//! Kernel ABI: the `<linux/videodev2.h>` structures and ioctl numbers the capture path uses,
//! declared by hand (64-bit layout), each checked against the size the kernel's header gives,
//! and one safe function per ioctl — the only place [`crate::v4l2`] makes an ioctl.
//!
//! Why the functions can be safe: each opcode encodes its argument's size and direction, the
//! argument is a `#[repr(C)]` mirror of exactly that size that lives across the call, and the
//! two structures with pointers inside a union (`v4l2_buffer.m` for `V4L2_MEMORY_USERPTR` and
//! multi-planar types, `v4l2_format.fmt` for overlay types) are refused with EINVAL before the
//! kernel sees them unless they are of the single-planar capture kind this module declares and
//! memory the kernel does not reach through a user pointer. Every call is retried on EINTR
//! ([`crate::sys::retry_on_intr`]); none on EAGAIN, which a non-blocking `VIDIOC_DQBUF` uses to
//! say "no frame yet".

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};

use rustix::fs::OFlags;
use rustix::io::{Errno, Result};
use rustix::ioctl::{Getter, Opcode, Setter, Updater, ioctl, opcode};

use crate::sys::retry_on_intr;

/// `V4L2_BUF_TYPE_VIDEO_CAPTURE`.
pub(crate) const BUF_TYPE_VIDEO_CAPTURE: u32 = 1;

/// `V4L2_MEMORY_MMAP`.
pub(crate) const MEMORY_MMAP: u32 = 1;
/// `V4L2_MEMORY_DMABUF`.
pub(crate) const MEMORY_DMABUF: u32 = 4;

/// `V4L2_FIELD_NONE`: progressive frames.
pub(crate) const FIELD_NONE: u32 = 1;

/// `V4L2_CAP_VIDEO_CAPTURE`.
pub(crate) const CAP_VIDEO_CAPTURE: u32 = 0x0000_0001;
/// `V4L2_CAP_VIDEO_OUTPUT`.
pub(crate) const CAP_VIDEO_OUTPUT: u32 = 0x0000_0002;
/// `V4L2_CAP_VIDEO_CAPTURE_MPLANE`.
pub(crate) const CAP_VIDEO_CAPTURE_MPLANE: u32 = 0x0000_1000;
/// `V4L2_CAP_VIDEO_M2M` and `V4L2_CAP_VIDEO_M2M_MPLANE`.
pub(crate) const CAP_VIDEO_M2M_ANY: u32 = 0x0000_8000 | 0x0000_4000;
/// `V4L2_CAP_STREAMING`.
pub(crate) const CAP_STREAMING: u32 = 0x0400_0000;
/// `V4L2_CAP_DEVICE_CAPS`: `device_caps` describes this node (`capabilities` the whole device).
pub(crate) const CAP_DEVICE_CAPS: u32 = 0x8000_0000;

/// `V4L2_BUF_FLAG_ERROR`: the frame was captured with an error (the data may be corrupt).
pub(crate) const BUF_FLAG_ERROR: u32 = 0x0000_0040;

/// `struct v4l2_capability`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Capability {
    pub driver: [u8; 16],
    pub card: [u8; 32],
    pub bus_info: [u8; 32],
    pub version: u32,
    pub capabilities: u32,
    pub device_caps: u32,
    pub reserved: [u32; 3],
}

/// `struct v4l2_fmtdesc`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FmtDesc {
    pub index: u32,
    pub type_: u32,
    pub flags: u32,
    pub description: [u8; 32],
    pub pixelformat: u32,
    pub mbus_code: u32,
    pub reserved: [u32; 3],
}

/// `struct v4l2_pix_format`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PixFormat {
    pub width: u32,
    pub height: u32,
    pub pixelformat: u32,
    pub field: u32,
    pub bytesperline: u32,
    pub sizeimage: u32,
    pub colorspace: u32,
    pub priv_: u32,
    pub flags: u32,
    pub enc: u32,
    pub quantization: u32,
    pub xfer_func: u32,
}

const FORMAT_UNION: usize = 200;

/// `struct v4l2_format`: the type, then a 200-byte union that is 8-byte aligned (one of its
/// members holds a pointer); only `pix` is used here.
#[repr(C, align(8))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Format {
    pub type_: u32,
    pub _pad: u32,
    pub pix: PixFormat,
    pub _rest: [u8; FORMAT_UNION - size_of::<PixFormat>()],
}

impl Format {
    pub(crate) fn capture(pix: PixFormat) -> Self {
        Self {
            type_: BUF_TYPE_VIDEO_CAPTURE,
            _pad: 0,
            pix,
            _rest: [0; FORMAT_UNION - size_of::<PixFormat>()],
        }
    }
}

/// `struct v4l2_requestbuffers`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RequestBuffers {
    pub count: u32,
    pub type_: u32,
    pub memory: u32,
    pub capabilities: u32,
    pub flags: u8,
    pub reserved: [u8; 3],
}

/// `struct v4l2_buffer` on 64-bit targets.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Buffer {
    pub index: u32,
    pub type_: u32,
    pub bytesused: u32,
    pub flags: u32,
    pub field: u32,
    pub _pad: u32,
    /// `struct timeval`: seconds, microseconds.
    pub timestamp: [i64; 2],
    pub timecode: [u32; 4],
    pub sequence: u32,
    pub memory: u32,
    /// `union { __u32 offset; unsigned long userptr; struct v4l2_plane *planes; __s32 fd; } m`.
    /// Every member starts at the union's first byte, so `m[0]` is `offset` or `fd` whatever the
    /// byte order.
    pub m: [u32; 2],
    pub length: u32,
    pub reserved2: u32,
    pub request_fd: i32,
    pub _pad2: u32,
}

/// `struct v4l2_exportbuffer`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ExportBuffer {
    pub type_: u32,
    pub index: u32,
    pub plane: u32,
    pub flags: u32,
    pub fd: i32,
    pub reserved: [u32; 11],
}

// The sizes `<linux/videodev2.h>` gives on x86-64 and aarch64 (measured with the C header).
const _: () = assert!(size_of::<Capability>() == 104);
const _: () = assert!(size_of::<FmtDesc>() == 64);
const _: () = assert!(size_of::<PixFormat>() == 48);
const _: () = assert!(size_of::<Format>() == 208);
const _: () = assert!(size_of::<RequestBuffers>() == 20);
const _: () = assert!(size_of::<Buffer>() == 88);
const _: () = assert!(std::mem::offset_of!(Buffer, timestamp) == 24);
const _: () = assert!(std::mem::offset_of!(Buffer, sequence) == 56);
const _: () = assert!(std::mem::offset_of!(Buffer, m) == 64);
const _: () = assert!(std::mem::offset_of!(Buffer, length) == 72);
const _: () = assert!(size_of::<ExportBuffer>() == 64);

/// `VIDIOC_QUERYCAP`: `_IOR('V', 0, struct v4l2_capability)`.
pub(crate) const VIDIOC_QUERYCAP: Opcode = opcode::read::<Capability>(b'V', 0);
/// `VIDIOC_ENUM_FMT`: `_IOWR('V', 2, struct v4l2_fmtdesc)`.
pub(crate) const VIDIOC_ENUM_FMT: Opcode = opcode::read_write::<FmtDesc>(b'V', 2);
/// `VIDIOC_G_FMT`: `_IOWR('V', 4, struct v4l2_format)`.
pub(crate) const VIDIOC_G_FMT: Opcode = opcode::read_write::<Format>(b'V', 4);
/// `VIDIOC_S_FMT`: `_IOWR('V', 5, struct v4l2_format)`.
pub(crate) const VIDIOC_S_FMT: Opcode = opcode::read_write::<Format>(b'V', 5);
/// `VIDIOC_REQBUFS`: `_IOWR('V', 8, struct v4l2_requestbuffers)`.
pub(crate) const VIDIOC_REQBUFS: Opcode = opcode::read_write::<RequestBuffers>(b'V', 8);
/// `VIDIOC_QBUF`: `_IOWR('V', 15, struct v4l2_buffer)`.
pub(crate) const VIDIOC_QBUF: Opcode = opcode::read_write::<Buffer>(b'V', 15);
/// `VIDIOC_EXPBUF`: `_IOWR('V', 16, struct v4l2_exportbuffer)`.
pub(crate) const VIDIOC_EXPBUF: Opcode = opcode::read_write::<ExportBuffer>(b'V', 16);
/// `VIDIOC_DQBUF`: `_IOWR('V', 17, struct v4l2_buffer)`.
pub(crate) const VIDIOC_DQBUF: Opcode = opcode::read_write::<Buffer>(b'V', 17);
/// `VIDIOC_STREAMON`: `_IOW('V', 18, int)`.
pub(crate) const VIDIOC_STREAMON: Opcode = opcode::write::<i32>(b'V', 18);
/// `VIDIOC_STREAMOFF`: `_IOW('V', 19, int)`.
pub(crate) const VIDIOC_STREAMOFF: Opcode = opcode::write::<i32>(b'V', 19);

/// `VIDIOC_QUERYCAP`: what the node is and can do.
pub(crate) fn querycap(fd: BorrowedFd<'_>) -> Result<Capability> {
    retry_on_intr(|| {
        // SAFETY: VIDIOC_QUERYCAP writes one `struct v4l2_capability`, mirrored by `Capability`
        // (size checked at compile time); the Getter owns the output buffer.
        unsafe { ioctl(fd, Getter::<{ VIDIOC_QUERYCAP }, Capability>::new()) }
    })
}

/// `VIDIOC_ENUM_FMT`: the `index`th pixel format of buffer type `type_`; EINVAL past the last.
pub(crate) fn enum_fmt(fd: BorrowedFd<'_>, type_: u32, index: u32) -> Result<FmtDesc> {
    let mut desc = FmtDesc {
        index,
        type_,
        ..Default::default()
    };
    retry_on_intr(|| {
        // SAFETY: VIDIOC_ENUM_FMT reads and writes one `struct v4l2_fmtdesc`, mirrored by
        // `FmtDesc` (no pointers); `desc` lives across the call.
        unsafe { ioctl(fd, Updater::<{ VIDIOC_ENUM_FMT }, _>::new(&mut desc)) }
    })?;
    Ok(desc)
}

/// Refuses a `v4l2_format` whose union is not the single-planar `pix` (the overlay member holds
/// pointers the kernel would follow).
fn check_format(fmt: &Format) -> Result<()> {
    if fmt.type_ == BUF_TYPE_VIDEO_CAPTURE {
        Ok(())
    } else {
        Err(Errno::INVAL)
    }
}

/// `VIDIOC_G_FMT`: the current format of `fmt.type_` (single-planar capture only, else EINVAL).
pub(crate) fn g_fmt(fd: BorrowedFd<'_>, fmt: &mut Format) -> Result<()> {
    check_format(fmt)?;
    retry_on_intr(|| {
        // SAFETY: VIDIOC_G_FMT reads the type and writes one `struct v4l2_format`, mirrored by
        // `Format` (208 bytes, checked at compile time); the type is single-planar capture, whose
        // union member `pix` has no pointers; `fmt` lives across the call.
        unsafe { ioctl(fd, Updater::<{ VIDIOC_G_FMT }, _>::new(&mut *fmt)) }
    })
}

/// `VIDIOC_S_FMT`: asks for `fmt` and leaves what the driver chose in it (single-planar capture
/// only, else EINVAL).
pub(crate) fn s_fmt(fd: BorrowedFd<'_>, fmt: &mut Format) -> Result<()> {
    check_format(fmt)?;
    retry_on_intr(|| {
        // SAFETY: VIDIOC_S_FMT reads and writes one `struct v4l2_format`, mirrored by `Format`;
        // single-planar capture, so no pointers in the union; `fmt` lives across the call.
        unsafe { ioctl(fd, Updater::<{ VIDIOC_S_FMT }, _>::new(&mut *fmt)) }
    })
}

/// `VIDIOC_REQBUFS`: allocates (or with `count` 0 frees) the queue's buffers; the driver writes
/// the count it gave.
pub(crate) fn reqbufs(fd: BorrowedFd<'_>, req: &mut RequestBuffers) -> Result<()> {
    retry_on_intr(|| {
        // SAFETY: VIDIOC_REQBUFS reads and writes one `struct v4l2_requestbuffers`, mirrored by
        // `RequestBuffers` (no pointers); `req` lives across the call.
        unsafe { ioctl(fd, Updater::<{ VIDIOC_REQBUFS }, _>::new(&mut *req)) }
    })
}

/// Refuses a `v4l2_buffer` the kernel would read or write through a pointer: multi-planar types
/// (`m.planes`) and `V4L2_MEMORY_USERPTR` (`m.userptr`: the device would write into memory Rust
/// owns). Single-planar capture with `MMAP` or `DMABUF` memory carries an offset or an fd.
fn check_buffer(b: &Buffer) -> Result<()> {
    if b.type_ == BUF_TYPE_VIDEO_CAPTURE && (b.memory == MEMORY_MMAP || b.memory == MEMORY_DMABUF) {
        Ok(())
    } else {
        Err(Errno::INVAL)
    }
}

/// `VIDIOC_QBUF`: gives buffer `b.index` to the driver (for `DMABUF` memory, `b.m[0]` is the
/// dma-buf fd, which the kernel takes its own reference to). EINVAL for the kinds
/// [`check_buffer`] refuses.
pub(crate) fn qbuf(fd: BorrowedFd<'_>, b: &mut Buffer) -> Result<()> {
    check_buffer(b)?;
    retry_on_intr(|| {
        // SAFETY: VIDIOC_QBUF reads and writes one `struct v4l2_buffer`, mirrored by `Buffer`
        // (88 bytes, checked at compile time); `check_buffer` ensured its union holds an offset
        // or an fd, not a pointer; `b` lives across the call.
        unsafe { ioctl(fd, Updater::<{ VIDIOC_QBUF }, _>::new(&mut *b)) }
    })
}

/// `VIDIOC_DQBUF`: takes a filled buffer; EAGAIN (not retried) when the node is non-blocking and
/// none is ready. EINVAL for the kinds [`check_buffer`] refuses.
pub(crate) fn dqbuf(fd: BorrowedFd<'_>, b: &mut Buffer) -> Result<()> {
    check_buffer(b)?;
    retry_on_intr(|| {
        // SAFETY: VIDIOC_DQBUF reads and writes one `struct v4l2_buffer`, mirrored by `Buffer`;
        // `check_buffer` ensured the kernel writes an offset or an fd number into its union, not
        // through a pointer; `b` lives across the call.
        unsafe { ioctl(fd, Updater::<{ VIDIOC_DQBUF }, _>::new(&mut *b)) }
    })
}

/// `VIDIOC_EXPBUF`: plane `plane` of the driver's buffer `index` (of type `type_`) as a new
/// dma-buf fd opened with `flags` (`O_RDWR`, `O_CLOEXEC`).
pub(crate) fn expbuf(
    fd: BorrowedFd<'_>,
    type_: u32,
    index: u32,
    plane: u32,
    flags: OFlags,
) -> Result<OwnedFd> {
    let mut exp = ExportBuffer {
        type_,
        index,
        plane,
        flags: flags.bits(),
        fd: -1,
        ..Default::default()
    };
    retry_on_intr(|| {
        // SAFETY: VIDIOC_EXPBUF reads and writes one `struct v4l2_exportbuffer`, mirrored by
        // `ExportBuffer` (no pointers; size checked at compile time); `exp` lives across the
        // call.
        unsafe { ioctl(fd, Updater::<{ VIDIOC_EXPBUF }, _>::new(&mut exp)) }
    })?;
    // SAFETY: on success the kernel installed a new dma-buf fd in `exp.fd` that nothing else
    // owns; ownership is taken exactly once, here.
    Ok(unsafe { OwnedFd::from_raw_fd(exp.fd) })
}

/// `VIDIOC_STREAMON` for buffer type `type_`.
pub(crate) fn streamon(fd: BorrowedFd<'_>, type_: u32) -> Result<()> {
    retry_on_intr(|| {
        // SAFETY: VIDIOC_STREAMON reads one int, the buffer type, which the Setter owns.
        unsafe { ioctl(fd, Setter::<{ VIDIOC_STREAMON }, i32>::new(type_ as i32)) }
    })
}

/// `VIDIOC_STREAMOFF` for buffer type `type_`: stops streaming and takes every buffer back.
pub(crate) fn streamoff(fd: BorrowedFd<'_>, type_: u32) -> Result<()> {
    retry_on_intr(|| {
        // SAFETY: VIDIOC_STREAMOFF reads one int, the buffer type, which the Setter owns.
        unsafe { ioctl(fd, Setter::<{ VIDIOC_STREAMOFF }, i32>::new(type_ as i32)) }
    })
}

/// Compile-time checks against linux-raw-sys (`ioctl` feature): it has every `VIDIOC_*` number
/// used here, per architecture, but none of the videodev2 structures or `V4L2_*` constants, so a
/// structure's size is checked against the size its ioctl number encodes (`_IOC_SIZE`, which is
/// the kernel's `sizeof`). The `V4L2_*` constants above are checked by nothing but this file.
mod abi_checks {
    use linux_raw_sys::ioctl as k;

    use super::*;
    use crate::sys::ioc_size;

    /// An ioctl number as linux-raw-sys spells it (`u32`), whatever `Opcode` is on this backend.
    const fn op(o: Opcode) -> u64 {
        o as u64
    }

    const _: () = assert!(op(VIDIOC_QUERYCAP) == k::VIDIOC_QUERYCAP as u64);
    const _: () = assert!(op(VIDIOC_ENUM_FMT) == k::VIDIOC_ENUM_FMT as u64);
    const _: () = assert!(op(VIDIOC_G_FMT) == k::VIDIOC_G_FMT as u64);
    const _: () = assert!(op(VIDIOC_S_FMT) == k::VIDIOC_S_FMT as u64);
    const _: () = assert!(op(VIDIOC_REQBUFS) == k::VIDIOC_REQBUFS as u64);
    const _: () = assert!(op(VIDIOC_QBUF) == k::VIDIOC_QBUF as u64);
    const _: () = assert!(op(VIDIOC_EXPBUF) == k::VIDIOC_EXPBUF as u64);
    const _: () = assert!(op(VIDIOC_DQBUF) == k::VIDIOC_DQBUF as u64);
    const _: () = assert!(op(VIDIOC_STREAMON) == k::VIDIOC_STREAMON as u64);
    const _: () = assert!(op(VIDIOC_STREAMOFF) == k::VIDIOC_STREAMOFF as u64);

    const _: () = assert!(size_of::<Capability>() == ioc_size(k::VIDIOC_QUERYCAP));
    const _: () = assert!(size_of::<FmtDesc>() == ioc_size(k::VIDIOC_ENUM_FMT));
    const _: () = assert!(size_of::<Format>() == ioc_size(k::VIDIOC_G_FMT));
    const _: () = assert!(size_of::<Format>() == ioc_size(k::VIDIOC_S_FMT));
    const _: () = assert!(size_of::<RequestBuffers>() == ioc_size(k::VIDIOC_REQBUFS));
    const _: () = assert!(size_of::<Buffer>() == ioc_size(k::VIDIOC_QBUF));
    const _: () = assert!(size_of::<Buffer>() == ioc_size(k::VIDIOC_DQBUF));
    const _: () = assert!(size_of::<ExportBuffer>() == ioc_size(k::VIDIOC_EXPBUF));
    const _: () = assert!(size_of::<i32>() == ioc_size(k::VIDIOC_STREAMON));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcodes_match_the_kernel_header() {
        // Printed by a C program including <linux/videodev2.h> on x86-64.
        assert_eq!(VIDIOC_QUERYCAP, 0x8068_5600);
        assert_eq!(VIDIOC_ENUM_FMT, 0xc040_5602);
        assert_eq!(VIDIOC_G_FMT, 0xc0d0_5604);
        assert_eq!(VIDIOC_S_FMT, 0xc0d0_5605);
        assert_eq!(VIDIOC_REQBUFS, 0xc014_5608);
        assert_eq!(VIDIOC_QBUF, 0xc058_560f);
        assert_eq!(VIDIOC_EXPBUF, 0xc040_5610);
        assert_eq!(VIDIOC_DQBUF, 0xc058_5611);
        assert_eq!(VIDIOC_STREAMON, 0x4004_5612);
        assert_eq!(VIDIOC_STREAMOFF, 0x4004_5613);
    }

    #[test]
    fn buffers_the_kernel_would_reach_through_a_pointer_are_refused() {
        let null = std::fs::File::open("/dev/null").unwrap();
        let fd = std::os::fd::AsFd::as_fd(&null);
        let mut b = Buffer {
            type_: BUF_TYPE_VIDEO_CAPTURE,
            memory: 2, // V4L2_MEMORY_USERPTR
            ..Default::default()
        };
        assert_eq!(qbuf(fd, &mut b), Err(Errno::INVAL));
        assert_eq!(dqbuf(fd, &mut b), Err(Errno::INVAL));
        b.memory = MEMORY_DMABUF;
        b.type_ = 9; // V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE
        assert_eq!(qbuf(fd, &mut b), Err(Errno::INVAL));
        // The accepted kinds reach the kernel: /dev/null says ENOTTY.
        b.type_ = BUF_TYPE_VIDEO_CAPTURE;
        assert_eq!(qbuf(fd, &mut b), Err(Errno::NOTTY));
        let mut fmt = Format::capture(PixFormat::default());
        fmt.type_ = 3; // V4L2_BUF_TYPE_VIDEO_OVERLAY: a pointer to clips in the union
        assert_eq!(s_fmt(fd, &mut fmt), Err(Errno::INVAL));
        assert_eq!(g_fmt(fd, &mut fmt), Err(Errno::INVAL));
        fmt.type_ = BUF_TYPE_VIDEO_CAPTURE;
        assert_eq!(g_fmt(fd, &mut fmt), Err(Errno::NOTTY));
        assert_eq!(querycap(fd).unwrap_err(), Errno::NOTTY);
    }
}
