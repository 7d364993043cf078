//! The typed configuration model. Both syntaxes (lbd's TOML and
//! keepalived.conf) produce this; the daemon consumes only this.
//! Every type is `PartialEq` so a reload can diff two models.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Where a thing was written: used for warnings and errors. Equality-
/// neutral (every span equals every other, and hashes alike): a reload
/// diffs two models, and an edit that only shifts lines changes nothing.
/// Compare places with [`Span::same_place`].
#[derive(Clone, Debug)]
pub struct Span {
    /// Shared by every span of one file: a path per line would cost more
    /// than the line itself.
    pub file: Arc<Path>,
    pub line: usize,
}

impl Default for Span {
    fn default() -> Self {
        Span {
            file: Arc::from(Path::new("")),
            line: 0,
        }
    }
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

impl Eq for Span {}

impl std::hash::Hash for Span {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl Span {
    /// The same file and line (what `==` deliberately does not say).
    pub fn same_place(&self, other: &Span) -> bool {
        self.line == other.line && self.file == other.file
    }
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
    pub kind: WarningKind,
}

/// Whether the configuration still means what it says. `lbd --check` exits
/// 0 with notes only and 5 (keepalived's `-t` status for repaired errors)
/// once anything was repaired or ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WarningKind {
    /// Written unusually but read as written (e.g. `lb_kind nat`).
    Note,
    /// Something was replaced by a default, dropped or ignored.
    #[default]
    Repaired,
}

impl Warning {
    pub fn repaired(span: Span, message: impl Into<String>) -> Self {
        Warning {
            span,
            message: message.into(),
            kind: WarningKind::Repaired,
        }
    }

    pub fn note(span: Span, message: impl Into<String>) -> Self {
        Warning {
            span,
            message: message.into(),
            kind: WarningKind::Note,
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let label = match self.kind {
            WarningKind::Note => "note",
            WarningKind::Repaired => "warning",
        };
        write!(f, "{}: {label}: {}", self.span, self.message)
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Config {
    pub global: Global,
    pub instances: Vec<VrrpInstance>,
    pub sync_groups: Vec<SyncGroup>,
    /// IPVS services (keepalived `virtual_server`), in file order.
    pub virtual_servers: Vec<VirtualServer>,
    /// keepalived `virtual_server_group`, referenced by `VsTarget::Group`.
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    /// keepalived `vrrp_script`: checks whose status adjusts instances.
    pub track_scripts: Vec<TrackScript>,
    /// Notify hooks (keepalived `notify*`, `notify_fifo`, lbd `[[notify]]`).
    pub notify_hooks: Vec<NotifyHook>,
    /// keepalived checkers lbd does not run (e.g. BFD_CHECK): kept so that
    /// `--convert` shows them; their real servers are treated as up.
    pub skipped_checks: Vec<SkippedCheck>,
    /// keepalived `static_routes`: installed at start whatever the VRRP
    /// state, removed at stop.
    pub static_routes: Vec<Route>,
}

/// A keepalived checker block that has no lbd plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedCheck {
    pub span: Span,
    /// The keyword, e.g. `BFD_CHECK`.
    pub kind: String,
    /// The real server it was in (its span tells it apart in the model).
    pub rs_span: Span,
}

impl Config {
    /// Every notify hook: the configured ones, then keepalived's real
    /// server `notify_up`/`notify_down` and virtual server
    /// `quorum_up`/`quorum_down` scripts as `exec` hooks.
    pub fn all_notify_hooks(&self) -> Vec<NotifyHook> {
        let mut out = self.notify_hooks.clone();
        let hook = |span: &Span,
                    script: &str,
                    kind: &str,
                    name: String,
                    state: &str,
                    vs: Option<String>| {
            let mut options = Options::new();
            options.insert("script".into(), script.into());
            options.insert("args".into(), false.into());
            NotifyHook {
                span: span.clone(),
                plugin: "exec".into(),
                options,
                filter: NotifyFilter {
                    kinds: vec![kind.into()],
                    name: Some(name),
                    states: vec![state.into()],
                    vs: vs.clone(),
                },
            }
        };
        for vs in &self.virtual_servers {
            let vname = vs.name();
            for (s, st) in [(&vs.quorum_up, "UP"), (&vs.quorum_down, "DOWN")] {
                if let Some(s) = s {
                    out.push(hook(&vs.span, s, "VS", vname.clone(), st, None));
                }
            }
            for rs in &vs.real_servers {
                for (s, st) in [(&rs.notify_up, "UP"), (&rs.notify_down, "DOWN")] {
                    if let Some(s) = s {
                        out.push(hook(&rs.span, s, "RS", rs.addr(), st, Some(vname.clone())));
                    }
                }
            }
        }
        out
    }
}

impl VirtualServer {
    /// How logs and events name it: `ip:port`, `[v6]:port`, `fwmark N`, `group NAME`.
    pub fn name(&self) -> String {
        match &self.target {
            VsTarget::Addr { ip, port } => sock_name(ip, *port),
            VsTarget::Fwmark(m) => format!("fwmark {m}"),
            VsTarget::Group(g) => format!("group {g}"),
        }
    }
}

impl RealServer {
    /// `ip:port` (`[v6]:port`), as notify events name it.
    pub fn addr(&self) -> String {
        sock_name(&self.ip, self.port)
    }
}

fn sock_name(ip: &std::net::IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(*ip, port).to_string()
}

/// Options handed to a plugin: any JSON-like value per key.
pub type Options = serde_json::Map<String, serde_json::Value>;

/// A health check of a real server, run by a check plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckSpec {
    pub span: Span,
    /// The check plugin (keepalived HTTP_GET = `http_get`, TCP_CHECK = `tcp`, ...).
    pub plugin: String,
    pub options: Options,
    /// Its own timing; what is unset comes from the real server, then the service.
    pub timing: CheckTiming,
}

/// keepalived `vrrp_script`: a check run every `interval` whose status moves
/// the priority of the instances that track it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackScript {
    pub span: Span,
    pub name: String,
    pub plugin: String,
    pub options: Options,
    pub interval: Duration,
    pub timeout: Option<Duration>,
    /// Priority adjustment; 0 = fault while failed (keepalived).
    pub weight: i32,
    pub weight_reverse: bool,
    pub rise: u32,
    pub fall: u32,
    pub init_fail: bool,
}

/// `track_script` entry of an instance or sync group; a weight here
/// replaces the script's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackScriptRef {
    pub span: Span,
    pub name: String,
    pub weight: Option<i32>,
    pub reverse: bool,
}

/// A notify plugin and the events it gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyHook {
    pub span: Span,
    pub plugin: String,
    pub options: Options,
    pub filter: NotifyFilter,
}

/// Which events reach a hook; empty lists match everything.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NotifyFilter {
    /// INSTANCE, GROUP, RS, VS.
    pub kinds: Vec<String>,
    /// Instance, group, real server (`ip:port`) or virtual server name.
    pub name: Option<String>,
    pub states: Vec<String>,
    /// For real-server events: only those of this virtual server (a
    /// server may be in several).
    pub vs: Option<String>,
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
    /// keepalived `dynamic_interfaces`: an interface that does not exist
    /// yet is tracked as down instead of refusing to start.
    pub dynamic_interfaces: bool,
    /// keepalived `lvs_flush`: flush all of IPVS at startup (default false;
    /// lbd otherwise adopts matching entries and leaves foreign ones alone).
    pub lvs_flush: bool,
    /// keepalived `lvs_flush_on_stop` / `lvs_flush_onstop [VS]`.
    pub lvs_flush_onstop: LvsFlushOnStop,
    /// keepalived `lvs_timeouts`; `None` = leave the kernel's as they are.
    pub lvs_timeouts: Option<LvsTimeouts>,
    /// keepalived `lvs_sync_daemon`.
    pub lvs_sync_daemon: Option<LvsSyncDaemon>,
    /// Plugin directories replacing the default bundled + /etc/lb/plugins.
    pub plugin_dirs: Vec<std::path::PathBuf>,
    pub plugin_memory_limit: Option<usize>,
    pub plugin_cpu_slice: Option<Duration>,
    /// keepalived `script_user USER [GROUP]`.
    pub script_user: Option<(String, Option<String>)>,
    /// keepalived `enable_script_security`.
    pub enable_script_security: bool,
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
            dynamic_interfaces: false,
            lvs_flush: false,
            lvs_flush_onstop: LvsFlushOnStop::Off,
            lvs_timeouts: None,
            lvs_sync_daemon: None,
            plugin_dirs: Vec::new(),
            plugin_memory_limit: None,
            plugin_cpu_slice: None,
            script_user: None,
            enable_script_security: false,
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
    pub track_scripts: Vec<TrackScriptRef>,
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
    /// keepalived `virtual_routes`: added after the VIPs on becoming
    /// master, removed on leaving master and at stop.
    pub virtual_routes: Vec<Route>,
}

/// A route in `ip route` / keepalived syntax (`virtual_routes`,
/// `static_routes`). Interfaces are names: they are resolved when the
/// route is installed, so a missing one is a runtime error, not a
/// configuration one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub span: Span,
    pub kind: RouteKind,
    /// Destination network; host bits are clear (the kernel refuses others).
    pub dst: IpAddr,
    pub dst_len: u8,
    /// Preferred source address (`src`).
    pub src: Option<IpAddr>,
    /// Gateway (`via`, or keepalived's older `gw`).
    pub via: Option<IpAddr>,
    /// Output interface (`dev` / `oif`).
    pub dev: Option<String>,
    /// `None`: iproute2's choice (link for a unicast route without gateway,
    /// global otherwise).
    pub scope: Option<Scope>,
    /// Routing table number; 254 is `main`.
    pub table: u32,
    /// `metric` / `priority` / `preference`; `None` = the kernel's default.
    pub metric: Option<u32>,
    /// rtnetlink protocol; keepalived marks its routes 18 (`keepalived`).
    pub protocol: u8,
    /// `onlink`: the gateway is on the link even without a matching subnet.
    pub onlink: bool,
}

/// Route types lbd installs (iproute2's `TYPE` before the destination).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RouteKind {
    #[default]
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
}

/// The main routing table (RT_TABLE_MAIN).
pub const RT_TABLE_MAIN: u32 = 254;
/// keepalived's protocol for the routes it installs (RTPROT_KEEPALIVED).
pub const RTPROT_KEEPALIVED: u8 = 18;

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
    pub track_scripts: Vec<TrackScriptRef>,
}

/// What to remove from IPVS when lbd stops (keepalived `lvs_flush_on_stop`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LvsFlushOnStop {
    /// Default: delete each owned real server, then each owned service.
    #[default]
    Off,
    /// Bare keyword: flush the whole IPVS table (keepalived LVS_FLUSH_FULL).
    On,
    /// `VS`: delete each owned service only; the kernel drops its destinations.
    VsOnly,
}

/// Connection timeouts in whole seconds (0..=31 days); a `None` part is
/// left unchanged in the kernel, as keepalived does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LvsTimeouts {
    pub tcp: Option<u32>,
    pub tcpfin: Option<u32>,
    pub udp: Option<u32>,
}

/// The IPVS connection sync daemon. `None` fields leave the kernel default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LvsSyncDaemon {
    pub span: Span,
    /// Interface the sync messages use (`lvs_sync_daemon IFNAME`).
    pub interface: String,
    /// VRRP instance whose state it follows (master daemon while that
    /// instance is master, backup otherwise); `None` = both run always.
    pub instance: Option<String>,
    /// syncid 0..=255; `None` = the instance's VRID, or 0 without an instance.
    pub id: Option<u8>,
    /// Max sync packet payload 1..=65507 (kernel >= 4.3).
    pub maxlen: Option<u16>,
    /// UDP port (kernel default 8848).
    pub port: Option<u16>,
    /// Multicast TTL 1..=255 (kernel default 1).
    pub ttl: Option<u8>,
    /// Multicast group (kernel default 224.0.0.81).
    pub group: Option<IpAddr>,
}

impl Config {
    /// The sync daemon's effective syncid, resolved as keepalived does.
    pub fn lvs_syncid(&self) -> Option<u8> {
        let sd = self.global.lvs_sync_daemon.as_ref()?;
        Some(sd.id.unwrap_or_else(|| {
            sd.instance
                .as_ref()
                .and_then(|n| self.instances.iter().find(|i| &i.name == n))
                .map_or(0, |i| i.vrid)
        }))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpFamily {
    Inet,
    Inet6,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// What a virtual server is keyed on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum VsTarget {
    /// `virtual_server IP [PORT]`; port 0 = all ports (persistent services only).
    Addr { ip: IpAddr, port: u16 },
    /// `virtual_server fwmark N`.
    Fwmark(u32),
    /// `virtual_server group NAME`: one service per member of the group.
    Group(String),
}

/// IPVS scheduler flags (`-b` of ipvsadm). sh-*/mh-* are kept by name; in
/// the kernel sh-fallback/mh-fallback are flag-1 and sh-port/mh-port flag-2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SchedFlags {
    pub flag_1: bool,
    pub flag_2: bool,
    pub flag_3: bool,
    pub sh_port: bool,
    pub sh_fallback: bool,
    pub mh_port: bool,
    pub mh_fallback: bool,
    /// One-packet scheduling (`ops`, `-o`): UDP or fwmark services only.
    pub ops: bool,
}

/// Forwarding method (keepalived `lb_kind` / `lvs_method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbKind {
    /// Masquerading (keepalived's default).
    Nat,
    /// Direct routing (`-g`).
    Dr,
    /// IP tunnelling (`-i`), with its encapsulation.
    Tun(Tunnel),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Tunnel {
    pub kind: TunnelKind,
    pub csum: TunnelCsum,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TunnelKind {
    #[default]
    Ipip,
    /// GUE needs a UDP port (Linux >= 5.2).
    Gue {
        port: u16,
    },
    Gre,
}

/// GUE/GRE checksum option (Linux >= 5.3); ipip only allows `NoCsum`, GRE not `RemCsum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TunnelCsum {
    #[default]
    NoCsum,
    Csum,
    RemCsum,
}

/// `persistence_granularity`: an IPv4 netmask or an IPv6 prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    V4(std::net::Ipv4Addr),
    V6(u8),
}

/// Health-check timing that a virtual server passes down to its real
/// servers and they to their checkers. Recorded only: checks come later.
/// `None` = inherited; at the top keepalived's defaults apply
/// (connect_timeout 5 s, delay_loop 60 s, retry 1, warmup = delay_loop).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CheckTiming {
    pub connect_timeout: Option<Duration>,
    pub delay_loop: Option<Duration>,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<Duration>,
    pub warmup: Option<Duration>,
    /// Start with the servers considered down (`alpha`).
    pub alpha: Option<bool>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VirtualServer {
    pub span: Span,
    pub target: VsTarget,
    /// `ip_family` for fwmark services (default: the real servers' family, else inet).
    pub ip_family: Option<IpFamily>,
    /// keepalived leaves an address service without `protocol` as UDP (with
    /// a warning); ignored for fwmark services.
    pub protocol: Protocol,
    /// `lb_algo` / `lvs_sched`; keepalived default "wlc".
    pub scheduler: String,
    pub sched_flags: SchedFlags,
    /// Default forwarding of its servers (`lb_kind` / `lvs_method`, default NAT).
    pub fwd: LbKind,
    /// Seconds; `persistence_timeout` without a value (or a granularity
    /// without a timeout, or port 0) gives keepalived's 360.
    pub persistence_timeout: Option<u32>,
    pub persistence_granularity: Option<Granularity>,
    /// `persistence_engine` (only "sip" exists in the kernel).
    pub persistence_engine: Option<String>,
    /// Suspend checks while the VIP is not configured locally (`ha_suspend`).
    pub ha_suspend: bool,
    pub virtualhost: Option<String>,
    pub omega: bool,
    /// Minimum total weight of live servers (default 1).
    pub quorum: u32,
    /// Flap dampener around `quorum` (default 0, always < quorum).
    pub hysteresis: u32,
    /// Scripts (recorded; notifications come in a later issue).
    pub quorum_up: Option<String>,
    pub quorum_down: Option<String>,
    /// Default `inhibit_on_failure` of its real servers: weight 0 instead of removal.
    pub inhibit_on_failure: bool,
    /// Default weight of its real servers (`weight` at VS level, default 1).
    pub weight: u32,
    pub check: CheckTiming,
    pub sorry_server: Option<SorryServer>,
    pub real_servers: Vec<RealServer>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SorryServer {
    pub span: Span,
    pub ip: IpAddr,
    /// 0 = none (fwmark services, or the service's port).
    pub port: u16,
    /// `sorry_server_lvs_method`, else the service's.
    pub fwd: LbKind,
    /// `sorry_server_inhibit`.
    pub inhibit: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealServer {
    pub span: Span,
    pub ip: IpAddr,
    /// 0 = none: a fwmark service's real servers, or NAT to the packet's port.
    /// keepalived fills it from the service's port where it is missing.
    pub port: u16,
    /// Effective weight 0..=2147483647 (default: the service's `weight`).
    pub weight: u32,
    /// Effective forwarding (`lvs_method`, default: the service's).
    pub fwd: LbKind,
    /// Effective: on failure set weight 0 instead of removing (default: the service's).
    pub inhibit_on_failure: bool,
    /// Connection thresholds (0 = none).
    pub u_threshold: u32,
    pub l_threshold: u32,
    /// Scripts (recorded; notifications come in a later issue).
    pub notify_up: Option<String>,
    pub notify_down: Option<String>,
    pub check: CheckTiming,
    /// Health checks; up when all pass, up as well when there are none.
    pub checks: Vec<CheckSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualServerGroup {
    pub span: Span,
    pub name: String,
    pub members: Vec<VsgMember>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VsgMember {
    /// Addresses `first..=last` (one address when equal) on `port` (0 = none).
    Range {
        first: IpAddr,
        last: IpAddr,
        port: u16,
    },
    /// `fwmark N [inet|inet6]`.
    Fwmark { mark: u32, family: Option<IpFamily> },
}

/// The checker keywords keepalived knows (check_*.c).
pub const CHECKER_KINDS: &[&str] = &[
    "HTTP_GET",
    "SSL_GET",
    "TCP_CHECK",
    "MISC_CHECK",
    "SMTP_CHECK",
    "DNS_CHECK",
    "BFD_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "FILE_CHECK",
];

/// Schedulers IPVS has (keepalived's list).
pub const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos",
];
