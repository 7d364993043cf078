//! What needs no running daemon: loading a configuration file, and the
//! reports of `lbd --check` / `lbd --convert`. Shared by lbd and lbctl
//! (`lbctl check` / `convert`), so both print the same thing.

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, Result};

/// `--check`: the configuration loads, but only after lbd repaired or
/// ignored something (keepalived's KEEPALIVED_CHK_EXIT_CONFIG_TEST).
pub const EXIT_REPAIRED: u8 = 5;

/// The keepalived config id for `@ID` lines: `given` (lbd's `-i`), else
/// the hostname up to its first dot, as keepalived defaults it.
pub fn config_id(given: Option<&str>) -> Option<String> {
    given.map(str::to_string).or_else(|| {
        let h = hostname()?;
        let short = h.trim().split('.').next().unwrap_or("").to_string();
        (!short.is_empty()).then_some(short)
    })
}

/// The UTS hostname, from the kernel (uname(2) in glibc): unlike
/// /proc/sys/kernel/hostname it needs no /proc (an empty chroot).
fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8(buf.get(..end)?.to_vec()).ok()
}

/// Loads and validates; on any error nothing is applied and every finding
/// is reported with its file:line.
pub fn load(path: &Path, config_id: Option<String>) -> Result<lbd_config::Loaded> {
    let opts = lbd_config::ReadOptions { config_id };
    lbd_config::load_with(path, &opts).map_err(|e| anyhow!("configuration rejected:\n{e}"))
}

/// `--check`: every finding, then a summary line; the exit status (0, or
/// [`EXIT_REPAIRED`]). Write errors (a closed pipe) are ignored.
pub fn check(path: &Path, loaded: &lbd_config::Loaded, out: &mut impl Write) -> u8 {
    for w in &loaded.warnings {
        let _ = writeln!(out, "{w}");
    }
    let repaired = loaded
        .warnings
        .iter()
        .filter(|w| w.kind == lbd_config::WarningKind::Repaired)
        .count();
    let _ = writeln!(
        out,
        "{}: {} ({} vrrp instance(s), {} sync group(s), {} virtual server(s), {} warning(s), {} repaired or ignored)",
        path.display(),
        if repaired == 0 { "ok" } else { "loads with repairs" },
        loaded.config.instances.len(),
        loaded.config.sync_groups.len(),
        loaded.config.virtual_servers.len(),
        loaded.warnings.len(),
        repaired,
    );
    // keepalived -t exits 5 when it had to repair the configuration.
    if repaired == 0 {
        0
    } else {
        EXIT_REPAIRED
    }
}

/// `--convert`: the configuration as lbd TOML on `out`; what is not
/// converted is said on `err`, prefixed with `prog`.
pub fn convert(
    prog: &str,
    loaded: &lbd_config::Loaded,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<()> {
    // The TOML keeps them as comments; the operator hears of them here.
    for s in &loaded.config.skipped_checks {
        let _ = writeln!(
            err,
            "{prog}: {}: warning: {} is not converted (lbd does not run it): the real server is treated as up",
            s.span, s.kind
        );
    }
    let toml = lbd_config::to_toml(&loaded.config)
        .map_err(|e| anyhow!("--convert: cannot write the configuration as TOML: {e}"))?;
    let _ = write!(out, "{toml}");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed expectation is the test failing
mod tests {
    use super::*;

    /// gethostname gives what /proc shows (the test host has a /proc).
    #[test]
    fn config_id_defaults_to_the_short_hostname() {
        let h = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let short = h.trim().split('.').next().unwrap().to_string();
        assert_eq!(config_id(None), (!short.is_empty()).then_some(short));
        assert_eq!(config_id(Some("lb1")).as_deref(), Some("lb1"));
    }
}
