use std::io;

/// A kernel operation that failed, with what was attempted and where.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    /// The process lacks the capabilities for raw sockets or netlink writes.
    #[error("lbd needs CAP_NET_ADMIN and CAP_NET_RAW (run as root)")]
    NotPermitted,
    /// No interface by that name (in this network namespace).
    #[error("interface {0} not found")]
    NotFound(String),
    /// A system call or netlink request failed with an errno.
    #[error("{what}: {}", os_text(err))]
    Os { what: String, err: io::Error },
    /// A netlink failure that carries no errno (connection gone, bad reply).
    #[error("{what}: {detail}")]
    Netlink { what: String, detail: String },
    /// The caller passed something the kernel call cannot express.
    #[error("{what}: {detail}")]
    Invalid { what: String, detail: String },
    /// The generic netlink family "IPVS" is missing, even after
    /// `modprobe ip_vs`.
    #[error("IPVS not available: the kernel lacks ip_vs (modprobe ip_vs)")]
    IpvsUnavailable,
}

impl SysError {
    pub(crate) fn os(what: impl Into<String>, err: io::Error) -> Self {
        SysError::Os {
            what: what.into(),
            err,
        }
    }

    /// The errno behind this error, when there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            SysError::Os { err, .. } => err.raw_os_error(),
            _ => None,
        }
    }
}

/// "Operation not permitted" rather than std's "... (os error 1)": the
/// errno number adds nothing for an operator.
fn os_text(err: &io::Error) -> String {
    let s = err.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    }
}

/// "eth0 (index 3)", or "index 3" when the name cannot be resolved (the
/// link may be gone, which is often why the call failed).
pub(crate) fn ifdesc(index: u32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf holds IF_NAMESIZE bytes as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return format!("index {index}");
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    format!("{} (index {index})", name.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_without_errno_number() {
        let e = SysError::os(
            "adding 10.0.0.1/24 to eth0 (index 3)",
            io::Error::from_raw_os_error(libc::EPERM),
        );
        assert_eq!(
            e.to_string(),
            "adding 10.0.0.1/24 to eth0 (index 3): Operation not permitted"
        );
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        assert_eq!(
            SysError::NotPermitted.to_string(),
            "lbd needs CAP_NET_ADMIN and CAP_NET_RAW (run as root)"
        );
    }
}
