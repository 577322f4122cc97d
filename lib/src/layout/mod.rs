//! Buffer layouts per DRM fourcc: strides, plane offsets and sizes, in one buffer or one per
//! plane, checked against the kernel's and linux-dmabuf's rules.
//!
//! Heap and udmabuf buffers are LINEAR: plane `i` is `height_i` rows of `stride_i` bytes from
//! `offset_i`. Display engines want strides aligned (64 to 256 bytes is common; 256 is the default
//! here, and what most scanout hardware accepts) and planes starting on aligned offsets.
//!
//! ## How to use
//!
//! ```
//! use wayheap::layout::{Fourcc, Layout, LayoutOptions};
//!
//! let nv12 = Layout::new(Fourcc::NV12, 1920, 1080, LayoutOptions::default()).unwrap();
//! assert_eq!(nv12.planes.len(), 2);
//! assert_eq!(nv12.planes[0].stride, 2048);           // 1920 rounded up to 256
//! assert_eq!(nv12.planes[1].offset, 2048 * 1080);    // UV plane after Y
//! assert_eq!(nv12.buffer_sizes, vec![2048 * 1080 * 3 / 2]);
//! ```

use std::fmt;

/// `DRM_FORMAT_MOD_LINEAR` (`<drm/drm_fourcc.h>`): rows one after the other, no tiling — the
/// only layout heap and udmabuf buffers have, and the one [`Layout`] describes.
pub const MODIFIER_LINEAR: u64 = 0;

/// `DRM_FORMAT_MOD_INVALID` (`<drm/drm_fourcc.h>`): no explicit modifier; the buffer has the
/// driver's implicit layout (what a linux-dmabuf client sends when it names none).
pub const MODIFIER_INVALID: u64 = 0x00ff_ffff_ffff_ffff;

/// A DRM fourcc code (`<drm/drm_fourcc.h>`), e.g. `XR24`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fourcc(pub u32);

const fn fourcc(code: &[u8; 4]) -> Fourcc {
    Fourcc(u32::from_le_bytes(*code))
}

impl Fourcc {
    /// `RG16`, 16-bit RGB 5:6:5.
    pub const RGB565: Fourcc = fourcc(b"RG16");
    /// `BG16`, 16-bit BGR 5:6:5.
    pub const BGR565: Fourcc = fourcc(b"BG16");
    /// `RG24`, 24-bit RGB.
    pub const RGB888: Fourcc = fourcc(b"RG24");
    /// `BG24`, 24-bit BGR.
    pub const BGR888: Fourcc = fourcc(b"BG24");
    /// `XR24`, 32-bit xRGB.
    pub const XRGB8888: Fourcc = fourcc(b"XR24");
    /// `AR24`, 32-bit ARGB.
    pub const ARGB8888: Fourcc = fourcc(b"AR24");
    /// `XB24`, 32-bit xBGR.
    pub const XBGR8888: Fourcc = fourcc(b"XB24");
    /// `AB24`, 32-bit ABGR.
    pub const ABGR8888: Fourcc = fourcc(b"AB24");
    /// `XR30`, 32-bit xRGB 2:10:10:10.
    pub const XRGB2101010: Fourcc = fourcc(b"XR30");
    /// `AR30`, 32-bit ARGB 2:10:10:10.
    pub const ARGB2101010: Fourcc = fourcc(b"AR30");
    /// `NV12`: Y plane, then interleaved CbCr at half width and height.
    pub const NV12: Fourcc = fourcc(b"NV12");
    /// `NV21`: as NV12 with CrCb.
    pub const NV21: Fourcc = fourcc(b"NV21");
    /// `NV16`: Y, then CbCr at half width, full height.
    pub const NV16: Fourcc = fourcc(b"NV16");
    /// `NV61`: as NV16 with CrCb.
    pub const NV61: Fourcc = fourcc(b"NV61");
    /// `NV24`: Y, then CbCr at full resolution.
    pub const NV24: Fourcc = fourcc(b"NV24");
    /// `NV42`: as NV24 with CrCb.
    pub const NV42: Fourcc = fourcc(b"NV42");
    /// `P010`: 16-bit Y, then 16-bit CbCr at half width and height (10 significant bits, MSB
    /// aligned).
    pub const P010: Fourcc = fourcc(b"P010");
    /// `P012`: as P010 with 12 significant bits.
    pub const P012: Fourcc = fourcc(b"P012");
    /// `P016`: as P010 with 16 significant bits.
    pub const P016: Fourcc = fourcc(b"P016");
    /// `YU12`: Y, Cb, Cr planes, chroma at half width and height.
    pub const YUV420: Fourcc = fourcc(b"YU12");
    /// `YV12`: Y, Cr, Cb planes.
    pub const YVU420: Fourcc = fourcc(b"YV12");
    /// `YU16`: Y, Cb, Cr planes, chroma at half width.
    pub const YUV422: Fourcc = fourcc(b"YU16");
    /// `YV16`: Y, Cr, Cb planes, chroma at half width.
    pub const YVU422: Fourcc = fourcc(b"YV16");
    /// `YU24`: Y, Cb, Cr planes at full resolution.
    pub const YUV444: Fourcc = fourcc(b"YU24");
    /// `YV24`: Y, Cr, Cb planes at full resolution.
    pub const YVU444: Fourcc = fourcc(b"YV24");
    /// `YUYV`: packed 4:2:2.
    pub const YUYV: Fourcc = fourcc(b"YUYV");
    /// `UYVY`: packed 4:2:2.
    pub const UYVY: Fourcc = fourcc(b"UYVY");
    /// `YVYU`: packed 4:2:2.
    pub const YVYU: Fourcc = fourcc(b"YVYU");
    /// `VYUY`: packed 4:2:2.
    pub const VYUY: Fourcc = fourcc(b"VYUY");

    /// Parses a four-character code such as `"NV12"`.
    pub fn from_code(code: &str) -> Option<Fourcc> {
        let bytes: [u8; 4] = code.as_bytes().try_into().ok()?;
        Some(fourcc(&bytes))
    }
}

impl fmt::Display for Fourcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0.to_le_bytes();
        if b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
            write!(f, "{}", String::from_utf8_lossy(&b).trim_end())
        } else {
            write!(f, "{:#010x}", self.0)
        }
    }
}

impl fmt::Debug for Fourcc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fourcc({self})")
    }
}

/// How one plane of a format is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaneFormat {
    /// Bytes per pixel (per chroma sample pair for interleaved chroma).
    pub bytes_per_pixel: u32,
    /// Horizontal subsampling (2 for half width).
    pub hsub: u32,
    /// Vertical subsampling.
    pub vsub: u32,
}

const fn plane(bytes_per_pixel: u32, hsub: u32, vsub: u32) -> PlaneFormat {
    PlaneFormat {
        bytes_per_pixel,
        hsub,
        vsub,
    }
}

/// The planes of a supported format, or `None`.
pub fn planes_of(format: Fourcc) -> Option<&'static [PlaneFormat]> {
    const RGB16: &[PlaneFormat] = &[plane(2, 1, 1)];
    const RGB24: &[PlaneFormat] = &[plane(3, 1, 1)];
    const RGB32: &[PlaneFormat] = &[plane(4, 1, 1)];
    const NV420: &[PlaneFormat] = &[plane(1, 1, 1), plane(2, 2, 2)];
    const NV422: &[PlaneFormat] = &[plane(1, 1, 1), plane(2, 2, 1)];
    const P010: &[PlaneFormat] = &[plane(2, 1, 1), plane(4, 2, 2)];
    const NV444: &[PlaneFormat] = &[plane(1, 1, 1), plane(2, 1, 1)];
    const YUV420: &[PlaneFormat] = &[plane(1, 1, 1), plane(1, 2, 2), plane(1, 2, 2)];
    const YUV422: &[PlaneFormat] = &[plane(1, 1, 1), plane(1, 2, 1), plane(1, 2, 1)];
    const YUV444: &[PlaneFormat] = &[plane(1, 1, 1), plane(1, 1, 1), plane(1, 1, 1)];
    const PACKED422: &[PlaneFormat] = &[plane(4, 2, 1)];
    Some(match format {
        Fourcc::RGB565 | Fourcc::BGR565 => RGB16,
        Fourcc::RGB888 | Fourcc::BGR888 => RGB24,
        Fourcc::XRGB8888
        | Fourcc::ARGB8888
        | Fourcc::XBGR8888
        | Fourcc::ABGR8888
        | Fourcc::XRGB2101010
        | Fourcc::ARGB2101010 => RGB32,
        Fourcc::NV12 | Fourcc::NV21 => NV420,
        Fourcc::NV16 | Fourcc::NV61 => NV422,
        Fourcc::NV24 | Fourcc::NV42 => NV444,
        Fourcc::P010 | Fourcc::P012 | Fourcc::P016 => P010,
        Fourcc::YUV420 | Fourcc::YVU420 => YUV420,
        Fourcc::YUV422 | Fourcc::YVU422 => YUV422,
        Fourcc::YUV444 | Fourcc::YVU444 => YUV444,
        Fourcc::YUYV | Fourcc::UYVY | Fourcc::YVYU | Fourcc::VYUY => PACKED422,
        _ => return None,
    })
}

/// Choices for [`Layout::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayoutOptions {
    /// Every stride is a multiple of this (a power of two). Default 256.
    pub stride_align: u32,
    /// Every plane offset is a multiple of this (a power of two). Default 256.
    pub offset_align: u32,
    /// One buffer (one fd) per plane instead of all planes in one.
    pub buffer_per_plane: bool,
}

impl Default for LayoutOptions {
    fn default() -> Self {
        Self {
            stride_align: 256,
            offset_align: 256,
            buffer_per_plane: false,
        }
    }
}

impl LayoutOptions {
    /// These options, with strides and plane offsets also multiples of `pitch` and `offset`
    /// (a plane's alignments, as a compositor's heap hints give them: powers of two, so the
    /// larger of two satisfies both; zero or another value is no constraint). A wl_shm buffer
    /// meant for scan-out needs them as much as a dma-buf: the display engine reads its pitch and
    /// offset whatever memory it is.
    pub fn aligned_to(self, pitch: u32, offset: u32) -> Self {
        let larger = |a: u32, b: u32| if b.is_power_of_two() { a.max(b) } else { a };
        Self {
            stride_align: larger(self.stride_align, pitch),
            offset_align: larger(self.offset_align, offset),
            ..self
        }
    }
}

/// One plane's place in its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaneLayout {
    /// Which buffer (fd) holds it: 0 unless `buffer_per_plane`.
    pub buffer: usize,
    /// Byte offset in that buffer.
    pub offset: u32,
    /// Bytes per row.
    pub stride: u32,
    /// Rows.
    pub height: u32,
}

/// A complete layout of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The format.
    pub format: Fourcc,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The planes, in the format's order.
    pub planes: Vec<PlaneLayout>,
    /// The bytes each buffer needs (one entry, or one per plane).
    pub buffer_sizes: Vec<u64>,
}

/// Why a layout cannot be made or a buffer does not fit it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The format has no layout here.
    #[error(
        "format {0} is not supported (RGB 16/24/32-bit, XR30/AR30, NV12/21/16/61/24/42, P010/P012/P016, YU12/YV12/YU16/YV16/YU24/YV24, YUYV/UYVY/YVYU/VYUY are)"
    )]
    UnsupportedFormat(Fourcc),
    /// Zero width or height.
    #[error("{width}x{height} is empty")]
    Empty {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// A subsampled format with an odd dimension.
    #[error(
        "{format} needs a width divisible by {hsub} and a height divisible by {vsub}; got {width}x{height}"
    )]
    Subsampling {
        /// The format.
        format: Fourcc,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Required horizontal divisor.
        hsub: u32,
        /// Required vertical divisor.
        vsub: u32,
    },
    /// An alignment that is not a power of two.
    #[error("alignment {0} is not a power of two")]
    Alignment(u32),
    /// Strides or offsets do not fit the 32 bits the kernel and linux-dmabuf give them.
    #[error("{width}x{height} {format} overflows 32-bit strides or offsets")]
    TooLarge {
        /// The format.
        format: Fourcc,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// A plane reaches past the end of its buffer.
    #[error(
        "plane {plane}: offset {offset} + stride {stride} x {height} rows exceeds the {size}-byte buffer"
    )]
    PlaneOutOfBounds {
        /// Plane index.
        plane: usize,
        /// Its offset.
        offset: u64,
        /// Its stride.
        stride: u32,
        /// Its rows.
        height: u32,
        /// The buffer's size.
        size: u64,
    },
    /// A stride smaller than one row of pixels.
    #[error("plane {plane}: stride {stride} is below the {min} bytes one row needs")]
    StrideTooSmall {
        /// Plane index.
        plane: usize,
        /// Its stride.
        stride: u32,
        /// The minimum.
        min: u64,
    },
    /// The wrong number of planes or buffers.
    #[error("{format} has {expected} planes, got {got}")]
    PlaneCount {
        /// The format.
        format: Fourcc,
        /// Planes the format has.
        expected: usize,
        /// Planes given.
        got: usize,
    },
}

fn align_up(v: u64, align: u32) -> u64 {
    v.div_ceil(u64::from(align)) * u64::from(align)
}

impl Layout {
    /// Lays out a `width` x `height` image of `format`.
    pub fn new(
        format: Fourcc,
        width: u32,
        height: u32,
        opts: LayoutOptions,
    ) -> Result<Layout, LayoutError> {
        let formats = planes_of(format).ok_or(LayoutError::UnsupportedFormat(format))?;
        if width == 0 || height == 0 {
            return Err(LayoutError::Empty { width, height });
        }
        for a in [opts.stride_align, opts.offset_align] {
            if !a.is_power_of_two() {
                return Err(LayoutError::Alignment(a));
            }
        }
        let (hsub, vsub) = formats
            .iter()
            .fold((1, 1), |(h, v), p| (h.max(p.hsub), v.max(p.vsub)));
        if !width.is_multiple_of(hsub) || !height.is_multiple_of(vsub) {
            return Err(LayoutError::Subsampling {
                format,
                width,
                height,
                hsub,
                vsub,
            });
        }
        let too_large = || LayoutError::TooLarge {
            format,
            width,
            height,
        };
        let mut planes = Vec::with_capacity(formats.len());
        let mut buffer_sizes = Vec::new();
        let mut cursor = 0u64;
        for (i, p) in formats.iter().enumerate() {
            let row = u64::from(width / p.hsub) * u64::from(p.bytes_per_pixel);
            let stride =
                u32::try_from(align_up(row, opts.stride_align)).map_err(|_| too_large())?;
            let rows = height / p.vsub;
            let (buffer, offset) = if opts.buffer_per_plane {
                (i, 0)
            } else {
                (0, align_up(cursor, opts.offset_align))
            };
            let end = offset + u64::from(stride) * u64::from(rows);
            if end > u64::from(u32::MAX) {
                return Err(too_large());
            }
            planes.push(PlaneLayout {
                buffer,
                offset: offset as u32,
                stride,
                height: rows,
            });
            if opts.buffer_per_plane {
                buffer_sizes.push(end);
            } else {
                cursor = end;
            }
        }
        if !opts.buffer_per_plane {
            buffer_sizes.push(cursor);
        }
        Ok(Layout {
            format,
            width,
            height,
            planes,
            buffer_sizes,
        })
    }

    /// The bytes of all buffers together.
    pub fn total_size(&self) -> u64 {
        self.buffer_sizes.iter().sum()
    }

    /// The same layout starting `base` bytes into its (single) buffer — for exported application
    /// memory whose first byte is not on a page boundary ([`crate::export::ExportedRange::offset`]).
    pub fn with_base_offset(&self, base: u32) -> Result<Layout, LayoutError> {
        let mut out = self.clone();
        for p in &mut out.planes {
            p.offset = p.offset.checked_add(base).ok_or(LayoutError::TooLarge {
                format: self.format,
                width: self.width,
                height: self.height,
            })?;
        }
        for s in &mut out.buffer_sizes {
            *s += u64::from(base);
        }
        Ok(out)
    }

    /// Checks that buffers of `sizes` bytes (one per buffer) hold every plane: the rule every
    /// importer applies (linux-dmabuf compositors with lseek, the kernel in AddFB2).
    pub fn check_buffers(&self, sizes: &[u64]) -> Result<(), LayoutError> {
        for (i, p) in self.planes.iter().enumerate() {
            let size = *sizes.get(p.buffer).ok_or(LayoutError::PlaneCount {
                format: self.format,
                expected: self.buffer_sizes.len(),
                got: sizes.len(),
            })?;
            check_plane(
                self.format,
                self.width,
                i,
                u64::from(p.offset),
                p.stride,
                p.height,
                size,
            )?;
        }
        Ok(())
    }
}

/// The per-plane rule of the kernel (AddFB2) and linux-dmabuf, overflow-safe: the stride holds
/// one row, and `offset + stride * rows` stays within the buffer. `width` is the image's width;
/// `rows` the plane's (already subsampled) height. Usable on untrusted client parameters.
pub fn check_plane(
    format: Fourcc,
    width: u32,
    plane: usize,
    offset: u64,
    stride: u32,
    rows: u32,
    buffer_size: u64,
) -> Result<(), LayoutError> {
    let formats = planes_of(format).ok_or(LayoutError::UnsupportedFormat(format))?;
    let pf = formats.get(plane).ok_or(LayoutError::PlaneCount {
        format,
        expected: formats.len(),
        got: plane + 1,
    })?;
    let min = u64::from(width.div_ceil(pf.hsub)) * u64::from(pf.bytes_per_pixel);
    if u64::from(stride) < min {
        return Err(LayoutError::StrideTooSmall { plane, stride, min });
    }
    let end = u64::from(stride)
        .checked_mul(u64::from(rows))
        .and_then(|b| b.checked_add(offset));
    match end {
        Some(end) if end <= buffer_size => Ok(()),
        _ => Err(LayoutError::PlaneOutOfBounds {
            plane,
            offset,
            stride,
            height: rows,
            size: buffer_size,
        }),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn modifiers_are_the_kernel_values() {
        // fourcc_mod_code(NONE, 0) and fourcc_mod_code(NONE, DRM_FORMAT_RESERVED).
        assert_eq!(MODIFIER_LINEAR, 0);
        assert_eq!(MODIFIER_INVALID, (1u64 << 56) - 1);
        assert_eq!(crate::policy::MODIFIER_LINEAR, MODIFIER_LINEAR);
        assert_eq!(crate::policy::MODIFIER_INVALID, MODIFIER_INVALID);
    }

    use super::*;

    #[test]
    fn hint_alignments_raise_the_defaults_and_bad_ones_are_ignored() {
        let o = LayoutOptions::default().aligned_to(1024, 4096);
        assert_eq!((o.stride_align, o.offset_align), (1024, 4096));
        let o = LayoutOptions::default().aligned_to(64, 0);
        assert_eq!((o.stride_align, o.offset_align), (256, 256));
        let o = LayoutOptions::default().aligned_to(768, 3);
        assert_eq!((o.stride_align, o.offset_align), (256, 256));
        let options = LayoutOptions::default().aligned_to(2048, 1);
        let l = Layout::new(Fourcc::XRGB8888, 300, 10, options).unwrap();
        assert_eq!(l.planes[0].stride, 2048);
    }

    fn layout(f: Fourcc, w: u32, h: u32) -> Layout {
        Layout::new(f, w, h, LayoutOptions::default()).unwrap()
    }

    #[test]
    fn rgb_strides_are_aligned() {
        let l = layout(Fourcc::XRGB8888, 1366, 768);
        assert_eq!(l.planes[0].stride, 5632); // 5464 rounded up to 256
        assert_eq!(l.buffer_sizes, vec![5632 * 768]);
        assert_eq!(layout(Fourcc::RGB565, 100, 10).planes[0].stride, 256);
        assert_eq!(layout(Fourcc::RGB888, 256, 1).planes[0].stride, 768);
        assert_eq!(layout(Fourcc::ARGB2101010, 64, 64).planes[0].stride, 256);
    }

    #[test]
    fn nv12_nv21_nv16_p010() {
        let l = layout(Fourcc::NV12, 640, 480);
        assert_eq!(
            l.planes[1],
            PlaneLayout {
                buffer: 0,
                offset: 768 * 480,
                stride: 768,
                height: 240
            }
        );
        assert_eq!(l.planes[0].stride, 768);
        assert_eq!(l.total_size(), 768 * 480 + 768 * 240);
        assert_eq!(
            layout(Fourcc::NV21, 640, 480),
            Layout {
                format: Fourcc::NV21,
                ..l.clone()
            }
        );
        let nv16 = layout(Fourcc::NV16, 512, 4);
        assert_eq!(nv16.planes[1].height, 4);
        let p010 = layout(Fourcc::P010, 512, 4);
        assert_eq!((p010.planes[0].stride, p010.planes[1].stride), (1024, 1024));
    }

    #[test]
    fn yuv420_three_planes_with_aligned_offsets() {
        let l = layout(Fourcc::YUV420, 320, 240);
        assert_eq!(l.planes.len(), 3);
        assert_eq!(l.planes[1].offset, 512 * 240);
        assert_eq!(l.planes[2].offset, 512 * 240 + 256 * 120);
        assert!(
            l.planes
                .iter()
                .all(|p| p.offset % 256 == 0 && p.stride % 256 == 0)
        );
    }

    #[test]
    fn packed_422() {
        let l = layout(Fourcc::YUYV, 640, 480);
        assert_eq!((l.planes.len(), l.planes[0].stride), (1, 1280));
        assert!(matches!(
            Layout::new(Fourcc::UYVY, 641, 480, LayoutOptions::default()),
            Err(LayoutError::Subsampling { .. })
        ));
    }

    #[test]
    fn buffer_per_plane() {
        let opts = LayoutOptions {
            buffer_per_plane: true,
            ..Default::default()
        };
        let l = Layout::new(Fourcc::NV12, 256, 256, opts).unwrap();
        assert_eq!(l.buffer_sizes, vec![256 * 256, 256 * 128]);
        assert_eq!((l.planes[1].buffer, l.planes[1].offset), (1, 0));
    }

    #[test]
    fn custom_alignment_and_bad_alignment() {
        let opts = LayoutOptions {
            stride_align: 64,
            offset_align: 4096,
            ..Default::default()
        };
        let l = Layout::new(Fourcc::NV12, 100, 100, opts).unwrap();
        assert_eq!((l.planes[0].stride, l.planes[1].offset), (128, 16384));
        let bad = LayoutOptions {
            stride_align: 100,
            ..Default::default()
        };
        assert_eq!(
            Layout::new(Fourcc::NV12, 100, 100, bad),
            Err(LayoutError::Alignment(100))
        );
    }

    #[test]
    fn errors_for_bad_images() {
        let d = LayoutOptions::default();
        assert!(matches!(
            Layout::new(Fourcc::XRGB8888, 0, 1, d),
            Err(LayoutError::Empty { .. })
        ));
        assert!(matches!(
            Layout::new(Fourcc(0), 1, 1, d),
            Err(LayoutError::UnsupportedFormat(_))
        ));
        assert!(matches!(
            Layout::new(Fourcc::XRGB8888, 65536, 65536, d),
            Err(LayoutError::TooLarge { .. })
        ));
    }

    #[test]
    fn plane_checks_are_overflow_safe() {
        let f = Fourcc::XRGB8888;
        assert!(check_plane(f, 10, 0, 0, 40, 10, 400).is_ok());
        assert!(matches!(
            check_plane(f, 10, 0, 1, 40, 10, 400),
            Err(LayoutError::PlaneOutOfBounds { .. })
        ));
        assert!(matches!(
            check_plane(f, 10, 0, 0, 39, 10, 1000),
            Err(LayoutError::StrideTooSmall { .. })
        ));
        assert!(check_plane(f, 1, 0, u64::MAX, u32::MAX, u32::MAX, u64::MAX).is_err());
        assert!(matches!(
            check_plane(f, 1, 1, 0, 4, 1, 4),
            Err(LayoutError::PlaneCount { .. })
        ));
    }

    #[test]
    fn layouts_pass_their_own_buffer_check_and_base_offsets_shift_planes() {
        let l = layout(Fourcc::NV12, 640, 480);
        l.check_buffers(&l.buffer_sizes).unwrap();
        assert!(l.check_buffers(&[l.total_size() - 1]).is_err());
        let shifted = l.with_base_offset(100).unwrap();
        assert_eq!(shifted.planes[1].offset, l.planes[1].offset + 100);
        shifted.check_buffers(&shifted.buffer_sizes).unwrap();
    }

    #[test]
    fn fourcc_text() {
        assert_eq!(Fourcc::from_code("NV12"), Some(Fourcc::NV12));
        assert_eq!(Fourcc::NV12.to_string(), "NV12");
        assert_eq!(Fourcc(0).to_string(), "0x00000000");
        assert_eq!(Fourcc::from_code("TOOLONG"), None);
    }
}

/// Property tests (issue 15) of layout arithmetic and the plane check that client and driver
/// numbers go through: 10 000 + 10 000 + 4 000 = 24 000 cases per run.
#[cfg(test)]
pub(crate) mod proptests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) use crate::proptest_config::config;

    /// Every format [`planes_of`] knows.
    pub(crate) const SUPPORTED: &[Fourcc] = &[
        Fourcc::RGB565,
        Fourcc::BGR565,
        Fourcc::RGB888,
        Fourcc::BGR888,
        Fourcc::XRGB8888,
        Fourcc::ARGB8888,
        Fourcc::XBGR8888,
        Fourcc::ABGR8888,
        Fourcc::XRGB2101010,
        Fourcc::ARGB2101010,
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
        Fourcc::UYVY,
        Fourcc::YVYU,
        Fourcc::VYUY,
    ];

    /// A supported format most of the time, any code otherwise.
    pub(crate) fn fourcc() -> impl Strategy<Value = Fourcc> {
        prop_oneof![
            6 => proptest::sample::select(SUPPORTED),
            1 => any::<u32>().prop_map(Fourcc),
        ]
    }

    /// Small, odd, near the 32-bit limits, or anything.
    pub(crate) fn dimension() -> impl Strategy<Value = u32> {
        prop_oneof![
            6 => 0u32..4100,
            2 => (1u32..=2).prop_flat_map(|s| (0u32..=33).prop_map(move |b| (1u32 << (b.min(31))).saturating_mul(s))),
            1 => 1u32 << 14..1 << 17,
            1 => any::<u32>(),
        ]
    }

    fn alignment() -> impl Strategy<Value = u32> {
        prop_oneof![
            8 => (0u32..32).prop_map(|b| 1 << b),
            1 => any::<u32>(),
        ]
    }

    fn options() -> impl Strategy<Value = LayoutOptions> {
        (alignment(), alignment(), any::<bool>()).prop_map(|(s, o, b)| LayoutOptions {
            stride_align: s,
            offset_align: o,
            buffer_per_plane: b,
        })
    }

    proptest! {
        #![proptest_config(config(10_000))]

        /// Any format, size and options: no panic; an accepted layout has the format's planes,
        /// aligned strides and offsets, rows that hold a line of pixels, planes in order without
        /// overlap inside 32 bits, and buffers that hold it exactly (one byte less does not);
        /// a refusal names the rule, and `TooLarge` only when 32 bits truly do not suffice.
        #[test]
        fn layouts_fit_their_buffers_or_say_why_not(
            format in fourcc(),
            width in dimension(),
            height in dimension(),
            opts in options(),
            base in prop_oneof![0u32..8192, any::<u32>()],
        ) {
            let result = Layout::new(format, width, height, opts);
            let Some(formats) = planes_of(format) else {
                prop_assert_eq!(result, Err(LayoutError::UnsupportedFormat(format)));
                return Ok(());
            };
            let (hsub, vsub) = formats.iter().fold((1, 1), |(h, v), p| (h.max(p.hsub), v.max(p.vsub)));
            let layout = match result {
                Ok(l) => l,
                Err(LayoutError::Empty { .. }) => {
                    prop_assert!(width == 0 || height == 0);
                    return Ok(());
                }
                Err(LayoutError::Alignment(a)) => {
                    prop_assert!(width > 0 && height > 0);
                    prop_assert!(!a.is_power_of_two());
                    prop_assert!(a == opts.stride_align || a == opts.offset_align);
                    return Ok(());
                }
                Err(LayoutError::Subsampling { .. }) => {
                    prop_assert!(width % hsub != 0 || height % vsub != 0);
                    return Ok(());
                }
                Err(LayoutError::TooLarge { .. }) => {
                    // With u128, nothing overflows: the ideal layout must leave 32 bits.
                    let mut cursor = 0u128;
                    let mut too_large = false;
                    for p in formats {
                        let row = u128::from(width / p.hsub) * u128::from(p.bytes_per_pixel);
                        let stride = row.div_ceil(u128::from(opts.stride_align)) * u128::from(opts.stride_align);
                        let offset = if opts.buffer_per_plane { 0 } else {
                            cursor.div_ceil(u128::from(opts.offset_align)) * u128::from(opts.offset_align)
                        };
                        let end = offset + stride * u128::from(height / p.vsub);
                        too_large |= stride > u128::from(u32::MAX) || end > u128::from(u32::MAX);
                        cursor = end;
                    }
                    prop_assert!(too_large);
                    return Ok(());
                }
                Err(e) => {
                    prop_assert!(false, "unexpected {e}");
                    unreachable!()
                }
            };
            prop_assert!(width > 0 && height > 0 && opts.stride_align.is_power_of_two() && opts.offset_align.is_power_of_two());
            prop_assert_eq!(layout.planes.len(), formats.len());
            prop_assert_eq!(layout.buffer_sizes.len(), if opts.buffer_per_plane { formats.len() } else { 1 });
            let mut end_of_previous = 0u64;
            for (i, (p, pf)) in layout.planes.iter().zip(formats).enumerate() {
                prop_assert_eq!(p.stride % opts.stride_align, 0);
                prop_assert!(u64::from(p.stride) >= u64::from(width / pf.hsub) * u64::from(pf.bytes_per_pixel));
                prop_assert_eq!(p.height, height / pf.vsub);
                let end = u64::from(p.offset) + u64::from(p.stride) * u64::from(p.height);
                prop_assert!(end <= u64::from(u32::MAX));
                if opts.buffer_per_plane {
                    prop_assert_eq!((p.buffer, p.offset), (i, 0));
                    prop_assert_eq!(layout.buffer_sizes[i], end);
                } else {
                    prop_assert_eq!(p.buffer, 0);
                    prop_assert_eq!(p.offset % opts.offset_align, 0);
                    prop_assert!(u64::from(p.offset) >= end_of_previous);
                    end_of_previous = end;
                }
            }
            if !opts.buffer_per_plane {
                prop_assert_eq!(layout.buffer_sizes[0], end_of_previous);
            }
            prop_assert_eq!(layout.check_buffers(&layout.buffer_sizes), Ok(()));
            for i in 0..layout.buffer_sizes.len() {
                let mut short = layout.buffer_sizes.clone();
                short[i] -= 1;
                let r = layout.check_buffers(&short);
                prop_assert!(matches!(r, Err(LayoutError::PlaneOutOfBounds { .. })), "{r:?}");
            }
            let r = layout.check_buffers(&layout.buffer_sizes[..layout.buffer_sizes.len() - 1]);
            prop_assert!(matches!(r, Err(LayoutError::PlaneCount { .. })), "{r:?}");
            // Monotonic: a smaller image of the same format fits in no more bytes.
            if width > hsub {
                let smaller = Layout::new(format, width - hsub, height, opts).unwrap();
                prop_assert!(smaller.total_size() <= layout.total_size());
            }
            if height > vsub {
                let smaller = Layout::new(format, width, height - vsub, opts).unwrap();
                prop_assert!(smaller.total_size() <= layout.total_size());
            }
            // Shifting into exported memory: every plane moves by `base` and still fits.
            if !opts.buffer_per_plane {
                match layout.with_base_offset(base) {
                    Ok(shifted) => {
                        for (a, b) in layout.planes.iter().zip(&shifted.planes) {
                            prop_assert_eq!(u64::from(b.offset), u64::from(a.offset) + u64::from(base));
                        }
                        prop_assert_eq!(shifted.check_buffers(&shifted.buffer_sizes), Ok(()));
                    }
                    Err(_) => prop_assert!(layout.planes.iter().any(|p| p.offset.checked_add(base).is_none())),
                }
            }
        }

        /// The plane rule on arbitrary (client or driver) numbers: no panic or overflow, and
        /// the answer is exactly the rule computed without overflow.
        #[test]
        fn plane_checks_are_the_rule_without_overflow(
            format in fourcc(),
            width in dimension(),
            plane in 0usize..4,
            offset in prop_oneof![0u64..1 << 20, any::<u64>()],
            stride in prop_oneof![0u32..1 << 14, any::<u32>()],
            rows in dimension(),
            size in prop_oneof![0u64..1 << 26, any::<u64>()],
        ) {
            let result = check_plane(format, width, plane, offset, stride, rows, size);
            let Some(formats) = planes_of(format) else {
                prop_assert_eq!(result, Err(LayoutError::UnsupportedFormat(format)));
                return Ok(());
            };
            let Some(pf) = formats.get(plane) else {
                prop_assert!(matches!(result, Err(LayoutError::PlaneCount { got, .. }) if got == plane + 1), "{result:?}");
                return Ok(());
            };
            let min = u128::from(width.div_ceil(pf.hsub)) * u128::from(pf.bytes_per_pixel);
            let end = u128::from(offset) + u128::from(stride) * u128::from(rows);
            if u128::from(stride) < min {
                prop_assert!(matches!(result, Err(LayoutError::StrideTooSmall { .. })), "{result:?}");
            } else if end > u128::from(size) {
                prop_assert_eq!(result, Err(LayoutError::PlaneOutOfBounds { plane, offset, stride, height: rows, size }));
            } else {
                prop_assert_eq!(result, Ok(()));
            }
        }
    }

    proptest! {
        #![proptest_config(config(4_000))]

        /// Fourcc text: four characters round-trip through `from_code` and `Display` when they
        /// are printable; any code displays without panicking.
        #[test]
        fn fourcc_codes_round_trip(code in "[A-Z0-9]{1,4}|[ -~]{0,6}|\\PC{0,4}", raw in any::<u32>()) {
            let _ = Fourcc(raw).to_string();
            match Fourcc::from_code(&code) {
                Some(f) => {
                    prop_assert_eq!(code.len(), 4);
                    if code.bytes().all(|b| b.is_ascii_graphic()) {
                        prop_assert_eq!(f.to_string(), code.clone());
                        prop_assert_eq!(Fourcc::from_code(&f.to_string()), Some(f));
                    }
                }
                None => prop_assert_ne!(code.len(), 4),
            }
        }
    }
}
