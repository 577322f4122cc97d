//! A small atomic-KMS toolkit for in-guest tests: find the vkms card, its planes by type, the
//! Virtual + Writeback connector pair, and capture what a commit composes through writeback.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

use drm::control::{
    self, Device as ControlDevice, Mode, PlaneType, connector, crtc, plane, property,
};
use drm::{ClientCapability, Device};

/// An open DRM card node.
#[derive(Debug)]
pub struct Card {
    file: File,
    /// The node, e.g. `/dev/dri/card0`.
    pub path: PathBuf,
}

impl AsFd for Card {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}
impl Device for Card {}
impl ControlDevice for Card {}

/// A plane and what it is.
#[derive(Debug, Clone)]
pub struct PlaneInfo {
    /// The plane's handle.
    pub handle: plane::Handle,
    /// Primary, overlay or cursor (the `type` property).
    pub kind: PlaneType,
    /// The fourccs it scans out.
    pub formats: Vec<u32>,
}

impl Card {
    /// Opens the first `/dev/dri/card*` whose driver is `driver` (e.g. "vkms") and enables
    /// universal planes, atomic and writeback connectors on it.
    pub fn open_driver(driver: &str) -> std::io::Result<Card> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/dev/dri")? {
            let path = entry?.path();
            if !path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("card"))
            {
                continue;
            }
            let file = OpenOptions::new().read(true).write(true).open(&path)?;
            let card = Card { file, path };
            let name = card.get_driver()?.name().to_string_lossy().into_owned();
            if name == driver {
                card.set_client_capability(ClientCapability::UniversalPlanes, true)?;
                card.set_client_capability(ClientCapability::Atomic, true)?;
                card.set_client_capability(ClientCapability::WritebackConnectors, true)?;
                return Ok(card);
            }
            found.push(name);
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no DRM card with driver {driver} (found: {found:?})"),
        ))
    }

    /// Property name -> handle for any KMS object.
    pub fn prop_handles<H: control::ResourceHandle>(
        &self,
        handle: H,
    ) -> std::io::Result<HashMap<String, property::Handle>> {
        Ok(self
            .get_properties(handle)?
            .as_hashmap(self)?
            .into_iter()
            .map(|(name, info)| (name, info.handle()))
            .collect())
    }

    /// The raw value of property `name` on an object.
    pub fn prop_value<H: control::ResourceHandle>(
        &self,
        handle: H,
        name: &str,
    ) -> std::io::Result<Option<u64>> {
        for (id, value) in self.get_properties(handle)? {
            if self.get_property(id)?.name().to_str() == Ok(name) {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }

    /// Every plane with its type and formats.
    pub fn planes(&self) -> std::io::Result<Vec<PlaneInfo>> {
        let mut planes = Vec::new();
        for handle in self.plane_handles()? {
            let info = self.get_plane(handle)?;
            let kind = match self.prop_value(handle, "type")? {
                Some(v) if v == PlaneType::Primary as u64 => PlaneType::Primary,
                Some(v) if v == PlaneType::Cursor as u64 => PlaneType::Cursor,
                _ => PlaneType::Overlay,
            };
            planes.push(PlaneInfo {
                handle,
                kind,
                formats: info.formats().to_vec(),
            });
        }
        Ok(planes)
    }

    /// The first plane of a kind (primary, overlay, cursor).
    pub fn first_plane(&self, kind: PlaneType) -> std::io::Result<plane::Handle> {
        self.planes()?
            .into_iter()
            .find(|p| p.kind == kind)
            .map(|p| p.handle)
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("no {kind:?} plane"))
            })
    }

    /// The connectors of one interface type (e.g. Virtual, Writeback).
    pub fn connectors(
        &self,
        interface: connector::Interface,
    ) -> std::io::Result<Vec<connector::Info>> {
        let res = self.resource_handles()?;
        let mut out = Vec::new();
        for &c in res.connectors() {
            let info = self.get_connector(c, true)?;
            if info.interface() == interface {
                out.push(info);
            }
        }
        Ok(out)
    }

    /// The first CRTC.
    pub fn first_crtc(&self) -> std::io::Result<crtc::Handle> {
        self.resource_handles()?
            .crtcs()
            .first()
            .copied()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no CRTC"))
    }
}

/// The preferred mode of a connector (else its first).
pub fn preferred_mode(conn: &connector::Info) -> Option<Mode> {
    conn.modes()
        .iter()
        .find(|m| m.mode_type().contains(control::ModeTypeFlags::PREFERRED))
        .or_else(|| conn.modes().first())
        .copied()
}

/// Sets a named property in an atomic request, failing clearly if the object lacks it.
pub fn set(
    req: &mut control::atomic::AtomicModeReq,
    props: &HashMap<String, property::Handle>,
    object: impl control::ResourceHandle,
    name: &str,
    value: property::Value<'_>,
) {
    let handle = *props
        .get(name)
        .unwrap_or_else(|| panic!("object has no property {name}"));
    req.add_property(object, handle, value);
}

/// A single-plane LINEAR framebuffer description of a PRIME-imported dma-buf.
#[derive(Debug, Clone, Copy)]
pub struct ImportedBuffer {
    /// The GEM handle of the import.
    pub handle: drm::buffer::Handle,
    /// Width and height.
    pub size: (u32, u32),
    /// Bytes per row.
    pub pitch: u32,
    /// Its format.
    pub format: drm::buffer::DrmFourcc,
}

impl drm::buffer::PlanarBuffer for ImportedBuffer {
    fn size(&self) -> (u32, u32) {
        self.size
    }
    fn format(&self) -> drm::buffer::DrmFourcc {
        self.format
    }
    fn modifier(&self) -> Option<drm::buffer::DrmModifier> {
        Some(drm::buffer::DrmModifier::Linear)
    }
    fn pitches(&self) -> [u32; 4] {
        [self.pitch, 0, 0, 0]
    }
    fn handles(&self) -> [Option<drm::buffer::Handle>; 4] {
        [Some(self.handle), None, None, None]
    }
    fn offsets(&self) -> [u32; 4] {
        [0; 4]
    }
}

/// An [`ImportedBuffer`] described without a modifier, for drivers without ADDFB2 modifiers
/// (LINEAR is then implied).
struct WithoutModifier(ImportedBuffer);

impl drm::buffer::PlanarBuffer for WithoutModifier {
    fn size(&self) -> (u32, u32) {
        self.0.size
    }
    fn format(&self) -> drm::buffer::DrmFourcc {
        self.0.format
    }
    fn modifier(&self) -> Option<drm::buffer::DrmModifier> {
        None
    }
    fn pitches(&self) -> [u32; 4] {
        self.0.pitches()
    }
    fn handles(&self) -> [Option<drm::buffer::Handle>; 4] {
        self.0.handles()
    }
    fn offsets(&self) -> [u32; 4] {
        self.0.offsets()
    }
}

/// Adds to `req`: `mode` on `crtc`, active, driving `connector`.
pub fn set_mode(
    req: &mut control::atomic::AtomicModeReq,
    card: &Card,
    crtc: crtc::Handle,
    connector: connector::Handle,
    mode: &Mode,
) {
    use property::Value;
    let cp = card.prop_handles(crtc).expect("CRTC properties");
    let blob = card.create_property_blob(mode).expect("mode blob");
    set(req, &cp, crtc, "MODE_ID", blob);
    set(req, &cp, crtc, "ACTIVE", Value::Boolean(true));
    let op = card.prop_handles(connector).expect("connector properties");
    set(req, &op, connector, "CRTC_ID", Value::CRTC(Some(crtc)));
}

/// Puts `fb` on `plane` of `crtc`, unscaled at `(x, y, w, h)`.
pub fn put_plane(
    req: &mut control::atomic::AtomicModeReq,
    card: &Card,
    plane: plane::Handle,
    crtc: crtc::Handle,
    fb: control::framebuffer::Handle,
    (x, y, w, h): (u32, u32, u32, u32),
) {
    use property::Value;
    let p = card.prop_handles(plane).expect("plane properties");
    set(req, &p, plane, "FB_ID", Value::Framebuffer(Some(fb)));
    set(req, &p, plane, "CRTC_ID", Value::CRTC(Some(crtc)));
    set(req, &p, plane, "SRC_X", Value::UnsignedRange(0));
    set(req, &p, plane, "SRC_Y", Value::UnsignedRange(0));
    set(
        req,
        &p,
        plane,
        "SRC_W",
        Value::UnsignedRange(u64::from(w) << 16),
    );
    set(
        req,
        &p,
        plane,
        "SRC_H",
        Value::UnsignedRange(u64::from(h) << 16),
    );
    set(req, &p, plane, "CRTC_X", Value::SignedRange(i64::from(x)));
    set(req, &p, plane, "CRTC_Y", Value::SignedRange(i64::from(y)));
    set(req, &p, plane, "CRTC_W", Value::UnsignedRange(u64::from(w)));
    set(req, &p, plane, "CRTC_H", Value::UnsignedRange(u64::from(h)));
}

/// The plane a [`writeback_round_trip`] puts the buffer under test on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestPlane {
    /// An overlay plane at `(x, y, w, h)`, over a primary plane of [`ROUND_TRIP_BACKGROUND`].
    Overlay((u32, u32, u32, u32)),
    /// The primary plane, full screen (vkms before 5.15 has no overlay planes).
    Primary,
}

/// The primary plane's colour (XRGB8888) under an overlay in [`writeback_round_trip`].
pub const ROUND_TRIP_BACKGROUND: u32 = 0x0020_3040;

/// A different colour for every pixel, so a shifted or scaled image cannot pass.
pub fn round_trip_pattern(x: u32, y: u32) -> u32 {
    0xff00_0000 | ((x & 0xff) << 16) | ((y & 0xff) << 8) | ((x * 7 + y * 13) & 0xff)
}

/// What a [`writeback_round_trip`] saw.
#[derive(Debug)]
pub struct RoundTrip {
    /// The mode's size.
    pub screen: (u32, u32),
    /// Pixels that differ from the expected picture.
    pub wrong: usize,
    /// The first few of them, described.
    pub first_wrong: Vec<String>,
    /// From the commit to the writeback fence signalling.
    pub fence_ms: u128,
}

/// The size `plane` needs the buffer under test to be on this card's preferred mode.
pub fn round_trip_size(card: &Card, plane: TestPlane) -> (u32, u32) {
    match plane {
        TestPlane::Overlay((_, _, w, h)) => (w, h),
        TestPlane::Primary => {
            let output = card
                .connectors(connector::Interface::Virtual)
                .unwrap()
                .remove(0);
            let mode = preferred_mode(&output).expect("the Virtual connector has a mode");
            (u32::from(mode.size().0), u32::from(mode.size().1))
        }
    }
}

/// Fills `buf` (ARGB8888, `size`, LINEAR, pitch `4 * width`) with [`round_trip_pattern`] through
/// the CPU-access guard, scans it out on `plane` of vkms's CRTC with the writeback connector on
/// the same atomic commit, and compares the capture with the expected picture pixel by pixel.
pub fn writeback_round_trip(
    card: &Card,
    buf: &wayheap::dmabuf::DmaBuf,
    plane: TestPlane,
) -> RoundTrip {
    use drm::buffer::{Buffer, DrmFourcc};
    use drm::control::{AtomicCommitFlags, FbCmd2Flags, atomic::AtomicModeReq};
    use wayheap::kms::writeback::WritebackConnector;

    let output = card
        .connectors(connector::Interface::Virtual)
        .unwrap()
        .remove(0);
    let writeback = card
        .connectors(connector::Interface::Writeback)
        .unwrap()
        .remove(0);
    let crtc = card.first_crtc().unwrap();
    let mode = preferred_mode(&output).expect("the Virtual connector has a mode");
    let (w, h) = (u32::from(mode.size().0), u32::from(mode.size().1));
    let (bw, bh) = round_trip_size(card, plane);
    let pitch = bw * 4;
    {
        let mut map = buf.map().unwrap();
        let mut bytes = map.write().unwrap();
        for y in 0..bh {
            for x in 0..bw {
                let at = (y * pitch + x * 4) as usize;
                bytes[at..at + 4].copy_from_slice(&round_trip_pattern(x, y).to_le_bytes());
            }
        }
    }
    let gem = card.prime_fd_to_buffer(buf.fd()).unwrap();
    let imported = ImportedBuffer {
        handle: gem,
        size: (bw, bh),
        pitch,
        format: match plane {
            TestPlane::Overlay(_) => DrmFourcc::Argb8888,
            TestPlane::Primary => DrmFourcc::Xrgb8888,
        },
    };
    // LINEAR through ADDFB2 with modifiers where the driver takes them (5.10's vkms does not).
    let flags = if card
        .get_driver_capability(drm::DriverCapability::AddFB2Modifiers)
        .is_ok_and(|v| v != 0)
    {
        FbCmd2Flags::MODIFIERS
    } else {
        FbCmd2Flags::empty()
    };
    let test_fb = if flags.is_empty() {
        card.add_planar_framebuffer(&WithoutModifier(imported), flags)
    } else {
        card.add_planar_framebuffer(&imported, flags)
    }
    .unwrap();

    let mut req = AtomicModeReq::new();
    set_mode(&mut req, card, crtc, output.handle(), &mode);
    let primary = card.first_plane(PlaneType::Primary).unwrap();
    // The primary plane's buffer under an overlay (freed with the card).
    let mut background = None;
    match plane {
        TestPlane::Overlay(rect) => {
            let mut bo = card
                .create_dumb_buffer((w, h), DrmFourcc::Xrgb8888, 32)
                .unwrap();
            {
                let mut map = card.map_dumb_buffer(&mut bo).unwrap();
                for px in map.as_mut().chunks_exact_mut(4) {
                    px.copy_from_slice(&ROUND_TRIP_BACKGROUND.to_le_bytes());
                }
            }
            let fb = card.add_framebuffer(&bo, 24, 32).unwrap();
            put_plane(&mut req, card, primary, crtc, fb, (0, 0, w, h));
            let overlay = card.first_plane(PlaneType::Overlay).unwrap();
            put_plane(&mut req, card, overlay, crtc, test_fb, rect);
            background = Some((bo, fb));
        }
        TestPlane::Primary => put_plane(&mut req, card, primary, crtc, test_fb, (0, 0, w, h)),
    }

    // Writeback target, pre-filled with a sentinel so an untouched buffer cannot pass.
    let mut wb_bo = card
        .create_dumb_buffer((w, h), DrmFourcc::Xrgb8888, 32)
        .unwrap();
    card.map_dumb_buffer(&mut wb_bo)
        .unwrap()
        .as_mut()
        .fill(0xa5);
    let wb_fb = card.add_framebuffer(&wb_bo, 24, 32).unwrap();
    let writeback = WritebackConnector::new(card, writeback.handle()).expect("writeback connector");
    writeback.attach(&mut req, crtc, wb_fb);

    let committed = std::time::Instant::now();
    let fence = writeback
        .commit_with_out_fence(card, AtomicCommitFlags::ALLOW_MODESET, req)
        .expect("atomic commit of Virtual + Writeback on one CRTC (vkms possible_clones)");
    let state = fence
        .wait(std::time::Duration::from_secs(20))
        .expect("writeback fence");
    assert_eq!(state, wayheap::dmabuf::FenceState::Signalled);
    let fence_ms = committed.elapsed().as_millis();
    // Leave vkms as a compositor expects to find it: a writeback connector still bound to the
    // CRTC makes Smithay's reset of the device fail (it does not see writeback connectors).
    writeback.detach(card).expect("detaching writeback");

    // Compare every pixel (RGB; the X byte is undefined in XRGB8888).
    let wb_pitch = wb_bo.pitch();
    let map = card.map_dumb_buffer(&mut wb_bo).unwrap();
    let bytes = map.as_ref();
    let (ox, oy, ow, oh) = match plane {
        TestPlane::Overlay(rect) => rect,
        TestPlane::Primary => (0, 0, w, h),
    };
    let mut first_wrong = Vec::new();
    let mut wrong = 0usize;
    for y in 0..h {
        for x in 0..w {
            let at = (y * wb_pitch + x * 4) as usize;
            let got = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) & 0x00ff_ffff;
            let inside = (ox..ox + ow).contains(&x) && (oy..oy + oh).contains(&y);
            let want = if inside {
                round_trip_pattern(x - ox, y - oy)
            } else {
                ROUND_TRIP_BACKGROUND
            } & 0x00ff_ffff;
            if got != want {
                wrong += 1;
                if first_wrong.len() < 8 {
                    first_wrong.push(format!("({x},{y}) got {got:06x} want {want:06x}"));
                }
            }
        }
    }
    let _ = background;
    RoundTrip {
        screen: (w, h),
        wrong,
        first_wrong,
        fence_ms,
    }
}
