//! Capture with tshark inside a node and decode the file afterwards.

use std::path::PathBuf;
use std::time::Duration;

use crate::lab::{run, Lab, Node, Proc};

/// BPF filter for VRRP over IPv4 and IPv6.
pub const VRRP_FILTER: &str = "ip proto 112 or ip6 proto 112";

pub struct Capture {
    pub proc: Proc,
    pub file: PathBuf,
}

impl Capture {
    /// Capture up to `count` packets on `dev` in `node`, stopping after
    /// `max` at the latest. Returns once tshark reports it is capturing.
    pub fn start(
        lab: &Lab,
        node: &Node,
        dev: &str,
        filter: &str,
        count: u32,
        max: Duration,
    ) -> Capture {
        let file = lab.path(&format!(
            "{}-{dev}-{}.pcapng",
            node.name,
            std::process::id()
        ));
        let _ = std::fs::remove_file(&file);
        let c = count.to_string();
        let d = format!("duration:{}", max.as_secs().max(1));
        let f = file.to_str().unwrap().to_owned();
        let proc = lab.spawn(
            node,
            &format!("tshark-{dev}"),
            &[
                "tshark", "-n", "-i", dev, "-f", filter, "-c", &c, "-a", &d, "-w", &f,
            ],
        );
        // tshark takes a while to start on a busy box; traffic sent before it
        // says "Capturing on" would be missed.
        let ok = crate::wait_until(Duration::from_secs(30), || {
            proc.log_text().contains("Capturing on") || !proc.alive()
        });
        assert!(
            ok && proc.alive() || file.exists(),
            "tshark did not start: {}",
            proc.log_text()
        );
        Capture { proc, file }
    }

    /// Wait until tshark exits (count reached or duration over).
    pub fn wait(&self, lab: &Lab, limit: Duration) {
        let done = crate::wait_until(limit, || !self.proc.alive());
        if !done {
            self.proc.signal(libc::SIGINT);
            crate::wait_until(Duration::from_secs(5), || !self.proc.alive());
        }
        lab.reap(&self.proc);
    }

    /// Decoded VRRP packets: one row per packet with the requested fields.
    pub fn fields(&self, fields: &[&str], prefs: &[&str]) -> Vec<Vec<String>> {
        decode_fields(&self.file, fields, prefs)
    }
}

/// `tshark -r file -Y vrrp -T fields -e ...` with `-o` preferences.
pub fn decode_fields(file: &std::path::Path, fields: &[&str], prefs: &[&str]) -> Vec<Vec<String>> {
    decode_filtered(file, "vrrp", fields, prefs)
}

/// Like [`decode_fields`] with any display filter (e.g. `arp`).
pub fn decode_filtered(
    file: &std::path::Path,
    filter: &str,
    fields: &[&str],
    prefs: &[&str],
) -> Vec<Vec<String>> {
    let f = file.to_str().unwrap();
    let mut argv = vec![
        "tshark",
        "-n",
        "-r",
        f,
        "-Y",
        filter,
        "-T",
        "fields",
        "-E",
        "separator=|",
    ];
    for p in prefs {
        argv.push("-o");
        argv.push(p);
    }
    for e in fields {
        argv.push("-e");
        argv.push(e);
    }
    let out = run(&argv);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

/// Verbose decode, for failure messages.
pub fn decode_verbose(file: &std::path::Path) -> String {
    let out = crate::lab::run_quiet(&[
        "tshark",
        "-n",
        "-r",
        file.to_str().unwrap(),
        "-V",
        "-Y",
        "vrrp",
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Wireshark's `vrrp.checksum.status` value for a verified checksum
/// (PROTO_CHECKSUM_E_GOOD).
pub const CHECKSUM_GOOD: &str = "1";

/// `vrrp.checksum.status` for a checksum that did not verify (PROTO_CHECKSUM_E_BAD).
pub const CHECKSUM_BAD: &str = "0";
