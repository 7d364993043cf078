//! Starting the Lua plugin host from the configuration, and checking that
//! every plugin the configuration names exists before anything runs.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use lbd_config::Config;
use lbd_plugin::{Host, HostConfig, LoadReport};
use tracing::{info, warn};

/// Where the bundled plugins are installed, and where operators add theirs.
pub const BUNDLED_DIR: &str = "/usr/share/lb/plugins";
pub const OPERATOR_DIR: &str = "/etc/lb/plugins";

const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;
const DEFAULT_CPU_SLICE: Duration = Duration::from_millis(100);

/// The bundled plugins (`plugins/` of the source tree), compiled in: the
/// binary alone runs a keepalived.conf's checkers and notify scripts. A
/// file of the same name in the bundled directory or /etc/lb/plugins
/// replaces one.
const BUILTIN: &[(&str, &str)] = &[
    (
        "checks/dns.lua",
        include_str!("../../../plugins/checks/dns.lua"),
    ),
    (
        "checks/exec.lua",
        include_str!("../../../plugins/checks/exec.lua"),
    ),
    (
        "checks/file.lua",
        include_str!("../../../plugins/checks/file.lua"),
    ),
    (
        "checks/http_get.lua",
        include_str!("../../../plugins/checks/http_get.lua"),
    ),
    (
        "checks/ping.lua",
        include_str!("../../../plugins/checks/ping.lua"),
    ),
    (
        "checks/process.lua",
        include_str!("../../../plugins/checks/process.lua"),
    ),
    (
        "checks/smtp.lua",
        include_str!("../../../plugins/checks/smtp.lua"),
    ),
    (
        "checks/systemd.lua",
        include_str!("../../../plugins/checks/systemd.lua"),
    ),
    (
        "checks/tcp.lua",
        include_str!("../../../plugins/checks/tcp.lua"),
    ),
    (
        "checks/udp.lua",
        include_str!("../../../plugins/checks/udp.lua"),
    ),
    (
        "notify/notify_exec.lua",
        include_str!("../../../plugins/notify/notify_exec.lua"),
    ),
    (
        "notify/notify_fifo.lua",
        include_str!("../../../plugins/notify/notify_fifo.lua"),
    ),
    (
        "notify/notify_log.lua",
        include_str!("../../../plugins/notify/notify_log.lua"),
    ),
    (
        "notify/notify_webhook.lua",
        include_str!("../../../plugins/notify/notify_webhook.lua"),
    ),
];

/// The plugin directories, above the built-in set: the configured ones,
/// else the packaged set (`LBD_PLUGIN_DIR` overrides its place) then the
/// operator's. Each contributes its `checks/`,
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

/// A loaded plugin file, for `/status`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PluginFile {
    /// The file stem: what the host's statistics are keyed by.
    pub name: String,
    pub path: String,
    /// The earlier file of the same name it replaces.
    pub overrides: Option<String>,
    pub checks: Vec<String>,
    pub notifiers: Vec<String>,
}

pub fn start(c: &Config) -> Result<(Host, Vec<PluginFile>)> {
    let g = &c.global;
    let cfg = HostConfig {
        builtin: BUILTIN,
        dirs: dirs(c),
        memory_limit: g.plugin_memory_limit.unwrap_or(DEFAULT_MEMORY_LIMIT),
        cpu_slice: g.plugin_cpu_slice.unwrap_or(DEFAULT_CPU_SLICE),
        // SAFETY: geteuid has no preconditions and cannot fail.
        require_root_owned: unsafe { libc::geteuid() } == 0,
        script_user: crate::setup::script_user(c)?,
    };
    let (host, report) = Host::start(cfg).context("starting the plugin host")?;
    log_report(&report);
    Ok((host, files(&report)))
}

/// The plugin files a load reports, for `/status`.
pub fn files(report: &LoadReport) -> Vec<PluginFile> {
    report
        .loaded
        .iter()
        .map(|p| PluginFile {
            name: p
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: p.path.display().to_string(),
            overrides: p.overrides.as_ref().map(|o| o.display().to_string()),
            checks: p.checks.clone(),
            notifiers: p.notifiers.clone(),
        })
        .collect()
}

/// Logs what a load loaded and refused.
pub fn log_report(report: &LoadReport) {
    for r in &report.refused {
        warn!("plugin refused: {r}");
    }
    for p in &report.loaded {
        info!(
            // The name plugin stop and lb.log lines use: the file's stem.
            plugin = %p.path.file_stem().unwrap_or_default().to_string_lossy(),
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

/// The program each `exec` check, tracked script and notify hook runs,
/// with where the configuration names it.
fn programs(c: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let argv0 = |o: &lbd_config::Options| -> Option<String> {
        if let Some(a) = o.get("argv").and_then(|v| v.as_array()) {
            return a.first().and_then(|v| v.as_str()).map(str::to_string);
        }
        let s = o.get("script").and_then(|v| v.as_str())?;
        lbd_config::split_words(s).ok()?.into_iter().next()
    };
    for vs in &c.virtual_servers {
        for rs in &vs.real_servers {
            for ck in rs.checks.iter().filter(|k| k.plugin == "exec") {
                out.extend(argv0(&ck.options).map(|p| (p, ck.span.to_string())));
            }
        }
    }
    for s in c.track_scripts.iter().filter(|s| s.plugin == "exec") {
        out.extend(argv0(&s.options).map(|p| (p, s.span.to_string())));
    }
    for h in c.all_notify_hooks().iter().filter(|h| h.plugin == "exec") {
        out.extend(argv0(&h.options).map(|p| (p, h.span.to_string())));
    }
    out
}

/// The program `prog` names: a path, or the first match in PATH.
fn resolve(prog: &str) -> Option<PathBuf> {
    if prog.contains('/') {
        return Some(PathBuf::from(prog));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// keepalived's `enable_script_security`: a program run as root must not
/// be replaceable by anyone else, so neither it nor any directory above
/// it may be writable by group or others or owned by another user. lbd
/// refuses to start (keepalived disables the script) and names each one.
pub fn script_security(c: &Config) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let as_root = c
        .global
        .script_user
        .as_ref()
        .is_none_or(|(u, _)| u == "root" || u == "0");
    // SAFETY: geteuid has no preconditions and cannot fail.
    if !c.global.enable_script_security || !as_root || unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let mut bad = Vec::new();
    for (prog, span) in programs(c) {
        let Some(path) = resolve(&prog) else {
            bad.push(format!("{span}: {prog}: not found"));
            continue;
        };
        let mut p = Some(path.as_path());
        while let Some(cur) = p {
            // A root-owned sticky directory (/tmp) lets nobody else replace
            // root's entries in it: writable by others is fine there.
            let is_dir = cur != path.as_path();
            match std::fs::metadata(cur) {
                Ok(m) if is_dir && m.uid() == 0 && m.mode() & 0o1000 != 0 => {}
                Ok(m) if m.uid() != 0 || m.mode() & 0o022 != 0 => {
                    bad.push(format!(
                        "{span}: {} is not secure: {} is {} (chown root / chmod go-w)",
                        prog,
                        cur.display(),
                        if m.uid() != 0 {
                            "not owned by root"
                        } else {
                            "writable by group or others"
                        }
                    ));
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    bad.push(format!("{span}: {prog}: {}: {e}", cur.display()));
                    break;
                }
            }
            p = cur.parent().filter(|d| !d.as_os_str().is_empty());
        }
    }
    if !bad.is_empty() {
        bail!("enable_script_security: {}", bad.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    /// Every plugin of the source tree is compiled in, under its own path.
    #[test]
    fn every_bundled_plugin_is_built_in() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
        let mut files = Vec::new();
        for sub in ["checks", "notify", "discovery"] {
            let Ok(rd) = std::fs::read_dir(root.join(sub)) else {
                continue;
            };
            for e in rd.flatten() {
                let name = format!("{sub}/{}", e.file_name().to_string_lossy());
                if name.ends_with(".lua") {
                    let src = std::fs::read_to_string(e.path()).unwrap();
                    files.push((name, src));
                }
            }
        }
        files.sort();
        let mut built: Vec<(String, String)> = super::BUILTIN
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect();
        built.sort();
        assert_eq!(built, files);
    }

    #[test]
    fn script_security_refuses_replaceable_programs() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: the check applies to root only");
            return;
        }
        let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target")
            .join(format!("script-security-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let good = d.join("good.sh");
        let bad = d.join("bad.sh");
        for (p, mode) in [(&good, 0o755), (&bad, 0o777)] {
            std::fs::write(p, "#!/bin/sh\nexit 0\n").unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let conf = |script: &std::path::Path| {
            format!(
                "global_defs {{\n enable_script_security\n}}\nvrrp_script chk {{\n script \"{} arg\"\n}}\n",
                script.display()
            )
        };
        let load = |text: String| {
            lbd_config::parse_keepalived_str(&text, std::path::Path::new("k.conf"))
                .unwrap()
                .config
        };
        assert!(super::script_security(&load(conf(&good))).is_ok());
        let e = super::script_security(&load(conf(&bad)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("k.conf:4") && e.contains("writable by group or others"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
