//! `wayheap-flip-floor`: the floor of a plane path's CPU cost — a minimal program that shows the
//! same scene as the compositor benchmark (a WxH XRGB8888 "video" on the primary plane, a WxH
//! ARGB8888 overlay on an overlay plane, system-heap dma-bufs imported by PRIME) and flips the
//! video between two framebuffers with one atomic commit per frame, waiting for each flip.
//!
//! Prints `FLOOR frames=N cpu_ticks=T` (utime + stime of this process over the flips, in
//! clock ticks, read from /proc like the compositor's) and exits.
//!
//! Usage: `wayheap-flip-floor WxH FRAMES` (as root, on a vkms card nothing else holds).

use std::os::fd::AsFd;

use drm::buffer::DrmFourcc;
use drm::control::{AtomicCommitFlags, Device as _, FbCmd2Flags, PlaneType, atomic::AtomicModeReq};
use drm::control::{connector, property::Value};
use wayheap::heap::HeapDir;
use wayheap_tests::kms::{Card, ImportedBuffer, put_plane, set_mode};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (size, frames) = match args.as_slice() {
        [_, size, frames] => (size.clone(), frames.parse::<u64>().expect("FRAMES")),
        _ => {
            eprintln!("usage: wayheap-flip-floor WxH FRAMES");
            std::process::exit(2);
        }
    };
    let (w, h) = size
        .split_once('x')
        .map(|(w, h)| (w.parse::<u32>().unwrap(), h.parse::<u32>().unwrap()))
        .expect("WxH");
    let card = Card::open_driver("vkms").expect("the vkms card");
    let output = card
        .connectors(connector::Interface::Virtual)
        .expect("connectors")
        .into_iter()
        .next()
        .expect("a Virtual connector");
    let mode = *output
        .modes()
        .iter()
        .find(|m| m.size() == (w as u16, h as u16))
        .unwrap_or_else(|| panic!("no {w}x{h} mode"));
    let crtc = card.first_crtc().expect("a CRTC");
    let primary = card
        .first_plane(PlaneType::Primary)
        .expect("a primary plane");
    let overlay = card
        .first_plane(PlaneType::Overlay)
        .expect("an overlay plane (vkms.enable_overlay=1)");

    let heap = HeapDir::default().open("system").expect("the system heap");
    let framebuffer = |format: DrmFourcc| {
        let buf = heap.allocate((w * h * 4) as usize).expect("heap buffer");
        let handle = card.prime_fd_to_buffer(buf.as_fd()).expect("PRIME import");
        let imported = ImportedBuffer {
            handle,
            size: (w, h),
            pitch: w * 4,
            format,
        };
        let fb = card
            .add_planar_framebuffer(&imported, FbCmd2Flags::MODIFIERS)
            .expect("AddFB2");
        (buf, fb)
    };
    let videos = [
        framebuffer(DrmFourcc::Xrgb8888),
        framebuffer(DrmFourcc::Xrgb8888),
    ];
    let (_overlay_buf, overlay_fb) = framebuffer(DrmFourcc::Argb8888);

    // The mode and both planes, once.
    let mut req = AtomicModeReq::new();
    set_mode(&mut req, &card, crtc, output.handle(), &mode);
    put_plane(&mut req, &card, primary, crtc, videos[0].1, (0, 0, w, h));
    put_plane(&mut req, &card, overlay, crtc, overlay_fb, (0, 0, w, h));
    card.atomic_commit(AtomicCommitFlags::ALLOW_MODESET, req)
        .expect("the first commit");

    // Per frame: one commit of the primary plane's FB_ID, then the flip event.
    let fb_id = card.prop_handles(primary).expect("plane properties")["FB_ID"];
    let before = cpu_ticks();
    for frame in 0..frames {
        let mut req = AtomicModeReq::new();
        let fb = videos[(frame % 2) as usize].1;
        req.add_property(primary, fb_id, Value::Framebuffer(Some(fb)));
        card.atomic_commit(
            AtomicCommitFlags::NONBLOCK | AtomicCommitFlags::PAGE_FLIP_EVENT,
            req,
        )
        .expect("flip");
        let mut flipped = false;
        while !flipped {
            for event in card.receive_events().expect("DRM events") {
                flipped |= matches!(event, drm::control::Event::PageFlip(_));
            }
        }
    }
    let ticks = cpu_ticks() - before;
    println!("FLOOR frames={frames} cpu_ticks={ticks}");
}

/// utime + stime of this process, in clock ticks (/proc/self/stat fields 14 and 15).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    wayheap_tests::compositor::stat_cpu_ticks(&stat).expect("utime and stime")
}
