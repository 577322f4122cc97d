//! A raw Wayland connection: a Unix stream socket written with `sendmsg` (fds as SCM_RIGHTS)
//! and read with `recvmsg` (fds the compositor sends are closed at once), with deadlines from
//! `poll` so that no call blocks past them.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

use super::wire::{self, Header};

/// The most fds one `sendmsg` may carry (the kernel's SCM_MAX_FD).
pub const MAX_FDS: usize = 253;

/// How a write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Every byte went out.
    All,
    /// The compositor closed the connection (EPIPE, ECONNRESET).
    Closed,
    /// The socket stayed full until the deadline: the compositor is not reading.
    Timeout,
}

/// How a read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Bytes arrived (possibly not a whole message yet).
    Data,
    /// Nothing arrived before the deadline (or now, for a non-waiting read).
    Nothing,
    /// The compositor closed the connection.
    Closed,
}

/// One client connection.
#[derive(Debug)]
pub struct Conn {
    stream: UnixStream,
    inbuf: Vec<u8>,
    /// Fds the compositor sent (and that were closed here).
    pub fds_received: usize,
}

fn timespec(left: Duration) -> Timespec {
    Timespec::try_from(left).unwrap_or(Timespec {
        tv_sec: i64::MAX,
        tv_nsec: 0,
    })
}

/// Polls `fd` for `flags` until `deadline` (`None`: do not wait); the events that are ready.
fn wait_for(fd: BorrowedFd<'_>, flags: PollFlags, deadline: Option<Instant>) -> PollFlags {
    loop {
        let left = deadline.map_or(Duration::ZERO, |d| {
            d.saturating_duration_since(Instant::now())
        });
        let mut pfd = [PollFd::from_borrowed_fd(fd, flags)];
        match rustix::event::poll(&mut pfd, Some(&timespec(left))) {
            Ok(_) => return pfd[0].revents(),
            Err(Errno::INTR) => continue,
            Err(_) => return PollFlags::ERR,
        }
    }
}

impl Conn {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> std::io::Result<Conn> {
        Ok(Conn {
            stream: UnixStream::connect(path)?,
            inbuf: Vec::new(),
            fds_received: 0,
        })
    }

    /// The socket.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    /// Writes `bytes` with `fds` attached to the first byte, reading whatever arrives meanwhile
    /// (a compositor blocked on writing to us would otherwise stop reading), until `deadline`.
    pub fn send(&mut self, bytes: &[u8], fds: &[BorrowedFd<'_>], deadline: Instant) -> Sent {
        let mut written = 0;
        let mut fds_pending = fds;
        while written < bytes.len() {
            let ready = wait_for(self.fd(), PollFlags::OUT | PollFlags::IN, Some(deadline));
            if ready.is_empty() {
                return Sent::Timeout;
            }
            if ready.contains(PollFlags::IN) && self.recv(None) == Received::Closed {
                return Sent::Closed;
            }
            if !ready.intersects(PollFlags::OUT | PollFlags::ERR | PollFlags::HUP) {
                continue;
            }
            match self.send_once(&bytes[written..], fds_pending) {
                Ok(n) => {
                    written += n;
                    fds_pending = &[];
                }
                Err(Errno::AGAIN | Errno::INTR) => {}
                Err(_) => return Sent::Closed,
            }
        }
        Sent::All
    }

    /// Writes `bytes` without reading anything meanwhile (a client that never reads), until
    /// `deadline`.
    pub fn send_unread(&mut self, bytes: &[u8], deadline: Instant) -> Sent {
        let mut written = 0;
        while written < bytes.len() {
            let ready = wait_for(self.fd(), PollFlags::OUT, Some(deadline));
            if ready.is_empty() {
                return Sent::Timeout;
            }
            match self.send_once(&bytes[written..], &[]) {
                Ok(n) => written += n,
                Err(Errno::AGAIN | Errno::INTR) => {}
                Err(_) => return Sent::Closed,
            }
        }
        Sent::All
    }

    fn send_once(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<usize, Errno> {
        let fds = &fds[..fds.len().min(MAX_FDS)];
        let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() {
            control.push(SendAncillaryMessage::ScmRights(fds));
        }
        rustix::net::sendmsg(
            self.fd(),
            &[IoSlice::new(bytes)],
            &mut control,
            SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
        )
    }

    /// Reads once (waiting until `deadline`, or not at all for `None`), appending bytes to the
    /// input buffer and closing received fds.
    pub fn recv(&mut self, deadline: Option<Instant>) -> Received {
        if deadline.is_some() && wait_for(self.fd(), PollFlags::IN, deadline).is_empty() {
            return Received::Nothing;
        }
        let mut buf = [0u8; 4096];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(32))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = loop {
            match rustix::net::recvmsg(
                self.fd(),
                &mut [std::io::IoSliceMut::new(&mut buf)],
                &mut control,
                RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
            ) {
                Err(Errno::INTR) => continue,
                other => break other,
            }
        };
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = msg {
                // Dropped here: closed.
                self.fds_received += fds.count();
            }
        }
        match got {
            Ok(r) if r.bytes == 0 => Received::Closed,
            Ok(r) => {
                self.inbuf.extend_from_slice(&buf[..r.bytes]);
                Received::Data
            }
            Err(Errno::AGAIN) => Received::Nothing,
            Err(_) => Received::Closed,
        }
    }

    /// Reads everything available now; false if the compositor closed the connection.
    pub fn drain(&mut self) -> bool {
        loop {
            match self.recv(None) {
                Received::Data => {}
                Received::Nothing => return true,
                Received::Closed => return false,
            }
        }
    }

    /// The complete messages received so far (header and body), oldest first.
    pub fn take_messages(&mut self) -> Vec<(Header, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(h) = wire::header(&self.inbuf[at..]) {
            if h.size < wire::HEADER {
                // A compositor's malformed event: nothing after it can be framed.
                at = self.inbuf.len();
                break;
            }
            if self.inbuf.len() - at < h.size {
                break;
            }
            out.push((h, self.inbuf[at + wire::HEADER..at + h.size].to_vec()));
            at += h.size;
        }
        self.inbuf.drain(..at);
        out
    }

    /// Shuts the connection down in both directions (an abrupt disconnect).
    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}
