//! In-guest: ION, the allocator of BSP kernels, behind the same policy as DMA-BUF heaps.
//!
//! On the matrix's 5.10 kernel (CONFIG_ION, cma=128M) `/dev/ion` has three heaps: the system
//! heap, the contiguous system heap and the default CMA area's heap (`reserved`). Their buffers
//! map with sync guards, are named and accounted, scan out on vkms (checked through writeback),
//! and the policy falls back from ION's CMA heap to the DMA-BUF system heap when the area is
//! full. On the current kernel (no ION since 5.11) the same policies run and say `absent`.

use drm::control::PlaneType;
use wayheap::accounting;
use wayheap::dmabuf::Origin;
use wayheap::heap::{HeapDir, HeapKind};
use wayheap::ion::{IonDevice, IonError, IonHeapInfo, IonHeapType};
use wayheap::policy::{AllocError, Allocator, Constraints, Policy, SkipReason};
use wayheap_tests::guest::{as_nobody, cma_heap_name, is_bsp_kernel, record_fact, require_guest};
use wayheap_tests::kms::{Card, TestPlane, round_trip_size, writeback_round_trip};

fn ion_heap(name: &str) -> IonHeapInfo {
    IonDevice::open()
        .unwrap()
        .heap(name)
        .unwrap()
        .unwrap_or_else(|| panic!("no ION heap {name}"))
}

#[test]
fn ion_heaps_are_listed_and_classified() {
    require_guest();
    if !is_bsp_kernel() {
        let err = IonDevice::open().unwrap_err();
        assert!(matches!(err, IonError::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("5.11"), "{err}");
        return;
    }
    let heaps = IonDevice::open().unwrap().heaps().unwrap();
    record_fact(
        "ION heaps",
        heaps
            .iter()
            .map(|h| format!("{} (id {}, {:?}: {})", h.name, h.id, h.heap_type, h.kind))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let find = |name: &str| {
        heaps
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no ION heap {name} in {heaps:?}"))
    };
    let system = find("ion_system_heap");
    assert_eq!(
        (system.heap_type, &system.kind),
        (IonHeapType::System, &HeapKind::System)
    );
    assert!(!system.properties.contiguous);
    let contig = find("ion_system_contig_heap");
    assert_eq!(
        (contig.heap_type, &contig.kind),
        (IonHeapType::SystemContig, &HeapKind::Contiguous)
    );
    // ION's CMA heap is named after the area, as the DMA-BUF CMA heap is: `ion:` tells them apart.
    let cma = find("reserved");
    assert_eq!(
        (cma.heap_type, &cma.kind),
        (IonHeapType::Dma, &HeapKind::Cma)
    );
    assert!(cma.properties.contiguous);
    assert_eq!(cma.provider_name(), "ion:reserved");
    assert_eq!(heaps.len(), 3, "{heaps:?}");
}

#[test]
fn ion_buffers_map_with_sync_guards_and_are_named_and_accounted() {
    require_guest();
    if !is_bsp_kernel() {
        // Without ION the default policy serves from the DMA-BUF heaps and records nothing
        // about ION: a class takes ION heaps only where they exist.
        let a = Allocator::new(Policy::default(), HeapDir::default())
            .allocate("camera", 1 << 20, &Constraints::default())
            .unwrap();
        assert_eq!(a.provider, cma_heap_name());
        assert!(a.skipped.is_empty(), "{:?}", a.skipped);
        return;
    }
    let ion = IonDevice::open().unwrap();
    for (name, cached) in [
        ("ion_system_heap", true),
        ("reserved", true),
        ("ion_system_heap", false),
        ("reserved", false),
    ] {
        let heap = ion_heap(name);
        let provider = heap.provider_name();
        let before = accounting::live_for_provider(&provider);
        let buf = ion.allocate_for(&heap, 5000, cached, "camera").unwrap();
        assert_eq!(buf.size(), 8192, "page-rounded");
        assert_eq!(buf.origin(), &Origin::Ion(name.to_owned()));
        let info = buf.info().unwrap();
        assert_eq!(info.exporter, "ion");
        assert_eq!(info.name, Some(format!("{provider}:camera")));
        assert_eq!(
            accounting::live_for_provider(&provider),
            (before.0 + 1, before.1 + 8192)
        );
        let mut a = buf.map().unwrap();
        a.write()
            .unwrap()
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i % 251) as u8);
        let b = buf.map().unwrap();
        assert!(
            b.read()
                .unwrap()
                .iter()
                .enumerate()
                .all(|(i, v)| *v == (i % 251) as u8),
            "{provider} cached={cached}"
        );
        drop((a, b));
        drop(buf);
        assert_eq!(accounting::live_for_provider(&provider), before);
    }
    assert!(matches!(
        ion.allocate(&ion_heap("reserved"), 0, true),
        Err(IonError::ZeroLength { .. })
    ));
}

#[test]
fn the_policy_scanout_buffer_from_ion_cma_scans_out_through_writeback() {
    require_guest();
    // One policy for both kernels: ION's CMA heap first, the DMA-BUF CMA heap after it.
    let policy = Policy::parse("scanout ion:reserved,@cma\n").unwrap();
    let card = Card::open_driver("vkms").unwrap();
    let plane = if is_bsp_kernel() {
        TestPlane::Primary
    } else {
        TestPlane::Overlay((64, 48, 256, 192))
    };
    let (w, h) = round_trip_size(&card, plane);
    let a = Allocator::new(policy, HeapDir::default())
        .allocate("scanout", (w * h * 4) as usize, &Constraints::default())
        .unwrap();
    if is_bsp_kernel() {
        assert_eq!(a.provider, "ion:reserved");
        assert!(a.skipped.is_empty(), "{:?}", a.skipped);
    } else {
        assert_eq!(a.provider, cma_heap_name());
        assert_eq!(a.skipped[0].provider, "ion:reserved");
        assert_eq!(a.skipped[0].reason, SkipReason::Absent);
    }
    assert!(
        card.planes()
            .unwrap()
            .iter()
            .any(|p| p.kind == PlaneType::Primary)
    );
    let trip = writeback_round_trip(&card, &a.buffer, plane);
    record_fact(
        "ION scan-out",
        format!(
            "{} buffer on {plane:?}: {} wrong pixels of {:?}",
            a.provider, trip.wrong, trip.screen
        ),
    );
    assert_eq!(
        trip.wrong, 0,
        "{} pixels differ: {:?}",
        trip.wrong, trip.first_wrong
    );
}

#[test]
fn a_full_ion_cma_heap_falls_back_to_the_dma_buf_system_heap() {
    require_guest();
    let policy = Policy::parse("scanout ion:reserved,system\n").unwrap();
    let alloc = Allocator::new(policy, HeapDir::default());
    if !is_bsp_kernel() {
        let a = alloc
            .allocate("scanout", 8 << 20, &Constraints::default())
            .unwrap();
        assert_eq!(a.provider, "system");
        assert_eq!(a.skipped[0].reason, SkipReason::Absent);
        return;
    }
    // Fill the 128 MiB area through ION.
    let ion = IonDevice::open().unwrap();
    let cma = ion_heap("reserved");
    let mut held = Vec::new();
    let full = loop {
        match ion.allocate(&cma, 8 << 20, true) {
            Ok(b) => held.push(b),
            Err(e @ IonError::OutOfMemory { .. }) => break e,
            Err(e) => panic!("unexpected: {e}"),
        }
        assert!(held.len() < 64, "ION's CMA heap never filled up");
    };
    record_fact(
        "ION CMA exhaustion",
        format!("{} x 8 MiB then: {full}", held.len()),
    );
    let a = alloc
        .allocate("scanout", 8 << 20, &Constraints::default())
        .unwrap();
    assert_eq!(a.provider, "system");
    assert_eq!(a.skipped.len(), 1, "{:?}", a.skipped);
    assert_eq!(a.skipped[0].provider, "ion:reserved");
    assert!(
        matches!(&a.skipped[0].reason, SkipReason::OutOfMemory(m) if m.contains("ion:reserved")),
        "{:?}",
        a.skipped
    );
    // A contiguous request has nowhere to go: the error says ION's CMA heap was full.
    let err = alloc
        .allocate(
            "scanout",
            8 << 20,
            &Constraints {
                contiguous: true,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, AllocError::Exhausted { .. }), "{err}");
    drop(held);
    assert_eq!(
        alloc
            .allocate("scanout", 8 << 20, &Constraints::default())
            .unwrap()
            .provider,
        "ion:reserved"
    );
}

#[test]
fn ion_is_root_only_and_the_error_names_the_udev_rule() {
    require_guest();
    let (open, walked) = as_nobody(|| {
        let open = IonDevice::open().map(|_| ());
        let walked = Allocator::new(
            Policy::parse("x ion:ion_system_heap,udmabuf\n").unwrap(),
            HeapDir::default(),
        )
        .allocate("x", 1 << 20, &Constraints::default());
        (open, walked.map(|a| a.provider))
    });
    // As nobody neither ION nor udmabuf (root-only too) serves: the walk says why for each.
    let Err(AllocError::Exhausted { skipped, .. }) = walked else {
        panic!("{walked:?}")
    };
    if is_bsp_kernel() {
        let err = open.unwrap_err();
        assert!(matches!(err, IonError::PermissionDenied { .. }), "{err}");
        assert!(err.to_string().contains(r#"KERNEL=="ion""#), "{err}");
        let SkipReason::PermissionDenied(msg) = &skipped[0].reason else {
            panic!("{skipped:?}")
        };
        assert!(msg.contains("70-ion.rules"), "{msg}");
        record_fact("ION as nobody", msg);
    } else {
        assert!(matches!(open, Err(IonError::NotFound { .. })), "{open:?}");
        assert_eq!(skipped[0].reason, SkipReason::Absent);
    }
    assert_eq!(skipped[0].provider, "ion:ion_system_heap");
}
