//! `virtual_routes` and `static_routes`: keepalived's forms (its doc/samples
//! and man page), what keepalived skips, and lbd's TOML for them.
#![allow(clippy::expect_used)] // a failed expectation is the test failing

use std::net::IpAddr;
use std::path::Path;

use lbd_config::*;

fn ka(text: &str) -> Loaded {
    match parse_keepalived_str(text, Path::new("test.conf")) {
        Ok(l) => l,
        Err(e) => panic!("should parse:\n{e}"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test ip")
}

fn inst_with_routes(lines: &str) -> String {
    format!("vrrp_instance A {{\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {{ 10.0.0.1 }}\n virtual_routes {{\n{lines}\n }}\n}}\n")
}

fn route(dst: &str, len: u8) -> Route {
    Route::unicast(Span::default(), ip(dst), len)
}

fn no_span(mut r: Route) -> Route {
    r.span = Span::default();
    r
}

#[test]
fn every_sample_form_parses() {
    let l = ka(&inst_with_routes(
        "src 192.168.100.1 192.168.109.0/24 via 192.168.200.254 dev eth1
192.168.110.0/24 via 192.168.200.254 dev eth1
192.168.111.0/24 dev eth2
192.168.112.0/24 via 192.168.100.254
192.168.212.0/24 dev eth3 scope site
blackhole 192.168.113.1/32
0.0.0.0/0 gw 192.168.0.1 table 100
2001:db8::/64 via fe80::1 dev eth1 metric 10
src 192.168.100.1 to 192.168.118.0/24 via 192.168.200.254 dev eth1
unreachable 192.168.119.0/24
prohibit to 192.168.120.0/24 table 7 preference 5
192.168.121.0/24 via 192.168.200.254 protocol static no_track onlink
inet6 default via 2001:db8::1",
    ));
    let got: Vec<Route> = l.config.instances[0]
        .virtual_routes
        .iter()
        .cloned()
        .map(no_span)
        .collect();
    let want = vec![
        Route {
            src: Some(ip("192.168.100.1")),
            via: Some(ip("192.168.200.254")),
            dev: Some("eth1".into()),
            ..route("192.168.109.0", 24)
        },
        Route {
            via: Some(ip("192.168.200.254")),
            dev: Some("eth1".into()),
            ..route("192.168.110.0", 24)
        },
        Route {
            dev: Some("eth2".into()),
            ..route("192.168.111.0", 24)
        },
        Route {
            via: Some(ip("192.168.100.254")),
            ..route("192.168.112.0", 24)
        },
        Route {
            dev: Some("eth3".into()),
            scope: Some(Scope::Site),
            ..route("192.168.212.0", 24)
        },
        Route {
            kind: RouteKind::Blackhole,
            ..route("192.168.113.1", 32)
        },
        Route {
            via: Some(ip("192.168.0.1")),
            table: 100,
            ..route("0.0.0.0", 0)
        },
        Route {
            via: Some(ip("fe80::1")),
            dev: Some("eth1".into()),
            metric: Some(10),
            ..route("2001:db8::", 64)
        },
        Route {
            src: Some(ip("192.168.100.1")),
            via: Some(ip("192.168.200.254")),
            dev: Some("eth1".into()),
            ..route("192.168.118.0", 24)
        },
        Route {
            kind: RouteKind::Unreachable,
            ..route("192.168.119.0", 24)
        },
        Route {
            kind: RouteKind::Prohibit,
            table: 7,
            metric: Some(5),
            ..route("192.168.120.0", 24)
        },
        Route {
            via: Some(ip("192.168.200.254")),
            protocol: 4,
            onlink: true,
            ..route("192.168.121.0", 24)
        },
        Route {
            via: Some(ip("2001:db8::1")),
            ..route("::", 0)
        },
    ];
    assert_eq!(got, want);
    // `gw` is read as keepalived reads it, with its deprecation as a note.
    let gw: Vec<&Warning> = l
        .warnings
        .iter()
        .filter(|w| w.message.contains("\"gw\""))
        .collect();
    assert_eq!(gw.len(), 1, "{:#?}", l.warnings);
    assert_eq!(gw[0].kind, WarningKind::Note);
    assert_eq!(gw[0].span.line, 12);
    assert!(
        !l.warnings.iter().any(|w| w.kind == WarningKind::Repaired),
        "{:#?}",
        l.warnings
    );
    // Spans are the route's own line.
    assert_eq!(l.config.instances[0].virtual_routes[0].span.line, 6);
}

#[test]
fn effective_scope_follows_iproute2() {
    let l = ka(&inst_with_routes(
        "192.168.111.0/24 dev eth2\n192.168.112.0/24 via 10.0.0.254\n192.168.113.0/24 dev eth3 scope site\nblackhole 10.9.0.0/16",
    ));
    let s: Vec<Scope> = l.config.instances[0]
        .virtual_routes
        .iter()
        .map(Route::effective_scope)
        .collect();
    assert_eq!(s, [Scope::Link, Scope::Global, Scope::Site, Scope::Global]);
}

/// Each line keepalived -t reports and skips (checked with keepalived
/// 2.2.7), and those the kernel would refuse: a warning at its line, the
/// other routes kept.
#[test]
fn bad_routes_are_skipped_with_file_and_line() {
    let lines = [
        (
            "192.168.300.0/24 via 10.0.0.254 dev eth0",
            "unknown route keyword",
        ),
        (
            "192.168.110.0/24 via 10.0.0.254 table nosuchtable",
            "routing table \"nosuchtable\" not found",
        ),
        (
            "192.168.111.0/24 dev eth0 frobnicate 3",
            "unknown route keyword \"frobnicate\"",
        ),
        ("2001:db8::/64 via 192.168.0.1", "cannot mix IPv4 and IPv6"),
        (
            "192.168.112.0/24 via 10.0.0.254 metric abc",
            "invalid metric",
        ),
        (
            "192.168.115.0/24 via 10.0.0.254 mtu 1400",
            "\"mtu\" is not supported yet",
        ),
        (
            "to 192.168.116.0/24 dev eth0 scope bogus",
            "scope \"bogus\" not found",
        ),
        ("blackhole 192.168.117.0/24 dev eth0", "takes no via or dev"),
        ("192.168.118.1/24 dev eth0", "host bits set"),
        ("src 192.168.100.1", "must have a destination"),
        ("192.168.113.0/24 via 10.0.0.252 or 10.0.0.253", "multipath"),
        ("192.168.119.0/24", "needs via or dev"),
        ("192.168.120.0/24 via", "via needs a value"),
        (
            "local 192.168.121.1/32 dev eth0",
            "\"local\" is not supported yet",
        ),
    ];
    let body: Vec<&str> = lines.iter().map(|(l, _)| *l).collect();
    let text = inst_with_routes(&format!("{}\n10.5.0.0/16 dev eth0", body.join("\n")));
    let l = ka(&text);
    let r = &l.config.instances[0].virtual_routes;
    assert_eq!(r.len(), 1, "only the good route is kept: {r:#?}");
    assert_eq!(r[0].dst, ip("10.5.0.0"));
    for (n, (line, want)) in lines.iter().enumerate() {
        let at = 6 + n;
        assert!(
            l.warnings.iter().any(|w| w.span.line == at
                && w.kind == WarningKind::Repaired
                && w.message.contains(want)
                && w.message.contains("skipped")),
            "line {at} ({line}): no warning with {want:?} in {:#?}",
            l.warnings
        );
        let shown = l
            .warnings
            .iter()
            .find(|w| w.span.line == at)
            .map(|w| w.to_string());
        assert!(
            shown
                .as_deref()
                .is_some_and(|s| s.starts_with(&format!("test.conf:{at}: warning: "))),
            "{shown:?}"
        );
    }
}

#[test]
fn protocol_is_reset_to_keepalived_unless_no_track() {
    let l = ka(&inst_with_routes(
        "10.1.0.0/16 dev eth0 protocol bird\n10.2.0.0/16 dev eth0 protocol bird no_track\n10.3.0.0/16 dev eth0 proto static",
    ));
    let p: Vec<u8> = l.config.instances[0]
        .virtual_routes
        .iter()
        .map(|r| r.protocol)
        .collect();
    // `proto` is lbd leniency (keepalived skips the line), tracked like `protocol`.
    assert_eq!(p, [RTPROT_KEEPALIVED, 12, RTPROT_KEEPALIVED]);
    assert!(l
        .warnings
        .iter()
        .any(|w| w.span.line == 6 && w.message.contains("protocol reset")));
    assert!(l.warnings.iter().any(|w| w.span.line == 8
        && w.kind == WarningKind::Note
        && w.message.contains("\"proto\"")));
}

#[test]
fn static_routes_are_read_at_top_level() {
    let l = ka(&format!(
        "static_routes {{\n 192.168.210.0/24 via 192.168.200.254 dev eth0\n bogus\n}}\n{}",
        inst_with_routes("10.5.0.0/16 dev eth0")
    ));
    assert_eq!(l.config.static_routes.len(), 1);
    assert_eq!(l.config.static_routes[0].span.line, 2);
    assert!(l
        .warnings
        .iter()
        .any(|w| w.span.line == 3 && w.message.contains("static_routes: invalid route")));
}

#[test]
fn static_routes_inside_global_defs_are_ignored_like_keepalived() {
    let l = ka(&format!(
        "global_defs {{\n static_routes {{\n 10.1.0.0/16 dev eth0\n }}\n}}\n{}",
        inst_with_routes("10.5.0.0/16 dev eth0")
    ));
    assert!(l.config.static_routes.is_empty());
    assert!(l
        .warnings
        .iter()
        .any(|w| w.span.line == 2 && w.message.contains("top-level block")));
}

#[test]
fn keepalived_samples_with_routes_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/configs/keepalived-samples");
    for (file, virt, stat) in [
        // The `or` route is skipped (multipath is not supported yet).
        ("keepalived.conf.vrrp.routes", 6, 5),
        ("keepalived.conf.track_interface", 3, 4),
        ("keepalived.conf.vrrp.static_ipaddress", 4, 0),
    ] {
        let l = load(&dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(l.config.instances[0].virtual_routes.len(), virt, "{file}");
        assert_eq!(l.config.static_routes.len(), stat, "{file}");
        assert!(
            !l.warnings
                .iter()
                .any(|w| w.message.contains("virtual_routes is not supported")
                    || w.message.contains("static_routes is not supported")),
            "{file}: {:#?}",
            l.warnings
        );
    }
}

const TOML_HEAD: &str =
    "[[vrrp.instance]]\nname = \"A\"\ninterface = \"eth0\"\nvrid = 5\nvips = [\"10.0.0.1\"]\n";

#[test]
fn toml_routes_as_strings_and_tables() {
    let text = format!(
        "[static]\nroutes = [\"10.9.0.0/16 via 10.0.0.254\"]\n\n{TOML_HEAD}virtual_routes = [\n  \"192.168.110.0/24 via 192.168.200.254 dev eth1\",\n  {{ to = \"0.0.0.0/0\", via = \"192.168.0.1\", table = 100 }},\n  {{ type = \"blackhole\", to = \"192.168.113.1/32\" }},\n  {{ to = \"2001:db8::/64\", via = \"fe80::1\", dev = \"eth1\", metric = 10, protocol = \"static\", table = \"main\" }},\n]\n"
    );
    let l = parse_toml_str(&text, Path::new("r.toml")).unwrap_or_else(|e| panic!("{e}"));
    let r = &l.config.instances[0].virtual_routes;
    assert_eq!(r.len(), 4);
    assert_eq!((r[1].table, r[1].via), (100, Some(ip("192.168.0.1"))));
    assert_eq!(r[2].kind, RouteKind::Blackhole);
    assert_eq!(
        (r[3].metric, r[3].protocol, r[3].table),
        (Some(10), 4, RT_TABLE_MAIN)
    );
    assert_eq!(r[3].span.line, 13);
    assert_eq!(l.config.static_routes.len(), 1);
}

#[test]
fn toml_bad_route_is_an_error_with_its_line() {
    let text = format!("{TOML_HEAD}virtual_routes = [\n  \"10.1.0.0/16 dev eth0\",\n  \"10.2.0.1/16 dev eth0\",\n]\n");
    let e = parse_toml_str(&text, Path::new("r.toml")).expect_err("host bits");
    let d = e.first().expect("one error");
    assert_eq!(d.span.line, 8, "{e}");
    assert!(d.message.contains("host bits"), "{e}");
    let e = parse_toml_str(
        &format!(
            "{TOML_HEAD}virtual_routes = [{{ to = \"10.0.0.0/8\", gateway = \"1.2.3.4\" }}]\n"
        ),
        Path::new("r.toml"),
    )
    .expect_err("unknown key");
    assert!(e.to_string().contains("gateway"), "{e}");
}

#[test]
fn routes_round_trip_through_toml() {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/configs/good/virtual-routes.conf");
    let l = load(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(l.config.instances[0].virtual_routes.len(), 12);
    assert_eq!(l.config.static_routes.len(), 4);
    let t = to_toml(&l.config).expect("the model serializes");
    assert!(t.contains("[static]\nroutes = [\n"), "{t}");
    assert!(t.contains("\"blackhole 192.168.113.1/32\""), "{t}");
    assert!(t.contains("\"0.0.0.0/0 via 192.168.0.1 table 100\""), "{t}");
    let back = parse_toml_str(&t, Path::new("x.toml")).unwrap_or_else(|e| panic!("{e}\n{t}"));
    let strip = |v: &[Route]| v.iter().cloned().map(no_span).collect::<Vec<_>>();
    assert_eq!(
        strip(&back.config.instances[0].virtual_routes),
        strip(&l.config.instances[0].virtual_routes)
    );
    assert_eq!(
        strip(&back.config.static_routes),
        strip(&l.config.static_routes)
    );
    assert_eq!(to_toml(&back.config).expect("the model serializes"), t);
}
