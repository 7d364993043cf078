//! RFC 5798 §6.1 Accept_Mode False: a master that is not the address owner
//! must not accept packets addressed to the VIPs. keepalived enforces
//! `no_accept` with firewall rules; lbd keeps one nftables table of its own
//! (per network namespace) and replaces it atomically.

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use crate::SysError;

/// The table lbd owns; nothing else in the ruleset is touched.
pub const TABLE: &str = "lbd_no_accept";

/// The nft script that (re)creates the table with exactly `addrs` dropped.
/// `table` + `delete table` first makes the replacement one transaction
/// that also works when the table does not exist yet.
pub fn no_accept_script(addrs: &[IpAddr]) -> String {
    let v4: Vec<String> = addrs
        .iter()
        .filter(|a| a.is_ipv4())
        .map(|a| a.to_string())
        .collect();
    let v6: Vec<String> = addrs
        .iter()
        .filter(|a| a.is_ipv6())
        .map(|a| a.to_string())
        .collect();
    let mut s = format!("table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n");
    let set = |name: &str, ty: &str, els: &[String]| {
        let mut out = format!("  set {name} {{ type {ty};");
        if !els.is_empty() {
            out.push_str(&format!(" elements = {{ {} }};", els.join(", ")));
        }
        out.push_str(" }\n");
        out
    };
    s.push_str(&set("vips4", "ipv4_addr", &v4));
    s.push_str(&set("vips6", "ipv6_addr", &v6));
    s.push_str("  chain input {\n    type filter hook input priority filter; policy accept;\n");
    s.push_str("    ip daddr @vips4 counter drop\n    ip6 daddr @vips6 counter drop\n  }\n}\n");
    s
}

fn nft(script: &str, what: &str) -> Result<(), SysError> {
    let mut cmd = Command::new("nft");
    cmd.args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // Registered until waited for: as PID 1 the reaper leaves it alone.
    let (mut child, _own) =
        crate::reap::spawn_own(|| cmd.spawn(), |c| Some(c.id())).map_err(|err| SysError::Os {
            what: format!("{what}: running nft (no_accept needs nftables installed)"),
            err,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|err| SysError::Os {
                what: format!("{what}: writing to nft"),
                err,
            })?;
    }
    let out = child.wait_with_output().map_err(|err| SysError::Os {
        what: format!("{what}: waiting for nft"),
        err,
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(SysError::Invalid {
        what: what.to_string(),
        detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// Installs (or replaces) the drop rules for `addrs`.
pub fn apply_no_accept(addrs: &[IpAddr]) -> Result<(), SysError> {
    nft(&no_accept_script(addrs), "installing no_accept rules")
}

/// Removes lbd's table; absent is fine.
pub fn remove_no_accept() -> Result<(), SysError> {
    nft(
        &format!("table inet {TABLE}\ndelete table inet {TABLE}\n"),
        "removing no_accept rules",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_lists_both_families_and_handles_empty() {
        let s = no_accept_script(&["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()]);
        assert!(s.contains("elements = { 10.0.0.1 }"));
        assert!(s.contains("elements = { fd00::1 }"));
        let e = no_accept_script(&[]);
        assert!(!e.contains("elements"));
        assert!(e.starts_with("table inet lbd_no_accept\ndelete table inet lbd_no_accept\n"));
    }
}
