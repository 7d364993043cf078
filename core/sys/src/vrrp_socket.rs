//! VRRP raw sockets, registered with tokio.

use std::io::{self, Read};
use std::mem::{self, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::error::SysError;
use crate::sockopt;

const IPPROTO_VRRP: i32 = 112;

/// Register a socket configured non-blocking with the current runtime.
fn register(sock: Socket, what: &str) -> Result<AsyncFd<Socket>, SysError> {
    sock.set_nonblocking(true)
        .map_err(|e| SysError::os(format!("{what}: setting non-blocking"), e))?;
    // SAFETY: the Socket owns its fd, which stays open and unchanged until
    // the AsyncFd (and with it the Socket) is dropped.
    unsafe { AsyncFd::register(sock) }
        .map_err(|e| SysError::os(format!("{what}: registering with tokio"), e.into_parts().1))
}

fn step<T>(what: &str, step: &str, r: io::Result<T>) -> Result<T, SysError> {
    r.map_err(|e| SysError::os(format!("{what}: {step}"), e))
}

/// Raw IPv4 VRRP socket on one interface. Sends and receives whole IPv4
/// packets: the codec builds and parses the header (TTL is byte 8).
pub struct VrrpSocketV4 {
    fd: AsyncFd<Socket>,
    what: String,
}

impl VrrpSocketV4 {
    /// `proto` is 112 (VRRP) or 51 (AH auth). `group` None gives a
    /// unicast-only socket. Must be called inside a tokio runtime.
    pub fn open(
        ifname: &str,
        ifindex: u32,
        proto: u8,
        group: Option<Ipv4Addr>,
    ) -> Result<Self, SysError> {
        let what = format!("VRRP IPv4 socket (protocol {proto}) on {ifname} (index {ifindex})");
        let w = what.as_str();
        let sock = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(proto))),
        )
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => SysError::NotPermitted,
            _ => SysError::os(format!("{w}: opening"), e),
        })?;
        step(w, "IP_HDRINCL", sock.set_header_included_v4(true))?;
        step(
            w,
            "SO_BINDTODEVICE",
            sock.bind_device(Some(ifname.as_bytes())),
        )?;
        // Only groups joined on this socket, not every group on the host.
        step(w, "IP_MULTICAST_ALL", sock.set_multicast_all_v4(false))?;
        step(w, "IP_MULTICAST_LOOP", sock.set_multicast_loop_v4(false))?;
        step(w, "IP_MULTICAST_TTL", sock.set_multicast_ttl_v4(255))?;
        let mreqn = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr { s_addr: 0 },
            imr_address: libc::in_addr { s_addr: 0 },
            imr_ifindex: ifindex as libc::c_int,
        };
        step(
            w,
            "IP_MULTICAST_IF",
            sockopt::set(
                sock.as_fd(),
                libc::IPPROTO_IP,
                libc::IP_MULTICAST_IF,
                &mreqn,
            ),
        )?;
        if let Some(g) = group {
            step(
                w,
                &format!("joining {g}"),
                sock.join_multicast_v4_n(&g, &InterfaceIndexOrAddress::Index(ifindex)),
            )?;
        }
        let fd = register(sock, w)?;
        Ok(VrrpSocketV4 { fd, what })
    }

    /// One whole IPv4 packet (header included). A packet larger than `buf`
    /// is truncated, so size it to the MTU.
    pub async fn recv(&self, buf: &mut [u8]) -> Result<usize, SysError> {
        self.fd
            .async_io(Interest::READABLE, |s| (&*s).read(buf))
            .await
            .map_err(|e| SysError::os(format!("{}: receiving", self.what), e))
    }

    /// Send a complete IPv4 packet; the kernel fills in total length,
    /// header checksum, and id/source when they are zero.
    pub async fn send(&self, packet: &[u8], dst: Ipv4Addr) -> Result<(), SysError> {
        let addr = SockAddr::from(SocketAddrV4::new(dst, 0));
        self.fd
            .async_io(Interest::WRITABLE, |s| s.send_to(packet, &addr))
            .await
            .map(|_| ())
            .map_err(|e| SysError::os(format!("{}: sending to {dst}", self.what), e))
    }
}

/// One received IPv6 VRRP payload with what the kernel told about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvV6 {
    /// Payload bytes (no IPv6 header: raw IPv6 sockets never deliver it).
    pub len: usize,
    pub src: Ipv6Addr,
    /// From IPV6_PKTINFO: the group or our unicast address.
    pub dst: Ipv6Addr,
    /// From IPV6_HOPLIMIT; RFC 5798 requires 255.
    pub hop_limit: u8,
}

/// Raw IPv6 VRRP socket (protocol 112) on one interface, bound to its
/// link-local address. The kernel does not checksum: lbd checks and counts
/// bad checksums itself.
pub struct VrrpSocketV6 {
    fd: AsyncFd<Socket>,
    ifindex: u32,
    what: String,
}

impl VrrpSocketV6 {
    /// `src` is the interface's link-local address (RFC 5798 §5.1.2.1).
    /// Must be called inside a tokio runtime.
    pub fn open(
        ifname: &str,
        ifindex: u32,
        src: Ipv6Addr,
        group: Option<Ipv6Addr>,
    ) -> Result<Self, SysError> {
        let what = format!("VRRP IPv6 socket on {ifname} (index {ifindex})");
        let w = what.as_str();
        let sock = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => SysError::NotPermitted,
                _ => SysError::os(format!("{w}: opening"), e),
            })?;
        step(
            w,
            "SO_BINDTODEVICE",
            sock.bind_device(Some(ifname.as_bytes())),
        )?;
        step(
            w,
            &format!("binding to {src}"),
            sock.bind(&SockAddr::from(SocketAddrV6::new(src, 0, 0, ifindex))),
        )?;
        step(w, "IPV6_MULTICAST_ALL", sock.set_multicast_all_v6(false))?;
        step(w, "IPV6_MULTICAST_LOOP", sock.set_multicast_loop_v6(false))?;
        step(w, "IPV6_MULTICAST_HOPS", sock.set_multicast_hops_v6(255))?;
        step(w, "IPV6_UNICAST_HOPS", sock.set_unicast_hops_v6(255))?;
        step(w, "IPV6_MULTICAST_IF", sock.set_multicast_if_v6(ifindex))?;
        step(w, "IPV6_RECVHOPLIMIT", sock.set_recv_hoplimit_v6(true))?;
        let on: libc::c_int = 1;
        step(
            w,
            "IPV6_RECVPKTINFO",
            sockopt::set(
                sock.as_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_RECVPKTINFO,
                &on,
            ),
        )?;
        if let Some(g) = group {
            step(
                w,
                &format!("joining {g}"),
                sock.join_multicast_v6(&g, ifindex),
            )?;
        }
        let fd = register(sock, w)?;
        Ok(VrrpSocketV6 { fd, ifindex, what })
    }

    /// One VRRP payload (no IPv6 header) plus source, destination and hop
    /// limit. A payload larger than `buf` is truncated.
    pub async fn recv(&self, buf: &mut [u8]) -> Result<RecvV6, SysError> {
        let r = self
            .fd
            .async_io(Interest::READABLE, |s| recvmsg_v6(s, buf))
            .await
            .map_err(|e| SysError::os(format!("{}: receiving", self.what), e))?;
        match r {
            (len, src, Some(dst), Some(hop_limit)) => Ok(RecvV6 {
                len,
                src,
                dst,
                hop_limit,
            }),
            _ => Err(SysError::Invalid {
                what: format!("{}: receiving", self.what),
                detail: "kernel gave no IPV6_PKTINFO/IPV6_HOPLIMIT".into(),
            }),
        }
    }

    /// Send a VRRP payload; the kernel adds the IPv6 header with our bound
    /// source and hop limit 255.
    pub async fn send(&self, payload: &[u8], dst: Ipv6Addr) -> Result<(), SysError> {
        let addr = SockAddr::from(SocketAddrV6::new(dst, 0, 0, self.ifindex));
        self.fd
            .async_io(Interest::WRITABLE, |s| s.send_to(payload, &addr))
            .await
            .map(|_| ())
            .map_err(|e| SysError::os(format!("{}: sending to {dst}", self.what), e))
    }
}

/// Control buffer: u64 keeps cmsghdr alignment; 128 bytes holds
/// IPV6_PKTINFO (20) and IPV6_HOPLIMIT (4) with their headers.
type Cmsg = [u64; 16];

type RecvParts = (usize, Ipv6Addr, Option<Ipv6Addr>, Option<u8>);

fn recvmsg_v6(s: &Socket, buf: &mut [u8]) -> io::Result<RecvParts> {
    let mut cmsg: Cmsg = [0; 16];
    let mut from = MaybeUninit::<libc::sockaddr_in6>::zeroed();
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid msghdr; the pointers set below outlive the
    // recvmsg call.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = from.as_mut_ptr().cast();
    msg.msg_namelen = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = mem::size_of::<Cmsg>();
    // SAFETY: msg describes valid, writable buffers of the stated sizes.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zero-initialised and possibly filled by the kernel; every bit
    // pattern is a valid sockaddr_in6.
    let from = unsafe { from.assume_init() };
    let src = Ipv6Addr::from(from.sin6_addr.s6_addr);
    let (mut dst, mut hop) = (None, None);
    // SAFETY: the CMSG_* walk stays within msg_controllen, as set by the
    // kernel; data is read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let pi = data.cast::<libc::in6_pktinfo>().read_unaligned();
                    dst = Some(Ipv6Addr::from(pi.ipi6_addr.s6_addr));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                    let h = data.cast::<libc::c_int>().read_unaligned();
                    hop = u8::try_from(h).ok();
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, src, dst, hop))
}
