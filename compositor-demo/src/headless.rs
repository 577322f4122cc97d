//! The headless backend: composes with Smithay's pixman renderer into an image in memory.
//! No display, no planes: every surface is composited, which the report says.

use smithay::backend::allocator::Fourcc;
use smithay::backend::allocator::format::FormatSet;
use smithay::backend::renderer::damage::OutputDamageTracker;
use smithay::backend::renderer::element::RenderElementStates;
use smithay::backend::renderer::element::surface::WaylandSurfaceRenderElement;
use smithay::backend::renderer::pixman::PixmanRenderer;
use smithay::backend::renderer::{Bind, ExportMem, ImportDma, Offscreen};
use smithay::desktop::space::render_output;
use smithay::reexports::pixman::Image;
use smithay::utils::{Physical, Rectangle, Size};

use crate::state::App;

/// Background where no surface is.
pub const CLEAR: [f32; 4] = [0.1, 0.1, 0.12, 1.0];

/// Offscreen composition.
pub(crate) struct Headless {
    renderer: PixmanRenderer,
    target: Image<'static, 'static>,
    damage: OutputDamageTracker,
    size: Size<i32, Physical>,
}

impl Headless {
    /// A `width` x `height` ARGB8888 target.
    pub fn new(width: i32, height: i32) -> Result<Self, String> {
        let mut renderer = PixmanRenderer::new().map_err(|e| format!("pixman renderer: {e}"))?;
        let target = renderer
            .create_buffer(Fourcc::Argb8888, (width, height).into())
            .map_err(|e| format!("offscreen buffer: {e}"))?;
        let size = Size::from((width, height));
        let damage = OutputDamageTracker::new(size, 1.0, smithay::utils::Transform::Normal);
        Ok(Self {
            renderer,
            target,
            damage,
            size,
        })
    }

    /// What the renderer can import from clients.
    pub fn dmabuf_formats(&self) -> FormatSet {
        self.renderer.dmabuf_formats()
    }

    /// Composes the space; returns the element states (all composited here).
    pub fn render(&mut self, app: &App) -> Result<RenderElementStates, String> {
        let mut fb = self
            .renderer
            .bind(&mut self.target)
            .map_err(|e| format!("bind: {e}"))?;
        let result = render_output::<_, WaylandSurfaceRenderElement<PixmanRenderer>, _, _>(
            &app.output,
            &mut self.renderer,
            &mut fb,
            1.0,
            0,
            [&app.space],
            &[],
            &mut self.damage,
            CLEAR,
        )
        .map_err(|e| format!("render: {e:?}"))?;
        Ok(result.states)
    }

    /// The composed image as RGBA8 rows.
    pub fn snapshot(&mut self) -> Result<(u32, u32, Vec<u8>), String> {
        let fb = self
            .renderer
            .bind(&mut self.target)
            .map_err(|e| format!("bind: {e}"))?;
        let rect = Rectangle::from_size((self.size.w, self.size.h).into());
        let map = self
            .renderer
            .copy_framebuffer(&fb, rect, Fourcc::Abgr8888)
            .map_err(|e| format!("copy: {e}"))?;
        let bytes = self
            .renderer
            .map_texture(&map)
            .map_err(|e| format!("map: {e}"))?;
        Ok((self.size.w as u32, self.size.h as u32, bytes.to_vec()))
    }
}
