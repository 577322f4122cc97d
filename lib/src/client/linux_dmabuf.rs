//! Binding `zwp_linux_dmabuf_v1` at the highest version both sides speak, and asking for
//! feedback only where the version has it.
//!
//! | version | what changes for a client |
//! |---|---|
//! | 3 | `modifier` events only ([`ModifierEvents`]); no feedback: dma-bufs are sampled when listed ([`decide_v3`](super::decide_v3)) |
//! | 4 | default and per-surface feedback (format table, tranches, `scanout` flag) |
//! | 5 | every plane must carry the same modifier (ours always do: LINEAR) |
//! | 6 | `main_device` no longer sent; tranches flagged `sampling`; `set_sampling_device` before `create` |
//!
//! [`Feedback::import_device`](super::Feedback::import_device) and
//! [`BufferSpec::sampling_device`](super::BufferSpec::sampling_device) carry the v6 parts, so a
//! caller writes the same code for every version.

use std::ops::RangeInclusive;
use std::sync::Mutex;

use wayland_client::globals::{BindError, GlobalList};
use wayland_client::protocol::wl_surface::WlSurface;
use wayland_client::{Dispatch, QueueHandle};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1, zwp_linux_dmabuf_v1,
    zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
};

/// The formats a version-3 compositor lists with `modifier` events on bind (from version 4 the
/// feedback's format table replaces them). A compositor that lists nothing can import no
/// dma-buf: a client must not send one (it would be a protocol error).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModifierEvents(pub Vec<super::FormatModifier>);

impl ModifierEvents {
    /// Feed every `zwp_linux_dmabuf_v1` event here (from its `Dispatch` impl).
    pub fn event(&mut self, event: zwp_linux_dmabuf_v1::Event) {
        match event {
            zwp_linux_dmabuf_v1::Event::Modifier {
                format,
                modifier_hi,
                modifier_lo,
            } => self.0.push(super::FormatModifier {
                format,
                modifier: (u64::from(modifier_hi) << 32) | u64::from(modifier_lo),
            }),
            // The version 1-2 event: the format with the implicit modifier.
            zwp_linux_dmabuf_v1::Event::Format { format } => self.0.push(super::FormatModifier {
                format,
                modifier: crate::policy::MODIFIER_INVALID,
            }),
            _ => {}
        }
    }
}

/// Where a client keeps its [`ModifierEvents`], for
/// [`delegate_linux_dmabuf!`](crate::delegate_linux_dmabuf).
pub trait ModifierEventsHandler {
    /// The list the global's `modifier` events go to.
    fn modifier_events(&mut self) -> &mut ModifierEvents;
}

/// The `Dispatch` implementation behind [`delegate_linux_dmabuf!`](crate::delegate_linux_dmabuf).
#[derive(Debug)]
pub struct LinuxDmabufDispatch;

impl<D> Dispatch<ZwpLinuxDmabufV1, (), D> for LinuxDmabufDispatch
where
    D: Dispatch<ZwpLinuxDmabufV1, ()> + ModifierEventsHandler,
{
    fn event(
        state: &mut D,
        _: &ZwpLinuxDmabufV1,
        event: zwp_linux_dmabuf_v1::Event,
        _: &(),
        _: &wayland_client::Connection,
        _: &QueueHandle<D>,
    ) {
        state.modifier_events().event(event);
    }
}

/// User data of a `zwp_linux_dmabuf_v1` bound by [`ClientGlobals`](super::ClientGlobals): the
/// version-3 format list kept with the object, so no state field or handler is needed.
#[derive(Debug, Default)]
pub struct LinuxDmabufData(Mutex<ModifierEvents>);

impl LinuxDmabufData {
    /// What the global listed with `modifier` (or `format`) events so far.
    pub fn modifiers(&self) -> ModifierEvents {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl<D> Dispatch<ZwpLinuxDmabufV1, LinuxDmabufData, D> for LinuxDmabufDispatch
where
    D: Dispatch<ZwpLinuxDmabufV1, LinuxDmabufData>,
{
    fn event(
        _: &mut D,
        _: &ZwpLinuxDmabufV1,
        event: zwp_linux_dmabuf_v1::Event,
        data: &LinuxDmabufData,
        _: &wayland_client::Connection,
        _: &QueueHandle<D>,
    ) {
        data.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .event(event);
    }
}

/// Implements `Dispatch<ZwpLinuxDmabufV1, ()>` for a state type that is a
/// [`ModifierEventsHandler`]: version 3's format list is collected, later versions send none.
#[macro_export]
macro_rules! delegate_linux_dmabuf {
    ($ty:ty) => {
        ::wayland_client::delegate_dispatch!($ty: [
            ::wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1: ()
        ] => $crate::client::LinuxDmabufDispatch);
    };
}

/// The linux-dmabuf versions this library speaks.
pub const LINUX_DMABUF_VERSIONS: RangeInclusive<u32> = 3..=6;

/// Binds `zwp_linux_dmabuf_v1` at `min(offered, 6)`; versions below 3 (no modifiers) are refused
/// with [`BindError::UnsupportedVersion`], a compositor without it gives
/// [`BindError::NotPresent`] (then use wl_shm:
/// [`decide_without_linux_dmabuf`](super::decide_without_linux_dmabuf)).
pub fn bind_linux_dmabuf<D>(
    globals: &GlobalList,
    qh: &QueueHandle<D>,
) -> Result<ZwpLinuxDmabufV1, BindError>
where
    D: Dispatch<ZwpLinuxDmabufV1, ()> + 'static,
{
    bind_linux_dmabuf_with(globals, qh, ())
}

/// As [`bind_linux_dmabuf`], with `udata` as the object's user data (e.g. a
/// [`LinuxDmabufData`]).
pub fn bind_linux_dmabuf_with<D, U>(
    globals: &GlobalList,
    qh: &QueueHandle<D>,
    udata: U,
) -> Result<ZwpLinuxDmabufV1, BindError>
where
    D: Dispatch<ZwpLinuxDmabufV1, U> + 'static,
    U: Send + Sync + 'static,
{
    let dmabuf: ZwpLinuxDmabufV1 = globals.bind(qh, LINUX_DMABUF_VERSIONS, udata)?;
    tracing::debug!(
        version = wayland_client::Proxy::version(&dmabuf),
        "bound zwp_linux_dmabuf_v1"
    );
    Ok(dmabuf)
}

/// Per-surface feedback (`get_surface_feedback`) when the bound version has it (4+); `None` on
/// version 3, where the decision is made without feedback. With
/// [`delegate_dmabuf_feedback!`](crate::delegate_dmabuf_feedback), `udata` is
/// [`FeedbackData::for_surface`](super::FeedbackData::for_surface).
pub fn surface_feedback<D, U>(
    dmabuf: &ZwpLinuxDmabufV1,
    surface: &WlSurface,
    qh: &QueueHandle<D>,
    udata: U,
) -> Option<ZwpLinuxDmabufFeedbackV1>
where
    D: Dispatch<ZwpLinuxDmabufFeedbackV1, U> + 'static,
    U: Send + Sync + 'static,
{
    (wayland_client::Proxy::version(dmabuf) >= 4)
        .then(|| dmabuf.get_surface_feedback(surface, qh, udata))
}

/// Default feedback (`get_default_feedback`) when the bound version has it (4+). With
/// [`delegate_dmabuf_feedback!`](crate::delegate_dmabuf_feedback), `udata` is
/// `FeedbackData::default()`.
pub fn default_feedback<D, U>(
    dmabuf: &ZwpLinuxDmabufV1,
    qh: &QueueHandle<D>,
    udata: U,
) -> Option<ZwpLinuxDmabufFeedbackV1>
where
    D: Dispatch<ZwpLinuxDmabufFeedbackV1, U> + 'static,
    U: Send + Sync + 'static,
{
    (wayland_client::Proxy::version(dmabuf) >= 4).then(|| dmabuf.get_default_feedback(qh, udata))
}

/// Property tests (issue 15) of version 3's format list: 2 000 cases per run.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::proptest_config::config(2_000))]

        /// Any `modifier` and `format` events: one entry each, in order, the modifier put
        /// together from its halves, `format` with the implicit modifier.
        #[test]
        fn modifier_events_list_what_was_sent(events in vec((any::<u32>(), proptest::option::of((any::<u32>(), any::<u32>()))), 0..16)) {
            let mut listed = ModifierEvents::default();
            for (format, modifier) in &events {
                listed.event(match modifier {
                    Some((hi, lo)) => zwp_linux_dmabuf_v1::Event::Modifier { format: *format, modifier_hi: *hi, modifier_lo: *lo },
                    None => zwp_linux_dmabuf_v1::Event::Format { format: *format },
                });
            }
            prop_assert_eq!(listed.0.len(), events.len());
            for (got, (format, modifier)) in listed.0.iter().zip(&events) {
                prop_assert_eq!(got.format, *format);
                match modifier {
                    Some((hi, lo)) => {
                        prop_assert_eq!((got.modifier >> 32) as u32, *hi);
                        prop_assert_eq!(got.modifier as u32, *lo);
                    }
                    None => prop_assert_eq!(got.modifier, crate::policy::MODIFIER_INVALID),
                }
            }
        }
    }
}
