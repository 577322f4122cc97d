//! What the compositor tells its user and its tests: placement changes in the log, a
//! once-a-second summary with `--stats`, a JSON state file, PNG screenshots.

use std::collections::BTreeMap;
use std::path::Path;

use wayheap::smithay::FeedbackChoice;

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

/// Logs the surfaces whose placement changed in the tracker's last update, and gives each its
/// new heap hints (one that asks for hints later gets them from `surface_hints`).
pub fn placements_changed(app: &mut App) {
    for change in app.placements.changes() {
        tracing::info!(
            surface = %surface_key(&change.surface),
            placement = %change.now,
            "placement changed"
        );
        let hints = app.hint_config.hints_for(Some(&change.now));
        app.heap_hints.set_hints(&change.surface, hints);
    }
}

/// The state as JSON (for tests and tools).
pub fn state_json(app: &App, backend: &str) -> serde_json::Value {
    let placements: serde_json::Map<String, serde_json::Value> = app
        .placements
        .iter()
        .map(|(surface, p)| {
            let reason = p.reason().map(ToString::to_string);
            let feedback = match app.placements.feedback(surface) {
                FeedbackChoice::Default => "default",
                FeedbackChoice::Scanout => "scanout",
            };
            (
                surface_key(surface),
                serde_json::json!({ "plane": p.name(), "reason": reason, "feedback": feedback }),
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
        "rejected_dmabufs": app.rejections.recent().collect::<Vec<_>>(),
        "rejected_dmabufs_total": app.rejections.total(),
        "delegated": delegated,
        "delegation_refusals": app.heap_hints.refusals(),
        "clients": crate::state::CONNECTED_CLIENTS.load(std::sync::atomic::Ordering::Relaxed),
        "activation_tokens": app.desktop.activation_tokens(),
        "output": app.output.current_mode().map(|m| serde_json::json!([m.size.w, m.size.h])),
        "cursor": match &app.cursor {
            smithay::input::pointer::CursorImageStatus::Hidden => "hidden".to_owned(),
            smithay::input::pointer::CursorImageStatus::Named(icon) => format!("named {}", icon.name()),
            smithay::input::pointer::CursorImageStatus::Surface(_) => "surface".to_owned(),
        },
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
    for (_, p) in app.placements.iter() {
        *counts.entry(p.to_string()).or_default() += 1;
    }
    let surfaces = app.placements.iter().count();
    let mut line = format!("[stats] {fps:.1} fps, {surfaces} surfaces");
    for (k, n) in counts {
        line.push_str(&format!("; {n} {k}"));
    }
    line
}

/// The environment variable through which `scripts/demo` gives the time its command started
/// (seconds since the epoch), so the first frame can say how long a newcomer waited for it.
pub const DEMO_STARTED_ENV: &str = "WAYHEAP_DEMO_STARTED";

/// The line printed at the first frame that shows a client window: how long after the
/// compositor started and, under `scripts/demo`, after the command was typed (build included).
pub fn first_client_frame(since_compositor: std::time::Duration) -> String {
    let compositor = since_compositor.as_secs_f64();
    let since_command = std::env::var(DEMO_STARTED_ENV)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .and_then(|t0| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?;
            Some(now.as_secs_f64() - t0)
        });
    match since_command {
        Some(command) => format!(
            "compositor-demo: first client frame {command:.1} s after the demo command ({compositor:.1} s after the compositor started)"
        ),
        None => format!("compositor-demo: first client frame {compositor:.1} s after start"),
    }
}
