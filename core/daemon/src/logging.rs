//! Where log lines go: journald (its native protocol, with structured
//! fields) or plain lines on stderr.
//!
//! Log calls that concern an instance, a plugin or a virtual server carry
//! it as a tracing field (`instance`, `vrid`, `state`, `plugin`, `vs`).
//! journald gets them as `LBD_INSTANCE`, `LBD_VRID`, ... (the layer's field
//! prefix plus the upper-cased name); the stderr lines leave those out, so
//! they read exactly as the message says (operators and tests grep them).

use std::fmt;
use std::path::Path;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::cli::LogTarget;

/// Where journald listens for the native protocol.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Prefix of lbd's journal fields: `instance` becomes `LBD_INSTANCE`.
const FIELD_PREFIX: &str = "LBD";

/// The fields that go to the journal only.
const JOURNAL_ONLY: &[&str] = &["instance", "vrid", "state", "plugin", "vs"];

pub fn init(level: Option<&str>, target: LogTarget) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level.unwrap_or("info")));
    let journald = match target {
        LogTarget::Stderr => None,
        LogTarget::Auto if !Path::new(JOURNAL_SOCKET).exists() => None,
        LogTarget::Auto | LogTarget::Journald => match tracing_journald::layer() {
            Ok(l) => Some(
                l.with_field_prefix(Some(FIELD_PREFIX.into()))
                    .with_syslog_identifier("lbd".into()),
            ),
            Err(e) => {
                // Before any subscriber exists: stderr is the only way to say it.
                eprintln!("lbd: journald unavailable ({JOURNAL_SOCKET}: {e}): logging to stderr");
                None
            }
        },
    };
    let stderr = journald.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .fmt_fields(StderrFields)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(journald)
        .with(stderr)
        .init();
}

/// tracing-subscriber's default field format (`message k=v k=v`) less the
/// journal-only fields.
struct StderrFields;

impl<'w> FormatFields<'w> for StderrFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut v = StderrVisitor {
            w: &mut writer,
            first: true,
            res: Ok(()),
        };
        fields.record(&mut v);
        v.res
    }
}

struct StderrVisitor<'a, 'w> {
    w: &'a mut Writer<'w>,
    first: bool,
    res: fmt::Result,
}

impl Visit for StderrVisitor<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if self.res.is_err() || JOURNAL_ONLY.contains(&name) {
            return;
        }
        let sep = if self.first { "" } else { " " };
        self.first = false;
        self.res = if name == "message" {
            write!(self.w, "{sep}{value:?}")
        } else {
            write!(self.w, "{sep}{name}={value:?}")
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut v) = self.0.lock() {
                v.extend_from_slice(b);
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn stderr_lines_leave_journal_fields_out() {
        let buf = Buf::default();
        let w = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_ansi(false)
            .without_time()
            .fmt_fields(StderrFields)
            .finish();
        tracing::subscriber::with_default(sub, || {
            tracing::info!(
                instance = "VI_1",
                vrid = 51u8,
                state = "MASTER",
                other = 3,
                "VRRP_Instance(VI_1) Backup -> Master priority {}",
                150
            );
        });
        let text = String::from_utf8(buf.0.lock().map(|v| v.clone()).unwrap_or_default())
            .unwrap_or_default();
        assert!(
            text.trim_end()
                .ends_with("VRRP_Instance(VI_1) Backup -> Master priority 150 other=3"),
            "{text}"
        );
        assert!(
            !text.contains("VI_1 ") && !text.contains("MASTER"),
            "{text}"
        );
    }
}
