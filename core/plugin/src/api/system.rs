//! Processes and files: `lb.exec`, `lb.spawn`, `lb.proc.find`, `lb.fs`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use mlua::{Lua, Result, Table, Value};
use serde::{Deserialize, Serialize};

use super::support::{opts, table_of, task_only, Bytes, LuaBytes, Num, Ret, Text, MIB};
use crate::prim;
use crate::sandbox::Ctx;

/// `lb.exec(argv, opts)` options (docs/plugins/exec.md).
#[derive(Default, Deserialize)]
#[serde(default)]
struct ExecOpts {
    timeout: Option<Num>,
    env: Option<BTreeMap<Text, Text>>,
    stdin: Option<Bytes>,
    user: Option<Text>,
}

#[derive(Serialize)]
struct ExecResult<'a> {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: LuaBytes<'a>,
    stderr: LuaBytes<'a>,
    timed_out: bool,
}

fn argv_of(t: &Table) -> Result<Vec<String>> {
    let v: Vec<String> = t.sequence_values::<String>().collect::<Result<_>>()?;
    if v.is_empty() {
        return super::support::err("argv: a list with the program first is required");
    }
    Ok(v)
}

fn exec_request(lua: &Lua, argv: &Table, o: Value) -> Result<prim::exec::Request> {
    let o: ExecOpts = opts(lua, "lb.exec", o)?;
    let mut req = prim::exec::Request {
        argv: argv_of(argv)?,
        timeout: Duration::from_secs(10),
        env: Vec::new(),
        stdin: None,
        max_output: MIB,
        uid_gid: lua
            .app_data_ref::<Ctx>()
            .and_then(|c| c.shared.limits.script_user),
    };
    if let Some(Num(t)) = o.timeout {
        req.timeout = Duration::from_secs_f64(t.clamp(0.001, 86400.0));
    }
    req.env = o
        .env
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.0, v.0))
        .collect();
    req.stdin = o.stdin.map(|b| b.0);
    // "user" or "user:group" (keepalived's per-script `user`), looked up at
    // each call: an unknown user fails the run with its name rather than
    // the whole configuration.
    if let Some(Text(u)) = o.user {
        let (user, group) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        req.uid_gid = Some(
            prim::exec::user_ids(user, group)
                .map_err(|e| mlua::Error::RuntimeError(format!("lb.exec: {e}")))?,
        );
    }
    Ok(req)
}

pub(super) fn register(lua: &Lua, lb: &Table) -> Result<()> {
    lb.set(
        "exec",
        lua.create_async_function(|lua, (argv, o): (Table, Value)| {
            let g = task_only(&lua, "lb.exec");
            let parsed = exec_request(&lua, &argv, o);
            async move {
                g?;
                Ok(match prim::exec::run(parsed?).await {
                    Ok(o) => Ret::Ok(table_of(
                        &lua,
                        &ExecResult {
                            code: o.code,
                            signal: o.signal,
                            stdout: LuaBytes(&o.stdout),
                            stderr: LuaBytes(&o.stderr),
                            timed_out: o.timed_out,
                        },
                    )?),
                    Err(e) => Ret::fail(e),
                })
            }
        })?,
    )?;
    lb.set(
        "spawn",
        lua.create_function(|lua, argv: Table| {
            task_only(lua, "lb.spawn")?;
            Ok(match prim::exec::spawn(&argv_of(&argv)?) {
                Ok(()) => Ret::Ok(true),
                Err(e) => Ret::fail(e),
            })
        })?,
    )?;
    let pr = lua.create_table()?;
    pr.set(
        "find",
        lua.create_function(|lua, name: String| {
            task_only(lua, "lb.proc.find")?;
            Ok(match prim::proc::find(&name) {
                Ok(pids) => Ret::Ok(table_of(lua, &pids)?),
                Err(e) => Ret::fail(e),
            })
        })?,
    )?;
    lb.set("proc", pr)?;
    let fs = lua.create_table()?;
    fs.set(
        "read",
        lua.create_function(|lua, (path, max): (String, Option<usize>)| {
            task_only(lua, "lb.fs.read")?;
            Ok(
                match prim::fs::read(&PathBuf::from(path), max.unwrap_or(MIB)) {
                    Ok(b) => Ret::Ok(lua.create_string(&b)?),
                    Err(e) => Ret::fail(e),
                },
            )
        })?,
    )?;
    fs.set(
        "append",
        lua.create_function(|lua, (path, data): (String, mlua::LuaString)| {
            task_only(lua, "lb.fs.append")?;
            Ok(
                match prim::fs::append(&PathBuf::from(path), &data.as_bytes()) {
                    Ok(()) => Ret::Ok(true),
                    Err(e) => Ret::fail(e),
                },
            )
        })?,
    )?;
    lb.set("fs", fs)
}
