//! Timestamp the moment an address appears in a namespace: an rtnetlink
//! socket subscribed to address events, read on a thread that joined the
//! namespace. Precise to the event, unlike polling `ip addr`.

use std::ffi::CString;
use std::net::IpAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct AddrWatch {
    rx: mpsc::Receiver<Option<Instant>>,
}

impl AddrWatch {
    /// Start watching `ns` for `ip` being added; returns once subscribed, so
    /// an event after this call is not missed. Gives up after `limit`.
    pub fn start(ns: &str, ip: &str, limit: Duration) -> AddrWatch {
        let ns = ns.to_owned();
        let want: IpAddr = ip.parse().expect("watch address");
        let (ready_tx, ready_rx) = mpsc::channel();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let r = watch(&ns, want, limit, &ready_tx);
            let _ = ready_tx.send(());
            let _ = tx.send(r);
        });
        let _ = ready_rx.recv();
        AddrWatch { rx }
    }

    /// When the address appeared, or None if it did not within the limit.
    pub fn wait(self) -> Option<Instant> {
        self.rx.recv().ok().flatten()
    }
}

const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
const RTM_NEWADDR: u16 = 20;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;

fn watch(ns: &str, want: IpAddr, limit: Duration, ready: &mpsc::Sender<()>) -> Option<Instant> {
    let path = CString::new(format!("/var/run/netns/{ns}")).ok()?;
    let end = Instant::now() + limit;
    // SAFETY: syscalls on fds owned here and closed before return; the buffer
    // outlives recv and its length is passed.
    unsafe {
        let nsfd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if nsfd < 0 || libc::setns(nsfd, libc::CLONE_NEWNET) < 0 {
            return None;
        }
        libc::close(nsfd);
        let fd = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        );
        if fd < 0 {
            return None;
        }
        let mut sa: libc::sockaddr_nl = std::mem::zeroed();
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        sa.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
        let salen = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        if libc::bind(fd, (&sa as *const libc::sockaddr_nl).cast(), salen) < 0 {
            libc::close(fd);
            return None;
        }
        // Short receive timeout so the overall limit is honoured.
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        let _ = ready.send(());
        let mut buf = vec![0u8; 65536];
        let mut found = None;
        while found.is_none() && Instant::now() < end {
            let n = libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
            let at = Instant::now();
            if n > 0 && has_new_addr(&buf[..n as usize], want) {
                found = Some(at);
            }
        }
        libc::close(fd);
        found
    }
}

/// Walk netlink messages; true if one is RTM_NEWADDR carrying `want`.
fn has_new_addr(mut b: &[u8], want: IpAddr) -> bool {
    let u16_at = |b: &[u8], i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
    while b.len() >= 16 {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len < 16 || len > b.len() {
            return false;
        }
        if u16_at(b, 4) == RTM_NEWADDR && len >= 24 {
            // ifaddrmsg is 8 bytes; attributes follow, 4-byte aligned.
            let mut a = &b[24..len];
            while a.len() >= 4 {
                let alen = u16_at(a, 0) as usize;
                if alen < 4 || alen > a.len() {
                    break;
                }
                let kind = u16_at(a, 2);
                let data = &a[4..alen];
                if kind == IFA_ADDRESS || kind == IFA_LOCAL {
                    let ip = match data.len() {
                        4 => Some(IpAddr::from(<[u8; 4]>::try_from(data).unwrap_or_default())),
                        16 => Some(IpAddr::from(<[u8; 16]>::try_from(data).unwrap_or_default())),
                        _ => None,
                    };
                    if ip == Some(want) {
                        return true;
                    }
                }
                a = &a[((alen + 3) & !3).min(a.len())..];
            }
        }
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    false
}
