//! The headless backend: composes into an image in memory, with GLES on EGL's surfaceless
//! platform when EGL is available (a GPU, or Mesa's llvmpipe) and Smithay's pixman renderer
//! otherwise. No display, no planes: every surface is composited, which the report says.

use smithay::backend::allocator::Fourcc;
use smithay::backend::allocator::format::FormatSet;
use smithay::backend::renderer::damage::OutputDamageTracker;
use smithay::backend::renderer::element::RenderElementStates;
use smithay::backend::renderer::element::surface::WaylandSurfaceRenderElement;
use smithay::backend::renderer::gles::{GlesRenderbuffer, GlesRenderer};
use smithay::backend::renderer::pixman::PixmanRenderer;
use smithay::backend::renderer::{
    Bind, ExportMem, ImportAll, ImportDma, Offscreen, Renderer, Texture,
};
use smithay::desktop::space::render_output;
use smithay::reexports::pixman::Image;
use smithay::utils::{Physical, Rectangle, Size};
use wayheap::smithay::renderer::{
    self as wh_renderer, GlesOutcome, GlesUnavailable, RendererChoice,
};

use crate::report::RendererInfo;
use crate::state::App;

/// Background where no surface is.
pub const CLEAR: [f32; 4] = [0.1, 0.1, 0.12, 1.0];

/// An output with no physical screen (headless, or the nested window) of `size` at 60 Hz.
pub(crate) fn virtual_output(
    name: &str,
    size: smithay::utils::Size<i32, Physical>,
) -> smithay::output::Output {
    use smithay::output::{Mode, Output, PhysicalProperties, Subpixel};
    let output = Output::new(
        name.into(),
        PhysicalProperties {
            size: (0, 0).into(),
            subpixel: Subpixel::Unknown,
            make: "wayheap".into(),
            model: name.into(),
        },
    );
    let mode = Mode {
        size,
        refresh: 60_000,
    };
    output.change_current_state(Some(mode), None, None, Some((0, 0).into()));
    output.set_preferred(mode);
    output
}

/// The renderer and its offscreen target.
enum Composer {
    Pixman {
        renderer: PixmanRenderer,
        target: Image<'static, 'static>,
    },
    Gles {
        renderer: Box<GlesRenderer>,
        target: GlesRenderbuffer,
    },
}

/// Offscreen composition.
pub(crate) struct Headless {
    composer: Composer,
    damage: OutputDamageTracker,
    size: Size<i32, Physical>,
    pub info: RendererInfo,
}

impl Headless {
    /// A `width` x `height` target (ABGR8888 for GLES, ARGB8888 for pixman), composed by the
    /// renderer `choice` allows.
    pub fn new(width: i32, height: i32, choice: RendererChoice) -> Result<Self, String> {
        let size = Size::from((width, height));
        let gles = choice
            .attempt(|| {
                let mut renderer = wh_renderer::gles_surfaceless()?;
                choice.check_dmabuf_import(&mut renderer)?;
                let target: GlesRenderbuffer = renderer
                    .create_buffer(Fourcc::Abgr8888, (width, height).into())
                    .map_err(GlesUnavailable::Offscreen)?;
                Ok((renderer, target))
            })
            .map_err(|e| format!("--renderer gles: {e}"))?;
        let (composer, info) = match gles {
            GlesOutcome::Gles((mut renderer, target)) => {
                let info = RendererInfo::gles(&mut renderer);
                let renderer = Box::new(renderer);
                (Composer::Gles { renderer, target }, info)
            }
            GlesOutcome::Pixman { why } => {
                let mut renderer =
                    PixmanRenderer::new().map_err(|e| format!("pixman renderer: {e}"))?;
                let target = renderer
                    .create_buffer(Fourcc::Argb8888, (width, height).into())
                    .map_err(|e| format!("offscreen buffer: {e}"))?;
                (
                    Composer::Pixman { renderer, target },
                    RendererInfo::pixman(why),
                )
            }
        };
        let damage = OutputDamageTracker::new(size, 1.0, smithay::utils::Transform::Normal);
        Ok(Self {
            composer,
            damage,
            size,
            info,
        })
    }

    /// What the renderer can import from clients.
    pub fn dmabuf_formats(&self) -> FormatSet {
        match &self.composer {
            Composer::Pixman { renderer, .. } => renderer.dmabuf_formats(),
            Composer::Gles { renderer, .. } => {
                wh_renderer::advertised_formats(&renderer.dmabuf_formats())
            }
        }
    }

    /// Composes the space; returns the element states (all composited here).
    pub fn render(&mut self, app: &App) -> Result<RenderElementStates, String> {
        match &mut self.composer {
            Composer::Pixman { renderer, target } => {
                compose(renderer, target, app, &mut self.damage)
            }
            Composer::Gles { renderer, target } => {
                compose(&mut **renderer, target, app, &mut self.damage)
            }
        }
    }

    /// The composed image as RGBA8 rows, top row first.
    pub fn snapshot(&mut self) -> Result<(u32, u32, Vec<u8>), String> {
        let rgba = match &mut self.composer {
            Composer::Pixman { renderer, target } => read_back(renderer, target, self.size)?,
            Composer::Gles { renderer, target } => read_back(&mut **renderer, target, self.size)?,
        };
        Ok((self.size.w as u32, self.size.h as u32, rgba))
    }
}

/// One frame of the space into `target`.
pub(crate) fn compose<R, T>(
    renderer: &mut R,
    target: &mut T,
    app: &App,
    damage: &mut OutputDamageTracker,
) -> Result<RenderElementStates, String>
where
    R: Renderer + ImportAll + Bind<T>,
    R::TextureId: Clone + Texture + 'static,
{
    let mut fb = renderer.bind(target).map_err(|e| format!("bind: {e}"))?;
    let result = render_output::<_, WaylandSurfaceRenderElement<R>, _, _>(
        &app.output,
        renderer,
        &mut fb,
        1.0,
        0,
        [&app.space],
        &[],
        damage,
        CLEAR,
    )
    .map_err(|e| format!("render: {e:?}"))?;
    Ok(result.states)
}

/// Reads `target` back as RGBA8, top row first.
pub(crate) fn read_back<R, T>(
    renderer: &mut R,
    target: &mut T,
    size: Size<i32, Physical>,
) -> Result<Vec<u8>, String>
where
    R: Bind<T> + ExportMem,
{
    let fb = renderer.bind(target).map_err(|e| format!("bind: {e}"))?;
    let rect = Rectangle::from_size((size.w, size.h).into());
    let map = renderer
        .copy_framebuffer(&fb, rect, Fourcc::Abgr8888)
        .map_err(|e| format!("copy: {e}"))?;
    let bytes = renderer
        .map_texture(&map)
        .map_err(|e| format!("map: {e}"))?;
    // Both renderers give the top row first here: pixman's image is top-down, and Smithay draws
    // GLES offscreen targets upside down so that GL's bottom-up read comes out top-down
    // (`TextureMapping::flipped` is not consistent across the two, so it is not used; the
    // host tests check the orientation for each renderer).
    let rgba = bytes.to_vec();
    Ok(rgba)
}
