//! The command line of `wayheap-fuzz`.

use std::path::PathBuf;
use std::time::Duration;

/// Whether the fd pool gets real dma-bufs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dmabufs {
    /// When the kernel and permissions allow.
    Auto,
    /// Always; the run fails without them.
    Require,
    /// Never.
    Off,
}

/// A run's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The compositor's socket.
    pub socket: PathBuf,
    /// The run's seed.
    pub seed: u64,
    /// Index of the first connection.
    pub first_connection: u64,
    /// Connections to run (`None`: until `duration`).
    pub connections: Option<u64>,
    /// Messages per connection (besides setup and ending).
    pub messages: usize,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// The compositor's pid, to notice a crash at once and read its fds and memory.
    pub pid: Option<i32>,
    /// Time the compositor has to answer before it counts as a stall.
    pub stall_timeout: Duration,
    /// A bystander probe after every this many connections.
    pub probe_every: u64,
    /// Print the summary as JSON.
    pub json: bool,
    /// Print every connection's message log.
    pub log: bool,
    /// Print no progress.
    pub quiet: bool,
    /// Real dma-bufs in the fd pool.
    pub dmabufs: Dmabufs,
    /// Connections open at once (1: one after the other).
    pub parallel: u64,
}

/// The usage text.
pub const USAGE: &str = "\
usage: wayheap-fuzz [OPTIONS]

A structure-aware Wayland fuzzer: connects to $XDG_RUNTIME_DIR/$WAYLAND_DISPLAY (or --socket)
and sends each connection's generated messages. Exits 1 on a crash or stall.

  --seed N                     run seed (default: from the clock; printed)
  --connections N              connections to run (default 100; unbounded with --duration)
  --messages-per-connection N  messages per connection (default 64)
  --duration SECS              stop after SECS (long mode)
  --first-connection I         start at connection I (default 0)
  --only-connection I          run connection I alone (replay)
  --pid PID                    the compositor's pid (crash at once, fd and RSS drift)
  --stall-timeout SECS         answer time before a stall (default 5)
  --probe-every N              bystander probe every N connections (default 20)
  --socket PATH                the compositor's socket
  --dmabufs auto|require|off   real dma-bufs in the fd pool (default auto)
  --parallel N                 N connections at once, each on its own thread (default 1):
                               what clients do to each other through the compositor (seat
                               focus, selections, planes, heap quotas). A finding replays the
                               whole batch; the interleaving is the scheduler's.
  --json                       the summary as JSON on stdout
  --log                        every connection's message log on stderr
  --quiet                      no progress lines (one every 10 s otherwise)
";

fn number<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
    let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
    v.parse()
        .map_err(|_| format!("{flag}: not a number: {v:?}"))
}

/// The socket named by the environment: `$WAYLAND_DISPLAY` (absolute, or under
/// `$XDG_RUNTIME_DIR`).
pub fn socket_from_env() -> Result<PathBuf, String> {
    let display = std::env::var_os("WAYLAND_DISPLAY").unwrap_or_else(|| "wayland-0".into());
    let display = PathBuf::from(display);
    if display.is_absolute() {
        return Ok(display);
    }
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .ok_or("XDG_RUNTIME_DIR is not set (or pass --socket)")?;
    Ok(PathBuf::from(runtime).join(display))
}

impl Config {
    /// Parses the arguments (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
        let mut args = args.into_iter();
        let mut socket = None;
        let mut cfg = Config {
            socket: PathBuf::new(),
            seed: clock_seed(),
            first_connection: 0,
            connections: None,
            messages: 64,
            duration: None,
            pid: None,
            stall_timeout: Duration::from_secs(5),
            probe_every: 20,
            json: false,
            log: false,
            quiet: false,
            dmabufs: Dmabufs::Auto,
            parallel: 1,
        };
        while let Some(flag) = args.next() {
            match flag.as_str() {
                "--seed" => cfg.seed = number(&flag, args.next())?,
                "--connections" => cfg.connections = Some(number(&flag, args.next())?),
                "--messages-per-connection" => cfg.messages = number(&flag, args.next())?,
                "--duration" => {
                    cfg.duration = Some(Duration::from_secs_f64(number(&flag, args.next())?));
                }
                "--first-connection" => cfg.first_connection = number(&flag, args.next())?,
                "--only-connection" => {
                    cfg.first_connection = number(&flag, args.next())?;
                    cfg.connections = Some(1);
                }
                "--pid" => cfg.pid = Some(number(&flag, args.next())?),
                "--stall-timeout" => {
                    cfg.stall_timeout = Duration::from_secs_f64(number(&flag, args.next())?);
                }
                "--probe-every" => cfg.probe_every = number::<u64>(&flag, args.next())?.max(1),
                "--socket" => {
                    socket = Some(PathBuf::from(args.next().ok_or("--socket needs a path")?))
                }
                "--dmabufs" => {
                    cfg.dmabufs = match args.next().as_deref() {
                        Some("auto") => Dmabufs::Auto,
                        Some("require") => Dmabufs::Require,
                        Some("off") => Dmabufs::Off,
                        other => return Err(format!("--dmabufs auto|require|off, not {other:?}")),
                    }
                }
                "--parallel" => cfg.parallel = number::<u64>(&flag, args.next())?.max(1),
                "--json" => cfg.json = true,
                "--log" => cfg.log = true,
                "--quiet" => cfg.quiet = true,
                "--help" | "-h" => return Err(String::new()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if cfg.connections.is_none() && cfg.duration.is_none() {
            cfg.connections = Some(100);
        }
        cfg.socket = match socket {
            Some(s) => s,
            None => socket_from_env()?,
        };
        Ok(cfg)
    }

    /// The command line that replays connection `index` alone (on the same machine: the fd
    /// pool, which the connection's choices index, depends on its devices).
    pub fn replay(&self, index: u64) -> String {
        self.replay_line(&format!("--only-connection {index}"))
    }

    /// The command line that replays the batch of `count` parallel connections from `first`
    /// (each connection's messages are the same again; their interleaving may take a few
    /// runs to meet again).
    pub fn replay_batch(&self, first: u64, count: u64) -> String {
        self.replay_line(&format!(
            "--first-connection {first} --connections {count} --parallel {count}"
        ))
    }

    fn replay_line(&self, which: &str) -> String {
        let mut line = format!(
            "wayheap-fuzz --seed {} {which} --messages-per-connection {}",
            self.seed, self.messages
        );
        match self.dmabufs {
            Dmabufs::Auto => {}
            Dmabufs::Require => line.push_str(" --dmabufs require"),
            Dmabufs::Off => line.push_str(" --dmabufs off"),
        }
        if self.stall_timeout != Duration::from_secs(5) {
            line.push_str(&format!(
                " --stall-timeout {}",
                self.stall_timeout.as_secs_f64()
            ));
        }
        line.push_str(" --log");
        line
    }
}

/// A seed from the clock, for runs that give none (it is printed, so they replay too).
fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        % 1_000_000_007
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let mut v: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        v.extend(["--socket".to_owned(), "/tmp/x".to_owned()]);
        Config::parse(v)
    }

    #[test]
    fn only_connection_is_a_run_of_one() {
        let c = parse(&["--seed", "7", "--only-connection", "12"]).unwrap();
        assert_eq!(
            (c.seed, c.first_connection, c.connections),
            (7, 12, Some(1))
        );
        assert!(c.replay(12).contains("--seed 7 --only-connection 12"));
    }

    #[test]
    fn a_parallel_batch_replays_as_a_batch() {
        let c = parse(&["--seed", "7", "--parallel", "4"]).unwrap();
        assert_eq!(c.parallel, 4);
        assert!(
            c.replay_batch(8, 4)
                .contains("--seed 7 --first-connection 8 --connections 4 --parallel 4")
        );
        assert_eq!(parse(&["--parallel", "0"]).unwrap().parallel, 1);
    }

    #[test]
    fn duration_alone_runs_unbounded_and_bad_flags_are_refused() {
        let c = parse(&["--duration", "3600"]).unwrap();
        assert_eq!(c.connections, None);
        assert_eq!(parse(&[]).unwrap().connections, Some(100));
        assert!(parse(&["--seed"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }
}
