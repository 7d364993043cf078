//! Route lines (`virtual_routes`, `static_routes`) in keepalived's syntax,
//! which is `ip route add`'s without abbreviations (vrrp_iproute.c
//! alloc_route). Shared by both readers: lbd's TOML strings are the same
//! words.

use std::net::IpAddr;

use crate::model::{Route, RouteKind, Scope, Span, RTPROT_KEEPALIVED, RT_TABLE_MAIN};
use crate::values::{format_scope, parse_addr_prefix, parse_scope};

/// What a line said beyond the route itself: the keepalived reader applies
/// keepalived's rules on protocol and tracking with it.
#[derive(Debug, Default)]
pub(crate) struct RouteNotes {
    /// Read as written but worth a note (`gw`, `proto`, ...).
    pub notes: Vec<String>,
    /// `protocol` was given.
    pub protocol_given: bool,
    /// `no_track` was given.
    pub no_track: bool,
}

/// Options keepalived accepts that lbd does not install yet: the route is
/// skipped rather than installed differently from what was asked.
const UNSUPPORTED_WITH_VALUE: &[&str] = &[
    "from",
    "tos",
    "dsfield",
    "as",
    "encap",
    "expires",
    "mtu",
    "hoplimit",
    "advmss",
    "rtt",
    "rttvar",
    "reordering",
    "window",
    "cwnd",
    "ssthresh",
    "realms",
    "rto_min",
    "initcwnd",
    "initrwnd",
    "features",
    "quickack",
    "congctl",
    "pref",
    "ttl-propagate",
    "fastopen_no_cookie",
    "vrf",
    "track_group",
];

/// Why a route line is skipped.
#[derive(Debug)]
pub(crate) enum RouteError {
    /// keepalived (or the kernel) refuses it too.
    Invalid(String),
    /// keepalived installs it but lbd cannot yet.
    Unsupported(String),
}

impl std::fmt::Display for RouteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteError::Invalid(m) | RouteError::Unsupported(m) => f.write_str(m),
        }
    }
}

impl From<String> for RouteError {
    fn from(m: String) -> Self {
        RouteError::Invalid(m)
    }
}

impl From<&str> for RouteError {
    fn from(m: &str) -> Self {
        RouteError::Invalid(m.to_string())
    }
}

/// Parses one route line. An `Err` is the reason the route is skipped.
/// A route's `src`/`via` address, of the route's one family.
fn route_addr(
    v: &str,
    what: &str,
    family: &mut impl FnMut(bool, &str) -> Result<(), String>,
) -> Result<IpAddr, String> {
    let a: IpAddr = v
        .parse()
        .map_err(|_| format!("invalid route {what} address {v:?}"))?;
    family(a.is_ipv6(), v)?;
    Ok(a)
}

pub(crate) fn parse_route_words(
    words: &[String],
    span: &Span,
) -> Result<(Route, RouteNotes), RouteError> {
    let mut notes = RouteNotes::default();
    let mut r = Route::unicast(span.clone(), IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);
    // Some(true) = IPv6. `default` leaves it open until the end.
    let mut v6: Option<bool> = None;
    let mut dst: Option<Option<(IpAddr, u8)>> = None;
    let mut family = |is_v6: bool, what: &str| -> Result<(), String> {
        match v6 {
            Some(f) if f != is_v6 => Err(format!(
                "cannot mix IPv4 and IPv6 addresses in one route ({what})"
            )),
            _ => {
                v6 = Some(is_v6);
                Ok(())
            }
        }
    };
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        let val = words.get(i + 1).map(String::as_str);
        let need = || val.ok_or_else(|| format!("{w} needs a value"));
        match w {
            "inet" => family(false, "inet")?,
            "inet6" => family(true, "inet6")?,
            "src" => {
                let v = need()?;
                r.src = Some(route_addr(v, "src", &mut family)?);
                i += 1;
            }
            "via" | "gw" => {
                if w == "gw" {
                    notes
                        .notes
                        .push("\"gw\" for routes is deprecated: read as \"via\"".into());
                }
                let mut v = need()?;
                // `via inet6 ADDR`: the family word is redundant with the address.
                if v == "inet" || v == "inet6" {
                    i += 1;
                    v = words
                        .get(i + 1)
                        .map(String::as_str)
                        .ok_or_else(|| format!("{w} {v} needs an address"))?;
                }
                r.via = Some(route_addr(v, "via", &mut family)?);
                i += 1;
            }
            "dev" | "oif" => {
                r.dev = Some(need()?.to_string());
                i += 1;
            }
            "table" => {
                let v = need()?;
                r.table = parse_table(v)?;
                i += 1;
            }
            "protocol" | "proto" => {
                let v = need()?;
                if w == "proto" {
                    notes.notes.push("\"proto\" is iproute2's abbreviation, which keepalived does not accept (it would skip this route); read as \"protocol\"".into());
                }
                r.protocol = parse_protocol(v)
                    .ok_or_else(|| format!("protocol {v:?} not found or invalid for route: expected a name from iproute2's rt_protos (static, boot, keepalived, ...) or 0..=255"))?;
                notes.protocol_given = true;
                i += 1;
            }
            "scope" => {
                let v = need()?;
                r.scope = Some(parse_scope(v).ok_or_else(|| {
                    format!("scope {v:?} not found or invalid for route: expected global, site, link, host, nowhere or 0..=255")
                })?);
                i += 1;
            }
            "metric" | "priority" | "preference" => {
                let v = need()?;
                r.metric = Some(v.parse().map_err(|_| {
                    format!("invalid metric {v:?} for route: expected 0..={}", u32::MAX)
                })?);
                i += 1;
            }
            "onlink" => r.onlink = true,
            "no_track" => notes.no_track = true,
            // keepalived's add/prepend/append choose how a route joins others
            // to the same destination; lbd always replaces (adopts) it.
            "add" | "prepend" | "append" => notes.notes.push(format!(
                "\"{w}\" is ignored: lbd replaces a matching route (adopting an identical one)"
            )),
            "or" | "nexthop" => {
                return Err(RouteError::Unsupported(format!(
                    "multipath routes (\"{w}\") are not supported yet"
                )))
            }
            _ if UNSUPPORTED_WITH_VALUE.contains(&w) => {
                return Err(RouteError::Unsupported(format!(
                    "route option \"{w}\" is not supported yet"
                )))
            }
            _ => {
                let mut d = w;
                if d == "to" {
                    i += 1;
                    d = words
                        .get(i)
                        .map(String::as_str)
                        .ok_or("\"to\" needs a destination")?;
                }
                if let Some(k) = parse_kind(d)? {
                    r.kind = k;
                    i += 1;
                    d = words
                        .get(i)
                        .map(String::as_str)
                        .ok_or_else(|| format!("route type {d} needs a destination"))?;
                    if d == "to" {
                        i += 1;
                        d = words
                            .get(i)
                            .map(String::as_str)
                            .ok_or("\"to\" needs a destination")?;
                    }
                }
                if dst.is_some() {
                    return Err(format!(
                        "unknown route keyword {d:?} (a destination is already given)"
                    )
                    .into());
                }
                if matches!(d, "default" | "any" | "all") {
                    dst = Some(None);
                } else {
                    let (a, len) = parse_addr_prefix(d)
                        .map_err(|_| format!("unknown route keyword {d:?}: expected a destination such as 192.168.1.0/24 or a route option"))?;
                    family(a.is_ipv6(), d)?;
                    if host_bits(a, len) {
                        return Err(format!("destination {d} has host bits set: the kernel refuses it (use the network address)").into());
                    }
                    dst = Some(Some((a, len)));
                }
            }
        }
        i += 1;
    }
    let v6 = v6.unwrap_or(false);
    match dst {
        None => return Err("route must have a destination".into()),
        Some(Some((a, len))) => (r.dst, r.dst_len) = (a, len),
        Some(None) if v6 => r.dst = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        Some(None) => {}
    }
    if r.kind == RouteKind::Unicast {
        if r.via.is_none() && r.dev.is_none() {
            return Err(format!(
                "route to {}/{} needs via or dev (or a type such as blackhole)",
                r.dst, r.dst_len
            )
            .into());
        }
    } else if r.via.is_some() || r.dev.is_some() {
        return Err(format!(
            "a {} route takes no via or dev: the kernel refuses them",
            kind_name(r.kind)
        )
        .into());
    }
    Ok((r, notes))
}

fn host_bits(a: IpAddr, len: u8) -> bool {
    let (bits, width): (u128, u32) = match a {
        IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
        IpAddr::V6(v) => (u128::from(v), 128),
    };
    let host = width.saturating_sub(u32::from(len));
    // A /0 has every bit a host bit (and 1 << 128 does not fit).
    let mask = 1u128.checked_shl(host).map_or(u128::MAX, |b| b - 1);
    bits & mask != 0
}

/// Built-in table names (iproute2's rt_tables) or a number; table 0
/// (unspec) is what the kernel takes as main.
fn parse_table(v: &str) -> Result<u32, String> {
    match v {
        "main" => Ok(RT_TABLE_MAIN),
        "local" => Ok(255),
        "default" => Ok(253),
        _ => match v.parse::<u32>() {
            Ok(0) => Ok(RT_TABLE_MAIN),
            Ok(n) => Ok(n),
            Err(_) => Err(format!("routing table {v:?} not found for route: lbd knows main, local, default and numbers (names from /etc/iproute2/rt_tables are not read)")),
        },
    }
}

fn format_table(t: u32) -> String {
    match t {
        RT_TABLE_MAIN => "main".into(),
        255 => "local".into(),
        253 => "default".into(),
        n => n.to_string(),
    }
}

/// iproute2's rt_protos names.
const PROTOCOLS: &[(&str, u8)] = &[
    ("unspec", 0),
    ("redirect", 1),
    ("kernel", 2),
    ("boot", 3),
    ("static", 4),
    ("gated", 8),
    ("ra", 9),
    ("mrt", 10),
    ("zebra", 11),
    ("bird", 12),
    ("dnrouted", 13),
    ("xorp", 14),
    ("ntk", 15),
    ("dhcp", 16),
    ("keepalived", 18),
    ("babel", 42),
    ("bgp", 186),
    ("isis", 187),
    ("ospf", 188),
    ("rip", 189),
    ("eigrp", 192),
];

fn parse_protocol(v: &str) -> Option<u8> {
    PROTOCOLS
        .iter()
        .find(|(n, _)| *n == v)
        .map(|(_, p)| *p)
        .or_else(|| v.parse().ok())
}

fn format_protocol(p: u8) -> String {
    PROTOCOLS
        .iter()
        .find(|(_, n)| *n == p)
        .map_or_else(|| p.to_string(), |(name, _)| (*name).to_string())
}

fn parse_kind(w: &str) -> Result<Option<RouteKind>, RouteError> {
    Ok(Some(match w {
        "unicast" => RouteKind::Unicast,
        "blackhole" => RouteKind::Blackhole,
        "unreachable" => RouteKind::Unreachable,
        "prohibit" => RouteKind::Prohibit,
        "throw" => RouteKind::Throw,
        "local" | "broadcast" | "anycast" | "multicast" | "nat" => {
            return Err(RouteError::Unsupported(format!(
                "route type \"{w}\" is not supported yet"
            )))
        }
        _ => return Ok(None),
    }))
}

pub(crate) fn kind_name(k: RouteKind) -> &'static str {
    match k {
        RouteKind::Unicast => "unicast",
        RouteKind::Blackhole => "blackhole",
        RouteKind::Unreachable => "unreachable",
        RouteKind::Prohibit => "prohibit",
        RouteKind::Throw => "throw",
    }
}

/// Renders a route in the syntax `parse_route_words` reads (lbd's TOML
/// default protocol is keepalived's, so it is only written when it differs).
pub(crate) fn format_route(r: &Route) -> String {
    let mut s = String::new();
    if r.kind != RouteKind::Unicast {
        s += kind_name(r.kind);
        s.push(' ');
    }
    s += &format!("{}/{}", r.dst, r.dst_len);
    if let Some(a) = r.src {
        s += &format!(" src {a}");
    }
    if let Some(a) = r.via {
        s += &format!(" via {a}");
    }
    if let Some(d) = &r.dev {
        s += &format!(" dev {d}");
    }
    if let Some(sc) = r.scope {
        s += &format!(" scope {}", format_scope(sc));
    }
    if r.table != RT_TABLE_MAIN {
        s += &format!(" table {}", format_table(r.table));
    }
    if let Some(m) = r.metric {
        s += &format!(" metric {m}");
    }
    if r.protocol != RTPROT_KEEPALIVED {
        s += &format!(" protocol {}", format_protocol(r.protocol));
    }
    if r.onlink {
        s += " onlink";
    }
    s
}

impl Route {
    /// A unicast route to `dst/len` in the main table, lbd's protocol, no
    /// other attribute: what a route line sets before its options.
    pub fn unicast(span: Span, dst: IpAddr, dst_len: u8) -> Route {
        Route {
            span,
            kind: RouteKind::Unicast,
            dst,
            dst_len,
            src: None,
            via: None,
            dev: None,
            scope: None,
            table: RT_TABLE_MAIN,
            metric: None,
            protocol: RTPROT_KEEPALIVED,
            onlink: false,
        }
    }

    /// The scope to install with: the one given, else iproute2's default
    /// (link for an IPv4 unicast route without a gateway, global
    /// otherwise). keepalived always sends global, which leaves such a
    /// route unusable for resolving gateways.
    pub fn effective_scope(&self) -> Scope {
        match self.scope {
            Some(s) => s,
            None if self.kind == RouteKind::Unicast && self.via.is_none() && self.dst.is_ipv4() => {
                Scope::Link
            }
            None => Scope::Global,
        }
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_route(self))
    }
}
