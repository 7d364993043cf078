//! Utilities: `lb.now`, `lb.time`, `lb.log`, `lb.sleep`, `lb.json`, `lb.md5`, `lb.regex`.

use std::time::Duration;

use md5::{Digest, Md5};
use mlua::{Lua, LuaSerdeExt, Result, Table, Value};

use super::support::{err, plugin_name, task_only};
use crate::sandbox::Ctx;

/// Bound of the per-plugin compiled-regex cache.
const REGEX_CACHE: usize = 64;

pub(super) fn register(lua: &Lua, lb: &Table) -> Result<()> {
    let start = std::time::Instant::now();
    lb.set(
        "now",
        lua.create_function(move |_, ()| Ok(start.elapsed().as_secs_f64()))?,
    )?;
    lb.set(
        "time",
        lua.create_function(|_, ()| {
            Ok(std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()))
        })?,
    )?;
    lb.set(
        "log",
        lua.create_function(|lua, (level, msg): (String, Value)| {
            let plugin = plugin_name(lua);
            let msg = match msg {
                Value::String(s) => s.to_string_lossy(),
                other => format!("{other:?}"),
            };
            match level.as_str() {
                "debug" => tracing::debug!(plugin, "plugin {plugin}: {msg}"),
                "info" => tracing::info!(plugin, "plugin {plugin}: {msg}"),
                "warn" => tracing::warn!(plugin, "plugin {plugin}: {msg}"),
                "error" => tracing::error!(plugin, "plugin {plugin}: {msg}"),
                other => {
                    return err(format!(
                        "lb.log: level {other:?} (debug, info, warn, error)"
                    ))
                }
            }
            Ok(())
        })?,
    )?;
    lb.set(
        "sleep",
        lua.create_async_function(|lua, secs: f64| {
            let g = task_only(&lua, "lb.sleep");
            async move {
                g?;
                if !secs.is_finite() || secs < 0.0 {
                    return err("lb.sleep: seconds must be a positive number");
                }
                tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                Ok(())
            }
        })?,
    )?;
    let json = lua.create_table()?;
    json.set(
        "encode",
        lua.create_function(|lua, v: Value| {
            let j: serde_json::Value = lua.from_value(v)?;
            serde_json::to_string(&j)
                .map_err(|e| mlua::Error::RuntimeError(format!("lb.json.encode: {e}")))
        })?,
    )?;
    json.set(
        "decode",
        lua.create_function(|lua, s: mlua::LuaString| {
            let j: serde_json::Value = serde_json::from_slice(&s.as_bytes())
                .map_err(|e| mlua::Error::RuntimeError(format!("lb.json.decode: {e}")))?;
            lua.to_value(&j)
        })?,
    )?;
    lb.set("json", json)?;
    lb.set(
        "md5",
        lua.create_function(|_, s: mlua::LuaString| {
            let d = Md5::digest(&*s.as_bytes());
            Ok(d.iter().map(|b| format!("{b:02x}")).collect::<String>())
        })?,
    )?;
    let re = lua.create_table()?;
    re.set(
        "find",
        lua.create_function(|lua, (pat, subject): (String, mlua::LuaString)| {
            let Some(ctx) = lua.app_data_ref::<Ctx>() else {
                return err("lb.regex.find: no plugin context");
            };
            let mut cache = ctx.regex_cache.borrow_mut();
            if !cache.contains_key(&pat) {
                let r = regex::Regex::new(&pat)
                    .map_err(|e| mlua::Error::RuntimeError(format!("lb.regex.find: {e}")))?;
                if cache.len() >= REGEX_CACHE {
                    cache.clear();
                }
                cache.insert(pat.clone(), r);
            }
            let Some(r) = cache.get(&pat) else {
                return err("lb.regex.find: cache");
            };
            Ok(r.is_match(&subject.to_string_lossy()))
        })?,
    )?;
    lb.set("regex", re)?;
    Ok(())
}
