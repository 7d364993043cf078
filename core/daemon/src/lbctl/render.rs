//! lbctl's readable views of the API's JSON: plain column tables.

use std::fmt::Write as _;

use serde_json::Value;

/// Columns padded to their widest cell, two spaces apart.
struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self, out: &mut String) {
        let n = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..n)
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for r in &self.rows {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                if i + 1 == r.len() {
                    line.push_str(c);
                } else {
                    let _ = write!(line, "{c:<w$}  ", w = widths[i]);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}

/// A JSON value as a cell: strings bare, null as `-`.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// Unix milliseconds as UTC `YYYY-MM-DD HH:MM:SS.mmm`.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

pub fn status(v: &Value) -> String {
    let mut out = String::new();
    let l = &v["lbd"];
    let _ = writeln!(
        out,
        "lbd {} (pid {}), config {}, last event {}\n",
        cell(&l["version"]),
        cell(&l["pid"]),
        cell(&l["config"]),
        cell(&l["last_event"])
    );
    let mut t = Table::new(&[
        "INSTANCE",
        "STATE",
        "PRIO",
        "CONF",
        "IFACE",
        "VRID",
        "MASTER",
        "VIPS",
        "LAST TRANSITION",
    ]);
    let mut notes = Vec::new();
    for i in list(&v["instances"]) {
        let name = cell(&i["name"]);
        let mut state = cell(&i["state"]);
        if i["demoted"] == true {
            state.push_str(" (demoted)");
        }
        let master = match &i["master"] {
            Value::Null => "-".to_string(),
            m if m["self"] == true => "self".to_string(),
            m => cell(&m["address"]),
        };
        let vips: Vec<String> = list(&i["vips"])
            .iter()
            .map(|x| {
                let mark = match x["present"].as_bool() {
                    Some(true) => "+",
                    Some(false) => "-",
                    None => "?",
                };
                format!("{}{}/{}", mark, cell(&x["address"]), cell(&x["prefix"]))
            })
            .collect();
        let last = match &i["last_transition"] {
            Value::Null => "-".to_string(),
            x => format!(
                "{}->{} ({}) {}",
                cell(&x["from"]),
                cell(&x["to"]),
                cell(&x["reason"]),
                x["time_ms"].as_u64().map(utc).unwrap_or_default()
            ),
        };
        t.row(vec![
            name.clone(),
            state,
            cell(&i["priority"]["now"]),
            cell(&i["priority"]["configured"]),
            cell(&i["interface"]),
            cell(&i["vrid"]),
            master,
            vips.join(" "),
            last,
        ]);
        // Why the priority differs, or why it is in Fault.
        for tr in list(&i["tracking"]) {
            if tr["adjust"] != 0 || tr["fault"] == true {
                notes.push(format!(
                    "  {name}: {} {} {} (weight {}): {}",
                    cell(&tr["kind"]),
                    cell(&tr["name"]),
                    if tr["ok"] == true {
                        "ok"
                    } else {
                        "down/failed"
                    },
                    cell(&tr["weight"]),
                    if tr["fault"] == true {
                        "fault".to_string()
                    } else {
                        format!("priority {:+}", tr["adjust"].as_i64().unwrap_or(0))
                    }
                ));
            }
        }
    }
    t.render(&mut out);
    out.push_str("  (VIPS: + on its interface, - not, ? unknown)\n");
    for n in notes {
        out.push_str(&n);
        out.push('\n');
    }
    let groups = list(&v["sync_groups"]);
    if !groups.is_empty() {
        out.push('\n');
        let mut t = Table::new(&["SYNC GROUP", "STATE", "MEMBERS"]);
        for g in groups {
            let members: Vec<String> = list(&g["members"]).iter().map(cell).collect();
            t.row(vec![cell(&g["name"]), cell(&g["state"]), members.join(" ")]);
        }
        t.render(&mut out);
    }
    let vss = list(&v["virtual_servers"]);
    if !vss.is_empty() {
        out.push('\n');
        let mut t = Table::new(&[
            "VIRTUAL SERVER",
            "REAL SERVER",
            "HEALTH",
            "WEIGHT",
            "CONF",
            "SOURCE",
            "CHECKERS",
        ]);
        for vs in vss {
            let vname = format!(
                "{} {}{}",
                cell(&vs["name"]),
                cell(&vs["scheduler"]),
                if vs["quorum_lost"] == true {
                    " (quorum lost)"
                } else {
                    ""
                }
            );
            for rs in list(&vs["real_servers"]) {
                let checkers: Vec<String> = list(&rs["checkers"])
                    .iter()
                    .map(|c| {
                        let s = match c["up"].as_bool() {
                            Some(true) => "up",
                            Some(false) => "down",
                            None => "?",
                        };
                        format!("{}:{s}", cell(&c["plugin"]))
                    })
                    .collect();
                t.row(vec![
                    vname.clone(),
                    cell(&rs["address"]),
                    if rs["up"] == true { "up" } else { "down" }.into(),
                    cell(&rs["weight"]["now"]),
                    cell(&rs["weight"]["configured"]),
                    cell(&rs["source"]),
                    checkers.join(" "),
                ]);
            }
        }
        t.render(&mut out);
    }
    let plugins = list(&v["plugins"]);
    if !plugins.is_empty() {
        out.push('\n');
        let mut t = Table::new(&[
            "PLUGIN", "CALLS", "FAILURES", "ERRORS", "STOPS", "MEMORY", "FROM",
        ]);
        for p in plugins {
            let stops =
                p["stopped_cpu"].as_u64().unwrap_or(0) + p["stopped_memory"].as_u64().unwrap_or(0);
            t.row(vec![
                cell(&p["name"]),
                cell(&p["calls"]),
                cell(&p["failures"]),
                cell(&p["errors"]),
                stops.to_string(),
                format!("{} KiB", p["memory_bytes"].as_u64().unwrap_or(0) >> 10),
                cell(&p["path"]),
            ]);
        }
        t.render(&mut out);
    }
    out
}

/// `ipvsadm -Ln`'s columns with lbd's: owner, virtual server, health,
/// configured weight.
pub fn ipvs(v: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "IP Virtual Server version {} (size={})",
        cell(&v["version"]),
        cell(&v["conn_tab_size"])
    );
    let mut t = Table::new(&[
        "Prot LocalAddress:Port",
        "Scheduler",
        "Owner",
        "",
        "",
        "",
        "",
        "",
    ]);
    t.row(vec![
        "  -> RemoteAddress:Port".into(),
        "Forward".into(),
        "Weight".into(),
        "ActiveConn".into(),
        "InActConn".into(),
        "Health".into(),
        "ConfWeight".into(),
        "Checkers".into(),
    ]);
    for s in list(&v["services"]) {
        let owner = match &s["virtual_server"] {
            Value::Null => cell(&s["owner"]),
            vs => format!("lbd ({})", cell(vs)),
        };
        t.row(vec![cell(&s["service"]), cell(&s["scheduler"]), owner]);
        for d in list(&s["dests"]) {
            let checkers: Vec<String> = list(&d["checkers"])
                .iter()
                .map(|c| format!("{}:{}", cell(&c["plugin"]), cell(&c["up"])))
                .collect();
            t.row(vec![
                format!("  -> {}", cell(&d["address"])),
                cell(&d["forward"]),
                cell(&d["weight"]),
                cell(&d["active_conns"]),
                cell(&d["inactive_conns"]),
                cell(&d["health"]),
                cell(&d["configured_weight"]),
                checkers.join(" "),
            ]);
        }
    }
    t.render(&mut out);
    for m in list(&v["missing"]) {
        let _ = writeln!(
            out,
            "missing from the kernel: {} (virtual server {})",
            cell(&m["service"]),
            cell(&m["virtual_server"])
        );
    }
    out
}

/// One event: `SEQ TIME KIND NAME key=value ...`.
pub fn event(v: &Value) -> String {
    let mut s = format!(
        "{:>6} {} {} {}",
        cell(&v["seq"]),
        v["time_ms"].as_u64().map(utc).unwrap_or_default(),
        cell(&v["kind"]),
        cell(&v["name"])
    );
    if let Some(o) = v.as_object() {
        for (k, x) in o {
            if !matches!(k.as_str(), "seq" | "time_ms" | "kind" | "name") {
                // One event, one line: text with spaces or newlines is quoted.
                let text = match x {
                    Value::String(t) if t.contains(char::is_whitespace) => x.to_string(),
                    _ => cell(x),
                };
                let _ = write!(s, " {k}={text}");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000");
        // 2024-02-29 12:34:56.789 UTC (a leap day).
        assert_eq!(utc(1_709_210_096_789), "2024-02-29 12:34:56.789");
    }

    #[test]
    fn status_table_shows_state_priority_and_why() {
        let v = json!({
            "lbd": {"version": "0.1.0", "pid": 7, "config": "/x.conf", "last_event": 3},
            "instances": [{
                "name": "VI_1", "interface": "eth0", "vrid": 51, "state": "BACKUP",
                "priority": {"now": 90, "configured": 150, "adjust": -60},
                "demoted": false, "faulted": false,
                "tracking": [{"kind": "script", "name": "chk", "weight": -60, "ok": false, "fault": false, "adjust": -60}],
                "vips": [{"address": "10.0.0.100", "prefix": 24, "dev": "eth0", "present": false}],
                "master": {"address": "10.0.0.2", "self": false, "time_ms": 0},
                "last_transition": {"from": "MASTER", "to": "BACKUP", "reason": "HigherPriority", "priority": 90, "time_ms": 0}
            }],
            "sync_groups": [], "virtual_servers": [], "plugins": []
        });
        let s = status(&v);
        let row = s
            .lines()
            .find(|l| l.starts_with("VI_1"))
            .unwrap_or_default();
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            &cols[..7],
            ["VI_1", "BACKUP", "90", "150", "eth0", "51", "10.0.0.2"],
            "{s}"
        );
        assert!(row.contains("-10.0.0.100/24"), "{s}");
        assert!(row.contains("MASTER->BACKUP (HigherPriority)"), "{s}");
        assert!(
            s.contains("VI_1: script chk down/failed (weight -60): priority -60"),
            "{s}"
        );
    }

    #[test]
    fn event_line() {
        let v = json!({"seq": 4, "time_ms": 0, "kind": "reload", "name": "/x.conf", "outcome": "applied"});
        assert_eq!(
            event(&v),
            "     4 1970-01-01 00:00:00.000 reload /x.conf outcome=applied"
        );
    }
}
