//! Drop and event counters. One table for the process: the API of a later
//! issue exposes it; for now it is logged on SIGUSR1 and at exit.

use std::collections::BTreeMap;

#[derive(Default)]
pub struct Counters {
    map: BTreeMap<String, u64>,
}

impl Counters {
    /// Called per advert: allocates only the first time a name is seen.
    pub fn bump(&mut self, name: &str) {
        match self.map.get_mut(name) {
            Some(v) => *v += 1,
            None => {
                self.map.insert(name.to_string(), 1);
            }
        }
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
