//! Client YUV dma-bufs (NV12 and kin) on KMS planes and composited through the CPU conversion,
//! every writeback pixel of the subsurface checked against the reference conversion of the
//! colours the client wrote (BT.601 limited range, the compositor's default).

use std::time::Duration;

use wayheap::yuv::Colour;
use wayheap_tests::compositor::Compositor;
use wayheap_tests::guest::{record_fact, require_guest, video_node};
use wayheap_tests::pattern::{colour_grid, compare_rgba, quadrants, through_yuv};

use super::{kms, placements, shown};

/// Per channel: the float reference against vkms's fixed-point plane conversion, or ours.
const TOLERANCE: u8 = 2;

/// Where the YUV subsurface is.
const SUB: (u32, u32, u32, u32) = (96, 64, 320, 240);

/// Compares the screen: the subsurface's grid through YUV, the shm quadrants elsewhere
/// (exact). Returns the largest channel difference seen inside the subsurface.
fn check_yuv_pixels(comp: &Compositor, what: &str, colour: Colour) -> u8 {
    let (sx, sy, sw, sh) = SUB;
    let (w, h, rgba) = comp.screenshot();
    let inside = |x: u32, y: u32| (sx..sx + sw).contains(&x) && (sy..sy + sh).contains(&y);
    let expected = |x: u32, y: u32| {
        if inside(x, y) {
            through_yuv(colour, colour_grid(x - sx, y - sy, sw, sh))
        } else {
            quadrants(x, y, w, h)
        }
    };
    let (wrong, examples) = compare_rgba(&rgba, w, h, TOLERANCE, expected);
    assert_eq!(
        wrong,
        0,
        "{what}: {wrong} of {} writeback pixels off by more than {TOLERANCE}: {examples:?}\nlog:\n{}",
        w * h,
        comp.log()
    );
    let mut worst = 0u8;
    for y in sy..sy + sh {
        for x in sx..sx + sw {
            let at = ((y * w + x) * 4) as usize;
            let e = expected(x, y);
            let want = [(e >> 16) as u8, (e >> 8) as u8, e as u8];
            for c in 0..3 {
                worst = worst.max(rgba[at + c].abs_diff(want[c]));
            }
        }
    }
    worst
}

/// The colour a `--sub-colour` value names (the default without one).
fn colour_of(arg: Option<&str>) -> Colour {
    use wayheap::yuv::{ColourRange, Encoding};
    match arg {
        None => Colour::default(),
        Some("bt709-full") => Colour::new(Encoding::Bt709, ColourRange::Full),
        Some("bt2020-limited") => Colour::new(Encoding::Bt2020, ColourRange::Limited),
        Some(other) => panic!("no colour {other} in this test"),
    }
}

/// The planes' (COLOR_ENCODING, COLOR_RANGE), as the compositor read them back from the kernel.
/// (Not opened here: a second opener of the card while the compositor starts could take DRM
/// master from it.)
fn plane_colours(comp: &Compositor) -> Vec<String> {
    comp.state()["plane_colours"]
        .as_array()
        .expect("plane_colours in the state")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Shows a `format` subsurface on `comp` and checks where it went and its pixels.
fn show(comp: &Compositor, format: &str, want_plane: &str) -> (Option<String>, u8) {
    show_in(comp, format, None, want_plane)
}

/// As [`show`], the client announcing `colour` (`--sub-colour`, e.g. `bt709-full`) through
/// wp_color_representation_v1 and writing its pixels in it.
fn show_in(
    comp: &Compositor,
    format: &str,
    colour: Option<&str>,
    want_plane: &str,
) -> (Option<String>, u8) {
    let sub = format!("system:{}x{}@{},{}", SUB.2, SUB.3, SUB.0, SUB.1);
    let mut args = vec!["--seconds", "120", "--sub", &sub, "--sub-format", format];
    if let Some(c) = colour {
        args.extend(["--sub-colour", c]);
    }
    let client = shown(comp, &args);
    let p = placements(comp, 2);
    assert_eq!(
        p[1].1,
        want_plane,
        "{format} subsurface: {p:?}\nlog:\n{}",
        comp.log()
    );
    let worst = check_yuv_pixels(
        comp,
        &format!("{format} on {want_plane}"),
        colour_of(colour),
    );
    drop(client);
    // The next client starts on a screen without this one's subsurface.
    comp.wait_state(Duration::from_secs(60), |s| {
        s["surfaces"].as_object().is_some_and(|m| m.is_empty())
    });
    (p[1].2.clone(), worst)
}

#[test]
fn yuv_subsurfaces_on_overlay_planes_match_the_reference() {
    require_guest();
    let comp = kms("yuv-planes", &[]);
    let mut facts = Vec::new();
    for format in ["NV12", "NV21", "YU12", "P010"] {
        let (_, worst) = show(&comp, format, "overlay");
        facts.push(format!("{format} max diff {worst}"));
    }
    let log = comp.log();
    assert!(
        log.contains("YUV planes set to the compositor's colour"),
        "the planes' COLOR_ENCODING/COLOR_RANGE were not set:\n{log}"
    );
    record_fact("YUV on overlay planes (vkms converts)", facts.join(", "));
}

#[test]
fn yuv_subsurfaces_composited_by_the_cpu_conversion_match_the_reference() {
    require_guest();
    let comp = kms("yuv-composited", &["--no-planes"]);
    let mut facts = Vec::new();
    // YUYV: vkms planes do not take packed 4:2:2; composited it must be right too.
    for format in ["NV12", "NV21", "YU12", "P010", "YUYV"] {
        let (reason, worst) = show(&comp, format, "composited");
        assert_eq!(reason.as_deref(), Some("scan-out disabled"), "{format}");
        facts.push(format!("{format} max diff {worst}"));
    }
    record_fact(
        "YUV composited (wayheap's CPU conversion, pixman)",
        facts.join(", "),
    );
}

#[test]
fn packed_yuv_that_no_plane_takes_is_composited_with_planes_on() {
    require_guest();
    let comp = kms("yuv-yuyv", &[]);
    let (reason, worst) = show(&comp, "YUYV", "composited");
    let reason = reason.unwrap_or_default();
    assert!(
        reason.contains("YUYV") || reason.contains("format"),
        "the reason should name the format: {reason}"
    );
    record_fact(
        "YUYV with planes on",
        format!("composited ({reason}), max diff {worst}"),
    );
}

/// Runs weston-simple-dmabuf-v4l on vivid in `format` (V4L2 and DRM fourcc alike).
fn weston_v4l(
    comp: &Compositor,
    format: &str,
    pixel_format: wayheap::v4l2::PixelFormat,
) -> wayheap_tests::compositor::Client {
    let node = video_node("vivid-000-vid-cap");
    wayheap::v4l2::Camera::open(&node)
        .and_then(|c| c.set_format(pixel_format, 320, 240))
        .unwrap_or_else(|e| panic!("setting vivid to 320x240 {format}: {e}"));
    comp.client(
        "/usr/bin/weston-simple-dmabuf-v4l".as_ref(),
        &["-v", &node, "-f", format, "-d", format],
    )
}

/// vivid's YUYV camera frames, through Weston's own V4L2 client: no vkms plane takes packed
/// 4:2:2, so they are composited through the CPU conversion, and vivid's colour bars show.
#[test]
fn weston_simple_dmabuf_v4l_yuyv_from_vivid_is_composited_with_its_colour_bars() {
    require_guest();
    let comp = kms("weston-v4l-yuyv", &[]);
    let client = weston_v4l(&comp, "YUYV", wayheap::v4l2::PixelFormat::YUYV);
    let state = comp.wait_state(Duration::from_secs(120), |s| {
        s["surfaces"]
            .as_object()
            .is_some_and(|m| m.values().any(|p| p["plane"] != "hidden"))
            && s["frames"].as_u64().is_some_and(|f| f > 10)
    });
    let surfaces = state["surfaces"].as_object().unwrap();
    let placement: Vec<(String, String)> = surfaces
        .values()
        .map(|p| {
            (
                p["plane"].as_str().unwrap_or("").to_owned(),
                p["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(
        placement
            .iter()
            .any(|(plane, reason)| plane == "composited" && reason.contains("YUYV")),
        "YUYV should be composited, for its format: {state:#}\nlog:\n{}",
        comp.log()
    );
    // vivid's colour bars, converted by wayheap: eight distinct colours across row 200.
    let (w, _, rgba) = comp.screenshot();
    let px = |x: u32, y: u32| {
        let at = ((y * w + x) * 4) as usize;
        [rgba[at], rgba[at + 1], rgba[at + 2]]
    };
    let colours: std::collections::HashSet<[u8; 3]> =
        (0..320).step_by(4).map(|x| px(x, 200)).collect();
    assert!(
        colours.len() >= 8,
        "expected vivid's 8 colour bars at row 200, got {colours:?}"
    );
    record_fact(
        "weston-simple-dmabuf-v4l YUYV",
        format!("vivid YUYV {placement:?}, {} bar colours", colours.len()),
    );
    drop(client);
}

/// Debian 12's weston-simple-dmabuf-v4l (Weston 10) sends single-planar V4L2 NV12 as one
/// plane; NV12 has two. The compositor answers `incomplete`, as the protocol says, and goes on.
/// (Later Weston clients add the chroma plane themselves.)
#[test]
fn weston_10_single_plane_nv12_is_answered_incomplete_and_the_compositor_goes_on() {
    require_guest();
    let mut comp = kms("weston-v4l-nv12", &[]);
    let client = weston_v4l(&comp, "NV12", wayheap::v4l2::PixelFormat::NV12);
    let state = comp.wait_state(Duration::from_secs(120), |s| {
        s["rejected_dmabufs"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });
    let rejected = state["rejected_dmabufs"].to_string();
    assert!(
        rejected.contains("has 2 planes, the client sent 1"),
        "{rejected}"
    );
    let _ = client.finish();
    assert!(comp.alive(), "log:\n{}", comp.log());
    record_fact("weston-simple-dmabuf-v4l NV12 (Weston 10)", rejected);
}

/// A client that says BT.709 full range (wp_color_representation_v1): the planes turn to that
/// colour (the kernel's COLOR_ENCODING/COLOR_RANGE say so) and its NV12 is on a plane with the
/// right pixels; composited, the CPU conversion uses the same colour and gives the same pixels.
#[test]
fn a_bt709_full_range_surface_turns_the_planes_and_both_paths_agree() {
    require_guest();
    let comp = kms("yuv-bt709", &[]);
    let before = comp.wait_state(Duration::from_secs(60), |s| {
        s["plane_colours"].as_array().is_some_and(|a| !a.is_empty())
    });
    assert!(
        plane_colours(&comp)
            .iter()
            .all(|c| c == "ITU-R BT.601 YCbCr, YCbCr limited range"),
        "before: {before:#}"
    );
    // The planes change while the client is shown: read them before it goes.
    let sub = format!("system:{}x{}@{},{}", SUB.2, SUB.3, SUB.0, SUB.1);
    let client = shown(
        &comp,
        &[
            "--seconds",
            "120",
            "--sub",
            &sub,
            "--sub-format",
            "NV12",
            "--sub-colour",
            "bt709-full",
        ],
    );
    let p = placements(&comp, 2);
    assert_eq!(p[1].1, "overlay", "{p:?}\nlog:\n{}", comp.log());
    let planes = plane_colours(&comp);
    assert!(
        !planes.is_empty()
            && planes
                .iter()
                .all(|c| c == "ITU-R BT.709 YCbCr, YCbCr full range"),
        "the planes should have followed the surface: {planes:?}\nlog:\n{}",
        comp.log()
    );
    let on_plane = check_yuv_pixels(
        &comp,
        "NV12 BT.709 full on a plane",
        colour_of(Some("bt709-full")),
    );
    drop(client);
    drop(comp);
    let comp = kms("yuv-bt709-composited", &["--no-planes"]);
    let (_, composited) = show_in(&comp, "NV12", Some("bt709-full"), "composited");
    // The default colour would have been off by far more than the tolerance here: the
    // matrices differ by tens of codes on saturated colours.
    let (y, cb, cr) = Colour::default().from_rgb([255, 0, 0]);
    let wrong = Colour::new(
        wayheap::yuv::Encoding::Bt709,
        wayheap::yuv::ColourRange::Full,
    )
    .to_rgb_reference(y, cb, cr);
    assert!(
        wrong[0].abs_diff(255) > 10 || wrong[1] > 10 || wrong[2] > 10,
        "{wrong:?}"
    );
    record_fact(
        "BT.709 full range through wp_color_representation_v1",
        format!(
            "planes set to {planes:?}; max diff on a plane {on_plane}, composited {composited}"
        ),
    );
}

/// Two YUV surfaces in different colours (one BT.709 full range, one saying nothing): the
/// planes follow one, and the other is composited, converted with its own colour, with the
/// reason.
#[test]
fn a_yuv_surface_in_another_colour_than_the_planes_is_converted_with_the_reason() {
    require_guest();
    let comp = kms("yuv-two-colours", &[]);
    let client = shown(
        &comp,
        &[
            "--seconds",
            "120",
            "--sub",
            "system:320x240@96,64",
            "--sub",
            "system:320x240@600,400",
            "--sub-format",
            "NV12",
            "--sub-colour",
            "bt709-full",
        ],
    );
    let state = comp.wait_state(Duration::from_secs(60), |s| {
        s["surfaces"].as_object().is_some_and(|m| {
            m.len() == 3
                && m.values().any(|p| p["plane"] == "overlay")
                && m.values().any(|p| {
                    p["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("is not the planes'"))
                })
        })
    });
    let reasons: Vec<String> = state["surfaces"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|p| p["reason"].as_str().map(str::to_owned))
        .collect();
    drop(client);
    record_fact(
        "two YUV surfaces in two colours",
        format!("one on an overlay; {reasons:?}"),
    );
}

#[test]
fn hostile_colour_representation_requests_get_protocol_errors() {
    require_guest();
    let mut comp = kms("colour-hostile", &[]);
    for kind in [
        "colour-coefficients",
        "colour-alpha",
        "colour-twice",
        "colour-inert",
    ] {
        let client = comp.client(
            &wayheap_tests::compositor::test_client_bin(),
            &["--bogus", kind],
        );
        let line = client.wait_line("PROTOCOL-ERROR", Duration::from_secs(60));
        let (status, _) = client.finish();
        assert!(line.is_ok(), "{kind}: {line:?}\nlog:\n{}", comp.log());
        assert!(
            line.as_ref()
                .is_ok_and(|l| l.contains("wp_color_representation")),
            "{kind}: {line:?}"
        );
        assert_eq!(status.code(), Some(3), "{kind}");
        assert!(
            comp.alive(),
            "compositor died on {kind}; log:\n{}",
            comp.log()
        );
    }
    let _client = shown(&comp, &["--seconds", "60", "--sub", "system:64x64@0,0"]);
}

/// Nine NV12 subsurfaces for vkms's eight overlay planes: eight scanned out, the ninth
/// converted and composited with the reason, every writeback pixel of all nine right.
#[test]
fn when_overlay_planes_run_out_the_next_yuv_surface_is_converted_with_the_reason() {
    require_guest();
    let comp = kms("yuv-planes-run-out", &[]);
    let (sw, sh) = (160u32, 120u32);
    let origins: Vec<(u32, u32)> = (0..9)
        .map(|i| (16 + (i % 3) * 336, 16 + (i / 3) * 248))
        .collect();
    let subs: Vec<String> = origins
        .iter()
        .map(|(x, y)| format!("system:{sw}x{sh}@{x},{y}"))
        .collect();
    let mut args = vec!["--seconds", "120", "--sub-format", "NV12"];
    for s in &subs {
        args.extend(["--sub", s.as_str()]);
    }
    let _client = shown(&comp, &args);
    let p = placements(&comp, 10);
    let on_overlays = p.iter().filter(|(_, plane, _)| plane == "overlay").count();
    let no_plane_free: Vec<_> = p
        .iter()
        .filter(|(_, plane, reason)| {
            plane == "composited" && reason.as_deref() == Some("no plane free")
        })
        .collect();
    assert!(
        on_overlays == 8 && no_plane_free.len() == 1,
        "8 overlays and one NV12 surface composited for want of a plane: {p:?}\nlog:\n{}",
        comp.log()
    );
    let (w, h, rgba) = comp.screenshot();
    let expected = |x: u32, y: u32| {
        origins
            .iter()
            .find(|(ox, oy)| (*ox..ox + sw).contains(&x) && (*oy..oy + sh).contains(&y))
            .map(|(ox, oy)| through_yuv(Colour::default(), colour_grid(x - ox, y - oy, sw, sh)))
            .unwrap_or_else(|| quadrants(x, y, w, h))
    };
    let (wrong, examples) = compare_rgba(&rgba, w, h, TOLERANCE, expected);
    assert_eq!(
        wrong,
        0,
        "{wrong} pixels off: {examples:?}\nlog:\n{}",
        comp.log()
    );
    record_fact(
        "NV12 when overlay planes run out",
        format!(
            "8 on overlays, 1 converted ({:?}); all pixels within {TOLERANCE}",
            no_plane_free[0].2
        ),
    );
}
