//! The plugin host: every plugin's Lua state lives on one dedicated thread
//! (a current-thread runtime); the daemon holds a `Host` handle and talks
//! to it through channels, so VRRP timers never wait for Lua.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use mlua::{LuaSerdeExt, MultiValue, Table, Value};
use serde_json::Map;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::sandbox::{self, Ctx, Limits, Reg, Shared, State, Stop};

pub type Options = Map<String, serde_json::Value>;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin host: {0}")]
    Start(String),
}

pub struct HostConfig {
    /// Loaded in order; a later file with the same stem replaces an earlier one.
    pub dirs: Vec<PathBuf>,
    pub memory_limit: usize,
    pub cpu_slice: Duration,
    /// Refuse files not owned by root (lbd runs as root).
    pub require_root_owned: bool,
    /// keepalived `script_user`: uid and gid programs run as.
    pub script_user: Option<(u32, u32)>,
}

#[derive(Debug, Default)]
pub struct LoadReport {
    pub loaded: Vec<LoadedPlugin>,
    /// One line each: the path and why.
    pub refused: Vec<String>,
}

#[derive(Debug)]
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub checks: Vec<String>,
    pub notifiers: Vec<String>,
    pub discoveries: Vec<String>,
    /// The earlier file of the same name this one replaces.
    pub overrides: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub struct Target {
    pub ip: IpAddr,
    pub port: u16,
    pub vs: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOutcome {
    pub ok: bool,
    pub message: String,
    pub weight: Option<i64>,
}

impl CheckOutcome {
    fn failed(message: impl Into<String>) -> Self {
        CheckOutcome {
            ok: false,
            message: message.into(),
            weight: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Instance,
    Group,
    Rs,
    Vs,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Instance => "INSTANCE",
            EventKind::Group => "GROUP",
            EventKind::Rs => "RS",
            EventKind::Vs => "VS",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Event {
    pub seq: u64,
    pub time: SystemTime,
    pub kind: EventKind,
    pub name: String,
    pub state: String,
    pub prev: Option<String>,
    pub priority: Option<u8>,
    pub vs: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginStats {
    pub calls: u64,
    pub failures: u64,
    pub errors: u64,
    pub stopped_cpu: u64,
    pub stopped_memory: u64,
}

/// Per plugin (file stem).
pub type HostStats = BTreeMap<String, PluginStats>;

enum Req {
    Check {
        name: String,
        target: Target,
        opts: Options,
        timeout: Duration,
        reply: oneshot::Sender<CheckOutcome>,
    },
    Notifier {
        name: String,
        opts: Arc<Options>,
        events: mpsc::UnboundedReceiver<Event>,
    },
    Stats(oneshot::Sender<HostStats>),
    Shutdown {
        timeout: Duration,
        done: oneshot::Sender<()>,
    },
}

/// The daemon's handle; cheap to clone.
#[derive(Clone)]
pub struct Host {
    tx: mpsc::UnboundedSender<Req>,
    checks: Arc<Vec<String>>,
    notifiers: Arc<Vec<String>>,
}

/// Events for one notify hook, delivered in order, one at a time.
#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::UnboundedSender<Event>,
}

impl Notifier {
    /// Never blocks; events queue on the plugin thread.
    pub fn send(&self, ev: Event) {
        let _ = self.tx.send(ev);
    }
}

impl Host {
    /// Loads the plugins on a new thread and returns once they are loaded.
    pub fn start(cfg: HostConfig) -> Result<(Host, LoadReport), PluginError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("lbd-plugins".into())
            .spawn(move || host_thread(cfg, rx, ready_tx))
            .map_err(|e| PluginError::Start(format!("spawning the plugin thread: {e}")))?;
        let (report, checks, notifiers) = ready_rx
            .recv()
            .map_err(|_| PluginError::Start("the plugin thread died while loading".into()))??;
        Ok((
            Host {
                tx,
                checks: Arc::new(checks),
                notifiers: Arc::new(notifiers),
            },
            report,
        ))
    }

    pub fn has_check(&self, name: &str) -> bool {
        self.checks.iter().any(|c| c == name)
    }

    pub fn has_notify(&self, name: &str) -> bool {
        self.notifiers.iter().any(|c| c == name)
    }

    /// Runs one check; a plugin that errors, is stopped, or overruns
    /// `timeout` gives a failed outcome saying so.
    pub async fn run_check(
        &self,
        name: &str,
        target: Target,
        opts: Options,
        timeout: Duration,
    ) -> CheckOutcome {
        let (reply, rx) = oneshot::channel();
        let req = Req::Check {
            name: name.to_string(),
            target,
            opts,
            timeout,
            reply,
        };
        if self.tx.send(req).is_err() {
            return CheckOutcome::failed("plugin host stopped");
        }
        rx.await
            .unwrap_or_else(|_| CheckOutcome::failed("plugin host stopped"))
    }

    pub fn notifier(&self, name: &str, opts: Options) -> Notifier {
        let (tx, events) = mpsc::unbounded_channel();
        let _ = self.tx.send(Req::Notifier {
            name: name.to_string(),
            opts: Arc::new(opts),
            events,
        });
        Notifier { tx }
    }

    pub async fn stats(&self) -> HostStats {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Req::Stats(tx)).is_err() {
            return HostStats::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Waits (up to `timeout`) until every notifier whose senders are gone
    /// has delivered its queue, then stops the plugin thread.
    pub async fn shutdown(&self, timeout: Duration) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Req::Shutdown { timeout, done }).is_ok() {
            let _ = rx.await;
        }
    }
}

type Ready = Result<(LoadReport, Vec<String>, Vec<String>), PluginError>;

/// A plugin file and its current Lua state (rebuilt after a stop).
struct Slot {
    shared: Rc<Shared>,
    state: RefCell<Option<State>>,
}

struct Registry {
    slots: Vec<Rc<Slot>>,
    /// Check / notify name -> slot.
    checks: HashMap<String, Rc<Slot>>,
    notifiers: HashMap<String, Rc<Slot>>,
}

fn host_thread(
    cfg: HostConfig,
    rx: mpsc::UnboundedReceiver<Req>,
    ready: std::sync::mpsc::Sender<Ready>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(PluginError::Start(format!("runtime: {e}"))));
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let limits = Limits {
            memory: cfg.memory_limit,
            cpu_slice: cfg.cpu_slice,
            script_user: cfg.script_user,
        };
        let (reg, report) = load_all(&cfg, &limits);
        let mut checks: Vec<String> = reg.checks.keys().cloned().collect();
        let mut notifiers: Vec<String> = reg.notifiers.keys().cloned().collect();
        checks.sort();
        notifiers.sort();
        if ready.send(Ok((report, checks, notifiers))).is_err() {
            return;
        }
        serve(Rc::new(reg), rx).await;
    });
}

/// Why a plugin file may not be loaded (permissions), if it may not.
fn refuse(path: &Path, require_root: bool) -> Option<String> {
    let md = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(format!("{}: refused: {e}", path.display())),
    };
    if md.mode() & 0o022 != 0 {
        return Some(format!(
            "{p}: refused: writable by group or others (chmod go-w {p})",
            p = path.display()
        ));
    }
    if require_root && md.uid() != 0 {
        return Some(format!(
            "{p}: refused: owned by uid {}, not root (chown root: {p})",
            md.uid(),
            p = path.display()
        ));
    }
    None
}

fn load_all(cfg: &HostConfig, limits: &Limits) -> (Registry, LoadReport) {
    let mut report = LoadReport::default();
    // File stem -> path, in load order; a later one replaces an earlier one.
    let mut chosen: Vec<(String, PathBuf, Option<PathBuf>)> = Vec::new();
    for dir in &cfg.dirs {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "lua") && p.is_file())
                .collect(),
            Err(e) => {
                debug!("plugin directory {}: {e}", dir.display());
                continue;
            }
        };
        files.sort();
        for f in files {
            if let Some(why) = refuse(&f, cfg.require_root_owned) {
                report.refused.push(why);
                continue;
            }
            let stem = f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            match chosen.iter_mut().find(|(s, _, _)| *s == stem) {
                Some(c) => {
                    let old = std::mem::replace(&mut c.1, f);
                    c.2 = Some(old);
                }
                None => chosen.push((stem, f, None)),
            }
        }
    }
    let mut reg = Registry {
        slots: Vec::new(),
        checks: HashMap::new(),
        notifiers: HashMap::new(),
    };
    for (stem, path, overrides) in chosen {
        let shared = Rc::new(Shared {
            name: stem,
            path: path.clone(),
            limits: limits.clone(),
            poisoned: std::cell::Cell::new(None),
            slice_start: std::cell::Cell::new(Instant::now()),
            stats: RefCell::new(PluginStats::default()),
        });
        let state = match sandbox::build(&shared) {
            Ok(s) => s,
            Err(e) => {
                report.refused.push(format!("{e} (refused)"));
                continue;
            }
        };
        let mut names_c: Vec<String> = state.checks.keys().cloned().collect();
        let mut names_n: Vec<String> = state.notifiers.keys().cloned().collect();
        names_c.sort();
        names_n.sort();
        let slot = Rc::new(Slot {
            shared,
            state: RefCell::new(None),
        });
        let mut dup = None;
        for n in &names_c {
            if let Some(first) = reg.checks.get(n) {
                dup = Some(format!(
                    "check {n} is already registered by {}",
                    first.shared.path.display()
                ));
            }
        }
        for n in &names_n {
            if let Some(first) = reg.notifiers.get(n) {
                dup = Some(format!(
                    "notify {n} is already registered by {}",
                    first.shared.path.display()
                ));
            }
        }
        if let Some(d) = dup {
            report
                .refused
                .push(format!("{}: refused: {d}", path.display()));
            continue;
        }
        for n in &names_c {
            reg.checks.insert(n.clone(), slot.clone());
        }
        for n in &names_n {
            reg.notifiers.insert(n.clone(), slot.clone());
        }
        report.loaded.push(LoadedPlugin {
            path,
            checks: names_c,
            notifiers: names_n,
            discoveries: state.discoveries.clone(),
            overrides,
        });
        *slot.state.borrow_mut() = Some(state);
        reg.slots.push(slot);
    }
    (reg, report)
}

async fn serve(reg: Rc<Registry>, mut rx: mpsc::UnboundedReceiver<Req>) {
    let mut notifier_tasks = Vec::new();
    while let Some(req) = rx.recv().await {
        match req {
            Req::Check {
                name,
                target,
                opts,
                timeout,
                reply,
            } => {
                let reg = reg.clone();
                tokio::task::spawn_local(async move {
                    let out = run_check(&reg, &name, &target, &opts, timeout).await;
                    let _ = reply.send(out);
                });
            }
            Req::Notifier {
                name,
                opts,
                mut events,
            } => {
                let reg = reg.clone();
                notifier_tasks.push(tokio::task::spawn_local(async move {
                    while let Some(ev) = events.recv().await {
                        deliver(&reg, &name, &opts, &ev).await;
                    }
                }));
            }
            Req::Stats(reply) => {
                let mut s = HostStats::new();
                for slot in &reg.slots {
                    s.insert(slot.shared.name.clone(), slot.shared.stats.borrow().clone());
                }
                let _ = reply.send(s);
            }
            Req::Shutdown { timeout, done } => {
                let all = futures_join(std::mem::take(&mut notifier_tasks));
                if tokio::time::timeout(timeout, all).await.is_err() {
                    warn!("plugin host: notify queues not drained after {timeout:?}");
                }
                let _ = done.send(());
                return;
            }
        }
    }
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

/// Resets the plugin's CPU slice every time its Lua thread is resumed:
/// each poll of the thread's future is one resume (platform-facts.md:
/// budget the slice between awaits, not the whole call).
struct Sliced<F> {
    inner: Pin<Box<F>>,
    shared: Rc<Shared>,
}

impl<F: Future> Future for Sliced<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.shared.slice_start.set(Instant::now());
        self.inner.as_mut().poll(cx)
    }
}

/// The Lua state of a slot, rebuilding it after a stop.
/// A plugin's live state: its Lua, its checks and its notify handlers.
type Live = (mlua::Lua, HashMap<String, Reg>, HashMap<String, Reg>);

fn current(slot: &Slot) -> Option<Live> {
    let mut st = slot.state.borrow_mut();
    if st.is_none() || slot.shared.poisoned.get().is_some() {
        match sandbox::build(&slot.shared) {
            Ok(s) => {
                info!(
                    "plugin {}: rebuilt from {}",
                    slot.shared.name,
                    slot.shared.path.display()
                );
                *st = Some(s);
            }
            Err(e) => {
                warn!("plugin {}: rebuild failed: {e}", slot.shared.name);
                *st = None;
                return None;
            }
        }
    }
    st.as_ref()
        .map(|s| (s.lua.clone(), s.checks.clone(), s.notifiers.clone()))
}

/// Runs `reg.func` with `args` on a host-created Lua thread under the
/// slice and `timeout`. Err: the message, and whether the plugin was stopped.
async fn call(
    slot: &Slot,
    lua: &mlua::Lua,
    func: &mlua::Function,
    args: MultiValue,
    timeout: Duration,
) -> Result<MultiValue, (String, Option<Stop>)> {
    let sh = &slot.shared;
    let thread = lua
        .create_thread(func.clone())
        .map_err(|e| (e.to_string(), None))?;
    let key = thread.to_pointer() as usize;
    if let Some(ctx) = lua.app_data_ref::<Ctx>() {
        ctx.host_threads.borrow_mut().insert(key);
    }
    let fut = thread
        .into_async::<MultiValue>(args)
        .map_err(|e| (e.to_string(), None::<Stop>));
    let res: Result<MultiValue, (String, Option<Stop>)> = match fut {
        Ok(f) => {
            let sliced = Sliced {
                inner: Box::pin(f),
                shared: slot.shared.clone(),
            };
            match tokio::time::timeout(timeout, sliced).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err((error_text(&e), None)),
                Err(_) => Err((
                    format!("timeout after {:.1} s", timeout.as_secs_f64()),
                    None,
                )),
            }
        }
        Err(e) => Err(e),
    };
    if let Some(ctx) = lua.app_data_ref::<Ctx>() {
        ctx.host_threads.borrow_mut().remove(&key);
    }
    match res {
        Ok(v) => Ok(v),
        Err((msg, _)) => {
            let stop = sh
                .poisoned
                .get()
                .or_else(|| msg.contains("not enough memory").then_some(Stop::Memory));
            match stop {
                Some(s) => {
                    sh.poisoned.set(Some(s));
                    let m = sh.stop_message(s);
                    warn!("{m}");
                    let mut st = sh.stats.borrow_mut();
                    match s {
                        Stop::Cpu => st.stopped_cpu += 1,
                        Stop::Memory => st.stopped_memory += 1,
                    }
                    Err((m, Some(s)))
                }
                None => Err((msg, None)),
            }
        }
    }
}

/// The text of a Lua error without mlua's wrapping and traceback.
fn error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        mlua::Error::RuntimeError(m) => m.lines().next().unwrap_or_default().to_string(),
        mlua::Error::MemoryError(m) => m.clone(),
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// `defaults` overlaid with the configured options (the configuration wins).
fn options(lua: &mlua::Lua, defaults: &Table, opts: &Options) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for pair in defaults.pairs::<Value, Value>() {
        let (k, v) = pair?;
        t.raw_set(k, v)?;
    }
    for (k, v) in opts {
        t.raw_set(k.as_str(), lua.to_value(v)?)?;
    }
    Ok(t)
}

async fn run_check(
    reg: &Registry,
    name: &str,
    target: &Target,
    opts: &Options,
    timeout: Duration,
) -> CheckOutcome {
    let Some(slot) = reg.checks.get(name) else {
        return CheckOutcome::failed(format!("no check plugin named {name}"));
    };
    let Some((lua, checks, _)) = current(slot) else {
        return CheckOutcome::failed(format!("plugin {} could not be loaded", slot.shared.name));
    };
    let Some(r) = checks.get(name) else {
        return CheckOutcome::failed(format!(
            "plugin {} no longer registers {name}",
            slot.shared.name
        ));
    };
    slot.shared.stats.borrow_mut().calls += 1;
    let args = (|| -> mlua::Result<MultiValue> {
        let t = lua.create_table()?;
        t.set("ip", target.ip.to_string())?;
        t.set("port", target.port)?;
        t.set("family", if target.ip.is_ipv6() { "inet6" } else { "inet" })?;
        if let Some(vs) = &target.vs {
            t.set("vs", vs.as_str())?;
        }
        let name = match target.ip {
            IpAddr::V6(a) => format!("[{a}]:{}", target.port),
            IpAddr::V4(a) => format!("{a}:{}", target.port),
        };
        t.set("name", name)?;
        let o = options(&lua, &r.defaults, opts)?;
        Ok(MultiValue::from_iter([Value::Table(t), Value::Table(o)]))
    })();
    let args = match args {
        Ok(a) => a,
        Err(e) => return CheckOutcome::failed(format!("plugin {}: {e}", slot.shared.name)),
    };
    let out = match call(slot, &lua, &r.func, args, timeout).await {
        Ok(v) => {
            let mut it = v.into_iter();
            let ok = it
                .next()
                .is_some_and(|v| !matches!(v, Value::Nil | Value::Boolean(false)));
            let message = match it.next() {
                Some(Value::String(s)) => s.to_string_lossy(),
                Some(Value::Nil) | None => String::new(),
                Some(other) => format!("{other:?}"),
            };
            let weight = match it.next() {
                Some(Value::Integer(i)) => Some(i),
                Some(Value::Number(n)) if n.fract() == 0.0 => Some(n as i64),
                _ => None,
            };
            CheckOutcome {
                ok,
                message,
                weight,
            }
        }
        Err((m, stop)) => {
            if stop.is_none() {
                slot.shared.stats.borrow_mut().errors += 1;
            }
            CheckOutcome::failed(m)
        }
    };
    if !out.ok {
        slot.shared.stats.borrow_mut().failures += 1;
    }
    out
}

async fn deliver(reg: &Registry, name: &str, opts: &Options, ev: &Event) {
    let Some(slot) = reg.notifiers.get(name) else {
        warn!("notify: no plugin named {name}");
        return;
    };
    let Some((lua, _, notifiers)) = current(slot) else {
        return;
    };
    let Some(r) = notifiers.get(name) else { return };
    slot.shared.stats.borrow_mut().calls += 1;
    let args = (|| -> mlua::Result<MultiValue> {
        let t = lua.create_table()?;
        t.set("seq", ev.seq)?;
        let secs = ev
            .time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        t.set("time", secs)?;
        t.set("kind", ev.kind.as_str())?;
        t.set("name", ev.name.as_str())?;
        t.set("state", ev.state.as_str())?;
        t.set("prev", ev.prev.as_deref())?;
        t.set("priority", ev.priority)?;
        t.set("vs", ev.vs.as_deref())?;
        let o = options(&lua, &r.defaults, opts)?;
        Ok(MultiValue::from_iter([Value::Table(t), Value::Table(o)]))
    })();
    let Ok(args) = args else { return };
    // A notify handler may run programs: give it a generous bound.
    let limit = opts
        .get("timeout")
        .and_then(serde_json::Value::as_f64)
        .filter(|t| t.is_finite() && *t > 0.0)
        .map_or(Duration::from_secs(60), |t| {
            Duration::from_secs_f64(t + 5.0)
        });
    if let Err((m, stop)) = call(slot, &lua, &r.func, args, limit).await {
        if stop.is_none() {
            slot.shared.stats.borrow_mut().errors += 1;
        }
        warn!(
            "notify {name} (event {} {} {}): {m}",
            ev.seq, ev.name, ev.state
        );
    }
}
