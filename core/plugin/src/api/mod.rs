//! The `lb` module plugins see. One `register` per API area (registration,
//! utilities, processes and files, network), as wezterm's lua-api crates
//! do; `support` is what they share. Contexts as in HAProxy's Lua API:
//! registration only in the file body; I/O only in a task (a handler the
//! host runs on a thread it created).

mod net;
mod registration;
mod support;
mod system;
mod util;

use mlua::{Function, Lua, Result};

pub(crate) fn register(lua: &Lua) -> Result<()> {
    let lb = lua.create_table()?;
    registration::register(lua, &lb)?;
    util::register(lua, &lb)?;
    system::register(lua, &lb)?;
    net::register(lua, &lb)?;
    lua.globals().set("lb", lb)?;
    let log: Function = lua.load("return function(...) local t = {} for i = 1, select('#', ...) do t[i] = tostring((select(i, ...))) end lb.log('info', table.concat(t, '\\t')) end").eval()?;
    lua.globals().set("print", log)?;
    Ok(())
}
