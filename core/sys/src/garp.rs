//! Gratuitous ARP and unsolicited Neighbour Advertisement.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::error::SysError;
use crate::sockopt;

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IP: u16 = 0x0800;
const ARPHRD_ETHER: u16 = 1;
const ARPOP_REQUEST: u16 = 1;
const BROADCAST: [u8; 6] = [0xff; 6];
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ND_NEIGHBOR_ADVERT: u8 = 136;
const ND_NA_FLAG_OVERRIDE: u8 = 0x20;
const ND_OPT_TARGET_LINKADDR: u8 = 2;
const ICMP6_FILTER: libc::c_int = 1;

/// The 42-byte Ethernet frame keepalived sends as gratuitous ARP: a
/// broadcast ARP request whose sender and target IP are both the VIP and
/// whose target MAC is all ones.
pub fn garp_frame(src_mac: [u8; 6], ip: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&BROADCAST);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&ARPHRD_ETHER.to_be_bytes());
    f[16..18].copy_from_slice(&ETH_P_IP.to_be_bytes());
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&ARPOP_REQUEST.to_be_bytes());
    f[22..28].copy_from_slice(&src_mac);
    f[28..32].copy_from_slice(&ip.octets());
    f[32..38].copy_from_slice(&BROADCAST);
    f[38..42].copy_from_slice(&ip.octets());
    f
}

/// ICMPv6 Neighbour Advertisement for `target` (RFC 4861 §4.4): Override
/// set, Solicited and Router clear, with a target link-layer address option.
/// The checksum field is zero: the kernel fills it in on raw ICMPv6
/// sockets; use [`icmpv6_checksum`] to compute it elsewhere.
pub fn unsolicited_na(src_mac: [u8; 6], target: Ipv6Addr) -> [u8; 32] {
    let mut p = [0u8; 32];
    p[0] = ND_NEIGHBOR_ADVERT;
    p[4] = ND_NA_FLAG_OVERRIDE;
    p[8..24].copy_from_slice(&target.octets());
    p[24] = ND_OPT_TARGET_LINKADDR;
    p[25] = 1; // length in units of 8 octets
    p[26..32].copy_from_slice(&src_mac);
    p
}

/// ICMPv6 checksum (RFC 4443 §2.3) over the IPv6 pseudo-header and `msg`,
/// with `msg`'s checksum field (bytes 2..4) taken as zero.
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut pseudo = [0u8; 40];
    pseudo[..16].copy_from_slice(&src.octets());
    pseudo[16..32].copy_from_slice(&dst.octets());
    pseudo[32..36].copy_from_slice(&u32::try_from(msg.len()).unwrap_or(u32::MAX).to_be_bytes());
    pseudo[39] = 58; // next header: ICMPv6
                     // The message's own checksum field (bytes 2..4) counts as zero.
    match (msg.get(..2), msg.get(4..)) {
        (Some(head), Some(tail)) => lbd_vrrp::codec::checksum(&[&pseudo, head, tail]),
        _ => lbd_vrrp::codec::checksum(&[&pseudo, msg]),
    }
}

/// Sends gratuitous ARP and unsolicited NA on one interface. Sends are
/// non-blocking; a full queue is reported as an error, not waited out.
pub struct GarpSender {
    packet: Socket,
    icmp6: Socket,
    ifindex: u32,
    ifname: String,
}

impl GarpSender {
    pub fn open(ifindex: u32, ifname: &str) -> Result<Self, SysError> {
        let what = |s: &str| format!("gratuitous ARP/NA sender on {ifname} (index {ifindex}): {s}");
        let perm = |e: std::io::Error, s: &str| match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => SysError::NotPermitted,
            _ => SysError::os(what(s), e),
        };

        // Protocol 0: the socket receives nothing, so no queue to drain.
        let packet = Socket::new(Domain::PACKET, Type::RAW, None)
            .map_err(|e| perm(e, "opening AF_PACKET socket"))?;
        // SAFETY: all-zero is a valid sockaddr_ll.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as i32;
        bind_ll(&packet, &sll).map_err(|e| SysError::os(what("binding AF_PACKET socket"), e))?;
        packet
            .set_nonblocking(true)
            .map_err(|e| SysError::os(what("setting non-blocking"), e))?;

        let icmp6 = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
            .map_err(|e| perm(e, "opening ICMPv6 socket"))?;
        let os = |s: &str, r: std::io::Result<()>| r.map_err(|e| SysError::os(what(s), e));
        os(
            "SO_BINDTODEVICE",
            icmp6.bind_device(Some(ifname.as_bytes())),
        )?;
        // Send-only: block every ICMPv6 type so nothing queues up.
        let filter = [u32::MAX; 8];
        os(
            "ICMP6_FILTER",
            sockopt::set(icmp6.as_fd(), libc::IPPROTO_ICMPV6, ICMP6_FILTER, &filter),
        )?;
        os("IPV6_MULTICAST_HOPS", icmp6.set_multicast_hops_v6(255))?;
        os("IPV6_UNICAST_HOPS", icmp6.set_unicast_hops_v6(255))?;
        os("IPV6_MULTICAST_IF", icmp6.set_multicast_if_v6(ifindex))?;
        os("IPV6_MULTICAST_LOOP", icmp6.set_multicast_loop_v6(false))?;
        os("setting non-blocking", icmp6.set_nonblocking(true))?;

        Ok(GarpSender {
            packet,
            icmp6,
            ifindex,
            ifname: ifname.to_string(),
        })
    }

    /// One gratuitous ARP for `ip` with `src_mac` as Ethernet and ARP sender.
    pub fn send_garp(&self, src_mac: [u8; 6], ip: Ipv4Addr) -> Result<(), SysError> {
        let frame = garp_frame(src_mac, ip);
        // SAFETY: all-zero is a valid sockaddr_ll.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ARP.to_be();
        sll.sll_ifindex = self.ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&BROADCAST);
        send_ll(&self.packet, &frame, &sll).map_err(|e| {
            SysError::os(
                format!(
                    "sending gratuitous ARP for {ip} on {} (index {})",
                    self.ifname, self.ifindex
                ),
                e,
            )
        })
    }

    /// One unsolicited NA for `ip` to ff02::1, advertising `src_mac`.
    pub fn send_unsolicited_na(&self, src_mac: [u8; 6], ip: Ipv6Addr) -> Result<(), SysError> {
        let na = unsolicited_na(src_mac, ip);
        let dst = SockAddr::from(SocketAddrV6::new(ALL_NODES, 0, 0, self.ifindex));
        self.icmp6.send_to(&na, &dst).map(|_| ()).map_err(|e| {
            SysError::os(
                format!(
                    "sending unsolicited NA for {ip} on {} (index {})",
                    self.ifname, self.ifindex
                ),
                e,
            )
        })
    }
}

fn bind_ll(s: &Socket, sll: &libc::sockaddr_ll) -> std::io::Result<()> {
    // SAFETY: sll is a valid sockaddr_ll of the length passed.
    let rc = unsafe {
        libc::bind(
            s.as_raw_fd(),
            (sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn send_ll(s: &Socket, frame: &[u8], sll: &libc::sockaddr_ll) -> std::io::Result<()> {
    // SAFETY: frame and sll are valid for the lengths passed.
    let rc = unsafe {
        libc::sendto(
            s.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VMAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x07];

    #[test]
    fn garp_frame_bytes() {
        // Layout of keepalived's send_gratuitous_arp_immediate for
        // 10.0.0.1 with source MAC 00:00:5e:00:01:07.
        #[rustfmt::skip]
        let want: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // dst: broadcast
            0x00, 0x00, 0x5e, 0x00, 0x01, 0x07,  // src: VMAC
            0x08, 0x06,                          // ARP
            0x00, 0x01, 0x08, 0x00, 6, 4,        // Ethernet / IPv4
            0x00, 0x01,                          // request
            0x00, 0x00, 0x5e, 0x00, 0x01, 0x07,  // sender MAC
            10, 0, 0, 1,                         // sender IP = VIP
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // target MAC
            10, 0, 0, 1,                         // target IP = VIP
        ];
        assert_eq!(garp_frame(VMAC, Ipv4Addr::new(10, 0, 0, 1)), want);
    }

    #[test]
    fn na_bytes_and_checksum() {
        let target: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
        let na = unsolicited_na(VMAC, target);
        #[rustfmt::skip]
        let want: [u8; 32] = [
            136, 0, 0, 0,                        // type, code, checksum
            0x20, 0, 0, 0,                       // Override only
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
            2, 1, 0x00, 0x00, 0x5e, 0x00, 0x01, 0x07, // target link-layer addr
        ];
        assert_eq!(na, want);
        // Reference value computed independently (Python, RFC 1071 sum).
        let src = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
        assert_eq!(icmpv6_checksum(src, ALL_NODES, &na), 0xcb4d);
        // The checksum field itself is ignored, so a filled-in message gives
        // the same value.
        let mut filled = na;
        filled[2..4].copy_from_slice(&0xcb4du16.to_be_bytes());
        assert_eq!(icmpv6_checksum(src, ALL_NODES, &filled), 0xcb4d);
    }

    #[test]
    fn checksum_odd_length_pads_with_zero() {
        let a = icmpv6_checksum(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST, &[1, 0, 0, 0, 7]);
        let b = icmpv6_checksum(
            Ipv6Addr::LOCALHOST,
            Ipv6Addr::LOCALHOST,
            &[1, 0, 0, 0, 7, 0],
        );
        // Same words summed, but the pseudo-header length differs by one.
        assert_eq!(a.wrapping_sub(b), 1);
    }
}
