//! The camera source: V4L2 capture straight into dma-bufs (wayheap::v4l2), each buffer shown as
//! its own cached wl_buffer, and given back to the camera only when neither the compositor nor
//! the detector holds it any more.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use wayheap::client::{BufferDescription, BufferPath, Feedback, ImportCache, decide};
use wayheap::dmabuf::DmaBuf;
use wayheap::layout::{Fourcc, Layout};
use wayheap::policy::Allocator;
use wayheap::v4l2::{Camera, CameraError, Capture, PixelFormat};
use wayland_client::protocol::wl_buffer::WlBuffer;
use wayland_client::{Dispatch, QueueHandle};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1, zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
};

/// User data of a camera buffer's wl_buffer: its capture slot (its `release` gives the slot
/// back through [`CameraVideo::released`]).
#[derive(Debug, Clone, Copy)]
pub struct CameraSlot(pub usize);

/// What to capture: the command line's `--format`, `--size` and `--buffers`.
#[derive(Debug, Clone, Copy)]
pub struct CaptureRequest<'a> {
    /// A fourcc, or `auto` (see [`choose_format`]).
    pub format: &'a str,
    /// Width and height.
    pub size: (u32, u32),
    /// Capture buffers.
    pub buffers: usize,
}

/// The formats the demo can show and the detector can read, most preferred first when the
/// compositor's feedback does not decide: NV12 (what SoC cameras and planes share), YUYV, then
/// the 32-bit RGB formats every compositor composes.
const CANDIDATES: [PixelFormat; 4] = [
    PixelFormat::NV12,
    PixelFormat::YUYV,
    PixelFormat::XBGR32,
    PixelFormat::ABGR32,
];

/// A dequeued frame.
#[derive(Debug, Clone, Copy)]
pub struct Captured {
    /// The capture buffer holding it.
    pub slot: usize,
    /// The driver's sequence number.
    pub sequence: u64,
    /// The driver flagged the frame as damaged.
    pub error: bool,
}

/// Who holds a capture buffer that is not queued to the camera.
#[derive(Debug, Clone, Copy, Default)]
struct Holders {
    /// Attached to the surface and not yet released by the compositor.
    compositor: bool,
    /// Being read by the detector.
    detector: bool,
}

/// An open camera streaming into dma-bufs.
pub struct CameraVideo {
    capture: Capture,
    layout: Layout,
    imports: ImportCache,
    holders: Vec<Holders>,
    description: String,
}

/// The first capture device, if any (`/dev/video0` first).
pub fn first_capture_device() -> Option<PathBuf> {
    wayheap::v4l2::capture_devices().into_iter().next()
}

/// Whether `feedback` takes `drm` with the LINEAR modifier, as the library decides it for a
/// buffer: `Some(true)` for scan-out, `Some(false)` for sampling, `None` not at all.
fn feedback_takes(feedback: &Feedback, drm: Fourcc) -> Option<bool> {
    match decide(Some(feedback), drm).path {
        BufferPath::Scanout => Some(true),
        BufferPath::Sampling => Some(false),
        BufferPath::Shm => None,
    }
}

/// Chooses the capture format: `requested` (a fourcc, or `auto`), among what the camera offers,
/// what the detector reads and what the compositor takes. With `auto`, a format some plane scans
/// out wins, then one the compositor composes, in [`CANDIDATES`] order. Returns the format and
/// why.
pub fn choose_format(
    offered: &[PixelFormat],
    feedback: Option<&Feedback>,
    requested: &str,
) -> Result<(PixelFormat, String), String> {
    let usable = |f: &PixelFormat| CANDIDATES.contains(f) && offered.contains(f);
    let offered_list = || {
        let mut s: Vec<String> = offered.iter().map(ToString::to_string).collect();
        s.dedup();
        s.join(" ")
    };
    if requested != "auto" {
        let f = PixelFormat::from_code(requested)
            .ok_or_else(|| format!("--format {requested:?}: not a four-character code"))?;
        if !CANDIDATES.contains(&f) {
            return Err(format!(
                "--format {f}: the demo shows and detects NV12, YUYV, XR24 and AR24 only"
            ));
        }
        if !offered.contains(&f) {
            return Err(format!(
                "--format {f}: the camera does not capture it (it offers {})",
                offered_list()
            ));
        }
        return Ok((f, "asked for with --format".into()));
    }
    let Some(feedback) = feedback else {
        // No feedback: the compositor samples whatever it takes; 32-bit RGB is what every
        // compositor composes.
        let f = [PixelFormat::XBGR32, PixelFormat::ABGR32]
            .into_iter()
            .chain(CANDIDATES)
            .find(usable)
            .ok_or_else(|| {
                format!(
                    "the camera offers none of NV12, YUYV, XR24, AR24 (it offers {})",
                    offered_list()
                )
            })?;
        return Ok((
            f,
            "no dma-buf feedback: a format any compositor composes".into(),
        ));
    };
    let with_drm = |f: PixelFormat| f.to_drm().map(|d| (f, d));
    let ranked = |scanout: bool| {
        CANDIDATES
            .into_iter()
            .filter(usable)
            .filter_map(with_drm)
            .find(|(_, d)| {
                feedback_takes(feedback, *d) == Some(true)
                    || !scanout && feedback_takes(feedback, *d).is_some()
            })
    };
    if let Some((f, d)) = ranked(true) {
        return Ok((
            f,
            format!("a scan-out tranche of the compositor's feedback takes {d} LINEAR"),
        ));
    }
    if let Some((f, d)) = ranked(false) {
        return Ok((
            f,
            format!("no plane takes a format the camera gives; the compositor composes {d} LINEAR"),
        ));
    }
    Err(format!(
        "no format fits: the camera offers {}, the detector reads NV12 YUYV XR24 AR24, and the compositor's feedback takes none of those LINEAR",
        offered_list()
    ))
}

impl CameraVideo {
    /// Opens `path`, negotiates the format with the camera and the compositor's `feedback`, and
    /// starts streaming into buffers from the policy's `camera` usage (contiguous if the camera
    /// refuses scattered memory, the driver's own exported buffers if it imports none).
    pub fn open(
        path: &Path,
        request: CaptureRequest<'_>,
        feedback: Option<&Feedback>,
        alloc: &Allocator,
    ) -> Result<Self, String> {
        let camera = Camera::open(path).map_err(|e| wayheap::error::chain(&e))?;
        let offered = camera.formats().map_err(|e| wayheap::error::chain(&e))?;
        let (wanted, why) = choose_format(&offered, feedback, request.format)?;
        let (w, h) = request.size;
        let format = camera
            .set_format(wanted, w, h)
            .map_err(|e| wayheap::error::chain(&e))?;
        if format.fourcc != wanted {
            return Err(format!(
                "{}: asked for {wanted}, the driver chose {} instead",
                path.display(),
                format.fourcc
            ));
        }
        let layout = format.layout().map_err(|e| wayheap::error::chain(&e))?;
        let capture = Capture::allocate(&camera, alloc, request.buffers, &format)
            .map_err(|e| wayheap::error::chain(&e))?;
        let count = capture.buffers().len();
        let memory = if capture.is_driver_memory() {
            "driver (VIDIOC_EXPBUF)"
        } else {
            "imported (V4L2_MEMORY_DMABUF)"
        };
        let description = format!(
            "VIDEO source=camera device={} card={:?} format={} size={}x{} stride={} buffers={count} provider={} memory={memory} format_reason={why:?}{}",
            path.display(),
            camera.card(),
            format.fourcc,
            format.width,
            format.height,
            format.bytesperline,
            capture.provider(),
            capture
                .fallback_reason()
                .map(|r| format!(" fallback={r:?}"))
                .unwrap_or_default(),
        );
        Ok(CameraVideo {
            capture,
            layout,
            imports: ImportCache::default(),
            holders: vec![Holders::default(); count],
            description,
        })
    }

    /// The `VIDEO` line: device, format and why, where the buffers came from.
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// The frames' layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Readable when a frame can be dequeued.
    pub fn poll_fd(&self) -> BorrowedFd<'_> {
        self.capture.camera().as_fd()
    }

    /// The next captured frame, if one is ready (never waits).
    pub fn dequeue(&mut self) -> Result<Option<Captured>, String> {
        match self.capture.dequeue(Duration::ZERO) {
            Ok(frame) => Ok(Some(Captured {
                slot: frame.index,
                sequence: u64::from(frame.sequence),
                error: frame.error,
            })),
            Err(CameraError::Timeout { .. } | CameraError::NothingQueued) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Gives `slot` back to the camera if nobody holds it any more.
    fn requeue_if_free(&mut self, slot: usize) -> Result<(), String> {
        let h = self.holders[slot];
        if !h.compositor && !h.detector && !self.capture.is_queued(slot) {
            self.capture
                .queue(slot)
                .map_err(|e| wayheap::error::chain(&e))?;
        }
        Ok(())
    }

    /// The frame in `slot` was attached and committed: the compositor holds it until release.
    pub fn shown(&mut self, slot: usize) {
        self.holders[slot].compositor = true;
    }

    /// The compositor released `slot`'s wl_buffer.
    pub fn released(&mut self, slot: usize) -> Result<(), String> {
        self.holders[slot].compositor = false;
        self.requeue_if_free(slot)
    }

    /// The detector started reading `slot`.
    pub fn detector_took(&mut self, slot: usize) {
        self.holders[slot].detector = true;
    }

    /// The detector is done with `slot`.
    pub fn detector_done(&mut self, slot: usize) -> Result<(), String> {
        self.holders[slot].detector = false;
        self.requeue_if_free(slot)
    }

    /// A frame that is not shown (e.g. flagged as damaged by the driver) goes straight back.
    pub fn drop_frame(&mut self, slot: usize) -> Result<(), String> {
        self.requeue_if_free(slot)
    }

    /// The dma-buf of `slot`.
    pub fn dmabuf(&self, slot: usize) -> &DmaBuf {
        self.capture.buffer(slot)
    }

    /// How many linux-dmabuf imports were made (one per capture buffer when caching works).
    pub fn imports(&self) -> u64 {
        self.imports.imports()
    }

    /// The wl_buffer of `slot`: made from its dma-buf once, then reused; its user data is the
    /// [`CameraSlot`].
    pub fn wl_buffer<D>(
        &mut self,
        slot: usize,
        linux_dmabuf: Option<&ZwpLinuxDmabufV1>,
        qh: &QueueHandle<D>,
    ) -> Result<WlBuffer, String>
    where
        D: Dispatch<ZwpLinuxBufferParamsV1, BufferDescription>
            + Dispatch<WlBuffer, CameraSlot>
            + 'static,
    {
        let linux_dmabuf = linux_dmabuf.ok_or(
            "the compositor offers no linux-dmabuf, so camera frames cannot reach it without a copy; use --image, or a compositor with zwp_linux_dmabuf_v1",
        )?;
        let dmabuf = self.capture.buffer(slot);
        let spec = wayheap::client::BufferSpec::from_layout(&self.layout, &[dmabuf], 0)
            .map_err(|e| format!("capture buffer {slot}: {e}"))?;
        self.imports
            .get_or_create(dmabuf, &spec, linux_dmabuf, qh, || CameraSlot(slot))
            .map_err(|e| format!("capture buffer {slot}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use wayheap::client::{FormatModifier, Tranche};
    use wayheap::policy::MODIFIER_LINEAR;

    use super::*;

    fn fm(f: Fourcc) -> FormatModifier {
        FormatModifier {
            format: f.0,
            modifier: MODIFIER_LINEAR,
        }
    }

    fn feedback(tranches: &[(bool, &[Fourcc])]) -> Feedback {
        Feedback {
            main_device: None,
            tranches: tranches
                .iter()
                .map(|(scanout, formats)| Tranche {
                    target_device: None,
                    formats: formats.iter().copied().map(fm).collect(),
                    scanout: *scanout,
                    sampling: false,
                })
                .collect(),
        }
    }

    const VIVID: &[PixelFormat] = &[
        PixelFormat::YUYV,
        PixelFormat::NV12,
        PixelFormat::XBGR32,
        PixelFormat::ABGR32,
    ];

    #[test]
    fn a_format_a_plane_scans_out_wins() {
        // compositor-demo on vkms: planes and pixman share only the RGB formats.
        let fb = feedback(&[
            (true, &[Fourcc::XRGB8888, Fourcc::ARGB8888]),
            (false, &[Fourcc::XRGB8888, Fourcc::ARGB8888, Fourcc::RGB565]),
        ]);
        let (f, why) = choose_format(VIVID, Some(&fb), "auto").unwrap();
        assert_eq!(f, PixelFormat::XBGR32);
        assert!(why.contains("scan-out"), "{why}");
        // A display engine with an NV12 plane gets NV12, though RGB is composed too.
        let fb = feedback(&[(true, &[Fourcc::NV12]), (false, &[Fourcc::XRGB8888])]);
        assert_eq!(
            choose_format(VIVID, Some(&fb), "auto").unwrap().0,
            PixelFormat::NV12
        );
    }

    #[test]
    fn without_a_scanout_tranche_a_composed_format_is_taken() {
        let fb = feedback(&[(false, &[Fourcc::YUYV, Fourcc::XRGB8888])]);
        let (f, why) = choose_format(VIVID, Some(&fb), "auto").unwrap();
        assert_eq!(f, PixelFormat::YUYV);
        assert!(why.contains("composes"), "{why}");
    }

    #[test]
    fn without_feedback_rgb_is_taken() {
        assert_eq!(
            choose_format(VIVID, None, "auto").unwrap().0,
            PixelFormat::XBGR32
        );
        assert_eq!(
            choose_format(&[PixelFormat::NV12], None, "auto").unwrap().0,
            PixelFormat::NV12
        );
    }

    #[test]
    fn nothing_fitting_is_an_error_that_lists_the_camera_formats() {
        let fb = feedback(&[(true, &[Fourcc::XRGB8888])]);
        let err = choose_format(&[PixelFormat::NV12], Some(&fb), "auto").unwrap_err();
        assert!(
            err.contains("NV12") && err.contains("no format fits"),
            "{err}"
        );
        let err = choose_format(&[PixelFormat::RGB565], None, "auto").unwrap_err();
        assert!(err.contains("RGBP"), "{err}");
    }

    #[test]
    fn an_explicit_format_is_checked_against_the_camera_and_the_demo() {
        assert_eq!(
            choose_format(VIVID, None, "NV12").unwrap().0,
            PixelFormat::NV12
        );
        assert!(
            choose_format(&[PixelFormat::XBGR32], None, "NV12")
                .unwrap_err()
                .contains("does not capture")
        );
        assert!(
            choose_format(VIVID, None, "RGBP")
                .unwrap_err()
                .contains("NV12, YUYV")
        );
        assert!(
            choose_format(VIVID, None, "NV1")
                .unwrap_err()
                .contains("four-character")
        );
    }
}
