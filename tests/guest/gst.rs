//! In-guest: GStreamer pipelines from Debian's packages (videotestsrc, waylandsink 1.22) with
//! the project's plugin, against compositor-demo on vkms.
//!
//! `videotestsrc ! waylandsink` alone hands the compositor wl_shm copies; with `wayheapalloc`
//! in between, videotestsrc draws into the plugin's dma-bufs and waylandsink submits them through
//! linux-dmabuf, so the video surface goes on a plane. compositor-demo runs with
//! `--no-shm-scanout`, so that only a dma-buf can reach a plane: the placement tells the two apart.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use wayheap_tests::compositor::{Client, Compositor};
use wayheap_tests::guest::{cma_heap_name, record_fact, require_guest, video_node};
use wayheap_tests::pattern::count_colour;

fn plugin_dir() -> PathBuf {
    PathBuf::from(
        std::env::var_os(wayheap_tests::vm::GST_PLUGIN_DIR_ENV)
            .expect("the VM tier passes the plugin's directory"),
    )
}

/// `gst-launch-1.0` with `pipeline` (words), the plugin on the path and a private registry.
fn gst_launch(comp: &Compositor, tag: &str, pipeline: &[&str]) -> Client {
    gst_launch_with(comp, tag, pipeline, &[])
}

/// [`gst_launch`] with more environment.
fn gst_launch_with(
    comp: &Compositor,
    tag: &str,
    pipeline: &[&str],
    env: &[(&str, &OsStr)],
) -> Client {
    let registry = std::env::temp_dir().join(format!("gst-registry-{tag}.bin"));
    let plugins = plugin_dir();
    let mut all = vec![
        ("GST_PLUGIN_PATH", plugins.as_os_str()),
        ("GST_REGISTRY", registry.as_os_str()),
        ("GST_DEBUG", OsStr::new("wayheap*:4,waylandsink:4")),
    ];
    all.extend_from_slice(env);
    comp.client_with_env("/usr/bin/gst-launch-1.0".as_ref(), pipeline, &all)
}

/// The planes the compositor reports for its surfaces, once frames flow.
fn planes_once_shown(comp: &Compositor) -> Vec<(String, Option<String>)> {
    let state = comp.wait_state(Duration::from_secs(180), |s| {
        s["surfaces"]
            .as_object()
            .is_some_and(|m| m.values().any(|p| p["plane"] != "hidden"))
            && s["frames"].as_u64().is_some_and(|f| f > 10)
    });
    state["surfaces"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| {
            (
                p["plane"].as_str().unwrap_or("").to_owned(),
                p["reason"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// Whether a surface is on a plane (primary or overlay), from [`planes_once_shown`].
fn on_a_plane(planes: &[(String, Option<String>)]) -> bool {
    planes.iter().any(|(p, _)| p == "overlay" || p == "primary")
}

/// The sink's ZERO_COPY count in a `gst-launch-1.0 -v` line (deep-notify of
/// `zero-copy-frames`), if the line is one.
fn zero_copy_frames(line: &str) -> Option<u64> {
    line.split("zero-copy-frames = ")
        .nth(1)?
        .trim()
        .parse()
        .ok()
}

const SOURCE: &[&str] = &[
    "videotestsrc",
    "is-live=true",
    "pattern=solid-color",
    "foreground-color=0xffff0000",
    "!",
    "video/x-raw,format=BGRx,width=320,height=240,framerate=30/1",
    "!",
];

fn kms(tag: &str) -> Compositor {
    Compositor::start_kms(tag, &["--no-shm-scanout"])
}

#[test]
fn wayheapalloc_puts_videotestsrc_frames_on_a_plane_where_waylandsink_alone_copies() {
    require_guest();
    // Without the plugin: wl_shm, composited.
    let comp = kms("gst-shm");
    let pipeline: Vec<&str> = SOURCE.iter().copied().chain(["waylandsink"]).collect();
    let client = gst_launch(&comp, "shm", &pipeline);
    let alone = planes_once_shown(&comp);
    assert!(
        alone.iter().all(|(p, _)| p != "overlay" && p != "primary"),
        "waylandsink's wl_shm buffers cannot reach a plane with --no-shm-scanout: {alone:?}"
    );
    drop(client);
    comp.stop();

    // With the plugin: the same frames in dma-bufs, on a plane.
    let comp = kms("gst-dmabuf");
    let pipeline: Vec<&str> = SOURCE
        .iter()
        .copied()
        .chain(["wayheapalloc", "usage=scanout", "!", "waylandsink"])
        .collect();
    let client = gst_launch(&comp, "dmabuf", &pipeline);
    let with = planes_once_shown(&comp);
    assert!(
        on_a_plane(&with),
        "videotestsrc ! wayheapalloc ! waylandsink should put the video on a plane: {with:?}\n\
         gst-launch:\n{}\ncompositor:\n{}",
        client.stderr(),
        comp.log()
    );
    // The picture is videotestsrc's: a red 320x240 area (writeback capture).
    let (w, h, rgba) = comp.screenshot();
    let red = count_colour(&rgba, 0xffff0000, 15);
    assert!(
        red >= 320 * 240 * 9 / 10,
        "{red} red pixels of {w}x{h}; expected videotestsrc's 320x240 red frame"
    );
    record_fact(
        "gstreamer",
        format!(
            "videotestsrc ! waylandsink: {alone:?}; with wayheapalloc: {with:?}, {red} red pixels"
        ),
    );
    drop(client);
}

#[test]
fn wayheapsink_shows_videotestsrc_zero_copy_on_a_plane() {
    require_guest();
    let comp = kms("gst-sink");
    // Blue: videotestsrc's foreground-color is ARGB.
    let pipeline = [
        "-v",
        "-m",
        "videotestsrc",
        "is-live=true",
        "pattern=solid-color",
        "foreground-color=0xff0000ff",
        "!",
        "video/x-raw,format=BGRx,width=320,height=240,framerate=30/1",
        "!",
        "wayheapsink",
    ];
    let client = gst_launch(&comp, "sink", &pipeline);
    let planes = planes_once_shown(&comp);
    assert!(
        on_a_plane(&planes),
        "wayheapsink's surface should be on a plane: {planes:?}\ngst-launch:\n{}\ncompositor:\n{}",
        client.stderr(),
        comp.log()
    );
    // Frames presented ZERO_COPY; and once the surface is on a plane its feedback has the
    // scan-out tranche, so the sink asks upstream to renegotiate and the new pool is the scanout
    // usage's, from the heap the compositor's hints name first: the system heap, which vkms's
    // planes read (the policy alone would have put CMA first). gst-launch -v prints each as it
    // happens, in whatever order.
    let seen = std::cell::RefCell::new((None::<String>, None::<String>, None::<String>));
    let placement = std::cell::RefCell::new(None::<String>);
    let cma = "provider = system".to_owned();
    client
        .wait_line_where(
            |l| {
                let mut s = seen.borrow_mut();
                if zero_copy_frames(l).is_some_and(|n| n > 0) {
                    s.0 = Some(l.to_owned());
                }
                if l.contains("decision = scanout") && l.contains("heap hint: open system") {
                    s.1 = Some(l.to_owned());
                }
                if l.contains(&cma) {
                    s.2 = Some(l.to_owned());
                }
                // gst-launch -m prints the sink's placement message.
                if l.contains("wayheapsink-placement") && l.contains("zero-copy=(boolean)true") {
                    *placement.borrow_mut() = Some(l.to_owned());
                }
                s.0.is_some() && s.1.is_some() && s.2.is_some() && placement.borrow().is_some()
            },
            Duration::from_secs(180),
        )
        .unwrap_or_else(|e| {
            panic!(
                "expected ZERO_COPY frames, decision = scanout with the system heap hinted, {cma} and a placement message: {e}\ngst-launch:\n{}",
                client.stderr()
            )
        });
    let (line, decision, provider) = seen.into_inner();
    let (line, decision, provider) = (line.unwrap(), decision.unwrap(), provider.unwrap());
    let (w, h, rgba) = comp.screenshot();
    let blue = count_colour(&rgba, 0xff0000ff, 15);
    assert!(
        blue >= 320 * 240 * 9 / 10,
        "{blue} blue pixels of {w}x{h}; expected videotestsrc's 320x240 blue frame"
    );
    record_fact(
        "wayheapsink",
        format!(
            "{planes:?}; {line}; {decision}; {provider}; {}; {blue} blue pixels",
            placement.borrow().as_deref().unwrap_or_default()
        ),
    );
    drop(client);
}

#[test]
fn v4l2src_captures_into_the_sinks_cma_buffers_and_they_reach_a_plane() {
    require_guest();
    let comp = kms("gst-v4l2");
    // The vivid instance with allocators=1 (dma-contig): a camera that needs contiguous memory.
    let node = video_node("vivid-001-vid-cap");
    wayheap::v4l2::Camera::open(&node)
        .and_then(|c| c.set_format(wayheap::v4l2::PixelFormat::XBGR32, 640, 480))
        .expect("setting vivid to 640x480 XR24");
    let device = format!("device={node}");
    let pipeline = [
        "-v",
        "v4l2src",
        &device,
        "io-mode=dmabuf-import",
        "!",
        "video/x-raw,format=BGRx,width=640,height=480",
        "!",
        // The camera needs contiguous memory before the compositor has seen the surface.
        "wayheapsink",
        "usage=camera",
    ];
    let client = gst_launch(&comp, "v4l2", &pipeline);
    // The sink's pool is the camera usage's: CMA first, which this camera needs.
    let provider = client
        .wait_line_where(|l| l.contains("provider = "), Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}\ngst-launch:\n{}", client.stderr()));
    assert!(
        provider.contains(&format!("provider = {}", cma_heap_name())),
        "{provider}"
    );
    let planes = planes_once_shown(&comp);
    assert!(
        on_a_plane(&planes),
        "vivid's frames in the sink's buffers should be on a plane: {planes:?}\ngst-launch:\n{}",
        client.stderr()
    );
    let line = client
        .wait_line_where(
            |l| zero_copy_frames(l).is_some_and(|n| n > 0),
            Duration::from_secs(120),
        )
        .unwrap_or_else(|e| {
            panic!(
                "no frame presented ZERO_COPY: {e}\ngst-launch:\n{}",
                client.stderr()
            )
        });
    record_fact(
        "v4l2src ! wayheapsink",
        format!("{provider}; {planes:?}; {line}"),
    );
    drop(client);
}

/// NV12, what decoders and cameras give: the sink's pool of NV12 dma-bufs (two planes in one
/// buffer, the video meta's offsets) reaches a plane of compositor-demo, which now takes NV12,
/// and the frames are presented ZERO_COPY with the colour right (the plane converts BT.601
/// limited range, as videotestsrc wrote it).
#[test]
fn wayheapsink_shows_nv12_zero_copy_on_a_plane() {
    require_guest();
    let comp = kms("gst-sink-nv12");
    let pipeline = [
        "-v",
        "videotestsrc",
        "is-live=true",
        "pattern=solid-color",
        "foreground-color=0xff0000ff",
        "!",
        "video/x-raw,format=NV12,width=320,height=240,framerate=30/1",
        "!",
        "wayheapsink",
    ];
    let client = gst_launch(&comp, "sink-nv12", &pipeline);
    let planes = planes_once_shown(&comp);
    assert!(
        on_a_plane(&planes),
        "wayheapsink's NV12 surface should be on a plane: {planes:?}\ngst-launch:\n{}\ncompositor:\n{}",
        client.stderr(),
        comp.log()
    );
    let line = client
        .wait_line_where(
            |l| zero_copy_frames(l).is_some_and(|n| n > 0),
            Duration::from_secs(180),
        )
        .unwrap_or_else(|e| {
            panic!(
                "expected ZERO_COPY NV12 frames: {e}\ngst-launch:\n{}",
                client.stderr()
            )
        });
    let (w, h, rgba) = comp.screenshot();
    // Blue through 8-bit BT.601 limited-range YCbCr and back: within a few codes.
    let blue = count_colour(&rgba, 0xff0000ff, 12);
    assert!(
        blue >= 320 * 240 * 9 / 10,
        "{blue} blue pixels of {w}x{h}; expected videotestsrc's 320x240 blue NV12 frame\ncompositor:\n{}",
        comp.log()
    );
    record_fact(
        "wayheapsink NV12",
        format!("{planes:?}; {line}; {blue} blue pixels"),
    );
    drop(client);
}

/// What a policy written for a display engine with an IOMMU says: the system heap first, for
/// scan-out too.
fn system_first_policy() -> PathBuf {
    let path = wayheap_tests::guest::temp_dir("gst-hints-policy").join("policy");
    std::fs::write(&path, "scanout @system,@cma,udmabuf\n* @system,udmabuf\n").unwrap();
    path
}

/// The same pipeline and policy on a compositor whose planes read only contiguous memory
/// (`--contiguous-scanout`): without heap hints the sink takes the policy's system heap and the
/// video is composited; with them it takes the CMA heap the compositor names, and the video is
/// on a plane, ZERO_COPY.
#[test]
fn heap_hints_choose_the_sinks_memory() {
    require_guest();
    let policy = system_first_policy();
    let env = [("WAYHEAP_POLICY", policy.as_os_str())];
    let pipeline = [
        "-v",
        "videotestsrc",
        "is-live=true",
        "pattern=solid-color",
        "foreground-color=0xff00ff00",
        "!",
        "video/x-raw,format=BGRx,width=320,height=240,framerate=30/1",
        "!",
        "wayheapsink",
    ];
    let wait = |client: &Client, what: &dyn Fn(&str) -> bool| {
        client
            .wait_line_where(what, Duration::from_secs(180))
            .unwrap_or_else(|e| panic!("{e}\ngst-launch:\n{}", client.stderr()))
    };

    // Without hints: the policy's system heap; composited, for want of contiguous memory.
    let comp = Compositor::start_kms(
        "gst-hints-off",
        &[
            "--no-shm-scanout",
            "--contiguous-scanout",
            "--no-heap-hints",
        ],
    );
    let client = gst_launch_with(&comp, "hints-off", &pipeline, &env);
    let provider_off = wait(&client, &|l| l.contains("provider = system"));
    let planes_off = planes_once_shown(&comp);
    assert!(
        !on_a_plane(&planes_off)
            && planes_off
                .iter()
                .any(|(_, r)| r.as_deref().is_some_and(|r| r.contains("contiguous"))),
        "system-heap frames cannot reach a plane that reads contiguous memory: {planes_off:?}"
    );
    drop(client);
    comp.stop();

    // With hints: the CMA heap, a plane, ZERO_COPY.
    let comp = Compositor::start_kms(
        "gst-hints-on",
        &["--no-shm-scanout", "--contiguous-scanout"],
    );
    let client = gst_launch_with(&comp, "hints-on", &pipeline, &env);
    let cma = format!("provider = {}", cma_heap_name());
    let provider_on = wait(&client, &|l| l.contains(&cma));
    let decision = wait(&client, &|l| {
        l.contains("decision = ") && l.contains(&format!("heap hint: open {}", cma_heap_name()))
    });
    let planes_on = planes_once_shown(&comp);
    assert!(
        on_a_plane(&planes_on),
        "the hinted CMA heap's frames should be on a plane: {planes_on:?}\ngst-launch:\n{}\ncompositor:\n{}",
        client.stderr(),
        comp.log()
    );
    let zero_copy = wait(&client, &|l| zero_copy_frames(l).is_some_and(|n| n > 0));
    let (w, h, rgba) = comp.screenshot();
    let green = count_colour(&rgba, 0xff00ff00, 15);
    assert!(
        green >= 320 * 240 * 9 / 10,
        "{green} green pixels of {w}x{h}; expected videotestsrc's 320x240 green frame"
    );
    record_fact(
        "wayheapsink heap hints",
        format!(
            "without: {provider_off}, {planes_off:?}; with: {provider_on}, {decision}, {planes_on:?}, {zero_copy}, {green} green pixels"
        ),
    );
    drop(client);
}

/// A pool buffer a consumer released while its device still reads it (a pending fence on the
/// dma-buf, as a compositor's render job or a display engine leaves) goes back upstream only
/// once that fence signals: before, the producer would draw over a frame still being read.
#[test]
fn a_released_pool_buffer_waits_for_its_readers_fence() {
    require_guest();
    use gst::prelude::*;
    use std::os::fd::BorrowedFd;
    use std::str::FromStr;
    use wayheap::dmabuf::{DmaBuf, DmaBufError, FenceAccess, SyncFile};
    use wayheap_tests::guest::SwSyncTimeline;

    gst::init().unwrap();
    let caps =
        gst::Caps::from_str("video/x-raw,format=BGRx,width=64,height=64,framerate=30/1").unwrap();
    let pool = gstwayheap::pool::WayheapBufferPool::new(
        wayheap::policy::Allocator::from_env().unwrap(),
        "render",
    );
    let mut config = pool.config();
    // One buffer: the second acquire can only be the first buffer again.
    config.set_params(Some(&caps), 64 * 64 * 4, 1, 1);
    pool.set_config(config).unwrap();
    pool.set_active(true).unwrap();
    let first = pool.acquire_buffer(None).unwrap();
    let fd = gstwayheap::pool::dmabuf_fd(&first).expect("a dma-buf");
    // SAFETY: `first` owns the fd and is alive here; it is only duplicated.
    let dup = unsafe { BorrowedFd::borrow_raw(fd) }
        .try_clone_to_owned()
        .unwrap();
    let reader = DmaBuf::import(dup).unwrap();
    let timeline = SwSyncTimeline::new().unwrap();
    let fence = SyncFile::from_fd(timeline.fence(1).unwrap());
    match reader.import_sync_file(&fence, FenceAccess::Read) {
        Err(e @ DmaBufError::Unsupported { .. }) => {
            // Before 6.0 there is no fence to wait on: the buffer goes back at once.
            drop(first);
            let again = pool.acquire_buffer(None).unwrap();
            assert_eq!(gstwayheap::pool::dmabuf_fd(&again), Some(fd));
            record_fact("pool fences", format!("not waited for: {e}"));
            return;
        }
        other => other.unwrap(),
    }
    // The consumer released it: back to the pool, its fence still pending.
    drop(first);
    let (tx, rx) = std::sync::mpsc::channel();
    let waiting = pool.clone();
    let acquirer = std::thread::spawn(move || {
        let buffer = waiting.acquire_buffer(None).unwrap();
        tx.send(gstwayheap::pool::dmabuf_fd(&buffer)).unwrap();
        buffer
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "the buffer went upstream while a reader's fence on it was pending"
    );
    timeline.advance(1).unwrap();
    let got = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the buffer once the fence signalled");
    assert_eq!(got, Some(fd));
    drop(acquirer.join().unwrap());
    pool.set_active(false).unwrap();
    record_fact(
        "pool fences",
        "a released buffer with a pending read fence was held back until it signalled",
    );
}
