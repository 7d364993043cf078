//! lbd as a service: the sd_notify(3) protocol seen from a real AF_UNIX
//! datagram socket (what systemd listens on), and logs read back from a
//! real systemd-journald run by the test in a mount namespace of its own.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lbd_tests::daemon::{global_defs, lbd_path};
use lbd_tests::{lab_for, wait_until, Daemon, Instance, Kind, Lab, Node, Proc};

/// Datagrams received on a notify socket, with when they arrived.
struct NotifySocket {
    path: PathBuf,
    got: Arc<Mutex<Vec<(Instant, String)>>>,
    stop: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl NotifySocket {
    /// Under /tmp: sun_path is short (108 bytes) and lab paths may not be.
    fn bind(test: &str) -> NotifySocket {
        let path = std::env::temp_dir().join(format!("lbd-{test}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (got.clone(), stop.clone());
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while !s.load(Ordering::Relaxed) {
                if let Ok(n) = sock.recv(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    g.lock().unwrap().push((Instant::now(), text));
                }
            }
        });
        NotifySocket {
            path,
            got,
            stop,
            reader: Some(reader),
        }
    }

    fn messages(&self) -> Vec<(Instant, String)> {
        self.got.lock().unwrap().clone()
    }

    /// Index of the first message at or after `from` with a line `line`.
    fn find(&self, from: usize, line: &str) -> Option<usize> {
        self.messages()
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, (_, m))| m.lines().any(|l| l == line))
            .map(|(i, _)| i)
    }

    fn count(&self, line: &str) -> usize {
        self.messages()
            .iter()
            .filter(|(_, m)| m.lines().any(|l| l == line))
            .count()
    }

    fn dump(&self) -> String {
        let msgs = self.messages();
        let t0 = msgs.first().map(|(t, _)| *t);
        msgs.iter()
            .map(|(t, m)| {
                let at = t0.map_or(0, |t0| t.duration_since(t0).as_millis());
                format!("+{at}ms {}", m.trim_end().replace('\n', " | "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// CLOCK_MONOTONIC in µs, the clock of sd_notify's MONOTONIC_USEC (one
/// clock for every network namespace).
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

fn lbd_argv(lab: &Lab, conf: &Path, tag: &str, target: &str) -> Vec<String> {
    vec![
        lbd_path().to_str().unwrap().to_owned(),
        "-f".into(),
        conf.to_str().unwrap().to_owned(),
        "--api-socket".into(),
        lab.path(&format!("{tag}.sock"))
            .to_str()
            .unwrap()
            .to_owned(),
        "--log-target".into(),
        target.into(),
    ]
}

const WATCHDOG_USEC: u64 = 400_000;

/// READY once the first decisions are taken, STATUS with each instance's
/// state, WATCHDOG pings at half the period, RELOADING (with a
/// MONOTONIC_USEC taken after the SIGHUP) then READY around a reload,
/// STOPPING on SIGTERM, in that order. The loop stalled by the test hook
/// sends no pings; released, it pings again.
#[test]
fn sd_notify_protocol() {
    let test = "svc-notify";
    let lab = lab_for(test, &[Kind::Lbd, Kind::Keepalived]);
    let (a, b) = (lab.node("a"), lab.node("b"));
    // VI_1 alone (lbd becomes master), VI_2 against a keepalived at 200.
    let vi2 = |prio| Instance {
        name: "VI_2".into(),
        vrid: 52,
        vips: vec!["10.0.0.102/24".into()],
        ..Instance::v2(prio)
    };
    let conf = lab.path("a-lbd.conf");
    std::fs::write(
        &conf,
        format!(
            "{}{}{}",
            global_defs("a"),
            Instance::v2(150).block(),
            vi2(100).block()
        ),
    )
    .unwrap();
    let _kb = Daemon::start(&lab, Kind::Keepalived, &b, &vi2(200).render("b"));
    let sock = NotifySocket::bind(test);
    let stall = lab.path("stall");
    let argv = lbd_argv(&lab, &conf, "a-lbd", "stderr");
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let usec = WATCHDOG_USEC.to_string();
    let env = [
        ("NOTIFY_SOCKET", sock.path.to_str().unwrap()),
        ("WATCHDOG_USEC", usec.as_str()),
        ("LBD_TEST_STALL_FILE", stall.to_str().unwrap()),
        ("RUST_LOG", "info"),
    ];
    let p = lab.spawn_env(&a, "lbd", &argv, &env);
    let ctx = |p: &Proc| {
        format!(
            "notify messages:\n{}\nlbd log:\n{}",
            sock.dump(),
            p.log_text()
        )
    };

    assert!(
        wait_until(Duration::from_secs(10), || sock
            .find(0, "READY=1")
            .is_some()),
        "no READY=1; {}",
        ctx(&p)
    );
    let ready = sock.find(0, "READY=1").unwrap();
    let want = "STATUS=VI_1 MASTER, VI_2 BACKUP";
    assert!(
        wait_until(Duration::from_secs(15), || sock.find(0, want).is_some()),
        "no {want}; {}",
        ctx(&p)
    );
    // Startup's STATUS is sent before READY; it reflects the first decisions.
    assert!(
        sock.messages()[..ready]
            .iter()
            .any(|(_, m)| m.starts_with("STATUS=VI_1 ")),
        "no STATUS before READY; {}",
        ctx(&p)
    );
    // Pings at WATCHDOG_USEC / 2: five of them take a second.
    assert!(
        wait_until(Duration::from_secs(5), || sock.count("WATCHDOG=1") >= 5),
        "too few WATCHDOG=1; {}",
        ctx(&p)
    );

    // SIGHUP: RELOADING=1 with MONOTONIC_USEC after the signal, then READY=1.
    let before_hup = monotonic_usec();
    let from = sock.messages().len();
    p.signal(libc::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(10), || sock
            .find(from, "RELOADING=1")
            .is_some_and(|r| sock.find(r + 1, "READY=1").is_some())),
        "no RELOADING=1 then READY=1 after SIGHUP; {}",
        ctx(&p)
    );
    let reloading = sock.find(from, "RELOADING=1").unwrap();
    let msg = sock.messages()[reloading].1.clone();
    let mono: u64 = msg
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("RELOADING without MONOTONIC_USEC: {msg:?}"))
        .parse()
        .unwrap();
    assert!(
        mono >= before_hup && mono <= monotonic_usec(),
        "MONOTONIC_USEC={mono} is not between the SIGHUP ({before_hup}) and now"
    );
    assert!(p.log_text().contains("reloaded "), "{}", ctx(&p));

    // The test hook stalls the loop: pings stop while it is stalled.
    std::fs::write(&stall, "").unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || p
            .log_text()
            .contains("event loop stalled")),
        "the loop did not stall; {}",
        ctx(&p)
    );
    let stalled_at = Instant::now();
    let pings_at_stall = sock.count("WATCHDOG=1");
    // An observation window, not synchronisation: five ping periods of
    // silence (a running loop pings five times in it).
    let window = Duration::from_micros(WATCHDOG_USEC / 2) * 5;
    std::thread::sleep(window);
    let during: Vec<_> = sock
        .messages()
        .into_iter()
        .filter(|(t, m)| *t > stalled_at && m.contains("WATCHDOG=1"))
        .collect();
    assert!(
        during.is_empty() && sock.count("WATCHDOG=1") == pings_at_stall,
        "{} WATCHDOG=1 while the loop was stalled; {}",
        during.len(),
        ctx(&p)
    );
    std::fs::remove_file(&stall).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || sock.count("WATCHDOG=1")
            > pings_at_stall),
        "pings did not resume after the stall; {}",
        ctx(&p)
    );

    // SIGTERM: STOPPING=1, then nothing more from the loop.
    p.signal(libc::SIGTERM);
    assert!(
        lab.wait_exit(&p, Duration::from_secs(15))
            .is_some_and(|s| s.success()),
        "lbd did not exit cleanly on SIGTERM; {}",
        ctx(&p)
    );
    let stopping = sock
        .find(0, "STOPPING=1")
        .unwrap_or_else(|| panic!("no STOPPING=1; {}", ctx(&p)));
    let status = sock.find(0, want).unwrap();
    let first_ping = sock.find(0, "WATCHDOG=1").unwrap();
    let ready2 = sock.find(reloading + 1, "READY=1").unwrap();
    assert!(
        ready < first_ping
            && status < reloading
            && reloading < ready2
            && ready2 < stopping
            && sock.find(stopping + 1, "WATCHDOG=1").is_none(),
        "out of order: READY {ready}, first WATCHDOG {first_ping}, {want} {status}, \
         RELOADING {reloading}, READY {ready2}, STOPPING {stopping}; {}",
        ctx(&p)
    );
}

/// systemd-journald in a mount namespace of its own: a tmpfs on /run (its
/// sockets), its runtime journal bound to `dir`, /var/log/journal hidden
/// (no flush into the host's journal), and a cgroup2 mount (journald exits
/// without a cgroup root; `ip netns exec` gave the node a fresh /sys
/// without one). Returns journald's process.
fn start_journald(lab: &Lab, node: &Node, dir: &Path) -> Proc {
    let var = dir.join("var");
    let run = dir.join("run");
    std::fs::create_dir_all(&var).unwrap();
    std::fs::create_dir_all(&run).unwrap();
    let script = format!(
        "set -e; mount -t tmpfs tmpfs /run; mount -t cgroup2 cgroup2 /sys/fs/cgroup; mkdir -p /run/systemd/journal /run/log/journal; \
         mount --bind '{}' /run/log/journal; \
         if [ -d /var/log/journal ]; then mount --bind '{}' /var/log/journal; fi; \
         exec /lib/systemd/systemd-journald",
        run.display(),
        var.display()
    );
    let p = lab.spawn(
        node,
        "journald",
        &[
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ],
    );
    // /proc/PID/root resolves paths in the process's own mount namespace.
    let socket = PathBuf::from(format!("/proc/{}/root/run/systemd/journal/socket", p.pid));
    assert!(
        wait_until(Duration::from_secs(10), || socket.exists()),
        "journald did not open its socket:\n{}",
        p.log_text()
    );
    p
}

/// The journal's entries (journalctl's JSON, one object a line).
fn journal(dir: &Path) -> Vec<serde_json::Value> {
    let out = Command::new("journalctl")
        .args([
            "-D",
            dir.join("run").to_str().unwrap(),
            "-o",
            "json",
            "--no-pager",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn field<'a>(e: &'a serde_json::Value, k: &str) -> Option<&'a str> {
    e.get(k).and_then(|v| v.as_str())
}

/// `--log-target journald` against a real journald: a transition's entry
/// carries LBD_INSTANCE, LBD_VRID and LBD_STATE next to the message text
/// stderr would have had, a tracked script's carries LBD_PLUGIN; nothing
/// of it goes to stderr.
#[test]
fn journald_fields() {
    let test = "svc-journald";
    let lab = lab_for(test, &[Kind::Lbd]);
    let a = lab.node("a");
    let dir = lab.path("journal");
    let jd = start_journald(&lab, &a, &dir);
    let inst = Instance {
        extra: vec!["track_script {\n        chk\n    }".into()],
        ..Instance::v2(150)
    };
    let conf = lab.path("a-lbd.conf");
    std::fs::write(
        &conf,
        format!(
            "{}vrrp_script chk {{\n    script \"/usr/bin/test -e {}\"\n    interval 1\n    \
             weight -10\n    rise 1\n    fall 1\n}}\n\n{}",
            global_defs("a"),
            lab.path("never").display(),
            inst.block()
        ),
    )
    .unwrap();
    let mut argv = vec![
        "nsenter".to_owned(),
        "-t".into(),
        jd.pid.to_string(),
        "-m".into(),
        "--".into(),
    ];
    argv.extend(lbd_argv(&lab, &conf, "a-lbd", "journald"));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let p = lab.spawn_env(&a, "lbd", &argv, &[("RUST_LOG", "info")]);
    let pid = p.pid.to_string();
    let ours = |e: &serde_json::Value| field(e, "_PID") == Some(pid.as_str());
    let master = |e: &serde_json::Value| {
        ours(e)
            && field(e, "MESSAGE")
                .is_some_and(|m| m.starts_with("VRRP_Instance(VI_1) Backup -> Master"))
    };
    let script = |e: &serde_json::Value| {
        ours(e) && field(e, "MESSAGE").is_some_and(|m| m.starts_with("VRRP_Script(chk) failed"))
    };
    assert!(
        wait_until(Duration::from_secs(20), || {
            let j = journal(&dir);
            j.iter().any(master) && j.iter().any(script)
        }),
        "no Backup -> Master and script entries from lbd (pid {pid}) in the journal:\n{}\nlbd stderr:\n{}\njournald:\n{}",
        journal(&dir)
            .iter()
            .filter(|e| ours(e))
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        p.log_text(),
        jd.log_text()
    );
    let j = journal(&dir);
    let e = j.iter().find(|e| master(e)).unwrap();
    assert_eq!(field(e, "LBD_INSTANCE"), Some("VI_1"), "{e}");
    assert_eq!(field(e, "LBD_VRID"), Some("51"), "{e}");
    assert_eq!(field(e, "LBD_STATE"), Some("MASTER"), "{e}");
    assert_eq!(field(e, "SYSLOG_IDENTIFIER"), Some("lbd"), "{e}");
    // info maps to the journal's notice (5).
    assert_eq!(field(e, "PRIORITY"), Some("5"), "{e}");
    let backup = j
        .iter()
        .find(|e| {
            ours(e)
                && field(e, "MESSAGE")
                    .is_some_and(|m| m.starts_with("VRRP_Instance(VI_1) Initialize -> Backup"))
        })
        .unwrap_or_else(|| panic!("no Initialize -> Backup entry"));
    assert_eq!(field(backup, "LBD_STATE"), Some("BACKUP"), "{backup}");
    let s = j.iter().find(|e| script(e)).unwrap();
    assert!(field(s, "LBD_PLUGIN").is_some(), "{s}");
    assert_eq!(field(s, "LBD_STATE"), Some("FAILED"), "{s}");
    // warn maps to warning (4).
    assert_eq!(field(s, "PRIORITY"), Some("4"), "{s}");
    assert!(
        !p.log_text().contains("VRRP_Instance("),
        "journald target also wrote to stderr:\n{}",
        p.log_text()
    );
    p.signal(libc::SIGTERM);
    assert!(lab.wait_exit(&p, Duration::from_secs(15)).is_some());
}

/// `--log-target journald` where no journald listens: one line on stderr
/// saying so, and the logs go to stderr instead.
#[test]
fn journald_missing_falls_back_to_stderr() {
    let test = "svc-nojournal";
    let lab = lab_for(test, &[Kind::Lbd]);
    let a = lab.node("a");
    let conf = lab.path("a-lbd.conf");
    std::fs::write(&conf, Instance::v2(150).render("a")).unwrap();
    let argv = lbd_argv(&lab, &conf, "a-lbd", "journald").join("' '");
    // A /run of its own: no journald socket, whatever the host runs.
    let script = format!("mount -t tmpfs tmpfs /run && exec '{argv}'");
    let p = lab.spawn_env(
        &a,
        "lbd",
        &[
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ],
        &[("RUST_LOG", "info")],
    );
    assert!(
        wait_until(Duration::from_secs(15), || p
            .log_text()
            .contains("VRRP_Instance(VI_1) Backup -> Master")),
        "no transition logged on stderr:\n{}",
        p.log_text()
    );
    let log = p.log_text();
    let first = log.lines().next().unwrap_or_default();
    assert!(
        first.contains("journald unavailable") && first.contains("/run/systemd/journal/socket"),
        "want the fallback said first, got:\n{log}"
    );
}
