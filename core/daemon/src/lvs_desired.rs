//! From the configuration's virtual servers and the health of their real
//! servers to the IPVS state lbd wants in the kernel.

use std::net::IpAddr;

use anyhow::{bail, Result};
use lbd_config as cfg;
use lbd_health::Model;
#[cfg(test)]
use lbd_health::RsId;
use lbd_ipvs::{
    Af, DestKey, DestSpec, Fwd, IpvsState, Protocol, Service, ServiceKey, ServiceSpec, TunType,
    IP_VS_SVC_F_ONEPACKET, IP_VS_SVC_F_SCHED1, IP_VS_SVC_F_SCHED2, IP_VS_SVC_F_SCHED3, TUN_F_CSUM,
    TUN_F_REMCSUM,
};
use lbd_ipvs::{SyncDaemon, SyncState};

/// A `virtual_server_group` range may not expand past this many addresses.
const MAX_RANGE: u128 = 65536;

/// How a virtual server is named in logs and events.
pub fn vs_name(vs: &cfg::VirtualServer) -> String {
    vs.name()
}

/// The kernel services of each virtual server, resolved once from a
/// configuration. Everything that can fail (an unknown group, a bad range,
/// a service configured twice, a spec the kernel refuses) fails in
/// [`Plan::new`], at load and at reload; [`Plan::desired`] and
/// [`Plan::services_of`] cannot, whatever the checks say.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    vs: Vec<PlannedVs>,
}

#[derive(Clone, Debug)]
struct PlannedVs {
    name: String,
    vs: cfg::VirtualServer,
    keys: Vec<ServiceKey>,
}

impl Plan {
    pub fn new(c: &cfg::Config) -> Result<Plan> {
        let mut seen = std::collections::BTreeSet::new();
        let mut vs_out = Vec::new();
        for vs in &c.virtual_servers {
            let keys = keys(c, vs)?;
            for k in &keys {
                if !seen.insert(k.clone()) {
                    bail!("{}: virtual server {k} is configured twice", vs.span);
                }
            }
            vs_out.push(PlannedVs {
                name: vs_name(vs),
                vs: vs.clone(),
                keys,
            });
        }
        let plan = Plan { vs: vs_out };
        // What health changes is which destinations are present and their
        // weights (clamped in `service`): the specs, the configured weights
        // and the sorry servers (below quorum) are checked here, once.
        let up = Model::new(c, |_, _, _| false);
        for h in [&up, &up.all_below_quorum()] {
            if let Err(e) = plan.desired(h).validate() {
                bail!("virtual servers rejected: {e}");
            }
        }
        Ok(plan)
    }

    pub fn is_empty(&self) -> bool {
        self.vs.is_empty()
    }

    /// Every service, as the checks have it.
    pub fn desired(&self, health: &Model) -> IpvsState {
        self.vs
            .iter()
            .flat_map(|p| p.keys.iter().map(|k| service(&p.vs, k.clone(), health)))
            .collect()
    }

    /// Each virtual server and the kernel services it owns (`/ipvs`).
    pub fn planned(&self) -> impl Iterator<Item = (&cfg::VirtualServer, &[ServiceKey])> {
        self.vs.iter().map(|p| (&p.vs, p.keys.as_slice()))
    }

    /// The services of the virtual server named `vs` (a health change).
    pub fn services_of(&self, vs: &str, health: &Model) -> Vec<Service> {
        self.vs
            .iter()
            .filter(|p| p.name == vs)
            .flat_map(|p| p.keys.iter().map(|k| service(&p.vs, k.clone(), health)))
            .collect()
    }
}

fn protocol(p: cfg::Protocol) -> Protocol {
    match p {
        cfg::Protocol::Tcp => Protocol::Tcp,
        cfg::Protocol::Udp => Protocol::Udp,
        cfg::Protocol::Sctp => Protocol::Sctp,
    }
}

fn family(f: Option<cfg::IpFamily>, vs: &cfg::VirtualServer) -> Af {
    match f.or(vs.ip_family) {
        Some(cfg::IpFamily::Inet6) => Af::V6,
        Some(cfg::IpFamily::Inet) => Af::V4,
        // keepalived: a fwmark service takes its real servers' family.
        None => vs.real_servers.first().map_or(Af::V4, |r| Af::of(&r.ip)),
    }
}

/// The kernel services one virtual server stands for (a group expands).
fn keys(c: &cfg::Config, vs: &cfg::VirtualServer) -> Result<Vec<ServiceKey>> {
    let proto = protocol(vs.protocol);
    Ok(match &vs.target {
        cfg::VsTarget::Addr { ip, port } => vec![ServiceKey::addr(proto, *ip, *port)],
        cfg::VsTarget::Fwmark(m) => vec![ServiceKey::fwmark(family(None, vs), *m)],
        cfg::VsTarget::Group(name) => {
            let Some(g) = c.virtual_server_groups.iter().find(|g| &g.name == name) else {
                bail!("{}: unknown virtual_server_group {name}", vs.span);
            };
            let mut out = Vec::new();
            for m in &g.members {
                match m {
                    cfg::VsgMember::Fwmark { mark, family: f } => {
                        out.push(ServiceKey::fwmark(family(*f, vs), *mark))
                    }
                    cfg::VsgMember::Range { first, last, port } => {
                        for ip in range(*first, *last, &g.span)? {
                            out.push(ServiceKey::addr(proto, ip, *port));
                        }
                    }
                }
            }
            out
        }
    })
}

fn range(first: IpAddr, last: IpAddr, span: &cfg::Span) -> Result<Vec<IpAddr>> {
    let (a, b) = match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b))),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b)),
        _ => bail!("{span}: range {first}-{last} mixes address families"),
    };
    if b < a || b - a >= MAX_RANGE {
        bail!("{span}: range {first}-{last} is empty or too large");
    }
    Ok((a..=b)
        .map(|n| match first {
            // In range by construction: both ends are IPv4 here.
            IpAddr::V4(_) => IpAddr::V4(u32::try_from(n).unwrap_or(u32::MAX).into()),
            IpAddr::V6(_) => IpAddr::V6(n.into()),
        })
        .collect())
}

fn sched_flags(f: &cfg::SchedFlags) -> u32 {
    let mut v = 0;
    // sh-/mh- fallback and port are the kernel's flag-1 and flag-2.
    if f.flag_1 || f.sh_fallback || f.mh_fallback {
        v |= IP_VS_SVC_F_SCHED1;
    }
    if f.flag_2 || f.sh_port || f.mh_port {
        v |= IP_VS_SVC_F_SCHED2;
    }
    if f.flag_3 {
        v |= IP_VS_SVC_F_SCHED3;
    }
    if f.ops {
        v |= IP_VS_SVC_F_ONEPACKET;
    }
    v
}

fn dest(fwd: &cfg::LbKind, weight: u32, u: u32, l: u32) -> DestSpec {
    let mut d = DestSpec::new(Fwd::Masq, weight);
    d.u_threshold = u;
    d.l_threshold = l;
    match fwd {
        cfg::LbKind::Nat => {}
        cfg::LbKind::Dr => d.fwd = Fwd::Route,
        cfg::LbKind::Tun(t) => {
            d.fwd = Fwd::Tunnel;
            let (ty, port) = match t.kind {
                cfg::TunnelKind::Ipip => (TunType::Ipip, None),
                cfg::TunnelKind::Gue { port } => (TunType::Gue, Some(port)),
                cfg::TunnelKind::Gre => (TunType::Gre, None),
            };
            d.tun_type = Some(ty);
            d.tun_port = port;
            d.tun_flags = Some(match t.csum {
                cfg::TunnelCsum::NoCsum => 0,
                cfg::TunnelCsum::Csum => TUN_F_CSUM,
                cfg::TunnelCsum::RemCsum => TUN_F_REMCSUM,
            });
        }
    }
    d
}

fn service(vs: &cfg::VirtualServer, key: ServiceKey, health: &Model) -> Service {
    let af = key.af();
    let mut spec = ServiceSpec::new(vs.scheduler.clone(), af);
    spec.flags = sched_flags(&vs.sched_flags);
    spec.persistence = vs.persistence_timeout;
    if let Some(g) = vs.persistence_granularity {
        spec.netmask = match g {
            cfg::Granularity::V4(m) => u32::from(m),
            cfg::Granularity::V6(p) => u32::from(p),
        };
    }
    spec.pe_name = vs.persistence_engine.clone();
    let mut svc = Service::new(key.clone(), spec);
    let port = |p: u16| dest_port(&key, p);
    // keepalived (ipwrapper.c): below quorum the sorry server takes the
    // traffic and the live real servers leave; a failed server is removed,
    // or kept with weight 0 under `inhibit_on_failure`.
    let quorum_lost = vs.sorry_server.is_some() && health.quorum_lost(&vs_name(vs));
    for rs in &vs.real_servers {
        let st = health.status(vs, rs);
        let weight = match (st.up && !quorum_lost, rs.inhibit_on_failure) {
            // A dynamic weight above the kernel's (a signed int) is capped.
            (true, _) => st.weight.map_or(rs.weight, |w| w.min(i32::MAX as u32)),
            (false, true) => 0,
            (false, false) => continue,
        };
        svc = svc.with_dest(
            DestKey::new(rs.ip, port(rs.port)),
            dest(&rs.fwd, weight, rs.u_threshold, rs.l_threshold),
        );
    }
    if let (Some(s), true) = (&vs.sorry_server, quorum_lost) {
        svc = svc.with_dest(DestKey::new(s.ip, port(s.port)), dest(&s.fwd, 1, 0, 0));
    }
    svc
}

/// A real server's port in the kernel service `key`: keepalived fills a
/// missing one from the service's.
pub fn dest_port(key: &ServiceKey, port: u16) -> u16 {
    match (key, port) {
        (ServiceKey::Addr { port, .. }, 0) => *port,
        (_, p) => p,
    }
}

/// The kernel's sync-daemon request for `lvs_sync_daemon`.
pub fn sync_daemon(c: &cfg::Config, s: &cfg::LvsSyncDaemon) -> SyncDaemon {
    SyncDaemon {
        state: SyncState::Backup,
        ifname: s.interface.clone(),
        syncid: c.lvs_syncid().unwrap_or(0),
        maxlen: s.maxlen,
        port: s.port,
        ttl: s.ttl,
        group: s.group,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn conf(text: &str) -> cfg::Config {
        match cfg::parse_keepalived_str(text, Path::new("t.conf")) {
            Ok(l) => l.config,
            Err(e) => panic!("should parse:\n{e}"),
        }
    }

    const TWO: &str = "virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 {\n  TCP_CHECK {\n  }\n }\n \
        real_server 10.0.1.2 80 {\n  TCP_CHECK {\n  }\n }\n}\nvirtual_server 10.0.0.2 80 {\n real_server 10.0.1.1 80 {\n }\n}\n";

    #[test]
    fn a_plan_fails_at_load_and_its_services_cannot() {
        let c = conf(TWO);
        let plan = Plan::new(&c).unwrap_or_else(|e| panic!("{e:#}"));
        let vs = &c.virtual_servers[0];
        let mut h = Model::new(&c, |_, _, _| false);
        // A dynamic weight beyond the kernel's range is capped, not refused.
        h.on_checker(
            &RsId::of(vs, &vs.real_servers[0]),
            0,
            true,
            Some(u32::MAX),
            "",
        );
        h.on_checker(&RsId::of(vs, &vs.real_servers[1]), 0, false, None, "");
        let all = plan.desired(&h);
        assert_eq!(all.services.len(), 2);
        assert!(all.validate().is_ok());
        // One virtual server's services only, with the health applied.
        let one = plan.services_of(&vs_name(vs), &h);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].dests.len(), 1);
        assert_eq!(
            one[0].dests.values().next().map(|d| d.weight),
            Some(i32::MAX as u32)
        );
        assert!(plan.services_of("no such", &h).is_empty());
    }
}
