//! The Lua plugin host of lbd: health checks, tracked scripts, notify hooks
//! and discovery providers are Lua 5.4 files run on a thread of their own,
//! sandboxed and limited (docs/plugins/ is the plugin authors' guide).
//!
//! Layers, each module using only those below it: `host` (the plugin
//! thread and the daemon's handle) on `api` (the `lb` module plugins see)
//! on `sandbox` (a limited Lua state and the types shared upwards), and
//! all on `prim` (the I/O primitives) and `clock`.

mod api;
mod clock;
mod host;
pub mod prim;
mod sandbox;

pub use host::{
    next_start, CheckOutcome, Event, EventKind, Host, HostConfig, HostStats, Job, JobGuard,
    LoadReport, LoadedPlugin, Local, LocalCheck, Notifier, Options, PluginError, Target,
    START_GRID,
};
pub use sandbox::PluginStats;
