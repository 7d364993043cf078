//! The plugin host: every plugin's Lua state lives on one dedicated thread
//! (a current-thread runtime); the daemon holds a `Host` handle and talks
//! to it through channels, so VRRP timers never wait for Lua.
//!
//! Layers, each using only those below it: `load` (files and Lua states),
//! `run` (one call into Lua), `check` / `notify` (what the daemon's jobs
//! and hooks run), `stats`; this module is the thread and its handle.

mod check;
mod load;
mod notify;
mod run;
mod stats;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::sandbox::Limits;

pub use check::{next_start, CheckOutcome, Local, LocalCheck, Target, START_GRID};
pub use load::{HostConfig, LoadReport, LoadedPlugin};
pub use notify::{Event, EventKind, Notifier};
pub use run::Options;
pub use stats::HostStats;

use load::Registry;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin host: {0}")]
    Start(String),
}

enum Req {
    Notifier {
        name: String,
        opts: Options,
        events: mpsc::UnboundedReceiver<Event>,
    },
    Spawn {
        job: Job,
        stop: oneshot::Receiver<()>,
    },
    Stats(oneshot::Sender<HostStats>),
    Reload(oneshot::Sender<Ready>),
    Shutdown {
        timeout: Duration,
        done: oneshot::Sender<()>,
    },
}

/// The daemon's handle; cheap to clone.
#[derive(Clone)]
pub struct Host {
    tx: mpsc::UnboundedSender<Req>,
    checks: Arc<Vec<String>>,
    notifiers: Arc<Vec<String>>,
}

/// Work the daemon hands to the plugin thread (a check's schedule): it
/// runs there beside the plugins, so running a check costs no thread switch.
pub type Job = Box<dyn FnOnce(Local) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// Stops its job when dropped.
pub struct JobGuard {
    _stop: oneshot::Sender<()>,
}

impl Host {
    /// Loads the plugins on a new thread and returns once they are loaded.
    pub fn start(cfg: HostConfig) -> Result<(Host, LoadReport), PluginError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("lbd-plugins".into())
            .spawn(move || host_thread(cfg, rx, ready_tx))
            .map_err(|e| PluginError::Start(format!("spawning the plugin thread: {e}")))?;
        let (report, checks, notifiers) = ready_rx
            .recv()
            .map_err(|_| PluginError::Start("the plugin thread died while loading".into()))??;
        Ok((
            Host {
                tx,
                checks: Arc::new(checks),
                notifiers: Arc::new(notifiers),
            },
            report,
        ))
    }

    pub fn has_check(&self, name: &str) -> bool {
        self.checks.iter().any(|c| c == name)
    }

    pub fn has_notify(&self, name: &str) -> bool {
        self.notifiers.iter().any(|c| c == name)
    }

    /// Runs `job` on the plugin thread until the guard is dropped.
    pub fn spawn(&self, job: Job) -> JobGuard {
        let (tx, stop) = oneshot::channel();
        let _ = self.tx.send(Req::Spawn { job, stop });
        JobGuard { _stop: tx }
    }

    pub fn notifier(&self, name: &str, opts: Options) -> Notifier {
        let (tx, events) = mpsc::unbounded_channel();
        let _ = self.tx.send(Req::Notifier {
            name: name.to_string(),
            opts,
            events,
        });
        Notifier::new(tx)
    }

    /// Re-reads the plugin files (a reload of lbd): jobs and notifiers
    /// started from now on use the new versions; a plugin whose file no
    /// longer loads keeps its running version (`LoadReport::kept`).
    pub async fn reload(&mut self) -> Result<LoadReport, PluginError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Req::Reload(tx))
            .map_err(|_| PluginError::Start("the plugin thread has stopped".into()))?;
        let (report, checks, notifiers) = rx
            .await
            .map_err(|_| PluginError::Start("the plugin thread died while reloading".into()))??;
        self.checks = Arc::new(checks);
        self.notifiers = Arc::new(notifiers);
        Ok(report)
    }

    pub async fn stats(&self) -> HostStats {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Req::Stats(tx)).is_err() {
            return HostStats::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Waits (up to `timeout`) until every notifier whose senders are gone
    /// has delivered its queue, then stops the plugin thread.
    pub async fn shutdown(&self, timeout: Duration) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Req::Shutdown { timeout, done }).is_ok() {
            let _ = rx.await;
        }
    }
}

type Ready = Result<(LoadReport, Vec<String>, Vec<String>), PluginError>;

fn host_thread(
    cfg: HostConfig,
    rx: mpsc::UnboundedReceiver<Req>,
    ready: std::sync::mpsc::Sender<Ready>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(PluginError::Start(format!("runtime: {e}"))));
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let limits = Limits {
            memory: cfg.memory_limit,
            cpu_slice: cfg.cpu_slice,
            script_user: cfg.script_user,
        };
        let (reg, report) = load::load_all(&cfg, &limits);
        if ready.send(Ok(names(&reg, report))).is_err() {
            return;
        }
        serve(Rc::new(reg), rx, &cfg, &limits).await;
    });
}

/// What the daemon's handle learns of a load.
fn names(reg: &Registry, report: LoadReport) -> (LoadReport, Vec<String>, Vec<String>) {
    let mut checks: Vec<String> = reg.checks.keys().cloned().collect();
    let mut notifiers: Vec<String> = reg.notifiers.keys().cloned().collect();
    checks.sort();
    notifiers.sort();
    (report, checks, notifiers)
}

async fn serve(
    mut reg: Rc<Registry>,
    mut rx: mpsc::UnboundedReceiver<Req>,
    cfg: &HostConfig,
    limits: &Limits,
) {
    let mut notifier_tasks = Vec::new();
    while let Some(req) = rx.recv().await {
        match req {
            Req::Reload(reply) => {
                let (new, report) = load::reload_all(cfg, limits, &reg);
                let out = names(&new, report);
                // Running jobs and notifiers hold the old registry until
                // the daemon replaces them; new ones get this one.
                reg = Rc::new(new);
                let _ = reply.send(Ok(out));
            }
            Req::Notifier { name, opts, events } => {
                notifier_tasks.push(notify::spawn_queue(reg.clone(), name, opts, events));
            }
            Req::Spawn { job, stop } => {
                let fut = job(Local::new(reg.clone()));
                tokio::task::spawn_local(async move {
                    tokio::select! {
                        _ = fut => {}
                        // The guard was dropped (or sent): the job ends.
                        _ = stop => {}
                    }
                });
            }
            Req::Stats(reply) => {
                let _ = reply.send(stats::collect(&reg));
            }
            Req::Shutdown { timeout, done } => {
                let all = futures_join(std::mem::take(&mut notifier_tasks));
                if tokio::time::timeout(timeout, all).await.is_err() {
                    warn!("plugin host: notify queues not drained after {timeout:?}");
                }
                let _ = done.send(());
                return;
            }
        }
    }
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}
