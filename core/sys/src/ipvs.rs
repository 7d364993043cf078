//! IPVS over generic netlink, on neli.
//!
//! One std thread owns the blocking netlink socket and runs the requests of
//! all `Ipvs` handles in order, so replies can never interleave; the async
//! side only passes closures in and awaits a oneshot. The thread ends when
//! the last handle is dropped.

mod conn;
mod wire;

use std::collections::BTreeMap;
use std::sync::mpsc;

use lbd_ipvs::{IpvsCounters, IpvsInfo, IpvsState, Op, ServiceCounters};
pub use lbd_ipvs::{SyncDaemon, SyncState};
use tokio::sync::oneshot;

use crate::error::SysError;
use conn::{Conn, ReqError, Request};
use wire::{cmd, top};

type Job = Box<dyn FnOnce(&mut Conn) + Send>;

/// A handle on the IPVS connection; clones share the one worker.
#[derive(Clone)]
pub struct Ipvs {
    tx: mpsc::Sender<Job>,
}

fn sys(what: impl Into<String>, e: ReqError) -> SysError {
    let what = what.into();
    match e {
        ReqError::Kernel(err) | ReqError::Io(err) => SysError::os(what, err),
        ReqError::Bad(detail) => SysError::Netlink { what, detail },
    }
}

fn worker_gone() -> SysError {
    SysError::Netlink {
        what: "IPVS request".into(),
        detail: "the netlink worker thread is gone".into(),
    }
}

/// Resolves the family; on failure loads ip_vs the way keepalived does and
/// tries once more.
fn open() -> Result<Conn, SysError> {
    match Conn::open() {
        Ok(c) => return Ok(c),
        Err(ReqError::Kernel(_)) => {}
        Err(e) => return Err(sys("opening a generic netlink socket", e)),
    }
    // Whatever modprobe says, the retry is the verdict.
    let mut cmd = std::process::Command::new("modprobe");
    cmd.arg("ip_vs")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // Registered: as PID 1 the reaper must leave its status to this wait.
    if let Ok((mut child, _own)) = crate::reap::spawn_own(|| cmd.spawn(), |c| Some(c.id())) {
        let _ = child.wait();
    }
    match Conn::open() {
        Ok(c) => Ok(c),
        Err(ReqError::Kernel(_)) => Err(SysError::IpvsUnavailable),
        Err(e) => Err(sys("opening a generic netlink socket", e)),
    }
}

/// "adding service TCP 10.0.0.1:80" and so on: what an op does, for errors.
fn describe(op: &Op) -> String {
    match op {
        Op::AddService(s) => format!("adding service {}", s.key),
        Op::EditService(k, _) => format!("changing service {k}"),
        Op::DelService(k) => format!("deleting service {k}"),
        Op::AddDest(k, d, _) => format!("adding destination {d} to service {k}"),
        Op::EditDest(k, d, _) => format!("changing destination {d} of service {k}"),
        Op::DelDest(k, d) => format!("deleting destination {d} from service {k}"),
    }
}

/// ENOENT on NEW/SET_SERVICE means the scheduler (or PE) module does not
/// exist in this kernel: say which, the bare errno text does not.
fn describe_failure(op: &Op, e: &ReqError) -> String {
    let spec = match op {
        Op::AddService(s) => &s.spec,
        Op::EditService(_, spec) => spec,
        _ => return describe(op),
    };
    match e {
        ReqError::Kernel(err) if err.raw_os_error() == Some(libc::ENOENT) => {
            let pe = match spec.pe_name.as_deref() {
                Some(pe) => format!(" or persistence engine {pe}"),
                None => String::new(),
            };
            format!(
                "{} (scheduler {s}{pe} unknown to this kernel: no ip_vs_{s} module?)",
                describe(op),
                s = spec.scheduler
            )
        }
        _ => describe(op),
    }
}

fn encode_op(op: &Op) -> Result<Request, ReqError> {
    Ok(match op {
        Op::AddService(s) => (cmd::NEW_SERVICE, vec![wire::service_full(&s.key, &s.spec)?]),
        Op::EditService(k, spec) => (cmd::SET_SERVICE, vec![wire::service_full(k, spec)?]),
        Op::DelService(k) => (cmd::DEL_SERVICE, vec![wire::service_only_key(k)?]),
        Op::AddDest(k, d, spec) => (
            cmd::NEW_DEST,
            vec![wire::service_only_key(k)?, wire::dest_full(d, spec)?],
        ),
        Op::EditDest(k, d, spec) => (
            cmd::SET_DEST,
            vec![wire::service_only_key(k)?, wire::dest_full(d, spec)?],
        ),
        Op::DelDest(k, d) => (
            cmd::DEL_DEST,
            vec![wire::service_only_key(k)?, wire::dest_only_key(d)?],
        ),
    })
}

fn dump(c: &mut Conn) -> Result<(IpvsState, IpvsCounters), SysError> {
    let what = "reading IPVS services";
    let bad = |e: wire::WireError| SysError::Netlink {
        what: what.into(),
        detail: e.0,
    };
    let mut state = IpvsState::new();
    let mut counters = IpvsCounters::default();
    let replies = c
        .request(cmd::GET_SERVICE, Vec::new(), true)
        .map_err(|e| sys(what, e))?;
    for r in replies {
        let Some(a) = r.nested(top::SERVICE).map_err(bad)? else {
            continue;
        };
        let Some((mut svc, stats)) = wire::parse_service(&a).map_err(bad)? else {
            continue;
        };
        let dwhat = format!("reading the destinations of service {}", svc.key);
        let key_attr = wire::service_only_key(&svc.key).map_err(bad)?;
        let dests = match c.request(cmd::GET_DEST, vec![key_attr], true) {
            Ok(d) => d,
            // Deleted by someone else since the service dump.
            Err(ReqError::Kernel(e)) if e.raw_os_error() == Some(libc::ESRCH) => continue,
            Err(e) => return Err(sys(dwhat, e)),
        };
        let mut sc = ServiceCounters {
            stats,
            dests: BTreeMap::new(),
        };
        for d in dests {
            let Some(da) = d.nested(top::DEST).map_err(bad)? else {
                continue;
            };
            if let Some((dk, spec, dc)) = wire::parse_dest(&da, svc.key.af()).map_err(bad)? {
                svc.dests.insert(dk, spec);
                sc.dests.insert(dk, dc);
            }
        }
        counters.services.insert(svc.key.clone(), sc);
        state.insert(svc);
    }
    Ok((state, counters))
}

impl Ipvs {
    /// Resolves the "IPVS" family. If that fails, runs `modprobe ip_vs` (as
    /// keepalived does) and retries once; still failing gives
    /// [`SysError::IpvsUnavailable`].
    pub async fn connect() -> Result<Ipvs, SysError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("lbd-ipvs".into())
            .spawn(move || {
                let mut conn = match open() {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
            })
            .map_err(|e| SysError::os("starting the IPVS netlink thread", e))?;
        ready_rx.await.map_err(|_| worker_gone())??;
        Ok(Ipvs { tx })
    }

    async fn call<R, F>(&self, f: F) -> Result<R, SysError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<R, SysError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Box::new(move |c| {
                let _ = tx.send(f(c));
            }))
            .map_err(|_| worker_gone())?;
        rx.await.map_err(|_| worker_gone())?
    }

    /// Version and connection table size (GET_INFO).
    pub async fn info(&self) -> Result<IpvsInfo, SysError> {
        self.call(|c| {
            let what = "reading IPVS info";
            let r = c
                .request(cmd::GET_INFO, Vec::new(), false)
                .map_err(|e| sys(what, e))?;
            let a = r.first().ok_or_else(|| SysError::Netlink {
                what: what.into(),
                detail: "no reply".into(),
            })?;
            Ok(IpvsInfo {
                version: a.u32(top::INFO_VERSION).unwrap_or(0),
                conn_tab_size: a.u32(top::INFO_CONN_TAB_SIZE).unwrap_or(0),
            })
        })
        .await
    }

    /// Every service (GET_SERVICE dump) with its destinations (one GET_DEST
    /// dump each) and counters.
    pub async fn dump(&self) -> Result<(IpvsState, IpvsCounters), SysError> {
        self.call(dump).await
    }

    /// Applies `ops` in order, pipelined. One outcome per op: a refused op
    /// does not stop the ones after it. The outer error is for a worker
    /// that is gone.
    pub async fn apply(&self, ops: Vec<Op>) -> Result<Vec<Result<(), SysError>>, SysError> {
        self.call(move |c| {
            let mut reqs = Vec::with_capacity(ops.len());
            let mut early: Vec<Option<ReqError>> = Vec::with_capacity(ops.len());
            for op in &ops {
                match encode_op(op) {
                    Ok(r) => {
                        reqs.push(r);
                        early.push(None);
                    }
                    Err(e) => early.push(Some(e)),
                }
            }
            let mut sent = c.pipeline(reqs).into_iter();
            Ok(ops
                .iter()
                .zip(early)
                .map(|(op, pre)| {
                    let r = match pre {
                        Some(e) => Err(e),
                        None => sent
                            .next()
                            .unwrap_or_else(|| Err(ReqError::Bad("no outcome".into()))),
                    };
                    r.map_err(|e| sys(describe_failure(op, &e), e))
                })
                .collect())
        })
        .await
    }

    /// Removes every service (FLUSH), foreign ones included.
    pub async fn flush(&self) -> Result<(), SysError> {
        self.call(|c| {
            c.request(cmd::FLUSH, Vec::new(), false)
                .map(drop)
                .map_err(|e| sys("flushing IPVS", e))
        })
        .await
    }

    /// TCP, TCP FIN and UDP timeouts in seconds; 0 leaves one unchanged.
    pub async fn set_timeouts(&self, tcp: u32, tcp_fin: u32, udp: u32) -> Result<(), SysError> {
        self.call(move |c| {
            let what = format!("setting IPVS timeouts tcp {tcp} tcpfin {tcp_fin} udp {udp}");
            let mut attrs = Vec::new();
            for (t, v) in [
                (top::TIMEOUT_TCP, tcp),
                (top::TIMEOUT_TCP_FIN, tcp_fin),
                (top::TIMEOUT_UDP, udp),
            ] {
                if v != 0 {
                    attrs.push(
                        wire::attr(t, &v.to_ne_bytes()).map_err(|e| SysError::Invalid {
                            what: what.clone(),
                            detail: e.0,
                        })?,
                    );
                }
            }
            if attrs.is_empty() {
                return Ok(());
            }
            c.request(cmd::SET_CONFIG, attrs, false)
                .map(drop)
                .map_err(|e| sys(what, e))
        })
        .await
    }

    /// (tcp, tcp_fin, udp) in seconds.
    pub async fn timeouts(&self) -> Result<(u32, u32, u32), SysError> {
        self.call(|c| {
            let what = "reading IPVS timeouts";
            let r = c
                .request(cmd::GET_CONFIG, Vec::new(), false)
                .map_err(|e| sys(what, e))?;
            let a = r.first().ok_or_else(|| SysError::Netlink {
                what: what.into(),
                detail: "no reply".into(),
            })?;
            let g = |t| a.u32(t).unwrap_or(0);
            Ok((
                g(top::TIMEOUT_TCP),
                g(top::TIMEOUT_TCP_FIN),
                g(top::TIMEOUT_UDP),
            ))
        })
        .await
    }

    pub async fn start_sync_daemon(&self, d: &SyncDaemon) -> Result<(), SysError> {
        let d = d.clone();
        self.call(move |c| {
            let what = format!(
                "starting the IPVS sync daemon ({:?}) on {} syncid {}",
                d.state, d.ifname, d.syncid
            );
            let a = wire::daemon_full(&d).map_err(|e| SysError::Invalid {
                what: what.clone(),
                detail: e.0,
            })?;
            c.request(cmd::NEW_DAEMON, vec![a], false)
                .map(drop)
                .map_err(|e| sys(what, e))
        })
        .await
    }

    pub async fn stop_sync_daemon(&self, state: SyncState) -> Result<(), SysError> {
        self.call(move |c| {
            let what = format!("stopping the IPVS sync daemon ({state:?})");
            let a = wire::daemon_state(state).map_err(|e| SysError::Invalid {
                what: what.clone(),
                detail: e.0,
            })?;
            c.request(cmd::DEL_DAEMON, vec![a], false)
                .map(drop)
                .map_err(|e| sys(what, e))
        })
        .await
    }

    pub async fn sync_daemons(&self) -> Result<Vec<SyncDaemon>, SysError> {
        self.call(|c| {
            let what = "reading the IPVS sync daemons";
            let bad = |e: wire::WireError| SysError::Netlink {
                what: what.into(),
                detail: e.0,
            };
            let mut out = Vec::new();
            for r in c
                .request(cmd::GET_DAEMON, Vec::new(), true)
                .map_err(|e| sys(what, e))?
            {
                if let Some(a) = r.nested(top::DAEMON).map_err(bad)? {
                    out.push(wire::parse_daemon(&a).map_err(bad)?);
                }
            }
            Ok(out)
        })
        .await
    }
}
