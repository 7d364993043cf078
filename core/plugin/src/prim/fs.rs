//! Files: bounded reads, and appends that never wait (FIFOs without a reader).

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::PrimError;

pub fn read(path: &Path, max: usize) -> Result<Vec<u8>, PrimError> {
    let f = std::fs::File::open(path).map_err(|e| PrimError::io(path.display().to_string(), e))?;
    let mut buf = Vec::new();
    f.take(max as u64)
        .read_to_end(&mut buf)
        .map_err(|e| PrimError::io(path.display().to_string(), e))?;
    Ok(buf)
}

/// Appends `data` to a file (created if missing) or writes it to a FIFO.
/// O_NONBLOCK: opening a FIFO nobody reads fails at once (ENXIO) instead
/// of blocking the plugin thread, and a full FIFO fails (EAGAIN).
pub fn append(path: &Path, data: &[u8]) -> Result<(), PrimError> {
    let what = || path.display().to_string();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => PrimError::Msg(format!("{}: no reader on the FIFO", what())),
            _ => PrimError::io(what(), e),
        })?;
    f.write_all(data).map_err(|e| PrimError::io(what(), e))
}
