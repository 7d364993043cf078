//! Start-up check that lbd can do its job, so the failure is one clear line
//! instead of the first VIP add failing later.

use socket2::{Domain, Protocol, Socket, Type};

use crate::error::SysError;

const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;

/// Err([`SysError::NotPermitted`]) unless the process has CAP_NET_ADMIN and
/// CAP_NET_RAW in its effective set.
pub fn check_privileges() -> Result<(), SysError> {
    // CAP_NET_ADMIN cannot be probed without changing something, so read the
    // effective set; fall through to the socket probe if /proc is absent.
    if let Some(eff) = effective_caps() {
        if eff & (1 << CAP_NET_ADMIN) == 0 || eff & (1 << CAP_NET_RAW) == 0 {
            return Err(SysError::NotPermitted);
        }
    }
    match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) => {
            Err(SysError::NotPermitted)
        }
        Err(e) => Err(SysError::os("opening a raw VRRP socket", e)),
    }
}

fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_cap_eff(&status)
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cap_eff() {
        let s = "Name:\tlbd\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(s), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_cap_eff("Name: x\n"), None);
    }
}
