//! What the compositor tells its user and its tests: placement changes in the log, a
//! once-a-second summary with `--stats`, a JSON state file, PNG screenshots.

use std::collections::BTreeMap;
use std::path::Path;

use smithay::backend::renderer::element::RenderElementStates;
use smithay::desktop::Window;
use wayheap::smithay::{ElementFacts, Placement, PlaneCaps, PlaneKind, explain};

use crate::state::{App, surface_key};

/// Which renderer composes, and why that one (for the log and the state file).
#[derive(Debug, Clone)]
pub struct RendererInfo {
    /// "gles" or "pixman".
    pub name: &'static str,
    /// GL_RENDERER for GLES ("llvmpipe (LLVM ...)"), "cpu" for pixman.
    pub detail: String,
    /// Why pixman was chosen when GLES was allowed (the GLES error), else empty.
    pub why: String,
}

impl RendererInfo {
    pub fn gles(renderer: &mut smithay::backend::renderer::gles::GlesRenderer) -> Self {
        Self {
            name: "gles",
            detail: wayheap::smithay::renderer::gl_renderer_name(renderer),
            why: String::new(),
        }
    }

    pub fn pixman(why: String) -> Self {
        Self {
            name: "pixman",
            detail: "cpu".into(),
            why,
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({"name": self.name, "detail": self.detail, "why": self.why})
    }
}

/// Facts about the surface's current buffer: a dma-buf's format, whether it is scaled, and (when
/// `contiguous_only` planes make it matter) its memory.
fn facts(
    surface: &smithay::reexports::wayland_server::protocol::wl_surface::WlSurface,
    contiguous_only: bool,
) -> ElementFacts {
    use smithay::backend::renderer::utils::RendererSurfaceStateUserData;
    use smithay::wayland::compositor::with_states;
    with_states(surface, |states| {
        let data = states.data_map.get::<RendererSurfaceStateUserData>();
        let guard = data.map(|d| d.lock().unwrap_or_else(|e| e.into_inner()));
        let Some(state) = guard.as_ref() else {
            return ElementFacts {
                dmabuf_format: None,
                scaled: false,
                memory: None,
            };
        };
        let dmabuf = state
            .buffer()
            .and_then(|b| smithay::wayland::dmabuf::get_dmabuf(b).ok());
        let dmabuf_format = dmabuf.map(smithay::backend::allocator::Buffer::format);
        // fdinfo reads: only where the planes care about the memory.
        let memory = dmabuf
            .filter(|_| contiguous_only)
            .and_then(wayheap::smithay::BufferMemory::of);
        let scaled = match (state.buffer_size(), state.surface_size()) {
            (Some(b), Some(s)) => b.w != s.w || b.h != s.h,
            _ => false,
        };
        ElementFacts {
            dmabuf_format,
            scaled,
            memory,
        }
    })
}

/// Updates `app.placements` from a frame's states; logs every change. `plane_of` says which plane
/// kind a surface got (KMS), `caps` what the planes can do.
pub fn update_placements(
    app: &mut App,
    states: &RenderElementStates,
    plane_of: &dyn Fn(
        &smithay::reexports::wayland_server::protocol::wl_surface::WlSurface,
    ) -> Option<PlaneKind>,
    caps: &PlaneCaps,
    scanout_allowed: bool,
    extra: &[smithay::reexports::wayland_server::protocol::wl_surface::WlSurface],
) {
    let mut surfaces = extra.to_vec();
    for window in app.space.elements() {
        collect_surfaces(window, &mut surfaces);
    }
    let overlays_taken = surfaces
        .iter()
        .filter(|s| plane_of(s) == Some(PlaneKind::Overlay))
        .count();
    let mut now = BTreeMap::new();
    for s in &surfaces {
        let Some(state) = states.element_render_state(s) else {
            continue;
        };
        let placement = explain(
            plane_of(s),
            &state.presentation_state,
            &facts(s, caps.contiguous_only),
            caps,
            overlays_taken,
            scanout_allowed,
        );
        now.insert(surface_key(s), placement);
    }
    for s in &surfaces {
        let k = surface_key(s);
        let Some(p) = now.get(&k) else { continue };
        if app.placements.get(&k) != Some(p) {
            tracing::info!(surface = %k, placement = %p, "placement changed");
            // A surface that moved (onto a plane, off it) gets its new heap hints; one that
            // asks for hints later gets them from `surface_hints`.
            let hints = app.hint_config.hints_for(Some(p));
            app.heap_hints.set_hints(s, hints);
        }
    }
    app.placements = now;
}

fn collect_surfaces(
    window: &Window,
    out: &mut Vec<smithay::reexports::wayland_server::protocol::wl_surface::WlSurface>,
) {
    window.with_surfaces(|s, _| out.push(s.clone()));
}

/// The state as JSON (for tests and tools).
pub fn state_json(app: &App, backend: &str) -> serde_json::Value {
    let placements: serde_json::Map<String, serde_json::Value> = app
        .placements
        .iter()
        .map(|(k, p)| {
            let (plane, reason) = match p {
                Placement::Plane(PlaneKind::Primary) => ("primary", None),
                Placement::Plane(PlaneKind::Overlay) => ("overlay", None),
                Placement::Plane(PlaneKind::Cursor) => ("cursor", None),
                Placement::Composited(r) => ("composited", Some(r.to_string())),
                Placement::Hidden => ("hidden", None),
            };
            (
                k.clone(),
                serde_json::json!({ "plane": plane, "reason": reason }),
            )
        })
        .collect();
    let delegated: Vec<serde_json::Value> = app
        .delegated
        .iter()
        .map(|u| {
            serde_json::json!({
                "pid": u.pid,
                "buffers": u.buffers,
                "bytes": u.bytes,
                "heaps": u.per_heap.iter().map(|(h, b)| serde_json::json!({"heap": h, "bytes": b})).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "backend": backend,
        "pid": std::process::id(),
        "frames": app.frames,
        "socket": app.socket_name.to_string_lossy(),
        "surfaces": placements,
        "rejected_dmabufs": app.rejections,
        "delegated": delegated,
        "delegation_refusals": app.heap_hints.refusals(),
        "clients": crate::state::CONNECTED_CLIENTS.load(std::sync::atomic::Ordering::Relaxed),
        "output": app.output.current_mode().map(|m| serde_json::json!([m.size.w, m.size.h])),
    })
}

/// Writes `value` to `path` atomically (write + rename), so a reader never sees half a file.
pub fn write_json(path: &Path, value: &serde_json::Value) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?)?;
    std::fs::rename(tmp, path)
}

/// Writes RGBA8 rows as a PNG.
pub fn write_png(path: &Path, width: u32, height: u32, rgba: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let file =
        std::fs::File::create(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().map_err(|e| format!("png: {e}"))?;
    w.write_image_data(rgba).map_err(|e| format!("png: {e}"))?;
    w.finish().map_err(|e| format!("png: {e}"))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("renaming to {}: {e}", path.display()))
}

/// The `--stats` line.
pub fn stats_line(app: &App, fps: f64) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for p in app.placements.values() {
        *counts.entry(p.to_string()).or_default() += 1;
    }
    let mut line = format!("[stats] {fps:.1} fps, {} surfaces", app.placements.len());
    for (k, n) in counts {
        line.push_str(&format!("; {n} {k}"));
    }
    line
}
