//! Rust bindings of the Wayland protocols wayheap defines (XML in the repository's `protocols/`),
//! generated at build time by wayland-scanner: client side with feature `client`, server side
//! (on Smithay's wayland-server) with feature `smithay`.
//!
//! - [`heap_hints`]: `wayheap_heap_hints_v1` — per-surface hints of the DMA-BUF heaps whose
//!   buffers reach a plane, and allocation by the compositor for clients that cannot open heap
//!   nodes. [`crate::client::hints`] and [`crate::smithay::heap_hints`] implement the two sides.

/// `wayheap_heap_hints_v1` (protocols/wayheap-heap-hints-v1.xml), and the hint both sides
/// speak of.
pub mod heap_hints {
    use std::fmt;

    /// The plane a hint is for (the protocol's `target` enum).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum HintTarget {
        /// The compositor composes the surface.
        Composition,
        /// The primary plane.
        Primary,
        /// An overlay plane.
        Overlay,
        /// The cursor plane.
        Cursor,
        /// A value this version does not know (a newer compositor).
        Unknown(u32),
    }

    impl HintTarget {
        /// From the wire value.
        pub fn from_raw(v: u32) -> HintTarget {
            match v {
                0 => HintTarget::Composition,
                1 => HintTarget::Primary,
                2 => HintTarget::Overlay,
                3 => HintTarget::Cursor,
                v => HintTarget::Unknown(v),
            }
        }
    }

    impl fmt::Display for HintTarget {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                HintTarget::Composition => f.write_str("composition"),
                HintTarget::Primary => f.write_str("primary"),
                HintTarget::Overlay => f.write_str("overlay"),
                HintTarget::Cursor => f.write_str("cursor"),
                HintTarget::Unknown(v) => write!(f, "target {v}"),
            }
        }
    }

    /// One heap of a surface's hint list (a `heap` event).
    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    pub struct HeapHint {
        /// The node's name under `/dev/dma_heap`.
        pub heap: String,
        /// Its memory is physically contiguous.
        pub contiguous: bool,
        /// CPU mappings of it are uncached.
        pub uncached: bool,
        /// It lies below 4 GiB.
        pub dma32: bool,
        /// The compositor allocates from it for the client that asks.
        pub delegated: bool,
        /// Strides must be multiples of this (bytes, a power of two).
        pub pitch_alignment: u32,
        /// Plane offsets must be multiples of this (bytes, a power of two).
        pub offset_alignment: u32,
        /// The index of the linux-dmabuf feedback tranche it serves.
        pub tranche: u32,
        /// The plane it is for.
        pub target: HintTarget,
    }

    impl HeapHint {
        /// A hint for a heap of physically contiguous memory (a CMA heap), 64-byte pitches and
        /// offsets.
        pub fn contiguous(heap: &str, target: HintTarget, tranche: u32) -> HeapHint {
            HeapHint {
                heap: heap.to_owned(),
                contiguous: true,
                uncached: false,
                dma32: false,
                delegated: false,
                pitch_alignment: 64,
                offset_alignment: 64,
                tranche,
                target,
            }
        }

        /// A hint for an ordinary heap (the system heap), 64-byte pitches and offsets.
        pub fn scattered(heap: &str, target: HintTarget, tranche: u32) -> HeapHint {
            HeapHint {
                contiguous: false,
                ..HeapHint::contiguous(heap, target, tranche)
            }
        }

        /// The same hint, offered for delegated allocation.
        pub fn delegated(mut self) -> HeapHint {
            self.delegated = true;
            self
        }

        /// The protocol's `flags` bitfield.
        pub fn flag_bits(&self) -> u32 {
            u32::from(self.contiguous)
                | u32::from(self.uncached) << 1
                | u32::from(self.dma32) << 2
                | u32::from(self.delegated) << 3
        }
    }

    impl fmt::Display for HeapHint {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "{} for {} (tranche {}",
                self.heap, self.target, self.tranche
            )?;
            for (set, name) in [
                (self.contiguous, "contiguous"),
                (self.uncached, "uncached"),
                (self.dma32, "dma32"),
                (self.delegated, "delegated"),
            ] {
                if set {
                    write!(f, ", {name}")?;
                }
            }
            write!(
                f,
                ", pitch {} offset {})",
                self.pitch_alignment, self.offset_alignment
            )
        }
    }

    /// Client side (wayland-client).
    #[cfg(feature = "client")]
    #[allow(missing_docs, clippy::all, missing_debug_implementations)]
    pub mod client {
        use wayland_client;
        use wayland_client::protocol::*;

        /// Interface descriptions.
        pub mod __interfaces {
            use wayland_client::protocol::__interfaces::*;
            wayland_scanner::generate_interfaces!("../protocols/wayheap-heap-hints-v1.xml");
        }
        use self::__interfaces::*;

        wayland_scanner::generate_client_code!("../protocols/wayheap-heap-hints-v1.xml");
    }

    /// Server side (Smithay's wayland-server).
    #[cfg(feature = "smithay")]
    #[allow(missing_docs, clippy::all, missing_debug_implementations)]
    pub mod server {
        use smithay::reexports::wayland_server;
        use smithay::reexports::wayland_server::protocol::*;

        /// Interface descriptions.
        pub mod __interfaces {
            use smithay::reexports::wayland_server::protocol::__interfaces::*;
            wayland_scanner::generate_interfaces!("../protocols/wayheap-heap-hints-v1.xml");
        }
        use self::__interfaces::*;

        wayland_scanner::generate_server_code!("../protocols/wayheap-heap-hints-v1.xml");
    }
}
