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
use std::time::{Duration, SystemTime};

use mlua::{LuaSerdeExt, MultiValue, Table, Value};
use serde_json::Map;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::sandbox::{self, Ctx, Limits, Reg, Shared, State, Stop};

pub type Options = Map<String, serde_json::Value>;

/// How a built-in plugin's path reads in messages and reports.
pub const BUILTIN: &str = "(built in)";

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin host: {0}")]
    Start(String),
}

pub struct HostConfig {
    /// Plugins compiled into the binary, `(relative path, source)`: loaded
    /// first, so a file of the same stem in `dirs` replaces one.
    pub builtin: &'static [(&'static str, &'static str)],
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
    /// The real server's configured weight (`target.weight`), which a
    /// check's returned weight replaces: FILE_CHECK adds to it.
    pub weight: Option<u32>,
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
    /// Bytes the plugin's Lua state holds now.
    pub memory: usize,
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
    Spawn {
        job: Job,
        stop: oneshot::Receiver<()>,
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

/// Work the daemon hands to the plugin thread (a check's schedule): it
/// runs there beside the plugins, so running a check costs no thread switch.
pub type Job = Box<dyn FnOnce(Local) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// Jobs start checks on a 10 ms grid ([`next_start`]).
pub const START_GRID: Duration = Duration::from_millis(10);

/// When a job should next start a check, `after` from now: rounded up to
/// the [`START_GRID`] shared by all jobs, so the plugin thread wakes about
/// a hundred times a second to start every check then due, not once per
/// check (each wake-up is a context switch, an epoll_wait and clock
/// reads; with thousands of checks a second that was most of the cost).
pub fn next_start(after: Duration) -> tokio::time::Instant {
    static ANCHOR: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let anchor = *ANCHOR.get_or_init(tokio::time::Instant::now);
    let at = crate::clock::now() + after;
    let grid = START_GRID.as_nanos();
    let since = at.saturating_duration_since(anchor).as_nanos();
    let slots = since.div_ceil(grid);
    let rounded = u64::try_from(slots * grid).unwrap_or(u64::MAX);
    anchor + Duration::from_nanos(rounded)
}

/// Stops its job when dropped.
pub struct JobGuard {
    _stop: oneshot::Sender<()>,
}

/// The plugins as seen from a job on the plugin thread.
#[derive(Clone)]
pub struct Local {
    reg: Rc<Registry>,
}

impl Local {
    /// One check plugin bound to one target and its options, run as often
    /// as needed; its Lua arguments are built once (and again after the
    /// plugin's state is rebuilt).
    pub fn checker(&self, name: &str, target: Target, opts: Options) -> LocalCheck {
        LocalCheck {
            reg: self.reg.clone(),
            name: name.to_string(),
            target,
            opts,
            prepared: None,
        }
    }
}

/// See [`Local::checker`].
pub struct LocalCheck {
    reg: Rc<Registry>,
    name: String,
    target: Target,
    opts: Options,
    prepared: Option<Prepared>,
}

/// A check's function and arguments in one generation of its plugin's state.
struct Prepared {
    generation: u64,
    lua: mlua::Lua,
    func: mlua::Function,
    target: Table,
    opts: Table,
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

    /// Runs `job` on the plugin thread until the guard is dropped.
    pub fn spawn(&self, job: Job) -> JobGuard {
        let (tx, stop) = oneshot::channel();
        let _ = self.tx.send(Req::Spawn { job, stop });
        JobGuard { _stop: tx }
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
    /// Counts rebuilds: what was prepared in an older state is stale.
    generation: std::cell::Cell<u64>,
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
    // File stem -> path (and source when built in), in load order; a later
    // one replaces an earlier one.
    let mut chosen: Vec<(String, PathBuf, Option<PathBuf>, Option<&'static str>)> = cfg
        .builtin
        .iter()
        .map(|(name, src)| {
            let path = Path::new(BUILTIN).join(name);
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            (stem, path, None, Some(*src))
        })
        .collect();
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
            match chosen.iter_mut().find(|c| c.0 == stem) {
                Some(c) => {
                    let old = std::mem::replace(&mut c.1, f);
                    c.2 = Some(old);
                    c.3 = None;
                }
                None => chosen.push((stem, f, None, None)),
            }
        }
    }
    let mut reg = Registry {
        slots: Vec::new(),
        checks: HashMap::new(),
        notifiers: HashMap::new(),
    };
    for (stem, path, overrides, source) in chosen {
        let shared = Rc::new(Shared {
            name: stem,
            path: path.clone(),
            source,
            limits: limits.clone(),
            poisoned: std::cell::Cell::new(None),
            slice_start: std::cell::Cell::new(crate::clock::coarse_now()),
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
            generation: std::cell::Cell::new(0),
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
                let mut check = Local { reg: reg.clone() }.checker(&name, target, opts);
                tokio::task::spawn_local(async move {
                    let out = check.run(timeout).await;
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
            Req::Spawn { job, stop } => {
                let fut = job(Local { reg: reg.clone() });
                tokio::task::spawn_local(async move {
                    tokio::select! {
                        _ = fut => {}
                        // The guard was dropped (or sent): the job ends.
                        _ = stop => {}
                    }
                });
            }
            Req::Stats(reply) => {
                let mut s = HostStats::new();
                for slot in &reg.slots {
                    let mut st = slot.shared.stats.borrow().clone();
                    st.memory = slot
                        .state
                        .borrow()
                        .as_ref()
                        .map_or(0, |s| s.lua.used_memory());
                    s.insert(slot.shared.name.clone(), st);
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
        self.shared.slice_start.set(crate::clock::coarse_now());
        self.inner.as_mut().poll(cx)
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Check,
    Notify,
}

/// The Lua state of a slot and one of its registrations, rebuilding the
/// state after a stop. Err: why there is none.
fn current(slot: &Slot, kind: Kind, name: &str) -> Result<(mlua::Lua, Reg), String> {
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
                slot.generation.set(slot.generation.get() + 1);
            }
            Err(e) => {
                warn!("plugin {}: rebuild failed: {e}", slot.shared.name);
                *st = None;
                return Err(format!("plugin {} could not be loaded", slot.shared.name));
            }
        }
    }
    let s = st
        .as_ref()
        .ok_or_else(|| format!("plugin {} could not be loaded", slot.shared.name))?;
    let regs = match kind {
        Kind::Check => &s.checks,
        Kind::Notify => &s.notifiers,
    };
    match regs.get(name) {
        Some(r) => Ok((s.lua.clone(), r.clone())),
        None => Err(format!(
            "plugin {} no longer registers {name}",
            slot.shared.name
        )),
    }
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
    let thread = host_thread_for(lua, func).map_err(|e| (e.to_string(), None))?;
    let key = thread.to_pointer() as usize;
    let fut = thread
        .clone()
        .into_async::<MultiValue>(args)
        .map_err(|e| (e.to_string(), None::<Stop>));
    let res: Result<MultiValue, (String, Option<Stop>)> = match fut {
        Ok(f) => {
            let sliced = Sliced {
                inner: Box::pin(f),
                shared: slot.shared.clone(),
            };
            match tokio::time::timeout_at(crate::clock::now() + timeout, sliced).await {
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
        // A finished thread is kept for the next call; one left suspended
        // (timeout) is dropped, as is every thread of a stopped plugin.
        let done = matches!(
            thread.status(),
            mlua::thread::ThreadStatus::Finished | mlua::thread::ThreadStatus::Error
        );
        let mut pool = ctx.thread_pool.borrow_mut();
        if done && sh.poisoned.get().is_none() && pool.len() < THREAD_POOL {
            pool.push(thread);
        } else {
            ctx.host_threads.borrow_mut().remove(&key);
        }
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

/// Threads kept per plugin state for reuse (about the calls in flight).
const THREAD_POOL: usize = 256;

/// A host thread running `func`: a finished one reset, else a new one.
fn host_thread_for(lua: &mlua::Lua, func: &mlua::Function) -> mlua::Result<mlua::Thread> {
    let Some(ctx) = lua.app_data_ref::<Ctx>() else {
        return Err(mlua::Error::RuntimeError("plugin context lost".into()));
    };
    if let Some(t) = ctx.thread_pool.borrow_mut().pop() {
        if t.reset(func.clone()).is_ok() {
            return Ok(t);
        }
        ctx.host_threads
            .borrow_mut()
            .remove(&(t.to_pointer() as usize));
    }
    let t = lua.create_thread(func.clone())?;
    ctx.host_threads
        .borrow_mut()
        .insert(t.to_pointer() as usize);
    Ok(t)
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

impl LocalCheck {
    /// Runs the check once; a plugin that errors, is stopped, or overruns
    /// `timeout` gives a failed outcome saying so.
    pub async fn run(&mut self, timeout: Duration) -> CheckOutcome {
        let Some(slot) = self.reg.checks.get(&self.name).cloned() else {
            return CheckOutcome::failed(format!("no check plugin named {}", self.name));
        };
        let (lua, func, args) = match self.prepare(&slot) {
            Ok(p) => (
                p.lua.clone(),
                p.func.clone(),
                MultiValue::from_iter([
                    Value::Table(p.target.clone()),
                    Value::Table(p.opts.clone()),
                ]),
            ),
            Err(e) => return CheckOutcome::failed(e),
        };
        slot.shared.stats.borrow_mut().calls += 1;
        let out = match call(&slot, &lua, &func, args, timeout).await {
            Ok(v) => outcome(v),
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

    /// The function and argument tables for the slot's current state: the
    /// same on every run of this checker (docs/plugins/registration.md says
    /// they are read-only).
    fn prepare(&mut self, slot: &Slot) -> Result<&Prepared, String> {
        let (lua, r) = current(slot, Kind::Check, &self.name)?;
        let generation = slot.generation.get();
        let fresh = self
            .prepared
            .as_ref()
            .is_some_and(|p| p.generation == generation);
        if !fresh {
            let tables = (|| -> mlua::Result<(Table, Table)> {
                let target = &self.target;
                let t = lua.create_table()?;
                t.set("ip", target.ip.to_string())?;
                t.set("port", target.port)?;
                t.set("family", if target.ip.is_ipv6() { "inet6" } else { "inet" })?;
                if let Some(w) = target.weight {
                    t.set("weight", w)?;
                }
                if let Some(vs) = &target.vs {
                    t.set("vs", vs.as_str())?;
                }
                let name = match target.ip {
                    IpAddr::V6(a) => format!("[{a}]:{}", target.port),
                    IpAddr::V4(a) => format!("{a}:{}", target.port),
                };
                t.set("name", name)?;
                Ok((t, options(&lua, &r.defaults, &self.opts)?))
            })();
            let (target, opts) = tables.map_err(|e| format!("plugin {}: {e}", slot.shared.name))?;
            self.prepared = Some(Prepared {
                generation,
                lua,
                func: r.func,
                target,
                opts,
            });
        }
        self.prepared
            .as_ref()
            .ok_or_else(|| format!("plugin {}: not prepared", slot.shared.name))
    }
}

/// A check's return values: ok, message, weight.
fn outcome(v: MultiValue) -> CheckOutcome {
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

async fn deliver(reg: &Registry, name: &str, opts: &Options, ev: &Event) {
    let Some(slot) = reg.notifiers.get(name) else {
        warn!("notify: no plugin named {name}");
        return;
    };
    let (lua, r) = match current(slot, Kind::Notify, name) {
        Ok(c) => c,
        Err(e) => {
            warn!("notify {name} (event {}): {e}", ev.seq);
            return;
        }
    };
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
