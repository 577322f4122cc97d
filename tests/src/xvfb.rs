//! A virtual X server (Xvfb) for the nested backend's tests: a real X11 session without a
//! screen, so compositor-demo opens a real window and draws into it with GLES (Mesa's llvmpipe).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running Xvfb; killed on drop.
#[derive(Debug)]
pub struct Xvfb {
    child: Child,
    /// The DISPLAY value, e.g. ":97".
    pub display: String,
}

impl Xvfb {
    /// Starts Xvfb at 1280x1024x24 on a display number it picks itself (`-displayfd`: no race
    /// with other servers or parallel tests). Panics with what to install when Xvfb is missing
    /// (scripts/install-deps installs it).
    pub fn start() -> Xvfb {
        let mut child = match Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x1024x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => panic!("cannot start Xvfb ({e}): run scripts/install-deps (package xvfb)"),
        };
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
            let _ = tx.send(line);
        });
        let number = rx
            .recv_timeout(Duration::from_secs(20))
            .ok()
            .and_then(|l| l.trim().parse::<u32>().ok());
        let Some(n) = number else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("Xvfb did not say which display it opened within 20 s");
        };
        Xvfb {
            child,
            display: format!(":{n}"),
        }
    }
}

impl Xvfb {
    /// What the X server shows of the window titled `title`, as RGBA8 rows (through `xwd`, from
    /// Debian's x11-apps): the pixels on the screen, not what the program thinks it drew.
    pub fn window_rgba(&self, title: &str) -> Result<(u32, u32, Vec<u8>), String> {
        let out = Command::new("xwd")
            .args(["-silent", "-name", title])
            .env("DISPLAY", &self.display)
            .output()
            .map_err(|e| format!("xwd ({e}): run scripts/install-deps (package x11-apps)"))?;
        if !out.status.success() {
            return Err(format!("xwd: {}", String::from_utf8_lossy(&out.stderr)));
        }
        parse_xwd(&out.stdout)
    }
}

impl Xvfb {
    /// Runs `xdotool ARGS` on this server (Debian's xdotool: synthetic pointer and keyboard
    /// input through XTEST); panics with its stderr when it fails.
    pub fn xdotool(&self, args: &[&str]) {
        let out = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .expect("xdotool (scripts/install-deps installs it)");
        assert!(
            out.status.success(),
            "xdotool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Decodes an XWD dump of a 24- or 32-bit TrueColor window (ZPixmap, 32 bits per pixel).
pub fn parse_xwd(data: &[u8]) -> Result<(u32, u32, Vec<u8>), String> {
    let field = |i: usize| -> Result<u32, String> {
        data.get(i * 4..i * 4 + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| "XWD header truncated".to_string())
    };
    let header_size = field(0)? as usize;
    if field(1)? != 7 || field(2)? != 2 {
        return Err("not an XWD version 7 ZPixmap".into());
    }
    let (width, height) = (field(4)?, field(5)?);
    let byte_order_lsb = field(7)? == 0;
    let bits_per_pixel = field(11)?;
    let bytes_per_line = field(12)? as usize;
    let masks = (field(14)?, field(15)?, field(16)?);
    let ncolors = field(19)? as usize;
    if bits_per_pixel != 32 || masks != (0xff0000, 0xff00, 0xff) {
        return Err(format!(
            "unsupported XWD pixels: {bits_per_pixel} bpp, masks {masks:x?}"
        ));
    }
    if bytes_per_line < width as usize * 4 {
        return Err(format!(
            "XWD rows of {bytes_per_line} bytes are too short for {width} pixels"
        ));
    }
    let start = header_size + ncolors * 12;
    let need = start + bytes_per_line * height as usize;
    if data.len() < need {
        return Err(format!(
            "XWD data truncated: {} of {need} bytes",
            data.len()
        ));
    }
    let mut rgba = Vec::with_capacity((width * height * 4) as usize);
    for y in 0..height as usize {
        let row = &data[start + y * bytes_per_line..];
        for x in 0..width as usize {
            let b = &row[x * 4..x * 4 + 4];
            let px = if byte_order_lsb {
                u32::from_le_bytes([b[0], b[1], b[2], b[3]])
            } else {
                u32::from_be_bytes([b[0], b[1], b[2], b[3]])
            };
            rgba.extend_from_slice(&[(px >> 16) as u8, (px >> 8) as u8, px as u8, 0xff]);
        }
    }
    Ok((width, height, rgba))
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
