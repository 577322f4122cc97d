//! In-guest: the buffer pool reuses its buffers, allocates nothing in the steady state, and holds a
//! buffer back until its release fence signals.

use std::collections::HashSet;
use std::time::Duration;

use wayheap::accounting;
use wayheap::dmabuf::SyncFile;
use wayheap::heap::HeapDir;
use wayheap::policy::{Allocator, Constraints, Policy};
use wayheap::pool::{BufferPool, PoolError};
use wayheap_tests::guest::{SwSyncTimeline, require_guest};

/// The dma-buf's identity: its file's inode (fstat; fdinfo has no `ino:` line on 5.10).
fn inode(b: &wayheap::dmabuf::DmaBuf) -> u64 {
    rustix::fs::fstat(b.fd()).unwrap().st_ino
}

#[test]
fn buffers_are_reused_without_new_allocations() {
    require_guest();
    let alloc = Allocator::new(
        Policy::parse("pool-test @cma,@system\n").unwrap(),
        HeapDir::default(),
    );
    let pool =
        BufferPool::allocate(&alloc, "pool-test", 1 << 20, 3, &Constraints::default()).unwrap();
    let allocated = || {
        accounting::snapshot()
            .iter()
            .filter(|r| r.usage == "pool-test")
            .map(|r| r.allocated_buffers)
            .sum::<u64>()
    };
    assert_eq!(allocated(), 3);

    let mut seen = HashSet::new();
    for _ in 0..50 {
        let a = pool.acquire(Duration::from_secs(1)).unwrap();
        let b = pool.acquire(Duration::from_secs(1)).unwrap();
        seen.insert(inode(&a));
        seen.insert(inode(&b));
    }
    assert!(
        (2..=3).contains(&seen.len()),
        "only the pool's buffers circulate: {seen:?}"
    );
    assert_eq!(allocated(), 3, "the steady state allocated nothing");

    let held: Vec<_> = (0..3).map(|_| pool.try_acquire().unwrap()).collect();
    assert!(pool.try_acquire().is_none());
    assert!(matches!(
        pool.acquire(Duration::from_millis(20)),
        Err(PoolError::Timeout { capacity: 3, .. })
    ));
    drop(held);
    assert_eq!(pool.available(), 3);
}

#[test]
fn a_fenced_release_is_handed_out_only_after_the_fence_signals() {
    require_guest();
    let heap = HeapDir::default().open("system").unwrap();
    let pool = BufferPool::from_buffers(vec![heap.allocate(4096).unwrap()]);
    let timeline = SwSyncTimeline::new().unwrap();

    let buf = pool.acquire(Duration::from_secs(1)).unwrap();
    let ino = inode(&buf);
    buf.release_after(SyncFile::from_fd(timeline.fence(1).unwrap()));
    assert_eq!(pool.available(), 1);
    assert!(pool.try_acquire().is_none(), "fence pending: not ready");
    assert!(matches!(
        pool.acquire(Duration::from_millis(30)),
        Err(PoolError::Timeout { .. })
    ));

    // Signal from another thread while acquire waits on the fence.
    let signaller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        timeline.advance(1).unwrap();
    });
    let again = pool.acquire(Duration::from_secs(5)).unwrap();
    assert_eq!(inode(&again), ino);
    signaller.join().unwrap();
}
