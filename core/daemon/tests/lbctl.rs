//! lbctl without a running lbd (no privileges needed): `check` / `convert`
//! print exactly what lbd prints for every fixture, and an lbd that cannot
//! be reached or does not answer is one line and exit 2.

#![allow(clippy::expect_used, clippy::unwrap_used)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::lbd;

fn lbctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lbctl"))
        .args(args)
        .output()
        .expect("running lbctl")
}

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/configs");
    let mut v = Vec::new();
    for kind in ["good", "bad", "repaired"] {
        if let Ok(rd) = std::fs::read_dir(root.join(kind)) {
            v.extend(
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file()),
            );
        }
    }
    v.sort();
    assert!(!v.is_empty(), "no fixtures in {}", root.display());
    v
}

#[test]
fn check_and_convert_print_what_lbd_prints() {
    for p in fixtures() {
        let f = p.to_str().unwrap();
        for (ours, theirs) in [
            (["check", f], ["--check", "-f", f]),
            (["convert", f], ["--convert", "-f", f]),
        ] {
            let (a, b) = (lbctl(&ours), lbd(&theirs));
            assert_eq!(a.status.code(), b.status.code(), "{ours:?}");
            assert_eq!(a.stdout, b.stdout, "{ours:?}");
            // The same findings; only the program name differs.
            let strip = |o: &Output, prog: &str| {
                String::from_utf8_lossy(&o.stderr).replace(&format!("{prog}: "), "")
            };
            assert_eq!(strip(&a, "lbctl"), strip(&b, "lbd"), "{ours:?}");
        }
    }
}

fn one_line_exit_2(o: &Output, want: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(want), "'{want}' expected: {err}");
    assert!(o.stdout.is_empty());
}

#[test]
fn unreachable_or_silent_lbd_is_one_line_and_exit_2() {
    let dir = std::env::temp_dir().join(format!("lbctl-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("lbd.sock");
    let s = sock.to_str().unwrap();
    one_line_exit_2(&lbctl(&["--socket", s, "status"]), "lbd is not running");
    // A socket file nobody listens on (a crashed lbd's).
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    one_line_exit_2(&lbctl(&["--socket", s, "reload"]), "lbd is not running");
    std::fs::remove_file(&sock).unwrap();
    // Listening but never answering: a stuck lbd.
    let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    one_line_exit_2(
        &lbctl(&["--socket", s, "--timeout", "1", "status"]),
        "did not answer within 1 s",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
