//! KMS helpers that are not Smithay's (feature `kms`): the writeback connector, and the planes'
//! YCbCr colour properties.
//!
//! - [`colour`]: `COLOR_ENCODING`/`COLOR_RANGE` of every YUV-capable plane, set once to the
//!   compositor's colour ([`ColourPlanes`]).
//! - [`writeback`]: an atomic commit with `WRITEBACK_OUT_FENCE_PTR` whose out-fence the kernel
//!   writes into memory owned for that purpose, and a whole-screen capture with it.

pub mod colour;
pub mod writeback;

pub use colour::{ColourPlanes, PlaneColourError};
