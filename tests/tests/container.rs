//! The FROM-scratch image (packaging/container/Containerfile, static lbd
//! and lbctl only) under a real Docker engine, run as people run
//! keepalived (`--cap-add NET_ADMIN --cap-add NET_RAW`, configuration
//! mounted, the host's network) in an election against a native lbd.
//!
//! The "host" network is a lab namespace's: Docker cannot join a named
//! netns, so a pause container (busybox `sleep`, with `--network none`)
//! owns the namespace, the lab adopts it as node `c` (`ip netns attach` +
//! veth to the lab bridge), and the lbd container joins it with
//! `--network container:PAUSE`, as the containers of a Kubernetes pod
//! share their pause container's. Lab traffic never leaves the namespaces.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::time::Duration;

use lbd_tests::dist::{
    docker, docker_ok, remove_leftovers, require_docker, static_bin, Container, Image,
};
use lbd_tests::scenario::expect_holder;
use lbd_tests::tshark::Capture;
use lbd_tests::{lab_for, Daemon, Instance, Kind};

const BUSYBOX: &str = "/bin/busybox";

/// The image of this tree: the Containerfile with the static binaries.
fn lbd_image(lab: &lbd_tests::Lab) -> Image {
    let ctx = lab.path("image");
    fs::create_dir(&ctx).unwrap();
    for b in ["lbd", "lbctl"] {
        fs::copy(static_bin(b), ctx.join(b)).unwrap();
    }
    let containerfile =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/container/Containerfile");
    Image::build(&containerfile, &ctx, &format!("{}-lbd", lab.base))
}

/// A FROM-scratch image whose only program is a static busybox, to hold a
/// network namespace.
fn pause_image(lab: &lbd_tests::Lab) -> Image {
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} missing: install Debian's busybox-static (scripts/lib.sh installs it)"
    );
    let ctx = lab.path("pause");
    fs::create_dir(&ctx).unwrap();
    fs::copy(BUSYBOX, ctx.join("busybox")).unwrap();
    let cf = ctx.join("Containerfile");
    fs::write(
        &cf,
        "FROM scratch\nCOPY busybox /busybox\nENTRYPOINT [\"/busybox\", \"sleep\", \"3600\"]\n",
    )
    .unwrap();
    Image::build(&cf, &ctx, &format!("{}-pause", lab.base))
}

/// The host pid's `NSpid` line: its pid in each PID namespace, outermost first.
fn ns_pids(pid: i32) -> Vec<String> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

#[test]
fn container_joins_election_and_stops_cleanly() {
    let test = "container-election";
    require_docker(test);
    let lab = lab_for(test, &[Kind::Lbd]);
    remove_leftovers(&lab);
    let image = lbd_image(&lab);
    let pause_img = pause_image(&lab);
    eprintln!("{test}: image {} is {} bytes", image.tag, image.size());

    let b = lab.node("b");
    // Guards in this order: on any exit the lbd container goes first, then
    // the pause container, then the images, then the lab.
    let pause = Container::run(&lab, "pause", &["--network", "none", &pause_img.tag]);
    let c = lab.node_of_pid("c", pause.pid());
    let nodes = [&c, &b];

    // The container's lbd at 150 (no -f: the image's default path, mounted
    // read-only), the native lbd at 100.
    let etc = lab.path("etc-keepalived");
    fs::create_dir(&etc).unwrap();
    fs::write(etc.join("keepalived.conf"), Instance::v2(150).render("c")).unwrap();
    let _db = Daemon::start(&lab, Kind::Lbd, &b, &Instance::v2(100).render("b"));
    // c's adverts as b sees them, from before c starts to after it stops.
    let cap = Capture::start(
        &lab,
        &b,
        "eth0",
        &format!("ip proto 112 and src host {}", c.ip4(0)),
        100_000,
        Duration::from_secs(300),
    );
    let net = format!("container:{}", pause.name);
    let vol = format!("{}:/etc/keepalived:ro", etc.display());
    let lbd = Container::run(
        &lab,
        "lbd",
        &[
            "--network",
            &net,
            "--cap-add",
            "NET_ADMIN",
            "--cap-add",
            "NET_RAW",
            "-v",
            &vol,
            &image.tag,
        ],
    );
    expect_holder(
        &lab,
        &nodes,
        &c,
        "the container's lbd at 150, native lbd at 100",
    );

    // lbd is PID 1 of the container, and its lbctl talks to it.
    let host_pid = lbd.pid();
    assert_eq!(
        ns_pids(host_pid).last().map(String::as_str),
        Some("1"),
        "lbd is not PID 1 in its container: NSpid {:?}",
        ns_pids(host_pid)
    );
    assert_eq!(
        fs::read_to_string(format!("/proc/{host_pid}/comm"))
            .unwrap()
            .trim(),
        "lbd"
    );
    let status = docker_ok(&["exec", &lbd.name, "lbctl", "status", "--json"]);
    let st: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(st["lbd"]["pid"], 1, "{status}");
    assert_eq!(st["instances"][0]["state"], "MASTER", "{status}");
    assert_eq!(
        st["lbd"]["config"], "/etc/keepalived/keepalived.conf",
        "{status}"
    );

    // docker stop (SIGTERM to PID 1): priority-0 advert, exit 0, and the
    // native lbd takes the VIP.
    let stop = std::time::Instant::now();
    let out = docker(&["stop", "-t", "30", &lbd.name]);
    assert!(out.status.success(), "docker stop: {out:?}");
    assert_eq!(
        lbd.inspect("{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}"),
        "exited 0 false",
        "{}",
        lbd.logs()
    );
    let logs = lbd.logs();
    assert!(logs.contains("SIGTERM: stopping"), "{logs}");
    assert!(
        !logs.contains("ERROR"),
        "errors in the container's log:\n{logs}"
    );
    expect_holder(&lab, &nodes, &b, "the container stopped");
    eprintln!(
        "{test}: docker stop to the native lbd holding the VIP: {:?}",
        stop.elapsed()
    );
    assert!(
        !lab.has_addr(&c, "eth0", lbd_tests::VIP4),
        "the stopped container left the VIP behind"
    );
    cap.wait(&lab, Duration::ZERO);
    let prios: Vec<String> = cap
        .fields(&["vrrp.prio"], &[])
        .into_iter()
        .filter_map(|f| f.into_iter().next())
        .collect();
    assert!(
        prios.iter().any(|p| p == "150"),
        "c never advertised 150: {prios:?}"
    );
    assert_eq!(
        prios.last().map(String::as_str),
        Some("0"),
        "the container's last advert should be priority 0: {prios:?}"
    );
}
