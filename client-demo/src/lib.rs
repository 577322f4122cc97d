//! client-demo's library: the parts of the camera client that run without a camera or a display.
//!
//! The client (the `client-demo` binary) shows camera frames with face rectangles on top, copying
//! no pixel on the way:
//!
//! 1. **Camera → heap buffer.** V4L2 captures into dma-bufs allocated by wayheap from a DMA-BUF
//!    heap; the same buffers go to the compositor as the main surface's `wl_buffer`s, ideally
//!    scanned out from a KMS plane.
//! 2. **Frame → detector input** ([`convert`]). Every so often a worker thread reads the current
//!    frame in place through its mmap (NV12, YUYV or XRGB/ARGB8888) and samples it down to the
//!    128x128 RGB tensor the face model takes, remembering the letterbox.
//! 3. **Detector** ([`detector`]). MediaPipe BlazeFace short-range, embedded in the binary and run
//!    by tract on that worker thread, returns faces in frame pixels.
//! 4. **Overlay** ([`overlay`]). The faces are drawn into an ARGB8888 buffer of a subsurface
//!    above the camera surface (transparent elsewhere), redrawing and damaging only the
//!    rectangles that changed, so the compositor can put it on an overlay plane.
//!
//! # How to use
//!
//! ```no_run
//! use client_demo::convert::{Frame, ModelInput};
//! use client_demo::detector::Detector;
//! use client_demo::overlay::{Painter, Target};
//!
//! # fn frame() -> Frame<'static> { unimplemented!() }
//! # fn overlay_buffer() -> (&'static mut [u8], usize, u32, u32) { unimplemented!() }
//! let detector = Detector::new()?;
//! let mut input = ModelInput::new();
//! let mut painter = Painter::new();
//! let mut shown = Vec::new();
//!
//! let letterbox = input.convert(&frame())?;
//! let faces = detector.detect(&input, &letterbox)?;
//! let (data, stride, width, height) = overlay_buffer();
//! let mut target = Target::new(data, stride, width, height)?;
//! let damage = painter.update(&mut target, &shown, &faces);
//! shown = faces;
//! // ... damage `damage` on the overlay surface and commit.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod convert;
pub mod detector;
pub mod overlay;
pub mod picture;
