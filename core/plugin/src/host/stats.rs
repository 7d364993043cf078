//! What the host reports per plugin: the counters each plugin's shared
//! state keeps, and the memory its Lua state holds now.

use std::collections::BTreeMap;

use crate::sandbox::PluginStats;

use super::load::Registry;

/// Per plugin (file stem).
pub type HostStats = BTreeMap<String, PluginStats>;

pub(super) fn collect(reg: &Registry) -> HostStats {
    let mut s = HostStats::new();
    for slot in &reg.slots {
        let mut st = slot.shared.stats.borrow().clone();
        st.memory = slot
            .state
            .borrow()
            .as_ref()
            .map_or(0, |s| s.lua.used_memory());
        s.insert(slot.shared.name.clone(), st);
    }
    s
}
