//! Programs run without a shell, in their own process group, bounded in
//! time and output. keepalived kills a script's whole group at its
//! timeout; so does this.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::PrimError;

pub struct Request {
    pub argv: Vec<String>,
    pub timeout: Duration,
    pub env: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
    /// Per stream; the rest is read and dropped so the child never blocks.
    pub max_output: usize,
    pub uid_gid: Option<(u32, u32)>,
}

#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
}

async fn drain(mut r: impl AsyncRead + Unpin, max: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = max.saturating_sub(kept.len());
        kept.extend_from_slice(buf.get(..n.min(room)).unwrap_or_default());
    }
    kept
}

pub async fn run(req: Request) -> Result<Output, PrimError> {
    let Some(prog) = req.argv.first() else {
        return Err(PrimError::Msg("exec: empty argv".into()));
    };
    let mut cmd = Command::new(prog);
    cmd.args(req.argv.get(1..).unwrap_or_default())
        .envs(req.env.iter().map(|(k, v)| (k, v)))
        // A pipe, closed at once when there is no input: the same EOF as
        // /dev/null, without needing /dev (an empty chroot has none).
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some((uid, gid)) = req.uid_gid {
        // std drops the supplementary groups itself (setgroups(0) before
        // setuid when run by root); a pre_exec hook would run after the
        // setuid and fail with EPERM.
        cmd.uid(uid).gid(gid);
    }
    // Registered until waited for, so that lbd as PID 1 reaps orphans
    // without taking this child's exit status (lbd_sys::reap).
    let (child, own) = lbd_sys::reap::spawn_own(|| cmd.spawn(), Child::id)
        .map_err(|e| PrimError::io(format!("exec {prog}"), e))?;
    // Locals drop in reverse order: the child (killed and queued by tokio
    // when not waited for) before its registration, so the reaper never
    // reaps a pid that tokio may still signal.
    let _own = own;
    let mut child = child;
    let pid = child.id();
    match (req.stdin, child.stdin.take()) {
        (Some(data), Some(mut sin)) => {
            // A child that does not read its input must not stall us.
            tokio::spawn(async move {
                let _ = sin.write_all(&data).await;
            });
        }
        (None, sin) => drop(sin),
        (Some(_), None) => {}
    }
    let out = child.stdout.take();
    let err = child.stderr.take();
    let max = req.max_output;
    let out_task = tokio::spawn(async move {
        match out {
            Some(o) => drain(o, max).await,
            None => Vec::new(),
        }
    });
    let err_task = tokio::spawn(async move {
        match err {
            Some(e) => drain(e, max).await,
            None => Vec::new(),
        }
    });
    let (status, timed_out) = match tokio::time::timeout(req.timeout, child.wait()).await {
        Ok(s) => (
            s.map_err(|e| PrimError::io(format!("wait for {prog}"), e))?,
            false,
        ),
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                // SAFETY: kill(2) on the process group this child leads.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
            let s = child
                .wait()
                .await
                .map_err(|e| PrimError::io(format!("reap {prog}"), e))?;
            (s, true)
        }
    };
    // Grandchildren may keep the pipes open after a timeout: bound the wait.
    let grace = Duration::from_millis(200);
    let stdout = tokio::time::timeout(grace, out_task)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let stderr = tokio::time::timeout(grace, err_task)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    use std::os::unix::process::ExitStatusExt;
    Ok(Output {
        code: status.code(),
        signal: status.signal(),
        stdout,
        stderr,
        timed_out,
    })
}

/// keepalived's `user USER [GROUP]` (of `script_user`, a `vrrp_script` or
/// a MISC_CHECK): the uid and gid, from /etc/passwd and /etc/group. Without
/// a group, the user's primary one; a number is taken as the id itself.
pub fn user_ids(user: &str, group: Option<&str>) -> Result<(u32, u32), PrimError> {
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(|e| PrimError::io(format!("user {user}: reading /etc/passwd"), e))?;
    let (uid, primary) = id_of(&passwd, user, true)
        .ok_or_else(|| PrimError::Msg(format!("user {user}: no such user in /etc/passwd")))?;
    let gid = match group {
        None => primary,
        Some(g) => {
            let groups = std::fs::read_to_string("/etc/group")
                .map_err(|e| PrimError::io(format!("group {g}: reading /etc/group"), e))?;
            id_of(&groups, g, false)
                .map(|(gid, _)| gid)
                .ok_or_else(|| PrimError::Msg(format!("group {g}: no such group in /etc/group")))?
        }
    };
    Ok((uid, gid))
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

/// Starts a program and forgets it; a task reaps it (the fifo plugin's reader).
pub fn spawn(argv: &[String]) -> Result<(), PrimError> {
    let Some(prog) = argv.first() else {
        return Err(PrimError::Msg("spawn: empty argv".into()));
    };
    let mut cmd = Command::new(prog);
    cmd.args(argv.get(1..).unwrap_or_default())
        .stdin(Stdio::piped())
        .process_group(0);
    let (mut child, own) = lbd_sys::reap::spawn_own(|| cmd.spawn(), Child::id)
        .map_err(|e| PrimError::io(format!("spawn {prog}"), e))?;
    // EOF on stdin, as /dev/null would give, with no /dev needed.
    drop(child.stdin.take());
    tokio::spawn(async move {
        let _ = child.wait().await;
        drop(own);
    });
    Ok(())
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

    /// Without input a program reading stdin sees EOF at once (as from
    /// /dev/null, which lbd no longer opens); with input it reads it.
    #[test]
    fn stdin_is_eof_or_the_input() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let req = |stdin: Option<&[u8]>| super::Request {
            argv: vec!["cat".into()],
            timeout: std::time::Duration::from_secs(30),
            env: vec![],
            stdin: stdin.map(<[u8]>::to_vec),
            max_output: 1024,
            uid_gid: None,
        };
        let out = rt.block_on(super::run(req(None))).unwrap();
        assert_eq!(
            (out.code, out.timed_out, out.stdout.len()),
            (Some(0), false, 0)
        );
        let out = rt.block_on(super::run(req(Some(b"in")))).unwrap();
        assert_eq!((out.code, out.stdout), (Some(0), b"in".to_vec()));
    }
}
