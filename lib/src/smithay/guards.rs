//! Guards in front of Smithay 0.7's protocol handlers for client requests that panic in them.
//!
//! A compositor is the one process every client talks to, so a request that panics in a handler
//! takes every client down. Smithay 0.7.0 has two such requests; each guard here refuses the bad
//! request with the protocol's error and hands every other request to Smithay unchanged:
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
//!
//! Drop a guard when Smithay releases the fix; its regression test (tests/tests/hostile.rs) says
//! whether the bare handler is safe.
//!
//! ## How to use
//!
//! Replace `delegate_compositor!` and `delegate_shm!` with the guarded macros; the state needs
//! nothing else:
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
use smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer;
use smithay::reexports::wayland_server::protocol::wl_shm;
use smithay::reexports::wayland_server::protocol::wl_shm_pool::{self, WlShmPool};
use smithay::reexports::wayland_server::protocol::wl_subsurface::{self, WlSubsurface};
use smithay::reexports::wayland_server::{
    Client, DataInit, Dispatch, DisplayHandle, Resource, backend::ClientId,
};
use smithay::wayland::buffer::BufferHandler;
use smithay::reexports::wayland_protocols::wp::linux_dmabuf::zv1::server::zwp_linux_buffer_params_v1::{
    self, ZwpLinuxBufferParamsV1,
};
use smithay::wayland::compositor::{CompositorHandler, CompositorState, SubsurfaceUserData};
use smithay::wayland::dmabuf::{DmabufHandler, DmabufParamsData, DmabufState};
use smithay::wayland::shm::{ShmBufferUserData, ShmHandler, ShmPoolUserData, ShmState};

/// `wl_subsurface`'s handler: Smithay's, behind a check that a sub-surface is never placed
/// relative to itself.
#[derive(Debug)]
pub struct SubsurfaceGuard;

impl<D> Dispatch<WlSubsurface, SubsurfaceUserData, D> for SubsurfaceGuard
where
    D: Dispatch<WlSubsurface, SubsurfaceUserData> + CompositorHandler + 'static,
{
    fn request(
        state: &mut D,
        client: &Client,
        subsurface: &WlSubsurface,
        request: wl_subsurface::Request,
        data: &SubsurfaceUserData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, D>,
    ) {
        if let Some((name, sibling)) = reorder_target(&request)
            && sibling == data.surface()
        {
            subsurface.post_error(
                wl_subsurface::Error::BadSurface,
                format!("{name}: a sub-surface cannot be placed relative to itself"),
            );
            return;
        }
        <CompositorState as Dispatch<WlSubsurface, SubsurfaceUserData, D>>::request(
            state, client, subsurface, request, data, dh, data_init,
        );
    }

    fn destroyed(
        state: &mut D,
        client: ClientId,
        subsurface: &WlSubsurface,
        data: &SubsurfaceUserData,
    ) {
        <CompositorState as Dispatch<WlSubsurface, SubsurfaceUserData, D>>::destroyed(
            state, client, subsurface, data,
        );
    }
}

/// The reference surface of a `place_above`/`place_below`, with the request's name.
fn reorder_target(
    request: &wl_subsurface::Request,
) -> Option<(
    &'static str,
    &smithay::reexports::wayland_server::protocol::wl_surface::WlSurface,
)> {
    match request {
        wl_subsurface::Request::PlaceAbove { sibling } => Some(("place_above", sibling)),
        wl_subsurface::Request::PlaceBelow { sibling } => Some(("place_below", sibling)),
        _ => None,
    }
}

/// `wl_shm_pool`'s handler: Smithay's, behind a check that a pool is never resized to zero or
/// a negative size.
#[derive(Debug)]
pub struct ShmPoolGuard;

impl<D> Dispatch<WlShmPool, ShmPoolUserData, D> for ShmPoolGuard
where
    D: Dispatch<WlShmPool, ShmPoolUserData>
        + Dispatch<WlBuffer, ShmBufferUserData>
        + BufferHandler
        + ShmHandler
        + 'static,
{
    fn request(
        state: &mut D,
        client: &Client,
        pool: &WlShmPool,
        request: wl_shm_pool::Request,
        data: &ShmPoolUserData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, D>,
    ) {
        if let wl_shm_pool::Request::Resize { size } = request
            && size <= 0
        {
            // libwayland answers a pool that cannot grow to `size` with `invalid_fd` too.
            pool.post_error(
                wl_shm::Error::InvalidFd,
                format!("wl_shm_pool.resize({size}): a pool's size must be positive"),
            );
            return;
        }
        <ShmState as Dispatch<WlShmPool, ShmPoolUserData, D>>::request(
            state, client, pool, request, data, dh, data_init,
        );
    }

    fn destroyed(state: &mut D, client: ClientId, pool: &WlShmPool, data: &ShmPoolUserData) {
        <ShmState as Dispatch<WlShmPool, ShmPoolUserData, D>>::destroyed(state, client, pool, data);
    }
}

/// `zwp_linux_buffer_params_v1`'s handler: Smithay's, behind a check that a buffer's size is
/// positive before its planes are looked at.
#[derive(Debug)]
pub struct DmabufParamsGuard;

impl<D> Dispatch<ZwpLinuxBufferParamsV1, DmabufParamsData, D> for DmabufParamsGuard
where
    D: Dispatch<ZwpLinuxBufferParamsV1, DmabufParamsData>
        + Dispatch<WlBuffer, Dmabuf>
        + BufferHandler
        + DmabufHandler
        + 'static,
{
    fn request(
        state: &mut D,
        client: &Client,
        params: &ZwpLinuxBufferParamsV1,
        request: zwp_linux_buffer_params_v1::Request,
        data: &DmabufParamsData,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, D>,
    ) {
        let size = match &request {
            zwp_linux_buffer_params_v1::Request::Create { width, height, .. }
            | zwp_linux_buffer_params_v1::Request::CreateImmed { width, height, .. } => {
                Some((*width, *height))
            }
            _ => None,
        };
        if let Some((width, height)) = size
            && (width < 1 || height < 1)
        {
            params.post_error(
                zwp_linux_buffer_params_v1::Error::InvalidDimensions,
                format!("a buffer of {width}x{height}: width and height must be positive"),
            );
            return;
        }
        <DmabufState as Dispatch<ZwpLinuxBufferParamsV1, DmabufParamsData, D>>::request(
            state, client, params, request, data, dh, data_init,
        );
    }

    fn destroyed(
        state: &mut D,
        client: ClientId,
        params: &ZwpLinuxBufferParamsV1,
        data: &DmabufParamsData,
    ) {
        <DmabufState as Dispatch<ZwpLinuxBufferParamsV1, DmabufParamsData, D>>::destroyed(
            state, client, params, data,
        );
    }
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

/// Smithay's `delegate_compositor!`, with `wl_subsurface` behind [`SubsurfaceGuard`].
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
        ] => $crate::smithay::__smithay::wayland::compositor::CompositorState);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_server::protocol::wl_region::WlRegion: $crate::smithay::__smithay::wayland::compositor::RegionUserData
        ] => $crate::smithay::__smithay::wayland::compositor::CompositorState);
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
