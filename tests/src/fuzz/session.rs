//! One fuzz connection from connect to its outcome: registry round trip, generated messages
//! (reading events between them), then the ending — a `wl_display.sync` whose answer proves
//! the compositor still serves this client, or an abrupt disconnect.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use super::catalog;
use super::conn::{Conn, Received, Sent};
use super::fds::{FdPool, FdRef, ScratchFds};
use super::generator::{self, Action, Ending, FdKinds, Generator, Planned};
use super::monitor::{self, Probe};
use super::rng::connection_seed;
use super::wire::{self, Header, Value};
use super::world::{Global, World};

/// How long a lingering connection stays after its sync: a few frames at 60 Hz.
pub const LINGER: Duration = Duration::from_millis(50);

/// The most syncs an unread flood writes.
pub const FLOOD_SYNCS: usize = 20_000;

/// Messages between two checkpoint round trips.
pub const CHECKPOINT_EVERY: usize = 8;

/// What a connection needs from the run.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The compositor's socket.
    pub socket: &'a Path,
    /// The run's fds.
    pub pool: &'a FdPool,
    /// How long the compositor may take to answer before it counts as a stall.
    pub stall_timeout: Duration,
    /// Messages to send (besides the setup and the ending).
    pub messages: usize,
    /// The run's seed.
    pub seed: u64,
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The final sync was answered.
    Answered,
    /// The compositor sent `wl_display.error`.
    ProtocolError {
        /// The interface of the object it named (`?` if unknown).
        interface: String,
        /// The error code.
        code: u32,
        /// Its message.
        message: String,
    },
    /// The compositor closed the connection without an error event.
    Disconnected,
    /// The fuzzer disconnected on purpose (truncated message, garbage, abrupt close).
    ClosedByFuzzer,
    /// No answer, error or close within the stall timeout.
    Stall {
        /// What was waited for: `setup`, `send` (the compositor stopped reading), a
        /// `checkpoint` round trip, or the final `sync`.
        phase: &'static str,
    },
    /// The socket refused the connection.
    ConnectFailed(String),
}

/// What one connection did.
#[derive(Debug, Clone)]
pub struct ConnectionReport {
    /// Its index in the run.
    pub index: u64,
    /// Its own seed (derived from the run's seed and the index).
    pub connection_seed: u64,
    /// Messages written (setup and ending included).
    pub messages: u64,
    /// Mutated messages among them.
    pub mutated: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Every message sent, one line each.
    pub log: Vec<String>,
    /// Messages sent per target interface.
    pub interfaces: BTreeMap<&'static str, u64>,
    /// Well-formed messages sent per request (`interface.request`) to live objects.
    pub requests: BTreeMap<(&'static str, &'static str), u64>,
    /// Globals the registry announced, with their versions.
    pub globals: Vec<(String, u32)>,
    /// Globals the registry announced whose description the fuzzer lacks.
    pub unknown_globals: Vec<String>,
    /// Fds the compositor sent.
    pub fds_received: usize,
    /// Wall time.
    pub elapsed: Duration,
}

struct Session<'a> {
    target: Target<'a>,
    conn: Conn,
    world: World,
    scratch: ScratchFds,
    report: ConnectionReport,
    sync_id: Option<u32>,
    answered: bool,
    closed: bool,
    error: Option<Outcome>,
}

/// Runs connection `index` of the run.
pub fn run_connection(target: Target<'_>, index: u64) -> ConnectionReport {
    let start = Instant::now();
    let seed = connection_seed(target.seed, index);
    let mut report = ConnectionReport {
        index,
        connection_seed: seed,
        messages: 0,
        mutated: 0,
        outcome: Outcome::Answered,
        log: Vec::new(),
        interfaces: BTreeMap::new(),
        requests: BTreeMap::new(),
        globals: Vec::new(),
        unknown_globals: Vec::new(),
        fds_received: 0,
        elapsed: Duration::ZERO,
    };
    let conn = match Conn::connect(target.socket) {
        Ok(c) => c,
        Err(e) => {
            report.outcome = Outcome::ConnectFailed(e.to_string());
            return report;
        }
    };
    let scratch = match ScratchFds::new() {
        Ok(s) => s,
        Err(e) => panic!("cannot create the connection's memfd: {e}"),
    };
    let mut s = Session {
        target,
        conn,
        world: World::new(),
        scratch,
        report,
        sync_id: None,
        answered: false,
        closed: false,
        error: None,
    };
    let mut generator = Generator::new(seed, FdKinds::of(target.pool));
    s.report
        .log
        .push(format!("# hostility {}%", generator.hostility()));
    s.report.outcome = s.play(&mut generator);
    s.report.fds_received = s.conn.fds_received;
    s.report.elapsed = start.elapsed();
    s.report
}

impl Session<'_> {
    fn play(&mut self, generator: &mut Generator) -> Outcome {
        if let Some(stalled) = self.setup(generator) {
            return stalled;
        }
        for n in 1..=self.target.messages {
            if let Some(end) = self.step(generator) {
                return end;
            }
            // A round trip now and then: a connection the compositor has already refused
            // stops here instead of writing into the void, and a stall shows where it began.
            if n.is_multiple_of(CHECKPOINT_EVERY) {
                let sync = generator.sync(&mut self.world);
                if let Some(end) = self.round_trip(&sync, "checkpoint") {
                    return end;
                }
            }
        }
        self.end(generator)
    }

    /// get_registry and a sync round trip: the globals are known after it.
    fn setup(&mut self, generator: &mut Generator) -> Option<Outcome> {
        let get_registry = generator.get_registry(&mut self.world);
        self.world.registry = get_registry.creates.first().map(|c| c.0);
        if self.send(&get_registry) != Sent::All {
            return Some(self.after_send_failure());
        }
        let sync = generator.sync(&mut self.world);
        let end = self.round_trip(&sync, "setup");
        self.note_globals();
        end
    }

    /// Records the globals the registry announced, and those the fuzzer has no description of.
    fn note_globals(&mut self) {
        let globals = &self.world.globals;
        self.report.unknown_globals = globals
            .iter()
            .filter(|g| catalog::global(&g.interface).is_none())
            .map(|g| g.interface.clone())
            .collect();
        self.report.globals = globals
            .iter()
            .map(|g| (g.interface.clone(), g.version))
            .collect();
    }

    /// One generated action; `Some` when the connection is over.
    fn step(&mut self, generator: &mut Generator) -> Option<Outcome> {
        match generator.next(&mut self.world) {
            Action::Send(p) => {
                if self.send(&p) != Sent::All {
                    return Some(self.after_send_failure());
                }
            }
            Action::ShrinkScratch(len) => {
                self.report
                    .log
                    .push(format!("# shrink scratch-memfd to {len}"));
                let _ = self.scratch.shrink(len);
            }
        }
        self.pump();
        self.finished()
    }

    fn end(&mut self, generator: &mut Generator) -> Outcome {
        let ending = generator.ending();
        self.report.log.push(format!("# ending {ending:?}"));
        match ending {
            Ending::Sync => {
                let sync = generator.sync(&mut self.world);
                self.round_trip(&sync, "sync").unwrap_or(Outcome::Answered)
            }
            Ending::BadHeaderThenSync(size) => self.bad_header_then_sync(generator, size),
            Ending::TruncatedThenClose => {
                let bytes = generator.truncated(&mut self.world);
                self.raw(bytes);
                self.close()
            }
            Ending::GarbageThenClose => {
                let bytes = generator.garbage();
                self.raw(bytes);
                self.close()
            }
            Ending::CloseNow => self.close(),
            Ending::FloodUnread => self.flood_unread(generator),
            Ending::Linger => self.linger(generator),
        }
    }

    /// A sync, `LINGER` of reading events while the compositor renders what this connection
    /// built, and a sync again.
    fn linger(&mut self, generator: &mut Generator) -> Outcome {
        let sync = generator.sync(&mut self.world);
        if let Some(end) = self.round_trip(&sync, "sync") {
            return end;
        }
        let until = Instant::now() + LINGER;
        while Instant::now() < until {
            if self.conn.recv(Some(until)) == Received::Closed {
                self.closed = true;
            }
            self.pump();
            if let Some(end) = self.finished() {
                return end;
            }
        }
        let sync = generator.sync(&mut self.world);
        self.round_trip(&sync, "sync").unwrap_or(Outcome::Answered)
    }

    /// A header declaring `size` bytes (below a header's 8), then a sync that must be answered
    /// by an error or a close, not left waiting.
    fn bad_header_then_sync(&mut self, generator: &mut Generator, size: u16) -> Outcome {
        // wl_display (object 1), opcode 0 (sync), and the size.
        let mut bytes = vec![0; wire::HEADER];
        wire::set_word(&mut bytes, 0, 1);
        wire::set_size(&mut bytes, size);
        if !self.raw(bytes) {
            return self.after_send_failure();
        }
        let sync = generator.sync(&mut self.world);
        self.round_trip(&sync, "sync").unwrap_or(Outcome::Answered)
    }

    /// Syncs (each answered by two events) written without reading, until the socket takes no
    /// more for a moment or `FLOOD_SYNCS` went out; then a bystander's round trip, while this
    /// connection is still open and unread, must be answered.
    fn flood_unread(&mut self, generator: &mut Generator) -> Outcome {
        let mut sent = 0;
        while sent < FLOOD_SYNCS {
            let sync = generator.sync(&mut self.world);
            let deadline = Instant::now() + Duration::from_millis(200);
            if self.conn.send_unread(&sync.encoded.bytes, deadline) != Sent::All {
                break;
            }
            sent += 1;
        }
        self.report.messages += sent as u64;
        self.report.log.push(format!(
            "# {sent} syncs written, none of their answers read"
        ));
        let probe = monitor::probe(self.target.socket, self.target.stall_timeout);
        self.report
            .log
            .push(format!("# bystander meanwhile: {probe:?}"));
        match probe {
            Probe::Answered(_) => self.close(),
            Probe::ConnectFailed(_) => Outcome::Disconnected,
            Probe::Closed | Probe::NoAnswer => Outcome::Stall {
                phase: "bystander beside an unread flood",
            },
        }
    }

    fn close(&mut self) -> Outcome {
        self.conn.shutdown();
        Outcome::ClosedByFuzzer
    }

    /// Sends `sync` and waits for its done, an error or a close; `None` when answered.
    fn round_trip(&mut self, sync: &Planned, phase: &'static str) -> Option<Outcome> {
        let id = sync.creates.first().map(|c| c.0);
        self.sync_id = id;
        self.answered = false;
        if self.send(sync) != Sent::All {
            return Some(self.after_send_failure());
        }
        let deadline = Instant::now() + self.target.stall_timeout;
        loop {
            self.pump();
            if self.answered {
                return None;
            }
            if let Some(end) = self.finished() {
                return Some(end);
            }
            match self.conn.recv(Some(deadline)) {
                Received::Nothing if Instant::now() >= deadline => {
                    self.report.log.push(format!(
                        "# no answer to the sync within {:?}",
                        self.target.stall_timeout
                    ));
                    return Some(Outcome::Stall { phase });
                }
                Received::Closed => self.closed = true,
                _ => {}
            }
        }
    }

    /// The outcome once an error arrived or the compositor closed.
    fn finished(&mut self) -> Option<Outcome> {
        if let Some(e) = &self.error {
            return Some(e.clone());
        }
        self.closed.then_some(Outcome::Disconnected)
    }

    /// After a write failed: the error the compositor sent, a disconnect, or a stall.
    fn after_send_failure(&mut self) -> Outcome {
        if self.closed {
            self.pump();
            return self.finished().unwrap_or(Outcome::Disconnected);
        }
        // The write timed out (the compositor stopped reading): an error or close may still
        // be on its way.
        self.pump();
        self.finished().unwrap_or(Outcome::Stall { phase: "send" })
    }

    /// Writes `bytes` alone; false if the connection is gone.
    fn raw(&mut self, bytes: Vec<u8>) -> bool {
        self.report.log.push(format!(
            "# raw {} bytes: {}",
            bytes.len(),
            wire::printable(&bytes)
        ));
        self.report.messages += 1;
        let deadline = Instant::now() + self.target.stall_timeout;
        match self.conn.send(&bytes, &[], deadline) {
            Sent::All => true,
            Sent::Closed => {
                self.closed = true;
                false
            }
            Sent::Timeout => false,
        }
    }

    /// Writes a planned message and applies what it does to the objects.
    fn send(&mut self, p: &Planned) -> Sent {
        // Duplicates, so that the fds borrow nothing of `self` while the connection writes.
        let owned: Vec<OwnedFd> = p
            .encoded
            .fds
            .iter()
            .filter_map(|f| self.resolve(*f).try_clone_to_owned().ok())
            .collect();
        let fds: Vec<BorrowedFd<'_>> = owned.iter().map(AsFd::as_fd).collect();
        let deadline = Instant::now() + self.target.stall_timeout;
        let sent = self.conn.send(&p.encoded.bytes, &fds, deadline);
        let fd_note = if p.encoded.fds.is_empty() {
            String::new()
        } else {
            let names: Vec<String> = p.encoded.fds.iter().map(ToString::to_string).collect();
            format!(" +fds[{}]", names.join(", "))
        };
        self.report.log.push(format!("{}{fd_note}", p.line));
        self.report.messages += 1;
        self.report.mutated += u64::from(p.mutation.is_some());
        *self.report.interfaces.entry(p.interface).or_default() += 1;
        if p.mutation.is_none() {
            *self
                .report
                .requests
                .entry((p.interface, p.request))
                .or_default() += 1;
        }
        for (id, iface, version) in &p.creates {
            self.world.insert(*id, iface, *version);
            let mut on = vec![p.target];
            on.extend(&p.object_args);
            self.world.created(*id, generator::creation_key(p), on);
        }
        if let Some(surface) = generator::gives_role(p) {
            self.world.give_role(surface);
        }
        if let Some(id) = p.destroys {
            self.world.remove(id);
        }
        if sent == Sent::Closed {
            self.closed = true;
        }
        sent
    }

    fn resolve(&self, f: FdRef) -> BorrowedFd<'_> {
        match f {
            FdRef::Pool(i) => self.target.pool.fd(i),
            FdRef::Scratch => self.scratch.memfd.as_fd(),
            FdRef::OwnSocket => self.conn.fd(),
        }
    }

    /// Reads what arrived and handles every complete event.
    fn pump(&mut self) {
        if !self.conn.drain() {
            self.closed = true;
        }
        for (h, body) in self.conn.take_messages() {
            self.event(h, &body);
        }
    }

    fn event(&mut self, h: Header, body: &[u8]) {
        let Some(obj) = self.world.get(h.object) else {
            return;
        };
        let Some(desc) = obj.interface.events.get(h.opcode as usize) else {
            return;
        };
        let Some(values) = wire::decode(desc.signature, body) else {
            return;
        };
        match (obj.interface.name, desc.name, values.as_slice()) {
            ("wl_display", "error", [Value::Object(id), Value::Uint(code), Value::Str(msg)]) => {
                let interface = self
                    .world
                    .get(*id)
                    .map_or_else(|| format!("?@{id}"), |o| o.interface.name.to_owned());
                let message = msg.as_deref().map(wire::printable).unwrap_or_default();
                self.report
                    .log
                    .push(format!("# error {interface}@{id} code {code}: {message}"));
                self.error = Some(Outcome::ProtocolError {
                    interface,
                    code: *code,
                    message,
                });
            }
            ("wl_display", "delete_id", [Value::Uint(id)]) => self.world.remove(*id),
            ("wl_registry", "global", [Value::Uint(name), Value::Str(Some(i)), Value::Uint(v)]) => {
                self.world.globals.push(Global {
                    name: *name,
                    interface: String::from_utf8_lossy(i).into_owned(),
                    version: *v,
                });
            }
            ("wl_registry", "global_remove", [Value::Uint(name)]) => {
                self.world.globals.retain(|g| g.name != *name);
            }
            ("wl_callback", "done", _) if Some(h.object) == self.sync_id => self.answered = true,
            _ => {}
        }
        self.remember(h.object, obj.version, desc, &values);
    }

    /// Objects the event created, and its numbers (serials to acknowledge later).
    fn remember(
        &mut self,
        sender: u32,
        version: u32,
        desc: &wayland_client::backend::protocol::MessageDesc,
        values: &[Value],
    ) {
        let mut first_uint = true;
        let mut first_string = true;
        for v in values {
            match v {
                Value::NewId(id) => {
                    if let Some(child) = desc.child_interface {
                        self.world.insert(*id, child, version);
                    }
                }
                Value::Uint(u) => {
                    self.world.saw_uint(*u);
                    if first_uint {
                        self.world.saw_event_uint(desc.name, *u);
                        self.world.saw_event_on(sender, desc.name, *u);
                        first_uint = false;
                    }
                }
                Value::Str(Some(bytes)) if first_string => {
                    self.world.saw_event_string(desc.name, bytes.clone());
                    first_string = false;
                }
                _ => {}
            }
        }
    }
}
