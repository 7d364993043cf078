//! keepalived.conf files as their users write them, run by lbd on the host
//! kernel: what keepalived repairs, lbd repairs and says so, and a missing
//! kernel feature is one clear line, not a config refusal.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

use lbd_tests::daemon::{lbd_path, KEEPALIVED};
use lbd_tests::scenario::ELECTION;
use lbd_tests::{lab_for, wait_until, Daemon, Instance, Kind, Lab, Node, VIP4};

fn output_text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Run `kind` on `conf` in `node` to completion (bounded by `timeout`, so
/// a daemon that wrongly keeps running fails the test instead of hanging it).
fn run_to_exit(lab: &Lab, node: &Node, kind: Kind, conf: &str) -> Output {
    let tag = format!("{}-{}", node.name, kind.label());
    let path = lab.path(&format!("{tag}.conf"));
    std::fs::write(&path, conf).unwrap();
    let c = path.to_str().unwrap().to_string();
    let bin = lbd_path();
    let pid = lab.path(&format!("{tag}.pid"));
    let sock = lab.path(&format!("{tag}.sock"));
    let argv: Vec<String> = match kind {
        Kind::Lbd => vec![
            bin.to_str().unwrap().into(),
            "-f".into(),
            c,
            "--api-socket".into(),
            sock.to_str().unwrap().into(),
        ],
        Kind::Keepalived => vec![
            KEEPALIVED.into(),
            "-n".into(),
            "-l".into(),
            "-f".into(),
            c,
            "-p".into(),
            pid.to_str().unwrap().into(),
            "-r".into(),
            format!("{}.vrrp", pid.display()),
            "-c".into(),
            format!("{}.chk", pid.display()),
        ],
    };
    let mut full = vec!["timeout", "20"];
    full.extend(argv.iter().map(String::as_str));
    lab.exec(node, &full)
}

/// The LVS-NAT pair config of real write-ups: `lb_kind nat` in lower case.
/// The host has no IPVS: lbd starts, notes the method name, and stops with
/// exactly one `IPVS not available` line (no configuration error).
#[test]
fn lower_case_nat_on_a_host_without_ipvs() {
    let lab = lab_for("lenient_nat", &[Kind::Lbd]);
    let a = lab.node("a");
    let conf = format!(
        "{}virtual_server {VIP4} 80 {{\n    delay_loop 6\n    lb_algo rr\n    lb_kind nat\n    \
         protocol TCP\n    real_server 10.9.0.11 80 {{\n        weight 1\n        TCP_CHECK {{\n            \
         connect_timeout 3\n        }}\n    }}\n}}\n",
        Instance::v2(150).render("a")
    );
    let out = run_to_exit(&lab, &a, Kind::Lbd, &conf);
    let text = output_text(&out);
    assert!(!out.status.success(), "lbd ran without IPVS:\n{text}");
    let ipvs: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("IPVS not available"))
        .collect();
    assert_eq!(ipvs.len(), 1, "want one IPVS line:\n{text}");
    assert!(
        text.contains("note: lb_kind nat: not a keepalived method name"),
        "{text}"
    );
    assert!(!text.contains("configuration rejected"), "{text}");
}

/// A `track_interface` naming an interface the node does not have: keepalived
/// 2.2 refuses to start ("Non-existent interface specified in
/// configuration"), and so does lbd, naming it. With `dynamic_interfaces`
/// both run and count it as down (weight -10: 150 -> 140, still master).
#[test]
fn missing_track_interface_refuses_unless_dynamic() {
    let lab = lab_for("lenient_trackif", &[Kind::Lbd, Kind::Keepalived]);
    let a = lab.node("a");
    let inst = Instance {
        extra: vec!["track_interface {\n        nosuch0 weight -10\n    }".into()],
        ..Instance::v2(150)
    };
    for kind in [Kind::Keepalived, Kind::Lbd] {
        let out = run_to_exit(&lab, &a, kind, &inst.render("a"));
        let text = output_text(&out);
        assert!(
            !out.status.success() && out.status.code() != Some(124),
            "{}: should refuse to start:\n{text}",
            kind.label()
        );
        if kind == Kind::Lbd {
            assert!(
                text.contains("track_interface nosuch0: no such interface"),
                "{text}"
            );
        }
    }
    let dynamic =
        inst.render("a")
            .replacen("global_defs {", "global_defs {\n    dynamic_interfaces", 1);
    assert!(dynamic.contains("dynamic_interfaces"), "{dynamic}");
    let d = Daemon::start(&lab, Kind::Lbd, &a, &dynamic);
    assert!(
        wait_until(ELECTION, || lab.has_addr(&a, "eth0", VIP4)),
        "with dynamic_interfaces lbd should run and take the VIP:\n{}",
        d.log()
    );
}
