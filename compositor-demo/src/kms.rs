//! The KMS backend: a DRM device opened through a libseat session, Smithay's `DrmCompositor` with
//! wayheap's PRIME exporter (client dma-bufs on planes) and heap-backed swapchain (no GBM for
//! buffers), GLES on the device's EGL display when there is one (pixman otherwise) for whatever
//! must be composited, and the writeback connector for screenshots.

use std::path::{Path, PathBuf};
use std::time::Duration;

use drm::control::{Device as _, connector, crtc};
use smithay::backend::allocator::format::FormatSet;
use smithay::backend::allocator::gbm::GbmDevice;
use smithay::backend::allocator::Fourcc;
use smithay::backend::drm::compositor::{DrmCompositor, FrameFlags};
use smithay::backend::drm::{DrmDevice, DrmDeviceFd, DrmEvent, DrmNode};
use smithay::backend::renderer::element::surface::WaylandSurfaceRenderElement;
use smithay::backend::renderer::element::{Kind, RenderElementStates};
use smithay::backend::allocator::dmabuf::Dmabuf;
use smithay::backend::renderer::gles::GlesRenderer;
use smithay::backend::renderer::pixman::PixmanRenderer;
use smithay::backend::renderer::{Bind, ImportDma, ImportMem, Texture};
use smithay::backend::session::libseat::LibSeatSession;
use smithay::backend::session::{Event as SessionEvent, Session};
use smithay::desktop::utils::{
    OutputPresentationFeedback, surface_presentation_feedback_flags_from_states, surface_primary_scanout_output,
    update_surface_primary_scanout_output,
};
use smithay::output::{Mode as OutputMode, Output, PhysicalProperties, Subpixel};
use smithay::reexports::calloop::LoopHandle;
use smithay::reexports::rustix::fs::OFlags;
use smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_feedback_v1::TrancheFlags;
use smithay::reexports::wayland_protocols::wp::presentation_time::server::wp_presentation_feedback;
use smithay::reexports::wayland_server::DisplayHandle;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::{DeviceFd, IsAlive};
use smithay::wayland::dmabuf::{DmabufFeedbackBuilder, DmabufGlobal, DmabufState};
use wayheap::heap::HeapDir;
use wayheap::kms::writeback::WritebackConnector;
use wayheap::policy::{Allocator as PolicyAllocator, Constraints, Policy};
use wayheap::smithay::{
    HeapAllocator, PlaneCaps, PlaneColours, PlacementTracker, PrimeExporter, ShmScanout,
    SurfaceElement, YuvColours, YuvComposition, space_elements, window_surfaces,
};

use crate::headless::CLEAR;
use crate::report::RendererInfo;
use crate::state::App;
use crate::{Backend, Demo};
use wayheap::smithay::renderer::{self, GlesOutcome, RendererChoice};

smithay::backend::renderer::element::render_elements! {
    /// What a KMS frame is made of: the client's cursor surface (a cursor-plane candidate) and
    /// a drag's icon in front of the windows (YUV dma-bufs included: wayheap's elements need
    /// no renderer import).
    OutputElements<R> where R: YuvComposition + ImportMem;
    /// A client's surface drawn at the pointer: its cursor, or a drag's icon.
    PointerSurface=WaylandSurfaceRenderElement<R>,
    NamedCursor=smithay::backend::renderer::element::memory::MemoryRenderBufferRenderElement<R>,
    Window=SurfaceElement<R>,
}

/// What composes the primary plane's buffer when not everything is on a plane.
enum Composer {
    Gles(Box<GlesRenderer>),
    Pixman(PixmanRenderer),
}

type Compositor =
    DrmCompositor<HeapAllocator, PrimeExporter, Option<OutputPresentationFeedback>, DrmDeviceFd>;

/// The first DRM card (or `wanted`) if one exists.
pub fn find_card(wanted: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = wanted {
        return p.exists().then(|| p.to_owned());
    }
    let mut cards: Vec<PathBuf> = std::fs::read_dir("/dev/dri")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("card"))
        })
        .collect();
    cards.sort();
    cards.into_iter().next()
}

/// KMS output.
pub(crate) struct Kms {
    _session: LibSeatSession,
    /// The seat's input devices (suspended while the session is paused).
    libinput: Option<smithay::reexports::input::Libinput>,
    drm: DrmDevice,
    fd: DrmDeviceFd,
    node: DrmNode,
    compositor: Compositor,
    composer: Composer,
    pub info: RendererInfo,
    exporter: PrimeExporter,
    crtc: crtc::Handle,
    /// The mode's refresh interval, for presentation feedback.
    refresh: Duration,
    size: (u16, u16),
    /// The writeback connector, for screenshots.
    writeback: Option<WritebackConnector>,
    pending_flip: bool,
    active: bool,
    /// The planes' YCbCr colour, following the front-most YUV surface.
    plane_colours: PlaneColours,
    /// (default, scan-out) dma-buf feedback: surfaces on a plane, or that could be, get the
    /// scan-out one.
    feedback: Option<(
        smithay::wayland::dmabuf::DmabufFeedback,
        smithay::wayland::dmabuf::DmabufFeedback,
    )>,
}

/// "what: error" with the error's whole `source()` chain.
fn err(what: &str) -> impl Fn(&dyn std::error::Error) -> String + '_ {
    move |e| format!("{what}: {}", wayheap::error::chain(e))
}

impl Kms {
    pub fn new(
        device: Option<&Path>,
        handle: &LoopHandle<'static, Demo>,
        contiguous_only: bool,
        want_mode: Option<(i32, i32)>,
        choice: RendererChoice,
        shm: Option<ShmScanout>,
    ) -> Result<(Kms, Output), String> {
        let (mut session, notifier) = LibSeatSession::new().map_err(|e| {
            format!(
                "no libseat session ({e}): run on a console with seatd or logind, or as root under \
                 `seatd-launch -- compositor-demo ...`"
            )
        })?;
        let path =
            find_card(device).ok_or("no DRM device (/dev/dri/card*); use --backend headless")?;
        let owned = session
            .open(
                &path,
                OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            )
            .map_err(|e| format!("opening {} through the session: {e}", path.display()))?;
        let fd = DrmDeviceFd::new(DeviceFd::from(owned));
        let node =
            DrmNode::from_file(&fd).map_err(|e| format!("DRM node of {}: {e}", path.display()))?;
        let (mut drm, drm_events) =
            DrmDevice::new(fd.clone(), true).map_err(|e| err("DRM device")(&e))?;

        // Writeback connectors are hidden unless asked for; screenshots need them.
        if let Err(e) = drm::Device::set_client_capability(
            &fd,
            drm::ClientCapability::WritebackConnectors,
            true,
        ) {
            tracing::info!(%e, "no writeback connectors: KMS screenshots unavailable");
        }
        // The first connected, non-writeback connector and its preferred mode.
        let res = fd
            .resource_handles()
            .map_err(|e| err("DRM resources")(&e))?;
        let mut writeback = None;
        let mut chosen = None;
        for &c in res.connectors() {
            let info = fd
                .get_connector(c, true)
                .map_err(|e| err("connector")(&e))?;
            if info.interface() == connector::Interface::Writeback {
                match WritebackConnector::new(&fd, c) {
                    Ok(wb) => writeback = Some(wb),
                    Err(e) => tracing::info!(
                        e = %wayheap::error::chain(&e),
                        "writeback connector unusable: KMS screenshots unavailable"
                    ),
                }
                continue;
            }
            if chosen.is_none() && info.state() == connector::State::Connected {
                chosen = Some(info);
            }
        }
        let conn = chosen.ok_or("no connected display connector")?;
        let mode = match want_mode {
            // The asked-for size at its highest refresh rate.
            Some((w, h)) => conn
                .modes()
                .iter()
                .filter(|m| m.size() == (w as u16, h as u16))
                .max_by_key(|m| m.vrefresh())
                .copied()
                .ok_or_else(|| {
                    let mut sizes: Vec<String> = conn
                        .modes()
                        .iter()
                        .map(|m| format!("{}x{}", m.size().0, m.size().1))
                        .collect();
                    sizes.dedup();
                    format!("--mode {w}x{h}: the connector offers {}", sizes.join(" "))
                })?,
            None => conn
                .modes()
                .iter()
                .find(|m| {
                    m.mode_type()
                        .contains(drm::control::ModeTypeFlags::PREFERRED)
                })
                .or_else(|| conn.modes().first())
                .copied()
                .ok_or("the connector has no mode")?,
        };
        let crtc = conn
            .encoders()
            .iter()
            .filter_map(|e| fd.get_encoder(*e).ok())
            .flat_map(|e| res.filter_crtcs(e.possible_crtcs()))
            .next()
            .ok_or("no CRTC for the connector")?;
        let surface = drm
            .create_surface(crtc, mode, &[conn.handle()])
            .map_err(|e| err("DRM surface")(&e))?;

        let planes = surface.planes().clone();
        // YUV on a plane and YUV converted on the CPU must look the same: the planes convert
        // with the colour the converter uses (their defaults are the driver's), following the
        // front-most YUV surface's colour representation.
        let plane_handles: Vec<_> = planes
            .primary
            .iter()
            .chain(&planes.overlay)
            .map(|p| p.handle)
            .collect();
        let plane_colours =
            PlaneColours::new(fd.clone(), plane_handles, wayheap::yuv::Colour::default());
        tracing::info!(
            device = %path.display(),
            connector = ?conn.interface(),
            mode = ?mode.size(),
            overlays = planes.overlay.len(),
            cursor = planes.cursor.len(),
            writeback = writeback.is_some(),
            "KMS output"
        );

        let (w, h) = mode.size();
        let output = Output::new(
            format!("{:?}-{}", conn.interface(), conn.interface_id()),
            PhysicalProperties {
                size: conn
                    .size()
                    .map(|(w, h)| (w as i32, h as i32).into())
                    .unwrap_or_default(),
                subpixel: Subpixel::Unknown,
                make: "wayheap".into(),
                model: "kms".into(),
            },
        );
        let out_mode = OutputMode::from(mode);
        // mHz; a mode without a clock gets 60 Hz rather than a division by zero.
        let refresh = Duration::from_nanos(1_000_000_000_000 / out_mode.refresh.max(1) as u64);
        output.change_current_state(Some(out_mode), None, None, Some((0, 0).into()));
        output.set_preferred(out_mode);

        // GLES on the device's own EGL display (it imports what the device scans out), else
        // pixman; the GBM device that comes with GLES also serves the cursor plane.
        let gles = choice
            .attempt(|| {
                let (mut renderer, device) = renderer::gles_on_device(fd.clone())?;
                choice.check_dmabuf_import(&mut renderer)?;
                Ok((renderer, device))
            })
            .map_err(|e| format!("--renderer gles: {e}"))?;
        let (composer, info, gbm) = match gles {
            GlesOutcome::Gles((mut r, device)) => {
                let info = RendererInfo::gles(&mut r);
                (Composer::Gles(Box::new(r)), info, Some(device))
            }
            GlesOutcome::Pixman { why } => (
                Composer::Pixman(PixmanRenderer::new().map_err(|e| err("pixman")(&e))?),
                RendererInfo::pixman(why),
                None,
            ),
        };
        tracing::info!(renderer = info.name, detail = %info.detail, why = %info.why, "composition");
        let renderer_formats = match &composer {
            Composer::Gles(r) => Bind::<Dmabuf>::supported_formats(&**r),
            Composer::Pixman(r) => Bind::<Dmabuf>::supported_formats(r),
        }
        .ok_or("the renderer renders into no dma-buf format")?;
        let policy = PolicyAllocator::new(
            Policy::from_env().map_err(|e| err("policy")(&e))?,
            HeapDir::default(),
        );
        let allocator = HeapAllocator::new(policy, "scanout", Constraints::default());
        let mut exporter = PrimeExporter::new(fd.clone()).contiguous_only(contiguous_only);
        if let Some(shm) = shm {
            exporter = exporter.with_shm_scanout(shm);
        }
        // GBM for the cursor plane (Smithay copies cursor images into a GBM buffer) and, with
        // GLES, for the EGL display; the swapchain and client buffers never need it.
        let gbm = match gbm {
            Some(g) => Some(g),
            None => match GbmDevice::new(fd.clone()) {
                Ok(g) => Some(g),
                Err(e) => {
                    tracing::info!(%e, "no GBM device: the cursor plane stays unused");
                    None
                }
            },
        };
        let compositor = Compositor::new(
            &output,
            surface,
            None,
            allocator,
            exporter.clone(),
            [Fourcc::Xrgb8888, Fourcc::Argb8888],
            renderer_formats,
            drm.cursor_size(),
            gbm,
        )
        .map_err(|e| err("DrmCompositor")(&e))?;

        handle
            .insert_source(drm_events, |event, meta, demo| match event {
                DrmEvent::VBlank(_) => {
                    let Backend::Kms(k) = &mut demo.backend else {
                        return;
                    };
                    tracing::debug!("vblank");
                    k.pending_flip = false;
                    let submitted =
                        crate::profile::section("vblank", || k.compositor.frame_submitted());
                    match submitted {
                        Ok(Some(Some(mut feedback))) => {
                            let (time, flags) = match meta.as_ref().map(|m| &m.time) {
                                Some(smithay::backend::drm::DrmEventTime::Monotonic(t)) => (
                                    *t,
                                    wp_presentation_feedback::Kind::Vsync
                                        | wp_presentation_feedback::Kind::HwClock
                                        | wp_presentation_feedback::Kind::HwCompletion,
                                ),
                                _ => (
                                    demo.app.clock.now().into(),
                                    wp_presentation_feedback::Kind::Vsync,
                                ),
                            };
                            let seq = meta.as_ref().map_or(0, |m| m.sequence as u64);
                            feedback.presented::<Duration, smithay::utils::Monotonic>(
                                time,
                                smithay::wayland::presentation::Refresh::fixed(k.refresh),
                                seq,
                                flags,
                            );
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(%e, "frame_submitted"),
                    }
                }
                DrmEvent::Error(e) => tracing::error!(%e, "DRM error"),
            })
            .map_err(|e| err("DRM event source")(&e))?;

        handle
            .insert_source(notifier, |event, _, demo| {
                let Backend::Kms(k) = &mut demo.backend else {
                    return;
                };
                match event {
                    SessionEvent::PauseSession => {
                        tracing::info!("session paused (VT switch): releasing DRM master");
                        k.active = false;
                        if let Some(l) = &mut k.libinput {
                            l.suspend();
                        }
                        k.drm.pause();
                    }
                    SessionEvent::ActivateSession => {
                        tracing::info!("session active again: taking DRM master back");
                        if let Some(l) = &mut k.libinput
                            && l.resume().is_err()
                        {
                            tracing::error!("libinput did not resume");
                        }
                        if let Err(e) = k.drm.activate(false) {
                            tracing::error!(%e, "DRM activate");
                        }
                        if let Err(e) = k.compositor.reset_state() {
                            tracing::error!(%e, "resetting the DRM state");
                        }
                        k.active = true;
                        k.pending_flip = false;
                        demo.app.dirty = true;
                    }
                }
            })
            .map_err(|e| err("session source")(&e))?;

        // Without input devices (or udev) the compositor still shows its clients.
        let libinput = crate::input::start(handle, &session)
            .inspect_err(|e| tracing::warn!(%e, "no input devices"))
            .ok();
        let kms = Kms {
            _session: session,
            libinput,
            drm,
            fd,
            node,
            compositor,
            composer,
            info,
            exporter,
            crtc,
            refresh,
            size: (w, h),
            writeback,
            pending_flip: false,
            active: true,
            feedback: None,
            plane_colours,
        };
        Ok((kms, output))
    }

    /// What clients may send: what the renderer can compose (it must be able to, when no plane
    /// takes a buffer); with pixman, also the YUV formats wayheap's CPU converter reads (on a
    /// plane where one lists them, converted otherwise).
    pub fn renderer_dmabuf_formats(&self) -> FormatSet {
        match &self.composer {
            Composer::Gles(r) => renderer::advertised_formats(&r.dmabuf_formats()),
            Composer::Pixman(r) => {
                let yuv = wayheap::smithay::cpu_converted_formats();
                r.dmabuf_formats()
                    .iter()
                    .chain(yuv.iter())
                    .copied()
                    .collect()
            }
        }
    }

    /// The linux-dmabuf global with feedback: a scan-out tranche per overlay-capable format
    /// (from the planes' IN_FORMATS), then everything pixman composes.
    pub fn create_dmabuf_global(
        &mut self,
        state: &mut DmabufState,
        dh: &DisplayHandle,
        formats: FormatSet,
    ) -> Result<DmabufGlobal, String> {
        let dev = self.node.dev_id();
        let default = DmabufFeedbackBuilder::new(dev, formats.clone())
            .build()
            .map_err(|e| err("dmabuf feedback")(&e))?;
        // One scan-out tranche per distinct plane format set (each plane's IN_FORMATS, as far
        // as the renderer can also compose them for the fallback), overlays first, then the
        // primary plane; the renderer's formats follow as the last tranche.
        let mut plane_sets: Vec<Vec<smithay::backend::allocator::Format>> = Vec::new();
        let caps = PlaneCaps::from_drm_surface(self.compositor.surface());
        for set in caps
            .overlay_formats
            .iter()
            .chain(std::iter::once(&caps.primary_formats))
        {
            let mut usable: Vec<_> = set
                .iter()
                .filter(|f| formats.contains(f))
                .copied()
                .collect();
            usable.sort_by_key(|f| (f.code as u32, u64::from(f.modifier)));
            if !usable.is_empty() && !plane_sets.contains(&usable) {
                plane_sets.push(usable);
            }
        }
        let mut builder = DmabufFeedbackBuilder::new(dev, formats);
        for set in &plane_sets {
            builder = builder.add_preference_tranche(
                dev,
                Some(TrancheFlags::Scanout),
                set.iter().copied(),
            );
        }
        let scanout = builder.build().map_err(|e| err("dmabuf feedback")(&e))?;
        tracing::info!(
            tranches = plane_sets.len(),
            "dmabuf feedback: per-plane scan-out tranches"
        );
        // Surfaces start with the default (composition) feedback; those on a plane, or that
        // failed to get one only for a reason a different buffer would fix, get the scan-out one.
        let global = state.create_global_with_default_feedback::<App>(dh, &default);
        self.feedback = Some((default, scanout));
        Ok(global)
    }

    /// The placement tracker for this output's planes (capabilities read from the DRM surface,
    /// the exporter's failures and contiguity rule, the refusal probe).
    pub fn placement_tracker(&self, scanout: bool) -> PlacementTracker {
        let mut tracker = PlacementTracker::for_drm_surface(self.compositor.surface())
            .with_exporter(self.exporter.clone());
        tracker.set_scanout_allowed(scanout);
        tracker
    }

    /// The mode's refresh interval.
    pub fn refresh(&self) -> Duration {
        self.refresh
    }

    /// Renders and queues a frame unless a flip is pending.
    pub fn render(&mut self, app: &mut App, planes: bool) -> FrameOutcome {
        if self.pending_flip || !self.active {
            return FrameOutcome::NotRendered;
        }
        // No flip is pending: the planes may change colour before this frame's commit.
        self.plane_colours
            .follow(app.space.elements().rev().flat_map(window_surfaces));
        let colours = self.plane_colours.colours();
        app.placements.set_yuv_colours(colours);
        let frame = match &mut self.composer {
            Composer::Gles(r) => frame_with(&mut **r, &mut self.compositor, app, planes, &colours),
            Composer::Pixman(r) => frame_with(r, &mut self.compositor, app, planes, &colours),
        };
        let Some(Frame { states, is_empty }) = frame else {
            return FrameOutcome::NotRendered;
        };
        crate::report::placements_changed(app);
        let feedback = crate::profile::section("feedback", || self.feedback(app, &states));
        if is_empty {
            return FrameOutcome::Unchanged;
        }
        match crate::profile::section("queue_frame", || {
            self.compositor.queue_frame(Some(feedback))
        }) {
            Ok(()) => {
                self.pending_flip = true;
                FrameOutcome::Queued
            }
            Err(e) => {
                tracing::error!(%e, "queue_frame");
                FrameOutcome::NotRendered
            }
        }
    }

    /// Per frame: which output each surface is scanned out on, dma-buf feedback where the
    /// tracker says it changed, and the presentation feedback to deliver at the flip.
    fn feedback(&self, app: &App, states: &RenderElementStates) -> OutputPresentationFeedback {
        // Which output each surface is scanned out on, then collect presentation feedback with
        // ZERO_COPY for surfaces whose own buffer is on a plane.
        let output = app.output.clone();
        for w in app.space.elements() {
            w.with_surfaces(|s, data| {
                update_surface_primary_scanout_output(s, &output, data, states, |next, _, _, _| {
                    next
                });
            });
        }
        // Feedback only when the tracker says a surface's choice changed (after hysteresis).
        if let Some((default, scanout)) = &self.feedback
            && app.placements.feedback_changed()
        {
            for w in app.space.elements() {
                w.send_dmabuf_feedback(&output, surface_primary_scanout_output, |s, _| {
                    app.placements.select_feedback(s, default, scanout)
                });
            }
        }
        let mut feedback = OutputPresentationFeedback::new(&output);
        for w in app.space.elements() {
            w.take_presentation_feedback(&mut feedback, surface_primary_scanout_output, |s, _| {
                surface_presentation_feedback_flags_from_states(s, states)
            });
        }
        feedback
    }

    /// Whether the output has overlay planes.
    pub fn has_overlays(&self) -> bool {
        !self.compositor.surface().planes().overlay.is_empty()
    }

    /// Framebuffers the exporter holds (leak checks in tests).
    /// The planes' YCbCr colour properties as the kernel has them (COLOR_ENCODING, COLOR_RANGE).
    pub fn plane_colours(&self) -> Vec<(String, String)> {
        self.plane_colours.kernel_values()
    }

    pub fn live_framebuffers(&self) -> usize {
        self.exporter.live_framebuffers()
    }

    /// Captures what the CRTC shows through the writeback connector. Err("pending") while a
    /// page flip is outstanding (the capture commit would be refused with EBUSY).
    pub fn writeback_snapshot(&mut self) -> Result<(u32, u32, Vec<u8>), String> {
        if self.pending_flip {
            tracing::debug!("screenshot waits for the pending flip");
            return Err(PENDING.into());
        }
        let wb = self
            .writeback
            .as_ref()
            .ok_or("this device has no writeback connector: no KMS screenshot")?;
        let (w, h) = self.size;
        let shot = wb
            .capture(&self.fd, self.crtc, (u32::from(w), u32::from(h)))
            .map_err(|e| wayheap::error::chain(&e))?;
        Ok((shot.width, shot.height, shot.rgba))
    }
}

/// The error text meaning "try again after the next vblank".
pub const PENDING: &str = "pending";

/// What became of a repaint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameOutcome {
    /// Nothing rendered (a flip is pending, the session is paused, or rendering failed).
    NotRendered,
    /// Rendered, and nothing on screen changes: no flip, so no vblank will pace the clients.
    Unchanged,
    /// Queued for the next vblank.
    Queued,
}

/// What a rendered frame was made of.
struct Frame {
    states: RenderElementStates,
    /// Nothing changed: no commit is needed.
    is_empty: bool,
}

/// The elements of a client's `surface` drawn with its top-left corner at `at` (logical, the
/// output at scale 1): a cursor, or a drag's icon.
fn pointer_surface<R>(
    renderer: &mut R,
    surface: &WlSurface,
    at: smithay::utils::Point<f64, smithay::utils::Logical>,
    kind: Kind,
) -> impl Iterator<Item = OutputElements<R>>
where
    R: YuvComposition + ImportMem,
    R::TextureId: Texture + Clone + Send + 'static,
{
    smithay::backend::renderer::element::surface::render_elements_from_surface_tree(
        renderer,
        surface,
        at.to_physical(1.0).to_i32_round(),
        1.0,
        1.0,
        kind,
    )
    .into_iter()
    .map(OutputElements::PointerSurface)
}

/// Collects the elements (the client's cursor surface and a drag's icon in front of the
/// windows), lets the DRM
/// compositor assign planes and compose the rest with `renderer`, and feeds the result to the
/// placement tracker.
fn frame_with<R>(
    renderer: &mut R,
    compositor: &mut Compositor,
    app: &mut App,
    planes: bool,
    colours: &YuvColours,
) -> Option<Frame>
where
    R: YuvComposition + ImportMem + Bind<Dmabuf>,
    R::TextureId: Texture + Clone + Send + 'static,
{
    let cursor_surface = match &app.cursor {
        smithay::input::pointer::CursorImageStatus::Surface(s) if s.alive() => Some(s.clone()),
        _ => None,
    };
    let windows = crate::profile::section("elements", || {
        space_elements(renderer, &app.space, &app.output, colours)
    });
    let mut elements: Vec<OutputElements<R>> = Vec::with_capacity(windows.len() + 1);
    if let Some(s) = &cursor_surface {
        let hotspot = smithay::wayland::compositor::with_states(s, |st| {
            st.data_map
                .get::<smithay::input::pointer::CursorImageSurfaceData>()
                .map(|d| d.lock().unwrap_or_else(|e| e.into_inner()).hotspot)
                .unwrap_or_default()
        });
        let at = app.pointer_location - hotspot.to_f64();
        elements.extend(pointer_surface(renderer, s, at, Kind::Cursor));
    }
    // A shape a client named (wp_cursor_shape_v1). Not the default arrow: the demo has no
    // input devices, the pointer rests at the output's centre, and an arrow there would cover
    // what the clients show.
    if let smithay::input::pointer::CursorImageStatus::Named(icon) = app.cursor
        && icon != smithay::input::pointer::CursorIcon::Default
        && let Some(named) = app.cursor_theme.get(icon)
    {
        let at = (app.pointer_location - named.hotspot.to_f64()).to_physical(1.0);
        match smithay::backend::renderer::element::memory::MemoryRenderBufferRenderElement::from_buffer(
            renderer,
            at,
            &named.buffer,
            None,
            None,
            None,
            Kind::Cursor,
        ) {
            Ok(element) => elements.push(OutputElements::NamedCursor(element)),
            Err(e) => tracing::warn!(%e, "uploading the named cursor"),
        }
    }
    // A drag's icon, its top-left corner at the pointer (below the cursor).
    let dnd_icon = app.dnd_icon.clone().filter(|s| s.alive());
    if let Some(icon) = &dnd_icon {
        elements.extend(pointer_surface(
            renderer,
            icon,
            app.pointer_location,
            Kind::Unspecified,
        ));
    }
    elements.extend(windows.into_iter().map(OutputElements::Window));
    let flags = if planes {
        // Any format on the primary plane: Smithay's default takes only the swapchain's (XR24),
        // so a fullscreen NV12 camera frame would be composited for no reason. The TEST_ONLY
        // commit still refuses what the plane cannot take.
        FrameFlags::DEFAULT | FrameFlags::ALLOW_PRIMARY_PLANE_SCANOUT_ANY
    } else {
        FrameFlags::empty()
    };
    let result = crate::profile::section("render_frame", || {
        compositor.render_frame(renderer, &elements, CLEAR, flags)
    });
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(e = %wayheap::error::chain(&e), "render_frame");
            return None;
        }
    };
    let surfaces = cursor_surface
        .into_iter()
        .chain(dnd_icon)
        .chain(app.space.elements().flat_map(window_surfaces));
    crate::profile::section("placement", || {
        app.placements
            .update(&result, &elements, &app.output, surfaces);
    });
    Some(Frame {
        states: result.states.clone(),
        is_empty: result.is_empty,
    })
}
