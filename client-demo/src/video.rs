//! The video on the main surface: camera frames shown from the capture buffers themselves, or
//! the picture rendered into a swapchain; each frame is offered to the detector.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use client_demo::picture::Picture;
use wayheap::client::Swapchain;
use wayheap::dmabuf::DmaBuf;
use wayheap::layout::{Fourcc, Layout, LayoutOptions};

use crate::Args;
use crate::camera::{CameraVideo, CaptureRequest};
use crate::client::Client;
use crate::memory::Memory;
use crate::stats::{Stats, VideoReport};
use crate::worker::{DetectorFeed, Job, Pixels};

/// How long the loop waits for a camera frame before looking at everything else again.
const CAMERA_WAIT: Duration = Duration::from_millis(100);

/// Where the video comes from.
pub enum Video {
    /// A picture, rendered at `--fps`.
    Picture(PictureVideo),
    /// A V4L2 camera at its own pace.
    Camera(CameraVideo),
}

/// The picture source: rendered (panned and zoomed unless `--still`) into a swapchain.
pub struct PictureVideo {
    picture: Picture,
    chain: Swapchain,
    moving: bool,
    started: Instant,
    next: Instant,
    interval: Duration,
    /// Frames rendered (the detector's sequence numbers).
    seq: u64,
    /// With `--still`: the buffers that already hold the picture (a still picture is drawn
    /// once per buffer, then only presented again).
    drawn: Vec<bool>,
    /// YUV buffers (`--format NV12`/`YUYV`): the picture is drawn here in XRGB8888, then
    /// written as YUV (what a camera would have given).
    rgb: Option<Vec<u8>>,
}

impl Video {
    /// Opens what the command line asks for (`--camera`, `--image`; else the first capture
    /// device, else the built-in picture) with buffers the compositor's feedback suits, and
    /// prints the `VIDEO` line.
    pub fn open(args: &Args, client: &Client, memory: &Memory) -> Result<Video, String> {
        let camera_path = match (&args.camera, &args.image) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(_)) => None,
            (None, None) => crate::camera::first_capture_device(),
        };
        let video = match camera_path {
            Some(path) => {
                let request = CaptureRequest {
                    format: &args.format,
                    size: args.size,
                    buffers: args.buffers as usize,
                };
                let cam = CameraVideo::open(&path, request, client.feedback(), &memory.alloc)?;
                println!("{}", cam.describe());
                Video::Camera(cam)
            }
            None => Video::Picture(PictureVideo::open(args, client, memory)?),
        };
        Ok(video)
    }

    /// The frames' size.
    pub fn size(&self) -> (u32, u32) {
        let layout = match self {
            Video::Camera(c) => c.layout(),
            Video::Picture(p) => p.chain.layout(),
        };
        (layout.width, layout.height)
    }

    /// Shows the frames that are due (the picture's next one, the camera's captured ones) and
    /// offers each to the detector.
    pub fn show_frames(
        &mut self,
        client: &mut Client,
        detector: &mut DetectorFeed,
        stats: &mut Stats,
    ) -> Result<(), String> {
        match self {
            Video::Picture(p) => p.show_due_frame(client, detector, stats),
            Video::Camera(c) => show_captured_frames(c, client, detector, stats),
        }
    }

    /// The detector is done with source buffer `slot`.
    pub fn detector_done(&mut self, slot: usize) -> Result<(), String> {
        match self {
            Video::Camera(c) => c.detector_done(slot),
            // The picture's swapchain passes over the buffer the detector reads by itself.
            Video::Picture(_) => Ok(()),
        }
    }

    /// How long the loop may wait before the next frame is due.
    pub fn timeout(&self) -> Duration {
        match self {
            Video::Picture(p) => p.next.saturating_duration_since(Instant::now()),
            Video::Camera(_) => CAMERA_WAIT,
        }
        .min(CAMERA_WAIT)
    }

    /// Readable when the camera captured a frame.
    pub fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Video::Camera(c) => Some(c.poll_fd()),
            Video::Picture(_) => None,
        }
    }

    /// Presentations, copies and imports so far, for the stats line.
    pub fn report(&self, client: &Client) -> VideoReport {
        match self {
            Video::Picture(p) => {
                let s = p.chain.stats();
                VideoReport {
                    presented: s.presented,
                    zero_copy: s.zero_copy,
                    shm_copies: u64::from(!p.chain.decision().path.zero_copy()),
                    imports: None,
                }
            }
            Video::Camera(c) => {
                let (presented, zero_copy) = client.presented();
                VideoReport {
                    presented,
                    zero_copy,
                    shm_copies: 0,
                    imports: Some(c.imports()),
                }
            }
        }
    }
}

impl PictureVideo {
    /// Loads the picture (`--image`, or the built-in one) and allocates its swapchain as the
    /// compositor's feedback decides for XRGB8888, or for `--format NV12`/`YUYV` (camera-like
    /// YUV frames).
    fn open(args: &Args, client: &Client, memory: &Memory) -> Result<PictureVideo, String> {
        let picture = match args.image.as_deref() {
            None => Picture::builtin()?,
            Some(p) if p.as_os_str() == "builtin" => Picture::builtin()?,
            Some(p) => Picture::load(p)?,
        };
        let (frame_w, frame_h) = args.size;
        let format = match args.format.as_str() {
            "auto" | "XR24" => Fourcc::XRGB8888,
            "NV12" => Fourcc::NV12,
            "YUYV" => Fourcc::YUYV,
            other => {
                return Err(format!(
                    "--format {other}: the picture source draws XR24, NV12 or YUYV"
                ));
            }
        };
        let layout = Layout::new(format, frame_w, frame_h, LayoutOptions::default())
            .map_err(|e| e.to_string())?;
        let rgb = (format != Fourcc::XRGB8888).then(|| vec![0u8; (frame_w * frame_h * 4) as usize]);
        // The picture is application memory: exported through udmabuf when it can be.
        let chain = memory
            .swapchain(
                client.decide(format),
                layout,
                args.buffers as usize,
                &client.protocols(),
                &client.qh,
            )
            .map_err(|e| format!("video buffers: {e}"))?;
        println!(
            "VIDEO source=picture format={format} size={frame_w}x{frame_h} buffers={} provider={} decision={}",
            args.buffers,
            chain.provider(),
            chain.decision()
        );
        Ok(PictureVideo {
            picture,
            chain,
            moving: !args.still,
            started: Instant::now(),
            next: Instant::now(),
            interval: Duration::from_secs(1) / args.fps,
            seq: 0,
            drawn: vec![false; args.buffers as usize],
            rgb,
        })
    }

    /// Renders and presents the next frame when it is due and a buffer is free (not the one
    /// the detector reads).
    fn show_due_frame(
        &mut self,
        client: &Client,
        detector: &mut DetectorFeed,
        stats: &mut Stats,
    ) -> Result<(), String> {
        if Instant::now() < self.next || !self.chain.ready() {
            return Ok(());
        }
        let Some(index) = self.chain.acquire_except(detector.reading()) else {
            return Ok(());
        };
        let t = self.started.elapsed().as_secs_f32();
        let layout = self.chain.layout().clone();
        let stride = layout.planes[0].stride as usize;
        let (picture, moving) = (&self.picture, self.moving);
        let already = !moving && self.drawn.get(index).copied().unwrap_or(false);
        if !already {
            let (w, h) = (layout.width, layout.height);
            match self.rgb.as_mut() {
                None => self
                    .chain
                    .write(index, |bytes| {
                        picture.render(t, moving, bytes, stride, w, h)
                    })
                    .map_err(|e| format!("drawing the picture: {e}"))?,
                Some(rgb) => {
                    picture.render(t, moving, rgb, w as usize * 4, w, h);
                    let rgb: &[u8] = rgb;
                    let at = |x: u32, y: u32| {
                        let i = (y * w + x) as usize * 4;
                        u32::from_le_bytes([rgb[i], rgb[i + 1], rgb[i + 2], rgb[i + 3]])
                    };
                    self.chain
                        .write(index, |bytes| {
                            wayheap::yuv::write_rgb(
                                bytes,
                                &layout,
                                wayheap::yuv::Colour::default(),
                                at,
                            )
                        })
                        .map_err(|e| format!("drawing the picture: {e}"))?
                        .map_err(|e| format!("writing the picture as {}: {e}", layout.format))?;
                }
            }
            if let Some(d) = self.drawn.get_mut(index) {
                *d = true;
            }
        }
        self.chain
            .present(index, client.main_surface(), &[], &client.qh)
            .map_err(|e| e.to_string())?;
        self.seq += 1;
        stats.frames += 1;
        self.next = Instant::now() + self.interval;
        let (chain, seq) = (&self.chain, self.seq);
        let taken = detector.offer(index, || {
            let pixels = match chain.dmabuf(index) {
                Some(d) => Pixels::DmaBuf(DmaBuf::import(d.fd().try_clone_to_owned().ok()?).ok()?),
                // wl_shm: no dma-buf to share with the worker, so a copy.
                None => Pixels::Copy(chain.read(index, <[u8]>::to_vec).ok()?),
            };
            Some(Job {
                seq,
                slot: index,
                pixels,
                layout,
            })
        });
        if taken == Some(false) {
            stats.skipped += 1;
        }
        Ok(())
    }
}

/// Gives the buffers the compositor released back to the camera (unless the detector still
/// reads one), then shows every captured frame from its own buffer.
fn show_captured_frames(
    cam: &mut CameraVideo,
    client: &mut Client,
    detector: &mut DetectorFeed,
    stats: &mut Stats,
) -> Result<(), String> {
    for slot in client.take_released() {
        cam.released(slot)?;
    }
    while let Some(frame) = cam.dequeue()? {
        if frame.error {
            // V4L2_BUF_FLAG_ERROR: the driver says the frame is damaged.
            stats.damaged += 1;
            cam.drop_frame(frame.slot)?;
            continue;
        }
        let buffer = cam.wl_buffer(frame.slot, client.globals.linux_dmabuf.as_ref(), &client.qh)?;
        let layout = cam.layout();
        client.show(&buffer, (layout.width, layout.height));
        cam.shown(frame.slot);
        stats.frames += 1;
        let taken = detector.offer(frame.slot, || {
            let fd = cam.dmabuf(frame.slot).fd().try_clone_to_owned().ok()?;
            Some(Job {
                seq: frame.sequence,
                slot: frame.slot,
                pixels: Pixels::DmaBuf(DmaBuf::import(fd).ok()?),
                layout: cam.layout().clone(),
            })
        });
        match taken {
            Some(true) => cam.detector_took(frame.slot),
            Some(false) => stats.skipped += 1,
            None => {}
        }
    }
    Ok(())
}
