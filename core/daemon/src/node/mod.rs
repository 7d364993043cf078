//! The VRRP node: feeds the protocol core (`lbd_vrrp::router::Router`) with
//! what the kernel edges observe (datagrams, link state, tracked scripts) and
//! carries out what it decides (adverts, VIPs, GARP, routes, notify hooks).
//! One task, one event loop: every state change passes through here in the
//! order it happened; `run` here owns the loop and the signals. The concerns
//! around it: `build` (instances from the configuration), `vrrp` (carrying
//! out the router's decisions), `tracking` (links, scripts and real-server
//! health as router inputs, IPVS and hooks), `reload` (SIGHUP); socket and
//! GARP I/O is in `crate::vrrp_io`, the health model in `lbd_health`.

mod build;
mod maint;
mod notify_status;
mod observe;
mod reload;
pub mod status;
mod tracking;
mod vrrp;

use vrrp::{scope_number, state_name};

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use lbd_config::{Config, InitialState, OldUnicastChecksum, VrrpInstance, VrrpVersion};
use lbd_sys::GarpSender;
use lbd_sys::{AddrSpec, LinkEvent, Netlink};
use lbd_vrrp::auth::AuthKey;
use lbd_vrrp::instance::{GarpTiming, InstanceConfig, State};
use lbd_vrrp::router::{Event as VrrpEvent, OldChecksum, Router, RouterInstanceConfig, Transmit};
use lbd_vrrp::Version;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::health::{Change, Health, HealthEv, Seed};
use crate::lvs::LvsHandle;
use crate::notify::Hooks;
use crate::routes::Routes;
use crate::vrrp_io::{Family, GarpJob, Rx, Sock, SockKey, Vip};
use lbd_health::{Model as HealthModel, RsId, Transition as HealthTransition};

const PROTO_VRRP: u8 = 112;
const PROTO_AH: u8 = 51;

enum Ev {
    Vrrp(Rx),
    Link(LinkEvent),
}

/// The daemon's side of one instance (its index is the router's
/// `InstanceId`): configuration and kernel state; the protocol state is in
/// the router.
struct Inst {
    cfg: VrrpInstance,
    vips: Vec<Vip>,
    group: Option<usize>,
    last_tx_err: Option<String>,
    /// Removed by a reload; the slot stays (ids are the router's indices).
    removed: bool,
}

/// The daemon's side of one sync group (index = the router's `GroupId`).
struct Group {
    name: String,
    /// Dissolved by a reload; the slot stays (ids are the router's indices).
    removed: bool,
}

struct Node {
    nl: Netlink,
    socks: Vec<(SockKey, Sock)>,
    /// Link and address lookups of the current build or reload.
    lookups: build::Lookups,
    /// Sockets `..listening` have their receive task.
    listening: usize,
    /// Where receive tasks send; set once the loop runs.
    ev_tx: Option<mpsc::UnboundedSender<Ev>>,
    /// Every VRRP protocol decision: instances, sync groups, receive rules.
    router: Router,
    insts: Vec<Inst>,
    groups: Vec<Group>,
    /// Link name -> usable (admin up and carrier).
    links: HashMap<String, bool>,
    macs: HashMap<u32, [u8; 6]>,
    garp: HashMap<u32, Arc<GarpSender>>,
    garp_interval: Duration,
    gna_interval: Duration,
    /// nftables drop rules are installed for no_accept VIPs.
    no_accept_installed: bool,
    /// IPVS reconciler, when virtual servers are configured.
    lvs: Option<LvsHandle>,
    /// The latest configuration: health changes recompute IPVS from it.
    cfg: Config,
    /// The configuration the VRRP side runs on: tracking (script weights,
    /// sync-group references) reads it. A reload replaces it in the same
    /// step as it reconfigures the instances, never before.
    vrrp_cfg: Config,
    /// Generation of the running checks; a reload starts the next one.
    health_gen: u64,
    /// Plugin host, when anything needs a plugin.
    host: Option<lbd_plugin::Host>,
    /// Running checkers and tracked scripts.
    checks: Health,
    /// The one health model: checkers, servers, quorum, scripts.
    health: HealthModel,
    /// The kernel services of the latest configuration's virtual servers.
    plan: crate::lvs_desired::Plan,
    hooks: Hooks,
    health_tx: Option<mpsc::UnboundedSender<HealthEv>>,
    /// virtual_routes and static_routes, changed off the VRRP loop.
    routes: Routes,
    /// The one event stream (see `crate::events`); the API reads it.
    events: crate::events::EventLog,
    /// Prometheus metrics; the API scrapes them.
    metrics: crate::metrics::Metrics,
    /// Dropped adverts become events at a limited rate.
    drop_events: crate::events::DropLimiter,
    /// Per instance, by name (an index may change with a reload).
    observed: HashMap<String, observe::Observed>,
    /// Plugin stops are being watched (the host may start at a reload).
    watching_plugins: bool,
    /// Per instance name: what `/status` shows beyond the router's state.
    seen: HashMap<String, status::Seen>,
    /// The plugin files loaded, for `/status`.
    plugin_files: Vec<crate::plugins::PluginFile>,
    config_path: std::path::PathBuf,
}

/// How route logs name a set of routes.
const STATIC_ROUTES: &str = "static_routes";

fn route_owner(instance: &str) -> String {
    format!("VRRP_Instance({instance})")
}

pub async fn run(
    config: Config,
    path: std::path::PathBuf,
    api: crate::api::Listeners,
) -> Result<()> {
    // Before any slow start-up work: a signal arriving during it must not
    // take its default action (terminate, without cleanup).
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut sigusr1 = signal(SignalKind::user_defined1()).context("installing SIGUSR1 handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    // Before any child is spawned: PID 1 reaps orphans from the start.
    crate::pid1::start()?;
    let (nl, mut link_events) = Netlink::connect()
        .await
        .context("opening the netlink connection")?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Ev>();
    let mut node = Node::build(nl, &config).await?;
    node.config_path = path.clone();
    let (control_tx, mut control_rx) = mpsc::channel(64);
    crate::api::serve(
        api,
        crate::api::Shared {
            events: node.events.clone(),
            metrics: node.metrics.clone(),
            control: control_tx,
        },
    )?;
    let (health_tx, mut health_rx) = mpsc::unbounded_channel::<HealthEv>();
    node.health_tx = Some(health_tx.clone());
    node.start_plugins(&config)?;
    // IPVS first: when an instance becomes master its services are in place.
    node.plan = crate::lvs_desired::Plan::new(&config)?;
    node.lvs = crate::lvs::start(&config, &node.plan, &node.health, node.events.clone()).await?;
    node.refresh_metrics_of_config();
    if let Some(host) = &node.host {
        let seed = Seed {
            gen: node.health_gen,
            health: &node.health,
            metrics: &node.metrics.checks,
        };
        node.checks = crate::health::start(host, &config, &seed, health_tx.clone());
    }

    node.ev_tx = Some(tx.clone());
    node.spawn_receivers();
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(ev) = link_events.next().await {
                if tx.send(Ev::Link(ev)).is_err() {
                    break;
                }
            }
        });
    }

    let mut running = config.clone();
    let (reload_tx, mut reload_rx) = mpsc::unbounded_channel();
    let mut reloader = crate::setup::Reloader::new(reload_tx);
    let mut reload_waiters = crate::control::ReloadWaiters::default();

    node.install_no_accept()?;
    node.start(Instant::now()).await;
    let mut resync = tokio::time::interval(Duration::from_secs(5));
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    info!("lbd running: {} vrrp instance(s)", node.live().len());
    // The first VRRP decisions are taken and IPVS is applied (lvs::start).
    let mut sd = crate::service::Notifier::from_env();
    let mut servers = node.servers_up();
    sd.status(node.status_line(servers));
    sd.ready();
    let mut watchdog = sd.watchdog_interval().map(|every| {
        let mut i = tokio::time::interval(every);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });

    loop {
        sd.stall_if_asked();
        let deadline = node.router.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => node.on_event(ev).await,
                None => bail!("internal event channel closed"),
            },
            _ = sleep => node.router.handle_timeout(Instant::now()),
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
            _ = sigusr1.recv() => {
                info!("counters: {}", node.metrics.counters_line());
                if let Some(l) = &node.lvs {
                    l.log_counters();
                }
                if let Some(h) = &node.host {
                    for (name, s) in h.stats().await {
                        info!("plugin {name}: calls {} failures {} errors {} stopped_cpu {} stopped_memory {} memory {} KiB",
                            s.calls, s.failures, s.errors, s.stopped_cpu, s.stopped_memory, s.memory >> 10);
                    }
                }
            }
            _ = sighup.recv() => reloader.request(&path),
            Some(loaded) = reload_rx.recv() => {
                sd.reloading();
                let outcome = node.reload(&path, loaded, &mut running).await;
                let mut detail = serde_json::Map::new();
                let label = match &outcome {
                    Ok(()) => {
                        detail.insert("outcome".into(), "applied".into());
                        "ok"
                    }
                    Err(e) => {
                        detail.insert("outcome".into(), "refused".into());
                        detail.insert("error".into(), e.as_str().into());
                        "failed"
                    }
                };
                node.metrics
                    .reloads
                    .get_or_create(&crate::metrics::OutcomeLabels { outcome: label.into() })
                    .inc();
                let ev = node.emit("reload", &path.display().to_string(), detail);
                node.refresh_metrics_of_config();
                reloader.finished(&path);
                servers = node.servers_up();
                // Refused or applied, lbd runs on a configuration again.
                sd.ready();
                let reply = outcome.map(|()| crate::control::ReloadDone { event: ev.seq });
                reload_waiters.finished(&reply, reloader.busy());
            }
            Some(req) = control_rx.recv() => match req {
                crate::control::Request::Reload(reply) => {
                    reload_waiters.request(reply, &mut reloader, &path);
                }
                req => node.on_control(Instant::now(), req),
            },
            _ = resync.tick() => {
                node.resync_links(Instant::now()).await;
                node.expire_drop_events(Instant::now());
            }
            Some(h) = health_rx.recv() => {
                node.on_health(Instant::now(), h);
                servers = node.servers_up();
            }
            _ = notify_status::tick(&mut watchdog) => sd.watchdog(),
        }
        node.flush().await;
        node.refresh_priorities();
        sd.status(node.status_line(servers));
    }
    sd.stopping();
    node.stop().await;
    info!("counters: {}", node.metrics.counters_line());
    Ok(())
}

fn to_version(v: VrrpVersion) -> Version {
    match v {
        VrrpVersion::V2 => Version::V2,
        VrrpVersion::V3 => Version::V3,
    }
}

impl Node {
    async fn build(nl: Netlink, config: &Config) -> Result<Node> {
        let g = &config.global;
        let routes = Routes::start(nl.clone());
        let mut node = Node {
            nl,
            socks: Vec::new(),
            lookups: build::Lookups::default(),
            listening: 0,
            ev_tx: None,
            router: Router::new(),
            insts: Vec::new(),
            groups: Vec::new(),
            links: HashMap::new(),
            macs: HashMap::new(),
            garp: HashMap::new(),
            garp_interval: g.garp_interval,
            gna_interval: g.gna_interval,
            no_accept_installed: false,
            lvs: None,
            cfg: config.clone(),
            vrrp_cfg: config.clone(),
            health_gen: 0,
            host: None,
            checks: Health::default(),
            health: HealthModel::default(),
            plan: crate::lvs_desired::Plan::default(),
            hooks: Hooks::default(),
            health_tx: None,
            routes,
            events: crate::events::EventLog::new(crate::events::DEFAULT_CAPACITY),
            metrics: crate::metrics::Metrics::new(),
            drop_events: crate::events::DropLimiter::default(),
            observed: HashMap::new(),
            watching_plugins: false,
            seen: HashMap::new(),
            plugin_files: Vec::new(),
            config_path: std::path::PathBuf::new(),
        };
        node.events.count_in(node.metrics.events.clone());
        for l in node.nl.links().await.context("listing links")? {
            node.links.insert(l.name.clone(), l.up);
            node.macs.insert(l.index, l.mac);
        }
        for cfg in &config.instances {
            let inst = node
                .build_instance(cfg, config)
                .await
                .with_context(|| format!("vrrp_instance {} ({})", cfg.name, cfg.span))?;
            node.insts.push(inst);
        }
        for sg in &config.sync_groups {
            node.add_group(sg)?;
        }
        Ok(node)
    }

    /// Forms a sync group over running instances.
    fn add_group(&mut self, sg: &lbd_config::SyncGroup) -> Result<()> {
        let gi = self.groups.len();
        let mut members = Vec::new();
        for m in &sg.members {
            let Some(i) = self.live_inst(m) else {
                bail!("sync group {} ({}): unknown instance {m}", sg.name, sg.span);
            };
            members.push(i);
        }
        self.router
            .add_sync_group(&members)
            .with_context(|| format!("sync group {} ({})", sg.name, sg.span))?;
        for &i in &members {
            self.insts[i].group = Some(gi);
        }
        self.groups.push(Group {
            name: sg.name.clone(),
            removed: false,
        });
        Ok(())
    }

    /// The id of the running (not removed) instance `name`.
    fn live_inst(&self, name: &str) -> Option<usize> {
        self.insts
            .iter()
            .position(|x| !x.removed && x.cfg.name == name)
    }

    /// Ids of the running instances.
    fn live(&self) -> Vec<usize> {
        (0..self.insts.len())
            .filter(|&i| !self.insts[i].removed)
            .collect()
    }

    /// Netlink events can be lost (ENOBUFS): re-read link state now and
    /// then and act on any difference.
    async fn resync_links(&mut self, now: Instant) {
        let links = match self.nl.links().await {
            Ok(l) => l,
            Err(e) => return warn!("re-reading links: {e}"),
        };
        for l in links {
            self.macs.insert(l.index, l.mac);
            if self.links.insert(l.name.clone(), l.up) != Some(l.up) {
                info!(
                    "link {} is {} (resync)",
                    l.name,
                    if l.up { "up" } else { "down" }
                );
                self.retrack(now, &l.name);
            }
        }
    }

    async fn start(&mut self, now: Instant) {
        // A previous lbd killed with SIGKILL may have left VIPs behind: a
        // node that is not master must not hold them.
        // Static routes first: keepalived installs them before VRRP starts.
        self.routes.install(STATIC_ROUTES, &self.cfg.static_routes);
        for i in self.live() {
            self.remove_vips(i, true).await;
            // Same for routes; the queue runs this before any install.
            let inst = &self.insts[i].cfg;
            self.routes
                .remove(&route_owner(&inst.name), &inst.virtual_routes, true);
            let (fault, adj) = self.tracking(i);
            self.router.set_tracking(now, i, fault, adj);
        }
        self.router.startup(now);
        self.flush().await;
    }

    async fn stop(&mut self) {
        self.router.shutdown(Instant::now());
        self.flush().await;
        for i in self.live() {
            self.remove_vips(i, true).await;
        }
        // Masters' virtual routes were queued for removal by their
        // transitions above; static routes go last, as in keepalived.
        self.routes
            .remove(STATIC_ROUTES, &self.cfg.static_routes, false);
        self.routes.flush().await;
        // keepalived's notify_stop, instances then groups.
        for i in self.live() {
            let mut d = serde_json::Map::new();
            d.insert("state".into(), "STOP".into());
            if let Some(prev) = self.router.state(i).and_then(state_name) {
                d.insert("prev".into(), prev.into());
            }
            d.insert("reason".into(), "Shutdown".into());
            d.insert("priority".into(), 0.into());
            let name = self.insts[i].cfg.name.clone();
            self.emit("instance", &name, d);
        }
        let groups: Vec<usize> = (0..self.groups.len())
            .filter(|&g| !self.groups[g].removed)
            .collect();
        for gi in groups {
            let mut d = serde_json::Map::new();
            d.insert("state".into(), "STOP".into());
            if let Some(prev) = self.router.group_notified(gi).and_then(state_name) {
                d.insert("prev".into(), prev.into());
            }
            let name = self.groups[gi].name.clone();
            self.emit("group", &name, d);
        }
        self.checks = Health::default();
        // Drop the senders so the queues end, then let them drain.
        self.hooks = Hooks::default();
        if let Some(h) = self.host.take() {
            h.shutdown(Duration::from_secs(10)).await;
        }
        if let Some(l) = &self.lvs {
            l.stop().await;
        }
        if self.no_accept_installed {
            if let Err(e) = lbd_sys::firewall::remove_no_accept() {
                warn!("{e}");
            }
        }
    }

    async fn on_event(&mut self, ev: Ev) {
        let now = Instant::now();
        match ev {
            Ev::Vrrp(Rx::Packet { sock, packet }) => {
                self.router.handle_datagram(now, sock, packet.datagram())
            }
            Ev::Vrrp(Rx::Error { sock, error }) => {
                let name = self
                    .socks
                    .get(sock)
                    .map(|(k, _)| k.ifname.clone())
                    .unwrap_or_default();
                warn!("receive on {name}: {error}");
                self.metrics
                    .vrrp
                    .receive_errors
                    .get_or_create(&crate::metrics::InterfaceLabels { interface: name })
                    .inc();
            }
            Ev::Link(LinkEvent::Changed(l)) => {
                self.macs.insert(l.index, l.mac);
                let before = self.links.insert(l.name.clone(), l.up);
                if before != Some(l.up) {
                    info!("link {} is {}", l.name, if l.up { "up" } else { "down" });
                    self.retrack(now, &l.name);
                }
            }
            Ev::Link(LinkEvent::Removed { name, .. }) => {
                info!("link {name} removed");
                self.links.insert(name.clone(), false);
                self.retrack(now, &name);
            }
        }
    }
}
