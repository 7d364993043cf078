//! VRRP I/O for the node: the raw sockets, one receiver task per socket, the
//! send of what [`lbd_vrrp::router::Router::poll_transmit`] returns, and the
//! gratuitous ARP / unsolicited NA jobs. No protocol decision is taken here:
//! bytes go to the router as received and leave it as encoded.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use lbd_sys::{AddrSpec, GarpSender, VrrpSocketV4, VrrpSocketV6};
use lbd_vrrp::router::{Datagram, SocketConfig, SocketId, Transmit};
use tracing::{debug, warn};

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Family {
    V4,
    V6,
}

/// One socket per interface, family, protocol and receive options (instances
/// with different checksum modes or unicast/multicast need their own).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct SockKey {
    pub ifname: String,
    pub family: Family,
    pub proto: u8,
    pub unicast: bool,
    pub v3_checksum_as_v2: bool,
    /// Accept keepalived's old v3 unicast checksum (multicast group in the
    /// pseudo-header).
    pub old_checksum_group: Option<Ipv4Addr>,
}

impl SockKey {
    /// What the router checks on this socket's packets.
    pub fn router_config(&self) -> SocketConfig {
        SocketConfig {
            ipv6: self.family == Family::V6,
            unicast: self.unicast,
            v3_checksum_as_v2: self.v3_checksum_as_v2,
            old_checksum_group: self.old_checksum_group,
        }
    }
}

#[derive(Clone)]
pub enum Sock {
    V4(Arc<VrrpSocketV4>),
    V6(Arc<VrrpSocketV6>),
}

impl Sock {
    /// Opens the socket `key` describes; IPv6 sends from `src` (the
    /// link-local address RFC 9568 §5.1.2.1 requires).
    pub fn open(key: &SockKey, ifindex: u32, src: IpAddr, group: Option<IpAddr>) -> Result<Sock> {
        Ok(match (key.family, src) {
            (Family::V4, _) => {
                let group = match group {
                    Some(IpAddr::V4(g)) => Some(g),
                    _ => None,
                };
                Sock::V4(Arc::new(VrrpSocketV4::open(
                    &key.ifname,
                    ifindex,
                    key.proto,
                    group,
                )?))
            }
            (Family::V6, IpAddr::V6(src)) => {
                let group = match group {
                    Some(IpAddr::V6(g)) => Some(g),
                    _ => None,
                };
                Sock::V6(Arc::new(VrrpSocketV6::open(
                    &key.ifname,
                    ifindex,
                    src,
                    group,
                )?))
            }
            (Family::V6, IpAddr::V4(a)) => bail!("IPv6 instance with IPv4 source {a}"),
        })
    }

    /// Sends one encoded advert.
    pub async fn send(&self, t: &Transmit) -> Result<(), String> {
        match (self, t.dst) {
            (Sock::V4(s), IpAddr::V4(d)) => s.send(&t.bytes, d).await.map_err(|e| e.to_string()),
            (Sock::V6(s), IpAddr::V6(d)) => s.send(&t.bytes, d).await.map_err(|e| e.to_string()),
            (_, d) => Err(format!("address family mismatch sending to {d}")),
        }
    }
}

/// A datagram as a socket delivered it, moved to the node's loop.
pub struct Packet {
    pub bytes: Vec<u8>,
    /// IPv6 only: source, destination and hop limit from the socket.
    pub v6: Option<(Ipv6Addr, Ipv6Addr, u8)>,
}

impl Packet {
    pub fn datagram(&self) -> Datagram<'_> {
        match self.v6 {
            None => Datagram::V4(&self.bytes),
            Some((src, dst, hop_limit)) => Datagram::V6 {
                payload: &self.bytes,
                src,
                dst,
                hop_limit,
            },
        }
    }
}

/// What a receiver task reports.
pub enum Rx {
    Packet { sock: SocketId, packet: Packet },
    Error { sock: SocketId, error: String },
}

/// One task per socket; `deliver` returns false once the loop is gone.
pub fn spawn_receiver<F>(index: SocketId, key: SockKey, sock: Sock, deliver: F)
where
    F: Fn(Rx) -> bool + Send + 'static,
{
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            let got = match &sock {
                Sock::V4(s) => s.recv(&mut buf).await.map(|n| Packet {
                    bytes: buf.get(..n).unwrap_or_default().to_vec(),
                    v6: None,
                }),
                Sock::V6(s) => s.recv(&mut buf).await.map(|r| Packet {
                    bytes: buf.get(..r.len).unwrap_or_default().to_vec(),
                    v6: Some((r.src, r.dst, r.hop_limit)),
                }),
            };
            let (ev, failed) = match got {
                Ok(packet) => (
                    Rx::Packet {
                        sock: index,
                        packet,
                    },
                    false,
                ),
                Err(e) => (
                    Rx::Error {
                        sock: index,
                        error: e.to_string(),
                    },
                    true,
                ),
            };
            if !deliver(ev) {
                debug!("receiver for {key:?} stopping");
                return;
            }
            if failed {
                // A persistent socket error must not spin the loop.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
}

#[derive(Clone, Debug)]
pub struct Vip {
    pub ifindex: u32,
    pub ifname: String,
    pub spec: AddrSpec,
}

/// One VIP's gratuitous ARP (IPv4) or unsolicited NA (IPv6).
pub struct GarpJob {
    pub sender: Arc<GarpSender>,
    pub mac: [u8; 6],
    pub addr: IpAddr,
    pub ifname: String,
    /// `lbd_vrrp_gratuitous_sent_total` of this interface and kind.
    pub sent: prometheus_client::metrics::counter::Counter,
}

impl GarpJob {
    fn send(&self, instance: &str) {
        let r = match self.addr {
            IpAddr::V4(a) => self.sender.send_garp(self.mac, a),
            IpAddr::V6(a) => self.sender.send_unsolicited_na(self.mac, a),
        };
        if r.is_ok() {
            self.sent.inc();
        }
        if let Err(e) = r {
            warn!(
                "VRRP_Instance({instance}) gratuitous ARP/NA for {} on {}: {e}",
                self.addr, self.ifname
            );
        }
    }
}

/// `count` bursts over `jobs`, spaced by keepalived's `vrrp_garp_interval` /
/// `vrrp_gna_interval`; spaced bursts run beside the loop so adverts stay on
/// time. `first_burst` runs once the first burst is out (a takeover's
/// failover time ends there).
pub fn send_garp(
    name: String,
    jobs: Vec<GarpJob>,
    count: u32,
    garp_iv: Duration,
    gna_iv: Duration,
    mut first_burst: Option<Box<dyn FnOnce() + Send>>,
) {
    if garp_iv.is_zero() && gna_iv.is_zero() {
        for _ in 0..count {
            jobs.iter().for_each(|j| j.send(&name));
            if let Some(f) = first_burst.take() {
                f();
            }
        }
        return;
    }
    tokio::spawn(async move {
        for _ in 0..count {
            for (n, j) in jobs.iter().enumerate() {
                j.send(&name);
                if n + 1 == jobs.len() {
                    if let Some(f) = first_burst.take() {
                        f();
                    }
                }
                let iv = if j.addr.is_ipv4() { garp_iv } else { gna_iv };
                if !iv.is_zero() {
                    tokio::time::sleep(iv).await;
                }
            }
        }
    });
}
