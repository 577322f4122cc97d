//! wayheap-test-client: a Wayland client whose every pixel is known, for compositor tests.
//!
//! A fullscreen xdg toplevel (shm or a dma-buf from a heap/udmabuf, the `quadrants` pattern or,
//! for dma-bufs filling the output, the `gradient`), optionally a desynchronised subsurface with a
//! dma-buf (`gradient`) at a position. Prints `READY` once the compositor has shown the first
//! frame, then stays connected for `--seconds`. `--bogus KIND` sends a hostile linux-dmabuf
//! request instead and reports the protocol error it gets (`PROTOCOL-ERROR ...`, exit 3).

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use wayheap::client::{
    BufferDescription, BufferError, BufferParamsHandler, BufferSpec, Feedback, FeedbackData,
    FeedbackError, FeedbackHandler, FeedbackTarget, PlaneSpec, SurfaceStack, SwapchainProtocols,
};
use wayheap::export::{MemfdBuffer, Udmabuf};
use wayheap::heap::HeapDir;
use wayheap_tests::pattern;
use wayland_client::globals::registry_queue_init;
use wayland_client::protocol::{
    wl_buffer, wl_callback, wl_compositor, wl_data_device, wl_data_device_manager, wl_data_offer,
    wl_data_source, wl_keyboard, wl_pointer, wl_seat, wl_shm, wl_shm_pool, wl_subcompositor,
    wl_surface,
};
use wayland_client::{Connection, Dispatch, Proxy, QueueHandle, delegate_noop};
use wayland_protocols::wp::color_representation::v1::client::{
    wp_color_representation_manager_v1::WpColorRepresentationManagerV1,
    wp_color_representation_surface_v1::{self, WpColorRepresentationSurfaceV1},
};
use wayland_protocols::wp::cursor_shape::v1::client::{
    wp_cursor_shape_device_v1, wp_cursor_shape_manager_v1,
};
use wayland_protocols::wp::fractional_scale::v1::client::{
    wp_fractional_scale_manager_v1, wp_fractional_scale_v1,
};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1, zwp_linux_dmabuf_v1,
};
use wayland_protocols::wp::presentation_time::client::{wp_presentation, wp_presentation_feedback};
use wayland_protocols::wp::viewporter::client::wp_viewporter;
use wayland_protocols::xdg::activation::v1::client::{xdg_activation_token_v1, xdg_activation_v1};
use wayland_protocols::xdg::decoration::zv1::client::{
    zxdg_decoration_manager_v1, zxdg_toplevel_decoration_v1,
};
use wayland_protocols::xdg::shell::client::xdg_wm_base;

const ARGB8888: u32 = u32::from_le_bytes(*b"AR24");
const XRGB8888: u32 = u32::from_le_bytes(*b"XR24");
/// RGBX8888: composable by pixman, but not scanned out by vkms's planes.
const RGBX8888: u32 = u32::from_le_bytes(*b"RX24");

/// An ARGB pixel in `format`'s 32-bit layout.
fn encode(format: u32, argb: u32) -> u32 {
    if format == RGBX8888 {
        (argb << 8) | 0xff
    } else {
        argb
    }
}

#[derive(Default)]
struct State {
    /// Presentation feedback counts (swapchain mode).
    presented: u64,
    zero_copy: u64,
    quiet_presentation: bool,
    /// Swapchain mode prints `FRAME n ms` as each frame is presented (ms since the first).
    frame_log: bool,
    /// What a version-3 linux-dmabuf listed.
    modifiers: wayheap::client::ModifierEvents,
    /// The latest complete feedback (swapchain mode decides from it).
    last_feedback: Option<Feedback>,
    /// Buffers the compositor made for `create` (kept: the test shows nothing with them).
    created: Vec<wl_buffer::WlBuffer>,
    frame_done: bool,
    /// The serial of the last wl_pointer.enter (needed to set a cursor).
    pointer_enter: Option<u32>,
    /// Drag and drop within this client (`--drag TEXT`).
    drag: Drag,
    /// Ask to be activated when the keyboard leaves (`--activate-when-unfocused`).
    activate_when_unfocused: bool,
    /// The keyboard left: ask for activation.
    wants_activation: bool,
    /// An activation token arrived: activate with it.
    activation_token: Option<String>,
}

/// Drag and drop of a text from our surface onto itself: a press of the left button starts the
/// drag, the release over the surface drops it, and the text comes back through the offer.
#[derive(Default)]
struct Drag {
    /// The text to drag (None: no drag and drop).
    text: Option<String>,
    /// The serial of the press that starts the drag, until it is started.
    press: Option<u32>,
    started: bool,
    /// The offer of the last enter (its [`DRAG_MIME`] accepted).
    offer: Option<wl_data_offer::WlDataOffer>,
    /// A dropped offer and the pipe its data comes through.
    receiving: Option<(wl_data_offer::WlDataOffer, OwnedFd)>,
    received: Vec<u8>,
    /// The drag's icon: a surface and its buffer ([`DRAG_ICON`], [`DRAG_ICON_SIZE`] square).
    icon: Option<(wl_surface::WlSurface, wl_buffer::WlBuffer)>,
}

/// The drag icon's colour (ARGB: opaque magenta) and size.
const DRAG_ICON: u32 = 0xffff_00ff;
const DRAG_ICON_SIZE: u32 = 32;

/// The one MIME type dragged.
const DRAG_MIME: &str = "text/plain;charset=utf-8";

impl FeedbackHandler for State {
    fn feedback(&mut self, _: &FeedbackTarget, feedback: Result<Feedback, FeedbackError>) {
        match feedback {
            Ok(f) => {
                let d = wayheap::client::decide(Some(&f), wayheap::layout::Fourcc::ARGB8888);
                let scanout = f.tranches.iter().filter(|t| t.scanout).count();
                println!(
                    "FEEDBACK {:?} tranches={} scanout_tranches={scanout}: {}",
                    d.path,
                    f.tranches.len(),
                    d.reason
                );
                self.last_feedback = Some(f);
            }
            Err(e) => println!("FEEDBACK-ERROR {e}"),
        }
    }
}

impl Dispatch<wl_pointer::WlPointer, ()> for State {
    fn event(
        st: &mut Self,
        _: &wl_pointer::WlPointer,
        ev: wl_pointer::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        // Printed so tests can check the compositor's pointer (e.g. the nested window's).
        match ev {
            wl_pointer::Event::Enter {
                serial,
                surface_x,
                surface_y,
                ..
            } => {
                st.pointer_enter = Some(serial);
                println!("POINTER-ENTER {surface_x:.0},{surface_y:.0}");
            }
            wl_pointer::Event::Motion {
                surface_x,
                surface_y,
                ..
            } => println!("POINTER-MOTION {surface_x:.0},{surface_y:.0}"),
            wl_pointer::Event::Button {
                button,
                state,
                serial,
                ..
            } => {
                println!("POINTER-BUTTON {button} {state:?}");
                let pressed =
                    state == wayland_client::WEnum::Value(wl_pointer::ButtonState::Pressed);
                if button == u32::from(wayheap_tests::uinput::BTN_LEFT)
                    && pressed
                    && st.drag.text.is_some()
                    && !st.drag.started
                {
                    st.drag.press = Some(serial);
                }
            }
            _ => {}
        }
    }
}

impl Dispatch<wl_keyboard::WlKeyboard, ()> for State {
    fn event(
        st: &mut Self,
        _: &wl_keyboard::WlKeyboard,
        ev: wl_keyboard::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        // Printed so tests can check the compositor's keyboard (evdev key codes, and the
        // keymap's symbols: its layout). Nothing here translates keys.
        match ev {
            wl_keyboard::Event::Keymap { fd, size, .. } => {
                let mut text = vec![0u8; size as usize];
                let n = rustix::io::pread(&fd, &mut text, 0).unwrap_or(0);
                let text = String::from_utf8_lossy(&text[..n]);
                // The compiled keymap names its layout as the first group's name.
                let group = text
                    .lines()
                    .find(|l| l.to_ascii_lowercase().contains("name[group1]"))
                    .unwrap_or("no group name");
                println!("KEYMAP {}", group.trim());
            }
            wl_keyboard::Event::Enter { .. } => println!("KEYBOARD-ENTER"),
            wl_keyboard::Event::Leave { .. } => {
                println!("KEYBOARD-LEAVE");
                // Once: two such clients would otherwise take the keyboard from each other
                // for ever.
                st.wants_activation = std::mem::take(&mut st.activate_when_unfocused);
            }
            wl_keyboard::Event::Key { key, state, .. } => println!("KEY {key} {state:?}"),
            _ => {}
        }
    }
}

impl Dispatch<wl_callback::WlCallback, ()> for State {
    fn event(
        st: &mut Self,
        _: &wl_callback::WlCallback,
        ev: wl_callback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { .. } = ev {
            st.frame_done = true;
        }
    }
}
impl Dispatch<wp_presentation_feedback::WpPresentationFeedback, ()> for State {
    fn event(
        st: &mut Self,
        _: &wp_presentation_feedback::WpPresentationFeedback,
        ev: wp_presentation_feedback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match ev {
            wp_presentation_feedback::Event::Presented { flags, .. } => {
                let zero_copy = flags
                    .into_result()
                    .is_ok_and(|f| f.contains(wp_presentation_feedback::Kind::ZeroCopy));
                st.presented += 1;
                st.zero_copy += u64::from(zero_copy);
                if !st.quiet_presentation {
                    println!("PRESENTED zero-copy={zero_copy}");
                }
            }
            wp_presentation_feedback::Event::Discarded => println!("DISCARDED"),
            _ => {}
        }
    }
}
impl BufferParamsHandler for State {
    fn buffer_created(
        &mut self,
        _: &zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1,
        description: &BufferDescription,
        buffer: Result<wl_buffer::WlBuffer, BufferError>,
    ) {
        match buffer {
            Ok(buffer) => {
                println!("CREATED {description}");
                self.created.push(buffer);
            }
            Err(e) => println!("CREATE-FAILED {e}"),
        }
    }
}

// The registry, and wl_compositor, wl_surface, wl_subcompositor, wl_subsurface, wl_shm,
// wl_shm_pool, wp_presentation, wp_viewporter and wp_viewport, all ignored.
wayheap::delegate_client_globals!(State);
wayheap::delegate_window!(State);
wayheap::delegate_dmabuf_feedback!(State);
wayheap::delegate_buffer_params!(State);
delegate_noop!(State: ignore wl_seat::WlSeat);
delegate_noop!(State: ignore wl_data_device_manager::WlDataDeviceManager);
delegate_noop!(State: ignore zxdg_decoration_manager_v1::ZxdgDecorationManagerV1);
delegate_noop!(State: ignore wp_fractional_scale_manager_v1::WpFractionalScaleManagerV1);
delegate_noop!(State: ignore xdg_activation_v1::XdgActivationV1);

impl Dispatch<zxdg_toplevel_decoration_v1::ZxdgToplevelDecorationV1, ()> for State {
    fn event(
        _: &mut Self,
        _: &zxdg_toplevel_decoration_v1::ZxdgToplevelDecorationV1,
        ev: zxdg_toplevel_decoration_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let zxdg_toplevel_decoration_v1::Event::Configure { mode } = ev {
            match mode.into_result() {
                Ok(mode) => println!("DECORATION {mode:?}"),
                Err(e) => println!("DECORATION unknown {e:?}"),
            }
        }
    }
}

impl Dispatch<wp_fractional_scale_v1::WpFractionalScaleV1, ()> for State {
    fn event(
        _: &mut Self,
        _: &wp_fractional_scale_v1::WpFractionalScaleV1,
        ev: wp_fractional_scale_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wp_fractional_scale_v1::Event::PreferredScale { scale } = ev {
            println!("FRACTIONAL-SCALE {scale}");
        }
    }
}

impl Dispatch<xdg_activation_token_v1::XdgActivationTokenV1, ()> for State {
    fn event(
        st: &mut Self,
        object: &xdg_activation_token_v1::XdgActivationTokenV1,
        ev: xdg_activation_token_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_activation_token_v1::Event::Done { token } = ev {
            st.activation_token = Some(token);
            object.destroy();
        }
    }
}

/// Asks for a token when the keyboard left, and activates our surface with it when it came
/// (as a launcher hands a token to the application it starts, here to ourselves).
fn drive_activation(
    st: &mut State,
    qh: &QueueHandle<State>,
    activation: &xdg_activation_v1::XdgActivationV1,
    surface: &wl_surface::WlSurface,
) {
    if std::mem::take(&mut st.wants_activation) {
        let token = activation.get_activation_token(qh, ());
        token.set_surface(surface);
        token.commit();
    }
    if let Some(token) = st.activation_token.take() {
        activation.activate(token, surface);
        println!("ACTIVATE");
    }
}

impl Dispatch<wl_data_device::WlDataDevice, ()> for State {
    fn event(
        st: &mut Self,
        _: &wl_data_device::WlDataDevice,
        ev: wl_data_device::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match ev {
            wl_data_device::Event::Enter {
                serial,
                x,
                y,
                id: Some(offer),
                ..
            } => {
                use wl_data_device_manager::DndAction;
                println!("DND-ENTER {x:.0},{y:.0}");
                offer.accept(serial, Some(DRAG_MIME.to_owned()));
                if offer.version() >= 3 {
                    offer.set_actions(DndAction::Copy, DndAction::Copy);
                }
                st.drag.offer = Some(offer);
            }
            wl_data_device::Event::Leave => {
                if let Some(offer) = st.drag.offer.take() {
                    offer.destroy();
                }
                println!("DND-LEAVE");
            }
            // Not used here: the selection's offer goes at once.
            wl_data_device::Event::Selection { id: Some(offer) } => offer.destroy(),
            wl_data_device::Event::Drop => {
                let offer = st.drag.offer.take().expect("a drop without an enter");
                let flags = rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK;
                let (read, write) = rustix::pipe::pipe_with(flags).expect("pipe");
                offer.receive(DRAG_MIME.to_owned(), write.as_fd());
                println!("DND-DROP");
                st.drag.receiving = Some((offer, read));
            }
            _ => {}
        }
    }

    wayland_client::event_created_child!(State, wl_data_device::WlDataDevice, [
        wl_data_device::EVT_DATA_OFFER_OPCODE => (wl_data_offer::WlDataOffer, ()),
    ]);
}

impl Dispatch<wl_data_offer::WlDataOffer, ()> for State {
    fn event(
        _: &mut Self,
        _: &wl_data_offer::WlDataOffer,
        ev: wl_data_offer::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_data_offer::Event::Offer { mime_type } = ev {
            println!("DND-OFFER {mime_type}");
        }
    }
}

impl Dispatch<wl_data_source::WlDataSource, ()> for State {
    fn event(
        st: &mut Self,
        source: &wl_data_source::WlDataSource,
        ev: wl_data_source::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match ev {
            wl_data_source::Event::Send { mime_type, fd } => {
                // The reader is this thread, later: the whole text must fit the pipe's buffer
                // (options() bounds it), or this write would wait for ever.
                let text = st.drag.text.as_deref().unwrap_or_default();
                let written = rustix::io::write(&fd, text.as_bytes()).expect("writing the text");
                println!("DND-SEND {mime_type} {written} bytes");
            }
            wl_data_source::Event::DndDropPerformed => println!("DND-DROP-PERFORMED"),
            wl_data_source::Event::DndFinished => {
                println!("DND-FINISHED");
                source.destroy();
            }
            wl_data_source::Event::Cancelled => {
                println!("DND-CANCELLED");
                source.destroy();
            }
            _ => {}
        }
    }
}

/// Starts the drag a press asked for: our text from our surface, with the icon.
fn start_drag_if_pressed(
    st: &mut State,
    qh: &QueueHandle<State>,
    manager: &wl_data_device_manager::WlDataDeviceManager,
    device: &wl_data_device::WlDataDevice,
    surface: &wl_surface::WlSurface,
) {
    let Some(serial) = st.drag.press.take() else {
        return;
    };
    let source = manager.create_data_source(qh, ());
    source.offer(DRAG_MIME.to_owned());
    if source.version() >= 3 {
        source.set_actions(wl_data_device_manager::DndAction::Copy);
    }
    let icon = st.drag.icon.as_ref();
    device.start_drag(Some(&source), surface, icon.map(|(s, _)| s), serial);
    // The icon's content after it has its role, as the protocol has it.
    if let Some((icon, buffer)) = icon {
        icon.attach(Some(buffer), 0, 0);
        icon.damage_buffer(0, 0, DRAG_ICON_SIZE as i32, DRAG_ICON_SIZE as i32);
        icon.commit();
    }
    st.drag.started = true;
    println!("DRAG-START");
}

/// Reads what a drop brought, without waiting: the data comes from our own source, through
/// this same event queue, so it is there only after a roundtrip has passed the request on.
fn read_drop(st: &mut State) {
    let Some((_, pipe)) = &st.drag.receiving else {
        return;
    };
    let mut chunk = [0u8; 4096];
    loop {
        match rustix::io::read(pipe, &mut chunk) {
            Ok(0) => {
                let (offer, _) = st.drag.receiving.take().expect("receiving");
                if offer.version() >= 3 {
                    offer.finish();
                }
                offer.destroy();
                println!("DROPPED {}", String::from_utf8_lossy(&st.drag.received));
                return;
            }
            Ok(n) => st.drag.received.extend_from_slice(&chunk[..n]),
            Err(rustix::io::Errno::AGAIN) => return,
            Err(e) => usage(&format!("reading the dropped data: {e}")),
        }
    }
}

delegate_noop!(State: ignore wl_buffer::WlBuffer);
delegate_noop!(State: ignore WpColorRepresentationManagerV1);
delegate_noop!(State: ignore wp_cursor_shape_manager_v1::WpCursorShapeManagerV1);
delegate_noop!(State: ignore wp_cursor_shape_device_v1::WpCursorShapeDeviceV1);
delegate_noop!(State: ignore WpColorRepresentationSurfaceV1);
wayheap::delegate_swapchain!(State);
impl wayheap::client::ModifierEventsHandler for State {
    fn modifier_events(&mut self) -> &mut wayheap::client::ModifierEvents {
        &mut self.modifiers
    }
}
wayheap::delegate_linux_dmabuf!(State);

/// Where a buffer's memory comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Shm(ShmMemory),
    System,
    Cma,
    Udmabuf,
}

fn parse_source(s: &str) -> Source {
    match s {
        "shm" => Source::Shm(ShmMemory::Sealed),
        "shm-unsealed" => Source::Shm(ShmMemory::Unsealed),
        "shm-file" => Source::Shm(ShmMemory::File),
        "system" => Source::System,
        "cma" => Source::Cma,
        "udmabuf" => Source::Udmabuf,
        other => usage(&format!("unknown buffer source {other:?}")),
    }
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "wayheap-test-client: {msg}\nusage: wayheap-test-client [--main SOURCE] [--opaque] [--fullscreen] \
         [--sub SOURCE:WxH@X,Y]... [--sub-format AR24|RX24|NV12|NV21|YU12|P010|YUYV|...] [--presentation] [--feedback] [--sub-scale WxH] [--cursor SOURCE:WxH] [--cursor-shape NAME] [--pointer] [--keyboard] [--drag TEXT] [--decoration] [--fractional-scale] [--activate-when-unfocused] [--tokens N] [--seconds N] [--bogus KIND] [--swapchain BUFFERS:FRAMES [--frame-log]] [--shm-grow-after SECS]\n  SOURCE: shm|shm-unsealed|shm-file|system|cma|udmabuf\n  \
         KIND: offset-overflow|too-small|memfd|socket|plane-count|chroma-out-of-bounds|unknown-format"
    );
    std::process::exit(2)
}

struct Options {
    main: Source,
    opaque: bool,
    /// Ask for fullscreen (compositor-demo makes every window fullscreen; Weston's desktop
    /// shell only when asked).
    fullscreen: bool,
    sub: Vec<(Source, u32, u32, i32, i32)>,
    sub_format: u32,
    /// After READY, attach the first subsurface's buffer again with full damage at every frame
    /// callback (a camera's frame rate, without the camera): for benchmarks.
    recommit: bool,
    /// The first YUV subsurface's colour, announced with wp_color_representation_v1 when set.
    sub_colour: Option<wayheap::yuv::Colour>,
    presentation: bool,
    cursor: Option<(Source, u32, u32)>,
    /// Bind wl_pointer (and print its events) even without a cursor.
    pointer: bool,
    /// Ask for this named cursor (wp_cursor_shape_v1) when the pointer enters.
    cursor_shape: Option<wp_cursor_shape_device_v1::Shape>,
    /// Bind wl_keyboard and print its keys.
    keyboard: bool,
    /// Drag this text from our surface onto itself when the left button is pressed.
    drag: Option<String>,
    /// Ask for server-side decorations (zxdg_decoration_manager_v1) and print the mode.
    decoration: bool,
    /// Print the preferred scale (wp_fractional_scale_v1).
    fractional_scale: bool,
    /// Bind the keyboard; when it first leaves, activate our window again
    /// (xdg_activation_v1).
    activate_when_unfocused: bool,
    /// Ask for this many activation tokens at once and keep them (a client hoarding tokens).
    tokens: Option<u32>,
    feedback: bool,
    /// wp_viewporter destination size for the first subsurface (scaling).
    sub_scale: Option<(i32, i32)>,
    /// Swapchain mode: (buffers, frames) on a 256x192 subsurface at (100, 80).
    swapchain: Option<(usize, u32)>,
    /// Import mode: frames alternating between two "foreign" dma-bufs.
    import_frames: Option<u32>,
    seconds: u64,
    bogus: Option<String>,
    frame_log: bool,
    /// Show a grey shm main surface, then after this many seconds grow its pool and show the
    /// quadrants from a buffer past the pool's first end (a pool resized while scanned out).
    shm_grow_after: Option<u64>,
}

fn options() -> Options {
    let mut o = Options {
        main: Source::Shm(ShmMemory::Sealed),
        opaque: false,
        fullscreen: false,
        sub: Vec::new(),
        sub_format: ARGB8888,
        sub_colour: None,
        recommit: false,
        presentation: false,
        cursor: None,
        pointer: false,
        cursor_shape: None,
        keyboard: false,
        drag: None,
        decoration: false,
        fractional_scale: false,
        activate_when_unfocused: false,
        tokens: None,
        feedback: false,
        sub_scale: None,
        swapchain: None,
        import_frames: None,
        seconds: 5,
        bogus: None,
        frame_log: false,
        shm_grow_after: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--main" => o.main = parse_source(&val()),
            "--opaque" => o.opaque = true,
            "--fullscreen" => o.fullscreen = true,
            "--frame-log" => o.frame_log = true,
            "--recommit" => o.recommit = true,
            "--shm-grow-after" => {
                o.shm_grow_after = Some(
                    val()
                        .parse()
                        .unwrap_or_else(|_| usage("--shm-grow-after SECS")),
                )
            }
            "--seconds" => o.seconds = val().parse().unwrap_or_else(|_| usage("--seconds N")),
            "--bogus" => o.bogus = Some(val()),
            "--presentation" => o.presentation = true,
            "--feedback" => o.feedback = true,
            "--import-frames" => {
                o.import_frames = Some(val().parse().unwrap_or_else(|_| usage("--import-frames N")))
            }
            "--swapchain" => {
                let v = val();
                let parsed = v
                    .split_once(':')
                    .and_then(|(n, f)| Some((n.parse().ok()?, f.parse().ok()?)));
                o.swapchain = Some(parsed.unwrap_or_else(|| usage("--swapchain BUFFERS:FRAMES")));
            }
            "--sub-scale" => {
                let v = val();
                let parsed = v
                    .split_once('x')
                    .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
                o.sub_scale = Some(parsed.unwrap_or_else(|| usage("--sub-scale WxH")));
            }
            "--pointer" => o.pointer = true,
            "--cursor-shape" => {
                use wp_cursor_shape_device_v1::Shape;
                o.cursor_shape = Some(match val().as_str() {
                    "text" => Shape::Text,
                    "pointer" => Shape::Pointer,
                    "crosshair" => Shape::Crosshair,
                    "wait" => Shape::Wait,
                    _ => usage("--cursor-shape text|pointer|crosshair|wait"),
                })
            }
            "--keyboard" => o.keyboard = true,
            "--drag" => {
                let text = val();
                // One thread writes it into the pipe and reads it back: it must fit the pipe.
                if text.len() > 4096 {
                    usage("--drag TEXT: at most 4096 bytes");
                }
                o.drag = Some(text)
            }
            "--decoration" => o.decoration = true,
            "--fractional-scale" => o.fractional_scale = true,
            "--activate-when-unfocused" => o.activate_when_unfocused = true,
            "--tokens" => o.tokens = Some(val().parse().unwrap_or_else(|_| usage("--tokens N"))),
            "--cursor" => {
                let v = val();
                let parsed = (|| {
                    let (src, size) = v.split_once(':')?;
                    let (w, h) = size.split_once('x')?;
                    Some((parse_source(src), w.parse().ok()?, h.parse().ok()?))
                })();
                o.cursor = Some(parsed.unwrap_or_else(|| usage("--cursor SOURCE:WxH")));
            }
            "--sub-format" => {
                o.sub_format = match val().as_str() {
                    "AR24" => ARGB8888,
                    "RX24" => RGBX8888,
                    yuv => wayheap::layout::Fourcc::from_code(yuv)
                        .filter(|f| wayheap::yuv::YuvFormat::of(*f).is_some())
                        .map(|f| f.0)
                        .unwrap_or_else(|| {
                            usage(&format!(
                                "--sub-format AR24|RX24|a YUV fourcc (NV12...), not {yuv}"
                            ))
                        }),
                }
            }
            "--sub-colour" => {
                use wayheap::yuv::{Colour, ColourRange, Encoding};
                let v = val();
                let (e, r) = v
                    .split_once('-')
                    .unwrap_or_else(|| usage("--sub-colour bt601|bt709|bt2020-limited|full"));
                let encoding = match e {
                    "bt601" => Encoding::Bt601,
                    "bt709" => Encoding::Bt709,
                    "bt2020" => Encoding::Bt2020,
                    _ => usage("--sub-colour bt601|bt709|bt2020-limited|full"),
                };
                let range = match r {
                    "limited" => ColourRange::Limited,
                    "full" => ColourRange::Full,
                    _ => usage("--sub-colour bt601|bt709|bt2020-limited|full"),
                };
                o.sub_colour = Some(Colour::new(encoding, range));
            }
            "--sub" => {
                let v = val();
                let parsed = (|| {
                    let (src, rest) = v.split_once(':')?;
                    let (size, pos) = rest.split_once('@')?;
                    let (w, h) = size.split_once('x')?;
                    let (x, y) = pos.split_once(',')?;
                    Some((
                        parse_source(src),
                        w.parse().ok()?,
                        h.parse().ok()?,
                        x.parse().ok()?,
                        y.parse().ok()?,
                    ))
                })();
                o.sub
                    .push(parsed.unwrap_or_else(|| usage("--sub SOURCE:WxH@X,Y")));
            }
            _ => usage(&format!("unknown argument {a}")),
        }
    }
    o
}

/// A dma-buf (fd, stride) of `w` x `h` ARGB from `source`, filled with `f`.
fn dmabuf(source: Source, w: u32, h: u32, f: impl Fn(u32, u32) -> u32) -> (OwnedFd, u32) {
    let stride = (w * 4).div_ceil(256) * 256;
    let len = (stride * h) as usize;
    let fd = dmabuf_filled(source, len, |bytes| {
        pattern::fill(bytes, stride as usize, w, h, &f)
    });
    (fd, stride)
}

/// A dma-buf of `w` x `h` in the YUV `format` from `source` (every plane in one buffer),
/// showing `f` through `colour`; returns the fd and each plane's (offset, stride).
fn yuv_dmabuf(
    source: Source,
    colour: wayheap::yuv::Colour,
    format: u32,
    w: u32,
    h: u32,
    f: impl Fn(u32, u32) -> u32,
) -> (OwnedFd, Vec<(u32, u32)>) {
    let layout = wayheap::layout::Layout::new(
        wayheap::layout::Fourcc(format),
        w,
        h,
        wayheap::layout::LayoutOptions::default(),
    )
    .unwrap_or_else(|e| usage(&e.to_string()));
    let fd = dmabuf_filled(source, layout.total_size() as usize, |bytes| {
        pattern::fill_yuv(bytes, &layout, colour, &f)
    });
    let planes = layout.planes.iter().map(|p| (p.offset, p.stride)).collect();
    (fd, planes)
}

/// A dma-buf of `len` bytes from `source`, written by `fill`.
fn dmabuf_filled(source: Source, len: usize, fill: impl Fn(&mut [u8])) -> OwnedFd {
    let buf = match source {
        Source::System => HeapDir::default()
            .open("system")
            .and_then(|heap| heap.allocate_for(len, "test-client")),
        Source::Cma => {
            let dir = HeapDir::default();
            let name = dir
                .cma_heap()
                .unwrap_or_else(|| usage("no CMA heap on this system"));
            dir.open(&name)
                .and_then(|heap| heap.allocate_for(len, "test-client"))
        }
        Source::Udmabuf => {
            let u = Udmabuf::open().unwrap_or_else(|e| usage(&wayheap::error::chain(&e)));
            let mut mem =
                MemfdBuffer::new(len).unwrap_or_else(|e| usage(&wayheap::error::chain(&e)));
            fill(&mut mem);
            let exported = mem
                .export_range_for(&u, 0..len, "test-client")
                .unwrap_or_else(|e| usage(&wayheap::error::chain(&e)));
            return exported.dmabuf.fd().try_clone_to_owned().expect("dup");
        }
        Source::Shm(_) => unreachable!("shm is not a dma-buf"),
    }
    .unwrap_or_else(|e| usage(&wayheap::error::chain(&e)));
    {
        let mut map = buf.map().expect("mapping the dma-buf");
        let mut bytes = map.write().expect("DMA_BUF_IOCTL_SYNC");
        fill(&mut bytes);
    }
    buf.fd().try_clone_to_owned().expect("dup")
}

fn dmabuf_buffer(
    linux_dmabuf: &zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
    qh: &QueueHandle<State>,
    fd: &OwnedFd,
    planes: &[(u32, u32)],
    w: i32,
    h: i32,
    format: u32,
) -> wl_buffer::WlBuffer {
    spec(fd, planes, w, h, format).create_immed(linux_dmabuf, qh, ())
}

/// A LINEAR buffer spec over one fd (planes as (offset, stride)).
fn spec<'a>(fd: &'a OwnedFd, planes: &[(u32, u32)], w: i32, h: i32, format: u32) -> BufferSpec<'a> {
    BufferSpec {
        width: w,
        height: h,
        format: wayheap::layout::Fourcc(format),
        modifier: 0, // LINEAR
        planes: planes
            .iter()
            .map(|&(offset, stride)| PlaneSpec {
                fd: fd.as_fd(),
                offset,
                stride,
            })
            .collect(),
        sampling_device: None,
    }
}

/// The memory behind a wl_shm pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShmMemory {
    /// A memfd sealed against shrinking (wayheap's MemfdBuffer, as most toolkits make).
    Sealed,
    /// A memfd without seals (no MFD_ALLOW_SEALING).
    Unsealed,
    /// An unlinked file in /var/tmp (a disk, or the guest's overlay: not shmem).
    File,
}

/// A pool file of `len` bytes holding `bytes` at its start.
fn shm_file(kind: ShmMemory, len: usize, bytes: &[u8]) -> OwnedFd {
    use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};
    let fd = match kind {
        ShmMemory::Sealed => {
            let fd = rustix::fs::memfd_create(
                "test-client-shm",
                MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
            )
            .expect("memfd");
            rustix::fs::ftruncate(&fd, len as u64).expect("ftruncate");
            rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK).expect("F_SEAL_SHRINK");
            fd
        }
        ShmMemory::Unsealed => {
            rustix::fs::memfd_create("test-client-shm", MemfdFlags::CLOEXEC).expect("memfd")
        }
        ShmMemory::File => {
            let path = format!("/var/tmp/wayheap-test-client-{}", std::process::id());
            let fd = rustix::fs::open(
                &path,
                OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .expect("a file in /var/tmp");
            let _ = std::fs::remove_file(&path);
            fd
        }
    };
    rustix::fs::ftruncate(&fd, len as u64).expect("ftruncate");
    rustix::io::pwrite(&fd, bytes, 0).expect("writing the pool");
    fd
}

fn shm_buffer(
    shm: &wl_shm::WlShm,
    qh: &QueueHandle<State>,
    kind: ShmMemory,
    format: wl_shm::Format,
    w: u32,
    h: u32,
    f: impl Fn(u32, u32) -> u32,
) -> wl_buffer::WlBuffer {
    let mut bytes = vec![0; (w * h * 4) as usize];
    pattern::fill(&mut bytes, (w * 4) as usize, w, h, f);
    let fd = shm_file(kind, bytes.len(), &bytes);
    let pool = shm.create_pool(fd.as_fd(), (w * h * 4) as i32, qh, ());
    let buffer = pool.create_buffer(0, w as i32, h as i32, (w * 4) as i32, format, qh, ());
    pool.destroy();
    buffer
}

/// A sealed pool that grows while its first buffer is shown: the first buffer is grey, the one
/// made after the growth (at the old end, page-aligned) has the quadrants; both XRGB8888, so the
/// surface can take the primary plane.
struct GrowingPool {
    fd: OwnedFd,
    pool: wl_shm_pool::WlShmPool,
    first: wl_buffer::WlBuffer,
    size: (u32, u32),
}

impl GrowingPool {
    fn new(shm: &wl_shm::WlShm, qh: &QueueHandle<State>, w: u32, h: u32) -> Self {
        let len = (w * h * 4) as usize;
        let grey = 0xff80_8080u32.to_le_bytes().repeat(len / 4);
        let fd = shm_file(ShmMemory::Sealed, len, &grey);
        let pool = shm.create_pool(fd.as_fd(), len as i32, qh, ());
        let first = pool.create_buffer(
            0,
            w as i32,
            h as i32,
            (w * 4) as i32,
            wl_shm::Format::Xrgb8888,
            qh,
            (),
        );
        Self {
            fd,
            pool,
            first,
            size: (w, h),
        }
    }

    /// Doubles the pool (page-rounded) and returns a buffer at its old end.
    fn grow(&self, qh: &QueueHandle<State>) -> wl_buffer::WlBuffer {
        let (w, h) = self.size;
        let len = (w * h * 4) as usize;
        let at = len.div_ceil(rustix::param::page_size()) * rustix::param::page_size();
        let mut bytes = vec![0; len];
        pattern::fill(&mut bytes, (w * 4) as usize, w, h, |x, y| {
            pattern::quadrants(x, y, w, h)
        });
        rustix::fs::ftruncate(&self.fd, (at + len) as u64).expect("growing the pool");
        rustix::io::pwrite(&self.fd, &bytes, at as u64).expect("writing the pool");
        self.pool.resize((at + len) as i32);
        self.pool.create_buffer(
            at as i32,
            w as i32,
            h as i32,
            (w * 4) as i32,
            wl_shm::Format::Xrgb8888,
            qh,
            (),
        )
    }
}

/// The serial of the pointer's enter on our surface (what setting a cursor needs), waiting up to
/// a minute for it.
fn pointer_enter_serial(queue: &mut wayland_client::EventQueue<State>, st: &mut State) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    while st.pointer_enter.is_none() && Instant::now() < deadline {
        queue.roundtrip(st).expect("waiting for the pointer");
        std::thread::sleep(Duration::from_millis(20));
    }
    st.pointer_enter
        .unwrap_or_else(|| usage("the pointer never entered our surface"))
}

fn main() {
    let o = options();
    let conn =
        Connection::connect_to_env().unwrap_or_else(|e| usage(&format!("no compositor: {e}")));
    let (globals, mut queue) = registry_queue_init::<State>(&conn).expect("registry");
    let qh = queue.handle();
    let compositor: wl_compositor::WlCompositor =
        globals.bind(&qh, 4..=6, ()).expect("wl_compositor");
    let wm: xdg_wm_base::XdgWmBase = globals.bind(&qh, 1..=6, ()).expect("xdg_wm_base");
    let shm: wl_shm::WlShm = globals.bind(&qh, 1..=1, ()).expect("wl_shm");
    let linux_dmabuf = match wayheap::client::bind_linux_dmabuf(&globals, &qh) {
        Ok(d) => {
            println!("LINUX-DMABUF version={}", d.version());
            Some(d)
        }
        Err(e) => {
            println!("LINUX-DMABUF none: {e}");
            None
        }
    };
    let mut st = State::default();

    let mut _colour_objects: Vec<WpColorRepresentationSurfaceV1> = Vec::new();
    if let Some(kind) = o.bogus.as_deref().filter(|k| k.starts_with("colour-")) {
        bogus_colour(kind, &globals, &compositor, &qh);
        finish_bogus(&conn, &mut queue, &mut st);
    }
    if let Some(kind) = &o.bogus {
        let dmabuf = linux_dmabuf
            .as_ref()
            .unwrap_or_else(|| usage("the compositor has no linux-dmabuf"));
        bogus(kind, dmabuf, &qh);
        finish_bogus(&conn, &mut queue, &mut st);
    }

    // The pointer before the window: the compositor sends its enter when the window maps.
    let pointer_wanted =
        o.cursor.is_some() || o.pointer || o.cursor_shape.is_some() || o.drag.is_some();
    let keyboard_wanted = o.keyboard || o.activate_when_unfocused;
    let seat = (pointer_wanted || keyboard_wanted).then(|| {
        globals
            .bind::<wl_seat::WlSeat, _, _>(&qh, 1..=7, ())
            .expect("wl_seat")
    });
    let _keyboard = keyboard_wanted.then(|| seat.as_ref().expect("seat").get_keyboard(&qh, ()));
    let pointer = pointer_wanted.then(|| seat.as_ref().expect("seat").get_pointer(&qh, ()));
    st.drag.text = o.drag.clone();
    if o.drag.is_some() {
        let icon = compositor.create_surface(&qh, ());
        let size = DRAG_ICON_SIZE;
        let buffer = shm_buffer(
            &shm,
            &qh,
            ShmMemory::Sealed,
            wl_shm::Format::Argb8888,
            size,
            size,
            |_, _| DRAG_ICON,
        );
        st.drag.icon = Some((icon, buffer));
    }
    let drag_device = o.drag.is_some().then(|| {
        let manager: wl_data_device_manager::WlDataDeviceManager = globals
            .bind(&qh, 1..=3, ())
            .expect("wl_data_device_manager");
        let device = manager.get_data_device(seat.as_ref().expect("seat"), &qh, ());
        (manager, device)
    });
    let window = wayheap::client::window::Window::new(
        &compositor,
        &wm,
        &qh,
        "wayheap-test-client",
        None,
        o.fullscreen,
    );
    while window.configured().is_none() {
        queue
            .blocking_dispatch(&mut st)
            .expect("waiting for configure");
    }
    // Before the first buffer, as the protocols ask.
    let _decoration = o.decoration.then(|| {
        let manager: zxdg_decoration_manager_v1::ZxdgDecorationManagerV1 = globals
            .bind(&qh, 1..=1, ())
            .expect("zxdg_decoration_manager_v1");
        let decoration = manager.get_toplevel_decoration(&window.toplevel, &qh, ());
        // Asked for client-side: a kiosk that decorates nothing says server-side anyway.
        decoration.set_mode(zxdg_toplevel_decoration_v1::Mode::ClientSide);
        decoration
    });
    let _fractional_scale = o.fractional_scale.then(|| {
        let manager: wp_fractional_scale_manager_v1::WpFractionalScaleManagerV1 = globals
            .bind(&qh, 1..=1, ())
            .expect("wp_fractional_scale_manager_v1");
        manager.get_fractional_scale(&window.surface, &qh, ())
    });
    if o.decoration || o.fractional_scale {
        // Their configure (decoration: with a new xdg_surface.configure, which the window
        // acknowledges) before the first buffer, as xdg-decoration asks.
        queue.roundtrip(&mut st).expect("roundtrip");
    }
    st.activate_when_unfocused = o.activate_when_unfocused;
    let activation = (o.activate_when_unfocused || o.tokens.is_some()).then(|| {
        globals
            .bind::<xdg_activation_v1::XdgActivationV1, _, _>(&qh, 1..=1, ())
            .expect("xdg_activation_v1")
    });
    if let (Some(n), Some(activation)) = (o.tokens, &activation) {
        // Each object goes once answered; its token stays with the compositor until the
        // compositor drops it.
        for _ in 0..n {
            activation.get_activation_token(&qh, ()).commit();
        }
        queue.roundtrip(&mut st).expect("roundtrip");
        // Each answered with a token string, kept or not by the compositor.
        println!("TOKENS {n}");
        st.activation_token = None;
    }
    let (w, h) = window.size_or((640, 480));
    let surface = window.surface.clone();

    let mut growing = None;
    let main_buffer = match o.main {
        Source::Shm(_) if o.shm_grow_after.is_some() => {
            growing = Some(GrowingPool::new(&shm, &qh, w, h));
            growing.as_ref().unwrap().first.clone()
        }
        Source::Shm(kind) => {
            let format = if o.opaque {
                wl_shm::Format::Xrgb8888
            } else {
                wl_shm::Format::Argb8888
            };
            shm_buffer(&shm, &qh, kind, format, w, h, |x, y| {
                pattern::quadrants(x, y, w, h)
            })
        }
        src => {
            let d = linux_dmabuf
                .as_ref()
                .unwrap_or_else(|| usage("the compositor has no linux-dmabuf"));
            let (fd, stride) = dmabuf(src, w, h, |x, y| pattern::quadrants(x, y, w, h));
            let format = if o.opaque { XRGB8888 } else { ARGB8888 };
            dmabuf_buffer(d, &qh, &fd, &[(0, stride)], w as i32, h as i32, format)
        }
    };
    surface.attach(Some(&main_buffer), 0, 0);
    surface.damage_buffer(0, 0, w as i32, h as i32);

    let mut _keep = Vec::new();
    let mut _buffers = Vec::new();
    let mut _surfaces = Vec::new();
    let mut first_sub: Option<(wl_surface::WlSurface, wl_buffer::WlBuffer, i32, i32)> = None;
    let presentation: Option<wp_presentation::WpPresentation> = if o.presentation {
        globals.bind(&qh, 1..=1, ()).ok()
    } else {
        None
    };
    let subcompositor: wl_subcompositor::WlSubcompositor =
        globals.bind(&qh, 1..=1, ()).expect("wl_subcompositor");
    let viewporter: Option<wp_viewporter::WpViewporter> = globals.bind(&qh, 1..=1, ()).ok();
    let mut stack = SurfaceStack::new(surface.clone(), &subcompositor, viewporter.as_ref(), &qh);
    for (i, &(src, sw, sh, x, y)) in o.sub.iter().enumerate() {
        let sub_surface = stack.add_layer(&compositor, &qh, x, y).surface.clone();
        let buffer = match src {
            Source::Shm(kind) => shm_buffer(
                &shm,
                &qh,
                kind,
                wl_shm::Format::Argb8888,
                sw,
                sh,
                pattern::gradient,
            ),
            src => {
                let d = linux_dmabuf
                    .as_ref()
                    .unwrap_or_else(|| usage("the compositor has no linux-dmabuf"));
                let f = o.sub_format;
                if wayheap::yuv::YuvFormat::of(wayheap::layout::Fourcc(f)).is_some() {
                    // YUV: the colour grid (whole chroma blocks), through the default colour.
                    let grid = move |x, y| pattern::colour_grid(x, y, sw, sh);
                    // --sub-colour is the first subsurface's; the others say nothing.
                    let announced = o.sub_colour.filter(|_| i == 0);
                    let colour = announced.unwrap_or_default();
                    let (fd, planes) = yuv_dmabuf(src, colour, f, sw, sh, grid);
                    if let Some(c) = announced {
                        let manager: WpColorRepresentationManagerV1 = globals
                            .bind(&qh, 1..=1, ())
                            .unwrap_or_else(|_| usage("no wp_color_representation_manager_v1"));
                        let object = manager.get_surface(&sub_surface, &qh, ());
                        set_colour(&object, c);
                        _colour_objects.push(object);
                    }
                    dmabuf_buffer(d, &qh, &fd, &planes, sw as i32, sh as i32, f)
                } else {
                    let (fd, stride) =
                        dmabuf(src, sw, sh, move |x, y| encode(f, pattern::gradient(x, y)));
                    dmabuf_buffer(d, &qh, &fd, &[(0, stride)], sw as i32, sh as i32, f)
                }
            }
        };
        if let (Some(p), 0) = (&presentation, i) {
            p.feedback(&sub_surface, &qh, ());
        }
        if let (Some((dw, dh)), 0) = (o.sub_scale, i) {
            assert!(stack.set_layer_destination(0, dw, dh), "no wp_viewporter");
        }
        if let (true, 0, Some(d)) = (o.feedback, i, &linux_dmabuf) {
            _keep.push(wayheap::client::surface_feedback(
                d,
                &sub_surface,
                &qh,
                FeedbackData::for_surface(&sub_surface),
            ));
        }
        sub_surface.attach(Some(&buffer), 0, 0);
        sub_surface.damage_buffer(0, 0, sw as i32, sh as i32);
        sub_surface.commit();
        if i == 0 {
            first_sub = Some((sub_surface.clone(), buffer.clone(), sw as i32, sh as i32));
        }
        _buffers.push(buffer);
    }
    surface.frame(&qh, ());
    surface.commit();

    if let (Some(shape), Some(pointer)) = (o.cursor_shape, &pointer) {
        let manager: wp_cursor_shape_manager_v1::WpCursorShapeManagerV1 = globals
            .bind(&qh, 1..=1, ())
            .unwrap_or_else(|_| usage("the compositor has no wp_cursor_shape_manager_v1"));
        let device = manager.get_pointer(pointer, &qh, ());
        let serial = pointer_enter_serial(&mut queue, &mut st);
        device.set_shape(serial, shape);
        println!("CURSOR-SHAPE {shape:?}");
    }

    if let (Some((src, cw, ch)), Some(pointer)) = (o.cursor, &pointer) {
        let serial = pointer_enter_serial(&mut queue, &mut st);
        let cursor_surface = compositor.create_surface(&qh, ());
        let buffer = match src {
            Source::Shm(kind) => shm_buffer(
                &shm,
                &qh,
                kind,
                wl_shm::Format::Argb8888,
                cw,
                ch,
                pattern::gradient,
            ),
            src => {
                let d = linux_dmabuf
                    .as_ref()
                    .unwrap_or_else(|| usage("the compositor has no linux-dmabuf"));
                let (fd, stride) = dmabuf(src, cw, ch, pattern::gradient);
                dmabuf_buffer(d, &qh, &fd, &[(0, stride)], cw as i32, ch as i32, ARGB8888)
            }
        };
        cursor_surface.attach(Some(&buffer), 0, 0);
        cursor_surface.damage_buffer(0, 0, cw as i32, ch as i32);
        cursor_surface.commit();
        pointer.set_cursor(serial, Some(&cursor_surface), 0, 0);
        _buffers.push(buffer);
        _surfaces.push(cursor_surface);
    }

    if let Some(frames) = o.import_frames {
        run_imports(
            &mut queue,
            &mut st,
            &mut stack,
            &compositor,
            linux_dmabuf.as_ref(),
            frames,
        );
        return;
    }
    if let Some((count, frames)) = o.swapchain {
        st.frame_log = o.frame_log;
        let presentation: wp_presentation::WpPresentation =
            globals.bind(&qh, 1..=1, ()).expect("wp_presentation");
        let protocols = SwapchainProtocols {
            linux_dmabuf: linux_dmabuf.as_ref(),
            shm: Some(&shm),
            presentation: Some(&presentation),
        };
        run_swapchain(
            &conn,
            &mut queue,
            &mut st,
            &mut stack,
            &compositor,
            &protocols,
            count,
            frames,
        );
        return;
    }

    let start = Instant::now();
    let mut ready = false;
    while start.elapsed() < Duration::from_secs(o.seconds) {
        if let Err(e) = queue.roundtrip(&mut st) {
            println!("PROTOCOL-ERROR {e}");
            std::process::exit(3);
        }
        if st.frame_done && !ready {
            ready = true;
            println!("READY {w}x{h}");
            let _ = std::io::stdout().flush();
        }
        if let Some((manager, device)) = &drag_device {
            start_drag_if_pressed(&mut st, &qh, manager, device, &surface);
            read_drop(&mut st);
            let _ = std::io::stdout().flush();
        }
        if let Some(activation) = &activation {
            drive_activation(&mut st, &qh, activation, &surface);
        }
        if let (true, true, true, Some((sub, buffer, sw, sh))) =
            (o.recommit, ready, st.frame_done, &first_sub)
        {
            // Each frame callback: the same buffer again, all of it damaged (new content).
            st.frame_done = false;
            sub.attach(Some(buffer), 0, 0);
            sub.damage_buffer(0, 0, *sw, *sh);
            sub.frame(&qh, ());
            sub.commit();
        }
        if let (Some(after), Some(pool)) = (o.shm_grow_after, &growing)
            && start.elapsed() >= Duration::from_secs(after)
        {
            let grown = pool.grow(&qh);
            surface.attach(Some(&grown), 0, 0);
            surface.damage_buffer(0, 0, w as i32, h as i32);
            surface.commit();
            _buffers.push(grown);
            growing = None;
            println!("GROWN");
            let _ = std::io::stdout().flush();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Swapchain mode's picture: a 64x64 square moving right over a dark background.
const SWAPCHAIN_BACKGROUND: u32 = 0xff20_2020;

/// Where frame `frame`'s square is in the 256x192 buffer.
fn swapchain_square(frame: u32) -> (usize, usize) {
    ((frame * 16 % 192) as usize, 64)
}

/// Frame `frame`'s square colour.
fn swapchain_colour(frame: u32) -> u32 {
    0xff00_0000 | (frame * 40 % 256) << 16 | 0x8000 | (255 - frame * 40 % 256)
}

/// Fills `(x, y, w, h)` of an ARGB8888 image with `argb`.
fn fill_rect(
    bytes: &mut [u8],
    stride: usize,
    (x, y, w, h): (usize, usize, usize, usize),
    argb: u32,
) {
    for row in y..y + h {
        let line = &mut bytes[row * stride + x * 4..row * stride + (x + w) * 4];
        for px in line.chunks_exact_mut(4) {
            px.copy_from_slice(&argb.to_le_bytes());
        }
    }
}

/// A desynchronised layer at (100, 80) above the main surface, as the swapchain and import
/// modes use.
fn overlay_layer(
    stack: &mut SurfaceStack,
    qh: &QueueHandle<State>,
    compositor: &wl_compositor::WlCompositor,
) -> wl_surface::WlSurface {
    let surface = stack.add_layer(compositor, qh, 100, 80).surface.clone();
    stack.main().commit();
    surface
}

/// Swapchain mode: a 256x192 subsurface at (100, 80) fed `frames` frames from a
/// `wayheap::client::Swapchain` of `count` buffers allocated as the surface's feedback decides
/// (wl_shm when the compositor has no linux-dmabuf), paced by frame callbacks; a reused buffer
/// gets only the moving 64x64 square redrawn and damaged.
#[allow(clippy::too_many_arguments)]
fn run_swapchain(
    conn: &Connection,
    queue: &mut wayland_client::EventQueue<State>,
    st: &mut State,
    stack: &mut SurfaceStack,
    compositor: &wl_compositor::WlCompositor,
    protocols: &SwapchainProtocols<'_>,
    count: usize,
    frames: u32,
) {
    use wayheap::client::{Swapchain, decide_without_linux_dmabuf, surface_feedback};
    use wayheap::layout::{Fourcc, Layout, LayoutOptions};
    let qh = queue.handle();
    let surface = overlay_layer(stack, &qh, compositor);
    // The surface's own feedback decides where the buffers come from.
    let decide_now = |st: &State| match protocols.linux_dmabuf {
        Some(d) => wayheap::client::decide_for_version(
            d.version(),
            st.last_feedback.as_ref(),
            &st.modifiers,
            Fourcc::ARGB8888,
        ),
        None => decide_without_linux_dmabuf(Fourcc::ARGB8888),
    };
    let feedback = protocols
        .linux_dmabuf
        .and_then(|d| surface_feedback(d, &surface, &qh, FeedbackData::for_surface(&surface)));
    if feedback.is_some() {
        let deadline = Instant::now() + Duration::from_secs(10);
        while st.last_feedback.is_none() && Instant::now() < deadline {
            queue.roundtrip(st).expect("waiting for feedback");
        }
    }
    let layout = Layout::new(Fourcc::ARGB8888, 256, 192, LayoutOptions::default()).expect("layout");
    let alloc = wayheap::policy::Allocator::from_env().expect("policy");
    let mut chain = Swapchain::new(
        &alloc,
        decide_now(st),
        layout.clone(),
        count,
        protocols,
        &qh,
    )
    .unwrap_or_else(|e| usage(&wayheap::error::chain(&e)));
    let stride = layout.planes[0].stride as usize;
    let mut used = std::collections::BTreeSet::new();
    let mut frame = 0;
    let start = Instant::now();
    while frame < frames {
        let deadline = Instant::now() + Duration::from_secs(30);
        // Paced by frame callbacks, then by releases.
        let index = loop {
            if chain.ready()
                && let Some(i) = chain.acquire()
            {
                break i;
            }
            assert!(
                Instant::now() < deadline,
                "no frame callback or release within 30 s"
            );
            queue.blocking_dispatch(st).expect("dispatch");
        };
        // The surface's feedback may have changed (e.g. it went onto a plane): reallocate.
        let latest = decide_now(st);
        if chain.outdated_by(&latest) {
            let from = format!("{:?}", chain.decision().path);
            chain = Swapchain::new(&alloc, latest, layout.clone(), count, protocols, &qh)
                .unwrap_or_else(|e| usage(&wayheap::error::chain(&e)));
            // Flushed, the socket no longer holds duplicates of the new fds: what is left is ours.
            let _ = conn.flush();
            let live = wayheap::accounting::process_dmabufs(None).map_or(0, |v| v.len());
            println!(
                "REALLOCATED {from} -> {:?} provider={} live_dmabufs={live} reason: {}",
                chain.decision().path,
                chain.provider(),
                chain.decision().reason
            );
            used.clear();
            continue;
        }
        used.insert(index);
        // A fresh buffer gets the whole background. A reused one still holds frame
        // `frame - age`: only that frame's square is cleared and the new one drawn, and only the
        // previous frame's square (on screen now) and the new one are damaged.
        let age = chain.age(index) as u32;
        let fresh = age == 0 || age > frame;
        let (sx, sy) = swapchain_square(frame);
        chain
            .write(index, |bytes| {
                if fresh {
                    fill_rect(bytes, stride, (0, 0, 256, 192), SWAPCHAIN_BACKGROUND);
                } else {
                    let (ox, oy) = swapchain_square(frame - age);
                    fill_rect(bytes, stride, (ox, oy, 64, 64), SWAPCHAIN_BACKGROUND);
                }
                fill_rect(bytes, stride, (sx, sy, 64, 64), swapchain_colour(frame));
            })
            .expect("drawing");
        let damage = if fresh {
            vec![]
        } else {
            let (px, py) = swapchain_square(frame - 1);
            vec![
                (px as i32, py as i32, 64, 64),
                (sx as i32, sy as i32, 64, 64),
            ]
        };
        chain
            .present(index, &surface, &damage, &qh)
            .expect("present");
        if st.frame_log {
            println!("FRAME {frame} {}", start.elapsed().as_millis());
        }
        frame += 1;
    }
    // Let the last presentations arrive.
    for _ in 0..10 {
        queue.roundtrip(st).expect("roundtrip");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = chain.stats();
    println!(
        "SWAPCHAIN frames={frames} buffers={count} used={} releases={:?} presented={} zero_copy={} frames_done={} provider={} decision={}",
        used.len(),
        stats.releases,
        stats.presented,
        stats.zero_copy,
        stats.frames_done,
        chain.provider(),
        chain.decision()
    );
    let _ = std::io::stdout().flush();
    // The last frame stays on screen a while, for a screenshot.
    for _ in 0..500 {
        let _ = queue.roundtrip(st);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Import mode: two dma-bufs (as a camera would export them) shown alternately on a subsurface,
/// each frame through a fresh fd of the same buffer; `ImportCache` must import each only once.
fn run_imports(
    queue: &mut wayland_client::EventQueue<State>,
    st: &mut State,
    stack: &mut SurfaceStack,
    compositor: &wl_compositor::WlCompositor,
    linux_dmabuf: Option<&zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1>,
    frames: u32,
) {
    use wayheap::client::ImportCache;
    use wayheap::dmabuf::DmaBuf;
    use wayheap::layout::{Fourcc, Layout, LayoutOptions};
    let qh = queue.handle();
    let d = linux_dmabuf.unwrap_or_else(|| usage("the compositor has no linux-dmabuf"));
    let surface = overlay_layer(stack, &qh, compositor);
    let layout = Layout::new(Fourcc::ARGB8888, 256, 192, LayoutOptions::default()).expect("layout");
    let heap = HeapDir::default()
        .open("system")
        .unwrap_or_else(|e| usage(&wayheap::error::chain(&e)));
    let exported: Vec<_> = (0..2)
        .map(|_| {
            heap.allocate(layout.total_size() as usize)
                .unwrap_or_else(|e| usage(&wayheap::error::chain(&e)))
        })
        .collect();
    let mut cache = ImportCache::default();
    for frame in 0..frames {
        // What a V4L2 dequeue hands over: another fd of one of the same two buffers.
        let fd = exported[frame as usize % 2]
            .fd()
            .try_clone_to_owned()
            .expect("dup");
        let foreign = DmaBuf::import(fd).unwrap_or_else(|e| usage(&wayheap::error::chain(&e)));
        let spec = BufferSpec::from_layout(&layout, &[&foreign], 0).expect("spec");
        let buffer = cache
            .get_or_create(&foreign, &spec, d, &qh, || ())
            .unwrap_or_else(|e| usage(&wayheap::error::chain(&e)));
        st.frame_done = false;
        surface.frame(&qh, ());
        surface.attach(Some(&buffer), 0, 0);
        surface.damage_buffer(0, 0, 256, 192);
        surface.commit();
        while !st.frame_done {
            queue.blocking_dispatch(st).expect("dispatch");
        }
    }
    println!("IMPORTS frames={frames} imports={}", cache.imports());
    for _ in 0..50 {
        let _ = queue.roundtrip(st);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Announces `colour` for the surface of `object`.
fn set_colour(object: &WpColorRepresentationSurfaceV1, colour: wayheap::yuv::Colour) {
    use wayheap::yuv::{ColourRange, Encoding};
    use wp_color_representation_surface_v1::{Coefficients, Range};
    let coefficients = match colour.encoding {
        Encoding::Bt601 => Coefficients::Bt601,
        Encoding::Bt709 => Coefficients::Bt709,
        Encoding::Bt2020 => Coefficients::Bt2020,
    };
    let range = match colour.range {
        ColourRange::Limited => Range::Limited,
        ColourRange::Full => Range::Full,
    };
    object.set_coefficients_and_range(coefficients, range);
}

/// Sends one hostile wp_color_representation_v1 request.
fn bogus_colour(
    kind: &str,
    globals: &wayland_client::globals::GlobalList,
    compositor: &wl_compositor::WlCompositor,
    qh: &QueueHandle<State>,
) {
    use wp_color_representation_surface_v1::{AlphaMode, Coefficients, Range};
    let manager: WpColorRepresentationManagerV1 = globals
        .bind(qh, 1..=1, ())
        .unwrap_or_else(|_| usage("no wp_color_representation_manager_v1"));
    let surface = compositor.create_surface(qh, ());
    let object = manager.get_surface(&surface, qh, ());
    match kind {
        // Advertised: BT.601/709/2020 only; identity (RGB) is not.
        "colour-coefficients" => {
            object.set_coefficients_and_range(Coefficients::Identity, Range::Full)
        }
        "colour-alpha" => object.set_alpha_mode(AlphaMode::Straight),
        "colour-twice" => {
            let _second = manager.get_surface(&surface, qh, ());
        }
        "colour-inert" => {
            surface.destroy();
            object.set_coefficients_and_range(Coefficients::Bt709, Range::Full);
        }
        other => usage(&format!("unknown --bogus kind {other:?}")),
    }
}

/// Two roundtrips: the protocol error the bogus request earned, printed, exits 3.
fn finish_bogus(
    conn: &Connection,
    queue: &mut wayland_client::EventQueue<State>,
    st: &mut State,
) -> ! {
    match queue.roundtrip(st).and_then(|_| queue.roundtrip(st)) {
        Ok(_) => {
            println!("NO-ERROR");
            std::process::exit(0)
        }
        Err(e) => {
            println!(
                "PROTOCOL-ERROR {}",
                conn.protocol_error().map_or(e.to_string(), |p| format!(
                    "{} {}: {}",
                    p.object_interface, p.code, p.message
                ))
            );
            std::process::exit(3)
        }
    }
}

/// Sends one hostile buffer creation.
fn bogus(kind: &str, d: &zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1, qh: &QueueHandle<State>) {
    let heap_fd = || dmabuf(Source::System, 64, 64, pattern::gradient).0;
    match kind {
        "offset-overflow" => {
            let fd = heap_fd();
            dmabuf_buffer(d, qh, &fd, &[(u32::MAX - 8, 256)], 64, 64, ARGB8888);
        }
        "too-small" => {
            let fd = heap_fd(); // 64 rows of 256 bytes
            dmabuf_buffer(d, qh, &fd, &[(0, 256)], 64, 1024, ARGB8888);
        }
        "memfd" => {
            let mem = MemfdBuffer::new(256 * 64).expect("memfd");
            let fd = mem.memfd().try_clone_to_owned().expect("dup");
            dmabuf_buffer(d, qh, &fd, &[(0, 256)], 64, 64, ARGB8888);
        }
        "memfd-create" => {
            // `create` instead of `create_immed`: the refusal is a `failed` event, not an error.
            let mem = MemfdBuffer::new(256 * 64).expect("memfd");
            let fd = mem.memfd().try_clone_to_owned().expect("dup");
            spec(&fd, &[(0, 256)], 64, 64, ARGB8888).create(d, qh);
        }
        "socket" => {
            let (a, _b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
            let fd: OwnedFd = a.into();
            dmabuf_buffer(d, qh, &fd, &[(0, 256)], 64, 64, ARGB8888);
        }
        "plane-count" => {
            let fd = heap_fd();
            dmabuf_buffer(
                d,
                qh,
                &fd,
                &[(0, 256)],
                64,
                64,
                u32::from_le_bytes(*b"NV12"),
            );
        }
        "chroma-out-of-bounds" => {
            // NV12 64x64: a 4096-byte Y plane, then 32 rows of CbCr starting 64 bytes before
            // the end of the 16 KiB buffer.
            let fd = heap_fd();
            let nv12 = u32::from_le_bytes(*b"NV12");
            dmabuf_buffer(d, qh, &fd, &[(0, 64), (16384 - 64, 64)], 64, 64, nv12);
        }
        "unknown-format" => {
            let fd = heap_fd();
            dmabuf_buffer(
                d,
                qh,
                &fd,
                &[(0, 256)],
                64,
                64,
                u32::from_le_bytes(*b"ZZZZ"),
            );
        }
        other => usage(&format!("unknown --bogus kind {other:?}")),
    }
}
