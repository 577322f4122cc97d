//! The `--run` application: started with the compositor's socket in its environment; the
//! compositor exits with it, or with `--kiosk` starts it again whenever it exits (a kiosk
//! keeps its one application on the screen whatever happens to it).

use std::ffi::OsString;
use std::process::{Child, Command, ExitStatus};

/// The `--run` command and its process.
#[derive(Debug)]
pub struct RunCommand {
    cmd: String,
    socket: OsString,
    kiosk: bool,
    child: Option<Child>,
    /// Times it was started again (`--kiosk`).
    pub restarts: u32,
}

impl RunCommand {
    /// Starts `cmd` through `sh -c` with `WAYLAND_DISPLAY=socket`.
    pub fn start(cmd: &str, socket: OsString, kiosk: bool) -> Result<RunCommand, String> {
        let mut run = RunCommand {
            cmd: cmd.to_owned(),
            socket,
            kiosk,
            child: None,
            restarts: 0,
        };
        run.spawn()?;
        Ok(run)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("sh")
            .args(["-c", &self.cmd])
            .env("WAYLAND_DISPLAY", &self.socket)
            .spawn()
            .map_err(|e| format!("starting {:?}: {e}", self.cmd))?;
        self.child = Some(child);
        Ok(())
    }

    /// Whether it is started again when it exits.
    pub fn kiosk(&self) -> bool {
        self.kiosk
    }

    /// Its exit status, once, when it has exited (without waiting).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// Starts it again (after it exited).
    pub fn restart(&mut self) -> Result<(), String> {
        self.restarts += 1;
        self.spawn()
    }

    /// Ends it (the compositor is leaving).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
