//! [`ClientGlobals`]: the globals a dma-buf client binds, at the versions this library speaks,
//! with the decision that follows from what the compositor offers; and
//! [`delegate_client_globals!`](crate::delegate_client_globals) for the `Dispatch`
//! implementations of the objects whose events such a client ignores.

use wayland_client::globals::{BindError, GlobalList};
use wayland_client::protocol::wl_compositor::WlCompositor;
use wayland_client::protocol::wl_registry::{self, WlRegistry};
use wayland_client::protocol::wl_shm::WlShm;
use wayland_client::protocol::wl_subcompositor::WlSubcompositor;
use wayland_client::protocol::wl_surface::WlSurface;
use wayland_client::{Connection, Dispatch, Proxy, QueueHandle};
use wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1;
use wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1;
use wayland_protocols::wp::presentation_time::client::wp_presentation::WpPresentation;
use wayland_protocols::wp::viewporter::client::wp_viewporter::WpViewporter;
use wayland_protocols::xdg::shell::client::xdg_wm_base::XdgWmBase;

use super::feedback::{Feedback, FeedbackData, FeedbackTarget};
use super::linux_dmabuf::{LinuxDmabufData, ModifierEvents, bind_linux_dmabuf_with};
use super::swapchain::SwapchainProtocols;
use super::{Decision, decide_for_version, decide_without_linux_dmabuf};
use crate::layout::Fourcc;

/// A global the client cannot do without is missing, or offered at too old a version.
#[derive(Debug, thiserror::Error)]
#[error("the compositor lacks {global}: {source}")]
pub struct MissingGlobal {
    /// The global and the version asked for (`wl_compositor 4`, `xdg_wm_base`).
    pub global: &'static str,
    /// What binding it said.
    #[source]
    pub source: BindError,
}

/// The globals of a client that shows dma-bufs in an xdg toplevel.
///
/// `wl_compositor` (version 4 or later, for `damage_buffer`) and `xdg_wm_base` are required;
/// everything else is optional and `None` when the compositor lacks it. linux-dmabuf is bound
/// at the highest common version from 3 to 6 (see [`bind_linux_dmabuf`](super::bind_linux_dmabuf))
/// and keeps what a version-3 compositor lists, so [`decide`](Self::decide) is right for
/// every version, and for no linux-dmabuf at all.
///
/// The state type needs the `Dispatch` implementations of
/// [`delegate_client_globals!`](crate::delegate_client_globals) and
/// [`delegate_window!`](crate::delegate_window) (for `xdg_wm_base`).
#[derive(Debug, Clone)]
pub struct ClientGlobals {
    /// `wl_compositor`, version 4 to 6.
    pub compositor: WlCompositor,
    /// `xdg_wm_base`.
    pub wm_base: XdgWmBase,
    /// `zwp_linux_dmabuf_v1`, version 3 to 6 (user data [`LinuxDmabufData`]).
    pub linux_dmabuf: Option<ZwpLinuxDmabufV1>,
    /// `wl_shm`.
    pub shm: Option<WlShm>,
    /// `wp_presentation` (ZERO_COPY counting).
    pub presentation: Option<WpPresentation>,
    /// `wl_subcompositor` (for a [`SurfaceStack`](super::SurfaceStack)).
    pub subcompositor: Option<WlSubcompositor>,
    /// `wp_viewporter` (scaling a surface's buffer).
    pub viewporter: Option<WpViewporter>,
}

impl ClientGlobals {
    /// Binds what `globals` offers.
    pub fn bind<D>(globals: &GlobalList, qh: &QueueHandle<D>) -> Result<Self, MissingGlobal>
    where
        D: Dispatch<WlCompositor, ()>
            + Dispatch<XdgWmBase, ()>
            + Dispatch<ZwpLinuxDmabufV1, LinuxDmabufData>
            + Dispatch<WlShm, ()>
            + Dispatch<WpPresentation, ()>
            + Dispatch<WlSubcompositor, ()>
            + Dispatch<WpViewporter, ()>
            + 'static,
    {
        let missing = |global| move |source| MissingGlobal { global, source };
        Ok(Self {
            compositor: globals
                .bind(qh, 4..=6, ())
                .map_err(missing("wl_compositor 4"))?,
            wm_base: globals
                .bind(qh, 1..=6, ())
                .map_err(missing("xdg_wm_base"))?,
            linux_dmabuf: bind_linux_dmabuf_with(globals, qh, LinuxDmabufData::default()).ok(),
            shm: globals.bind(qh, 1..=1, ()).ok(),
            presentation: globals.bind(qh, 1..=1, ()).ok(),
            subcompositor: globals.bind(qh, 1..=1, ()).ok(),
            viewporter: globals.bind(qh, 1..=1, ()).ok(),
        })
    }

    /// The bound linux-dmabuf version (`None`: the compositor takes no dma-buf).
    pub fn linux_dmabuf_version(&self) -> Option<u32> {
        self.linux_dmabuf.as_ref().map(Proxy::version)
    }

    /// What a version-3 linux-dmabuf listed (empty from version 4, where feedback replaces it).
    pub fn modifiers(&self) -> ModifierEvents {
        self.linux_dmabuf
            .as_ref()
            .and_then(|d| d.data::<LinuxDmabufData>())
            .map(LinuxDmabufData::modifiers)
            .unwrap_or_default()
    }

    /// How to allocate a `format` buffer for this compositor: from `feedback` on linux-dmabuf 4
    /// and later, from the listed formats on version 3, wl_shm without linux-dmabuf.
    pub fn decide(&self, feedback: Option<&Feedback>, format: Fourcc) -> Decision {
        match self.linux_dmabuf_version() {
            Some(version) => decide_for_version(version, feedback, &self.modifiers(), format),
            None => decide_without_linux_dmabuf(format),
        }
    }

    /// `surface`'s feedback object (linux-dmabuf 4 and later), delivered to the state's
    /// [`FeedbackHandler`](super::FeedbackHandler) as [`FeedbackTarget::Surface`].
    pub fn surface_feedback<D>(
        &self,
        surface: &WlSurface,
        qh: &QueueHandle<D>,
    ) -> Option<ZwpLinuxDmabufFeedbackV1>
    where
        D: Dispatch<ZwpLinuxDmabufFeedbackV1, FeedbackData> + 'static,
    {
        super::surface_feedback(
            self.linux_dmabuf.as_ref()?,
            surface,
            qh,
            FeedbackData::for_surface(surface),
        )
    }

    /// The default feedback object (linux-dmabuf 4 and later), delivered as
    /// [`FeedbackTarget::Default`].
    pub fn default_feedback<D>(&self, qh: &QueueHandle<D>) -> Option<ZwpLinuxDmabufFeedbackV1>
    where
        D: Dispatch<ZwpLinuxDmabufFeedbackV1, FeedbackData> + 'static,
    {
        super::default_feedback(
            self.linux_dmabuf.as_ref()?,
            qh,
            FeedbackData::new(FeedbackTarget::Default),
        )
    }

    /// The globals a [`Swapchain`](super::Swapchain) presents through.
    pub fn protocols(&self) -> SwapchainProtocols<'_> {
        SwapchainProtocols {
            linux_dmabuf: self.linux_dmabuf.as_ref(),
            shm: self.shm.as_ref(),
            presentation: self.presentation.as_ref(),
        }
    }
}

/// The `Dispatch` implementations behind
/// [`delegate_client_globals!`](crate::delegate_client_globals) that are not plain no-ops.
#[derive(Debug)]
pub struct ClientGlobalsDispatch;

impl<D> Dispatch<WlRegistry, wayland_client::globals::GlobalListContents, D>
    for ClientGlobalsDispatch
where
    D: Dispatch<WlRegistry, wayland_client::globals::GlobalListContents>,
{
    fn event(
        _: &mut D,
        _: &WlRegistry,
        _: wl_registry::Event,
        _: &wayland_client::globals::GlobalListContents,
        _: &Connection,
        _: &QueueHandle<D>,
    ) {
        // `GlobalListContents` keeps itself up to date; globals appearing later are not bound.
    }
}

/// Implements `Dispatch` for the registry of `registry_queue_init`, the globals of
/// [`ClientGlobals`](crate::client::ClientGlobals) except `xdg_wm_base` (that is
/// [`delegate_window!`](crate::delegate_window)'s), and the objects the library's helpers make
/// from them with `()` user data: `wl_surface` ([`Window`](crate::client::window::Window),
/// [`SurfaceStack`](crate::client::SurfaceStack)), `wl_subsurface`, `wp_viewport` and
/// `wl_shm_pool` ([`Swapchain`](crate::client::Swapchain)). Their events are ignored, except
/// version-3 linux-dmabuf's format list, which is kept in
/// [`LinuxDmabufData`](crate::client::LinuxDmabufData).
///
/// A state that wants events of one of these (e.g. `wl_surface.enter`) writes its own
/// `Dispatch` implementations instead.
#[macro_export]
macro_rules! delegate_client_globals {
    ($ty:ty) => {
        ::wayland_client::delegate_dispatch!($ty: [
            ::wayland_client::protocol::wl_registry::WlRegistry: ::wayland_client::globals::GlobalListContents
        ] => $crate::client::ClientGlobalsDispatch);
        ::wayland_client::delegate_dispatch!($ty: [
            ::wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1: $crate::client::LinuxDmabufData
        ] => $crate::client::LinuxDmabufDispatch);
        // (No leading `::` after `ignore`: `ignore ::a::B` would parse as the path `ignore::a::B`.)
        ::wayland_client::delegate_noop!($ty: ignore wayland_client::protocol::wl_compositor::WlCompositor);
        ::wayland_client::delegate_noop!($ty: ignore wayland_client::protocol::wl_surface::WlSurface);
        ::wayland_client::delegate_noop!($ty: ignore wayland_client::protocol::wl_subcompositor::WlSubcompositor);
        ::wayland_client::delegate_noop!($ty: ignore wayland_client::protocol::wl_subsurface::WlSubsurface);
        ::wayland_client::delegate_noop!($ty: ignore wayland_client::protocol::wl_shm::WlShm);
        ::wayland_client::delegate_noop!($ty: ignore wayland_client::protocol::wl_shm_pool::WlShmPool);
        ::wayland_client::delegate_noop!($ty: ignore wayland_protocols::wp::presentation_time::client::wp_presentation::WpPresentation);
        ::wayland_client::delegate_noop!($ty: ignore wayland_protocols::wp::viewporter::client::wp_viewporter::WpViewporter);
        ::wayland_client::delegate_noop!($ty: ignore wayland_protocols::wp::viewporter::client::wp_viewport::WpViewport);
    };
}
