//! The lbd binary's flags as a service manager or a script sees them:
//! exit codes, where the text goes, keepalived's spellings.

mod common;
use common::lbd;

#[test]
fn help_and_version_exit_0_on_stdout() {
    for flag in ["-h", "--help"] {
        let out = lbd(&[flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("--api-socket") && text.contains("--log-target"),
            "{text}"
        );
        assert!(out.stderr.is_empty(), "{flag} wrote to stderr");
    }
    let out = lbd(&["-V"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("lbd {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_usage_exits_2_with_one_line() {
    for args in [
        &["--bogus"][..],
        &["-f"],
        &["--log-target", "syslog"],
        &["stray"],
    ] {
        let out = lbd(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("lbd: "), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn check_reads_the_file_given_by_any_alias() {
    let dir = std::env::temp_dir().join(format!("lbd-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let conf = dir.join("k.conf");
    std::fs::write(
        &conf,
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  \
         virtual_ipaddress {\n    10.0.0.100/24\n  }\n}\n",
    )
    .unwrap_or_else(|e| panic!("{}: {e}", conf.display()));
    let c = conf.to_str().unwrap_or_default();
    let use_file = format!("--use-file={c}");
    for args in [
        &["-t", "-f", c][..],
        &["--check", "--config", c],
        &["--config-test", use_file.as_str()],
    ] {
        let out = lbd(args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {text}");
        assert!(text.contains("1 vrrp instance(s)"), "{args:?}: {text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
