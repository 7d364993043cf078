//! lbd-sys: the kernel edges for VRRP and IPVS.
//!
//! rtnetlink (links, addresses, routes, link events), the VRRP raw sockets,
//! the gratuitous ARP / unsolicited NA sender, the IPVS generic netlink
//! client and the PID 1 orphan reaper ([`reap`]). Kernel errors become
//! [`SysError`] values that say what was attempted and where; nothing here
//! decides policy.

mod caps;
mod error;
pub mod firewall;
mod garp;
pub mod ipvs;
mod netlink;
pub mod reap;
mod route;
mod sockopt;
mod vrrp_socket;

pub use caps::check_privileges;
pub use error::SysError;
pub use garp::{garp_frame, icmpv6_checksum, unsolicited_na, GarpSender};
pub use ipvs::{Ipvs, SyncDaemon, SyncState};
pub use netlink::{AddrSpec, IfAddr, LinkEvent, LinkEvents, LinkInfo, Netlink};
pub use route::{RouteKind, RouteSpec};
pub use vrrp_socket::{RecvV6, VrrpSocketV4, VrrpSocketV6};
