//! The nested backend: the output is a window in an X11 or Wayland session (Smithay's winit
//! backend), composed with GLES on the window's EGL surface. For developing on a desktop: no
//! planes, every surface is composited, which the report says. The window's size is the
//! output's mode and follows resizes; the window's pointer and keyboard are the seat's; closing
//! the window stops the compositor.

use smithay::backend::allocator::Fourcc;
use smithay::backend::allocator::format::FormatSet;
use smithay::backend::input::{
    AbsolutePositionEvent, Event as _, InputEvent, KeyboardKeyEvent as _, PointerButtonEvent as _,
};
use smithay::backend::renderer::damage::OutputDamageTracker;
use smithay::backend::renderer::element::RenderElementStates;
use smithay::backend::renderer::element::surface::WaylandSurfaceRenderElement;
use smithay::backend::renderer::gles::GlesRenderer;
use smithay::backend::renderer::{ExportMem, ImportDma};
use smithay::backend::winit::{self, WinitEvent, WinitGraphicsBackend};
use smithay::desktop::space::render_output;
use smithay::output::{Mode as OutputMode, Output};
use smithay::reexports::calloop::LoopHandle;
use smithay::reexports::winit::dpi::PhysicalSize;
use smithay::utils::{Rectangle, Transform};

use crate::headless::CLEAR;
use crate::report::RendererInfo;
use crate::state::App;
use crate::{Backend, Demo};

/// A screenshot: width, height, RGBA8 rows top first.
pub(crate) type Snapshot = (u32, u32, Vec<u8>);

/// A window as the output.
pub(crate) struct Nested {
    backend: WinitGraphicsBackend<GlesRenderer>,
    damage: OutputDamageTracker,
    pub info: RendererInfo,
    /// What the window system is ("x11" or "wayland"), for the report.
    pub host: &'static str,
}

/// Damage tracking for the window: Smithay draws into an EGL window surface upside down
/// relative to GL's origin, so the tracker renders Flipped180 (the output itself stays Normal:
/// clients need not know).
fn window_damage_tracker(
    size: smithay::utils::Size<i32, smithay::utils::Physical>,
) -> OutputDamageTracker {
    OutputDamageTracker::new(size, 1.0, Transform::Flipped180)
}

/// The full error chain: winit's errors say little at the top ("Failed to initialize an event
/// loop") and the reason underneath.
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

impl Nested {
    /// Opens a `width` x `height` window on the session's display and makes it the output.
    pub fn new(
        width: i32,
        height: i32,
        handle: &LoopHandle<'static, Demo>,
    ) -> Result<(Nested, Output), String> {
        if std::env::var_os("WAYLAND_DISPLAY").is_none()
            && std::env::var_os("WAYLAND_SOCKET").is_none()
            && std::env::var_os("DISPLAY").is_none()
        {
            return Err(
                "--backend nested needs a desktop session: neither WAYLAND_DISPLAY nor DISPLAY is \
                 set (use --backend headless, or kms on a console)"
                    .into(),
            );
        }
        // Smithay's EGL code panics without libEGL: check first, for a message instead.
        wayheap::smithay::renderer::egl_library().map_err(|e| format!("--backend nested: {e}"))?;
        let attributes = smithay::reexports::winit::window::Window::default_attributes()
            .with_title("compositor-demo (wayheap)")
            .with_inner_size(PhysicalSize::new(width as u32, height as u32))
            .with_resizable(true);
        let (mut backend, events) = winit::init_from_attributes::<GlesRenderer>(attributes)
            .map_err(|e| format!("--backend nested: {}", chain(&e)))?;
        // What winit actually connected to (it falls back from Wayland to X11).
        let host = {
            use smithay::reexports::winit::raw_window_handle::{HasWindowHandle, RawWindowHandle};
            match backend.window().window_handle().map(|h| h.as_raw()) {
                Ok(RawWindowHandle::Wayland(_)) => "wayland",
                Ok(RawWindowHandle::Xlib(_) | RawWindowHandle::Xcb(_)) => "x11",
                _ => "other",
            }
        };
        let info = RendererInfo::gles(backend.renderer());
        tracing::info!(host, renderer = %info.detail, "nested window");

        let size = backend.window_size();
        let output = crate::headless::virtual_output("nested", size);
        let damage = window_damage_tracker(size);

        handle
            .insert_source(events, |event, _, demo| {
                let Backend::Nested(n) = &mut demo.backend else {
                    return;
                };
                match event {
                    WinitEvent::Resized { size, .. } if size.w <= 0 || size.h <= 0 => {
                        tracing::debug!("window has no size (minimised?): nothing drawn");
                    }
                    WinitEvent::Resized { size, .. } => {
                        tracing::info!(w = size.w, h = size.h, "window resized");
                        let mode = OutputMode {
                            size,
                            refresh: 60_000,
                        };
                        let output = demo.app.output.clone();
                        output.change_current_state(Some(mode), None, None, None);
                        output.set_preferred(mode);
                        n.damage = window_damage_tracker(size);
                        demo.app.output_resized();
                    }
                    // The window system lost the window's content (exposed after being
                    // covered): a fresh tracker has no history, so the next frame is whole.
                    WinitEvent::Redraw => {
                        if let Some(mode) = demo.app.output.current_mode() {
                            n.damage = window_damage_tracker(mode.size);
                        }
                        demo.app.dirty = true;
                    }
                    WinitEvent::Focus(_) => {}
                    WinitEvent::CloseRequested => {
                        tracing::info!("window closed: shutting down");
                        demo.app.loop_signal.stop();
                    }
                    // The window's pointer and keyboard are the seat's.
                    WinitEvent::Input(InputEvent::PointerMotionAbsolute { event }) => {
                        let size = demo
                            .app
                            .output
                            .current_mode()
                            .map(|m| m.size.to_logical(1))
                            .unwrap_or_default();
                        let at = event.position_transformed(size);
                        demo.app.pointer_moved_to(at, event.time_msec());
                    }
                    WinitEvent::Input(InputEvent::PointerButton { event }) => {
                        demo.app.pointer_button(
                            event.button_code(),
                            event.state(),
                            event.time_msec(),
                        );
                    }
                    WinitEvent::Input(InputEvent::Keyboard { event }) => {
                        // A VT switch means nothing inside a window of the host's desktop.
                        let _ = demo
                            .app
                            .key(event.key_code(), event.state(), event.time_msec());
                    }
                    WinitEvent::Input(other) => {
                        tracing::trace!(?other, "window input not forwarded")
                    }
                }
            })
            .map_err(|e| format!("winit event source: {e}"))?;
        Ok((
            Nested {
                backend,
                damage,
                info,
                host,
            },
            output,
        ))
    }

    /// What the renderer can import from clients.
    pub fn dmabuf_formats(&mut self) -> FormatSet {
        wayheap::smithay::renderer::advertised_formats(&self.backend.renderer().dmabuf_formats())
    }

    /// Composes the space into the window; with `snapshot`, a full redraw read back (RGBA8, top
    /// row first) before it is shown.
    pub fn render(
        &mut self,
        app: &App,
        snapshot: bool,
    ) -> Result<(RenderElementStates, Option<Snapshot>), String> {
        let mode = app
            .output
            .current_mode()
            .map(|m| m.size)
            .unwrap_or_default();
        let size = self.backend.window_size();
        if size.w <= 0 || size.h <= 0 || mode.w <= 0 || mode.h <= 0 {
            // A minimised or not yet mapped window: nothing to draw into.
            return Ok((RenderElementStates::default(), None));
        }
        // The buffer age means something only while the surface is bound, and only for a
        // buffer of the size the output (and its damage history) has: X11 can report the new
        // window size before the Resized event arrives.
        drop(self.backend.bind().map_err(|e| format!("bind: {e}"))?);
        let age = if snapshot || size != mode {
            0
        } else {
            self.backend.buffer_age().unwrap_or(0)
        };
        let (states, damage, mapping) = {
            let (renderer, mut fb) = self.backend.bind().map_err(|e| format!("bind: {e}"))?;
            let result = render_output::<_, WaylandSurfaceRenderElement<GlesRenderer>, _, _>(
                &app.output,
                renderer,
                &mut fb,
                1.0,
                age,
                [&app.space],
                &[],
                &mut self.damage,
                CLEAR,
            )
            .map_err(|e| format!("render: {e:?}"))?;
            let damage = result.damage.cloned();
            // Read back before the swap (afterwards the buffer is gone), but map after it:
            // mapping makes the context current without the window's surface, and the swap
            // needs it current with it.
            let mapping = if snapshot {
                let rect = Rectangle::from_size((size.w, size.h).into());
                Some(
                    renderer
                        .copy_framebuffer(&fb, rect, Fourcc::Abgr8888)
                        .map_err(|e| format!("copy: {e}"))?,
                )
            } else {
                None
            };
            (result.states, damage, mapping)
        };
        // Nothing drawn: swapping would show the untouched back buffer, an older frame when
        // the driver keeps more than two.
        if damage.is_some() || snapshot {
            self.backend
                .submit(damage.as_deref())
                .map_err(|e| format!("swap: {e}"))?;
        }
        let shot = match mapping {
            Some(map) => {
                let bytes = self
                    .backend
                    .renderer()
                    .map_texture(&map)
                    .map_err(|e| format!("map: {e}"))?;
                // GL reads the window's buffer bottom row first (Smithay flips every target's
                // projection, so offscreen reads come out top first and window reads do not):
                // reverse the rows.
                let row = size.w as usize * 4;
                let rgba: Vec<u8> = bytes.chunks_exact(row).rev().flatten().copied().collect();
                Some((size.w as u32, size.h as u32, rgba))
            }
            None => None,
        };
        Ok((states, shot))
    }
}
