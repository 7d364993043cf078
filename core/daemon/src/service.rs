//! The service manager's side (sd_notify(3)): READY, STATUS, WATCHDOG,
//! RELOADING, STOPPING. Without NOTIFY_SOCKET every call is a no-op.
//!
//! WATCHDOG pings are sent from a timer arm of the VRRP loop's select, not
//! from a task of their own: when the loop is stuck the pings stop and the
//! service manager restarts lbd.

use std::path::PathBuf;
use std::time::Duration;

use sd_notify::NotifyState;
use tracing::{debug, warn};

/// Test hook: while the file named by this variable exists, the event loop
/// blocks (synchronously, as a stuck loop would), so a test can see the
/// watchdog pings stop. Unset in production.
pub const STALL_FILE_ENV: &str = "LBD_TEST_STALL_FILE";

pub struct Notifier {
    /// Half the watchdog period, when the service manager set one.
    ping_every: Option<Duration>,
    last_status: String,
    /// A failed send is logged once, not at every ping.
    failing: bool,
    stall_file: Option<PathBuf>,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        Notifier {
            ping_every: sd_notify::watchdog_enabled()
                .filter(|d| !d.is_zero())
                .map(|d| d / 2),
            last_status: String::new(),
            failing: false,
            stall_file: std::env::var_os(STALL_FILE_ENV).map(PathBuf::from),
        }
    }

    /// How often the loop pings the watchdog; None when it is off.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.ping_every
    }

    fn send(&mut self, what: &str, states: &[NotifyState]) {
        match sd_notify::notify(states) {
            Ok(()) => self.failing = false,
            Err(e) if !self.failing => {
                self.failing = true;
                warn!("sd_notify {what}: {e}");
            }
            Err(e) => debug!("sd_notify {what}: {e}"),
        }
    }

    pub fn ready(&mut self) {
        self.send("READY", &[NotifyState::Ready]);
    }

    pub fn watchdog(&mut self) {
        self.send("WATCHDOG", &[NotifyState::Watchdog]);
    }

    pub fn stopping(&mut self) {
        self.send("STOPPING", &[NotifyState::Stopping]);
    }

    /// RELOADING=1 with the CLOCK_MONOTONIC time systemd expects with it
    /// (Type=notify-reload checks it is after its SIGHUP).
    pub fn reloading(&mut self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send("RELOADING", &[NotifyState::Reloading, now]),
            Err(e) => {
                warn!("sd_notify RELOADING: reading CLOCK_MONOTONIC: {e}");
                self.send("RELOADING", &[NotifyState::Reloading]);
            }
        }
    }

    /// STATUS=, sent only when it changed.
    pub fn status(&mut self, line: String) {
        if line == self.last_status {
            return;
        }
        self.send("STATUS", &[NotifyState::Status(&line)]);
        self.last_status = line;
    }

    /// The test hook (see [`STALL_FILE_ENV`]): blocks this thread while the
    /// file exists.
    pub fn stall_if_asked(&self) {
        let Some(f) = &self.stall_file else {
            return;
        };
        if !f.exists() {
            return;
        }
        warn!("test hook: event loop stalled while {} exists", f.display());
        while f.exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
        warn!("test hook: event loop resumed");
    }
}

/// The one-line STATUS: each instance and its state, then the real
/// servers up out of those configured (when there are any).
pub fn status_line<'a>(
    instances: impl IntoIterator<Item = (&'a str, &'a str)>,
    servers: Option<(usize, usize)>,
) -> String {
    let insts: Vec<String> = instances
        .into_iter()
        .map(|(name, state)| format!("{name} {state}"))
        .collect();
    let mut s = if insts.is_empty() {
        "no vrrp instances".to_string()
    } else {
        insts.join(", ")
    };
    if let Some((up, all)) = servers {
        s.push_str(&format!("; {up}/{all} real servers up"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(
            status_line([("VI_1", "MASTER"), ("VI_2", "BACKUP")], Some((2, 2))),
            "VI_1 MASTER, VI_2 BACKUP; 2/2 real servers up"
        );
        assert_eq!(status_line([("VI_1", "FAULT")], None), "VI_1 FAULT");
        assert_eq!(
            status_line([], Some((0, 3))),
            "no vrrp instances; 0/3 real servers up"
        );
    }
}
