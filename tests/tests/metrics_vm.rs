//! Metrics that need IPVS, in the VM tier: the kernel's counters of the
//! service lbd owns, read at scrape time, grow with the connections the
//! test makes through the VIP; a real server's health and weight follow
//! its check, with its events. Read through the SIGUSR2 test hook and
//! parsed by prometheus_client's OpenMetrics parser.
#![cfg(feature = "vm")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use lbd_tests::daemon::{Daemon, Kind};
use lbd_tests::lab::{require_vm, Lab};
use lbd_tests::lvs::nat_backend;
use lbd_tests::prom::{dump, Dump};
use lbd_tests::{http, wait_until};

const VIP: &str = "10.0.0.100";

#[test]
fn ipvs_counters_and_real_server_health() {
    let test = "metrics_vm";
    require_vm(test);
    let lab = Lab::new(test);
    let (a, client, web) = (lab.node("a"), lab.host("client"), lab.host("web1"));
    lab.exec_ok(&a, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    lab.join(&a, 1);
    nat_backend(&lab, &web, &a.ip4(1));
    let server = http::serve(&lab, &web, "web1", "0.0.0.0", 80);
    let w = web.ip4(1);
    let conf = format!(
        "global_defs {{\n  router_id a\n}}\n\
         vrrp_instance VI_1 {{\n  interface eth0\n  virtual_router_id 81\n  priority 255\n  \
         advert_int 1\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n\
         virtual_server {VIP} 80 {{\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n  \
         real_server {w} 80 {{\n    weight 3\n    HTTP_GET {{\n      url {{\n        path /\n        \
         status_code 200\n      }}\n      connect_timeout 1\n      retry 1\n      \
         delay_before_retry 1\n    }}\n  }}\n}}\n"
    );
    let d = Daemon::start(&lab, Kind::Lbd, &a, &conf);
    assert!(
        wait_until(Duration::from_secs(60), || http::get(
            &lab, &client, VIP, 80
        )
        .is_some()),
        "no HTTP through the VIP:\n{}",
        d.log()
    );
    let service = format!("TCP {VIP}:80");
    let conns = |d: &Dump| {
        d.value("lbd_ipvs_connections_total", &[("service", &service)])
            .unwrap_or(0.0)
    };
    let before = dump(&d);
    let gets = 5;
    for _ in 0..gets {
        assert_eq!(http::get(&lab, &client, VIP, 80).as_deref(), Some("web1"));
    }
    // The kernel folds its per-CPU counters into what netlink reports on
    // its estimator tick (every 2 s): poll rather than read once.
    let mut after = dump(&d);
    wait_until(Duration::from_secs(10), || {
        after = dump(&d);
        conns(&after) >= conns(&before) + f64::from(gets)
    });
    assert!(
        conns(&after) >= conns(&before) + f64::from(gets),
        "{gets} connections through the VIP, the counter went {} -> {}\n{}",
        conns(&before),
        conns(&after),
        after.text
    );
    for dir in ["in", "out"] {
        let l = [("service", service.as_str()), ("direction", dir)];
        let b = after.value("lbd_ipvs_bytes_total", &l).unwrap_or(0.0);
        let p = after.value("lbd_ipvs_packets_total", &l).unwrap_or(0.0);
        assert!(
            b > 0.0 && p > 0.0,
            "{dir}: {b} bytes {p} packets\n{}",
            after.text
        );
    }
    let rs = format!("{w}:80");
    let vs = format!("{VIP}:80");
    let labels = [("vs", vs.as_str()), ("rs", rs.as_str())];
    assert_eq!(after.value("lbd_real_server_up", &labels), Some(1.0));
    assert_eq!(after.value("lbd_real_server_weight", &labels), Some(3.0));
    assert!(
        after
            .value("lbd_check_runs_total", &[("kind", "http_get")])
            .unwrap_or(0.0)
            >= 1.0,
        "{}",
        after.text
    );

    // The backend goes: down, weight 0, quorum lost; the events say so.
    server.kill();
    lab.reap(&server);
    let mut now = dump(&d);
    assert!(
        wait_until(Duration::from_secs(60), || {
            now = dump(&d);
            now.value("lbd_real_server_up", &labels) == Some(0.0)
        }),
        "{}\n{}",
        now.text,
        d.log()
    );
    assert_eq!(now.value("lbd_real_server_weight", &labels), Some(0.0));
    assert_eq!(
        now.value("lbd_virtual_server_quorum_up", &[("vs", &vs)]),
        Some(0.0),
        "{}",
        now.text
    );
    assert!(
        now.value("lbd_check_failures_total", &[("kind", "http_get")])
            .unwrap_or(0.0)
            >= 1.0
    );
    let down = now.events_of("real_server", Some(&rs));
    assert!(
        down.iter()
            .any(|e| e["state"] == "DOWN" && e["prev"] == "UP" && e["vs"] == vs.as_str()),
        "{:?}",
        now.events
    );
    let checker = now.events_of("checker", Some(&rs));
    let quorum = now.events_of("virtual_server", Some(&vs));
    assert!(
        checker.iter().any(|e| e["state"] == "DOWN") && quorum.iter().any(|e| e["state"] == "DOWN"),
        "{:?}",
        now.events
    );
    // The checker's flip comes before what it caused.
    let seq = |e: &serde_json::Value| e["seq"].as_u64().unwrap();
    assert!(seq(checker.last().unwrap()) < seq(down.last().unwrap()));
}
