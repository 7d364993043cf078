//! Counters reported by the kernel, kept apart from the specs so that a diff
//! can never depend on them.

use std::collections::BTreeMap;

use crate::model::{DestKey, ServiceKey};

/// IPVS_STATS64_ATTR_* (the 64-bit set; rates are per second).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DestCounters {
    pub active_conns: u32,
    pub inact_conns: u32,
    pub persist_conns: u32,
    pub stats: Stats,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceCounters {
    pub stats: Stats,
    pub dests: BTreeMap<DestKey, DestCounters>,
}

/// Counters of a whole dump, keyed like `IpvsState`. Missing entries read
/// as zero.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpvsCounters {
    pub services: BTreeMap<ServiceKey, ServiceCounters>,
}

impl IpvsCounters {
    pub fn dest(&self, svc: &ServiceKey, dest: &DestKey) -> DestCounters {
        self.services
            .get(svc)
            .and_then(|s| s.dests.get(dest))
            .copied()
            .unwrap_or_default()
    }
}

/// IPVS_CMD_GET_INFO: `version` as the kernel encodes it (major << 16 |
/// minor << 8 | patch) and the connection table size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpvsInfo {
    pub version: u32,
    pub conn_tab_size: u32,
}

impl IpvsInfo {
    /// "1.2.1", as ipvsadm prints it.
    pub fn version_string(&self) -> String {
        let v = self.version;
        format!("{}.{}.{}", (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff)
    }
}
