//! The bundled plugins (plugins/ in this repository) against real things on
//! loopback: an HTTP server, TCP ports, programs, processes, dnsmasq, and
//! notify targets (a script, a FIFO-like file, an HTTP listener).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use lbd_plugin::{Event, EventKind, Host, HostConfig, Options, Target};

mod common;
use common::run_check;
use serde_json::json;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins")
}

fn host() -> Host {
    let dirs = ["checks", "notify"]
        .iter()
        .map(|d| root().join(d))
        .collect();
    let (h, report) = Host::start(HostConfig {
        builtin: &[],
        dirs,
        memory_limit: 64 << 20,
        cpu_slice: Duration::from_millis(100),
        require_root_owned: false,
        script_user: None,
    })
    .unwrap();
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    h
}

fn opts(v: serde_json::Value) -> Options {
    v.as_object().cloned().unwrap()
}

fn at(port: u16) -> Target {
    Target {
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port,
        vs: None,
        weight: None,
    }
}

/// Serves `n` requests: /health 200 "all good", /down 503, else 404.
fn http_server(n: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten().take(n) {
            let mut buf = [0u8; 4096];
            let k = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..k]).to_string();
            let (st, body) = if req.starts_with("GET /health ") {
                ("200 OK", "all good")
            } else if req.starts_with("GET /down ") {
                ("503 Unavailable", "busy")
            } else {
                ("404 Not Found", "")
            };
            let _ = write!(
                s,
                "HTTP/1.1 {st}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[tokio::test]
async fn http_get_statuses_digest_and_regex() {
    let h = host();
    let port = http_server(6);
    let run = |o: serde_json::Value| {
        let h = h.clone();
        async move { run_check(&h, "http_get", at(port), opts(o), Duration::from_secs(10)).await }
    };
    let ok = run(json!({ "urls": [{ "path": "/health" }] })).await;
    assert!(ok.ok, "{}", ok.message);
    let down = run(json!({ "urls": [{ "path": "/down" }] })).await;
    assert!(!down.ok);
    assert_eq!(down.message, "GET /down: status 503 not in 200-299");
    let ranged = run(json!({ "urls": [{ "path": "/down", "status": [[500, 503]] }] })).await;
    assert!(ranged.ok, "{}", ranged.message);
    // md5("all good")
    let digest = run(
        json!({ "urls": [{ "path": "/health", "digest": "f1bdc1a8e8a4d5d5a2da5fc0f2e8e6b4" }] }),
    )
    .await;
    assert!(
        !digest.ok && digest.message.contains("digest"),
        "{}",
        digest.message
    );
    let re = run(json!({ "urls": [{ "path": "/health", "regex": "all\\s+go+d" }] })).await;
    assert!(re.ok, "{}", re.message);
    let re_no =
        run(json!({ "urls": [{ "path": "/health", "regex": "good", "regex_no_match": true }] }))
            .await;
    assert!(
        !re_no.ok && re_no.message.contains("matches"),
        "{}",
        re_no.message
    );
    // Nothing listens: a clear failure.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = run_check(
        &h,
        "http_get",
        at(closed),
        Options::new(),
        Duration::from_secs(10),
    )
    .await;
    assert!(
        !refused.ok && refused.message.contains("connect"),
        "{}",
        refused.message
    );
}

/// An HTTP/1.1 server that keeps connections open and closes each after
/// `per_conn` requests without saying so (as a server's idle timeout
/// does). Returns its port and the counts of connections and of requests
/// that asked to close.
fn keepalive_server(
    per_conn: usize,
) -> (
    u16,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let conns = Arc::new(AtomicUsize::new(0));
    let closing = Arc::new(AtomicUsize::new(0));
    let (c, cl) = (conns.clone(), closing.clone());
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            c.fetch_add(1, Ordering::SeqCst);
            let cl = cl.clone();
            std::thread::spawn(move || {
                let mut pending = Vec::new();
                let mut served = 0;
                while served < per_conn {
                    let mut buf = [0u8; 4096];
                    let k = s.read(&mut buf).unwrap_or(0);
                    if k == 0 {
                        break;
                    }
                    pending.extend_from_slice(&buf[..k]);
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&pending[..end]).to_lowercase();
                        pending.drain(..end + 4);
                        if head.contains("connection: close") {
                            cl.fetch_add(1, Ordering::SeqCst);
                        }
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                        served += 1;
                    }
                }
            });
        }
    });
    (port, conns, closing)
}

#[tokio::test]
async fn http_get_keepalive_reuses_its_connection() {
    use std::sync::atomic::Ordering;
    let h = host();
    let (port, conns, closing) = keepalive_server(3);
    let keep = json!({ "keepalive": true });
    for i in 0..7 {
        let r = run_check(
            &h,
            "http_get",
            at(port),
            opts(keep.clone()),
            Duration::from_secs(10),
        )
        .await;
        assert!(r.ok, "check {i}: {}", r.message);
    }
    // 3 + 3 + 1 requests: a new connection only after the server closed one
    // (noticed while idle, or by the request that failed and was retried).
    assert_eq!(conns.load(Ordering::SeqCst), 3);
    assert_eq!(closing.load(Ordering::SeqCst), 0);
    // Without the option, keepalived's way: a connection per check, and
    // the request says so.
    for _ in 0..2 {
        let r = run_check(
            &h,
            "http_get",
            at(port),
            Options::new(),
            Duration::from_secs(10),
        )
        .await;
        assert!(r.ok, "{}", r.message);
    }
    assert_eq!(conns.load(Ordering::SeqCst), 5);
    assert_eq!(closing.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn tcp_exec_process_and_systemd() {
    let h = host();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = l.local_addr().unwrap().port();
    let o = run_check(&h, "tcp", at(open), Options::new(), Duration::from_secs(10)).await;
    assert!(o.ok, "{}", o.message);
    drop(l);
    let o = run_check(&h, "tcp", at(open), Options::new(), Duration::from_secs(10)).await;
    assert!(!o.ok);

    let exec = |argv: serde_json::Value, dynamic: bool| {
        let h = h.clone();
        async move {
            run_check(
                &h,
                "exec",
                at(0),
                opts(json!({ "argv": argv, "dynamic": dynamic, "timeout": 2 })),
                Duration::from_secs(10),
            )
            .await
        }
    };
    let t = exec(json!(["true"]), false).await;
    assert!(t.ok, "{}", t.message);
    let f = exec(json!(["sh", "-c", "exit 1"]), false).await;
    assert!(!f.ok && f.message.contains("exit 1"), "{}", f.message);
    let d = exec(json!(["sh", "-c", "exit 12"]), true).await;
    assert!(d.ok && d.weight == Some(10), "{d:?}");
    let t = exec(json!(["sleep", "10"]), false).await;
    assert!(!t.ok && t.message.contains("timed out"), "{}", t.message);

    // A process by name, as `killall -0` would find it.
    let mut child = Command::new("sleep").arg("60").spawn().unwrap();
    let p = run_check(
        &h,
        "process",
        at(0),
        opts(json!({ "name": "sleep" })),
        Duration::from_secs(10),
    )
    .await;
    assert!(p.ok, "{}", p.message);
    child.kill().unwrap();
    child.wait().unwrap();
    let none = run_check(
        &h,
        "process",
        at(0),
        opts(json!({ "name": "no-such-proc-lbd" })),
        Duration::from_secs(10),
    )
    .await;
    assert!(
        !none.ok && none.message.contains("0 running"),
        "{}",
        none.message
    );
    let bad = run_check(
        &h,
        "process",
        at(0),
        Options::new(),
        Duration::from_secs(10),
    )
    .await;
    assert!(
        !bad.ok && bad.message.contains("option name"),
        "{}",
        bad.message
    );
}

struct Dnsmasq(Child);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn dns_against_dnsmasq() {
    let bin = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    // scripts/test installs it for every tier (scripts/lib.sh).
    let bin = bin.expect("dnsmasq not installed: apt-get install dnsmasq-base (scripts/lib.sh)");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(bin)
        .args([
            "--no-daemon",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            &format!("--port={port}"),
            "--address=/web.lbd.test/10.1.2.3",
            "--host-record=api.lbd.test,10.1.2.4",
            "--log-facility=-",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let guard = Dnsmasq(child);
    // Ready when it logs that it started.
    let mut lines = BufReader::new(err).lines();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        match lines.next() {
            Some(Ok(l)) if l.contains("started") => break,
            Some(_) => continue,
            None => break,
        }
    }
    let h = host();
    let q = |name: &str, ty: &str| {
        let h = h.clone();
        let o = opts(json!({ "name": name, "type": ty, "timeout": 2 }));
        async move { run_check(&h, "dns", at(port), o, Duration::from_secs(10)).await }
    };
    let a = q("api.lbd.test", "A").await;
    assert!(a.ok && a.message.contains("10.1.2.4"), "{}", a.message);
    let w = q("web.lbd.test", "A").await;
    assert!(w.ok && w.message.contains("10.1.2.3"), "{}", w.message);
    let missing = q("nothing.lbd.test", "A").await;
    assert!(!missing.ok, "{}", missing.message);
    drop(guard);
}

fn event(seq: u64, kind: EventKind, name: &str, state: &str, prio: Option<u8>) -> Event {
    Event {
        seq,
        time: SystemTime::now(),
        kind,
        name: name.into(),
        state: state.into(),
        prev: None,
        priority: prio,
        vs: None,
    }
}

fn tmp(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lbd-bundled-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn notify_exec_fifo_log_and_webhook() {
    let h = host();
    let d = tmp("notify");
    let out = d.join("args.txt");
    let script = d.join("notify.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$*\" >> {}\n", out.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let fifo = d.join("fifo.txt");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_port = l.local_addr().unwrap().port();
    let received = std::thread::spawn(move || {
        let mut bodies = Vec::new();
        for mut s in l.incoming().flatten().take(2) {
            let mut buf = vec![0u8; 8192];
            let mut got = 0;
            // Read headers and the JSON body (Content-Length).
            loop {
                let n = s.read(&mut buf[got..]).unwrap_or(0);
                got += n;
                let text = String::from_utf8_lossy(&buf[..got]).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len || n == 0 {
                        bodies.push(body.to_string());
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
        }
        bodies
    });
    let exec = h.notifier(
        "exec",
        opts(json!({ "script": format!("{} extra", script.display()), "args": true })),
    );
    let plain = h.notifier(
        "exec",
        opts(json!({ "script": script.display().to_string() })),
    );
    let fifo_n = h.notifier("fifo", opts(json!({ "path": fifo.display().to_string() })));
    let log = h.notifier("log", Options::new());
    let web = h.notifier(
        "webhook",
        opts(json!({ "url": format!("http://127.0.0.1:{hook_port}/events") })),
    );
    let evs = [
        event(1, EventKind::Instance, "VI_1", "BACKUP", Some(100)),
        event(2, EventKind::Instance, "VI_1", "MASTER", Some(100)),
        event(3, EventKind::Group, "G1", "MASTER", None),
    ];
    for e in &evs {
        exec.send(e.clone());
        fifo_n.send(e.clone());
        log.send(e.clone());
    }
    plain.send(evs[1].clone());
    web.send(evs[0].clone());
    web.send(evs[1].clone());
    drop((exec, plain, fifo_n, log, web));
    h.shutdown(Duration::from_secs(30)).await;
    let args = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = args.lines().collect();
    // keepalived's `notify` arguments after the script's own; the plain
    // notify_master-style hook gets none. Its line may land anywhere.
    let with_args: Vec<&&str> = lines.iter().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        with_args,
        vec![
            &"extra INSTANCE VI_1 BACKUP 100",
            &"extra INSTANCE VI_1 MASTER 100",
            &"extra GROUP G1 MASTER"
        ]
    );
    assert_eq!(lines.iter().filter(|l| l.is_empty()).count(), 1, "{args:?}");
    assert_eq!(
        std::fs::read_to_string(&fifo).unwrap(),
        "INSTANCE \"VI_1\" BACKUP 100\nINSTANCE \"VI_1\" MASTER 100\nGROUP \"G1\" MASTER\n"
    );
    let bodies = received.join().unwrap();
    let v: serde_json::Value = serde_json::from_str(&bodies[1]).unwrap();
    assert_eq!(
        (v["seq"].as_u64(), v["state"].as_str(), v["kind"].as_str()),
        (Some(2), Some("MASTER"), Some("INSTANCE"))
    );
}

/// An HTTPS server with a self-signed certificate for "localhost": serves
/// `n` requests with 200 "secure"; returns its port and the CA PEM path.
fn https_server(n: usize, dir: &Path) -> (u16, PathBuf) {
    use std::sync::Arc;
    use tokio_rustls::rustls;
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let pem = dir.join("ca.pem");
    std::fs::write(&pem, ck.cert.pem()).unwrap();
    let cert = rustls::pki_types::CertificateDer::from(ck.cert.der().to_vec());
    let key = rustls::pki_types::PrivateKeyDer::try_from(ck.key_pair.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            let acc = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
            for _ in 0..n {
                let (s, _) = l.accept().await.unwrap();
                // A client that rejects the certificate aborts the handshake.
                let Ok(mut t) = acc.accept(s).await else {
                    continue;
                };
                let mut buf = [0u8; 4096];
                let _ = t.read(&mut buf).await;
                let _ = t
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure")
                    .await;
                let _ = t.shutdown().await;
            }
        });
    });
    (port, pem)
}

#[tokio::test]
async fn https_get_verification_modes() {
    let h = host();
    let d = tmp("https");
    let (port, ca) = https_server(3, &d);
    let run = |o: serde_json::Value| {
        let h = h.clone();
        async move { run_check(&h, "https_get", at(port), opts(o), Duration::from_secs(10)).await }
    };
    // keepalived's SSL_GET default: no verification.
    let any = run(json!({ "urls": [{ "path": "/", "regex": "secure" }] })).await;
    assert!(any.ok, "{}", any.message);
    let pinned =
        run(json!({ "verify": true, "ca_file": ca.display().to_string(), "sni": "localhost" }))
            .await;
    assert!(pinned.ok, "{}", pinned.message);
    let strict = run(json!({ "verify": true, "sni": "localhost" })).await;
    assert!(
        !strict.ok && strict.message.contains("tls"),
        "{}",
        strict.message
    );
}

#[tokio::test]
async fn fifo_without_a_reader_never_blocks_and_with_one_gets_the_lines() {
    let h = host();
    let d = tmp("fifo");
    let fifo = d.join("notify.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // No reader: the event is skipped (a warning), the queue moves on.
    let n = h.notifier("fifo", opts(json!({ "path": fifo.display().to_string() })));
    n.send(event(1, EventKind::Instance, "VI_1", "MASTER", Some(100)));
    let probe = d.join("probe.txt");
    let after = h.notifier("fifo", opts(json!({ "path": probe.display().to_string() })));
    after.send(event(2, EventKind::Instance, "VI_1", "BACKUP", Some(100)));
    let start = Instant::now();
    while !probe.exists() && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        probe.exists(),
        "the host stalled on a FIFO without a reader"
    );
    // With a reader (opened first, non-blocking, so no thread is needed):
    // the lines arrive in order over one open FIFO.
    let mut rd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    n.send(event(3, EventKind::Group, "G", "MASTER", None));
    n.send(event(4, EventKind::Instance, "VI_1", "FAULT", Some(0)));
    let mut got = Vec::new();
    let start = Instant::now();
    while got.iter().filter(|b| **b == b'\n').count() < 2
        && start.elapsed() < Duration::from_secs(10)
    {
        let mut buf = [0u8; 256];
        match rd.read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let text = String::from_utf8(got).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, ["GROUP \"G\" MASTER", "INSTANCE \"VI_1\" FAULT 0"]);
}
