//! Arbitrary bytes as lbd TOML: a model or errors, never a panic or a
//! stack overflow (deep arrays, inline tables, dotted keys).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = lbd_config::parse_toml_str(text, Path::new("fuzz.toml")) {
        assert!(e.to_string().starts_with("fuzz.toml:"));
    }
});
