//! Parsing `/proc/<pid>/fdinfo/<fd>` of a dma-buf.
//!
//! The dma-buf core prints `size:`, `count:`, `exp_name:` and, once named, `name:` after the
//! generic `pos:`/`flags:`/`mnt_id:`/`ino:` lines. `exp_name` is what tells a dma-buf from any
//! other fd: no other file type prints it.
//!
//! Shared by [`crate::dmabuf`] (is this fd a dma-buf, and what is it?) and [`crate::accounting`]
//! (a process's dma-bufs); it depends on neither, so neither depends on the other through it.
//! Also reachable as `wayheap::dmabuf::fdinfo`, its former path.

/// What the kernel says about one dma-buf fd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmaBufFdInfo {
    /// Size in bytes.
    pub size: u64,
    /// The exporter: a heap's name (`system`, `default_cma_region`), `udmabuf`, a DRM driver...
    pub exporter: String,
    /// The name given with `DMA_BUF_SET_NAME`, if any.
    pub name: Option<String>,
    /// The dma-buf's inode: equal for two fds of the same buffer.
    pub inode: Option<u64>,
    /// References to the buffer's file other than this fdinfo read.
    pub count: Option<u64>,
}

/// Parses fdinfo text; `None` when it is not a dma-buf's (no `exp_name:` line) or is malformed.
pub fn parse(text: &str) -> Option<DmaBufFdInfo> {
    let mut size = None;
    let mut exporter = None;
    let mut name = None;
    let mut inode = None;
    let mut count = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "size" => size = value.parse().ok(),
            "exp_name" => exporter = Some(value.to_owned()),
            "name" => name = Some(value.to_owned()),
            "ino" => inode = value.parse().ok(),
            "count" => count = value.parse().ok(),
            _ => {}
        }
    }
    Some(DmaBufFdInfo {
        size: size?,
        exporter: exporter?,
        name,
        inode,
        count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_named_heap_buffer() {
        let text = "pos:\t0\nflags:\t02000002\nmnt_id:\t16\nino:\t1234\nsize:\t8388608\ncount:\t1\n\
                    exp_name:\tsystem\nname:\tsystem:camera\n";
        let info = parse(text).unwrap();
        assert_eq!(info.size, 8 << 20);
        assert_eq!(info.exporter, "system");
        assert_eq!(info.name.as_deref(), Some("system:camera"));
        assert_eq!(info.inode, Some(1234));
    }

    #[test]
    fn a_regular_file_is_not_a_dmabuf() {
        assert_eq!(parse("pos:\t0\nflags:\t02\nmnt_id:\t20\nino:\t77\n"), None);
    }

    #[test]
    fn this_module_is_a_leaf() {
        // dmabuf and accounting both use it; a use of either here would bring the cycle back.
        let src = include_str!("fdinfo.rs");
        assert!(!src.contains(concat!("use ", "crate::")));
    }

    #[test]
    fn garbage_is_not_a_dmabuf_and_does_not_panic() {
        assert_eq!(parse("size:\tlots\nexp_name:\tx\n"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse(":::\n\n:"), None);
    }
}
