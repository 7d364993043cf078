//! One plugin file as a Lua state: only the safe libraries, the `lb` API,
//! a memory limit, and a CPU slice between two yields enforced by a hook
//! that the plugin cannot escape (platform-facts.md: a global hook covers
//! the plugin's own coroutines; pcall and coroutine.resume are wrapped so a
//! stopped plugin cannot swallow its stop).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState};

/// A plugin's counters, kept in its [`Shared`] across rebuilds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginStats {
    pub calls: u64,
    pub failures: u64,
    pub errors: u64,
    pub stopped_cpu: u64,
    pub stopped_memory: u64,
    /// Time its Lua code ran (the plugin thread polling its calls).
    pub cpu: Duration,
    /// Bytes the plugin's Lua state holds now.
    pub memory: usize,
}

/// Why a plugin was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    Cpu,
    Memory,
}

/// Limits every plugin runs under.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub memory: usize,
    pub cpu_slice: Duration,
    pub script_user: Option<(u32, u32)>,
}

/// What outlives a rebuild of the plugin's Lua state.
pub(crate) struct Shared {
    pub name: String,
    pub path: PathBuf,
    /// The source of a plugin compiled into the binary; else `path` is read.
    pub source: Option<&'static str>,
    pub limits: Limits,
    pub poisoned: Cell<Option<Stop>>,
    /// When the running Lua code was last resumed ([`crate::clock::coarse_now`]).
    pub slice_start: Cell<Duration>,
    pub stats: RefCell<PluginStats>,
}

impl Shared {
    pub fn stop_message(&self, s: Stop) -> String {
        match s {
            Stop::Cpu => format!(
                "plugin {} stopped: cpu slice exceeded ({} ms)",
                self.name,
                self.limits.cpu_slice.as_millis()
            ),
            Stop::Memory => format!(
                "plugin {} stopped: memory limit ({} MiB)",
                self.name,
                self.limits.memory >> 20
            ),
        }
    }
}

/// A registered check, notify handler or discovery provider.
#[derive(Clone)]
pub(crate) struct Reg {
    pub func: Function,
    pub defaults: Table,
}

#[derive(Default)]
pub(crate) struct Regs {
    pub checks: HashMap<String, Reg>,
    pub notifiers: HashMap<String, Reg>,
    pub discoveries: HashMap<String, Reg>,
}

/// Per-state data the `lb` functions reach through `Lua::app_data_ref`.
pub(crate) struct Ctx {
    pub shared: Rc<Shared>,
    /// The file body is running: registration only.
    pub in_body: Cell<bool>,
    /// Threads the host created and drives; anything else is a plugin coroutine.
    pub host_threads: RefCell<HashSet<usize>>,
    /// Finished host threads kept for reuse.
    pub thread_pool: RefCell<Vec<mlua::Thread>>,
    pub regs: RefCell<Regs>,
    pub regex_cache: RefCell<HashMap<String, regex::Regex>>,
    /// "function option" pairs already warned about as unknown.
    pub warned: RefCell<HashSet<String>>,
}

/// A loaded plugin file.
pub(crate) struct State {
    pub lua: Lua,
    pub checks: HashMap<String, Reg>,
    pub notifiers: HashMap<String, Reg>,
    pub discoveries: Vec<String>,
}

/// Lua source positions as operators read them: `path:line: message`.
fn load_error(path: &Path, e: &mlua::Error) -> String {
    let text = match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::CallbackError { cause, .. } => cause.to_string(),
        other => other.to_string(),
    };
    // Lua says `[string "path"]:LINE: msg` or `path:LINE: msg`.
    let shown = path.display().to_string();
    let text = text.replace(&format!("[string \"{shown}\"]"), &shown);
    let text = text.trim_start_matches("runtime error: ").to_string();
    if text.starts_with(&shown) {
        text
    } else {
        format!("{shown}: {text}")
    }
}

/// keepalived-style safety: plugins see only these base functions.
const UNSAFE_BASE: &[&str] = &["dofile", "loadfile", "require", "collectgarbage"];

const PRELUDE: &str = r#"
local poisoned, raw_pcall, raw_xpcall, co_create, co_resume, error, pack, unpack, raw_load, env = ...
local function check(r)
  local p = poisoned(r[1], r[2])
  if p then error(p, 0) end
  return unpack(r, 1, r.n)
end
pcall = function(...) return check(pack(raw_pcall(...))) end
xpcall = function(...) return check(pack(raw_xpcall(...))) end
coroutine.resume = function(...) return check(pack(co_resume(...))) end
coroutine.wrap = function(f)
  local co = co_create(f)
  return function(...)
    local r = pack(check(pack(co_resume(co, ...))))
    if not r[1] then error(r[2], 0) end
    return unpack(r, 2, r.n)
  end
end
load = function(chunk, name, mode, e)
  if mode ~= nil and mode ~= "t" then error("load: only text chunks are allowed", 2) end
  return raw_load(chunk, name, "t", e or env)
end
"#;

/// Builds the plugin's Lua state: `install` adds the API the plugin sees
/// (the `lb` module; the sandbox does not know it), then the file runs.
pub(crate) fn build(
    shared: &Rc<Shared>,
    install: fn(&Lua) -> mlua::Result<()>,
) -> Result<State, String> {
    let path = shared.path.clone();
    let src = match shared.source {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?,
        ),
    };
    let libs = StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::COROUTINE | StdLib::UTF8;
    let lua =
        Lua::new_with(libs, LuaOptions::new()).map_err(|e| format!("{}: {e}", path.display()))?;
    let setup = || -> mlua::Result<()> {
        lua.set_memory_limit(shared.limits.memory)?;
        let g = lua.globals();
        for k in UNSAFE_BASE {
            g.raw_set(*k, Value::Nil)?;
        }
        lua.set_app_data(Ctx {
            shared: shared.clone(),
            in_body: Cell::new(true),
            host_threads: RefCell::new(HashSet::new()),
            thread_pool: RefCell::new(Vec::new()),
            regs: RefCell::new(Regs::default()),
            regex_cache: RefCell::new(HashMap::new()),
            warned: RefCell::new(HashSet::new()),
        });
        install(&lua)?;
        // A stop poisons the plugin: every later hook and every pcall or
        // resume in it raises again, so no Lua code can swallow it.
        let sh = shared.clone();
        let poisoned = lua.create_function(move |_, (ok, err): (bool, Value)| {
            if !ok && sh.poisoned.get().is_none() {
                if let Value::String(s) = &err {
                    if s.to_str().is_ok_and(|s| s.contains("not enough memory")) {
                        sh.poisoned.set(Some(Stop::Memory));
                    }
                }
            }
            Ok(sh.poisoned.get().map(|s| sh.stop_message(s)))
        })?;
        let co: Table = g.get("coroutine")?;
        let table: Table = g.get("table")?;
        let raw_load: Function = g.get("load")?;
        lua.load(PRELUDE).set_name("=lbd prelude").call::<()>((
            poisoned,
            g.get::<Function>("pcall")?,
            g.get::<Function>("xpcall")?,
            co.get::<Function>("create")?,
            co.get::<Function>("resume")?,
            g.get::<Function>("error")?,
            table.get::<Function>("pack")?,
            table.get::<Function>("unpack")?,
            raw_load,
            g.clone(),
        ))?;
        // string.dump gives bytecode, which the sandbox does not load anyway.
        let string: Table = g.get("string")?;
        string.raw_set("dump", Value::Nil)?;
        let sh = shared.clone();
        lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(1000),
            move |_, _| {
                if let Some(s) = sh.poisoned.get() {
                    return Err(mlua::Error::RuntimeError(sh.stop_message(s)));
                }
                if crate::clock::coarse_now().saturating_sub(sh.slice_start.get())
                    > sh.limits.cpu_slice
                {
                    sh.poisoned.set(Some(Stop::Cpu));
                    return Err(mlua::Error::RuntimeError(sh.stop_message(Stop::Cpu)));
                }
                Ok(VmState::Continue)
            },
        )?;
        Ok(())
    };
    setup().map_err(|e| format!("{}: sandbox: {e}", path.display()))?;
    shared.poisoned.set(None);
    shared.slice_start.set(crate::clock::coarse_now());
    let chunk = lua.load(&*src).set_name(format!("@{}", path.display()));
    if let Err(e) = chunk.exec() {
        let stop = shared.poisoned.get();
        shared.poisoned.set(None);
        return Err(match stop {
            Some(s) => format!("{}: {}", path.display(), shared.stop_message(s)),
            None => load_error(&path, &e),
        });
    }
    let regs = {
        let ctx = lua
            .app_data_ref::<Ctx>()
            .ok_or_else(|| format!("{}: plugin context lost", path.display()))?;
        ctx.in_body.set(false);
        let regs = std::mem::take(&mut *ctx.regs.borrow_mut());
        regs
    };
    Ok(State {
        lua,
        checks: regs.checks,
        notifiers: regs.notifiers,
        discoveries: regs.discoveries.into_keys().collect(),
    })
}
