//! In-guest: applications nobody here wrote, from Debian, in compositor-demo on vkms — a
//! terminal showing its text, and the clipboard and primary selection carrying text from one
//! client to another (wl-clipboard's wl-copy and wl-paste).

use std::time::Duration;

use wayheap_tests::compositor::Compositor;
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
    record_fact(
        "foot",
        format!("its text drawn ({glyphs} glyph pixels); its surfaces on {placements:?}"),
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
