//! Hostile adverts at a running master: each forged packet is invalid in one
//! way and claims priority 200, so accepting it would cost the VIP. The
//! keepalived variant runs the same packets against the reference; the lbd
//! variant also checks that every drop is logged (`drop iface=<dev> vrid=<n>
//! reason=<label>` at debug level). A control case shows a valid forged advert does win.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use lbd_tests::forge::{ipv4_packet, send_raw_v4, Advert, VRRP_GROUP};
use lbd_tests::scenario::ELECTION;
use lbd_tests::{lab_for, per_daemon, wait_until, Daemon, Instance, Kind, Lab, Node, VIP4};

per_daemon!(
    ttl_64,
    bad_checksum,
    truncated,
    wrong_version,
    wrong_vrid,
    wrong_auth,
    wrong_interval,
    valid_higher_priority_wins,
);

const PASS: &str = "labpass";

struct Target {
    lab: Lab,
    node: Node,
    attacker: Node,
    daemon: Daemon,
}

/// A master on `a` (v2, PASS, VRID 51, priority 150) and an attacker node.
fn target(t: &str, kind: Kind) -> Target {
    let lab = lab_for(t, &[kind]);
    let node = lab.node("a");
    let attacker = lab.host("x");
    let daemon = Daemon::start(&lab, kind, &node, &Instance::v2(150).render("a"));
    assert!(
        wait_until(ELECTION, || lab.has_addr(&node, "eth0", VIP4)),
        "target never became master"
    );
    Target {
        lab,
        node,
        attacker,
        daemon,
    }
}

fn vip() -> Ipv4Addr {
    VIP4.parse().unwrap()
}

/// lbd's drop lines: `... drop iface=<dev> vrid=<n> reason=<label>: ...`.
fn drops(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(" drop ") && l.contains(" vrid=") && l.contains(" reason="))
        .collect()
}

/// Send `packet` ten times a second for 3 s (pacing traffic, not waiting on
/// state); the target must hold the VIP throughout, and lbd must log drops.
fn must_survive(t: &str, kind: Kind, build: impl Fn(Ipv4Addr) -> Vec<u8>) {
    let tg = target(t, kind);
    let src: Ipv4Addr = tg.attacker.ip4(0).parse().unwrap();
    let packet = build(src);
    let before = drops(&tg.daemon.log()).len();
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        send_raw_v4(&tg.attacker.ns, "eth0", packet.clone()).unwrap();
        assert!(
            tg.lab.has_addr(&tg.node, "eth0", VIP4),
            "{t}: the forged advert took mastership away"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Past the last packet, still master.
    assert!(tg.lab.has_addr(&tg.node, "eth0", VIP4), "{t}: lost the VIP");
    if kind == Kind::Lbd {
        let ok = wait_until(Duration::from_secs(5), || {
            drops(&tg.daemon.log()).len() > before
        });
        let log = tg.daemon.log();
        assert!(
            ok,
            "{t}: no `drop ... reason=` line logged; drop lines: {:?}",
            drops(&log)
        );
        eprintln!("{t}: {}", drops(&log).last().unwrap_or(&""));
    }
}

/// A v2 PASS advert for VRID 51, priority 200, as a full IPv4 packet.
fn forged(src: Ipv4Addr, ttl: u8, edit: impl Fn(&mut Advert)) -> Vec<u8> {
    let mut a = Advert::v2_pass(51, 200, vip(), PASS);
    edit(&mut a);
    ipv4_packet(src, VRRP_GROUP, ttl, &a.bytes(src, VRRP_GROUP))
}

/// RFC 3768 §7.1: TTL must be 255 (the sender is on-link).
fn ttl_64(t: &str, kind: Kind) {
    must_survive(t, kind, |src| forged(src, 64, |_| {}));
}

fn bad_checksum(t: &str, kind: Kind) {
    must_survive(t, kind, |src| {
        let good = Advert::v2_pass(51, 200, vip(), PASS).bytes(src, VRRP_GROUP);
        let sum = u16::from_be_bytes([good[6], good[7]]);
        forged(src, 255, |a| a.checksum_override = Some(sum ^ 0x0101))
    });
}

/// Cut after the address: no auth data, and the count claims more bytes.
fn truncated(t: &str, kind: Kind) {
    must_survive(t, kind, |src| {
        let mut a = Advert::v2_pass(51, 200, vip(), PASS);
        a.addrs.push(Ipv4Addr::new(10, 0, 0, 101));
        let mut b = a.bytes(src, VRRP_GROUP);
        b.truncate(12);
        ipv4_packet(src, VRRP_GROUP, 255, &b)
    });
}

fn wrong_version(t: &str, kind: Kind) {
    must_survive(t, kind, |src| forged(src, 255, |a| a.version = 1));
}

/// Another virtual router's advert is not ours to act on.
fn wrong_vrid(t: &str, kind: Kind) {
    must_survive(t, kind, |src| forged(src, 255, |a| a.vrid = 52));
}

fn wrong_auth(t: &str, kind: Kind) {
    must_survive(t, kind, |src| {
        let bad = Advert::v2_pass(51, 200, vip(), "badpass");
        ipv4_packet(src, VRRP_GROUP, 255, &bad.bytes(src, VRRP_GROUP))
    });
}

/// RFC 3768 §7.1: a v2 advert whose interval differs from ours is discarded.
fn wrong_interval(t: &str, kind: Kind) {
    must_survive(t, kind, |src| forged(src, 255, |a| a.interval = 5));
}

/// Control: the same forged advert with nothing wrong does take over, so the
/// cases above fail for the reason they name, not a broken forge.
fn valid_higher_priority_wins(t: &str, kind: Kind) {
    let tg = target(t, kind);
    let src: Ipv4Addr = tg.attacker.ip4(0).parse().unwrap();
    let packet = forged(src, 255, |_| {});
    let lost = wait_until(Duration::from_secs(10), || {
        send_raw_v4(&tg.attacker.ns, "eth0", packet.clone()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        !tg.lab.has_addr(&tg.node, "eth0", VIP4)
    });
    assert!(
        lost,
        "a valid priority-200 advert did not make the master step down"
    );
}
