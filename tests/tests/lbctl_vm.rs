//! lbctl's views of IPVS against a running lbd: `status` shows each real
//! server's checker state and weight, `ipvs` the kernel's table with lbd's
//! ownership and health, next to a service lbd does not own. Needs IPVS:
//! runs in the VM tier (`tests/vm/run --cargo-test lbd-tests --features vm`).
#![cfg(feature = "vm")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use lbd_tests::daemon::{lbctl, Daemon, Kind};
use lbd_tests::http;
use lbd_tests::lab::{require_vm, Lab};
use lbd_tests::wait_until;
use serde_json::Value;

const VIP: &str = "10.0.0.100";

fn json(sock: &Path, args: &[&str]) -> Value {
    let o = lbctl(sock, args);
    assert!(
        o.status.success(),
        "lbctl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn status_and_ipvs_show_ownership_and_health() {
    let test = "lbctl-ipvs";
    require_vm(test);
    let lab = Lab::new(test);
    let (a, up, down) = (lab.node("a"), lab.host("web1"), lab.host("web2"));
    let _web = http::serve(&lab, &up, "web1", "0.0.0.0", 80);
    // Not lbd's: it must be shown, and left alone.
    lab.exec_ok(&a, &["ipvsadm", "-A", "-t", "10.9.9.9:80", "-s", "rr"]);
    let rs = |ip: String, w: u32| {
        format!(
            "  real_server {ip} 80 {{\n    weight {w}\n    TCP_CHECK {{\n      connect_timeout 1\n    }}\n  }}\n"
        )
    };
    let conf = format!(
        "global_defs {{\n  router_id a\n}}\n\
         vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
         priority 150\n  advert_int 1\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n\
         virtual_server {VIP} 80 {{\n  delay_loop 1\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n{}{}}}\n",
        rs(up.ip4(0), 2),
        rs(down.ip4(0), 3)
    );
    let da = Daemon::start(&lab, Kind::Lbd, &a, &conf);
    let sock = da.api_socket.clone().unwrap();
    let vs_ready = |v: &Value| {
        let r = &v["virtual_servers"][0]["real_servers"];
        r[0]["checkers"][0]["up"] == true && r[1]["checkers"][0]["up"] == false
    };
    assert!(
        wait_until(Duration::from_secs(30), || {
            lbctl(&sock, &["status"]).status.success()
                && vs_ready(&json(&sock, &["status", "--json"]))
        }),
        "checks never settled:\n{}",
        da.log()
    );
    let v = json(&sock, &["status", "--json"]);
    let vs = &v["virtual_servers"][0];
    assert_eq!(vs["name"], format!("{VIP}:80"), "{vs}");
    let (r1, r2) = (&vs["real_servers"][0], &vs["real_servers"][1]);
    assert_eq!(r1["address"], format!("{}:80", up.ip4(0)), "{vs}");
    assert_eq!(
        (&r1["up"], &r1["weight"]["now"]),
        (&Value::from(true), &Value::from(2)),
        "{vs}"
    );
    assert_eq!(
        (&r2["up"], &r2["weight"]["now"]),
        (&Value::from(false), &Value::Null),
        "{vs}"
    );
    assert_eq!(r2["weight"]["configured"], 3, "{vs}");
    assert_eq!(
        (&r1["source"], &r1["checkers"][0]["plugin"]),
        (&Value::from("static"), &Value::from("tcp")),
        "{vs}"
    );

    let v = json(&sock, &["ipvs", "--json"]);
    let svcs = v["services"].as_array().unwrap();
    let ours = svcs
        .iter()
        .find(|s| s["service"] == format!("TCP {VIP}:80"))
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(ours["owner"], "lbd", "{ours}");
    assert_eq!(ours["virtual_server"], format!("{VIP}:80"), "{ours}");
    // The failed server was removed; the live one carries lbd's health.
    let dests = ours["dests"].as_array().unwrap();
    assert_eq!(dests.len(), 1, "{ours}");
    assert_eq!(dests[0]["address"], format!("{}:80", up.ip4(0)), "{ours}");
    assert_eq!(dests[0]["health"], "up", "{ours}");
    assert_eq!(dests[0]["weight"], 2, "{ours}");
    assert_eq!(dests[0]["configured_weight"], 2, "{ours}");
    let theirs = svcs
        .iter()
        .find(|s| s["service"] == "TCP 10.9.9.9:80")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(
        (&theirs["owner"], &theirs["virtual_server"]),
        (&Value::from("other"), &Value::Null)
    );
    // The same table ipvsadm prints (no traffic: the counters agree).
    let ipvsadm = lab.exec_ok(&a, &["ipvsadm", "-Ln"]);
    assert_eq!(
        v["ipvsadm"],
        String::from_utf8_lossy(&ipvsadm.stdout).as_ref()
    );

    let o = lbctl(&sock, &["ipvs"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(&format!("lbd ({VIP}:80)")), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains(&format!("-> {}:80", up.ip4(0))))
        .unwrap_or_else(|| panic!("{text}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&cols[2..8], ["Route", "2", "0", "0", "up", "2"], "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("TCP 10.9.9.9:80") && l.contains("other")),
        "{text}"
    );
}
