//! Pure VRRP: the advertisement codec (v2/v3, IPv4/IPv6, checksums, auth),
//! the per-instance state machine, sync groups, and the [`router::Router`]
//! that puts them behind one datagram-in, transmit-out API.
//!
//! Nothing here reads a clock or opens a socket: time is passed in as
//! [`std::time::Instant`] values and outputs are returned as actions.

pub mod advert;
pub mod auth;
pub mod codec;
pub mod instance;
pub mod router;
pub mod sync_group;

pub use advert::{Advert, Version};
