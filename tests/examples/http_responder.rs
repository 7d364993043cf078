//! The backend of `scripts/bench --part checks`: one process answering
//! HTTP on port 8080 of every local address (the bench routes
//! 10.200.0.0/16 to lo), cheap enough that the checkers, not the responder,
//! are what the benchmark measures (a Python asyncio responder saturated
//! the TCG VM at ~500 requests/s). Every `COUNT_PATH` write (every 200 ms)
//! holds the number of requests answered so far. An HTTP/1.1 request
//! without `Connection: close` keeps its connection (lbd's `keepalive`
//! option); keepalived's HTTP/1.0 requests get one answer and the close.
//!
//! usage: http_responder COUNT_PATH

use std::cell::Cell;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLOSE: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
const KEEP: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Whether the connection stays open after answering this request head.
fn keeps(head: &[u8]) -> bool {
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let first = head.lines().next().unwrap_or_default();
    first.ends_with("http/1.1") && !head.contains("connection: close")
}

fn main() -> std::io::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| std::io::Error::other("usage: http_responder COUNT_PATH"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let sock = tokio::net::TcpSocket::new_v4()?;
        sock.set_reuseaddr(true)?;
        sock.bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8080)))?;
        let listener = sock.listen(4096)?;
        let count = Rc::new(Cell::new(0u64));
        {
            let count = count.clone();
            tokio::task::spawn_local(async move {
                let tmp = format!("{path}.tmp");
                loop {
                    if std::fs::write(&tmp, count.get().to_string()).is_ok() {
                        let _ = std::fs::rename(&tmp, &path);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
        }
        println!("listening");
        loop {
            let (mut s, _) = listener.accept().await?;
            let count = count.clone();
            tokio::task::spawn_local(async move {
                let mut buf = [0u8; 2048];
                let mut have = 0;
                loop {
                    // Read up to the end of a request head.
                    let end = loop {
                        if let Some(p) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                        if have == buf.len() {
                            return;
                        }
                        match s.read(&mut buf[have..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => have += n,
                        }
                    };
                    let keep = keeps(&buf[..end]);
                    if s.write_all(if keep { KEEP } else { CLOSE }).await.is_err() {
                        return;
                    }
                    count.set(count.get() + 1);
                    if !keep {
                        return;
                    }
                    buf.copy_within(end..have, 0);
                    have -= end;
                }
            });
        }
    })
}
