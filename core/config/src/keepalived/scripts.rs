//! keepalived's scripts as plugins: `vrrp_script` / `track_script`, the
//! `notify*` keywords and notify FIFOs, and the checker blocks of real
//! servers (HTTP_GET, SSL_GET, TCP_CHECK, MISC_CHECK, DNS_CHECK).

use serde_json::{json, Value};

use super::Ka;
use crate::ka_syntax::Node;
use crate::model::*;

/// keepalived's `vrrp_script` defaults (vrrp_track.c): interval 1 s,
/// weight 0, rise 1, fall 1.
const SCRIPT_INTERVAL_SECS: u64 = 1;

/// A command line split into argv as keepalived does (no shell): blanks
/// separate words, single quotes keep everything, double quotes keep all
/// but backslash escapes, a backslash outside quotes escapes one character.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut have = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => cur.extend(chars.next()),
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                have = true;
            }
            (None, '\\') => {
                cur.extend(chars.next());
                have = true;
            }
            (None, c) if c.is_whitespace() => {
                if have || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if let Some(q) = quote {
        return Err(format!("unterminated {q} quote in {s:?}"));
    }
    if have || !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// keepalived's HTTP_GET `status_code`: codes and ranges ("200-299").
fn status_ranges(words: &[String]) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for w in words {
        for part in w.split(',').filter(|p| !p.is_empty()) {
            let (lo, hi) = part.split_once('-').unwrap_or((part, part));
            let lo: u16 = lo
                .parse()
                .map_err(|_| format!("bad status code {part:?}"))?;
            let hi: u16 = hi
                .parse()
                .map_err(|_| format!("bad status code {part:?}"))?;
            if !(100..=599).contains(&lo) || !(lo..=599).contains(&hi) {
                return Err(format!("status code {part:?} out of 100-599"));
            }
            out.push(json!([lo, hi]));
        }
    }
    Ok(out)
}

fn state_of(kw: &str) -> Option<&'static str> {
    Some(match kw {
        "notify_master" => "MASTER",
        "notify_backup" => "BACKUP",
        "notify_fault" => "FAULT",
        "notify_stop" => "STOP",
        _ => return None,
    })
}

impl Ka {
    /// The command of `kw "cmd args"` (or unquoted words), as one string.
    fn command(&mut self, n: &Node) -> Option<String> {
        if n.words.len() < 2 {
            self.errors
                .push(&n.span, format!("{}: expected a command", n.keyword()));
            return None;
        }
        let cmd = n.words[1..].join(" ");
        match split_words(&cmd) {
            Ok(w) if !w.is_empty() => Some(cmd),
            Ok(_) => {
                self.errors
                    .push(&n.span, format!("{}: empty command", n.keyword()));
                None
            }
            Err(e) => {
                self.errors.push(&n.span, format!("{}: {e}", n.keyword()));
                None
            }
        }
    }

    fn argv(&mut self, n: &Node) -> Option<Value> {
        let cmd = self.command(n)?;
        split_words(&cmd).ok().map(|w| json!(w))
    }

    fn int_arg(&mut self, n: &Node, min: i64, max: i64, what: &str) -> Option<i64> {
        let raw = self.arg1(n, what)?;
        match raw.parse::<i64>() {
            Ok(v) if (min..=max).contains(&v) => Some(v),
            _ => {
                self.invalid_ignored(n, raw, &format!("{what} in {min}..={max}"));
                None
            }
        }
    }

    /// `vrrp_script NAME { ... }`.
    pub(super) fn vrrp_script(&mut self, n: &Node) {
        let Some(name) = self.arg1(n, "a script name") else {
            return;
        };
        let Some(b) = self.block(n) else { return };
        let mut s = TrackScript {
            span: n.span.clone(),
            name: name.to_string(),
            plugin: "exec".into(),
            options: Options::new(),
            interval: std::time::Duration::from_secs(SCRIPT_INTERVAL_SECS),
            timeout: None,
            weight: 0,
            weight_reverse: false,
            rise: 1,
            fall: 1,
            init_fail: false,
        };
        let mut have_script = false;
        for c in b {
            match c.keyword() {
                "script" => {
                    if let Some(argv) = self.argv(c) {
                        s.options.insert("argv".into(), argv);
                        have_script = true;
                    }
                }
                "interval" => {
                    if let Some(d) = self.secs(c, "seconds") {
                        if d.is_zero() {
                            // vrrp_parser.c: "must be greater than 0, setting to 1".
                            self.warn(&c.span, "vrrp_script interval must be greater than 0; using 1 s, as keepalived does");
                            s.interval = std::time::Duration::from_secs(1);
                        } else {
                            s.interval = d;
                        }
                    }
                }
                "timeout" => {
                    s.timeout = self.secs(c, "seconds").map(|d| {
                        if d.is_zero() {
                            self.warn(&c.span, "vrrp_script timeout must be greater than 0; using 1 s, as keepalived does");
                            std::time::Duration::from_secs(1)
                        } else {
                            d
                        }
                    });
                }
                "weight" => {
                    if let Some(w) = self.int_arg(c, -253, 253, "a weight") {
                        s.weight = w as i32;
                    }
                    s.weight_reverse = c.arg(2) == Some("reverse");
                }
                "rise" | "fall" => {
                    // keepalived: "value invalid, defaulting to 1" (1 is the default).
                    if let Some(v) = self.uint(c, 1, u64::from(i32::MAX as u32), "a count") {
                        if c.keyword() == "rise" {
                            s.rise = v as u32;
                        } else {
                            s.fall = v as u32;
                        }
                    }
                }
                "init_fail" => s.init_fail = true,
                "user" => {
                    if let Some(u) = user_spec(c.arg(1), c.arg(2)) {
                        s.options.insert("user".into(), json!(u));
                    }
                }
                _ => self.unsupported(c),
            }
        }
        if !have_script {
            self.warn(
                &n.span,
                format!("vrrp_script {name}: no script set; removed, as keepalived does"),
            );
            return;
        }
        if self.cfg.track_scripts.iter().any(|t| t.name == s.name) {
            self.errors
                .push(&n.span, format!("vrrp_script {name} is defined twice"));
            return;
        }
        self.cfg.track_scripts.push(s);
    }

    /// `track_script { NAME [weight N [reverse]] ... }`.
    pub(super) fn track_script_block(&mut self, n: &Node) -> Vec<TrackScriptRef> {
        let mut out = Vec::new();
        let Some(lines) = self.block(n) else {
            return out;
        };
        for l in lines {
            let Some(name) = l.arg(0) else { continue };
            let mut r = TrackScriptRef {
                span: l.span.clone(),
                name: name.to_string(),
                weight: None,
                reverse: false,
            };
            // vrrp_parser.c: a bad weight falls back to the script's own, a
            // weight without a value or an unknown option drops the entry, a
            // repeat is ignored.
            match (l.arg(1), l.arg(2)) {
                (None, _) => {}
                (Some("weight"), None) => {
                    self.warn(&l.span, format!("track_script {name}: weight without a value; not tracked, as keepalived does"));
                    continue;
                }
                (Some("weight"), Some(w)) => {
                    match w.parse::<i32>() {
                        Ok(254) => r.weight = Some(253),
                        Ok(-254) => r.weight = Some(-253),
                        Ok(v) if (-253..=253).contains(&v) => r.weight = Some(v),
                        _ => self.warn(&l.span, format!("track_script {name}: weight {w:?} must be in -253..=253; the script's own weight applies, as keepalived does")),
                    }
                    match l.arg(3) {
                        None | Some("noreverse") => {}
                        Some("reverse") => r.reverse = true,
                        Some(o) => self.warn(&l.span, format!("track_script {name}: unknown weight option {o:?} (ignored, as keepalived does)")),
                    }
                }
                (Some(o), _) => {
                    self.warn(&l.span, format!("track_script {name}: unknown option {o:?}; not tracked, as keepalived does"));
                    continue;
                }
            }
            if out.iter().any(|x: &TrackScriptRef| x.name == r.name) {
                self.warn(&l.span, format!("track_script {name} is listed twice; the repeat is ignored, as keepalived does"));
                continue;
            }
            out.push(r);
        }
        out
    }

    /// The `notify*` keywords of an instance (`kind` INSTANCE) or a sync
    /// group (GROUP). Returns false when `n` is none of them.
    pub(super) fn notify_kw(&mut self, n: &Node, kind: &str, name: &str) -> bool {
        let kw = n.keyword();
        let (states, args) = match (kw, state_of(kw)) {
            ("notify", _) => (Vec::new(), true),
            (_, Some(st)) => (vec![st.to_string()], false),
            ("notify_master_rx_lower_pri" | "notify_deleted", _) => {
                self.warn(&n.span, format!("{kw} is not supported yet (ignored)"));
                return true;
            }
            _ => return false,
        };
        self.no_block(n);
        if let Some(cmd) = self.command(n) {
            self.push_exec_hook(n, cmd, args, kind, name, states);
        }
        true
    }

    fn push_exec_hook(
        &mut self,
        n: &Node,
        script: String,
        args: bool,
        kind: &str,
        name: &str,
        states: Vec<String>,
    ) {
        let mut options = Options::new();
        options.insert("script".into(), json!(script));
        options.insert("args".into(), json!(args));
        self.cfg.notify_hooks.push(NotifyHook {
            span: n.span.clone(),
            plugin: "exec".into(),
            options,
            filter: NotifyFilter {
                kinds: vec![kind.to_string()],
                name: Some(name.to_string()),
                states,
                vs: None,
            },
        });
    }

    /// global_defs keywords of scripts and notify FIFOs; false when `n` is
    /// none of them.
    pub(super) fn script_global(&mut self, n: &Node) -> bool {
        let kw = n.keyword();
        let kinds: &[&str] = match kw {
            "notify_fifo" | "notify_fifo_script" => &[],
            "vrrp_notify_fifo" | "vrrp_notify_fifo_script" => &["INSTANCE", "GROUP"],
            "lvs_notify_fifo" | "lvs_notify_fifo_script" => &["RS", "VS"],
            "script_user" => {
                self.no_block(n);
                match n.arg(1) {
                    Some(u) => {
                        self.cfg.global.script_user =
                            Some((u.to_string(), n.arg(2).map(String::from)))
                    }
                    None => self
                        .errors
                        .push(&n.span, "script_user: expected a user name"),
                }
                return true;
            }
            "enable_script_security" => {
                self.no_block(n);
                self.cfg.global.enable_script_security = true;
                return true;
            }
            _ => return false,
        };
        self.no_block(n);
        let Some(value) = n.arg(1) else {
            self.errors.push(&n.span, format!("{kw}: expected a path"));
            return true;
        };
        let key = if kw.ends_with("_script") {
            "script"
        } else {
            "path"
        };
        // A fifo and its script are one hook, whichever line comes first.
        let base = kw.trim_end_matches("_script").to_string();
        let pos = self.fifo_hooks.iter().position(|(b, _)| *b == base);
        let idx = match pos {
            Some(i) => self.fifo_hooks[i].1,
            None => {
                self.cfg.notify_hooks.push(NotifyHook {
                    span: n.span.clone(),
                    plugin: "fifo".into(),
                    options: Options::new(),
                    filter: NotifyFilter {
                        kinds: kinds.iter().map(|k| k.to_string()).collect(),
                        name: None,
                        states: Vec::new(),
                        vs: None,
                    },
                });
                let i = self.cfg.notify_hooks.len() - 1;
                self.fifo_hooks.push((base, i));
                i
            }
        };
        if let Some(h) = self.cfg.notify_hooks.get_mut(idx) {
            h.options.insert(key.into(), json!(value));
        }
        true
    }

    /// A checker block of a real server: its checks (an SMTP_CHECK with
    /// `host` blocks makes several); none, with a warning, for kinds lbd
    /// has no plugin for.
    pub(super) fn checker(&mut self, n: &Node) -> Vec<CheckSpec> {
        let kw = n.keyword();
        let plugin = match kw {
            "HTTP_GET" => "http_get",
            "SSL_GET" => "https_get",
            "TCP_CHECK" => "tcp",
            "MISC_CHECK" => "exec",
            "DNS_CHECK" => "dns",
            "SMTP_CHECK" | "UDP_CHECK" | "PING_CHECK" | "FILE_CHECK" => return self.l4_checker(n),
            _ => {
                self.warn(&n.span, unsupported_checker_msg(kw));
                return Vec::new();
            }
        };
        let mut c = CheckSpec {
            span: n.span.clone(),
            plugin: plugin.into(),
            options: Options::new(),
            timing: CheckTiming::default(),
        };
        let mut urls = Vec::new();
        for l in n.block.as_deref().unwrap_or_default() {
            if self.timing_kw_pub(l, &mut c.timing) {
                continue;
            }
            let k = l.keyword();
            let one = |key: &str| l.arg(1).map(|v| (key.to_string(), json!(v)));
            let set = match (plugin, k) {
                (_, "connect_ip") => one("connect_ip"),
                ("tcp", "bind_port") => l
                    .arg(1)
                    .and_then(|v| v.parse::<u16>().ok())
                    .map(|p| ("bind_port".to_string(), json!(p))),
                (_, "bindto") => one("bind_ip"),
                (_, "connect_port") => l
                    .arg(1)
                    .and_then(|v| v.parse::<u16>().ok())
                    .map(|p| ("connect_port".to_string(), json!(p))),
                (_, "nb_get_retry") => {
                    self.note(
                        &l.span,
                        "nb_get_retry is deprecated (keepalived: \"please use 'retry'\"); read as retry",
                    );
                    if let Some(v) = self.uint(l, 1, u64::from(u32::MAX), "a count") {
                        c.timing.retry = Some(v as u32);
                    }
                    continue;
                }
                ("http_get" | "https_get", "url") => {
                    if let Some(u) = self.url(l) {
                        urls.push(u);
                    }
                    continue;
                }
                ("http_get" | "https_get", "virtualhost") => one("host"),
                ("http_get" | "https_get", "http_protocol") => one("http_protocol"),
                ("https_get", "enable_sni") => Some(("enable_sni".into(), json!(true))),
                ("exec", "misc_path") => {
                    if let Some(argv) = self.argv(l) {
                        c.options.insert("argv".into(), argv);
                    }
                    continue;
                }
                ("exec", "misc_timeout") => self
                    .secs(l, "seconds")
                    .map(|d| ("timeout".to_string(), json!(d.as_secs_f64()))),
                ("exec", "misc_dynamic") => Some(("dynamic".into(), json!(true))),
                ("exec", "user") => {
                    user_spec(l.arg(1), l.arg(2)).map(|u| ("user".to_string(), json!(u)))
                }
                ("dns", "type") => one("type"),
                ("dns", "name") => one("name"),
                _ => {
                    self.warn(
                        &l.span,
                        format!("{kw}: keyword {k} is not supported yet (ignored)"),
                    );
                    continue;
                }
            };
            match set {
                Some((key, v)) => {
                    c.options.insert(key, v);
                }
                None => self
                    .errors
                    .push(&l.span, format!("{kw} {k}: missing or invalid value")),
            }
        }
        if !urls.is_empty() {
            c.options.insert("urls".into(), Value::Array(urls));
        }
        if plugin == "exec" && !c.options.contains_key("argv") {
            self.warn(&n.span, "MISC_CHECK without misc_path: the checker is skipped, as keepalived does (\"No script path has been specified\")");
            return Vec::new();
        }
        if matches!(plugin, "http_get" | "https_get") && !c.options.contains_key("urls") {
            // keepalived 2.4 ignores such a checker; 2.2.7 crashes its checker process.
            self.warn(&n.span, format!("{kw} without a url block: the checker is skipped, as keepalived does (\"has no urls specified - ignoring\")"));
            return Vec::new();
        }
        vec![c]
    }

    /// `url { path P; status_code 200-299; digest D; regex R; regex_no_match }`.
    fn url(&mut self, n: &Node) -> Option<Value> {
        let b = self.block(n)?;
        let mut u = serde_json::Map::new();
        for l in b {
            match (l.keyword(), l.arg(1)) {
                ("path", Some(p)) => {
                    u.insert("path".into(), json!(p));
                }
                ("digest", Some(d)) => {
                    u.insert("digest".into(), json!(d.to_ascii_lowercase()));
                }
                ("status_code", Some(_)) => match status_ranges(&l.words[1..]) {
                    Ok(r) => {
                        u.insert("status".into(), Value::Array(r));
                    }
                    Err(e) => self.errors.push(&l.span, format!("status_code: {e}")),
                },
                ("regex", Some(_)) => {
                    u.insert("regex".into(), json!(l.words[1..].join(" ")));
                }
                ("regex_no_match", _) => {
                    u.insert("regex_no_match".into(), json!(true));
                }
                (k, _) => self.warn(
                    &l.span,
                    format!("url: keyword {k} is not supported yet (ignored)"),
                ),
            }
        }
        Some(Value::Object(u))
    }
}

/// Whether lbd has a plugin for this keepalived checker kind.
pub(crate) fn is_run_checker(kw: &str) -> bool {
    matches!(
        kw,
        "HTTP_GET"
            | "SSL_GET"
            | "TCP_CHECK"
            | "MISC_CHECK"
            | "DNS_CHECK"
            | "SMTP_CHECK"
            | "UDP_CHECK"
            | "PING_CHECK"
            | "FILE_CHECK"
    )
}

/// The warning for a checker kind lbd does not run: what it means for the
/// real server.
pub(crate) fn unsupported_checker_msg(kw: &str) -> String {
    format!("{kw} is not supported yet: the check is not run and the real server is treated as up")
}

/// keepalived's `user USER [GROUP]` as the exec plugin's `user` option.
fn user_spec(user: Option<&str>, group: Option<&str>) -> Option<String> {
    let u = user?;
    Some(match group {
        Some(g) => format!("{u}:{g}"),
        None => u.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_like_keepalived() {
        let w = |s: &str| split_words(s).unwrap();
        assert_eq!(w("killall -0 haproxy"), ["killall", "-0", "haproxy"]);
        assert_eq!(
            w("  /bin/sh -c 'test -f /x'  "),
            ["/bin/sh", "-c", "test -f /x"]
        );
        assert_eq!(w(r#"a "b \"c\" d" e\ f"#), ["a", r#"b "c" d"#, "e f"]);
        assert_eq!(w("x ''"), ["x", ""]);
        assert!(split_words("a 'b").is_err());
    }

    #[test]
    fn status_code_ranges() {
        let r = status_ranges(&["200-299".into(), "301,302".into()]).unwrap();
        assert_eq!(
            r,
            vec![json!([200, 299]), json!([301, 301]), json!([302, 302])]
        );
        assert!(status_ranges(&["99".into()]).is_err());
        assert!(status_ranges(&["300-200".into()]).is_err());
        assert!(status_ranges(&["abc".into()]).is_err());
    }
}
