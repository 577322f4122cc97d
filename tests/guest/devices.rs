//! In-guest: the test kernel provides every interface wayheap works with.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use drm::control::{PlaneType, connector};
use rustix::ioctl::{Getter, ioctl, opcode};
use wayheap::heap::Heap;
use wayheap_tests::guest::{is_bsp_kernel, record_fact, require_guest};
use wayheap_tests::kms::Card;

/// The CMA heap's names across kernel versions (the kernel exposes no heap type).
const CMA_HEAP_NAMES: &[&str] = &[
    "default_cma_region",
    "reserved",
    "linux,cma",
    "default-pool",
];

fn is_char_device(path: &str) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device())
}

#[test]
fn system_heap_allocates() {
    require_guest();
    assert!(
        is_char_device("/dev/dma_heap/system"),
        "/dev/dma_heap/system is missing"
    );
    let buf = Heap::open("system").unwrap().allocate(1 << 20).unwrap();
    assert_eq!(buf.size(), 1 << 20);
}

#[test]
fn cma_heap_exists_and_allocates() {
    require_guest();
    let names: Vec<String> = std::fs::read_dir("/dev/dma_heap")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    record_fact("heaps", names.join(", "));
    // Since 6.16 the default CMA area is a heap twice: `default_cma_region`, and under the area's
    // own name (`reserved` for `cma=`), which kept the 6.12 name working. Both are one pool.
    let cma_names: Vec<&str> = CMA_HEAP_NAMES
        .iter()
        .copied()
        .filter(|n| names.iter().any(|h| h == n))
        .collect();
    record_fact("CMA heap names", cma_names.join(", "));
    // `reserved` alone up to 6.15 (5.10 included); `default_cma_region` first since 6.16.
    assert_eq!(
        cma_names.first().copied(),
        Some(wayheap_tests::guest::cma_heap_name())
    );
    let cma = *cma_names
        .first()
        .unwrap_or_else(|| panic!("no CMA heap among {names:?} (booted with cma=128M)"));
    // 8 MiB physically contiguous out of the 128 MiB area.
    let buf = Heap::open(cma).unwrap().allocate(8 << 20).unwrap();
    assert_eq!(buf.size(), 8 << 20);
}

#[test]
fn udmabuf_node_opens() {
    require_guest();
    assert!(is_char_device("/dev/udmabuf"), "/dev/udmabuf is missing");
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/udmabuf")
        .unwrap();
    let param = std::path::Path::new("/sys/module/udmabuf/parameters/size_limit_mb");
    if is_bsp_kernel() {
        // 5.10: the limits are constants of udmabuf.c (64 MiB, 1024 ranges), not parameters.
        assert!(!param.exists(), "5.10's udmabuf has no parameters");
        record_fact(
            "udmabuf size_limit_mb",
            "no parameter (5.10: a fixed 64 MiB)",
        );
    } else {
        let limit = std::fs::read_to_string(param).unwrap();
        record_fact("udmabuf size_limit_mb", limit.trim());
    }
}

#[test]
fn sw_sync_is_available() {
    require_guest();
    assert!(
        Path::new("/sys/kernel/debug/sync/sw_sync").exists(),
        "sw_sync (CONFIG_SW_SYNC) is missing from debugfs"
    );
}

#[test]
fn vkms_has_primary_overlay_cursor_planes_and_writeback() {
    require_guest();
    let card = Card::open_driver("vkms").unwrap();
    let planes = card.planes().unwrap();
    let count = |k: PlaneType| planes.iter().filter(|p| p.kind == k).count();
    let (primary, overlay, cursor) = (
        count(PlaneType::Primary),
        count(PlaneType::Overlay),
        count(PlaneType::Cursor),
    );
    record_fact(
        "vkms planes",
        format!("{primary} primary, {overlay} overlay, {cursor} cursor"),
    );
    assert!(primary >= 1, "no primary plane");
    assert!(cursor >= 1, "no cursor plane");
    let virtual_conns = card.connectors(connector::Interface::Virtual).unwrap();
    let writeback = card.connectors(connector::Interface::Writeback).unwrap();
    assert!(!virtual_conns.is_empty(), "no Virtual connector");
    assert_eq!(writeback.len(), 1, "expected one writeback connector");
    if is_bsp_kernel() {
        // 5.10's vkms: no overlay planes (no enable_overlay parameter), writeback already.
        assert_eq!(overlay, 0, "5.10's vkms has no overlay planes");
        return;
    }
    assert!(
        overlay >= 1,
        "no overlay plane: is vkms.enable_overlay=1 on the command line?"
    );

    let overlay_formats: Vec<String> = planes
        .iter()
        .find(|p| p.kind == PlaneType::Overlay)
        .unwrap()
        .formats
        .iter()
        .map(|f| String::from_utf8_lossy(&f.to_le_bytes()).into_owned())
        .collect();
    record_fact("vkms overlay formats", overlay_formats.join(" "));
    assert!(
        overlay_formats.iter().any(|f| f == "AR24"),
        "overlay cannot scan out ARGB8888"
    );
}

/// `struct v4l2_capability` (`<linux/videodev2.h>`). The kernel fills every field; the test reads
/// only some.
#[repr(C)]
#[allow(dead_code)]
struct V4l2Capability {
    driver: [u8; 16],
    card: [u8; 32],
    bus_info: [u8; 32],
    version: u32,
    capabilities: u32,
    device_caps: u32,
    reserved: [u32; 3],
}
const VIDIOC_QUERYCAP: rustix::ioctl::Opcode = opcode::read::<V4l2Capability>(b'V', 0);
const V4L2_CAP_VIDEO_CAPTURE: u32 = 0x1;

#[test]
fn vivid_capture_nodes_answer_querycap() {
    require_guest();
    let mut captures = Vec::new();
    for entry in std::fs::read_dir("/sys/class/video4linux").unwrap() {
        let entry = entry.unwrap();
        let name = std::fs::read_to_string(entry.path().join("name")).unwrap();
        if name.trim().ends_with("-vid-cap") {
            captures.push((
                entry.file_name().to_string_lossy().into_owned(),
                name.trim().to_owned(),
            ));
        }
    }
    captures.sort();
    record_fact("vivid capture nodes", format!("{captures:?}"));
    assert_eq!(
        captures.len(),
        2,
        "expected two vivid instances (vivid.n_devs=2)"
    );

    for (node, _) in &captures {
        let dev = std::fs::File::open(format!("/dev/{node}")).unwrap();
        // SAFETY: VIDIOC_QUERYCAP writes one `struct v4l2_capability`, mirrored by V4l2Capability.
        let cap =
            unsafe { ioctl(&dev, Getter::<{ VIDIOC_QUERYCAP }, V4l2Capability>::new()) }.unwrap();
        assert_eq!(&cap.driver[..5], b"vivid");
        assert_ne!(
            cap.device_caps & V4L2_CAP_VIDEO_CAPTURE,
            0,
            "/dev/{node} cannot capture"
        );
    }
}
