//! In-guest: heaps, dma-buf handles, sync, fences, accounting and the policy walk, on a real
//! kernel (7.3 with cma=128M, and the matrix's 5.10, whose differences are asserted as such).

use std::os::fd::AsFd;
use std::time::Duration;

use wayheap::accounting;
use wayheap::dmabuf::{DmaBuf, DmaBufError, FenceAccess, FenceState, Origin, SyncFile};
use wayheap::heap::{HeapDir, HeapError, HeapKind};
use wayheap::policy::{AllocError, Allocator, Constraints, Policy, SkipReason};
use wayheap_tests::guest::{
    SwSyncTimeline, as_nobody, cma_heap_name, is_bsp_kernel, mknod_like, record_fact,
    require_guest, temp_dir,
};

/// The exporter a heap's buffers show in fdinfo: the heap's name, except on 5.10, where every
/// heap exported through the shared heap-helpers code.
fn exporter_of(heap: &str) -> &str {
    if is_bsp_kernel() {
        "heap_helpers"
    } else {
        heap
    }
}

#[test]
fn heaps_are_listed_and_classified() {
    require_guest();
    let dir = HeapDir::default();
    let heaps = dir.list().unwrap();
    let kind = |n: &str| {
        heaps
            .iter()
            .find(|h| h.name == n)
            .map(|h| (h.kind.clone(), h.properties))
    };
    let (k, p) = kind("system").unwrap();
    assert_eq!(k, HeapKind::System);
    assert!(!p.contiguous && p.cached);
    // 5.10 to 6.15: the default CMA area is the heap `reserved`; since 6.16 `default_cma_region`.
    let cma = cma_heap_name();
    let (k, p) = kind(cma).unwrap();
    assert_eq!(k, HeapKind::Cma);
    assert!(p.contiguous);
    assert_eq!(dir.cma_heap().as_deref(), Some(cma));
}

#[test]
fn zero_length_and_missing_heaps_are_typed_errors() {
    require_guest();
    let heap = HeapDir::default().open("system").unwrap();
    assert!(matches!(
        heap.allocate(0),
        Err(HeapError::ZeroLength { .. })
    ));
    let err = HeapDir::default().open("no-such-heap").unwrap_err();
    assert!(matches!(err, HeapError::NotFound { .. }));
    assert!(err.to_string().contains("CONFIG_DMABUF_HEAPS"), "{err}");
}

#[test]
fn sizes_are_page_rounded() {
    require_guest();
    let buf = HeapDir::default()
        .open("system")
        .unwrap()
        .allocate(5000)
        .unwrap();
    assert_eq!(buf.size(), 8192);
    assert_eq!(buf.info().unwrap().size, 8192);
}

#[test]
fn buffers_are_named_heap_and_usage_in_fdinfo() {
    require_guest();
    let cma = cma_heap_name();
    let heap = HeapDir::default().open(cma).unwrap();
    let buf = heap.allocate_for(1 << 20, "camera").unwrap();
    let info = buf.info().unwrap();
    assert_eq!(info.exporter, exporter_of(cma));
    assert_eq!(info.name, Some(format!("{cma}:camera")));
    assert_eq!(buf.usage(), Some("camera"));
    // The kernel keeps 31 bytes; longer names are cut, not refused.
    let long = HeapDir::default()
        .open("system")
        .unwrap()
        .allocate_for(4096, &"u".repeat(100))
        .unwrap();
    let name = long.info().unwrap().name.unwrap();
    assert_eq!(name.len(), 31);
    assert!(name.starts_with("system:uuu"));
    record_fact(
        "SET_NAME",
        format!(
            "fdinfo name {:?} (cut to {} bytes)",
            info.name.unwrap(),
            name.len()
        ),
    );
}

#[test]
fn accounting_follows_allocation_and_release_and_fdinfo_lists_the_fds() {
    require_guest();
    let heap = HeapDir::default().open("system").unwrap();
    let before = accounting::live_for_provider("system");
    let a = heap.allocate_for(1 << 20, "acct-test").unwrap();
    let b = heap.allocate_for(2 << 20, "acct-test").unwrap();
    let row = accounting::snapshot()
        .into_iter()
        .find(|r| r.usage == "acct-test")
        .unwrap();
    assert_eq!((row.live_buffers, row.live_bytes), (2, 3 << 20));
    assert_eq!(
        accounting::live_for_provider("system"),
        (before.0 + 2, before.1 + (3 << 20))
    );

    let fds = accounting::process_dmabufs(None).unwrap();
    let ours: Vec<_> = fds
        .iter()
        .filter(|f| f.info.name.as_deref() == Some("system:acct-test"))
        .collect();
    assert_eq!(ours.len(), 2, "{fds:?}");
    assert!(ours.iter().any(|f| f.info.size == 2 << 20));

    drop(a);
    drop(b);
    let row = accounting::snapshot()
        .into_iter()
        .find(|r| r.usage == "acct-test")
        .unwrap();
    assert_eq!(
        (row.live_buffers, row.live_bytes, row.allocated_buffers),
        (0, 0, 2)
    );
    assert!(
        accounting::process_dmabufs(None)
            .unwrap()
            .iter()
            .all(|f| f.info.name.as_deref() != Some("system:acct-test"))
    );
}

#[test]
fn foreign_dmabuf_fds_are_imported_and_other_fds_rejected() {
    require_guest();
    let buf = HeapDir::default()
        .open("system")
        .unwrap()
        .allocate(3 << 12)
        .unwrap();
    let dup = buf.fd().try_clone_to_owned().unwrap();
    let imported = DmaBuf::import(dup).unwrap();
    assert_eq!(imported.size(), 3 << 12);
    assert_eq!(
        imported.origin(),
        &Origin::Foreign(exporter_of("system").into())
    );

    let memfd = rustix::fs::memfd_create("not-a-dmabuf", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let err = DmaBuf::import(memfd).unwrap_err();
    assert!(matches!(err, DmaBufError::NotADmaBuf { .. }), "{err}");
    let file = std::fs::File::open("/proc/self/status").unwrap();
    assert!(matches!(
        DmaBuf::import(file.into()),
        Err(DmaBufError::NotADmaBuf { .. })
    ));
}

#[test]
fn cpu_access_through_sync_guards_reaches_the_same_pages() {
    require_guest();
    for heap in ["system", cma_heap_name()] {
        let buf = HeapDir::default()
            .open(heap)
            .unwrap()
            .allocate(1 << 16)
            .unwrap();
        let mut a = buf.map().unwrap();
        a.write()
            .unwrap()
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i % 251) as u8);
        // A second, independent mapping sees the bytes.
        let b = buf.map().unwrap();
        let r = b.read().unwrap();
        assert!(
            r.iter().enumerate().all(|(i, v)| *v == (i % 251) as u8),
            "{heap}"
        );
        drop(r);
        let mut rw = a.read_write().unwrap();
        rw[0] ^= 0xff;
        assert_eq!(rw[0], 0xff);
    }
}

#[test]
fn sync_file_export_and_import_with_timeouts() {
    require_guest();
    let buf = HeapDir::default()
        .open("system")
        .unwrap()
        .allocate(4096)
        .unwrap();
    if is_bsp_kernel() {
        // 5.10 has neither ioctl (6.0 added both): a typed error that says so, not ENOTTY.
        let err = buf.export_sync_file(FenceAccess::ReadWrite).unwrap_err();
        assert!(
            matches!(err, DmaBufError::Unsupported { since: "6.0", .. }),
            "{err}"
        );
        let timeline = SwSyncTimeline::new().unwrap();
        let fence = SyncFile::from_fd(timeline.fence(1).unwrap());
        let err = buf
            .import_sync_file(&fence, FenceAccess::Write)
            .unwrap_err();
        assert!(
            matches!(err, DmaBufError::Unsupported { since: "6.0", .. }),
            "{err}"
        );
        record_fact("sync_file on 5.10", err);
        return;
    }
    // An idle buffer's fences are already signalled.
    assert_eq!(
        buf.export_sync_file(FenceAccess::ReadWrite)
            .unwrap()
            .wait(Duration::ZERO)
            .unwrap(),
        FenceState::Signalled
    );

    // Attach a pending write fence (sw_sync): readers must now wait for it.
    let timeline = SwSyncTimeline::new().unwrap();
    let pending = SyncFile::from_fd(timeline.fence(1).unwrap());
    buf.import_sync_file(&pending, FenceAccess::Write).unwrap();
    let readers_wait = buf.export_sync_file(FenceAccess::Read).unwrap();
    assert_eq!(
        readers_wait.wait(Duration::from_millis(50)).unwrap(),
        FenceState::TimedOut
    );
    assert!(!readers_wait.is_signalled().unwrap());

    timeline.advance(1).unwrap();
    assert_eq!(
        readers_wait.wait(Duration::from_secs(5)).unwrap(),
        FenceState::Signalled
    );
    assert_eq!(
        buf.export_sync_file(FenceAccess::Read)
            .unwrap()
            .wait(Duration::ZERO)
            .unwrap(),
        FenceState::Signalled
    );
}

#[test]
fn cma_exhaustion_falls_back_to_the_system_heap() {
    require_guest();
    let cma_name = cma_heap_name();
    let cma = HeapDir::default().open(cma_name).unwrap();
    // Fill the 128 MiB area.
    let mut held = Vec::new();
    let full = loop {
        match cma.allocate(8 << 20) {
            Ok(b) => held.push(b),
            Err(e @ HeapError::OutOfMemory { .. }) => break e,
            Err(e) => panic!("unexpected: {e}"),
        }
        assert!(held.len() < 64, "CMA never filled up");
    };
    record_fact(
        "CMA exhaustion",
        format!("{} x 8 MiB then: {full}", held.len()),
    );

    let policy = Policy::parse("frames @cma,@system,udmabuf\n").unwrap();
    let alloc = Allocator::new(policy, HeapDir::default());
    let a = alloc
        .allocate("frames", 8 << 20, &Constraints::default())
        .unwrap();
    assert_eq!(a.provider, "system");
    // 5.10 has the same area as an ION heap too, which @cma takes after the DMA-BUF one: full
    // as well.
    let full_ones: &[&str] = if is_bsp_kernel() {
        &[cma_name, "ion:reserved"]
    } else {
        &[cma_name]
    };
    assert_eq!(
        a.skipped
            .iter()
            .map(|s| s.provider.as_str())
            .collect::<Vec<_>>(),
        full_ones
    );
    assert!(
        a.skipped
            .iter()
            .all(|s| matches!(s.reason, SkipReason::OutOfMemory(_))),
        "{:?}",
        a.skipped
    );

    // A contiguous request cannot fall back to system: the error says CMA was full.
    let err = alloc
        .allocate(
            "frames",
            8 << 20,
            &Constraints {
                contiguous: true,
                ..Default::default()
            },
        )
        .unwrap_err();
    match &err {
        AllocError::Exhausted { skipped, .. } => {
            assert!(
                skipped
                    .iter()
                    .any(|s| s.provider == cma_name
                        && matches!(s.reason, SkipReason::OutOfMemory(_)))
            )
        }
        other => panic!("expected Exhausted, got {other}"),
    }
    drop(held);
    let a = alloc
        .allocate(
            "frames",
            8 << 20,
            &Constraints {
                contiguous: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(a.provider, cma_name);
}

#[test]
fn a_forbidden_heap_falls_back_to_udmabuf_with_the_udev_explanation() {
    require_guest();
    // A private copy of the system heap node with mode 000, and a usable udmabuf node.
    let dir = temp_dir("forbidden-heap");
    mknod_like("/dev/dma_heap/system", &dir.join("system"), 0o000).unwrap();
    mknod_like("/dev/udmabuf", &dir.join("udmabuf"), 0o666).unwrap();
    let heaps = dir.clone();
    let a = as_nobody(move || {
        let policy = Policy::parse("* system,udmabuf\n").unwrap();
        let alloc =
            Allocator::new(policy, HeapDir::new(&heaps)).with_udmabuf(heaps.join("udmabuf"));
        alloc
            .allocate("ui", 1 << 20, &Constraints::default())
            .unwrap()
    });
    // Read back as root: a thread with other credentials may not read /proc/self/fdinfo (5.10).
    assert_eq!(a.buffer.origin(), &Origin::Udmabuf);
    assert_eq!(a.buffer.info().unwrap().exporter, "udmabuf");
    let (provider, skipped) = (a.provider, a.skipped);
    assert_eq!(provider, "udmabuf");
    assert_eq!(skipped.len(), 1);
    let SkipReason::PermissionDenied(msg) = &skipped[0].reason else {
        panic!("{skipped:?}")
    };
    assert!(
        msg.contains("root-only") && msg.contains("SUBSYSTEM==\"dma_heap\""),
        "{msg}"
    );
    record_fact("EACCES fallback", format!("system skipped: {msg}"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn dma_heap_nodes_are_root_only_by_default() {
    require_guest();
    let err = as_nobody(|| HeapDir::default().open("system").unwrap_err());
    assert!(matches!(err, HeapError::PermissionDenied { .. }), "{err}");
}

#[test]
fn images_are_laid_out_and_allocated_by_usage() {
    require_guest();
    let alloc = Allocator::new(Policy::default(), HeapDir::default());
    let (layout, bufs) = alloc
        .allocate_image(
            "scanout",
            wayheap::layout::Fourcc::NV12,
            640,
            480,
            &Constraints::default(),
            false,
        )
        .unwrap();
    assert_eq!(bufs.len(), 1);
    assert_eq!(bufs[0].provider, cma_heap_name());
    layout
        .check_buffers(&[bufs[0].buffer.size() as u64])
        .unwrap();
    let (layout, bufs) = alloc
        .allocate_image(
            "render",
            wayheap::layout::Fourcc::YUV420,
            320,
            240,
            &Constraints::default(),
            true,
        )
        .unwrap();
    assert_eq!(bufs.len(), 3);
    assert!(bufs.iter().all(|b| b.provider == "system"));
    layout
        .check_buffers(
            &bufs
                .iter()
                .map(|b| b.buffer.size() as u64)
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let _ = bufs[0].buffer.as_fd();
}

#[test]
fn buffer_specs_come_from_layouts_and_refuse_buffers_that_are_too_small() {
    use wayheap::client::BufferSpec;
    use wayheap::layout::{Fourcc, Layout, LayoutOptions};
    require_guest();
    let layout = Layout::new(Fourcc::NV12, 640, 480, LayoutOptions::default()).unwrap();
    let heap = HeapDir::default().open("system").unwrap();
    let buf = heap.allocate(layout.total_size() as usize).unwrap();
    let spec = BufferSpec::from_layout(&layout, &[&buf], 0).unwrap();
    assert_eq!(spec.describe().planes, vec![(0, 768), (768 * 480, 768)]);
    // Exported application memory that starts 100 bytes into its first page.
    let big = heap.allocate(layout.total_size() as usize + 4096).unwrap();
    let shifted = BufferSpec::from_layout(&layout, &[&big], 100).unwrap();
    assert_eq!(shifted.describe().planes[1].0, 768 * 480 + 100);
    // The same shift in a buffer without room for it is refused before the compositor sees it.
    assert!(BufferSpec::from_layout(&layout, &[&buf], 100).is_err());
}
