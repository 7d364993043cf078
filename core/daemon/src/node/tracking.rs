//! What the instances track: links, scripts (through the health model)
//! and real servers' health, turned into router inputs, IPVS changes and
//! notify hooks.

use super::*;

impl Node {
    pub(super) fn link_up(&self, name: &str) -> bool {
        self.links.get(name).copied().unwrap_or(false)
    }

    /// Fault and priority adjustment from tracked interfaces (keepalived
    /// track_interface: weight 0 = fault; negative weight applies while
    /// down, positive while up) and tracked scripts.
    pub(super) fn tracking(&self, i: usize) -> (bool, i32) {
        self.tracking_items(i)
            .iter()
            .fold((false, 0), |(f, a), t| (f || t.fault, a + t.adjust))
    }

    /// Each tracked object of instance `i` and what it does to it now
    /// (`tracking` sums these; `/status` shows them).
    pub(super) fn tracking_items(&self, i: usize) -> Vec<status::Track> {
        let cfg = &self.insts[i].cfg;
        let mut out = Vec::new();
        if !cfg.dont_track_primary {
            let up = self.link_up(&cfg.interface);
            out.push(status::Track::interface(&cfg.interface, 0, up, !up, 0));
        }
        for t in &cfg.track_interfaces {
            let up = self.link_up(&t.name);
            let (fault, adj) = match t.weight {
                0 if !up => (true, 0),
                w if w < 0 && !up => (false, w),
                w if w > 0 && up => (false, w),
                _ => (false, 0),
            };
            out.push(status::Track::interface(&t.name, t.weight, up, fault, adj));
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
            let (fault, adj) = lbd_health::script_effect(weight, reverse, ok);
            out.push(status::Track::script(&r.name, weight, ok, fault, adj));
        }
        out
    }

    pub(super) fn retrack(&mut self, now: Instant, link: &str) {
        for i in self.live() {
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
    pub(super) fn start_plugins(&mut self, c: &Config) -> Result<()> {
        self.health = HealthModel::new(c, crate::health::alpha);
        if !needs_plugins(c) {
            return Ok(());
        }
        crate::plugins::script_security(c)?;
        let (host, files) = crate::plugins::start(c)?;
        self.plugin_files = files;
        crate::plugins::verify(&host, c)?;
        self.track_health_of(c);
        self.hooks = Hooks::new(&host, c);
        self.host = Some(host);
        Ok(())
    }

    /// The health model of a reloaded configuration, carried from the
    /// running one by identity (lbd-health).
    pub(super) fn track_health_of(&mut self, c: &Config) {
        self.health = self.health.reload(&self.cfg, c, crate::health::alpha);
    }

    pub(super) fn on_health(&mut self, now: Instant, ev: HealthEv) {
        if ev.gen != self.health_gen {
            return debug!("dropping a change from checks replaced by a reload: {ev:?}");
        }
        match ev.change {
            Change::Script { name, ok } => {
                if self.health.on_script(&name, ok).transitions.is_empty() {
                    return;
                }
                let state = if ok { "OK" } else { "FAILED" };
                let d = crate::events::detail(serde_json::json!({ "state": state }));
                self.emit("script", &name, d);
                for i in self.live() {
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
    pub(super) fn on_checker(
        &mut self,
        id: RsId,
        checker: usize,
        up: bool,
        weight: Option<u32>,
        message: &str,
    ) {
        let out = self.health.on_checker(&id, checker, up, weight, message);
        let mut d = crate::events::detail(serde_json::json!({
            "vs": id.vs,
            "checker": checker,
            "state": if up { "UP" } else { "DOWN" },
            "message": message,
        }));
        if let Some(w) = weight {
            d.insert("weight".into(), w.into());
        }
        self.emit("checker", &id.addr(), d);
        for t in &out.transitions {
            self.health_transition(t);
        }
        if let Some(l) = &self.lvs {
            for vs in &out.changed {
                l.update(self.plan.services_of(vs, &self.health));
            }
        }
    }

    pub(super) fn health_transition(&mut self, t: &HealthTransition) {
        match t {
            HealthTransition::RsUp { id, message } | HealthTransition::RsDown { id, message } => {
                let up = matches!(t, HealthTransition::RsUp { .. });
                let (state, what) = if up { ("UP", "up") } else { ("DOWN", "down") };
                info!(vs = id.vs, state, "real server {id} is {what} ({message})");
                let d = crate::events::detail(serde_json::json!({
                    "state": state,
                    "prev": if up { "DOWN" } else { "UP" },
                    "vs": id.vs,
                    "message": message,
                }));
                self.emit("real_server", &id.addr(), d);
                self.set_rs_metrics(id);
            }
            HealthTransition::RsWeight {
                id,
                weight,
                message,
            } => {
                info!(
                    vs = id.vs,
                    "real server {id}: weight {weight:?} ({message})"
                );
                let d = crate::events::detail(serde_json::json!({
                    "vs": id.vs,
                    "weight": weight,
                    "message": message,
                }));
                self.emit("real_server_weight", &id.addr(), d);
                self.set_rs_metrics(id);
            }
            HealthTransition::QuorumReached { vs, quorum, live }
            | HealthTransition::QuorumLost { vs, quorum, live } => {
                let now_up = matches!(t, HealthTransition::QuorumReached { .. });
                if now_up {
                    info!(
                        vs,
                        state = "UP",
                        "virtual server {vs}: quorum {quorum} reached (live weight {live})"
                    );
                } else {
                    warn!(
                        vs,
                        state = "DOWN",
                        "virtual server {vs}: quorum {quorum} lost (live weight {live})"
                    );
                }
                let d = crate::events::detail(serde_json::json!({
                    "state": if now_up { "UP" } else { "DOWN" },
                    "prev": if now_up { "DOWN" } else { "UP" },
                    "quorum": quorum,
                    "live_weight": live,
                }));
                self.emit("virtual_server", vs, d);
                self.metrics
                    .checks
                    .vs_quorum_up
                    .get_or_create(&crate::metrics::VsLabels { vs: vs.clone() })
                    .set(i64::from(now_up));
            }
            // Logged by the script's job; its effect is the tracking's.
            HealthTransition::ScriptOk { .. } | HealthTransition::ScriptFailed { .. } => {}
        }
    }
}

/// Whether anything in `c` runs a plugin.
pub(super) fn needs_plugins(c: &Config) -> bool {
    c.virtual_servers
        .iter()
        .any(|vs| vs.real_servers.iter().any(|r| !r.checks.is_empty()))
        || !c.track_scripts.is_empty()
        || !c.all_notify_hooks().is_empty()
}
