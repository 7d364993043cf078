//! Maintenance: `lbctl demote NAME` / `promote NAME`. A demoted instance
//! resigns mastership (priority-0 advert) and stays Backup until promoted
//! (lbd_vrrp `Input::Demote`); the flag is the router's, so it survives a
//! reload that keeps the instance, and a reload that re-adds it carries it.

use super::*;

impl Node {
    /// Demote (`on`) or promote the instance `name`. `Err` is the text the
    /// API returns (unknown instance).
    pub(super) fn set_demoted(&mut self, now: Instant, name: &str, on: bool) -> Result<(), String> {
        let Some(i) = self.live_inst(name) else {
            return Err(format!("no vrrp instance named {name}"));
        };
        if self.demoted(i) != on {
            info!(
                "VRRP_Instance({name}) {} by the operator",
                if on { "demoted" } else { "promoted" }
            );
            self.router.set_demoted(now, i, on);
        }
        Ok(())
    }

    /// Whether instance `i` is demoted (for `/status`).
    pub(super) fn demoted(&self, i: usize) -> bool {
        self.router.instance(i).is_some_and(|x| x.is_demoted())
    }
}
