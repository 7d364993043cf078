//! Starting the Lua plugin host from the configuration, and checking that
//! every plugin the configuration names exists before anything runs.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use lbd_config::Config;
use lbd_plugin::{Host, HostConfig};
use tracing::{info, warn};

/// Where the bundled plugins are installed, and where operators add theirs.
pub const BUNDLED_DIR: &str = "/usr/share/lb/plugins";
pub const OPERATOR_DIR: &str = "/etc/lb/plugins";

const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;
const DEFAULT_CPU_SLICE: Duration = Duration::from_millis(100);

/// The plugin directories: the configured ones, else the bundled set
/// (`LBD_PLUGIN_DIR` overrides its place, for tests and uninstalled
/// builds) then the operator's. Each contributes its `checks/`,
/// `notify/` and `discovery/` subdirectories, then its own files.
fn dirs(c: &Config) -> Vec<PathBuf> {
    let bases = if c.global.plugin_dirs.is_empty() {
        let bundled = std::env::var_os("LBD_PLUGIN_DIR")
            .map_or_else(|| PathBuf::from(BUNDLED_DIR), PathBuf::from);
        vec![bundled, PathBuf::from(OPERATOR_DIR)]
    } else {
        c.global.plugin_dirs.clone()
    };
    bases
        .iter()
        .flat_map(|b| {
            ["checks", "notify", "discovery"]
                .iter()
                .map(|sub| b.join(sub))
                .chain(std::iter::once(b.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

pub fn start(c: &Config) -> Result<Host> {
    let g = &c.global;
    let cfg = HostConfig {
        dirs: dirs(c),
        memory_limit: g.plugin_memory_limit.unwrap_or(DEFAULT_MEMORY_LIMIT),
        cpu_slice: g.plugin_cpu_slice.unwrap_or(DEFAULT_CPU_SLICE),
        // SAFETY: geteuid has no preconditions and cannot fail.
        require_root_owned: unsafe { libc::geteuid() } == 0,
        script_user: crate::setup::script_user(c)?,
    };
    let (host, report) = Host::start(cfg).context("starting the plugin host")?;
    for r in &report.refused {
        warn!("plugin refused: {r}");
    }
    for p in &report.loaded {
        info!(
            "plugin {}: checks [{}] notify [{}] discovery [{}]{}",
            p.path.display(),
            p.checks.join(" "),
            p.notifiers.join(" "),
            p.discoveries.join(" "),
            p.overrides
                .as_ref()
                .map(|o| format!(" (overrides {})", o.display()))
                .unwrap_or_default()
        );
    }
    Ok(host)
}

/// Every check, tracked script and notify hook names a loaded plugin; the
/// errors carry the configuration's file:line.
pub fn verify(host: &Host, c: &Config) -> Result<()> {
    let mut missing = Vec::new();
    for vs in &c.virtual_servers {
        for rs in &vs.real_servers {
            for ck in &rs.checks {
                if !host.has_check(&ck.plugin) {
                    missing.push(format!(
                        "{}: no check plugin named {:?}",
                        ck.span, ck.plugin
                    ));
                }
            }
        }
    }
    for s in &c.track_scripts {
        if !host.has_check(&s.plugin) {
            missing.push(format!(
                "{}: no check plugin named {:?} (track script {})",
                s.span, s.plugin, s.name
            ));
        }
    }
    for h in &c.all_notify_hooks() {
        if !host.has_notify(&h.plugin) {
            missing.push(format!("{}: no notify plugin named {:?}", h.span, h.plugin));
        }
    }
    if !missing.is_empty() {
        bail!(
            "{} (plugin directories: {})",
            missing.join("; "),
            dirs(c)
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}
