//! setsockopt for the options socket2 does not wrap.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Set a socket option whose value is a plain C struct or integer.
pub(crate) fn set<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    let len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: value points to a live T of `len` bytes; the fd is borrowed
    // and therefore open.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast::<libc::c_void>(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
