//! The event stream to notify plugins: every VRRP, sync-group, real-server
//! and quorum transition gets a sequence number and goes to each hook whose
//! filter matches. Each hook delivers in order (unlike keepalived, whose
//! scripts run unordered: keepalived issues #996, #1055).

use std::time::SystemTime;

use lbd_config as cfg;
use lbd_plugin::{Event, EventKind, Host, Notifier};

struct Hook {
    filter: cfg::NotifyFilter,
    notifier: Notifier,
}

#[derive(Default)]
pub struct Hooks {
    hooks: Vec<Hook>,
    seq: u64,
}

/// One transition, before it gets its sequence number.
pub struct Transition<'a> {
    pub kind: EventKind,
    pub name: &'a str,
    pub state: &'a str,
    pub prev: Option<&'a str>,
    pub priority: Option<u8>,
    pub vs: Option<&'a str>,
}

fn matches(f: &cfg::NotifyFilter, t: &Transition<'_>) -> bool {
    let kind = t.kind.as_str();
    (f.kinds.is_empty() || f.kinds.iter().any(|k| k.eq_ignore_ascii_case(kind)))
        && f.name.as_deref().is_none_or(|n| n == t.name)
        && (f.states.is_empty() || f.states.iter().any(|s| s.eq_ignore_ascii_case(t.state)))
        && f.vs.as_deref().is_none_or(|v| Some(v) == t.vs)
}

impl Hooks {
    pub fn new(host: &Host, c: &cfg::Config) -> Self {
        let hooks = c
            .all_notify_hooks()
            .iter()
            .map(|h| Hook {
                filter: h.filter.clone(),
                notifier: host.notifier(&h.plugin, h.options.clone()),
            })
            .collect();
        Hooks { hooks, seq: 0 }
    }

    pub fn emit(&mut self, t: Transition<'_>) {
        if self.hooks.is_empty() {
            return;
        }
        self.seq += 1;
        let ev = Event {
            seq: self.seq,
            time: SystemTime::now(),
            kind: t.kind,
            name: t.name.to_string(),
            state: t.state.to_string(),
            prev: t.prev.map(str::to_string),
            priority: t.priority,
            vs: t.vs.map(str::to_string),
        };
        for h in &self.hooks {
            if matches(&h.filter, &t) {
                h.notifier.send(ev.clone());
            }
        }
    }
}
