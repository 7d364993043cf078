//! Requests from the control API to the node loop. The node owns its
//! state: a handler sends one `Request` with a oneshot for the answer, the
//! loop answers between two events, and anything slow (kernel reads,
//! plugin statistics) is done by the handler on what the loop handed back.

use std::path::Path;

use tokio::sync::oneshot;

use crate::node::status::{IpvsView, Status};

/// A `POST /reload` answer: the event's sequence number and `Ok` when the
/// new configuration was applied, else the reason it was refused.
pub type ReloadReply = Result<ReloadDone, String>;

#[derive(Debug, Clone)]
pub struct ReloadDone {
    /// The `reload` event in the event log.
    pub event: u64,
}

/// Why a request could not be answered: the HTTP status it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    NotFound(String),
    /// The node refused it (e.g. maintenance not available).
    Failed(String),
}

pub enum Request {
    /// A snapshot of the node for `/status`.
    Status(oneshot::Sender<Box<Status>>),
    /// Read the configuration again and answer once it is applied or refused.
    Reload(oneshot::Sender<ReloadReply>),
    /// `demote` (`on`) or `promote` an instance.
    Maintenance {
        name: String,
        on: bool,
        reply: oneshot::Sender<Result<(), Refused>>,
    },
    /// What lbd owns in IPVS and the health of it, for `/ipvs`.
    Ipvs(oneshot::Sender<Box<IpvsView>>),
}

/// API reloads waiting for a read. A read may already be under way when a
/// request arrives: that read started before the request, so the request
/// waits for the one after it (which `Reloader` folds the request into).
#[derive(Default)]
pub struct ReloadWaiters {
    current: Vec<oneshot::Sender<ReloadReply>>,
    next: Vec<oneshot::Sender<ReloadReply>>,
}

impl ReloadWaiters {
    /// `POST /reload`: starts a read (or asks for one after the current).
    pub fn request(
        &mut self,
        reply: oneshot::Sender<ReloadReply>,
        reloader: &mut crate::setup::Reloader,
        path: &Path,
    ) {
        if reloader.busy() {
            self.next.push(reply);
            reloader.request(path);
            return;
        }
        reloader.request(path);
        if reloader.busy() {
            self.current.push(reply);
        } else {
            let _ = reply.send(Err(format!(
                "reload of {}: could not start reading it (see lbd's log)",
                path.display()
            )));
        }
    }

    /// A read was applied or refused (`outcome`); call after
    /// `Reloader::finished`, which may have started the next read.
    pub fn finished(&mut self, outcome: &ReloadReply, reader_busy: bool) {
        for w in self.current.drain(..) {
            let _ = w.send(outcome.clone());
        }
        self.current = std::mem::take(&mut self.next);
        if !reader_busy {
            for w in self.current.drain(..) {
                let _ = w.send(Err(
                    "reload: could not start reading the configuration (see lbd's log)".into(),
                ));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn waiters_answered_in_read_order() {
        let mut w = ReloadWaiters::default();
        let (a_tx, mut a) = oneshot::channel();
        let (b_tx, mut b) = oneshot::channel();
        w.current.push(a_tx);
        w.next.push(b_tx);
        w.finished(&Err("bad".into()), true);
        assert_eq!(a.try_recv().unwrap().unwrap_err(), "bad");
        // b waits for the read that started after it.
        assert!(b.try_recv().is_err());
        w.finished(&Ok(ReloadDone { event: 7 }), false);
        assert_eq!(b.try_recv().unwrap().unwrap().event, 7);
    }
}
