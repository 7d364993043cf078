//! keepalived semantics that the fixtures do not pin down one by one.
#![allow(clippy::expect_used)] // a failed expectation is the test failing

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use lbd_config::*;

fn ka(text: &str) -> Loaded {
    match parse_keepalived_str(text, Path::new("test.conf")) {
        Ok(l) => l,
        Err(e) => panic!("should parse:\n{e}"),
    }
}

fn ka_err(text: &str) -> ConfigError {
    match parse_keepalived_str(text, Path::new("test.conf")) {
        Ok(_) => panic!("should fail"),
        Err(e) => e,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test ip")
}

#[test]
fn defaults_follow_keepalived() {
    let l = ka("vrrp_instance A {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress { 10.0.0.1 }\n}\n");
    let i = &l.config.instances[0];
    assert_eq!(i.priority, 100);
    assert_eq!(i.initial, InitialState::Backup);
    assert_eq!(i.advert_int, Duration::from_secs(1));
    assert_eq!(i.version, VrrpVersion::V2);
    assert!(i.preempt);
    assert!(i.accept);
    assert_eq!(i.garp, Garp::default());
    assert_eq!(i.garp.master_delay, Duration::from_secs(5));
    assert_eq!(i.garp.master_repeat, 5);
    assert_eq!(i.vips[0].prefix, 32);
    assert_eq!(i.vips[0].span.line, 4);
    assert!(l.warnings.is_empty());
}

#[test]
fn master_without_priority_is_owner() {
    let l = ka("vrrp_instance A {\n state MASTER\n interface eth0\n virtual_router_id 5\n}\n");
    assert_eq!(l.config.instances[0].priority, 255);
    let l = ka("vrrp_instance A {\n priority 255\n interface eth0\n virtual_router_id 5\n}\n");
    assert_eq!(l.config.instances[0].initial, InitialState::Master);
}

#[test]
fn strict_turns_accept_off_and_refuses_unicast() {
    let l = ka("global_defs { vrrp_strict }\nvrrp_instance A {\n interface eth0\n virtual_router_id 5\n}\n");
    assert!(l.config.global.strict);
    assert!(!l.config.instances[0].accept);
    let e = ka_err("global_defs { vrrp_strict }\nvrrp_instance A {\n interface eth0\n virtual_router_id 5\n unicast_peer { 10.0.0.2 }\n}\n");
    assert!(
        e.to_string().contains("vrrp_strict does not allow unicast"),
        "{e}"
    );
}

#[test]
fn ipv6_instance_defaults_to_v3_and_global_checksum_is_inherited() {
    let l = ka("global_defs { v3_checksum_as_v2 }\nvrrp_instance A {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress { fe80::1/64 }\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 5\n version 3\n}\n");
    let (a, b) = (&l.config.instances[0], &l.config.instances[1]);
    assert_eq!(a.version, VrrpVersion::V3);
    assert!(a.is_ipv6() && !b.is_ipv6());
    assert!(a.v3_checksum_as_v2 && b.v3_checksum_as_v2);
}

#[test]
fn unsupported_keywords_warn_with_their_line() {
    let l = ka("global_defs {\n router_id x\n enable_traps\n}\nvrrp_script s {\n script \"/bin/true\"\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 5\n notify_master /x\n track_script {\n s\n }\n}\n");
    let lines: Vec<(usize, &str)> = l
        .warnings
        .iter()
        .map(|w| (w.span.line, w.message.as_str()))
        .collect();
    assert_eq!(
        lines,
        vec![(3, "keyword enable_traps is not supported yet (ignored)")]
    );
    // Scripts and notify are read: a track script, an exec hook.
    let c = &l.config;
    assert_eq!(c.track_scripts[0].name, "s");
    assert_eq!(
        c.track_scripts[0].options["argv"],
        serde_json::json!(["/bin/true"])
    );
    assert_eq!(c.instances[0].track_scripts[0].name, "s");
    let h = &c.notify_hooks[0];
    assert_eq!(
        (h.plugin.as_str(), h.filter.states.as_slice()),
        ("exec", &["MASTER".to_string()][..])
    );
    assert_eq!(h.filter.name.as_deref(), Some("A"));
}

#[test]
fn scripts_checkers_and_fifos_map_to_plugins() {
    let l = ka("global_defs {\n notify_fifo /run/ka.fifo\n notify_fifo_script /usr/bin/reader\n script_user nobody nogroup\n}\n\
vrrp_script chk {\n script \"/bin/sh -c 'pidof haproxy'\"\n interval 2\n weight -20 reverse\n rise 2\n fall 3\n init_fail\n user haproxy nogroup\n}\n\
vrrp_instance A {\n interface eth0\n virtual_router_id 5\n notify \"/x.sh a b\"\n track_script {\n chk weight 5\n }\n}\n\
virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.1.1 80 {\n MISC_CHECK {\n misc_path \"/bin/check --port 80\"\n misc_timeout 3\n misc_dynamic\n user www\n }\n TCP_CHECK {\n connect_port 8080\n connect_timeout 2\n }\n BFD_CHECK {\n name b1\n }\n }\n}\n");
    let c = &l.config;
    let t = &c.track_scripts[0];
    assert_eq!(
        t.options["argv"],
        serde_json::json!(["/bin/sh", "-c", "pidof haproxy"])
    );
    assert_eq!(t.options["user"], "haproxy:nogroup");
    assert_eq!(
        (t.weight, t.weight_reverse, t.rise, t.fall, t.init_fail),
        (-20, true, 2, 3, true)
    );
    assert_eq!(c.instances[0].track_scripts[0].weight, Some(5));
    let hooks = &c.notify_hooks;
    let fifo = hooks.iter().find(|h| h.plugin == "fifo").unwrap();
    assert_eq!(fifo.options["path"], "/run/ka.fifo");
    assert_eq!(fifo.options["script"], "/usr/bin/reader");
    let n = hooks.iter().find(|h| h.plugin == "exec").unwrap();
    assert_eq!(n.options["args"], true);
    assert_eq!(
        c.global.script_user,
        Some(("nobody".into(), Some("nogroup".into())))
    );
    let checks = &c.virtual_servers[0].real_servers[0].checks;
    assert_eq!(checks.len(), 2, "BFD_CHECK is not run");
    assert_eq!(checks[0].plugin, "exec");
    assert_eq!(
        checks[0].options["argv"],
        serde_json::json!(["/bin/check", "--port", "80"])
    );
    assert_eq!(checks[0].options["dynamic"], true);
    assert_eq!(checks[0].options["user"], "www");
    assert_eq!(checks[1].plugin, "tcp");
    assert_eq!(checks[1].options["connect_port"], 8080);
    assert_eq!(
        checks[1].timing.connect_timeout,
        Some(std::time::Duration::from_secs(2))
    );
    assert!(l.warnings.iter().any(|w| w.message
        == "BFD_CHECK is not supported yet: the check is not run and the real server is treated as up"
        && w.span.line == 36));
}

#[test]
fn auth_pass_is_truncated_to_eight_bytes_like_keepalived() {
    let l = ka("vrrp_instance A {\n interface eth0\n virtual_router_id 5\n authentication {\n auth_type PASS\n auth_pass 0123456789\n }\n}\n");
    assert_eq!(
        l.config.instances[0].auth,
        Some(Auth::Pass("01234567".into()))
    );
    assert_eq!(l.warnings.len(), 1);
}

#[test]
fn unicast_and_tracking() {
    let l = ka("vrrp_instance A {\n interface eth0\n virtual_router_id 5\n unicast_src_ip 10.0.0.1\n unicast_peer {\n 10.0.0.2\n 10.0.0.3 min_ttl 2\n }\n track_interface {\n eth1 weight -20\n eth2 weight 254\n }\n}\n");
    let i = &l.config.instances[0];
    assert_eq!(i.unicast_src, Some(ip("10.0.0.1")));
    assert_eq!(i.unicast_peers, vec![ip("10.0.0.2"), ip("10.0.0.3")]);
    assert_eq!(
        i.track_interfaces[0],
        TrackInterface {
            name: "eth1".into(),
            weight: -20
        }
    );
    assert_eq!(i.track_interfaces[1].weight, 253);
    assert_eq!(l.warnings.len(), 1, "min_ttl warns");
}

#[test]
fn all_errors_are_reported_in_order() {
    // A bad number is a repaired warning (keepalived ignores the keyword);
    // an instance keepalived cannot run is an error, each in file order.
    let e = ka_err("vrrp_instance A {\n virtual_router_id 5\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 0\n priority 256\n}\n");
    let lines: Vec<usize> = e.errors.iter().map(|d| d.span.line).collect();
    assert_eq!(lines, vec![1, 4], "{e}");
}

#[test]
fn nothing_panics_on_garbage() {
    let samples = [
        "",
        "{",
        "}",
        "{{}}",
        "\"",
        "\\",
        "vrrp_instance",
        "vrrp_instance {",
        "vrrp_instance A { virtual_ipaddress }",
        "vrrp_instance A { virtual_ipaddress { / } }",
        "include",
        "include *",
        "global_defs { vrrp_version }",
        "vrrp_instance A { interface eth0 virtual_router_id 1 }",
        "vrrp_sync_group { group }",
        "\u{0}\u{ffff}",
        "vrrp_instance A { track_interface { e weight } }",
        "vrrp_instance A { advert_int 99999999999999999999 }",
    ];
    for s in samples {
        let _ = parse_keepalived_str(s, Path::new("g.conf"));
        let _ = parse_toml_str(s, Path::new("g.toml"));
    }
}

#[test]
fn toml_render_is_stable() {
    let l = ka("vrrp_instance A {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress { 10.0.0.1/24 dev eth0 label eth0:1 }\n}\n");
    let t = to_toml(&l.config).expect("the model serializes");
    let back = parse_toml_str(&t, Path::new("x.toml")).expect("rendered TOML loads");
    assert_eq!(to_toml(&back.config).expect("the model serializes"), t);
}

const INST: &str = "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress { 10.0.0.1 }\n}\n";

#[test]
fn virtual_server_defaults_follow_keepalived() {
    let l = ka(&format!("{INST}virtual_server 10.0.0.1 80 {{\n real_server 10.0.1.1 {{\n HTTP_GET {{\n url {{ path / }}\n }}\n }}\n}}\n"));
    let v = &l.config.virtual_servers[0];
    assert_eq!(
        v.target,
        VsTarget::Addr {
            ip: ip("10.0.0.1"),
            port: 80
        }
    );
    assert_eq!(v.scheduler, "wlc");
    assert_eq!(v.fwd, LbKind::Nat);
    // keepalived leaves a service without `protocol` as UDP.
    assert_eq!(v.protocol, Protocol::Udp);
    assert_eq!((v.quorum, v.hysteresis), (1, 0));
    let r = &v.real_servers[0];
    assert_eq!((r.port, r.weight, r.fwd), (80, 1, LbKind::Nat));
    assert_eq!(r.checks[0].plugin, "http_get");
    assert_eq!(
        r.checks[0].options.get("urls"),
        Some(&serde_json::json!([{ "path": "/" }]))
    );
    let msgs: Vec<&str> = l.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(
        msgs.iter().any(|m| m.contains("no protocol set")),
        "{msgs:?}"
    );
    assert!(
        !msgs.iter().any(|m| m.contains("not supported")),
        "{msgs:?}"
    );
}

#[test]
fn lvs_globals_and_sync_daemon() {
    let l = ka(&format!("global_defs {{\n lvs_flush_onstop\n lvs_timeouts udp 30\n lvs_sync_daemon eth1 A 7\n}}\n{INST}"));
    let g = &l.config.global;
    assert_eq!(g.lvs_flush_onstop, LvsFlushOnStop::On);
    assert_eq!(
        g.lvs_timeouts,
        Some(LvsTimeouts {
            tcp: None,
            tcpfin: None,
            udp: Some(30)
        })
    );
    let sd = g.lvs_sync_daemon.as_ref().expect("sync daemon");
    assert_eq!(
        (sd.interface.as_str(), sd.instance.as_deref(), sd.id),
        ("eth1", Some("A"), Some(7))
    );
    let l = ka(&format!(
        "global_defs {{\n lvs_sync_daemon eth1 inst A\n}}\n{INST}"
    ));
    // The syncid defaults to the followed instance's VRID.
    assert_eq!(l.config.lvs_syncid(), Some(5));
}

#[test]
fn lvs_fixups_warn_like_keepalived() {
    let l = ka(&format!("{INST}virtual_server 10.0.0.1 80 {{\n protocol TCP\n lb_algo rr\n lb_kind DR\n quorum 5\n hysteresis 9\n real_server 10.0.1.1 81\n real_server 10.0.1.2 80 {{ weight 2 }}\n}}\n"));
    let v = &l.config.virtual_servers[0];
    assert_eq!(v.real_servers[0].port, 80);
    assert_eq!((v.quorum, v.hysteresis), (3, 2));
    assert_eq!(l.warnings.len(), 3, "{:?}", l.warnings);
}

#[test]
fn group_ranges_and_tunnels() {
    let l = ka(&format!("{INST}virtual_server_group G {{\n 10.0.0.1-3 80\n 2001:db8::a-f 80\n 10.1.0.0/30\n fwmark 4 inet6\n}}\nvirtual_server fwmark 9 {{\n lvs_method TUN type gre csum\n real_server 2001:db8::1\n}}\n"));
    let m = &l.config.virtual_server_groups[0].members;
    assert_eq!(
        m[0],
        VsgMember::Range {
            first: ip("10.0.0.1"),
            last: ip("10.0.0.3"),
            port: 80
        }
    );
    assert_eq!(
        m[1],
        VsgMember::Range {
            first: ip("2001:db8::a"),
            last: ip("2001:db8::f"),
            port: 80
        }
    );
    assert_eq!(
        m[2],
        VsgMember::Range {
            first: ip("10.1.0.0"),
            last: ip("10.1.0.3"),
            port: 0
        }
    );
    assert_eq!(
        m[3],
        VsgMember::Fwmark {
            mark: 4,
            family: Some(IpFamily::Inet6)
        }
    );
    let r = &l.config.virtual_servers[0].real_servers[0];
    assert_eq!(
        r.fwd,
        LbKind::Tun(Tunnel {
            kind: TunnelKind::Gre,
            csum: TunnelCsum::Csum
        })
    );
}

#[test]
fn lvs_errors_name_the_line() {
    let e = ka_err(&format!("{INST}virtual_server 10.0.0.1 80 {{\n lvs_method TUN type gue\n real_server 10.0.1.1 80\n}}\n"));
    assert_eq!(e.first().map(|d| d.span.line), Some(7));
    let e = ka_err(&format!("{INST}virtual_server 10.0.0.1 80 {{\n protocol TCP\n real_server 2001:db8::1 80\n real_server 10.0.1.1 80\n real_server 10.0.1.1 80\n}}\nvirtual_server 10.0.0.1 80 {{\n protocol TCP\n real_server 10.0.1.1 80\n}}\n"));
    let msgs: Vec<String> = e
        .errors
        .iter()
        .map(|d| format!("{}: {}", d.span.line, d.message))
        .collect();
    assert!(
        msgs[0].starts_with("8: ") && msgs[0].contains("is IPv6 but the service is IPv4"),
        "{msgs:?}"
    );
    // Repeats are repairs now (keepalived removes the second real server;
    // the kernel keeps one service): warnings, not errors.
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let l = ka(&format!("{INST}virtual_server 10.0.0.1 80 {{\n protocol TCP\n real_server 10.0.1.1 80\n real_server 10.0.1.1 80\n}}\nvirtual_server 10.0.0.1 80 {{\n protocol TCP\n real_server 10.0.1.1 80\n}}\n"));
    assert_eq!(l.config.virtual_servers.len(), 1);
    assert_eq!(l.config.virtual_servers[0].real_servers.len(), 1);
    let w: Vec<String> = l
        .warnings
        .iter()
        .map(|w| format!("{}: {}", w.span.line, w.message))
        .collect();
    assert!(
        w.iter()
            .any(|m| m.starts_with("9: ") && m.contains("listed twice")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|m| m.starts_with("11: ") && m.contains("defined twice")),
        "{w:?}"
    );
    for s in [
        "virtual_server",
        "virtual_server fwmark",
        "virtual_server 1.2.3.4 99999 {}",
        "virtual_server_group G { 1.2.3.4-x }",
        "global_defs { lvs_timeouts tcp }",
        "global_defs { lvs_sync_daemon }",
        "virtual_server 1.1.1.1 1 { real_server }",
    ] {
        let _ = parse_keepalived_str(s, Path::new("g.conf"));
    }
}

fn rs_checks(l: &Loaded, vs: usize) -> &[CheckSpec] {
    &l.config.virtual_servers[vs].real_servers[0].checks
}

const VI: &str = "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n}\n";

#[test]
fn udp_check_options_defaults_and_errors() {
    let l = ka(&format!("{VI}virtual_server 10.0.0.1 53 {{\n protocol UDP\n real_server 10.0.1.1 53 {{\n UDP_CHECK {{\n connect_port 5353\n bindto 10.0.1.9\n bind_port 999\n payload Ab12f 3 456\n require_reply 0a Xx 1\n max_reply_length 3\n min_reply_length 9\n fwmark 7\n }}\n UDP_CHECK {{\n require_reply\n }}\n }}\n}}\n"));
    let c = rs_checks(&l, 0);
    assert_eq!(c[0].plugin, "udp");
    let o = &c[0].options;
    assert_eq!(o["connect_port"], 5353);
    assert_eq!(o["bind_ip"], "10.0.1.9");
    assert_eq!(o["bind_port"], 999);
    assert_eq!(o["payload"], "ab120f034506");
    assert_eq!(o["reply"], "0axx01");
    assert_eq!(o["require_reply"], true);
    assert_eq!(
        (
            o["min_reply_length"].as_u64(),
            o["max_reply_length"].as_u64()
        ),
        (Some(9), Some(3))
    );
    // A bare require_reply needs a reply of any content; nothing else is set.
    assert_eq!(c[1].options.len(), 1);
    assert_eq!(c[1].options["require_reply"], true);
    let w: Vec<String> = l.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.iter().any(|w| w.starts_with(
            "test.conf:8: warning: UDP_CHECK: min_reply_length 9 > max_reply_length 3"
        )),
        "{w:?}"
    );
    assert!(
        w.iter().any(|w| w
            .starts_with("test.conf:16: warning: UDP_CHECK: keyword fwmark is not supported yet")),
        "{w:?}"
    );
    let e = ka_err(&format!("{VI}virtual_server 10.0.0.1 53 {{\n protocol UDP\n real_server 10.0.1.1 53 {{\n UDP_CHECK {{\n payload\n max_reply_length 70000\n connect_ip nowhere\n }}\n }}\n}}\n"));
    let s = e.to_string();
    assert!(
        s.contains("test.conf:9: error: UDP_CHECK payload: expected a hex string"),
        "{s}"
    );
    // An invalid number or address is ignored as keepalived does (a warning).
    assert_eq!(e.errors.len(), 1, "{s}");
}

#[test]
fn ping_check_takes_the_common_options() {
    let l = ka(&format!("{VI}virtual_server 10.0.0.1 80 {{\n protocol TCP\n real_server 10.0.1.1 80 {{\n PING_CHECK {{\n connect_ip fd00::9\n bindto fd00::1\n connect_timeout 2\n retry 4\n delay_before_retry 0.5\n delay_loop 3\n alpha\n connect_port 80\n }}\n }}\n}}\n"));
    let c = &rs_checks(&l, 0)[0];
    assert_eq!(c.plugin, "ping");
    assert_eq!(c.options["connect_ip"], "fd00::9");
    assert_eq!(c.options["bind_ip"], "fd00::1");
    assert!(!c.options.contains_key("connect_port"));
    let t = &c.timing;
    assert_eq!(t.connect_timeout, Some(Duration::from_secs(2)));
    assert_eq!(t.retry, Some(4));
    assert_eq!(t.delay_before_retry, Some(Duration::from_millis(500)));
    assert_eq!(t.delay_loop, Some(Duration::from_secs(3)));
    assert_eq!(t.alpha, Some(true));
    assert!(l
        .warnings
        .iter()
        .any(|w| w.message.contains("connect_port has no meaning for ICMP") && w.span.line == 8));
    // No options at all: one check with the server's address.
    let l = ka(&format!("{VI}virtual_server 10.0.0.1 80 {{\n protocol TCP\n lb_algo rr\n real_server 10.0.1.1 80 {{\n PING_CHECK {{\n }}\n }}\n}}\n"));
    let c = &rs_checks(&l, 0)[0];
    assert!(c.options.is_empty() && c.timing == CheckTiming::default());
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn smtp_check_host_blocks_are_checks_of_their_own() {
    // No connection option in the block: each host is a check (keepalived
    // moves the first host into the block's own checker).
    let l = ka(&format!("{VI}virtual_server 10.0.0.1 25 {{\n protocol TCP\n real_server 10.0.1.1 25 {{\n SMTP_CHECK {{\n helo_name \"lb.example\"\n delay_loop 9\n host {{\n connect_ip 10.0.1.2\n connect_port 2525\n connect_timeout 3\n retry 5\n }}\n host {{\n bindto 10.0.0.9\n bind_port 2000\n }}\n }}\n }}\n}}\n"));
    let c = rs_checks(&l, 0);
    assert_eq!(c.len(), 2);
    assert!(c
        .iter()
        .all(|c| c.plugin == "smtp" && c.options["helo_name"] == "lb.example"));
    assert!(c
        .iter()
        .all(|c| c.timing.delay_loop == Some(Duration::from_secs(9))));
    assert_eq!(c[0].options["connect_ip"], "10.0.1.2");
    assert_eq!(c[0].options["connect_port"], 2525);
    assert_eq!(c[0].timing.connect_timeout, Some(Duration::from_secs(3)));
    assert_eq!(c[0].span.line, 11);
    assert_eq!(c[1].options["bind_ip"], "10.0.0.9");
    assert_eq!(c[1].options["bind_port"], 2000);
    assert!(!c[1].options.contains_key("connect_ip"));
    assert_eq!(c[1].timing.connect_timeout, None);
    let w: Vec<String> = l.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.iter()
            .any(|w| w.starts_with("test.conf:15: warning: SMTP_CHECK host: retry is ignored")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|w| w.starts_with("test.conf:8: warning: SMTP_CHECK: host blocks are deprecated")),
        "{w:?}"
    );
    // With a connection option of its own, the block is one more check.
    let l = ka(&format!("{VI}virtual_server 10.0.0.1 25 {{\n protocol TCP\n real_server 10.0.1.1 25 {{\n SMTP_CHECK {{\n connect_timeout 2\n host {{\n connect_ip 10.0.1.2\n }}\n }}\n SMTP_CHECK {{\n }}\n }}\n}}\n"));
    let c = rs_checks(&l, 0);
    assert_eq!(c.len(), 3);
    assert_eq!(c[0].timing.connect_timeout, Some(Duration::from_secs(2)));
    assert!(!c[0].options.contains_key("connect_ip"));
    assert_eq!(c[1].options["connect_ip"], "10.0.1.2");
    assert_eq!(
        c[1].timing.connect_timeout, None,
        "a host has its own timeout only"
    );
    assert!(c[2].options.is_empty(), "helo_name defaults in the plugin");
    let e = ka_err(&format!("{VI}virtual_server 10.0.0.1 25 {{\n protocol TCP\n real_server 10.0.1.1 25 {{\n SMTP_CHECK {{\n helo_name\n host\n }}\n }}\n}}\n"));
    let s = e.to_string();
    assert!(
        s.contains("test.conf:9: error: SMTP_CHECK helo_name: expected a name"),
        "{s}"
    );
    assert!(
        s.contains("test.conf:10: error: host: expected a '{' block"),
        "{s}"
    );
}

#[test]
fn file_check_takes_track_file_weight_semantics() {
    let l = ka(&format!("{VI}track_file maint {{\n file /run/maint\n weight -3 reverse\n init_file 0\n}}\nvrrp_track_file old {{\n file /run/old\n}}\n\
virtual_server 10.0.0.1 80 {{\n protocol TCP\n delay_loop 30\n real_server 10.0.1.1 80 {{\n weight 4\n FILE_CHECK {{\n track_file maint\n }}\n FILE_CHECK {{\n track_file maint\n weight 7\n }}\n FILE_CHECK {{\n track_file old\n weight -2 reverse\n retry 3\n }}\n }}\n}}\n"));
    let c = rs_checks(&l, 0);
    assert_eq!(c.len(), 3);
    assert!(c.iter().all(|c| c.plugin == "file"));
    let o = |i: usize| {
        (
            c[i].options["path"].clone(),
            c[i].options["weight"].as_i64(),
            c[i].options["reverse"].as_bool(),
        )
    };
    assert_eq!(
        o(0),
        (serde_json::json!("/run/maint"), Some(-3), Some(true))
    );
    // A FILE_CHECK weight replaces the track_file's, reverse included.
    assert_eq!(
        o(1),
        (serde_json::json!("/run/maint"), Some(7), Some(false))
    );
    assert_eq!(o(2), (serde_json::json!("/run/old"), Some(-2), Some(true)));
    let t = &c[0].timing;
    assert_eq!(
        t.delay_loop,
        Some(Duration::from_secs(1)),
        "polled every second, whatever delay_loop"
    );
    assert_eq!(
        (t.retry, t.warmup, t.alpha),
        (Some(0), Some(Duration::ZERO), Some(false))
    );
    let w: Vec<String> = l.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.iter().any(|w| w.starts_with(
            "test.conf:8: warning: track_file maint: keyword init_file is not supported yet"
        )),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|w| w.starts_with("test.conf:10: warning: vrrp_track_file is deprecated")),
        "{w:?}"
    );
    assert!(
        w.iter().any(|w| w
            .starts_with("test.conf:28: warning: FILE_CHECK: keyword retry is not supported yet")),
        "{w:?}"
    );
    // keepalived's corrections: a track_file weight beyond ±254 is 1, a
    // track_file without a file is dropped.
    let l = ka(&format!("{VI}track_file big {{\n file /run/big\n weight 300\n}}\ntrack_file none {{\n weight 2\n}}\nvirtual_server 10.0.0.1 80 {{\n protocol TCP\n real_server 10.0.1.1 80 {{\n FILE_CHECK {{\n track_file big\n }}\n }}\n}}\n"));
    assert_eq!(rs_checks(&l, 0)[0].options["weight"], 1);
    assert!(l
        .warnings
        .iter()
        .any(|w| w.message.contains("weight \"300\" must be -254..=254") && w.span.line == 7));
    assert!(l
        .warnings
        .iter()
        .any(|w| w.message.contains("track_file none has no file") && w.span.line == 9));
    // keepalived ignores a FILE_CHECK without a usable track_file (warnings).
    let l = ka(&format!("{VI}virtual_server 10.0.0.1 80 {{\n protocol TCP\n lb_algo rr\n real_server 10.0.1.1 80 {{\n FILE_CHECK {{\n weight 2\n }}\n FILE_CHECK {{\n track_file none\n }}\n }}\n}}\n"));
    assert!(rs_checks(&l, 0).is_empty());
    let w: Vec<String> = l.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.iter()
            .any(|m| m.starts_with("test.conf:9: warning: FILE_CHECK: no track_file given")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|m| m.starts_with("test.conf:13: warning: FILE_CHECK: track_file none not found")),
        "{w:?}"
    );
}

#[test]
fn new_checkers_round_trip_through_toml() {
    let l = ka(&format!("{VI}track_file f {{\n file /run/f\n}}\nvirtual_server 10.0.0.1 25 {{\n protocol TCP\n real_server 10.0.1.1 25 {{\n SMTP_CHECK {{\n helo_name a.b\n host {{\n connect_ip 10.0.1.2\n }}\n }}\n UDP_CHECK {{\n payload 01 02\n require_reply 0x\n }}\n PING_CHECK {{\n retry 1\n }}\n FILE_CHECK {{\n track_file f\n }}\n }}\n}}\n"));
    let text = to_toml(&l.config).expect("the model serializes");
    let back = parse_toml_str(&text, Path::new("c.toml")).expect("converted TOML loads");
    let strip = |c: &Config| -> Vec<(String, Options, CheckTiming)> {
        c.virtual_servers[0].real_servers[0]
            .checks
            .iter()
            .map(|k| (k.plugin.clone(), k.options.clone(), k.timing.clone()))
            .collect()
    };
    let got = strip(&back.config);
    assert_eq!(got, strip(&l.config), "{text}");
    let plugins: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(plugins, ["smtp", "udp", "ping", "file"]);
}

#[test]
fn spans_take_no_part_in_equality() {
    // A reload diffs two models: an edit that only moves lines is no change.
    let body = "vrrp_script chk {\n script \"/bin/true\"\n weight -60\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 5\n track_script { chk }\n virtual_ipaddress { 10.0.0.1 }\n}\nvirtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 {\n }\n}\n";
    let a = ka(body);
    let b = ka(&format!("# moved\n\n{body}"));
    assert_ne!(
        a.config.instances[0].span.line,
        b.config.instances[0].span.line
    );
    assert!(!a.config.instances[0]
        .span
        .same_place(&b.config.instances[0].span));
    assert_eq!(a.config.instances, b.config.instances);
    assert_eq!(a.config.track_scripts, b.config.track_scripts);
    assert_eq!(a.config.virtual_servers, b.config.virtual_servers);
    // A real change still shows.
    let c = ka(&body.replace("weight -60", "weight -50"));
    assert_ne!(a.config.track_scripts, c.config.track_scripts);
}
