//! Harness validation with keepalived alone: if these fail, the lab is broken,
//! not lbd.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use lbd_tests::scenario::{describe, holds_for, wait_sole_holder};
use lbd_tests::tshark::{Capture, CHECKSUM_GOOD, VRRP_FILTER};
use lbd_tests::{wait_until, Daemon, Instance, Kind, Lab, VIP4};

#[test]
fn keepalived_pair_baseline() {
    let lab = Lab::new("keepalived_pair_baseline");
    let a = lab.node("a");
    let b = lab.node("b");
    let client = lab.host("client");
    let nodes = [&a, &b];
    let da = Daemon::start(&lab, Kind::Keepalived, &a, &Instance::v2(150).render("a"));
    let _db = Daemon::start(&lab, Kind::Keepalived, &b, &Instance::v2(100).render("b"));

    // Master_Down_Interval is ~3.6 s at advert_int 1: 20 s is generous on a busy box.
    assert!(
        wait_sole_holder(&lab, &nodes, &a, "eth0", VIP4, Duration::from_secs(20)),
        "a (prio 150) never became sole master: {}",
        describe(&lab, &nodes, "eth0", VIP4)
    );
    assert!(
        holds_for(Duration::from_secs(2), || !lab.has_addr(&b, "eth0", VIP4)),
        "backup took the VIP while the master was alive"
    );
    assert!(lab.ping(&client, VIP4), "client cannot ping the VIP");
    assert_eq!(lab.neigh_mac(&client, VIP4), Some(lab.mac_of(&a, "eth0")));

    da.kill(&lab);
    assert!(
        wait_until(Duration::from_secs(20), || lab.has_addr(&b, "eth0", VIP4)),
        "backup did not take over: {}",
        describe(&lab, &nodes, "eth0", VIP4)
    );
    let mac_b = lab.mac_of(&b, "eth0");
    // The new master's gratuitous ARP repoints the client's existing entry.
    assert!(
        wait_until(Duration::from_secs(10), || lab
            .neigh_mac(&client, VIP4)
            .as_deref()
            == Some(&mac_b)),
        "client neighbour entry still {:?}, want {mac_b}",
        lab.neigh_mac(&client, VIP4)
    );
    assert!(
        lab.ping(&client, VIP4),
        "client cannot ping the VIP after failover"
    );
}

/// keepalived's adverts (v2, v3 over IPv4, v3 over IPv6) decode as VRRP with
/// a good checksum: proves the tshark helper and its field names.
#[test]
fn tshark_decodes_keepalived() {
    let lab = Lab::new("tshark_decodes_keepalived");
    let a = lab.node("a");
    let b = lab.node("b");
    let c = lab.node("c");
    let watcher = lab.host("watch");
    let cap = Capture::start(
        &lab,
        &watcher,
        "eth0",
        VRRP_FILTER,
        30,
        Duration::from_secs(40),
    );
    Daemon::start(&lab, Kind::Keepalived, &a, &Instance::v2(150).render("a"));
    let v3 = Instance {
        vrid: 52,
        vips: vec!["10.0.0.101/24".into()],
        ..Instance::v3(150)
    };
    Daemon::start(&lab, Kind::Keepalived, &b, &v3.render("b"));
    let v6 = Instance {
        vrid: 53,
        ..Instance::v3_ipv6(150)
    };
    Daemon::start(&lab, Kind::Keepalived, &c, &v6.render("c"));
    cap.wait(&lab, Duration::from_secs(60));

    let rows = cap.fields(
        &[
            "vrrp.version",
            "vrrp.virt_rtr_id",
            "vrrp.checksum.status",
            "ipv6.src",
        ],
        &[],
    );
    let seen = |ver: &str, vrid: &str, v6: bool| {
        rows.iter()
            .any(|r| r[0] == ver && r[1] == vrid && (r[3].is_empty() != v6))
    };
    let dump = || lbd_tests::tshark::decode_verbose(&cap.file);
    assert!(seen("2", "51", false), "no v2 advert decoded: {rows:?}");
    assert!(
        seen("3", "52", false),
        "no v3 IPv4 advert decoded: {rows:?}"
    );
    assert!(seen("3", "53", true), "no v3 IPv6 advert decoded: {rows:?}");
    assert!(
        rows.iter().all(|r| r[2] == CHECKSUM_GOOD),
        "checksum not good: {rows:?}\n{}",
        dump()
    );
}
