//! `wayheap-fuzz`: a structure-aware Wayland fuzzer (see the `wayheap_tests::fuzz` module for
//! what it sends and how it detects crashes and stalls).
//!
//! Usage: `wayheap-fuzz [--seed N] [--connections N | --duration SECS] [--pid PID] [--json]`;
//! `--help` lists every option. Exits 0 when the compositor neither crashed nor stalled, 1 when
//! it did, 2 on bad arguments.

use std::process::ExitCode;

use wayheap_tests::fuzz::{Config, config::USAGE, run};

fn main() -> ExitCode {
    let cfg = match Config::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("wayheap-fuzz: {e}");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let summary = match run(&cfg, &mut |line| eprintln!("{line}")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wayheap-fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    if cfg.json {
        println!("{}", summary.json());
    } else {
        println!("{}", summary.line());
    }
    if summary.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
