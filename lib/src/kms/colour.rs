//! The YCbCr matrix and range of KMS planes (`COLOR_ENCODING`, `COLOR_RANGE`).
//!
//! A plane that scans out YUV converts it with these two properties; their defaults are the
//! driver's (vkms: BT.601 full range), not what the buffer's writer meant. Smithay's
//! `DrmCompositor` never sets them, and the properties keep their value from one commit to the
//! next, so a compositor sets them once, before its first frame, to the same [`Colour`] its CPU
//! converter uses ([`crate::yuv`]): a YUV buffer then looks the same on a plane and composited.
//!
//! ## How to use
//!
//! ```no_run
//! # fn f(card: &std::fs::File) -> Result<(), wayheap::kms::colour::PlaneColourError> {
//! # struct Card<'a>(&'a std::fs::File);
//! # impl std::os::fd::AsFd for Card<'_> {
//! #     fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> { self.0.as_fd() }
//! # }
//! # impl drm::Device for Card<'_> {}
//! # impl drm::control::Device for Card<'_> {}
//! use drm::control::Device as _;
//! let card = Card(card);
//! let planes = card.plane_handles().map_err(wayheap::kms::colour::PlaneColourError::Planes)?;
//! // The properties and their values are read once; setting and reading back reuse them.
//! let colour_planes = wayheap::kms::ColourPlanes::read(&card, &planes);
//! colour_planes.set(&card, wayheap::yuv::Colour::default())?;
//! println!("{} planes convert YUV as {:?}", colour_planes.len(), colour_planes.current(&card));
//! # Ok(()) }
//! ```

use drm::control::{AtomicCommitFlags, Device, atomic::AtomicModeReq, plane, property};

use crate::yuv::Colour;

/// Why the planes' colour properties could not be set.
#[derive(Debug, thiserror::Error)]
pub enum PlaneColourError {
    /// The planes could not be listed.
    #[error("listing the device's planes failed")]
    Planes(#[source] std::io::Error),
    /// The atomic commit setting them failed (a device without atomic modesetting, or a
    /// client without DRM master).
    #[error(
        "the atomic commit setting COLOR_ENCODING/COLOR_RANGE failed (is this process DRM master?)"
    )]
    Commit(#[source] std::io::Error),
}

/// An enum property of a plane: its handle and its (value, name) table.
#[derive(Debug, Clone)]
struct EnumProperty {
    handle: property::Handle,
    values: Vec<(u64, String)>,
}

impl EnumProperty {
    fn value_of(&self, name: &str) -> Option<u64> {
        self.values.iter().find(|(_, n)| n == name).map(|(v, _)| *v)
    }

    fn name_of(&self, value: u64) -> Option<&str> {
        self.values
            .iter()
            .find(|(v, _)| *v == value)
            .map(|(_, n)| n.as_str())
    }
}

/// A plane with both colour properties.
#[derive(Debug, Clone)]
struct ColourPlane {
    handle: plane::Handle,
    encoding: EnumProperty,
    range: EnumProperty,
}

/// The planes that have `COLOR_ENCODING` and `COLOR_RANGE`, with their properties' handles and
/// enum tables, read once: setting a colour is then one atomic commit, and reading the values
/// back one `GETPROPERTIES` per plane.
#[derive(Debug, Clone, Default)]
pub struct ColourPlanes {
    planes: Vec<ColourPlane>,
}

impl ColourPlanes {
    /// Reads the colour properties of `planes`; planes without both (RGB-only planes) are left
    /// out.
    pub fn read<D: Device>(device: &D, planes: &[plane::Handle]) -> ColourPlanes {
        let planes = planes
            .iter()
            .filter_map(|&handle| {
                let named = device
                    .get_properties(handle)
                    .ok()?
                    .as_hashmap(device)
                    .ok()?;
                let table = |name: &str| {
                    let info = named.get(name)?;
                    let property::ValueType::Enum(values) = info.value_type() else {
                        return None;
                    };
                    let (raws, entries) = values.values();
                    Some(EnumProperty {
                        handle: info.handle(),
                        values: raws
                            .iter()
                            .zip(entries)
                            .map(|(v, e)| (*v, e.name().to_string_lossy().into_owned()))
                            .collect(),
                    })
                };
                Some(ColourPlane {
                    handle,
                    encoding: table("COLOR_ENCODING")?,
                    range: table("COLOR_RANGE")?,
                })
            })
            .collect();
        ColourPlanes { planes }
    }

    /// How many planes have the properties.
    pub fn len(&self) -> usize {
        self.planes.len()
    }

    /// True when no plane has them (nothing to set).
    pub fn is_empty(&self) -> bool {
        self.planes.is_empty()
    }

    /// Sets every plane that lists `colour`'s values to it, in one atomic commit; returns how
    /// many were set.
    pub fn set<D: Device>(&self, device: &D, colour: Colour) -> Result<usize, PlaneColourError> {
        let (encoding, range) = colour.plane_properties();
        let mut req = AtomicModeReq::new();
        let mut set = 0;
        for p in &self.planes {
            if let (Some(e), Some(r)) = (p.encoding.value_of(encoding), p.range.value_of(range)) {
                req.add_property(
                    p.handle,
                    p.encoding.handle,
                    property::Value::UnsignedRange(e),
                );
                req.add_property(p.handle, p.range.handle, property::Value::UnsignedRange(r));
                set += 1;
            }
        }
        if set > 0 {
            device
                .atomic_commit(AtomicCommitFlags::empty(), req)
                .map_err(PlaneColourError::Commit)?;
        }
        Ok(set)
    }

    /// What the kernel has now as each plane's (`COLOR_ENCODING`, `COLOR_RANGE`), by name
    /// (e.g. `("ITU-R BT.709 YCbCr", "YCbCr full range")`).
    pub fn current<D: Device>(&self, device: &D) -> Vec<(String, String)> {
        self.planes
            .iter()
            .filter_map(|p| {
                let values = device.get_properties(p.handle).ok()?;
                let value = |prop: &EnumProperty| {
                    values
                        .iter()
                        .find(|(h, _)| **h == prop.handle)
                        .and_then(|(_, v)| prop.name_of(*v))
                        .map(str::to_owned)
                };
                Some((value(&p.encoding)?, value(&p.range)?))
            })
            .collect()
    }
}
