//! PID 1 duties: reaping orphans without stealing lbd's own children.
//!
//! As PID 1 (a container, a PID namespace) lbd inherits every orphan of the
//! namespace; an unreaped one stays a zombie, and `killall -0 haproxy`
//! still finds a dead HAProxy. lbd's own children (tracked scripts,
//! MISC_CHECK, notify programs, nft, modprobe) are waited for by pid by
//! whoever spawned them (tokio waits each child by its pid, through a pidfd
//! on Linux; std by `waitpid(pid)`), and a `waitpid(-1)` reaper would take
//! their exit status from them: the check would see ECHILD, not the code.
//!
//! So every child lbd spawns goes through [`spawn_own`], which registers
//! its pid while holding the same lock as [`sweep`]: the reaper can never
//! look at a child that is forked but not registered yet. [`sweep`] then
//! reaps exactly the zombies that are not registered.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::SysError;

/// Pids of lbd's own live children, with a count: a pid reaped by its
/// spawner can be reused by the next child before the first [`Own`] drops.
static OWN: Mutex<BTreeMap<i32, u32>> = Mutex::new(BTreeMap::new());

/// Bounds one sweep: a fork storm must not keep the reaper in a loop.
const MAX_PER_SWEEP: usize = 4096;

fn own() -> MutexGuard<'static, BTreeMap<i32, u32>> {
    // The map holds no invariant a panicking holder could break halfway.
    OWN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The registration of one of lbd's own children; dropping it (after the
/// child was waited for, or given up) hands the pid back to the reaper.
#[derive(Debug)]
pub struct Own {
    pid: Option<i32>,
}

impl Drop for Own {
    fn drop(&mut self) {
        let Some(pid) = self.pid else { return };
        let mut own = own();
        if let Some(n) = own.get_mut(&pid) {
            *n -= 1;
            if *n == 0 {
                own.remove(&pid);
            }
        }
    }
}

/// Runs `spawn` (a `Command::spawn` of std or tokio) with the registry
/// locked and registers the child's pid before anyone can reap it. Keep the
/// returned [`Own`] until the child has been waited for.
pub fn spawn_own<C>(
    spawn: impl FnOnce() -> io::Result<C>,
    pid: impl FnOnce(&C) -> Option<u32>,
) -> io::Result<(C, Own)> {
    let mut own = own();
    let child = spawn()?;
    let pid = pid(&child).and_then(|p| i32::try_from(p).ok());
    if let Some(p) = pid {
        *own.entry(p).or_insert(0) += 1;
    }
    Ok((child, Own { pid }))
}

/// Whether `pid` is one of lbd's own children right now.
pub fn is_own(pid: i32) -> bool {
    own().contains_key(&pid)
}

/// An orphan that [`sweep`] reaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaped {
    pub pid: i32,
    /// Its name from /proc, when /proc could tell.
    pub comm: Option<String>,
    /// The raw wait status (`WIFEXITED` and friends).
    pub status: i32,
}

/// The fields of `/proc/PID/stat` the reaper needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
}

/// Parses `/proc/PID/stat`. The name sits in parentheses and may itself
/// hold spaces and parentheses, so it ends at the *last* `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let (head, rest) = text.split_once(" (")?;
    let close = rest.rfind(')')?;
    let comm = rest.get(..close)?;
    let mut fields = rest.get(close + 1..)?.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(Stat {
        pid: head.trim().parse().ok()?,
        comm: comm.to_string(),
        state,
        ppid,
    })
}

/// Whether the mounted /proc is the one of lbd's PID namespace (it is not
/// after `unshare --pid --fork` without `--mount-proc`): only then do its
/// pids and ppids mean anything to `waitpid`.
pub fn proc_is_ours() -> bool {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse::<u32>().ok())
        == Some(std::process::id())
}

fn stat_of(pid: i32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `waitpid(pid, WNOHANG)`: Some(status) when `pid` was reaped.
fn reap(pid: i32) -> Result<Option<i32>, SysError> {
    let mut status = 0;
    // SAFETY: waitpid writes only to `status`, which outlives the call.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::__WALL) };
    if r == pid {
        return Ok(Some(status));
    }
    if r == 0 {
        return Ok(None); // not exited after all
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ECHILD) {
        return Ok(None); // not (or no longer) our child
    }
    Err(SysError::os(format!("reaping orphan {pid} (waitpid)"), err))
}

/// The first zombie child, left a zombie (`waitid(P_ALL, WNOWAIT)`).
fn peek() -> Result<Option<i32>, SysError> {
    // SAFETY: an all-zero siginfo_t is valid; waitid fills it in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL;
    // SAFETY: waitid writes only to `info`, which outlives the call.
    let r = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, flags) };
    if r == -1 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ECHILD) {
            return Ok(None); // no children at all
        }
        return Err(SysError::os("looking for exited children (waitid)", err));
    }
    // SAFETY: waitid succeeded, so si_pid is set (0 when nothing exited).
    let pid = unsafe { info.si_pid() };
    Ok((pid != 0).then_some(pid))
}

/// Reaps every exited child that is not one of lbd's own. First the
/// kernel's own list: `waitid(WNOWAIT)` names the first zombie without
/// reaping it. When that one is lbd's own (its spawner has not waited for
/// it yet), the zombies behind it are found in /proc (state Z, ppid = us),
/// if /proc is this namespace's; otherwise the next sweep gets them.
pub fn sweep() -> Result<Vec<Reaped>, SysError> {
    let own = own();
    let mut reaped = Vec::new();
    let proc_ok = proc_is_ours();
    let comm = |pid| proc_ok.then(|| stat_of(pid).map(|s| s.comm)).flatten();
    let mut blocked = false;
    while reaped.len() < MAX_PER_SWEEP {
        let Some(pid) = peek()? else {
            break;
        };
        if own.contains_key(&pid) {
            blocked = true;
            break;
        }
        let name = comm(pid);
        match reap(pid)? {
            Some(status) => reaped.push(Reaped {
                pid,
                comm: name,
                status,
            }),
            // Named by waitid a moment ago yet not reapable: stop rather
            // than spin on it.
            None => break,
        }
    }
    if !blocked || !proc_ok {
        return Ok(reaped);
    }
    let me = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    let dir = std::fs::read_dir("/proc").map_err(|e| SysError::os("listing /proc", e))?;
    for entry in dir.flatten() {
        if reaped.len() >= MAX_PER_SWEEP {
            break;
        }
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if own.contains_key(&pid) {
            continue;
        }
        // A process gone between the listing and the read is no zombie of ours.
        let Some(st) = stat_of(pid) else { continue };
        if st.state != 'Z' || st.ppid != me {
            continue;
        }
        if let Some(status) = reap(pid)? {
            reaped.push(Reaped {
                pid,
                comm: Some(st.comm),
                status,
            });
        }
    }
    Ok(reaped)
}

/// "exit 3", "signal 9": a wait status for a log line.
pub fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exit {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("signal {}", libc::WTERMSIG(status))
    } else {
        format!("status {status:#x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_plain() {
        let s = parse_stat("4242 (haproxy) Z 1 4242 4242 0 -1 4194564 0 0").unwrap();
        assert_eq!(
            s,
            Stat {
                pid: 4242,
                comm: "haproxy".into(),
                state: 'Z',
                ppid: 1
            }
        );
    }

    #[test]
    fn stat_comm_with_spaces_and_parentheses() {
        let s = parse_stat("17 (a) b (c) d) S 3 17 17 0 -1\n").unwrap();
        assert_eq!(s.comm, "a) b (c) d");
        assert_eq!((s.pid, s.state, s.ppid), (17, 'S', 3));
        let s = parse_stat("18 ( ) R 1 0").unwrap();
        assert_eq!((s.comm.as_str(), s.state, s.ppid), (" ", 'R', 1));
        let s = parse_stat("19 (()) Z 7 0").unwrap();
        assert_eq!((s.comm.as_str(), s.state, s.ppid), ("()", 'Z', 7));
    }

    #[test]
    fn stat_malformed_is_none() {
        for bad in [
            "",
            "12",
            "12 (x",
            "12 (x)",
            "12 (x) Z",
            "12 (x) Z notapid",
            "x (y) Z 1",
        ] {
            assert_eq!(parse_stat(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn own_stat_is_readable() {
        let me = i32::try_from(std::process::id()).unwrap();
        let st = stat_of(me).unwrap();
        assert_eq!(st.pid, me);
        assert!(proc_is_ours());
    }

    #[test]
    fn registration_counts_reused_pids() {
        let fake = || -> io::Result<u32> { Ok(999_999) };
        let (_, a) = spawn_own(fake, |p| Some(*p)).unwrap();
        let (_, b) = spawn_own(fake, |p| Some(*p)).unwrap();
        assert!(is_own(999_999));
        drop(a);
        assert!(is_own(999_999), "the second registration still holds");
        drop(b);
        assert!(!is_own(999_999));
        assert!(spawn_own(|| Err::<u32, _>(io::Error::other("no")), |p| Some(*p)).is_err());
    }

    #[test]
    fn status_text() {
        assert_eq!(describe_status(3 << 8), "exit 3");
        assert_eq!(describe_status(9), "signal 9");
    }
}
