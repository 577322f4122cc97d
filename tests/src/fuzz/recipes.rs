//! Recipes: short request sequences that reach the compositor's deeper states (a mapped window,
//! an attached shm, dma-buf or single-pixel buffer, a subsurface, a popup, a viewport, heap
//! hints). A step names its request by interface and name; its target is the newest live
//! object of that interface (a global is bound first when none is), and the arguments not
//! given here are generated like any other. Steps may be mutated like any other message.

use super::values::XRGB8888;

/// A step's argument, by position in the request's signature.
#[derive(Debug, Clone, Copy)]
pub enum Val {
    /// An `int`.
    I(i32),
    /// A `uint`.
    U(u32),
    /// A `fixed`, raw (value × 256).
    F(i32),
    /// A `string`.
    S(&'static str),
    /// The `n`-th newest live object of an interface (0: the newest).
    Newest(&'static str, usize),
    /// The first uint of the newest event of this name (a `configure` or `ping` serial).
    EventUint(&'static str),
    /// The first string of the newest event of this name (a hinted heap's name).
    EventString(&'static str),
    /// A 64 KiB memfd fit for wl_shm.
    ShmFd,
    /// A real dma-buf when the pool has one, else a memfd.
    DmabufFd,
}

/// One request of a recipe.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// The target's interface.
    pub interface: &'static str,
    /// The request's name.
    pub request: &'static str,
    /// Arguments given, by signature position; the rest are generated.
    pub args: &'static [(usize, Val)],
}

const fn st(interface: &'static str, request: &'static str, args: &'static [(usize, Val)]) -> Step {
    Step {
        interface,
        request,
        args,
    }
}

use Val::*;

const SURFACE: Val = Newest("wl_surface", 0);
const COMMIT: Step = st("wl_surface", "commit", &[]);
const ATTACH: Step = st(
    "wl_surface",
    "attach",
    &[(0, Newest("wl_buffer", 0)), (1, I(0)), (2, I(0))],
);

/// Every recipe, by name.
pub const RECIPES: &[(&str, &[Step])] = &[
    (
        "window",
        &[
            st("wl_compositor", "create_surface", &[]),
            st("xdg_wm_base", "get_xdg_surface", &[(1, SURFACE)]),
            st("xdg_surface", "get_toplevel", &[]),
            st("xdg_toplevel", "set_title", &[(0, S("fuzz"))]),
            st("xdg_toplevel", "set_app_id", &[(0, S("wayheap-fuzz"))]),
            COMMIT,
        ],
    ),
    (
        "ack-configure",
        &[
            st(
                "xdg_surface",
                "ack_configure",
                &[(0, EventUint("configure"))],
            ),
            COMMIT,
        ],
    ),
    (
        "pong",
        &[st("xdg_wm_base", "pong", &[(0, EventUint("ping"))])],
    ),
    (
        "shm-buffer",
        &[
            st("wl_shm", "create_pool", &[(1, ShmFd), (2, I(65536))]),
            st(
                "wl_shm_pool",
                "create_buffer",
                &[(1, I(0)), (2, I(64)), (3, I(64)), (4, I(256)), (5, U(1))],
            ),
            ATTACH,
            st(
                "wl_surface",
                "damage_buffer",
                &[(0, I(0)), (1, I(0)), (2, I(64)), (3, I(64))],
            ),
            st("wl_surface", "frame", &[]),
            COMMIT,
        ],
    ),
    (
        "subsurface",
        &[
            st("wl_compositor", "create_surface", &[]),
            st("wl_compositor", "create_surface", &[]),
            st(
                "wl_subcompositor",
                "get_subsurface",
                &[(1, SURFACE), (2, Newest("wl_surface", 1))],
            ),
            st("wl_subsurface", "set_position", &[(0, I(10)), (1, I(10))]),
            st(
                "wl_subsurface",
                "place_above",
                &[(0, Newest("wl_surface", 1))],
            ),
            st("wl_subsurface", "set_desync", &[]),
            COMMIT,
        ],
    ),
    (
        "viewport",
        &[
            st("wp_viewporter", "get_viewport", &[(1, SURFACE)]),
            st(
                "wp_viewport",
                "set_source",
                &[(0, F(0)), (1, F(0)), (2, F(32 * 256)), (3, F(32 * 256))],
            ),
            st(
                "wp_viewport",
                "set_destination",
                &[(0, I(100)), (1, I(100))],
            ),
            COMMIT,
        ],
    ),
    (
        "presentation",
        &[st("wp_presentation", "feedback", &[(0, SURFACE)]), COMMIT],
    ),
    (
        "single-pixel",
        &[
            st(
                "wp_single_pixel_buffer_manager_v1",
                "create_u32_rgba_buffer",
                &[(1, U(u32::MAX)), (2, U(0)), (3, U(0)), (4, U(u32::MAX))],
            ),
            ATTACH,
            COMMIT,
        ],
    ),
    (
        "dmabuf-immed",
        &[
            st("zwp_linux_dmabuf_v1", "create_params", &[]),
            st(
                "zwp_linux_buffer_params_v1",
                "add",
                &[
                    (0, DmabufFd),
                    (1, U(0)),
                    (2, U(0)),
                    (3, U(256)),
                    (4, U(0)),
                    (5, U(0)),
                ],
            ),
            st(
                "zwp_linux_buffer_params_v1",
                "create_immed",
                &[(1, I(64)), (2, I(64)), (3, U(XRGB8888)), (4, U(0))],
            ),
            ATTACH,
            COMMIT,
        ],
    ),
    (
        "dmabuf-create",
        &[
            st("zwp_linux_dmabuf_v1", "create_params", &[]),
            st(
                "zwp_linux_buffer_params_v1",
                "add",
                &[
                    (0, DmabufFd),
                    (1, U(0)),
                    (2, U(0)),
                    (3, U(256)),
                    (4, U(0)),
                    (5, U(0)),
                ],
            ),
            st(
                "zwp_linux_buffer_params_v1",
                "create",
                &[(0, I(64)), (1, I(64)), (2, U(XRGB8888)), (3, U(0))],
            ),
        ],
    ),
    (
        "dmabuf-feedback",
        &[
            st("zwp_linux_dmabuf_v1", "get_default_feedback", &[]),
            st(
                "zwp_linux_dmabuf_v1",
                "get_surface_feedback",
                &[(1, SURFACE)],
            ),
        ],
    ),
    (
        "heap-hints",
        &[
            st(
                "wayheap_heap_hints_manager_v1",
                "get_surface_hints",
                &[(1, SURFACE)],
            ),
            st(
                "wayheap_heap_hints_manager_v1",
                "allocate",
                &[(1, EventString("heap")), (2, U(0)), (3, U(65536))],
            ),
        ],
    ),
    (
        "popup",
        &[
            st("xdg_wm_base", "create_positioner", &[]),
            st("xdg_positioner", "set_size", &[(0, I(32)), (1, I(32))]),
            st(
                "xdg_positioner",
                "set_anchor_rect",
                &[(0, I(0)), (1, I(0)), (2, I(10)), (3, I(10))],
            ),
            st("wl_compositor", "create_surface", &[]),
            st("xdg_wm_base", "get_xdg_surface", &[(1, SURFACE)]),
            st(
                "xdg_surface",
                "get_popup",
                &[
                    (1, Newest("xdg_surface", 1)),
                    (2, Newest("xdg_positioner", 0)),
                ],
            ),
            COMMIT,
        ],
    ),
    (
        "region",
        &[
            st("wl_compositor", "create_region", &[]),
            st(
                "wl_region",
                "add",
                &[(0, I(0)), (1, I(0)), (2, I(32)), (3, I(32))],
            ),
            st(
                "wl_region",
                "subtract",
                &[(0, I(8)), (1, I(8)), (2, I(4)), (3, I(4))],
            ),
            st(
                "wl_surface",
                "set_opaque_region",
                &[(0, Newest("wl_region", 0))],
            ),
            st(
                "wl_surface",
                "set_input_region",
                &[(0, Newest("wl_region", 0))],
            ),
            COMMIT,
        ],
    ),
    (
        "cursor",
        &[
            st("wl_seat", "get_pointer", &[]),
            st(
                "wl_pointer",
                "set_cursor",
                &[(0, EventUint("enter")), (1, SURFACE), (2, I(0)), (3, I(0))],
            ),
            COMMIT,
        ],
    ),
    (
        "seat-devices",
        &[
            st("wl_seat", "get_keyboard", &[]),
            st("wl_seat", "get_touch", &[]),
        ],
    ),
    (
        "xdg-output",
        &[st(
            "zxdg_output_manager_v1",
            "get_xdg_output",
            &[(1, Newest("wl_output", 0))],
        )],
    ),
    (
        "pool-resize",
        &[st("wl_shm_pool", "resize", &[(0, I(131072))])],
    ),
    (
        "teardown",
        &[
            st("xdg_toplevel", "destroy", &[]),
            st("xdg_surface", "destroy", &[]),
            st("wl_surface", "destroy", &[]),
        ],
    ),
];

/// True when `world` and the pool have what every step of `steps` asks for: the events whose
/// serials or names it uses, and a real dma-buf where it wants one (`dmabufs`).
pub fn ready(steps: &[Step], world: &super::world::World, dmabufs: bool) -> bool {
    steps.iter().flat_map(|s| s.args).all(|(_, v)| match v {
        EventUint(e) => world.event_uint(e).is_some(),
        EventString(e) => world.event_string(e).is_some(),
        DmabufFd => dmabufs,
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::catalog;
    use wayland_client::backend::protocol::{ArgumentType, Interface};

    /// Finds an interface by name: a global, or reachable from one through new_id arguments.
    fn find(name: &str) -> Option<&'static Interface> {
        let mut stack: Vec<&'static Interface> = catalog::GLOBALS.to_vec();
        let mut seen = Vec::new();
        while let Some(i) = stack.pop() {
            if i.name == name {
                return Some(i);
            }
            if seen.contains(&i.name) {
                continue;
            }
            seen.push(i.name);
            for m in i.requests.iter().chain(i.events) {
                stack.extend(m.child_interface);
                stack.extend(m.arg_interfaces.iter().copied());
            }
        }
        None
    }

    #[test]
    fn every_step_names_a_real_request_and_its_arguments_fit_the_signature() {
        for (recipe, steps) in RECIPES {
            for step in *steps {
                let iface = find(step.interface)
                    .unwrap_or_else(|| panic!("{recipe}: no interface {}", step.interface));
                let (_, desc) = catalog::request(iface, step.request)
                    .unwrap_or_else(|| panic!("{recipe}: no {}.{}", step.interface, step.request));
                for (pos, val) in step.args {
                    let ty = desc.signature.get(*pos).unwrap_or_else(|| {
                        panic!(
                            "{recipe}: {}.{} has no arg {pos}",
                            step.interface, step.request
                        )
                    });
                    let fits = match val {
                        I(_) => matches!(ty, ArgumentType::Int),
                        U(_) | EventUint(_) => matches!(ty, ArgumentType::Uint),
                        F(_) => matches!(ty, ArgumentType::Fixed),
                        S(_) | EventString(_) => matches!(ty, ArgumentType::Str(_)),
                        Newest(name, _) => {
                            matches!(ty, ArgumentType::Object(_))
                                && catalog::object_arg_interface(desc, *pos)
                                    .is_some_and(|i| i.name == *name)
                        }
                        ShmFd | DmabufFd => matches!(ty, ArgumentType::Fd),
                    };
                    assert!(
                        fits,
                        "{recipe}: {}.{} arg {pos} is {ty:?}, not {val:?}",
                        step.interface, step.request
                    );
                }
            }
        }
    }
}
