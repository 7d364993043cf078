//! Checks as the daemon's jobs run them: a checker bound to one target and
//! its options, its Lua arguments built once per state, and the shared
//! start grid the jobs schedule on.

use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use mlua::{MultiValue, Table, Value};

use super::load::{current, Kind, Registry, Slot};
use super::run::{call, options, Options};

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

impl Local {
    pub(super) fn new(reg: Rc<Registry>) -> Self {
        Local { reg }
    }
}
