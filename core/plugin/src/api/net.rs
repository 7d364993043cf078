//! Network: `lb.tcp`, `lb.udp`, `lb.icmp`, `lb.http`, `lb.dns`
//! (docs/plugins/net.md). Each function's options are one struct.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use mlua::{Function, Lua, Result, Table, UserData, UserDataMethods, Value};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::support::{err, opts, table_of, task_only, Bytes, Int, LuaBytes, Num, Ret, Text, MIB};
use crate::prim;

/// Seconds from an option: positive, at most a day; `dflt` when unset.
fn secs(what: &str, key: &str, v: Option<Num>, dflt: f64) -> Result<Duration> {
    let v = v.map_or(dflt, |n| n.0);
    if !v.is_finite() || v <= 0.0 {
        return err(format!(
            "{what}: option `{key}`: seconds must be a positive number"
        ));
    }
    Ok(Duration::from_secs_f64(v.min(86400.0)))
}

fn ip(s: &str, what: &str) -> Result<IpAddr> {
    s.parse()
        .map_err(|_| mlua::Error::RuntimeError(format!("{what}: {s:?} is not an IP address")))
}

fn opt_ip(s: Option<Text>, what: &str) -> Result<Option<IpAddr>> {
    s.map(|b| ip(&b.0, what)).transpose()
}

/// A source address from `bind` (IP) and `bind_port`; a port alone binds
/// the unspecified address of `dest`'s family.
fn bind_addr(
    bind: Option<Text>,
    port: Option<Int<u16>>,
    dest: &SocketAddr,
    what: &str,
) -> Result<Option<SocketAddr>> {
    let b = opt_ip(bind, &format!("{what} bind"))?;
    let port = port.map_or(0, |p| p.0);
    Ok(match (b, port) {
        (None, 0) => None,
        (Some(b), p) => Some(SocketAddr::new(b, p)),
        (None, p) => Some(SocketAddr::new(
            if dest.is_ipv6() {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            },
            p,
        )),
    })
}

pub(super) fn register(lua: &Lua, lb: &Table) -> Result<()> {
    tcp(lua, lb)?;
    udp(lua, lb)?;
    icmp(lua, lb)?;
    http(lua, lb)?;
    dns(lua, lb)
}

/// `lb.tcp.connect(ip, port, opts)` options.
#[derive(Default, Deserialize)]
#[serde(default)]
struct TcpOpts {
    timeout: Option<Num>,
    bind: Option<Text>,
    bind_port: Option<Int<u16>>,
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
                return Ok(Ret::fail("closed"));
            };
            Ok(
                match tokio::time::timeout(this.timeout, s.get_mut().write_all(&bytes)).await {
                    Ok(Ok(())) => Ret::Ok(true),
                    Ok(Err(e)) => Ret::fail(e),
                    Err(_) => Ret::fail(format!("send: timeout after {:?}", this.timeout)),
                },
            )
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
                    return Ok(Ret::fail("closed"));
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
                Ok(match tokio::time::timeout(limit, work).await {
                    Ok(Ok(b)) => Ret::Ok(lua.create_string(&b)?),
                    Ok(Err(e)) => Ret::fail(e),
                    Err(_) => Ret::fail(format!("receive: timeout after {limit:?}")),
                })
            },
        );
        m.add_async_method("close", |_, this, ()| async move {
            this.stream.lock().await.take();
            Ok(())
        });
    }
}

fn tcp(lua: &Lua, lb: &Table) -> Result<()> {
    const WHAT: &str = "lb.tcp.connect";
    let tcp = lua.create_table()?;
    tcp.set(
        "connect",
        lua.create_async_function(|lua, (host, port, o): (String, u16, Value)| {
            let g = task_only(&lua, WHAT);
            let parsed = (|| -> Result<(SocketAddr, Duration, Option<SocketAddr>)> {
                let addr = SocketAddr::new(ip(&host, WHAT)?, port);
                let o: TcpOpts = opts(&lua, WHAT, o)?;
                let t = secs(WHAT, "timeout", o.timeout, 5.0)?;
                Ok((addr, t, bind_addr(o.bind, o.bind_port, &addr, WHAT)?))
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
                Ok(match tokio::time::timeout(t, connect).await {
                    Ok(Ok(s)) => Ret::Ok(lua.create_userdata(Conn {
                        stream: Rc::new(tokio::sync::Mutex::new(Some(BufReader::new(s)))),
                        timeout: t,
                    })?),
                    Ok(Err(e)) => Ret::fail(format!("connect {addr}: {e}")),
                    Err(_) => Ret::fail(format!("connect {addr}: timeout after {t:?}")),
                })
            }
        })?,
    )?;
    lb.set("tcp", tcp)
}

/// `lb.http.request(req)`: the request table is the options.
#[derive(Default, Deserialize)]
#[serde(default)]
struct HttpReq {
    method: Option<Text>,
    ip: Option<Text>,
    port: Option<Int<u16>>,
    unix: Option<Text>,
    path: Option<Text>,
    host: Option<Text>,
    headers: Option<BTreeMap<Text, Text>>,
    body: Option<Bytes>,
    timeout: Option<Num>,
    connect_timeout: Option<Num>,
    max_body: Option<Int<usize>>,
    bind: Option<Text>,
    tls: Option<bool>,
    sni: Option<Text>,
    verify: Option<bool>,
    ca_file: Option<Text>,
    keepalive: Option<bool>,
}

#[derive(Serialize)]
struct HttpRes<'a> {
    status: u16,
    /// Lower-case names; of a repeated header, the last.
    headers: BTreeMap<&'a str, &'a str>,
    body: LuaBytes<'a>,
    truncated: bool,
}

fn http_request(lua: &Lua, v: Value) -> Result<prim::http::Request> {
    const WHAT: &str = "lb.http.request";
    let r: HttpReq = opts(lua, WHAT, v)?;
    let dest = match r.unix {
        Some(p) => prim::http::Dest::Unix(PathBuf::from(p.0)),
        None => {
            let Some(host) = r.ip else {
                return err(format!("{WHAT}: ip (or unix) is required"));
            };
            let port = r.port.map_or(80, |p| p.0);
            prim::http::Dest::Tcp(SocketAddr::new(ip(&host.0, WHAT)?, port))
        }
    };
    Ok(prim::http::Request {
        method: r.method.map_or_else(|| "GET".into(), |m| m.0),
        dest,
        path: r.path.map_or_else(|| "/".into(), |p| p.0),
        host: r.host.map(|h| h.0),
        headers: r
            .headers
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.0, v.0))
            .collect(),
        body: r.body.map(|b| b.0).unwrap_or_default(),
        timeout: secs(WHAT, "timeout", r.timeout, 5.0)?,
        connect_timeout: secs(WHAT, "connect_timeout", r.connect_timeout, 5.0)?,
        max_body: r.max_body.map_or(MIB, |m| m.0),
        bind: opt_ip(r.bind, "lb.http.request bind")?,
        tls: match r.tls.unwrap_or(false) {
            false => None,
            true => Some(prim::tls::Tls {
                sni: r.sni.map(|s| s.0),
                verify: r.verify.unwrap_or(true),
                ca_file: r.ca_file.map(|f| PathBuf::from(f.0)),
            }),
        },
        keepalive: r.keepalive.unwrap_or(false),
    })
}

fn http(lua: &Lua, lb: &Table) -> Result<()> {
    let http = lua.create_table()?;
    let request = lua.create_async_function(|lua, req: Value| {
        let g = task_only(&lua, "lb.http.request");
        let parsed = http_request(&lua, req);
        async move {
            g?;
            Ok(match prim::http::request(parsed?).await {
                Ok(resp) => Ret::Ok(table_of(
                    &lua,
                    &HttpRes {
                        status: resp.status,
                        headers: resp
                            .headers
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect(),
                        body: LuaBytes(&resp.body),
                        truncated: resp.truncated,
                    },
                )?),
                Err(e) => Ret::fail(e),
            })
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
    lb.set("http", http)
}

/// `lb.dns.query(server, name, type, opts)` options.
#[derive(Default, Deserialize)]
#[serde(default)]
struct DnsOpts {
    port: Option<Int<u16>>,
    timeout: Option<Num>,
    tcp: Option<bool>,
}

#[derive(Serialize)]
struct DnsRes<'a> {
    rcode: &'a str,
    answers: Vec<DnsRecord<'a>>,
}

#[derive(Serialize)]
struct DnsRecord<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    rtype: &'a str,
    ttl: u32,
    data: &'a str,
}

fn dns(lua: &Lua, lb: &Table) -> Result<()> {
    const WHAT: &str = "lb.dns.query";
    let dns = lua.create_table()?;
    dns.set(
        "query",
        lua.create_async_function(
            |lua, (server, name, qtype, o): (String, String, String, Value)| {
                let g = task_only(&lua, WHAT);
                let parsed = (|| -> Result<prim::dns::Query> {
                    let o: DnsOpts = opts(&lua, WHAT, o)?;
                    let port = o.port.map_or(53, |p| p.0);
                    Ok(prim::dns::Query {
                        server: SocketAddr::new(ip(&server, WHAT)?, port),
                        name,
                        qtype,
                        timeout: secs(WHAT, "timeout", o.timeout, 5.0)?,
                        tcp: o.tcp.unwrap_or(false),
                    })
                })();
                async move {
                    g?;
                    Ok(match prim::dns::query(parsed?).await {
                        Ok(a) => Ret::Ok(table_of(
                            &lua,
                            &DnsRes {
                                rcode: &a.rcode,
                                answers: a
                                    .records
                                    .iter()
                                    .map(|r| DnsRecord {
                                        name: &r.name,
                                        rtype: &r.rtype,
                                        ttl: r.ttl,
                                        data: &r.data,
                                    })
                                    .collect(),
                            },
                        )?),
                        Err(e) => Ret::fail(e),
                    })
                }
            },
        )?,
    )?;
    lb.set("dns", dns)
}

/// `lb.udp.request(ip, port, payload, opts)` options.
#[derive(Default, Deserialize)]
#[serde(default)]
struct UdpOpts {
    timeout: Option<Num>,
    bind: Option<Text>,
    bind_port: Option<Int<u16>>,
    max_reply: Option<Int<usize>>,
}

#[derive(Serialize)]
struct UdpRes<'a> {
    reply: Option<LuaBytes<'a>>,
    truncated: Option<bool>,
    timed_out: bool,
}

/// `lb.udp.request(ip, port, payload, opts)`: one datagram and its reply.
fn udp(lua: &Lua, lb: &Table) -> Result<()> {
    const WHAT: &str = "lb.udp.request";
    let udp = lua.create_table()?;
    udp.set(
        "request",
        lua.create_async_function(
            |lua, (host, port, payload, o): (String, u16, mlua::LuaString, Value)| {
                let g = task_only(&lua, WHAT);
                let parsed = (|| -> Result<prim::udp::Request> {
                    let dest = SocketAddr::new(ip(&host, WHAT)?, port);
                    let o: UdpOpts = opts(&lua, WHAT, o)?;
                    let bind = bind_addr(o.bind, o.bind_port, &dest, WHAT)?;
                    Ok(prim::udp::Request {
                        dest,
                        payload: payload.as_bytes().to_vec(),
                        bind: bind.map(|b| b.ip()),
                        bind_port: bind.map_or(0, |b| b.port()),
                        timeout: secs(WHAT, "timeout", o.timeout, 5.0)?,
                        max_reply: o.max_reply.map_or(65535, |m| m.0.min(65535)),
                    })
                })();
                async move {
                    g?;
                    Ok(match prim::udp::request(parsed?).await {
                        Ok(prim::udp::Outcome::Reply { data, truncated }) => Ret::Ok(table_of(
                            &lua,
                            &UdpRes {
                                reply: Some(LuaBytes(&data)),
                                truncated: Some(truncated),
                                timed_out: false,
                            },
                        )?),
                        Ok(prim::udp::Outcome::Silence) => Ret::Ok(table_of(
                            &lua,
                            &UdpRes {
                                reply: None,
                                truncated: None,
                                timed_out: true,
                            },
                        )?),
                        Err(e) => Ret::fail(e),
                    })
                }
            },
        )?,
    )?;
    lb.set("udp", udp)
}

/// `lb.icmp.echo(ip, opts)` options.
#[derive(Default, Deserialize)]
#[serde(default)]
struct IcmpOpts {
    timeout: Option<Num>,
    bind: Option<Text>,
    size: Option<Int<usize>>,
    socket: Option<Text>,
}

#[derive(Serialize)]
struct IcmpRes {
    rtt: f64,
    raw: bool,
}

/// `lb.icmp.echo(ip, opts)`: one ICMP/ICMPv6 echo and its reply.
fn icmp(lua: &Lua, lb: &Table) -> Result<()> {
    const WHAT: &str = "lb.icmp.echo";
    let icmp = lua.create_table()?;
    icmp.set(
        "echo",
        lua.create_async_function(|lua, (host, o): (String, Value)| {
            let g = task_only(&lua, WHAT);
            let parsed = (|| -> Result<prim::icmp::Echo> {
                let o: IcmpOpts = opts(&lua, WHAT, o)?;
                let mode = match o.socket.as_ref().map(|s| s.0.as_str()) {
                    None | Some("auto") => prim::icmp::Mode::Auto,
                    Some("datagram") => prim::icmp::Mode::Datagram,
                    Some("raw") => prim::icmp::Mode::Raw,
                    Some(other) => {
                        return err(format!("{WHAT}: socket {other:?} (auto, datagram, raw)"))
                    }
                };
                Ok(prim::icmp::Echo {
                    dest: ip(&host, WHAT)?,
                    bind: opt_ip(o.bind, "lb.icmp.echo bind")?,
                    timeout: secs(WHAT, "timeout", o.timeout, 5.0)?,
                    // An IPv4 datagram's limit less the IP and ICMP headers.
                    payload_len: o.size.map_or(56, |n| n.0.min(65507)),
                    mode,
                })
            })();
            async move {
                g?;
                Ok(match prim::icmp::echo(parsed?).await {
                    Ok(r) => Ret::Ok(table_of(
                        &lua,
                        &IcmpRes {
                            rtt: r.rtt.as_secs_f64(),
                            raw: r.raw,
                        },
                    )?),
                    Err(e) => Ret::fail(e),
                })
            }
        })?,
    )?;
    lb.set("icmp", icmp)
}
