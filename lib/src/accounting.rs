//! What this process holds in dma-bufs: the library's own ledger (per provider and usage), and a
//! reader for any process's dma-buf fds from `/proc/<pid>/fdinfo`.
//!
//! The kernel charges heap memory to no cgroup, so a process that leaks dma-bufs is invisible to
//! memory limits; the ledger makes it visible from the inside, and [`process_dmabufs`] from the
//! outside (it also sees buffers the library did not allocate).
//!
//! ## How to use
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let buf = wayheap::heap::Heap::open("system")?.allocate_for(1 << 20, "camera")?;
//! for row in wayheap::accounting::snapshot() {
//!     println!("{} / {}: {} buffers, {} bytes", row.provider, row.usage, row.live_buffers, row.live_bytes);
//! }
//! for fd in wayheap::accounting::process_dmabufs(None)? {
//!     println!("fd {}: {} bytes from {} named {:?}", fd.fd, fd.info.size, fd.info.exporter, fd.info.name);
//! }
//! # drop(buf);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::fdinfo::{self, DmaBufFdInfo};

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    live_buffers: u64,
    live_bytes: u64,
    allocated_buffers: u64,
}

#[derive(Debug, Default)]
struct Ledger {
    rows: BTreeMap<(String, String), Counters>,
    copies: u64,
    copied_bytes: u64,
}

static LEDGER: Mutex<Ledger> = Mutex::new(Ledger {
    rows: BTreeMap::new(),
    copies: 0,
    copied_bytes: 0,
});

fn ledger() -> std::sync::MutexGuard<'static, Ledger> {
    // A panic while holding the lock leaves plain counters behind: still usable.
    LEDGER.lock().unwrap_or_else(|e| e.into_inner())
}

/// One row of the ledger: buffers the library allocated for a usage from a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    /// The heap's name, or `udmabuf`.
    pub provider: String,
    /// The usage the buffers were allocated for (`""` when none was given).
    pub usage: String,
    /// Buffers alive now.
    pub live_buffers: u64,
    /// Their bytes.
    pub live_bytes: u64,
    /// Buffers allocated since the process started, freed or not.
    pub allocated_buffers: u64,
}

/// The ledger now, one row per (provider, usage) ever used.
pub fn snapshot() -> Vec<AccountRow> {
    ledger()
        .rows
        .iter()
        .map(|((provider, usage), c)| AccountRow {
            provider: provider.clone(),
            usage: usage.clone(),
            live_buffers: c.live_buffers,
            live_bytes: c.live_bytes,
            allocated_buffers: c.allocated_buffers,
        })
        .collect()
}

/// Live buffers and bytes for one provider, over all usages.
pub fn live_for_provider(provider: &str) -> (u64, u64) {
    ledger()
        .rows
        .iter()
        .filter(|((p, _), _)| p == provider)
        .fold((0, 0), |(n, b), (_, c)| {
            (n + c.live_buffers, b + c.live_bytes)
        })
}

/// How many CPU copies into dma-bufs the library made ([`crate::export::copy_into_export`]), and
/// their bytes. Zero-copy paths never add to it.
pub fn copies() -> (u64, u64) {
    let l = ledger();
    (l.copies, l.copied_bytes)
}

pub(crate) fn count_copy(bytes: usize) {
    let mut l = ledger();
    l.copies += 1;
    l.copied_bytes += bytes as u64;
}

/// A live buffer's entry in the ledger; removes itself when the buffer is dropped.
#[derive(Debug)]
pub(crate) struct Ticket {
    provider: String,
    usage: String,
    bytes: u64,
}

impl Ticket {
    pub(crate) fn open(provider: &str, usage: &str, bytes: u64) -> Ticket {
        let mut l = ledger();
        let c = l
            .rows
            .entry((provider.to_owned(), usage.to_owned()))
            .or_default();
        c.live_buffers += 1;
        c.live_bytes += bytes;
        c.allocated_buffers += 1;
        Ticket {
            provider: provider.to_owned(),
            usage: usage.to_owned(),
            bytes,
        }
    }

    pub(crate) fn usage(&self) -> &str {
        &self.usage
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut l = ledger();
        if let Some(c) = l.rows.get_mut(&(
            std::mem::take(&mut self.provider),
            std::mem::take(&mut self.usage),
        )) {
            c.live_buffers -= 1;
            c.live_bytes -= self.bytes;
        }
    }
}

/// One dma-buf fd of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessDmaBuf {
    /// The fd number in that process.
    pub fd: i32,
    /// What fdinfo says of it.
    pub info: DmaBufFdInfo,
}

/// Every dma-buf fd of process `pid` (`None`: this process), read from `/proc/<pid>/fdinfo`.
///
/// Fds that close while being read are skipped; another process's fds need ptrace access.
pub fn process_dmabufs(pid: Option<u32>) -> std::io::Result<Vec<ProcessDmaBuf>> {
    let base = match pid {
        Some(pid) => format!("/proc/{pid}/fdinfo"),
        None => "/proc/self/fdinfo".to_owned(),
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&base)? {
        let entry = entry?;
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(text) = std::fs::read(entry.path()) else {
            continue;
        };
        if let Some(info) = fdinfo::parse_bytes(&text) {
            out.push(ProcessDmaBuf { fd, info });
        }
    }
    out.sort_by_key(|d| d.fd);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_ledger_does_not_depend_on_dmabuf() {
        // dmabuf holds a Ticket of this ledger; a use of dmabuf here would make a module cycle
        // (fdinfo parsing is in crate::fdinfo for that reason).
        let src = include_str!("accounting.rs");
        assert!(!src.contains(concat!("crate::", "dmabuf")));
    }

    #[test]
    fn tickets_count_while_alive() {
        let provider = "test-provider-tickets";
        let t = super::Ticket::open(provider, "u", 4096);
        assert_eq!(super::live_for_provider(provider), (1, 4096));
        assert_eq!(t.usage(), "u");
        drop(t);
        assert_eq!(super::live_for_provider(provider), (0, 0));
    }
}
