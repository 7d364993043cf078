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
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
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

/// The last `n` lines of `text`, indented.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    indent(&lines[lines.len().saturating_sub(n)..].join("\n"))
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("   {l}\n")).collect()
}

/// `lbctl status` without its plugin table (the bundled checks, unused here).
fn status(d: &Daemon) -> Result<String, String> {
    let text = lbctl(d, &["status"])?;
    Ok(indent(
        &text
            .lines()
            .take_while(|l| !l.starts_with("PLUGIN"))
            .collect::<Vec<_>>()
            .join("\n"),
    ))
}

/// `ip:port` as /proc/net/ip_vs writes it (`0A00010E:0050`).
fn proc_hex(ip: &str, port: u16) -> String {
    let o: Vec<u8> = ip.split('.').filter_map(|b| b.parse().ok()).collect();
    let h: String = o.iter().map(|b| format!("{b:02X}")).collect();
    format!("{h}:{port:04X}")
}

/// One request answered in time: the backend's name (a 200's body).
fn raw_get(addr: SocketAddr, timeout: Duration) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: demo\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    (head.split_whitespace().nth(1) == Some("200")).then(|| body.trim().to_owned())
}

/// Answers seen by the polling client: when each request ended, and who.
type Answers = Vec<(Instant, Option<String>)>;

/// A thread in the client's namespace sending a request every 20 ms.
struct Poller {
    answers: Arc<Mutex<Answers>>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<(), String>>,
}

impl Poller {
    fn start(ns: &str) -> Poller {
        let answers = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s, path) = (answers.clone(), stop.clone(), format!("/run/netns/{ns}"));
        let thread = std::thread::spawn(move || {
            let f = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            // SAFETY: setns(2) on an open netns file; it moves this thread only.
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
            }
            let addr: SocketAddr = format!("{VIP}:80")
                .parse()
                .map_err(|e| format!("{VIP}:80: {e}"))?;
            while !s.load(Ordering::Relaxed) {
                let r = raw_get(addr, Duration::from_millis(200));
                a.lock().unwrap().push((Instant::now(), r));
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        });
        Poller {
            answers,
            stop,
            thread,
        }
    }

    /// The latest answered request.
    fn last_ok(&self) -> Option<(Instant, String)> {
        let a = self.answers.lock().unwrap();
        a.iter().rev().find_map(|(t, r)| Some((*t, r.clone()?)))
    }

    fn stop(self) -> Answers {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(Err(e)) = self.thread.join() {
            println!("   polling client: {e}");
        }
        std::mem::take(&mut *self.answers.lock().unwrap())
    }
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
            "lb1 never became master with every backend in IPVS (VIP on lb1: {}, on lb2: {}):\n\
             ipvsadm -Ln on lb1:\n{}ipvsadm -Ln on lb2:\n{}lb1's lbd log ends:\n{}",
            lab.has_addr(&lb1, "eth0", VIP),
            lab.has_addr(&lb2, "eth0", VIP),
            ipvsadm(lab, &lb1),
            ipvsadm(lab, &lb2),
            tail(&d1.log(), 10)
        ));
    }
    for d in [&d1, &d2] {
        println!("== lbctl status on {}", d.node.name);
        print!("{}", status(d)?);
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
    // lbd's own /proc/PID/net is lb1's namespace: read its IPVS table
    // every 5 ms without starting a process.
    let table = format!("/proc/{}/net/ip_vs", d1.proc.pid);
    let hex = proc_hex(&gone.ip4(1), 80);
    let removed = wait_until(Duration::from_secs(30), || {
        std::fs::read_to_string(&table).is_ok_and(|t| !t.contains(&hex))
    });
    let took = stopped.elapsed();
    let removed = removed && !dests(lab, &lb1).contains(&gone_rs);
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
            println!("   lbctl events: {}", l.trim());
        }
    }
    println!("== {REQUESTS} requests with {} out", gone.name);
    check_spread(&ten(lab, &client), &["web1", "web3"])?;

    println!("== lb1 dies: lbd SIGKILLed and its links cut, as when the machine crashes");
    // A client polling from its namespace every 20 ms (no process per
    // request), so the gap it sees is measured to a fraction of a second.
    let poller = Poller::start(&client.ns);
    if !wait_until(Duration::from_secs(10), || poller.last_ok().is_some()) {
        return Err("the polling client got no answer before the kill".into());
    }
    d1.kill(lab);
    lab.set_link(&lb1, "eth0", false);
    lab.set_link(&lb1, "eth1", false);
    let cut = Instant::now();
    let took = wait_until(Duration::from_secs(30), || {
        poller.last_ok().is_some_and(|(t, _)| t > cut)
    });
    let answers = poller.stop();
    if !took {
        return Err("no answer through the VIP within 30 s of lb1's death".into());
    }
    let (last_t, last) = answers
        .iter()
        .rev()
        .filter_map(|(t, r)| Some((*t, r.clone()?)))
        .find(|(t, _)| *t <= cut)
        .ok_or("no answer through lb1 before the kill")?;
    let (first_t, first) = answers
        .iter()
        .filter_map(|(t, r)| Some((*t, r.clone()?)))
        .find(|(t, _)| *t > cut)
        .ok_or("no answer after the kill")?;
    let failed = answers
        .iter()
        .filter(|(t, r)| r.is_none() && *t > last_t && *t < first_t)
        .count();
    if !lab.has_addr(&lb2, "eth0", VIP) || !lab.has_addr(&lb2, "eth1", GW) {
        return Err("answers came, but lb2 does not hold the VIP and the gateway".into());
    }
    println!("   last answer through lb1: {last}; first answer through lb2: {first}");
    println!(
        "   takeover by lb2 as the client saw it: {:.2} s (last answer through lb1 -> first through lb2; {failed} requests failed between)",
        (first_t - last_t).as_secs_f64()
    );
    println!("== lbctl status on lb2");
    print!("{}", status(&d2)?);
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
    // The gauge is the one line per instance; the histogram's sum and
    // count are the fallback. A missing name is reported, not failed: the
    // demo's checks are about behaviour.
    let mut lines = pick("lbd_vrrp_last_failover");
    if lines.is_empty() {
        lines = pick("failover");
    }
    if lines.is_empty() {
        println!("   (no lbd_vrrp_*failover* metric in this lbd; transitions instead)");
        lines = pick("transition");
    }
    if lines.is_empty() {
        println!("   (none: this lbd exports no VRRP metrics)");
    }
    for l in lines {
        println!("   {l}");
    }
    Ok(())
}
