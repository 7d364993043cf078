//! lbd as PID 1 of a PID namespace inside a node, as in a container:
//! `unshare --pid --fork --mount-proc`, a shell that starts what the
//! container starts first (a daemonising HAProxy), then `exec lbd`. Inside,
//! /proc is the namespace's own, so `killall` sees its processes only.

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::daemon::{lbd_path, Daemon, Kind};
use crate::lab::{run, run_quiet, Lab, Node, Proc};
use crate::wait_until;

/// An lbd that is PID 1 of its own PID namespace in `node`.
pub struct Pid1 {
    pub daemon: Daemon,
    /// lbd's pid as the host sees it.
    pub host_pid: i32,
    /// `pid:[inode]` of the namespace, to tell its processes apart in the host's /proc.
    ns: String,
}

/// State, ppid and comm of a host pid, from its stat line.
fn stat(pid: i32) -> Option<(char, i32, String)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.split_once(" (")?;
    let close = rest.rfind(')')?;
    let mut f = rest[close + 1..].split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((state, ppid, rest[..close].to_string()))
}

fn host_pids() -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

fn pid_ns(pid: i32) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

impl Pid1 {
    /// Starts `pre` (shell text, run by /bin/sh as the namespace's first
    /// process) and then execs lbd with `conf` (keepalived.conf, or TOML
    /// when it starts with `[`), logging at debug level.
    pub fn start(lab: &Lab, node: &Node, conf: &str, pre: &str) -> Pid1 {
        let tag = format!("{}-lbd", node.name);
        let ext = if conf.trim_start().starts_with('[') {
            "toml"
        } else {
            "conf"
        };
        let conf_path = lab.path(&format!("{tag}.{ext}"));
        fs::write(&conf_path, conf).unwrap();
        let sock = lab.path(&format!("{tag}.sock"));
        let bin = lbd_path();
        let script = format!("{pre}\nexec \"$0\" \"$@\"");
        let argv = [
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            "/bin/sh",
            "-c",
            &script,
            bin.to_str().unwrap(),
            "-f",
            conf_path.to_str().unwrap(),
            "--api-socket",
            sock.to_str().unwrap(),
        ];
        let proc = lab.spawn_env(node, "lbd", &argv, &[("RUST_LOG", "debug")]);
        // unshare's forked child is the namespace's PID 1: first the shell,
        // then (same pid) lbd once `pre` is done.
        let lbd = fs::canonicalize(&bin).unwrap();
        let mut host_pid = 0;
        let started = wait_until(Duration::from_secs(30), || {
            host_pid = host_pids()
                .into_iter()
                .find(|&p| {
                    stat(p).is_some_and(|(_, ppid, _)| ppid == proc.pid)
                        && fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|e| e == lbd)
                })
                .unwrap_or(0);
            host_pid != 0 || !proc.alive()
        });
        assert!(
            started && host_pid != 0,
            "lbd did not start as PID 1 in {}: {}",
            node.name,
            proc.log_text()
        );
        let status = fs::read_to_string(format!("/proc/{host_pid}/status")).unwrap_or_default();
        assert!(
            status
                .lines()
                .any(|l| l.starts_with("NSpid:") && l.split_whitespace().last() == Some("1")),
            "lbd is not PID 1 of its namespace: {status}"
        );
        Pid1 {
            daemon: Daemon {
                kind: Kind::Lbd,
                node: node.clone(),
                proc,
                conf: conf_path,
                vrrp_pidfile: None,
                api_socket: Some(sock),
            },
            ns: pid_ns(host_pid).unwrap(),
            host_pid,
        }
    }

    fn nsenter(&self, argv: &[&str]) -> Vec<String> {
        // The namespace's pids, mounts (its /proc) and network; nsenter forks
        // into the PID namespace, so what it starts is a process of it.
        let t = self.host_pid.to_string();
        let mut v: Vec<String> = ["nsenter", "-t", &t, "--pid", "--mount", "--net", "--"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(argv.iter().map(|s| s.to_string()));
        v
    }

    /// Run to completion inside the namespace (as `docker exec` would).
    pub fn exec(&self, argv: &[&str]) -> Output {
        let v = self.nsenter(argv);
        run_quiet(&v.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Like [`Pid1::exec`], panicking when it fails.
    pub fn exec_ok(&self, argv: &[&str]) -> Output {
        let v = self.nsenter(argv);
        run(&v.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Host pids of the namespace's processes with their state and comm.
    pub fn processes(&self) -> Vec<(i32, char, String)> {
        host_pids()
            .into_iter()
            .filter(|&p| pid_ns(p).as_deref() == Some(self.ns.as_str()))
            .filter_map(|p| stat(p).map(|(s, _, c)| (p, s, c)))
            .collect()
    }

    /// The namespace's zombies, as (host pid, comm).
    pub fn zombies(&self) -> Vec<(i32, String)> {
        self.processes()
            .into_iter()
            .filter(|(_, s, _)| *s == 'Z')
            .map(|(p, _, c)| (p, c))
            .collect()
    }

    /// Host pids of the namespace's live (not zombie) processes named `comm`.
    pub fn live_named(&self, comm: &str) -> Vec<i32> {
        self.processes()
            .into_iter()
            .filter(|(_, s, c)| *s != 'Z' && c == comm)
            .map(|(p, _, _)| p)
            .collect()
    }

    /// SIGTERM to lbd itself (unshare does not forward it).
    pub fn term(&self) {
        // SAFETY: kill(2) of a process this test started.
        unsafe {
            libc::kill(self.host_pid, libc::SIGTERM);
        }
    }

    pub fn log(&self) -> String {
        self.daemon.log()
    }

    pub fn proc(&self) -> &Proc {
        &self.daemon.proc
    }
}

/// A script file in the lab directory, executable.
pub fn script(lab: &Lab, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = lab.path(name);
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// Shell text for `pre`: in the background, until `stop` exists (at most
/// `max` rounds), a short-lived shell leaves a `sleep` behind (a
/// daemonising child, orphaned at once and re-parented to PID 1). Each
/// round is appended to `progress`.
pub fn orphan_storm(stop: &Path, progress: &Path, max: u32) -> String {
    format!(
        "(i=0; while [ ! -e {stop} ] && [ $i -lt {max} ]; do \
         /bin/sh -c 'sleep 0.0$(( $$ % 9 + 1 )) &'; i=$((i+1)); echo $i > {progress}; \
         sleep 0.01; done) </dev/null >/dev/null 2>&1 &",
        stop = stop.display(),
        progress = progress.display()
    )
}
