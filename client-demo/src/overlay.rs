//! Drawing detections into the overlay buffer, redrawing only what changed.
//!
//! This module draws each [`Face`] into an ARGB8888 buffer (premultiplied alpha, little-endian,
//! so bytes B, G, R, A: DRM `ARGB8888`, `wl_shm` `argb8888`) that is transparent everywhere else:
//! a green outline around the face, a red dot on each keypoint and the score ("0.92") in black on
//! a green label just above the box. [`damage`] says which rectangles of the buffer differ between
//! two sets of faces (the drawn extents of the faces that changed, merged where they overlap), and
//! [`Painter::paint`] redraws only those rectangles: it clears each one and draws into it whatever
//! of the new faces falls inside. Face coordinates are buffer pixels: when the overlay buffer is
//! the camera frame's size, the detector's frame pixels as they are.
//!
//! Shapes are drawn by tiny-skia (anti-aliased dots, pixel-exact rectangles). The score is drawn
//! with embedded-graphics' `FONT_9X15_BOLD`: a bitmap font compiled into that crate, so there is no
//! font file to find at run time and no rasterizer; four digits need nothing more.
//!
//! # How to use
//!
//! ```
//! use client_demo::detector::{BBox, Face};
//! use client_demo::overlay::{Painter, Target, damage};
//!
//! let (width, height, stride) = (320u32, 240u32, 320 * 4);
//! let mut buffer = vec![0u8; stride * height as usize]; // transparent
//! let mut painter = Painter::new();
//!
//! // What this buffer shows now (nothing), and what it should show.
//! let old: Vec<Face> = Vec::new();
//! let face = Face {
//!     bbox: BBox { x0: 100.0, y0: 60.0, x1: 180.0, y1: 140.0 },
//!     score: 0.92,
//!     ..Face::default()
//! };
//! let new = vec![face];
//!
//! let mut target = Target::new(&mut buffer, stride, width, height)?;
//! let rects = damage(&old, &new, width, height);
//! painter.paint(&mut target, &new, &rects);
//! // Damage `rects` on the surface (wl_surface.damage_buffer) and commit.
//! assert_eq!(rects.len(), 1);
//! assert_eq!(target.pixel(99, 100), Some([0, 255, 0, 255])); // left edge: opaque green
//! assert_eq!(target.pixel(140, 100), Some([0, 0, 0, 0])); // inside: transparent
//! # Ok::<(), client_demo::overlay::OverlayError>(())
//! ```
//!
//! With several buffers in flight, each buffer still shows the faces last painted into *it*:
//! clear and paint with `damage(faces_in_this_buffer, new)`, but damage the surface with
//! `damage(faces_on_screen, new)`, the faces of the previous commit.

use embedded_graphics::Drawable;
use embedded_graphics::mono_font::{MonoFont, MonoTextStyle, ascii::FONT_9X15_BOLD};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::{Dimensions, DrawTarget, Point as EgPoint, Size};
use embedded_graphics::primitives::Rectangle;
use embedded_graphics::text::{Baseline, Text};
use thiserror::Error;
use tiny_skia::{Color, FillRule, Paint, PathBuilder, PixmapMut, Transform};

use crate::detector::Face;

/// Outline colour, RGB: opaque green.
pub const BOX_COLOR: [u8; 3] = [0, 255, 0];
/// Keypoint colour, RGB: opaque red.
pub const KEYPOINT_COLOR: [u8; 3] = [255, 0, 0];
/// Score text colour, RGB, on a label of [`BOX_COLOR`]: black.
pub const TEXT_COLOR: [u8; 3] = [0, 0, 0];
/// Outline width in pixels. The outline lies just outside the face's box, rounded to pixels.
pub const STROKE: i32 = 3;
/// Keypoint dot radius in pixels.
pub const DOT_RADIUS: f32 = 3.0;

const FONT: &MonoFont<'static> = &FONT_9X15_BOLD;
/// Characters in a label: "0.92".
const LABEL_CHARS: usize = 4;
/// Space around the label text, in pixels.
const LABEL_PAD: i32 = 2;
/// Pixels a dot can reach from the pixel its centre is in (radius plus anti-aliasing).
const DOT_REACH: i32 = DOT_RADIUS as i32 + 1;
/// Coordinates are clamped to ±this before rounding, so no arithmetic overflows.
const COORD_LIMIT: f32 = (1 << 24) as f32;

/// A rectangle of buffer pixels: `x`, `y` its top-left corner, `width`, `height` its size, as
/// `wl_surface.damage_buffer` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left column.
    pub x: i32,
    /// Top row.
    pub y: i32,
    /// Width in pixels (0 or negative: empty).
    pub width: i32,
    /// Height in pixels (0 or negative: empty).
    pub height: i32,
}

impl Rect {
    fn from_edges(x0: i32, y0: i32, x1: i32, y1: i32) -> Rect {
        Rect {
            x: x0,
            y: y0,
            width: x1 - x0,
            height: y1 - y0,
        }
    }

    fn right(&self) -> i32 {
        self.x + self.width
    }

    fn bottom(&self) -> i32 {
        self.y + self.height
    }

    /// Whether the rectangle covers no pixel.
    pub fn is_empty(&self) -> bool {
        self.width <= 0 || self.height <= 0
    }

    /// The smallest rectangle covering both.
    pub fn union(&self, other: &Rect) -> Rect {
        Rect::from_edges(
            self.x.min(other.x),
            self.y.min(other.y),
            self.right().max(other.right()),
            self.bottom().max(other.bottom()),
        )
    }

    /// The pixels in both, or `None` if they share none.
    pub fn intersection(&self, other: &Rect) -> Option<Rect> {
        let r = Rect::from_edges(
            self.x.max(other.x),
            self.y.max(other.y),
            self.right().min(other.right()),
            self.bottom().min(other.bottom()),
        );
        (!r.is_empty()).then_some(r)
    }
}

/// Why a buffer cannot be drawn into.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum OverlayError {
    /// Width or height is zero or larger than `i32::MAX`.
    #[error("overlay buffer size {width}x{height} is not usable")]
    BadSize {
        /// Buffer width.
        width: u32,
        /// Buffer height.
        height: u32,
    },
    /// The stride is smaller than a row of pixels.
    #[error("overlay stride {stride} is smaller than a row ({row_bytes} bytes)")]
    StrideTooSmall {
        /// The stride.
        stride: usize,
        /// Bytes a row takes.
        row_bytes: usize,
    },
    /// The buffer holds fewer bytes than its rows need (or that size overflows `usize`).
    #[error("overlay buffer has {len} bytes, {needed} needed")]
    BufferTooShort {
        /// The buffer's length.
        len: usize,
        /// Bytes needed (`usize::MAX` when that overflows).
        needed: usize,
    },
}

/// An ARGB8888 buffer to draw into (premultiplied, bytes B, G, R, A), checked once.
#[derive(Debug)]
pub struct Target<'a> {
    data: &'a mut [u8],
    stride: usize,
    width: u32,
    height: u32,
}

impl<'a> Target<'a> {
    /// Checks that `data` holds `height` rows of `stride` bytes (the last one at least
    /// `width * 4`).
    pub fn new(
        data: &'a mut [u8],
        stride: usize,
        width: u32,
        height: u32,
    ) -> Result<Target<'a>, OverlayError> {
        let max = i32::MAX as u32;
        if width == 0 || height == 0 || width > max || height > max {
            return Err(OverlayError::BadSize { width, height });
        }
        let row_bytes = width as usize * 4;
        if stride < row_bytes {
            return Err(OverlayError::StrideTooSmall { stride, row_bytes });
        }
        let needed = stride
            .checked_mul(height as usize - 1)
            .and_then(|n| n.checked_add(row_bytes))
            .unwrap_or(usize::MAX);
        if data.len() < needed {
            return Err(OverlayError::BufferTooShort {
                len: data.len(),
                needed,
            });
        }
        Ok(Target {
            data,
            stride,
            width,
            height,
        })
    }

    /// The whole buffer as a rectangle.
    pub fn bounds(&self) -> Rect {
        Rect {
            x: 0,
            y: 0,
            width: self.width as i32,
            height: self.height as i32,
        }
    }

    /// The bytes B, G, R, A of pixel (`x`, `y`), or `None` outside the buffer.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = y as usize * self.stride + x as usize * 4;
        self.data.get(i..i + 4)?.try_into().ok()
    }

    /// Makes the whole buffer transparent (for a buffer whose content is unknown).
    pub fn clear(&mut self) {
        let row_bytes = self.width as usize * 4;
        for row in self.data.chunks_mut(self.stride).take(self.height as usize) {
            row[..row_bytes].fill(0);
        }
    }

    /// Copies `rect` (inside the buffer) from `pixels`, rows of `rect.width * 4` bytes.
    fn copy_in(&mut self, rect: &Rect, pixels: &[u8]) {
        let row_bytes = rect.width as usize * 4;
        for (row, src) in pixels.chunks_exact(row_bytes).enumerate() {
            let start = (rect.y as usize + row) * self.stride + rect.x as usize * 4;
            self.data[start..start + row_bytes].copy_from_slice(src);
        }
    }
}

/// Where one face's marks go, in whole buffer pixels. Two faces with equal layouts draw the
/// same pixels, which is what [`damage`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// Outer edge of the outline.
    outline: Rect,
    /// The pixel each keypoint dot is centred in.
    dots: [(i32, i32); 6],
    /// The label's box; the text sits `LABEL_PAD` inside it.
    label: Rect,
    /// The score in hundredths, 0..=100.
    score: u32,
}

/// Rounds a coordinate to whole pixels; non-finite and huge values become harmless.
fn px(v: f32) -> i32 {
    let v = if v.is_nan() {
        0.0
    } else {
        v.clamp(-COORD_LIMIT, COORD_LIMIT)
    };
    v.round() as i32
}

impl Layout {
    fn new(face: &Face, width: u32) -> Layout {
        let (x0, x1) = (
            px(face.bbox.x0.min(face.bbox.x1)),
            px(face.bbox.x0.max(face.bbox.x1)),
        );
        let (y0, y1) = (
            px(face.bbox.y0.min(face.bbox.y1)),
            px(face.bbox.y0.max(face.bbox.y1)),
        );
        let outline = Rect::from_edges(x0 - STROKE, y0 - STROKE, x1 + STROKE, y1 + STROKE);
        let dots = face.keypoints.map(|p| (px(p.x - 0.5), px(p.y - 0.5)));
        let label_w = LABEL_CHARS as i32 * FONT.character_size.width as i32 + 2 * LABEL_PAD;
        let label_h = FONT.character_size.height as i32 + 2 * LABEL_PAD;
        // Above the box's top-left corner; pushed inside the buffer where it would leave it.
        let label_x = outline.x.min(width as i32 - label_w).max(0);
        let label_y = (outline.y - label_h).max(0);
        let score = if face.score.is_nan() {
            0.0
        } else {
            face.score.clamp(0.0, 1.0)
        };
        Layout {
            outline,
            dots,
            label: Rect {
                x: label_x,
                y: label_y,
                width: label_w,
                height: label_h,
            },
            score: (score * 100.0).round() as u32,
        }
    }

    /// Every pixel this layout may touch.
    fn extent(&self) -> Rect {
        self.dots
            .iter()
            .fold(self.outline.union(&self.label), |r, &(x, y)| {
                r.union(&Rect::from_edges(
                    x - DOT_REACH,
                    y - DOT_REACH,
                    x + DOT_REACH + 1,
                    y + DOT_REACH + 1,
                ))
            })
    }

    fn text(&self) -> [u8; LABEL_CHARS] {
        let s = self.score.min(100);
        [
            b'0' + (s / 100) as u8,
            b'.',
            b'0' + (s / 10 % 10) as u8,
            b'0' + (s % 10) as u8,
        ]
    }
}

/// The pixels `face` draws into a `width` x `height` buffer, or `None` if it is all outside.
pub fn extent(face: &Face, width: u32, height: u32) -> Option<Rect> {
    let bounds = Rect {
        x: 0,
        y: 0,
        width: width as i32,
        height: height as i32,
    };
    Layout::new(face, width).extent().intersection(&bounds)
}

/// The rectangles of a `width` x `height` buffer that change when it goes from showing `old` to
/// showing `new`: the extents of the faces drawn differently (a face drawn the same in both
/// costs nothing), merged until none overlap. Empty when nothing changes.
pub fn damage(old: &[Face], new: &[Face], width: u32, height: u32) -> Vec<Rect> {
    let old: Vec<Layout> = old.iter().map(|f| Layout::new(f, width)).collect();
    let new: Vec<Layout> = new.iter().map(|f| Layout::new(f, width)).collect();
    let bounds = Rect {
        x: 0,
        y: 0,
        width: width as i32,
        height: height as i32,
    };
    let changed = old
        .iter()
        .filter(|l| !new.contains(l))
        .chain(new.iter().filter(|l| !old.contains(l)))
        .filter_map(|l| l.extent().intersection(&bounds));
    merge(changed)
}

/// Merges overlapping rectangles into their union until none overlap.
fn merge(input: impl IntoIterator<Item = Rect>) -> Vec<Rect> {
    let mut rects: Vec<Rect> = Vec::new();
    for mut rect in input {
        // Swallow every rectangle this one overlaps; the union may overlap others in turn.
        // `rects` stays pairwise disjoint.
        while let Some(i) = rects.iter().position(|r| r.intersection(&rect).is_some()) {
            rect = rect.union(&rects.swap_remove(i));
        }
        rects.push(rect);
    }
    rects
}

/// Draws faces into [`Target`]s. Holds a scratch buffer for the rectangle being drawn, so
/// painting allocates only when a rectangle is larger than any before.
#[derive(Debug, Default)]
pub struct Painter {
    scratch: Vec<u8>,
}

/// A tiny-skia colour that, stored by tiny-skia as bytes R, G, B, A, comes out as the buffer's
/// B, G, R, A: red and blue swapped. Blending treats the channels alike, so this is exact.
fn bgra(rgb: [u8; 3]) -> Color {
    Color::from_rgba8(rgb[2], rgb[1], rgb[0], 255)
}

fn solid(rgb: [u8; 3], anti_alias: bool) -> Paint<'static> {
    let mut paint = Paint {
        anti_alias,
        ..Paint::default()
    };
    paint.set_color(bgra(rgb));
    paint
}

/// An embedded-graphics target over the scratch pixmap, in buffer coordinates.
struct TextCanvas<'p, 'd> {
    pixmap: &'p mut PixmapMut<'d>,
    origin: Rect,
}

impl Dimensions for TextCanvas<'_, '_> {
    fn bounding_box(&self) -> Rectangle {
        Rectangle::new(
            EgPoint::new(self.origin.x, self.origin.y),
            Size::new(self.origin.width as u32, self.origin.height as u32),
        )
    }
}

impl DrawTarget for TextCanvas<'_, '_> {
    type Color = BinaryColor;
    type Error = std::convert::Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = embedded_graphics::Pixel<BinaryColor>>,
    {
        let [r, g, b] = TEXT_COLOR;
        let width = self.pixmap.width() as usize;
        let data = self.pixmap.data_mut();
        for embedded_graphics::Pixel(p, color) in pixels {
            let (x, y) = (p.x - self.origin.x, p.y - self.origin.y);
            if color.is_on()
                && (0..self.origin.width).contains(&x)
                && (0..self.origin.height).contains(&y)
            {
                let i = (y as usize * width + x as usize) * 4;
                data[i..i + 4].copy_from_slice(&[b, g, r, 255]);
            }
        }
        Ok(())
    }
}

impl Painter {
    /// A painter with no scratch memory yet.
    pub fn new() -> Painter {
        Painter::default()
    }

    /// Makes each of `rects` (clipped to the buffer) show exactly what of `faces` falls in it,
    /// transparent elsewhere. Pixels outside `rects` are not touched.
    pub fn paint(&mut self, target: &mut Target<'_>, faces: &[Face], rects: &[Rect]) {
        let layouts: Vec<Layout> = faces.iter().map(|f| Layout::new(f, target.width)).collect();
        let bounds = target.bounds();
        for rect in rects.iter().filter_map(|r| r.intersection(&bounds)) {
            let len = rect.width as usize * rect.height as usize * 4;
            if self.scratch.len() < len {
                self.scratch.resize(len, 0);
            }
            let pixels = &mut self.scratch[..len];
            pixels.fill(0);
            // A non-empty rectangle inside an i32-sized buffer always makes a pixmap.
            if let Some(mut pixmap) =
                PixmapMut::from_bytes(pixels, rect.width as u32, rect.height as u32)
            {
                for layout in layouts
                    .iter()
                    .filter(|l| l.extent().intersection(&rect).is_some())
                {
                    draw(&mut pixmap, &rect, layout);
                }
            }
            target.copy_in(&rect, &self.scratch[..len]);
        }
    }

    /// Repaints `target` from showing `old` to showing `new` and returns the rectangles that
    /// changed, for the surface's damage: [`damage`] then [`paint`](Painter::paint).
    pub fn update(&mut self, target: &mut Target<'_>, old: &[Face], new: &[Face]) -> Vec<Rect> {
        let rects = damage(old, new, target.width, target.height);
        self.paint(target, new, &rects);
        rects
    }
}

/// Draws one face's marks into `pixmap`, which holds the buffer's rectangle `origin`.
fn draw(pixmap: &mut PixmapMut<'_>, origin: &Rect, layout: &Layout) {
    let shift = Transform::from_translate(-origin.x as f32, -origin.y as f32);
    let fill = |pixmap: &mut PixmapMut<'_>, r: Rect, paint: &Paint<'_>| {
        if let Some(r) =
            tiny_skia::Rect::from_xywh(r.x as f32, r.y as f32, r.width as f32, r.height as f32)
        {
            pixmap.fill_rect(r, paint, shift, None);
        }
    };

    // The outline: four bars, pixel-aligned, so no anti-aliasing.
    let boxed = solid(BOX_COLOR, false);
    let o = layout.outline;
    fill(
        pixmap,
        Rect {
            height: STROKE,
            ..o
        },
        &boxed,
    );
    fill(
        pixmap,
        Rect {
            y: o.bottom() - STROKE,
            height: STROKE,
            ..o
        },
        &boxed,
    );
    fill(pixmap, Rect { width: STROKE, ..o }, &boxed);
    fill(
        pixmap,
        Rect {
            x: o.right() - STROKE,
            width: STROKE,
            ..o
        },
        &boxed,
    );

    // Keypoints: anti-aliased dots centred in their pixels.
    let dot = solid(KEYPOINT_COLOR, true);
    for &(x, y) in &layout.dots {
        if let Some(path) = PathBuilder::from_circle(x as f32 + 0.5, y as f32 + 0.5, DOT_RADIUS) {
            pixmap.fill_path(&path, &dot, FillRule::Winding, shift, None);
        }
    }

    // The label: box, then text.
    fill(pixmap, layout.label, &boxed);
    let text = layout.text();
    // The label is ASCII digits and a dot.
    let text = std::str::from_utf8(&text).unwrap_or("?");
    let position = EgPoint::new(layout.label.x + LABEL_PAD, layout.label.y + LABEL_PAD);
    let style = MonoTextStyle::new(FONT, BinaryColor::On);
    let mut canvas = TextCanvas {
        pixmap,
        origin: *origin,
    };
    let Ok(_) = Text::with_baseline(text, position, style, Baseline::Top).draw(&mut canvas);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::{BBox, Point};

    fn face(x0: f32, y0: f32, x1: f32, y1: f32, score: f32) -> Face {
        let cx = (x0 + x1) / 2.0;
        let cy = (y0 + y1) / 2.0;
        Face {
            bbox: BBox { x0, y0, x1, y1 },
            score,
            keypoints: [
                Point {
                    x: cx - 10.0,
                    y: cy - 10.0,
                },
                Point {
                    x: cx + 10.0,
                    y: cy - 10.0,
                },
                Point { x: cx, y: cy },
                Point {
                    x: cx,
                    y: cy + 12.0,
                },
                Point { x: x0 + 2.0, y: cy },
                Point { x: x1 - 2.0, y: cy },
            ],
        }
    }

    #[test]
    fn label_text() {
        let text = |score| Layout::new(&face(0.0, 0.0, 1.0, 1.0, score), 100).text();
        assert_eq!(&text(0.92), b"0.92");
        assert_eq!(&text(0.916), b"0.92");
        assert_eq!(&text(1.0), b"1.00");
        assert_eq!(&text(0.05), b"0.05");
        assert_eq!(&text(f32::NAN), b"0.00");
        assert_eq!(&text(7.0), b"1.00");
    }

    #[test]
    fn extent_covers_outline_label_and_dots() {
        // Box 100..180 x 60..140: outline 97..183 x 57..143; label 40x19 above: 97..137 x 38..57.
        let f = face(100.0, 60.0, 180.0, 140.0, 0.9);
        assert_eq!(
            extent(&f, 320, 240),
            Some(Rect::from_edges(97, 38, 183, 143))
        );
        // Clipped to the buffer; all outside is None.
        assert_eq!(
            extent(&f, 150, 100),
            Some(Rect::from_edges(97, 38, 150, 100))
        );
        let off = face(400.0, 400.0, 450.0, 450.0, 0.9);
        assert_eq!(extent(&off, 320, 240), None);
    }

    #[test]
    fn damage_is_only_what_changed() {
        let a = face(100.0, 60.0, 180.0, 140.0, 0.9);
        let b = face(10.0, 150.0, 60.0, 200.0, 0.8);
        // Unchanged (even by sub-pixel jitter): nothing.
        let jitter = Face {
            bbox: BBox {
                x0: 100.2,
                ..a.bbox
            },
            ..a
        };
        assert!(damage(&[a, b], &[jitter, b], 320, 240).is_empty());
        // One face gone: its extent only.
        assert_eq!(
            damage(&[a, b], &[a], 320, 240),
            vec![extent(&b, 320, 240).unwrap()]
        );
        // Moved a little: old and new extents overlap and merge into one.
        let moved = face(110.0, 60.0, 190.0, 140.0, 0.9);
        assert_eq!(
            damage(&[a], &[moved], 320, 240),
            vec![
                extent(&a, 320, 240)
                    .unwrap()
                    .union(&extent(&moved, 320, 240).unwrap())
            ]
        );
        // New score: same pixels except the label, but the face's extent is damaged.
        let rescored = Face { score: 0.95, ..a };
        assert_eq!(
            damage(&[a], &[rescored], 320, 240),
            vec![extent(&a, 320, 240).unwrap()]
        );
        // Far apart: two rectangles.
        assert_eq!(damage(&[], &[a, b], 320, 240).len(), 2);
    }

    #[test]
    fn merging_chains_through_rectangles() {
        let a = Rect::from_edges(0, 0, 10, 10);
        let b = Rect::from_edges(20, 0, 30, 10);
        let far = Rect::from_edges(50, 50, 60, 60);
        // Disjoint rectangles stay apart.
        assert_eq!(merge([a, b, far]), vec![a, b, far]);
        // c overlaps a; their union then overlaps b: all three become one.
        let c = Rect::from_edges(5, 0, 25, 5);
        let merged = merge([a, b, far, c]);
        assert_eq!(merged.len(), 2);
        assert!(merged.contains(&far) && merged.contains(&Rect::from_edges(0, 0, 30, 10)));
        // Touching edges do not overlap.
        assert_eq!(merge([a, Rect::from_edges(10, 0, 20, 10)]).len(), 2);
    }

    #[test]
    fn bad_buffers_are_errors() {
        let mut data = vec![0u8; 100];
        assert_eq!(
            Target::new(&mut data, 16, 0, 2).map(|_| ()),
            Err(OverlayError::BadSize {
                width: 0,
                height: 2
            })
        );
        assert_eq!(
            Target::new(&mut data, 15, 4, 2).map(|_| ()),
            Err(OverlayError::StrideTooSmall {
                stride: 15,
                row_bytes: 16
            })
        );
        assert_eq!(
            Target::new(&mut data, 20, 4, 6).map(|_| ()),
            Err(OverlayError::BufferTooShort {
                len: 100,
                needed: 116
            })
        );
        assert_eq!(
            Target::new(&mut data, usize::MAX, 4, 6).map(|_| ()),
            Err(OverlayError::BufferTooShort {
                len: 100,
                needed: usize::MAX
            })
        );
        assert!(Target::new(&mut data, 20, 4, 5).is_ok());
    }

    #[test]
    fn hostile_faces_do_not_panic() {
        let mut data = vec![0u8; 64 * 48 * 4];
        let mut target = Target::new(&mut data, 64 * 4, 64, 48).expect("valid");
        let weird = [
            face(f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, f32::NAN),
            face(-1e9, -1e9, 1e9, 1e9, -3.0),
            face(50.0, 40.0, 10.0, 5.0, 0.7), // corners swapped
        ];
        let mut painter = Painter::new();
        let rects = painter.update(&mut target, &[], &weird);
        assert!(
            rects
                .iter()
                .all(|r| r.intersection(&target.bounds()) == Some(*r))
        );
    }
}
