//! The plugin host with real plugin files: containment of runaway,
//! allocating and failing plugins, the sandbox, contexts, loading rules,
//! notify order, and the primitives against real local servers and programs.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use lbd_plugin::{CheckOutcome, Event, EventKind, Host, HostConfig, Options, Target};

mod common;
use common::run_check;

fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lbd-plugin-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(d: &Path, name: &str, body: &str) -> PathBuf {
    let p = d.join(name);
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    p
}

fn cfg(dirs: Vec<PathBuf>) -> HostConfig {
    HostConfig {
        builtin: &[],
        dirs,
        memory_limit: 16 << 20,
        cpu_slice: Duration::from_millis(100),
        require_root_owned: false,
        script_user: None,
    }
}

fn target() -> Target {
    Target {
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 80,
        vs: None,
        weight: None,
    }
}

fn check_plugin(name: &str, body: &str) -> String {
    format!("lb.check(\"{name}\", {{ run = function(target, opt)\n{body}\nend }})\n")
}

async fn run(h: &Host, name: &str) -> CheckOutcome {
    run_check(h, name, target(), Options::new(), Duration::from_secs(10)).await
}

#[tokio::test]
async fn runaway_allocating_and_failing_plugins_are_stopped_and_the_rest_carries_on() {
    let d = dir("contain");
    write(&d, "spin.lua", &check_plugin("spin", "while true do end"));
    write(
        &d,
        "spin_pcall.lua",
        &check_plugin(
            "spin_pcall",
            "while true do pcall(function() while true do end end) end",
        ),
    );
    write(
        &d,
        "spin_co.lua",
        &check_plugin(
            "spin_co",
            "local f = coroutine.wrap(function() while true do end end) f()",
        ),
    );
    write(
        &d,
        "spin_resume.lua",
        &check_plugin(
            "spin_resume",
            "local co = coroutine.create(function() while true do end end)\nwhile true do coroutine.resume(co) end",
        ),
    );
    write(
        &d,
        "hog.lua",
        &check_plugin(
            "hog",
            "local t = {} while true do t[#t + 1] = string.rep('x', 1048576) .. #t end",
        ),
    );
    write(
        &d,
        "hog_pcall.lua",
        &check_plugin(
            "hog_pcall",
            "while true do pcall(function() local t = {} while true do t[#t + 1] = string.rep('y', 1048576) .. #t end end) end",
        ),
    );
    write(
        &d,
        "raises.lua",
        &check_plugin("raises", "error('broken on purpose')"),
    );
    write(
        &d,
        "good.lua",
        &check_plugin("good", "lb.sleep(0.005) return true, 'fine'"),
    );
    let (h, report) = Host::start(cfg(vec![d.clone()])).unwrap();
    assert!(report.refused.is_empty(), "{:?}", report.refused);

    // The good check runs every 100 ms for 3 s while the bad ones keep running.
    let good = {
        let h = h.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let mut runs = 0;
            let mut worst = Duration::ZERO;
            while start.elapsed() < Duration::from_secs(3) {
                let t = Instant::now();
                assert!(run(&h, "good").await.ok);
                worst = worst.max(t.elapsed());
                runs += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (runs, worst)
        })
    };
    let cases = [
        ("spin", "cpu slice exceeded"),
        ("spin_pcall", "cpu slice exceeded"),
        ("spin_co", "cpu slice exceeded"),
        ("spin_resume", "cpu slice exceeded"),
        ("hog", "memory limit"),
        ("hog_pcall", "memory limit"),
        ("raises", "broken on purpose"),
    ];
    let bad_start = Instant::now();
    while bad_start.elapsed() < Duration::from_secs(3) {
        for (name, why) in cases {
            let o = run(&h, name).await;
            assert!(!o.ok, "{name} passed");
            assert!(o.message.contains(why), "{name}: {}", o.message);
            if why != "broken on purpose" {
                assert!(
                    o.message.contains(&format!("plugin {name} stopped")),
                    "{name}: {}",
                    o.message
                );
            }
        }
    }
    let (runs, worst) = good.await.unwrap();
    println!("good check: {runs} runs in 3 s beside the bad plugins, slowest {worst:?}");
    // Unhindered: ~28 runs (100 ms sleep + ~5 ms each); each bad call may
    // hold the plugin thread for one slice (100 ms) at most.
    assert!(runs >= 10, "good check starved: {runs} runs");
    assert!(
        worst < Duration::from_secs(2),
        "good check waited {worst:?}"
    );
    let stats = h.stats().await;
    for (name, _) in &cases[..4] {
        assert!(stats[*name].stopped_cpu >= 1, "{name}: {:?}", stats[*name]);
    }
    assert!(stats["hog"].stopped_memory >= 1, "{:?}", stats["hog"]);
    assert!(
        stats["hog_pcall"].stopped_memory >= 1,
        "{:?}",
        stats["hog_pcall"]
    );
    assert!(stats["raises"].errors >= 1);
    assert_eq!(stats["good"].failures, 0);
}

#[tokio::test]
async fn many_short_awaits_are_not_a_runaway() {
    let d = dir("awaits");
    write(
        &d,
        "busy.lua",
        &check_plugin(
            "busy",
            "local n = 0 for i = 1, 200 do for j = 1, 20000 do n = n + j end lb.sleep(0.001) end return true, tostring(n)",
        ),
    );
    let (h, _) = Host::start(cfg(vec![d])).unwrap();
    let t = Instant::now();
    let o = run(&h, "busy").await;
    assert!(o.ok, "{}", o.message);
    // The whole call is far longer than one slice; no single slice is.
    assert!(t.elapsed() > Duration::from_millis(200));
}

#[tokio::test]
async fn sandbox_hides_unsafe_functions_and_plugins_from_each_other() {
    let d = dir("sandbox");
    write(
        &d,
        "probe.lua",
        &check_plugin(
            "probe",
            r#"
  local found = {}
  for _, n in ipairs({ "io", "os", "debug", "require", "dofile", "loadfile", "package" }) do
    if _G[n] ~= nil then found[#found + 1] = n end
  end
  if string.dump ~= nil then found[#found + 1] = "string.dump" end
  local ok = pcall(load, "\27Lua", "x", "b")
  if ok then found[#found + 1] = "bytecode load" end
  if other_global ~= nil then found[#found + 1] = "other plugin's global" end
  if load("return 1 + 1")() ~= 2 then found[#found + 1] = "text load broken" end
  return #found == 0, table.concat(found, " ")"#,
        ),
    );
    write(
        &d,
        "other.lua",
        &format!("other_global = 1\n{}", check_plugin("other", "return true")),
    );
    let (h, _) = Host::start(cfg(vec![d])).unwrap();
    let o = run(&h, "probe").await;
    assert!(o.ok, "sandbox leaks: {}", o.message);
}

#[tokio::test]
async fn contexts_body_task_and_plugin_coroutines() {
    let d = dir("contexts");
    write(&d, "body_io.lua", "lb.sleep(1)\n");
    write(
        &d,
        "late_reg.lua",
        &check_plugin(
            "late_reg",
            "lb.check('x', { run = function() end }) return true",
        ),
    );
    write(
        &d,
        "in_co.lua",
        &check_plugin(
            "in_co",
            "local co = coroutine.create(function() return lb.sleep(0.01) end)\nlocal ok, e = coroutine.resume(co)\nreturn false, tostring(e)",
        ),
    );
    let (h, report) = Host::start(cfg(vec![d.clone()])).unwrap();
    let body = report
        .refused
        .iter()
        .find(|r| r.contains("body_io.lua"))
        .expect("body_io refused");
    assert!(
        body.contains("lb.sleep: not allowed in the file body"),
        "{body}"
    );
    let o = run(&h, "late_reg").await;
    assert!(
        o.message
            .contains("lb.check: only allowed in the file body"),
        "{}",
        o.message
    );
    let o = run(&h, "in_co").await;
    assert!(
        o.message
            .contains("lb.sleep: not allowed inside a plugin coroutine"),
        "{}",
        o.message
    );
}

#[tokio::test]
async fn loading_override_permissions_errors_and_duplicates() {
    let bundled = dir("load-bundled");
    let ops = dir("load-ops");
    write(
        &bundled,
        "probe.lua",
        &check_plugin("probe", "return true, 'bundled'"),
    );
    let over = write(
        &ops,
        "probe.lua",
        &check_plugin("probe", "return true, 'operator'"),
    );
    let loose = write(&ops, "loose.lua", &check_plugin("loose", "return true"));
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o664)).unwrap();
    let broken = write(&ops, "broken.lua", "-- one\n\nlb.check(\"broken\", {\n");
    write(&ops, "twice.lua", &check_plugin("probe", "return true"));
    let (h, report) = Host::start(cfg(vec![bundled.clone(), ops.clone()])).unwrap();
    let o = run(&h, "probe").await;
    assert_eq!(o.message, "operator");
    let p = report
        .loaded
        .iter()
        .find(|p| p.path == over)
        .expect("override loaded");
    assert_eq!(
        p.overrides.as_deref(),
        Some(bundled.join("probe.lua").as_path())
    );
    let refused = report.refused.join("\n");
    assert!(
        refused.contains(&format!(
            "{}: refused: writable by group or others",
            loose.display()
        )),
        "{refused}"
    );
    assert!(
        refused.contains(&format!("{}:4:", broken.display())),
        "{refused}"
    );
    assert!(
        refused.contains("check probe is already registered by"),
        "{refused}"
    );
    assert!(!h.has_check("loose") && !h.has_check("broken"));
}

#[tokio::test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root: the lab tier runs it (--features lab)"
)]
async fn not_root_owned_is_refused_when_required() {
    common::require(common::is_root(), "root (to chown the plugin file)");
    let d = dir("owner");
    let p = write(&d, "mine.lua", &check_plugin("mine", "return true"));
    std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
    let mut c = cfg(vec![d]);
    c.require_root_owned = true;
    let (h, report) = Host::start(c).unwrap();
    assert!(!h.has_check("mine"));
    assert!(
        report.refused.iter().any(|r| r.contains("not root")),
        "{:?}",
        report.refused
    );
}

#[tokio::test]
async fn notify_delivers_a_burst_in_order() {
    let d = dir("notify");
    let out = d.join("events.txt");
    write(
        &d,
        "record.lua",
        "lb.notify(\"record\", { event = function(ev, opt)\n  if ev.seq % 97 == 0 then lb.sleep(0.002) end\n  lb.fs.append(opt.path, ev.seq .. ' ' .. ev.kind .. ' ' .. ev.name .. ' ' .. ev.state .. '\\n')\nend })\n",
    );
    let (h, _) = Host::start(cfg(vec![d.clone()])).unwrap();
    let mut o = Options::new();
    o.insert("path".into(), out.display().to_string().into());
    let n = h.notifier("record", o);
    for seq in 1..=1000u64 {
        n.send(Event {
            seq,
            time: SystemTime::now(),
            kind: EventKind::Instance,
            name: "VI_1".into(),
            state: if seq % 2 == 0 { "MASTER" } else { "BACKUP" }.into(),
            prev: None,
            priority: Some(100),
            vs: None,
        });
    }
    drop(n);
    h.shutdown(Duration::from_secs(30)).await;
    let text = std::fs::read_to_string(&out).unwrap();
    let seqs: Vec<u64> = text
        .lines()
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(seqs, (1..=1000).collect::<Vec<_>>());
    assert!(text
        .lines()
        .next()
        .unwrap()
        .ends_with("INSTANCE VI_1 BACKUP"));
}

#[tokio::test]
async fn exec_http_tcp_dns_and_proc_primitives() {
    let d = dir("prims");
    // A real HTTP server on loopback.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten().take(3) {
            let mut s = s;
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let body = if req.starts_with("GET /health") {
                "healthy"
            } else {
                "nope"
            };
            let status = if body == "healthy" {
                "200 OK"
            } else {
                "503 Busy"
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nX-Test: yes\r\n\r\n{body}",
                body.len()
            );
        }
    });
    write(
        &d,
        "prims.lua",
        &check_plugin(
            "prims",
            r#"
  local out = {}
  local r = lb.exec({ "sh", "-c", "echo hi; exit 3" }, { timeout = 5 })
  out[#out + 1] = "exec " .. r.code .. " " .. r.stdout
  local t0 = lb.now()
  r = lb.exec({ "sh", "-c", "sleep 30 & sleep 30" }, { timeout = 0.3 })
  out[#out + 1] = "timeout " .. tostring(r.timed_out) .. " " .. tostring(lb.now() - t0 < 5)
  local _, err = lb.exec({ "/nonexistent/prog" })
  out[#out + 1] = "missing " .. tostring(err ~= nil)
  local res = lb.http.get(target.ip, opt.port, "/health", { timeout = 5 })
  out[#out + 1] = "http " .. res.status .. " " .. res.body .. " " .. res.headers["x-test"]
  res = lb.http.request({ ip = target.ip, port = opt.port, path = "/other" })
  out[#out + 1] = "http " .. res.status
  local c, cerr = lb.tcp.connect(target.ip, 1, { timeout = 2 })
  out[#out + 1] = "refused " .. tostring(c == nil and cerr ~= nil)
  out[#out + 1] = "md5 " .. lb.md5("abc")
  out[#out + 1] = "regex " .. tostring(lb.regex.find("^he+llo$", "heeello"))
  out[#out + 1] = "json " .. lb.json.encode(lb.json.decode('{"a":[1,2]}'))
  local pids = lb.proc.find("cargo") or {}
  return true, table.concat(out, "|")"#,
        ),
    );
    let (h, _) = Host::start(cfg(vec![d])).unwrap();
    let mut o = Options::new();
    o.insert("port".into(), port.into());
    let out = run_check(&h, "prims", target(), o, Duration::from_secs(20)).await;
    assert!(out.ok, "{}", out.message);
    let parts: Vec<&str> = out.message.split('|').collect();
    assert_eq!(parts[0], "exec 3 hi\n");
    assert_eq!(parts[1], "timeout true true");
    assert_eq!(parts[2], "missing true");
    assert_eq!(parts[3], "http 200 healthy yes");
    assert_eq!(parts[4], "http 503");
    assert_eq!(parts[5], "refused true");
    assert_eq!(parts[6], "md5 900150983cd24fb0d6963f7d28e17f72");
    assert_eq!(parts[7], "regex true");
    assert_eq!(parts[8], r#"json {"a":[1,2]}"#);
}

#[tokio::test]
async fn http_over_a_unix_socket() {
    let d = dir("unix");
    let sock = d.join("api.sock");
    let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || {
        if let Some(Ok(mut s)) = l.incoming().next() {
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let body = if req.starts_with("GET /containers/json ") {
                "[{\"Id\":\"abc\"}]"
            } else {
                "[]"
            };
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    write(
        &d,
        "docker.lua",
        &check_plugin(
            "docker",
            "local r, e = lb.http.request({ unix = opt.sock, path = '/containers/json' })\nif not r then return false, e end\nreturn true, lb.json.decode(r.body)[1].Id",
        ),
    );
    let (h, _) = Host::start(cfg(vec![d])).unwrap();
    let mut o = Options::new();
    o.insert("sock".into(), sock.display().to_string().into());
    let out = run_check(&h, "docker", target(), o, Duration::from_secs(10)).await;
    assert!(out.ok, "{}", out.message);
    assert_eq!(out.message, "abc");
}

/// The daemon's way: a job on the plugin thread runs a bound checker again
/// and again (the same argument tables each time, rebuilt with the state
/// after a stop), and ends when its guard is dropped.
#[tokio::test]
async fn jobs_run_checkers_on_the_plugin_thread_until_dropped() {
    let d = dir("jobs");
    // Counts its runs in a global; the third run loops forever (stopped
    // for CPU), which rebuilds the state: the count starts again. `opt.seen`
    // shows the option table is the same between runs of one state.
    write(
        &d,
        "count.lua",
        &check_plugin(
            "count",
            "n = (n or 0) + 1\n\
             if n == 3 then while true do end end\n\
             local same = opt.seen == true\n\
             opt.seen = true\n\
             return true, tostring(n) .. (same and ' same' or ' fresh')",
        ),
    );
    let (h, report) = Host::start(cfg(vec![d])).unwrap();
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let guard = h.spawn(Box::new(move |local| {
        Box::pin(async move {
            let mut ck = local.checker("count", target(), Options::new());
            loop {
                let out = ck.run(Duration::from_secs(5)).await;
                if tx.send(out).is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    }));
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let out = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a result within 10 s")
            .expect("the job is running");
        seen.push((out.ok, out.message));
    }
    assert_eq!(seen[0], (true, "1 fresh".into()));
    assert_eq!(seen[1], (true, "2 same".into()));
    assert!(!seen[2].0 && seen[2].1.contains("cpu slice"), "{seen:?}");
    // A rebuilt state: fresh globals and a fresh option table.
    assert_eq!(seen[3], (true, "1 fresh".into()));
    assert_eq!(seen[4], (true, "2 same".into()));
    drop(guard);
    // The job ends: its sender goes and the channel closes.
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while rx.recv().await.is_some() {}
    })
    .await;
    assert!(
        end.is_ok(),
        "the job still runs after its guard was dropped"
    );
    let stats = h.stats().await;
    // Every rebuilt state loops on its third run again.
    assert!(stats["count"].stopped_cpu >= 1);
    assert!(stats["count"].memory > 0);
}

#[tokio::test]
async fn check_starts_share_one_grid() {
    let grid = lbd_plugin::START_GRID;
    // Starts are computed from the coarse clock: within a tick (<= 4 ms).
    let tick = Duration::from_millis(4);
    let before = tokio::time::Instant::now();
    let a = lbd_plugin::next_start(Duration::from_millis(1234));
    let b = lbd_plugin::next_start(Duration::from_millis(777));
    let after = tokio::time::Instant::now();
    assert!(a + tick >= before + Duration::from_millis(1234));
    assert!(a <= after + Duration::from_millis(1234) + grid + tick);
    assert!(b + tick >= before + Duration::from_millis(777));
    assert!(b <= after + Duration::from_millis(777) + grid + tick);
    // On the same grid: their distance is a whole number of slots.
    let d = a.duration_since(b).as_nanos();
    assert_eq!(d % grid.as_nanos(), 0, "{d} ns apart");
}

/// keepalived's per-script `user USER [GROUP]`: lb.exec runs the program
/// with that uid and gid (needs root, as lbd does to switch users).
#[tokio::test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "needs root: the lab tier runs it (--features lab)"
)]
async fn exec_as_another_user() {
    common::require(common::is_root(), "root (to switch users)");
    let d = dir("exec-user");
    write(
        &d,
        "who.lua",
        &check_plugin(
            "who",
            r#"
  local r, err = lb.exec({ "id", "-u" }, { user = opt.user })
  if not r then return false, err end
  local g = lb.exec({ "id", "-g" }, { user = opt.user })
  local groups = lb.exec({ "id", "-G" }, { user = opt.user })
  return true, r.stdout:gsub("%s+$", "") .. " " .. g.stdout:gsub("%s+$", "") .. " " .. groups.stdout:gsub("%s+$", "")"#,
        ),
    );
    let (h, _) = Host::start(cfg(vec![d])).unwrap();
    let run = |user: &str| {
        let mut o = Options::new();
        o.insert("user".into(), user.into());
        let h = h.clone();
        async move { run_check(&h, "who", target(), o, Duration::from_secs(10)).await }
    };
    let nobody = run("nobody").await;
    assert!(nobody.ok, "{}", nobody.message);
    assert_eq!(nobody.message, "65534 65534 65534");
    let with_group = run("nobody:root").await;
    assert!(with_group.ok, "{}", with_group.message);
    assert_eq!(with_group.message, "65534 0 0");
    let numeric = run("4242:4343").await;
    assert_eq!(numeric.message, "4242 4343 4343");
    let missing = run("no-such-user-here").await;
    assert!(
        !missing.ok && missing.message.contains("no-such-user-here: no such user"),
        "{}",
        missing.message
    );
}

/// Plugins compiled into the binary load without any directory, and a
/// file of the same name replaces one (reported as overriding it).
#[tokio::test]
async fn builtin_plugins_and_their_override() {
    static BUILTIN: &[(&str, &str)] = &[(
        "checks/answer.lua",
        "lb.check(\"answer\", { run = function() return true, \"built in\" end })\n",
    )];
    let mut c = cfg(vec![]);
    c.builtin = BUILTIN;
    let (h, report) = Host::start(c).unwrap();
    assert_eq!(
        report.loaded[0].path,
        PathBuf::from("(built in)/checks/answer.lua")
    );
    let out = run_check(
        &h,
        "answer",
        target(),
        Options::new(),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!((out.ok, out.message.as_str()), (true, "built in"));

    let d = dir("builtin-override");
    write(
        &d,
        "answer.lua",
        &check_plugin("answer", "return true, \"from the file\""),
    );
    let mut c = cfg(vec![d.clone()]);
    c.builtin = BUILTIN;
    let (h, report) = Host::start(c).unwrap();
    assert_eq!(report.loaded.len(), 1);
    assert_eq!(report.loaded[0].path, d.join("answer.lua"));
    assert_eq!(
        report.loaded[0].overrides,
        Some(PathBuf::from("(built in)/checks/answer.lua"))
    );
    let out = run_check(
        &h,
        "answer",
        target(),
        Options::new(),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(out.message, "from the file");
}

/// Option tables are decoded field by field: an ill-typed field raises an
/// error naming the function and the field; Lua's own coercions (a numeric
/// string is a number, a number a string) still hold; an unknown field is
/// ignored (and logged), as plugins pass their own option tables on.
#[tokio::test]
async fn option_errors_name_the_function_and_the_field() {
    let d = dir("opts");
    write(
        &d,
        "opts.lua",
        &check_plugin(
            "opts",
            r#"
  local out = {}
  local function try(f, ...)
    local ok, e = pcall(f, ...)
    out[#out + 1] = ok and "ok" or tostring(e)
  end
  try(lb.tcp.connect, target.ip, 1, { timeout = "soon" })
  try(lb.http.request, { ip = target.ip, port = 70000 })
  try(lb.exec, { "true" }, { env = { A = {} } })
  try(lb.dns.query, target.ip, "x.test", "A", 5)
  try(lb.http.request, { ip = target.ip, port = 1, tls = "yes" })
  local r = lb.exec({ "sh", "-c", "echo $N" }, { timeout = "5", env = { N = 42 }, timout = 1 })
  out[#out + 1] = "coerced " .. r.stdout
  return true, table.concat(out, "|")"#,
        ),
    );
    let (h, report) = Host::start(cfg(vec![d])).unwrap();
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    let out = run(&h, "opts").await;
    assert!(out.ok, "{}", out.message);
    let parts: Vec<&str> = out.message.split('|').collect();
    assert_eq!(parts.len(), 6, "{}", out.message);
    assert!(
        parts[0].contains(
            "lb.tcp.connect: option `timeout`: invalid value: string \"soon\", expected a number"
        ),
        "{}",
        parts[0]
    );
    assert!(
        parts[1].contains("lb.http.request: option `port`: invalid value: integer `70000`"),
        "{}",
        parts[1]
    );
    assert!(
        parts[2].contains("lb.exec: option `env.A`: invalid type: map, expected a string"),
        "{}",
        parts[2]
    );
    assert!(
        parts[3].contains("lb.dns.query: options must be a table, not integer"),
        "{}",
        parts[3]
    );
    assert!(
        parts[4].contains(
            "lb.http.request: option `tls`: invalid type: string \"yes\", expected a boolean"
        ),
        "{}",
        parts[4]
    );
    assert_eq!(parts[5], "coerced 42\n");
}

#[tokio::test]
async fn reload_rereads_files_and_keeps_a_plugin_whose_new_file_breaks() {
    let ops = dir("reload");
    write(
        &ops,
        "probe.lua",
        &check_plugin("probe", "return true, 'v1'"),
    );
    let (mut h, _) = Host::start(cfg(vec![ops.clone()])).unwrap();
    assert_eq!(run(&h, "probe").await.message, "v1");

    write(
        &ops,
        "probe.lua",
        &check_plugin("probe", "return true, 'v2'"),
    );
    write(
        &ops,
        "fresh.lua",
        &check_plugin("fresh", "return true, 'new'"),
    );
    let r = h.reload().await.unwrap();
    assert!(r.kept.is_empty(), "{:?}", r.kept);
    assert_eq!(run(&h, "probe").await.message, "v2");
    assert!(h.has_check("fresh"));
    assert_eq!(run(&h, "fresh").await.message, "new");

    // A syntax error: the running v2 carries on, and the report says so.
    write(&ops, "probe.lua", "lb.check(\"probe\", {\n");
    let r = h.reload().await.unwrap();
    assert!(
        r.kept
            .iter()
            .any(|(n, k)| n == "probe" && k.contains("keeping the running version")),
        "{:?}",
        r.kept
    );
    assert!(h.has_check("probe"));
    assert_eq!(run(&h, "probe").await.message, "v2");
    // Removed from disk: gone after the next reload.
    std::fs::remove_file(ops.join("fresh.lua")).unwrap();
    h.reload().await.unwrap();
    assert!(!h.has_check("fresh"));
}
