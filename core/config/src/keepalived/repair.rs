//! What keepalived repairs after reading the whole file (vrrp.c
//! vrrp_complete_instance / vrrp_complete_init, vrrp_sync.c
//! vrrp_sync_set_group): each is a warning naming what keepalived does, and
//! the model is changed the same way, so `validate` sees only what
//! keepalived also refuses. lbd's TOML gets none of this: its own syntax
//! says what it means or is refused.

use std::collections::HashSet;

use super::Ka;
use crate::model::*;

impl Ka {
    pub(super) fn repair(&mut self) {
        self.drop_undefined_track_scripts();
        self.repair_sync_groups();
        self.repair_instances();
        self.sync_group_weights();
        self.repair_lvs_sync_daemon();
        self.repair_virtual_servers();
    }

    /// check_data.c: a repeated real server is removed ("is duplicated -
    /// removing second rs"); a service naming an undefined group is
    /// ignored at start. keepalived keeps a repeated service silently, but
    /// the kernel refuses the second: lbd keeps the first and says so.
    fn repair_virtual_servers(&mut self) {
        let groups: HashSet<String> = self
            .cfg
            .virtual_server_groups
            .iter()
            .map(|g| g.name.clone())
            .collect();
        let mut notes = Vec::new();
        let mut seen = HashSet::new();
        self.cfg.virtual_servers.retain_mut(|v| {
            let what = format!("virtual_server {}", super::lvs::target_text(&v.target));
            if let VsTarget::Group(g) = &v.target {
                if !groups.contains(g) {
                    notes.push((v.span.clone(), format!("{what}: virtual_server_group {g:?} is not defined; the service is ignored, as keepalived does")));
                    return false;
                }
            }
            let fwmark = matches!(v.target, VsTarget::Fwmark(_));
            if !seen.insert((v.target.clone(), (!fwmark).then_some(v.protocol))) {
                notes.push((v.span.clone(), format!("{what} is defined twice; the repeat is ignored (the kernel holds one)")));
                return false;
            }
            let mut rs_seen = HashSet::new();
            v.real_servers.retain(|r| {
                let first = rs_seen.insert((r.ip, r.port));
                if !first {
                    notes.push((r.span.clone(), format!("{what}: real server {} {} is listed twice; the repeat is removed, as keepalived does", r.ip, r.port)));
                }
                first
            });
            true
        });
        for (span, m) in notes {
            self.warn(&span, m);
        }
    }

    /// keepalived: "track script X not found, ignoring...".
    fn drop_undefined_track_scripts(&mut self) {
        let known: HashSet<String> = self
            .cfg
            .track_scripts
            .iter()
            .map(|t| t.name.clone())
            .collect();
        let mut dropped = Vec::new();
        for (owner, refs) in self
            .cfg
            .instances
            .iter_mut()
            .map(|i| (&i.name, &mut i.track_scripts))
            .chain(
                self.cfg
                    .sync_groups
                    .iter_mut()
                    .map(|g| (&g.name, &mut g.track_scripts)),
            )
        {
            refs.retain(|r| {
                let ok = known.contains(&r.name);
                if !ok {
                    dropped.push((r.span.clone(), owner.clone(), r.name.clone()));
                }
                ok
            });
        }
        for (span, owner, name) in dropped {
            self.warn(
                &span,
                format!("{owner}: track_script {name:?} is not defined; ignored, as keepalived does (\"track script not found, ignoring\")"),
            );
        }
    }

    /// Members that do not exist or already belong to another group are
    /// ignored; a group left without members is removed.
    fn repair_sync_groups(&mut self) {
        let instances: HashSet<String> =
            self.cfg.instances.iter().map(|i| i.name.clone()).collect();
        let mut taken: HashSet<String> = HashSet::new();
        let mut groups = std::mem::take(&mut self.cfg.sync_groups);
        let mut notes = Vec::new();
        groups.retain_mut(|g| {
            g.members.retain(|m| {
                if !instances.contains(m) {
                    notes.push((g.span.clone(), format!("vrrp_sync_group {}: member {m:?} is not a vrrp_instance; ignored, as keepalived does", g.name)));
                    return false;
                }
                if !taken.insert(m.clone()) {
                    notes.push((g.span.clone(), format!("vrrp_sync_group {}: {m} is already in another sync group; ignored here, as keepalived does", g.name)));
                    return false;
                }
                true
            });
            if g.members.is_empty() {
                notes.push((g.span.clone(), format!("vrrp_sync_group {} has no member instances (they belong in group {{ }}); removed, as keepalived does", g.name)));
                return false;
            }
            true
        });
        self.cfg.sync_groups = groups;
        for (span, m) in notes {
            self.warn(&span, m);
        }
    }

    fn repair_instances(&mut self) {
        let strict = self.cfg.global.strict;
        let mut notes = Vec::new();
        for i in &mut self.cfg.instances {
            let n = i.name.clone();
            let owner = i.priority == 255;
            if strict
                && self.state_given.contains(&n)
                && (i.initial == InitialState::Master) != owner
            {
                notes.push((
                    i.span.clone(),
                    format!("vrrp_instance {n}: vrrp_strict: state MASTER must match being the address owner (priority 255); state set from the priority, as keepalived does"),
                ));
                i.initial = if owner {
                    InitialState::Master
                } else {
                    InitialState::Backup
                };
            }
            // The order of keepalived's checks: the first that applies wins.
            if let Some(a) = &i.auth {
                let why = if strict {
                    Some("vrrp_strict does not support authentication")
                } else if i.version == VrrpVersion::V3 {
                    Some("VRRP version 3 does not support authentication")
                } else if matches!(a, Auth::Pass(p) | Auth::Ah(p) if p.is_empty()) {
                    Some("authentication without a password")
                } else if i.is_ipv6() && matches!(a, Auth::Ah(_)) {
                    Some("AH authentication cannot be used with IPv6")
                } else {
                    None
                };
                if let Some(why) = why {
                    notes.push((
                        i.span.clone(),
                        format!("vrrp_instance {n}: {why}; the authentication block is ignored, as keepalived does"),
                    ));
                    i.auth = None;
                } else if matches!(a, Auth::Ah(_)) && i.initial == InitialState::Master && !owner {
                    // vrrp.c: the AH sequence number must be learnt from an advert first.
                    notes.push((
                        i.span.clone(),
                        format!("vrrp_instance {n}: initial state MASTER is incompatible with AH authentication; starting as BACKUP, as keepalived does"),
                    ));
                    i.initial = InitialState::Backup;
                }
            }
            // vrrp_parser.c: a VIP of the other family than the instance's
            // first one is dropped ("address family must match VRRP instance").
            if let Some(first) = i.vips.first().map(|v| v.addr.is_ipv6()) {
                i.vips.retain(|v| {
                    let same = v.addr.is_ipv6() == first;
                    if !same {
                        notes.push((v.span.clone(), format!("vrrp_instance {n}: VIP {} is not of the instance's address family; ignored, as keepalived does (put it in virtual_ipaddress_excluded or its own instance)", v.addr)));
                    }
                    same
                });
            }
            let v6 = i.is_ipv6();
            for (what, a) in [
                ("unicast_src_ip", &mut i.unicast_src),
                ("mcast_src_ip", &mut i.mcast_src),
            ] {
                if let Some(x) = a.filter(|x| x.is_ipv6() != v6) {
                    notes.push((i.span.clone(), format!("vrrp_instance {n}: {what} {x} is not of the instance's address family; ignored, as keepalived does")));
                    *a = None;
                }
            }
            i.unicast_peers.retain(|p| {
                let same = p.is_ipv6() == v6;
                if !same {
                    notes.push((i.span.clone(), format!("vrrp_instance {n}: unicast_peer {p} is not of the instance's address family; skipped, as keepalived does")));
                }
                same
            });
            if let Some(d) = advert_rounded(i.version, i.advert_int) {
                notes.push((i.span.clone(), format!("vrrp_instance {n}: advert_int {:?} is not valid for VRRP{}; {d:?}, as keepalived rounds it", i.advert_int, if i.version == VrrpVersion::V2 { "v2 (whole seconds)" } else { "v3 (10 ms steps up to 40.95 s)" })));
                i.advert_int = d;
            }
            let mut seen = HashSet::new();
            for list in [&mut i.vips, &mut i.excluded_vips] {
                list.retain(|v| {
                    let first = seen.insert(v.addr);
                    if !first {
                        notes.push((
                            v.span.clone(),
                            format!("vrrp_instance {n}: address {} is listed twice; the repeat is ignored (keepalived would add it once)", v.addr),
                        ));
                    }
                    first
                });
            }
        }
        for (span, m) in notes {
            self.warn(&span, m);
        }
    }

    /// vrrp_complete_instance: in a sync group without
    /// `sync_group_tracking_weight`, tracked interfaces lose their weight
    /// (a failure means FAULT) and weighted scripts are not tracked; the
    /// address owner drops weighted interfaces and scripts altogether.
    fn sync_group_weights(&mut self) {
        let mut notes = Vec::new();
        let scripts: Vec<(String, i32)> = self
            .cfg
            .track_scripts
            .iter()
            .map(|t| (t.name.clone(), t.weight))
            .collect();
        for i in &mut self.cfg.instances {
            let in_group = self
                .cfg
                .sync_groups
                .iter()
                .find(|g| g.members.contains(&i.name));
            let sync_no_weight =
                in_group.is_some_and(|g| !self.sync_tracking_weight.contains(&g.name));
            let owner = i.priority == 255;
            if !sync_no_weight && !owner {
                continue;
            }
            let why = if sync_no_weight {
                "it is in a sync group without sync_group_tracking_weight"
            } else {
                "it is the address owner (priority 255)"
            };
            let n = i.name.clone();
            i.track_interfaces.retain_mut(|t| {
                if t.weight == 0 {
                    return true;
                }
                notes.push((i.span.clone(), format!("vrrp_instance {n}: track_interface {} weight {} ignored because {why}, as keepalived does{}", t.name, t.weight, if sync_no_weight { " (a down link now means FAULT)" } else { "" })));
                t.weight = 0;
                sync_no_weight
            });
            i.track_scripts.retain(|r| {
                let w = r.weight.unwrap_or_else(|| {
                    scripts
                        .iter()
                        .find(|(s, _)| *s == r.name)
                        .map_or(0, |(_, w)| *w)
                });
                if w == 0 {
                    return true;
                }
                notes.push((r.span.clone(), format!("vrrp_instance {n}: track_script {} with weight {w} is not tracked because {why}, as keepalived does", r.name)));
                false
            });
        }
        for (span, m) in notes {
            self.warn(&span, m);
        }
    }

    /// A sync daemon naming an instance that does not exist is cleared
    /// (vrrp.c "Unable to find vrrp instance ... clearing lvs_syncd
    /// config"); one naming none runs as master and backup, as in keepalived's
    /// checker.
    fn repair_lvs_sync_daemon(&mut self) {
        let Some(sd) = &self.cfg.global.lvs_sync_daemon else {
            return;
        };
        let msg = match &sd.instance {
            Some(i) if !self.cfg.instances.iter().any(|x| &x.name == i) => {
                format!("lvs_sync_daemon: vrrp_instance {i:?} is not defined; the sync daemon is cleared, as keepalived does")
            }
            _ => return,
        };
        let span = sd.span.clone();
        self.cfg.global.lvs_sync_daemon = None;
        self.warn(&span, msg);
    }
}

/// vrrp_complete_instance: VRRPv2 intervals are whole seconds (rounded
/// half up, at least 1); VRRPv3 ones 10 ms steps (rounded, at most 40.95 s).
/// `None` when `d` is valid as it is.
fn advert_rounded(v: VrrpVersion, d: std::time::Duration) -> Option<std::time::Duration> {
    use std::time::Duration;
    let us = d.as_micros();
    let r = match v {
        VrrpVersion::V2 => Duration::from_secs(((us + 500_000) / 1_000_000).clamp(1, 255) as u64),
        VrrpVersion::V3 => {
            Duration::from_millis((((us + 5_000) / 10_000) * 10).clamp(10, 40_950) as u64)
        }
    };
    (r != d).then_some(r)
}
