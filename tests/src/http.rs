//! A tiny HTTP server that answers with its name, and a client helper.

use crate::lab::{Lab, Node, Proc};

const SERVER: &str = r#"
import http.server, sys
name, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (name + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer.address_family = __import__("socket").AF_INET6 if ":" in addr else __import__("socket").AF_INET
http.server.ThreadingHTTPServer.allow_reuse_address = True
srv = http.server.ThreadingHTTPServer((addr, port), H)
print("listening", flush=True)
srv.serve_forever()
"#;

/// Serve `name` on `addr:port` in `node` (addr "0.0.0.0" for any); returns
/// once the socket is bound.
pub fn serve(lab: &Lab, node: &Node, name: &str, addr: &str, port: u16) -> Proc {
    let p = port.to_string();
    let proc = lab.spawn(
        node,
        &format!("http{port}"),
        &["/usr/bin/python3", "-c", SERVER, name, addr, &p],
    );
    let ok = crate::wait_until(std::time::Duration::from_secs(20), || {
        proc.log_text().contains("listening") || !proc.alive()
    });
    assert!(
        ok && proc.alive(),
        "http server on {} failed: {}",
        node.name,
        proc.log_text()
    );
    proc
}

/// GET http://ip:port/ from `client`; the body (the server's name) or None.
pub fn get(lab: &Lab, client: &Node, ip: &str, port: u16) -> Option<String> {
    let host = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_owned()
    };
    let url = format!("http://{host}:{port}/");
    let out = lab.exec(client, &["curl", "-s", "-g", "--max-time", "1", &url]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// An HAProxy config at `path` for the proxy-pair tests: the VIP on :80 to
/// `backend`:8080. It binds the VIP before the node holds it, as a proxy
/// pair does, so the node gets `ip_nonlocal_bind`.
pub fn haproxy_config(lab: &Lab, node: &Node, path: &std::path::Path, backend: &str) {
    std::fs::write(
        path,
        format!(
            "global\n  maxconn 100\ndefaults\n  mode http\n  timeout connect 2s\n  \
             timeout client 5s\n  timeout server 5s\nfrontend fe\n  bind {}:80\n  \
             default_backend be\nbackend be\n  server web {backend}:8080\n",
            crate::VIP4
        ),
    )
    .unwrap();
    lab.exec_ok(node, &["sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1"]);
}
