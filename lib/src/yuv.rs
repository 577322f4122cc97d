//! YUV on the CPU: what each camera-native format stores where, the colour matrices (BT.601,
//! BT.709, BT.2020; limited and full range), and a row converter to XRGB8888.
//!
//! A compositor needs it for the YUV buffers no plane takes (and that pixman cannot sample);
//! a client needs the forward direction to make known pixels, and a detector to read a camera
//! frame without asking for RGB. The same [`Colour`] drives both directions and the KMS planes'
//! `COLOR_ENCODING`/`COLOR_RANGE` ([`Colour::plane_properties`]), so a buffer looks the same on
//! a plane and composited.
//!
//! ## How to use
//!
//! ```
//! use wayheap::layout::Fourcc;
//! use wayheap::yuv::{Colour, PlaneView, YuvFormat, YuvImage};
//!
//! // A 2x2 NV12 image of one colour, made with the forward matrix.
//! let colour = Colour::default(); // BT.601, limited range
//! let (y, cb, cr) = colour.from_rgb([200, 40, 90]);
//! let luma = [y; 4];
//! let chroma = [cb, cr];
//! let image = YuvImage::new(
//!     YuvFormat::of(Fourcc::NV12).unwrap(),
//!     2,
//!     2,
//!     &[PlaneView::new(&luma, 2), PlaneView::new(&chroma, 2)],
//! )
//! .unwrap();
//! let mut out = [0u32; 4];
//! image.convert_rows(colour, 0..2, &mut out, 2);
//! let [_, r, g, b] = out[3].to_be_bytes();
//! assert!(r.abs_diff(200) <= 2 && g.abs_diff(40) <= 2 && b.abs_diff(90) <= 2);
//! ```

use std::ops::Range;

use crate::layout::Fourcc;

/// Where a YUV format keeps its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// A Y plane, then one plane of interleaved chroma pairs (CbCr when `cb_first`, else CrCb).
    SemiPlanar {
        /// CbCr (NV12) rather than CrCb (NV21).
        cb_first: bool,
    },
    /// Y, then two chroma planes (Cb then Cr when `cb_first`).
    Planar {
        /// Cb plane before the Cr plane (YU12) rather than after (YV12).
        cb_first: bool,
    },
    /// One plane of 4-byte groups, two pixels each: the byte offsets of Y0, Cb, Y1 and Cr.
    Packed {
        /// Byte of the first pixel's luma.
        y0: u8,
        /// Byte of Cb.
        cb: u8,
        /// Byte of the second pixel's luma.
        y1: u8,
        /// Byte of Cr.
        cr: u8,
    },
}

/// A YUV format: its packing, chroma subsampling and sample size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YuvFormat {
    /// The DRM fourcc.
    pub fourcc: Fourcc,
    /// Where the samples are.
    pub packing: Packing,
    /// Horizontal chroma subsampling (2: half width).
    pub hsub: u32,
    /// Vertical chroma subsampling (2: half height).
    pub vsub: u32,
    /// Bytes per sample: 1, or 2 for the P01x formats (little-endian, MSB-aligned).
    pub sample_bytes: u32,
}

impl YuvFormat {
    /// Every YUV format the converter reads.
    pub const ALL: &'static [Fourcc] = &[
        Fourcc::NV12,
        Fourcc::NV21,
        Fourcc::NV16,
        Fourcc::NV61,
        Fourcc::NV24,
        Fourcc::NV42,
        Fourcc::P010,
        Fourcc::P012,
        Fourcc::P016,
        Fourcc::YUV420,
        Fourcc::YVU420,
        Fourcc::YUV422,
        Fourcc::YVU422,
        Fourcc::YUV444,
        Fourcc::YVU444,
        Fourcc::YUYV,
        Fourcc::YVYU,
        Fourcc::UYVY,
        Fourcc::VYUY,
    ];

    /// The description of `fourcc`, if it is a YUV format the converter reads.
    pub fn of(fourcc: Fourcc) -> Option<YuvFormat> {
        use Packing::*;
        let semi = |cb_first, hsub, vsub, sample_bytes| {
            (SemiPlanar { cb_first }, hsub, vsub, sample_bytes)
        };
        let planar = |cb_first, hsub, vsub| (Planar { cb_first }, hsub, vsub, 1);
        let packed = |y0, cb, y1, cr| (Packed { y0, cb, y1, cr }, 2, 1, 1);
        let (packing, hsub, vsub, sample_bytes) = match fourcc {
            Fourcc::NV12 => semi(true, 2, 2, 1),
            Fourcc::NV21 => semi(false, 2, 2, 1),
            Fourcc::NV16 => semi(true, 2, 1, 1),
            Fourcc::NV61 => semi(false, 2, 1, 1),
            Fourcc::NV24 => semi(true, 1, 1, 1),
            Fourcc::NV42 => semi(false, 1, 1, 1),
            Fourcc::P010 | Fourcc::P012 | Fourcc::P016 => semi(true, 2, 2, 2),
            Fourcc::YUV420 => planar(true, 2, 2),
            Fourcc::YVU420 => planar(false, 2, 2),
            Fourcc::YUV422 => planar(true, 2, 1),
            Fourcc::YVU422 => planar(false, 2, 1),
            Fourcc::YUV444 => planar(true, 1, 1),
            Fourcc::YVU444 => planar(false, 1, 1),
            Fourcc::YUYV => packed(0, 1, 2, 3),
            Fourcc::YVYU => packed(0, 3, 2, 1),
            Fourcc::UYVY => packed(1, 0, 3, 2),
            Fourcc::VYUY => packed(1, 2, 3, 0),
            _ => return None,
        };
        Some(YuvFormat {
            fourcc,
            packing,
            hsub,
            vsub,
            sample_bytes,
        })
    }

    /// How many planes a buffer of this format has.
    pub fn planes(&self) -> usize {
        match self.packing {
            Packing::SemiPlanar { .. } => 2,
            Packing::Planar { .. } => 3,
            Packing::Packed { .. } => 1,
        }
    }

    /// The bytes one row of plane `plane` needs at `width` pixels.
    pub fn row_bytes(&self, plane: usize, width: u32) -> usize {
        let chroma_w = width.div_ceil(self.hsub) as usize;
        let s = self.sample_bytes as usize;
        match (self.packing, plane) {
            (Packing::Packed { .. }, _) => chroma_w * 4,
            (_, 0) => width as usize * s,
            (Packing::SemiPlanar { .. }, _) => chroma_w * 2 * s,
            (Packing::Planar { .. }, _) => chroma_w * s,
        }
    }

    /// The rows plane `plane` has at `height` pixels.
    pub fn plane_rows(&self, plane: usize, height: u32) -> u32 {
        if plane == 0 {
            height
        } else {
            height.div_ceil(self.vsub)
        }
    }
}

/// The YCbCr matrix (`COLOR_ENCODING` of a KMS plane, `coefficients` of
/// `wp_color_representation_v1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Encoding {
    /// ITU-R BT.601 (SD video, most USB and SoC cameras).
    #[default]
    Bt601,
    /// ITU-R BT.709 (HD video).
    Bt709,
    /// ITU-R BT.2020 (UHD video, non-constant luminance).
    Bt2020,
}

impl Encoding {
    /// (Kr, Kb).
    fn weights(self) -> (f64, f64) {
        match self {
            Encoding::Bt601 => (0.299, 0.114),
            Encoding::Bt709 => (0.2126, 0.0722),
            Encoding::Bt2020 => (0.2627, 0.0593),
        }
    }

    /// The enum name of the KMS `COLOR_ENCODING` property value.
    pub fn kms_name(self) -> &'static str {
        match self {
            Encoding::Bt601 => "ITU-R BT.601 YCbCr",
            Encoding::Bt709 => "ITU-R BT.709 YCbCr",
            Encoding::Bt2020 => "ITU-R BT.2020 YCbCr",
        }
    }
}

/// The quantisation range (`COLOR_RANGE` of a KMS plane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum ColourRange {
    /// Y in 16..=235, chroma in 16..=240 (video levels: what cameras and decoders give).
    #[default]
    Limited,
    /// Every code value is used (JPEG levels).
    Full,
}

impl ColourRange {
    /// The enum name of the KMS `COLOR_RANGE` property value.
    pub fn kms_name(self) -> &'static str {
        match self {
            ColourRange::Limited => "YCbCr limited range",
            ColourRange::Full => "YCbCr full range",
        }
    }
}

/// How YCbCr maps to RGB: matrix and range. The default, BT.601 limited range, is what
/// V4L2 means for SD YUV without other colorimetry, and what Weston and wlroots assume for a
/// YUV buffer whose client said nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Colour {
    /// The matrix.
    pub encoding: Encoding,
    /// The range.
    pub range: ColourRange,
}

impl std::fmt::Display for Colour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let encoding = match self.encoding {
            Encoding::Bt601 => "BT.601",
            Encoding::Bt709 => "BT.709",
            Encoding::Bt2020 => "BT.2020",
        };
        let range = match self.range {
            ColourRange::Limited => "limited",
            ColourRange::Full => "full",
        };
        write!(f, "{encoding} {range} range")
    }
}

/// 16.16 fixed-point coefficients of one [`Colour`], for the converter's inner loop.
#[derive(Debug, Clone, Copy)]
struct Matrix {
    y_offset: i32,
    y_gain: i32,
    cr_r: i32,
    cb_g: i32,
    cr_g: i32,
    cb_b: i32,
}

const ONE: f64 = 65536.0;

impl Colour {
    /// A colour of this matrix and range.
    pub fn new(encoding: Encoding, range: ColourRange) -> Self {
        Colour { encoding, range }
    }

    /// `(COLOR_ENCODING, COLOR_RANGE)` enum names, for the KMS plane properties.
    pub fn plane_properties(self) -> (&'static str, &'static str) {
        (self.encoding.kms_name(), self.range.kms_name())
    }

    /// (luma offset, luma scale, chroma scale) from 8-bit code values to 0..1 and -0.5..0.5.
    fn levels(self) -> (f64, f64, f64) {
        match self.range {
            ColourRange::Limited => (16.0, 219.0, 224.0),
            ColourRange::Full => (0.0, 255.0, 255.0),
        }
    }

    fn matrix(self) -> Matrix {
        let (kr, kb) = self.encoding.weights();
        let kg = 1.0 - kr - kb;
        let (y_offset, y_scale, c_scale) = self.levels();
        let c = 255.0 / c_scale;
        Matrix {
            y_offset: y_offset as i32,
            y_gain: (255.0 / y_scale * ONE).round() as i32,
            cr_r: (2.0 * (1.0 - kr) * c * ONE).round() as i32,
            cb_g: (2.0 * kb * (1.0 - kb) / kg * c * ONE).round() as i32,
            cr_g: (2.0 * kr * (1.0 - kr) / kg * c * ONE).round() as i32,
            cb_b: (2.0 * (1.0 - kb) * c * ONE).round() as i32,
        }
    }

    /// The 8-bit `(Y, Cb, Cr)` of an RGB colour (the forward matrix, rounded).
    pub fn from_rgb(self, [r, g, b]: [u8; 3]) -> (u8, u8, u8) {
        let (kr, kb) = self.encoding.weights();
        let kg = 1.0 - kr - kb;
        let (r, g, b) = (
            f64::from(r) / 255.0,
            f64::from(g) / 255.0,
            f64::from(b) / 255.0,
        );
        let y = kr * r + kg * g + kb * b;
        let cb = (b - y) / (2.0 * (1.0 - kb));
        let cr = (r - y) / (2.0 * (1.0 - kr));
        let (y_offset, y_scale, c_scale) = self.levels();
        let q = |v: f64| v.round().clamp(0.0, 255.0) as u8;
        (
            q(y_offset + y_scale * y),
            q(128.0 + c_scale * cb),
            q(128.0 + c_scale * cr),
        )
    }

    /// The RGB of 8-bit `(Y, Cb, Cr)` in floating point: the reference the converter is
    /// tested against.
    pub fn to_rgb_reference(self, y: u8, cb: u8, cr: u8) -> [u8; 3] {
        let (kr, kb) = self.encoding.weights();
        let kg = 1.0 - kr - kb;
        let (y_offset, y_scale, c_scale) = self.levels();
        let y = (f64::from(y) - y_offset) / y_scale;
        let cb = (f64::from(cb) - 128.0) / c_scale;
        let cr = (f64::from(cr) - 128.0) / c_scale;
        let r = y + 2.0 * (1.0 - kr) * cr;
        let b = y + 2.0 * (1.0 - kb) * cb;
        let g = (y - kr * r - kb * b) / kg;
        let q = |v: f64| (v * 255.0).round().clamp(0.0, 255.0) as u8;
        [q(r), q(g), q(b)]
    }
}

impl Matrix {
    #[inline(always)]
    fn xrgb(&self, y: i32, cb: i32, cr: i32) -> u32 {
        let y = (y - self.y_offset) * self.y_gain + (1 << 15);
        let (cb, cr) = (cb - 128, cr - 128);
        let clamp = |v: i32| (v >> 16).clamp(0, 255) as u32;
        let r = clamp(y + self.cr_r * cr);
        let g = clamp(y - self.cb_g * cb - self.cr_g * cr);
        let b = clamp(y + self.cb_b * cb);
        0xff00_0000 | (r << 16) | (g << 8) | b
    }
}

/// One plane's bytes, from the plane's offset, and its stride.
#[derive(Debug, Clone, Copy)]
pub struct PlaneView<'a> {
    bytes: &'a [u8],
    stride: usize,
}

impl<'a> PlaneView<'a> {
    /// The plane at the start of `bytes`, `stride` bytes per row.
    pub fn new(bytes: &'a [u8], stride: usize) -> Self {
        PlaneView { bytes, stride }
    }

    /// Row `row`, `len` bytes long; `None` past the end.
    fn row(&self, row: u32, len: usize) -> Option<&'a [u8]> {
        let start = (row as usize).checked_mul(self.stride)?;
        self.bytes.get(start..start.checked_add(len)?)
    }
}

/// Why a YUV image cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YuvError {
    /// Wrong number of planes for the format.
    #[error("{format} has {expected} planes, {got} given")]
    Planes {
        /// The format.
        format: Fourcc,
        /// Planes it has.
        expected: usize,
        /// Planes given.
        got: usize,
    },
    /// A plane's rows do not fit its bytes.
    #[error(
        "{format} plane {plane}: {rows} rows of {row_bytes} bytes at stride {stride} do not fit its {len} bytes"
    )]
    Short {
        /// The format.
        format: Fourcc,
        /// The plane.
        plane: usize,
        /// Rows needed.
        rows: u32,
        /// Bytes per row needed.
        row_bytes: usize,
        /// The stride given.
        stride: usize,
        /// The bytes given.
        len: usize,
    },
}

/// A YUV image in memory, every plane checked to hold its rows.
#[derive(Debug, Clone)]
pub struct YuvImage<'a> {
    format: YuvFormat,
    width: u32,
    height: u32,
    planes: [PlaneView<'a>; 3],
}

impl<'a> YuvImage<'a> {
    /// An image of `format` at `width`x`height` over `planes` (in the format's order, each from
    /// its offset). Fails when a plane is missing or too short for its rows.
    pub fn new(
        format: YuvFormat,
        width: u32,
        height: u32,
        planes: &[PlaneView<'a>],
    ) -> Result<Self, YuvError> {
        if planes.len() != format.planes() {
            return Err(YuvError::Planes {
                format: format.fourcc,
                expected: format.planes(),
                got: planes.len(),
            });
        }
        for (i, p) in planes.iter().enumerate() {
            let rows = format.plane_rows(i, height);
            let row_bytes = format.row_bytes(i, width);
            let last = rows
                .checked_sub(1)
                .map_or(Some(()), |r| p.row(r, row_bytes).map(|_| ()));
            if last.is_none() || p.stride < row_bytes {
                return Err(YuvError::Short {
                    format: format.fourcc,
                    plane: i,
                    rows,
                    row_bytes,
                    stride: p.stride,
                    len: p.bytes.len(),
                });
            }
        }
        let empty = PlaneView::new(&[], 0);
        let mut views = [empty; 3];
        views[..planes.len()].copy_from_slice(planes);
        Ok(YuvImage {
            format,
            width,
            height,
            planes: views,
        })
    }

    /// The format.
    pub fn format(&self) -> YuvFormat {
        self.format
    }

    /// Converts rows `rows` (clipped to the image) to XRGB8888 words (`0xffRRGGBB`, as DRM's
    /// XR24 and pixman's x8r8g8b8 on a little-endian machine) in `out`, row `y` at
    /// `y * out_stride`. Rows that do not fit `out` are left alone.
    pub fn convert_rows(
        &self,
        colour: Colour,
        rows: Range<u32>,
        out: &mut [u32],
        out_stride: usize,
    ) {
        let m = colour.matrix();
        let w = self.width as usize;
        let f = self.format;
        for y in rows.start..rows.end.min(self.height) {
            let Some(dst) = out
                .get_mut(y as usize * out_stride..)
                .and_then(|o| o.get_mut(..w))
            else {
                return;
            };
            let cy = y / f.vsub;
            // Every row below exists: `new` checked the last row of each plane.
            let row =
                |plane: usize, r: u32| self.planes[plane].row(r, f.row_bytes(plane, self.width));
            match f.packing {
                Packing::Packed { y0, cb, y1, cr } => {
                    let Some(src) = row(0, y) else { return };
                    let (y0, cb, y1, cr) = (y0 as usize, cb as usize, y1 as usize, cr as usize);
                    for (pair, group) in dst.chunks_mut(2).zip(src.chunks_exact(4)) {
                        let (u, v) = (i32::from(group[cb]), i32::from(group[cr]));
                        pair[0] = m.xrgb(i32::from(group[y0]), u, v);
                        if let Some(second) = pair.get_mut(1) {
                            *second = m.xrgb(i32::from(group[y1]), u, v);
                        }
                    }
                }
                Packing::SemiPlanar { cb_first } => {
                    let (Some(luma), Some(chroma)) = (row(0, y), row(1, cy)) else {
                        return;
                    };
                    let (ui, vi) = if cb_first { (0, 1) } else { (1, 0) };
                    if f.sample_bytes == 2 {
                        let s = |b: &[u8], i: usize| i32::from(b[2 * i + 1]);
                        for (x, px) in dst.iter_mut().enumerate() {
                            let c = 2 * (x / f.hsub as usize);
                            *px = m.xrgb(s(luma, x), s(chroma, c + ui), s(chroma, c + vi));
                        }
                    } else {
                        for (x, px) in dst.iter_mut().enumerate() {
                            let c = 2 * (x / f.hsub as usize);
                            *px = m.xrgb(
                                i32::from(luma[x]),
                                i32::from(chroma[c + ui]),
                                i32::from(chroma[c + vi]),
                            );
                        }
                    }
                }
                Packing::Planar { cb_first } => {
                    let (ui, vi) = if cb_first { (1, 2) } else { (2, 1) };
                    let (Some(luma), Some(u), Some(v)) = (row(0, y), row(ui, cy), row(vi, cy))
                    else {
                        return;
                    };
                    for (x, px) in dst.iter_mut().enumerate() {
                        let c = x / f.hsub as usize;
                        *px = m.xrgb(i32::from(luma[x]), i32::from(u[c]), i32::from(v[c]));
                    }
                }
            }
        }
    }
}

/// Writes `rgb(x, y)` (`0xXXRRGGBB`) as YUV of `layout.format` into `bytes` (one buffer holding
/// every plane at the layout's offsets) with `colour`'s forward matrix; chroma from the top-left
/// pixel of each block, 16-bit formats MSB-aligned. For a producer that draws in RGB and shows
/// YUV (a picture source, a test pattern). Fails when the format is not YUV or a plane does not
/// fit `bytes`.
pub fn write_rgb(
    bytes: &mut [u8],
    layout: &crate::layout::Layout,
    colour: Colour,
    rgb: impl Fn(u32, u32) -> u32,
) -> Result<(), YuvError> {
    let f = YuvFormat::of(layout.format).ok_or(YuvError::Planes {
        format: layout.format,
        expected: 0,
        got: layout.planes.len(),
    })?;
    if layout.planes.len() != f.planes() {
        return Err(YuvError::Planes {
            format: layout.format,
            expected: f.planes(),
            got: layout.planes.len(),
        });
    }
    for (i, p) in layout.planes.iter().enumerate() {
        let rows = f.plane_rows(i, layout.height);
        let row_bytes = f.row_bytes(i, layout.width);
        let end = (p.offset as usize)
            .checked_add((rows as usize).saturating_sub(1) * p.stride as usize + row_bytes);
        if end.is_none_or(|e| e > bytes.len()) || (p.stride as usize) < row_bytes {
            return Err(YuvError::Short {
                format: layout.format,
                plane: i,
                rows,
                row_bytes,
                stride: p.stride as usize,
                len: bytes.len(),
            });
        }
    }
    let s = f.sample_bytes as usize;
    let yuv = |x: u32, y: u32| {
        let c = rgb(x, y);
        colour.from_rgb([(c >> 16) as u8, (c >> 8) as u8, c as u8])
    };
    let mut put = |plane: usize, row: u32, index: usize, v: u8| {
        let p = &layout.planes[plane];
        let at = p.offset as usize + row as usize * p.stride as usize + index * s;
        if s == 2 {
            bytes[at] = 0;
            bytes[at + 1] = v;
        } else {
            bytes[at] = v;
        }
    };
    for y in 0..layout.height {
        for x in 0..layout.width {
            let (ly, cb, cr) = yuv(x, y);
            match f.packing {
                Packing::Packed {
                    y0,
                    cb: bi,
                    y1,
                    cr: ri,
                } => {
                    let group = (x / 2) as usize * 4;
                    put(0, y, group + if x % 2 == 0 { y0 } else { y1 } as usize, ly);
                    if x % 2 == 0 {
                        put(0, y, group + bi as usize, cb);
                        put(0, y, group + ri as usize, cr);
                    }
                }
                _ => put(0, y, x as usize, ly),
            }
        }
    }
    for cy in 0..layout.height.div_ceil(f.vsub) {
        for cx in 0..layout.width.div_ceil(f.hsub) {
            let (_, cb, cr) = yuv(cx * f.hsub, cy * f.vsub);
            match f.packing {
                Packing::SemiPlanar { cb_first } => {
                    let (a, b) = if cb_first { (cb, cr) } else { (cr, cb) };
                    put(1, cy, 2 * cx as usize, a);
                    put(1, cy, 2 * cx as usize + 1, b);
                }
                Packing::Planar { cb_first } => {
                    let (u, v) = if cb_first { (1, 2) } else { (2, 1) };
                    put(u, cy, cx as usize, cb);
                    put(v, cy, cx as usize, cr);
                }
                Packing::Packed { .. } => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb(px: u32) -> [u8; 3] {
        let [_, r, g, b] = px.to_be_bytes();
        [r, g, b]
    }

    fn close(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
        a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
    }

    #[test]
    fn the_fixed_point_matrix_stays_within_one_of_the_float_reference() {
        for colour in [
            Colour::new(Encoding::Bt601, ColourRange::Limited),
            Colour::new(Encoding::Bt601, ColourRange::Full),
            Colour::new(Encoding::Bt709, ColourRange::Limited),
            Colour::new(Encoding::Bt709, ColourRange::Full),
            Colour::new(Encoding::Bt2020, ColourRange::Limited),
            Colour::new(Encoding::Bt2020, ColourRange::Full),
        ] {
            let m = colour.matrix();
            for y in (0..=255u8).step_by(5) {
                for cb in (0..=255u8).step_by(15) {
                    for cr in (0..=255u8).step_by(15) {
                        let fixed = rgb(m.xrgb(y.into(), cb.into(), cr.into()));
                        let float = colour.to_rgb_reference(y, cb, cr);
                        assert!(
                            close(fixed, float, 1),
                            "{colour:?} {y} {cb} {cr}: {fixed:?} {float:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn forward_then_back_returns_the_colour() {
        for colour in [
            Colour::default(),
            Colour::new(Encoding::Bt709, ColourRange::Full),
        ] {
            for c in [
                [255, 0, 0],
                [0, 255, 0],
                [0, 0, 255],
                [255, 255, 255],
                [16, 16, 16],
                [200, 40, 90],
            ] {
                let (y, cb, cr) = colour.from_rgb(c);
                // Limited range quantises more coarsely: a code step is 255/219 of an RGB step.
                assert!(
                    close(colour.to_rgb_reference(y, cb, cr), c, 2),
                    "{colour:?} {c:?}"
                );
            }
        }
        // The same RGB gives different codes in different matrices: the choice matters.
        assert_ne!(
            Colour::default().from_rgb([200, 40, 90]),
            Colour::new(Encoding::Bt709, ColourRange::Full).from_rgb([200, 40, 90])
        );
    }

    /// A 4x4 image of four 2x2 colour blocks in `fourcc`, planes at odd strides one after the
    /// other in one buffer, written by [`write_rgb`].
    fn blocks(fourcc: Fourcc, colour: Colour) -> (Vec<Vec<u8>>, Vec<usize>, [[u8; 3]; 4]) {
        let colours = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [240, 200, 30]];
        let f = YuvFormat::of(fourcc).unwrap();
        let pad = if f.sample_bytes == 2 { 4 } else { 3 };
        let strides: Vec<usize> = (0..f.planes()).map(|p| f.row_bytes(p, 4) + pad).collect();
        let mut offset = 0;
        let planes = (0..f.planes())
            .map(|p| {
                let plane = crate::layout::PlaneLayout {
                    buffer: 0,
                    offset,
                    stride: strides[p] as u32,
                    height: f.plane_rows(p, 4),
                };
                offset += plane.stride * plane.height;
                plane
            })
            .collect();
        let layout = crate::layout::Layout {
            format: fourcc,
            width: 4,
            height: 4,
            planes,
            buffer_sizes: vec![u64::from(offset)],
        };
        let mut bytes = vec![0u8; offset as usize];
        let argb = |x: u32, y: u32| {
            let [r, g, b] = colours[((y / 2) * 2 + x / 2) as usize];
            u32::from_be_bytes([0xff, r, g, b])
        };
        write_rgb(&mut bytes, &layout, colour, argb).unwrap();
        let planes = layout
            .planes
            .iter()
            .map(|p| bytes[p.offset as usize..(p.offset + p.stride * p.height) as usize].to_vec())
            .collect();
        (planes, strides, colours)
    }

    #[test]
    fn every_format_converts_its_blocks_to_the_reference() {
        for &fourcc in YuvFormat::ALL {
            for colour in [
                Colour::default(),
                Colour::new(Encoding::Bt709, ColourRange::Full),
            ] {
                let (planes, strides, colours) = blocks(fourcc, colour);
                let views: Vec<PlaneView<'_>> = planes
                    .iter()
                    .zip(&strides)
                    .map(|(p, s)| PlaneView::new(p, *s))
                    .collect();
                let image = YuvImage::new(YuvFormat::of(fourcc).unwrap(), 4, 4, &views).unwrap();
                let mut out = vec![0u32; 4 * 5];
                image.convert_rows(colour, 0..4, &mut out, 5);
                for y in 0..4 {
                    for x in 0..4 {
                        let want = colours[(y / 2) * 2 + x / 2];
                        let (ly, cb, cr) = colour.from_rgb(want);
                        let reference = colour.to_rgb_reference(ly, cb, cr);
                        let got = rgb(out[y * 5 + x]);
                        assert!(
                            close(got, reference, 1),
                            "{fourcc} {colour:?} ({x},{y}): {got:?} vs {reference:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn short_or_missing_planes_are_refused_and_rows_outside_are_ignored() {
        let nv12 = YuvFormat::of(Fourcc::NV12).unwrap();
        let luma = [0u8; 16];
        let chroma = [0u8; 7]; // 4x4 NV12 needs 2 rows of 4 bytes
        assert!(matches!(
            YuvImage::new(nv12, 4, 4, &[PlaneView::new(&luma, 4)]),
            Err(YuvError::Planes {
                expected: 2,
                got: 1,
                ..
            })
        ));
        assert!(matches!(
            YuvImage::new(
                nv12,
                4,
                4,
                &[PlaneView::new(&luma, 4), PlaneView::new(&chroma, 4)]
            ),
            Err(YuvError::Short { plane: 1, .. })
        ));
        assert!(matches!(
            YuvImage::new(
                nv12,
                4,
                4,
                &[PlaneView::new(&luma, 4), PlaneView::new(&[0u8; 8], 2)]
            ),
            Err(YuvError::Short { plane: 1, .. })
        ));
        let chroma = [128u8; 8];
        let image = YuvImage::new(
            nv12,
            4,
            4,
            &[PlaneView::new(&luma, 4), PlaneView::new(&chroma, 4)],
        )
        .unwrap();
        // An output too small, and rows past the end: no panic, nothing written out of place.
        let mut out = vec![7u32; 6];
        image.convert_rows(Colour::default(), 0..100, &mut out, 4);
        assert!(out[..4].iter().all(|&p| p != 7));
        assert_eq!(&out[4..], &[7, 7]);
    }

    #[test]
    fn written_rgb_reads_back_through_the_converter_for_every_format() {
        use crate::layout::{Layout, LayoutOptions};
        let grid = |x: u32, y: u32| {
            [0xff0000u32, 0x00ff00, 0x0000ff, 0xf0a030][((y / 4) * 2 + x / 4).min(3) as usize]
        };
        for &fourcc in YuvFormat::ALL {
            let layout = Layout::new(fourcc, 8, 8, LayoutOptions::default()).unwrap();
            let mut bytes = vec![0u8; layout.total_size() as usize];
            let colour = Colour::new(Encoding::Bt709, ColourRange::Limited);
            write_rgb(&mut bytes, &layout, colour, grid).unwrap();
            let views: Vec<PlaneView<'_>> = layout
                .planes
                .iter()
                .map(|p| PlaneView::new(&bytes[p.offset as usize..], p.stride as usize))
                .collect();
            let image = YuvImage::new(YuvFormat::of(fourcc).unwrap(), 8, 8, &views).unwrap();
            let mut out = vec![0u32; 64];
            image.convert_rows(colour, 0..8, &mut out, 8);
            for y in 0..8 {
                for x in 0..8 {
                    let want = grid(x, y);
                    let want = [(want >> 16) as u8, (want >> 8) as u8, want as u8];
                    assert!(
                        close(rgb(out[(y * 8 + x) as usize]), want, 3),
                        "{fourcc} ({x},{y})"
                    );
                }
            }
        }
        // Too small a buffer is an error, not a panic.
        let layout = Layout::new(Fourcc::NV12, 8, 8, LayoutOptions::default()).unwrap();
        assert!(write_rgb(&mut [0u8; 10], &layout, Colour::default(), |_, _| 0).is_err());
    }

    #[test]
    fn every_yuv_format_has_a_layout_with_the_same_plane_count() {
        for &fourcc in YuvFormat::ALL {
            let f = YuvFormat::of(fourcc).unwrap();
            let planes = crate::layout::planes_of(fourcc).unwrap();
            assert_eq!(planes.len(), f.planes(), "{fourcc}");
            for (i, p) in planes.iter().enumerate() {
                assert_eq!(
                    f.row_bytes(i, 64),
                    (64u32.div_ceil(p.hsub) * p.bytes_per_pixel) as usize,
                    "{fourcc} plane {i}"
                );
            }
        }
    }
}
