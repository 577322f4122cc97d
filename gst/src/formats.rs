//! GStreamer's video formats and the DRM fourccs wayheap lays out: the same memory order, two
//! names (GStreamer names bytes in memory, DRM names a little-endian word).

use gst_video::VideoFormat;
use wayheap::layout::Fourcc;

/// Every format the elements take, with its DRM fourcc.
pub const FORMATS: &[(VideoFormat, Fourcc)] = &[
    (VideoFormat::Bgrx, Fourcc::XRGB8888),
    (VideoFormat::Bgra, Fourcc::ARGB8888),
    (VideoFormat::Rgbx, Fourcc::XBGR8888),
    (VideoFormat::Rgba, Fourcc::ABGR8888),
    (VideoFormat::Rgb16, Fourcc::RGB565),
    (VideoFormat::Nv12, Fourcc::NV12),
    (VideoFormat::Nv21, Fourcc::NV21),
    (VideoFormat::Nv16, Fourcc::NV16),
    (VideoFormat::I420, Fourcc::YUV420),
    (VideoFormat::Yv12, Fourcc::YVU420),
    (VideoFormat::Yuy2, Fourcc::YUYV),
    (VideoFormat::Uyvy, Fourcc::UYVY),
];

/// The DRM fourcc of a GStreamer format, if the elements take it.
pub fn fourcc(format: VideoFormat) -> Option<Fourcc> {
    FORMATS.iter().find(|(f, _)| *f == format).map(|(_, c)| *c)
}

/// `video/x-raw` with every format of [`FORMATS`], any size and rate.
pub fn caps() -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format_list(FORMATS.iter().map(|(f, _)| *f))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_rgb_names_the_same_bytes() {
        // GStreamer's BGRx is B, G, R, x in memory: DRM's XRGB8888 (a little-endian word).
        assert_eq!(fourcc(VideoFormat::Bgrx), Some(Fourcc::XRGB8888));
        assert_eq!(fourcc(VideoFormat::Rgba), Some(Fourcc::ABGR8888));
        assert_eq!(fourcc(VideoFormat::Nv12), Some(Fourcc::NV12));
        assert_eq!(fourcc(VideoFormat::Rgb), None);
    }
}
