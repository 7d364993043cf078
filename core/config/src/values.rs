//! Value syntaxes shared by both readers: durations, VIP specs, scopes.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::model::{IpFamily, Scope, Span, Vip, VsgMember};

/// keepalived-style seconds with up to 6 decimals ("1", "0.5", "2.25").
pub(crate) fn parse_decimal_secs(s: &str) -> Option<Duration> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 6 {
        return None;
    }
    let secs: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut micros: u32 = 0;
    for (i, b) in frac.bytes().enumerate() {
        micros += u32::from(b - b'0') * 10u32.pow(5 - i as u32);
    }
    Some(Duration::from_secs(secs) + Duration::from_micros(u64::from(micros)))
}

/// lbd durations: a number with a unit, e.g. "1s", "100ms", "1.5s", "2m".
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "invalid duration {s:?}: expected a number with a unit, e.g. \"1s\" or \"100ms\""
        ));
    }
    let scale_us: u64 = match unit {
        "us" => 1,
        "ms" => 1_000,
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        "" if num.bytes().all(|b| b == b'0' || b == b'.') => 1,
        "" => {
            return Err(format!(
                "duration {s:?} has no unit: expected us, ms, s, m or h"
            ))
        }
        _ => {
            return Err(format!(
                "invalid duration unit {unit:?} in {s:?}: expected us, ms, s, m or h"
            ))
        }
    };
    // Exact decimal arithmetic in microseconds, so "0.1s" is exactly 100 ms.
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let bad = || format!("invalid duration {s:?}");
    if frac.contains('.') || (int.is_empty() && frac.is_empty()) {
        return Err(bad());
    }
    let int_v: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let mut total = int_v.checked_mul(scale_us).ok_or_else(bad)?;
    let mut place = scale_us;
    for b in frac.bytes() {
        place /= 10;
        if place == 0 {
            if b != b'0' {
                return Err(format!("duration {s:?} is finer than a microsecond"));
            }
            continue;
        }
        total = total
            .checked_add(u64::from(b - b'0') * place)
            .ok_or_else(bad)?;
    }
    Ok(Duration::from_micros(total))
}

/// The inverse of `parse_duration`, choosing the largest exact unit.
pub(crate) fn format_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us == 0 {
        "0s".to_string()
    } else if us.is_multiple_of(1_000_000) {
        format!("{}s", us / 1_000_000)
    } else if us.is_multiple_of(1_000) {
        format!("{}ms", us / 1_000)
    } else {
        format!("{us}us")
    }
}

/// keepalived's boolean words (check_true_false).
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "on" | "yes" => Some(true),
        "false" | "off" | "no" => Some(false),
        _ => None,
    }
}

/// Scope names as iproute2's rt_scopes (numbers are accepted too).
pub(crate) fn parse_scope(s: &str) -> Option<Scope> {
    let n: u8 = match s {
        "global" | "universe" => 0,
        "site" => 200,
        "link" => 253,
        "host" => 254,
        "nowhere" => 255,
        _ => s.parse().ok()?,
    };
    Some(match n {
        0 => Scope::Global,
        200 => Scope::Site,
        253 => Scope::Link,
        254 => Scope::Host,
        255 => Scope::Nowhere,
        other => Scope::Other(other),
    })
}

pub(crate) fn format_scope(s: Scope) -> String {
    match s {
        Scope::Global => "global".into(),
        Scope::Site => "site".into(),
        Scope::Link => "link".into(),
        Scope::Host => "host".into(),
        Scope::Nowhere => "nowhere".into(),
        Scope::Other(n) => n.to_string(),
    }
}

/// "ADDR[/PREFIX]" with keepalived's defaults (/32, /128); the family is
/// chosen by the presence of ':' as keepalived does.
pub(crate) fn parse_addr_prefix(s: &str) -> Result<(IpAddr, u8), String> {
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = a.parse().map_err(|_| {
        format!("invalid IP address {s:?}: expected e.g. 192.168.1.10/24 or 2001:db8::10/64")
    })?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match p {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => {
                return Err(format!(
                    "invalid prefix length {p:?} in {s:?}: expected 0..={max}"
                ))
            }
        },
    };
    Ok((addr, prefix))
}

pub(crate) fn parse_ip(s: &str, what: &str) -> Result<IpAddr, String> {
    s.parse().map_err(|_| {
        format!("invalid IP address {s:?} for {what}: expected an IPv4 or IPv6 address")
    })
}

/// iproute2's "brd +" / "brd -": host bits set / cleared.
fn derived_broadcast(addr: IpAddr, prefix: u8, ones: bool) -> Result<IpAddr, String> {
    let IpAddr::V4(v4) = addr else {
        return Err("broadcast is only valid for IPv4 addresses".into());
    };
    if prefix > 30 {
        return Err(format!(
            "prefix /{prefix} is too long for a derived broadcast address"
        ));
    }
    let host_mask = u32::MAX >> prefix;
    let bits = u32::from(v4);
    let b = if ones {
        bits | host_mask
    } else {
        bits & !host_mask
    };
    Ok(IpAddr::V4(Ipv4Addr::from(b)))
}

/// A VIP line as keepalived writes it:
/// `ADDR[/LEN] [dev IF] [brd X|+|-] [scope S] [label L] [...]`.
/// Options keepalived knows but lbd does not implement come back as
/// warnings; anything malformed is an error.
pub(crate) fn parse_vip_words<'w>(
    words: &'w [String],
    span: &Span,
) -> Result<(Vip, Vec<String>), String> {
    let first = words.first().ok_or("expected an IP address")?;
    let (addr, prefix) = parse_addr_prefix(first)?;
    let mut vip = Vip {
        addr,
        prefix,
        dev: None,
        label: None,
        scope: None,
        brd: None,
        span: span.clone(),
    };
    let mut warnings = Vec::new();
    let mut i = 1;
    while i < words.len() {
        let opt = words[i].as_str();
        let val = words.get(i + 1).map(String::as_str);
        let need = |v: Option<&'w str>| {
            v.ok_or_else(|| format!("option {opt:?} of {first} needs a value"))
        };
        match opt {
            "dev" => {
                let v = need(val)?;
                if vip.dev.is_some() {
                    return Err(format!("dev given twice for {first}"));
                }
                vip.dev = Some(v.to_string());
                i += 2;
            }
            "scope" => {
                let v = need(val)?;
                // keepalived: "Invalid scope ... - ignoring", the address stays.
                match parse_scope(v) {
                    Some(s) => vip.scope = Some(s),
                    None => warnings.push(format!("invalid scope {v:?} for {first} (expected global, site, link, host, nowhere or 0..=255); ignored, as keepalived does")),
                }
                i += 2;
            }
            "brd" | "broadcast" => {
                let v = need(val)?;
                vip.brd = Some(match v {
                    "+" => derived_broadcast(addr, prefix, true)?,
                    "-" => derived_broadcast(addr, prefix, false)?,
                    _ => {
                        let b: Ipv4Addr = v.parse().map_err(|_| {
                            format!(
                                "invalid broadcast address {v:?}: expected an IPv4 address, + or -"
                            )
                        })?;
                        IpAddr::V4(b)
                    }
                });
                i += 2;
            }
            "label" => {
                vip.label = Some(need(val)?.to_string());
                i += 2;
            }
            "peer" | "preferred_lft" => {
                need(val)?;
                warnings.push(format!("VIP option {opt:?} is not supported yet (ignored)"));
                i += 2;
            }
            "home" | "-nodad" | "mngtmpaddr" | "noprefixroute" | "autojoin" | "no_track"
            | "use_vmac" => {
                warnings.push(format!("VIP option {opt:?} is not supported yet (ignored)"));
                i += 1;
            }
            _ => {
                // keepalived: "Unknown configuration entry ... - ignoring", per word.
                warnings.push(format!(
                    "unknown option {opt:?} for VIP {first} (expected dev, brd, scope or label); ignored, as keepalived does"
                ));
                i += 1;
            }
        }
    }
    if vip.brd.is_some() && addr.is_ipv6() {
        return Err(format!("broadcast given for IPv6 address {first}"));
    }
    Ok((vip, warnings))
}

/// Renders a VIP in the same syntax `parse_vip_words` reads.
pub(crate) fn format_vip(v: &Vip) -> String {
    let mut s = format!("{}/{}", v.addr, v.prefix);
    if let Some(d) = &v.dev {
        s += &format!(" dev {d}");
    }
    if let Some(b) = &v.brd {
        s += &format!(" brd {b}");
    }
    if let Some(sc) = v.scope {
        s += &format!(" scope {}", format_scope(sc));
    }
    if let Some(l) = &v.label {
        s += &format!(" label {l}");
    }
    s
}

/// A `virtual_server_group` line: `ADDR [PORT]`, a range `ADDR-N [PORT]`
/// (last IPv4 octet in decimal, last IPv6 group in hex), `ADDR-ADDR
/// [PORT]`, `ADDR/PREFIX [PORT]`, or `fwmark N [inet|inet6]`. Port 0 = none.
pub(crate) fn parse_vsg_member(words: &[String]) -> Result<VsgMember, String> {
    let Some(first) = words.first() else {
        return Err("empty entry".into());
    };
    if words.len() > 3 || (words.len() == 3 && first != "fwmark") {
        return Err(format!(
            "too many words in {:?}: expected ADDR[-END] [PORT] or fwmark N [inet|inet6]",
            words.join(" ")
        ));
    }
    if first == "fwmark" {
        let mark = words
            .get(1)
            .and_then(|m| m.parse::<u32>().ok())
            .ok_or_else(|| {
                format!(
                    "invalid fwmark {:?}: expected 0..={}",
                    words.get(1).map_or("", |s| s.as_str()),
                    u32::MAX
                )
            })?;
        let family = match words.get(2).map(String::as_str) {
            None => None,
            Some("inet") => Some(IpFamily::Inet),
            Some("inet6") => Some(IpFamily::Inet6),
            Some(o) => {
                return Err(format!(
                    "fwmark {mark}: unknown family {o:?}: expected inet or inet6"
                ))
            }
        };
        return Ok(VsgMember::Fwmark { mark, family });
    }
    let port = match words.get(1) {
        None => 0,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("invalid port {p:?}: expected 0..=65535"))?,
    };
    let (first, last) = parse_addr_range(first)?;
    Ok(VsgMember::Range { first, last, port })
}

fn parse_addr_range(s: &str) -> Result<(IpAddr, IpAddr), String> {
    let bad = |why: &str| format!("invalid address range {s:?}: {why}");
    if let Some((a, p)) = s.split_once('/') {
        let a: IpAddr = a.parse().map_err(|_| bad("expected ADDR/PREFIX"))?;
        let bits: u32 = if a.is_ipv4() { 32 } else { 128 };
        let p: u32 = p
            .parse()
            .ok()
            .filter(|p| (1..=bits).contains(p))
            .ok_or_else(|| bad(&format!("prefix length must be 1..={bits}")))?;
        let host = if p == bits {
            0
        } else {
            u128::MAX >> (128 - (bits - p))
        };
        let v = addr_bits(a);
        if v & host != 0 {
            return Err(bad("host bits are set below the prefix"));
        }
        return Ok((a, bits_addr(a.is_ipv6(), v | host)));
    }
    let Some((a, end)) = s.split_once('-') else {
        let a: IpAddr = s.parse().map_err(|_| bad("expected an IP address"))?;
        return Ok((a, a));
    };
    let a: IpAddr = a
        .parse()
        .map_err(|_| bad("the start is not an IP address"))?;
    let last = if (a.is_ipv4() && end.contains('.')) || (a.is_ipv6() && end.contains(':')) {
        end.parse::<IpAddr>()
            .map_err(|_| bad("the end is not an IP address"))?
    } else {
        // keepalived: the end replaces the last octet (IPv4, decimal) or group (IPv6, hex).
        let (radix, max, shift_mask) = if a.is_ipv4() {
            (10, 255, 0xffu128)
        } else {
            (16, 0xffff, 0xffffu128)
        };
        let n = u128::from_str_radix(end, radix)
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| {
                bad(&format!(
                    "the end {end:?} must be a number up to {max}{}",
                    if radix == 16 { " in hex" } else { "" }
                ))
            })?;
        bits_addr(a.is_ipv6(), (addr_bits(a) & !shift_mask) | n)
    };
    if a.is_ipv4() != last.is_ipv4() {
        return Err(bad("start and end are of different families"));
    }
    if addr_bits(last) <= addr_bits(a) {
        return Err(bad("the end must be greater than the start"));
    }
    Ok((a, last))
}

fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

fn bits_addr(v6: bool, b: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(b.into())
    } else {
        IpAddr::V4(Ipv4Addr::from(b as u32))
    }
}

/// Renders a group member in the syntax `parse_vsg_member` reads.
pub(crate) fn format_vsg_member(m: &VsgMember) -> String {
    match m {
        VsgMember::Fwmark { mark, family } => match family {
            None => format!("fwmark {mark}"),
            Some(IpFamily::Inet) => format!("fwmark {mark} inet"),
            Some(IpFamily::Inet6) => format!("fwmark {mark} inet6"),
        },
        VsgMember::Range { first, last, port } => {
            let a = if first == last {
                first.to_string()
            } else {
                format!("{first}-{last}")
            };
            if *port == 0 {
                a
            } else {
                format!("{a} {port}")
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)] // a failed expectation is the test failing
mod tests {
    use super::*;

    #[test]
    fn decimal_secs() {
        assert_eq!(parse_decimal_secs("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse_decimal_secs("0.25"), Some(Duration::from_millis(250)));
        assert_eq!(parse_decimal_secs(".5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_decimal_secs("1.0000001"), None);
        assert_eq!(parse_decimal_secs("x"), None);
        assert_eq!(parse_decimal_secs(""), None);
        assert_eq!(parse_decimal_secs("."), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1.2.3s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
        for d in [
            Duration::from_millis(1500),
            Duration::from_secs(3),
            Duration::from_micros(7),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }

    #[test]
    fn vip_forms() {
        let w = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        let span = Span::default();
        let (v, _) = parse_vip_words(
            &w("192.168.1.220/24 brd + dev eth0 scope link label eth0:1"),
            &span,
        )
        .expect("valid vip");
        assert_eq!(v.prefix, 24);
        assert_eq!(v.brd, Some("192.168.1.255".parse().expect("ip")));
        assert_eq!(v.scope, Some(Scope::Link));
        assert_eq!(
            format_vip(&v),
            "192.168.1.220/24 dev eth0 brd 192.168.1.255 scope link label eth0:1"
        );
        assert!(parse_vip_words(&w("192.168.1.300"), &span).is_err());
        assert!(parse_vip_words(&w("10.0.0.1 dev"), &span).is_err());
        assert!(parse_vip_words(&w("fe80::1/64 brd +"), &span).is_err());
        let (v6, _) = parse_vip_words(&w("2001:db8::1"), &span).expect("v6");
        assert_eq!(v6.prefix, 128);
    }
}
