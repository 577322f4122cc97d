//! V4L2 pixel formats, what the driver chose, and the DRM format and [`Layout`] of a captured frame.

use std::fmt;

use crate::layout::{Fourcc, Layout, LayoutError, PlaneLayout};

/// A V4L2 pixel format code (`V4L2_PIX_FMT_*`, `<linux/videodev2.h>`), e.g. `YUYV`.
///
/// V4L2 and DRM build their codes the same way, but the same letters do not always mean the same
/// bytes (V4L2 `RGB3` is DRM `BG24`): keep them apart, and convert with
/// [`PixelFormat::to_drm`] / [`PixelFormat::from_drm`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PixelFormat(pub u32);

const fn code(c: &[u8; 4]) -> PixelFormat {
    PixelFormat(u32::from_le_bytes(*c))
}

impl PixelFormat {
    /// `NV12`: Y plane, then interleaved CbCr (4:2:0) right after it, same stride.
    pub const NV12: PixelFormat = code(b"NV12");
    /// `NV21`: as NV12 with CrCb.
    pub const NV21: PixelFormat = code(b"NV21");
    /// `NV16`: Y plane, then interleaved CbCr (4:2:2).
    pub const NV16: PixelFormat = code(b"NV16");
    /// `YU12` (`V4L2_PIX_FMT_YUV420`): Y, Cb, Cr planes; chroma strides are half the luma stride.
    pub const YUV420: PixelFormat = code(b"YU12");
    /// `YV12` (`V4L2_PIX_FMT_YVU420`): Y, Cr, Cb planes.
    pub const YVU420: PixelFormat = code(b"YV12");
    /// `YUYV`: packed 4:2:2, bytes Y0 Cb Y1 Cr.
    pub const YUYV: PixelFormat = code(b"YUYV");
    /// `UYVY`: packed 4:2:2, bytes Cb Y0 Cr Y1.
    pub const UYVY: PixelFormat = code(b"UYVY");
    /// `XR24` (`V4L2_PIX_FMT_XBGR32`): bytes B, G, R, X — DRM `XR24` (XRGB8888).
    pub const XBGR32: PixelFormat = code(b"XR24");
    /// `AR24` (`V4L2_PIX_FMT_ABGR32`): bytes B, G, R, A — DRM `AR24` (ARGB8888).
    pub const ABGR32: PixelFormat = code(b"AR24");
    /// `XB24` (`V4L2_PIX_FMT_RGBX32`): bytes R, G, B, X — DRM `XB24` (XBGR8888).
    pub const RGBX32: PixelFormat = code(b"XB24");
    /// `AB24` (`V4L2_PIX_FMT_RGBA32`): bytes R, G, B, A — DRM `AB24` (ABGR8888).
    pub const RGBA32: PixelFormat = code(b"AB24");
    /// `RGBP` (`V4L2_PIX_FMT_RGB565`): little-endian 5:6:5 — DRM `RG16`.
    pub const RGB565: PixelFormat = code(b"RGBP");
    /// `RGB3` (`V4L2_PIX_FMT_RGB24`): bytes R, G, B — DRM `BG24` (BGR888).
    pub const RGB24: PixelFormat = code(b"RGB3");
    /// `BGR3` (`V4L2_PIX_FMT_BGR24`): bytes B, G, R — DRM `RG24` (RGB888).
    pub const BGR24: PixelFormat = code(b"BGR3");

    /// Every V4L2 format with a DRM equivalent here, and that equivalent.
    pub const DRM_EQUIVALENTS: &'static [(PixelFormat, Fourcc)] = &[
        (PixelFormat::NV12, Fourcc::NV12),
        (PixelFormat::NV21, Fourcc::NV21),
        (PixelFormat::NV16, Fourcc::NV16),
        (PixelFormat::YUV420, Fourcc::YUV420),
        (PixelFormat::YVU420, Fourcc::YVU420),
        (PixelFormat::YUYV, Fourcc::YUYV),
        (PixelFormat::UYVY, Fourcc::UYVY),
        (PixelFormat::XBGR32, Fourcc::XRGB8888),
        (PixelFormat::ABGR32, Fourcc::ARGB8888),
        (PixelFormat::RGBX32, Fourcc::XBGR8888),
        (PixelFormat::RGBA32, Fourcc::ABGR8888),
        (PixelFormat::RGB565, Fourcc::RGB565),
        (PixelFormat::RGB24, Fourcc::BGR888),
        (PixelFormat::BGR24, Fourcc::RGB888),
    ];

    /// Parses a four-character code such as `"NV12"`.
    pub fn from_code(code: &str) -> Option<PixelFormat> {
        let bytes: [u8; 4] = code.as_bytes().try_into().ok()?;
        Some(PixelFormat(u32::from_le_bytes(bytes)))
    }

    /// The DRM format with the same bytes in memory, if there is one here.
    pub fn to_drm(self) -> Option<Fourcc> {
        Self::DRM_EQUIVALENTS
            .iter()
            .find(|(v, _)| *v == self)
            .map(|(_, d)| *d)
    }

    /// The V4L2 format with the same bytes in memory as DRM's `drm`, if there is one here.
    pub fn from_drm(drm: Fourcc) -> Option<PixelFormat> {
        Self::DRM_EQUIVALENTS
            .iter()
            .find(|(_, d)| *d == drm)
            .map(|(v, _)| *v)
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Same text rules as a DRM code: four printable characters, else hex.
        fmt::Display::fmt(&Fourcc(self.0), f)
    }
}

impl fmt::Debug for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PixelFormat({self})")
    }
}

/// The format a capture device agreed to (`VIDIOC_S_FMT`'s answer): the driver may have changed
/// any of what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureFormat {
    /// The pixel format.
    pub fourcc: PixelFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per row of the first plane (V4L2 derives the other planes' strides from it).
    pub bytesperline: u32,
    /// Bytes one frame needs: every buffer must have at least this many.
    pub sizeimage: u32,
}

/// Why a [`CaptureFormat`] has no DRM [`Layout`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The V4L2 format has no DRM equivalent here.
    #[error(
        "V4L2 format {0} has no DRM equivalent here (NV12, NV21, NV16, YU12, YV12, YUYV, UYVY, XR24, AR24, XB24, AB24, RGBP, RGB3, BGR3 have): choose one of those with set_format"
    )]
    NoDrmEquivalent(PixelFormat),
    /// The driver's strides and sizes do not hold the image (a driver bug, or a format whose
    /// planes are not where V4L2's single-planar rules put them); what does not fit is the
    /// [`source`](std::error::Error::source).
    #[error(
        "the driver's {width}x{height} {fourcc} (bytesperline {bytesperline}, sizeimage {sizeimage}) does not hold the image"
    )]
    Inconsistent {
        /// The format.
        fourcc: PixelFormat,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// The driver's bytesperline.
        bytesperline: u32,
        /// The driver's sizeimage.
        sizeimage: u32,
        /// What does not fit.
        source: LayoutError,
    },
}

impl CaptureFormat {
    /// The DRM format of the captured bytes, if there is one here.
    pub fn drm_format(&self) -> Option<Fourcc> {
        self.fourcc.to_drm()
    }

    /// Where each plane of a captured frame is, as a DRM [`Layout`] in one buffer: what a
    /// linux-dmabuf `add` or a KMS framebuffer needs (offsets and strides per plane).
    ///
    /// V4L2's single-planar rules: planes follow each other with no gap; a semi-planar chroma
    /// plane (NV12) has the luma stride, fully planar chroma planes (YU12) half of it.
    pub fn layout(&self) -> Result<Layout, FormatError> {
        let drm = self
            .drm_format()
            .ok_or(FormatError::NoDrmEquivalent(self.fourcc))?;
        let inconsistent = |source| FormatError::Inconsistent {
            fourcc: self.fourcc,
            width: self.width,
            height: self.height,
            bytesperline: self.bytesperline,
            sizeimage: self.sizeimage,
            source,
        };
        let formats = crate::layout::planes_of(drm)
            .ok_or(inconsistent(LayoutError::UnsupportedFormat(drm)))?;
        if self.width == 0 || self.height == 0 {
            return Err(inconsistent(LayoutError::Empty {
                width: self.width,
                height: self.height,
            }));
        }
        let bpl = u64::from(self.bytesperline);
        let mut planes = Vec::with_capacity(formats.len());
        let mut offset = 0u64;
        for (i, p) in formats.iter().enumerate() {
            let stride = if i == 0 {
                bpl
            } else if formats.len() == 2 {
                // Semi-planar: CbCr pairs take as many bytes per row as luma.
                bpl * u64::from(p.bytes_per_pixel) / u64::from(p.hsub)
            } else {
                bpl / u64::from(p.hsub)
            };
            let rows = self.height.div_ceil(p.vsub);
            let too_large = || {
                inconsistent(LayoutError::TooLarge {
                    format: drm,
                    width: self.width,
                    height: self.height,
                })
            };
            planes.push(PlaneLayout {
                buffer: 0,
                offset: u32::try_from(offset).map_err(|_| too_large())?,
                stride: u32::try_from(stride).map_err(|_| too_large())?,
                height: rows,
            });
            offset += stride * u64::from(rows);
        }
        let layout = Layout {
            format: drm,
            width: self.width,
            height: self.height,
            planes,
            buffer_sizes: vec![u64::from(self.sizeimage)],
        };
        layout
            .check_buffers(&[u64::from(self.sizeimage)])
            .map_err(inconsistent)?;
        Ok(layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(fourcc: PixelFormat, w: u32, h: u32, bpl: u32, size: u32) -> CaptureFormat {
        CaptureFormat {
            fourcc,
            width: w,
            height: h,
            bytesperline: bpl,
            sizeimage: size,
        }
    }

    #[test]
    fn drm_equivalents_round_trip_and_keep_bytes_in_order() {
        for (v, d) in PixelFormat::DRM_EQUIVALENTS {
            assert_eq!(v.to_drm(), Some(*d));
            assert_eq!(PixelFormat::from_drm(*d), Some(*v));
        }
        // V4L2 XBGR32 (B,G,R,X in memory) is DRM XRGB8888 (little-endian x:R:G:B).
        assert_eq!(PixelFormat::XBGR32.to_drm(), Some(Fourcc::XRGB8888));
        assert_eq!(PixelFormat::RGB24.to_drm(), Some(Fourcc::BGR888));
        assert_eq!(PixelFormat::from_code("MJPG").unwrap().to_drm(), None);
        assert_eq!(PixelFormat::NV12.to_string(), "NV12");
    }

    #[test]
    fn nv12_chroma_follows_luma_with_the_same_stride() {
        let l = fmt(PixelFormat::NV12, 640, 360, 640, 640 * 360 * 3 / 2)
            .layout()
            .unwrap();
        assert_eq!(l.format, Fourcc::NV12);
        assert_eq!(
            l.planes[1],
            PlaneLayout {
                buffer: 0,
                offset: 640 * 360,
                stride: 640,
                height: 180
            }
        );
        // A padded stride moves the chroma plane with it.
        let l = fmt(PixelFormat::NV12, 600, 360, 640, 640 * 540)
            .layout()
            .unwrap();
        assert_eq!((l.planes[1].offset, l.planes[1].stride), (640 * 360, 640));
    }

    #[test]
    fn packed_and_planar_layouts() {
        let l = fmt(PixelFormat::YUYV, 640, 360, 1280, 1280 * 360)
            .layout()
            .unwrap();
        assert_eq!(
            (l.format, l.planes.len(), l.planes[0].stride),
            (Fourcc::YUYV, 1, 1280)
        );
        let l = fmt(PixelFormat::XBGR32, 640, 360, 2560, 2560 * 360)
            .layout()
            .unwrap();
        assert_eq!(
            (l.format, l.buffer_sizes[0]),
            (Fourcc::XRGB8888, 2560 * 360)
        );
        let l = fmt(PixelFormat::YUV420, 640, 360, 640, 640 * 540)
            .layout()
            .unwrap();
        assert_eq!(l.planes[1].offset, 640 * 360);
        assert_eq!(l.planes[2].offset, 640 * 360 + 320 * 180);
        assert_eq!(l.planes[2].stride, 320);
    }

    #[test]
    fn an_empty_image_is_an_error() {
        // Found by proptests::driver_formats_give_a_fitting_layout_or_a_reason: a driver's 0x0
        // answer made a layout (of nothing), which linux-dmabuf would refuse as a protocol error.
        for (w, h) in [(0, 0), (0, 360), (640, 0)] {
            assert!(matches!(
                fmt(PixelFormat::NV12, w, h, 640, 640 * 540).layout(),
                Err(FormatError::Inconsistent {
                    source: LayoutError::Empty { .. },
                    ..
                })
            ));
        }
    }

    #[test]
    fn a_short_sizeimage_or_an_unknown_format_is_an_error() {
        assert!(matches!(
            fmt(PixelFormat::NV12, 640, 360, 640, 640 * 360).layout(),
            Err(FormatError::Inconsistent { .. })
        ));
        assert!(matches!(
            fmt(PixelFormat::XBGR32, 640, 360, 100, 2560 * 360).layout(),
            Err(FormatError::Inconsistent { .. })
        ));
        let mjpg = PixelFormat::from_code("MJPG").unwrap();
        assert_eq!(
            fmt(mjpg, 640, 360, 0, 100_000).layout(),
            Err(FormatError::NoDrmEquivalent(mjpg))
        );
    }
}

/// Property tests (issue 15) of the V4L2 ↔ DRM mapping and of the layout made from a driver's
/// answer: 4 000 + 10 000 + 4 000 = 18 000 cases per run.
#[cfg(test)]
mod proptests {
    use super::*;
    use crate::layout::proptests::{SUPPORTED, config, dimension};
    use crate::layout::{LayoutOptions, planes_of};
    use proptest::prelude::*;

    fn pixel_format() -> impl Strategy<Value = PixelFormat> {
        prop_oneof![
            3 => proptest::sample::select(PixelFormat::DRM_EQUIVALENTS).prop_map(|(v, _)| v),
            1 => any::<u32>().prop_map(PixelFormat),
        ]
    }

    proptest! {
        #![proptest_config(config(4_000))]

        /// The mapping is a bijection between the listed codes, every DRM side has a layout,
        /// and any other code maps to nothing (never to a wrong format).
        #[test]
        fn the_mapping_round_trips(v in pixel_format(), d in proptest::sample::select(SUPPORTED), raw in any::<u32>()) {
            match v.to_drm() {
                Some(drm) => {
                    prop_assert_eq!(PixelFormat::from_drm(drm), Some(v));
                    prop_assert!(planes_of(drm).is_some());
                    prop_assert!(PixelFormat::DRM_EQUIVALENTS.contains(&(v, drm)));
                }
                None => prop_assert!(PixelFormat::DRM_EQUIVALENTS.iter().all(|(p, _)| *p != v)),
            }
            if let Some(p) = PixelFormat::from_drm(d) {
                prop_assert_eq!(p.to_drm(), Some(d));
            }
            let _ = PixelFormat(raw).to_string();
            let _ = format!("{:?}", PixelFormat(raw));
            if let Some(code) = PixelFormat::from_code(&PixelFormat(raw).to_string()) {
                prop_assert_eq!(code, PixelFormat(raw));
            }
        }
    }

    /// The value a driver puts in bytesperline / sizeimage: around the right one, or anything.
    fn driver_number(right: u64) -> impl Strategy<Value = u32> {
        let right = u32::try_from(right).unwrap_or(u32::MAX);
        prop_oneof![
            3 => Just(right),
            2 => (0u32..512).prop_map(move |pad| right.saturating_add(pad)),
            1 => (0u32..512).prop_map(move |short| right.saturating_sub(short)),
            1 => any::<u32>(),
        ]
    }

    /// V4L2's stride of plane `i` of `n` from the first plane's `bpl`.
    fn v4l2_stride(i: usize, n: usize, bpl: u128, p: &crate::layout::PlaneFormat) -> u128 {
        match i {
            0 => bpl,
            _ if n == 2 => bpl * u128::from(p.bytes_per_pixel) / u128::from(p.hsub),
            _ => bpl / u128::from(p.hsub),
        }
    }

    /// A driver's `VIDIOC_S_FMT` answer, often nearly consistent.
    fn capture_format() -> impl Strategy<Value = CaptureFormat> {
        (pixel_format(), dimension(), dimension()).prop_flat_map(|(fourcc, width, height)| {
            let formats = fourcc.to_drm().and_then(planes_of).unwrap_or(&[]);
            let bpl = formats.first().map_or(0, |p| {
                u128::from(width.div_ceil(p.hsub)) * u128::from(p.bytes_per_pixel)
            });
            let size: u128 = formats
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    v4l2_stride(i, formats.len(), bpl, p) * u128::from(height.div_ceil(p.vsub))
                })
                .sum();
            let (bpl, size) = (
                u64::try_from(bpl).unwrap_or(u64::MAX),
                u64::try_from(size).unwrap_or(u64::MAX),
            );
            (driver_number(bpl), driver_number(size)).prop_map(move |(bytesperline, sizeimage)| {
                CaptureFormat {
                    fourcc,
                    width,
                    height,
                    bytesperline,
                    sizeimage,
                }
            })
        })
    }

    proptest! {
        #![proptest_config(config(10_000))]

        /// Whatever the driver answers: no panic or overflow; an accepted layout is non-empty, has
        /// the DRM format's planes one after the other with V4L2's strides, and fits
        /// `sizeimage`; a refusal is `NoDrmEquivalent` for unmapped codes, else `Inconsistent`
        /// with a reason that holds.
        #[test]
        fn driver_formats_give_a_fitting_layout_or_a_reason(f in capture_format()) {
            let result = f.layout();
            let Some(drm) = f.fourcc.to_drm() else {
                prop_assert_eq!(result, Err(FormatError::NoDrmEquivalent(f.fourcc)));
                return Ok(());
            };
            let formats = planes_of(drm).unwrap();
            match result {
                Ok(l) => {
                    prop_assert!(f.width > 0 && f.height > 0, "an empty image was accepted");
                    prop_assert_eq!(l.format, drm);
                    prop_assert_eq!(l.planes.len(), formats.len());
                    prop_assert_eq!(&l.buffer_sizes, &vec![u64::from(f.sizeimage)]);
                    prop_assert_eq!(l.check_buffers(&l.buffer_sizes), Ok(()));
                    prop_assert_eq!(l.planes[0].stride, f.bytesperline);
                    let mut next = 0u64;
                    for (p, pf) in l.planes.iter().zip(formats) {
                        prop_assert_eq!(u64::from(p.offset), next);
                        prop_assert_eq!(p.height, f.height.div_ceil(pf.vsub));
                        next += u64::from(p.stride) * u64::from(p.height);
                    }
                    prop_assert!(next <= u64::from(f.sizeimage));
                }
                Err(FormatError::Inconsistent { source, fourcc, width, height, bytesperline, sizeimage }) => {
                    prop_assert_eq!((fourcc, width, height, bytesperline, sizeimage), (f.fourcc, f.width, f.height, f.bytesperline, f.sizeimage));
                    match source {
                        LayoutError::Empty { .. } => prop_assert!(f.width == 0 || f.height == 0),
                        LayoutError::StrideTooSmall { .. } | LayoutError::PlaneOutOfBounds { .. } | LayoutError::TooLarge { .. } => {}
                        e => prop_assert!(false, "unexpected reason {e}"),
                    }
                }
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
    }

    proptest! {
        #![proptest_config(config(4_000))]

        /// A driver that answers exactly V4L2's rules (bytesperline = a row, sizeimage = all
        /// planes) gets its layout, for every mapped format and image the DRM side lays out.
        #[test]
        fn exact_driver_answers_are_accepted(
            (v, drm) in proptest::sample::select(PixelFormat::DRM_EQUIVALENTS),
            half_width in 1u32..2500,
            half_height in 1u32..2500,
        ) {
            // Even sizes: what every subsampled format here lays out.
            let (width, height) = (half_width * 2, half_height * 2);
            let formats = planes_of(drm).unwrap();
            let unaligned = LayoutOptions { stride_align: 1, offset_align: 1, buffer_per_plane: false };
            let drm_layout = Layout::new(drm, width, height, unaligned).unwrap();
            let bpl = u128::from(width / formats[0].hsub * formats[0].bytes_per_pixel);
            let size: u128 = formats
                .iter()
                .enumerate()
                .map(|(i, p)| v4l2_stride(i, formats.len(), bpl, p) * u128::from(height / p.vsub))
                .sum();
            let (bpl, size) = (bpl as u32, size as u32);
            let f = CaptureFormat { fourcc: v, width, height, bytesperline: bpl, sizeimage: size };
            let l = f.layout();
            prop_assert!(l.is_ok(), "{f:?}: {l:?}");
            // Tightly packed, the V4L2 layout is the DRM one (planar chroma: half the stride).
            let l = l.unwrap();
            prop_assert_eq!(&l.planes, &drm_layout.planes);
            prop_assert_eq!(&l.buffer_sizes, &drm_layout.buffer_sizes);
        }
    }
}
