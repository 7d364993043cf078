//! SIGHUP: what a reloaded configuration changes on a running node.

use super::*;

impl Node {
    /// SIGHUP: the configuration re-read (off this loop, by
    /// `setup::Reloader`). A bad file changes nothing. IPVS changes are
    /// applied as a diff; VRRP changes wait for a restart (a hitless VRRP
    /// reload comes with the operator-surface work). `Err` is the reason
    /// the new configuration was refused (for `lbctl reload`).
    pub(super) fn reload(
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
        // Routes are applied below; any other VRRP change waits.
        if crate::reload::vrrp_changed(running, &new) {
            warn!("reload: VRRP or global changes are not applied until lbd restarts (virtual_routes and static_routes are)");
        }
        let plan = match crate::lvs_desired::Plan::new(&new) {
            Ok(p) => p,
            Err(e) => {
                let msg = format!("reload: {e:#}");
                error!("{msg}; keeping the running configuration");
                return Err(msg);
            }
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
                metrics: &self.metrics.checks,
            };
            self.checks = crate::health::start(&host, &new, &seed, tx);
            self.hooks = Hooks::new(&host, &new);
        }
        self.cfg = new.clone();
        *running = new;
        Ok(())
    }

    /// SIGHUP: routes are applied as a diff. Static routes always; an
    /// instance's virtual routes change on the kernel only while it is
    /// master, and it takes the new list into its next transitions. An
    /// instance added or removed by the reload waits for the restart
    /// with the rest of its VRRP configuration.
    pub(super) fn reload_routes(&mut self, new: &Config) {
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
}
