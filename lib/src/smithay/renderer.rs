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
//! use wayheap::smithay::renderer::{self, GlesOutcome, RendererChoice};
//!
//! // For a headless or offscreen compositor: EGL without a window system (Mesa's surfaceless
//! // platform, a GPU or llvmpipe).
//! match renderer::gles_surfaceless() {
//!     Ok(mut gles) => println!("composing with GLES on {}", renderer::gl_renderer_name(&mut gles)),
//!     Err(why) => println!("composing with pixman: {why}"),
//! }
//!
//! // What `--renderer auto|gles|pixman` makes of it: GLES, or pixman with the reason, or the
//! // error when GLES was asked for. `auto` also refuses a GLES that cannot import dma-bufs.
//! let choice = RendererChoice::Auto;
//! match choice.attempt(|| {
//!     let mut gles = renderer::gles_surfaceless()?;
//!     choice.check_dmabuf_import(&mut gles)?;
//!     Ok(gles)
//! }) {
//!     Ok(GlesOutcome::Gles(_gles)) => println!("GLES"),
//!     Ok(GlesOutcome::Pixman { why }) => println!("pixman: {why}"),
//!     Err(e) => eprintln!("--renderer gles: {e}"),
//! }
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

    /// Runs `attempt` (making a GLES renderer and what goes with it) when this choice allows
    /// GLES, and decides: GLES, or pixman with the reason (`auto`, or `pixman` asked for), or
    /// the error (`gles` asked for and not available).
    pub fn attempt<T>(
        self,
        attempt: impl FnOnce() -> Result<T, GlesUnavailable>,
    ) -> Result<GlesOutcome<T>, GlesUnavailable> {
        if !self.tries_gles() {
            return Ok(GlesOutcome::Pixman { why: String::new() });
        }
        match attempt() {
            Ok(t) => Ok(GlesOutcome::Gles(t)),
            Err(e) if self.falls_back() => Ok(GlesOutcome::Pixman { why: e.to_string() }),
            Err(e) => Err(e),
        }
    }

    /// Whether this choice takes `renderer` although it cannot import dma-bufs: `auto` does
    /// not (a compositor meant for zero-copy should not pick, on its own, a renderer that cannot
    /// compose a client's dma-buf when no plane takes it); `gles` asked for does, with a warning
    /// (clients then get no dma-buf formats).
    pub fn check_dmabuf_import(self, renderer: &mut GlesRenderer) -> Result<(), GlesUnavailable> {
        match imports_dmabufs(renderer) {
            Err(e) if !self.falls_back() => {
                tracing::warn!(%e, "--renderer gles: clients get no dma-buf formats");
                Ok(())
            }
            other => other,
        }
    }
}

/// What a [`RendererChoice`] made of an attempt at GLES.
#[derive(Debug)]
pub enum GlesOutcome<T> {
    /// GLES composes.
    Gles(T),
    /// Pixman composes; `why` is the GLES error when GLES was tried (empty when pixman was asked
    /// for).
    Pixman {
        /// The reason, for logs and reports.
        why: String,
    },
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
    #[error("no GBM device on the DRM node ({0}): libgbm has no backend for this device")]
    Gbm(std::io::Error),
    /// EGL has no display on that platform.
    #[error("no EGL display on {platform}: {error}")]
    Display {
        /// "the DRM device (GBM)" or "the surfaceless platform".
        platform: &'static str,
        /// What EGL said (in the message, so not also a `source`).
        error: smithay::backend::egl::Error,
    },
    /// The display has no usable GLES context.
    #[error("no GLES 2 context on the EGL display: {0}")]
    Context(smithay::backend::egl::Error),
    /// The context lacks what Smithay's GLES renderer needs (e.g. BGRA textures).
    #[error("the GLES context cannot be used by the renderer: {0}")]
    Renderer(GlesError),
    /// The renderer cannot make the offscreen target a compositor draws into.
    #[error("GLES cannot make the offscreen render target: {0}")]
    Offscreen(GlesError),
    /// The DRM device's EGL driver is a software rasterizer (Mesa's kms_swrast: a display-only
    /// device such as vkms, or a GPU without a Mesa driver).
    #[error(
        "the DRM device's EGL driver is a software rasterizer ({renderer}, Mesa's kms_swrast): it \
         reaches buffers through dumb mappings, which the kernel refuses for imported dma-bufs \
         (drm_gem_dumb_map_offset: EINVAL), so it cannot compose client or heap buffers (Mesa 22 \
         crashes instead of failing); pixman composes them through the dma-buf's own mmap"
    )]
    SoftwareOnDevice {
        /// GL_RENDERER.
        renderer: String,
    },
    /// The EGL display cannot import dma-bufs (no `EGL_EXT_image_dma_buf_import`), e.g. Mesa's
    /// surfaceless or X11 platform on llvmpipe: clients' dma-bufs could not be composed.
    #[error(
        "GLES ({renderer}) cannot import dma-bufs on this EGL display (no \
         EGL_EXT_image_dma_buf_import), so client dma-bufs could not be composed; pixman maps them"
    )]
    NoDmabufImport {
        /// GL_RENDERER.
        renderer: String,
    },
}

/// Checks that libEGL can be loaded, before anything calls Smithay's EGL code (which panics
/// when it cannot).
pub fn egl_library() -> Result<(), GlesUnavailable> {
    // Kept loaded for the process' life, so Smithay's own load finds it resident (no
    // load-unload-reload of libglvnd).
    static LOADED: std::sync::OnceLock<Result<libloading::Library, String>> =
        std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            // SAFETY: loading libEGL runs its initialisers, which Smithay's EGL code would run
            // next anyway.
            unsafe { libloading::Library::new(EGL_LIBRARY) }.map_err(|e| e.to_string())
        })
        .as_ref()
        .map(drop)
        .map_err(|e| GlesUnavailable::NoLibrary(e.clone()))
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
            error: source,
        }
    })?;
    renderer_on(&display)
}

/// A GLES renderer on the GBM device of a DRM device: it imports the dma-bufs the device scans
/// out. Returns the GBM device too (the DRM compositor can use it for the cursor plane).
///
/// A software driver there (kms_swrast) is refused with [`GlesUnavailable::SoftwareOnDevice`]:
/// it cannot use imported dma-bufs at all, and pixman is the better CPU compositor anyway.
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
            error: source,
        })?;
    let mut renderer = renderer_on(&display)?;
    let name = gl_renderer_name(&mut renderer);
    if is_software(&name) {
        return Err(GlesUnavailable::SoftwareOnDevice { renderer: name });
    }
    Ok((renderer, gbm))
}

/// Checks that `renderer` imports dma-bufs; a compositor whose point is zero-copy should not
/// pick, on its own, a renderer that cannot compose them when no plane takes one.
pub fn imports_dmabufs(renderer: &mut GlesRenderer) -> Result<(), GlesUnavailable> {
    use smithay::backend::renderer::ImportDma;
    if renderer.dmabuf_formats().iter().next().is_some() {
        Ok(())
    } else {
        Err(GlesUnavailable::NoDmabufImport {
            renderer: gl_renderer_name(renderer),
        })
    }
}

/// Whether a GL_RENDERER string names one of Mesa's software rasterizers.
pub fn is_software(gl_renderer: &str) -> bool {
    let r = gl_renderer.to_ascii_lowercase();
    ["llvmpipe", "softpipe", "swrast", "lavapipe"]
        .iter()
        .any(|s| r.contains(s))
}

fn renderer_on(display: &EGLDisplay) -> Result<GlesRenderer, GlesUnavailable> {
    let context = EGLContext::new(display).map_err(GlesUnavailable::Context)?;
    // SAFETY: the context was just made and is used on this thread only.
    unsafe { GlesRenderer::new(context) }.map_err(GlesUnavailable::Renderer)
}

/// What a GLES renderer can import, as linux-dmabuf should advertise it: EGL's formats plus
/// LINEAR for every format EGL lists with no explicit modifier at all.
///
/// Drivers without `EGL_EXT_image_dma_buf_import_modifiers` list formats with the implicit
/// modifier only, yet clients of display pipelines send LINEAR buffers (heap, udmabuf and V4L2
/// buffers are all LINEAR). Smithay imports a LINEAR buffer without modifier attributes
/// (`Dmabuf::has_modifier` is false for LINEAR), i.e. with the driver's implicit layout, which
/// for such a driver is linear; the texture is then an external one (`GL_OES_EGL_image_external`,
/// since LINEAR is not among EGL's render formats). Where a driver lists explicit modifiers for
/// a format and LINEAR is not one of them, its implicit layout may be tiled, so LINEAR is not
/// added (Smithay lists the implicit modifier for every format, so that alone says nothing).
pub fn advertised_formats(
    egl_formats: &smithay::backend::allocator::format::FormatSet,
) -> smithay::backend::allocator::format::FormatSet {
    use smithay::backend::allocator::{Format, Modifier};
    let mut out: Vec<Format> = egl_formats.iter().copied().collect();
    for f in egl_formats.iter() {
        let explicit = egl_formats
            .iter()
            .any(|g| g.code == f.code && g.modifier != Modifier::Invalid);
        if f.modifier == Modifier::Invalid && !explicit {
            out.push(Format {
                code: f.code,
                modifier: Modifier::Linear,
            });
        }
    }
    out.into_iter().collect()
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
        let unavailable = || Err::<(), _>(GlesUnavailable::NoLibrary("gone".into()));
        assert!(matches!(
            RendererChoice::Auto.attempt(unavailable),
            Ok(GlesOutcome::Pixman { why }) if why.contains("gone")
        ));
        assert!(RendererChoice::Gles.attempt(unavailable).is_err());
        assert!(matches!(
            RendererChoice::Pixman.attempt(|| -> Result<(), _> { panic!("not tried") }),
            Ok(GlesOutcome::Pixman { why }) if why.is_empty()
        ));
        assert!(matches!(
            RendererChoice::Gles.attempt(|| Ok(7)),
            Ok(GlesOutcome::Gles(7))
        ));
    }

    #[test]
    fn implicit_only_formats_also_take_linear() {
        use smithay::backend::allocator::format::FormatSet;
        use smithay::backend::allocator::{Format, Fourcc, Modifier};
        let egl: FormatSet = [
            Format {
                code: Fourcc::Argb8888,
                modifier: Modifier::Invalid,
            },
            Format {
                code: Fourcc::Nv12,
                modifier: Modifier::I915_y_tiled,
            },
            // Smithay adds the implicit modifier for every format.
            Format {
                code: Fourcc::Nv12,
                modifier: Modifier::Invalid,
            },
        ]
        .into_iter()
        .collect();
        let out = advertised_formats(&egl);
        let has = |code, modifier| out.contains(&Format { code, modifier });
        assert!(has(Fourcc::Argb8888, Modifier::Invalid));
        assert!(has(Fourcc::Argb8888, Modifier::Linear));
        assert!(has(Fourcc::Nv12, Modifier::I915_y_tiled));
        assert!(
            !has(Fourcc::Nv12, Modifier::Linear),
            "a format with explicit (tiled) modifiers does not gain LINEAR"
        );
    }

    #[test]
    fn software_rasterizers_are_recognised() {
        assert!(is_software("llvmpipe (LLVM 15.0.6, 256 bits)"));
        assert!(is_software("softpipe"));
        assert!(!is_software("Mali-G52 r1p0"));
        assert!(!is_software(
            "AMD Radeon Graphics (radeonsi, renoir, LLVM 15.0.6)"
        ));
    }

    #[test]
    fn missing_library_names_the_packages() {
        let e = GlesUnavailable::NoLibrary("libEGL.so.1: cannot open shared object file".into());
        let msg = e.to_string();
        assert!(msg.contains("libegl1") && msg.contains("llvmpipe"), "{msg}");
    }
}
