//! The control socket. The API itself comes later; for now lbd reserves the
//! path so several lbd processes (one per network namespace) cannot collide.

use std::io::ErrorKind;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Holds the bound socket; removes the path on drop.
pub struct ApiSocket {
    path: PathBuf,
    _listener: UnixListener,
}

impl ApiSocket {
    pub fn reserve(path: &Path) -> Result<ApiSocket> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
        }
        match UnixListener::bind(path) {
            Ok(l) => {
                return Ok(ApiSocket {
                    path: path.into(),
                    _listener: l,
                })
            }
            Err(e) if e.kind() == ErrorKind::AddrInUse => {}
            Err(e) => return Err(e).with_context(|| format!("binding {}", path.display())),
        }
        // A socket file exists: in use by a live lbd, or stale from a crash.
        if UnixStream::connect(path).is_ok() {
            bail!(
                "{} is in use by another running lbd (give each lbd its own --api-socket)",
                path.display()
            );
        }
        std::fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))?;
        let l = UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
        Ok(ApiSocket {
            path: path.into(),
            _listener: l,
        })
    }
}

impl Drop for ApiSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_conflict_and_stale() {
        let dir = std::env::temp_dir().join(format!("lbd-api-{}", std::process::id()));
        let path = dir.join("a.sock");
        let first = ApiSocket::reserve(&path);
        assert!(first.is_ok());
        assert!(
            ApiSocket::reserve(&path).is_err(),
            "second lbd must be refused"
        );
        drop(first);
        // Leave a stale file behind: a plain bind then drop without unlink.
        let l = UnixListener::bind(&path);
        assert!(l.is_ok());
        drop(l);
        assert!(
            ApiSocket::reserve(&path).is_ok(),
            "stale socket must be replaced"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
