//! A virtual keyboard and mouse through `/dev/uinput`, for in-guest tests: the kernel makes
//! each an evdev device like a USB one, udev tags it, and libinput reads it as it would a real
//! one.

use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::fs::{Mode, OFlags};
use rustix::ioctl::{IntegerSetter, NoArg, Opcode, Setter, ioctl, opcode};

/// `struct input_id`.
#[repr(C)]
#[derive(Clone, Copy)]
struct InputId {
    bustype: u16,
    vendor: u16,
    product: u16,
    version: u16,
}

/// `struct uinput_setup`.
#[repr(C)]
#[derive(Clone, Copy)]
struct UinputSetup {
    id: InputId,
    name: [u8; 80],
    ff_effects_max: u32,
}

const UI_DEV_CREATE: Opcode = opcode::none(b'U', 1);
const UI_DEV_DESTROY: Opcode = opcode::none(b'U', 2);
const UI_DEV_SETUP: Opcode = opcode::write::<UinputSetup>(b'U', 3);
const UI_SET_EVBIT: Opcode = opcode::write::<i32>(b'U', 100);
const UI_SET_KEYBIT: Opcode = opcode::write::<i32>(b'U', 101);
const UI_SET_RELBIT: Opcode = opcode::write::<i32>(b'U', 102);

const EV_SYN: u16 = 0;
const EV_KEY: u16 = 1;
const EV_REL: u16 = 2;
const REL_X: u16 = 0;
const REL_Y: u16 = 1;
/// `BTN_LEFT`.
pub const BTN_LEFT: u16 = 0x110;
const SYN_REPORT: u16 = 0;
const BUS_VIRTUAL: u16 = 0x06;

/// Linux key codes (`input-event-codes.h`).
pub mod keys {
    /// `KEY_A`.
    pub const A: u16 = 30;
    /// `KEY_LEFTCTRL`.
    pub const LEFTCTRL: u16 = 29;
    /// `KEY_LEFTALT`.
    pub const LEFTALT: u16 = 56;
    /// `KEY_F1`.
    pub const F1: u16 = 59;
    /// `KEY_F2`.
    pub const F2: u16 = 60;
}

/// A uinput device; destroyed when dropped.
#[derive(Debug)]
struct Device {
    fd: OwnedFd,
}

impl Device {
    /// Creates a device (`/dev/uinput`, root) named `name` with the event types `evbits`, the
    /// keys and buttons `keybits` and the relative axes `relbits`.
    fn new(
        name: &str,
        evbits: &[u16],
        keybits: &[u16],
        relbits: &[u16],
    ) -> std::io::Result<Device> {
        let fd = rustix::fs::open(
            "/dev/uinput",
            OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        // SAFETY: UI_SET_EVBIT, UI_SET_KEYBIT and UI_SET_RELBIT take the bit number as the
        // argument itself.
        unsafe {
            for &bit in evbits {
                ioctl(
                    &fd,
                    IntegerSetter::<{ UI_SET_EVBIT }>::new_usize(bit as usize),
                )?;
            }
            for &bit in keybits {
                ioctl(
                    &fd,
                    IntegerSetter::<{ UI_SET_KEYBIT }>::new_usize(bit as usize),
                )?;
            }
            for &bit in relbits {
                ioctl(
                    &fd,
                    IntegerSetter::<{ UI_SET_RELBIT }>::new_usize(bit as usize),
                )?;
            }
        }
        let mut setup = UinputSetup {
            id: InputId {
                bustype: BUS_VIRTUAL,
                vendor: 0x1209,
                product: 0x0001,
                version: 1,
            },
            name: [0; 80],
            ff_effects_max: 0,
        };
        let n = name.len().min(79);
        setup.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        // SAFETY: UI_DEV_SETUP reads one `struct uinput_setup`, which `UinputSetup` mirrors;
        // UI_DEV_CREATE takes no argument.
        unsafe {
            ioctl(&fd, Setter::<{ UI_DEV_SETUP }, UinputSetup>::new(setup))?;
            ioctl(&fd, NoArg::<{ UI_DEV_CREATE }>::new())?;
        }
        Ok(Device { fd })
    }

    /// Writes one event (`struct input_event`: a zero timestamp, which the kernel fills in).
    fn event(&self, kind: u16, code: u16, value: i32) -> std::io::Result<()> {
        let mut bytes = [0u8; 24];
        bytes[16..18].copy_from_slice(&kind.to_ne_bytes());
        bytes[18..20].copy_from_slice(&code.to_ne_bytes());
        bytes[20..24].copy_from_slice(&value.to_ne_bytes());
        let written = rustix::io::write(&self.fd, &bytes)?;
        assert_eq!(written, bytes.len(), "a short uinput write");
        Ok(())
    }

    /// Ends a group of events (what the device reports at once).
    fn report(&self) -> std::io::Result<()> {
        self.event(EV_SYN, SYN_REPORT, 0)
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // SAFETY: UI_DEV_DESTROY takes no argument.
        let _ = unsafe { ioctl(&self.fd, NoArg::<{ UI_DEV_DESTROY }>::new()) };
    }
}

/// A uinput keyboard with the keys of [`keys`]; destroyed when dropped.
#[derive(Debug)]
pub struct Keyboard {
    device: Device,
}

impl Keyboard {
    /// Creates the device (`/dev/uinput`, root), named `name`.
    pub fn new(name: &str) -> std::io::Result<Keyboard> {
        let keys = [keys::A, keys::LEFTCTRL, keys::LEFTALT, keys::F1, keys::F2];
        Ok(Keyboard {
            device: Device::new(name, &[EV_KEY], &keys, &[])?,
        })
    }

    /// Presses (`true`) or releases `key`, and reports.
    pub fn key(&self, key: u16, down: bool) -> std::io::Result<()> {
        self.device.event(EV_KEY, key, i32::from(down))?;
        self.device.report()
    }

    /// Presses `combo` in order, then releases it in reverse, a little apart (as fingers do).
    pub fn press(&self, combo: &[u16]) -> std::io::Result<()> {
        for &k in combo {
            self.key(k, true)?;
            std::thread::sleep(Duration::from_millis(30));
        }
        for &k in combo.iter().rev() {
            self.key(k, false)?;
            std::thread::sleep(Duration::from_millis(30));
        }
        Ok(())
    }
}

/// A uinput mouse: relative motion and the left button; destroyed when dropped.
#[derive(Debug)]
pub struct Mouse {
    device: Device,
}

impl Mouse {
    /// Creates the device (`/dev/uinput`, root), named `name`.
    pub fn new(name: &str) -> std::io::Result<Mouse> {
        Ok(Mouse {
            device: Device::new(name, &[EV_KEY, EV_REL], &[BTN_LEFT], &[REL_X, REL_Y])?,
        })
    }

    /// Moves by (`dx`, `dy`) device units, and reports.
    pub fn move_by(&self, dx: i32, dy: i32) -> std::io::Result<()> {
        self.device.event(EV_REL, REL_X, dx)?;
        self.device.event(EV_REL, REL_Y, dy)?;
        self.device.report()
    }

    /// Presses (`true`) or releases the left button, and reports.
    pub fn left_button(&self, down: bool) -> std::io::Result<()> {
        self.device.event(EV_KEY, BTN_LEFT, i32::from(down))?;
        self.device.report()
    }
}

// The structures' sizes, as the kernel's headers have them.
const _: () = assert!(std::mem::size_of::<UinputSetup>() == 92);
