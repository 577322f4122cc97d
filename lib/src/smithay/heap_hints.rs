//! The server side of `wayheap_heap_hints_v1`: per-surface hints of the DMA-BUF heaps whose
//! buffers reach a plane, and delegated allocation with per-client quotas.
//!
//! linux-dmabuf feedback says which formats a plane takes, never which memory: a display engine
//! without an IOMMU scans out only physically contiguous buffers, and a client that allocated
//! from the system heap is composited however well its format fits. [`HeapHintsState`] sends each
//! surface the heaps (most preferred first) that reach the plane the compositor intends for it,
//! and allocates from them for clients that may not open `/dev/dma_heap/*` themselves. The kernel
//! charges heap memory to no cgroup, so the compositor keeps a quota per client: a client never
//! exhausts CMA, and what it received counts until it has closed every fd and mapping of it (the
//! compositor keeps one fd of each buffer and watches its reference count) or disconnects.
//!
//! ## How to use
//!
//! ```no_run
//! use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
//! use smithay::reexports::wayland_server::{Client, DisplayHandle};
//! use wayheap::smithay::heap_hints::{
//!     HeapHint, HeapHintsConfig, HeapHintsHandler, HeapHintsState, HintTarget,
//! };
//!
//! struct App {
//!     hints: HeapHintsState,
//! }
//!
//! impl HeapHintsHandler for App {
//!     fn heap_hints_state(&mut self) -> &mut HeapHintsState {
//!         &mut self.hints
//!     }
//!     fn surface_hints(&mut self, _surface: &WlSurface) -> Vec<HeapHint> {
//!         // The overlay planes of this display engine read contiguous memory only.
//!         vec![HeapHint::contiguous("default_cma_region", HintTarget::Overlay, 0).delegated()]
//!     }
//!     fn may_allocate(&mut self, _client: &Client, heap: &str) -> bool {
//!         heap == "default_cma_region"
//!     }
//! }
//! wayheap::delegate_heap_hints!(App);
//!
//! fn setup(dh: &DisplayHandle) -> App {
//!     App { hints: HeapHintsState::new::<App>(dh, HeapHintsConfig::default()) }
//! }
//! // When a surface moves (other plane, composited): app.hints.set_hints(&surface, new_list).
//! ```

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};

use smithay::reexports::wayland_server::backend::{ClientId, GlobalId};
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{
    Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource, Weak,
};

use crate::dmabuf::DmaBuf;
use crate::heap::{HeapDir, HeapError};
use crate::protocols::heap_hints::server::{
    wayheap_heap_allocation_v1::{self, WayheapHeapAllocationV1},
    wayheap_heap_hints_manager_v1::{self, WayheapHeapHintsManagerV1},
    wayheap_surface_heap_hints_v1::{self, WayheapSurfaceHeapHintsV1},
};

/// The version of `wayheap_heap_hints_manager_v1` this implements.
pub const VERSION: u32 = 1;

pub use crate::protocols::heap_hints::{HeapHint, HintTarget};

fn wire_flags(h: &HeapHint) -> wayheap_surface_heap_hints_v1::Flags {
    wayheap_surface_heap_hints_v1::Flags::from_bits_truncate(h.flag_bits())
}

fn wire_target(t: HintTarget) -> wayheap_surface_heap_hints_v1::Target {
    use wayheap_surface_heap_hints_v1::Target;
    match t {
        HintTarget::Primary => Target::Primary,
        HintTarget::Overlay => Target::Overlay,
        HintTarget::Cursor => Target::Cursor,
        // The compositor never means a target it does not know.
        HintTarget::Composition | HintTarget::Unknown(_) => Target::Composition,
    }
}

/// Limits of delegated allocation.
#[derive(Debug, Clone)]
pub struct HeapHintsConfig {
    /// Largest single allocation (larger is a protocol error): 256 MiB by default.
    pub max_size: u64,
    /// What one client (one connection) may hold of delegated memory at a time, all heaps
    /// together: 64 MiB by default.
    pub quota: u64,
    /// What all clients together may hold of delegated memory: 128 MiB by default. The
    /// per-client quota is per connection; this bounds a client that opens many connections,
    /// and keeps CMA for the compositor's own scan-out buffers.
    pub total_quota: u64,
    /// How many delegated buffers one client may hold at a time: 256 by default. The compositor
    /// keeps an fd of each, so this also bounds what a client costs it in fds.
    pub max_buffers: usize,
    /// Where the heaps are.
    pub heaps: HeapDir,
}

impl Default for HeapHintsConfig {
    fn default() -> Self {
        Self {
            max_size: 256 << 20,
            quota: 64 << 20,
            total_quota: 128 << 20,
            max_buffers: 256,
            heaps: HeapDir::default(),
        }
    }
}

/// The compositor's side of the protocol; see the module docs.
pub trait HeapHintsHandler {
    /// The state.
    fn heap_hints_state(&mut self) -> &mut HeapHintsState;
    /// The hints of a surface whose client just asked for them (most preferred first; empty:
    /// any memory serves). Later changes go through [`HeapHintsState::set_hints`].
    fn surface_hints(&mut self, surface: &WlSurface) -> Vec<HeapHint>;
    /// Whether `client` may have delegated memory from `heap` (default: yes). A refusal is the
    /// `not_allowed` failure, not a protocol error.
    fn may_allocate(&mut self, client: &Client, heap: &str) -> bool {
        let _ = (client, heap);
        true
    }
}

/// One buffer a client received.
#[derive(Debug)]
struct Delegated {
    /// The compositor's own handle: its file's reference count tells whether anyone else holds
    /// the buffer. (It also keeps the buffer in the compositor's accounting ledger.)
    buf: DmaBuf,
    size: u64,
    heap: String,
}

impl Delegated {
    /// Whether anybody but the compositor's own fd still holds the buffer (an fd, a mapping, a
    /// wl_buffer import).
    fn held(&self) -> bool {
        match self.buf.info().ok().and_then(|i| i.count) {
            Some(count) => count > 1,
            // Unknown: keep counting it, never under-account.
            None => true,
        }
    }
}

/// What one client holds and was offered.
#[derive(Debug, Default)]
struct Account {
    pid: Option<i32>,
    /// Heaps hinted to it with the delegated flag.
    offered: Vec<String>,
    buffers: Vec<Delegated>,
}

impl Account {
    /// Forgets buffers nobody holds any more; returns the bytes still held.
    fn live(&mut self) -> u64 {
        self.buffers.retain(Delegated::held);
        self.buffers.iter().map(|b| b.size).sum()
    }
}

/// Delegated memory one client holds (for logs, state files and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientUsage {
    /// The client's pid, if known.
    pub pid: Option<i32>,
    /// Buffers it holds.
    pub buffers: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Per heap: (name, bytes).
    pub per_heap: Vec<(String, u64)>,
}

#[derive(Debug)]
struct SurfaceEntry {
    surface: Weak<WlSurface>,
    object: WayheapSurfaceHeapHintsV1,
    sent: Vec<HeapHint>,
}

/// The global and everything it tracks.
#[derive(Debug)]
pub struct HeapHintsState {
    display: DisplayHandle,
    global: GlobalId,
    config: HeapHintsConfig,
    surfaces: Vec<SurfaceEntry>,
    accounts: HashMap<ClientId, Account>,
    /// Allocation requests answered, by outcome, for tests and logs.
    refusals: u64,
}

/// User data of a surface hints object.
#[derive(Debug)]
pub struct SurfaceHintsData {
    surface: Weak<WlSurface>,
}

impl HeapHintsState {
    /// Creates the `wayheap_heap_hints_manager_v1` global.
    pub fn new<D>(dh: &DisplayHandle, config: HeapHintsConfig) -> Self
    where
        D: GlobalDispatch<WayheapHeapHintsManagerV1, ()>
            + Dispatch<WayheapHeapHintsManagerV1, ()>
            + Dispatch<WayheapSurfaceHeapHintsV1, SurfaceHintsData>
            + Dispatch<WayheapHeapAllocationV1, ()>
            + HeapHintsHandler
            + 'static,
    {
        let global = dh.create_global::<D, WayheapHeapHintsManagerV1, ()>(VERSION, ());
        // No dma-buf is larger than the address space; keep sizes far from overflow.
        let mut config = config;
        config.max_size = config.max_size.clamp(1, 1 << 48);
        Self {
            display: dh.clone(),
            global,
            config,
            surfaces: Vec::new(),
            accounts: HashMap::new(),
            refusals: 0,
        }
    }

    /// The global's id (to remove it).
    pub fn global(&self) -> GlobalId {
        self.global.clone()
    }

    /// The limits.
    pub fn config(&self) -> &HeapHintsConfig {
        &self.config
    }

    /// Sends `hints` to `surface`'s hints object (if its client asked for one) unless it already
    /// has exactly these: call it whenever the surface's target plane or output changes.
    pub fn set_hints(&mut self, surface: &WlSurface, hints: Vec<HeapHint>) {
        self.surfaces
            .retain(|e| e.surface.upgrade().is_ok() && e.object.is_alive());
        let Some(i) = self
            .surfaces
            .iter()
            .position(|e| e.surface.upgrade().ok().as_ref() == Some(surface))
        else {
            return;
        };
        if self.surfaces[i].sent == hints {
            return;
        }
        let client = self.surfaces[i].object.client().map(|c| c.id());
        send(&self.surfaces[i].object, &hints);
        if let Some(id) = client {
            let account = self.accounts.entry(id).or_default();
            for h in hints.iter().filter(|h| h.delegated) {
                if !account.offered.contains(&h.heap) {
                    account.offered.push(h.heap.clone());
                }
            }
        }
        self.surfaces[i].sent = hints;
    }

    /// The hints `surface` was last sent, if it has a hints object.
    pub fn hints_of(&self, surface: &WlSurface) -> Option<&[HeapHint]> {
        self.surfaces
            .iter()
            .find(|e| e.surface.upgrade().ok().as_ref() == Some(surface))
            .map(|e| e.sent.as_slice())
    }

    /// Forgets a client's account at once (its quota is free again). Not needed for
    /// correctness: accounts of disconnected clients are dropped by the next
    /// [`reclaim`](Self::reclaim), [`usage`](Self::usage) or allocation. Buffers it still holds in
    /// other processes are not freed by this; they are no longer charged to anyone.
    pub fn client_disconnected(&mut self, client: ClientId) {
        if let Some(a) = self.accounts.remove(&client) {
            let bytes: u64 = a.buffers.iter().map(|b| b.size).sum();
            if bytes > 0 {
                tracing::info!(pid = ?a.pid, bytes, "client gone: its delegated quota is free");
            }
        }
    }

    /// Forgets the accounts of clients that are gone (their quota is free again).
    fn prune(&mut self) {
        let display = self.display.clone();
        self.accounts.retain(|id, a| {
            let alive = display.backend_handle().get_client_data(id.clone()).is_ok();
            if !alive && !a.buffers.is_empty() {
                tracing::info!(pid = ?a.pid, "client gone: its delegated quota is free");
            }
            alive
        });
    }

    /// Lets go of the compositor's fd of every delegated buffer nobody else holds any more (so
    /// the kernel frees it) and forgets clients that disconnected. Call it now and then (e.g.
    /// once a second): released memory otherwise stays allocated until the next allocation or
    /// [`usage`](Self::usage).
    pub fn reclaim(&mut self) {
        self.prune();
        for a in self.accounts.values_mut() {
            a.live();
        }
    }

    /// What each client holds of delegated memory, as of the last [`reclaim`](Self::reclaim) or
    /// allocation (clients that disconnected are dropped here). Reads nothing from the kernel:
    /// cheap enough for every frame.
    pub fn usage(&mut self) -> Vec<ClientUsage> {
        self.prune();
        let mut out: Vec<ClientUsage> = self
            .accounts
            .values()
            .map(|a| {
                let bytes = a.buffers.iter().map(|b| b.size).sum();
                let mut per_heap: Vec<(String, u64)> = Vec::new();
                for b in &a.buffers {
                    match per_heap.iter_mut().find(|(h, _)| *h == b.heap) {
                        Some((_, n)) => *n += b.size,
                        None => per_heap.push((b.heap.clone(), b.size)),
                    }
                }
                ClientUsage {
                    pid: a.pid,
                    buffers: a.buffers.len(),
                    bytes,
                    per_heap,
                }
            })
            .filter(|u| u.buffers > 0)
            .collect();
        out.sort_by_key(|u| u.pid);
        out
    }

    /// Allocation requests refused so far (not allowed, quota, heap full, unavailable).
    pub fn refusals(&self) -> u64 {
        self.refusals
    }

    fn allocate(
        &mut self,
        client: &Client,
        pid: Option<i32>,
        heap: &str,
        size: u64,
    ) -> Result<(OwnedFd, u64), (wayheap_heap_allocation_v1::Failure, String)> {
        use wayheap_heap_allocation_v1::Failure;
        self.prune();
        let total_quota = self.config.total_quota;
        let total: u64 = self.accounts.values_mut().map(Account::live).sum();
        let quota = self.config.quota;
        let account = self.accounts.entry(client.id()).or_default();
        account.pid = pid;
        let held = account.live();
        let page = rustix::param::page_size() as u64;
        if total.saturating_add(size.div_ceil(page).saturating_mul(page)) > total_quota {
            return Err((
                Failure::QuotaExceeded,
                format!(
                    "all clients together hold {total} bytes of delegated memory, and the compositor grants at most {total_quota}; try again later"
                ),
            ));
        }
        let max_buffers = self.config.max_buffers;
        if account.buffers.len() >= max_buffers {
            return Err((
                Failure::QuotaExceeded,
                format!(
                    "this client holds {max_buffers} delegated buffers, the most it may; close some (fds, mappings, wl_buffers) first"
                ),
            ));
        }
        // `size` is at most max_size, which `new` keeps far from overflow.
        let rounded = size.div_ceil(page).saturating_mul(page);
        if held.saturating_add(rounded) > quota {
            return Err((
                Failure::QuotaExceeded,
                format!(
                    "{rounded} bytes from {heap} would exceed this client's quota of {quota} bytes: it holds {held} bytes in {} buffers; close some (fds, mappings, wl_buffers) first",
                    account.buffers.len()
                ),
            ));
        }
        let heap_node = self.config.heaps.open(heap).map_err(|e| {
            (
                Failure::Unavailable,
                format!("the compositor cannot open heap {heap}: {e}"),
            )
        })?;
        let usize_size = usize::try_from(size).map_err(|_| {
            (
                Failure::Unavailable,
                format!("{size} bytes do not fit this machine's address space"),
            )
        })?;
        // One usage for all clients: the accounting ledger keeps a row per usage forever.
        let buf = heap_node
            .allocate_for(usize_size, "delegated")
            .map_err(|e| match e {
                HeapError::OutOfMemory { .. } => (
                    Failure::HeapFull,
                    format!("heap {heap} has no {rounded} bytes free: {e}"),
                ),
                e => (Failure::Unavailable, format!("heap {heap}: {e}")),
            })?;
        let real = buf.size() as u64;
        let client_fd = buf.fd().try_clone_to_owned().map_err(|e| {
            (
                Failure::Unavailable,
                format!("duplicating the dma-buf fd: {e}"),
            )
        })?;
        let account = self.accounts.entry(client.id()).or_default();
        account.buffers.push(Delegated {
            buf,
            size: real,
            heap: heap.to_owned(),
        });
        tracing::info!(
            ?pid,
            heap,
            bytes = real,
            held = held + real,
            quota,
            "delegated allocation"
        );
        Ok((client_fd, real))
    }
}

fn send(object: &WayheapSurfaceHeapHintsV1, hints: &[HeapHint]) {
    for h in hints {
        object.heap(
            h.heap.clone(),
            wire_flags(h),
            h.pitch_alignment,
            h.offset_alignment,
            h.tranche,
            wire_target(h.target),
        );
    }
    object.done();
}

fn split(v: u64) -> (u32, u32) {
    ((v >> 32) as u32, v as u32)
}

impl<D> GlobalDispatch<WayheapHeapHintsManagerV1, (), D> for HeapHintsState
where
    D: GlobalDispatch<WayheapHeapHintsManagerV1, ()>
        + Dispatch<WayheapHeapHintsManagerV1, ()>
        + Dispatch<WayheapSurfaceHeapHintsV1, SurfaceHintsData>
        + Dispatch<WayheapHeapAllocationV1, ()>
        + HeapHintsHandler
        + 'static,
{
    fn bind(
        state: &mut D,
        dh: &DisplayHandle,
        client: &Client,
        resource: New<WayheapHeapHintsManagerV1>,
        _: &(),
        data_init: &mut DataInit<'_, D>,
    ) {
        let manager = data_init.init(resource, ());
        let (hi, lo) = split(state.heap_hints_state().config.max_size);
        manager.max_size(hi, lo);
        let pid = client.get_credentials(dh).ok().map(|c| c.pid);
        state
            .heap_hints_state()
            .accounts
            .entry(client.id())
            .or_default()
            .pid = pid;
    }
}

impl<D> Dispatch<WayheapHeapHintsManagerV1, (), D> for HeapHintsState
where
    D: Dispatch<WayheapHeapHintsManagerV1, ()>
        + Dispatch<WayheapSurfaceHeapHintsV1, SurfaceHintsData>
        + Dispatch<WayheapHeapAllocationV1, ()>
        + HeapHintsHandler
        + 'static,
{
    fn request(
        state: &mut D,
        client: &Client,
        manager: &WayheapHeapHintsManagerV1,
        request: wayheap_heap_hints_manager_v1::Request,
        _: &(),
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, D>,
    ) {
        use wayheap_heap_hints_manager_v1::{Error, Request};
        match request {
            Request::Destroy => {}
            Request::GetSurfaceHints { id, surface } => {
                let exists = state.heap_hints_state().surfaces.iter().any(|e| {
                    e.object.is_alive() && e.surface.upgrade().ok().as_ref() == Some(&surface)
                });
                if exists {
                    manager.post_error(
                        Error::HintsExist,
                        format!(
                            "{} already has a wayheap_surface_heap_hints_v1",
                            surface.id()
                        ),
                    );
                    return;
                }
                let object = data_init.init(
                    id,
                    SurfaceHintsData {
                        surface: surface.downgrade(),
                    },
                );
                let hints = state.surface_hints(&surface);
                let st = state.heap_hints_state();
                st.surfaces.push(SurfaceEntry {
                    surface: surface.downgrade(),
                    object,
                    sent: Vec::new(),
                });
                // An empty list is sent too: "any memory serves" is an answer.
                if hints.is_empty() {
                    if let Some(e) = st.surfaces.last() {
                        send(&e.object, &[]);
                    }
                } else {
                    st.set_hints(&surface, hints);
                }
            }
            Request::Allocate {
                id,
                heap,
                size_hi,
                size_lo,
            } => {
                let size = (u64::from(size_hi) << 32) | u64::from(size_lo);
                let max = state.heap_hints_state().config.max_size;
                if size == 0 || size > max {
                    manager.post_error(
                        Error::InvalidSize,
                        format!("allocate of {size} bytes: sizes are 1 to {max} bytes"),
                    );
                    return;
                }
                let offered = state
                    .heap_hints_state()
                    .accounts
                    .get(&client.id())
                    .is_some_and(|a| a.offered.contains(&heap));
                if !offered {
                    manager.post_error(
                        Error::UnknownHeap,
                        format!(
                            "allocate from {heap:?}: no surface of this client was hinted that heap for delegated allocation"
                        ),
                    );
                    return;
                }
                let allocation = data_init.init(id, ());
                let pid = client.get_credentials(dh).ok().map(|c| c.pid);
                let outcome = if state.may_allocate(client, &heap) {
                    state.heap_hints_state().allocate(client, pid, &heap, size)
                } else {
                    Err((
                        wayheap_heap_allocation_v1::Failure::NotAllowed,
                        format!("this client may not have memory from {heap}"),
                    ))
                };
                match outcome {
                    Ok((fd, real)) => {
                        let (hi, lo) = split(real);
                        allocation.allocated(fd.as_fd(), hi, lo);
                    }
                    Err((reason, message)) => {
                        tracing::info!(?pid, heap, size, ?reason, %message, "delegated allocation refused");
                        state.heap_hints_state().refusals += 1;
                        allocation.failed(reason, message);
                    }
                }
            }
        }
    }
}

impl<D> Dispatch<WayheapSurfaceHeapHintsV1, SurfaceHintsData, D> for HeapHintsState
where
    D: Dispatch<WayheapSurfaceHeapHintsV1, SurfaceHintsData> + HeapHintsHandler + 'static,
{
    fn request(
        state: &mut D,
        _: &Client,
        object: &WayheapSurfaceHeapHintsV1,
        request: wayheap_surface_heap_hints_v1::Request,
        _: &SurfaceHintsData,
        _: &DisplayHandle,
        _: &mut DataInit<'_, D>,
    ) {
        // The only request is destroy.
        let wayheap_surface_heap_hints_v1::Request::Destroy = request;
        state
            .heap_hints_state()
            .surfaces
            .retain(|e| e.object != *object);
    }

    fn destroyed(
        state: &mut D,
        _: ClientId,
        object: &WayheapSurfaceHeapHintsV1,
        _: &SurfaceHintsData,
    ) {
        state
            .heap_hints_state()
            .surfaces
            .retain(|e| e.object != *object);
    }
}

impl SurfaceHintsData {
    /// The surface the hints are for, while it lives.
    pub fn surface(&self) -> Option<WlSurface> {
        self.surface.upgrade().ok()
    }
}

impl<D> Dispatch<WayheapHeapAllocationV1, (), D> for HeapHintsState
where
    D: Dispatch<WayheapHeapAllocationV1, ()> + HeapHintsHandler + 'static,
{
    fn request(
        _: &mut D,
        _: &Client,
        _: &WayheapHeapAllocationV1,
        _: wayheap_heap_allocation_v1::Request,
        _: &(),
        _: &DisplayHandle,
        _: &mut DataInit<'_, D>,
    ) {
        // destroy only: the buffer stays the client's.
    }
}

/// Implements the heap-hints protocol for `$ty` (which implements [`HeapHintsHandler`]) by
/// delegating to [`HeapHintsState`].
#[macro_export]
macro_rules! delegate_heap_hints {
    ($ty:ty) => {
        $crate::smithay::__smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            $crate::protocols::heap_hints::server::wayheap_heap_hints_manager_v1::WayheapHeapHintsManagerV1: ()
        ] => $crate::smithay::heap_hints::HeapHintsState);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::protocols::heap_hints::server::wayheap_heap_hints_manager_v1::WayheapHeapHintsManagerV1: ()
        ] => $crate::smithay::heap_hints::HeapHintsState);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::protocols::heap_hints::server::wayheap_surface_heap_hints_v1::WayheapSurfaceHeapHintsV1: $crate::smithay::heap_hints::SurfaceHintsData
        ] => $crate::smithay::heap_hints::HeapHintsState);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::protocols::heap_hints::server::wayheap_heap_allocation_v1::WayheapHeapAllocationV1: ()
        ] => $crate::smithay::heap_hints::HeapHintsState);
    };
}
