//! ION: the allocator of Android and vendor BSP kernels before DMA-BUF heaps, `/dev/ion`.
//!
//! Kernels from 4.12 to 5.10 (staging, `CONFIG_ION`) and many vendor BSP kernels built on them
//! allocate dma-bufs through one node, `/dev/ion`, that lists its heaps with a type and an id
//! (`ION_IOC_HEAP_QUERY`) and allocates from a mask of heap ids with a cache flag
//! (`ION_IOC_ALLOC`). Mainline removed ION in 5.11 for [DMA-BUF heaps](crate::heap); some BSP
//! kernels carry both. This module lists ION heaps, classifies them into the same
//! [`HeapKind`]s as DMA-BUF heaps (system, CMA, contiguous, carveout, vendor), and allocates
//! [`DmaBuf`]s that map, sync and import like any other. Most callers do not use it directly:
//! the [`crate::policy`] names ION heaps as `ion:<name>` and its classes (`@cma`, `@system`,
//! ...) take ION heaps after the DMA-BUF heaps of the same class, so an application runs
//! unchanged on old and new kernels.
//!
//! The ABI before 4.12 (handles, `ION_IOC_SHARE`, a different `ion_allocation_data`) is not
//! supported: such a kernel answers the 4.12 numbers with ENOTTY, which is reported as
//! [`IonError::LegacyAbi`].
//!
//! ## How to use
//!
//! ```no_run
//! use wayheap::heap::HeapKind;
//! use wayheap::ion::{IonDevice, IonError};
//!
//! # fn main() -> Result<(), IonError> {
//! let ion = IonDevice::open()?; // /dev/ion; IonDevice::open_at(path) elsewhere
//! for heap in ion.heaps()? {
//!     println!("{} (id {}): {} {:?}", heap.name, heap.id, heap.kind, heap.properties);
//! }
//! let heaps = ion.heaps()?;
//! if let Some(cma) = heaps.iter().find(|h| h.kind == HeapKind::Cma) {
//!     // Cached CPU mapping; the sync guards of DmaBuf::map keep it coherent.
//!     let buf = ion.allocate_for(cma, 1 << 20, true, "camera")?;
//!     assert!(buf.size() >= 1 << 20);
//! }
//! # Ok(())
//! # }
//! ```

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::dmabuf::{DmaBuf, Origin};
use crate::heap::{HeapKind, HeapProperties};
use crate::sys;

/// Where ION's node is.
pub const DEFAULT_ION_DEVICE: &str = "/dev/ion";

/// The udev rule that makes `/dev/ion` usable by a group; the kernel creates it root-only
/// (Android's ueventd opens it to everyone with `/dev/ion 0664 system system`).
pub const ION_UDEV_RULE_HINT: &str = r#"KERNEL=="ion", GROUP="video", MODE="0660""#;

/// The prefix the policy puts before an ION heap's name (`ion:ion_system_heap`): ION's CMA heap
/// has the CMA area's name, which the DMA-BUF CMA heap also has.
pub const ION_PREFIX: &str = "ion:";

/// An ION heap type (`enum ion_heap_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IonHeapType {
    /// `ION_HEAP_TYPE_SYSTEM`: pages from anywhere.
    System,
    /// `ION_HEAP_TYPE_SYSTEM_CONTIG`: physically contiguous pages from the page allocator (at most
    /// the largest buddy order, 4 MiB on x86).
    SystemContig,
    /// `ION_HEAP_TYPE_CARVEOUT`: a reserved region.
    Carveout,
    /// `ION_HEAP_TYPE_CHUNK`: a reserved region handed out in fixed chunks.
    Chunk,
    /// `ION_HEAP_TYPE_DMA`: the Contiguous Memory Allocator (one heap per CMA area).
    Dma,
    /// `ION_HEAP_TYPE_CUSTOM` and above: the vendor's own.
    Custom(u32),
}

impl IonHeapType {
    /// From the kernel's number.
    pub fn from_raw(raw: u32) -> Self {
        match raw {
            0 => Self::System,
            1 => Self::SystemContig,
            2 => Self::Carveout,
            3 => Self::Chunk,
            4 => Self::Dma,
            n => Self::Custom(n),
        }
    }

    /// The family and memory of a heap of this type: the classes the policy matches
    /// (`@system`, `@cma`, `@contiguous`, `@carveout`, `@vendor`). A custom heap's contiguity is
    /// unknown; a policy `heap ion:NAME contiguous` line says it.
    pub fn classify(self) -> (HeapKind, HeapProperties) {
        let (kind, contiguous) = match self {
            Self::System => (HeapKind::System, false),
            Self::SystemContig => (HeapKind::Contiguous, true),
            Self::Carveout | Self::Chunk => (HeapKind::Carveout, true),
            Self::Dma => (HeapKind::Cma, true),
            Self::Custom(_) => (
                HeapKind::Vendor {
                    vendor: "ion".to_owned(),
                },
                false,
            ),
        };
        (
            kind,
            HeapProperties {
                contiguous,
                // ION caches per allocation (ION_FLAG_CACHED), not per heap: cached by default.
                cached: true,
                dma32: false,
            },
        )
    }
}

/// An ION heap as `ION_IOC_HEAP_QUERY` describes it, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IonHeapInfo {
    /// The kernel's name (`ion_system_heap`, `ion_system_contig_heap`, a CMA area's name).
    pub name: String,
    /// The heap id: bit `id` of an allocation's heap mask.
    pub id: u32,
    /// Its type.
    pub heap_type: IonHeapType,
    /// Its family, from the type.
    pub kind: HeapKind,
    /// What its memory is, from the type.
    pub properties: HeapProperties,
}

impl IonHeapInfo {
    /// The name the policy and the accounting use: `ion:<name>`.
    pub fn provider_name(&self) -> String {
        format!("{ION_PREFIX}{}", self.name)
    }
}

/// Why ION could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IonError {
    /// No ION node: mainline kernels since 5.11 have none (DMA-BUF heaps replaced it), older
    /// ones only with CONFIG_ION.
    #[error(
        "{} does not exist: ION is in kernels 4.12 to 5.10 built with CONFIG_ION (staging) and in \
         vendor BSP kernels; since Linux 5.11 use DMA-BUF heaps (/dev/dma_heap)",
        path.display()
    )]
    NotFound {
        /// The node looked for.
        path: PathBuf,
    },
    /// The node exists but this process may not open it.
    #[error(
        "permission denied opening {}: the kernel creates it root-only; grant a group with a \
         rule such as `{ION_UDEV_RULE_HINT}` in /etc/udev/rules.d/70-ion.rules and add the user \
         to that group",
        path.display()
    )]
    PermissionDenied {
        /// The node.
        path: PathBuf,
    },
    /// The kernel's ION speaks the ABI before 4.12 (handles and ION_IOC_SHARE).
    #[error(
        "{} speaks ION's ABI from before Linux 4.12 ({op} answered ENOTTY): wayheap supports the \
         4.12-5.10 ABI (ION_IOC_HEAP_QUERY, ION_IOC_ALLOC returning a dma-buf fd) only",
        path.display()
    )]
    LegacyAbi {
        /// The node.
        path: PathBuf,
        /// The ioctl refused.
        op: &'static str,
    },
    /// A zero-length allocation, refused before asking the kernel.
    #[error("refusing a zero-length allocation from ION heap {heap}")]
    ZeroLength {
        /// The heap asked.
        heap: String,
    },
    /// The heap id is not one ION has (a stale id, or above 31).
    #[error("ION has no heap with id {id} (ION_IOC_ALLOC answered ENODEV)")]
    NoSuchHeap {
        /// The id asked for.
        id: u32,
    },
    /// The heap has no room for the request.
    #[error("ION heap {heap} is out of memory: {len} bytes could not be allocated ({errno})")]
    OutOfMemory {
        /// The heap asked.
        heap: String,
        /// The page-rounded size.
        len: u64,
        /// ENOMEM (or ENOSPC) as the kernel said.
        errno: Errno,
    },
    /// The kernel rejected the size or flags.
    #[error("ION heap {heap} rejected an allocation of {len} bytes as invalid (EINVAL)")]
    InvalidArgument {
        /// The heap asked.
        heap: String,
        /// The page-rounded size.
        len: u64,
    },
    /// Any other failure.
    #[error("{op} on {} failed: {errno}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The node.
        path: PathBuf,
        /// The kernel's error.
        errno: Errno,
    },
}

/// An open `/dev/ion`.
#[derive(Debug)]
pub struct IonDevice {
    path: PathBuf,
    fd: OwnedFd,
}

impl IonDevice {
    /// Opens [`DEFAULT_ION_DEVICE`].
    pub fn open() -> Result<Self, IonError> {
        Self::open_at(Path::new(DEFAULT_ION_DEVICE))
    }

    /// Opens the ION node at `path` (tests, containers).
    pub fn open_at(path: &Path) -> Result<Self, IonError> {
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map_err(
            |errno| match errno {
                Errno::NOENT | Errno::NXIO | Errno::NODEV => IonError::NotFound {
                    path: path.to_owned(),
                },
                Errno::ACCESS | Errno::PERM => IonError::PermissionDenied {
                    path: path.to_owned(),
                },
                errno => IonError::Io {
                    op: "open",
                    path: path.to_owned(),
                    errno,
                },
            },
        )?;
        Ok(Self {
            path: path.to_owned(),
            fd,
        })
    }

    /// The node's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every heap, in ION's priority order, classified by type.
    pub fn heaps(&self) -> Result<Vec<IonHeapInfo>, IonError> {
        let raw = sys::ion_heap_query(self.fd.as_fd()).map_err(|errno| match errno {
            Errno::NOTTY => IonError::LegacyAbi {
                path: self.path.clone(),
                op: "ION_IOC_HEAP_QUERY",
            },
            errno => IonError::Io {
                op: "ION_IOC_HEAP_QUERY",
                path: self.path.clone(),
                errno,
            },
        })?;
        Ok(raw
            .iter()
            .map(|h| {
                let end = h.name.iter().position(|&b| b == 0).unwrap_or(h.name.len());
                let heap_type = IonHeapType::from_raw(h.heap_type);
                let (kind, properties) = heap_type.classify();
                IonHeapInfo {
                    name: String::from_utf8_lossy(&h.name[..end]).into_owned(),
                    id: h.heap_id,
                    heap_type,
                    kind,
                    properties,
                }
            })
            .collect())
    }

    /// The heap called `name` (without the `ion:` prefix).
    pub fn heap(&self, name: &str) -> Result<Option<IonHeapInfo>, IonError> {
        Ok(self.heaps()?.into_iter().find(|h| h.name == name))
    }

    /// Allocates at least `len` bytes (whole pages) from `heap`, mapped cached by the CPU when
    /// `cached` (else write-combined).
    pub fn allocate(
        &self,
        heap: &IonHeapInfo,
        len: usize,
        cached: bool,
    ) -> Result<DmaBuf, IonError> {
        self.allocate_for(heap, len, cached, "")
    }

    /// Allocates for a named usage: the buffer is named `ion:heap:usage` (cut to the kernel's 31
    /// bytes) and counted under provider `ion:heap` in [`crate::accounting`]. A naming failure
    /// is logged, not returned.
    pub fn allocate_for(
        &self,
        heap: &IonHeapInfo,
        len: usize,
        cached: bool,
        usage: &str,
    ) -> Result<DmaBuf, IonError> {
        let provider = heap.provider_name();
        if len == 0 {
            return Err(IonError::ZeroLength { heap: provider });
        }
        if heap.id >= 32 {
            return Err(IonError::NoSuchHeap { id: heap.id });
        }
        let page = rustix::param::page_size();
        let len = len.div_ceil(page) as u64 * page as u64;
        let flags = if cached { sys::ION_FLAG_CACHED } else { 0 };
        let fd =
            sys::ion_alloc(self.fd.as_fd(), len, 1 << heap.id, flags).map_err(
                |errno| match errno {
                    Errno::NOMEM | Errno::NOSPC => IonError::OutOfMemory {
                        heap: provider.clone(),
                        len,
                        errno,
                    },
                    Errno::INVAL => IonError::InvalidArgument {
                        heap: provider.clone(),
                        len,
                    },
                    Errno::NODEV => IonError::NoSuchHeap { id: heap.id },
                    Errno::NOTTY => IonError::LegacyAbi {
                        path: self.path.clone(),
                        op: "ION_IOC_ALLOC",
                    },
                    errno => IonError::Io {
                        op: "ION_IOC_ALLOC",
                        path: self.path.clone(),
                        errno,
                    },
                },
            )?;
        Ok(DmaBuf::allocated(
            fd,
            len,
            Origin::Ion(heap.name.clone()),
            &provider,
            usage,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_types_classify_into_the_policy_classes() {
        assert_eq!(IonHeapType::from_raw(0).classify().0, HeapKind::System);
        assert!(!IonHeapType::from_raw(0).classify().1.contiguous);
        let (kind, props) = IonHeapType::from_raw(4).classify();
        assert_eq!((kind, props.contiguous), (HeapKind::Cma, true));
        let (kind, props) = IonHeapType::from_raw(1).classify();
        assert_eq!((kind, props.contiguous), (HeapKind::Contiguous, true));
        for raw in [2, 3] {
            let (kind, props) = IonHeapType::from_raw(raw).classify();
            assert_eq!((kind, props.contiguous), (HeapKind::Carveout, true));
        }
        assert_eq!(IonHeapType::from_raw(16), IonHeapType::Custom(16));
        assert!(matches!(
            IonHeapType::from_raw(16).classify().0,
            HeapKind::Vendor { vendor } if vendor == "ion"
        ));
    }

    #[test]
    fn a_missing_node_says_which_kernels_have_ion() {
        let err = IonDevice::open_at(Path::new("/nonexistent/ion")).unwrap_err();
        assert!(matches!(err, IonError::NotFound { .. }));
        let text = err.to_string();
        assert!(text.contains("5.10") && text.contains("5.11"), "{text}");
    }

    #[test]
    fn a_node_that_is_not_ion_is_not_mistaken_for_it() {
        // /dev/null answers every ioctl with ENOTTY, as a pre-4.12 ION does: LegacyAbi, never a
        // list of nothing.
        let dev = IonDevice::open_at(Path::new("/dev/null")).unwrap();
        assert!(matches!(dev.heaps(), Err(IonError::LegacyAbi { .. })));
    }
}
