//! lbd vs keepalived in the same lab and the same run, for scripts/bench:
//! failover time on master SIGKILL and on master link down, at advert_int 1 s
//! (v2) and 0.1 s (v3), plus the RSS of one node running one instance.
//! Failover time = kill / link-down to the VIP's RTM_NEWADDR in the backup.
//!
//! usage: bench [--reps N] [--only keepalived|lbd]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use lbd_tests::daemon::rss_kib;
use lbd_tests::scenario::{Pair, ELECTION};
use lbd_tests::watch::AddrWatch;
use lbd_tests::{lbd_ready, wait_until, Daemon, Instance, Kind, Lab, VIP4};

#[derive(Clone, Copy)]
enum Fault {
    Kill,
    LinkDown,
}

fn instance(version: u8, prio: u8) -> Instance {
    if version == 2 {
        Instance::v2(prio)
    } else {
        Instance {
            advert_int: 0.1,
            ..Instance::v3(prio)
        }
    }
}

/// One failover, in seconds, in a fresh lab.
fn failover(kind: Kind, version: u8, fault: Fault, rep: usize) -> Option<f64> {
    let lab = Lab::try_new(&format!("bench-{}-v{version}-{rep}", kind.label()))?;
    let p = Pair::start(
        &lab,
        kind,
        kind,
        instance(version, 150),
        instance(version, 100),
        false,
    );
    p.expect_sole(&lab, &p.a, VIP4, ELECTION);
    // Let the backup settle into hearing adverts: a fresh backup's timer
    // would otherwise be measured from its start, not from the fault.
    std::thread::sleep(Duration::from_millis(1500));
    let watch = AddrWatch::start(&p.b.ns, VIP4, Duration::from_secs(30));
    let t0 = std::time::Instant::now();
    match fault {
        Fault::Kill => p.da.kill(&lab),
        Fault::LinkDown => lab.set_link(&p.a, "eth0", false),
    }
    let at = watch.wait()?;
    Some(at.duration_since(t0).as_secs_f64())
}

/// VmRSS (KiB) of one node with one instance, once it is master. For
/// keepalived: parent + VRRP child (+ checker child if any).
fn rss(kind: Kind) -> Option<u64> {
    let lab = Lab::try_new(&format!("bench-rss-{}", kind.label()))?;
    let a = lab.node("a");
    let d = Daemon::start(&lab, kind, &a, &Instance::v2(150).render("a"));
    wait_until(ELECTION, || lab.has_addr(&a, "eth0", VIP4)).then_some(())?;
    let mut pids = vec![d.proc.pid];
    if let Some(f) = &d.vrrp_pidfile {
        let chk = f.with_file_name(
            f.file_name()?
                .to_str()?
                .replace(".vrrp.pid", ".checkers.pid"),
        );
        for pf in [f, &chk] {
            if let Some(pid) = std::fs::read_to_string(pf)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                pids.push(pid);
            }
        }
    }
    pids.dedup();
    Some(pids.into_iter().filter_map(rss_kib).sum())
}

fn stats(v: &[f64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    format!("{:.3} ({:.3}-{:.3})", s[s.len() / 2], s[0], s[s.len() - 1])
}

fn median(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let reps: usize = opt("--reps").and_then(|r| r.parse().ok()).unwrap_or(5);
    let mut kinds = vec![];
    if opt("--only").as_deref() != Some("lbd") {
        kinds.push(Kind::Keepalived);
    }
    if opt("--only").as_deref() != Some("keepalived") {
        if lbd_ready("bench").is_some() {
            kinds.push(Kind::Lbd);
        } else {
            eprintln!("lbd not ready: keepalived figures only");
        }
    }
    let cases = [
        ("SIGKILL, v2 advert 1 s", 2, Fault::Kill),
        ("link down, v2 advert 1 s", 2, Fault::LinkDown),
        ("SIGKILL, v3 advert 0.1 s", 3, Fault::Kill),
        ("link down, v3 advert 0.1 s", 3, Fault::LinkDown),
    ];
    println!(
        "{:<28} {:>26} {:>26} {:>8}",
        "failover (s): median (min-max)", "keepalived", "lbd", "lbd/ka"
    );
    for (name, version, fault) in cases {
        let mut res: Vec<Vec<f64>> = vec![];
        for &k in &kinds {
            let v: Vec<f64> = (0..reps)
                .filter_map(|r| failover(k, version, fault, r))
                .collect();
            eprintln!("  {name} {}: {v:.3?}", k.label());
            res.push(v);
        }
        let get = |k: Kind| {
            kinds
                .iter()
                .position(|&x| x == k)
                .map(|i| res[i].clone())
                .unwrap_or_default()
        };
        let (ka, lb) = (get(Kind::Keepalived), get(Kind::Lbd));
        let ratio = match (median(&lb), median(&ka)) {
            (Some(l), Some(k)) if k > 0.0 => format!("{:.2}", l / k),
            _ => "-".into(),
        };
        println!(
            "{name:<28} {:>26} {:>26} {ratio:>8}",
            stats(&ka),
            stats(&lb)
        );
    }
    let r: Vec<Option<u64>> = [Kind::Keepalived, Kind::Lbd]
        .iter()
        .map(|&k| if kinds.contains(&k) { rss(k) } else { None })
        .collect();
    let show = |v: Option<u64>| {
        v.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
            .unwrap_or_else(|| "-".into())
    };
    let ratio = match (r[1], r[0]) {
        (Some(l), Some(k)) if k > 0 => format!("{:.2}", l as f64 / k as f64),
        _ => "-".into(),
    };
    println!(
        "{:<28} {:>26} {:>26} {ratio:>8}",
        "RSS, one node, 1 instance",
        show(r[0]),
        show(r[1])
    );
}
