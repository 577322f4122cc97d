//! `wayheapalloc`: a pass-through element that answers upstream's ALLOCATION query with a
//! [`WayheapBufferPool`], so sources and software decoders write straight into dma-bufs that
//! any dma-buf consumer downstream (waylandsink, kmssink, V4L2 elements) takes without a copy.

use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use wayheap::policy::{Allocator, Policy};

use crate::formats;
use crate::pool::{OfferError, WayheapBufferPool, queried_video};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "wayheapalloc",
        gst::DebugColorFlags::empty(),
        Some("wayheap dma-buf allocation for upstream"),
    )
});

glib::wrapper! {
    /// The `wayheapalloc` element.
    pub struct WayheapAlloc(ObjectSubclass<imp::WayheapAlloc>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Registers `wayheapalloc` with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "wayheapalloc",
        gst::Rank::NONE,
        WayheapAlloc::static_type(),
    )
}

const DEFAULT_USAGE: &str = "scanout";
const DEFAULT_MIN_BUFFERS: u32 = 4;

#[derive(Debug, Clone)]
struct Settings {
    usage: String,
    policy: Option<String>,
    min_buffers: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            usage: DEFAULT_USAGE.to_owned(),
            policy: None,
            min_buffers: DEFAULT_MIN_BUFFERS,
        }
    }
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct WayheapAlloc {
        settings: Mutex<Settings>,
        pool: Mutex<Option<WayheapBufferPool>>,
    }

    impl std::fmt::Debug for WayheapAlloc {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("WayheapAlloc").finish_non_exhaustive()
        }
    }

    impl WayheapAlloc {
        fn allocator(&self, settings: &Settings) -> Result<Allocator, gst::LoggableError> {
            let policy = match &settings.policy {
                Some(path) => Policy::load(path.as_ref()),
                None => Policy::from_env(),
            }
            .map_err(|e| gst::loggable_error!(CAT, "{}", wayheap::error::chain(&e)))?;
            Ok(Allocator::new(policy, Default::default()))
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for WayheapAlloc {
        const NAME: &'static str = "GstWayheapAlloc";
        type Type = super::WayheapAlloc;
        type ParentType = gst_base::BaseTransform;
    }

    impl ObjectImpl for WayheapAlloc {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
                vec![
                    glib::ParamSpecString::builder("usage")
                        .nick("Usage")
                        .blurb(
                            "The wayheap policy's usage the buffers are for (scanout: CMA first, \
                             then the system heap, ION where the kernel has it, udmabuf last)",
                        )
                        .default_value(Some(DEFAULT_USAGE))
                        .mutable_ready()
                        .build(),
                    glib::ParamSpecString::builder("policy")
                        .nick("Policy file")
                        .blurb("A wayheap policy file (default: $WAYHEAP_POLICY, else the built-in policy)")
                        .mutable_ready()
                        .build(),
                    glib::ParamSpecUInt::builder("min-buffers")
                        .nick("Minimum buffers")
                        .blurb("Buffers the pool allocates up front")
                        .minimum(1)
                        .maximum(64)
                        .default_value(DEFAULT_MIN_BUFFERS)
                        .mutable_ready()
                        .build(),
                    glib::ParamSpecString::builder("provider")
                        .nick("Provider")
                        .blurb("The heap (or ion:NAME, or udmabuf) that served the last buffer, and the providers passed over")
                        .read_only()
                        .build(),
                ]
            });
            PROPERTIES.as_ref()
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            let mut settings = crate::lock(&self.settings);
            match pspec.name() {
                "usage" => {
                    settings.usage = value
                        .get::<Option<String>>()
                        .expect("type checked upstream")
                        .unwrap_or_else(|| DEFAULT_USAGE.to_owned());
                }
                "policy" => settings.policy = value.get().expect("type checked upstream"),
                "min-buffers" => settings.min_buffers = value.get().expect("type checked upstream"),
                other => unreachable!("no property {other}"),
            }
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            let settings = crate::lock(&self.settings);
            match pspec.name() {
                "usage" => settings.usage.to_value(),
                "policy" => settings.policy.to_value(),
                "min-buffers" => settings.min_buffers.to_value(),
                "provider" => crate::lock(&self.pool)
                    .as_ref()
                    .and_then(WayheapBufferPool::provider)
                    .to_value(),
                other => unreachable!("no property {other}"),
            }
        }
    }

    impl GstObjectImpl for WayheapAlloc {}

    impl ElementImpl for WayheapAlloc {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "wayheap dma-buf allocator",
                    "Generic/Video",
                    "Passes video through and offers upstream a pool of dma-bufs from DMA-BUF \
                     heaps, ION or udmabuf, chosen by a wayheap policy: what upstream writes, \
                     downstream takes without a copy",
                    "wayheap developers",
                )
            });
            Some(&*METADATA)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let caps = formats::caps();
                vec![
                    gst::PadTemplate::new(
                        "src",
                        gst::PadDirection::Src,
                        gst::PadPresence::Always,
                        &caps,
                    )
                    .expect("src template"),
                    gst::PadTemplate::new(
                        "sink",
                        gst::PadDirection::Sink,
                        gst::PadPresence::Always,
                        &caps,
                    )
                    .expect("sink template"),
                ]
            });
            TEMPLATES.as_ref()
        }
    }

    impl BaseTransformImpl for WayheapAlloc {
        const MODE: gst_base::subclass::BaseTransformMode =
            gst_base::subclass::BaseTransformMode::AlwaysInPlace;
        const PASSTHROUGH_ON_SAME_CAPS: bool = true;
        const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

        /// Upstream asks downstream for buffers: the answer is our pool, not downstream's.
        fn propose_allocation(
            &self,
            _decide_query: Option<&gst::query::Allocation>,
            query: &mut gst::query::Allocation,
        ) -> Result<(), gst::LoggableError> {
            let (caps, info, _) = queried_video(query)?;
            let settings = crate::lock(&self.settings).clone();
            let allocator = self.allocator(&settings)?;
            let pool = match WayheapBufferPool::offer(
                query,
                &caps,
                &info,
                allocator,
                &settings.usage,
                settings.min_buffers,
            ) {
                Ok(pool) => pool,
                Err(OfferError::NoDmaBuf(why)) => {
                    gst::element_imp_warning!(
                        self,
                        gst::ResourceError::OpenReadWrite,
                        ("{why}: upstream allocates its own memory (copies follow)"),
                        ["{why}"]
                    );
                    return Ok(());
                }
                Err(OfferError::Pool(e)) => return Err(e),
            };
            gst::info!(
                CAT,
                imp = self,
                "offering upstream a pool of {} dma-bufs for usage {} ({caps})",
                settings.min_buffers,
                settings.usage
            );
            *crate::lock(&self.pool) = Some(pool);
            Ok(())
        }

        fn transform_ip_passthrough(
            &self,
            _buf: &gst::Buffer,
        ) -> Result<gst::FlowSuccess, gst::FlowError> {
            Ok(gst::FlowSuccess::Ok)
        }
    }
}
