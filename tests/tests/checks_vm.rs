//! Health checks driving IPVS, in the VM tier (it needs IPVS): real HTTP
//! backends behind a NAT director, checked by the bundled `http_get`
//! plugin from a keepalived.conf. A backend that stops answering leaves
//! the service after its retries (or keeps weight 0 under
//! `inhibit_on_failure`), a service below quorum switches to its sorry
//! server, and everything returns when the backend does. The real-server
//! notify scripts see DOWN then UP. A FILE_CHECK on a `track_file` takes a
//! server out while the file says so, and a PING_CHECK drops a server
//! whose address nobody answers.
#![cfg(feature = "vm")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use lbd_tests::daemon::{lbd_path, Daemon, Kind};
use lbd_tests::lab::{require_vm, Lab, Node};
use lbd_tests::lvs::nat_backend;
use lbd_tests::{http, wait_until};

const VIP: &str = "10.0.0.100";

fn ipvs(lab: &Lab, n: &Node) -> String {
    String::from_utf8_lossy(&lab.exec_ok(n, &["ipvsadm", "-Ln"]).stdout).to_string()
}

/// The destinations of `service` ("TCP  10.0.0.100:80") with their weights.
fn dests(lab: &Lab, n: &Node, port: u16) -> Vec<(String, u32)> {
    let text = ipvs(lab, n);
    let head = format!("TCP  {VIP}:{port} ");
    let mut out = Vec::new();
    let mut inside = false;
    for l in text.lines() {
        if l.starts_with("TCP") || l.starts_with("UDP") || l.starts_with("FWM") {
            inside = l.starts_with(&head);
            continue;
        }
        if inside {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.first() == Some(&"->") && w.len() >= 4 {
                out.push((w[1].to_string(), w[3].parse().unwrap_or(u32::MAX)));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn http_checks_remove_inhibit_and_switch_to_sorry_server() {
    let test = "checks_vm";
    require_vm(test);
    let lab = Lab::new(test);
    let (a, client) = (lab.node("a"), lab.host("client"));
    let webs = [lab.host("web1"), lab.host("web2"), lab.host("sorry")];
    lab.exec_ok(&a, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    lab.join(&a, 1);
    for w in &webs {
        nat_backend(&lab, w, &a.ip4(1));
    }
    let mut servers: Vec<_> = webs
        .iter()
        .map(|w| Some(http::serve(&lab, w, &w.name, "0.0.0.0", 80)))
        .collect();
    let (w1, w2, sorry) = (webs[0].ip4(1), webs[1].ip4(1), webs[2].ip4(1));
    let events = lab.path("rs-events");
    let notify = lab.path("rs-notify.sh");
    std::fs::write(
        &notify,
        format!("#!/bin/sh\necho \"$1\" >> {}\n", events.display()),
    )
    .unwrap();
    std::fs::set_permissions(&notify, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let check = "HTTP_GET {\n      url {\n        path /\n        status_code 200\n      }\n      \
                 connect_timeout 1\n      retry 1\n      delay_before_retry 1\n    }";
    let rs = |ip: &str, extra: &str| {
        format!("  real_server {ip} 80 {{\n    weight 1\n{extra}    {check}\n  }}\n")
    };
    let mut conf = format!(
        "global_defs {{\n  router_id a\n}}\n\
         vrrp_instance VI_1 {{\n  interface eth0\n  virtual_router_id 81\n  priority 255\n  \
         advert_int 1\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n"
    );
    // :83: web1 and web2 each behind a track_file (weight 0: non-zero is
    // down) and a ping; a third server is an address nobody has.
    let maint = [lab.path("maint-web1"), lab.path("maint-web2")];
    for (i, m) in maint.iter().enumerate() {
        std::fs::write(m, "0\n").unwrap();
        conf += &format!(
            "track_file maint{i} {{\n  file \"{}\"\n  weight 0\n}}\n",
            m.display()
        );
    }
    let ghost = "10.0.1.250".to_string();
    let l4 = |ip: &str, extra: &str| {
        format!(
            "  real_server {ip} 80 {{\n    weight 1\n{extra}    PING_CHECK {{\n      \
             connect_timeout 1\n      retry 1\n      delay_before_retry 1\n    }}\n  }}\n"
        )
    };
    let file = |i: usize| format!("    FILE_CHECK {{\n      track_file maint{i}\n    }}\n");
    let vs = |port: u16, body: String| {
        format!(
            "virtual_server {VIP} {port} {{\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  \
             protocol TCP\n{body}}}\n"
        )
    };
    let up = format!(
        "    notify_up \"{} UP\"\n    notify_down \"{} DOWN\"\n",
        notify.display(),
        notify.display()
    );
    conf += &vs(80, rs(&w1, &up) + &rs(&w2, ""));
    conf += &vs(
        81,
        format!("  inhibit_on_failure\n{}{}", rs(&w1, ""), rs(&w2, "")),
    );
    conf += &vs(
        82,
        format!(
            "  quorum 2\n  sorry_server {sorry} 80\n{}{}",
            rs(&w1, ""),
            rs(&w2, "")
        ),
    );
    conf += &vs(83, l4(&w1, &file(0)) + &l4(&w2, &file(1)) + &l4(&ghost, ""));
    let d = Daemon::start(&lab, Kind::Lbd, &a, &conf);
    let both = vec![(format!("{w1}:80"), 1), (format!("{w2}:80"), 1)];
    assert!(
        wait_until(Duration::from_secs(60), || dests(&lab, &a, 80) == both
            && dests(&lab, &a, 81) == both
            && dests(&lab, &a, 82) == both
            && dests(&lab, &a, 83) == both),
        "services not in place: {}\n{}",
        ipvs(&lab, &a),
        d.log()
    );
    assert!(wait_until(Duration::from_secs(20), || http::get(
        &lab, &client, VIP, 80
    )
    .is_some()));
    // `lbd --ipvs-status` shows what `ipvsadm -Ln` shows (the counter
    // columns may move between the two reads, so they are left out).
    let shape = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
            .collect()
    };
    let ours = lab.exec_ok(&a, &[lbd_path().to_str().unwrap(), "--ipvs-status"]);
    assert_eq!(
        shape(&String::from_utf8_lossy(&ours.stdout)),
        shape(&ipvs(&lab, &a))
    );

    // web1 stops answering: after its retry, it leaves :80, keeps weight 0
    // in :81, and :82 (quorum 2) falls back to the sorry server.
    let p = servers[0].take().unwrap();
    p.kill();
    lab.reap(&p);
    let only2 = vec![(format!("{w2}:80"), 1)];
    let inhibited = vec![(format!("{w1}:80"), 0), (format!("{w2}:80"), 1)];
    let sorry_only = vec![(format!("{sorry}:80"), 1)];
    assert!(
        wait_until(Duration::from_secs(60), || dests(&lab, &a, 80) == only2
            && dests(&lab, &a, 81) == inhibited
            && dests(&lab, &a, 82) == sorry_only),
        "after web1 died: {}\n{}",
        ipvs(&lab, &a),
        d.log()
    );
    let log = d.log();
    assert!(
        log.lines().any(
            |l| l.contains(&format!("check http_get on {w1}:80 of {VIP}:80 failed"))
                && l.contains("retrying")
        ),
        "no retry before the server went down: {log}"
    );
    assert!(
        log.contains(&format!("real server {w1}:80 of {VIP}:80 is down")),
        "{log}"
    );
    assert!(
        log.contains(&format!("virtual server {VIP}:82: quorum 2 lost")),
        "{log}"
    );
    for _ in 0..4 {
        assert_eq!(http::get(&lab, &client, VIP, 80).as_deref(), Some("web2"));
    }
    assert_eq!(http::get(&lab, &client, VIP, 82).as_deref(), Some("sorry"));

    // web1 is back: everything returns.
    servers[0] = Some(http::serve(&lab, &webs[0], "web1", "0.0.0.0", 80));
    assert!(
        wait_until(Duration::from_secs(60), || dests(&lab, &a, 80) == both
            && dests(&lab, &a, 81) == both
            && dests(&lab, &a, 82) == both),
        "after web1 returned: {}\n{}",
        ipvs(&lab, &a),
        d.log()
    );
    assert!(
        d.log()
            .contains(&format!("real server {ghost}:80 of {VIP}:83 is down")),
        "the unanswered ping: {}",
        d.log()
    );

    // web2's maintenance file says 1: it leaves :83 (only there), and
    // returns when the file says 0 again.
    std::fs::write(&maint[1], "1\n").unwrap();
    let only1 = vec![(format!("{w1}:80"), 1)];
    assert!(
        wait_until(Duration::from_secs(30), || dests(&lab, &a, 83) == only1
            && dests(&lab, &a, 80) == both),
        "after maint-web2 = 1: {}\n{}",
        ipvs(&lab, &a),
        d.log()
    );
    std::fs::write(&maint[1], "0\n").unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || dests(&lab, &a, 83) == both),
        "after maint-web2 = 0: {}\n{}",
        ipvs(&lab, &a),
        d.log()
    );
    let lines = || std::fs::read_to_string(&events).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(10), || lines() == "DOWN\nUP\n"),
        "notify_down/notify_up: {:?}",
        lines()
    );
}
