//! Helpers for tests that run inside the VM tier's guest.

/// Set to `1` by the guest's run script; nothing else sets it.
pub const GUEST_ENV: &str = "WAYHEAP_GUEST";

/// True inside the VM tier's guest.
pub fn in_guest() -> bool {
    std::env::var_os(GUEST_ENV).is_some_and(|v| v == "1")
}

/// Panics unless running inside the VM tier's guest.
///
/// In-guest tests exercise real kernel interfaces (/dev/dma_heap, /dev/udmabuf, vkms, vivid) that
/// development machines do not have; run anywhere else they must fail, never pass by skipping.
pub fn require_guest() {
    assert!(
        in_guest(),
        "this test runs only inside the VM tier's guest kernel; run `cargo test -p wayheap-tests \
         --test vm_tier` (or scripts/test), which boots the guest and runs it there"
    );
}

/// Where the VM tier collects results; set by the guest's run script.
pub const RESULTS_ENV: &str = "WAYHEAP_RESULTS";

/// Records a fact about the guest kernel (e.g. the CMA heap's name) for the host's summary.
///
/// Facts are appended to `facts.txt` in the results share as `key: value` lines.
pub fn record_fact(key: &str, value: impl std::fmt::Display) {
    use std::io::Write;
    let Some(dir) = std::env::var_os(RESULTS_ENV) else {
        return;
    };
    let path = std::path::Path::new(&dir).join("facts.txt");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    writeln!(f, "{key}: {value}").unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}
