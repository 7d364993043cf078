//! IPVS benchmark for `scripts/bench` (run inside the VM tier: it flushes
//! the kernel's IPVS table). Cold apply of N services x 2 destinations by
//! lbd's client (diff against the empty kernel, then the pipelined apply,
//! as the daemon's start does) against `ipvsadm -R` of the same rules, and
//! a reload with one changed service among 2N: time and operations.
//!
//! usage: ipvs_bench [N]   (default 5000)

use std::error::Error;
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lbd_ipvs::{
    diff, Af, DestKey, DestSpec, Fwd, IpvsState, OwnedSet, Protocol, Service, ServiceKey,
    ServiceSpec,
};
use lbd_sys::Ipvs;

type Res<T> = Result<T, Box<dyn Error>>;

fn state(n: usize) -> Res<IpvsState> {
    let d1: IpAddr = "192.168.10.1".parse()?;
    let d2: IpAddr = "192.168.10.2".parse()?;
    (0..n)
        .map(|i| {
            let a: IpAddr =
                format!("10.{}.{}.{}", 100 + i / 65536, (i / 256) % 256, i % 256).parse()?;
            Ok(Service::new(
                ServiceKey::addr(Protocol::Tcp, a, 80),
                ServiceSpec::new("wlc", Af::V4),
            )
            .with_dest(DestKey::new(d1, 80), DestSpec::new(Fwd::Masq, 1))
            .with_dest(DestKey::new(d2, 80), DestSpec::new(Fwd::Masq, 1)))
        })
        .collect()
}

fn rules(state: &IpvsState) -> String {
    let mut s = String::new();
    for (k, svc) in &state.services {
        if let ServiceKey::Addr { addr, port, .. } = k {
            s += &format!("-A -t {addr}:{port} -s {}\n", svc.spec.scheduler);
            for (d, spec) in &svc.dests {
                s += &format!("-a -t {addr}:{port} -r {d} -m -w {}\n", spec.weight);
            }
        }
    }
    s
}

fn ipvsadm_restore(text: &str) -> Res<Duration> {
    let t = Instant::now();
    let mut child = Command::new("ipvsadm")
        .arg("-R")
        .stdin(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or("ipvsadm: no stdin")?
        .write_all(text.as_bytes())?;
    if !child.wait()?.success() {
        return Err("ipvsadm -R failed".into());
    }
    Ok(t.elapsed())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Res<()> {
    let n: usize = std::env::args().nth(1).map_or(Ok(5000), |a| a.parse())?;
    let ipvs = Ipvs::connect().await?;
    ipvs.flush().await?;
    let desired = state(n)?;
    let owned = OwnedSet::from_state(&desired);
    let rules_text = rules(&desired);

    // Three rounds each, alternating, on the same kernel; medians reported.
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut nops = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let (observed, _) = ipvs.dump().await?;
        let ops = diff(&desired, &observed, &owned);
        nops = ops.len();
        let results = ipvs.apply(ops).await?;
        ours.push(t.elapsed());
        if results.iter().any(|r| r.is_err()) {
            return Err("lbd apply: some operations failed".into());
        }
        ipvs.flush().await?;
        theirs.push(ipvsadm_restore(&rules_text)?);
        let (observed, _) = ipvs.dump().await?;
        if !diff(&desired, &observed, &owned).is_empty() || observed.len() != n {
            return Err("ipvsadm -R did not produce the same table".into());
        }
        ipvs.flush().await?;
    }
    ours.sort();
    theirs.sort();
    let (lbd, adm) = (ours[1], theirs[1]);

    // Reload: one changed weight among 2n services.
    let big = state(2 * n)?;
    let big_owned = OwnedSet::from_state(&big);
    let results = ipvs
        .apply(diff(&big, &IpvsState::new(), &big_owned))
        .await?;
    if results.iter().any(|r| r.is_err()) {
        return Err("growing the table failed".into());
    }
    let t = Instant::now();
    let (observed, _) = ipvs.dump().await?;
    let dump = t.elapsed();
    let mut changed = big.clone();
    let key = changed
        .services
        .keys()
        .nth(n)
        .cloned()
        .ok_or("no service to change")?;
    if let Some(d) = changed
        .services
        .get_mut(&key)
        .and_then(|s| s.dests.values_mut().next())
    {
        d.weight = 9;
    }
    let t = Instant::now();
    let ops = diff(&changed, &observed, &big_owned);
    let diff_time = t.elapsed();
    let one_ops = ops.len();
    let t = Instant::now();
    let r = ipvs.apply(ops).await?;
    let one = t.elapsed();
    if r.iter().any(|r| r.is_err()) {
        return Err("applying the one change failed".into());
    }
    ipvs.flush().await?;

    println!("IPVS benchmark (release build, this VM's kernel, medians of 3)");
    println!("| case | lbd | ipvsadm -R | lbd/ipvsadm |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| cold apply {n} services x 2 dests ({nops} ops) | {:.0} ms | {:.0} ms | {:.2} |",
        ms(lbd),
        ms(adm),
        lbd.as_secs_f64() / adm.as_secs_f64()
    );
    println!(
        "| reload, 1 changed among {} services | {one_ops} op: diff {:.1} ms + apply {:.2} ms | - | - |",
        2 * n,
        ms(diff_time),
        ms(one)
    );
    println!(
        "| full dump of {} services | {:.0} ms | - | - |",
        2 * n,
        ms(dump)
    );
    println!(
        "all rounds: lbd {:?} ms, ipvsadm -R {:?} ms",
        ours.iter().map(|d| ms(*d).round()).collect::<Vec<_>>(),
        theirs.iter().map(|d| ms(*d).round()).collect::<Vec<_>>()
    );
    Ok(())
}
