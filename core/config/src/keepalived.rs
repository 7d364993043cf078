//! keepalived.conf keywords -> model. Covers global_defs, vrrp_instance,
//! vrrp_sync_group and (in `lvs`) virtual_server / virtual_server_group; every other keyword is reported as a warning and its
//! block skipped, never dropped silently. Defaults and derivations follow
//! keepalived (vrrp_data.c alloc_vrrp, vrrp.c vrrp_complete_instance).

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use crate::error::Errors;
use crate::ka_syntax::{Node, Reader};
use crate::model::*;
use crate::values::*;

mod checkers;
mod lvs;
mod repair;
mod scripts;
pub(crate) use lvs::DEFAULT_PERSISTENCE;
pub use scripts::split_words;

/// keepalived's TIMER_MAX_SEC bound for preempt_delay.
const MAX_PREEMPT_DELAY_SECS: u64 = 1000;

pub(crate) fn read(
    path: Option<&Path>,
    text: Option<&str>,
    name: &Path,
    opts: &crate::ReadOptions,
) -> Result<(Config, Vec<Warning>), crate::ConfigError> {
    let mut errors = Errors::default();
    let mut warnings = Vec::new();
    let nodes = {
        let mut r = Reader {
            errors: &mut errors,
            warnings: &mut warnings,
            config_id: opts.config_id.as_deref(),
        };
        match (path, text) {
            (_, Some(t)) => r.read_str(t, name),
            (Some(p), None) => r.read_file(p),
            (None, None) => Vec::new(),
        }
    };
    // Keywords are not interpreted over a broken tree: its errors would cascade.
    if !errors.is_empty() {
        return Err(crate::ConfigError { errors: errors.0 });
    }
    let mut k = Ka {
        errors,
        warnings,
        cfg: Config::default(),
        raw: Vec::new(),
        raw_vs: Vec::new(),
        fifo_hooks: Vec::new(),
        state_given: Default::default(),
        sync_tracking_weight: Default::default(),
        track_files: Vec::new(),
    };
    // By value: each block's tree is freed once read, not kept to the end.
    for n in nodes {
        k.top(&n);
    }
    let raws = std::mem::take(&mut k.raw);
    for r in raws {
        k.finish(r);
    }
    // After the whole file: a service may name a group defined below it.
    for r in std::mem::take(&mut k.raw_vs) {
        k.finish_vs(r);
    }
    k.repair();
    k.errors.into_result()?;
    Ok((k.cfg, k.warnings))
}

struct Ka {
    errors: Errors,
    warnings: Vec<Warning>,
    cfg: Config,
    /// Instances are completed after the whole file: they inherit globals.
    raw: Vec<RawInstance>,
    raw_vs: Vec<lvs::RawVs>,
    /// notify FIFO keyword stem -> its hook in `cfg.notify_hooks`.
    fifo_hooks: Vec<(String, usize)>,
    /// Instances with an explicit `state` (vrrp_strict checks only those).
    state_given: std::collections::HashSet<String>,
    /// Sync groups with `sync_group_tracking_weight`.
    sync_tracking_weight: std::collections::HashSet<String>,
    /// Top-level `track_file` blocks, for the FILE_CHECKs below them.
    track_files: Vec<checkers::TrackFile>,
}

#[derive(Default)]
struct RawInstance {
    name: String,
    span: Span,
    interface: Option<String>,
    vrid: Option<u8>,
    priority: Option<u8>,
    advert_int: Option<Duration>,
    version: Option<VrrpVersion>,
    state: Option<(InitialState, Span)>,
    nopreempt: bool,
    preempt_delay: Option<Duration>,
    accept: Option<bool>,
    auth_type: Option<(String, Span)>,
    auth_pass: Option<String>,
    auth_span: Option<Span>,
    vips: Vec<Vip>,
    excluded_vips: Vec<Vip>,
    unicast_src: Option<IpAddr>,
    unicast_peers: Vec<IpAddr>,
    track_interfaces: Vec<TrackInterface>,
    track_scripts: Vec<TrackScriptRef>,
    dont_track_primary: bool,
    garp_delay: Option<Duration>,
    garp_repeat: Option<u32>,
    garp_refresh: Option<Duration>,
    garp_refresh_repeat: Option<u32>,
    mcast_src: Option<IpAddr>,
    use_vmac: Option<Option<String>>,
    v3_checksum_as_v2: Option<bool>,
    old_unicast_checksum: OldUnicastChecksum,
    virtual_routes: Vec<Route>,
}

/// Every keyword keepalived itself knows (see the file's header).
const KEEPALIVED_KEYWORDS: &str = include_str!("keepalived/keywords.txt");

fn keepalived_keywords() -> impl Iterator<Item = &'static str> {
    KEEPALIVED_KEYWORDS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
}

fn is_keepalived_keyword(kw: &str) -> bool {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    SET.get_or_init(|| keepalived_keywords().collect())
        .contains(kw)
}

/// keepalived skips a keyword it does not know ("Unknown keyword"), and
/// its block with it; lbd does too, but says which of the two it is.
fn unsupported_msg(kw: &str) -> String {
    if is_keepalived_keyword(kw) {
        return format!("keyword {kw} is not supported yet (ignored)");
    }
    // A distance of at most 2 needs lengths within 2: skip the rest cheaply
    // (a file of garbage words must not cost 361 edit distances per word).
    let near = keepalived_keywords()
        .filter(|k| k.len().abs_diff(kw.len()) <= 2 && kw.len() <= 64)
        .map(|k| (strsim::levenshtein(k, kw), k))
        .filter(|(d, _)| *d <= 2 && *d < kw.len())
        .min();
    match near {
        Some((_, k)) => format!(
            "unknown keyword {kw:?} (did you mean {k}?); ignored with its block, as keepalived does"
        ),
        None => format!("unknown keyword {kw:?}; ignored with its block, as keepalived does"),
    }
}

impl Ka {
    /// Something keepalived would repair or ignore, and lbd did the same.
    fn warn(&mut self, span: &Span, msg: impl Into<String>) {
        crate::error::push_warning(&mut self.warnings, Warning::repaired(span.clone(), msg));
    }

    /// Read as written, but worth telling (a case keepalived does not know
    /// whose default happens to be what was meant).
    fn note(&mut self, span: &Span, msg: impl Into<String>) {
        crate::error::push_warning(&mut self.warnings, Warning::note(span.clone(), msg));
    }

    fn unsupported(&mut self, n: &Node) {
        if self.warnings.len() > crate::error::MAX_FINDINGS {
            // Past the cap only the kind counts: skip the keyword search.
            self.warn(&n.span, String::new());
            return;
        }
        let mut m = unsupported_msg(n.keyword());
        if n.block.is_some() && !is_keepalived_keyword(n.keyword()) {
            // See KEEPALIVED.md "Where lbd knowingly differs".
            m.push_str(" (keepalived 2.2 would instead read the block's lines one level up and end the enclosing block at its '}': fix the name)");
        }
        self.warn(&n.span, m);
    }

    /// The single argument of `kw VALUE`.
    fn arg1<'n>(&mut self, n: &'n Node, what: &str) -> Option<&'n str> {
        match n.arg(1) {
            Some(v) => {
                if n.words.len() > 2 {
                    let m = format!("{}: extra arguments after {v:?} (ignored)", n.keyword());
                    self.warn(&n.span, m);
                }
                Some(v)
            }
            None => {
                self.errors
                    .push(&n.span, format!("{}: expected {what}", n.keyword()));
                None
            }
        }
    }

    fn block<'n>(&mut self, n: &'n Node) -> Option<&'n [Node]> {
        match &n.block {
            Some(b) => Some(b),
            None => {
                self.errors
                    .push(&n.span, format!("{}: expected a '{{' block", n.keyword()));
                None
            }
        }
    }

    fn no_block(&mut self, n: &Node) {
        if n.block.is_some() {
            self.errors.push(
                &n.span,
                format!("{}: does not take a '{{' block", n.keyword()),
            );
        }
    }

    /// `kw [BOOL]`: a bare keyword means true, as keepalived does.
    fn opt_bool(&mut self, n: &Node) -> Option<bool> {
        match n.arg(1) {
            None => Some(true),
            Some(v) => match parse_bool(v) {
                Some(b) => Some(b),
                None => {
                    self.invalid_ignored(n, v, "true/false, yes/no or on/off");
                    None
                }
            },
        }
    }

    /// A keyword keepalived 2.2 takes as a bare flag: any argument is
    /// ignored, so `vrrp_strict no` turns strict mode on.
    fn flag(&mut self, n: &Node) -> bool {
        if let Some(v) = n.arg(1) {
            if parse_bool(v) != Some(true) {
                let kw = n.keyword();
                let m = format!("{kw} takes no argument: keepalived ignores {v:?} and turns {kw} ON; so does lbd (remove the line to leave it off)");
                self.warn(&n.span, m);
            }
        }
        true
    }

    /// A number in `min..=max`. keepalived's read_unsigned_strvec reports
    /// a bad or out-of-range value and the keyword is ignored (its default
    /// stays); so here: a warning and `None`.
    fn uint(&mut self, n: &Node, min: u64, max: u64, what: &str) -> Option<u64> {
        let v = self.arg1(n, what)?;
        match v.parse::<u64>() {
            Ok(x) if (min..=max).contains(&x) => Some(x),
            _ => {
                self.invalid_ignored(n, v, &format!("{what} ({min}..={max})"));
                None
            }
        }
    }

    /// Seconds with up to 6 decimals (read_decimal_unsigned_strvec).
    fn secs(&mut self, n: &Node, what: &str) -> Option<Duration> {
        let v = self.arg1(n, what)?;
        match parse_decimal_secs(v) {
            Some(d) => Some(d),
            _ => {
                self.invalid_ignored(n, v, what);
                None
            }
        }
    }

    fn invalid_ignored(&mut self, n: &Node, v: &str, expected: &str) {
        let m = format!(
            "{}: invalid value {v:?} (expected {expected}); ignored, as keepalived does: the default applies",
            n.keyword()
        );
        self.warn(&n.span, m);
    }

    /// keepalived skips a malformed address ("malformed ... address.
    /// Skipping", "Invalid ... IP address - skipping") and carries on.
    fn ip(&mut self, n: &Node, s: &str) -> Option<IpAddr> {
        match parse_ip(s, n.keyword()) {
            Ok(a) => Some(a),
            Err(e) => {
                self.warn(&n.span, format!("{e}; skipped, as keepalived does"));
                None
            }
        }
    }

    fn top(&mut self, n: &Node) {
        match n.keyword() {
            "global_defs" => {
                if let Some(b) = self.block(n) {
                    for c in b {
                        self.global(c);
                    }
                }
            }
            "vrrp_instance" => self.instance(n),
            "vrrp_sync_group" => self.sync_group(n),
            "virtual_server_group" => self.virtual_server_group(n),
            "virtual_server" => self.virtual_server(n),
            "vrrp_script" => self.vrrp_script(n),
            "track_file" | "vrrp_track_file" => self.track_file(n),
            "static_routes" => {
                let routes = self.route_block(n);
                self.cfg.static_routes.extend(routes);
            }
            _ => self.unsupported(n),
        }
    }

    fn global(&mut self, n: &Node) {
        if self.lvs_global(n) || self.script_global(n) {
            return;
        }
        let kw = n.keyword();
        if GLOBAL_LINE_KWS.contains(&kw) {
            self.no_block(n);
        }
        match kw {
            "router_id" => {
                if let Some(v) = self.arg1(n, "a router name") {
                    self.cfg.global.router_id = Some(v.to_string());
                }
            }
            "vrrp_version" => {
                if let Some(v) = self.uint(n, 2, 3, "VRRP version") {
                    self.cfg.global.vrrp_version = if v == 3 {
                        VrrpVersion::V3
                    } else {
                        VrrpVersion::V2
                    };
                }
            }
            "vrrp_mcast_group4" => {
                if let Some(v) = self.arg1(n, "an IPv4 multicast address") {
                    // global_parser.c: "... is not multicast. Skipping" / "Can't parse".
                    match v.parse::<std::net::Ipv4Addr>() {
                        Ok(a) if a.is_multicast() => self.cfg.global.mcast_group4 = a,
                        _ => self.invalid_ignored(n, v, "an IPv4 multicast address"),
                    }
                }
            }
            "vrrp_mcast_group6" => {
                if let Some(v) = self.arg1(n, "an IPv6 multicast address") {
                    match v.parse::<std::net::Ipv6Addr>() {
                        Ok(a) if a.is_multicast() => self.cfg.global.mcast_group6 = a,
                        _ => self.invalid_ignored(n, v, "an IPv6 multicast address"),
                    }
                }
            }
            "vrrp_garp_master_delay" => {
                if let Some(v) = self.uint(n, 0, u64::from(u32::MAX) / 1_000_000, "whole seconds") {
                    self.cfg.global.garp.master_delay = Duration::from_secs(v);
                }
            }
            "vrrp_garp_master_repeat" | "vrrp_garp_master_refresh_repeat" => {
                if let Some(mut v) = self.uint(n, 0, u64::from(u32::MAX), "a count") {
                    if v == 0 {
                        // keepalived: "must be greater than 0, setting to 1".
                        self.warn(
                            &n.span,
                            format!("{kw} must be at least 1; using 1 as keepalived does"),
                        );
                        v = 1;
                    }
                    let g = &mut self.cfg.global.garp;
                    if kw == "vrrp_garp_master_repeat" {
                        g.master_repeat = v as u32;
                    } else {
                        g.master_refresh_repeat = v as u32;
                    }
                }
            }
            "vrrp_garp_master_refresh" => {
                if let Some(v) = self.uint(n, 0, u64::from(u32::MAX), "whole seconds") {
                    self.cfg.global.garp.master_refresh = Duration::from_secs(v);
                }
            }
            "vrrp_garp_interval" | "vrrp_gna_interval" => {
                let d = self.secs(n, "seconds (up to 6 decimals)");
                // global_parser.c: the range is [0.000001, 4294.967295].
                let d = match d {
                    Some(d) if d.is_zero() || d > Duration::from_micros(u64::from(u32::MAX)) => {
                        let v = n.arg(1).unwrap_or("");
                        self.invalid_ignored(n, v, "0.000001..=4294.967295 seconds");
                        None
                    }
                    d => d,
                };
                if let Some(d) = d {
                    if kw == "vrrp_garp_interval" {
                        self.cfg.global.garp_interval = d;
                    } else {
                        self.cfg.global.gna_interval = d;
                    }
                }
            }
            "vrrp_strict" => self.cfg.global.strict = self.flag(n),
            "vrrp_skip_check_adv_addr" => self.cfg.global.skip_check_adv_addr = self.flag(n),
            "vrrp_check_unicast_src" => self.cfg.global.check_unicast_src = self.flag(n),
            "dynamic_interfaces" => {
                // keepalived 2.2's optional argument (allow_if_changes) changes nothing lbd does.
                self.cfg.global.dynamic_interfaces = true;
            }
            "v3_checksum_as_v2" => {
                if let Some(b) = self.opt_bool(n) {
                    self.cfg.global.v3_checksum_as_v2 = b;
                }
            }
            // keepalived only knows it at the top level ("Unknown keyword").
            "static_routes" => self.warn(
                &n.span,
                "static_routes is a top-level block, not part of global_defs: ignored with its block, as keepalived does",
            ),
            _ => self.unsupported(n),
        }
    }

    fn sync_group(&mut self, n: &Node) {
        let Some(name) = self.arg1(n, "a sync group name") else {
            return;
        };
        let Some(b) = self.block(n) else { return };
        let mut sg = SyncGroup {
            name: name.to_string(),
            span: n.span.clone(),
            members: Vec::new(),
            track_scripts: Vec::new(),
        };
        for c in b {
            if self.notify_kw(c, "GROUP", name) {
                continue;
            }
            match c.keyword() {
                "group" => {
                    if let Some(lines) = self.block(c) {
                        for l in lines {
                            // keepalived reads every word of the block, one or many per line.
                            sg.members.extend(l.words.iter().cloned());
                            if l.block.is_some() {
                                self.errors.push(
                                    &l.span,
                                    "group: unexpected '{' block inside the member list",
                                );
                            }
                        }
                    }
                }
                "track_script" => {
                    let refs = self.track_script_block(c);
                    sg.track_scripts.extend(refs);
                }
                "sync_group_tracking_weight" => {
                    self.sync_tracking_weight.insert(sg.name.clone());
                }
                // The pre-1.2 syntax listed members directly in the block;
                // keepalived 2.x reports each as an unknown keyword.
                m if c.block.is_none() && c.words.len() == 1 => self.warn(
                    &c.span,
                    format!("vrrp_sync_group {name}: unknown keyword {m:?} (ignored, as keepalived does): members go in group {{ {m} ... }}"),
                ),
                _ => self.unsupported(c),
            }
        }
        self.cfg.sync_groups.push(sg);
    }

    fn instance(&mut self, n: &Node) {
        let Some(name) = self.arg1(n, "an instance name") else {
            return;
        };
        let Some(b) = self.block(n) else { return };
        if self.raw.iter().any(|x| x.name == name) {
            self.warn(
                &n.span,
                format!("vrrp instance {name} already defined; this block is ignored, as keepalived does"),
            );
            return;
        }
        let mut r = RawInstance {
            name: name.to_string(),
            span: n.span.clone(),
            ..Default::default()
        };
        for c in b {
            self.instance_kw(c, &mut r);
        }
        self.raw.push(r);
    }

    fn instance_kw(&mut self, n: &Node, r: &mut RawInstance) {
        let kw = n.keyword();
        let name = r.name.clone();
        if self.notify_kw(n, "INSTANCE", &name) {
            return;
        }
        if INSTANCE_LINE_KWS.contains(&kw) {
            self.no_block(n);
        }
        match kw {
            "state" => {
                if let Some(v) = self.arg1(n, "MASTER or BACKUP") {
                    let st = match v {
                        "MASTER" => Some(InitialState::Master),
                        "BACKUP" => Some(InitialState::Backup),
                        // Case matters: keepalived reads `state master` as BACKUP.
                        _ => {
                            self.warn(
                                &n.span,
                                format!("state {v}: unknown state (keepalived knows MASTER and BACKUP, case matters); BACKUP, as keepalived defaults it"),
                            );
                            Some(InitialState::Backup)
                        }
                    };
                    if let Some(st) = st {
                        // keepalived ignores BACKUP after MASTER.
                        if !(st == InitialState::Backup
                            && matches!(r.state, Some((InitialState::Master, _))))
                        {
                            r.state = Some((st, n.span.clone()));
                        }
                    }
                }
            }
            "interface" => {
                if let Some(v) = self.arg1(n, "an interface name") {
                    r.interface = Some(v.to_string());
                }
            }
            "virtual_router_id" => {
                if let Some(v) = self.uint(n, 1, 255, "a VRID") {
                    r.vrid = Some(v as u8);
                }
            }
            "priority" => {
                if let Some(v) = self.uint(n, 1, 255, "a priority") {
                    r.priority = Some(v as u8);
                }
            }
            "advert_int" => {
                if let Some(d) = self.secs(n, "seconds, e.g. 1 or 0.5") {
                    if d.is_zero() || d > Duration::from_secs(255) {
                        let v = n.arg(1).unwrap_or("");
                        self.invalid_ignored(n, v, "> 0 and <= 255 seconds");
                    } else {
                        r.advert_int = Some(d);
                    }
                }
            }
            "version" => {
                if let Some(v) = self.uint(n, 2, 3, "VRRP version") {
                    r.version = Some(if v == 3 {
                        VrrpVersion::V3
                    } else {
                        VrrpVersion::V2
                    });
                }
            }
            "nopreempt" => r.nopreempt = true,
            "preempt" => r.nopreempt = false,
            "preempt_delay" => {
                if let Some(d) = self.secs(n, "seconds") {
                    if d > Duration::from_secs(MAX_PREEMPT_DELAY_SECS) {
                        let v = n.arg(1).unwrap_or("");
                        self.invalid_ignored(
                            n,
                            v,
                            &format!("0..={MAX_PREEMPT_DELAY_SECS} seconds"),
                        );
                    } else {
                        r.preempt_delay = Some(d);
                    }
                }
            }
            "lvs_sync_daemon_interface" => {
                let Some(ifname) = self.arg1(n, "an interface name") else {
                    return;
                };
                if self.cfg.global.lvs_sync_daemon.is_some() {
                    self.warn(&n.span, "lvs_sync_daemon_interface: the sync daemon is already specified (ignored, as keepalived does)");
                    return;
                }
                self.note(&n.span, format!("lvs_sync_daemon_interface in a vrrp_instance is deprecated (keepalived 1.2.19); read as global_defs {{ lvs_sync_daemon {ifname} inst {} }}", r.name));
                self.cfg.global.lvs_sync_daemon = Some(LvsSyncDaemon {
                    span: n.span.clone(),
                    interface: ifname.to_string(),
                    instance: Some(r.name.clone()),
                    id: None,
                    maxlen: None,
                    port: None,
                    ttl: None,
                    group: None,
                });
            }
            "accept" => r.accept = Some(true),
            "no_accept" => r.accept = Some(false),
            "authentication" => self.authentication(n, r),
            "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                let Some(lines) = self.block(n) else { return };
                for l in lines {
                    match parse_vip_words(&l.words, &l.span) {
                        Ok((vip, warns)) => {
                            for w in warns {
                                self.warn(&l.span, w);
                            }
                            let vip = self.vip_fixups(vip, &l.span);
                            if kw == "virtual_ipaddress" {
                                r.vips.push(vip);
                            } else {
                                r.excluded_vips.push(vip);
                            }
                        }
                        // keepalived: "VRRP parsed invalid IP ... skipping IP".
                        Err(e) => self.warn(
                            &l.span,
                            format!("{kw}: {e}; the address is skipped, as keepalived does"),
                        ),
                    }
                }
            }
            "unicast_src_ip" => {
                if let Some(v) = self.arg1(n, "an IP address") {
                    r.unicast_src = self.ip(n, v);
                }
            }
            "mcast_src_ip" => {
                if let Some(v) = self.arg1(n, "an IP address") {
                    r.mcast_src = self.ip(n, v);
                }
            }
            "unicast_peer" => {
                let Some(lines) = self.block(n) else { return };
                for l in lines {
                    let Some(a) = l.arg(0) else { continue };
                    if let Some(ip) = self.ip(l, a) {
                        r.unicast_peers.push(ip);
                    }
                    if l.words.len() > 1 {
                        self.warn(
                            &l.span,
                            format!(
                                "unicast_peer options {:?} are not supported yet (ignored)",
                                &l.words[1..]
                            ),
                        );
                    }
                }
            }
            "track_interface" => {
                let Some(lines) = self.block(n) else { return };
                for l in lines {
                    if let Some(t) = self.track_if(l) {
                        if r.track_interfaces.iter().any(|x| x.name == t.name) {
                            self.warn(
                                &l.span,
                                format!("track_interface {} is listed twice; the repeat is ignored, as keepalived does", t.name),
                            );
                        } else {
                            r.track_interfaces.push(t);
                        }
                    }
                }
            }
            "track_script" => {
                let refs = self.track_script_block(n);
                r.track_scripts.extend(refs);
            }
            "dont_track_primary" => r.dont_track_primary = true,
            "garp_master_delay" => {
                if let Some(v) = self.uint(n, 0, u64::from(u32::MAX) / 1_000_000, "whole seconds") {
                    r.garp_delay = Some(Duration::from_secs(v));
                }
            }
            "garp_master_refresh" => {
                if let Some(v) = self.uint(n, 0, u64::from(u32::MAX), "whole seconds") {
                    r.garp_refresh = Some(Duration::from_secs(v));
                }
            }
            "garp_master_repeat" => {
                // keepalived allows 0 here for pre-2.0.7 compatibility.
                if let Some(v) = self.uint(n, 0, u64::from(u32::MAX), "a count") {
                    r.garp_repeat = Some(v as u32);
                }
            }
            "garp_master_refresh_repeat" => {
                if let Some(mut v) = self.uint(n, 0, u64::from(u32::MAX), "a count") {
                    if v == 0 {
                        self.warn(&n.span, "garp_master_refresh_repeat must be at least 1; using 1 as keepalived does");
                        v = 1;
                    }
                    r.garp_refresh_repeat = Some(v as u32);
                }
            }
            "use_vmac" => {
                self.warn(&n.span, "use_vmac is recorded but not implemented yet: the VIPs go on the interface itself");
                r.use_vmac = Some(n.arg(1).map(String::from));
            }
            "v3_checksum_as_v2" => {
                if let Some(b) = self.opt_bool(n) {
                    r.v3_checksum_as_v2 = Some(b);
                }
            }
            "virtual_routes" => {
                let routes = self.route_block(n);
                r.virtual_routes.extend(routes);
            }
            "old_unicast_checksum" => match n.arg(1) {
                None => r.old_unicast_checksum = OldUnicastChecksum::Always,
                Some("never") => r.old_unicast_checksum = OldUnicastChecksum::Never,
                Some(o) => self.errors.push(
                    &n.span,
                    format!("old_unicast_checksum: expected nothing or \"never\", got {o:?}"),
                ),
            },
            _ => self.unsupported(n),
        }
    }

    /// keepalived drops scope and label on IPv6 addresses with an error
    /// message and goes on; lbd does the same but says so as a warning.
    fn vip_fixups(&mut self, mut vip: Vip, span: &Span) -> Vip {
        if vip.addr.is_ipv6() {
            if vip.scope.take().is_some() {
                self.warn(
                    span,
                    format!(
                        "scope is not valid for IPv6 address {} (ignored, as keepalived does)",
                        vip.addr
                    ),
                );
            }
            if vip.label.take().is_some() {
                self.warn(
                    span,
                    format!(
                        "label is not valid for IPv6 address {} (ignored, as keepalived does)",
                        vip.addr
                    ),
                );
            }
        }
        vip
    }

    /// One `track_interface` line, as vrrp_parser.c reads it: a bad weight
    /// keeps the interface tracked with weight 0 (down = FAULT); a weight
    /// without a value or an unknown option drops the line.
    fn track_if(&mut self, l: &Node) -> Option<TrackInterface> {
        let name = l.arg(0)?.to_string();
        let weight = match (l.arg(1), l.arg(2)) {
            (None, _) => 0,
            (Some("weight"), None) => {
                self.warn(&l.span, format!("track_interface {name}: weight without a value; not tracked, as keepalived does"));
                return None;
            }
            (Some("weight"), Some(w)) => match w.parse::<i32>() {
                // keepalived still maps the old +/-254 to +/-253.
                Ok(254) => 253,
                Ok(-254) => -253,
                Ok(x) if (-253..=253).contains(&x) => x,
                _ => {
                    self.warn(&l.span, format!("track_interface {name}: weight {w:?} must be in -253..=253; tracked with weight 0 (down means FAULT), as keepalived does"));
                    0
                }
            },
            (Some(o), _) => {
                self.warn(&l.span, format!("track_interface {name}: unknown option {o:?}; not tracked, as keepalived does"));
                return None;
            }
        };
        match l.arg(3) {
            None | Some("noreverse") => {}
            Some("reverse") => self.warn(
                &l.span,
                "track_interface option reverse is not supported yet (ignored)",
            ),
            Some(o) => self.warn(
                &l.span,
                format!("track_interface {name}: unknown weight option {o:?} (ignored, as keepalived does)"),
            ),
        }
        Some(TrackInterface { name, weight })
    }

    fn authentication(&mut self, n: &Node, r: &mut RawInstance) {
        let Some(lines) = self.block(n) else { return };
        r.auth_span = Some(n.span.clone());
        for l in lines {
            match l.keyword() {
                "auth_type" => {
                    if let Some(v) = self.arg1(l, "PASS or AH") {
                        if v == "PASS" || v == "AH" {
                            r.auth_type = Some((v.to_string(), l.span.clone()));
                        } else {
                            self.warn(&l.span, format!("auth_type {v}: unknown authentication type (keepalived knows PASS and AH, case matters); no authentication, as keepalived does"));
                        }
                    }
                }
                "auth_pass" => {
                    if let Some(v) = self.arg1(l, "a password") {
                        let mut p = v.to_string();
                        // keepalived keeps the first 8 bytes (the RFC 3768 field size).
                        if p.len() > 8 {
                            let mut cut = 8;
                            while !p.is_char_boundary(cut) {
                                cut -= 1;
                            }
                            p.truncate(cut);
                            self.warn(&l.span, format!("auth_pass is longer than 8 bytes; truncated to {p:?} as keepalived does"));
                        }
                        r.auth_pass = Some(p);
                    }
                }
                _ => self.unsupported(l),
            }
        }
    }

    /// `virtual_routes { ... }` / `static_routes { ... }`: one route per
    /// line. As keepalived does, a route it cannot read is reported and
    /// skipped; the rest of the file still applies.
    fn route_block(&mut self, n: &Node) -> Vec<Route> {
        let kw = n.keyword();
        let mut out = Vec::new();
        let Some(lines) = self.block(n) else {
            return out;
        };
        for l in lines {
            if l.block.is_some() {
                self.warn(
                    &l.span,
                    format!("{kw}: unexpected '{{' block in a route (skipped)"),
                );
                continue;
            }
            match crate::routes::parse_route_words(&l.words, &l.span) {
                Ok((mut route, notes)) => {
                    for m in notes.notes {
                        self.note(&l.span, format!("{kw}: {m}"));
                    }
                    // alloc_route: a tracked route is always keepalived's own.
                    if notes.protocol_given
                        && !notes.no_track
                        && route.protocol != RTPROT_KEEPALIVED
                    {
                        self.warn(&l.span, format!("{kw}: a route without no_track is marked protocol keepalived (18); protocol reset, as keepalived does"));
                        route.protocol = RTPROT_KEEPALIVED;
                    }
                    out.push(route);
                }
                Err(crate::routes::RouteError::Invalid(e)) => self.warn(
                    &l.span,
                    format!(
                        "{kw}: invalid route {:?}: {e}; skipped, as keepalived does",
                        l.words.join(" ")
                    ),
                ),
                // keepalived would install it: say so, not "as keepalived does".
                Err(crate::routes::RouteError::Unsupported(e)) => self.warn(
                    &l.span,
                    format!("{kw}: route {:?} skipped: {e}", l.words.join(" ")),
                ),
            }
        }
        out
    }

    fn finish(&mut self, mut r: RawInstance) {
        let g = self.cfg.global.clone();
        if let Some(own) = &r.interface {
            // vrrp.c: "Ignoring track_interface X since own interface".
            if r.track_interfaces.iter().any(|t| &t.name == own) {
                let m = format!("vrrp_instance {}: track_interface {own} is the instance's own interface; ignored, as keepalived does", r.name);
                self.warn(&r.span, m);
                r.track_interfaces.retain(|t| &t.name != own);
            }
        }
        let Some(interface) = r.interface else {
            self.errors.push(
                &r.span,
                format!(
                    "vrrp_instance {}: missing interface (lbd needs one, also in unicast mode)",
                    r.name
                ),
            );
            return;
        };
        let Some(vrid) = r.vrid else {
            self.errors.push(
                &r.span,
                format!("vrrp_instance {}: missing virtual_router_id", r.name),
            );
            return;
        };
        let auth = match (r.auth_type, r.auth_pass) {
            (None, None) => None,
            (Some((t, _)), Some(p)) if t == "AH" => Some(Auth::Ah(p)),
            (Some(_), Some(p)) => Some(Auth::Pass(p)),
            (Some((_, sp)), None) => {
                self.warn(
                    &sp,
                    format!("vrrp_instance {}: authentication without auth_pass; ignored, as keepalived does", r.name),
                );
                None
            }
            (None, Some(_)) => {
                let sp = r.auth_span.unwrap_or(r.span.clone());
                self.warn(
                    &sp,
                    format!("vrrp_instance {}: auth_pass without auth_type; no authentication, as keepalived does", r.name),
                );
                None
            }
        };
        let state = r.state.as_ref().map(|s| s.0);
        if state.is_some() {
            self.state_given.insert(r.name.clone());
        }
        // vrrp_complete_instance: priority from state, then state from priority.
        let priority = r
            .priority
            .unwrap_or(if state == Some(InitialState::Master) {
                255
            } else {
                100
            });
        let initial = state.unwrap_or(if priority == 255 {
            InitialState::Master
        } else {
            InitialState::Backup
        });
        let mut preempt = !r.nopreempt;
        let mut preempt_delay = r.preempt_delay.unwrap_or(Duration::ZERO);
        if !preempt && priority == 255 {
            self.warn(&r.span, format!("vrrp_instance {}: nopreempt is incompatible with priority 255; preempting as keepalived does", r.name));
            preempt = true;
        }
        if initial == InitialState::Master {
            if !preempt {
                self.warn(&r.span, format!("vrrp_instance {}: nopreempt does not work with state MASTER; cleared as keepalived does", r.name));
                preempt = true;
            }
            if !preempt_delay.is_zero() {
                self.warn(&r.span, format!("vrrp_instance {}: preempt_delay does not work with state MASTER; cleared as keepalived does", r.name));
                preempt_delay = Duration::ZERO;
            }
        }
        if !preempt && !preempt_delay.is_zero() {
            self.warn(&r.span, format!("vrrp_instance {}: preempt_delay is incompatible with nopreempt; cleared as keepalived does", r.name));
            preempt_delay = Duration::ZERO;
        }
        let mut inst = VrrpInstance {
            name: r.name,
            span: r.span,
            interface,
            vrid,
            priority,
            advert_int: r.advert_int.unwrap_or(Duration::from_secs(1)),
            version: VrrpVersion::V2,
            initial,
            preempt,
            preempt_delay,
            // keepalived: accept unless strict, and always for the address owner.
            accept: r.accept.unwrap_or(priority == 255 || !g.strict),
            auth,
            vips: r.vips,
            excluded_vips: r.excluded_vips,
            unicast_src: r.unicast_src,
            unicast_peers: r.unicast_peers,
            track_interfaces: r.track_interfaces,
            track_scripts: r.track_scripts,
            dont_track_primary: r.dont_track_primary,
            garp: Garp {
                master_delay: r.garp_delay.unwrap_or(g.garp.master_delay),
                master_repeat: r.garp_repeat.unwrap_or(g.garp.master_repeat),
                master_refresh: r.garp_refresh.unwrap_or(g.garp.master_refresh),
                master_refresh_repeat: r
                    .garp_refresh_repeat
                    .unwrap_or(g.garp.master_refresh_repeat),
            },
            mcast_src: r.mcast_src,
            use_vmac: None,
            v3_checksum_as_v2: r.v3_checksum_as_v2.unwrap_or(g.v3_checksum_as_v2),
            old_unicast_checksum: r.old_unicast_checksum,
            virtual_routes: r.virtual_routes,
        };
        // IPv6 instances always run v3 unless told otherwise (validate rejects an explicit v2).
        inst.version = r.version.unwrap_or(if inst.is_ipv6() {
            VrrpVersion::V3
        } else {
            g.vrrp_version
        });
        inst.use_vmac = r
            .use_vmac
            .map(|n| n.unwrap_or_else(|| format!("vrrp.{vrid}")));
        self.cfg.instances.push(inst);
    }
}

/// The one-line keywords of a `vrrp_instance` that its match handles: a
/// `{` block after one is an error. The tests below check this table
/// against keywords.txt and against what the match actually handles.
const INSTANCE_LINE_KWS: &[&str] = &[
    "state",
    "interface",
    "virtual_router_id",
    "priority",
    "advert_int",
    "version",
    "nopreempt",
    "preempt",
    "preempt_delay",
    "accept",
    "no_accept",
    "unicast_src_ip",
    "mcast_src_ip",
    "dont_track_primary",
    "garp_master_delay",
    "garp_master_refresh",
    "garp_master_repeat",
    "garp_master_refresh_repeat",
    "use_vmac",
    "v3_checksum_as_v2",
    "old_unicast_checksum",
    "lvs_sync_daemon_interface",
];

/// The one-line keywords of `global_defs` that `global`'s match handles
/// (lvs_global and script_global check their own).
const GLOBAL_LINE_KWS: &[&str] = &[
    "router_id",
    "vrrp_version",
    "vrrp_mcast_group4",
    "vrrp_mcast_group6",
    "vrrp_garp_master_delay",
    "vrrp_garp_master_repeat",
    "vrrp_garp_master_refresh",
    "vrrp_garp_master_refresh_repeat",
    "vrrp_garp_interval",
    "vrrp_gna_interval",
    "vrrp_strict",
    "vrrp_skip_check_adv_addr",
    "vrrp_check_unicast_src",
    "dynamic_interfaces",
    "v3_checksum_as_v2",
];

#[cfg(test)]
mod tests {
    //! The keyword tables above are a second spelling of the match arms;
    //! these tests tie both to keywords.txt and to each other by parsing.
    #![allow(clippy::expect_used)]

    use super::*;

    /// The block keywords `instance_kw` handles (no table in the reader:
    /// `self.block` refuses a missing block itself).
    const INSTANCE_BLOCK_KWS: &[&str] = &[
        "authentication",
        "virtual_ipaddress",
        "virtual_ipaddress_excluded",
        "unicast_peer",
        "track_interface",
        "track_script",
        "virtual_routes",
    ];

    /// What the reader says about `line` in `vrrp_instance` (or in
    /// `global_defs`): every warning and error message.
    fn said(global: bool, line: &str) -> String {
        let text = if global {
            format!("global_defs {{\n{line}\n}}\n")
        } else {
            format!("vrrp_instance VI {{\ninterface eth0\nvirtual_router_id 1\n{line}\n}}\n")
        };
        match crate::parse_keepalived_str(&text, Path::new("k.conf")) {
            Ok(l) => l
                .warnings
                .iter()
                .map(|w| w.message.clone())
                .collect::<Vec<_>>()
                .join("\n"),
            Err(e) => e.to_string(),
        }
    }

    fn unsupported(msgs: &str, kw: &str) -> bool {
        msgs.contains(&format!("{kw} is not supported yet"))
            || msgs.contains(&format!("unknown keyword {kw:?}"))
            || msgs.contains(&format!("{kw} is a top-level block"))
    }

    #[test]
    fn every_table_keyword_is_a_keepalived_keyword() {
        for kw in INSTANCE_LINE_KWS
            .iter()
            .chain(GLOBAL_LINE_KWS)
            .chain(INSTANCE_BLOCK_KWS)
        {
            assert!(is_keepalived_keyword(kw), "{kw} is not in keywords.txt");
        }
    }

    /// A table entry is a keyword the match handles, and a one-line one
    /// refuses a block.
    #[test]
    fn table_keywords_are_handled_and_refuse_a_block() {
        for (global, table) in [(false, INSTANCE_LINE_KWS), (true, GLOBAL_LINE_KWS)] {
            for kw in table {
                let m = said(global, &format!("{kw} {{\n}}"));
                assert!(
                    !unsupported(&m, kw),
                    "{kw} is in a table but not handled: {m}"
                );
                assert!(
                    m.contains(&format!("{kw}: does not take a '{{' block")),
                    "{kw}: {m}"
                );
            }
        }
    }

    /// The other way round: a keepalived keyword that `vrrp_instance` or
    /// `global_defs` handles and that accepts a block without complaint is a
    /// block keyword; a one-line keyword the match handles but the table
    /// lacks would accept a block silently and fail here.
    #[test]
    fn handled_keywords_that_take_a_block_are_block_keywords() {
        let mut silent = Vec::new();
        for kw in keepalived_keywords() {
            for global in [false, true] {
                let m = said(global, &format!("{kw} {{\n}}"));
                if unsupported(&m, kw) || m.contains("does not take a '{' block") {
                    continue;
                }
                if !global && INSTANCE_BLOCK_KWS.contains(&kw) {
                    continue;
                }
                silent.push(format!(
                    "{} {kw}: {m}",
                    if global {
                        "global_defs"
                    } else {
                        "vrrp_instance"
                    }
                ));
            }
        }
        assert!(
            silent.is_empty(),
            "handled, block accepted silently:\n{}",
            silent.join("\n")
        );
    }
}
