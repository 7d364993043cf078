//! Processes by name, read from /proc: what `pidof` and `killall -0` do.

use std::path::Path;

use super::PrimError;

/// Pids whose `comm` is `name`, or whose program (argv[0]) has `name` as
/// its basename: comm is cut at 15 characters.
pub fn find(name: &str) -> Result<Vec<u32>, PrimError> {
    let dir = std::fs::read_dir("/proc").map_err(|e| PrimError::io("/proc", e))?;
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        // A process may vanish between readdir and read: skip it.
        if matches(&e.path(), name) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn matches(dir: &Path, name: &str) -> bool {
    // A zombie has exited, only its parent has not collected it: it is not
    // running (pidof skips zombies too). It still has its comm, so without
    // this a dead haproxy under a parent that does not reap would pass.
    if std::fs::read_to_string(dir.join("stat"))
        .ok()
        .and_then(|s| lbd_sys::reap::parse_stat(&s))
        .is_some_and(|s| matches!(s.state, 'Z' | 'X'))
    {
        return false;
    }
    if std::fs::read_to_string(dir.join("comm")).is_ok_and(|c| c.trim_end_matches('\n') == name) {
        return true;
    }
    // Kernel threads have an empty cmdline and never match here.
    let Ok(cmd) = std::fs::read(dir.join("cmdline")) else {
        return false;
    };
    let argv0 = cmd.split(|b| *b == 0).next().unwrap_or_default();
    let base = argv0.rsplit(|b| *b == b'/').next().unwrap_or_default();
    !base.is_empty() && base == name.as_bytes()
}
