//! Plugins in the namespace lab: the proxy pair (a VIP that follows the
//! node whose HAProxy is alive, tracked by the `process` plugin or by a
//! keepalived `vrrp_script`), notify hooks in order with keepalived's
//! arguments, containment of hostile plugins while VRRP keeps its timing,
//! and plugin loading (override, refused files). lbd on every node.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lbd_tests::daemon::{global_defs, plugin_dir};
use lbd_tests::scenario::{expect_holder, ELECTION};
use lbd_tests::tshark::Capture;
use lbd_tests::{http, lab_for, wait_until, Daemon, Kind, Lab, Node, Proc, VIP4};

const LBD: [Kind; 1] = [Kind::Lbd];

/// HAProxy under a per-node name: the lab's namespaces share one process
/// table, so a check for "haproxy" on one node would see the other's.
struct Proxy {
    bin: PathBuf,
    conf: PathBuf,
    name: String,
}

impl Proxy {
    fn new(lab: &Lab, node: &Node, backend: &str) -> Proxy {
        let name = format!("haproxy-{}", node.name);
        let bin = lab.path(&name);
        fs::copy("/usr/sbin/haproxy", &bin).unwrap();
        let conf = lab.path(&format!("{name}.cfg"));
        http::haproxy_config(lab, node, &conf, backend);
        Proxy { bin, conf, name }
    }

    fn start(&self, lab: &Lab, node: &Node) -> Proc {
        let p = lab.spawn(
            node,
            &self.name,
            &[
                self.bin.to_str().unwrap(),
                "-db",
                "-f",
                self.conf.to_str().unwrap(),
            ],
        );
        let name = self.name.clone();
        assert!(
            wait_until(Duration::from_secs(20), || {
                pids_named(&name) > 0 && p.alive()
            }),
            "{} did not start: {}",
            self.name,
            p.log_text()
        );
        p
    }
}

/// How many processes have `comm` equal to `name`.
fn pids_named(name: &str) -> usize {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim_end() == name))
        .count()
}

fn instance(prio: u8, track: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
         priority {prio}\n    advert_int 1\n    virtual_ipaddress {{\n        {VIP4}/24\n    }}\n    \
         track_script {{\n        {track}\n    }}\n}}\n"
    )
}

/// The proxy pair: a (priority 101) and b (100) each track their own
/// HAProxy with weight 2, so a leads while its proxy lives (103 > 102),
/// b takes over when it dies (101 < 102), and a takes back when it returns.
fn proxy_pair(test: &str, conf: impl Fn(&Node, u8, &Proxy) -> String) {
    let lab = lab_for(test, &LBD);
    let (a, b, client, web) = (
        lab.node("a"),
        lab.node("b"),
        lab.host("client"),
        lab.host("web"),
    );
    let _web = http::serve(&lab, &web, "web", "0.0.0.0", 8080);
    let (pa, pb) = (
        Proxy::new(&lab, &a, &web.ip4(0)),
        Proxy::new(&lab, &b, &web.ip4(0)),
    );
    let ha = pa.start(&lab, &a);
    let _hb = pb.start(&lab, &b);
    let da = Daemon::start(&lab, Kind::Lbd, &a, &conf(&a, 101, &pa));
    let _db = Daemon::start(&lab, Kind::Lbd, &b, &conf(&b, 100, &pb));
    let nodes = [&a, &b];
    expect_holder(&lab, &nodes, &a, "both proxies alive");
    assert!(
        wait_until(ELECTION, || http::get(&lab, &client, VIP4, 80).as_deref()
            == Some("web")),
        "client is not served through a's HAProxy"
    );

    ha.kill();
    lab.reap(&ha);
    expect_holder(&lab, &nodes, &b, "a's HAProxy stopped");
    assert!(
        wait_until(ELECTION, || http::get(&lab, &client, VIP4, 80).as_deref()
            == Some("web")),
        "client is not served through b's HAProxy"
    );
    assert!(
        da.log().contains("VRRP_Script(chk_haproxy) failed"),
        "a did not log the failed script: {}",
        da.log()
    );

    let _ha = pa.start(&lab, &a);
    expect_holder(&lab, &nodes, &a, "a's HAProxy back (failback)");
    assert!(da.log().contains("VRRP_Script(chk_haproxy) succeeded"));
}

/// lbd's own configuration: the bundled `process` plugin.
#[test]
fn proxy_pair_process_plugin() {
    proxy_pair("proxy_pair_process_plugin", |node, prio, proxy| {
        format!(
            "[global]\nrouter_id = \"{}\"\n\n[[track_script]]\nname = \"chk_haproxy\"\n\
             plugin = \"process\"\ninterval = \"1s\"\nweight = 2\noptions = {{ name = \"{}\" }}\n\n\
             [[vrrp.instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = {prio}\n\
             advert_int = \"1s\"\nvips = [\"{VIP4}/24\"]\n\
             track_script = [{{ name = \"chk_haproxy\" }}]\n",
            node.name, proxy.name
        )
    });
}

/// The keepalived.conf of such pairs, unchanged: `killall -0` as a vrrp_script.
#[test]
fn proxy_pair_keepalived_script() {
    proxy_pair("proxy_pair_keepalived_script", |node, prio, proxy| {
        format!(
            "{}vrrp_script chk_haproxy {{\n    script \"/usr/bin/killall -0 {}\"\n    interval 1\n    \
             weight 2\n}}\n\n{}",
            global_defs(&node.name),
            proxy.name,
            instance(prio, "chk_haproxy")
        )
    });
}

/// A notify script that appends its arguments to a file, slowly, so
/// events queue up behind it.
fn notify_script(lab: &Lab, name: &str, delay: &str) -> (PathBuf, PathBuf) {
    let out = lab.path(&format!("{name}.out"));
    let script = lab.path(&format!("{name}.sh"));
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nsleep {delay}\necho \"$*\" >> {}\n",
            out.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    (script, out)
}

/// Instance and group transitions, in the order lbd logged them, as
/// keepalived's notify arguments would name them.
fn logged_transitions(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| {
            let rest = l.split("VRRP_Instance(").nth(1)?;
            let (name, rest) = rest.split_once(") ")?;
            let to = rest.split(" -> ").nth(1)?.split_whitespace().next()?;
            let prio = rest.rsplit("priority ").next()?.trim();
            Some(format!("INSTANCE {name} {} {prio}", to.to_uppercase()))
        })
        .filter(|l| !l.contains(" INITIALIZE "))
        .collect()
}

/// A burst of transitions (a tracked interface flapped ten times) reaches
/// the notify script in the order it happened, with keepalived's
/// `notify` arguments, although the script is slower than the burst.
#[test]
fn notify_order_and_arguments() {
    let t = "notify_order_and_arguments";
    let lab = lab_for(t, &LBD);
    let a = lab.node("a");
    // No dummy driver on every kernel: a veth pair, its far end kept up.
    lab.exec_ok(
        &a,
        &[
            "ip", "link", "add", "trk0", "type", "veth", "peer", "name", "trk1",
        ],
    );
    lab.exec_ok(&a, &["ip", "link", "set", "trk1", "up"]);
    lab.exec_ok(&a, &["ip", "link", "set", "trk0", "up"]);
    let (all, all_out) = notify_script(&lab, "notify", "0.05");
    let (master, master_out) = notify_script(&lab, "notify-master", "0");
    let conf = format!(
        "{}vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
         priority 100\n    version 3\n    advert_int 0.1\n    virtual_ipaddress {{\n        {VIP4}/24\n    }}\n    \
         track_interface {{\n        trk0\n    }}\n    notify \"{}\"\n    notify_master \"{}\"\n}}\n",
        global_defs("a"),
        all.display(),
        master.display()
    );
    let d = Daemon::start(&lab, Kind::Lbd, &a, &conf);
    assert!(
        wait_until(ELECTION, || lab.has_addr(&a, "eth0", VIP4)),
        "a never became master: {}",
        d.log()
    );
    for _ in 0..10 {
        lab.exec_ok(&a, &["ip", "link", "set", "trk0", "down"]);
        let faulted = wait_until(ELECTION, || !lab.has_addr(&a, "eth0", VIP4));
        assert!(faulted, "no fault on trk0 down: {}", d.log());
        lab.exec_ok(&a, &["ip", "link", "set", "trk0", "up"]);
        let back = wait_until(ELECTION, || lab.has_addr(&a, "eth0", VIP4));
        assert!(back, "no master after trk0 up: {}", d.log());
    }
    let want = logged_transitions(&d.log());
    // MASTER, then per flap FAULT, BACKUP, MASTER: at least 31 events.
    assert!(want.len() >= 31, "too few transitions logged: {want:?}");
    let read = |p: &Path| -> Vec<String> {
        fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let done = wait_until(Duration::from_secs(30), || {
        read(&all_out).len() >= want.len()
    });
    assert!(
        done,
        "notify got {} of {} events",
        read(&all_out).len(),
        want.len()
    );
    assert_eq!(
        read(&all_out),
        want,
        "notify events out of order or malformed"
    );
    // notify_master: no arguments, once per MASTER transition.
    let masters = want.iter().filter(|l| l.contains(" MASTER ")).count();
    assert!(wait_until(Duration::from_secs(10), || read(&master_out)
        .len()
        == masters));
    assert!(read(&master_out).iter().all(String::is_empty));
}

/// Hostile plugins beside a well-behaved one on the VRRP master: each is
/// stopped and reported by name, the good script keeps its schedule, and
/// adverts keep their interval (the largest gap is printed).
#[test]
fn plugin_containment() {
    let t = "plugin_containment";
    let lab = lab_for(t, &LBD);
    let (a, b) = (lab.node("a"), lab.node("b"));
    let dir = lab.path("plugins");
    fs::create_dir_all(&dir).unwrap();
    let bad = [
        ("spin", "while true do end"),
        (
            "spin_pcall",
            "while true do pcall(function() while true do end end) end",
        ),
        (
            "spin_coroutine",
            "local co = coroutine.wrap(function() while true do end end) co()",
        ),
        (
            "hog",
            "local t = {} local s = string.rep('x', 1 << 20) while true do t[#t + 1] = s .. #t end",
        ),
        ("raises", "error('broken on purpose')"),
    ];
    let mut scripts = String::new();
    let mut refs = String::new();
    for (name, body) in bad {
        fs::write(
            dir.join(format!("{name}.lua")),
            format!(
                "lb.check(\"{name}\", {{ run = function(target, opt)\n  {body}\n  return true\nend }})\n"
            ),
        )
        .unwrap();
        scripts += &format!(
            "[[track_script]]\nname = \"{name}\"\nplugin = \"{name}\"\ninterval = \"1s\"\nweight = 1\n\n"
        );
        refs += &format!("{{ name = \"{name}\" }}, ");
    }
    fs::write(
        dir.join("good.lua"),
        "lb.check(\"good\", { run = function(target, opt)\n  lb.sleep(0.01)\n  return true, \"tick\"\nend })\n",
    )
    .unwrap();
    scripts += "[[track_script]]\nname = \"good\"\nplugin = \"good\"\ninterval = \"200ms\"\nweight = 1\n\n";
    refs += "{ name = \"good\" }";
    let conf = format!(
        "[global]\nrouter_id = \"a\"\nplugin_dirs = [\"{}\", \"{}\"]\n\n{scripts}\
         [[vrrp.instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = 200\n\
         version = 3\nadvert_int = \"100ms\"\nvips = [\"{VIP4}/24\"]\ntrack_script = [{refs}]\n",
        plugin_dir().display(),
        dir.display()
    );
    let d = Daemon::start(&lab, Kind::Lbd, &a, &conf);
    assert!(
        wait_until(ELECTION, || lab.has_addr(&a, "eth0", VIP4)),
        "a never became master: {}",
        d.log()
    );
    // Adverts seen by the neighbour while every bad plugin runs each second.
    let cap = Capture::start(
        &lab,
        &b,
        "eth0",
        "ip proto 112",
        100_000,
        Duration::from_secs(10),
    );
    cap.wait(&lab, Duration::from_secs(30));
    let times: Vec<f64> = cap
        .fields(&["frame.time_epoch"], &[])
        .iter()
        .filter_map(|f| f.first()?.parse().ok())
        .collect();
    assert!(
        times.len() > 50,
        "too few adverts captured: {}",
        times.len()
    );
    let gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    println!(
        "plugin_containment: {} adverts at 100 ms, largest gap {:.1} ms",
        times.len(),
        gap * 1000.0
    );
    // A blocked VRRP loop would show gaps of seconds; the bench reports the figure.
    assert!(gap < 0.3, "advert gap {:.3} s while plugins misbehave", gap);
    let log = d.log();
    for (name, reason) in [
        ("spin", "cpu"),
        ("spin_pcall", "cpu"),
        ("spin_coroutine", "cpu"),
        ("hog", "memory"),
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("plugin {name} stopped")) && l.contains(reason)),
            "{name} was not stopped for {reason}"
        );
    }
    assert!(
        log.contains("broken on purpose"),
        "the raising plugin's error is not reported"
    );
    // The good script ran every 200 ms all along: about 50 runs in 10 s.
    let good_runs = log
        .lines()
        .filter(|l| l.contains("track script good: ok"))
        .count();
    assert!(good_runs >= 40, "good script ran only {good_runs} times");
    assert!(lab.has_addr(&a, "eth0", VIP4), "a lost mastership");
}

/// Loading: an operator file overrides the bundled plugin of the same
/// name; a group-writable file and a file with a syntax error are refused
/// with their path (and line), the rest loads.
#[test]
fn plugin_loading() {
    let t = "plugin_loading";
    let lab = lab_for(t, &LBD);
    let a = lab.node("a");
    let dir = lab.path("plugins");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("process.lua"),
        "lb.check(\"process\", { run = function(target, opt)\n  return true, \"operator override\"\nend })\n",
    )
    .unwrap();
    let writable = dir.join("writable.lua");
    fs::write(
        &writable,
        "lb.check(\"writable\", { run = function() return true end })\n",
    )
    .unwrap();
    fs::set_permissions(&writable, fs::Permissions::from_mode(0o664)).unwrap();
    fs::write(
        dir.join("broken.lua"),
        "-- line 1\n\nlb.check(\"broken\", {\n",
    )
    .unwrap();
    let conf = format!(
        "[global]\nrouter_id = \"a\"\nplugin_dirs = [\"{}\", \"{}\"]\n\n\
         [[track_script]]\nname = \"chk\"\nplugin = \"process\"\ninterval = \"200ms\"\n\
         options = {{ name = \"no-such-process\" }}\n\n\
         [[vrrp.instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = 100\n\
         advert_int = \"1s\"\nvips = [\"{VIP4}/24\"]\ntrack_script = [{{ name = \"chk\" }}]\n",
        plugin_dir().display(),
        dir.display()
    );
    let d = Daemon::start(&lab, Kind::Lbd, &a, &conf);
    // The override answers OK for a process that does not exist: weight 0
    // would fault the instance otherwise.
    assert!(
        wait_until(ELECTION, || d.log().contains("operator override")),
        "override not used: {}",
        d.log()
    );
    assert!(wait_until(ELECTION, || lab.has_addr(&a, "eth0", VIP4)));
    let log = d.log();
    assert!(log.contains("overrides"), "override not reported");
    let w = writable.display().to_string();
    assert!(
        log.lines()
            .any(|l| l.contains(&w) && l.contains("writable")),
        "group-writable file not refused: {log}"
    );
    let broken = format!("{}:", dir.join("broken.lua").display());
    assert!(
        log.lines()
            .any(|l| l.contains(&broken) && l.contains("refused")),
        "syntax error not reported with file:line: {log}"
    );
}
