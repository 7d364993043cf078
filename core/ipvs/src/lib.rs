//! lbd-ipvs: the IPVS model and its reconciliation, pure.
//!
//! No sockets, no clock: `sys` dumps the kernel into an [`IpvsState`], this
//! crate computes the [`Op`]s that make it equal to the configured one, and
//! `sys` sends them. [`render_ipvsadm`] shows a state the way `ipvsadm -Ln`
//! does.

mod diff;
mod model;
mod render;
mod stats;
mod sync;

pub use diff::{apply, diff, ApplyError, Op};
pub use model::*;
pub use render::render_ipvsadm;
pub use stats::{DestCounters, IpvsCounters, IpvsInfo, ServiceCounters, Stats};
pub use sync::{SyncDaemon, SyncState};

#[cfg(test)]
mod tests;
