//! The bundled `udp`, `smtp`, `ping` and `file` checks (keepalived's
//! UDP_CHECK, SMTP_CHECK, PING_CHECK, FILE_CHECK) against real peers: UDP
//! responders on loopback, Debian's aiosmtpd and a hand-written SMTP
//! server, ICMP echo to loopback and into a network namespace (one address
//! that answers, one that does not), and a file whose content flips.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lbd_plugin::{CheckOutcome, Host, HostConfig, Options, Target};

mod common;
use common::run_check;
use serde_json::json;

fn host() -> Host {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/checks");
    let (h, report) = Host::start(HostConfig {
        builtin: &[],
        dirs: vec![root],
        memory_limit: 64 << 20,
        cpu_slice: Duration::from_millis(100),
        require_root_owned: false,
        script_user: None,
    })
    .unwrap();
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    h
}

fn target(ip: IpAddr, port: u16, weight: Option<u32>) -> Target {
    Target {
        ip,
        port,
        vs: None,
        weight,
    }
}

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn run(h: &Host, plugin: &str, t: Target, o: serde_json::Value) -> CheckOutcome {
    let o: Options = o.as_object().cloned().unwrap();
    run_check(h, plugin, t, o, Duration::from_secs(15)).await
}

/// Answers each datagram with `reply(request)`; `None` stays silent.
fn udp_responder(reply: fn(&[u8]) -> Option<Vec<u8>>) -> (u16, Arc<Mutex<Vec<Vec<u8>>>>) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            log.lock().unwrap().push(buf[..n].to_vec());
            if let Some(r) = reply(&buf[..n]) {
                let _ = s.send_to(&r, from);
            }
        }
    });
    (port, seen)
}

fn closed_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn udp_payload_reply_match_lengths_and_icmp_errors() {
    let h = host();
    // "PONG" then a counter byte that changes per reply.
    let (port, seen) = udp_responder(|req| {
        if req == b"PING\x01" {
            Some(b"PONG\x37".to_vec())
        } else {
            Some(b"?".to_vec())
        }
    });
    let ok = run(
        &h,
        "udp",
        target(LO, port, None),
        json!({ "payload": "50494e47 1", "reply": "504f4e47 3x", "timeout": 2 }),
    )
    .await;
    assert!(ok.ok, "{}", ok.message);
    assert_eq!(seen.lock().unwrap().last().unwrap(), b"PING\x01");
    let wrong = run(
        &h,
        "udp",
        target(LO, port, None),
        json!({ "payload": "50494e47 1", "reply": "504f4e47 4x", "timeout": 2 }),
    )
    .await;
    assert!(
        !wrong.ok && wrong.message.contains("byte 5 is 37, want 40"),
        "{}",
        wrong.message
    );
    // The reply only needs to match up to the shorter length (keepalived).
    let short = run(
        &h,
        "udp",
        target(LO, port, None),
        json!({ "payload": "50494e4701", "reply": "504f4e473700ff", "timeout": 2 }),
    )
    .await;
    assert!(short.ok, "{}", short.message);
    let long = run(
        &h,
        "udp",
        target(LO, port, None),
        json!({ "payload": "50494e4701", "require_reply": true, "max_reply_length": 4, "timeout": 2 }),
    )
    .await;
    assert!(
        !long.ok && long.message.contains("not in 0..4"),
        "{}",
        long.message
    );
    let min = run(
        &h,
        "udp",
        target(LO, port, None),
        json!({ "payload": "50494e4701", "require_reply": true, "min_reply_length": 6, "timeout": 2 }),
    )
    .await;
    assert!(!min.ok, "{}", min.message);
    // Without a payload, keepalived's 32-byte filler goes out.
    let dflt = run(&h, "udp", target(LO, port, None), json!({ "timeout": 2 })).await;
    assert!(dflt.ok, "{}", dflt.message);
    assert_eq!(
        seen.lock().unwrap().last().unwrap(),
        b"keepalived check - keepalived ch"
    );
    let bad = run(
        &h,
        "udp",
        target(LO, port, None),
        json!({ "payload": "zz", "timeout": 2 }),
    )
    .await;
    assert!(
        !bad.ok && bad.message.contains("option payload"),
        "{}",
        bad.message
    );

    // A server that never answers: up unless a reply is required.
    let (quiet, _) = udp_responder(|_| None);
    let silent = run(
        &h,
        "udp",
        target(LO, quiet, None),
        json!({ "timeout": 0.5 }),
    )
    .await;
    assert!(silent.ok, "{}", silent.message);
    let need = run(
        &h,
        "udp",
        target(LO, quiet, None),
        json!({ "timeout": 0.5, "require_reply": true }),
    )
    .await;
    assert!(
        !need.ok && need.message.contains("no reply"),
        "{}",
        need.message
    );
    // Nothing bound: the kernel's ICMP port unreachable fails it at once.
    let t0 = Instant::now();
    let closed = run(
        &h,
        "udp",
        target(LO, closed_udp_port(), None),
        json!({ "timeout": 5 }),
    )
    .await;
    assert!(
        !closed.ok && closed.message.contains("port unreachable"),
        "{}",
        closed.message
    );
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "not from the ICMP error"
    );
}

#[tokio::test]
async fn udp_binds_the_source_address_and_port() {
    let h = host();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    let src = closed_udp_port();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (_, from) = s.recv_from(&mut buf).unwrap();
        s.send_to(b"ok", from).unwrap();
        from
    });
    let o = run(
        &h,
        "udp",
        target(LO, port, None),
        json!({ "bind_ip": "127.0.0.1", "bind_port": src, "require_reply": true, "timeout": 2 }),
    )
    .await;
    assert!(o.ok, "{}", o.message);
    assert_eq!(t.join().unwrap().port(), src);
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's python3-aiosmtpd (scripts/lib.sh installs it) on loopback.
fn aiosmtpd() -> Option<(Kill, u16)> {
    let py = "/usr/bin/python3";
    let has = Command::new(py)
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        return None;
    }
    let port = free_tcp_port();
    let child = Command::new(py)
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let k = Kill(child);
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "aiosmtpd did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((k, port))
}

/// One SMTP session with a scripted server: `banner`, then the reply to
/// HELO and QUIT; returns the lines it received.
fn scripted_smtp(
    banner: &'static str,
    helo: &'static str,
) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut got = Vec::new();
        w.write_all(banner.as_bytes()).unwrap();
        for answer in [helo, "221 bye\r\n"] {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            got.push(line.trim_end().to_string());
            if w.write_all(answer.as_bytes()).is_err() {
                break;
            }
        }
        got
    });
    (port, t)
}

#[tokio::test]
async fn smtp_dialogue_with_aiosmtpd_and_scripted_servers() {
    let h = host();
    // scripts/test installs aiosmtpd for every tier (scripts/lib.sh).
    let (_guard, port) = aiosmtpd().expect(
        "python3-aiosmtpd not installed: apt-get install python3-aiosmtpd (scripts/lib.sh)",
    );
    let o = run(&h, "smtp", target(LO, port, None), json!({ "timeout": 5 })).await;
    assert!(o.ok && o.message.starts_with("220 "), "{}", o.message);

    // Multiline HELO reply (RFC 5321 4.2.1) and the configured helo_name.
    let (port, seen) = scripted_smtp("220 mx.test ESMTP\r\n", "250-mx.test\r\n250 ok\r\n");
    let o = run(
        &h,
        "smtp",
        target(LO, port, None),
        json!({ "helo_name": "lb1.example", "timeout": 2 }),
    )
    .await;
    assert!(o.ok, "{}", o.message);
    assert_eq!(seen.join().unwrap(), ["HELO lb1.example", "QUIT"]);

    let (port, _) = scripted_smtp("554 no service here\r\n", "250 ok\r\n");
    let o = run(&h, "smtp", target(LO, port, None), json!({ "timeout": 2 })).await;
    assert!(
        !o.ok
            && o.message
                .starts_with("greeting: \"554 no service here\", want 220"),
        "{}",
        o.message
    );
    let (port, _) = scripted_smtp("220 mx\r\n", "501 who are you\r\n");
    let o = run(&h, "smtp", target(LO, port, None), json!({ "timeout": 2 })).await;
    assert!(!o.ok && o.message.starts_with("HELO: "), "{}", o.message);
    let (port, _) = scripted_smtp("HTTP/1.1 400 Bad Request\r\n", "");
    let o = run(&h, "smtp", target(LO, port, None), json!({ "timeout": 2 })).await;
    assert!(
        !o.ok && o.message.contains("not an SMTP reply"),
        "{}",
        o.message
    );
    // A server that accepts and says nothing: the greeting times out.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let o = run(
        &h,
        "smtp",
        target(LO, port, None),
        json!({ "timeout": 0.5 }),
    )
    .await;
    assert!(!o.ok && o.message.contains("timeout"), "{}", o.message);
    drop(l);
    let o = run(
        &h,
        "smtp",
        target(LO, free_tcp_port(), None),
        json!({ "timeout": 2 }),
    )
    .await;
    assert!(!o.ok && o.message.contains("connect"), "{}", o.message);
}

async fn ping_loopback(h: &Host, modes: &[&str]) {
    for ip in [LO, IpAddr::V6(Ipv6Addr::LOCALHOST)] {
        for m in modes {
            let o = run(
                h,
                "ping",
                target(ip, 0, None),
                json!({ "timeout": 2, "socket": m }),
            )
            .await;
            assert!(
                o.ok && o.message.starts_with(&format!("echo reply from {ip}")),
                "{ip} {m}: {}",
                o.message
            );
        }
    }
}

#[tokio::test]
async fn ping_loopback_with_the_automatic_socket() {
    ping_loopback(&host(), &["auto"]).await;
}

/// Forcing a raw socket needs CAP_NET_RAW; a datagram socket, a group in
/// net.ipv4.ping_group_range (root's is, in a default namespace).
#[tokio::test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root: the lab tier runs it (--features lab)"
)]
async fn ping_loopback_with_raw_and_datagram_sockets() {
    common::require(common::is_root(), "root (raw ICMP sockets)");
    let h = host();
    ping_loopback(&h, &["raw"]).await;
    // lbd never widens the sysctl: where it excludes our group, a forced
    // datagram socket is refused, saying so.
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap();
    let b: Vec<u32> = range
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    // SAFETY: getegid has no preconditions.
    let gid = unsafe { libc::getegid() };
    if b[0] <= gid && gid <= b[1] {
        ping_loopback(&h, &["datagram"]).await;
    } else {
        let o = run(
            &h,
            "ping",
            target(LO, 0, None),
            json!({ "timeout": 2, "socket": "datagram" }),
        )
        .await;
        assert!(
            !o.ok && o.message.contains("ICMP socket: Permission denied"),
            "{}",
            o.message
        );
    }
}

/// A network namespace with a veth pair: the host side has .1, the
/// namespace .2; .3 is on the link but nobody has it.
struct Netns {
    name: String,
    host_if: String,
}

impl Netns {
    fn new(tag: &str) -> Option<Netns> {
        let id = std::process::id() % 100_000;
        let n = Netns {
            name: format!("lbdck-{tag}-{id}"),
            host_if: format!("lbk{tag}{id}"),
        };
        let sh = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .status()
                .is_ok_and(|s| s.success())
        };
        if !sh(&["netns", "add", &n.name]) {
            return None;
        }
        let peer = format!("{}p", n.host_if);
        let ok = sh(&[
            "link", "add", &n.host_if, "type", "veth", "peer", "name", &peer,
        ]) && sh(&["link", "set", &peer, "netns", &n.name])
            && sh(&["addr", "add", "10.231.7.1/24", "dev", &n.host_if])
            && sh(&[
                "addr",
                "add",
                "fd00:231:7::1/64",
                "dev",
                &n.host_if,
                "nodad",
            ])
            && sh(&["link", "set", &n.host_if, "up"])
            && sh(&["-n", &n.name, "addr", "add", "10.231.7.2/24", "dev", &peer])
            && sh(&[
                "-n",
                &n.name,
                "addr",
                "add",
                "fd00:231:7::2/64",
                "dev",
                &peer,
                "nodad",
            ])
            && sh(&["-n", &n.name, "link", "set", &peer, "up"])
            && sh(&["-n", &n.name, "link", "set", "lo", "up"]);
        assert!(ok, "namespace {} setup failed", n.name);
        Some(n)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[tokio::test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root: the lab tier runs it (--features lab)"
)]
async fn ping_into_a_namespace_one_address_answers_one_does_not() {
    common::require(common::is_root(), "root (network namespaces)");
    let ns = Netns::new("p").expect("ip netns add failed");
    let h = host();
    for (up, down) in [
        ("10.231.7.2", "10.231.7.3"),
        ("fd00:231:7::2", "fd00:231:7::3"),
    ] {
        for m in ["auto", "raw"] {
            let o = run(
                &h,
                "ping",
                target(up.parse().unwrap(), 0, None),
                json!({ "timeout": 3, "socket": m }),
            )
            .await;
            assert!(o.ok, "{up} {m}: {}", o.message);
            let o = run(
                &h,
                "ping",
                target(down.parse().unwrap(), 0, None),
                json!({ "timeout": 1, "socket": m }),
            )
            .await;
            assert!(
                !o.ok && o.message.contains("no echo reply within"),
                "{down} {m}: {}",
                o.message
            );
        }
    }
    // bindto: the source must be ours.
    let o = run(
        &h,
        "ping",
        target("10.231.7.2".parse().unwrap(), 0, None),
        json!({ "timeout": 3, "bind_ip": "10.231.7.1" }),
    )
    .await;
    assert!(o.ok, "{}", o.message);
    let o = run(
        &h,
        "ping",
        target("10.231.7.2".parse().unwrap(), 0, None),
        json!({ "timeout": 3, "bind_ip": "10.231.99.1" }),
    )
    .await;
    assert!(!o.ok && o.message.contains("ICMP socket"), "{}", o.message);
    drop(ns);
}

fn tmp(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lbd-l4-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn file_value_flips_up_down_and_weight() {
    let h = host();
    let d = tmp("file");
    let f = d.join("state");
    let path = f.to_str().unwrap().to_string();
    let check = |weight: i64, reverse: bool| {
        let h = h.clone();
        let path = path.clone();
        async move {
            run(
                &h,
                "file",
                target(LO, 80, Some(10)),
                json!({ "path": path, "weight": weight, "reverse": reverse }),
            )
            .await
        }
    };
    // weight 0: 0 is up, non-zero down; reverse swaps them.
    std::fs::write(&f, "0\n").unwrap();
    let o = check(0, false).await;
    assert!(o.ok && o.weight.is_none(), "{o:?}");
    assert!(!check(0, true).await.ok);
    std::fs::write(&f, "1\n").unwrap();
    let o = check(0, false).await;
    assert!(!o.ok && o.message.ends_with(": 1"), "{o:?}");
    assert!(check(0, true).await.ok);
    // Otherwise value x weight is added to the server's weight (10 here).
    std::fs::write(&f, "-3").unwrap();
    let o = check(2, false).await;
    assert!(o.ok && o.weight == Some(4), "{o:?}");
    assert_eq!(check(2, true).await.weight, Some(16));
    std::fs::write(&f, "  0x10 trailing").unwrap();
    assert_eq!(check(1, false).await.weight, Some(26));
    std::fs::write(&f, "-50").unwrap();
    let o = check(1, false).await;
    assert!(o.ok && o.weight == Some(0), "clamped at 0: {o:?}");
    // Only a product at -2147483648 is keepalived's fault.
    std::fs::write(&f, "-2147483648").unwrap();
    assert!(!check(1, false).await.ok);
    std::fs::write(&f, "-2").unwrap();
    assert!(!check(2147483647, false).await.ok);
    std::fs::write(&f, "-1").unwrap();
    assert!(
        check(2147483647, false).await.ok,
        "-2147483647 is not the fault"
    );
    // Out of the 32-bit range: ignored, the last value stays.
    std::fs::write(&f, "5").unwrap();
    assert_eq!(check(1, false).await.weight, Some(15));
    std::fs::write(&f, "99999999999").unwrap();
    assert_eq!(check(1, false).await.weight, Some(15));
    // No number, or no file, reads as 0.
    std::fs::write(&f, "up").unwrap();
    assert_eq!(check(1, false).await.weight, Some(10));
    std::fs::remove_file(&f).unwrap();
    assert!(check(0, false).await.ok);
    let bad = run(&h, "file", target(LO, 80, None), json!({})).await;
    assert!(
        !bad.ok && bad.message.contains("option path"),
        "{}",
        bad.message
    );
    let _ = std::fs::remove_dir_all(&d);
}
