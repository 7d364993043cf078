//! lbd as PID 1 (a container, a PID namespace others join): the orphans
//! re-parented to it are reaped, as tini or keepalived do, so that a dead
//! daemon does not linger as a zombie that `killall -0` still finds. lbd's
//! own children keep their exit statuses (`lbd_sys::reap`). Not PID 1:
//! nothing runs.
//!
//! No signal is forwarded: lbd's children are its scripts, in their own
//! process groups, and the kernel kills the namespace when PID 1 exits.

use std::time::Duration;

use anyhow::{Context, Result};
use lbd_sys::reap;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{debug, warn};

/// A sweep without a signal: SIGCHLDs coalesce, and an orphan that exited
/// behind one of lbd's own children may wait for that child's registration
/// to end.
const SWEEP: Duration = Duration::from_secs(5);

/// Starts the reaper when lbd is PID 1; the task lives as long as the runtime.
pub fn start() -> Result<()> {
    if std::process::id() != 1 {
        return Ok(());
    }
    let sigchld = signal(SignalKind::child()).context("installing SIGCHLD handler (PID 1)")?;
    if !reap::proc_is_ours() {
        warn!(
            "lbd is PID 1 but /proc belongs to another PID namespace (mount one: \
             unshare --mount-proc): orphans are still reaped, some only at the {}s sweep",
            SWEEP.as_secs()
        );
    }
    debug!("PID 1: reaping orphans");
    tokio::spawn(run(sigchld));
    Ok(())
}

async fn run(mut sigchld: tokio::signal::unix::Signal) {
    let mut tick = tokio::time::interval(SWEEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut signals = true;
    let mut last_err = String::new();
    loop {
        // The first tick is at once: zombies left before lbd started.
        tokio::select! {
            got = sigchld.recv(), if signals => signals = got.is_some(),
            _ = tick.tick() => {}
        }
        // Reading /proc on this thread: a few small files, and only when a
        // child of lbd's own is not waited for yet.
        match reap::sweep() {
            Ok(done) => {
                last_err.clear();
                for r in done {
                    debug!(
                        "reaped orphan {} ({}): {}",
                        r.pid,
                        r.comm.as_deref().unwrap_or("?"),
                        reap::describe_status(r.status)
                    );
                }
            }
            // Once per distinct error: a SIGCHLD storm must not flood the log.
            Err(e) => {
                let text = e.to_string();
                if text != last_err {
                    warn!("PID 1 reaper: {text}");
                    last_err = text;
                }
            }
        }
    }
}
