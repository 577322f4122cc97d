//! In-guest: a system-heap dma-buf scanned out on a vkms overlay plane over the primary plane
//! (on the primary plane on 5.10, whose vkms has no overlay planes), captured through the
//! writeback connector on the same atomic commit as the Virtual connector, and compared pixel by
//! pixel.

use drm::control::PlaneType;
use wayheap::heap::Heap;
use wayheap_tests::guest::{is_bsp_kernel, record_fact, require_guest};
use wayheap_tests::kms::{Card, TestPlane, round_trip_size, writeback_round_trip};

#[test]
fn system_heap_buffer_on_a_plane_matches_writeback_capture() {
    require_guest();
    let card = Card::open_driver("vkms").unwrap();
    let overlays = card
        .planes()
        .unwrap()
        .iter()
        .filter(|p| p.kind == PlaneType::Overlay)
        .count();
    let plane = if is_bsp_kernel() {
        // 5.10's vkms: primary and cursor planes only (overlays arrived in 5.15).
        assert_eq!(overlays, 0, "5.10's vkms has no overlay planes");
        TestPlane::Primary
    } else {
        assert_eq!(overlays, 8, "vkms.enable_overlay=1 gives 8 overlay planes");
        TestPlane::Overlay((100, 80, 320, 240))
    };
    let (w, h) = round_trip_size(&card, plane);
    let buf = Heap::open("system")
        .unwrap()
        .allocate((w * h * 4) as usize)
        .unwrap();
    let trip = writeback_round_trip(&card, &buf, plane);
    record_fact(
        "writeback round trip",
        format!(
            "{:?} on {plane:?}: {} wrong pixels, fence signalled {} ms after commit",
            trip.screen, trip.wrong, trip.fence_ms
        ),
    );
    assert_eq!(
        trip.wrong, 0,
        "{} pixels differ, first: {:?}",
        trip.wrong, trip.first_wrong
    );
}
