//! lbd as PID 1 of a PID namespace in each node, as in a container
//! (`unshare --pid --fork --mount-proc sh -c "haproxy -D ...; exec lbd"`):
//! orphans re-parented to it are reaped (a dead HAProxy leaves no zombie
//! that `killall -0 haproxy` would still find, so the VIP moves), while
//! its own children (tracked scripts, MISC_CHECK) keep their real exit
//! codes under a storm of daemonising orphans. Lab tier; the MISC_CHECK
//! case needs IPVS and runs in the VM tier.
#![cfg(any(feature = "lab", feature = "vm"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::time::Duration;

use lbd_tests::pidns::{orphan_storm, script, Pid1};
use lbd_tests::wait_until;

/// Lines of lbd's log that report a run of `what` ("track script chk_ok:").
fn results<'a>(log: &'a str, what: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(what)).collect()
}

/// Rounds of the orphan storm so far.
fn rounds(progress: &Path) -> u32 {
    fs::read_to_string(progress)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Every zombie of the namespace gone (the storm's included), and no
/// orphan left running.
fn assert_all_reaped(p: &Pid1, what: &str) {
    assert!(
        wait_until(Duration::from_secs(30), || p.zombies().is_empty()
            && p.live_named("sleep").is_empty()),
        "{what}: zombies {:?}, sleeps {:?}\n{}",
        p.zombies(),
        p.live_named("sleep"),
        p.log()
    );
}

#[cfg(feature = "lab")]
mod lab {
    use std::time::Duration;

    use lbd_tests::daemon::global_defs;
    use lbd_tests::scenario::{expect_holder, ELECTION};
    use lbd_tests::tshark::Capture;
    use lbd_tests::{http, lab_for, wait_until, Kind, Lab, Node, VIP4};

    use super::*;

    const HAPROXY: &str = "/usr/sbin/haproxy";

    /// The container recipe's keepalived.conf: HAProxy tracked by
    /// `busybox killall -0`, weight 2, interval 2.
    fn keepalived_conf(node: &Node, prio: u8) -> String {
        format!(
            "{}vrrp_script chk_haproxy {{\n    script \"/bin/busybox killall -0 haproxy\"\n    \
             interval 2\n    weight 2\n}}\n\n\
             vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
             priority {prio}\n    advert_int 1\n    virtual_ipaddress {{\n        {VIP4}/24\n    }}\n    \
             track_script {{\n        chk_haproxy\n    }}\n}}\n",
            global_defs(&node.name)
        )
    }

    fn haproxy_conf(lab: &Lab, node: &Node, backend: &str) -> String {
        let conf = lab.path(&format!("haproxy-{}.cfg", node.name));
        http::haproxy_config(lab, node, &conf, backend);
        conf.to_str().unwrap().to_owned()
    }

    fn haproxy_up(p: &Pid1, what: &str) {
        assert!(
            wait_until(Duration::from_secs(20), || p.live_named("haproxy").len()
                == 1),
            "{what}: HAProxy not running in {}'s namespace: {:?}",
            p.daemon.node.name,
            p.processes()
        );
    }

    /// The proxy pair with lbd as PID 1 on both nodes (a: 11, b: 10; +2
    /// while HAProxy lives). HAProxy daemonises, so it is an orphan of lbd
    /// from the start; killed, it must be reaped for the check to fail.
    #[test]
    fn proxy_pair_pid1_reaps_dead_haproxy() {
        let lab = lab_for("proxy_pair_pid1", &[Kind::Lbd]);
        let (a, b, client, web) = (
            lab.node("a"),
            lab.node("b"),
            lab.host("client"),
            lab.host("web"),
        );
        let _web = http::serve(&lab, &web, "web", "0.0.0.0", 8080);
        let (ca, cb) = (
            haproxy_conf(&lab, &a, &web.ip4(0)),
            haproxy_conf(&lab, &b, &web.ip4(0)),
        );
        let pa = Pid1::start(
            &lab,
            &a,
            &keepalived_conf(&a, 11),
            &format!("{HAPROXY} -D -f {ca}"),
        );
        let pb = Pid1::start(
            &lab,
            &b,
            &keepalived_conf(&b, 10),
            &format!("{HAPROXY} -D -f {cb}"),
        );
        // a's adverts, seen by b, from well before the SIGTERM at the end.
        let cap = Capture::start(
            &lab,
            &b,
            "eth0",
            &format!("ip proto 112 and src host {}", a.ip4(0)),
            100_000,
            Duration::from_secs(300),
        );
        assert!(wait_until(Duration::from_secs(30), || cap
            .proc
            .log_text()
            .contains("Capture started")));
        haproxy_up(&pa, "a at start");
        haproxy_up(&pb, "b at start");
        let nodes = [&a, &b];
        expect_holder(&lab, &nodes, &a, "both proxies alive");
        assert!(
            wait_until(ELECTION, || http::get(&lab, &client, VIP4, 80).as_deref()
                == Some("web")),
            "client is not served through a's HAProxy"
        );

        // HAProxy dies on a: lbd reaps it, the script fails, b takes over.
        for pid in pa.live_named("haproxy") {
            // SAFETY: kill(2) of a process of this test's namespace.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        assert!(
            wait_until(Duration::from_secs(20), || pa
                .live_named("haproxy")
                .is_empty()
                && pa.zombies().is_empty()),
            "HAProxy left a zombie in a's namespace: {:?}\n{}",
            pa.zombies(),
            pa.log()
        );
        expect_holder(&lab, &nodes, &b, "a's HAProxy killed");
        assert!(
            wait_until(ELECTION, || http::get(&lab, &client, VIP4, 80).as_deref()
                == Some("web")),
            "client is not served through b's HAProxy"
        );
        let log = pa.log();
        assert!(
            log.contains("VRRP_Script(chk_haproxy) failed"),
            "a did not log the failed script: {log}"
        );
        assert!(
            log.lines()
                .any(|l| l.contains("reaped orphan") && l.contains("(haproxy): signal 9")),
            "a did not log reaping HAProxy: {log}"
        );

        // HAProxy started again inside a's namespace (as `docker exec`
        // would): daemonised, re-parented to lbd, and the VIP comes back.
        pa.exec_ok(&[HAPROXY, "-D", "-f", &ca]);
        haproxy_up(&pa, "a restarted");
        expect_holder(&lab, &nodes, &a, "a's HAProxy back (failback)");
        assert!(pa.log().contains("VRRP_Script(chk_haproxy) succeeded"));

        // SIGTERM: lbd's normal stop as PID 1: priority 0 advert, VIP
        // removed, exit 0.
        pa.term();
        let status = lab.wait_exit(pa.proc(), Duration::from_secs(30));
        assert!(
            status.is_some_and(|s| s.success()),
            "lbd as PID 1 did not exit 0 on SIGTERM: {status:?}\n{}",
            pa.log()
        );
        assert!(pa.log().contains("SIGTERM: stopping"));
        expect_holder(&lab, &nodes, &b, "a stopped");
        cap.wait(&lab, Duration::ZERO);
        let prios: Vec<String> = cap
            .fields(&["vrrp.prio"], &[])
            .into_iter()
            .filter_map(|f| f.into_iter().next())
            .collect();
        assert_eq!(
            prios.last().map(String::as_str),
            Some("0"),
            "a's last advert should be priority 0: {prios:?}"
        );
        assert!(
            prios.iter().any(|p| p == "13"),
            "a never advertised 13: {prios:?}"
        );
        drop(pb);
    }

    /// Tracked scripts report their real exit codes (0 and 3) while lbd is
    /// PID 1 and a storm of daemonising orphans is being reaped; every
    /// orphan ends reaped.
    #[test]
    fn pid1_scripts_keep_exit_codes_under_orphan_storm() {
        let lab = lab_for("pid1_scripts_storm", &[Kind::Lbd]);
        let a = lab.node("a");
        let ok = script(&lab, "ok.sh", "exit 0");
        let fail = script(&lab, "fail.sh", "exit 3");
        let (stop, progress) = (lab.path("storm.stop"), lab.path("storm.progress"));
        let track = |name: &str, prog: &Path| {
            format!(
                "[[track_script]]\nname = \"{name}\"\nplugin = \"exec\"\ninterval = \"100ms\"\n\
                 weight = 1\noptions = {{ argv = [\"{}\"] }}\n\n",
                prog.display()
            )
        };
        let conf = format!(
            "[global]\nrouter_id = \"a\"\n\n{}{}\
             [[vrrp.instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = 100\n\
             advert_int = \"1s\"\nvips = [\"{VIP4}/24\"]\n\
             track_script = [{{ name = \"chk_ok\" }}, {{ name = \"chk_fail\" }}]\n",
            track("chk_ok", &ok),
            track("chk_fail", &fail)
        );
        let p = Pid1::start(&lab, &a, &conf, &orphan_storm(&stop, &progress, 100_000));
        check_exit_codes_under_storm(
            &p,
            &stop,
            &progress,
            30,
            &[
                (
                    "track script chk_ok:",
                    "track script chk_ok: ok ",
                    ": exit 0",
                ),
                (
                    "track script chk_fail:",
                    "track script chk_fail: failed ",
                    ": exit 3",
                ),
            ],
        );
    }
}

/// While the storm runs: at least `min` results of each check, every one
/// with its real outcome and exit code. Then the storm stops and every
/// orphan ends reaped. `want`: (line marker, expected prefix, expected suffix).
fn check_exit_codes_under_storm(
    p: &Pid1,
    stop: &Path,
    progress: &Path,
    min: usize,
    want: &[(&str, &str, &str)],
) {
    assert!(
        wait_until(Duration::from_secs(30), || rounds(progress) > 20),
        "the orphan storm did not start: {}",
        p.log()
    );
    let from = p.log().len();
    let storm_start = rounds(progress);
    let enough = |log: &str| want.iter().all(|(m, _, _)| results(log, m).len() >= min);
    assert!(
        wait_until(Duration::from_secs(120), || enough(&p.log()[from..])),
        "too few check results during the storm: {}",
        p.log()
    );
    let log = p.log();
    let window = &log[from..];
    let storm_end = rounds(progress);
    fs::write(stop, "").unwrap();
    assert!(
        storm_end > storm_start + 20,
        "the storm stalled during the window ({storm_start} -> {storm_end} rounds)"
    );
    for (marker, prefix, suffix) in want {
        for l in results(window, marker) {
            let rest = &l[l.find(marker).unwrap()..];
            assert!(
                rest.starts_with(prefix) && rest.trim_end().ends_with(suffix),
                "wrong result while orphans were reaped (want {prefix}...{suffix}): {l}"
            );
        }
    }
    let reaped = results(window, "reaped orphan").len();
    assert!(reaped > 0, "no orphan reaped during the window: {window}");
    println!(
        "pid1 storm: {} rounds, {reaped} orphans reaped in the window, results: {:?}",
        storm_end - storm_start,
        want.iter()
            .map(|(m, _, _)| results(window, m).len())
            .collect::<Vec<_>>()
    );
    assert_all_reaped(p, "after the storm");
}

/// MISC_CHECK (needs IPVS: the VM tier) and a vrrp_script under the storm:
/// `misc_dynamic` turns exit 7 into weight 5, exit 1 into a down server,
/// so a stolen exit status would show in the kernel's IPVS table too.
#[cfg(feature = "vm")]
#[test]
fn pid1_misc_check_keeps_exit_codes_under_orphan_storm() {
    use lbd_tests::daemon::global_defs;
    use lbd_tests::lab::{require_vm, Lab};
    let test = "pid1_misc_check_storm";
    require_vm(test);
    let lab = Lab::new(test);
    let a = lab.node("a");
    // Real servers nobody connects to: MISC_CHECK runs a program only.
    let (w1, w2) = ("10.0.1.51", "10.0.1.52");
    let seven = script(&lab, "seven.sh", "exit 7");
    let one = script(&lab, "one.sh", "exit 1");
    let ok = script(&lab, "ok.sh", "exit 0");
    let (stop, progress) = (lab.path("storm.stop"), lab.path("storm.progress"));
    let rs = |ip: &str, prog: &Path| {
        format!(
            "  real_server {ip} 80 {{\n    weight 1\n    MISC_CHECK {{\n      misc_path \"{}\"\n      \
             misc_dynamic\n    }}\n  }}\n",
            prog.display()
        )
    };
    let conf = format!(
        "{}vrrp_script chk_ok {{\n    script \"{}\"\n    interval 1\n    weight 2\n}}\n\n\
         vrrp_instance VI_1 {{\n  interface eth0\n  virtual_router_id 81\n  priority 200\n  \
         advert_int 1\n  virtual_ipaddress {{\n    10.0.0.100/24\n  }}\n  \
         track_script {{\n    chk_ok\n  }}\n}}\n\
         virtual_server 10.0.0.100 80 {{\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  \
         protocol TCP\n{}{}}}\n",
        global_defs("a"),
        ok.display(),
        rs(w1, &seven),
        rs(w2, &one)
    );
    let p = Pid1::start(&lab, &a, &conf, &orphan_storm(&stop, &progress, 100_000));
    let dests = || {
        let out = p.exec_ok(&["ipvsadm", "-Ln"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                (w.first() == Some(&"->") && w.len() >= 4 && w[1] != "RemoteAddress:Port")
                    .then(|| format!("{} {}", w[1], w[3]))
            })
            .collect::<Vec<_>>()
    };
    let want = vec![format!("{w1}:80 5")];
    assert!(
        wait_until(Duration::from_secs(60), || dests() == want),
        "IPVS should hold {want:?}: {:?}\n{}",
        dests(),
        p.log()
    );
    check_exit_codes_under_storm(
        &p,
        &stop,
        &progress,
        15,
        &[
            (
                &format!("check exec on {w1}:80"),
                &format!("check exec on {w1}:80 of 10.0.0.100:80: ok "),
                ": exit 7, weight 5",
            ),
            (
                &format!("check exec on {w2}:80"),
                &format!("check exec on {w2}:80 of 10.0.0.100:80: failed "),
                ": exit 1",
            ),
            (
                "track script chk_ok:",
                "track script chk_ok: ok ",
                ": exit 0",
            ),
        ],
    );
    assert_eq!(dests(), want, "IPVS changed under the storm\n{}", p.log());
}
