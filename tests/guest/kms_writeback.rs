//! In-guest: a system-heap dma-buf scanned out on a vkms overlay plane over the primary plane,
//! captured through the writeback connector on the same atomic commit as the Virtual connector,
//! and compared pixel by pixel.

use std::time::{Duration, Instant};

use drm::buffer::{Buffer, DrmFourcc};
use drm::control::{
    AtomicCommitFlags, Device as ControlDevice, FbCmd2Flags, PlaneType, atomic::AtomicModeReq,
    connector,
};
use wayheap::heap::Heap;
use wayheap::kms::writeback::WritebackConnector;
use wayheap_tests::guest::{record_fact, require_guest};
use wayheap_tests::kms::{self, Card, ImportedBuffer, put_plane};

/// Background of the primary plane (XRGB8888).
const BACKGROUND: u32 = 0x0020_3040;
/// Overlay rectangle: position and size on the CRTC.
const OVERLAY: (u32, u32, u32, u32) = (100, 80, 320, 240);

/// A different colour for every pixel of the overlay, so a shifted or scaled image cannot pass.
fn pattern(x: u32, y: u32) -> u32 {
    0xff00_0000 | ((x & 0xff) << 16) | ((y & 0xff) << 8) | ((x * 7 + y * 13) & 0xff)
}

#[test]
fn system_heap_buffer_on_overlay_plane_matches_writeback_capture() {
    require_guest();
    let card = Card::open_driver("vkms").unwrap();
    let primary = card.first_plane(PlaneType::Primary).unwrap();
    let overlay = card.first_plane(PlaneType::Overlay).unwrap();
    let output = card
        .connectors(connector::Interface::Virtual)
        .unwrap()
        .remove(0);
    let writeback = card
        .connectors(connector::Interface::Writeback)
        .unwrap()
        .remove(0);
    let crtc = card.first_crtc().unwrap();
    let mode = kms::preferred_mode(&output).expect("the Virtual connector has a mode");
    let (w, h) = (u32::from(mode.size().0), u32::from(mode.size().1));

    // Primary plane: a dumb buffer of one colour.
    let mut primary_bo = card
        .create_dumb_buffer((w, h), DrmFourcc::Xrgb8888, 32)
        .unwrap();
    {
        let mut map = card.map_dumb_buffer(&mut primary_bo).unwrap();
        for px in map.as_mut().chunks_exact_mut(4) {
            px.copy_from_slice(&BACKGROUND.to_le_bytes());
        }
    }
    let primary_fb = card.add_framebuffer(&primary_bo, 24, 32).unwrap();

    // Overlay plane: a system-heap dma-buf, filled through the sync guard, imported by PRIME.
    let (_, _, ow, oh) = OVERLAY;
    let pitch = ow * 4;
    let heap_buf = Heap::open("system")
        .unwrap()
        .allocate((pitch * oh) as usize)
        .unwrap();
    {
        let mut map = heap_buf.map().unwrap();
        let mut bytes = map.write().unwrap();
        for y in 0..oh {
            for x in 0..ow {
                let at = (y * pitch + x * 4) as usize;
                bytes[at..at + 4].copy_from_slice(&pattern(x, y).to_le_bytes());
            }
        }
    }
    let gem = card.prime_fd_to_buffer(heap_buf.fd()).unwrap();
    let imported = ImportedBuffer {
        handle: gem,
        size: (ow, oh),
        pitch,
        format: DrmFourcc::Argb8888,
    };
    let overlay_fb = card
        .add_planar_framebuffer(&imported, FbCmd2Flags::MODIFIERS)
        .unwrap();

    // Writeback target, pre-filled with a sentinel so an untouched buffer cannot pass.
    let mut wb_bo = card
        .create_dumb_buffer((w, h), DrmFourcc::Xrgb8888, 32)
        .unwrap();
    card.map_dumb_buffer(&mut wb_bo)
        .unwrap()
        .as_mut()
        .fill(0xa5);
    let wb_fb = card.add_framebuffer(&wb_bo, 24, 32).unwrap();

    // One atomic commit: mode + both planes + Virtual connector + writeback connector.
    let mut req = AtomicModeReq::new();
    kms::set_mode(&mut req, &card, crtc, output.handle(), &mode);
    let writeback =
        WritebackConnector::new(&card, writeback.handle()).expect("writeback connector");
    writeback.attach(&mut req, crtc, wb_fb);
    put_plane(&mut req, &card, primary, crtc, primary_fb, (0, 0, w, h));
    put_plane(&mut req, &card, overlay, crtc, overlay_fb, OVERLAY);

    let committed = Instant::now();
    let fence = writeback
        .commit_with_out_fence(&card, AtomicCommitFlags::ALLOW_MODESET, req)
        .expect("atomic commit of Virtual + Writeback on one CRTC (vkms possible_clones)");
    let state = fence
        .wait(Duration::from_secs(20))
        .expect("writeback fence");
    assert_eq!(state, wayheap::dmabuf::FenceState::Signalled);
    let fence_ms = committed.elapsed().as_millis();
    // Leave vkms as a compositor expects to find it: a writeback connector still bound to the
    // CRTC makes Smithay's reset of the device fail (it does not see writeback connectors).
    writeback.detach(&card).expect("detaching writeback");

    // Compare every pixel (RGB; the X byte is undefined in XRGB8888).
    let wb_pitch = wb_bo.pitch();
    let map = card.map_dumb_buffer(&mut wb_bo).unwrap();
    let bytes = map.as_ref();
    let (ox, oy, ow, oh) = OVERLAY;
    let mut wrong = Vec::new();
    let mut wrong_count = 0usize;
    for y in 0..h {
        for x in 0..w {
            let at = (y * wb_pitch + x * 4) as usize;
            let got = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) & 0x00ff_ffff;
            let inside = (ox..ox + ow).contains(&x) && (oy..oy + oh).contains(&y);
            let want = if inside {
                pattern(x - ox, y - oy)
            } else {
                BACKGROUND
            } & 0x00ff_ffff;
            if got != want {
                wrong_count += 1;
                if wrong.len() < 8 {
                    wrong.push(format!("({x},{y}) got {got:06x} want {want:06x}"));
                }
            }
        }
    }
    record_fact(
        "writeback round trip",
        format!("{w}x{h}, {wrong_count} wrong pixels, fence signalled {fence_ms} ms after commit"),
    );
    assert_eq!(
        wrong_count,
        0,
        "{wrong_count} of {} pixels differ, first: {wrong:?}",
        w * h
    );
}
