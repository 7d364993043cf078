use super::*;
use crate::carry::tests::conf;

const VS: &str = "virtual_server 10.0.0.1 80 {\n quorum 3\n hysteresis 1\n \
    real_server 10.0.1.1 80 {\n  weight 2\n  TCP_CHECK {\n  }\n  HTTP_GET {\n   url { path / }\n  }\n }\n \
    real_server 10.0.1.2 80 {\n  weight 2\n  TCP_CHECK {\n  }\n }\n}\n\
    vrrp_script chk {\n script \"/bin/true\"\n}\n\
    vrrp_script bad {\n script \"/bin/false\"\n init_fail\n}\n";

fn no_alpha(_: &VirtualServer, _: &RealServer, _: &CheckSpec) -> bool {
    false
}

fn id(c: &Config, ip: &str) -> RsId {
    RsId {
        vs: c.virtual_servers[0].name(),
        ip: ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
        port: 80,
    }
}

#[test]
fn starts_as_configured() {
    let c = conf(VS);
    let m = Model::new(&c, no_alpha);
    let vs = &c.virtual_servers[0];
    assert_eq!(m.status(vs, &vs.real_servers[0]), UP);
    assert_eq!(m.live_weight(&vs.name()), 4);
    assert!(!m.quorum_lost(&vs.name()));
    assert_eq!(m.script_ok("chk"), Some(true));
    assert_eq!(m.script_ok("bad"), Some(false));
    assert_eq!(m.script_ok("none"), None);
    assert_eq!(m.checker_up(&id(&c, "10.0.1.1"), 1), Some(true));
    // alpha: every checker down, so every server, so the quorum.
    let a = Model::new(&c, |_, _, _| true);
    assert!(!a.status(vs, &vs.real_servers[1]).up);
    assert_eq!(a.live_weight(&vs.name()), 0);
    assert!(a.quorum_lost(&vs.name()));
}

#[test]
fn a_server_is_down_while_any_checker_is_and_quorum_has_hysteresis() {
    let c = conf(VS);
    let mut m = Model::new(&c, no_alpha);
    let (a, b) = (id(&c, "10.0.1.1"), id(&c, "10.0.1.2"));
    let vs = a.vs.clone();
    // One of two checkers of a: a is down; live 2 is not below 3 - 1.
    let o = m.on_checker(&a, 1, false, None, "status 500");
    assert_eq!(
        o.transitions,
        vec![Transition::RsDown {
            id: a.clone(),
            message: "status 500".into()
        }]
    );
    assert_eq!(o.changed, BTreeSet::from([vs.clone()]));
    // The other checker failing too changes nothing more.
    assert_eq!(
        m.on_checker(&a, 0, false, None, "refused"),
        Outcome::default()
    );
    // b down: live 0 < 2, quorum lost.
    let o = m.on_checker(&b, 0, false, None, "refused");
    assert_eq!(o.transitions.len(), 2);
    assert_eq!(
        o.transitions[1],
        Transition::QuorumLost {
            vs: vs.clone(),
            quorum: 3,
            live: 0
        }
    );
    // b back: live 2 < 3 + 1, still lost.
    let o = m.on_checker(&b, 0, true, None, "ok");
    assert_eq!(o.transitions.len(), 1);
    assert!(m.quorum_lost(&vs));
    // a's first checker back: a is still down (its second is not).
    assert_eq!(m.on_checker(&a, 0, true, None, "ok"), Outcome::default());
    // a fully back: live 4 >= 4, regained.
    let o = m.on_checker(&a, 1, true, None, "ok");
    assert_eq!(
        o.transitions.last(),
        Some(&Transition::QuorumReached {
            vs: vs.clone(),
            quorum: 3,
            live: 4
        })
    );
    assert!(!m.quorum_lost(&vs));
}

#[test]
fn dynamic_weight_is_a_transition_and_counts_for_quorum() {
    let c = conf(VS);
    let mut m = Model::new(&c, no_alpha);
    let a = id(&c, "10.0.1.1");
    let o = m.on_checker(&a, 0, true, Some(10), "weight 10");
    assert_eq!(
        o.transitions,
        vec![Transition::RsWeight {
            id: a.clone(),
            weight: Some(10),
            message: "weight 10".into()
        }]
    );
    assert_eq!(m.live_weight(&a.vs), 12);
    // The same weight again: no change. A failed check keeps it.
    assert_eq!(
        m.on_checker(&a, 0, true, Some(10), "weight 10"),
        Outcome::default()
    );
    m.on_checker(&a, 0, false, None, "down");
    assert_eq!(m.live_weight(&a.vs), 2);
    let vs = &c.virtual_servers[0];
    assert_eq!(m.status(vs, &vs.real_servers[0]).weight, Some(10));
}

#[test]
fn unknown_servers_checkers_and_unchanged_scripts_are_no_change() {
    let c = conf(VS);
    let mut m = Model::new(&c, no_alpha);
    let mut gone = id(&c, "10.0.1.9");
    assert_eq!(m.on_checker(&gone, 0, false, None, ""), Outcome::default());
    gone = id(&c, "10.0.1.2");
    assert_eq!(m.on_checker(&gone, 5, false, None, ""), Outcome::default());
    assert_eq!(m.on_script("chk", true), Outcome::default());
    assert_eq!(m.on_script("none", false), Outcome::default());
    let o = m.on_script("chk", false);
    assert_eq!(
        o.transitions,
        vec![Transition::ScriptFailed { name: "chk".into() }]
    );
    assert!(o.changed.is_empty());
    assert_eq!(m.script_ok("chk"), Some(false));
    let o = m.on_script("bad", true);
    assert_eq!(
        o.transitions,
        vec![Transition::ScriptOk { name: "bad".into() }]
    );
}

/// Issue 15's bug: state failing at a reload must carry into the new model,
/// which restarted jobs start from.
#[test]
fn reload_carries_failures_by_identity() {
    let c = conf(VS);
    let mut m = Model::new(&c, no_alpha);
    let (a, b) = (id(&c, "10.0.1.1"), id(&c, "10.0.1.2"));
    m.on_checker(&a, 1, false, None, "status 500");
    m.on_checker(&b, 0, false, None, "refused");
    m.on_script("chk", false);
    assert!(m.quorum_lost(&a.vs));
    // Unchanged configuration: everything carries.
    let r = m.reload(&c, &c, no_alpha);
    assert_eq!(r.checker_up(&a, 1), Some(false));
    assert_eq!(r.checker_up(&a, 0), Some(true));
    assert_eq!(r.checker_up(&b, 0), Some(false));
    assert_eq!(r.script_ok("chk"), Some(false));
    assert!(r.quorum_lost(&a.vs));
    let vs = &c.virtual_servers[0];
    assert!(!r.status(vs, &vs.real_servers[0]).up);
    // A recovery after the reload is a transition.
    let mut r = r;
    let o = r.on_checker(&b, 0, true, None, "ok");
    assert!(matches!(o.transitions[0], Transition::RsUp { .. }));
    assert!(matches!(
        r.on_script("chk", true).transitions[0],
        Transition::ScriptOk { .. }
    ));
    // A changed HTTP_GET starts as configured: a is up again, quorum back.
    let n = conf(&VS.replace("path /", "path /health"));
    let r = m.reload(&c, &n, no_alpha);
    let vs = &n.virtual_servers[0];
    assert!(r.status(vs, &vs.real_servers[0]).up);
    assert_eq!(r.checker_up(&b, 0), Some(false));
    // live 2 (a) < 3 + 1: a lost quorum stays lost until regained with hysteresis.
    assert!(r.quorum_lost(&a.vs));
}
