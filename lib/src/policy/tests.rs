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
fn heap_names_with_commas_are_quoted() {
    // Found by proptests::written_policies_parse_back: `linux,cma` (a CMA heap's name, and the
    // module docs' example) was split into heaps `linux` and `cma`; no heap with a comma in its
    // name could be named.
    let p =
        Policy::parse("camera \"linux,cma\",@system\nheap \"mtk,secure\" contiguous\n").unwrap();
    assert_eq!(
        p.rule("camera").providers,
        vec![
            Provider::Heap("linux,cma".into()),
            Provider::Class(HeapClass::System)
        ]
    );
    assert!(p.classify("mtk,secure").1.contiguous);
    let err = Policy::parse("x \"linux,cma\n").unwrap_err().to_string();
    assert!(err.contains("unterminated quote"), "{err}");
    let err = Policy::parse("x \"a\"b\n").unwrap_err().to_string();
    assert!(err.contains("expected a comma"), "{err}");
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

/// Property tests (issue 15) of the policy file parser: 5 000 + 5 000 + 5 000 = 15 000 cases
/// per run.
mod proptests {
    use super::*;
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;

    use crate::proptest_config::config;

    fn usage() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("*".to_owned()),
            "[a-z][a-z0-9_.-]{0,10}".prop_filter("a keyword", |u| u != "heap"),
        ]
    }

    /// Heap names as kernels spell them: plain, with dashes and underscores, and vendor heaps
    /// and device-tree regions with a comma (`linux,cma`, `mtk,secure-carveout`).
    fn heap_name() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(
                &[
                    "system",
                    "system-uncached",
                    "reserved",
                    "default_cma_region",
                    "linux,cma",
                    "default-pool"
                ][..]
            )
            .prop_map(str::to_owned),
            "[a-z][a-z0-9_.@:-]{0,10}",
            "[a-z]{1,6},[a-z0-9_-]{1,10}",
        ]
        .prop_filter("a provider keyword", |n| n != "udmabuf")
    }

    fn provider() -> impl Strategy<Value = Provider> {
        prop_oneof![
            Just(Provider::Udmabuf),
            proptest::sample::select(
                &[
                    HeapClass::System,
                    HeapClass::SystemUncached,
                    HeapClass::Cma,
                    HeapClass::Vendor,
                    HeapClass::Contiguous,
                    HeapClass::Carveout,
                ][..]
            )
            .prop_map(Provider::Class),
            // `ion:` starts an ION heap's name, never a DMA-BUF heap's.
            heap_name()
                .prop_filter("ion: names an ION heap", |n| !n.starts_with("ion:"))
                .prop_map(Provider::Heap),
            heap_name().prop_map(Provider::Ion),
        ]
    }

    fn render_provider(p: &Provider) -> String {
        match p {
            Provider::Udmabuf => "udmabuf".to_owned(),
            Provider::Class(c) => class_name(*c).to_owned(),
            Provider::Heap(n) if n.contains(',') => format!("\"{n}\""),
            Provider::Heap(n) => n.clone(),
            Provider::Ion(n) if n.contains(',') => format!("\"ion:{n}\""),
            Provider::Ion(n) => format!("ion:{n}"),
        }
    }

    /// Option tokens and the constraints they make, applied in order (the last `align` wins).
    fn options() -> impl Strategy<Value = (Vec<String>, Constraints)> {
        vec(
            prop_oneof![
                Just("contiguous".to_owned()),
                Just("uncached".to_owned()),
                Just("dma32".to_owned()),
                (0u32..32).prop_map(|b| format!("align={}", 1u32 << b)),
                (0u32..32).prop_map(|b| format!("offset-align={}", 1u32 << b)),
            ],
            0..5,
        )
        .prop_map(|tokens| {
            let mut c = Constraints::default();
            for t in &tokens {
                match t.split_once('=') {
                    None if t == "contiguous" => c.contiguous = true,
                    None if t == "uncached" => c.prefer_uncached = true,
                    None => c.max_address = Some(0xffff_ffff),
                    Some(("align", n)) => c.pitch_align = n.parse().ok(),
                    Some((_, n)) => c.offset_align = n.parse().ok(),
                }
            }
            (tokens, c)
        })
    }

    const HEAP_PROPS: &[&str] = &[
        "contiguous",
        "scattered",
        "cached",
        "uncached",
        "dma32",
        "cma",
        "system",
        "system-uncached",
    ];

    /// What a `heap` line makes of a name: the name's own classification, then each property
    /// in order as the module documents them.
    fn heap_line_meaning(name: &str, props: &[&str]) -> (HeapKind, HeapProperties) {
        let (mut kind, mut p) = classify(name);
        for prop in props {
            match *prop {
                "contiguous" => p.contiguous = true,
                "scattered" => p.contiguous = false,
                "cached" => p.cached = true,
                "uncached" => p.cached = false,
                "dma32" => p.dma32 = true,
                "cma" => (kind, p.contiguous) = (HeapKind::Cma, true),
                "system" => kind = HeapKind::System,
                _ => (kind, p.cached) = (HeapKind::SystemUncached, false),
            }
        }
        (kind, p)
    }

    /// Blanks, tabs and comments where the format allows them.
    fn space() -> impl Strategy<Value = String> {
        "[ \t]{1,3}"
    }

    type Rules = std::collections::BTreeMap<String, (Vec<Provider>, (Vec<String>, Constraints))>;
    type HeapLines = std::collections::BTreeMap<String, Vec<&'static str>>;

    /// A policy, its text (with random spacing, comments and blank lines) and what it means.
    fn policy() -> impl Strategy<Value = (String, Vec<UsageRule>, HeapLines)> {
        let rules: BoxedStrategy<Rules> =
            btree_map(usage(), (vec(provider(), 1..5), options()), 0..6).boxed();
        let heaps: BoxedStrategy<HeapLines> = btree_map(
            heap_name(),
            vec(proptest::sample::select(HEAP_PROPS), 1..4),
            0..3,
        )
        .boxed();
        (
            rules,
            heaps,
            vec((space(), space(), any::<bool>(), any::<bool>()), 10),
        )
            .prop_map(|(rules, heaps, spacing)| {
                let mut text = String::new();
                let mut expected = Vec::new();
                for (i, (usage, (providers, (tokens, constraints)))) in rules.iter().enumerate() {
                    let (a, b, comment, blank) = &spacing[i % spacing.len()];
                    if *blank {
                        text += "\n# a comment line\n";
                    }
                    let list: Vec<String> = providers.iter().map(render_provider).collect();
                    text += &format!("{a}{usage}{b}{}", list.join(","));
                    if !tokens.is_empty() {
                        text += &format!("{b}{}", tokens.join(","));
                    }
                    if *comment {
                        text += &format!("{a}# usage {usage}, {}", list.join(" "));
                    }
                    text += "\n";
                    expected.push(UsageRule {
                        usage: usage.clone(),
                        providers: providers.clone(),
                        constraints: constraints.clone(),
                    });
                }
                for (name, props) in &heaps {
                    text += &format!("heap {name}\t{}\n", props.join(","));
                }
                (text, expected, heaps)
            })
    }

    /// Lines no policy accepts, and a fragment of the message that must name the problem.
    const BAD_LINES: &[(&str, &str)] = &[
        ("scanout", "expected `USAGE PROVIDERS"),
        ("scanout @nope", "unknown heap class @nope"),
        ("x system bogus", "unknown option bogus"),
        ("x system align=3", "power of two"),
        ("x system align=0", "power of two"),
        ("x system offset-align=99999999999", "power of two"),
        ("x a b c", "expected `USAGE PROVIDERS"),
        ("x ,,,", "lists no provider"),
        ("x \"linux,cma", "quote"),
        ("heap onlyname", "expected `heap NAME PROPERTIES`"),
        ("heap r sparkly", "unknown heap property sparkly"),
    ];

    proptest! {
        #![proptest_config(config(5_000))]

        /// Any policy written out with any spacing and comments parses back to its rules and heap
        /// classifications, and each usage resolves to its own rule, else `*`'s, else the default.
        #[test]
        fn written_policies_parse_back((text, rules, heaps) in policy(), other in "[a-z]{12}") {
            let p = Policy::parse(&text);
            prop_assert!(p.is_ok(), "{text:?}: {p:?}");
            let p = p.unwrap();
            prop_assert_eq!(p.rules(), &rules[..]);
            for (name, props) in &heaps {
                prop_assert_eq!(p.classify(name), heap_line_meaning(name, props));
            }
            for r in &rules {
                prop_assert_eq!(&p.rule(&r.usage), r);
            }
            let fallback = p.rule(&other);
            match rules.iter().find(|r| r.usage == "*") {
                Some(star) => prop_assert_eq!(&fallback, star),
                None => prop_assert_eq!(fallback.providers, vec![Provider::Class(HeapClass::System), Provider::Udmabuf]),
            }
        }

        /// One bad line anywhere in a good policy: the error names that line and the problem.
        #[test]
        fn a_bad_line_is_named(
            (text, _, _) in policy(),
            at in any::<proptest::sample::Index>(),
            (bad, needle) in proptest::sample::select(BAD_LINES),
        ) {
            let mut lines: Vec<&str> = text.lines().collect();
            let at = at.index(lines.len() + 1);
            lines.insert(at, bad);
            let err = Policy::parse(&lines.join("\n")).unwrap_err().to_string();
            let prefix = format!("<string>:{}:", at + 1);
            prop_assert!(err.starts_with(&prefix), "{err}");
            prop_assert!(err.contains(needle), "{err}");
        }

        /// Any text at all: no panic; an error points at a line of the text; an accepted policy
        /// has at least one provider per rule and one rule per usage.
        #[test]
        fn arbitrary_text_parses_or_names_a_line(
            lines in vec(prop_oneof![
                "[a-z*@\",=#0-9 \t-]{0,30}",
                "\\PC{0,20}",
                "(heap )?[a-z]{1,5}[ \t]+[a-z@,\"]{0,12}([ \t]+[a-z=0-9,-]{0,16})?",
            ], 0..8)
        ) {
            let text = lines.join("\n");
            match Policy::parse(&text) {
                Ok(p) => {
                    let mut usages: Vec<&str> = p.rules().iter().map(|r| r.usage.as_str()).collect();
                    prop_assert!(p.rules().iter().all(|r| !r.providers.is_empty()));
                    usages.sort_unstable();
                    let n = usages.len();
                    usages.dedup();
                    prop_assert_eq!(usages.len(), n);
                }
                Err(PolicyError::Syntax { source_name, line, message }) => {
                    prop_assert_eq!(source_name, "<string>");
                    prop_assert!(line >= 1 && line <= text.lines().count(), "line {line}");
                    prop_assert!(!message.is_empty());
                }
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
    }
}

fn ion_heaps() -> IonInventory {
    use crate::ion::IonHeapType;
    let heap = |name: &str, id, raw| {
        let heap_type = IonHeapType::from_raw(raw);
        let (kind, properties) = heap_type.classify();
        IonHeapInfo {
            name: name.to_owned(),
            id,
            heap_type,
            kind,
            properties,
        }
    };
    // 5.10's three: the system heap, the contiguous one, and the default CMA area's.
    IonInventory::Heaps(vec![
        heap("ion_system_heap", 0, 0),
        heap("ion_system_contig_heap", 1, 1),
        heap("reserved", 2, 4),
    ])
}

#[test]
fn classes_take_dma_buf_heaps_then_ion_heaps() {
    let p = Policy::default();
    // 5.10 with both: the DMA-BUF CMA heap first, ION's after it.
    let (c, skipped, _) = p.candidates_with_ion(
        "scanout",
        &Constraints::default(),
        &heaps(&["reserved", "system"]),
        &ion_heaps(),
    );
    assert_eq!(
        names(&c),
        [
            "reserved",
            "ion:reserved",
            "system",
            "ion:ion_system_heap",
            "udmabuf"
        ]
    );
    assert!(skipped.is_empty());
    // A BSP kernel with ION only still finds CMA and system memory.
    let (c, _, _) = p.candidates_with_ion("camera", &Constraints::default(), &[], &ion_heaps());
    assert_eq!(
        names(&c),
        ["ion:reserved", "ion:ion_system_heap", "udmabuf"]
    );
    // @contiguous takes ION's contiguous heaps too; contiguous rules out the system ones.
    let p = Policy::parse("x @contiguous,@system,ion:ion_system_heap contiguous\n").unwrap();
    let (c, skipped, _) = p.candidates_with_ion("x", &Constraints::default(), &[], &ion_heaps());
    assert_eq!(names(&c), ["ion:ion_system_contig_heap", "ion:reserved"]);
    assert!(
        skipped
            .iter()
            .all(|s| s.reason == SkipReason::Constraint("contiguous")),
        "{skipped:?}"
    );
}

#[test]
fn ion_providers_by_name_are_found_or_say_why_not() {
    let p = Policy::parse("scanout ion:reserved,ion:nope,system\n").unwrap();
    assert_eq!(
        p.rule("scanout").providers[..2],
        [
            Provider::Ion("reserved".into()),
            Provider::Ion("nope".into())
        ]
    );
    let (c, skipped, _) = p.candidates_with_ion(
        "scanout",
        &Constraints::default(),
        &heaps(&["system"]),
        &ion_heaps(),
    );
    assert_eq!(names(&c), ["ion:reserved", "system"]);
    assert_eq!(
        skipped,
        vec![Skip {
            provider: "ion:nope".into(),
            reason: SkipReason::Absent
        }]
    );
    // No /dev/ion (a mainline kernel): absent; an unusable one: its reason.
    let (c, skipped, _) = p.candidates_with_ion(
        "scanout",
        &Constraints::default(),
        &heaps(&["system"]),
        &IonInventory::Absent,
    );
    assert_eq!(names(&c), ["system"]);
    assert_eq!(skipped.len(), 2);
    let denied = SkipReason::PermissionDenied("permission denied opening /dev/ion".into());
    let (_, skipped, _) = p.candidates_with_ion(
        "scanout",
        &Constraints::default(),
        &heaps(&["system"]),
        &IonInventory::Unusable(denied.clone()),
    );
    assert_eq!(skipped[0].reason, denied);
    assert!(Policy::parse("x ion:\n").is_err());
}

#[test]
fn ion_serves_uncached_requests_uncached_and_first() {
    // ION caches per allocation: with `uncached` its heaps allocate write-combined buffers and
    // move before the cached DMA-BUF heaps.
    let p = Policy::parse("x @system,@system-uncached uncached\n").unwrap();
    let (c, _, merged) = p.candidates_with_ion(
        "x",
        &Constraints::default(),
        &heaps(&["system"]),
        &ion_heaps(),
    );
    assert!(merged.prefer_uncached);
    assert_eq!(names(&c), ["ion:ion_system_heap", "system"]);
    assert!(!c[0].properties().cached);
    // A `heap ion:NAME` line classifies an ION heap as for DMA-BUF heaps.
    let p = Policy::parse("x @carveout\nheap ion:ion_system_heap contiguous\n").unwrap();
    let inv = ion_heaps();
    let IonInventory::Heaps(list) = &inv else {
        unreachable!()
    };
    assert!(p.classify_ion(&list[0]).1.contiguous);
}

#[test]
fn a_hinted_heap_goes_first_and_the_rule_stays_behind_it() {
    let p = Policy::parse("scanout @system,@cma,udmabuf align=64\n* @system,udmabuf\n").unwrap();
    let hint = Constraints {
        pitch_align: Some(256),
        offset_align: Some(4096),
        ..Constraints::default()
    };
    let hinted = p.clone().with_heap_first("scanout", "reserved", &hint);
    let available = heaps(&["system", "reserved"]);
    let (c, _, merged) = hinted.candidates("scanout", &Constraints::default(), &available);
    // The hinted heap once, first; then the rule's own order (reserved again as @cma is not
    // tried twice).
    assert_eq!(names(&c), ["reserved", "system", "udmabuf"]);
    // The larger of the rule's and the hint's alignments.
    assert_eq!(merged.pitch_align, Some(256));
    assert_eq!(merged.offset_align, Some(4096));
    // Other usages are untouched; a usage without its own rule gets one from `*`'s.
    assert_eq!(hinted.rule("render"), p.rule("render"));
    let render = p.with_heap_first("render", "reserved", &Constraints::default());
    assert_eq!(render.rule("render").usage, "render");
    assert_eq!(
        render.rule("render").providers,
        [
            Provider::Heap("reserved".into()),
            Provider::Class(HeapClass::System),
            Provider::Udmabuf
        ]
    );
    assert_eq!(render.rule("other").usage, "*");
}
