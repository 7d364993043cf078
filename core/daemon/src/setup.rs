//! Finding and loading the configuration.

use std::path::{Path, PathBuf};

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

/// Loads and validates; on any error nothing is applied and every finding is
/// reported with its file:line.
pub fn load_config(path: &Path) -> Result<lbd_config::Loaded> {
    lbd_config::load(path).map_err(|e| anyhow!("configuration rejected:\n{e}"))
}

/// keepalived's `script_user USER [GROUP]`: the uid and gid scripts run as.
/// Without it scripts run as lbd itself (keepalived would look for a
/// `keepalived_script` user first; lbd does not guess).
pub fn script_user(c: &lbd_config::Config) -> Result<Option<(u32, u32)>> {
    let Some((user, group)) = &c.global.script_user else {
        return Ok(None);
    };
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(|e| anyhow!("script_user {user}: reading /etc/passwd: {e}"))?;
    let (uid, primary) = id_of(&passwd, user, true)
        .ok_or_else(|| anyhow!("script_user {user}: no such user in /etc/passwd"))?;
    let gid = match group {
        None => primary,
        Some(g) => {
            let groups = std::fs::read_to_string("/etc/group")
                .map_err(|e| anyhow!("script_user group {g}: reading /etc/group: {e}"))?;
            id_of(&groups, g, false)
                .map(|(gid, _)| gid)
                .ok_or_else(|| anyhow!("script_user {user} {g}: no such group in /etc/group"))?
        }
    };
    Ok(Some((uid, gid)))
}

/// `name:x:ID:...` lines of /etc/passwd (with the primary gid) or /etc/group;
/// a numeric name is taken as the id itself.
fn id_of(db: &str, name: &str, passwd: bool) -> Option<(u32, u32)> {
    if let Ok(n) = name.parse::<u32>() {
        return Some((n, n));
    }
    db.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.first() != Some(&name) {
            return None;
        }
        let id = f.get(2)?.parse().ok()?;
        let gid = if passwd { f.get(3)?.parse().ok()? } else { id };
        Some((id, gid))
    })
}

#[cfg(test)]
mod tests {
    use super::id_of;

    #[test]
    fn passwd_and_group_lookup() {
        let pw = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(id_of(pw, "nobody", true), Some((65534, 65534)));
        assert_eq!(id_of(pw, "missing", true), None);
        assert_eq!(id_of(pw, "1000", true), Some((1000, 1000)));
        let gr = "root:x:0:\nnogroup:x:65534:\n";
        assert_eq!(id_of(gr, "nogroup", false), Some((65534, 65534)));
    }
}
