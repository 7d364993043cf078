//! Health and VRRP state across SIGHUP, lbd master against a keepalived
//! backup: a restarted check starts from the state the node holds (a
//! script failing at the reload that recovers is seen to recover), and a
//! reload applies a script's new weight in place, at once and whole.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::time::Duration;

use lbd_tests::daemon::global_defs;
use lbd_tests::scenario::{describe, wait_sole_holder, ELECTION};
use lbd_tests::{lab_for, wait_until, Daemon, Instance, Kind, Lab, Node, VIP4};

/// lbd at 150 tracking `chk` (passes while `flag` exists), weight `weight`.
fn lbd_conf(flag: &Path, interval: u32, weight: i32) -> String {
    let inst = Instance {
        extra: vec!["track_script {\n        chk\n    }".into()],
        ..Instance::v2(150)
    };
    format!(
        "{}vrrp_script chk {{\n    script \"/usr/bin/test -e {}\"\n    interval {interval}\n    \
         weight {weight}\n    rise 1\n    fall 1\n}}\n\n{}",
        global_defs("a"),
        flag.display(),
        inst.block()
    )
}

fn expect_holder(lab: &Lab, nodes: &[&Node], want: &Node, what: &str) {
    assert!(
        wait_sole_holder(lab, nodes, want, "eth0", VIP4, ELECTION),
        "{what}: {} should hold the VIP; {}",
        want.name,
        describe(lab, nodes, "eth0", VIP4)
    );
}

/// SIGHUP and wait until lbd has logged the reload (the n-th one).
fn reload(d: &Daemon, n: usize) {
    d.proc.signal(libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || d
            .log()
            .matches("reloaded ")
            .count()
            >= n),
        "lbd did not reload:\n{}",
        d.log()
    );
}

/// The reproduction: the script fails (150 - 60 = 90 < 100, the
/// keepalived backup takes the VIP), SIGHUP with the config unchanged, the
/// script fixed right after. The restarted script must start failed, so
/// its first pass is a recovery: lbd goes back to 150 and takes the VIP
/// back. With a restarted job starting "ok", the pass is no change and lbd
/// stays at 90 for good. Interval 60 s: the old job cannot see the fix.
#[test]
fn script_failing_at_reload_is_seen_to_recover() {
    let lab = lab_for("reload-script-recovers", &[Kind::Lbd, Kind::Keepalived]);
    let (a, b) = (lab.node("a"), lab.node("b"));
    let nodes = [&a, &b];
    let flag = lab.path("chk.flag");
    let da = Daemon::start(&lab, Kind::Lbd, &a, &lbd_conf(&flag, 60, -60));
    let _db = Daemon::start(&lab, Kind::Keepalived, &b, &Instance::v2(100).render("b"));
    assert!(
        wait_until(ELECTION, || da.log().contains("VRRP_Script(chk) failed")),
        "the script did not fail:\n{}",
        da.log()
    );
    expect_holder(&lab, &nodes, &b, "lbd at 90 with its script failing");
    // Fixed as the reload starts: the restarted job's first pass (at once)
    // sees it; the old job's next pass is a minute away.
    fs::write(&flag, "").unwrap();
    reload(&da, 1);
    assert!(
        wait_sole_holder(&lab, &nodes, &a, "eth0", VIP4, ELECTION),
        "script fixed after the reload: a should hold the VIP; {}\n{}",
        describe(&lab, &nodes, "eth0", VIP4),
        da.log()
    );
    assert!(
        da.log().contains("VRRP_Script(chk) succeeded"),
        "{}",
        da.log()
    );
}

/// A reload that changes the script's weight (-60 to -10) is applied in
/// place: with the script still failing lbd goes from 90 to 140, above the
/// keepalived backup's 100, and takes the VIP back by election (preempt),
/// without restarting the instance.
#[test]
fn script_weight_change_applies_in_place() {
    let lab = lab_for("reload-weight-applies", &[Kind::Lbd, Kind::Keepalived]);
    let (a, b) = (lab.node("a"), lab.node("b"));
    let nodes = [&a, &b];
    let flag = lab.path("chk.flag");
    let da = Daemon::start(&lab, Kind::Lbd, &a, &lbd_conf(&flag, 1, -60));
    let _db = Daemon::start(&lab, Kind::Keepalived, &b, &Instance::v2(100).render("b"));
    assert!(
        wait_until(ELECTION, || da.log().contains("VRRP_Script(chk) failed")),
        "the script did not fail:\n{}",
        da.log()
    );
    expect_holder(&lab, &nodes, &b, "lbd at 90 with its script failing");
    fs::write(&da.conf, lbd_conf(&flag, 1, -10)).unwrap();
    reload(&da, 1);
    assert!(
        !da.log().contains("restarting it"),
        "a weight change restarted the instance:\n{}",
        da.log()
    );
    expect_holder(&lab, &nodes, &a, "lbd at 140 after the reload");
    // And the new weight is the one in force from then on: the script
    // recovers (150) and fails again (140): lbd keeps the VIP.
    fs::write(&flag, "").unwrap();
    assert!(
        wait_until(ELECTION, || da
            .log()
            .matches("VRRP_Script(chk) succeeded")
            .count()
            >= 1),
        "{}",
        da.log()
    );
    fs::remove_file(&flag).unwrap();
    assert!(
        wait_until(ELECTION, || da
            .log()
            .matches("VRRP_Script(chk) failed")
            .count()
            >= 2),
        "{}",
        da.log()
    );
    expect_holder(&lab, &nodes, &a, "lbd at 140 with the script failing again");
}

/// An edit that only moves lines (a comment on top) is no change at all.
#[test]
fn reload_shifting_lines_is_no_vrrp_change() {
    let lab = lab_for("reload-lines", &[Kind::Lbd]);
    let a = lab.node("a");
    let flag = lab.path("chk.flag");
    fs::write(&flag, "").unwrap();
    let conf = lbd_conf(&flag, 1, -60);
    let da = Daemon::start(&lab, Kind::Lbd, &a, &conf);
    expect_holder(&lab, &[&a], &a, "lbd alone");
    fs::write(&da.conf, format!("# moved down\n\n\n{conf}")).unwrap();
    reload(&da, 1);
    assert!(
        !da.log().contains("changed in place") && !da.log().contains("restarting it"),
        "a line shift counted as a VRRP change:\n{}",
        da.log()
    );
}
