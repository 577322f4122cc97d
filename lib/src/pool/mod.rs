//! A pool of N dma-bufs of one size: acquire, use, release — no allocation in the steady state.
//!
//! Allocating a dma-buf costs a syscall, page allocation and zeroing (milliseconds for 8 MiB of
//! CMA); a camera or a swapchain reuses a fixed set instead. A buffer can be released with a
//! fence (the display or encoder still reading it): the pool hands it out again only once that
//! fence has signalled.
//!
//! ## How to use
//!
//! ```no_run
//! use std::time::Duration;
//! use wayheap::policy::{Allocator, Constraints};
//! use wayheap::pool::BufferPool;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let alloc = Allocator::from_env()?;
//! let pool = BufferPool::allocate(&alloc, "camera", 640 * 480 * 2, 4, &Constraints::default())?;
//! let frame = pool.acquire(Duration::from_millis(100))?;
//! // ... fill frame, hand frame.fd() to the display ...
//! drop(frame); // back in the pool
//! # Ok(())
//! # }
//! ```

use std::ops::Deref;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::dmabuf::{DmaBuf, FenceState, SyncFile};
use crate::policy::{AllocError, Allocator, Constraints};

struct Slot {
    buffer: DmaBuf,
    /// Signals when the last user is done with the buffer.
    fence: Option<SyncFile>,
}

struct Shared {
    free: Mutex<Vec<Slot>>,
    returned: Condvar,
    capacity: usize,
}

/// A fixed set of equal dma-bufs.
#[derive(Clone)]
pub struct BufferPool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferPool")
            .field("capacity", &self.shared.capacity)
            .field("available", &self.available())
            .finish()
    }
}

/// Why no buffer came out of the pool.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Every buffer stayed in use (or fenced) for the whole timeout.
    #[error("no buffer of the {capacity} in the pool became free within {waited:?}")]
    Timeout {
        /// The pool's size.
        capacity: usize,
        /// How long was waited.
        waited: Duration,
    },
    /// Waiting on a release fence failed.
    #[error("waiting on a buffer's release fence failed: {0}")]
    Fence(rustix::io::Errno),
}

/// A buffer out of the pool; goes back when dropped (or with a fence, [`release_after`]).
///
/// [`release_after`]: PooledBuffer::release_after
pub struct PooledBuffer {
    slot: Option<Slot>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PooledBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBuffer")
            .field("buffer", &self.slot.as_ref().map(|s| &s.buffer))
            .finish()
    }
}

impl BufferPool {
    /// Allocates `count` buffers of `size` bytes for `usage` through `alloc`'s policy.
    pub fn allocate(
        alloc: &Allocator,
        usage: &str,
        size: usize,
        count: usize,
        constraints: &Constraints,
    ) -> Result<Self, AllocError> {
        let buffers = (0..count)
            .map(|_| alloc.allocate(usage, size, constraints).map(|a| a.buffer))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_buffers(buffers))
    }

    /// A pool of buffers allocated elsewhere.
    pub fn from_buffers(buffers: Vec<DmaBuf>) -> Self {
        let capacity = buffers.len();
        // Capacity reserved up front: returning a buffer never reallocates the free list.
        let mut free = Vec::with_capacity(capacity);
        free.extend(buffers.into_iter().map(|buffer| Slot {
            buffer,
            fence: None,
        }));
        Self {
            shared: Arc::new(Shared {
                free: Mutex::new(free),
                returned: Condvar::new(),
                capacity,
            }),
        }
    }

    /// Buffers in the pool.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Buffers not handed out now (some may still be fenced).
    pub fn available(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.shared.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A free buffer whose release fence (if any) has signalled, without waiting.
    pub fn try_acquire(&self) -> Option<PooledBuffer> {
        let mut free = self.lock();
        let ready = free.iter().position(|s| {
            s.fence
                .as_ref()
                .is_none_or(|f| f.is_signalled().unwrap_or(true))
        })?;
        let mut slot = free.swap_remove(ready);
        slot.fence = None;
        Some(PooledBuffer {
            slot: Some(slot),
            shared: self.shared.clone(),
        })
    }

    /// A free buffer, waiting up to `timeout` for one to be returned and for its release fence.
    pub fn acquire(&self, timeout: Duration) -> Result<PooledBuffer, PoolError> {
        // None: longer than the clock counts (Duration::MAX), wait as long as it takes.
        let deadline = Instant::now().checked_add(timeout);
        let left = || {
            deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            })
        };
        let mut free = self.lock();
        loop {
            // Prefer a buffer that is ready; else take a fenced one and wait on its fence.
            if let Some(i) = free.iter().position(|s| s.fence.is_none()) {
                let slot = free.swap_remove(i);
                return Ok(PooledBuffer {
                    slot: Some(slot),
                    shared: self.shared.clone(),
                });
            }
            if let Some(mut slot) = free.pop() {
                drop(free);
                let state = slot
                    .fence
                    .as_ref()
                    .map_or(Ok(FenceState::Signalled), |f| f.wait(left()));
                match state {
                    Ok(FenceState::Signalled) => {
                        slot.fence = None;
                        return Ok(PooledBuffer {
                            slot: Some(slot),
                            shared: self.shared.clone(),
                        });
                    }
                    other => {
                        // Put it back untouched; report.
                        self.lock().push(slot);
                        return Err(match other {
                            Err(e) => PoolError::Fence(e),
                            _ => PoolError::Timeout {
                                capacity: self.shared.capacity,
                                waited: timeout,
                            },
                        });
                    }
                }
            }
            let left = left();
            if left.is_zero() {
                return Err(PoolError::Timeout {
                    capacity: self.shared.capacity,
                    waited: timeout,
                });
            }
            free = self
                .shared
                .returned
                .wait_timeout(free, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl PooledBuffer {
    /// Returns the buffer to the pool with a fence: it is handed out again only after the fence
    /// signals (the display is done scanning it out, the encoder done reading it).
    pub fn release_after(mut self, fence: SyncFile) {
        if let Some(slot) = self.slot.as_mut() {
            slot.fence = Some(fence);
        }
    }
}

impl Deref for PooledBuffer {
    type Target = DmaBuf;
    fn deref(&self) -> &DmaBuf {
        &self.slot.as_ref().expect("present until drop").buffer
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.shared
                .free
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(slot);
            self.shared.returned.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dmabuf::Origin;

    #[test]
    fn the_longest_timeout_does_not_panic() {
        // As SyncFile::wait (its proptests found it): `Instant::now() + timeout` panicked on
        // overflow for Duration::MAX.
        let memfd = rustix::fs::memfd_create("pool", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let pool =
            BufferPool::from_buffers(vec![DmaBuf::from_parts(memfd, 4096, Origin::Udmabuf, None)]);
        let buf = pool.acquire(Duration::MAX).unwrap();
        assert_eq!(buf.size(), 4096);
    }
}
