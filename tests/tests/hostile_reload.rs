//! Hostile configuration files at a running master: the file at its config
//! path is replaced with one that must be refused (a million nested braces,
//! one over the size limit, a FIFO) and lbd is sent SIGHUP. It must log the
//! refusal and carry on unchanged: alive, holding the VIP and advertising,
//! which a keepalived backup on the same LAN confirms by staying BACKUP
//! for longer than its Master_Down_Interval. Stopped with SIGTERM afterwards,
//! it still sends its priority-0 advert (seen on the wire from the backup).
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// A hostile file: its name, how to write it at the config path, and the
/// refusal lbd must log.
type Case = (&'static str, fn(&Path), &'static str);

use lbd_tests::scenario::{describe, holds_for, Pair, ELECTION};
use lbd_tests::tshark::{Capture, VRRP_FILTER};
use lbd_tests::{lab_for, wait_until, Instance, Kind, VIP4};

/// lbd's line for a refused reload (node.rs `reload`).
const REFUSED: &str = "keeping the running configuration";

/// Master_Down_Interval at advert_int 1 is ~3.6 s: a master that stopped
/// advertising would have lost the VIP to the backup within this window.
const STILL_MASTER: Duration = Duration::from_secs(5);

fn refusals(log: &str) -> usize {
    log.matches(REFUSED).count()
}

fn deep(conf: &Path) {
    fs::write(conf, "a {\n".repeat(1_000_000)).unwrap();
}

/// 33 MiB of comments: over the 32 MiB limit, and every byte real.
fn huge(conf: &Path) {
    let line = format!("#{}\n", "x".repeat(1023));
    fs::write(conf, line.repeat(33 << 10)).unwrap();
}

/// A FIFO nobody writes to: opening it for reading would block forever.
fn fifo(conf: &Path) {
    let _ = fs::remove_file(conf);
    let c = CString::new(conf.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

#[test]
fn hostile_reloads_leave_the_master_running() {
    let t = "hostile-reload";
    let lab = lab_for(t, &[Kind::Lbd, Kind::Keepalived]);
    let p = Pair::start(
        &lab,
        Kind::Lbd,
        Kind::Keepalived,
        Instance::v2(150),
        Instance::v2(100),
        false,
    );
    p.expect_sole(&lab, &p.a, VIP4, ELECTION);
    let conf = p.da.conf.clone();
    let cases: [Case; 3] = [
        ("deep", deep, "blocks nested deeper than 128 levels"),
        (
            "huge",
            huge,
            "larger than the configuration size limit of 32 MiB",
        ),
        ("fifo", fifo, "is a FIFO: only regular files"),
    ];
    for (what, replace, why) in cases {
        let before = refusals(&p.da.log());
        replace(&conf);
        let sent = Instant::now();
        p.da.proc.signal(libc::SIGHUP);
        let refused = wait_until(Duration::from_secs(60), || {
            refusals(&p.da.log()) > before || !p.da.proc.alive()
        });
        let log = p.da.log();
        assert!(p.da.proc.alive(), "{what}: lbd died on the reload:\n{log}");
        assert!(refused, "{what}: no refusal logged:\n{log}");
        assert!(log.contains(why), "{what}: refusal without {why:?}:\n{log}");
        eprintln!("{what}: refused after {:?}", sent.elapsed());
        // Observation, not synchronisation: the state must last the window.
        let nodes = p.nodes();
        assert!(
            holds_for(STILL_MASTER, || lab.has_addr(&p.a, "eth0", VIP4)
                && !lab.has_addr(&p.b, "eth0", VIP4)
                && p.da.proc.alive()),
            "{what}: the master did not carry on: {}",
            describe(&lab, &nodes, "eth0", VIP4)
        );
    }

    // Still a working master: SIGTERM sends priority 0, seen from b.
    let cap = Capture::start(
        &lab,
        &p.b,
        "eth0",
        VRRP_FILTER,
        100,
        Duration::from_secs(30),
    );
    // tshark says "Capturing on" before it captures: wait for one of a's
    // adverts in the file, so the priority-0 one cannot be missed.
    let a_ip = p.a.ip4(0);
    let from_a = |rows: &[Vec<String>], prio: Option<&str>| {
        rows.iter().any(|r| {
            r.first() == Some(&a_ip)
                && prio.is_none_or(|want| r.get(1).map(String::as_str) == Some(want))
        })
    };
    assert!(
        wait_until(Duration::from_secs(20), || from_a(
            &cap.fields(&["ip.src", "vrrp.prio"], &[]),
            None
        )),
        "the capture on b never saw an advert from a"
    );
    p.da.term();
    let start = Instant::now();
    assert!(
        wait_until(ELECTION, || lab.has_addr(&p.b, "eth0", VIP4)),
        "backup did not take over after SIGTERM"
    );
    let took = start.elapsed();
    // Without a priority-0 advert the takeover waits Master_Down (>= 2.6 s).
    assert!(
        took < Duration::from_secs(2),
        "takeover after SIGTERM took {took:?}: priority 0 advert not sent/honoured"
    );
    // b took over because of a's priority 0, which tshark has seen by now
    // (Skew_Time passed since): stop the capture.
    cap.wait(&lab, Duration::from_secs(1));
    let rows = cap.fields(&["ip.src", "vrrp.prio"], &[]);
    assert!(
        from_a(&rows, Some("0")),
        "no priority-0 advert from a ({a_ip}) on the wire: {rows:?}"
    );
}
