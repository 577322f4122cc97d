use super::*;
use crate::heap::{HeapDir, classify};

fn heaps(names: &[&str]) -> Vec<HeapInfo> {
    names
        .iter()
        .map(|n| {
            let (kind, properties) = classify(n);
            HeapInfo {
                name: (*n).to_owned(),
                path: PathBuf::from("/nonexistent").join(n),
                kind,
                properties,
            }
        })
        .collect()
}

fn names(c: &[Candidate]) -> Vec<&str> {
    c.iter().map(Candidate::name).collect()
}

#[test]
fn default_policy_parses_and_puts_cma_first_for_scanout() {
    let p = Policy::default();
    let r = p.rule("scanout");
    assert_eq!(r.providers[0], Provider::Class(HeapClass::Cma));
    assert_eq!(p.rule("anything-else").usage, "*");
}

#[test]
fn classes_expand_to_present_heaps_and_one_cma_pool_is_tried_once() {
    let p = Policy::default();
    // 7.3: the default CMA area appears as default_cma_region and reserved.
    let (c, skipped, _) = p.candidates(
        "scanout",
        &Constraints::default(),
        &heaps(&["reserved", "default_cma_region", "system"]),
    );
    assert_eq!(names(&c), ["default_cma_region", "system", "udmabuf"]);
    assert!(skipped.is_empty());
    // 6.12: only `reserved`.
    let (c, _, _) = p.candidates(
        "scanout",
        &Constraints::default(),
        &heaps(&["reserved", "system"]),
    );
    assert_eq!(names(&c), ["reserved", "system", "udmabuf"]);
}

#[test]
fn absent_classes_are_recorded() {
    let (c, skipped, _) =
        Policy::default().candidates("camera", &Constraints::default(), &heaps(&["system"]));
    assert_eq!(names(&c), ["system", "udmabuf"]);
    assert_eq!(
        skipped,
        vec![Skip {
            provider: "@cma".into(),
            reason: SkipReason::Absent
        }]
    );
}

#[test]
fn contiguous_rules_out_system_and_udmabuf() {
    let want = Constraints {
        contiguous: true,
        ..Default::default()
    };
    let (c, skipped, _) =
        Policy::default().candidates("scanout", &want, &heaps(&["default_cma_region", "system"]));
    assert_eq!(names(&c), ["default_cma_region"]);
    assert_eq!(skipped.len(), 2);
    assert!(
        skipped
            .iter()
            .all(|s| s.reason == SkipReason::Constraint("contiguous"))
    );
}

#[test]
fn dma32_needs_a_heap_that_says_so() {
    let want = Constraints {
        max_address: Some(0xffff_ffff),
        ..Default::default()
    };
    let p = Policy::parse("* @system,system_dma32,udmabuf\n").unwrap();
    let (c, _, _) = p.candidates("x", &want, &heaps(&["system", "system_dma32"]));
    assert_eq!(names(&c), ["system_dma32"]);
}

#[test]
fn uncached_preference_reorders_without_excluding() {
    let p = Policy::parse("* @system,@system-uncached,udmabuf uncached\n").unwrap();
    let (c, _, _) = p.candidates(
        "x",
        &Constraints::default(),
        &heaps(&["system", "system-uncached"]),
    );
    assert_eq!(names(&c), ["system-uncached", "system", "udmabuf"]);
}

#[test]
fn heap_lines_classify_device_tree_regions() {
    let p =
        Policy::parse("camera @contiguous,udmabuf\nheap video-region contiguous,dma32\n").unwrap();
    let (kind, props) = p.classify("video-region");
    assert_eq!(kind, HeapKind::Unknown);
    assert!(props.contiguous && props.dma32 && props.cached);
    let (c, _, _) = p.candidates(
        "camera",
        &Constraints::default(),
        &heaps(&["system", "video-region"]),
    );
    assert_eq!(names(&c), ["video-region", "udmabuf"]);
    let p = Policy::parse("camera @cma\nheap carve cma\n").unwrap();
    let (c, _, _) = p.candidates("camera", &Constraints::default(), &heaps(&["carve"]));
    assert_eq!(names(&c), ["carve"]);
}

#[test]
fn options_merge_with_caller_constraints() {
    let p = Policy::parse("scanout @cma,@system contiguous,align=512,offset-align=4096\n").unwrap();
    let caller = Constraints {
        pitch_align: Some(1024),
        ..Default::default()
    };
    let (_, _, merged) = p.candidates("scanout", &caller, &[]);
    assert!(merged.contiguous);
    assert_eq!(
        (merged.pitch_align, merged.offset_align),
        (Some(1024), Some(4096))
    );
}

#[test]
fn syntax_errors_name_the_line() {
    for (text, needle) in [
        ("scanout\n", "expected `USAGE PROVIDERS"),
        ("\n\nscanout @nope\n", "unknown heap class @nope"),
        ("x system bogus\n", "unknown option bogus"),
        ("x system align=3\n", "power of two"),
        ("x system\nx udmabuf\n", "has a rule already"),
        ("heap onlyname\n", "expected `heap NAME PROPERTIES`"),
        ("heap r sparkly\n", "unknown heap property sparkly"),
    ] {
        let err = Policy::parse(text).unwrap_err().to_string();
        assert!(err.contains(needle), "{text:?} gave {err}");
        assert!(err.starts_with("<string>:"), "{err}");
    }
    let err = Policy::parse("\n\nscanout @nope\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("<string>:3:"), "{err}");
}

#[test]
fn comments_and_blank_lines_are_ignored() {
    let p = Policy::parse("# hi\n\n  * system # trailing\n").unwrap();
    assert_eq!(p.rules().len(), 1);
    assert_eq!(
        p.rules()[0].providers,
        vec![Provider::Heap("system".into())]
    );
}

#[test]
fn load_reports_the_path() {
    let err = Policy::load(Path::new("/nonexistent/policy"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/policy"), "{err}");
}

// The walk over a directory without heap nodes and without udmabuf: real ENOENTs, fallback
// recorded for each, and an Exhausted error that lists them.
#[test]
fn walk_falls_back_through_absent_providers_and_reports_each() {
    let dir = std::env::temp_dir().join(format!("wayheap-empty-heaps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = Policy::parse("* system,udmabuf\n").unwrap();
    let alloc = Allocator::new(p, HeapDir::new(&dir)).with_udmabuf(dir.join("udmabuf"));
    let err = alloc
        .allocate("x", 4096, &Constraints::default())
        .unwrap_err();
    match &err {
        AllocError::Exhausted { skipped, .. } => {
            assert_eq!(
                skipped[0],
                Skip {
                    provider: "system".into(),
                    reason: SkipReason::Absent
                }
            );
            assert_eq!(
                skipped[1],
                Skip {
                    provider: "udmabuf".into(),
                    reason: SkipReason::Absent
                }
            );
        }
        other => panic!("expected Exhausted, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn walk_rejects_non_linear_modifier_sets_before_allocating() {
    let alloc = Allocator::new(Policy::default(), HeapDir::new("/nonexistent"));
    let want = Constraints {
        modifiers: Some(vec![0x0100_0000_0000_0001]),
        ..Default::default()
    };
    let err = alloc.allocate("scanout", 4096, &want).unwrap_err();
    assert!(
        matches!(err, AllocError::Unsatisfiable { ref constraint, .. } if constraint.contains("LINEAR")),
        "{err}"
    );
}

#[test]
fn walk_names_the_unsatisfiable_constraint() {
    let alloc = Allocator::new(
        Policy::parse("* system,udmabuf\n").unwrap(),
        HeapDir::new("/nonexistent"),
    );
    let want = Constraints {
        contiguous: true,
        ..Default::default()
    };
    let err = alloc.allocate("x", 4096, &want).unwrap_err();
    assert!(
        matches!(err, AllocError::Unsatisfiable { ref constraint, .. } if constraint == "contiguous"),
        "{err}"
    );
}
