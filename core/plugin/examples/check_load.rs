//! Check load on the plugin host alone (no VRRP, no IPVS): N targets on
//! 10.200.0.0/16 port 8080 checked by a check plugin every second, as the
//! daemon schedules them. Prints the checks done, the failures and the
//! process's CPU over the window. A profiling aid for `scripts/bench --part
//! checks`; run it in a namespace with `ip route add local 10.200.0.0/16
//! dev lo` and an HTTP responder on port 8080.
//!
//! usage: check_load PLUGIN_DIR [N] [SECONDS] [CHECK]
//! (`CHECK_OPTS='{"keepalive":true}'` adds options to the check's.)

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lbd_plugin::{next_start, Host, HostConfig, Options, Target};

fn cpu_ticks() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces).
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after ')'.
    n(11) + n(12)
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(
        args.get(1)
            .ok_or("usage: check_load PLUGIN_DIR [N] [SECONDS] [CHECK]")?,
    );
    let n: usize = args.get(2).map_or(Ok(1000), |s| s.parse())?;
    let window: u64 = args.get(3).map_or(Ok(20), |s| s.parse())?;
    let check = args.get(4).cloned().unwrap_or_else(|| "http_get".into());
    let extra: Options = match std::env::var("CHECK_OPTS") {
        Ok(j) => serde_json::from_str(&j)?,
        Err(_) => Options::new(),
    };
    let (host, report) = Host::start(HostConfig {
        builtin: &[],
        dirs: vec![dir.join("checks")],
        memory_limit: 64 << 20,
        cpu_slice: Duration::from_millis(100),
        require_root_owned: false,
        script_user: None,
    })?;
    for r in &report.refused {
        eprintln!("refused: {r}");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut guards = Vec::new();
    local.block_on(&rt, async {
        // As the daemon runs them: each checker's schedule is a job on the
        // plugin thread.
        for i in 0..n {
            let check = check.clone();
            let extra = extra.clone();
            let (done, failed) = (done.clone(), failed.clone());
            let ip = Ipv4Addr::new(10, 200, (i / 250) as u8, (i % 250 + 1) as u8);
            guards.push(host.spawn(Box::new(move |local| {
                Box::pin(async move {
                    let start = Duration::from_millis(rand::random_range(0..1000));
                    tokio::time::sleep_until(next_start(start)).await;
                    let mut opts = Options::new();
                    opts.insert("timeout".into(), 2.into());
                    opts.extend(extra);
                    let t = Target {
                        ip: IpAddr::V4(ip),
                        port: 8080,
                        vs: Some("10.77.0.100:80".into()),
                        weight: None,
                    };
                    let mut ck = local.checker(&check, t, opts);
                    loop {
                        let out = ck.run(Duration::from_secs(3)).await;
                        done.fetch_add(1, Ordering::Relaxed);
                        if !out.ok && failed.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("{ip}: {}", out.message);
                        }
                        tokio::time::sleep_until(next_start(Duration::from_secs(1))).await;
                    }
                })
            })));
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        let count = || (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
        let ((d0, f0), c0, t0) = (count(), cpu_ticks(), Instant::now());
        tokio::time::sleep(Duration::from_secs(window)).await;
        let (c1, (d1, f1)) = (cpu_ticks(), count());
        let secs = t0.elapsed().as_secs_f64();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        println!(
            "{n} targets, {secs:.1} s: {} checks ({:.0}/s), {} failed, CPU {:.1}% of one core, {:.1} us/check, RSS {:.1} MiB",
            d1 - d0,
            (d1 - d0) as f64 / secs,
            f1 - f0,
            (c1 - c0) as f64 / hz / secs * 100.0,
            (c1 - c0) as f64 / hz * 1e6 / ((d1 - d0).max(1) as f64),
            rss_kib() as f64 / 1024.0,
        );
        for (name, s) in host.stats().await {
            if s.calls > 0 {
                println!("plugin {name}: {} calls, Lua memory {} KiB", s.calls, s.memory >> 10);
            }
        }
    });
    Ok(())
}
