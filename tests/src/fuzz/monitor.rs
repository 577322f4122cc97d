//! Watching the compositor: is its process alive, how many fds and how much memory it holds,
//! and does a well-behaved bystander still get an answer.

use std::path::Path;
use std::time::{Duration, Instant};

use super::catalog;
use super::conn::{Conn, Received, Sent};
use super::wire::{self, Arg, Request};

/// The compositor's process, read through /proc.
#[derive(Debug, Clone, Copy)]
pub struct Process {
    /// Its pid.
    pub pid: i32,
}

/// A snapshot of the compositor's resources.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Open fds (`/proc/PID/fd` entries).
    pub fds: Option<usize>,
    /// Resident memory in KiB (`VmRSS`).
    pub rss_kib: Option<u64>,
}

impl Process {
    /// True while the process exists and is not a zombie.
    pub fn alive(&self) -> bool {
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            Err(_) => false,
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        }
    }

    /// Its fds and resident memory now.
    pub fn usage(&self) -> Usage {
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .ok()
            .map(|d| d.count());
        let rss_kib = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            });
        Usage { fds, rss_kib }
    }

    /// Its usage once the fd count has held still for a moment (the compositor closes a
    /// departed client's fds on its next loop iteration), at most `within`.
    pub fn settled_usage(&self, within: Duration) -> Usage {
        let deadline = Instant::now() + within;
        let mut last = self.usage();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = self.usage();
            if now.fds == last.fds || Instant::now() >= deadline {
                return now;
            }
            last = now;
        }
    }
}

/// What a bystander probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The round trip completed, in this long.
    Answered(Duration),
    /// The socket refused the connection (the compositor is gone).
    ConnectFailed(String),
    /// The compositor closed the probe's connection.
    Closed,
    /// No answer within the timeout.
    NoAnswer,
}

/// A well-behaved client: get_registry and a sync round trip on a fresh connection.
pub fn probe(socket: &Path, timeout: Duration) -> Probe {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut conn = match Conn::connect(socket) {
        Ok(c) => c,
        Err(e) => return Probe::ConnectFailed(e.to_string()),
    };
    let (get_registry, _) = catalog::request(catalog::DISPLAY, "get_registry").expect("request");
    let (sync, _) = catalog::request(catalog::DISPLAY, "sync").expect("request");
    let mut bytes = wire::encode(&Request {
        object: 1,
        opcode: get_registry,
        args: vec![Arg::NewId(2)],
    })
    .bytes;
    bytes.extend(
        wire::encode(&Request {
            object: 1,
            opcode: sync,
            args: vec![Arg::NewId(3)],
        })
        .bytes,
    );
    if conn.send(&bytes, &[], deadline) != Sent::All {
        return Probe::Closed;
    }
    loop {
        if conn
            .take_messages()
            .iter()
            .any(|(h, _)| h.object == 3 && h.opcode == 0)
        {
            return Probe::Answered(start.elapsed());
        }
        match conn.recv(Some(deadline)) {
            Received::Closed => return Probe::Closed,
            Received::Nothing if Instant::now() >= deadline => return Probe::NoAnswer,
            _ => {}
        }
    }
}
