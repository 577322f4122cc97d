//! [`HeapAllocator`]: Smithay's `Allocator` served from DMA-BUF heaps or udmabuf by the core's
//! policy — a compositor's swapchain without a GBM device.
//!
//! Display engines without an IOMMU scan out only physically contiguous memory; the policy's
//! `scanout` usage puts the CMA heap first for exactly that reason, and falls back to the system
//! heap or udmabuf where CMA is absent or full (an IOMMU-backed or virtual display takes any).

use std::os::fd::AsFd;

use smithay::backend::allocator::dmabuf::{AsDmabuf, Dmabuf, DmabufFlags};
use smithay::backend::allocator::{Allocator, Buffer, Format, Fourcc, Modifier};
use smithay::utils::{Buffer as BufferCoords, Size};

use crate::layout::{Fourcc as LayoutFourcc, Layout, LayoutOptions};
use crate::policy::{AllocError, Allocator as PolicyAllocator, Constraints};

/// Why a swapchain buffer could not be made.
#[derive(Debug, thiserror::Error)]
pub enum HeapAllocatorError {
    /// The consumer accepts no LINEAR layout; heap buffers have no other.
    #[error("heap buffers are LINEAR only, and none of the requested modifiers {0:?} is LINEAR")]
    NoLinearModifier(Vec<Modifier>),
    /// The format is not single-plane RGB (what a swapchain renders into).
    #[error("format {0:?} cannot be laid out for a swapchain: {1}")]
    Layout(Fourcc, crate::layout::LayoutError),
    /// The policy walk found nothing.
    #[error(transparent)]
    Alloc(#[from] AllocError),
    /// The dma-buf could not be duplicated for Smithay.
    #[error("duplicating the dma-buf fd failed: {0}")]
    Dup(std::io::Error),
}

/// Allocates swapchain buffers for a usage (default `scanout`) through a [`PolicyAllocator`].
#[derive(Debug)]
pub struct HeapAllocator {
    policy: PolicyAllocator,
    usage: String,
    constraints: Constraints,
    /// Who served the last buffer, for the compositor's status output.
    last_provider: Option<String>,
}

impl HeapAllocator {
    /// Buffers for `usage` from `policy`, with `constraints` (e.g. contiguous for a display
    /// engine without an IOMMU).
    pub fn new(policy: PolicyAllocator, usage: &str, constraints: Constraints) -> Self {
        Self {
            policy,
            usage: usage.to_owned(),
            constraints,
            last_provider: None,
        }
    }

    /// The provider (heap name or `udmabuf`) of the most recent buffer.
    pub fn last_provider(&self) -> Option<&str> {
        self.last_provider.as_deref()
    }
}

/// A swapchain buffer: a heap (or udmabuf) dma-buf described for Smithay.
#[derive(Debug)]
pub struct HeapBuffer {
    dmabuf: Dmabuf,
    /// Keeps the library's handle (and its accounting entry) alive with the buffer.
    _owner: crate::dmabuf::DmaBuf,
}

impl Buffer for HeapBuffer {
    fn size(&self) -> Size<i32, BufferCoords> {
        self.dmabuf.size()
    }
    fn format(&self) -> Format {
        self.dmabuf.format()
    }
}

impl AsDmabuf for HeapBuffer {
    type Error = std::convert::Infallible;
    fn export(&self) -> Result<Dmabuf, Self::Error> {
        Ok(self.dmabuf.clone())
    }
}

impl Allocator for HeapAllocator {
    type Buffer = HeapBuffer;
    type Error = HeapAllocatorError;

    fn create_buffer(
        &mut self,
        width: u32,
        height: u32,
        fourcc: Fourcc,
        modifiers: &[Modifier],
    ) -> Result<HeapBuffer, HeapAllocatorError> {
        if !modifiers.is_empty()
            && !modifiers
                .iter()
                .any(|m| matches!(m, Modifier::Linear | Modifier::Invalid))
        {
            return Err(HeapAllocatorError::NoLinearModifier(modifiers.to_vec()));
        }
        let layout = Layout::new(
            LayoutFourcc(fourcc as u32),
            width,
            height,
            LayoutOptions::default(),
        )
        .map_err(|e| HeapAllocatorError::Layout(fourcc, e))?;
        if layout.planes.len() != 1 {
            return Err(HeapAllocatorError::Layout(
                fourcc,
                crate::layout::LayoutError::PlaneCount {
                    format: layout.format,
                    expected: 1,
                    got: layout.planes.len(),
                },
            ));
        }
        let a =
            self.policy
                .allocate(&self.usage, layout.total_size() as usize, &self.constraints)?;
        let fd = a
            .buffer
            .fd()
            .as_fd()
            .try_clone_to_owned()
            .map_err(HeapAllocatorError::Dup)?;
        let mut builder = Dmabuf::builder(
            (width as i32, height as i32),
            fourcc,
            Modifier::Linear,
            DmabufFlags::empty(),
        );
        builder.add_plane(fd, 0, layout.planes[0].offset, layout.planes[0].stride);
        let dmabuf = builder.build().expect("one plane was added");
        tracing::debug!(provider = %a.provider, width, height, ?fourcc, "swapchain buffer allocated");
        self.last_provider = Some(a.provider);
        Ok(HeapBuffer {
            dmabuf,
            _owner: a.buffer,
        })
    }
}
