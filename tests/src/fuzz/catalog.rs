//! The protocol descriptions the fuzzer speaks: wayland-scanner's `Interface` statics, generated
//! from the protocol XMLs (core Wayland, the wayland-protocols extensions compositor-demo offers,
//! and wayheap's own heap hints). Every request's signature, version, destructor flag and the
//! interfaces of its object and new_id arguments come from here; nothing is written by hand.

use wayland_client::backend::protocol::{ArgumentType, Interface, MessageDesc};

use wayland_client::protocol::__interfaces as core;
use wayland_protocols::wp::color_representation::v1::client::__interfaces as color_representation;
use wayland_protocols::wp::cursor_shape::v1::client::__interfaces as cursor_shape;
use wayland_protocols::wp::fractional_scale::v1::client::__interfaces as fractional_scale;
use wayland_protocols::wp::linux_dmabuf::zv1::client::__interfaces as dmabuf;
use wayland_protocols::wp::presentation_time::client::__interfaces as presentation;
use wayland_protocols::wp::primary_selection::zv1::client::__interfaces as primary_selection;
use wayland_protocols::wp::single_pixel_buffer::v1::client::__interfaces as single_pixel;
use wayland_protocols::wp::viewporter::client::__interfaces as viewporter;
use wayland_protocols::xdg::activation::v1::client::__interfaces as activation;
use wayland_protocols::xdg::decoration::zv1::client::__interfaces as decoration;
use wayland_protocols::xdg::shell::client::__interfaces as xdg_shell;
use wayland_protocols::xdg::xdg_output::zv1::client::__interfaces as xdg_output;
use wayland_protocols_wlr::data_control::v1::client::__interfaces as data_control;

/// `wl_display`: object 1 of every connection.
pub static DISPLAY: &Interface = &core::WL_DISPLAY_INTERFACE;
/// `wl_registry`.
pub static REGISTRY: &Interface = &core::WL_REGISTRY_INTERFACE;
/// `wl_callback`.
pub static CALLBACK: &Interface = &core::WL_CALLBACK_INTERFACE;

/// Every global interface the fuzzer can bind: compositor-demo's globals, and the core ones a
/// compositor may offer besides.
pub static GLOBALS: &[&Interface] = &[
    &core::WL_COMPOSITOR_INTERFACE,
    &core::WL_SUBCOMPOSITOR_INTERFACE,
    &core::WL_SHM_INTERFACE,
    &core::WL_OUTPUT_INTERFACE,
    &core::WL_SEAT_INTERFACE,
    &core::WL_DATA_DEVICE_MANAGER_INTERFACE,
    &core::WL_SHELL_INTERFACE,
    &core::WL_FIXES_INTERFACE,
    &xdg_shell::XDG_WM_BASE_INTERFACE,
    &xdg_output::ZXDG_OUTPUT_MANAGER_V1_INTERFACE,
    &dmabuf::ZWP_LINUX_DMABUF_V1_INTERFACE,
    &viewporter::WP_VIEWPORTER_INTERFACE,
    &presentation::WP_PRESENTATION_INTERFACE,
    &single_pixel::WP_SINGLE_PIXEL_BUFFER_MANAGER_V1_INTERFACE,
    &primary_selection::ZWP_PRIMARY_SELECTION_DEVICE_MANAGER_V1_INTERFACE,
    &decoration::ZXDG_DECORATION_MANAGER_V1_INTERFACE,
    &activation::XDG_ACTIVATION_V1_INTERFACE,
    &fractional_scale::WP_FRACTIONAL_SCALE_MANAGER_V1_INTERFACE,
    &color_representation::WP_COLOR_REPRESENTATION_MANAGER_V1_INTERFACE,
    &cursor_shape::WP_CURSOR_SHAPE_MANAGER_V1_INTERFACE,
    &data_control::ZWLR_DATA_CONTROL_MANAGER_V1_INTERFACE,
    &wayheap::protocols::heap_hints::client::__interfaces::WAYHEAP_HEAP_HINTS_MANAGER_V1_INTERFACE,
];

/// The description of global interface `name`, if the fuzzer has it.
pub fn global(name: &str) -> Option<&'static Interface> {
    GLOBALS.iter().copied().find(|i| i.name == name)
}

/// Two interface descriptions are the same interface (statics from different crates may be
/// distinct copies of one XML, so compare names).
pub fn same(a: &Interface, b: &Interface) -> bool {
    a.name == b.name
}

/// Request `name` of `interface`, with its opcode.
pub fn request(interface: &'static Interface, name: &str) -> Option<(u16, &'static MessageDesc)> {
    interface
        .requests
        .iter()
        .enumerate()
        .find(|(_, m)| m.name == name)
        .map(|(i, m)| (i as u16, m))
}

/// The interface an object argument of `desc` must have: `index` counts the signature's
/// arguments; `arg_interfaces` lists one entry per object argument, in order.
pub fn object_arg_interface(desc: &MessageDesc, index: usize) -> Option<&'static Interface> {
    let nth = desc.signature[..index]
        .iter()
        .filter(|a| matches!(a, ArgumentType::Object(_)))
        .count();
    desc.arg_interfaces
        .get(nth)
        .copied()
        .filter(|i| i.name != "<anonymous>")
}

/// Every interface a client can reach from the globals in `offered` (name, version) through
/// new_id arguments, with the highest version it can have there (a child has its
/// parent's), `wl_display`, `wl_registry` and `wl_callback` included; sorted by name.
pub fn reachable(offered: &[(&str, u32)]) -> Vec<(&'static Interface, u32)> {
    let mut stack: Vec<(&'static Interface, u32)> = offered
        .iter()
        .filter_map(|(n, v)| global(n).map(|g| (g, (*v).min(g.version))))
        .collect();
    stack.extend([(DISPLAY, 1), (REGISTRY, 1), (CALLBACK, 1)]);
    let mut seen: Vec<(&'static Interface, u32)> = Vec::new();
    while let Some((i, v)) = stack.pop() {
        if i.name == "<anonymous>" || seen.iter().any(|(s, sv)| same(s, i) && *sv >= v) {
            continue;
        }
        seen.retain(|(s, _)| !same(s, i));
        seen.push((i, v));
        // Objects are created by new_id arguments (of requests, and of events: a server-made
        // wl_buffer), at their creator's version; an object argument names one made elsewhere.
        for m in i.requests.iter().chain(i.events) {
            stack.extend(m.child_interface.map(|c| (c, v.min(c.version))));
        }
    }
    seen.sort_by_key(|(i, _)| i.name);
    seen
}

/// Every request a client of a compositor offering `offered` can send at the versions offered,
/// as `interface.request`.
pub fn requests(offered: &[(&str, u32)]) -> Vec<String> {
    reachable(offered)
        .into_iter()
        .flat_map(|(i, v)| {
            i.requests
                .iter()
                .filter(move |r| r.since <= v)
                .map(move |r| format!("{}.{}", i.name, r.name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_global_has_requests_and_bind_has_the_generic_signature() {
        for g in GLOBALS {
            assert!(g.version >= 1, "{}", g.name);
        }
        let (opcode, bind) = request(REGISTRY, "bind").unwrap();
        assert_eq!(opcode, 0);
        assert_eq!(bind.signature.len(), 4, "name, interface, version, id");
        assert!(bind.child_interface.is_none());
        let (_, attach) = request(global("wl_compositor").unwrap(), "create_surface").unwrap();
        assert_eq!(attach.child_interface.unwrap().name, "wl_surface");
    }

    #[test]
    fn the_reachable_interfaces_include_the_ones_globals_create() {
        let all: Vec<(&str, u32)> = GLOBALS.iter().map(|g| (g.name, g.version)).collect();
        let names: Vec<&str> = reachable(&all).iter().map(|(i, _)| i.name).collect();
        for n in [
            "wl_surface",
            "xdg_popup",
            "zwp_linux_buffer_params_v1",
            "wp_viewport",
        ] {
            assert!(names.contains(&n), "{n} in {names:?}");
        }
        assert!(requests(&all).contains(&"wl_subsurface.place_above".to_owned()));
        let compositor_v1 = requests(&[("wl_compositor", 1)]);
        assert!(!compositor_v1.contains(&"wl_subsurface.place_above".to_owned()));
        assert!(!compositor_v1.contains(&"wl_surface.damage_buffer".to_owned()));
        assert!(compositor_v1.contains(&"wl_surface.damage".to_owned()));
    }

    #[test]
    fn object_arguments_map_to_their_interfaces() {
        let surface = request(global("wl_compositor").unwrap(), "create_surface")
            .unwrap()
            .1
            .child_interface
            .unwrap();
        let (_, attach) = request(surface, "attach").unwrap();
        assert_eq!(object_arg_interface(attach, 0).unwrap().name, "wl_buffer");
        let sub = global("wl_subcompositor").unwrap();
        let (_, get) = request(sub, "get_subsurface").unwrap();
        assert_eq!(object_arg_interface(get, 1).unwrap().name, "wl_surface");
        assert_eq!(object_arg_interface(get, 2).unwrap().name, "wl_surface");
    }
}
