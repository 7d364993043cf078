//! Prometheus metrics (prometheus-client): one registry for the process,
//! `lbd_` prefix, base units, `_total` counters. The node updates the
//! metric handles (atomics, cheap to clone); `/metrics` encodes them.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// What `/metrics` answers with (OpenMetrics text; Prometheus reads it).
#[allow(dead_code)] // served by the API
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Cheap to clone; shared by the node (updates) and the API (scrapes).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("lbd");
        registry.register(
            "build",
            "lbd build information",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Metrics {
            registry: Arc::new(registry),
        }
    }

    /// The exposition text. Async: a scrape may read kernel counters.
    #[allow(dead_code)] // served by the API
    pub async fn scrape(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            // Only a fmt::Write into a String: cannot fail; say so if it does.
            tracing::error!("encoding metrics: {e}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn build_info_is_exposed() {
        let text = Metrics::new().scrape().await;
        assert!(text.contains("lbd_build_info{version="), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
