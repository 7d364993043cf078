//! lbd-health: the one health model, pure (no I/O, no clock, no tokio).
//!
//! The check jobs (daemon `health.rs`) run plugins and report changes;
//! this model holds what they established: each checker's state, each real
//! server's status and dynamic weight, each virtual server's quorum (with
//! hysteresis), each tracked script's status. It takes a change and returns
//! the transitions it caused plus the virtual servers whose IPVS services
//! changed; the daemon logs, notifies and reconciles from that. A reload
//! builds the next model from this one by identity (`carry.rs`), and the
//! restarted jobs start from it.
//!
//! A crate of its own so that the graph keeps it pure: it depends on the
//! configuration model only. The retry and rise/fall streaks stay in each
//! job (`rules.rs`): they decide when the job runs next, the model does not
//! need them.

mod carry;
mod rules;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use lbd_config::{CheckSpec, Config, RealServer, VirtualServer};

pub use rules::{quorum_up, script_effect, Checker, Next, Script};

/// A real server as health tracking names it: stable across reloads as
/// long as the virtual server and the server keep their addresses.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RsId {
    pub vs: String,
    pub ip: IpAddr,
    pub port: u16,
}

impl RsId {
    pub fn of(vs: &VirtualServer, rs: &RealServer) -> Self {
        RsId {
            vs: vs.name(),
            ip: rs.ip,
            port: rs.port,
        }
    }

    /// `ip:port` as keepalived's notify lines print a server.
    pub fn addr(&self) -> String {
        std::net::SocketAddr::new(self.ip, self.port).to_string()
    }
}

impl fmt::Display for RsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", self.addr(), self.vs)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RsStatus {
    pub up: bool,
    /// `misc_dynamic` weight replacing the configured one.
    pub weight: Option<u32>,
}

const UP: RsStatus = RsStatus {
    up: true,
    weight: None,
};

/// What a change did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    RsUp {
        id: RsId,
        message: String,
    },
    RsDown {
        id: RsId,
        message: String,
    },
    /// The server stayed up or down; its dynamic weight changed.
    RsWeight {
        id: RsId,
        weight: Option<u32>,
        message: String,
    },
    ScriptOk {
        name: String,
    },
    ScriptFailed {
        name: String,
    },
    /// `live` is the live weight that decided it.
    QuorumReached {
        vs: String,
        quorum: u32,
        live: u64,
    },
    QuorumLost {
        vs: String,
        quorum: u32,
        live: u64,
    },
}

/// The transitions of one change and the virtual servers (by name) whose
/// IPVS services must be recomputed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub transitions: Vec<Transition>,
    pub changed: BTreeSet<String>,
}

/// The health of one configuration.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// Per real server, the state of each of its checkers.
    checkers: HashMap<RsId, Vec<bool>>,
    /// Servers that are down or have a dynamic weight; any other is up
    /// with its configured weight.
    rs: HashMap<RsId, RsStatus>,
    /// Virtual servers whose quorum is lost (by name).
    quorum_lost: HashSet<String>,
    /// Tracked scripts by name: OK or failed.
    scripts: HashMap<String, bool>,
    /// Each virtual server's quorum settings and configured weights, by
    /// name: what quorum needs, copied so a change needs no configuration.
    vs: HashMap<String, VsQuorum>,
}

#[derive(Clone, Debug)]
struct VsQuorum {
    quorum: u32,
    hysteresis: u32,
    /// Each real server and its configured weight.
    servers: Vec<(RsId, u32)>,
}

impl Model {
    /// Before any check has run: a checker starts down when `alpha` says
    /// so (a server is down while any checker is), scripts start OK unless
    /// `init_fail`, and each quorum follows.
    pub fn new(
        c: &Config,
        alpha: impl Fn(&VirtualServer, &RealServer, &CheckSpec) -> bool,
    ) -> Self {
        Model::default().reload(&Config::default(), c, alpha)
    }

    /// The model of `new`, carried from this one (which runs `old`) by
    /// identity: a checker or a script that kept its definition keeps its
    /// state, anything else starts as configured. A server's status follows
    /// from its checkers; its dynamic weight is kept while it keeps its
    /// checkers' states; quorum is recomputed, a lost one staying lost
    /// until regained with hysteresis.
    pub fn reload(
        &self,
        old: &Config,
        new: &Config,
        alpha: impl Fn(&VirtualServer, &RealServer, &CheckSpec) -> bool,
    ) -> Model {
        let checkers = carry::carry_checkers(old, &self.checkers, new, alpha);
        let scripts = carry::carry_scripts(old, &self.scripts, new);
        let mut m = Model {
            checkers,
            scripts,
            ..Model::default()
        };
        for vs in &new.virtual_servers {
            let name = vs.name();
            let mut servers = Vec::new();
            for rs in &vs.real_servers {
                let id = RsId::of(vs, rs);
                let up = m.checkers.get(&id).is_none_or(|u| u.iter().all(|u| *u));
                let weight = self.rs.get(&id).and_then(|s| s.weight);
                let st = RsStatus { up, weight };
                if st != UP {
                    m.rs.insert(id.clone(), st);
                }
                servers.push((id, rs.weight));
            }
            let q = VsQuorum {
                quorum: vs.quorum,
                hysteresis: vs.hysteresis,
                servers,
            };
            let was_up = !self.quorum_lost.contains(&name) || !self.vs.contains_key(&name);
            // A new virtual server starts from its live weight, without hysteresis.
            let h = if self.vs.contains_key(&name) {
                q.hysteresis
            } else {
                0
            };
            if !quorum_up(was_up, m.live(&q), q.quorum, h) {
                m.quorum_lost.insert(name.clone());
            }
            m.vs.insert(name, q);
        }
        m
    }

    fn live(&self, q: &VsQuorum) -> u64 {
        q.servers
            .iter()
            .map(|(id, w)| {
                let st = self.rs.get(id).copied().unwrap_or(UP);
                if st.up {
                    u64::from(st.weight.unwrap_or(*w))
                } else {
                    0
                }
            })
            .sum()
    }

    /// Sum of the weights of the live real servers of `vs` (keepalived's quorum measure).
    pub fn live_weight(&self, vs: &str) -> u64 {
        self.vs.get(vs).map_or(0, |q| self.live(q))
    }

    pub fn status(&self, vs: &VirtualServer, rs: &RealServer) -> RsStatus {
        self.rs.get(&RsId::of(vs, rs)).copied().unwrap_or(UP)
    }

    /// Every virtual server below quorum: what the IPVS plan validates the
    /// sorry servers with, once, at load.
    pub fn all_below_quorum(&self) -> Model {
        let mut m = self.clone();
        m.quorum_lost = self.vs.keys().cloned().collect();
        m
    }

    pub fn quorum_lost(&self, vs: &str) -> bool {
        self.quorum_lost.contains(vs)
    }

    /// A script's status; `None` for a script this configuration lacks.
    pub fn script_ok(&self, name: &str) -> Option<bool> {
        self.scripts.get(name).copied()
    }

    /// The state checker `n` of `id` is in (a restarted job starts there).
    pub fn checker_up(&self, id: &RsId, n: usize) -> Option<bool> {
        self.checkers.get(id).and_then(|u| u.get(n).copied())
    }

    /// Checker `n` of `id` is now `up`, and reported `weight` (a passing
    /// check's dynamic weight; `None` keeps the one it had). A server is up
    /// when all its checkers are (keepalived).
    pub fn on_checker(
        &mut self,
        id: &RsId,
        n: usize,
        up: bool,
        weight: Option<u32>,
        message: &str,
    ) -> Outcome {
        let mut out = Outcome::default();
        let Some(ups) = self.checkers.get_mut(id) else {
            return out; // a server of a configuration since reloaded away
        };
        let Some(u) = ups.get_mut(n) else {
            return out;
        };
        *u = up;
        let all_up = ups.iter().all(|u| *u);
        let before = self.rs.get(id).copied().unwrap_or(UP);
        let after = RsStatus {
            up: all_up,
            weight: weight.or(before.weight),
        };
        if after == before {
            return out;
        }
        if after == UP {
            self.rs.remove(id);
        } else {
            self.rs.insert(id.clone(), after);
        }
        let message = message.to_string();
        out.transitions.push(match (before.up, after.up) {
            (false, true) => Transition::RsUp {
                id: id.clone(),
                message,
            },
            (true, false) => Transition::RsDown {
                id: id.clone(),
                message,
            },
            _ => Transition::RsWeight {
                id: id.clone(),
                weight: after.weight,
                message,
            },
        });
        out.changed.insert(id.vs.clone());
        if let Some(q) = self.vs.get(&id.vs) {
            let was_up = !self.quorum_lost.contains(&id.vs);
            let live = self.live(q);
            let now_up = quorum_up(was_up, live, q.quorum, q.hysteresis);
            if now_up != was_up {
                let (vs, quorum) = (id.vs.clone(), q.quorum);
                if now_up {
                    self.quorum_lost.remove(&vs);
                    out.transitions
                        .push(Transition::QuorumReached { vs, quorum, live });
                } else {
                    self.quorum_lost.insert(vs.clone());
                    out.transitions
                        .push(Transition::QuorumLost { vs, quorum, live });
                }
            }
        }
        out
    }

    /// A script's status changed (its job applies rise and fall).
    pub fn on_script(&mut self, name: &str, ok: bool) -> Outcome {
        let mut out = Outcome::default();
        match self.scripts.get_mut(name) {
            Some(s) if *s != ok => *s = ok,
            _ => return out,
        }
        let name = name.to_string();
        out.transitions.push(if ok {
            Transition::ScriptOk { name }
        } else {
            Transition::ScriptFailed { name }
        });
        out
    }
}

#[cfg(test)]
mod tests;
