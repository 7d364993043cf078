//! The VRRP node: feeds the protocol core (`lbd_vrrp::router::Router`) with
//! what the kernel edges observe (datagrams, link state, tracked scripts) and
//! carries out what it decides (adverts, VIPs, GARP, routes, notify hooks).
//! One task, one event loop: every state change passes through here in the
//! order it happened. Socket and GARP I/O is in `vrrp_io`.

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

use crate::counters::Counters;
use crate::health::{Change, Health, HealthEv, Seed};
use crate::lvs::LvsHandle;
use crate::notify::{Hooks, Transition};
use crate::routes::Routes;
use crate::vrrp_io::{Family, GarpJob, Rx, Sock, SockKey, Vip};
use lbd_health::{Model as HealthModel, RsId, Transition as HealthTransition};
use lbd_plugin::EventKind;

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
}

/// The daemon's side of one sync group (index = the router's `GroupId`).
struct Group {
    name: String,
}

struct Node {
    nl: Netlink,
    socks: Vec<(SockKey, Sock)>,
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
    counters: Counters,
    /// nftables drop rules are installed for no_accept VIPs.
    no_accept_installed: bool,
    /// IPVS reconciler, when virtual servers are configured.
    lvs: Option<LvsHandle>,
    /// The latest configuration: health changes recompute IPVS from it.
    cfg: Config,
    /// The configuration the VRRP side runs on until lbd restarts: a reload
    /// does not reach the instances, so their tracking (script weights,
    /// sync-group references) must not read the new one either.
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
}

/// How route logs name a set of routes.
const STATIC_ROUTES: &str = "static_routes";

fn route_owner(instance: &str) -> String {
    format!("VRRP_Instance({instance})")
}

pub async fn run(config: Config, path: std::path::PathBuf) -> Result<()> {
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
    let (health_tx, mut health_rx) = mpsc::unbounded_channel::<HealthEv>();
    node.health_tx = Some(health_tx.clone());
    node.start_plugins(&config)?;
    // IPVS first: when an instance becomes master its services are in place.
    node.plan = crate::lvs_desired::Plan::new(&config)?;
    node.lvs = crate::lvs::start(&config, &node.plan, &node.health).await?;
    if let Some(host) = &node.host {
        let seed = Seed {
            gen: node.health_gen,
            health: &node.health,
        };
        node.checks = crate::health::start(host, &config, &seed, health_tx.clone());
    }

    for (i, (key, sock)) in node.socks.iter().enumerate() {
        let tx = tx.clone();
        crate::vrrp_io::spawn_receiver(i, key.clone(), sock.clone(), move |rx| {
            tx.send(Ev::Vrrp(rx)).is_ok()
        });
    }
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

    node.install_no_accept()?;
    node.start(Instant::now()).await;
    let mut resync = tokio::time::interval(Duration::from_secs(5));
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    info!("lbd running: {} vrrp instance(s)", node.insts.len());

    loop {
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
                info!("counters: {}", node.counters.render());
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
                node.reload(&path, loaded, &mut running);
                reloader.finished(&path);
            }
            _ = resync.tick() => node.resync_links(Instant::now()).await,
            Some(h) = health_rx.recv() => node.on_health(Instant::now(), h),
        }
        node.flush().await;
    }
    node.stop().await;
    info!("counters: {}", node.counters.render());
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
            router: Router::new(),
            insts: Vec::new(),
            groups: Vec::new(),
            links: HashMap::new(),
            macs: HashMap::new(),
            garp: HashMap::new(),
            garp_interval: g.garp_interval,
            gna_interval: g.gna_interval,
            counters: Counters::default(),
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
        };
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
            let gi = node.groups.len();
            let mut members = Vec::new();
            for m in &sg.members {
                let Some(i) = node.insts.iter().position(|x| &x.cfg.name == m) else {
                    bail!("sync group {} ({}): unknown instance {m}", sg.name, sg.span);
                };
                node.insts[i].group = Some(gi);
                members.push(i);
            }
            node.router
                .add_sync_group(&members)
                .with_context(|| format!("sync group {} ({})", sg.name, sg.span))?;
            node.groups.push(Group {
                name: sg.name.clone(),
            });
        }
        Ok(node)
    }

    async fn build_instance(&mut self, cfg: &VrrpInstance, config: &Config) -> Result<Inst> {
        let g = &config.global;
        let link = self
            .nl
            .link_by_name(&cfg.interface)
            .await
            .with_context(|| format!("interface {}", cfg.interface))?;
        // keepalived 2.2 refuses to start on a tracked interface that does
        // not exist ("Non-existent interface specified in configuration")
        // unless dynamic_interfaces, where it counts as down until it appears.
        if !g.dynamic_interfaces {
            for t in &cfg.track_interfaces {
                if self.nl.link_by_name(&t.name).await.is_err() {
                    bail!(
                        "track_interface {}: no such interface (keepalived refuses to start too; \
                         set dynamic_interfaces to track it as down until it appears)",
                        t.name
                    );
                }
            }
        }
        let family = if cfg.is_ipv6() {
            Family::V6
        } else {
            Family::V4
        };
        let version = to_version(cfg.version);
        let proto = match (&cfg.auth, version) {
            (Some(lbd_config::Auth::Ah(_)), Version::V2) => PROTO_AH,
            _ => PROTO_VRRP,
        };
        let unicast = !cfg.unicast_peers.is_empty();
        let primary: IpAddr = match family {
            Family::V4 => match cfg.unicast_src.or(cfg.mcast_src) {
                Some(a) => a,
                None => IpAddr::V4(self.nl.primary_ipv4(link.index).await?.ok_or_else(|| {
                    anyhow!("{} has no IPv4 address to send adverts from", cfg.interface)
                })?),
            },
            Family::V6 => match cfg.unicast_src.or(cfg.mcast_src) {
                Some(a) => a,
                None => IpAddr::V6(self.wait_link_local(link.index, &cfg.interface).await?),
            },
        };
        let dsts: Vec<IpAddr> = if unicast {
            cfg.unicast_peers.clone()
        } else {
            match family {
                Family::V4 => vec![IpAddr::V4(g.mcast_group4)],
                Family::V6 => vec![IpAddr::V6(g.mcast_group6)],
            }
        };
        let key = SockKey {
            ifname: cfg.interface.clone(),
            family,
            proto,
            unicast,
            v3_checksum_as_v2: cfg.v3_checksum_as_v2,
            old_checksum_group: (unicast
                && version == Version::V3
                && family == Family::V4
                && cfg.old_unicast_checksum != OldUnicastChecksum::Never)
                .then_some(g.mcast_group4),
        };
        let sock = match self.socks.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let group = (!unicast).then_some(match family {
                    Family::V4 => IpAddr::V4(g.mcast_group4),
                    Family::V6 => IpAddr::V6(g.mcast_group6),
                });
                let s = Sock::open(&key, link.index, primary, group)?;
                self.router
                    .add_socket(self.socks.len(), key.router_config());
                self.socks.push((key, s));
                self.socks.len() - 1
            }
        };
        let mut vips = Vec::new();
        for v in cfg.vips.iter().chain(cfg.excluded_vips.iter()) {
            let ifname = v.dev.clone().unwrap_or_else(|| cfg.interface.clone());
            let l =
                self.nl.link_by_name(&ifname).await.with_context(|| {
                    format!("interface {ifname} of VIP {} ({})", v.addr, v.span)
                })?;
            if let std::collections::hash_map::Entry::Vacant(e) = self.garp.entry(l.index) {
                e.insert(Arc::new(GarpSender::open(l.index, &ifname)?));
            }
            vips.push(Vip {
                ifindex: l.index,
                ifname,
                spec: AddrSpec {
                    addr: v.addr,
                    prefix: v.prefix,
                    label: v.label.clone(),
                    scope: v.scope.map(scope_number),
                    brd: v.brd,
                },
            });
        }
        let advert_addrs: Vec<IpAddr> = cfg
            .vips
            .iter()
            .map(|v| v.addr)
            .filter(|a| {
                matches!(
                    (family, a),
                    (Family::V4, IpAddr::V4(_)) | (Family::V6, IpAddr::V6(_))
                )
            })
            .collect();
        let auth = cfg.auth.as_ref().map(|a| match a {
            lbd_config::Auth::Pass(p) => AuthKey::pass(p.as_bytes()),
            lbd_config::Auth::Ah(p) => AuthKey::ah(p.as_bytes()),
        });
        let fsm = InstanceConfig {
            vrid: cfg.vrid,
            version,
            priority: cfg.priority,
            advert_int: cfg.advert_int,
            preempt: cfg.preempt,
            preempt_delay: cfg.preempt_delay,
            initial_master: cfg.initial == InitialState::Master,
            primary_addr: primary,
            garp: GarpTiming {
                master_delay: cfg.garp.master_delay,
                master_repeat: cfg.garp.master_repeat,
                master_refresh: cfg.garp.master_refresh,
                master_refresh_repeat: cfg.garp.master_refresh_repeat,
            },
        };
        info!(
            "VRRP_Instance({}) on {} vrid {} {:?} {:?} priority {} source {} to {:?}",
            cfg.name, cfg.interface, cfg.vrid, version, family, cfg.priority, primary, dsts
        );
        self.router.add_instance(RouterInstanceConfig {
            name: cfg.name.clone(),
            fsm,
            socket: sock,
            dsts,
            advert_addrs,
            auth,
            v3_checksum_as_v2: cfg.v3_checksum_as_v2,
            check_addrs: !g.skip_check_adv_addr,
            unicast_peers: cfg.unicast_peers.clone(),
            check_unicast_src: g.check_unicast_src,
            old_checksum: match cfg.old_unicast_checksum {
                OldUnicastChecksum::Never => OldChecksum::Never,
                OldUnicastChecksum::Auto => OldChecksum::Auto,
                OldUnicastChecksum::Always => OldChecksum::Always,
            },
            mcast_group4: g.mcast_group4,
        })?;
        Ok(Inst {
            cfg: cfg.clone(),
            vips,
            group: None,
            last_tx_err: None,
        })
    }

    /// A fresh link-local address is tentative until DAD completes; wait a
    /// bounded time for it rather than failing at boot.
    async fn wait_link_local(&self, index: u32, ifname: &str) -> Result<Ipv6Addr> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(a) = self.nl.link_local_ipv6(index).await? {
                return Ok(a);
            }
            if Instant::now() > deadline {
                bail!("{ifname} has no IPv6 link-local address to send adverts from");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn link_up(&self, name: &str) -> bool {
        self.links.get(name).copied().unwrap_or(false)
    }

    /// Fault and priority adjustment from tracked interfaces (keepalived
    /// track_interface: weight 0 = fault; negative weight applies while
    /// down, positive while up).
    fn tracking(&self, i: usize) -> (bool, i32) {
        let cfg = &self.insts[i].cfg;
        let mut fault = !cfg.dont_track_primary && !self.link_up(&cfg.interface);
        let mut adj = 0;
        for t in &cfg.track_interfaces {
            let up = self.link_up(&t.name);
            match t.weight {
                0 if !up => fault = true,
                w if w < 0 && !up => adj += w,
                w if w > 0 && up => adj += w,
                _ => {}
            }
        }
        // keepalived applies a sync group's track_script to every member.
        let group_refs = self.insts[i]
            .group
            .and_then(|g| {
                self.vrrp_cfg
                    .sync_groups
                    .iter()
                    .find(|sg| sg.name == self.groups[g].name)
            })
            .map(|sg| sg.track_scripts.as_slice())
            .unwrap_or_default();
        for r in cfg.track_scripts.iter().chain(group_refs) {
            let Some(script) = self
                .vrrp_cfg
                .track_scripts
                .iter()
                .find(|s| s.name == r.name)
            else {
                continue;
            };
            let ok = self.health.script_ok(&r.name).unwrap_or(!script.init_fail);
            let (weight, reverse) = match r.weight {
                Some(w) => (w, r.reverse),
                None => (script.weight, script.weight_reverse),
            };
            let (f, a) = lbd_health::script_effect(weight, reverse, ok);
            fault |= f;
            adj += a;
        }
        (fault, adj)
    }

    /// SIGHUP: the configuration re-read (off this loop, by
    /// `setup::Reloader`). A bad file changes nothing. IPVS changes are
    /// applied as a diff; VRRP changes wait for a restart (a hitless VRRP
    /// reload comes with the operator-surface work).
    fn reload(
        &mut self,
        path: &std::path::Path,
        loaded: Result<lbd_config::Loaded>,
        running: &mut Config,
    ) {
        let loaded = match loaded {
            Ok(l) => l,
            Err(e) => {
                return error!(
                    "reload of {}: {e:#}; keeping the running configuration",
                    path.display()
                )
            }
        };
        for w in &loaded.warnings {
            warn!("{w}");
        }
        let new = loaded.config;
        // Routes are applied below; any other VRRP change waits.
        if crate::reload::vrrp_changed(running, &new) {
            warn!("reload: VRRP or global changes are not applied until lbd restarts (virtual_routes and static_routes are)");
        }
        let plan = match crate::lvs_desired::Plan::new(&new) {
            Ok(p) => p,
            Err(e) => return error!("reload: {e:#}; keeping the running configuration"),
        };
        match &self.lvs {
            Some(l) => l.reload(plan.desired(&self.health)),
            None if !plan.is_empty() => {
                warn!(
                    "reload: virtual servers were added; IPVS management starts when lbd restarts"
                )
            }
            None => {}
        }
        self.plan = plan;
        self.reload_routes(&new);
        info!("reloaded {}", path.display());
        // Checks restart on the new configuration, each from the state the
        // node holds for it (carried by identity, see reload.rs); changes
        // still queued from the replaced checks are dropped.
        if let (Some(host), Some(tx)) = (self.host.clone(), self.health_tx.clone()) {
            self.track_health_of(&new);
            self.health_gen += 1;
            let seed = Seed {
                gen: self.health_gen,
                health: &self.health,
            };
            self.checks = crate::health::start(&host, &new, &seed, tx);
            self.hooks = Hooks::new(&host, &new);
        }
        self.cfg = new.clone();
        *running = new;
    }

    /// SIGHUP: routes are applied as a diff. Static routes always; an
    /// instance's virtual routes change on the kernel only while it is
    /// master, and it takes the new list into its next transitions. An
    /// instance added or removed by the reload waits for the restart
    /// with the rest of its VRRP configuration.
    fn reload_routes(&mut self, new: &Config) {
        self.routes
            .apply_diff(STATIC_ROUTES, &self.cfg.static_routes, &new.static_routes);
        for (i, inst) in self.insts.iter_mut().enumerate() {
            let Some(n) = new.instances.iter().find(|n| n.name == inst.cfg.name) else {
                continue;
            };
            if crate::routes::same_list(&inst.cfg.virtual_routes, &n.virtual_routes) {
                continue;
            }
            let owner = route_owner(&inst.cfg.name);
            if self.router.state(i) == Some(State::Master) {
                self.routes
                    .apply_diff(&owner, &inst.cfg.virtual_routes, &n.virtual_routes);
            } else {
                info!("{owner}: reload: virtual_routes changed; applied when it is next master");
            }
            inst.cfg.virtual_routes = n.virtual_routes.clone();
        }
    }

    /// RFC 5798 §6.1: without Accept_Mode a non-owner master must not accept
    /// traffic to the VIPs. The rules stay for the life of lbd; while not
    /// master the VIPs are not local, so they drop nothing then.
    fn install_no_accept(&mut self) -> Result<()> {
        let addrs: Vec<IpAddr> = self
            .insts
            .iter()
            .filter(|i| !i.cfg.accept && i.cfg.priority != 255)
            .flat_map(|i| i.vips.iter().map(|v| v.spec.addr))
            .collect();
        if addrs.is_empty() {
            return Ok(());
        }
        lbd_sys::firewall::apply_no_accept(&addrs)?;
        self.no_accept_installed = true;
        info!(
            "no_accept: dropping traffic to {} VIP(s) (nftables table inet {})",
            addrs.len(),
            lbd_sys::firewall::TABLE
        );
        Ok(())
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
        for i in 0..self.insts.len() {
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
        for i in 0..self.insts.len() {
            self.remove_vips(i, true).await;
        }
        // Masters' virtual routes were queued for removal by their
        // transitions above; static routes go last, as in keepalived.
        self.routes
            .remove(STATIC_ROUTES, &self.cfg.static_routes, false);
        self.routes.flush().await;
        // keepalived's notify_stop, instances then groups.
        for (i, inst) in self.insts.iter().enumerate() {
            self.hooks.emit(Transition {
                kind: EventKind::Instance,
                name: &inst.cfg.name,
                state: "STOP",
                prev: self.router.state(i).and_then(state_name),
                priority: Some(0),
                vs: None,
            });
        }
        for (gi, g) in self.groups.iter().enumerate() {
            self.hooks.emit(Transition {
                kind: EventKind::Group,
                name: &g.name,
                state: "STOP",
                prev: self.router.group_notified(gi).and_then(state_name),
                priority: None,
                vs: None,
            });
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
                self.counters.bump("rx_error");
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

    fn retrack(&mut self, now: Instant, link: &str) {
        for i in 0..self.insts.len() {
            let cfg = &self.insts[i].cfg;
            let concerned =
                cfg.interface == link || cfg.track_interfaces.iter().any(|t| t.name == link);
            if !concerned {
                continue;
            }
            let (fault, adj) = self.tracking(i);
            self.router.set_tracking(now, i, fault, adj);
        }
    }

    /// Starts the plugin host when anything needs a plugin, and refuses a
    /// configuration naming a plugin that none of the plugin files provides.
    fn start_plugins(&mut self, c: &Config) -> Result<()> {
        let needed = c
            .virtual_servers
            .iter()
            .any(|vs| vs.real_servers.iter().any(|r| !r.checks.is_empty()))
            || !c.track_scripts.is_empty()
            || !c.all_notify_hooks().is_empty();
        self.health = HealthModel::new(c, crate::health::alpha);
        if !needed {
            return Ok(());
        }
        crate::plugins::script_security(c)?;
        let host = crate::plugins::start(c)?;
        crate::plugins::verify(&host, c)?;
        self.track_health_of(c);
        self.hooks = Hooks::new(&host, c);
        self.host = Some(host);
        Ok(())
    }

    /// The health model of a reloaded configuration, carried from the
    /// running one by identity (lbd-health).
    fn track_health_of(&mut self, c: &Config) {
        self.health = self.health.reload(&self.cfg, c, crate::health::alpha);
    }

    fn on_health(&mut self, now: Instant, ev: HealthEv) {
        if ev.gen != self.health_gen {
            return debug!("dropping a change from checks replaced by a reload: {ev:?}");
        }
        match ev.change {
            Change::Script { name, ok } => {
                if self.health.on_script(&name, ok).transitions.is_empty() {
                    return;
                }
                for i in 0..self.insts.len() {
                    let direct = self.insts[i]
                        .cfg
                        .track_scripts
                        .iter()
                        .any(|r| r.name == name);
                    let via_group = self.insts[i].group.is_some_and(|g| {
                        self.vrrp_cfg.sync_groups.iter().any(|sg| {
                            sg.name == self.groups[g].name
                                && sg.track_scripts.iter().any(|r| r.name == name)
                        })
                    });
                    if direct || via_group {
                        let (fault, adj) = self.tracking(i);
                        self.router.set_tracking(now, i, fault, adj);
                    }
                }
            }
            Change::Checker {
                rs,
                checker,
                up,
                weight,
                message,
            } => self.on_checker(rs, checker, up, weight, &message),
        }
    }

    /// A checker changed: the model says what that did (a server up or
    /// down, a weight, a quorum); this logs it, notifies, and sends the
    /// changed services to the reconciler.
    fn on_checker(
        &mut self,
        id: RsId,
        checker: usize,
        up: bool,
        weight: Option<u32>,
        message: &str,
    ) {
        let out = self.health.on_checker(&id, checker, up, weight, message);
        for t in &out.transitions {
            self.health_transition(t);
        }
        if let Some(l) = &self.lvs {
            for vs in &out.changed {
                l.update(self.plan.services_of(vs, &self.health));
            }
        }
    }

    fn health_transition(&mut self, t: &HealthTransition) {
        match t {
            HealthTransition::RsUp { id, message } | HealthTransition::RsDown { id, message } => {
                let up = matches!(t, HealthTransition::RsUp { .. });
                let (state, what) = if up { ("UP", "up") } else { ("DOWN", "down") };
                info!("real server {id} is {what} ({message})");
                self.counters.bump(if up { "rs_up" } else { "rs_down" });
                self.hooks.emit(Transition {
                    kind: EventKind::Rs,
                    name: &id.addr(),
                    state,
                    prev: Some(if up { "DOWN" } else { "UP" }),
                    priority: None,
                    vs: Some(&id.vs),
                });
            }
            HealthTransition::RsWeight {
                id,
                weight,
                message,
            } => info!("real server {id}: weight {weight:?} ({message})"),
            HealthTransition::QuorumReached { vs, quorum, live }
            | HealthTransition::QuorumLost { vs, quorum, live } => {
                let now_up = matches!(t, HealthTransition::QuorumReached { .. });
                if now_up {
                    info!("virtual server {vs}: quorum {quorum} reached (live weight {live})");
                } else {
                    warn!("virtual server {vs}: quorum {quorum} lost (live weight {live})");
                }
                self.hooks.emit(Transition {
                    kind: EventKind::Vs,
                    name: vs,
                    state: if now_up { "UP" } else { "DOWN" },
                    prev: Some(if now_up { "DOWN" } else { "UP" }),
                    priority: None,
                    vs: None,
                });
            }
            // Logged by the script's job; its effect is the tracking's.
            HealthTransition::ScriptOk { .. } | HealthTransition::ScriptFailed { .. } => {}
        }
    }

    /// Carries out what the router decided: adverts first (the peer's
    /// takeover never waits for netlink or hooks), then the events in order.
    /// Events cause no input back into the router, so one pass drains it.
    async fn flush(&mut self) {
        while let Some(t) = self.router.poll_transmit() {
            self.transmit(t).await;
        }
        while let Some(ev) = self.router.poll_event() {
            self.on_router_event(ev).await;
        }
    }

    async fn on_router_event(&mut self, ev: VrrpEvent) {
        match ev {
            VrrpEvent::AddVips { instance } => self.add_vips(instance).await,
            VrrpEvent::RemoveVips { instance } => self.remove_vips(instance, false).await,
            VrrpEvent::SendGarp { instance, count } => self.send_garp(instance, count),
            VrrpEvent::StateChange {
                instance,
                from,
                to,
                reason,
                priority,
            } => self.on_state_change(instance, from, to, reason, priority),
            VrrpEvent::GroupStateChange { group, from, to } => {
                let Some(g) = self.groups.get(group) else {
                    return;
                };
                if let Some(state) = state_name(to) {
                    info!("VRRP_Group({}) {state}", g.name);
                    self.hooks.emit(Transition {
                        kind: EventKind::Group,
                        name: &g.name,
                        state,
                        prev: from.and_then(state_name),
                        priority: None,
                        vs: None,
                    });
                }
            }
            VrrpEvent::GroupForced {
                group,
                instance,
                input,
            } => debug!(
                "sync group {}: {input:?} to {}",
                self.groups.get(group).map_or("?", |g| g.name.as_str()),
                self.inst_name(instance)
            ),
            VrrpEvent::Accepted { .. } => self.counters.bump("rx_advert"),
            VrrpEvent::Dropped { socket, error, .. } => {
                let iface = self.socks.get(socket).map_or("", |(k, _)| k.ifname.as_str());
                let reason = error.reason.as_str();
                // The format is stable: tests and operators grep it.
                match error.vrid {
                    Some(v) => debug!("drop iface={iface} vrid={v} reason={reason}: {error}"),
                    None => debug!("drop iface={iface} vrid=- reason={reason}: {error}"),
                }
                self.counters.bump(&format!("drop_{reason}"));
            }
            VrrpEvent::OldChecksumSwitch { instance, peer } => info!(
                "VRRP_Instance({}) peer {peer} uses keepalived's old unicast checksum: using it too",
                self.inst_name(instance)
            ),
            VrrpEvent::DrainLimit => {
                error!("vrrp: internal work did not settle; some actions were left queued")
            }
        }
    }

    fn inst_name(&self, i: usize) -> &str {
        self.insts.get(i).map_or("?", |x| x.cfg.name.as_str())
    }

    fn on_state_change(
        &mut self,
        i: usize,
        from: State,
        to: State,
        reason: lbd_vrrp::instance::Reason,
        priority: u8,
    ) {
        let Some(inst) = self.insts.get(i) else {
            return;
        };
        info!(
            "VRRP_Instance({}) {:?} -> {:?} ({:?}) priority {}",
            inst.cfg.name, from, to, reason, priority
        );
        self.counters.bump(&format!("state_{to:?}").to_lowercase());
        if let Some(l) = &self.lvs {
            l.instance_state(&inst.cfg.name, to == State::Master);
        }
        // After the transition's VIPs, advert and GARP (and, leaving
        // master, after the priority-0 advert and the VIP removal): the
        // peer's takeover never waits for routes. A route whose `src` is a
        // VIP is flushed by the kernel with the address; removing it again
        // is a tolerated ESRCH.
        if to == State::Master {
            self.routes
                .install(&route_owner(&inst.cfg.name), &inst.cfg.virtual_routes);
        } else if from == State::Master {
            self.routes.remove(
                &route_owner(&inst.cfg.name),
                &inst.cfg.virtual_routes,
                false,
            );
        }
        // After the critical work (VIPs, GARP) of the transition.
        if let Some(state) = state_name(to) {
            self.hooks.emit(Transition {
                kind: EventKind::Instance,
                name: &inst.cfg.name,
                state,
                prev: state_name(from),
                priority: Some(priority),
                vs: None,
            });
        }
    }

    async fn transmit(&mut self, t: Transmit) {
        let r = match self.socks.get(t.socket) {
            Some((_, sock)) => sock.send(&t).await,
            None => Err(format!("no socket {}", t.socket)),
        };
        let Some(inst) = self.insts.get_mut(t.instance) else {
            return;
        };
        match r {
            Err(e) => {
                self.counters.bump("tx_error");
                // Log a failure once, not at every advert interval.
                if inst.last_tx_err.as_deref() != Some(e.as_str()) {
                    warn!("VRRP_Instance({}) sending advert: {e}", inst.cfg.name);
                    inst.last_tx_err = Some(e);
                }
            }
            Ok(()) if t.last => {
                self.counters.bump("tx_advert");
                inst.last_tx_err = None;
            }
            Ok(()) => {}
        }
    }

    async fn add_vips(&mut self, i: usize) {
        for v in &self.insts[i].vips {
            match self.nl.addr_add(v.ifindex, &v.spec).await {
                Ok(()) => debug!(
                    "VIP {}/{} added on {}",
                    v.spec.addr, v.spec.prefix, v.ifname
                ),
                Err(e) => error!("VRRP_Instance({}): {e}", self.insts[i].cfg.name),
            }
        }
    }

    async fn remove_vips(&mut self, i: usize, quiet: bool) {
        for v in &self.insts[i].vips {
            if let Err(e) = self
                .nl
                .addr_del(v.ifindex, v.spec.addr, v.spec.prefix)
                .await
            {
                if !quiet {
                    error!("VRRP_Instance({}): {e}", self.insts[i].cfg.name);
                }
            }
        }
    }

    fn send_garp(&mut self, i: usize, count: u32) {
        let mut jobs = Vec::new();
        for v in &self.insts[i].vips {
            let (Some(s), Some(mac)) = (self.garp.get(&v.ifindex), self.macs.get(&v.ifindex))
            else {
                continue;
            };
            jobs.push(GarpJob {
                sender: s.clone(),
                mac: *mac,
                addr: v.spec.addr,
                ifname: v.ifname.clone(),
            });
        }
        self.counters.bump("garp_burst");
        let name = self.insts[i].cfg.name.clone();
        crate::vrrp_io::send_garp(name, jobs, count, self.garp_interval, self.gna_interval);
    }
}

/// keepalived's names of the states in notify arguments and fifo lines.
fn state_name(s: State) -> Option<&'static str> {
    match s {
        State::Initialize => None,
        State::Backup => Some("BACKUP"),
        State::Master => Some("MASTER"),
        State::Fault => Some("FAULT"),
    }
}

fn scope_number(s: lbd_config::Scope) -> u8 {
    // rtnetlink scope values from linux/rtnetlink.h (enum rt_scope_t).
    match s {
        lbd_config::Scope::Global => 0,
        lbd_config::Scope::Site => 200,
        lbd_config::Scope::Link => 253,
        lbd_config::Scope::Host => 254,
        lbd_config::Scope::Nowhere => 255,
        lbd_config::Scope::Other(n) => n,
    }
}
