//! Named cursors: `wp_cursor_shape_v1` lets a client ask for a cursor by name ("text",
//! "pointer", ...) instead of drawing one, and the compositor draws it from the XCursor theme
//! (`$XCURSOR_THEME`, else `default`, which Debian points at Adwaita) at `$XCURSOR_SIZE` (24).
//! Each image is loaded once, as a memory buffer the renderer uploads (or the cursor plane
//! takes).

use std::collections::HashMap;

use smithay::backend::allocator::Fourcc;
use smithay::backend::renderer::element::memory::MemoryRenderBuffer;
use smithay::input::pointer::CursorIcon;
use smithay::utils::{Point, Transform};

/// A named cursor's image and hotspot.
#[derive(Debug, Clone)]
pub struct NamedCursor {
    /// The image (ARGB8888).
    pub buffer: MemoryRenderBuffer,
    /// Where the pointer is in the image.
    pub hotspot: Point<i32, smithay::utils::Logical>,
}

/// The theme's cursors, loaded when first asked for.
#[derive(Debug)]
pub struct CursorTheme {
    theme: xcursor::CursorTheme,
    size: u32,
    loaded: HashMap<CursorIcon, Option<NamedCursor>>,
}

impl CursorTheme {
    /// The theme of `$XCURSOR_THEME` (`default` otherwise) at `$XCURSOR_SIZE` (24 otherwise).
    pub fn from_env() -> CursorTheme {
        let name = std::env::var("XCURSOR_THEME").unwrap_or_else(|_| "default".to_owned());
        let size = std::env::var("XCURSOR_SIZE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(24);
        CursorTheme {
            theme: xcursor::CursorTheme::load(&name),
            size,
            loaded: HashMap::new(),
        }
    }

    /// The cursor for `icon` (its own image, else one of its alternative names'), or `None`
    /// when the theme has neither (logged once).
    pub fn get(&mut self, icon: CursorIcon) -> Option<&NamedCursor> {
        let (theme, size) = (&self.theme, self.size);
        self.loaded
            .entry(icon)
            .or_insert_with(|| {
                let found = std::iter::once(icon.name())
                    .chain(icon.alt_names().iter().copied())
                    .find_map(|name| load(theme, name, size));
                if found.is_none() {
                    tracing::warn!(
                        cursor = icon.name(),
                        "the cursor theme has no such cursor: none is drawn"
                    );
                }
                found
            })
            .as_ref()
    }
}

/// Reads cursor `name` from `theme`: the image whose nominal size is nearest `size` (its first
/// frame: animated cursors stand still).
fn load(theme: &xcursor::CursorTheme, name: &str, size: u32) -> Option<NamedCursor> {
    let path = theme.load_icon(name)?;
    let bytes = std::fs::read(&path).ok()?;
    let images = xcursor::parser::parse_xcursor(&bytes)?;
    let image = images
        .iter()
        .min_by_key(|i| i.size.abs_diff(size))
        .filter(|i| i.width > 0 && i.height > 0)?;
    // XCursor pixels are little-endian ARGB words: DRM's ARGB8888, byte for byte.
    let buffer = MemoryRenderBuffer::from_slice(
        &image.pixels_rgba,
        Fourcc::Argb8888,
        (image.width as i32, image.height as i32),
        1,
        Transform::Normal,
        None,
    );
    Some(NamedCursor {
        buffer,
        hotspot: (image.xhot as i32, image.yhot as i32).into(),
    })
}
