//! The fds a fuzz connection may pass: memfds (sealed and not, empty), `/dev/null`, pipe ends,
//! an eventfd, a directory, the connection's own Wayland socket, a per-connection memfd the
//! fuzzer may shrink behind the compositor's back, and — where the kernel has them — real
//! dma-bufs from every `/dev/dma_heap/*` heap and from `/dev/udmabuf`.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{MemfdFlags, SealFlags};

/// Which fd a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdRef {
    /// Entry `i` of the run's [`FdPool`].
    Pool(usize),
    /// This connection's shrinkable memfd ([`ScratchFds`]).
    Scratch,
    /// This connection's own Wayland socket.
    OwnSocket,
}

impl fmt::Display for FdRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FdRef::Pool(i) => write!(f, "pool#{i}"),
            FdRef::Scratch => f.write_str("scratch-memfd"),
            FdRef::OwnSocket => f.write_str("own-socket"),
        }
    }
}

/// Bytes of the memfds and dma-bufs buffers are made from: a 64x64 XRGB8888 buffer with a
/// 256-byte stride fits, and so does the `recipes`' shm pool.
pub const BUFFER_BYTES: usize = 64 * 1024;

/// The fds shared by every connection of a run (none is changed by a connection).
#[derive(Debug)]
pub struct FdPool {
    entries: Vec<(String, OwnedFd)>,
    // The application memory behind the udmabuf exports, kept with them.
    _keep: Vec<wayheap::export::MemfdBuffer>,
}

fn memfd(name: &str, len: u64, seal: bool) -> rustix::io::Result<OwnedFd> {
    let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    rustix::fs::ftruncate(&fd, len)?;
    if seal {
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
    }
    Ok(fd)
}

impl FdPool {
    /// The fds any machine has: memfds, `/dev/null`, pipe ends, an eventfd, `/`.
    pub fn ordinary() -> std::io::Result<FdPool> {
        let (pipe_r, pipe_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let entries = vec![
            (
                "memfd-sealed-64k".to_owned(),
                memfd("fuzz", BUFFER_BYTES as u64, true)?,
            ),
            ("memfd-sealed-4k".to_owned(), memfd("fuzz", 4096, true)?),
            (
                "memfd-64k".to_owned(),
                memfd("fuzz", BUFFER_BYTES as u64, false)?,
            ),
            ("memfd-empty".to_owned(), memfd("fuzz", 0, true)?),
            (
                "dev-null".to_owned(),
                std::fs::File::open("/dev/null")?.into(),
            ),
            ("pipe-read".to_owned(), pipe_r),
            ("pipe-write".to_owned(), pipe_w),
            (
                "eventfd".to_owned(),
                rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)?,
            ),
            ("root-dir".to_owned(), std::fs::File::open("/")?.into()),
        ];
        Ok(FdPool {
            entries,
            _keep: Vec::new(),
        })
    }

    /// Adds a dma-buf from every heap under `/dev/dma_heap` and one exported through
    /// `/dev/udmabuf`, through wayheap's own APIs; returns how many were added and why the
    /// others could not be (no such device, no permission).
    pub fn add_dmabufs(&mut self) -> (usize, Vec<String>) {
        let mut added = 0;
        let mut problems = Vec::new();
        let heaps = wayheap::heap::HeapDir::default();
        match heaps.list() {
            Ok(list) if list.is_empty() => problems.push("no /dev/dma_heap/* heap".to_owned()),
            Ok(list) => {
                for info in list {
                    match heaps
                        .open(&info.name)
                        .and_then(|h| h.allocate_for(BUFFER_BYTES, "fuzz"))
                    {
                        Ok(buf) => match buf.fd().try_clone_to_owned() {
                            Ok(fd) => {
                                self.entries.push((format!("dmabuf-{}", info.name), fd));
                                added += 1;
                            }
                            Err(e) => problems.push(format!("dup of a {} buffer: {e}", info.name)),
                        },
                        Err(e) => problems.push(format!("heap {}: {e}", info.name)),
                    }
                }
            }
            Err(e) => problems.push(format!("listing heaps: {e}")),
        }
        match self.add_udmabuf() {
            Ok(()) => added += 1,
            Err(e) => problems.push(format!("udmabuf: {e}")),
        }
        (added, problems)
    }

    fn add_udmabuf(&mut self) -> Result<(), String> {
        let udmabuf = wayheap::export::Udmabuf::open().map_err(|e| e.to_string())?;
        let mem = wayheap::export::MemfdBuffer::new(BUFFER_BYTES).map_err(|e| e.to_string())?;
        let exported = mem
            .export_range(&udmabuf, 0..BUFFER_BYTES)
            .map_err(|e| e.to_string())?;
        let fd = exported
            .dmabuf
            .fd()
            .try_clone_to_owned()
            .map_err(|e| e.to_string())?;
        self.entries.push(("udmabuf".to_owned(), fd));
        self._keep.push(mem);
        Ok(())
    }

    /// How many fds the pool holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the pool holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entry `i`'s fd.
    pub fn fd(&self, i: usize) -> BorrowedFd<'_> {
        self.entries[i].1.as_fd()
    }

    /// Entry `i`'s label (e.g. `memfd-sealed-64k`, `dmabuf-system`).
    pub fn label(&self, i: usize) -> &str {
        &self.entries[i].0
    }

    /// Every label, in pool order.
    pub fn labels(&self) -> Vec<String> {
        self.entries.iter().map(|(l, _)| l.clone()).collect()
    }

    /// The indices of entries whose label starts with one of `prefixes`.
    pub fn matching(&self, prefixes: &[&str]) -> Vec<usize> {
        (0..self.entries.len())
            .filter(|i| prefixes.iter().any(|p| self.entries[*i].0.starts_with(p)))
            .collect()
    }

    /// How many entries are real dma-bufs (heaps or udmabuf).
    pub fn dmabuf_count(&self) -> usize {
        self.matching(&["dmabuf-", "udmabuf"]).len()
    }
}

/// The fds one connection owns: a memfd it may shrink after the compositor mapped it.
#[derive(Debug)]
pub struct ScratchFds {
    /// A 64 KiB memfd, unsealed.
    pub memfd: OwnedFd,
}

impl ScratchFds {
    /// Fresh fds for one connection.
    pub fn new() -> std::io::Result<ScratchFds> {
        Ok(ScratchFds {
            memfd: memfd("fuzz-scratch", BUFFER_BYTES as u64, false)?,
        })
    }

    /// Shrinks the memfd to `len` bytes (a compositor that mapped more must not die of SIGBUS).
    pub fn shrink(&self, len: u64) -> std::io::Result<()> {
        Ok(rustix::fs::ftruncate(&self.memfd, len)?)
    }
}
