//! Host primitives: plain async Rust, no Lua.
