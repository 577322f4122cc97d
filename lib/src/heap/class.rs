//! What kind of memory a heap gives, from its name.
//!
//! The kernel exposes no heap type: a heap is a name under `/dev/dma_heap/`. The names are
//! conventional, though, and this module knows them: `system`; `*-uncached` variants; the CMA
//! heap under every name it has had (`reserved` up to 6.15, `default_cma_region` since 6.16 —
//! which still adds the area's own name, so 7.3 shows both for one pool — `linux,cma` and
//! `default-pool` from device trees); `vendor,name` vendor heaps; `dma32` in a name. Heaps named
//! after other device-tree regions are classified by the policy file
//! ([`crate::policy::Policy::classify`]).

use std::fmt;

/// The family a heap belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HeapKind {
    /// `system`: any pages, cached.
    System,
    /// A `system`-like heap whose buffers the CPU does not cache (`system-uncached`, `*-uncached`).
    SystemUncached,
    /// The Contiguous Memory Allocator: physically contiguous.
    Cma,
    /// Physically contiguous pages from the page allocator (ION's `system_contig` heap).
    Contiguous,
    /// A region reserved at boot (ION's carveout and chunk heaps).
    Carveout,
    /// A vendor heap, `vendor,name`.
    Vendor {
        /// The part before the comma.
        vendor: String,
    },
    /// A name this module does not know; the policy file can classify it.
    Unknown,
}

impl fmt::Display for HeapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeapKind::System => f.write_str("system"),
            HeapKind::SystemUncached => f.write_str("system-uncached"),
            HeapKind::Cma => f.write_str("cma"),
            HeapKind::Contiguous => f.write_str("contiguous"),
            HeapKind::Carveout => f.write_str("carveout"),
            HeapKind::Vendor { vendor } => write!(f, "vendor ({vendor})"),
            HeapKind::Unknown => f.write_str("unknown"),
        }
    }
}

/// What a caller can ask of a heap's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeapProperties {
    /// One physically contiguous range: usable by devices without an IOMMU.
    pub contiguous: bool,
    /// CPU-cached: fast CPU access, needs the sync ioctls around it (the guards do that).
    pub cached: bool,
    /// Below 4 GiB: for devices that address only 32 bits.
    pub dma32: bool,
}

/// The names the CMA heap has had, best first (the first that exists is the one to use).
pub const CMA_HEAP_NAMES: &[&str] = &[
    "default_cma_region",
    "reserved",
    "linux,cma",
    "default-pool",
];

/// Classifies a heap by its name.
pub fn classify(name: &str) -> (HeapKind, HeapProperties) {
    let lower = name.to_ascii_lowercase();
    let uncached = lower.ends_with("-uncached") || lower.ends_with("_uncached");
    let dma32 = lower.contains("dma32");
    let base = lower
        .trim_end_matches("-uncached")
        .trim_end_matches("_uncached");
    let (kind, contiguous) = if base == "system" || base == "system_dma32" || base == "system-dma32"
    {
        (
            if uncached {
                HeapKind::SystemUncached
            } else {
                HeapKind::System
            },
            false,
        )
    } else if CMA_HEAP_NAMES.contains(&base) || base == "cma" {
        (HeapKind::Cma, true)
    } else if let Some((vendor, _)) = name.split_once(',') {
        // Vendor heaps say little in their names; contiguity is the policy file's to declare.
        let contiguous =
            lower.contains("cma") || lower.contains("contig") || lower.contains("carveout");
        (
            HeapKind::Vendor {
                vendor: vendor.to_owned(),
            },
            contiguous,
        )
    } else if uncached {
        (HeapKind::SystemUncached, false)
    } else {
        (HeapKind::Unknown, false)
    };
    (
        kind,
        HeapProperties {
            contiguous,
            cached: !uncached,
            dma32,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(contiguous: bool, cached: bool, dma32: bool) -> HeapProperties {
        HeapProperties {
            contiguous,
            cached,
            dma32,
        }
    }

    #[test]
    fn system_heaps() {
        assert_eq!(
            classify("system"),
            (HeapKind::System, props(false, true, false))
        );
        assert_eq!(
            classify("system-uncached"),
            (HeapKind::SystemUncached, props(false, false, false))
        );
        assert_eq!(
            classify("system_dma32"),
            (HeapKind::System, props(false, true, true))
        );
    }

    #[test]
    fn cma_under_every_name() {
        for name in [
            "default_cma_region",
            "reserved",
            "linux,cma",
            "default-pool",
        ] {
            assert_eq!(
                classify(name),
                (HeapKind::Cma, props(true, true, false)),
                "{name}"
            );
        }
        assert_eq!(
            classify("linux,cma-uncached"),
            (HeapKind::Cma, props(true, false, false))
        );
    }

    #[test]
    fn vendor_heaps() {
        let (kind, p) = classify("mtk,secure-carveout");
        assert_eq!(
            kind,
            HeapKind::Vendor {
                vendor: "mtk".into()
            }
        );
        assert!(p.contiguous && p.cached);
        let (kind, p) = classify("qcom,system-dma32");
        assert_eq!(
            kind,
            HeapKind::Vendor {
                vendor: "qcom".into()
            }
        );
        assert!(p.dma32 && !p.contiguous);
    }

    #[test]
    fn device_tree_regions_are_unknown_until_the_policy_says() {
        assert_eq!(classify("video-region@80000000").0, HeapKind::Unknown);
    }
}

/// Property tests (issue 15) of classification by name (names come from the kernel's directory
/// and from a compositor's hints): 4 000 cases per run.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::proptest_config::config(4_000))]

        /// Any name: no panic; `dma32` and `cached` follow the name's spelling, case does not
        /// matter (but for the vendor's own spelling), every CMA name is contiguous CMA with
        /// or without an uncached suffix, system heaps are never contiguous, and a vendor is
        /// what comes before the comma.
        #[test]
        fn names_classify_by_their_spelling(
            base in prop_oneof![
                proptest::sample::select(&["system", "system_dma32", "cma", "default_cma_region", "reserved", "linux,cma", "default-pool"][..]).prop_map(str::to_owned),
                "[a-zA-Z]{1,6},[a-zA-Z0-9_-]{0,12}",
                "[a-zA-Z0-9_,.@-]{0,16}",
                "\\PC{0,8}",
            ],
            suffix in proptest::sample::select(&["", "-uncached", "_uncached", "-UNCACHED", "-uncached-uncached"][..]),
        ) {
            let name = format!("{base}{suffix}");
            let lower = name.to_ascii_lowercase();
            let (kind, p) = classify(&name);
            prop_assert_eq!(p.dma32, lower.contains("dma32"));
            prop_assert_eq!(p.cached, !(lower.ends_with("-uncached") || lower.ends_with("_uncached")));
            let (upper_kind, upper_p) = classify(&name.to_ascii_uppercase());
            prop_assert_eq!(upper_p, p);
            match (&kind, &upper_kind) {
                (HeapKind::Vendor { vendor }, HeapKind::Vendor { vendor: v }) => {
                    prop_assert_eq!(vendor.to_ascii_uppercase(), v.clone());
                    prop_assert_eq!(Some(vendor.as_str()), name.split_once(',').map(|(v, _)| v));
                }
                (k, u) => prop_assert_eq!(k, u),
            }
            if CMA_HEAP_NAMES.contains(&base.to_ascii_lowercase().as_str()) {
                prop_assert_eq!(&kind, &HeapKind::Cma);
            }
            match kind {
                HeapKind::Cma => prop_assert!(p.contiguous),
                // ION's types only, never from a name.
                HeapKind::Contiguous | HeapKind::Carveout => prop_assert!(false, "{name}"),
                HeapKind::System | HeapKind::SystemUncached | HeapKind::Unknown => prop_assert!(!p.contiguous),
                HeapKind::Vendor { .. } => prop_assert!(name.contains(',')),
            }
            prop_assert!(!kind.to_string().is_empty());
        }
    }
}
