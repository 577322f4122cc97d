//! compositor-demo: a Smithay compositor that puts client dma-bufs on KMS planes.
//!
//! Not built yet: the compositor (KMS / headless / nested backends, plane assignment) is the
//! subject of its own issue. Until then this binary says so and exits non-zero, so that the
//! README's demo command never reports a success it did not earn.

use std::process::ExitCode;

use clap::Parser;

/// A Smithay compositor that puts client dma-bufs straight onto KMS planes (wayheap demo).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {}

fn main() -> ExitCode {
    let _args = Args::parse();
    eprintln!(
        "compositor-demo: not built yet.\n\
         The compositor (KMS, headless and nested backends; client buffers on primary, overlay and\n\
         cursor planes) is still to be written. What works today: the wayheap library's heap\n\
         allocation and CPU-sync'd mapping, proven on a real kernel by `scripts/test`."
    );
    ExitCode::from(2)
}
