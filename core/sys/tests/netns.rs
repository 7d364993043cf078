//! Root-only tests against the real kernel, each in network namespaces of
//! its own joined by a veth pair. Run with
//! `cargo test -p lbd-sys --features netns-tests` as root.
#![cfg(feature = "netns-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lbd_sys::{
    check_privileges, garp_frame, icmpv6_checksum, AddrSpec, GarpSender, LinkEvent, Netlink,
    RouteKind, RouteSpec, SysError, VrrpSocketV4, VrrpSocketV6,
};

const DEADLINE: Duration = Duration::from_secs(10);
const VRRP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
const VRRP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// The `netns-tests` feature means "this run is root" (the VM tier): not
/// being root fails the test instead of passing it untested.
fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "netns tests need root (feature netns-tests, run by scripts/test vm)"
    );
}

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace deleted on drop, so a failed assertion cleans up too.
struct Ns(String);

impl Ns {
    fn new() -> Ns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "lbdsys-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        sh(&["ip", "netns", "add", &name]);
        let ns = Ns(name);
        // DAD off so link-locals and test addresses are usable at once.
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"]);
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]);
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "-n", &self.0];
        v.extend_from_slice(args);
        sh(&v)
    }

    fn exec(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "netns", "exec", &self.0];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// Run `f` on a fresh thread inside this namespace, on a current_thread
    /// runtime as the daemon uses.
    fn spawn<F, Fut, T>(&self, f: F) -> std::thread::JoinHandle<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            // SAFETY: file is an open netns fd; setns only affects this thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(f())
        })
    }

    fn run<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        join(self.spawn(f))
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn join<T>(h: std::thread::JoinHandle<T>) -> T {
    match h.join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// Namespaces A and B joined by veth `va` (A, 10.9.0.1/24, fd00::1/64) and
/// `vb` (B, 10.9.0.2/24, fd00::2/64), both up.
fn pair() -> (Ns, Ns) {
    let (a, b) = (Ns::new(), Ns::new());
    sh(&[
        "ip", "link", "add", "va", "netns", &a.0, "type", "veth", "peer", "name", "vb", "netns",
        &b.0,
    ]);
    for (ns, dev, v4, v6) in [
        (&a, "va", "10.9.0.1/24", "fd00::1/64"),
        (&b, "vb", "10.9.0.2/24", "fd00::2/64"),
    ] {
        ns.ip(&["addr", "add", v4, "dev", dev]);
        ns.ip(&["addr", "add", v6, "dev", dev, "nodad"]);
        ns.ip(&["link", "set", dev, "up"]);
    }
    // Carrier comes up asynchronously (linkwatch); IPv6 (link-local, the
    // ff00::/8 route) only then, and multicast NA/VRRP is dropped before it.
    for (ns, dev) in [(&a, "va"), (&b, "vb")] {
        poll_sync("link-local address", || {
            ns.ip(&["-6", "addr", "show", "dev", dev, "scope", "link"])
                .contains("fe80")
        });
    }
    (a, b)
}

/// Poll `f` until it returns Some or the deadline passes.
async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn poll_sync(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn privileges_ok_as_root() {
    require_root();
    check_privileges().unwrap();
}

#[test]
fn addresses_add_replace_delete() {
    require_root();
    let (a, _b) = pair();
    a.run(|| async {
        let (nl, _ev) = Netlink::connect().await.unwrap();
        let va = nl.link_by_name("va").await.unwrap();
        assert!(va.up && va.mtu == 1500 && va.mac != [0; 6]);
        assert!(nl.links().await.unwrap().iter().any(|l| l.name == "lo"));
        match nl.link_by_name("nosuch0").await {
            Err(SysError::NotFound(n)) => assert_eq!(n, "nosuch0"),
            other => panic!("want NotFound, got {other:?}"),
        }

        let vip = AddrSpec {
            addr: "10.9.0.100".parse().unwrap(),
            prefix: 24,
            label: Some("va:vip".into()),
            scope: None,
            brd: None,
        };
        nl.addr_add(va.index, &vip).await.unwrap();
        nl.addr_add(va.index, &vip).await.unwrap(); // replace: no EEXIST
        let addrs = nl.addresses(va.index).await.unwrap();
        let got = addrs.iter().find(|x| x.addr == vip.addr).unwrap();
        assert_eq!(
            (got.prefix, got.label.as_deref(), got.scope),
            (24, Some("va:vip"), 0)
        );
        // The VIP is in the primary's subnet, so it is secondary.
        assert_eq!(
            nl.primary_ipv4(va.index).await.unwrap(),
            Some(Ipv4Addr::new(10, 9, 0, 1))
        );
        nl.addr_del(va.index, vip.addr, 24).await.unwrap();
        nl.addr_del(va.index, vip.addr, 24).await.unwrap(); // absent: Ok
        let addrs = nl.addresses(va.index).await.unwrap();
        assert!(!addrs.iter().any(|x| x.addr == vip.addr));

        let vip6 = AddrSpec {
            addr: "fd00::100".parse().unwrap(),
            prefix: 64,
            label: None,
            scope: None,
            brd: None,
        };
        nl.addr_add(va.index, &vip6).await.unwrap();
        nl.addr_add(va.index, &vip6).await.unwrap();
        assert!(nl
            .addresses(va.index)
            .await
            .unwrap()
            .iter()
            .any(|x| x.addr == vip6.addr && x.prefix == 64));
        let ll = nl.link_local_ipv6(va.index).await.unwrap().unwrap();
        assert_eq!(ll.segments()[0], 0xfe80);
        nl.addr_del(va.index, vip6.addr, 64).await.unwrap();
        nl.addr_del(va.index, vip6.addr, 64).await.unwrap();

        // Errors say what and where.
        let e = nl.addr_add(999_999, &vip).await.unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("adding 10.9.0.100/24 to index 999999: "),
            "{msg}"
        );
        assert!(!msg.contains("os error"), "{msg}");
        nl.addr_add(va.index, &vip6).await.unwrap();
    });
    // The v6 VIP skipped DAD: never tentative.
    let out = a.ip(&["-6", "addr", "show", "dev", "va"]);
    let line = out.lines().find(|l| l.contains("fd00::100")).unwrap();
    assert!(!line.contains("tentative"), "{line}");
}

/// Replace adopts an existing identical route, delete tolerates an absent
/// one, and `ip route` shows what was asked (table, scope, type, protocol).
#[test]
fn routes_replace_delete() {
    require_root();
    let (a, _b) = pair();
    // An operator's identical route, protocol boot: replace adopts it.
    a.ip(&["route", "add", "10.20.0.0/16", "via", "10.9.0.254"]);
    let shown = a.run(|| async {
        let (nl, _ev) = Netlink::connect().await.unwrap();
        let va = nl.link_by_name("va").await.unwrap();
        let r = |dst: &str, len, via: Option<&str>, kind, table| RouteSpec {
            kind,
            dst: dst.parse().unwrap(),
            dst_len: len,
            src: None,
            via: via.map(|v| v.parse().unwrap()),
            oif: (kind == RouteKind::Unicast).then_some(va.index),
            scope: if via.is_none() && kind == RouteKind::Unicast {
                253
            } else {
                0
            },
            table,
            metric: None,
            protocol: 18,
            onlink: false,
        };
        let routes = [
            r("10.20.0.0", 16, Some("10.9.0.254"), RouteKind::Unicast, 254),
            r("10.21.0.0", 16, None, RouteKind::Unicast, 254),
            r("10.22.0.1", 32, None, RouteKind::Blackhole, 254),
            r("0.0.0.0", 0, Some("10.9.0.254"), RouteKind::Unicast, 100),
            r("fd01::", 64, Some("fd00::fe"), RouteKind::Unicast, 254),
        ];
        for x in &routes {
            nl.route_replace(x).await.unwrap();
            nl.route_replace(x).await.unwrap(); // again: no EEXIST
        }
        let shown = (
            String::from_utf8_lossy(
                &Command::new("ip")
                    .args(["route", "show"])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .into_owned(),
            String::from_utf8_lossy(
                &Command::new("ip")
                    .args(["route", "show", "table", "100"])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .into_owned(),
            String::from_utf8_lossy(
                &Command::new("ip")
                    .args(["-6", "route", "show"])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .into_owned(),
        );
        for x in &routes {
            nl.route_del(x).await.unwrap();
            nl.route_del(x).await.unwrap(); // gone: Ok
        }
        // Errors say what and where.
        let bad = RouteSpec {
            oif: Some(999_999),
            ..routes[1].clone()
        };
        let msg = nl.route_replace(&bad).await.unwrap_err().to_string();
        assert!(
            msg.starts_with("adding route 10.21.0.0/16 dev index 999999: "),
            "{msg}"
        );
        shown
    });
    let (main, t100, v6) = shown;
    assert!(
        main.contains("10.20.0.0/16 via 10.9.0.254 dev va proto keepalived"),
        "{main}"
    );
    assert!(
        main.contains("10.21.0.0/16 dev va proto keepalived scope link"),
        "{main}"
    );
    assert!(
        main.contains("blackhole 10.22.0.1 proto keepalived"),
        "{main}"
    );
    assert!(
        t100.contains("default via 10.9.0.254 dev va proto keepalived"),
        "{t100}"
    );
    assert!(
        v6.contains("fd01::/64 via fd00::fe dev va proto keepalived"),
        "{v6}"
    );
    let after = a.ip(&["route", "show", "table", "all"]);
    for gone in ["10.20.0.0", "10.21.0.0", "10.22.0.1", "table 100", "fd01::"] {
        assert!(!after.contains(gone), "{gone} left behind:\n{after}");
    }
}

#[test]
fn link_events_carrier_and_admin() {
    require_root();
    let (a, b) = pair();
    let bname = b.0.clone();
    let aname = a.0.clone();
    a.run(move || async move {
        let (nl, mut ev) = Netlink::connect().await.unwrap();
        let va = nl.link_by_name("va").await.unwrap();
        let wait = async |ev: &mut lbd_sys::LinkEvents, up: bool| {
            tokio::time::timeout(DEADLINE, async {
                loop {
                    match ev.next().await {
                        Some(LinkEvent::Changed(l)) if l.index == va.index && l.up == up => {
                            return l
                        }
                        Some(_) => {}
                        None => panic!("event stream ended"),
                    }
                }
            })
            .await
            .expect("link event")
        };
        // Peer down: our carrier drops while we stay admin up.
        sh(&["ip", "-n", &bname, "link", "set", "vb", "down"]);
        let l = wait(&mut ev, false).await;
        assert_eq!(l.name, "va");
        sh(&["ip", "-n", &bname, "link", "set", "vb", "up"]);
        wait(&mut ev, true).await;
        sh(&["ip", "-n", &aname, "link", "set", "va", "down"]);
        wait(&mut ev, false).await;
        sh(&["ip", "-n", &aname, "link", "set", "va", "up"]);
        wait(&mut ev, true).await;

        // (no dummy module on every kernel: a second veth pair will do)
        sh(&[
            "ip", "-n", &aname, "link", "add", "lbdt0", "type", "veth", "peer", "name", "lbdt1",
        ]);
        let idx = until("dummy link", async || nl.link_by_name("lbdt0").await.ok())
            .await
            .index;
        sh(&["ip", "-n", &aname, "link", "del", "lbdt0"]);
        tokio::time::timeout(DEADLINE, async {
            loop {
                match ev.next().await {
                    Some(LinkEvent::Removed { index, name }) if index == idx => {
                        assert_eq!(name, "lbdt0");
                        return;
                    }
                    Some(_) => {}
                    None => panic!("event stream ended"),
                }
            }
        })
        .await
        .expect("removed event");
    });
}

#[derive(Clone, Default)]
struct Flags {
    ready: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
}

impl Flags {
    /// Sender side: wait for the receiver, then call `send` every 100 ms
    /// until the receiver is done (a single packet could race the join).
    async fn keep_sending(&self, mut send: impl AsyncFnMut()) {
        let ready = self.ready.clone();
        until("receiver ready", async || {
            ready.load(Ordering::SeqCst).then_some(())
        })
        .await;
        let end = Instant::now() + DEADLINE;
        while !self.done.load(Ordering::SeqCst) && Instant::now() < end {
            send().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// An IPv4 VRRP packet as the codec would build it (kernel fills checksum
/// and length); the payload is a marker, not a valid advert.
fn v4_packet(src: Ipv4Addr, dst: Ipv4Addr, marker: u8) -> Vec<u8> {
    let mut p = vec![
        0x45, 0xc0, 0, 0, 0, 0, 0, 0, 255, 112, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    p.extend_from_slice(&[0x21, marker, 100, 1, 0, 1, 0, 0, 10, 9, 0, 100]);
    p
}

#[test]
fn vrrp_v4_multicast_and_unicast() {
    require_root();
    let (a, b) = pair();
    let f = Flags::default();
    let fb = f.clone();
    let rx = b.spawn(move || async move {
        let nl = Netlink::connect().await.unwrap().0;
        let vb = nl.link_by_name("vb").await.unwrap();
        let s = VrrpSocketV4::open("vb", vb.index, 112, Some(VRRP_V4)).unwrap();
        fb.ready.store(true, Ordering::SeqCst);
        let mut buf = [0u8; 1500];
        let mut seen = [false; 2];
        let r = tokio::time::timeout(DEADLINE, async {
            while seen != [true; 2] {
                let n = s.recv(&mut buf).await.unwrap();
                let p = &buf[..n];
                assert_eq!(p[8], 255, "TTL");
                assert_eq!(p[9], 112, "protocol");
                assert_eq!(&p[12..16], &[10, 9, 0, 1], "source");
                let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
                match (p[21], dst) {
                    (1, d) if d == VRRP_V4 => seen[0] = true,
                    (2, d) if d == Ipv4Addr::new(10, 9, 0, 2) => seen[1] = true,
                    other => panic!("unexpected packet {other:?}"),
                }
            }
        })
        .await;
        fb.done.store(true, Ordering::SeqCst);
        r.expect("multicast and unicast VRRP packets");
    });
    a.run(move || async move {
        let nl = Netlink::connect().await.unwrap().0;
        let va = nl.link_by_name("va").await.unwrap();
        let s = VrrpSocketV4::open("va", va.index, 112, Some(VRRP_V4)).unwrap();
        let src = Ipv4Addr::new(10, 9, 0, 1);
        let uni = Ipv4Addr::new(10, 9, 0, 2);
        f.keep_sending(async || {
            s.send(&v4_packet(src, VRRP_V4, 1), VRRP_V4).await.unwrap();
            s.send(&v4_packet(src, uni, 2), uni).await.unwrap();
        })
        .await;
    });
    join(rx);
}

#[test]
fn vrrp_v6_multicast_and_unicast() {
    require_root();
    let (a, b) = pair();
    let lla = a.run(|| async {
        let nl = Netlink::connect().await.unwrap().0;
        let idx = nl.link_by_name("va").await.unwrap().index;
        until("link-local on va", async || {
            nl.link_local_ipv6(idx).await.unwrap()
        })
        .await
    });
    let f = Flags::default();
    let fb = f.clone();
    let (tx, rx_ll) = std::sync::mpsc::channel();
    let rx = b.spawn(move || async move {
        let nl = Netlink::connect().await.unwrap().0;
        let vb = nl.link_by_name("vb").await.unwrap();
        let llb = until("link-local on vb", async || {
            nl.link_local_ipv6(vb.index).await.unwrap()
        })
        .await;
        tx.send(llb).unwrap();
        let s = VrrpSocketV6::open("vb", vb.index, llb, Some(VRRP_V6)).unwrap();
        fb.ready.store(true, Ordering::SeqCst);
        let mut buf = [0u8; 1500];
        let mut seen = [false; 2];
        let r = tokio::time::timeout(DEADLINE, async {
            while seen != [true; 2] {
                let r = s.recv(&mut buf).await.unwrap();
                assert_eq!(r.hop_limit, 255);
                assert_eq!(r.src, lla);
                match (buf[..r.len].first(), r.dst) {
                    (Some(1), d) if d == VRRP_V6 => seen[0] = true,
                    (Some(2), d) if d == llb => seen[1] = true,
                    other => panic!("unexpected packet {other:?}"),
                }
            }
        })
        .await;
        fb.done.store(true, Ordering::SeqCst);
        r.expect("multicast and unicast VRRP packets");
    });
    let llb = rx_ll.recv_timeout(DEADLINE).unwrap();
    a.run(move || async move {
        let nl = Netlink::connect().await.unwrap().0;
        let va = nl.link_by_name("va").await.unwrap();
        let s = VrrpSocketV6::open("va", va.index, lla, Some(VRRP_V6)).unwrap();
        f.keep_sending(async || {
            s.send(&[1, 0x31, 100, 1], VRRP_V6).await.unwrap();
            s.send(&[2, 0x31, 100, 1], llb).await.unwrap();
        })
        .await;
    });
    join(rx);
}

/// AF_PACKET receiver for one ethertype on `ifname` in the current thread's
/// namespace; returns the first frame `want` accepts.
fn capture(
    ifname: &str,
    ethertype: u16,
    ready: &AtomicBool,
    want: impl Fn(&[u8]) -> bool,
) -> Vec<u8> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(
        Domain::PACKET,
        Type::RAW,
        Some(Protocol::from(i32::from(ethertype.to_be()))),
    )
    .unwrap();
    s.bind_device(Some(ifname.as_bytes())).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    ready.store(true, Ordering::SeqCst);
    let end = Instant::now() + DEADLINE;
    let mut buf = [0u8; 2048];
    loop {
        assert!(Instant::now() < end, "no matching frame on {ifname}");
        if let Ok(n) = std::io::Read::read(&mut &s, &mut buf) {
            if want(&buf[..n]) {
                return buf[..n].to_vec();
            }
        }
    }
}

const VMAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x07];

#[test]
fn garp_updates_neighbour() {
    require_root();
    let (a, b) = pair();
    let vip = Ipv4Addr::new(10, 9, 0, 50);
    // Linux only updates existing entries from a gratuitous ARP (arp_accept
    // is off), so plant a stale one.
    b.ip(&[
        "neigh",
        "add",
        "10.9.0.50",
        "lladdr",
        "02:00:00:00:00:01",
        "dev",
        "vb",
        "nud",
        "stale",
    ]);
    let f = Flags::default();
    let fb = f.clone();
    let rx = b.spawn(move || async move {
        let expect = garp_frame(VMAC, vip);
        let frame = capture("vb", 0x0806, &fb.ready, |fr| fr == expect);
        fb.done.store(true, Ordering::SeqCst);
        frame
    });
    a.run(move || async move {
        let nl = Netlink::connect().await.unwrap().0;
        let va = nl.link_by_name("va").await.unwrap();
        let g = GarpSender::open(va.index, "va").unwrap();
        f.keep_sending(async || g.send_garp(VMAC, vip).unwrap())
            .await;
    });
    assert_eq!(join(rx), garp_frame(VMAC, vip));
    poll_sync("neighbour entry to take the VMAC", || {
        b.ip(&["neigh", "show", "10.9.0.50", "dev", "vb"])
            .contains("00:00:5e:00:01:07")
    });
}

#[test]
fn unsolicited_na_updates_neighbour() {
    require_root();
    let (a, b) = pair();
    let vip: Ipv6Addr = "fd00::50".parse().unwrap();
    b.ip(&[
        "-6",
        "neigh",
        "add",
        "fd00::50",
        "lladdr",
        "02:00:00:00:00:01",
        "dev",
        "vb",
        "nud",
        "stale",
    ]);
    let f = Flags::default();
    let fb = f.clone();
    let rx = b.spawn(move || async move {
        let frame = capture("vb", 0x86dd, &fb.ready, |fr| {
            fr.len() >= 14 + 40 + 32 && fr[14 + 6] == 58 && fr[14 + 40] == 136
        });
        fb.done.store(true, Ordering::SeqCst);
        frame
    });
    a.run(move || async move {
        let nl = Netlink::connect().await.unwrap().0;
        let va = nl.link_by_name("va").await.unwrap();
        let g = GarpSender::open(va.index, "va").unwrap();
        f.keep_sending(async || g.send_unsolicited_na(VMAC, vip).unwrap())
            .await;
    });
    let fr = join(rx);
    let ip6 = &fr[14..54];
    assert_eq!(ip6[7], 255, "hop limit");
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip6[8..24]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip6[24..40]).unwrap());
    assert_eq!(dst, "ff02::1".parse::<Ipv6Addr>().unwrap());
    let na = &fr[54..86];
    let mut na_zero = na.to_vec();
    na_zero[2..4].fill(0);
    assert_eq!(na_zero, lbd_sys::unsolicited_na(VMAC, vip));
    // The kernel filled the checksum; ours must agree.
    assert_eq!(
        u16::from_be_bytes([na[2], na[3]]),
        icmpv6_checksum(src, dst, na)
    );
    poll_sync("neighbour entry to take the VMAC", || {
        b.ip(&["-6", "neigh", "show", "fd00::50", "dev", "vb"])
            .contains("00:00:5e:00:01:07")
    });
}
