//! Network namespace lab: one guard per test that owns every namespace and
//! process it created, and removes them on drop (panics included).

use std::fs::{self, File};
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Every lab namespace starts with this, so leftovers are easy to spot.
pub const NS_PREFIX: &str = "lt-";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A namespace joined to the lab LAN(s); `eth0` is on LAN 0, `eth1` on LAN 1.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub ns: String,
    /// Host part of every address of this node (10.0.<lan>.<idx>, fd00:<lan>::<idx>).
    pub idx: u8,
}

impl Node {
    /// IPv4 address of the node on `lan`.
    pub fn ip4(&self, lan: u8) -> String {
        format!("10.0.{lan}.{}", self.idx)
    }

    /// Global IPv6 address of the node on `lan`.
    pub fn ip6(&self, lan: u8) -> String {
        format!("fd00:{lan}::{}", self.idx)
    }
}

/// A process started in a namespace. It leads its own process group so a
/// kill reaches the children too (keepalived forks its VRRP child).
#[derive(Clone, Debug)]
pub struct Proc {
    pub pid: i32,
    pub label: String,
    pub log: PathBuf,
}

impl Proc {
    /// Signal the whole process group.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with a negative pid targets our own child's group.
        unsafe {
            libc::kill(-self.pid, sig);
        }
    }

    pub fn kill(&self) {
        self.signal(libc::SIGKILL);
    }

    pub fn alive(&self) -> bool {
        // A reaped child is gone; a zombie still shows in /proc, so check state.
        match fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            Ok(s) => !s
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z'),
            Err(_) => false,
        }
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

struct Link {
    node: String,
    dev: String,
    /// veth end inside the bridge namespace.
    br_port: String,
}

#[derive(Default)]
struct Inner {
    nodes: Vec<Node>,
    links: Vec<Link>,
    lans: Vec<u8>,
    children: Vec<Child>,
}

/// The per-test guard. Create it first in a test; everything else hangs off it.
pub struct Lab {
    pub test: String,
    /// Namespace name stem: `lt-<short test>-<pid>-<n>`.
    pub base: String,
    pub br_ns: String,
    pub log_dir: PathBuf,
    inner: Mutex<Inner>,
}

/// Fails the test unless it runs inside the VM tier (tests/vm/run sets
/// LBD_IN_VM=1): IPVS tests change the kernel's one global table, and on a
/// kernel without IPVS passing would test nothing.
pub fn require_vm(test: &str) {
    if std::env::var("LBD_IN_VM").as_deref() != Ok("1") {
        panic!("{test}: needs IPVS, so it runs in the VM tier (scripts/test vm sets LBD_IN_VM=1)");
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Run a command, panicking with its output when it fails: setup errors are
/// test bugs, and the message says which command broke.
pub fn run(argv: &[&str]) -> Output {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Like `run` but failures are ignored (cleanup paths).
pub fn run_quiet(argv: &[&str]) -> Output {
    Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"))
}

fn short_name(test: &str) -> String {
    // Keep letters/digits only and a few of them: names show up in `ip netns`.
    let s: String = test
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(10)
        .collect();
    if s.is_empty() {
        "t".into()
    } else {
        s
    }
}

pub fn target_dir() -> PathBuf {
    match option_env!("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

fn list_netns() -> Vec<String> {
    let out = run_quiet(&["ip", "netns", "list"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn kill_ns_pids(ns: &str) {
    let out = run_quiet(&["ip", "netns", "pids", ns]);
    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        if let Ok(pid) = pid.parse::<i32>() {
            // SAFETY: plain kill(2) of a process living in a lab namespace.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// Remove namespaces left by crashed runs of the same test (whose pid is gone).
fn clean_leftovers(short: &str) {
    let stem = format!("{NS_PREFIX}{short}-");
    for ns in list_netns() {
        let Some(rest) = ns.strip_prefix(&stem) else {
            continue;
        };
        let pid: i32 = rest
            .split('-')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if pid != 0 && Path::new(&format!("/proc/{pid}")).exists() {
            continue; // a live run (parallel test binary) owns it
        }
        kill_ns_pids(&ns);
        run_quiet(&["ip", "netns", "del", &ns]);
    }
}

impl Lab {
    /// A fresh lab for a test of the lab (or VM) tier. Not being root is a
    /// failure, not a skip: the `lab` feature means "this is the lab tier",
    /// and a lab test that passes without running tests nothing.
    pub fn new(test: &str) -> Lab {
        match Lab::try_new(test) {
            Some(lab) => lab,
            None => panic!(
                "{test}: the namespace lab needs root (run the lab tier as root: sudo scripts/test lab)"
            ),
        }
    }

    /// A fresh lab, or None (with a printed reason) when not root: for the
    /// demo and the benchmark, which may run without it.
    pub fn try_new(test: &str) -> Option<Lab> {
        if !is_root() {
            eprintln!("{test}: the namespace lab needs root");
            return None;
        }
        let short = short_name(test);
        clean_leftovers(&short);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let base = format!("{NS_PREFIX}{short}-{}-{n}", std::process::id());
        // Inside the VM tier the repository is read-only: log under /tmp.
        let in_vm = std::env::var("LBD_IN_VM").is_ok_and(|v| v == "1");
        let logs = match std::env::var_os("LAB_LOG_DIR") {
            Some(d) => PathBuf::from(d),
            None if in_vm => PathBuf::from("/tmp/lab-logs"),
            None => target_dir().join("lab-logs"),
        };
        let log_dir = logs.join(test.replace("::", "-"));
        let _ = fs::remove_dir_all(&log_dir);
        fs::create_dir_all(&log_dir).unwrap();
        let lab = Lab {
            test: test.into(),
            br_ns: format!("{base}-br"),
            base,
            log_dir,
            inner: Mutex::new(Inner::default()),
        };
        lab.make_ns(&lab.br_ns);
        lab.ensure_lan(0);
        Some(lab)
    }

    fn make_ns(&self, ns: &str) {
        run(&["ip", "netns", "add", ns]);
        Self::prepare_ns(ns);
    }

    /// lo up, and no DAD: what every lab namespace starts with.
    fn prepare_ns(ns: &str) {
        let ip = |args: &[&str]| {
            let mut v = vec!["ip", "netns", "exec", ns];
            v.extend_from_slice(args);
            run(&v);
        };
        ip(&["ip", "link", "set", "lo", "up"]);
        // New links inherit `default`: no DAD, so IPv6 addresses are usable at once.
        for k in ["all", "default"] {
            ip(&["sysctl", "-qw", &format!("net.ipv6.conf.{k}.accept_dad=0")]);
            ip(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{k}.dad_transmits=0"),
            ]);
        }
    }

    fn ensure_lan(&self, lan: u8) {
        let mut inner = self.inner.lock().unwrap();
        if inner.lans.contains(&lan) {
            return;
        }
        let br = format!("br{lan}");
        let ns = self.br_ns.as_str();
        // No STP and no multicast snooping: VRRP multicast must flood to every port.
        run(&[
            "ip",
            "-n",
            ns,
            "link",
            "add",
            &br,
            "type",
            "bridge",
            "stp_state",
            "0",
            "mcast_snooping",
            "0",
        ]);
        run(&["ip", "-n", ns, "link", "set", &br, "up"]);
        inner.lans.push(lan);
    }

    /// The node named `name`, created (on LAN 0) on first use.
    pub fn node(&self, name: &str) -> Node {
        if let Some(n) = self.find(name) {
            return n;
        }
        let (ns, idx) = {
            let inner = self.inner.lock().unwrap();
            (
                format!("{}-{name}", self.base),
                10 + inner.nodes.len() as u8,
            )
        };
        self.make_ns(&ns);
        let node = Node {
            name: name.into(),
            ns,
            idx,
        };
        self.inner.lock().unwrap().nodes.push(node.clone());
        self.join(&node, 0);
        node
    }

    /// The network namespace of process `pid` (a container's, say) as node
    /// `name`: named with `ip netns attach` and joined to LAN 0 as any node.
    /// The namespace belongs to the process; the lab's drop removes the
    /// name and kills what runs in it, as for its own namespaces.
    pub fn node_of_pid(&self, name: &str, pid: i32) -> Node {
        assert!(self.find(name).is_none(), "node {name} exists already");
        let (ns, idx) = {
            let inner = self.inner.lock().unwrap();
            (
                format!("{}-{name}", self.base),
                10 + inner.nodes.len() as u8,
            )
        };
        run(&["ip", "netns", "attach", &ns, &pid.to_string()]);
        let node = Node {
            name: name.into(),
            ns,
            idx,
        };
        // Recorded before anything else can fail, so the drop removes the name.
        self.inner.lock().unwrap().nodes.push(node.clone());
        // Docker turns IPv6 off in a container's namespace; lab nodes have it.
        for k in ["all", "default"] {
            run(&[
                "ip",
                "netns",
                "exec",
                &node.ns,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{k}.disable_ipv6=0"),
            ]);
        }
        Self::prepare_ns(&node.ns);
        self.join(&node, 0);
        node
    }

    /// A client or backend: same plumbing as a node, named for readability.
    pub fn host(&self, name: &str) -> Node {
        self.node(name)
    }

    fn find(&self, name: &str) -> Option<Node> {
        self.inner
            .lock()
            .unwrap()
            .nodes
            .iter()
            .find(|n| n.name == name)
            .cloned()
    }

    /// Plug `node` into LAN `lan` as `eth<lan>`, with 10.0.<lan>.<idx>/24 and
    /// fd00:<lan>::<idx>/64.
    pub fn join(&self, node: &Node, lan: u8) {
        self.ensure_lan(lan);
        let dev = format!("eth{lan}");
        // Port names only need to be unique inside the bridge namespace.
        let port = format!("p{}l{lan}", node.idx);
        let br = self.br_ns.as_str();
        run(&[
            "ip", "-n", br, "link", "add", &port, "type", "veth", "peer", "name", &dev, "netns",
            &node.ns,
        ]);
        run(&[
            "ip",
            "-n",
            br,
            "link",
            "set",
            &port,
            "master",
            &format!("br{lan}"),
            "up",
        ]);
        let ns = node.ns.as_str();
        run_quiet(&[
            "ip",
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{dev}.accept_dad=0"),
        ]);
        run(&[
            "ip",
            "-n",
            ns,
            "addr",
            "add",
            &format!("{}/24", node.ip4(lan)),
            "dev",
            &dev,
        ]);
        run(&[
            "ip",
            "-n",
            ns,
            "addr",
            "add",
            &format!("{}/64", node.ip6(lan)),
            "dev",
            &dev,
            "nodad",
        ]);
        run(&["ip", "-n", ns, "link", "set", &dev, "up"]);
        self.inner.lock().unwrap().links.push(Link {
            node: node.name.clone(),
            dev,
            br_port: port,
        });
    }

    /// Take the bridge side of `node`'s `dev` down or up: the node sees
    /// carrier loss, as when a cable is pulled.
    pub fn set_link(&self, node: &Node, dev: &str, up: bool) {
        let port = {
            let inner = self.inner.lock().unwrap();
            inner
                .links
                .iter()
                .find(|l| l.node == node.name && l.dev == dev)
                .map(|l| l.br_port.clone())
                .unwrap_or_else(|| panic!("{} has no {dev}", node.name))
        };
        let state = if up { "up" } else { "down" };
        run(&["ip", "-n", &self.br_ns, "link", "set", &port, state]);
    }

    fn ns_argv<'a>(node: &'a Node, argv: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["ip", "netns", "exec", node.ns.as_str()];
        v.extend_from_slice(argv);
        v
    }

    /// Run to completion inside the node; the caller checks the status.
    pub fn exec(&self, node: &Node, argv: &[&str]) -> Output {
        run_quiet(&Self::ns_argv(node, argv))
    }

    /// Run inside the node and panic if it fails.
    pub fn exec_ok(&self, node: &Node, argv: &[&str]) -> Output {
        run(&Self::ns_argv(node, argv))
    }

    /// Start a long-running process in the node; stdout and stderr go to
    /// `<log_dir>/<node>-<label>.log`.
    pub fn spawn(&self, node: &Node, label: &str, argv: &[&str]) -> Proc {
        self.spawn_env(node, label, argv, &[])
    }

    pub fn spawn_env(&self, node: &Node, label: &str, argv: &[&str], env: &[(&str, &str)]) -> Proc {
        let log = self.log_dir.join(format!("{}-{label}.log", node.name));
        let f = File::create(&log).unwrap();
        let v = Self::ns_argv(node, argv);
        let mut cmd = Command::new(v[0]);
        cmd.args(&v[1..])
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .process_group(0);
        for (k, val) in env {
            cmd.env(k, val);
        }
        // `ip netns exec` execs the command, so the child pid is the command's.
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {v:?}: {e}"));
        let pid = child.id() as i32;
        self.inner.lock().unwrap().children.push(child);
        Proc {
            pid,
            label: format!("{}-{label}", node.name),
            log,
        }
    }

    /// Reap a process the test killed, so `alive()` turns false promptly.
    pub fn reap(&self, p: &Proc) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(c) = inner.children.iter_mut().find(|c| c.id() as i32 == p.pid) {
            let _ = c.wait();
        }
    }

    /// The exit status of a process started with `spawn`, once it exits
    /// within `deadline`.
    pub fn wait_exit(&self, p: &Proc, deadline: Duration) -> Option<ExitStatus> {
        let mut status = None;
        crate::wait_until(deadline, || {
            let mut inner = self.inner.lock().unwrap();
            status = inner
                .children
                .iter_mut()
                .find(|c| c.id() as i32 == p.pid)
                .and_then(|c| c.try_wait().ok().flatten());
            status.is_some()
        });
        status
    }

    /// A file path in this test's log directory.
    pub fn path(&self, file: &str) -> PathBuf {
        self.log_dir.join(file)
    }

    /// Whether `ip` is configured on `dev` in the node.
    pub fn has_addr(&self, node: &Node, dev: &str, ip: &str) -> bool {
        let out = run_quiet(&["ip", "-n", &node.ns, "-o", "addr", "show", "dev", dev]);
        let want: Option<IpAddr> = ip.parse().ok();
        String::from_utf8_lossy(&out.stdout).lines().any(|l| {
            let mut it = l.split_whitespace();
            while let Some(w) = it.next() {
                if w == "inet" || w == "inet6" {
                    let a = it.next().unwrap_or("").split('/').next().unwrap_or("");
                    if a.parse::<IpAddr>().ok() == want {
                        return true;
                    }
                }
            }
            false
        })
    }

    /// MAC in the node's neighbour table for `ip`, if resolved.
    pub fn neigh_mac(&self, node: &Node, ip: &str) -> Option<String> {
        let out = run_quiet(&["ip", "-n", &node.ns, "neigh", "show", ip]);
        let s = String::from_utf8_lossy(&out.stdout);
        let mut it = s.split_whitespace();
        while let Some(w) = it.next() {
            if w == "lladdr" {
                return it.next().map(str::to_lowercase);
            }
        }
        None
    }

    pub fn mac_of(&self, node: &Node, dev: &str) -> String {
        let out = run(&["ip", "-n", &node.ns, "-o", "link", "show", "dev", dev]);
        let s = String::from_utf8_lossy(&out.stdout).to_string();
        let mut it = s.split_whitespace();
        while let Some(w) = it.next() {
            if w == "link/ether" {
                return it.next().unwrap_or_default().to_lowercase();
            }
        }
        panic!("no MAC on {}:{dev}: {s}", node.name)
    }

    /// One ping from the node; true when answered.
    pub fn ping(&self, node: &Node, ip: &str) -> bool {
        let v6 = ip.contains(':');
        let mut argv = vec!["ping", "-c", "1", "-W", "1", "-n", "-q"];
        if v6 {
            argv.push("-6");
        }
        argv.push(ip);
        self.exec(node, &argv).status.success()
    }

    /// Print where to look; called on failure from Drop.
    fn post_mortem(&self) {
        eprintln!(
            "lab {} failed; logs in {}",
            self.test,
            self.log_dir.display()
        );
        if let Ok(rd) = fs::read_dir(&self.log_dir) {
            let mut files: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            for f in files {
                if f.extension().is_some_and(|e| e == "log") {
                    let text = fs::read_to_string(&f).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(15).collect();
                    eprintln!("--- {} (last {} lines)", f.display(), tail.len());
                    for l in tail.iter().rev() {
                        eprintln!("    {l}");
                    }
                }
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.post_mortem();
        }
        let inner = match self.inner.get_mut() {
            Ok(i) => i,
            Err(p) => p.into_inner(),
        };
        for c in inner.children.iter_mut() {
            // SAFETY: kill(2) of our child's process group.
            unsafe {
                libc::kill(-(c.id() as i32), libc::SIGKILL);
            }
            let _ = c.wait();
        }
        let mut all: Vec<String> = inner.nodes.iter().map(|n| n.ns.clone()).collect();
        all.push(self.br_ns.clone());
        // Anything that escaped the process groups (double forks) dies here.
        for ns in &all {
            kill_ns_pids(ns);
        }
        for ns in &all {
            run_quiet(&["ip", "netns", "del", ns]);
        }
    }
}
