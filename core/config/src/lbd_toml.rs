//! lbd's own TOML syntax (see SCHEMA.md) and the renderer used to convert
//! a keepalived.conf into it. Unknown fields are errors, with a line.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use crate::error::Errors;
use crate::limits::{toml_too_deep, too_big, MAX_TOML_BYTES, MAX_TOML_DEPTH};
use crate::model::*;
use crate::values::*;
use crate::ConfigError;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileT {
    #[serde(default)]
    global: GlobalT,
    #[serde(default)]
    vrrp: VrrpT,
    #[serde(default)]
    virtual_server: Vec<Spanned<VsT>>,
    #[serde(default)]
    virtual_server_group: Vec<VsgT>,
    #[serde(default)]
    track_script: Vec<Spanned<TrackScriptT>>,
    #[serde(default)]
    notify: Vec<Spanned<NotifyT>>,
    #[serde(default, rename = "static")]
    static_: StaticT,
}

/// `[static]`: what is installed whatever the VRRP state (keepalived's
/// `static_routes`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StaticT {
    #[serde(default)]
    routes: Vec<Spanned<RouteT>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackScriptT {
    name: String,
    plugin: String,
    #[serde(default)]
    options: toml::Table,
    interval: Option<Dur>,
    timeout: Option<Dur>,
    weight: Option<i32>,
    reverse: Option<bool>,
    rise: Option<u32>,
    fall: Option<u32>,
    init_fail: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackRefT {
    name: String,
    weight: Option<i32>,
    reverse: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyT {
    plugin: String,
    #[serde(default)]
    options: toml::Table,
    #[serde(default)]
    kinds: Vec<String>,
    name: Option<String>,
    #[serde(default)]
    states: Vec<String>,
    vs: Option<String>,
}

/// A plugin's options: TOML values as JSON (dates become strings).
fn options_of(t: toml::Table) -> Options {
    fn conv(v: toml::Value) -> serde_json::Value {
        use serde_json::Value as J;
        match v {
            toml::Value::String(s) => J::String(s),
            toml::Value::Integer(i) => J::from(i),
            toml::Value::Float(f) => J::from(f),
            toml::Value::Boolean(b) => J::Bool(b),
            toml::Value::Datetime(d) => J::String(d.to_string()),
            toml::Value::Array(a) => J::Array(a.into_iter().map(conv).collect()),
            toml::Value::Table(t) => J::Object(t.into_iter().map(|(k, v)| (k, conv(v))).collect()),
        }
    }
    t.into_iter().map(|(k, v)| (k, conv(v))).collect()
}

fn track_refs(refs: Vec<TrackRefT>, span: &Span) -> Vec<TrackScriptRef> {
    refs.into_iter()
        .map(|r| TrackScriptRef {
            span: span.clone(),
            name: r.name,
            weight: r.weight,
            reverse: r.reverse.unwrap_or(false),
        })
        .collect()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LvsT {
    flush: Option<bool>,
    flush_onstop: Option<FlushT>,
    timeouts: Option<TimeoutsT>,
    sync_daemon: Option<Spanned<SyncDaemonT>>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum FlushT {
    Off,
    On,
    Vs,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeoutsT {
    tcp: Option<Spanned<Dur>>,
    tcpfin: Option<Spanned<Dur>>,
    udp: Option<Spanned<Dur>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncDaemonT {
    interface: String,
    instance: Option<String>,
    id: Option<u8>,
    maxlen: Option<u16>,
    port: Option<u16>,
    ttl: Option<u8>,
    group: Option<IpAddr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VsT {
    target: Option<Spanned<String>>,
    fwmark: Option<u32>,
    group: Option<String>,
    ip_family: Option<FamilyT>,
    protocol: Option<ProtoT>,
    scheduler: Option<String>,
    #[serde(default)]
    sched_flags: Vec<Spanned<String>>,
    forwarding: Option<FwdT>,
    tunnel: Option<TunnelT>,
    persistence: Option<PersistenceT>,
    persistence_engine: Option<String>,
    ha_suspend: Option<bool>,
    virtualhost: Option<String>,
    omega: Option<bool>,
    quorum: Option<u32>,
    hysteresis: Option<u32>,
    quorum_up: Option<String>,
    quorum_down: Option<String>,
    inhibit_on_failure: Option<bool>,
    weight: Option<u32>,
    check: Option<CheckT>,
    sorry_server: Option<Spanned<SorryT>>,
    #[serde(default)]
    real_server: Vec<Spanned<RsT>>,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum FamilyT {
    Inet,
    Inet6,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ProtoT {
    Tcp,
    Udp,
    Sctp,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum FwdT {
    Nat,
    Dr,
    Tun,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct TunnelT {
    #[serde(rename = "type")]
    kind: Option<TunKindT>,
    port: Option<u16>,
    csum: Option<CsumT>,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum TunKindT {
    Ipip,
    Gue,
    Gre,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum CsumT {
    Nocsum,
    Csum,
    Remcsum,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersistenceT {
    timeout: Option<Spanned<Dur>>,
    granularity: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CheckT {
    connect_timeout: Option<Dur>,
    delay_loop: Option<Dur>,
    retry: Option<u32>,
    delay_before_retry: Option<Dur>,
    warmup: Option<Dur>,
    alpha: Option<bool>,
}

impl CheckT {
    fn into_model(self) -> CheckTiming {
        CheckTiming {
            connect_timeout: self.connect_timeout.map(|d| d.0),
            delay_loop: self.delay_loop.map(|d| d.0),
            retry: self.retry,
            delay_before_retry: self.delay_before_retry.map(|d| d.0),
            warmup: self.warmup.map(|d| d.0),
            alpha: self.alpha,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SorryT {
    addr: String,
    forwarding: Option<FwdT>,
    tunnel: Option<TunnelT>,
    inhibit: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RsT {
    addr: String,
    weight: Option<u32>,
    forwarding: Option<FwdT>,
    tunnel: Option<TunnelT>,
    inhibit_on_failure: Option<bool>,
    u_threshold: Option<u32>,
    l_threshold: Option<u32>,
    notify_up: Option<String>,
    notify_down: Option<String>,
    check: Option<CheckT>,
    #[serde(default)]
    checks: Vec<CheckSpecT>,
}

/// One health check of a real server: the plugin, its options and its
/// own timing (the `check` timing keys).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckSpecT {
    plugin: String,
    #[serde(default)]
    options: toml::Table,
    connect_timeout: Option<Dur>,
    delay_loop: Option<Dur>,
    retry: Option<u32>,
    delay_before_retry: Option<Dur>,
    warmup: Option<Dur>,
    alpha: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VsgT {
    name: Spanned<String>,
    members: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GlobalT {
    router_id: Option<String>,
    vrrp_version: Option<Ver>,
    v3_checksum_as_v2: Option<bool>,
    mcast_group4: Option<Spanned<Ipv4Addr>>,
    mcast_group6: Option<Spanned<Ipv6Addr>>,
    garp: Option<GarpT>,
    garp_interval: Option<Dur>,
    gna_interval: Option<Dur>,
    strict: Option<bool>,
    skip_check_adv_addr: Option<bool>,
    check_unicast_src: Option<bool>,
    dynamic_interfaces: Option<bool>,
    lvs: Option<LvsT>,
    plugin_dirs: Option<Vec<std::path::PathBuf>>,
    plugin_memory_limit: Option<usize>,
    plugin_cpu_slice: Option<Dur>,
    /// "user" or "user:group".
    script_user: Option<String>,
    enable_script_security: Option<bool>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct GarpT {
    master_delay: Option<Dur>,
    master_repeat: Option<u32>,
    master_refresh: Option<Dur>,
    master_refresh_repeat: Option<u32>,
}

impl GarpT {
    fn over(self, base: Garp) -> Garp {
        Garp {
            master_delay: self.master_delay.map_or(base.master_delay, |d| d.0),
            master_repeat: self.master_repeat.unwrap_or(base.master_repeat),
            master_refresh: self.master_refresh.map_or(base.master_refresh, |d| d.0),
            master_refresh_repeat: self
                .master_refresh_repeat
                .unwrap_or(base.master_refresh_repeat),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct VrrpT {
    #[serde(default)]
    instance: Vec<InstanceT>,
    #[serde(default)]
    sync_group: Vec<SyncGroupT>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstanceT {
    name: Spanned<String>,
    interface: String,
    vrid: Spanned<i64>,
    priority: Option<Spanned<i64>>,
    advert_int: Option<Dur>,
    version: Option<Ver>,
    state: Option<StateT>,
    preempt: Option<bool>,
    preempt_delay: Option<Dur>,
    accept: Option<bool>,
    auth: Option<AuthT>,
    #[serde(default)]
    vips: Vec<Spanned<VipT>>,
    #[serde(default)]
    excluded_vips: Vec<Spanned<VipT>>,
    unicast: Option<UnicastT>,
    #[serde(default)]
    track_interface: Vec<TrackT>,
    #[serde(default)]
    track_script: Vec<TrackRefT>,
    dont_track_primary: Option<bool>,
    garp: Option<GarpT>,
    mcast_src: Option<IpAddr>,
    use_vmac: Option<String>,
    v3_checksum_as_v2: Option<bool>,
    old_unicast_checksum: Option<OldUnicastChecksumT>,
    #[serde(default)]
    virtual_routes: Vec<Spanned<RouteT>>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum OldUnicastChecksumT {
    Auto,
    Always,
    Never,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncGroupT {
    name: Spanned<String>,
    members: Vec<String>,
    #[serde(default)]
    track_script: Vec<TrackRefT>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnicastT {
    src: Option<IpAddr>,
    #[serde(default)]
    peers: Vec<IpAddr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthT {
    #[serde(rename = "type")]
    kind: AuthKind,
    password: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum AuthKind {
    Pass,
    Ah,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum StateT {
    Master,
    Backup,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(try_from = "String")]
struct Dur(Duration);

impl TryFrom<String> for Dur {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        parse_duration(&s).map(Dur)
    }
}

#[derive(Deserialize, Clone, Copy)]
#[serde(try_from = "u8")]
struct Ver(VrrpVersion);

impl TryFrom<u8> for Ver {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        match v {
            2 => Ok(Ver(VrrpVersion::V2)),
            3 => Ok(Ver(VrrpVersion::V3)),
            _ => Err(format!("invalid VRRP version {v}: expected 2 or 3")),
        }
    }
}

/// A VIP: the keepalived-style string or a table with the same parts.
struct VipT(Vec<String>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VipTable {
    addr: String,
    dev: Option<String>,
    label: Option<String>,
    scope: Option<String>,
    brd: Option<String>,
}

impl<'de> Deserialize<'de> for VipT {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = VipT;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a VIP string like \"192.168.1.10/24 dev eth0\" or a table { addr = ..., dev = ... }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<VipT, E> {
                Ok(VipT(s.split_whitespace().map(String::from).collect()))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<VipT, A::Error> {
                let t = VipTable::deserialize(de::value::MapAccessDeserializer::new(m))?;
                // Rebuilt as words so both forms go through one parser.
                let mut w = vec![t.addr];
                for (k, v) in [
                    ("dev", t.dev),
                    ("label", t.label),
                    ("scope", t.scope),
                    ("brd", t.brd),
                ] {
                    if let Some(v) = v {
                        w.push(k.into());
                        w.push(v);
                    }
                }
                Ok(VipT(w))
            }
        }
        d.deserialize_any(V)
    }
}

/// A tracked interface: "eth1" or { name = "eth1", weight = -20 }.
struct TrackT(TrackInterface);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackTable {
    name: String,
    #[serde(default)]
    weight: i32,
}

impl<'de> Deserialize<'de> for TrackT {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TrackT;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an interface name or a table { name = ..., weight = ... }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<TrackT, E> {
                Ok(TrackT(TrackInterface {
                    name: s.into(),
                    weight: 0,
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<TrackT, A::Error> {
                let t = TrackTable::deserialize(de::value::MapAccessDeserializer::new(m))?;
                Ok(TrackT(TrackInterface {
                    name: t.name,
                    weight: t.weight,
                }))
            }
        }
        d.deserialize_any(V)
    }
}

/// A route: the `ip route` string or a table with the same parts.
struct RouteT(Vec<String>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteTable {
    to: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    src: Option<String>,
    via: Option<String>,
    dev: Option<String>,
    scope: Option<String>,
    table: Option<NumOrName>,
    metric: Option<u32>,
    protocol: Option<NumOrName>,
    #[serde(default)]
    onlink: bool,
}

/// `table = 100` or `table = "main"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrName {
    Num(u32),
    Name(String),
}

impl NumOrName {
    fn word(self) -> String {
        match self {
            NumOrName::Num(n) => n.to_string(),
            NumOrName::Name(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for RouteT {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RouteT;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a route string like \"10.1.0.0/16 via 10.0.0.254 dev eth0\" or a table { to = ..., via = ... }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RouteT, E> {
                Ok(RouteT(s.split_whitespace().map(String::from).collect()))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<RouteT, A::Error> {
                let t = RouteTable::deserialize(de::value::MapAccessDeserializer::new(m))?;
                // Rebuilt as words so both forms go through one parser.
                let mut w = Vec::new();
                w.extend(t.kind);
                w.push(t.to);
                for (k, v) in [
                    ("src", t.src),
                    ("via", t.via),
                    ("dev", t.dev),
                    ("scope", t.scope),
                    ("table", t.table.map(NumOrName::word)),
                    ("metric", t.metric.map(|m| m.to_string())),
                    ("protocol", t.protocol.map(NumOrName::word)),
                ] {
                    if let Some(v) = v {
                        w.push(k.into());
                        w.push(v);
                    }
                }
                if t.onlink {
                    w.push("onlink".into());
                }
                Ok(RouteT(w))
            }
        }
        d.deserialize_any(V)
    }
}

/// Routes of lbd's own syntax: anything the keepalived reader would skip
/// with a warning is an error here (TOML is strict).
fn route_list(
    list: Vec<Spanned<RouteT>>,
    span_at: &dyn Fn(usize) -> Span,
    errs: &mut Errors,
) -> Vec<Route> {
    let mut out = Vec::new();
    for r in list {
        let rspan = span_at(r.span().start);
        match crate::routes::parse_route_words(&r.get_ref().0, &rspan) {
            Ok((route, _)) => out.push(route),
            Err(e) => errs.push(
                &rspan,
                format!("invalid route {:?}: {e}", r.get_ref().0.join(" ")),
            ),
        }
    }
    out
}

/// Byte offsets of the line starts, so a span's line is a binary search:
/// counting newlines from the start for each span was quadratic (minutes
/// for 5000 virtual servers).
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Lines {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Lines(starts)
    }

    /// 1-based line of `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.0.partition_point(|&s| s <= offset).max(1)
    }
}

pub(crate) fn parse(text: &str, file: &Path) -> Result<(Config, Vec<Warning>), ConfigError> {
    let file: Arc<Path> = Arc::from(file);
    let at_line = |line: usize, msg: String| {
        ConfigError::single(
            Span {
                file: file.clone(),
                line,
            },
            msg,
        )
    };
    if text.len() as u64 > MAX_TOML_BYTES {
        return Err(at_line(0, too_big(&file, MAX_TOML_BYTES, MAX_TOML_BYTES)));
    }
    let lines = Lines::new(text);
    // Checked before the toml crate sees the text: its values (and ours,
    // built from them) are recursive types, walked and dropped by recursion.
    if let Some(off) = toml_too_deep(text, MAX_TOML_DEPTH) {
        return Err(at_line(
            lines.line_of(off),
            format!("arrays, tables and dotted keys nested deeper than {MAX_TOML_DEPTH} levels (the limit)"),
        ));
    }
    let span_at = |off: usize| Span {
        file: file.clone(),
        line: lines.line_of(off),
    };
    let f: FileT = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |r| lines.line_of(r.start));
        at_line(line, e.message().trim().to_string())
    })?;
    let mut errs = Errors::default();
    let gt = f.global;
    let mut g = Global {
        router_id: gt.router_id,
        ..Global::default()
    };
    if let Some(v) = gt.vrrp_version {
        g.vrrp_version = v.0;
    }
    g.v3_checksum_as_v2 = gt.v3_checksum_as_v2.unwrap_or(false);
    if let Some(m) = gt.mcast_group4 {
        if !m.get_ref().is_multicast() {
            errs.push(
                &span_at(m.span().start),
                format!("mcast_group4 {} is not a multicast address", m.get_ref()),
            );
        }
        g.mcast_group4 = m.into_inner();
    }
    if let Some(m) = gt.mcast_group6 {
        if !m.get_ref().is_multicast() {
            errs.push(
                &span_at(m.span().start),
                format!("mcast_group6 {} is not a multicast address", m.get_ref()),
            );
        }
        g.mcast_group6 = m.into_inner();
    }
    g.garp = gt.garp.unwrap_or_default().over(Garp::default());
    g.garp_interval = gt.garp_interval.map_or(Duration::ZERO, |d| d.0);
    g.gna_interval = gt.gna_interval.map_or(Duration::ZERO, |d| d.0);
    g.strict = gt.strict.unwrap_or(false);
    g.skip_check_adv_addr = gt.skip_check_adv_addr.unwrap_or(false);
    g.check_unicast_src = gt.check_unicast_src.unwrap_or(false);
    g.dynamic_interfaces = gt.dynamic_interfaces.unwrap_or(false);
    g.plugin_dirs = gt.plugin_dirs.unwrap_or_default();
    g.plugin_memory_limit = gt.plugin_memory_limit;
    g.plugin_cpu_slice = gt.plugin_cpu_slice.map(|d| d.0);
    g.script_user = gt.script_user.map(|u| match u.split_once(':') {
        Some((u, g)) => (u.to_string(), Some(g.to_string())),
        None => (u, None),
    });
    g.enable_script_security = gt.enable_script_security.unwrap_or(false);

    if let Some(l) = gt.lvs {
        g.lvs_flush = l.flush.unwrap_or(false);
        g.lvs_flush_onstop = match l.flush_onstop {
            None | Some(FlushT::Off) => LvsFlushOnStop::Off,
            Some(FlushT::On) => LvsFlushOnStop::On,
            Some(FlushT::Vs) => LvsFlushOnStop::VsOnly,
        };
        g.lvs_timeouts = l.timeouts.map(|t| {
            let mut sec = |d: Option<Spanned<Dur>>| {
                d.and_then(|d| whole_secs(&d, "lvs timeout", &span_at, &mut errs))
            };
            LvsTimeouts {
                tcp: sec(t.tcp),
                tcpfin: sec(t.tcpfin),
                udp: sec(t.udp),
            }
        });
        g.lvs_sync_daemon = l.sync_daemon.map(|sd| {
            let span = span_at(sd.span().start);
            let sd = sd.into_inner();
            LvsSyncDaemon {
                span,
                interface: sd.interface,
                instance: sd.instance,
                id: sd.id,
                maxlen: sd.maxlen,
                port: sd.port,
                ttl: sd.ttl,
                group: sd.group,
            }
        });
    }
    let mut cfg = Config {
        global: g,
        instances: Vec::new(),
        sync_groups: Vec::new(),
        virtual_servers: Vec::new(),
        virtual_server_groups: Vec::new(),
        track_scripts: Vec::new(),
        notify_hooks: Vec::new(),
        skipped_checks: Vec::new(),
        static_routes: Vec::new(),
    };
    cfg.static_routes = route_list(f.static_.routes, &span_at, &mut errs);
    for t in f.track_script {
        let span = span_at(t.span().start);
        let t = t.into_inner();
        cfg.track_scripts.push(TrackScript {
            span,
            name: t.name,
            plugin: t.plugin,
            options: options_of(t.options),
            interval: t.interval.map_or(Duration::from_secs(1), |d| d.0),
            timeout: t.timeout.map(|d| d.0),
            weight: t.weight.unwrap_or(0),
            weight_reverse: t.reverse.unwrap_or(false),
            rise: t.rise.unwrap_or(1),
            fall: t.fall.unwrap_or(1),
            init_fail: t.init_fail.unwrap_or(false),
        });
    }
    for n in f.notify {
        let span = span_at(n.span().start);
        let n = n.into_inner();
        cfg.notify_hooks.push(NotifyHook {
            span,
            plugin: n.plugin,
            options: options_of(n.options),
            filter: NotifyFilter {
                kinds: n.kinds.iter().map(|k| k.to_ascii_uppercase()).collect(),
                name: n.name,
                states: n.states.iter().map(|k| k.to_ascii_uppercase()).collect(),
                vs: n.vs,
            },
        });
    }
    let warnings = Vec::new();
    for vg in f.virtual_server_group {
        let span = span_at(vg.name.span().start);
        let mut members = Vec::new();
        for m in vg.members {
            let words: Vec<String> = m.get_ref().split_whitespace().map(String::from).collect();
            match parse_vsg_member(&words) {
                Ok(x) => members.push(x),
                Err(e) => errs.push(&span_at(m.span().start), e),
            }
        }
        cfg.virtual_server_groups.push(VirtualServerGroup {
            span,
            name: vg.name.into_inner(),
            members,
        });
    }
    for v in f.virtual_server {
        if let Some(vs) = virtual_server(v, &span_at, &mut errs) {
            cfg.virtual_servers.push(vs);
        }
    }
    for it in f.vrrp.instance {
        let span = span_at(it.name.span().start);
        let name = it.name.into_inner();
        let vrid = match u8::try_from(*it.vrid.get_ref()) {
            Ok(v) if v >= 1 => v,
            _ => {
                errs.push(
                    &span_at(it.vrid.span().start),
                    format!("vrid {} out of range: expected 1..=255", it.vrid.get_ref()),
                );
                continue;
            }
        };
        let priority = match &it.priority {
            None => 100,
            Some(p) => match u8::try_from(*p.get_ref()) {
                Ok(v) if v >= 1 => v,
                _ => {
                    errs.push(
                        &span_at(p.span().start),
                        format!("priority {} out of range: expected 1..=255", p.get_ref()),
                    );
                    continue;
                }
            },
        };
        let vip_list = |list: Vec<Spanned<VipT>>, errs: &mut Errors| {
            let mut out = Vec::new();
            for v in list {
                let vspan = span_at(v.span().start);
                match parse_vip_words(&v.get_ref().0, &vspan) {
                    Ok((vip, warns)) => {
                        // The options that warn in keepalived.conf are not part of lbd's own syntax.
                        if let Some(w) = warns.first() {
                            errs.push(
                                &vspan,
                                w.replace(" is not supported yet (ignored)", " is not supported"),
                            );
                        } else {
                            out.push(vip);
                        }
                    }
                    Err(e) => errs.push(&vspan, e),
                }
            }
            out
        };
        let vips = vip_list(it.vips, &mut errs);
        let excluded_vips = vip_list(it.excluded_vips, &mut errs);
        let g = &cfg.global;
        let (unicast_src, unicast_peers) = match it.unicast {
            Some(u) => (u.src, u.peers),
            None => (None, Vec::new()),
        };
        let initial = match it.state {
            Some(StateT::Master) => InitialState::Master,
            Some(StateT::Backup) => InitialState::Backup,
            None if priority == 255 => InitialState::Master,
            None => InitialState::Backup,
        };
        let track_span = span.clone();
        let virtual_routes = route_list(it.virtual_routes, &span_at, &mut errs);
        let mut inst = VrrpInstance {
            name,
            span,
            interface: it.interface,
            vrid,
            priority,
            advert_int: it.advert_int.map_or(Duration::from_secs(1), |d| d.0),
            version: VrrpVersion::V2,
            initial,
            preempt: it.preempt.unwrap_or(true),
            preempt_delay: it.preempt_delay.map_or(Duration::ZERO, |d| d.0),
            accept: it.accept.unwrap_or(priority == 255 || !g.strict),
            auth: it.auth.map(|a| match a.kind {
                AuthKind::Pass => Auth::Pass(a.password),
                AuthKind::Ah => Auth::Ah(a.password),
            }),
            vips,
            excluded_vips,
            unicast_src,
            unicast_peers,
            track_interfaces: it.track_interface.into_iter().map(|t| t.0).collect(),
            track_scripts: track_refs(it.track_script, &track_span),
            dont_track_primary: it.dont_track_primary.unwrap_or(false),
            garp: it.garp.unwrap_or_default().over(g.garp),
            mcast_src: it.mcast_src,
            use_vmac: it.use_vmac,
            v3_checksum_as_v2: it.v3_checksum_as_v2.unwrap_or(g.v3_checksum_as_v2),
            old_unicast_checksum: match it.old_unicast_checksum {
                None | Some(OldUnicastChecksumT::Auto) => OldUnicastChecksum::Auto,
                Some(OldUnicastChecksumT::Always) => OldUnicastChecksum::Always,
                Some(OldUnicastChecksumT::Never) => OldUnicastChecksum::Never,
            },
            virtual_routes,
        };
        inst.version = it.version.map_or(
            if inst.is_ipv6() {
                VrrpVersion::V3
            } else {
                g.vrrp_version
            },
            |v| v.0,
        );
        cfg.instances.push(inst);
    }
    for sg in f.vrrp.sync_group {
        let span = span_at(sg.name.span().start);
        cfg.sync_groups.push(SyncGroup {
            track_scripts: track_refs(sg.track_script, &span),
            span,
            name: sg.name.into_inner(),
            members: sg.members,
        });
    }
    errs.into_result()?;
    Ok((cfg, warnings))
}

/// A duration that IPVS takes in whole seconds.
fn whole_secs(
    d: &Spanned<Dur>,
    what: &str,
    span_at: &dyn Fn(usize) -> Span,
    errs: &mut Errors,
) -> Option<u32> {
    let v = d.get_ref().0;
    match u32::try_from(v.as_secs()) {
        Ok(s) if v.subsec_nanos() == 0 => Some(s),
        _ => {
            errs.push(
                &span_at(d.span().start),
                format!("{what} {v:?} must be whole seconds"),
            );
            None
        }
    }
}

fn fwd_of(f: Option<FwdT>, t: Option<TunnelT>, dflt: LbKind) -> Result<LbKind, String> {
    let tunnel = |t: Option<TunnelT>| -> Result<Tunnel, String> {
        let t = t.unwrap_or(TunnelT {
            kind: None,
            port: None,
            csum: None,
        });
        let kind = match (t.kind.unwrap_or(TunKindT::Ipip), t.port) {
            (TunKindT::Gue, Some(p)) if p > 0 => TunnelKind::Gue { port: p },
            (TunKindT::Ipip, None) => TunnelKind::Ipip,
            (TunKindT::Gre, None) => TunnelKind::Gre,
            _ => return Err("tunnel: gue needs a port 1..=65535, ipip and gre take none".into()),
        };
        let csum = match t.csum {
            None | Some(CsumT::Nocsum) => TunnelCsum::NoCsum,
            Some(CsumT::Csum) => TunnelCsum::Csum,
            Some(CsumT::Remcsum) => TunnelCsum::RemCsum,
        };
        Ok(Tunnel { kind, csum })
    };
    match (f, t) {
        (Some(FwdT::Nat), None) => Ok(LbKind::Nat),
        (Some(FwdT::Dr), None) => Ok(LbKind::Dr),
        (Some(FwdT::Tun), t) => Ok(LbKind::Tun(tunnel(t)?)),
        (None, None) => Ok(dflt),
        (None, t) if matches!(dflt, LbKind::Tun(_)) => Ok(LbKind::Tun(tunnel(t)?)),
        _ => Err("tunnel options need forwarding = \"tun\"".into()),
    }
}

/// "IP", "IP:PORT" or "[IPv6]:PORT"; a missing port is 0.
fn parse_server_addr(s: &str) -> Result<(IpAddr, u16), String> {
    if let Ok(a) = s.parse::<IpAddr>() {
        return Ok((a, 0));
    }
    s.parse::<std::net::SocketAddr>()
        .map(|sa| (sa.ip(), sa.port()))
        .map_err(|_| format!("invalid address {s:?}: expected IP, IP:PORT or [IPv6]:PORT"))
}

fn virtual_server(
    v: Spanned<VsT>,
    span_at: &dyn Fn(usize) -> Span,
    errs: &mut Errors,
) -> Option<VirtualServer> {
    let span = span_at(v.span().start);
    let v = v.into_inner();
    let target = match (&v.target, v.fwmark, &v.group) {
        (Some(t), None, None) => match parse_server_addr(t.get_ref()) {
            Ok((ip, port)) => VsTarget::Addr { ip, port },
            Err(e) => {
                errs.push(&span_at(t.span().start), format!("target: {e}"));
                return None;
            }
        },
        (None, Some(m), None) => VsTarget::Fwmark(m),
        (None, None, Some(g)) => VsTarget::Group(g.clone()),
        _ => {
            errs.push(
                &span,
                "virtual_server: expected exactly one of target, fwmark or group",
            );
            return None;
        }
    };
    let fwd = match fwd_of(v.forwarding, v.tunnel, LbKind::Nat) {
        Ok(f) => f,
        Err(e) => {
            errs.push(&span, e);
            return None;
        }
    };
    let mut flags = SchedFlags::default();
    for f in &v.sched_flags {
        let slot = match f.get_ref().as_str() {
            "flag-1" => &mut flags.flag_1,
            "flag-2" => &mut flags.flag_2,
            "flag-3" => &mut flags.flag_3,
            "sh-port" => &mut flags.sh_port,
            "sh-fallback" => &mut flags.sh_fallback,
            "mh-port" => &mut flags.mh_port,
            "mh-fallback" => &mut flags.mh_fallback,
            "ops" => &mut flags.ops,
            o => {
                errs.push(&span_at(f.span().start), format!("unknown scheduler flag {o:?}: expected flag-1, flag-2, flag-3, sh-port, sh-fallback, mh-port, mh-fallback or ops"));
                continue;
            }
        };
        *slot = true;
    }
    let (mut persistence_timeout, mut persistence_granularity) = (None, None);
    if let Some(p) = v.persistence {
        persistence_timeout = match &p.timeout {
            Some(t) => whole_secs(t, "persistence timeout", span_at, errs),
            None => Some(crate::keepalived::DEFAULT_PERSISTENCE),
        };
        if let Some(g) = p.granularity {
            let s = g.get_ref();
            let parsed = if s.contains('.') {
                s.parse().ok().map(Granularity::V4)
            } else {
                s.parse().ok().map(Granularity::V6)
            };
            match parsed {
                Some(x) => persistence_granularity = Some(x),
                None => errs.push(
                    &span_at(g.span().start),
                    format!("invalid granularity {s:?}: expected an IPv4 netmask or an IPv6 prefix length"),
                ),
            }
        }
    }
    let vs_weight = v.weight.unwrap_or(1);
    let vs_inhibit = v.inhibit_on_failure.unwrap_or(false);
    let mut real_servers = Vec::new();
    for r in v.real_server {
        let rspan = span_at(r.span().start);
        let r = r.into_inner();
        let (ip, port) = match parse_server_addr(&r.addr) {
            Ok(a) => a,
            Err(e) => {
                errs.push(&rspan, format!("real_server: {e}"));
                continue;
            }
        };
        let rfwd = match fwd_of(r.forwarding, r.tunnel, fwd) {
            Ok(f) => f,
            Err(e) => {
                errs.push(&rspan, e);
                continue;
            }
        };
        let checks: Vec<CheckSpec> = r
            .checks
            .into_iter()
            .map(|c| CheckSpec {
                span: rspan.clone(),
                plugin: c.plugin,
                options: options_of(c.options),
                timing: CheckT {
                    connect_timeout: c.connect_timeout,
                    delay_loop: c.delay_loop,
                    retry: c.retry,
                    delay_before_retry: c.delay_before_retry,
                    warmup: c.warmup,
                    alpha: c.alpha,
                }
                .into_model(),
            })
            .collect();
        real_servers.push(RealServer {
            span: rspan,
            ip,
            port,
            weight: r.weight.unwrap_or(vs_weight),
            fwd: rfwd,
            inhibit_on_failure: r.inhibit_on_failure.unwrap_or(vs_inhibit),
            u_threshold: r.u_threshold.unwrap_or(0),
            l_threshold: r.l_threshold.unwrap_or(0),
            notify_up: r.notify_up,
            notify_down: r.notify_down,
            check: r.check.unwrap_or_default().into_model(),
            checks,
        });
    }
    let sorry_server = match v.sorry_server {
        None => None,
        Some(s) => {
            let sspan = span_at(s.span().start);
            let s = s.into_inner();
            match (
                parse_server_addr(&s.addr),
                fwd_of(s.forwarding, s.tunnel, fwd),
            ) {
                (Ok((ip, port)), Ok(sfwd)) => Some(SorryServer {
                    span: sspan,
                    ip,
                    port,
                    fwd: sfwd,
                    inhibit: s.inhibit.unwrap_or(false),
                }),
                (Err(e), _) | (_, Err(e)) => {
                    errs.push(&sspan, format!("sorry_server: {e}"));
                    None
                }
            }
        }
    };
    Some(VirtualServer {
        span,
        target,
        ip_family: v.ip_family.map(|f| match f {
            FamilyT::Inet => IpFamily::Inet,
            FamilyT::Inet6 => IpFamily::Inet6,
        }),
        protocol: match v.protocol {
            None | Some(ProtoT::Tcp) => Protocol::Tcp,
            Some(ProtoT::Udp) => Protocol::Udp,
            Some(ProtoT::Sctp) => Protocol::Sctp,
        },
        scheduler: v.scheduler.unwrap_or_else(|| "wlc".into()),
        sched_flags: flags,
        fwd,
        persistence_timeout,
        persistence_granularity,
        persistence_engine: v.persistence_engine,
        ha_suspend: v.ha_suspend.unwrap_or(false),
        virtualhost: v.virtualhost,
        omega: v.omega.unwrap_or(false),
        quorum: v.quorum.unwrap_or(1),
        hysteresis: v.hysteresis.unwrap_or(0),
        quorum_up: v.quorum_up,
        quorum_down: v.quorum_down,
        inhibit_on_failure: vs_inhibit,
        weight: vs_weight,
        check: v.check.unwrap_or_default().into_model(),
        sorry_server,
        real_servers,
    })
}

/// A TOML basic string.
fn q(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            c if c.is_control() => o.push_str(&format!("\\u{:04X}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn ver(v: VrrpVersion) -> u8 {
    match v {
        VrrpVersion::V2 => 2,
        VrrpVersion::V3 => 3,
    }
}

fn garp_inline(g: &Garp) -> String {
    format!(
        "{{ master_delay = {}, master_repeat = {}, master_refresh = {}, master_refresh_repeat = {} }}",
        q(&format_duration(g.master_delay)),
        g.master_repeat,
        q(&format_duration(g.master_refresh)),
        g.master_refresh_repeat
    )
}

fn str_list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let v: Vec<String> = items.into_iter().map(|i| q(&i.to_string())).collect();
    format!("[{}]", v.join(", "))
}

/// Renders a model as lbd TOML; loading the result gives the same model
/// (spans aside). Every value is written out, so no default can shift it.
pub fn to_toml(cfg: &Config) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let g = &cfg.global;
    // `writeln!` into a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(o, "[global]");
    if let Some(r) = &g.router_id {
        let _ = writeln!(o, "router_id = {}", q(r));
    }
    let _ = writeln!(o, "vrrp_version = {}", ver(g.vrrp_version));
    let _ = writeln!(o, "v3_checksum_as_v2 = {}", g.v3_checksum_as_v2);
    let _ = writeln!(o, "mcast_group4 = {}", q(&g.mcast_group4.to_string()));
    let _ = writeln!(o, "mcast_group6 = {}", q(&g.mcast_group6.to_string()));
    let _ = writeln!(o, "garp = {}", garp_inline(&g.garp));
    let _ = writeln!(
        o,
        "garp_interval = {}",
        q(&format_duration(g.garp_interval))
    );
    let _ = writeln!(o, "gna_interval = {}", q(&format_duration(g.gna_interval)));
    let _ = writeln!(o, "strict = {}", g.strict);
    let _ = writeln!(o, "skip_check_adv_addr = {}", g.skip_check_adv_addr);
    let _ = writeln!(o, "check_unicast_src = {}", g.check_unicast_src);
    if g.dynamic_interfaces {
        let _ = writeln!(o, "dynamic_interfaces = true");
    }
    if !g.plugin_dirs.is_empty() {
        let dirs = g.plugin_dirs.iter().map(|d| d.display());
        let _ = writeln!(o, "plugin_dirs = {}", str_list(dirs));
    }
    if let Some(m) = g.plugin_memory_limit {
        let _ = writeln!(o, "plugin_memory_limit = {m}");
    }
    if let Some(d) = g.plugin_cpu_slice {
        let _ = writeln!(o, "plugin_cpu_slice = {}", q(&format_duration(d)));
    }
    if let Some((u, grp)) = &g.script_user {
        let v = grp.as_ref().map_or(u.clone(), |grp| format!("{u}:{grp}"));
        let _ = writeln!(o, "script_user = {}", q(&v));
    }
    if g.enable_script_security {
        let _ = writeln!(o, "enable_script_security = true");
    }
    render_lvs(&mut o, g);
    if !cfg.static_routes.is_empty() {
        let _ = writeln!(o, "\n[static]");
        render_routes(&mut o, "routes", &cfg.static_routes);
    }
    for i in &cfg.instances {
        let _ = writeln!(o, "\n[[vrrp.instance]]");
        let _ = writeln!(o, "name = {}", q(&i.name));
        let _ = writeln!(o, "interface = {}", q(&i.interface));
        let _ = writeln!(o, "vrid = {}", i.vrid);
        let _ = writeln!(o, "priority = {}", i.priority);
        let st = match i.initial {
            InitialState::Master => "master",
            InitialState::Backup => "backup",
        };
        let _ = writeln!(o, "state = {}", q(st));
        let _ = writeln!(o, "version = {}", ver(i.version));
        let _ = writeln!(o, "advert_int = {}", q(&format_duration(i.advert_int)));
        let _ = writeln!(o, "preempt = {}", i.preempt);
        if !i.preempt_delay.is_zero() {
            let _ = writeln!(
                o,
                "preempt_delay = {}",
                q(&format_duration(i.preempt_delay))
            );
        }
        let _ = writeln!(o, "accept = {}", i.accept);
        match &i.auth {
            Some(Auth::Pass(p)) => {
                let _ = writeln!(o, "auth = {{ type = \"pass\", password = {} }}", q(p));
            }
            Some(Auth::Ah(p)) => {
                let _ = writeln!(o, "auth = {{ type = \"ah\", password = {} }}", q(p));
            }
            None => {}
        }
        for (key, list) in [("vips", &i.vips), ("excluded_vips", &i.excluded_vips)] {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(o, "{key} = [");
            for v in list {
                let _ = writeln!(o, "  {},", q(&format_vip(v)));
            }
            let _ = writeln!(o, "]");
        }
        if i.unicast_src.is_some() || !i.unicast_peers.is_empty() {
            let mut parts = Vec::new();
            if let Some(s) = i.unicast_src {
                parts.push(format!("src = {}", q(&s.to_string())));
            }
            parts.push(format!("peers = {}", str_list(&i.unicast_peers)));
            let _ = writeln!(o, "unicast = {{ {} }}", parts.join(", "));
        }
        if !i.track_interfaces.is_empty() {
            let t: Vec<String> = i
                .track_interfaces
                .iter()
                .map(|t| format!("{{ name = {}, weight = {} }}", q(&t.name), t.weight))
                .collect();
            let _ = writeln!(o, "track_interface = [{}]", t.join(", "));
        }
        if !i.track_scripts.is_empty() {
            let _ = writeln!(o, "track_script = {}", refs_inline(&i.track_scripts));
        }
        if i.dont_track_primary {
            let _ = writeln!(o, "dont_track_primary = true");
        }
        if let Some(m) = i.mcast_src {
            let _ = writeln!(o, "mcast_src = {}", q(&m.to_string()));
        }
        if let Some(v) = &i.use_vmac {
            let _ = writeln!(o, "use_vmac = {}", q(v));
        }
        if i.v3_checksum_as_v2 != g.v3_checksum_as_v2 {
            let _ = writeln!(o, "v3_checksum_as_v2 = {}", i.v3_checksum_as_v2);
        }
        match i.old_unicast_checksum {
            OldUnicastChecksum::Auto => {}
            OldUnicastChecksum::Always => {
                let _ = writeln!(o, "old_unicast_checksum = \"always\"");
            }
            OldUnicastChecksum::Never => {
                let _ = writeln!(o, "old_unicast_checksum = \"never\"");
            }
        }
        if i.garp != g.garp {
            let _ = writeln!(o, "garp = {}", garp_inline(&i.garp));
        }
        render_routes(&mut o, "virtual_routes", &i.virtual_routes);
    }
    for sg in &cfg.sync_groups {
        let _ = writeln!(o, "\n[[vrrp.sync_group]]");
        let _ = writeln!(o, "name = {}", q(&sg.name));
        let _ = writeln!(o, "members = {}", str_list(&sg.members));
        if !sg.track_scripts.is_empty() {
            let _ = writeln!(o, "track_script = {}", refs_inline(&sg.track_scripts));
        }
    }
    render_scripts(&mut o, cfg);
    for vg in &cfg.virtual_server_groups {
        let _ = writeln!(o, "\n[[virtual_server_group]]");
        let _ = writeln!(o, "name = {}", q(&vg.name));
        let m = vg.members.iter().map(format_vsg_member);
        let _ = writeln!(o, "members = {}", str_list(m));
    }
    for v in &cfg.virtual_servers {
        render_vs(&mut o, cfg, v);
    }
    o
}

fn render_routes(o: &mut String, key: &str, routes: &[Route]) {
    use std::fmt::Write;
    if routes.is_empty() {
        return;
    }
    let _ = writeln!(o, "{key} = [");
    for r in routes {
        let _ = writeln!(o, "  {},", q(&crate::routes::format_route(r)));
    }
    let _ = writeln!(o, "]");
}

/// `[global.lvs]`, only when something in it differs from the defaults.
fn render_lvs(o: &mut String, g: &Global) {
    use std::fmt::Write;
    if !g.lvs_flush
        && g.lvs_flush_onstop == LvsFlushOnStop::Off
        && g.lvs_timeouts.is_none()
        && g.lvs_sync_daemon.is_none()
    {
        return;
    }
    let _ = writeln!(o, "\n[global.lvs]");
    let _ = writeln!(o, "flush = {}", g.lvs_flush);
    let f = match g.lvs_flush_onstop {
        LvsFlushOnStop::Off => "off",
        LvsFlushOnStop::On => "on",
        LvsFlushOnStop::VsOnly => "vs",
    };
    let _ = writeln!(o, "flush_onstop = {}", q(f));
    if let Some(t) = &g.lvs_timeouts {
        let mut p = Vec::new();
        for (k, v) in [("tcp", t.tcp), ("tcpfin", t.tcpfin), ("udp", t.udp)] {
            if let Some(v) = v {
                p.push(format!("{k} = \"{v}s\""));
            }
        }
        let _ = writeln!(o, "timeouts = {{ {} }}", p.join(", "));
    }
    if let Some(sd) = &g.lvs_sync_daemon {
        let mut p = vec![format!("interface = {}", q(&sd.interface))];
        if let Some(i) = &sd.instance {
            p.push(format!("instance = {}", q(i)));
        }
        for (k, v) in [
            ("id", sd.id.map(u32::from)),
            ("maxlen", sd.maxlen.map(u32::from)),
            ("port", sd.port.map(u32::from)),
            ("ttl", sd.ttl.map(u32::from)),
        ] {
            if let Some(v) = v {
                p.push(format!("{k} = {v}"));
            }
        }
        if let Some(gr) = sd.group {
            p.push(format!("group = {}", q(&gr.to_string())));
        }
        let _ = writeln!(o, "sync_daemon = {{ {} }}", p.join(", "));
    }
}

fn server_addr(ip: &IpAddr, port: u16) -> String {
    match (ip, port) {
        (_, 0) => ip.to_string(),
        (IpAddr::V6(a), p) => format!("[{a}]:{p}"),
        (IpAddr::V4(a), p) => format!("{a}:{p}"),
    }
}

/// `forwarding = ...` and, for tunnels, `tunnel = {...}`, as key/value pairs.
fn fwd_pairs(f: &LbKind) -> Vec<String> {
    match f {
        LbKind::Nat => vec!["forwarding = \"nat\"".into()],
        LbKind::Dr => vec!["forwarding = \"dr\"".into()],
        LbKind::Tun(t) => {
            let kind = match t.kind {
                TunnelKind::Ipip => "type = \"ipip\"".to_string(),
                TunnelKind::Gue { port } => format!("type = \"gue\", port = {port}"),
                TunnelKind::Gre => "type = \"gre\"".to_string(),
            };
            let csum = match t.csum {
                TunnelCsum::NoCsum => "nocsum",
                TunnelCsum::Csum => "csum",
                TunnelCsum::RemCsum => "remcsum",
            };
            vec![
                "forwarding = \"tun\"".into(),
                format!("tunnel = {{ {kind}, csum = \"{csum}\" }}"),
            ]
        }
    }
}

fn check_pairs(c: &CheckTiming) -> Vec<String> {
    let mut p = Vec::new();
    for (k, d) in [
        ("connect_timeout", c.connect_timeout),
        ("delay_loop", c.delay_loop),
        ("delay_before_retry", c.delay_before_retry),
        ("warmup", c.warmup),
    ] {
        if let Some(d) = d {
            p.push(format!("{k} = {}", q(&format_duration(d))));
        }
    }
    if let Some(r) = c.retry {
        p.push(format!("retry = {r}"));
    }
    if let Some(a) = c.alpha {
        p.push(format!("alpha = {a}"));
    }
    p
}

fn check_inline(c: &CheckTiming) -> Option<String> {
    let p = check_pairs(c);
    (!p.is_empty()).then(|| format!("{{ {} }}", p.join(", ")))
}

/// A plugin option as a TOML inline value (nulls cannot be written: they
/// become empty strings).
fn json_inline(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::Null => q(""),
        J::Bool(b) => b.to_string(),
        J::Number(n) => n.to_string(),
        J::String(s) => q(s),
        J::Array(a) => format!(
            "[{}]",
            a.iter().map(json_inline).collect::<Vec<_>>().join(", ")
        ),
        J::Object(m) if m.is_empty() => "{}".into(),
        J::Object(m) => format!(
            "{{ {} }}",
            m.iter()
                .map(|(k, v)| format!("{} = {}", q(k), json_inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn refs_inline(refs: &[TrackScriptRef]) -> String {
    let items: Vec<String> = refs
        .iter()
        .map(|r| {
            let mut p = vec![format!("name = {}", q(&r.name))];
            if let Some(w) = r.weight {
                p.push(format!("weight = {w}"));
            }
            if r.reverse {
                p.push("reverse = true".into());
            }
            format!("{{ {} }}", p.join(", "))
        })
        .collect();
    format!("[{}]", items.join(", "))
}

fn render_scripts(o: &mut String, cfg: &Config) {
    use std::fmt::Write;
    for t in &cfg.track_scripts {
        let _ = writeln!(o, "\n[[track_script]]");
        let _ = writeln!(o, "name = {}", q(&t.name));
        let _ = writeln!(o, "plugin = {}", q(&t.plugin));
        let _ = writeln!(o, "interval = {}", q(&format_duration(t.interval)));
        if let Some(d) = t.timeout {
            let _ = writeln!(o, "timeout = {}", q(&format_duration(d)));
        }
        let _ = writeln!(o, "weight = {}", t.weight);
        let _ = writeln!(o, "reverse = {}", t.weight_reverse);
        let _ = writeln!(o, "rise = {}", t.rise);
        let _ = writeln!(o, "fall = {}", t.fall);
        let _ = writeln!(o, "init_fail = {}", t.init_fail);
        let _ = writeln!(
            o,
            "options = {}",
            json_inline(&serde_json::Value::Object(t.options.clone()))
        );
    }
    for n in &cfg.notify_hooks {
        let _ = writeln!(o, "\n[[notify]]");
        let _ = writeln!(o, "plugin = {}", q(&n.plugin));
        if !n.filter.kinds.is_empty() {
            let _ = writeln!(o, "kinds = {}", str_list(&n.filter.kinds));
        }
        if let Some(name) = &n.filter.name {
            let _ = writeln!(o, "name = {}", q(name));
        }
        if !n.filter.states.is_empty() {
            let _ = writeln!(o, "states = {}", str_list(&n.filter.states));
        }
        if let Some(vs) = &n.filter.vs {
            let _ = writeln!(o, "vs = {}", q(vs));
        }
        let _ = writeln!(
            o,
            "options = {}",
            json_inline(&serde_json::Value::Object(n.options.clone()))
        );
    }
}

/// A checker the TOML cannot carry, as a comment where it stood.
fn render_skipped(o: &mut String, cfg: &Config, rs: &RealServer) {
    use std::fmt::Write;
    for s in cfg
        .skipped_checks
        .iter()
        .filter(|s| s.rs_span.same_place(&rs.span))
    {
        let _ = writeln!(
            o,
            "# {} ({}) is not converted: lbd does not run it, the real server is treated as up",
            s.kind, s.span
        );
    }
}

fn render_vs(o: &mut String, cfg: &Config, v: &VirtualServer) {
    use std::fmt::Write;
    let _ = writeln!(o, "\n[[virtual_server]]");
    match &v.target {
        VsTarget::Addr { ip, port } => {
            let _ = writeln!(o, "target = {}", q(&server_addr(ip, *port)));
        }
        VsTarget::Fwmark(m) => {
            let _ = writeln!(o, "fwmark = {m}");
        }
        VsTarget::Group(g) => {
            let _ = writeln!(o, "group = {}", q(g));
        }
    }
    if let Some(f) = v.ip_family {
        let f = if f == IpFamily::Inet { "inet" } else { "inet6" };
        let _ = writeln!(o, "ip_family = {}", q(f));
    }
    let p = match v.protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    };
    let _ = writeln!(o, "protocol = {}", q(p));
    let _ = writeln!(o, "scheduler = {}", q(&v.scheduler));
    let f = &v.sched_flags;
    let flags: Vec<&str> = [
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
    .collect();
    if !flags.is_empty() {
        let _ = writeln!(o, "sched_flags = {}", str_list(flags));
    }
    for l in fwd_pairs(&v.fwd) {
        let _ = writeln!(o, "{l}");
    }
    if v.persistence_timeout.is_some() || v.persistence_granularity.is_some() {
        let mut p = Vec::new();
        if let Some(t) = v.persistence_timeout {
            p.push(format!("timeout = \"{t}s\""));
        }
        match v.persistence_granularity {
            Some(Granularity::V4(m)) => p.push(format!("granularity = {}", q(&m.to_string()))),
            Some(Granularity::V6(b)) => p.push(format!("granularity = \"{b}\"")),
            None => {}
        }
        let _ = writeln!(o, "persistence = {{ {} }}", p.join(", "));
    }
    for (k, s) in [
        ("persistence_engine", &v.persistence_engine),
        ("virtualhost", &v.virtualhost),
        ("quorum_up", &v.quorum_up),
        ("quorum_down", &v.quorum_down),
    ] {
        if let Some(s) = s {
            let _ = writeln!(o, "{k} = {}", q(s));
        }
    }
    let _ = writeln!(o, "ha_suspend = {}", v.ha_suspend);
    let _ = writeln!(o, "omega = {}", v.omega);
    let _ = writeln!(o, "quorum = {}", v.quorum);
    let _ = writeln!(o, "hysteresis = {}", v.hysteresis);
    let _ = writeln!(o, "inhibit_on_failure = {}", v.inhibit_on_failure);
    let _ = writeln!(o, "weight = {}", v.weight);
    if let Some(c) = check_inline(&v.check) {
        let _ = writeln!(o, "check = {c}");
    }
    if let Some(s) = &v.sorry_server {
        let mut p = vec![format!("addr = {}", q(&server_addr(&s.ip, s.port)))];
        p.extend(fwd_pairs(&s.fwd));
        p.push(format!("inhibit = {}", s.inhibit));
        let _ = writeln!(o, "sorry_server = {{ {} }}", p.join(", "));
    }
    for r in &v.real_servers {
        let _ = writeln!(o, "\n[[virtual_server.real_server]]");
        let _ = writeln!(o, "addr = {}", q(&server_addr(&r.ip, r.port)));
        let _ = writeln!(o, "weight = {}", r.weight);
        for l in fwd_pairs(&r.fwd) {
            let _ = writeln!(o, "{l}");
        }
        let _ = writeln!(o, "inhibit_on_failure = {}", r.inhibit_on_failure);
        if r.u_threshold != 0 {
            let _ = writeln!(o, "u_threshold = {}", r.u_threshold);
        }
        if r.l_threshold != 0 {
            let _ = writeln!(o, "l_threshold = {}", r.l_threshold);
        }
        for (k, s) in [("notify_up", &r.notify_up), ("notify_down", &r.notify_down)] {
            if let Some(s) = s {
                let _ = writeln!(o, "{k} = {}", q(s));
            }
        }
        if let Some(c) = check_inline(&r.check) {
            let _ = writeln!(o, "check = {c}");
        }
        render_skipped(o, cfg, r);
        for c in &r.checks {
            let _ = writeln!(o, "\n[[virtual_server.real_server.checks]]");
            let _ = writeln!(o, "plugin = {}", q(&c.plugin));
            // The timing keys sit beside plugin and options.
            for kv in check_pairs(&c.timing) {
                let _ = writeln!(o, "{kv}");
            }
            let _ = writeln!(
                o,
                "options = {}",
                json_inline(&serde_json::Value::Object(c.options.clone()))
            );
        }
    }
}
