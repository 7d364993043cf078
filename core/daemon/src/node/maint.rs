//! Maintenance: `lbctl demote NAME` / `promote NAME`.
//! Placeholder seam: the router-side maintenance state lands with the
//! hitless-reload work; until then the API answers that it is unavailable.

use super::*;

impl Node {
    /// Demote (`on`) or promote the instance `name`. `Err` is the text the
    /// API returns (unknown instance, not available).
    #[allow(dead_code)]
    pub(super) fn set_demoted(
        &mut self,
        _now: Instant,
        name: &str,
        _on: bool,
    ) -> Result<(), String> {
        if !self.insts.iter().any(|i| i.cfg.name == name) {
            return Err(format!("no vrrp instance named {name}"));
        }
        Err(format!(
            "{name}: demote/promote is not available in this build"
        ))
    }

    /// Whether instance `i` is demoted (for `/status`).
    #[allow(dead_code)]
    pub(super) fn demoted(&self, _i: usize) -> bool {
        false
    }
}
