//! Which renderer composes what no plane takes: GLES when EGL is available, pixman otherwise.
//!
//! A compositor on an embedded board has a GPU with an EGL driver, or it has none and composes
//! on the CPU. Smithay's GLES renderer needs libEGL at run time (it is loaded, not linked) and
//! **panics** when the library is missing; this module checks first and turns every step that
//! can fail (the library, the EGL display on a DRM device or surfaceless, the context, the GLES
//! capabilities) into a [`GlesUnavailable`] that says what is missing and what to install. The
//! caller then falls back to [`PixmanRenderer`](smithay::backend::renderer::pixman::PixmanRenderer),
//! which imports client dma-bufs by mmap with the dma-buf sync ioctls around every access.
//!
//! # How to use
//!
//! ```no_run
//! use wayheap::smithay::renderer::{self, RendererChoice};
//!
//! // For a headless or offscreen compositor: EGL without a window system (Mesa's surfaceless
//! // platform, a GPU or llvmpipe).
//! match renderer::gles_surfaceless() {
//!     Ok(mut gles) => println!("composing with GLES on {}", renderer::gl_renderer_name(&mut gles)),
//!     Err(why) => println!("composing with pixman: {why}"),
//! }
//!
//! // What `--renderer auto|gles|pixman` should do when GLES is not available.
//! assert!(RendererChoice::Auto.falls_back());
//! assert!(!RendererChoice::Gles.falls_back());
//! ```
//!
//! On a KMS device, [`gles_on_device`] makes the EGL display on the device's GBM device, so the
//! renderer imports the same dma-bufs the display engine scans out.

use std::os::fd::AsFd;

use smithay::backend::allocator::gbm::GbmDevice;
use smithay::backend::egl::native::EGLSurfacelessDisplay;
use smithay::backend::egl::{EGLContext, EGLDisplay};
use smithay::backend::renderer::gles::{GlesError, GlesRenderer, ffi};

/// The library Smithay loads for EGL.
pub const EGL_LIBRARY: &str = "libEGL.so.1";

/// What a `--renderer` option asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RendererChoice {
    /// GLES when EGL is available, pixman otherwise (the reason is reported).
    Auto,
    /// GLES or fail with the reason.
    Gles,
    /// Pixman (CPU), always available.
    Pixman,
}

impl RendererChoice {
    /// Whether a failure to make a GLES renderer falls back to pixman (else it is an error).
    pub fn falls_back(self) -> bool {
        self == RendererChoice::Auto
    }

    /// Whether GLES should be tried at all.
    pub fn tries_gles(self) -> bool {
        self != RendererChoice::Pixman
    }
}

/// Why no GLES renderer could be made.
#[derive(Debug, thiserror::Error)]
pub enum GlesUnavailable {
    /// libEGL.so.1 could not be loaded.
    #[error(
        "{EGL_LIBRARY} could not be loaded ({0}): install an EGL implementation \
         (Debian: libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri; Mesa's llvmpipe runs without a GPU)"
    )]
    NoLibrary(String),
    /// The GBM device on the DRM node could not be made.
    #[error(
        "no GBM device on the DRM node ({0}): the EGL display needs libgbm and a Mesa driver for it"
    )]
    Gbm(std::io::Error),
    /// EGL has no display on that platform.
    #[error("no EGL display on {platform}: {source}")]
    Display {
        /// "the DRM device (GBM)" or "the surfaceless platform".
        platform: &'static str,
        /// What EGL said.
        source: smithay::backend::egl::Error,
    },
    /// The display has no usable GLES context.
    #[error("no GLES 2 context on the EGL display: {0}")]
    Context(smithay::backend::egl::Error),
    /// The context lacks what Smithay's GLES renderer needs (e.g. BGRA textures).
    #[error("the GLES context cannot be used by the renderer: {0}")]
    Renderer(GlesError),
}

/// Checks that libEGL can be loaded, before anything calls Smithay's EGL code (which panics
/// when it cannot).
pub fn egl_library() -> Result<(), GlesUnavailable> {
    // SAFETY: loading libEGL runs its initialisers, which Smithay's EGL code would run next
    // anyway; the handle is dropped again (the library stays loaded once Smithay loads it).
    unsafe { libloading::Library::new(EGL_LIBRARY) }
        .map(drop)
        .map_err(|e| GlesUnavailable::NoLibrary(e.to_string()))
}

/// A GLES renderer on EGL's surfaceless platform (`EGL_MESA_platform_surfaceless`): no window
/// system, no DRM device needed; Mesa picks a GPU render node or llvmpipe. For headless and
/// offscreen composition.
pub fn gles_surfaceless() -> Result<GlesRenderer, GlesUnavailable> {
    egl_library()?;
    // SAFETY: no other code in this process creates EGL displays outside Smithay (see
    // EGLDisplay::new's contract).
    let display = unsafe { EGLDisplay::new(EGLSurfacelessDisplay) }.map_err(|source| {
        GlesUnavailable::Display {
            platform: "the surfaceless platform",
            source,
        }
    })?;
    renderer_on(&display)
}

/// A GLES renderer on the GBM device of a DRM device: it imports the dma-bufs the device scans
/// out. Returns the GBM device too (the DRM compositor can use it for the cursor plane).
pub fn gles_on_device<A>(fd: A) -> Result<(GlesRenderer, GbmDevice<A>), GlesUnavailable>
where
    A: AsFd + Clone + Send + 'static,
{
    egl_library()?;
    let gbm = GbmDevice::new(fd).map_err(GlesUnavailable::Gbm)?;
    // SAFETY: as in gles_surfaceless, Smithay owns every EGL display of this process.
    let display =
        unsafe { EGLDisplay::new(gbm.clone()) }.map_err(|source| GlesUnavailable::Display {
            platform: "the DRM device (GBM)",
            source,
        })?;
    Ok((renderer_on(&display)?, gbm))
}

fn renderer_on(display: &EGLDisplay) -> Result<GlesRenderer, GlesUnavailable> {
    let context = EGLContext::new(display).map_err(GlesUnavailable::Context)?;
    // SAFETY: the context was just made and is used on this thread only.
    unsafe { GlesRenderer::new(context) }.map_err(GlesUnavailable::Renderer)
}

/// The GL_RENDERER string ("llvmpipe (LLVM 15.0.6, 256 bits)", "Mali-G52", ...), for reports.
pub fn gl_renderer_name(renderer: &mut GlesRenderer) -> String {
    renderer
        .with_context(|gl| {
            // SAFETY: with_context made the renderer's context current; GetString returns a
            // static NUL-terminated string or null.
            let ptr = unsafe { gl.GetString(ffi::RENDERER) };
            if ptr.is_null() {
                return "unknown".to_owned();
            }
            // SAFETY: non-null, NUL-terminated, owned by the GL implementation.
            unsafe { std::ffi::CStr::from_ptr(ptr.cast()) }
                .to_string_lossy()
                .into_owned()
        })
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_semantics() {
        assert!(RendererChoice::Auto.tries_gles() && RendererChoice::Auto.falls_back());
        assert!(RendererChoice::Gles.tries_gles() && !RendererChoice::Gles.falls_back());
        assert!(!RendererChoice::Pixman.tries_gles());
    }

    #[test]
    fn missing_library_names_the_packages() {
        let e = GlesUnavailable::NoLibrary("libEGL.so.1: cannot open shared object file".into());
        let msg = e.to_string();
        assert!(msg.contains("libegl1") && msg.contains("llvmpipe"), "{msg}");
    }
}
