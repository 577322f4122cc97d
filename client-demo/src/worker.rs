//! The detector's worker thread: frames go in by dma-buf (read in place through an mmap with a
//! READ sync guard), faces come out tagged with the frame's sequence number. The video path never
//! waits for it: while it is busy, frames are not offered to it ([`DetectorWorker::try_submit`]
//! returns false and the frame is counted as skipped).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use client_demo::convert::{Frame, ModelInput, PixelFormat, Plane};
use client_demo::detector::{Detector, Face};
use wayheap::dmabuf::DmaBuf;
use wayheap::layout::{Fourcc, Layout};

/// One frame for the detector.
#[derive(Debug)]
pub struct Job {
    /// Frame sequence number.
    pub seq: u64,
    /// Which source buffer it is in (returned with the result so the buffer can be reused).
    pub slot: usize,
    /// The frame's pixels.
    pub pixels: Pixels,
    /// Its layout.
    pub layout: Layout,
}

/// Where the detector reads a frame.
#[derive(Debug)]
pub enum Pixels {
    /// In place: another fd of the frame's dma-buf, mapped with a READ sync guard.
    DmaBuf(DmaBuf),
    /// A copy (the wl_shm fallback, where there is no dma-buf to share with the worker).
    Copy(Vec<u8>),
}

/// What the detector found in one frame.
#[derive(Debug)]
pub struct Detection {
    /// The frame's sequence number.
    pub seq: u64,
    /// The source buffer, free again as far as the detector is concerned.
    pub slot: usize,
    /// Faces in frame pixels, or why there are none.
    pub faces: Result<Vec<Face>, String>,
    /// Conversion + inference time.
    pub elapsed: Duration,
}

/// The worker thread and its channels.
#[derive(Debug)]
pub struct DetectorWorker {
    jobs: mpsc::Sender<Job>,
    results: mpsc::Receiver<Detection>,
    busy: Arc<AtomicBool>,
    /// Readable whenever a result is waiting (an eventfd), for the main loop's poll.
    pub wake: Arc<OwnedFd>,
}

fn pixel_format(format: Fourcc) -> Option<PixelFormat> {
    match format {
        Fourcc::NV12 => Some(PixelFormat::Nv12),
        Fourcc::YUYV => Some(PixelFormat::Yuyv),
        Fourcc::XRGB8888 => Some(PixelFormat::Xrgb8888),
        Fourcc::ARGB8888 => Some(PixelFormat::Argb8888),
        _ => None,
    }
}

fn detect(detector: &Detector, input: &mut ModelInput, job: &Job) -> Result<Vec<Face>, String> {
    let format = pixel_format(job.layout.format)
        .ok_or_else(|| format!("the detector cannot read {}", job.layout.format))?;
    let map;
    let guard;
    let bytes: &[u8] = match &job.pixels {
        Pixels::DmaBuf(d) => {
            map = d.map().map_err(|e| e.to_string())?;
            guard = map.read().map_err(|e| e.to_string())?;
            &guard
        }
        Pixels::Copy(v) => v,
    };
    let planes: Vec<Plane<'_>> = job
        .layout
        .planes
        .iter()
        .map(|p| {
            let start = p.offset as usize;
            let end = (start + p.stride as usize * p.height as usize).min(bytes.len());
            Plane {
                data: &bytes[start.min(end)..end],
                stride: p.stride as usize,
            }
        })
        .collect();
    let frame = Frame {
        format,
        width: job.layout.width,
        height: job.layout.height,
        planes: &planes,
    };
    let letterbox = input.convert(&frame).map_err(|e| e.to_string())?;
    detector
        .detect(input, &letterbox)
        .map_err(|e| e.to_string())
}

impl DetectorWorker {
    /// Loads the model and starts the thread.
    pub fn start() -> Result<DetectorWorker, String> {
        let detector = Detector::new().map_err(|e| format!("loading the face detector: {e}"))?;
        let wake = Arc::new(
            rustix::event::eventfd(
                0,
                rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
            )
            .map_err(|e| format!("eventfd: {e}"))?,
        );
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (result_tx, results) = mpsc::channel();
        let busy = Arc::new(AtomicBool::new(false));
        let (thread_wake, thread_busy) = (wake.clone(), busy.clone());
        std::thread::Builder::new()
            .name("face-detector".into())
            .spawn(move || {
                let mut input = ModelInput::new();
                for job in job_rx {
                    let start = Instant::now();
                    let faces = detect(&detector, &mut input, &job);
                    let result = Detection {
                        seq: job.seq,
                        slot: job.slot,
                        faces,
                        elapsed: start.elapsed(),
                    };
                    drop(job);
                    thread_busy.store(false, Ordering::Release);
                    if result_tx.send(result).is_err() {
                        break;
                    }
                    let _ = rustix::io::write(thread_wake.as_fd(), &1u64.to_ne_bytes());
                }
            })
            .map_err(|e| format!("starting the detector thread: {e}"))?;
        Ok(DetectorWorker {
            jobs,
            results,
            busy,
            wake,
        })
    }

    /// Hands `job` to the detector unless it is still busy with an earlier frame.
    pub fn try_submit(&self, job: impl FnOnce() -> Option<Job>) -> bool {
        if self.busy.swap(true, Ordering::AcqRel) {
            return false;
        }
        let sent = job().is_some_and(|job| self.jobs.send(job).is_ok());
        if !sent {
            self.busy.store(false, Ordering::Release);
        }
        sent
    }

    /// Results that arrived since the last call.
    pub fn results(&self) -> Vec<Detection> {
        let mut counter = [0u8; 8];
        let _ = rustix::io::read(self.wake.as_fd(), &mut counter);
        self.results.try_iter().collect()
    }
}

/// The detector as the video sees it: the worker (none with `--no-detector`) and the source
/// buffer it is reading, which the video must not reuse until its result is back.
#[derive(Debug)]
pub struct DetectorFeed {
    worker: Option<DetectorWorker>,
    reading: Option<usize>,
}

impl DetectorFeed {
    /// Starts the worker when `enabled`.
    pub fn start(enabled: bool) -> Result<DetectorFeed, String> {
        Ok(DetectorFeed {
            worker: if enabled {
                Some(DetectorWorker::start()?)
            } else {
                None
            },
            reading: None,
        })
    }

    /// The source buffer the detector is reading.
    pub fn reading(&self) -> Option<usize> {
        self.reading
    }

    /// Offers the frame in source buffer `slot`: `Some(true)` when the worker took it (the
    /// buffer is then [`reading`](Self::reading)), `Some(false)` when it was busy or the job
    /// could not be made (the frame is skipped), `None` without a detector.
    pub fn offer(&mut self, slot: usize, job: impl FnOnce() -> Option<Job>) -> Option<bool> {
        let taken = self.worker.as_ref()?.try_submit(job);
        if taken {
            self.reading = Some(slot);
        }
        Some(taken)
    }

    /// Results that arrived since the last call. Every result frees its buffer (the worker may
    /// already have taken the next frame, so [`reading`](Self::reading) can name another one).
    pub fn results(&mut self) -> Vec<Detection> {
        let results = self
            .worker
            .as_ref()
            .map(DetectorWorker::results)
            .unwrap_or_default();
        for d in &results {
            if self.reading == Some(d.slot) {
                self.reading = None;
            }
        }
        results
    }

    /// Readable when a result is waiting.
    pub fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        self.worker.as_ref().map(|w| w.wake.as_fd())
    }
}
