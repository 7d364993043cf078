//! Bounds on what one configuration load reads, so that no file (a FIFO,
//! /dev/zero, a runaway generator, a hostile edit) can hang the reader, run
//! it out of memory or overflow its stack. Each is far above real configs
//! (see SCHEMA.md, "Limits"); hitting one is an error with a file:line.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Bytes of configuration per load, the main file and every include
/// together. 10 000 virtual_server blocks with two HTTP_GET-checked real
/// servers each are 5.7 MB of keepalived.conf and 8 MB of lbd TOML.
pub const MAX_CONFIG_BYTES: u64 = 32 << 20;

/// Bytes of an lbd TOML file. Lower than keepalived.conf's: the `toml`
/// crate holds its token and event buffers and the parsed document at once,
/// ~40x the text at peak (a 4 MB file, 5000 virtual servers as `--convert`
/// writes them, peaks at 170 MB of heap). 10 000 virtual servers are 8 MB.
pub const MAX_TOML_BYTES: u64 = 16 << 20;

/// Words (keywords, values, quoted strings) per keepalived.conf load: bounds
/// the syntax tree, which costs more per word than the text does. The
/// 10 000-block config above has ~600 000.
pub const MAX_WORDS: usize = 4_000_000;

/// `{` blocks open at once. Real configs nest 4 deep (virtual_server >
/// real_server > HTTP_GET > url).
pub const MAX_BLOCK_DEPTH: usize = 128;

/// Nested includes deeper than this are taken as a loop.
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// Files opened (and glob entries looked at) per load: an include fan-out
/// cannot multiply without bound.
pub const MAX_FILES: usize = 100_000;

/// TOML nesting (arrays, inline tables, dotted-key and header segments)
/// deeper than this is refused before parsing. The `toml` crate bounds
/// arrays and inline tables (80) and keys (80 segments) separately, but
/// they multiply: 60 inline tables each under a 70-segment key overflowed
/// the stack. lbd's own files nest ~10 deep.
pub const MAX_TOML_DEPTH: usize = 64;

/// What a non-regular file is, for the refusal message.
fn kind(m: &Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Why a file was not read.
pub(crate) struct ReadError {
    pub msg: String,
    /// The size budget is spent: nothing more can be read in this load.
    pub over_size: bool,
}

fn refuse_kind(path: &Path, m: &Metadata) -> ReadError {
    ReadError {
        msg: format!(
            "{} is {}: only regular files are read as configuration",
            path.display(),
            kind(m)
        ),
        over_size: false,
    }
}

fn over(path: &Path, budget: u64, limit: u64) -> ReadError {
    ReadError {
        msg: too_big(path, budget, limit),
        over_size: true,
    }
}

/// `budget` is what was left of `limit` when `path` was reached.
pub(crate) fn too_big(path: &Path, budget: u64, limit: u64) -> String {
    if budget == limit {
        format!(
            "{} is larger than the configuration size limit of {} MiB",
            path.display(),
            limit >> 20
        )
    } else {
        format!(
            "{}: with the files read before it the configuration exceeds the size limit of {} MiB",
            path.display(),
            limit >> 20
        )
    }
}

/// Reads a regular file of at most `budget` bytes (what is left of
/// `limit`, for the message). The type is checked on
/// the path before opening (opening a FIFO would block until a writer came)
/// and again on the open file, which is opened non-blocking in case the path
/// was swapped in between; the read stops one byte past the budget, so a
/// file that grows while read is bounded too.
pub(crate) fn read_regular(path: &Path, budget: u64, limit: u64) -> Result<Vec<u8>, ReadError> {
    let cannot = |e: std::io::Error| ReadError {
        msg: format!("cannot read {}: {e}", path.display()),
        over_size: false,
    };
    let m = std::fs::metadata(path).map_err(cannot)?;
    if !m.is_file() {
        return Err(refuse_kind(path, &m));
    }
    if m.len() > budget {
        return Err(over(path, budget, limit));
    }
    let f = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(cannot)?;
    let m = f.metadata().map_err(cannot)?;
    if !m.is_file() {
        return Err(refuse_kind(path, &m));
    }
    // The length is a hint only (it may change); the read is what is bounded.
    let hint = usize::try_from(m.len().min(budget)).unwrap_or(0);
    let mut buf = Vec::with_capacity(hint);
    f.take(budget.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(cannot)?;
    if buf.len() as u64 > budget {
        return Err(over(path, budget, limit));
    }
    Ok(buf)
}

/// Where TOML nesting passes `limit`, if it does: arrays, inline tables and
/// every segment of a dotted key or table header each count a level (they
/// are all tables or arrays in the parsed value). A conservative scan, not
/// a parser: strings and comments are skipped, anything else is left to
/// the `toml` crate. Returns the byte offset where the limit was passed.
pub(crate) fn toml_too_deep(text: &str, limit: usize) -> Option<usize> {
    let b = text.as_bytes();
    // Open arrays / inline tables: (is inline table, its depth).
    let mut open: Vec<(bool, usize)> = Vec::new();
    let mut header_depth = 0usize;
    let mut key_mode = true;
    let mut line_start = true;
    let mut key_dots = 0usize;
    let mut val_depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' if open.is_empty() => {
                key_mode = true;
                line_start = true;
                key_dots = 0;
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' => {
                i = skip_string(b, i);
                line_start = false;
                continue;
            }
            b'[' if open.is_empty() && key_mode && line_start => {
                // A table header: its segments are the base of the keys below it.
                let mut dots = 0;
                i += 1;
                while i < b.len() && b[i] != b'\n' && b[i] != b']' {
                    match b[i] {
                        b'"' | b'\'' => {
                            i = skip_string(b, i);
                            continue;
                        }
                        b'.' => dots += 1,
                        _ => {}
                    }
                    i += 1;
                }
                header_depth = dots + 2;
                if header_depth > limit {
                    return Some(i);
                }
                continue;
            }
            _ if key_mode => match c {
                b'.' => key_dots += 1,
                b'=' => {
                    key_mode = false;
                    let base = open.last().map_or(header_depth, |f| f.1);
                    val_depth = base + key_dots;
                    if val_depth > limit {
                        return Some(i);
                    }
                }
                b'}' => {
                    // An empty inline table, or one closed after a comma.
                    open.pop();
                    key_mode = false;
                    val_depth = open.last().map_or(0, |f| f.1);
                }
                _ => {}
            },
            b'[' | b'{' => {
                let d = val_depth + 1;
                if d > limit {
                    return Some(i);
                }
                open.push((c == b'{', d));
                if c == b'{' {
                    key_mode = true;
                    key_dots = 0;
                } else {
                    val_depth = d;
                }
            }
            b']' | b'}' => {
                open.pop();
                val_depth = open.last().map_or(0, |f| f.1);
            }
            b',' => match open.last() {
                Some((true, _)) => {
                    key_mode = true;
                    key_dots = 0;
                }
                Some((false, d)) => val_depth = *d,
                None => {}
            },
            _ => {}
        }
        if !matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
            line_start = false;
        }
        i += 1;
    }
    None
}

/// The index just past the string starting at `i` (basic or literal, one
/// line or multi-line), or the end of the text if it is unterminated.
fn skip_string(b: &[u8], i: usize) -> usize {
    let q = b[i];
    let basic = q == b'"';
    if b.get(i..i + 3) == Some(&[q, q, q][..]) {
        let mut j = i + 3;
        while j < b.len() {
            if basic && b[j] == b'\\' {
                j += 2;
            } else if b.get(j..j + 3) == Some(&[q, q, q][..]) {
                return j + 3;
            } else {
                j += 1;
            }
        }
        return b.len();
    }
    let mut j = i + 1;
    while j < b.len() && b[j] != b'\n' {
        if basic && b[j] == b'\\' {
            j += 2;
        } else if b[j] == q {
            return j + 1;
        } else {
            j += 1;
        }
    }
    j.min(b.len())
}
