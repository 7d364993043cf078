//! keepalived's `virtual_routes` and `static_routes` on real kernel routes:
//! the master alone has the virtual routes, they follow a failover, a node
//! that stops or restarts as backup removes them, and SIGHUP applies a
//! changed list as a diff. lbd on every node.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use lbd_tests::daemon::global_defs;
use lbd_tests::scenario::ELECTION;
use lbd_tests::{lab_for, wait_until, Daemon, Instance, Kind, Lab, Node};

const LBD: [Kind; 1] = [Kind::Lbd];

/// The gateway 10.0.0.254 is inside LAN 0's subnet; no host needs to answer
/// for it (the kernel only wants a connected route to it).
/// Each `virtual_routes` line and the line `ip route show [table 100]`
/// prints for it.
const VIRTUAL: [(&str, &str, Option<&str>); 5] = [
    (
        "10.51.0.0/24 via 10.0.0.254",
        "10.51.0.0/24 via 10.0.0.254 dev eth0 proto keepalived",
        None,
    ),
    (
        "10.50.0.0/24 dev eth0",
        "10.50.0.0/24 dev eth0 proto keepalived scope link",
        None,
    ),
    (
        "blackhole 10.52.0.1/32",
        "blackhole 10.52.0.1 proto keepalived",
        None,
    ),
    (
        "0.0.0.0/0 via 10.0.0.254 table 100",
        "default via 10.0.0.254 dev eth0 proto keepalived",
        Some("100"),
    ),
    // Its source is the VIP: it can only go in after the VIP.
    (
        "src 10.0.0.100 10.53.0.0/24 via 10.0.0.254 dev eth0",
        "10.53.0.0/24 via 10.0.0.254 dev eth0 proto keepalived src 10.0.0.100",
        None,
    ),
];

const STATIC: (&str, &str) = (
    "10.60.0.0/24 via 10.0.0.254",
    "10.60.0.0/24 via 10.0.0.254 dev eth0 proto keepalived",
);

/// `ip route show [table T]` in the node, one route per line.
fn routes(lab: &Lab, n: &Node, table: Option<&str>) -> String {
    let mut argv = vec!["ip", "route", "show"];
    if let Some(t) = table {
        argv.extend(["table", t]);
    }
    String::from_utf8_lossy(&lab.exec(n, &argv).stdout).into_owned()
}

fn has_route(lab: &Lab, n: &Node, line: &str, table: Option<&str>) -> bool {
    routes(lab, n, table).lines().any(|l| l.trim() == line)
}

fn has_all(lab: &Lab, n: &Node) -> bool {
    VIRTUAL.iter().all(|(_, l, t)| has_route(lab, n, l, *t))
}

fn has_none(lab: &Lab, n: &Node) -> bool {
    VIRTUAL.iter().all(|(_, l, t)| !has_route(lab, n, l, *t))
}

fn show(lab: &Lab, n: &Node) -> String {
    format!(
        "{}:\n{}table 100:\n{}",
        n.name,
        routes(lab, n, None),
        routes(lab, n, Some("100"))
    )
}

/// keepalived.conf for one node: the static route, then an instance with
/// the virtual routes and one whose interface does not exist.
fn conf(id: &str, prio: u8) -> String {
    let mut lines: Vec<&str> = VIRTUAL.iter().map(|v| v.0).collect();
    lines.push("10.54.0.0/24 dev nosuch0");
    let inst = Instance {
        extra: vec![format!(
            "virtual_routes {{\n        {}\n    }}",
            lines.join("\n        ")
        )],
        ..Instance::v2(prio)
    };
    format!(
        "{}static_routes {{\n    {}\n}}\n\n{}",
        global_defs(id),
        STATIC.0,
        inst.block()
    )
}

/// a (150) and b (100): the routes are on the master only, move with it,
/// and are removed by a node that restarts as backup, stops, or is
/// preempted.
#[test]
fn virtual_routes_follow_the_master() {
    let t = "virtual_routes_follow_the_master";
    let lab = lab_for(t, &LBD);
    let a = lab.node("a");
    let b = lab.node("b");
    let da = Daemon::start(&lab, Kind::Lbd, &a, &conf("a", 150));
    let db = Daemon::start(&lab, Kind::Lbd, &b, &conf("b", 100));
    assert!(
        wait_until(ELECTION, || has_all(&lab, &a) && has_none(&lab, &b)),
        "start: the routes should be on a alone\n{}\n{}",
        show(&lab, &a),
        show(&lab, &b)
    );
    // Static routes are on both, whatever the state.
    for n in [&a, &b] {
        assert!(
            wait_until(ELECTION, || has_route(&lab, n, STATIC.1, None)),
            "static route missing\n{}",
            show(&lab, n)
        );
    }
    // A route on a missing interface is an error; the instance carries on.
    assert!(
        wait_until(ELECTION, || da
            .log()
            .contains("route 10.54.0.0/24 dev nosuch0 (")
            && da.log().contains("interface nosuch0 not found")),
        "no error for the missing interface:\n{}",
        da.log()
    );

    // The master dies without cleaning up: b takes over and adds the routes.
    da.kill(&lab);
    assert!(
        wait_until(ELECTION, || has_all(&lab, &b)),
        "after a died, b should have the routes\n{}",
        show(&lab, &b)
    );

    // a comes back as backup (priority 50): it removes what it left behind.
    let da = Daemon::start(&lab, Kind::Lbd, &a, &conf("a", 50));
    assert!(
        wait_until(ELECTION, || has_none(&lab, &a) && has_all(&lab, &b)),
        "a restarted as backup must not keep the routes\n{}\n{}",
        show(&lab, &a),
        show(&lab, &b)
    );
    assert!(
        wait_until(ELECTION, || da.log().contains("-> Backup")),
        "{}",
        da.log()
    );

    // b stops (SIGTERM): it removes its routes, static ones too; a takes over.
    db.term();
    assert!(
        wait_until(Duration::from_secs(20), || !db.proc.alive()),
        "b did not exit on SIGTERM"
    );
    lab.reap(&db.proc);
    assert!(
        has_none(&lab, &b) && !has_route(&lab, &b, STATIC.1, None),
        "b kept routes after SIGTERM\n{}",
        show(&lab, &b)
    );
    assert!(
        wait_until(ELECTION, || has_all(&lab, &a)),
        "after b stopped, a should have the routes\n{}",
        show(&lab, &a)
    );

    // b returns at 200 and preempts: a goes Master -> Backup and removes them.
    let _db = Daemon::start(&lab, Kind::Lbd, &b, &conf("b", 200));
    assert!(
        wait_until(ELECTION, || has_all(&lab, &b) && has_none(&lab, &a)),
        "after b preempted, the routes should be on b alone\n{}\n{}",
        show(&lab, &a),
        show(&lab, &b)
    );
    assert!(
        has_route(&lab, &a, STATIC.1, None),
        "a backup keeps its static route\n{}",
        show(&lab, &a)
    );
}

/// SIGHUP on a master with one route changed (new gateway), one removed
/// and one added: the kernel follows; the untouched route stays.
#[test]
fn virtual_routes_reload_applies_a_diff() {
    let t = "virtual_routes_reload";
    let lab = lab_for(t, &LBD);
    let a = lab.node("a");
    let text = |lines: &[&str]| {
        let inst = Instance {
            extra: vec![format!(
                "virtual_routes {{\n        {}\n    }}",
                lines.join("\n        ")
            )],
            ..Instance::v2(150)
        };
        inst.render("a")
    };
    let before = [
        "10.70.0.0/24 via 10.0.0.254",
        "10.71.0.0/24 via 10.0.0.254",
        "10.72.0.0/24 dev eth0",
    ];
    let d = Daemon::start(&lab, Kind::Lbd, &a, &text(&before));
    let keep = "10.70.0.0/24 via 10.0.0.254 dev eth0 proto keepalived";
    assert!(
        wait_until(ELECTION, || has_route(&lab, &a, keep, None)
            && has_route(
                &lab,
                &a,
                "10.72.0.0/24 dev eth0 proto keepalived scope link",
                None
            )),
        "{}",
        show(&lab, &a)
    );
    let after = [
        "10.70.0.0/24 via 10.0.0.254",
        "10.71.0.0/24 via 10.0.0.253",
        "blackhole 10.73.0.0/24",
    ];
    std::fs::write(&d.conf, text(&after)).unwrap();
    d.proc.signal(libc::SIGHUP);
    let want = [
        keep,
        "10.71.0.0/24 via 10.0.0.253 dev eth0 proto keepalived",
        "blackhole 10.73.0.0/24 proto keepalived",
    ];
    assert!(
        wait_until(ELECTION, || want
            .iter()
            .all(|l| has_route(&lab, &a, l, None))
            && !routes(&lab, &a, None).contains("10.72.0.0")
            && !routes(&lab, &a, None).contains("10.71.0.0/24 via 10.0.0.254 ")),
        "after SIGHUP\n{}\n{}",
        show(&lab, &a),
        d.log()
    );
    assert!(
        d.log().contains("reload: 2 route(s) added, 2 removed"),
        "{}",
        d.log()
    );
    assert!(
        !d.log().contains("changed in place") && !d.log().contains("restarting it"),
        "a routes-only reload is not a VRRP change:\n{}",
        d.log()
    );
}
