//! lbctl against a running lbd (master, tracking a script) and a
//! keepalived backup: every command, checked against the state the test
//! put the pair in; then the socket's permissions and a stopped lbd.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use lbd_tests::daemon::{global_defs, lbctl, lbctl_path, lbd_path};
use lbd_tests::scenario::{expect_holder, ELECTION};
use lbd_tests::{lab_for, wait_until, Daemon, Instance, Kind, VIP4};
use serde_json::Value;

/// lbd at 150 tracking `chk` (passes while `flag` exists), weight -60:
/// with the script failing it is at 90, below keepalived's 100.
fn lbd_conf(flag: &Path) -> String {
    let inst = Instance {
        extra: vec!["track_script {\n        chk\n    }".into()],
        ..Instance::v2(150)
    };
    format!(
        "{}vrrp_script chk {{\n    script \"/usr/bin/test -e {}\"\n    interval 1\n    \
         weight -60\n    rise 1\n    fall 1\n}}\n\n{}",
        global_defs("a"),
        flag.display(),
        inst.block()
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

fn status_json(sock: &Path) -> Value {
    let o = lbctl(sock, &["status", "--json"]);
    assert!(o.status.success(), "status --json: {}", show(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("status --json: {e}\n{}", show(&o)))
}

/// The table row of instance VI_1, split into columns.
fn table_row(sock: &Path) -> (Vec<String>, String) {
    let o = lbctl(sock, &["status"]);
    assert!(o.status.success(), "status: {}", show(&o));
    let text = stdout(&o);
    let row = text
        .lines()
        .find(|l| l.starts_with("VI_1 "))
        .unwrap_or_else(|| panic!("no VI_1 row:\n{text}"))
        .split_whitespace()
        .map(str::to_string)
        .collect();
    (row, text)
}

/// Exactly one line on stderr containing `want`, nothing on stdout.
fn one_line_error(o: &Output, code: i32, want: &str) {
    assert_eq!(o.status.code(), Some(code), "{}", show(o));
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "one line expected: {}", show(o));
    assert!(err.contains(want), "'{want}' expected: {}", show(o));
    assert!(o.stdout.is_empty(), "{}", show(o));
}

#[test]
fn every_command_against_a_running_lbd() {
    let lab = lab_for("lbctl-commands", &[Kind::Lbd, Kind::Keepalived]);
    let (a, b) = (lab.node("a"), lab.node("b"));
    let nodes = [&a, &b];
    let flag = lab.path("chk.flag");
    fs::write(&flag, "").unwrap();
    let conf = lbd_conf(&flag);
    let da = Daemon::start_with(
        &lab,
        Kind::Lbd,
        &a,
        &conf,
        &["--metrics-listen", "127.0.0.1:9107"],
    );
    let _db = Daemon::start(&lab, Kind::Keepalived, &b, &Instance::v2(100).render("b"));
    let sock = da.api_socket.clone().unwrap();
    assert!(
        wait_until(ELECTION, || lbctl(&sock, &["status"]).status.success()),
        "the API never answered:\n{}",
        da.log()
    );

    // The socket: root's only, from the start.
    let md = fs::metadata(&sock).unwrap();
    assert!(md.file_type().is_socket());
    assert_eq!(
        md.mode() & 0o777,
        0o600,
        "socket mode {:o}",
        md.mode() & 0o777
    );
    assert_eq!(md.uid(), 0);

    // Master at its configured priority, the VIP on eth0.
    expect_holder(&lab, &nodes, &a, "lbd at 150");
    assert!(
        wait_until(ELECTION, || {
            let v = status_json(&sock);
            v["instances"][0]["state"] == "MASTER"
                && v["instances"][0]["vips"][0]["present"] == true
        }),
        "{}",
        status_json(&sock)
    );
    let v = status_json(&sock);
    let i = &v["instances"][0];
    assert_eq!(i["name"], "VI_1");
    assert_eq!(i["vrid"], 51);
    assert_eq!(i["priority"]["now"], 150, "{i}");
    assert_eq!(i["priority"]["configured"], 150, "{i}");
    assert_eq!(i["master"]["self"], true, "{i}");
    assert_eq!(i["last_transition"]["to"], "MASTER", "{i}");
    assert_eq!(i["vips"][0]["address"], VIP4, "{i}");
    assert_eq!(i["demoted"], false, "{i}");
    assert_eq!(v["lbd"]["config"], da.conf.display().to_string());
    // The script runs through the built-in exec plugin, which counts it.
    let exec = v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "exec")
        .unwrap_or_else(|| panic!("no exec plugin in {}", v["plugins"]));
    assert!(
        exec["path"].as_str().unwrap().starts_with("(built in)"),
        "{exec}"
    );
    assert!(exec["calls"].as_u64().unwrap() > 0, "{exec}");
    assert!(exec["memory_bytes"].as_u64().unwrap() > 0, "{exec}");
    let (row, text) = table_row(&sock);
    assert_eq!(
        &row[..7],
        ["VI_1", "MASTER", "150", "150", "eth0", "51", "self"],
        "{text}"
    );
    assert!(row.contains(&format!("+{VIP4}/24")), "{text}");

    // The script fails: 90, keepalived takes over, and status says why.
    fs::remove_file(&flag).unwrap();
    expect_holder(&lab, &nodes, &b, "lbd at 90");
    assert!(
        wait_until(ELECTION, || {
            let v = status_json(&sock);
            let i = &v["instances"][0];
            i["state"] == "BACKUP" && i["master"]["address"] == b.ip4(0).as_str()
        }),
        "{}",
        status_json(&sock)
    );
    let v = status_json(&sock);
    let i = &v["instances"][0];
    assert_eq!(i["priority"]["now"], 90, "{i}");
    assert_eq!(i["priority"]["configured"], 150, "{i}");
    assert_eq!(i["priority"]["adjust"], -60, "{i}");
    let script = i["tracking"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "script")
        .unwrap_or_else(|| panic!("no script in {i}"));
    assert_eq!(
        (&script["name"], &script["ok"], &script["adjust"]),
        (&Value::from("chk"), &Value::from(false), &Value::from(-60)),
        "{i}"
    );
    assert_eq!(i["master"]["self"], false, "{i}");
    assert_eq!(i["vips"][0]["present"], false, "{i}");
    assert_eq!(
        (&i["last_transition"]["from"], &i["last_transition"]["to"]),
        (&Value::from("MASTER"), &Value::from("BACKUP")),
        "{i}"
    );
    let (row, text) = table_row(&sock);
    assert_eq!(
        &row[..7],
        ["VI_1", "BACKUP", "90", "150", "eth0", "51", &b.ip4(0)],
        "{text}"
    );
    assert!(
        text.contains("VI_1: script chk down/failed (weight -60): priority -60"),
        "{text}"
    );
    fs::write(&flag, "").unwrap();
    expect_holder(&lab, &nodes, &a, "script fixed: lbd at 150 preempts");

    // events -f follows; a reload shows up in it.
    let last = status_json(&sock)["lbd"]["last_event"].as_u64().unwrap();
    let follow_out = lab.path("events-follow.out");
    let mut follower = Command::new(lbctl_path())
        .arg("--socket")
        .arg(&sock)
        .args(["events", "-f", "--json", "--since", &last.to_string()])
        .stdout(fs::File::create(&follow_out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let o = lbctl(&sock, &["reload"]);
    assert!(o.status.success(), "reload: {}", show(&o));
    assert!(stdout(&o).contains("reload applied"), "{}", show(&o));
    let followed = |want: &dyn Fn(&Value) -> bool| {
        wait_until(Duration::from_secs(10), || {
            fs::read_to_string(&follow_out)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .any(|e| want(&e))
        })
    };
    assert!(
        followed(&|e| e["kind"] == "reload" && e["outcome"] == "applied"),
        "events -f did not show the reload: {}",
        fs::read_to_string(&follow_out).unwrap_or_default()
    );

    // A broken file: refused with its error, exit 1, and an event.
    fs::write(
        &da.conf,
        conf.replace("virtual_router_id 51", "virtual_router_id 999"),
    )
    .unwrap();
    let o = lbctl(&sock, &["reload"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = stderr(&o);
    assert!(err.starts_with("lbctl: reload refused: "), "{}", show(&o));
    assert!(
        err.contains(&format!("{}:", da.conf.display())),
        "{}",
        show(&o)
    );
    assert!(err.contains("virtual_router_id"), "{}", show(&o));
    assert!(
        followed(&|e| e["kind"] == "reload" && e["error"].is_string()),
        "events -f did not show the refused reload: {}",
        fs::read_to_string(&follow_out).unwrap_or_default()
    );
    assert_eq!(
        follower.try_wait().unwrap(),
        None,
        "events -f stopped following"
    );
    let _ = follower.kill();
    let _ = follower.wait();
    // The old configuration keeps running.
    expect_holder(&lab, &nodes, &a, "after a refused reload");
    let o = lbctl(&sock, &["events", "--json"]);
    assert!(o.status.success(), "{}", show(&o));
    let reloads: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "reload")
        .collect();
    assert_eq!(reloads.len(), 2, "{}", show(&o));
    assert!(reloads[1]["error"]
        .as_str()
        .unwrap()
        .contains("virtual_router_id"));
    let o = lbctl(
        &sock,
        &["events", "--since", &reloads[0]["seq"].to_string()],
    );
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(stdout(&o).lines().count(), 1, "{}", show(&o));
    assert!(
        stdout(&o).contains(" reload ") && stdout(&o).contains("error="),
        "{}",
        show(&o)
    );
    fs::write(&da.conf, &conf).unwrap();
    let o = lbctl(&sock, &["reload"]);
    assert!(o.status.success(), "reload of the fixed file: {}", show(&o));

    // No IPVS on this kernel: one clear line.
    one_line_error(&lbctl(&sock, &["ipvs"]), 1, "IPVS not available");

    // check / convert print what lbd --check / --convert print.
    for (cmd, flag) in [("check", "--check"), ("convert", "--convert")] {
        let file = da.conf.to_str().unwrap();
        let ours = lbctl(&sock, &[cmd, file]);
        let lbd = Command::new(lbd_path())
            .args(["-f", file, flag])
            .output()
            .unwrap();
        assert_eq!(
            ours.status.code(),
            lbd.status.code(),
            "{cmd}: {}",
            show(&ours)
        );
        assert_eq!(stdout(&ours), stdout(&lbd), "{cmd}");
        assert!(ours.status.success(), "{cmd}: {}", show(&ours));
    }
    let bad = lab.path("bad.conf");
    fs::write(
        &bad,
        conf.replace("virtual_router_id 51", "virtual_router_id 999"),
    )
    .unwrap();
    let o = lbctl(&sock, &["check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(stderr(&o).contains("bad.conf:"), "{}", show(&o));

    // Metrics over the socket and over --metrics-listen (that one only).
    let o = lbctl(&sock, &["metrics"]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(stdout(&o).contains("lbd_build_info"), "{}", show(&o));
    let curl = |path: &str| {
        let url = format!("http://127.0.0.1:9107{path}");
        let o = lab.exec(
            &a,
            &["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", &url],
        );
        stdout(&o)
    };
    assert_eq!(curl("/metrics"), "200");
    assert_eq!(curl("/status"), "404");
    let o = lab.exec(&a, &["curl", "-s", "http://127.0.0.1:9107/metrics"]);
    assert!(stdout(&o).contains("lbd_build_info"), "{}", show(&o));

    // Plain HTTP errors: unknown path, wrong method, JSON bodies.
    let http = |method: &str, path: &str| {
        let o = Command::new("curl")
            .args(["-s", "-X", method, "--unix-socket", sock.to_str().unwrap()])
            .arg(format!("http://lbd{path}"))
            .args(["-w", "\n%{http_code}"])
            .output()
            .unwrap();
        let text = stdout(&o);
        let (body, code) = text.rsplit_once('\n').unwrap();
        (
            code.to_string(),
            serde_json::from_str::<Value>(body).unwrap_or(Value::Null),
        )
    };
    let (code, body) = http("GET", "/nope");
    assert_eq!(code, "404");
    assert!(body["error"].is_string(), "{body}");
    let (code, body) = http("GET", "/reload");
    assert_eq!(code, "405");
    assert!(body["error"].is_string(), "{body}");

    // Maintenance (the takeover itself: tests/maintenance.rs).
    let o = lbctl(&sock, &["demote", "NOPE"]);
    one_line_error(&o, 1, "no vrrp instance named NOPE");
    let o = lbctl(&sock, &["demote", "VI_1"]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(stdout(&o).contains("VI_1 demoted"), "{}", show(&o));
    assert_eq!(status_json(&sock)["instances"][0]["demoted"], true);
    let o = lbctl(&sock, &["promote", "VI_1"]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(status_json(&sock)["instances"][0]["demoted"], false);

    // Not root: the socket refuses, one line, exit 2.
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(lbctl_path())
        .arg("--socket")
        .arg(&sock)
        .arg("status")
        .output()
        .unwrap();
    one_line_error(&o, 2, "permission denied");

    // lbd stopped: one line, exit 2; the socket is gone.
    da.term();
    assert!(
        lab.wait_exit(&da.proc, ELECTION).is_some(),
        "lbd did not stop:\n{}",
        da.log()
    );
    assert!(!sock.exists(), "lbd left its socket behind");
    one_line_error(&lbctl(&sock, &["status"]), 2, "lbd is not running");
    one_line_error(&lbctl(&sock, &["reload"]), 2, "lbd is not running");
}

/// Sync groups: their members and the state the group last reached, in
/// the JSON and in the table; each member names its group.
#[test]
fn status_shows_sync_groups() {
    let lab = lab_for("lbctl-groups", &[Kind::Lbd]);
    let a = lab.node("a");
    let vi2 = Instance {
        name: "VI_2".into(),
        vrid: 52,
        vips: vec!["10.0.0.101/24".into()],
        ..Instance::v2(150)
    };
    let conf = format!(
        "{}{}{}vrrp_sync_group G1 {{\n    group {{\n        VI_1\n        VI_2\n    }}\n}}\n",
        global_defs("a"),
        Instance::v2(150).block(),
        vi2.block()
    );
    let da = Daemon::start(&lab, Kind::Lbd, &a, &conf);
    let sock = da.api_socket.clone().unwrap();
    assert!(
        wait_until(ELECTION, || lbctl(&sock, &["status"]).status.success()
            && status_json(&sock)["sync_groups"][0]["state"] == "MASTER"),
        "the group never reached MASTER:\n{}",
        da.log()
    );
    let v = status_json(&sock);
    let g = &v["sync_groups"][0];
    assert_eq!(g["name"], "G1", "{g}");
    assert_eq!(g["members"], serde_json::json!(["VI_1", "VI_2"]), "{g}");
    for i in v["instances"].as_array().unwrap() {
        assert_eq!(i["sync_group"], "G1", "{i}");
        assert_eq!(i["state"], "MASTER", "{i}");
    }
    let o = lbctl(&sock, &["status"]);
    let text = stdout(&o);
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("G1 "))
        .unwrap_or_else(|| panic!("no G1 row:\n{text}"))
        .split_whitespace()
        .collect();
    assert_eq!(row, ["G1", "MASTER", "VI_1", "VI_2"], "{text}");
}
