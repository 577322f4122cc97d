//! Support for wayheap's integration tests.
//!
//! - [`vm`]: the host side of the real-kernel tier — provision the test kernel, build the in-guest
//!   test binaries, boot them all in one qemu guest and bring their results back.
//! - [`fuzz`]: `wayheap-fuzz`, a structure-aware Wayland fuzzer (crashes, stalls, fd and memory
//!   drift of a compositor under hostile clients).
//! - [`guest`]: what in-guest tests call first, so that they fail loudly anywhere but the guest.
//! - [`kms`]: a small atomic-KMS toolkit for in-guest tests (plane discovery, writeback capture).
//! - [`libtest`]: parsing libtest's output into per-test outcomes.
//! - [`wire`]: a raw Wayland connection, for messages no client library would send.
//! - [`xvfb`]: a virtual X server for the nested backend's tests.
//! - [`uinput`]: a virtual keyboard for in-guest input tests.

pub mod compositor;
pub mod fuzz;
pub mod guest;
pub mod kms;
pub mod libtest;
pub mod pattern;
pub mod uinput;
pub mod vm;
pub mod wire;
pub mod xvfb;
