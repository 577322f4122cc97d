//! V4L2 capture straight into dma-bufs: a camera fills buffers the [`policy`](crate::policy)
//! allocated (or that the driver exports), and each frame can go to a compositor or a KMS plane
//! without a copy.
//!
//! [`Camera`] is an open single-planar capture node: its formats, and the format it agreed to as a
//! [`CaptureFormat`] with the DRM format and [`Layout`](crate::layout::Layout) of its frames.
//! [`Capture`] is a streaming session over N dma-bufs, in one of three ways:
//!
//! - [`Capture::allocate`]: buffers from the policy's `camera` providers, imported with
//!   `V4L2_MEMORY_DMABUF`. A camera that needs physically contiguous memory (no IOMMU: the
//!   dma-contig allocator of most SoC cameras) refuses scattered pages at `VIDIOC_QBUF` with
//!   EFAULT; the buffers are then reallocated contiguous and the reason is kept
//!   ([`Capture::fallback_reason`]). A driver that imports no dma-bufs at all gets the EXPBUF path.
//! - [`Capture::with_dmabufs`]: buffers the caller already has.
//! - [`Capture::exported`]: the driver's own buffers (`V4L2_MEMORY_MMAP`), exported as dma-bufs
//!   with `VIDIOC_EXPBUF`.
//!
//! Frames come out of [`Capture::dequeue`] by buffer index and go back with [`Capture::queue`];
//! nothing is requeued behind the caller's back, so a buffer can stay on screen until the
//! compositor releases it.
//!
//! Why not a crate: v4l2r (the most complete Rust V4L2 binding) makes its ioctls through nix and
//! generates `videodev2.h` bindings with bindgen at build time (libclang on every build machine);
//! `v4l` / libv4l-rs call `libc::ioctl` on bindgen output too. wayheap makes every syscall through
//! rustix and needs only the dozen structures of a streaming capture, so they are here, with their
//! sizes checked at compile time against the kernel's.
//!
//! The structures are declared here by hand for 64-bit targets (`v4l2_buffer` differs on 32-bit)
//! and only single-planar capture (`V4L2_BUF_TYPE_VIDEO_CAPTURE`) is supported.
//!
//! ## How to use
//!
//! ```no_run
//! use std::time::Duration;
//! use wayheap::policy::Allocator;
//! use wayheap::v4l2::{Camera, Capture, PixelFormat, find_capture_by_name};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let path = find_capture_by_name("vivid-000-vid-cap").unwrap_or_else(|| "/dev/video0".into());
//! let camera = Camera::open(&path)?;
//! assert!(camera.formats()?.contains(&PixelFormat::NV12));
//! let format = camera.set_format(PixelFormat::NV12, 1280, 720)?; // what the driver chose
//! let layout = format.layout()?; // DRM NV12: plane offsets and strides for linux-dmabuf or KMS
//!
//! let mut capture = Capture::allocate(&camera, &Allocator::from_env()?, 4, &format)?;
//! println!("buffers from {}", capture.provider());
//! if let Some(why) = capture.fallback_reason() {
//!     println!("not the first choice: {why}");
//! }
//! let frame = capture.dequeue(Duration::from_secs(1))?;
//! let buffer = capture.buffer(frame.index); // buffer.fd() + layout make the wl_buffer
//! # let _ = (buffer, layout);
//! // ... once the compositor has released that wl_buffer:
//! capture.queue(frame.index)?;
//! # Ok(())
//! # }
//! ```

#[cfg(not(target_pointer_width = "64"))]
compile_error!("wayheap::v4l2 declares struct v4l2_buffer for 64-bit targets only");

mod capture;
mod format;
mod sys;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

pub use capture::{CAMERA_USAGE, Capture, Frame};
pub use format::{CaptureFormat, FormatError, PixelFormat};

use crate::dmabuf::DmaBufError;
use crate::policy::AllocError;

/// Where the kernel lists V4L2 nodes, one directory per node with its `name`.
pub const SYSFS_VIDEO4LINUX: &str = "/sys/class/video4linux";

/// The udev rule that gives the `video` group a camera (most distributions ship it).
pub const VIDEO_UDEV_RULE_HINT: &str = r#"SUBSYSTEM=="video4linux", GROUP="video", MODE="0660""#;

/// The `/dev` node of the V4L2 device whose sysfs `name` is `name` (e.g. `vivid-000-vid-cap`).
///
/// Names are the drivers' (a UVC camera's is its product string); `None` when no node has it.
pub fn find_capture_by_name(name: &str) -> Option<PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(SYSFS_VIDEO4LINUX)
        .ok()?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    entries.into_iter().find_map(|e| {
        let node_name = std::fs::read_to_string(e.path().join("name")).ok()?;
        (node_name.trim() == name).then(|| Path::new("/dev").join(e.file_name()))
    })
}

/// Every node that [`Camera::open`] accepts (single-planar streaming capture), in node order
/// (`/dev/video0` first): what a camera application offers when no device was named. Nodes that
/// cannot be opened (permissions, busy) are left out; open one by path to learn why.
pub fn capture_devices() -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(SYSFS_VIDEO4LINUX) else {
        return Vec::new();
    };
    let mut nodes: Vec<(u32, PathBuf)> = dir
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_prefix("video")?.parse().ok()?;
            Some((n, Path::new("/dev").join(name)))
        })
        .collect();
    nodes.sort();
    nodes
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| Camera::open(p).is_ok())
        .collect()
}

/// Why a camera could not be opened, configured or streamed from.
#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    /// No device at the path (ENOENT, ENODEV, ENXIO).
    #[error(
        "{}: no such video device (is the driver loaded? `ls {SYSFS_VIDEO4LINUX}` lists the nodes and their names)",
        path.display()
    )]
    NotFound {
        /// The node.
        path: PathBuf,
    },
    /// The node is not accessible (EACCES, EPERM).
    #[error(
        "{}: permission denied: add the user to the `video` group (`sudo usermod -aG video $USER`, then log in again), or give the group the node with a udev rule: {VIDEO_UDEV_RULE_HINT}",
        path.display()
    )]
    PermissionDenied {
        /// The node.
        path: PathBuf,
    },
    /// The node is not a single-planar, streaming video capture device.
    #[error("{}: not a video capture device: {reason}", path.display())]
    NotACaptureDevice {
        /// The node.
        path: PathBuf,
        /// What it is instead.
        reason: String,
    },
    /// The device is in use (EBUSY).
    #[error(
        "{}: {what} gave EBUSY: another process (or another open file of this device) is streaming from it or holds its buffers; stop that first (`fuser {}` names the process)",
        path.display(), path.display()
    )]
    Busy {
        /// The node.
        path: PathBuf,
        /// The call that was refused.
        what: &'static str,
    },
    /// Opening the node failed otherwise.
    #[error("{}: open failed: {errno}", path.display())]
    Open {
        /// The node.
        path: PathBuf,
        /// The kernel's error.
        errno: Errno,
    },
    /// An ioctl failed.
    #[error("{}: {what} failed: {errno}", path.display())]
    Ioctl {
        /// The node.
        path: PathBuf,
        /// The ioctl.
        what: &'static str,
        /// The kernel's error.
        errno: Errno,
    },
    /// No frame arrived in time.
    #[error("{}: no frame within {waited:?} (is the camera streaming? is its shutter or cable fine?)", path.display())]
    Timeout {
        /// The node.
        path: PathBuf,
        /// How long [`Capture::dequeue`] waited.
        waited: Duration,
    },
    /// Every buffer is with the caller: nothing can be filled.
    #[error("no buffer is queued: give one back with Capture::queue before waiting for a frame")]
    NothingQueued,
    /// A buffer index that does not exist.
    #[error("buffer index {index} is out of range: the capture has {count} buffers")]
    BadIndex {
        /// The index.
        index: usize,
        /// The buffers there are.
        count: usize,
    },
    /// [`Capture::queue`] of a buffer that is queued already.
    #[error("buffer {index} is queued already")]
    AlreadyQueued {
        /// The index.
        index: usize,
    },
    /// The driver wants another number of buffers than were given.
    #[error("{asked} buffers given, the driver wants {got}: give it {got}")]
    BufferCount {
        /// Buffers given or asked for.
        asked: usize,
        /// What `VIDIOC_REQBUFS` answered.
        got: usize,
    },
    /// A buffer smaller than one frame.
    #[error("buffer {index} has {size} bytes; one frame of the current format needs {needed}")]
    BufferTooSmall {
        /// The index.
        index: usize,
        /// Its size.
        size: usize,
        /// The format's `sizeimage`.
        needed: usize,
    },
    /// The driver does not import dma-bufs (`VIDIOC_REQBUFS` with `V4L2_MEMORY_DMABUF`: EINVAL).
    #[error(
        "{}: the driver does not import dma-bufs (VIDIOC_REQBUFS with V4L2_MEMORY_DMABUF gave EINVAL): use Capture::exported, which exports the driver's own buffers",
        path.display()
    )]
    DmabufUnsupported {
        /// The node.
        path: PathBuf,
    },
    /// The driver refused a dma-buf at `VIDIOC_QBUF`.
    #[error(
        "{}: VIDIOC_QBUF of buffer {index} (from {provider}) failed: {errno}{}",
        path.display(),
        if *errno == Errno::FAULT { " — the device needs physically contiguous memory: allocate from a CMA heap (Capture::allocate does)" } else { "" }
    )]
    BufferRefused {
        /// The node.
        path: PathBuf,
        /// The buffer's index.
        index: usize,
        /// Where the buffer came from (a heap's name, `udmabuf`, an exporter).
        provider: String,
        /// The kernel's error: EFAULT when a dma-contig device gets scattered pages.
        errno: Errno,
    },
    /// Allocating the buffers failed; why is the [`source`](std::error::Error::source).
    #[error("allocating capture buffers failed")]
    Alloc(#[from] AllocError),
    /// The camera refused scattered memory, and no contiguous buffers could be allocated; why
    /// is the [`source`](std::error::Error::source).
    #[error(
        "{reason}, but no contiguous buffer could be allocated: give the camera usage a CMA heap \
         (CONFIG_DMABUF_HEAPS_CMA and a CMA area, cma=SIZE on the kernel command line) or another \
         contiguous provider"
    )]
    NeedsContiguous {
        /// Why contiguous memory was needed.
        reason: String,
        /// Why the policy could not give it.
        source: AllocError,
    },
    /// An exported buffer is not usable as a dma-buf; why is the
    /// [`source`](std::error::Error::source).
    #[error("the dma-buf VIDIOC_EXPBUF gave for buffer {index} is not usable")]
    Export {
        /// The buffer's index.
        index: usize,
        /// What is wrong with it.
        source: DmaBufError,
    },
}

/// An errno's symbolic name, for reasons a person reads.
pub(crate) fn errno_name(e: Errno) -> String {
    let name = match e {
        Errno::FAULT => "EFAULT",
        Errno::INVAL => "EINVAL",
        Errno::NOMEM => "ENOMEM",
        Errno::NOSPC => "ENOSPC",
        Errno::BUSY => "EBUSY",
        Errno::NOTTY => "ENOTTY",
        Errno::ACCESS => "EACCES",
        Errno::PERM => "EPERM",
        Errno::AGAIN => "EAGAIN",
        Errno::IO => "EIO",
        Errno::NODEV => "ENODEV",
        Errno::PIPE => "EPIPE",
        _ => return format!("errno {}", e.raw_os_error()),
    };
    name.to_owned()
}

/// An open V4L2 single-planar video capture node that can stream.
#[derive(Debug)]
pub struct Camera {
    fd: OwnedFd,
    path: PathBuf,
    driver: String,
    card: String,
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl Camera {
    /// Opens `path` (non-blocking) and checks with `VIDIOC_QUERYCAP` that it is a single-planar
    /// video capture node with streaming I/O (the node's `device_caps` when the driver gives them).
    pub fn open(path: impl AsRef<Path>) -> Result<Camera, CameraError> {
        let path = path.as_ref().to_owned();
        let fd = rustix::fs::open(
            &path,
            OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| match errno {
            Errno::NOENT | Errno::NODEV | Errno::NXIO => {
                CameraError::NotFound { path: path.clone() }
            }
            Errno::ACCESS | Errno::PERM => CameraError::PermissionDenied { path: path.clone() },
            Errno::BUSY => CameraError::Busy {
                path: path.clone(),
                what: "open",
            },
            errno => CameraError::Open {
                path: path.clone(),
                errno,
            },
        })?;
        let cap = sys::querycap(fd.as_fd()).map_err(|errno| match errno {
            Errno::NOTTY | Errno::INVAL => CameraError::NotACaptureDevice {
                path: path.clone(),
                reason: format!(
                    "it is not a V4L2 device (VIDIOC_QUERYCAP gave {})",
                    errno_name(errno)
                ),
            },
            errno => CameraError::Ioctl {
                path: path.clone(),
                what: "VIDIOC_QUERYCAP",
                errno,
            },
        })?;
        let caps = if cap.capabilities & sys::CAP_DEVICE_CAPS != 0 {
            cap.device_caps
        } else {
            cap.capabilities
        };
        let card = c_string(&cap.card);
        if let Some(reason) = not_capture_reason(caps) {
            return Err(CameraError::NotACaptureDevice {
                path,
                reason: format!("{card} ({}): {reason}", c_string(&cap.driver)),
            });
        }
        Ok(Camera {
            fd,
            path,
            driver: c_string(&cap.driver),
            card,
        })
    }

    /// The node's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The driver's name (`vivid`, `uvcvideo`).
    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// The device's name as the driver gives it.
    pub fn card(&self) -> &str {
        &self.card
    }

    fn ioctl_error(&self, what: &'static str, errno: Errno) -> CameraError {
        match errno {
            Errno::BUSY => CameraError::Busy {
                path: self.path.clone(),
                what,
            },
            errno => CameraError::Ioctl {
                path: self.path.clone(),
                what,
                errno,
            },
        }
    }

    /// The pixel formats the node captures (`VIDIOC_ENUM_FMT`), in the driver's order.
    pub fn formats(&self) -> Result<Vec<PixelFormat>, CameraError> {
        let mut out = Vec::new();
        // A bound, in case a driver never says EINVAL.
        for index in 0..4096 {
            match sys::enum_fmt(self.fd.as_fd(), sys::BUF_TYPE_VIDEO_CAPTURE, index) {
                Ok(desc) => out.push(PixelFormat(desc.pixelformat)),
                Err(Errno::INVAL) => break,
                Err(errno) => return Err(self.ioctl_error("VIDIOC_ENUM_FMT", errno)),
            }
        }
        Ok(out)
    }

    /// Asks for `fourcc` at `width` x `height` (progressive) with `VIDIOC_S_FMT` and returns what
    /// the driver chose: it may change the size, the format and the strides, so look at the answer.
    ///
    /// EBUSY ([`CameraError::Busy`]) while buffers are allocated on the device, by this or any
    /// other process.
    pub fn set_format(
        &self,
        fourcc: PixelFormat,
        width: u32,
        height: u32,
    ) -> Result<CaptureFormat, CameraError> {
        let mut fmt = sys::Format::capture(sys::PixFormat {
            width,
            height,
            pixelformat: fourcc.0,
            field: sys::FIELD_NONE,
            ..Default::default()
        });
        sys::s_fmt(self.fd.as_fd(), &mut fmt)
            .map_err(|errno| self.ioctl_error("VIDIOC_S_FMT", errno))?;
        Ok(capture_format(&fmt.pix))
    }

    /// The current format (`VIDIOC_G_FMT`).
    pub fn format(&self) -> Result<CaptureFormat, CameraError> {
        let mut fmt = sys::Format::capture(sys::PixFormat::default());
        sys::g_fmt(self.fd.as_fd(), &mut fmt)
            .map_err(|errno| self.ioctl_error("VIDIOC_G_FMT", errno))?;
        Ok(capture_format(&fmt.pix))
    }

    /// A second handle on the same open file: V4L2 ties buffers to the open file, so both are the
    /// queue's owner.
    fn try_clone(&self) -> Result<Camera, CameraError> {
        let fd = self.fd.try_clone().map_err(|e| CameraError::Open {
            path: self.path.clone(),
            errno: Errno::from_io_error(&e).unwrap_or(Errno::IO),
        })?;
        Ok(Camera {
            fd,
            path: self.path.clone(),
            driver: self.driver.clone(),
            card: self.card.clone(),
        })
    }
}

impl AsFd for Camera {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn capture_format(pix: &sys::PixFormat) -> CaptureFormat {
    CaptureFormat {
        fourcc: PixelFormat(pix.pixelformat),
        width: pix.width,
        height: pix.height,
        bytesperline: pix.bytesperline,
        sizeimage: pix.sizeimage,
    }
}

/// Why a node with capabilities `caps` is not for [`Camera`], or `None` if it is.
fn not_capture_reason(caps: u32) -> Option<String> {
    if caps & sys::CAP_VIDEO_CAPTURE == 0 {
        let what = if caps & sys::CAP_VIDEO_CAPTURE_MPLANE != 0 {
            "it captures multi-planar only (V4L2_CAP_VIDEO_CAPTURE_MPLANE), which wayheap::v4l2 does not support yet"
        } else if caps & sys::CAP_VIDEO_M2M_ANY != 0 {
            "it is a memory-to-memory device (a codec or converter), not a camera"
        } else if caps & sys::CAP_VIDEO_OUTPUT != 0 {
            "it is a video output node"
        } else {
            "it has no video capture capability"
        };
        return Some(format!("{what} (capabilities {caps:#010x})"));
    }
    if caps & sys::CAP_STREAMING == 0 {
        return Some(format!(
            "it has no streaming I/O, only read() (capabilities {caps:#010x})"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_judged_with_reasons() {
        let capture = sys::CAP_VIDEO_CAPTURE | sys::CAP_STREAMING;
        assert_eq!(not_capture_reason(capture), None);
        assert!(
            not_capture_reason(sys::CAP_VIDEO_OUTPUT | sys::CAP_STREAMING)
                .unwrap()
                .contains("output")
        );
        assert!(
            not_capture_reason(sys::CAP_VIDEO_CAPTURE_MPLANE | sys::CAP_STREAMING)
                .unwrap()
                .contains("multi-planar")
        );
        assert!(
            not_capture_reason(sys::CAP_VIDEO_CAPTURE)
                .unwrap()
                .contains("streaming")
        );
    }

    #[test]
    fn opening_what_is_not_a_camera_gives_typed_errors() {
        assert!(matches!(
            Camera::open("/nonexistent/video0"),
            Err(CameraError::NotFound { .. })
        ));
        let err = Camera::open("/dev/null").unwrap_err();
        assert!(
            matches!(&err, CameraError::NotACaptureDevice { reason, .. } if reason.contains("ENOTTY")),
            "{err}"
        );
    }

    #[test]
    fn c_strings_stop_at_nul() {
        assert_eq!(c_string(b"vivid\0\0junk"), "vivid");
        assert_eq!(c_string(b"full"), "full");
    }
}

/// Property tests (issue 15) of what the driver's `VIDIOC_QUERYCAP` answer is made into: 3 000
/// + 3 000 = 6 000 cases per run.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::proptest_config::config(3_000))]

        /// Any driver and card bytes (fixed arrays, NUL-terminated or not, any encoding): the
        /// text up to the first NUL, never a NUL, never a panic.
        #[test]
        fn driver_strings_stop_at_nul(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let s = c_string(&bytes);
            prop_assert!(!s.contains('\0'));
            let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
            prop_assert_eq!(s, String::from_utf8_lossy(&bytes[..end]).into_owned());
        }

        /// Any capability bits: a camera exactly when it captures single-planar with streaming;
        /// otherwise a reason that shows the bits.
        #[test]
        fn capabilities_decide_with_a_reason(caps in any::<u32>()) {
            let camera = caps & sys::CAP_VIDEO_CAPTURE != 0 && caps & sys::CAP_STREAMING != 0;
            match not_capture_reason(caps) {
                None => prop_assert!(camera),
                Some(reason) => {
                    prop_assert!(!camera);
                    prop_assert!(reason.contains(&format!("{caps:#010x}")), "{reason}");
                }
            }
        }
    }
}
