//! A whole run: the fd pool, the connections one after the other (or `--parallel` batches of
//! them at once), crash checks after each, bystander probes, the compositor's fds and memory
//! before and after, and the summary.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::catalog;
use super::config::{Config, Dmabufs};
use super::fds::FdPool;
use super::monitor::{self, Probe, Process, Usage};
use super::session::{self, ConnectionReport, Outcome, Target};

/// What kind of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// The compositor died.
    Crash,
    /// A connection got no answer.
    Stall,
    /// A bystander got no answer.
    ProbeStall,
}

/// A crash or stall, with how to reproduce it.
#[derive(Debug, Clone)]
pub struct Finding {
    /// What happened.
    pub kind: FindingKind,
    /// The connection it is attributed to.
    pub connection: u64,
    /// That connection's own seed.
    pub connection_seed: u64,
    /// What was seen.
    pub detail: String,
    /// The command line that replays it.
    pub replay: String,
    /// The connection's messages.
    pub log: Vec<String>,
}

/// A run's figures.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The run's seed.
    pub seed: u64,
    /// Connections open at once.
    pub parallel: u64,
    /// The first connection's index.
    pub first_connection: u64,
    /// Connections run.
    pub connections: u64,
    /// Messages written.
    pub messages: u64,
    /// Mutated messages among them.
    pub mutated: u64,
    /// Connections whose final sync was answered.
    pub answered: u64,
    /// Connections ended by `wl_display.error`.
    pub protocol_errors: u64,
    /// Connections the compositor closed without an error.
    pub disconnects: u64,
    /// Connections the fuzzer cut on purpose.
    pub closed_by_fuzzer: u64,
    /// Compositor deaths (a run stops at the first).
    pub crashes: u64,
    /// Connections left unanswered.
    pub stalls: u64,
    /// Bystander probes left unanswered (the compositor served no one).
    pub probe_stalls: u64,
    /// Bystander probes made.
    pub probes: u64,
    /// The slowest probe answer.
    pub slowest_probe: Duration,
    /// The compositor's fds and memory at the start.
    pub start: Usage,
    /// ... and at the end (after the last client left).
    pub end: Usage,
    /// Wall time.
    pub elapsed: Duration,
    /// Crashes and stalls with replay lines.
    pub findings: Vec<Finding>,
    /// The fd pool's labels.
    pub pool: Vec<String>,
    /// Why dma-bufs are missing from the pool.
    pub dmabuf_problems: Vec<String>,
    /// Messages per target interface.
    pub interfaces: BTreeMap<String, u64>,
    /// Well-formed messages per request (`interface.request`).
    pub requests: BTreeMap<String, u64>,
    /// Protocol errors received, by `interface#code`.
    pub errors: BTreeMap<String, u64>,
    /// The first message of each kind of protocol error.
    pub error_examples: BTreeMap<String, String>,
    /// Globals the compositor announced, with their versions.
    pub globals: BTreeMap<String, u32>,
    /// Globals announced that the fuzzer has no description of.
    pub unknown_globals: BTreeSet<String>,
}

fn drift(a: Option<u64>, b: Option<u64>) -> Option<i64> {
    Some(b? as i64 - a? as i64)
}

impl Summary {
    /// Fd count change from start to end.
    pub fn fd_drift(&self) -> Option<i64> {
        drift(
            self.start.fds.map(|v| v as u64),
            self.end.fds.map(|v| v as u64),
        )
    }

    /// Resident memory change from start to end, KiB.
    pub fn rss_drift_kib(&self) -> Option<i64> {
        drift(self.start.rss_kib, self.end.rss_kib)
    }

    /// Every request a client of the announced globals can send.
    pub fn requests_known(&self) -> Vec<String> {
        let offered: Vec<(&str, u32)> =
            self.globals.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        catalog::requests(&offered)
    }

    /// How many of those were sent well-formed at least once.
    pub fn requests_covered(&self) -> usize {
        self.requests_known().len() - self.requests_never_sent().len()
    }

    /// The requests no well-formed message used.
    pub fn requests_never_sent(&self) -> Vec<String> {
        self.requests_known()
            .into_iter()
            .filter(|r| !self.requests.contains_key(r))
            .collect()
    }

    /// True when nothing crashed or stalled.
    pub fn clean(&self) -> bool {
        self.crashes == 0 && self.stalls == 0 && self.probe_stalls == 0
    }

    fn absorb(&mut self, r: &ConnectionReport) {
        self.connections += 1;
        self.messages += r.messages;
        self.mutated += r.mutated;
        for (i, n) in &r.interfaces {
            *self.interfaces.entry((*i).to_owned()).or_default() += n;
        }
        for ((i, q), n) in &r.requests {
            *self.requests.entry(format!("{i}.{q}")).or_default() += n;
        }
        self.unknown_globals
            .extend(r.unknown_globals.iter().cloned());
        self.globals.extend(r.globals.iter().cloned());
        match &r.outcome {
            Outcome::Answered => self.answered += 1,
            Outcome::ProtocolError {
                interface,
                code,
                message,
            } => {
                self.protocol_errors += 1;
                let key = format!("{interface}#{code}");
                self.error_examples
                    .entry(key.clone())
                    .or_insert_with(|| message.clone());
                *self.errors.entry(key).or_default() += 1;
            }
            Outcome::Disconnected => self.disconnects += 1,
            Outcome::ClosedByFuzzer => self.closed_by_fuzzer += 1,
            Outcome::Stall { .. } => self.stalls += 1,
            Outcome::ConnectFailed(_) => {}
        }
    }

    /// The one-line summary.
    pub fn line(&self) -> String {
        let opt = |v: Option<i64>| v.map_or("n/a".to_owned(), |v| format!("{v:+}"));
        let usage = |u: Option<u64>| u.map_or("?".to_owned(), |v| v.to_string());
        format!(
            "wayheap-fuzz: seed={} parallel={} connections={} messages={} mutated={} answered={} \
             protocol_errors={} disconnects={} closed_by_fuzzer={} crashes={} stalls={} probe_stalls={} \
             probes={} requests_covered={}/{} fd_drift={} ({}->{}) rss_drift_kib={} ({}->{}) elapsed={:.1}s",
            self.seed,
            self.parallel,
            self.connections,
            self.messages,
            self.mutated,
            self.answered,
            self.protocol_errors,
            self.disconnects,
            self.closed_by_fuzzer,
            self.crashes,
            self.stalls,
            self.probe_stalls,
            self.probes,
            self.requests_covered(),
            self.requests_known().len(),
            opt(self.fd_drift()),
            usage(self.start.fds.map(|v| v as u64)),
            usage(self.end.fds.map(|v| v as u64)),
            opt(self.rss_drift_kib()),
            usage(self.start.rss_kib),
            usage(self.end.rss_kib),
            self.elapsed.as_secs_f64()
        )
    }

    /// The summary as JSON.
    pub fn json(&self) -> serde_json::Value {
        let findings: Vec<serde_json::Value> = self
            .findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "kind": format!("{:?}", f.kind),
                    "connection": f.connection,
                    "connection_seed": f.connection_seed,
                    "detail": f.detail,
                    "replay": f.replay,
                    "log": f.log,
                })
            })
            .collect();
        serde_json::json!({
            "line": self.line(),
            "seed": self.seed,
            "parallel": self.parallel,
            "first_connection": self.first_connection,
            "connections": self.connections,
            "messages": self.messages,
            "mutated": self.mutated,
            "answered": self.answered,
            "protocol_errors": self.protocol_errors,
            "disconnects": self.disconnects,
            "closed_by_fuzzer": self.closed_by_fuzzer,
            "crashes": self.crashes,
            "stalls": self.stalls,
            "probe_stalls": self.probe_stalls,
            "probes": self.probes,
            "slowest_probe_ms": self.slowest_probe.as_secs_f64() * 1000.0,
            "fd_start": self.start.fds,
            "fd_end": self.end.fds,
            "fd_drift": self.fd_drift(),
            "rss_kib_start": self.start.rss_kib,
            "rss_kib_end": self.end.rss_kib,
            "rss_drift_kib": self.rss_drift_kib(),
            "elapsed_s": self.elapsed.as_secs_f64(),
            "fd_pool": self.pool,
            "dmabuf_problems": self.dmabuf_problems,
            "interfaces": self.interfaces,
            "requests": self.requests,
            "requests_covered": self.requests_covered(),
            "requests_known": self.requests_known().len(),
            "globals": self.globals,
            "requests_never_sent": self.requests_never_sent(),
            "errors": self.errors,
            "error_examples": self.error_examples,
            "unknown_globals": self.unknown_globals,
            "findings": findings,
        })
    }
}

/// Builds the fd pool the config asks for.
pub fn fd_pool(cfg: &Config) -> Result<(FdPool, Vec<String>), String> {
    let mut pool = FdPool::ordinary().map_err(|e| format!("creating the fd pool: {e}"))?;
    let mut problems = Vec::new();
    if cfg.dmabufs != Dmabufs::Off {
        let (added, why) = pool.add_dmabufs();
        problems = why;
        if cfg.dmabufs == Dmabufs::Require && added == 0 {
            return Err(format!(
                "--dmabufs require: no dma-buf: {}",
                problems.join("; ")
            ));
        }
    }
    Ok((pool, problems))
}

/// Runs the fuzzer as `cfg` says; `note` receives progress and findings as they happen.
pub fn run(cfg: &Config, note: &mut dyn FnMut(&str)) -> Result<Summary, String> {
    let start = Instant::now();
    if let Some(p) = cfg.pid.map(|pid| Process { pid })
        && !p.alive()
    {
        return Err(format!("no live process {} (--pid)", p.pid));
    }
    if let Probe::ConnectFailed(e) = monitor::probe(&cfg.socket, cfg.stall_timeout) {
        return Err(format!("cannot connect to {}: {e}", cfg.socket.display()));
    }
    let (pool, dmabuf_problems) = fd_pool(cfg)?;
    let process = cfg.pid.map(|pid| Process { pid });
    let mut s = Summary {
        seed: cfg.seed,
        parallel: cfg.parallel,
        first_connection: cfg.first_connection,
        pool: pool.labels(),
        dmabuf_problems,
        ..Summary::default()
    };
    let target = Target {
        socket: &cfg.socket,
        pool: &pool,
        stall_timeout: cfg.stall_timeout,
        messages: cfg.messages,
        seed: cfg.seed,
    };
    let mut runner = Runner {
        cfg,
        process,
        summary: &mut s,
        last: None,
        note,
        last_progress: Instant::now(),
        batch: None,
    };
    if runner.probe() {
        runner.summary.start = process
            .map(|p| p.settled_usage(Duration::from_secs(3)))
            .unwrap_or_default();
        runner.connections(target, start);
    }
    if runner.summary.clean() {
        // A last round trip, then the compositor's fds and memory once the clients are gone.
        runner.probe();
        runner.summary.end = process
            .map(|p| p.settled_usage(Duration::from_secs(3)))
            .unwrap_or_default();
    }
    s.elapsed = start.elapsed();
    Ok(s)
}

struct Runner<'a> {
    cfg: &'a Config,
    process: Option<Process>,
    summary: &'a mut Summary,
    last: Option<ConnectionReport>,
    note: &'a mut dyn FnMut(&str),
    last_progress: Instant,
    /// The parallel batch being checked (first connection, count): a finding in it replays
    /// the batch, not its connection alone.
    batch: Option<(u64, u64)>,
}

/// How often a run prints its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

impl Runner<'_> {
    fn connections(&mut self, target: Target<'_>, start: Instant) {
        let first = self.cfg.first_connection;
        let mut index = first;
        let mut since_probe = 0;
        loop {
            let done = index - first;
            if self.cfg.connections.is_some_and(|n| done >= n)
                || self.cfg.duration.is_some_and(|d| start.elapsed() >= d)
            {
                return;
            }
            let left = self.cfg.connections.map_or(u64::MAX, |n| n - done);
            let count = self.cfg.parallel.min(left);
            self.batch = (count > 1).then_some((index, count));
            let reports = batch(target, index, count);
            // The whole batch is counted, even when one of its connections ends the run.
            for report in &reports {
                if self.cfg.log {
                    (self.note)(&format!(
                        "connection {} (seed {}): {:?}\n  {}",
                        report.index,
                        report.connection_seed,
                        report.outcome,
                        report.log.join("\n  ")
                    ));
                }
                self.summary.absorb(report);
            }
            for report in reports {
                if !self.check(report) {
                    return;
                }
            }
            index += count;
            since_probe += count;
            if since_probe >= self.cfg.probe_every {
                since_probe = 0;
                if !self.probe() {
                    return;
                }
            }
            self.progress(start);
        }
    }

    /// A summary line every `PROGRESS_EVERY` (not with `--quiet`).
    fn progress(&mut self, start: Instant) {
        if self.cfg.quiet || self.last_progress.elapsed() < PROGRESS_EVERY {
            return;
        }
        self.last_progress = Instant::now();
        self.summary.elapsed = start.elapsed();
        (self.note)(&self.summary.line());
    }

    /// Records a stall or crash this connection shows; false when the run must stop.
    fn check(&mut self, report: ConnectionReport) -> bool {
        if let Outcome::ConnectFailed(e) = &report.outcome {
            let blamed = self.last.take().unwrap_or(report.clone());
            self.crash(blamed, format!("connecting failed: {e}"));
            return false;
        }
        if let Outcome::Stall { phase } = report.outcome {
            self.finding(FindingKind::Stall, &report, format!("no answer ({phase})"));
        }
        self.last = Some(report);
        let outcome = &self.last.as_ref().expect("just set").outcome;
        // The compositor reads what a connection sent after it left, and a stall may be the
        // whole compositor's: a bystander's round trip settles both before the crash check.
        if matches!(
            outcome,
            Outcome::ClosedByFuzzer | Outcome::Disconnected | Outcome::Stall { .. }
        ) && !self.probe()
        {
            return false;
        }
        if self.process.is_some_and(|p| !p.alive()) {
            self.blame_last(
                FindingKind::Crash,
                "the compositor process is gone".to_owned(),
            );
            return false;
        }
        true
    }

    fn crash(&mut self, report: ConnectionReport, detail: String) {
        self.summary.crashes += 1;
        let detail = match report.index.checked_sub(1) {
            Some(prev) => format!(
                "{detail} (if connection {} alone does not reproduce it, replay with --first-connection {prev} --connections 2)",
                report.index
            ),
            None => detail,
        };
        self.finding(FindingKind::Crash, &report, detail);
    }

    fn finding(&mut self, kind: FindingKind, report: &ConnectionReport, detail: String) {
        let f = Finding {
            kind,
            connection: report.index,
            connection_seed: report.connection_seed,
            detail,
            replay: match self.batch {
                Some((first, count)) => self.cfg.replay_batch(first, count),
                None => self.cfg.replay(report.index),
            },
            log: report.log.clone(),
        };
        (self.note)(&format!(
            "FINDING {:?} at connection {} (seed {}, connection seed {}): {}\n  replay: {}\n  messages:\n    {}",
            f.kind,
            f.connection,
            self.cfg.seed,
            f.connection_seed,
            f.detail,
            f.replay,
            f.log.join("\n    ")
        ));
        self.summary.findings.push(f);
    }

    /// A bystander round trip; false when the compositor is gone or serves no one.
    fn probe(&mut self) -> bool {
        self.summary.probes += 1;
        match monitor::probe(&self.cfg.socket, self.cfg.stall_timeout) {
            Probe::Answered(t) => {
                self.summary.slowest_probe = self.summary.slowest_probe.max(t);
                true
            }
            Probe::ConnectFailed(e) => {
                self.blame_last(
                    FindingKind::Crash,
                    format!("a bystander cannot connect: {e}"),
                );
                false
            }
            Probe::Closed if self.process.is_some_and(|p| !p.alive()) => {
                self.blame_last(
                    FindingKind::Crash,
                    "the compositor process is gone".to_owned(),
                );
                false
            }
            Probe::Closed | Probe::NoAnswer => {
                // Every later connection would stall the same way: the run ends here.
                self.summary.probe_stalls += 1;
                self.blame_last(
                    FindingKind::ProbeStall,
                    "a bystander's round trip got no answer: the compositor serves no one"
                        .to_owned(),
                );
                false
            }
        }
    }

    fn blame_last(&mut self, kind: FindingKind, detail: String) {
        let report = self.last.clone().unwrap_or_else(|| ConnectionReport {
            index: self.cfg.first_connection,
            connection_seed: 0,
            messages: 0,
            mutated: 0,
            outcome: Outcome::Answered,
            log: vec!["# before any connection".to_owned()],
            interfaces: BTreeMap::new(),
            requests: BTreeMap::new(),
            globals: Vec::new(),
            unknown_globals: Vec::new(),
            fds_received: 0,
            elapsed: Duration::ZERO,
        });
        if kind == FindingKind::Crash {
            self.crash(report, detail);
        } else {
            self.finding(kind, &report, detail);
        }
    }
}

/// Connections `first..first + count`, at once when more than one (a thread each), their
/// reports in index order.
fn batch(target: Target<'_>, first: u64, count: u64) -> Vec<ConnectionReport> {
    if count == 1 {
        return vec![session::run_connection(target, first)];
    }
    std::thread::scope(|scope| {
        let threads: Vec<_> = (first..first + count)
            .map(|i| scope.spawn(move || session::run_connection(target, i)))
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a fuzz connection's thread panicked"))
            .collect()
    })
}
