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
use smithay::backend::drm::compositor::{DrmCompositor, FrameFlags, PrimaryPlaneElement};
use smithay::backend::drm::{DrmDevice, DrmDeviceFd, DrmEvent, DrmNode};
use smithay::backend::renderer::element::surface::WaylandSurfaceRenderElement;
use smithay::backend::renderer::element::{Element, Id, RenderElementStates};
use smithay::backend::allocator::dmabuf::Dmabuf;
use smithay::backend::renderer::gles::GlesRenderer;
use smithay::backend::renderer::pixman::PixmanRenderer;
use smithay::backend::renderer::{Bind, ImportAll, ImportDma, ImportMem, Renderer, Texture};
use smithay::backend::session::libseat::LibSeatSession;
use smithay::backend::session::{Event as SessionEvent, Session};
use smithay::desktop::space::space_render_elements;
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
use wayheap::policy::{Allocator as PolicyAllocator, Constraints, Policy};
use wayheap::smithay::{HeapAllocator, PlaneCaps, PlaneKind, PrimeExporter};

use crate::headless::CLEAR;
use crate::report::RendererInfo;
use crate::state::App;
use crate::{Backend, Demo};
use wayheap::smithay::renderer::{self, GlesOutcome, RendererChoice};

smithay::backend::renderer::element::render_elements! {
    /// What a KMS frame is made of: the client's cursor surface (a cursor-plane candidate) in
    /// front of the windows.
    /// (`E` is the windows' element type, a surface tree: generic only because the macro
    /// needs it to name Smithay's space elements for any renderer.)
    OutputElements<R, E> where R: ImportAll + ImportMem;
    Cursor=WaylandSurfaceRenderElement<R>,
    Space=smithay::desktop::space::SpaceRenderElements<R, E>,
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

/// The writeback connector, for screenshots.
struct Writeback {
    connector: connector::Handle,
}

/// KMS output.
pub(crate) struct Kms {
    _session: LibSeatSession,
    drm: DrmDevice,
    fd: DrmDeviceFd,
    node: DrmNode,
    compositor: Compositor,
    composer: Composer,
    pub info: RendererInfo,
    exporter: PrimeExporter,
    caps: PlaneCaps,
    crtc: crtc::Handle,
    size: (u16, u16),
    writeback: Option<Writeback>,
    pending_flip: bool,
    active: bool,
    states: Option<RenderElementStates>,
    /// (default, scan-out) dma-buf feedback: surfaces on a plane, or that could be, get the
    /// scan-out one.
    feedback: Option<(
        smithay::wayland::dmabuf::DmabufFeedback,
        smithay::wayland::dmabuf::DmabufFeedback,
    )>,
}

fn err(what: &str) -> impl Fn(&dyn std::fmt::Display) -> String + '_ {
    move |e| format!("{what}: {e}")
}

impl Kms {
    pub fn new(
        device: Option<&Path>,
        handle: &LoopHandle<'static, Demo>,
        _dh: &DisplayHandle,
        _planes: bool,
        contiguous_only: bool,
        want_mode: Option<(i32, i32)>,
        choice: RendererChoice,
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
                writeback = Some(Writeback { connector: c });
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
        let caps = PlaneCaps {
            overlay_formats: planes
                .overlay
                .iter()
                .map(|p| p.formats.iter().copied().collect())
                .collect(),
            primary_formats: surface.plane_info().formats.iter().copied().collect(),
            // KMS does not say whether planes scale; a refused test commit will.
            scaling: None,
            contiguous_only,
        };
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
        let exporter = PrimeExporter::new(fd.clone()).contiguous_only(contiguous_only);
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
                    match k.compositor.frame_submitted() {
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
                                smithay::wayland::presentation::Refresh::fixed(
                                    Duration::from_micros(16_667),
                                ),
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
                        k.drm.pause();
                    }
                    SessionEvent::ActivateSession => {
                        tracing::info!("session active again: taking DRM master back");
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

        let kms = Kms {
            _session: session,
            drm,
            fd,
            node,
            compositor,
            composer,
            info,
            exporter,
            caps,
            crtc,
            size: (w, h),
            writeback,
            pending_flip: false,
            active: true,
            states: None,
            feedback: None,
        };
        Ok((kms, output))
    }

    /// What clients may send: what the renderer can compose (it must be able to, when no plane
    /// takes a buffer).
    pub fn renderer_dmabuf_formats(&self) -> FormatSet {
        match &self.composer {
            Composer::Gles(r) => renderer::advertised_formats(&r.dmabuf_formats()),
            Composer::Pixman(r) => r.dmabuf_formats(),
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
        for set in self
            .caps
            .overlay_formats
            .iter()
            .chain(std::iter::once(&self.caps.primary_formats))
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

    /// Renders and queues a frame unless a flip is pending; returns whether a frame was made.
    pub fn render(&mut self, app: &mut App, planes: bool) -> bool {
        if self.pending_flip || !self.active {
            return false;
        }
        let cursor_surface = match &app.cursor {
            smithay::input::pointer::CursorImageStatus::Surface(s) if s.alive() => Some(s.clone()),
            _ => None,
        };
        let frame = match &mut self.composer {
            Composer::Gles(r) => frame_with(
                &mut **r,
                &mut self.compositor,
                app,
                cursor_surface.as_ref(),
                planes,
            ),
            Composer::Pixman(r) => frame_with(
                r,
                &mut self.compositor,
                app,
                cursor_surface.as_ref(),
                planes,
            ),
        };
        let Some(Frame {
            kinds,
            states,
            is_empty,
        }) = frame
        else {
            return false;
        };
        let plane_of = |s: &WlSurface| {
            let id = Id::from_wayland_resource(s);
            kinds.iter().find(|(k, _)| *k == id).map(|(_, p)| *p)
        };
        let extra: Vec<WlSurface> = cursor_surface.into_iter().collect();
        crate::report::update_placements(app, &states, &plane_of, &self.caps, planes, &extra);

        // Which output each surface is scanned out on, then collect presentation feedback with
        // ZERO_COPY for surfaces whose own buffer is on a plane.
        let output = app.output.clone();
        for w in app.space.elements() {
            w.with_surfaces(|s, data| {
                update_surface_primary_scanout_output(
                    s,
                    &output,
                    data,
                    &states,
                    |next, _, _, _| next,
                );
            });
        }
        if let Some((default, scanout)) = &self.feedback {
            for w in app.space.elements() {
                w.send_dmabuf_feedback(&output, surface_primary_scanout_output, |s, _| {
                    smithay::backend::renderer::element::utils::select_dmabuf_feedback(
                        s, &states, default, scanout,
                    )
                });
            }
        }
        let mut feedback = OutputPresentationFeedback::new(&output);
        for w in app.space.elements() {
            w.take_presentation_feedback(&mut feedback, surface_primary_scanout_output, |s, _| {
                surface_presentation_feedback_flags_from_states(s, &states)
            });
        }
        self.states = Some(states);
        if is_empty {
            return true;
        }
        match self.compositor.queue_frame(Some(feedback)) {
            Ok(()) => {
                self.pending_flip = true;
                true
            }
            Err(e) => {
                tracing::error!(%e, "queue_frame");
                false
            }
        }
    }

    /// Whether the output has overlay planes.
    pub fn has_overlays(&self) -> bool {
        !self.caps.overlay_formats.is_empty()
    }

    /// Framebuffers the exporter holds (leak checks in tests).
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
        capture(&self.fd, self.crtc, wb.connector, self.size)
    }
}

/// The error text meaning "try again after the next vblank".
pub const PENDING: &str = "pending";

/// One writeback capture: route the writeback connector to `crtc` with a dumb buffer, commit,
/// wait for the out-fence, read the buffer, route it away again.
fn capture(
    fd: &DrmDeviceFd,
    crtc: crtc::Handle,
    conn: connector::Handle,
    (w, h): (u16, u16),
) -> Result<(u32, u32, Vec<u8>), String> {
    use drm::buffer::DrmFourcc;
    use drm::control::{AtomicCommitFlags, atomic::AtomicModeReq, property::Value};
    let (w, h) = (u32::from(w), u32::from(h));
    let mut bo = fd
        .create_dumb_buffer((w, h), DrmFourcc::Xrgb8888, 32)
        .map_err(|e| err("dumb buffer")(&e))?;
    let fb = fd
        .add_framebuffer(&bo, 24, 32)
        .map_err(|e| err("writeback framebuffer")(&e))?;
    let props = fd
        .get_properties(conn)
        .map_err(|e| err("connector properties")(&e))?;
    let named = props
        .as_hashmap(fd)
        .map_err(|e| err("connector properties")(&e))?;
    let prop = |n: &str| {
        named
            .get(n)
            .map(|i| i.handle())
            .ok_or_else(|| format!("writeback connector lacks {n}"))
    };
    let out_fence: i32 = -1;
    let mut req = AtomicModeReq::new();
    req.add_property(conn, prop("CRTC_ID")?, Value::CRTC(Some(crtc)));
    req.add_property(conn, prop("WRITEBACK_FB_ID")?, Value::Framebuffer(Some(fb)));
    req.add_property(
        conn,
        prop("WRITEBACK_OUT_FENCE_PTR")?,
        Value::UnsignedRange(std::ptr::addr_of!(out_fence) as u64),
    );
    let result = fd
        .atomic_commit(AtomicCommitFlags::ALLOW_MODESET, req)
        .map_err(|e| err("writeback commit")(&e));
    let fence = {
        // SAFETY: the kernel wrote the fence fd into `out_fence` during the commit above.
        let raw = unsafe { std::ptr::read_volatile(&out_fence) };
        (raw >= 0).then(|| {
            // SAFETY: a new sync_file fd the kernel installed for us.
            wayheap::dmabuf::SyncFile::from_fd(unsafe { std::os::fd::FromRawFd::from_raw_fd(raw) })
        })
    };
    let pixels = result.and_then(|()| {
        let fence = fence.ok_or("the writeback commit gave no fence")?;
        match fence.wait(Duration::from_secs(10)) {
            Ok(wayheap::dmabuf::FenceState::Signalled) => {}
            other => return Err(format!("writeback fence: {other:?}")),
        }
        let pitch = drm::buffer::Buffer::pitch(&bo) as usize;
        let map = fd
            .map_dumb_buffer(&mut bo)
            .map_err(|e| err("mapping the capture")(&e))?;
        let mut rgba = Vec::with_capacity((w * h * 4) as usize);
        for y in 0..h as usize {
            for x in 0..w as usize {
                let at = y * pitch + x * 4;
                let px = &map.as_ref()[at..at + 4]; // XRGB8888 little endian: B G R X
                rgba.extend_from_slice(&[px[2], px[1], px[0], 0xff]);
            }
        }
        Ok(rgba)
    });
    // Detach the writeback connector again, whatever happened.
    let mut req = AtomicModeReq::new();
    if let Ok(p) = prop("CRTC_ID") {
        req.add_property(conn, p, Value::CRTC(None));
        if let Err(e) = fd.atomic_commit(AtomicCommitFlags::ALLOW_MODESET, req) {
            tracing::warn!(%e, "detaching the writeback connector");
        }
    }
    let _ = fd.destroy_framebuffer(fb);
    let _ = fd.destroy_dumb_buffer(bo);
    pixels.map(|p| (w, h, p))
}

/// What a rendered frame was made of.
struct Frame {
    /// The elements on planes.
    kinds: Vec<(Id, PlaneKind)>,
    states: RenderElementStates,
    /// Nothing changed: no commit is needed.
    is_empty: bool,
}

/// Collects the elements and lets the DRM compositor assign planes and compose the rest with
/// `renderer`.
fn frame_with<R>(
    renderer: &mut R,
    compositor: &mut Compositor,
    app: &App,
    cursor_surface: Option<&WlSurface>,
    planes: bool,
) -> Option<Frame>
where
    R: Renderer + ImportAll + ImportMem + Bind<Dmabuf>,
    R::TextureId: Texture + Clone + Send + 'static,
{
    let space = match space_render_elements(renderer, [&app.space], &app.output, 1.0) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(?e, "collecting render elements");
            return None;
        }
    };
    let mut elements: Vec<OutputElements<R, WaylandSurfaceRenderElement<R>>> =
        Vec::with_capacity(space.len() + 1);
    if let Some(s) = cursor_surface {
        let hotspot = smithay::wayland::compositor::with_states(s, |st| {
            st.data_map
                .get::<smithay::input::pointer::CursorImageSurfaceData>()
                .map(|d| d.lock().unwrap_or_else(|e| e.into_inner()).hotspot)
                .unwrap_or_default()
        });
        let at = (app.pointer_location - hotspot.to_f64())
            .to_physical(1.0)
            .to_i32_round();
        elements.extend(
            smithay::backend::renderer::element::surface::render_elements_from_surface_tree(
                renderer,
                s,
                at,
                1.0,
                1.0,
                smithay::backend::renderer::element::Kind::Cursor,
            )
            .into_iter()
            .map(OutputElements::Cursor),
        );
    }
    elements.extend(space.into_iter().map(OutputElements::Space));
    let flags = if planes {
        FrameFlags::DEFAULT
    } else {
        FrameFlags::empty()
    };
    let result = match compositor.render_frame(renderer, &elements, CLEAR, flags) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(%e, "render_frame");
            return None;
        }
    };
    let mut kinds: Vec<(Id, PlaneKind)> = Vec::new();
    if let PrimaryPlaneElement::Element(e) = &result.primary_element {
        kinds.push((e.id().clone(), PlaneKind::Primary));
    }
    kinds.extend(
        result
            .overlay_elements
            .iter()
            .map(|e| (e.id().clone(), PlaneKind::Overlay)),
    );
    if let Some(e) = result.cursor_element {
        kinds.push((e.id().clone(), PlaneKind::Cursor));
    }
    Some(Frame {
        kinds,
        states: result.states.clone(),
        is_empty: result.is_empty,
    })
}
