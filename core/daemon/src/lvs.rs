//! IPVS reconciliation: the kernel is converged to the configured virtual
//! servers with the fewest operations, drift is repaired periodically, and
//! entries lbd does not own are never touched. The connection sync daemon
//! follows the VRRP instance named by `lvs_sync_daemon`.
//!
//! Health changes are coalesced (the queue is drained before acting) and
//! applied per changed service from the state last applied: no kernel read.
//! The kernel is read at start, at reload and on the periodic resync, which
//! repairs drift and corrects what lbd believes is applied.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use lbd_config::Config;
use lbd_ipvs::{diff, IpvsState, Op, OwnedSet, Service, ServiceKey};
use lbd_ipvs::{SyncDaemon, SyncState};
use lbd_sys::ipvs::Ipvs;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use crate::lvs_desired;

/// How often the kernel is compared with the desired state.
const RESYNC: Duration = Duration::from_secs(5);

enum Msg {
    InstanceState {
        name: String,
        master: bool,
    },
    Reload(Box<IpvsState>),
    /// The services of the virtual servers whose health changed.
    Health(Vec<Service>),
    LogCounters,
    Stop(oneshot::Sender<()>),
}

/// The VRRP loop's handle on the reconciler task.
pub struct LvsHandle {
    tx: mpsc::UnboundedSender<Msg>,
}

impl LvsHandle {
    /// A VRRP instance changed state (only `lvs_sync_daemon` cares).
    pub fn instance_state(&self, name: &str, master: bool) {
        let _ = self.tx.send(Msg::InstanceState {
            name: name.to_string(),
            master,
        });
    }

    /// A reloaded configuration: only the differences reach the kernel.
    pub fn reload(&self, desired: IpvsState) {
        let _ = self.tx.send(Msg::Reload(Box::new(desired)));
    }

    /// Real servers changed health: these services, other destinations.
    pub fn update(&self, services: Vec<Service>) {
        let _ = self.tx.send(Msg::Health(services));
    }

    /// SIGUSR1: log the kernel work done so far.
    pub fn log_counters(&self) {
        let _ = self.tx.send(Msg::LogCounters);
    }

    /// Applies the stop policy and waits for it.
    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// Kernel work, for SIGUSR1 and the reconcile benchmark.
#[derive(Default)]
struct Work {
    /// Whole-table reads (start, reload, resync).
    dumps: u64,
    /// Netlink requests those reads took (GET_SERVICE, then GET_DEST per service).
    dump_requests: u64,
    /// Operations sent (one request each).
    ops: u64,
    /// Health batches applied, and the changes they coalesced.
    health_batches: u64,
    health_changes: u64,
}

struct Reconciler {
    ipvs: Ipvs,
    desired: IpvsState,
    /// What lbd believes the kernel holds: the last read plus every
    /// operation the kernel accepted since.
    applied: IpvsState,
    owned: OwnedSet,
    work: Work,
    /// The daemon and the VRRP instance it follows (`None`: both roles always).
    sync: Option<(Option<String>, SyncDaemon)>,
    flush_onstop: lbd_config::LvsFlushOnStop,
    /// Drift repairs are events.
    events: crate::events::EventLog,
}

/// Starts IPVS management when the configuration asks for it; a config
/// without virtual servers never needs IPVS (nor the module).
pub async fn start(
    cfg: &Config,
    plan: &lvs_desired::Plan,
    health: &lbd_health::Model,
    events: crate::events::EventLog,
) -> Result<Option<LvsHandle>> {
    let g = &cfg.global;
    if plan.is_empty() && g.lvs_sync_daemon.is_none() {
        return Ok(None);
    }
    let desired = plan.desired(health);
    let ipvs = Ipvs::connect().await?;
    if let Some(t) = &g.lvs_timeouts {
        // 0 leaves a timeout as the kernel has it.
        ipvs.set_timeouts(
            t.tcp.unwrap_or(0),
            t.tcpfin.unwrap_or(0),
            t.udp.unwrap_or(0),
        )
        .await
        .context("setting lvs_timeouts")?;
    }
    if g.lvs_flush {
        ipvs.flush().await.context("lvs_flush")?;
        info!("lvs_flush: IPVS table flushed");
    }
    let sync = g
        .lvs_sync_daemon
        .as_ref()
        .map(|s| (s.instance.clone(), lvs_desired::sync_daemon(cfg, s)));
    let owned: OwnedSet = desired.services.keys().cloned().collect();
    let mut r = Reconciler {
        ipvs,
        desired,
        applied: IpvsState::new(),
        owned,
        work: Work::default(),
        sync,
        flush_onstop: g.lvs_flush_onstop,
        events,
    };
    r.reconcile(Why::Start).await?;
    // Instances start in Backup: so does the sync daemon (keepalived does the same).
    r.sync_role(None, false).await;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(r.run(rx));
    Ok(Some(LvsHandle { tx }))
}

/// Why the kernel is being compared: drift is only reported as such.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    Start,
    Reload,
    Resync,
    Health,
}

fn describe(op: &Op) -> String {
    match op {
        Op::AddService(s) => format!("add service {} {}", s.key, s.spec.scheduler),
        Op::EditService(k, s) => format!("change service {k} (scheduler {})", s.scheduler),
        Op::DelService(k) => format!("delete service {k}"),
        Op::AddDest(k, d, s) => format!(
            "add real server {d} to {k} ({:?}, weight {})",
            s.fwd, s.weight
        ),
        Op::EditDest(k, d, s) => format!(
            "change real server {d} of {k} ({:?}, weight {})",
            s.fwd, s.weight
        ),
        Op::DelDest(k, d) => format!("remove real server {d} from {k}"),
    }
}

impl Reconciler {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut next = tokio::time::Instant::now() + RESYNC;
        loop {
            tokio::select! {
                msg = rx.recv() => {
                    let Some(first) = msg else { return };
                    // Coalesce: 100 servers failing together are one batch
                    // per service, not 100 passes.
                    let mut health = BTreeMap::new();
                    let mut m = Some(first);
                    while let Some(msg) = m.take().or_else(|| rx.try_recv().ok()) {
                        match msg {
                            Msg::Health(svcs) => {
                                self.work.health_changes += 1;
                                health.extend(svcs.into_iter().map(|s| (s.key.clone(), s)));
                            }
                            other => {
                                // In order: what came before goes first.
                                self.apply_health(std::mem::take(&mut health)).await;
                                if self.on_msg(other).await {
                                    return;
                                }
                            }
                        }
                    }
                    self.apply_health(health).await;
                }
                _ = tokio::time::sleep_until(next) => {
                    let started = tokio::time::Instant::now();
                    if let Err(e) = self.reconcile(Why::Resync).await {
                        warn!("IPVS resync: {e:#}");
                    }
                    // A big table takes long to read (10 000 services: ~5 s
                    // under TCG): resync at most 10% of the time.
                    next = tokio::time::Instant::now() + RESYNC.max(started.elapsed() * 10);
                }
            }
        }
    }

    /// One message other than a health change; true when stopped.
    async fn on_msg(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::InstanceState { name, master } => self.sync_role(Some(&name), master).await,
            Msg::Reload(desired) => {
                // Services the old configuration owned stay owned for
                // this pass, so the ones it dropped are deleted.
                self.owned.extend(desired.services.keys().cloned());
                self.desired = *desired;
                if let Err(e) = self.reconcile(Why::Reload).await {
                    error!("IPVS reload: {e:#}");
                }
                self.owned = self.desired.services.keys().cloned().collect();
            }
            Msg::Health(svcs) => {
                let batch = svcs.into_iter().map(|s| (s.key.clone(), s)).collect();
                self.apply_health(batch).await;
            }
            Msg::LogCounters => {
                let w = &self.work;
                info!(
                    "IPVS counters: dumps={} dump_requests={} ops={} health_batches={} health_changes={}",
                    w.dumps, w.dump_requests, w.ops, w.health_batches, w.health_changes
                );
            }
            Msg::Stop(done) => {
                self.stop().await;
                let _ = done.send(());
                return true;
            }
        }
        false
    }

    /// Health changes: each changed service is diffed against the state
    /// last applied and only its operations are sent.
    async fn apply_health(&mut self, batch: BTreeMap<ServiceKey, Service>) {
        if batch.is_empty() {
            return;
        }
        self.work.health_batches += 1;
        let mut ops = Vec::new();
        for (key, svc) in batch {
            if !self.desired.services.contains_key(&key) {
                continue; // a service since reloaded away
            }
            let want: IpvsState = std::iter::once(svc.clone()).collect();
            let have: IpvsState = self
                .applied
                .services
                .get(&key)
                .cloned()
                .into_iter()
                .collect();
            let owned: OwnedSet = std::iter::once(key).collect();
            ops.extend(diff(&want, &have, &owned));
            self.desired.insert(svc);
        }
        if let Err(e) = self.send(ops, Why::Health).await {
            error!("IPVS after a health change: {e:#}");
        }
    }

    /// Sends `ops`, logs each outcome, and records the accepted ones as applied.
    async fn send(&mut self, ops: Vec<Op>, why: Why) -> Result<usize> {
        if ops.is_empty() {
            return Ok(0);
        }
        let initial = why != Why::Resync;
        let labels: Vec<String> = ops.iter().map(describe).collect();
        self.work.ops += ops.len() as u64;
        let results = self
            .ipvs
            .apply(ops.clone())
            .await
            .context("applying IPVS changes")?;
        let mut failed = 0;
        for ((label, op), r) in labels.iter().zip(&ops).zip(results) {
            match r {
                Ok(()) => {
                    // The model of what the kernel holds; a mismatch here
                    // is corrected by the next resync's read.
                    let _ = lbd_ipvs::apply(&mut self.applied, std::slice::from_ref(op));
                    match why {
                        Why::Health => info!("IPVS: {label}"),
                        _ if initial => debug!("IPVS: {label}"),
                        _ => {
                            warn!("IPVS drift repaired: {label}");
                            let d =
                                crate::events::detail(serde_json::json!({ "operation": label }));
                            self.events
                                .push("ipvs_repair", &op.service().to_string(), d);
                        }
                    }
                }
                Err(e) => {
                    failed += 1;
                    error!("IPVS: {label}: {e}");
                }
            }
        }
        Ok(failed)
    }

    /// Converges the kernel to the desired state. On start, matching entries
    /// are adopted as they are (no flush: established connections live on);
    /// later, any difference is drift and is logged as repaired.
    async fn reconcile(&mut self, why: Why) -> Result<()> {
        let initial = why != Why::Resync;
        let (observed, _) = self.ipvs.dump().await.context("reading IPVS state")?;
        self.work.dumps += 1;
        self.work.dump_requests += 1 + observed.services.len() as u64;
        let ops = diff(&self.desired, &observed, &self.owned);
        self.applied = observed;
        if ops.is_empty() {
            if initial {
                info!(
                    "IPVS {why:?}: {} service(s) in place, nothing to change",
                    self.desired.services.len()
                );
            }
            return Ok(());
        }
        let n = ops.len();
        let failed = self.send(ops, why).await?;
        if initial {
            info!(
                "IPVS {why:?}: applied {} change(s), {failed} failed",
                n - failed
            );
        }
        Ok(())
    }

    /// keepalived semantics: master sync daemon on the VRRP master of the
    /// named instance, backup daemon elsewhere.
    async fn sync_role(&mut self, instance: Option<&str>, master: bool) {
        let Some((follows, d)) = &self.sync else {
            return;
        };
        let Some(name) = follows else {
            // Following no instance: keepalived runs both daemons all the time.
            if instance.is_none() {
                for state in [SyncState::Master, SyncState::Backup] {
                    let mut d = d.clone();
                    d.state = state;
                    if let Err(e) = self.ipvs.start_sync_daemon(&d).await {
                        error!("IPVS sync daemon {state:?} on {}: {e}", d.ifname);
                    }
                }
            }
            return;
        };
        if instance.is_some_and(|i| i != name) {
            return;
        }
        let (stop, start) = if master {
            (SyncState::Backup, SyncState::Master)
        } else {
            (SyncState::Master, SyncState::Backup)
        };
        let _ = self.ipvs.stop_sync_daemon(stop).await;
        let mut d = d.clone();
        d.state = start;
        match self.ipvs.start_sync_daemon(&d).await {
            Ok(()) => info!(
                "IPVS sync daemon: {start:?} on {} (syncid {})",
                d.ifname, d.syncid
            ),
            Err(e) => error!("IPVS sync daemon {start:?} on {}: {e}", d.ifname),
        }
    }

    async fn stop(&mut self) {
        use lbd_config::LvsFlushOnStop as F;
        if self.sync.is_some() {
            let _ = self.ipvs.stop_sync_daemon(SyncState::Master).await;
            let _ = self.ipvs.stop_sync_daemon(SyncState::Backup).await;
        }
        let result = match self.flush_onstop {
            // keepalived's default: remove what it owns, real servers first.
            // With expire_nodest_conn 0 (the kernel default) established
            // connections are held, not reset, and resume when a restarted
            // lbd adds the same servers back.
            F::Off => {
                let mut ops = Vec::new();
                for k in self.owned.iter() {
                    if let Some(s) = self.desired.services.get(k) {
                        ops.extend(s.dests.keys().map(|d| Op::DelDest(k.clone(), *d)));
                    }
                    ops.push(Op::DelService(k.clone()));
                }
                let n = self.owned.len();
                self.ipvs
                    .apply(ops)
                    .await
                    .map(|_| format!("removed {n} virtual server(s)"))
            }
            F::On => self
                .ipvs
                .flush()
                .await
                .map(|_| "flushed the IPVS table".to_string()),
            F::VsOnly => {
                let ops: Vec<Op> = self.owned.iter().cloned().map(Op::DelService).collect();
                let n = ops.len();
                self.ipvs
                    .apply(ops)
                    .await
                    .map(|_| format!("removed {n} virtual server(s)"))
            }
        };
        match result {
            Ok(what) => info!("IPVS on stop: {what}"),
            Err(e) => error!("IPVS on stop: {e}"),
        }
    }
}

/// `lbd --ipvs-status`: the kernel's IPVS table as lbd reads it, in the
/// shape of `ipvsadm -Ln`.
pub async fn print_status() -> Result<()> {
    let ipvs = Ipvs::connect().await?;
    let info = ipvs.info().await.context("reading IPVS info")?;
    let (state, counters) = ipvs.dump().await.context("reading IPVS state")?;
    print!("{}", lbd_ipvs::render_ipvsadm(&info, &state, &counters));
    Ok(())
}
