//! The Wayland side: surfaces, the main loop, and the wiring of video, detector and overlay.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use client_demo::detector::{BBox, Face, Point};
use client_demo::overlay::{Painter, Target, damage};
use rustix::event::{PollFd, PollFlags, poll};
use wayheap::client::window::Window;
use wayheap::client::{
    BufferDescription, Decision, Feedback, FeedbackCollector, SurfaceStack, Swapchain,
    SwapchainProtocols, bind_linux_dmabuf, decide_without_linux_dmabuf, surface_feedback,
};
use wayheap::dmabuf::DmaBuf;
use wayheap::export::Udmabuf;
use wayheap::layout::{Fourcc, Layout, LayoutOptions};
use wayheap::policy::Allocator;
use wayland_client::globals::{GlobalListContents, registry_queue_init};
use wayland_client::protocol::{
    wl_buffer, wl_callback, wl_compositor, wl_registry, wl_shm, wl_shm_pool, wl_subcompositor,
    wl_subsurface, wl_surface,
};
use wayland_client::{Connection, Dispatch, QueueHandle, WEnum, delegate_noop};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1, zwp_linux_dmabuf_feedback_v1,
};
use wayland_protocols::wp::presentation_time::client::{wp_presentation, wp_presentation_feedback};
use wayland_protocols::wp::viewporter::client::{wp_viewport, wp_viewporter};
use wayland_protocols::xdg::shell::client::xdg_wm_base;

use crate::camera::CameraVideo;
use crate::worker::{DetectorWorker, Job, Pixels};
use crate::{Args, Scale};
use client_demo::picture::Picture;

/// User data of a camera buffer's wl_buffer: its capture slot.
#[derive(Debug, Clone, Copy)]
pub struct CameraSlot(pub usize);

/// Wayland state.
#[derive(Debug, Default)]
pub struct State {
    feedback: FeedbackCollector,
    last_feedback: Option<Feedback>,
    /// The compositor's feedback could not be used (the start does not wait for it then).
    feedback_failed: Option<String>,
    /// What a version-3 linux-dmabuf listed.
    modifiers: wayheap::client::ModifierEvents,
    /// Camera slots the compositor released since the last look.
    released: Vec<usize>,
    /// Main-surface presentation feedback (camera mode; the picture's swapchain counts its own).
    presented: u64,
    zero_copy: u64,
}

impl Dispatch<zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1, ()> for State {
    fn event(
        st: &mut Self,
        _: &zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1,
        event: zwp_linux_dmabuf_feedback_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match st.feedback.event(event) {
            Some(Ok(f)) => st.last_feedback = Some(f),
            Some(Err(e)) => {
                eprintln!("client-demo: ignoring the compositor's feedback: {e}");
                st.feedback_failed = Some(e.to_string());
            }
            None => {}
        }
    }
}

impl Dispatch<wl_buffer::WlBuffer, CameraSlot> for State {
    fn event(
        st: &mut Self,
        _: &wl_buffer::WlBuffer,
        event: wl_buffer::Event,
        slot: &CameraSlot,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_buffer::Event::Release = event {
            st.released.push(slot.0);
        }
    }
}

impl Dispatch<wp_presentation_feedback::WpPresentationFeedback, ()> for State {
    fn event(
        st: &mut Self,
        _: &wp_presentation_feedback::WpPresentationFeedback,
        event: wp_presentation_feedback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wp_presentation_feedback::Event::Presented { flags, .. } = event {
            st.presented += 1;
            if matches!(flags, WEnum::Value(f) if f.contains(wp_presentation_feedback::Kind::ZeroCopy))
            {
                st.zero_copy += 1;
            }
        }
    }
}

impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for State {
    fn event(
        _: &mut Self,
        _: &wl_registry::WlRegistry,
        _: wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1, BufferDescription> for State {
    fn event(
        _: &mut Self,
        _: &zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1,
        event: zwp_linux_buffer_params_v1::Event,
        description: &BufferDescription,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let zwp_linux_buffer_params_v1::Event::Failed = event {
            eprintln!("client-demo: the compositor refused a dma-buf: {description}");
        }
    }
}

delegate_noop!(State: ignore wl_compositor::WlCompositor);
delegate_noop!(State: ignore wl_subcompositor::WlSubcompositor);
delegate_noop!(State: ignore wl_subsurface::WlSubsurface);
delegate_noop!(State: ignore wl_surface::WlSurface);
delegate_noop!(State: ignore wl_shm::WlShm);
delegate_noop!(State: ignore wl_shm_pool::WlShmPool);
delegate_noop!(State: ignore wl_callback::WlCallback);
delegate_noop!(State: ignore wp_viewporter::WpViewporter);
delegate_noop!(State: ignore wp_viewport::WpViewport);
delegate_noop!(State: ignore wp_presentation::WpPresentation);
impl wayheap::client::ModifierEventsHandler for State {
    fn modifier_events(&mut self) -> &mut wayheap::client::ModifierEvents {
        &mut self.modifiers
    }
}
wayheap::delegate_linux_dmabuf!(State);
wayheap::delegate_swapchain!(State);
wayheap::delegate_window!(State);

/// Where the video comes from.
enum Video {
    Picture {
        picture: Picture,
        chain: Swapchain,
        moving: bool,
        started: Instant,
        next: Instant,
        interval: Duration,
    },
    Camera(CameraVideo),
}

/// The overlay subsurface: a double-buffered ARGB8888 swapchain, and what each buffer shows.
struct Overlay {
    chain: Swapchain,
    surface: wl_surface::WlSurface,
    /// Faces (in overlay pixels) each buffer shows.
    shown: Vec<Vec<Face>>,
    /// Faces on screen (the last committed buffer's).
    committed: Vec<Face>,
    /// Faces waiting for a free buffer.
    pending: Option<Vec<Face>>,
    painter: Painter,
}

/// Counters for `--stats`.
#[derive(Debug, Default)]
struct Stats {
    frames: u64,
    detections: u64,
    detector_time: Duration,
    skipped: u64,
    /// Camera frames the driver flagged as damaged (not shown).
    damaged: u64,
    since: Option<Instant>,
    frames_at: u64,
    detections_at: u64,
    time_at: Duration,
}

fn scale_face(f: &Face, sx: f32, sy: f32) -> Face {
    let p = |p: Point| Point {
        x: p.x * sx,
        y: p.y * sy,
    };
    Face {
        bbox: BBox {
            x0: f.bbox.x0 * sx,
            y0: f.bbox.y0 * sy,
            x1: f.bbox.x1 * sx,
            y1: f.bbox.y1 * sy,
        },
        score: f.score,
        keypoints: f.keypoints.map(p),
    }
}

fn decision_for(st: &State, dmabuf_version: Option<u32>, format: Fourcc) -> Decision {
    if let Some(version) = dmabuf_version {
        wayheap::client::decide_for_version(
            version,
            st.last_feedback.as_ref(),
            &st.modifiers,
            format,
        )
    } else {
        decide_without_linux_dmabuf(format)
    }
}

/// The buffers of a surface the client draws itself (the picture, the overlay): application
/// memory exported through udmabuf, else heap memory from the policy, else wl_shm (a copy, said
/// so on stderr), whichever works first.
fn memory_chain(
    udmabuf: Option<&Udmabuf>,
    alloc: &Allocator,
    decision: Decision,
    layout: Layout,
    count: usize,
    protocols: &SwapchainProtocols<'_>,
    qh: &QueueHandle<State>,
) -> Result<Swapchain, String> {
    let mut failures = Vec::new();
    if decision.path.zero_copy() {
        if let Some(u) = udmabuf {
            match Swapchain::from_udmabuf(u, decision.clone(), layout.clone(), count, protocols, qh)
            {
                Ok(c) => return Ok(c),
                Err(e) => failures.push(format!("udmabuf: {e}")),
            }
        } else {
            failures.push("udmabuf: /dev/udmabuf cannot be opened".to_owned());
        }
        match Swapchain::new(
            alloc,
            decision.clone(),
            layout.clone(),
            count,
            protocols,
            qh,
        ) {
            Ok(c) => return Ok(c),
            Err(e) => failures.push(format!("heaps: {e}")),
        }
        eprintln!(
            "client-demo: no dma-buf for {} buffers ({}): using wl_shm, which is not zero-copy",
            layout.format,
            failures.join("; ")
        );
    }
    let shm = Decision {
        path: wayheap::client::BufferPath::Shm,
        reason: if failures.is_empty() {
            decision.reason.clone()
        } else {
            format!(
                "no dma-buf could be allocated ({}): wl_shm, not zero-copy",
                failures.join("; ")
            )
        },
        device: None,
    };
    Swapchain::new(alloc, shm, layout, count, protocols, qh).map_err(|e| e.to_string())
}

/// Runs the client until it is closed, killed, or `--frames`/`--seconds` are reached.
pub fn run(args: Args) -> Result<(), String> {
    let conn = Connection::connect_to_env().map_err(|e| {
        format!(
            "no Wayland compositor ({e}); run inside one, e.g. compositor-demo --run client-demo"
        )
    })?;
    let (globals, mut queue) =
        registry_queue_init::<State>(&conn).map_err(|e| format!("registry: {e}"))?;
    let qh = queue.handle();
    let need = |what: &str, e: wayland_client::globals::BindError| {
        format!("the compositor lacks {what}: {e}")
    };
    let compositor: wl_compositor::WlCompositor = globals
        .bind(&qh, 4..=6, ())
        .map_err(|e| need("wl_compositor 4", e))?;
    let wm: xdg_wm_base::XdgWmBase = globals
        .bind(&qh, 1..=6, ())
        .map_err(|e| need("xdg_wm_base", e))?;
    let subcompositor: wl_subcompositor::WlSubcompositor = globals
        .bind(&qh, 1..=1, ())
        .map_err(|e| need("wl_subcompositor", e))?;
    let shm: Option<wl_shm::WlShm> = globals.bind(&qh, 1..=1, ()).ok();
    let viewporter: Option<wp_viewporter::WpViewporter> = globals.bind(&qh, 1..=1, ()).ok();
    let presentation: Option<wp_presentation::WpPresentation> = globals.bind(&qh, 1..=1, ()).ok();
    let linux_dmabuf = bind_linux_dmabuf(&globals, &qh).ok();

    let window = Window::new(
        &compositor,
        &wm,
        &qh,
        "wayheap client-demo",
        Some("wayheap.client-demo"),
        true,
    );
    let surface = window.surface.clone();
    let _feedback = linux_dmabuf
        .as_ref()
        .and_then(|d| surface_feedback(d, &surface, &qh, ()));
    surface.commit();
    let mut st = State::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    let waiting_for_feedback = |st: &State| {
        _feedback.is_some() && st.last_feedback.is_none() && st.feedback_failed.is_none()
    };
    while window.configured().is_none() || waiting_for_feedback(&st) {
        if Instant::now() > deadline {
            return Err(if window.configured().is_none() {
                "the compositor never configured the window".into()
            } else {
                "the compositor sent no complete linux-dmabuf feedback within 30 s".into()
            });
        }
        queue
            .blocking_dispatch(&mut st)
            .map_err(|e| format!("Wayland: {e}"))?;
    }
    let (frame_w, frame_h) = args.size;
    let output = match window.configured() {
        Some((w, h)) if w > 0 && h > 0 => (w, h),
        _ => (frame_w as i32, frame_h as i32),
    };

    let mut stack = SurfaceStack::new(surface.clone(), &subcompositor, viewporter.as_ref(), &qh);
    let overlay_surface = stack.add_layer(&compositor, &qh, 0, 0).surface.clone();
    let alloc = Allocator::from_env().map_err(|e| e.to_string())?;
    let udmabuf = Udmabuf::open().ok();
    let protocols = SwapchainProtocols {
        linux_dmabuf: linux_dmabuf.as_ref(),
        shm: shm.as_ref(),
        presentation: presentation.as_ref(),
    };

    // The video source.
    let camera_path = match (&args.camera, &args.image) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(_)) => None,
        (None, None) => crate::camera::first_capture_device(),
    };
    let mut video = match camera_path {
        Some(path) => {
            let cam = CameraVideo::open(&path, &args, st.last_feedback.as_ref(), &alloc)?;
            println!("{}", cam.describe());
            Video::Camera(cam)
        }
        None => {
            let picture = match args.image.as_deref() {
                None => Picture::builtin()?,
                Some(p) if p.as_os_str() == "builtin" => Picture::builtin()?,
                Some(p) => Picture::load(p)?,
            };
            let layout = Layout::new(Fourcc::XRGB8888, frame_w, frame_h, LayoutOptions::default())
                .map_err(|e| e.to_string())?;
            let decision = decision_for(
                &st,
                linux_dmabuf.as_ref().map(wayland_client::Proxy::version),
                Fourcc::XRGB8888,
            );
            // The picture is application memory: exported through udmabuf when it can be.
            let chain = memory_chain(
                udmabuf.as_ref(),
                &alloc,
                decision,
                layout,
                args.buffers as usize,
                &protocols,
                &qh,
            )
            .map_err(|e| format!("video buffers: {e}"))?;
            println!(
                "VIDEO source=picture format=XR24 size={frame_w}x{frame_h} buffers={} provider={} decision={}",
                args.buffers,
                chain.provider(),
                chain.decision()
            );
            let interval = Duration::from_secs(1) / args.fps;
            Video::Picture {
                picture,
                chain,
                moving: !args.still,
                started: Instant::now(),
                next: Instant::now(),
                interval,
            }
        }
    };
    let (vw, vh) = match &video {
        Video::Camera(c) => (c.layout().width, c.layout().height),
        Video::Picture { chain, .. } => (chain.layout().width, chain.layout().height),
    };

    // Where the video goes, and the overlay on top of it at the same size.
    let dest = match (args.scale, viewporter.is_some()) {
        (Scale::Fit, true) => {
            stack.set_main_destination(output.0, output.1);
            output
        }
        _ => (vw as i32, vh as i32),
    };
    let overlay_layout = Layout::new(
        Fourcc::ARGB8888,
        dest.0 as u32,
        dest.1 as u32,
        LayoutOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    let overlay_decision = decision_for(
        &st,
        linux_dmabuf.as_ref().map(wayland_client::Proxy::version),
        Fourcc::ARGB8888,
    );
    let overlay_chain = memory_chain(
        udmabuf.as_ref(),
        &alloc,
        overlay_decision,
        overlay_layout,
        2,
        &protocols,
        &qh,
    )
    .map_err(|e| format!("overlay buffers: {e}"))?;
    println!(
        "OVERLAY size={}x{} at=0,0 provider={} decision={}",
        dest.0,
        dest.1,
        overlay_chain.provider(),
        overlay_chain.decision()
    );
    let mut overlay = Overlay {
        chain: overlay_chain,
        surface: overlay_surface,
        shown: vec![Vec::new(); 2],
        committed: Vec::new(),
        pending: Some(Vec::new()),
        painter: Painter::new(),
    };
    let (sx, sy) = (dest.0 as f32 / vw as f32, dest.1 as f32 / vh as f32);

    let worker = if args.no_detector {
        None
    } else {
        Some(DetectorWorker::start()?)
    };
    // The slot the detector is reading, not to be reused until it is done.
    let mut detector_slot: Option<usize> = None;
    let mut stats = Stats {
        since: Some(Instant::now()),
        ..Stats::default()
    };
    let started = Instant::now();
    let mut seq = 0u64;
    let _ = std::io::Write::flush(&mut std::io::stdout());

    loop {
        // Frames: the picture renders at its pace; the camera when a frame is captured.
        match &mut video {
            Video::Picture {
                picture,
                chain,
                moving,
                started,
                next,
                interval,
            } => {
                if Instant::now() >= *next
                    && chain.ready()
                    && let Some(index) = chain.acquire_except(detector_slot)
                {
                    let t = started.elapsed().as_secs_f32();
                    let layout = chain.layout().clone();
                    let stride = layout.planes[0].stride as usize;
                    chain
                        .write(index, |bytes| {
                            picture.render(t, *moving, bytes, stride, layout.width, layout.height)
                        })
                        .map_err(|e| format!("drawing the picture: {e}"))?;
                    chain
                        .present(index, stack.main(), &[], &qh)
                        .map_err(|e| e.to_string())?;
                    seq += 1;
                    stats.frames += 1;
                    *next = Instant::now() + *interval;
                    if let Some(w) = &worker {
                        let chain = &*chain;
                        let submitted = w.try_submit(|| {
                            let pixels = match chain.dmabuf(index) {
                                Some(d) => Pixels::DmaBuf(
                                    DmaBuf::import(d.fd().try_clone_to_owned().ok()?).ok()?,
                                ),
                                // wl_shm: no dma-buf to share with the worker, so a copy.
                                None => Pixels::Copy(chain.read(index, <[u8]>::to_vec).ok()?),
                            };
                            Some(Job {
                                seq,
                                slot: index,
                                pixels,
                                layout,
                            })
                        });
                        if submitted {
                            detector_slot = Some(index);
                        } else {
                            stats.skipped += 1;
                        }
                    }
                }
            }
            Video::Camera(cam) => {
                // Buffers the compositor let go of go back to the camera (unless the detector
                // is still reading one).
                for slot in std::mem::take(&mut st.released) {
                    cam.released(slot)?;
                }
                while let Some(frame) = cam.dequeue()? {
                    if frame.error {
                        // V4L2_BUF_FLAG_ERROR: the driver says the frame is damaged.
                        stats.damaged += 1;
                        cam.drop_frame(frame.slot)?;
                        continue;
                    }
                    let buffer = cam.wl_buffer(frame.slot, linux_dmabuf.as_ref(), &qh)?;
                    let main = stack.main();
                    main.attach(Some(&buffer), 0, 0);
                    main.damage_buffer(0, 0, vw as i32, vh as i32);
                    if let Some(p) = &presentation {
                        p.feedback(main, &qh, ());
                    }
                    main.commit();
                    cam.shown(frame.slot);
                    seq = frame.sequence;
                    stats.frames += 1;
                    if let Some(w) = &worker {
                        let layout = cam.layout().clone();
                        let fd = cam.dmabuf(frame.slot).fd().try_clone_to_owned();
                        let submitted = w.try_submit(|| {
                            Some(Job {
                                seq,
                                slot: frame.slot,
                                pixels: Pixels::DmaBuf(DmaBuf::import(fd.ok()?).ok()?),
                                layout,
                            })
                        });
                        if submitted {
                            detector_slot = Some(frame.slot);
                            cam.detector_took(frame.slot);
                        } else {
                            stats.skipped += 1;
                        }
                    }
                }
            }
        }

        // Detections: faces to the overlay.
        if let Some(w) = &worker {
            for d in w.results() {
                // Every result frees its slot (the worker may already have taken the next
                // frame, so `detector_slot` can name another one by now).
                if let Video::Camera(cam) = &mut video {
                    cam.detector_done(d.slot)?;
                }
                if detector_slot == Some(d.slot) {
                    detector_slot = None;
                }
                stats.detections += 1;
                stats.detector_time += d.elapsed;
                match d.faces {
                    Ok(faces) => {
                        let scaled: Vec<Face> =
                            faces.iter().map(|f| scale_face(f, sx, sy)).collect();
                        for f in &scaled {
                            println!(
                                "FACES seq={} box={:.0},{:.0},{:.0},{:.0} score={:.2} ms={}",
                                d.seq,
                                f.bbox.x0,
                                f.bbox.y0,
                                f.bbox.x1,
                                f.bbox.y1,
                                f.score,
                                d.elapsed.as_millis()
                            );
                        }
                        overlay.pending = Some(scaled);
                    }
                    Err(e) => eprintln!("client-demo: detector: {e}"),
                }
            }
        }
        if overlay.pending.is_some()
            && overlay.chain.ready()
            && let Some(index) = overlay.chain.acquire()
        {
            let new = overlay.pending.take().unwrap_or_default();
            let layout = overlay.chain.layout().clone();
            let stride = layout.planes[0].stride as usize;
            let old = std::mem::take(&mut overlay.shown[index]);
            let painter = &mut overlay.painter;
            overlay
                .chain
                .write(index, |bytes| {
                    Target::new(bytes, stride, layout.width, layout.height)
                        .map(|mut t| painter.update(&mut t, &old, &new))
                })
                .map_err(|e| format!("overlay: {e}"))?
                .map_err(|e| format!("overlay: {e}"))?;
            // The surface changes from what was committed last, whatever this buffer held.
            let rects: Vec<(i32, i32, i32, i32)> =
                damage(&overlay.committed, &new, layout.width, layout.height)
                    .iter()
                    .map(|r| (r.x, r.y, r.width, r.height))
                    .collect();
            // The first commit maps the (transparent) overlay: damage all of it.
            let first = overlay.chain.stats().submitted == 0;
            if first || !rects.is_empty() {
                overlay
                    .chain
                    .present(
                        index,
                        &overlay.surface,
                        if first { &[] } else { &rects },
                        &qh,
                    )
                    .map_err(|e| e.to_string())?;
                overlay.shown[index] = new.clone();
                overlay.committed = new;
            } else {
                overlay.shown[index] = new;
            }
        }

        // Stats.
        let now = Instant::now();
        if let Some(since) = stats.since
            && now - since >= Duration::from_secs(1)
        {
            if args.stats {
                println!("{}", stats_line(&stats, &video, &st, since, now));
            }
            stats.frames_at = stats.frames;
            stats.detections_at = stats.detections;
            stats.time_at = stats.detector_time;
            stats.since = Some(now);
        }
        let done = window.closed()
            || (args.frames > 0 && stats.frames >= args.frames)
            || (args.seconds > 0 && started.elapsed() >= Duration::from_secs(args.seconds));
        if done {
            let since = stats.since.unwrap_or(started);
            stats.frames_at = 0;
            stats.detections_at = 0;
            stats.time_at = Duration::ZERO;
            let mut total = stats_line(&stats, &video, &st, since, now);
            total = total.replacen("STATS", "STATS-TOTAL", 1);
            println!("{total}");
            let _ = std::io::Write::flush(&mut std::io::stdout());
            return Ok(());
        }

        // Wait for the compositor, the camera, the detector, or the picture's next frame.
        let _ = std::io::Write::flush(&mut std::io::stdout());
        queue.flush().map_err(|e| format!("Wayland: {e}"))?;
        let timeout = match &video {
            Video::Picture { next, .. } => next.saturating_duration_since(Instant::now()),
            Video::Camera(_) => Duration::from_millis(100),
        }
        .min(Duration::from_millis(100));
        if let Some(guard) = queue.prepare_read() {
            let conn_fd = guard.connection_fd();
            let camera_fd = match &video {
                Video::Camera(cam) => Some(cam.poll_fd()),
                Video::Picture { .. } => None,
            };
            let wake_fd = worker.as_ref().map(|w| w.wake.as_fd());
            let mut fds = vec![PollFd::new(&conn_fd, PollFlags::IN)];
            fds.extend(camera_fd.as_ref().map(|fd| PollFd::new(fd, PollFlags::IN)));
            fds.extend(wake_fd.as_ref().map(|fd| PollFd::new(fd, PollFlags::IN)));
            let ts = rustix::time::Timespec {
                tv_sec: timeout.as_secs() as i64,
                tv_nsec: i64::from(timeout.subsec_nanos()),
            };
            match poll(&mut fds, Some(&ts)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(format!("poll: {e}")),
            }
            let readable = fds[0].revents().contains(PollFlags::IN);
            drop(fds);
            if readable {
                match guard.read() {
                    Ok(_) => {}
                    // Readable, but another reader (or a spurious wake-up) took the data.
                    Err(wayland_client::backend::WaylandError::Io(e))
                        if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(format!("Wayland: {e}")),
                }
            }
        }
        queue
            .dispatch_pending(&mut st)
            .map_err(|e| format!("Wayland: {e}"))?;
    }
}

fn stats_line(stats: &Stats, video: &Video, st: &State, since: Instant, now: Instant) -> String {
    let secs = (now - since).as_secs_f64().max(1e-3);
    let detections = stats.detections - stats.detections_at;
    let detector_ms = if detections > 0 {
        (stats.detector_time - stats.time_at).as_secs_f64() * 1000.0 / detections as f64
    } else {
        0.0
    };
    let (presented, zero_copy) = match video {
        Video::Picture { chain, .. } => {
            let s = chain.stats();
            (s.presented, s.zero_copy)
        }
        Video::Camera(_) => (st.presented, st.zero_copy),
    };
    let share = if presented > 0 {
        zero_copy as f64 * 100.0 / presented as f64
    } else {
        0.0
    };
    // Copies of a frame on its way to the compositor: wl_shm hands the compositor memory it must
    // copy from (or upload); the library counts every CPU copy into a dma-buf it makes.
    let shm_copies = match video {
        Video::Picture { chain, .. } if !chain.decision().path.zero_copy() => 1,
        _ => 0,
    };
    let library_copies = wayheap::accounting::copies().0;
    // Camera: linux-dmabuf imports made (one per capture buffer when the cache works).
    let imports = match video {
        Video::Camera(c) => format!(" imports={} damaged={}", c.imports(), stats.damaged),
        Video::Picture { .. } => String::new(),
    };
    let copies_per_frame = shm_copies + library_copies / stats.frames.max(1);
    format!(
        "STATS fps={:.1} detector_ms={detector_ms:.0} detector_fps={:.1} skipped={} copies_per_frame={copies_per_frame} zero_copy={zero_copy}/{presented} ({share:.0}%) frames={}{imports}",
        (stats.frames - stats.frames_at) as f64 / secs,
        detections as f64 / secs,
        stats.skipped,
        stats.frames,
    )
}
