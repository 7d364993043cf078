//! The event log: the one stream of state changes (transitions, check
//! flips, plugin stops, reloads, IPVS repairs). Each record gets its
//! sequence number here, is kept in a ring of the last N and goes to the
//! followers of `/events?follow=1`; notify hooks read the same stream, so
//! the two never disagree on order.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use ringbuf::HeapRb;
use serde::Serialize;
use tokio::sync::broadcast;

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
            })),
            tx,
        }
    }

    /// Appends one event; returns its sequence number.
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
        g.ring.push_overwrite(rec.clone());
        // Sent under the lock: followers see records in sequence order.
        let _ = self.tx.send(rec.clone());
        rec
    }

    /// Records with `seq > since`, oldest first, and the sequence number of
    /// the oldest record still held (0 when empty): a follower that asked
    /// for less than that has missed some.
    #[allow(dead_code)] // served by the API
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

#[cfg(test)]
mod tests {
    use super::*;

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
