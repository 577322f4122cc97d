//! In-guest: `wayheap-fuzz` against compositor-demo on vkms (KMS through a libseat session),
//! with real dma-bufs in the fuzzer's fd pool — a buffer from every `/dev/dma_heap` heap and
//! one exported through `/dev/udmabuf` — so that hostile linux-dmabuf requests carry memory the
//! compositor can import and put on planes. A few thousand connections (bounded in time) must
//! leave it alive and answering: no crash, no stall, its fds back where they were. The figures
//! are recorded as facts for RELIABILITY.md.
//!
//! The seed is fixed (`WAYHEAP_FUZZ_SEED` overrides it; `WAYHEAP_FUZZ_SECS` and
//! `WAYHEAP_FUZZ_CONNECTIONS` lengthen the run by hand, the tier passes them to the guest); a
//! finding's replay line and message log are in the failure message.

use std::process::Command;
use std::time::{Duration, Instant};

use wayheap_tests::compositor::Compositor;
use wayheap_tests::fuzz::log_excerpt;
use wayheap_tests::guest::{record_fact, require_guest};

const FUZZ: &str = env!("CARGO_BIN_EXE_wayheap-fuzz");

/// The seed of the run.
const SEED: u64 = 7;
/// Connections to run, unless the time budget ends first.
const CONNECTIONS: u64 = 3000;
/// The time budget: the tier's guest is emulated (about 8 connections a second here), so this
/// buys well over a thousand connections with real dma-bufs for about 3 minutes of the tier.
const BUDGET_SECS: u64 = 180;
/// Fewer connections than this in the budget means the run proves too little.
const MIN_CONNECTIONS: u64 = 800;

/// Runs the fuzzer against `comp` (at most `connections`, at most `secs`, `parallel` at once)
/// and returns its JSON summary.
fn fuzz(
    comp: &Compositor,
    seed: u64,
    connections: u64,
    secs: u64,
    parallel: u64,
) -> serde_json::Value {
    let out = Command::new(FUZZ)
        .args(["--seed", &seed.to_string()])
        .args(["--parallel", &parallel.to_string()])
        .args(["--connections", &connections.to_string()])
        .args(["--duration", &secs.to_string()])
        .args(["--messages-per-connection", "48"])
        // The guest is emulated: a compositor busy on vkms may take seconds, not milliseconds.
        .args(["--stall-timeout", "10"])
        .args(["--pid", &comp.pid().to_string()])
        .args(["--dmabufs", "require", "--json", "--quiet"])
        .env("XDG_RUNTIME_DIR", &comp.runtime)
        .env("WAYLAND_DISPLAY", &comp.socket)
        .output()
        .expect("running wayheap-fuzz");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let s: serde_json::Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON summary ({}); stderr:\n{stderr}", out.status));
    assert!(
        s["crashes"] == 0 && s["stalls"] == 0 && s["probe_stalls"] == 0,
        "the compositor crashed or stalled; findings (with replay lines):\n{}\n\
         compositor log:\n{}",
        serde_json::to_string_pretty(&s["findings"]).unwrap_or_default(),
        log_excerpt(&comp.log())
    );
    assert!(out.status.success(), "{}; stderr:\n{stderr}", out.status);
    s
}

/// The compositor's open fds once they are back to `baseline` (at most 20 s: a plane lets go
/// of a departed client's buffer at its next flip).
fn fds_settled(pid: u32, baseline: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count()) as u64;
        if n <= baseline || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `$name` as a number, else `default`.
fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn a_hostile_client_cannot_take_the_kms_compositor_down() {
    require_guest();
    let seed = env_or("WAYHEAP_FUZZ_SEED", SEED);
    let connections = env_or("WAYHEAP_FUZZ_CONNECTIONS", CONNECTIONS);
    let secs = env_or("WAYHEAP_FUZZ_SECS", BUDGET_SECS);
    let mut comp = Compositor::start_kms("fuzz", &[]);
    // A warm-up (another seed): what the compositor makes once and keeps (its renderer's
    // state, the planes' first framebuffers) is then in the main run's baseline.
    let warm = fuzz(&comp, seed ^ 0xffff, 100, 10, 1);
    println!("warm-up: {}", warm["line"].as_str().unwrap_or_default());

    let s = fuzz(&comp, seed, connections, secs, 1);
    let line = s["line"].as_str().unwrap_or_default().to_owned();
    println!("KMS (vkms), {line}");
    println!("fd pool: {}", s["fd_pool"]);
    record_fact("fuzz on KMS (vkms)", &line);
    record_fact("fuzz fd pool", &s["fd_pool"]);

    let pool: Vec<&str> = s["fd_pool"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect();
    for kind in ["dmabuf-system", "udmabuf"] {
        assert!(
            pool.contains(&kind),
            "no {kind} in the fd pool {pool:?}: {}",
            s["dmabuf_problems"]
        );
    }
    assert!(
        pool.iter().filter(|l| l.starts_with("dmabuf-")).count() >= 2,
        "the CMA heap's buffer is missing from the fd pool {pool:?}: {}",
        s["dmabuf_problems"]
    );
    let ran = s["connections"].as_u64().unwrap_or(0);
    assert!(
        ran >= MIN_CONNECTIONS.min(connections),
        "only {ran} connections in {secs} s: {line}"
    );
    assert_eq!(s["unknown_globals"], serde_json::json!([]), "{line}");
    for g in [
        "zwp_linux_dmabuf_v1",
        "zwp_linux_buffer_params_v1",
        "wl_surface",
    ] {
        assert!(
            s["interfaces"][g].as_u64().unwrap_or(0) > 0,
            "no request reached {g}: {}",
            s["interfaces"]
        );
    }
    let start = s["fd_start"].as_u64().expect("fd counts (--pid)");
    let end = fds_settled(comp.pid(), start);
    assert!(
        end <= start,
        "the compositor holds {end} fds, {start} before the run: {line}"
    );
    // Alive at the end; the exit status of a stop is seatd-launch's (SIGTERM), not the
    // compositor's, so it says nothing.
    let alive = comp.alive();
    let log_path = comp.runtime.join("compositor.log");
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    assert!(alive, "the compositor died; log:\n{}", log_excerpt(&log));
    comp.stop();
}

/// Several hostile clients at once, on KMS with real dma-bufs: what they do to each other
/// through the compositor (seat focus moving between their windows, selections, planes shared
/// among their surfaces, per-client heap quotas) must leave it alive, answering, and holding
/// no fd once they are gone.
#[test]
fn hostile_clients_at_once_cannot_take_the_kms_compositor_down() {
    require_guest();
    let seed = env_or("WAYHEAP_FUZZ_SEED", SEED) ^ 0x5a5a;
    let mut comp = Compositor::start_kms("fuzz-parallel", &[]);
    let warm = fuzz(&comp, seed ^ 0xffff, 100, 10, 1);
    println!("warm-up: {}", warm["line"].as_str().unwrap_or_default());
    let s = fuzz(&comp, seed, 2000, 60, 4);
    let line = s["line"].as_str().unwrap_or_default().to_owned();
    println!("KMS (vkms), 4 at once, {line}");
    record_fact("fuzz on KMS, 4 connections at once", &line);
    let ran = s["connections"].as_u64().unwrap_or(0);
    assert!(ran >= 200, "only {ran} connections in 60 s: {line}");
    let start = s["fd_start"].as_u64().expect("fd counts (--pid)");
    let end = fds_settled(comp.pid(), start);
    assert!(
        end <= start,
        "the compositor holds {end} fds, {start} before the run: {line}"
    );
    assert!(
        comp.alive(),
        "the compositor died; log:\n{}",
        log_excerpt(&comp.log())
    );
    comp.stop();
}
