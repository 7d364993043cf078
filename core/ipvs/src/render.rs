//! `ipvsadm -Ln` output, byte for byte as ipvsadm 1.31 prints it (its
//! list_all / print_title / print_service_entry in the numeric, default
//! format), including its sort order.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr};

use crate::model::{
    Af, DestKey, DestSpec, Fwd, IpvsState, Service, ServiceKey, IP_VS_SVC_F_ONEPACKET,
    IP_VS_SVC_F_PERSISTENT, IP_VS_SVC_F_SCHED1, IP_VS_SVC_F_SCHED2, IP_VS_SVC_F_SCHED3,
    SCHED_FLAGS_MASK, V4_NETMASK_HOST, V6_NETMASK_HOST,
};
use crate::stats::{IpvsCounters, IpvsInfo};

/// Renders `state` like `ipvsadm -Ln`. Counters missing from `counters`
/// print as 0.
pub fn render_ipvsadm(info: &IpvsInfo, state: &IpvsState, counters: &IpvsCounters) -> String {
    let mut out = String::new();
    // ipvsadm prints the size with %d.
    let _ = writeln!(
        out,
        "IP Virtual Server version {} (size={})",
        info.version_string(),
        info.conn_tab_size as i32
    );
    out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
    out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");

    let mut services: Vec<(&ServiceKey, &Service)> = state.services.iter().collect();
    glibc_msort(&mut services, &|a, b| cmp_services(a.0, b.0));
    for (key, svc) in services {
        render_service(&mut out, key, svc, counters);
    }
    out
}

fn render_service(out: &mut String, key: &ServiceKey, svc: &Service, counters: &IpvsCounters) {
    let af = key.af();
    let name = match key {
        ServiceKey::Fwmark { af: Af::V4, mark } => format!("FWM  {}", *mark as i32),
        ServiceKey::Fwmark { af: Af::V6, mark } => format!("FWM  {} IPv6", *mark as i32),
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            let mut s = format!("{:<4} {}", protocol.name(), addrport(addr, *port));
            // ipvsadm cuts v4 names at 33 bytes (never reached by a v4 name).
            if af != Af::V6 {
                s.truncate(33);
            }
            s
        }
    };
    let spec = &svc.spec;
    let flags = spec.kernel_flags();
    let _ = write!(out, "{} {}", name, spec.scheduler);
    if flags & SCHED_FLAGS_MASK != 0 {
        let _ = write!(out, " ({})", sched_flags(&spec.scheduler, flags));
    }
    if flags & IP_VS_SVC_F_PERSISTENT != 0 {
        let _ = write!(out, " persistent {}", spec.kernel_timeout());
        match af {
            Af::V4 if spec.netmask != V4_NETMASK_HOST => {
                let _ = write!(out, " mask {}", std::net::Ipv4Addr::from(spec.netmask));
            }
            Af::V6 if spec.netmask != V6_NETMASK_HOST => {
                let _ = write!(out, " mask {}", spec.netmask as i32);
            }
            _ => {}
        }
        if let Some(pe) = spec.pe_name.as_deref().filter(|p| !p.is_empty()) {
            let _ = write!(out, " pe {pe}");
        }
    }
    if flags & IP_VS_SVC_F_ONEPACKET != 0 {
        out.push_str(" ops");
    }
    out.push('\n');

    let mut dests: Vec<(&DestKey, &DestSpec)> = svc.dests.iter().collect();
    glibc_msort(&mut dests, &|a, b| cmp_dests(a.0, b.0));
    for (dk, ds) in dests {
        let c = counters.dest(key, dk);
        let mut dname = addrport(&dk.addr, dk.port);
        if Af::of(&dk.addr) != Af::V6 {
            dname.truncate(28);
        }
        let _ = writeln!(
            out,
            "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
            dname,
            fwd_name(ds.fwd),
            ds.weight as i32,
            c.active_conns,
            c.inact_conns
        );
    }
}

/// ipvsadm's fwd_name(); it has no word for bypass and glibc prints the NULL
/// it gets as "(null)".
fn fwd_name(fwd: Fwd) -> &'static str {
    match fwd {
        Fwd::Masq => "Masq",
        Fwd::Local => "Local",
        Fwd::Tunnel => "Tunnel",
        Fwd::Route => "Route",
        Fwd::Bypass => "(null)",
    }
}

/// ipvsadm's print_sched_flags(): names depend on the scheduler.
fn sched_flags(scheduler: &str, flags: u32) -> String {
    let names: &[(u32, &str)] = match scheduler {
        "sh" => &[
            (IP_VS_SVC_F_SCHED1, "sh-fallback"),
            (IP_VS_SVC_F_SCHED2, "sh-port"),
        ],
        "mh" => &[
            (IP_VS_SVC_F_SCHED1, "mh-fallback"),
            (IP_VS_SVC_F_SCHED2, "mh-port"),
        ],
        _ => &[
            (IP_VS_SVC_F_SCHED1, "flag-1"),
            (IP_VS_SVC_F_SCHED2, "flag-2"),
            (IP_VS_SVC_F_SCHED3, "flag-3"),
        ],
    };
    names
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

/// `addr:port` as inet_ntop + "%u" print it, v6 in brackets.
fn addrport(addr: &IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{}]:{port}", ntop6(a)),
    }
}

/// glibc's inet_ntop for IPv6. Differs from Rust's Display for
/// IPv4-compatible addresses (::a.b.c.d), which glibc prints dotted.
fn ntop6(a: &Ipv6Addr) -> String {
    let w = a.segments();
    // Longest run of zero words, the first one on a tie, length >= 2.
    let (mut best, mut best_len) = (None::<usize>, 0usize);
    let mut i = 0;
    while i < 8 {
        if w[i] == 0 {
            let start = i;
            while i < 8 && w[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                best = Some(start);
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best = None;
    }
    let in_run = |i: usize| best.is_some_and(|b| i >= b && i < b + best_len);
    let mut s = String::new();
    for (i, word) in w.iter().enumerate() {
        if in_run(i) {
            if Some(i) == best {
                s.push(':');
            }
            continue;
        }
        if i != 0 {
            s.push(':');
        }
        if i == 6 && best == Some(0) && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)) {
            let o = a.octets();
            let _ = write!(s, "{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
            return s;
        }
        let _ = write!(s, "{word:x}");
    }
    if best.is_some_and(|b| b + best_len == 8) {
        s.push(':');
    }
    s
}

/// An address as the four 32-bit words of `union nf_inet_addr` (v4 in the
/// first word, the rest zero).
fn words(addr: &IpAddr) -> [u32; 4] {
    match addr {
        IpAddr::V4(a) => [u32::from(*a), 0, 0, 0],
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            [w(0), w(4), w(8), w(12)]
        }
    }
}

/// C's `int r = a - b` on unsigned operands: wraps, then the sign decides.
/// ipvsadm's comparators rely on it, so e.g. 192.168.0.1 sorts before
/// 10.0.0.1 (their difference overflows int).
fn wrap_cmp(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// libipvs ipvs_cmp_services().
fn cmp_services(a: &ServiceKey, b: &ServiceKey) -> i32 {
    // (fwmark, af, protocol, addr, port) as the kernel reports them: a
    // fwmark service has protocol TCP, a zero address and port 0.
    let parts = |k: &ServiceKey| match k {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => (0u32, k.af(), protocol.to_kernel(), words(addr), *port),
        ServiceKey::Fwmark { af, mark } => (*mark, *af, 6, [0; 4], 0),
    };
    let (fa, afa, pa, wa, porta) = parts(a);
    let (fb, afb, pb, wb, portb) = parts(b);
    let r = wrap_cmp(fa, fb);
    if r != 0 {
        return r;
    }
    let r = i32::from(afa.to_kernel()) - i32::from(afb.to_kernel());
    if r != 0 {
        return r;
    }
    let r = i32::from(pa) - i32::from(pb);
    if r != 0 {
        return r;
    }
    let r = cmp_words(afa, &wa, &wb);
    if r != 0 {
        return r;
    }
    i32::from(porta) - i32::from(portb)
}

/// libipvs ipvs_cmp_dests(): the family of the first operand decides how
/// many words are compared.
fn cmp_dests(a: &DestKey, b: &DestKey) -> i32 {
    let r = cmp_words(Af::of(&a.addr), &words(&a.addr), &words(&b.addr));
    if r != 0 {
        return r;
    }
    i32::from(a.port) - i32::from(b.port)
}

fn cmp_words(af: Af, a: &[u32; 4], b: &[u32; 4]) -> i32 {
    let n = if af == Af::V6 { 4 } else { 1 };
    a.iter()
        .zip(b.iter())
        .take(n)
        .map(|(x, y)| wrap_cmp(*x, *y))
        .find(|r| *r != 0)
        .unwrap_or(0)
}

/// glibc qsort's merge sort (msort_with_tmp): split n/2, sort both halves,
/// merge taking from the left while cmp <= 0. ipvsadm's comparators are not
/// transitive over the whole address space, so the algorithm (not just
/// "sorted") decides the output; this also never panics on such a
/// comparator, unlike `slice::sort_by`.
fn glibc_msort<T: Copy>(v: &mut [T], cmp: &dyn Fn(&T, &T) -> i32) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    glibc_msort(&mut v[..n1], cmp);
    glibc_msort(&mut v[n1..], cmp);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]) <= 0 {
            merged.push(v[i]);
            i += 1;
        } else {
            merged.push(v[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&v[i..n1]);
    merged.extend_from_slice(&v[j..]);
    v.copy_from_slice(&merged);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DestSpec, Protocol, ServiceSpec, TunType};
    use crate::stats::{DestCounters, ServiceCounters};
    use std::net::Ipv4Addr;

    fn info() -> IpvsInfo {
        IpvsInfo {
            version: 0x010201,
            conn_tab_size: 4096,
        }
    }

    const HEAD: &str = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  \
-> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn tcp(a: &str, port: u16) -> ServiceKey {
        ServiceKey::addr(Protocol::Tcp, ip(a), port)
    }

    fn render(state: &IpvsState) -> String {
        render_ipvsadm(&info(), state, &IpvsCounters::default())
    }

    #[test]
    fn empty_table_is_the_three_header_lines() {
        assert_eq!(render(&IpvsState::new()), HEAD);
        let other = IpvsInfo {
            version: 0x010203,
            conn_tab_size: 1 << 20,
        };
        assert!(
            render_ipvsadm(&other, &IpvsState::new(), &IpvsCounters::default())
                .starts_with("IP Virtual Server version 1.2.3 (size=1048576)\n")
        );
    }

    #[test]
    fn nat_service_with_counters() {
        let k = tcp("10.0.0.100", 80);
        let d1 = DestKey::new(ip("10.0.1.1"), 80);
        let d2 = DestKey::new(ip("10.0.1.2"), 8080);
        let svc = Service::new(k.clone(), ServiceSpec::new("rr", Af::V4))
            .with_dest(d2, DestSpec::new(Fwd::Masq, 1))
            .with_dest(d1, DestSpec::new(Fwd::Masq, 1));
        let state: IpvsState = [svc].into_iter().collect();
        let mut counters = IpvsCounters::default();
        let mut sc = ServiceCounters::default();
        sc.dests.insert(
            d1,
            DestCounters {
                active_conns: 12,
                inact_conns: 345,
                ..Default::default()
            },
        );
        counters.services.insert(k, sc);
        let want = format!(
            "{HEAD}TCP  10.0.0.100:80 rr\n  \
-> 10.0.1.1:80                  Masq    1      12         345       \n  \
-> 10.0.1.2:8080                Masq    1      0          0         \n"
        );
        assert_eq!(render_ipvsadm(&info(), &state, &counters), want);
    }

    #[test]
    fn persistence_mask_pe_ops_and_forwarding_words() {
        let mut spec = ServiceSpec::new("wlc", Af::V4);
        spec.persistence = Some(300);
        spec.netmask = u32::from(Ipv4Addr::new(255, 255, 255, 0));
        spec.pe_name = Some("sip".into());
        spec.flags = IP_VS_SVC_F_ONEPACKET;
        let mut tun = DestSpec::new(Fwd::Tunnel, 0);
        tun.tun_type = Some(TunType::Gue);
        tun.tun_port = Some(6080);
        let svc = Service::new(ServiceKey::addr(Protocol::Udp, ip("192.0.2.1"), 53), spec)
            .with_dest(
                DestKey::new(ip("192.0.2.11"), 53),
                DestSpec::new(Fwd::Route, 100),
            )
            .with_dest(DestKey::new(ip("192.0.2.12"), 53), tun)
            .with_dest(
                DestKey::new(ip("192.0.2.13"), 53),
                DestSpec::new(Fwd::Local, 2),
            )
            .with_dest(
                DestKey::new(ip("192.0.2.14"), 53),
                DestSpec::new(Fwd::Bypass, 3),
            );
        let want = format!(
            "{HEAD}UDP  192.0.2.1:53 wlc persistent 300 mask 255.255.255.0 pe sip ops\n  \
-> 192.0.2.11:53                Route   100    0          0         \n  \
-> 192.0.2.12:53                Tunnel  0      0          0         \n  \
-> 192.0.2.13:53                Local   2      0          0         \n  \
-> 192.0.2.14:53                (null)  3      0          0         \n"
        );
        assert_eq!(render(&[svc].into_iter().collect()), want);
    }

    #[test]
    fn pe_only_shown_when_persistent_and_default_mask_hidden() {
        let mut spec = ServiceSpec::new("rr", Af::V4);
        spec.pe_name = Some("sip".into());
        let a = Service::new(tcp("10.0.0.1", 5060), spec.clone());
        spec.persistence = Some(60);
        let b = Service::new(tcp("10.0.0.2", 5060), spec);
        let out = render(&[a, b].into_iter().collect());
        assert_eq!(
            out,
            format!("{HEAD}TCP  10.0.0.1:5060 rr\nTCP  10.0.0.2:5060 rr persistent 60 pe sip\n")
        );
    }

    #[test]
    fn ipv6_service_and_mask() {
        let mut spec = ServiceSpec::new("sh", Af::V6);
        spec.flags = IP_VS_SVC_F_SCHED1 | IP_VS_SVC_F_SCHED2;
        spec.persistence = Some(1800);
        spec.netmask = 64;
        let svc = Service::new(ServiceKey::addr(Protocol::Tcp, ip("fd00::1"), 443), spec)
            .with_dest(
                DestKey::new(ip("fd00:0:0:1::10"), 443),
                DestSpec::new(Fwd::Masq, 5),
            );
        let want = format!(
            "{HEAD}TCP  [fd00::1]:443 sh (sh-fallback,sh-port) persistent 1800 mask 64\n  \
-> [fd00:0:0:1::10]:443         Masq    5      0          0         \n"
        );
        assert_eq!(render(&[svc].into_iter().collect()), want);
    }

    #[test]
    fn long_ipv6_destination_overflows_the_column() {
        let svc = Service::new(
            ServiceKey::addr(Protocol::Sctp, ip("2001:db8:1:2:3:4:5:6"), 9),
            ServiceSpec::new("rr", Af::V6),
        )
        .with_dest(
            DestKey::new(ip("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff"), 65535),
            DestSpec::new(Fwd::Route, 1),
        );
        let want = format!(
            "{HEAD}SCTP [2001:db8:1:2:3:4:5:6]:9 rr\n  \
-> [2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff]:65535 Route   1      0          0         \n"
        );
        assert_eq!(render(&[svc].into_iter().collect()), want);
    }

    #[test]
    fn fwmark_services_and_scheduler_flag_words() {
        let mut mh = ServiceSpec::new("mh", Af::V4);
        mh.flags = IP_VS_SVC_F_SCHED2;
        let mut rr = ServiceSpec::new("rr", Af::V6);
        rr.flags = IP_VS_SVC_F_SCHED1 | IP_VS_SVC_F_SCHED3;
        // A flag the scheduler has no word for prints empty parentheses.
        let mut sh = ServiceSpec::new("sh", Af::V4);
        sh.flags = IP_VS_SVC_F_SCHED3;
        let state: IpvsState = [
            Service::new(ServiceKey::fwmark(Af::V4, 1), mh).with_dest(
                DestKey::new(ip("10.1.1.1"), 0),
                DestSpec::new(Fwd::Route, 1),
            ),
            Service::new(ServiceKey::fwmark(Af::V6, 2), rr),
            Service::new(ServiceKey::fwmark(Af::V4, 3), sh),
        ]
        .into_iter()
        .collect();
        let want = format!(
            "{HEAD}FWM  1 mh (mh-port)\n  \
-> 10.1.1.1:0                   Route   1      0          0         \n\
FWM  2 IPv6 rr (flag-1,flag-3)\nFWM  3 sh ()\n"
        );
        assert_eq!(render(&state), want);
    }

    #[test]
    fn sort_order_is_ipvsadms() {
        // Address services before fwmark ones, v4 before v6, TCP before UDP,
        // then address and port.
        let state: IpvsState = [
            Service::new(
                ServiceKey::fwmark(Af::V4, 7),
                ServiceSpec::new("rr", Af::V4),
            ),
            Service::new(
                ServiceKey::addr(Protocol::Udp, ip("10.0.0.1"), 53),
                ServiceSpec::new("rr", Af::V4),
            ),
            Service::new(tcp("fd00::1", 80), ServiceSpec::new("rr", Af::V6)),
            Service::new(tcp("10.0.0.2", 80), ServiceSpec::new("rr", Af::V4)),
            Service::new(tcp("10.0.0.1", 443), ServiceSpec::new("rr", Af::V4)),
            Service::new(tcp("10.0.0.1", 80), ServiceSpec::new("rr", Af::V4)),
        ]
        .into_iter()
        .collect();
        let lines: Vec<String> = render(&state).lines().skip(3).map(String::from).collect();
        assert_eq!(
            lines,
            [
                "TCP  10.0.0.1:80 rr",
                "TCP  10.0.0.1:443 rr",
                "TCP  10.0.0.2:80 rr",
                "UDP  10.0.0.1:53 rr",
                "TCP  [fd00::1]:80 rr",
                "FWM  7 rr",
            ]
        );
    }

    #[test]
    fn sort_reproduces_ipvsadms_int_overflow() {
        // 0x0a000001 - 0xc0a80001 wraps to a positive int in C: ipvsadm
        // lists 192.168.0.1 first.
        let state: IpvsState = [
            Service::new(tcp("10.0.0.1", 80), ServiceSpec::new("rr", Af::V4)),
            Service::new(tcp("192.168.0.1", 80), ServiceSpec::new("rr", Af::V4)),
        ]
        .into_iter()
        .collect();
        let lines: Vec<String> = render(&state).lines().skip(3).map(String::from).collect();
        assert_eq!(lines, ["TCP  192.168.0.1:80 rr", "TCP  10.0.0.1:80 rr"]);
    }

    #[test]
    fn huge_values_print_like_c_ints() {
        let mut spec = ServiceSpec::new("rr", Af::V4);
        spec.persistence = Some(u32::MAX);
        let state: IpvsState = [
            Service::new(
                ServiceKey::fwmark(Af::V4, u32::MAX),
                ServiceSpec::new("rr", Af::V4),
            ),
            Service::new(tcp("10.0.0.1", 1), spec).with_dest(
                DestKey::new(ip("10.0.0.2"), 1),
                DestSpec::new(Fwd::Masq, u32::MAX),
            ),
        ]
        .into_iter()
        .collect();
        let out = render(&state);
        assert!(out.contains("TCP  10.0.0.1:1 rr persistent 4294967295\n"));
        assert!(out.contains("Masq    -1     0"));
        assert!(out.contains("FWM  -1 rr\n"));
    }

    #[test]
    fn ntop6_matches_glibc() {
        for (a, want) in [
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("fd00::1", "fd00::1"),
            ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
            ("1:0:0:2:3:0:0:4", "1::2:3:0:0:4"),
            ("1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::1.2.3.4", "::1.2.3.4"),
            ("::ffff:0:1.2.3.4", "::ffff:0:102:304"),
            ("2001:DB8::A", "2001:db8::a"),
        ] {
            assert_eq!(ntop6(&a.parse().unwrap()), want, "{a}");
        }
    }

    #[test]
    fn msort_handles_a_non_transitive_comparator() {
        // 10 < 100 < 192 but 192 < 10 in ipvsadm's comparison.
        let mut v = [
            u32::from(Ipv4Addr::new(192, 168, 0, 1)),
            u32::from(Ipv4Addr::new(100, 0, 0, 1)),
            u32::from(Ipv4Addr::new(10, 0, 0, 1)),
        ];
        glibc_msort(&mut v, &|a, b| wrap_cmp(*a, *b));
        // glibc: sort [192] and [100, 10] -> [10, 100]; merge 192 vs 10:
        // 192 - 10 < 0 as int? 0xc0a80001 - 0x0a000001 = 0xb6a80000 < 0 ->
        // 192 first; then 192 done, 10, 100.
        assert_eq!(
            v.map(Ipv4Addr::from),
            [
                Ipv4Addr::new(192, 168, 0, 1),
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(100, 0, 0, 1)
            ]
        );
    }
}
