//! The main loop: the video on the main surface, the detector's faces on the overlay above it,
//! the stats, and waiting for whichever of the compositor, the camera and the detector is next.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use crate::Args;
use crate::client::Client;
use crate::memory::Memory;
use crate::overlay_layer::OverlayLayer;
use crate::stats::Stats;
use crate::video::Video;
use crate::worker::DetectorFeed;

/// Runs the client until it is closed, killed, or `--frames`/`--seconds` are reached.
pub fn run(args: Args) -> Result<(), String> {
    let mut client = Client::connect()?;
    let output = client.output_size(args.size);
    let overlay_surface = client.add_layer();
    let memory = Memory::from_env(args.shm)?;
    let mut video = Video::open(&args, &client, &memory)?;
    // Where the video goes, and the overlay on top of it at the same size.
    let dest = client.place_video(args.scale, video.size(), output);
    let mut overlay = OverlayLayer::create(&client, &memory, overlay_surface, dest, video.size())?;
    let mut detector = DetectorFeed::start(!args.no_detector)?;
    let mut stats = Stats::new(Instant::now());
    let started = Instant::now();
    flush_stdout();

    loop {
        video.show_frames(&mut client, &mut detector, &mut stats)?;
        for d in detector.results() {
            video.detector_done(d.slot)?;
            stats.detections += 1;
            stats.detector_time += d.elapsed;
            match d.faces {
                Ok(faces) => overlay.faces_found(d.seq, &faces, d.elapsed),
                Err(e) => eprintln!("client-demo: detector: {e}"),
            }
        }
        overlay.draw(&client)?;

        let now = Instant::now();
        if stats.interval_over(now) {
            if args.stats {
                let line = stats.line(&video.report(&client), library_copies(), now);
                println!("{line}");
            }
            stats.next_interval(now);
        }
        if finished(&args, &client, &stats, started) {
            let total = stats.total_line(&video.report(&client), library_copies(), now);
            println!("{total}");
            flush_stdout();
            return Ok(());
        }

        // Wait for the compositor, the camera, the detector, or the picture's next frame.
        flush_stdout();
        let fds: Vec<BorrowedFd<'_>> = video
            .poll_fd()
            .into_iter()
            .chain(detector.wake_fd())
            .collect();
        client.wait(&fds, video.timeout())?;
    }
}

/// The window was closed, or `--frames` or `--seconds` reached.
fn finished(args: &Args, client: &Client, stats: &Stats, started: Instant) -> bool {
    client.closed()
        || (args.frames > 0 && stats.frames >= args.frames)
        || (args.seconds > 0 && started.elapsed() >= Duration::from_secs(args.seconds))
}

/// CPU copies into dma-bufs the library made so far.
fn library_copies() -> u64 {
    wayheap::accounting::copies().0
}

fn flush_stdout() {
    let _ = std::io::Write::flush(&mut std::io::stdout());
}
