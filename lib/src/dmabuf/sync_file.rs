//! sync_file: a kernel fence as a file descriptor (`<linux/sync_file.h>`).
//!
//! A dma-buf carries implicit fences (a GPU or display engine still reading or writing it);
//! [`DmaBuf::export_sync_file`](super::DmaBuf::export_sync_file) snapshots them as a sync_file,
//! [`DmaBuf::import_sync_file`](super::DmaBuf::import_sync_file) attaches an explicit one. A
//! sync_file polls readable once it has signalled.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;

/// An owned sync_file fence.
#[derive(Debug)]
pub struct SyncFile {
    fd: OwnedFd,
}

/// How a wait on a fence ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceState {
    /// The fence has signalled: the work it stands for is done.
    Signalled,
    /// The timeout passed first.
    TimedOut,
}

impl SyncFile {
    /// Takes ownership of a sync_file fd (for example a KMS out-fence).
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self { fd }
    }

    /// Gives the fd back.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Waits until the fence signals or `timeout` passes (EINTR restarts with the time left).
    pub fn wait(&self, timeout: Duration) -> Result<FenceState, Errno> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ts = rustix::time::Timespec {
                tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
                tv_nsec: left.subsec_nanos().into(),
            };
            let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
            match poll(&mut fds, Some(&ts)) {
                Ok(0) => return Ok(FenceState::TimedOut),
                Ok(_)
                    if fds[0]
                        .revents()
                        .intersects(PollFlags::ERR | PollFlags::NVAL) =>
                {
                    return Err(Errno::INVAL);
                }
                Ok(_) => return Ok(FenceState::Signalled),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// True if the fence has already signalled (does not block).
    pub fn is_signalled(&self) -> Result<bool, Errno> {
        Ok(self.wait(Duration::ZERO)? == FenceState::Signalled)
    }
}

impl AsFd for SyncFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
