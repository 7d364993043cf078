//! Finding and loading the configuration.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, Result};
use tokio::sync::mpsc;
use tracing::{error, info};

const DEFAULT_TOML: &str = "/etc/lb/lbd.toml";
const DEFAULT_KEEPALIVED: &str = "/etc/keepalived/keepalived.conf";

pub fn config_path(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    for p in [DEFAULT_TOML, DEFAULT_KEEPALIVED] {
        if Path::new(p).exists() {
            return Ok(PathBuf::from(p));
        }
    }
    Err(anyhow!(
        "no configuration: give -f FILE (looked for {DEFAULT_TOML} and {DEFAULT_KEEPALIVED})"
    ))
}

/// The keepalived config id for `@ID` lines, fixed at start (`-i`), so a
/// reload reads the file as the start did.
static CONFIG_ID: OnceLock<Option<String>> = OnceLock::new();

/// `given` (lbd's `-i`), else the hostname up to its first dot, as
/// keepalived defaults it.
pub fn set_config_id(given: Option<&str>) {
    let _ = CONFIG_ID.set(crate::offline::config_id(given));
}

/// Loads and validates; on any error nothing is applied and every finding is
/// reported with its file:line.
pub fn load_config(path: &Path) -> Result<lbd_config::Loaded> {
    crate::offline::load(path, CONFIG_ID.get().cloned().flatten())
}

/// Stack of the reload reader thread: as much as the main thread has. The
/// readers need little (they recurse on nothing the input controls); this
/// is headroom, not a bound.
const RELOAD_STACK: usize = 8 << 20;

/// Reads the configuration for a SIGHUP on a thread of its own, so the
/// event loop (adverts, timers, SIGTERM) never waits on a read: a big file
/// takes time, and no file can stall or take down the loop. One read at a
/// time; SIGHUPs during a read are folded into one more read after it.
/// A configuration read for a reload, with its IPVS plan: both built off
/// the loop (resolving 10 000 virtual servers is CPU work).
pub struct Reloaded {
    pub loaded: lbd_config::Loaded,
    pub plan: crate::lvs_desired::Plan,
}

pub struct Reloader {
    tx: mpsc::UnboundedSender<Result<Reloaded>>,
    busy: bool,
    again: bool,
}

impl Reloader {
    /// Results arrive on the receiver of `tx`; hand each to the node, then
    /// call [`Reloader::finished`].
    pub fn new(tx: mpsc::UnboundedSender<Result<Reloaded>>) -> Reloader {
        Reloader {
            tx,
            busy: false,
            again: false,
        }
    }

    pub fn request(&mut self, path: &Path) {
        if self.busy {
            info!(
                "SIGHUP during a reload: {} is read again after it",
                path.display()
            );
            self.again = true;
            return;
        }
        let tx = self.tx.clone();
        let p = path.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("lbd-reload".into())
            .stack_size(RELOAD_STACK)
            .spawn(move || {
                // Bad input must not panic the readers; should one, the
                // reload fails instead of leaving `busy` set forever (with
                // panic=abort in release this cannot help, hence the fuzzing).
                let r = std::panic::catch_unwind(|| {
                    let t = std::time::Instant::now();
                    let loaded = load_config(&p)?;
                    let read = t.elapsed();
                    let plan = crate::lvs_desired::Plan::new(&loaded.config)?;
                    info!(
                        "reload: {} read in {} ms, IPVS plan in {} ms (off the loop)",
                        p.display(),
                        read.as_millis(),
                        (t.elapsed() - read).as_millis()
                    );
                    Ok(Reloaded { loaded, plan })
                })
                .unwrap_or_else(|_| Err(anyhow!("the configuration reader panicked")));
                let _ = tx.send(r);
            });
        match spawned {
            Ok(_) => self.busy = true,
            Err(e) => error!(
                "reload of {}: cannot start the reader thread: {e}; keeping the running configuration",
                path.display()
            ),
        }
    }

    /// A read is under way.
    pub fn busy(&self) -> bool {
        self.busy
    }

    /// The last read was handled: start the one asked for meanwhile.
    pub fn finished(&mut self, path: &Path) {
        self.busy = false;
        if std::mem::take(&mut self.again) {
            self.request(path);
        }
    }
}

/// keepalived's `script_user USER [GROUP]`: the uid and gid scripts run as.
/// Without it scripts run as lbd itself (keepalived would look for a
/// `keepalived_script` user first; lbd does not guess).
pub fn script_user(c: &lbd_config::Config) -> Result<Option<(u32, u32)>> {
    let Some((user, group)) = &c.global.script_user else {
        return Ok(None);
    };
    lbd_plugin::prim::exec::user_ids(user, group.as_deref())
        .map(Some)
        .map_err(|e| anyhow!("script_user: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed expectation is the test failing
mod tests {
    use super::*;

    /// A FIFO at the config path: the reload is refused, and a second
    /// SIGHUP during the read is folded into one more read, not lost.
    #[test]
    fn reload_of_a_fifo_is_refused_off_the_loop() {
        let dir = std::env::temp_dir().join(format!("lbd-reload-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keepalived.conf");
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut r = Reloader::new(tx);
        r.request(&path);
        r.request(&path);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for _ in 0..2 {
            let got = rt
                .block_on(async {
                    tokio::time::timeout(std::time::Duration::from_secs(60), rx.recv()).await
                })
                .expect("reload result within 60 s")
                .expect("channel open");
            let Err(e) = got else {
                panic!("a FIFO must be refused")
            };
            let e = e.to_string();
            assert!(e.contains("is a FIFO"), "{e}");
            r.finished(&path);
        }
        assert!(!r.busy);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
