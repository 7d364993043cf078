//! Reload of the VRRP side without a flap (issue 16), lbd master against a
//! real keepalived backup: an unchanged configuration reloaded five times
//! changes nothing (no transition, the VIP never leaves, the advert rhythm
//! holds on the wire); a lowered priority hands over by election; a VIP or an
//! instance added or removed changes only that; a new advert interval
//! changes the captured rhythm without a transition; a broken file is
//! refused and the running configuration carries on.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use lbd_tests::daemon::global_defs;
use lbd_tests::scenario::{expect_holder_of, ELECTION};
use lbd_tests::tshark::{Capture, VRRP_FILTER};
use lbd_tests::{lab_for, wait_until, Daemon, Instance, Kind, Lab, Node, VIP4};

const VIP_B: &str = "10.0.0.101";
const VIP_C: &str = "10.0.0.102";

/// Write `conf`, SIGHUP, and wait for the `n`-th reload outcome (applied or
/// refused).
fn reload(d: &Daemon, conf: &str, n: usize) {
    fs::write(&d.conf, conf).unwrap();
    d.proc.signal(libc::SIGHUP);
    let outcomes = |log: &str| {
        log.matches("reloaded ").count() + log.matches("keeping the running configuration").count()
    };
    assert!(
        wait_until(Duration::from_secs(15), || outcomes(&d.log()) >= n),
        "lbd did not finish reload {n}:\n{}",
        d.log()
    );
}

/// lbd's instance transitions so far (its log line `VRRP_Instance(X) A -> B`).
fn transitions(d: &Daemon) -> usize {
    d.log()
        .lines()
        .filter(|l| l.contains("VRRP_Instance(") && l.contains(" -> "))
        .count()
}

/// The transition count once lbd has logged becoming master: the VIP is
/// added just before that line is written, so reading the count as soon as
/// the VIP shows could miss it.
fn settled(d: &Daemon) -> usize {
    assert!(
        wait_until(Duration::from_secs(10), || d.log().contains("-> Master")),
        "lbd never logged becoming master:\n{}",
        d.log()
    );
    transitions(d)
}

/// Runs `body` while another thread checks every few ms that `node` holds
/// `vip` (and for 500 ms after, to see a late removal); returns how many
/// checks found it missing.
fn sampled_absences(lab: &Lab, node: &Node, vip: &str, body: impl FnOnce()) -> usize {
    let done = AtomicBool::new(false);
    let missing = AtomicUsize::new(0);
    let samples = AtomicUsize::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                if !lab.has_addr(node, "eth0", vip) {
                    missing.fetch_add(1, Ordering::Relaxed);
                }
                samples.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        body();
        let end = std::time::Instant::now() + Duration::from_millis(500);
        wait_until(Duration::from_secs(1), || std::time::Instant::now() >= end);
        done.store(true, Ordering::Relaxed);
    });
    assert!(
        samples.load(Ordering::Relaxed) > 10,
        "the sampler did not run"
    );
    missing.load(Ordering::Relaxed)
}

/// Times (s) of the adverts `src` sent, from a capture.
fn advert_times(cap: &Capture, src: &str) -> Vec<f64> {
    cap.fields(&["frame.time_epoch", "ip.src"], &[])
        .iter()
        .filter(|r| r.get(1).map(String::as_str) == Some(src))
        .filter_map(|r| r[0].parse().ok())
        .collect()
}

/// The adverts on the lab LAN, seen from a host of their own.
fn capture(lab: &Lab, watch: &Node) -> Capture {
    Capture::start(
        lab,
        watch,
        "eth0",
        VRRP_FILTER,
        1000,
        Duration::from_secs(60),
    )
}

fn gaps(times: &[f64]) -> Vec<f64> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn unchanged_config_reloaded_five_times_changes_nothing() {
    let lab = lab_for("reload-vrrp-unchanged", &[Kind::Lbd, Kind::Keepalived]);
    let (a, b) = (lab.node("a"), lab.node("b"));
    let watch = lab.host("watch");
    let nodes = [&a, &b];
    let conf = Instance::v2(150).render("a");
    let da = Daemon::start(&lab, Kind::Lbd, &a, &conf);
    let db = Daemon::start(&lab, Kind::Keepalived, &b, &Instance::v2(100).render("b"));
    expect_holder_of(&lab, &nodes, &a, VIP4, "lbd at 150");
    let before = settled(&da);
    let cap = capture(&lab, &watch);
    let missing = sampled_absences(&lab, &a, VIP4, || {
        // Spread over a few advert intervals so reloads land at every phase.
        for n in 1..=5 {
            reload(&da, &conf, n);
            let end = std::time::Instant::now() + Duration::from_millis(700);
            wait_until(Duration::from_secs(1), || std::time::Instant::now() >= end);
        }
    });
    // Two more adverts after the last reload, then stop capturing.
    let seen = wait_until(Duration::from_secs(10), || {
        advert_times(&cap, &a.ip4(0)).len() >= 7
    });
    cap.proc.signal(libc::SIGINT);
    cap.wait(&lab, Duration::from_secs(10));
    assert!(seen, "too few adverts captured");
    assert_eq!(missing, 0, "the VIP left the master during the reloads");
    assert_eq!(
        transitions(&da),
        before,
        "a reload caused a transition:\n{}",
        da.log()
    );
    assert!(
        !db.log().contains("Entering MASTER STATE"),
        "the keepalived backup took over:\n{}",
        db.log()
    );
    let g = gaps(&advert_times(&cap, &a.ip4(0)));
    assert!(
        g.iter().all(|&x| (0.99..=1.010).contains(&x)),
        "advert gaps outside the interval + 10 ms: {g:?}"
    );
}

#[test]
fn lowered_priority_hands_over_by_election() {
    let lab = lab_for("reload-vrrp-priority", &[Kind::Lbd, Kind::Keepalived]);
    let (a, b) = (lab.node("a"), lab.node("b"));
    let nodes = [&a, &b];
    let da = Daemon::start(&lab, Kind::Lbd, &a, &Instance::v2(150).render("a"));
    let _db = Daemon::start(&lab, Kind::Keepalived, &b, &Instance::v2(100).render("b"));
    expect_holder_of(&lab, &nodes, &a, VIP4, "lbd at 150");
    reload(&da, &Instance::v2(50).render("a"), 1);
    assert!(da.log().contains("changed in place"), "{}", da.log());
    assert!(!da.log().contains("restarting it"), "{}", da.log());
    expect_holder_of(&lab, &nodes, &b, VIP4, "lbd lowered to 50");
    // And back up: lbd preempts the keepalived master again.
    reload(&da, &Instance::v2(150).render("a"), 2);
    expect_holder_of(&lab, &nodes, &a, VIP4, "lbd raised to 150");
}

#[test]
fn vip_and_instance_added_and_removed_change_only_that() {
    let lab = lab_for("reload-vrrp-vips", &[Kind::Lbd]);
    let a = lab.node("a");
    let one = Instance::v2(150);
    let da = Daemon::start(&lab, Kind::Lbd, &a, &one.render("a"));
    expect_holder_of(&lab, &[&a], &a, VIP4, "lbd alone");
    let before = settled(&da);

    let two = Instance {
        vips: vec![format!("{VIP4}/24"), format!("{VIP_B}/24")],
        ..one.clone()
    };
    let missing = sampled_absences(&lab, &a, VIP4, || reload(&da, &two.render("a"), 1));
    assert_eq!(missing, 0, "adding a VIP touched the other one");
    assert!(
        lab.has_addr(&a, "eth0", VIP_B),
        "VIP added by reload missing"
    );

    let only_b = Instance {
        vips: vec![format!("{VIP_B}/24")],
        ..one.clone()
    };
    let missing = sampled_absences(&lab, &a, VIP_B, || reload(&da, &only_b.render("a"), 2));
    assert_eq!(missing, 0, "removing a VIP touched the other one");
    assert!(
        !lab.has_addr(&a, "eth0", VIP4),
        "VIP removed by reload still there"
    );
    assert_eq!(transitions(&da), before, "{}", da.log());

    // A second instance added starts and becomes master; removed, it
    // resigns and takes only its own address away.
    let second = Instance {
        name: "VI_2".into(),
        vrid: 52,
        vips: vec![format!("{VIP_C}/24")],
        ..one.clone()
    };
    let both = format!("{}{}", only_b.render("a"), second.block());
    reload(&da, &both, 3);
    expect_holder_of(&lab, &[&a], &a, VIP_C, "added instance");
    let missing = sampled_absences(&lab, &a, VIP_B, || reload(&da, &only_b.render("a"), 4));
    assert_eq!(missing, 0, "removing VI_2 touched VI_1");
    assert!(
        wait_until(ELECTION, || !lab.has_addr(&a, "eth0", VIP_C)),
        "the removed instance's VIP stayed"
    );
    assert!(
        da.log().contains("VRRP_Instance(VI_2): reload: removed"),
        "{}",
        da.log()
    );
    assert!(!da.log().contains("restarting it"), "{}", da.log());
}

#[test]
fn advert_interval_change_moves_the_rhythm_without_transition() {
    let lab = lab_for("reload-vrrp-interval", &[Kind::Lbd, Kind::Keepalived]);
    let (a, b) = (lab.node("a"), lab.node("b"));
    let watch = lab.host("watch");
    let nodes = [&a, &b];
    // v3: a backup follows the master's interval (RFC 9568 §6.4.2).
    let slow = Instance::v3(150);
    let da = Daemon::start(&lab, Kind::Lbd, &a, &slow.render("a"));
    let db = Daemon::start(&lab, Kind::Keepalived, &b, &Instance::v3(100).render("b"));
    expect_holder_of(&lab, &nodes, &a, VIP4, "lbd at 150");
    let before = settled(&da);
    let cap = capture(&lab, &watch);
    let src = a.ip4(0);
    assert!(
        wait_until(Duration::from_secs(10), || advert_times(&cap, &src).len()
            >= 3),
        "no adverts captured"
    );
    let fast = Instance {
        advert_int: 0.25,
        ..slow.clone()
    };
    let missing = sampled_absences(&lab, &a, VIP4, || {
        reload(&da, &fast.render("a"), 1);
        let n = advert_times(&cap, &src).len();
        wait_until(Duration::from_secs(10), || {
            advert_times(&cap, &src).len() >= n + 12
        });
    });
    cap.proc.signal(libc::SIGINT);
    cap.wait(&lab, Duration::from_secs(10));
    assert_eq!(missing, 0, "the VIP left the master");
    assert_eq!(transitions(&da), before, "{}", da.log());
    assert!(!db.log().contains("Entering MASTER STATE"), "{}", db.log());
    let g = gaps(&advert_times(&cap, &src));
    let slow_gaps = g.iter().filter(|&&x| (0.99..=1.01).contains(&x)).count();
    let mut tail = g[g.len().saturating_sub(10)..].to_vec();
    tail.sort_by(f64::total_cmp);
    assert!(slow_gaps >= 2, "no 1 s rhythm before: {g:?}");
    // The timer keeps its cadence, so one late advert (a busy machine) is
    // followed by an early one: judge the median, and that none is slow.
    assert!(
        (0.245..=0.255).contains(&tail[tail.len() / 2]) && tail.iter().all(|&x| x < 0.5),
        "the rhythm did not become 250 ms: {g:?}"
    );
}

#[test]
fn broken_config_is_refused_and_the_old_one_keeps_running() {
    let lab = lab_for("reload-vrrp-broken", &[Kind::Lbd]);
    let a = lab.node("a");
    let conf = Instance::v2(150).render("a");
    let da = Daemon::start(&lab, Kind::Lbd, &a, &conf);
    expect_holder_of(&lab, &[&a], &a, VIP4, "lbd alone");
    let before = settled(&da);
    let broken = format!(
        "{}vrrp_instance VI_X {{\n    priority 300\n",
        global_defs("a")
    );
    let missing = sampled_absences(&lab, &a, VIP4, || reload(&da, &broken, 1));
    assert_eq!(missing, 0);
    assert!(
        da.log().contains("keeping the running configuration"),
        "{}",
        da.log()
    );
    assert_eq!(transitions(&da), before);
    // The refused file left nothing behind: the next good one applies.
    let two = Instance {
        vips: vec![format!("{VIP4}/24"), format!("{VIP_B}/24")],
        ..Instance::v2(150)
    };
    reload(&da, &two.render("a"), 2);
    expect_holder_of(&lab, &[&a], &a, VIP_B, "the next good reload");
}
