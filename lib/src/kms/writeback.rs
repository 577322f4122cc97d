//! The writeback connector: what a CRTC shows, captured into a buffer.
//!
//! `WRITEBACK_OUT_FENCE_PTR` is a property whose value is a *user-space address*: during the
//! atomic commit the kernel writes a new sync_file fd through it. The memory behind it must be
//! writable and alive for the whole commit, and the compiler must not assume it unchanged
//! afterwards — an address taken of an immutable local (`let fence: i32 = -1;
//! addr_of!(fence)`) is undefined behaviour. [`WritebackConnector::commit_with_out_fence`] owns
//! that memory for the duration of the commit, so no caller has to get it right.
//!
//! ## How to use
//!
//! ```no_run
//! # fn shot(card: &impl drm::control::Device, crtc: drm::control::crtc::Handle,
//! #         connector: drm::control::connector::Handle) -> Result<(), wayheap::kms::writeback::WritebackError> {
//! use wayheap::kms::writeback::WritebackConnector;
//! let writeback = WritebackConnector::new(card, connector)?; // once
//! let capture = writeback.capture(card, crtc, (1024, 768))?;
//! assert_eq!(capture.rgba.len(), 1024 * 768 * 4);
//! # Ok(()) }
//! ```

use std::cell::UnsafeCell;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

use drm::buffer::DrmFourcc;
use drm::control::{AtomicCommitFlags, Device, atomic::AtomicModeReq, connector, crtc, property};

use crate::dmabuf::{FenceState, SyncFile};

/// How long a capture waits for the writeback to complete.
pub const CAPTURE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a writeback commit or capture failed.
#[derive(Debug, thiserror::Error)]
pub enum WritebackError {
    /// The connector lacks a property writeback needs (it is not a writeback connector).
    #[error("the connector has no {0} property: not a writeback connector")]
    MissingProperty(&'static str),
    /// A DRM call failed; `what` says which.
    #[error("{what} failed")]
    Drm {
        /// The call.
        what: &'static str,
        /// The kernel's error.
        #[source]
        source: std::io::Error,
    },
    /// The commit succeeded but the kernel wrote no fence (no WRITEBACK_FB_ID in the commit?).
    #[error("the commit gave no writeback out-fence (was WRITEBACK_FB_ID set?)")]
    NoFence,
    /// The out-fence did not signal in time.
    #[error("the writeback did not complete: fence {0:?}")]
    NotSignalled(FenceState),
    /// Waiting on the fence failed.
    #[error("waiting for the writeback fence failed")]
    Wait(#[source] rustix::io::Errno),
}

fn drm_err(what: &'static str) -> impl FnOnce(std::io::Error) -> WritebackError {
    move |source| WritebackError::Drm { what, source }
}

/// Memory the kernel writes the out-fence fd into: heap-allocated (a stable address) and in an
/// `UnsafeCell` (written behind the compiler's back, through the address in the property).
struct OutFenceSlot(Box<UnsafeCell<i32>>);

impl OutFenceSlot {
    fn new() -> Self {
        OutFenceSlot(Box::new(UnsafeCell::new(-1)))
    }

    /// The property value: the slot's address, with write permission.
    fn value(&self) -> property::Value<'static> {
        property::Value::UnsignedRange(self.0.get() as u64)
    }

    /// The fd the kernel wrote, if it wrote one. Call only after the commit succeeded.
    fn take(self) -> Option<OwnedFd> {
        // SAFETY: the slot is a live, aligned i32; the commit that could write it has returned
        // (it ran synchronously on this thread), and a volatile read does not assume the value
        // is still the -1 written before.
        let raw = unsafe { std::ptr::read_volatile(self.0.get()) };
        // SAFETY: after a successful commit, a non-negative value is a new sync_file fd the
        // kernel installed for this process during it; nothing else owns it.
        (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw) })
    }
}

/// A writeback connector with the handles of the properties writeback needs, read once.
#[derive(Debug, Clone, Copy)]
pub struct WritebackConnector {
    handle: connector::Handle,
    crtc_id: property::Handle,
    fb_id: property::Handle,
    out_fence_ptr: property::Handle,
}

impl WritebackConnector {
    /// Reads `connector`'s properties; fails if it is not a writeback connector.
    pub fn new<D: Device>(
        device: &D,
        connector: connector::Handle,
    ) -> Result<WritebackConnector, WritebackError> {
        let props = device
            .get_properties(connector)
            .map_err(drm_err("reading the connector's properties"))?
            .as_hashmap(device)
            .map_err(drm_err("reading the connector's property names"))?;
        let handle = |name: &'static str| {
            props
                .get(name)
                .map(|p| p.handle())
                .ok_or(WritebackError::MissingProperty(name))
        };
        Ok(WritebackConnector {
            handle: connector,
            crtc_id: handle("CRTC_ID")?,
            fb_id: handle("WRITEBACK_FB_ID")?,
            out_fence_ptr: handle("WRITEBACK_OUT_FENCE_PTR")?,
        })
    }

    /// The connector.
    pub fn handle(&self) -> connector::Handle {
        self.handle
    }

    /// Adds to `req`: route this connector to `crtc` and write into `fb`.
    pub fn attach(
        &self,
        req: &mut AtomicModeReq,
        crtc: crtc::Handle,
        fb: drm::control::framebuffer::Handle,
    ) {
        req.add_property(self.handle, self.crtc_id, property::Value::CRTC(Some(crtc)));
        req.add_property(
            self.handle,
            self.fb_id,
            property::Value::Framebuffer(Some(fb)),
        );
    }

    /// Commits `req` with this connector's `WRITEBACK_OUT_FENCE_PTR` added, and returns the
    /// out-fence the kernel made: it signals when the writeback buffer holds the frame. Not for
    /// `TEST_ONLY` commits, which make no fence ([`WritebackError::NoFence`]).
    pub fn commit_with_out_fence<D: Device>(
        &self,
        device: &D,
        flags: AtomicCommitFlags,
        mut req: AtomicModeReq,
    ) -> Result<SyncFile, WritebackError> {
        let slot = OutFenceSlot::new();
        req.add_property(self.handle, self.out_fence_ptr, slot.value());
        device
            .atomic_commit(flags, req)
            .map_err(drm_err("the writeback commit"))?;
        // Only after success: a failed commit may have written a number it never installed.
        slot.take()
            .map(SyncFile::from_fd)
            .ok_or(WritebackError::NoFence)
    }

    /// Routes the connector away from its CRTC. A connector left bound to a CRTC (a capture
    /// that was interrupted, a program that exited) makes the next DRM master's reset — which
    /// does not see writeback connectors unless it asked for them — fail with EINVAL.
    pub fn detach<D: Device>(&self, device: &D) -> Result<(), WritebackError> {
        let mut req = AtomicModeReq::new();
        req.add_property(self.handle, self.crtc_id, property::Value::CRTC(None));
        device
            .atomic_commit(AtomicCommitFlags::ALLOW_MODESET, req)
            .map_err(drm_err("detaching the writeback connector"))
    }

    /// Captures what `crtc` shows (`width` x `height`, its mode's size): routes the connector
    /// to it with an XRGB8888 dumb buffer, commits, waits for the out-fence, reads the buffer,
    /// and detaches the connector again whatever happened.
    pub fn capture<D: Device>(
        &self,
        device: &D,
        crtc: crtc::Handle,
        (width, height): (u32, u32),
    ) -> Result<Capture, WritebackError> {
        let mut bo = device
            .create_dumb_buffer((width, height), DrmFourcc::Xrgb8888, 32)
            .map_err(drm_err("creating the capture buffer"))?;
        let result = device
            .add_framebuffer(&bo, 24, 32)
            .map_err(drm_err("adding the capture framebuffer"))
            .and_then(|fb| {
                let shot = self.capture_into(device, crtc, fb, &mut bo, (width, height));
                let _ = device.destroy_framebuffer(fb);
                shot
            });
        let _ = device.destroy_dumb_buffer(bo);
        result
    }

    fn capture_into<D: Device>(
        &self,
        device: &D,
        crtc: crtc::Handle,
        fb: drm::control::framebuffer::Handle,
        bo: &mut drm::control::dumbbuffer::DumbBuffer,
        (width, height): (u32, u32),
    ) -> Result<Capture, WritebackError> {
        let mut req = AtomicModeReq::new();
        self.attach(&mut req, crtc, fb);
        let committed = self.commit_with_out_fence(device, AtomicCommitFlags::ALLOW_MODESET, req);
        let pixels = committed.and_then(|fence| {
            match fence.wait(CAPTURE_TIMEOUT).map_err(WritebackError::Wait)? {
                FenceState::Signalled => {}
                other => return Err(WritebackError::NotSignalled(other)),
            }
            let pitch = drm::buffer::Buffer::pitch(&*bo) as usize;
            let map = device
                .map_dumb_buffer(bo)
                .map_err(drm_err("mapping the capture buffer"))?;
            Ok(xrgb_to_rgba(map.as_ref(), pitch, width, height))
        });
        if let Err(e) = self.detach(device) {
            tracing::warn!(e = %crate::error::chain(&e), "detaching the writeback connector");
        }
        pixels.map(|rgba| Capture {
            width,
            height,
            rgba,
        })
    }
}

/// A captured frame: RGBA8 rows, top to bottom.
#[derive(Debug, Clone)]
pub struct Capture {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height` RGBA pixels (alpha 255).
    pub rgba: Vec<u8>,
}

/// XRGB8888 little endian (B G R X in memory) rows of `pitch` bytes to RGBA8.
fn xrgb_to_rgba(map: &[u8], pitch: usize, width: u32, height: u32) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let mut rgba = Vec::with_capacity(w * h * 4);
    for row in map.chunks(pitch).take(h) {
        for px in row[..w * 4].chunks_exact(4) {
            rgba.extend_from_slice(&[px[2], px[1], px[0], 0xff]);
        }
    }
    rgba
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_reads_what_was_written_through_its_address() {
        let slot = OutFenceSlot::new();
        let property::Value::UnsignedRange(addr) = slot.value() else {
            panic!("not an address");
        };
        // What the kernel does during the commit: a write through the address.
        let fd = rustix::io::dup(std::io::stdin()).expect("dup");
        let raw = std::os::fd::IntoRawFd::into_raw_fd(fd);
        // SAFETY: `addr` is the slot's live, writable i32, as the kernel would use it.
        unsafe { std::ptr::write_volatile(addr as *mut i32, raw) };
        let got = slot.take().expect("a fence fd");
        assert_eq!(std::os::fd::AsRawFd::as_raw_fd(&got), raw);
        assert!(OutFenceSlot::new().take().is_none(), "untouched: no fd");
    }

    #[test]
    fn xrgb_rows_become_rgba_and_padding_is_skipped() {
        // 2x2 pixels, pitch 12 (4 bytes of padding per row).
        let map = [
            1, 2, 3, 0, 4, 5, 6, 0, 9, 9, 9, 9, //
            7, 8, 9, 0, 10, 11, 12, 0, 9, 9, 9, 9,
        ];
        let rgba = xrgb_to_rgba(&map, 12, 2, 2);
        assert_eq!(
            rgba,
            [3, 2, 1, 255, 6, 5, 4, 255, 9, 8, 7, 255, 12, 11, 10, 255]
        );
    }
}
