//! [`SurfaceStack`]: a main surface and subsurfaces above it, each desynchronised and each with
//! its own `wp_viewport`, so that every layer can be a separate plane.
//!
//! A camera frame and the overlay drawn over it update at different rates and come from
//! different memory; as one surface they would have to be composed by the CPU or GPU every
//! frame. As a main surface (the video, scaled to the output by its viewport) plus a
//! desynchronised subsurface (the overlay), the compositor can put each on its own plane and
//! each commits on its own schedule. Subsurface positions are parent state: they take effect on
//! the main surface's next commit.

use wayland_client::protocol::wl_compositor::WlCompositor;
use wayland_client::protocol::wl_subcompositor::WlSubcompositor;
use wayland_client::protocol::wl_subsurface::WlSubsurface;
use wayland_client::protocol::wl_surface::WlSurface;
use wayland_client::{Dispatch, QueueHandle};
use wayland_protocols::wp::viewporter::client::{
    wp_viewport::WpViewport, wp_viewporter::WpViewporter,
};

/// One layer above the main surface.
#[derive(Debug)]
pub struct Layer {
    /// The layer's surface: attach, damage and commit it on its own schedule.
    pub surface: WlSurface,
    /// Its role object (position, stacking).
    pub subsurface: WlSubsurface,
    /// Its viewport, when a viewporter was given.
    pub viewport: Option<WpViewport>,
}

/// A main surface plus desynchronised subsurface layers, bottom to top.
#[derive(Debug)]
pub struct SurfaceStack {
    main: WlSurface,
    main_viewport: Option<WpViewport>,
    layers: Vec<Layer>,
    subcompositor: WlSubcompositor,
    viewporter: Option<WpViewporter>,
}

impl SurfaceStack {
    /// A stack over `main` (whose role, e.g. xdg_toplevel, the caller gives it). With a
    /// viewporter, the main surface and every layer get a viewport.
    pub fn new<D>(
        main: WlSurface,
        subcompositor: &WlSubcompositor,
        viewporter: Option<&WpViewporter>,
        qh: &QueueHandle<D>,
    ) -> Self
    where
        D: Dispatch<WpViewport, ()> + 'static,
    {
        let main_viewport = viewporter.map(|v| v.get_viewport(&main, qh, ()));
        Self {
            main,
            main_viewport,
            layers: Vec::new(),
            subcompositor: subcompositor.clone(),
            viewporter: viewporter.cloned(),
        }
    }

    /// The main surface.
    pub fn main(&self) -> &WlSurface {
        &self.main
    }

    /// Scales the main surface's buffer to `width` x `height` surface pixels (e.g. a camera
    /// frame to the output). `false` without a viewporter.
    pub fn set_main_destination(&self, width: i32, height: i32) -> bool {
        self.main_viewport
            .as_ref()
            .map(|v| v.set_destination(width, height))
            .is_some()
    }

    /// Adds a desynchronised layer above the others at `(x, y)` relative to the main surface.
    /// Its position applies with the main surface's next commit.
    pub fn add_layer<D>(
        &mut self,
        compositor: &WlCompositor,
        qh: &QueueHandle<D>,
        x: i32,
        y: i32,
    ) -> &Layer
    where
        D: Dispatch<WlSurface, ()>
            + Dispatch<WlSubsurface, ()>
            + Dispatch<WpViewport, ()>
            + 'static,
    {
        let surface = compositor.create_surface(qh, ());
        let subsurface = self
            .subcompositor
            .get_subsurface(&surface, &self.main, qh, ());
        subsurface.set_position(x, y);
        subsurface.set_desync();
        if let Some(above) = self.layers.last() {
            subsurface.place_above(&above.surface);
        }
        let viewport = self
            .viewporter
            .as_ref()
            .map(|v| v.get_viewport(&surface, qh, ()));
        self.layers.push(Layer {
            surface,
            subsurface,
            viewport,
        });
        self.layers.last().expect("just pushed")
    }

    /// Layer `index` (0 is the lowest subsurface).
    pub fn layer(&self, index: usize) -> Option<&Layer> {
        self.layers.get(index)
    }

    /// How many layers there are above the main surface.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True when there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Scales layer `index`'s buffer to `width` x `height`; `false` without a viewporter or
    /// such a layer.
    pub fn set_layer_destination(&self, index: usize, width: i32, height: i32) -> bool {
        self.layers
            .get(index)
            .and_then(|l| l.viewport.as_ref())
            .map(|v| v.set_destination(width, height))
            .is_some()
    }
}

impl Drop for SurfaceStack {
    fn drop(&mut self) {
        for l in self.layers.drain(..).rev() {
            if let Some(v) = l.viewport {
                v.destroy();
            }
            l.subsurface.destroy();
            l.surface.destroy();
        }
        if let Some(v) = self.main_viewport.take() {
            v.destroy();
        }
    }
}
