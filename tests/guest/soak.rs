//! In-guest soak: clients of every kind the tier has — the test client (shm, system-heap, CMA and
//! udmabuf buffers), client-demo, Weston's clients — started and SIGKILLed at random points
//! against compositor-demo on vkms, while a bystander keeps presenting. Afterwards the compositor
//! must hold what it held before: its fds, its dma-bufs (fdinfo), the live DRM framebuffers,
//! and about the same RSS; and the bystander must have kept presenting throughout.
//!
//! The seed (`WAYHEAP_SOAK_SEED`, default fixed) picks each client's kind and its lifetime;
//! `WAYHEAP_SOAK_ROUNDS` sets how many clients are killed (default 40). Figures are recorded as
//! facts for RELIABILITY.md.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use wayheap_tests::compositor::{Client, Compositor, client_demo_bin, test_client_bin};
use wayheap_tests::guest::{holdings, record_fact, require_guest, settle};

/// Resident memory of `pid`, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A client kind: its name and how to start it against `comp`.
struct Kind {
    name: String,
    start: Box<dyn Fn(&Compositor) -> Client>,
}

/// Every kind the tier has: the test client with each buffer source (an overlay subsurface over
/// its window), client-demo, and Weston's shm clients.
fn kinds() -> Vec<Kind> {
    let mut kinds: Vec<Kind> = ["shm", "system", "cma", "udmabuf"]
        .into_iter()
        .map(|source| Kind {
            name: format!("test-client {source}"),
            start: Box::new(move |c: &Compositor| {
                let sub = format!("{source}:128x96@300,300");
                c.client(
                    &test_client_bin(),
                    &["--seconds", "60", "--sub", &sub, "--presentation"],
                )
            }),
        })
        .collect();
    kinds.push(Kind {
        name: "client-demo".into(),
        start: Box::new(|c: &Compositor| {
            let args = ["--image", "builtin", "--no-detector", "--size", "320x240"];
            c.client(&client_demo_bin(), &args)
        }),
    });
    for weston in ["weston-simple-shm", "weston-simple-damage"] {
        kinds.push(Kind {
            name: weston.into(),
            start: Box::new(move |c: &Compositor| {
                c.client(format!("/usr/bin/{weston}").as_ref(), &[])
            }),
        });
    }
    kinds
}

/// xorshift64*: reproducible from the printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The bystander's presentation times (ms since its first frame), from its `FRAME n ms` lines.
fn frame_times(bystander: &Client) -> Vec<u64> {
    bystander
        .drain_lines()
        .iter()
        .filter_map(|l| l.strip_prefix("FRAME "))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

#[test]
fn killed_clients_of_every_kind_leave_nothing_behind_and_the_bystander_keeps_presenting() {
    require_guest();
    let seed: u64 = env_or("WAYHEAP_SOAK_SEED", 0x5eed_50a4);
    let rounds: usize = env_or("WAYHEAP_SOAK_ROUNDS", 40);
    println!("soak: seed {seed:#x}, {rounds} rounds (WAYHEAP_SOAK_SEED / WAYHEAP_SOAK_ROUNDS)");
    let mut rng = Rng(seed | 1);
    let mut comp = Compositor::start_kms("soak", &[]);
    let pid = comp.pid();

    // The bystander: a swapchain on an overlay subsurface, presenting every frame.
    let bystander = comp.client(
        &test_client_bin(),
        &["--swapchain", "3:1000000", "--frame-log"],
    );
    bystander
        .wait_line("FRAME", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}\n{}\nlog:\n{}", bystander.stderr(), comp.log()));

    // Warm up: each kind once, so lazily made state (caches, the renderer's) is in the baseline.
    let kinds = kinds();
    for kind in &kinds {
        let mut client = (kind.start)(&comp);
        std::thread::sleep(Duration::from_millis(1500));
        let _ = client.child.kill();
        let _ = client.child.wait();
    }
    std::thread::sleep(Duration::from_secs(2));
    let _ = frame_times(&bystander);
    std::thread::sleep(Duration::from_secs(3));
    let calm = frame_times(&bystander);
    let interval = median(calm.windows(2).map(|w| w[1] - w[0]).collect()).max(1);
    let baseline = settle(pid, holdings(pid));
    let rss_before = rss_kib(pid);

    // The soak: up to two clients alive at once, each killed after 0-2 s.
    let mut alive: Vec<Client> = Vec::new();
    let mut started: BTreeMap<&str, usize> = BTreeMap::new();
    let soak_start = Instant::now();
    for _ in 0..rounds {
        let kind = &kinds[rng.below(kinds.len() as u64) as usize];
        *started.entry(&kind.name).or_default() += 1;
        alive.push((kind.start)(&comp));
        std::thread::sleep(Duration::from_millis(rng.below(2000)));
        if alive.len() == 2 || rng.below(2) == 0 {
            let mut victim = alive.remove(rng.below(alive.len() as u64) as usize);
            let _ = victim.child.kill();
            let _ = victim.child.wait();
        }
        assert!(comp.alive(), "the compositor died; log:\n{}", comp.log());
    }
    for mut client in alive.drain(..) {
        let _ = client.child.kill();
        let _ = client.child.wait();
    }
    let soak_seconds = soak_start.elapsed().as_secs_f64();
    let during = frame_times(&bystander);
    let after = settle(pid, baseline);
    let rss_after = rss_kib(pid);

    // The bystander presented throughout: its longest gap, in frames of its calm pace.
    let longest_gap = during
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(u64::MAX);
    let missed = (longest_gap / interval).saturating_sub(1);
    bystander
        .wait_line("FRAME", Duration::from_secs(10))
        .unwrap_or_else(|e| {
            panic!(
                "the bystander stopped presenting: {e}\nlog:\n{}",
                comp.log()
            )
        });

    let figures = format!(
        "{rounds} clients killed in {soak_seconds:.0} s ({started:?}); bystander: {} frames, calm \
         interval {interval} ms, longest gap {longest_gap} ms ({missed} frames missed); holdings \
         before {baseline:?}, after {after:?}; RSS {rss_before} -> {rss_after} KiB",
        during.len()
    );
    println!("soak: {figures}");
    record_fact("soak", &figures);
    assert!(comp.alive(), "the compositor died; log:\n{}", comp.log());
    assert!(
        during.len() > 1,
        "the bystander presented nothing during the soak: {figures}"
    );
    // A stall, not a timing threshold: the bystander's frame callbacks never stopped for 2 s.
    assert!(
        longest_gap < 2000,
        "the bystander stalled: {figures}\nlog:\n{}",
        comp.log()
    );
    assert_eq!(
        after, baseline,
        "the compositor kept what killed clients held: {figures}"
    );
    // Memory the allocator keeps for reuse is not a leak; growth by a quarter over 40 clients is.
    assert!(
        rss_after <= rss_before + rss_before / 4,
        "RSS grew: {figures}"
    );
    drop(bystander);
    // seatd-launch's exit status says nothing of the compositor's; its liveness was checked.
    comp.stop();
}
