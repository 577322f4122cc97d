//! client-demo: camera frames zero-copy to a plane, face rectangles on an overlay plane.
//!
//! Not built yet: the client (V4L2 capture into heap buffers, the face detector, the overlay
//! subsurface) is the subject of its own issue. Until then this binary says so and exits non-zero.

use std::process::ExitCode;

use clap::Parser;

/// Camera frames zero-copy to a KMS plane, face rectangles on an overlay plane (wayheap demo).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {}

fn main() -> ExitCode {
    let _args = Args::parse();
    eprintln!(
        "client-demo: not built yet.\n\
         The camera client (V4L2 capture into DMA-BUF heap buffers, face detection, overlay\n\
         subsurface) is still to be written."
    );
    ExitCode::from(2)
}
