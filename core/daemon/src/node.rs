//! The VRRP node: owns every instance's state machine and wires it to the
//! kernel edges (netlink, raw sockets, GARP). One task, one event loop: every
//! state change passes through here in the order it happened.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use lbd_config::{Config, InitialState, OldUnicastChecksum, VrrpInstance, VrrpVersion};
use lbd_sys::GarpSender;
use lbd_sys::{AddrSpec, LinkEvent, Netlink};
use lbd_sys::{VrrpSocketV4, VrrpSocketV6};
use lbd_vrrp::auth::{AhReplayState, AuthKey};
use lbd_vrrp::codec;
use lbd_vrrp::instance::{Action, GarpTiming, Input, Instance, InstanceConfig, State};
use lbd_vrrp::sync_group::SyncGroup;
use lbd_vrrp::{Advert, Version};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::counters::Counters;
use crate::health::{Change, Health, HealthEv, Seed};
use crate::lvs::LvsHandle;
use crate::notify::{Hooks, Transition};
use crate::routes::Routes;
use lbd_health::{Model as HealthModel, RsId, Transition as HealthTransition};
use lbd_plugin::EventKind;

const PROTO_VRRP: u8 = 112;
const PROTO_AH: u8 = 51;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Family {
    V4,
    V6,
}

/// One socket per interface, family, protocol and receive options (instances
/// with different checksum modes or unicast/multicast need their own).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct SockKey {
    ifname: String,
    family: Family,
    proto: u8,
    unicast: bool,
    v3_checksum_as_v2: bool,
    /// Accept keepalived's old v3 unicast checksum (multicast group in the pseudo-header).
    old_checksum_group: Option<Ipv4Addr>,
}

#[derive(Clone)]
enum Sock {
    V4(Arc<VrrpSocketV4>),
    V6(Arc<VrrpSocketV6>),
}

enum Ev {
    Rx {
        sock: usize,
        result: Box<Result<codec::Parsed, codec::DecodeError>>,
    },
    RxError {
        sock: usize,
        error: String,
    },
    Link(LinkEvent),
}

struct Vip {
    ifindex: u32,
    ifname: String,
    spec: AddrSpec,
}

struct Inst {
    cfg: VrrpInstance,
    fsm: Instance,
    sock: usize,
    primary: IpAddr,
    dsts: Vec<IpAddr>,
    /// What we advertise; only the priority changes between sends.
    advert: Advert,
    rx: codec::InstanceRx,
    replay: AhReplayState,
    tx: codec::TxOpts,
    vips: Vec<Vip>,
    group: Option<usize>,
    last_tx_err: Option<String>,
}

struct Group {
    name: String,
    /// Member id (index here) -> instance index.
    members: Vec<usize>,
    sync: SyncGroup,
    /// Last state notified for the whole group.
    notified: Option<State>,
}

struct Node {
    nl: Netlink,
    socks: Vec<(SockKey, Sock)>,
    insts: Vec<Inst>,
    groups: Vec<Group>,
    /// Link name -> usable (admin up and carrier).
    links: HashMap<String, bool>,
    macs: HashMap<u32, [u8; 6]>,
    garp: HashMap<u32, Arc<GarpSender>>,
    garp_interval: Duration,
    gna_interval: Duration,
    check_unicast_src: bool,
    counters: Counters,
    /// nftables drop rules are installed for no_accept VIPs.
    no_accept_installed: bool,
    mcast_group4: Ipv4Addr,
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
        spawn_receiver(i, key.clone(), sock.clone(), tx.clone());
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
        let deadline = node.insts.iter().filter_map(|i| i.fsm.poll_timeout()).min();
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
            _ = sleep => {
                let now = Instant::now();
                for i in 0..node.insts.len() {
                    node.insts[i].fsm.handle_timeout(now);
                }
            }
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
        node.run_actions().await;
    }
    node.stop().await;
    info!("counters: {}", node.counters.render());
    Ok(())
}

fn spawn_receiver(index: usize, key: SockKey, sock: Sock, tx: mpsc::UnboundedSender<Ev>) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        // RFC 5798 §7.1 requires TTL 255; keepalived does not insist on it
        // for unicast peers, which may be routed.
        let opts = codec::RxOpts {
            v3_checksum_as_v2: key.v3_checksum_as_v2,
            check_ttl: !key.unicast,
            old_unicast_checksum_group: key.old_checksum_group,
        };
        loop {
            let got = match &sock {
                Sock::V4(s) => s
                    .recv(&mut buf)
                    .await
                    .map(|n| codec::parse_ipv4(buf.get(..n).unwrap_or_default(), &opts)),
                Sock::V6(s) => s.recv(&mut buf).await.map(|r| {
                    codec::parse_ipv6(
                        buf.get(..r.len).unwrap_or_default(),
                        r.src,
                        r.dst,
                        r.hop_limit,
                        &opts,
                    )
                }),
            };
            let ev = match got {
                Ok(result) => Ev::Rx {
                    sock: index,
                    result: Box::new(result),
                },
                Err(e) => Ev::RxError {
                    sock: index,
                    error: e.to_string(),
                },
            };
            let failed = matches!(ev, Ev::RxError { .. });
            if tx.send(ev).is_err() {
                debug!("receiver for {key:?} stopping");
                return;
            }
            if failed {
                // A persistent socket error must not spin the loop.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
}

fn to_version(v: VrrpVersion) -> Version {
    match v {
        VrrpVersion::V2 => Version::V2,
        VrrpVersion::V3 => Version::V3,
    }
}

fn interval_cs(d: Duration) -> u16 {
    u16::try_from(d.as_millis() / 10).unwrap_or(u16::MAX)
}

impl Node {
    async fn build(nl: Netlink, config: &Config) -> Result<Node> {
        let g = &config.global;
        let routes = Routes::start(nl.clone());
        let mut node = Node {
            nl,
            socks: Vec::new(),
            insts: Vec::new(),
            groups: Vec::new(),
            links: HashMap::new(),
            macs: HashMap::new(),
            garp: HashMap::new(),
            garp_interval: g.garp_interval,
            gna_interval: g.gna_interval,
            check_unicast_src: g.check_unicast_src,
            counters: Counters::default(),
            no_accept_installed: false,
            mcast_group4: g.mcast_group4,
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
            let sync = SyncGroup::new(members.len());
            node.groups.push(Group {
                name: sg.name.clone(),
                members,
                sync,
                notified: None,
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
                let s = match (family, primary) {
                    (Family::V4, _) => {
                        let group = (!unicast).then_some(g.mcast_group4);
                        Sock::V4(Arc::new(VrrpSocketV4::open(
                            &cfg.interface,
                            link.index,
                            proto,
                            group,
                        )?))
                    }
                    (Family::V6, IpAddr::V6(src)) => {
                        let group = (!unicast).then_some(g.mcast_group6);
                        Sock::V6(Arc::new(VrrpSocketV6::open(
                            &cfg.interface,
                            link.index,
                            src,
                            group,
                        )?))
                    }
                    (Family::V6, IpAddr::V4(a)) => bail!("IPv6 instance with IPv4 source {a}"),
                };
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
        let rx = codec::InstanceRx {
            version,
            interval_cs: interval_cs(cfg.advert_int),
            auth,
            check_addrs: (!g.skip_check_adv_addr).then(|| advert_addrs.clone()),
            own_addr: Some(primary),
        };
        let old_checksum = unicast && cfg.old_unicast_checksum == OldUnicastChecksum::Always;
        let tx = codec::TxOpts {
            auth,
            v3_checksum_as_v2: cfg.v3_checksum_as_v2,
            checksum_dst: old_checksum.then_some(g.mcast_group4),
            ..codec::TxOpts::default()
        };
        let fsm = Instance::new(InstanceConfig {
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
        });
        info!(
            "VRRP_Instance({}) on {} vrid {} {:?} {:?} priority {} source {} to {:?}",
            cfg.name, cfg.interface, cfg.vrid, version, family, cfg.priority, primary, dsts
        );
        Ok(Inst {
            cfg: cfg.clone(),
            fsm,
            sock,
            primary,
            dsts,
            advert: Advert {
                version,
                vrid: cfg.vrid,
                priority: cfg.priority,
                interval_cs: interval_cs(cfg.advert_int),
                addrs: advert_addrs,
            },
            rx,
            replay: AhReplayState::new(),
            tx,
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
        for inst in &mut self.insts {
            let Some(n) = new.instances.iter().find(|n| n.name == inst.cfg.name) else {
                continue;
            };
            if crate::routes::same_list(&inst.cfg.virtual_routes, &n.virtual_routes) {
                continue;
            }
            let owner = route_owner(&inst.cfg.name);
            if inst.fsm.state() == State::Master {
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
            self.insts[i].fsm.handle(now, Input::PriorityAdjust(adj));
            if fault {
                self.set_fault(now, i, true);
            }
            self.insts[i].fsm.handle(now, Input::Startup);
        }
        self.run_actions().await;
    }

    async fn stop(&mut self) {
        let now = Instant::now();
        for i in 0..self.insts.len() {
            self.insts[i].fsm.handle(now, Input::Shutdown);
        }
        self.run_actions().await;
        for i in 0..self.insts.len() {
            self.remove_vips(i, true).await;
        }
        // Masters' virtual routes were queued for removal by their
        // transitions above; static routes go last, as in keepalived.
        self.routes
            .remove(STATIC_ROUTES, &self.cfg.static_routes, false);
        self.routes.flush().await;
        // keepalived's notify_stop, instances then groups.
        for inst in &self.insts {
            self.hooks.emit(Transition {
                kind: EventKind::Instance,
                name: &inst.cfg.name,
                state: "STOP",
                prev: state_name(inst.fsm.state()),
                priority: Some(0),
                vs: None,
            });
        }
        for g in &self.groups {
            self.hooks.emit(Transition {
                kind: EventKind::Group,
                name: &g.name,
                state: "STOP",
                prev: g.notified.and_then(state_name),
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
            Ev::Rx { sock, result } => self.on_advert(now, sock, *result),
            Ev::RxError { sock, error } => {
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
            self.insts[i].fsm.handle(now, Input::PriorityAdjust(adj));
            self.set_fault(now, i, fault);
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
                        self.insts[i].fsm.handle(now, Input::PriorityAdjust(adj));
                        self.set_fault(now, i, fault);
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

    /// A member of a sync group reports its fault to the group, which
    /// decides for all members (keepalived vrrp_sync.c semantics).
    fn set_fault(&mut self, now: Instant, i: usize, fault: bool) {
        match self.insts[i].group {
            None => self.insts[i].fsm.handle(now, Input::Fault(fault)),
            Some(g) => {
                let Some(mid) = self.groups[g].members.iter().position(|&m| m == i) else {
                    return;
                };
                let inputs = self.groups[g].sync.on_fault(mid, fault);
                self.apply_group_inputs(now, g, inputs);
            }
        }
    }

    fn apply_group_inputs(&mut self, now: Instant, g: usize, inputs: Vec<(usize, Input)>) {
        for (mid, input) in inputs {
            let Some(&m) = self.groups[g].members.get(mid) else {
                continue;
            };
            debug!(
                "sync group {}: {:?} to {}",
                self.groups[g].name, input, self.insts[m].cfg.name
            );
            self.insts[m].fsm.handle(now, input);
        }
    }

    fn drop_advert(&mut self, iface: &str, e: &codec::DecodeError) {
        let reason = e.reason.as_str();
        self.counters.bump(&format!("drop_{reason}"));
        // The format is stable: tests and operators grep it.
        match e.vrid {
            Some(v) => debug!("drop iface={iface} vrid={v} reason={reason}: {e}"),
            None => debug!("drop iface={iface} vrid=- reason={reason}: {e}"),
        }
    }

    fn on_advert(
        &mut self,
        now: Instant,
        sock: usize,
        result: Result<codec::Parsed, codec::DecodeError>,
    ) {
        let iface = self
            .socks
            .get(sock)
            .map(|(k, _)| k.ifname.clone())
            .unwrap_or_default();
        let parsed = match result {
            Ok(p) => p,
            Err(e) => return self.drop_advert(&iface, &e),
        };
        let vrid = parsed.advert.vrid;
        let Some(i) = self
            .insts
            .iter()
            .position(|x| x.sock == sock && x.cfg.vrid == vrid)
        else {
            return self.drop_advert(&iface, &codec::DecodeError::unknown_vrid(vrid));
        };
        let inst = &mut self.insts[i];
        let foreign_peer = self.check_unicast_src
            && !inst.cfg.unicast_peers.is_empty()
            && !inst.cfg.unicast_peers.contains(&parsed.src);
        if foreign_peer {
            // keepalived vrrp_check_unicast_src; counted as an address-list mismatch.
            let e = codec::DecodeError::new(
                Some(vrid),
                codec::DropReason::AddrList,
                format!("{} is not a configured unicast peer", parsed.src),
            );
            return self.drop_advert(&iface, &e);
        }
        if let Err(e) = codec::validate(&parsed, &inst.rx, &mut inst.replay) {
            return self.drop_advert(&iface, &e);
        }
        if parsed.old_unicast_checksum
            && inst.tx.checksum_dst.is_none()
            && inst.cfg.old_unicast_checksum == OldUnicastChecksum::Auto
        {
            // keepalived switches the same way when it sees such a peer.
            info!(
                "VRRP_Instance({}) peer {} uses keepalived's old unicast checksum: using it too",
                inst.cfg.name, parsed.src
            );
            inst.tx.checksum_dst = Some(self.mcast_group4);
        }
        self.counters.bump("rx_advert");
        let a = &parsed.advert;
        inst.fsm.handle(
            now,
            Input::Advert {
                src: parsed.src,
                priority: a.priority,
                interval_cs: a.interval_cs,
            },
        );
    }

    /// Drains every instance's actions, in order, until all are quiet
    /// (sync-group propagation can create more).
    async fn run_actions(&mut self) {
        loop {
            let mut any = false;
            for i in 0..self.insts.len() {
                while let Some(a) = self.insts[i].fsm.poll_action() {
                    any = true;
                    self.execute(i, a).await;
                }
            }
            if !any {
                break;
            }
        }
    }

    async fn execute(&mut self, i: usize, action: Action) {
        match action {
            Action::SendAdvert { priority } => self.send_advert(i, priority).await,
            Action::AddVips => self.add_vips(i).await,
            Action::RemoveVips => self.remove_vips(i, false).await,
            Action::SendGarp { count } => self.send_garp(i, count),
            Action::StateChange { from, to, reason } => {
                let inst = &self.insts[i];
                info!(
                    "VRRP_Instance({}) {:?} -> {:?} ({:?}) priority {}",
                    inst.cfg.name,
                    from,
                    to,
                    reason,
                    inst.fsm.effective_priority()
                );
                self.counters.bump(&format!("state_{to:?}").to_lowercase());
                if let Some(l) = &self.lvs {
                    l.instance_state(&inst.cfg.name, to == State::Master);
                }
                // Queued after the transition's VIPs, advert and GARP (and,
                // leaving master, after the priority-0 advert and the VIP
                // removal): the peer's takeover never waits for routes. A
                // route whose `src` is a VIP is flushed by the kernel with
                // the address; removing it again is a tolerated ESRCH.
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
                    let priority = inst.fsm.effective_priority();
                    self.hooks.emit(Transition {
                        kind: EventKind::Instance,
                        name: &inst.cfg.name,
                        state,
                        prev: state_name(from),
                        priority: Some(priority),
                        vs: None,
                    });
                }
                self.propagate_sync(i, to);
                self.notify_group(i, to);
            }
        }
    }

    /// A sync group has changed state once all its members are in it.
    fn notify_group(&mut self, i: usize, to: State) {
        let Some(g) = self.insts[i].group else { return };
        let group = &self.groups[g];
        let all = group
            .members
            .iter()
            .all(|&m| self.insts[m].fsm.state() == to);
        if !all || group.notified == Some(to) {
            return;
        }
        let prev = group.notified.and_then(state_name);
        self.groups[g].notified = Some(to);
        if let Some(state) = state_name(to) {
            info!("VRRP_Group({}) {state}", self.groups[g].name);
            self.hooks.emit(Transition {
                kind: EventKind::Group,
                name: &self.groups[g].name,
                state,
                prev,
                priority: None,
                vs: None,
            });
        }
    }

    /// keepalived vrrp_sync_group: members move together.
    fn propagate_sync(&mut self, i: usize, to: State) {
        let Some(g) = self.insts[i].group else { return };
        let Some(mid) = self.groups[g].members.iter().position(|&m| m == i) else {
            return;
        };
        let inputs = self.groups[g].sync.on_state_change(mid, to);
        self.apply_group_inputs(Instant::now(), g, inputs);
    }

    async fn send_advert(&mut self, i: usize, priority: u8) {
        let inst = &mut self.insts[i];
        inst.advert.priority = priority;
        let advert = &inst.advert;
        let Some((_, sock)) = self.socks.get(inst.sock) else {
            return;
        };
        let mut err = None;
        for dst in &inst.dsts {
            let r = match (sock, inst.primary, dst) {
                (Sock::V4(s), IpAddr::V4(src), IpAddr::V4(d)) => {
                    if inst
                        .tx
                        .auth
                        .as_ref()
                        .is_some_and(|a| matches!(a, AuthKey::Ah(_)))
                    {
                        // Above anything accepted: keepalived shares one counter (see auth.rs).
                        inst.tx.ah_seq = inst.replay.next_tx_seq();
                    }
                    inst.tx.ip_id = inst.tx.ip_id.wrapping_add(1);
                    let pkt = codec::encode_ipv4(src, *d, advert, &inst.tx);
                    s.send(&pkt, *d).await.map_err(|e| e.to_string())
                }
                (Sock::V6(s), IpAddr::V6(src), IpAddr::V6(d)) => {
                    let pkt = codec::encode_ipv6(src, *d, advert);
                    s.send(&pkt, *d).await.map_err(|e| e.to_string())
                }
                _ => Err(format!("address family mismatch sending to {dst}")),
            };
            if let Err(e) = r {
                err = Some(e);
            }
        }
        match err {
            Some(e) => {
                self.counters.bump("tx_error");
                // Log a failure once, not at every advert interval.
                if inst.last_tx_err.as_deref() != Some(e.as_str()) {
                    warn!("VRRP_Instance({}) sending advert: {e}", inst.cfg.name);
                    inst.last_tx_err = Some(e);
                }
            }
            None => {
                self.counters.bump("tx_advert");
                inst.last_tx_err = None;
            }
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
        let (garp_iv, gna_iv) = (self.garp_interval, self.gna_interval);
        if garp_iv.is_zero() && gna_iv.is_zero() {
            for _ in 0..count {
                jobs.iter().for_each(|j| j.send(&name));
            }
            return;
        }
        // Spaced bursts run beside the loop so adverts stay on time.
        tokio::spawn(async move {
            for _ in 0..count {
                for j in &jobs {
                    j.send(&name);
                    let iv = if j.addr.is_ipv4() { garp_iv } else { gna_iv };
                    if !iv.is_zero() {
                        tokio::time::sleep(iv).await;
                    }
                }
            }
        });
    }
}

/// One VIP's gratuitous ARP (IPv4) or unsolicited NA (IPv6).
struct GarpJob {
    sender: Arc<GarpSender>,
    mac: [u8; 6],
    addr: IpAddr,
    ifname: String,
}

impl GarpJob {
    fn send(&self, instance: &str) {
        let r = match self.addr {
            IpAddr::V4(a) => self.sender.send_garp(self.mac, a),
            IpAddr::V6(a) => self.sender.send_unsolicited_na(self.mac, a),
        };
        if let Err(e) = r {
            warn!(
                "VRRP_Instance({instance}) gratuitous ARP/NA for {} on {}: {e}",
                self.addr, self.ifname
            );
        }
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
