//! What a fuzz connection knows of its own protocol state: the live objects and their
//! interfaces (new_id arguments create them, destructors and `delete_id` remove them), the
//! globals the registry announced, and recent numbers from events (serials to acknowledge).

use std::collections::{BTreeMap, VecDeque};

use wayland_client::backend::protocol::Interface;

use super::catalog;
use super::rng::Rng;

/// First id of the range the compositor allocates from (server-created objects).
pub const SERVER_ID_BASE: u32 = 0xff00_0000;

/// A live object.
#[derive(Debug, Clone, Copy)]
pub struct Object {
    /// Its interface.
    pub interface: &'static Interface,
    /// The version it was bound or created with.
    pub version: u32,
}

/// A global from `wl_registry.global`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// The registry's name for it.
    pub name: u32,
    /// Its interface name.
    pub interface: String,
    /// The highest version offered.
    pub version: u32,
}

/// One connection's protocol state.
#[derive(Debug)]
pub struct World {
    live: BTreeMap<u32, Object>,
    destroyed: Vec<u32>,
    next_id: u32,
    /// The registry's object id, once created.
    pub registry: Option<u32>,
    /// Globals announced so far.
    pub globals: Vec<Global>,
    recent_uints: VecDeque<u32>,
    first_uint_of_event: BTreeMap<&'static str, u32>,
    first_string_of_event: BTreeMap<&'static str, Vec<u8>>,
    last_event_on: BTreeMap<u32, (&'static str, u32)>,
    depends_on: BTreeMap<u32, Vec<u32>>,
    created_by: BTreeMap<String, u32>,
    with_role: Vec<u32>,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    /// A fresh connection: only `wl_display` (id 1) exists.
    pub fn new() -> World {
        let mut live = BTreeMap::new();
        live.insert(
            1,
            Object {
                interface: catalog::DISPLAY,
                version: 1,
            },
        );
        World {
            live,
            destroyed: Vec::new(),
            next_id: 2,
            registry: None,
            globals: Vec::new(),
            recent_uints: VecDeque::new(),
            first_uint_of_event: BTreeMap::new(),
            first_string_of_event: BTreeMap::new(),
            last_event_on: BTreeMap::new(),
            depends_on: BTreeMap::new(),
            created_by: BTreeMap::new(),
            with_role: Vec::new(),
        }
    }

    /// The next client id, consumed.
    pub fn allocate_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Gives back `id`, the last one allocated (a message built but not sent).
    pub fn unallocate(&mut self, id: u32) {
        if id + 1 == self.next_id {
            self.next_id = id;
        }
    }

    /// The id the next new object would get, not consumed.
    pub fn peek_next_id(&self) -> u32 {
        self.next_id
    }

    /// Records a new object.
    pub fn insert(&mut self, id: u32, interface: &'static Interface, version: u32) {
        self.live.insert(id, Object { interface, version });
    }

    /// Forgets an object (destroyed by a request, or `delete_id`).
    pub fn remove(&mut self, id: u32) {
        if self.live.remove(&id).is_some() && self.destroyed.len() < 64 {
            self.destroyed.push(id);
        }
    }

    /// Object `id`, if live.
    pub fn get(&self, id: u32) -> Option<Object> {
        self.live.get(&id).copied()
    }

    /// How many objects are live.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// True when nothing is live (never: wl_display always is).
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Live objects of interface `name`, oldest first.
    pub fn of(&self, name: &str) -> Vec<u32> {
        self.live
            .iter()
            .filter(|(_, o)| o.interface.name == name)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The `back`-th newest live object of interface `name` (0: the newest).
    pub fn newest(&self, name: &str, back: usize) -> Option<u32> {
        self.of(name).into_iter().rev().nth(back)
    }

    /// A random live object (any interface, wl_display included).
    pub fn random(&self, rng: &mut Rng) -> (u32, Object) {
        let i = rng.below(self.live.len());
        let (id, o) = self.live.iter().nth(i).expect("wl_display is always live");
        (*id, *o)
    }

    /// A random live object of interface `name`.
    pub fn random_of(&self, rng: &mut Rng, name: &str) -> Option<u32> {
        rng.pick(&self.of(name)).copied()
    }

    /// A random live object whose interface is not `name`.
    pub fn random_not_of(&self, rng: &mut Rng, name: &str) -> Option<u32> {
        let ids: Vec<u32> = self
            .live
            .iter()
            .filter(|(_, o)| o.interface.name != name)
            .map(|(id, _)| *id)
            .collect();
        rng.pick(&ids).copied()
    }

    /// An id that names no live object: a destroyed one, one past the next, or a wild one.
    pub fn unknown_id(&self, rng: &mut Rng) -> u32 {
        match rng.below(4) {
            0 if !self.destroyed.is_empty() => *rng.pick(&self.destroyed).expect("non-empty"),
            1 => self.next_id + 1 + rng.below(8) as u32,
            2 => SERVER_ID_BASE + rng.below(16) as u32,
            _ => loop {
                let id = rng.next_u32();
                if !self.live.contains_key(&id) {
                    break id;
                }
            },
        }
    }

    /// A destroyed id, if any.
    pub fn destroyed_id(&self, rng: &mut Rng) -> Option<u32> {
        rng.pick(&self.destroyed).copied()
    }

    /// Remembers a number an event carried (a serial, a size, a format).
    pub fn saw_uint(&mut self, v: u32) {
        if self.recent_uints.len() == 16 {
            self.recent_uints.pop_front();
        }
        self.recent_uints.push_back(v);
    }

    /// A number a recent event carried.
    pub fn recent_uint(&self, rng: &mut Rng) -> Option<u32> {
        if self.recent_uints.is_empty() {
            return None;
        }
        self.recent_uints
            .get(rng.below(self.recent_uints.len()))
            .copied()
    }

    /// Remembers the first uint of the newest event named `event` (a configure's or ping's
    /// serial).
    pub fn saw_event_uint(&mut self, event: &'static str, v: u32) {
        self.first_uint_of_event.insert(event, v);
    }

    /// The first uint of the newest event named `event`.
    pub fn event_uint(&self, event: &str) -> Option<u32> {
        self.first_uint_of_event.get(event).copied()
    }

    /// Remembers the first string of the newest event named `event` (a heap's name).
    pub fn saw_event_string(&mut self, event: &'static str, v: Vec<u8>) {
        self.first_string_of_event.insert(event, v);
    }

    /// The first string of the newest event named `event`.
    pub fn event_string(&self, event: &str) -> Option<&[u8]> {
        self.first_string_of_event.get(event).map(Vec::as_slice)
    }

    /// Remembers the name and first uint of the newest event on `object`.
    pub fn saw_event_on(&mut self, object: u32, event: &'static str, first_uint: u32) {
        self.last_event_on.insert(object, (event, first_uint));
    }

    /// The first uint of the newest event on `object`, if that event is named `event` (the
    /// serial a `configure` asks to acknowledge), taken: a serial is acknowledged once.
    pub fn take_event_uint_on(&mut self, object: u32, event: &str) -> Option<u32> {
        let (name, v) = *self.last_event_on.get(&object)?;
        (name == event).then(|| {
            self.last_event_on.remove(&object);
            v
        })
    }

    /// True when the newest event on `object` is named `event` and its serial is not taken.
    pub fn has_event_on(&self, object: u32, event: &str) -> bool {
        self.last_event_on
            .get(&object)
            .is_some_and(|(name, _)| *name == event)
    }

    /// The first uint of the newest event on `object`, whatever it was, taken.
    pub fn take_last_uint_on(&mut self, object: u32) -> Option<u32> {
        self.last_event_on.remove(&object).map(|(_, v)| v)
    }

    /// Records that `id` was created by request `key` (interface.request@target:object args)
    /// and depends on `on` (the target and the objects the request named).
    pub fn created(&mut self, id: u32, key: String, on: Vec<u32>) {
        self.depends_on.insert(id, on);
        self.created_by.insert(key, id);
    }

    /// True while an object created by request `key` lives (asking again is an error in most
    /// protocols: a second viewport, xdg_surface or toplevel for the same object).
    pub fn already_created(&self, key: &str) -> bool {
        self.created_by
            .get(key)
            .is_some_and(|id| self.live.contains_key(id))
    }

    /// True while a live object depends on `id` (destroying it first is an error for role
    /// objects: an xdg_surface before its toplevel, a wl_surface before its xdg_surface).
    pub fn has_live_dependents(&self, id: u32) -> bool {
        self.depends_on
            .iter()
            .any(|(child, on)| on.contains(&id) && self.live.contains_key(child))
    }

    /// Records that `surface` has a role.
    pub fn give_role(&mut self, surface: u32) {
        self.with_role.push(surface);
    }

    /// True when `surface` was given a role.
    pub fn has_role(&self, surface: u32) -> bool {
        self.with_role.contains(&surface)
    }

    /// The announced global for interface `name`, if any.
    pub fn global(&self, name: &str) -> Option<&Global> {
        self.globals.iter().find(|g| g.interface == name)
    }
}
