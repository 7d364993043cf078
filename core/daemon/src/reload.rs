//! What a SIGHUP changes, decided without I/O: whether the VRRP side
//! changed (it waits for a restart). The health state a reload carries
//! across is the health model's (lbd-health, `Model::reload`).

use lbd_config::Config;

/// What the VRRP side runs on, compared: instances (their virtual routes
/// are reloaded on their own), sync groups, globals, and what a script
/// does to a priority (its weight). A script's check itself (plugin,
/// options, interval, rise/fall) is health configuration: it reloads.
/// Spans take no part (`Span` is equality-neutral): moved lines are no change.
pub fn vrrp_changed(running: &Config, new: &Config) -> bool {
    let without_routes = |c: &Config| {
        let mut v = c.instances.clone();
        v.iter_mut().for_each(|i| i.virtual_routes.clear());
        v
    };
    let weights = |c: &Config| {
        let mut w: Vec<(String, i32, bool)> = c
            .track_scripts
            .iter()
            .map(|s| (s.name.clone(), s.weight, s.weight_reverse))
            .collect();
        w.sort();
        w
    };
    without_routes(new) != without_routes(running)
        || new.sync_groups != running.sync_groups
        || new.global != running.global
        || weights(new) != weights(running)
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
    fn moved_lines_are_no_vrrp_change() {
        let a = conf(BASE);
        let b = conf(&format!("# moved\n\n\n{BASE}"));
        assert!(!vrrp_changed(&a, &b));
    }

    #[test]
    fn script_weight_is_a_vrrp_change_its_check_is_not() {
        let a = conf(BASE);
        assert!(vrrp_changed(
            &a,
            &conf(&BASE.replace("weight -60", "weight -10"))
        ));
        assert!(!vrrp_changed(
            &a,
            &conf(&BASE.replace("/bin/false", "/bin/true"))
        ));
        assert!(vrrp_changed(
            &a,
            &conf(&BASE.replace("router_id 5", "router_id 6"))
        ));
    }
}
