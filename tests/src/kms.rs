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
