//! The GStreamer plugin on the host, through Debian's own tools: `gst-inspect-1.0` lists
//! `wayheapalloc` with its documented properties, a pipeline whose policy has no provider here
//! warns on the bus and still runs (upstream's own memory), and a format without a DRM layout
//! fails to negotiate instead of crashing. The dma-buf path itself runs in the VM tier
//! (`tests/guest/gst.rs`).

use std::process::Command;
use std::time::Duration;

fn gst(tool: &str, args: &[&str]) -> (bool, String) {
    gst_with_env(tool, args, &[])
}

/// A registry file of its own for each run (the tests run in parallel).
fn private_registry() -> std::path::PathBuf {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "wayheap-gst-registry-{}-{run}.bin",
        std::process::id()
    ))
}

/// Runs a GStreamer tool with the plugin on its path, `env` added; its success and output.
fn gst_with_env(tool: &str, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> (bool, String) {
    let dir = wayheap_tests::vm::build_gst_plugin().expect("building the plugin");
    let registry = private_registry();
    let out = Command::new(tool)
        .args(args)
        .env("GST_PLUGIN_PATH", &dir)
        .env("GST_REGISTRY", &registry)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("running {tool}: {e}"));
    let _ = std::fs::remove_file(&registry);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn gst_inspect_lists_wayheapalloc_and_its_properties() {
    let (ok, text) = gst("gst-inspect-1.0", &["wayheapalloc"]);
    assert!(ok, "{text}");
    for needle in [
        "wayheap dma-buf allocator",
        "usage",
        "The wayheap policy's usage",
        "policy",
        "min-buffers",
        "provider",
        "NV12",
        "BGRx",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
}

#[test]
fn without_a_provider_the_pipeline_warns_and_runs_on_upstreams_memory() {
    let policy = std::env::temp_dir().join(format!("wayheap-gst-policy-{}", std::process::id()));
    std::fs::write(&policy, "frames no-such-heap\n").unwrap();
    let policy_arg = format!("policy={}", policy.display());
    let (ok, text) = gst(
        "gst-launch-1.0",
        &[
            "videotestsrc",
            "num-buffers=10",
            "!",
            "video/x-raw,format=BGRx,width=64,height=48",
            "!",
            "wayheapalloc",
            "usage=frames",
            &policy_arg,
            "!",
            "fakesink",
        ],
    );
    std::fs::remove_file(&policy).unwrap();
    assert!(ok, "the pipeline should still run:\n{text}");
    assert!(
        text.contains("no dma-buf for usage frames")
            && text.contains("no-such-heap: absent")
            && text.contains("copies follow"),
        "the warning says why and what follows:\n{text}"
    );
    assert!(text.contains("Got EOS"), "{text}");
}

#[test]
fn a_format_without_a_drm_layout_fails_to_negotiate_cleanly() {
    let (ok, text) = gst(
        "gst-launch-1.0",
        &[
            "videotestsrc",
            "num-buffers=3",
            "!",
            "video/x-raw,format=RGB,width=64,height=48",
            "!",
            "wayheapalloc",
            "!",
            "fakesink",
        ],
    );
    assert!(!ok, "{text}");
    assert!(
        text.contains("not-negotiated") || text.contains("could not link"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn gst_inspect_lists_wayheapsink_and_its_counters() {
    let (ok, text) = gst("gst-inspect-1.0", &["wayheapsink"]);
    assert!(ok, "{text}");
    for needle in [
        "wayheap Wayland video sink",
        "frames-presented",
        "zero-copy-frames",
        "imports",
        "copies",
        "decision",
        "usage",
        "provider",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
}

#[test]
fn wayheapsink_without_a_compositor_says_so() {
    let dir = std::env::temp_dir().join(format!("wayheap-gst-nodisplay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ok, text) = gst_with_env(
        "gst-launch-1.0",
        &["videotestsrc", "num-buffers=3", "!", "wayheapsink"],
        &[
            ("XDG_RUNTIME_DIR", dir.as_os_str()),
            ("WAYLAND_DISPLAY", "wayland-none".as_ref()),
        ],
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!ok, "{text}");
    assert!(text.contains("no Wayland compositor"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn wayheapsink_falls_back_to_wl_shm_with_a_warning_where_no_dma_buf_can_be_had() {
    // The host has no heap and no udmabuf: compositor-demo (headless, pixman) offers
    // linux-dmabuf, but the sink can allocate no dma-buf, so it copies into wl_shm and says so.
    let comp = wayheap_tests::compositor::Compositor::start_headless("gst-shm-fallback", "pixman");
    let plugins = wayheap_tests::vm::build_gst_plugin().expect("building the plugin");
    let registry = private_registry();
    let client = comp.client_with_env(
        "/usr/bin/gst-launch-1.0".as_ref(),
        &[
            "-v",
            "videotestsrc",
            "is-live=true",
            "pattern=solid-color",
            "foreground-color=0xff00ff00",
            "!",
            "video/x-raw,format=BGRx,width=160,height=120,framerate=30/1",
            "!",
            "wayheapsink",
        ],
        &[
            ("GST_PLUGIN_PATH", plugins.as_os_str()),
            ("GST_REGISTRY", registry.as_os_str()),
        ],
    );
    // The headless backend sends no presentation feedback: the copies are what is counted.
    let copies = |l: &str| -> Option<u64> { l.split("copies = ").nth(1)?.trim().parse().ok() };
    // gst-launch prints the bus's warning on stdout, before the counters.
    let warning = std::cell::RefCell::new(None::<String>);
    let line = client
        .wait_line_where(
            |l| {
                if l.contains("copied into a wl_shm buffer") {
                    *warning.borrow_mut() = Some(l.to_owned());
                }
                copies(l).is_some_and(|n| n >= 10)
            },
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{e}\ngst-launch:\n{}", client.stderr()));
    let (w, h, rgba) = comp.screenshot();
    let green = wayheap_tests::pattern::count_colour(&rgba, 0xff00ff00, 15);
    drop(client);
    let _ = std::fs::remove_file(&registry);
    assert!(
        green >= 160 * 120 * 9 / 10,
        "{green} green pixels of {w}x{h}: videotestsrc's frame should be shown ({line})"
    );
    let warning = warning.into_inner().expect("a warning on the bus");
    assert!(
        warning.contains("copied into a wl_shm buffer, not zero-copy")
            && warning.contains("no dma-buf for usage")
            && warning.contains("udmabuf: absent"),
        "the warning says what happens and why: {warning}"
    );
}
