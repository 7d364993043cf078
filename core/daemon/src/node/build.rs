//! An instance from its configuration: sockets, router entry, VIPs,
//! and the no-accept rules (RFC 5798 §6.1).

use super::*;

impl Node {
    pub(super) async fn build_instance(
        &mut self,
        cfg: &VrrpInstance,
        config: &Config,
    ) -> Result<Inst> {
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
    pub(super) async fn wait_link_local(&self, index: u32, ifname: &str) -> Result<Ipv6Addr> {
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

    /// RFC 5798 §6.1: without Accept_Mode a non-owner master must not accept
    /// traffic to the VIPs. The rules stay for the life of lbd; while not
    /// master the VIPs are not local, so they drop nothing then.
    pub(super) fn install_no_accept(&mut self) -> Result<()> {
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
}
