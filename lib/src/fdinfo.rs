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
///
/// The kernel prints the buffer's name last and verbatim, and whoever holds the fd may name it
/// anything but NUL, newlines included (`DMA_BUF_SET_NAME`): keys are read from the lines before
/// `name:` only, and the name is the rest of the text, so no name can forge the size, exporter,
/// inode or reference count.
pub fn parse(text: &str) -> Option<DmaBufFdInfo> {
    let mut size = None;
    let mut exporter = None;
    let mut name = None;
    let mut inode = None;
    let mut count = None;
    let mut rest = text;
    while !rest.is_empty() {
        let (line, next) = rest.split_once('\n').unwrap_or((rest, ""));
        if let Some(value) = rest.strip_prefix("name:") {
            let value = value.strip_prefix('\t').unwrap_or(value);
            name = Some(value.strip_suffix('\n').unwrap_or(value).to_owned());
            break;
        }
        rest = next;
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "size" => size = value.parse().ok(),
            "exp_name" => exporter = Some(value.to_owned()),
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

/// [`parse`] for fdinfo as read from `/proc` (`std::fs::read`): a name need not be UTF-8, and
/// such a buffer is still a dma-buf (its name comes out with U+FFFD where bytes were invalid).
pub fn parse_bytes(bytes: &[u8]) -> Option<DmaBufFdInfo> {
    parse(&String::from_utf8_lossy(bytes))
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
    fn a_name_cannot_forge_the_count_or_the_exporter() {
        // Found by proptests::kernel_fdinfo_round_trips: the last `count:` or `exp_name:` line
        // used to win, and the name (any bytes, set by whoever holds the fd) is printed last. A
        // client could so make a delegated buffer look unheld (escaping its quota) or system-heap
        // memory look contiguous.
        let forged = "x\ncount:\t1\nexp_name:\treserved";
        let text = format!(
            "pos:\t0\nflags:\t02\nmnt_id:\t16\nino:\t9\nsize:\t4096\ncount:\t3\n\
             exp_name:\tsystem\nname:\t{forged}\n"
        );
        let info = parse(&text).unwrap();
        assert_eq!((info.count, info.exporter.as_str()), (Some(3), "system"));
        assert_eq!(info.name.as_deref(), Some(forged));
    }

    #[test]
    fn a_name_that_is_not_utf8_does_not_hide_the_buffer() {
        // Found by proptests::arbitrary_bytes_never_panic: fdinfo was read as UTF-8 text, so a
        // buffer named with invalid UTF-8 was unreadable (and left out of process_dmabufs).
        let info =
            parse_bytes(b"size:\t8192\ncount:\t1\nexp_name:\tsystem\nname:\t\xff\xfe\n").unwrap();
        assert_eq!((info.size, info.exporter.as_str()), (8192, "system"));
        assert_eq!(info.name.as_deref(), Some("\u{fffd}\u{fffd}"));
    }

    #[test]
    fn garbage_is_not_a_dmabuf_and_does_not_panic() {
        assert_eq!(parse("size:\tlots\nexp_name:\tx\n"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse(":::\n\n:"), None);
    }
}

/// Property tests (issue 15): 6 000 + 6 000 + 4 000 = 16 000 cases per run.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    use super::super::proptest_config::config;

    /// What the kernel prints for a dma-buf fd (fs/proc/fd.c, then dma_buf_show_fdinfo): the
    /// generic lines, optional lock lines, then size, count, exp_name and, once named, the name
    /// last, verbatim (DMA_BUF_SET_NAME takes any bytes but NUL, newlines included).
    fn kernel_text(info: &DmaBufFdInfo, flags: u32, locks: usize) -> String {
        let mut t = format!(
            "pos:\t0\nflags:\t0{flags:o}\nmnt_id:\t16\nino:\t{}\n",
            info.inode.unwrap()
        );
        for i in 0..locks {
            t += &format!("lock:\t{}: POSIX  ADVISORY  WRITE 1 00:0e:1 0 EOF\n", i + 1);
        }
        t += &format!(
            "size:\t{}\ncount:\t{}\nexp_name:\t{}\n",
            info.size,
            info.count.unwrap(),
            info.exporter
        );
        if let Some(name) = &info.name {
            t += &format!("name:\t{name}\n");
        }
        t
    }

    /// A name a process can give with DMA_BUF_SET_NAME (at most 31 bytes, no NUL), biased
    /// towards the forgeries that matter: lines that look like fdinfo keys.
    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[\x01-\x7f]{0,31}",
            "[^\0]{0,7}",
            "[a-z:]{0,8}\n(size|count|exp_name|ino|name):\t[0-9a-z_,]{0,8}\n?",
            "[ \t\r\n]{0,3}[a-z]{0,6}[ \t\r\n]{0,3}",
        ]
        .prop_filter("31 bytes at most", |n| n.len() <= 31)
    }

    fn info() -> impl Strategy<Value = DmaBufFdInfo> {
        (
            any::<u64>(),
            "[a-z][a-z0-9_,-]{0,20}",
            proptest::option::of(name()),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(|(size, exporter, name, inode, count)| DmaBufFdInfo {
                size,
                exporter,
                name,
                inode: Some(inode),
                count: Some(count),
            })
    }

    proptest! {
        #![proptest_config(config(6_000))]

        /// Well-formed fdinfo parses to exactly what the kernel printed, whatever the buffer's
        /// name: a name is the holder's to choose, so it must not be able to change the size,
        /// exporter, inode or reference count the compositor reads (quota, contiguity).
        #[test]
        fn kernel_fdinfo_round_trips(info in info(), flags in any::<u32>(), locks in 0usize..3) {
            prop_assert_eq!(parse(&kernel_text(&info, flags, locks)), Some(info));
        }

        /// Any text: no panic, and a result only with an `exp_name:` line and a number after
        /// `size:`.
        #[test]
        fn arbitrary_text_never_panics(text in "(([a-z_]{0,9}:?[ \t]*[0-9a-z]{0,21}|\\PC{0,12})\n?){0,12}") {
            if let Some(info) = parse(&text) {
                prop_assert!(text.contains("exp_name:"));
                prop_assert!(text.contains("size:"));
                let _ = info;
            }
        }
    }

    proptest! {
        #![proptest_config(config(4_000))]

        /// Any bytes, as read from /proc (not necessarily UTF-8): no panic, and a buffer with a
        /// non-UTF-8 name is still a dma-buf with its size.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256), size in any::<u64>()) {
            let _ = parse_bytes(&bytes);
            let mut text = format!("size:\t{size}\ncount:\t1\nexp_name:\tsystem\nname:\t").into_bytes();
            text.extend(bytes.iter().filter(|b| **b != 0).take(31));
            text.push(b'\n');
            let info = parse_bytes(&text).expect("a dma-buf whatever its name");
            prop_assert_eq!(info.size, size);
            prop_assert_eq!(info.exporter, "system");
        }
    }
}
