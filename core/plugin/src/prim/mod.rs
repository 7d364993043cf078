//! Host primitives: plain async Rust, no Lua. The `lb` API binds them.

pub mod dns;
pub mod exec;
pub mod fs;
pub mod http;
pub mod icmp;
pub mod proc;
pub mod tls;
pub mod udp;

/// A primitive's failure, one line: what and where.
#[derive(Debug, thiserror::Error)]
pub enum PrimError {
    #[error("{0}")]
    Msg(String),
    #[error("timeout after {0:?}")]
    Timeout(std::time::Duration),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl PrimError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        PrimError::Io {
            what: what.into(),
            source,
        }
    }
}
