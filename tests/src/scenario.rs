//! Helpers shared by the VRRP scenarios: who holds the VIP, waiting for
//! exactly one holder, and watching that a state lasts.

use std::time::Duration;

use crate::lab::{Lab, Node};
use crate::wait_until;

/// Names of the nodes that have `vip` on `dev`.
pub fn holders(lab: &Lab, nodes: &[&Node], dev: &str, vip: &str) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| lab.has_addr(n, dev, vip))
        .map(|n| n.name.clone())
        .collect()
}

/// Wait until exactly `want` (and no other of `nodes`) holds `vip`.
pub fn wait_sole_holder(
    lab: &Lab,
    nodes: &[&Node],
    want: &Node,
    dev: &str,
    vip: &str,
    deadline: Duration,
) -> bool {
    wait_until(deadline, || {
        holders(lab, nodes, dev, vip) == [want.name.clone()]
    })
}

/// Assert that `want` becomes the sole holder of `vip` on eth0 within
/// [`ELECTION`]; `what` names the moment in the failure message.
pub fn expect_holder_of(lab: &Lab, nodes: &[&Node], want: &Node, vip: &str, what: &str) {
    assert!(
        wait_sole_holder(lab, nodes, want, "eth0", vip, ELECTION),
        "{what}: {} should hold {vip}; {}",
        want.name,
        describe(lab, nodes, "eth0", vip)
    );
}

/// [`expect_holder_of`] the lab's VIP.
pub fn expect_holder(lab: &Lab, nodes: &[&Node], want: &Node, what: &str) {
    expect_holder_of(lab, nodes, want, crate::VIP4, what);
}

/// True if `cond` holds at every poll during `window`: used to check that a
/// state is stable (e.g. no failback), not to synchronise.
pub fn holds_for(window: Duration, mut cond: impl FnMut() -> bool) -> bool {
    !wait_until(window, || !cond())
}

/// Panic message helper: who holds what, per node.
pub fn describe(lab: &Lab, nodes: &[&Node], dev: &str, vip: &str) -> String {
    format!(
        "holders of {vip} on {dev}: {:?}",
        holders(lab, nodes, dev, vip)
    )
}

use crate::daemon::{Daemon, Instance, Kind};

/// Two VRRP nodes `a` (meant to win) and `b`, plus a `client`.
pub struct Pair {
    pub a: Node,
    pub b: Node,
    pub client: Node,
    pub da: Daemon,
    pub db: Daemon,
}

impl Pair {
    /// Start `ka` on a with `ia` and `kb` on b with `ib`. With `unicast`,
    /// each instance gets the other node as its unicast peer.
    pub fn start(
        lab: &Lab,
        ka: Kind,
        kb: Kind,
        mut ia: Instance,
        mut ib: Instance,
        unicast: bool,
    ) -> Pair {
        let a = lab.node("a");
        let b = lab.node("b");
        let client = lab.host("client");
        if unicast {
            let v6 = ia.vips.iter().any(|v| v.contains(':'));
            let ip = |n: &Node| if v6 { n.ip6(0) } else { n.ip4(0) };
            ia.unicast_src = Some(ip(&a));
            ia.unicast_peers = vec![ip(&b)];
            ib.unicast_src = Some(ip(&b));
            ib.unicast_peers = vec![ip(&a)];
        }
        let da = Daemon::start(lab, ka, &a, &ia.render("a"));
        let db = Daemon::start(lab, kb, &b, &ib.render("b"));
        Pair {
            a,
            b,
            client,
            da,
            db,
        }
    }

    pub fn nodes(&self) -> [&Node; 2] {
        [&self.a, &self.b]
    }

    /// Wait until `want` is the only holder of `vip` on eth0.
    pub fn expect_sole(&self, lab: &Lab, want: &Node, vip: &str, deadline: Duration) {
        let nodes = self.nodes();
        assert!(
            wait_sole_holder(lab, &nodes, want, "eth0", vip, deadline),
            "{} should be the sole holder: {}",
            want.name,
            describe(lab, &nodes, "eth0", vip)
        );
    }

    /// The client reaches `vip` and resolves it to `owner`'s MAC.
    pub fn expect_client_sees(&self, lab: &Lab, owner: &Node, vip: &str, deadline: Duration) {
        let mac = lab.mac_of(owner, "eth0");
        let ok = wait_until(deadline, || {
            lab.ping(&self.client, vip)
                && lab.neigh_mac(&self.client, vip).as_deref() == Some(mac.as_str())
        });
        assert!(
            ok,
            "client: VIP {vip} resolves to {:?}, want {} ({mac})",
            lab.neigh_mac(&self.client, vip),
            owner.name
        );
    }
}

/// Deadline for any election or takeover: Master_Down_Interval at advert_int
/// 1 s is ~3.6 s; the rest is headroom for a loaded 2-core box.
pub const ELECTION: Duration = Duration::from_secs(20);
