//! `wayheap-vm-demo`: the demo on the real path, on any Linux machine — the VM tier's test
//! kernel under qemu (vkms for the display, vivid for the camera, the DMA-BUF heaps),
//! compositor-demo on KMS in it and client-demo in that: the camera's frames on one plane, the
//! detector's overlay on another. The guest's console (the compositor's placements and the
//! client's ZERO_COPY share, once a second) is printed as it comes, and the output, captured
//! through vkms's writeback connector, is written as a PNG on this machine once a second.
//!
//! `scripts/demo --vm` builds what it needs and runs this. By hand:
//!
//! ```text
//! wayheap-vm-demo --compositor target/debug/compositor-demo --client target/debug/client-demo \
//!     [--kernel BZIMAGE] [--dir DIR] [--seconds N] [--picture PNG] [-- CLIENT-ARGS...]
//! ```
//!
//! It stops after `--seconds` (0: never), or when the file `DIR/stop` appears (scripts/demo
//! makes it on Ctrl-C): the guest stops the compositor (SIGTERM, which writes the last picture)
//! and powers off, and this exits with the compositor's exit status.

use std::path::{Path, PathBuf};
use std::time::Duration;

use wayheap_tests::vm::{self, Echo, KernelSeries, Vm};

/// What the command line says.
struct Options {
    compositor: PathBuf,
    client: PathBuf,
    kernel: Option<PathBuf>,
    dir: PathBuf,
    seconds: u64,
    /// What the camera sees (a PNG), played into vivid's HDMI output.
    picture: PathBuf,
    client_args: Vec<String>,
}

fn usage(why: &str) -> ! {
    eprintln!(
        "wayheap-vm-demo: {why}\n\
         usage: wayheap-vm-demo --compositor PATH --client PATH [--kernel BZIMAGE] [--dir DIR] \
         [--seconds N] [--picture PNG] [-- CLIENT-ARGS...]"
    );
    std::process::exit(2)
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        compositor: PathBuf::new(),
        client: PathBuf::new(),
        kernel: None,
        dir: vm::workspace_root().join("target/vm-demo"),
        seconds: 0,
        picture: vm::workspace_root().join(vm::DEMO_PICTURE),
        client_args: Vec::new(),
    };
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--compositor" => o.compositor = value().into(),
            "--client" => o.client = value().into(),
            "--kernel" => o.kernel = Some(value().into()),
            "--dir" => o.dir = value().into(),
            // Absolute: the guest runs the script from another directory.
            "--picture" => {
                let given = PathBuf::from(value());
                o.picture = std::fs::canonicalize(&given).unwrap_or(given);
            }
            "--seconds" => {
                o.seconds = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--seconds takes a number"))
            }
            "--" => {
                o.client_args = args.by_ref().collect();
                break;
            }
            other => usage(&format!("unknown argument {other}")),
        }
    }
    for (what, path) in [
        ("--compositor", &o.compositor),
        ("--client", &o.client),
        ("--picture", &o.picture),
    ] {
        if !path.is_file() {
            usage(&format!("{what} {} is not a file", path.display()));
        }
    }
    o
}

/// `s` quoted for sh.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The guest's script: compositor-demo on vkms through seatd-launch, client-demo in it on the
/// first vivid camera, a writeback picture every second, until the time is up or `stop`
/// appears.
fn guest_script(run_dir: &str, o: &Options) -> String {
    let mut client = std::iter::once(o.client.display().to_string())
        .chain(o.client_args.iter().cloned())
        .map(|a| quoted(&a))
        .collect::<Vec<_>>()
        .join(" ");
    if o.client_args.is_empty() {
        // The camera's frames fill the 640x480 mode: the video on the primary plane, the
        // detector's overlay on an overlay plane above it. NV12, the format the picture is
        // played into vivid's output in (its loop copies only between equal formats); the
        // camera node is found in the guest (expanded by the compositor's `sh -c`).
        client.push_str(
            " --stats --scale native --size 640x480 --format NV12 --camera \"$WAYHEAP_DEMO_CAMERA\"",
        );
    }
    // One word for --run, which runs it through sh -c.
    let client = quoted(&client);
    let compositor = quoted(&o.compositor.display().to_string());
    // The demo command's start (scripts/demo sets it): the compositor says how long after it
    // the first frame came. The guest's clock starts from this machine's.
    let started = std::env::var("WAYHEAP_DEMO_STARTED")
        .ok()
        .filter(|t| t.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
        .map(|t| format!("export WAYHEAP_DEMO_STARTED={t}\n"))
        .unwrap_or_default();
    // The default client's camera sees the picture; a client given its own arguments gets
    // vivid as it is (its test pattern), since the loop below only works at one size.
    let feed = if o.client_args.is_empty() {
        format!(
            r#"# The camera sees a face: the first vivid's HDMI input is connected to its own HDMI output,
# both set to 640x480 timings (CEA-861's first, index 0), and the picture is played into that
# output (GStreamer's v4l2sink, 5 frames a second): vivid captures it, as a camera behind an
# HDMI bridge would deliver it. The same size on both sides, because vivid's loop scales NV12
# wrongly: a vertical scale reads the chroma plane past its end (an oops in 7.3). vivid's
# text over the picture (time, controls) is turned off: it covers the face.
for n in /sys/class/video4linux/video*; do
    case "$(cat "$n/name")" in
        vivid-000-vid-cap) export WAYHEAP_DEMO_CAMERA=/dev/$(basename "$n") ;;
        vivid-000-vid-out) feed=/dev/$(basename "$n") ;;
    esac
done
if [ -z "${{WAYHEAP_DEMO_CAMERA:-}}" ] || [ -z "${{feed:-}}" ]; then
    echo "demo: no vivid capture and output pair (vivid-000-vid-cap, vivid-000-vid-out)"
fi
echo "demo: camera $WAYHEAP_DEMO_CAMERA (vivid), fed through its HDMI loop from $feed:" {picture_q}
frame=video/x-raw,format=NV12,width=640,height=480
{{
    v4l2-ctl -d "$feed" --set-output 1 --set-dv-bt-timings index=0 &&
    v4l2-ctl -d "$WAYHEAP_DEMO_CAMERA" --set-input 3 --set-dv-bt-timings index=0 \
        --set-ctrl hdmi_000_0_is_connected_to=2,osd_text_mode=2 &&
    # Scaled to fit, its aspect kept (black bars: videoscale's add-borders).
    gst-launch-1.0 -q filesrc location={picture_q} ! pngdec ! videoconvert \
        ! videoscale add-borders=true ! "$frame,pixel-aspect-ratio=1/1" ! videoconvert \
        ! "$frame" ! filesink location="$R/feed.nv12"
}} >"$R/feed.log" 2>&1 ||
    echo "demo: feeding the picture into vivid failed (the camera shows vivid's pattern):" \
        "$(tail -n 3 "$R/feed.log")"
gst-launch-1.0 -q multifilesrc location="$R/feed.nv12" loop=true caps="$frame,framerate=5/1" \
    ! v4l2sink device="$feed" >>"$R/feed.log" 2>&1 &
feeder=$!
"#,
            picture_q = quoted(&o.picture.display().to_string()),
        )
    } else {
        "echo \"demo: your client arguments: the camera shows vivid's own pattern\"\nfeeder=\n"
            .to_owned()
    };
    format!(
        r#"#!/bin/sh
# Written by wayheap-vm-demo; runs inside the guest.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
{started}R={run_dir}
export XDG_RUNTIME_DIR=/run/wayheap-demo
mkdir -p -m 0700 "$XDG_RUNTIME_DIR"
rm -f /run/seatd.sock
echo "demo: guest kernel $(uname -r); heaps: $(ls /dev/dma_heap | tr '\n' ' ')"
{feed}seatd-launch -- {compositor} --backend kms --device /dev/dri/card0 --mode 640x480 --stats \
    --state-file "$R/state.json" --screenshot "$R/output.png" --run {client} &
launcher=$!
elapsed=0
pid=
while kill -0 "$launcher" 2>/dev/null; do
    sleep 1
    elapsed=$((elapsed + 1))
    # The compositor's own pid is the last "pid" (keys are sorted; clients' come first).
    [ -n "$pid" ] || pid=$(grep -o '"pid": *[0-9]*' "$R/state.json" 2>/dev/null | tail -n 1 | grep -o '[0-9]*$')
    [ -n "$pid" ] && kill -USR1 "$pid" 2>/dev/null
    if [ -e "$R/stop" ] || {{ [ {seconds} -gt 0 ] && [ "$elapsed" -ge {seconds} ]; }}; then
        echo "demo: stopping"
        [ -n "$pid" ] && kill -TERM "$pid"
        break
    fi
done
wait "$launcher"
echo "$?" >"$R/status"
[ -n "$feeder" ] && kill "$feeder" 2>/dev/null
echo "demo: stopped"
echo ok >"$R/done"
"#,
        seconds = o.seconds,
    )
}

fn main() {
    let o = options();
    let kernel = match &o.kernel {
        Some(k) => k.clone(),
        None => vm::kernel(KernelSeries::Current).unwrap_or_else(|e| usage(&e)),
    };
    let mut guest = Vm::new(kernel);
    guest.own_process_group = true;
    // Until stopped: a day is "never" for a demo.
    guest.timeout = Duration::from_secs(if o.seconds > 0 {
        o.seconds + 600
    } else {
        86_400
    });
    let png = o.dir.join("output.png");
    println!(
        "demo: booting the test kernel under qemu (emulated: a frame a second or so)\n\
         demo: the output is written to {} once a second; stop with Ctrl-C (scripts/demo) or by \
         creating {}",
        png.display(),
        o.dir.join("stop").display()
    );
    let boot = guest
        .boot(&o.dir, |dir| guest_script(dir, &o), Some(Echo::Plain))
        .unwrap_or_else(|e| {
            eprintln!("wayheap-vm-demo: {e}");
            std::process::exit(1)
        });
    let status = read_status(&o.dir);
    match (boot.exit, status) {
        (Some(_), Some(status)) => {
            println!(
                "demo: the guest ran {:.0} s; the last picture is {}",
                boot.total.as_secs_f64(),
                png.display()
            );
            std::process::exit(status)
        }
        (None, _) => {
            eprintln!("wayheap-vm-demo: the guest did not stop; it was killed");
            std::process::exit(1)
        }
        (Some(exit), None) => {
            eprintln!(
                "wayheap-vm-demo: the guest powered off before the demo ended (qemu: {exit}); see {}",
                o.dir.join("qemu.log").display()
            );
            std::process::exit(1)
        }
    }
}

/// The compositor's exit status the guest recorded (seatd-launch's, which passes it on).
fn read_status(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("status"))
        .ok()?
        .trim()
        .parse()
        .ok()
}
