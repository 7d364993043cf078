//! The README demo, run by `scripts/lab` inside the IPVS VM: two lbd
//! directors (lb1 priority 150, lb2 100) with a VIP and an IPVS virtual
//! server (NAT, rr) over three HTTP backends checked by HTTP_GET, and a
//! client, each in its own network namespace. It shows the spread of
//! requests, a stopped backend taken out by its check, and a takeover when
//! the master dies. Every step is checked: a failed one exits non-zero with
//! its reason.
//!
//! usage: lvs_demo   (root, inside the VM: tests/vm/run sets LBD_IN_VM=1)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lbd_tests::daemon::lbctl_path;
use lbd_tests::lvs::nat_backend;
use lbd_tests::{lbd_ready, wait_until, Daemon, Kind, Lab, Node};

const VIP: &str = "10.0.0.100";
/// The backends' default gateway: a second VRRP instance on the backend
/// LAN, in a sync group with the VIP's, so replies follow the master.
const GW: &str = "10.0.1.254";
/// Ten requests, as the README says.
const REQUESTS: usize = 10;

fn main() {
    if std::env::var("LBD_IN_VM").as_deref() != Ok("1") {
        eprintln!("lvs_demo needs IPVS: run it through scripts/lab (it boots the VM)");
        std::process::exit(2);
    }
    if lbd_ready("lvs demo").is_none() {
        std::process::exit(2);
    }
    let Some(lab) = Lab::try_new("lvsdemo") else {
        std::process::exit(2)
    };
    let started = Instant::now();
    let result = demo(&lab);
    println!("   logs: {}", lab.log_dir.display());
    match result {
        Ok(()) => println!(
            "== demo passed in {:.0} s: spread, check removal, takeover",
            started.elapsed().as_secs_f64()
        ),
        Err(e) => {
            println!("== demo FAILED: {e}");
            drop(lab);
            std::process::exit(1);
        }
    }
}

/// keepalived.conf of one director.
fn conf(name: &str, prio: u8, backends: &[Node]) -> String {
    let inst = |iname: &str, dev: &str, vrid: u8, addr: &str| {
        format!(
            "vrrp_instance {iname} {{\n  state BACKUP\n  interface {dev}\n  virtual_router_id {vrid}\n  \
             priority {prio}\n  advert_int 1\n  virtual_ipaddress {{\n    {addr}/24\n  }}\n}}\n"
        )
    };
    let mut s = format!("global_defs {{\n  router_id {name}\n}}\n");
    s += &inst("VI_PUB", "eth0", 51, VIP);
    s += &inst("VI_GW", "eth1", 52, GW);
    s += "vrrp_sync_group G {\n  group {\n    VI_PUB\n    VI_GW\n  }\n}\n";
    s += &format!(
        "virtual_server {VIP} 80 {{\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n"
    );
    for b in backends {
        s += &format!(
            "  real_server {} 80 {{\n    weight 1\n    HTTP_GET {{\n      url {{\n        path /\n        \
             status_code 200\n      }}\n      connect_timeout 1\n      retry 1\n      \
             delay_before_retry 1\n    }}\n  }}\n",
            b.ip4(1)
        );
    }
    s + "}\n"
}

/// GET http://VIP/ from the client within `timeout`: the backend's name.
fn get(lab: &Lab, client: &Node, timeout: &str) -> Option<String> {
    let url = format!("http://{VIP}/");
    let out = lab.exec(client, &["curl", "-s", "--max-time", timeout, &url]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Ten requests, each printed, and who answered how many.
fn ten(lab: &Lab, client: &Node) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for i in 1..=REQUESTS {
        let who = get(lab, client, "2").unwrap_or_else(|| "(no answer)".into());
        println!("   {i:>2}. GET http://{VIP}/ -> {who}");
        *m.entry(who).or_insert(0) += 1;
    }
    m
}

/// The spread line, once every backend in `want` answered at least twice
/// and nothing else answered.
fn check_spread(m: &BTreeMap<String, usize>, want: &[&str]) -> Result<(), String> {
    let text = m
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let ok = m.len() == want.len()
        && want
            .iter()
            .all(|w| m.get(*w).copied().unwrap_or(0) >= REQUESTS / want.len() - 1);
    if !ok {
        return Err(format!("requests not spread over {want:?}: {text}"));
    }
    println!("   spread over {} backends: {text}", want.len());
    Ok(())
}

/// `ipvsadm -Ln` in the node.
fn ipvsadm(lab: &Lab, n: &Node) -> String {
    String::from_utf8_lossy(&lab.exec(n, &["ipvsadm", "-Ln"]).stdout).into_owned()
}

/// The real servers IPVS has for the VIP in the node.
fn dests(lab: &Lab, n: &Node) -> Vec<String> {
    ipvsadm(lab, n)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.first() == Some(&"->") && w.get(2) == Some(&"Masq")).then(|| w[1].to_owned())
        })
        .collect()
}

/// lbctl against one node's API socket: its stdout, or why not.
fn lbctl(d: &Daemon, args: &[&str]) -> Result<String, String> {
    let sock = d.api_socket.as_deref().unwrap_or(Path::new(""));
    let out = Command::new(lbctl_path())
        .arg("--socket")
        .arg(sock)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", lbctl_path().display()))?;
    if !out.status.success() {
        return Err(format!(
            "lbctl {args:?} on {}: {}",
            d.node.name,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("   {l}\n")).collect()
}

fn demo(lab: &Lab) -> Result<(), String> {
    let (lb1, lb2, client) = (lab.node("lb1"), lab.node("lb2"), lab.host("client"));
    let webs = [lab.host("web1"), lab.host("web2"), lab.host("web3")];
    let names: Vec<&str> = webs.iter().map(|w| w.name.as_str()).collect();
    println!(
        "== two lbd directors, lb1 (priority 150) and lb2 (100), VRRP advert 1 s\n   \
         VIP {VIP}:80 -> IPVS NAT rr over {} (HTTP_GET checks, delay_loop 1)\n   \
         backends route via {GW}, a second VRRP instance synced with the VIP's",
        webs.iter()
            .map(|w| format!("{} {}", w.name, w.ip4(1)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for n in [&lb1, &lb2] {
        lab.exec_ok(n, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        lab.join(n, 1);
    }
    for w in &webs {
        nat_backend(lab, w, GW);
    }
    let mut servers: Vec<_> = webs
        .iter()
        .map(|w| Some(lbd_tests::http::serve(lab, w, &w.name, "0.0.0.0", 80)))
        .collect();
    let d1 = Daemon::start(lab, Kind::Lbd, &lb1, &conf("lb1", 150, &webs));
    let d2 = Daemon::start(lab, Kind::Lbd, &lb2, &conf("lb2", 100, &webs));

    println!("== waiting for lb1 to win the election and the checks to pass");
    let all: Vec<String> = webs.iter().map(|w| format!("{}:80", w.ip4(1))).collect();
    let ready = wait_until(Duration::from_secs(60), || {
        lab.has_addr(&lb1, "eth0", VIP)
            && lab.has_addr(&lb1, "eth1", GW)
            && !lab.has_addr(&lb2, "eth0", VIP)
            && dests(lab, &lb1) == all
            && dests(lab, &lb2) == all
            && get(lab, &client, "2").is_some()
    });
    if !ready {
        return Err(format!(
            "lb1 never became master with every backend in IPVS:\nlb1:\n{}lb2:\n{}",
            ipvsadm(lab, &lb1),
            ipvsadm(lab, &lb2)
        ));
    }
    for d in [&d1, &d2] {
        println!("== lbctl status on {}", d.node.name);
        print!("{}", indent(&lbctl(d, &["status"])?));
    }
    println!("== ipvsadm -Ln on lb1");
    print!("{}", indent(&ipvsadm(lab, &lb1)));

    println!("== {REQUESTS} requests from the client to http://{VIP}/");
    check_spread(&ten(lab, &client), &names)?;

    let (gone, gone_rs) = (&webs[1], format!("{}:80", webs[1].ip4(1)));
    println!("== stopping {} (its HTTP server killed)", gone.name);
    let p = servers[1].take().expect("web2's server runs");
    let stopped = Instant::now();
    p.kill();
    lab.reap(&p);
    let removed = wait_until(Duration::from_secs(30), || {
        !dests(lab, &lb1).contains(&gone_rs)
    });
    let took = stopped.elapsed();
    if !removed {
        return Err(format!(
            "{} still in IPVS 30 s after it stopped:\n{}",
            gone.name,
            ipvsadm(lab, &lb1)
        ));
    }
    println!(
        "   {} removed from IPVS on lb1 by its HTTP_GET check {:.2} s after the stop",
        gone.name,
        took.as_secs_f64()
    );
    if !wait_until(Duration::from_secs(30), || {
        !dests(lab, &lb2).contains(&gone_rs)
    }) {
        return Err(format!("{} still in IPVS on lb2", gone.name));
    }
    // The event log says the same, where this lbd records real-server events.
    if let Ok(ev) = lbctl(&d1, &["events"]) {
        for l in ev.lines().filter(|l| l.contains(&gone_rs)) {
            println!("   lbctl events: {l}");
        }
    }
    println!("== {REQUESTS} requests with {} out", gone.name);
    check_spread(&ten(lab, &client), &["web1", "web3"])?;

    println!("== lb1 dies: SIGKILL lbd, then its links cut (a crashed machine keeps no VIP)");
    // The answer just before the kill is the last one through lb1.
    let last = get(lab, &client, "2").ok_or("no answer right before the kill")?;
    let before = Instant::now();
    d1.kill(lab);
    lab.set_link(&lb1, "eth0", false);
    lab.set_link(&lb1, "eth1", false);
    let mut polls = 0;
    let mut first = None;
    // Short timeouts: each failed poll costs at most 0.5 s of resolution.
    wait_until(Duration::from_secs(30), || {
        polls += 1;
        first = get(lab, &client, "0.5");
        first.is_some()
    });
    let gap = before.elapsed();
    let first = first.ok_or("no answer through the VIP within 30 s of lb1's death")?;
    if !lab.has_addr(&lb2, "eth0", VIP) || !lab.has_addr(&lb2, "eth1", GW) {
        return Err("answers came, but lb2 does not hold the VIP and the gateway".into());
    }
    println!("   last answer through lb1: {last}; first answer through lb2: {first}");
    println!(
        "   takeover by lb2 as the client saw it: {:.2} s (last answer through lb1 -> first through lb2; {polls} polls)",
        gap.as_secs_f64()
    );
    println!("== lbctl status on lb2");
    print!("{}", indent(&lbctl(&d2, &["status"])?));
    println!("== {REQUESTS} requests through lb2");
    check_spread(&ten(lab, &client), &["web1", "web3"])?;

    println!("== lbctl metrics on lb2 (the failover)");
    let metrics = lbctl(&d2, &["metrics"])?;
    let pick = |word: &str| -> Vec<&str> {
        metrics
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(word) && !l.contains("_bucket"))
            .collect()
    };
    let mut lines = pick("failover");
    if lines.is_empty() {
        // The failover metric comes with another branch; say so, don't fail.
        println!("   (no lbd_vrrp_*failover* metric in this lbd; transitions instead)");
        lines = pick("transition");
    }
    if lines.is_empty() {
        println!("   (none: this lbd exports no VRRP metrics yet)");
    }
    for l in lines {
        println!("   {l}");
    }
    Ok(())
}
