//! An HTTP/1.1 client on hyper over a connection we open ourselves (TCP to
//! an address, or a unix socket such as Docker's): health checks want
//! exact control of the address, the timeouts and how much body is read.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::PrimError;

pub enum Dest {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

pub struct Request {
    pub method: String,
    pub dest: Dest,
    pub path: String,
    pub host: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The whole exchange.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_body: usize,
    pub bind: Option<IpAddr>,
    /// HTTPS (TCP destinations only).
    pub tls: Option<super::tls::Tls>,
    /// Keep the connection open for the next request to the same place
    /// (see `Pool`); otherwise `Connection: close`, one connection per
    /// request as keepalived's checkers do.
    pub keepalive: bool,
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub truncated: bool,
}

fn where_(d: &Dest) -> String {
    match d {
        Dest::Tcp(a) => a.to_string(),
        Dest::Unix(p) => format!("unix:{}", p.display()),
    }
}

pub async fn request(req: Request) -> Result<Response, PrimError> {
    let at = where_(&req.dest);
    let total = req.timeout;
    match tokio::time::timeout_at(crate::clock::now() + total, exchange(req, &at)).await {
        Ok(r) => r,
        Err(_) => Err(PrimError::Msg(format!("{at}: timeout after {total:?}"))),
    }
}

async fn exchange(mut req: Request, at: &str) -> Result<Response, PrimError> {
    let key = req.keepalive.then(|| Key::of(&req, at));
    // Shared by a retry without a copy.
    let body = Bytes::from(std::mem::take(&mut req.body));
    // Only a request that may be repeated is retried on a fresh connection
    // when a kept one turns out to be closed (RFC 9110 9.2.2).
    let idempotent = matches!(req.method.as_str(), "GET" | "HEAD" | "OPTIONS");
    if let Some(k) = &key {
        while let Some(idle) = take_idle(k) {
            match send(idle, hyper_request(&req, body.clone(), at)?, &req, at).await {
                Ok(r) => return Ok(r),
                Err(Failed::BeforeResponse(_)) if idempotent => continue,
                Err(Failed::BeforeResponse(e) | Failed::Later(e)) => return Err(e),
            }
        }
    }
    let stream = connect(&req, at).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(NoShutdown(stream)))
        .await
        .map_err(|e| PrimError::Msg(format!("{at}: {e}")))?;
    let fresh = Idle {
        sender,
        conn: Box::pin(conn),
        key,
        // Set when it goes into the pool.
        since: Duration::ZERO,
    };
    match send(fresh, hyper_request(&req, body, at)?, &req, at).await {
        Ok(r) => Ok(r),
        Err(Failed::BeforeResponse(e) | Failed::Later(e)) => Err(e),
    }
}

async fn connect(req: &Request, at: &str) -> Result<Box<dyn Io>, PrimError> {
    let connect = async {
        match &req.dest {
            Dest::Tcp(a) => {
                let s = match req.bind {
                    Some(b) => {
                        let sock = if a.is_ipv4() {
                            tokio::net::TcpSocket::new_v4()
                        } else {
                            tokio::net::TcpSocket::new_v6()
                        }
                        .map_err(|e| PrimError::io(format!("socket for {at}"), e))?;
                        sock.bind(SocketAddr::new(b, 0))
                            .map_err(|e| PrimError::io(format!("bind {b}"), e))?;
                        sock.connect(*a).await
                    }
                    None => tokio::net::TcpStream::connect(a).await,
                }
                .map_err(|e| PrimError::io(format!("connect {at}"), e))?;
                match &req.tls {
                    None => Ok::<_, PrimError>(Box::new(s) as Box<dyn Io>),
                    Some(t) => {
                        let name = super::tls::server_name(t, a.ip())?;
                        let s = super::tls::connector(t)?
                            .connect(name, s)
                            .await
                            .map_err(|e| PrimError::io(format!("tls {at}"), e))?;
                        Ok(Box::new(s) as Box<dyn Io>)
                    }
                }
            }
            Dest::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(|e| PrimError::io(format!("connect {at}"), e))?;
                Ok(Box::new(s) as Box<dyn Io>)
            }
        }
    };
    // A connect timeout no shorter than the whole exchange's is that one
    // (one timer less per check: each costs a clock read).
    if req.connect_timeout >= req.timeout {
        connect.await
    } else {
        tokio::time::timeout_at(crate::clock::now() + req.connect_timeout, connect)
            .await
            .map_err(|_| {
                PrimError::Msg(format!(
                    "connect {at}: timeout after {:?}",
                    req.connect_timeout
                ))
            })?
    }
}

fn hyper_request(
    req: &Request,
    body: Bytes,
    at: &str,
) -> Result<hyper::Request<Full<Bytes>>, PrimError> {
    let host = req.host.clone().unwrap_or_else(|| match &req.dest {
        Dest::Tcp(a) if a.is_ipv6() => format!("[{}]", a.ip()),
        Dest::Tcp(a) => a.ip().to_string(),
        Dest::Unix(_) => "localhost".into(),
    });
    let mut b = hyper::Request::builder()
        .method(req.method.as_str())
        .uri(req.path.as_str())
        .header("host", host)
        .header("user-agent", "lbd");
    if !req.keepalive {
        b = b.header("connection", "close");
    }
    for (k, v) in &req.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(Full::new(body))
        .map_err(|e| PrimError::Msg(format!("{at}: bad request: {e}")))
}

enum Failed {
    /// No response came: a kept connection the server had closed, say.
    BeforeResponse(PrimError),
    Later(PrimError),
}

/// One exchange on `c`, which goes back to the pool afterwards when it has
/// a key and is still usable (the whole body was read, and neither side
/// asked to close it).
async fn send(
    c: Idle,
    r: hyper::Request<Full<Bytes>>,
    req: &Request,
    at: &str,
) -> Result<Response, Failed> {
    let Idle {
        mut sender,
        mut conn,
        key,
        ..
    } = c;
    let max_body = req.max_body;
    // A kept connection is usable again only once the whole body is read.
    let drain = if key.is_some() { MAX_DRAIN } else { 0 };
    let mut conn_done = false;
    let result = {
        let exchange = async {
            sender
                .ready()
                .await
                .map_err(|e| Failed::BeforeResponse(PrimError::Msg(format!("{at}: {e}"))))?;
            let resp = sender
                .send_request(r)
                .await
                .map_err(|e| Failed::BeforeResponse(PrimError::Msg(format!("{at}: {e}"))))?;
            read_response(resp, max_body, drain, at)
                .await
                .map_err(Failed::Later)
        };
        // The connection is driven here rather than in a task of its own
        // (one task less per check). Without keep-alive it ends with the
        // exchange (Connection: close), and dropping it closes the socket.
        tokio::pin!(exchange);
        loop {
            tokio::select! {
                r = &mut exchange => break r,
                // An error here also fails the exchange, which reports it.
                _ = conn.as_mut(), if !conn_done => conn_done = true,
            }
        }
    };
    if let (Some(key), Ok((_, true))) = (key, &result) {
        if !conn_done {
            put_idle(Idle {
                sender,
                conn,
                key: Some(key),
                since: crate::clock::coarse_now(),
            });
        }
    }
    result.map(|(r, _)| r)
}

/// How much of a body beyond what the caller wants is read to keep the
/// connection; a bigger one closes it.
const MAX_DRAIN: usize = 64 << 10;

type Conn = hyper::client::conn::http1::Connection<TokioIo<NoShutdown<Box<dyn Io>>>, Full<Bytes>>;

/// A connection between requests.
struct Idle {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    conn: Pin<Box<Conn>>,
    key: Option<Key>,
    since: Duration,
}

impl Idle {
    /// Lets the connection take in what arrived while it sat idle (the end
    /// of the last exchange, the server's close) without waiting: ready to
    /// send when it is neither finished nor closed.
    fn usable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        matches!(self.conn.as_mut().poll(&mut cx), Poll::Pending) && !self.sender.is_closed()
    }
}

/// Where a kept connection may be reused: the same destination, source
/// address and TLS settings.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    dest: String,
    bind: Option<IpAddr>,
    tls: Option<(Option<String>, bool, Option<PathBuf>)>,
}

impl Key {
    fn of(r: &Request, at: &str) -> Key {
        Key {
            dest: at.to_string(),
            bind: r.bind,
            tls: r
                .tls
                .as_ref()
                .map(|t| (t.sni.clone(), t.verify, t.ca_file.clone())),
        }
    }
}

/// Kept connections of this (plugin) thread. Bounded in number, and a
/// connection idle longer than `IDLE_FOR` is closed: a checker that runs
/// less often than that, or went away with a reload, opens a new one.
struct Pool {
    idle: HashMap<Key, Vec<Idle>>,
    count: usize,
    swept: Duration,
}

const MAX_IDLE: usize = 16384;
const IDLE_FOR: Duration = Duration::from_secs(30);

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool {
        idle: HashMap::new(),
        count: 0,
        swept: crate::clock::coarse_now(),
    });
}

fn take_idle(k: &Key) -> Option<Idle> {
    POOL.with_borrow_mut(|p| {
        let list = p.idle.get_mut(k)?;
        let mut found = None;
        while let Some(mut c) = list.pop() {
            p.count -= 1;
            if c.usable() {
                found = Some(c);
                break;
            }
        }
        if list.is_empty() {
            p.idle.remove(k);
        }
        found
    })
}

fn put_idle(c: Idle) {
    let Some(k) = c.key.clone() else { return };
    POOL.with_borrow_mut(|p| {
        let now = c.since;
        if now.saturating_sub(p.swept) >= IDLE_FOR {
            p.swept = now;
            let mut count = 0;
            p.idle.retain(|_, list| {
                list.retain(|c| now.saturating_sub(c.since) < IDLE_FOR);
                count += list.len();
                !list.is_empty()
            });
            p.count = count;
        }
        if p.count < MAX_IDLE {
            p.count += 1;
            p.idle.entry(k).or_default().push(c);
        }
    });
}

/// The response, and whether its body was read to the end. Beyond
/// `max_body`, up to `drain` more bytes are read and dropped.
async fn read_response(
    resp: hyper::Response<hyper::body::Incoming>,
    max_body: usize,
    drain: usize,
    at: &str,
) -> Result<(Response, bool), PrimError> {
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = resp.into_body();
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut skipped = 0usize;
    let mut complete = true;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| PrimError::Msg(format!("{at}: body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            let room = max_body.saturating_sub(kept.len());
            if data.len() > room {
                kept.extend_from_slice(data.get(..room).unwrap_or_default());
                truncated = true;
                skipped += data.len() - room;
                // The rest is not read, a health check never needs it;
                // unless the connection is to be kept, and then only so much.
                if skipped > drain {
                    complete = false;
                    break;
                }
            } else {
                kept.extend_from_slice(&data);
            }
        }
    }
    Ok((
        Response {
            status,
            headers,
            body: kept,
            truncated,
        },
        complete,
    ))
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// hyper shuts the write side down before it drops a closed connection:
/// one syscall per check that the close right after makes redundant (the
/// close sends the FIN). TLS close_notify is skipped the same way, as
/// keepalived's SSL_GET does not wait for it either.
struct NoShutdown<S>(S);

impl<S: AsyncRead + Unpin> AsyncRead for NoShutdown<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for NoShutdown<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
