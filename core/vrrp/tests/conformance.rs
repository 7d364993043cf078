//! Replay conformance (holo-vrrp's shape): every directory under
//! `tests/conformance/` is one case with
//! - `config.json`: the router (sockets, instances, sync groups);
//! - `input.jsonl`: one input per line at `t_ms` after the start:
//!   `startup`, `shutdown`, `timeout`, `tracking` (instance, fault, adjust)
//!   or `datagram` (socket, `hex` bytes as the socket delivers them, and for
//!   IPv6 `src`/`dst`/`hop_limit`). A datagram line also carries `build`, the
//!   advert the hex was encoded from, to read it by;
//! - `output.jsonl`: after each input, every transmit (hex bytes and
//!   destination), every event, and the next timeout, in order.
//!
//! `LBD_BLESS=1 cargo test -p lbd-vrrp --test conformance` fills in the hex
//! of datagram lines that have only `build` and rewrites `output.jsonl`;
//! review the diff before committing it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lbd_vrrp::auth::AuthKey;
use lbd_vrrp::codec::{self, TxOpts};
use lbd_vrrp::instance::{GarpTiming, InstanceConfig};
use lbd_vrrp::router::{
    Datagram, Event, OldChecksum, Router, RouterInstanceConfig, SocketConfig, Transmit,
};
use lbd_vrrp::{Advert, Version};
use serde_json::{json, Value};

fn ip(v: &Value) -> IpAddr {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an address: {v}"))
}

fn ips(v: Option<&Value>) -> Vec<IpAddr> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().map(ip).collect())
        .unwrap_or_default()
}

fn u(v: &Value, k: &str, default: u64) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(default)
}

fn b(v: &Value, k: &str, default: bool) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(default)
}

fn version(v: &Value) -> Version {
    match u(v, "version", 3) {
        2 => Version::V2,
        _ => Version::V3,
    }
}

fn auth(v: &Value) -> Option<AuthKey> {
    let a = v.get("auth")?;
    if let Some(p) = a.get("pass").and_then(Value::as_str) {
        return Some(AuthKey::pass(p.as_bytes()));
    }
    a.get("ah")
        .and_then(Value::as_str)
        .map(|p| AuthKey::ah(p.as_bytes()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn u8of(v: u64) -> u8 {
    u8::try_from(v).expect("fits a byte")
}

fn build_router(cfg: &Value) -> Router {
    let mut r = Router::new();
    for s in cfg["sockets"].as_array().expect("sockets") {
        r.add_socket(
            usize::try_from(u(s, "id", 0)).unwrap(),
            SocketConfig {
                ipv6: b(s, "ipv6", false),
                unicast: b(s, "unicast", false),
                v3_checksum_as_v2: b(s, "v3_checksum_as_v2", false),
                old_checksum_group: s
                    .get("old_checksum_group")
                    .filter(|v| !v.is_null())
                    .map(|v| match ip(v) {
                        IpAddr::V4(a) => a,
                        IpAddr::V6(a) => panic!("IPv6 group {a}"),
                    }),
            },
        );
    }
    for i in cfg["instances"].as_array().expect("instances") {
        let garp = i.get("garp_repeat").and_then(Value::as_u64).map_or(
            GarpTiming {
                master_delay: Duration::ZERO,
                ..GarpTiming::default()
            },
            |n| GarpTiming {
                master_delay: Duration::ZERO,
                master_repeat: u32::try_from(n).unwrap(),
                ..GarpTiming::default()
            },
        );
        r.add_instance(RouterInstanceConfig {
            name: i["name"].as_str().unwrap_or("vi").to_string(),
            fsm: InstanceConfig {
                vrid: u8of(u(i, "vrid", 1)),
                version: version(i),
                priority: u8of(u(i, "priority", 100)),
                advert_int: Duration::from_millis(u(i, "advert_int_ms", 1000)),
                preempt: b(i, "preempt", true),
                preempt_delay: Duration::from_millis(u(i, "preempt_delay_ms", 0)),
                initial_master: b(i, "initial_master", false),
                primary_addr: ip(&i["primary"]),
                garp,
            },
            socket: usize::try_from(u(i, "socket", 0)).unwrap(),
            dsts: ips(i.get("dsts")),
            advert_addrs: ips(i.get("vips")),
            auth: auth(i),
            v3_checksum_as_v2: b(i, "v3_checksum_as_v2", false),
            check_addrs: b(i, "check_addrs", true),
            unicast_peers: ips(i.get("unicast_peers")),
            check_unicast_src: b(i, "check_unicast_src", false),
            old_checksum: match i.get("old_checksum").and_then(Value::as_str) {
                Some("auto") => OldChecksum::Auto,
                Some("always") => OldChecksum::Always,
                _ => OldChecksum::Never,
            },
            mcast_group4: codec::MCAST_V4,
        })
        .expect("instance");
    }
    if let Some(groups) = cfg.get("sync_groups").and_then(Value::as_array) {
        for g in groups {
            let members: Vec<usize> = g
                .as_array()
                .expect("member list")
                .iter()
                .map(|m| usize::try_from(m.as_u64().expect("member")).unwrap())
                .collect();
            r.add_sync_group(&members).expect("sync group");
        }
    }
    r
}

/// Encodes a `build` description: the advert, then the IP layer fields a
/// test wants wrong (`ttl`, `corrupt_checksum`).
fn encode(bld: &Value) -> Vec<u8> {
    let advert = Advert {
        version: version(bld),
        vrid: u8of(u(bld, "vrid", 1)),
        priority: u8of(u(bld, "priority", 100)),
        interval_cs: u16::try_from(u(bld, "interval_cs", 100)).unwrap(),
        addrs: ips(bld.get("addrs")),
    };
    let mut bytes = match (ip(&bld["src"]), ip(&bld["dst"])) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let tx = TxOpts {
                auth: auth(bld),
                ah_seq: u32::try_from(u(bld, "ah_seq", 1)).unwrap(),
                ip_id: 1,
                ttl: u8of(u(bld, "ttl", 255)),
                v3_checksum_as_v2: b(bld, "v3_checksum_as_v2", false),
                checksum_dst: bld.get("checksum_dst").map(|v| match ip(v) {
                    IpAddr::V4(a) => a,
                    IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
                }),
            };
            codec::encode_ipv4(s, d, &advert, &tx)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => codec::encode_ipv6(s, d, &advert),
        _ => panic!("mixed families in {bld}"),
    };
    if b(bld, "corrupt_checksum", false) {
        let at = bytes.len() - 1;
        bytes[at] ^= 0xff;
    }
    bytes
}

fn state(s: impl std::fmt::Debug) -> String {
    format!("{s:?}")
}

/// A transmit, with the fields a reader checks first read back from the
/// bytes: priority, and for IPv4 the TTL and the AH sequence number.
fn transmit_json(t_ms: u64, t: &Transmit) -> Value {
    let b = &t.bytes;
    let (priority, ttl, ah_seq) = if t.dst.is_ipv4() {
        let ihl = usize::from(b[0] & 0x0f) * 4;
        let ah = b[9] == codec::IPPROTO_AH;
        let off = ihl + if ah { lbd_vrrp::auth::AH_LEN } else { 0 };
        let seq = ah.then(|| u32::from_be_bytes(b[ihl + 8..ihl + 12].try_into().unwrap()));
        (b[off + 2], Some(b[8]), seq)
    } else {
        (b[2], None, None)
    };
    json!({"t_ms": t_ms, "transmit": {
        "instance": t.instance, "socket": t.socket, "dst": t.dst.to_string(),
        "priority": priority, "ttl": ttl, "ah_seq": ah_seq,
        "hex": hex(b),
    }})
}

fn event_json(t_ms: u64, e: &Event) -> Value {
    let ev = match e {
        Event::AddVips { instance } => json!({"add_vips": instance}),
        Event::RemoveVips { instance } => json!({"remove_vips": instance}),
        Event::SendGarp { instance, count } => {
            json!({"send_garp": {"instance": instance, "count": count}})
        }
        Event::StateChange {
            instance,
            from,
            to,
            reason,
            priority,
        } => json!({"state_change": {
            "instance": instance, "from": state(from), "to": state(to),
            "reason": state(reason), "priority": priority,
        }}),
        Event::GroupStateChange { group, from, to } => json!({"group_state_change": {
            "group": group, "from": from.map(state), "to": state(to),
        }}),
        Event::GroupForced {
            group,
            instance,
            input,
        } => json!({"group_forced": {
            "group": group, "instance": instance, "input": state(input),
        }}),
        Event::Accepted { instance, src } => {
            json!({"accepted": {"instance": instance, "src": src.to_string()}})
        }
        Event::Dropped {
            socket,
            instance,
            error,
        } => json!({"dropped": {
            "socket": socket, "instance": instance, "vrid": error.vrid,
            "reason": error.reason.as_str(),
        }}),
        Event::OldChecksumSwitch { instance, peer } => {
            json!({"old_checksum_switch": {"instance": instance, "peer": peer.to_string()}})
        }
        Event::DrainLimit => json!("drain_limit"),
    };
    json!({"t_ms": t_ms, "event": ev})
}

fn lines(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

fn write_lines(path: &Path, v: &[Value]) {
    let mut s = String::new();
    for l in v {
        s.push_str(&serde_json::to_string(l).unwrap());
        s.push('\n');
    }
    fs::write(path, s).unwrap();
}

/// Replays one case; returns the outputs it produced.
fn replay(dir: &Path, bless: bool) -> Vec<Value> {
    let cfg: Value = serde_json::from_str(
        &fs::read_to_string(dir.join("config.json"))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display())),
    )
    .unwrap_or_else(|e| panic!("{}/config.json: {e}", dir.display()));
    let mut router = build_router(&cfg);
    let mut inputs = lines(&dir.join("input.jsonl"));
    let t0 = Instant::now();
    let mut out = Vec::new();
    for line in &mut inputs {
        let t_ms = u(line, "t_ms", 0);
        let now = t0 + Duration::from_millis(t_ms);
        match line["op"].as_str().unwrap_or_default() {
            "startup" => router.startup(now),
            "shutdown" => router.shutdown(now),
            "timeout" => router.handle_timeout(now),
            "tracking" => router.set_tracking(
                now,
                usize::try_from(u(line, "instance", 0)).unwrap(),
                b(line, "fault", false),
                i32::try_from(line.get("adjust").and_then(Value::as_i64).unwrap_or(0)).unwrap(),
            ),
            "datagram" => {
                if line.get("hex").is_none() {
                    assert!(bless, "{}: datagram without hex", dir.display());
                    let bytes = encode(&line["build"]);
                    line["hex"] = json!(hex(&bytes));
                }
                let bytes = unhex(line["hex"].as_str().unwrap());
                let socket = usize::try_from(u(line, "socket", 0)).unwrap();
                let dg = match line.get("src") {
                    Some(src) => {
                        let (IpAddr::V6(s), IpAddr::V6(d)) = (ip(src), ip(&line["dst"])) else {
                            panic!("IPv6 datagram needs IPv6 src/dst: {line}");
                        };
                        Datagram::V6 {
                            payload: &bytes,
                            src: s,
                            dst: d,
                            hop_limit: u8of(u(line, "hop_limit", 255)),
                        }
                    }
                    None => Datagram::V4(&bytes),
                };
                router.handle_datagram(now, socket, dg);
            }
            op => panic!("{}: unknown op {op:?}", dir.display()),
        }
        while let Some(t) = router.poll_transmit() {
            out.push(transmit_json(t_ms, &t));
        }
        while let Some(e) = router.poll_event() {
            out.push(event_json(t_ms, &e));
        }
        let next = router
            .poll_timeout()
            .map(|d| u64::try_from(d.duration_since(t0).as_millis()).unwrap());
        out.push(json!({"t_ms": t_ms, "next_timeout_ms": next}));
    }
    if bless {
        write_lines(&dir.join("input.jsonl"), &inputs);
        write_lines(&dir.join("output.jsonl"), &out);
    }
    out
}

fn case_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("config.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_conformance_case_replays() {
    let bless = std::env::var_os("LBD_BLESS").is_some();
    let dirs = case_dirs();
    assert!(dirs.len() >= 10, "cases found: {}", dirs.len());
    let mut failed = Vec::new();
    for dir in &dirs {
        let got = replay(dir, bless);
        let want = lines(&dir.join("output.jsonl"));
        if got != want {
            let first = got
                .iter()
                .zip(&want)
                .position(|(g, w)| g != w)
                .unwrap_or(got.len().min(want.len()));
            failed.push(format!(
                "{}: output line {} differs\n  got:  {}\n  want: {}",
                dir.display(),
                first + 1,
                got.get(first).map_or("<none>".into(), |v| v.to_string()),
                want.get(first).map_or("<none>".into(), |v| v.to_string()),
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// The cases cover every RFC 9568 §7.1 / RFC 3768 §7.1 receive rule the
/// router applies: removing the last case of a rule fails here.
#[test]
fn cases_cover_every_receive_rule() {
    let mut seen = std::collections::BTreeSet::new();
    for dir in case_dirs() {
        for l in lines(&dir.join("output.jsonl")) {
            if let Some(r) = l["event"]["dropped"]["reason"].as_str() {
                seen.insert(r.to_string());
            }
        }
    }
    for want in [
        "ttl",
        "version",
        "unknown_vrid",
        "checksum",
        "auth_password",
        "auth_type",
        "ah_icv",
        "ah_replay",
        "interval",
        "addr_count",
        "addr_list",
        "own_advert",
    ] {
        assert!(seen.contains(want), "no case drops for {want}: {seen:?}");
    }
}
