//! Why a surface is, or is not, on a plane.
//!
//! Smithay's `DrmCompositor` decides plane assignment and reports per element only `ZeroCopy`,
//! `Skipped`, or `Rendering` with at most "format unsupported" / "scanout failed". A compositor
//! that wants to tell its user why a video is composited (and a test that wants to assert it)
//! needs more: [`explain`] combines that state with what the compositor knows about the element
//! (its buffer, its scaling) and the planes (their formats, their number) into a [`Placement`]
//! with a [`Reason`].

use std::fmt;

use smithay::backend::allocator::{Format, Modifier};
use smithay::backend::renderer::element::{RenderElementPresentationState, RenderingReason};

/// Which kind of plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlaneKind {
    /// The primary plane, scanning the client's buffer directly.
    Primary,
    /// An overlay plane.
    Overlay,
    /// The cursor plane.
    Cursor,
}

/// Why an element was composited instead of scanned out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Scan-out is switched off (e.g. `--no-planes`).
    ScanoutDisabled,
    /// The output has no planes at all (a headless or offscreen output).
    NoPlanes,
    /// Its buffer is shm or single-pixel, not a dma-buf.
    NotADmaBuf,
    /// A dma-buf with an implicit or non-LINEAR modifier the planes do not take.
    ModifierUnsupported(Modifier),
    /// No free plane scans out this format + modifier.
    FormatUnsupported(Format),
    /// The element is scaled and the planes do not scale.
    ScalingUnsupported,
    /// Every usable plane is taken.
    NoPlaneFree,
    /// The kernel refused the plane in an atomic TEST_ONLY commit (errno when known).
    TestCommitFailed(Option<String>),
    /// The compositor's rules kept it on the primary plane (it overlaps composited content).
    OverlapsComposited,
    /// The planes read only physically contiguous memory and the buffer is not (its exporter,
    /// e.g. `system` or `udmabuf`): allocate from a CMA heap.
    NotContiguous(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::ScanoutDisabled => f.write_str("scan-out disabled"),
            Reason::NoPlanes => f.write_str("the output has no planes"),
            Reason::NotADmaBuf => f.write_str("not a dma-buf"),
            Reason::ModifierUnsupported(m) => {
                write!(f, "modifier {m:?} not supported by the planes")
            }
            Reason::FormatUnsupported(fmt) => {
                write!(
                    f,
                    "format {} ({:?}) not supported by a free plane",
                    fmt.code, fmt.modifier
                )
            }
            Reason::ScalingUnsupported => f.write_str("scaling not supported by the planes"),
            Reason::NoPlaneFree => f.write_str("no plane free"),
            Reason::TestCommitFailed(Some(e)) => write!(f, "test commit refused: {e}"),
            Reason::TestCommitFailed(None) => f.write_str("test commit refused"),
            Reason::OverlapsComposited => f.write_str("overlaps composited content"),
            Reason::NotContiguous(exporter) => write!(
                f,
                "the planes need physically contiguous memory; the buffer is {exporter} memory"
            ),
        }
    }
}

/// Where an element ended up this frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Scanned out from its own buffer.
    Plane(PlaneKind),
    /// Drawn into the primary plane's buffer, and why.
    Composited(Reason),
    /// Not visible (occluded, off-output).
    Hidden,
}

impl Placement {
    /// True when the element's own buffer is on a plane (presentation's ZERO_COPY).
    pub fn zero_copy(&self) -> bool {
        matches!(self, Placement::Plane(_))
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placement::Plane(PlaneKind::Primary) => f.write_str("primary plane"),
            Placement::Plane(PlaneKind::Overlay) => f.write_str("overlay plane"),
            Placement::Plane(PlaneKind::Cursor) => f.write_str("cursor plane"),
            Placement::Composited(r) => write!(f, "composited ({r})"),
            Placement::Hidden => f.write_str("hidden"),
        }
    }
}

/// What the compositor knows about one element's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementFacts {
    /// The buffer's format if it is a dma-buf (`None`: shm, single-pixel, no buffer).
    pub dmabuf_format: Option<Format>,
    /// Drawn at a size other than its buffer's (viewporter, output scale).
    pub scaled: bool,
    /// Its dma-buf's memory (`None`: not a dma-buf, or unknown).
    pub memory: Option<super::BufferMemory>,
}

/// What the planes can do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaneCaps {
    /// The formats each overlay plane scans out (IN_FORMATS), one set per plane.
    pub overlay_formats: Vec<Vec<Format>>,
    /// The primary plane's formats.
    pub primary_formats: Vec<Format>,
    /// Whether the planes scale: `Some` when known, `None` when only the kernel can tell (KMS
    /// has no property for it), in which case a refused test commit of a scaled element is
    /// blamed on the scaling.
    pub scaling: Option<bool>,
    /// The planes read only physically contiguous memory
    /// ([`PrimeExporter::contiguous_only`](super::PrimeExporter::contiguous_only)).
    pub contiguous_only: bool,
}

/// Explains one element's placement. `plane` is what the frame result says it got (by element
/// id), `state` its presentation state, `overlays_taken` how many overlay planes other elements
/// got this frame, `scanout_allowed` whether the frame allowed scan-out at all.
pub fn explain(
    plane: Option<PlaneKind>,
    state: &RenderElementPresentationState,
    facts: &ElementFacts,
    caps: &PlaneCaps,
    overlays_taken: usize,
    scanout_allowed: bool,
) -> Placement {
    if let Some(kind) = plane {
        return Placement::Plane(kind);
    }
    if matches!(state, RenderElementPresentationState::Skipped) {
        return Placement::Hidden;
    }
    if caps.overlay_formats.is_empty() && caps.primary_formats.is_empty() {
        return Placement::Composited(Reason::NoPlanes);
    }
    if !scanout_allowed {
        return Placement::Composited(Reason::ScanoutDisabled);
    }
    let Some(format) = facts.dmabuf_format else {
        return Placement::Composited(Reason::NotADmaBuf);
    };
    if format.modifier != Modifier::Linear {
        return Placement::Composited(Reason::ModifierUnsupported(format.modifier));
    }
    if caps.contiguous_only
        && let Some(memory) = facts.memory.as_ref().filter(|m| !m.contiguous)
    {
        return Placement::Composited(Reason::NotContiguous(memory.exporter.clone()));
    }
    let reason = match state {
        RenderElementPresentationState::Rendering {
            reason: Some(RenderingReason::FormatUnsupported),
        } => Reason::FormatUnsupported(format),
        _ if !caps.overlay_formats.iter().any(|p| p.contains(&format))
            && !caps.primary_formats.contains(&format) =>
        {
            Reason::FormatUnsupported(format)
        }
        _ if facts.scaled && caps.scaling == Some(false) => Reason::ScalingUnsupported,
        RenderElementPresentationState::Rendering {
            reason: Some(RenderingReason::ScanoutFailed),
        } if facts.scaled => Reason::ScalingUnsupported,
        RenderElementPresentationState::Rendering {
            reason: Some(RenderingReason::ScanoutFailed),
        } => Reason::TestCommitFailed(None),
        _ if overlays_taken >= caps.overlay_formats.len() => Reason::NoPlaneFree,
        _ => Reason::OverlapsComposited,
    };
    Placement::Composited(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smithay::backend::allocator::Fourcc;

    fn linear(code: Fourcc) -> Format {
        Format {
            code,
            modifier: Modifier::Linear,
        }
    }

    fn caps(planes: usize) -> PlaneCaps {
        PlaneCaps {
            overlay_formats: vec![vec![linear(Fourcc::Argb8888), linear(Fourcc::Xrgb8888)]; planes],
            primary_formats: vec![linear(Fourcc::Xrgb8888)],
            scaling: Some(false),
            contiguous_only: false,
        }
    }

    #[test]
    fn planes_that_need_contiguous_memory_name_the_buffers_memory() {
        let argb = Some(linear(Fourcc::Argb8888));
        let strict = PlaneCaps {
            contiguous_only: true,
            ..caps(2)
        };
        let memory = |exporter: &str, contiguous| ElementFacts {
            dmabuf_format: argb,
            scaled: false,
            memory: Some(super::super::BufferMemory {
                exporter: exporter.into(),
                contiguous,
            }),
        };
        let p = explain(None, &RENDERING, &memory("system", false), &strict, 0, true);
        assert_eq!(
            p,
            Placement::Composited(Reason::NotContiguous("system".into()))
        );
        assert!(p.to_string().contains("contiguous"), "{p}");
        // Contiguous memory, or planes that do not care: the other reasons apply.
        let p = explain(
            None,
            &RENDERING,
            &memory("reserved", true),
            &strict,
            0,
            true,
        );
        assert_eq!(p, Placement::Composited(Reason::OverlapsComposited));
        let p = explain(
            None,
            &RENDERING,
            &memory("system", false),
            &caps(2),
            0,
            true,
        );
        assert_eq!(p, Placement::Composited(Reason::OverlapsComposited));
    }

    const RENDERING: RenderElementPresentationState =
        RenderElementPresentationState::Rendering { reason: None };

    fn facts(f: Option<Format>, scaled: bool) -> ElementFacts {
        ElementFacts {
            dmabuf_format: f,
            scaled,
            memory: None,
        }
    }

    #[test]
    fn planes_win() {
        let p = explain(
            Some(PlaneKind::Overlay),
            &RenderElementPresentationState::ZeroCopy,
            &facts(None, false),
            &caps(1),
            0,
            true,
        );
        assert_eq!(p, Placement::Plane(PlaneKind::Overlay));
        assert!(p.zero_copy());
    }

    #[test]
    fn each_reason() {
        let argb = Some(linear(Fourcc::Argb8888));
        let c = caps(2);
        let e = |f: Option<Format>, scaled, taken, allowed| {
            explain(None, &RENDERING, &facts(f, scaled), &c, taken, allowed)
        };
        assert_eq!(
            e(argb, false, 0, false),
            Placement::Composited(Reason::ScanoutDisabled)
        );
        assert_eq!(
            e(None, false, 0, true),
            Placement::Composited(Reason::NotADmaBuf)
        );
        let implicit = Some(Format {
            code: Fourcc::Argb8888,
            modifier: Modifier::Invalid,
        });
        assert_eq!(
            e(implicit, false, 0, true),
            Placement::Composited(Reason::ModifierUnsupported(Modifier::Invalid))
        );
        let nv12 = Some(linear(Fourcc::Nv12));
        assert_eq!(
            e(nv12, false, 0, true),
            Placement::Composited(Reason::FormatUnsupported(linear(Fourcc::Nv12)))
        );
        assert_eq!(
            e(argb, true, 0, true),
            Placement::Composited(Reason::ScalingUnsupported)
        );
        assert_eq!(
            e(argb, false, 2, true),
            Placement::Composited(Reason::NoPlaneFree)
        );
        assert_eq!(
            e(argb, false, 1, true),
            Placement::Composited(Reason::OverlapsComposited)
        );
        let failed = RenderElementPresentationState::Rendering {
            reason: Some(RenderingReason::ScanoutFailed),
        };
        assert_eq!(
            explain(None, &failed, &facts(argb, false), &c, 0, true),
            Placement::Composited(Reason::TestCommitFailed(None))
        );
        assert_eq!(
            explain(
                None,
                &RENDERING,
                &facts(argb, false),
                &PlaneCaps::default(),
                0,
                true
            ),
            Placement::Composited(Reason::NoPlanes)
        );
        assert_eq!(
            explain(
                None,
                &RenderElementPresentationState::Skipped,
                &facts(argb, false),
                &c,
                0,
                true
            ),
            Placement::Hidden
        );
    }

    #[test]
    fn unknown_scaling_is_blamed_only_when_the_kernel_refused_a_scaled_element() {
        let argb = Some(linear(Fourcc::Argb8888));
        let unknown = PlaneCaps {
            scaling: None,
            ..caps(2)
        };
        let failed = RenderElementPresentationState::Rendering {
            reason: Some(RenderingReason::ScanoutFailed),
        };
        let e = |state: &RenderElementPresentationState, scaled| {
            explain(None, state, &facts(argb, scaled), &unknown, 0, true)
        };
        assert_eq!(
            e(&failed, true),
            Placement::Composited(Reason::ScalingUnsupported)
        );
        assert_eq!(
            e(&failed, false),
            Placement::Composited(Reason::TestCommitFailed(None))
        );
        // Scaled but never refused: not blamed on scaling.
        assert_eq!(
            e(&RENDERING, true),
            Placement::Composited(Reason::OverlapsComposited)
        );
    }
}
