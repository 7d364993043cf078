//! The VRRP advertisement as the state machine sees it, independent of the
//! wire version and address family.

use std::net::IpAddr;

/// Protocol version: RFC 3768 (v2, IPv4 only) or RFC 5798/9568 (v3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    V2,
    V3,
}

/// A decoded, validated advertisement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// Advertisement interval in centiseconds. v2 carries whole seconds on the
    /// wire (RFC 3768 §5.3.7); it is stored here as seconds * 100.
    pub interval_cs: u16,
    /// The virtual addresses carried (all of one family).
    pub addrs: Vec<IpAddr>,
}
