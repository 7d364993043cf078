//! The README demo, run by scripts/lab: two VRRP nodes, two HTTP backends and
//! a client in namespaces; kill the master and measure the takeover as the
//! client sees it.
//!
//! usage: lab [--daemon lbd|keepalived] [--version 2|3]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use lbd_tests::scenario::{holders, Pair, ELECTION};
use lbd_tests::{http, lbd_ready, wait_until, Instance, Kind, Lab, VIP4};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let kind = match opt("--daemon").as_deref() {
        Some("keepalived") => Kind::Keepalived,
        None | Some("lbd") => Kind::Lbd,
        Some(o) => panic!("unknown daemon {o}"),
    };
    let version = opt("--version").unwrap_or_else(|| "3".into());
    if kind == Kind::Lbd && lbd_ready("lab demo").is_none() {
        eprintln!("hint: scripts/lab --daemon keepalived shows the same demo with keepalived");
        std::process::exit(2);
    }
    let Some(lab) = Lab::try_new("demo") else {
        std::process::exit(2)
    };
    let inst = |prio| {
        if version == "2" {
            Instance::v2(prio)
        } else {
            Instance::v3(prio)
        }
    };
    println!(
        "== {} nodes lb1 (priority 150) and lb2 (100), VRRPv{version}, advert 1 s, VIP {VIP4}",
        kind.label()
    );
    // Pair names its nodes a/b; the demo calls them lb1/lb2 in its output.
    let p = Pair::start(&lab, kind, kind, inst(150), inst(100), false);
    let web1 = lab.host("web1");
    let web2 = lab.host("web2");
    for (n, name) in [(&web1, "web1"), (&web2, "web2")] {
        http::serve(&lab, n, name, &n.ip4(0), 80);
    }
    // Until IPVS lands the VIP owner answers HTTP itself, with its own name.
    http::serve(&lab, &p.a, "lb1", "0.0.0.0", 80);
    http::serve(&lab, &p.b, "lb2", "0.0.0.0", 80);
    let label = |n: &str| if n == "a" { "lb1" } else { "lb2" };

    println!("== backends answer the client directly");
    for n in [&web1, &web2] {
        println!(
            "   GET http://{}/ -> {}",
            n.ip4(0),
            answer(http::get(&lab, &p.client, &n.ip4(0), 80))
        );
    }
    println!("== waiting for the election");
    if !wait_until(ELECTION, || {
        holders(&lab, &p.nodes(), "eth0", VIP4).len() == 1
    }) {
        panic!(
            "no single VIP holder: {:?}",
            holders(&lab, &p.nodes(), "eth0", VIP4)
        );
    }
    let owner = holders(&lab, &p.nodes(), "eth0", VIP4).remove(0);
    println!("   VIP {VIP4} is on {}", label(&owner));
    for _ in 0..3 {
        println!(
            "   GET http://{VIP4}/ -> {}",
            answer(http::get(&lab, &p.client, VIP4, 80))
        );
    }

    println!("== SIGKILL {} on lb1", kind.label());
    let killed = Instant::now();
    p.da.kill(&lab);
    let mut tries = 0;
    let ok = wait_until(Duration::from_secs(30), || {
        tries += 1;
        http::get(&lab, &p.client, VIP4, 80).as_deref() == Some("lb2")
    });
    let gap = killed.elapsed();
    if !ok {
        panic!("lb2 never answered on the VIP");
    }
    println!(
        "   VIP now on: {}",
        holders(&lab, &[&p.b], "eth0", VIP4)
            .iter()
            .map(|n| label(n))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "   GET http://{VIP4}/ -> {}",
        answer(http::get(&lab, &p.client, VIP4, 80))
    );
    println!("== takeover seen by the client: {:.2} s from kill to first answer from lb2 ({tries} polls)", gap.as_secs_f64());
    println!("   logs: {}", lab.log_dir.display());
}

/// What the client got: the answering node's name, or why there was none.
fn answer(r: Option<String>) -> String {
    r.unwrap_or_else(|| "(no answer)".into())
}
