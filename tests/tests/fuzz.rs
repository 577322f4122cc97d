//! `wayheap-fuzz` against compositor-demo's headless backend (the debug build: Smithay's debug
//! assertions and Rust's overflow checks are armed): a bounded run of hostile connections must
//! leave it alive and answering — no crash, no stall — having exercised every global it offers.
//!
//! The seed is fixed so that a failure replays (`WAYHEAP_FUZZ_SEED` overrides it, and
//! `WAYHEAP_FUZZ_CONNECTIONS` the number of connections, to explore); the finding's replay line
//! and message log are in the failure message.

use std::process::Command;
use std::time::Duration;

use wayheap_tests::compositor::Compositor;
use wayheap_tests::fuzz::log_excerpt;

const FUZZ: &str = env!("CARGO_BIN_EXE_wayheap-fuzz");

/// The seed of the bounded run.
const SEED: u64 = 15;
/// Connections in the bounded run (a few thousand: about 10 s against the debug build).
const CONNECTIONS: u64 = 3000;

/// compositor-demo's globals: each must have been bound and sent requests.
const GLOBALS: &[&str] = &[
    "wl_compositor",
    "wl_subcompositor",
    "wl_shm",
    "wl_output",
    "wl_seat",
    "xdg_wm_base",
    "zxdg_output_manager_v1",
    "zwp_linux_dmabuf_v1",
    "wp_viewporter",
    "wp_presentation",
    "wp_single_pixel_buffer_manager_v1",
    "wayheap_heap_hints_manager_v1",
];

/// Runs the fuzzer against `comp` (`parallel` connections at once) and returns its JSON
/// summary.
fn fuzz(comp: &Compositor, seed: u64, connections: u64, parallel: u64) -> serde_json::Value {
    // Many connections at once, beside the other tests of this binary: more time to answer
    // before a connection counts as stalled.
    let stall_timeout = if parallel > 1 { "15" } else { "5" };
    let out = Command::new(FUZZ)
        .args(["--seed", &seed.to_string()])
        .args(["--parallel", &parallel.to_string()])
        .args(["--stall-timeout", stall_timeout])
        .args(["--connections", &connections.to_string()])
        .args(["--messages-per-connection", "64"])
        .args(["--pid", &comp.pid().to_string()])
        .args(["--dmabufs", "off", "--json", "--quiet"])
        .env("XDG_RUNTIME_DIR", &comp.runtime)
        .env("WAYLAND_DISPLAY", &comp.socket)
        .output()
        .expect("running wayheap-fuzz");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: serde_json::Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON summary ({}); stderr:\n{stderr}", out.status));
    assert_eq!(
        out.status.success(),
        summary["crashes"] == 0 && summary["stalls"] == 0 && summary["probe_stalls"] == 0,
        "the exit status says what the summary says: {}",
        out.status
    );
    summary
}

#[test]
fn a_hostile_client_cannot_take_the_headless_compositor_down() {
    let env_or = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let seed = env_or("WAYHEAP_FUZZ_SEED", SEED);
    let connections = env_or("WAYHEAP_FUZZ_CONNECTIONS", CONNECTIONS);
    let comp = Compositor::start_headless("fuzz", "pixman");
    let s = fuzz(&comp, seed, connections, 1);
    println!("headless, {}", s["line"].as_str().unwrap_or_default());
    let findings = serde_json::to_string_pretty(&s["findings"]).unwrap_or_default();
    let log = comp.log();
    let tail = log_excerpt(&log);
    assert!(
        s["crashes"] == 0 && s["stalls"] == 0 && s["probe_stalls"] == 0,
        "the compositor crashed or stalled; findings (with replay lines):\n{findings}\n\
         compositor log (end):\n{tail}"
    );
    assert_eq!(s["connections"], connections, "{s}");
    assert_eq!(
        s["unknown_globals"],
        serde_json::json!([]),
        "globals the fuzzer has no description of"
    );
    for g in GLOBALS {
        assert!(
            s["interfaces"][g].as_u64().unwrap_or(0) > 0,
            "no request reached {g}: {}",
            s["interfaces"]
        );
    }
    // Most requests a client of these globals can send went out well-formed at least once.
    let covered = s["requests_covered"].as_u64().unwrap_or(0);
    let known = s["requests_known"].as_u64().unwrap_or(0);
    assert!(
        covered * 10 >= known * 8,
        "only {covered} of {known} requests sent; never: {}",
        s["requests_never_sent"]
    );
    // Every client is gone: the compositor holds the fds it held before (a parked fd or a
    // client's buffer it kept would show here).
    let drift = s["fd_drift"].as_i64().expect("fd counts (--pid)");
    assert!(drift <= 0, "the compositor holds {drift} more fds: {s}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(comp.stop().success(), "log:\n{log}");
}

/// Many hostile clients at once (16 connections on 16 threads): the compositor serves them
/// together, and what one does to the seat or the globals they share must not take it down.
#[test]
fn hostile_clients_at_once_cannot_take_the_headless_compositor_down() {
    let comp = Compositor::start_headless("fuzz-parallel", "pixman");
    let s = fuzz(&comp, SEED ^ 0x5a5a, 4000, 16);
    println!(
        "headless, 16 at once, {}",
        s["line"].as_str().unwrap_or_default()
    );
    assert!(
        s["crashes"] == 0 && s["stalls"] == 0 && s["probe_stalls"] == 0,
        "the compositor crashed or stalled; findings (with replay lines):\n{}\n\
         compositor log (end):\n{}",
        serde_json::to_string_pretty(&s["findings"]).unwrap_or_default(),
        log_excerpt(&comp.log())
    );
    assert_eq!(s["connections"], 4000, "{s}");
    assert_eq!(s["parallel"], 16, "{s}");
    let drift = s["fd_drift"].as_i64().expect("fd counts (--pid)");
    assert!(drift <= 0, "the compositor holds {drift} more fds: {s}");
    let log = comp.log();
    assert!(comp.stop().success(), "log:\n{log}");
}
