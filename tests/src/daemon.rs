//! Running a VRRP daemon (keepalived or lbd) in a node from one config text:
//! lbd reads keepalived.conf syntax, so both daemons get the same file.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use crate::lab::{Lab, Node, Proc};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Keepalived,
    Lbd,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Keepalived => "keepalived",
            Kind::Lbd => "lbd",
        }
    }
}

pub const KEEPALIVED: &str = "/usr/sbin/keepalived";

/// The lbd binary: `LBD_BIN`, else `<workspace>/target/debug/lbd`.
pub fn lbd_path() -> PathBuf {
    match std::env::var_os("LBD_BIN") {
        Some(p) => PathBuf::from(p),
        None => crate::lab::target_dir().join("debug/lbd"),
    }
}

/// lbctl, built beside lbd: `LBCTL_BIN`, else next to [`lbd_path`].
pub fn lbctl_path() -> PathBuf {
    match std::env::var_os("LBCTL_BIN") {
        Some(p) => PathBuf::from(p),
        None => lbd_path().with_file_name("lbctl"),
    }
}

/// Runs `lbctl --socket SOCK ARGS...` and returns what it did (no stdin).
pub fn lbctl(sock: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(lbctl_path())
        .arg("--socket")
        .arg(sock)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", lbctl_path().display()))
}

/// The lbd binary when it is usable for lab tests, else None with a printed
/// reason. "Usable" = it exists and its `--help` mentions `--api-socket`
/// (the placeholder `fn main() {}` binary does not).
pub fn lbd_ready(test: &str) -> Option<PathBuf> {
    let p = lbd_path();
    if !p.exists() {
        eprintln!(
            "skipping {test}: lbd binary {} missing (set LBD_BIN)",
            p.display()
        );
        return None;
    }
    let out = std::process::Command::new(&p).arg("--help").output().ok()?;
    let help = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !help.contains("--api-socket") {
        eprintln!(
            "skipping {test}: {} --help does not list --api-socket (daemon not ready)",
            p.display()
        );
        return None;
    }
    Some(p)
}

#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Pass(String),
    Ah(String),
}

/// One vrrp_instance, rendered as keepalived.conf.
#[derive(Clone, Debug)]
pub struct Instance {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub priority: u8,
    pub version: u8,
    /// Seconds; v3 allows centisecond steps (0.1).
    pub advert_int: f64,
    /// CIDR strings, e.g. "10.0.0.100/24" or "fd00:0::100/64".
    pub vips: Vec<String>,
    pub auth: Auth,
    /// "BACKUP" or "MASTER" (start state).
    pub state: &'static str,
    pub nopreempt: bool,
    pub preempt_delay: Option<u32>,
    pub unicast_src: Option<String>,
    pub unicast_peers: Vec<String>,
    /// keepalived's `old_unicast_checksum` (v3 unicast, pre-1.3.6 checksum).
    pub old_unicast_checksum: bool,
    /// Extra raw lines inside the instance block.
    pub extra: Vec<String>,
}

impl Instance {
    /// v2, PASS auth, VIP 10.0.0.100/24 on eth0, VRID 51.
    pub fn v2(priority: u8) -> Instance {
        Instance {
            name: "VI_1".into(),
            interface: "eth0".into(),
            vrid: 51,
            priority,
            version: 2,
            advert_int: 1.0,
            vips: vec![format!("{VIP4}/24")],
            auth: Auth::Pass("labpass".into()),
            state: "BACKUP",
            nopreempt: false,
            preempt_delay: None,
            unicast_src: None,
            unicast_peers: vec![],
            old_unicast_checksum: false,
            extra: vec![],
        }
    }

    /// v3 (no auth in v3), same VIP.
    pub fn v3(priority: u8) -> Instance {
        Instance {
            version: 3,
            auth: Auth::None,
            ..Instance::v2(priority)
        }
    }

    /// v3 with an IPv6 VIP.
    pub fn v3_ipv6(priority: u8) -> Instance {
        Instance {
            vips: vec![format!("{VIP6}/64")],
            ..Instance::v3(priority)
        }
    }

    /// A whole keepalived.conf: `global_defs` and this instance.
    pub fn render(&self, router_id: &str) -> String {
        format!("{}{}", global_defs(router_id), self.block())
    }

    /// The `vrrp_instance` block alone, to combine several in one file.
    pub fn block(&self) -> String {
        let mut s = String::new();
        let w = &mut s;
        writeln!(w, "vrrp_instance {} {{", self.name).unwrap();
        writeln!(w, "    state {}", self.state).unwrap();
        writeln!(w, "    interface {}", self.interface).unwrap();
        writeln!(w, "    virtual_router_id {}", self.vrid).unwrap();
        writeln!(w, "    priority {}", self.priority).unwrap();
        writeln!(w, "    version {}", self.version).unwrap();
        writeln!(w, "    advert_int {}", self.advert_int).unwrap();
        if self.nopreempt {
            writeln!(w, "    nopreempt").unwrap();
        }
        if let Some(d) = self.preempt_delay {
            writeln!(w, "    preempt_delay {d}").unwrap();
        }
        match &self.auth {
            Auth::None => {}
            Auth::Pass(p) => writeln!(
                w,
                "    authentication {{\n        auth_type PASS\n        auth_pass {p}\n    }}"
            )
            .unwrap(),
            Auth::Ah(p) => writeln!(
                w,
                "    authentication {{\n        auth_type AH\n        auth_pass {p}\n    }}"
            )
            .unwrap(),
        }
        if let Some(src) = &self.unicast_src {
            writeln!(w, "    unicast_src_ip {src}").unwrap();
        }
        if !self.unicast_peers.is_empty() {
            writeln!(w, "    unicast_peer {{").unwrap();
            for p in &self.unicast_peers {
                writeln!(w, "        {p}").unwrap();
            }
            writeln!(w, "    }}").unwrap();
        }
        if self.old_unicast_checksum {
            writeln!(w, "    old_unicast_checksum").unwrap();
        }
        for l in &self.extra {
            writeln!(w, "    {l}").unwrap();
        }
        writeln!(w, "    virtual_ipaddress {{").unwrap();
        for v in &self.vips {
            // A VIP that names its own device keeps it.
            if v.contains(" dev ") {
                writeln!(w, "        {v}").unwrap();
            } else {
                writeln!(w, "        {v} dev {}", self.interface).unwrap();
            }
        }
        writeln!(w, "    }}\n}}").unwrap();
        s
    }
}

/// The `global_defs` block that starts every rendered config.
pub fn global_defs(router_id: &str) -> String {
    format!("global_defs {{\n    router_id {router_id}\n}}\n\n")
}

pub const VIP4: &str = "10.0.0.100";
pub const VIP6: &str = "fd00:0::100";

/// A daemon running in a node.
pub struct Daemon {
    pub kind: Kind,
    pub node: Node,
    pub proc: Proc,
    pub conf: PathBuf,
    /// keepalived's VRRP child pid file (the process that holds the VIP).
    pub vrrp_pidfile: Option<PathBuf>,
    pub api_socket: Option<PathBuf>,
}

impl Daemon {
    /// Start `kind` in `node` with `conf` (keepalived.conf text).
    pub fn start(lab: &Lab, kind: Kind, node: &Node, conf: &str) -> Daemon {
        Daemon::start_with(lab, kind, node, conf, &[])
    }

    /// `start`, with lbd given `extra` arguments (e.g. `--metrics-listen`).
    pub fn start_with(lab: &Lab, kind: Kind, node: &Node, conf: &str, extra: &[&str]) -> Daemon {
        let tag = format!("{}-{}", node.name, kind.label());
        // lbd reads a `.toml` file as its own syntax, anything else as keepalived.conf.
        let ext = if conf.trim_start().starts_with('[') {
            "toml"
        } else {
            "conf"
        };
        let conf_path = lab.path(&format!("{tag}.{ext}"));
        fs::write(&conf_path, conf).unwrap();
        let c = conf_path.to_str().unwrap().to_owned();
        match kind {
            Kind::Keepalived => {
                let pid = lab.path(&format!("{tag}.pid"));
                let vrrp = lab.path(&format!("{tag}.vrrp.pid"));
                let chk = lab.path(&format!("{tag}.checkers.pid"));
                let argv = [
                    KEEPALIVED,
                    "-n",
                    "-l",
                    "-D",
                    "-f",
                    &c,
                    "-p",
                    pid.to_str().unwrap(),
                    "-r",
                    vrrp.to_str().unwrap(),
                    "-c",
                    chk.to_str().unwrap(),
                ];
                let proc = lab.spawn(node, kind.label(), &argv);
                Daemon {
                    kind,
                    node: node.clone(),
                    proc,
                    conf: conf_path,
                    vrrp_pidfile: Some(vrrp),
                    api_socket: None,
                }
            }
            Kind::Lbd => {
                let bin = lbd_path();
                let sock = lab.path(&format!("{tag}.sock"));
                let mut argv = vec![
                    bin.to_str().unwrap(),
                    "-f",
                    &c,
                    "--api-socket",
                    sock.to_str().unwrap(),
                    // Tests read the log; a host with journald must not take it.
                    "--log-target",
                    "stderr",
                ];
                argv.extend_from_slice(extra);
                // Debug level: hostile tests read `drop iface=.. vrid=.. reason=..` lines.
                // No plugin directory: the bundled plugins are the ones
                // compiled into lbd, as on a node where only the binary is
                // installed.
                let env = [("RUST_LOG", "debug")];
                let proc = lab.spawn_env(node, kind.label(), &argv, &env);
                Daemon {
                    kind,
                    node: node.clone(),
                    proc,
                    conf: conf_path,
                    vrrp_pidfile: None,
                    api_socket: Some(sock),
                }
            }
        }
    }

    /// SIGKILL every process of the daemon (keepalived's children too).
    pub fn kill(&self, lab: &Lab) {
        self.proc.kill();
        lab.reap(&self.proc);
    }

    /// SIGTERM: graceful stop (a master sends priority 0 first).
    pub fn term(&self) {
        // keepalived's parent forwards SIGTERM to its children; signal only it.
        // SAFETY: kill(2) of our own child.
        unsafe {
            libc::kill(self.proc.pid, libc::SIGTERM);
        }
    }

    /// The pid whose RSS counts: keepalived's VRRP child, lbd itself.
    pub fn vrrp_pid(&self) -> Option<i32> {
        match &self.vrrp_pidfile {
            Some(f) => fs::read_to_string(f).ok()?.trim().parse().ok(),
            None => Some(self.proc.pid),
        }
    }

    pub fn log(&self) -> String {
        self.proc.log_text()
    }
}

/// The bundled plugins of this source tree.
pub fn plugin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins")
}

/// VmRSS of a process, in KiB.
pub fn rss_kib(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let l = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}
