//! What a reload carries across, by identity: a script by its name and
//! its check's definition, a checker by its real server (`RsId`) and its
//! definition. A restarted job that started "up/ok" would report only
//! changes: a server or script failing at the reload that recovers before
//! the new job re-confirms the failure would never be seen to recover
//! (issue 15).

use std::collections::HashMap;

use lbd_config::{Config, TrackScript};

use crate::RsId;

/// A script's definition as far as its check goes (the weight is VRRP's).
fn same_check(a: &TrackScript, b: &TrackScript) -> bool {
    a.plugin == b.plugin
        && a.options == b.options
        && a.interval == b.interval
        && a.timeout == b.timeout
        && a.rise == b.rise
        && a.fall == b.fall
        && a.init_fail == b.init_fail
}

/// The status each script of `new` starts from: the old one's when the
/// script kept its definition, else its initial status (`init_fail`).
pub(crate) fn carry_scripts(
    old: &Config,
    old_ok: &HashMap<String, bool>,
    new: &Config,
) -> HashMap<String, bool> {
    new.track_scripts
        .iter()
        .map(|s| {
            let kept = old
                .track_scripts
                .iter()
                .find(|o| o.name == s.name)
                .filter(|o| same_check(o, s))
                .and_then(|_| old_ok.get(&s.name).copied());
            (s.name.clone(), kept.unwrap_or(!s.init_fail))
        })
        .collect()
}

/// The state each checker of `new` starts from: per real server (by
/// `RsId`), a checker with the same definition as the old one at its
/// position keeps its state; any other starts as configured (`alpha`:
/// down). `alpha` is passed in: it is the checker's effective timing.
pub(crate) fn carry_checkers(
    old: &Config,
    old_up: &HashMap<RsId, Vec<bool>>,
    new: &Config,
    alpha: impl Fn(&lbd_config::VirtualServer, &lbd_config::RealServer, &lbd_config::CheckSpec) -> bool,
) -> HashMap<RsId, Vec<bool>> {
    let mut old_checks = HashMap::new();
    for vs in &old.virtual_servers {
        for rs in &vs.real_servers {
            old_checks.insert(RsId::of(vs, rs), (vs, rs));
        }
    }
    let mut out = HashMap::new();
    for vs in &new.virtual_servers {
        for rs in &vs.real_servers {
            let id = RsId::of(vs, rs);
            let before = old_checks.get(&id);
            let ups = rs
                .checks
                .iter()
                .enumerate()
                .map(|(n, ck)| {
                    let kept = before
                        .filter(|(ovs, ors)| {
                            ors.checks.get(n) == Some(ck)
                                && ors.check == rs.check
                                && ovs.check == vs.check
                        })
                        .and_then(|_| old_up.get(&id))
                        .and_then(|u| u.get(n).copied());
                    kept.unwrap_or_else(|| !alpha(vs, rs, ck))
                })
                .collect();
            out.insert(id, ups);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::Path;

    pub(crate) fn conf(text: &str) -> Config {
        match lbd_config::parse_keepalived_str(text, Path::new("t.conf")) {
            Ok(l) => l.config,
            Err(e) => panic!("should parse:\n{e}"),
        }
    }

    const BASE: &str = "vrrp_script chk {\n script \"/bin/true\"\n weight -60\n}\n\
        vrrp_script other {\n script \"/bin/false\"\n}\n\
        vrrp_instance A {\n interface eth0\n virtual_router_id 5\n track_script { chk }\n \
        virtual_ipaddress { 10.0.0.1 }\n}\n\
        virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 {\n  TCP_CHECK {\n  }\n  \
        HTTP_GET {\n   url { path / }\n  }\n }\n real_server 10.0.1.2 80 {\n  TCP_CHECK {\n  }\n }\n}\n";

    #[test]
    fn scripts_keep_their_status_while_their_check_is_the_same() {
        let a = conf(BASE);
        let old = HashMap::from([("chk".to_string(), false), ("other".to_string(), false)]);
        // Unchanged (the reproduction of the issue): the failure carries over.
        let same = carry_scripts(&a, &old, &a);
        assert_eq!(same.get("chk"), Some(&false));
        assert_eq!(same.get("other"), Some(&false));
        // A weight is not the check: still carried.
        let w = carry_scripts(&a, &old, &conf(&BASE.replace("weight -60", "weight -10")));
        assert_eq!(w.get("chk"), Some(&false));
        // Another check starts anew (ok: no init_fail).
        let c = carry_scripts(&a, &old, &conf(&BASE.replace("/bin/false", "/bin/true")));
        assert_eq!(c.get("other"), Some(&true));
        assert_eq!(c.get("chk"), Some(&false));
        // A new script starts as configured; a removed one is gone.
        let n = conf(&BASE.replace("vrrp_script other", "vrrp_script third"));
        let n = carry_scripts(&a, &old, &n);
        assert_eq!(n.get("third"), Some(&true));
        assert_eq!(n.get("other"), None);
    }

    #[test]
    fn checkers_keep_their_state_by_server_and_definition() {
        let a = conf(BASE);
        let id = |ip: &str| RsId {
            vs: a.virtual_servers[0].name(),
            ip: ip.parse().unwrap_or(std::net::IpAddr::from([0, 0, 0, 0])),
            port: 80,
        };
        let old = HashMap::from([
            (id("10.0.1.1"), vec![true, false]),
            (id("10.0.1.2"), vec![false]),
        ]);
        let up = |_: &_, _: &_, _: &_| false;
        let same = carry_checkers(&a, &old, &a, up);
        assert_eq!(same.get(&id("10.0.1.1")), Some(&vec![true, false]));
        assert_eq!(same.get(&id("10.0.1.2")), Some(&vec![false]));
        // A changed HTTP_GET starts as configured (up); the TCP_CHECK keeps its state.
        let b = conf(&BASE.replace("path /", "path /health"));
        let changed = carry_checkers(&a, &old, &b, up);
        assert_eq!(changed.get(&id("10.0.1.1")), Some(&vec![true, true]));
        assert_eq!(changed.get(&id("10.0.1.2")), Some(&vec![false]));
        // alpha: a new checker starts down.
        let alpha = |_: &_, _: &_, _: &_| true;
        let changed = carry_checkers(&a, &old, &b, alpha);
        assert_eq!(changed.get(&id("10.0.1.1")), Some(&vec![true, false]));
        // A server that moved to another port is another server.
        let moved = conf(&BASE.replace("10.0.1.2 80", "10.0.1.2 81"));
        let moved = carry_checkers(&a, &old, &moved, up);
        assert_eq!(moved.get(&id("10.0.1.2")), None);
    }
}
