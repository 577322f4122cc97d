//! KMS helpers that are not Smithay's (feature `kms`): the writeback connector.
//!
//! - [`writeback`]: an atomic commit with `WRITEBACK_OUT_FENCE_PTR` whose out-fence the kernel
//!   writes into memory owned for that purpose, and a whole-screen capture with it.

pub mod writeback;
