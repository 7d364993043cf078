//! Drop and event counters. One table for the process: the API of a later
//! issue exposes it; for now it is logged on SIGUSR1 and at exit.

use std::collections::BTreeMap;

#[derive(Default)]
pub struct Counters {
    map: BTreeMap<String, u64>,
}

impl Counters {
    pub fn bump(&mut self, name: &str) {
        *self.map.entry(name.to_string()).or_insert(0) += 1;
    }

    pub fn render(&self) -> String {
        if self.map.is_empty() {
            return "none".into();
        }
        self.map
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}
