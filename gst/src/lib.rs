//! GStreamer elements on wayheap (the plugin `wayheap`, `libgstwayheap.so`).
//!
//! GStreamer's software elements allocate with malloc, so their frames reach a display or another
//! driver only through a copy. `wayheapalloc` sits in front of the consumer and answers
//! upstream's ALLOCATION query with a pool of dma-bufs chosen by a wayheap policy (CMA for
//! `scanout`, the system heap, ION on BSP kernels, udmabuf where heap nodes are not accessible),
//! as GstDmaBufMemory with a GstVideoMeta: `videotestsrc ! wayheapalloc ! waylandsink` submits
//! linux-dmabuf buffers instead of wl_shm copies.
//!
//! ## How to use
//!
//! ```text
//! cargo build -p gst-wayheap
//! GST_PLUGIN_PATH=target/debug gst-inspect-1.0 wayheapalloc
//! GST_PLUGIN_PATH=target/debug gst-launch-1.0 videotestsrc ! video/x-raw,format=BGRx \
//!     ! wayheapalloc usage=scanout ! waylandsink
//! ```
//!
//! Or from Rust, with the plugin linked in:
//!
//! ```no_run
//! use gst::prelude::*;
//!
//! gst::init().unwrap();
//! gstwayheap::plugin_register_static().unwrap();
//! let alloc = gst::ElementFactory::make("wayheapalloc")
//!     .property("usage", "scanout")
//!     .build()
//!     .unwrap();
//! # let _ = alloc;
//! ```

mod alloc;
mod formats;
pub mod pool;
mod sink;

pub use alloc::WayheapAlloc;
pub use sink::WayheapSink;

/// Locks `mutex`, whether or not a panic poisoned it: the elements' states stay consistent
/// between statements, and a streaming thread must not die of another thread's panic.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    alloc::register(plugin)?;
    sink::register(plugin)
}

gst::plugin_define!(
    wayheap,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-wayheap"),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    "wayheap",
    "2026-12-04"
);
