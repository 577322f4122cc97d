//! The client side (feature `client`): from the compositor's linux-dmabuf feedback to a decision
//! of how to allocate, to wl_buffers and a swapchain.
//!
//! - [`FeedbackCollector`]: forward the events of a `zwp_linux_dmabuf_feedback_v1` object, get a
//!   validated [`Feedback`] on `done`.
//! - [`decide`]: scan-out (policy usage `scanout`), sampling (`render`), or wl_shm when no tranche
//!   takes LINEAR — with the reason.
//! - [`BufferSpec`]: the linux-dmabuf parameters of a laid-out image; `create_immed`, or `create`
//!   whose refusal becomes a [`BufferError`] naming the parameters.
//! - [`Swapchain`]: N buffers allocated by the decision, handed out only once released (wire
//!   the releases with [`delegate_swapchain!`](crate::delegate_swapchain)); `outdated_by` tells
//!   when new feedback calls for reallocation.
//! - [`ImportCache`]: wl_buffers for dma-bufs exported elsewhere (V4L2), one per dma-buf, reused.
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
mod import;
mod swapchain;

pub use buffer::{BufferCreation, BufferDescription, BufferError, BufferSpec, PlaneSpec};
pub use decision::{BufferPath, Decision, decide};
pub use feedback::{
    Feedback, FeedbackCollector, FeedbackError, FormatModifier, FormatTable, Tranche,
};
pub use import::ImportCache;
pub use swapchain::{SlotData, Swapchain, SwapchainDispatch, SwapchainError};
