//! Finding and loading the configuration.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, Result};

const DEFAULT_TOML: &str = "/etc/lb/lbd.toml";
const DEFAULT_KEEPALIVED: &str = "/etc/keepalived/keepalived.conf";

pub fn config_path(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    for p in [DEFAULT_TOML, DEFAULT_KEEPALIVED] {
        if Path::new(p).exists() {
            return Ok(PathBuf::from(p));
        }
    }
    Err(anyhow!(
        "no configuration: give -f FILE (looked for {DEFAULT_TOML} and {DEFAULT_KEEPALIVED})"
    ))
}

/// The keepalived config id for `@ID` lines, fixed at start (`-i`), so a
/// reload reads the file as the start did.
static CONFIG_ID: OnceLock<Option<String>> = OnceLock::new();

/// `given` (lbd's `-i`), else the hostname up to its first dot, as
/// keepalived defaults it.
pub fn set_config_id(given: Option<&str>) {
    let id = given.map(str::to_string).or_else(|| {
        let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
        let short = h.trim().split('.').next().unwrap_or("").to_string();
        (!short.is_empty()).then_some(short)
    });
    let _ = CONFIG_ID.set(id);
}

/// Loads and validates; on any error nothing is applied and every finding is
/// reported with its file:line.
pub fn load_config(path: &Path) -> Result<lbd_config::Loaded> {
    let opts = lbd_config::ReadOptions {
        config_id: CONFIG_ID.get().cloned().flatten(),
    };
    lbd_config::load_with(path, &opts).map_err(|e| anyhow!("configuration rejected:\n{e}"))
}

/// keepalived's `script_user USER [GROUP]`: the uid and gid scripts run as.
/// Without it scripts run as lbd itself (keepalived would look for a
/// `keepalived_script` user first; lbd does not guess).
pub fn script_user(c: &lbd_config::Config) -> Result<Option<(u32, u32)>> {
    let Some((user, group)) = &c.global.script_user else {
        return Ok(None);
    };
    lbd_plugin::prim::exec::user_ids(user, group.as_deref())
        .map(Some)
        .map_err(|e| anyhow!("script_user: {e}"))
}
