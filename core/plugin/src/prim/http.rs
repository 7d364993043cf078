//! An HTTP/1.1 client on hyper over a connection we open ourselves (TCP to
//! an address, or a unix socket such as Docker's): health checks want
//! exact control of the address, the timeouts and how much body is read.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

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
    match tokio::time::timeout(total, exchange(req)).await {
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
    let stream = tokio::time::timeout(req.connect_timeout, connect)
        .await
        .map_err(|_| {
            PrimError::Msg(format!(
                "connect {at}: timeout after {:?}",
                req.connect_timeout
            ))
        })??;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| PrimError::Msg(format!("{at}: {e}")))?;
    // The connection task ends with the exchange (Connection: close).
    tokio::spawn(async move {
        let _ = conn.await;
    });
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
    let resp = sender
        .send_request(r)
        .await
        .map_err(|e| PrimError::Msg(format!("{at}: {e}")))?;
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
            let room = req.max_body.saturating_sub(kept.len());
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
