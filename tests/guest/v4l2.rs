//! In-guest: `wayheap::v4l2` on vivid: capture into policy-chosen dma-bufs, the contiguous
//! fallback of a dma-contig camera, the driver's own exported buffers, and typed errors.

use std::time::Duration;

use wayheap::heap::HeapDir;
use wayheap::policy::{Allocator, Policy};
use wayheap::v4l2::{Camera, CameraError, Capture, PixelFormat, capture_devices};
use wayheap_tests::guest::{record_fact, require_guest, video_node};

/// Ordinary pages first for the camera, so that a camera needing contiguous memory is detected
/// rather than served by the default's CMA-first order.
fn system_first() -> Allocator {
    let policy = Policy::parse("camera @system,@cma,udmabuf\n* @system,udmabuf\n").unwrap();
    Allocator::new(policy, HeapDir::default())
}

fn nonzero(capture: &Capture, index: usize, len: usize) -> bool {
    let map = capture.buffer(index).map().unwrap();
    let bytes = map.read().unwrap();
    bytes[..len].iter().any(|b| *b != 0)
}

#[test]
fn capture_devices_lists_the_vivid_capture_nodes_only() {
    require_guest();
    let nodes = capture_devices();
    for name in ["vivid-000-vid-cap", "vivid-001-vid-cap"] {
        let node = video_node(name);
        assert!(
            nodes.iter().any(|p| p.to_str() == Some(node.as_str())),
            "{name} ({node}) missing from {nodes:?}"
        );
    }
    // vivid also makes output, VBI, SDR, metadata and touch nodes; none is a camera here.
    let all = std::fs::read_dir("/sys/class/video4linux").unwrap().count();
    assert!(nodes.len() < all, "{nodes:?} of {all} nodes");
    record_fact(
        "v4l2 capture nodes",
        format!("{} of {all}: {nodes:?}", nodes.len()),
    );
}

#[test]
fn an_ordinary_camera_streams_into_system_heap_buffers_from_the_policy() {
    require_guest();
    let camera = Camera::open(video_node("vivid-000-vid-cap")).unwrap();
    assert_eq!(camera.driver(), "vivid");
    let formats = camera.formats().unwrap();
    for f in [PixelFormat::NV12, PixelFormat::YUYV, PixelFormat::XBGR32] {
        assert!(formats.contains(&f), "{f} missing from {formats:?}");
    }
    let format = camera.set_format(PixelFormat::NV12, 640, 360).unwrap();
    assert_eq!(
        (format.fourcc, format.width, format.height),
        (PixelFormat::NV12, 640, 360)
    );
    let layout = format.layout().unwrap();
    assert_eq!(layout.planes.len(), 2);
    assert_eq!(layout.planes[1].offset, format.bytesperline * 360);
    let mut capture = Capture::allocate(&camera, &system_first(), 3, &format).unwrap();
    assert_eq!(capture.provider(), "system");
    assert_eq!(capture.fallback_reason(), None);
    assert!(!capture.is_driver_memory());
    let mut sequences = Vec::new();
    for _ in 0..4 {
        let frame = capture.dequeue(Duration::from_secs(20)).unwrap();
        assert!(!capture.is_queued(frame.index));
        assert_eq!(frame.bytesused, format.sizeimage);
        assert!(nonzero(&capture, frame.index, format.sizeimage as usize));
        sequences.push(frame.sequence);
        capture.queue(frame.index).unwrap();
    }
    assert!(sequences.windows(2).all(|w| w[1] > w[0]), "{sequences:?}");
    record_fact(
        "v4l2 ordinary camera",
        format!("NV12 640x360 into system-heap buffers, sequences {sequences:?}"),
    );
}

#[test]
fn a_contiguous_camera_is_detected_and_gets_cma_buffers_with_the_reason() {
    require_guest();
    let camera = Camera::open(video_node("vivid-001-vid-cap")).unwrap();
    let format = camera.set_format(PixelFormat::YUYV, 640, 360).unwrap();
    let mut capture = Capture::allocate(&camera, &system_first(), 3, &format).unwrap();
    assert!(
        capture.provider() == wayheap_tests::guest::cma_heap_name(),
        "{}",
        capture.provider()
    );
    let reason = capture.fallback_reason().expect("a reason").to_owned();
    assert!(
        reason.contains("physically contiguous") && reason.contains("system"),
        "{reason}"
    );
    let frame = capture.dequeue(Duration::from_secs(20)).unwrap();
    assert!(nonzero(&capture, frame.index, format.sizeimage as usize));
    record_fact(
        "v4l2 contiguous camera",
        format!("{}: {reason}", capture.provider()),
    );
}

#[test]
fn the_drivers_own_buffers_can_be_exported_as_dmabufs() {
    require_guest();
    let camera = Camera::open(video_node("vivid-000-vid-cap")).unwrap();
    let format = camera.set_format(PixelFormat::XBGR32, 320, 240).unwrap();
    let mut capture = Capture::exported(&camera, 3).unwrap();
    assert!(capture.is_driver_memory());
    assert!(
        capture.provider().contains("videobuf2"),
        "{}",
        capture.provider()
    );
    assert!(capture.buffers().len() >= 3);
    let frame = capture.dequeue(Duration::from_secs(20)).unwrap();
    assert!(nonzero(&capture, frame.index, format.sizeimage as usize));
    capture.queue(frame.index).unwrap();
    let info = capture.buffer(0).info().unwrap();
    record_fact(
        "v4l2 exported buffers",
        format!(
            "{} buffers from {} ({info:?})",
            capture.buffers().len(),
            capture.provider()
        ),
    );
}

#[test]
fn misuse_gets_typed_errors() {
    require_guest();
    let camera = Camera::open(video_node("vivid-000-vid-cap")).unwrap();
    let format = camera.set_format(PixelFormat::YUYV, 320, 240).unwrap();
    // A buffer smaller than a frame is refused before the driver sees it.
    let small = HeapDir::default()
        .open("system")
        .unwrap()
        .allocate(4096)
        .unwrap();
    assert!(matches!(
        Capture::with_dmabufs(&camera, vec![small]),
        Err(CameraError::BufferTooSmall { .. })
    ));
    let mut capture = Capture::allocate(&camera, &system_first(), 2, &format).unwrap();
    assert!(matches!(
        capture.queue(0),
        Err(CameraError::AlreadyQueued { index: 0 })
    ));
    assert!(matches!(
        capture.queue(7),
        Err(CameraError::BadIndex { index: 7, count: 2 })
    ));
    // While buffers are allocated the format is locked.
    let busy = camera.set_format(PixelFormat::NV12, 640, 480).unwrap_err();
    assert!(matches!(busy, CameraError::Busy { .. }), "{busy}");
    assert!(busy.to_string().contains("fuser"), "{busy}");
    // With every buffer taken, waiting for a frame is an error, not a hang.
    let a = capture.dequeue(Duration::from_secs(20)).unwrap();
    let b = capture.dequeue(Duration::from_secs(20)).unwrap();
    assert!(matches!(
        capture.dequeue(Duration::from_secs(1)),
        Err(CameraError::NothingQueued)
    ));
    capture.queue(a.index).unwrap();
    capture.queue(b.index).unwrap();
    // Dropping the capture frees the queue: the format can change again.
    drop(capture);
    camera.set_format(PixelFormat::NV12, 640, 480).unwrap();
    // Not a camera at all.
    let err = Camera::open("/dev/dri/card0").unwrap_err();
    assert!(
        matches!(err, CameraError::NotACaptureDevice { .. }),
        "{err}"
    );
    record_fact("v4l2 errors", format!("{busy} / {err}"));
}
