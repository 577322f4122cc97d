//! The KMS backend (being written): a DRM device through a libseat session.

use std::path::{Path, PathBuf};

use smithay::backend::allocator::format::FormatSet;
use smithay::output::Output;
use smithay::reexports::calloop::LoopHandle;
use smithay::reexports::wayland_server::DisplayHandle;
use smithay::wayland::dmabuf::{DmabufGlobal, DmabufState};

use crate::Demo;
use crate::state::App;

/// The first DRM card (or `wanted`) if one exists.
pub fn find_card(wanted: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = wanted {
        return p.exists().then(|| p.to_owned());
    }
    let mut cards: Vec<PathBuf> = std::fs::read_dir("/dev/dri")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("card"))
        })
        .collect();
    cards.sort();
    cards.into_iter().next()
}

/// KMS output.
pub(crate) struct Kms {}

impl Kms {
    pub fn new(
        _device: Option<&Path>,
        _handle: &LoopHandle<'static, Demo>,
        _dh: &DisplayHandle,
        _planes: bool,
    ) -> Result<(Kms, Output), String> {
        Err("the KMS backend is not built yet; use --backend headless".into())
    }
    pub fn renderer_dmabuf_formats(&self) -> FormatSet {
        FormatSet::default()
    }
    pub fn create_dmabuf_global(
        &self,
        _state: &mut DmabufState,
        _dh: &DisplayHandle,
        _formats: FormatSet,
    ) -> Result<DmabufGlobal, String> {
        Err("not built yet".into())
    }
    pub fn render(&mut self, _app: &mut App, _planes: bool) -> bool {
        false
    }
    pub fn writeback_snapshot(&mut self) -> Result<(u32, u32, Vec<u8>), String> {
        Err("not built yet".into())
    }
}
