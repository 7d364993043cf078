//! What the node tells the operator: events into the one stream (see
//! `crate::events`), and the metric handles (see `crate::metrics`).

use super::*;

use crate::metrics::{DropLabels, InstanceLabels, RsLabels, TransitionLabels, VsLabels};
use prometheus_client::metrics::counter::Counter;
use serde_json::{json, Map, Value};

/// What the node keeps per instance for its events and metrics.
#[derive(Default)]
pub(super) struct Observed {
    /// When its last advert was accepted (a takeover's failover starts there).
    heard: Option<Instant>,
    /// Taking over: the failover start, until the first GARP/NA burst is out.
    takeover: Option<Instant>,
    /// The state as its last StateChange left it.
    state: Option<State>,
    /// The (effective, configured) priority the gauges show.
    priority: Option<(u8, u8)>,
    /// Handles of the per-advert counters: no label allocation per advert.
    sent: Option<Counter>,
    received: Option<Counter>,
}

/// The record of instance `name`, made on first use (allocates only then).
fn observed_of<'a>(map: &'a mut HashMap<String, Observed>, name: &str) -> Option<&'a mut Observed> {
    if !map.contains_key(name) {
        map.insert(name.to_string(), Observed::default());
    }
    map.get_mut(name)
}

impl Node {
    fn observed(&mut self, i: usize) -> Option<&mut Observed> {
        let name = self.insts.get(i)?.cfg.name.as_str();
        observed_of(&mut self.observed, name)
    }

    /// Every state change goes through here: logged with its sequence
    /// number, then the same record to the notify hooks.
    pub(super) fn emit(
        &mut self,
        kind: &str,
        name: &str,
        detail: Map<String, Value>,
    ) -> std::sync::Arc<crate::events::Record> {
        crate::notify::publish(&self.events, &self.hooks, kind, name, detail)
    }

    /// An instance changed state: its event, counters and gauges.
    pub(super) fn observe_transition(
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
        let name = inst.cfg.name.clone();
        // A removed instance's last transition (its resignation) is logged
        // and counted; its gauges may belong to a successor of the same
        // name, so they are not touched.
        let removed = inst.removed;
        let group = inst
            .group
            .and_then(|g| self.groups.get(g))
            .map(|g| g.name.clone());
        let (from_s, to_s) = (metric_state(from), metric_state(to));
        self.metrics
            .vrrp
            .transitions
            .get_or_create(&TransitionLabels {
                instance: name.clone(),
                from: from_s.into(),
                to: to_s.into(),
            })
            .inc();
        if !removed {
            self.metrics.set_instance_state(&name, to_s);
            if let Some(o) = self.observed(i) {
                o.state = Some(to);
                if to != State::Master {
                    o.takeover = None;
                }
            }
        }
        let mut d = crate::events::detail(json!({
            "state": to_s,
            "prev": from_s,
            "reason": format!("{reason:?}"),
            "priority": priority,
        }));
        if let Some(g) = group {
            d.insert("group".into(), g.into());
        }
        self.emit("instance", &name, d);
        if removed && !self.insts.iter().any(|x| !x.removed && x.cfg.name == name) {
            self.observed.remove(&name);
            self.metrics.forget_instance(&name);
        } else if to == State::Master {
            // No gratuitous ARP/NA went out (no VIP, or no sender): the
            // takeover is complete with the VIPs added.
            if let Some(f) = self.takeover_timer(i) {
                f();
            }
        }
    }

    /// An advert was accepted for instance `i`.
    pub(super) fn heard_advert(&mut self, i: usize, now: Instant) {
        let Some(inst) = self.insts.get(i) else {
            return;
        };
        let name = inst.cfg.name.as_str();
        let Some(o) = observed_of(&mut self.observed, name) else {
            return;
        };
        o.heard = Some(now);
        o.received
            .get_or_insert_with(|| {
                self.metrics
                    .vrrp
                    .adverts_received
                    .get_or_create_owned(&InstanceLabels {
                        instance: name.to_string(),
                    })
            })
            .inc();
    }

    /// The VIPs of `i` are being added: when it comes from Backup having
    /// heard a master, a takeover starts, timed from that last advert.
    pub(super) fn takeover_starts(&mut self, i: usize) {
        if let Some(o) = self.observed(i) {
            if o.state == Some(State::Backup) {
                o.takeover = o.heard;
            }
        }
    }

    /// The end of a takeover of `i` as a closure (the first GARP/NA burst
    /// may go out beside the loop): it logs and observes the failover time.
    pub(super) fn takeover_timer(&mut self, i: usize) -> Option<Box<dyn FnOnce() + Send>> {
        let start = self.observed(i)?.takeover.take()?;
        let name = self.inst_name(i).to_string();
        let m = self.metrics.clone();
        Some(Box::new(move || {
            let took = start.elapsed();
            info!(
                "VRRP_Instance({name}) failover took {:.3} s (last advert heard to VIPs added and gratuitous ARP/NA sent)",
                took.as_secs_f64()
            );
            m.observe_failover(&name, took);
        }))
    }

    pub(super) fn advert_sent(&mut self, i: usize) {
        let Some(inst) = self.insts.get(i) else {
            return;
        };
        let name = inst.cfg.name.as_str();
        let Some(o) = observed_of(&mut self.observed, name) else {
            return;
        };
        o.sent
            .get_or_insert_with(|| {
                self.metrics
                    .vrrp
                    .adverts_sent
                    .get_or_create_owned(&InstanceLabels {
                        instance: name.to_string(),
                    })
            })
            .inc();
    }

    /// A received packet was dropped: counted always, an event at most
    /// once per window per (instance or interface, reason).
    pub(super) fn observe_drop(
        &mut self,
        iface: &str,
        instance: Option<usize>,
        error: &lbd_vrrp::codec::DecodeError,
    ) {
        let reason = error.reason.as_str();
        self.metrics
            .vrrp
            .drops
            .get_or_create(&DropLabels {
                interface: iface.to_string(),
                reason: reason.to_string(),
            })
            .inc();
        let name = match instance.and_then(|i| self.insts.get(i)) {
            Some(inst) => inst.cfg.name.clone(),
            None => iface.to_string(),
        };
        let Some(suppressed) = self.drop_events.hit(&name, reason, Instant::now()) else {
            return;
        };
        let mut d = crate::events::detail(json!({
            "reason": reason,
            "interface": iface,
            "error": error.to_string(),
            "suppressed": suppressed,
        }));
        if let Some(v) = error.vrid {
            d.insert("vrid".into(), v.into());
        }
        self.emit("drop", &name, d);
    }

    /// Drops left out of events whose window has passed: one summary each.
    pub(super) fn expire_drop_events(&mut self, now: Instant) {
        for (name, reason, n) in self.drop_events.expire(now) {
            let d = crate::events::detail(json!({ "reason": reason, "suppressed": n }));
            self.emit("drop", &name, d);
        }
    }

    /// Effective and configured priority gauges, set when they change.
    pub(super) fn refresh_priorities(&mut self) {
        for (i, inst) in self.insts.iter().enumerate().filter(|(_, x)| !x.removed) {
            let Some(eff) = self.router.effective_priority(i) else {
                continue;
            };
            let now = (eff, inst.cfg.priority);
            let Some(o) = observed_of(&mut self.observed, &inst.cfg.name) else {
                continue;
            };
            if o.priority != Some(now) {
                o.priority = Some(now);
                self.metrics.set_priority(&inst.cfg.name, now.0, now.1);
            }
        }
    }

    /// What follows the configuration: instance state, real servers and
    /// quorum, the plugin host and IPVS services a scrape reads. At start
    /// and after each reload.
    pub(super) fn refresh_metrics_of_config(&mut self) {
        self.metrics.set_host(self.host.clone());
        if let (Some(h), false) = (&self.host, self.watching_plugins) {
            crate::events::watch_plugin_stops(h.clone(), self.events.clone());
            self.watching_plugins = true;
        }
        for i in self.live() {
            let state = self.router.state(i).unwrap_or(State::Initialize);
            self.metrics
                .set_instance_state(&self.insts[i].cfg.name, metric_state(state));
        }
        // Instances gone with a reload: their series go too.
        let gone: Vec<String> = self
            .observed
            .keys()
            .filter(|n| !self.insts.iter().any(|i| !i.removed && &i.cfg.name == *n))
            .cloned()
            .collect();
        for name in gone {
            self.observed.remove(&name);
            self.metrics.forget_instance(&name);
        }
        for o in self.observed.values_mut() {
            o.priority = None;
        }
        self.refresh_priorities();
        let m = &self.metrics.checks;
        m.rs_up.clear();
        m.rs_weight.clear();
        m.vs_quorum_up.clear();
        for vs in &self.cfg.virtual_servers {
            for rs in &vs.real_servers {
                self.set_rs_metrics_of(vs, rs);
            }
            let up = !self.health.quorum_lost(&vs.name());
            m.vs_quorum_up
                .get_or_create(&VsLabels { vs: vs.name() })
                .set(i64::from(up));
        }
        let services = self.lvs.as_ref().map(|_| {
            self.plan
                .desired(&self.health)
                .services
                .into_keys()
                .collect()
        });
        self.metrics.set_ipvs_services(services);
    }

    /// `lbd_real_server_up` / `_weight` of one real server from the model.
    pub(super) fn set_rs_metrics(&self, id: &RsId) {
        let Some((vs, rs)) = self.cfg.virtual_servers.iter().find_map(|vs| {
            (vs.name() == id.vs)
                .then(|| {
                    vs.real_servers
                        .iter()
                        .find(|r| r.ip == id.ip && r.port == id.port)
                        .map(|r| (vs, r))
                })
                .flatten()
        }) else {
            return;
        };
        self.set_rs_metrics_of(vs, rs);
    }

    /// The same for a real server in hand: a reload sets every one of
    /// them, and a search per server would make that quadratic (10 000
    /// services: seconds of a stalled loop).
    fn set_rs_metrics_of(&self, vs: &lbd_config::VirtualServer, rs: &lbd_config::RealServer) {
        let id = RsId::of(vs, rs);
        let st = self.health.status(vs, rs);
        let l = RsLabels {
            vs: id.vs.clone(),
            rs: id.addr(),
        };
        let m = &self.metrics.checks;
        m.rs_up.get_or_create(&l).set(i64::from(st.up));
        let w = if st.up {
            st.weight.unwrap_or(rs.weight)
        } else {
            0
        };
        m.rs_weight.get_or_create(&l).set(i64::from(w));
    }
}

/// State names in metrics and events: keepalived's, and INIT.
pub(super) fn metric_state(s: State) -> &'static str {
    state_name(s).unwrap_or("INIT")
}
