//! lbd configuration: one typed model read from lbd's TOML or from a
//! keepalived.conf. Pure: reads the files it is given, touches nothing else.
//!
//! Loading is all or nothing: any malformed part makes `load` return an
//! error listing every problem with its file:line; warnings (keepalived
//! keywords lbd does not support yet) come back alongside a good model.

mod error;
mod ka_syntax;
mod keepalived;
mod lbd_toml;
mod limits;
pub mod model;
mod routes;
mod toml_out;
mod validate;
mod values;

use std::path::Path;
use std::sync::Arc;

pub use error::{ConfigError, Diagnostic};
pub use keepalived::split_words;
pub use limits::{
    MAX_BLOCK_DEPTH, MAX_CONFIG_BYTES, MAX_FILES, MAX_INCLUDE_DEPTH, MAX_TOML_BYTES,
    MAX_TOML_DEPTH, MAX_WORDS,
};
pub use model::*;
pub use toml_out::to_toml;
pub use validate::validate;

/// A valid model and the non-fatal findings made while reading it.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Warning>,
}

/// How a keepalived.conf is read.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// keepalived's config id (its `-i`; keepalived defaults it to the
    /// hostname up to the first dot): selects the `@ID` lines. `None`
    /// keeps only `@^ID` lines.
    pub config_id: Option<String>,
}

/// Reads `path` by its extension: `.toml` is lbd's syntax, anything else
/// keepalived.conf.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    load_with(path, &ReadOptions::default())
}

pub fn load_with(path: &Path, opts: &ReadOptions) -> Result<Loaded, ConfigError> {
    if path.extension().is_some_and(|e| e == "toml") {
        load_toml(path)
    } else {
        load_keepalived_with(path, opts)
    }
}

pub fn load_keepalived(path: &Path) -> Result<Loaded, ConfigError> {
    load_keepalived_with(path, &ReadOptions::default())
}

pub fn load_keepalived_with(path: &Path, opts: &ReadOptions) -> Result<Loaded, ConfigError> {
    let (config, warnings) = keepalived::read(Some(path), None, path, opts)?;
    validate(&config)?;
    Ok(Loaded { config, warnings })
}

/// keepalived.conf text; `name` is used in spans and is the base for
/// relative includes.
pub fn parse_keepalived_str(text: &str, name: &Path) -> Result<Loaded, ConfigError> {
    parse_keepalived_str_with(text, name, &ReadOptions::default())
}

pub fn parse_keepalived_str_with(
    text: &str,
    name: &Path,
    opts: &ReadOptions,
) -> Result<Loaded, ConfigError> {
    let (config, warnings) = keepalived::read(None, Some(text), name, opts)?;
    validate(&config)?;
    Ok(Loaded { config, warnings })
}

pub fn load_toml(path: &Path) -> Result<Loaded, ConfigError> {
    let span = Span {
        file: Arc::from(path),
        line: 0,
    };
    let bytes = limits::read_regular(path, MAX_TOML_BYTES, MAX_TOML_BYTES)
        .map_err(|e| ConfigError::single(span.clone(), e.msg))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        ConfigError::single(
            span,
            format!("{} is not UTF-8 text (TOML must be): {e}", path.display()),
        )
    })?;
    parse_toml_str(&text, path)
}

/// lbd TOML text; `name` is used in spans.
pub fn parse_toml_str(text: &str, name: &Path) -> Result<Loaded, ConfigError> {
    let (config, warnings) = lbd_toml::parse(text, name)?;
    validate(&config)?;
    Ok(Loaded { config, warnings })
}
