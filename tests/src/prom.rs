//! lbd's metrics and event log as a test reads them: through lbctl and the
//! API, the scrape parsed by a real OpenMetrics parser (Python
//! `prometheus_client`, Debian's python3-prometheus-client), the events as
//! the API's NDJSON.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::daemon::{lbctl_path, Daemon};

/// The interpreter that has `prometheus_client` (scripts/lib.sh installs it).
const PYTHON: &str = "/usr/bin/python3";

/// Parses OpenMetrics text; prints one sample a line: name, labels as
/// JSON, value. The parser is strict: a malformed exposition fails here.
const PARSER: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
text = sys.stdin.read()
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        print(json.dumps({"family": fam.name, "type": fam.type, "unit": fam.unit,
                          "name": s.name, "labels": s.labels, "value": s.value}))
"#;

#[derive(Clone, Debug)]
pub struct Sample {
    pub family: String,
    pub kind: String,
    pub unit: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of `text`, as the parser read it; panics with the
/// parser's complaint when the text is not valid OpenMetrics.
pub fn parse(text: &str) -> Vec<Sample> {
    let mut child = Command::new(PYTHON)
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {PYTHON}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused lbd's scrape (is python3-prometheus-client installed? scripts/lib.sh install_deps):\n{}\n--- text:\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            Sample {
                family: s("family"),
                kind: s("type"),
                unit: s("unit"),
                name: s("name"),
                labels: v["labels"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default(),
                value: v["value"].as_f64().unwrap_or(f64::NAN),
            }
        })
        .collect()
}

/// The value of the sample `name` whose labels include `labels`; None when
/// absent.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

/// What one SIGUSR2 dump holds.
pub struct Dump {
    pub text: String,
    pub samples: Vec<Sample>,
    pub events: Vec<serde_json::Value>,
}

impl Dump {
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        value(&self.samples, name, labels)
    }

    /// Events of `kind` (and `name`, when given), oldest first.
    pub fn events_of(&self, kind: &str, name: Option<&str>) -> Vec<&serde_json::Value> {
        self.events
            .iter()
            .filter(|e| e["kind"] == kind && name.is_none_or(|n| e["name"] == n))
            .collect()
    }
}

/// `lbctl metrics` and `lbctl events --json` against the daemon's API
/// socket: what an operator (or Prometheus) reads.
pub fn dump(d: &Daemon) -> Dump {
    let sock = d
        .api_socket
        .as_ref()
        .expect("an lbd daemon has an API socket");
    // The socket answers once lbd is up.
    let mut text = String::new();
    let up = crate::wait_until(Duration::from_secs(20), || {
        match lbctl(sock, &["metrics"]) {
            Some(t) => {
                text = t;
                true
            }
            None => !d.proc.alive(),
        }
    });
    assert!(
        up && !text.is_empty(),
        "lbctl metrics did not answer:\n{}",
        d.log()
    );
    let events = lbctl(sock, &["events", "--json"])
        .unwrap_or_else(|| panic!("lbctl events failed:\n{}", d.log()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|err| panic!("event {l}: {err}")))
        .collect();
    Dump {
        samples: parse(&text),
        text,
        events,
    }
}

/// lbctl's stdout when it exits 0.
fn lbctl(sock: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(lbctl_path())
        .arg("--socket")
        .arg(sock)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", lbctl_path().display()));
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
