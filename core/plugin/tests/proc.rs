//! `lb.proc.find` on real processes: a running one is found, a zombie (exited,
//! not yet collected by its parent) is not, as pidof skips zombies.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use lbd_plugin::prim::proc::find;

/// A copy of `sleep` under a name no other process has.
fn unique_sleep(tag: &str) -> (std::path::PathBuf, String) {
    let name = format!("lbdp{tag}{}", std::process::id() % 100_000);
    let dir = std::env::temp_dir().join(format!("lbd-proc-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join(&name);
    std::fs::copy("/bin/sleep", &bin).expect("copy /bin/sleep");
    (bin, name)
}

#[test]
fn a_running_process_is_found_and_a_zombie_is_not() {
    let (bin, name) = unique_sleep("z");
    let mut running = std::process::Command::new(&bin).arg("30").spawn().unwrap();
    assert_eq!(find(&name).unwrap(), vec![running.id()]);
    running.kill().unwrap();
    // Not waited for: it stays a zombie of this test process until wait().
    let deadline = Instant::now() + Duration::from_secs(10);
    let stat = format!("/proc/{}/stat", running.id());
    while !std::fs::read_to_string(&stat).unwrap().contains(") Z ") {
        assert!(Instant::now() < deadline, "never became a zombie");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        find(&name).unwrap(),
        Vec::<u32>::new(),
        "a zombie is not running"
    );
    running.wait().unwrap();
    let _ = std::fs::remove_dir_all(bin.parent().unwrap());
}
