//! The IPVS generic netlink vocabulary (linux/ip_vs.h) and the translation
//! between the `lbd-ipvs` model and attributes. No socket here.

use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lbd_ipvs::{
    Af, DestCounters, DestKey, DestSpec, Fwd, Protocol, Service, ServiceKey, ServiceSpec, Stats,
    TunType,
};
use neli::genl::{AttrTypeBuilder, Nlattr, NlattrBuilder};
use neli::types::{Buffer, GenlBuffer};
use neli::FromBytesWithInput;

use super::{SyncDaemon, SyncState};

pub(crate) type Attr = Nlattr<u16, Buffer>;

/// IPVS_CMD_*.
pub(crate) mod cmd {
    pub const NEW_SERVICE: u8 = 1;
    pub const SET_SERVICE: u8 = 2;
    pub const DEL_SERVICE: u8 = 3;
    pub const GET_SERVICE: u8 = 4;
    pub const NEW_DEST: u8 = 5;
    pub const SET_DEST: u8 = 6;
    pub const DEL_DEST: u8 = 7;
    pub const GET_DEST: u8 = 8;
    pub const NEW_DAEMON: u8 = 9;
    pub const DEL_DAEMON: u8 = 10;
    pub const GET_DAEMON: u8 = 11;
    pub const SET_CONFIG: u8 = 12;
    pub const GET_CONFIG: u8 = 13;
    pub const GET_INFO: u8 = 15;
    pub const FLUSH: u8 = 17;
}

/// IPVS_CMD_ATTR_* (top level).
pub(crate) mod top {
    pub const SERVICE: u16 = 1;
    pub const DEST: u16 = 2;
    pub const DAEMON: u16 = 3;
    pub const TIMEOUT_TCP: u16 = 4;
    pub const TIMEOUT_TCP_FIN: u16 = 5;
    pub const TIMEOUT_UDP: u16 = 6;
    /// IPVS_INFO_ATTR_*: GET_INFO replies put them at the top level.
    pub const INFO_VERSION: u16 = 1;
    pub const INFO_CONN_TAB_SIZE: u16 = 2;
}

/// IPVS_SVC_ATTR_*.
mod svc {
    pub const AF: u16 = 1;
    pub const PROTOCOL: u16 = 2;
    pub const ADDR: u16 = 3;
    pub const PORT: u16 = 4;
    pub const FWMARK: u16 = 5;
    pub const SCHED_NAME: u16 = 6;
    pub const FLAGS: u16 = 7;
    pub const TIMEOUT: u16 = 8;
    pub const NETMASK: u16 = 9;
    pub const STATS: u16 = 10;
    pub const PE_NAME: u16 = 11;
    pub const STATS64: u16 = 12;
}

/// IPVS_DEST_ATTR_*.
mod dest {
    pub const ADDR: u16 = 1;
    pub const PORT: u16 = 2;
    pub const FWD_METHOD: u16 = 3;
    pub const WEIGHT: u16 = 4;
    pub const U_THRESH: u16 = 5;
    pub const L_THRESH: u16 = 6;
    pub const ACTIVE_CONNS: u16 = 7;
    pub const INACT_CONNS: u16 = 8;
    pub const PERSIST_CONNS: u16 = 9;
    pub const STATS: u16 = 10;
    pub const ADDR_FAMILY: u16 = 11;
    pub const STATS64: u16 = 12;
    pub const TUN_TYPE: u16 = 13;
    pub const TUN_PORT: u16 = 14;
    pub const TUN_FLAGS: u16 = 15;
}

/// IPVS_DAEMON_ATTR_*.
mod daemon {
    pub const STATE: u16 = 1;
    pub const MCAST_IFN: u16 = 2;
    pub const SYNC_ID: u16 = 3;
    pub const SYNC_MAXLEN: u16 = 4;
    pub const MCAST_GROUP: u16 = 5;
    pub const MCAST_GROUP6: u16 = 6;
    pub const MCAST_PORT: u16 = 7;
    pub const MCAST_TTL: u16 = 8;
}

/// IPVS_STATS_ATTR_*; the 64-bit set uses the same numbers.
mod stats {
    pub const CONNS: u16 = 1;
    pub const INPKTS: u16 = 2;
    pub const OUTPKTS: u16 = 3;
    pub const INBYTES: u16 = 4;
    pub const OUTBYTES: u16 = 5;
    pub const CPS: u16 = 6;
    pub const INPPS: u16 = 7;
    pub const OUTPPS: u16 = 8;
    pub const INBPS: u16 = 9;
    pub const OUTBPS: u16 = 10;
}

/// Longest interface name the daemon policy accepts (IP_VS_IFNAME_MAXLEN - 1).
const IFNAME_MAX: usize = 15;

/// Why a message could not be built or read.
#[derive(Debug)]
pub(crate) struct WireError(pub String);

fn werr(s: impl Into<String>) -> WireError {
    WireError(s.into())
}

pub(crate) fn attr(t: u16, payload: &[u8]) -> Result<Attr, WireError> {
    let ty = AttrTypeBuilder::default()
        .nla_type(t)
        .build()
        .map_err(|e| werr(e.to_string()))?;
    NlattrBuilder::default()
        .nla_type(ty)
        .nla_payload(Buffer::from(payload))
        .build()
        .map_err(|e| werr(e.to_string()))
}

/// The attributes inside a nested one, written as nla_put does (header,
/// payload, padding to 4). A neli `Nlattr` per inner attribute cost most of
/// the time of a 15000-op apply; the outer attribute stays a neli one.
#[derive(Default)]
pub(crate) struct Nest(Vec<u8>);

impl Nest {
    fn put(&mut self, t: u16, payload: &[u8]) -> Result<(), WireError> {
        let len = u16::try_from(4 + payload.len())
            .map_err(|_| werr(format!("attribute {t} too long")))?;
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&t.to_ne_bytes());
        self.0.extend_from_slice(payload);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
        Ok(())
    }

    /// NLA_NUL_STRING: the kernel wants the terminating NUL and rejects
    /// names longer than `max` bytes.
    fn string(&mut self, t: u16, s: &str, max: usize, what: &str) -> Result<(), WireError> {
        if s.len() > max || s.contains('\0') {
            return Err(werr(format!("{what} {s:?} is longer than {max} bytes")));
        }
        let mut b = Vec::with_capacity(s.len() + 1);
        b.extend_from_slice(s.as_bytes());
        b.push(0);
        self.put(t, &b)
    }

    /// The nested attribute (NLA_F_NESTED set; the kernel's parser strips
    /// it).
    fn into_attr(self, t: u16) -> Result<Attr, WireError> {
        let ty = AttrTypeBuilder::default()
            .nla_type(t)
            .nla_nested(true)
            .build()
            .map_err(|e| werr(e.to_string()))?;
        NlattrBuilder::default()
            .nla_type(ty)
            .nla_payload(Buffer::from(self.0))
            .build()
            .map_err(|e| werr(e.to_string()))
    }
}

/// `union nf_inet_addr`: 16 bytes, a v4 address in the first four. The
/// kernel also dumps all 16.
fn inet_addr(a: &IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&v4.octets());
            b
        }
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The attributes the kernel looks a service up by.
fn service_key(key: &ServiceKey) -> Result<Nest, WireError> {
    let mut v = Nest::default();
    v.put(svc::AF, &key.af().to_kernel().to_ne_bytes())?;
    match key {
        ServiceKey::Fwmark { mark, .. } => v.put(svc::FWMARK, &mark.to_ne_bytes())?,
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            v.put(svc::PROTOCOL, &protocol.to_kernel().to_ne_bytes())?;
            v.put(svc::ADDR, &inet_addr(addr))?;
            v.put(svc::PORT, &port.to_be_bytes())?;
        }
    }
    Ok(v)
}

/// A full service entry, as NEW/SET_SERVICE require (SCHED_NAME, FLAGS,
/// TIMEOUT and NETMASK are all mandatory there).
pub(crate) fn service_full(key: &ServiceKey, spec: &ServiceSpec) -> Result<Attr, WireError> {
    let mut v = service_key(key)?;
    v.string(
        svc::SCHED_NAME,
        &spec.scheduler,
        lbd_ipvs::IP_VS_SCHEDNAME_MAXLEN - 1,
        "scheduler name",
    )?;
    if let Some(pe) = spec.pe_name.as_deref().filter(|p| !p.is_empty()) {
        v.string(
            svc::PE_NAME,
            pe,
            lbd_ipvs::IP_VS_PENAME_MAXLEN,
            "persistence engine",
        )?;
    }
    // struct ip_vs_flags { flags, mask }: an all-ones mask makes the word
    // authoritative (the kernel adds HASHED itself).
    let mut flags = Vec::with_capacity(8);
    flags.extend_from_slice(&spec.kernel_flags().to_ne_bytes());
    flags.extend_from_slice(&u32::MAX.to_ne_bytes());
    v.put(svc::FLAGS, &flags)?;
    v.put(svc::TIMEOUT, &spec.kernel_timeout().to_ne_bytes())?;
    v.put(svc::NETMASK, &netmask_bytes(key.af(), spec.netmask))?;
    v.into_attr(top::SERVICE)
}

/// The kernel reads NETMASK with nla_get_be32. For v4 that is a real
/// big-endian mask; for v6 the raw u32 is used as the prefix length, so it
/// travels in host order.
fn netmask_bytes(af: Af, netmask: u32) -> [u8; 4] {
    match af {
        Af::V4 => netmask.to_be_bytes(),
        Af::V6 => netmask.to_ne_bytes(),
    }
}

fn netmask_from(af: Af, b: [u8; 4]) -> u32 {
    match af {
        Af::V4 => u32::from_be_bytes(b),
        Af::V6 => u32::from_ne_bytes(b),
    }
}

pub(crate) fn service_only_key(key: &ServiceKey) -> Result<Attr, WireError> {
    service_key(key)?.into_attr(top::SERVICE)
}

fn dest_key(dk: &DestKey) -> Result<Nest, WireError> {
    let mut v = Nest::default();
    v.put(dest::ADDR, &inet_addr(&dk.addr))?;
    v.put(dest::PORT, &dk.port.to_be_bytes())?;
    v.put(
        dest::ADDR_FAMILY,
        &Af::of(&dk.addr).to_kernel().to_ne_bytes(),
    )?;
    Ok(v)
}

/// A full destination (NEW/SET_DEST need FWD_METHOD, WEIGHT and both
/// thresholds). Tunnel attributes only go with tunnel forwarding, with the
/// kernel defaults spelled out so that an edit back to IPIP takes effect.
pub(crate) fn dest_full(dk: &DestKey, spec: &DestSpec) -> Result<Attr, WireError> {
    let mut v = dest_key(dk)?;
    v.put(dest::FWD_METHOD, &spec.fwd.to_kernel().to_ne_bytes())?;
    v.put(dest::WEIGHT, &spec.weight.to_ne_bytes())?;
    v.put(dest::U_THRESH, &spec.u_threshold.to_ne_bytes())?;
    v.put(dest::L_THRESH, &spec.l_threshold.to_ne_bytes())?;
    if spec.fwd == Fwd::Tunnel {
        let t = spec.tun_type.unwrap_or(TunType::Ipip).to_kernel();
        v.put(dest::TUN_TYPE, &[t])?;
        v.put(dest::TUN_PORT, &spec.tun_port.unwrap_or(0).to_be_bytes())?;
        v.put(dest::TUN_FLAGS, &spec.tun_flags.unwrap_or(0).to_ne_bytes())?;
    }
    v.into_attr(top::DEST)
}

pub(crate) fn dest_only_key(dk: &DestKey) -> Result<Attr, WireError> {
    dest_key(dk)?.into_attr(top::DEST)
}

pub(crate) fn daemon_full(d: &SyncDaemon) -> Result<Attr, WireError> {
    let mut v = Nest::default();
    v.put(daemon::STATE, &state_to_kernel(d.state).to_ne_bytes())?;
    v.string(daemon::MCAST_IFN, &d.ifname, IFNAME_MAX, "interface name")?;
    v.put(daemon::SYNC_ID, &u32::from(d.syncid).to_ne_bytes())?;
    if let Some(m) = d.maxlen {
        v.put(daemon::SYNC_MAXLEN, &m.to_ne_bytes())?;
    }
    match d.group {
        // nla_get_in_addr: network order.
        Some(IpAddr::V4(g)) => v.put(daemon::MCAST_GROUP, &g.octets())?,
        Some(IpAddr::V6(g)) => v.put(daemon::MCAST_GROUP6, &g.octets())?,
        None => {}
    }
    // Host order: the kernel applies htons when it builds the socket.
    if let Some(p) = d.port {
        v.put(daemon::MCAST_PORT, &p.to_ne_bytes())?;
    }
    if let Some(t) = d.ttl {
        v.put(daemon::MCAST_TTL, &[t])?;
    }
    v.into_attr(top::DAEMON)
}

pub(crate) fn daemon_state(state: SyncState) -> Result<Attr, WireError> {
    let mut v = Nest::default();
    v.put(daemon::STATE, &state_to_kernel(state).to_ne_bytes())?;
    v.into_attr(top::DAEMON)
}

/// Attributes of one level, in the order received.
pub(crate) struct Attrs(Vec<(u16, Vec<u8>)>);

impl Attrs {
    pub(crate) fn from_genl(buf: &GenlBuffer<u16, Buffer>) -> Attrs {
        Attrs(
            buf.iter()
                .map(|a| (*a.nla_type().nla_type(), a.nla_payload().as_ref().to_vec()))
                .collect(),
        )
    }

    pub(crate) fn parse(bytes: &[u8]) -> Result<Attrs, WireError> {
        let buf =
            GenlBuffer::<u16, Buffer>::from_bytes_with_input(&mut Cursor::new(bytes), bytes.len())
                .map_err(|e| werr(format!("bad nested attributes: {e}")))?;
        Ok(Attrs::from_genl(&buf))
    }

    pub(crate) fn get(&self, t: u16) -> Option<&[u8]> {
        self.0.iter().find(|(ty, _)| *ty == t).map(|(_, b)| &b[..])
    }

    fn fixed<const N: usize>(&self, t: u16) -> Option<[u8; N]> {
        self.get(t)
            .and_then(|b| b.get(..N))
            .and_then(|b| b.try_into().ok())
    }

    fn need<const N: usize>(&self, t: u16, what: &str) -> Result<[u8; N], WireError> {
        self.fixed(t)
            .ok_or_else(|| werr(format!("reply lacks {what} (attribute {t})")))
    }

    pub(crate) fn u32(&self, t: u16) -> Option<u32> {
        self.fixed(t).map(u32::from_ne_bytes)
    }

    fn u64(&self, t: u16) -> Option<u64> {
        self.fixed(t).map(u64::from_ne_bytes)
    }

    fn string(&self, t: u16) -> Option<String> {
        self.get(t).map(|b| {
            let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
            String::from_utf8_lossy(&b[..end]).into_owned()
        })
    }

    pub(crate) fn nested(&self, t: u16) -> Result<Option<Attrs>, WireError> {
        self.get(t).map(Attrs::parse).transpose()
    }
}

fn addr_from(af: Af, b: [u8; 16]) -> IpAddr {
    match af {
        Af::V4 => IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])),
        Af::V6 => IpAddr::V6(Ipv6Addr::from(b)),
    }
}

/// STATS64 when present (all u64), else the legacy STATS (u32 except the
/// byte counters).
fn stats_from(a: &Attrs, s64: u16, s32: u16) -> Result<Stats, WireError> {
    if let Some(s) = a.nested(s64)? {
        let g = |t| s.u64(t).unwrap_or(0);
        return Ok(Stats {
            conns: g(stats::CONNS),
            inpkts: g(stats::INPKTS),
            outpkts: g(stats::OUTPKTS),
            inbytes: g(stats::INBYTES),
            outbytes: g(stats::OUTBYTES),
            cps: g(stats::CPS),
            inpps: g(stats::INPPS),
            outpps: g(stats::OUTPPS),
            inbps: g(stats::INBPS),
            outbps: g(stats::OUTBPS),
        });
    }
    let Some(s) = a.nested(s32)? else {
        return Ok(Stats::default());
    };
    let g = |t| u64::from(s.u32(t).unwrap_or(0));
    Ok(Stats {
        conns: g(stats::CONNS),
        inpkts: g(stats::INPKTS),
        outpkts: g(stats::OUTPKTS),
        inbytes: s.u64(stats::INBYTES).unwrap_or(0),
        outbytes: s.u64(stats::OUTBYTES).unwrap_or(0),
        cps: g(stats::CPS),
        inpps: g(stats::INPPS),
        outpps: g(stats::OUTPPS),
        inbps: g(stats::INBPS),
        outbps: g(stats::OUTBPS),
    })
}

/// One service of a GET_SERVICE dump (the attributes nested in
/// IPVS_CMD_ATTR_SERVICE). `Ok(None)`: a family or protocol the model does
/// not know (AH/ESP services); the caller leaves it out.
pub(crate) fn parse_service(a: &Attrs) -> Result<Option<(Service, Stats)>, WireError> {
    let Some(af) = Af::from_kernel(u16::from_ne_bytes(a.need(svc::AF, "address family")?)) else {
        return Ok(None);
    };
    let fwmark = a.u32(svc::FWMARK).unwrap_or(0);
    let key = if fwmark != 0 {
        ServiceKey::fwmark(af, fwmark)
    } else {
        let proto = u16::from_ne_bytes(a.need(svc::PROTOCOL, "protocol")?);
        let Some(protocol) = Protocol::from_kernel(proto) else {
            return Ok(None);
        };
        let addr = addr_from(af, a.need(svc::ADDR, "address")?);
        let port = u16::from_be_bytes(a.need(svc::PORT, "port")?);
        ServiceKey::addr(protocol, addr, port)
    };
    let sched = a.string(svc::SCHED_NAME).unwrap_or_default();
    let flags: [u8; 8] = a.need(svc::FLAGS, "flags")?;
    let flags = u32::from_ne_bytes([flags[0], flags[1], flags[2], flags[3]]);
    let timeout = a.u32(svc::TIMEOUT).unwrap_or(0);
    let netmask = netmask_from(af, a.need(svc::NETMASK, "netmask")?);
    let spec = ServiceSpec::from_kernel(sched, flags, timeout, netmask, a.string(svc::PE_NAME));
    let stats = stats_from(a, svc::STATS64, svc::STATS)?;
    Ok(Some((Service::new(key, spec), stats)))
}

/// One destination of a GET_DEST dump. `svc_af` is the family when the
/// kernel omits ADDR_FAMILY (kernels before 4.x).
pub(crate) fn parse_dest(
    a: &Attrs,
    svc_af: Af,
) -> Result<Option<(DestKey, DestSpec, DestCounters)>, WireError> {
    let af = match a.fixed::<2>(dest::ADDR_FAMILY).map(u16::from_ne_bytes) {
        Some(f) => match Af::from_kernel(f) {
            Some(af) => af,
            None => return Ok(None),
        },
        None => svc_af,
    };
    let addr = addr_from(af, a.need(dest::ADDR, "destination address")?);
    let port = u16::from_be_bytes(a.need(dest::PORT, "destination port")?);
    let fwd_raw = a.u32(dest::FWD_METHOD).unwrap_or(0);
    let Some(fwd) = Fwd::from_kernel(fwd_raw) else {
        return Ok(None);
    };
    let mut spec = DestSpec::new(fwd, a.u32(dest::WEIGHT).unwrap_or(0));
    spec.u_threshold = a.u32(dest::U_THRESH).unwrap_or(0);
    spec.l_threshold = a.u32(dest::L_THRESH).unwrap_or(0);
    // The kernel dumps the tunnel settings for every destination; they only
    // mean something with tunnel forwarding.
    if fwd == Fwd::Tunnel {
        spec.tun_type = a
            .fixed::<1>(dest::TUN_TYPE)
            .and_then(|b| TunType::from_kernel(b[0]));
        spec.tun_port = a.fixed::<2>(dest::TUN_PORT).map(u16::from_be_bytes);
        spec.tun_flags = a.fixed::<2>(dest::TUN_FLAGS).map(u16::from_ne_bytes);
        spec = spec.normalized();
    }
    let counters = DestCounters {
        active_conns: a.u32(dest::ACTIVE_CONNS).unwrap_or(0),
        inact_conns: a.u32(dest::INACT_CONNS).unwrap_or(0),
        persist_conns: a.u32(dest::PERSIST_CONNS).unwrap_or(0),
        stats: stats_from(a, dest::STATS64, dest::STATS)?,
    };
    Ok(Some((DestKey::new(addr, port), spec, counters)))
}

pub(crate) fn parse_daemon(a: &Attrs) -> Result<SyncDaemon, WireError> {
    let state = a
        .u32(daemon::STATE)
        .and_then(state_from_kernel)
        .ok_or_else(|| werr("sync daemon without a known state"))?;
    let group = match (
        a.fixed::<4>(daemon::MCAST_GROUP),
        a.fixed::<16>(daemon::MCAST_GROUP6),
    ) {
        (_, Some(g6)) => Some(IpAddr::V6(Ipv6Addr::from(g6))),
        (Some(g4), None) => Some(IpAddr::V4(Ipv4Addr::from(g4))),
        (None, None) => None,
    };
    Ok(SyncDaemon {
        state,
        ifname: a.string(daemon::MCAST_IFN).unwrap_or_default(),
        syncid: a.u32(daemon::SYNC_ID).unwrap_or(0) as u8,
        maxlen: a.fixed::<2>(daemon::SYNC_MAXLEN).map(u16::from_ne_bytes),
        port: a.fixed::<2>(daemon::MCAST_PORT).map(u16::from_ne_bytes),
        ttl: a.fixed::<1>(daemon::MCAST_TTL).map(|b| b[0]),
        group,
    })
}

/// IP_VS_STATE_MASTER / IP_VS_STATE_BACKUP: the kernel's numbers for the
/// pure [`SyncState`] of lbd-ipvs.
fn state_to_kernel(s: SyncState) -> u32 {
    match s {
        SyncState::Master => 1,
        SyncState::Backup => 2,
    }
}

fn state_from_kernel(v: u32) -> Option<SyncState> {
    match v {
        1 => Some(SyncState::Master),
        2 => Some(SyncState::Backup),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neli::ToBytes;

    fn round_trip(a: &Attr) -> Attrs {
        let mut c = Cursor::new(Vec::new());
        a.to_bytes(&mut c).unwrap();
        let outer = Attrs::parse(&c.into_inner()).unwrap();
        outer.nested(top::SERVICE).unwrap().unwrap()
    }

    #[test]
    fn service_encodes_v4_mask_big_endian_and_v6_prefix_host_order() {
        let mut spec = ServiceSpec::new("sh", Af::V4);
        spec.persistence = Some(300);
        spec.netmask = 0xffff_ff00;
        spec.flags = lbd_ipvs::IP_VS_SVC_F_SCHED_SH_PORT;
        let key = ServiceKey::addr(Protocol::Tcp, "10.0.0.1".parse().unwrap(), 80);
        let a = round_trip(&service_full(&key, &spec).unwrap());
        assert_eq!(a.get(svc::NETMASK), Some(&[255, 255, 255, 0][..]));
        assert_eq!(a.get(svc::PORT), Some(&[0, 80][..]));
        assert_eq!(a.get(svc::SCHED_NAME), Some(&b"sh\0"[..]));
        assert_eq!(a.get(svc::ADDR).map(<[u8]>::len), Some(16));
        let flags = a.get(svc::FLAGS).unwrap();
        assert_eq!(flags.len(), 8);
        assert_eq!(
            u32::from_ne_bytes(flags[..4].try_into().unwrap()),
            lbd_ipvs::IP_VS_SVC_F_PERSISTENT | lbd_ipvs::IP_VS_SVC_F_SCHED_SH_PORT
        );
        let (svc, _) = parse_service(&a).unwrap().unwrap();
        assert_eq!(svc.key, key);
        assert_eq!(svc.spec, spec);

        let mut spec6 = ServiceSpec::new("rr", Af::V6);
        spec6.persistence = Some(60);
        spec6.netmask = 64;
        let key6 = ServiceKey::addr(Protocol::Udp, "fd00::1".parse().unwrap(), 53);
        let a = round_trip(&service_full(&key6, &spec6).unwrap());
        assert_eq!(a.get(svc::NETMASK), Some(&64u32.to_ne_bytes()[..]));
        assert_eq!(parse_service(&a).unwrap().unwrap().0.spec, spec6);
    }

    #[test]
    fn overlong_scheduler_name_is_refused_before_the_kernel() {
        let key = ServiceKey::fwmark(Af::V4, 1);
        let spec = ServiceSpec::new("x".repeat(16), Af::V4);
        assert!(service_full(&key, &spec).is_err());
    }
}
