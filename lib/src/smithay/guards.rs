//! Guards in front of Smithay 0.7's protocol handlers for client requests that panic in them.
//!
//! A compositor is the one process every client talks to, so a request that panics in a handler
//! takes every client down. Each guard here answers such a request itself — the protocol's error,
//! or nothing where the protocol defines no error — and hands every other request to Smithay
//! unchanged:
//!
//! - `wl_subsurface.place_above(s)` / `place_below(s)` where `s` is the sub-surface's own surface:
//!   Smithay removes the surface from its parent's list, then inserts it one past the end, and
//!   panics (`place_below` was accepted silently). The protocol makes it `bad_surface`. Upstream:
//!   Smithay issue 1693, fixed after 0.7.0.
//! - `wl_shm_pool.resize(size)` with `size <= 0`: Smithay posts the error, then goes on and
//!   unwraps a zero `NonZeroUsize`. Upstream: the same bug class as Smithay issue 1689.
//!
//! - `zwp_linux_buffer_params_v1.create`/`create_immed` with a width or height below 1: Smithay
//!   posts `invalid_dimensions`, then goes on to check the planes with a height of 0, where
//!   `offset + stride` overflows u32 (a panic in debug builds). Found by the property tests.
//!   With the format 0x80000000 (`DRM_FORMAT_BIG_ENDIAN` alone): Smithay prints it to refuse it,
//!   and drm-fourcc's `Debug` panics on it; now `invalid_format`. Found by `wayheap-fuzz`.
//!
//! - Negative sizes, which Smithay turns into `Size`s whose `debug_assert!` panics (debug builds):
//!   `wl_surface.damage`/`damage_buffer` and `wl_region.add`/`subtract` with a negative width or
//!   height describe no area and are dropped (the protocol defines no error for them);
//!   `xdg_surface.set_window_geometry` with a width or height below 1 and `xdg_toplevel.set_min_size`
//!   / `set_max_size` with a negative one are `invalid_size`, as xdg-shell says; a negative
//!   `xdg_positioner.set_parent_size` is dropped, and positioner coordinates beyond ±2^24 (which
//!   overflow i32 in Smithay's popup geometry) are `invalid_input`. Found by
//!   `wayheap-fuzz`.
//!
//! - `xdg_surface.get_popup` whose parent is the surface itself, or a surface that becomes its
//!   popup later: Smithay accepts the cycle, and walking the popup's parents
//!   (`PopupManager::track_popup`) never ends — the compositor hangs. Call
//!   [`refuse_popup_cycle`] first in `XdgShellHandler::new_popup`. Found by `wayheap-fuzz`.
//!
//! Drop a guard when Smithay releases the fix; its regression test (tests/tests/hostile.rs) says
//! whether the bare handler is safe.
//!
//! ## How to use
//!
//! Replace `delegate_compositor!`, `delegate_shm!`, `delegate_dmabuf!` and
//! `delegate_xdg_shell!` with the guarded macros; the state needs nothing else:
//!
//! ```no_run
//! use smithay::wayland::buffer::BufferHandler;
//! use smithay::wayland::compositor::{CompositorClientState, CompositorHandler, CompositorState};
//! use smithay::wayland::shm::{ShmHandler, ShmState};
//! use smithay::reexports::wayland_server::{Client, protocol::{wl_buffer::WlBuffer, wl_surface::WlSurface}};
//!
//! struct State { compositor: CompositorState, shm: ShmState }
//! # struct ClientState(CompositorClientState);
//! # impl smithay::reexports::wayland_server::backend::ClientData for ClientState {}
//! impl CompositorHandler for State {
//!     fn compositor_state(&mut self) -> &mut CompositorState { &mut self.compositor }
//!     fn client_compositor_state<'a>(&self, client: &'a Client) -> &'a CompositorClientState {
//!         &client.get_data::<ClientState>().unwrap().0
//!     }
//!     fn commit(&mut self, _surface: &WlSurface) {}
//! }
//! impl BufferHandler for State {
//!     fn buffer_destroyed(&mut self, _buffer: &WlBuffer) {}
//! }
//! impl ShmHandler for State {
//!     fn shm_state(&self) -> &ShmState { &self.shm }
//! }
//! wayheap::delegate_compositor_guarded!(State);
//! wayheap::delegate_shm_guarded!(State);
//! ```

use smithay::backend::allocator::dmabuf::{Dmabuf, WeakDmabuf};
use smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_buffer_params_v1::{
    self, ZwpLinuxBufferParamsV1,
};
use smithay::reexports::wayland_protocols::xdg::shell::server::xdg_positioner::{
    self, XdgPositioner,
};
use smithay::reexports::wayland_protocols::xdg::shell::server::xdg_surface::{self, XdgSurface};
use smithay::reexports::wayland_protocols::xdg::shell::server::xdg_toplevel::{self, XdgToplevel};
use smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer;
use smithay::reexports::wayland_server::protocol::wl_callback::WlCallback;
use smithay::reexports::wayland_server::protocol::wl_region::{self, WlRegion};
use smithay::reexports::wayland_server::protocol::wl_shm;
use smithay::reexports::wayland_server::protocol::wl_shm_pool::{self, WlShmPool};
use smithay::reexports::wayland_server::protocol::wl_subsurface::{self, WlSubsurface};
use smithay::reexports::wayland_server::protocol::wl_surface::{self, WlSurface};
use smithay::reexports::wayland_server::{
    Client, DataInit, Dispatch, DisplayHandle, Resource, backend::ClientId,
};
use smithay::wayland::buffer::BufferHandler;
use smithay::wayland::compositor::{
    CompositorHandler, CompositorState, RegionUserData, SubsurfaceUserData, SurfaceUserData,
};
use smithay::wayland::dmabuf::{DmabufHandler, DmabufParamsData, DmabufState};
use smithay::reexports::wayland_protocols::xdg::shell::server::xdg_wm_base;
use smithay::wayland::compositor;
use smithay::wayland::shell::xdg::{
    PopupSurface, XDG_POPUP_ROLE, XdgPopupSurfaceData, XdgPositionerUserData, XdgShellHandler,
    XdgShellState, XdgShellSurfaceUserData, XdgSurfaceUserData,
};
use smithay::wayland::shm::{ShmBufferUserData, ShmHandler, ShmPoolUserData, ShmState};

/// Whether a request goes on to Smithay's handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Smithay handles it.
    Pass,
    /// The guard answered it (an error posted, or a request that describes nothing dropped).
    Answered,
}

/// A guard type: `Dispatch<$iface, $data, D>` that runs `$check` and hands what passes to
/// `$inner`'s handler (Smithay's), with the bounds Smithay's impl has.
macro_rules! guard {
    (
        $(#[$doc:meta])*
        $guard:ident: $iface:ty, $data:ty => $inner:ty, where D: $($bound:path),+;
        $check:expr
    ) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $guard;

        impl<D> Dispatch<$iface, $data, D> for $guard
        where
            D: Dispatch<$iface, $data> $(+ $bound)+ + 'static,
        {
            fn request(
                state: &mut D,
                client: &Client,
                resource: &$iface,
                request: <$iface as Resource>::Request,
                data: &$data,
                dh: &DisplayHandle,
                data_init: &mut DataInit<'_, D>,
            ) {
                let check: fn(&$iface, &<$iface as Resource>::Request, &$data) -> Verdict = $check;
                if check(resource, &request, data) == Verdict::Pass {
                    <$inner as Dispatch<$iface, $data, D>>::request(
                        state, client, resource, request, data, dh, data_init,
                    );
                }
            }

            fn destroyed(state: &mut D, client: ClientId, resource: &$iface, data: &$data) {
                <$inner as Dispatch<$iface, $data, D>>::destroyed(state, client, resource, data);
            }
        }
    };
}

guard! {
    /// `wl_subsurface`'s handler: Smithay's, behind a check that a sub-surface is never placed
    /// relative to itself.
    SubsurfaceGuard: WlSubsurface, SubsurfaceUserData => CompositorState, where D: CompositorHandler;
    |subsurface, request, data| {
        let (name, sibling) = match request {
            wl_subsurface::Request::PlaceAbove { sibling } => ("place_above", sibling),
            wl_subsurface::Request::PlaceBelow { sibling } => ("place_below", sibling),
            _ => return Verdict::Pass,
        };
        if sibling != data.surface() {
            return Verdict::Pass;
        }
        subsurface.post_error(
            wl_subsurface::Error::BadSurface,
            format!("{name}: a sub-surface cannot be placed relative to itself"),
        );
        Verdict::Answered
    }
}

guard! {
    /// `wl_surface`'s handler: Smithay's, with damage of negative size dropped (it describes no
    /// area; Smithay's `Size` asserts against it).
    SurfaceGuard: WlSurface, SurfaceUserData => CompositorState,
        where D: Dispatch<WlCallback, ()>, CompositorHandler;
    |_, request, _| match request {
        wl_surface::Request::Damage { width, height, .. }
        | wl_surface::Request::DamageBuffer { width, height, .. } => area(*width, *height),
        _ => Verdict::Pass,
    }
}

guard! {
    /// `wl_region`'s handler: Smithay's, with rectangles of negative size dropped.
    RegionGuard: WlRegion, RegionUserData => CompositorState, where D: CompositorHandler;
    |_, request, _| match request {
        wl_region::Request::Add { width, height, .. }
        | wl_region::Request::Subtract { width, height, .. } => area(*width, *height),
        _ => Verdict::Pass,
    }
}

/// A rectangle of negative size describes no area: dropped.
fn area(width: i32, height: i32) -> Verdict {
    if width < 0 || height < 0 {
        Verdict::Answered
    } else {
        Verdict::Pass
    }
}

guard! {
    /// `xdg_surface`'s handler: Smithay's, behind xdg-shell's rule that a window geometry has a
    /// positive size.
    XdgSurfaceGuard: XdgSurface, XdgSurfaceUserData => XdgShellState,
        where D: Dispatch<XdgToplevel, XdgShellSurfaceUserData>,
            Dispatch<smithay::reexports::wayland_protocols::xdg::shell::server::xdg_popup::XdgPopup, XdgShellSurfaceUserData>,
            XdgShellHandler;
    |xdg_surface, request, _| match request {
        xdg_surface::Request::SetWindowGeometry { width, height, .. } if *width < 1 || *height < 1 => {
            xdg_surface.post_error(
                xdg_surface::Error::InvalidSize,
                format!("set_window_geometry: {width}x{height}: the size must be positive"),
            );
            Verdict::Answered
        }
        _ => Verdict::Pass,
    }
}

guard! {
    /// `xdg_toplevel`'s handler: Smithay's, behind xdg-shell's rule that minimum and maximum
    /// sizes are not negative.
    XdgToplevelGuard: XdgToplevel, XdgShellSurfaceUserData => XdgShellState, where D: XdgShellHandler;
    |toplevel, request, _| match request {
        xdg_toplevel::Request::SetMaxSize { width, height }
        | xdg_toplevel::Request::SetMinSize { width, height }
            if *width < 0 || *height < 0 =>
        {
            toplevel.post_error(
                xdg_toplevel::Error::InvalidSize,
                format!("a minimum or maximum size of {width}x{height}: sizes cannot be negative"),
            );
            Verdict::Answered
        }
        _ => Verdict::Pass,
    }
}

guard! {
    /// `xdg_positioner`'s handler: Smithay's, with coordinates beyond ±2^24 refused as
    /// `invalid_input` (Smithay adds them up in i32 and overflows) and a negative parent size
    /// dropped (xdg-shell defines no error for it; Smithay's `Size` asserts against it).
    XdgPositionerGuard: XdgPositioner, XdgPositionerUserData => XdgShellState, where D: XdgShellHandler;
    |positioner, request, _| {
        let values: &[i32] = match request {
            xdg_positioner::Request::SetSize { width, height } => &[*width, *height],
            xdg_positioner::Request::SetAnchorRect { x, y, width, height } => &[*x, *y, *width, *height],
            xdg_positioner::Request::SetOffset { x, y } => &[*x, *y],
            xdg_positioner::Request::SetParentSize { parent_width, parent_height } => {
                &[*parent_width, *parent_height]
            }
            _ => return Verdict::Pass,
        };
        if values.iter().any(|v| v.unsigned_abs() > MAX_POSITIONER_COORDINATE) {
            positioner.post_error(
                xdg_positioner::Error::InvalidInput,
                format!("{values:?}: positioner coordinates are at most ±{MAX_POSITIONER_COORDINATE}"),
            );
            return Verdict::Answered;
        }
        match request {
            xdg_positioner::Request::SetParentSize { parent_width, parent_height } => {
                area(*parent_width, *parent_height)
            }
            _ => Verdict::Pass,
        }
    }
}

/// The largest coordinate a positioner takes: 2^24 pixels, far beyond any output, so that
/// Smithay's sums of anchor, offset and size stay within i32.
const MAX_POSITIONER_COORDINATE: u32 = 1 << 24;

guard! {
    /// `wl_shm_pool`'s handler: Smithay's, behind a check that a pool is never resized to zero or
    /// a negative size.
    ShmPoolGuard: WlShmPool, ShmPoolUserData => ShmState,
        where D: Dispatch<WlBuffer, ShmBufferUserData>, BufferHandler, ShmHandler;
    |pool, request, _| match request {
        wl_shm_pool::Request::Resize { size } if *size <= 0 => {
            // libwayland answers a pool that cannot grow to `size` with `invalid_fd` too.
            pool.post_error(
                wl_shm::Error::InvalidFd,
                format!("wl_shm_pool.resize({size}): a pool's size must be positive"),
            );
            Verdict::Answered
        }
        _ => Verdict::Pass,
    }
}

guard! {
    /// `zwp_linux_buffer_params_v1`'s handler: Smithay's, behind a check that a buffer's size is
    /// positive before its planes are looked at.
    DmabufParamsGuard: ZwpLinuxBufferParamsV1, DmabufParamsData => DmabufState,
        where D: Dispatch<WlBuffer, Dmabuf>, BufferHandler, DmabufHandler;
    |params, request, _| match request {
        zwp_linux_buffer_params_v1::Request::Create { width, height, .. }
        | zwp_linux_buffer_params_v1::Request::CreateImmed { width, height, .. }
            if *width < 1 || *height < 1 =>
        {
            params.post_error(
                zwp_linux_buffer_params_v1::Error::InvalidDimensions,
                format!("a buffer of {width}x{height}: width and height must be positive"),
            );
            Verdict::Answered
        }
        zwp_linux_buffer_params_v1::Request::Create { format, .. }
        | zwp_linux_buffer_params_v1::Request::CreateImmed { format, .. }
            if !has_printable_name(*format) =>
        {
            params.post_error(
                zwp_linux_buffer_params_v1::Error::InvalidFormat,
                format!("format {format:#010x} is not supported"),
            );
            Verdict::Answered
        }
        _ => Verdict::Pass,
    }
}

/// Whether drm-fourcc can print `code` if it names a format: its `Debug` panics ("Must be valid
/// fourcc") on the one it cannot, `DRM_FORMAT_BIG_ENDIAN` (0x80000000) on its own, which Smithay
/// prints when refusing a format.
fn has_printable_name(code: u32) -> bool {
    let bytes = code.to_le_bytes();
    std::str::from_utf8(&bytes).is_ok()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[1].is_ascii_alphanumeric()
}

/// Refuses a popup whose chain of parents comes back to itself: posts `invalid_popup_parent` and
/// returns true. Smithay does not check a popup's parent, so `get_popup(parent: itself)`, or two
/// surfaces made each other's popups, make every walk up the parents (`PopupManager::track_popup`,
/// `find_popup_root_surface`) loop forever.
///
/// ```no_run
/// # use smithay::wayland::shell::xdg::PopupSurface;
/// fn new_popup(popups: &mut smithay::desktop::PopupManager, surface: PopupSurface) {
///     if wayheap::smithay::guards::refuse_popup_cycle(&surface) {
///         return;
///     }
///     let _ = popups.track_popup(smithay::desktop::PopupKind::Xdg(surface));
/// }
/// ```
pub fn refuse_popup_cycle(popup: &PopupSurface) -> bool {
    let mut seen = std::collections::HashSet::new();
    seen.insert(popup.wl_surface().id());
    let mut parent = popup.get_parent_surface();
    while let Some(surface) = parent {
        if !seen.insert(surface.id()) {
            popup.xdg_popup().post_error(
                xdg_wm_base::Error::InvalidPopupParent as u32,
                "invalid_popup_parent: the popup's parents lead back to itself",
            );
            return true;
        }
        if compositor::get_role(&surface) != Some(XDG_POPUP_ROLE) {
            return false;
        }
        parent = compositor::with_states(&surface, |states| {
            let data = states.data_map.get::<XdgPopupSurfaceData>()?;
            data.lock()
                .unwrap_or_else(|e| e.into_inner())
                .parent
                .clone()
        });
    }
    false
}

/// Smithay's `delegate_dmabuf!`, with `zwp_linux_buffer_params_v1` behind
/// [`DmabufParamsGuard`].
#[macro_export]
macro_rules! delegate_dmabuf_guarded {
    ($ty:ty) => {
        $crate::smithay::__smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1: $crate::smithay::__smithay::wayland::dmabuf::DmabufGlobalData
        ] => $crate::smithay::__smithay::wayland::dmabuf::DmabufState);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1: $crate::smithay::__smithay::wayland::dmabuf::DmabufData
        ] => $crate::smithay::__smithay::wayland::dmabuf::DmabufState);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1: $crate::smithay::__smithay::wayland::dmabuf::DmabufParamsData
        ] => $crate::smithay::guards::DmabufParamsGuard);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer: $crate::smithay::__smithay::backend::allocator::dmabuf::Dmabuf
        ] => $crate::smithay::__smithay::wayland::dmabuf::DmabufState);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1: $crate::smithay::__smithay::wayland::dmabuf::DmabufFeedbackData
        ] => $crate::smithay::__smithay::wayland::dmabuf::DmabufState);
    };
}

/// Smithay's `delegate_compositor!`, with `wl_surface`, `wl_region` and `wl_subsurface` behind
/// [`SurfaceGuard`], [`RegionGuard`] and [`SubsurfaceGuard`].
#[macro_export]
macro_rules! delegate_compositor_guarded {
    ($ty:ty) => {
        $crate::smithay::__smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_server::protocol::wl_compositor::WlCompositor: ()
        ] => $crate::smithay::__smithay::wayland::compositor::CompositorState);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_server::protocol::wl_subcompositor::WlSubcompositor: ()
        ] => $crate::smithay::__smithay::wayland::compositor::CompositorState);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_server::protocol::wl_compositor::WlCompositor: ()
        ] => $crate::smithay::__smithay::wayland::compositor::CompositorState);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_server::protocol::wl_surface::WlSurface: $crate::smithay::__smithay::wayland::compositor::SurfaceUserData
        ] => $crate::smithay::guards::SurfaceGuard);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_server::protocol::wl_region::WlRegion: $crate::smithay::__smithay::wayland::compositor::RegionUserData
        ] => $crate::smithay::guards::RegionGuard);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_server::protocol::wl_callback::WlCallback: ()
        ] => $crate::smithay::__smithay::wayland::compositor::CompositorState);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_server::protocol::wl_subcompositor::WlSubcompositor: ()
        ] => $crate::smithay::__smithay::wayland::compositor::CompositorState);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_server::protocol::wl_subsurface::WlSubsurface: $crate::smithay::__smithay::wayland::compositor::SubsurfaceUserData
        ] => $crate::smithay::guards::SubsurfaceGuard);
    };
}

/// Smithay's `delegate_shm!`, with `wl_shm_pool` behind [`ShmPoolGuard`].
#[macro_export]
macro_rules! delegate_shm_guarded {
    ($ty:ty) => {
        $crate::smithay::__smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_server::protocol::wl_shm::WlShm: ()
        ] => $crate::smithay::__smithay::wayland::shm::ShmState);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_server::protocol::wl_shm::WlShm: ()
        ] => $crate::smithay::__smithay::wayland::shm::ShmState);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_server::protocol::wl_shm_pool::WlShmPool: $crate::smithay::__smithay::wayland::shm::ShmPoolUserData
        ] => $crate::smithay::guards::ShmPoolGuard);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer: $crate::smithay::__smithay::wayland::shm::ShmBufferUserData
        ] => $crate::smithay::__smithay::wayland::shm::ShmState);
    };
}

/// Smithay's `delegate_xdg_shell!`, with `xdg_positioner`, `xdg_surface` and `xdg_toplevel`
/// behind [`XdgPositionerGuard`], [`XdgSurfaceGuard`] and [`XdgToplevelGuard`].
#[macro_export]
macro_rules! delegate_xdg_shell_guarded {
    ($ty:ty) => {
        $crate::smithay::__smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_protocols::xdg::shell::server::xdg_wm_base::XdgWmBase: ()
        ] => $crate::smithay::__smithay::wayland::shell::xdg::XdgShellState);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_protocols::xdg::shell::server::xdg_wm_base::XdgWmBase: $crate::smithay::__smithay::wayland::shell::xdg::XdgWmBaseUserData
        ] => $crate::smithay::__smithay::wayland::shell::xdg::XdgShellState);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_protocols::xdg::shell::server::xdg_positioner::XdgPositioner: $crate::smithay::__smithay::wayland::shell::xdg::XdgPositionerUserData
        ] => $crate::smithay::guards::XdgPositionerGuard);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_protocols::xdg::shell::server::xdg_popup::XdgPopup: $crate::smithay::__smithay::wayland::shell::xdg::XdgShellSurfaceUserData
        ] => $crate::smithay::__smithay::wayland::shell::xdg::XdgShellState);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_protocols::xdg::shell::server::xdg_surface::XdgSurface: $crate::smithay::__smithay::wayland::shell::xdg::XdgSurfaceUserData
        ] => $crate::smithay::guards::XdgSurfaceGuard);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_protocols::xdg::shell::server::xdg_toplevel::XdgToplevel: $crate::smithay::__smithay::wayland::shell::xdg::XdgShellSurfaceUserData
        ] => $crate::smithay::guards::XdgToplevelGuard);
    };
}

/// Live client dma-bufs per client, bounded: a client that creates buffers without end would
/// otherwise make the compositor hold up to four fds for each (and run it out of fds).
///
/// Ask [`admit`](Self::admit) in `DmabufHandler::dmabuf_imported` before anything else, and
/// answer a refusal with `ImportNotifier::failed` (the client may free buffers and retry). A
/// buffer counts while the compositor holds it (its `Dmabuf` is alive), so buffers a client
/// destroyed, and all of a disconnected client's, stop counting by themselves.
///
/// Clients are told apart by their `ClientId` (any `Eq + Hash` key will do).
#[derive(Debug)]
pub struct DmabufQuota<K = ClientId> {
    per_client: usize,
    live: std::collections::HashMap<K, Vec<WeakDmabuf>>,
}

/// A client reached its [`DmabufQuota`].
#[derive(Debug, thiserror::Error)]
#[error(
    "this client holds {held} dma-buf buffers, the most a client may hold; destroy buffers it no \
     longer uses"
)]
pub struct QuotaExceeded {
    /// The buffers the client holds (the limit).
    pub held: usize,
}

impl<K: Eq + std::hash::Hash + Clone> DmabufQuota<K> {
    /// The default: 256 live buffers per client, ten times a video pipeline's pool.
    pub const DEFAULT_PER_CLIENT: usize = 256;

    /// At most `per_client` live dma-bufs per client.
    pub fn new(per_client: usize) -> DmabufQuota<K> {
        DmabufQuota {
            per_client,
            live: Default::default(),
        }
    }

    /// Counts `dmabuf` against `client`'s quota, or refuses it.
    pub fn admit(&mut self, client: &K, dmabuf: &Dmabuf) -> Result<(), QuotaExceeded> {
        self.live.retain(|_, held| {
            held.retain(|weak| !weak.is_gone());
            !held.is_empty()
        });
        let held = self.live.entry(client.clone()).or_default();
        if held.len() >= self.per_client {
            return Err(QuotaExceeded { held: held.len() });
        }
        held.push(dmabuf.weak());
        Ok(())
    }
}

impl<K: Eq + std::hash::Hash + Clone> Default for DmabufQuota<K> {
    fn default() -> Self {
        Self::new(Self::DEFAULT_PER_CLIENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smithay::backend::allocator::{Fourcc, Modifier, dmabuf::DmabufFlags};

    fn dmabuf() -> Dmabuf {
        let fd = rustix::fs::memfd_create("quota", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let mut builder = Dmabuf::builder(
            (4, 4),
            Fourcc::Argb8888,
            Modifier::Linear,
            DmabufFlags::empty(),
        );
        builder.add_plane(fd, 0, 0, 16);
        builder.build().unwrap()
    }

    #[test]
    fn only_codes_drm_fourcc_cannot_print_are_refused_by_name() {
        assert!(!has_printable_name(0x8000_0000));
        assert!(has_printable_name(u32::from_le_bytes(*b"AR24")));
        assert!(has_printable_name(u32::from_le_bytes(*b"R8  ")));
        // The codes that name formats and would be refused are the unprintable ones only.
        assert!(Fourcc::try_from(0x8000_0000).is_ok());
        for printable in [*b"NV12", *b"XR24", *b"P010", *b"YUYV", *b"R8  "] {
            let code = u32::from_le_bytes(printable);
            assert!(Fourcc::try_from(code).is_ok() && has_printable_name(code));
        }
    }

    #[test]
    fn a_client_gets_its_quota_and_buffers_it_drops_stop_counting() {
        let mut quota = DmabufQuota::new(2);
        let (a, b) = (1u32, 2u32);
        let (first, second, third) = (dmabuf(), dmabuf(), dmabuf());
        quota.admit(&a, &first).unwrap();
        quota.admit(&a, &second).unwrap();
        let refused = quota.admit(&a, &third).unwrap_err();
        assert_eq!(refused.held, 2);
        assert!(refused.to_string().contains("destroy buffers"));
        // Another client has its own quota.
        quota.admit(&b, &third).unwrap();
        // Dropped (the client destroyed it, or left): it no longer counts.
        drop(first);
        quota.admit(&a, &dmabuf()).unwrap();
    }
}
