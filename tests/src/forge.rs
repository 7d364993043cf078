//! Hand-built VRRP adverts and a raw IPv4 sender, for hostile-input tests.
//! Deliberately independent of lbd-vrrp's codec: these bytes are the test's
//! own reading of RFC 3768 / RFC 5798.

use std::ffi::CString;
use std::net::Ipv4Addr;

/// VRRP multicast group (RFC 3768 §5.2.2).
pub const VRRP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

#[derive(Clone, Debug)]
pub struct Advert {
    pub version: u8,
    pub kind: u8,
    pub vrid: u8,
    pub priority: u8,
    /// v2: auth type (0 none, 1 PASS, 2 AH).
    pub auth_type: u8,
    /// v2: seconds; v3: centiseconds (12 bits).
    pub interval: u16,
    pub addrs: Vec<Ipv4Addr>,
    /// v2 only: 8 bytes of auth data (PASS: password, zero padded).
    pub auth_data: [u8; 8],
    /// Replace the computed checksum (e.g. to make it wrong).
    pub checksum_override: Option<u16>,
}

impl Advert {
    pub fn v2(vrid: u8, priority: u8, vip: Ipv4Addr) -> Advert {
        Advert {
            version: 2,
            kind: 1,
            vrid,
            priority,
            auth_type: 0,
            interval: 1,
            addrs: vec![vip],
            auth_data: [0; 8],
            checksum_override: None,
        }
    }

    pub fn v2_pass(vrid: u8, priority: u8, vip: Ipv4Addr, pass: &str) -> Advert {
        let mut a = Advert::v2(vrid, priority, vip);
        a.auth_type = 1;
        let n = pass.len().min(8);
        a.auth_data[..n].copy_from_slice(&pass.as_bytes()[..n]);
        a
    }

    pub fn v3(vrid: u8, priority: u8, vip: Ipv4Addr, centis: u16) -> Advert {
        Advert {
            version: 3,
            interval: centis,
            ..Advert::v2(vrid, priority, vip)
        }
    }

    /// VRRP payload with its checksum; `src`/`dst` feed the v3 pseudo-header.
    pub fn bytes(&self, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let mut b = vec![
            (self.version << 4) | (self.kind & 0x0f),
            self.vrid,
            self.priority,
            self.addrs.len() as u8,
        ];
        if self.version == 3 {
            // rsvd(4 bits) | max advert int (12 bits)
            b.extend_from_slice(&(self.interval & 0x0fff).to_be_bytes());
        } else {
            b.push(self.auth_type);
            b.push(self.interval as u8);
        }
        b.extend_from_slice(&[0, 0]);
        for a in &self.addrs {
            b.extend_from_slice(&a.octets());
        }
        if self.version == 2 {
            b.extend_from_slice(&self.auth_data);
        }
        let sum = if self.version == 3 {
            let mut pseudo = Vec::with_capacity(12 + b.len());
            pseudo.extend_from_slice(&src.octets());
            pseudo.extend_from_slice(&dst.octets());
            pseudo.extend_from_slice(&[0, 112]);
            pseudo.extend_from_slice(&(b.len() as u16).to_be_bytes());
            pseudo.extend_from_slice(&b);
            inet_checksum(&pseudo)
        } else {
            inet_checksum(&b)
        };
        let sum = self.checksum_override.unwrap_or(sum);
        b[6..8].copy_from_slice(&sum.to_be_bytes());
        b
    }
}

/// RFC 1071 one's complement sum.
pub fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0]) << 8
        };
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 header (20 bytes, proto 112) in front of `payload`.
pub fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0xc0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0x40, 0]); // id 0, DF
    h.extend_from_slice(&[ttl, 112, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let c = inet_checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// Send `packet` (a full IPv4 packet, header included) out of `dev` inside the
/// network namespace `ns`. Runs on a scratch thread that joins the namespace,
/// so the test process itself stays where it is; the socket closes before the
/// thread ends, so it holds no reference to the namespace.
pub fn send_raw_v4(ns: &str, dev: &str, packet: Vec<u8>) -> std::io::Result<()> {
    let ns = ns.to_owned();
    let dev = dev.to_owned();
    std::thread::spawn(move || send_in_ns(&ns, &dev, &packet))
        .join()
        .map_err(|_| std::io::Error::other("sender thread panicked"))?
}

fn send_in_ns(ns: &str, dev: &str, packet: &[u8]) -> std::io::Result<()> {
    let err = std::io::Error::last_os_error;
    let path = CString::new(format!("/var/run/netns/{ns}")).map_err(std::io::Error::other)?;
    let devc = CString::new(dev).map_err(std::io::Error::other)?;
    if packet.len() < 20 {
        return Err(std::io::Error::other("packet shorter than an IPv4 header"));
    }
    let dst = [packet[16], packet[17], packet[18], packet[19]];
    // SAFETY: plain syscalls on fds this function owns and closes; buffers
    // outlive the calls and lengths match them.
    unsafe {
        let nsfd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if nsfd < 0 {
            return Err(err());
        }
        // setns(CLONE_NEWNET) affects only this thread.
        let r = libc::setns(nsfd, libc::CLONE_NEWNET);
        libc::close(nsfd);
        if r < 0 {
            return Err(err());
        }
        // IPPROTO_RAW implies IP_HDRINCL: our header, our TTL.
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_RAW,
        );
        if fd < 0 {
            return Err(err());
        }
        let res = (|| {
            if libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                devc.as_ptr().cast(),
                devc.as_bytes().len() as libc::socklen_t,
            ) < 0
            {
                return Err(err());
            }
            let mut sa: libc::sockaddr_in = std::mem::zeroed();
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_addr.s_addr = u32::from_ne_bytes(dst);
            let n = libc::sendto(
                fd,
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&sa as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            );
            if n < 0 {
                return Err(err());
            }
            Ok(())
        })();
        libc::close(fd);
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_checksum_verifies() {
        let a = Advert::v2_pass(51, 150, Ipv4Addr::new(10, 0, 0, 100), "labpass");
        let b = a.bytes(Ipv4Addr::UNSPECIFIED, VRRP_GROUP);
        assert_eq!(b.len(), 8 + 4 + 8);
        assert_eq!(inet_checksum(&b), 0);
        assert_eq!(b[0], 0x21);
    }

    #[test]
    fn ipv4_header_checksum_verifies() {
        let p = ipv4_packet(Ipv4Addr::new(10, 0, 0, 1), VRRP_GROUP, 255, &[1, 2, 3]);
        assert_eq!(inet_checksum(&p[..20]), 0);
        assert_eq!(p[8], 255);
    }
}
