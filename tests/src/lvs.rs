//! Building blocks of the LVS scenarios (VM tier): backends wired for NAT
//! or DR, a line-echo server, and a long-lived connection through a VIP.

use std::path::PathBuf;
use std::time::Duration;

use crate::lab::{Lab, Node, Proc};
use crate::wait_until;

/// A TCP echo server: one line in, the same line out, per connection, for
/// as long as the client keeps it open.
const ECHO: &str = r#"
import socket, sys, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1]))); srv.listen(16)
print("listening", flush=True)
def serve(c):
    f = c.makefile("rwb")
    for line in f:
        f.write(line); f.flush()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// One connection kept open: an echo before, and one more after `go` exists.
const HOLD: &str = r#"
import os, socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
f = c.makefile("rwb")
f.write(b"one\n"); f.flush(); print("got", f.readline().decode().strip(), flush=True)
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)
f.write(b"two\n"); f.flush(); print("got", f.readline().decode().strip(), flush=True)
"#;

/// NAT: replies must return through the director, so the backend lives on
/// the inner LAN (1) only, routed by `gw`.
pub fn nat_backend(lab: &Lab, w: &Node, gw: &str) {
    lab.exec_ok(w, &["ip", "link", "del", "eth0"]);
    lab.join(w, 1);
    lab.exec_ok(w, &["ip", "route", "add", "default", "via", gw]);
}

/// DR: the backend owns the VIP on lo and must not answer ARP for it.
pub fn dr_backend(lab: &Lab, w: &Node, vip: &str) {
    lab.exec_ok(w, &["ip", "addr", "add", &format!("{vip}/32"), "dev", "lo"]);
    lab.exec_ok(w, &["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"]);
    lab.exec_ok(w, &["sysctl", "-qw", "net.ipv4.conf.all.arp_announce=2"]);
}

/// The echo server on `port`, once it listens.
pub fn echo_server(lab: &Lab, w: &Node, port: u16) -> Proc {
    let p = lab.spawn(
        w,
        "echo",
        &["/usr/bin/python3", "-c", ECHO, &port.to_string()],
    );
    assert!(
        wait_until(Duration::from_secs(20), || p
            .log_text()
            .contains("listening")),
        "echo server on {}: {}",
        w.name,
        p.log_text()
    );
    p
}

/// A connection from `client` to `vip:port` that has had its first echo;
/// creating the returned path makes it send the second line ("got two").
pub fn hold_connection(lab: &Lab, client: &Node, vip: &str, port: u16) -> (Proc, PathBuf) {
    let go = lab.path("go");
    let hold = lab.spawn(
        client,
        "hold",
        &[
            "/usr/bin/python3",
            "-c",
            HOLD,
            vip,
            &port.to_string(),
            go.to_str().unwrap(),
        ],
    );
    assert!(
        wait_until(Duration::from_secs(20), || hold
            .log_text()
            .contains("got one")),
        "no echo through the VIP: {}",
        hold.log_text()
    );
    (hold, go)
}
