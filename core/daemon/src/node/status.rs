//! What the node tells the control API: the `/status` snapshot, lbd's
//! side of `/ipvs`, and the control requests the loop answers. Built from
//! the node's own state only; what needs the kernel or the plugin thread
//! (VIP presence, plugin statistics, the IPVS table) is filled in by the
//! API handler from the handles handed back, off the loop.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::*;
use crate::control::{Refused, Request};

/// Unix time in milliseconds.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One tracked object and its effect on the instance now.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Track {
    /// `interface` or `script`.
    pub kind: &'static str,
    pub name: String,
    /// Configured weight (0: fault when down/failed).
    pub weight: i32,
    /// Link usable, or script passing.
    pub ok: bool,
    /// Puts the instance in Fault.
    pub fault: bool,
    /// Added to the configured priority now.
    pub adjust: i32,
}

impl Track {
    pub fn interface(name: &str, weight: i32, up: bool, fault: bool, adjust: i32) -> Track {
        Track {
            kind: "interface",
            name: name.to_string(),
            weight,
            ok: up,
            fault,
            adjust,
        }
    }

    pub fn script(name: &str, weight: i32, ok: bool, fault: bool, adjust: i32) -> Track {
        Track {
            kind: "script",
            name: name.to_string(),
            weight,
            ok,
            fault,
            adjust,
        }
    }
}

/// What the node saw of an instance beyond the router's state.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// Source of the last advert accepted, and when.
    pub master: Option<(IpAddr, SystemTime)>,
    pub last_transition: Option<LastTransition>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LastTransition {
    pub from: &'static str,
    pub to: &'static str,
    pub reason: String,
    pub priority: u8,
    pub time_ms: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Priority {
    /// Effective: what the adverts carry.
    pub now: u8,
    pub configured: u8,
    /// Sum of the tracking adjustments (`tracking[].adjust`).
    pub adjust: i32,
}

#[derive(Clone, Debug, Serialize)]
pub struct VipStatus {
    pub address: String,
    pub prefix: u8,
    pub dev: String,
    /// On the interface now (read from the kernel); null if it could not be read.
    pub present: Option<bool>,
    #[serde(skip)]
    pub ifindex: u32,
    #[serde(skip)]
    pub addr: IpAddr,
}

#[derive(Clone, Debug, Serialize)]
pub struct MasterSeen {
    pub address: String,
    /// This node is the master.
    #[serde(rename = "self")]
    pub is_self: bool,
    /// When its last advert was accepted (null for this node).
    pub time_ms: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    pub state: &'static str,
    pub priority: Priority,
    pub faulted: bool,
    pub demoted: bool,
    pub tracking: Vec<Track>,
    pub vips: Vec<VipStatus>,
    pub master: Option<MasterSeen>,
    pub last_transition: Option<LastTransition>,
    pub sync_group: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupStatus {
    pub name: String,
    pub members: Vec<String>,
    /// The state last notified for the whole group (null before any).
    pub state: Option<&'static str>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckerStatus {
    pub plugin: String,
    /// null before its first result is known.
    pub up: Option<bool>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Weight {
    /// In IPVS now; null when the server is out of the service.
    pub now: Option<u32>,
    pub configured: u32,
    /// A dynamic weight a check reported, replacing the configured one.
    pub dynamic: Option<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RealServerStatus {
    pub address: String,
    pub up: bool,
    pub weight: Weight,
    /// Where the server came from: `static` (the configuration).
    pub source: &'static str,
    pub checkers: Vec<CheckerStatus>,
}

#[derive(Clone, Debug, Serialize)]
pub struct VsStatus {
    pub name: String,
    pub scheduler: String,
    pub quorum: u32,
    pub live_weight: u64,
    pub quorum_lost: bool,
    pub sorry_server: Option<String>,
    pub real_servers: Vec<RealServerStatus>,
}

#[derive(Clone, Debug, Serialize, Default)]
pub struct PluginStatus {
    pub name: String,
    pub path: String,
    pub overrides: Option<String>,
    pub checks: Vec<String>,
    pub notifiers: Vec<String>,
    pub calls: u64,
    pub failures: u64,
    pub errors: u64,
    /// Times stopped for running past its CPU slice / memory limit.
    pub stopped_cpu: u64,
    pub stopped_memory: u64,
    pub memory_bytes: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct DaemonStatus {
    pub version: &'static str,
    pub pid: u32,
    pub config: String,
    /// Sequence number of the newest event (0: none yet).
    pub last_event: u64,
}

/// `/status`.
#[derive(Serialize)]
pub struct Status {
    pub lbd: DaemonStatus,
    pub instances: Vec<InstanceStatus>,
    pub sync_groups: Vec<GroupStatus>,
    pub virtual_servers: Vec<VsStatus>,
    pub plugins: Vec<PluginStatus>,
    /// For the handler: VIP presence is read through it.
    #[serde(skip)]
    pub nl: Option<Netlink>,
    /// For the handler: plugin statistics come from the plugin thread.
    #[serde(skip)]
    pub host: Option<lbd_plugin::Host>,
}

/// A real server (or sorry server) lbd puts in a kernel service.
#[derive(Clone, Debug)]
pub struct OwnedDest {
    pub key: lbd_ipvs::DestKey,
    pub configured_weight: u32,
    /// `up`, `down` or `sorry` (the sorry server).
    pub health: &'static str,
    pub checkers: Vec<CheckerStatus>,
}

#[derive(Clone, Debug)]
pub struct OwnedService {
    pub key: lbd_ipvs::ServiceKey,
    pub virtual_server: String,
    pub dests: Vec<OwnedDest>,
}

/// lbd's side of `/ipvs`: the services it owns and what it knows of
/// their servers; the handler reads the kernel's table beside it.
#[derive(Clone, Debug, Default)]
pub struct IpvsView {
    pub services: Vec<OwnedService>,
}

fn state_str(s: State) -> &'static str {
    state_name(s).unwrap_or("INIT")
}

fn version_number(v: VrrpVersion) -> u8 {
    match v {
        VrrpVersion::V2 => 2,
        VrrpVersion::V3 => 3,
    }
}

impl Node {
    /// One control request, answered at once (the loop never waits here).
    pub(super) fn on_control(&mut self, now: Instant, req: Request) {
        match req {
            Request::Status(reply) => {
                let _ = reply.send(Box::new(self.status()));
            }
            Request::Maintenance { name, on, reply } => {
                let r = if self.insts.iter().any(|i| i.cfg.name == name) {
                    self.set_demoted(now, &name, on).map_err(Refused::Failed)
                } else {
                    Err(Refused::NotFound(format!("no vrrp instance named {name}")))
                };
                let _ = reply.send(r);
            }
            Request::Ipvs(reply) => {
                let _ = reply.send(Box::new(self.ipvs_view()));
            }
            // Needs the reloader of the loop: handled there.
            Request::Reload(reply) => {
                let _ = reply.send(Err("reload: internal routing error".into()));
            }
        }
    }

    /// Records what `/status` shows of a router event.
    pub(super) fn see(&mut self, i: usize, what: impl FnOnce(&mut Seen)) {
        if let Some(inst) = self.insts.get(i) {
            match self.seen.get_mut(&inst.cfg.name) {
                Some(s) => what(s),
                None => what(self.seen.entry(inst.cfg.name.clone()).or_default()),
            }
        }
    }

    pub(super) fn status(&self) -> Status {
        let instances = (0..self.insts.len())
            .map(|i| self.instance_status(i))
            .collect();
        let sync_groups = self
            .groups
            .iter()
            .enumerate()
            .map(|(gi, g)| GroupStatus {
                name: g.name.clone(),
                members: self
                    .insts
                    .iter()
                    .filter(|i| i.group == Some(gi))
                    .map(|i| i.cfg.name.clone())
                    .collect(),
                state: self.router.group_notified(gi).and_then(state_name),
            })
            .collect();
        let plugins = self
            .plugin_files
            .iter()
            .map(|f| PluginStatus {
                name: f.name.clone(),
                path: f.path.clone(),
                overrides: f.overrides.clone(),
                checks: f.checks.clone(),
                notifiers: f.notifiers.clone(),
                ..PluginStatus::default()
            })
            .collect();
        Status {
            lbd: DaemonStatus {
                version: env!("CARGO_PKG_VERSION"),
                pid: std::process::id(),
                config: self.config_path.display().to_string(),
                last_event: self.events.last_seq(),
            },
            instances,
            sync_groups,
            virtual_servers: self.vs_status(),
            plugins,
            nl: Some(self.nl.clone()),
            host: self.host.clone(),
        }
    }

    fn instance_status(&self, i: usize) -> InstanceStatus {
        let inst = &self.insts[i];
        let cfg = &inst.cfg;
        let tracking = self.tracking_items(i);
        let state = self.router.state(i).unwrap_or(State::Initialize);
        let seen = self.seen.get(&cfg.name);
        let master = if state == State::Master {
            self.router.instance(i).map(|x| MasterSeen {
                address: x.config().primary_addr.to_string(),
                is_self: true,
                time_ms: None,
            })
        } else {
            seen.and_then(|s| s.master).map(|(a, t)| MasterSeen {
                address: a.to_string(),
                is_self: false,
                time_ms: Some(unix_ms(t)),
            })
        };
        InstanceStatus {
            name: cfg.name.clone(),
            interface: cfg.interface.clone(),
            vrid: cfg.vrid,
            version: version_number(cfg.version),
            state: state_str(state),
            priority: Priority {
                now: self.router.effective_priority(i).unwrap_or(cfg.priority),
                configured: cfg.priority,
                adjust: tracking.iter().map(|t| t.adjust).sum(),
            },
            faulted: self.router.instance(i).is_some_and(|x| x.is_faulted()),
            demoted: self.demoted(i),
            tracking,
            vips: inst
                .vips
                .iter()
                .map(|v| VipStatus {
                    address: v.spec.addr.to_string(),
                    prefix: v.spec.prefix,
                    dev: v.ifname.clone(),
                    present: None,
                    ifindex: v.ifindex,
                    addr: v.spec.addr,
                })
                .collect(),
            master,
            last_transition: seen.and_then(|s| s.last_transition.clone()),
            sync_group: inst
                .group
                .and_then(|g| self.groups.get(g))
                .map(|g| g.name.clone()),
        }
    }

    fn checkers_of(
        &self,
        vs: &lbd_config::VirtualServer,
        rs: &lbd_config::RealServer,
    ) -> Vec<CheckerStatus> {
        let id = RsId::of(vs, rs);
        rs.checks
            .iter()
            .enumerate()
            .map(|(n, c)| CheckerStatus {
                plugin: c.plugin.clone(),
                up: self.health.checker_up(&id, n),
            })
            .collect()
    }

    fn vs_status(&self) -> Vec<VsStatus> {
        self.cfg
            .virtual_servers
            .iter()
            .map(|vs| {
                let name = vs.name();
                let quorum_lost = self.health.quorum_lost(&name);
                let sorry_active = vs.sorry_server.is_some() && quorum_lost;
                let real_servers = vs
                    .real_servers
                    .iter()
                    .map(|rs| {
                        let st = self.health.status(vs, rs);
                        // As lvs_desired puts it in the kernel.
                        let now = match (st.up && !sorry_active, rs.inhibit_on_failure) {
                            (true, _) => {
                                Some(st.weight.map_or(rs.weight, |w| w.min(i32::MAX as u32)))
                            }
                            (false, true) => Some(0),
                            (false, false) => None,
                        };
                        RealServerStatus {
                            address: rs.addr(),
                            up: st.up,
                            weight: Weight {
                                now,
                                configured: rs.weight,
                                dynamic: st.weight,
                            },
                            source: "static",
                            checkers: self.checkers_of(vs, rs),
                        }
                    })
                    .collect();
                VsStatus {
                    scheduler: vs.scheduler.clone(),
                    quorum: vs.quorum,
                    live_weight: self.health.live_weight(&name),
                    quorum_lost,
                    sorry_server: vs
                        .sorry_server
                        .as_ref()
                        .map(|s| std::net::SocketAddr::new(s.ip, s.port).to_string()),
                    real_servers,
                    name,
                }
            })
            .collect()
    }

    pub(super) fn ipvs_view(&self) -> IpvsView {
        let mut services = Vec::new();
        for (vs, keys) in self.plan.planned() {
            let sorry_active = vs.sorry_server.is_some() && self.health.quorum_lost(&vs.name());
            for key in keys {
                let mut dests: Vec<OwnedDest> = vs
                    .real_servers
                    .iter()
                    .map(|rs| OwnedDest {
                        key: lbd_ipvs::DestKey::new(
                            rs.ip,
                            crate::lvs_desired::dest_port(key, rs.port),
                        ),
                        configured_weight: rs.weight,
                        health: if self.health.status(vs, rs).up {
                            "up"
                        } else {
                            "down"
                        },
                        checkers: self.checkers_of(vs, rs),
                    })
                    .collect();
                if let (Some(s), true) = (&vs.sorry_server, sorry_active) {
                    dests.push(OwnedDest {
                        key: lbd_ipvs::DestKey::new(
                            s.ip,
                            crate::lvs_desired::dest_port(key, s.port),
                        ),
                        configured_weight: 1,
                        health: "sorry",
                        checkers: Vec::new(),
                    });
                }
                services.push(OwnedService {
                    key: key.clone(),
                    virtual_server: vs.name(),
                    dests,
                });
            }
        }
        IpvsView { services }
    }
}
