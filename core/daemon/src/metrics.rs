//! Prometheus metrics (prometheus-client): one registry for the process,
//! `lbd_` prefix, base units, `_total` counters. The node updates the
//! metric handles (atomics, cheap to clone); `/metrics` encodes them.
//! Counters kept elsewhere (the plugin host's, the kernel's IPVS counters)
//! are read at scrape time into a registry built for that scrape.
//! docs/metrics.md lists every family.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lbd_ipvs::ServiceKey;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// What `/metrics` answers with (OpenMetrics text; Prometheus reads it).
#[allow(dead_code)] // served by the API
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InstanceLabels {
    pub instance: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InterfaceLabels {
    pub interface: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub instance: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub instance: String,
    pub from: String,
    pub to: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    pub interface: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GarpLabels {
    pub interface: String,
    /// `arp` (IPv4) or `na` (IPv6).
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RsLabels {
    pub vs: String,
    pub rs: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VsLabels {
    pub vs: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    pub plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginStopLabels {
    pub plugin: String,
    pub limit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirLabels {
    pub service: String,
    /// `in` or `out`.
    pub direction: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;
type F64Gauge = Gauge<f64, AtomicU64>;

fn failover_histogram() -> Histogram {
    // From sub-second (v3, 0.1 s adverts) to keepalived's v2 defaults (~3.6 s).
    Histogram::new([
        0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 3.0, 3.5, 4.0, 5.0, 10.0, 30.0,
    ])
}

fn check_histogram() -> Histogram {
    // 1 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The VRRP side: instance state, priorities, adverts, drops, failovers.
#[derive(Clone)]
pub struct Vrrp {
    /// 1 for the instance's current state, 0 for the others.
    pub state: Family<StateLabels, Gauge>,
    pub priority: Family<InstanceLabels, Gauge>,
    pub configured_priority: Family<InstanceLabels, Gauge>,
    pub transitions: Family<TransitionLabels, Counter>,
    pub adverts_sent: Family<InstanceLabels, Counter>,
    pub adverts_received: Family<InstanceLabels, Counter>,
    pub drops: Family<DropLabels, Counter>,
    pub receive_errors: Family<InterfaceLabels, Counter>,
    pub send_errors: Family<InstanceLabels, Counter>,
    pub failover: HistogramFamily<InstanceLabels>,
    pub last_failover: Family<InstanceLabels, F64Gauge>,
    pub garp_sent: Family<GarpLabels, Counter>,
}

/// Checks, real servers, quorum.
#[derive(Clone)]
pub struct Checks {
    pub runs: Family<KindLabels, Counter>,
    pub failures: Family<KindLabels, Counter>,
    pub duration: HistogramFamily<KindLabels>,
    pub rs_up: Family<RsLabels, Gauge>,
    pub rs_weight: Family<RsLabels, Gauge>,
    pub vs_quorum_up: Family<VsLabels, Gauge>,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            runs: Family::default(),
            failures: Family::default(),
            duration: Family::new_with_constructor(check_histogram),
            rs_up: Family::default(),
            rs_weight: Family::default(),
            vs_quorum_up: Family::default(),
        }
    }
}

impl Checks {
    /// One run of a check (or tracked script) of plugin `kind`.
    pub fn observe(&self, kind: &str, ok: bool, took: Duration) {
        let l = KindLabels {
            kind: kind.to_string(),
        };
        self.runs.get_or_create(&l).inc();
        if !ok {
            self.failures.get_or_create(&l).inc();
        }
        self.duration.get_or_create(&l).observe(took.as_secs_f64());
    }
}

/// What the scrape reads besides the handles.
#[derive(Default)]
struct Sources {
    host: Option<lbd_plugin::Host>,
    /// The IPVS services lbd owns; `None`: IPVS is not managed.
    services: Option<BTreeSet<ServiceKey>>,
    ipvs: Option<lbd_sys::ipvs::Ipvs>,
}

/// Cheap to clone; shared by the node (updates) and the API (scrapes).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub vrrp: Vrrp,
    pub checks: Checks,
    pub reloads: Family<OutcomeLabels, Counter>,
    pub events: Family<KindLabels, Counter>,
    sources: Arc<Mutex<Sources>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("lbd");
        r.register(
            "build",
            "lbd build information",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        let vrrp = Vrrp {
            state: Family::default(),
            priority: Family::default(),
            configured_priority: Family::default(),
            transitions: Family::default(),
            adverts_sent: Family::default(),
            adverts_received: Family::default(),
            drops: Family::default(),
            receive_errors: Family::default(),
            send_errors: Family::default(),
            failover: Family::new_with_constructor(failover_histogram),
            last_failover: Family::default(),
            garp_sent: Family::default(),
        };
        let checks = Checks::default();
        let reloads = Family::<OutcomeLabels, Counter>::default();
        let events = Family::<KindLabels, Counter>::default();
        r.register(
            "vrrp_instance_state",
            "VRRP instance state: 1 for the current state, 0 for the others",
            vrrp.state.clone(),
        );
        r.register(
            "vrrp_instance_priority",
            "Effective priority (configured plus tracking weights)",
            vrrp.priority.clone(),
        );
        r.register(
            "vrrp_instance_configured_priority",
            "Configured priority",
            vrrp.configured_priority.clone(),
        );
        r.register(
            "vrrp_transitions",
            "VRRP instance state transitions",
            vrrp.transitions.clone(),
        );
        r.register(
            "vrrp_adverts_sent",
            "Adverts sent (one per interval, whatever the number of unicast peers)",
            vrrp.adverts_sent.clone(),
        );
        r.register(
            "vrrp_adverts_received",
            "Adverts that passed the receive checks",
            vrrp.adverts_received.clone(),
        );
        r.register(
            "vrrp_adverts_dropped",
            "Received VRRP packets dropped, by reason",
            vrrp.drops.clone(),
        );
        r.register(
            "vrrp_receive_errors",
            "Errors reading the VRRP sockets",
            vrrp.receive_errors.clone(),
        );
        r.register(
            "vrrp_send_errors",
            "Adverts that could not be sent",
            vrrp.send_errors.clone(),
        );
        r.register_with_unit(
            "vrrp_failover_duration",
            "Takeover time: last advert heard from the old master to our VIPs added and first gratuitous ARP/NA burst sent",
            prometheus_client::registry::Unit::Seconds,
            vrrp.failover.clone(),
        );
        r.register_with_unit(
            "vrrp_last_failover_duration",
            "The latest takeover time of the instance",
            prometheus_client::registry::Unit::Seconds,
            vrrp.last_failover.clone(),
        );
        r.register(
            "vrrp_gratuitous_sent",
            "Gratuitous ARP (kind=arp) and unsolicited NA (kind=na) packets sent",
            vrrp.garp_sent.clone(),
        );
        r.register(
            "check_runs",
            "Check and tracked-script runs, by plugin",
            checks.runs.clone(),
        );
        r.register(
            "check_failures",
            "Check and tracked-script runs that failed, by plugin",
            checks.failures.clone(),
        );
        r.register_with_unit(
            "check_duration",
            "Time one check run took, by plugin",
            prometheus_client::registry::Unit::Seconds,
            checks.duration.clone(),
        );
        r.register(
            "real_server_up",
            "1 when the real server is up (its checks pass)",
            checks.rs_up.clone(),
        );
        r.register(
            "real_server_weight",
            "The real server's weight now (0 while down)",
            checks.rs_weight.clone(),
        );
        r.register(
            "virtual_server_quorum_up",
            "1 while the virtual server has its quorum",
            checks.vs_quorum_up.clone(),
        );
        r.register(
            "reloads",
            "Configuration reloads by outcome (ok, failed)",
            reloads.clone(),
        );
        r.register("events", "Events in the event log, by kind", events.clone());
        Metrics {
            registry: Arc::new(r),
            vrrp,
            checks,
            reloads,
            events,
            sources: Arc::new(Mutex::new(Sources::default())),
        }
    }

    fn sources(&self) -> std::sync::MutexGuard<'_, Sources> {
        // Plain data: a panic elsewhere cannot leave it half-written.
        self.sources.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The plugin host whose per-plugin counters a scrape reads.
    pub fn set_host(&self, host: Option<lbd_plugin::Host>) {
        self.sources().host = host;
    }

    /// The IPVS services whose kernel counters a scrape reads (`None`:
    /// IPVS not managed, the families are absent).
    pub fn set_ipvs_services(&self, services: Option<BTreeSet<ServiceKey>>) {
        self.sources().services = services;
    }

    /// Sets the instance's state series: 1 for `state`, 0 for the others.
    pub fn set_instance_state(&self, instance: &str, state: &str) {
        for s in ["INIT", "BACKUP", "MASTER", "FAULT"] {
            let l = StateLabels {
                instance: instance.to_string(),
                state: s.to_string(),
            };
            self.vrrp.state.get_or_create(&l).set(i64::from(s == state));
        }
    }

    pub fn set_priority(&self, instance: &str, effective: u8, configured: u8) {
        let l = InstanceLabels {
            instance: instance.to_string(),
        };
        self.vrrp
            .priority
            .get_or_create(&l)
            .set(i64::from(effective));
        self.vrrp
            .configured_priority
            .get_or_create(&l)
            .set(i64::from(configured));
    }

    /// Drops every series of an instance that no longer exists.
    pub fn forget_instance(&self, instance: &str) {
        let l = InstanceLabels {
            instance: instance.to_string(),
        };
        let states = ["INIT", "BACKUP", "MASTER", "FAULT"];
        for s in states {
            self.vrrp.state.remove(&StateLabels {
                instance: instance.to_string(),
                state: s.to_string(),
            });
            for t in states {
                self.vrrp.transitions.remove(&TransitionLabels {
                    instance: instance.to_string(),
                    from: s.to_string(),
                    to: t.to_string(),
                });
            }
        }
        self.vrrp.priority.remove(&l);
        self.vrrp.configured_priority.remove(&l);
        self.vrrp.adverts_sent.remove(&l);
        self.vrrp.adverts_received.remove(&l);
        self.vrrp.send_errors.remove(&l);
        self.vrrp.failover.remove(&l);
        self.vrrp.last_failover.remove(&l);
    }

    pub fn observe_failover(&self, instance: &str, took: Duration) {
        let l = InstanceLabels {
            instance: instance.to_string(),
        };
        let s = took.as_secs_f64();
        self.vrrp.failover.get_or_create(&l).observe(s);
        self.vrrp.last_failover.get_or_create(&l).set(s);
    }

    /// SIGUSR1's one line: every counter of the node's own families that
    /// is not zero, `name{labels}=value`, without the prefix and `_total`.
    /// No kernel or plugin read: the VRRP loop does not wait for it.
    pub fn counters_line(&self) -> String {
        let mut text = String::new();
        if encode_registry(&mut text, &self.registry).is_err() {
            return "unavailable".into();
        }
        let parts: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let (name, labels) = match series.split_once('{') {
                    Some((n, rest)) => (n, format!("{{{rest}")),
                    None => (series, String::new()),
                };
                let name = name.strip_prefix("lbd_")?.strip_suffix("_total")?;
                (value != "0").then(|| format!("{name}{labels}={value}"))
            })
            .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(" ")
        }
    }

    /// The exposition text. Async: a scrape reads the plugin host's and
    /// the kernel's counters.
    #[allow(dead_code)] // served by the API
    pub async fn scrape(&self) -> String {
        let (host, services, ipvs) = {
            let s = self.sources();
            (s.host.clone(), s.services.clone(), s.ipvs.clone())
        };
        let mut extra = Registry::with_prefix("lbd");
        if let Some(h) = host {
            plugin_families(&mut extra, &h.stats().await);
        }
        if let Some(services) = services {
            let ipvs = match ipvs {
                Some(i) => Some(i),
                None => match lbd_sys::ipvs::Ipvs::connect().await {
                    Ok(i) => {
                        self.sources().ipvs = Some(i.clone());
                        Some(i)
                    }
                    Err(e) => {
                        tracing::debug!("metrics: IPVS counters not read: {e}");
                        None
                    }
                },
            };
            if let Some(i) = ipvs {
                match i.dump().await {
                    Ok((_, counters)) => ipvs_families(&mut extra, &services, &counters),
                    Err(e) => tracing::warn!("metrics: reading IPVS counters: {e}"),
                }
            }
        }
        let mut out = String::new();
        let r = encode_registry(&mut out, &self.registry)
            .and_then(|()| encode_registry(&mut out, &extra))
            .and_then(|()| encode_eof(&mut out));
        if let Err(e) = r {
            // Only a fmt::Write into a String: cannot fail; say so if it does.
            tracing::error!("encoding metrics: {e}");
        }
        out
    }
}

/// Per-plugin counters as the host reports them.
fn plugin_families(r: &mut Registry, stats: &lbd_plugin::HostStats) {
    let calls = Family::<PluginLabels, Counter>::default();
    let failures = Family::<PluginLabels, Counter>::default();
    let errors = Family::<PluginLabels, Counter>::default();
    let stops = Family::<PluginStopLabels, Counter>::default();
    let memory = Family::<PluginLabels, Gauge>::default();
    let cpu = Family::<PluginLabels, Counter<f64, AtomicU64>>::default();
    for (name, s) in stats {
        let l = PluginLabels {
            plugin: name.clone(),
        };
        calls.get_or_create(&l).inc_by(s.calls);
        failures.get_or_create(&l).inc_by(s.failures);
        errors.get_or_create(&l).inc_by(s.errors);
        for (limit, n) in [("cpu", s.stopped_cpu), ("memory", s.stopped_memory)] {
            let l = PluginStopLabels {
                plugin: name.clone(),
                limit: limit.into(),
            };
            stops.get_or_create(&l).inc_by(n);
        }
        cpu.get_or_create(&l).inc_by(s.cpu.as_secs_f64());
        memory
            .get_or_create(&l)
            .set(i64::try_from(s.memory).unwrap_or(i64::MAX));
    }
    r.register("plugin_calls", "Calls into the plugin", calls);
    r.register(
        "plugin_failures",
        "Check calls of the plugin that reported a failure",
        failures,
    );
    r.register(
        "plugin_errors",
        "Calls of the plugin that raised an error",
        errors,
    );
    r.register(
        "plugin_stops",
        "Times the plugin was stopped for exceeding a limit (cpu, memory)",
        stops,
    );
    r.register_with_unit(
        "plugin_cpu",
        "Time the plugin's Lua code ran",
        prometheus_client::registry::Unit::Seconds,
        cpu,
    );
    r.register_with_unit(
        "plugin_memory",
        "Memory the plugin's Lua state holds",
        prometheus_client::registry::Unit::Bytes,
        memory,
    );
}

/// The kernel's counters of the services lbd owns.
fn ipvs_families(
    r: &mut Registry,
    services: &BTreeSet<ServiceKey>,
    counters: &lbd_ipvs::IpvsCounters,
) {
    let conns = Family::<ServiceLabels, Counter>::default();
    let packets = Family::<DirLabels, Counter>::default();
    let bytes = Family::<DirLabels, Counter>::default();
    for key in services {
        let Some(c) = counters.services.get(key) else {
            continue;
        };
        let service = key.to_string();
        conns
            .get_or_create(&ServiceLabels {
                service: service.clone(),
            })
            .inc_by(c.stats.conns);
        for (dir, p, b) in [
            ("in", c.stats.inpkts, c.stats.inbytes),
            ("out", c.stats.outpkts, c.stats.outbytes),
        ] {
            let l = DirLabels {
                service: service.clone(),
                direction: dir.into(),
            };
            packets.get_or_create(&l).inc_by(p);
            bytes.get_or_create(&l).inc_by(b);
        }
    }
    r.register(
        "ipvs_connections",
        "Connections the kernel scheduled for the service",
        conns,
    );
    r.register("ipvs_packets", "Packets of the service", packets);
    r.register_with_unit(
        "ipvs",
        "Bytes of the service",
        prometheus_client::registry::Unit::Bytes,
        bytes,
    );
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

    #[tokio::test]
    async fn families_are_encoded_with_units_and_totals() {
        let m = Metrics::new();
        m.set_instance_state("VI_1", "MASTER");
        m.set_priority("VI_1", 90, 150);
        m.vrrp
            .transitions
            .get_or_create(&TransitionLabels {
                instance: "VI_1".into(),
                from: "BACKUP".into(),
                to: "MASTER".into(),
            })
            .inc();
        m.observe_failover("VI_1", Duration::from_millis(3600));
        m.checks.observe("tcp", false, Duration::from_millis(3));
        let text = m.scrape().await;
        for want in [
            "lbd_vrrp_instance_state{instance=\"VI_1\",state=\"MASTER\"} 1\n",
            "lbd_vrrp_instance_state{instance=\"VI_1\",state=\"BACKUP\"} 0\n",
            "lbd_vrrp_instance_priority{instance=\"VI_1\"} 90\n",
            "lbd_vrrp_instance_configured_priority{instance=\"VI_1\"} 150\n",
            "lbd_vrrp_transitions_total{instance=\"VI_1\",from=\"BACKUP\",to=\"MASTER\"} 1\n",
            "# TYPE lbd_vrrp_failover_duration_seconds histogram\n",
            "lbd_vrrp_failover_duration_seconds_bucket{le=\"4.0\",instance=\"VI_1\"} 1\n",
            "lbd_vrrp_failover_duration_seconds_bucket{le=\"3.5\",instance=\"VI_1\"} 0\n",
            "lbd_vrrp_last_failover_duration_seconds{instance=\"VI_1\"} 3.6\n",
            "lbd_check_runs_total{kind=\"tcp\"} 1\n",
            "lbd_check_failures_total{kind=\"tcp\"} 1\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        // One EOF, at the end, whatever the number of registries encoded.
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[tokio::test]
    async fn a_forgotten_instance_leaves_no_series() {
        let m = Metrics::new();
        for name in ["VI_1", "VI_2"] {
            m.set_instance_state(name, "BACKUP");
            m.set_priority(name, 100, 100);
            m.observe_failover(name, Duration::from_millis(500));
            m.vrrp
                .transitions
                .get_or_create(&TransitionLabels {
                    instance: name.into(),
                    from: "INIT".into(),
                    to: "BACKUP".into(),
                })
                .inc();
        }
        m.forget_instance("VI_1");
        let text = m.scrape().await;
        assert!(!text.contains("\"VI_1\""), "{text}");
        assert!(
            text.contains(
                "lbd_vrrp_transitions_total{instance=\"VI_2\",from=\"INIT\",to=\"BACKUP\"} 1"
            ),
            "{text}"
        );
    }

    #[test]
    fn sigusr1_line_lists_nonzero_counters() {
        let m = Metrics::new();
        assert_eq!(m.counters_line(), "none");
        m.vrrp
            .drops
            .get_or_create(&DropLabels {
                interface: "eth0".into(),
                reason: "ttl".into(),
            })
            .inc_by(3);
        m.set_priority("VI_1", 100, 100);
        m.vrrp
            .adverts_sent
            .get_or_create(&InstanceLabels {
                instance: "VI_1".into(),
            })
            .inc();
        assert_eq!(
            m.counters_line(),
            "vrrp_adverts_sent{instance=\"VI_1\"}=1 vrrp_adverts_dropped{interface=\"eth0\",reason=\"ttl\"}=3"
        );
    }

    #[test]
    fn ipvs_families_only_for_owned_services() {
        let key = |last| {
            ServiceKey::addr(
                lbd_ipvs::Protocol::Tcp,
                std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, last)),
                80,
            )
        };
        let (owned, other) = (key(100), key(101));
        let mut c = lbd_ipvs::IpvsCounters::default();
        for (k, n) in [(&owned, 7), (&other, 9)] {
            let mut sc = lbd_ipvs::ServiceCounters::default();
            sc.stats.conns = n;
            sc.stats.inbytes = n * 100;
            c.services.insert(k.clone(), sc);
        }
        let mut r = Registry::with_prefix("lbd");
        ipvs_families(&mut r, &BTreeSet::from([owned.clone()]), &c);
        let mut text = String::new();
        assert!(encode_registry(&mut text, &r).is_ok());
        let s = owned.to_string();
        assert!(
            text.contains(&format!(
                "lbd_ipvs_connections_total{{service=\"{s}\"}} 7\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "lbd_ipvs_bytes_total{{service=\"{s}\",direction=\"in\"}} 700\n"
            )),
            "{text}"
        );
        assert!(!text.contains("10.0.0.101"), "{text}");
    }
}
