//! The server side of `wp_color_representation_v1` (wayland-protocols staging): the matrix and
//! range a client says its YUV buffers are in, per surface, double-buffered with its commits.
//!
//! A YUV buffer is only colours once someone picks the YCbCr matrix and range. Without this
//! protocol the compositor guesses (wayheap's default is BT.601 limited range, see
//! [`Colour`]); with it, a decoder's BT.709 or a JPEG camera's full-range
//! frames show as meant. [`ColourRepresentationState`] advertises the combinations wayheap's
//! converter and KMS planes implement — BT.601, BT.709 and BT.2020 (non-constant luminance),
//! each full and limited range — and premultiplied alpha; [`surface_colour`] gives a surface's
//! committed choice to the converter ([`space_elements`](super::space_elements)) and to the
//! planes ([`ColourPlanes`](crate::kms::ColourPlanes)).
//!
//! Requests outside what is advertised get the protocol's errors (`coefficients`,
//! `alpha_mode`, `chroma_location`, `surface_exists`, `inert`).
//!
//! ## How to use
//!
//! ```no_run
//! use smithay::reexports::wayland_server::DisplayHandle;
//! use wayheap::smithay::colour_representation::ColourRepresentationState;
//!
//! struct App {
//!     colour_representation: ColourRepresentationState,
//! }
//! wayheap::delegate_colour_representation!(App);
//!
//! fn setup(dh: &DisplayHandle) -> App {
//!     App { colour_representation: ColourRepresentationState::new::<App>(dh) }
//! }
//! // Per frame: wayheap::smithay::colour_representation::surface_colour(&surface)
//! //     .unwrap_or_default()
//! ```

use smithay::reexports::wayland_protocols::wp::color_representation::v1::server::{
    wp_color_representation_manager_v1::{self, WpColorRepresentationManagerV1},
    wp_color_representation_surface_v1::{
        self, AlphaMode, ChromaLocation, Coefficients, Range, WpColorRepresentationSurfaceV1,
    },
};
use smithay::reexports::wayland_server::backend::GlobalId;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{
    Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource, WEnum, Weak,
};
use smithay::wayland::compositor::{self, Cacheable};

use crate::yuv::{Colour, ColourRange, Encoding};

/// The version of `wp_color_representation_manager_v1` this implements.
pub const VERSION: u32 = 1;

/// The `wp_color_representation_manager_v1` global.
#[derive(Debug)]
pub struct ColourRepresentationState {
    global: GlobalId,
}

/// A surface's colour representation, double-buffered: `None` until the client sets one, and
/// again once it destroys its object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ColourRepresentationCached {
    /// The matrix and range the client set.
    pub colour: Option<Colour>,
}

impl Cacheable for ColourRepresentationCached {
    fn commit(&mut self, _dh: &DisplayHandle) -> Self {
        *self
    }

    fn merge_into(self, into: &mut Self, _dh: &DisplayHandle) {
        *into = self;
    }
}

/// User data of a surface's colour representation object.
#[derive(Debug)]
pub struct ColourSurfaceData {
    surface: Weak<WlSurface>,
}

/// Marks a surface that has a colour representation object (one per surface).
#[derive(Debug, Default)]
struct HasColourObject(std::sync::atomic::AtomicBool);

/// The colour the client of `surface` committed through `wp_color_representation_v1`, if any.
/// Locks the surface's data: inside `with_states` use [`states_colour`].
pub fn surface_colour(surface: &WlSurface) -> Option<Colour> {
    compositor::with_states(surface, states_colour)
}

/// [`surface_colour`] from a surface's states.
pub fn states_colour(states: &compositor::SurfaceData) -> Option<Colour> {
    states
        .cached_state
        .get::<ColourRepresentationCached>()
        .current()
        .colour
}

/// The combinations advertised and accepted.
const ENCODINGS: [(Coefficients, Encoding); 3] = [
    (Coefficients::Bt601, Encoding::Bt601),
    (Coefficients::Bt709, Encoding::Bt709),
    (Coefficients::Bt2020, Encoding::Bt2020),
];
const RANGES: [(Range, ColourRange); 2] = [
    (Range::Limited, ColourRange::Limited),
    (Range::Full, ColourRange::Full),
];

impl ColourRepresentationState {
    /// Creates the `wp_color_representation_manager_v1` global.
    pub fn new<D>(dh: &DisplayHandle) -> Self
    where
        D: GlobalDispatch<WpColorRepresentationManagerV1, ()>
            + Dispatch<WpColorRepresentationManagerV1, ()>
            + Dispatch<WpColorRepresentationSurfaceV1, ColourSurfaceData>
            + 'static,
    {
        let global = dh.create_global::<D, WpColorRepresentationManagerV1, ()>(VERSION, ());
        Self { global }
    }

    /// The global's id (to remove it).
    pub fn global(&self) -> GlobalId {
        self.global.clone()
    }
}

impl<D> GlobalDispatch<WpColorRepresentationManagerV1, (), D> for ColourRepresentationState
where
    D: GlobalDispatch<WpColorRepresentationManagerV1, ()>
        + Dispatch<WpColorRepresentationManagerV1, ()>
        + 'static,
{
    fn bind(
        _: &mut D,
        _: &DisplayHandle,
        _: &Client,
        resource: New<WpColorRepresentationManagerV1>,
        _: &(),
        data_init: &mut DataInit<'_, D>,
    ) {
        let manager = data_init.init(resource, ());
        manager.supported_alpha_mode(AlphaMode::PremultipliedElectrical);
        for (coefficients, _) in ENCODINGS {
            for (range, _) in RANGES {
                manager.supported_coefficients_and_ranges(coefficients, range);
            }
        }
        manager.done();
    }
}

impl<D> Dispatch<WpColorRepresentationManagerV1, (), D> for ColourRepresentationState
where
    D: Dispatch<WpColorRepresentationManagerV1, ()>
        + Dispatch<WpColorRepresentationSurfaceV1, ColourSurfaceData>
        + 'static,
{
    fn request(
        _: &mut D,
        _: &Client,
        manager: &WpColorRepresentationManagerV1,
        request: wp_color_representation_manager_v1::Request,
        _: &(),
        _: &DisplayHandle,
        data_init: &mut DataInit<'_, D>,
    ) {
        match request {
            wp_color_representation_manager_v1::Request::GetSurface { id, surface } => {
                let taken = compositor::with_states(&surface, |states| {
                    states
                        .data_map
                        .insert_if_missing_threadsafe(HasColourObject::default);
                    let flag = states.data_map.get::<HasColourObject>();
                    flag.is_some_and(|f| f.0.swap(true, std::sync::atomic::Ordering::SeqCst))
                });
                if taken {
                    manager.post_error(
                        wp_color_representation_manager_v1::Error::SurfaceExists,
                        "the surface already has a wp_color_representation_surface_v1",
                    );
                    return;
                }
                data_init.init(
                    id,
                    ColourSurfaceData {
                        surface: surface.downgrade(),
                    },
                );
            }
            wp_color_representation_manager_v1::Request::Destroy => {}
            _ => {}
        }
    }
}

/// Sets the pending colour of the object's surface; `None` (after the error) when the surface
/// is gone.
fn with_pending(
    object: &WpColorRepresentationSurfaceV1,
    data: &ColourSurfaceData,
    f: impl FnOnce(&mut ColourRepresentationCached),
) {
    let Ok(surface) = data.surface.upgrade() else {
        object.post_error(
            wp_color_representation_surface_v1::Error::Inert,
            "the wl_surface was destroyed",
        );
        return;
    };
    compositor::with_states(&surface, |states| {
        f(states
            .cached_state
            .get::<ColourRepresentationCached>()
            .pending())
    });
}

impl<D> Dispatch<WpColorRepresentationSurfaceV1, ColourSurfaceData, D> for ColourRepresentationState
where
    D: Dispatch<WpColorRepresentationSurfaceV1, ColourSurfaceData> + 'static,
{
    fn request(
        _: &mut D,
        _: &Client,
        object: &WpColorRepresentationSurfaceV1,
        request: wp_color_representation_surface_v1::Request,
        data: &ColourSurfaceData,
        _: &DisplayHandle,
        _: &mut DataInit<'_, D>,
    ) {
        use wp_color_representation_surface_v1::{Error, Request};
        match request {
            Request::SetCoefficientsAndRange {
                coefficients,
                range,
            } => {
                let encoding = match coefficients {
                    WEnum::Value(c) => ENCODINGS.iter().find(|(e, _)| *e == c).map(|(_, e)| *e),
                    WEnum::Unknown(_) => None,
                };
                let range = match range {
                    WEnum::Value(r) => RANGES.iter().find(|(e, _)| *e == r).map(|(_, r)| *r),
                    WEnum::Unknown(_) => None,
                };
                let (Some(encoding), Some(range)) = (encoding, range) else {
                    object.post_error(
                        Error::Coefficients,
                        "only BT.601, BT.709 and BT.2020 in full or limited range are supported",
                    );
                    return;
                };
                with_pending(object, data, |p| {
                    p.colour = Some(Colour::new(encoding, range))
                });
            }
            Request::SetAlphaMode { alpha_mode } => {
                if alpha_mode != WEnum::Value(AlphaMode::PremultipliedElectrical) {
                    object.post_error(
                        Error::AlphaMode,
                        "only premultiplied_electrical alpha is supported",
                    );
                    return;
                }
                with_pending(object, data, |_| {});
            }
            Request::SetChromaLocation { chroma_location } => {
                // Accepted and kept by the client's picture; the converter samples chroma at
                // the block's top-left (type 2), as planes do unless told otherwise.
                if !matches!(
                    chroma_location,
                    WEnum::Value(
                        ChromaLocation::Type0
                            | ChromaLocation::Type1
                            | ChromaLocation::Type2
                            | ChromaLocation::Type3
                            | ChromaLocation::Type4
                            | ChromaLocation::Type5
                    )
                ) {
                    object.post_error(Error::ChromaLocation, "invalid chroma location");
                    return;
                }
                with_pending(object, data, |_| {});
            }
            Request::Destroy => {
                // Unsetting is double-buffered too; the surface may take another object.
                if let Ok(surface) = data.surface.upgrade() {
                    compositor::with_states(&surface, |states| {
                        states
                            .cached_state
                            .get::<ColourRepresentationCached>()
                            .pending()
                            .colour = None;
                        if let Some(flag) = states.data_map.get::<HasColourObject>() {
                            flag.0.store(false, std::sync::atomic::Ordering::SeqCst);
                        }
                    });
                }
            }
            _ => {}
        }
    }
}

/// Implements `wp_color_representation_v1` for `$ty` by delegating to
/// [`ColourRepresentationState`](crate::smithay::colour_representation::ColourRepresentationState).
#[macro_export]
macro_rules! delegate_colour_representation {
    ($ty:ty) => {
        $crate::smithay::__smithay::reexports::wayland_server::delegate_global_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_protocols::wp::color_representation::v1::server::wp_color_representation_manager_v1::WpColorRepresentationManagerV1: ()
        ] => $crate::smithay::colour_representation::ColourRepresentationState);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_protocols::wp::color_representation::v1::server::wp_color_representation_manager_v1::WpColorRepresentationManagerV1: ()
        ] => $crate::smithay::colour_representation::ColourRepresentationState);
        $crate::smithay::__smithay::reexports::wayland_server::delegate_dispatch!($ty: [
            $crate::smithay::__smithay::reexports::wayland_protocols::wp::color_representation::v1::server::wp_color_representation_surface_v1::WpColorRepresentationSurfaceV1: $crate::smithay::colour_representation::ColourSurfaceData
        ] => $crate::smithay::colour_representation::ColourRepresentationState);
    };
}
