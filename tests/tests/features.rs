//! lbd features beyond plain failover: sync groups, tracked interfaces, VIPs
//! on several interfaces, no_accept, the address owner, the privilege check,
//! gratuitous ARP timing and tshark's v3-checksum-as-v2 preference. lbd on
//! every VRRP node. Needs a working lbd binary.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use lbd_tests::daemon::{global_defs, lbd_path};
use lbd_tests::scenario::{describe, holds_for, wait_sole_holder, Pair, ELECTION};
use lbd_tests::tshark::{decode_filtered, decode_verbose, Capture, CHECKSUM_BAD, CHECKSUM_GOOD};
use lbd_tests::{lab_for, wait_until, Daemon, Instance, Kind, Lab, Node, VIP4};

const LBD: [Kind; 1] = [Kind::Lbd];
/// The VIP on LAN 1 (eth1).
const VIP4_LAN1: &str = "10.0.1.100";

/// Wait until `want` alone (of `nodes`) holds `vip` on `dev`, or panic.
fn expect_sole(lab: &Lab, nodes: &[&Node], want: &Node, dev: &str, vip: &str, what: &str) {
    assert!(
        wait_sole_holder(lab, nodes, want, dev, vip, ELECTION),
        "{what}: {} should be the sole holder; {}",
        want.name,
        describe(lab, nodes, dev, vip)
    );
}

/// The `ip -o addr` line in `node` that carries `ip`, on any device.
fn addr_line(lab: &Lab, node: &Node, ip: &str) -> Option<String> {
    let want: IpAddr = ip.parse().unwrap();
    let out = lab.exec(node, &["ip", "-o", "addr", "show"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.windows(2).any(|p| {
                (p[0] == "inet" || p[0] == "inet6")
                    && p[1].split('/').next().and_then(|a| a.parse().ok()) == Some(want)
            })
        })
        .map(str::to_owned)
}

/// Whether the node's log has a state change of instance `name` to `to`.
fn logged_to(d: &Daemon, name: &str, to: &str) -> bool {
    d.log()
        .lines()
        .any(|l| l.contains(&format!("VRRP_Instance({name}) ")) && l.contains(&format!("-> {to} ")))
}

/// Two instances in a sync group, VI_1 on eth0 and VI_2 on eth1: losing
/// eth1 on the master faults the whole group, so VI_1 moves too.
#[test]
fn sync_group_two_interfaces() {
    let t = "sync_group_two_interfaces";
    let lab = lab_for(t, &LBD);
    let a = lab.node("a");
    let b = lab.node("b");
    lab.join(&a, 1);
    lab.join(&b, 1);
    let conf = |id: &str, prio: u8| {
        let vi1 = Instance::v2(prio);
        let vi2 = Instance {
            name: "VI_2".into(),
            interface: "eth1".into(),
            vrid: 52,
            vips: vec![format!("{VIP4_LAN1}/24")],
            ..Instance::v2(prio)
        };
        format!(
            "{}{}{}vrrp_sync_group G {{\n    group {{\n        VI_1\n        VI_2\n    }}\n}}\n",
            global_defs(id),
            vi1.block(),
            vi2.block()
        )
    };
    let da = Daemon::start(&lab, Kind::Lbd, &a, &conf("a", 150));
    Daemon::start(&lab, Kind::Lbd, &b, &conf("b", 100));
    let nodes = [&a, &b];
    expect_sole(&lab, &nodes, &a, "eth0", VIP4, "start, VI_1");
    expect_sole(&lab, &nodes, &a, "eth1", VIP4_LAN1, "start, VI_2");

    lab.set_link(&a, "eth1", false);
    expect_sole(&lab, &nodes, &b, "eth1", VIP4_LAN1, "a's eth1 down, VI_2");
    // eth0 is fine: only the sync group moves VI_1.
    expect_sole(&lab, &nodes, &b, "eth0", VIP4, "a's eth1 down, VI_1");
    assert!(
        logged_to(&da, "VI_1", "Fault"),
        "VI_1 on a did not enter Fault with its group:\n{}",
        da.log()
    );

    lab.set_link(&a, "eth1", true);
    expect_sole(&lab, &nodes, &a, "eth0", VIP4, "a's eth1 back, VI_1");
    expect_sole(&lab, &nodes, &a, "eth1", VIP4_LAN1, "a's eth1 back, VI_2");
}

/// a (150) tracks eth1; b runs 100. Returns the lab, both nodes and a's daemon
/// once a is master.
fn tracking_pair(t: &str, track: &str) -> (Lab, Node, Node, Daemon) {
    let lab = lab_for(t, &LBD);
    let a = lab.node("a");
    let b = lab.node("b");
    lab.join(&a, 1);
    let ia = Instance {
        extra: vec![format!("track_interface {{\n        {track}\n    }}")],
        ..Instance::v2(150)
    };
    let da = Daemon::start(&lab, Kind::Lbd, &a, &ia.render("a"));
    Daemon::start(&lab, Kind::Lbd, &b, &Instance::v2(100).render("b"));
    expect_sole(&lab, &[&a, &b], &a, "eth0", VIP4, "start");
    (lab, a, b, da)
}

/// `eth1 weight -60`: eth1 down drops a to 90 < 100, so b takes over; a
/// stays Backup (not Fault) and preempts back when eth1 returns.
#[test]
fn track_interface_weight() {
    let (lab, a, b, da) = tracking_pair("track_interface_weight", "eth1 weight -60");
    let nodes = [&a, &b];
    lab.set_link(&a, "eth1", false);
    expect_sole(&lab, &nodes, &b, "eth0", VIP4, "a's eth1 down");
    let log = da.log();
    assert!(
        logged_to(&da, "VI_1", "Backup") && log.contains("priority 90"),
        "a should be Backup at priority 90:\n{log}"
    );
    assert!(
        !logged_to(&da, "VI_1", "Fault"),
        "a weighted track must not fault:\n{log}"
    );
    lab.set_link(&a, "eth1", true);
    expect_sole(&lab, &nodes, &a, "eth0", VIP4, "a's eth1 back");
}

/// `track_interface { eth1 }` (weight 0): eth1 down puts a in Fault, which
/// removes the VIP; eth1 back, a preempts.
#[test]
fn track_interface_fault() {
    let (lab, a, b, da) = tracking_pair("track_interface_fault", "eth1");
    let nodes = [&a, &b];
    lab.set_link(&a, "eth1", false);
    expect_sole(&lab, &nodes, &b, "eth0", VIP4, "a's eth1 down");
    assert!(
        logged_to(&da, "VI_1", "Fault"),
        "a did not enter Fault:\n{}",
        da.log()
    );
    lab.set_link(&a, "eth1", true);
    expect_sole(&lab, &nodes, &a, "eth0", VIP4, "a's eth1 back");
}

/// VIPs on eth0, on eth1 with a label, and an excluded IPv6 one: all on the
/// master with the right device, prefix and label, none on the backup; a
/// graceful stop removes them and the backup adds them.
#[test]
fn vips_on_several_interfaces() {
    let t = "vips_on_several_interfaces";
    let lab = lab_for(t, &LBD);
    let a = lab.node("a");
    let b = lab.node("b");
    lab.join(&a, 1);
    lab.join(&b, 1);
    let inst = |prio: u8| Instance {
        vips: vec![
            format!("{VIP4}/24"),
            format!("{VIP4_LAN1}/24 dev eth1 label eth1:vip"),
        ],
        extra: vec!["virtual_ipaddress_excluded {\n        fd00:0::100/64\n    }".into()],
        ..Instance::v2(prio)
    };
    let da = Daemon::start(&lab, Kind::Lbd, &a, &inst(150).render("a"));
    Daemon::start(&lab, Kind::Lbd, &b, &inst(100).render("b"));
    // (address, device, prefix, label)
    let want = [
        (VIP4, "eth0", "10.0.0.100/24", None),
        (VIP4_LAN1, "eth1", "10.0.1.100/24", Some("eth1:vip")),
        ("fd00::100", "eth0", "fd00::100/64", None),
    ];
    let all_on = |n: &Node| want.iter().all(|w| addr_line(&lab, n, w.0).is_some());
    let none_on = |n: &Node| want.iter().all(|w| addr_line(&lab, n, w.0).is_none());
    assert!(
        wait_until(ELECTION, || all_on(&a) && none_on(&b)),
        "VIPs not all on a alone: a {:?}, b {:?}",
        want.map(|w| addr_line(&lab, &a, w.0)),
        want.map(|w| addr_line(&lab, &b, w.0))
    );
    for (ip, dev, cidr, label) in want {
        let l = addr_line(&lab, &a, ip).unwrap();
        // `ip -o` ends the address part with a `\`, glued to the label.
        let w: Vec<&str> = l
            .split_whitespace()
            .map(|x| x.trim_end_matches('\\'))
            .collect();
        assert_eq!(w.get(1), Some(&dev), "{ip}: wrong device: {l}");
        assert!(w.contains(&cidr), "{ip}: want {cidr}: {l}");
        if let Some(label) = label {
            assert!(w.contains(&label), "{ip}: label {label} missing: {l}");
        }
    }
    da.term();
    assert!(
        wait_until(ELECTION, || none_on(&a) && all_on(&b)),
        "after SIGTERM of a: a {:?}, b {:?}",
        want.map(|w| addr_line(&lab, &a, w.0)),
        want.map(|w| addr_line(&lab, &b, w.0))
    );
}

/// Whether lbd's no_accept table exists in the node.
fn has_no_accept_table(lab: &Lab, node: &Node) -> bool {
    let out = lab.exec_ok(node, &["nft", "list", "tables"]);
    String::from_utf8_lossy(&out.stdout).contains("inet lbd_no_accept")
}

/// a (150, `no_accept`) is master: the VIP resolves to a but pings to it go
/// unanswered while a's own address answers. SIGTERM removes the table; b
/// (`accept`) takes over and its VIP answers.
#[test]
fn no_accept_drops_traffic_to_vip() {
    let t = "no_accept_drops_traffic_to_vip";
    let lab = lab_for(t, &LBD);
    let ia = Instance {
        extra: vec!["no_accept".into()],
        ..Instance::v2(150)
    };
    let ib = Instance {
        extra: vec!["accept".into()],
        ..Instance::v2(100)
    };
    let p = Pair::start(&lab, Kind::Lbd, Kind::Lbd, ia, ib, false);
    p.expect_sole(&lab, &p.a, VIP4, ELECTION);
    assert!(has_no_accept_table(&lab, &p.a), "no nftables table on a");
    assert!(
        !has_no_accept_table(&lab, &p.b),
        "b has `accept` but got a table"
    );
    assert!(
        wait_until(Duration::from_secs(10), || lab.ping(&p.client, &p.a.ip4(0))),
        "a's own address does not answer"
    );
    // ARP still resolves (nftables' inet input hook does not see it): the
    // silence is the drop rule, not a missing neighbour.
    assert!(
        holds_for(Duration::from_secs(3), || !lab.ping(&p.client, VIP4)),
        "no_accept master answered a ping to the VIP"
    );
    let mac_a = lab.mac_of(&p.a, "eth0");
    assert_eq!(
        lab.neigh_mac(&p.client, VIP4).as_deref(),
        Some(mac_a.as_str()),
        "client did not resolve the VIP to a"
    );
    p.da.term();
    assert!(
        wait_until(Duration::from_secs(10), || !p.da.proc.alive()),
        "a did not exit on SIGTERM"
    );
    lab.reap(&p.da.proc);
    assert!(
        !has_no_accept_table(&lab, &p.a),
        "table inet lbd_no_accept left behind after SIGTERM"
    );
    p.expect_sole(&lab, &p.b, VIP4, ELECTION);
    p.expect_client_sees(&lab, &p.b, VIP4, Duration::from_secs(10));
}

/// Priority 255 (address owner) takes over from a running master at once,
/// where any other priority waits Master_Down_Interval (> 3 s at
/// advert_int 1) hearing the lower-priority master.
#[test]
fn address_owner_priority_255() {
    let t = "address_owner_priority_255";
    let lab = lab_for(t, &LBD);
    let a = lab.node("a");
    let b = lab.node("b");
    let nodes = [&a, &b];
    Daemon::start(&lab, Kind::Lbd, &b, &Instance::v2(100).render("b"));
    expect_sole(&lab, &nodes, &b, "eth0", VIP4, "b alone");
    // Timed from the spawn: lbd's own start-up counts too.
    let start = Instant::now();
    let da = Daemon::start(&lab, Kind::Lbd, &a, &Instance::v2(255).render("a"));
    assert!(
        wait_until(ELECTION, || lab.has_addr(&a, "eth0", VIP4)),
        "owner never took the VIP:\n{}",
        da.log()
    );
    let took = start.elapsed();
    // One advert interval plus a second of margin for a loaded 2-core box.
    assert!(
        took < Duration::from_secs(2),
        "owner took {took:?} to become master (timer-driven, not at once)"
    );
    expect_sole(&lab, &nodes, &a, "eth0", VIP4, "owner up");
    assert!(
        logged_to(&da, "VI_1", "Master") && !logged_to(&da, "VI_1", "Backup"),
        "owner should go straight to Master:\n{}",
        da.log()
    );
}

/// Without CAP_NET_ADMIN lbd exits non-zero with one line saying so.
#[test]
fn no_privileges_one_line() {
    let t = "no_privileges_one_line";
    let lab = lab_for(t, &LBD);
    let a = lab.node("a");
    // World-readable config and a socket path the user could create.
    let conf = lab.path("a-nopriv.conf");
    std::fs::write(&conf, Instance::v2(150).render("a")).unwrap();
    let sock = std::env::temp_dir().join(format!("lbd-nopriv-{}.sock", std::process::id()));
    let bin = lbd_path();
    let out = lab.exec(
        &a,
        &[
            "env",
            "-u",
            "RUST_LOG",
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            bin.to_str().unwrap(),
            "-f",
            conf.to_str().unwrap(),
            "--api-socket",
            sock.to_str().unwrap(),
        ],
    );
    let _ = std::fs::remove_file(&sock);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "lbd ran without privileges");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines.len() == 1 && lines[0].contains("CAP_NET_ADMIN"),
        "want one line naming CAP_NET_ADMIN, got ({}):\n{stderr}",
        out.status
    );
}

/// `garp_master_repeat 3`, `garp_master_refresh 2` (and no delayed second
/// burst): 3 gratuitous ARPs at takeover, then one every 2 s.
#[test]
fn garp_refresh_and_repeat() {
    let t = "garp_refresh_and_repeat";
    let lab = lab_for(t, &LBD);
    let a = lab.node("a");
    let b = lab.node("b");
    let client = lab.host("client");
    let filter = format!("arp host {VIP4}");
    let cap = Capture::start(&lab, &client, "eth0", &filter, 5, Duration::from_secs(40));
    let garp = [
        "garp_master_delay 0",
        "garp_master_repeat 3",
        "garp_master_refresh 2",
    ];
    let ia = Instance {
        extra: garp.map(String::from).to_vec(),
        ..Instance::v2(150)
    };
    Daemon::start(&lab, Kind::Lbd, &a, &ia.render("a"));
    Daemon::start(&lab, Kind::Lbd, &b, &Instance::v2(100).render("b"));
    cap.wait(&lab, Duration::from_secs(60));
    let mac_a = lab.mac_of(&a, "eth0");
    let rows = decode_filtered(
        &cap.file,
        "arp.isgratuitous == 1",
        &[
            "frame.time_relative",
            "arp.src.hw_mac",
            "arp.src.proto_ipv4",
        ],
        &[],
    );
    let times: Vec<f64> = rows
        .iter()
        .filter(|r| r[1].to_lowercase() == mac_a && r[2] == VIP4)
        .map(|r| r[0].parse().unwrap())
        .collect();
    assert!(times.len() >= 5, "want 3 + 2 GARPs from a: {rows:?}");
    let t0 = times[0];
    assert!(
        times[2] - t0 < 0.5,
        "the first 3 GARPs are not one burst: {times:?}"
    );
    // Refreshes about 2 s apart (tolerant of a busy box).
    for (k, &at) in times[3..5].iter().enumerate() {
        let want = 2.0 * (k + 1) as f64;
        assert!(
            (at - t0 - want).abs() < 0.7,
            "refresh {} at +{:.2}s, want about +{want}s: {times:?}",
            k + 1,
            at - t0
        );
    }
}

/// `v3_checksum_as_v2` on both nodes: tshark finds the checksum good with
/// `vrrp.v3_checksum_as_in_v2` and bad without, and b accepts a's adverts.
#[test]
fn tshark_v3_checksum_as_v2() {
    let t = "tshark_v3_checksum_as_v2";
    let lab = lab_for(t, &LBD);
    let a = lab.node("a");
    let b = lab.node("b");
    let watcher = lab.host("watch");
    let cap = Capture::start(
        &lab,
        &watcher,
        "eth0",
        "ip proto 112",
        6,
        Duration::from_secs(40),
    );
    let inst = |prio: u8, state: &'static str| Instance {
        advert_int: 0.5,
        state,
        extra: vec!["v3_checksum_as_v2".into()],
        ..Instance::v3(prio)
    };
    Daemon::start(&lab, Kind::Lbd, &a, &inst(150, "MASTER").render("a"));
    let db = Daemon::start(&lab, Kind::Lbd, &b, &inst(100, "BACKUP").render("b"));
    cap.wait(&lab, Duration::from_secs(60));
    let fields = ["vrrp.version", "ip.src", "vrrp.checksum.status"];
    let pref = ["vrrp.v3_checksum_as_in_v2:TRUE"];
    let with = cap.fields(&fields, &pref);
    let without = cap.fields(&fields, &[]);
    assert!(with.len() >= 6, "too few adverts: {with:?}");
    assert!(
        with.iter()
            .all(|r| r[0] == "3" && r[1] == a.ip4(0) && r[2] == CHECKSUM_GOOD),
        "with the pref every advert should be a's v3 with a good checksum: {with:?}\n{}",
        decode_verbose(&cap.file)
    );
    assert!(
        without.iter().all(|r| r[2] == CHECKSUM_BAD),
        "without the pref the checksum should be bad: {without:?}"
    );
    // b validated a's adverts the same way: no checksum drops, no takeover.
    assert!(
        !lab.has_addr(&b, "eth0", VIP4) && !db.log().contains("reason=checksum"),
        "b rejected a's adverts:\n{}",
        db.log()
    );
}
