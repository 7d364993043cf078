//! Carrying out the router's decisions: adverts on the wire, VIPs,
//! GARP/NA, routes on master, state-change notifications.

use super::*;

impl Node {
    /// Carries out what the router decided: adverts first (the peer's
    /// takeover never waits for netlink or hooks), then the events in order.
    /// Events cause no input back into the router, so one pass drains it.
    pub(super) async fn flush(&mut self) {
        while let Some(t) = self.router.poll_transmit() {
            self.transmit(t).await;
        }
        while let Some(ev) = self.router.poll_event() {
            self.on_router_event(ev).await;
        }
    }

    pub(super) async fn on_router_event(&mut self, ev: VrrpEvent) {
        match ev {
            VrrpEvent::AddVips { instance } => {
                self.takeover_starts(instance);
                self.add_vips(instance).await
            }
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
                    info!(state, "VRRP_Group({}) {state}", g.name);
                    let mut d = serde_json::Map::new();
                    d.insert("state".into(), state.into());
                    if let Some(prev) = from.and_then(state_name) {
                        d.insert("prev".into(), prev.into());
                    }
                    let name = g.name.clone();
                    self.emit("group", &name, d);
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
            VrrpEvent::Accepted { instance, src } => {
                let t = std::time::SystemTime::now();
                self.see(instance, |s| s.master = Some((src, t)));
                self.heard_advert(instance, Instant::now());
            }
            VrrpEvent::Dropped {
                socket,
                instance,
                error,
            } => {
                let iface = self
                    .socks
                    .get(socket)
                    .map_or(String::new(), |(k, _)| k.ifname.clone());
                let iface = iface.as_str();
                let reason = error.reason.as_str();
                // The format is stable: tests and operators grep it.
                match error.vrid {
                    Some(v) => debug!("drop iface={iface} vrid={v} reason={reason}: {error}"),
                    None => debug!("drop iface={iface} vrid=- reason={reason}: {error}"),
                }
                self.observe_drop(iface, instance, &error);
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

    pub(super) fn inst_name(&self, i: usize) -> &str {
        self.insts.get(i).map_or("?", |x| x.cfg.name.as_str())
    }

    pub(super) fn on_state_change(
        &mut self,
        i: usize,
        from: State,
        to: State,
        reason: lbd_vrrp::instance::Reason,
        priority: u8,
    ) {
        let last = status::LastTransition {
            from: state_name(from).unwrap_or("INIT"),
            to: state_name(to).unwrap_or("INIT"),
            reason: format!("{reason:?}"),
            priority,
            time_ms: status::unix_ms(std::time::SystemTime::now()),
        };
        self.see(i, |s| s.last_transition = Some(last));
        let Some(inst) = self.insts.get(i) else {
            return;
        };
        info!(
            instance = inst.cfg.name,
            vrid = inst.cfg.vrid,
            state = state_name(to).unwrap_or("INIT"),
            "VRRP_Instance({}) {:?} -> {:?} ({:?}) priority {}",
            inst.cfg.name,
            from,
            to,
            reason,
            priority
        );
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
        self.observe_transition(i, from, to, reason, priority);
    }

    pub(super) async fn transmit(&mut self, t: Transmit) {
        let r = match self.socks.get(t.socket) {
            Some((_, sock)) => sock.send(&t).await,
            None => Err(format!("no socket {}", t.socket)),
        };
        let Some(inst) = self.insts.get_mut(t.instance) else {
            return;
        };
        match r {
            Err(e) => {
                self.metrics
                    .vrrp
                    .send_errors
                    .get_or_create(&crate::metrics::InstanceLabels {
                        instance: inst.cfg.name.clone(),
                    })
                    .inc();
                // Log a failure once, not at every advert interval.
                if inst.last_tx_err.as_deref() != Some(e.as_str()) {
                    warn!(
                        instance = inst.cfg.name,
                        vrid = inst.cfg.vrid,
                        "VRRP_Instance({}) sending advert: {e}",
                        inst.cfg.name
                    );
                    inst.last_tx_err = Some(e);
                }
            }
            Ok(()) if t.last => {
                inst.last_tx_err = None;
                self.advert_sent(t.instance);
            }
            Ok(()) => {}
        }
    }

    pub(super) async fn add_vips(&mut self, i: usize) {
        for v in &self.insts[i].vips {
            match self.nl.addr_add(v.ifindex, &v.spec).await {
                Ok(()) => debug!(
                    "VIP {}/{} added on {}",
                    v.spec.addr, v.spec.prefix, v.ifname
                ),
                Err(e) => error!(
                    instance = self.insts[i].cfg.name,
                    "VRRP_Instance({}): {e}", self.insts[i].cfg.name
                ),
            }
        }
    }

    pub(super) async fn remove_vips(&mut self, i: usize, quiet: bool) {
        for v in &self.insts[i].vips {
            if let Err(e) = self
                .nl
                .addr_del(v.ifindex, v.spec.addr, v.spec.prefix)
                .await
            {
                if !quiet {
                    let name = &self.insts[i].cfg.name;
                    error!(instance = name, "VRRP_Instance({name}): {e}");
                }
            }
        }
    }

    pub(super) fn send_garp(&mut self, i: usize, count: u32) {
        let name = self.insts[i].cfg.name.clone();
        let vips = self.insts[i].vips.clone();
        self.send_garp_jobs(&name, &vips, count, Some(i));
    }

    /// One burst of GARP / NA for `vips` of instance `name`.
    pub(super) fn send_garp_for(&mut self, name: &str, vips: &[Vip], count: u32) {
        self.send_garp_jobs(name, vips, count, None);
    }

    /// `send_garp_for`; with `takeover` (an instance), a takeover of it
    /// ends with this first burst (with no job, it ends at the state change).
    fn send_garp_jobs(&mut self, name: &str, vips: &[Vip], count: u32, takeover: Option<usize>) {
        let mut jobs = Vec::new();
        for v in vips {
            let (Some(s), Some(mac)) = (self.garp.get(&v.ifindex), self.macs.get(&v.ifindex))
            else {
                continue;
            };
            let kind = if v.spec.addr.is_ipv4() { "arp" } else { "na" };
            jobs.push(GarpJob {
                sender: s.clone(),
                mac: *mac,
                addr: v.spec.addr,
                ifname: v.ifname.clone(),
                sent: self.metrics.vrrp.garp_sent.get_or_create_owned(
                    &crate::metrics::GarpLabels {
                        interface: v.ifname.clone(),
                        kind: kind.into(),
                    },
                ),
            });
        }
        let first_burst = match takeover {
            Some(i) if !jobs.is_empty() => self.takeover_timer(i),
            _ => None,
        };
        crate::vrrp_io::send_garp(
            name.to_string(),
            jobs,
            count,
            self.garp_interval,
            self.gna_interval,
            first_burst,
        );
    }
}

/// keepalived's names of the states in notify arguments and fifo lines.
pub(super) fn state_name(s: State) -> Option<&'static str> {
    match s {
        State::Initialize => None,
        State::Backup => Some("BACKUP"),
        State::Master => Some("MASTER"),
        State::Fault => Some("FAULT"),
    }
}

pub(super) fn scope_number(s: lbd_config::Scope) -> u8 {
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
