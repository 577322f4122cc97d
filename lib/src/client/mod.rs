//! The client side (feature `client`): from the compositor's linux-dmabuf feedback to a decision
//! of how to allocate.
//!
//! This first part is protocol-agnostic: an application forwards the events of its
//! `zwp_linux_dmabuf_feedback_v1` object to a [`FeedbackCollector`] (whatever Wayland binding it
//! uses), gets a validated [`Feedback`] on `done`, and [`decide`]s from it: scan-out (policy usage
//! `scanout`), sampling (`render`), or wl_shm when no tranche takes LINEAR — with the reason.
//!
//! ## How to use
//!
//! ```
//! use wayheap::client::{BufferPath, FeedbackCollector, decide};
//! use wayheap::layout::Fourcc;
//!
//! # fn table() -> std::os::fd::OwnedFd { rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::empty()).unwrap() }
//! let mut collector = FeedbackCollector::default();
//! // From the feedback object's events:
//! collector.format_table(table(), 0);
//! collector.main_device(&0u64.to_ne_bytes());
//! let feedback = collector.done().expect("valid feedback");
//! let decision = decide(Some(&feedback), Fourcc::ARGB8888);
//! assert_eq!(decision.path, BufferPath::Shm); // an empty table takes nothing
//! println!("{decision}");
//! ```

mod buffer;
mod decision;
mod feedback;
mod swapchain;

pub use buffer::{BufferCreation, BufferDescription, BufferError, BufferSpec, PlaneSpec};
pub use decision::{BufferPath, Decision, decide};
pub use feedback::{
    Feedback, FeedbackCollector, FeedbackError, FormatModifier, FormatTable, Tranche,
};
pub use swapchain::{SlotData, Swapchain, SwapchainDispatch, SwapchainError};
