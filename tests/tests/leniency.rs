//! keepalived.conf files as their users write them, run by lbd on the host
//! kernel: what keepalived repairs, lbd repairs and says so, and a missing
//! kernel feature is one clear line, not a config refusal.
#![cfg(feature = "lab")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lbd_tests::daemon::lbd_path;
use lbd_tests::{lab_for, Instance, Kind, VIP4};

/// The LVS-NAT pair config of real write-ups: `lb_kind nat` in lower case.
/// The host has no IPVS: lbd starts, notes the method name, and stops with
/// exactly one `IPVS not available` line (no configuration error).
#[test]
fn lower_case_nat_on_a_host_without_ipvs() {
    let Some(lab) = lab_for("lenient_nat", &[Kind::Lbd]) else {
        return;
    };
    let a = lab.node("a");
    let conf = format!(
        "{}virtual_server {VIP4} 80 {{\n    delay_loop 6\n    lb_algo rr\n    lb_kind nat\n    \
         protocol TCP\n    real_server 10.9.0.11 80 {{\n        weight 1\n        TCP_CHECK {{\n            \
         connect_timeout 3\n        }}\n    }}\n}}\n",
        Instance::v2(150).render("a")
    );
    let path = lab.path("nat.conf");
    std::fs::write(&path, conf).unwrap();
    let sock = lab.path("nat.sock");
    let bin = lbd_path();
    let out = lab.exec(
        &a,
        &[
            bin.to_str().unwrap(),
            "-f",
            path.to_str().unwrap(),
            "--api-socket",
            sock.to_str().unwrap(),
        ],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
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
