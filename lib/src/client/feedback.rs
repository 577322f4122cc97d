//! linux-dmabuf feedback (`zwp_linux_dmabuf_feedback_v1`, version 4+): collecting the events,
//! reading the format table safely, and the tranches that result.
//!
//! Version 6 changed two things this module hides: `main_device` is no longer sent (the device
//! to import to is the target of a tranche with the new `sampling` flag), and every tranche
//! carries at least one flag. [`Feedback::import_device`] answers "which device" for every
//! version.
//!
//! The compositor sends a format table once (a read-only fd of 16-byte entries: `u32 format,
//! u32 padding, u64 modifier`) and tranches that refer to it by 16-bit index. Everything here is
//! untrusted: a truncated table, a size that is not a multiple of 16, or an index past the end
//! is an error, never a panic or an out-of-bounds read.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use rustix::mm::{MapFlags, ProtFlags};
use wayland_client::protocol::wl_surface::WlSurface;
use wayland_client::{Connection, Dispatch, QueueHandle};
use wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_dmabuf_feedback_v1::{
    self, ZwpLinuxDmabufFeedbackV1,
};

/// One (format, modifier) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FormatModifier {
    /// DRM fourcc.
    pub format: u32,
    /// DRM modifier (`0` is LINEAR).
    pub modifier: u64,
}

/// The compositor's format table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormatTable(pub Vec<FormatModifier>);

/// Why feedback could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedbackError {
    /// The table's size is not a whole number of 16-byte entries.
    #[error("format table size {0} is not a multiple of 16 bytes")]
    TableSize(u64),
    /// The fd holds less than the announced size.
    #[error("format table fd holds {actual} bytes, {announced} announced")]
    TableTruncated {
        /// Announced size.
        announced: u64,
        /// What the fd holds.
        actual: u64,
    },
    /// Mapping the table failed.
    #[error("mapping the format table failed: {0}")]
    Map(rustix::io::Errno),
    /// A tranche refers past the end of the table.
    #[error("tranche index {index} is outside the {len}-entry format table")]
    IndexOutOfRange {
        /// The index.
        index: u16,
        /// Table entries.
        len: usize,
    },
    /// A tranche's index array has an odd byte count.
    #[error("tranche formats array of {0} bytes is not a list of 16-bit indices")]
    IndicesSize(usize),
    /// `done` before any format table.
    #[error("feedback done without a format table")]
    NoTable,
    /// A device array that is not one `dev_t`.
    #[error("device array of {0} bytes is not a dev_t")]
    DeviceSize(usize),
}

impl FormatTable {
    /// Parses table bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, FeedbackError> {
        if !bytes.len().is_multiple_of(16) {
            return Err(FeedbackError::TableSize(bytes.len() as u64));
        }
        Ok(FormatTable(
            bytes
                .chunks_exact(16)
                .map(|e| FormatModifier {
                    format: u32::from_ne_bytes([e[0], e[1], e[2], e[3]]),
                    modifier: u64::from_ne_bytes([
                        e[8], e[9], e[10], e[11], e[12], e[13], e[14], e[15],
                    ]),
                })
                .collect(),
        ))
    }

    /// Maps `size` bytes of the compositor's table fd read-only (as the protocol requires) and
    /// parses them; the size is checked against the fd first.
    pub fn from_fd(fd: OwnedFd, size: u32) -> Result<Self, FeedbackError> {
        let size = u64::from(size);
        if size % 16 != 0 {
            return Err(FeedbackError::TableSize(size));
        }
        if size == 0 {
            return Ok(FormatTable::default());
        }
        let actual = rustix::fs::fstat(&fd)
            .map(|s| s.st_size as u64)
            .unwrap_or(0);
        if actual < size {
            return Err(FeedbackError::TableTruncated {
                announced: size,
                actual,
            });
        }
        // SAFETY: a private read-only mapping of `size` bytes the fd holds (checked above); the
        // slice below lives only within this function and the mapping is removed before return.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                size as usize,
                ProtFlags::READ,
                MapFlags::PRIVATE,
                fd.as_fd(),
                0,
            )
        }
        .map_err(FeedbackError::Map)?;
        // SAFETY: `ptr` maps `size` readable bytes until the munmap below.
        let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), size as usize) };
        let table = Self::parse(bytes);
        // SAFETY: the mapping made above; `bytes` is not used after this.
        let _ = unsafe { rustix::mm::munmap(ptr, size as usize) };
        table
    }

    /// Resolves a tranche's 16-bit indices (native-endian array) against the table.
    pub fn resolve(&self, indices: &[u8]) -> Result<Vec<FormatModifier>, FeedbackError> {
        if !indices.len().is_multiple_of(2) {
            return Err(FeedbackError::IndicesSize(indices.len()));
        }
        indices
            .chunks_exact(2)
            .map(|c| {
                let index = u16::from_ne_bytes([c[0], c[1]]);
                self.0
                    .get(usize::from(index))
                    .copied()
                    .ok_or(FeedbackError::IndexOutOfRange {
                        index,
                        len: self.0.len(),
                    })
            })
            .collect()
    }
}

/// One tranche: formats a target device takes, and whether it is for scan-out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tranche {
    /// The device (`dev_t`) buffers should be allocated for.
    pub target_device: Option<u64>,
    /// Formats and modifiers, resolved from the table.
    pub formats: Vec<FormatModifier>,
    /// The compositor would scan buffers of these formats out directly.
    pub scanout: bool,
    /// The compositor samples buffers of these formats efficiently on `target_device`
    /// (the `sampling` flag, linux-dmabuf v6).
    pub sampling: bool,
}

/// Complete feedback, most preferred tranche first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Feedback {
    /// The compositor's main device (`main_device`, deprecated and no longer sent in v6).
    pub main_device: Option<u64>,
    /// The tranches, in preference order.
    pub tranches: Vec<Tranche>,
}

impl Feedback {
    /// The device the compositor imports buffers to for sampling: the target of the first
    /// tranche flagged `sampling` (v6), or else the deprecated `main_device` (v4, v5). This is
    /// what `zwp_linux_buffer_params_v1.set_sampling_device` should name.
    pub fn import_device(&self) -> Option<u64> {
        self.tranches
            .iter()
            .find(|t| t.sampling)
            .and_then(|t| t.target_device)
            .or(self.main_device)
    }
}

/// Collects feedback events into [`Feedback`]; feed it every event of one feedback object.
#[derive(Debug, Default)]
pub struct FeedbackCollector {
    table: Option<FormatTable>,
    pending: Feedback,
    tranche: Tranche,
    error: Option<FeedbackError>,
}

fn dev_t(bytes: &[u8]) -> Result<u64, FeedbackError> {
    match bytes.len() {
        8 => Ok(u64::from_ne_bytes(bytes.try_into().expect("8 bytes"))),
        4 => Ok(u64::from(u32::from_ne_bytes(
            bytes.try_into().expect("4 bytes"),
        ))),
        n => Err(FeedbackError::DeviceSize(n)),
    }
}

impl FeedbackCollector {
    /// `format_table(fd, size)`.
    pub fn format_table(&mut self, fd: OwnedFd, size: u32) {
        match FormatTable::from_fd(fd, size) {
            Ok(t) => self.table = Some(t),
            Err(e) => self.fail(e),
        }
    }

    /// `main_device(dev)`.
    pub fn main_device(&mut self, dev: &[u8]) {
        match dev_t(dev) {
            Ok(d) => self.pending.main_device = Some(d),
            Err(e) => self.fail(e),
        }
    }

    /// `tranche_target_device(dev)`.
    pub fn tranche_target_device(&mut self, dev: &[u8]) {
        match dev_t(dev) {
            Ok(d) => self.tranche.target_device = Some(d),
            Err(e) => self.fail(e),
        }
    }

    /// `tranche_formats(indices)`.
    pub fn tranche_formats(&mut self, indices: &[u8]) {
        let Some(table) = &self.table else {
            self.fail(FeedbackError::NoTable);
            return;
        };
        match table.resolve(indices) {
            Ok(f) => self.tranche.formats.extend(f),
            Err(e) => self.fail(e),
        }
    }

    /// `tranche_flags(flags)`: bit 0 is scanout, bit 1 sampling (v6).
    pub fn tranche_flags(&mut self, flags: u32) {
        self.tranche.scanout = flags & 1 != 0;
        self.tranche.sampling = flags & 2 != 0;
    }

    /// `tranche_done`.
    pub fn tranche_done(&mut self) {
        self.pending
            .tranches
            .push(std::mem::take(&mut self.tranche));
    }

    /// Feeds one event of a `zwp_linux_dmabuf_feedback_v1` object; returns the outcome on
    /// `done` (`None` for every other event).
    pub fn event(
        &mut self,
        event: zwp_linux_dmabuf_feedback_v1::Event,
    ) -> Option<Result<Feedback, FeedbackError>> {
        use zwp_linux_dmabuf_feedback_v1::Event;
        match event {
            Event::FormatTable { fd, size } => self.format_table(fd, size),
            Event::MainDevice { device } => self.main_device(&device),
            Event::TrancheTargetDevice { device } => self.tranche_target_device(&device),
            Event::TrancheFormats { indices } => self.tranche_formats(&indices),
            // Unknown bits (a newer protocol) are kept out by `into_result` failing: no flags.
            Event::TrancheFlags { flags } => {
                self.tranche_flags(flags.into_result().map_or(0, |f| f.bits()))
            }
            Event::TrancheDone => self.tranche_done(),
            Event::Done => return Some(self.done()),
            _ => {}
        }
        None
    }

    /// Keeps the round's first error: the cause, not what followed from it.
    fn fail(&mut self, e: FeedbackError) {
        self.error.get_or_insert(e);
    }

    /// `done`: the feedback so far, atomically (or the first error it contained). Nothing of
    /// this round, failed or not, reaches the next (a tranche left open included).
    pub fn done(&mut self) -> Result<Feedback, FeedbackError> {
        let round = std::mem::take(&mut self.pending);
        self.tranche = Tranche::default();
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.table.is_none() {
            return Err(FeedbackError::NoTable);
        }
        Ok(round)
    }
}

/// What a feedback object describes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum FeedbackTarget {
    /// The default feedback (`get_default_feedback`): what the compositor prefers for any
    /// surface.
    #[default]
    Default,
    /// One surface's feedback (`get_surface_feedback`): changes as the surface moves on or off
    /// a plane.
    Surface(WlSurface),
}

impl FeedbackTarget {
    /// The surface, for per-surface feedback.
    pub fn surface(&self) -> Option<&WlSurface> {
        match self {
            FeedbackTarget::Default => None,
            FeedbackTarget::Surface(s) => Some(s),
        }
    }
}

/// User data of a feedback object wired with
/// [`delegate_dmabuf_feedback!`](crate::delegate_dmabuf_feedback): what it is for, and its own
/// [`FeedbackCollector`] (a format table belongs to one feedback object, so the events of two
/// objects must never meet in one collector).
#[derive(Debug, Default)]
pub struct FeedbackData {
    target: FeedbackTarget,
    collector: Mutex<FeedbackCollector>,
}

impl FeedbackData {
    /// The data of a feedback object for `target`.
    pub fn new(target: FeedbackTarget) -> Self {
        Self {
            target,
            collector: Mutex::default(),
        }
    }

    /// The data of `surface`'s feedback object (give it to
    /// [`surface_feedback`](super::surface_feedback)).
    pub fn for_surface(surface: &WlSurface) -> Self {
        Self::new(FeedbackTarget::Surface(surface.clone()))
    }

    /// What the object describes.
    pub fn target(&self) -> &FeedbackTarget {
        &self.target
    }
}

/// Where [`delegate_dmabuf_feedback!`](crate::delegate_dmabuf_feedback) delivers feedback.
pub trait FeedbackHandler {
    /// A feedback object sent `done`: the complete feedback for `target`, or why it cannot be
    /// used (a malformed table or tranche spoils only that round). Called again whenever the
    /// compositor's preferences change, e.g. when a surface goes on or off a plane: see
    /// [`Swapchain::outdated_by`](super::Swapchain::outdated_by).
    fn feedback(&mut self, target: &FeedbackTarget, feedback: Result<Feedback, FeedbackError>);
}

/// The `Dispatch` implementation behind
/// [`delegate_dmabuf_feedback!`](crate::delegate_dmabuf_feedback): every event goes to the
/// object's own collector, and `done` to the state's [`FeedbackHandler`].
#[derive(Debug)]
pub struct FeedbackDispatch;

impl<D> Dispatch<ZwpLinuxDmabufFeedbackV1, FeedbackData, D> for FeedbackDispatch
where
    D: Dispatch<ZwpLinuxDmabufFeedbackV1, FeedbackData> + FeedbackHandler,
{
    fn event(
        state: &mut D,
        _: &ZwpLinuxDmabufFeedbackV1,
        event: zwp_linux_dmabuf_feedback_v1::Event,
        data: &FeedbackData,
        _: &Connection,
        _: &QueueHandle<D>,
    ) {
        // The lock is released before the handler runs: it may ask for more feedback.
        let done = data
            .collector
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .event(event);
        if let Some(feedback) = done {
            state.feedback(&data.target, feedback);
        }
    }
}

/// Implements `Dispatch<ZwpLinuxDmabufFeedbackV1, FeedbackData>` for a state type that is a
/// [`FeedbackHandler`](crate::client::FeedbackHandler): the events of every feedback object
/// made with [`FeedbackData`](crate::client::FeedbackData) are collected per object, and each
/// complete (or failed) feedback is handed to
/// [`FeedbackHandler::feedback`](crate::client::FeedbackHandler::feedback).
#[macro_export]
macro_rules! delegate_dmabuf_feedback {
    ($ty:ty) => {
        ::wayland_client::delegate_dispatch!($ty: [
            ::wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1: $crate::client::FeedbackData
        ] => $crate::client::FeedbackDispatch);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(format: u32, modifier: u64) -> Vec<u8> {
        let mut v = format.to_ne_bytes().to_vec();
        v.extend([0; 4]);
        v.extend(modifier.to_ne_bytes());
        v
    }

    fn table_fd(bytes: &[u8]) -> OwnedFd {
        let fd = rustix::fs::memfd_create("table", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::io::write(&fd, bytes).unwrap();
        fd
    }

    #[test]
    fn a_table_and_tranches_resolve() {
        let mut bytes = entry(0x3432_5241, 0);
        bytes.extend(entry(0x3231_564e, 0));
        let mut c = FeedbackCollector::default();
        c.format_table(table_fd(&bytes), bytes.len() as u32);
        c.main_device(&7u64.to_ne_bytes());
        c.tranche_target_device(&7u64.to_ne_bytes());
        c.tranche_formats(&[1, 0]);
        c.tranche_flags(1);
        c.tranche_done();
        c.tranche_formats(&[0, 0, 1, 0]);
        c.tranche_done();
        let f = c.done().unwrap();
        assert_eq!(f.main_device, Some(7));
        assert_eq!(f.tranches.len(), 2);
        assert!(f.tranches[0].scanout && !f.tranches[1].scanout);
        assert_eq!(
            f.tranches[0].formats,
            vec![FormatModifier {
                format: 0x3231_564e,
                modifier: 0
            }]
        );
        assert_eq!(f.tranches[1].formats.len(), 2);
    }

    #[test]
    fn version_6_feedback_names_the_sampling_tranche_device_without_main_device() {
        let bytes = entry(0x3432_5241, 0);
        let mut c = FeedbackCollector::default();
        c.format_table(table_fd(&bytes), 16);
        // A scan-out tranche for the display device, then the sampling tranche for the GPU.
        c.tranche_target_device(&5u64.to_ne_bytes());
        c.tranche_formats(&[0, 0]);
        c.tranche_flags(1);
        c.tranche_done();
        c.tranche_target_device(&9u64.to_ne_bytes());
        c.tranche_formats(&[0, 0]);
        c.tranche_flags(2);
        c.tranche_done();
        let f = c.done().unwrap();
        assert_eq!(f.main_device, None);
        assert!(f.tranches[0].scanout && !f.tranches[0].sampling);
        assert!(f.tranches[1].sampling && !f.tranches[1].scanout);
        assert_eq!(f.import_device(), Some(9));
        // Version 4/5: no sampling flag, the deprecated main device answers.
        let v5 = Feedback {
            main_device: Some(3),
            tranches: vec![Tranche {
                target_device: Some(5),
                scanout: true,
                ..Tranche::default()
            }],
        };
        assert_eq!(v5.import_device(), Some(3));
    }

    #[test]
    fn wrong_sizes_and_truncation_are_errors() {
        assert_eq!(
            FormatTable::parse(&[0; 15]),
            Err(FeedbackError::TableSize(15))
        );
        assert!(matches!(
            FormatTable::from_fd(table_fd(&[0; 16]), 20),
            Err(FeedbackError::TableSize(20))
        ));
        assert!(matches!(
            FormatTable::from_fd(table_fd(&[0; 16]), 32),
            Err(FeedbackError::TableTruncated {
                announced: 32,
                actual: 16
            })
        ));
    }

    #[test]
    fn out_of_range_indices_are_errors_not_reads() {
        let t = FormatTable::parse(&entry(1, 0)).unwrap();
        assert_eq!(
            t.resolve(&[1, 0]),
            Err(FeedbackError::IndexOutOfRange { index: 1, len: 1 })
        );
        assert_eq!(
            t.resolve(&[0xff, 0xff]),
            Err(FeedbackError::IndexOutOfRange {
                index: 0xffff,
                len: 1
            })
        );
        assert_eq!(t.resolve(&[0]), Err(FeedbackError::IndicesSize(1)));
    }

    #[test]
    fn an_error_spoils_only_that_round() {
        let mut c = FeedbackCollector::default();
        c.format_table(table_fd(&entry(1, 0)), 16);
        c.tranche_formats(&[9, 0]);
        c.tranche_done();
        assert!(matches!(
            c.done(),
            Err(FeedbackError::IndexOutOfRange { .. })
        ));
        c.tranche_formats(&[0, 0]);
        c.tranche_done();
        assert_eq!(c.done().unwrap().tranches.len(), 1);
    }

    #[test]
    fn a_failed_round_leaves_nothing_behind_and_names_its_first_error() {
        // Found by proptests::event_sequences_give_consistent_feedback: a round that ended in
        // NoTable kept its tranches, which then came first in the next round's feedback; and the
        // last error of a round was reported, hiding its cause (here the truncated table).
        let mut c = FeedbackCollector::default();
        c.tranche_flags(1);
        c.tranche_done();
        assert_eq!(c.done(), Err(FeedbackError::NoTable));
        c.format_table(table_fd(&entry(1, 0)), 16);
        assert_eq!(c.done().unwrap().tranches, vec![]);
        c.format_table(table_fd(&entry(1, 0)), 32);
        c.tranche_formats(&[0, 0]);
        c.main_device(&[0; 3]);
        assert!(matches!(
            c.done(),
            Err(FeedbackError::TableTruncated { .. })
        ));
        // A tranche left open by a round is not part of the next.
        c.tranche_formats(&[0, 0]);
        assert_eq!(c.done().unwrap().tranches, vec![]);
        c.tranche_done();
        assert_eq!(c.done().unwrap().tranches, vec![Tranche::default()]);
    }

    #[test]
    fn formats_before_a_table_and_odd_devices_are_errors() {
        let mut c = FeedbackCollector::default();
        c.tranche_formats(&[0, 0]);
        assert_eq!(c.done(), Err(FeedbackError::NoTable));
        c.main_device(&[1, 2, 3]);
        c.format_table(table_fd(&entry(1, 0)), 16);
        assert_eq!(c.done(), Err(FeedbackError::DeviceSize(3)));
    }
}

/// Property tests (issue 15) of the format table, tranche indices and the event sequence a
/// compositor may send: 8 000 + 8 000 + 2 000 + 3 000 = 21 000 cases per run.
#[cfg(test)]
mod proptests {
    use super::*;
    use crate::client::{BufferPath, decide};
    use crate::layout::Fourcc;
    use proptest::collection::vec;
    use proptest::prelude::*;

    use crate::proptest_config::config;

    /// One table entry as the compositor writes it, with whatever padding it likes.
    fn encode(entries: &[(u32, u32, u64)]) -> Vec<u8> {
        let mut v = Vec::with_capacity(entries.len() * 16);
        for (format, pad, modifier) in entries {
            v.extend(format.to_ne_bytes());
            v.extend(pad.to_ne_bytes());
            v.extend(modifier.to_ne_bytes());
        }
        v
    }

    fn memfd(bytes: &[u8]) -> OwnedFd {
        let fd = rustix::fs::memfd_create("table", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::io::write(&fd, bytes).unwrap();
        fd
    }

    /// A few formats and modifiers that collide often, so tranches resolve to LINEAR entries of
    /// the format asked for in some cases and not in others.
    fn entry() -> impl Strategy<Value = (u32, u32, u64)> {
        (
            prop_oneof![Just(Fourcc::XRGB8888.0), Just(Fourcc::NV12.0), any::<u32>()],
            any::<u32>(),
            prop_oneof![
                Just(0u64),
                Just(crate::layout::MODIFIER_INVALID),
                any::<u64>()
            ],
        )
    }

    proptest! {
        #![proptest_config(config(8_000))]

        /// Any bytes: a table exactly when the length is a multiple of 16, with one entry per
        /// 16 bytes read from the right place (padding ignored); else `TableSize` naming it.
        #[test]
        fn table_bytes_parse_or_name_their_size(bytes in vec(any::<u8>(), 0..200)) {
            match FormatTable::parse(&bytes) {
                Ok(t) => {
                    prop_assert_eq!(bytes.len() % 16, 0);
                    prop_assert_eq!(t.0.len(), bytes.len() / 16);
                    let again: Vec<(u32, u32, u64)> = t.0.iter().enumerate()
                        .map(|(i, e)| (e.format, u32::from_ne_bytes(bytes[i * 16 + 4..i * 16 + 8].try_into().unwrap()), e.modifier))
                        .collect();
                    prop_assert_eq!(encode(&again), bytes);
                }
                Err(e) => {
                    prop_assert_ne!(bytes.len() % 16, 0);
                    prop_assert_eq!(e, FeedbackError::TableSize(bytes.len() as u64));
                }
            }
        }

        /// Indices resolve to exactly the entries they name, or the error names the first index
        /// past the end (or the odd byte count); never an out-of-bounds read.
        #[test]
        fn tranche_indices_resolve_or_name_the_bad_one(
            entries in vec(entry(), 0..40),
            indices in vec(any::<u8>(), 0..64),
            small in vec(0u16..48, 0..32),
            use_small in any::<bool>(),
        ) {
            let table = FormatTable::parse(&encode(&entries)).unwrap();
            let indices = if use_small {
                small.iter().flat_map(|i| i.to_ne_bytes()).collect()
            } else {
                indices
            };
            let wanted: Vec<u16> = indices.chunks_exact(2).map(|c| u16::from_ne_bytes([c[0], c[1]])).collect();
            match table.resolve(&indices) {
                Ok(formats) => {
                    prop_assert_eq!(indices.len() % 2, 0);
                    prop_assert_eq!(formats.len(), wanted.len());
                    for (f, i) in formats.iter().zip(&wanted) {
                        let (format, _, modifier) = entries[usize::from(*i)];
                        prop_assert_eq!(*f, FormatModifier { format, modifier });
                    }
                }
                Err(FeedbackError::IndicesSize(n)) => {
                    prop_assert_eq!(n, indices.len());
                    prop_assert_eq!(n % 2, 1);
                }
                Err(FeedbackError::IndexOutOfRange { index, len }) => {
                    prop_assert_eq!(indices.len() % 2, 0);
                    prop_assert_eq!(len, entries.len());
                    let first_bad = wanted.iter().find(|i| usize::from(**i) >= entries.len());
                    prop_assert_eq!(Some(&index), first_bad);
                }
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
    }

    proptest! {
        #![proptest_config(config(2_000))]

        /// The announced size against what the fd holds: sizes not a multiple of 16 and tables
        /// longer than the fd are typed errors (never a read past the file: SIGBUS), anything
        /// else is the parse of the first `size` bytes.
        #[test]
        fn table_fds_are_checked_before_mapping(
            bytes in vec(any::<u8>(), 0..160),
            announced in prop_oneof![0u32..192, any::<u32>()],
        ) {
            let result = FormatTable::from_fd(memfd(&bytes), announced);
            let size = u64::from(announced);
            if size % 16 != 0 {
                prop_assert_eq!(result, Err(FeedbackError::TableSize(size)));
            } else if size > bytes.len() as u64 {
                prop_assert_eq!(
                    result,
                    Err(FeedbackError::TableTruncated { announced: size, actual: bytes.len() as u64 })
                );
            } else {
                prop_assert_eq!(result, FormatTable::parse(&bytes[..size as usize]));
            }
        }
    }

    /// One feedback event, as the collector's methods take them.
    #[derive(Debug, Clone)]
    enum Ev {
        Table(Vec<(u32, u32, u64)>, i8),
        MainDevice(Vec<u8>),
        TargetDevice(Vec<u8>),
        Formats(Vec<u8>),
        Flags(u32),
        TrancheDone,
        Done,
    }

    fn event() -> impl Strategy<Value = Ev> {
        prop_oneof![
            1 => (vec(entry(), 0..6), -17i8..17).prop_map(|(e, d)| Ev::Table(e, d)),
            1 => vec(any::<u8>(), 0..10).prop_map(Ev::MainDevice),
            2 => prop_oneof![
                vec(any::<u8>(), 0..10),
                any::<u64>().prop_map(|d| d.to_ne_bytes().to_vec()),
            ].prop_map(Ev::TargetDevice),
            4 => prop_oneof![
                vec(0u16..8, 0..5).prop_map(|v| v.iter().flat_map(|i| i.to_ne_bytes()).collect()),
                vec(any::<u8>(), 0..7),
            ].prop_map(Ev::Formats),
            2 => any::<u32>().prop_map(Ev::Flags),
            3 => Just(Ev::TrancheDone),
            2 => Just(Ev::Done),
        ]
    }

    proptest! {
        #![proptest_config(config(3_000))]

        /// Any sequence of events: no panic, and each `done` gives exactly what the protocol
        /// says (the model below): the round's main device and closed tranches with their
        /// formats resolved against the table current at the time, or the round's first
        /// malformed event's error, or `NoTable`; nothing of a round reaches the next. The
        /// decision made from a successful round agrees with its tranches.
        #[test]
        fn event_sequences_give_consistent_feedback(events in vec(event(), 0..24)) {
            let mut c = FeedbackCollector::default();
            let mut table: Option<Vec<FormatModifier>> = None;
            let mut error: Option<FeedbackError> = None;
            let mut pending = Feedback::default();
            let mut tranche = Tranche::default();
            let device = |d: &[u8]| match d.len() {
                8 => Ok(u64::from_ne_bytes(d.try_into().unwrap())),
                4 => Ok(u64::from(u32::from_ne_bytes(d.try_into().unwrap()))),
                n => Err(FeedbackError::DeviceSize(n)),
            };
            for ev in events {
                let failed = match ev {
                    Ev::Table(entries, delta) => {
                        let bytes = encode(&entries);
                        // Announce the true size, or one off by up to 17 bytes.
                        let size = (bytes.len() as i64 + i64::from(delta)).max(0) as u32;
                        c.format_table(memfd(&bytes), size);
                        let s = u64::from(size);
                        if s % 16 != 0 {
                            Some(FeedbackError::TableSize(s))
                        } else if s > bytes.len() as u64 {
                            Some(FeedbackError::TableTruncated { announced: s, actual: bytes.len() as u64 })
                        } else {
                            table = Some(entries[..s as usize / 16].iter()
                                .map(|(format, _, modifier)| FormatModifier { format: *format, modifier: *modifier })
                                .collect());
                            None
                        }
                    }
                    Ev::MainDevice(d) => {
                        c.main_device(&d);
                        device(&d).map(|d| pending.main_device = Some(d)).err()
                    }
                    Ev::TargetDevice(d) => {
                        c.tranche_target_device(&d);
                        device(&d).map(|d| tranche.target_device = Some(d)).err()
                    }
                    Ev::Formats(idx) => {
                        c.tranche_formats(&idx);
                        match &table {
                            None => Some(FeedbackError::NoTable),
                            Some(_) if idx.len() % 2 == 1 => Some(FeedbackError::IndicesSize(idx.len())),
                            Some(t) => {
                                let idx: Vec<u16> = idx.chunks_exact(2).map(|c| u16::from_ne_bytes([c[0], c[1]])).collect();
                                match idx.iter().find(|i| usize::from(**i) >= t.len()) {
                                    Some(bad) => Some(FeedbackError::IndexOutOfRange { index: *bad, len: t.len() }),
                                    None => {
                                        tranche.formats.extend(idx.iter().map(|i| t[usize::from(*i)]));
                                        None
                                    }
                                }
                            }
                        }
                    }
                    Ev::Flags(f) => {
                        c.tranche_flags(f);
                        (tranche.scanout, tranche.sampling) = (f & 1 != 0, f & 2 != 0);
                        None
                    }
                    Ev::TrancheDone => {
                        c.tranche_done();
                        pending.tranches.push(std::mem::take(&mut tranche));
                        None
                    }
                    Ev::Done => {
                        let got = c.done();
                        let round = std::mem::take(&mut pending);
                        tranche = Tranche::default();
                        match (error.take(), &table) {
                            (Some(e), _) => prop_assert_eq!(got, Err(e)),
                            (None, None) => prop_assert_eq!(got, Err(FeedbackError::NoTable)),
                            (None, Some(_)) => {
                                prop_assert_eq!(got.as_ref(), Ok(&round));
                                for format in [Fourcc::XRGB8888, Fourcc::NV12] {
                                    let linear = FormatModifier { format: format.0, modifier: 0 };
                                    let first = round.tranches.iter().find(|t| t.formats.contains(&linear));
                                    let d = decide(Some(&round), format);
                                    let path = match first {
                                        None => BufferPath::Shm,
                                        Some(t) if t.scanout => BufferPath::Scanout,
                                        Some(_) => BufferPath::Sampling,
                                    };
                                    prop_assert_eq!(d.path, path);
                                    if first.is_some() {
                                        prop_assert_eq!(d.device, round.import_device());
                                    }
                                }
                            }
                        }
                        None
                    }
                };
                if let Some(e) = failed {
                    error.get_or_insert(e);
                }
            }
        }
    }
}
