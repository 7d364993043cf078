//! The Lua plugin host of lbd: health checks, tracked scripts, notify hooks
//! and discovery providers are Lua 5.4 files run on a thread of their own,
//! sandboxed and limited (docs/plugins/ is the plugin authors' guide).

mod api;
mod clock;
mod host;
pub mod prim;
mod sandbox;

pub use host::{
    next_start, CheckOutcome, Event, EventKind, Host, HostConfig, HostStats, Job, JobGuard,
    LoadReport, LoadedPlugin, Local, LocalCheck, Notifier, Options, PluginError, PluginStats,
    Target, START_GRID,
};
