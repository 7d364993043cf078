//! Loading plugin files: which files (bundled, then the operators' dirs;
//! a later file of the same stem replaces an earlier one), who may own
//! them, and each file's Lua state, rebuilt after a stop.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::sandbox::{self, Limits, PluginStats, Reg, Shared, State};

/// How a built-in plugin's path reads in messages and reports.
pub const BUILTIN: &str = "(built in)";

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
    /// On a reload: plugins whose new file did not load and whose running
    /// version carries on: the name, and a line saying which file and why.
    pub kept: Vec<(String, String)>,
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

/// A plugin file and its current Lua state (rebuilt after a stop).
pub(super) struct Slot {
    pub(super) shared: Rc<Shared>,
    pub(super) state: RefCell<Option<State>>,
    /// Counts rebuilds: what was prepared in an older state is stale.
    pub(super) generation: Cell<u64>,
}

pub(super) struct Registry {
    pub(super) slots: Vec<Rc<Slot>>,
    /// Check / notify name -> slot.
    pub(super) checks: HashMap<String, Rc<Slot>>,
    pub(super) notifiers: HashMap<String, Rc<Slot>>,
}

/// A plugin file's Lua state with the `lb` API installed.
fn build(shared: &Rc<Shared>) -> Result<State, String> {
    sandbox::build(shared, crate::api::register)
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

/// The plugins as [`load_all`] loads them, except that a plugin whose file
/// no longer loads (a Lua error, a duplicate name, refused permissions)
/// keeps the version `old` runs, reported in `kept`.
pub(super) fn reload_all(
    cfg: &HostConfig,
    limits: &Limits,
    old: &Registry,
) -> (Registry, LoadReport) {
    let (mut reg, mut report, failed) = load_candidates(cfg, limits);
    for (stem, why) in failed {
        let Some(slot) = old.slots.iter().find(|s| s.shared.name == stem) else {
            continue;
        };
        // Whatever loaded in its place (an earlier file of the same name)
        // gives way to the running version.
        reg.slots.retain(|s| s.shared.name != stem);
        reg.checks.retain(|_, s| s.shared.name != stem);
        reg.notifiers.retain(|_, s| s.shared.name != stem);
        report.loaded.retain(|l| {
            l.path
                .file_stem()
                .is_none_or(|s| s.to_string_lossy() != stem.as_str())
        });
        for (n, s) in &old.checks {
            if Rc::ptr_eq(s, slot) {
                reg.checks.insert(n.clone(), slot.clone());
            }
        }
        for (n, s) in &old.notifiers {
            if Rc::ptr_eq(s, slot) {
                reg.notifiers.insert(n.clone(), slot.clone());
            }
        }
        reg.slots.push(slot.clone());
        let line = format!(
            "plugin {stem}: the new file did not load ({why}); keeping the running version from {}",
            slot.shared.path.display()
        );
        report.kept.push((stem, line));
    }
    (reg, report)
}

pub(super) fn load_all(cfg: &HostConfig, limits: &Limits) -> (Registry, LoadReport) {
    let (reg, report, _) = load_candidates(cfg, limits);
    (reg, report)
}

/// Loads every candidate; also returns the names (file stems) whose file
/// was refused or failed to load, with why.
fn load_candidates(
    cfg: &HostConfig,
    limits: &Limits,
) -> (Registry, LoadReport, Vec<(String, String)>) {
    let mut report = LoadReport::default();
    let mut failed = Vec::new();
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
            let stem = f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(why) = refuse(&f, cfg.require_root_owned) {
                failed.push((stem, why.clone()));
                report.refused.push(why);
                continue;
            }
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
            poisoned: Cell::new(None),
            slice_start: Cell::new(crate::clock::coarse_now()),
            stats: RefCell::new(PluginStats::default()),
        });
        let state = match build(&shared) {
            Ok(s) => s,
            Err(e) => {
                failed.push((shared.name.clone(), e.clone()));
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
            generation: Cell::new(0),
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
            failed.push((slot.shared.name.clone(), d.clone()));
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
    (reg, report, failed)
}

#[derive(Clone, Copy)]
pub(super) enum Kind {
    Check,
    Notify,
}

/// The Lua state of a slot and one of its registrations, rebuilding the
/// state after a stop. Err: why there is none.
pub(super) fn current(slot: &Slot, kind: Kind, name: &str) -> Result<(mlua::Lua, Reg), String> {
    let mut st = slot.state.borrow_mut();
    if st.is_none() || slot.shared.poisoned.get().is_some() {
        match build(&slot.shared) {
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
                warn!(
                    plugin = slot.shared.name,
                    "plugin {}: rebuild failed: {e}", slot.shared.name
                );
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
