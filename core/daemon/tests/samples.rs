//! keepalived's own sample configurations (tests/configs/keepalived-samples,
//! copied from keepalived's doc/samples) through `lbd --check`, `--convert`
//! and `--check` of the converted TOML. keepalived 2.2.7 runs every one of
//! them (some only after repairs), so lbd must load each: cleanly, with
//! repairs keepalived also makes, or with warnings naming keywords lbd does
//! not implement yet. Those keywords and how many samples use each are the
//! table in core/config/KEEPALIVED.md, checked here against what lbd says.

#![allow(clippy::expect_used, clippy::unwrap_used)]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod common;
use common::{lbd, text};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn samples() -> Vec<PathBuf> {
    let dir = root().join("tests/configs/keepalived-samples");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("samples dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("keepalived.conf"))
        })
        .collect();
    v.sort();
    assert!(
        v.len() >= 25,
        "expected keepalived's samples in {}",
        dir.display()
    );
    v
}

/// The keyword a "not implemented" warning names, if the line is one.
fn unimplemented_keyword(line: &str) -> Option<String> {
    let (_, msg) = line.split_once(": warning: ")?;
    let head = msg
        .split_once(" is not supported yet")
        .or_else(|| msg.split_once(" is recorded but not implemented yet"))?
        .0;
    let kw = head.strip_prefix("keyword ").unwrap_or(head);
    (!kw.contains(' ')).then(|| kw.to_string())
}

/// keyword -> samples using it, from KEEPALIVED.md's marked table.
fn documented() -> BTreeMap<String, usize> {
    let md = std::fs::read_to_string(root().join("core/config/KEEPALIVED.md")).expect("doc");
    let start = md
        .find("<!-- samples-unimplemented:start -->")
        .expect("start marker");
    let end = md
        .find("<!-- samples-unimplemented:end -->")
        .expect("end marker");
    md[start..end]
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let kw = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let n = cells.get(2)?.parse().ok()?;
            Some((kw.to_string(), n))
        })
        .collect()
}

/// The ways each sample is run: conditional_conf once per config id it uses.
fn runs(p: &Path) -> Vec<Vec<String>> {
    let f = p.to_str().unwrap().to_string();
    let base = vec!["-f".to_string(), f];
    if p.ends_with("keepalived.conf.conditional_conf") {
        ["high", "low"]
            .iter()
            .map(|id| {
                let mut v = base.clone();
                v.extend(["-i".to_string(), id.to_string()]);
                v
            })
            .collect()
    } else {
        vec![base]
    }
}

#[test]
fn every_sample_checks_converts_and_checks_again() {
    let dir = std::env::temp_dir().join(format!("lbd-samples-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut used: BTreeMap<String, usize> = BTreeMap::new();
    for p in samples() {
        let mut in_this = std::collections::BTreeSet::new();
        for (k, args) in runs(&p).into_iter().enumerate() {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut check = vec!["--check"];
            check.extend(&a);
            let o = lbd(&check);
            let out = text(&o);
            assert!(
                matches!(o.status.code(), Some(0 | 5)),
                "{}: keepalived runs it, lbd refused:\n{out}",
                p.display()
            );
            in_this.extend(out.lines().filter_map(unimplemented_keyword));

            let mut conv = vec!["--convert"];
            conv.extend(&a);
            let c = lbd(&conv);
            assert!(c.status.success(), "{}: {}", p.display(), text(&c));
            let toml = dir.join(format!(
                "{}-{k}.toml",
                p.file_name().and_then(|s| s.to_str()).unwrap_or("x")
            ));
            std::fs::write(&toml, &c.stdout).expect("write");
            let t = toml.to_str().unwrap();
            let again = lbd(&["--check", "-f", t]);
            assert_eq!(
                again.status.code(),
                Some(0),
                "{} converted to TOML: {}",
                p.display(),
                text(&again)
            );
            let twice = lbd(&["--convert", "-f", t]);
            assert_eq!(
                String::from_utf8_lossy(&twice.stdout),
                String::from_utf8_lossy(&c.stdout),
                "{}: TOML -> TOML is not stable",
                p.display()
            );
        }
        for kw in in_this {
            *used.entry(kw).or_default() += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        used,
        documented(),
        "KEEPALIVED.md's table of unimplemented keywords differs from what the samples show"
    );
}
