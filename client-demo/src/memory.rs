//! The memory of the surfaces the client draws itself (the picture, the overlay): application
//! memory exported through udmabuf, else heap memory from the policy, else wl_shm (a copy, said
//! so on stderr), whichever works first.

use wayheap::client::{
    BufferDescription, BufferPath, Decision, SlotData, Swapchain, SwapchainProtocols,
};
use wayheap::export::Udmabuf;
use wayheap::layout::Layout;
use wayheap::policy::Allocator;
use wayland_client::protocol::{wl_buffer::WlBuffer, wl_shm_pool::WlShmPool};
use wayland_client::{Dispatch, QueueHandle};
use wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1;

/// Where drawn buffers come from.
#[derive(Debug)]
pub struct Memory {
    /// The policy's heaps.
    pub alloc: Allocator,
    /// `/dev/udmabuf`, when it can be opened.
    pub udmabuf: Option<Udmabuf>,
    /// wl_shm only (`--shm`), as a toolkit that draws with the CPU.
    pub shm_only: bool,
}

impl Memory {
    /// The policy from the environment, and udmabuf if there is one.
    pub fn from_env(shm_only: bool) -> Result<Memory, String> {
        Ok(Memory {
            alloc: Allocator::from_env().map_err(|e| wayheap::error::chain(&e))?,
            udmabuf: Udmabuf::open().ok(),
            shm_only,
        })
    }

    /// `count` buffers of `layout` for a surface the client draws: dma-bufs when `decision` is
    /// a dma-buf path and one can be had (udmabuf first, then the heaps), wl_shm otherwise.
    pub fn swapchain<D>(
        &self,
        decision: Decision,
        layout: Layout,
        count: usize,
        protocols: &SwapchainProtocols<'_>,
        qh: &QueueHandle<D>,
    ) -> Result<Swapchain, String>
    where
        D: Dispatch<ZwpLinuxBufferParamsV1, BufferDescription>
            + Dispatch<WlBuffer, SlotData>
            + Dispatch<WlShmPool, ()>
            + 'static,
    {
        let mut failures = Vec::new();
        if decision.path.zero_copy() && !self.shm_only {
            if let Some(u) = &self.udmabuf {
                match Swapchain::from_udmabuf(
                    u,
                    decision.clone(),
                    layout.clone(),
                    count,
                    protocols,
                    qh,
                ) {
                    Ok(c) => return Ok(c),
                    Err(e) => failures.push(format!("udmabuf: {}", wayheap::error::chain(&e))),
                }
            } else {
                failures.push("udmabuf: /dev/udmabuf cannot be opened".to_owned());
            }
            match Swapchain::new(
                &self.alloc,
                decision.clone(),
                layout.clone(),
                count,
                protocols,
                qh,
            ) {
                Ok(c) => return Ok(c),
                Err(e) => failures.push(format!("heaps: {}", wayheap::error::chain(&e))),
            }
            eprintln!(
                "client-demo: no dma-buf for {} buffers ({}): using wl_shm, which is not zero-copy",
                layout.format,
                failures.join("; ")
            );
        }
        let shm = Decision {
            path: BufferPath::Shm,
            reason: if self.shm_only {
                "--shm: wl_shm from sealed memfds; zero-copy only if the compositor exports them"
                    .to_owned()
            } else if failures.is_empty() {
                decision.reason.clone()
            } else {
                format!(
                    "no dma-buf could be allocated ({}): wl_shm, not zero-copy",
                    failures.join("; ")
                )
            },
            device: None,
        };
        Swapchain::new(&self.alloc, shm, layout, count, protocols, qh)
            .map_err(|e| wayheap::error::chain(&e))
    }
}
