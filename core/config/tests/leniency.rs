//! One test per leniency decision in core/config/KEEPALIVED.md that no
//! fixture pins down: the model keepalived would run, and a `Repaired`
//! warning (or a `Note`) saying so.
#![allow(clippy::expect_used)] // a failed expectation is the test failing

use std::path::Path;

use lbd_config::*;

fn ka(text: &str) -> Loaded {
    ka_with(text, &ReadOptions::default())
}

fn ka_with(text: &str, opts: &ReadOptions) -> Loaded {
    match parse_keepalived_str_with(text, Path::new("test.conf"), opts) {
        Ok(l) => l,
        Err(e) => panic!("should parse:\n{e}"),
    }
}

/// The one warning containing `what`, which must be of `kind`.
fn warned(l: &Loaded, what: &str, kind: WarningKind) -> Warning {
    let w: Vec<&Warning> = l
        .warnings
        .iter()
        .filter(|w| w.message.contains(what))
        .collect();
    assert_eq!(w.len(), 1, "want one {what:?} in {:#?}", l.warnings);
    assert_eq!(w[0].kind, kind, "{:#?}", w[0]);
    w[0].clone()
}

fn instance(body: &str) -> String {
    format!("vrrp_instance A {{\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {{ 10.0.0.1 }}\n{body}}}\n")
}

#[test]
fn garp_repeat_zero_becomes_one() {
    let l = ka(&format!(
        "global_defs {{\n vrrp_garp_master_repeat 0\n}}\n{}",
        instance("")
    ));
    assert_eq!(l.config.global.garp.master_repeat, 1);
    warned(&l, "using 1 as keepalived does", WarningKind::Repaired);
}

#[test]
fn auth_type_without_password_is_no_authentication() {
    let l = ka(&instance(" authentication {\n  auth_type PASS\n }\n"));
    assert_eq!(l.config.instances[0].auth, None);
    warned(
        &l,
        "authentication without auth_pass",
        WarningKind::Repaired,
    );
}

#[test]
fn long_password_is_truncated_to_eight() {
    let l = ka(&instance(
        " authentication {\n  auth_type PASS\n  auth_pass 0123456789\n }\n",
    ));
    assert_eq!(
        l.config.instances[0].auth,
        Some(Auth::Pass("01234567".into()))
    );
    warned(&l, "truncated", WarningKind::Repaired);
}

#[test]
fn vip_unknown_option_and_bad_scope_keep_the_address() {
    let l = ka("vrrp_instance A {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  10.0.0.1/24 frob\n  10.0.0.2/24 scope bogus\n }\n}\n");
    let vips = &l.config.instances[0].vips;
    assert_eq!(vips.len(), 2);
    assert_eq!(vips[1].scope, None);
    warned(&l, "unknown option \"frob\"", WarningKind::Repaired);
    warned(&l, "invalid scope \"bogus\"", WarningKind::Repaired);
}

#[test]
fn ipv6_vip_scope_is_dropped() {
    let l = ka("vrrp_instance A {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  2001:db8::1/64 scope link\n }\n}\n");
    assert_eq!(l.config.instances[0].vips[0].scope, None);
    warned(&l, "scope is not valid for IPv6", WarningKind::Repaired);
}

#[test]
fn instance_in_two_sync_groups_stays_in_the_first() {
    let l = ka(&format!(
        "{}vrrp_instance B {{\n interface eth0\n virtual_router_id 6\n virtual_ipaddress {{ 10.0.0.2 }}\n}}\n\
         vrrp_sync_group G1 {{\n group {{\n  A\n  B\n }}\n}}\nvrrp_sync_group G2 {{\n group {{\n  A\n }}\n}}\n",
        instance("")
    ));
    assert_eq!(l.config.sync_groups.len(), 1);
    assert_eq!(l.config.sync_groups[0].name, "G1");
    warned(
        &l,
        "A is already in another sync group",
        WarningKind::Repaired,
    );
    warned(
        &l,
        "vrrp_sync_group G2 has no member",
        WarningKind::Repaired,
    );
}

#[test]
fn sync_group_tracking_weight_keeps_weights() {
    let l = ka(&format!(
        "vrrp_script chk {{\n script \"/bin/true\"\n weight 10\n}}\n{}vrrp_instance B {{\n interface eth0\n \
         virtual_router_id 6\n virtual_ipaddress {{ 10.0.0.2 }}\n}}\n\
         vrrp_sync_group G {{\n group {{\n  A\n  B\n }}\n sync_group_tracking_weight\n}}\n",
        instance(" track_interface {\n  eth1 weight -20\n }\n track_script {\n  chk\n }\n")
    ));
    let a = &l.config.instances[0];
    assert_eq!(a.track_interfaces[0].weight, -20);
    assert_eq!(a.track_scripts.len(), 1);
    assert!(l.warnings.is_empty(), "{:#?}", l.warnings);
}

#[test]
fn address_owner_drops_weighted_tracking() {
    let l = ka(&instance(
        " priority 255\n track_interface {\n  eth1 weight -20\n  eth2\n }\n",
    ));
    let a = &l.config.instances[0];
    assert_eq!(a.track_interfaces.len(), 1, "{:#?}", a.track_interfaces);
    assert_eq!(a.track_interfaces[0].name, "eth2");
    warned(&l, "it is the address owner", WarningKind::Repaired);
}

#[test]
fn conditional_lines_follow_the_config_id() {
    let text = "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n@high priority 150\n@^high priority 50\n virtual_ipaddress { 10.0.0.1 }\n}\n";
    let high = ka_with(
        text,
        &ReadOptions {
            config_id: Some("high".into()),
        },
    );
    assert_eq!(high.config.instances[0].priority, 150);
    let other = ka_with(
        text,
        &ReadOptions {
            config_id: Some("low".into()),
        },
    );
    assert_eq!(other.config.instances[0].priority, 50);
    // No config id: only the negated lines apply.
    assert_eq!(ka(text).config.instances[0].priority, 50);
}

#[test]
fn real_server_unknown_method_uses_the_virtual_servers() {
    let l = ka("virtual_server 10.0.0.1 80 {\n lb_kind DR\n real_server 10.0.0.11 80 {\n  lvs_method dr\n }\n}\n");
    assert_eq!(l.config.virtual_servers[0].real_servers[0].fwd, LbKind::Dr);
    warned(
        &l,
        "the virtual server's method applies",
        WarningKind::Repaired,
    );
}

#[test]
fn lvs_sync_daemon_positional_id_and_unknown_option() {
    let l = ka(&format!(
        "global_defs {{\n lvs_sync_daemon eth1 A 7 frob\n}}\n{}",
        instance("")
    ));
    let sd = l
        .config
        .global
        .lvs_sync_daemon
        .as_ref()
        .expect("sync daemon");
    assert_eq!(sd.instance.as_deref(), Some("A"));
    assert_eq!(sd.id, Some(7));
    warned(&l, "write \"id\" before the sync id", WarningKind::Repaired);
    warned(&l, "unknown option \"frob\"", WarningKind::Repaired);
}

#[test]
fn deprecated_lvs_sync_daemon_interface_is_a_note() {
    let l = ka(&instance(" lvs_sync_daemon_interface eth1\n"));
    let sd = l
        .config
        .global
        .lvs_sync_daemon
        .as_ref()
        .expect("sync daemon");
    assert_eq!(
        (sd.interface.as_str(), sd.instance.as_deref()),
        ("eth1", Some("A"))
    );
    warned(&l, "is deprecated", WarningKind::Note);
}

#[test]
fn nopreempt_with_owner_priority_is_cleared() {
    let l = ka(&instance(" priority 255\n nopreempt\n"));
    assert!(l.config.instances[0].preempt);
    warned(
        &l,
        "nopreempt is incompatible with priority 255",
        WarningKind::Repaired,
    );
}

#[test]
fn unknown_keywords_are_told_apart_from_unimplemented_ones() {
    let l = ka(&format!(
        "{}smtp_alert\npriorty 100\nfrobnicate 1\n",
        instance("")
    ));
    warned(
        &l,
        "keyword smtp_alert is not supported yet",
        WarningKind::Repaired,
    );
    warned(
        &l,
        "unknown keyword \"priorty\" (did you mean priority?)",
        WarningKind::Repaired,
    );
    warned(
        &l,
        "unknown keyword \"frobnicate\"; ignored",
        WarningKind::Repaired,
    );
}

#[test]
fn virtual_server_without_real_servers_is_ignored() {
    let l = ka("virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_algo rr\n}\n");
    assert!(l.config.virtual_servers.is_empty());
    warned(&l, "has no real servers", WarningKind::Repaired);
}

#[test]
fn unknown_block_says_how_keepalived_misreads_it() {
    let l = ka(&instance(
        " virtual_ipaddres {\n  10.0.0.9\n }\n priority 50\n",
    ));
    assert_eq!(l.config.instances[0].priority, 50);
    warned(
        &l,
        "end the enclosing block at its '}'",
        WarningKind::Repaired,
    );
}

/// keepalived re-reads a script string with escapes: three argv words.
#[test]
fn escaped_quotes_in_a_notify_string() {
    let l = ka(&instance(" notify \"/bin/echo \\\"a b\\\" c\"\n"));
    let h = l
        .config
        .notify_hooks
        .iter()
        .find(|h| h.plugin == "exec")
        .expect("exec hook");
    let script = h.options["script"].as_str().expect("script");
    assert_eq!(
        split_words(script).expect("words"),
        vec!["/bin/echo", "a b", "c"]
    );
}

#[test]
fn track_interface_bad_weights_and_own_interface() {
    let l = ka(&instance(
        " track_interface {\n  eth1 weight 300\n  eth2 weight\n  eth3 frob 1\n  eth0 weight -10\n  eth1\n }\n",
    ));
    let t = &l.config.instances[0].track_interfaces;
    assert_eq!(
        t,
        &vec![TrackInterface {
            name: "eth1".into(),
            weight: 0
        }]
    );
    warned(
        &l,
        "weight \"300\" must be in -253..=253; tracked with weight 0",
        WarningKind::Repaired,
    );
    warned(
        &l,
        "track_interface eth2: weight without a value; not tracked",
        WarningKind::Repaired,
    );
    warned(
        &l,
        "track_interface eth3: unknown option \"frob\"; not tracked",
        WarningKind::Repaired,
    );
    warned(
        &l,
        "track_interface eth0 is the instance's own interface",
        WarningKind::Repaired,
    );
    warned(
        &l,
        "track_interface eth1 is listed twice",
        WarningKind::Repaired,
    );
}

#[test]
fn track_script_bad_weights_and_script_values() {
    let l = ka(&format!(
        "vrrp_script chk {{\n script \"/bin/true\"\n interval 0\n timeout 0\n weight 300\n rise 0\n}}\n{}",
        instance(" track_script {\n  chk weight 999\n  chk\n }\n")
    ));
    let s = &l.config.track_scripts[0];
    assert_eq!(s.interval, std::time::Duration::from_secs(1));
    assert_eq!(s.timeout, Some(std::time::Duration::from_secs(1)));
    assert_eq!((s.weight, s.rise), (0, 1));
    let r = &l.config.instances[0].track_scripts;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].weight, None, "the script's own weight applies");
    warned(
        &l,
        "interval must be greater than 0; using 1 s",
        WarningKind::Repaired,
    );
    warned(
        &l,
        "weight \"999\" must be in -253..=253; the script's own weight applies",
        WarningKind::Repaired,
    );
    warned(
        &l,
        "track_script chk is listed twice",
        WarningKind::Repaired,
    );
}

#[test]
fn non_multicast_groups_are_ignored() {
    let l = ka(&format!(
        "global_defs {{\n vrrp_mcast_group4 10.0.0.1\n vrrp_mcast_group6 fe80::1\n}}\n{}",
        instance("")
    ));
    assert_eq!(l.config.global.mcast_group4, Global::default().mcast_group4);
    assert_eq!(l.config.global.mcast_group6, Global::default().mcast_group6);
    warned(
        &l,
        "vrrp_mcast_group4: invalid value",
        WarningKind::Repaired,
    );
    warned(
        &l,
        "vrrp_mcast_group6: invalid value",
        WarningKind::Repaired,
    );
}

#[test]
fn repeated_instance_name_keeps_the_first() {
    let l = ka(&format!(
        "{}{}",
        instance(" priority 120\n"),
        instance(" priority 50\n")
    ));
    assert_eq!(l.config.instances.len(), 1);
    assert_eq!(l.config.instances[0].priority, 120);
    warned(&l, "vrrp instance A already defined", WarningKind::Repaired);
}

#[test]
fn v3_advert_int_is_rounded_to_10ms_and_capped() {
    let l = ka(&format!(
        "global_defs {{\n vrrp_version 3\n}}\n{}",
        instance(" advert_int 0.015\n")
    ));
    assert_eq!(
        l.config.instances[0].advert_int,
        std::time::Duration::from_millis(20)
    );
    let l = ka(&format!(
        "global_defs {{\n vrrp_version 3\n}}\n{}",
        instance(" advert_int 41\n")
    ));
    assert_eq!(
        l.config.instances[0].advert_int,
        std::time::Duration::from_millis(40_950)
    );
    warned(&l, "as keepalived rounds it", WarningKind::Repaired);
}

#[test]
fn unicast_peer_of_the_other_family_is_skipped() {
    let l = ka(&instance(
        " unicast_peer {\n  10.0.0.2\n  fe80::5\n  nonsense\n }\n",
    ));
    assert_eq!(
        l.config.instances[0].unicast_peers,
        vec!["10.0.0.2".parse::<std::net::IpAddr>().expect("ip")]
    );
    warned(
        &l,
        "unicast_peer fe80::5 is not of the instance's address family",
        WarningKind::Repaired,
    );
    warned(&l, "invalid IP address \"nonsense\"", WarningKind::Repaired);
}

/// Past the cap on listed warnings, the summary line still carries whether
/// anything hidden was a repair (so `--check` exits 0 or 5 truthfully).
#[test]
fn warning_cap_keeps_the_worst_kind() {
    let vs: String = (0..1100)
        .map(|i| format!("virtual_server 10.0.{}.{} 80 {{\n protocol TCP\n lb_algo rr\n lb_kind nat\n real_server 10.9.0.1 80\n}}\n", i / 250, i % 250))
        .collect();
    let notes = ka(&vs);
    assert_eq!(notes.warnings.len(), 1001);
    assert!(notes.warnings.iter().all(|w| w.kind == WarningKind::Note));
    let l = ka(&format!("{vs}frobnicate\n"));
    assert_eq!(l.warnings[1000].kind, WarningKind::Repaired);
}

/// `$NAME=` parameters, expanded at each use as keepalived does: a
/// multi-line definition holding a whole block, one naming a parameter
/// defined after it, `${NAME}` inside a word.
#[test]
fn parameters_expand_at_use() {
    let l = ka("$IF=eth0\n$INST=vrrp_instance VI_${N} { \\\n interface $IF \\\n virtual_router_id 5${N} \\\n virtual_ipaddress { 10.0.0.1 } \\\n}\n$N=1\n$INST\n");
    let i = &l.config.instances[0];
    assert_eq!(
        (i.name.as_str(), i.interface.as_str(), i.vrid),
        ("VI_1", "eth0", 51)
    );
    assert!(l.warnings.is_empty(), "{:#?}", l.warnings);
}

#[test]
fn a_parameter_naming_itself_is_an_error_not_a_loop() {
    let e = parse_keepalived_str("$A=x $A\n$A\n", Path::new("t.conf")).expect_err("refused");
    assert!(e.to_string().contains("nested deeper than 16"), "{e}");
    // Each definition doubling the last: bounded by the size limit.
    let mut text = String::from("$P0=xxxxxxxxxxxxxxxx\n");
    for i in 1..16 {
        text += &format!("$P{i}=$P{} $P{}\n", i - 1, i - 1);
    }
    text += "$P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15 $P15\n";
    let e = parse_keepalived_str(&text, Path::new("t.conf")).expect_err("refused");
    assert!(e.to_string().contains("size limit"), "{e}");
}
