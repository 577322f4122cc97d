//! In-guest: applications nobody here wrote, from Debian, in compositor-demo on vkms — a
//! terminal showing its text, a GTK4 application (gtk4-demo), a video player (mpv) and
//! GStreamer's waylandsink showing what they are known to show and exiting when their window is
//! asked to close (waylandsink ends its pipeline with an error), and the clipboard and primary
//! selection carrying text from one client to another (wl-clipboard's wl-copy and wl-paste).

use std::ffi::OsStr;
use std::time::Duration;

use wayheap_tests::compositor::{Client, Compositor};
use wayheap_tests::guest::{record_fact, require_guest};

/// Pixels of `rgba` (`w` wide) in `area` that differ from the pixel at `reference`.
fn differing(
    w: u32,
    rgba: &[u8],
    reference: (u32, u32),
    area: (std::ops::Range<u32>, std::ops::Range<u32>),
) -> usize {
    let px = |x: u32, y: u32| {
        let at = ((y * w + x) * 4) as usize;
        [rgba[at], rgba[at + 1], rgba[at + 2]]
    };
    let background = px(reference.0, reference.1);
    let (xs, ys) = area;
    ys.flat_map(|y| xs.clone().map(move |x| (x, y)))
        .filter(|&(x, y)| px(x, y) != background)
        .count()
}

#[test]
fn foot_starts_and_shows_its_text() {
    require_guest();
    let comp = Compositor::start_kms("foot", &[]);
    let client = comp.client(
        "/usr/bin/foot".as_ref(),
        &["sh", "-c", "echo WAYHEAP-FOOT-TEXT; exec sleep 300"],
    );
    // Its window, and its cursor surface once the pointer is over it.
    comp.wait_state(Duration::from_secs(120), |s| {
        s["surfaces"].as_object().is_some_and(|m| !m.is_empty())
    });
    // foot draws the line once its shell printed it (17 cells of 7 pixels from the left; its
    // text cursor is the block in the first cells, so the line is looked for right of them).
    // Elsewhere the screen is its background, but for the pointer's image at the centre.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (glyphs, below) = loop {
        let (w, h, rgba) = comp.screenshot();
        let glyphs = differing(w, &rgba, (w - 20, h - 20), (16..300, 0..40));
        let below = differing(w, &rgba, (w - 20, h - 20), (0..400, 100..h - 40));
        if glyphs > 100 || std::time::Instant::now() > deadline {
            break (glyphs, below);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        glyphs > 100,
        "its text not drawn: {glyphs} pixels\nfoot: {}\nlog:\n{}",
        client.stderr(),
        comp.log()
    );
    assert_eq!(below, 0, "below the text the window is not its background");
    let placements: Vec<String> = comp.state()["surfaces"]
        .as_object()
        .map(|m| m.values().map(|p| p["plane"].to_string()).collect())
        .unwrap_or_default();
    // Asked to close, foot hangs up its shell and says goodbye (its exit status is the
    // shell's, which the hangup ended).
    let (status, _) = comp.close_and_wait(client);
    record_fact(
        "foot",
        format!(
            "its text drawn ({glyphs} glyph pixels); its surfaces on {placements:?}; closed when asked ({status})"
        ),
    );
}

/// Copies `text` with wl-copy (`extra`: e.g. `--primary`) and returns what wl-paste, another
/// client, reads back.
fn copy_then_paste(comp: &Compositor, text: &str, extra: &[&str]) -> String {
    let mut copy_args = extra.to_vec();
    copy_args.push(text);
    let mut copy = comp.client("/usr/bin/wl-copy".as_ref(), &copy_args);
    // wl-copy forks to keep serving the selection; the parent exits once it is set.
    let status = copy.child.wait().expect("waiting for wl-copy");
    assert!(status.success(), "wl-copy: {status} {}", copy.stderr());
    let mut paste_args = extra.to_vec();
    paste_args.push("--no-newline");
    let paste = comp.client("/usr/bin/wl-paste".as_ref(), &paste_args);
    paste
        .wait_line("", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("wl-paste: {e} {}\nlog:\n{}", paste.stderr(), comp.log()))
}

#[test]
fn the_clipboard_and_primary_selection_carry_text_between_clients() {
    require_guest();
    let comp = Compositor::start_kms("clipboard", &[]);
    let pasted = copy_then_paste(&comp, "wayheap clipboard", &[]);
    assert_eq!(pasted, "wayheap clipboard");
    let primary = copy_then_paste(&comp, "wayheap primary", &["--primary"]);
    assert_eq!(primary, "wayheap primary");
    record_fact(
        "clipboard",
        "wl-copy -> wl-paste: clipboard and primary selection carried between two clients",
    );
}

/// Pixels of `rgba` within `tolerance` of `rgb` in every channel.
fn near(rgba: &[u8], rgb: [u8; 3], tolerance: u8) -> usize {
    rgba.chunks_exact(4)
        .filter(|p| (0..3).all(|i| p[i].abs_diff(rgb[i]) <= tolerance))
        .count()
}

/// Takes screenshots until `ready` holds for one (or 120 s pass) and returns the last.
fn screenshot_until(comp: &Compositor, ready: impl Fn(&[u8]) -> bool) -> (u32, u32, Vec<u8>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (w, h, rgba) = comp.screenshot();
        if ready(&rgba) || std::time::Instant::now() > deadline {
            return (w, h, rgba);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits (as [`screenshot_until`]) for more than 1,000 pixels within `tolerance` of each of
/// `bars` and returns the counts; fails naming `what` with the client's stderr otherwise.
fn bars_shown(
    comp: &Compositor,
    client: &Client,
    what: &str,
    bars: [[u8; 3]; 6],
    tolerance: u8,
) -> [usize; 6] {
    let counts = |rgba: &[u8]| bars.map(|c| near(rgba, c, tolerance));
    let (w, h, rgba) = screenshot_until(comp, |rgba| counts(rgba).iter().all(|&n| n > 1000));
    let seen = counts(&rgba);
    assert!(
        seen.iter().all(|&n| n > 1000),
        "{what} not shown: bar pixels {seen:?} of {w}x{h}\nclient:\n{}\nlog:\n{}",
        client.stderr(),
        comp.log()
    );
    seen
}

#[test]
fn gtk4_demo_shows_its_window_and_exits_when_asked_to_close() {
    require_guest();
    let comp = Compositor::start_kms("gtk4", &[]);
    // Cairo drawing: the guest has no GPU, and GL through llvmpipe under TCG is slow.
    let client = comp.client_with_env(
        "/usr/bin/gtk4-demo".as_ref(),
        &[],
        &[
            ("GDK_BACKEND", OsStr::new("wayland")),
            ("GSK_RENDERER", OsStr::new("cairo")),
        ],
    );
    // Adwaita's look: the selected tab's accent-blue underline (#3584e4), black text on the
    // white page (the "GTK Demo" heading and its paragraphs).
    let accent = [0x35, 0x84, 0xe4];
    let (w, h, rgba) = screenshot_until(&comp, |rgba| {
        near(rgba, accent, 12) > 100 && near(rgba, [0, 0, 0], 60) > 500
    });
    let (blue, text, white) = (
        near(&rgba, accent, 12),
        near(&rgba, [0, 0, 0], 60),
        near(&rgba, [255, 255, 255], 4),
    );
    assert!(
        blue > 100 && text > 500 && white > (w * h / 4) as usize,
        "gtk4-demo's window not drawn: {blue} accent, {text} text, {white} white pixels of {w}x{h}\n\
         gtk4-demo:\n{}\nlog:\n{}",
        client.stderr(),
        comp.log()
    );
    let (status, _) = comp.close_and_wait(client);
    assert!(status.success(), "gtk4-demo exited with {status}");
    record_fact(
        "gtk4-demo",
        format!(
            "{blue} accent-blue, {text} text and {white} white pixels; closed when asked: {status}"
        ),
    );
}

#[test]
fn mpv_plays_a_test_pattern_and_exits_when_asked_to_close() {
    require_guest();
    let comp = Compositor::start_kms("mpv", &[]);
    // FFmpeg's testsrc through libavfilter: colour bars with a moving gradient and counter.
    // wl_shm output: the guest has no GPU.
    let client = comp.client(
        "/usr/bin/mpv".as_ref(),
        &[
            "--vo=wlshm",
            "--no-audio",
            "--no-input-default-bindings",
            "--loop-file=inf",
            "av://lavfi:testsrc=size=320x240:rate=30",
        ],
    );
    // testsrc's bars: cyan, magenta, blue, yellow, green, red, each 40 pixels wide.
    let bars = [
        [0, 255, 255],
        [255, 0, 255],
        [0, 0, 255],
        [255, 255, 0],
        [0, 255, 0],
        [255, 0, 0],
    ];
    let seen = bars_shown(&comp, &client, "mpv's test pattern", bars, 40);
    let (status, _) = comp.close_and_wait(client);
    assert!(status.success(), "mpv exited with {status}");
    record_fact(
        "mpv",
        format!(
            "testsrc bars (cyan, magenta, blue, yellow, green, red pixels: {seen:?}); closed when asked: {status}"
        ),
    );
}

#[test]
fn gstreamer_waylandsink_shows_its_bars_and_ends_the_pipeline_when_its_window_is_closed() {
    require_guest();
    let comp = Compositor::start_kms("waylandsink", &[]);
    // GStreamer's own video sink (gst-plugins-bad, Debian's), on videotestsrc's SMPTE bars;
    // -e is not given: a closed window is an error for waylandsink, not an end of stream.
    let client = comp.client(
        "/usr/bin/gst-launch-1.0".as_ref(),
        &[
            "videotestsrc",
            "pattern=smpte",
            "!",
            "video/x-raw,width=320,height=240,framerate=10/1",
            "!",
            "waylandsink",
        ],
    );
    // The SMPTE pattern's top bars (videotestsrc draws them at 100%): yellow, cyan, green,
    // magenta, red, blue, each 45x160 pixels at 320x240.
    let bars = [
        [255, 255, 0],
        [0, 255, 255],
        [0, 255, 0],
        [255, 0, 255],
        [255, 0, 0],
        [0, 0, 255],
    ];
    let seen = bars_shown(&comp, &client, "waylandsink's SMPTE bars", bars, 24);
    // waylandsink posts "Output window was closed" as an error; gst-launch tears the pipeline
    // down and exits with status 1 (its status for an error), on its own.
    let (status, stderr) = comp.close_and_wait(client);
    assert!(
        status.code() == Some(1) && stderr.contains("Output window was closed"),
        "gst-launch should end with waylandsink's closed-window error: {status}\n{stderr}"
    );
    record_fact(
        "waylandsink",
        format!(
            "SMPTE bars (yellow, cyan, green, magenta, red, blue pixels: {seen:?}); window closed: \
             {status}, {:?}",
            stderr
                .lines()
                .find(|l| l.contains("Output window was closed"))
                .unwrap_or_default()
        ),
    );
}
