//! The real-kernel tier, seen from the host: build the `guest_*` test binaries, boot each kernel
//! of the matrix once under qemu (the current one with every binary, 5.10 with the core ones:
//! [`BSP_BINARIES`]), run them inside, and assert every in-guest result here.
//!
//! It never passes by skipping: if qemu or the kernel cannot be provisioned it fails and says what
//! to do. `WAYHEAP_SKIP_VM=1` is the only way around it, and it prints a banner saying so.

use std::process::ExitCode;
use std::time::Instant;

use wayheap_tests::libtest::Outcome;
use wayheap_tests::vm::{self, BatchReport, GuestBinary, KernelSeries, Vm};

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

/// The binaries the matrix's 5.10 kernel runs: the core of the library (heaps, ION, export,
/// pool, V4L2 and vivid, the devices, writeback). The compositor's tests need vkms overlay planes
/// and sync_file export, which 5.10 does not have.
const BSP_BINARIES: &[&str] = &[
    "guest_devices",
    "guest_export",
    "guest_heaps",
    "guest_ion",
    "guest_kms_writeback",
    "guest_pool",
    "guest_v4l2",
    "guest_vivid",
];

fn run() -> Result<(), String> {
    let tier_start = Instant::now();
    // For iterating on one kernel: WAYHEAP_VM_SERIES=5.10 (or current) boots only that one.
    let series: Vec<KernelSeries> = [KernelSeries::Current, KernelSeries::Bsp510]
        .into_iter()
        .filter(|s| std::env::var("WAYHEAP_VM_SERIES").map_or(true, |only| only == s.name()))
        .collect();
    if std::env::var_os("WAYHEAP_VM_SERIES").is_some() {
        eprintln!("vm_tier: PARTIAL RUN, only the {:?} kernel", series);
    }
    let kernels = series
        .iter()
        .map(|&s| {
            vm::kernel(s)
                .map(|k| (s, k))
                .map_err(|e| format!("cannot provision the {} test kernel: {e}", s.name()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut bins = vm::build_guest_tests()?;
    // For iterating on one area: WAYHEAP_VM_ONLY=guest_compositor,guest_v4l2 runs only the
    // binaries whose names contain one of the words.
    if let Ok(only) = std::env::var("WAYHEAP_VM_ONLY") {
        bins.retain(|b| only.split(',').any(|o| b.name.contains(o)));
        eprintln!("vm_tier: PARTIAL RUN, only binaries matching {only:?}");
    }
    let programs = vm::build_guest_programs()?;

    let mut passed = 0usize;
    let mut problems = Vec::new();
    for (series, kernel) in kernels {
        let batch: Vec<GuestBinary> = bins
            .iter()
            .filter(|b| series == KernelSeries::Current || BSP_BINARIES.contains(&b.name.as_str()))
            .cloned()
            .collect();
        if batch.is_empty() {
            continue;
        }
        eprintln!(
            "vm_tier: booting the {} kernel {} with {} guest test binaries ({})",
            series.name(),
            kernel.display(),
            batch.len(),
            batch
                .iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut vm = Vm::new(kernel);
        vm.label = series.name().to_owned();
        let report = vm
            .run_batch(&batch, &programs)
            .map_err(|e| format!("on the {} kernel: {e}", series.name()))?;
        let (ok, mut not_ok) = print_report(series, &report);
        passed += ok;
        problems.append(&mut not_ok);
    }
    println!(
        "\nwhole tier (kernel checks + builds + boots + tests): {:.1}s",
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

/// Prints one kernel's results; returns the passed count and the problems, named with the kernel.
fn print_report(series: KernelSeries, report: &BatchReport) -> (usize, Vec<String>) {
    let tag = series.name();
    println!("\nVM tier on kernel {} ({tag})", report.kernel_release);
    let mut passed = 0usize;
    let mut problems = Vec::new();
    for bin in &report.binaries {
        for t in &bin.tests {
            let verdict = match t.outcome {
                Outcome::Passed => "ok",
                Outcome::Failed => "FAILED",
                Outcome::Ignored => "IGNORED (a defect: ignored tests prove nothing)",
            };
            println!("test [{tag}] {}::{} ... {verdict}", bin.name, t.name);
            match t.outcome {
                Outcome::Passed => passed += 1,
                _ => problems.push(format!("[{tag}] {}::{} {verdict}", bin.name, t.name)),
            }
        }
        let expected = announced_count(&bin.output);
        if bin.status != Some(0) {
            problems.push(format!("[{tag}] {} exited with {:?}", bin.name, bin.status));
        }
        if bin.tests.is_empty() {
            problems.push(format!("[{tag}] {} ran no test", bin.name));
        }
        if expected != Some(bin.tests.len()) {
            problems.push(format!(
                "[{tag}] {} announced {expected:?} tests but reported {} results",
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
            println!("---- [{tag}] {} output ----\n{}", bin.name, bin.output);
        }
    }
    if !report.facts.is_empty() {
        println!("\nguest facts ({tag}):");
        for line in report.facts.lines() {
            println!("  {line}");
        }
    }
    // A binary that hung was killed and run again: its second run's results are the ones above;
    // the hang itself is said, every time, for the record.
    for hung in &report.hung {
        println!(
            "\n##  [{tag}] HUNG, killed and run again: {hung}\n##  (its first output is in {}.hung.out)",
            hung.split(':').next().unwrap_or_default()
        );
    }
    let boot = report
        .boot_to_first_test
        .map_or("never".to_owned(), |d| format!("{:.1}s", d.as_secs_f64()));
    println!(
        "\n[{tag}] boot to first test: {boot}; guest run: {:.1}s",
        report.total.as_secs_f64(),
    );
    (passed, problems)
}

/// libtest's "running N tests" line.
fn announced_count(output: &str) -> Option<usize> {
    output.lines().find_map(|l| {
        let rest = l.strip_prefix("running ")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}
