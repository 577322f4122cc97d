//! Why a surface is, or is not, on a plane: the reasons and the rules that pick one.
//!
//! Smithay's `DrmCompositor` decides plane assignment and reports per element only `ZeroCopy`,
//! `Skipped`, or `Rendering` with at most "format unsupported" / "scanout failed". A compositor
//! that wants to tell its user why a video is composited (and a test that wants to assert it)
//! needs more: [`explain`] combines that state with what is known about the element
//! ([`ElementFacts`]), the planes ([`PlaneCaps`]) and the rest of the frame ([`FrameFacts`]) into
//! a [`Placement`] with a [`Reason`]. A cause it cannot establish is [`Reason::Unexplained`],
//! never a guess.
//!
//! Most compositors want [`PlacementTracker`](super::PlacementTracker), which gathers all of
//! these from a frame and calls [`explain`] for each surface.
//!
//! The reasons cover what applies of Weston's per-view plane failure reasons
//! (`try_view_on_plane_failure_reasons`: forced renderer, buffer type, solid colour, format,
//! modifier, AddFB failure, no plane available, planes rejected by the kernel, transform, global
//! alpha, occlusion, size) and add contiguity and the kernel's errno.

use std::fmt;

use drm::control::Device as _;
use smithay::backend::allocator::{Format, Modifier};
use smithay::backend::drm::DrmSurface;
use smithay::backend::renderer::element::{RenderElementPresentationState, RenderingReason};
use smithay::utils::Transform;

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

impl PlaneKind {
    /// `"primary"`, `"overlay"` or `"cursor"`.
    pub fn name(self) -> &'static str {
        match self {
            PlaneKind::Primary => "primary",
            PlaneKind::Overlay => "overlay",
            PlaneKind::Cursor => "cursor",
        }
    }
}

/// What the kernel was probably refusing when a test commit failed (a fact of the element that
/// planes often do not support, where the planes do not say whether they do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suspect {
    /// The element is scaled (KMS has no property saying whether a plane scales).
    Scaling,
    /// The element reaches past the output's edge.
    CrossesOutput,
}

/// Why an element was composited instead of scanned out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Scan-out is switched off (e.g. `--no-planes`). Weston: FORCE_RENDERER.
    ScanoutDisabled,
    /// The output has no planes at all (a headless or offscreen output).
    NoPlanes,
    /// Its buffer is shm (or another non-dma-buf type), and shm scan-out is off. Weston:
    /// BUFFER_TYPE.
    NotADmaBuf,
    /// Its buffer is shm and its pool could not be exported for scan-out
    /// ([`ShmScanout`](super::ShmScanout)), with why.
    ShmNotExported(super::ShmRefusal),
    /// A single-pixel buffer: a solid colour, drawn by the renderer. Weston: SOLID_SURFACE.
    SolidColor,
    /// A dma-buf with an implicit or non-LINEAR modifier the planes do not take.
    /// Weston: DMABUF_MODIFIER_INVALID.
    ModifierUnsupported(Modifier),
    /// No plane scans out this format + modifier. Weston: FB_FORMAT_INCOMPATIBLE.
    FormatUnsupported(Format),
    /// The kernel would not make a framebuffer of the buffer (PRIME import or AddFB2 failed),
    /// with its error. Weston: ADD_FB_FAILED.
    FramebufferFailed(String),
    /// The element is scaled and the planes are known not to scale.
    ScalingUnsupported,
    /// The element is rotated or flipped and the planes have no `rotation` property.
    /// Weston: INCOMPATIBLE_TRANSFORM.
    TransformUnsupported(Transform),
    /// The element is drawn with an alpha below 1 and the planes have no `alpha` property.
    /// Weston: GLOBAL_ALPHA.
    AlphaUnsupported,
    /// A composited element in front of it overlaps it: on a plane it would cover that
    /// element. Weston: OCCLUDED_BY_RENDERER.
    OverlapsComposited,
    /// An element on an overlay plane in front of it overlaps it, and the planes' stacking
    /// order cannot be relied on to keep that element in front (no `zpos` above it).
    OverlapsPlane,
    /// Every plane that could take it is taken. Weston: NO_PLANES_AVAILABLE.
    NoPlaneFree,
    /// The kernel refused the plane in an atomic TEST_ONLY commit. Weston: PLANES_REJECTED.
    Refused {
        /// The errno of the refusal, when a test commit of wayheap's own established it.
        errno: Option<i32>,
        /// What about the element the kernel most likely refused.
        suspect: Option<Suspect>,
    },
    /// A YUV buffer whose colour (matrix and range, from `wp_color_representation_v1`) is not
    /// the one the planes convert with now: a plane would show other colours, so it is converted
    /// on the CPU instead.
    ColourMismatch {
        /// The surface's colour.
        surface: crate::yuv::Colour,
        /// The planes' colour.
        planes: crate::yuv::Colour,
    },
    /// The planes read only physically contiguous memory and the buffer is not (its exporter,
    /// e.g. `system` or `udmabuf`): allocate from a CMA heap.
    NotContiguous(String),
    /// Composited, and nothing known explains it.
    Unexplained,
}

impl Reason {
    /// True when a different buffer from the client (another format, modifier or memory) could
    /// reach a plane: the surface should get the scan-out feedback tranches.
    pub fn fixed_by_another_buffer(&self) -> bool {
        matches!(
            self,
            Reason::ModifierUnsupported(_)
                | Reason::FormatUnsupported(_)
                | Reason::FramebufferFailed(_)
                | Reason::NotContiguous(_)
        )
    }
}

/// The symbolic name of an errno a KMS commit returns (`EINVAL`), or its number.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        1 => "EPERM",
        2 => "ENOENT",
        7 => "E2BIG",
        12 => "ENOMEM",
        13 => "EACCES",
        16 => "EBUSY",
        22 => "EINVAL",
        28 => "ENOSPC",
        34 => "ERANGE",
        95 => "EOPNOTSUPP",
        _ => return format!("errno {errno}"),
    };
    name.to_owned()
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::ScanoutDisabled => f.write_str("scan-out disabled"),
            Reason::NoPlanes => f.write_str("the output has no planes"),
            Reason::NotADmaBuf => f.write_str("not a dma-buf"),
            Reason::ShmNotExported(refusal) => write!(f, "{refusal}"),
            Reason::SolidColor => f.write_str("a single-pixel buffer (solid colour)"),
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
            Reason::FramebufferFailed(e) => write!(f, "no framebuffer for the buffer: {e}"),
            Reason::ScalingUnsupported => f.write_str("scaling not supported by the planes"),
            Reason::TransformUnsupported(t) => {
                write!(f, "transform {t:?} not supported by the planes")
            }
            Reason::AlphaUnsupported => {
                f.write_str("drawn translucent (alpha < 1) and the planes have no alpha property")
            }
            Reason::OverlapsComposited => f.write_str("overlaps composited content in front of it"),
            Reason::OverlapsPlane => f.write_str(
                "overlaps an element on an overlay plane in front of it (no plane order keeps it behind)",
            ),
            Reason::NoPlaneFree => f.write_str("no plane free"),
            Reason::Refused { errno, suspect } => {
                match suspect {
                    Some(Suspect::Scaling) => f.write_str("scaling not supported by the planes")?,
                    Some(Suspect::CrossesOutput) => {
                        f.write_str("reaches past the output's edge, which the planes refuse")?
                    }
                    None => f.write_str("the kernel refused the plane")?,
                }
                match errno {
                    Some(e) => write!(f, " (test commit: {})", errno_name(*e)),
                    None => f.write_str(" (test commit refused)"),
                }
            }
            Reason::ColourMismatch { surface, planes } => write!(
                f,
                "its colour ({surface}) is not the planes' ({planes}): converted instead"
            ),
            Reason::NotContiguous(exporter) => write!(
                f,
                "the planes need physically contiguous memory; the buffer is {exporter} memory"
            ),
            Reason::Unexplained => f.write_str("unexplained"),
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

    /// `"primary"`, `"overlay"`, `"cursor"`, `"composited"` or `"hidden"`.
    pub fn name(&self) -> &'static str {
        match self {
            Placement::Plane(kind) => kind.name(),
            Placement::Composited(_) => "composited",
            Placement::Hidden => "hidden",
        }
    }

    /// The reason, when composited.
    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Placement::Composited(r) => Some(r),
            _ => None,
        }
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placement::Plane(kind) => write!(f, "{} plane", kind.name()),
            Placement::Composited(r) => write!(f, "composited ({r})"),
            Placement::Hidden => f.write_str("hidden"),
        }
    }
}

/// What kind of buffer an element shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BufferKind {
    /// A linux-dmabuf buffer, with its format and modifier.
    DmaBuf(Format),
    /// A wl_shm buffer (or any other type that is not a dma-buf).
    #[default]
    Shm,
    /// A single-pixel buffer.
    SinglePixel,
}

/// What is known about one element this frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ElementFacts {
    /// Its buffer's kind.
    pub buffer: BufferKind,
    /// Its dma-buf's memory (`None`: not a dma-buf, or not looked at).
    pub memory: Option<super::BufferMemory>,
    /// Why no framebuffer could be made of its buffer, when that was tried and failed.
    pub framebuffer_error: Option<String>,
    /// Why its shm buffer's pool was not exported for scan-out, when shm scan-out is on.
    pub shm_refusal: Option<super::ShmRefusal>,
    /// Drawn at a size other than its buffer's (viewporter, output scale).
    pub scaled: bool,
    /// Its buffer transform (rotation, flips).
    pub transform: Transform,
    /// Drawn with an alpha below 1.
    pub translucent: bool,
    /// Reaches past the output's edge.
    pub crosses_output: bool,
    /// A composited element in front of it overlaps it.
    pub under_composited: bool,
    /// An element on an overlay plane in front of it overlaps it.
    pub under_overlay: bool,
    /// A cursor element (Smithay copies cursor images into its own cursor buffer, so any
    /// buffer type can reach the cursor plane).
    pub cursor: bool,
    /// When the kernel refused a test commit of it, the errno (from a test of wayheap's own).
    pub refusal_errno: Option<i32>,
    /// A YUV buffer whose colour (surface, planes) differs from the planes' conversion.
    pub colour_mismatch: Option<(crate::yuv::Colour, crate::yuv::Colour)>,
}

/// What is known about the frame the element is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameFacts {
    /// The frame allowed scan-out at all.
    pub scanout_allowed: bool,
    /// How many overlay planes elements got this frame.
    pub overlays_taken: usize,
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
    /// Every overlay plane has the `rotation` property (transforms other than normal need it).
    pub rotation: bool,
    /// Every overlay plane has the `alpha` property (translucent elements need it).
    pub alpha: bool,
    /// The planes read only physically contiguous memory
    /// ([`PrimeExporter::contiguous_only`](super::PrimeExporter::contiguous_only)).
    pub contiguous_only: bool,
}

impl PlaneCaps {
    /// Reads what the planes of a DRM surface (its CRTC's primary and overlay planes) can do:
    /// formats, and the `rotation` and `alpha` properties.
    pub fn from_drm_surface(surface: &DrmSurface) -> PlaneCaps {
        let planes = surface.planes();
        let has = |plane: drm::control::plane::Handle, name: &str| {
            surface
                .get_properties(plane)
                .and_then(|props| props.as_hashmap(surface))
                .is_ok_and(|named| named.contains_key(name))
        };
        let overlays = &planes.overlay;
        PlaneCaps {
            overlay_formats: overlays
                .iter()
                .map(|p| p.formats.iter().copied().collect())
                .collect(),
            primary_formats: surface.plane_info().formats.iter().copied().collect(),
            scaling: None,
            rotation: !overlays.is_empty() && overlays.iter().all(|p| has(p.handle, "rotation")),
            alpha: !overlays.is_empty() && overlays.iter().all(|p| has(p.handle, "alpha")),
            contiguous_only: false,
        }
    }

    /// True when no plane at all is known (a headless or offscreen output).
    pub fn is_empty(&self) -> bool {
        self.overlay_formats.is_empty() && self.primary_formats.is_empty()
    }

    /// True when some plane lists `format` (with its modifier).
    pub fn scans_out(&self, format: &Format) -> bool {
        self.overlay_formats.iter().any(|p| p.contains(format))
            || self.primary_formats.contains(format)
    }
}

/// Explains one element's placement. `plane` is the plane the frame gave it (by element id),
/// `state` its presentation state in the frame.
pub fn explain(
    plane: Option<PlaneKind>,
    state: &RenderElementPresentationState,
    element: &ElementFacts,
    caps: &PlaneCaps,
    frame: &FrameFacts,
) -> Placement {
    if let Some(kind) = plane {
        return Placement::Plane(kind);
    }
    if matches!(state, RenderElementPresentationState::Skipped) {
        return Placement::Hidden;
    }
    Placement::Composited(composited_because(state, element, caps, frame))
}

fn composited_because(
    state: &RenderElementPresentationState,
    element: &ElementFacts,
    caps: &PlaneCaps,
    frame: &FrameFacts,
) -> Reason {
    if caps.is_empty() {
        return Reason::NoPlanes;
    }
    if !frame.scanout_allowed {
        return Reason::ScanoutDisabled;
    }
    let format = match element.buffer {
        BufferKind::DmaBuf(format) => format,
        // A cursor image is copied into the cursor plane's own buffer, whatever its type.
        _ if element.cursor => return Reason::Unexplained,
        BufferKind::Shm => {
            return match &element.shm_refusal {
                Some(refusal) => Reason::ShmNotExported(refusal.clone()),
                None => Reason::NotADmaBuf,
            };
        }
        BufferKind::SinglePixel => return Reason::SolidColor,
    };
    if format.modifier != Modifier::Linear {
        return Reason::ModifierUnsupported(format.modifier);
    }
    if caps.contiguous_only
        && let Some(memory) = element.memory.as_ref().filter(|m| !m.contiguous)
    {
        return Reason::NotContiguous(memory.exporter.clone());
    }
    let smithay_says = match state {
        RenderElementPresentationState::Rendering { reason } => *reason,
        _ => None,
    };
    // Before a framebuffer failure: AddFB2 refuses a format no plane lists (EINVAL), and the
    // format is the cause to name. Smithay's own FormatUnsupported is not enough: it keeps the
    // first plane's answer even when another plane lists the format.
    if !caps.scans_out(&format) {
        return Reason::FormatUnsupported(format);
    }
    if let Some((surface, planes)) = element.colour_mismatch {
        return Reason::ColourMismatch { surface, planes };
    }
    if let Some(e) = &element.framebuffer_error {
        return Reason::FramebufferFailed(e.clone());
    }
    if element.scaled && caps.scaling == Some(false) {
        return Reason::ScalingUnsupported;
    }
    if element.transform != Transform::Normal && !caps.rotation {
        return Reason::TransformUnsupported(element.transform);
    }
    if element.translucent && !caps.alpha {
        return Reason::AlphaUnsupported;
    }
    if element.under_composited {
        return Reason::OverlapsComposited;
    }
    if element.under_overlay && smithay_says != Some(RenderingReason::ScanoutFailed) {
        return Reason::OverlapsPlane;
    }
    if smithay_says == Some(RenderingReason::ScanoutFailed) {
        let suspect = if element.scaled {
            Some(Suspect::Scaling)
        } else if element.crosses_output {
            Some(Suspect::CrossesOutput)
        } else {
            None
        };
        return Reason::Refused {
            errno: element.refusal_errno,
            suspect,
        };
    }
    let overlays_for_format = caps
        .overlay_formats
        .iter()
        .filter(|p| p.contains(&format))
        .count();
    if frame.overlays_taken >= caps.overlay_formats.len() || overlays_for_format == 0 {
        return Reason::NoPlaneFree;
    }
    Reason::Unexplained
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
            rotation: true,
            alpha: false,
            contiguous_only: false,
        }
    }

    const RENDERING: RenderElementPresentationState =
        RenderElementPresentationState::Rendering { reason: None };
    const FAILED: RenderElementPresentationState = RenderElementPresentationState::Rendering {
        reason: Some(RenderingReason::ScanoutFailed),
    };

    fn dmabuf(code: Fourcc) -> ElementFacts {
        ElementFacts {
            buffer: BufferKind::DmaBuf(linear(code)),
            ..Default::default()
        }
    }

    const FRAME: FrameFacts = FrameFacts {
        scanout_allowed: true,
        overlays_taken: 0,
    };

    fn composited(p: Placement) -> Reason {
        match p {
            Placement::Composited(r) => r,
            other => panic!("not composited: {other:?}"),
        }
    }

    #[test]
    fn planes_win_and_skipped_is_hidden() {
        let p = explain(
            Some(PlaneKind::Overlay),
            &RenderElementPresentationState::ZeroCopy,
            &ElementFacts::default(),
            &caps(1),
            &FRAME,
        );
        assert_eq!(p, Placement::Plane(PlaneKind::Overlay));
        assert!(p.zero_copy());
        assert_eq!(p.to_string(), "overlay plane");
        let p = explain(
            None,
            &RenderElementPresentationState::Skipped,
            &dmabuf(Fourcc::Argb8888),
            &caps(1),
            &FRAME,
        );
        assert_eq!(p, Placement::Hidden);
    }

    #[test]
    fn each_reason() {
        let c = caps(2);
        let e = |facts: ElementFacts, frame: FrameFacts| {
            composited(explain(None, &RENDERING, &facts, &c, &frame))
        };
        let argb = || dmabuf(Fourcc::Argb8888);
        let off = FrameFacts {
            scanout_allowed: false,
            ..FRAME
        };
        assert_eq!(e(argb(), off), Reason::ScanoutDisabled);
        assert_eq!(e(ElementFacts::default(), FRAME), Reason::NotADmaBuf);
        let spb = ElementFacts {
            buffer: BufferKind::SinglePixel,
            ..Default::default()
        };
        assert_eq!(e(spb, FRAME), Reason::SolidColor);
        let implicit = ElementFacts {
            buffer: BufferKind::DmaBuf(Format {
                code: Fourcc::Argb8888,
                modifier: Modifier::Invalid,
            }),
            ..Default::default()
        };
        assert_eq!(
            e(implicit, FRAME),
            Reason::ModifierUnsupported(Modifier::Invalid)
        );
        assert_eq!(
            e(dmabuf(Fourcc::Nv12), FRAME),
            Reason::FormatUnsupported(linear(Fourcc::Nv12))
        );
        let no_fb = ElementFacts {
            framebuffer_error: Some("AddFB2: EINVAL".into()),
            ..argb()
        };
        assert_eq!(
            e(no_fb, FRAME),
            Reason::FramebufferFailed("AddFB2: EINVAL".into())
        );
        let scaled = ElementFacts {
            scaled: true,
            ..argb()
        };
        assert_eq!(e(scaled, FRAME), Reason::ScalingUnsupported);
        let translucent = ElementFacts {
            translucent: true,
            ..argb()
        };
        assert_eq!(e(translucent, FRAME), Reason::AlphaUnsupported);
        let covered = ElementFacts {
            under_composited: true,
            ..argb()
        };
        assert_eq!(e(covered, FRAME), Reason::OverlapsComposited);
        let full = FrameFacts {
            overlays_taken: 2,
            ..FRAME
        };
        assert_eq!(e(argb(), full), Reason::NoPlaneFree);
        // Nothing known explains it: said so, not guessed.
        let one_taken = FrameFacts {
            overlays_taken: 1,
            ..FRAME
        };
        assert_eq!(e(argb(), one_taken), Reason::Unexplained);
        assert_eq!(
            composited(explain(None, &FAILED, &argb(), &c, &FRAME)),
            Reason::Refused {
                errno: None,
                suspect: None
            }
        );
        assert_eq!(
            composited(explain(
                None,
                &RENDERING,
                &argb(),
                &PlaneCaps::default(),
                &FRAME
            )),
            Reason::NoPlanes
        );
    }

    #[test]
    fn a_format_no_plane_lists_is_named_before_the_addfb_failure_it_causes() {
        let refused = ElementFacts {
            framebuffer_error: Some("AddFB2 failed: EINVAL".into()),
            ..dmabuf(Fourcc::Rgbx8888)
        };
        let r = composited(explain(None, &RENDERING, &refused, &caps(2), &FRAME));
        assert_eq!(r, Reason::FormatUnsupported(linear(Fourcc::Rgbx8888)));
    }

    #[test]
    fn overlapping_an_overlay_in_front_and_cursors_are_named() {
        let behind = ElementFacts {
            under_overlay: true,
            ..dmabuf(Fourcc::Argb8888)
        };
        let r = composited(explain(None, &RENDERING, &behind, &caps(2), &FRAME));
        assert_eq!(r, Reason::OverlapsPlane);
        // An shm cursor image is not "not a dma-buf": Smithay copies it for the cursor plane.
        let cursor = ElementFacts {
            cursor: true,
            ..Default::default()
        };
        let r = composited(explain(None, &RENDERING, &cursor, &caps(2), &FRAME));
        assert_eq!(r, Reason::Unexplained);
    }

    #[test]
    fn a_transform_the_planes_cannot_rotate_is_named() {
        let no_rotation = PlaneCaps {
            rotation: false,
            ..caps(2)
        };
        let rotated = ElementFacts {
            transform: Transform::_90,
            ..dmabuf(Fourcc::Argb8888)
        };
        let r = composited(explain(None, &FAILED, &rotated, &no_rotation, &FRAME));
        assert_eq!(r, Reason::TransformUnsupported(Transform::_90));
        // Planes that rotate: the transform is not blamed.
        let r = composited(explain(None, &FAILED, &rotated, &caps(2), &FRAME));
        assert!(matches!(r, Reason::Refused { suspect: None, .. }), "{r}");
    }

    #[test]
    fn planes_that_need_contiguous_memory_name_the_buffers_memory() {
        let strict = PlaneCaps {
            contiguous_only: true,
            ..caps(2)
        };
        let memory = |exporter: &str, contiguous| ElementFacts {
            memory: Some(super::super::BufferMemory {
                exporter: exporter.into(),
                contiguous,
            }),
            ..dmabuf(Fourcc::Argb8888)
        };
        let full = FrameFacts {
            overlays_taken: 2,
            ..FRAME
        };
        let r = composited(explain(
            None,
            &RENDERING,
            &memory("system", false),
            &strict,
            &FRAME,
        ));
        assert_eq!(r, Reason::NotContiguous("system".into()));
        assert!(r.to_string().contains("contiguous"), "{r}");
        assert!(r.fixed_by_another_buffer());
        // Contiguous memory, or planes that do not care: the other reasons apply.
        let r = composited(explain(
            None,
            &RENDERING,
            &memory("reserved", true),
            &strict,
            &full,
        ));
        assert_eq!(r, Reason::NoPlaneFree);
        let r = composited(explain(
            None,
            &RENDERING,
            &memory("system", false),
            &caps(2),
            &full,
        ));
        assert_eq!(r, Reason::NoPlaneFree);
    }

    #[test]
    fn a_refusal_names_its_suspect_and_errno() {
        let unknown = PlaneCaps {
            scaling: None,
            ..caps(2)
        };
        let scaled = ElementFacts {
            scaled: true,
            refusal_errno: Some(22),
            ..dmabuf(Fourcc::Argb8888)
        };
        let r = composited(explain(None, &FAILED, &scaled, &unknown, &FRAME));
        assert_eq!(
            r,
            Reason::Refused {
                errno: Some(22),
                suspect: Some(Suspect::Scaling)
            }
        );
        let text = r.to_string();
        assert!(
            text.contains("scaling") && text.contains("EINVAL"),
            "{text}"
        );
        // Scaled but never refused: not blamed on scaling.
        let r = composited(explain(None, &RENDERING, &scaled, &unknown, &FRAME));
        assert_eq!(r, Reason::Unexplained);
        let crossing = ElementFacts {
            crosses_output: true,
            ..dmabuf(Fourcc::Argb8888)
        };
        let r = composited(explain(None, &FAILED, &crossing, &unknown, &FRAME));
        assert!(r.to_string().contains("edge"), "{r}");
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(22), "EINVAL");
        assert_eq!(errno_name(28), "ENOSPC");
        assert_eq!(errno_name(4242), "errno 4242");
    }
}
