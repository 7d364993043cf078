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
    e.into_result()
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
