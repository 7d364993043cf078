//! Running the `lbd` binary from the daemon's integration tests.
#![allow(clippy::expect_used, dead_code)]

use std::process::{Command, Output};

pub fn lbd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args(args)
        .output()
        .expect("running lbd")
}

/// stdout then stderr, as one text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
