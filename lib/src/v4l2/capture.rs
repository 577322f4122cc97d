//! A streaming session: N dma-bufs, frames out by index, buffers back when the caller is done.

use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::fs::OFlags;
use rustix::io::Errno;

use super::{Camera, CameraError, CaptureFormat, errno_name, sys};
use crate::dmabuf::{DmaBuf, Origin};
use crate::policy::{Allocation, Allocator, Constraints};

/// The usage [`Capture::allocate`] asks the policy for.
pub const CAMERA_USAGE: &str = "camera";

/// Who owns the buffers' memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Memory {
    /// Ours, imported (`V4L2_MEMORY_DMABUF`).
    Dmabuf,
    /// The driver's, exported (`V4L2_MEMORY_MMAP` + `VIDIOC_EXPBUF`).
    Mmap,
}

impl Memory {
    fn raw(self) -> u32 {
        match self {
            Memory::Dmabuf => sys::MEMORY_DMABUF,
            Memory::Mmap => sys::MEMORY_MMAP,
        }
    }
}

/// One captured frame: which buffer holds it, and what the driver says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// The buffer ([`Capture::buffer`]); it stays with the caller until [`Capture::queue`].
    pub index: usize,
    /// Bytes of the buffer the frame fills.
    pub bytesused: u32,
    /// The driver's frame counter: a gap means frames were dropped.
    pub sequence: u32,
    /// When the frame was captured (`CLOCK_MONOTONIC` for almost every driver).
    pub timestamp: Duration,
    /// The driver flagged the frame as damaged (`V4L2_BUF_FLAG_ERROR`): show it or drop it.
    pub error: bool,
}

/// A streaming capture into dma-bufs. Dropping it stops streaming and frees the driver's side
/// (`VIDIOC_STREAMOFF`, `VIDIOC_REQBUFS` 0); then the camera's format can change again.
#[derive(Debug)]
pub struct Capture {
    /// A second handle on the caller's open file (V4L2 buffers belong to the open file).
    camera: Camera,
    memory: Memory,
    buffers: Vec<DmaBuf>,
    queued: Vec<bool>,
    /// REQBUFS succeeded: Drop must undo it.
    requested: bool,
    provider: String,
    fallback_reason: Option<String>,
}

fn provider_of(buf: &DmaBuf) -> String {
    match buf.origin() {
        Origin::Heap(name) | Origin::Foreign(name) => name.clone(),
        Origin::Udmabuf => "udmabuf".to_owned(),
        Origin::Ion(name) => format!("{}{name}", crate::ion::ION_PREFIX),
    }
}

impl Capture {
    fn new(camera: &Camera, memory: Memory) -> Result<Capture, CameraError> {
        Ok(Capture {
            camera: camera.try_clone()?,
            memory,
            buffers: Vec::new(),
            queued: Vec::new(),
            requested: false,
            provider: String::new(),
            fallback_reason: None,
        })
    }

    /// Streams into `buffers`: `VIDIOC_REQBUFS` (`V4L2_MEMORY_DMABUF`, one per buffer), every
    /// buffer queued (`VIDIOC_QBUF` with its fd and size), `VIDIOC_STREAMON`.
    ///
    /// Each buffer must hold one frame of the camera's current format. A device that needs
    /// contiguous memory refuses scattered buffers with [`CameraError::BufferRefused`] (EFAULT).
    pub fn with_dmabufs(camera: &Camera, buffers: Vec<DmaBuf>) -> Result<Capture, CameraError> {
        let needed = camera.format()?.sizeimage as usize;
        if let Some((index, b)) = buffers.iter().enumerate().find(|(_, b)| b.size() < needed) {
            return Err(CameraError::BufferTooSmall {
                index,
                size: b.size(),
                needed,
            });
        }
        let mut c = Capture::new(camera, Memory::Dmabuf)?;
        c.provider = buffers.first().map(provider_of).unwrap_or_default();
        c.queued = vec![false; buffers.len()];
        c.buffers = buffers;
        c.request(c.buffers.len())?;
        c.start()?;
        Ok(c)
    }

    /// Allocates `count` buffers of `format.sizeimage` bytes for the `camera` usage of
    /// `allocator`'s policy and streams into them ([`Capture::with_dmabufs`]).
    ///
    /// When the device refuses them at `VIDIOC_QBUF` with EFAULT (vb2 dma-contig given
    /// scattered pages; EINVAL means other things, such as a buffer too short) and they were not
    /// physically contiguous, they are freed and allocated again with
    /// `Constraints { contiguous: true, .. }`; when the driver imports no dma-bufs at all, its own
    /// buffers are exported instead ([`Capture::exported`]). Either way
    /// [`Capture::fallback_reason`] says why.
    ///
    /// A driver that wants more buffers than `count` (vb2's minimum) gets as many as it asks.
    pub fn allocate(
        camera: &Camera,
        allocator: &Allocator,
        count: usize,
        format: &CaptureFormat,
    ) -> Result<Capture, CameraError> {
        match Self::allocate_count(camera, allocator, count, format) {
            Err(CameraError::BufferCount { asked, got }) if got > asked => {
                tracing::info!(asked, got, "the driver wants more capture buffers");
                Self::allocate_count(camera, allocator, got, format)
            }
            other => other,
        }
    }

    fn allocate_count(
        camera: &Camera,
        allocator: &Allocator,
        count: usize,
        format: &CaptureFormat,
    ) -> Result<Capture, CameraError> {
        let size = format.sizeimage as usize;
        let first = allocate_n(allocator, count, size, &Constraints::default())?;
        let contiguous = first
            .iter()
            .all(|a| allocator.policy().classify(&a.provider).1.contiguous);
        let buffers = first.into_iter().map(|a| a.buffer).collect();
        match Capture::with_dmabufs(camera, buffers) {
            Err(CameraError::BufferRefused {
                provider, errno, ..
            }) if !contiguous && errno == Errno::FAULT => {
                let reason = format!(
                    "the camera needs physically contiguous memory: QBUF of a {provider} buffer gave {}",
                    errno_name(errno)
                );
                tracing::info!(camera = %camera.path().display(), %reason, "reallocating capture buffers");
                let contiguous = Constraints {
                    contiguous: true,
                    ..Default::default()
                };
                let second =
                    allocate_n(allocator, count, size, &contiguous).map_err(|e| match e {
                        CameraError::Alloc(source) => CameraError::NeedsContiguous {
                            reason: reason.clone(),
                            source,
                        },
                        other => other,
                    })?;
                let mut c =
                    Capture::with_dmabufs(camera, second.into_iter().map(|a| a.buffer).collect())?;
                c.fallback_reason = Some(reason);
                Ok(c)
            }
            Err(CameraError::DmabufUnsupported { .. }) => {
                let reason = "the driver does not import dma-bufs (VIDIOC_REQBUFS with V4L2_MEMORY_DMABUF gave EINVAL): capturing into its own buffers, exported with VIDIOC_EXPBUF".to_owned();
                tracing::info!(camera = %camera.path().display(), %reason, "exporting capture buffers");
                let mut c = Capture::exported(camera, count)?;
                c.fallback_reason = Some(reason);
                Ok(c)
            }
            other => other,
        }
    }

    /// Streams into `count` buffers of the driver's own memory (`V4L2_MEMORY_MMAP`), each exported
    /// as a dma-buf with `VIDIOC_EXPBUF` (the driver may give more or fewer than `count`).
    ///
    /// The dma-bufs are exported read-write (`O_RDWR | O_CLOEXEC`): a compositor only reads them,
    /// but [`DmaBuf::map`] maps read-write, and a read-only dma-buf file refuses such a mapping.
    pub fn exported(camera: &Camera, count: usize) -> Result<Capture, CameraError> {
        let mut c = Capture::new(camera, Memory::Mmap)?;
        let got = c.request(count)?;
        if got == 0 {
            return Err(CameraError::BufferCount { asked: count, got });
        }
        for index in 0..got {
            let fd = sys::expbuf(
                c.camera.fd.as_fd(),
                sys::BUF_TYPE_VIDEO_CAPTURE,
                index as u32,
                0,
                OFlags::RDWR | OFlags::CLOEXEC,
            )
            .map_err(|errno| c.camera.ioctl_error("VIDIOC_EXPBUF", errno))?;
            let buf = DmaBuf::import(fd).map_err(|source| CameraError::Export { index, source })?;
            c.buffers.push(buf);
        }
        c.queued = vec![false; got];
        c.provider = provider_of(&c.buffers[0]);
        c.start()?;
        Ok(c)
    }

    /// `VIDIOC_REQBUFS`: returns the count the driver gave; for dma-bufs it must be `count`.
    fn request(&mut self, count: usize) -> Result<usize, CameraError> {
        let mut req = sys::RequestBuffers {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            type_: sys::BUF_TYPE_VIDEO_CAPTURE,
            memory: self.memory.raw(),
            ..Default::default()
        };
        sys::reqbufs(self.camera.fd.as_fd(), &mut req).map_err(|errno| {
            match (errno, self.memory) {
                (Errno::INVAL, Memory::Dmabuf) => CameraError::DmabufUnsupported {
                    path: self.camera.path.clone(),
                },
                (errno, _) => self.camera.ioctl_error("VIDIOC_REQBUFS", errno),
            }
        })?;
        self.requested = true;
        let got = req.count as usize;
        if self.memory == Memory::Dmabuf && got != count {
            return Err(CameraError::BufferCount { asked: count, got });
        }
        Ok(got)
    }

    /// Queues every buffer and starts streaming.
    fn start(&mut self) -> Result<(), CameraError> {
        if self.buffers.is_empty() {
            return Err(CameraError::BufferCount { asked: 0, got: 0 });
        }
        for index in 0..self.buffers.len() {
            self.queue(index)?;
        }
        sys::streamon(self.camera.fd.as_fd(), sys::BUF_TYPE_VIDEO_CAPTURE)
            .map_err(|errno| self.camera.ioctl_error("VIDIOC_STREAMON", errno))
    }

    /// Gives buffer `index` back to the driver to fill (`VIDIOC_QBUF`): once the frame in it has
    /// been shown and the compositor released it.
    pub fn queue(&mut self, index: usize) -> Result<(), CameraError> {
        let count = self.buffers.len();
        if index >= count {
            return Err(CameraError::BadIndex { index, count });
        }
        if self.queued[index] {
            return Err(CameraError::AlreadyQueued { index });
        }
        let mut b = sys::Buffer {
            index: index as u32,
            type_: sys::BUF_TYPE_VIDEO_CAPTURE,
            memory: self.memory.raw(),
            ..Default::default()
        };
        if self.memory == Memory::Dmabuf {
            let buf = &self.buffers[index];
            b.m[0] = buf.fd().as_raw_fd() as u32;
            b.length = u32::try_from(buf.size()).unwrap_or(u32::MAX);
        }
        // The dma-buf fd in `b` stays open while we hold the buffer.
        sys::qbuf(self.camera.fd.as_fd(), &mut b).map_err(|errno| match errno {
            Errno::BUSY => self.camera.ioctl_error("VIDIOC_QBUF", errno),
            errno if self.memory == Memory::Dmabuf => CameraError::BufferRefused {
                path: self.camera.path.clone(),
                index,
                provider: provider_of(&self.buffers[index]),
                errno,
            },
            errno => self.camera.ioctl_error("VIDIOC_QBUF", errno),
        })?;
        self.queued[index] = true;
        Ok(())
    }

    /// Waits up to `timeout` for a filled buffer and takes it (`poll`, then `VIDIOC_DQBUF`). The
    /// buffer stays the caller's until [`Capture::queue`].
    pub fn dequeue(&mut self, timeout: Duration) -> Result<Frame, CameraError> {
        if !self.queued.iter().any(|q| *q) {
            return Err(CameraError::NothingQueued);
        }
        // None: longer than the clock counts (Duration::MAX), wait as long as it takes.
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let mut b = sys::Buffer {
                type_: sys::BUF_TYPE_VIDEO_CAPTURE,
                memory: self.memory.raw(),
                ..Default::default()
            };
            // The node is non-blocking: EAGAIN, not a wait.
            match sys::dqbuf(self.camera.fd.as_fd(), &mut b) {
                Ok(()) => return self.frame(&b),
                Err(Errno::AGAIN) => {}
                Err(errno) => return Err(self.camera.ioctl_error("VIDIOC_DQBUF", errno)),
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|left| left.is_zero()) {
                return Err(CameraError::Timeout {
                    path: self.camera.path.clone(),
                    waited: timeout,
                });
            }
            let ts = left.map(|left| rustix::time::Timespec {
                tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
                tv_nsec: i64::from(left.subsec_nanos()),
            });
            let mut fds = [PollFd::new(&self.camera.fd, PollFlags::IN)];
            match poll(&mut fds, ts.as_ref()) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(errno) => return Err(self.camera.ioctl_error("poll", errno)),
            }
            if fds[0].revents().intersects(PollFlags::ERR | PollFlags::HUP) {
                // vb2: not streaming, the driver flagged the queue as failed, or the device
                // went away (HUP).
                return Err(CameraError::Ioctl {
                    path: self.camera.path.clone(),
                    what: "poll (POLLERR: the queue stopped or the device failed)",
                    errno: Errno::IO,
                });
            }
        }
    }

    fn frame(&mut self, b: &sys::Buffer) -> Result<Frame, CameraError> {
        let index = b.index as usize;
        let count = self.buffers.len();
        if index >= count {
            return Err(CameraError::BadIndex { index, count });
        }
        self.queued[index] = false;
        let [sec, usec] = b.timestamp;
        Ok(Frame {
            index,
            bytesused: b.bytesused,
            sequence: b.sequence,
            timestamp: Duration::from_secs(sec.max(0) as u64)
                + Duration::from_micros(usec.clamp(0, 999_999) as u64),
            error: b.flags & sys::BUF_FLAG_ERROR != 0,
        })
    }

    /// Buffer `index`. Panics when out of range, like slice indexing ([`Frame::index`] never is).
    pub fn buffer(&self, index: usize) -> &DmaBuf {
        &self.buffers[index]
    }

    /// Every buffer, by index.
    pub fn buffers(&self) -> &[DmaBuf] {
        &self.buffers
    }

    /// Whether buffer `index` is with the driver (queued) rather than with the caller.
    pub fn is_queued(&self, index: usize) -> bool {
        self.queued.get(index).copied().unwrap_or(false)
    }

    /// Where the buffers came from: a heap's name, `udmabuf`, or for driver memory the exporter
    /// as the kernel names it (`videobuf2_vmalloc`, `videobuf2_dma_contig`...). If the policy's
    /// walk fell back midway, this is the first buffer's; [`DmaBuf::origin`] tells each.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Why the buffers are not what was asked first (contiguous after a refusal, or the driver's
    /// own), or `None`.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// Whether the buffers are the driver's own memory, exported (`V4L2_MEMORY_MMAP`).
    pub fn is_driver_memory(&self) -> bool {
        self.memory == Memory::Mmap
    }

    /// The camera (a second handle on the same open file).
    pub fn camera(&self) -> &Camera {
        &self.camera
    }
}

fn allocate_n(
    allocator: &Allocator,
    count: usize,
    size: usize,
    constraints: &Constraints,
) -> Result<Vec<Allocation>, CameraError> {
    (0..count)
        .map(|_| Ok(allocator.allocate(CAMERA_USAGE, size, constraints)?))
        .collect()
}

impl Drop for Capture {
    fn drop(&mut self) {
        if !self.requested {
            return;
        }
        let off = sys::streamoff(self.camera.fd.as_fd(), sys::BUF_TYPE_VIDEO_CAPTURE);
        if let Err(errno) = off {
            tracing::warn!(camera = %self.camera.path.display(), %errno, "VIDIOC_STREAMOFF failed");
        }
        // Exported buffers first, so that drivers without orphaned-buffer support can free.
        self.buffers.clear();
        let mut req = sys::RequestBuffers {
            count: 0,
            type_: sys::BUF_TYPE_VIDEO_CAPTURE,
            memory: self.memory.raw(),
            ..Default::default()
        };
        let freed = sys::reqbufs(self.camera.fd.as_fd(), &mut req);
        if let Err(errno) = freed {
            tracing::warn!(camera = %self.camera.path.display(), %errno, "VIDIOC_REQBUFS 0 failed");
        }
    }
}
