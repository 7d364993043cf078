//! ICMP echo (keepalived's PING_CHECK): one Echo Request, waiting for its
//! Echo Reply (RFC 792 types 8/0; RFC 4443 types 128/129 for IPv6).
//!
//! It first tries an unprivileged ICMP datagram socket, where the kernel
//! sets the identifier, computes the checksum and delivers only the replies
//! to this socket; `net.ipv4.ping_group_range` decides who may open one,
//! and a new network namespace allows nobody. Then (or when asked) it uses
//! a raw socket (CAP_NET_RAW) and matches replies itself. keepalived
//! instead rewrites ping_group_range; lbd leaves the sysctl alone.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::PrimError;

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;
const HEADER: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Datagram socket, else raw when the datagram one is not allowed.
    Auto,
    Datagram,
    Raw,
}

pub struct Echo {
    pub dest: IpAddr,
    pub bind: Option<IpAddr>,
    pub timeout: Duration,
    /// Bytes after the 8-byte ICMP header.
    pub payload_len: usize,
    pub mode: Mode,
}

#[derive(Debug)]
pub struct Reply {
    pub rtt: Duration,
    /// Whether the raw socket was used.
    pub raw: bool,
}

/// Sequence numbers shared by all checks: each request is told apart by it.
fn next_seq() -> u16 {
    static SEQ: AtomicU16 = AtomicU16::new(1);
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// The Internet checksum (RFC 1071), the workspace's one copy.
pub fn checksum(data: &[u8]) -> u16 {
    lbd_vrrp::codec::checksum(&[data])
}

/// An Echo Request: type, code 0, checksum, identifier, sequence, then
/// keepalived's filler text so no memory content goes out.
fn request(v6: bool, id: u16, seq: u16, payload_len: usize) -> Vec<u8> {
    let mut p = vec![0u8; HEADER + payload_len];
    p[0] = if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 };
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    for (b, f) in p[HEADER..].iter_mut().zip(b"lbd check - ".iter().cycle()) {
        *b = *f;
    }
    // ICMPv6's checksum covers a pseudo-header only the kernel knows: it
    // fills it in for both socket kinds (RFC 4443 2.3, RFC 3542 3.1).
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Whether `pkt` (from `src`) is the reply to our request. A raw IPv4
/// socket hands over the IP header too; a datagram socket has rewritten the
/// identifier, and only delivers its own replies.
fn is_reply(pkt: &[u8], src: IpAddr, dest: IpAddr, raw: bool, id: u16, seq: u16) -> bool {
    let icmp = match (raw, dest) {
        (true, IpAddr::V4(_)) => {
            let Some(first) = pkt.first() else {
                return false;
            };
            pkt.get(usize::from(first & 0x0f) * 4..).unwrap_or_default()
        }
        _ => pkt,
    };
    if icmp.len() < HEADER || src != dest {
        return false;
    }
    let want = if dest.is_ipv6() {
        ECHO_REPLY_V6
    } else {
        ECHO_REPLY_V4
    };
    let got_id = u16::from_be_bytes([icmp[4], icmp[5]]);
    let got_seq = u16::from_be_bytes([icmp[6], icmp[7]]);
    icmp[0] == want && icmp[1] == 0 && got_seq == seq && (!raw || got_id == id)
}

fn open(dest: IpAddr, bind: Option<IpAddr>, raw: bool) -> std::io::Result<Socket> {
    let (domain, proto) = match dest {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    let ty = if raw { Type::RAW } else { Type::DGRAM };
    let s = Socket::new(domain, ty, Some(proto))?;
    if let Some(b) = bind {
        s.bind(&SocketAddr::new(b, 0).into())?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Sends one Echo Request to `e.dest` and waits for its reply.
pub async fn echo(e: Echo) -> Result<Reply, PrimError> {
    let dest = e.dest;
    let what = format!("ping {dest}");
    let (sock, raw) = match e.mode {
        Mode::Raw => (open(dest, e.bind, true), true),
        Mode::Datagram => (open(dest, e.bind, false), false),
        Mode::Auto => match open(dest, e.bind, false) {
            // EACCES: not in ping_group_range; EPROTONOSUPPORT: a kernel
            // without ping sockets.
            Err(err)
                if matches!(
                    err.raw_os_error(),
                    Some(libc::EACCES | libc::EPERM | libc::EPROTONOSUPPORT)
                ) =>
            {
                (open(dest, e.bind, true), true)
            }
            other => (other, false),
        },
    };
    let sock = sock.map_err(|err| {
        let kind = if raw {
            "raw ICMP socket (needs CAP_NET_RAW)"
        } else {
            "ICMP socket"
        };
        PrimError::io(format!("{what}: {kind}"), err)
    })?;
    // tokio's UdpSocket only does sendto/recvfrom on the descriptor, which
    // is what a datagram or raw ICMP socket takes.
    let sock = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(sock))
        .map_err(|err| PrimError::io(format!("{what}: register"), err))?;
    // Raw sockets see every reply on the host: the identifier is ours.
    let id = (std::process::id() as u16) ^ next_seq().rotate_left(8);
    let seq = next_seq();
    let pkt = request(dest.is_ipv6(), id, seq, e.payload_len);
    let start = Instant::now();
    let work = async {
        sock.send_to(&pkt, SocketAddr::new(dest, 0))
            .await
            .map_err(|err| PrimError::io(format!("{what}: send"), err))?;
        let mut buf = vec![0u8; 128 + HEADER + e.payload_len];
        loop {
            let (n, from) = sock
                .recv_from(&mut buf)
                .await
                .map_err(|err| PrimError::io(format!("{what}: receive"), err))?;
            if is_reply(&buf[..n], unmap(from.ip()), dest, raw, id, seq) {
                return Ok(Reply {
                    rtt: start.elapsed(),
                    raw,
                });
            }
        }
    };
    match tokio::time::timeout(e.timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(PrimError::Msg(format!(
            "{what}: no echo reply within {:?}",
            e.timeout
        ))),
    }
}

fn unmap(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn checksum_rfc1071_example() {
        // RFC 1071 4.1: words 0001 f203 f4f5 f6f7 sum to ddf2, checksum 220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        // A packet with its checksum in place sums to zero.
        let p = request(false, 0x1234, 7, 13);
        assert_eq!(checksum(&p), 0);
        assert_eq!(&p[..1], &[8]);
    }

    #[test]
    fn replies_are_matched_by_kind_id_seq_and_source() {
        let me = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let mut r = request(false, 9, 5, 4);
        r[0] = ECHO_REPLY_V4;
        assert!(is_reply(&r, me, me, false, 1, 5), "datagram: id rewritten");
        assert!(!is_reply(&r, me, me, true, 1, 5), "raw: id must match");
        assert!(!is_reply(&r, me, me, false, 9, 6), "wrong seq");
        let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        assert!(!is_reply(&r, other, me, false, 9, 5), "wrong source");
        // Raw IPv4: a 20-byte header first.
        let mut ip = vec![0x45u8];
        ip.resize(20, 0);
        ip.extend_from_slice(&r);
        assert!(is_reply(&ip, me, me, true, 9, 5));
        // Our own request looped back is not a reply.
        let req = request(false, 9, 5, 4);
        assert!(!is_reply(&req, me, me, false, 9, 5));
    }
}
