//! The `lb` module plugins see. One function per API area registers its
//! part (registration, utilities, processes and files, network). Contexts
//! as in HAProxy's Lua API: registration only in the file body; I/O only
//! in a task (a handler the host runs on a thread it created).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use md5::{Digest, Md5};
use mlua::{
    Function, Lua, LuaSerdeExt, MultiValue, Result, Table, UserData, UserDataMethods, Value,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::prim;
use crate::sandbox::{Ctx, Reg};

const MIB: usize = 1 << 20;
/// Bound of the per-plugin compiled-regex cache.
const REGEX_CACHE: usize = 64;

pub(crate) fn register(lua: &Lua) -> Result<()> {
    let lb = lua.create_table()?;
    registration(lua, &lb)?;
    util(lua, &lb)?;
    system(lua, &lb)?;
    net(lua, &lb)?;
    lua.globals().set("lb", lb)?;
    let log: Function = lua.load("return function(...) local t = {} for i = 1, select('#', ...) do t[i] = tostring((select(i, ...))) end lb.log('info', table.concat(t, '\\t')) end").eval()?;
    lua.globals().set("print", log)?;
    Ok(())
}

fn err<T>(m: impl Into<String>) -> Result<T> {
    Err(mlua::Error::RuntimeError(m.into()))
}

fn plugin_name(lua: &Lua) -> String {
    lua.app_data_ref::<Ctx>()
        .map(|c| c.shared.name.clone())
        .unwrap_or_default()
}

/// `what` may only run in a task: not in the body, not in a coroutine the
/// plugin made (mlua cannot drive async calls there: platform-facts.md).
fn task_only(lua: &Lua, what: &str) -> Result<()> {
    let Some(ctx) = lua.app_data_ref::<Ctx>() else {
        return err(format!("{what}: no plugin context"));
    };
    if ctx.in_body.get() {
        return err(format!("{what}: not allowed in the file body"));
    }
    let me = lua.current_thread().to_pointer() as usize;
    if !ctx.host_threads.borrow().contains(&me) {
        return err(format!("{what}: not allowed inside a plugin coroutine"));
    }
    Ok(())
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_lowercase())
        && c.all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || x == '_')
}

fn registration(lua: &Lua, lb: &Table) -> Result<()> {
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

fn util(lua: &Lua, lb: &Table) -> Result<()> {
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
                "debug" => tracing::debug!("plugin {plugin}: {msg}"),
                "info" => tracing::info!("plugin {plugin}: {msg}"),
                "warn" => tracing::warn!("plugin {plugin}: {msg}"),
                "error" => tracing::error!("plugin {plugin}: {msg}"),
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

fn argv_of(t: &Table) -> Result<Vec<String>> {
    let v: Vec<String> = t.sequence_values::<String>().collect::<Result<_>>()?;
    if v.is_empty() {
        return err("argv: a list with the program first is required");
    }
    Ok(v)
}

fn system(lua: &Lua, lb: &Table) -> Result<()> {
    lb.set(
        "exec",
        lua.create_async_function(|lua, (argv, opts): (Table, Option<Table>)| {
            let g = task_only(&lua, "lb.exec");
            let script_user = lua
                .app_data_ref::<Ctx>()
                .and_then(|c| c.shared.limits.script_user);
            let parsed = (|| -> Result<prim::exec::Request> {
                let argv = argv_of(&argv)?;
                let mut req = prim::exec::Request {
                    argv,
                    timeout: Duration::from_secs(10),
                    env: Vec::new(),
                    stdin: None,
                    max_output: MIB,
                    uid_gid: script_user,
                };
                if let Some(o) = &opts {
                    if let Some(t) = o.get::<Option<f64>>("timeout")? {
                        req.timeout = Duration::from_secs_f64(t.clamp(0.001, 86400.0));
                    }
                    if let Some(e) = o.get::<Option<Table>>("env")? {
                        for p in e.pairs::<String, String>() {
                            req.env.push(p?);
                        }
                    }
                    if let Some(s) = o.get::<Option<mlua::LuaString>>("stdin")? {
                        req.stdin = Some(s.as_bytes().to_vec());
                    }
                    // "user" or "user:group" (keepalived's per-script `user`),
                    // looked up at each call: an unknown user fails the run
                    // with its name rather than the whole configuration.
                    if let Some(u) = o.get::<Option<String>>("user")? {
                        let (user, group) = match u.split_once(':') {
                            Some((u, g)) => (u, Some(g)),
                            None => (u.as_str(), None),
                        };
                        req.uid_gid = Some(
                            prim::exec::user_ids(user, group)
                                .map_err(|e| mlua::Error::RuntimeError(format!("lb.exec: {e}")))?,
                        );
                    }
                }
                Ok(req)
            })();
            async move {
                g?;
                let req = parsed?;
                match prim::exec::run(req).await {
                    Ok(o) => {
                        let t = lua.create_table()?;
                        t.set("code", o.code)?;
                        t.set("signal", o.signal)?;
                        t.set("stdout", lua.create_string(&o.stdout)?)?;
                        t.set("stderr", lua.create_string(&o.stderr)?)?;
                        t.set("timed_out", o.timed_out)?;
                        Ok(MultiValue::from_iter([Value::Table(t)]))
                    }
                    Err(e) => fail(&lua, e),
                }
            }
        })?,
    )?;
    lb.set(
        "spawn",
        lua.create_function(|lua, argv: Table| {
            task_only(lua, "lb.spawn")?;
            let argv = argv_of(&argv)?;
            match prim::exec::spawn(&argv) {
                Ok(()) => Ok(MultiValue::from_iter([Value::Boolean(true)])),
                Err(e) => fail(lua, e),
            }
        })?,
    )?;
    let pr = lua.create_table()?;
    pr.set(
        "find",
        lua.create_function(|lua, name: String| {
            task_only(lua, "lb.proc.find")?;
            match prim::proc::find(&name) {
                Ok(pids) => Ok(MultiValue::from_iter([Value::Table(
                    lua.create_sequence_from(pids)?,
                )])),
                Err(e) => fail(lua, e),
            }
        })?,
    )?;
    lb.set("proc", pr)?;
    let fs = lua.create_table()?;
    fs.set(
        "read",
        lua.create_function(|lua, (path, max): (String, Option<usize>)| {
            task_only(lua, "lb.fs.read")?;
            match prim::fs::read(&PathBuf::from(path), max.unwrap_or(MIB)) {
                Ok(b) => Ok(MultiValue::from_iter([Value::String(
                    lua.create_string(&b)?,
                )])),
                Err(e) => fail(lua, e),
            }
        })?,
    )?;
    fs.set(
        "append",
        lua.create_function(|lua, (path, data): (String, mlua::LuaString)| {
            task_only(lua, "lb.fs.append")?;
            match prim::fs::append(&PathBuf::from(path), &data.as_bytes()) {
                Ok(()) => Ok(MultiValue::from_iter([Value::Boolean(true)])),
                Err(e) => fail(lua, e),
            }
        })?,
    )?;
    lb.set("fs", fs)?;
    Ok(())
}

/// The Lua convention for expected failures: `nil, message`.
fn fail(lua: &Lua, e: impl std::fmt::Display) -> Result<MultiValue> {
    Ok(MultiValue::from_iter([
        Value::Nil,
        Value::String(lua.create_string(e.to_string())?),
    ]))
}

fn secs(t: &Table, key: &str, dflt: f64) -> Result<Duration> {
    let v = t.get::<Option<f64>>(key)?.unwrap_or(dflt);
    if !v.is_finite() || v <= 0.0 {
        return err(format!("{key}: seconds must be a positive number"));
    }
    Ok(Duration::from_secs_f64(v.min(86400.0)))
}

/// A source address from `bind` (IP) and `bind_port` options; a port
/// alone binds the unspecified address of `dest`'s family.
fn bind_addr(o: &Table, dest: &SocketAddr, what: &str) -> Result<Option<SocketAddr>> {
    let b = o
        .get::<Option<String>>("bind")?
        .map(|b| ip(&b, &format!("{what} bind")))
        .transpose()?;
    let port = o.get::<Option<u16>>("bind_port")?.unwrap_or(0);
    Ok(match (b, port) {
        (None, 0) => None,
        (Some(b), p) => Some(SocketAddr::new(b, p)),
        (None, p) => Some(SocketAddr::new(
            if dest.is_ipv6() {
                IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
            },
            p,
        )),
    })
}

fn ip(s: &str, what: &str) -> Result<IpAddr> {
    s.parse()
        .map_err(|_| mlua::Error::RuntimeError(format!("{what}: {s:?} is not an IP address")))
}

/// A TCP connection handed to a plugin.
struct Conn {
    stream: Rc<tokio::sync::Mutex<Option<BufReader<tokio::net::TcpStream>>>>,
    timeout: Duration,
}

impl UserData for Conn {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_async_method("send", |lua, this, data: mlua::LuaString| async move {
            task_only(&lua, "conn:send")?;
            let bytes = data.as_bytes().to_vec();
            let mut g = this.stream.lock().await;
            let Some(s) = g.as_mut() else {
                return fail(&lua, "closed");
            };
            match tokio::time::timeout(this.timeout, s.get_mut().write_all(&bytes)).await {
                Ok(Ok(())) => Ok(MultiValue::from_iter([Value::Boolean(true)])),
                Ok(Err(e)) => fail(&lua, e),
                Err(_) => fail(&lua, format!("send: timeout after {:?}", this.timeout)),
            }
        });
        m.add_async_method(
            "receive",
            |lua, this, (what, t): (Value, Option<f64>)| async move {
                task_only(&lua, "conn:receive")?;
                let limit = t.map_or(this.timeout, |t| {
                    Duration::from_secs_f64(t.clamp(0.001, 86400.0))
                });
                let mut g = this.stream.lock().await;
                let Some(s) = g.as_mut() else {
                    return fail(&lua, "closed");
                };
                let work = async {
                    match what {
                        Value::Integer(n) => {
                            let mut buf = vec![0u8; usize::try_from(n).unwrap_or(0).min(16 * MIB)];
                            s.read_exact(&mut buf).await.map(|_| buf)
                        }
                        _ => {
                            let mut line = Vec::new();
                            (&mut *s)
                                .take(MIB as u64)
                                .read_until(b'\n', &mut line)
                                .await?;
                            if line.is_empty() {
                                return Err(std::io::Error::new(
                                    std::io::ErrorKind::UnexpectedEof,
                                    "closed",
                                ));
                            }
                            while line.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
                                line.pop();
                            }
                            Ok(line)
                        }
                    }
                };
                match tokio::time::timeout(limit, work).await {
                    Ok(Ok(b)) => Ok(MultiValue::from_iter([Value::String(
                        lua.create_string(&b)?,
                    )])),
                    Ok(Err(e)) => fail(&lua, e),
                    Err(_) => fail(&lua, format!("receive: timeout after {limit:?}")),
                }
            },
        );
        m.add_async_method("close", |_, this, ()| async move {
            this.stream.lock().await.take();
            Ok(())
        });
    }
}

fn net(lua: &Lua, lb: &Table) -> Result<()> {
    let tcp = lua.create_table()?;
    tcp.set(
        "connect",
        lua.create_async_function(|lua, (host, port, opts): (String, u16, Option<Table>)| {
            let g = task_only(&lua, "lb.tcp.connect");
            let parsed = (|| -> Result<(SocketAddr, Duration, Option<SocketAddr>)> {
                let addr = SocketAddr::new(ip(&host, "lb.tcp.connect")?, port);
                let (t, bind) = match &opts {
                    Some(o) => (
                        secs(o, "timeout", 5.0)?,
                        bind_addr(o, &addr, "lb.tcp.connect")?,
                    ),
                    None => (Duration::from_secs(5), None),
                };
                Ok((addr, t, bind))
            })();
            async move {
                g?;
                let (addr, t, bind) = parsed?;
                let connect = async {
                    match bind {
                        Some(b) => {
                            let s = if addr.is_ipv4() {
                                tokio::net::TcpSocket::new_v4()
                            } else {
                                tokio::net::TcpSocket::new_v6()
                            }?;
                            s.bind(b)?;
                            s.connect(addr).await
                        }
                        None => tokio::net::TcpStream::connect(addr).await,
                    }
                };
                match tokio::time::timeout(t, connect).await {
                    Ok(Ok(s)) => {
                        let c = Conn {
                            stream: Rc::new(tokio::sync::Mutex::new(Some(BufReader::new(s)))),
                            timeout: t,
                        };
                        Ok(MultiValue::from_iter([Value::UserData(
                            lua.create_userdata(c)?,
                        )]))
                    }
                    Ok(Err(e)) => fail(&lua, format!("connect {addr}: {e}")),
                    Err(_) => fail(&lua, format!("connect {addr}: timeout after {t:?}")),
                }
            }
        })?,
    )?;
    lb.set("tcp", tcp)?;
    udp(lua, lb)?;
    icmp(lua, lb)?;

    let http = lua.create_table()?;
    let request = lua.create_async_function(|lua, req: Table| {
        let g = task_only(&lua, "lb.http.request");
        let parsed = http_request(&req);
        async move {
            g?;
            let r = parsed?;
            match prim::http::request(r).await {
                Ok(resp) => {
                    let t = lua.create_table()?;
                    t.set("status", resp.status)?;
                    let h = lua.create_table()?;
                    for (k, v) in resp.headers {
                        h.set(k, v)?;
                    }
                    t.set("headers", h)?;
                    t.set("body", lua.create_string(&resp.body)?)?;
                    t.set("truncated", resp.truncated)?;
                    Ok(MultiValue::from_iter([Value::Table(t)]))
                }
                Err(e) => fail(&lua, e),
            }
        }
    })?;
    http.set("request", request.clone())?;
    let get: Function = lua
        .load(
            "local request = ... return function(ip, port, path, opts) \
             local r = {} for k, v in pairs(opts or {}) do r[k] = v end \
             r.method, r.ip, r.port, r.path = 'GET', ip, port, path or '/' \
             return request(r) end",
        )
        .set_name("=lb.http.get")
        .call(request)?;
    http.set("get", get)?;
    lb.set("http", http)?;

    let dns = lua.create_table()?;
    dns.set(
        "query",
        lua.create_async_function(
            |lua, (server, name, qtype, opts): (String, String, String, Option<Table>)| {
                let g = task_only(&lua, "lb.dns.query");
                let parsed = (|| -> Result<prim::dns::Query> {
                    let mut q = prim::dns::Query {
                        server: SocketAddr::new(ip(&server, "lb.dns.query")?, 53),
                        name,
                        qtype,
                        timeout: Duration::from_secs(5),
                        tcp: false,
                    };
                    if let Some(o) = &opts {
                        if let Some(p) = o.get::<Option<u16>>("port")? {
                            q.server.set_port(p);
                        }
                        q.timeout = secs(o, "timeout", 5.0)?;
                        q.tcp = o.get::<Option<bool>>("tcp")?.unwrap_or(false);
                    }
                    Ok(q)
                })();
                async move {
                    g?;
                    match prim::dns::query(parsed?).await {
                        Ok(a) => {
                            let t = lua.create_table()?;
                            t.set("rcode", a.rcode)?;
                            let list = lua.create_table()?;
                            for r in a.records {
                                let e = lua.create_table()?;
                                e.set("name", r.name)?;
                                e.set("type", r.rtype)?;
                                e.set("ttl", r.ttl)?;
                                e.set("data", r.data)?;
                                list.push(e)?;
                            }
                            t.set("answers", list)?;
                            Ok(MultiValue::from_iter([Value::Table(t)]))
                        }
                        Err(e) => fail(&lua, e),
                    }
                }
            },
        )?,
    )?;
    lb.set("dns", dns)?;
    Ok(())
}

fn http_request(t: &Table) -> Result<prim::http::Request> {
    let dest = match t.get::<Option<String>>("unix")? {
        Some(p) => prim::http::Dest::Unix(PathBuf::from(p)),
        None => {
            let host: String = t.get::<Option<String>>("ip")?.ok_or_else(|| {
                mlua::Error::RuntimeError("lb.http.request: ip (or unix) is required".into())
            })?;
            let port = t.get::<Option<u16>>("port")?.unwrap_or(80);
            prim::http::Dest::Tcp(SocketAddr::new(ip(&host, "lb.http.request")?, port))
        }
    };
    let mut headers = Vec::new();
    if let Some(h) = t.get::<Option<Table>>("headers")? {
        for p in h.pairs::<String, String>() {
            headers.push(p?);
        }
    }
    Ok(prim::http::Request {
        method: t
            .get::<Option<String>>("method")?
            .unwrap_or_else(|| "GET".into()),
        dest,
        path: t
            .get::<Option<String>>("path")?
            .unwrap_or_else(|| "/".into()),
        host: t.get::<Option<String>>("host")?,
        headers,
        body: t
            .get::<Option<mlua::LuaString>>("body")?
            .map(|b| b.as_bytes().to_vec())
            .unwrap_or_default(),
        timeout: secs(t, "timeout", 5.0)?,
        connect_timeout: secs(t, "connect_timeout", 5.0)?,
        max_body: t.get::<Option<usize>>("max_body")?.unwrap_or(MIB),
        bind: t
            .get::<Option<String>>("bind")?
            .map(|b| ip(&b, "lb.http.request bind"))
            .transpose()?,
        tls: match t.get::<Option<bool>>("tls")?.unwrap_or(false) {
            false => None,
            true => Some(prim::tls::Tls {
                sni: t.get::<Option<String>>("sni")?,
                verify: t.get::<Option<bool>>("verify")?.unwrap_or(true),
                ca_file: t.get::<Option<String>>("ca_file")?.map(PathBuf::from),
            }),
        },
        keepalive: t.get::<Option<bool>>("keepalive")?.unwrap_or(false),
    })
}

/// `lb.udp.request(ip, port, payload, opts)`: one datagram and its reply.
fn udp(lua: &Lua, lb: &Table) -> Result<()> {
    let udp = lua.create_table()?;
    udp.set(
        "request",
        lua.create_async_function(
            |lua, (host, port, payload, opts): (String, u16, mlua::LuaString, Option<Table>)| {
                let g = task_only(&lua, "lb.udp.request");
                let parsed = (|| -> Result<prim::udp::Request> {
                    let dest = SocketAddr::new(ip(&host, "lb.udp.request")?, port);
                    let mut r = prim::udp::Request {
                        dest,
                        payload: payload.as_bytes().to_vec(),
                        bind: None,
                        bind_port: 0,
                        timeout: Duration::from_secs(5),
                        max_reply: 65535,
                    };
                    if let Some(o) = &opts {
                        r.timeout = secs(o, "timeout", 5.0)?;
                        if let Some(b) = bind_addr(o, &dest, "lb.udp.request")? {
                            r.bind = Some(b.ip());
                            r.bind_port = b.port();
                        }
                        if let Some(m) = o.get::<Option<usize>>("max_reply")? {
                            r.max_reply = m.min(65535);
                        }
                    }
                    Ok(r)
                })();
                async move {
                    g?;
                    match prim::udp::request(parsed?).await {
                        Ok(out) => {
                            let t = lua.create_table()?;
                            match out {
                                prim::udp::Outcome::Reply { data, truncated } => {
                                    t.set("reply", lua.create_string(&data)?)?;
                                    t.set("truncated", truncated)?;
                                    t.set("timed_out", false)?;
                                }
                                prim::udp::Outcome::Silence => {
                                    t.set("timed_out", true)?;
                                }
                            }
                            Ok(MultiValue::from_iter([Value::Table(t)]))
                        }
                        Err(e) => fail(&lua, e),
                    }
                }
            },
        )?,
    )?;
    lb.set("udp", udp)
}

/// `lb.icmp.echo(ip, opts)`: one ICMP/ICMPv6 echo and its reply.
fn icmp(lua: &Lua, lb: &Table) -> Result<()> {
    let icmp = lua.create_table()?;
    icmp.set(
        "echo",
        lua.create_async_function(|lua, (host, opts): (String, Option<Table>)| {
            let g = task_only(&lua, "lb.icmp.echo");
            let parsed = (|| -> Result<prim::icmp::Echo> {
                let mut e = prim::icmp::Echo {
                    dest: ip(&host, "lb.icmp.echo")?,
                    bind: None,
                    timeout: Duration::from_secs(5),
                    payload_len: 56,
                    mode: prim::icmp::Mode::Auto,
                };
                if let Some(o) = &opts {
                    e.timeout = secs(o, "timeout", 5.0)?;
                    e.bind = o
                        .get::<Option<String>>("bind")?
                        .map(|b| ip(&b, "lb.icmp.echo bind"))
                        .transpose()?;
                    if let Some(n) = o.get::<Option<usize>>("size")? {
                        // An IPv4 datagram's limit less the IP and ICMP headers.
                        e.payload_len = n.min(65507);
                    }
                    e.mode = match o.get::<Option<String>>("socket")?.as_deref() {
                        None | Some("auto") => prim::icmp::Mode::Auto,
                        Some("datagram") => prim::icmp::Mode::Datagram,
                        Some("raw") => prim::icmp::Mode::Raw,
                        Some(other) => {
                            return err(format!(
                                "lb.icmp.echo: socket {other:?} (auto, datagram, raw)"
                            ))
                        }
                    };
                }
                Ok(e)
            })();
            async move {
                g?;
                match prim::icmp::echo(parsed?).await {
                    Ok(r) => {
                        let t = lua.create_table()?;
                        t.set("rtt", r.rtt.as_secs_f64())?;
                        t.set("raw", r.raw)?;
                        Ok(MultiValue::from_iter([Value::Table(t)]))
                    }
                    Err(e) => fail(&lua, e),
                }
            }
        })?,
    )?;
    lb.set("icmp", icmp)
}
