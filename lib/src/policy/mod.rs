//! Choosing where a buffer comes from: a policy file maps each usage to an ordered list of
//! providers, and allocation walks that list, falling back when a provider is absent, forbidden
//! or full, and recording which one served and why the others did not.
//!
//! This is the idea of Android's `dma_heap.json`/gralloc heap maps, done for a mainline system:
//! heaps are named by class (`@cma` finds the CMA heap under whatever name this kernel gives it),
//! `udmabuf` is a provider like a heap (memfd memory exported), and constraints — contiguous,
//! below 4 GiB, uncached preferred, pitch/offset alignment, the modifiers the consumers take —
//! are checked against each provider before anything is allocated.
//!
//! ## The policy file
//!
//! One rule per line, `#` starts a comment:
//!
//! ```text
//! # usage     providers, in order            options
//! scanout     @cma,@system,udmabuf
//! camera      @cma,udmabuf                   contiguous
//! *           @system,udmabuf                # any other usage
//! # Heaps named after device-tree regions: say what they are.
//! heap  video-region  contiguous,cached,dma32
//! ```
//!
//! Providers: a heap's name (`system`; in double quotes when it has a comma: `"linux,cma"`,
//! `"mtk,secure"`), an ION heap's name after `ion:` (`ion:ion_system_heap`, `ion:reserved`; see
//! [`crate::ion`]), a class (`@system`, `@system-uncached`, `@cma`, `@vendor`, `@contiguous`,
//! `@carveout`) or `udmabuf`. A class takes the DMA-BUF heaps of the class, then the ION heaps of
//! it, so one policy serves a 5.10 BSP kernel with ION and a mainline one without. Options: `contiguous`, `uncached` (prefer),
//! `dma32`, `align=N` (stride), `offset-align=N`. The file comes from `$WAYHEAP_POLICY`, or the
//! API ([`Policy::load`]); without one, [`DEFAULT_POLICY`] applies.
//!
//! ## How to use
//!
//! ```no_run
//! use wayheap::policy::{Allocator, Constraints};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let alloc = Allocator::from_env()?; // $WAYHEAP_POLICY or the default policy, /dev/dma_heap
//! let a = alloc.allocate("camera", 640 * 480 * 2, &Constraints { contiguous: true, ..Default::default() })?;
//! println!("served by {}; skipped: {:?}", a.provider, a.skipped);
//! # Ok(())
//! # }
//! ```

mod walk;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::heap::{HeapInfo, HeapKind, HeapProperties};
use crate::ion::{ION_PREFIX, IonHeapInfo};
pub use walk::{AllocError, Allocation, Allocator, Skip, SkipReason};

/// The environment variable naming a policy file.
pub const POLICY_ENV: &str = "WAYHEAP_POLICY";

/// The policy used when no file is given.
pub const DEFAULT_POLICY: &str = "\
# wayheap's default policy.
# Display and camera engines often need physically contiguous memory: CMA first for them.
scanout   @cma,@system,udmabuf
camera    @cma,@system,udmabuf
cursor    @system,@cma,udmabuf
# Everything else: ordinary pages; udmabuf where heap nodes are not accessible.
*         @system,udmabuf
";

/// The DRM modifiers, which belong to [`crate::layout`]; re-exported here, their former home, for
/// compatibility.
pub use crate::layout::{MODIFIER_INVALID, MODIFIER_LINEAR};

/// A place buffers come from, as the policy names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// A heap by name.
    Heap(String),
    /// Any heap of a class.
    Class(HeapClass),
    /// memfd memory exported through `/dev/udmabuf`.
    Udmabuf,
    /// An ION heap by name (`ion:NAME` in the file; the name without the prefix here).
    Ion(String),
}

/// Classes of heaps a policy can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeapClass {
    /// `@system`.
    System,
    /// `@system-uncached`.
    SystemUncached,
    /// `@cma`.
    Cma,
    /// `@vendor`: any `vendor,name` heap.
    Vendor,
    /// `@contiguous`: any heap whose memory is physically contiguous.
    Contiguous,
    /// `@carveout`: a region reserved at boot (ION's carveout and chunk heaps).
    Carveout,
}

impl HeapClass {
    fn matches(self, kind: &HeapKind, props: &HeapProperties) -> bool {
        match self {
            HeapClass::System => *kind == HeapKind::System,
            HeapClass::SystemUncached => *kind == HeapKind::SystemUncached,
            HeapClass::Cma => *kind == HeapKind::Cma,
            HeapClass::Vendor => matches!(kind, HeapKind::Vendor { .. }),
            HeapClass::Contiguous => props.contiguous,
            HeapClass::Carveout => *kind == HeapKind::Carveout,
        }
    }
}

/// What the buffer must be. The policy's options for a usage are merged with the caller's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Constraints {
    /// Physically contiguous (a device without an IOMMU will DMA from it).
    pub contiguous: bool,
    /// Prefer memory the CPU does not cache (write-combined scanout buffers written once).
    pub prefer_uncached: bool,
    /// Every byte below this address (`Some(0xffff_ffff)`: a 32-bit DMA engine).
    pub max_address: Option<u64>,
    /// Stride alignment the consumer needs (bytes, power of two).
    pub pitch_align: Option<u32>,
    /// Plane offset alignment the consumer needs.
    pub offset_align: Option<u32>,
    /// The modifiers every consumer accepts for the format (`None`: not restricted). Heap and
    /// udmabuf buffers are LINEAR, so the set must contain [`crate::layout::MODIFIER_LINEAR`].
    pub modifiers: Option<Vec<u64>>,
}

impl Constraints {
    fn merged(&self, other: &Constraints) -> Constraints {
        Constraints {
            contiguous: self.contiguous || other.contiguous,
            prefer_uncached: self.prefer_uncached || other.prefer_uncached,
            max_address: match (self.max_address, other.max_address) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            pitch_align: max_opt(self.pitch_align, other.pitch_align),
            offset_align: max_opt(self.offset_align, other.offset_align),
            modifiers: self.modifiers.clone().or_else(|| other.modifiers.clone()),
        }
    }
}

fn max_opt(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// One usage's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRule {
    /// The usage (`*` for every usage without a rule).
    pub usage: String,
    /// Providers, best first.
    pub providers: Vec<Provider>,
    /// Constraints every allocation for the usage has.
    pub constraints: Constraints,
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<UsageRule>,
    heaps: HashMap<String, (HeapKind, HeapProperties)>,
}

/// A policy file that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A line is wrong.
    #[error("{source_name}:{line}: {message}")]
    Syntax {
        /// The file (or `<default>`, `<string>`).
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The file cannot be read; why is the [`source`](std::error::Error::source).
    #[error("reading policy file {} failed", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl Default for Policy {
    fn default() -> Self {
        Policy::parse_named(DEFAULT_POLICY, "<default>").expect("the default policy parses")
    }
}

/// A candidate the walk will try, resolved against the heaps that exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Candidate {
    Heap {
        name: String,
        properties: HeapProperties,
    },
    Udmabuf,
    /// An ION heap; `provider` is its `ion:NAME`, `properties.cached` the flag to allocate with.
    Ion {
        provider: String,
        heap: IonHeapInfo,
        properties: HeapProperties,
    },
}

/// What ION offers on this system, for [`Policy::candidates`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum IonInventory {
    /// No `/dev/ion` (every mainline kernel since 5.11).
    #[default]
    Absent,
    /// `/dev/ion` is there but cannot be used; why.
    Unusable(SkipReason),
    /// Its heaps.
    Heaps(Vec<IonHeapInfo>),
}

impl Candidate {
    pub(crate) fn name(&self) -> &str {
        match self {
            Candidate::Heap { name, .. } => name,
            Candidate::Udmabuf => "udmabuf",
            Candidate::Ion { provider, .. } => provider,
        }
    }

    fn properties(&self) -> HeapProperties {
        match self {
            Candidate::Heap { properties, .. } | Candidate::Ion { properties, .. } => *properties,
            // memfd pages: scattered, cached, anywhere in memory.
            Candidate::Udmabuf => HeapProperties {
                contiguous: false,
                cached: true,
                dma32: false,
            },
        }
    }
}

impl Policy {
    /// Parses policy text.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        Self::parse_named(text, "<string>")
    }

    /// Reads and parses a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse_named(&text, &path.display().to_string())
    }

    /// The file named by `$WAYHEAP_POLICY`, else the default policy.
    pub fn from_env() -> Result<Policy, PolicyError> {
        match std::env::var_os(POLICY_ENV) {
            Some(path) => Self::load(Path::new(&path)),
            None => Ok(Policy::default()),
        }
    }

    fn parse_named(text: &str, source_name: &str) -> Result<Policy, PolicyError> {
        let mut rules = Vec::new();
        let mut heaps = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let err = |message: String| PolicyError::Syntax {
                source_name: source_name.to_owned(),
                line: i + 1,
                message,
            };
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields[0] == "heap" {
                let [_, name, props] = fields[..] else {
                    return Err(err("expected `heap NAME PROPERTIES` (e.g. `heap video-region contiguous,cached`)".into()));
                };
                let name = unquoted(name);
                heaps.insert(name.to_owned(), parse_heap_props(name, props).map_err(err)?);
                continue;
            }
            if !(2..=3).contains(&fields.len()) {
                return Err(err(
                    "expected `USAGE PROVIDERS [OPTIONS]`, with no spaces inside the comma lists"
                        .into(),
                ));
            }
            let providers = split_list(fields[1])
                .map_err(err)?
                .into_iter()
                .filter(|p| !p.is_empty())
                .map(parse_provider)
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            if providers.is_empty() {
                return Err(err(format!("usage {} lists no provider", fields[0])));
            }
            let constraints = match fields.get(2) {
                Some(opts) => parse_options(opts).map_err(err)?,
                None => Constraints::default(),
            };
            if rules.iter().any(|r: &UsageRule| r.usage == fields[0]) {
                return Err(err(format!("usage {} has a rule already", fields[0])));
            }
            rules.push(UsageRule {
                usage: fields[0].to_owned(),
                providers,
                constraints,
            });
        }
        Ok(Policy { rules, heaps })
    }

    /// The rule for `usage`: its own, else `*`'s, else system-then-udmabuf.
    pub fn rule(&self, usage: &str) -> UsageRule {
        self.rules
            .iter()
            .find(|r| r.usage == usage)
            .or_else(|| self.rules.iter().find(|r| r.usage == "*"))
            .cloned()
            .unwrap_or_else(|| UsageRule {
                usage: usage.to_owned(),
                providers: vec![Provider::Class(HeapClass::System), Provider::Udmabuf],
                constraints: Constraints::default(),
            })
    }

    /// This policy with heap `heap` tried first for `usage`, before the providers its rule
    /// already lists (kept, in order, as fallbacks), and with `constraints` merged into the
    /// rule's: where a compositor's heap hint sends the usage.
    pub fn with_heap_first(mut self, usage: &str, heap: &str, constraints: &Constraints) -> Policy {
        let mut rule = self.rule(usage);
        rule.usage = usage.to_owned();
        rule.providers
            .retain(|p| !matches!(p, Provider::Heap(name) if name == heap));
        rule.providers.insert(0, Provider::Heap(heap.to_owned()));
        rule.constraints = rule.constraints.merged(constraints);
        self.rules.retain(|r| r.usage != usage);
        self.rules.push(rule);
        self
    }

    /// Every rule, in file order.
    pub fn rules(&self) -> &[UsageRule] {
        &self.rules
    }

    /// What a heap is: the policy's `heap` line if it has one, else [`crate::heap::classify`].
    pub fn classify(&self, name: &str) -> (HeapKind, HeapProperties) {
        self.heaps
            .get(name)
            .cloned()
            .unwrap_or_else(|| crate::heap::classify(name))
    }

    /// What an ION heap is: the policy's `heap ion:NAME` line if it has one, else its type's.
    pub fn classify_ion(&self, heap: &IonHeapInfo) -> (HeapKind, HeapProperties) {
        self.heaps
            .get(&heap.provider_name())
            .cloned()
            .unwrap_or_else(|| (heap.kind.clone(), heap.properties))
    }

    /// Resolves `usage` against the DMA-BUF heaps present (no ION): see [`Self::candidates_with_ion`].
    #[cfg(test)]
    pub(crate) fn candidates(
        &self,
        usage: &str,
        caller: &Constraints,
        heaps: &[HeapInfo],
    ) -> (Vec<Candidate>, Vec<Skip>, Constraints) {
        self.candidates_with_ion(usage, caller, heaps, &IonInventory::Absent)
    }

    /// Resolves `usage` against the heaps present, DMA-BUF heaps and ION's: the candidates to try
    /// in order, and the providers left out before trying (absent, or failing a constraint).
    pub(crate) fn candidates_with_ion(
        &self,
        usage: &str,
        caller: &Constraints,
        heaps: &[HeapInfo],
        ion: &IonInventory,
    ) -> (Vec<Candidate>, Vec<Skip>, Constraints) {
        let rule = self.rule(usage);
        let constraints = caller.merged(&rule.constraints);
        let mut out: Vec<Candidate> = Vec::new();
        let mut skipped = Vec::new();
        let mut seen_cma_pool = false;
        for provider in &rule.providers {
            let mut found: Vec<Candidate> = Vec::new();
            match provider {
                Provider::Udmabuf => found.push(Candidate::Udmabuf),
                Provider::Ion(name) => match ion {
                    IonInventory::Heaps(list) => match list.iter().find(|h| &h.name == name) {
                        Some(h) => found.push(self.ion_candidate(h, &constraints)),
                        None => skipped.push(Skip {
                            provider: format!("{ION_PREFIX}{name}"),
                            reason: SkipReason::Absent,
                        }),
                    },
                    IonInventory::Absent => skipped.push(Skip {
                        provider: format!("{ION_PREFIX}{name}"),
                        reason: SkipReason::Absent,
                    }),
                    IonInventory::Unusable(reason) => skipped.push(Skip {
                        provider: format!("{ION_PREFIX}{name}"),
                        reason: reason.clone(),
                    }),
                },
                Provider::Heap(name) => match heaps.iter().find(|h| &h.name == name) {
                    Some(h) => found.push(Candidate::Heap {
                        name: h.name.clone(),
                        properties: self.classify(&h.name).1,
                    }),
                    None => skipped.push(Skip {
                        provider: name.clone(),
                        reason: SkipReason::Absent,
                    }),
                },
                Provider::Class(class) => {
                    // Best CMA name first; on 6.16+ one CMA pool shows under two names, try it once.
                    let mut matching: Vec<&HeapInfo> = heaps
                        .iter()
                        .filter(|h| {
                            let (kind, props) = self.classify(&h.name);
                            class.matches(&kind, &props)
                        })
                        .collect();
                    matching.sort_by_key(|h| {
                        crate::heap::CMA_HEAP_NAMES
                            .iter()
                            .position(|n| *n == h.name)
                            .unwrap_or(usize::MAX)
                    });
                    for h in matching {
                        let is_default_cma = crate::heap::CMA_HEAP_NAMES.contains(&h.name.as_str());
                        if is_default_cma && seen_cma_pool {
                            continue;
                        }
                        seen_cma_pool |= is_default_cma;
                        found.push(Candidate::Heap {
                            name: h.name.clone(),
                            properties: self.classify(&h.name).1,
                        });
                    }
                    // Then ION's heaps of the class, in ION's priority order.
                    if let IonInventory::Heaps(list) = ion {
                        for h in list {
                            let (kind, props) = self.classify_ion(h);
                            if class.matches(&kind, &props) {
                                found.push(self.ion_candidate(h, &constraints));
                            }
                        }
                    }
                    if found.is_empty() {
                        skipped.push(Skip {
                            provider: class_name(*class).to_owned(),
                            reason: SkipReason::Absent,
                        });
                    }
                }
            }
            for c in found {
                if out.contains(&c) {
                    continue;
                }
                match failed_constraint(&c.properties(), &constraints) {
                    Some(what) => skipped.push(Skip {
                        provider: c.name().to_owned(),
                        reason: SkipReason::Constraint(what),
                    }),
                    None => out.push(c),
                }
            }
        }
        if constraints.prefer_uncached {
            // Stable: uncached ones first, the policy's order otherwise.
            out.sort_by_key(|c| c.properties().cached);
        }
        (out, skipped, constraints)
    }

    /// An ION heap as a candidate: ION caches per allocation, so it serves `prefer_uncached`
    /// with an uncached (write-combined) buffer.
    fn ion_candidate(&self, heap: &IonHeapInfo, constraints: &Constraints) -> Candidate {
        let (_, mut properties) = self.classify_ion(heap);
        properties.cached = !constraints.prefer_uncached;
        Candidate::Ion {
            provider: heap.provider_name(),
            heap: heap.clone(),
            properties,
        }
    }
}

fn class_name(c: HeapClass) -> &'static str {
    match c {
        HeapClass::System => "@system",
        HeapClass::SystemUncached => "@system-uncached",
        HeapClass::Cma => "@cma",
        HeapClass::Vendor => "@vendor",
        HeapClass::Contiguous => "@contiguous",
        HeapClass::Carveout => "@carveout",
    }
}

/// The first constraint `props` fails, named.
fn failed_constraint(props: &HeapProperties, c: &Constraints) -> Option<&'static str> {
    if c.contiguous && !props.contiguous {
        return Some("contiguous");
    }
    if c.max_address.is_some_and(|a| a <= 0xffff_ffff) && !props.dma32 {
        return Some("max_address (DMA32)");
    }
    None
}

/// Splits a provider list at commas; a name in double quotes may contain commas (vendor heaps and
/// device-tree regions: `"linux,cma"`).
fn split_list(list: &str) -> Result<Vec<&str>, String> {
    let mut items = Vec::new();
    let mut rest = list;
    loop {
        let (item, next) = match rest.strip_prefix('"') {
            Some(quoted) => {
                let (item, after) = quoted
                    .split_once('"')
                    .ok_or_else(|| format!("unterminated quote in {list}"))?;
                match after.strip_prefix(',') {
                    Some(next) => (item, Some(next)),
                    None if after.is_empty() => (item, None),
                    None => return Err(format!("expected a comma after the quoted \"{item}\"")),
                }
            }
            None => match rest.split_once(',') {
                Some((item, next)) => (item, Some(next)),
                None => (rest, None),
            },
        };
        items.push(item);
        match next {
            Some(next) => rest = next,
            None => return Ok(items),
        }
    }
}

/// A `heap` line's name, without the double quotes it may have.
fn unquoted(name: &str) -> &str {
    name.strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(name)
}

fn parse_provider(token: &str) -> Result<Provider, String> {
    Ok(match token {
        "udmabuf" => Provider::Udmabuf,
        "@system" => Provider::Class(HeapClass::System),
        "@system-uncached" => Provider::Class(HeapClass::SystemUncached),
        "@cma" => Provider::Class(HeapClass::Cma),
        "@vendor" => Provider::Class(HeapClass::Vendor),
        "@contiguous" => Provider::Class(HeapClass::Contiguous),
        "@carveout" => Provider::Class(HeapClass::Carveout),
        t if t.starts_with('@') => {
            return Err(format!(
                "unknown heap class {t} (classes: @system, @system-uncached, @cma, @vendor, @contiguous, @carveout)"
            ));
        }
        t if t.starts_with(ION_PREFIX) => match &t[ION_PREFIX.len()..] {
            "" => return Err("ion: needs a heap name (ion:ion_system_heap, ion:reserved)".into()),
            name => Provider::Ion(name.to_owned()),
        },
        t => Provider::Heap(t.to_owned()),
    })
}

fn parse_align(key: &str, v: &str) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(n) if n.is_power_of_two() => Ok(n),
        _ => Err(format!("{key}={v}: expected a power of two")),
    }
}

fn parse_options(opts: &str) -> Result<Constraints, String> {
    let mut c = Constraints::default();
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        match opt.split_once('=') {
            None if opt == "contiguous" => c.contiguous = true,
            None if opt == "uncached" => c.prefer_uncached = true,
            None if opt == "dma32" => c.max_address = Some(0xffff_ffff),
            Some(("align", v)) => c.pitch_align = Some(parse_align("align", v)?),
            Some(("offset-align", v)) => c.offset_align = Some(parse_align("offset-align", v)?),
            _ => {
                return Err(format!(
                    "unknown option {opt} (options: contiguous, uncached, dma32, align=N, offset-align=N)"
                ));
            }
        }
    }
    Ok(c)
}

fn parse_heap_props(name: &str, props: &str) -> Result<(HeapKind, HeapProperties), String> {
    let (mut kind, mut p) = crate::heap::classify(name);
    for prop in props.split(',').filter(|o| !o.is_empty()) {
        match prop {
            "contiguous" => p.contiguous = true,
            "scattered" => p.contiguous = false,
            "cached" => p.cached = true,
            "uncached" => p.cached = false,
            "dma32" => p.dma32 = true,
            "cma" => {
                kind = HeapKind::Cma;
                p.contiguous = true;
            }
            "system" => kind = HeapKind::System,
            "system-uncached" => {
                kind = HeapKind::SystemUncached;
                p.cached = false;
            }
            _ => {
                return Err(format!(
                    "unknown heap property {prop} (contiguous, scattered, cached, uncached, dma32, cma, system, system-uncached)"
                ));
            }
        }
    }
    Ok((kind, p))
}

#[cfg(test)]
mod tests;
