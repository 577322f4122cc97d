//! In-guest benchmark: the compositor's CPU per presented frame when every surface is on a plane,
//! against the same scene composited (`--no-planes`), and against the floor — a minimal program
//! that flips the same framebuffers with one atomic commit per frame (`wayheap-flip-floor`).
//!
//! The compositor is the release build (what users run): the debug build's unoptimised Rust
//! would be measured against pixman's optimised C. The floor program is a debug build; its
//! user-space work is one ioctl and one read per frame, the rest is the kernel's.
//!
//! Scene: client-demo's picture source at the output's size (`--scale native`, `--still`: a new
//! buffer every frame, drawn once per buffer; no detector), the
//! video on the primary plane and its overlay subsurface on an overlay plane. CPU is utime +
//! stime of the compositor process (from /proc, as the floor reads its own) over a fixed number
//! of frames. Subject and baselines are interleaved and repeated; the median and the spread are
//! reported. Nothing here asserts a time: the guest CPU is emulated and noisy.
//!
//! The same scene drawn into wl_shm (`client-demo --shm`, as a CPU-drawing toolkit) is measured
//! on planes (its sealed memfd pools exported through udmabuf) against composited
//! (`--no-shm-scanout`: pixman copies every full-damage frame).

use std::time::{Duration, Instant};

use wayheap_tests::compositor::{
    Client, Compositor, client_demo_bin, compositor_demo_release_bin, flip_floor_bin,
    test_client_bin,
};
use wayheap_tests::guest::{record_fact, require_guest};

const SEATD: &[&str] = &["seatd-launch", "--"];
/// Rounds of (planes, composited, floor), interleaved.
const ROUNDS: usize = 3;
/// How many more frames the floor flips than the compositor shows (CPU time is read in clock
/// ticks of 10 ms: a few hundred milliseconds of it need many frames).
const FLOOR_FRAMES_FACTOR: u64 = 5;

/// CPU milliseconds per frame of compositor-demo showing the scene at `w`x`h` for `frames`
/// frames, with planes or composited.
/// How a compositor run is made.
#[derive(Clone, Copy, PartialEq)]
enum Run {
    /// Timed, client buffers on planes.
    Planes,
    /// Timed, everything composited (`--no-planes`).
    Composited,
    /// On planes with `--cpu-profile`: the per-section breakdown (its clock reads would bias
    /// the timed runs).
    Profiled,
}

/// What the client draws into.
#[derive(Clone, Copy, PartialEq)]
enum Memory {
    /// dma-bufs (udmabuf or heaps), client-demo's default.
    Dmabuf,
    /// wl_shm (`--shm`); composited means `--no-shm-scanout`.
    Shm,
}

fn compositor_ms_per_frame(w: u32, h: u32, run: Run, memory: Memory, frames: u64) -> f64 {
    let planes = run != Run::Composited;
    let _ = std::fs::remove_file("/run/seatd.sock");
    let size = format!("{w}x{h}");
    let mut args = vec![
        "--backend",
        "kms",
        "--device",
        "/dev/dri/card0",
        "--mode",
        &size,
    ];
    match (planes, memory) {
        (true, _) => {}
        (false, Memory::Dmabuf) => args.push("--no-planes"),
        (false, Memory::Shm) => args.push("--no-shm-scanout"),
    }
    if run == Run::Profiled {
        args.push("--cpu-profile");
    }
    let tag = format!(
        "bench-{w}-{}{}",
        if planes { "planes" } else { "composited" },
        if memory == Memory::Shm { "-shm" } else { "" }
    );
    let comp = Compositor::start_binary(&compositor_demo_release_bin(), &tag, &args, SEATD, &[]);
    let mut client_args = vec![
        "--image",
        "builtin",
        "--no-detector",
        // Each frame a new buffer, but no drawing: the client's own CPU would otherwise
        // crowd the emulated CPUs (more at 1080p) and inflate what the compositor is
        // charged, which the floor program, running alone, is not.
        "--still",
        "--scale",
        "native",
        "--size",
        &size,
        "--fps",
        "60",
    ];
    if memory == Memory::Shm {
        client_args.push("--shm");
    }
    let client = Client::spawn(
        &comp.runtime,
        &comp.socket,
        &client_demo_bin(),
        &client_args,
    );
    // The scene as intended: video on the primary plane and the overlay on an overlay plane,
    // or both composited.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let p = comp.wait_surfaces(2, Duration::from_secs(240), |p| p != "hidden");
        let want: [&str; 2] = if planes {
            ["primary", "overlay"]
        } else {
            ["composited", "composited"]
        };
        if p[0].0 == want[0] && p[1].0 == want[1] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "scene not as intended ({want:?}): {p:?}\nclient: {}\nlog:\n{}",
            client.stderr(),
            comp.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (cpu0, f0) = comp.cpu_and_frames();
    let (cpu1, f1) = loop {
        let (cpu, f) = comp.cpu_and_frames();
        if f >= f0 + frames {
            break (cpu, f);
        }
    };
    if run == Run::Profiled {
        // Where the CPU went, per section of the frame path (whole run, per rendered frame).
        let state = comp.state();
        let total = state["frames"].as_u64().unwrap_or(1).max(1);
        let sections: Vec<String> = state["cpu_us"]
            .as_object()
            .expect("--cpu-profile puts cpu_us in the state")
            .iter()
            .map(|(name, v)| format!("{name} {}", v["us"].as_u64().unwrap_or(0) / total))
            .collect();
        record_fact(
            &format!("{tag} CPU µs per frame by section"),
            sections.join(", "),
        );
    }
    drop(client);
    drop(comp);
    ticks_ms(cpu1 - cpu0) / (f1 - f0) as f64
}

/// CPU milliseconds per frame of the floor program flipping the same scene.
fn floor_ms_per_frame(w: u32, h: u32, frames: u64) -> f64 {
    let out = std::process::Command::new(flip_floor_bin())
        .arg(format!("{w}x{h}"))
        .arg(frames.to_string())
        .output()
        .expect("running wayheap-flip-floor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wayheap-flip-floor failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ticks: u64 = stdout
        .split_whitespace()
        .find_map(|f| f.strip_prefix("cpu_ticks="))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no cpu_ticks= in {stdout:?}"));
    ticks_ms(ticks) / frames as f64
}

fn ticks_ms(ticks: u64) -> f64 {
    ticks as f64 * 1000.0 / rustix::param::clock_ticks_per_second() as f64
}

/// Median and (min, max) of `v`.
fn median_spread(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn bench_mode(w: u32, h: u32, frames: u64) {
    let (mut planes, mut composited, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        planes.push(compositor_ms_per_frame(
            w,
            h,
            Run::Planes,
            Memory::Dmabuf,
            frames,
        ));
        composited.push(compositor_ms_per_frame(
            w,
            h,
            Run::Composited,
            Memory::Dmabuf,
            frames,
        ));
        // The floor is cheap: more frames, so its handful of clock ticks is not its resolution.
        floor.push(floor_ms_per_frame(w, h, frames * FLOOR_FRAMES_FACTOR));
    }
    let ratios =
        |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(a, b)| a / b).collect() };
    let mut vs_composited = ratios(&planes, &composited);
    let mut vs_floor = ratios(&planes, &floor);
    let (p, p_lo, p_hi) = median_spread(&mut planes);
    let (c, c_lo, c_hi) = median_spread(&mut composited);
    let (f, f_lo, f_hi) = median_spread(&mut floor);
    let (rc, rc_lo, rc_hi) = median_spread(&mut vs_composited);
    let (rf, rf_lo, rf_hi) = median_spread(&mut vs_floor);
    record_fact(
        &format!("bench compositor CPU per frame {w}x{h}, planes vs --no-planes"),
        format!(
            "{p:.2} ms ({p_lo:.2}-{p_hi:.2}) vs {c:.2} ms ({c_lo:.2}-{c_hi:.2}): ratio {rc:.3} \
             ({rc_lo:.3}-{rc_hi:.3}), {ROUNDS} interleaved rounds of {frames} frames \
             (the floor {FLOOR_FRAMES_FACTOR}x as many)"
        ),
    );
    record_fact(
        &format!("bench compositor CPU per frame {w}x{h}, planes vs flip floor"),
        format!(
            "{p:.2} ms vs floor {f:.2} ms ({f_lo:.2}-{f_hi:.2}): ratio {rf:.2} ({rf_lo:.2}-{rf_hi:.2})"
        ),
    );
    compositor_ms_per_frame(w, h, Run::Profiled, Memory::Dmabuf, frames);
}

/// Runs `subject` and `baseline` (each returns ms per frame) in [`ROUNDS`] interleaved rounds
/// and records their medians, spreads and ratio as the fact `name`.
fn interleaved(
    name: &str,
    frames: u64,
    mut subject: impl FnMut() -> f64,
    mut baseline: impl FnMut() -> f64,
) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        a.push(subject());
        b.push(baseline());
    }
    let mut ratio: Vec<f64> = a.iter().zip(&b).map(|(a, b)| a / b).collect();
    let (p, p_lo, p_hi) = median_spread(&mut a);
    let (c, c_lo, c_hi) = median_spread(&mut b);
    let (r, r_lo, r_hi) = median_spread(&mut ratio);
    record_fact(
        name,
        format!(
            "{p:.2} ms ({p_lo:.2}-{p_hi:.2}) vs {c:.2} ms ({c_lo:.2}-{c_hi:.2}): ratio {r:.3} \
             ({r_lo:.3}-{r_hi:.3}), {ROUNDS} interleaved rounds of {frames} frames"
        ),
    );
}

/// The wl_shm scene: on planes (udmabuf exports of its pools) vs composited, interleaved.
fn bench_shm(w: u32, h: u32, frames: u64) {
    interleaved(
        &format!("bench compositor CPU per frame {w}x{h} wl_shm, planes vs --no-shm-scanout"),
        frames,
        || compositor_ms_per_frame(w, h, Run::Planes, Memory::Shm, frames),
        || compositor_ms_per_frame(w, h, Run::Composited, Memory::Shm, frames),
    );
}

#[test]
fn compositor_cpu_per_frame_on_planes_vs_composited_vs_the_flip_floor() {
    require_guest();
    bench_mode(640, 480, 60);
    bench_mode(1920, 1080, 60);
}

/// CPU milliseconds per frame of compositor-demo (release) at 1920x1080 showing a `w`x`h` NV12
/// subsurface that the test client attaches again, all damaged, at every frame callback: on a
/// plane, or composited through wayheap's CPU conversion (`--no-planes`).
fn nv12_ms_per_frame(w: u32, h: u32, planes: bool, frames: u64) -> f64 {
    let _ = std::fs::remove_file("/run/seatd.sock");
    let mut args = vec![
        "--backend",
        "kms",
        "--device",
        "/dev/dri/card0",
        "--mode",
        "1920x1080",
    ];
    if !planes {
        args.push("--no-planes");
    }
    let tag = format!(
        "bench-nv12-{w}-{}",
        if planes { "planes" } else { "composited" }
    );
    let comp = Compositor::start_binary(&compositor_demo_release_bin(), &tag, &args, SEATD, &[]);
    let sub = format!("system:{w}x{h}@0,0");
    let client = Client::spawn(
        &comp.runtime,
        &comp.socket,
        &test_client_bin(),
        &[
            "--seconds",
            "900",
            "--sub",
            &sub,
            "--sub-format",
            "NV12",
            "--recommit",
        ],
    );
    // At the output's size the subsurface hides the main surface: wait for the subsurface.
    let deadline = Instant::now() + Duration::from_secs(240);
    let p = loop {
        let p = comp.wait_surfaces(2, Duration::from_secs(240), |_| true);
        if p[1].0 != "hidden" || Instant::now() > deadline {
            break p;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let on_plane = p[1].0 == "overlay" || p[1].0 == "primary";
    assert_eq!(
        on_plane,
        planes,
        "NV12 subsurface placement {p:?}\nclient: {}\nlog:\n{}",
        client.stderr(),
        comp.log()
    );
    let (cpu0, f0) = comp.cpu_and_frames();
    let (cpu1, f1) = loop {
        let (cpu, f) = comp.cpu_and_frames();
        if f >= f0 + frames {
            break (cpu, f);
        }
    };
    drop(client);
    drop(comp);
    ticks_ms(cpu1 - cpu0) / (f1 - f0) as f64
}

/// NV12 on a plane vs converted and composited, interleaved.
fn bench_nv12(w: u32, h: u32, frames: u64) {
    interleaved(
        &format!("bench compositor CPU per frame NV12 {w}x{h}, plane vs CPU conversion"),
        frames,
        || nv12_ms_per_frame(w, h, true, frames),
        || nv12_ms_per_frame(w, h, false, frames),
    );
}

#[test]
fn nv12_cpu_per_frame_on_a_plane_vs_converted_and_composited() {
    require_guest();
    bench_nv12(640, 480, 60);
    bench_nv12(1920, 1080, 30);
}

#[test]
fn shm_client_cpu_per_frame_on_planes_vs_composited() {
    require_guest();
    bench_shm(1024, 768, 60);
}
