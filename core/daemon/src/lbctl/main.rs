//! lbctl: the operator's client of a running lbd, over its control socket
//! (HTTP/1 on a unix socket, see docs/api.md). It holds no logic the
//! daemon lacks: everything but `check` / `convert` is a request to lbd,
//! and those two run lbd's own code (`offline.rs`).
//!
//! Exit status: 0 done; 1 lbd answered with an error (a refused reload,
//! an unknown instance, no IPVS) or a configuration was refused; 2 lbd
//! could not be reached (not running, socket not accessible) or bad usage;
//! `check` also exits 5 when the file loads only with repairs, as `lbd --check`.

#[path = "../offline.rs"]
mod offline;
mod render;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

#[derive(Parser)]
#[command(name = "lbctl", version, about = "Control a running lbd")]
struct Cli {
    /// lbd's control socket.
    #[arg(long, global = true, default_value = "/run/lbd/lbd.sock")]
    socket: PathBuf,
    /// Seconds to wait for lbd's answer (0: no limit); `events -f` is not limited.
    #[arg(long, global = true, default_value_t = 60)]
    timeout: u64,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Instances, sync groups, virtual servers and plugins.
    Status {
        /// The API's JSON as is.
        #[arg(long)]
        json: bool,
    },
    /// The event log (transitions, check flips, reloads, ...).
    Events {
        /// Keep printing new events until interrupted.
        #[arg(short, long)]
        follow: bool,
        /// Only events after this sequence number.
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// One JSON object per line, as the API sends them.
        #[arg(long)]
        json: bool,
    },
    /// Read the configuration again; exit 1 with the reason when refused.
    Reload,
    /// The kernel's IPVS table with lbd's ownership and health.
    Ipvs {
        #[arg(long)]
        json: bool,
    },
    /// Validate a configuration file (as `lbd --check`).
    Check {
        file: PathBuf,
        /// keepalived `@ID` lines to select (default: the short hostname).
        #[arg(short = 'i', long)]
        config_id: Option<String>,
    },
    /// Print a configuration file as lbd TOML (as `lbd --convert`).
    Convert {
        file: PathBuf,
        #[arg(short = 'i', long)]
        config_id: Option<String>,
    },
    /// Put an instance in maintenance: it gives up mastership.
    Demote { name: String },
    /// End an instance's maintenance.
    Promote { name: String },
    /// The Prometheus metrics text.
    Metrics,
}

/// Why lbctl stops, and its exit status.
enum Stop {
    /// lbd answered with an error, or a file was refused (1).
    Failed(String),
    /// lbd could not be reached (2).
    Unreachable(String),
}

type Outcome = Result<u8, Stop>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Check { file, config_id } => check(&file, config_id),
        Cmd::Convert { file, config_id } => convert(&file, config_id),
        cmd => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(limited(&cli.socket, cli.timeout, cmd)),
            Err(e) => Err(Stop::Failed(format!("starting the runtime: {e}"))),
        },
    };
    match r {
        Ok(code) => ExitCode::from(code),
        Err(Stop::Failed(m)) => {
            eprintln!("lbctl: {m}");
            ExitCode::from(1)
        }
        Err(Stop::Unreachable(m)) => {
            eprintln!("lbctl: {m}");
            ExitCode::from(2)
        }
    }
}

fn load(file: &Path, config_id: Option<String>) -> Result<lbd_config::Loaded, Stop> {
    offline::load(file, offline::config_id(config_id.as_deref()))
        .map_err(|e| Stop::Failed(format!("{e:#}")))
}

fn check(file: &Path, config_id: Option<String>) -> Outcome {
    let loaded = load(file, config_id)?;
    Ok(offline::check(file, &loaded, &mut std::io::stdout().lock()))
}

fn convert(file: &Path, config_id: Option<String>) -> Outcome {
    let loaded = load(file, config_id)?;
    offline::convert(
        "lbctl",
        &loaded,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr(),
    )
    .map_err(|e| Stop::Failed(format!("{e:#}")))?;
    Ok(0)
}

/// One line an operator can act on, from a failed connect.
fn connect_error(sock: &Path, e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let p = sock.display();
    match e.kind() {
        K::NotFound => format!("lbd is not running (no control socket at {p}; see --socket)"),
        K::ConnectionRefused => format!("lbd is not running (nothing listens on {p})"),
        K::PermissionDenied => format!(
            "permission denied on {p}: lbd's control socket is root's only (run lbctl as root)"
        ),
        _ => format!("cannot connect to lbd at {p}: {e}"),
    }
}

struct Client {
    sock: PathBuf,
}

impl Client {
    async fn send(&self, method: Method, path: &str) -> Result<Response<Incoming>, Stop> {
        let lost = |e: hyper::Error| {
            Stop::Unreachable(format!(
                "lost the connection to lbd at {}: {e}",
                self.sock.display()
            ))
        };
        let stream = tokio::net::UnixStream::connect(&self.sock)
            .await
            .map_err(|e| Stop::Unreachable(connect_error(&self.sock, &e)))?;
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(lost)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "lbd")
            .body(Empty::<Bytes>::new())
            .map_err(|e| Stop::Failed(format!("building the request for {path}: {e}")))?;
        tx.send_request(req).await.map_err(lost)
    }

    /// The whole answer: status and body text.
    async fn call(&self, method: Method, path: &str) -> Result<(StatusCode, String), Stop> {
        let resp = self.send(method, path).await?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Stop::Unreachable(format!("reading lbd's answer to {path}: {e}")))?;
        Ok((
            status,
            String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        ))
    }

    /// A JSON answer; an HTTP error becomes `Failed` with its `error` text.
    async fn json(&self, method: Method, path: &str) -> Result<Value, Stop> {
        let (status, text) = self.call(method, path).await?;
        let v: Option<Value> = serde_json::from_str(&text).ok();
        if !status.is_success() {
            let msg = v
                .as_ref()
                .and_then(|v| v["error"].as_str())
                .map_or_else(|| format!("{status}: {}", text.trim()), str::to_string);
            return Err(Stop::Failed(msg));
        }
        v.ok_or_else(|| Stop::Failed(format!("{path}: lbd's answer is not JSON")))
    }
}

/// A path segment: every byte but RFC 3986's unreserved ones as `%XX`.
fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `remote` within `secs`: a stuck lbd is reported, not waited for forever.
async fn limited(sock: &Path, secs: u64, cmd: Cmd) -> Outcome {
    let follow = matches!(cmd, Cmd::Events { follow: true, .. });
    if secs == 0 || follow {
        return remote(sock, cmd).await;
    }
    tokio::time::timeout(std::time::Duration::from_secs(secs), remote(sock, cmd))
        .await
        .unwrap_or_else(|_| {
            Err(Stop::Unreachable(format!(
                "lbd did not answer within {secs} s (see its log; --timeout changes the wait)"
            )))
        })
}

/// A JSON answer as JSON (`--json`) or as the readable table.
fn show(
    out: &mut impl Write,
    v: &serde_json::Value,
    json: bool,
    table: fn(&serde_json::Value) -> String,
) {
    let text = if json {
        format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default())
    } else {
        table(v)
    };
    // A closed pipe (`lbctl status | head`) is not an error worth a line.
    let _ = out.write_all(text.as_bytes());
}

async fn remote(sock: &Path, cmd: Cmd) -> Outcome {
    let c = Client { sock: sock.into() };
    let mut out = std::io::stdout().lock();
    match cmd {
        Cmd::Status { json } => {
            let v = c.json(Method::GET, "/status").await?;
            show(&mut out, &v, json, render::status);
        }
        Cmd::Ipvs { json } => {
            let v = c.json(Method::GET, "/ipvs").await?;
            show(&mut out, &v, json, render::ipvs);
        }
        Cmd::Reload => match c.json(Method::POST, "/reload").await {
            Ok(v) => {
                let _ = writeln!(out, "reload applied (event {})", v["event"]);
            }
            Err(Stop::Failed(m)) => return Err(Stop::Failed(format!("reload refused: {m}"))),
            Err(e) => return Err(e),
        },
        Cmd::Demote { name } => {
            c.json(Method::POST, &format!("/instance/{}/demote", escape(&name)))
                .await?;
            let _ = writeln!(out, "{name} demoted");
        }
        Cmd::Promote { name } => {
            c.json(
                Method::POST,
                &format!("/instance/{}/promote", escape(&name)),
            )
            .await?;
            let _ = writeln!(out, "{name} promoted");
        }
        Cmd::Metrics => {
            let (status, text) = c.call(Method::GET, "/metrics").await?;
            if !status.is_success() {
                return Err(Stop::Failed(format!("{status}: {}", text.trim())));
            }
            let _ = write!(out, "{text}");
        }
        Cmd::Events {
            follow,
            since,
            json,
        } => {
            drop(out);
            return events(&c, since, follow, json).await;
        }
        Cmd::Check { .. } | Cmd::Convert { .. } => {}
    }
    Ok(0)
}

/// Prints the events after `since`; with `follow`, new ones as they come,
/// until lbd stops or lbctl is interrupted.
async fn events(c: &Client, since: u64, follow: bool, json: bool) -> Outcome {
    let path = format!(
        "/events?since={since}{}",
        if follow { "&follow=1" } else { "" }
    );
    let resp = c.send(Method::GET, &path).await?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let v: Option<Value> = serde_json::from_slice(&body).ok();
        return Err(Stop::Failed(
            v.as_ref()
                .and_then(|v| v["error"].as_str())
                .map_or_else(|| status.to_string(), str::to_string),
        ));
    }
    let mut body = resp.into_body();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| Stop::Unreachable(format!("reading events from lbd: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        pending.extend_from_slice(&data);
        while let Some(n) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=n).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end();
            let mut out = std::io::stdout().lock();
            let ok = if json {
                writeln!(out, "{line}")
            } else {
                match serde_json::from_str::<Value>(line) {
                    Ok(v) if v.get("gap").is_some() => {
                        eprintln!(
                            "lbctl: {} event(s) after {} are no longer held by lbd",
                            v["gap"]["missed"], v["gap"]["after"]
                        );
                        Ok(())
                    }
                    Ok(v) => writeln!(out, "{}", render::event(&v)),
                    Err(_) => writeln!(out, "{line}"),
                }
            };
            // A closed pipe (`lbctl events -f | head`) ends lbctl quietly.
            if ok.and_then(|()| out.flush()).is_err() {
                return Ok(0);
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn instance_names_are_escaped() {
        assert_eq!(super::escape("VI_1"), "VI_1");
        assert_eq!(super::escape("VI 1/x%"), "VI%201%2Fx%25");
    }
}
