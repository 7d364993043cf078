//! The IPVS client against a real kernel: run inside the VM tier
//! (`tests/vm/run --cargo-test lbd-sys --features vm-tests -- --test-threads=1`).
//! The IPVS table is global, so the tests run one at a time and each starts
//! and ends with a flush. Outside the VM every test fails: the feature means
//! "this is the VM tier", and a host's own IPVS table must not be flushed.
#![cfg(feature = "vm-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::process::{Command, Stdio};

use lbd_ipvs::{
    diff, render_ipvsadm, Af, DestKey, DestSpec, Fwd, IpvsState, Op, OwnedSet, Protocol, Service,
    ServiceKey, ServiceSpec, TunType, IP_VS_SVC_F_ONEPACKET, IP_VS_SVC_F_SCHED_MH_FALLBACK,
    IP_VS_SVC_F_SCHED_MH_PORT, IP_VS_SVC_F_SCHED_SH_FALLBACK, IP_VS_SVC_F_SCHED_SH_PORT,
    TUN_F_CSUM, TUN_F_REMCSUM,
};
use lbd_sys::{Ipvs, SyncDaemon, SyncState};

fn in_vm() -> bool {
    std::env::var("LBD_IN_VM").as_deref() == Ok("1")
}

macro_rules! vm_only {
    () => {
        assert!(
            in_vm(),
            "needs the IPVS kernel of the VM tier: run by scripts/test vm (tests/vm/run sets LBD_IN_VM=1)"
        );
    };
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(a: &str, port: u16) -> ServiceKey {
    ServiceKey::addr(Protocol::Tcp, ip(a), port)
}

fn dk(a: &str, port: u16) -> DestKey {
    DestKey::new(ip(a), port)
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn setup() -> Ipvs {
    let ipvs = Ipvs::connect().await.expect("connect in the VM");
    ipvs.flush().await.unwrap();
    ipvs
}

/// Applies what it takes to reach `desired`, asserting every op succeeds,
/// then checks the result.
async fn converge(ipvs: &Ipvs, desired: &IpvsState) -> Vec<Op> {
    let (observed, _) = ipvs.dump().await.unwrap();
    let ops = diff(desired, &observed, &OwnedSet::from_state(desired));
    for (op, r) in ops.iter().zip(ipvs.apply(ops.clone()).await.unwrap()) {
        r.unwrap_or_else(|e| panic!("{op:?}: {e}"));
    }
    check(ipvs, desired).await;
    ops
}

/// The kernel holds exactly `desired` (diff is empty, nothing else is
/// there), and `ipvsadm -Ln` prints what our renderer prints for our dump.
async fn check(ipvs: &Ipvs, desired: &IpvsState) {
    let (observed, counters) = ipvs.dump().await.unwrap();
    let ops = diff(desired, &observed, &OwnedSet::from_state(desired));
    assert!(ops.is_empty(), "kernel differs from desired: {ops:#?}");
    assert_eq!(
        observed.services.keys().collect::<Vec<_>>(),
        desired.services.keys().collect::<Vec<_>>()
    );
    let info = ipvs.info().await.unwrap();
    let ours = render_ipvsadm(&info, &observed, &counters);
    let theirs = run("ipvsadm", &["-Ln"]);
    assert_eq!(theirs, ours, "ipvsadm -Ln vs render_ipvsadm");
}

async fn finish(ipvs: &Ipvs) {
    ipvs.flush().await.unwrap();
    let (s, _) = ipvs.dump().await.unwrap();
    assert!(s.is_empty());
}

#[tokio::test]
async fn info_reports_version_and_table_size() {
    vm_only!();
    let ipvs = setup().await;
    let info = ipvs.info().await.unwrap();
    eprintln!(
        "IPVS {} conn table {}",
        info.version_string(),
        info.conn_tab_size
    );
    assert!(info.version >= 0x010200);
    assert!(info.conn_tab_size > 0);
    let head = run("ipvsadm", &["-Ln"]);
    assert!(head.starts_with(&format!(
        "IP Virtual Server version {} (size={})",
        info.version_string(),
        info.conn_tab_size
    )));
    finish(&ipvs).await;
}

#[tokio::test]
async fn every_scheduler_of_6_1_and_twos_refused() {
    vm_only!();
    let ipvs = setup().await;
    let mut desired = IpvsState::new();
    for (i, s) in lbd_ipvs::SCHEDULERS
        .iter()
        .filter(|s| **s != "twos")
        .enumerate()
    {
        let k = tcp(&format!("10.1.0.{}", i + 1), 80);
        desired.insert(
            Service::new(k, ServiceSpec::new(*s, Af::V4))
                .with_dest(dk("192.168.1.1", 80), DestSpec::new(Fwd::Masq, 1))
                .with_dest(dk("192.168.1.2", 8080), DestSpec::new(Fwd::Masq, 3)),
        );
    }
    converge(&ipvs, &desired).await;

    // twos came with 6.2: the kernel has no module for it.
    let k = tcp("10.1.1.1", 80);
    let r = ipvs
        .apply(vec![Op::AddService(Service::new(
            k,
            ServiceSpec::new("twos", Af::V4),
        ))])
        .await
        .unwrap();
    let e = r[0].as_ref().unwrap_err().to_string();
    eprintln!("twos: {e}");
    assert_eq!(
        e,
        "adding service TCP 10.1.1.1:80 (scheduler twos unknown to this kernel: \
         no ip_vs_twos module?): No such file or directory"
    );
    check(&ipvs, &desired).await;
    finish(&ipvs).await;
}

#[tokio::test]
async fn forwarding_methods_and_tunnels() {
    vm_only!();
    let ipvs = setup().await;
    let mut gue = DestSpec::new(Fwd::Tunnel, 2);
    gue.tun_type = Some(TunType::Gue);
    gue.tun_port = Some(6080);
    gue.tun_flags = Some(TUN_F_CSUM);
    let mut gue_rem = gue.clone();
    gue_rem.tun_port = Some(5555);
    gue_rem.tun_flags = Some(TUN_F_REMCSUM);
    let mut gre = DestSpec::new(Fwd::Tunnel, 3);
    gre.tun_type = Some(TunType::Gre);
    gre.tun_flags = Some(TUN_F_CSUM);
    let svc = Service::new(tcp("10.2.0.1", 80), ServiceSpec::new("wlc", Af::V4))
        .with_dest(dk("192.168.2.1", 80), DestSpec::new(Fwd::Masq, 1))
        .with_dest(dk("192.168.2.2", 80), DestSpec::new(Fwd::Route, 1))
        .with_dest(dk("192.168.2.3", 80), DestSpec::new(Fwd::Tunnel, 1))
        .with_dest(dk("192.168.2.4", 80), gue)
        .with_dest(dk("192.168.2.5", 80), gue_rem)
        .with_dest(dk("192.168.2.6", 80), gre)
        .with_dest(dk("127.0.0.1", 80), DestSpec::new(Fwd::Local, 1))
        // Mixed family: only tunnels allow it.
        .with_dest(dk("fd00:2::6", 80), DestSpec::new(Fwd::Tunnel, 4));
    let desired: IpvsState = [svc].into_iter().collect();
    converge(&ipvs, &desired).await;
    let tun = run("ipvsadm", &["-Ln", "--tun-info"]);
    eprintln!("{tun}");
    finish(&ipvs).await;
}

#[tokio::test]
async fn protocols_fwmarks_and_ipv6() {
    vm_only!();
    let ipvs = setup().await;
    let d = |a: &str| (dk(a, 0), DestSpec::new(Fwd::Route, 1));
    let mut desired = IpvsState::new();
    for (p, a, port) in [
        (Protocol::Tcp, "10.3.0.1", 80),
        (Protocol::Udp, "10.3.0.1", 53),
        (Protocol::Sctp, "10.3.0.1", 3868),
        (Protocol::Tcp, "fd00:3::1", 443),
        (Protocol::Udp, "fd00:3::1", 53),
        (Protocol::Sctp, "fd00:3::1", 3868),
        (Protocol::Tcp, "::ffff:10.3.0.9", 80),
    ] {
        let k = ServiceKey::addr(p, ip(a), port);
        let af = k.af();
        let dest = if af == Af::V4 {
            dk("192.168.3.1", port)
        } else {
            dk("fd00:3::10", port)
        };
        desired.insert(
            Service::new(k, ServiceSpec::new("rr", af))
                .with_dest(dest, DestSpec::new(Fwd::Masq, 1)),
        );
    }
    let (a, b) = d("192.168.3.2");
    desired.insert(
        Service::new(
            ServiceKey::fwmark(Af::V4, 1),
            ServiceSpec::new("rr", Af::V4),
        )
        .with_dest(a, b),
    );
    let (a, b) = d("fd00:3::20");
    desired.insert(
        Service::new(
            ServiceKey::fwmark(Af::V6, 2),
            ServiceSpec::new("wlc", Af::V6),
        )
        .with_dest(a, b),
    );
    desired.insert(Service::new(
        ServiceKey::fwmark(Af::V4, u32::MAX),
        ServiceSpec::new("lc", Af::V4),
    ));
    converge(&ipvs, &desired).await;
    finish(&ipvs).await;
}

#[tokio::test]
async fn persistence_netmasks_flags_weights_thresholds() {
    vm_only!();
    let ipvs = setup().await;
    let mut v4 = ServiceSpec::new("wlc", Af::V4);
    v4.persistence = Some(300);
    v4.netmask = 0xffff_ff00;
    let mut v6 = ServiceSpec::new("rr", Af::V6);
    v6.persistence = Some(1800);
    v6.netmask = 64;
    let mut v6b = v6.clone();
    v6b.netmask = 128;
    let mut sh = ServiceSpec::new("sh", Af::V4);
    sh.flags = IP_VS_SVC_F_SCHED_SH_FALLBACK | IP_VS_SVC_F_SCHED_SH_PORT;
    let mut mh = ServiceSpec::new("mh", Af::V4);
    mh.flags = IP_VS_SVC_F_SCHED_MH_PORT;
    let mut mh2 = ServiceSpec::new("mh", Af::V6);
    mh2.flags = IP_VS_SVC_F_SCHED_MH_FALLBACK | IP_VS_SVC_F_SCHED_MH_PORT;
    let mut ops = ServiceSpec::new("rr", Af::V4);
    ops.flags = IP_VS_SVC_F_ONEPACKET;
    let mut thr = DestSpec::new(Fwd::Masq, 65535);
    thr.u_threshold = 100;
    thr.l_threshold = 50;
    let mut thr_eq = DestSpec::new(Fwd::Route, 7);
    thr_eq.u_threshold = 10;
    thr_eq.l_threshold = 10;
    let mut desired = IpvsState::new();
    desired.insert(
        Service::new(tcp("10.4.0.1", 443), v4)
            .with_dest(dk("192.168.4.1", 443), thr)
            .with_dest(dk("192.168.4.2", 443), DestSpec::new(Fwd::Masq, 0))
            .with_dest(dk("192.168.4.3", 443), thr_eq),
    );
    desired.insert(Service::new(tcp("fd00:4::1", 443), v6));
    desired.insert(Service::new(tcp("fd00:4::2", 443), v6b));
    desired.insert(Service::new(tcp("10.4.0.2", 80), sh));
    desired.insert(Service::new(ServiceKey::fwmark(Af::V4, 40), mh));
    desired.insert(Service::new(tcp("fd00:4::3", 80), mh2));
    desired.insert(Service::new(
        ServiceKey::addr(Protocol::Udp, ip("10.4.0.3"), 53),
        ops,
    ));
    converge(&ipvs, &desired).await;
    // The v6 prefix went down in host order: ipvsadm reads it as 64 too.
    assert!(run("ipvsadm", &["-Ln"]).contains("TCP  [fd00:4::1]:443 rr persistent 1800 mask 64\n"));
    finish(&ipvs).await;
}

#[tokio::test]
async fn persistence_engine_sip() {
    vm_only!();
    let ipvs = setup().await;
    let mut spec = ServiceSpec::new("rr", Af::V4);
    spec.persistence = Some(60);
    spec.pe_name = Some("sip".into());
    let desired: IpvsState =
        [
            Service::new(ServiceKey::addr(Protocol::Udp, ip("10.5.0.1"), 5060), spec)
                .with_dest(dk("192.168.5.1", 5060), DestSpec::new(Fwd::Masq, 1)),
        ]
        .into_iter()
        .collect();
    converge(&ipvs, &desired).await;
    finish(&ipvs).await;
}

#[tokio::test]
async fn edits_deletes_and_failures_do_not_stop_a_batch() {
    vm_only!();
    let ipvs = setup().await;
    let k = tcp("10.6.0.1", 80);
    let base = Service::new(k.clone(), ServiceSpec::new("rr", Af::V4))
        .with_dest(dk("192.168.6.1", 80), DestSpec::new(Fwd::Masq, 1))
        .with_dest(dk("192.168.6.2", 80), DestSpec::new(Fwd::Masq, 1))
        .with_dest(dk("192.168.6.3", 80), DestSpec::new(Fwd::Masq, 1));
    let other = Service::new(tcp("10.6.0.2", 80), ServiceSpec::new("rr", Af::V4));
    let mut desired: IpvsState = [base.clone(), other].into_iter().collect();
    converge(&ipvs, &desired).await;

    // Weight change: one SET_DEST. Scheduler change: one SET_SERVICE.
    let svc = desired.services.get_mut(&k).unwrap();
    svc.dests.get_mut(&dk("192.168.6.1", 80)).unwrap().weight = 5;
    svc.dests.get_mut(&dk("192.168.6.2", 80)).unwrap().fwd = Fwd::Route;
    svc.spec.scheduler = "wlc".into();
    let ops = converge(&ipvs, &desired).await;
    assert_eq!(ops.len(), 3, "{ops:#?}");
    assert!(matches!(ops[0], Op::EditService(..)));
    assert!(ops[1..].iter().all(|o| matches!(o, Op::EditDest(..))));

    // Delete a destination and a whole service.
    desired
        .services
        .get_mut(&k)
        .unwrap()
        .dests
        .remove(&dk("192.168.6.3", 80));
    desired.services.remove(&tcp("10.6.0.2", 80));
    let (observed, _) = ipvs.dump().await.unwrap();
    let mut owned = OwnedSet::from_state(&desired);
    owned.insert(tcp("10.6.0.2", 80));
    let ops = diff(&desired, &observed, &owned);
    assert_eq!(ops.len(), 2, "{ops:#?}");
    for r in ipvs.apply(ops).await.unwrap() {
        r.unwrap();
    }
    check(&ipvs, &desired).await;

    // A refused op in the middle: the ones after it still run.
    let d4 = dk("192.168.6.4", 80);
    let res = ipvs
        .apply(vec![
            Op::AddService(Service::new(k.clone(), ServiceSpec::new("rr", Af::V4))),
            Op::DelDest(k.clone(), dk("192.168.9.9", 80)),
            Op::EditService(tcp("10.6.9.9", 80), ServiceSpec::new("rr", Af::V4)),
            Op::AddDest(k.clone(), d4, DestSpec::new(Fwd::Masq, 2)),
        ])
        .await
        .unwrap();
    let msgs: Vec<String> = res
        .iter()
        .map(|r| match r {
            Ok(()) => "ok".into(),
            Err(e) => e.to_string(),
        })
        .collect();
    eprintln!("{msgs:#?}");
    assert_eq!(msgs[0], "adding service TCP 10.6.0.1:80: File exists");
    assert_eq!(
        msgs[1],
        "deleting destination 192.168.9.9:80 from service TCP 10.6.0.1:80: No such file or directory"
    );
    assert_eq!(msgs[2], "changing service TCP 10.6.9.9:80: No such process");
    assert_eq!(msgs[3], "ok");
    desired
        .services
        .get_mut(&k)
        .unwrap()
        .dests
        .insert(d4, DestSpec::new(Fwd::Masq, 2));
    check(&ipvs, &desired).await;

    // Foreign entries (made with ipvsadm) are left alone by diff.
    run("ipvsadm", &["-A", "-t", "10.6.7.7:80", "-s", "rr"]);
    let (observed, _) = ipvs.dump().await.unwrap();
    assert!(diff(&desired, &observed, &OwnedSet::from_state(&desired)).is_empty());
    ipvs.flush().await.unwrap();
    assert!(ipvs.dump().await.unwrap().0.is_empty());
    assert_eq!(run("ipvsadm", &["-Ln"]).lines().count(), 3);
    finish(&ipvs).await;
}

#[tokio::test]
async fn timeouts_get_and_set() {
    vm_only!();
    let ipvs = setup().await;
    let before = ipvs.timeouts().await.unwrap();
    eprintln!("timeouts before: {before:?}");
    ipvs.set_timeouts(1000, 130, 310).await.unwrap();
    assert_eq!(ipvs.timeouts().await.unwrap(), (1000, 130, 310));
    assert_eq!(
        run("ipvsadm", &["-L", "--timeout"]).trim(),
        "Timeout (tcp tcpfin udp): 1000 130 310"
    );
    // 0 leaves a value as it is.
    ipvs.set_timeouts(0, 140, 0).await.unwrap();
    assert_eq!(ipvs.timeouts().await.unwrap(), (1000, 140, 310));
    ipvs.set_timeouts(0, 0, 0).await.unwrap();
    assert_eq!(ipvs.timeouts().await.unwrap(), (1000, 140, 310));
    ipvs.set_timeouts(before.0, before.1, before.2)
        .await
        .unwrap();
    assert_eq!(ipvs.timeouts().await.unwrap(), before);
    finish(&ipvs).await;
}

#[tokio::test]
async fn sync_daemons_start_list_stop() {
    vm_only!();
    let ipvs = setup().await;
    let _ = Command::new("ip")
        .args(["link", "del", "lbdsync0"])
        .stderr(Stdio::null())
        .status();
    run("ip", &["link", "add", "lbdsync0", "type", "dummy"]);
    run("ip", &["link", "set", "lbdsync0", "multicast", "on", "up"]);
    run("ip", &["addr", "add", "10.99.0.1/24", "dev", "lbdsync0"]);
    let master = SyncDaemon {
        state: SyncState::Master,
        ifname: "lbdsync0".into(),
        syncid: 7,
        maxlen: None,
        port: None,
        ttl: None,
        group: None,
    };
    let backup = SyncDaemon {
        state: SyncState::Backup,
        ifname: "lbdsync0".into(),
        syncid: 7,
        maxlen: Some(1400),
        port: Some(8849),
        ttl: Some(3),
        group: Some(ip("224.0.0.82")),
    };
    ipvs.start_sync_daemon(&master).await.unwrap();
    ipvs.start_sync_daemon(&backup).await.unwrap();
    let mut list = ipvs.sync_daemons().await.unwrap();
    list.sort_by_key(|d| d.state);
    eprintln!("{list:#?}");
    eprintln!("{}", run("ipvsadm", &["-L", "--daemon"]));
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].state, SyncState::Master);
    assert_eq!(list[0].ifname, "lbdsync0");
    assert_eq!(list[0].syncid, 7);
    assert_eq!(list[1].state, SyncState::Backup);
    assert_eq!(list[1].maxlen, Some(1400));
    assert_eq!(list[1].port, Some(8849));
    assert_eq!(list[1].ttl, Some(3));
    assert_eq!(list[1].group, Some(ip("224.0.0.82")));
    // A second master is refused.
    let e = ipvs.start_sync_daemon(&master).await.unwrap_err();
    eprintln!("second master: {e}");
    ipvs.stop_sync_daemon(SyncState::Master).await.unwrap();
    let list = ipvs.sync_daemons().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].state, SyncState::Backup);
    ipvs.stop_sync_daemon(SyncState::Backup).await.unwrap();
    assert!(ipvs.sync_daemons().await.unwrap().is_empty());
    run("ip", &["link", "del", "lbdsync0"]);
    finish(&ipvs).await;
}
