//! One UDP request and its reply (keepalived's UDP_CHECK, layer4.c): a
//! connected socket with IP_RECVERR, so an ICMP error for the datagram
//! (port, host or network unreachable: RFC 792, RFC 4443) comes back as
//! the error of the receive instead of a silent timeout.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::PrimError;

pub struct Request {
    pub dest: SocketAddr,
    pub payload: Vec<u8>,
    pub bind: Option<IpAddr>,
    pub bind_port: u16,
    pub timeout: Duration,
    /// Largest reply kept; a longer datagram is cut (`truncated`).
    pub max_reply: usize,
}

/// What came back within the timeout: a datagram, or nothing at all (no
/// reply and no ICMP error, which keepalived counts as up unless a reply is
/// required).
pub enum Outcome {
    Reply { data: Vec<u8>, truncated: bool },
    Silence,
}

/// Sets IP_RECVERR / IPV6_RECVERR: without it Linux reports only "hard"
/// ICMP errors (port unreachable) to a connected UDP socket, not host or
/// network unreachable.
fn recv_err(s: &Socket, v6: bool) -> std::io::Result<()> {
    let on: libc::c_int = 1;
    let (level, opt) = if v6 {
        (libc::SOL_IPV6, libc::IPV6_RECVERR)
    } else {
        (libc::SOL_IP, libc::IP_RECVERR)
    };
    // SAFETY: a valid fd, and a pointer/length pair to a live c_int.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            opt,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn socket(r: &Request) -> Result<tokio::net::UdpSocket, PrimError> {
    let dest = r.dest;
    let v6 = dest.is_ipv6();
    let what = |w: &str| format!("udp {dest}: {w}");
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| PrimError::io(what("socket"), e))?;
    recv_err(&s, v6).map_err(|e| PrimError::io(what("IP_RECVERR"), e))?;
    if r.bind.is_some() || r.bind_port != 0 {
        let ip = r.bind.unwrap_or(if v6 {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
        });
        let local = SocketAddr::new(ip, r.bind_port);
        s.bind(&local.into())
            .map_err(|e| PrimError::io(what(&format!("bind {local}")), e))?;
    }
    s.set_nonblocking(true)
        .map_err(|e| PrimError::io(what("nonblocking"), e))?;
    tokio::net::UdpSocket::from_std(s.into()).map_err(|e| PrimError::io(what("register"), e))
}

/// Sends `payload` to `dest` and waits up to `timeout` for one reply.
pub async fn request(r: Request) -> Result<Outcome, PrimError> {
    let dest = r.dest;
    let sock = socket(&r)?;
    let work = async {
        sock.connect(dest)
            .await
            .map_err(|e| PrimError::io(format!("udp {dest}: connect"), e))?;
        sock.send(&r.payload)
            .await
            .map_err(|e| PrimError::io(format!("udp {dest}: send"), e))?;
        // One byte more than kept tells a cut datagram from a full one.
        let mut buf = vec![0u8; r.max_reply.saturating_add(1)];
        let n = sock
            .recv(&mut buf)
            .await
            .map_err(|e| unreachable(dest, e))?;
        let truncated = n > r.max_reply;
        buf.truncate(n.min(r.max_reply));
        Ok(Outcome::Reply {
            data: buf,
            truncated,
        })
    };
    match tokio::time::timeout(r.timeout, work).await {
        Ok(res) => res,
        Err(_) => Ok(Outcome::Silence),
    }
}

/// The ICMP error behind a receive error, named as an operator knows it.
fn unreachable(dest: SocketAddr, e: std::io::Error) -> PrimError {
    let why = match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => "port unreachable (ICMP)",
        Some(libc::EHOSTUNREACH) => "host unreachable (ICMP)",
        Some(libc::ENETUNREACH) => "network unreachable (ICMP)",
        _ => return PrimError::io(format!("udp {dest}: receive"), e),
    };
    PrimError::Msg(format!("udp {dest}: {why}"))
}
