//! The control API: HTTP/1 (hyper) on the unix socket `--api-socket`
//! (mode 0600: root's only), and optionally `/metrics` alone on TCP
//! (`--metrics-listen`). The shapes are documented in docs/api.md.
//!
//! Handlers ask the node loop through `crate::control` (the node owns its
//! state); `/events` and `/metrics` read their shared handles directly.
//! The socket path is reserved before the runtime starts, so several lbd
//! processes (one per network namespace) cannot collide.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::control::{self, Refused};
use crate::events::{EventLog, Record};
use crate::metrics::Metrics;

/// Holds the bound socket; removes the path on drop.
pub struct ApiSocket {
    path: PathBuf,
    listener: UnixListener,
}

/// Binds with mode 0600 from the start: the umask covers the window
/// between bind(2) creating the file and any chmod. Called before the
/// runtime and the plugin thread exist, so no other thread creates files
/// meanwhile under the narrowed umask.
fn bind_private(path: &Path) -> std::io::Result<UnixListener> {
    // SAFETY: umask(2) cannot fail; it only swaps the process's mask.
    let old = unsafe { libc::umask(0o177) };
    let r = UnixListener::bind(path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let l = r?;
    // Belt and braces: the mode does not depend on the umask's semantics.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

impl ApiSocket {
    pub fn reserve(path: &Path) -> Result<ApiSocket> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
        }
        match bind_private(path) {
            Ok(l) => {
                return Ok(ApiSocket {
                    path: path.into(),
                    listener: l,
                })
            }
            Err(e) if e.kind() == ErrorKind::AddrInUse => {}
            Err(e) => return Err(e).with_context(|| format!("binding {}", path.display())),
        }
        // A socket file exists: in use by a live lbd, or stale from a crash.
        if UnixStream::connect(path).is_ok() {
            bail!(
                "{} is in use by another running lbd (give each lbd its own --api-socket)",
                path.display()
            );
        }
        std::fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))?;
        let l = bind_private(path).with_context(|| format!("binding {}", path.display()))?;
        Ok(ApiSocket {
            path: path.into(),
            listener: l,
        })
    }

    /// The listening socket for the server (the path stays with `self`).
    pub fn listener(&self) -> Result<UnixListener> {
        self.listener
            .try_clone()
            .with_context(|| format!("duplicating the socket of {}", self.path.display()))
    }
}

impl Drop for ApiSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What the server listens on, bound before the runtime starts.
pub struct Listeners {
    pub api: UnixListener,
    /// `--metrics-listen`: `/metrics` only.
    pub metrics: Option<std::net::TcpListener>,
}

impl Listeners {
    pub fn bind(api: &ApiSocket, metrics: Option<&str>) -> Result<Listeners> {
        let metrics = match metrics {
            Some(a) => Some(
                std::net::TcpListener::bind(a)
                    .with_context(|| format!("--metrics-listen {a}: binding"))?,
            ),
            None => None,
        };
        Ok(Listeners {
            api: api.listener()?,
            metrics,
        })
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct Shared {
    pub events: EventLog,
    pub metrics: Metrics,
    pub control: mpsc::Sender<control::Request>,
}

type Body = BoxBody<Bytes, Infallible>;

/// Which endpoints a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    All,
    MetricsOnly,
}

/// Starts serving (inside the runtime); errors accepting a connection are
/// logged, not fatal.
pub fn serve(l: Listeners, shared: Shared) -> Result<()> {
    let shared = Arc::new(shared);
    l.api
        .set_nonblocking(true)
        .context("control socket: setting it non-blocking")?;
    let api = tokio::net::UnixListener::from_std(l.api).context("control socket")?;
    let metrics = match l.metrics {
        Some(m) => {
            let addr = m.local_addr().map(|a| a.to_string()).unwrap_or_default();
            m.set_nonblocking(true)
                .with_context(|| format!("--metrics-listen {addr}: setting it non-blocking"))?;
            let m = tokio::net::TcpListener::from_std(m)
                .with_context(|| format!("--metrics-listen {addr}"))?;
            info!("serving /metrics on {addr}");
            Some(m)
        }
        None => None,
    };
    {
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                match api.accept().await {
                    Ok((s, _)) => connection(s, shared.clone(), Scope::All),
                    Err(e) => accept_failed(e, "the control socket").await,
                }
            }
        });
    }
    if let Some(m) = metrics {
        tokio::spawn(async move {
            loop {
                match m.accept().await {
                    Ok((s, _)) => connection(s, shared.clone(), Scope::MetricsOnly),
                    Err(e) => accept_failed(e, "--metrics-listen").await,
                }
            }
        });
    }
    Ok(())
}

/// EMFILE and the like: say so and back off instead of spinning.
async fn accept_failed(e: std::io::Error, what: &str) {
    warn!("accepting on {what}: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// How long a connection may take to send a request's headers.
const HEADER_WAIT: Duration = Duration::from_secs(10);

fn connection<S>(stream: S, shared: Arc<Shared>, scope: Scope)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let svc = hyper::service::service_fn(move |req| {
            let shared = shared.clone();
            async move { Ok::<_, Infallible>(handle(&shared, req, scope).await) }
        });
        // A client that connects and sends nothing (the TCP listener is
        // reachable from the network) is dropped after HEADER_WAIT.
        if let Err(e) = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_WAIT)
            .serve_connection(TokioIo::new(stream), svc)
            .await
        {
            debug!("API connection: {e}");
        }
    });
}

/// A request, once its method and path are understood.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Route {
    Status,
    Metrics,
    Events { since: u64, follow: bool },
    Reload,
    Maintenance { name: String, demote: bool },
    Ipvs,
}

/// An HTTP error with its JSON body.
#[derive(Debug, PartialEq, Eq)]
struct Failure {
    status: StatusCode,
    message: String,
    /// For 405: the methods the path accepts.
    allow: Option<&'static str>,
}

fn fail(status: StatusCode, message: impl Into<String>) -> Failure {
    Failure {
        status,
        message: message.into(),
        allow: None,
    }
}

fn query_map(q: Option<&str>) -> HashMap<&str, &str> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect()
}

fn flag(v: Option<&&str>) -> bool {
    matches!(v, Some(&("" | "1" | "true" | "yes")))
}

/// `%XX` escapes of a path segment (lbctl escapes instance names).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn route(method: &Method, path: &str, query: Option<&str>, scope: Scope) -> Result<Route, Failure> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (route, allow) = match segs.as_slice() {
        ["metrics"] => (Route::Metrics, "GET"),
        _ if scope == Scope::MetricsOnly => {
            return Err(fail(
                StatusCode::NOT_FOUND,
                format!("no such endpoint: {path} (this listener serves /metrics only)"),
            ))
        }
        ["status"] => (Route::Status, "GET"),
        ["ipvs"] => (Route::Ipvs, "GET"),
        ["reload"] => (Route::Reload, "POST"),
        ["events"] => {
            let q = query_map(query);
            let since = match q.get("since") {
                None | Some(&"") => 0,
                Some(s) => s.parse().map_err(|_| {
                    fail(
                        StatusCode::BAD_REQUEST,
                        format!("since={s}: not a sequence number"),
                    )
                })?,
            };
            let follow = flag(q.get("follow"));
            (Route::Events { since, follow }, "GET")
        }
        ["instance", name, action @ ("demote" | "promote")] if !name.is_empty() => (
            Route::Maintenance {
                name: percent_decode(name).ok_or_else(|| {
                    fail(
                        StatusCode::BAD_REQUEST,
                        format!("{path}: bad %-escape in the instance name"),
                    )
                })?,
                demote: *action == "demote",
            },
            "POST",
        ),
        _ => {
            return Err(fail(
                StatusCode::NOT_FOUND,
                format!("no such endpoint: {path}"),
            ))
        }
    };
    if method.as_str() != allow {
        return Err(Failure {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: format!("{path} takes {allow}, not {method}"),
            allow: Some(allow),
        });
    }
    Ok(route)
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

fn respond(status: StatusCode, content_type: &str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    let mut text = serde_json::to_string_pretty(v)
        .unwrap_or_else(|e| format!("{{\"error\": \"encoding the answer: {e}\"}}"));
    text.push('\n');
    respond(status, "application/json", full(text))
}

fn error_response(f: Failure) -> Response<Body> {
    let mut r = json_response(f.status, &json!({ "error": f.message }));
    if let Some(a) = f.allow {
        r.headers_mut().insert(ALLOW, HeaderValue::from_static(a));
    }
    r
}

/// The node loop is gone (lbd is stopping).
fn loop_gone() -> Failure {
    fail(StatusCode::SERVICE_UNAVAILABLE, "lbd is stopping")
}

/// Sends a request to the node loop and waits for its answer.
async fn ask<T>(
    shared: &Shared,
    make: impl FnOnce(oneshot::Sender<T>) -> control::Request,
) -> Result<T, Failure> {
    let (tx, rx) = oneshot::channel();
    shared
        .control
        .send(make(tx))
        .await
        .map_err(|_| loop_gone())?;
    rx.await.map_err(|_| loop_gone())
}

async fn handle(shared: &Shared, req: Request<Incoming>, scope: Scope) -> Response<Body> {
    let r = match route(req.method(), req.uri().path(), req.uri().query(), scope) {
        Ok(r) => r,
        Err(f) => return error_response(f),
    };
    let out = match r {
        Route::Metrics => Ok(respond(
            StatusCode::OK,
            crate::metrics::CONTENT_TYPE,
            full(shared.metrics.scrape().await),
        )),
        Route::Events { since, follow } => Ok(events(&shared.events, since, follow)),
        Route::Status => status(shared).await,
        Route::Reload => reload(shared).await,
        Route::Maintenance { name, demote } => maintenance(shared, name, demote).await,
        Route::Ipvs => ipvs(shared).await,
    };
    out.unwrap_or_else(error_response)
}

async fn reload(shared: &Shared) -> Result<Response<Body>, Failure> {
    match ask(shared, control::Request::Reload).await? {
        Ok(done) => Ok(json_response(
            StatusCode::OK,
            &json!({ "outcome": "applied", "event": done.event }),
        )),
        // The configuration was refused: the client's file, not the server.
        Err(e) => Err(fail(StatusCode::UNPROCESSABLE_ENTITY, e)),
    }
}

async fn maintenance(
    shared: &Shared,
    name: String,
    demote: bool,
) -> Result<Response<Body>, Failure> {
    let n = name.clone();
    let r = ask(shared, |reply| control::Request::Maintenance {
        name: n,
        on: demote,
        reply,
    })
    .await?;
    match r {
        Ok(()) => Ok(json_response(
            StatusCode::OK,
            &json!({ "instance": name, "demoted": demote }),
        )),
        Err(Refused::NotFound(m)) => Err(fail(StatusCode::NOT_FOUND, m)),
        Err(Refused::Failed(m)) => Err(fail(StatusCode::CONFLICT, m)),
    }
}

/// How long `/status` waits for the plugin thread's statistics (it may be
/// running a plugin up to its CPU slice).
const STATS_WAIT: Duration = Duration::from_secs(2);

async fn status(shared: &Shared) -> Result<Response<Body>, Failure> {
    let mut st = ask(shared, control::Request::Status).await?;
    if let Some(nl) = st.nl.take() {
        let mut by_link: HashMap<u32, Option<Vec<std::net::IpAddr>>> = HashMap::new();
        let links: Vec<(u32, String)> = st
            .instances
            .iter()
            .flat_map(|i| i.vips.iter().map(|v| (v.ifindex, v.dev.clone())))
            .collect();
        for (index, dev) in links {
            if let std::collections::hash_map::Entry::Vacant(e) = by_link.entry(index) {
                let addrs = nl
                    .addresses(index)
                    .await
                    .map(|a| a.into_iter().map(|a| a.addr).collect())
                    .map_err(|err| debug!("/status: reading addresses of {dev}: {err}"))
                    .ok();
                e.insert(addrs);
            }
        }
        for v in st.instances.iter_mut().flat_map(|i| i.vips.iter_mut()) {
            v.present = by_link
                .get(&v.ifindex)
                .and_then(|a| a.as_ref())
                .map(|a| a.contains(&v.addr));
        }
    }
    if let Some(host) = st.host.take() {
        match tokio::time::timeout(STATS_WAIT, host.stats()).await {
            Ok(stats) => {
                for p in &mut st.plugins {
                    if let Some(s) = stats.get(&p.name) {
                        p.calls = s.calls;
                        p.failures = s.failures;
                        p.errors = s.errors;
                        p.stopped_cpu = s.stopped_cpu;
                        p.stopped_memory = s.stopped_memory;
                        p.memory_bytes = s.memory;
                    }
                }
            }
            Err(_) => debug!("/status: plugin statistics not ready within {STATS_WAIT:?}"),
        }
    }
    let v = serde_json::to_value(&*st).map_err(|e| {
        fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding /status: {e}"),
        )
    })?;
    Ok(json_response(StatusCode::OK, &v))
}

async fn ipvs(shared: &Shared) -> Result<Response<Body>, Failure> {
    let view = ask(shared, control::Request::Ipvs).await?;
    let unavailable = |e: String| fail(StatusCode::SERVICE_UNAVAILABLE, e);
    let k = lbd_sys::ipvs::Ipvs::connect()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let info = k
        .info()
        .await
        .map_err(|e| unavailable(format!("reading IPVS info: {e}")))?;
    let (state, counters) = k
        .dump()
        .await
        .map_err(|e| unavailable(format!("reading IPVS state: {e}")))?;
    Ok(json_response(
        StatusCode::OK,
        &ipvs_json(&view, &info, &state, &counters),
    ))
}

fn fwd_name(f: lbd_ipvs::Fwd) -> &'static str {
    match f {
        lbd_ipvs::Fwd::Masq => "Masq",
        lbd_ipvs::Fwd::Local => "Local",
        lbd_ipvs::Fwd::Tunnel => "Tunnel",
        lbd_ipvs::Fwd::Route => "Route",
        lbd_ipvs::Fwd::Bypass => "Bypass",
    }
}

/// The kernel's table, each entry with lbd's ownership and health, and the
/// services lbd wants that the kernel lacks.
fn ipvs_json(
    view: &crate::node::status::IpvsView,
    info: &lbd_ipvs::IpvsInfo,
    state: &lbd_ipvs::IpvsState,
    counters: &lbd_ipvs::IpvsCounters,
) -> Value {
    let mut services = Vec::new();
    for (key, svc) in &state.services {
        let owned = view.services.iter().find(|s| &s.key == key);
        let dests: Vec<Value> = svc
            .dests
            .iter()
            .map(|(dk, ds)| {
                let c = counters.dest(key, dk);
                let lbd = owned.and_then(|o| o.dests.iter().find(|d| &d.key == dk));
                json!({
                    "address": std::net::SocketAddr::new(dk.addr, dk.port).to_string(),
                    "forward": fwd_name(ds.fwd),
                    "weight": ds.weight,
                    "active_conns": c.active_conns,
                    "inactive_conns": c.inact_conns,
                    "configured_weight": lbd.map(|d| d.configured_weight),
                    "health": lbd.map(|d| d.health),
                    "checkers": lbd.map(|d| &d.checkers),
                })
            })
            .collect();
        services.push(json!({
            "service": key.to_string(),
            "scheduler": svc.spec.scheduler,
            "owner": if owned.is_some() { "lbd" } else { "other" },
            "virtual_server": owned.map(|o| &o.virtual_server),
            "dests": dests,
        }));
    }
    let missing: Vec<Value> = view
        .services
        .iter()
        .filter(|s| !state.services.contains_key(&s.key))
        .map(|s| json!({ "service": s.key.to_string(), "virtual_server": s.virtual_server }))
        .collect();
    json!({
        "version": info.version_string(),
        "conn_tab_size": info.conn_tab_size,
        "services": services,
        "missing": missing,
        "ipvsadm": lbd_ipvs::render_ipvsadm(info, state, counters),
    })
}

/// A response body fed from a channel; the sender sees the client leave
/// (`closed()`) when hyper drops the body.
struct ChanBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChanBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

fn record_line(r: &Record) -> Bytes {
    let mut s = serde_json::to_string(r).unwrap_or_else(|e| {
        format!(
            "{{\"seq\": {}, \"error\": \"encoding the event: {e}\"}}",
            r.seq
        )
    });
    s.push('\n');
    Bytes::from(s)
}

/// A line saying records were lost between `after` and `next`.
fn gap_line(after: u64, next: u64) -> Bytes {
    let v = json!({ "gap": { "after": after, "next": next, "missed": next.saturating_sub(after + 1) } });
    Bytes::from(format!("{v}\n"))
}

/// `/events`: the held records after `since`, oldest first, as
/// newline-delimited JSON; with `follow`, then every new one until the
/// client goes away. Records the ring no longer holds are reported as a
/// `gap` line (and the `lbd-events-missed` header).
fn events(log: &EventLog, since: u64, follow: bool) -> Response<Body> {
    // Subscribe first: nothing pushed between the two is lost.
    let rx = follow.then(|| log.subscribe());
    let (recs, oldest) = log.since(since);
    let missed = if oldest > since + 1 {
        oldest - since - 1
    } else {
        0
    };
    let mut head = Vec::new();
    if missed > 0 {
        head.push(gap_line(since, oldest));
    }
    let mut last = since;
    for r in &recs {
        head.push(record_line(r));
        last = r.seq;
    }
    let body = match rx {
        None => full(head.concat()),
        Some(rx) => {
            let (tx, brx) = mpsc::channel(64);
            tokio::spawn(follow_events(tx, rx, head, last));
            ChanBody(brx).boxed()
        }
    };
    let mut r = respond(StatusCode::OK, "application/x-ndjson", body);
    let h = r.headers_mut();
    h.insert("lbd-events-oldest", HeaderValue::from(oldest));
    h.insert("lbd-events-missed", HeaderValue::from(missed));
    r
}

async fn follow_events(
    tx: mpsc::Sender<Bytes>,
    mut rx: broadcast::Receiver<Arc<Record>>,
    head: Vec<Bytes>,
    mut last: u64,
) {
    for b in head {
        if tx.send(b).await.is_err() {
            return;
        }
    }
    loop {
        let line = tokio::select! {
            _ = tx.closed() => return,
            r = rx.recv() => match r {
                Ok(rec) if rec.seq <= last => continue,
                Ok(rec) => {
                    last = rec.seq;
                    record_line(&rec)
                }
                // Too slow a reader: say how many it lost and go on.
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let next = last + n + 1;
                    let l = gap_line(last, next);
                    last = next - 1;
                    l
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if tx.send(line).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn reserve_conflict_and_stale() {
        let dir = std::env::temp_dir().join(format!("lbd-api-{}", std::process::id()));
        let path = dir.join("a.sock");
        let first = ApiSocket::reserve(&path);
        assert!(first.is_ok());
        let mode = std::fs::metadata(&path).map(|m| m.mode() & 0o777).unwrap();
        assert_eq!(mode, 0o600, "socket mode {mode:o}");
        assert!(
            ApiSocket::reserve(&path).is_err(),
            "second lbd must be refused"
        );
        drop(first);
        // Leave a stale file behind: a plain bind then drop without unlink.
        let l = UnixListener::bind(&path);
        assert!(l.is_ok());
        drop(l);
        assert!(
            ApiSocket::reserve(&path).is_ok(),
            "stale socket must be replaced"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn r(m: Method, p: &str, q: Option<&str>) -> Result<Route, Failure> {
        route(&m, p, q, Scope::All)
    }

    #[test]
    fn routes() {
        assert_eq!(r(Method::GET, "/status", None), Ok(Route::Status));
        assert_eq!(r(Method::GET, "/metrics", None), Ok(Route::Metrics));
        assert_eq!(r(Method::GET, "/ipvs", None), Ok(Route::Ipvs));
        assert_eq!(r(Method::POST, "/reload", None), Ok(Route::Reload));
        assert_eq!(
            r(Method::GET, "/events", Some("since=12&follow=1")),
            Ok(Route::Events {
                since: 12,
                follow: true
            })
        );
        assert_eq!(
            r(Method::GET, "/events", None),
            Ok(Route::Events {
                since: 0,
                follow: false
            })
        );
        assert_eq!(
            r(Method::GET, "/events", Some("follow=0&since=")),
            Ok(Route::Events {
                since: 0,
                follow: false
            })
        );
        assert_eq!(
            r(Method::POST, "/instance/VI_1/demote", None),
            Ok(Route::Maintenance {
                name: "VI_1".into(),
                demote: true
            })
        );
        assert_eq!(
            r(Method::POST, "/instance/VI%201%2Fx/demote", None),
            Ok(Route::Maintenance {
                name: "VI 1/x".into(),
                demote: true
            })
        );
        assert_eq!(
            r(Method::POST, "/instance/VI_1/promote", None),
            Ok(Route::Maintenance {
                name: "VI_1".into(),
                demote: false
            })
        );
    }

    #[test]
    fn route_errors() {
        let e = r(Method::GET, "/nope", None).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let e = r(Method::GET, "/instance/VI_1/explode", None).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let e = r(Method::GET, "/instance//demote", None).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let e = r(Method::GET, "/reload", None).unwrap_err();
        assert_eq!(
            (e.status, e.allow),
            (StatusCode::METHOD_NOT_ALLOWED, Some("POST"))
        );
        let e = r(Method::POST, "/status", None).unwrap_err();
        assert_eq!(
            (e.status, e.allow),
            (StatusCode::METHOD_NOT_ALLOWED, Some("GET"))
        );
        let e = r(Method::POST, "/instance/a%2/demote", None).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = r(Method::GET, "/events", Some("since=x")).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        // The TCP listener serves /metrics and nothing else.
        assert_eq!(
            route(&Method::GET, "/metrics", None, Scope::MetricsOnly),
            Ok(Route::Metrics)
        );
        let e = route(&Method::GET, "/status", None, Scope::MetricsOnly).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
    }

    /// Over a real connection: a follower that hangs up is noticed at
    /// once, not at the next event (no task left behind per client).
    #[tokio::test]
    async fn follower_hanging_up_is_noticed_without_new_events() {
        let log = EventLog::new(8);
        log.push("test", "old", serde_json::Map::new());
        let (control, _rx) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            events: log.clone(),
            metrics: Metrics::new(),
            control,
        });
        let (server, client) = tokio::net::UnixStream::pair().unwrap();
        connection(server, shared, Scope::All);
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(client))
            .await
            .unwrap();
        let conn = tokio::spawn(conn);
        let req = Request::get("/events?follow=1")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let resp = tx.send_request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let mut body = resp.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert!(String::from_utf8_lossy(&first).contains("\"old\""));
        assert_eq!(log.followers(), 1);
        drop(body);
        drop(tx);
        conn.abort();
        let gone = tokio::time::timeout(Duration::from_secs(5), async {
            while log.followers() > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(gone.is_ok(), "the follower outlived its client");
    }

    /// `/ipvs`: kernel entries lbd owns carry its virtual server and
    /// health; others are marked as not lbd's; wanted but absent ones are listed.
    #[test]
    fn ipvs_entries_carry_ownership_and_health() {
        use crate::node::status::{CheckerStatus, IpvsView, OwnedDest, OwnedService};
        use lbd_ipvs::{
            Af, DestKey, DestSpec, Fwd, IpvsCounters, IpvsInfo, IpvsState, Protocol, Service,
            ServiceKey, ServiceSpec,
        };
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let ours = ServiceKey::addr(Protocol::Tcp, ip("10.0.0.1"), 80);
        let other = ServiceKey::addr(Protocol::Tcp, ip("10.0.0.9"), 80);
        let absent = ServiceKey::addr(Protocol::Udp, ip("10.0.0.1"), 53);
        let rs = DestKey::new(ip("10.0.1.1"), 80);
        let mut state = IpvsState::new();
        state.insert(
            Service::new(ours.clone(), ServiceSpec::new("wlc", Af::V4))
                .with_dest(rs, DestSpec::new(Fwd::Masq, 0)),
        );
        state.insert(Service::new(other, ServiceSpec::new("rr", Af::V4)));
        let view = IpvsView {
            services: vec![
                OwnedService {
                    key: ours,
                    virtual_server: "10.0.0.1:80".into(),
                    dests: vec![OwnedDest {
                        key: rs,
                        configured_weight: 3,
                        health: "down",
                        checkers: vec![CheckerStatus {
                            plugin: "tcp".into(),
                            up: Some(false),
                        }],
                    }],
                },
                OwnedService {
                    key: absent,
                    virtual_server: "10.0.0.1:53".into(),
                    dests: vec![],
                },
            ],
        };
        let info = IpvsInfo {
            version: 0x010201,
            conn_tab_size: 4096,
        };
        let v = ipvs_json(&view, &info, &state, &IpvsCounters::default());
        assert_eq!(v["version"], "1.2.1");
        let svcs = v["services"].as_array().unwrap();
        assert_eq!(svcs.len(), 2);
        let o = svcs
            .iter()
            .find(|s| s["service"] == "TCP 10.0.0.1:80")
            .unwrap();
        assert_eq!(
            (&o["owner"], &o["virtual_server"]),
            (&json!("lbd"), &json!("10.0.0.1:80"))
        );
        let d = &o["dests"][0];
        assert_eq!(d["weight"], 0);
        assert_eq!(d["configured_weight"], 3);
        assert_eq!(d["health"], "down");
        assert_eq!(d["checkers"][0]["up"], false);
        let x = svcs
            .iter()
            .find(|s| s["service"] == "TCP 10.0.0.9:80")
            .unwrap();
        assert_eq!(
            (&x["owner"], &x["virtual_server"]),
            (&json!("other"), &Value::Null)
        );
        assert_eq!(v["missing"][0]["service"], "UDP 10.0.0.1:53");
        assert!(v["ipvsadm"]
            .as_str()
            .unwrap()
            .contains("TCP  10.0.0.1:80 wlc"));
    }

    async fn body_text(r: Response<Body>) -> String {
        let b = r.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn events_since_reports_the_gap() {
        let log = EventLog::new(2);
        for i in 0..4 {
            log.push("test", &format!("e{i}"), serde_json::Map::new());
        }
        // Held: 3 and 4; asking after 1 misses 2.
        let r = events(&log, 1, false);
        assert_eq!(r.headers()["lbd-events-missed"], "1");
        let text = body_text(r).await;
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["gap"]["missed"], 1);
        assert_eq!(lines[1]["seq"], 3);
        assert_eq!(lines[2]["name"], "e3");
        // Nothing missed when asking from the oldest held.
        let r = events(&log, 2, false);
        assert_eq!(r.headers()["lbd-events-missed"], "0");
        assert_eq!(body_text(r).await.lines().count(), 2);
    }

    #[tokio::test]
    async fn follow_streams_new_records_and_ends_when_the_client_leaves() {
        let log = EventLog::new(8);
        log.push("test", "old", serde_json::Map::new());
        let mut body = events(&log, 0, true).into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert!(String::from_utf8_lossy(&first).contains("\"old\""));
        log.push("test", "new", serde_json::Map::new());
        let next = body.frame().await.unwrap().unwrap().into_data().unwrap();
        let v: Value = serde_json::from_slice(&next).unwrap();
        assert_eq!(
            (v["seq"].as_u64(), v["name"].as_str()),
            (Some(2), Some("new"))
        );
        // The client goes away: the follower task ends (the log's
        // broadcast loses its receiver).
        drop(body);
        let gone = tokio::time::timeout(Duration::from_secs(5), async {
            while log.followers() > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(gone.is_ok(), "the follower did not stop");
    }
}
