//! SIGHUP: what a reloaded configuration changes on a running node.

use super::*;

impl Node {
    /// SIGHUP or `lbctl reload`: the configuration re-read (off this loop,
    /// by `setup::Reloader`). A bad file changes nothing. Everything else is
    /// applied as a difference: an unchanged instance keeps its state and
    /// advert rhythm, a changed one is changed in place (the router decides
    /// whether that is possible), added ones start and removed ones stop as
    /// at shutdown; IPVS changes are a diff. `Err` is the reason the new
    /// configuration was refused (for `lbctl reload`).
    pub(super) async fn reload(
        &mut self,
        path: &std::path::Path,
        loaded: Result<lbd_config::Loaded>,
        running: &mut Config,
    ) -> Result<(), String> {
        let loaded = match loaded {
            Ok(l) => l,
            Err(e) => {
                let msg = format!("reload of {}: {e:#}", path.display());
                error!("{msg}; keeping the running configuration");
                return Err(msg);
            }
        };
        for w in &loaded.warnings {
            warn!("{w}");
        }
        let new = loaded.config;
        // Where a reload spends the loop's time (the VRRP timers wait).
        let mut t = Instant::now();
        let mut phase = |label: &'static str, times: &mut Vec<String>| {
            let now = Instant::now();
            times.push(format!("{label} {} ms", (now - t).as_millis()));
            t = now;
        };
        let mut times = Vec::new();
        let plan = match crate::lvs_desired::Plan::new(&new) {
            Ok(p) => p,
            Err(e) => {
                let msg = format!("reload: {e:#}");
                error!("{msg}; keeping the running configuration");
                return Err(msg);
            }
        };
        phase("IPVS plan", &mut times);
        if let Err(e) = self.reload_plugins(&new).await {
            let msg = format!("reload: {e:#}");
            error!("{msg}; keeping the running configuration");
            return Err(msg);
        }
        phase("plugins", &mut times);
        // Resolve every instance against the kernel before changing
        // anything: an interface that vanished refuses the whole reload.
        self.lookups = build::Lookups::default();
        let mut planned = Vec::new();
        for inst in &new.instances {
            match self.plan_instance(inst, &new).await {
                Ok(p) => planned.push(p),
                Err(e) => {
                    let msg = format!("reload: vrrp_instance {} ({}): {e:#}", inst.name, inst.span);
                    error!("{msg}; keeping the running configuration");
                    return Err(msg);
                }
            }
        }
        phase("instances resolved", &mut times);
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
        phase("IPVS desired state, routes", &mut times);
        // Health first: tracking below reads the carried script states.
        if let (Some(host), Some(tx)) = (self.host.clone(), self.health_tx.clone()) {
            self.track_health_of(&new);
            self.health_gen += 1;
            let seed = Seed {
                gen: self.health_gen,
                health: &self.health,
                metrics: &self.metrics.checks,
            };
            self.checks = crate::health::start(&host, &new, &seed, tx);
            self.hooks = Hooks::new(&host, &new);
        }
        phase("health", &mut times);
        if let Err(e) = self.reload_vrrp(&new, planned).await {
            // Only a socket that cannot be opened gets here; what was
            // applied stays, the rest is named.
            let msg = format!("reload: {e:#}");
            error!("{msg}");
            self.cfg = new.clone();
            self.vrrp_cfg = new.clone();
            *running = new;
            return Err(msg);
        }
        self.cfg = new.clone();
        *running = new;
        phase("VRRP", &mut times);
        info!("reloaded {} ({})", path.display(), times.join(", "));
        Ok(())
    }

    /// Plugins are re-read (a file that no longer loads keeps its running
    /// version, reported); the new configuration must name only plugins
    /// that exist. The first configuration needing plugins starts the host.
    async fn reload_plugins(&mut self, new: &Config) -> Result<()> {
        if !tracking::needs_plugins(new) && self.host.is_none() {
            return Ok(());
        }
        crate::plugins::script_security(new)?;
        match &mut self.host {
            Some(h) => {
                let report = h.reload().await.context("re-reading the plugins")?;
                crate::plugins::log_report(&report);
                let mut files = crate::plugins::files(&report);
                for (name, line) in &report.kept {
                    warn!(plugin = %name, "reload: {line}");
                    files.extend(
                        self.plugin_files
                            .iter()
                            .filter(|f| &f.name == name)
                            .cloned(),
                    );
                    let mut detail = serde_json::Map::new();
                    detail.insert("outcome".into(), "kept running version".into());
                    detail.insert("error".into(), line.as_str().into());
                    self.events.push("plugin", name, detail);
                }
                self.plugin_files = files;
            }
            None => {
                let (host, files) = crate::plugins::start(new)?;
                self.host = Some(host);
                self.plugin_files = files;
            }
        }
        if let Some(h) = &self.host {
            crate::plugins::verify(h, new)?;
        }
        Ok(())
    }

    /// The VRRP side of a reload, `planned` being `new.instances` resolved.
    async fn reload_vrrp(&mut self, new: &Config, planned: Vec<build::Planned>) -> Result<()> {
        let now = Instant::now();
        let diff = crate::reload::vrrp_diff(&self.vrrp_cfg, new);
        let g = &new.global;
        self.garp_interval = g.garp_interval;
        self.gna_interval = g.gna_interval;
        // Tracking reads the new scripts and groups from here on.
        self.vrrp_cfg = new.clone();
        let mut regroup: Vec<String> = diff.groups_added.clone();
        for name in &diff.groups_removed {
            self.dissolve_group(name);
        }
        let mut to_start = Vec::new();
        for i in self.live() {
            if !new
                .instances
                .iter()
                .any(|n| n.name == self.insts[i].cfg.name)
            {
                self.remove_instance(now, i).await;
            }
        }
        for (inst, mut p) in new.instances.iter().zip(planned) {
            let Some(i) = self.live_inst(&inst.name) else {
                to_start.push((self.add_planned(inst, p)?, false));
                continue;
            };
            let sock = self.socks.iter().position(|(k, _)| *k == p.key);
            let restart = diff.restarted.contains(&inst.name);
            let in_place = match sock {
                Some(s) if !restart => {
                    p.rcfg.socket = s;
                    let before = self.router.instance_config(i).cloned();
                    match self.router.reconfigure_instance(now, i, p.rcfg.clone()) {
                        Ok(()) => {
                            if before.as_ref() != Some(&p.rcfg) {
                                info!("VRRP_Instance({}): reload: changed in place", inst.name);
                            }
                            true
                        }
                        Err(_) => false,
                    }
                }
                _ => false,
            };
            if in_place {
                self.replace_vips(i, p.vips).await;
                self.insts[i].cfg = inst.clone();
                continue;
            }
            info!(
                "VRRP_Instance({}): reload: interface, VRID, version, address or sync group changed: restarting it",
                inst.name
            );
            let demoted = self.demoted(i);
            // Its group is formed again around the new instance.
            if let Some(gi) = self.insts[i].group {
                let name = self.groups[gi].name.clone();
                self.dissolve_group(&name);
                if !regroup.contains(&name) {
                    regroup.push(name);
                }
            }
            self.remove_instance(now, i).await;
            let j = self.add_planned(inst, p)?;
            to_start.push((j, demoted));
        }
        for name in &regroup {
            if let Some(sg) = new.sync_groups.iter().find(|x| &x.name == name) {
                self.add_group(sg)?;
            }
        }
        // Tracking for every instance (weights, track lists and group
        // scripts may have changed); new ones then start, as at startup.
        for i in self.live() {
            let (fault, adj) = self.tracking(i);
            self.router.set_tracking(now, i, fault, adj);
        }
        for (i, demoted) in to_start {
            if demoted {
                self.router.set_demoted(now, i, true);
            }
            self.remove_vips(i, true).await;
            self.router.start_instance(now, i);
        }
        self.flush().await;
        self.refresh_no_accept();
        Ok(())
    }

    fn dissolve_group(&mut self, name: &str) {
        let Some(gi) = self
            .groups
            .iter()
            .position(|x| !x.removed && x.name == name)
        else {
            return;
        };
        self.router.remove_sync_group(gi);
        self.groups[gi].removed = true;
        for inst in self.insts.iter_mut().filter(|x| x.group == Some(gi)) {
            inst.group = None;
        }
    }

    fn add_planned(&mut self, inst: &VrrpInstance, mut p: build::Planned) -> Result<usize> {
        p.rcfg.socket = self
            .socket_for(&p)
            .with_context(|| format!("vrrp_instance {} ({})", inst.name, inst.span))?;
        self.router.add_instance(p.rcfg)?;
        info!("VRRP_Instance({}): reload: added", inst.name);
        self.insts.push(Inst {
            cfg: inst.clone(),
            vips: p.vips,
            group: None,
            last_tx_err: None,
            removed: false,
        });
        Ok(self.insts.len() - 1)
    }

    /// Stops an instance as at shutdown and retires its slot.
    async fn remove_instance(&mut self, now: Instant, i: usize) {
        info!("VRRP_Instance({}): reload: removed", self.insts[i].cfg.name);
        self.router.remove_instance(now, i);
        self.flush().await;
        self.remove_vips(i, true).await;
        self.insts[i].removed = true;
    }

    /// A master's VIP set changed: add and announce the new addresses,
    /// remove the gone ones; the rest is not touched.
    async fn replace_vips(&mut self, i: usize, vips: Vec<Vip>) {
        let key = |v: &Vip| (v.ifindex, v.spec.addr, v.spec.prefix);
        let old = std::mem::replace(&mut self.insts[i].vips, vips);
        if self.router.state(i) != Some(State::Master) {
            return;
        }
        let name = self.insts[i].cfg.name.clone();
        for v in old
            .iter()
            .filter(|o| !self.insts[i].vips.iter().any(|n| key(n) == key(o)))
        {
            match self
                .nl
                .addr_del(v.ifindex, v.spec.addr, v.spec.prefix)
                .await
            {
                Ok(()) => info!(
                    "VRRP_Instance({name}): reload: VIP {}/{} removed",
                    v.spec.addr, v.spec.prefix
                ),
                Err(e) => error!("VRRP_Instance({name}): {e}"),
            }
        }
        let added: Vec<Vip> = self.insts[i]
            .vips
            .iter()
            .filter(|n| !old.iter().any(|o| key(o) == key(n)))
            .cloned()
            .collect();
        if added.is_empty() {
            return;
        }
        for v in &added {
            match self.nl.addr_add(v.ifindex, &v.spec).await {
                Ok(()) => info!(
                    "VRRP_Instance({name}): reload: VIP {}/{} added",
                    v.spec.addr, v.spec.prefix
                ),
                Err(e) => error!("VRRP_Instance({name}): {e}"),
            }
        }
        let count = self
            .router
            .instance(i)
            .map_or(0, |x| x.config().garp.master_repeat);
        self.send_garp_for(&name, &added, count);
    }

    /// no_accept rules follow the VIP set.
    fn refresh_no_accept(&mut self) {
        let addrs = self.no_accept_addrs();
        let r = if addrs.is_empty() {
            if !self.no_accept_installed {
                return;
            }
            self.no_accept_installed = false;
            lbd_sys::firewall::remove_no_accept()
        } else {
            self.no_accept_installed = true;
            lbd_sys::firewall::apply_no_accept(&addrs)
        };
        if let Err(e) = r {
            warn!("reload: {e}");
        }
    }

    /// SIGHUP: routes are applied as a diff. Static routes always; an
    /// instance's virtual routes change on the kernel only while it is
    /// master, and it takes the new list into its next transitions.
    pub(super) fn reload_routes(&mut self, new: &Config) {
        self.routes
            .apply_diff(STATIC_ROUTES, &self.cfg.static_routes, &new.static_routes);
        for (i, inst) in self.insts.iter_mut().enumerate() {
            if inst.removed {
                continue;
            }
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
}
