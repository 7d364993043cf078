//! An HTTP/1.1 client on hyper over a connection we open ourselves (TCP to
//! an address, or a unix socket such as Docker's): health checks want
//! exact control of the address, the timeouts and how much body is read.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
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
    match tokio::time::timeout_at(crate::clock::now() + total, exchange(req)).await {
        Ok(r) => r,
        Err(_) => Err(PrimError::Msg(format!("{at}: timeout after {total:?}"))),
    }
}

async fn exchange(req: Request) -> Result<Response, PrimError> {
    let at = where_(&req.dest);
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
    let stream = if req.connect_timeout >= req.timeout {
        connect.await?
    } else {
        tokio::time::timeout_at(crate::clock::now() + req.connect_timeout, connect)
            .await
            .map_err(|_| {
                PrimError::Msg(format!(
                    "connect {at}: timeout after {:?}",
                    req.connect_timeout
                ))
            })??
    };
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(NoShutdown(stream)))
            .await
            .map_err(|e| PrimError::Msg(format!("{at}: {e}")))?;
    let host = req.host.clone().unwrap_or_else(|| match &req.dest {
        Dest::Tcp(a) if a.is_ipv6() => format!("[{}]", a.ip()),
        Dest::Tcp(a) => a.ip().to_string(),
        Dest::Unix(_) => "localhost".into(),
    });
    let mut b = hyper::Request::builder()
        .method(req.method.as_str())
        .uri(req.path.as_str())
        .header("host", host)
        .header("connection", "close")
        .header("user-agent", "lbd");
    for (k, v) in &req.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let r = b
        .body(Full::new(Bytes::from(req.body)))
        .map_err(|e| PrimError::Msg(format!("{at}: bad request: {e}")))?;
    let max_body = req.max_body;
    let exchange = async move {
        let resp = sender
            .send_request(r)
            .await
            .map_err(|e| PrimError::Msg(format!("{at}: {e}")))?;
        read_response(resp, max_body, &at).await
    };
    // The connection is driven here rather than in a task of its own (one
    // task less per check); it ends with the exchange (Connection: close),
    // and dropping it closes the socket.
    tokio::pin!(exchange);
    tokio::pin!(conn);
    let mut conn_done = false;
    loop {
        tokio::select! {
            r = &mut exchange => return r,
            // An error here also fails the exchange, which reports it.
            _ = &mut conn, if !conn_done => conn_done = true,
        }
    }
}

async fn read_response(
    resp: hyper::Response<hyper::body::Incoming>,
    max_body: usize,
    at: &str,
) -> Result<Response, PrimError> {
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
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| PrimError::Msg(format!("{at}: body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            let room = max_body.saturating_sub(kept.len());
            if data.len() > room {
                kept.extend_from_slice(data.get(..room).unwrap_or_default());
                truncated = true;
                // The rest is not read: a health check never needs it.
                break;
            }
            kept.extend_from_slice(&data);
        }
    }
    Ok(Response {
        status,
        headers,
        body: kept,
        truncated,
    })
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
