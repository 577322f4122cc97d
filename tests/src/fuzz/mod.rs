//! `wayheap-fuzz`: the project's structure-aware Wayland fuzzer — a hostile client that must
//! not be able to take the compositor down (issue 15).
//!
//! It speaks the wire protocol itself on a raw Unix socket, from the interface descriptions
//! wayland-scanner generates from the protocol XMLs ([`catalog`]): core Wayland, xdg-shell,
//! xdg-output, linux-dmabuf, viewporter, presentation-time, single-pixel-buffer and wayheap's
//! heap hints. Each connection binds globals parsed from `wl_registry.global`, tracks its live
//! objects ([`world`]), plays request sequences that reach deep states ([`recipes`]), sends
//! random requests with arguments of the right shape ([`generator`], [`values`]) and mutates some
//! into malformed ones ([`mutate`]), passing fds from a pool of memfds, pipes, eventfds,
//! `/dev/null`, its own socket and real dma-bufs ([`fds`]).
//!
//! Detection ([`mod@run`], [`monitor`]): a **crash** is the compositor's process gone (`--pid`) or
//! its socket refusing connections; a **stall** is a connection whose final `wl_display.sync`
//! gets neither its `done`, a `wl_display.error`, nor a close within the stall timeout, or a
//! bystander probe (a fresh get_registry + sync round trip, every `--probe-every`
//! connections) left unanswered. The compositor's fd count and resident memory are read
//! before and after the run.
//!
//! Every connection's seed derives from the run's seed and its index ([`rng`]), so a finding
//! prints a replay line, `wayheap-fuzz --seed S --only-connection I`, and the connection's
//! message log.
//!
//! ```text
//! # against a running compositor, 1000 connections:
//! WAYLAND_DISPLAY=wayland-1 wayheap-fuzz --seed 1 --connections 1000 --pid $(pidof compositor-demo)
//! # long mode (nightly): an hour, a fresh seed, the summary as JSON
//! wayheap-fuzz --duration 3600 --pid PID --json
//! # replay a finding
//! wayheap-fuzz --seed 1 --only-connection 417 --log
//! ```
//!
//! The summary line (or `--json`) gives connections, messages, protocol errors, disconnects,
//! crashes, stalls, fd and RSS drift and elapsed time; the exit status is 1 on any crash or
//! stall.

pub mod catalog;
pub mod config;
pub mod conn;
pub mod fds;
pub mod generator;
pub mod monitor;
pub mod mutate;
pub mod recipes;
pub mod rng;
pub mod run;
pub mod session;
pub mod values;
pub mod wire;
pub mod world;

pub use config::Config;
pub use run::{Finding, FindingKind, Summary, run};

/// What a test shows of a compositor's log when the fuzzer found something: its panic and
/// backtrace when it panicked, else the log's last lines.
pub fn log_excerpt(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let from = lines
        .iter()
        .position(|l| l.contains("panicked at"))
        .unwrap_or(lines.len().saturating_sub(40));
    lines[from..lines.len().min(from + 40)].join("\n")
}
