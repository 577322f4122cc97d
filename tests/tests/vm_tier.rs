//! The real-kernel tier, seen from the host: build the `guest_*` test binaries, boot the test
//! kernel once under qemu, run them all inside, and assert every in-guest result here.
//!
//! It never passes by skipping: if qemu or the kernel cannot be provisioned it fails and says what
//! to do. `WAYHEAP_SKIP_VM=1` is the only way around it, and it prints a banner saying so.

use std::process::ExitCode;
use std::time::Instant;

use wayheap_tests::libtest::Outcome;
use wayheap_tests::vm::{self, Vm};

fn main() -> ExitCode {
    // libtest's flags (cargo test passes e.g. --quiet or a filter) are accepted and ignored: the
    // tier is one unit.
    if std::env::var_os(vm::SKIP_ENV).is_some_and(|v| v == "1") {
        eprintln!("\n{}", "#".repeat(78));
        eprintln!(
            "##  VM TIER SKIPPED ({}=1): no kernel path was tested in this run.",
            vm::SKIP_ENV
        );
        eprintln!("##  Heaps, udmabuf, KMS planes, writeback and V4L2 are UNTESTED.");
        eprintln!("{}\n", "#".repeat(78));
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!(
                "\nvm_tier FAILED: {msg}\n(set {}=1 to skip the VM tier explicitly)",
                vm::SKIP_ENV
            );
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let tier_start = Instant::now();
    let kernel = vm::kernel().map_err(|e| format!("cannot provision the test kernel: {e}"))?;
    let mut bins = vm::build_guest_tests()?;
    // For iterating on one area: WAYHEAP_VM_ONLY=guest_compositor,guest_v4l2 runs only the
    // binaries whose names contain one of the words.
    if let Ok(only) = std::env::var("WAYHEAP_VM_ONLY") {
        bins.retain(|b| only.split(',').any(|o| b.name.contains(o)));
        eprintln!("vm_tier: PARTIAL RUN, only binaries matching {only:?}");
    }
    let programs = vm::build_guest_programs()?;
    eprintln!(
        "vm_tier: booting {} with {} guest test binaries ({})",
        kernel.display(),
        bins.len(),
        bins.iter()
            .map(|b| b.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let report = Vm::new(kernel).run_batch(&bins, &programs)?;

    println!("\nVM tier on kernel {}", report.kernel_release);
    let mut passed = 0usize;
    let mut problems = Vec::new();
    for bin in &report.binaries {
        for t in &bin.tests {
            let verdict = match t.outcome {
                Outcome::Passed => "ok",
                Outcome::Failed => "FAILED",
                Outcome::Ignored => "IGNORED (a defect: ignored tests prove nothing)",
            };
            println!("test {}::{} ... {verdict}", bin.name, t.name);
            match t.outcome {
                Outcome::Passed => passed += 1,
                _ => problems.push(format!("{}::{} {verdict}", bin.name, t.name)),
            }
        }
        let expected = announced_count(&bin.output);
        if bin.status != Some(0) {
            problems.push(format!("{} exited with {:?}", bin.name, bin.status));
        }
        if bin.tests.is_empty() {
            problems.push(format!("{} ran no test", bin.name));
        }
        if expected != Some(bin.tests.len()) {
            problems.push(format!(
                "{} announced {expected:?} tests but reported {} results",
                bin.name,
                bin.tests.len()
            ));
        }
        let ok = bin
            .tests
            .iter()
            .filter(|t| t.outcome == Outcome::Passed)
            .count();
        println!(
            "{}: {ok} passed, {} not passed",
            bin.name,
            bin.tests.len() - ok
        );
        if bin.status != Some(0) || bin.tests.iter().any(|t| t.outcome != Outcome::Passed) {
            println!("---- {} output ----\n{}", bin.name, bin.output);
        }
    }
    if !report.facts.is_empty() {
        println!("\nguest facts:");
        for line in report.facts.lines() {
            println!("  {line}");
        }
    }
    let boot = report
        .boot_to_first_test
        .map_or("never".to_owned(), |d| format!("{:.1}s", d.as_secs_f64()));
    println!(
        "\nboot to first test: {boot}; guest run: {:.1}s; whole tier (kernel check + build + boot + tests): {:.1}s",
        report.total.as_secs_f64(),
        tier_start.elapsed().as_secs_f64()
    );
    println!(
        "test result: {}. {passed} passed; {} failed; 0 ignored; 0 measured; 0 filtered out; finished in {:.2}s\n",
        if problems.is_empty() { "ok" } else { "FAILED" },
        problems.len(),
        tier_start.elapsed().as_secs_f64()
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("in-guest failures:\n  {}", problems.join("\n  ")))
    }
}

/// libtest's "running N tests" line.
fn announced_count(output: &str) -> Option<usize> {
    output.lines().find_map(|l| {
        let rest = l.strip_prefix("running ")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}
