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

    /// Waits until the fence signals or `timeout` passes (EINTR restarts with the time left). A
    /// timeout beyond what the clock counts (`Duration::MAX`) waits as long as it takes.
    pub fn wait(&self, timeout: Duration) -> Result<FenceState, Errno> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let ts = deadline.map(|deadline| {
                let left = deadline.saturating_duration_since(Instant::now());
                rustix::time::Timespec {
                    tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
                    tv_nsec: left.subsec_nanos().into(),
                }
            });
            let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
            match poll(&mut fds, ts.as_ref()) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A "fence" that has signalled: a pipe with a byte in it polls readable, as a signalled
    /// sync_file does. The write end is returned to keep an unsignalled one open.
    fn fence(signalled: bool) -> (SyncFile, OwnedFd) {
        let (r, w) = rustix::pipe::pipe().unwrap();
        if signalled {
            rustix::io::write(&w, b"x").unwrap();
        }
        (SyncFile::from_fd(r), w)
    }

    #[test]
    fn the_longest_timeout_does_not_panic() {
        // Found by proptests::any_timeout_on_a_signalled_fence: `Instant::now() + timeout`
        // panicked on overflow for Duration::MAX, the natural "wait for ever".
        let (f, _w) = fence(true);
        assert_eq!(f.wait(Duration::MAX), Ok(FenceState::Signalled));
        assert_eq!(
            f.wait(Duration::from_secs(u64::MAX / 2)),
            Ok(FenceState::Signalled)
        );
    }

    /// Property tests (issue 15): 2 000 + 200 = 2 200 cases per run.
    mod proptests {
        use super::*;

        use crate::proptest_config::config;

        proptest! {
            #![proptest_config(config(2_000))]

            /// Any timeout on a fence that has signalled: `Signalled` at once, no panic.
            #[test]
            fn any_timeout_on_a_signalled_fence(secs in prop_oneof![any::<u64>(), 0u64..10], nanos in 0u32..1_000_000_000) {
                let (f, _w) = fence(true);
                prop_assert_eq!(f.wait(Duration::new(secs, nanos)), Ok(FenceState::Signalled));
                prop_assert_eq!(f.is_signalled(), Ok(true));
            }
        }

        proptest! {
            #![proptest_config(config(200))]

            /// A fence that has not signalled times out after (never before) a short timeout.
            #[test]
            fn short_timeouts_on_a_pending_fence(micros in 0u64..200) {
                let (f, _w) = fence(false);
                let start = Instant::now();
                let timeout = Duration::from_micros(micros);
                prop_assert_eq!(f.wait(timeout), Ok(FenceState::TimedOut));
                prop_assert!(start.elapsed() >= timeout);
                prop_assert_eq!(f.is_signalled(), Ok(false));
            }
        }
    }
}
