//! Input that cannot hurt the reader: every limit in `limits.rs` is hit
//! here and must give a clear error with a file:line, never a panic, a
//! stack overflow, a hang or unbounded memory. Test threads have 2 MiB
//! stacks, less than lbd's main thread.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is the test failing

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use lbd_config::*;

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("lbd-limits-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn fifo(&self, name: &str) -> PathBuf {
        let p = self.path(name);
        let c = CString::new(p.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `f` on a thread and fails the test if it has not returned within
/// 60 s: a read that blocks (a FIFO) must show up as a failure, not a hang.
fn within_deadline<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the load did not return (blocked?)")
}

fn first_error(r: Result<Loaded, ConfigError>) -> Diagnostic {
    match r {
        Ok(_) => panic!("should be refused"),
        Err(e) => e.first().expect("at least one error").clone(),
    }
}

const GOOD: &str = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n priority 100\n virtual_ipaddress {\n  10.0.0.100/24\n }\n}\n";

#[test]
fn a_million_nested_braces_is_a_depth_error() {
    let text = "a {\n".repeat(1_000_000);
    let d = first_error(parse_keepalived_str(&text, Path::new("deep.conf")));
    assert_eq!(d.span.line, MAX_BLOCK_DEPTH + 1, "{d}");
    assert!(d.message.contains("nested deeper than 128"), "{d}");
    assert!(d.to_string().starts_with("deep.conf:129: error: "), "{d}");
    // All on one line, and anonymous braces.
    let text = "{".repeat(1_000_000);
    let e = parse_keepalived_str(&text, Path::new("deep.conf")).expect_err("refused");
    assert!(
        e.errors
            .iter()
            .any(|d| d.message.contains("nested deeper than")),
        "{e}"
    );
    // Just below the limit still builds (and drops) the tree.
    let inner = format!(
        "{}{}",
        "b {\n".repeat(MAX_BLOCK_DEPTH - 1),
        "}\n".repeat(MAX_BLOCK_DEPTH - 1)
    );
    let l = parse_keepalived_str(&format!("{GOOD}x {{\n{inner}}}\n"), Path::new("ok.conf"))
        .expect("127 levels are fine");
    assert!(l
        .warnings
        .iter()
        .any(|w| w.message.contains("unknown keyword \"x\"")));
}

#[test]
fn a_million_stray_closes_keeps_warnings_bounded() {
    // keepalived ignores each stray '}' ("Extra '}' found"): warnings, capped.
    let text = "}\n".repeat(1_000_000);
    let l = parse_keepalived_str(&text, Path::new("close.conf")).expect("loads");
    assert_eq!(l.warnings.len(), 1001);
    assert!(l.warnings[1000].message.contains("the rest are not listed"));
}

#[test]
fn dev_zero_is_refused_without_reading() {
    let d = within_deadline(|| first_error(load(Path::new("/dev/zero"))));
    assert!(d.message.contains("is a character device"), "{d}");
    assert_eq!(d.span.to_string(), "/dev/zero:0");
    let d = within_deadline(|| first_error(load_toml(Path::new("/dev/zero"))));
    assert!(d.message.contains("is a character device"), "{d}");
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let s = Scratch::new("fifo");
    let conf = s.fifo("keepalived.conf");
    let toml = s.fifo("lbd.toml");
    let d = within_deadline(move || first_error(load(&conf)));
    assert!(d.message.contains("is a FIFO"), "{d}");
    let d = within_deadline(move || first_error(load(&toml)));
    assert!(d.message.contains("is a FIFO"), "{d}");
}

#[test]
fn a_directory_is_refused() {
    let s = Scratch::new("dir");
    let d = first_error(load(&s.0));
    assert!(d.message.contains("is a directory"), "{d}");
    let t = s.path("d.toml");
    std::fs::create_dir(&t).unwrap();
    let d = first_error(load(&t));
    assert!(d.message.contains("is a directory"), "{d}");
}

#[test]
fn an_include_of_a_fifo_is_refused_at_its_line() {
    let s = Scratch::new("incfifo");
    s.fifo("more.conf");
    let main = s.path("keepalived.conf");
    std::fs::write(&main, format!("{GOOD}include more.conf\n")).unwrap();
    let d = within_deadline(move || first_error(load(&main)));
    assert_eq!(d.span.line, 9, "{d}");
    assert!(d.message.contains("more.conf is a FIFO"), "{d}");
    // Matched by a glob, it is skipped as keepalived does.
    let main = s.path("glob.conf");
    std::fs::write(&main, format!("{GOOD}include m*.conf\n")).unwrap();
    let l = within_deadline(move || load(&main)).expect("loads");
    assert!(l
        .warnings
        .iter()
        .any(|w| w.message.contains("not a regular file (skipped)")));
}

#[test]
fn an_over_size_file_is_refused_unread() {
    let s = Scratch::new("big");
    for (name, limit) in [("big.conf", MAX_CONFIG_BYTES), ("big.toml", MAX_TOML_BYTES)] {
        let p = s.path(name);
        let f = std::fs::File::create(&p).unwrap();
        // Sparse: the limit is checked before a byte is read.
        f.set_len(limit + 1).unwrap();
        let d = first_error(load(&p));
        let want = format!(
            "larger than the configuration size limit of {} MiB",
            limit >> 20
        );
        assert!(d.message.contains(&want), "{d}");
        assert_eq!(d.span.line, 0);
    }
    let text = "#".repeat(MAX_CONFIG_BYTES as usize + 1);
    let d = first_error(parse_keepalived_str(&text, Path::new("s.conf")));
    assert!(d.message.contains("size limit of 32 MiB"), "{d}");
    let d = first_error(parse_toml_str(
        &text[..MAX_TOML_BYTES as usize + 1],
        Path::new("s.toml"),
    ));
    assert!(d.message.contains("size limit of 16 MiB"), "{d}");
}

#[test]
fn the_size_limit_counts_every_include() {
    let s = Scratch::new("total");
    // Two includes of 20 MiB of comments: each fits, together they do not.
    let comment = format!("#{}\n", "x".repeat(1023)).repeat(20 << 10);
    std::fs::write(s.path("a.inc"), &comment).unwrap();
    std::fs::write(s.path("b.inc"), &comment).unwrap();
    let main = s.path("keepalived.conf");
    std::fs::write(&main, format!("{GOOD}include a.inc\ninclude b.inc\n")).unwrap();
    let d = first_error(load(&main));
    assert_eq!(d.span.line, 10, "{d}");
    assert!(
        d.message.contains("b.inc: with the files read before it"),
        "{d}"
    );
    // One of them alone is fine.
    std::fs::write(&main, format!("{GOOD}include a.inc\n")).unwrap();
    load(&main).expect("20 MiB fits");
}

#[test]
fn the_word_limit_bounds_the_syntax_tree() {
    let text = format!("{GOOD}x {}\n", "a ".repeat(MAX_WORDS));
    let d = first_error(parse_keepalived_str(&text, Path::new("w.conf")));
    assert_eq!(d.span.line, 9, "{d}");
    assert!(d.message.contains("words in the configuration"), "{d}");
}

#[test]
fn an_include_loop_stops() {
    let s = Scratch::new("loop");
    let main = s.path("keepalived.conf");
    std::fs::write(&main, format!("{GOOD}include keepalived.conf\n")).unwrap();
    let d = first_error(load(&main));
    assert!(d.message.contains("include nested deeper than 16"), "{d}");
}

#[test]
fn deep_toml_is_refused_before_parsing() {
    let name = Path::new("deep.toml");
    let cases = [
        ("arrays", format!("x = {}", "[".repeat(1_000_000))),
        (
            "inline tables",
            format!("x = {}", "{a = ".repeat(1_000_000)),
        ),
        (
            "dotted key",
            format!("{} = 1", vec!["k"; 1_000_000].join(".")),
        ),
        ("header", format!("[{}]", vec!["k"; 1_000_000].join("."))),
        (
            "inline tables under dotted keys",
            format!(
                "[[notify]]\nplugin = \"log\"\noptions = {}",
                "{ a.b.c.d.e.f.g.h.i.j = ".repeat(60)
            ),
        ),
    ];
    for (what, text) in cases {
        let d = first_error(parse_toml_str(&text, name));
        assert!(d.message.contains("nested deeper than 64"), "{what}: {d}");
        assert!(d.to_string().starts_with("deep.toml:"), "{what}: {d}");
    }
}

#[test]
fn toml_just_under_the_depth_limit_parses_without_overflow() {
    // Options are free-form: nest them to the limit through every kind.
    let mut v = String::from("1");
    for i in 0..(MAX_TOML_DEPTH - 8) / 2 {
        v = if i % 2 == 0 {
            format!("[{v}]")
        } else {
            format!("{{ a.b = {v} }}")
        };
    }
    let text = format!("{GOOD_TOML}[[notify]]\nplugin = \"log\"\noptions = {{ x = {v} }}\n");
    let r = parse_toml_str(&text, Path::new("ok.toml"));
    assert!(r.is_ok(), "{:?}", r.err().map(|e| e.to_string()));
}

const GOOD_TOML: &str = "[[vrrp.instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 51\npriority = 100\nvips = [\"10.0.0.100/24\"]\n\n";
