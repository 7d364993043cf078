//! What a reload changes on the VRRP side, decided without I/O. Instances
//! are matched by name; what the router can change in place (priority,
//! interval, VIPs, tracking, auth, ...) is found by comparing the router's
//! settings (node/reload.rs). Here: the instances that are new, gone, or
//! must restart because their sync group changed. The health state a
//! reload carries across is the health model's (lbd-health, `Model::reload`).

use std::collections::BTreeSet;

use lbd_config::Config;

/// The instance and sync-group changes of one reload.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct VrrpDiff {
    /// Instances only in the new configuration.
    pub added: Vec<String>,
    /// Instances only in the running configuration.
    pub removed: Vec<String>,
    /// Instances in both whose sync group changed (membership, or the
    /// group itself): removed and added anew, as keepalived's groups are
    /// formed at start.
    pub restarted: Vec<String>,
    /// Sync groups to dissolve (changed or gone) and to form (changed or new).
    pub groups_removed: Vec<String>,
    pub groups_added: Vec<String>,
}

impl VrrpDiff {
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        *self == VrrpDiff::default()
    }
}

/// Spans take no part (`Span` is equality-neutral): moved lines are no change.
pub fn vrrp_diff(running: &Config, new: &Config) -> VrrpDiff {
    let names =
        |c: &Config| -> BTreeSet<String> { c.instances.iter().map(|i| i.name.clone()).collect() };
    let (old_names, new_names) = (names(running), names(new));
    let mut d = VrrpDiff {
        added: new_names.difference(&old_names).cloned().collect(),
        removed: old_names.difference(&new_names).cloned().collect(),
        ..VrrpDiff::default()
    };
    // A group's track_script list is tracking, applied in place; its
    // membership decides how instances move together.
    let members = |c: &Config, name: &str| {
        c.sync_groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.members.clone())
    };
    let mut restart = BTreeSet::new();
    for g in &running.sync_groups {
        if members(new, &g.name).as_ref() != Some(&g.members) {
            d.groups_removed.push(g.name.clone());
            restart.extend(g.members.iter().cloned());
        }
    }
    for g in &new.sync_groups {
        if members(running, &g.name).as_ref() != Some(&g.members) {
            d.groups_added.push(g.name.clone());
            restart.extend(g.members.iter().cloned());
        }
    }
    d.restarted = restart
        .into_iter()
        .filter(|n| old_names.contains(n) && new_names.contains(n))
        .collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn conf(text: &str) -> Config {
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
    fn moved_lines_and_in_place_edits_are_no_instance_change() {
        let a = conf(BASE);
        assert!(vrrp_diff(&a, &conf(&format!("# moved\n\n\n{BASE}"))).is_empty());
        // Weights, VRIDs, priorities: changed in place or by the node's
        // comparison of router settings, not here.
        assert!(vrrp_diff(&a, &conf(&BASE.replace("weight -60", "weight -10"))).is_empty());
        assert!(vrrp_diff(&a, &conf(&BASE.replace("router_id 5", "router_id 6"))).is_empty());
    }

    const GROUPS: &str = "vrrp_sync_group G {\n group {\n A\n B\n }\n}\n\
        vrrp_instance A {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress { 10.0.0.1 }\n}\n\
        vrrp_instance B {\n interface eth0\n virtual_router_id 6\n virtual_ipaddress { 10.0.0.2 }\n}\n";

    #[test]
    fn added_removed_and_group_membership() {
        let a = conf(GROUPS);
        let more = format!(
            "{GROUPS}vrrp_instance C {{\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {{ 10.0.0.3 }}\n}}\n"
        );
        let d = vrrp_diff(&a, &conf(&more));
        assert_eq!(d.added, vec!["C".to_string()]);
        assert!(d.removed.is_empty() && d.restarted.is_empty() && d.groups_added.is_empty());
        let d = vrrp_diff(&conf(&more), &a);
        assert_eq!(d.removed, vec!["C".to_string()]);
        // C joins the group: the group is formed anew, its members restart.
        let grouped = more.replace(" B\n }", " B\n C\n }");
        let d = vrrp_diff(&conf(&more), &conf(&grouped));
        assert_eq!(d.groups_removed, vec!["G".to_string()]);
        assert_eq!(d.groups_added, vec!["G".to_string()]);
        assert_eq!(d.restarted, vec!["A", "B", "C"]);
    }
}
