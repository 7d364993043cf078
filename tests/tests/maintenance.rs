//! Maintenance with lbctl (issue 16): a demoted lbd master resigns with a
//! priority-0 advert, so the keepalived backup takes over after its
//! Skew_Time rather than the Master_Down_Interval a silent master would
//! cost; the demotion survives a reload and /status says so; promoted, lbd
//! takes the VIP back by preemption.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use lbd_tests::daemon::lbctl;
use lbd_tests::scenario::{describe, expect_holder, holds_for, ELECTION};
use lbd_tests::watch::AddrWatch;
use lbd_tests::{lab_for, wait_until, Daemon, Instance, Kind, VIP4};
use serde_json::Value;

/// lbctl, which must succeed.
fn lbctl_ok(sock: &Path, args: &[&str]) -> Output {
    let o = lbctl(sock, args);
    assert!(
        o.status.success(),
        "lbctl {args:?}: exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn demoted(sock: &Path) -> bool {
    let o = lbctl_ok(sock, &["status", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["instances"][0]["demoted"] == true
}

#[test]
fn demote_hands_over_within_skew_time_and_promote_takes_back() {
    let lab = lab_for("maintenance", &[Kind::Lbd, Kind::Keepalived]);
    let (a, b) = (lab.node("a"), lab.node("b"));
    let nodes = [&a, &b];
    let conf = Instance::v2(150).render("a");
    let da = Daemon::start(&lab, Kind::Lbd, &a, &conf);
    let _db = Daemon::start(&lab, Kind::Keepalived, &b, &Instance::v2(100).render("b"));
    let sock = da.api_socket.clone().unwrap();
    expect_holder(&lab, &nodes, &a, "lbd at 150");

    let watch = AddrWatch::start(&b.ns, VIP4, ELECTION);
    let t0 = Instant::now();
    lbctl_ok(&sock, &["demote", "VI_1"]);
    let took = watch.wait().map(|t| t.duration_since(t0));
    // keepalived at 100: Skew_Time (256-100)/256 s = 0.61 s; silence would
    // cost the Master_Down_Interval, 3 s + Skew_Time.
    println!("demote -> VIP on the keepalived backup: {took:?}");
    let took = took.expect("the backup never took the VIP");
    assert!(
        took < Duration::from_secs(3),
        "takeover after {took:?}: no priority-0 advert?\n{}",
        da.log()
    );
    expect_holder(&lab, &nodes, &b, "lbd demoted");
    assert!(demoted(&sock));

    // Demoted, lbd (150, preempt) never takes over; not after a reload either.
    da.proc.signal(libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || da.log().contains("reloaded ")),
        "{}",
        da.log()
    );
    assert!(
        holds_for(Duration::from_secs(5), || lab.has_addr(&b, "eth0", VIP4)
            && !lab.has_addr(&a, "eth0", VIP4)),
        "a demoted lbd took the VIP back; {}",
        describe(&lab, &nodes, "eth0", VIP4)
    );
    assert!(demoted(&sock), "the demotion did not survive the reload");

    lbctl_ok(&sock, &["promote", "VI_1"]);
    expect_holder(&lab, &nodes, &a, "lbd promoted (preempt)");
    assert!(!demoted(&sock));
}
