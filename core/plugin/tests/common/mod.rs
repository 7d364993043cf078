//! Shared by the plugin test files.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use lbd_plugin::{CheckOutcome, Host, Options, Target};

/// Runs one check the daemon's way (core/daemon/src/health.rs): a job on
/// the plugin thread (`Host::spawn`) binds a checker (`Local::checker`)
/// and runs it; the guard stops the job when the result is in.
pub async fn run_check(
    h: &Host,
    name: &str,
    target: Target,
    opts: Options,
    timeout: Duration,
) -> CheckOutcome {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let name = name.to_string();
    let _guard = h.spawn(Box::new(move |local| {
        Box::pin(async move {
            let mut check = local.checker(&name, target, opts);
            let _ = tx.send(check.run(timeout).await);
        })
    }));
    rx.await.expect("the check job ended without a result")
}

/// Whether the tests run as root (the lab tier does).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A lab-tier test's precondition: without it the test fails, saying what
/// is missing (the tier that enables the `lab` feature provides it).
pub fn require(ok: bool, what: &str) {
    assert!(ok, "this lab-tier test needs {what}");
}
