//! Where the compositor's CPU goes (`--cpu-profile`): thread CPU time per section of the frame
//! path (client dispatch, element collection, plane assignment, placement, feedback, commit,
//! state file), summed over the run and reported in the state file (`cpu_us`), so a benchmark
//! can say which part of a frame costs what. Off, a section is a plain call: the clock reads
//! are syscalls, not to be paid on every frame of every run.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::time::{ClockId, clock_gettime};

thread_local! {
    static SECTIONS: RefCell<BTreeMap<&'static str, (Duration, u64)>> =
        const { RefCell::new(BTreeMap::new()) };
}

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns the measurement on or off (once, at start).
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Runs `f`, adding the CPU time it took to section `name` (nested sections count in both).
pub fn section<T>(name: &'static str, f: impl FnOnce() -> T) -> T {
    if !ENABLED.load(Ordering::Relaxed) {
        return f();
    }
    let start = thread_cpu();
    let out = f();
    let spent = thread_cpu().saturating_sub(start);
    SECTIONS.with(|s| {
        let mut s = s.borrow_mut();
        let entry = s.entry(name).or_default();
        entry.0 += spent;
        entry.1 += 1;
    });
    out
}

/// Every section so far: `{name: {"us": total microseconds, "calls": n}}`; `None` when off.
pub fn json() -> Option<serde_json::Value> {
    if !ENABLED.load(Ordering::Relaxed) {
        return None;
    }
    let sections = SECTIONS.with(|s| {
        s.borrow()
            .iter()
            .map(|(name, (spent, calls))| {
                (
                    (*name).to_owned(),
                    serde_json::json!({"us": spent.as_micros() as u64, "calls": calls}),
                )
            })
            .collect::<serde_json::Map<_, _>>()
    });
    Some(sections.into())
}
