//! Notify hooks: readers of the one event stream (`crate::events`). Every
//! record is pushed to the event log first, which numbers it, and then the
//! same record goes to each hook whose filter matches: hooks and `/events`
//! see one sequence. Each hook delivers in order (unlike keepalived, whose
//! scripts run unordered: keepalived issues #996, #1055).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use lbd_config as cfg;
use lbd_plugin::{Event, EventKind, Host, Notifier};

use crate::events::{EventLog, Record};

enum Sink {
    Plugin(Notifier),
    #[cfg(test)]
    Test(tokio::sync::mpsc::UnboundedSender<Event>),
}

struct Hook {
    filter: cfg::NotifyFilter,
    sink: Sink,
}

#[derive(Default)]
pub struct Hooks {
    hooks: Vec<Hook>,
}

fn matches(f: &cfg::NotifyFilter, ev: &Event) -> bool {
    let kind = ev.kind.as_str();
    (f.kinds.is_empty() || f.kinds.iter().any(|k| k.eq_ignore_ascii_case(kind)))
        && f.name.as_deref().is_none_or(|n| n == ev.name)
        && (f.states.is_empty() || f.states.iter().any(|s| s.eq_ignore_ascii_case(&ev.state)))
        && f.vs.as_deref().is_none_or(|v| Some(v) == ev.vs.as_deref())
}

/// The hook's view of a record; `None` for kinds hooks are not told of
/// (drops, reloads, IPVS repairs, plugin stops).
fn hook_event(rec: &Record) -> Option<Event> {
    let kind = match rec.kind.as_str() {
        "instance" => EventKind::Instance,
        "group" => EventKind::Group,
        "real_server" => EventKind::Rs,
        "virtual_server" => EventKind::Vs,
        _ => return None,
    };
    // keepalived tells hooks of no Initialize state: neither do we.
    let text = |k: &str| {
        rec.detail
            .get(k)
            .and_then(|v| v.as_str())
            .filter(|s| *s != "INIT")
            .map(String::from)
    };
    Some(Event {
        seq: rec.seq,
        time: UNIX_EPOCH + Duration::from_millis(rec.time_ms),
        kind,
        name: rec.name.clone(),
        state: text("state")?,
        prev: text("prev"),
        priority: rec
            .detail
            .get("priority")
            .and_then(|v| v.as_u64())
            .and_then(|p| u8::try_from(p).ok()),
        vs: text("vs"),
    })
}

impl Hooks {
    pub fn new(host: &Host, c: &cfg::Config) -> Self {
        let hooks = c
            .all_notify_hooks()
            .iter()
            .map(|h| Hook {
                filter: h.filter.clone(),
                sink: Sink::Plugin(host.notifier(&h.plugin, h.options.clone())),
            })
            .collect();
        Hooks { hooks }
    }

    /// Hands a logged record to every hook whose filter matches.
    pub fn deliver(&self, rec: &Record) {
        if self.hooks.is_empty() {
            return;
        }
        let Some(ev) = hook_event(rec) else { return };
        for h in &self.hooks {
            if matches(&h.filter, &ev) {
                match &h.sink {
                    Sink::Plugin(n) => n.send(ev.clone()),
                    #[cfg(test)]
                    Sink::Test(tx) => {
                        let _ = tx.send(ev.clone());
                    }
                }
            }
        }
    }
}

/// The one way a state change enters the stream: logged (and numbered),
/// then the same record to the hooks.
pub fn publish(
    log: &EventLog,
    hooks: &Hooks,
    kind: &str,
    name: &str,
    detail: serde_json::Map<String, serde_json::Value>,
) -> Arc<Record> {
    let rec = log.push(kind, name, detail);
    hooks.deliver(&rec);
    rec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::detail;
    use serde_json::json;

    fn hooks_with(
        filter: cfg::NotifyFilter,
    ) -> (Hooks, tokio::sync::mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let hooks = Hooks {
            hooks: vec![Hook {
                filter,
                sink: Sink::Test(tx),
            }],
        };
        (hooks, rx)
    }

    #[test]
    fn hooks_and_log_see_one_sequence() {
        let log = EventLog::new(64);
        let (hooks, mut rx) = hooks_with(cfg::NotifyFilter::default());
        let inst = |state: &str, prev: &str| {
            detail(json!({"state": state, "prev": prev, "reason": "MasterDown", "priority": 150}))
        };
        publish(&log, &hooks, "instance", "VI_1", inst("BACKUP", "INIT"));
        // Not a hook kind: numbered in the log, skipped by hooks.
        publish(
            &log,
            &hooks,
            "drop",
            "VI_1",
            detail(json!({"reason": "auth"})),
        );
        publish(&log, &hooks, "instance", "VI_1", inst("MASTER", "BACKUP"));
        publish(
            &log,
            &hooks,
            "real_server",
            "10.0.1.5:80",
            detail(json!({"state": "DOWN", "prev": "UP", "vs": "10.0.0.100:80"})),
        );
        publish(
            &log,
            &hooks,
            "group",
            "G1",
            detail(json!({"state": "MASTER", "prev": "BACKUP"})),
        );
        let (recs, _) = log.since(0);
        let logged: Vec<(u64, String)> = recs
            .iter()
            .filter(|r| r.kind != "drop")
            .map(|r| (r.seq, r.name.clone()))
            .collect();
        let mut hooked = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            hooked.push((ev.seq, ev.name.clone()));
            if ev.seq == 3 {
                assert_eq!(ev.state, "MASTER");
                assert_eq!(ev.prev.as_deref(), Some("BACKUP"));
                assert_eq!(ev.priority, Some(150));
            }
            if ev.kind == EventKind::Rs {
                assert_eq!(ev.vs.as_deref(), Some("10.0.0.100:80"));
            }
        }
        assert_eq!(hooked, logged);
        assert_eq!(
            recs.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn filters_still_apply() {
        let log = EventLog::new(8);
        let (hooks, mut rx) = hooks_with(cfg::NotifyFilter {
            kinds: vec!["instance".into()],
            states: vec!["master".into()],
            ..cfg::NotifyFilter::default()
        });
        for (kind, state) in [
            ("instance", "BACKUP"),
            ("group", "MASTER"),
            ("instance", "MASTER"),
        ] {
            publish(&log, &hooks, kind, "x", detail(json!({"state": state})));
        }
        let got: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| e.seq)
            .collect();
        assert_eq!(got, vec![3]);
    }
}
