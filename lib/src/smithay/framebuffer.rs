//! [`PrimeExporter`]: KMS framebuffers for any LINEAR dma-buf, by PRIME import — no GBM.
//!
//! Smithay 0.7's exporters turn client dma-bufs into framebuffers only through GBM, and only for
//! buffers stamped with the GBM device's node; heap, udmabuf and V4L2 buffers never reach a plane.
//! This exporter does what wlroots and KWin do: `DRM_IOCTL_PRIME_FD_TO_HANDLE` for each plane's fd,
//! then `DRM_IOCTL_MODE_ADDFB2` (with the modifier when the device takes modifiers). Framebuffers
//! are cached per dma-buf and destroyed when the last user (the compositor's plane state, the
//! cache) lets go of them; GEM handles are reference-counted, because importing the same dma-buf
//! twice on one DRM fd yields the same handle and closing it once would close it for both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use drm::Device as _;
use drm::buffer::{Handle as GemHandle, PlanarBuffer};
use drm::control::{Device as ControlDevice, FbCmd2Flags, framebuffer};
use smithay::backend::allocator::dmabuf::{AsDmabuf, Dmabuf, WeakDmabuf};
use smithay::backend::allocator::format::get_opaque;
use smithay::backend::allocator::{Buffer, Format, Fourcc, Modifier};
use smithay::backend::drm::exporter::{ExportBuffer, ExportFramebuffer};
use smithay::backend::drm::{DrmDeviceFd, Framebuffer};
use smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer;

/// Why a dma-buf could not become a framebuffer.
#[derive(Debug, thiserror::Error)]
pub enum PrimeError {
    /// The allocator's buffer could not be exported as a dma-buf.
    #[error("exporting the swapchain buffer as a dma-buf failed: {0}")]
    Export(String),
    /// PRIME import of a plane's fd failed.
    #[error("PRIME import (fd to handle) of plane {plane} failed")]
    Prime {
        /// The plane.
        plane: usize,
        /// The kernel's error.
        source: std::io::Error,
    },
    /// AddFB2 refused the buffer.
    #[error("AddFB2 of a {width}x{height} {format:?} ({modifier:?}) buffer failed")]
    AddFb {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Format.
        format: Fourcc,
        /// Modifier.
        modifier: Modifier,
        /// The kernel's error.
        source: std::io::Error,
    },
}

/// Framebuffers made so far, by (buffer, opaque variant); weak on both sides, so the cache
/// keeps nothing alive.
type FramebufferCache = HashMap<(WeakDmabuf, bool), std::sync::Weak<Inner>>;

/// GEM handle reference counts of one DRM fd.
#[derive(Debug, Default)]
struct GemRefs(HashMap<u32, usize>);

impl GemRefs {
    /// Counts one more user of each handle.
    fn take(&mut self, handle: GemHandle) {
        *self.0.entry(handle.into()).or_insert(0) += 1;
    }

    /// Drops one user of each handle and closes the handles nobody uses any more.
    fn release(&mut self, device: &DrmDeviceFd, handles: &[GemHandle]) {
        for h in handles {
            let raw: u32 = (*h).into();
            let Some(count) = self.0.get_mut(&raw) else {
                continue;
            };
            *count -= 1;
            if *count == 0 {
                self.0.remove(&raw);
                if let Err(err) = device.close_buffer(*h) {
                    tracing::warn!(%err, "closing a GEM handle failed");
                }
            }
        }
    }
}

#[derive(Debug)]
struct Inner {
    device: DrmDeviceFd,
    fb: framebuffer::Handle,
    format: Format,
    handles: Vec<GemHandle>,
    gem: Arc<Mutex<GemRefs>>,
    live: Arc<Mutex<usize>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(err) = self.device.destroy_framebuffer(self.fb) {
            tracing::warn!(%err, fb = ?self.fb, "destroying a framebuffer failed");
        }
        self.gem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .release(&self.device, &self.handles);
        *self.live.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
    }
}

/// A framebuffer made by [`PrimeExporter`]; cheap to clone, destroyed with its last clone.
#[derive(Debug, Clone)]
pub struct PrimeFramebuffer(Arc<Inner>);

impl AsRef<framebuffer::Handle> for PrimeFramebuffer {
    fn as_ref(&self) -> &framebuffer::Handle {
        &self.0.fb
    }
}

impl Framebuffer for PrimeFramebuffer {
    fn format(&self) -> Format {
        self.0.format
    }
}

/// Exports any LINEAR dma-buf — client buffers (heap, udmabuf, V4L2) and swapchain buffers — as
/// KMS framebuffers on one DRM device.
#[derive(Debug, Clone)]
pub struct PrimeExporter {
    device: DrmDeviceFd,
    modifiers: bool,
    gem: Arc<Mutex<GemRefs>>,
    cache: Arc<Mutex<FramebufferCache>>,
    live: Arc<Mutex<usize>>,
    contiguous_only: bool,
    /// The memory of each client buffer looked at (with `contiguous_only`, or for the placement
    /// tracker), weak like the framebuffer cache.
    memory: Arc<Mutex<HashMap<WeakDmabuf, Option<BufferMemory>>>>,
    /// Why a buffer could not become a framebuffer, by buffer (weak): the placement reason.
    failures: Arc<Mutex<HashMap<WeakDmabuf, String>>>,
    /// wl_shm buffers as udmabufs, when shm scan-out is on.
    shm: Option<super::ShmScanout>,
}

/// Where a dma-buf's memory comes from, as far as the kernel tells (fdinfo's exporter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferMemory {
    /// The exporter of its first plane: a heap's name, `udmabuf`, a V4L2 or DRM driver.
    pub exporter: String,
    /// Whether that memory is known to be physically contiguous (a CMA heap, a heap the policy
    /// classifies as contiguous, videobuf2's dma-contig allocator).
    pub contiguous: bool,
}

impl BufferMemory {
    /// The memory of `dmabuf`, from its planes' fdinfo; `None` if it cannot be read.
    pub fn of(dmabuf: &Dmabuf) -> Option<BufferMemory> {
        let mut first = None;
        let mut contiguous = true;
        for fd in dmabuf.handles() {
            let info = crate::dmabuf::fd_info(fd).ok().flatten()?;
            contiguous &= exporter_is_contiguous(&info.exporter);
            first.get_or_insert(info.exporter);
        }
        Some(BufferMemory {
            exporter: first?,
            contiguous,
        })
    }
}

/// Exporters whose buffers are physically contiguous.
fn exporter_is_contiguous(exporter: &str) -> bool {
    crate::heap::classify(exporter).1.contiguous
        || matches!(exporter, "videobuf2_dma_contig" | "drm_gem_dma_helper")
}

struct Planes<'a> {
    dmabuf: &'a Dmabuf,
    handles: [Option<GemHandle>; 4],
    format: Fourcc,
    modifier: Option<Modifier>,
}

impl PlanarBuffer for Planes<'_> {
    fn size(&self) -> (u32, u32) {
        (self.dmabuf.width(), self.dmabuf.height())
    }
    fn format(&self) -> Fourcc {
        self.format
    }
    fn modifier(&self) -> Option<Modifier> {
        self.modifier
    }
    fn pitches(&self) -> [u32; 4] {
        let mut p = [0; 4];
        self.dmabuf
            .strides()
            .zip(p.iter_mut())
            .for_each(|(s, d)| *d = s);
        p
    }
    fn handles(&self) -> [Option<GemHandle>; 4] {
        self.handles
    }
    fn offsets(&self) -> [u32; 4] {
        let mut o = [0; 4];
        self.dmabuf
            .offsets()
            .zip(o.iter_mut())
            .for_each(|(s, d)| *d = s);
        o
    }
}

impl PrimeExporter {
    /// An exporter for `device` (asks once whether it takes AddFB2 modifiers).
    pub fn new(device: DrmDeviceFd) -> Self {
        let modifiers = device
            .get_driver_capability(drm::DriverCapability::AddFB2Modifiers)
            .is_ok_and(|v| v != 0);
        Self {
            device,
            modifiers,
            gem: Arc::default(),
            cache: Arc::default(),
            live: Arc::new(Mutex::new(0)),
            contiguous_only: false,
            memory: Arc::default(),
            failures: Arc::default(),
            shm: None,
        }
    }

    /// Scans out wl_shm buffers too: their pools exported through `/dev/udmabuf`
    /// ([`ShmScanout`](super::ShmScanout)), when the client sealed them against shrinking.
    pub fn with_shm_scanout(mut self, shm: super::ShmScanout) -> Self {
        self.shm = Some(shm);
        self
    }

    /// The shm scan-out this exporter uses, if on.
    pub fn shm_scanout(&self) -> Option<&super::ShmScanout> {
        self.shm.as_ref()
    }

    /// The dma-buf a client buffer is scanned out from: its own (linux-dmabuf), or its shm
    /// pool's udmabuf export when shm scan-out is on and the pool allows it; `None` otherwise.
    pub fn client_dmabuf(&self, buffer: &WlBuffer) -> Option<Dmabuf> {
        match smithay::wayland::dmabuf::get_dmabuf(buffer) {
            Ok(dmabuf) => Some(dmabuf.clone()),
            Err(_) => self.shm.as_ref()?.dmabuf(buffer).ok(),
        }
    }

    /// Why `dmabuf` could not become a framebuffer, if this exporter tried and failed (PRIME
    /// import or AddFB2, with the kernel's error); `None` if it never failed.
    pub fn failure_of(&self, dmabuf: &Dmabuf) -> Option<String> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.get(&dmabuf.weak()).cloned()
    }

    /// For a display engine that reads only physically contiguous memory (no IOMMU): client
    /// dma-bufs of any other memory (system heap, udmabuf) are not made into framebuffers, so
    /// they are composited; [`BufferMemory`] and [`explain`](super::explain) say why.
    pub fn contiguous_only(mut self, yes: bool) -> Self {
        self.contiguous_only = yes;
        self
    }

    /// Whether client buffers must be physically contiguous to get a framebuffer.
    pub fn requires_contiguous(&self) -> bool {
        self.contiguous_only
    }

    fn memory_fits(&self, dmabuf: &Dmabuf) -> bool {
        !self.contiguous_only || self.memory_of(dmabuf).is_some_and(|m| m.contiguous)
    }

    /// Where `dmabuf`'s memory comes from, as fdinfo tells, read once per buffer (asked per
    /// element and frame, by the exporter and by the placement tracker).
    pub fn memory_of(&self, dmabuf: &Dmabuf) -> Option<BufferMemory> {
        let mut known = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        known.retain(|weak, _| !weak.is_gone());
        known
            .entry(dmabuf.weak())
            .or_insert_with(|| BufferMemory::of(dmabuf))
            .clone()
    }

    /// Framebuffers alive now (cached or on a plane): for leak checks.
    pub fn live_framebuffers(&self) -> usize {
        *self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True for dma-bufs this exporter can try: LINEAR (KMS cannot know the layout of an
    /// implicit-modifier buffer, the rule Weston and Smithay apply too).
    pub fn eligible(dmabuf: &Dmabuf) -> bool {
        dmabuf.format().modifier == Modifier::Linear
    }

    /// Imports `dmabuf`, or returns the cached framebuffer made for it before.
    pub fn framebuffer_for(
        &self,
        dmabuf: &Dmabuf,
        use_opaque: bool,
    ) -> Result<PrimeFramebuffer, PrimeError> {
        let key = (dmabuf.weak(), use_opaque);
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            // Entries whose buffer or framebuffer is gone are dropped here: the cache never
            // keeps a framebuffer alive by itself.
            cache.retain(|(weak, _), fb| !weak.is_gone() && fb.strong_count() > 0);
            if let Some(fb) = cache.get(&key).and_then(std::sync::Weak::upgrade) {
                return Ok(PrimeFramebuffer(fb));
            }
        }
        let fb = match self.import(dmabuf, use_opaque) {
            Ok(fb) => {
                // A buffer that failed before (the other opaque variant) is no failure now.
                let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
                failures.remove(&dmabuf.weak());
                fb
            }
            Err(e) => {
                let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
                failures.retain(|weak, _| !weak.is_gone());
                failures.insert(dmabuf.weak(), crate::error::chain(&e));
                return Err(e);
            }
        };
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, Arc::downgrade(&fb.0));
        Ok(fb)
    }

    fn import(&self, dmabuf: &Dmabuf, use_opaque: bool) -> Result<PrimeFramebuffer, PrimeError> {
        let mut handles = [None; 4];
        let mut taken = Vec::with_capacity(dmabuf.num_planes());
        for (i, fd) in dmabuf.handles().enumerate().take(4) {
            match self.device.prime_fd_to_buffer(fd) {
                Ok(h) => {
                    self.gem.lock().unwrap_or_else(|e| e.into_inner()).take(h);
                    handles[i] = Some(h);
                    taken.push(h);
                }
                Err(source) => {
                    self.release(&taken);
                    return Err(PrimeError::Prime { plane: i, source });
                }
            }
        }
        let code = dmabuf.format().code;
        let format = if use_opaque {
            get_opaque(code).unwrap_or(code)
        } else {
            code
        };
        let modifier = dmabuf.format().modifier;
        let with_modifier = self.modifiers && modifier != Modifier::Invalid;
        let planes = Planes {
            dmabuf,
            handles,
            format,
            modifier: with_modifier.then_some(modifier),
        };
        let flags = if with_modifier {
            FbCmd2Flags::MODIFIERS
        } else {
            FbCmd2Flags::empty()
        };
        match self.device.add_planar_framebuffer(&planes, flags) {
            Ok(fb) => {
                *self.live.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                Ok(PrimeFramebuffer(Arc::new(Inner {
                    device: self.device.clone(),
                    fb,
                    format: Format {
                        code: format,
                        modifier,
                    },
                    handles: taken,
                    gem: self.gem.clone(),
                    live: self.live.clone(),
                })))
            }
            Err(source) => {
                self.release(&taken);
                Err(PrimeError::AddFb {
                    width: dmabuf.width(),
                    height: dmabuf.height(),
                    format,
                    modifier,
                    source,
                })
            }
        }
    }

    fn release(&self, handles: &[GemHandle]) {
        self.gem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .release(&self.device, handles);
    }
}

impl<B> ExportFramebuffer<B> for PrimeExporter
where
    B: Buffer + AsDmabuf,
    <B as AsDmabuf>::Error: std::fmt::Display,
{
    type Framebuffer = PrimeFramebuffer;
    type Error = PrimeError;

    fn add_framebuffer(
        &self,
        _drm: &DrmDeviceFd,
        buffer: ExportBuffer<'_, B>,
        use_opaque: bool,
    ) -> Result<Option<PrimeFramebuffer>, PrimeError> {
        match buffer {
            ExportBuffer::Wayland(wl) => match self.client_dmabuf(wl) {
                Some(dmabuf) if Self::eligible(&dmabuf) && self.memory_fits(&dmabuf) => {
                    self.framebuffer_for(&dmabuf, use_opaque).map(Some)
                }
                // Single-pixel and implicit-modifier buffers are composited, and shm buffers
                // whose pool cannot be exported.
                _ => Ok(None),
            },
            ExportBuffer::Allocator(b) => {
                let dmabuf = b.export().map_err(|e| PrimeError::Export(e.to_string()))?;
                self.framebuffer_for(&dmabuf, use_opaque).map(Some)
            }
        }
    }

    fn can_add_framebuffer(&self, buffer: &ExportBuffer<'_, B>) -> bool {
        match buffer {
            ExportBuffer::Wayland(wl) => self
                .client_dmabuf(wl)
                .is_some_and(|d| Self::eligible(&d) && self.memory_fits(&d)),
            ExportBuffer::Allocator(_) => true,
        }
    }
}
