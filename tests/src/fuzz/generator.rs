//! The message generator of one connection: binds globals from the registry, plays recipes,
//! sends random requests to live objects with arguments of the right shape, mutates some of
//! them, and chooses how the connection ends.

use std::collections::VecDeque;

use wayland_client::backend::protocol::{AllowNull, ArgumentType, Interface, MessageDesc};

use super::catalog;
use super::fds::{FdPool, FdRef};
use super::mutate::{self, Mutation};
use super::recipes::{self, RECIPES, Step, Val};
use super::rng::Rng;
use super::values;
use super::wire::{self, Arg, Encoded, Request};
use super::world::{Global, Object, World};

/// A message ready to send, with what it does to the connection's objects.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Its bytes and fds.
    pub encoded: Encoded,
    /// One line for the message log.
    pub line: String,
    /// The target's interface (`?` for an id that names nothing).
    pub interface: &'static str,
    /// The request's name (as described; the opcode may be mutated).
    pub request: &'static str,
    /// The object it is sent to.
    pub target: u32,
    /// The objects its object arguments name (not null).
    pub object_args: Vec<u32>,
    /// Objects it creates: id, interface, version.
    pub creates: Vec<(u32, &'static Interface, u32)>,
    /// The object it destroys.
    pub destroys: Option<u32>,
    /// The mutation it carries, if any.
    pub mutation: Option<Mutation>,
}

/// The next thing a connection does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Send a message.
    Send(Planned),
    /// Shrink the connection's scratch memfd to this many bytes (after the compositor may have
    /// mapped it as a wl_shm pool).
    ShrinkScratch(u64),
}

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `wl_display.sync`, then wait for the answer: a stall is a finding.
    Sync,
    /// A header whose size field is below 8 (no message is that short), then a sync: the
    /// compositor must refuse it, not wait.
    BadHeaderThenSync(u16),
    /// The first bytes of a message, then an abrupt disconnect.
    TruncatedThenClose,
    /// Random bytes, then an abrupt disconnect.
    GarbageThenClose,
    /// An abrupt disconnect with events unread.
    CloseNow,
    /// Requests whose answers this connection never reads, until the socket is full; a
    /// bystander must still be served meanwhile.
    FloodUnread,
    /// A sync, then a few frames' time reading events (the compositor renders, places and
    /// presents what the connection built), then a sync again.
    Linger,
}

/// Which pool fds suit which use.
#[derive(Debug, Clone, Default)]
pub struct FdKinds {
    /// How many fds the pool has.
    pub pool_len: usize,
    /// 64 KiB memfds (wl_shm pools).
    pub shm: Vec<usize>,
    /// Real dma-bufs.
    pub dmabuf: Vec<usize>,
}

impl FdKinds {
    /// Sorts `pool`'s fds by use.
    pub fn of(pool: &FdPool) -> FdKinds {
        FdKinds {
            pool_len: pool.len(),
            shm: pool.matching(&["memfd-sealed-64k", "memfd-64k"]),
            dmabuf: pool.matching(&["dmabuf-", "udmabuf"]),
        }
    }
}

/// One connection's generator.
#[derive(Debug)]
pub struct Generator {
    rng: Rng,
    hostility: u32,
    /// No mutations, and values that make sense: the connection aims at deep states.
    gentle: bool,
    pending: VecDeque<Step>,
    fds: FdKinds,
}

impl Generator {
    /// A generator seeded with the connection's seed. Its hostility (the share of mutated
    /// messages) is drawn first: some connections stay well-formed to reach deep states.
    pub fn new(seed: u64, fds: FdKinds) -> Generator {
        let mut rng = Rng::new(seed);
        let hostility = [0, 0, 3, 10, 25, 60][rng.weighted(&[20, 15, 25, 20, 12, 8])];
        Generator {
            rng,
            hostility,
            gentle: hostility == 0,
            pending: VecDeque::new(),
            fds,
        }
    }

    /// Percent of messages that carry a mutation.
    pub fn hostility(&self) -> u32 {
        self.hostility
    }

    /// The next action: the pending recipe's next step, or a fresh choice.
    pub fn next(&mut self, world: &mut World) -> Action {
        for _ in 0..16 {
            if let Some(step) = self.pending.pop_front() {
                let m = self.roll_mutation();
                if let Some(p) = self.recipe_step(world, step, m) {
                    return Action::Send(p);
                }
                continue;
            }
            if let Some(action) = self.fresh_action(world) {
                return action;
            }
        }
        Action::Send(self.sync(world))
    }

    /// A bind, a recipe (whose steps come next), a random request or a shrink of the scratch
    /// memfd; `None` when the choice gave nothing to send yet.
    fn fresh_action(&mut self, world: &mut World) -> Option<Action> {
        let m = self.roll_mutation();
        match self.rng.weighted(&self.action_weights(world)) {
            0 => self.random_bind(world, m).map(Action::Send),
            1 => {
                self.start_recipe(world);
                None
            }
            2 => self.random_request(world, m).map(Action::Send),
            _ => Some(Action::ShrinkScratch(
                *self.rng.pick(&[0u64, 1, 4096]).expect("non-empty"),
            )),
        }
    }

    /// Weights of bind, recipe, random request and shrink. Binds while globals are unbound; a
    /// gentle connection mostly plays recipes (they reach deep states), a hostile one mostly
    /// sends random requests.
    fn action_weights(&self, world: &World) -> [u32; 4] {
        let unbound = world
            .globals
            .iter()
            .any(|g| world.of(&g.interface).is_empty());
        let bind = if unbound { 20 } else { 3 };
        if self.gentle {
            [bind, 60, 20, 1]
        } else {
            [bind, 30, 45, 2]
        }
    }

    /// Queues a random recipe's steps. A gentle connection plays only what can succeed: no
    /// serial it has not been sent, no memfd posing as a dma-buf.
    fn start_recipe(&mut self, world: &World) {
        let (_, steps) = self.rng.pick(RECIPES).expect("recipes");
        if !self.gentle || recipes::ready(steps, world, !self.fds.dmabuf.is_empty()) {
            self.pending.extend(steps.iter().copied());
        }
    }

    /// How this connection ends.
    pub fn ending(&mut self) -> Ending {
        match self.rng.weighted(&[63, 5, 5, 5, 5, 2, 15]) {
            0 => Ending::Sync,
            1 => Ending::BadHeaderThenSync(*self.rng.pick(&[0u16, 4, 7]).expect("non-empty")),
            2 => Ending::TruncatedThenClose,
            3 => Ending::GarbageThenClose,
            4 => Ending::CloseNow,
            5 => Ending::FloodUnread,
            _ => Ending::Linger,
        }
    }

    /// The first bytes of a well-shaped message (at least one, never all).
    pub fn truncated(&mut self, world: &mut World) -> Vec<u8> {
        let p = self
            .random_request(world, None)
            .unwrap_or_else(|| self.sync(world));
        let mut bytes = p.encoded.bytes;
        let keep = 1 + self.rng.below(bytes.len() - 1);
        bytes.truncate(keep);
        bytes
    }

    /// Random bytes.
    pub fn garbage(&mut self) -> Vec<u8> {
        let len = 1 + self.rng.below(256);
        self.rng.bytes(len)
    }

    /// `wl_display.get_registry` with a fresh registry.
    pub fn get_registry(&mut self, world: &mut World) -> Planned {
        let display = world.get(1).expect("wl_display");
        let (opcode, desc) =
            catalog::request(catalog::DISPLAY, "get_registry").expect("get_registry");
        self.build(world, 1, display, opcode, desc, &[], None, None)
    }

    /// `wl_display.sync` with a fresh callback.
    pub fn sync(&mut self, world: &mut World) -> Planned {
        let display = world.get(1).expect("wl_display");
        let (opcode, desc) = catalog::request(catalog::DISPLAY, "sync").expect("sync");
        self.build(world, 1, display, opcode, desc, &[], None, None)
    }

    fn roll_mutation(&mut self) -> Option<Mutation> {
        self.rng
            .percent(self.hostility)
            .then(|| Mutation::random(&mut self.rng))
    }

    /// Binds a random announced global (mostly one not bound yet).
    fn random_bind(&mut self, world: &mut World, m: Option<Mutation>) -> Option<Planned> {
        let unbound: Vec<Global> = world
            .globals
            .iter()
            .filter(|g| world.of(&g.interface).is_empty())
            .cloned()
            .collect();
        let pool = if unbound.is_empty() || self.rng.percent(10) {
            world.globals.clone()
        } else {
            unbound
        };
        let g = self.rng.pick(&pool)?.clone();
        self.bind(world, &g, m)
    }

    /// `wl_registry.bind` of `g` at a version both sides know.
    fn bind(&mut self, world: &mut World, g: &Global, m: Option<Mutation>) -> Option<Planned> {
        let registry = world.registry?;
        let reg = world.get(registry)?;
        let iface = catalog::global(&g.interface)?;
        let (opcode, desc) = catalog::request(catalog::REGISTRY, "bind")?;
        let version = 1 + self.rng.below(g.version.min(iface.version) as usize) as u32;
        // A bind naming another global's interface: the registry must check the pair.
        let named = match m {
            Some(Mutation::WrongObjectType) => self
                .rng
                .pick(catalog::GLOBALS)
                .map_or(iface.name, |i| i.name),
            _ => iface.name,
        };
        let given = [
            (0, Val::U(g.name)),
            (1, Val::S(named)),
            (2, Val::U(version)),
        ];
        let mut p = self.build(
            world,
            registry,
            reg,
            opcode,
            desc,
            &given,
            m,
            Some((iface, version)),
        );
        if named != iface.name {
            p.mutation = Some(Mutation::WrongObjectType);
            p.line = format!("[WrongObjectType] {}", p.line);
        }
        Some(p)
    }

    /// A request to a random live object, with generated arguments (a request to the
    /// registry is a bind of an announced global).
    fn random_request(&mut self, world: &mut World, m: Option<Mutation>) -> Option<Planned> {
        let (id, obj) = if world.len() > 1 && self.rng.percent(95) {
            loop {
                let (id, obj) = world.random(&mut self.rng);
                if id != 1 {
                    break (id, obj);
                }
            }
        } else {
            (1, world.get(1)?)
        };
        if obj.interface.name == "wl_registry" && m.is_none() {
            return self.random_bind(world, m);
        }
        let too_new = m == Some(Mutation::TooNewRequest);
        let candidates: Vec<usize> = (0..obj.interface.requests.len())
            .filter(|i| {
                let desc = &obj.interface.requests[*i];
                (desc.since <= obj.version) != too_new
                    && (m.is_some() || satisfiable(world, desc))
                    && !(self.gentle && desc.is_destructor && world.has_live_dependents(id))
            })
            .collect();
        let mut opcode = *self.rng.pick(&candidates)?;
        // Destructors end the objects that the rest of the connection plays with: fewer.
        if obj.interface.requests[opcode].is_destructor && self.rng.percent(60) {
            opcode = *self.rng.pick(&candidates)?;
        }
        let desc = &obj.interface.requests[opcode];
        let p = self.build(world, id, obj, opcode as u16, desc, &[], m, None);
        self.unless_refused(world, p)
    }

    /// `p`, unless this is a gentle connection and the compositor would refuse it for a reason
    /// the connection can see: a second object of a kind one object may have (a viewport, an
    /// xdg_surface), a second role for a surface. Its new ids are given back then.
    fn unless_refused(&mut self, world: &mut World, p: Planned) -> Option<Planned> {
        if !self.gentle {
            return Some(p);
        }
        // A request naming objects makes one object per combination (a viewport per surface);
        // one naming none is a factory (surfaces, buffers, callbacks).
        let duplicate = !p.creates.is_empty()
            && !p.object_args.is_empty()
            && world.already_created(&creation_key(&p));
        let second_role = gives_role(&p).is_some_and(|s| world.has_role(s));
        let orphaning = p.destroys.is_some_and(|d| world.has_live_dependents(d));
        if !duplicate && !second_role && !orphaning {
            return Some(p);
        }
        for (id, _, _) in p.creates.iter().rev() {
            world.unallocate(*id);
        }
        None
    }

    /// A recipe step: to the newest object of its interface. A global the step needs (as its
    /// target or an argument) is bound first; a step whose other objects are missing is
    /// skipped.
    fn recipe_step(
        &mut self,
        world: &mut World,
        step: Step,
        m: Option<Mutation>,
    ) -> Option<Planned> {
        let needed =
            std::iter::once(step.interface).chain(step.args.iter().filter_map(|(_, v)| match v {
                Val::Newest(name, 0) => Some(*name),
                _ => None,
            }));
        for name in needed.collect::<Vec<_>>() {
            if world.newest(name, 0).is_none() {
                let g = world.global(name)?.clone();
                let p = self.bind(world, &g, None)?;
                self.pending.push_front(step);
                return Some(p);
            }
        }
        let target = world.newest(step.interface, 0)?;
        let obj = world.get(target)?;
        let (opcode, desc) = catalog::request(obj.interface, step.request)?;
        if desc.since > obj.version {
            return None;
        }
        // A gentle connection acknowledges only a serial its target sent and nobody acked.
        let unanswerable = step.args.iter().any(|(_, v)| match v {
            Val::EventUint(e) => !world.has_event_on(target, e),
            _ => false,
        });
        if self.gentle && unanswerable {
            return None;
        }
        let p = self.build(world, target, obj, opcode, desc, step.args, m, None);
        self.unless_refused(world, p)
    }

    /// Builds (and maybe mutates) a request to `target`. `bound` gives the interface and
    /// version of the object a bind creates (its new_id names no interface).
    #[allow(clippy::too_many_arguments)]
    fn build(
        &mut self,
        world: &mut World,
        target: u32,
        obj: Object,
        opcode: u16,
        desc: &'static MessageDesc,
        given: &[(usize, Val)],
        m: Option<Mutation>,
        bound: Option<(&'static Interface, u32)>,
    ) -> Planned {
        let (args, creates) = self.arguments(world, target, obj, desc, given, bound);
        let mut req = Request {
            object: target,
            opcode,
            args,
        };
        let (encoded, mut applied) = self.mutated(world, &mut req, obj, desc, m);
        if desc.since > obj.version {
            applied = Some(Mutation::TooNewRequest);
        }
        let interface = world.get(req.object).map_or("?", |o| o.interface.name);
        Planned {
            line: describe(&req, interface, desc, applied),
            encoded,
            interface,
            request: desc.name,
            target: req.object,
            object_args: object_args(&req),
            creates,
            destroys: desc.is_destructor.then_some(req.object),
            mutation: applied,
        }
    }

    /// The arguments of `desc` (the recipe's where `given`, generated otherwise) and the
    /// objects their new_ids create.
    fn arguments(
        &mut self,
        world: &mut World,
        target: u32,
        obj: Object,
        desc: &'static MessageDesc,
        given: &[(usize, Val)],
        bound: Option<(&'static Interface, u32)>,
    ) -> (Vec<Arg>, Vec<(u32, &'static Interface, u32)>) {
        let mut creates = Vec::new();
        let mut args = Vec::with_capacity(desc.signature.len());
        for (pos, ty) in desc.signature.iter().enumerate() {
            let arg = match given.iter().find(|(p, _)| *p == pos) {
                Some((_, v)) => self.given(world, target, *v),
                None => self.generated(world, target, desc, pos, *ty),
            };
            if let Arg::NewId(id) = arg {
                match (desc.child_interface, bound) {
                    (Some(child), _) => creates.push((id, child, obj.version)),
                    (None, Some((iface, version))) => creates.push((id, iface, version)),
                    (None, None) => {}
                }
            }
            args.push(arg);
        }
        (args, creates)
    }

    /// `req` in wire form, with mutation `m` applied to its arguments or its bytes where it
    /// applies; the mutation applied.
    fn mutated(
        &mut self,
        world: &World,
        req: &mut Request,
        obj: Object,
        desc: &MessageDesc,
        m: Option<Mutation>,
    ) -> (Encoded, Option<Mutation>) {
        let applied = m.filter(|m| {
            mutate::apply_to_request(*m, &mut self.rng, world, req, desc, obj.interface)
        });
        let mut encoded = wire::encode(req);
        if applied.is_some() {
            return (encoded, applied);
        }
        let rng = &mut self.rng;
        let pool_len = self.fds.pool_len;
        let applied =
            m.filter(|m| mutate::apply_to_wire(*m, rng, &mut encoded, desc.signature, pool_len));
        (encoded, applied)
    }

    /// A recipe's argument for a request to `target`.
    fn given(&mut self, world: &mut World, target: u32, v: Val) -> Arg {
        match v {
            Val::I(i) => Arg::Int(i),
            Val::U(u) => Arg::Uint(u),
            Val::F(f) => Arg::Fixed(f),
            Val::S(s) => Arg::Str(Some(s.as_bytes().to_vec())),
            Val::Newest(name, back) => Arg::Object(world.newest(name, back).unwrap_or(0)),
            Val::EventUint(event) => Arg::Uint(
                world
                    .take_event_uint_on(target, event)
                    .or_else(|| world.event_uint(event))
                    .unwrap_or(0),
            ),
            Val::EventString(event) => Arg::Str(Some(
                world
                    .event_string(event)
                    .map_or_else(|| b"system".to_vec(), <[u8]>::to_vec),
            )),
            Val::ShmFd => Arg::Fd(self.fd_from(&self.fds.shm.clone(), true)),
            Val::DmabufFd => {
                let kinds = if self.fds.dmabuf.is_empty() {
                    self.fds.shm.clone()
                } else {
                    self.fds.dmabuf.clone()
                };
                Arg::Fd(self.fd_from(&kinds, false))
            }
        }
    }

    /// One of `indices` of the pool, or sometimes the scratch memfd when `scratch` allows.
    fn fd_from(&mut self, indices: &[usize], scratch: bool) -> FdRef {
        if (scratch && self.rng.percent(30)) || indices.is_empty() {
            return FdRef::Scratch;
        }
        FdRef::Pool(*self.rng.pick(indices).expect("non-empty"))
    }

    /// A generated argument of type `ty` (position `pos` of `desc`, sent to `target`).
    fn generated(
        &mut self,
        world: &mut World,
        target: u32,
        desc: &MessageDesc,
        pos: usize,
        ty: ArgumentType,
    ) -> Arg {
        // A gentle connection answers what the object last said (a configure or ping serial,
        // a pointer's enter serial).
        if self.gentle
            && ty == ArgumentType::Uint
            && self.rng.percent(80)
            && let Some(v) = world.take_last_uint_on(target)
        {
            return Arg::Uint(v);
        }
        let rng = &mut self.rng;
        match ty {
            ArgumentType::Int => Arg::Int(values::int(rng, self.gentle)),
            ArgumentType::Uint => Arg::Uint(values::uint(rng, world, self.gentle)),
            ArgumentType::Fixed => Arg::Fixed(values::fixed(rng, self.gentle)),
            ArgumentType::Str(_) => Arg::Str(Some(values::string(rng, self.gentle))),
            ArgumentType::Array => Arg::Array(values::array(rng)),
            ArgumentType::Fd if self.gentle => {
                let usable = [self.fds.shm.as_slice(), self.fds.dmabuf.as_slice()].concat();
                Arg::Fd(
                    usable
                        .get(rng.below(usable.len()))
                        .map_or(FdRef::Scratch, |i| FdRef::Pool(*i)),
                )
            }
            ArgumentType::Fd => Arg::Fd(values::fd(rng, self.fds.pool_len)),
            ArgumentType::NewId => Arg::NewId(world.allocate_id()),
            ArgumentType::Object(null) => {
                let candidates = match catalog::object_arg_interface(desc, pos) {
                    Some(want) => world.of(want.name),
                    None => vec![world.random(rng).0],
                };
                let nullable = null == AllowNull::Yes;
                match rng.pick(&candidates) {
                    Some(id) if !(nullable && rng.percent(15)) => Arg::Object(*id),
                    _ if nullable => Arg::Object(0),
                    _ => Arg::Object(world.random(rng).0),
                }
            }
        }
    }
}

/// Requests that give a role: to their first object argument (a surface) or, with `true`, to
/// their target (an xdg_surface becoming a toplevel or a popup).
const ROLE_REQUESTS: &[(&str, &str, bool)] = &[
    ("xdg_wm_base", "get_xdg_surface", false),
    ("wl_subcompositor", "get_subsurface", false),
    ("wl_pointer", "set_cursor", false),
    ("xdg_surface", "get_toplevel", true),
    ("xdg_surface", "get_popup", true),
];

/// The object `p` gives a role to, if it is a role-giving request (get_xdg_surface,
/// get_subsurface, set_cursor: their surface; get_toplevel, get_popup: their target).
pub fn gives_role(p: &Planned) -> Option<u32> {
    let (_, _, to_target) = ROLE_REQUESTS
        .iter()
        .find(|(i, r, _)| *i == p.interface && *r == p.request)?;
    if *to_target {
        Some(p.target)
    } else {
        p.object_args.first().copied()
    }
}

/// What identifies the object `p` creates among its kind: request, target and the objects it
/// names.
pub fn creation_key(p: &Planned) -> String {
    format!(
        "{}.{}@{}:{:?}",
        p.interface, p.request, p.target, p.object_args
    )
}

/// Every non-nullable object argument of `desc` has a live object of its interface.
fn satisfiable(world: &World, desc: &MessageDesc) -> bool {
    desc.signature.iter().enumerate().all(|(pos, ty)| {
        !matches!(ty, ArgumentType::Object(AllowNull::No))
            || catalog::object_arg_interface(desc, pos).is_none_or(|i| !world.of(i.name).is_empty())
    })
}

/// The objects `req`'s object arguments name (not null).
fn object_args(req: &Request) -> Vec<u32> {
    req.args
        .iter()
        .filter_map(|a| match a {
            Arg::Object(id) if *id != 0 => Some(*id),
            _ => None,
        })
        .collect()
}

/// `iface@id.request(args)` with the mutation's name in front.
fn describe(req: &Request, interface: &str, desc: &MessageDesc, m: Option<Mutation>) -> String {
    let args: Vec<String> = req.args.iter().map(wire::describe_arg).collect();
    let tag = m.map(|m| format!("[{m:?}] ")).unwrap_or_default();
    format!(
        "{tag}{interface}@{}.{}#{}({})",
        req.object,
        desc.name,
        req.opcode,
        args.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection's world after the registry announced compositor-demo's globals.
    fn world() -> World {
        let mut w = World::new();
        let id = w.allocate_id();
        w.insert(id, catalog::REGISTRY, 1);
        w.registry = Some(id);
        for (i, g) in catalog::GLOBALS.iter().enumerate() {
            w.globals.push(Global {
                name: i as u32 + 1,
                interface: g.name.to_owned(),
                version: g.version,
            });
        }
        w
    }

    fn lines(seed: u64) -> Vec<String> {
        let mut g = Generator::new(seed, FdKinds::default());
        let mut w = world();
        let mut out = Vec::new();
        for _ in 0..300 {
            match g.next(&mut w) {
                Action::Send(p) => {
                    for (id, iface, v) in &p.creates {
                        w.insert(*id, iface, *v);
                    }
                    if let Some(id) = p.destroys {
                        w.remove(id);
                    }
                    out.push(p.line);
                }
                Action::ShrinkScratch(n) => out.push(format!("shrink {n}")),
            }
        }
        out
    }

    #[test]
    fn the_same_seed_generates_the_same_connection() {
        assert_eq!(lines(5), lines(5));
        assert_ne!(lines(5), lines(6));
    }

    #[test]
    fn a_run_of_connections_binds_every_global_and_mutates_some_messages() {
        let all: Vec<String> = (0..40).flat_map(lines).collect();
        for g in catalog::GLOBALS {
            let bind = format!("\"{}\"", g.name);
            assert!(
                all.iter().any(|l| l.contains(&bind)),
                "{} never bound",
                g.name
            );
        }
        assert!(all.iter().any(|l| l.starts_with('[')), "no mutation");
        let mutated = all.iter().filter(|l| l.starts_with('[')).count();
        assert!(mutated * 3 < all.len(), "most messages are well-shaped");
    }
}
