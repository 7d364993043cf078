//! Failover scenarios, each run as lbd/lbd, lbd/keepalived and keepalived/lbd
//! (first = the node with the higher priority). Needs a working lbd binary.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use lbd_tests::scenario::{holds_for, Pair, ELECTION};
use lbd_tests::{lab_for, per_pair, wait_until, Instance, Kind, VIP4, VIP6};

per_pair!(
    election_and_sigkill_v2,
    election_and_sigkill_v3,
    ipv6_vip_v3,
    unicast_peers,
    link_down_and_preempt_back,
    nopreempt_stays,
    preempt_delay_respected,
    sigterm_hands_over_within_skew,
);

/// Priority 150 wins, the client reaches it; SIGKILL moves the VIP and the
/// client's neighbour entry (gratuitous ARP / unsolicited NA) to the backup.
fn kill_scenario(
    t: &str,
    ka: Kind,
    kb: Kind,
    ia: Instance,
    ib: Instance,
    vip: &str,
    unicast: bool,
) {
    let lab = lab_for(t, &[ka, kb]);
    let p = Pair::start(&lab, ka, kb, ia, ib, unicast);
    p.expect_sole(&lab, &p.a, vip, ELECTION);
    assert!(
        holds_for(Duration::from_secs(2), || !lab.has_addr(&p.b, "eth0", vip)),
        "backup also claimed the VIP (split brain)"
    );
    p.expect_client_sees(&lab, &p.a, vip, Duration::from_secs(10));
    p.da.kill(&lab);
    // The killed daemon cannot remove its VIP; only the backup side is checked.
    assert!(
        wait_until(ELECTION, || lab.has_addr(&p.b, "eth0", vip)),
        "backup did not take over"
    );
    p.expect_client_sees(&lab, &p.b, vip, Duration::from_secs(10));
}

fn election_and_sigkill_v2(t: &str, ka: Kind, kb: Kind) {
    kill_scenario(t, ka, kb, Instance::v2(150), Instance::v2(100), VIP4, false);
}

fn election_and_sigkill_v3(t: &str, ka: Kind, kb: Kind) {
    kill_scenario(t, ka, kb, Instance::v3(150), Instance::v3(100), VIP4, false);
}

fn ipv6_vip_v3(t: &str, ka: Kind, kb: Kind) {
    kill_scenario(
        t,
        ka,
        kb,
        Instance::v3_ipv6(150),
        Instance::v3_ipv6(100),
        VIP6,
        false,
    );
}

fn unicast_peers(t: &str, ka: Kind, kb: Kind) {
    kill_scenario(t, ka, kb, Instance::v2(150), Instance::v2(100), VIP4, true);
}

/// Carrier loss on the master hands the VIP over; when the link returns, the
/// higher priority preempts (default `preempt`).
fn link_down_and_preempt_back(t: &str, ka: Kind, kb: Kind) {
    let lab = lab_for(t, &[ka, kb]);
    let p = Pair::start(&lab, ka, kb, Instance::v2(150), Instance::v2(100), false);
    p.expect_sole(&lab, &p.a, VIP4, ELECTION);
    lab.set_link(&p.a, "eth0", false);
    assert!(
        wait_until(ELECTION, || lab.has_addr(&p.b, "eth0", VIP4)),
        "backup did not take over on link loss"
    );
    // A node whose interface is down (FAULT) must release its VIP.
    assert!(
        wait_until(Duration::from_secs(10), || !lab
            .has_addr(&p.a, "eth0", VIP4)),
        "a kept the VIP on a dead link"
    );
    p.expect_client_sees(&lab, &p.b, VIP4, Duration::from_secs(10));
    lab.set_link(&p.a, "eth0", true);
    p.expect_sole(&lab, &p.a, VIP4, ELECTION);
    p.expect_client_sees(&lab, &p.a, VIP4, Duration::from_secs(10));
}

/// With `nopreempt` on both, the recovered higher priority stays backup.
fn nopreempt_stays(t: &str, ka: Kind, kb: Kind) {
    let lab = lab_for(t, &[ka, kb]);
    let ia = Instance {
        nopreempt: true,
        ..Instance::v2(150)
    };
    let ib = Instance {
        nopreempt: true,
        ..Instance::v2(100)
    };
    let p = Pair::start(&lab, ka, kb, ia, ib, false);
    p.expect_sole(&lab, &p.a, VIP4, ELECTION);
    lab.set_link(&p.a, "eth0", false);
    assert!(
        wait_until(ELECTION, || lab.has_addr(&p.b, "eth0", VIP4)),
        "backup did not take over"
    );
    lab.set_link(&p.a, "eth0", true);
    // Long enough for a to hear b and, were it preempting, take over.
    let nodes = p.nodes();
    assert!(
        holds_for(Duration::from_secs(8), || lbd_tests::scenario::holders(
            &lab, &nodes, "eth0", VIP4
        ) == ["b"]),
        "nopreempt: VIP moved back: {}",
        lbd_tests::scenario::describe(&lab, &nodes, "eth0", VIP4)
    );
}

/// `preempt_delay 5`: after its link returns, a waits before preempting.
fn preempt_delay_respected(t: &str, ka: Kind, kb: Kind) {
    let lab = lab_for(t, &[ka, kb]);
    let ia = Instance {
        preempt_delay: Some(5),
        ..Instance::v2(150)
    };
    let p = Pair::start(&lab, ka, kb, ia, Instance::v2(100), false);
    p.expect_sole(&lab, &p.a, VIP4, Duration::from_secs(30));
    lab.set_link(&p.a, "eth0", false);
    assert!(
        wait_until(ELECTION, || lab.has_addr(&p.b, "eth0", VIP4)),
        "backup did not take over"
    );
    lab.set_link(&p.a, "eth0", true);
    let up = Instant::now();
    p.expect_sole(&lab, &p.a, VIP4, Duration::from_secs(30));
    // Ordering, not a tight bound: preemption comes after the delay.
    assert!(
        up.elapsed() >= Duration::from_secs(4),
        "preempted after {:?}, before preempt_delay 5 s",
        up.elapsed()
    );
}

/// SIGTERM: the master sends priority 0 and the backup takes over after
/// Skew_Time (~0.6 s), not Master_Down_Interval (~3.6 s). A timer-driven
/// takeover can never come sooner than Master_Down - advert_int = 2.6 s, so
/// "< 2 × advert_int" separates the two even on a slow box.
fn sigterm_hands_over_within_skew(t: &str, ka: Kind, kb: Kind) {
    let lab = lab_for(t, &[ka, kb]);
    let p = Pair::start(&lab, ka, kb, Instance::v2(150), Instance::v2(100), false);
    p.expect_sole(&lab, &p.a, VIP4, ELECTION);
    p.da.term();
    let start = Instant::now();
    assert!(
        wait_until(ELECTION, || lab.has_addr(&p.b, "eth0", VIP4)),
        "backup did not take over"
    );
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "takeover after SIGTERM took {took:?}: priority 0 advert not sent/honoured"
    );
    // A graceful stop also releases the VIP.
    assert!(
        wait_until(Duration::from_secs(10), || !lab
            .has_addr(&p.a, "eth0", VIP4)),
        "a kept the VIP after SIGTERM"
    );
}
