//! lbd's namespace lab: per-test network namespaces joined by a bridge that
//! lives in a namespace of its own, real keepalived and lbd daemons, tshark
//! captures, and hand-forged VRRP adverts. Root only; tests use it behind the
//! `lab` feature.

// Test support: a panic here is a test failure with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod daemon;
pub mod forge;
pub mod http;
pub mod lab;
pub mod lvs;
pub mod pidns;
pub mod prom;
pub mod scenario;
pub mod tshark;
pub mod watch;

use std::time::{Duration, Instant};

pub use daemon::{lbd_ready, Auth, Daemon, Instance, Kind, VIP4, VIP6};
pub use lab::{Lab, Node, Proc};

/// Poll `cond` every 5 ms until it holds or `deadline` passes. The lab's only
/// synchronisation: conditions, never fixed sleeps.
pub fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Time until `cond` first holds, or None after `deadline`.
pub fn time_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    wait_until(deadline, &mut cond).then(|| start.elapsed())
}

/// A lab for a scenario run by `kinds`: None (with the reason printed) when
/// not root or when lbd is needed but not ready.
pub fn lab_for(test: &str, kinds: &[Kind]) -> Lab {
    if kinds.contains(&Kind::Lbd) && lbd_ready(test).is_none() {
        panic!("{test}: no usable lbd binary (build it: cargo build --workspace --bins; or set LBD_BIN)");
    }
    Lab::new(test)
}

/// One `#[test]` per daemon pairing for each scenario `fn name(test: &str,
/// master: Kind, backup: Kind)`: lbd/lbd, lbd/keepalived, keepalived/lbd.
/// The first kind runs on the node meant to win the election.
#[macro_export]
macro_rules! per_pair {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::Kind::{Keepalived, Lbd};
            fn t(pair: &str) -> String {
                format!("{}-{pair}", stringify!($name))
            }
            #[test]
            fn lbd_lbd() {
                super::$name(&t("ll"), Lbd, Lbd)
            }
            #[test]
            fn lbd_keepalived() {
                super::$name(&t("lk"), Lbd, Keepalived)
            }
            #[test]
            fn keepalived_lbd() {
                super::$name(&t("kl"), Keepalived, Lbd)
            }
            // The reference: proves the scenario itself before lbd is blamed.
            #[test]
            fn keepalived_keepalived() {
                super::$name(&t("kk"), Keepalived, Keepalived)
            }
        }
    )*};
}

/// Interop only: lbd master with keepalived backup, and the reverse.
#[macro_export]
macro_rules! mixed_pair {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::Kind::{Keepalived, Lbd};
            fn t(pair: &str) -> String {
                format!("{}-{pair}", stringify!($name))
            }
            #[test]
            fn lbd_master() {
                super::$name(&t("lk"), Lbd, Keepalived)
            }
            #[test]
            fn keepalived_master() {
                super::$name(&t("kl"), Keepalived, Lbd)
            }
        }
    )*};
}

/// One `#[test]` per daemon for single-daemon scenarios `fn name(test, kind)`.
/// The keepalived variant runs now and keeps the scenario itself honest.
#[macro_export]
macro_rules! per_daemon {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::Kind::{Keepalived, Lbd};
            #[test]
            fn lbd() {
                super::$name(concat!(stringify!($name), "-l"), Lbd)
            }
            #[test]
            fn keepalived() {
                super::$name(concat!(stringify!($name), "-k"), Keepalived)
            }
        }
    )*};
}
