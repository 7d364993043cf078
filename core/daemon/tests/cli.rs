//! The `lbd` command line on real files: `--check`, `--convert`, usage
//! errors. No privileges needed: none of these touch the system.

#![allow(clippy::expect_used, clippy::unwrap_used)]
use std::path::{Path, PathBuf};

mod common;
use common::{lbd, text};

fn configs(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/configs")
        .join(kind);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("reading config fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no fixtures in {}", dir.display());
    v
}

#[test]
fn check_accepts_every_good_config() {
    for p in configs("good") {
        let o = lbd(&["--check", "-f", p.to_str().expect("utf-8 path")]);
        // 5 exactly when something was repaired or ignored (a warning, not a note).
        let repaired = text(&o).contains(": warning: ");
        let want = if repaired { EXIT_REPAIRED } else { 0 };
        assert_eq!(o.status.code(), Some(want), "{}: {}", p.display(), text(&o));
        if want == 0 {
            assert!(text(&o).contains(": ok ("), "{}: {}", p.display(), text(&o));
        }
    }
}

/// Each bad fixture's first line is `# expect: LINE: SUBSTRING`; `--check`
/// must fail and print `FILE:LINE: error: ...SUBSTRING...`.
#[test]
fn check_rejects_every_bad_config_with_file_and_line() {
    for p in configs("bad") {
        let first = std::fs::read_to_string(&p).expect("reading fixture");
        let expect = first
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: no '# expect:' line", p.display()));
        let (line, what) = expect.split_once(": ").expect("LINE: SUBSTRING");
        let o = lbd(&["--check", "-f", p.to_str().expect("utf-8 path")]);
        let out = text(&o);
        assert!(!o.status.success(), "{} was accepted", p.display());
        let want = format!("{}:{line}: error:", p.display());
        assert!(
            out.contains(&want),
            "{}: want {want:?} in:\n{out}",
            p.display()
        );
        assert!(
            out.contains(what),
            "{}: want {what:?} in:\n{out}",
            p.display()
        );
    }
}

/// keepalived -t's status for a configuration it had to repair.
const EXIT_REPAIRED: i32 = 5;

/// Each repaired fixture's `# expect: LINE: TEXT` lines: `--check` loads
/// it, exits 5 and prints `FILE:LINE: warning: ...TEXT...` for each.
#[test]
fn check_exits_5_on_every_repaired_config_and_prints_each_repair() {
    for p in configs("repaired") {
        let body = std::fs::read_to_string(&p).expect("reading fixture");
        let o = lbd(&["--check", "-f", p.to_str().expect("utf-8 path")]);
        let out = text(&o);
        assert_eq!(
            o.status.code(),
            Some(EXIT_REPAIRED),
            "{}: {out}",
            p.display()
        );
        assert!(out.contains("loads with repairs"), "{}: {out}", p.display());
        for spec in body.lines().map_while(|l| l.strip_prefix("# expect: ")) {
            let (line, what) = spec.split_once(": ").expect("LINE: TEXT");
            let want = format!("{}:{line}: warning: ", p.display());
            assert!(
                out.lines()
                    .any(|l| l.starts_with(&want) && l.contains(what)),
                "{}: want {want:?} with {what:?} in:\n{out}",
                p.display()
            );
        }
    }
}

/// The lower-case `lb_kind nat` of real LVS-NAT write-ups means NAT to
/// keepalived too: a note, and `--check` exits 0.
#[test]
fn lower_case_nat_is_a_note_and_checks_clean() {
    let p = configs("good")
        .into_iter()
        .find(|p| p.ends_with("lvs-nat-lowercase.conf"))
        .expect("fixture");
    let o = lbd(&["--check", "-f", p.to_str().expect("utf-8 path")]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "{}:21: note: lb_kind nat: not a keepalived method name",
            p.display()
        )),
        "{out}"
    );
    let c = lbd(&["--convert", "-f", p.to_str().expect("utf-8 path")]);
    assert!(
        String::from_utf8_lossy(&c.stdout).contains("forwarding = \"nat\""),
        "{}",
        text(&c)
    );
}

#[test]
fn unsupported_keywords_are_warnings_with_file_and_line() {
    let p = configs("good")
        .into_iter()
        .find(|p| p.ends_with("unsupported-blocks.conf"))
        .expect("fixture");
    let o = lbd(&["--check", "-f", p.to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(EXIT_REPAIRED), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains(&format!("{}:", p.display())) && out.contains("warning"),
        "{out}"
    );
    assert!(out.contains("smtp_alert"), "{out}");
    // Scripts, notify and checkers are read now, not warned about.
    assert!(
        !out.contains("vrrp_script") && !out.contains("HTTP_GET"),
        "{out}"
    );
}

/// keepalived.conf -> `--convert` -> TOML that `--check` accepts and that
/// converts to the same TOML again.
#[test]
fn convert_round_trips_through_check() {
    let dir = std::env::temp_dir().join(format!("lbd-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for p in configs("good")
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
    {
        let o = lbd(&["--convert", "-f", p.to_str().expect("utf-8 path")]);
        assert!(o.status.success(), "{}: {}", p.display(), text(&o));
        let toml = dir.join(format!(
            "{}.toml",
            p.file_stem().and_then(|s| s.to_str()).unwrap_or("x")
        ));
        std::fs::write(&toml, &o.stdout).expect("write");
        let c = lbd(&["--check", "-f", toml.to_str().expect("utf-8 path")]);
        assert!(
            c.status.success(),
            "{} converted: {}",
            p.display(),
            text(&c)
        );
        let again = lbd(&["--convert", "-f", toml.to_str().expect("utf-8 path")]);
        assert_eq!(
            String::from_utf8_lossy(&again.stdout),
            String::from_utf8_lossy(&o.stdout),
            "{}",
            p.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors() {
    let o = lbd(&["--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("unexpected argument '--no-such-flag'"),
        "{}",
        text(&o)
    );
    let o = lbd(&["-f", "/nonexistent/keepalived.conf", "--check"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("/nonexistent/keepalived.conf"),
        "{}",
        text(&o)
    );
    let o = lbd(&["--help"]);
    assert!(o.status.success() && text(&o).contains("--api-socket"));
}

/// The README's full TOML example is what lbd accepts.
#[test]
fn readme_toml_example_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let start = readme.find("```toml\n").expect("a toml block in README") + "```toml\n".len();
    let len = readme[start..].find("```").expect("closed block");
    let dir = std::env::temp_dir().join(format!("lbd-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("example.toml");
    std::fs::write(&file, &readme[start..start + len]).expect("write");
    let o = lbd(&["--check", "-f", file.to_str().expect("utf-8 path")]);
    assert!(o.status.success(), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A checker kind lbd does not run stays visible through `--convert`: a
/// comment in the TOML where it stood, and a line on stderr.
#[test]
fn convert_keeps_unsupported_checkers_visible() {
    let dir = std::env::temp_dir().join(format!("lbd-cli-bfd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let conf = dir.join("bfd.conf");
    std::fs::write(
        &conf,
        "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n}\n\
         virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.1.1 80 {\n \
         BFD_CHECK {\n name b1\n }\n PING_CHECK {\n }\n }\n}\n",
    )
    .expect("write");
    let o = lbd(&["--convert", "-f", conf.to_str().expect("utf-8 path")]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    let at = format!("{}:8", conf.display());
    assert!(
        out.contains(&format!("# BFD_CHECK ({at}) is not converted: lbd does not run it, the real server is treated as up")),
        "{out}"
    );
    assert!(out.contains("plugin = \"ping\""), "{out}");
    assert!(
        err.contains(&format!("lbd: {at}: warning: BFD_CHECK is not converted")),
        "{err}"
    );
    let c = lbd(&["--check", "-f", conf.to_str().expect("utf-8 path")]);
    assert!(
        text(&c).contains("BFD_CHECK is not supported yet: the check is not run and the real server is treated as up"),
        "{}",
        text(&c)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
