//! Files: bounded reads, and appends that never wait (FIFOs without a reader).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::PrimError;

pub fn read(path: &Path, max: usize) -> Result<Vec<u8>, PrimError> {
    let f = File::open(path).map_err(|e| PrimError::io(path.display().to_string(), e))?;
    let mut buf = Vec::new();
    f.take(max as u64)
        .read_to_end(&mut buf)
        .map_err(|e| PrimError::io(path.display().to_string(), e))?;
    Ok(buf)
}

/// FIFOs stay open between writes, as keepalived keeps its notify FIFO
/// open: a reader would see end-of-file after every line otherwise.
fn fifos() -> &'static Mutex<HashMap<PathBuf, File>> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, File>>> = OnceLock::new();
    OPEN.get_or_init(|| Mutex::new(HashMap::new()))
}

/// O_NONBLOCK: opening a FIFO nobody reads fails at once (ENXIO) instead
/// of blocking the plugin thread, and a full FIFO fails (EAGAIN).
fn open(path: &Path) -> Result<File, PrimError> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => {
                PrimError::Msg(format!("{}: no reader on the FIFO", path.display()))
            }
            _ => PrimError::io(path.display().to_string(), e),
        })
}

/// Appends `data` to a file (created if missing) or writes it to a FIFO.
pub fn append(path: &Path, data: &[u8]) -> Result<(), PrimError> {
    let what = || path.display().to_string();
    let is_fifo = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
    if !is_fifo {
        return open(path)?
            .write_all(data)
            .map_err(|e| PrimError::io(what(), e));
    }
    let mut map = fifos()
        .lock()
        .map_err(|_| PrimError::Msg(format!("{}: FIFO table poisoned", what())))?;
    // A reader that went away leaves EPIPE on the kept fd: reopen once.
    for _ in 0..2 {
        if !map.contains_key(path) {
            map.insert(path.to_path_buf(), open(path)?);
        }
        let Some(f) = map.get_mut(path) else { break };
        match f.write_all(data) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                map.remove(path);
            }
            Err(e) => {
                map.remove(path);
                return Err(PrimError::io(what(), e));
            }
        }
    }
    Err(PrimError::Msg(format!("{}: no reader on the FIFO", what())))
}
