//! In-guest: exporting application memory through /dev/udmabuf — memfd buffers, the memfd global
//! allocator, scattered ranges, the kernel's seal/alignment/size rules, hugetlb, and the copy path.

use std::os::fd::{AsFd, AsRawFd};

use rustix::fs::{MemfdFlags, SealFlags};
use wayheap::accounting;
use wayheap::dmabuf::Origin;
use wayheap::export::{
    ExportError, MemfdAlloc, MemfdBuffer, MemfdRange, Udmabuf, copy_into_export, export_app_memory,
};
use wayheap_tests::guest::{is_bsp_kernel, record_fact, require_guest};

// Every Vec of 1 MiB or more in this test binary is memfd memory.
#[global_allocator]
static ALLOC: MemfdAlloc = MemfdAlloc::new(1 << 20);

const PAGE: usize = 4096;

fn pattern(i: usize) -> u8 {
    (i * 31 % 253) as u8
}

struct Param(&'static str, String);

impl Param {
    /// Sets a udmabuf module parameter for the scope of the guard.
    fn set(name: &'static str, value: &str) -> Param {
        let path = format!("/sys/module/udmabuf/parameters/{name}");
        let old = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, value).unwrap();
        Param(name, old.trim().to_owned())
    }
}

impl Drop for Param {
    fn drop(&mut self) {
        let _ = std::fs::write(
            format!("/sys/module/udmabuf/parameters/{}", self.0),
            &self.1,
        );
    }
}

#[test]
fn a_memfd_buffer_and_its_dmabuf_share_pages() {
    require_guest();
    let udmabuf = Udmabuf::open().unwrap();
    let mut mem = MemfdBuffer::new(1 << 20).unwrap();
    mem.iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = pattern(i));
    let exported = mem.export_range(&udmabuf, 0..mem.len()).unwrap();
    assert_eq!(exported.offset, 0);
    let buf = exported.dmabuf;
    assert_eq!((buf.size(), buf.origin()), (1 << 20, &Origin::Udmabuf));
    assert_eq!(buf.info().unwrap().exporter, "udmabuf");
    let mut map = buf.map().unwrap();
    assert!(
        map.read()
            .unwrap()
            .iter()
            .enumerate()
            .all(|(i, b)| *b == pattern(i))
    );
    // Writes through the dma-buf land in the application's buffer: no copy anywhere.
    map.write().unwrap()[12345] = 0x5a;
    assert_eq!(mem[12345], 0x5a);
    // F_SEAL_SHRINK was added (udmabuf needs it); writes stay allowed.
    let seals = rustix::fs::fcntl_get_seals(mem.memfd()).unwrap();
    assert!(seals.contains(SealFlags::SHRINK) && !seals.contains(SealFlags::WRITE));
}

#[test]
fn cpu_writes_through_the_memfd_are_flushed_for_devices() {
    require_guest();
    let udmabuf = Udmabuf::open().unwrap();
    let mut mem = MemfdBuffer::new(64 * PAGE).unwrap();
    let buf = mem.export_range(&udmabuf, 0..mem.len()).unwrap().dmabuf;
    // A frame written through the application's own mapping (as a wl_shm client does), then
    // flushed as a compositor does after the commit: both ioctls succeed on udmabuf (its
    // begin/end_cpu_access are the cache maintenance a non-coherent display engine needs), and
    // the dma-buf reads the frame.
    mem.iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = pattern(i + 7));
    buf.flush_cpu_writes()
        .expect("DMA_BUF_IOCTL_SYNC write start/end on a udmabuf");
    let map = buf.map().unwrap();
    assert!(
        map.read()
            .unwrap()
            .iter()
            .enumerate()
            .all(|(i, b)| *b == pattern(i + 7))
    );
}

#[test]
fn unaligned_ranges_export_with_a_plane_offset() {
    require_guest();
    let udmabuf = Udmabuf::open().unwrap();
    let mut mem = MemfdBuffer::new(64 * PAGE).unwrap();
    mem.iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = pattern(i));
    let exported = mem.export_range(&udmabuf, 5000..70000).unwrap();
    assert_eq!(exported.offset, 5000 - PAGE as u32);
    assert_eq!(
        exported.dmabuf.size(),
        70000usize.div_ceil(PAGE) * PAGE - PAGE
    );
    let map = exported.dmabuf.map().unwrap();
    let bytes = map.read().unwrap();
    assert_eq!(bytes[exported.offset as usize], pattern(5000));
    assert!(matches!(
        mem.export_range(&udmabuf, 0..mem.len() + 1),
        Err(ExportError::OutOfRange { .. })
    ));
}

#[test]
fn the_kernels_rules_give_named_errors() {
    require_guest();
    let udmabuf = Udmabuf::open().unwrap();
    let mem = MemfdBuffer::new(4 * PAGE).unwrap();
    let at = |offset, size| MemfdRange {
        memfd: mem.memfd(),
        offset,
        size,
    };
    assert!(matches!(
        udmabuf.export(at(100, PAGE as u64)),
        Err(ExportError::Unaligned { .. })
    ));
    assert!(matches!(
        udmabuf.export(at(0, 100)),
        Err(ExportError::Unaligned { .. })
    ));
    assert!(matches!(udmabuf.export(at(0, 0)), Err(ExportError::Empty)));
    assert!(matches!(
        udmabuf.export(at(PAGE as u64, 4 * PAGE as u64)),
        Err(ExportError::OutOfRange { .. })
    ));

    // A memfd without MFD_ALLOW_SEALING cannot get F_SEAL_SHRINK.
    let plain = rustix::fs::memfd_create("plain", MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&plain, PAGE as u64).unwrap();
    let err = udmabuf
        .export(MemfdRange {
            memfd: plain.as_fd(),
            offset: 0,
            size: PAGE as u64,
        })
        .unwrap_err();
    assert!(matches!(err, ExportError::NotSealable { .. }), "{err}");

    // A write-sealed memfd is refused, with the reason.
    let sealed =
        rustix::fs::memfd_create("sealed", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .unwrap();
    rustix::fs::ftruncate(&sealed, PAGE as u64).unwrap();
    rustix::fs::fcntl_add_seals(&sealed, SealFlags::WRITE).unwrap();
    let err = udmabuf
        .export(MemfdRange {
            memfd: sealed.as_fd(),
            offset: 0,
            size: PAGE as u64,
        })
        .unwrap_err();
    assert!(matches!(err, ExportError::WriteSealed), "{err}");
    assert!(err.to_string().contains("F_SEAL_WRITE"));
    // ...and the kernel agrees (EINVAL), so the check is not ours alone.
    assert_eq!(
        raw_udmabuf_create(&udmabuf, sealed.as_raw_fd(), 0, PAGE as u64),
        Err(rustix::io::Errno::INVAL)
    );
}

/// UDMABUF_CREATE without the library's checks, to show what the kernel itself refuses.
fn raw_udmabuf_create(
    udmabuf: &Udmabuf,
    memfd: i32,
    offset: u64,
    size: u64,
) -> Result<(), rustix::io::Errno> {
    #[repr(C)]
    struct Create {
        memfd: u32,
        flags: u32,
        offset: u64,
        size: u64,
    }
    const CREATE: rustix::ioctl::Opcode = rustix::ioctl::opcode::write::<Create>(b'u', 0x42);
    // SAFETY: UDMABUF_CREATE reads one `struct udmabuf_create`; on success the returned fd leaks
    // into this test process, which is fine for a test that expects failure.
    unsafe {
        rustix::ioctl::ioctl(
            udmabuf,
            rustix::ioctl::Setter::<{ CREATE }, Create>::new(Create {
                memfd: memfd as u32,
                flags: 1,
                offset,
                size,
            }),
        )
    }
}

#[test]
fn scattered_ranges_of_two_memfds_become_one_dmabuf() {
    require_guest();
    let udmabuf = Udmabuf::open().unwrap();
    let mut a = MemfdBuffer::new(8 * PAGE).unwrap();
    let mut b = MemfdBuffer::new(8 * PAGE).unwrap();
    a.fill(0xaa);
    b.fill(0xbb);
    let p = PAGE as u64;
    let ranges = [
        MemfdRange {
            memfd: a.memfd(),
            offset: 2 * p,
            size: p,
        },
        MemfdRange {
            memfd: b.memfd(),
            offset: 0,
            size: 2 * p,
        },
        MemfdRange {
            memfd: a.memfd(),
            offset: 6 * p,
            size: p,
        },
    ];
    let buf = udmabuf.export_list(&ranges, "scatter").unwrap();
    assert_eq!(buf.size(), 4 * PAGE);
    let map = buf.map().unwrap();
    let bytes = map.read().unwrap();
    let firsts: Vec<u8> = (0..4).map(|i| bytes[i * PAGE]).collect();
    assert_eq!(firsts, [0xaa, 0xbb, 0xbb, 0xaa]);
    assert_eq!(buf.info().unwrap().name.as_deref(), Some("udmabuf:scatter"));
}

#[test]
fn size_limit_counts_the_whole_list_and_says_so() {
    require_guest();
    let udmabuf = Udmabuf::open().unwrap();
    if is_bsp_kernel() {
        fixed_limits_of_a_udmabuf_without_parameters(&udmabuf);
        return;
    }
    let _limit = Param::set("size_limit_mb", "1");
    let a = MemfdBuffer::new(768 << 10).unwrap();
    let b = MemfdBuffer::new(768 << 10).unwrap();
    let ranges = [
        MemfdRange {
            memfd: a.memfd(),
            offset: 0,
            size: 768 << 10,
        },
        MemfdRange {
            memfd: b.memfd(),
            offset: 0,
            size: 768 << 10,
        },
    ];
    // Each range is under 1 MiB, the list is 1.5 MiB: refused, by us with the reason...
    let err = udmabuf.export_list(&ranges, "").unwrap_err();
    assert!(
        matches!(err, ExportError::SizeLimit { total, limit_mb: 1 } if total == 3 << 19),
        "{err}"
    );
    record_fact(
        "udmabuf size_limit_mb",
        format!("counts the CREATE_LIST total (7.3): {err}"),
    );
    // ...one range alone passes.
    udmabuf.export_list(&ranges[..1], "").unwrap();
    // list_limit is enforced too.
    let _list = Param::set("list_limit", "1");
    assert!(matches!(
        udmabuf.export_list(&ranges, ""),
        Err(ExportError::ListLimit { count: 2, limit: 1 })
    ));
}

/// 5.10's udmabuf has no parameters: 64 MiB per dma-buf and 1024 ranges, constants the kernel
/// answers with a bare EINVAL. The library names them.
fn fixed_limits_of_a_udmabuf_without_parameters(udmabuf: &Udmabuf) {
    assert!(
        !std::path::Path::new("/sys/module/udmabuf/parameters/size_limit_mb").exists(),
        "5.10's udmabuf has no size_limit_mb parameter"
    );
    assert_eq!(Udmabuf::size_limit(), None);
    let mem = MemfdBuffer::new(65 << 20).unwrap();
    let whole = MemfdRange {
        memfd: mem.memfd(),
        offset: 0,
        size: 65 << 20,
    };
    let err = udmabuf.export(whole).unwrap_err();
    assert!(
        matches!(err, ExportError::FixedSizeLimit { total } if total == 65 << 20),
        "{err}"
    );
    assert!(err.to_string().contains("64 MiB"), "{err}");
    record_fact("udmabuf limit on 5.10", &err);
    // 64 MiB exactly is allowed.
    udmabuf
        .export(MemfdRange {
            size: 64 << 20,
            ..whole
        })
        .unwrap();
    // 1025 one-page ranges (of one memfd, repeated): over the fixed list limit of 1024.
    let page = MemfdRange {
        size: PAGE as u64,
        ..whole
    };
    let err = udmabuf.export_list(&vec![page; 1025], "").unwrap_err();
    assert!(
        matches!(
            err,
            ExportError::ListLimit {
                count: 1025,
                limit: 1024
            }
        ),
        "{err}"
    );
    udmabuf.export_list(&vec![page; 1024], "").unwrap();
}

#[test]
fn hugetlb_memfds_export() {
    require_guest();
    std::fs::write("/proc/sys/vm/nr_hugepages", "4").unwrap();
    let udmabuf = Udmabuf::open().unwrap();
    let mut mem = MemfdBuffer::new_hugetlb(3 << 20).unwrap();
    assert_eq!(mem.mapped_len(), 4 << 20);
    mem.fill(0x42);
    if is_bsp_kernel() {
        // 5.10's udmabuf takes shmem memfds only (hugetlbfs arrived in 5.16).
        let err = mem.export_range(&udmabuf, 0..mem.len()).unwrap_err();
        assert!(matches!(err, ExportError::HugetlbUnsupported), "{err}");
        record_fact("hugetlb udmabuf on 5.10", &err);
        return;
    }
    let exported = mem.export_range(&udmabuf, 0..mem.len()).unwrap();
    assert_eq!(exported.dmabuf.size(), 3 << 20);
    assert!(
        exported
            .dmabuf
            .map()
            .unwrap()
            .read()
            .unwrap()
            .iter()
            .all(|b| *b == 0x42)
    );
}

#[test]
fn ordinary_vecs_from_the_memfd_allocator_export_without_a_copy() {
    require_guest();
    let udmabuf = Udmabuf::open().unwrap();
    let copies_before = accounting::copies();
    let mut frame: Vec<u8> = vec![0; 4 << 20];
    frame
        .iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = pattern(i));
    let exported = export_app_memory(&udmabuf, &frame[100..200_000]).unwrap();
    assert_eq!(exported.offset, 100);
    let map = exported.dmabuf.map().unwrap();
    let bytes = map.read().unwrap();
    assert!(
        bytes[100..200_000] == frame[100..200_000],
        "the dma-buf holds the Vec's bytes"
    );
    drop(bytes);
    // Shared pages: a write on one side is seen on the other.
    frame[150] = 0xee;
    assert_eq!(map.read().unwrap()[150], 0xee);
    assert_eq!(accounting::copies(), copies_before, "no copy was made");
}

#[test]
fn memory_the_library_did_not_allocate_needs_the_counted_copy() {
    require_guest();
    let udmabuf = Udmabuf::open().unwrap();
    let small = vec![7u8; 1000]; // under MemfdAlloc's threshold: plain malloc
    let err = export_app_memory(&udmabuf, &small).unwrap_err();
    assert!(matches!(err, ExportError::NotExportable { .. }));
    assert!(err.to_string().contains("copy_into_export"), "{err}");
    let stack = [1u8; 64];
    assert!(matches!(
        export_app_memory(&udmabuf, &stack),
        Err(ExportError::NotExportable { .. })
    ));

    let (n, bytes) = accounting::copies();
    let copied = copy_into_export(&udmabuf, &small, "fallback").unwrap();
    assert_eq!(accounting::copies(), (n + 1, bytes + 1000));
    assert_eq!(
        &copied.dmabuf.map().unwrap().read().unwrap()[..1000],
        &small[..]
    );
}
