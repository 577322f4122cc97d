//! Validation of client dma-bufs from linux-dmabuf, before anything touches them.
//!
//! Smithay 0.7 checks the fourcc, and the first plane's bounds when `lseek` works on its fd. A
//! hostile or buggy client can still send: a modifier nobody advertised, too few planes for the
//! format, a chroma plane past the end of its buffer, a memfd or a socket instead of a dma-buf.
//! [`validate_client_dmabuf`] catches all of these, overflow-safe, and
//! [`DmabufRejection::notify`] answers the client with the matching protocol error (or the
//! `failed` event), so the compositor goes on serving everyone else.

use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::fs::SeekFrom;
use smithay::backend::allocator::dmabuf::Dmabuf;
use smithay::backend::allocator::{Buffer, Format, Fourcc, Modifier};
use smithay::wayland::dmabuf::ImportNotifier;

use crate::layout::{Fourcc as LayoutFourcc, LayoutError, check_plane, planes_of};

/// Why a client dma-buf was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DmabufRejection {
    /// Zero or negative size.
    #[error("invalid dimensions {width}x{height}")]
    InvalidDimensions {
        /// Width.
        width: i32,
        /// Height.
        height: i32,
    },
    /// The format with this modifier was not advertised.
    #[error("format {format:?} with modifier {modifier:?} was not advertised")]
    InvalidFormat {
        /// Format.
        format: Fourcc,
        /// Modifier.
        modifier: Modifier,
    },
    /// Too few or too many planes for the format.
    #[error("{format:?} has {expected} planes, the client sent {got}")]
    Incomplete {
        /// Format.
        format: Fourcc,
        /// Planes the format has.
        expected: usize,
        /// Planes sent.
        got: usize,
    },
    /// A plane does not fit its buffer.
    #[error("plane {plane}: {detail}")]
    OutOfBounds {
        /// Plane index.
        plane: usize,
        /// What does not fit.
        detail: String,
    },
    /// A plane's fd is not a dma-buf.
    #[error("plane {plane}: the fd is not a dma-buf ({detail})")]
    NotADmaBuf {
        /// Plane index.
        plane: usize,
        /// What it is instead.
        detail: String,
    },
}

impl DmabufRejection {
    /// Answers the client: `incomplete`, `invalid_dimensions` and `invalid_format` are protocol
    /// errors; the rest is the `failed` event for `create` and `invalid_wl_buffer` for
    /// `create_immed`, as the protocol asks.
    pub fn notify(&self, notifier: ImportNotifier) {
        match self {
            DmabufRejection::Incomplete { .. } => notifier.incomplete(),
            DmabufRejection::InvalidDimensions { .. } => notifier.invalid_dimensions(),
            DmabufRejection::InvalidFormat { .. } => notifier.invalid_format(),
            DmabufRejection::OutOfBounds { .. } | DmabufRejection::NotADmaBuf { .. } => {
                notifier.failed()
            }
        }
    }
}

/// The size of a dma-buf fd (`lseek(SEEK_END)`), after checking through fdinfo that it is one.
pub fn dmabuf_fd_size(fd: BorrowedFd<'_>) -> Result<u64, String> {
    let text = std::fs::read(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
        .map_err(|e| format!("fdinfo unreadable: {e}"))?;
    if crate::dmabuf::fdinfo::parse_bytes(&text).is_none() {
        return Err("no exporter in its fdinfo: a memfd, file or socket".into());
    }
    let size = rustix::fs::seek(fd, SeekFrom::End(0)).map_err(|e| format!("lseek: {e}"))?;
    let _ = rustix::fs::seek(fd, SeekFrom::Start(0));
    Ok(size)
}

/// Checks a client's dma-buf against the formats advertised (`advertised(format)`), the
/// format's plane count, and every plane's bounds in its buffer.
pub fn validate_client_dmabuf(
    dmabuf: &Dmabuf,
    advertised: impl Fn(&Format) -> bool,
) -> Result<(), DmabufRejection> {
    let size = dmabuf.size();
    if size.w < 1 || size.h < 1 {
        return Err(DmabufRejection::InvalidDimensions {
            width: size.w,
            height: size.h,
        });
    }
    let format = dmabuf.format();
    if !advertised(&format) {
        return Err(DmabufRejection::InvalidFormat {
            format: format.code,
            modifier: format.modifier,
        });
    }
    let fds: Vec<BorrowedFd<'_>> = dmabuf.handles().collect();
    let sizes = fds
        .iter()
        .enumerate()
        .map(|(plane, fd)| {
            dmabuf_fd_size(*fd).map_err(|detail| DmabufRejection::NotADmaBuf { plane, detail })
        })
        .collect::<Result<Vec<u64>, _>>()?;
    validate_planes(
        format.code,
        size.w as u32,
        size.h as u32,
        &dmabuf
            .offsets()
            .zip(dmabuf.strides())
            .zip(sizes)
            .map(|((o, s), z)| (o, s, z))
            .collect::<Vec<_>>(),
    )
}

/// The plane rules on plain numbers: `(offset, stride, buffer size)` per plane. Formats the
/// layout table does not know are checked with full-height planes only for plane 0.
pub fn validate_planes(
    format: Fourcc,
    width: u32,
    height: u32,
    planes: &[(u32, u32, u64)],
) -> Result<(), DmabufRejection> {
    let lf = LayoutFourcc(format as u32);
    if planes.is_empty() {
        // Every format has a plane (Smithay refuses a buffer without any before this).
        return Err(DmabufRejection::Incomplete {
            format,
            expected: planes_of(lf).map_or(1, <[_]>::len),
            got: 0,
        });
    }
    let Some(formats) = planes_of(lf) else {
        if let Some(&(offset, stride, buf)) = planes.first() {
            let end = u64::from(stride)
                .checked_mul(u64::from(height))
                .and_then(|b| b.checked_add(u64::from(offset)));
            if end.is_none_or(|e| e > buf) {
                return Err(DmabufRejection::OutOfBounds {
                    plane: 0,
                    detail: format!(
                        "offset {offset} + stride {stride} x {height} rows exceeds the {buf}-byte buffer"
                    ),
                });
            }
        }
        return Ok(());
    };
    if formats.len() != planes.len() {
        return Err(DmabufRejection::Incomplete {
            format,
            expected: formats.len(),
            got: planes.len(),
        });
    }
    for (i, (&(offset, stride, buf), pf)) in planes.iter().zip(formats).enumerate() {
        let rows = height.div_ceil(pf.vsub);
        check_plane(lf, width, i, u64::from(offset), stride, rows, buf).map_err(|e| match e {
            LayoutError::PlaneCount { expected, got, .. } => DmabufRejection::Incomplete {
                format,
                expected,
                got,
            },
            other => DmabufRejection::OutOfBounds {
                plane: i,
                detail: other.to_string(),
            },
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_nv12_passes() {
        let y = 640 * 480;
        assert_eq!(
            validate_planes(
                Fourcc::Nv12,
                640,
                480,
                &[(0, 640, y * 3 / 2), (y as u32, 640, y * 3 / 2)]
            ),
            Ok(())
        );
    }

    #[test]
    fn plane_count_is_checked() {
        let r = validate_planes(Fourcc::Nv12, 64, 64, &[(0, 64, 8192)]);
        assert!(matches!(
            r,
            Err(DmabufRejection::Incomplete {
                expected: 2,
                got: 1,
                ..
            })
        ));
    }

    #[test]
    fn chroma_planes_are_bounded_too() {
        let y = 64 * 64;
        // UV plane starts at the end of the buffer: smithay checks only plane 0 this way.
        let r = validate_planes(Fourcc::Nv12, 64, 64, &[(0, 64, y), (y as u32, 64, y)]);
        assert!(
            matches!(r, Err(DmabufRejection::OutOfBounds { plane: 1, .. })),
            "{r:?}"
        );
    }

    #[test]
    fn overflowing_offsets_and_strides_are_refused_without_panicking() {
        for (offset, stride) in [(u32::MAX, 4), (4, u32::MAX), (u32::MAX, u32::MAX)] {
            let r = validate_planes(Fourcc::Argb8888, 1, u32::MAX, &[(offset, stride, 1 << 30)]);
            assert!(
                matches!(r, Err(DmabufRejection::OutOfBounds { .. })),
                "{offset} {stride}: {r:?}"
            );
        }
        let r = validate_planes(Fourcc::Argb8888, 16, 16, &[(0, 60, 4096)]);
        assert!(
            matches!(r, Err(DmabufRejection::OutOfBounds { .. })),
            "stride below a row: {r:?}"
        );
    }

    #[test]
    fn no_planes_is_incomplete_for_every_format() {
        // Found by proptests::planes_are_checked_exactly_by_the_rule: a format the layout table
        // does not know was accepted with no plane at all.
        for (format, expected) in [(Fourcc::R8, 1), (Fourcc::Nv12, 2)] {
            assert_eq!(
                validate_planes(format, 16, 16, &[]),
                Err(DmabufRejection::Incomplete {
                    format,
                    expected,
                    got: 0
                })
            );
        }
    }

    #[test]
    fn too_small_buffers_are_refused() {
        let r = validate_planes(Fourcc::Xrgb8888, 64, 64, &[(0, 256, 256 * 63)]);
        assert!(matches!(
            r,
            Err(DmabufRejection::OutOfBounds { plane: 0, .. })
        ));
    }

    #[test]
    fn memfds_are_not_dmabufs() {
        let memfd = rustix::fs::memfd_create("x", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&memfd, 4096).unwrap();
        let err = dmabuf_fd_size(std::os::fd::AsFd::as_fd(&memfd)).unwrap_err();
        assert!(err.contains("memfd"), "{err}");
    }
}

/// Property tests (issue 15) of the checks on a client's plane numbers: 10 000 + 5 000 =
/// 15 000 cases per run.
#[cfg(test)]
mod proptests {
    use super::*;
    use crate::layout::proptests::{SUPPORTED, config, dimension};
    use crate::layout::{Layout, LayoutOptions};
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// Formats the layout table knows, and some it does not.
    fn format() -> impl Strategy<Value = Fourcc> {
        let known: Vec<Fourcc> = SUPPORTED
            .iter()
            .map(|f| Fourcc::try_from(f.0).expect("a DRM format"))
            .collect();
        prop_oneof![
            4 => proptest::sample::select(known),
            1 => proptest::sample::select(vec![Fourcc::R8, Fourcc::Gr88, Fourcc::Abgr16161616f, Fourcc::Nv24, Fourcc::Yuv422]),
        ]
    }

    /// A plane as a client sends it: numbers near a real layout's, or anything.
    fn plane() -> impl Strategy<Value = (u32, u32, u64)> {
        (
            prop_oneof![3 => 0u32..1 << 22, 1 => any::<u32>()],
            prop_oneof![3 => 0u32..1 << 14, 1 => any::<u32>()],
            prop_oneof![3 => 0u64..1 << 26, 1 => any::<u64>()],
        )
    }

    proptest! {
        #![proptest_config(config(10_000))]

        /// Any client numbers: no panic or overflow, and the answer is the rule computed in
        /// u128: the format's plane count, then for each plane in order a stride that holds a
        /// row and `offset + stride * rows` within its buffer (plane 0 at full height for a
        /// format the table does not know).
        #[test]
        fn planes_are_checked_exactly_by_the_rule(
            format in format(),
            width in dimension().prop_map(|w| w.max(1)),
            height in dimension().prop_map(|h| h.max(1)),
            planes in vec(plane(), 0..5),
        ) {
            let result = validate_planes(format, width, height, &planes);
            let formats = planes_of(LayoutFourcc(format as u32));
            let expected_planes = formats.map_or(1, <[_]>::len);
            if planes.is_empty() || formats.is_some_and(|f| f.len() != planes.len()) {
                prop_assert_eq!(result, Err(DmabufRejection::Incomplete { format, expected: expected_planes, got: planes.len() }));
                return Ok(());
            }
            let first_bad = match formats {
                None => {
                    let (offset, stride, size) = planes[0];
                    (u128::from(offset) + u128::from(stride) * u128::from(height) > u128::from(size)).then_some(0)
                }
                Some(formats) => planes.iter().zip(formats).position(|(&(offset, stride, size), pf)| {
                    let min = u128::from(width.div_ceil(pf.hsub)) * u128::from(pf.bytes_per_pixel);
                    let rows = u128::from(height.div_ceil(pf.vsub));
                    u128::from(stride) < min || u128::from(offset) + u128::from(stride) * rows > u128::from(size)
                }),
            };
            match first_bad {
                None => prop_assert_eq!(result, Ok(())),
                Some(i) => prop_assert!(
                    matches!(&result, Err(DmabufRejection::OutOfBounds { plane, detail }) if *plane == i && !detail.is_empty()),
                    "plane {i}: {result:?}"
                ),
            }
        }
    }

    proptest! {
        #![proptest_config(config(5_000))]

        /// What the library lays out, a compositor accepts; one byte less in any buffer, it
        /// refuses, naming a plane of that buffer.
        #[test]
        fn library_layouts_pass_and_short_buffers_do_not(
            format in proptest::sample::select(SUPPORTED),
            half_width in 1u32..2048,
            half_height in 1u32..2048,
            per_plane in any::<bool>(),
            align_bits in 0u32..9,
            short in any::<proptest::sample::Index>(),
        ) {
            let opts = LayoutOptions { stride_align: 1 << align_bits, offset_align: 1 << align_bits, buffer_per_plane: per_plane };
            let l = Layout::new(format, half_width * 2, half_height * 2, opts).unwrap();
            let planes = |sizes: &[u64]| -> Vec<(u32, u32, u64)> {
                l.planes.iter().map(|p| (p.offset, p.stride, sizes[p.buffer])).collect()
            };
            let fmt = Fourcc::try_from(format.0).unwrap();
            prop_assert_eq!(validate_planes(fmt, l.width, l.height, &planes(&l.buffer_sizes)), Ok(()));
            let mut sizes = l.buffer_sizes.clone();
            let b = short.index(sizes.len());
            sizes[b] -= 1;
            let r = validate_planes(fmt, l.width, l.height, &planes(&sizes));
            prop_assert!(
                matches!(&r, Err(DmabufRejection::OutOfBounds { plane, .. }) if l.planes[*plane].buffer == b),
                "{r:?}"
            );
        }
    }
}
