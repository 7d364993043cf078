//! keepalived's SMTP_CHECK, UDP_CHECK, PING_CHECK and FILE_CHECK blocks,
//! and the top-level `track_file` that FILE_CHECK names, as the bundled
//! `smtp`, `udp`, `ping` and `file` plugins (check_smtp.c, check_udp.c,
//! check_ping.c, check_file.c, trackers/track_file.c).

use std::time::Duration;

use serde_json::{json, Value};

use super::Ka;
use crate::ka_syntax::Node;
use crate::model::*;
use crate::values::parse_ip;

/// keepalived IPVS_WEIGHT_LIMIT: FILE_CHECK weights are within ±this.
const WEIGHT_LIMIT: i64 = i32::MAX as i64;
/// track_file.c: a track_file's own weight is within ±254.
const TRACK_FILE_WEIGHT: i64 = 254;
/// keepalived watches a tracked file with inotify; lbd reads it this often.
pub(crate) const FILE_POLL: Duration = Duration::from_secs(1);

/// A top-level `track_file NAME { file PATH; weight N [reverse] }`.
pub(super) struct TrackFile {
    name: String,
    path: String,
    weight: i64,
    reverse: bool,
}

/// keepalived's read_hex_str (lib/parser.c): blanks separate groups, each
/// group is read two digits at a time and an odd last digit is a byte of
/// its own ("Ab12f 3" = AB 12 0F 03); with `wildcards`, an X digit matches
/// anything. Returns the canonical form: two lowercase digits per byte.
pub(crate) fn hex_text(s: &str, wildcards: bool) -> Result<String, String> {
    let mut out = String::new();
    for group in s.split([' ', '\t']).filter(|g| !g.is_empty()) {
        let chars: Vec<char> = group.chars().collect();
        for pair in chars.chunks(2) {
            if pair.len() == 1 {
                out.push('0');
            }
            for c in pair {
                match c {
                    '0'..='9' | 'a'..='f' | 'A'..='F' => out.push(c.to_ascii_lowercase()),
                    'x' | 'X' if wildcards => out.push('x'),
                    _ => return Err(format!("{c:?} is not a hex digit")),
                }
            }
        }
    }
    if out.is_empty() {
        return Err("empty hex string".into());
    }
    Ok(out)
}

impl Ka {
    /// `track_file NAME { ... }` (and its deprecated synonym `vrrp_track_file`).
    pub(super) fn track_file(&mut self, n: &Node) {
        if n.keyword() == "vrrp_track_file" {
            self.warn(
                &n.span,
                "vrrp_track_file is deprecated: write track_file (read the same way)",
            );
        }
        let Some(name) = self.arg1(n, "a name") else {
            return;
        };
        let name = name.to_string();
        let Some(b) = self.block(n) else { return };
        let mut t = TrackFile {
            name: name.clone(),
            path: String::new(),
            weight: 1,
            reverse: false,
        };
        let mut weight_set = false;
        for l in b {
            self.no_block(l);
            match (l.keyword(), l.arg(1)) {
                ("file", Some(p)) if t.path.is_empty() => t.path = p.to_string(),
                ("file", Some(p)) => self.warn(
                    &l.span,
                    format!(
                        "track_file {name}: file already set (ignoring {p:?}, as keepalived does)"
                    ),
                ),
                ("weight", Some(_)) if weight_set => self.warn(
                    &l.span,
                    format!("track_file {name}: weight already set (ignored, as keepalived does)"),
                ),
                ("weight", Some(w)) => {
                    weight_set = true;
                    match w.parse::<i64>() {
                        Ok(v) if v.abs() <= TRACK_FILE_WEIGHT => t.weight = v,
                        _ => self.warn(
                            &l.span,
                            format!("track_file {name}: weight {w:?} must be -{TRACK_FILE_WEIGHT}..={TRACK_FILE_WEIGHT}: using 1, as keepalived does"),
                        ),
                    }
                    match l.arg(2) {
                        None => {}
                        Some("reverse") => t.reverse = true,
                        Some(o) => self.warn(
                            &l.span,
                            format!("track_file {name}: unknown weight option {o:?} (ignored)"),
                        ),
                    }
                }
                ("file" | "weight", None) => self.errors.push(
                    &l.span,
                    format!("track_file {name}: {} needs a value", l.keyword()),
                ),
                (k, _) => self.warn(
                    &l.span,
                    format!("track_file {name}: keyword {k} is not supported yet (ignored)"),
                ),
            }
        }
        if t.path.is_empty() {
            self.warn(
                &n.span,
                format!("track_file {name} has no file (ignored, as keepalived does)"),
            );
            return;
        }
        if self.track_files.iter().any(|x| x.name == name) {
            self.warn(
                &n.span,
                format!("track_file {name} is defined twice: the first one is used"),
            );
            return;
        }
        self.track_files.push(t);
    }

    /// The connection keywords every one of these checkers takes
    /// (check_api.c install_checker_common_keywords), and the timing ones;
    /// false if `l` is neither. `conn` is set when a connection option was.
    fn conn_kw(&mut self, l: &Node, c: &mut CheckSpec, conn: &mut bool) -> bool {
        let kw = l.keyword();
        if self.timing_kw_pub(l, &mut c.timing) {
            *conn |= kw == "connect_timeout";
            return true;
        }
        let (key, v) = match kw {
            "connect_ip" | "bindto" => {
                let Some(a) = self.arg1(l, "an IP address") else {
                    return true;
                };
                // check_api.c: "Invalid connect_ip address - ignoring".
                let Ok(ip) = parse_ip(a, kw) else {
                    self.invalid_ignored(l, a, "an IP address");
                    return true;
                };
                let key = if kw == "bindto" {
                    "bind_ip"
                } else {
                    "connect_ip"
                };
                (key, json!(ip.to_string()))
            }
            "connect_port" | "bind_port" => {
                let Some(p) = self.uint(l, 0, 65535, "a port") else {
                    return true;
                };
                (kw, json!(p))
            }
            _ => return false,
        };
        self.no_block(l);
        *conn = true;
        c.options.insert(key.into(), v);
        true
    }

    fn spec(&self, n: &Node, plugin: &str) -> CheckSpec {
        CheckSpec {
            span: n.span.clone(),
            plugin: plugin.into(),
            options: Options::new(),
            timing: CheckTiming::default(),
        }
    }

    fn not_yet(&mut self, l: &Node, kw: &str) {
        let m = format!(
            "{kw}: keyword {} is not supported yet (ignored)",
            l.keyword()
        );
        self.warn(&l.span, m);
    }

    /// SMTP_CHECK, UDP_CHECK, PING_CHECK or FILE_CHECK: the checks it makes
    /// (an SMTP_CHECK makes one per `host` block, as keepalived does).
    pub(super) fn l4_checker(&mut self, n: &Node) -> Vec<CheckSpec> {
        let kw = n.keyword();
        let body = n.block.as_deref().unwrap_or_default();
        match kw {
            "PING_CHECK" => {
                let mut c = self.spec(n, "ping");
                for l in body {
                    if !self.conn_kw(l, &mut c, &mut false) {
                        self.not_yet(l, kw);
                    }
                }
                if c.options.remove("bind_port").is_some() {
                    self.warn(
                        &n.span,
                        "PING_CHECK: bind_port has no meaning for ICMP (ignored)",
                    );
                }
                if c.options.remove("connect_port").is_some() {
                    self.warn(
                        &n.span,
                        "PING_CHECK: connect_port has no meaning for ICMP (ignored)",
                    );
                }
                vec![c]
            }
            "UDP_CHECK" => self.udp_check(n, body).into_iter().collect(),
            "SMTP_CHECK" => self.smtp_check(n, body),
            _ => self.file_check(n, body).into_iter().collect(),
        }
    }

    fn udp_check(&mut self, n: &Node, body: &[Node]) -> Option<CheckSpec> {
        let mut c = self.spec(n, "udp");
        let (mut min, mut max) = (0u64, 255u64);
        for l in body {
            if self.conn_kw(l, &mut c, &mut false) {
                continue;
            }
            let k = l.keyword();
            match k {
                "payload" | "require_reply" => {
                    self.no_block(l);
                    if k == "require_reply" {
                        c.options.insert("require_reply".into(), json!(true));
                    }
                    if l.words.len() < 2 {
                        if k == "payload" {
                            self.errors
                                .push(&l.span, "UDP_CHECK payload: expected a hex string");
                        }
                        continue;
                    }
                    match hex_text(&l.words[1..].join(" "), k == "require_reply") {
                        Ok(h) => {
                            let key = if k == "payload" { "payload" } else { "reply" };
                            c.options.insert(key.into(), json!(h));
                        }
                        // keepalived: "Invalid hex string for UDP_CHECK ..."; the value is ignored.
                        Err(e) => self.warn(
                            &l.span,
                            format!("UDP_CHECK {k}: {e}; ignored, as keepalived does"),
                        ),
                    }
                }
                "min_reply_length" | "max_reply_length" => {
                    self.no_block(l);
                    if let Some(v) = self.uint(l, 0, 65535, "a length") {
                        c.options.insert(k.into(), json!(v));
                        if k == "min_reply_length" {
                            min = v;
                        } else {
                            max = v;
                        }
                    }
                }
                _ => self.not_yet(l, "UDP_CHECK"),
            }
        }
        if min > max {
            self.warn(
                &n.span,
                format!("UDP_CHECK: min_reply_length {min} > max_reply_length {max}: a reply always fails"),
            );
        }
        Some(c)
    }

    /// keepalived (check_smtp.c): each `host` block is a checker of its own
    /// with the block's other settings; the block's own connection
    /// options, when it has any (or no host), make one more.
    fn smtp_check(&mut self, n: &Node, body: &[Node]) -> Vec<CheckSpec> {
        let mut main = self.spec(n, "smtp");
        let mut conn = false;
        let mut hosts = Vec::new();
        for l in body {
            if self.conn_kw(l, &mut main, &mut conn) {
                continue;
            }
            match l.keyword() {
                "helo_name" => {
                    self.no_block(l);
                    if main.options.contains_key("helo_name") {
                        self.warn(&l.span, "SMTP_CHECK: helo_name already set (the last one is used, as keepalived does)");
                    }
                    match l.arg(1) {
                        Some(h) => {
                            main.options.insert("helo_name".into(), json!(h));
                        }
                        None => self
                            .errors
                            .push(&l.span, "SMTP_CHECK helo_name: expected a name"),
                    }
                }
                "host" => {
                    let Some(b) = self.block(l) else { continue };
                    let mut h = self.spec(l, "smtp");
                    for hl in b {
                        let k = hl.keyword();
                        if matches!(
                            k,
                            "delay_loop" | "retry" | "delay_before_retry" | "warmup" | "alpha"
                        ) {
                            self.warn(&hl.span, format!("SMTP_CHECK host: {k} is ignored (keepalived takes only the connection settings of a host)"));
                            continue;
                        }
                        if self.conn_kw(hl, &mut h, &mut false) {
                            continue;
                        }
                        self.not_yet(hl, "SMTP_CHECK host");
                    }
                    hosts.push(h);
                }
                _ => self.not_yet(l, "SMTP_CHECK"),
            }
        }
        if !hosts.is_empty() {
            self.warn(
                &n.span,
                "SMTP_CHECK: host blocks are deprecated in keepalived (each is one more check; write several SMTP_CHECKs)",
            );
        }
        // A host keeps only its connection settings and its own
        // connect_timeout (keepalived copies the rest from the block).
        let shared = main.clone();
        let mut out = Vec::new();
        if conn || hosts.is_empty() {
            out.push(main);
        }
        for h in hosts {
            let mut c = shared.clone();
            c.span = h.span;
            for k in ["connect_ip", "connect_port", "bind_ip", "bind_port"] {
                c.options.remove(k);
            }
            c.options.extend(h.options);
            c.timing.connect_timeout = h.timing.connect_timeout;
            out.push(c);
        }
        out
    }

    fn file_check(&mut self, n: &Node, body: &[Node]) -> Option<CheckSpec> {
        let mut file = None;
        let mut named = false;
        let mut weight: Option<(i64, bool)> = None;
        for l in body {
            self.no_block(l);
            match l.keyword() {
                "track_file" => {
                    named = true;
                    let Some(name) = self.arg1(l, "a track_file name") else {
                        continue;
                    };
                    match self.track_files.iter().position(|t| t.name == name) {
                        Some(i) => file = Some(i),
                        // keepalived: "track_file not found", then the checker is ignored.
                        None => self.warn(
                            &l.span,
                            format!("FILE_CHECK: track_file {name} not found (it must be defined above); the checker is ignored, as keepalived does"),
                        ),
                    }
                }
                "weight" => {
                    let Some(w) = self.arg1_any(l) else { continue };
                    let reverse = match l.arg(2) {
                        None | Some("noreverse") => false,
                        Some("reverse") => true,
                        Some(o) => {
                            self.warn(&l.span, format!("FILE_CHECK weight: unknown option {o:?} (ignored, as keepalived does)"));
                            continue;
                        }
                    };
                    match w.parse::<i64>() {
                        Ok(v) if v.abs() <= WEIGHT_LIMIT => weight = Some((v, reverse)),
                        _ => self.warn(
                            &l.span,
                            format!("FILE_CHECK weight {w:?} must be -{WEIGHT_LIMIT}..={WEIGHT_LIMIT} (ignored, as keepalived does)"),
                        ),
                    }
                }
                _ => self.not_yet(l, "FILE_CHECK"),
            }
        }
        let Some(i) = file else {
            if !named {
                self.warn(
                    &n.span,
                    "FILE_CHECK: no track_file given; the checker is ignored, as keepalived does",
                );
            }
            return None;
        };
        let t = &self.track_files[i];
        let (w, reverse) = weight.unwrap_or((t.weight, t.reverse));
        let mut c = self.spec(n, "file");
        c.options.insert("path".into(), Value::from(t.path.clone()));
        c.options.insert("weight".into(), json!(w));
        c.options.insert("reverse".into(), json!(reverse));
        // keepalived knows the file's value at once (inotify) and has no
        // timing for a FILE_CHECK: lbd reads it every second, without
        // retries, warm-up or alpha.
        c.timing = CheckTiming {
            connect_timeout: None,
            delay_loop: Some(FILE_POLL),
            retry: Some(0),
            delay_before_retry: None,
            warmup: Some(Duration::ZERO),
            alpha: Some(false),
        };
        Some(c)
    }

    /// The first argument of `l`, with an error naming the keyword when missing.
    fn arg1_any<'n>(&mut self, l: &'n Node) -> Option<&'n str> {
        let a = l.arg(1);
        if a.is_none() {
            self.errors
                .push(&l.span, format!("{}: expected a value", l.keyword()));
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_like_keepalived() {
        // keepalived.conf(5): "Ab12f 3 456 546443123" = AB 12 0F 03 45 06 54 64 43 12 03.
        assert_eq!(
            hex_text("Ab12f 3 456 546443123", false).unwrap(),
            "ab120f0345065464431203"
        );
        assert_eq!(hex_text("de ad\tbe ef", false).unwrap(), "deadbeef");
        assert_eq!(hex_text("0aXx 1x", true).unwrap(), "0axx1x");
        assert!(hex_text("0aXx", false).is_err());
        assert!(hex_text("0g", false).is_err());
        assert!(hex_text("  ", false).is_err());
    }
}
