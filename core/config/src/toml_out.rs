//! `lbd --convert`: the model written as lbd's TOML (SCHEMA.md) by serde and
//! the `toml` crate. The output types are the writer's own, apart from the
//! reader's (lbd_toml.rs): the reader takes spans and alternative forms (a VIP
//! as a string or a table), the writer picks one form per key. A key spelled
//! differently here than there fails the round-trip tests, since the reader
//! refuses unknown fields.
//!
//! Every value the model holds is written out, so no default of the reader
//! can shift it; keys at their reader default are left out where the old
//! hand-written emitter left them out, to keep the output short.
//!
//! Over 600 lines only because each output type is spelled out with its
//! constructor from the model; there is no logic beyond choosing forms.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::Serialize;

use crate::model::*;
use crate::routes::format_route;
use crate::values::{format_duration, format_vip, format_vsg_member};

/// Renders a model as lbd TOML; loading the result gives the same model
/// (spans aside). A checker the TOML cannot carry is kept as a comment
/// before its virtual server. The error is the serializer's: no value of the
/// model is out of TOML's reach, so it is not expected.
pub fn to_toml(cfg: &Config) -> Result<String, toml::ser::Error> {
    let mut o = toml::to_string_pretty(&FileOut::of(cfg))?;
    // One document per virtual server: `[[virtual_server]]` blocks append to
    // the array, so the comments can stand right before theirs.
    for v in &cfg.virtual_servers {
        o.push('\n');
        for rs in &v.real_servers {
            for s in cfg
                .skipped_checks
                .iter()
                .filter(|s| s.rs_span.same_place(&rs.span))
            {
                o.push_str(&format!(
                    "# {} ({}) is not converted: lbd does not run it, the real server is treated as up\n",
                    s.kind, s.span
                ));
            }
        }
        o.push_str(&toml::to_string_pretty(&VsDoc {
            virtual_server: [VsOut::of(v)],
        })?);
    }
    Ok(o)
}

fn dur(d: Duration) -> String {
    format_duration(d)
}

fn ver(v: VrrpVersion) -> u8 {
    match v {
        VrrpVersion::V2 => 2,
        VrrpVersion::V3 => 3,
    }
}

/// `ip`, or `ip:port` / `[ip6]:port` when there is a port.
fn server_addr(ip: IpAddr, port: u16) -> String {
    match port {
        0 => ip.to_string(),
        p => std::net::SocketAddr::new(ip, p).to_string(),
    }
}

/// A plugin's options as TOML. TOML has no null: it becomes "" (as the
/// plugins' defaults treat a missing string); an integer beyond i64 becomes
/// a float.
fn options(o: &Options) -> toml::Table {
    fn conv(v: &serde_json::Value) -> toml::Value {
        use serde_json::Value as J;
        match v {
            J::Null => toml::Value::String(String::new()),
            J::Bool(b) => toml::Value::Boolean(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => toml::Value::Integer(i),
                None => toml::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => toml::Value::String(s.clone()),
            J::Array(a) => toml::Value::Array(a.iter().map(conv).collect()),
            J::Object(m) => toml::Value::Table(options(m)),
        }
    }
    o.iter().map(|(k, v)| (k.clone(), conv(v))).collect()
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize)]
struct FileOut<'a> {
    global: GlobalOut<'a>,
    #[serde(rename = "static", skip_serializing_if = "Option::is_none")]
    static_: Option<StaticOut>,
    vrrp: VrrpOut<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    track_script: Vec<TrackScriptOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notify: Vec<NotifyOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    virtual_server_group: Vec<VsgOut<'a>>,
}

impl<'a> FileOut<'a> {
    fn of(cfg: &'a Config) -> Self {
        FileOut {
            global: GlobalOut::of(&cfg.global),
            static_: (!cfg.static_routes.is_empty()).then(|| StaticOut {
                routes: cfg.static_routes.iter().map(format_route).collect(),
            }),
            vrrp: VrrpOut {
                instance: cfg
                    .instances
                    .iter()
                    .map(|i| InstanceOut::of(i, &cfg.global))
                    .collect(),
                sync_group: cfg.sync_groups.iter().map(SyncGroupOut::of).collect(),
            },
            track_script: cfg.track_scripts.iter().map(TrackScriptOut::of).collect(),
            notify: cfg.notify_hooks.iter().map(NotifyOut::of).collect(),
            virtual_server_group: cfg
                .virtual_server_groups
                .iter()
                .map(|g| VsgOut {
                    name: &g.name,
                    members: g.members.iter().map(format_vsg_member).collect(),
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct GlobalOut<'a> {
    router_id: Option<&'a str>,
    vrrp_version: u8,
    v3_checksum_as_v2: bool,
    mcast_group4: Ipv4Addr,
    mcast_group6: Ipv6Addr,
    garp: GarpOut,
    garp_interval: String,
    gna_interval: String,
    strict: bool,
    skip_check_adv_addr: bool,
    check_unicast_src: bool,
    #[serde(skip_serializing_if = "is_false")]
    dynamic_interfaces: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    plugin_dirs: Vec<String>,
    plugin_memory_limit: Option<usize>,
    plugin_cpu_slice: Option<String>,
    script_user: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    enable_script_security: bool,
    lvs: Option<LvsOut<'a>>,
}

impl<'a> GlobalOut<'a> {
    fn of(g: &'a Global) -> Self {
        GlobalOut {
            router_id: g.router_id.as_deref(),
            vrrp_version: ver(g.vrrp_version),
            v3_checksum_as_v2: g.v3_checksum_as_v2,
            mcast_group4: g.mcast_group4,
            mcast_group6: g.mcast_group6,
            garp: GarpOut::of(&g.garp),
            garp_interval: dur(g.garp_interval),
            gna_interval: dur(g.gna_interval),
            strict: g.strict,
            skip_check_adv_addr: g.skip_check_adv_addr,
            check_unicast_src: g.check_unicast_src,
            dynamic_interfaces: g.dynamic_interfaces,
            plugin_dirs: g
                .plugin_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect(),
            plugin_memory_limit: g.plugin_memory_limit,
            plugin_cpu_slice: g.plugin_cpu_slice.map(dur),
            script_user: g.script_user.as_ref().map(|(u, grp)| match grp {
                Some(grp) => format!("{u}:{grp}"),
                None => u.clone(),
            }),
            enable_script_security: g.enable_script_security,
            lvs: LvsOut::of(g),
        }
    }
}

#[derive(Serialize)]
struct GarpOut {
    master_delay: String,
    master_repeat: u32,
    master_refresh: String,
    master_refresh_repeat: u32,
}

impl GarpOut {
    fn of(g: &Garp) -> Self {
        GarpOut {
            master_delay: dur(g.master_delay),
            master_repeat: g.master_repeat,
            master_refresh: dur(g.master_refresh),
            master_refresh_repeat: g.master_refresh_repeat,
        }
    }
}

/// `[global.lvs]`, only when something in it differs from the defaults.
#[derive(Serialize)]
struct LvsOut<'a> {
    flush: bool,
    flush_onstop: &'static str,
    timeouts: Option<TimeoutsOut>,
    sync_daemon: Option<SyncDaemonOut<'a>>,
}

impl<'a> LvsOut<'a> {
    fn of(g: &'a Global) -> Option<Self> {
        if !g.lvs_flush
            && g.lvs_flush_onstop == LvsFlushOnStop::Off
            && g.lvs_timeouts.is_none()
            && g.lvs_sync_daemon.is_none()
        {
            return None;
        }
        let secs = |s: Option<u32>| s.map(|s| format!("{s}s"));
        Some(LvsOut {
            flush: g.lvs_flush,
            flush_onstop: match g.lvs_flush_onstop {
                LvsFlushOnStop::Off => "off",
                LvsFlushOnStop::On => "on",
                LvsFlushOnStop::VsOnly => "vs",
            },
            timeouts: g.lvs_timeouts.as_ref().map(|t| TimeoutsOut {
                tcp: secs(t.tcp),
                tcpfin: secs(t.tcpfin),
                udp: secs(t.udp),
            }),
            sync_daemon: g.lvs_sync_daemon.as_ref().map(|sd| SyncDaemonOut {
                interface: &sd.interface,
                instance: sd.instance.as_deref(),
                id: sd.id,
                maxlen: sd.maxlen,
                port: sd.port,
                ttl: sd.ttl,
                group: sd.group,
            }),
        })
    }
}

#[derive(Serialize)]
struct TimeoutsOut {
    tcp: Option<String>,
    tcpfin: Option<String>,
    udp: Option<String>,
}

#[derive(Serialize)]
struct SyncDaemonOut<'a> {
    interface: &'a str,
    instance: Option<&'a str>,
    id: Option<u8>,
    maxlen: Option<u16>,
    port: Option<u16>,
    ttl: Option<u8>,
    group: Option<IpAddr>,
}

#[derive(Serialize)]
struct StaticOut {
    routes: Vec<String>,
}

#[derive(Serialize)]
struct VrrpOut<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    instance: Vec<InstanceOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sync_group: Vec<SyncGroupOut<'a>>,
}

#[derive(Serialize)]
struct InstanceOut<'a> {
    name: &'a str,
    interface: &'a str,
    vrid: u8,
    priority: u8,
    state: &'static str,
    version: u8,
    advert_int: String,
    preempt: bool,
    preempt_delay: Option<String>,
    accept: bool,
    auth: Option<AuthOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vips: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    excluded_vips: Vec<String>,
    unicast: Option<UnicastOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    track_interface: Vec<TrackIfOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    track_script: Vec<TrackRefOut<'a>>,
    #[serde(skip_serializing_if = "is_false")]
    dont_track_primary: bool,
    mcast_src: Option<IpAddr>,
    use_vmac: Option<&'a str>,
    /// Only where it differs from `[global]`'s, which the reader inherits.
    v3_checksum_as_v2: Option<bool>,
    old_unicast_checksum: Option<&'static str>,
    /// Only where it differs from `[global]`'s, which the reader inherits.
    garp: Option<GarpOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    virtual_routes: Vec<String>,
}

impl<'a> InstanceOut<'a> {
    fn of(i: &'a VrrpInstance, g: &Global) -> Self {
        InstanceOut {
            name: &i.name,
            interface: &i.interface,
            vrid: i.vrid,
            priority: i.priority,
            state: match i.initial {
                InitialState::Master => "master",
                InitialState::Backup => "backup",
            },
            version: ver(i.version),
            advert_int: dur(i.advert_int),
            preempt: i.preempt,
            preempt_delay: (!i.preempt_delay.is_zero()).then(|| dur(i.preempt_delay)),
            accept: i.accept,
            auth: i.auth.as_ref().map(|a| match a {
                Auth::Pass(p) => AuthOut {
                    kind: "pass",
                    password: p,
                },
                Auth::Ah(p) => AuthOut {
                    kind: "ah",
                    password: p,
                },
            }),
            vips: i.vips.iter().map(format_vip).collect(),
            excluded_vips: i.excluded_vips.iter().map(format_vip).collect(),
            unicast: (i.unicast_src.is_some() || !i.unicast_peers.is_empty()).then(|| UnicastOut {
                src: i.unicast_src,
                peers: &i.unicast_peers,
            }),
            track_interface: i
                .track_interfaces
                .iter()
                .map(|t| TrackIfOut {
                    name: &t.name,
                    weight: t.weight,
                })
                .collect(),
            track_script: refs(&i.track_scripts),
            dont_track_primary: i.dont_track_primary,
            mcast_src: i.mcast_src,
            use_vmac: i.use_vmac.as_deref(),
            v3_checksum_as_v2: (i.v3_checksum_as_v2 != g.v3_checksum_as_v2)
                .then_some(i.v3_checksum_as_v2),
            old_unicast_checksum: match i.old_unicast_checksum {
                OldUnicastChecksum::Auto => None,
                OldUnicastChecksum::Always => Some("always"),
                OldUnicastChecksum::Never => Some("never"),
            },
            garp: (i.garp != g.garp).then(|| GarpOut::of(&i.garp)),
            virtual_routes: i.virtual_routes.iter().map(format_route).collect(),
        }
    }
}

#[derive(Serialize)]
struct AuthOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    password: &'a str,
}

#[derive(Serialize)]
struct UnicastOut<'a> {
    src: Option<IpAddr>,
    peers: &'a [IpAddr],
}

#[derive(Serialize)]
struct TrackIfOut<'a> {
    name: &'a str,
    weight: i32,
}

#[derive(Serialize)]
struct TrackRefOut<'a> {
    name: &'a str,
    weight: Option<i32>,
    #[serde(skip_serializing_if = "is_false")]
    reverse: bool,
}

fn refs(r: &[TrackScriptRef]) -> Vec<TrackRefOut<'_>> {
    r.iter()
        .map(|r| TrackRefOut {
            name: &r.name,
            weight: r.weight,
            reverse: r.reverse,
        })
        .collect()
}

#[derive(Serialize)]
struct SyncGroupOut<'a> {
    name: &'a str,
    members: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    track_script: Vec<TrackRefOut<'a>>,
}

impl<'a> SyncGroupOut<'a> {
    fn of(sg: &'a SyncGroup) -> Self {
        SyncGroupOut {
            name: &sg.name,
            members: &sg.members,
            track_script: refs(&sg.track_scripts),
        }
    }
}

#[derive(Serialize)]
struct TrackScriptOut<'a> {
    name: &'a str,
    plugin: &'a str,
    interval: String,
    timeout: Option<String>,
    weight: i32,
    reverse: bool,
    rise: u32,
    fall: u32,
    init_fail: bool,
    #[serde(skip_serializing_if = "toml::Table::is_empty")]
    options: toml::Table,
}

impl<'a> TrackScriptOut<'a> {
    fn of(t: &'a TrackScript) -> Self {
        TrackScriptOut {
            name: &t.name,
            plugin: &t.plugin,
            interval: dur(t.interval),
            timeout: t.timeout.map(dur),
            weight: t.weight,
            reverse: t.weight_reverse,
            rise: t.rise,
            fall: t.fall,
            init_fail: t.init_fail,
            options: options(&t.options),
        }
    }
}

#[derive(Serialize)]
struct NotifyOut<'a> {
    plugin: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    kinds: &'a [String],
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    states: &'a [String],
    vs: Option<&'a str>,
    #[serde(skip_serializing_if = "toml::Table::is_empty")]
    options: toml::Table,
}

impl<'a> NotifyOut<'a> {
    fn of(n: &'a NotifyHook) -> Self {
        NotifyOut {
            plugin: &n.plugin,
            kinds: &n.filter.kinds,
            name: n.filter.name.as_deref(),
            states: &n.filter.states,
            vs: n.filter.vs.as_deref(),
            options: options(&n.options),
        }
    }
}

#[derive(Serialize)]
struct VsgOut<'a> {
    name: &'a str,
    members: Vec<String>,
}

#[derive(Serialize)]
struct VsDoc<'a> {
    virtual_server: [VsOut<'a>; 1],
}

#[derive(Serialize)]
struct VsOut<'a> {
    target: Option<String>,
    fwmark: Option<u32>,
    group: Option<&'a str>,
    ip_family: Option<&'static str>,
    protocol: &'static str,
    scheduler: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sched_flags: Vec<&'static str>,
    #[serde(flatten)]
    fwd: FwdOut,
    persistence: Option<PersistenceOut>,
    persistence_engine: Option<&'a str>,
    virtualhost: Option<&'a str>,
    quorum_up: Option<&'a str>,
    quorum_down: Option<&'a str>,
    ha_suspend: bool,
    omega: bool,
    quorum: u32,
    hysteresis: u32,
    inhibit_on_failure: bool,
    weight: u32,
    check: Option<CheckOut>,
    sorry_server: Option<SorryOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    real_server: Vec<RsOut<'a>>,
}

impl<'a> VsOut<'a> {
    fn of(v: &'a VirtualServer) -> Self {
        let (target, fwmark, group) = match &v.target {
            VsTarget::Addr { ip, port } => (Some(server_addr(*ip, *port)), None, None),
            VsTarget::Fwmark(m) => (None, Some(*m), None),
            VsTarget::Group(g) => (None, None, Some(g.as_str())),
        };
        let f = &v.sched_flags;
        VsOut {
            target,
            fwmark,
            group,
            ip_family: v.ip_family.map(|f| match f {
                IpFamily::Inet => "inet",
                IpFamily::Inet6 => "inet6",
            }),
            protocol: match v.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
                Protocol::Sctp => "sctp",
            },
            scheduler: &v.scheduler,
            sched_flags: [
                (f.flag_1, "flag-1"),
                (f.flag_2, "flag-2"),
                (f.flag_3, "flag-3"),
                (f.sh_port, "sh-port"),
                (f.sh_fallback, "sh-fallback"),
                (f.mh_port, "mh-port"),
                (f.mh_fallback, "mh-fallback"),
                (f.ops, "ops"),
            ]
            .into_iter()
            .filter_map(|(on, n)| on.then_some(n))
            .collect(),
            fwd: FwdOut::of(&v.fwd),
            persistence: (v.persistence_timeout.is_some() || v.persistence_granularity.is_some())
                .then(|| PersistenceOut {
                    timeout: v.persistence_timeout.map(|t| format!("{t}s")),
                    granularity: v.persistence_granularity.map(|g| match g {
                        Granularity::V4(m) => m.to_string(),
                        Granularity::V6(b) => b.to_string(),
                    }),
                }),
            persistence_engine: v.persistence_engine.as_deref(),
            virtualhost: v.virtualhost.as_deref(),
            quorum_up: v.quorum_up.as_deref(),
            quorum_down: v.quorum_down.as_deref(),
            ha_suspend: v.ha_suspend,
            omega: v.omega,
            quorum: v.quorum,
            hysteresis: v.hysteresis,
            inhibit_on_failure: v.inhibit_on_failure,
            weight: v.weight,
            check: CheckOut::of(&v.check),
            sorry_server: v.sorry_server.as_ref().map(|s| SorryOut {
                addr: server_addr(s.ip, s.port),
                fwd: FwdOut::of(&s.fwd),
                inhibit: s.inhibit,
            }),
            real_server: v.real_servers.iter().map(RsOut::of).collect(),
        }
    }
}

/// `forwarding = ...` and, for tunnels, `tunnel = {...}`, beside the other
/// keys of a virtual, sorry or real server.
#[derive(Serialize)]
struct FwdOut {
    forwarding: &'static str,
    tunnel: Option<TunnelOut>,
}

impl FwdOut {
    fn of(f: &LbKind) -> Self {
        let (forwarding, tunnel) = match f {
            LbKind::Nat => ("nat", None),
            LbKind::Dr => ("dr", None),
            LbKind::Tun(t) => {
                let (kind, port) = match t.kind {
                    TunnelKind::Ipip => ("ipip", None),
                    TunnelKind::Gue { port } => ("gue", Some(port)),
                    TunnelKind::Gre => ("gre", None),
                };
                let csum = match t.csum {
                    TunnelCsum::NoCsum => "nocsum",
                    TunnelCsum::Csum => "csum",
                    TunnelCsum::RemCsum => "remcsum",
                };
                ("tun", Some(TunnelOut { kind, port, csum }))
            }
        };
        FwdOut { forwarding, tunnel }
    }
}

#[derive(Serialize)]
struct TunnelOut {
    #[serde(rename = "type")]
    kind: &'static str,
    port: Option<u16>,
    csum: &'static str,
}

#[derive(Serialize)]
struct PersistenceOut {
    timeout: Option<String>,
    granularity: Option<String>,
}

#[derive(Serialize)]
struct SorryOut {
    addr: String,
    #[serde(flatten)]
    fwd: FwdOut,
    inhibit: bool,
}

/// The `check` timing keys; None when none is set.
#[derive(Serialize)]
struct CheckOut {
    connect_timeout: Option<String>,
    delay_loop: Option<String>,
    delay_before_retry: Option<String>,
    warmup: Option<String>,
    retry: Option<u32>,
    alpha: Option<bool>,
}

impl CheckOut {
    fn of(c: &CheckTiming) -> Option<Self> {
        (*c != CheckTiming::default()).then(|| Self::all(c))
    }

    fn all(c: &CheckTiming) -> Self {
        CheckOut {
            connect_timeout: c.connect_timeout.map(dur),
            delay_loop: c.delay_loop.map(dur),
            delay_before_retry: c.delay_before_retry.map(dur),
            warmup: c.warmup.map(dur),
            retry: c.retry,
            alpha: c.alpha,
        }
    }
}

#[derive(Serialize)]
struct RsOut<'a> {
    addr: String,
    weight: u32,
    #[serde(flatten)]
    fwd: FwdOut,
    inhibit_on_failure: bool,
    #[serde(skip_serializing_if = "is_zero")]
    u_threshold: u32,
    #[serde(skip_serializing_if = "is_zero")]
    l_threshold: u32,
    notify_up: Option<&'a str>,
    notify_down: Option<&'a str>,
    check: Option<CheckOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checks: Vec<CheckSpecOut<'a>>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl<'a> RsOut<'a> {
    fn of(r: &'a RealServer) -> Self {
        RsOut {
            addr: server_addr(r.ip, r.port),
            weight: r.weight,
            fwd: FwdOut::of(&r.fwd),
            inhibit_on_failure: r.inhibit_on_failure,
            u_threshold: r.u_threshold,
            l_threshold: r.l_threshold,
            notify_up: r.notify_up.as_deref(),
            notify_down: r.notify_down.as_deref(),
            check: CheckOut::of(&r.check),
            checks: r
                .checks
                .iter()
                .map(|c| CheckSpecOut {
                    plugin: &c.plugin,
                    timing: CheckOut::all(&c.timing),
                    options: options(&c.options),
                })
                .collect(),
        }
    }
}

/// One check of a real server: its timing keys sit beside plugin and options.
#[derive(Serialize)]
struct CheckSpecOut<'a> {
    plugin: &'a str,
    #[serde(flatten)]
    timing: CheckOut,
    #[serde(skip_serializing_if = "toml::Table::is_empty")]
    options: toml::Table,
}
