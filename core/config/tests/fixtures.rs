//! Every file in tests/configs/good loads; every file in tests/configs/bad
//! fails with the line and message its first-line `# expect:` comment names.
#![allow(clippy::expect_used)] // a failed expectation is the test failing

use std::path::{Path, PathBuf};

use lbd_config::*;

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/configs")
        .join(name)
}

/// Files directly in `d` (subdirectories hold included files).
fn files(d: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(d)
        .expect("fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no fixtures in {}", d.display());
    v
}

/// Spans differ between syntaxes; the rest must not.
fn strip_spans(mut c: Config) -> Config {
    for i in &mut c.instances {
        i.span = Span::default();
        for v in i.vips.iter_mut().chain(i.excluded_vips.iter_mut()) {
            v.span = Span::default();
        }
    }
    for g in &mut c.sync_groups {
        g.span = Span::default();
        for r in &mut g.track_scripts {
            r.span = Span::default();
        }
    }
    for i in &mut c.instances {
        for r in &mut i.track_scripts {
            r.span = Span::default();
        }
        for r in &mut i.virtual_routes {
            r.span = Span::default();
        }
    }
    for r in &mut c.static_routes {
        r.span = Span::default();
    }
    for t in &mut c.track_scripts {
        t.span = Span::default();
    }
    for h in &mut c.notify_hooks {
        h.span = Span::default();
    }
    for g in &mut c.virtual_server_groups {
        g.span = Span::default();
    }
    for v in &mut c.virtual_servers {
        v.span = Span::default();
        if let Some(s) = &mut v.sorry_server {
            s.span = Span::default();
        }
        for r in &mut v.real_servers {
            r.span = Span::default();
            for k in &mut r.checks {
                k.span = Span::default();
            }
        }
    }
    if let Some(sd) = &mut c.global.lvs_sync_daemon {
        sd.span = Span::default();
    }
    // Unsupported checkers become comments in the TOML, not model entries.
    c.skipped_checks.clear();
    c
}

#[test]
fn good_configs_load() {
    for f in files(&dir("good")) {
        match load(&f) {
            Ok(l) => {
                assert!(
                    !l.config.instances.is_empty(),
                    "{}: no instances",
                    f.display()
                );
                for w in &l.warnings {
                    eprintln!("{w}");
                }
            }
            Err(e) => panic!("{} should load:\n{e}", f.display()),
        }
    }
}

#[test]
fn bad_configs_fail_at_the_expected_line() {
    for f in files(&dir("bad")) {
        let text = std::fs::read_to_string(&f).expect("read fixture");
        let first = text.lines().next().unwrap_or("");
        let spec = first.strip_prefix("# expect: ").unwrap_or_else(|| {
            panic!(
                "{}: first line must be '# expect: <line>: <text>'",
                f.display()
            )
        });
        let (line, want) = spec.split_once(": ").expect("'<line>: <text>'");
        let line: usize = line.parse().expect("line number");
        match load(&f) {
            Ok(_) => panic!("{} should fail", f.display()),
            Err(e) => {
                let d = e.first().expect("at least one error");
                assert_eq!(d.span.line, line, "{}: wrong line in:\n{e}", f.display());
                assert!(
                    d.message.contains(want),
                    "{}: expected {want:?} in:\n{e}",
                    f.display()
                );
                assert!(e
                    .to_string()
                    .starts_with(&format!("{}:{line}: error: ", d.span.file.display())));
            }
        }
    }
}

/// `# expect: LINE: TEXT` lines at the top of a fixture.
fn expectations(f: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(f).expect("read fixture");
    let v: Vec<(usize, String)> = text
        .lines()
        .map_while(|l| l.strip_prefix("# expect: "))
        .map(|spec| {
            let (line, want) = spec.split_once(": ").expect("'<line>: <text>'");
            (line.parse().expect("line number"), want.to_string())
        })
        .collect();
    assert!(!v.is_empty(), "{}: no '# expect:' line", f.display());
    v
}

/// Files keepalived runs only after repairing them: lbd loads them with a
/// `Repaired` warning at each expected line, as keepalived reports one.
#[test]
fn repaired_configs_load_with_the_expected_warnings() {
    for f in files(&dir("repaired")) {
        let l = load(&f).unwrap_or_else(|e| panic!("{} should load:\n{e}", f.display()));
        for (line, want) in expectations(&f) {
            assert!(
                l.warnings.iter().any(|w| w.span.line == line
                    && w.kind == WarningKind::Repaired
                    && w.message.contains(&want)),
                "{}: no repair warning at line {line} with {want:?} in {:#?}",
                f.display(),
                l.warnings
            );
        }
    }
}

#[test]
fn keepalived_to_toml_round_trip_is_identity() {
    for f in files(&dir("good")) {
        let Ok(l) = load(&f) else {
            panic!("{} should load", f.display())
        };
        let toml = to_toml(&l.config).expect("the model serializes");
        let back = match parse_toml_str(&toml, Path::new("converted.toml")) {
            Ok(b) => b,
            Err(e) => panic!(
                "{}: converted TOML does not load:\n{e}\n---\n{toml}",
                f.display()
            ),
        };
        assert_eq!(
            strip_spans(back.config),
            strip_spans(l.config),
            "{}:\n{toml}",
            f.display()
        );
    }
}

#[test]
fn toml_twins_match_keepalived() {
    for (conf, toml) in [
        (
            "sync-group-two-interfaces.conf",
            "sync-group-two-interfaces.toml",
        ),
        ("v3-ipv4-ipv6.conf", "v3-ipv4-ipv6.toml"),
        ("lvs-nat-http-get.conf", "lvs-nat-http-get.toml"),
        ("lvs-l4-checks.conf", "lvs-l4-checks.toml"),
    ] {
        let a = load(&dir("good").join(conf)).expect("conf loads");
        let b = load(&dir("good").join(toml)).expect("toml loads");
        let (mut a, b) = (strip_spans(a.config), strip_spans(b.config));
        // The TOML twins leave out global keys that do not affect the instances.
        a.global.router_id = b.global.router_id.clone();
        assert_eq!(a, b, "{conf} vs {toml}");
    }
}

#[test]
fn includes_resolve_against_the_including_file() {
    let l = load(&dir("good").join("includes.conf")).expect("includes load");
    let names: Vec<&str> = l.config.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["WEB", "DB"]);
    assert!(l.config.instances[0]
        .span
        .file
        .ends_with("include.d/instances/10-web.conf"));
    assert_eq!(l.config.instances[1].span.line, 1);
    assert_eq!(l.config.sync_groups[0].members, ["WEB", "DB"]);
    // Global garp defaults reach instances; their own keywords override.
    assert_eq!(
        l.config.instances[0].garp.master_delay,
        std::time::Duration::from_secs(2)
    );
    assert_eq!(
        l.config.instances[1].garp.master_delay,
        std::time::Duration::from_secs(1)
    );
    assert_eq!(l.config.instances[1].garp.master_repeat, 2);
}

#[test]
fn quoted_password_keeps_comment_characters() {
    let l = load(&dir("good").join("v2-ah.conf")).expect("loads");
    assert_eq!(
        l.config.instances[0].auth,
        Some(Auth::Ah("s3cr#t!x".into()))
    );
}
