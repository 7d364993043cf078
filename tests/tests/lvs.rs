//! LVS pair end to end, as in DESIGN.md: two lbd nodes, HTTP backends and a
//! client in namespaces; requests to the VIP are balanced by IPVS and keep
//! being served after the master is killed. Needs IPVS, so it runs inside
//! the VM tier (`tests/vm/run --cargo-test lbd-tests --features vm`).
#![cfg(feature = "vm")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use lbd_tests::daemon::{Daemon, Kind};
use lbd_tests::http;
use lbd_tests::lab::{require_vm, Lab, Node};
use lbd_tests::lvs::{dr_backend, echo_server, hold_connection, nat_backend};
use lbd_tests::wait_until;

const VIP: &str = "10.0.0.100";
/// The backends' default gateway in NAT mode: a VIP on the inner LAN.
const GW: &str = "10.0.1.254";

fn conf(prio: u8, kind: &str, sched: &str, backends: &[&Node], nat: bool) -> String {
    let mut s = String::from("global_defs {\n  router_id lvs\n}\n");
    s += &format!(
        "vrrp_instance VI_PUB {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
         priority {prio}\n  advert_int 1\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n"
    );
    if nat {
        s += &format!(
            "vrrp_instance VI_GW {{\n  state BACKUP\n  interface eth1\n  virtual_router_id 52\n  \
             priority {prio}\n  advert_int 1\n  virtual_ipaddress {{\n    {GW}/24\n  }}\n}}\n\
             vrrp_sync_group G {{\n  group {{\n    VI_PUB\n    VI_GW\n  }}\n}}\n"
        );
    }
    s += &format!(
        "virtual_server {VIP} 80 {{\n  lb_algo {sched}\n  lb_kind {kind}\n  protocol TCP\n"
    );
    for b in backends {
        let ip = if nat { b.ip4(1) } else { b.ip4(0) };
        s += &format!("  real_server {ip} 80 {{\n    weight 1\n  }}\n");
    }
    s += "}\n";
    s
}

/// Who answered `n` requests to the VIP.
fn spread(lab: &Lab, client: &Node, n: usize) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for _ in 0..n {
        let who = http::get(lab, client, VIP, 80).unwrap_or_else(|| "(none)".into());
        *m.entry(who).or_insert(0) += 1;
    }
    m
}

fn scenario(test: &str, nat: bool) {
    require_vm(test);
    let lab = Lab::new(test);
    let (a, b, client) = (lab.node("a"), lab.node("b"), lab.host("client"));
    let webs = [lab.host("web1"), lab.host("web2")];
    for n in [&a, &b] {
        lab.exec_ok(n, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    }
    if nat {
        lab.join(&a, 1);
        lab.join(&b, 1);
        // Routed by the gateway VIP, which follows the master.
        for w in &webs {
            nat_backend(&lab, w, GW);
        }
    } else {
        for w in &webs {
            dr_backend(&lab, w, VIP);
        }
    }
    let _servers: Vec<_> = webs
        .iter()
        .map(|w| http::serve(&lab, w, &w.name, "0.0.0.0", 80))
        .collect();
    let refs: Vec<&Node> = webs.iter().collect();
    // NAT as LVS-NAT write-ups spell it (`lb_kind nat`): keepalived's
    // default method for an unknown name, so it must still be NAT.
    let (kind, sched) = if nat { ("nat", "rr") } else { ("DR", "lc") };
    let da = Daemon::start(&lab, Kind::Lbd, &a, &conf(150, kind, sched, &refs, nat));
    let _db = Daemon::start(&lab, Kind::Lbd, &b, &conf(100, kind, sched, &refs, nat));

    assert!(
        wait_until(Duration::from_secs(20), || lab.has_addr(&a, "eth0", VIP)
            && !lab.has_addr(&b, "eth0", VIP)),
        "a never became the sole VIP holder"
    );
    // Both directors have the virtual server (lbd applies it on every node).
    for n in [&a, &b] {
        let out = lab.exec_ok(n, &["ipvsadm", "-Ln"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            text.contains(&format!("TCP  {VIP}:80 {sched}")),
            "{}: {text}",
            n.name
        );
        let method = if nat { "Masq" } else { "Route" };
        assert_eq!(
            text.matches(method).count(),
            webs.len(),
            "{}: every real server must be {method}: {text}",
            n.name
        );
    }
    assert!(
        wait_until(Duration::from_secs(20), || http::get(
            &lab, &client, VIP, 80
        )
        .is_some()),
        "the VIP never answered"
    );
    let m = spread(&lab, &client, 10);
    eprintln!("{test}: before failover {m:?}");
    for w in &webs {
        assert!(
            m.get(&w.name).copied().unwrap_or(0) >= 2,
            "{} got too few: {m:?}",
            w.name
        );
    }
    if nat {
        // rr over two equal backends alternates exactly.
        assert_eq!(m.get("web1"), m.get("web2"), "rr is not even: {m:?}");
    }

    da.kill(&lab);
    assert!(
        wait_until(Duration::from_secs(20), || lab.has_addr(&b, "eth0", VIP)),
        "b never took the VIP"
    );
    assert!(
        wait_until(Duration::from_secs(20), || spread(&lab, &client, 2)
            .keys()
            .all(|k| k != "(none)")),
        "requests did not succeed through b"
    );
    let m = spread(&lab, &client, 10);
    eprintln!("{test}: after failover {m:?}");
    for w in &webs {
        assert!(
            m.get(&w.name).copied().unwrap_or(0) >= 2,
            "{} got too few: {m:?}",
            w.name
        );
    }
}

#[test]
fn lvs_pair_nat_rr_failover() {
    scenario("lvs_nat", true);
}

#[test]
fn lvs_pair_dr_lc_failover() {
    scenario("lvs_dr", false);
}

fn ipvs(lab: &Lab, n: &Node) -> String {
    String::from_utf8_lossy(&lab.exec_ok(n, &["ipvsadm", "-Ln"]).stdout).to_string()
}

/// Adopt without flush, drift repair, foreign entries untouched.
#[test]
fn lvs_reconcile_adopt_drift_foreign() {
    let test = "lvs_reconcile";
    require_vm(test);
    let lab = Lab::new(test);
    let (a, client) = (lab.node("a"), lab.host("client"));
    let webs = [lab.host("web1"), lab.host("web2")];
    lab.exec_ok(&a, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    lab.join(&a, 1);
    for w in &webs {
        nat_backend(&lab, w, &a.ip4(1));
    }
    let _echo: Vec<_> = webs.iter().map(|w| echo_server(&lab, w, 9000)).collect();
    // Someone else's service, present before lbd starts.
    lab.exec_ok(&a, &["ipvsadm", "-A", "-t", "10.0.0.200:8080", "-s", "wlc"]);
    lab.exec_ok(
        &a,
        &[
            "ipvsadm",
            "-a",
            "-t",
            "10.0.0.200:8080",
            "-r",
            "10.0.1.99:8080",
            "-m",
        ],
    );

    let mut conf = String::from("global_defs {\n  router_id r\n}\n");
    conf += &format!(
        "vrrp_instance VI_1 {{\n  interface eth0\n  virtual_router_id 61\n  priority 255\n  \
         advert_int 1\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n\
         virtual_server {VIP} 9000 {{\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n  \
         real_server {} 9000 {{\n  }}\n  real_server {} 9000 {{\n  }}\n}}\n",
        webs[0].ip4(1),
        webs[1].ip4(1)
    );
    let d1 = Daemon::start(&lab, Kind::Lbd, &a, &conf);
    let service = format!("TCP  {VIP}:9000 rr");
    assert!(
        wait_until(Duration::from_secs(20), || ipvs(&lab, &a)
            .contains(&service)
            && lab.has_addr(&a, "eth0", VIP)),
        "service or VIP missing: {}",
        ipvs(&lab, &a)
    );

    // A long-lived connection through the VIP.
    let (hold, go) = hold_connection(&lab, &client, VIP, 9000);

    // Drift: an operator removes a real server by hand; lbd puts it back.
    let w1 = format!("{}:9000", webs[0].ip4(1));
    lab.exec_ok(
        &a,
        &["ipvsadm", "-d", "-t", &format!("{VIP}:9000"), "-r", &w1],
    );
    assert!(
        wait_until(Duration::from_secs(30), || ipvs(&lab, &a).contains(&w1)),
        "drift not repaired: {}",
        ipvs(&lab, &a)
    );
    assert!(
        wait_until(Duration::from_secs(5), || d1
            .log()
            .contains("drift repaired")),
        "the repair was not logged"
    );
    assert!(
        ipvs(&lab, &a).contains("10.0.0.200:8080"),
        "foreign service touched"
    );
    assert!(
        ipvs(&lab, &a).contains("10.0.1.99:8080"),
        "foreign real server touched"
    );

    // Restart lbd: the services are adopted, the connection lives on.
    d1.term();
    assert!(
        wait_until(Duration::from_secs(20), || !d1.proc.alive()),
        "lbd did not stop"
    );
    let d2 = Daemon::start(&lab, Kind::Lbd, &a, &conf);
    assert!(
        wait_until(Duration::from_secs(30), || d2.log().contains("IPVS:")),
        "restarted lbd did not reconcile: {}",
        d2.log()
    );
    std::fs::write(&go, b"").unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || hold
            .log_text()
            .contains("got two")),
        "the long-lived connection did not survive the restart: {}",
        hold.log_text()
    );
    assert!(
        ipvs(&lab, &a).contains("10.0.0.200:8080"),
        "foreign service touched by restart"
    );
}

/// SIGHUP with one service changed and one removed among twenty: exactly two
/// kernel operations, the rest untouched.
#[test]
fn lvs_reload_changes_only_what_changed() {
    let test = "lvs_reload";
    require_vm(test);
    let lab = Lab::new(test);
    // The real server must be routable from the director, or the kernel
    // refuses a NAT destination (EINVAL): 10.0.0.11 is on a's LAN.
    let a = lab.node("a");
    let conf = |changed: bool| {
        let mut s = String::from("global_defs {\n  router_id r\n}\n");
        for port in 8000..8020u16 {
            if changed && port == 8019 {
                continue;
            }
            let sched = if changed && port == 8005 { "wrr" } else { "rr" };
            s += &format!(
                "virtual_server {VIP} {port} {{\n  lb_algo {sched}\n  lb_kind NAT\n  protocol TCP\n  \
                 real_server 10.0.0.11 {port} {{\n  }}\n}}\n"
            );
        }
        s
    };
    let d = Daemon::start(&lab, Kind::Lbd, &a, &conf(false));
    assert!(
        wait_until(Duration::from_secs(30), || ipvs(&lab, &a)
            .matches("TCP  ")
            .count()
            == 20),
        "20 services expected: {}",
        ipvs(&lab, &a)
    );
    assert!(
        wait_until(Duration::from_secs(30), || d.log().contains("lbd running")),
        "lbd did not finish starting: {}",
        d.log()
    );
    std::fs::write(&d.conf, conf(true)).unwrap();
    d.proc.signal(libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(30), || d
            .log()
            .contains("IPVS Reload: applied 2 change(s), 0 failed")),
        "reload did not apply exactly two changes: {}",
        d.log()
    );
    let out = ipvs(&lab, &a);
    assert!(out.contains(&format!("TCP  {VIP}:8005 wrr")), "{out}");
    assert!(!out.contains(&format!("{VIP}:8019")), "{out}");
    assert_eq!(out.matches(" rr").count(), 18, "{out}");
}

/// An established connection through the VIP across a failover: with
/// `lvs_sync_daemon` the backup director learnt it from the master and
/// forwards it to the same real server; without, the backup has no entry
/// and its stack resets the connection. DR keeps the test to the sync
/// itself: replies go from the backend to the client directly, so no
/// gateway VIP has to move with the service.
fn conn_sync(test: &str, sync: bool) -> (bool, String) {
    let lab = Lab::new(test);
    let (a, b, client) = (lab.node("a"), lab.node("b"), lab.host("client"));
    let webs = [lab.host("web1"), lab.host("web2")];
    let mut _echo = Vec::new();
    for w in &webs {
        dr_backend(&lab, w, VIP);
        _echo.push(echo_server(&lab, w, 9000));
    }
    let conf = |prio: u8| {
        let mut s = String::from("global_defs {\n  router_id r\n");
        if sync {
            s += "  lvs_sync_daemon eth0 VI_1\n";
        }
        s += "}\n";
        s += &format!(
            "vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 71\n  \
             priority {prio}\n  advert_int 1\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n\
             virtual_server {VIP} 9000 {{\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n  \
             real_server {} 9000 {{\n  }}\n  real_server {} 9000 {{\n  }}\n}}\n",
            webs[0].ip4(0),
            webs[1].ip4(0)
        );
        s
    };
    let da = Daemon::start(&lab, Kind::Lbd, &a, &conf(150));
    let db = Daemon::start(&lab, Kind::Lbd, &b, &conf(100));
    assert!(
        wait_until(Duration::from_secs(30), || lab.has_addr(&a, "eth0", VIP)
            && ipvs(&lab, &b).contains(&format!("TCP  {VIP}:9000 rr"))),
        "a never became master with the service on both: {}",
        da.log()
    );
    if sync {
        assert!(
            wait_until(Duration::from_secs(30), || db
                .log()
                .contains("IPVS sync daemon: Backup")),
            "b did not start a backup sync daemon: {}",
            db.log()
        );
    }
    let (hold, go) = hold_connection(&lab, &client, VIP, 9000);
    let conns = |n: &Node| {
        let out = lab.exec(n, &["ipvsadm", "-Lnc"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(&format!("{VIP}:9000")) && l.contains("ESTABLISHED"))
            .count()
    };
    assert_eq!(conns(&a), 1, "the master does not track the connection");
    if sync {
        assert!(
            wait_until(Duration::from_secs(20), || conns(&b) == 1),
            "the connection never reached the backup director"
        );
    } else {
        assert_eq!(conns(&b), 0, "backup knows the connection without sync");
    }
    da.kill(&lab);
    assert!(
        wait_until(Duration::from_secs(20), || lab.has_addr(&b, "eth0", VIP)),
        "b never took the VIP"
    );
    std::fs::write(&go, b"").unwrap();
    let survived = wait_until(Duration::from_secs(20), || {
        hold.log_text().contains("got two") || !hold.alive()
    }) && hold.log_text().contains("got two");
    (survived, hold.log_text())
}

#[test]
fn lvs_conn_sync_keeps_connection_through_failover() {
    let test = "lvs_conn_sync";
    require_vm(test);
    let (survived, log) = conn_sync(test, true);
    assert!(survived, "connection lost despite lvs_sync_daemon: {log}");
    // Control: the same failover without sync breaks the connection, so
    // the survival above is the sync daemon's doing.
    let (survived, log) = conn_sync("lvs_conn_nosync", false);
    assert!(!survived, "connection survived without sync: {log}");
}
