//! The Lua plugin host of lbd (see core/plugin/CONTRACT.md while it is built).

pub mod prim;
