//! `lbd --convert`: keepalived.conf -> model -> TOML -> model must give the
//! same model back, spans aside (they name lines of different files). A
//! keepalived.conf that loads must convert to TOML that loads.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

/// The model's Debug text with every span blanked: spans are the one thing
/// a conversion legitimately changes.
fn without_spans(debug: &str) -> String {
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug;
    while let Some(i) = rest.find("Span { file: ") {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        match rest.find(" }") {
            Some(end) => rest = &rest[end + 2..],
            None => break,
        }
        out.push_str("Span");
    }
    out.push_str(rest);
    out
}

fuzz_target!(|data: &[u8]| {
    if data.windows(7).any(|w| w == b"include") {
        return;
    }
    let text = String::from_utf8_lossy(data);
    let Ok(ka) = lbd_config::parse_keepalived_str(&text, Path::new("fuzz.conf")) else {
        return;
    };
    let toml = match lbd_config::to_toml(&ka.config) {
        Ok(t) => t,
        Err(e) => panic!("a loaded model does not serialize: {e}"),
    };
    let back = match lbd_config::parse_toml_str(&toml, Path::new("fuzz.toml")) {
        Ok(l) => l,
        Err(e) => panic!("converted TOML does not load:\n{e}\n--- TOML ---\n{toml}"),
    };
    let (a, b) = (
        without_spans(&format!("{:?}", ka.config)),
        without_spans(&format!("{:?}", back.config)),
    );
    if a != b {
        panic!("round trip changed the model\n--- keepalived ---\n{a}\n--- from TOML ---\n{b}\n--- TOML ---\n{toml}");
    }
});
