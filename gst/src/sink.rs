//! `wayheapsink`: a Wayland video sink on [`wayheap::client`].
//!
//! It offers upstream a [`WayheapBufferPool`] whose usage the surface's linux-dmabuf feedback
//! chose (`scanout` when the compositor means to put the surface on a plane, `render`
//! otherwise) and whose memory the compositor's heap hints (`wayheap_heap_hints_v1`, where it
//! offers them) chose: the hinted heap first, the CMA heap when the plane reads only contiguous
//! memory, with the usage's own providers behind it; when either changes, it asks upstream to
//! renegotiate and the new pool follows. It imports every dma-buf it is given through the [`ImportCache`] (one import per
//! buffer, reused), keeps each GStreamer buffer until the compositor releases its wl_buffer,
//! paces commits by frame callbacks, and counts the frames the compositor presented and those it
//! presented ZERO_COPY (wp_presentation): the `frames-presented` and `zero-copy-frames`
//! properties, and a `wayheapsink-placement` element message on the bus whenever the frames
//! start or stop being presented ZERO_COPY. A buffer that is not a dma-buf (upstream ignored the pool) is copied into one of
//! the pool's buffers, counted in `copies`, with one warning on the bus. Where no dma-buf can be
//! had at all (no linux-dmabuf, or no provider this process may use), frames are copied into a
//! wl_shm [`Swapchain`], with a warning that says why.

use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;
use wayheap::client::hints::{HeapHintsCollector, HintChoice, HintedAllocator, ManagerData};
use wayheap::client::window::Window;
use wayheap::client::{
    BufferParamsHandler, BufferSpec, ClientGlobals, Feedback, FeedbackError, FeedbackHandler,
    FeedbackTarget, ImportCache, Swapchain, SwapchainProtocols, decide_without_linux_dmabuf,
};
use wayheap::dmabuf::DmaBuf;
use wayheap::layout::{Layout, LayoutOptions, PlaneLayout};
use wayheap::policy::Allocator;
use wayheap::protocols::heap_hints::client::{
    wayheap_heap_hints_manager_v1::WayheapHeapHintsManagerV1,
    wayheap_surface_heap_hints_v1::{self, WayheapSurfaceHeapHintsV1},
};
use wayland_client::backend::ObjectId;
use wayland_client::protocol::{wl_buffer::WlBuffer, wl_callback::WlCallback};
use wayland_client::{Connection, Dispatch, EventQueue, Proxy, QueueHandle, globals};
use wayland_protocols::wp::linux_dmabuf::zv1::client::zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1;
use wayland_protocols::wp::presentation_time::client::wp_presentation_feedback::{
    self, WpPresentationFeedback,
};

use crate::formats;
use crate::pool::{OfferError, WayheapBufferPool, dmabuf_fd, queried_video};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "wayheapsink",
        gst::DebugColorFlags::empty(),
        Some("wayheap Wayland video sink"),
    )
});

/// The longest a frame waits for the previous one's frame callback (a hidden surface gets none).
const PACING_WAIT: Duration = Duration::from_secs(1);

glib::wrapper! {
    /// The `wayheapsink` element.
    pub struct WayheapSink(ObjectSubclass<imp::WayheapSink>)
        @extends gst_video::VideoSink, gst_base::BaseSink, gst::Element, gst::Object;
}

/// Registers `wayheapsink` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "wayheapsink",
        gst::Rank::NONE,
        WayheapSink::static_type(),
    )
}

/// What the Wayland events tell the sink.
#[derive(Debug, Default)]
struct Events {
    feedback: Option<Feedback>,
    /// New feedback arrived since the sink last decided from it.
    feedback_changed: bool,
    frame_pending: bool,
    /// GStreamer buffers the compositor still reads, by their wl_buffer.
    held: HashMap<ObjectId, gst::Buffer>,
    presented: u64,
    zero_copy: u64,
    /// Whether the last frame presented was ZERO_COPY (on a plane, from our buffer).
    last_zero_copy: Option<bool>,
    /// The surface's heap hints (`wayheap_heap_hints_v1`), when the compositor offers them.
    hints: HeapHintsCollector,
    /// A new hint list arrived since the sink last decided from it.
    hints_changed: bool,
}

impl FeedbackHandler for Events {
    fn feedback(&mut self, _: &FeedbackTarget, feedback: Result<Feedback, FeedbackError>) {
        match feedback {
            Ok(f) => {
                self.feedback = Some(f);
                self.feedback_changed = true;
            }
            Err(e) => gst::warning!(CAT, "malformed linux-dmabuf feedback: {e}"),
        }
    }
}
impl BufferParamsHandler for Events {}

impl Dispatch<WayheapSurfaceHeapHintsV1, ()> for Events {
    fn event(
        state: &mut Self,
        _: &WayheapSurfaceHeapHintsV1,
        event: wayheap_surface_heap_hints_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let Some(list) = state.hints.event(event) {
            gst::debug!(CAT, "heap hints: {list:?}");
            state.hints_changed = true;
        }
    }
}

wayheap::delegate_client_globals!(Events);
wayheap::delegate_window!(Events);
wayheap::delegate_dmabuf_feedback!(Events);
wayheap::delegate_buffer_params!(Events);
wayheap::delegate_swapchain!(Events);
wayheap::delegate_heap_hints_client!(Events);

impl Dispatch<WlBuffer, ()> for Events {
    fn event(
        state: &mut Self,
        buffer: &WlBuffer,
        event: wayland_client::protocol::wl_buffer::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wayland_client::protocol::wl_buffer::Event::Release = event {
            // The compositor is done with it: upstream may have the buffer back.
            state.held.remove(&buffer.id());
        }
    }
}

impl Dispatch<WlCallback, ()> for Events {
    fn event(
        state: &mut Self,
        _: &WlCallback,
        _: wayland_client::protocol::wl_callback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        state.frame_pending = false;
    }
}

impl Dispatch<WpPresentationFeedback, ()> for Events {
    fn event(
        state: &mut Self,
        _: &WpPresentationFeedback,
        event: wp_presentation_feedback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wp_presentation_feedback::Event::Presented { flags, .. } = event {
            state.presented += 1;
            let zero_copy = flags
                .into_result()
                .is_ok_and(|f| f.contains(wp_presentation_feedback::Kind::ZeroCopy));
            if zero_copy {
                state.zero_copy += 1;
            }
            state.last_zero_copy = Some(zero_copy);
        }
    }
}

/// The connection, the window and what the sink keeps between frames.
struct Wayland {
    conn: Connection,
    queue: EventQueue<Events>,
    qh: QueueHandle<Events>,
    globals: ClientGlobals,
    window: Window,
    _feedback: Option<ZwpLinuxDmabufFeedbackV1>,
    /// The surface's heap hints object, when the compositor offers the global.
    hints: Option<WayheapSurfaceHeapHintsV1>,
    events: Events,
    cache: ImportCache,
    /// The wl_shm fallback (frames copied), made at the first frame that needs it.
    shm: Option<Swapchain>,
}

impl Wayland {
    /// Connects to `$WAYLAND_DISPLAY`, opens a window and waits for its configure and feedback.
    fn connect() -> Result<Self, String> {
        let conn = Connection::connect_to_env()
            .map_err(|e| format!("no Wayland compositor ($WAYLAND_DISPLAY): {e}"))?;
        let (list, queue) = globals::registry_queue_init::<Events>(&conn)
            .map_err(|e| format!("reading the compositor's globals: {e}"))?;
        let qh = queue.handle();
        let globals = ClientGlobals::bind(&list, &qh).map_err(|e| wayheap::error::chain(&e))?;
        let window = Window::new(
            &globals.compositor,
            &globals.wm_base,
            &qh,
            "wayheapsink",
            Some("wayheapsink"),
            false,
        );
        let feedback = globals.surface_feedback(&window.surface, &qh);
        let hints = list
            .bind::<WayheapHeapHintsManagerV1, _, _>(&qh, 1..=1, ManagerData::default())
            .ok()
            .map(|manager| manager.get_surface_hints(&window.surface, &qh, ()));
        let mut wl = Wayland {
            conn,
            queue,
            qh,
            globals,
            window,
            _feedback: feedback,
            hints,
            events: Events::default(),
            cache: ImportCache::default(),
            shm: None,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let has_feedback = wl._feedback.is_some();
        let has_hints = wl.hints.is_some();
        wl.dispatch_until(deadline, |w| {
            w.window.configured().is_some()
                && (!has_feedback || w.events.feedback.is_some())
                && (!has_hints || w.events.hints.updates() > 0)
        })?;
        Ok(wl)
    }

    /// Dispatches events until `done` or `deadline` (then an error).
    fn dispatch_until(
        &mut self,
        deadline: Instant,
        done: impl Fn(&Wayland) -> bool,
    ) -> Result<(), String> {
        loop {
            self.queue
                .dispatch_pending(&mut self.events)
                .map_err(|e| format!("the Wayland connection failed: {e}"))?;
            if done(self) {
                return Ok(());
            }
            self.conn
                .flush()
                .map_err(|e| format!("the Wayland connection failed: {e}"))?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("timed out waiting for the compositor".into());
            }
            let Some(guard) = self.queue.prepare_read() else {
                continue;
            };
            if wait_readable(guard.connection_fd(), left.min(Duration::from_millis(100))) {
                guard
                    .read()
                    .map_err(|e| format!("the Wayland connection failed: {e}"))?;
            }
        }
    }

    /// The memory the pool for `fourcc` frames should have: the policy usage the feedback
    /// decides and the heap hint chosen, if any; or `usage`, the element's property, when set.
    /// An error is the reason there is no dma-buf path. `policy` says which hinted heaps this
    /// process can open.
    fn memory(
        &self,
        fourcc: wayheap::layout::Fourcc,
        usage: Option<&str>,
        policy: &Allocator,
    ) -> Result<Memory, String> {
        let decision = self.globals.decide(self.events.feedback.as_ref(), fourcc);
        let Some(decided) = decision.path.usage() else {
            return Err(decision.reason);
        };
        let (usage, mut why) = match usage {
            // The user's choice: the hints are not followed either (a capture device may need
            // memory that the plane's hint would not give).
            Some(usage) => {
                return Ok(Memory {
                    usage: usage.to_owned(),
                    hint: None,
                    why: "the usage property".to_owned(),
                });
            }
            None => (decided.to_owned(), decision.reason),
        };
        let hints = (self.events.hints.updates() > 0).then(|| self.events.hints.current());
        let choice = HintedAllocator::new(policy.clone()).choose(hints);
        match &choice {
            Some(c @ HintChoice::Open(_)) => why.push_str(&format!("; heap hint: {c}")),
            // The compositor would allocate for us, but a pool allocates on GStreamer's
            // threads, away from the connection: the policy decides.
            Some(c @ HintChoice::Delegate(_)) => {
                why.push_str(&format!("; heap hint not used ({c}): the policy decides"))
            }
            None if hints.is_some() => why.push_str("; no usable heap hint: the policy decides"),
            None => {}
        }
        let hint = match choice {
            Some(HintChoice::Open(h)) => Some(h),
            _ => None,
        };
        Ok(Memory { usage, hint, why })
    }

    /// Attaches `wl_buffer` (showing `holds`) and commits, after the previous frame's callback.
    fn present(&mut self, wl_buffer: &WlBuffer, holds: gst::Buffer) -> Result<(), String> {
        let deadline = Instant::now() + PACING_WAIT;
        if self
            .dispatch_until(deadline, |w| !w.events.frame_pending)
            .is_err()
        {
            gst::debug!(
                CAT,
                "no frame callback within {PACING_WAIT:?}: presenting anyway"
            );
        }
        let surface = &self.window.surface;
        surface.attach(Some(wl_buffer), 0, 0);
        surface.damage_buffer(0, 0, i32::MAX, i32::MAX);
        surface.frame(&self.qh, ());
        if let Some(p) = &self.globals.presentation {
            p.feedback(surface, &self.qh, ());
        }
        surface.commit();
        self.events.frame_pending = true;
        self.events.held.insert(wl_buffer.id(), holds);
        self.conn
            .flush()
            .map_err(|e| format!("the Wayland connection failed: {e}"))
    }
}

impl Wayland {
    /// Copies `frame` into a wl_shm buffer of the fallback swapchain and presents it.
    fn present_shm(
        &mut self,
        frame: &gst_video::VideoFrameRef<&gst::BufferRef>,
    ) -> Result<(), String> {
        let info = frame.info();
        let fourcc = formats::fourcc(info.format())
            .ok_or_else(|| format!("no DRM layout for {}", info.format()))?;
        let layout = Layout::new(
            fourcc,
            info.width(),
            info.height(),
            LayoutOptions::default(),
        )
        .map_err(|e| e.to_string())?;
        if self.shm.as_ref().is_none_or(|c| c.layout() != &layout) {
            let allocator = Allocator::from_env().map_err(|e| wayheap::error::chain(&e))?;
            let protocols = SwapchainProtocols {
                linux_dmabuf: None,
                shm: self.globals.shm.as_ref(),
                presentation: self.globals.presentation.as_ref(),
            };
            let chain = Swapchain::new(
                &allocator,
                decide_without_linux_dmabuf(fourcc),
                layout.clone(),
                3,
                &protocols,
                &self.qh,
            )
            .map_err(|e| wayheap::error::chain(&e))?;
            self.shm = Some(chain);
        }
        // A released buffer, after the previous frame's callback (bounded, as for dma-bufs).
        let deadline = Instant::now() + PACING_WAIT;
        let _ = self.dispatch_until(deadline, |w| w.shm.as_ref().is_some_and(Swapchain::ready));
        let index = loop {
            if let Some(i) = self.shm.as_mut().and_then(Swapchain::acquire) {
                break i;
            }
            self.dispatch_until(deadline, |_| false)
                .map_err(|_| "no wl_shm buffer was released within a second".to_owned())?;
        };
        let chain = self.shm.as_mut().ok_or("the wl_shm swapchain is gone")?;
        let dst_stride = layout.planes[0].stride as usize;
        let src_stride = frame.plane_stride()[0] as usize;
        let row = (info.comp_pstride(0) as usize * info.width() as usize).min(dst_stride);
        let src = frame.plane_data(0).map_err(|e| e.to_string())?;
        chain
            .write(index, |dst| {
                for y in 0..info.height() as usize {
                    dst[y * dst_stride..y * dst_stride + row]
                        .copy_from_slice(&src[y * src_stride..y * src_stride + row]);
                }
            })
            .map_err(|e| wayheap::error::chain(&e))?;
        chain
            .present(index, &self.window.surface, &[], &self.qh)
            .map_err(|e| wayheap::error::chain(&e))?;
        self.conn
            .flush()
            .map_err(|e| format!("the Wayland connection failed: {e}"))
    }
}

/// The memory a pool is made of: a policy usage, and the heap hint that puts a heap first.
#[derive(Debug, Clone)]
struct Memory {
    usage: String,
    hint: Option<wayheap::client::hints::HeapHint>,
    /// Why, in words (the `decision` property).
    why: String,
}

impl Memory {
    /// The allocator for this memory: the policy, with the hinted heap first.
    fn allocator(&self, policy: Allocator) -> Allocator {
        HintedAllocator::new(policy).allocator_for(
            self.hint.clone().map(HintChoice::Open).as_ref(),
            &self.usage,
        )
    }

    /// Whether a pool of `self` serves what `other` asks (same usage, same hinted heap).
    fn same(&self, other: &Memory) -> bool {
        self.usage == other.usage
            && self.hint.as_ref().map(|h| &h.heap) == other.hint.as_ref().map(|h| &h.heap)
    }
}

/// poll(2) for input on the connection, up to `timeout`.
fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> bool {
    let mut fds = [rustix::event::PollFd::new(
        &fd,
        rustix::event::PollFlags::IN,
    )];
    let timeout = rustix::event::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    rustix::event::poll(&mut fds, Some(&timeout)).is_ok_and(|n| n > 0)
}

/// The image's planes in `buffer`: its video meta's, else GStreamer's default layout.
fn layout_of(buffer: &gst::BufferRef, info: &gst_video::VideoInfo, size: usize) -> Option<Layout> {
    let fourcc = formats::fourcc(info.format())?;
    let (offsets, strides): (Vec<usize>, Vec<i32>) = match buffer.meta::<gst_video::VideoMeta>() {
        Some(meta) => (meta.offset().to_vec(), meta.stride().to_vec()),
        None => (info.offset().to_vec(), info.stride().to_vec()),
    };
    let planes = (0..info.n_planes() as usize)
        .map(|i| {
            let height = info.comp_height(info.format_info().plane()[i] as u8);
            Some(PlaneLayout {
                buffer: 0,
                offset: u32::try_from(*offsets.get(i)?).ok()?,
                stride: u32::try_from(*strides.get(i)?).ok()?,
                height,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Layout {
        format: fourcc,
        width: info.width(),
        height: info.height(),
        planes,
        buffer_sizes: vec![size as u64],
    })
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct WayheapSink {
        wayland: Mutex<Option<Wayland>>,
        info: Mutex<Option<gst_video::VideoInfo>>,
        /// The pool offered upstream, also the target of copies.
        pool: Mutex<Option<WayheapBufferPool>>,
        copies: Mutex<u64>,
        decision: Mutex<Option<String>>,
        /// Frames handed to the compositor since start.
        shown: Mutex<u64>,
        /// The `usage` property: a policy usage that overrides the feedback's choice.
        usage: Mutex<Option<String>>,
        /// The memory the current pool was made of.
        pool_memory: Mutex<Option<Memory>>,
        /// The ZERO_COPY state last posted on the bus.
        reported_zero_copy: Mutex<Option<bool>>,
    }

    impl std::fmt::Debug for WayheapSink {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("WayheapSink").finish_non_exhaustive()
        }
    }

    impl WayheapSink {
        /// No dma-buf path: frames will be copied into wl_shm buffers; says so once.
        fn shm_fallback(&self, why: &str) {
            *crate::lock(&self.decision) = Some(format!("wl_shm: {why}"));
            *crate::lock(&self.pool) = None;
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Settings,
                ("no dma-buf path ({why}): every frame is copied into a wl_shm buffer, not zero-copy")
            );
            self.obj().notify("decision");
        }

        /// Shows `buffer` through the wl_shm fallback.
        fn show_shm(
            &self,
            buffer: &gst::Buffer,
            info: &gst_video::VideoInfo,
        ) -> Result<gst::FlowSuccess, gst::FlowError> {
            let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), info)
                .map_err(|e| {
                gst::element_imp_error!(self, gst::StreamError::Failed, ["mapping the frame: {e}"]);
                gst::FlowError::Error
            })?;
            let mut guard = crate::lock(&self.wayland);
            let wl = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
            wl.present_shm(&frame).map_err(|e| {
                gst::element_imp_error!(self, gst::ResourceError::Write, ["{e}"]);
                gst::FlowError::Error
            })?;
            drop(guard);
            *crate::lock(&self.copies) += 1;
            Ok(gst::FlowSuccess::Ok)
        }

        /// Posts a `wayheapsink-placement` element message when the compositor starts or stops
        /// presenting the frames ZERO_COPY (a plane took the surface, or it went back to
        /// composition).
        fn report_placement(&self, zero_copy: bool, presented: u64, zero_copy_frames: u64) {
            let mut reported = crate::lock(&self.reported_zero_copy);
            if *reported == Some(zero_copy) {
                return;
            }
            *reported = Some(zero_copy);
            drop(reported);
            let decision = crate::lock(&self.decision).clone().unwrap_or_default();
            let structure = gst::Structure::builder("wayheapsink-placement")
                .field("zero-copy", zero_copy)
                .field("frames-presented", presented)
                .field("zero-copy-frames", zero_copy_frames)
                .field("decision", decision)
                .build();
            gst::info!(CAT, imp = self, "placement: {structure}");
            let _ = self.obj().post_message(
                gst::message::Element::builder(structure)
                    .src(&*self.obj())
                    .build(),
            );
        }

        fn counts(&self) -> (u64, u64, u64) {
            let wl = crate::lock(&self.wayland);
            wl.as_ref().map_or((0, 0, 0), |w| {
                let shm = w.shm.as_ref().map(Swapchain::stats);
                (
                    w.events.presented + shm.as_ref().map_or(0, |s| s.presented),
                    w.events.zero_copy + shm.as_ref().map_or(0, |s| s.zero_copy),
                    w.cache.imports(),
                )
            })
        }

        /// A buffer whose one memory is a dma-buf holding `buffer`'s frame: `buffer` itself, or
        /// a counted copy into a pool buffer when upstream gave other memory.
        fn dmabuf_frame(
            &self,
            buffer: &gst::Buffer,
            info: &gst_video::VideoInfo,
        ) -> Result<gst::Buffer, gst::FlowError> {
            if dmabuf_fd(buffer).is_some() {
                return Ok(buffer.clone());
            }
            let fail = |what: String| {
                gst::element_imp_error!(self, gst::StreamError::Failed, ["{what}"]);
                gst::FlowError::Error
            };
            let pool = crate::lock(&self.pool).clone().ok_or_else(|| {
                fail("upstream gave system memory and no pool was negotiated".into())
            })?;
            if !pool.is_active() {
                pool.set_active(true)
                    .map_err(|e| fail(format!("activating the pool: {e}")))?;
            }
            let mut target = pool.acquire_buffer(None)?;
            let src = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), info)
                .map_err(|e| fail(format!("mapping the frame: {e}")))?;
            {
                let mut dst =
                    gst_video::VideoFrameRef::from_buffer_ref_writable(target.make_mut(), info)
                        .map_err(|e| fail(format!("mapping the pool buffer: {e}")))?;
                src.copy(&mut dst)
                    .map_err(|e| fail(format!("copying the frame: {e}")))?;
            }
            let mut copies = crate::lock(&self.copies);
            if *copies == 0 {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Settings,
                    ("upstream did not allocate from wayheapsink's dma-buf pool: every frame is copied into one (put wayheapalloc in front, or a source that takes the pool)")
                );
            }
            *copies += 1;
            Ok(target)
        }

        /// The wl_buffer for `frame`'s dma-buf: the import cache's after one fstat, else a new
        /// linux-dmabuf import (the dma-buf inspected and laid out only then).
        fn wl_buffer(
            &self,
            wl: &mut Wayland,
            frame: &gst::Buffer,
            info: &gst_video::VideoInfo,
        ) -> Result<WlBuffer, gst::FlowError> {
            let fail = |what: String| {
                gst::element_imp_error!(self, gst::StreamError::Failed, ["{what}"]);
                gst::FlowError::Error
            };
            let fd = dmabuf_fd(frame).ok_or_else(|| fail("the frame is not a dma-buf".into()))?;
            // SAFETY: the memory owns `fd` and lives (in `frame`) for this call; the fd is only
            // looked at and duplicated here.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            if let Some(cached) = wl.cache.cached(fd) {
                return Ok(cached);
            }
            let owned = fd
                .try_clone_to_owned()
                .map_err(|e| fail(format!("duplicating the dma-buf fd: {e}")))?;
            let dmabuf = DmaBuf::import(owned).map_err(|e| fail(wayheap::error::chain(&e)))?;
            let layout = layout_of(frame, info, dmabuf.size())
                .ok_or_else(|| fail(format!("no DRM layout for {}", info.format())))?;
            let spec =
                BufferSpec::from_layout(&layout, &[&dmabuf], 0).map_err(|e| fail(e.to_string()))?;
            let linux_dmabuf = wl
                .globals
                .linux_dmabuf
                .clone()
                .ok_or_else(|| fail("the compositor offers no linux-dmabuf".into()))?;
            let qh = wl.qh.clone();
            wl.cache
                .get_or_create(&dmabuf, &spec, &linux_dmabuf, &qh, || ())
                .map_err(|e| fail(wayheap::error::chain(&e)))
        }

        /// Counts a shown frame and lets `gst-launch -v` (deep-notify) see the counters: every
        /// 10th frame, and the pool's provider after the first and every 30th (a new pool after
        /// a renegotiation has its own).
        fn frame_shown(&self) {
            let shown = {
                let mut shown = crate::lock(&self.shown);
                *shown += 1;
                *shown
            };
            if shown % 10 == 0 {
                self.obj().notify("frames-presented");
                self.obj().notify("zero-copy-frames");
                self.obj().notify("copies");
            }
            if shown % 30 == 1 {
                self.obj().notify("provider");
            }
        }

        /// When the surface's feedback or heap hints changed (once the compositor places it: a
        /// scan-out tranche and a plane's heap when it means a plane) and now call for other
        /// memory than the pool's, asks upstream to renegotiate, which brings a new pool.
        fn follow_memory(&self, wanted: Memory) {
            let mut pool_memory = crate::lock(&self.pool_memory);
            if pool_memory.as_ref().is_none_or(|m| m.same(&wanted)) {
                return;
            }
            gst::info!(
                CAT,
                imp = self,
                "the compositor now asks for other memory ({}: {}) than the pool's: asking upstream to renegotiate",
                wanted.usage,
                wanted.why
            );
            *pool_memory = Some(wanted);
            drop(pool_memory);
            if let Some(pad) = self.obj().static_pad("sink") {
                pad.push_event(gst::event::Reconfigure::new());
            }
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for WayheapSink {
        const NAME: &'static str = "GstWayheapSink";
        type Type = super::WayheapSink;
        type ParentType = gst_video::VideoSink;
    }

    impl ObjectImpl for WayheapSink {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
                vec![
                    glib::ParamSpecUInt64::builder("frames-presented")
                        .nick("Frames presented")
                        .blurb("Frames the compositor presented (wp_presentation)")
                        .read_only()
                        .build(),
                    glib::ParamSpecUInt64::builder("zero-copy-frames")
                        .nick("Zero-copy frames")
                        .blurb("Frames the compositor presented ZERO_COPY: scanned out from the buffer itself, on a plane")
                        .read_only()
                        .build(),
                    glib::ParamSpecUInt64::builder("imports")
                        .nick("Imports")
                        .blurb("linux-dmabuf imports made (one per distinct dma-buf, then reused)")
                        .read_only()
                        .build(),
                    glib::ParamSpecUInt64::builder("copies")
                        .nick("Copies")
                        .blurb("Frames copied because upstream gave memory that is not a dma-buf")
                        .read_only()
                        .build(),
                    glib::ParamSpecString::builder("usage")
                        .nick("Usage")
                        .blurb("The wayheap policy usage of the memory offered upstream (e.g. camera, for a capture device that needs contiguous memory); unset: scanout or render, as the surface's linux-dmabuf feedback decides, from the heap the compositor's heap hints name first, and again whenever either changes")
                        .mutable_ready()
                        .build(),
                    glib::ParamSpecString::builder("provider")
                        .nick("Provider")
                        .blurb("The heap (or ion:NAME, or udmabuf) that served the pool's last buffer, and the providers passed over")
                        .read_only()
                        .build(),
                    glib::ParamSpecString::builder("decision")
                        .nick("Decision")
                        .blurb("What the surface's linux-dmabuf feedback decided (scanout or render memory) and why")
                        .read_only()
                        .build(),
                ]
            });
            PROPERTIES.as_ref()
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            match pspec.name() {
                "usage" => {
                    *crate::lock(&self.usage) = value
                        .get::<Option<String>>()
                        .expect("type checked upstream")
                        .filter(|u| !u.is_empty());
                }
                other => unreachable!("no writable property {other}"),
            }
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            let (presented, zero_copy, imports) = self.counts();
            match pspec.name() {
                "usage" => crate::lock(&self.usage).to_value(),
                "frames-presented" => presented.to_value(),
                "zero-copy-frames" => zero_copy.to_value(),
                "imports" => imports.to_value(),
                "copies" => crate::lock(&self.copies).to_value(),
                "decision" => crate::lock(&self.decision).to_value(),
                "provider" => crate::lock(&self.pool)
                    .as_ref()
                    .and_then(WayheapBufferPool::provider)
                    .to_value(),
                other => unreachable!("no property {other}"),
            }
        }
    }

    impl GstObjectImpl for WayheapSink {}

    impl ElementImpl for WayheapSink {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "wayheap Wayland video sink",
                    "Sink/Video",
                    "Shows dma-buf video in a Wayland window through linux-dmabuf, offering \
                     upstream the memory the compositor's feedback asks for, and counts the \
                     frames presented zero-copy",
                    "wayheap developers",
                )
            });
            Some(&*METADATA)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                vec![
                    gst::PadTemplate::new(
                        "sink",
                        gst::PadDirection::Sink,
                        gst::PadPresence::Always,
                        &formats::caps(),
                    )
                    .expect("sink template"),
                ]
            });
            TEMPLATES.as_ref()
        }
    }

    impl BaseSinkImpl for WayheapSink {
        fn start(&self) -> Result<(), gst::ErrorMessage> {
            let wl = Wayland::connect()
                .map_err(|e| gst::error_msg!(gst::ResourceError::OpenWrite, ["{e}"]))?;
            *crate::lock(&self.wayland) = Some(wl);
            *crate::lock(&self.copies) = 0;
            *crate::lock(&self.shown) = 0;
            *crate::lock(&self.reported_zero_copy) = None;
            Ok(())
        }

        fn stop(&self) -> Result<(), gst::ErrorMessage> {
            if let Some(pool) = crate::lock(&self.pool).take() {
                let _ = pool.set_active(false);
            }
            if let Some(mut wl) = crate::lock(&self.wayland).take() {
                wl.cache.clear();
                wl.window.toplevel.destroy();
                wl.window.xdg_surface.destroy();
                wl.window.surface.destroy();
                let _ = wl.conn.flush();
            }
            Ok(())
        }

        fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
            let info = gst_video::VideoInfo::from_caps(caps)
                .map_err(|e| gst::loggable_error!(CAT, "not video caps {caps}: {e}"))?;
            *crate::lock(&self.info) = Some(info);
            Ok(())
        }

        fn propose_allocation(
            &self,
            query: &mut gst::query::Allocation,
        ) -> Result<(), gst::LoggableError> {
            let (caps, info, fourcc) = queried_video(query)?;
            let usage = crate::lock(&self.usage).clone();
            // The policy file is read once per negotiation.
            let policy = Allocator::from_env()
                .map_err(|e| gst::loggable_error!(CAT, "{}", wayheap::error::chain(&e)))?;
            let memory = {
                let mut wl = crate::lock(&self.wayland);
                let wl = wl
                    .as_mut()
                    .ok_or_else(|| gst::loggable_error!(CAT, "not started"))?;
                // Decided now: what arrived before this is in the decision.
                wl.events.feedback_changed = false;
                wl.events.hints_changed = false;
                wl.memory(fourcc, usage.as_deref(), &policy)
            };
            let memory = match memory {
                Ok(memory) => memory,
                Err(why) => {
                    self.shm_fallback(&why);
                    return Ok(());
                }
            };
            *crate::lock(&self.decision) = Some(format!("{}: {}", memory.usage, memory.why));
            gst::info!(
                CAT,
                imp = self,
                "offering {} memory: {}",
                memory.usage,
                memory.why
            );
            self.obj().notify("decision");
            let allocator = memory.allocator(policy);
            let usage = memory.usage.clone();
            *crate::lock(&self.pool_memory) = Some(memory);
            match WayheapBufferPool::offer(query, &caps, &info, allocator, &usage, 3) {
                Ok(pool) => *crate::lock(&self.pool) = Some(pool),
                // Without a provider here, wl_shm copies (with a warning).
                Err(OfferError::NoDmaBuf(why)) => self.shm_fallback(&why),
                Err(OfferError::Pool(e)) => return Err(e),
            }
            Ok(())
        }
    }

    impl VideoSinkImpl for WayheapSink {
        fn show_frame(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
            let info = crate::lock(&self.info)
                .clone()
                .ok_or(gst::FlowError::NotNegotiated)?;
            let dmabuf_path = crate::lock(&self.wayland)
                .as_ref()
                .is_some_and(|w| w.globals.linux_dmabuf.is_some());
            let no_pool = crate::lock(&self.pool).is_none();
            if !dmabuf_path || (dmabuf_fd(buffer).is_none() && no_pool) {
                self.show_shm(buffer, &info)?;
                self.frame_shown();
                return Ok(gst::FlowSuccess::Ok);
            }
            let frame = self.dmabuf_frame(buffer, &info)?;
            let mut guard = crate::lock(&self.wayland);
            let wl = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
            let wl_buffer = self.wl_buffer(wl, &frame, &info)?;
            wl.present(&wl_buffer, frame).map_err(|e| {
                gst::element_imp_error!(self, gst::ResourceError::Write, ["{e}"]);
                gst::FlowError::Error
            })?;
            let placement = wl
                .events
                .last_zero_copy
                .map(|z| (z, wl.events.presented, wl.events.zero_copy));
            // Decided again only when new feedback or hints arrived, not every frame.
            let changed = std::mem::take(&mut wl.events.feedback_changed)
                | std::mem::take(&mut wl.events.hints_changed);
            let wanted = match (changed, formats::fourcc(info.format())) {
                (true, Some(fourcc)) => {
                    let usage = crate::lock(&self.usage).clone();
                    Allocator::from_env()
                        .ok()
                        .and_then(|policy| wl.memory(fourcc, usage.as_deref(), &policy).ok())
                }
                _ => None,
            };
            drop(guard);
            if let Some((zero_copy, presented, zero_copy_frames)) = placement {
                self.report_placement(zero_copy, presented, zero_copy_frames);
            }
            if let Some(wanted) = wanted {
                self.follow_memory(wanted);
            }
            self.frame_shown();
            Ok(gst::FlowSuccess::Ok)
        }
    }
}
