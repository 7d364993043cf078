//! lbd's metrics and event log against a keepalived peer, read through the
//! SIGUSR2 test hook and parsed by a real OpenMetrics parser: figures are
//! cross-checked with what the test did (a failover, forged adverts) and
//! with a capture of the wire.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::time::Duration;

use lbd_tests::daemon::plugin_dir;
use lbd_tests::forge::{ipv4_packet, send_raw_v4, Advert, VRRP_GROUP};
use lbd_tests::prom::{dump, Dump};
use lbd_tests::scenario::{describe, wait_sole_holder, ELECTION};
use lbd_tests::tshark::{decode_filtered, Capture};
use lbd_tests::{lab_for, wait_until, Daemon, Instance, Kind, VIP4};

const PASS: &str = "labpass";

fn transitions(d: &Dump, from: &str, to: &str) -> f64 {
    d.value(
        "lbd_vrrp_transitions_total",
        &[("instance", "VI_1"), ("from", from), ("to", to)],
    )
    .unwrap_or(0.0)
}

/// keepalived killed: no priority-0 advert, lbd waits Master_Down_Interval.
#[test]
fn failover_duration_matches_the_capture_master_killed() {
    failover_duration_matches_the_capture("metrics-failover-kill", false);
}

/// keepalived stopped: its priority-0 advert starts the failover, lbd
/// takes over after Skew_Time.
#[test]
fn failover_duration_matches_the_capture_master_resigns() {
    failover_duration_matches_the_capture("metrics-failover-term", true);
}

/// keepalived (150) is master, lbd (100) its backup; keepalived goes and
/// lbd takes over. The failover time lbd reports must match the capture:
/// keepalived's last advert (the priority-0 one when it resigns) to lbd's
/// first gratuitous ARP for the VIP, within 20 ms.
fn failover_duration_matches_the_capture(t: &str, graceful: bool) {
    let lab = lab_for(t, &[Kind::Lbd, Kind::Keepalived]);
    let (a, b) = (lab.node("a"), lab.node("b"));
    let watch = lab.host("watch");
    let nodes = [&a, &b];
    let kb = Daemon::start(&lab, Kind::Keepalived, &b, &Instance::v2(150).render("b"));
    assert!(
        wait_sole_holder(&lab, &nodes, &b, "eth0", VIP4, ELECTION),
        "keepalived should be master first; {}",
        describe(&lab, &nodes, "eth0", VIP4)
    );
    // lbd starts after: it only ever enters Backup, then takes over.
    let la = Daemon::start(&lab, Kind::Lbd, &a, &Instance::v2(100).render("a"));
    assert!(
        wait_until(ELECTION, || {
            dump(&la)
                .value("lbd_vrrp_adverts_received_total", &[("instance", "VI_1")])
                .unwrap_or(0.0)
                >= 2.0
        }),
        "lbd heard no adverts from keepalived:\n{}",
        la.log()
    );
    let before = dump(&la);
    assert_eq!(
        before.value(
            "lbd_vrrp_instance_state",
            &[("instance", "VI_1"), ("state", "BACKUP")]
        ),
        Some(1.0),
        "{}",
        before.text
    );
    assert_eq!(
        before.value("lbd_vrrp_instance_priority", &[("instance", "VI_1")]),
        Some(100.0)
    );

    let cap = Capture::start(
        &lab,
        &watch,
        "eth0",
        "ip proto 112 or arp",
        10_000,
        Duration::from_secs(120),
    );
    // A few more keepalived adverts on the capture, then the kill.
    let heard = before
        .value("lbd_vrrp_adverts_received_total", &[("instance", "VI_1")])
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        dump(&la)
            .value("lbd_vrrp_adverts_received_total", &[("instance", "VI_1")])
            .unwrap_or(0.0)
            >= heard + 2.0
    }));
    if graceful {
        kb.term();
    } else {
        // No priority-0 advert; the VIP stays on b.
        kb.kill(&lab);
    }
    assert!(
        wait_until(ELECTION, || lab.has_addr(&a, "eth0", VIP4)),
        "lbd did not take over; {}\n{}",
        describe(&lab, &nodes, "eth0", VIP4),
        la.log()
    );
    assert!(
        wait_until(Duration::from_secs(10), || la
            .log()
            .contains("failover took")),
        "lbd logged no failover time:\n{}",
        la.log()
    );
    let after = dump(&la);
    // The gratuitous ARP left before the log line; give tshark a moment
    // to see it by waiting for lbd's next advert in a fresh dump.
    let sent = after
        .value("lbd_vrrp_adverts_sent_total", &[("instance", "VI_1")])
        .unwrap_or(0.0);
    assert!(wait_until(Duration::from_secs(5), || {
        dump(&la)
            .value("lbd_vrrp_adverts_sent_total", &[("instance", "VI_1")])
            .unwrap_or(0.0)
            > sent
    }));
    cap.wait(&lab, Duration::ZERO);

    // The figures against what happened: one takeover.
    assert_eq!(transitions(&after, "INIT", "BACKUP"), 1.0, "{}", after.text);
    assert_eq!(
        transitions(&after, "BACKUP", "MASTER"),
        1.0,
        "{}",
        after.text
    );
    assert_eq!(transitions(&after, "MASTER", "BACKUP"), 0.0);
    assert_eq!(
        after.value(
            "lbd_vrrp_instance_state",
            &[("instance", "VI_1"), ("state", "MASTER")]
        ),
        Some(1.0)
    );
    assert_eq!(
        after.value(
            "lbd_vrrp_failover_duration_seconds_count",
            &[("instance", "VI_1")]
        ),
        Some(1.0),
        "{}",
        after.text
    );
    let fam = after
        .samples
        .iter()
        .find(|s| s.name == "lbd_vrrp_failover_duration_seconds_count")
        .unwrap();
    assert_eq!(
        (fam.kind.as_str(), fam.unit.as_str()),
        ("histogram", "seconds")
    );
    let metric = after
        .value(
            "lbd_vrrp_last_failover_duration_seconds",
            &[("instance", "VI_1")],
        )
        .expect("no last failover gauge");
    assert!(
        after
            .value(
                "lbd_vrrp_gratuitous_sent_total",
                &[("interface", "eth0"), ("kind", "arp")]
            )
            .unwrap_or(0.0)
            >= 1.0,
        "{}",
        after.text
    );

    // The event log: Backup, then Master for the master-down reason, in
    // sequence order.
    let inst = after.events_of("instance", Some("VI_1"));
    let states: Vec<(&str, &str)> = inst
        .iter()
        .map(|e| (e["state"].as_str().unwrap(), e["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        vec![("BACKUP", "Startup"), ("MASTER", "MasterDown")],
        "{:?}",
        after.events
    );
    assert!(inst[0]["seq"].as_u64() < inst[1]["seq"].as_u64());
    assert_eq!(inst[1]["prev"], "BACKUP");
    assert_eq!(inst[1]["priority"], 100);

    // The wire: keepalived's last advert, then lbd's first gratuitous ARP.
    let rows = decode_filtered(
        &cap.file,
        "vrrp || arp",
        &[
            "frame.time_epoch",
            "ip.src",
            "eth.src",
            "arp.src.proto_ipv4",
            "vrrp.prio",
        ],
        &[],
    );
    let t = |r: &Vec<String>| r[0].parse::<f64>().unwrap();
    let last_advert = rows
        .iter()
        .filter(|r| r[1] == b.ip4(0))
        .map(t)
        .fold(f64::NAN, f64::max);
    if graceful {
        let zero = rows
            .iter()
            .any(|r| r[1] == b.ip4(0) && t(r) == last_advert && r[4] == "0");
        assert!(
            zero,
            "keepalived's last advert is not its priority-0 one: {rows:?}"
        );
    }
    assert!(
        last_advert.is_finite(),
        "no keepalived advert captured: {rows:?}"
    );
    let lbd_mac = lab.mac_of(&a, "eth0");
    let first_garp = rows
        .iter()
        .filter(|r| r[3] == VIP4 && r[2].eq_ignore_ascii_case(&lbd_mac))
        .map(t)
        .filter(|x| *x > last_advert)
        .fold(f64::NAN, f64::min);
    assert!(
        first_garp.is_finite(),
        "no gratuitous ARP from lbd ({lbd_mac}) after {last_advert}: {rows:?}"
    );
    let wire = first_garp - last_advert;
    eprintln!("failover: metric {metric:.4} s, capture {wire:.4} s");
    assert!(
        (metric - wire).abs() <= 0.020,
        "lbd reports {metric:.4} s, the capture shows {wire:.4} s"
    );
}

fn forged(src: Ipv4Addr, ttl: u8, pass: &str) -> Vec<u8> {
    let a = Advert::v2_pass(51, 200, VIP4.parse().unwrap(), pass);
    ipv4_packet(src, VRRP_GROUP, ttl, &a.bytes(src, VRRP_GROUP))
}

/// lbd master (150) with a keepalived backup; an attacker sends adverts
/// with a wrong password and with TTL 64. Every drop is counted by its
/// reason; the event log has one event per reason within the window, then
/// one that carries the number left out.
#[test]
fn bad_adverts_are_counted_and_their_events_rate_limited() {
    let lab = lab_for("metrics-drops", &[Kind::Lbd, Kind::Keepalived]);
    let (a, b) = (lab.node("a"), lab.node("b"));
    let x = lab.host("x");
    let nodes = [&a, &b];
    let la = Daemon::start(&lab, Kind::Lbd, &a, &Instance::v2(150).render("a"));
    assert!(
        wait_sole_holder(&lab, &nodes, &a, "eth0", VIP4, ELECTION),
        "lbd should be master; {}",
        describe(&lab, &nodes, "eth0", VIP4)
    );
    let _kb = Daemon::start(&lab, Kind::Keepalived, &b, &Instance::v2(100).render("b"));
    let src: Ipv4Addr = x.ip4(0).parse().unwrap();
    let (n_pass, n_ttl): (u32, u32) = (20, 5);
    for _ in 0..n_pass {
        send_raw_v4(&x.ns, "eth0", forged(src, 255, "wrongpw")).unwrap();
    }
    for _ in 0..n_ttl {
        send_raw_v4(&x.ns, "eth0", forged(src, 64, PASS)).unwrap();
    }
    let dropped = |d: &Dump, reason: &str| {
        d.value(
            "lbd_vrrp_adverts_dropped_total",
            &[("interface", "eth0"), ("reason", reason)],
        )
        .unwrap_or(0.0)
    };
    let mut d = dump(&la);
    assert!(
        wait_until(Duration::from_secs(10), || {
            d = dump(&la);
            dropped(&d, "auth_password") >= f64::from(n_pass)
                && dropped(&d, "ttl") >= f64::from(n_ttl)
        }),
        "drops not counted:\n{}",
        d.text
    );
    assert_eq!(
        dropped(&d, "auth_password"),
        f64::from(n_pass),
        "{}",
        d.text
    );
    assert_eq!(dropped(&d, "ttl"), f64::from(n_ttl), "{}", d.text);
    assert!(
        lab.has_addr(&a, "eth0", VIP4),
        "the forged adverts took the VIP"
    );
    // SIGUSR1 logs the same counters.
    la.proc.signal(libc::SIGUSR1);
    let line =
        format!("vrrp_adverts_dropped{{interface=\"eth0\",reason=\"auth_password\"}}={n_pass}");
    assert!(
        wait_until(Duration::from_secs(10), || la
            .log()
            .lines()
            .any(|l| l.contains("counters: ") && l.contains(&line))),
        "SIGUSR1 did not log {line}:\n{}",
        la.log()
    );

    // Within the window: one event per reason, nothing left out yet. A
    // TTL is checked before the VRID, so those are the interface's.
    let drops = |d: &Dump, reason: &str| -> Vec<u64> {
        d.events_of("drop", None)
            .iter()
            .filter(|e| e["reason"] == reason)
            .map(|e| e["suppressed"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(drops(&d, "auth_password"), vec![0], "{:?}", d.events);
    assert_eq!(drops(&d, "ttl"), vec![0], "{:?}", d.events);
    let by_name = |name: &str, reason: &str| {
        d.events_of("drop", Some(name))
            .iter()
            .any(|e| e["reason"] == reason && e["interface"] == "eth0" && e["vrid"] == 51)
    };
    assert!(by_name("VI_1", "auth_password"), "{:?}", d.events);
    assert!(by_name("eth0", "ttl"), "{:?}", d.events);

    // Past the window: the rest, as one event each carrying the count.
    assert!(
        wait_until(Duration::from_secs(30), || {
            d = dump(&la);
            drops(&d, "auth_password").len() == 2 && drops(&d, "ttl").len() == 2
        }),
        "no summary of the left-out drops: {:?}",
        d.events
    );
    assert_eq!(drops(&d, "auth_password"), vec![0, u64::from(n_pass) - 1]);
    assert_eq!(drops(&d, "ttl"), vec![0, u64::from(n_ttl) - 1]);
    // Counted once each in lbd_events_total.
    assert!(
        d.value("lbd_events_total", &[("kind", "drop")])
            .unwrap_or(0.0)
            >= 4.0,
        "{}",
        d.text
    );
    // Still one election only: lbd went Backup -> Master once.
    assert_eq!(transitions(&d, "BACKUP", "MASTER"), 1.0, "{}", d.text);
}

/// Plugins stopped by the host (CPU slice, memory limit) are events and
/// counted per plugin; a well-behaved tracked script's runs are counted
/// and timed under its plugin's name.
#[test]
fn plugin_stops_and_check_runs() {
    let lab = lab_for("metrics-plugins", &[Kind::Lbd]);
    let a = lab.node("a");
    let plugins = lab.path("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let mut conf = format!(
        "[global]\nrouter_id = \"a\"\nplugin_dirs = [\"{}\", \"{}\"]\n\n",
        plugin_dir().display(),
        plugins.display()
    );
    for (name, body, interval) in [
        ("spin", "while true do end", "1s"),
        (
            "hog",
            "local t = {} local s = string.rep('x', 1 << 20) while true do t[#t + 1] = s .. #t end",
            "1s",
        ),
        ("good", "lb.sleep(0.01)", "200ms"),
    ] {
        std::fs::write(
            plugins.join(format!("{name}.lua")),
            format!(
                "lb.check(\"{name}\", {{ run = function(target, opt)\n  {body}\n  return true, \"tick\"\nend }})\n"
            ),
        )
        .unwrap();
        conf += &format!(
            "[[track_script]]\nname = \"{name}\"\nplugin = \"{name}\"\ninterval = \"{interval}\"\nweight = 1\n\n"
        );
    }
    conf += &format!(
        "[[vrrp.instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = 200\n\
         version = 3\nadvert_int = \"100ms\"\nvips = [\"{VIP4}/24\"]\n\
         track_script = [{{ name = \"spin\" }}, {{ name = \"hog\" }}, {{ name = \"good\" }}]\n"
    );
    let la = Daemon::start(&lab, Kind::Lbd, &a, &conf);
    let stopped = |d: &Dump, plugin: &str, limit: &str| -> u64 {
        d.events_of("plugin", Some(plugin))
            .iter()
            .filter(|e| e["limit"] == limit && e["state"] == "STOPPED")
            .map(|e| e["stops"].as_u64().unwrap())
            .sum()
    };
    let mut d = dump(&la);
    assert!(
        wait_until(Duration::from_secs(30), || {
            d = dump(&la);
            stopped(&d, "spin", "cpu") >= 2
                && stopped(&d, "hog", "memory") >= 1
                && d.value("lbd_check_runs_total", &[("kind", "good")]) >= Some(5.0)
        }),
        "no plugin stop events: {:?}\n{}",
        d.events,
        la.log()
    );
    let stops = |plugin: &str, limit: &str| {
        d.value(
            "lbd_plugin_stops_total",
            &[("plugin", plugin), ("limit", limit)],
        )
        .unwrap_or(0.0)
    };
    // Events follow the host's counters (polled each second): never ahead.
    assert!(
        stops("spin", "cpu") >= stopped(&d, "spin", "cpu") as f64,
        "{}",
        d.text
    );
    assert!(stops("hog", "memory") >= stopped(&d, "hog", "memory") as f64);
    assert_eq!(stops("good", "cpu"), 0.0, "{}", d.text);
    assert_eq!(
        stopped(&d, "good", "cpu") + stopped(&d, "good", "memory"),
        0
    );
    let runs = d
        .value("lbd_check_runs_total", &[("kind", "good")])
        .unwrap_or(0.0);
    assert!(runs >= 5.0, "{}", d.text);
    assert_eq!(
        d.value("lbd_check_failures_total", &[("kind", "good")]),
        None,
        "{}",
        d.text
    );
    // The run is counted, then timed: a scrape between the two sees one
    // more run than durations.
    let timed = d
        .value("lbd_check_duration_seconds_count", &[("kind", "good")])
        .unwrap_or(0.0);
    assert!(timed == runs || timed == runs - 1.0, "{timed} of {runs}");
    // Its runs take lb.sleep(0.01): the 10 ms bucket holds none.
    assert_eq!(
        d.value(
            "lbd_check_duration_seconds_bucket",
            &[("kind", "good"), ("le", "0.008")]
        ),
        Some(0.0),
        "{}",
        d.text
    );
    assert!(
        d.value("lbd_check_failures_total", &[("kind", "spin")])
            .unwrap_or(0.0)
            >= 1.0
    );
    // spin ran its CPU slice (100 ms) out twice or more.
    let spin_cpu = d
        .value("lbd_plugin_cpu_seconds_total", &[("plugin", "spin")])
        .unwrap_or(0.0);
    assert!(spin_cpu >= 0.15, "{}", d.text);
    assert!(
        d.value("lbd_plugin_calls_total", &[("plugin", "good")])
            .unwrap_or(0.0)
            >= runs
    );
}

/// Reloads are counted by outcome and logged as events; a refused one
/// carries the reason.
#[test]
fn reloads_are_counted_and_logged() {
    let lab = lab_for("metrics-reloads", &[Kind::Lbd]);
    let a = lab.node("a");
    let conf = Instance::v2(150).render("a");
    let la = Daemon::start(&lab, Kind::Lbd, &a, &conf);
    assert!(wait_until(ELECTION, || lab.has_addr(&a, "eth0", VIP4)));
    let reloads = |d: &Dump, outcome: &str| {
        d.value("lbd_reloads_total", &[("outcome", outcome)])
            .unwrap_or(0.0)
    };
    let mut d = dump(&la);
    assert_eq!(reloads(&d, "ok") + reloads(&d, "failed"), 0.0);
    la.proc.signal(libc::SIGHUP);
    assert!(wait_until(Duration::from_secs(10), || {
        d = dump(&la);
        reloads(&d, "ok") == 1.0
    }));
    std::fs::write(&la.conf, "a {\n".repeat(200)).unwrap();
    la.proc.signal(libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || {
            d = dump(&la);
            reloads(&d, "failed") == 1.0
        }),
        "{}\n{}",
        d.text,
        la.log()
    );
    assert_eq!(reloads(&d, "ok"), 1.0);
    let ev = d.events_of("reload", None);
    assert_eq!(ev.len(), 2, "{:?}", d.events);
    assert_eq!(ev[0]["outcome"], "applied");
    assert_eq!(ev[1]["outcome"], "refused");
    let err = ev[1]["error"].as_str().unwrap();
    assert!(err.contains("nested deeper than"), "{err}");
    assert!(ev[0]["seq"].as_u64() < ev[1]["seq"].as_u64());
    // No transition from either.
    assert_eq!(transitions(&d, "MASTER", "BACKUP"), 0.0, "{}", d.text);

    // An instance added by a reload gets its series; removed by the next,
    // they go, and its resignation is in the log.
    let second = Instance {
        name: "VI_2".into(),
        vrid: 52,
        vips: vec!["10.0.0.101/24".into()],
        ..Instance::v2(150)
    };
    std::fs::write(&la.conf, format!("{conf}{}", second.block())).unwrap();
    la.proc.signal(libc::SIGHUP);
    let vi2_master = |d: &Dump| {
        d.value(
            "lbd_vrrp_instance_state",
            &[("instance", "VI_2"), ("state", "MASTER")],
        )
    };
    assert!(
        wait_until(ELECTION, || {
            d = dump(&la);
            vi2_master(&d) == Some(1.0)
        }),
        "VI_2 added by a reload never showed as master:\n{}",
        d.text
    );
    std::fs::write(&la.conf, &conf).unwrap();
    la.proc.signal(libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || {
            d = dump(&la);
            reloads(&d, "ok") == 3.0
        }),
        "{}",
        la.log()
    );
    assert!(!d.text.contains("\"VI_2\""), "{}", d.text);
    let last = d.events_of("instance", Some("VI_2"));
    assert_eq!(
        last.last()
            .map(|e| (e["prev"].clone(), e["reason"].clone())),
        Some(("MASTER".into(), "Shutdown".into())),
        "{:?}",
        d.events
    );
    assert_eq!(
        d.value(
            "lbd_vrrp_instance_state",
            &[("instance", "VI_1"), ("state", "MASTER")]
        ),
        Some(1.0)
    );
}
