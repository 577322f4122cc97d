//! A bare xdg-shell toplevel for kiosk-style clients: one surface, mapped (optionally
//! fullscreen), its configure events acknowledged, its size and close request remembered.
//! Clients that show camera frames or test scenes need nothing more from xdg-shell, and every
//! one of them would otherwise repeat the same three `Dispatch` implementations.
//!
//! Wire it with [`delegate_window!`](crate::delegate_window).

use std::sync::{Arc, Mutex};

use wayland_client::protocol::{wl_compositor::WlCompositor, wl_surface::WlSurface};
use wayland_client::{Connection, Dispatch, QueueHandle};
use wayland_protocols::xdg::shell::client::{xdg_surface, xdg_toplevel, xdg_wm_base};

/// What the compositor said of the window so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowState {
    /// The size of the last toplevel configure (`(0, 0)`: the client chooses); `None` before
    /// the first one.
    pub configured: Option<(i32, i32)>,
    /// The compositor asked the window to close.
    pub closed: bool,
}

/// User data of the window's xdg objects: where their events land.
#[derive(Debug, Clone, Default)]
pub struct WindowData(Arc<Mutex<WindowState>>);

impl WindowData {
    fn update(&self, f: impl FnOnce(&mut WindowState)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn get(&self) -> WindowState {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A mapped toplevel.
#[derive(Debug)]
pub struct Window {
    /// Its surface: attach buffers here.
    pub surface: WlSurface,
    /// The xdg_surface role object.
    pub xdg_surface: xdg_surface::XdgSurface,
    /// The toplevel.
    pub toplevel: xdg_toplevel::XdgToplevel,
    data: WindowData,
}

impl Window {
    /// Creates the surface and its toplevel with `title` (and `app_id` if given), asks for
    /// fullscreen if `fullscreen`, and commits so that the compositor configures it. Dispatch
    /// until [`configured`](Self::configured) is `Some` before attaching a buffer.
    pub fn new<D>(
        compositor: &WlCompositor,
        wm_base: &xdg_wm_base::XdgWmBase,
        qh: &QueueHandle<D>,
        title: &str,
        app_id: Option<&str>,
        fullscreen: bool,
    ) -> Window
    where
        D: Dispatch<WlSurface, ()>
            + Dispatch<xdg_surface::XdgSurface, WindowData>
            + Dispatch<xdg_toplevel::XdgToplevel, WindowData>
            + 'static,
    {
        let data = WindowData::default();
        let surface = compositor.create_surface(qh, ());
        let xdg_surface = wm_base.get_xdg_surface(&surface, qh, data.clone());
        let toplevel = xdg_surface.get_toplevel(qh, data.clone());
        toplevel.set_title(title.to_owned());
        if let Some(id) = app_id {
            toplevel.set_app_id(id.to_owned());
        }
        if fullscreen {
            toplevel.set_fullscreen(None);
        }
        surface.commit();
        Window {
            surface,
            xdg_surface,
            toplevel,
            data,
        }
    }

    /// The last configured size (`None` before the first configure).
    pub fn configured(&self) -> Option<(i32, i32)> {
        self.data.get().configured
    }

    /// The configured size, or `fallback` where the compositor left the choice to the client.
    pub fn size_or(&self, fallback: (u32, u32)) -> (u32, u32) {
        match self.configured() {
            Some((w, h)) if w > 0 && h > 0 => (w as u32, h as u32),
            _ => fallback,
        }
    }

    /// Whether the compositor asked the window to close.
    pub fn closed(&self) -> bool {
        self.data.get().closed
    }
}

/// The `Dispatch` implementations behind [`delegate_window!`](crate::delegate_window).
#[derive(Debug)]
pub struct WindowDispatch;

impl<D> Dispatch<xdg_wm_base::XdgWmBase, (), D> for WindowDispatch
where
    D: Dispatch<xdg_wm_base::XdgWmBase, ()>,
{
    fn event(
        _: &mut D,
        wm: &xdg_wm_base::XdgWmBase,
        event: xdg_wm_base::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<D>,
    ) {
        if let xdg_wm_base::Event::Ping { serial } = event {
            wm.pong(serial);
        }
    }
}

impl<D> Dispatch<xdg_surface::XdgSurface, WindowData, D> for WindowDispatch
where
    D: Dispatch<xdg_surface::XdgSurface, WindowData>,
{
    fn event(
        _: &mut D,
        s: &xdg_surface::XdgSurface,
        event: xdg_surface::Event,
        _: &WindowData,
        _: &Connection,
        _: &QueueHandle<D>,
    ) {
        if let xdg_surface::Event::Configure { serial } = event {
            s.ack_configure(serial);
        }
    }
}

impl<D> Dispatch<xdg_toplevel::XdgToplevel, WindowData, D> for WindowDispatch
where
    D: Dispatch<xdg_toplevel::XdgToplevel, WindowData>,
{
    fn event(
        _: &mut D,
        _: &xdg_toplevel::XdgToplevel,
        event: xdg_toplevel::Event,
        data: &WindowData,
        _: &Connection,
        _: &QueueHandle<D>,
    ) {
        match event {
            xdg_toplevel::Event::Configure { width, height, .. } => {
                data.update(|s| s.configured = Some((width, height)));
            }
            xdg_toplevel::Event::Close => data.update(|s| s.closed = true),
            _ => {}
        }
    }
}

/// Implements `Dispatch` for xdg_wm_base (ping), the window's xdg_surface (configure
/// acknowledged) and xdg_toplevel (size, close) of `$ty` by delegating to
/// [`WindowDispatch`](crate::client::window::WindowDispatch).
#[macro_export]
macro_rules! delegate_window {
    ($ty:ty) => {
        ::wayland_client::delegate_dispatch!($ty: [
            ::wayland_protocols::xdg::shell::client::xdg_wm_base::XdgWmBase: ()
        ] => $crate::client::window::WindowDispatch);
        ::wayland_client::delegate_dispatch!($ty: [
            ::wayland_protocols::xdg::shell::client::xdg_surface::XdgSurface: $crate::client::window::WindowData
        ] => $crate::client::window::WindowDispatch);
        ::wayland_client::delegate_dispatch!($ty: [
            ::wayland_protocols::xdg::shell::client::xdg_toplevel::XdgToplevel: $crate::client::window::WindowData
        ] => $crate::client::window::WindowDispatch);
    };
}
