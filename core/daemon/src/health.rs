//! The check scheduler: one task per real-server checker and per tracked
//! script, each running its plugin through the Lua host on its own
//! schedule. Only changes reach the VRRP loop, as `HealthEv`s; the loop
//! never waits for a check.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use lbd_config as cfg;
use lbd_plugin::{next_start, Host, JobGuard, Local, Target};
use rand::Rng;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use lbd_health::{Checker, Model, RsId, Script};

/// keepalived's checker defaults (check_api.c / check_parser.c).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);
const DEFAULT_RETRY: u32 = 1;
const DEFAULT_BEFORE_RETRY: Duration = Duration::from_secs(1);
/// The host's own deadline comes after the plugin's, so a plugin that
/// honours its timeout reports its own message.
const HOST_MARGIN: Duration = Duration::from_secs(1);

/// One change, from the checks started as generation `gen`: the node
/// drops changes of a generation a reload has replaced (its jobs were
/// seeded from the state before them).
#[derive(Debug)]
pub struct HealthEv {
    pub gen: u64,
    pub change: Change,
}

#[derive(Debug)]
pub enum Change {
    /// A checker of a real server changed state, or its dynamic weight changed.
    Checker {
        rs: RsId,
        checker: usize,
        up: bool,
        weight: Option<u32>,
        message: String,
    },
    /// A tracked script changed status.
    Script { name: String, ok: bool },
}

/// The running checks; dropping it stops them.
#[derive(Default)]
pub struct Health {
    _jobs: Vec<JobGuard>,
}

/// Effective timing of one checker: its own, else its real server's, else
/// its virtual server's, else keepalived's defaults.
struct Timing {
    connect_timeout: Duration,
    delay_loop: Duration,
    retry: u32,
    before_retry: Duration,
    warmup: Duration,
    alpha: bool,
}

fn timing(vs: &cfg::VirtualServer, rs: &cfg::RealServer, ck: &cfg::CheckSpec) -> Timing {
    let pick = |f: &dyn Fn(&cfg::CheckTiming) -> Option<Duration>, d: Duration| {
        f(&ck.timing).or(f(&rs.check)).or(f(&vs.check)).unwrap_or(d)
    };
    let delay_loop = pick(&|t| t.delay_loop, DEFAULT_DELAY_LOOP);
    Timing {
        connect_timeout: pick(&|t| t.connect_timeout, DEFAULT_CONNECT_TIMEOUT),
        delay_loop,
        retry: ck
            .timing
            .retry
            .or(rs.check.retry)
            .or(vs.check.retry)
            .unwrap_or(DEFAULT_RETRY),
        before_retry: pick(&|t| t.delay_before_retry, DEFAULT_BEFORE_RETRY),
        // keepalived: a random delay up to `warmup` (default delay_loop)
        // spreads the first checks of many servers.
        warmup: pick(&|t| t.warmup, delay_loop),
        alpha: ck
            .timing
            .alpha
            .or(rs.check.alpha)
            .or(vs.check.alpha)
            .unwrap_or(false),
    }
}

/// Whether a checker starts down (`alpha`).
pub fn alpha(vs: &cfg::VirtualServer, rs: &cfg::RealServer, ck: &cfg::CheckSpec) -> bool {
    timing(vs, rs, ck).alpha
}

/// The address a checker talks to: `connect_ip`/`connect_port` options
/// replace the real server's.
fn target(vs: &cfg::VirtualServer, rs: &cfg::RealServer, opts: &Map<String, Value>) -> Target {
    let ip = opts
        .get("connect_ip")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<IpAddr>().ok())
        .unwrap_or(rs.ip);
    let vs_port = match &vs.target {
        cfg::VsTarget::Addr { port, .. } => *port,
        _ => 0,
    };
    let port = opts
        .get("connect_port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(if rs.port == 0 { vs_port } else { rs.port });
    Target {
        ip,
        port,
        vs: Some(crate::lvs_desired::vs_name(vs)),
        weight: Some(rs.weight),
    }
}

fn with_timeout(opts: &Map<String, Value>, t: Duration) -> (Map<String, Value>, Duration) {
    let mut o = opts.clone();
    if !o.contains_key("timeout") {
        o.insert("timeout".into(), Value::from(t.as_secs_f64()));
    }
    let plugin_t = o
        .get("timeout")
        .and_then(Value::as_f64)
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(t, Duration::from_secs_f64);
    (o, plugin_t + HOST_MARGIN)
}

/// The state the checks start from: the node's, so a restarted job reports
/// a recovery from a failure it did not see itself (see reload.rs).
pub struct Seed<'a> {
    pub gen: u64,
    pub health: &'a Model,
    /// Runs, failures and latency per plugin.
    pub metrics: &'a crate::metrics::Checks,
}

/// Starts every checker and tracked script of `c`. Their schedules run on
/// the plugin thread, next to the plugins (a check costs no thread switch);
/// only changes come back, over `tx`.
pub fn start(
    host: &Host,
    c: &cfg::Config,
    seed: &Seed,
    tx: mpsc::UnboundedSender<HealthEv>,
) -> Health {
    let mut jobs = Vec::new();
    for vs in &c.virtual_servers {
        for rs in &vs.real_servers {
            let id = RsId::of(vs, rs);
            for (n, ck) in rs.checks.iter().enumerate() {
                let t = timing(vs, rs, ck);
                let up = seed.health.checker_up(&id, n).unwrap_or(!t.alpha);
                let (opts, limit) = with_timeout(&ck.options, t.connect_timeout);
                let job = CheckJob {
                    plugin: ck.plugin.clone(),
                    target: target(vs, rs, &ck.options),
                    opts,
                    limit,
                    rs: id.clone(),
                    index: n,
                    up,
                    gen: seed.gen,
                    timing: t,
                    tx: tx.clone(),
                    metrics: seed.metrics.clone(),
                };
                jobs.push(host.spawn(Box::new(|local| Box::pin(job.run(local)))));
            }
        }
    }
    for s in &c.track_scripts {
        let interval = s.interval;
        let (opts, limit) = with_timeout(&s.options, s.timeout.unwrap_or(interval));
        let job = ScriptJob {
            name: s.name.clone(),
            plugin: s.plugin.clone(),
            opts,
            limit,
            interval,
            state: Script::starting(
                seed.health.script_ok(&s.name).unwrap_or(!s.init_fail),
                s.rise,
                s.fall,
            ),
            gen: seed.gen,
            tx: tx.clone(),
            metrics: seed.metrics.clone(),
        };
        jobs.push(host.spawn(Box::new(|local| Box::pin(job.run(local)))));
    }
    Health { _jobs: jobs }
}

struct CheckJob {
    plugin: String,
    target: Target,
    opts: Map<String, Value>,
    limit: Duration,
    rs: RsId,
    index: usize,
    /// The state it starts from.
    up: bool,
    gen: u64,
    timing: Timing,
    tx: mpsc::UnboundedSender<HealthEv>,
    metrics: crate::metrics::Checks,
}

impl CheckJob {
    async fn run(self, local: Local) {
        let t = &self.timing;
        let mut check = local.checker(&self.plugin, self.target.clone(), self.opts.clone());
        let mut state = Checker::starting(self.up, t.retry);
        let mut weight: Option<u32> = None;
        if !t.warmup.is_zero() {
            let w = rand::rng().random_range(0.0..t.warmup.as_secs_f64());
            tokio::time::sleep_until(next_start(Duration::from_secs_f64(w))).await;
        }
        loop {
            let started = tokio::time::Instant::now();
            let out = check.run(self.limit).await;
            self.metrics
                .observe(&self.plugin, out.ok, started.elapsed());
            debug!(
                "check {} on {}: {} {}",
                self.plugin,
                self.rs,
                if out.ok { "ok" } else { "failed" },
                out.message
            );
            let (changed, next) = state.on_result(out.ok);
            if !out.ok && changed.is_none() && state.is_up() {
                info!(
                    plugin = self.plugin,
                    vs = self.rs.vs,
                    "check {} on {} failed ({}), retrying",
                    self.plugin,
                    self.rs,
                    out.message
                );
            }
            // misc_dynamic: a weight reported by a passing check.
            let new_weight = if out.ok {
                out.weight.and_then(|w| u32::try_from(w).ok())
            } else {
                weight
            };
            if changed.is_some() || new_weight != weight {
                weight = new_weight;
                let ev = HealthEv {
                    gen: self.gen,
                    change: Change::Checker {
                        rs: self.rs.clone(),
                        checker: self.index,
                        up: state.is_up(),
                        weight,
                        message: out.message,
                    },
                };
                if self.tx.send(ev).is_err() {
                    return;
                }
            }
            let delay = Checker::delay(next, t.delay_loop, t.before_retry);
            tokio::time::sleep_until(next_start(delay)).await;
        }
    }
}

struct ScriptJob {
    name: String,
    plugin: String,
    opts: Map<String, Value>,
    limit: Duration,
    interval: Duration,
    state: Script,
    gen: u64,
    tx: mpsc::UnboundedSender<HealthEv>,
    metrics: crate::metrics::Checks,
}

impl ScriptJob {
    async fn run(mut self, local: Local) {
        let target = Target {
            ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            vs: None,
            weight: None,
        };
        let mut check = local.checker(&self.plugin, target, self.opts.clone());
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let started = tokio::time::Instant::now();
            let out = check.run(self.limit).await;
            self.metrics
                .observe(&self.plugin, out.ok, started.elapsed());
            debug!(
                "track script {}: {} {}",
                self.name,
                if out.ok { "ok" } else { "failed" },
                out.message
            );
            if let Some(ok) = self.state.on_result(out.ok) {
                if !ok {
                    warn!(
                        plugin = self.plugin,
                        state = "FAILED",
                        "VRRP_Script({}) failed: {}",
                        self.name,
                        out.message
                    );
                } else {
                    info!(
                        plugin = self.plugin,
                        state = "OK",
                        "VRRP_Script({}) succeeded",
                        self.name
                    );
                }
                let ev = HealthEv {
                    gen: self.gen,
                    change: Change::Script {
                        name: self.name.clone(),
                        ok,
                    },
                };
                if self.tx.send(ev).is_err() {
                    return;
                }
            }
        }
    }
}
