//! The compositor's state and its Wayland protocol handlers. Backends (headless, KMS) render it.

use std::ffi::OsString;
use std::time::Instant;

use smithay::backend::allocator::Format;
use smithay::backend::allocator::dmabuf::Dmabuf;
use smithay::backend::allocator::format::FormatSet;
use smithay::backend::renderer::utils::on_commit_buffer_handler;
use smithay::desktop::{PopupManager, Space, Window};
use smithay::input::pointer::{CursorImageStatus, MotionEvent};
use smithay::input::{Seat, SeatHandler, SeatState};
use smithay::output::Output;
use smithay::reexports::calloop::LoopSignal;
use smithay::reexports::wayland_server::backend::{ClientData, ClientId, DisconnectReason};
use smithay::reexports::wayland_server::protocol::{wl_buffer, wl_surface::WlSurface};
use smithay::reexports::wayland_server::{Client, DisplayHandle, Resource};
use smithay::utils::{Clock, Monotonic, Serial};
use smithay::wayland::buffer::BufferHandler;
use smithay::wayland::compositor::{
    CompositorClientState, CompositorHandler, CompositorState, get_parent, is_sync_subsurface,
};
use smithay::wayland::dmabuf::{DmabufGlobal, DmabufHandler, DmabufState, ImportNotifier};
use smithay::wayland::output::{OutputHandler, OutputManagerState};
use smithay::wayland::presentation::PresentationState;
use smithay::wayland::shell::xdg::{
    PopupSurface, PositionerState, ToplevelSurface, XdgShellHandler, XdgShellState,
};
use smithay::wayland::shm::{ShmHandler, ShmState};
use smithay::wayland::single_pixel_buffer::SinglePixelBufferState;
use smithay::wayland::viewporter::ViewporterState;
use smithay::{
    delegate_output, delegate_presentation, delegate_seat, delegate_single_pixel_buffer,
    delegate_viewporter,
};
use wayheap::smithay::colour_representation::ColourRepresentationState;
use wayheap::smithay::guards::DmabufQuota;
use wayheap::smithay::heap_hints::{
    ClientUsage, HeapHint, HeapHintsHandler, HeapHintsState, HintTarget,
};
use wayheap::smithay::{Placement, PlacementTracker, PlaneKind, Reason, validate_client_dmabuf};

/// Per-client data.
#[derive(Debug, Default)]
pub struct ClientState {
    pub compositor_state: CompositorClientState,
    /// Counted in [`CONNECTED_CLIENTS`]; a client is uncounted once however often it is
    /// reported gone.
    counted: std::sync::atomic::AtomicBool,
}

/// Client dma-bufs refused, and why: the latest [`Rejections::KEPT`] and a count of all, so a
/// client refused in a loop cannot grow the compositor (or its state file) without bound.
#[derive(Debug, Default)]
pub struct Rejections {
    recent: std::collections::VecDeque<String>,
    total: u64,
}

impl Rejections {
    /// How many reasons are kept.
    pub const KEPT: usize = 32;

    /// Records one refusal.
    pub fn push(&mut self, why: String) {
        if self.recent.len() == Self::KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back(why);
        self.total += 1;
    }

    /// The latest reasons, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = &str> {
        self.recent.iter().map(String::as_str)
    }

    /// Refusals since start.
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// Clients connected now.
pub static CONNECTED_CLIENTS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

impl ClientData for ClientState {
    fn initialized(&self, client_id: ClientId) {
        if !self
            .counted
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            CONNECTED_CLIENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        tracing::info!(?client_id, "client connected");
    }
    fn disconnected(&self, client_id: ClientId, reason: DisconnectReason) {
        if self
            .counted
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            CONNECTED_CLIENTS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        tracing::info!(?client_id, ?reason, "client disconnected");
    }
}

/// What the backend must do for the protocol side.
pub trait DmabufImporter {
    /// Imports a validated client dma-buf (for composition); false if it cannot be used.
    fn import_dmabuf(&mut self, dmabuf: &Dmabuf) -> bool;
}

/// The compositor.
pub(crate) struct App {
    pub start: Instant,
    // Held for its global: dropping the state would withdraw the protocol.
    #[allow(dead_code)]
    pub clock: Clock<Monotonic>,
    pub display: DisplayHandle,
    pub socket_name: OsString,
    pub loop_signal: LoopSignal,
    pub space: Space<Window>,
    pub popups: PopupManager,
    pub output: Output,

    pub compositor_state: CompositorState,
    pub xdg_shell_state: XdgShellState,
    pub shm_state: ShmState,
    // Held for its global: dropping the state would withdraw the protocol.
    #[allow(dead_code)]
    pub output_manager_state: OutputManagerState,
    pub seat_state: SeatState<App>,
    pub seat: Seat<App>,
    // Held for its global: dropping the state would withdraw the protocol.
    #[allow(dead_code)]
    pub viewporter_state: ViewporterState,
    // Held for its global: dropping the state would withdraw the protocol.
    #[allow(dead_code)]
    pub presentation_state: PresentationState,
    // Held for its global: dropping the state would withdraw the protocol.
    #[allow(dead_code)]
    pub single_pixel_state: SinglePixelBufferState,
    pub dmabuf_state: DmabufState,
    pub dmabuf_global: Option<DmabufGlobal>,
    /// Formats + modifiers the dmabuf global advertises.
    pub dmabuf_formats: FormatSet,
    /// Set by the backend: imports client dma-bufs for composition.
    pub importer: Option<Box<dyn DmabufImporter>>,

    /// Something changed since the last frame.
    pub dirty: bool,
    /// Frames still to render after a surface went away, so that the planes and the
    /// compositor's frame history let go of its buffers.
    pub flush_frames: u8,
    /// Frames rendered.
    pub frames: u64,
    /// Where each surface was shown in the last frame, why, and its feedback (the backend
    /// sets the tracker for its planes).
    pub placements: PlacementTracker,
    /// Clipboard, primary selection, decorations, activation, fractional scale.
    pub desktop: crate::desktop::Desktop,
    /// wl_shm buffers exported for scan-out (KMS, unless off), released with their buffers.
    pub shm_scanout: Option<wayheap::smithay::ShmScanout>,
    /// Client dma-bufs refused, and why.
    pub rejections: Rejections,
    /// Live client dma-bufs per client, bounded.
    pub dmabuf_quota: DmabufQuota,
    /// A screenshot was asked for (SIGUSR1 or --screenshot at exit).
    pub screenshot_requested: bool,
    /// What the pointer looks like (a client's cursor surface, or a shape it named).
    pub cursor: CursorImageStatus,
    /// The icon of the drag in progress (a client's surface, drawn at the pointer).
    pub dnd_icon: Option<WlSurface>,
    /// Keys whose press the compositor kept (Ctrl+Alt+Fn): their release is kept too.
    pub intercepted_keys: std::collections::HashSet<smithay::input::keyboard::Keycode>,
    /// The XCursor theme named cursors (`wp_cursor_shape_v1`) are drawn from.
    pub cursor_theme: crate::cursor::CursorTheme,
    /// The `wp_cursor_shape_v1` global.
    #[allow(dead_code)] // held for its global
    pub cursor_shape: smithay::wayland::cursor_shape::CursorShapeManagerState,
    /// Where the pointer is: the output's centre (the demo has no input devices).
    pub pointer_location: smithay::utils::Point<f64, smithay::utils::Logical>,
    /// The `wayheap_heap_hints_v1` server: which heap reaches a plane, delegated allocation.
    pub heap_hints: HeapHintsState,
    /// The `wp_color_representation_v1` server: each surface's YUV matrix and range.
    #[allow(dead_code)] // held for its global
    pub colour_representation: ColourRepresentationState,
    /// What the hints say (set by `main` from the backend and the flags).
    pub hint_config: HintConfig,
    /// Delegated memory per client, as of the last state write.
    pub delegated: Vec<ClientUsage>,
}

/// What the compositor knows to hint: the heaps here and what its planes need.
#[derive(Debug, Clone, Default)]
pub struct HintConfig {
    /// The CMA heap's name, if there is one.
    pub cma: Option<String>,
    /// Whether a system heap exists.
    pub system: bool,
    /// The output has overlay planes (KMS with overlays, scan-out allowed).
    pub overlays: bool,
    /// The planes read only physically contiguous memory (`--contiguous-scanout`).
    pub contiguous_only: bool,
}

impl HintConfig {
    /// The hints for a surface placed at `placement` (`None`: not shown yet): heaps for the
    /// plane it is on, or would be on with the right memory or format; otherwise for
    /// composition. Delegated allocation is offered from every hinted heap.
    pub fn hints_for(&self, placement: Option<&Placement>) -> Vec<HeapHint> {
        let scanout = match placement {
            Some(Placement::Plane(kind)) => Some(*kind),
            // Not shown yet, or composited for a reason another buffer (format, modifier,
            // memory, a dma-buf at all) or an unexplained refusal could change: it still
            // belongs on a plane.
            None if self.overlays => Some(PlaneKind::Overlay),
            Some(Placement::Composited(r))
                if self.overlays
                    && (r.fixed_by_another_buffer()
                        || matches!(
                            r,
                            Reason::NotADmaBuf | Reason::Refused { suspect: None, .. }
                        )) =>
            {
                Some(PlaneKind::Overlay)
            }
            _ => None,
        };
        let system = |target| HeapHint::scattered("system", target, 0).delegated();
        let cma = |target| {
            self.cma
                .as_deref()
                .map(|c| HeapHint::contiguous(c, target, 0).delegated())
        };
        let mut out = Vec::new();
        match scanout {
            Some(kind) => {
                let target = match kind {
                    PlaneKind::Primary => HintTarget::Primary,
                    PlaneKind::Overlay => HintTarget::Overlay,
                    PlaneKind::Cursor => HintTarget::Cursor,
                };
                if self.contiguous_only {
                    out.extend(cma(target));
                } else {
                    if self.system {
                        out.push(system(target));
                    }
                    out.extend(cma(target));
                }
            }
            None => {
                if self.system {
                    out.push(system(HintTarget::Composition));
                }
            }
        }
        out
    }
}

impl HeapHintsHandler for App {
    fn heap_hints_state(&mut self) -> &mut HeapHintsState {
        &mut self.heap_hints
    }
    fn surface_hints(&mut self, surface: &WlSurface) -> Vec<HeapHint> {
        self.hint_config
            .hints_for(self.placements.placement(surface))
    }
}
wayheap::delegate_heap_hints!(App);
wayheap::delegate_colour_representation!(App);

impl App {
    /// Asks every window to close (`xdg_toplevel.close`); each client decides what follows.
    pub fn close_windows(&mut self) {
        let toplevels: Vec<_> = self
            .space
            .elements()
            .filter_map(|w| w.toplevel().cloned())
            .collect();
        tracing::info!(windows = toplevels.len(), "asking every window to close");
        for toplevel in toplevels {
            toplevel.send_close();
        }
    }

    /// The output's size changed (the nested window was resized): the fullscreen toplevels
    /// follow it.
    pub fn output_resized(&mut self) {
        let size = self.output.current_mode().map(|m| m.size.to_logical(1));
        for window in self.space.elements() {
            if let Some(toplevel) = window.toplevel() {
                toplevel.with_pending_state(|state| state.size = size);
                toplevel.send_pending_configure();
            }
        }
        self.dirty = true;
    }

    /// The pointer moved to `location` (output coordinates; the nested window's pointer): the
    /// surface under it gets enter/motion.
    pub fn pointer_moved_to(
        &mut self,
        location: smithay::utils::Point<f64, smithay::utils::Logical>,
        time: u32,
    ) {
        self.pointer_location = location;
        let focus = self.space.element_under(location).and_then(|(window, at)| {
            window
                .surface_under(
                    location - at.to_f64(),
                    smithay::desktop::WindowSurfaceType::ALL,
                )
                .map(|(surface, loc)| (surface, (loc + at).to_f64()))
        });
        if let Some(pointer) = self.seat.get_pointer() {
            let serial = smithay::utils::SERIAL_COUNTER.next_serial();
            pointer.motion(
                self,
                focus,
                &MotionEvent {
                    location,
                    serial,
                    time,
                },
            );
            pointer.frame(self);
        }
    }

    /// Gives the seat a keyboard: the nested window's keys, or none yet on KMS and headless, but
    /// clients get a wl_keyboard and its focus (what clipboard serials come from). The keymap
    /// is libxkbcommon's from the environment (XKB_DEFAULT_LAYOUT, XKB_DEFAULT_VARIANT, ...).
    /// Without the XKB data (Debian: xkb-data) there is no keyboard, which is logged.
    pub fn add_keyboard(&mut self) {
        match self.seat.add_keyboard(Default::default(), 200, 25) {
            Ok(_) => tracing::info!("the seat has a keyboard"),
            Err(e) => tracing::warn!(%e, "no keyboard for the seat (XKB keymap)"),
        }
    }

    /// A key went down or up, for the focused surface: the newest window, or the one last
    /// clicked. Returns the virtual terminal a Ctrl+Alt+Fn press asks for (the keymap's
    /// `XF86Switch_VT_n`), which no client sees.
    pub fn key(
        &mut self,
        keycode: smithay::input::keyboard::Keycode,
        state: smithay::backend::input::KeyState,
        time: u32,
    ) -> Option<i32> {
        use smithay::input::keyboard::{FilterResult, keysyms};
        let keyboard = self.seat.get_keyboard()?;
        let serial = smithay::utils::SERIAL_COUNTER.next_serial();
        // Both the press and the release of a VT key are kept from the client. The release is
        // known by its key code, not its symbol: Ctrl and Alt may be up by then (libinput
        // releases every key when the session pauses), and the key is plain F2 again.
        keyboard
            .input::<Option<i32>, _>(self, keycode, state, serial, time, |app, _, keysym| {
                let code = keysym.raw_code();
                let sym = keysym.modified_sym().raw();
                let vts = keysyms::KEY_XF86Switch_VT_1..=keysyms::KEY_XF86Switch_VT_12;
                if state == smithay::backend::input::KeyState::Released {
                    if app.intercepted_keys.remove(&code) {
                        FilterResult::Intercept(None)
                    } else {
                        FilterResult::Forward
                    }
                } else if vts.contains(&sym) {
                    app.intercepted_keys.insert(code);
                    FilterResult::Intercept(Some((sym - keysyms::KEY_XF86Switch_VT_1 + 1) as i32))
                } else {
                    FilterResult::Forward
                }
            })
            .flatten()
    }

    /// Moves keyboard focus to `surface` (when the seat has a keyboard).
    pub fn focus_keyboard(&mut self, surface: Option<WlSurface>) {
        if let Some(keyboard) = self.seat.get_keyboard() {
            let serial = smithay::utils::SERIAL_COUNTER.next_serial();
            keyboard.set_focus(self, surface, serial);
        }
    }

    /// A pointer button (a linux input event code such as BTN_LEFT) went down or up, for the
    /// surface under the pointer; a press also gives that surface keyboard focus.
    pub fn pointer_button(
        &mut self,
        button: u32,
        state: smithay::backend::input::ButtonState,
        time: u32,
    ) {
        if state == smithay::backend::input::ButtonState::Pressed {
            let under = self
                .space
                .element_under(self.pointer_location)
                .and_then(|(w, _)| w.toplevel().map(|t| t.wl_surface().clone()));
            if under.is_some() {
                self.focus_keyboard(under);
            }
        }
        if let Some(pointer) = self.seat.get_pointer() {
            let serial = smithay::utils::SERIAL_COUNTER.next_serial();
            pointer.button(
                self,
                &smithay::input::pointer::ButtonEvent {
                    serial,
                    time,
                    button,
                    state,
                },
            );
            pointer.frame(self);
        }
    }

    /// Maps a new toplevel: fullscreen on the output, as a kiosk would.
    fn map_toplevel(&mut self, surface: ToplevelSurface) {
        let size = self.output.current_mode().map(|m| m.size.to_logical(1));
        surface.with_pending_state(|state| {
            state.size = size;
            state.states.set(smithay::reexports::wayland_protocols::xdg::shell::server::xdg_toplevel::State::Fullscreen);
        });
        surface.send_configure();
        let focus = surface.wl_surface().clone();
        let window = Window::new_wayland_window(surface);
        self.space.map_element(window, (0, 0), true);
        self.dirty = true;
        self.focus_keyboard(Some(focus.clone()));
        // No input devices: the pointer rests at the output's centre over the newest window,
        // so its client can set a cursor (which the KMS backend puts on the cursor plane).
        if let Some(pointer) = self.seat.get_pointer() {
            let location = self.pointer_location;
            let serial = smithay::utils::SERIAL_COUNTER.next_serial();
            let time = self.start.elapsed().as_millis() as u32;
            pointer.motion(
                self,
                Some((focus, (0.0, 0.0).into())),
                &MotionEvent {
                    location,
                    serial,
                    time,
                },
            );
            pointer.frame(self);
        }
    }
}

impl CompositorHandler for App {
    fn compositor_state(&mut self) -> &mut CompositorState {
        &mut self.compositor_state
    }

    fn client_compositor_state<'a>(&self, client: &'a Client) -> &'a CompositorClientState {
        &client
            .get_data::<ClientState>()
            .expect("every client is inserted with ClientState")
            .compositor_state
    }

    fn commit(&mut self, surface: &WlSurface) {
        on_commit_buffer_handler::<Self>(surface);
        if let Some(shm) = &self.shm_scanout {
            shm.surface_committed(surface);
        }
        if !is_sync_subsurface(surface) {
            let mut root = surface.clone();
            while let Some(parent) = get_parent(&root) {
                root = parent;
            }
            if let Some(window) = self
                .space
                .elements()
                .find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == &root))
            {
                window.on_commit();
            }
        }
        self.popups.commit(surface);
        self.dirty = true;
    }
}

impl BufferHandler for App {
    fn buffer_destroyed(&mut self, buffer: &wl_buffer::WlBuffer) {
        if let Some(shm) = &self.shm_scanout {
            shm.buffer_destroyed(buffer);
        }
    }
}

impl ShmHandler for App {
    fn shm_state(&self) -> &ShmState {
        &self.shm_state
    }
}

impl XdgShellHandler for App {
    fn xdg_shell_state(&mut self) -> &mut XdgShellState {
        &mut self.xdg_shell_state
    }
    fn new_toplevel(&mut self, surface: ToplevelSurface) {
        self.map_toplevel(surface);
    }
    fn new_popup(&mut self, surface: PopupSurface, _positioner: PositionerState) {
        if wayheap::smithay::guards::refuse_popup_cycle(&surface) {
            return;
        }
        let _ = self
            .popups
            .track_popup(smithay::desktop::PopupKind::Xdg(surface));
    }
    fn grab(
        &mut self,
        _surface: PopupSurface,
        _seat: smithay::reexports::wayland_server::protocol::wl_seat::WlSeat,
        _serial: Serial,
    ) {
    }
    fn reposition_request(
        &mut self,
        surface: PopupSurface,
        positioner: PositionerState,
        token: u32,
    ) {
        surface.with_pending_state(|state| {
            state.geometry = positioner.get_geometry();
            state.positioner = positioner;
        });
        surface.send_repositioned(token);
    }
    fn toplevel_destroyed(&mut self, surface: ToplevelSurface) {
        let gone: Vec<Window> = self
            .space
            .elements()
            .filter(|w| w.toplevel().is_some_and(|t| t == &surface))
            .cloned()
            .collect();
        for w in gone {
            self.space.unmap_elem(&w);
        }
        self.dirty = true;
        self.flush_frames = 3;
    }
}

impl SeatHandler for App {
    type KeyboardFocus = WlSurface;
    type PointerFocus = WlSurface;
    type TouchFocus = WlSurface;
    fn seat_state(&mut self) -> &mut SeatState<App> {
        &mut self.seat_state
    }
    fn cursor_image(&mut self, _seat: &Seat<Self>, image: CursorImageStatus) {
        self.cursor = image;
        self.dirty = true;
    }
    fn focus_changed(&mut self, seat: &Seat<Self>, focused: Option<&WlSurface>) {
        crate::desktop::selection_focus(&self.display, seat, focused);
    }
}

impl OutputHandler for App {}

// Cursor shapes for tablet tools: the demo has no tablets, the defaults do nothing.
impl smithay::wayland::tablet_manager::TabletSeatHandler for App {}
smithay::delegate_cursor_shape!(App);

impl DmabufHandler for App {
    fn dmabuf_state(&mut self) -> &mut DmabufState {
        &mut self.dmabuf_state
    }

    fn dmabuf_imported(
        &mut self,
        _global: &DmabufGlobal,
        dmabuf: Dmabuf,
        notifier: ImportNotifier,
    ) {
        if let Some(client) = notifier.client()
            && let Err(over) = self.dmabuf_quota.admit(&client.id(), &dmabuf)
        {
            tracing::warn!(%over, "refused a client dma-buf");
            self.rejections.push(over.to_string());
            notifier.failed();
            self.dirty = true;
            return;
        }
        let formats = &self.dmabuf_formats;
        if let Err(rejection) = validate_client_dmabuf(&dmabuf, |f: &Format| formats.contains(f)) {
            tracing::warn!(%rejection, "refused a client dma-buf");
            self.rejections.push(rejection.to_string());
            rejection.notify(notifier);
            self.dirty = true; // the state file reports it
            return;
        }
        let ok = self
            .importer
            .as_mut()
            .is_none_or(|i| i.import_dmabuf(&dmabuf));
        if ok {
            let _ = notifier.successful::<App>();
        } else {
            self.rejections
                .push("the renderer could not import it".into());
            notifier.failed();
        }
    }
}

wayheap::delegate_compositor_guarded!(App);
wayheap::delegate_shm_guarded!(App);
wayheap::delegate_xdg_shell_guarded!(App);
delegate_seat!(App);
delegate_output!(App);
delegate_viewporter!(App);
delegate_presentation!(App);
delegate_single_pixel_buffer!(App);
wayheap::delegate_dmabuf_guarded!(App);

/// The protocol id of a surface, for reports.
pub fn surface_key(surface: &WlSurface) -> String {
    format!("{}", surface.id())
}

/// Builds the protocol side: globals, the listening socket is the caller's.
pub fn new_app(
    display: DisplayHandle,
    socket_name: OsString,
    loop_signal: LoopSignal,
    output: Output,
    hints: wayheap::smithay::heap_hints::HeapHintsConfig,
) -> App {
    let clock = Clock::new();
    let compositor_state = CompositorState::new::<App>(&display);
    let xdg_shell_state = XdgShellState::new::<App>(&display);
    let shm_state = ShmState::new::<App>(&display, vec![]);
    let output_manager_state = OutputManagerState::new_with_xdg_output::<App>(&display);
    let mut seat_state = SeatState::new();
    let mut seat = seat_state.new_wl_seat(&display, "seat0");
    seat.add_pointer();
    let viewporter_state = ViewporterState::new::<App>(&display);
    let heap_hints = HeapHintsState::new::<App>(&display, hints);
    let colour_representation = ColourRepresentationState::new::<App>(&display);
    let presentation_state = PresentationState::new::<App>(&display, clock.id() as u32);
    let single_pixel_state = SinglePixelBufferState::new::<App>(&display);
    let cursor_shape =
        smithay::wayland::cursor_shape::CursorShapeManagerState::new::<App>(&display);
    let desktop = crate::desktop::Desktop::new(&display);
    let _global = output.create_global::<App>(&display);
    let pointer_location = output
        .current_mode()
        .map(|m| (f64::from(m.size.w) / 2.0, f64::from(m.size.h) / 2.0).into())
        .unwrap_or_default();
    let mut space = Space::default();
    space.map_output(&output, (0, 0));
    App {
        start: Instant::now(),
        clock,
        display,
        socket_name,
        loop_signal,
        space,
        popups: PopupManager::default(),
        output,
        compositor_state,
        xdg_shell_state,
        shm_state,
        output_manager_state,
        seat_state,
        seat,
        viewporter_state,
        presentation_state,
        single_pixel_state,
        dmabuf_state: DmabufState::new(),
        dmabuf_global: None,
        dmabuf_formats: FormatSet::default(),
        importer: None,
        dirty: true,
        flush_frames: 0,
        frames: 0,
        placements: PlacementTracker::without_planes(),
        shm_scanout: None,
        desktop,
        rejections: Rejections::default(),
        dmabuf_quota: DmabufQuota::default(),
        screenshot_requested: false,
        cursor: CursorImageStatus::default_named(),
        dnd_icon: None,
        intercepted_keys: Default::default(),
        cursor_theme: crate::cursor::CursorTheme::from_env(),
        cursor_shape,
        pointer_location,
        heap_hints,
        colour_representation,
        hint_config: HintConfig::default(),
        delegated: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::Rejections;

    #[test]
    fn rejections_keep_the_latest_and_count_all() {
        let mut log = Rejections::default();
        for i in 0..100 {
            log.push(format!("refusal {i}"));
        }
        let recent: Vec<&str> = log.recent().collect();
        assert_eq!(recent.len(), Rejections::KEPT);
        assert_eq!(recent.last(), Some(&"refusal 99"));
        assert_eq!(recent.first(), Some(&"refusal 68"));
        assert_eq!(log.total(), 100);
    }
}
