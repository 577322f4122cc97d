//! dma-bufs as `wl_buffer`s through linux-dmabuf: the parameters from a layout (including the
//! plane offset of exported application memory), `create_immed`, and `create` whose `failed`
//! becomes a typed error that names the parameters the compositor refused.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use wayland_client::protocol::wl_buffer::{self, WlBuffer};
use wayland_client::{Connection, Dispatch, QueueHandle};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1, zwp_linux_dmabuf_v1,
};

use crate::dmabuf::DmaBuf;
use crate::layout::{Fourcc, Layout, LayoutError};
use crate::policy::MODIFIER_LINEAR;

/// One plane: the dma-buf holding it, where it starts, its stride.
#[derive(Debug, Clone, Copy)]
pub struct PlaneSpec<'a> {
    /// The dma-buf.
    pub fd: BorrowedFd<'a>,
    /// Byte offset of the plane in it.
    pub offset: u32,
    /// Bytes per row.
    pub stride: u32,
}

/// Everything linux-dmabuf needs to make a wl_buffer.
#[derive(Debug, Clone)]
pub struct BufferSpec<'a> {
    /// Width in pixels.
    pub width: i32,
    /// Height in pixels.
    pub height: i32,
    /// DRM fourcc.
    pub format: Fourcc,
    /// DRM modifier (heap and udmabuf buffers: LINEAR).
    pub modifier: u64,
    /// The planes, in the format's order.
    pub planes: Vec<PlaneSpec<'a>>,
    /// The device the compositor should import to (linux-dmabuf v6 `set_sampling_device`;
    /// ignored below v6): [`Decision::device`](super::Decision::device).
    pub sampling_device: Option<u64>,
}

impl<'a> BufferSpec<'a> {
    /// The spec of an image laid out by [`Layout`] in `buffers` (one, or one per plane).
    /// `base_offset` is added to every plane offset: the [`crate::export::ExportedRange::offset`]
    /// of application memory that does not start on a page. Checks every plane fits its buffer.
    pub fn from_layout(
        layout: &Layout,
        buffers: &[&'a DmaBuf],
        base_offset: u32,
    ) -> Result<Self, LayoutError> {
        let layout = if base_offset == 0 {
            layout.clone()
        } else {
            layout.with_base_offset(base_offset)?
        };
        layout.check_buffers(&buffers.iter().map(|b| b.size() as u64).collect::<Vec<_>>())?;
        let planes = layout
            .planes
            .iter()
            .map(|p| PlaneSpec {
                fd: buffers[p.buffer].fd(),
                offset: p.offset,
                stride: p.stride,
            })
            .collect();
        Ok(BufferSpec {
            width: layout.width as i32,
            height: layout.height as i32,
            format: layout.format,
            modifier: MODIFIER_LINEAR,
            planes,
            sampling_device: None,
        })
    }

    /// The spec with `device` as its [`sampling_device`](Self::sampling_device), e.g. the
    /// decision's [`device`](super::Decision::device).
    pub fn with_sampling_device(mut self, device: Option<u64>) -> Self {
        self.sampling_device = device;
        self
    }

    /// The parameters, for error messages.
    pub fn describe(&self) -> BufferDescription {
        BufferDescription {
            width: self.width,
            height: self.height,
            format: self.format,
            modifier: self.modifier,
            planes: self.planes.iter().map(|p| (p.offset, p.stride)).collect(),
        }
    }

    fn params<D>(
        &self,
        dmabuf: &zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
        qh: &QueueHandle<D>,
    ) -> zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1
    where
        D: Dispatch<zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1, BufferDescription>
            + 'static,
    {
        let params = dmabuf.create_params(qh, self.describe());
        if let Some(device) = self.sampling_device
            && wayland_client::Proxy::version(dmabuf) >= 6
        {
            params.set_sampling_device(device.to_ne_bytes().to_vec());
        }
        for (i, p) in self.planes.iter().enumerate() {
            params.add(
                p.fd.as_fd(),
                i as u32,
                p.offset,
                p.stride,
                (self.modifier >> 32) as u32,
                self.modifier as u32,
            );
        }
        params
    }

    /// `create_immed`: the wl_buffer at once; a compositor that refuses it raises a protocol
    /// error on the connection (see [`BufferError::from_protocol`]).
    pub fn create_immed<D, U>(
        &self,
        dmabuf: &zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
        qh: &QueueHandle<D>,
        udata: U,
    ) -> WlBuffer
    where
        D: Dispatch<zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1, BufferDescription>
            + Dispatch<WlBuffer, U>
            + 'static,
        U: Send + Sync + 'static,
    {
        let params = self.params(dmabuf, qh);
        let buffer = params.create_immed(
            self.width,
            self.height,
            self.format.0,
            zwp_linux_buffer_params_v1::Flags::empty(),
            qh,
            udata,
        );
        params.destroy();
        buffer
    }

    /// `create`: the compositor validates first and answers `created` or `failed`. With
    /// [`delegate_buffer_params!`](crate::delegate_buffer_params) the answer reaches
    /// [`BufferParamsHandler::buffer_created`]; a hand-written `Dispatch` feeds the events to
    /// [`BufferCreation::event`] (the params' user data is the spec's description).
    pub fn create<D>(
        &self,
        dmabuf: &zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
        qh: &QueueHandle<D>,
    ) -> zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1
    where
        D: Dispatch<zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1, BufferDescription>
            + 'static,
    {
        let params = self.params(dmabuf, qh);
        params.create(
            self.width,
            self.height,
            self.format.0,
            zwp_linux_buffer_params_v1::Flags::empty(),
        );
        params
    }
}

/// A buffer's parameters, kept with the request so a refusal can name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferDescription {
    /// Width.
    pub width: i32,
    /// Height.
    pub height: i32,
    /// Format.
    pub format: Fourcc,
    /// Modifier.
    pub modifier: u64,
    /// (offset, stride) per plane.
    pub planes: Vec<(u32, u32)>,
}

impl fmt::Display for BufferDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{} {} modifier {:#x}, planes (offset, stride) {:?}",
            self.width, self.height, self.format, self.modifier, self.planes
        )
    }
}

/// Why the compositor did not make a buffer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BufferError {
    /// `create` was answered with `failed`.
    #[error(
        "the compositor refused the dma-buf ({0}): it cannot use these parameters; fall back to another layout or to wl_shm"
    )]
    Failed(BufferDescription),
    /// `create_immed` (or a bad request) ended in a protocol error.
    #[error("the compositor raised protocol error {code} on {interface}: {message}")]
    Protocol {
        /// The interface (`zwp_linux_buffer_params_v1`).
        interface: String,
        /// The error code (e.g. 7, out_of_bounds).
        code: u32,
        /// The compositor's message.
        message: String,
    },
}

impl BufferError {
    /// The protocol error of a connection that died, as a typed error.
    pub fn from_protocol(conn: &wayland_client::Connection) -> Option<BufferError> {
        conn.protocol_error().map(|p| BufferError::Protocol {
            interface: p.object_interface,
            code: p.code,
            message: p.message,
        })
    }
}

/// The outcome of one `create`.
#[derive(Debug)]
pub enum BufferCreation {
    /// The wl_buffer.
    Created(WlBuffer),
    /// The refusal, with the parameters.
    Failed(BufferError),
}

impl BufferCreation {
    /// Turns a params event into an outcome (`None` for events that are not an answer).
    pub fn event(
        event: zwp_linux_buffer_params_v1::Event,
        description: &BufferDescription,
    ) -> Option<BufferCreation> {
        match event {
            zwp_linux_buffer_params_v1::Event::Created { buffer } => {
                Some(BufferCreation::Created(buffer))
            }
            zwp_linux_buffer_params_v1::Event::Failed => Some(BufferCreation::Failed(
                BufferError::Failed(description.clone()),
            )),
            _ => None,
        }
    }
}

impl BufferCreation {
    /// The outcome as a `Result`.
    pub fn into_result(self) -> Result<WlBuffer, BufferError> {
        match self {
            BufferCreation::Created(buffer) => Ok(buffer),
            BufferCreation::Failed(e) => Err(e),
        }
    }
}

/// User data of a wl_buffer the compositor made for [`BufferSpec::create`] (through
/// [`delegate_buffer_params!`](crate::delegate_buffer_params)): how often it was released.
#[derive(Debug, Default)]
pub struct CreatedBuffer {
    releases: AtomicU64,
}

impl CreatedBuffer {
    /// `wl_buffer.release`s received so far.
    pub fn releases(&self) -> u64 {
        self.releases.load(Ordering::Relaxed)
    }
}

/// Where [`delegate_buffer_params!`](crate::delegate_buffer_params) delivers the compositor's
/// answers to [`BufferSpec::create`], and the releases of the buffers it made.
///
/// A state that only uses `create_immed` (a [`Swapchain`](super::Swapchain), an
/// [`ImportCache`](super::ImportCache)) gets no answer and can take the defaults:
/// `impl BufferParamsHandler for App {}`.
pub trait BufferParamsHandler {
    /// The compositor answered the `create` of `params`: the wl_buffer, or
    /// [`BufferError::Failed`] naming the refused parameters (`description`). The params object
    /// is destroyed after this returns. The default logs a refusal and destroys a buffer nobody
    /// asked for.
    fn buffer_created(
        &mut self,
        params: &zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1,
        description: &BufferDescription,
        buffer: Result<WlBuffer, BufferError>,
    ) {
        let _ = params;
        match buffer {
            Ok(buffer) => {
                tracing::warn!(%description, "unexpected created wl_buffer destroyed");
                buffer.destroy();
            }
            Err(e) => tracing::warn!(%e, "linux-dmabuf create failed"),
        }
    }

    /// The compositor released `buffer` (one made by `create`): it may be drawn into again.
    fn buffer_released(&mut self, buffer: &WlBuffer) {
        let _ = buffer;
    }
}

/// The `Dispatch` implementations behind
/// [`delegate_buffer_params!`](crate::delegate_buffer_params).
#[derive(Debug)]
pub struct BufferParamsDispatch;

impl<D> Dispatch<zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1, BufferDescription, D>
    for BufferParamsDispatch
where
    D: Dispatch<zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1, BufferDescription>
        + Dispatch<WlBuffer, CreatedBuffer>
        + BufferParamsHandler
        + 'static,
{
    fn event(
        state: &mut D,
        params: &zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1,
        event: zwp_linux_buffer_params_v1::Event,
        description: &BufferDescription,
        _: &Connection,
        _: &QueueHandle<D>,
    ) {
        if let Some(outcome) = BufferCreation::event(event, description) {
            state.buffer_created(params, description, outcome.into_result());
            params.destroy();
        }
    }

    wayland_client::event_created_child!(D, zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1, [
        zwp_linux_buffer_params_v1::EVT_CREATED_OPCODE => (WlBuffer, CreatedBuffer::default()),
    ]);
}

impl<D> Dispatch<WlBuffer, CreatedBuffer, D> for BufferParamsDispatch
where
    D: Dispatch<WlBuffer, CreatedBuffer> + BufferParamsHandler,
{
    fn event(
        state: &mut D,
        buffer: &WlBuffer,
        event: wl_buffer::Event,
        data: &CreatedBuffer,
        _: &Connection,
        _: &QueueHandle<D>,
    ) {
        if let wl_buffer::Event::Release = event {
            data.releases.fetch_add(1, Ordering::Relaxed);
            state.buffer_released(buffer);
        }
    }
}

/// Implements `Dispatch` for `zwp_linux_buffer_params_v1` (user data
/// [`BufferDescription`](crate::client::BufferDescription), as every
/// [`BufferSpec`](crate::client::BufferSpec) request makes it) and for the wl_buffers its
/// `created` event makes (user data [`CreatedBuffer`](crate::client::CreatedBuffer)) of a state
/// type that is a [`BufferParamsHandler`](crate::client::BufferParamsHandler): `created` and
/// `failed` become a `Result<WlBuffer, BufferError>`, releases a call.
#[macro_export]
macro_rules! delegate_buffer_params {
    ($ty:ty) => {
        ::wayland_client::delegate_dispatch!($ty: [
            ::wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1: $crate::client::BufferDescription
        ] => $crate::client::BufferParamsDispatch);
        ::wayland_client::delegate_dispatch!($ty: [
            ::wayland_client::protocol::wl_buffer::WlBuffer: $crate::client::CreatedBuffer
        ] => $crate::client::BufferParamsDispatch);
    };
}
