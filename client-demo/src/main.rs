//! client-demo: camera frames zero-copy to a KMS plane, face rectangles from a neural net on an
//! overlay plane.
//!
//! The video (V4L2 capture into DMA-BUF heap buffers, or a picture rendered into application
//! memory exported through udmabuf) is the main surface; a desynchronised ARGB8888 subsurface
//! above it carries the detector's rectangles. Both reach the compositor as dma-bufs, so each
//! can be scanned out from its own plane. Lines on stdout (`VIDEO`, `OVERLAY`, `FACES`, `STATS`)
//! say what happened, for people and for tests.

mod app;
mod camera;
mod client;
mod memory;
mod overlay_layer;
mod stats;
mod video;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

/// How the video is sized on the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scale {
    /// Scaled to the whole output by wp_viewporter (planes that cannot scale then leave the
    /// video to composition).
    Fit,
    /// At its own size, top-left: a plane without a scaler can scan it out.
    Native,
}

/// Camera frames zero-copy to a KMS plane, face rectangles on an overlay plane (wayheap demo).
///
/// Without --camera or --image, the first V4L2 capture device is used, or the built-in picture
/// when there is none. Run it inside a Wayland session (e.g. compositor-demo --run client-demo).
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
pub struct Args {
    /// V4L2 capture device (e.g. /dev/video0), captured straight into DMA-BUF heap buffers.
    #[arg(long, value_name = "DEVICE", conflicts_with = "image")]
    pub camera: Option<PathBuf>,
    /// A PNG picture to show instead of a camera, slowly panned and zoomed ("builtin": the
    /// astronaut portrait shipped with the demo).
    #[arg(long, value_name = "PATH")]
    pub image: Option<PathBuf>,
    /// Keep the picture still (no pan and zoom): each buffer is drawn once, then only presented.
    #[arg(long)]
    pub still: bool,
    /// Capture or render size.
    #[arg(long, value_name = "WxH", default_value = "640x480", value_parser = parse_size)]
    pub size: (u32, u32),
    /// Camera pixel format: auto picks one the compositor's planes scan out (from its
    /// linux-dmabuf feedback) and the detector reads. The picture source draws XR24 unless
    /// given NV12 or YUYV (frames as a camera gives them).
    #[arg(long, value_name = "FOURCC", default_value = "auto")]
    pub format: String,
    /// Video buffers (camera capture buffers, or the picture's swapchain).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(2..=16))]
    pub buffers: u32,
    /// How the video is sized on the output.
    #[arg(long, value_enum, default_value_t = Scale::Fit)]
    pub scale: Scale,
    /// Frames per second of the picture source (a camera sets its own pace).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=120))]
    pub fps: u32,
    /// Do not run the face detector.
    #[arg(long)]
    pub no_detector: bool,
    /// Print fps, detector time and rate, copies per frame and the zero-copy share every second.
    #[arg(long)]
    pub stats: bool,
    /// Exit after this many video frames were shown (0: run until closed or killed).
    #[arg(long, default_value_t = 0)]
    pub frames: u64,
    /// Exit after this many seconds (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub seconds: u64,
    /// Draw into wl_shm buffers (sealed memfds), as a toolkit drawing with the CPU does, even
    /// where a dma-buf could be had: the compositor then scans them out through udmabuf, or
    /// copies them.
    #[arg(long)]
    pub shm: bool,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or_else(|| format!("{s:?} is not WxH"))?;
    let (w, h): (u32, u32) = (
        w.parse().map_err(|_| format!("bad width in {s:?}"))?,
        h.parse().map_err(|_| format!("bad height in {s:?}"))?,
    );
    if w == 0 || h == 0 || w > 8192 || h > 8192 || w % 2 != 0 || h % 2 != 0 {
        return Err(format!(
            "{s}: width and height must be even and in 2..=8192"
        ));
    }
    Ok((w, h))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match app::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("client-demo: {e}");
            ExitCode::FAILURE
        }
    }
}
