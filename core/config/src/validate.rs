//! Semantic checks over a whole model, whichever syntax it came from.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use crate::error::Errors;
use crate::model::*;
use crate::ConfigError;

/// Linux IFNAMSIZ - 1.
const MAX_IFNAME: usize = 15;

pub fn validate(cfg: &Config) -> Result<(), ConfigError> {
    let mut e = Errors::default();
    let g = &cfg.global;
    let gspan = cfg
        .instances
        .first()
        .map(|i| i.span.clone())
        .unwrap_or_default();
    if !g.mcast_group4.is_multicast() {
        e.push(
            &gspan,
            format!(
                "vrrp_mcast_group4 {} is not a multicast address",
                g.mcast_group4
            ),
        );
    }
    if !g.mcast_group6.is_multicast() {
        e.push(
            &gspan,
            format!(
                "vrrp_mcast_group6 {} is not a multicast address",
                g.mcast_group6
            ),
        );
    }

    let mut names: HashMap<&str, &Span> = HashMap::new();
    let mut vrids: HashMap<(&str, u8, bool), &str> = HashMap::new();
    for i in &cfg.instances {
        instance(i, g, &mut e);
        if let Some(prev) = names.insert(&i.name, &i.span) {
            e.push(
                &i.span,
                format!(
                    "duplicate vrrp instance name {:?} (first defined at {prev})",
                    i.name
                ),
            );
        }
        let fam = i.is_ipv6();
        if let Some(other) = vrids.insert((&i.interface, i.vrid, fam), &i.name) {
            e.push(
                &i.span,
                format!(
                    "duplicate virtual_router_id {} on {} ({}): already used by instance {other:?}",
                    i.vrid,
                    i.interface,
                    if fam { "IPv6" } else { "IPv4" }
                ),
            );
        }
    }

    let mut group_names = HashSet::new();
    let mut member_of: HashMap<&str, &str> = HashMap::new();
    for sg in &cfg.sync_groups {
        if !group_names.insert(sg.name.as_str()) {
            e.push(
                &sg.span,
                format!("duplicate vrrp_sync_group name {:?}", sg.name),
            );
        }
        if sg.members.is_empty() {
            e.push(
                &sg.span,
                format!(
                    "vrrp_sync_group {}: no members: expected group {{ INSTANCE ... }}",
                    sg.name
                ),
            );
        }
        for m in &sg.members {
            if !names.contains_key(m.as_str()) {
                e.push(
                    &sg.span,
                    format!("vrrp_sync_group {}: unknown member instance {m:?}", sg.name),
                );
            } else if let Some(other) = member_of.insert(m, &sg.name) {
                e.push(
                    &sg.span,
                    format!(
                        "vrrp_sync_group {}: instance {m:?} is already in sync group {other:?}",
                        sg.name
                    ),
                );
            }
        }
    }
    lvs(cfg, &names, &mut e);
    scripts(cfg, &mut e);
    e.into_result()
}

/// Tracked scripts and plugins: names resolve, numbers are in range.
fn scripts(cfg: &Config, e: &mut Errors) {
    let mut seen: HashMap<&str, &Span> = HashMap::new();
    for t in &cfg.track_scripts {
        if let Some(prev) = seen.insert(&t.name, &t.span) {
            e.push(
                &t.span,
                format!(
                    "track script {:?} is defined twice (first at {prev})",
                    t.name
                ),
            );
        }
        if t.plugin.is_empty() {
            e.push(
                &t.span,
                format!("track script {}: empty plugin name", t.name),
            );
        }
        if t.interval.is_zero() {
            e.push(
                &t.span,
                format!("track script {}: interval must be greater than 0", t.name),
            );
        }
        if !(-253..=253).contains(&t.weight) {
            e.push(
                &t.span,
                format!(
                    "track script {}: weight {} not in -253..=253",
                    t.name, t.weight
                ),
            );
        }
        if t.rise == 0 || t.fall == 0 {
            e.push(
                &t.span,
                format!("track script {}: rise and fall must be at least 1", t.name),
            );
        }
    }
    let refs = cfg
        .instances
        .iter()
        .flat_map(|i| {
            i.track_scripts
                .iter()
                .map(move |r| (format!("vrrp instance {}", i.name), r))
        })
        .chain(cfg.sync_groups.iter().flat_map(|g| {
            g.track_scripts
                .iter()
                .map(move |r| (format!("vrrp_sync_group {}", g.name), r))
        }));
    for (owner, r) in refs {
        if !seen.contains_key(r.name.as_str()) {
            e.push(
                &r.span,
                format!("{owner}: track_script {:?} is not defined", r.name),
            );
        }
        if let Some(w) = r.weight {
            if !(-253..=253).contains(&w) {
                e.push(
                    &r.span,
                    format!(
                        "{owner}: track_script {} weight {w} not in -253..=253",
                        r.name
                    ),
                );
            }
        }
    }
    let checks = cfg
        .virtual_servers
        .iter()
        .flat_map(|v| v.real_servers.iter().flat_map(|r| r.checks.iter()));
    for c in checks {
        if c.plugin.is_empty() {
            e.push(&c.span, "check: empty plugin name");
        }
    }
    for h in &cfg.notify_hooks {
        if h.plugin.is_empty() {
            e.push(&h.span, "notify: empty plugin name");
        }
        for k in &h.filter.kinds {
            if !matches!(k.as_str(), "INSTANCE" | "GROUP" | "RS" | "VS") {
                e.push(
                    &h.span,
                    format!("notify: unknown event kind {k:?} (INSTANCE, GROUP, RS, VS)"),
                );
            }
        }
    }
}

fn fam_name(f: IpFamily) -> &'static str {
    match f {
        IpFamily::Inet => "IPv4",
        IpFamily::Inet6 => "IPv6",
    }
}

fn fam_of(a: &IpAddr) -> IpFamily {
    if a.is_ipv6() {
        IpFamily::Inet6
    } else {
        IpFamily::Inet
    }
}

/// keepalived LVS_MAX_TIMEOUT (31 days).
const LVS_MAX_TIMEOUT: u32 = 86400 * 31;

fn lvs(cfg: &Config, instances: &HashMap<&str, &Span>, e: &mut Errors) {
    let g = &cfg.global;
    if let Some(t) = &g.lvs_timeouts {
        for (k, v) in [("tcp", t.tcp), ("tcpfin", t.tcpfin), ("udp", t.udp)] {
            if v.is_some_and(|v| v > LVS_MAX_TIMEOUT) {
                e.push(
                    &Span::default(),
                    format!("lvs_timeouts {k}: at most {LVS_MAX_TIMEOUT} seconds"),
                );
            }
        }
    }
    if let Some(sd) = &g.lvs_sync_daemon {
        if sd.interface.is_empty() || sd.interface.len() > MAX_IFNAME {
            e.push(
                &sd.span,
                format!("lvs_sync_daemon: invalid interface name {:?}", sd.interface),
            );
        }
        if let Some(i) = &sd.instance {
            if !instances.contains_key(i.as_str()) {
                e.push(
                    &sd.span,
                    format!("lvs_sync_daemon: unknown vrrp_instance {i:?}"),
                );
            }
        }
        if sd.maxlen.is_some_and(|m| m == 0 || m > 65535 - 28)
            || sd.port == Some(0)
            || sd.ttl == Some(0)
        {
            e.push(
                &sd.span,
                "lvs_sync_daemon: maxlen 1..=65507, port 1..=65535 and ttl 1..=255",
            );
        }
        if sd.group.is_some_and(|a| !a.is_multicast()) {
            e.push(
                &sd.span,
                "lvs_sync_daemon: group must be a multicast address",
            );
        }
    }
    let mut groups: HashMap<&str, &VirtualServerGroup> = HashMap::new();
    for vg in &cfg.virtual_server_groups {
        if groups.insert(&vg.name, vg).is_some() {
            e.push(
                &vg.span,
                format!("duplicate virtual_server_group name {:?}", vg.name),
            );
        }
        if vg.members.is_empty() {
            e.push(
                &vg.span,
                format!("virtual_server_group {}: no entries", vg.name),
            );
        }
        for m in &vg.members {
            match m {
                VsgMember::Range { first, last, .. } => {
                    if first.is_ipv6() != last.is_ipv6() {
                        e.push(
                            &vg.span,
                            format!(
                                "virtual_server_group {}: range {first}-{last} mixes families",
                                vg.name
                            ),
                        );
                    }
                }
                VsgMember::Fwmark { mark: 0, .. } => {
                    e.push(
                        &vg.span,
                        format!("virtual_server_group {}: fwmark 0 is not valid", vg.name),
                    );
                }
                VsgMember::Fwmark { .. } => {}
            }
        }
    }
    let mut seen: HashMap<(VsTarget, Option<Protocol>), &Span> = HashMap::new();
    for v in &cfg.virtual_servers {
        let s = &v.span;
        let what = match &v.target {
            VsTarget::Addr { ip, port } => format!("virtual_server {ip} {port}"),
            VsTarget::Fwmark(m) => format!("virtual_server fwmark {m}"),
            VsTarget::Group(n) => format!("virtual_server group {n}"),
        };
        // The family the service's non-tunnelled servers must have.
        let fam = match &v.target {
            VsTarget::Addr { ip, .. } => Some(fam_of(ip)),
            VsTarget::Fwmark(m) => {
                if *m == 0 {
                    e.push(
                        s,
                        format!("{what}: fwmark 0 is not valid: expected 1..=4294967295"),
                    );
                }
                v.ip_family
            }
            VsTarget::Group(n) => match groups.get(n.as_str()) {
                None => {
                    e.push(s, format!("{what}: unknown virtual_server_group {n:?}"));
                    None
                }
                Some(g) => g.members.iter().find_map(|m| match m {
                    VsgMember::Range { first, .. } => Some(fam_of(first)),
                    VsgMember::Fwmark { family, .. } => *family,
                }),
            },
        };
        let fwmark = matches!(v.target, VsTarget::Fwmark(_));
        let key = (v.target.clone(), (!fwmark).then_some(v.protocol));
        if let Some(prev) = seen.insert(key, s) {
            e.push(s, format!("duplicate {what} (first defined at {prev})"));
        }
        if !SCHEDULERS.contains(&v.scheduler.as_str()) {
            e.push(
                s,
                format!(
                    "{what}: unknown scheduler {:?}: expected one of {}",
                    v.scheduler,
                    SCHEDULERS.join(" ")
                ),
            );
        }
        let f = &v.sched_flags;
        if (f.sh_port || f.sh_fallback) && v.scheduler != "sh"
            || (f.mh_port || f.mh_fallback) && v.scheduler != "mh"
        {
            e.push(
                s,
                format!("{what}: sh-*/mh-* flags need the sh/mh scheduler"),
            );
        }
        if f.ops
            && !fwmark
            && v.protocol != Protocol::Udp
            && !matches!(v.target, VsTarget::Group(_))
        {
            e.push(
                s,
                format!("{what}: ops (one-packet scheduling) needs UDP or a fwmark"),
            );
        }
        match v.persistence_timeout {
            Some(t) if t == 0 || t > LVS_MAX_TIMEOUT => {
                e.push(s, format!("{what}: persistence timeout {t} out of range 1..={LVS_MAX_TIMEOUT} seconds"));
            }
            None if matches!(v.target, VsTarget::Addr { port: 0, .. }) => {
                e.push(s, format!("{what}: port 0 (all ports) needs persistence"));
            }
            _ => {}
        }
        match (v.persistence_granularity, fam) {
            (Some(Granularity::V6(b)), _) if b == 0 || b > 128 => {
                e.push(
                    s,
                    format!("{what}: IPv6 persistence granularity /{b} out of range 1..=128"),
                );
            }
            (Some(Granularity::V6(_)), Some(IpFamily::Inet))
            | (Some(Granularity::V4(_)), Some(IpFamily::Inet6)) => {
                e.push(
                    s,
                    format!("{what}: persistence granularity is of the other address family"),
                );
            }
            _ => {}
        }
        if v.weight == 0 || v.weight > i32::MAX as u32 {
            e.push(
                s,
                format!("{what}: weight {} out of range 1..={}", v.weight, i32::MAX),
            );
        }
        if v.quorum > 0 && v.hysteresis >= v.quorum {
            e.push(
                s,
                format!(
                    "{what}: hysteresis {} must be below quorum {}",
                    v.hysteresis, v.quorum
                ),
            );
        }
        let total: u64 = v.real_servers.iter().map(|r| u64::from(r.weight)).sum();
        if u64::from(v.quorum) > total && !v.real_servers.is_empty() {
            e.push(
                s,
                format!(
                    "{what}: quorum {} exceeds the total weight {total} of its real servers",
                    v.quorum
                ),
            );
        }
        let vs_port = match v.target {
            VsTarget::Addr { port, .. } => Some(port),
            _ => None,
        };
        let mut rs_seen = HashSet::new();
        let servers = v
            .real_servers
            .iter()
            .map(|r| ("real server", &r.span, r.ip, r.port, r.weight, r.fwd))
            .chain(
                v.sorry_server
                    .iter()
                    .map(|r| ("sorry server", &r.span, r.ip, r.port, 1, r.fwd)),
            );
        for (kind, rs, ip, port, weight, fwd) in servers {
            let rwhat = format!("{what}: {kind} {ip} {port}");
            if kind == "real server" && !rs_seen.insert((ip, port)) {
                e.push(rs, format!("{rwhat} is listed twice"));
            }
            if !matches!(fwd, LbKind::Tun(_)) {
                if let Some(f) = fam {
                    if fam_of(&ip) != f {
                        e.push(
                            rs,
                            format!(
                                "{rwhat} is {} but the service is {} (only TUN servers may differ)",
                                fam_name(fam_of(&ip)),
                                fam_name(f)
                            ),
                        );
                    }
                }
            }
            if weight > i32::MAX as u32 {
                e.push(
                    rs,
                    format!("{rwhat}: weight {weight} out of range 0..={}", i32::MAX),
                );
            }
            match vs_port {
                Some(vp) if vp != 0 && port == 0 => {
                    e.push(
                        rs,
                        format!(
                            "{rwhat}: missing port: expected IP PORT (the service has port {vp})"
                        ),
                    );
                }
                Some(vp) if vp != 0 && fwd != LbKind::Nat && port != vp => {
                    e.push(
                        rs,
                        format!("{rwhat}: DR/TUN servers must use the service's port {vp}"),
                    );
                }
                None if fwmark && fwd != LbKind::Nat && port != 0 => {
                    e.push(
                        rs,
                        format!("{rwhat}: DR/TUN servers of a fwmark service take no port"),
                    );
                }
                _ => {}
            }
            if let LbKind::Tun(t) = fwd {
                let bad = match (t.kind, t.csum) {
                    (TunnelKind::Gue { port: 0 }, _) => true,
                    (TunnelKind::Ipip, c) => c != TunnelCsum::NoCsum,
                    (TunnelKind::Gre, TunnelCsum::RemCsum) => true,
                    _ => false,
                };
                if bad {
                    e.push(rs, format!("{rwhat}: invalid tunnel options (gue needs a port; ipip takes no checksum option; gre no remcsum)"));
                }
            }
        }
    }
}

fn family(a: &IpAddr) -> &'static str {
    if a.is_ipv6() {
        "IPv6"
    } else {
        "IPv4"
    }
}

fn instance(i: &VrrpInstance, g: &Global, e: &mut Errors) {
    let s = &i.span;
    let n = &i.name;
    if n.is_empty() {
        e.push(s, "vrrp instance without a name");
    }
    if i.interface.is_empty() || i.interface.len() > MAX_IFNAME || i.interface.contains(['/', ' '])
    {
        e.push(
            s,
            format!("instance {n}: invalid interface name {:?}", i.interface),
        );
    }
    if i.vrid == 0 {
        e.push(
            s,
            format!("instance {n}: virtual_router_id 0 is not valid: expected 1..=255"),
        );
    }
    if i.priority == 0 {
        e.push(
            s,
            format!("instance {n}: priority 0 is not valid: expected 1..=255"),
        );
    }
    let v6 = i.is_ipv6();
    match i.version {
        VrrpVersion::V2 => {
            if v6 {
                e.push(
                    s,
                    format!(
                        "instance {n}: VRRP version 2 cannot carry IPv6 addresses: use version 3"
                    ),
                );
            }
            if i.advert_int.subsec_nanos() != 0
                || i.advert_int < Duration::from_secs(1)
                || i.advert_int > Duration::from_secs(255)
            {
                e.push(s, format!("instance {n}: advert_int {:?} is not valid for VRRPv2: expected whole seconds 1..=255", i.advert_int));
            }
        }
        VrrpVersion::V3 => {
            if i.advert_int < Duration::from_millis(10)
                || i.advert_int > Duration::from_millis(40_950)
                || !i.advert_int.as_nanos().is_multiple_of(10_000_000)
            {
                e.push(s, format!("instance {n}: advert_int {:?} is not valid for VRRPv3: expected 10ms..=40.95s in steps of 10ms", i.advert_int));
            }
            if i.auth.is_some() {
                // keepalived drops it with an error message; lbd refuses it rather than run unauthenticated unexpectedly.
                e.push(
                    s,
                    format!("instance {n}: VRRP version 3 does not support authentication"),
                );
            }
        }
    }
    match &i.auth {
        Some(Auth::Pass(p)) | Some(Auth::Ah(p)) => {
            if p.is_empty() || p.len() > 8 {
                e.push(
                    s,
                    format!("instance {n}: authentication password must be 1..=8 bytes"),
                );
            }
            if g.strict {
                e.push(
                    s,
                    format!("instance {n}: vrrp_strict does not allow authentication"),
                );
            }
            if matches!(i.auth, Some(Auth::Ah(_))) && v6 {
                e.push(
                    s,
                    format!("instance {n}: AH authentication cannot be used with IPv6"),
                );
            }
        }
        None => {}
    }
    for v in &i.vips {
        if v.addr.is_ipv6() != v6 {
            // keepalived ignores such an address with an error; lbd refuses the config.
            e.push(&v.span, format!("instance {n}: VIP {} is {} but the instance is {}: split it into an instance per family (or use virtual_ipaddress_excluded)", v.addr, family(&v.addr), if v6 { "IPv6" } else { "IPv4" }));
        }
    }
    for v in i.vips.iter().chain(&i.excluded_vips) {
        vip(v, n, e);
    }
    let mut seen = HashSet::new();
    for v in i.vips.iter().chain(&i.excluded_vips) {
        if !seen.insert(v.addr) {
            e.push(
                &v.span,
                format!("instance {n}: address {} listed twice", v.addr),
            );
        }
    }
    for (what, a) in [
        ("unicast_src_ip", i.unicast_src),
        ("mcast_src_ip", i.mcast_src),
    ] {
        if let Some(a) = a {
            if a.is_ipv6() != v6 {
                e.push(
                    s,
                    format!(
                        "instance {n}: {what} {a} is {} but the instance is {}",
                        family(&a),
                        if v6 { "IPv6" } else { "IPv4" }
                    ),
                );
            }
        }
    }
    for p in &i.unicast_peers {
        if p.is_ipv6() != v6 {
            e.push(
                s,
                format!(
                    "instance {n}: unicast peer {p} is {} but the instance is {}",
                    family(p),
                    if v6 { "IPv6" } else { "IPv4" }
                ),
            );
        }
    }
    if !i.unicast_peers.is_empty() && g.strict {
        e.push(
            s,
            format!("instance {n}: vrrp_strict does not allow unicast peers"),
        );
    }
    let mut tracked = HashSet::new();
    for t in &i.track_interfaces {
        if !(-253..=253).contains(&t.weight) {
            e.push(
                s,
                format!(
                    "instance {n}: track_interface {} weight {} out of range -253..=253",
                    t.name, t.weight
                ),
            );
        }
        if t.name.is_empty() || t.name.len() > MAX_IFNAME {
            e.push(
                s,
                format!("instance {n}: invalid track_interface name {:?}", t.name),
            );
        }
        if !tracked.insert(&t.name) {
            e.push(
                s,
                format!("instance {n}: track_interface {} listed twice", t.name),
            );
        }
    }
    if let Some(m) = &i.use_vmac {
        if m.is_empty() || m.len() > MAX_IFNAME {
            e.push(s, format!("instance {n}: invalid use_vmac name {m:?}"));
        }
    }
}

fn vip(v: &Vip, inst: &str, e: &mut Errors) {
    let max = if v.addr.is_ipv4() { 32 } else { 128 };
    if v.prefix > max {
        e.push(
            &v.span,
            format!(
                "instance {inst}: prefix /{} too long for {}",
                v.prefix, v.addr
            ),
        );
    }
    if let Some(b) = v.brd {
        if v.addr.is_ipv6() || b.is_ipv6() {
            e.push(
                &v.span,
                format!(
                    "instance {inst}: broadcast is only valid with IPv4 ({})",
                    v.addr
                ),
            );
        }
    }
    if v.addr.is_ipv6() && (v.label.is_some() || v.scope.is_some()) {
        e.push(
            &v.span,
            format!(
                "instance {inst}: label and scope are not valid for IPv6 address {}",
                v.addr
            ),
        );
    }
    if let Some(l) = &v.label {
        if l.is_empty() || l.len() > MAX_IFNAME {
            e.push(
                &v.span,
                format!("instance {inst}: label {l:?} must be 1..={MAX_IFNAME} characters"),
            );
        }
    }
    if let Some(d) = &v.dev {
        if d.is_empty() || d.len() > MAX_IFNAME {
            e.push(&v.span, format!("instance {inst}: invalid dev {d:?}"));
        }
    }
}
