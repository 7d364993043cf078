//! The typed configuration model. Both syntaxes (lbd's TOML and
//! keepalived.conf) produce this; the daemon consumes only this.
//! Every type is `PartialEq` so a reload can diff two models.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where a thing was written: used for warnings and errors.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Span {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A non-fatal finding (e.g. a keepalived keyword lbd does not support yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub span: Span,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: warning: {}", self.span, self.message)
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Config {
    pub global: Global,
    pub instances: Vec<VrrpInstance>,
    pub sync_groups: Vec<SyncGroup>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VrrpVersion {
    V2,
    V3,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Global {
    pub router_id: Option<String>,
    /// Default protocol version for instances that do not set one (keepalived `vrrp_version`, default 2).
    pub vrrp_version: VrrpVersion,
    /// v3 over IPv4: compute the checksum without the pseudo-header as v2
    /// does (keepalived global `v3_checksum_as_v2`); false = RFC 5798 §5.2.8.
    /// The default for `VrrpInstance::v3_checksum_as_v2`, which is what applies.
    pub v3_checksum_as_v2: bool,
    /// Multicast groups (keepalived `vrrp_mcast_group4/6`).
    pub mcast_group4: std::net::Ipv4Addr,
    pub mcast_group6: std::net::Ipv6Addr,
    /// Defaults inherited by instances (keepalived `vrrp_garp_master_*`).
    pub garp: Garp,
    /// Interval between gratuitous ARPs / NAs within one burst (`vrrp_garp_interval`, `vrrp_gna_interval`).
    pub garp_interval: Duration,
    pub gna_interval: Duration,
    /// keepalived `vrrp_strict`: enforce RFC rules (no unicast, no auth, ...).
    pub strict: bool,
    /// keepalived `vrrp_skip_check_adv_addr`: do not compare the address list of adverts.
    pub skip_check_adv_addr: bool,
    /// keepalived `vrrp_check_unicast_src`: drop unicast adverts from non-peers.
    pub check_unicast_src: bool,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            router_id: None,
            vrrp_version: VrrpVersion::V2,
            v3_checksum_as_v2: false,
            mcast_group4: std::net::Ipv4Addr::new(224, 0, 0, 18),
            mcast_group6: std::net::Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12),
            garp: Garp::default(),
            garp_interval: Duration::ZERO,
            gna_interval: Duration::ZERO,
            strict: false,
            skip_check_adv_addr: false,
            check_unicast_src: false,
        }
    }
}

/// Gratuitous ARP / unsolicited NA behaviour on becoming master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Garp {
    /// Delay before the second burst after becoming master (keepalived default 5 s; 0 = no second burst).
    pub master_delay: Duration,
    /// Messages per burst (keepalived default 5).
    pub master_repeat: u32,
    /// Periodic refresh while master (0 = off, the default).
    pub master_refresh: Duration,
    /// Messages per refresh (default 1).
    pub master_refresh_repeat: u32,
}

impl Default for Garp {
    fn default() -> Self {
        Garp {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: Duration::ZERO,
            master_refresh_repeat: 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitialState {
    Backup,
    Master,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// RFC 3768 simple text password (up to 8 bytes, zero padded).
    Pass(String),
    /// IPsec AH, HMAC-MD5-96 keyed by the password, as keepalived does.
    Ah(String),
}

/// A virtual (or excluded) address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vip {
    pub addr: IpAddr,
    /// Prefix length; keepalived's default is /32 (/128).
    pub prefix: u8,
    /// Interface; `None` = the instance's interface.
    pub dev: Option<String>,
    pub label: Option<String>,
    pub scope: Option<Scope>,
    pub brd: Option<IpAddr>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Global,
    Site,
    Link,
    Host,
    Nowhere,
    Other(u8),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackInterface {
    pub name: String,
    /// 0 = the instance goes to Fault when the link is down; otherwise the
    /// effective priority changes by this amount while it is down
    /// (negative lowers it; keepalived semantics).
    pub weight: i32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VrrpInstance {
    pub name: String,
    pub span: Span,
    pub interface: String,
    pub vrid: u8,
    /// Base priority 1..=255 (255 = address owner). keepalived default 100.
    pub priority: u8,
    /// Advertisement interval (v2: whole seconds; v3: centisecond resolution).
    pub advert_int: Duration,
    pub version: VrrpVersion,
    pub initial: InitialState,
    pub preempt: bool,
    pub preempt_delay: Duration,
    /// RFC 5798 §6.1 Accept_Mode (keepalived `accept` / `no_accept`).
    pub accept: bool,
    pub auth: Option<Auth>,
    pub vips: Vec<Vip>,
    pub excluded_vips: Vec<Vip>,
    /// Unicast mode when `unicast_peers` is non-empty.
    pub unicast_src: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    pub track_interfaces: Vec<TrackInterface>,
    /// keepalived `dont_track_primary`: do not go to Fault when `interface` is down.
    pub dont_track_primary: bool,
    pub garp: Garp,
    /// keepalived `mcast_src_ip`.
    pub mcast_src: Option<IpAddr>,
    /// keepalived `use_vmac` (name of the macvlan), not implemented yet: kept so it is never silently dropped.
    pub use_vmac: Option<String>,
    /// v3 over IPv4: checksum without the pseudo-header (keepalived
    /// instance keyword `v3_checksum_as_v2`; defaults to the global one).
    pub v3_checksum_as_v2: bool,
    /// v3 unicast over IPv4: keepalived's pre-1.3.6 checksum, with the
    /// multicast group in the pseudo-header (`old_unicast_checksum [never]`).
    pub old_unicast_checksum: OldUnicastChecksum,
}

/// keepalived `old_unicast_checksum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OldUnicastChecksum {
    /// Standard checksum; switch to the old one when a peer is seen using it.
    #[default]
    Auto,
    /// Always the old checksum (keyword given).
    Always,
    /// Never detect or use it (`old_unicast_checksum never`).
    Never,
}

impl VrrpInstance {
    /// The address family the instance advertises in, decided as keepalived
    /// does: by its first VIP, else its source address, else its first peer;
    /// IPv4 when none is given.
    pub fn is_ipv6(&self) -> bool {
        self.vips
            .first()
            .map(|v| v.addr)
            .or(self.unicast_src)
            .or(self.mcast_src)
            .or(self.unicast_peers.first().copied())
            .is_some_and(|a| a.is_ipv6())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SyncGroup {
    pub name: String,
    pub span: Span,
    pub members: Vec<String>,
}
