//! The static release binary (scripts/dist) in an empty chroot: a
//! directory holding only lbd and its configuration, no libc, no /bin, no
//! /proc, /dev, /etc or /run. lbd runs there in a lab namespace against a
//! keepalived backup: it wins the election, its tracked script (the
//! bundled exec plugin running `/lbd --check`, the one program there is)
//! moves the VIP away and back, the static lbctl reads its API socket, and
//! SIGTERM stops it with exit 0.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use lbd_tests::daemon::global_defs;
use lbd_tests::dist::static_bin;
use lbd_tests::scenario::{expect_holder, ELECTION};
use lbd_tests::{wait_until, Daemon, Instance, Kind, Lab};

/// Priority 90, +60 while `/lbd --check -f /flag.conf` passes: 150 beats
/// the backup's 100 only while the script passes, so the VIP follows it.
fn chroot_conf() -> String {
    let inst = Instance {
        extra: vec!["track_script {\n        chk\n    }".into()],
        ..Instance::v2(90)
    };
    format!(
        "{}vrrp_script chk {{\n    script \"/lbd --check -f /flag.conf\"\n    interval 1\n    \
         weight 60\n    rise 1\n    fall 1\n}}\n\n{}",
        global_defs("a"),
        inst.block()
    )
}

const FLAG_CONF: &str = "global_defs {\n    router_id flag\n}\n";

/// `lbctl --socket SOCK status --json`, parsed.
fn status(lbctl: &Path, sock: &Path) -> Option<serde_json::Value> {
    let out = Command::new(lbctl)
        .args(["--socket", sock.to_str().unwrap(), "status", "--json"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

#[test]
fn empty_chroot_master_script_and_clean_stop() {
    let lab = Lab::new("static-chroot");
    let lbd = static_bin("lbd");
    let lbctl = static_bin("lbctl");
    let (a, b) = (lab.node("a"), lab.node("b"));
    let nodes = [&a, &b];

    let root = lab.path("root");
    fs::create_dir(&root).unwrap();
    fs::copy(&lbd, root.join("lbd")).unwrap();
    fs::write(root.join("keepalived.conf"), chroot_conf()).unwrap();
    let flag = root.join("flag.conf");
    fs::write(&flag, FLAG_CONF).unwrap();
    let mut held: Vec<String> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    held.sort();
    assert_eq!(held, ["flag.conf", "keepalived.conf", "lbd"]);

    let _kb = Daemon::start(&lab, Kind::Keepalived, &b, &Instance::v2(100).render("b"));
    // `ip netns exec NS chroot DIR /lbd ...`: chroot execs lbd, so the pid is lbd's.
    let r = root.to_str().unwrap();
    let la = lab.spawn_env(
        &a,
        "lbd-chroot",
        &[
            "chroot",
            r,
            "/lbd",
            "-f",
            "/keepalived.conf",
            "--api-socket",
            "/lbd.sock",
            "--log-target",
            "stderr",
        ],
        &[("RUST_LOG", "info")],
    );
    expect_holder(
        &lab,
        &nodes,
        &a,
        "chrooted lbd at 150 against keepalived at 100",
    );

    // The API socket is in the chroot; the static lbctl reads it from outside.
    let sock = root.join("lbd.sock");
    let mut st = None;
    assert!(
        wait_until(ELECTION, || {
            st = status(&lbctl, &sock);
            st.as_ref().is_some_and(|s| {
                s["instances"][0]["state"] == "MASTER"
                    && s["plugins"].as_array().is_some_and(|p| {
                        p.iter()
                            .any(|p| p["name"] == "exec" && p["calls"].as_u64() > Some(0))
                    })
            })
        }),
        "lbctl status of the chrooted lbd: {st:?}\n{}",
        la.log_text()
    );

    // The script fails without its file: 90 < 100, keepalived takes over.
    fs::remove_file(&flag).unwrap();
    assert!(
        wait_until(ELECTION, || la
            .log_text()
            .contains("VRRP_Script(chk) failed")),
        "the tracked script did not fail:\n{}",
        la.log_text()
    );
    expect_holder(&lab, &nodes, &b, "chrooted lbd's script failing (90)");
    // And back: 150 preempts.
    fs::write(&flag, FLAG_CONF).unwrap();
    assert!(
        wait_until(ELECTION, || la
            .log_text()
            .contains("VRRP_Script(chk) succeeded")),
        "the tracked script did not recover:\n{}",
        la.log_text()
    );
    expect_holder(
        &lab,
        &nodes,
        &a,
        "chrooted lbd's script passing again (150)",
    );

    // SIGTERM: priority-0 advert, VIP removed, socket removed, exit 0.
    la.signal(libc::SIGTERM);
    let status = lab.wait_exit(&la, Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "chrooted lbd did not exit 0 on SIGTERM: {status:?}\n{}",
        la.log_text()
    );
    assert!(!sock.exists(), "lbd left its API socket behind");
    expect_holder(&lab, &nodes, &b, "chrooted lbd stopped");
    assert!(
        !la.log_text().contains("ERROR"),
        "errors in the chrooted lbd's log:\n{}",
        la.log_text()
    );
}
