//! The compositor's listening socket as a calloop source that no client can stop.
//!
//! Smithay's `ListeningSocketSource` returns `accept()`'s error to the event loop, and a
//! compositor's loop usually ends on an error: a client that makes the compositor run out of file
//! descriptors (EMFILE: say, 40 requests of 28 fds each at the common soft limit of 1024) ended
//! it for everyone. [`ClientListener`] logs such an error and goes on. When the process is out of
//! fds, it closes a spare descriptor held for that moment, accepts the waiting connection and
//! closes it at once (the client sees its connection end instead of hanging in the backlog, and
//! the level-triggered socket does not spin), then takes the spare back.
//!
//! [`raise_fd_limit`] lifts RLIMIT_NOFILE's soft limit to the hard limit, as a compositor should
//! at start: every client buffer holds fds.
//!
//! ## How to use
//!
//! ```no_run
//! use std::sync::Arc;
//! use smithay::reexports::calloop::EventLoop;
//! use smithay::reexports::wayland_server::{Display, backend::ClientData};
//! use wayheap::smithay::{ClientListener, raise_fd_limit};
//!
//! struct State { display: smithay::reexports::wayland_server::DisplayHandle }
//! struct ClientState;
//! impl ClientData for ClientState {}
//!
//! let limit = raise_fd_limit();
//! tracing::info!(?limit, "file descriptor limit");
//! let event_loop: EventLoop<State> = EventLoop::try_new().unwrap();
//! let listener = ClientListener::new_auto().unwrap();
//! event_loop.handle().insert_source(listener, |stream, _, state| {
//!     if let Err(e) = state.display.insert_client(stream, Arc::new(ClientState)) {
//!         tracing::warn!(%e, "could not add a client");
//!     }
//! }).unwrap();
//! ```

use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use rustix::process::{Resource, Rlimit};
use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::{
    EventSource, Interest, Mode, Poll, PostAction, Readiness, Token, TokenFactory,
};
use smithay::reexports::wayland_server::{BindError, ListeningSocket};

/// The listening Wayland socket: a calloop source of accepted client streams.
#[derive(Debug)]
pub struct ClientListener {
    socket: Generic<ListeningSocket>,
    /// Closed to make room for one `accept()` when the process is out of fds.
    spare_fd: Option<OwnedFd>,
    /// `accept()` failures since start.
    failures: u64,
}

impl ClientListener {
    /// Binds the first free `wayland-N` in `$XDG_RUNTIME_DIR` (N in 1..33).
    pub fn new_auto() -> Result<ClientListener, BindError> {
        Ok(Self::from_socket(ListeningSocket::bind_auto(
            "wayland",
            1..33,
        )?))
    }

    /// Binds `name` in `$XDG_RUNTIME_DIR`.
    pub fn with_name(name: &str) -> Result<ClientListener, BindError> {
        Ok(Self::from_socket(ListeningSocket::bind(name)?))
    }

    fn from_socket(socket: ListeningSocket) -> ClientListener {
        ClientListener {
            socket: Generic::new(socket, Interest::READ, Mode::Level),
            spare_fd: open_spare_fd(),
            failures: 0,
        }
    }

    /// The socket's name, for `WAYLAND_DISPLAY`.
    pub fn socket_name(&self) -> &OsStr {
        self.socket.get_ref().socket_name().unwrap_or_default()
    }

    /// How many `accept()` calls failed since start.
    pub fn failures(&self) -> u64 {
        self.failures
    }
}

/// Opens `/dev/null` as the spare descriptor.
fn open_spare_fd() -> Option<OwnedFd> {
    rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()
}

/// What one `accept()` error leaves to do.
fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(
        rustix::io::Errno::from_io_error(e),
        Some(rustix::io::Errno::MFILE | rustix::io::Errno::NFILE)
    )
}

impl EventSource for ClientListener {
    type Event = UnixStream;
    type Metadata = ();
    type Ret = ();
    type Error = io::Error;

    fn process_events<F>(
        &mut self,
        readiness: Readiness,
        token: Token,
        mut callback: F,
    ) -> io::Result<PostAction>
    where
        F: FnMut(UnixStream, &mut ()),
    {
        let spare_fd = &mut self.spare_fd;
        let failures = &mut self.failures;
        self.socket.process_events(readiness, token, |_, socket| {
            loop {
                match socket.accept() {
                    Ok(Some(client)) => callback(client, &mut ()),
                    Ok(None) => break,
                    Err(e) if is_out_of_fds(&e) => {
                        *failures += 1;
                        tracing::warn!(
                            %e,
                            failures = *failures,
                            "out of file descriptors: refusing a client (raise RLIMIT_NOFILE, or \
                             look for a client holding many)"
                        );
                        // Make room, take the waiting connection and close it, so the socket
                        // stops being readable; then hold the spare again.
                        drop(spare_fd.take());
                        let _ = socket.accept();
                        *spare_fd = open_spare_fd();
                        break;
                    }
                    Err(e) => {
                        // ECONNABORTED and kin: that connection is gone; the socket is fine.
                        *failures += 1;
                        tracing::warn!(%e, failures = *failures, "accept() failed; going on");
                        break;
                    }
                }
            }
            Ok(PostAction::Continue)
        })
    }

    fn register(
        &mut self,
        poll: &mut Poll,
        factory: &mut TokenFactory,
    ) -> smithay::reexports::calloop::Result<()> {
        self.socket.register(poll, factory)
    }

    fn reregister(
        &mut self,
        poll: &mut Poll,
        factory: &mut TokenFactory,
    ) -> smithay::reexports::calloop::Result<()> {
        self.socket.reregister(poll, factory)
    }

    fn unregister(&mut self, poll: &mut Poll) -> smithay::reexports::calloop::Result<()> {
        self.socket.unregister(poll)
    }
}

/// Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the limits before and after.
///
/// A compositor holds fds for its clients' buffers (up to four per dma-buf, one per shm pool),
/// and the common soft limit of 1024 is reached by a handful of busy clients.
pub fn raise_fd_limit() -> io::Result<(Rlimit, Rlimit)> {
    let before = rustix::process::getrlimit(Resource::Nofile);
    if before.current != before.maximum {
        let raised = Rlimit {
            current: before.maximum,
            maximum: before.maximum,
        };
        rustix::process::setrlimit(Resource::Nofile, raised)?;
    }
    Ok((before, rustix::process::getrlimit(Resource::Nofile)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_the_fd_limit_reaches_the_hard_limit() {
        let (before, after) = raise_fd_limit().expect("setrlimit to the hard limit");
        assert_eq!(after.current, before.maximum);
        assert_eq!(after.maximum, before.maximum);
    }

    #[test]
    fn emfile_and_enfile_are_out_of_fds_others_are_not() {
        assert!(is_out_of_fds(&io::Error::from_raw_os_error(
            rustix::io::Errno::MFILE.raw_os_error()
        )));
        assert!(is_out_of_fds(&io::Error::from_raw_os_error(
            rustix::io::Errno::NFILE.raw_os_error()
        )));
        assert!(!is_out_of_fds(&io::Error::from_raw_os_error(
            rustix::io::Errno::CONNABORTED.raw_os_error()
        )));
    }
}
