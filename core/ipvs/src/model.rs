//! The IPVS model: what identifies a virtual service (`ServiceKey`), what can
//! be changed in place (`ServiceSpec`, `DestSpec`), and the state as a whole.
//! Counters live in `stats` so that a diff never sees them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Service flags, values from linux/ip_vs.h.
pub const IP_VS_SVC_F_PERSISTENT: u32 = 0x0001;
/// Set by the kernel on every hashed service; lbd never sends it and strips
/// it from what it reads.
pub const IP_VS_SVC_F_HASHED: u32 = 0x0002;
pub const IP_VS_SVC_F_ONEPACKET: u32 = 0x0004;
pub const IP_VS_SVC_F_SCHED1: u32 = 0x0008;
pub const IP_VS_SVC_F_SCHED2: u32 = 0x0010;
pub const IP_VS_SVC_F_SCHED3: u32 = 0x0020;
pub const IP_VS_SVC_F_SCHED_SH_FALLBACK: u32 = IP_VS_SVC_F_SCHED1;
pub const IP_VS_SVC_F_SCHED_SH_PORT: u32 = IP_VS_SVC_F_SCHED2;
pub const IP_VS_SVC_F_SCHED_MH_FALLBACK: u32 = IP_VS_SVC_F_SCHED1;
pub const IP_VS_SVC_F_SCHED_MH_PORT: u32 = IP_VS_SVC_F_SCHED2;
/// The three scheduler-private flag bits.
pub const SCHED_FLAGS_MASK: u32 = IP_VS_SVC_F_SCHED1 | IP_VS_SVC_F_SCHED2 | IP_VS_SVC_F_SCHED3;
/// Bits `ServiceSpec::flags` may hold. PERSISTENT is carried by
/// `ServiceSpec::persistence`, HASHED is the kernel's own.
pub const SPEC_FLAGS_MASK: u32 = SCHED_FLAGS_MASK | IP_VS_SVC_F_ONEPACKET;

/// Tunnel encapsulation flags (IP_VS_TUNNEL_ENCAP_FLAG_*).
pub const TUN_F_NOCSUM: u16 = 0;
pub const TUN_F_CSUM: u16 = 1 << 0;
pub const TUN_F_REMCSUM: u16 = 1 << 1;

/// Buffer sizes in linux/ip_vs.h. The netlink policy accepts a scheduler name
/// of at most `IP_VS_SCHEDNAME_MAXLEN - 1` bytes and a PE name of at most
/// `IP_VS_PENAME_MAXLEN` bytes (both without the NUL).
pub const IP_VS_SCHEDNAME_MAXLEN: usize = 16;
pub const IP_VS_PENAME_MAXLEN: usize = 16;

/// Schedulers shipped with Linux (ip_vs_<name>.ko).
pub const SCHEDULERS: [&str; 14] = [
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos",
];

/// Default v4 persistence mask: the host-order value of 255.255.255.255.
pub const V4_NETMASK_HOST: u32 = 0xffff_ffff;
/// Default v6 persistence granularity: a prefix length.
pub const V6_NETMASK_HOST: u32 = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Af {
    V4,
    V6,
}

impl Af {
    pub const AF_INET: u16 = 2;
    pub const AF_INET6: u16 = 10;

    pub fn of(addr: &IpAddr) -> Af {
        match addr {
            IpAddr::V4(_) => Af::V4,
            IpAddr::V6(_) => Af::V6,
        }
    }

    pub fn to_kernel(self) -> u16 {
        match self {
            Af::V4 => Self::AF_INET,
            Af::V6 => Self::AF_INET6,
        }
    }

    pub fn from_kernel(af: u16) -> Option<Af> {
        match af {
            Self::AF_INET => Some(Af::V4),
            Self::AF_INET6 => Some(Af::V6),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn to_kernel(self) -> u16 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    pub fn from_kernel(proto: u16) -> Option<Protocol> {
        match proto {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The word ipvsadm prints.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// Identity of a virtual service, exactly what the kernel looks it up by.
/// Changing any part of it means a different service (delete + add).
///
/// The address family of an address service is the family of `addr`, so a
/// v4 service with a v6 address cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceKey {
    Addr {
        protocol: Protocol,
        addr: IpAddr,
        port: u16,
    },
    /// `mark` must not be 0: the kernel takes fwmark 0 as "no fwmark".
    Fwmark { af: Af, mark: u32 },
}

impl ServiceKey {
    pub fn addr(protocol: Protocol, addr: IpAddr, port: u16) -> Self {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        }
    }

    pub fn fwmark(af: Af, mark: u32) -> Self {
        ServiceKey::Fwmark { af, mark }
    }

    pub fn af(&self) -> Af {
        match self {
            ServiceKey::Addr { addr, .. } => Af::of(addr),
            ServiceKey::Fwmark { af, .. } => *af,
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => write!(f, "{} {}", protocol.name(), SocketAddr::new(*addr, *port)),
            ServiceKey::Fwmark { af: Af::V4, mark } => write!(f, "FWM {mark}"),
            ServiceKey::Fwmark { af: Af::V6, mark } => write!(f, "FWM {mark} IPv6"),
        }
    }
}

/// What a service has that can be changed with SET_SERVICE.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServiceSpec {
    /// Kernel scheduler name, e.g. "wlc" ("none" is accepted by the kernel).
    pub scheduler: String,
    /// Only bits of `SPEC_FLAGS_MASK`: scheduler flags and one-packet
    /// scheduling.
    pub flags: u32,
    /// Persistence timeout in seconds; `Some` sets IP_VS_SVC_F_PERSISTENT.
    pub persistence: Option<u32>,
    /// Persistence granularity with the kernel's semantics: for v4 the mask
    /// as a host-order u32 (255.255.255.0 = 0xffff_ff00, sent big-endian);
    /// for v6 the prefix length 1..=128 (the kernel reads the attribute's
    /// raw bytes as a native u32, so it goes on the wire in host order).
    pub netmask: u32,
    /// Persistence engine, e.g. "sip".
    pub pe_name: Option<String>,
}

impl ServiceSpec {
    /// A non-persistent service with the default granularity for `af`.
    pub fn new(scheduler: impl Into<String>, af: Af) -> Self {
        ServiceSpec {
            scheduler: scheduler.into(),
            flags: 0,
            persistence: None,
            netmask: Self::default_netmask(af),
            pe_name: None,
        }
    }

    pub fn default_netmask(af: Af) -> u32 {
        match af {
            Af::V4 => V4_NETMASK_HOST,
            Af::V6 => V6_NETMASK_HOST,
        }
    }

    /// The flag word for the kernel's `{flags, mask}` pair.
    pub fn kernel_flags(&self) -> u32 {
        let persistent = if self.persistence.is_some() {
            IP_VS_SVC_F_PERSISTENT
        } else {
            0
        };
        (self.flags & SPEC_FLAGS_MASK) | persistent
    }

    /// The TIMEOUT attribute: the kernel wants it even when not persistent.
    pub fn kernel_timeout(&self) -> u32 {
        self.persistence.unwrap_or(0)
    }

    /// Builds a spec from what a dump reports. HASHED and unknown bits are
    /// dropped; the timeout counts only when PERSISTENT is set.
    pub fn from_kernel(
        scheduler: impl Into<String>,
        flags: u32,
        timeout: u32,
        netmask: u32,
        pe_name: Option<String>,
    ) -> Self {
        ServiceSpec {
            scheduler: scheduler.into(),
            flags: flags & SPEC_FLAGS_MASK,
            persistence: (flags & IP_VS_SVC_F_PERSISTENT != 0).then_some(timeout),
            netmask,
            pe_name: pe_name.filter(|p| !p.is_empty()),
        }
    }

    /// The canonical form the diff compares: fields the kernel ignores in the
    /// current configuration are set to their defaults, so that adopting a
    /// service created by another tool does not cause churn.
    pub fn normalized(&self, af: Af) -> ServiceSpec {
        ServiceSpec {
            scheduler: self.scheduler.clone(),
            flags: self.flags & SPEC_FLAGS_MASK,
            persistence: self.persistence,
            // The granularity is only read to build persistence templates.
            netmask: if self.persistence.is_some() {
                self.netmask
            } else {
                Self::default_netmask(af)
            },
            pe_name: self.pe_name.clone().filter(|p| !p.is_empty()),
        }
    }

    pub fn equivalent(&self, other: &ServiceSpec, af: Af) -> bool {
        self.normalized(af) == other.normalized(af)
    }
}

/// A real server of a service. Its family may differ from the service's
/// only with tunnel forwarding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DestKey {
    pub addr: IpAddr,
    pub port: u16,
}

impl DestKey {
    pub fn new(addr: IpAddr, port: u16) -> Self {
        DestKey { addr, port }
    }
}

impl fmt::Display for DestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        SocketAddr::new(self.addr, self.port).fmt(f)
    }
}

/// Forwarding method (IP_VS_CONN_F_* under IP_VS_CONN_F_FWD_MASK).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fwd {
    /// NAT.
    Masq,
    Local,
    /// IP-in-IP, GUE or GRE.
    Tunnel,
    /// Direct routing (DR).
    Route,
    Bypass,
}

impl Fwd {
    pub const FWD_MASK: u32 = 0x0007;

    pub fn to_kernel(self) -> u32 {
        match self {
            Fwd::Masq => 0,
            Fwd::Local => 1,
            Fwd::Tunnel => 2,
            Fwd::Route => 3,
            Fwd::Bypass => 4,
        }
    }

    pub fn from_kernel(conn_flags: u32) -> Option<Fwd> {
        match conn_flags & Self::FWD_MASK {
            0 => Some(Fwd::Masq),
            1 => Some(Fwd::Local),
            2 => Some(Fwd::Tunnel),
            3 => Some(Fwd::Route),
            4 => Some(Fwd::Bypass),
            _ => None,
        }
    }
}

/// IP_VS_CONN_F_TUNNEL_TYPE_*.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TunType {
    Ipip,
    Gue,
    Gre,
}

impl TunType {
    pub fn to_kernel(self) -> u8 {
        match self {
            TunType::Ipip => 0,
            TunType::Gue => 1,
            TunType::Gre => 2,
        }
    }

    pub fn from_kernel(t: u8) -> Option<TunType> {
        match t {
            0 => Some(TunType::Ipip),
            1 => Some(TunType::Gue),
            2 => Some(TunType::Gre),
            _ => None,
        }
    }
}

/// What a destination has that can be changed with SET_DEST: the kernel's
/// update path (`__ip_vs_update_dest`) rewrites forwarding method, tunnel
/// settings, weight and thresholds in place, so none of these needs a
/// delete + add.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DestSpec {
    pub fwd: Fwd,
    /// An `int` in the kernel, which refuses negative weights: valid range
    /// is 0..=i32::MAX. 0 quiesces the server.
    pub weight: u32,
    /// 0 means no limit.
    pub u_threshold: u32,
    /// Must not exceed `u_threshold` (the kernel checks even when u is 0).
    pub l_threshold: u32,
    /// Tunnel settings, meaningful with `Fwd::Tunnel` only. `None` is the
    /// kernel default (IPIP, port 0, TUN_F_NOCSUM).
    pub tun_type: Option<TunType>,
    /// Required (non-zero) for GUE.
    pub tun_port: Option<u16>,
    pub tun_flags: Option<u16>,
}

impl DestSpec {
    pub fn new(fwd: Fwd, weight: u32) -> Self {
        DestSpec {
            fwd,
            weight,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: None,
            tun_port: None,
            tun_flags: None,
        }
    }

    /// Canonical form for comparison. The kernel dumps tunnel attributes for
    /// every destination (zeros when unused), so they only count with tunnel
    /// forwarding and a default value equals `None`.
    pub fn normalized(&self) -> DestSpec {
        let tunnel = self.fwd == Fwd::Tunnel;
        DestSpec {
            fwd: self.fwd,
            weight: self.weight,
            u_threshold: self.u_threshold,
            l_threshold: self.l_threshold,
            tun_type: self.tun_type.filter(|t| tunnel && *t != TunType::Ipip),
            tun_port: self.tun_port.filter(|p| tunnel && *p != 0),
            tun_flags: self.tun_flags.filter(|f| tunnel && *f != TUN_F_NOCSUM),
        }
    }

    pub fn equivalent(&self, other: &DestSpec) -> bool {
        self.normalized() == other.normalized()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub key: ServiceKey,
    pub spec: ServiceSpec,
    pub dests: BTreeMap<DestKey, DestSpec>,
}

impl Service {
    pub fn new(key: ServiceKey, spec: ServiceSpec) -> Self {
        Service {
            key,
            spec,
            dests: BTreeMap::new(),
        }
    }

    /// Builder form of inserting a destination.
    pub fn with_dest(mut self, key: DestKey, spec: DestSpec) -> Self {
        self.dests.insert(key, spec);
        self
    }
}

/// A whole IPVS table (desired or observed). The map key is authoritative:
/// use `insert` to keep it equal to `Service::key`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpvsState {
    pub services: BTreeMap<ServiceKey, Service>,
}

impl IpvsState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts or replaces the service under its own key.
    pub fn insert(&mut self, service: Service) -> Option<Service> {
        self.services.insert(service.key.clone(), service)
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Checks everything the kernel (or ipvsadm) would refuse, so that a bad
    /// config is reported before any netlink request.
    pub fn validate(&self) -> Result<(), ModelError> {
        for (key, svc) in &self.services {
            validate_service(key, svc)?;
        }
        Ok(())
    }
}

impl FromIterator<Service> for IpvsState {
    fn from_iter<I: IntoIterator<Item = Service>>(iter: I) -> Self {
        let mut state = IpvsState::new();
        for s in iter {
            state.insert(s);
        }
        state
    }
}

/// The service keys lbd owns. Everything else in the kernel is foreign and
/// never touched. Keys present in the desired state count as owned too (lbd
/// is about to create or adopt them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedSet {
    keys: BTreeSet<ServiceKey>,
}

impl OwnedSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Ownership of exactly what a config names.
    pub fn from_state(state: &IpvsState) -> Self {
        state.services.keys().cloned().collect()
    }

    pub fn insert(&mut self, key: ServiceKey) -> bool {
        self.keys.insert(key)
    }

    pub fn remove(&mut self, key: &ServiceKey) -> bool {
        self.keys.remove(key)
    }

    pub fn contains(&self, key: &ServiceKey) -> bool {
        self.keys.contains(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ServiceKey> {
        self.keys.iter()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl FromIterator<ServiceKey> for OwnedSet {
    fn from_iter<I: IntoIterator<Item = ServiceKey>>(iter: I) -> Self {
        OwnedSet {
            keys: iter.into_iter().collect(),
        }
    }
}

impl Extend<ServiceKey> for OwnedSet {
    fn extend<I: IntoIterator<Item = ServiceKey>>(&mut self, iter: I) {
        self.keys.extend(iter);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ModelErrorKind {
    #[error("fwmark 0 is not a firewall mark (the kernel reads it as no fwmark)")]
    FwmarkZero,
    #[error("unknown scheduler {0:?} (known: {list})", list = SCHEDULERS.join(" "))]
    UnknownScheduler(String),
    #[error("persistence engine name {0:?} is empty or longer than {IP_VS_PENAME_MAXLEN} bytes")]
    PeName(String),
    #[error("service flags {0:#x} contain bits other than the scheduler flags and ops")]
    Flags(u32),
    #[error("persistence timeout 0: leave persistence unset instead")]
    PersistenceZero,
    #[error("IPv6 persistence granularity {0} is not a prefix length 1..=128")]
    V6Netmask(u32),
    #[error("weight {0} is above {max}", max = i32::MAX)]
    Weight(u32),
    #[error("lower threshold {l} is above upper threshold {u}")]
    Thresholds { l: u32, u: u32 },
    #[error("GUE tunnel needs a non-zero tunnel port")]
    GuePort,
    #[error("tunnel type/port/flags set on a destination that does not use tunnel forwarding")]
    TunnelOptions,
    #[error("tunnel flags {0:#x} unknown")]
    TunnelFlags(u16),
    #[error("destination family differs from the service's: only tunnel forwarding allows it")]
    MixedFamily,
}

/// A validation error, with the service (and destination) it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelError {
    pub service: ServiceKey,
    pub dest: Option<DestKey>,
    pub kind: ModelErrorKind,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.service)?;
        if let Some(d) = &self.dest {
            write!(f, " -> {d}")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for ModelError {}

fn validate_service(key: &ServiceKey, svc: &Service) -> Result<(), ModelError> {
    let err = |dest: Option<DestKey>, kind| ModelError {
        service: key.clone(),
        dest,
        kind,
    };
    if let ServiceKey::Fwmark { mark: 0, .. } = key {
        return Err(err(None, ModelErrorKind::FwmarkZero));
    }
    let spec = &svc.spec;
    if !SCHEDULERS.contains(&spec.scheduler.as_str()) {
        return Err(err(
            None,
            ModelErrorKind::UnknownScheduler(spec.scheduler.clone()),
        ));
    }
    if let Some(pe) = &spec.pe_name {
        if pe.is_empty() || pe.len() > IP_VS_PENAME_MAXLEN || pe.contains('\0') {
            return Err(err(None, ModelErrorKind::PeName(pe.clone())));
        }
    }
    if spec.flags & !SPEC_FLAGS_MASK != 0 {
        return Err(err(None, ModelErrorKind::Flags(spec.flags)));
    }
    if spec.persistence == Some(0) {
        return Err(err(None, ModelErrorKind::PersistenceZero));
    }
    // The kernel checks the v6 prefix on every add/edit, persistent or not.
    if key.af() == Af::V6 && !(1..=128).contains(&spec.netmask) {
        return Err(err(None, ModelErrorKind::V6Netmask(spec.netmask)));
    }
    for (dk, d) in &svc.dests {
        let derr = |kind| err(Some(*dk), kind);
        if d.weight > i32::MAX as u32 {
            return Err(derr(ModelErrorKind::Weight(d.weight)));
        }
        if d.l_threshold > d.u_threshold {
            return Err(derr(ModelErrorKind::Thresholds {
                l: d.l_threshold,
                u: d.u_threshold,
            }));
        }
        let tun_opts = d.tun_type.is_some() || d.tun_port.is_some() || d.tun_flags.is_some();
        if d.fwd != Fwd::Tunnel && tun_opts {
            return Err(derr(ModelErrorKind::TunnelOptions));
        }
        if d.tun_type == Some(TunType::Gue) && d.tun_port.unwrap_or(0) == 0 {
            return Err(derr(ModelErrorKind::GuePort));
        }
        if let Some(f) = d.tun_flags {
            if f & !(TUN_F_CSUM | TUN_F_REMCSUM) != 0 {
                return Err(derr(ModelErrorKind::TunnelFlags(f)));
            }
        }
        if Af::of(&dk.addr) != key.af() && d.fwd != Fwd::Tunnel {
            return Err(derr(ModelErrorKind::MixedFamily));
        }
    }
    Ok(())
}
