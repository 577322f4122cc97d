//! Choosing how to allocate from the compositor's feedback.
//!
//! The first tranche that accepts the wanted format with the LINEAR modifier (heap and udmabuf
//! buffers are LINEAR) decides: a scan-out tranche means the buffer can go on a plane, so it is
//! allocated through the policy's `scanout` usage (CMA first where displays need contiguous
//! memory); any other tranche means the compositor samples it (`render` usage). When no tranche
//! takes LINEAR, a dma-buf would be refused: fall back to wl_shm and say the path is not
//! zero-copy.

use std::fmt;

use super::feedback::{Feedback, FormatModifier};
use crate::layout::Fourcc;
use crate::policy::MODIFIER_LINEAR;

/// How to get a buffer to the compositor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferPath {
    /// A dma-buf for scan-out: policy usage `scanout`.
    Scanout,
    /// A dma-buf the compositor samples: policy usage `render`.
    Sampling,
    /// wl_shm: a copy into the compositor's memory every frame; not zero-copy.
    Shm,
}

impl BufferPath {
    /// The policy usage to allocate with (`None` for shm).
    pub fn usage(self) -> Option<&'static str> {
        match self {
            BufferPath::Scanout => Some("scanout"),
            BufferPath::Sampling => Some("render"),
            BufferPath::Shm => None,
        }
    }

    /// True for the dma-buf paths.
    pub fn zero_copy(self) -> bool {
        self != BufferPath::Shm
    }
}

/// The decision and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What to do.
    pub path: BufferPath,
    /// Why, for logs and users.
    pub reason: String,
    /// The device the compositor imports to ([`Feedback::import_device`]), for
    /// `set_sampling_device` (linux-dmabuf v6); `None` when unknown.
    pub device: Option<u64>,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.path, self.reason)
    }
}

/// The decision when the compositor has no `zwp_linux_dmabuf_v1` global at all (a pixman-only
/// compositor, a nested session without dma-buf): wl_shm.
pub fn decide_without_linux_dmabuf(format: Fourcc) -> Decision {
    Decision {
        path: BufferPath::Shm,
        reason: format!(
            "the compositor offers no linux-dmabuf: {format} through wl_shm, not zero-copy"
        ),
        device: None,
    }
}

/// Decides for a linux-dmabuf version 3 compositor (no feedback) from the formats it listed
/// with `modifier` events: sampling when it lists `format` with LINEAR, else wl_shm (a dma-buf
/// it did not list would be a protocol error, e.g. a GLES compositor that cannot import).
pub fn decide_v3(listed: &super::ModifierEvents, format: Fourcc) -> Decision {
    let wanted = FormatModifier {
        format: format.0,
        modifier: MODIFIER_LINEAR,
    };
    if listed.0.contains(&wanted) {
        Decision {
            path: BufferPath::Sampling,
            reason: format!("linux-dmabuf v3 lists {format} LINEAR: allocate for sampling"),
            device: None,
        }
    } else {
        Decision {
            path: BufferPath::Shm,
            reason: format!(
                "linux-dmabuf v3 does not list {format} LINEAR ({} formats listed): wl_shm, not \
                 zero-copy",
                listed.0.len()
            ),
            device: None,
        }
    }
}

/// The decision for a bound `zwp_linux_dmabuf_v1` of any version: from `feedback` on version 4
/// and later, from the formats listed with `modifier` events on version 3.
pub fn decide_for_version(
    version: u32,
    feedback: Option<&Feedback>,
    listed: &super::ModifierEvents,
    format: Fourcc,
) -> Decision {
    if version < 4 {
        decide_v3(listed, format)
    } else {
        decide(feedback, format)
    }
}

/// Decides how to allocate a `format` buffer from `feedback` (`None`: no feedback arrived, so
/// dma-bufs are assumed sampled; with a version 3 compositor use [`decide_v3`], which checks
/// the formats it listed).
pub fn decide(feedback: Option<&Feedback>, format: Fourcc) -> Decision {
    let Some(feedback) = feedback else {
        return Decision {
            path: BufferPath::Sampling,
            reason: format!("no feedback (linux-dmabuf before v4): {format} LINEAR for sampling"),
            device: None,
        };
    };
    let device = feedback.import_device();
    let wanted = FormatModifier {
        format: format.0,
        modifier: MODIFIER_LINEAR,
    };
    for (i, t) in feedback.tranches.iter().enumerate() {
        if t.formats.contains(&wanted) {
            return if t.scanout {
                Decision {
                    path: BufferPath::Scanout,
                    reason: format!(
                        "tranche {i} (scanout) takes {format} LINEAR: allocate for scan-out"
                    ),
                    device,
                }
            } else {
                Decision {
                    path: BufferPath::Sampling,
                    reason: format!(
                        "tranche {i} (sampling) takes {format} LINEAR: allocate for sampling"
                    ),
                    device,
                }
            };
        }
    }
    Decision {
        path: BufferPath::Shm,
        reason: format!(
            "no tranche accepts {format} with the LINEAR modifier: wl_shm, not zero-copy"
        ),
        device: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::feedback::Tranche;
    use super::*;

    fn fm(format: Fourcc, modifier: u64) -> FormatModifier {
        FormatModifier {
            format: format.0,
            modifier,
        }
    }

    fn feedback(tranches: Vec<(bool, Vec<FormatModifier>)>) -> Feedback {
        Feedback {
            main_device: Some(1),
            tranches: tranches
                .into_iter()
                .map(|(scanout, formats)| Tranche {
                    target_device: Some(1),
                    formats,
                    scanout,
                    sampling: !scanout,
                })
                .collect(),
        }
    }

    #[test]
    fn a_scanout_tranche_with_linear_means_scanout() {
        let f = feedback(vec![
            (true, vec![fm(Fourcc::ARGB8888, 0)]),
            (false, vec![fm(Fourcc::ARGB8888, 0)]),
        ]);
        let d = decide(Some(&f), Fourcc::ARGB8888);
        assert_eq!(d.path, BufferPath::Scanout);
        assert_eq!(d.path.usage(), Some("scanout"));
        assert!(d.reason.contains("tranche 0"));
    }

    #[test]
    fn the_first_tranche_that_takes_linear_decides() {
        // The scan-out tranche takes the format only tiled: the sampling tranche decides.
        let f = feedback(vec![
            (true, vec![fm(Fourcc::NV12, 0x0100_0000_0000_0001)]),
            (false, vec![fm(Fourcc::NV12, 0)]),
        ]);
        assert_eq!(decide(Some(&f), Fourcc::NV12).path, BufferPath::Sampling);
    }

    #[test]
    fn no_linear_anywhere_falls_back_to_shm_and_says_so() {
        let f = feedback(vec![(
            false,
            vec![fm(Fourcc::XRGB8888, 0x0100_0000_0000_0001)],
        )]);
        let d = decide(Some(&f), Fourcc::XRGB8888);
        assert_eq!(d.path, BufferPath::Shm);
        assert!(!d.path.zero_copy());
        assert!(d.reason.contains("not zero-copy"), "{d}");
    }

    #[test]
    fn without_feedback_dmabufs_are_sampled() {
        assert_eq!(decide(None, Fourcc::ARGB8888).path, BufferPath::Sampling);
        let listed = super::super::ModifierEvents(vec![FormatModifier {
            format: Fourcc::ARGB8888.0,
            modifier: MODIFIER_LINEAR,
        }]);
        assert_eq!(
            decide_v3(&listed, Fourcc::ARGB8888).path,
            BufferPath::Sampling
        );
        let d = decide_v3(&listed, Fourcc::XRGB8888);
        assert_eq!(d.path, BufferPath::Shm, "{d}");
        let d = decide_v3(&super::super::ModifierEvents::default(), Fourcc::ARGB8888);
        assert!(d.reason.contains("0 formats listed"), "{d}");
    }
}
