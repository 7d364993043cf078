//! The event log: the one stream of state changes (transitions, check
//! flips, plugin stops, reloads, IPVS repairs). Each record gets its
//! sequence number here, is kept in a ring of the last N and goes to the
//! followers of `/events?follow=1`; notify hooks read the same stream, so
//! the two never disagree on order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use ringbuf::HeapRb;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::metrics::KindLabels;

/// Default number of records kept.
pub const DEFAULT_CAPACITY: usize = 4096;

/// One event as `/events` shows it (newline-delimited JSON).
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    pub seq: u64,
    /// Unix time, milliseconds.
    pub time_ms: u64,
    /// What happened: `instance`, `group`, `real_server`, `reload`, ...
    pub kind: String,
    /// The object it happened to (instance, group, `ip:port`, plugin).
    pub name: String,
    /// Kind-specific fields (state, prev, reason, priority, error, ...).
    #[serde(flatten)]
    pub detail: serde_json::Map<String, serde_json::Value>,
}

struct Inner {
    ring: HeapRb<Arc<Record>>,
    next_seq: u64,
    /// `lbd_events_total` by kind.
    counts: Option<Family<KindLabels, Counter>>,
}

/// Cheap to clone; the node pushes, the API reads.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Mutex<Inner>>,
    tx: broadcast::Sender<Arc<Record>>,
}

impl EventLog {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(1024);
        EventLog {
            inner: Arc::new(Mutex::new(Inner {
                ring: HeapRb::new(capacity.max(1)),
                next_seq: 1,
                counts: None,
            })),
            tx,
        }
    }

    /// Counts every record pushed from now on in `family`, by kind.
    pub fn count_in(&self, family: Family<KindLabels, Counter>) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .counts = Some(family);
    }

    /// Appends one event; returns it with its sequence number.
    pub fn push(
        &self,
        kind: &str,
        name: &str,
        detail: serde_json::Map<String, serde_json::Value>,
    ) -> Arc<Record> {
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        // A panic while holding the lock cannot leave the ring half-written
        // (push_overwrite is one step): the poisoned value is still good.
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let rec = Arc::new(Record {
            seq: g.next_seq,
            time_ms,
            kind: kind.to_string(),
            name: name.to_string(),
            detail,
        });
        g.next_seq += 1;
        if let Some(c) = &g.counts {
            c.get_or_create(&KindLabels {
                kind: rec.kind.clone(),
            })
            .inc();
        }
        g.ring.push_overwrite(rec.clone());
        // Sent under the lock: followers see records in sequence order.
        let _ = self.tx.send(rec.clone());
        rec
    }

    /// Records with `seq > since`, oldest first, and the sequence number of
    /// the oldest record still held (0 when empty): a follower that asked
    /// for less than that has missed some.
    pub fn since(&self, since: u64) -> (Vec<Arc<Record>>, u64) {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest = g.ring.iter().next().map_or(0, |r| r.seq);
        let recs = g.ring.iter().filter(|r| r.seq > since).cloned().collect();
        (recs, oldest)
    }

    /// Sequence number of the newest record (0 before any).
    pub fn last_seq(&self) -> u64 {
        let g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.next_seq - 1
    }

    /// How many followers are subscribed.
    #[cfg(test)]
    pub fn followers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Records pushed from now on. Subscribe before calling `since` and
    /// drop what `since` already returned: no record is lost in between.
    #[allow(dead_code)] // served by the API
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Record>> {
        self.tx.subscribe()
    }
}

/// The plugin host counts the plugins it stops (CPU slice, memory limit);
/// this turns each new stop into an event. It polls beside the loop: a
/// busy plugin thread must not delay VRRP.
pub fn watch_plugin_stops(host: lbd_plugin::Host, log: EventLog) {
    tokio::spawn(async move {
        let mut seen: HashMap<String, (u64, u64)> = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for (name, s) in host.stats().await {
                let before = seen
                    .insert(name.clone(), (s.stopped_cpu, s.stopped_memory))
                    .unwrap_or_default();
                for (limit, now, was) in [
                    ("cpu", s.stopped_cpu, before.0),
                    ("memory", s.stopped_memory, before.1),
                ] {
                    if now > was {
                        let d = detail(serde_json::json!({
                            "state": "STOPPED",
                            "limit": limit,
                            "stops": now - was,
                            "stops_total": now,
                        }));
                        log.push("plugin", &name, d);
                    }
                }
            }
        }
    });
}

/// `detail` from a JSON object literal (anything else gives an empty map).
pub fn detail(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// At most one dropped-advert event per window and key (instance or
/// interface, reason): a flood of bad packets must not flush the ring.
/// The metric counts every drop; the events say how many they left out.
pub const DROP_WINDOW: Duration = Duration::from_secs(10);

struct Window {
    /// When the last event for this key was let through.
    since: Instant,
    /// Drops not turned into events since then.
    suppressed: u64,
}

#[derive(Default)]
pub struct DropLimiter {
    /// By name, then reason: a lookup allocates nothing (floods go here).
    keys: HashMap<String, HashMap<&'static str, Window>>,
}

impl DropLimiter {
    /// One drop at `now`: `Some(n)` when it becomes an event, `n` being
    /// the drops of this key left out before it; `None` when suppressed.
    pub fn hit(&mut self, name: &str, reason: &'static str, now: Instant) -> Option<u64> {
        if !self.keys.contains_key(name) {
            self.keys.insert(name.to_string(), HashMap::new());
        }
        let by_reason = self.keys.get_mut(name)?;
        match by_reason.get_mut(reason) {
            Some(w) if now.saturating_duration_since(w.since) < DROP_WINDOW => {
                w.suppressed += 1;
                None
            }
            Some(w) => {
                let n = w.suppressed;
                *w = Window {
                    since: now,
                    suppressed: 0,
                };
                Some(n)
            }
            None => {
                by_reason.insert(
                    reason,
                    Window {
                        since: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }

    /// Keys whose window has passed with drops left out: (name, reason,
    /// count), each reported once (called now and then, so the tail of a
    /// burst is not silent). Quiet keys are forgotten.
    pub fn expire(&mut self, now: Instant) -> Vec<(String, &'static str, u64)> {
        let mut out = Vec::new();
        for (name, by_reason) in &mut self.keys {
            by_reason.retain(|reason, w| {
                if now.saturating_duration_since(w.since) < DROP_WINDOW {
                    return true;
                }
                if w.suppressed > 0 {
                    out.push((name.clone(), *reason, w.suppressed));
                }
                false
            });
        }
        self.keys.retain(|_, by_reason| !by_reason.is_empty());
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_rate_limited_per_key() {
        let mut l = DropLimiter::default();
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(l.hit("VI_1", "auth", at(0)), Some(0));
        // Same key within the window: left out, counted.
        for ms in 1..=4 {
            assert_eq!(l.hit("VI_1", "auth", at(ms)), None);
        }
        // Other reason, other instance: their own windows.
        assert_eq!(l.hit("VI_1", "ttl", at(5)), Some(0));
        assert_eq!(l.hit("VI_2", "auth", at(5)), Some(0));
        // After the window: the next drop is an event carrying the count.
        assert_eq!(l.hit("VI_1", "auth", at(10_000)), Some(4));
        assert_eq!(l.hit("VI_1", "auth", at(10_001)), None);
        // Nothing more arrives: the left-out tail is reported once.
        assert_eq!(l.expire(at(15_000)), vec![]);
        assert_eq!(l.expire(at(20_001)), vec![("VI_1".to_string(), "auth", 1)]);
        assert_eq!(l.expire(at(40_000)), vec![]);
        assert_eq!(l.hit("VI_1", "auth", at(40_001)), Some(0));
    }

    #[test]
    fn ring_keeps_the_last_n_in_order() {
        let log = EventLog::new(3);
        for i in 0..5 {
            log.push("test", &format!("e{i}"), serde_json::Map::new());
        }
        let (recs, oldest) = log.since(0);
        assert_eq!(oldest, 3);
        let seqs: Vec<u64> = recs.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![3, 4, 5]);
        assert_eq!(log.since(4).0.len(), 1);
    }

    #[test]
    fn followers_see_new_records() {
        let log = EventLog::new(8);
        let mut rx = log.subscribe();
        log.push("reload", "lbd.conf", serde_json::Map::new());
        match rx.try_recv() {
            Ok(r) => assert_eq!((r.seq, r.kind.as_str()), (1, "reload")),
            Err(e) => panic!("no record: {e}"),
        }
    }
}
