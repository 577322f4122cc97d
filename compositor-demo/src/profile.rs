//! Where the compositor's CPU goes: thread CPU time per section of the frame path (client
//! dispatch, element collection, plane assignment, placement, feedback, commit, state file),
//! summed over the run and reported in the state file (`cpu_us`), so a benchmark can say which
//! part of a frame costs what.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use rustix::time::{ClockId, clock_gettime};

thread_local! {
    static SECTIONS: RefCell<BTreeMap<&'static str, (Duration, u64)>> =
        const { RefCell::new(BTreeMap::new()) };
}

fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Runs `f`, adding the CPU time it took to section `name` (nested sections count in both).
pub fn section<T>(name: &'static str, f: impl FnOnce() -> T) -> T {
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

/// Every section so far: `{name: {"us": total microseconds, "calls": n}}`.
pub fn json() -> serde_json::Value {
    SECTIONS.with(|s| {
        s.borrow()
            .iter()
            .map(|(name, (spent, calls))| {
                (
                    (*name).to_owned(),
                    serde_json::json!({"us": spent.as_micros() as u64, "calls": calls}),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    })
}
