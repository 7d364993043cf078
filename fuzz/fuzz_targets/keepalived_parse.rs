//! Arbitrary bytes as keepalived.conf: the reader must return a model or
//! errors, never panic, overflow its stack or run away. Inputs naming an
//! include are skipped: they would read this machine's files (a glob such
//! as /**/* walks the whole filesystem), which is not what is fuzzed here.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.windows(7).any(|w| w == b"include") {
        return;
    }
    let text = String::from_utf8_lossy(data);
    if let Err(e) = lbd_config::parse_keepalived_str(&text, Path::new("fuzz.conf")) {
        // Every finding carries a file:line.
        assert!(e.first().is_some());
        assert!(e.to_string().starts_with("fuzz.conf:"));
    }
});
