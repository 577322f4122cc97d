//! [`PlacementTracker`]: where each surface went this frame — a plane, or composited and why —
//! what changed since the last frame, and which dma-buf feedback each surface should get.
//!
//! A compositor feeds it once per frame with what it already has: the `DrmCompositor`'s
//! [`RenderFrameResult`], the elements it rendered, and its surfaces. The tracker reads the plane
//! capabilities from the DRM surface itself, gathers each element's facts (buffer type, format,
//! memory, scaling, transform, alpha, occlusion, framebuffer failures), explains the placement
//! with [`explain`], and — when the kernel refused a plane and nothing else
//! explains it — finds the errno with a TEST_ONLY commit of its own (only when the placement
//! changes, never per frame). An element whose buffer, geometry and plane did not change since
//! the last frame is not looked at again.
//!
//! Feedback follows placement with hysteresis, as Weston does (2 s by default): a surface that
//! flips between a plane and composition does not make its client reallocate every frame.
//!
//! ## How to use
//!
//! ```no_run
//! # use smithay::backend::drm::{DrmSurface, DrmDeviceFd};
//! # use smithay::backend::renderer::element::surface::WaylandSurfaceRenderElement;
//! # use smithay::backend::renderer::pixman::PixmanRenderer;
//! # use smithay::desktop::Window;
//! # use smithay::output::Output;
//! # use smithay::wayland::dmabuf::DmabufFeedback;
//! # use wayheap::smithay::{HeapAllocator, PrimeExporter};
//! use wayheap::smithay::PlacementTracker;
//! # type Compositor = smithay::backend::drm::compositor::DrmCompositor<
//! #     HeapAllocator, PrimeExporter, (), DrmDeviceFd>;
//! # fn frame(surface: &DrmSurface, exporter: PrimeExporter, compositor: &mut Compositor,
//! #          renderer: &mut PixmanRenderer, output: &Output, windows: &[Window],
//! #          elements: &[WaylandSurfaceRenderElement<PixmanRenderer>],
//! #          default: &DmabufFeedback, scanout: &DmabufFeedback) {
//! // Once, next to the DrmCompositor:
//! let mut tracker = PlacementTracker::for_drm_surface(surface).with_exporter(exporter);
//!
//! // Every frame, after render_frame:
//! let flags = smithay::backend::drm::compositor::FrameFlags::DEFAULT;
//! let result = compositor.render_frame(renderer, elements, [0.0; 4], flags).unwrap();
//! let surfaces = windows.iter().flat_map(wayheap::smithay::window_surfaces);
//! for change in tracker.update(&result, elements, output, surfaces) {
//!     tracing::info!(surface = ?change.surface, placement = %change.now, "placement changed");
//! }
//! if tracker.feedback_changed() {
//!     for w in windows {
//!         w.send_dmabuf_feedback(output, |_, _| Some(output.clone()), |s, _| {
//!             tracker.select_feedback(s, default, scanout)
//!         });
//!     }
//! }
//! # }
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use drm::control::{AtomicCommitFlags, Device as _, atomic::AtomicModeReq, crtc, plane, property};
use smithay::backend::allocator::Buffer as _;
use smithay::backend::drm::compositor::{PrimaryPlaneElement, RenderFrameResult};
use smithay::backend::drm::{DrmDeviceFd, DrmSurface, Framebuffer};
use smithay::backend::renderer::element::{
    Element, Id, RenderElementPresentationState, RenderElementStates, RenderingReason,
};
use smithay::backend::renderer::utils::{CommitCounter, RendererSurfaceStateUserData};
use smithay::output::Output;
use smithay::reexports::wayland_server::Resource;
use smithay::reexports::wayland_server::backend::ObjectId;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::{Physical, Rectangle};
use smithay::wayland::compositor::with_states;
use smithay::wayland::dmabuf::DmabufFeedback;

use super::PrimeExporter;
use super::planes::{
    BufferKind, ElementFacts, FrameFacts, Placement, PlaneCaps, PlaneKind, explain,
};

/// How long a surface's wanted feedback must stay the same before it is sent (Weston: 2 s).
pub const FEEDBACK_HYSTERESIS: Duration = Duration::from_secs(2);

/// Which dma-buf feedback a surface should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackChoice {
    /// The renderer's formats only: the surface is composited, and another buffer would not
    /// change that.
    Default,
    /// With the scan-out tranches: the surface is on a plane, or would be with another buffer.
    Scanout,
}

impl FeedbackChoice {
    /// What a surface at `placement` should get.
    pub fn for_placement(placement: &Placement) -> FeedbackChoice {
        match placement {
            Placement::Plane(_) => FeedbackChoice::Scanout,
            Placement::Composited(r) if r.fixed_by_another_buffer() => FeedbackChoice::Scanout,
            Placement::Composited(_) | Placement::Hidden => FeedbackChoice::Default,
        }
    }
}

/// The feedback a surface was given, and the one it has wanted since when.
#[derive(Debug, Clone, Copy)]
struct Hysteresis {
    given: FeedbackChoice,
    wanted_since: Option<(FeedbackChoice, Instant)>,
}

impl Hysteresis {
    fn new(first: FeedbackChoice) -> Self {
        Hysteresis {
            given: first,
            wanted_since: None,
        }
    }

    /// Records what the surface wants now; true when the given feedback changes.
    fn step(&mut self, wanted: FeedbackChoice, now: Instant, hold: Duration) -> bool {
        if wanted == self.given {
            self.wanted_since = None;
            return false;
        }
        match self.wanted_since {
            Some((w, since)) if w == wanted => {
                if now.duration_since(since) >= hold {
                    self.given = wanted;
                    self.wanted_since = None;
                    return true;
                }
                false
            }
            _ => {
                self.wanted_since = Some((wanted, now));
                false
            }
        }
    }
}

/// One surface whose placement changed this frame.
#[derive(Debug, Clone)]
pub struct PlacementChange {
    /// The surface.
    pub surface: WlSurface,
    /// Its placement in the previous frame it was in (`None`: new).
    pub before: Option<Placement>,
    /// Its placement now.
    pub now: Placement,
}

/// What decides an element's placement, besides its facts: when none of it changed, neither did
/// the placement.
#[derive(Debug, Clone, PartialEq)]
struct ElementKey {
    commit: CommitCounter,
    geometry: Rectangle<i32, Physical>,
    transform: smithay::utils::Transform,
    /// `f32::to_bits` of its alpha.
    alpha: u32,
    output: Rectangle<i32, Physical>,
    plane: Option<PlaneKind>,
    state: StateKind,
    in_front: InFront,
    scanout_allowed: bool,
}

/// What was in front of an element when Smithay came to it (elements are assigned front to
/// back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct InFront {
    /// A composited element overlapping it.
    composited: bool,
    /// An element on an overlay plane overlapping it.
    on_overlay: bool,
    /// Overlay planes taken.
    overlays_taken: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateKind {
    ZeroCopy,
    Skipped,
    Rendering(Option<RenderingReason>),
}

impl From<&RenderElementPresentationState> for StateKind {
    fn from(s: &RenderElementPresentationState) -> Self {
        match s {
            RenderElementPresentationState::ZeroCopy => StateKind::ZeroCopy,
            RenderElementPresentationState::Skipped => StateKind::Skipped,
            RenderElementPresentationState::Rendering { reason } => StateKind::Rendering(*reason),
        }
    }
}

#[derive(Debug)]
struct Tracked {
    surface: WlSurface,
    placement: Placement,
    key: Option<ElementKey>,
    feedback: Hysteresis,
    /// The update that last saw it.
    seen: u64,
}

/// Where each surface is this frame, why, and which feedback it should get. See the
/// [module docs](crate::smithay::placement).
#[derive(Debug)]
pub struct PlacementTracker {
    caps: PlaneCaps,
    scanout_allowed: bool,
    exporter: Option<PrimeExporter>,
    /// How YUV surfaces are coloured, and the planes' colour.
    yuv: super::YuvColours,
    probe: Option<RefusalProbe>,
    hysteresis: Duration,
    surfaces: HashMap<ObjectId, Tracked>,
    changes: Vec<PlacementChange>,
    feedback_changed: bool,
    update: u64,
}

impl PlacementTracker {
    /// A tracker for planes with these capabilities (no refusal probe: see
    /// [`for_drm_surface`](Self::for_drm_surface)).
    pub fn new(caps: PlaneCaps) -> Self {
        PlacementTracker {
            caps,
            scanout_allowed: true,
            exporter: None,
            yuv: super::YuvColours::default(),
            probe: None,
            hysteresis: FEEDBACK_HYSTERESIS,
            surfaces: HashMap::new(),
            changes: Vec::new(),
            feedback_changed: false,
            update: 0,
        }
    }

    /// A tracker for an output without planes (headless, nested): everything is composited.
    pub fn without_planes() -> Self {
        Self::new(PlaneCaps::default())
    }

    /// A tracker for the planes of a `DrmCompositor`'s surface: their capabilities are read
    /// from it, and a refused plane's errno is found with a TEST_ONLY commit on its device.
    pub fn for_drm_surface(surface: &DrmSurface) -> Self {
        let mut tracker = Self::new(PlaneCaps::from_drm_surface(surface));
        tracker.probe = RefusalProbe::new(surface);
        tracker
    }

    /// The exporter given to the `DrmCompositor`: its framebuffer failures become reasons,
    /// its contiguity rule ([`PrimeExporter::contiguous_only`]) joins the capabilities, and the
    /// refusal probe uses its framebuffers.
    pub fn with_exporter(mut self, exporter: PrimeExporter) -> Self {
        self.caps.contiguous_only = exporter.requires_contiguous();
        self.exporter = Some(exporter);
        self
    }

    /// Whether frames allow scan-out (the compositor's `FrameFlags`): with `false`, every
    /// surface is composited with [`Reason::ScanoutDisabled`](super::Reason::ScanoutDisabled).
    pub fn set_scanout_allowed(&mut self, allowed: bool) {
        self.scanout_allowed = allowed;
    }

    /// How YUV surfaces are coloured and which colour the planes convert with now: a YUV
    /// surface of another colour is composited with
    /// [`Reason::ColourMismatch`](super::Reason::ColourMismatch).
    pub fn set_yuv_colours(&mut self, yuv: super::YuvColours) {
        self.yuv = yuv;
    }

    /// How long a surface's wanted feedback must hold before it is given (default
    /// [`FEEDBACK_HYSTERESIS`]).
    pub fn set_feedback_hysteresis(&mut self, hold: Duration) {
        self.hysteresis = hold;
    }

    /// What the planes can do.
    pub fn caps(&self) -> &PlaneCaps {
        &self.caps
    }

    /// Feeds one `DrmCompositor` frame: the result of `render_frame`, the elements it was
    /// given, the output, and the surfaces to explain (those of the windows, the cursor, ...).
    /// Returns the surfaces whose placement changed.
    pub fn update<B, F, E>(
        &mut self,
        frame: &RenderFrameResult<'_, B, F, E>,
        elements: &[E],
        output: &Output,
        surfaces: impl IntoIterator<Item = WlSurface>,
    ) -> &[PlacementChange]
    where
        B: smithay::backend::allocator::Buffer,
        F: Framebuffer,
        E: Element,
    {
        let mut planes: Vec<(&Id, PlaneKind)> = Vec::with_capacity(4);
        if let PrimaryPlaneElement::Element(e) = &frame.primary_element {
            planes.push((e.id(), PlaneKind::Primary));
        }
        planes.extend(
            frame
                .overlay_elements
                .iter()
                .map(|e| (e.id(), PlaneKind::Overlay)),
        );
        if let Some(e) = frame.cursor_element {
            planes.push((e.id(), PlaneKind::Cursor));
        }
        let plane_of = |id: &Id| planes.iter().find(|(p, _)| *p == id).map(|(_, k)| *k);
        self.track(
            Instant::now(),
            &frame.states,
            elements,
            output,
            surfaces,
            &plane_of,
        );
        &self.changes
    }

    /// Feeds a frame of an output without planes (headless, nested): the render states of its
    /// damage tracker and the surfaces to explain.
    pub fn update_composited(
        &mut self,
        states: &RenderElementStates,
        output: &Output,
        surfaces: impl IntoIterator<Item = WlSurface>,
    ) -> &[PlacementChange] {
        self.track::<NoElement>(Instant::now(), states, &[], output, surfaces, &|_| None);
        &self.changes
    }

    /// The surfaces whose placement changed in the last update.
    pub fn changes(&self) -> &[PlacementChange] {
        &self.changes
    }

    /// True when the last update changed the feedback some surface should get (or a surface
    /// appeared): time to send feedback with [`select_feedback`](Self::select_feedback).
    pub fn feedback_changed(&self) -> bool {
        self.feedback_changed
    }

    /// A surface's placement in the last frame it was in.
    pub fn placement(&self, surface: &WlSurface) -> Option<&Placement> {
        self.surfaces.get(&surface.id()).map(|t| &t.placement)
    }

    /// Every tracked surface with its placement.
    pub fn iter(&self) -> impl Iterator<Item = (&WlSurface, &Placement)> {
        self.surfaces.values().map(|t| (&t.surface, &t.placement))
    }

    /// The feedback a surface should have now (after hysteresis).
    pub fn feedback(&self, surface: &WlSurface) -> FeedbackChoice {
        self.surfaces
            .get(&surface.id())
            .map_or(FeedbackChoice::Default, |t| t.feedback.given)
    }

    /// `default` or `scanout`, as [`feedback`](Self::feedback) says: the closure for Smithay's
    /// `send_dmabuf_feedback`.
    pub fn select_feedback<'a>(
        &self,
        surface: &WlSurface,
        default: &'a DmabufFeedback,
        scanout: &'a DmabufFeedback,
    ) -> &'a DmabufFeedback {
        match self.feedback(surface) {
            FeedbackChoice::Default => default,
            FeedbackChoice::Scanout => scanout,
        }
    }

    fn track<E: Element>(
        &mut self,
        now: Instant,
        states: &RenderElementStates,
        elements: &[E],
        output: &Output,
        surfaces: impl IntoIterator<Item = WlSurface>,
        plane_of: &dyn Fn(&Id) -> Option<PlaneKind>,
    ) {
        self.update += 1;
        self.changes.clear();
        self.feedback_changed = false;
        let scale = output.current_scale().fractional_scale().into();
        let output_rect: Rectangle<i32, Physical> = output
            .current_mode()
            .map(|m| Rectangle::from_size(m.size))
            .unwrap_or_default();

        // Front to back, as Smithay assigns planes: what is in front of each element when its
        // turn comes (composited content, elements on overlay planes, overlays taken).
        let mut composited_in_front: Vec<Rectangle<i32, Physical>> = Vec::new();
        let mut on_overlays_in_front: Vec<Rectangle<i32, Physical>> = Vec::new();
        let mut element_info: HashMap<&Id, (&E, InFront)> = HashMap::with_capacity(elements.len());
        for e in elements {
            let geometry = e.geometry(scale);
            let in_front = InFront {
                composited: composited_in_front.iter().any(|r| r.overlaps(geometry)),
                on_overlay: on_overlays_in_front.iter().any(|r| r.overlaps(geometry)),
                overlays_taken: on_overlays_in_front.len(),
            };
            element_info.entry(e.id()).or_insert((e, in_front));
            match plane_of(e.id()) {
                Some(PlaneKind::Overlay) => on_overlays_in_front.push(geometry),
                Some(_) => {}
                None => {
                    if matches!(
                        states
                            .element_render_state(e.id().clone())
                            .map(|s| s.presentation_state),
                        Some(RenderElementPresentationState::Rendering { .. })
                    ) {
                        composited_in_front.push(geometry);
                    }
                }
            }
        }

        for surface in surfaces {
            let id = Id::from_wayland_resource(&surface);
            let Some(state) = states.element_render_state(id.clone()) else {
                continue;
            };
            let plane = plane_of(&id);
            let element = element_info.get(&id).copied();
            let key = element.map(|(e, in_front)| ElementKey {
                commit: e.current_commit(),
                geometry: e.geometry(scale),
                transform: e.transform(),
                alpha: e.alpha().to_bits(),
                output: output_rect,
                plane,
                state: StateKind::from(&state.presentation_state),
                in_front,
                scanout_allowed: self.scanout_allowed,
            });
            let frame = FrameFacts {
                scanout_allowed: self.scanout_allowed,
                overlays_taken: element.map_or(0, |(_, f)| f.overlays_taken),
            };
            let object = surface.id();
            if let Some(t) = self.surfaces.get_mut(&object)
                && key.is_some()
                && t.key == key
            {
                // Nothing that decides its placement changed.
                t.seen = self.update;
                let wanted = FeedbackChoice::for_placement(&t.placement);
                self.feedback_changed |= t.feedback.step(wanted, now, self.hysteresis);
                continue;
            }
            let mut facts = self.surface_facts(&surface);
            if let Some((e, in_front)) = element {
                facts.under_composited = in_front.composited;
                facts.under_overlay = in_front.on_overlay;
                element_facts(e, scale, output_rect, &mut facts);
            }
            let mut placement =
                explain(plane, &state.presentation_state, &facts, &self.caps, &frame);
            if let Placement::Composited(super::Reason::Refused { errno, .. }) = &mut placement
                && errno.is_none()
            {
                let previous = self.surfaces.get(&object).map(|t| &t.placement);
                *errno = match previous {
                    // Already probed while it stays refused: keep the answer.
                    Some(Placement::Composited(super::Reason::Refused { errno: e, .. })) => *e,
                    _ => self.probe_refusal(&surface, element.map(|(e, _)| e), scale),
                };
            }
            let wanted = FeedbackChoice::for_placement(&placement);
            match self.surfaces.get_mut(&object) {
                Some(t) => {
                    if t.placement != placement {
                        self.changes.push(PlacementChange {
                            surface: surface.clone(),
                            before: Some(t.placement.clone()),
                            now: placement.clone(),
                        });
                    }
                    t.placement = placement;
                    t.key = key;
                    t.seen = self.update;
                    self.feedback_changed |= t.feedback.step(wanted, now, self.hysteresis);
                }
                None => {
                    self.changes.push(PlacementChange {
                        surface: surface.clone(),
                        before: None,
                        now: placement.clone(),
                    });
                    self.feedback_changed = true;
                    self.surfaces.insert(
                        object,
                        Tracked {
                            surface,
                            placement,
                            key,
                            feedback: Hysteresis::new(wanted),
                            seen: self.update,
                        },
                    );
                }
            }
        }
        let update = self.update;
        self.surfaces
            .retain(|_, t| t.seen == update && t.surface.is_alive());
    }

    /// The facts a surface's current buffer gives.
    fn surface_facts(&self, surface: &WlSurface) -> ElementFacts {
        let mut facts = ElementFacts::default();
        let Some(buffer) = current_buffer(surface) else {
            return facts;
        };
        if smithay::wayland::single_pixel_buffer::get_single_pixel_buffer(&buffer).is_ok() {
            facts.buffer = BufferKind::SinglePixel;
            return facts;
        }
        let dmabuf = match smithay::wayland::dmabuf::get_dmabuf(&buffer) {
            Ok(dmabuf) => dmabuf.clone(),
            // shm: scanned out from its pool's udmabuf export, or composited with the reason.
            Err(_) => match self.exporter.as_ref().and_then(|e| e.shm_scanout()) {
                None => return facts,
                Some(shm) => match shm.dmabuf(&buffer) {
                    Ok(dmabuf) => dmabuf,
                    Err(refusal) => {
                        facts.shm_refusal = refusal;
                        return facts;
                    }
                },
            },
        };
        facts.buffer = BufferKind::DmaBuf(dmabuf.format());
        if crate::yuv::YuvFormat::of(crate::layout::Fourcc(dmabuf.format().code as u32)).is_some() {
            let colour = self.yuv.of(surface);
            facts.colour_mismatch = self
                .yuv
                .planes
                .filter(|p| *p != colour)
                .map(|p| (colour, p));
        }
        if let Some(exporter) = &self.exporter {
            if self.caps.contiguous_only {
                // Only where the planes care about the memory; read once per buffer.
                facts.memory = exporter.memory_of(&dmabuf);
            }
            facts.framebuffer_error = exporter.failure_of(&dmabuf);
        }
        facts
    }

    /// The errno the kernel gives for this surface's buffer alone on a free overlay plane.
    fn probe_refusal<E: Element>(
        &self,
        surface: &WlSurface,
        element: Option<&E>,
        scale: smithay::utils::Scale<f64>,
    ) -> Option<i32> {
        let (probe, exporter, element) = (self.probe.as_ref()?, self.exporter.as_ref()?, element?);
        let buffer = current_buffer(surface)?;
        let dmabuf = exporter.client_dmabuf(&buffer)?;
        if element.transform() != smithay::utils::Transform::Normal {
            // The probe sets no rotation: its answer would be about something else.
            return None;
        }
        let fb = exporter.framebuffer_for(&dmabuf, false).ok()?;
        let format = dmabuf.format();
        let errno = probe.errno(
            &format,
            *fb.as_ref(),
            element.src(),
            element.geometry(scale),
        );
        tracing::debug!(?errno, "refusal probe");
        errno
    }
}

/// The buffer a surface shows (its renderer state's), if any.
pub(crate) fn current_buffer(
    surface: &WlSurface,
) -> Option<smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer> {
    with_states(surface, |states| {
        let data = states.data_map.get::<RendererSurfaceStateUserData>()?;
        let guard = data.lock().unwrap_or_else(|e| e.into_inner());
        guard.buffer().map(|b| (**b).clone())
    })
}

/// Facts that come from the element as drawn: scaling, transform, alpha, the output's edge.
fn element_facts<E: Element>(
    e: &E,
    scale: smithay::utils::Scale<f64>,
    output: Rectangle<i32, Physical>,
    facts: &mut ElementFacts,
) {
    let geometry = e.geometry(scale);
    let transform = e.transform();
    let src = transform.transform_size(e.src().size);
    facts.scaled = (src.w - f64::from(geometry.size.w)).abs() > 0.5
        || (src.h - f64::from(geometry.size.h)).abs() > 0.5;
    facts.transform = transform;
    facts.translucent = e.alpha() < 1.0;
    facts.crosses_output = !output.is_empty() && !output.contains_rect(geometry);
    facts.cursor = e.kind() == smithay::backend::renderer::element::Kind::Cursor;
}

/// Every surface of a window (its toplevel and subsurfaces, front to back as Smithay walks
/// them), for [`PlacementTracker::update`].
pub fn window_surfaces(window: &smithay::desktop::Window) -> Vec<WlSurface> {
    let mut out = Vec::new();
    window.with_surfaces(|s, _| out.push(s.clone()));
    out
}

/// A TEST_ONLY commit of one buffer on a free overlay plane, to learn the errno the kernel
/// refuses it with (Smithay's `DrmCompositor` keeps that errno to itself).
#[derive(Debug)]
struct RefusalProbe {
    device: DrmDeviceFd,
    crtc: crtc::Handle,
    /// Overlay planes above the primary plane: their formats and properties.
    overlays: Vec<ProbePlane>,
}

#[derive(Debug)]
struct ProbePlane {
    handle: plane::Handle,
    formats: smithay::backend::allocator::format::FormatSet,
    props: HashMap<String, property::Handle>,
}

impl RefusalProbe {
    fn new(surface: &DrmSurface) -> Option<Self> {
        if surface.is_legacy() {
            // No atomic commits: nothing to probe with.
            return None;
        }
        let device = surface.device_fd().clone();
        let primary_zpos = surface.plane_info().zpos.unwrap_or_default();
        let overlays = surface
            .planes()
            .overlay
            .iter()
            // Underlays take only opaque elements over a hole: not what is probed.
            .filter(|p| p.zpos.unwrap_or_default() >= primary_zpos)
            .filter_map(|p| {
                let props = device.get_properties(p.handle).ok()?;
                let named = props.as_hashmap(&device).ok()?;
                let props = named.into_iter().map(|(k, v)| (k, v.handle())).collect();
                Some(ProbePlane {
                    handle: p.handle,
                    formats: p.formats.clone(),
                    props,
                })
            })
            .collect::<Vec<_>>();
        (!overlays.is_empty()).then(|| RefusalProbe {
            device,
            crtc: surface.crtc(),
            overlays,
        })
    }

    /// The errno of a TEST_ONLY commit putting `fb` (source `src`, on screen at `dst`) on the
    /// first overlay plane that lists `format` and that no CRTC uses, on top of the state the
    /// CRTC has now. `None` when no such plane is free, a property is missing, or the kernel
    /// accepts it there (then the refusal was of the combination Smithay tested).
    fn errno(
        &self,
        format: &smithay::backend::allocator::Format,
        fb: drm::control::framebuffer::Handle,
        src: Rectangle<f64, smithay::utils::Buffer>,
        dst: Rectangle<i32, Physical>,
    ) -> Option<i32> {
        let candidate = self.overlays.iter().find(|p| {
            p.formats.contains(format)
                && self
                    .device
                    .get_plane(p.handle)
                    .is_ok_and(|info| info.crtc().is_none())
        })?;
        let (plane, props) = (&candidate.handle, &candidate.props);
        let prop = |name: &str| props.get(name).copied();
        let fixed = |v: f64| property::Value::UnsignedRange((v * 65536.0).round().max(0.0) as u64);
        let mut req = AtomicModeReq::new();
        let values = [
            ("FB_ID", property::Value::Framebuffer(Some(fb))),
            ("CRTC_ID", property::Value::CRTC(Some(self.crtc))),
            ("SRC_X", fixed(src.loc.x)),
            ("SRC_Y", fixed(src.loc.y)),
            ("SRC_W", fixed(src.size.w)),
            ("SRC_H", fixed(src.size.h)),
            ("CRTC_X", property::Value::SignedRange(i64::from(dst.loc.x))),
            ("CRTC_Y", property::Value::SignedRange(i64::from(dst.loc.y))),
            (
                "CRTC_W",
                property::Value::UnsignedRange(dst.size.w.max(0) as u64),
            ),
            (
                "CRTC_H",
                property::Value::UnsignedRange(dst.size.h.max(0) as u64),
            ),
        ];
        for (name, value) in values {
            req.add_property(*plane, prop(name)?, value);
        }
        match self.device.atomic_commit(AtomicCommitFlags::TEST_ONLY, req) {
            Ok(()) => None,
            Err(e) => e.raw_os_error(),
        }
    }
}

/// The element type of frames without elements ([`PlacementTracker::update_composited`]).
struct NoElement;

impl Element for NoElement {
    fn id(&self) -> &Id {
        unreachable!("no element of this type exists")
    }
    fn current_commit(&self) -> CommitCounter {
        unreachable!("no element of this type exists")
    }
    fn src(&self) -> Rectangle<f64, smithay::utils::Buffer> {
        unreachable!("no element of this type exists")
    }
    fn geometry(&self, _: smithay::utils::Scale<f64>) -> Rectangle<i32, Physical> {
        unreachable!("no element of this type exists")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_changes_only_after_the_wanted_one_held() {
        let t0 = Instant::now();
        let hold = Duration::from_secs(2);
        let mut h = Hysteresis::new(FeedbackChoice::Default);
        // A surface on a plane for a moment, composited again: nothing sent.
        assert!(!h.step(FeedbackChoice::Scanout, t0, hold));
        assert!(!h.step(FeedbackChoice::Scanout, t0 + Duration::from_secs(1), hold));
        assert!(!h.step(
            FeedbackChoice::Default,
            t0 + Duration::from_millis(1500),
            hold
        ));
        assert!(!h.step(
            FeedbackChoice::Scanout,
            t0 + Duration::from_millis(2500),
            hold
        ));
        assert_eq!(h.given, FeedbackChoice::Default);
        // On the plane for 2 s: now it gets the scan-out feedback, once.
        assert!(h.step(
            FeedbackChoice::Scanout,
            t0 + Duration::from_millis(4500),
            hold
        ));
        assert_eq!(h.given, FeedbackChoice::Scanout);
        assert!(!h.step(FeedbackChoice::Scanout, t0 + Duration::from_secs(9), hold));
    }

    #[test]
    fn flapping_every_frame_never_changes_the_feedback() {
        let t0 = Instant::now();
        let mut h = Hysteresis::new(FeedbackChoice::Scanout);
        for frame in 0..600u64 {
            let wanted = if frame % 2 == 0 {
                FeedbackChoice::Default
            } else {
                FeedbackChoice::Scanout
            };
            let now = t0 + Duration::from_millis(16 * frame);
            assert!(!h.step(wanted, now, FEEDBACK_HYSTERESIS), "frame {frame}");
        }
    }

    #[test]
    fn feedback_for_placements() {
        use super::super::{Reason, planes::PlaneKind};
        use smithay::backend::allocator::{Format, Fourcc, Modifier};
        assert_eq!(
            FeedbackChoice::for_placement(&Placement::Plane(PlaneKind::Overlay)),
            FeedbackChoice::Scanout
        );
        let nv12 = Format {
            code: Fourcc::Nv12,
            modifier: Modifier::Linear,
        };
        assert_eq!(
            FeedbackChoice::for_placement(&Placement::Composited(Reason::FormatUnsupported(nv12))),
            FeedbackChoice::Scanout
        );
        assert_eq!(
            FeedbackChoice::for_placement(&Placement::Composited(Reason::NoPlaneFree)),
            FeedbackChoice::Default
        );
        assert_eq!(
            FeedbackChoice::for_placement(&Placement::Hidden),
            FeedbackChoice::Default
        );
    }
}
