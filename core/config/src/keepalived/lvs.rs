//! keepalived.conf IPVS keywords -> model: `virtual_server`,
//! `virtual_server_group` and the `lvs_*` globals. Defaults and the
//! fix-ups keepalived applies when it completes a virtual server follow
//! check_parser.c, check_data.c (alloc_vs, alloc_rs, validate_check_config)
//! and global_parser.c; where keepalived logs and carries on with a
//! corrected value, lbd warns and does the same.

use std::net::IpAddr;

use super::Ka;
use crate::ka_syntax::Node;
use crate::model::*;
use crate::values::*;

/// keepalived IPVS_SVC_PERSISTENT_TIMEOUT.
pub(crate) const DEFAULT_PERSISTENCE: u32 = 360;
/// keepalived LVS_MAX_TIMEOUT (31 days).
pub(crate) const LVS_MAX_TIMEOUT: u64 = 86400 * 31;
/// keepalived IPVS_WEIGHT_LIMIT (INT32_MAX).
pub(crate) const WEIGHT_MAX: u64 = i32::MAX as u64;

/// A real or sorry server before the service it belongs to is complete.
struct RawRs {
    rs: RealServer,
    /// keepalived copies the service's method when the server is declared,
    /// and fills an unset one when the service ends.
    fwd: Option<LbKind>,
    weight: Option<u32>,
    inhibit: Option<bool>,
}

pub(super) struct RawVs {
    vs: VirtualServer,
    protocol_set: bool,
    fwd: Option<LbKind>,
    rs: Vec<RawRs>,
    sorry: Option<(SorryServer, Option<LbKind>)>,
}

impl Ka {
    /// `WORD` at position `i` as an unsigned number in `min..=max`.
    fn word_uint(&mut self, n: &Node, i: usize, min: u64, max: u64, what: &str) -> Option<u64> {
        let Some(v) = n.arg(i) else {
            self.errors
                .push(&n.span, format!("{}: expected {what}", n.keyword()));
            return None;
        };
        match v.parse::<u64>() {
            Ok(x) if (min..=max).contains(&x) => Some(x),
            _ => {
                self.errors.push(
                    &n.span,
                    format!(
                        "{}: invalid {what} {v:?}: expected {min}..={max}",
                        n.keyword()
                    ),
                );
                None
            }
        }
    }

    fn port_word(&mut self, n: &Node, i: usize) -> Option<u16> {
        match n.arg(i) {
            None => Some(0),
            Some(_) => self.word_uint(n, i, 0, 65535, "port").map(|p| p as u16),
        }
    }

    /// The rest of a line (scripts and their user), for keywords recorded as text.
    fn rest(&mut self, n: &Node) -> Option<String> {
        if n.words.len() < 2 {
            self.errors
                .push(&n.span, format!("{}: expected a value", n.keyword()));
            return None;
        }
        Some(n.words[1..].join(" "))
    }

    pub(super) fn lvs_global(&mut self, n: &Node) -> bool {
        let kw = n.keyword();
        if !matches!(
            kw,
            "lvs_flush"
                | "lvs_flush_on_stop"
                | "lvs_flush_onstop"
                | "lvs_timeouts"
                | "lvs_sync_daemon"
        ) {
            return false;
        }
        self.no_block(n);
        match kw {
            "lvs_flush" => self.cfg.global.lvs_flush = true,
            "lvs_timeouts" => self.lvs_timeouts(n),
            "lvs_sync_daemon" => self.lvs_sync_daemon(n),
            // lvs_flush_onstop is the pre-2.1.6 spelling.
            _ => match n.arg(1) {
                None => self.cfg.global.lvs_flush_onstop = LvsFlushOnStop::On,
                Some("VS") => self.cfg.global.lvs_flush_onstop = LvsFlushOnStop::VsOnly,
                Some(o) => self.errors.push(
                    &n.span,
                    format!("{kw}: unknown type {o:?}: expected nothing or VS"),
                ),
            },
        }
        true
    }

    fn lvs_timeouts(&mut self, n: &Node) {
        if n.words.len() < 3 {
            self.errors.push(
                &n.span,
                "lvs_timeouts: expected at least one of tcp SECS, tcpfin SECS, udp SECS",
            );
            return;
        }
        let mut t = self.cfg.global.lvs_timeouts.unwrap_or_default();
        let mut i = 1;
        while i < n.words.len() {
            let opt = n.words[i].as_str();
            let slot = match opt {
                "tcp" => &mut t.tcp,
                "tcpfin" => &mut t.tcpfin,
                "udp" => &mut t.udp,
                o => {
                    self.errors.push(
                        &n.span,
                        format!("lvs_timeouts: unknown option {o:?}: expected tcp, tcpfin or udp"),
                    );
                    return;
                }
            };
            let Some(v) = n.words.get(i + 1).and_then(|v| v.parse::<u64>().ok()) else {
                self.errors.push(
                    &n.span,
                    format!("lvs_timeouts: {opt} needs seconds (0..={LVS_MAX_TIMEOUT})"),
                );
                return;
            };
            if v > LVS_MAX_TIMEOUT {
                self.errors.push(
                    &n.span,
                    format!("lvs_timeouts: {opt} {v} out of range: expected 0..={LVS_MAX_TIMEOUT}"),
                );
                return;
            }
            *slot = Some(v as u32);
            i += 2;
        }
        self.cfg.global.lvs_timeouts = Some(t);
    }

    fn lvs_sync_daemon(&mut self, n: &Node) {
        if self.cfg.global.lvs_sync_daemon.is_some() {
            self.warn(
                &n.span,
                "lvs_sync_daemon is already specified (ignored, as keepalived does)",
            );
            return;
        }
        let Some(ifname) = n.arg(1) else {
            self.errors
                .push(&n.span, "lvs_sync_daemon: expected an interface name");
            return;
        };
        let mut sd = LvsSyncDaemon {
            span: n.span.clone(),
            interface: ifname.to_string(),
            instance: None,
            id: None,
            maxlen: None,
            port: None,
            ttl: None,
            group: None,
        };
        let mut i = 2;
        while i < n.words.len() {
            let w = n.words[i].as_str();
            match w {
                "inst" => match n.arg(i + 1) {
                    Some(v) => sd.instance = Some(v.to_string()),
                    None => {
                        self.errors
                            .push(&n.span, "lvs_sync_daemon: inst needs an instance name");
                        return;
                    }
                },
                "id" | "maxlen" | "port" | "ttl" => {
                    let max = match w {
                        "id" => 255,
                        "maxlen" => 65535 - 20 - 8,
                        "port" => 65535,
                        _ => 255,
                    };
                    let min = u64::from(w != "id");
                    let Some(v) = self.word_uint(n, i + 1, min, max, w) else {
                        return;
                    };
                    match w {
                        "id" => sd.id = Some(v as u8),
                        "maxlen" => sd.maxlen = Some(v as u16),
                        "port" => sd.port = Some(v as u16),
                        _ => sd.ttl = Some(v as u8),
                    }
                }
                "group" => {
                    let Some(v) = n.arg(i + 1) else {
                        self.errors
                            .push(&n.span, "lvs_sync_daemon: group needs a multicast address");
                        return;
                    };
                    let Some(a) = self.ip(n, v) else { return };
                    if !a.is_multicast() {
                        self.errors.push(
                            &n.span,
                            format!("lvs_sync_daemon: group {a} is not a multicast address"),
                        );
                        return;
                    }
                    sd.group = Some(a);
                }
                // keepalived's older positional form: IFNAME INSTANCE [SYNCID].
                _ if i == 2 => {
                    sd.instance = Some(w.to_string());
                    i += 1;
                    continue;
                }
                _ if i == 3 && w.parse::<u8>().is_ok() => {
                    self.warn(&n.span, "lvs_sync_daemon: write \"id\" before the sync id");
                    sd.id = w.parse().ok();
                    i += 1;
                    continue;
                }
                o => {
                    let m = format!("lvs_sync_daemon: unknown option {o:?} (ignored, as keepalived does): expected inst, id, maxlen, port, ttl or group");
                    self.warn(&n.span, m);
                    i += 1;
                    continue;
                }
            }
            i += 2;
        }
        self.cfg.global.lvs_sync_daemon = Some(sd);
    }

    pub(super) fn virtual_server_group(&mut self, n: &Node) {
        let Some(name) = self.arg1(n, "a group name") else {
            return;
        };
        let Some(b) = self.block(n) else { return };
        let mut g = VirtualServerGroup {
            span: n.span.clone(),
            name: name.to_string(),
            members: Vec::new(),
        };
        for l in b {
            if l.block.is_some() {
                self.errors.push(
                    &l.span,
                    format!("virtual_server_group {name}: unexpected '{{' block"),
                );
                continue;
            }
            match parse_vsg_member(&l.words) {
                Ok(m) => g.members.push(m),
                Err(e) => self
                    .errors
                    .push(&l.span, format!("virtual_server_group {name}: {e}")),
            }
        }
        if g.members.is_empty() {
            self.warn(
                &n.span,
                format!("virtual_server_group {name} has no entries (ignored, as keepalived does)"),
            );
            return;
        }
        self.cfg.virtual_server_groups.push(g);
    }

    pub(super) fn virtual_server(&mut self, n: &Node) {
        let target = match (n.arg(1), n.arg(2)) {
            (Some("group"), Some(g)) => VsTarget::Group(g.to_string()),
            (Some("fwmark"), Some(_)) => {
                let Some(m) = self.word_uint(n, 2, 0, u64::from(u32::MAX), "fwmark") else {
                    return;
                };
                VsTarget::Fwmark(m as u32)
            }
            (Some("group" | "fwmark"), None) => {
                let m = format!("virtual_server {}: expected a value after it", n.words[1]);
                self.errors.push(&n.span, m);
                return;
            }
            (Some(a), _) => {
                let Some(ip) = self.ip(n, a) else { return };
                let Some(port) = self.port_word(n, 2) else {
                    return;
                };
                VsTarget::Addr { ip, port }
            }
            (None, _) => {
                self.errors.push(
                    &n.span,
                    "virtual_server: expected IP [PORT], fwmark N or group NAME",
                );
                return;
            }
        };
        if n.words.len() > 3 {
            let m = format!(
                "virtual_server: extra arguments {:?} (ignored)",
                &n.words[3..]
            );
            self.warn(&n.span, m);
        }
        let Some(b) = self.block(n) else { return };
        let mut r = RawVs {
            vs: VirtualServer {
                span: n.span.clone(),
                target,
                ip_family: None,
                protocol: Protocol::Tcp,
                scheduler: String::new(),
                sched_flags: SchedFlags::default(),
                fwd: LbKind::Nat,
                persistence_timeout: None,
                persistence_granularity: None,
                persistence_engine: None,
                ha_suspend: false,
                virtualhost: None,
                omega: false,
                quorum: 1,
                hysteresis: 0,
                quorum_up: None,
                quorum_down: None,
                inhibit_on_failure: false,
                weight: 1,
                check: CheckTiming::default(),
                sorry_server: None,
                real_servers: Vec::new(),
            },
            protocol_set: false,
            fwd: None,
            rs: Vec::new(),
            sorry: None,
        };
        for c in b {
            self.vs_kw(c, &mut r);
        }
        self.raw_vs.push(r);
    }

    /// Timing keywords shared by virtual and real servers; false if `n` is not one.
    fn timing_kw(&mut self, n: &Node, t: &mut CheckTiming, vs_level: bool) -> bool {
        let kw = n.keyword();
        match kw {
            "connect_timeout" | "delay_loop" | "delay_before_retry" | "warmup" => {
                self.no_block(n);
                if let Some(d) = self.secs(n, "seconds (up to 6 decimals)") {
                    if d.is_zero() && matches!(kw, "connect_timeout" | "delay_loop") {
                        self.invalid_ignored(n, "0", "more than 0 seconds");
                        return true;
                    }
                    let slot = match kw {
                        "connect_timeout" => &mut t.connect_timeout,
                        "delay_loop" => &mut t.delay_loop,
                        "delay_before_retry" => &mut t.delay_before_retry,
                        _ => &mut t.warmup,
                    };
                    *slot = Some(d);
                }
            }
            "retry" => {
                self.no_block(n);
                if let Some(v) = self.uint(n, 1, u64::from(u32::MAX), "a count") {
                    t.retry = Some(v as u32);
                }
            }
            "alpha" => {
                self.no_block(n);
                // The virtual server's alpha is a bare flag, the real server's a BOOL.
                if vs_level {
                    t.alpha = Some(true);
                } else if let Some(b) = self.opt_bool(n) {
                    t.alpha = Some(b);
                }
            }
            _ => return false,
        }
        true
    }

    /// Timing keywords inside a checker block.
    pub(super) fn timing_kw_pub(&mut self, n: &Node, t: &mut CheckTiming) -> bool {
        self.timing_kw(n, t, false)
    }

    fn lb_kind(&mut self, n: &Node, in_real_server: bool) -> Option<LbKind> {
        let kw = n.keyword();
        let Some(m) = n.arg(1) else {
            self.errors
                .push(&n.span, format!("{kw}: expected NAT, DR or TUN"));
            return None;
        };
        let mut tun = Tunnel::default();
        let mut gue_port = None;
        let mut i = 2;
        while i < n.words.len() {
            match n.words[i].as_str() {
                "type" => {
                    match n.arg(i + 1) {
                        Some("ipip") => tun.kind = TunnelKind::Ipip,
                        Some("gue") => tun.kind = TunnelKind::Gue { port: 0 },
                        Some("gre") => tun.kind = TunnelKind::Gre,
                        o => {
                            self.errors.push(
                                &n.span,
                                format!(
                                    "{kw}: invalid tunnel type {o:?}: expected ipip, gue or gre"
                                ),
                            );
                            return None;
                        }
                    }
                    i += 1;
                }
                "port" => {
                    gue_port = Some(self.word_uint(n, i + 1, 1, 65535, "tunnel port")? as u16);
                    i += 1;
                }
                "nocsum" => tun.csum = TunnelCsum::NoCsum,
                "csum" => tun.csum = TunnelCsum::Csum,
                "remcsum" => tun.csum = TunnelCsum::RemCsum,
                o => {
                    self.errors.push(
                        &n.span,
                        format!("{kw}: invalid tunnel option {o:?}: expected type, port, nocsum, csum or remcsum"),
                    );
                    return None;
                }
            }
            i += 1;
        }
        match (&mut tun.kind, gue_port) {
            (TunnelKind::Gue { port }, Some(p)) => *port = p,
            (TunnelKind::Gue { .. }, None) | (_, Some(_)) => {
                self.errors.push(
                    &n.span,
                    format!("{kw}: gue tunnels require a port, the other types cannot have one"),
                );
                return None;
            }
            _ => {}
        }
        match m {
            "NAT" | "DR" if n.words.len() > 2 => {
                self.errors
                    .push(&n.span, format!("{kw}: tunnel options only apply to TUN"));
                None
            }
            "NAT" => Some(LbKind::Nat),
            "DR" => Some(LbKind::Dr),
            "TUN" => Some(LbKind::Tun(tun)),
            o => {
                // check_parser.c compares case-sensitively and only reports an
                // unknown name; the method then stays unset, which
                // check_data.c turns into NAT (or, for a real server, the
                // virtual server's method).
                let vs_level = kw == "lb_kind" || (kw == "lvs_method" && !in_real_server);
                if vs_level && o.eq_ignore_ascii_case("NAT") {
                    self.note(
                        &n.span,
                        format!("{kw} {o}: not a keepalived method name (case matters); using NAT, keepalived's default"),
                    );
                } else if vs_level {
                    self.warn(
                        &n.span,
                        format!("{kw} {o}: unknown forwarding method (keepalived knows NAT, DR and TUN, case matters); using NAT, keepalived's default"),
                    );
                } else {
                    self.warn(
                        &n.span,
                        format!("{kw} {o}: unknown forwarding method (keepalived knows NAT, DR and TUN, case matters); ignored as keepalived does: the virtual server's method applies"),
                    );
                }
                None
            }
        }
    }

    fn vs_kw(&mut self, n: &Node, r: &mut RawVs) {
        let kw = n.keyword();
        if self.timing_kw(n, &mut r.vs.check, true) {
            return;
        }
        if kw != "real_server" && !is_unsupported_vs_kw(kw) {
            self.no_block(n);
        }
        let vs = &mut r.vs;
        match kw {
            "real_server" => self.real_server(n, r),
            "lb_algo" | "lvs_sched" => {
                if let Some(v) = self.arg1(n, "a scheduler name") {
                    // check_parser.c knows a fixed, case-sensitive list;
                    // anything else is ignored and wlc applies.
                    if SCHEDULERS.contains(&v) {
                        r.vs.scheduler = v.to_string();
                    } else {
                        let m = format!("{kw} {v}: unknown scheduler (keepalived knows {}, case matters); ignored, as keepalived does", SCHEDULERS.join(" "));
                        self.warn(&n.span, m);
                    }
                }
            }
            "flag-1" => vs.sched_flags.flag_1 = true,
            "flag-2" => vs.sched_flags.flag_2 = true,
            "flag-3" => vs.sched_flags.flag_3 = true,
            "ops" => vs.sched_flags.ops = true,
            "hashed" => {}
            "sh-port" | "sh-fallback" | "mh-port" | "mh-fallback" => {
                // keepalived only takes them once the matching scheduler is set.
                let want = &kw[..2];
                if vs.scheduler != want {
                    let m = format!("{kw} only applies to the {want} scheduler, set before it (ignored, as keepalived does)");
                    self.warn(&n.span, m);
                    return;
                }
                let f = &mut vs.sched_flags;
                match kw {
                    "sh-port" => f.sh_port = true,
                    "sh-fallback" => f.sh_fallback = true,
                    "mh-port" => f.mh_port = true,
                    _ => f.mh_fallback = true,
                }
            }
            "lb_kind" | "lvs_method" => {
                if let Some(k) = self.lb_kind(n, false) {
                    r.fwd = Some(k);
                }
            }
            "protocol" => {
                if let Some(v) = self.arg1(n, "TCP, UDP or SCTP") {
                    let p = match v.to_ascii_uppercase().as_str() {
                        "TCP" => Protocol::Tcp,
                        "UDP" => Protocol::Udp,
                        "SCTP" => Protocol::Sctp,
                        _ => {
                            self.errors.push(
                                &n.span,
                                format!("protocol: unknown protocol {v:?}: expected TCP, UDP or SCTP"),
                            );
                            return;
                        }
                    };
                    r.vs.protocol = p;
                    r.protocol_set = true;
                }
            }
            "persistence_timeout" => {
                if n.arg(1).is_none() {
                    vs.persistence_timeout = Some(DEFAULT_PERSISTENCE);
                } else if let Some(v) = self.uint(n, 1, LVS_MAX_TIMEOUT, "seconds") {
                    r.vs.persistence_timeout = Some(v as u32);
                }
            }
            "persistence_granularity" => {
                let Some(v) = self.arg1(n, "a netmask (IPv4) or prefix length (IPv6)") else {
                    return;
                };
                let v6 = match (r.vs.ip_family, vs_addr_family(&r.vs.target)) {
                    (Some(f), _) | (None, Some(f)) => f == IpFamily::Inet6,
                    (None, None) => !v.contains('.'),
                };
                let g = if v6 {
                    v.parse::<u8>()
                        .ok()
                        .filter(|p| (1..=128).contains(p))
                        .map(Granularity::V6)
                } else {
                    v.parse().ok().map(Granularity::V4)
                };
                match g {
                    Some(g) => {
                        r.vs.persistence_granularity = Some(g);
                        if r.vs.ip_family.is_none() && matches!(r.vs.target, VsTarget::Fwmark(_)) {
                            r.vs.ip_family = Some(if v6 { IpFamily::Inet6 } else { IpFamily::Inet });
                        }
                        r.vs.persistence_timeout.get_or_insert(DEFAULT_PERSISTENCE);
                    }
                    None => self.errors.push(
                        &n.span,
                        format!(
                            "persistence_granularity: invalid value {v:?}: expected {}",
                            if v6 { "an IPv6 prefix length 1..=128" } else { "an IPv4 netmask" }
                        ),
                    ),
                }
            }
            "persistence_engine" => {
                if let Some(v) = self.arg1(n, "an engine name (sip)") {
                    r.vs.persistence_engine = Some(v.to_string());
                }
            }
            "ha_suspend" => vs.ha_suspend = true,
            "omega" => vs.omega = true,
            "inhibit_on_failure" => vs.inhibit_on_failure = true,
            "virtualhost" => {
                if let Some(v) = self.arg1(n, "a host name") {
                    r.vs.virtualhost = Some(v.to_string());
                }
            }
            "quorum" => {
                if let Some(v) = self.uint(n, 1, u64::from(u32::MAX), "a total weight") {
                    r.vs.quorum = v as u32;
                }
            }
            "hysteresis" => {
                if let Some(v) = self.uint(n, 0, u64::from(u32::MAX), "a weight") {
                    r.vs.hysteresis = v as u32;
                }
            }
            "quorum_up" | "quorum_down" => {
                if let Some(v) = self.rest(n) {
                    if kw == "quorum_up" {
                        r.vs.quorum_up = Some(v);
                    } else {
                        r.vs.quorum_down = Some(v);
                    }
                }
            }
            "weight" => {
                if let Some(v) = self.uint(n, 1, WEIGHT_MAX, "a weight") {
                    r.vs.weight = v as u32;
                }
            }
            "ip_family" => match n.arg(1) {
                Some("inet") => vs.ip_family = Some(IpFamily::Inet),
                Some("inet6") => vs.ip_family = Some(IpFamily::Inet6),
                o => self.errors.push(
                    &n.span,
                    format!("ip_family: invalid value {o:?}: expected inet or inet6"),
                ),
            },
            "sorry_server" => {
                let Some(a) = self.arg1_or_2(n) else { return };
                let Some(ip) = self.ip(n, a) else { return };
                let Some(port) = self.port_word(n, 2) else {
                    return;
                };
                r.sorry = Some((
                    SorryServer {
                        span: n.span.clone(),
                        ip,
                        port,
                        fwd: LbKind::Nat,
                        inhibit: false,
                    },
                    r.fwd,
                ));
            }
            "sorry_server_inhibit" => match &mut r.sorry {
                Some((s, _)) => s.inhibit = true,
                None => self.warn(
                    &n.span,
                    "sorry_server_inhibit before or without sorry_server (ignored, as keepalived does)",
                ),
            },
            "sorry_server_lvs_method" => {
                if r.sorry.is_none() {
                    self.warn(
                        &n.span,
                        "sorry_server_lvs_method before or without sorry_server (ignored, as keepalived does)",
                    );
                } else if let Some(k) = self.lb_kind(n, true) {
                    if let Some((_, f)) = &mut r.sorry {
                        *f = Some(k);
                    }
                }
            }
            _ => self.unsupported(n),
        }
    }

    /// `KW IP [PORT]`: the IP, with a warning for words past the port.
    fn arg1_or_2<'n>(&mut self, n: &'n Node) -> Option<&'n str> {
        let Some(a) = n.arg(1) else {
            self.errors
                .push(&n.span, format!("{}: expected IP [PORT]", n.keyword()));
            return None;
        };
        if n.words.len() > 3 {
            let m = format!(
                "{}: extra arguments {:?} (ignored)",
                n.keyword(),
                &n.words[3..]
            );
            self.warn(&n.span, m);
        }
        Some(a)
    }

    fn real_server(&mut self, n: &Node, r: &mut RawVs) {
        let Some(a) = self.arg1_or_2(n) else { return };
        // check_data.c: "Invalid real server ip address/port - skipping".
        let (Ok(ip), Some(port)) = (
            parse_ip(a, "real_server"),
            n.arg(2).map_or(Some(0), |p| p.parse::<u16>().ok()),
        ) else {
            let m = format!(
                "real_server {}: invalid address or port; the real server is skipped, as keepalived does",
                n.words[1..].join(" ")
            );
            self.warn(&n.span, m);
            return;
        };
        let mut rr = RawRs {
            rs: RealServer {
                span: n.span.clone(),
                ip,
                port,
                weight: 1,
                fwd: LbKind::Nat,
                inhibit_on_failure: false,
                u_threshold: 0,
                l_threshold: 0,
                notify_up: None,
                notify_down: None,
                check: CheckTiming::default(),
                checks: Vec::new(),
            },
            fwd: r.fwd,
            weight: None,
            inhibit: None,
        };
        // keepalived accepts `real_server IP PORT` without a block.
        if let Some(b) = &n.block {
            for c in b {
                self.rs_kw(c, &mut rr);
            }
        }
        r.rs.push(rr);
    }

    fn rs_kw(&mut self, n: &Node, r: &mut RawRs) {
        let kw = n.keyword();
        if CHECKER_KINDS.contains(&kw) {
            let checks = self.checker(n);
            if checks.is_empty() && !super::scripts::is_run_checker(kw) {
                self.cfg.skipped_checks.push(SkippedCheck {
                    span: n.span.clone(),
                    kind: kw.to_string(),
                    rs_span: r.rs.span.clone(),
                });
            }
            r.rs.checks.extend(checks);
            return;
        }
        if self.timing_kw(n, &mut r.rs.check, false) {
            return;
        }
        if !is_unsupported_vs_kw(kw) {
            self.no_block(n);
        }
        match kw {
            "weight" => {
                if let Some(v) = self.uint(n, 0, WEIGHT_MAX, "a weight") {
                    r.weight = Some(v as u32);
                }
            }
            "lvs_method" => {
                if let Some(k) = self.lb_kind(n, true) {
                    r.fwd = Some(k);
                }
            }
            "uthreshold" | "lthreshold" => {
                if let Some(v) = self.uint(n, 0, u64::from(u32::MAX), "a connection count") {
                    if kw == "uthreshold" {
                        r.rs.u_threshold = v as u32;
                    } else {
                        r.rs.l_threshold = v as u32;
                    }
                }
            }
            "inhibit_on_failure" => {
                if let Some(b) = self.opt_bool(n) {
                    r.inhibit = Some(b);
                }
            }
            "notify_up" | "notify_down" => {
                if let Some(v) = self.rest(n) {
                    if kw == "notify_up" {
                        r.rs.notify_up = Some(v);
                    } else {
                        r.rs.notify_down = Some(v);
                    }
                }
            }
            _ => self.unsupported(n),
        }
    }

    /// keepalived's vs_end_handler and validate_check_config for one service.
    pub(super) fn finish_vs(&mut self, r: RawVs) {
        let mut vs = r.vs;
        let what = format!("virtual_server {}", target_text(&vs.target));
        let sp = vs.span.clone();
        if r.rs.is_empty() {
            self.warn(
                &sp,
                format!("{what} has no real servers (ignored, as keepalived does)"),
            );
            return;
        }
        vs.fwd = r.fwd.unwrap_or(LbKind::Nat);
        if vs.scheduler.is_empty() {
            self.warn(
                &sp,
                format!("{what}: no scheduler set; using wlc, keepalived's default"),
            );
            vs.scheduler = "wlc".into();
        }
        let fwmark = match &vs.target {
            VsTarget::Fwmark(_) => true,
            VsTarget::Group(g) => self
                .cfg
                .virtual_server_groups
                .iter()
                .find(|x| &x.name == g)
                .is_some_and(|x| {
                    !x.members
                        .iter()
                        .any(|m| matches!(m, VsgMember::Range { .. }))
                }),
            VsTarget::Addr { .. } => false,
        };
        if vs.ha_suspend && !matches!(vs.target, VsTarget::Addr { .. }) {
            self.warn(
                &sp,
                format!(
                    "{what}: ha_suspend cannot be used with fwmarks (cleared, as keepalived does)"
                ),
            );
            vs.ha_suspend = false;
        }
        if fwmark {
            if r.protocol_set {
                self.warn(
                    &sp,
                    format!("{what}: protocol is ignored for fwmark services"),
                );
            }
            vs.protocol = Protocol::Tcp;
        } else {
            if !r.protocol_set {
                self.warn(&sp, format!("{what}: no protocol set: using UDP as keepalived does (write protocol TCP for TCP)"));
                vs.protocol = Protocol::Udp;
            }
            if vs.sched_flags.ops && vs.protocol != Protocol::Udp {
                self.warn(&sp, format!("{what}: ops (one-packet scheduling) requires UDP (cleared, as keepalived does)"));
                vs.sched_flags.ops = false;
            }
        }
        let vs_port = match vs.target {
            VsTarget::Addr { port, .. } => Some(port),
            _ => None,
        };
        if vs_port == Some(0) && vs.persistence_timeout.is_none() {
            self.warn(&sp, format!("{what}: port 0 is only valid for persistent services: persistence_timeout {DEFAULT_PERSISTENCE} set, as keepalived does"));
            vs.persistence_timeout = Some(DEFAULT_PERSISTENCE);
        }
        let mut weight_sum: u64 = 0;
        for mut rr in r.rs {
            rr.rs.fwd = rr.fwd.unwrap_or(vs.fwd);
            rr.rs.weight = rr.weight.unwrap_or(vs.weight);
            rr.rs.inhibit_on_failure = rr.inhibit.unwrap_or(vs.inhibit_on_failure);
            weight_sum += u64::from(rr.rs.weight);
            self.fix_port(
                &what,
                vs_port,
                fwmark,
                rr.rs.fwd,
                &mut rr.rs.port,
                &rr.rs.span,
            );
            vs.real_servers.push(rr.rs);
        }
        if let Some((mut s, fwd)) = r.sorry {
            s.fwd = fwd.unwrap_or(vs.fwd);
            let span = s.span.clone();
            self.fix_port(&what, vs_port, fwmark, s.fwd, &mut s.port, &span);
            vs.sorry_server = Some(s);
        }
        if u64::from(vs.quorum) > weight_sum {
            self.warn(&sp, format!("{what}: quorum {} exceeds the total weight of its real servers {weight_sum}: reduced to {weight_sum}, as keepalived does", vs.quorum));
            vs.quorum = weight_sum as u32;
        }
        if vs.quorum > 0 && vs.hysteresis >= vs.quorum {
            self.warn(
                &sp,
                format!(
                    "{what}: hysteresis {} >= quorum {}: set to {}, as keepalived does",
                    vs.hysteresis,
                    vs.quorum,
                    vs.quorum - 1
                ),
            );
            vs.hysteresis = vs.quorum - 1;
        }
        self.cfg.virtual_servers.push(vs);
    }

    /// A server's port as keepalived completes it: NAT and direct servers of
    /// an address service take the service's port when they have none;
    /// direct servers cannot change it; fwmark direct servers have none.
    fn fix_port(
        &mut self,
        what: &str,
        vs_port: Option<u16>,
        fwmark: bool,
        fwd: LbKind,
        port: &mut u16,
        span: &Span,
    ) {
        let Some(vp) = vs_port else {
            if fwmark && fwd != LbKind::Nat && *port != 0 {
                self.warn(span, format!("{what}: a fwmark service's DR/TUN server has no port: {port} cleared, as keepalived does"));
                *port = 0;
            }
            return;
        };
        if *port == 0 {
            *port = vp;
        } else if fwd != LbKind::Nat && *port != vp {
            self.warn(span, format!("{what}: DR/TUN server port {port} differs from the service's: reset to {vp}, as keepalived does"));
            *port = vp;
        }
    }
}

fn vs_addr_family(t: &VsTarget) -> Option<IpFamily> {
    match t {
        VsTarget::Addr { ip, .. } => Some(family_of(ip)),
        _ => None,
    }
}

pub(crate) fn family_of(a: &IpAddr) -> IpFamily {
    if a.is_ipv6() {
        IpFamily::Inet6
    } else {
        IpFamily::Inet
    }
}

pub(crate) fn target_text(t: &VsTarget) -> String {
    match t {
        VsTarget::Addr { ip, port } => format!("{ip} {port}"),
        VsTarget::Fwmark(m) => format!("fwmark {m}"),
        VsTarget::Group(g) => format!("group {g}"),
    }
}

/// Keywords keepalived has in these blocks that lbd does not read yet (warned).
fn is_unsupported_vs_kw(kw: &str) -> bool {
    matches!(kw, "smtp_alert" | "snmp_name")
}
