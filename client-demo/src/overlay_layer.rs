//! The overlay subsurface over the video: the detector's rectangles in a double-buffered
//! ARGB8888 swapchain, redrawn and damaged only where they changed.

use std::time::Duration;

use client_demo::detector::{BBox, Face, Point};
use client_demo::overlay::{Painter, Target, damage};
use wayheap::client::Swapchain;
use wayheap::layout::{Fourcc, Layout, LayoutOptions};
use wayland_client::protocol::wl_surface::WlSurface;

use crate::client::Client;
use crate::memory::Memory;

/// The overlay subsurface, its buffers, and what each shows.
pub struct OverlayLayer {
    chain: Swapchain,
    surface: WlSurface,
    /// Faces (in overlay pixels) each buffer shows.
    shown: Vec<Vec<Face>>,
    /// Faces on screen (the last committed buffer's).
    committed: Vec<Face>,
    /// Faces waiting for a free buffer.
    pending: Option<Vec<Face>>,
    painter: Painter,
    /// Video pixels to overlay pixels.
    scale: (f32, f32),
}

impl OverlayLayer {
    /// Buffers of `size` for `surface` (the subsurface over a video of `video` pixels shown at
    /// `size`), as the compositor's feedback decides for ARGB8888; prints the `OVERLAY` line.
    /// The first [`draw`](Self::draw) maps it, transparent.
    pub fn create(
        client: &Client,
        memory: &Memory,
        surface: WlSurface,
        size: (i32, i32),
        video: (u32, u32),
    ) -> Result<OverlayLayer, String> {
        let layout = Layout::new(
            Fourcc::ARGB8888,
            size.0 as u32,
            size.1 as u32,
            LayoutOptions::default(),
        )
        .map_err(|e| e.to_string())?;
        let chain = memory
            .swapchain(
                client.decide(Fourcc::ARGB8888),
                layout,
                2,
                &client.protocols(),
                &client.qh,
            )
            .map_err(|e| format!("overlay buffers: {e}"))?;
        println!(
            "OVERLAY size={}x{} at=0,0 provider={} decision={}",
            size.0,
            size.1,
            chain.provider(),
            chain.decision()
        );
        Ok(OverlayLayer {
            chain,
            surface,
            shown: vec![Vec::new(); 2],
            committed: Vec::new(),
            pending: Some(Vec::new()),
            painter: Painter::new(),
            scale: (
                size.0 as f32 / video.0 as f32,
                size.1 as f32 / video.1 as f32,
            ),
        })
    }

    /// The detector found `faces` (in video pixels) in frame `seq` in `elapsed`: prints a
    /// `FACES` line for each (in overlay pixels) and has them drawn next.
    pub fn faces_found(&mut self, seq: u64, faces: &[Face], elapsed: Duration) {
        let scaled: Vec<Face> = faces
            .iter()
            .map(|f| scale_face(f, self.scale.0, self.scale.1))
            .collect();
        for f in &scaled {
            println!(
                "FACES seq={} box={:.0},{:.0},{:.0},{:.0} score={:.2} ms={}",
                seq,
                f.bbox.x0,
                f.bbox.y0,
                f.bbox.x1,
                f.bbox.y1,
                f.score,
                elapsed.as_millis()
            );
        }
        self.pending = Some(scaled);
    }

    /// Draws the pending faces into a free buffer and commits it with the damage from what is
    /// on screen (all of it the first time); does nothing while no buffer is free or nothing
    /// is pending.
    pub fn draw(&mut self, client: &Client) -> Result<(), String> {
        if self.pending.is_none() || !self.chain.ready() {
            return Ok(());
        }
        let Some(index) = self.chain.acquire() else {
            return Ok(());
        };
        let new = self.pending.take().unwrap_or_default();
        let layout = self.chain.layout().clone();
        let stride = layout.planes[0].stride as usize;
        let old = std::mem::take(&mut self.shown[index]);
        let painter = &mut self.painter;
        self.chain
            .write(index, |bytes| {
                Target::new(bytes, stride, layout.width, layout.height)
                    .map(|mut t| painter.update(&mut t, &old, &new))
            })
            .map_err(|e| format!("overlay: {e}"))?
            .map_err(|e| format!("overlay: {e}"))?;
        // The surface changes from what was committed last, whatever this buffer held.
        let rects: Vec<(i32, i32, i32, i32)> =
            damage(&self.committed, &new, layout.width, layout.height)
                .iter()
                .map(|r| (r.x, r.y, r.width, r.height))
                .collect();
        // The first commit maps the (transparent) overlay: damage all of it.
        let first = self.chain.stats().submitted == 0;
        if first || !rects.is_empty() {
            self.chain
                .present(
                    index,
                    &self.surface,
                    if first { &[] } else { &rects },
                    &client.qh,
                )
                .map_err(|e| e.to_string())?;
            self.shown[index] = new.clone();
            self.committed = new;
        } else {
            self.shown[index] = new;
        }
        Ok(())
    }
}

/// `f` with every coordinate scaled by `sx`, `sy`.
fn scale_face(f: &Face, sx: f32, sy: f32) -> Face {
    let p = |p: Point| Point {
        x: p.x * sx,
        y: p.y * sy,
    };
    Face {
        bbox: BBox {
            x0: f.bbox.x0 * sx,
            y0: f.bbox.y0 * sy,
            x1: f.bbox.x1 * sx,
            y1: f.bbox.y1 * sy,
        },
        score: f.score,
        keypoints: f.keypoints.map(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faces_scale_from_video_to_overlay_pixels() {
        let f = Face {
            bbox: BBox {
                x0: 10.0,
                y0: 20.0,
                x1: 30.0,
                y1: 40.0,
            },
            score: 0.9,
            keypoints: [Point { x: 2.0, y: 4.0 }; 6],
        };
        let s = scale_face(&f, 2.0, 0.5);
        assert_eq!(
            (s.bbox.x0, s.bbox.y0, s.bbox.x1, s.bbox.y1),
            (20.0, 10.0, 60.0, 20.0)
        );
        assert_eq!(s.score, 0.9);
        assert!(s.keypoints.iter().all(|p| (p.x, p.y) == (4.0, 2.0)));
    }
}
