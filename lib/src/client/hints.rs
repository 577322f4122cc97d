//! The client side of `wayheap_heap_hints_v1`: which DMA-BUF heap the compositor says reaches a
//! plane for a surface, allocation from it (directly, or delegated to the compositor when the
//! heap node cannot be opened), and the decision when the compositor has no such global.
//!
//! Hints take priority over a feedback-only [`decide`](super::decide): feedback says which
//! formats a plane takes, hints say which memory. Without the global (any compositor but one
//! that implements it), [`HintedAllocator::allocate`] falls back to the policy walk for the
//! decision's usage.
//!
//! ## How to use
//!
//! ```no_run
//! use wayheap::client::hints::{HeapHintsCollector, HintedAllocator};
//! use wayheap::policy::Allocator;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // In Dispatch<WayheapSurfaceHeapHintsV1, ()>::event: feed every event to the collector;
//! // `Some(list)` comes with `done`.
//! let mut collector = HeapHintsCollector::default();
//! # let list = collector.current().to_vec();
//! let alloc = HintedAllocator::new(Allocator::from_env()?);
//! match alloc.choose(Some(&list)) {
//!     Some(choice) => println!("hinted: {choice}"), // open it, or ask the compositor
//!     None => println!("no usable hint: the policy decides"),
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use wayland_client::{Connection, Dispatch, QueueHandle, WEnum};

use crate::dmabuf::{DmaBuf, DmaBufError};
use crate::heap::HeapError;
use crate::policy::{AllocError, Allocator, Constraints};
use crate::protocols::heap_hints::client::{
    wayheap_heap_allocation_v1::{self, WayheapHeapAllocationV1},
    wayheap_heap_hints_manager_v1::{self, WayheapHeapHintsManagerV1},
    wayheap_surface_heap_hints_v1,
};

pub use crate::protocols::heap_hints::{HeapHint, HintTarget};

/// Collects one hints object's events: a list is complete, and replaces the last, at `done`.
#[derive(Debug, Default)]
pub struct HeapHintsCollector {
    pending: Vec<HeapHint>,
    current: Vec<HeapHint>,
    updates: u64,
}

impl HeapHintsCollector {
    /// Feeds one event; returns the new list at `done`.
    pub fn event(&mut self, event: wayheap_surface_heap_hints_v1::Event) -> Option<&[HeapHint]> {
        use wayheap_surface_heap_hints_v1::{Event, Flags};
        match event {
            Event::Heap {
                name,
                flags,
                pitch_alignment,
                offset_alignment,
                tranche,
                target,
            } => {
                let flags = match flags {
                    WEnum::Value(f) => f,
                    // Bits this version does not know: keep the known ones.
                    WEnum::Unknown(raw) => Flags::from_bits_truncate(raw),
                };
                let target = HintTarget::from_raw(match target {
                    WEnum::Value(t) => t as u32,
                    WEnum::Unknown(raw) => raw,
                });
                self.pending.push(HeapHint {
                    heap: name,
                    contiguous: flags.contains(Flags::Contiguous),
                    uncached: flags.contains(Flags::Uncached),
                    dma32: flags.contains(Flags::Dma32),
                    delegated: flags.contains(Flags::Delegated),
                    // A zero or non-power-of-two alignment from a broken compositor is no
                    // constraint rather than a division by zero later.
                    pitch_alignment: sane_alignment(pitch_alignment),
                    offset_alignment: sane_alignment(offset_alignment),
                    tranche,
                    target,
                });
                None
            }
            Event::Done => {
                self.current = std::mem::take(&mut self.pending);
                self.updates += 1;
                Some(&self.current)
            }
        }
    }

    /// The last complete list (empty before the first `done`, or when any memory serves).
    pub fn current(&self) -> &[HeapHint] {
        &self.current
    }

    /// How many complete lists arrived.
    pub fn updates(&self) -> u64 {
        self.updates
    }
}

fn sane_alignment(a: u32) -> u32 {
    if a.is_power_of_two() { a } else { 1 }
}

/// How a hinted heap will be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HintChoice {
    /// This process can open the heap node: allocate from it directly.
    Open(HeapHint),
    /// It cannot, but the compositor allocates from that heap for it.
    Delegate(HeapHint),
}

impl HintChoice {
    /// The hint chosen.
    pub fn hint(&self) -> &HeapHint {
        match self {
            HintChoice::Open(h) | HintChoice::Delegate(h) => h,
        }
    }
}

impl fmt::Display for HintChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HintChoice::Open(h) => write!(f, "open {h}"),
            HintChoice::Delegate(h) => write!(f, "ask the compositor for {h}"),
        }
    }
}

/// Why a hinted allocation failed.
#[derive(Debug, thiserror::Error)]
pub enum HintError {
    /// Opening or allocating from the heap failed.
    #[error("allocating from the hinted heap failed")]
    Heap(#[from] HeapError),
    /// The policy walk (no usable hint) failed.
    #[error(transparent)]
    Policy(#[from] AllocError),
    /// The compositor refused a delegated allocation.
    #[error("the compositor refused to allocate from {heap}: {reason:?}: {message}")]
    Refused {
        /// The heap asked for.
        heap: String,
        /// Its reason.
        reason: Refusal,
        /// Its words.
        message: String,
    },
    /// The fd the compositor sent is not a dma-buf.
    #[error("the fd the compositor sent is not a usable dma-buf")]
    NotADmaBuf(#[from] DmaBufError),
    /// The connection failed while waiting for the answer (a protocol error is read from the
    /// connection; see [`crate::client::BufferError::from_protocol`]).
    #[error("waiting for the compositor's allocation: {0}")]
    Connection(String),
}

/// The compositor's reasons for refusing a delegated allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client may not have memory from that heap.
    NotAllowed,
    /// The client's quota would be exceeded.
    QuotaExceeded,
    /// The heap is full.
    HeapFull,
    /// Another reason.
    Unavailable,
    /// A reason this version does not know.
    Unknown(u32),
}

/// The answer to one delegated allocation, filled by its event.
pub type PendingAllocation = Arc<Mutex<Option<Result<DmaBuf, HintError>>>>;

/// User data of a `wayheap_heap_allocation_v1`: where its answer goes.
#[derive(Debug, Clone)]
pub struct AllocationData {
    heap: String,
    answer: PendingAllocation,
}

/// What a client needs of the manager global: its `max_size`.
#[derive(Debug, Default, Clone)]
pub struct ManagerData {
    max_size: Arc<Mutex<Option<u64>>>,
}

impl ManagerData {
    /// The compositor's largest allocation, once its `max_size` event arrived.
    pub fn max_size(&self) -> Option<u64> {
        *self.max_size.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Chooses memory from hints, falling back to the policy.
#[derive(Debug)]
pub struct HintedAllocator {
    policy: Allocator,
}

impl HintedAllocator {
    /// Uses `policy` where no hint is usable, and its heap directory for hinted heaps.
    pub fn new(policy: Allocator) -> Self {
        Self { policy }
    }

    /// The first hint this process can act on: a heap it can open, else one the compositor
    /// allocates from for it. `None` without hints (no global, or "any memory serves").
    pub fn choose(&self, hints: Option<&[HeapHint]>) -> Option<HintChoice> {
        let hints = hints?;
        for h in hints {
            match self.policy.heaps().open(&h.heap) {
                Ok(_) => return Some(HintChoice::Open(h.clone())),
                Err(e) => {
                    tracing::debug!(heap = %h.heap, %e, "hinted heap not openable here");
                    if h.delegated {
                        return Some(HintChoice::Delegate(h.clone()));
                    }
                }
            }
        }
        None
    }

    /// The allocator for `usage` under `choice`, for callers that lay images out and allocate
    /// later (a buffer pool, a swapchain): with [`HintChoice::Open`], the hinted heap first and
    /// the hint's pitch and offset alignment as constraints, the usage's own providers after it
    /// as fallbacks; otherwise the policy as it is (a delegated choice cannot be served from
    /// here: the compositor allocates, through [`request_delegated`]).
    pub fn allocator_for(&self, choice: Option<&HintChoice>, usage: &str) -> Allocator {
        match choice {
            Some(HintChoice::Open(h)) => {
                let constraints = Constraints {
                    pitch_align: Some(h.pitch_alignment),
                    offset_align: Some(h.offset_alignment),
                    ..Constraints::default()
                };
                self.policy
                    .clone()
                    .with_heap_first(usage, &h.heap, &constraints)
            }
            _ => self.policy.clone(),
        }
    }

    /// Allocates `size` bytes for `usage`: from the hinted heap when `choice` is
    /// [`HintChoice::Open`], else through the policy (a delegated choice goes through
    /// [`request_delegated`] instead). Returns the buffer and who served it.
    pub fn allocate(
        &self,
        choice: Option<&HintChoice>,
        usage: &str,
        size: usize,
    ) -> Result<(DmaBuf, String), HintError> {
        match choice {
            Some(HintChoice::Open(h)) => {
                let heap = self.policy.heaps().open(&h.heap)?;
                Ok((heap.allocate_for(size, usage)?, h.heap.clone()))
            }
            _ => {
                let a = self.policy.allocate(usage, size, &Constraints::default())?;
                Ok((a.buffer, a.provider))
            }
        }
    }
}

/// Sends `allocate` for `size` bytes of `heap`; the answer lands in the returned slot when the
/// event is dispatched (roundtrip, or [`wait_delegated`] on the queue of `qh`).
///
/// The request is sent as asked: a size of 0 or above the compositor's `max_size`, or a heap not
/// hinted for delegation, is a protocol error that ends the connection. Check with
/// [`check_delegated`] first.
pub fn request_delegated<D>(
    manager: &WayheapHeapHintsManagerV1,
    heap: &str,
    size: u64,
    qh: &QueueHandle<D>,
) -> (WayheapHeapAllocationV1, PendingAllocation)
where
    D: Dispatch<WayheapHeapAllocationV1, AllocationData> + 'static,
{
    let answer: PendingAllocation = Arc::default();
    let object = manager.allocate(
        heap.to_owned(),
        (size >> 32) as u32,
        size as u32,
        qh,
        AllocationData {
            heap: heap.to_owned(),
            answer: answer.clone(),
        },
    );
    (object, answer)
}

/// Whether `allocate` of `size` bytes from `heap` is a request the compositor accepts: not 0,
/// within `max_size` (once the manager's event arrived), and `heap` among `hints` with the
/// delegated flag. The error says which rule it breaks.
pub fn check_delegated(
    manager: &ManagerData,
    hints: &[HeapHint],
    heap: &str,
    size: u64,
) -> Result<(), String> {
    if size == 0 {
        return Err("a delegated allocation of 0 bytes".to_owned());
    }
    if let Some(max) = manager.max_size()
        && size > max
    {
        return Err(format!(
            "{size} bytes exceed the compositor's largest delegated allocation ({max} bytes)"
        ));
    }
    if !hints.iter().any(|h| h.delegated && h.heap == heap) {
        return Err(format!(
            "heap {heap} was not hinted for delegated allocation"
        ));
    }
    Ok(())
}

/// Dispatches `queue` until `pending` has its answer (`queue` must be the queue whose handle
/// [`request_delegated`] was given).
pub fn wait_delegated<D: 'static>(
    queue: &mut wayland_client::EventQueue<D>,
    state: &mut D,
    pending: &PendingAllocation,
) -> Result<DmaBuf, HintError> {
    loop {
        if let Some(answer) = pending.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return answer;
        }
        queue
            .blocking_dispatch(state)
            .map_err(|e| HintError::Connection(e.to_string()))?;
    }
}

/// The dispatch of the protocol's objects for a client state `D`: use through
/// [`delegate_heap_hints_client!`](crate::delegate_heap_hints_client); surface hints go to the
/// client's own `Dispatch<WayheapSurfaceHeapHintsV1, _>`, usually into a
/// [`HeapHintsCollector`].
#[derive(Debug)]
pub struct HeapHintsDispatch;

impl<D> Dispatch<WayheapHeapHintsManagerV1, ManagerData, D> for HeapHintsDispatch
where
    D: Dispatch<WayheapHeapHintsManagerV1, ManagerData>,
{
    fn event(
        _: &mut D,
        _: &WayheapHeapHintsManagerV1,
        event: wayheap_heap_hints_manager_v1::Event,
        data: &ManagerData,
        _: &Connection,
        _: &QueueHandle<D>,
    ) {
        let wayheap_heap_hints_manager_v1::Event::MaxSize { size_hi, size_lo } = event;
        *data.max_size.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((u64::from(size_hi) << 32) | u64::from(size_lo));
    }
}

impl<D> Dispatch<WayheapHeapAllocationV1, AllocationData, D> for HeapHintsDispatch
where
    D: Dispatch<WayheapHeapAllocationV1, AllocationData>,
{
    fn event(
        _: &mut D,
        object: &WayheapHeapAllocationV1,
        event: wayheap_heap_allocation_v1::Event,
        data: &AllocationData,
        _: &Connection,
        _: &QueueHandle<D>,
    ) {
        use wayheap_heap_allocation_v1::{Event, Failure};
        let answer = match event {
            Event::Allocated { fd, .. } => import(fd),
            Event::Failed { reason, message } => Err(HintError::Refused {
                heap: data.heap.clone(),
                reason: match reason {
                    WEnum::Value(Failure::NotAllowed) => Refusal::NotAllowed,
                    WEnum::Value(Failure::QuotaExceeded) => Refusal::QuotaExceeded,
                    WEnum::Value(Failure::HeapFull) => Refusal::HeapFull,
                    WEnum::Value(Failure::Unavailable) => Refusal::Unavailable,
                    WEnum::Unknown(raw) => Refusal::Unknown(raw),
                },
                message,
            }),
        };
        *data.answer.lock().unwrap_or_else(|e| e.into_inner()) = Some(answer);
        object.destroy();
    }
}

fn import(fd: OwnedFd) -> Result<DmaBuf, HintError> {
    Ok(DmaBuf::import(fd)?)
}

/// Implements `Dispatch` for the heap-hints manager and allocation objects of `$ty` by
/// delegating to [`HeapHintsDispatch`](crate::client::hints::HeapHintsDispatch).
#[macro_export]
macro_rules! delegate_heap_hints_client {
    ($ty:ty) => {
        ::wayland_client::delegate_dispatch!($ty: [
            $crate::protocols::heap_hints::client::wayheap_heap_hints_manager_v1::WayheapHeapHintsManagerV1: $crate::client::hints::ManagerData
        ] => $crate::client::hints::HeapHintsDispatch);
        ::wayland_client::delegate_dispatch!($ty: [
            $crate::protocols::heap_hints::client::wayheap_heap_allocation_v1::WayheapHeapAllocationV1: $crate::client::hints::AllocationData
        ] => $crate::client::hints::HeapHintsDispatch);
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use wayheap_surface_heap_hints_v1::{Event, Flags, Target};

    fn heap(name: &str, flags: Flags, pitch: u32) -> Event {
        Event::Heap {
            name: name.into(),
            flags: WEnum::Value(flags),
            pitch_alignment: pitch,
            offset_alignment: 4096,
            tranche: 0,
            target: WEnum::Value(Target::Overlay),
        }
    }

    #[test]
    fn a_list_replaces_the_last_only_at_done() {
        let mut c = HeapHintsCollector::default();
        assert!(c.event(heap("cma", Flags::Contiguous, 64)).is_none());
        assert!(c.current().is_empty());
        let list = c.event(Event::Done).unwrap().to_vec();
        assert_eq!(list.len(), 1);
        assert!(list[0].contiguous && !list[0].delegated);
        assert_eq!(list[0].target, HintTarget::Overlay);
        // An empty update (done alone): any memory serves.
        assert!(c.event(Event::Done).unwrap().is_empty());
        assert_eq!(c.updates(), 2);
    }

    #[test]
    fn unknown_bits_and_targets_and_bad_alignments_are_tolerated() {
        let mut c = HeapHintsCollector::default();
        c.event(Event::Heap {
            name: "x".into(),
            flags: WEnum::Unknown(0x8000_0001),
            pitch_alignment: 0,
            offset_alignment: 48,
            tranche: 3,
            target: WEnum::Unknown(99),
        });
        let h = &c.event(Event::Done).unwrap()[0];
        assert!(h.contiguous);
        assert_eq!((h.pitch_alignment, h.offset_alignment), (1, 1));
        assert_eq!(h.target, HintTarget::Unknown(99));
        assert!(h.to_string().contains("target 99"), "{h}");
    }

    #[test]
    fn choice_prefers_an_openable_heap_then_delegation() {
        let dir = std::env::temp_dir().join(format!("wayheap-hints-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A plain file stands for an openable node (open is all `choose` does).
        std::fs::write(dir.join("system"), b"").unwrap();
        let alloc = HintedAllocator::new(Allocator::new(
            crate::policy::Policy::default(),
            crate::heap::HeapDir::new(&dir),
        ));
        let hint = |name: &str, delegated| HeapHint {
            heap: name.into(),
            contiguous: false,
            uncached: false,
            dma32: false,
            delegated,
            pitch_alignment: 1,
            offset_alignment: 1,
            tranche: 0,
            target: HintTarget::Overlay,
        };
        assert_eq!(alloc.choose(None), None);
        assert_eq!(alloc.choose(Some(&[])), None);
        let absent_not_delegated = [hint("cma", false), hint("system", false)];
        assert_eq!(
            alloc.choose(Some(&absent_not_delegated)),
            Some(HintChoice::Open(hint("system", false)))
        );
        let delegated_first = [hint("cma", true), hint("system", false)];
        assert_eq!(
            alloc.choose(Some(&delegated_first)),
            Some(HintChoice::Delegate(hint("cma", true)))
        );
        assert_eq!(alloc.choose(Some(&[hint("cma", false)])), None);
        // What the compositor would refuse is caught before sending.
        let manager = ManagerData::default();
        *manager.max_size.lock().unwrap() = Some(1 << 20);
        let offered = [hint("cma", true)];
        assert!(check_delegated(&manager, &offered, "cma", 4096).is_ok());
        assert!(check_delegated(&manager, &offered, "cma", 0).is_err());
        assert!(
            check_delegated(&manager, &offered, "cma", 2 << 20)
                .unwrap_err()
                .contains("exceed")
        );
        assert!(check_delegated(&manager, &offered, "system", 4096).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// Property tests (issue 15) of the compositor's heap hints as a client receives them: 4 000 +
/// 4 000 = 8 000 cases per run.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use wayheap_surface_heap_hints_v1::Event;

    /// A `heap` event's raw wire values.
    type Raw = (String, u32, u32, u32, u32, u32);

    fn raw_heap() -> impl Strategy<Value = Raw> {
        (
            "[a-z,_-]{0,12}|\\PC{0,6}",
            prop_oneof![0u32..16, any::<u32>()],
            prop_oneof![(0u32..32).prop_map(|b| 1 << b), any::<u32>()],
            prop_oneof![(0u32..32).prop_map(|b| 1 << b), any::<u32>()],
            any::<u32>(),
            prop_oneof![0u32..5, any::<u32>()],
        )
    }

    /// The event as wayland-client decodes it from the wire.
    fn event((name, flags, pitch, offset, tranche, target): &Raw) -> Event {
        Event::Heap {
            name: name.clone(),
            flags: WEnum::from(*flags),
            pitch_alignment: *pitch,
            offset_alignment: *offset,
            tranche: *tranche,
            target: WEnum::from(*target),
        }
    }

    proptest! {
        #![proptest_config(crate::proptest_config::config(4_000))]

        /// Any `heap` events, with unknown flag bits, targets and any alignments: a list
        /// appears only at `done` and is exactly the events since the last `done`, known flag
        /// bits kept, every alignment a power of two (a bad one is no constraint), the target
        /// as sent.
        #[test]
        fn hint_lists_are_what_was_sent_made_safe(rounds in vec(vec(raw_heap(), 0..4), 1..4)) {
            let mut c = HeapHintsCollector::default();
            let mut previous: Vec<HeapHint> = Vec::new();
            for (n, round) in rounds.iter().enumerate() {
                for raw in round {
                    prop_assert!(c.event(event(raw)).is_none());
                    prop_assert_eq!(c.current(), &previous[..]);
                }
                let list = c.event(Event::Done).expect("a list at done").to_vec();
                prop_assert_eq!(c.updates(), n as u64 + 1);
                prop_assert_eq!(list.len(), round.len());
                for (h, (name, flags, pitch, offset, tranche, target)) in list.iter().zip(round) {
                    prop_assert_eq!(&h.heap, name);
                    prop_assert_eq!(h.flag_bits(), flags & 0xf);
                    prop_assert!(h.pitch_alignment.is_power_of_two() && h.offset_alignment.is_power_of_two());
                    prop_assert!(h.pitch_alignment == *pitch || (!pitch.is_power_of_two() && h.pitch_alignment == 1));
                    prop_assert!(h.offset_alignment == *offset || (!offset.is_power_of_two() && h.offset_alignment == 1));
                    prop_assert_eq!(h.tranche, *tranche);
                    prop_assert_eq!(h.target, HintTarget::from_raw(*target));
                    prop_assert!(!h.to_string().is_empty());
                }
                previous = list;
            }
        }
    }

    proptest! {
        #![proptest_config(crate::proptest_config::config(4_000))]

        /// `check_delegated` accepts exactly what the compositor accepts: a size from 1 to its
        /// `max_size` (as sent in two halves), from a heap hinted for delegation.
        #[test]
        fn delegated_requests_are_checked_as_the_compositor_does(
            max in proptest::option::of(prop_oneof![any::<u64>(), 0u64..1 << 30]),
            size in prop_oneof![any::<u64>(), 0u64..1 << 31],
            hints in vec(raw_heap(), 0..4),
            pick in any::<proptest::sample::Index>(),
        ) {
            let manager = ManagerData::default();
            if let Some(max) = max {
                // The `max_size` event, through the dispatcher's reassembly.
                let (hi, lo) = ((max >> 32) as u32, max as u32);
                *manager.max_size.lock().unwrap() = Some((u64::from(hi) << 32) | u64::from(lo));
                prop_assert_eq!(manager.max_size(), Some(max));
            }
            let mut c = HeapHintsCollector::default();
            for raw in &hints {
                c.event(event(raw));
            }
            let list = c.event(Event::Done).unwrap().to_vec();
            let heap = if list.is_empty() { "system".to_owned() } else { list[pick.index(list.len())].heap.clone() };
            let offered = list.iter().any(|h| h.delegated && h.heap == heap);
            let ok = size > 0 && max.is_none_or(|m| size <= m) && offered;
            let r = check_delegated(&manager, &list, &heap, size);
            prop_assert_eq!(r.is_ok(), ok, "{:?}", r);
        }
    }
}
