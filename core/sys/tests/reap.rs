//! The reaper on real processes, without root: this test process makes
//! itself a child subreaper (PR_SET_CHILD_SUBREAPER), so orphans of its
//! children are re-parented to it as they would be to PID 1. One test in
//! its own binary: the subreaper flag and the sweeps are process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lbd_sys::reap::{self, parse_stat, spawn_own, sweep, Own};

fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while !cond() {
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

fn state(pid: i32) -> Option<char> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?).map(|s| s.state)
}

/// Our children (and adopted orphans) named `comm`.
fn children_named(comm: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let s = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let st = parse_stat(&s)?;
            (st.ppid == me && st.comm == comm).then_some(st.pid)
        })
        .collect()
}

fn sh(script: &str) -> (Child, Own) {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script]).stdin(Stdio::null());
    spawn_own(|| cmd.spawn(), |c| Some(c.id())).unwrap()
}

#[test]
fn orphans_reaped_own_children_keep_their_status() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes one integer argument.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }, 0);

    // Own child A exits 3 and stays a zombie, first in the kernel's list:
    // the sweep must look past it (in /proc) and leave it to its waiter.
    let (mut a, _a_own) = sh("exit 3");
    let a_pid = a.id() as i32;
    assert!(wait_until(Duration::from_secs(10), || state(a_pid) == Some('Z')));

    // B leaves an orphan (a daemonising child) that is re-parented to us.
    let (mut b, _b_own) = sh("sleep 0.2 & exit 0");
    assert_eq!(b.wait().unwrap().code(), Some(0));
    let orphan = {
        let mut found = vec![];
        assert!(wait_until(Duration::from_secs(10), || {
            found = children_named("sleep");
            !found.is_empty()
        }));
        found[0]
    };
    assert!(!reap::is_own(orphan));
    assert!(wait_until(Duration::from_secs(10), || state(orphan) == Some('Z')));

    let reaped = sweep().unwrap();
    assert!(
        reaped
            .iter()
            .any(|r| r.pid == orphan && r.comm.as_deref() == Some("sleep") && r.status == 0),
        "orphan {orphan} not reaped: {reaped:?}"
    );
    assert!(reaped.iter().all(|r| r.pid != a_pid), "own child taken");
    assert_eq!(state(orphan), None, "the orphan is gone");
    assert_eq!(
        state(a_pid),
        Some('Z'),
        "the own child is left to its waiter"
    );

    // Many orphans at once, while own children come and go: every own
    // status is the real one, every orphan ends reaped.
    let (mut storm, _storm_own) =
        sh("i=0; while [ $i -lt 50 ]; do sleep 0.01 & i=$((i+1)); done; exit 0");
    for code in 0..20 {
        let (mut c, _own) = sh(&format!("exit {code}"));
        let _ = sweep().unwrap();
        assert_eq!(c.wait().unwrap().code(), Some(code));
    }
    assert_eq!(storm.wait().unwrap().code(), Some(0));
    assert!(
        wait_until(Duration::from_secs(10), || {
            let _ = sweep().unwrap();
            children_named("sleep").is_empty()
        }),
        "orphans left: {:?}",
        children_named("sleep")
    );

    let st = a.wait().unwrap();
    assert_eq!((st.code(), st.signal()), (Some(3), None));
    // Nothing left to reap: no error, nothing reaped.
    assert_eq!(sweep().unwrap(), vec![]);
}
