//! compositor-demo: a Smithay compositor that puts client dma-bufs straight onto KMS planes.
//!
//! Backends: `kms` (a DRM device through a libseat session; client buffers on primary, overlay
//! and cursor planes via wayheap's PRIME exporter), `headless` (composition in memory) and
//! `nested` (a window in an X11 or Wayland session). What is not on a plane is composed with
//! GLES when EGL is available, and with pixman otherwise (`--renderer`).
//! It explains every surface's placement (log, `--stats`, `--state-file`) and writes screenshots.

mod cursor;
mod desktop;
mod headless;
mod input;
mod kms;
mod nested;
mod profile;
mod report;
mod run_command;
mod state;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calloop::signals::{Signal, Signals};
use calloop::timer::{TimeoutAction, Timer};
use clap::{Parser, ValueEnum};
use smithay::output::Output;
use smithay::reexports::calloop::{EventLoop, Interest, Mode, PostAction, generic::Generic};
use smithay::reexports::wayland_server::Display;
use wayheap::smithay::{ClientListener, ShmScanout};

use crate::kms::FrameOutcome;
use crate::state::{App, ClientState};

/// A Smithay compositor that puts client dma-bufs straight onto KMS planes (wayheap demo).
///
/// Clients connect to the Wayland socket it prints (or are started with --run). Every surface's
/// placement — on a plane, or composited and why — is logged when it changes.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// Where to show the output: `kms` (a DRM device, needs a libseat session), `headless`
    /// (compose in memory), `nested` (a window in an X11 or Wayland session, GLES), or `auto`:
    /// nested inside a desktop session (WAYLAND_DISPLAY or DISPLAY set), KMS on a console with
    /// a DRM device, headless otherwise.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    backend: BackendChoice,

    /// What composes the surfaces that are not on a plane: `gles` (EGL: on the DRM device for
    /// kms, surfaceless for headless), `pixman` (CPU; imports dma-bufs by mmap with sync), or
    /// `auto`: GLES when EGL is available, pixman otherwise (the reason is logged and in the
    /// state file). The nested backend always uses GLES.
    #[arg(long, value_enum, default_value_t = RendererArg::Auto)]
    renderer: RendererArg,

    /// The DRM device for --backend kms (default: the first card with a connected connector).
    #[arg(long, value_name = "PATH")]
    device: Option<PathBuf>,

    /// Output size for the headless backend, and the nested backend's initial window size.
    #[arg(long, value_name = "WxH", default_value = "1024x768", value_parser = parse_size)]
    size: (i32, i32),

    /// KMS: the display mode's size (default: the connector's preferred mode). A client buffer
    /// of exactly this size, opaque, can be scanned out from the primary plane, e.g. a camera
    /// frame under an overlay on planes without zpos.
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    mode: Option<(i32, i32)>,

    /// Start CMD (through `sh -c`) with WAYLAND_DISPLAY set; the compositor exits when it does,
    /// with its exit status.
    #[arg(long, value_name = "CMD")]
    run: Option<String>,

    /// With --run: a kiosk. The application is started again a second after it exits, however
    /// it exits, and the compositor never ends with it.
    #[arg(long, requires = "run")]
    kiosk: bool,

    /// Write a PNG of the composed output here: on SIGUSR1, and when the compositor exits.
    /// Headless: the render target. KMS: captured through the writeback connector. Nested: the
    /// window's buffer, read before it is shown.
    #[arg(long, value_name = "PATH")]
    screenshot: Option<PathBuf>,

    /// Keep the machine-readable state (placements and reasons, frames, clients) in this JSON file.
    #[arg(long, value_name = "PATH")]
    state_file: Option<PathBuf>,

    /// Print a one-line summary of placements and frame rate every second.
    #[arg(long)]
    stats: bool,

    /// Measure the thread CPU of each section of the frame path (two clock reads per section)
    /// and report the totals in the state file's `cpu_us`.
    #[arg(long)]
    cpu_profile: bool,

    /// Compose everything: never put a client buffer on a plane (to compare).
    #[arg(long)]
    no_planes: bool,

    /// Compose wl_shm buffers: never export their pools through /dev/udmabuf for scan-out (to
    /// compare; by default a pool the client sealed against shrinking reaches planes too).
    #[arg(long)]
    no_shm_scanout: bool,

    /// The planes read only physically contiguous memory, as on a display engine without an
    /// IOMMU: client buffers of other memory (system heap, udmabuf) are composited, with that
    /// reason, and the heap hints name the CMA heap.
    #[arg(long)]
    contiguous_scanout: bool,

    /// Do not offer the wayheap_heap_hints_v1 global (clients then choose memory from
    /// linux-dmabuf feedback alone).
    #[arg(long)]
    no_heap_hints: bool,

    /// Delegated allocation (wayheap_heap_hints_v1): what one client may hold, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    delegated_quota: u64,

    /// Delegated allocation: what all clients together may hold, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 128)]
    delegated_total: u64,

    /// Delegated allocation: the largest single buffer, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    delegated_max: u64,

    /// The Wayland socket name (default: the first free wayland-N).
    #[arg(long, value_name = "NAME")]
    socket: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendChoice {
    Auto,
    Kms,
    Headless,
    Nested,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RendererArg {
    Auto,
    Gles,
    Pixman,
}

impl From<RendererArg> for wayheap::smithay::renderer::RendererChoice {
    fn from(r: RendererArg) -> Self {
        use wayheap::smithay::renderer::RendererChoice as C;
        match r {
            RendererArg::Auto => C::Auto,
            RendererArg::Gles => C::Gles,
            RendererArg::Pixman => C::Pixman,
        }
    }
}

fn parse_size(s: &str) -> Result<(i32, i32), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or("expected WIDTHxHEIGHT, e.g. 1024x768")?;
    let w: i32 = w.parse().map_err(|_| format!("bad width {w:?}"))?;
    let h: i32 = h.parse().map_err(|_| format!("bad height {h:?}"))?;
    if !(16..=8192).contains(&w) || !(16..=8192).contains(&h) {
        return Err("sizes from 16x16 to 8192x8192".into());
    }
    Ok((w, h))
}

/// The running backend.
pub(crate) enum Backend {
    Headless(Box<headless::Headless>),
    Kms(Box<kms::Kms>),
    Nested(Box<nested::Nested>),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Headless(_) => "headless",
            Backend::Kms(_) => "kms",
            Backend::Nested(_) => "nested",
        }
    }

    fn renderer(&self) -> &report::RendererInfo {
        match self {
            Backend::Headless(h) => &h.info,
            Backend::Kms(k) => &k.info,
            Backend::Nested(n) => &n.info,
        }
    }
}

/// Everything the event loop callbacks reach.
pub(crate) struct Demo {
    pub app: App,
    pub backend: Backend,
    pub args: Arc<ArgsView>,
    pub run: Option<run_command::RunCommand>,
    pub exit_code: u8,
    /// The last state written (frame count blanked) and when.
    pub last_state: Option<(serde_json::Value, Instant)>,
    /// Frames are rendered after each round of events (KMS), not on a timer.
    pub event_driven: bool,
    /// The event loop, for one-shot timers.
    pub handle: calloop::LoopHandle<'static, Demo>,
    /// Frame callbacks are due from a timer (after a frame that changed nothing).
    pub callbacks_armed: bool,
    /// Client requests were dispatched in this round of events.
    pub clients_dispatched: bool,
    /// The first frame showing a client surface was reported.
    pub first_client_frame: bool,
}

/// The parts of the arguments the loop needs.
#[derive(Debug)]
pub struct ArgsView {
    pub screenshot: Option<PathBuf>,
    pub state_file: Option<PathBuf>,
    pub stats: bool,
    pub no_planes: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,smithay=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    profile::enable(args.cpu_profile);
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(msg) => {
            eprintln!("compositor-demo: {msg}");
            ExitCode::from(1)
        }
    }
}

/// The backends to try, in order: the one asked for, or for `auto` a window inside a desktop
/// session (unless a DRM device or the pixman renderer was asked for, which only KMS or
/// headless use), KMS when there is a DRM card, and headless last. A candidate that fails is
/// logged and the next one tried.
fn backend_candidates(args: &Args) -> Vec<BackendChoice> {
    if args.backend != BackendChoice::Auto {
        return vec![args.backend];
    }
    let in_desktop =
        std::env::var_os("WAYLAND_DISPLAY").is_some() || std::env::var_os("DISPLAY").is_some();
    let mut v = Vec::new();
    if in_desktop && args.device.is_none() && args.renderer != RendererArg::Pixman {
        v.push(BackendChoice::Nested);
    }
    if kms::find_card(args.device.as_deref()).is_some() {
        v.push(BackendChoice::Kms);
    }
    v.push(BackendChoice::Headless);
    v
}

/// Opens one backend and its output.
fn open_backend(
    choice: BackendChoice,
    args: &Args,
    handle: &calloop::LoopHandle<'static, Demo>,
    shm: Option<&ShmScanout>,
) -> Result<(Backend, Output), String> {
    match choice {
        BackendChoice::Kms => {
            let (kms, output) = kms::Kms::new(
                args.device.as_deref(),
                handle,
                args.contiguous_scanout,
                args.mode,
                args.renderer.into(),
                shm.cloned(),
            )?;
            Ok((Backend::Kms(Box::new(kms)), output))
        }
        BackendChoice::Nested => {
            if args.renderer == RendererArg::Pixman {
                return Err(
                    "--backend nested draws with GLES into its window: --renderer pixman is for \
                     kms and headless"
                        .into(),
                );
            }
            let (w, h) = args.size;
            let (nested, output) = nested::Nested::new(w, h, handle)?;
            Ok((Backend::Nested(Box::new(nested)), output))
        }
        BackendChoice::Headless | BackendChoice::Auto => {
            let (w, h) = args.size;
            let output = headless::virtual_output("headless", (w, h).into());
            let headless = headless::Headless::new(w, h, args.renderer.into())?;
            Ok((Backend::Headless(Box::new(headless)), output))
        }
    }
}

fn run(args: Args) -> Result<u8, String> {
    let candidates = backend_candidates(&args);
    let mut event_loop: EventLoop<Demo> =
        EventLoop::try_new().map_err(|e| format!("event loop: {e}"))?;
    let display: Display<App> = Display::new().map_err(|e| format!("wayland display: {e}"))?;
    let dh = display.handle();

    match wayheap::smithay::raise_fd_limit() {
        Ok((before, after)) => {
            tracing::info!(before = ?before.current, after = ?after.current, "file descriptor limit")
        }
        Err(e) => tracing::warn!(%e, "could not raise the file descriptor limit"),
    }
    let socket = match &args.socket {
        Some(name) => ClientListener::with_name(name),
        None => ClientListener::new_auto(),
    }
    .map_err(|e| format!("wayland socket: {e}"))?;
    let socket_name = socket.socket_name().to_os_string();
    event_loop
        .handle()
        .insert_source(socket, |stream, _, demo| {
            if let Err(e) = demo
                .app
                .display
                .insert_client(stream, Arc::new(ClientState::default()))
            {
                tracing::warn!(%e, "could not add a client");
            }
        })
        .map_err(|e| format!("socket source: {e}"))?;
    event_loop
        .handle()
        .insert_source(
            Generic::new(display, Interest::READ, Mode::Level),
            |_, display, demo| {
                // SAFETY: the display is not dropped while the event loop runs; dispatch is the only
                // use of the mutable reference.
                profile::section("dispatch", || unsafe {
                    if let Err(e) = display.get_mut().dispatch_clients(&mut demo.app) {
                        tracing::warn!(%e, "dispatching clients failed");
                    }
                });
                demo.clients_dispatched = true;
                Ok(PostAction::Continue)
            },
        )
        .map_err(|e| format!("display source: {e}"))?;

    let view = Arc::new(ArgsView {
        screenshot: args.screenshot.clone(),
        state_file: args.state_file.clone(),
        stats: args.stats,
        no_planes: args.no_planes,
    });

    // wl_shm pools onto planes through udmabuf, unless everything is composited anyway.
    let shm_scanout = (!args.no_shm_scanout && !args.no_planes).then(ShmScanout::new);
    let mut opened = None;
    for (i, &choice) in candidates.iter().enumerate() {
        match open_backend(choice, &args, &event_loop.handle(), shm_scanout.as_ref()) {
            Ok((backend, output)) => {
                opened = Some((choice, backend, output));
                break;
            }
            Err(e) if i + 1 < candidates.len() => {
                tracing::warn!(backend = ?choice, %e, "--backend auto: trying the next backend");
            }
            Err(e) => return Err(e),
        }
    }
    // (The last candidate's error is returned above; this is for an empty list, which
    // backend_candidates never makes.)
    let (choice, mut backend, output) = opened.ok_or("no backend to open")?;

    let heaps = wayheap::heap::HeapDir::default();
    let hints = wayheap::smithay::heap_hints::HeapHintsConfig {
        max_size: args.delegated_max.saturating_mul(1 << 20),
        quota: args.delegated_quota.saturating_mul(1 << 20),
        total_quota: args.delegated_total.saturating_mul(1 << 20),
        heaps: heaps.clone(),
        ..Default::default()
    };
    let mut app = state::new_app(
        dh.clone(),
        socket_name.clone(),
        event_loop.get_signal(),
        output,
        hints,
    );
    app.hint_config = state::HintConfig {
        cma: heaps.cma_heap(),
        system: heaps.root().join("system").exists(),
        overlays: matches!(&backend, Backend::Kms(k) if k.has_overlays()) && !args.no_planes,
        contiguous_only: args.contiguous_scanout,
    };
    if let Backend::Kms(k) = &backend {
        app.placements = k.placement_tracker(!args.no_planes);
        app.shm_scanout = shm_scanout;
    }
    app.add_keyboard();
    if args.no_heap_hints {
        dh.remove_global::<App>(app.heap_hints.global());
    }
    let formats = match &mut backend {
        Backend::Headless(h) => h.dmabuf_formats(),
        Backend::Kms(k) => k.renderer_dmabuf_formats(),
        Backend::Nested(n) => n.dmabuf_formats(),
    };
    app.dmabuf_formats = formats.clone();
    app.dmabuf_global = Some(match &mut backend {
        Backend::Kms(k) => k.create_dmabuf_global(&mut app.dmabuf_state, &dh, formats)?,
        Backend::Headless(_) | Backend::Nested(_) => {
            app.dmabuf_state.create_global::<App>(&dh, formats)
        }
    });

    let info = backend.renderer();
    if !info.why.is_empty() {
        tracing::info!(why = %info.why, "no GLES: composing with pixman");
    }
    println!(
        "compositor-demo: backend {choice:?}, renderer {} ({}), WAYLAND_DISPLAY={}",
        info.name,
        info.detail,
        socket_name.to_string_lossy()
    );

    let run = match &args.run {
        Some(cmd) => Some(run_command::RunCommand::start(
            cmd,
            socket_name.clone(),
            args.kiosk,
        )?),
        None => None,
    };

    let signals = Signals::new(&[
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ])
    .map_err(|e| format!("signals: {e}"))?;
    event_loop
        .handle()
        .insert_source(signals, |ev, _, demo| match ev.signal() {
            Signal::SIGUSR1 => {
                demo.app.screenshot_requested = true;
                demo.app.dirty = true;
            }
            // Every window is asked to close (xdg_toplevel.close), as a window manager's close
            // button or a kiosk's session end does: applications save and exit on their own.
            Signal::SIGUSR2 => demo.app.close_windows(),
            sig => {
                tracing::info!(?sig, "shutting down");
                demo.app.screenshot_requested = false;
                demo.app.loop_signal.stop();
            }
        })
        .map_err(|e| format!("signal source: {e}"))?;

    // Repaint. KMS renders right after the events that call for it (a client's commit, the
    // vblank that ends a pending flip), from `after_dispatch`: no polling, so an idle or slow
    // client costs no wake-ups. Backends without a vblank (headless, nested) get a 16 ms tick.
    let event_driven = matches!(backend, Backend::Kms(_));
    event_loop
        .handle()
        .insert_source(Timer::immediate(), move |_, _, demo| {
            demo.tick();
            if event_driven {
                // Only the first frame (the mode set, the background) comes from here.
                TimeoutAction::Drop
            } else {
                TimeoutAction::ToDuration(Duration::from_millis(16))
            }
        })
        .map_err(|e| format!("timer: {e}"))?;

    // Twice a second: delegated buffers nobody holds any more are freed, and the state file
    // follows what changes without a frame (delegated memory, clients).
    event_loop
        .handle()
        .insert_source(
            Timer::from_duration(Duration::from_millis(500)),
            |_, _, demo| {
                profile::section("reclaim", || {
                    demo.app.heap_hints.reclaim();
                    demo.app.delegated = demo.app.heap_hints.usage();
                    demo.write_state();
                });
                TimeoutAction::ToDuration(Duration::from_millis(500))
            },
        )
        .map_err(|e| format!("reclaim timer: {e}"))?;

    if args.stats {
        let mut last = (Instant::now(), 0u64);
        event_loop
            .handle()
            .insert_source(
                Timer::from_duration(Duration::from_secs(1)),
                move |_, _, demo| {
                    let fps = (demo.app.frames - last.1) as f64 / last.0.elapsed().as_secs_f64();
                    last = (Instant::now(), demo.app.frames);
                    println!("{}", report::stats_line(&demo.app, fps));
                    TimeoutAction::ToDuration(Duration::from_secs(1))
                },
            )
            .map_err(|e| format!("stats timer: {e}"))?;
    }

    let mut demo = Demo {
        app,
        backend,
        args: view,
        run,
        exit_code: 0,
        last_state: None,
        event_driven,
        handle: event_loop.handle(),
        callbacks_armed: false,
        clients_dispatched: true,
        first_client_frame: false,
    };
    event_loop
        .run(None, &mut demo, |demo| {
            profile::section("loop", || demo.after_dispatch())
        })
        .map_err(|e| format!("event loop: {e}"))?;

    // Leaving: the last screenshot, then the child.
    if demo.args.screenshot.is_some() {
        demo.app.screenshot_requested = true;
        demo.app.dirty = true;
        demo.tick();
        // A pending flip defers the capture to its vblank: let that come (a second at most).
        for _ in 0..20 {
            if !demo.app.screenshot_requested {
                break;
            }
            if let Err(e) = event_loop.dispatch(Some(Duration::from_millis(50)), &mut demo) {
                tracing::warn!(%e, "waiting for the last vblank");
                break;
            }
            demo.tick();
        }
    }
    if let Some(run) = demo.run.as_mut() {
        run.stop();
    }
    Ok(demo.exit_code)
}

/// A frame of a backend without planes (headless, nested): every surface is composited, which
/// the placements say. `NotRendered` when the frame failed (logged).
fn composited(
    app: &mut App,
    frame: Result<smithay::backend::renderer::element::RenderElementStates, String>,
) -> FrameOutcome {
    match frame {
        Ok(states) => {
            let surfaces = app
                .space
                .elements()
                .flat_map(wayheap::smithay::window_surfaces);
            app.placements
                .update_composited(&states, &app.output, surfaces);
            report::placements_changed(app);
            FrameOutcome::Queued
        }
        Err(e) => {
            tracing::error!(%e, "render failed");
            FrameOutcome::NotRendered
        }
    }
}

/// How often the state file is rewritten when only the frame count changed (a placement or any
/// other change writes it at once). Writing it costs about as much CPU as a frame's plane
/// assignment in the guest, so not several times a second.
const STATE_INTERVAL: Duration = Duration::from_secs(1);

impl Demo {
    /// After each round of events: the space's bookkeeping, a frame if one is due (KMS), replies
    /// flushed, the `--run` child.
    fn after_dispatch(&mut self) {
        // Windows and popups change only through client requests: not after a vblank or a
        // timer.
        if std::mem::take(&mut self.clients_dispatched) {
            profile::section("refresh", || {
                self.app.space.refresh();
                self.app.popups.cleanup();
            });
        }
        if self.event_driven {
            self.tick();
        }
        profile::section("flush", || {
            let _ = self.app.display.flush_clients();
        });
        if let Some(run) = self.run.as_mut()
            && let Some(status) = run.exited()
        {
            if run.kiosk() {
                tracing::warn!(%status, restarts = run.restarts, "--kiosk: the application exited; starting it again in 1 s");
                let again = calloop::timer::Timer::from_duration(Duration::from_secs(1));
                let inserted = self.handle.insert_source(again, |_, _, demo| {
                    if let Some(run) = demo.run.as_mut()
                        && let Err(e) = run.restart()
                    {
                        tracing::error!(%e, "--kiosk: starting the application again failed");
                    }
                    calloop::timer::TimeoutAction::Drop
                });
                if let Err(e) = inserted {
                    tracing::error!(%e, "--kiosk: no timer to start the application again");
                }
            } else {
                tracing::info!(%status, "--run command exited");
                self.exit_code = status.code().map_or(1, |c| c.clamp(0, 255) as u8);
                self.app.loop_signal.stop();
            }
        }
    }

    /// One repaint opportunity: render if something changed, then take a pending screenshot.
    fn tick(&mut self) {
        if !self.app.dirty && self.app.flush_frames > 0 {
            self.app.flush_frames -= 1;
            self.app.dirty = true;
        }
        // The capture first: right after a vblank no flip is pending, and the writeback commit
        // then sees the frame just shown (a client that redraws every frame keeps one pending).
        if self.app.screenshot_requested {
            self.take_screenshot();
        }
        if self.app.dirty {
            self.render();
        }
    }

    fn render(&mut self) {
        profile::section("render", || self.render_frame());
    }

    fn render_frame(&mut self) {
        let outcome = match &mut self.backend {
            Backend::Kms(k) => k.render(&mut self.app, !self.args.no_planes),
            Backend::Headless(h) => {
                let frame = h.render(&self.app);
                composited(&mut self.app, frame)
            }
            Backend::Nested(n) => {
                let frame = n.render(&self.app, false).map(|(states, _)| states);
                composited(&mut self.app, frame)
            }
        };
        match outcome {
            FrameOutcome::NotRendered => return,
            // No flip, so no vblank: frame callbacks sent now would let a client that commits
            // without changes spin. They go out one refresh later, as if a flip had happened.
            FrameOutcome::Unchanged if self.event_driven => self.frame_callbacks_later(),
            FrameOutcome::Unchanged | FrameOutcome::Queued => self.send_frame_callbacks(),
        }
        self.app.dirty = false;
        self.app.frames += 1;
        if !self.first_client_frame && self.app.placements.iter().next().is_some() {
            self.first_client_frame = true;
            println!("{}", report::first_client_frame(self.app.start.elapsed()));
        }
        // The state file after a frame only when a placement changed or it is due: not the
        // whole JSON on every frame.
        let due = self
            .last_state
            .as_ref()
            .is_none_or(|(_, at)| at.elapsed() > STATE_INTERVAL);
        if due || !self.app.placements.changes().is_empty() {
            profile::section("state", || self.write_state());
        }
    }

    /// Tells every window's surfaces, the cursor's and a drag icon's that now is a good time
    /// to draw their next frame.
    fn send_frame_callbacks(&mut self) {
        let time = self.app.start.elapsed();
        let output = self.app.output.clone();
        for w in self.app.space.elements() {
            w.send_frame(&output, time, Some(Duration::ZERO), |_, _| {
                Some(output.clone())
            });
        }
        let cursor = match &self.app.cursor {
            smithay::input::pointer::CursorImageStatus::Surface(s) => Some(s),
            _ => None,
        };
        for surface in cursor.into_iter().chain(&self.app.dnd_icon) {
            smithay::desktop::utils::send_frames_surface_tree(
                surface,
                &output,
                time,
                Some(Duration::ZERO),
                |_, _| Some(output.clone()),
            );
        }
    }

    /// Frame callbacks after one refresh interval (once, however many frames ask).
    fn frame_callbacks_later(&mut self) {
        if self.callbacks_armed {
            return;
        }
        let refresh = match &self.backend {
            Backend::Kms(k) => k.refresh(),
            _ => Duration::from_millis(16),
        };
        let timer = Timer::from_duration(refresh);
        match self.handle.insert_source(timer, |_, _, demo| {
            demo.callbacks_armed = false;
            demo.send_frame_callbacks();
            TimeoutAction::Drop
        }) {
            Ok(_) => self.callbacks_armed = true,
            Err(e) => {
                tracing::warn!(%e, "frame callback timer: sending them now");
                self.send_frame_callbacks();
            }
        }
    }

    /// Rewrites the state file when something in it other than the frame count changed, and
    /// otherwise at most once a second: no file I/O on every frame of a busy client. Called after
    /// each frame and from the reclaim timer (delegated memory, refreshed there, changes without
    /// a frame).
    fn write_state(&mut self) {
        let Some(path) = &self.args.state_file else {
            return;
        };
        let mut json = report::state_json(&self.app, self.backend.name());
        json["renderer"] = self.backend.renderer().json();
        if let Some(cpu) = profile::json() {
            json["cpu_us"] = cpu;
        }
        if let Some(run) = &self.run {
            json["run_restarts"] = run.restarts.into();
        }
        match &self.backend {
            Backend::Kms(k) => {
                json["live_framebuffers"] = k.live_framebuffers().into();
                json["plane_colours"] = k
                    .plane_colours()
                    .into_iter()
                    .map(|(e, r)| format!("{e}, {r}"))
                    .collect::<Vec<_>>()
                    .into();
                json["live_shm_exports"] = self
                    .app
                    .shm_scanout
                    .as_ref()
                    .map_or(0, ShmScanout::live_exports)
                    .into();
            }
            Backend::Nested(n) => json["window_system"] = n.host.into(),
            Backend::Headless(_) => {}
        }
        let mut key = json.clone();
        key["frames"] = serde_json::Value::Null;
        key["cpu_us"] = serde_json::Value::Null;
        let changed = self
            .last_state
            .as_ref()
            .is_none_or(|(k, at)| *k != key || at.elapsed() > STATE_INTERVAL);
        if changed {
            if let Err(e) = report::write_json(path, &json) {
                tracing::warn!(%e, path = %path.display(), "writing the state file failed");
            }
            self.last_state = Some((key, Instant::now()));
        }
    }

    fn take_screenshot(&mut self) {
        let Some(path) = self.args.screenshot.clone() else {
            self.app.screenshot_requested = false;
            return;
        };
        let shot = match &mut self.backend {
            Backend::Headless(h) => h.snapshot(),
            Backend::Kms(k) => k.writeback_snapshot(),
            // The window's buffer is read as it is drawn: a full redraw, read before the swap.
            Backend::Nested(n) => n
                .render(&self.app, true)
                .and_then(|(_, shot)| shot.ok_or_else(|| "no snapshot".into())),
        };
        match shot {
            Err(e) if e == kms::PENDING => {} // after the next vblank
            Err(e) => {
                self.app.screenshot_requested = false;
                tracing::error!(%e, "screenshot failed");
            }
            Ok((w, h, rgba)) => {
                self.app.screenshot_requested = false;
                match report::write_png(&path, w, h, &rgba) {
                    Ok(()) => tracing::info!(path = %path.display(), "screenshot written"),
                    Err(e) => tracing::error!(%e, "screenshot failed"),
                }
            }
        }
    }
}
