//! In-guest: compositor-demo on vkms through a libseat session (seatd-launch), client buffers on
//! planes, checked by the compositor's own placement report and by writeback pixels.

use std::time::Duration;

use wayheap_tests::compositor::{Compositor, test_client_bin};
use wayheap_tests::guest::{record_fact, require_guest, video_node};
use wayheap_tests::pattern::{compare_rgba, gradient, quadrants};

const SEATD: &[&str] = &["seatd-launch", "--"];

/// Client YUV buffers: the same helpers, a module of its own.
mod yuv;

fn kms(tag: &str, extra: &[&str]) -> Compositor {
    // Debian 12's seatd-launch uses a fixed socket; one left by a killed run blocks the next.
    let _ = std::fs::remove_file("/run/seatd.sock");
    let mut args = vec!["--backend", "kms", "--device", "/dev/dri/card0"];
    args.extend_from_slice(extra);
    Compositor::start_with(tag, &args, SEATD)
}

/// Waits until `n` surfaces are reported and returns (main, sub) placements by surface id order.
fn placements(comp: &Compositor, n: usize) -> Vec<(String, String, Option<String>)> {
    let state = comp.wait_state(Duration::from_secs(60), |s| {
        s["surfaces"]
            .as_object()
            .is_some_and(|m| m.len() == n && m.values().all(|p| p["plane"] != "hidden"))
    });
    let mut v: Vec<_> = state["surfaces"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, p)| {
            (
                k.clone(),
                p["plane"].as_str().unwrap().to_owned(),
                p["reason"].as_str().map(str::to_owned),
            )
        })
        .collect();
    // wl_surface@N: the main surface is created first.
    v.sort_by_key(|(k, _, _)| {
        k.trim_start_matches("wl_surface@")
            .split('[')
            .next()
            .and_then(|n| n.parse::<u32>().ok())
    });
    v
}

/// Starts the test client with `args` and waits until the compositor has shown its first frame.
fn shown(comp: &Compositor, args: &[&str]) -> wayheap_tests::compositor::Client {
    let client = comp.client(&test_client_bin(), args);
    client
        .wait_line("READY", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", comp.log()));
    client
}

fn check_pixels(comp: &Compositor, sub: Option<(u32, u32, u32, u32)>) -> usize {
    let (w, h, rgba) = comp.screenshot();
    let expected = |x: u32, y: u32| match sub {
        Some((sx, sy, sw, sh)) if (sx..sx + sw).contains(&x) && (sy..sy + sh).contains(&y) => {
            gradient(x - sx, y - sy)
        }
        _ => quadrants(x, y, w, h),
    };
    let (wrong, examples) = compare_rgba(&rgba, w, h, 0, expected);
    assert_eq!(
        wrong,
        0,
        "{wrong} of {} writeback pixels differ: {examples:?}\nlog:\n{}",
        w * h,
        comp.log()
    );
    (w * h) as usize
}

fn overlay_from(source: &str) {
    let comp = kms(&format!("overlay-{source}"), &[]);
    let sub = format!("{source}:256x192@100,80");
    let _client = shown(&comp, &["--seconds", "120", "--sub", &sub]);
    let p = placements(&comp, 2);
    // An ARGB8888 window under an overlay: the primary plane takes only opaque content, and
    // no overlay order keeps it below the subsurface's plane.
    assert_eq!(p[0].1, "composited", "main (shm) surface: {p:?}");
    assert_eq!(
        p[1].1,
        "overlay",
        "{source} subsurface should be on an overlay plane: {p:?}\nlog:\n{}",
        comp.log()
    );
    let n = check_pixels(&comp, Some((100, 80, 256, 192)));
    let renderer = comp.state()["renderer"]["name"].clone();
    record_fact(
        &format!("overlay from {source}"),
        format!("on an overlay plane; {n} writeback pixels exact; composition by {renderer}"),
    );
}

/// Composition on KMS by `renderer`: the shm main surface and a system-heap dma-buf
/// subsurface, planes off, so the renderer draws both into the swapchain's heap buffer; every
/// writeback pixel is checked.
fn composed_by(renderer: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--no-planes"];
    args.extend_from_slice(extra);
    let comp = kms(&format!("compose-{renderer}"), &args);
    let _client = shown(
        &comp,
        &["--seconds", "120", "--sub", "system:256x192@100,80"],
    );
    let p = placements(&comp, 2);
    assert_eq!(p[1].1, "composited", "{p:?}");
    let n = check_pixels(&comp, Some((100, 80, 256, 192)));
    let state = comp.state();
    assert_eq!(state["renderer"]["name"], renderer, "{state}");
    record_fact(
        &format!("KMS composition by {renderer} ({})", extra.join(" ")),
        format!(
            "{}: shm + system-heap dma-buf into a heap swapchain buffer, {n} writeback pixels exact",
            state["renderer"]["detail"]
        ),
    );
    state
}

/// vkms has no GPU: its EGL driver is Mesa's kms_swrast, which cannot use imported dma-bufs
/// (the kernel refuses dumb mappings of imported objects; Mesa 22 then segfaults). `auto`
/// therefore composes with pixman and says why, and `--renderer gles` is refused with that
/// reason before any client can make it crash.
#[test]
fn on_vkms_auto_composes_with_pixman_and_gles_is_refused_with_the_reason() {
    require_guest();
    let state = composed_by("pixman", &[]);
    let why = state["renderer"]["why"].as_str().unwrap_or_default();
    assert!(
        why.contains("software rasterizer") && why.contains("imported dma-bufs"),
        "{state}"
    );
    record_fact("KMS auto renderer on vkms", why.to_owned());

    let _ = std::fs::remove_file("/run/seatd.sock");
    let out = std::process::Command::new("seatd-launch")
        .args([
            "--",
            &wayheap_tests::compositor::compositor_demo_bin().to_string_lossy(),
        ])
        .args([
            "--backend",
            "kms",
            "--device",
            "/dev/dri/card0",
            "--renderer",
            "gles",
        ])
        .env(
            "XDG_RUNTIME_DIR",
            wayheap_tests::compositor::runtime_dir("gles-refused"),
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--renderer gles") && err.contains("software rasterizer"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("Segmentation"),
        "{err}"
    );
}

#[test]
fn pixman_composes_client_dmabufs_on_kms_with_the_right_pixels() {
    require_guest();
    composed_by("pixman", &["--renderer", "pixman"]);
}

#[test]
fn a_system_heap_buffer_lands_on_an_overlay_plane() {
    require_guest();
    overlay_from("system");
}

#[test]
fn a_cma_heap_buffer_lands_on_an_overlay_plane() {
    require_guest();
    overlay_from("cma");
}

#[test]
fn a_udmabuf_buffer_lands_on_an_overlay_plane() {
    require_guest();
    overlay_from("udmabuf");
}

#[test]
fn a_fullscreen_opaque_buffer_is_scanned_out_on_the_primary_plane() {
    require_guest();
    let comp = kms("primary", &[]);
    let _client = shown(&comp, &["--seconds", "120", "--main", "system", "--opaque"]);
    let p = placements(&comp, 1);
    assert_eq!(p[0].1, "primary", "{p:?}\nlog:\n{}", comp.log());
    check_pixels(&comp, None);
}

#[test]
fn without_planes_everything_is_composited_and_still_right() {
    require_guest();
    let comp = kms("no-planes", &["--no-planes"]);
    let _client = shown(
        &comp,
        &["--seconds", "120", "--sub", "system:256x192@100,80"],
    );
    let p = placements(&comp, 2);
    assert_eq!(p[1].1, "composited");
    assert_eq!(p[1].2.as_deref(), Some("scan-out disabled"));
    check_pixels(&comp, Some((100, 80, 256, 192)));
}

#[test]
fn hostile_dmabuf_params_get_protocol_errors_and_the_compositor_goes_on() {
    require_guest();
    let mut comp = kms("hostile", &[]);
    for kind in [
        "offset-overflow",
        "too-small",
        "memfd",
        "socket",
        "plane-count",
        "chroma-out-of-bounds",
        "unknown-format",
    ] {
        let client = comp.client(&test_client_bin(), &["--bogus", kind]);
        let line = client.wait_line("PROTOCOL-ERROR", Duration::from_secs(60));
        let (status, _) = client.finish();
        assert!(line.is_ok(), "{kind}: {line:?}\nlog:\n{}", comp.log());
        assert_eq!(status.code(), Some(3), "{kind}");
        assert!(
            comp.alive(),
            "compositor died on {kind}; log:\n{}",
            comp.log()
        );
    }
    // memfd and socket pass Smithay's own checks; wayheap's validation refuses them.
    let state = comp.wait_state(Duration::from_secs(30), |s| {
        s["rejected_dmabufs"]
            .as_array()
            .is_some_and(|r| r.len() >= 2)
    });
    record_fact(
        "hostile dma-bufs refused by wayheap's validation",
        state["rejected_dmabufs"].to_string(),
    );
    // Still serving: a well-behaved client gets its frame.
    let _client = shown(&comp, &["--seconds", "60", "--sub", "system:64x64@0,0"]);
}

/// The client's dma-bufs among the compositor's fds: the test client names its buffers
/// `<heap>:test-client` (the compositor's own are `<heap>:scanout`).
fn client_dmabufs(comp: &Compositor) -> Vec<wayheap::accounting::ProcessDmaBuf> {
    wayheap::accounting::process_dmabufs(Some(comp.pid()))
        .unwrap()
        .into_iter()
        .filter(|f| {
            f.info
                .name
                .as_deref()
                .is_some_and(|n| n.ends_with(":test-client"))
        })
        .collect()
}

#[test]
fn a_client_killed_mid_stream_leaves_no_dmabuf_behind() {
    require_guest();
    let comp = kms("killed", &[]);
    let client = shown(&comp, &["--seconds", "120", "--sub", "cma:256x192@100,80"]);
    let during = client_dmabufs(&comp).len();
    assert!(
        during > 0,
        "the compositor should hold the client's dma-buf while showing it"
    );
    drop(client); // SIGKILL, mid-stream
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = client_dmabufs(&comp);
        if left.is_empty() {
            let fbs = comp.state()["live_framebuffers"].as_u64();
            record_fact(
                "client dma-bufs in the compositor",
                format!(
                    "{during} while shown, 0 after the client was killed; framebuffers alive after: {fbs:?}"
                ),
            );
            break;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "{} client dma-buf fds left: {left:?}\nstate: {:#}\nlog:\n{}",
                left.len(),
                comp.state(),
                comp.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn when_overlay_planes_run_out_the_rest_is_composited_with_the_reason_and_right_pixels() {
    require_guest();
    let comp = kms("planes-run-out", &[]);
    // Ten 64x64 dma-buf subsurfaces side by side; vkms has eight overlay planes.
    let subs: Vec<String> = (0..10)
        .map(|i| format!("system:64x64@{},600", 16 + i * 96))
        .collect();
    let mut args = vec!["--seconds", "120"];
    for s in &subs {
        args.extend(["--sub", s.as_str()]);
    }
    let client = comp.client(&test_client_bin(), &args);
    client
        .wait_line("READY", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", comp.log()));
    let p = placements(&comp, 11);
    let overlays = p.iter().filter(|(_, plane, _)| plane == "overlay").count();
    let no_plane: Vec<_> = p[1..]
        .iter()
        .filter(|(_, plane, _)| plane == "composited")
        .collect();
    assert_eq!(overlays, 8, "{p:?}");
    assert_eq!(no_plane.len(), 2, "{p:?}");
    assert!(
        no_plane
            .iter()
            .all(|(_, _, r)| r.as_deref() == Some("no plane free")),
        "{no_plane:?}"
    );
    let (w, h, rgba) = comp.screenshot();
    let expected = |x: u32, y: u32| {
        if (600..664).contains(&y) && x >= 16 && (x - 16) % 96 < 64 && (x - 16) / 96 < 10 {
            gradient((x - 16) % 96, y - 600)
        } else {
            quadrants(x, y, w, h)
        }
    };
    let (wrong, examples) = compare_rgba(&rgba, w, h, 0, expected);
    assert_eq!(wrong, 0, "{wrong} pixels differ: {examples:?}");
    record_fact(
        "planes run out",
        "8 subsurfaces on overlays, 2 composited (no plane free), pixels exact",
    );
}

#[test]
fn a_format_no_plane_takes_is_composited_with_the_reason_and_right_pixels() {
    require_guest();
    let comp = kms("format", &[]);
    let _client = shown(
        &comp,
        &[
            "--seconds",
            "120",
            "--sub",
            "system:256x192@100,80",
            "--sub-format",
            "RX24",
        ],
    );
    let p = placements(&comp, 2);
    assert_eq!(p[1].1, "composited", "{p:?}");
    let reason = p[1].2.clone().unwrap_or_default();
    assert!(
        reason.contains("RX24") && reason.contains("not supported"),
        "{reason}"
    );
    check_pixels(&comp, Some((100, 80, 256, 192)));
    record_fact("unsupported plane format", reason);
}

#[test]
fn a_surface_behind_one_on_an_overlay_plane_is_composited_with_the_reason_and_right_pixels() {
    require_guest();
    let comp = kms("overlapping", &[]);
    // Two overlapping dma-buf subsurfaces; the second is in front. vkms planes have no zpos, so
    // nothing keeps the back one behind the front one's overlay plane: it is composited.
    let (back, front) = ((100u32, 80u32), (164u32, 128u32));
    let (w, h) = (128u32, 96u32);
    let _client = shown(
        &comp,
        &[
            "--seconds",
            "120",
            "--sub",
            &format!("system:{w}x{h}@{},{}", back.0, back.1),
            "--sub",
            &format!("system:{w}x{h}@{},{}", front.0, front.1),
        ],
    );
    let p = placements(&comp, 3);
    assert_eq!(p[2].1, "overlay", "{p:?}");
    assert_eq!(p[1].1, "composited", "{p:?}");
    let reason = p[1].2.clone().unwrap_or_default();
    assert!(reason.contains("overlay plane in front"), "{reason}");
    let (sw, sh, rgba) = comp.screenshot();
    let inside = |(x0, y0): (u32, u32), x: u32, y: u32| {
        (x0..x0 + w).contains(&x) && (y0..y0 + h).contains(&y)
    };
    let expected = |x: u32, y: u32| {
        if inside(front, x, y) {
            gradient(x - front.0, y - front.1)
        } else if inside(back, x, y) {
            gradient(x - back.0, y - back.1)
        } else {
            quadrants(x, y, sw, sh)
        }
    };
    let (wrong, examples) = compare_rgba(&rgba, sw, sh, 0, expected);
    assert_eq!(wrong, 0, "{wrong} pixels differ: {examples:?}");
    record_fact("surface behind an overlay", reason);
}

#[test]
fn presentation_feedback_says_zero_copy_exactly_when_scanned_out() {
    require_guest();
    // A CMA dma-buf, and a wl_shm buffer (its pool exported through udmabuf).
    for (planes, sub, want) in [
        (true, "cma:128x128@200,200", "zero-copy=true"),
        (true, "shm:128x128@200,200", "zero-copy=true"),
        (false, "cma:128x128@200,200", "zero-copy=false"),
    ] {
        let comp = kms(
            &format!("zc-{planes}-{}", &sub[..3]),
            if planes { &[] } else { &["--no-planes"] },
        );
        let client = comp.client(
            &test_client_bin(),
            &["--seconds", "120", "--presentation", "--sub", sub],
        );
        let line = client
            .wait_line("PRESENTED", Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", comp.log()));
        assert!(line.ends_with(want), "planes={planes} {sub}: {line}");
    }
}

/// The surfaces' (plane, reason), in creation order, once there are `n` and each plane is the
/// one in `want`.
fn placed_as(comp: &Compositor, want: &[&str]) -> Vec<(String, Option<String>)> {
    comp.wait_surfaces(want.len(), Duration::from_secs(120), |_| true);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let p = comp.wait_surfaces(want.len(), Duration::from_secs(60), |_| true);
        if p.iter()
            .map(|(plane, _)| plane.as_str())
            .eq(want.iter().copied())
        {
            return p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "surfaces never placed as {want:?}: {p:?}\nlog:\n{}",
            comp.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn weston_simple_shm_is_composited_because_its_pool_ends_mid_page_and_drawn_right() {
    require_guest();
    let comp = kms("weston-simple-shm", &[]);
    let client = comp.client("/usr/bin/weston-simple-shm".as_ref(), &[]);
    // Its 250x250 window at the top-left. Weston seals its memfd pools against shrinking, but
    // sizes each to its buffer, 250000 bytes: the last page is partial, and udmabuf pins whole
    // pages of the file only, so it is composited, with that reason.
    let p = placed_as(&comp, &["composited"]);
    let reason = p[0].1.clone().unwrap_or_default();
    assert!(
        reason.contains("partial page of its 250000-byte pool"),
        "{reason}"
    );
    let (w, _, rgba) = comp.screenshot();
    let rgb = |x: u32, y: u32| {
        let at = ((y * w + x) * 4) as usize;
        u32::from(rgba[at]) << 16 | u32::from(rgba[at + 1]) << 8 | u32::from(rgba[at + 2])
    };
    // simple-shm (Weston 10) fills its buffers with 0xff and paints inside a 20-pixel border
    // (paint_pixels), so the border is white; outside its rings it paints
    // v = (x + t) * 0x080401 per column: equal down a column, 0x080401 apart across, opaque but
    // on its diagonal cross (|x - y| <= 6). A wrong offset or stride shifts or shears both.
    let border: Vec<_> = (0..250)
        .flat_map(|i| [(i, 5), (5, i), (i, 245), (245, i)])
        .filter(|&(x, y)| rgb(x, y) != 0xff_ffff)
        .collect();
    assert!(
        border.is_empty(),
        "border pixels not white: {:?}",
        &border[..border.len().min(8)]
    );
    let mut bad = Vec::new();
    for y in 22..38u32 {
        for x in (22..38u32).filter(|&x| x.abs_diff(y) > 7) {
            if rgb(x, y + 1) != rgb(x, y) {
                bad.push(("column", x, y));
            }
            if rgb(x + 1, y).wrapping_sub(rgb(x, y)) & 0xff_ffff != 0x08_0401 {
                bad.push(("row", x, y));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} corner pixels off the pattern: {:?}",
        bad.len(),
        &bad[..bad.len().min(8)]
    );
    record_fact(
        "weston-simple-shm",
        format!("composited ({reason}); border and pattern exact in writeback"),
    );
    drop(client);
}

#[test]
fn weston_terminal_fullscreen_is_scanned_out_and_shows_its_prompt() {
    require_guest();
    let comp = kms("weston-terminal", &[]);
    let client = comp.client("/usr/bin/weston-terminal".as_ref(), &["--fullscreen"]);
    // Fullscreen on the 1024x768 output its shm pool is 1024 * 768 * 4 bytes, whole pages:
    // exported through udmabuf and scanned out.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let p = loop {
        let p = comp.wait_surfaces(1, Duration::from_secs(120), |_| true);
        if p[0].0 != "composited" || std::time::Instant::now() > deadline {
            break p;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        p[0].0 == "primary" || p[0].0 == "overlay",
        "{p:?}\nclient: {}\nlog:\n{}",
        client.stderr(),
        comp.log()
    );
    // Its prompt: glyph pixels (other than the background) in the first text line, and
    // background everywhere below the first lines.
    let (w, h, rgba) = comp.screenshot();
    let px = |x: u32, y: u32| {
        let at = ((y * w + x) * 4) as usize;
        [rgba[at], rgba[at + 1], rgba[at + 2]]
    };
    let background = px(w / 2, h - 10);
    let glyphs = (0..40)
        .flat_map(|y| (0..200).map(move |x| (x, y)))
        .filter(|&(x, y)| px(x, y) != background)
        .count();
    let below = (200..h - 1)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| px(x, y) != background)
        .count();
    assert!(
        glyphs > 20,
        "no prompt drawn: {glyphs} pixels differ from {background:?}"
    );
    assert_eq!(
        below, 0,
        "the rest of the screen is not the terminal's background"
    );
    // Asked to close, it ends its shell and exits (toytoolkit's close handler).
    let (status, _) = comp.close_and_wait(client);
    assert!(status.success(), "weston-terminal exited with {status}");
    record_fact(
        "weston-terminal --fullscreen",
        format!(
            "{} plane (shm exported through udmabuf); {glyphs} prompt pixels; closed when asked: {status}",
            p[0].0
        ),
    );
}

#[test]
fn shm_surfaces_are_scanned_out_with_their_pixels_right_and_zero_copy() {
    require_guest();
    let comp = kms("shm-scanout", &[]);
    let client = comp.client(
        &test_client_bin(),
        &[
            "--seconds",
            "120",
            "--opaque",
            "--presentation",
            "--sub",
            "shm:256x192@100,80",
        ],
    );
    let p = placed_as(&comp, &["primary", "overlay"]);
    check_pixels(&comp, Some((100, 80, 256, 192)));
    let line = client
        .wait_line("PRESENTED", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", comp.log()));
    assert!(line.ends_with("zero-copy=true"), "{line}");
    let exports = comp.state()["live_shm_exports"].as_u64();
    assert_eq!(exports, Some(2), "one udmabuf per shown shm buffer");
    record_fact(
        "shm scan-out",
        format!(
            "main {} and subsurface {} from wl_shm, writeback pixels exact, ZERO_COPY",
            p[0].0, p[1].0
        ),
    );
}

/// The test client with its main surface from `source` is composited with a reason containing
/// `because`, and drawn right.
fn shm_composited(source: &str, because: &str) {
    let comp = kms(&format!("shm-{source}"), &[]);
    let _client = shown(&comp, &["--seconds", "120", "--opaque", "--main", source]);
    let p = placed_as(&comp, &["composited"]);
    let reason = p[0].1.clone().unwrap_or_default();
    assert!(reason.contains(because), "{source}: {reason}");
    check_pixels(&comp, None);
    assert_eq!(comp.state()["live_shm_exports"].as_u64(), Some(0));
    record_fact(
        &format!("shm pool: {source}"),
        format!("composited: {reason}"),
    );
}

#[test]
fn an_unsealed_shm_pool_is_composited_with_the_reason() {
    require_guest();
    shm_composited("shm-unsealed", "not sealed against shrinking");
}

#[test]
fn a_shm_pool_that_is_a_plain_file_is_composited_with_the_reason() {
    require_guest();
    shm_composited("shm-file", "not a memfd");
}

#[test]
fn a_shm_pool_grown_while_scanned_out_shows_the_buffer_past_its_old_end() {
    require_guest();
    let comp = kms("shm-grow", &[]);
    let client = comp.client(
        &test_client_bin(),
        &["--seconds", "120", "--shm-grow-after", "20"],
    );
    placed_as(&comp, &["primary"]);
    assert!(
        !client.drain_lines().iter().any(|l| l == "GROWN"),
        "the pool grew before its first buffer was seen on the plane"
    );
    client
        .wait_line("GROWN", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", comp.log()));
    // The grey first buffer is replaced by the quadrants from past the pool's first end.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (w, h, rgba) = comp.screenshot();
        let (wrong, examples) = compare_rgba(&rgba, w, h, 0, |x, y| quadrants(x, y, w, h));
        if wrong == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{wrong} pixels differ after the growth: {examples:?}\nlog:\n{}",
            comp.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    placed_as(&comp, &["primary"]);
    record_fact(
        "shm pool grown while scanned out",
        "the buffer past the old end (page-aligned offset) on the primary plane, pixels exact",
    );
}

#[test]
fn a_client_killed_while_its_shm_buffers_are_on_planes_leaves_nothing_behind() {
    require_guest();
    let comp = kms("shm-kill", &[]);
    let pid = comp.pid();
    // Shown and SIGKILLed while its two shm buffers are on planes; gone from the report.
    let shown_and_killed = || {
        let client = comp.client(
            &test_client_bin(),
            &[
                "--seconds",
                "120",
                "--opaque",
                "--sub",
                "shm:256x192@100,80",
            ],
        );
        placed_as(&comp, &["primary", "overlay"]);
        let held = wayheap_tests::guest::holdings(pid);
        drop(client);
        comp.wait_state(Duration::from_secs(60), |s| {
            s["surfaces"].as_object().is_some_and(|m| m.is_empty())
                && s["live_shm_exports"].as_u64() == Some(0)
        });
        held
    };
    // A first client opens what stays open (/dev/udmabuf, the swapchain): the baseline is after.
    shown_and_killed();
    let baseline = wayheap_tests::guest::settle(pid, wayheap_tests::guest::holdings(pid));
    let held = shown_and_killed();
    assert!(
        held.dmabufs >= baseline.dmabufs + 2,
        "{held:?} vs {baseline:?}"
    );
    let after = wayheap_tests::guest::settle(pid, baseline);
    assert_eq!(
        after,
        baseline,
        "while on planes: {held:?}\nlog:\n{}",
        comp.log()
    );
    record_fact(
        "shm scan-out, client killed",
        format!("held {held:?} while on planes; back to {after:?}"),
    );
}

#[test]
fn a_small_argb_cursor_goes_on_the_cursor_plane() {
    require_guest();
    let comp = kms("cursor", &[]);
    let _client = shown(&comp, &["--seconds", "120", "--cursor", "shm:64x64"]);
    let p = placements(&comp, 2);
    assert!(
        p.iter().any(|(_, plane, _)| plane == "cursor"),
        "{p:?}\nlog:\n{}",
        comp.log()
    );
    // The pointer rests at the output's centre (512, 384), hotspot (0, 0).
    check_pixels(&comp, Some((512, 384, 64, 64)));
    record_fact(
        "cursor",
        "a 64x64 ARGB cursor surface on the cursor plane, writeback pixels exact",
    );
}

/// wp_cursor_shape_v1: a client names a cursor ("text") instead of drawing one, and the
/// compositor draws it from the XCursor theme (Debian's Adwaita) at the pointer: the writeback
/// shows the client's picture everywhere but in a cursor-sized box at the pointer, where the
/// I-beam is.
#[test]
fn a_named_cursor_shape_is_drawn_from_the_theme() {
    require_guest();
    let comp = kms("cursor-shape", &[]);
    // Its CURSOR-SHAPE line comes before READY, which `shown` waits for.
    let _client = shown(&comp, &["--seconds", "120", "--cursor-shape", "text"]);
    comp.wait_state(Duration::from_secs(60), |s| s["cursor"] == "named text");
    // The pointer rests at the output's centre; the theme's 24-pixel cursors are at most 32
    // pixels on a side, around their hotspot.
    let (cx, cy) = (512u32, 384u32);
    let near_pointer = |x: u32, y: u32| x.abs_diff(cx) < 32 && y.abs_diff(cy) < 32;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (inside, outside) = loop {
        let (w, h, rgba) = comp.screenshot();
        let (mut inside, mut outside) = (0, 0);
        for y in 0..h {
            for x in 0..w {
                let at = ((y * w + x) * 4) as usize;
                let expected = quadrants(x, y, w, h).to_be_bytes();
                // quadrants() is 0xAARRGGBB; the screenshot is RGBA.
                if rgba[at..at + 3] != expected[1..4] {
                    if near_pointer(x, y) {
                        inside += 1;
                    } else {
                        outside += 1;
                    }
                }
            }
        }
        if inside > 20 || std::time::Instant::now() > deadline {
            break (inside, outside);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        outside,
        0,
        "pixels away from the pointer changed\nlog:\n{}",
        comp.log()
    );
    assert!(
        inside > 20,
        "no cursor drawn at the pointer ({inside} pixels differ)\nlog:\n{}",
        comp.log()
    );
    record_fact(
        "cursor shape",
        format!(
            "wp_cursor_shape_v1 text: {inside} pixels of the theme's I-beam at the pointer, none elsewhere"
        ),
    );
}

/// A uinput device `make` creates, tagged by udevd before the compositor looks: udevd runs
/// first, then is asked again (settled) once the device exists.
fn input_device<T>(make: impl FnOnce() -> std::io::Result<T>) -> T {
    wayheap_tests::guest::start_udevd();
    let device = make().expect("a uinput device");
    wayheap_tests::guest::start_udevd();
    device
}

/// libinput announces the devices it opened only with their first events: does `poke` until
/// `client` prints a line starting with `prefix` (a minute at most), and returns that line.
fn poke_until(
    comp: &Compositor,
    client: &wayheap_tests::compositor::Client,
    prefix: &str,
    mut poke: impl FnMut(),
) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        poke();
        if let Ok(line) = client.wait_line(prefix, Duration::from_secs(2)) {
            return line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the client never printed {prefix:?}\nlog:\n{}",
            comp.log()
        );
    }
}

/// libinput on the session: a keyboard (uinput, tagged by udevd like a USB one) types into the
/// focused client; Ctrl+Alt+F2 switches the virtual terminal through seatd, which pauses the
/// compositor (DRM master released) and no client sees F2; switching back (`chvt 1`) resumes it
/// and frames flow again.
#[test]
fn keys_reach_the_client_and_ctrl_alt_f2_switches_the_virtual_terminal() {
    use wayheap_tests::uinput::{Keyboard, keys};
    require_guest();
    let keyboard = input_device(|| Keyboard::new("wayheap test keyboard"));
    let comp = kms("input", &[]);
    let client = shown(&comp, &["--seconds", "120", "--keyboard"]);
    let wait_log = |what: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !comp.log().contains(what) {
            assert!(
                std::time::Instant::now() < deadline,
                "no {what:?} in the log:\n{}",
                comp.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    // The first key also brings libinput's "device added".
    let typed = poke_until(&comp, &client, "KEY 30", || {
        keyboard.press(&[keys::A]).unwrap()
    });
    wait_log("wayheap test keyboard");

    keyboard
        .press(&[keys::LEFTCTRL, keys::LEFTALT, keys::F2])
        .unwrap();
    wait_log("session paused");
    let seen = client.drain_lines();
    assert!(
        !seen.iter().any(|l| l.starts_with("KEY 60")),
        "the client saw the VT switch's F2: {seen:?}"
    );
    let status = std::process::Command::new("busybox")
        .args(["chvt", "1"])
        .status()
        .expect("busybox chvt");
    assert!(status.success(), "chvt 1: {status}");
    wait_log("session active again");
    let before = comp.state()["frames"].as_u64().unwrap_or(0);
    comp.wait_state(Duration::from_secs(60), |s| {
        s["frames"].as_u64().is_some_and(|f| f > before)
    });
    record_fact(
        "input and VT switch",
        format!(
            "uinput keyboard through libinput: {typed:?}; Ctrl+Alt+F2 paused the session, chvt 1 resumed it, frames after it"
        ),
    );
}

#[test]
fn a_text_dragged_within_a_client_is_dropped_back_on_it() {
    use wayheap_tests::uinput::Mouse;
    require_guest();
    let mouse = input_device(|| Mouse::new("wayheap test mouse"));
    let comp = kms("dnd", &[]);
    let text = "dragged and dropped by wayheap's test client";
    let client = shown(&comp, &["--seconds", "120", "--drag", text]);
    let wait = |what: &str| {
        client
            .wait_line(what, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}\nstderr: {}\nlog:\n{}", client.stderr(), comp.log()))
    };
    poke_until(&comp, &client, "POINTER-MOTION", || {
        mouse.move_by(4, 0).unwrap()
    });
    // The press starts the drag (its serial is the implicit grab's); moving over the surface
    // enters it with the offer; the release drops it there.
    mouse.left_button(true).unwrap();
    wait("DRAG-START");
    for _ in 0..5 {
        mouse.move_by(8, 4).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let offered = wait("DND-OFFER");
    let entered = wait("DND-ENTER");
    // The drag's icon (32x32 magenta, nothing else on screen is) is drawn at the pointer. All
    // of it: the demo draws no default arrow over it (a client's cursor would be in front).
    let magenta = |rgba: &[u8]| {
        rgba.chunks_exact(4)
            .filter(|p| p[0] > 240 && p[1] < 16 && p[2] > 240)
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let icon = loop {
        let n = magenta(&comp.screenshot().2);
        if n >= 1024 || std::time::Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(
        icon,
        1024,
        "the drag icon's pixels on the output\nlog:\n{}",
        comp.log()
    );
    mouse.left_button(false).unwrap();
    let dropped = wait("DROPPED");
    assert_eq!(
        dropped,
        format!("DROPPED {text}"),
        "the text that came back"
    );
    wait("DND-FINISHED");
    let after = magenta(&comp.screenshot().2);
    assert_eq!(after, 0, "the icon stays after the drop");
    record_fact(
        "drag and drop within a client",
        format!(
            "uinput mouse through libinput: {offered}, {entered}, icon {icon} pixels at the \
             pointer, {dropped:?}, finished, icon gone"
        ),
    );
}

#[test]
fn weston_simple_dmabuf_v4l_shows_vivid_frames_on_a_plane() {
    require_guest();
    let comp = kms("weston-v4l", &[]);
    let node = video_node("vivid-000-vid-cap");
    // weston-simple-dmabuf-v4l keeps the device's current size; other tests change it (vivid
    // keeps a format across opens), so put back vivid's default.
    wayheap::v4l2::Camera::open(&node)
        .and_then(|c| c.set_format(wayheap::v4l2::PixelFormat::XBGR32, 320, 240))
        .expect("resetting vivid to 320x240 XR24");
    let client = comp.client(
        "/usr/bin/weston-simple-dmabuf-v4l".as_ref(),
        &["-v", &node, "-f", "XR24", "-d", "XR24"],
    );
    let state = comp.wait_state(Duration::from_secs(120), |s| {
        s["surfaces"]
            .as_object()
            .is_some_and(|m| m.values().any(|p| p["plane"] != "hidden"))
            && s["frames"].as_u64().is_some_and(|f| f > 10)
    });
    let planes: Vec<String> = state["surfaces"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p["plane"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        planes.iter().any(|p| p == "overlay" || p == "primary"),
        "V4L2 dma-bufs should be scanned out: {state:#}\nlog:\n{}",
        comp.log()
    );
    let (w, h, rgba) = comp.screenshot();
    let px = |x: u32, y: u32| {
        let at = ((y * w + x) * 4) as usize;
        [rgba[at], rgba[at + 1], rgba[at + 2]]
    };
    let background = px(w - 1, h - 1);
    // vivid's test pattern (320x240 by default) at the top-left: eight colour bars under its
    // text, so row 200 crosses all of them; everything right of the window is background.
    let colours: std::collections::HashSet<[u8; 3]> =
        (0..320).step_by(4).map(|x| px(x, 200)).collect();
    assert!(
        colours.len() >= 8,
        "expected 8 colour bars at row 200, got {colours:?}"
    );
    assert!(
        (400..w).all(|x| px(x, 200) == background),
        "pixels right of the window are not background"
    );
    record_fact(
        "weston-simple-dmabuf-v4l",
        format!(
            "vivid XR24 frames on {planes:?}, {} bar colours",
            colours.len()
        ),
    );
    drop(client);
}

#[test]
fn surface_feedback_leads_the_client_library_to_scanout_exactly_when_a_plane_is_used() {
    require_guest();
    // Planes on: the subsurface is on an overlay, its feedback gets the scan-out tranche, and
    // wayheap::client decides "scanout".
    let comp = kms("feedback-on", &[]);
    let client = comp.client(
        &test_client_bin(),
        &[
            "--seconds",
            "120",
            "--feedback",
            "--sub",
            "system:256x192@100,80",
        ],
    );
    let line = client
        .wait_line("FEEDBACK Scanout", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", comp.log()));
    assert!(line.contains("scanout_tranches=1"), "{line}");
    record_fact("client decision with planes", &line);
    drop(client);
    drop(comp);

    // Planes off: only the composition feedback; the decision is "sampling", never "scanout".
    let comp = kms("feedback-off", &["--no-planes"]);
    let client = comp.client(
        &test_client_bin(),
        &[
            "--seconds",
            "120",
            "--feedback",
            "--sub",
            "system:256x192@100,80",
        ],
    );
    let line = client
        .wait_line("FEEDBACK", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", comp.log()));
    assert!(line.starts_with("FEEDBACK Sampling"), "{line}");
    assert!(
        client
            .wait_line("FEEDBACK Scanout", Duration::from_secs(5))
            .is_err(),
        "scan-out feedback while composited"
    );
    record_fact("client decision without planes", &line);
}

#[test]
fn a_scaled_buffer_is_composited_because_vkms_planes_do_not_scale() {
    require_guest();
    let comp = kms("scaled", &[]);
    let _client = shown(
        &comp,
        &[
            "--seconds",
            "120",
            "--sub",
            "system:128x96@100,80",
            "--sub-scale",
            "256x192",
        ],
    );
    let p = placements(&comp, 2);
    assert_eq!(p[1].1, "composited", "{p:?}");
    // The kernel's refusal with its errno (the tracker's own TEST_ONLY commit): vkms checks
    // planes with DRM_PLANE_NO_SCALING, which drm_atomic_helper_check_plane_state answers
    // with ERANGE.
    assert_eq!(
        p[1].2.as_deref(),
        Some("scaling not supported by the planes (test commit: ERANGE)"),
        "{p:?}"
    );
    // Drawn, scaled, where it belongs: the 256x192 destination no longer shows the window below.
    let (w, h, rgba) = comp.screenshot();
    let covered = (80..272)
        .flat_map(|y| (100..356).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let at = ((y * w + x) * 4) as usize;
            let q = quadrants(x, y, w, h);
            [rgba[at], rgba[at + 1], rgba[at + 2]] != [(q >> 16) as u8, (q >> 8) as u8, q as u8]
        })
        .count();
    assert!(
        covered > 256 * 192 * 9 / 10,
        "only {covered} of {} destination pixels show the buffer",
        256 * 192
    );
    record_fact(
        "scaled subsurface",
        "composited (scaling not supported by the planes), drawn at 256x192",
    );
}

#[test]
fn a_refused_create_becomes_a_typed_error_with_the_parameters_and_no_disconnect() {
    require_guest();
    let mut comp = kms("create-failed", &[]);
    let client = comp.client(&test_client_bin(), &["--bogus", "memfd-create"]);
    let line = client
        .wait_line("CREATE-FAILED", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", comp.log()));
    assert!(
        line.contains("64x64 AR24") && line.contains("[(0, 256)]"),
        "{line}"
    );
    assert!(
        client
            .wait_line("NO-ERROR", Duration::from_secs(30))
            .is_ok(),
        "the client should stay connected"
    );
    let (status, _) = client.finish();
    assert!(status.success());
    assert!(comp.alive());
    record_fact("create + failed", line);
}

/// Runs the swapchain client (3 buffers, 20 frames); the client stays connected, showing its
/// last frame, until the returned handle is dropped.
fn swapchain_line(comp: &Compositor) -> (wayheap_tests::compositor::Client, String) {
    let client = comp.client(
        &test_client_bin(),
        &["--seconds", "120", "--swapchain", "3:20"],
    );
    let line = client
        .wait_line("SWAPCHAIN", Duration::from_secs(180))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", comp.log()));
    (client, line)
}

fn check_swapchain_picture(comp: &Compositor) {
    let (w, _, rgba) = comp.screenshot();
    wayheap_tests::pattern::check_swapchain_picture(w, &rgba);
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

#[test]
fn a_client_swapchain_reuses_released_buffers_and_counts_zero_copy() {
    require_guest();
    let comp = kms("swapchain", &[]);
    let client = comp.client(
        &test_client_bin(),
        &["--seconds", "120", "--swapchain", "3:20"],
    );
    // Allocated for sampling first (the default feedback); once on a plane, the surface gets the
    // scan-out feedback and the swapchain moves to the scan-out usage (CMA first), leaking nothing.
    let realloc = client
        .wait_line("REALLOCATED", Duration::from_secs(180))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", comp.log()));
    assert!(
        realloc.starts_with("REALLOCATED Sampling -> Scanout"),
        "{realloc}"
    );
    assert_eq!(
        field(&realloc, "provider"),
        "default_cma_region",
        "{realloc}"
    );
    assert_eq!(
        field(&realloc, "live_dmabufs"),
        "3",
        "the old buffers are gone: {realloc}"
    );
    record_fact("client swapchain reallocation", &realloc);
    let line = client
        .wait_line("SWAPCHAIN", Duration::from_secs(180))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", comp.log()));
    let used: usize = field(&line, "used").parse().unwrap();
    let zero_copy: u64 = field(&line, "zero_copy").parse().unwrap();
    assert!(
        (2..=3).contains(&used),
        "20 frames should cycle through the 3 buffers: {line}"
    );
    assert!(
        zero_copy >= 10,
        "a subsurface on an overlay plane is scanned out from its own buffer: {line}"
    );
    // Paced by frame callbacks: every frame's callback came before the next frame was drawn.
    assert!(
        field(&line, "frames_done").parse::<u32>().unwrap() >= 19,
        "{line}"
    );
    check_swapchain_picture(&comp);
    record_fact("client swapchain, planes", &line);
    drop(comp);

    let comp = kms("swapchain-composited", &["--no-planes"]);
    let (_client, line) = swapchain_line(&comp);
    assert_eq!(
        field(&line, "zero_copy"),
        "0",
        "composited frames are never zero-copy: {line}"
    );
    // Composited, only the damaged squares are redrawn: the picture is right only if the
    // damage and the buffer-age redraw are.
    check_swapchain_picture(&comp);
    record_fact("client swapchain, composited", &line);
}

#[test]
fn a_client_swapchain_on_the_headless_backend_samples_heap_buffers_and_draws_them_right() {
    require_guest();
    // Headless: no planes, so the surface feedback has no scan-out tranche; the library
    // allocates for sampling (system heap) and pixman composites exactly the damaged squares.
    let comp = Compositor::start("swapchain-headless", &["--backend", "headless"]);
    let (_client, line) = swapchain_line(&comp);
    assert!(line.contains("decision=Sampling"), "{line}");
    assert_eq!(field(&line, "provider"), "system", "{line}");
    assert_eq!(field(&line, "zero_copy"), "0", "{line}");
    let used: usize = field(&line, "used").parse().unwrap();
    assert!((2..=3).contains(&used), "{line}");
    check_swapchain_picture(&comp);
    record_fact("client swapchain, headless", &line);
    // Headless `auto`: GLES on EGL's surfaceless platform only when it imports dma-bufs; here
    // (llvmpipe, no EGL_EXT_image_dma_buf_import) pixman, which maps them.
    let renderer = comp.state()["renderer"].clone();
    assert_eq!(renderer["name"], "pixman", "{renderer}");
    record_fact(
        "headless auto renderer in the guest",
        renderer["why"].to_string(),
    );
}

/// Headless with `--renderer gles` on llvmpipe, which imports no dma-bufs: the compositor's
/// linux-dmabuf (version 3) lists no format, so the client library chooses wl_shm instead of
/// sending a dma-buf the compositor would answer with a protocol error, and the picture is
/// still right.
#[test]
fn a_compositor_that_lists_no_dmabuf_format_gets_shm_from_the_client_library() {
    require_guest();
    let comp = Compositor::start(
        "swapchain-gles-no-import",
        &["--backend", "headless", "--renderer", "gles"],
    );
    let (_client, line) = swapchain_line(&comp);
    assert!(line.contains("decision=Shm"), "{line}");
    assert!(
        comp.state()["rejected_dmabufs"]
            .as_array()
            .is_some_and(|r| r.is_empty())
    );
    check_swapchain_picture(&comp);
    record_fact(
        "client swapchain, headless GLES without dma-buf import",
        &line,
    );
}

#[test]
fn foreign_dmabufs_are_imported_once_each_and_scanned_out() {
    require_guest();
    let comp = kms("imports", &[]);
    let client = comp.client(&test_client_bin(), &["--import-frames", "12"]);
    let line = client
        .wait_line("IMPORTS", Duration::from_secs(180))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", comp.log()));
    assert_eq!(
        line, "IMPORTS frames=12 imports=2",
        "two dma-bufs, two imports"
    );
    let state = comp.state();
    let planes: Vec<&str> = state["surfaces"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|p| p["plane"].as_str())
        .collect();
    assert!(
        planes.contains(&"overlay"),
        "the imported buffers go on an overlay: {state:#}"
    );
    record_fact("import cache", format!("{line}, on {planes:?}"));
}
