//! lbd's own TOML syntax (see SCHEMA.md) and the renderer used to convert
//! a keepalived.conf into it. Unknown fields are errors, with a line.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use crate::error::Errors;
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
    dont_track_primary: Option<bool>,
    garp: Option<GarpT>,
    mcast_src: Option<IpAddr>,
    use_vmac: Option<String>,
    v3_checksum_as_v2: Option<bool>,
    old_unicast_checksum: Option<OldUnicastChecksumT>,
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

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

pub(crate) fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let span_at = |off: usize| Span {
        file: file.to_path_buf(),
        line: line_of(text, off),
    };
    let f: FileT = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |r| line_of(text, r.start));
        ConfigError::single(
            Span {
                file: file.to_path_buf(),
                line,
            },
            e.message().trim().to_string(),
        )
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

    let mut cfg = Config {
        global: g,
        instances: Vec::new(),
        sync_groups: Vec::new(),
    };
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
        cfg.sync_groups.push(SyncGroup {
            span: span_at(sg.name.span().start),
            name: sg.name.into_inner(),
            members: sg.members,
        });
    }
    errs.into_result()?;
    Ok(cfg)
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
    }
    for sg in &cfg.sync_groups {
        let _ = writeln!(o, "\n[[vrrp.sync_group]]");
        let _ = writeln!(o, "name = {}", q(&sg.name));
        let _ = writeln!(o, "members = {}", str_list(&sg.members));
    }
    o
}
