//! Client YUV dma-bufs as Smithay render elements without a renderer import: scanned out by a
//! plane, or converted on the CPU when they must be composited.
//!
//! Smithay makes a surface's render element only after the renderer imported its buffer, and
//! pixman imports no YUV: an NV12 camera frame never even becomes a plane candidate, although
//! the display engine's overlay planes scan NV12 out. [`SurfaceElement`] fixes that: for a YUV
//! dma-buf it is a [`YuvSurfaceElement`], whose underlying storage is the client's buffer (so
//! `DrmCompositor` puts it on a plane through [`PrimeExporter`](super::PrimeExporter)) and
//! which, when it is composited instead (no plane free, scaled, occluded, planes off),
//! converts the damaged rows of the buffer to XRGB8888 — mapped read-only, between
//! `DMA_BUF_IOCTL_SYNC` START and END, once per commit, only when drawn — and lets pixman
//! compose that. Every other surface is Smithay's own [`WaylandSurfaceRenderElement`].
//!
//! The colour (matrix and range) is the surface's, from `wp_color_representation_v1`
//! ([`colour_representation`](super::colour_representation)), or the compositor's default; a
//! YUV surface goes on a plane only when the planes' `COLOR_ENCODING`/`COLOR_RANGE` are its
//! colour, and [`PlaneColours`] makes them follow the front-most YUV surface, so a buffer looks
//! the same on a plane and composited.
//!
//! GLES imports YUV itself (as external images, where EGL can): with
//! [`YuvComposition::CPU_CONVERSION`] false for it, its surfaces stay Smithay's elements.
//!
//! ## How to use
//!
//! Build the frame's window elements with [`space_elements`] instead of Smithay's
//! `space_render_elements`, and accept the YUV formats the converter reads (see
//! [`cpu_converted_formats`]) in the linux-dmabuf global:
//!
//! ```no_run
//! # use smithay::backend::renderer::pixman::PixmanRenderer;
//! # use smithay::desktop::{Space, Window};
//! # use smithay::output::Output;
//! use wayheap::smithay::{SurfaceElement, YuvColours, space_elements};
//!
//! # fn frame(renderer: &mut PixmanRenderer, space: &Space<Window>, output: &Output,
//! #          plane_colours: &wayheap::smithay::PlaneColours) {
//! // `plane_colours`: a PlaneColours made once with the DRM device and the CRTC's planes.
//! let colours: YuvColours = plane_colours.colours();
//! let elements: Vec<SurfaceElement<PixmanRenderer>> =
//!     space_elements(renderer, space, output, &colours);
//! // compositor.render_frame(renderer, &elements, clear_colour, FrameFlags::DEFAULT)
//! # }
//! ```

use std::sync::{Arc, Mutex};

use smithay::backend::allocator::Buffer as _;
use smithay::backend::allocator::Format;
use smithay::backend::allocator::dmabuf::Dmabuf;
use smithay::backend::allocator::format::FormatSet;
use smithay::backend::renderer::element::surface::WaylandSurfaceRenderElement;
use smithay::backend::renderer::element::{Element, Id, Kind, RenderElement, UnderlyingStorage};
use smithay::backend::renderer::gles::GlesRenderer;
use smithay::backend::renderer::pixman::{PixmanRenderer, PixmanTexture};
use smithay::backend::renderer::utils::{
    Buffer, CommitCounter, DamageSet, DamageSnapshot, OpaqueRegions, RendererSurfaceStateUserData,
    SurfaceView,
};
use smithay::backend::renderer::{Frame, ImportAll, Renderer, Texture};
use smithay::desktop::{PopupManager, Space, Window};
use smithay::output::Output;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::{
    Buffer as BufferCoords, Logical, Physical, Point, Rectangle, Scale, Size, Transform,
};
use smithay::wayland::compositor::{self, SurfaceData, TraversalAction};

use crate::dmabuf::DmaBuf;
use crate::layout::Fourcc as LayoutFourcc;
use crate::yuv::{Colour, PlaneView, YuvFormat, YuvImage};

/// What a renderer does with a YUV surface it cannot import.
pub trait YuvComposition: Renderer + ImportAll {
    /// True when YUV dma-bufs become [`YuvSurfaceElement`]s for this renderer (converted on
    /// the CPU when composited); false when the renderer imports them itself.
    const CPU_CONVERSION: bool;

    /// Draws a YUV element's converted pixels. Renderers without
    /// [`CPU_CONVERSION`](Self::CPU_CONVERSION) never get a YUV element; for them this draws
    /// nothing.
    fn draw_yuv(
        element: &YuvSurfaceElement,
        frame: &mut Self::Frame<'_, '_>,
        src: Rectangle<f64, BufferCoords>,
        dst: Rectangle<i32, Physical>,
        damage: &[Rectangle<i32, Physical>],
        opaque_regions: &[Rectangle<i32, Physical>],
    ) -> Result<(), Self::Error> {
        let _ = (element, frame, src, dst, damage, opaque_regions);
        tracing::error!("a YUV element reached a renderer that does not convert YUV");
        Ok(())
    }
}

impl YuvComposition for PixmanRenderer {
    const CPU_CONVERSION: bool = true;

    fn draw_yuv(
        element: &YuvSurfaceElement,
        frame: &mut Self::Frame<'_, '_>,
        src: Rectangle<f64, BufferCoords>,
        dst: Rectangle<i32, Physical>,
        damage: &[Rectangle<i32, Physical>],
        opaque_regions: &[Rectangle<i32, Physical>],
    ) -> Result<(), Self::Error> {
        let mut canvas = element.canvas.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = canvas.update(element) {
            // The last good picture stays; nothing garbled is drawn.
            tracing::warn!(error = %e, "converting a YUV buffer for composition");
        }
        if canvas.converted.is_none() {
            return Ok(());
        }
        let (w, h) = (canvas.width as usize, canvas.height as usize);
        let pixels = canvas.pixels.as_mut_ptr();
        // SAFETY: `pixels` holds `w * h` words (`Canvas::update` sized it) and stays alive and
        // unmoved while the canvas lock is held; the image and the texture wrapping it are
        // dropped at the end of this function, before the lock, and pixman only reads it (the
        // texture is a composite source, never a target).
        let image = unsafe {
            smithay::reexports::pixman::Image::from_raw_mut(
                smithay::reexports::pixman::FormatCode::X8R8G8B8,
                w,
                h,
                pixels,
                w * 4,
                false,
            )
        }
        .map_err(|_| smithay::backend::renderer::pixman::PixmanError::ImportFailed)?;
        let texture = PixmanTexture::from(image);
        let result = frame.render_texture_from_to(
            &texture,
            src,
            dst,
            damage,
            opaque_regions,
            element.buffer_transform,
            element.alpha,
        );
        drop(texture);
        result
    }
}

/// GLES imports YUV itself (EGL external images): its surfaces stay Smithay's elements.
impl YuvComposition for GlesRenderer {
    const CPU_CONVERSION: bool = false;
}

/// A client's YUV dma-buf as a render element: a plane candidate, converted on the CPU only
/// when it is drawn. See the [module docs](self).
#[derive(Debug)]
pub struct YuvSurfaceElement {
    id: Id,
    location: Point<f64, Physical>,
    alpha: f32,
    kind: Kind,
    view: SurfaceView,
    buffer: Buffer,
    dmabuf: Dmabuf,
    format: YuvFormat,
    colour: Colour,
    buffer_scale: i32,
    buffer_transform: Transform,
    buffer_dimensions: Size<i32, BufferCoords>,
    damage: DamageSnapshot<i32, BufferCoords>,
    canvas: Arc<Mutex<Canvas>>,
    /// Its colour is the planes': it may be scanned out.
    scanout: bool,
}

/// How YUV surfaces are coloured: the colour of a surface whose client said nothing (through
/// [`colour_representation`](super::colour_representation)), and the colour the planes convert
/// with now (`None`: unknown, or no plane converts YUV).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct YuvColours {
    /// For surfaces without a colour representation.
    pub default: Colour,
    /// The planes' `COLOR_ENCODING`/`COLOR_RANGE`.
    pub planes: Option<Colour>,
}

impl YuvColours {
    /// The colour `surface`'s YUV buffers are in.
    pub fn of(&self, surface: &WlSurface) -> Colour {
        super::colour_representation::surface_colour(surface).unwrap_or(self.default)
    }

    /// The same, from the surface's states (inside `with_states` or a surface tree walk, where
    /// [`of`](Self::of) would lock the surface a second time).
    pub fn of_states(&self, states: &SurfaceData) -> Colour {
        super::colour_representation::states_colour(states).unwrap_or(self.default)
    }

    /// Whether a buffer of `colour` looks right on a plane now.
    pub fn scans_out(&self, colour: Colour) -> bool {
        self.planes.is_none_or(|p| p == colour)
    }
}

/// The planes' YCbCr colour, following the surfaces: KMS has one `COLOR_ENCODING` and
/// `COLOR_RANGE` per plane and `DrmCompositor` sets neither, so between frames the planes take
/// the colour of the front-most YUV surface ([`follow`](Self::follow)); a YUV surface of
/// another colour is composited, converted with its own colour
/// ([`Reason::ColourMismatch`](super::Reason::ColourMismatch)), so no surface is ever shown in
/// the wrong colours.
#[derive(Debug)]
pub struct PlaneColours {
    device: smithay::backend::drm::DrmDeviceFd,
    planes: crate::kms::ColourPlanes,
    colours: YuvColours,
}

impl PlaneColours {
    /// Sets `planes` (those of the output's CRTC) to `default` and keeps them following the
    /// surfaces. When no plane has the properties, or the commit fails, the planes' colour is
    /// unknown and every YUV surface may still be scanned out (as before this existed).
    pub fn new(
        device: smithay::backend::drm::DrmDeviceFd,
        planes: Vec<drm::control::plane::Handle>,
        default: Colour,
    ) -> Self {
        let planes = crate::kms::ColourPlanes::read(&device, &planes);
        let planes_colour = match planes.set(&device, default) {
            Ok(set) if set > 0 => {
                tracing::info!(planes = set, colour = %default, "YUV planes set to the compositor's colour");
                Some(default)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(e = %crate::error::chain(&e), "the planes keep the driver's YUV colour");
                None
            }
        };
        PlaneColours {
            device,
            planes,
            colours: YuvColours {
                default,
                planes: planes_colour,
            },
        }
    }

    /// The planes' `COLOR_ENCODING`/`COLOR_RANGE` as the kernel has them now (read back, for
    /// reports and tests).
    pub fn kernel_values(&self) -> Vec<(String, String)> {
        self.planes.current(&self.device)
    }

    /// The colours for this frame's elements ([`space_elements`]) and the placement tracker.
    pub fn colours(&self) -> YuvColours {
        self.colours
    }

    /// Between frames (no page flip pending: the commit is blocking): gives the planes the
    /// colour of the front-most YUV surface among `surfaces` (front to back) if it is not
    /// theirs already. Returns the new colour when it changed.
    pub fn follow(&mut self, surfaces: impl IntoIterator<Item = WlSurface>) -> Option<Colour> {
        let current = self.colours.planes?;
        let wanted = surfaces.into_iter().find_map(|s| {
            let buffer = super::placement::current_buffer(&s)?;
            let dmabuf = smithay::wayland::dmabuf::get_dmabuf(&buffer).ok()?;
            yuv_of(dmabuf)?;
            Some(self.colours.of(&s))
        })?;
        if wanted == current {
            return None;
        }
        match self.planes.set(&self.device, wanted) {
            Ok(_) => {
                tracing::info!(colour = %wanted, "the planes now convert YUV with the front-most YUV surface's colour");
                self.colours.planes = Some(wanted);
                Some(wanted)
            }
            Err(e) => {
                tracing::debug!(e = %crate::error::chain(&e), "plane colour change deferred");
                None
            }
        }
    }
}

/// A surface's converted picture, kept between frames so only damaged rows are converted.
#[derive(Debug, Default)]
struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<u32>,
    /// The commit the pixels show.
    converted: Option<CommitCounter>,
    colour: Option<Colour>,
}

/// The per-surface canvas in the surface's data map.
struct CanvasData(Arc<Mutex<Canvas>>);

impl Canvas {
    /// Brings the pixels to the element's commit: the rows damaged since the last conversion,
    /// or all of them when the size or colour changed. (Damage is of the surface's content, so
    /// it holds across the client's buffer swaps too.)
    fn update(&mut self, e: &YuvSurfaceElement) -> Result<(), String> {
        let commit = e.damage.current_commit();
        let (w, h) = (e.buffer_dimensions.w as u32, e.buffer_dimensions.h as u32);
        if self.converted == Some(commit) && self.colour == Some(e.colour) {
            return Ok(());
        }
        let full = (self.width, self.height) != (w, h) || self.colour != Some(e.colour);
        let rows: Vec<(u32, u32)> = match (full, e.damage.damage_since(self.converted)) {
            (false, Some(damage)) => damage
                .iter()
                .map(|r| {
                    // Chroma rows serve `vsub` luma rows: widen to whole chroma rows.
                    let v = e.format.vsub as i32;
                    let top = r.loc.y.max(0) / v * v;
                    let bottom = (r.loc.y + r.size.h).clamp(0, h as i32);
                    (
                        top as u32,
                        (bottom.max(top) as u32).div_ceil(e.format.vsub) * e.format.vsub,
                    )
                })
                .collect(),
            _ => vec![(0, h)],
        };
        if full {
            self.pixels = vec![0xff00_0000; w as usize * h as usize];
            (self.width, self.height) = (w, h);
            self.converted = None;
        }
        convert(&e.dmabuf, e.format, e.colour, &rows, &mut self.pixels)?;
        self.converted = Some(commit);
        self.colour = Some(e.colour);
        Ok(())
    }
}

/// Converts `rows` of a client's YUV dma-buf into `out` (`width` words per row).
fn convert(
    dmabuf: &Dmabuf,
    format: YuvFormat,
    colour: Colour,
    rows: &[(u32, u32)],
    out: &mut [u32],
) -> Result<(), String> {
    let size = dmabuf.size();
    let (w, h) = (size.w as u32, size.h as u32);
    // The planes usually share one dma-buf (NV12 from one allocation, each plane's fd a dup of
    // it): import, map and sync each distinct buffer once.
    let mut buffers: Vec<((u64, u64), DmaBuf)> = Vec::new();
    let mut plane_buffer = Vec::with_capacity(dmabuf.num_planes());
    for fd in dmabuf.handles() {
        let st = rustix::fs::fstat(fd).map_err(|e| format!("fstat of a plane's fd: {e}"))?;
        let key = (st.st_dev, st.st_ino);
        let index = match buffers.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let owned = fd.try_clone_to_owned().map_err(|e| format!("dup: {e}"))?;
                let buf = DmaBuf::import(owned).map_err(|e| crate::error::chain(&e))?;
                buffers.push((key, buf));
                buffers.len() - 1
            }
        };
        plane_buffer.push(index);
    }
    let mappings = buffers
        .iter()
        .map(|(_, b)| b.map_read_only().map_err(|e| crate::error::chain(&e)))
        .collect::<Result<Vec<_>, _>>()?;
    let reads = mappings
        .iter()
        .map(|m| m.read().map_err(|e| crate::error::chain(&e)))
        .collect::<Result<Vec<_>, _>>()?;
    let views = plane_buffer
        .iter()
        .zip(dmabuf.offsets().zip(dmabuf.strides()))
        .map(|(&b, (offset, stride))| {
            let plane = reads[b]
                .get(offset as usize..)
                .ok_or_else(|| format!("plane offset {offset} past the buffer's end"))?;
            Ok(PlaneView::new(plane, stride as usize))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let image = YuvImage::new(format, w, h, &views).map_err(|e| e.to_string())?;
    for &(top, bottom) in rows {
        image.convert_rows(colour, top..bottom, out, w as usize);
    }
    Ok(())
}

impl YuvSurfaceElement {
    /// The element of a surface whose current buffer is a YUV dma-buf; `None` otherwise (no
    /// buffer, not a dma-buf, not YUV, not mapped).
    pub fn from_surface(
        surface: &WlSurface,
        states: &SurfaceData,
        location: Point<f64, Physical>,
        alpha: f32,
        kind: Kind,
        colours: &YuvColours,
    ) -> Option<Self> {
        let data = states.data_map.get::<RendererSurfaceStateUserData>()?;
        let data = data.lock().unwrap_or_else(|e| e.into_inner());
        let buffer = data.buffer()?.clone();
        let dmabuf = smithay::wayland::dmabuf::get_dmabuf(&buffer).ok()?.clone();
        let format = yuv_of(&dmabuf)?;
        // From `states`: the surface's data is locked while its tree is walked.
        let colour = colours.of_states(states);
        states
            .data_map
            .insert_if_missing_threadsafe(|| CanvasData(Arc::new(Mutex::new(Canvas::default()))));
        let canvas = states.data_map.get::<CanvasData>()?.0.clone();
        let buffer_dimensions = dmabuf.size();
        Some(YuvSurfaceElement {
            id: Id::from_wayland_resource(surface),
            location,
            alpha,
            kind,
            view: data.view()?,
            buffer,
            dmabuf,
            format,
            colour,
            buffer_scale: data.buffer_scale(),
            buffer_transform: data.buffer_transform(),
            buffer_dimensions,
            damage: data.damage(),
            canvas,
            scanout: colours.scans_out(colour),
        })
    }

    /// The format of the client's buffer.
    pub fn format(&self) -> YuvFormat {
        self.format
    }

    /// The colour it is converted with.
    pub fn colour(&self) -> Colour {
        self.colour
    }

    fn size(&self, scale: Scale<f64>) -> Size<i32, Physical> {
        ((self.view.dst.to_f64().to_physical(scale).to_point() + self.location).to_i32_round()
            - self.location.to_i32_round())
        .to_size()
    }

    fn buffer_size(&self) -> Size<i32, Logical> {
        self.buffer_dimensions
            .to_logical(self.buffer_scale, self.buffer_transform)
    }
}

/// The YUV format of a dma-buf, if it is one the converter reads.
fn yuv_of(dmabuf: &Dmabuf) -> Option<YuvFormat> {
    YuvFormat::of(LayoutFourcc(dmabuf.format().code as u32))
}

impl Element for YuvSurfaceElement {
    fn id(&self) -> &Id {
        &self.id
    }

    fn current_commit(&self) -> CommitCounter {
        self.damage.current_commit()
    }

    fn geometry(&self, scale: Scale<f64>) -> Rectangle<i32, Physical> {
        Rectangle::new(self.location.to_i32_round(), self.size(scale))
    }

    fn src(&self) -> Rectangle<f64, BufferCoords> {
        self.view.src.to_buffer(
            f64::from(self.buffer_scale),
            self.buffer_transform,
            &self.buffer_size().to_f64(),
        )
    }

    fn transform(&self) -> Transform {
        self.buffer_transform
    }

    fn damage_since(
        &self,
        scale: Scale<f64>,
        commit: Option<CommitCounter>,
    ) -> DamageSet<i32, Physical> {
        // As Smithay's surface element: buffer damage, cropped by the view, scaled to it.
        let dst_size = self.size(scale);
        let view_scale = Scale::from((
            f64::from(self.view.dst.w) / self.view.src.size.w,
            f64::from(self.view.dst.h) / self.view.src.size.h,
        ));
        self.damage
            .damage_since(commit)
            .unwrap_or_else(|| {
                DamageSet::from_slice(&[Rectangle::from_size(self.buffer_dimensions)])
            })
            .iter()
            .filter_map(|rect| {
                rect.to_f64()
                    .to_logical(
                        f64::from(self.buffer_scale),
                        self.buffer_transform,
                        &self.buffer_dimensions.to_f64(),
                    )
                    .intersection(self.view.src)
                    .map(|mut r| {
                        r.loc -= self.view.src.loc;
                        r.upscale(view_scale).to_i32_up::<i32>()
                    })
                    .map(|r| {
                        let surface_scale =
                            dst_size.to_f64() / self.view.dst.to_f64().to_physical(scale);
                        r.to_physical_precise_up(surface_scale * scale)
                    })
            })
            .collect()
    }

    fn opaque_regions(&self, scale: Scale<f64>) -> OpaqueRegions<i32, Physical> {
        // YUV has no alpha: the whole surface is opaque unless faded.
        if self.alpha < 1.0 {
            return OpaqueRegions::default();
        }
        OpaqueRegions::from_slice(&[Rectangle::from_size(self.size(scale))])
    }

    fn alpha(&self) -> f32 {
        self.alpha
    }

    fn kind(&self) -> Kind {
        self.kind
    }
}

impl<R> RenderElement<R> for YuvSurfaceElement
where
    R: YuvComposition,
    R::TextureId: Texture + 'static,
{
    fn underlying_storage(&self, _renderer: &mut R) -> Option<UnderlyingStorage<'_>> {
        // No storage, no plane: a plane would convert it with other colours.
        self.scanout
            .then_some(UnderlyingStorage::Wayland(&self.buffer))
    }

    fn draw(
        &self,
        frame: &mut R::Frame<'_, '_>,
        src: Rectangle<f64, BufferCoords>,
        dst: Rectangle<i32, Physical>,
        damage: &[Rectangle<i32, Physical>],
        opaque_regions: &[Rectangle<i32, Physical>],
    ) -> Result<(), R::Error> {
        R::draw_yuv(self, frame, src, dst, damage, opaque_regions)
    }
}

/// A surface's render element: Smithay's, or a [`YuvSurfaceElement`] for a YUV dma-buf the
/// renderer does not import.
#[derive(Debug)]
// The elements of a frame live in one Vec, made every frame: boxing the larger variant would
// allocate once per surface per frame to save a few hundred bytes.
#[allow(clippy::large_enum_variant)]
pub enum SurfaceElement<R: Renderer> {
    /// Imported by the renderer.
    Surface(WaylandSurfaceRenderElement<R>),
    /// A YUV dma-buf: on a plane, or converted on the CPU.
    Yuv(YuvSurfaceElement),
}

/// `$body` with `$e` bound to whichever element `$self` holds.
macro_rules! either {
    ($self:ident, $e:ident => $body:expr) => {
        match $self {
            SurfaceElement::Surface($e) => $body,
            SurfaceElement::Yuv($e) => $body,
        }
    };
}

impl<R> Element for SurfaceElement<R>
where
    R: YuvComposition,
    R::TextureId: Texture + 'static,
{
    fn id(&self) -> &Id {
        either!(self, e => e.id())
    }
    fn current_commit(&self) -> CommitCounter {
        either!(self, e => e.current_commit())
    }
    fn geometry(&self, scale: Scale<f64>) -> Rectangle<i32, Physical> {
        either!(self, e => e.geometry(scale))
    }
    fn src(&self) -> Rectangle<f64, BufferCoords> {
        either!(self, e => e.src())
    }
    fn transform(&self) -> Transform {
        either!(self, e => e.transform())
    }
    fn damage_since(
        &self,
        scale: Scale<f64>,
        commit: Option<CommitCounter>,
    ) -> DamageSet<i32, Physical> {
        either!(self, e => e.damage_since(scale, commit))
    }
    fn opaque_regions(&self, scale: Scale<f64>) -> OpaqueRegions<i32, Physical> {
        either!(self, e => e.opaque_regions(scale))
    }
    fn alpha(&self) -> f32 {
        either!(self, e => e.alpha())
    }
    fn kind(&self) -> Kind {
        either!(self, e => e.kind())
    }
}

impl<R> RenderElement<R> for SurfaceElement<R>
where
    R: YuvComposition,
    R::TextureId: Texture + 'static,
{
    fn underlying_storage(&self, renderer: &mut R) -> Option<UnderlyingStorage<'_>> {
        match self {
            SurfaceElement::Surface(e) => e.underlying_storage(renderer),
            SurfaceElement::Yuv(e) => RenderElement::<R>::underlying_storage(e, renderer),
        }
    }

    fn draw(
        &self,
        frame: &mut R::Frame<'_, '_>,
        src: Rectangle<f64, BufferCoords>,
        dst: Rectangle<i32, Physical>,
        damage: &[Rectangle<i32, Physical>],
        opaque_regions: &[Rectangle<i32, Physical>],
    ) -> Result<(), R::Error> {
        match self {
            SurfaceElement::Surface(e) => e.draw(frame, src, dst, damage, opaque_regions),
            SurfaceElement::Yuv(e) => {
                RenderElement::<R>::draw(e, frame, src, dst, damage, opaque_regions)
            }
        }
    }
}

/// The elements of a surface tree (the surface and its subsurfaces, front to back), as
/// Smithay's `render_elements_from_surface_tree`, with YUV dma-bufs as [`YuvSurfaceElement`]s
/// where the renderer does not import them, coloured as `colours` says.
pub fn surface_tree_elements<R>(
    renderer: &mut R,
    surface: &WlSurface,
    location: Point<i32, Physical>,
    scale: Scale<f64>,
    alpha: f32,
    kind: Kind,
    colours: &YuvColours,
) -> Vec<SurfaceElement<R>>
where
    R: YuvComposition,
    R::TextureId: Texture + Clone + 'static,
{
    let mut elements = Vec::new();
    let view_offset = |states: &SurfaceData| {
        let data = states.data_map.get::<RendererSurfaceStateUserData>()?;
        let view = data.lock().unwrap_or_else(|e| e.into_inner()).view()?;
        Some(view.offset.to_f64().to_physical(scale))
    };
    compositor::with_surface_tree_downward(
        surface,
        location.to_f64(),
        |_, states, location| match view_offset(states) {
            Some(offset) => TraversalAction::DoChildren(*location + offset),
            None => TraversalAction::SkipChildren,
        },
        |surface, states, location| {
            let Some(offset) = view_offset(states) else {
                return;
            };
            let location = *location + offset;
            if R::CPU_CONVERSION
                && let Some(e) =
                    YuvSurfaceElement::from_surface(surface, states, location, alpha, kind, colours)
            {
                elements.push(SurfaceElement::Yuv(e));
                return;
            }
            match WaylandSurfaceRenderElement::from_surface(
                renderer, surface, states, location, alpha, kind,
            ) {
                Ok(Some(e)) => elements.push(SurfaceElement::Surface(e)),
                Ok(None) => {}
                Err(err) => tracing::warn!(%err, "a surface's buffer could not be imported"),
            }
        },
        |_, _, _| true,
    );
    elements
}

/// A window's elements: its popups, then its surface tree, as Smithay's `Window` gives them.
pub fn window_elements<R>(
    renderer: &mut R,
    window: &Window,
    location: Point<i32, Physical>,
    scale: Scale<f64>,
    alpha: f32,
    colours: &YuvColours,
) -> Vec<SurfaceElement<R>>
where
    R: YuvComposition,
    R::TextureId: Texture + Clone + 'static,
{
    let Some(toplevel) = window.toplevel() else {
        return Vec::new();
    };
    let toplevel = toplevel.wl_surface();
    let mut elements = Vec::new();
    {
        for (popup, offset) in PopupManager::popups_for_surface(toplevel) {
            let at = (window.geometry().loc + offset - popup.geometry().loc)
                .to_physical_precise_round(scale);
            elements.extend(surface_tree_elements(
                renderer,
                popup.wl_surface(),
                location + at,
                scale,
                alpha,
                Kind::Unspecified,
                colours,
            ));
        }
    }
    elements.extend(surface_tree_elements(
        renderer,
        toplevel,
        location,
        scale,
        alpha,
        Kind::Unspecified,
        colours,
    ));
    elements
}

/// The elements of every window of `space` on `output`, front to back: Smithay's
/// `space_render_elements` for the windows, with YUV dma-bufs as [`YuvSurfaceElement`]s.
pub fn space_elements<R>(
    renderer: &mut R,
    space: &Space<Window>,
    output: &Output,
    colours: &YuvColours,
) -> Vec<SurfaceElement<R>>
where
    R: YuvComposition,
    R::TextureId: Texture + Clone + 'static,
{
    let Some(region) = space.output_geometry(output) else {
        return Vec::new();
    };
    let scale = Scale::from(output.current_scale().fractional_scale());
    let mut elements = Vec::new();
    for window in space.elements().rev() {
        let (Some(bbox), Some(at)) = (space.element_bbox(window), space.element_location(window))
        else {
            continue;
        };
        if !region.overlaps(bbox) {
            continue;
        }
        let location = (at - window.geometry().loc - region.loc).to_physical_precise_round(scale);
        elements.extend(window_elements(
            renderer, window, location, scale, 1.0, colours,
        ));
    }
    elements
}

/// Every YUV format the CPU converter reads, LINEAR: what a compositor composing with pixman
/// can accept from clients besides the renderer's own formats — on a plane where one lists the
/// format (the scan-out tranches say which), converted when composited (packed 4:2:2, which
/// many planes lack, included).
pub fn cpu_converted_formats() -> FormatSet {
    YuvFormat::ALL
        .iter()
        .filter_map(|f| smithay::backend::allocator::Fourcc::try_from(f.0).ok())
        .map(|code| Format {
            code,
            modifier: smithay::backend::allocator::Modifier::Linear,
        })
        .collect()
}
