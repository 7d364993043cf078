//! VRRP advertisement codec: v2 (RFC 3768) and v3 (RFC 5798, RFC 9568) over
//! IPv4 and IPv6, checksums, and v2 authentication (see [`crate::auth`]).
//!
//! Receiving is two stages. [`parse_ipv4`] / [`parse_ipv6`] run per socket:
//! everything that can be checked without knowing the instance, ending with
//! the VRID so the caller can find it. [`validate`] then runs the checks of
//! RFC 3768 §7.1 / RFC 5798 §7.1 that need the instance's configuration.
//! Every failure is a [`DecodeError`] naming one [`DropReason`]; the caller
//! logs and counts it and carries on. No input makes this module panic.
//!
//! Sending: [`encode_ipv4`] builds the whole IPv4 packet (the socket uses
//! `IP_HDRINCL`), [`encode_ipv6`] only the VRRP message.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::auth::{self, AhReplayState, AuthKey, AH_LEN, AH_PAYLOAD_LEN, ICV_LEN};
use crate::{Advert, Version};

/// IP protocol number of VRRP (RFC 3768 §5.2.4, RFC 5798 §5.1.1.3).
pub const IPPROTO_VRRP: u8 = 112;
/// IP protocol number of the IPsec Authentication Header.
pub const IPPROTO_AH: u8 = 51;
/// TTL / hop limit that must be sent and received (RFC 5798 §5.1.1.3).
pub const VRRP_TTL: u8 = 255;
/// IPv4 group (RFC 3768 §5.2.2, RFC 5798 §5.1.1.2).
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 group (RFC 5798 §5.1.2.2).
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// Fixed VRRP header: ver/type, VRID, priority, count, 2 bytes
/// (v2 auth type + interval, v3 rsvd + interval), checksum.
const HDR_LEN: usize = 8;
/// v2 trailing authentication data (RFC 3768 §5.3.10).
const V2_AUTH_LEN: usize = 8;
/// IPv4 header without options; what we send.
const IPV4_HDR_LEN: usize = 20;
const TYPE_ADVERT: u8 = 1;
/// v3 Max Adver Int is 12 bits (RFC 5798 §5.2.7).
const V3_MAX_INTERVAL_CS: u16 = 0x0fff;
/// The Count field is one byte.
const MAX_ADDRS: usize = 255;

/// Why a received advertisement was dropped: one variant per receive check
/// of RFC 3768 §7.1 / RFC 5798 §7.1, plus what the IP and AH layers add.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than its headers, its IP total length or its Count implies.
    Truncated,
    /// Longer than its Count implies (RFC 5798 §7.1: the packet must be
    /// exactly the VRRP message).
    Length,
    /// Not a usable IPv4 header: version, IHL, total length, a fragment.
    IpHeader,
    /// IP protocol is neither 112 nor 51.
    Protocol,
    /// TTL / hop limit is not 255 (RFC 3768 §7.1, RFC 5798 §7.1).
    Ttl,
    /// Unknown VRRP version, v2 over IPv6, or not the instance's version.
    Version,
    /// Type is not 1 (ADVERTISEMENT).
    Type,
    /// VRRP checksum does not verify.
    Checksum,
    /// No instance is configured for the VRID (raised by the caller).
    UnknownVrid,
    /// Count differs from the configured number of addresses.
    AddrCount,
    /// The addresses differ from the configured ones (only when asked).
    AddrList,
    /// v2 Adver Int differs from ours (RFC 3768 §7.1: MUST drop).
    Interval,
    /// Auth type unknown, inconsistent with the IP protocol, or not ours.
    AuthType,
    /// Simple password does not match.
    AuthPassword,
    /// AH ICV (HMAC-MD5-96) does not verify.
    AhIcv,
    /// AH sequence number not above the last one accepted.
    AhReplay,
    /// AH header malformed: next header, length, or SPI not the source.
    AhHeader,
    /// Sent by us (source is our own address).
    OwnAdvert,
}

impl DropReason {
    /// Every reason, e.g. to register one metric each up front.
    pub const ALL: [DropReason; 18] = [
        DropReason::Truncated,
        DropReason::Length,
        DropReason::IpHeader,
        DropReason::Protocol,
        DropReason::Ttl,
        DropReason::Version,
        DropReason::Type,
        DropReason::Checksum,
        DropReason::UnknownVrid,
        DropReason::AddrCount,
        DropReason::AddrList,
        DropReason::Interval,
        DropReason::AuthType,
        DropReason::AuthPassword,
        DropReason::AhIcv,
        DropReason::AhReplay,
        DropReason::AhHeader,
        DropReason::OwnAdvert,
    ];

    /// Stable snake_case label, used as a metric name: do not rename.
    pub fn as_str(&self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::Length => "length",
            DropReason::IpHeader => "ip_header",
            DropReason::Protocol => "protocol",
            DropReason::Ttl => "ttl",
            DropReason::Version => "version",
            DropReason::Type => "type",
            DropReason::Checksum => "checksum",
            DropReason::UnknownVrid => "unknown_vrid",
            DropReason::AddrCount => "addr_count",
            DropReason::AddrList => "addr_list",
            DropReason::Interval => "interval",
            DropReason::AuthType => "auth_type",
            DropReason::AuthPassword => "auth_password",
            DropReason::AhIcv => "ah_icv",
            DropReason::AhReplay => "ah_replay",
            DropReason::AhHeader => "ah_header",
            DropReason::OwnAdvert => "own_advert",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A dropped advertisement: the reason, the VRID once it was readable, and
/// a human-readable detail for the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("advert dropped{}: {reason}: {detail}", vrid_label(.vrid))]
pub struct DecodeError {
    pub vrid: Option<u8>,
    pub reason: DropReason,
    pub detail: String,
}

fn vrid_label(vrid: &Option<u8>) -> String {
    match vrid {
        Some(v) => format!(" (vrid {v})"),
        None => String::new(),
    }
}

impl DecodeError {
    pub fn new(vrid: Option<u8>, reason: DropReason, detail: impl Into<String>) -> Self {
        DecodeError {
            vrid,
            reason,
            detail: detail.into(),
        }
    }

    /// For the caller when no instance has the parsed VRID.
    pub fn unknown_vrid(vrid: u8) -> Self {
        Self::new(Some(vrid), DropReason::UnknownVrid, "no instance for vrid")
    }
}

/// Per-socket receive options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxOpts {
    /// v3 over IPv4: checksum without the pseudo-header, like v2 (keepalived
    /// ≥ 2.2.8 `v3_checksum_as_v2`; some vendors). Default: with it.
    pub v3_checksum_as_v2: bool,
    /// Require TTL / hop limit 255. keepalived skips this for unicast peers.
    pub check_ttl: bool,
    /// v3 unicast over IPv4: also accept keepalived's pre-1.3.6 checksum,
    /// whose pseudo-header carries this multicast group instead of the
    /// unicast destination (keepalived `old_unicast_checksum`, which it also
    /// detects on its own unless set to `never`). [`Parsed::old_unicast_checksum`]
    /// says which one matched.
    pub old_unicast_checksum_group: Option<Ipv4Addr>,
}

impl Default for RxOpts {
    fn default() -> Self {
        RxOpts {
            v3_checksum_as_v2: false,
            check_ttl: true,
            old_unicast_checksum_group: None,
        }
    }
}

/// Authentication found in a received v2 advert (v3 has none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RxAuth {
    /// Auth type 0 (the auth data field is ignored).
    None,
    /// Auth type 1: the 8 bytes of auth data.
    Pass([u8; 8]),
    /// Auth type 2 inside an AH header.
    Ah(AhRx),
}

/// The AH header of a received packet and what its ICV covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AhRx {
    pub spi: u32,
    pub seq: u32,
    pub icv: [u8; ICV_LEN],
    /// The IP datagram as the sender hashed it: TOS, fragment field, header
    /// checksum and (for unicast) TTL zeroed, ICV zeroed.
    covered: Vec<u8>,
}

impl AhRx {
    /// Whether the ICV verifies with `key`.
    pub fn verify(&self, key: &[u8; 8]) -> bool {
        auth::ct_eq(&auth::icv(key, &[&self.covered]), &self.icv)
    }
}

/// Result of stage 1: a well-formed advert with a good checksum, not yet
/// checked against any instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Received TTL / hop limit.
    pub ttl: u8,
    pub advert: Advert,
    pub auth: RxAuth,
    /// The checksum verified only in keepalived's old unicast form (see
    /// [`RxOpts::old_unicast_checksum_group`]).
    pub old_unicast_checksum: bool,
}

/// What stage 2 checks a parsed advert against: one instance's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceRx {
    pub version: Version,
    /// Our advert interval; v2 adverts must carry the same (in seconds).
    pub interval_cs: u16,
    /// v2 only; ignored for v3 (RFC 5798 removed authentication).
    pub auth: Option<AuthKey>,
    /// When set, the advert must carry exactly these addresses (any order).
    /// RFC 3768 §7.1 "MAY verify"; keepalived does by default.
    pub check_addrs: Option<Vec<IpAddr>>,
    /// Our own source address: adverts from it are ours, looped back.
    pub own_addr: Option<IpAddr>,
}

/// Send options for [`encode_ipv4`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxOpts {
    /// v2 only; ignored for v3.
    pub auth: Option<AuthKey>,
    /// v3: checksum without the pseudo-header (see [`RxOpts`]).
    pub v3_checksum_as_v2: bool,
    /// AH sequence number, from [`AhReplayState::next_tx_seq`].
    pub ah_seq: u32,
    /// IP identification. With `IP_HDRINCL` the kernel fills in 0 itself,
    /// after the AH ICV was computed, so for AH 0 is sent as 1.
    pub ip_id: u16,
    /// 255 except for unicast peers configured otherwise.
    pub ttl: u8,
    /// v3: put this address in the pseudo-header instead of the real
    /// destination (keepalived `old_unicast_checksum`: the multicast group).
    pub checksum_dst: Option<Ipv4Addr>,
}

impl Default for TxOpts {
    fn default() -> Self {
        TxOpts {
            auth: None,
            v3_checksum_as_v2: false,
            ah_seq: 0,
            ip_id: 0,
            ttl: VRRP_TTL,
            checksum_dst: None,
        }
    }
}

// ---------------------------------------------------------------- receive

fn err(vrid: Option<u8>, reason: DropReason, detail: impl Into<String>) -> DecodeError {
    DecodeError::new(vrid, reason, detail)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(s))
}

/// Stage 1 for IPv4: `pkt` is what a raw socket returns, IP header included.
///
/// Checks the IP header (the kernel already verified its checksum), the
/// protocol (112, or 51 with AH wrapping 112), TTL 255, VRRP version, type
/// and exact length, and the checksum: v2 over the VRRP message (RFC 3768
/// §5.3.8), v3 with the IPv4 pseudo-header (RFC 5798 §5.2.8) unless
/// `opts.v3_checksum_as_v2`.
pub fn parse_ipv4(pkt: &[u8], opts: &RxOpts) -> Result<Parsed, DecodeError> {
    let hdr: &[u8; IPV4_HDR_LEN] = pkt
        .get(..IPV4_HDR_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| err(None, DropReason::Truncated, "shorter than an IPv4 header"))?;
    if hdr[0] >> 4 != 4 {
        return Err(err(None, DropReason::IpHeader, "IP version is not 4"));
    }
    let ihl = usize::from(hdr[0] & 0x0f) * 4;
    if ihl < IPV4_HDR_LEN {
        return Err(err(None, DropReason::IpHeader, format!("IHL {ihl} bytes")));
    }
    let tot_len = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
    if tot_len < ihl {
        return Err(err(
            None,
            DropReason::IpHeader,
            format!("total length {tot_len} < IHL {ihl}"),
        ));
    }
    // Raw sockets deliver exactly one datagram; bytes past the total length
    // are not part of it.
    let pkt = pkt.get(..tot_len).ok_or_else(|| {
        err(
            None,
            DropReason::Truncated,
            format!("{} bytes, IP total length {tot_len}", pkt.len()),
        )
    })?;
    // The kernel reassembles before raw delivery; a fragment here is bogus.
    if u16::from_be_bytes([hdr[6], hdr[7]]) & 0x3fff != 0 {
        return Err(err(None, DropReason::IpHeader, "fragment"));
    }
    let ttl = hdr[8];
    let proto = hdr[9];
    let src = Ipv4Addr::new(hdr[12], hdr[13], hdr[14], hdr[15]);
    let dst = Ipv4Addr::new(hdr[16], hdr[17], hdr[18], hdr[19]);

    let (vrrp, ah) = match proto {
        IPPROTO_VRRP => (pkt.get(ihl..).unwrap_or_default(), None),
        IPPROTO_AH => {
            let ah = pkt
                .get(ihl..ihl + AH_LEN)
                .ok_or_else(|| err(None, DropReason::Truncated, "shorter than its AH header"))?;
            (pkt.get(ihl + AH_LEN..).unwrap_or_default(), Some(ah))
        }
        p => return Err(err(None, DropReason::Protocol, format!("IP protocol {p}"))),
    };
    let vrid = vrrp.get(1).copied();
    if let Some(ah) = ah {
        // keepalived's layout (see crate::auth): next header 112, length 4.
        if ah.first() != Some(&IPPROTO_VRRP) {
            return Err(err(
                vrid,
                DropReason::AhHeader,
                "AH next header is not VRRP",
            ));
        }
        if ah.get(1) != Some(&AH_PAYLOAD_LEN) {
            return Err(err(
                vrid,
                DropReason::AhHeader,
                "AH payload length is not 4",
            ));
        }
    }
    if opts.check_ttl && ttl != VRRP_TTL {
        return Err(err(vrid, DropReason::Ttl, format!("TTL {ttl}")));
    }

    let h = parse_header(vrrp, false)?;
    let mut old_unicast_checksum = false;
    let checksum_ok = match h.version {
        Version::V3 if !opts.v3_checksum_as_v2 => {
            let pseudo = pseudo_v4(src, dst, h.msg_len);
            let with = |d| checksum(&[&pseudo_v4(src, d, h.msg_len), vrrp]) == 0;
            if checksum(&[&pseudo, vrrp]) == 0 {
                true
            } else {
                match opts.old_unicast_checksum_group {
                    Some(g) if g != dst && with(g) => {
                        old_unicast_checksum = true;
                        true
                    }
                    _ => false,
                }
            }
        }
        _ => checksum(&[vrrp]) == 0,
    };
    if !checksum_ok {
        return Err(err(vrid, DropReason::Checksum, "bad VRRP checksum"));
    }

    let auth = match (h.version, h.auth_type, ah) {
        (Version::V3, _, None) | (Version::V2, 0, None) => RxAuth::None,
        (Version::V2, 1, None) => {
            let data: [u8; 8] = vrrp
                .get(h.msg_len - V2_AUTH_LEN..h.msg_len)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| err(vrid, DropReason::Truncated, "no auth data"))?;
            RxAuth::Pass(data)
        }
        (Version::V2, 2, Some(ah_hdr)) => {
            let spi = be32(ah_hdr, 4).unwrap_or_default();
            let seq = be32(ah_hdr, 8).unwrap_or_default();
            let icv: [u8; ICV_LEN] = ah_hdr
                .get(12..AH_LEN)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| err(vrid, DropReason::Truncated, "no AH ICV"))?;
            let mut covered = pkt.to_vec();
            // Mutable fields as keepalived zeroes them: TOS, flags+fragment
            // offset, header checksum; TTL only for unicast (it does so only
            // when the instance is unicast, i.e. sends to a unicast address).
            for i in [1, 6, 7, 10, 11] {
                if let Some(b) = covered.get_mut(i) {
                    *b = 0;
                }
            }
            if !dst.is_multicast() {
                if let Some(b) = covered.get_mut(8) {
                    *b = 0;
                }
            }
            if let Some(s) = covered.get_mut(ihl + 12..ihl + AH_LEN) {
                s.fill(0);
            }
            RxAuth::Ah(AhRx {
                spi,
                seq,
                icv,
                covered,
            })
        }
        (Version::V3, _, Some(_)) => {
            return Err(err(vrid, DropReason::AuthType, "AH around VRRPv3"));
        }
        (Version::V2, t, Some(_)) => {
            return Err(err(
                vrid,
                DropReason::AuthType,
                format!("AH header but auth type {t}"),
            ));
        }
        (Version::V2, 2, None) => {
            return Err(err(
                vrid,
                DropReason::AuthType,
                "auth type AH without AH header",
            ));
        }
        (Version::V2, t, None) => {
            return Err(err(
                vrid,
                DropReason::AuthType,
                format!("unknown auth type {t}"),
            ));
        }
    };

    let addrs = vrrp
        .get(HDR_LEN..HDR_LEN + 4 * usize::from(h.count))
        .unwrap_or_default()
        .chunks_exact(4)
        .filter_map(|c| <[u8; 4]>::try_from(c).ok())
        .map(|a| IpAddr::V4(Ipv4Addr::from(a)))
        .collect();
    Ok(Parsed {
        src: src.into(),
        dst: dst.into(),
        ttl,
        advert: h.advert(addrs),
        auth,
        old_unicast_checksum,
    })
}

/// Stage 1 for IPv6 (v3 only). The socket delivers only the VRRP message;
/// `hop_limit` comes from the `IPV6_HOPLIMIT` cmsg, `src`/`dst` from the
/// socket. The checksum is verified with the pseudo-header (RFC 5798
/// §5.2.8) even though the kernel can do it too (`IPV6_CHECKSUM`).
pub fn parse_ipv6(
    payload: &[u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    opts: &RxOpts,
) -> Result<Parsed, DecodeError> {
    let vrid = payload.get(1).copied();
    if opts.check_ttl && hop_limit != VRRP_TTL {
        return Err(err(vrid, DropReason::Ttl, format!("hop limit {hop_limit}")));
    }
    let h = parse_header(payload, true)?;
    let pseudo = pseudo_v6(src, dst, h.msg_len);
    if checksum(&[&pseudo, payload]) != 0 {
        return Err(err(vrid, DropReason::Checksum, "bad VRRP checksum"));
    }
    let addrs = payload
        .get(HDR_LEN..h.msg_len)
        .unwrap_or_default()
        .chunks_exact(16)
        .filter_map(|c| <[u8; 16]>::try_from(c).ok())
        .map(|a| IpAddr::V6(Ipv6Addr::from(a)))
        .collect();
    Ok(Parsed {
        src: src.into(),
        dst: dst.into(),
        ttl: hop_limit,
        advert: h.advert(addrs),
        auth: RxAuth::None,
        old_unicast_checksum: false,
    })
}

/// The fixed VRRP header, read and length-checked.
struct Header {
    version: Version,
    vrid: u8,
    priority: u8,
    count: u8,
    /// v2 only (0 for v3).
    auth_type: u8,
    interval_cs: u16,
    /// Length of the whole VRRP message implied by version and Count.
    msg_len: usize,
}

impl Header {
    fn advert(&self, addrs: Vec<IpAddr>) -> Advert {
        Advert {
            version: self.version,
            vrid: self.vrid,
            priority: self.priority,
            interval_cs: self.interval_cs,
            addrs,
        }
    }
}

fn parse_header(v: &[u8], ipv6: bool) -> Result<Header, DecodeError> {
    let h: &[u8; HDR_LEN] = v
        .get(..HDR_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| {
            err(
                v.get(1).copied(),
                DropReason::Truncated,
                format!("VRRP message of {} bytes", v.len()),
            )
        })?;
    let vrid = Some(h[1]);
    let version = match h[0] >> 4 {
        2 if !ipv6 => Version::V2,
        2 => return Err(err(vrid, DropReason::Version, "VRRPv2 over IPv6")),
        3 => Version::V3,
        n => return Err(err(vrid, DropReason::Version, format!("version {n}"))),
    };
    let ty = h[0] & 0x0f;
    if ty != TYPE_ADVERT {
        return Err(err(vrid, DropReason::Type, format!("type {ty}")));
    }
    let count = h[3];
    let addr_len = if ipv6 { 16 } else { 4 };
    let auth_len = if version == Version::V2 {
        V2_AUTH_LEN
    } else {
        0
    };
    let msg_len = HDR_LEN + usize::from(count) * addr_len + auth_len;
    if v.len() < msg_len {
        return Err(err(
            vrid,
            DropReason::Truncated,
            format!("{} bytes for {count} addresses, need {msg_len}", v.len()),
        ));
    }
    if v.len() > msg_len {
        return Err(err(
            vrid,
            DropReason::Length,
            format!("{} bytes for {count} addresses, expect {msg_len}", v.len()),
        ));
    }
    let (auth_type, interval_cs) = match version {
        // RFC 3768 §5.3.7: whole seconds.
        Version::V2 => (h[4], u16::from(h[5]) * 100),
        // RFC 5798 §5.2.7: 4 reserved bits, 12 bits of centiseconds.
        Version::V3 => (0, u16::from_be_bytes([h[4], h[5]]) & V3_MAX_INTERVAL_CS),
    };
    Ok(Header {
        version,
        vrid: h[1],
        priority: h[2],
        count,
        auth_type,
        interval_cs,
        msg_len,
    })
}

/// Stage 2: checks of RFC 3768 §7.1 / RFC 5798 §7.1 that need the
/// instance. `replay` is the instance's AH state (untouched unless AH).
///
/// Order follows keepalived: version, auth type, password or AH (ICV, SPI,
/// sequence), v2 interval, then addresses.
pub fn validate(
    p: &Parsed,
    inst: &InstanceRx,
    replay: &mut AhReplayState,
) -> Result<(), DecodeError> {
    let vrid = Some(p.advert.vrid);
    if inst.own_addr == Some(p.src) {
        return Err(err(
            vrid,
            DropReason::OwnAdvert,
            format!("from our address {}", p.src),
        ));
    }
    if p.advert.version != inst.version {
        return Err(err(
            vrid,
            DropReason::Version,
            format!(
                "{:?} advert, instance is {:?}",
                p.advert.version, inst.version
            ),
        ));
    }
    if inst.version == Version::V2 {
        match (&inst.auth, &p.auth) {
            (None, RxAuth::None) => {}
            (Some(AuthKey::Pass(want)), RxAuth::Pass(got)) => {
                if !auth::ct_eq(want, got) {
                    return Err(err(vrid, DropReason::AuthPassword, "wrong password"));
                }
            }
            (Some(AuthKey::Ah(key)), RxAuth::Ah(ah)) => {
                if !ah.verify(key) {
                    return Err(err(vrid, DropReason::AhIcv, "ICV does not verify"));
                }
                let IpAddr::V4(src) = p.src else {
                    return Err(err(vrid, DropReason::AhHeader, "AH over IPv6"));
                };
                // keepalived sets SPI to the sender's address and checks it.
                if ah.spi != u32::from(src) {
                    return Err(err(
                        vrid,
                        DropReason::AhHeader,
                        format!("SPI {:#010x} is not the source {src}", ah.spi),
                    ));
                }
                if !replay.check_and_update(src, ah.seq) {
                    return Err(err(
                        vrid,
                        DropReason::AhReplay,
                        format!(
                            "sequence {} not above {}",
                            ah.seq,
                            replay.last_rx(src).unwrap_or(0)
                        ),
                    ));
                }
            }
            (want, got) => {
                return Err(err(
                    vrid,
                    DropReason::AuthType,
                    format!(
                        "auth type {} received, {} configured",
                        rx_auth_type(got),
                        want.map_or(0, |k| k.wire_type())
                    ),
                ));
            }
        }
        // Compare in wire units so that what we send is what we accept.
        let ours = u16::from(v2_interval_secs(inst.interval_cs)) * 100;
        if p.advert.interval_cs != ours {
            return Err(err(
                vrid,
                DropReason::Interval,
                format!("interval {} cs, ours {ours} cs", p.advert.interval_cs),
            ));
        }
    }
    if let Some(want) = &inst.check_addrs {
        if p.advert.addrs.len() != want.len() {
            return Err(err(
                vrid,
                DropReason::AddrCount,
                format!(
                    "{} addresses, configured {}",
                    p.advert.addrs.len(),
                    want.len()
                ),
            ));
        }
        // Same set, in any order (keepalived looks each configured one up).
        let got: HashSet<&IpAddr> = p.advert.addrs.iter().collect();
        let ours: HashSet<&IpAddr> = want.iter().collect();
        if got != ours {
            return Err(err(
                vrid,
                DropReason::AddrList,
                "addresses differ from configured",
            ));
        }
    }
    Ok(())
}

fn rx_auth_type(a: &RxAuth) -> u8 {
    match a {
        RxAuth::None => 0,
        RxAuth::Pass(_) => 1,
        RxAuth::Ah(_) => 2,
    }
}

// ------------------------------------------------------------------- send

/// v2 carries whole seconds (RFC 3768 §5.3.7); sub-second parts are cut.
fn v2_interval_secs(interval_cs: u16) -> u8 {
    u8::try_from(interval_cs / 100).unwrap_or(u8::MAX)
}

/// The VRRP message without checksum. Only addresses of the packet's family
/// are carried, at most 255 (the Count field is one byte).
fn build_vrrp(advert: &Advert, version: Version, ipv6: bool, auth: Option<&AuthKey>) -> Vec<u8> {
    let addrs: Vec<IpAddr> = advert
        .addrs
        .iter()
        .filter(|a| a.is_ipv6() == ipv6)
        .take(MAX_ADDRS)
        .copied()
        .collect();
    let count = u8::try_from(addrs.len()).unwrap_or(u8::MAX);
    let mut v = Vec::with_capacity(HDR_LEN + addrs.len() * 16 + V2_AUTH_LEN);
    match version {
        Version::V2 => v.extend_from_slice(&[
            0x20 | TYPE_ADVERT,
            advert.vrid,
            advert.priority,
            count,
            auth.map_or(0, |k| k.wire_type()),
            v2_interval_secs(advert.interval_cs),
        ]),
        Version::V3 => {
            let int = advert.interval_cs.min(V3_MAX_INTERVAL_CS).to_be_bytes();
            v.extend_from_slice(&[
                0x30 | TYPE_ADVERT,
                advert.vrid,
                advert.priority,
                count,
                int[0],
                int[1],
            ]);
        }
    }
    v.extend_from_slice(&[0, 0]);
    for a in &addrs {
        match a {
            IpAddr::V4(a) => v.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => v.extend_from_slice(&a.octets()),
        }
    }
    if version == Version::V2 {
        // PASS: the password in clear. AH: keepalived still sends the field,
        // zeroed (RFC 3768 §5.3.10).
        match auth {
            Some(AuthKey::Pass(pw)) => v.extend_from_slice(pw),
            _ => v.extend_from_slice(&[0; V2_AUTH_LEN]),
        }
    }
    v
}

/// Stores a VRRP checksum (bytes 6..8 of the message).
fn put_checksum(vrrp: &mut [u8], sum: u16) {
    if let Some(s) = vrrp.get_mut(6..8) {
        s.copy_from_slice(&sum.to_be_bytes());
    }
}

/// A full IPv4 packet for a raw `IP_HDRINCL` socket: TOS 0xc0 (network
/// control, as keepalived), DF off, TTL `tx.ttl`, protocol 112, or 51 with
/// keepalived's AH header in front of the VRRP message when `tx.auth` is AH.
/// The IP header checksum is filled in (the kernel would rewrite it anyway).
pub fn encode_ipv4(src: Ipv4Addr, dst: Ipv4Addr, advert: &Advert, tx: &TxOpts) -> Vec<u8> {
    let version = advert.version;
    let auth = match version {
        Version::V2 => tx.auth.as_ref(),
        Version::V3 => None,
    };
    let mut vrrp = build_vrrp(advert, version, false, auth);
    let vrrp_len = vrrp.len();
    let sum = match version {
        Version::V3 if !tx.v3_checksum_as_v2 => {
            let d = tx.checksum_dst.unwrap_or(dst);
            checksum(&[&pseudo_v4(src, d, vrrp_len), &vrrp])
        }
        _ => checksum(&[&vrrp]),
    };
    put_checksum(&mut vrrp, sum);

    let ah_key = match auth {
        Some(AuthKey::Ah(k)) => Some(k),
        _ => None,
    };
    let ah_len = if ah_key.is_some() { AH_LEN } else { 0 };
    let total = u16::try_from(IPV4_HDR_LEN + ah_len + vrrp_len).unwrap_or(u16::MAX);
    let id = if ah_key.is_some() && tx.ip_id == 0 {
        1
    } else {
        tx.ip_id
    };
    let mut ip = [0u8; IPV4_HDR_LEN];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[4..6].copy_from_slice(&id.to_be_bytes());
    ip[8] = tx.ttl;
    ip[9] = if ah_key.is_some() {
        IPPROTO_AH
    } else {
        IPPROTO_VRRP
    };
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());

    let mut out = Vec::with_capacity(usize::from(total));
    let mut ah = [0u8; AH_LEN];
    if let Some(key) = ah_key {
        ah[0] = IPPROTO_VRRP;
        ah[1] = AH_PAYLOAD_LEN;
        ah[4..8].copy_from_slice(&src.octets());
        ah[8..12].copy_from_slice(&tx.ah_seq.to_be_bytes());
        // The ICV covers the IP header with TOS (still 0 here), fragment
        // field and checksum zeroed; TTL too for unicast (see crate::auth).
        let mut covered_ip = ip;
        if !dst.is_multicast() {
            covered_ip[8] = 0;
        }
        let icv = auth::icv(key, &[&covered_ip, &ah, &vrrp]);
        ah[12..].copy_from_slice(&icv);
    }
    ip[1] = 0xc0;
    let csum = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    out.extend_from_slice(&ip);
    if ah_key.is_some() {
        out.extend_from_slice(&ah);
    }
    out.extend_from_slice(&vrrp);
    out
}

/// The VRRPv3 message for IPv6 (RFC 5798 §5.1.2), checksum computed with
/// the pseudo-header from `src` (the link-local address the socket is bound
/// to) and `dst`. IPv6 has only v3, so `advert.version` is not consulted.
pub fn encode_ipv6(src: Ipv6Addr, dst: Ipv6Addr, advert: &Advert) -> Vec<u8> {
    let mut vrrp = build_vrrp(advert, Version::V3, true, None);
    let pseudo = pseudo_v6(src, dst, vrrp.len());
    let sum = checksum(&[&pseudo, &vrrp]);
    put_checksum(&mut vrrp, sum);
    vrrp
}

// -------------------------------------------------------------- checksums

/// Internet checksum (RFC 1071) over the concatenation of `parts`: the value
/// to store in a zeroed checksum field, or 0 when verifying a message whose
/// checksum field is filled in and correct. Public as the one copy in the
/// workspace: sys (ICMPv6 NA) and plugin (ICMP echo) call it too.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut hi: Option<u8> = None;
    for b in parts.iter().flat_map(|p| p.iter()) {
        match hi.take() {
            None => hi = Some(*b),
            Some(h) => sum += u32::from(u16::from_be_bytes([h, *b])),
        }
        // Fold early so the sum never overflows, whatever the length.
        if sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
    }
    if let Some(h) = hi {
        sum += u32::from(u16::from_be_bytes([h, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// IPv4 pseudo-header (RFC 768 layout, as RFC 5798 §5.2.8 / keepalived use).
fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> [u8; 12] {
    let mut p = [0u8; 12];
    p[..4].copy_from_slice(&src.octets());
    p[4..8].copy_from_slice(&dst.octets());
    p[9] = IPPROTO_VRRP;
    p[10..].copy_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    p
}

/// IPv6 pseudo-header (RFC 8200 §8.1).
fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, len: usize) -> [u8; 40] {
    let mut p = [0u8; 40];
    p[..16].copy_from_slice(&src.octets());
    p[16..32].copy_from_slice(&dst.octets());
    p[32..36].copy_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    p[39] = IPPROTO_VRRP;
    p
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
        s.chunks(2)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
            .collect()
    }

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse().unwrap())
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse().unwrap())
    }

    const SRC4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
    const LL6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x0a);

    fn inst(version: Version, interval_cs: u16, auth: Option<AuthKey>) -> InstanceRx {
        InstanceRx {
            version,
            interval_cs,
            auth,
            check_addrs: None,
            own_addr: None,
        }
    }

    fn rx() -> RxOpts {
        RxOpts::default()
    }

    fn reason<T: fmt::Debug>(r: Result<T, DecodeError>) -> DropReason {
        r.unwrap_err().reason
    }

    // Real captures. Lab: two network namespaces joined by a veth pair,
    // keepalived 2.2.7 (Debian) `-n -l -D --vrrp` in one, `tcpdump -w` in the
    // other; sender 10.99.0.1 / fe80::ff:fe00:a (MAC 02:00:00:00:00:0a).
    // Ethernet header stripped. Every config has `state MASTER`,
    // `interface lbdc0` and `virtual_ipaddress { A B }` with the addresses
    // shown, plus what each comment says.

    /// vrrp_version 2 (default); virtual_router_id 51, priority 150,
    /// advert_int 1, authentication { auth_type PASS auth_pass secret12 },
    /// VIPs 10.99.0.100 10.99.0.101. First advert (IP id 1).
    const KA_V2_PASS: &str = "45c0002c00010000ff70d02a0a630001e0000012
        213396020101c4bb0a6300640a630065 7365637265743132";
    /// As KA_V2_PASS but virtual_router_id 52, auth_type AH, auth_pass ahkey.
    /// First and second adverts (IP id and AH sequence 1 and 2).
    const KA_V2_AH_1: &str = "45c0004400010000ff33d04f0a630001e0000012
        700400000a630001000000012b8ea736372b90cd7000e5ec
        21349602020131390a6300640a630065 0000000000000000";
    const KA_V2_AH_2: &str = "45c0004400020000ff33d04e0a630001e0000012
        700400000a63000100000002456e68cf6351b3b5f58fb238
        21349602020131390a6300640a630065 0000000000000000";
    /// global_defs { vrrp_version 3 }; virtual_router_id 53, priority 120,
    /// advert_int 0.5, VIPs 10.99.0.100 10.99.0.101. Checksum 0x5610 uses
    /// the pseudo-header (tshark: "correct").
    const KA_V3_V4: &str = "45c0002400010000ff70d0320a630001e0000012
        3135780200325610 0a6300640a630065";
    /// global_defs { vrrp_version 3 }; virtual_router_id 54, priority 110,
    /// advert_int 1, VIPs fd00:99::100 fd00:99::101; fe80::ff:fe00:a to
    /// ff02::12, hop limit 255. VRRP payload only (the IPv6 header is gone).
    const KA_V3_V6: &str = "31366e02006465f6
        fd000099000000000000000000000100 fd000099000000000000000000000101";
    /// Not a capture: keepalived 2.2.7 has no `v3_checksum_as_v2` (added in
    /// 2.2.8). KA_V3_V4 with the checksum over the VRRP message only, 0x4107,
    /// computed independently (Python, RFC 1071).
    const V3_V4_AS_V2: &str = "45c0002400010000ff70d0320a630001e0000012
        3135780200324107 0a6300640a630065";

    fn advert(
        version: Version,
        vrid: u8,
        priority: u8,
        interval_cs: u16,
        addrs: Vec<IpAddr>,
    ) -> Advert {
        Advert {
            version,
            vrid,
            priority,
            interval_cs,
            addrs,
        }
    }

    fn ka_v4_addrs() -> Vec<IpAddr> {
        vec![v4("10.99.0.100"), v4("10.99.0.101")]
    }

    fn ka_v6_addrs() -> Vec<IpAddr> {
        vec![v6("fd00:99::100"), v6("fd00:99::101")]
    }

    /// Recompute the VRRP checksum of an IPv4 packet after editing it.
    fn refix(pkt: &mut [u8], as_v2: bool) {
        let ihl = usize::from(pkt[0] & 0x0f) * 4;
        let off = if pkt[9] == IPPROTO_AH {
            ihl + AH_LEN
        } else {
            ihl
        };
        let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
        let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
        let v = &mut pkt[off..];
        v[6] = 0;
        v[7] = 0;
        let sum = if v[0] >> 4 == 3 && !as_v2 {
            checksum(&[&pseudo_v4(src, dst, v.len()), v])
        } else {
            checksum(&[v])
        };
        put_checksum(v, sum);
    }

    // ------------------------------------------------- keepalived vectors

    #[test]
    fn keepalived_v2_pass() {
        let pkt = hex(KA_V2_PASS);
        let p = parse_ipv4(&pkt, &rx()).unwrap();
        assert_eq!(p.src, v4("10.99.0.1"));
        assert_eq!(p.dst, IpAddr::V4(MCAST_V4));
        assert_eq!(p.ttl, 255);
        assert_eq!(p.advert, advert(Version::V2, 51, 150, 100, ka_v4_addrs()));
        assert_eq!(p.auth, RxAuth::Pass(*b"secret12"));
        let key = AuthKey::pass(b"secret12");
        validate(
            &p,
            &inst(Version::V2, 100, Some(key)),
            &mut AhReplayState::new(),
        )
        .unwrap();
        let tx = TxOpts {
            auth: Some(key),
            ip_id: 1,
            ..TxOpts::default()
        };
        assert_eq!(encode_ipv4(SRC4, MCAST_V4, &p.advert, &tx), pkt);
    }

    #[test]
    fn keepalived_v2_ah() {
        let key = AuthKey::ah(b"ahkey");
        let AuthKey::Ah(raw) = key else {
            unreachable!()
        };
        let i = inst(Version::V2, 100, Some(key));
        let mut st = AhReplayState::new();
        for (n, vec) in [(1u16, KA_V2_AH_1), (2, KA_V2_AH_2)] {
            let pkt = hex(vec);
            let p = parse_ipv4(&pkt, &rx()).unwrap();
            assert_eq!(p.advert, advert(Version::V2, 52, 150, 100, ka_v4_addrs()));
            let RxAuth::Ah(ah) = &p.auth else {
                panic!("{:?}", p.auth)
            };
            // SPI is the source address, sequence starts at 1.
            assert_eq!(ah.spi, u32::from(SRC4));
            assert_eq!(ah.seq, u32::from(n));
            assert!(ah.verify(&raw));
            assert!(!ah.verify(b"ahkez\0\0\0"));
            validate(&p, &i, &mut st).unwrap();
            let tx = TxOpts {
                auth: Some(key),
                ah_seq: u32::from(n),
                ip_id: n,
                ..TxOpts::default()
            };
            assert_eq!(encode_ipv4(SRC4, MCAST_V4, &p.advert, &tx), pkt);
        }
        // Replaying the first one now fails.
        let p = parse_ipv4(&hex(KA_V2_AH_1), &rx()).unwrap();
        assert_eq!(reason(validate(&p, &i, &mut st)), DropReason::AhReplay);
        // Our next advert goes past what keepalived sent.
        assert_eq!(st.next_tx_seq(), 3);
    }

    #[test]
    fn keepalived_v3_ipv4() {
        let pkt = hex(KA_V3_V4);
        let p = parse_ipv4(&pkt, &rx()).unwrap();
        assert_eq!(p.advert, advert(Version::V3, 53, 120, 50, ka_v4_addrs()));
        assert_eq!(p.auth, RxAuth::None);
        validate(&p, &inst(Version::V3, 100, None), &mut AhReplayState::new()).unwrap();
        let tx = TxOpts {
            ip_id: 1,
            ..TxOpts::default()
        };
        assert_eq!(encode_ipv4(SRC4, MCAST_V4, &p.advert, &tx), pkt);
        // Without the pseudo-header the same bytes do not verify.
        let as_v2 = RxOpts {
            v3_checksum_as_v2: true,
            ..rx()
        };
        assert_eq!(reason(parse_ipv4(&pkt, &as_v2)), DropReason::Checksum);
    }

    #[test]
    fn v3_ipv4_checksum_as_v2() {
        let pkt = hex(V3_V4_AS_V2);
        let opts = RxOpts {
            v3_checksum_as_v2: true,
            ..rx()
        };
        let p = parse_ipv4(&pkt, &opts).unwrap();
        assert_eq!(p.advert, advert(Version::V3, 53, 120, 50, ka_v4_addrs()));
        assert_eq!(reason(parse_ipv4(&pkt, &rx())), DropReason::Checksum);
        let tx = TxOpts {
            ip_id: 1,
            v3_checksum_as_v2: true,
            ..TxOpts::default()
        };
        assert_eq!(encode_ipv4(SRC4, MCAST_V4, &p.advert, &tx), pkt);
    }

    #[test]
    fn keepalived_v3_ipv6() {
        let pl = hex(KA_V3_V6);
        let p = parse_ipv6(&pl, LL6, MCAST_V6, 255, &rx()).unwrap();
        assert_eq!(p.src, IpAddr::V6(LL6));
        assert_eq!(p.advert, advert(Version::V3, 54, 110, 100, ka_v6_addrs()));
        validate(&p, &inst(Version::V3, 100, None), &mut AhReplayState::new()).unwrap();
        assert_eq!(encode_ipv6(LL6, MCAST_V6, &p.advert), pl);
        // The pseudo-header binds the source: another one fails.
        let other = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
        assert_eq!(
            reason(parse_ipv6(&pl, other, MCAST_V6, 255, &rx())),
            DropReason::Checksum
        );
    }

    // -------------------------------------------------------- round trips

    #[test]
    fn round_trip_every_combination() {
        let dsts = [MCAST_V4, Ipv4Addr::new(10, 99, 0, 2)];
        let v4s = vec![v4("192.0.2.1"), v4("192.0.2.2"), v4("198.51.100.7")];
        let auths = [None, Some(AuthKey::pass(b"pw")), Some(AuthKey::ah(b"k3y"))];
        for dst in dsts {
            for auth in auths {
                let a = advert(Version::V2, 7, 200, 300, v4s.clone());
                let tx = TxOpts {
                    auth,
                    ah_seq: 9,
                    ip_id: 0,
                    ..TxOpts::default()
                };
                let pkt = encode_ipv4(SRC4, dst, &a, &tx);
                let p = parse_ipv4(&pkt, &rx()).unwrap();
                assert_eq!(p.advert, a, "{auth:?} {dst}");
                assert_eq!(p.dst, IpAddr::V4(dst));
                let mut i = inst(Version::V2, 300, auth);
                i.check_addrs = Some(v4s.iter().rev().copied().collect());
                validate(&p, &i, &mut AhReplayState::new()).unwrap();
                // IP header checksum is right too.
                assert_eq!(checksum(&[&pkt[..20]]), 0);
                assert_eq!(pkt[1], 0xc0);
                assert_eq!(pkt[6] & 0x40, 0, "DF off");
            }
            for as_v2 in [false, true] {
                let a = advert(Version::V3, 250, 1, 4095, v4s.clone());
                let tx = TxOpts {
                    v3_checksum_as_v2: as_v2,
                    ..TxOpts::default()
                };
                let pkt = encode_ipv4(SRC4, dst, &a, &tx);
                let opts = RxOpts {
                    v3_checksum_as_v2: as_v2,
                    ..rx()
                };
                let p = parse_ipv4(&pkt, &opts).unwrap();
                assert_eq!(p.advert, a);
                validate(&p, &inst(Version::V3, 100, None), &mut AhReplayState::new()).unwrap();
            }
        }
        let a = advert(
            Version::V3,
            1,
            100,
            25,
            vec![v6("2001:db8::1"), v6("2001:db8::2")],
        );
        for dst in [MCAST_V6, Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2)] {
            let pl = encode_ipv6(LL6, dst, &a);
            let p = parse_ipv6(&pl, LL6, dst, 255, &rx()).unwrap();
            assert_eq!(p.advert, a);
        }
    }

    #[test]
    fn encode_edge_cases() {
        // No addresses (keepalived allows an instance without VIPs).
        let a = advert(Version::V3, 1, 100, 100, vec![]);
        let pkt = encode_ipv4(SRC4, MCAST_V4, &a, &TxOpts::default());
        assert_eq!(parse_ipv4(&pkt, &rx()).unwrap().advert, a);
        // Addresses of the other family are left out; count capped at 255.
        let mut addrs: Vec<IpAddr> = (0..300u32).map(|n| IpAddr::V4(Ipv4Addr::from(n))).collect();
        addrs.push(v6("2001:db8::1"));
        let a = advert(Version::V3, 1, 100, 100, addrs);
        let p = parse_ipv4(&encode_ipv4(SRC4, MCAST_V4, &a, &TxOpts::default()), &rx()).unwrap();
        assert_eq!(p.advert.addrs.len(), 255);
        let pl = encode_ipv6(LL6, MCAST_V6, &a);
        assert_eq!(
            parse_ipv6(&pl, LL6, MCAST_V6, 255, &rx())
                .unwrap()
                .advert
                .addrs,
            vec![v6("2001:db8::1")]
        );
        // Intervals: v3 clamps to 12 bits, v2 cuts to whole seconds.
        let a = advert(Version::V3, 1, 100, 5000, vec![]);
        let p = parse_ipv4(&encode_ipv4(SRC4, MCAST_V4, &a, &TxOpts::default()), &rx()).unwrap();
        assert_eq!(p.advert.interval_cs, 4095);
        let a = advert(Version::V2, 1, 100, 250, vec![]);
        let p = parse_ipv4(&encode_ipv4(SRC4, MCAST_V4, &a, &TxOpts::default()), &rx()).unwrap();
        assert_eq!(p.advert.interval_cs, 200);
        validate(&p, &inst(Version::V2, 250, None), &mut AhReplayState::new()).unwrap();
        // v3 never carries auth, even if asked.
        let a = advert(Version::V3, 1, 100, 100, vec![]);
        let tx = TxOpts {
            auth: Some(AuthKey::ah(b"x")),
            ..TxOpts::default()
        };
        let pkt = encode_ipv4(SRC4, MCAST_V4, &a, &tx);
        assert_eq!(pkt[9], IPPROTO_VRRP);
        // AH with IP id 0 is sent as 1 (the kernel would change 0 after the
        // ICV was computed).
        let a = advert(Version::V2, 1, 100, 100, vec![]);
        let pkt = encode_ipv4(SRC4, MCAST_V4, &a, &TxOpts::default());
        assert_eq!(&pkt[4..6], &[0, 0]);
        let tx = TxOpts {
            auth: Some(AuthKey::ah(b"x")),
            ..TxOpts::default()
        };
        let pkt = encode_ipv4(SRC4, MCAST_V4, &a, &tx);
        assert_eq!(&pkt[4..6], &[0, 1]);
    }

    #[test]
    fn ttl_check_can_be_off_for_unicast() {
        let mut pkt = hex(KA_V3_V4);
        pkt[8] = 64;
        let opts = RxOpts {
            check_ttl: false,
            ..rx()
        };
        assert_eq!(parse_ipv4(&pkt, &opts).unwrap().ttl, 64);
        let pl = hex(KA_V3_V6);
        assert!(parse_ipv6(&pl, LL6, MCAST_V6, 1, &opts).is_ok());
    }

    #[test]
    fn ip_options_and_trailing_bytes() {
        // IHL 6 (one 4-byte option, NOPs); bytes past total length ignored.
        let base = hex(KA_V3_V4);
        let mut pkt = base[..20].to_vec();
        pkt[0] = 0x46;
        pkt[3] += 4;
        pkt.extend_from_slice(&[1, 1, 1, 1]);
        pkt.extend_from_slice(&base[20..]);
        pkt.extend_from_slice(&[0xee; 3]);
        let p = parse_ipv4(&pkt, &rx()).unwrap();
        assert_eq!(p.advert.vrid, 53);
    }

    // ------------------------------------------------------- drop reasons

    #[test]
    fn reasons_have_distinct_labels() {
        let labels: HashSet<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), DropReason::ALL.len());
        for r in DropReason::ALL {
            assert!(r
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert_eq!(r.to_string(), r.as_str());
        }
        let e = DecodeError::unknown_vrid(9);
        assert_eq!(e.reason, DropReason::UnknownVrid);
        assert_eq!(e.vrid, Some(9));
        assert_eq!(
            e.to_string(),
            "advert dropped (vrid 9): unknown_vrid: no instance for vrid"
        );
    }

    #[test]
    fn drop_truncated() {
        for vec in [KA_V2_PASS, KA_V2_AH_1, KA_V3_V4] {
            let pkt = hex(vec);
            for n in 0..pkt.len() {
                assert_eq!(
                    reason(parse_ipv4(&pkt[..n], &rx())),
                    DropReason::Truncated,
                    "{n}"
                );
            }
        }
        // Count says more addresses than present (total length adjusted).
        let mut pkt = hex(KA_V3_V4);
        pkt[23] = 3;
        assert_eq!(reason(parse_ipv4(&pkt, &rx())), DropReason::Truncated);
        let pl = hex(KA_V3_V6);
        for n in 0..pl.len() {
            let e = parse_ipv6(&pl[..n], LL6, MCAST_V6, 255, &rx()).unwrap_err();
            assert_eq!(e.reason, DropReason::Truncated);
            assert_eq!(e.vrid, if n >= 2 { Some(54) } else { None });
        }
    }

    #[test]
    fn drop_length() {
        let mut pkt = hex(KA_V3_V4);
        pkt.push(0);
        pkt[3] += 1;
        let e = parse_ipv4(&pkt, &rx()).unwrap_err();
        assert_eq!((e.reason, e.vrid), (DropReason::Length, Some(53)));
        let mut pl = hex(KA_V3_V6);
        pl.extend_from_slice(&[0; 4]);
        assert_eq!(
            reason(parse_ipv6(&pl, LL6, MCAST_V6, 255, &rx())),
            DropReason::Length
        );
    }

    #[test]
    fn drop_ip_header() {
        let base = hex(KA_V3_V4);
        let cases: [(usize, u8); 5] = [(0, 0x65), (0, 0x44), (3, 19), (6, 0x20), (7, 0x01)];
        for (at, val) in cases {
            let mut pkt = base.clone();
            pkt[at] = val;
            assert_eq!(
                reason(parse_ipv4(&pkt, &rx())),
                DropReason::IpHeader,
                "{at} {val}"
            );
        }
        // DF set is fine (only fragments are refused).
        let mut pkt = base.clone();
        pkt[6] = 0x40;
        assert!(parse_ipv4(&pkt, &rx()).is_ok());
    }

    #[test]
    fn drop_protocol() {
        let mut pkt = hex(KA_V3_V4);
        pkt[9] = 17;
        assert_eq!(reason(parse_ipv4(&pkt, &rx())), DropReason::Protocol);
    }

    #[test]
    fn drop_ttl() {
        let mut pkt = hex(KA_V2_PASS);
        pkt[8] = 254;
        let e = parse_ipv4(&pkt, &rx()).unwrap_err();
        assert_eq!((e.reason, e.vrid), (DropReason::Ttl, Some(51)));
        let pl = hex(KA_V3_V6);
        assert_eq!(
            reason(parse_ipv6(&pl, LL6, MCAST_V6, 1, &rx())),
            DropReason::Ttl
        );
    }

    #[test]
    fn drop_version() {
        for ver in [0x11, 0x41, 0xf1] {
            let mut pkt = hex(KA_V3_V4);
            pkt[20] = ver;
            assert_eq!(reason(parse_ipv4(&pkt, &rx())), DropReason::Version);
        }
        // v2 over IPv6 does not exist.
        let mut pl = hex(KA_V3_V6);
        pl[0] = 0x21;
        assert_eq!(
            reason(parse_ipv6(&pl, LL6, MCAST_V6, 255, &rx())),
            DropReason::Version
        );
        // Instance runs the other version.
        let p = parse_ipv4(&hex(KA_V3_V4), &rx()).unwrap();
        let e = validate(&p, &inst(Version::V2, 100, None), &mut AhReplayState::new()).unwrap_err();
        assert_eq!((e.reason, e.vrid), (DropReason::Version, Some(53)));
    }

    #[test]
    fn drop_type() {
        let mut pkt = hex(KA_V3_V4);
        pkt[20] = 0x32;
        assert_eq!(reason(parse_ipv4(&pkt, &rx())), DropReason::Type);
    }

    #[test]
    fn drop_checksum() {
        for vec in [KA_V2_PASS, KA_V2_AH_1, KA_V3_V4] {
            let mut pkt = hex(vec);
            let last = pkt.len() - 1;
            pkt[last] ^= 0x40;
            assert_eq!(
                reason(parse_ipv4(&pkt, &rx())),
                DropReason::Checksum,
                "{vec}"
            );
        }
        let mut pl = hex(KA_V3_V6);
        pl[2] = 111;
        assert_eq!(
            reason(parse_ipv6(&pl, LL6, MCAST_V6, 255, &rx())),
            DropReason::Checksum
        );
    }

    #[test]
    fn drop_addr_count_and_list() {
        let p = parse_ipv4(&hex(KA_V3_V4), &rx()).unwrap();
        let mut i = inst(Version::V3, 50, None);
        let mut st = AhReplayState::new();
        i.check_addrs = Some(vec![v4("10.99.0.100")]);
        assert_eq!(reason(validate(&p, &i, &mut st)), DropReason::AddrCount);
        i.check_addrs = Some(vec![v4("10.99.0.100"), v4("10.99.0.102")]);
        assert_eq!(reason(validate(&p, &i, &mut st)), DropReason::AddrList);
        // Duplicates do not make two lists equal.
        i.check_addrs = Some(vec![v4("10.99.0.100"), v4("10.99.0.100")]);
        assert_eq!(reason(validate(&p, &i, &mut st)), DropReason::AddrList);
        i.check_addrs = Some(vec![v4("10.99.0.101"), v4("10.99.0.100")]);
        validate(&p, &i, &mut st).unwrap();
        let p = parse_ipv6(&hex(KA_V3_V6), LL6, MCAST_V6, 255, &rx()).unwrap();
        i.check_addrs = Some(ka_v4_addrs());
        assert_eq!(reason(validate(&p, &i, &mut st)), DropReason::AddrList);
    }

    #[test]
    fn drop_interval_v2_only() {
        let p = parse_ipv4(&hex(KA_V2_PASS), &rx()).unwrap();
        let i = inst(Version::V2, 200, Some(AuthKey::pass(b"secret12")));
        let e = validate(&p, &i, &mut AhReplayState::new()).unwrap_err();
        assert_eq!((e.reason, e.vrid), (DropReason::Interval, Some(51)));
        // v3: the backup learns the master's interval instead (RFC 5798 §6.4.2).
        let p = parse_ipv4(&hex(KA_V3_V4), &rx()).unwrap();
        validate(&p, &inst(Version::V3, 300, None), &mut AhReplayState::new()).unwrap();
    }

    #[test]
    fn drop_auth_type() {
        // Unknown auth type in the packet.
        let mut pkt = hex(KA_V2_PASS);
        pkt[24] = 3;
        refix(&mut pkt, false);
        assert_eq!(reason(parse_ipv4(&pkt, &rx())), DropReason::AuthType);
        // Auth type AH without an AH header.
        pkt[24] = 2;
        refix(&mut pkt, false);
        assert_eq!(reason(parse_ipv4(&pkt, &rx())), DropReason::AuthType);
        // AH header around an auth type 1 advert.
        let mut pkt = hex(KA_V2_AH_1);
        pkt[20 + AH_LEN + 4] = 1;
        refix(&mut pkt, false);
        assert_eq!(reason(parse_ipv4(&pkt, &rx())), DropReason::AuthType);
        // AH header around VRRPv3.
        let mut pkt = hex(KA_V2_AH_1);
        pkt[20 + AH_LEN] = 0x31;
        refix(&mut pkt, false);
        // (v3 IPv4 length has no auth data: 8 bytes too long.)
        assert_eq!(reason(parse_ipv4(&pkt, &rx())), DropReason::Length);
        let l = pkt.len() - 8;
        pkt.truncate(l);
        pkt[3] -= 8;
        refix(&mut pkt, false);
        assert_eq!(reason(parse_ipv4(&pkt, &rx())), DropReason::AuthType);
        // Valid packet, configured method differs.
        let mut st = AhReplayState::new();
        let pass = parse_ipv4(&hex(KA_V2_PASS), &rx()).unwrap();
        let ah = parse_ipv4(&hex(KA_V2_AH_1), &rx()).unwrap();
        for (p, want) in [
            (&pass, None),
            (&pass, Some(AuthKey::ah(b"secret12"))),
            (&ah, None),
            (&ah, Some(AuthKey::pass(b"ahkey"))),
        ] {
            let e = validate(p, &inst(Version::V2, 100, want), &mut st).unwrap_err();
            assert_eq!(e.reason, DropReason::AuthType, "{want:?}");
        }
        let a = advert(Version::V2, 9, 100, 100, vec![]);
        let none = parse_ipv4(&encode_ipv4(SRC4, MCAST_V4, &a, &TxOpts::default()), &rx()).unwrap();
        let i = inst(Version::V2, 100, Some(AuthKey::pass(b"x")));
        assert_eq!(reason(validate(&none, &i, &mut st)), DropReason::AuthType);
    }

    #[test]
    fn drop_auth_password() {
        let p = parse_ipv4(&hex(KA_V2_PASS), &rx()).unwrap();
        let i = inst(Version::V2, 100, Some(AuthKey::pass(b"secret13")));
        assert_eq!(
            reason(validate(&p, &i, &mut AhReplayState::new())),
            DropReason::AuthPassword
        );
    }

    #[test]
    fn drop_ah_icv() {
        let mut st = AhReplayState::new();
        let p = parse_ipv4(&hex(KA_V2_AH_1), &rx()).unwrap();
        let i = inst(Version::V2, 100, Some(AuthKey::ah(b"ahkez")));
        assert_eq!(reason(validate(&p, &i, &mut st)), DropReason::AhIcv);
        // A changed priority with a fixed-up checksum still fails the ICV.
        let mut pkt = hex(KA_V2_AH_1);
        pkt[20 + AH_LEN + 2] = 255;
        refix(&mut pkt, false);
        let p = parse_ipv4(&pkt, &rx()).unwrap();
        let i = inst(Version::V2, 100, Some(AuthKey::ah(b"ahkey")));
        assert_eq!(reason(validate(&p, &i, &mut st)), DropReason::AhIcv);
        // TOS and the IP checksum are mutable, so changing them is fine.
        let mut pkt = hex(KA_V2_AH_1);
        pkt[1] = 0;
        pkt[10] = 0;
        let p = parse_ipv4(&pkt, &rx()).unwrap();
        validate(&p, &i, &mut st).unwrap();
    }

    #[test]
    fn drop_ah_replay() {
        let i = inst(Version::V2, 100, Some(AuthKey::ah(b"ahkey")));
        let mut st = AhReplayState::new();
        let p2 = parse_ipv4(&hex(KA_V2_AH_2), &rx()).unwrap();
        let p1 = parse_ipv4(&hex(KA_V2_AH_1), &rx()).unwrap();
        validate(&p2, &i, &mut st).unwrap();
        assert_eq!(reason(validate(&p2, &i, &mut st)), DropReason::AhReplay);
        assert_eq!(reason(validate(&p1, &i, &mut st)), DropReason::AhReplay);
    }

    #[test]
    fn drop_ah_header() {
        let base = hex(KA_V2_AH_1);
        for (at, val) in [(20, 6u8), (21, 3)] {
            let mut pkt = base.clone();
            pkt[at] = val;
            let e = parse_ipv4(&pkt, &rx()).unwrap_err();
            assert_eq!((e.reason, e.vrid), (DropReason::AhHeader, Some(52)));
        }
        // SPI must be the source address: an advert built with another SPI
        // and a valid ICV is refused.
        let key = AuthKey::ah(b"ahkey");
        let a = advert(Version::V2, 52, 150, 100, vec![]);
        let tx = TxOpts {
            auth: Some(key),
            ah_seq: 1,
            ip_id: 1,
            ..TxOpts::default()
        };
        let pkt = encode_ipv4(Ipv4Addr::new(10, 99, 0, 9), MCAST_V4, &a, &tx);
        let mut p = parse_ipv4(&pkt, &rx()).unwrap();
        p.src = IpAddr::V4(SRC4);
        let e = validate(
            &p,
            &inst(Version::V2, 100, Some(key)),
            &mut AhReplayState::new(),
        )
        .unwrap_err();
        assert_eq!(e.reason, DropReason::AhHeader);
    }

    #[test]
    fn drop_own_advert() {
        let p = parse_ipv4(&hex(KA_V3_V4), &rx()).unwrap();
        let mut i = inst(Version::V3, 50, None);
        i.own_addr = Some(IpAddr::V4(SRC4));
        assert_eq!(
            reason(validate(&p, &i, &mut AhReplayState::new())),
            DropReason::OwnAdvert
        );
    }

    /// Every prefix and every single-byte change of every vector, through
    /// both stages with every instance kind: errors, never panics.
    #[test]
    fn mutations_never_panic() {
        let insts = [
            inst(Version::V2, 100, None),
            inst(Version::V2, 100, Some(AuthKey::pass(b"secret12"))),
            inst(Version::V2, 100, Some(AuthKey::ah(b"ahkey"))),
            InstanceRx {
                check_addrs: Some(ka_v4_addrs()),
                ..inst(Version::V3, 100, None)
            },
        ];
        let run4 = |pkt: &[u8]| {
            for opts in [
                rx(),
                RxOpts {
                    v3_checksum_as_v2: true,
                    check_ttl: false,
                    old_unicast_checksum_group: Some(MCAST_V4),
                },
            ] {
                if let Ok(p) = parse_ipv4(pkt, &opts) {
                    for i in &insts {
                        let _ = validate(&p, i, &mut AhReplayState::new());
                    }
                }
            }
        };
        for vec in [KA_V2_PASS, KA_V2_AH_1, KA_V3_V4, V3_V4_AS_V2, KA_V3_V6] {
            let base = hex(vec);
            for n in 0..=base.len() {
                run4(&base[..n]);
                let _ = parse_ipv6(&base[..n], LL6, MCAST_V6, 255, &rx());
            }
            for at in 0..base.len() {
                for val in [0u8, 1, 0x0f, 0x21, 0x31, 0x45, 0x4f, 0x7f, 0x80, 0xff] {
                    let mut pkt = base.clone();
                    pkt[at] = val;
                    run4(&pkt);
                    if let Ok(p) = parse_ipv6(&pkt, LL6, MCAST_V6, 255, &rx()) {
                        let _ = validate(&p, &insts[3], &mut AhReplayState::new());
                    }
                }
            }
        }
    }

    /// keepalived `old_unicast_checksum`: v3 unicast with the multicast group
    /// in the pseudo-header. Accepted only when asked for, and flagged.
    #[test]
    fn old_unicast_checksum_round_trip() {
        let src = Ipv4Addr::new(10, 0, 0, 1);
        let dst = Ipv4Addr::new(10, 0, 0, 2);
        let advert = Advert {
            version: Version::V3,
            vrid: 7,
            priority: 100,
            interval_cs: 100,
            addrs: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))],
        };
        let tx = TxOpts {
            checksum_dst: Some(MCAST_V4),
            ..TxOpts::default()
        };
        let pkt = encode_ipv4(src, dst, &advert, &tx);
        let strict = RxOpts::default();
        let e = parse_ipv4(&pkt, &strict).unwrap_err();
        assert_eq!(e.reason, DropReason::Checksum);
        let compat = RxOpts {
            old_unicast_checksum_group: Some(MCAST_V4),
            ..RxOpts::default()
        };
        let p = parse_ipv4(&pkt, &compat).unwrap();
        assert!(p.old_unicast_checksum);
        // A standard packet parses with the compat option too, unflagged.
        let std_pkt = encode_ipv4(src, dst, &advert, &TxOpts::default());
        assert!(!parse_ipv4(&std_pkt, &compat).unwrap().old_unicast_checksum);
    }
}
