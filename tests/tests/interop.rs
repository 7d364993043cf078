//! lbd and keepalived in one virtual router, both ways round: each must
//! accept the other's adverts (no split brain), the election follows
//! priority, and a killed master is replaced. Needs a working lbd binary.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use lbd_tests::scenario::{holds_for, Pair, ELECTION};
use lbd_tests::{lab_for, mixed_pair, wait_until, Auth, Instance, Kind, VIP4, VIP6};

mixed_pair!(
    v2_pass,
    v2_ah,
    v3,
    v3_unicast,
    v3_unicast_old_checksum,
    v3_ipv6,
    v2_priority_inverted
);

/// Start, check the higher priority is sole master for a while (a daemon
/// rejecting the other's adverts would also claim the VIP), then kill it.
fn interop(t: &str, ka: Kind, kb: Kind, ia: Instance, ib: Instance, vip: &str, unicast: bool) {
    let lab = lab_for(t, &[ka, kb]);
    let (hi, lo) = if ia.priority > ib.priority {
        ("a", "b")
    } else {
        ("b", "a")
    };
    let p = Pair::start(&lab, ka, kb, ia, ib, unicast);
    let (master, backup, dm) = if hi == "a" {
        (&p.a, &p.b, &p.da)
    } else {
        (&p.b, &p.a, &p.db)
    };
    p.expect_sole(&lab, master, vip, ELECTION);
    assert!(
        holds_for(Duration::from_secs(4), || !lab
            .has_addr(backup, "eth0", vip)),
        "{lo} also claimed the VIP: it does not accept {hi}'s adverts"
    );
    p.expect_client_sees(&lab, master, vip, Duration::from_secs(10));
    dm.kill(&lab);
    assert!(
        wait_until(ELECTION, || lab.has_addr(backup, "eth0", vip)),
        "{lo} did not take over"
    );
    p.expect_client_sees(&lab, backup, vip, Duration::from_secs(10));
}

fn v2_pass(t: &str, ka: Kind, kb: Kind) {
    interop(t, ka, kb, Instance::v2(150), Instance::v2(100), VIP4, false);
}

fn v2_ah(t: &str, ka: Kind, kb: Kind) {
    let ah = |prio| Instance {
        auth: Auth::Ah("labsecret".into()),
        ..Instance::v2(prio)
    };
    interop(t, ka, kb, ah(150), ah(100), VIP4, false);
}

fn v3(t: &str, ka: Kind, kb: Kind) {
    interop(t, ka, kb, Instance::v3(150), Instance::v3(100), VIP4, false);
}

/// v3 over unicast: RFC 5798 pseudo-header with the unicast destination.
fn v3_unicast(t: &str, ka: Kind, kb: Kind) {
    interop(t, ka, kb, Instance::v3(150), Instance::v3(100), VIP4, true);
}

/// keepalived's `old_unicast_checksum`: v3 unicast checksummed as keepalived
/// < 1.3.6 did (multicast group in the pseudo-header instead of the peer).
fn v3_unicast_old_checksum(t: &str, ka: Kind, kb: Kind) {
    let old = |prio| Instance {
        old_unicast_checksum: true,
        ..Instance::v3(prio)
    };
    interop(t, ka, kb, old(150), old(100), VIP4, true);
}

fn v3_ipv6(t: &str, ka: Kind, kb: Kind) {
    interop(
        t,
        ka,
        kb,
        Instance::v3_ipv6(150),
        Instance::v3_ipv6(100),
        VIP6,
        false,
    );
}

/// The first daemon gets the lower priority: the other one must win.
fn v2_priority_inverted(t: &str, ka: Kind, kb: Kind) {
    interop(t, ka, kb, Instance::v2(90), Instance::v2(200), VIP4, false);
}
