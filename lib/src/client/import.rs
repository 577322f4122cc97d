//! Dma-bufs someone else exported (a V4L2 `VIDIOC_EXPBUF`, a decoder, another process) as
//! wl_buffers, one per dma-buf, made once and reused: a camera cycling through 4 buffers costs
//! 4 linux-dmabuf imports, not one per frame.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd};

use wayland_client::protocol::wl_buffer::WlBuffer;
use wayland_client::{Dispatch, Proxy, QueueHandle};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1, zwp_linux_dmabuf_v1,
};

use super::buffer::{BufferDescription, BufferSpec};
use crate::dmabuf::{DmaBuf, DmaBufError};

/// wl_buffers for imported dma-bufs, keyed by the dma-buf itself (its inode: two fds of one
/// buffer are one entry).
#[derive(Debug, Default)]
pub struct ImportCache {
    buffers: HashMap<u64, WlBuffer>,
    imports: u64,
}

/// The dma-buf file's inode: every fd of one buffer has it (fstat always gives it, where fdinfo's
/// `ino:` line may be missing on older kernels).
fn key(fd: BorrowedFd<'_>) -> Result<u64, DmaBufError> {
    rustix::fs::fstat(fd)
        .map(|st| st.st_ino)
        .map_err(|errno| DmaBufError::Inspect {
            fd: fd.as_raw_fd(),
            errno,
        })
}

impl ImportCache {
    /// The live wl_buffer already made for the dma-buf behind `fd`, if any: one fstat, so a
    /// per-frame caller checks this before building a [`DmaBuf`] and a [`BufferSpec`].
    pub fn cached(&self, fd: BorrowedFd<'_>) -> Option<WlBuffer> {
        let key = key(fd).ok()?;
        self.buffers.get(&key).filter(|b| b.is_alive()).cloned()
    }

    /// The wl_buffer for `dmabuf` laid out as `spec` (whose plane fds belong to `dmabuf`), made
    /// with `create_immed` the first time and reused after; buffers the compositor destroyed
    /// are made again.
    pub fn get_or_create<D, U>(
        &mut self,
        dmabuf: &DmaBuf,
        spec: &BufferSpec<'_>,
        linux_dmabuf: &zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
        qh: &QueueHandle<D>,
        udata: impl FnOnce() -> U,
    ) -> Result<WlBuffer, DmaBufError>
    where
        D: Dispatch<zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1, BufferDescription>
            + Dispatch<WlBuffer, U>
            + 'static,
        U: Send + Sync + 'static,
    {
        let key = key(dmabuf.fd())?;
        if let Some(b) = self.buffers.get(&key).filter(|b| b.is_alive()) {
            return Ok(b.clone());
        }
        let buffer = spec.create_immed(linux_dmabuf, qh, udata());
        self.imports += 1;
        self.buffers.insert(key, buffer.clone());
        Ok(buffer)
    }

    /// How many linux-dmabuf imports were made.
    pub fn imports(&self) -> u64 {
        self.imports
    }

    /// Forgets (and destroys) every wl_buffer, e.g. when the camera's buffers are reallocated.
    pub fn clear(&mut self) {
        for (_, b) in self.buffers.drain() {
            b.destroy();
        }
    }
}
