//! The client library against Weston, a compositor nobody here wrote (Debian's weston 10).
//!
//! Weston runs headless with the pixman renderer. That configuration offers no linux-dmabuf
//! (weston 10's pixman renderer imports no dma-buf, and its GL renderer on the guest's software
//! EGL device lacks EGL_EXT_image_dma_buf_import), which makes it the real-world case of the
//! wl_shm fallback. Its DRM backend is not used: on vkms under TCG its repaint loop stalls
//! ("computed repaint delay is insane") and no frame callback ever arrives.

use std::time::Duration;

use wayheap_tests::compositor::{Weston, test_client_bin};
use wayheap_tests::guest::{record_fact, require_guest};

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

#[test]
fn against_weston_without_linux_dmabuf_the_swapchain_falls_back_to_wl_shm_and_says_so() {
    require_guest();
    let weston = Weston::start_headless("shm-fallback");
    let client = weston.client(
        &test_client_bin(),
        &["--seconds", "120", "--fullscreen", "--swapchain", "3:20"],
    );
    let bound = client
        .wait_line("LINUX-DMABUF", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\nweston log:\n{}", weston.log()));
    assert!(bound.starts_with("LINUX-DMABUF none"), "{bound}");
    let line = client
        .wait_line("SWAPCHAIN", Duration::from_secs(240))
        .unwrap_or_else(|e| panic!("{e}\nweston log:\n{}", weston.log()));
    assert_eq!(field(&line, "provider"), "wl_shm", "{line}");
    assert!(
        line.contains("decision=Shm: the compositor offers no linux-dmabuf"),
        "the decision says why: {line}"
    );
    assert!(line.contains("not zero-copy"), "{line}");
    assert_eq!(field(&line, "zero_copy"), "0", "{line}");
    let used: usize = field(&line, "used").parse().unwrap();
    assert!(
        (2..=3).contains(&used),
        "buffers released and reused: {line}"
    );
    assert!(
        field(&line, "frames_done").parse::<u32>().unwrap() >= 19,
        "paced by Weston's frame callbacks: {line}"
    );
    // Weston composited exactly what the damage said changed.
    let (w, _, rgba) = weston.screenshot();
    wayheap_tests::pattern::check_swapchain_picture(w, &rgba);
    record_fact("weston 10 headless (pixman): client swapchain", &line);
}
