//! Input devices on the KMS backend: libinput on the libseat session (the session opens the
//! `/dev/input/event*` nodes, so no root is needed under logind or seatd), udev for hotplug.
//! Keys go to the focused window, the pointer moves over the output and clicks focus; Ctrl+Alt+Fn
//! (the keymap's `XF86Switch_VT_n`) switches virtual terminals through the session, which pauses
//! the compositor until its VT is back.

use smithay::backend::input::{
    AbsolutePositionEvent, Event, InputEvent, KeyboardKeyEvent, PointerButtonEvent,
    PointerMotionEvent,
};
use smithay::backend::libinput::{LibinputInputBackend, LibinputSessionInterface};
use smithay::backend::session::Session;
use smithay::backend::session::libseat::LibSeatSession;
use smithay::reexports::calloop::LoopHandle;
use smithay::reexports::input::Libinput;

use crate::Demo;

/// Starts reading the seat's input devices into the event loop; the returned context is
/// suspended and resumed with the session.
pub fn start(
    handle: &LoopHandle<'static, Demo>,
    session: &LibSeatSession,
) -> Result<Libinput, String> {
    let mut libinput =
        Libinput::new_with_udev::<LibinputSessionInterface<LibSeatSession>>(session.clone().into());
    libinput
        .udev_assign_seat(&session.seat())
        .map_err(|()| format!("libinput: no udev seat {}", session.seat()))?;
    let backend = LibinputInputBackend::new(libinput.clone());
    let mut session = session.clone();
    handle
        .insert_source(backend, move |event, _, demo| {
            handle_event(demo, &mut session, event)
        })
        .map_err(|e| format!("libinput source: {e}"))?;
    Ok(libinput)
}

fn handle_event(
    demo: &mut Demo,
    session: &mut LibSeatSession,
    event: InputEvent<LibinputInputBackend>,
) {
    match event {
        InputEvent::DeviceAdded { device } => {
            tracing::info!(name = device.name(), "input device added")
        }
        InputEvent::DeviceRemoved { device } => {
            tracing::info!(name = device.name(), "input device removed")
        }
        InputEvent::Keyboard { event } => {
            let vt = demo
                .app
                .key(event.key_code(), event.state(), event.time_msec());
            if let Some(vt) = vt {
                tracing::info!(vt, "switching to virtual terminal");
                if let Err(e) = session.change_vt(vt) {
                    tracing::warn!(vt, %e, "switching virtual terminals");
                }
            }
        }
        InputEvent::PointerMotion { event } => {
            let size = output_size(demo);
            let mut at = demo.app.pointer_location + event.delta();
            at.x = at.x.clamp(0.0, f64::from(size.w.max(1) - 1));
            at.y = at.y.clamp(0.0, f64::from(size.h.max(1) - 1));
            demo.app.pointer_moved_to(at, event.time_msec());
        }
        InputEvent::PointerMotionAbsolute { event } => {
            let at = event.position_transformed(output_size(demo));
            demo.app.pointer_moved_to(at, event.time_msec());
        }
        InputEvent::PointerButton { event } => {
            demo.app
                .pointer_button(event.button_code(), event.state(), event.time_msec());
        }
        _ => {}
    }
}

fn output_size(demo: &Demo) -> smithay::utils::Size<i32, smithay::utils::Logical> {
    demo.app
        .output
        .current_mode()
        .map(|m| m.size.to_logical(1))
        .unwrap_or_default()
}
