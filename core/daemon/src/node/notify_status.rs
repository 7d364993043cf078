//! What the node tells the service manager (`crate::service`): its one-line
//! STATUS and the watchdog timer arm of the loop.

use super::*;

impl Node {
    /// Real servers up out of those configured; None without virtual servers.
    pub(super) fn servers_up(&self) -> Option<(usize, usize)> {
        if self.cfg.virtual_servers.is_empty() {
            return None;
        }
        let (mut up, mut all) = (0, 0);
        for vs in &self.cfg.virtual_servers {
            for rs in &vs.real_servers {
                all += 1;
                if self.health.status(vs, rs).up {
                    up += 1;
                }
            }
        }
        Some((up, all))
    }

    /// `VI_1 MASTER, VI_2 BACKUP; 2/2 real servers up`.
    pub(super) fn status_line(&self, servers: Option<(usize, usize)>) -> String {
        let insts = self
            .insts
            .iter()
            .enumerate()
            .filter(|(_, x)| !x.removed)
            .map(|(i, inst)| {
                let state = self.router.state(i).and_then(state_name).unwrap_or("INIT");
                (inst.cfg.name.as_str(), state)
            });
        crate::service::status_line(insts, servers)
    }
}

/// The watchdog arm: ticks when the service manager asked for pings,
/// never otherwise.
pub(super) async fn tick(watchdog: &mut Option<tokio::time::Interval>) {
    match watchdog {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending::<()>().await,
    }
}
