//! In-guest: a camera that needs contiguous memory (vivid with allocators=1, dma-contig) captures
//! into buffers the policy took from the CMA heap, and refuses system-heap buffers — while the
//! ordinary vivid instance takes either.
//!
//! The V4L2 structures are declared here by hand (only what the test uses); the client-demo's
//! camera code is where a full V4L2 binding belongs.

use std::fs::File;
use std::os::fd::AsRawFd;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;
use rustix::ioctl::{Opcode, Setter, Updater, ioctl, opcode};
use wayheap::dmabuf::DmaBuf;
use wayheap::heap::HeapDir;
use wayheap::policy::{Allocator, Constraints, Policy};
use wayheap_tests::guest::{record_fact, require_guest};

const BUF_TYPE_VIDEO_CAPTURE: u32 = 1;
const MEMORY_DMABUF: u32 = 4;
const PIX_FMT_YUYV: u32 = u32::from_le_bytes(*b"YUYV");

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PixFormat {
    width: u32,
    height: u32,
    pixelformat: u32,
    field: u32,
    bytesperline: u32,
    sizeimage: u32,
    colorspace: u32,
    priv_: u32,
    flags: u32,
    enc: u32,
    quantization: u32,
    xfer_func: u32,
}

/// `struct v4l2_format`: the union is 8-byte aligned (it holds pointers) and 200 bytes long.
#[repr(C)]
struct Format {
    type_: u32,
    _pad: u32,
    pix: PixFormat,
    _rest: [u8; 200 - std::mem::size_of::<PixFormat>()],
}

#[repr(C)]
#[derive(Default)]
struct RequestBuffers {
    count: u32,
    type_: u32,
    memory: u32,
    capabilities: u32,
    flags: u8,
    reserved: [u8; 3],
}

/// `struct v4l2_buffer` on 64-bit.
#[repr(C)]
#[derive(Default)]
struct Buffer {
    index: u32,
    type_: u32,
    bytesused: u32,
    flags: u32,
    field: u32,
    _pad: u32,
    timestamp: [i64; 2],
    timecode: [u32; 4],
    sequence: u32,
    memory: u32,
    m: u64, // union { offset; userptr; planes; fd }
    length: u32,
    reserved2: u32,
    request_fd: u32,
    _pad2: u32,
}

const VIDIOC_S_FMT: Opcode = opcode::read_write::<Format>(b'V', 5);
const VIDIOC_REQBUFS: Opcode = opcode::read_write::<RequestBuffers>(b'V', 8);
const VIDIOC_QBUF: Opcode = opcode::read_write::<Buffer>(b'V', 15);
const VIDIOC_DQBUF: Opcode = opcode::read_write::<Buffer>(b'V', 17);
const VIDIOC_STREAMON: Opcode = opcode::write::<i32>(b'V', 18);
const VIDIOC_STREAMOFF: Opcode = opcode::write::<i32>(b'V', 19);

fn open_capture(name: &str) -> File {
    let node = wayheap_tests::guest::video_node(name);
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&node)
        .unwrap_or_else(|e| panic!("{node}: {e}"))
}

/// Sets 640x360 YUYV and returns the image size the driver wants.
fn set_format(dev: &File) -> u32 {
    let mut fmt = Format {
        type_: BUF_TYPE_VIDEO_CAPTURE,
        _pad: 0,
        pix: PixFormat {
            width: 640,
            height: 360,
            pixelformat: PIX_FMT_YUYV,
            ..Default::default()
        },
        _rest: [0; 200 - std::mem::size_of::<PixFormat>()],
    };
    // SAFETY: VIDIOC_S_FMT reads and writes one `struct v4l2_format`, mirrored by `Format`.
    unsafe { ioctl(dev, Updater::<{ VIDIOC_S_FMT }, _>::new(&mut fmt)) }.unwrap();
    assert_eq!(fmt.pix.pixelformat, PIX_FMT_YUYV);
    fmt.pix.sizeimage
}

fn request_dmabuf(dev: &File, count: u32) {
    let mut req = RequestBuffers {
        count,
        type_: BUF_TYPE_VIDEO_CAPTURE,
        memory: MEMORY_DMABUF,
        ..Default::default()
    };
    // SAFETY: VIDIOC_REQBUFS reads and writes one `struct v4l2_requestbuffers`.
    unsafe { ioctl(dev, Updater::<{ VIDIOC_REQBUFS }, _>::new(&mut req)) }.unwrap();
    assert_eq!(req.count, count);
}

fn queue(dev: &File, index: u32, buf: &DmaBuf) -> Result<(), Errno> {
    let mut b = Buffer {
        index,
        type_: BUF_TYPE_VIDEO_CAPTURE,
        memory: MEMORY_DMABUF,
        m: buf.fd().as_raw_fd() as u32 as u64,
        length: buf.size() as u32,
        ..Default::default()
    };
    // SAFETY: VIDIOC_QBUF reads and writes one `struct v4l2_buffer`, mirrored by `Buffer`.
    unsafe { ioctl(dev, Updater::<{ VIDIOC_QBUF }, _>::new(&mut b)) }
}

fn stream(dev: &File, on: bool) -> Result<(), Errno> {
    let t = BUF_TYPE_VIDEO_CAPTURE as i32;
    // SAFETY: STREAMON/STREAMOFF read one int, the buffer type.
    unsafe {
        if on {
            ioctl(dev, Setter::<{ VIDIOC_STREAMON }, i32>::new(t))
        } else {
            ioctl(dev, Setter::<{ VIDIOC_STREAMOFF }, i32>::new(t))
        }
    }
}

/// Waits (at most 20 s under TCG) for a filled buffer and dequeues it: (index, bytesused).
fn dequeue(dev: &File) -> (u32, u32) {
    let ts = rustix::time::Timespec {
        tv_sec: 20,
        tv_nsec: 0,
    };
    let mut fds = [PollFd::new(dev, PollFlags::IN)];
    assert_eq!(
        poll(&mut fds, Some(&ts)).unwrap(),
        1,
        "no frame within 20 s"
    );
    let mut b = Buffer {
        type_: BUF_TYPE_VIDEO_CAPTURE,
        memory: MEMORY_DMABUF,
        ..Default::default()
    };
    // SAFETY: VIDIOC_DQBUF reads and writes one `struct v4l2_buffer`.
    unsafe { ioctl(dev, Updater::<{ VIDIOC_DQBUF }, _>::new(&mut b)) }.unwrap();
    (b.index, b.bytesused)
}

/// Queues `bufs`, streams, and returns the first frame's buffer index and bytes, or the errno of
/// the first step the driver refused.
fn capture_one(dev: &File, bufs: &[DmaBuf]) -> Result<(u32, u32), (&'static str, Errno)> {
    request_dmabuf(dev, bufs.len() as u32);
    for (i, b) in bufs.iter().enumerate() {
        queue(dev, i as u32, b).map_err(|e| ("VIDIOC_QBUF", e))?;
    }
    stream(dev, true).map_err(|e| ("VIDIOC_STREAMON", e))?;
    let frame = dequeue(dev);
    stream(dev, false).unwrap();
    Ok(frame)
}

#[test]
fn a_contiguous_camera_captures_into_cma_buffers_chosen_by_policy() {
    require_guest();
    let dev = open_capture("vivid-001-vid-cap"); // allocators=1: dma-contig
    let size = set_format(&dev) as usize;
    let alloc = Allocator::new(Policy::default(), HeapDir::default());
    let contiguous = Constraints {
        contiguous: true,
        ..Default::default()
    };
    let allocations: Vec<_> = (0..2)
        .map(|_| alloc.allocate("camera", size, &contiguous).unwrap())
        .collect();
    assert!(
        allocations
            .iter()
            .all(|a| a.provider == wayheap_tests::guest::cma_heap_name())
    );
    let bufs: Vec<DmaBuf> = allocations.into_iter().map(|a| a.buffer).collect();

    let (index, used) =
        capture_one(&dev, &bufs).expect("vivid (dma-contig) captures into CMA buffers");
    assert_eq!(used as usize, size);
    let map = bufs[index as usize].map().unwrap();
    let frame = map.read().unwrap();
    assert!(
        frame[..size].iter().any(|b| *b != 0),
        "vivid wrote its test pattern into the CMA buffer"
    );
    record_fact(
        "vivid allocators=1",
        format!("captured a {size}-byte YUYV frame into a CMA heap buffer"),
    );
}

#[test]
fn a_contiguous_camera_refuses_system_heap_buffers() {
    require_guest();
    let dev = open_capture("vivid-001-vid-cap");
    let size = set_format(&dev) as usize;
    let heap = HeapDir::default().open("system").unwrap();
    let bufs: Vec<DmaBuf> = (0..2).map(|_| heap.allocate(size).unwrap()).collect();
    let err = capture_one(&dev, &bufs).expect_err("dma-contig cannot use scattered pages");
    record_fact(
        "vivid allocators=1 with system heap",
        format!("{} failed: {}", err.0, err.1),
    );
}

#[test]
fn an_ordinary_camera_captures_into_system_heap_buffers() {
    require_guest();
    let dev = open_capture("vivid-000-vid-cap"); // allocators=0: vmalloc, takes any dma-buf
    let size = set_format(&dev) as usize;
    let heap = HeapDir::default().open("system").unwrap();
    let bufs: Vec<DmaBuf> = (0..2).map(|_| heap.allocate(size).unwrap()).collect();
    let (_, used) =
        capture_one(&dev, &bufs).expect("vivid (vmalloc) captures into system-heap buffers");
    assert_eq!(used as usize, size);
}
