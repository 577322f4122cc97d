//! The protocols applications expect of any compositor they start in, beyond showing buffers:
//! clipboard and drag-and-drop (`wl_data_device_manager`; on KMS the drag's icon is drawn at
//! the pointer), primary selection, server-side
//! decorations (`xdg-decoration`: the demo draws none, windows are fullscreen), activation
//! (`xdg-activation`: a window asking with a valid token gets the keyboard), fractional scale
//! (always 1: the demo does not scale), and wlr data-control, through which clipboard tools
//! (wl-clipboard's wl-copy and wl-paste, clipboard managers) reach the selections without
//! mapping a window of their own. Without the data device, foot exits at once ("no clipboard
//! available"); GTK and Qt ask for the others.
//!
//! All of them are Smithay's; this module keeps their states and wires the handlers to the
//! seat's focus.

use smithay::input::Seat;
use smithay::reexports::wayland_protocols::xdg::decoration::zv1::server::zxdg_toplevel_decoration_v1::Mode as DecorationMode;
use smithay::reexports::wayland_server::protocol::wl_data_source::WlDataSource;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{DisplayHandle, Resource};
use smithay::wayland::compositor::with_states;
use smithay::wayland::fractional_scale::{
    FractionalScaleHandler, FractionalScaleManagerState, with_fractional_scale,
};
use smithay::wayland::selection::SelectionHandler;
use smithay::wayland::selection::data_device::{
    ClientDndGrabHandler, DataDeviceHandler, DataDeviceState, ServerDndGrabHandler,
    set_data_device_focus,
};
use smithay::wayland::selection::primary_selection::{
    PrimarySelectionHandler, PrimarySelectionState, set_primary_focus,
};
use smithay::wayland::selection::wlr_data_control::{DataControlHandler, DataControlState};
use smithay::wayland::shell::xdg::ToplevelSurface;
use smithay::wayland::shell::xdg::decoration::{XdgDecorationHandler, XdgDecorationState};
use smithay::wayland::xdg_activation::{
    XdgActivationHandler, XdgActivationState, XdgActivationToken, XdgActivationTokenData,
};
use smithay::{
    delegate_data_control, delegate_data_device, delegate_fractional_scale, delegate_primary_selection,
    delegate_xdg_activation, delegate_xdg_decoration,
};

use crate::state::App;

/// The states of those protocols; each holds its global.
#[derive(Debug)]
pub struct Desktop {
    data_device: DataDeviceState,
    primary_selection: PrimarySelectionState,
    // Held for its global: dropping the state would withdraw the protocol.
    #[allow(dead_code)]
    decoration: XdgDecorationState,
    activation: XdgActivationState,
    // Held for its global: dropping the state would withdraw the protocol.
    #[allow(dead_code)]
    fractional_scale: FractionalScaleManagerState,
    data_control: DataControlState,
}

impl Desktop {
    /// Activation tokens the compositor keeps (live or not yet pruned).
    pub fn activation_tokens(&self) -> usize {
        self.activation.tokens().count()
    }

    /// Creates the globals.
    pub fn new(display: &DisplayHandle) -> Desktop {
        let primary_selection = PrimarySelectionState::new::<App>(display);
        Desktop {
            data_control: DataControlState::new::<App, _>(
                display,
                Some(&primary_selection),
                |_| true,
            ),
            data_device: DataDeviceState::new::<App>(display),
            primary_selection,
            decoration: XdgDecorationState::new::<App>(display),
            activation: XdgActivationState::new::<App>(display),
            fractional_scale: FractionalScaleManagerState::new::<App>(display),
        }
    }
}

/// The keyboard focus moved to `focused`: its client gets the selections (clipboard, primary).
pub fn selection_focus(display: &DisplayHandle, seat: &Seat<App>, focused: Option<&WlSurface>) {
    let client = focused.and_then(|s| display.get_client(s.id()).ok());
    set_data_device_focus(display, seat, client.clone());
    set_primary_focus(display, seat, client);
}

impl SelectionHandler for App {
    type SelectionUserData = ();
}

impl ClientDndGrabHandler for App {
    fn started(
        &mut self,
        _source: Option<WlDataSource>,
        icon: Option<WlSurface>,
        _seat: Seat<Self>,
    ) {
        // Drawn at the pointer until the drop (KMS, where the pointer is drawn).
        self.dnd_icon = icon;
        self.dirty = true;
    }

    fn dropped(&mut self, _target: Option<WlSurface>, _validated: bool, _seat: Seat<Self>) {
        self.dnd_icon = None;
        self.dirty = true;
    }
}
impl ServerDndGrabHandler for App {}

impl DataDeviceHandler for App {
    fn data_device_state(&self) -> &DataDeviceState {
        &self.desktop.data_device
    }
}

impl PrimarySelectionHandler for App {
    fn primary_selection_state(&self) -> &PrimarySelectionState {
        &self.desktop.primary_selection
    }
}

impl DataControlHandler for App {
    fn data_control_state(&self) -> &DataControlState {
        &self.desktop.data_control
    }
}

impl XdgDecorationHandler for App {
    fn new_decoration(&mut self, toplevel: ToplevelSurface) {
        server_side(&toplevel);
    }
    fn request_mode(&mut self, toplevel: ToplevelSurface, _mode: DecorationMode) {
        // Windows are fullscreen and undecorated whatever the client prefers.
        server_side(&toplevel);
    }
    fn unset_mode(&mut self, toplevel: ToplevelSurface) {
        server_side(&toplevel);
    }
}

/// Tells the client the compositor decorates (and draws nothing: windows are fullscreen).
fn server_side(toplevel: &ToplevelSurface) {
    toplevel.with_pending_state(|state| {
        state.decoration_mode = Some(DecorationMode::ServerSide);
    });
    if toplevel.is_initial_configure_sent() {
        toplevel.send_pending_configure();
    }
}

/// How long an activation token is good for (as in Anvil).
const TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(10);
/// Live activation tokens one client may hold: Smithay keeps every token until the compositor
/// removes it, so a client asking in a loop would grow the compositor without bound.
const TOKENS_PER_CLIENT: usize = 16;

impl XdgActivationHandler for App {
    fn activation_state(&mut self) -> &mut XdgActivationState {
        &mut self.desktop.activation
    }

    /// Keeps tokens younger than [`TOKEN_LIFETIME`], at most [`TOKENS_PER_CLIENT`] a client. No
    /// input serial is asked for: the kiosk has no launcher and often no input devices, so a
    /// window of the session takes the keyboard back with a recent token of its own.
    fn token_created(&mut self, _token: XdgActivationToken, data: XdgActivationTokenData) -> bool {
        let activation = &mut self.desktop.activation;
        activation.retain_tokens(|_, d| d.timestamp.elapsed() < TOKEN_LIFETIME);
        let held = activation
            .tokens()
            .filter(|(_, d)| d.client_id == data.client_id)
            .count();
        if held >= TOKENS_PER_CLIENT {
            tracing::debug!(client = ?data.client_id, held, "activation token refused: too many live tokens");
            return false;
        }
        true
    }

    fn request_activation(
        &mut self,
        token: XdgActivationToken,
        token_data: XdgActivationTokenData,
        surface: WlSurface,
    ) {
        // A window asking with a live token gets the keyboard and comes to the front.
        if token_data.timestamp.elapsed() < TOKEN_LIFETIME {
            let window = self
                .space
                .elements()
                .find(|w| w.toplevel().is_some_and(|t| t.wl_surface() == &surface))
                .cloned();
            if let Some(window) = window {
                self.space.raise_element(&window, true);
                self.focus_keyboard(Some(surface));
                self.dirty = true;
            }
        }
        self.desktop.activation.remove_token(&token);
    }
}

impl FractionalScaleHandler for App {
    fn new_fractional_scale(&mut self, surface: WlSurface) {
        // The demo's outputs are at scale 1.
        with_states(&surface, |states| {
            with_fractional_scale(states, |fractional| fractional.set_preferred_scale(1.0));
        });
    }
}

delegate_data_device!(App);
delegate_data_control!(App);
delegate_primary_selection!(App);
delegate_xdg_decoration!(App);
delegate_xdg_activation!(App);
delegate_fractional_scale!(App);
