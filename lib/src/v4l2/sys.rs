//! Kernel ABI: the `<linux/videodev2.h>` structures and ioctl numbers the capture path uses,
//! declared by hand (64-bit layout), each checked against the size the kernel's header gives.

use rustix::ioctl::{Opcode, opcode};

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
}
