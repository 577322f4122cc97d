//! The allocation walk: try each candidate in order, fall back on the errors that mean "not
//! here", stop on the ones that mean "this request is wrong".

use std::fmt;
use std::path::PathBuf;

use super::{Candidate, Constraints, IonInventory, Policy, PolicyError};
use crate::dmabuf::DmaBuf;
use crate::export::{DEFAULT_UDMABUF, ExportError, MemfdBuffer, MemfdRange, Udmabuf};
use crate::heap::{HeapDir, HeapError};
use crate::ion::{DEFAULT_ION_DEVICE, IonDevice, IonError};
use crate::layout::{Fourcc, Layout, LayoutError, LayoutOptions, MODIFIER_LINEAR};

/// Why a provider did not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Not on this system.
    Absent,
    /// Present but not accessible; the message says how to grant access.
    PermissionDenied(String),
    /// Out of memory (ENOMEM/ENOSPC): a full CMA area, for instance.
    OutOfMemory(String),
    /// Its memory cannot satisfy the named constraint.
    Constraint(&'static str),
    /// Present, but this kernel's interface is one wayheap does not speak (ION before 4.12).
    Unsupported(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Absent => f.write_str("absent"),
            SkipReason::PermissionDenied(m)
            | SkipReason::OutOfMemory(m)
            | SkipReason::Unsupported(m) => f.write_str(m),
            SkipReason::Constraint(c) => write!(f, "does not satisfy {c}"),
        }
    }
}

/// A provider that did not serve, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// The heap name, class or `udmabuf`.
    pub provider: String,
    /// Why.
    pub reason: SkipReason,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.provider, self.reason)
    }
}

/// A buffer, who served it, and who was passed over.
#[derive(Debug)]
pub struct Allocation {
    /// The dma-buf.
    pub buffer: DmaBuf,
    /// The heap's name, or `udmabuf`.
    pub provider: String,
    /// Providers tried or ruled out before it, in order.
    pub skipped: Vec<Skip>,
}

/// Why nothing could be allocated.
#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    /// No provider of the usage can meet a constraint.
    #[error(
        "usage {usage}: no provider can satisfy {constraint} ({})",
        list(skipped)
    )]
    Unsatisfiable {
        /// The usage.
        usage: String,
        /// The constraint, named.
        constraint: String,
        /// Every provider and why it was ruled out.
        skipped: Vec<Skip>,
    },
    /// Every provider was tried and none could serve.
    #[error("usage {usage}: every provider failed ({})", list(skipped))]
    Exhausted {
        /// The usage.
        usage: String,
        /// Every provider and why it failed.
        skipped: Vec<Skip>,
    },
    /// A heap refused the request itself (EINVAL, ...), or the heap directory could not be read:
    /// trying elsewhere would not help. The heap's error is the
    /// [`source`](std::error::Error::source).
    #[error(
        "usage {usage}: stopped at a heap error that no other provider would fix (the request or the \
         heap directory is wrong)"
    )]
    Heap {
        /// The usage.
        usage: String,
        /// The heap's error.
        source: HeapError,
    },
    /// udmabuf refused the request itself. Its error is the
    /// [`source`](std::error::Error::source).
    #[error(
        "usage {usage}: stopped at a udmabuf error that no other provider would fix (the request is \
         wrong for udmabuf)"
    )]
    Export {
        /// The usage.
        usage: String,
        /// The export error.
        source: ExportError,
    },
    /// An ION heap refused the request itself (EINVAL, ...). The ION error is the
    /// [`source`](std::error::Error::source).
    #[error(
        "usage {usage}: stopped at an ION error that no other provider would fix (the request is \
         wrong for ION)"
    )]
    Ion {
        /// The usage.
        usage: String,
        /// The ION error.
        source: IonError,
    },
    /// The layout is impossible.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The policy file is wrong.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

fn list(skipped: &[Skip]) -> String {
    skipped
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Allocates by policy: usage in, dma-buf and provenance out.
#[derive(Debug, Clone)]
pub struct Allocator {
    policy: Policy,
    heaps: HeapDir,
    udmabuf: PathBuf,
    ion: PathBuf,
}

/// What one candidate's attempt says about the walk.
enum Attempt {
    Served(DmaBuf),
    FallBack(SkipReason),
    Stop(AllocError),
}

impl Allocator {
    /// An allocator over `heaps` and [`DEFAULT_UDMABUF`] following `policy`.
    pub fn new(policy: Policy, heaps: HeapDir) -> Self {
        Self {
            policy,
            heaps,
            udmabuf: PathBuf::from(DEFAULT_UDMABUF),
            ion: PathBuf::from(DEFAULT_ION_DEVICE),
        }
    }

    /// `$WAYHEAP_POLICY` (or the default policy) over `/dev/dma_heap`.
    pub fn from_env() -> Result<Self, PolicyError> {
        Ok(Self::new(Policy::from_env()?, HeapDir::default()))
    }

    /// Uses another udmabuf node (tests, containers).
    pub fn with_udmabuf(mut self, path: impl Into<PathBuf>) -> Self {
        self.udmabuf = path.into();
        self
    }

    /// Uses another ION node (tests, containers); [`DEFAULT_ION_DEVICE`] otherwise.
    pub fn with_ion(mut self, path: impl Into<PathBuf>) -> Self {
        self.ion = path.into();
        self
    }

    /// What ION offers here, and the open node the walk allocates through: nothing without
    /// `/dev/ion`; a reason when it cannot be used (the walk records it for `ion:` providers,
    /// never fails on it).
    fn ion_inventory(&self) -> (IonInventory, Option<IonDevice>) {
        let listed = IonDevice::open_at(&self.ion).and_then(|d| Ok((d.heaps()?, d)));
        match listed {
            Ok((heaps, device)) => (IonInventory::Heaps(heaps), Some(device)),
            Err(IonError::NotFound { .. }) => (IonInventory::Absent, None),
            Err(e @ IonError::PermissionDenied { .. }) => (
                IonInventory::Unusable(SkipReason::PermissionDenied(e.to_string())),
                None,
            ),
            Err(e) => (
                IonInventory::Unusable(SkipReason::Unsupported(e.to_string())),
                None,
            ),
        }
    }

    /// This allocator with heap `heap` tried first for `usage` (see
    /// [`Policy::with_heap_first`]).
    pub fn with_heap_first(mut self, usage: &str, heap: &str, constraints: &Constraints) -> Self {
        self.policy = self.policy.with_heap_first(usage, heap, constraints);
        self
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The heap directory.
    pub fn heaps(&self) -> &HeapDir {
        &self.heaps
    }

    /// Allocates `size` bytes for `usage`, walking the usage's providers in order.
    pub fn allocate(
        &self,
        usage: &str,
        size: usize,
        constraints: &Constraints,
    ) -> Result<Allocation, AllocError> {
        let heaps = self.heaps.list().map_err(|source| AllocError::Heap {
            usage: usage.to_owned(),
            source,
        })?;
        let (ion, ion_device) = self.ion_inventory();
        let (candidates, mut skipped, merged) =
            self.policy
                .candidates_with_ion(usage, constraints, &heaps, &ion);
        if let Some(mods) = &merged.modifiers
            && !mods.contains(&MODIFIER_LINEAR)
        {
            return Err(AllocError::Unsatisfiable {
                usage: usage.to_owned(),
                constraint: "modifiers: heap and udmabuf buffers are LINEAR only, and the consumers do not accept LINEAR".into(),
                skipped,
            });
        }
        if candidates.is_empty() {
            let constraint = skipped
                .iter()
                .find_map(|s| match s.reason {
                    SkipReason::Constraint(c) => Some(c.to_owned()),
                    _ => None,
                })
                .unwrap_or_else(|| "presence (no provider of this usage exists here)".to_owned());
            return Err(AllocError::Unsatisfiable {
                usage: usage.to_owned(),
                constraint,
                skipped,
            });
        }
        for c in candidates {
            match self.try_one(&c, usage, size, ion_device.as_ref()) {
                Attempt::Served(buffer) => {
                    if !skipped.is_empty() {
                        tracing::info!(usage, provider = c.name(), skipped = %list(&skipped), "allocation fell back");
                    }
                    return Ok(Allocation {
                        buffer,
                        provider: c.name().to_owned(),
                        skipped,
                    });
                }
                Attempt::FallBack(reason) => skipped.push(Skip {
                    provider: c.name().to_owned(),
                    reason,
                }),
                Attempt::Stop(err) => return Err(err),
            }
        }
        Err(AllocError::Exhausted {
            usage: usage.to_owned(),
            skipped,
        })
    }

    /// Lays out an image for `usage` (stride and offset alignment from the defaults, the policy and
    /// `constraints`, whichever is largest) and allocates its buffer(s).
    pub fn allocate_image(
        &self,
        usage: &str,
        format: Fourcc,
        width: u32,
        height: u32,
        constraints: &Constraints,
        buffer_per_plane: bool,
    ) -> Result<(Layout, Vec<Allocation>), AllocError> {
        let merged = constraints.merged(&self.policy.rule(usage).constraints);
        let d = LayoutOptions::default();
        let opts = LayoutOptions {
            stride_align: merged
                .pitch_align
                .unwrap_or(d.stride_align)
                .max(d.stride_align),
            offset_align: merged
                .offset_align
                .unwrap_or(d.offset_align)
                .max(d.offset_align),
            buffer_per_plane,
        };
        let layout = Layout::new(format, width, height, opts)?;
        let buffers = layout
            .buffer_sizes
            .iter()
            .map(|&size| self.allocate(usage, size as usize, constraints))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((layout, buffers))
    }

    /// Tries candidate `c`; an ION candidate allocates through `ion`, the node the inventory
    /// listed it from (there is none without an inventory of heaps).
    fn try_one(&self, c: &Candidate, usage: &str, size: usize, ion: Option<&IonDevice>) -> Attempt {
        match c {
            Candidate::Heap { name, .. } => match self
                .heaps
                .open(name)
                .and_then(|h| h.allocate_for(size, usage))
            {
                Ok(buf) => Attempt::Served(buf),
                Err(HeapError::NotFound { .. }) => Attempt::FallBack(SkipReason::Absent),
                Err(e @ HeapError::PermissionDenied { .. }) => {
                    Attempt::FallBack(SkipReason::PermissionDenied(e.to_string()))
                }
                Err(e @ HeapError::OutOfMemory { .. }) => {
                    Attempt::FallBack(SkipReason::OutOfMemory(e.to_string()))
                }
                Err(source) => Attempt::Stop(AllocError::Heap {
                    usage: usage.to_owned(),
                    source,
                }),
            },
            Candidate::Ion {
                heap, properties, ..
            } => match ion
                .ok_or(IonError::NotFound {
                    path: self.ion.clone(),
                })
                .and_then(|d| d.allocate_for(heap, size, properties.cached, usage))
            {
                Ok(buf) => Attempt::Served(buf),
                Err(IonError::NotFound { .. } | IonError::NoSuchHeap { .. }) => {
                    Attempt::FallBack(SkipReason::Absent)
                }
                Err(e @ IonError::PermissionDenied { .. }) => {
                    Attempt::FallBack(SkipReason::PermissionDenied(e.to_string()))
                }
                Err(e @ IonError::OutOfMemory { .. }) => {
                    Attempt::FallBack(SkipReason::OutOfMemory(e.to_string()))
                }
                Err(e @ IonError::LegacyAbi { .. }) => {
                    Attempt::FallBack(SkipReason::Unsupported(e.to_string()))
                }
                Err(source) => Attempt::Stop(AllocError::Ion {
                    usage: usage.to_owned(),
                    source,
                }),
            },
            Candidate::Udmabuf => {
                let exported = Udmabuf::open_at(&self.udmabuf).and_then(|u| {
                    let mem = MemfdBuffer::new(size)?;
                    // The dma-buf keeps the pages; our mapping of them can go with `mem`.
                    u.export_for(
                        MemfdRange {
                            memfd: mem.memfd(),
                            offset: 0,
                            size: mem.mapped_len() as u64,
                        },
                        usage,
                    )
                });
                match exported {
                    Ok(buf) => Attempt::Served(buf),
                    Err(ExportError::NotFound { .. }) => Attempt::FallBack(SkipReason::Absent),
                    Err(e @ ExportError::PermissionDenied { .. }) => {
                        Attempt::FallBack(SkipReason::PermissionDenied(e.to_string()))
                    }
                    Err(
                        e @ (ExportError::SizeLimit { .. }
                        | ExportError::FixedSizeLimit { .. }
                        | ExportError::Memfd { .. }),
                    ) => Attempt::FallBack(SkipReason::OutOfMemory(e.to_string())),
                    Err(source) => Attempt::Stop(AllocError::Export {
                        usage: usage.to_owned(),
                        source,
                    }),
                }
            }
        }
    }
}
