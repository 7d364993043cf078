//! keepalived's `virtual_routes` and `static_routes`, carried out by a task
//! of their own: the VRRP loop only queues work, so routes never delay a
//! VIP, an advert or a GARP, and the queue keeps install/remove in the
//! order the transitions happened.

use std::time::Duration;

use lbd_config::{Route, RouteKind, Scope};
use lbd_sys::{Netlink, RouteSpec, SysError};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

enum Cmd {
    Install {
        owner: String,
        routes: Vec<Route>,
    },
    Remove {
        owner: String,
        routes: Vec<Route>,
        /// Start-up clean-up of what a killed lbd may have left: failures
        /// are expected and not worth an error.
        quiet: bool,
    },
    /// Answered once everything queued before it is done.
    Flush(oneshot::Sender<()>),
}

/// Handle to the route task.
#[derive(Clone)]
pub struct Routes {
    tx: mpsc::UnboundedSender<Cmd>,
}

/// How long stop waits for the queued removals.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

impl Routes {
    pub fn start(nl: Netlink) -> Routes {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(cmd) = rx.recv().await {
                match cmd {
                    Cmd::Install { owner, routes } => {
                        for r in &routes {
                            install(&nl, &owner, r).await;
                        }
                    }
                    Cmd::Remove {
                        owner,
                        routes,
                        quiet,
                    } => {
                        for r in &routes {
                            remove(&nl, &owner, r, quiet).await;
                        }
                    }
                    Cmd::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        Routes { tx }
    }

    fn send(&self, cmd: Cmd) {
        if self.tx.send(cmd).is_err() {
            error!("route task has stopped: routes are no longer changed");
        }
    }

    pub fn install(&self, owner: &str, routes: &[Route]) {
        if !routes.is_empty() {
            self.send(Cmd::Install {
                owner: owner.to_string(),
                routes: routes.to_vec(),
            });
        }
    }

    pub fn remove(&self, owner: &str, routes: &[Route], quiet: bool) {
        if !routes.is_empty() {
            self.send(Cmd::Remove {
                owner: owner.to_string(),
                routes: routes.to_vec(),
                quiet,
            });
        }
    }

    /// A reload: the routes of `new` not in `old` are installed first, then
    /// those of `old` no longer wanted are removed. In that order a changed
    /// route (same destination, new gateway) is replaced in place, with no
    /// moment without a route.
    pub fn apply_diff(&self, owner: &str, old: &[Route], new: &[Route]) {
        let added: Vec<Route> = new.iter().filter(|r| !contains(old, r)).cloned().collect();
        let gone: Vec<Route> = old.iter().filter(|r| !contains(new, r)).cloned().collect();
        if added.is_empty() && gone.is_empty() {
            return;
        }
        info!(
            "{owner}: reload: {} route(s) added, {} removed",
            added.len(),
            gone.len()
        );
        self.install(owner, &added);
        self.remove(owner, &gone, false);
    }

    /// Wait (bounded) until everything queued so far has been carried out.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Flush(tx));
        match tokio::time::timeout(FLUSH_TIMEOUT, rx).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => warn!("route task stopped before finishing its queue"),
            Err(_) => warn!(
                "routes still being changed after {}s; stopping anyway",
                FLUSH_TIMEOUT.as_secs()
            ),
        }
    }
}

/// Same route whatever line it was written on.
pub fn same(a: &Route, b: &Route) -> bool {
    let mut b = b.clone();
    b.span = a.span.clone();
    *a == b
}

fn contains(list: &[Route], r: &Route) -> bool {
    list.iter().any(|x| same(x, r))
}

/// Two lists of routes equal but for their spans.
pub fn same_list(a: &[Route], b: &[Route]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
}

async fn install(nl: &Netlink, owner: &str, r: &Route) {
    let spec = match resolve(nl, r).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return error!(
                "{owner}: route {r} ({}): interface {} not found; route not installed",
                r.span,
                r.dev.as_deref().unwrap_or("")
            )
        }
        Err(e) => return error!("{owner}: route {r} ({}): {e}", r.span),
    };
    match nl.route_replace(&spec).await {
        Ok(()) => debug!("{owner}: route {spec} installed"),
        Err(e) => error!("{owner}: {e} ({})", r.span),
    }
}

async fn remove(nl: &Netlink, owner: &str, r: &Route, quiet: bool) {
    let spec = match resolve(nl, r).await {
        Ok(Some(s)) => s,
        // The interface is gone and the kernel removed its routes with it.
        Ok(None) => return debug!("{owner}: route {r}: interface gone, nothing to remove"),
        Err(e) => {
            if !quiet {
                error!("{owner}: route {r} ({}): {e}", r.span);
            }
            return;
        }
    };
    match nl.route_del(&spec).await {
        Ok(()) => debug!("{owner}: route {spec} removed"),
        Err(e) if !quiet => error!("{owner}: {e} ({})", r.span),
        Err(_) => {}
    }
}

/// The kernel form of a route, its interface looked up now (it may have
/// appeared or been renamed since the configuration was read). None when
/// the interface does not exist.
async fn resolve(nl: &Netlink, r: &Route) -> Result<Option<RouteSpec>, SysError> {
    let oif = match &r.dev {
        None => None,
        Some(d) => match nl.link_by_name(d).await {
            Ok(l) => Some(l.index),
            Err(SysError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        },
    };
    Ok(Some(RouteSpec {
        kind: match r.kind {
            RouteKind::Unicast => lbd_sys::RouteKind::Unicast,
            RouteKind::Blackhole => lbd_sys::RouteKind::Blackhole,
            RouteKind::Unreachable => lbd_sys::RouteKind::Unreachable,
            RouteKind::Prohibit => lbd_sys::RouteKind::Prohibit,
            RouteKind::Throw => lbd_sys::RouteKind::Throw,
        },
        dst: r.dst,
        dst_len: r.dst_len,
        src: r.src,
        via: r.via,
        oif,
        scope: scope_number(r.effective_scope()),
        table: r.table,
        metric: r.metric,
        protocol: r.protocol,
        onlink: r.onlink,
    }))
}

/// rtnetlink scope values from linux/rtnetlink.h (enum rt_scope_t).
pub fn scope_number(s: Scope) -> u8 {
    match s {
        Scope::Global => 0,
        Scope::Site => 200,
        Scope::Link => 253,
        Scope::Host => 254,
        Scope::Nowhere => 255,
        Scope::Other(n) => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbd_config::Span;

    fn r(line: usize, via: [u8; 4]) -> Route {
        let span = Span {
            file: std::path::Path::new("x.conf").into(),
            line,
        };
        Route {
            via: Some(std::net::IpAddr::from(via)),
            ..Route::unicast(span, std::net::IpAddr::from([10, 1, 0, 0]), 16)
        }
    }

    #[test]
    fn a_route_that_only_moved_lines_is_the_same() {
        assert!(same(&r(3, [10, 0, 0, 1]), &r(9, [10, 0, 0, 1])));
        assert!(!same(&r(3, [10, 0, 0, 1]), &r(3, [10, 0, 0, 2])));
        assert!(same_list(&[r(1, [10, 0, 0, 1])], &[r(2, [10, 0, 0, 1])]));
        assert!(!same_list(&[r(1, [10, 0, 0, 1])], &[]));
    }
}
