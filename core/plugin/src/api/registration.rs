//! `lb.check`, `lb.notify`, `lb.discovery`: registration, in the file body only.

use mlua::{Function, Lua, Result, Table, Value};

use super::support::err;
use crate::sandbox::{Ctx, Reg};

pub(super) fn register(lua: &Lua, lb: &Table) -> Result<()> {
    for (kind, field) in [("check", "run"), ("notify", "event"), ("discovery", "run")] {
        let f = lua.create_function(move |lua, (name, spec): (String, Table)| {
            let what = format!("lb.{kind}");
            let Some(ctx) = lua.app_data_ref::<Ctx>() else {
                return err(format!("{what}: no plugin context"));
            };
            if !ctx.in_body.get() {
                return err(format!("{what}: only allowed in the file body"));
            }
            if !valid_name(&name) {
                return err(format!("{what}: name {name:?} must match [a-z][a-z0-9_]*"));
            }
            let func: Function = spec.get(field).map_err(|_| {
                mlua::Error::RuntimeError(format!("{what} {name}: `{field}` must be a function"))
            })?;
            let defaults: Table = match spec.get::<Value>("defaults")? {
                Value::Nil => lua.create_table()?,
                Value::Table(t) => t,
                _ => return err(format!("{what} {name}: `defaults` must be a table")),
            };
            let mut regs = ctx.regs.borrow_mut();
            let map = match kind {
                "check" => &mut regs.checks,
                "notify" => &mut regs.notifiers,
                _ => &mut regs.discoveries,
            };
            if map.contains_key(&name) {
                return err(format!("{what}: {name} is registered twice in this file"));
            }
            map.insert(name, Reg { func, defaults });
            Ok(())
        })?;
        lb.set(kind, f)?;
    }
    Ok(())
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_lowercase())
        && c.all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || x == '_')
}
