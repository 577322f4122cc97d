//! The Wayland side: the connection and its globals, the fullscreen window with the surface
//! stack over it, the surface's linux-dmabuf feedback, and waiting for events.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, poll};
use wayheap::client::window::Window;
use wayheap::client::{
    BufferDescription, BufferError, BufferParamsHandler, ClientGlobals, Decision, Feedback,
    FeedbackError, FeedbackHandler, FeedbackTarget, SurfaceStack, SwapchainProtocols,
};
use wayheap::layout::Fourcc;
use wayland_client::globals::{BindError, registry_queue_init};
use wayland_client::protocol::{wl_buffer, wl_callback, wl_surface::WlSurface};
use wayland_client::{Connection, Dispatch, EventQueue, QueueHandle, WEnum, delegate_noop};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1,
    zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1,
};
use wayland_protocols::wp::presentation_time::client::wp_presentation_feedback;

use crate::Scale;
use crate::camera::CameraSlot;

/// How long the compositor has to configure the window and send its feedback.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What the compositor's events left for the rest of the client.
#[derive(Debug, Default)]
pub struct State {
    last_feedback: Option<Feedback>,
    /// The compositor's feedback could not be used (the start does not wait for it then).
    feedback_failed: Option<String>,
    /// Camera slots the compositor released since the last look.
    released: Vec<usize>,
    /// Main-surface presentation feedback (camera mode; the picture's swapchain counts its own).
    presented: u64,
    zero_copy: u64,
}

impl FeedbackHandler for State {
    fn feedback(&mut self, _: &FeedbackTarget, feedback: Result<Feedback, FeedbackError>) {
        match feedback {
            Ok(f) => self.last_feedback = Some(f),
            Err(e) => {
                eprintln!("client-demo: ignoring the compositor's feedback: {e}");
                self.feedback_failed = Some(e.to_string());
            }
        }
    }
}

impl BufferParamsHandler for State {
    fn buffer_created(
        &mut self,
        _: &ZwpLinuxBufferParamsV1,
        description: &BufferDescription,
        buffer: Result<wl_buffer::WlBuffer, BufferError>,
    ) {
        // Every buffer here is made with `create_immed`: an answer is not expected.
        match buffer {
            Ok(buffer) => buffer.destroy(),
            Err(_) => eprintln!("client-demo: the compositor refused a dma-buf: {description}"),
        }
    }
}

impl Dispatch<wl_buffer::WlBuffer, CameraSlot> for State {
    fn event(
        st: &mut Self,
        _: &wl_buffer::WlBuffer,
        event: wl_buffer::Event,
        slot: &CameraSlot,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_buffer::Event::Release = event {
            st.released.push(slot.0);
        }
    }
}

impl Dispatch<wp_presentation_feedback::WpPresentationFeedback, ()> for State {
    fn event(
        st: &mut Self,
        _: &wp_presentation_feedback::WpPresentationFeedback,
        event: wp_presentation_feedback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wp_presentation_feedback::Event::Presented { flags, .. } = event {
            st.presented += 1;
            if matches!(flags, WEnum::Value(f) if f.contains(wp_presentation_feedback::Kind::ZeroCopy))
            {
                st.zero_copy += 1;
            }
        }
    }
}

delegate_noop!(State: ignore wl_callback::WlCallback);
wayheap::delegate_client_globals!(State);
wayheap::delegate_window!(State);
wayheap::delegate_dmabuf_feedback!(State);
wayheap::delegate_buffer_params!(State);
wayheap::delegate_swapchain!(State);

/// The connection, the window and the surfaces on it.
pub struct Client {
    queue: EventQueue<State>,
    /// Where new objects' events go.
    pub qh: QueueHandle<State>,
    /// The bound globals.
    pub globals: ClientGlobals,
    window: Window,
    stack: SurfaceStack,
    /// The main surface's feedback object (linux-dmabuf 4 and later).
    _feedback: Option<ZwpLinuxDmabufFeedbackV1>,
    state: State,
}

impl Client {
    /// Connects, binds the globals, maps a fullscreen window, and waits until the compositor
    /// configured it and sent the surface's linux-dmabuf feedback (or said it has none).
    pub fn connect() -> Result<Client, String> {
        let conn = Connection::connect_to_env().map_err(|e| {
            format!(
                "no Wayland compositor ({e}); run inside one, e.g. compositor-demo --run client-demo"
            )
        })?;
        let (globals, queue) =
            registry_queue_init::<State>(&conn).map_err(|e| format!("registry: {e}"))?;
        let qh = queue.handle();
        let globals = ClientGlobals::bind(&globals, &qh).map_err(|e| e.to_string())?;
        let subcompositor = globals.subcompositor.clone().ok_or_else(|| {
            format!(
                "the compositor lacks wl_subcompositor: {}",
                BindError::NotPresent
            )
        })?;
        let window = Window::new(
            &globals.compositor,
            &globals.wm_base,
            &qh,
            "wayheap client-demo",
            Some("wayheap.client-demo"),
            true,
        );
        let feedback = globals.surface_feedback(&window.surface, &qh);
        window.surface.commit();
        let mut queue = queue;
        let mut state = State::default();
        wait_for_start(&mut queue, &mut state, &window, feedback.is_some())?;
        let stack = SurfaceStack::new(
            window.surface.clone(),
            &subcompositor,
            globals.viewporter.as_ref(),
            &qh,
        );
        Ok(Client {
            queue,
            qh,
            globals,
            window,
            stack,
            _feedback: feedback,
            state,
        })
    }

    /// The main surface's latest complete feedback.
    pub fn feedback(&self) -> Option<&Feedback> {
        self.state.last_feedback.as_ref()
    }

    /// How to allocate `format` buffers for this compositor.
    pub fn decide(&self, format: Fourcc) -> Decision {
        self.globals.decide(self.feedback(), format)
    }

    /// The globals swapchains present through.
    pub fn protocols(&self) -> SwapchainProtocols<'_> {
        self.globals.protocols()
    }

    /// The window's configured size, or `fallback` when the compositor leaves it to the client.
    pub fn output_size(&self, fallback: (u32, u32)) -> (i32, i32) {
        let (w, h) = self.window.size_or(fallback);
        (w as i32, h as i32)
    }

    /// Whether the compositor asked the window to close.
    pub fn closed(&self) -> bool {
        self.window.closed()
    }

    /// The main surface (the video's).
    pub fn main_surface(&self) -> &WlSurface {
        self.stack.main()
    }

    /// A desynchronised subsurface over the main surface, at its origin.
    pub fn add_layer(&mut self) -> WlSurface {
        self.stack
            .add_layer(&self.globals.compositor, &self.qh, 0, 0)
            .surface
            .clone()
    }

    /// Where a `video` sized frame goes on an `output` sized window: scaled to the whole output
    /// by the main surface's viewport (`Fit`, with a viewporter), else at its own size.
    pub fn place_video(&self, scale: Scale, video: (u32, u32), output: (i32, i32)) -> (i32, i32) {
        match (scale, self.globals.viewporter.is_some()) {
            (Scale::Fit, true) => {
                self.stack.set_main_destination(output.0, output.1);
                output
            }
            _ => (video.0 as i32, video.1 as i32),
        }
    }

    /// Shows `buffer` (`size` pixels) on the main surface, with presentation feedback counted
    /// by [`presented`](Self::presented).
    pub fn show(&self, buffer: &wl_buffer::WlBuffer, size: (u32, u32)) {
        let main = self.stack.main();
        main.attach(Some(buffer), 0, 0);
        main.damage_buffer(0, 0, size.0 as i32, size.1 as i32);
        if let Some(p) = &self.globals.presentation {
            p.feedback(main, &self.qh, ());
        }
        main.commit();
    }

    /// Frames shown with [`show`](Self::show) the compositor presented, and of those ZERO_COPY.
    pub fn presented(&self) -> (u64, u64) {
        (self.state.presented, self.state.zero_copy)
    }

    /// Camera slots the compositor released since the last call.
    pub fn take_released(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.state.released)
    }

    /// Sends what is queued, waits up to `timeout` for the compositor or any of `fds` to be
    /// readable, and dispatches what arrived.
    pub fn wait(&mut self, fds: &[BorrowedFd<'_>], timeout: Duration) -> Result<(), String> {
        self.queue.flush().map_err(|e| format!("Wayland: {e}"))?;
        if let Some(guard) = self.queue.prepare_read() {
            let conn_fd = guard.connection_fd();
            let mut polled = vec![PollFd::new(&conn_fd, PollFlags::IN)];
            polled.extend(fds.iter().map(|fd| PollFd::new(fd, PollFlags::IN)));
            let ts = rustix::time::Timespec {
                tv_sec: timeout.as_secs() as i64,
                tv_nsec: i64::from(timeout.subsec_nanos()),
            };
            match poll(&mut polled, Some(&ts)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(format!("poll: {e}")),
            }
            let readable = polled[0].revents().contains(PollFlags::IN);
            drop(polled);
            if readable {
                match guard.read() {
                    Ok(_) => {}
                    // Readable, but another reader (or a spurious wake-up) took the data.
                    Err(wayland_client::backend::WaylandError::Io(e))
                        if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(format!("Wayland: {e}")),
                }
            }
        }
        self.queue
            .dispatch_pending(&mut self.state)
            .map_err(|e| format!("Wayland: {e}"))?;
        Ok(())
    }
}

/// Dispatches until `window` is configured and, when `asked_feedback`, the surface's feedback
/// (or its failure) has arrived.
fn wait_for_start(
    queue: &mut EventQueue<State>,
    state: &mut State,
    window: &Window,
    asked_feedback: bool,
) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let waiting_for_feedback =
        |st: &State| asked_feedback && st.last_feedback.is_none() && st.feedback_failed.is_none();
    while window.configured().is_none() || waiting_for_feedback(state) {
        if Instant::now() > deadline {
            return Err(if window.configured().is_none() {
                "the compositor never configured the window".into()
            } else {
                "the compositor sent no complete linux-dmabuf feedback within 30 s".into()
            });
        }
        queue
            .blocking_dispatch(state)
            .map_err(|e| format!("Wayland: {e}"))?;
    }
    Ok(())
}
