//! In-guest benchmarks. Each reports a ratio against a baseline measured in the same run (the raw
//! ioctl sequence, a fresh allocation, a memcpy), as a guest fact the host prints; nothing here
//! asserts a timing. Numbers come from a TCG-emulated CPU: ratios mean more than absolute times.

use std::hint::black_box;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use rustix::ioctl::{Opcode, Updater, ioctl, opcode};
use rustix::mm::{MapFlags, ProtFlags};
use wayheap::export::{MemfdAlloc, Udmabuf, export_app_memory};
use wayheap::heap::HeapDir;
use wayheap::pool::BufferPool;
use wayheap_tests::guest::{record_fact, require_guest};

#[global_allocator]
static ALLOC: MemfdAlloc = MemfdAlloc::new(1 << 20);

const MIB: usize = 1 << 20;

/// Median time of `runs` calls of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    f(); // warm-up
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    t.sort();
    t[runs / 2]
}

fn report(name: &str, subject: Duration, baseline: Duration, baseline_name: &str) {
    let ratio = subject.as_secs_f64() / baseline.as_secs_f64();
    record_fact(
        &format!("bench {name}"),
        format!("{subject:.2?} vs {baseline_name} {baseline:.2?}: ratio {ratio:.4}"),
    );
}

#[repr(C)]
struct AllocData {
    len: u64,
    fd: u32,
    fd_flags: u32,
    heap_flags: u64,
}
const DMA_HEAP_IOCTL_ALLOC: Opcode = opcode::read_write::<AllocData>(b'H', 0);

#[test]
fn allocate_map_free_8mib_api_vs_raw_ioctls() {
    require_guest();
    let heap = HeapDir::default().open("system").unwrap();
    let api = median(15, || {
        let buf = heap.allocate(8 * MIB).unwrap();
        let map = buf.map().unwrap();
        black_box(&map);
    });

    let node = rustix::fs::open(
        "/dev/dma_heap/system",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    let raw = median(15, || {
        let mut data = AllocData {
            len: 8 * MIB as u64,
            fd: 0,
            fd_flags: (OFlags::RDWR | OFlags::CLOEXEC).bits(),
            heap_flags: 0,
        };
        // SAFETY: DMA_HEAP_IOCTL_ALLOC reads/writes one `dma_heap_allocation_data`.
        unsafe {
            ioctl(
                &node,
                Updater::<{ DMA_HEAP_IOCTL_ALLOC }, _>::new(&mut data),
            )
        }
        .unwrap();
        // SAFETY: the kernel gave us a new fd.
        let fd = unsafe { OwnedFd::from_raw_fd(data.fd as i32) };
        // SAFETY: a fresh mapping of our own dma-buf, unmapped right after.
        let p = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                8 * MIB,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }
        .unwrap();
        black_box(p);
        // SAFETY: the mapping made above.
        unsafe { rustix::mm::munmap(p, 8 * MIB) }.unwrap();
    });
    report(
        "allocate+map+free 8 MiB (system heap)",
        api,
        raw,
        "raw ioctl+mmap",
    );
}

#[test]
fn pool_acquire_vs_fresh_allocation() {
    require_guest();
    let heap = HeapDir::default().open("system").unwrap();
    let pool = BufferPool::from_buffers((0..3).map(|_| heap.allocate(8 * MIB).unwrap()).collect());
    let acquire = median(101, || {
        let b = pool.acquire(Duration::from_secs(1)).unwrap();
        black_box(&b);
    });
    let fresh = median(15, || {
        black_box(heap.allocate(8 * MIB).unwrap());
    });
    report(
        "pool acquire+release (8 MiB buffers)",
        acquire,
        fresh,
        "fresh allocate+free",
    );
}

#[test]
fn exporting_app_memory_vs_copying_it_into_a_heap_buffer() {
    require_guest();
    let udmabuf = Udmabuf::open().unwrap();
    let heap = HeapDir::default().open("system").unwrap();
    for size in [8 * MIB, 32 * MIB] {
        let frame: Vec<u8> = vec![0x5a; size]; // memfd-backed via MemfdAlloc
        let export = median(9, || {
            black_box(export_app_memory(&udmabuf, &frame).unwrap());
        });
        let target = heap.allocate(size).unwrap();
        let mut map = target.map().unwrap();
        let copy = median(9, || {
            map.write().unwrap().copy_from_slice(&frame);
        });
        report(
            &format!("export {} MiB of app memory via udmabuf", size / MIB),
            export,
            copy,
            "memcpy into a mapped heap buffer",
        );
    }
}
