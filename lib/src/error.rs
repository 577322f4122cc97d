//! Printing an error with its causes.
//!
//! wayheap's errors follow one convention: an error's `Display` says what went wrong at its own
//! layer and, where it can, what to do about it, and does **not** repeat its cause. The cause is
//! its [`source()`](std::error::Error::source), and so on down the chain. So `format!("{e}")`
//! prints one layer; to print them all, as a program's last word or a log line, use [`chain`] or
//! [`Report`]:
//!
//! ```
//! use wayheap::policy::Policy;
//!
//! let err = Policy::load("/nonexistent/policy".as_ref()).unwrap_err();
//! assert_eq!(err.to_string(), "reading policy file /nonexistent/policy failed");
//! let all = wayheap::error::chain(&err);
//! assert!(all.starts_with("reading policy file /nonexistent/policy failed: No such file"));
//! assert_eq!(all, wayheap::error::Report(&err).to_string());
//! ```
//!
//! Errors of other crates do not all keep that convention (some print their cause too), so the
//! chain leaves out a cause whose text is already printed.

use std::error::Error;
use std::fmt;

/// `err` and each of its causes (`source()`, recursively), joined with `": "`; a cause whose text
/// is already in what was printed is left out.
pub fn chain(err: &dyn Error) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = e.source();
    }
    out
}

/// Displays an error with its whole chain of causes, as [`chain`] does: for `format!`, `{}` in
/// `eprintln!`, or `%` in a `tracing` field.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a>(pub &'a dyn Error);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&chain(self.0))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use rustix::io::Errno;

    use super::*;
    use crate::export::ExportError;
    use crate::heap::HeapError;
    use crate::layout::{Fourcc, LayoutError};
    use crate::policy::{AllocError, PolicyError};

    /// `e`'s own text does not contain its source's, and the chain prints the source once.
    fn assert_source_printed_once(e: &dyn Error) {
        let source = e.source().expect("the error has a source").to_string();
        let own = e.to_string();
        assert!(
            !own.contains(&source),
            "Display repeats the source: {own:?} contains {source:?}"
        );
        let all = chain(e);
        assert_eq!(all.matches(&source).count(), 1, "{all}");
        assert!(all.starts_with(&own), "{all}");
    }

    #[test]
    fn alloc_errors_leave_their_cause_to_the_chain() {
        assert_source_printed_once(&AllocError::Heap {
            usage: "camera".into(),
            source: HeapError::InvalidArgument {
                heap: "system".into(),
                len: 4096,
            },
        });
        assert_source_printed_once(&AllocError::Export {
            usage: "frames".into(),
            source: ExportError::WriteSealed,
        });
    }

    #[test]
    fn policy_read_errors_leave_their_cause_to_the_chain() {
        assert_source_printed_once(&PolicyError::Read {
            path: PathBuf::from("/etc/wayheap/policy"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }

    #[cfg(feature = "v4l2")]
    #[test]
    fn camera_errors_leave_their_cause_to_the_chain() {
        use crate::dmabuf::DmaBufError;
        use crate::v4l2::{CameraError, FormatError, PixelFormat};

        let alloc = || AllocError::Exhausted {
            usage: "camera".into(),
            skipped: Vec::new(),
        };
        assert_source_printed_once(&CameraError::Alloc(alloc()));
        assert_source_printed_once(&CameraError::NeedsContiguous {
            reason: "the camera needs physically contiguous memory".into(),
            source: alloc(),
        });
        assert_source_printed_once(&CameraError::Export {
            index: 1,
            source: DmaBufError::NotADmaBuf { fd: 7 },
        });
        assert_source_printed_once(&FormatError::Inconsistent {
            fourcc: PixelFormat::NV12,
            width: 64,
            height: 64,
            bytesperline: 16,
            sizeimage: 100,
            source: LayoutError::UnsupportedFormat(Fourcc::NV12),
        });
    }

    #[test]
    fn transparent_wrappers_do_not_double_the_chain() {
        let e = AllocError::Layout(LayoutError::UnsupportedFormat(Fourcc(0)));
        assert_eq!(chain(&e), e.to_string());
    }

    /// An error in the other convention: its Display includes its source's.
    #[derive(Debug)]
    struct Loud(HeapError);

    impl fmt::Display for Loud {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "opening failed: {}", self.0)
        }
    }

    impl Error for Loud {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_already_printed_is_not_printed_again() {
        let inner = HeapError::Io {
            op: "open",
            path: PathBuf::from("/dev/dma_heap/system"),
            errno: Errno::IO,
        };
        let text = inner.to_string();
        let all = chain(&Loud(inner));
        assert_eq!(all.matches(&text).count(), 1, "{all}");
        assert_eq!(
            Report(&Loud(HeapError::ZeroLength { heap: "x".into() })).to_string(),
            { "opening failed: refusing a zero-length allocation from heap x" }
        );
    }
}
