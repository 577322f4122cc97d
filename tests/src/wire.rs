//! A Wayland connection at the wire level, for tests that send what no client library would:
//! null strings where the protocol forbids them, truncated messages, missing or surplus fds.
//!
//! ```no_run
//! use wayheap_tests::wire::{Arg, RawConnection};
//! let runtime = std::path::Path::new("/run/user/1000");
//! let mut conn = RawConnection::connect(runtime, "wayland-1").unwrap();
//! let globals = conn.globals().unwrap();
//! let shm = globals.iter().find(|g| g.interface == "wl_shm").unwrap();
//! let id = conn.bind(shm.name, "wl_shm", 1);
//! conn.request(id, 0, &[Arg::NewId(conn.peek_id()), Arg::Fd], &[]); // no fd sent: an error
//! println!("{:?}", conn.outcome());
//! ```

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::fuzz::catalog;
use crate::fuzz::wire::{self, Value};
use rustix::net::{
    RecvAncillaryBuffer, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};

/// One argument of a request, as it goes on the wire.
#[derive(Debug, Clone)]
pub enum Arg<'a> {
    /// `int`, `fixed`, `enum`.
    Int(i32),
    /// `uint`, `object` (an id) and `new_id` of a known interface.
    Uint(u32),
    /// A new object's id (same as `Uint` on the wire; names intent).
    NewId(u32),
    /// A string; `None` is the null string (length 0).
    Str(Option<&'a str>),
    /// An fd: nothing in the message body (the fds travel beside it).
    Fd,
}

/// A global the registry announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// Its numeric name, for `bind`.
    pub name: u32,
    /// Its interface.
    pub interface: String,
    /// The highest version offered.
    pub version: u32,
}

/// How the compositor answered a connection in the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `wl_display.error(object, code, message)`.
    Error {
        /// The object the error is about.
        object: u32,
        /// The interface's error code.
        code: u32,
        /// The compositor's message.
        message: String,
    },
    /// The connection ended without an error event.
    Closed,
    /// A `wl_display.sync` round trip completed: the compositor accepted everything before it.
    Alive,
    /// Nothing within the timeout: the compositor neither answered nor disconnected (a stall).
    Silent,
}

/// One event read off the wire.
#[derive(Debug, Clone)]
pub struct Event {
    /// The object that sent it.
    pub sender: u32,
    /// Its opcode.
    pub opcode: u16,
    /// Its arguments, raw.
    pub body: Vec<u8>,
}

/// A raw client connection.
#[derive(Debug)]
pub struct RawConnection {
    stream: UnixStream,
    next_id: u32,
    input: Vec<u8>,
    /// The registry, once [`globals`](Self::globals) ran.
    registry: Option<u32>,
}

impl RawConnection {
    /// Connects to `runtime/socket`.
    pub fn connect(runtime: &Path, socket: &str) -> std::io::Result<RawConnection> {
        let stream = UnixStream::connect(runtime.join(socket))?;
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok(RawConnection {
            stream,
            next_id: 2,
            input: Vec::new(),
            registry: None,
        })
    }

    /// The id the next new object gets.
    pub fn peek_id(&self) -> u32 {
        self.next_id
    }

    /// Takes the next object id.
    pub fn new_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The socket, to pass as an fd (a client sending the compositor its own connection).
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// Encodes a request's body (without header), in the fuzzer's wire format.
    pub fn encode(args: &[Arg]) -> Vec<u8> {
        let args = args
            .iter()
            .filter_map(|arg| match arg {
                Arg::Int(v) => Some(wire::Arg::Int(*v)),
                Arg::Uint(v) => Some(wire::Arg::Uint(*v)),
                Arg::NewId(v) => Some(wire::Arg::NewId(*v)),
                Arg::Str(s) => Some(wire::Arg::Str(s.map(|s| s.as_bytes().to_vec()))),
                // Fds travel beside the bytes.
                Arg::Fd => None,
            })
            .collect();
        let request = wire::Request {
            object: 0,
            opcode: 0,
            args,
        };
        wire::encode(&request).bytes.split_off(wire::HEADER)
    }

    /// Sends `object.opcode(args)` with `fds`. Errors (the compositor hung up) are ignored: the
    /// outcome says what happened.
    pub fn request(&mut self, object: u32, opcode: u16, args: &[Arg], fds: &[BorrowedFd]) {
        let body = Self::encode(args);
        self.send_raw(object, opcode, (body.len() + 8) as u16, &body, fds);
    }

    /// Sends a message whose header says `size` whatever the body is (malformed on purpose).
    pub fn send_raw(
        &mut self,
        object: u32,
        opcode: u16,
        size: u16,
        body: &[u8],
        fds: &[BorrowedFd],
    ) {
        let mut bytes = Vec::with_capacity(body.len() + 8);
        bytes.extend_from_slice(&object.to_ne_bytes());
        bytes.extend_from_slice(&(((size as u32) << 16) | opcode as u32).to_ne_bytes());
        bytes.extend_from_slice(body);
        let _ = self.send_bytes(&bytes, fds);
    }

    /// Sends bytes as they are, with `fds` attached.
    pub fn send_bytes(&mut self, bytes: &[u8], fds: &[BorrowedFd]) -> std::io::Result<()> {
        let mut space =
            vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len().max(1)))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() {
            control.push(SendAncillaryMessage::ScmRights(fds));
        }
        rustix::net::sendmsg(
            &self.stream,
            &[IoSlice::new(bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        )?;
        Ok(())
    }

    /// `wl_display.get_registry`, then a round trip: the globals.
    pub fn globals(&mut self) -> std::io::Result<Vec<Global>> {
        let registry = self.new_id();
        self.registry = Some(registry);
        self.request(1, 1, &[Arg::NewId(registry)], &[]);
        let callback = self.new_id();
        self.request(1, 0, &[Arg::NewId(callback)], &[]);
        let mut globals = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let Some(event) = self.next_event()? else {
                continue;
            };
            if event.sender == registry && event.opcode == 0 {
                globals.push(parse_global(&event.body));
            } else if event.sender == callback {
                return Ok(globals);
            } else if event.sender == 1 && event.opcode == 0 {
                return Err(std::io::Error::other(format!(
                    "error: {:?}",
                    parse_error(&event.body)
                )));
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no registry round trip",
        ))
    }

    /// `wl_registry.bind(name, interface, version)` to a new id.
    pub fn bind(&mut self, name: u32, interface: &str, version: u32) -> u32 {
        let registry = self.registry.expect("globals() first");
        let id = self.new_id();
        let args = [
            Arg::Uint(name),
            Arg::Str(Some(interface)),
            Arg::Uint(version),
            Arg::NewId(id),
        ];
        self.request(registry, 0, &args, &[]);
        id
    }

    /// Binds the global of `interface` (panics if there is none).
    pub fn bind_global(&mut self, globals: &[Global], interface: &str, version: u32) -> u32 {
        let global = globals
            .iter()
            .find(|g| g.interface == interface)
            .unwrap_or_else(|| panic!("no {interface} global in {globals:?}"));
        self.bind(global.name, interface, version.min(global.version))
    }

    /// Reads one event; `None` when none arrived within the read timeout.
    pub fn next_event(&mut self) -> std::io::Result<Option<Event>> {
        loop {
            if let Some(event) = self.take_event() {
                return Ok(Some(event));
            }
            let mut chunk = [0u8; 4096];
            let mut fd_space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(28))];
            let mut control = RecvAncillaryBuffer::new(&mut fd_space);
            let read = rustix::net::recvmsg(
                &self.stream,
                &mut [IoSliceMut::new(&mut chunk)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            );
            match read {
                Ok(msg) if msg.bytes == 0 => {
                    return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
                }
                Ok(msg) => self.input.extend_from_slice(&chunk[..msg.bytes]),
                Err(rustix::io::Errno::AGAIN) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn take_event(&mut self) -> Option<Event> {
        let header = wire::header(&self.input)?;
        if header.size < wire::HEADER || self.input.len() < header.size {
            return None;
        }
        let body = self.input[wire::HEADER..header.size].to_vec();
        self.input.drain(..header.size);
        Some(Event {
            sender: header.object,
            opcode: header.opcode,
            body,
        })
    }

    /// Sends a `wl_display.sync` and waits up to `timeout` for what the compositor does: the
    /// round trip, an error, a hang-up, or nothing.
    pub fn outcome_within(&mut self, timeout: Duration) -> Outcome {
        let callback = self.new_id();
        self.request(1, 0, &[Arg::NewId(callback)], &[]);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.next_event() {
                Ok(Some(e)) if e.sender == 1 && e.opcode == 0 => {
                    let (object, code, message) = parse_error(&e.body);
                    return Outcome::Error {
                        object,
                        code,
                        message,
                    };
                }
                Ok(Some(e)) if e.sender == callback => return Outcome::Alive,
                Ok(_) => {}
                Err(_) => return Outcome::Closed,
            }
        }
        Outcome::Silent
    }

    /// [`outcome_within`](Self::outcome_within) five seconds.
    pub fn outcome(&mut self) -> Outcome {
        self.outcome_within(Duration::from_secs(5))
    }
}

/// `wl_registry.global(name, interface, version)`.
fn parse_global(body: &[u8]) -> Global {
    match wire::decode(catalog::REGISTRY.events[0].signature, body).as_deref() {
        Some(
            [
                Value::Uint(name),
                Value::Str(Some(interface)),
                Value::Uint(version),
            ],
        ) => Global {
            name: *name,
            interface: String::from_utf8_lossy(interface).into_owned(),
            version: *version,
        },
        _ => panic!("a malformed wl_registry.global: {body:?}"),
    }
}

/// `wl_display.error(object, code, message)`.
fn parse_error(body: &[u8]) -> (u32, u32, String) {
    match wire::decode(catalog::DISPLAY.events[0].signature, body).as_deref() {
        Some(
            [
                Value::Object(object),
                Value::Uint(code),
                Value::Str(message),
            ],
        ) => {
            let message = message.as_deref().unwrap_or_default();
            (
                *object,
                *code,
                String::from_utf8_lossy(message).into_owned(),
            )
        }
        _ => panic!("a malformed wl_display.error: {body:?}"),
    }
}
