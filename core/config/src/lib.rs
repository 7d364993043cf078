//! lbd configuration: one typed model read from lbd's TOML or from a
//! keepalived.conf. Pure: reads the files it is given, touches nothing else.

pub mod model;

pub use model::*;
