//! An instance from its configuration: sockets, router entry, VIPs,
//! and the no-accept rules (RFC 5798 §6.1).

use super::*;

/// An instance resolved from its configuration: the router's settings (its
/// `socket` still to be filled by [`Node::socket_for`]) and what it needs
/// from the kernel.
/// Kernel lookups shared by the instances of one build or reload; emptied
/// at the start of each.
#[derive(Default)]
pub(super) struct Lookups {
    links: HashMap<String, lbd_sys::LinkInfo>,
    primary: HashMap<u32, IpAddr>,
}

pub(super) struct Planned {
    pub key: SockKey,
    link_index: u32,
    group_addr: Option<IpAddr>,
    pub rcfg: RouterInstanceConfig,
    pub vips: Vec<Vip>,
}

impl Node {
    /// Adds an instance to the router (its socket opened when no instance
    /// uses one like it yet).
    pub(super) async fn build_instance(
        &mut self,
        cfg: &VrrpInstance,
        config: &Config,
    ) -> Result<Inst> {
        let mut p = self.plan_instance(cfg, config).await?;
        p.rcfg.socket = self.socket_for(&p)?;
        let r = &p.rcfg;
        info!(
            "VRRP_Instance({}) on {} vrid {} {:?} {:?} priority {} source {} to {:?}",
            cfg.name,
            cfg.interface,
            cfg.vrid,
            r.fsm.version,
            p.key.family,
            cfg.priority,
            r.fsm.primary_addr,
            r.dsts
        );
        self.router.add_instance(p.rcfg)?;
        Ok(Inst {
            cfg: cfg.clone(),
            vips: p.vips,
            group: None,
            last_tx_err: None,
            removed: false,
        })
    }

    /// The socket `p` needs: an open one with the same key, or a new one
    /// (with its receiver once the node runs).
    pub(super) fn socket_for(&mut self, p: &Planned) -> Result<usize> {
        if let Some(i) = self.socks.iter().position(|(k, _)| *k == p.key) {
            return Ok(i);
        }
        let s = Sock::open(&p.key, p.link_index, p.rcfg.fsm.primary_addr, p.group_addr)?;
        self.router
            .add_socket(self.socks.len(), p.key.router_config());
        self.socks.push((p.key.clone(), s));
        self.spawn_receivers();
        Ok(self.socks.len() - 1)
    }

    /// Receive tasks for the sockets that have none yet (none before the
    /// loop runs: `run` calls this once the event channel exists).
    pub(super) fn spawn_receivers(&mut self) {
        let Some(tx) = self.ev_tx.clone() else {
            return;
        };
        for (i, (key, sock)) in self.socks.iter().enumerate().skip(self.listening) {
            let tx = tx.clone();
            crate::vrrp_io::spawn_receiver(i, key.clone(), sock.clone(), move |rx| {
                tx.send(Ev::Vrrp(rx)).is_ok()
            });
        }
        self.listening = self.socks.len();
    }

    /// Resolves an instance against the kernel (links, addresses) without
    /// touching the router.
    pub(super) async fn plan_instance(
        &mut self,
        cfg: &VrrpInstance,
        config: &Config,
    ) -> Result<Planned> {
        let g = &config.global;
        let link = self
            .link_named(&cfg.interface)
            .await
            .with_context(|| format!("interface {}", cfg.interface))?;
        // keepalived 2.2 refuses to start on a tracked interface that does
        // not exist ("Non-existent interface specified in configuration")
        // unless dynamic_interfaces, where it counts as down until it appears.
        if !g.dynamic_interfaces {
            for t in &cfg.track_interfaces {
                if self.link_named(&t.name).await.is_err() {
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
                None => self.primary_of(link.index, &cfg.interface).await?,
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
        let group_addr = (!unicast).then_some(match family {
            Family::V4 => IpAddr::V4(g.mcast_group4),
            Family::V6 => IpAddr::V6(g.mcast_group6),
        });
        let mut vips = Vec::new();
        for v in cfg.vips.iter().chain(cfg.excluded_vips.iter()) {
            let ifname = v.dev.clone().unwrap_or_else(|| cfg.interface.clone());
            let l = self
                .link_named(&ifname)
                .await
                .with_context(|| format!("interface {ifname} of VIP {} ({})", v.addr, v.span))?;
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
        let rcfg = RouterInstanceConfig {
            name: cfg.name.clone(),
            fsm,
            socket: usize::MAX,
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
        };
        Ok(Planned {
            key,
            link_index: link.index,
            group_addr,
            rcfg,
            vips,
        })
    }

    /// The link `name`, read once per build or reload (`lookups`): 100
    /// instances on one interface cost one netlink request, not 100, and a
    /// reload awaits as little as it can (the loop waits with it).
    async fn link_named(&mut self, name: &str) -> Result<lbd_sys::LinkInfo> {
        if let Some(l) = self.lookups.links.get(name) {
            return Ok(l.clone());
        }
        let l = self.nl.link_by_name(name).await?;
        self.lookups.links.insert(name.to_string(), l.clone());
        Ok(l)
    }

    /// The IPv4 address adverts go out from on link `index` (its primary).
    async fn primary_of(&mut self, index: u32, ifname: &str) -> Result<IpAddr> {
        if let Some(a) = self.lookups.primary.get(&index) {
            return Ok(*a);
        }
        let a = IpAddr::V4(
            self.nl
                .primary_ipv4(index)
                .await?
                .ok_or_else(|| anyhow!("{ifname} has no IPv4 address to send adverts from"))?,
        );
        self.lookups.primary.insert(index, a);
        Ok(a)
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
        let addrs = self.no_accept_addrs();
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

    /// The VIPs of non-owner instances without accept mode.
    pub(super) fn no_accept_addrs(&self) -> Vec<IpAddr> {
        let mut addrs: Vec<IpAddr> = self
            .insts
            .iter()
            .filter(|i| !i.removed && !i.cfg.accept && i.cfg.priority != 255)
            .flat_map(|i| i.vips.iter().map(|v| v.spec.addr))
            .collect();
        addrs.sort();
        addrs.dedup();
        addrs
    }
}
