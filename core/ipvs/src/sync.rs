//! The IPVS connection sync daemon, as data: which role, on which
//! interface, with which sync id. `sys` turns it into netlink.

use std::net::IpAddr;

/// The role of a sync daemon (the kernel's IP_VS_STATE_MASTER / _BACKUP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SyncState {
    Master,
    Backup,
}

/// A connection sync daemon (IPVS_DAEMON_ATTR_*). `None` leaves the
/// kernel's default (maxlen from the MTU, port 8848, TTL 1, group
/// 224.0.0.81).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncDaemon {
    pub state: SyncState,
    pub ifname: String,
    pub syncid: u8,
    pub maxlen: Option<u16>,
    pub port: Option<u16>,
    pub ttl: Option<u8>,
    pub group: Option<IpAddr>,
}
