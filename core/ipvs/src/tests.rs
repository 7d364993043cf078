//! Reconciliation and model tests.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(a: &str, port: u16) -> ServiceKey {
    ServiceKey::addr(Protocol::Tcp, ip(a), port)
}

fn dk(a: &str, port: u16) -> DestKey {
    DestKey::new(ip(a), port)
}

fn web(vip: &str, sched: &str, backends: &[(&str, u32)]) -> Service {
    let key = tcp(vip, 80);
    let mut svc = Service::new(key.clone(), ServiceSpec::new(sched, key.af()));
    for (a, w) in backends {
        svc.dests.insert(dk(a, 80), DestSpec::new(Fwd::Masq, *w));
    }
    svc
}

fn state(services: impl IntoIterator<Item = Service>) -> IpvsState {
    services.into_iter().collect()
}

/// diff, apply, and check the result converged and stayed valid.
fn reconcile(desired: &IpvsState, observed: &IpvsState, owned: &OwnedSet) -> (Vec<Op>, IpvsState) {
    let ops = diff(desired, observed, owned);
    let mut after = observed.clone();
    apply(&mut after, &ops).unwrap();
    assert_eq!(diff(desired, &after, owned), vec![], "not idempotent");
    (ops, after)
}

#[test]
fn empty_to_full_adds_services_then_their_dests() {
    let desired = state([
        web("10.0.0.100", "rr", &[("10.0.1.1", 1), ("10.0.1.2", 1)]),
        web("10.0.0.101", "wlc", &[("10.0.1.3", 5)]),
    ]);
    let owned = OwnedSet::from_state(&desired);
    let (ops, after) = reconcile(&desired, &IpvsState::new(), &owned);
    let a = tcp("10.0.0.100", 80);
    let b = tcp("10.0.0.101", 80);
    assert_eq!(
        ops,
        vec![
            Op::AddService(Service::new(a.clone(), ServiceSpec::new("rr", Af::V4))),
            Op::AddDest(a.clone(), dk("10.0.1.1", 80), DestSpec::new(Fwd::Masq, 1)),
            Op::AddDest(a, dk("10.0.1.2", 80), DestSpec::new(Fwd::Masq, 1)),
            Op::AddService(Service::new(b.clone(), ServiceSpec::new("wlc", Af::V4))),
            Op::AddDest(b, dk("10.0.1.3", 80), DestSpec::new(Fwd::Masq, 5)),
        ]
    );
    assert_eq!(after, desired);
}

#[test]
fn add_service_op_never_carries_dests() {
    let desired = state([web("10.0.0.1", "rr", &[("10.0.1.1", 1)])]);
    for op in diff(&desired, &IpvsState::new(), &OwnedSet::new()) {
        if let Op::AddService(s) = op {
            assert!(s.dests.is_empty());
        }
    }
}

#[test]
fn full_to_empty_removes_only_owned_services_without_del_dest() {
    let ours = web("10.0.0.100", "rr", &[("10.0.1.1", 1), ("10.0.1.2", 1)]);
    let foreign = web("10.9.9.9", "lc", &[("10.0.1.9", 3)]);
    let observed = state([ours.clone(), foreign.clone()]);
    let owned: OwnedSet = [ours.key.clone()].into_iter().collect();
    let (ops, after) = reconcile(&IpvsState::new(), &observed, &owned);
    assert_eq!(ops, vec![Op::DelService(ours.key.clone())]);
    assert_eq!(after, state([foreign]));
}

#[test]
fn foreign_service_and_its_dests_are_never_touched() {
    // Same backends as ours, different scheduler and weights: still foreign.
    let foreign = web("10.9.9.9", "lc", &[("10.0.1.1", 9), ("10.0.1.77", 1)]);
    let desired = state([web("10.0.0.100", "rr", &[("10.0.1.1", 1)])]);
    let observed = state([foreign.clone()]);
    let owned = OwnedSet::from_state(&desired);
    let (ops, after) = reconcile(&desired, &observed, &owned);
    assert!(ops.iter().all(|op| op.service() != &foreign.key));
    assert_eq!(after.services.get(&foreign.key), Some(&foreign));
}

#[test]
fn adopting_an_equal_service_gives_no_ops() {
    let desired = state([web(
        "10.0.0.100",
        "wrr",
        &[("10.0.1.1", 1), ("10.0.1.2", 2)],
    )]);
    // As a dump reports it: HASHED set, tunnel attributes zero, timeout set
    // though not persistent, a non-default mask that the kernel ignores.
    let mut observed = IpvsState::new();
    let key = tcp("10.0.0.100", 80);
    let spec = ServiceSpec::from_kernel(
        "wrr",
        IP_VS_SVC_F_HASHED,
        300,
        0xffff_ff00,
        Some(String::new()),
    );
    let mut svc = Service::new(key, spec);
    for (a, w) in [("10.0.1.1", 1), ("10.0.1.2", 2)] {
        let mut d = DestSpec::new(Fwd::Masq, w);
        d.tun_type = Some(TunType::Ipip);
        d.tun_port = Some(0);
        d.tun_flags = Some(0);
        svc.dests.insert(dk(a, 80), d);
    }
    observed.insert(svc);
    let owned = OwnedSet::from_state(&desired);
    assert_eq!(diff(&desired, &observed, &owned), vec![]);
    // Adoption needs no prior ownership either.
    assert_eq!(diff(&desired, &observed, &OwnedSet::new()), vec![]);
}

#[test]
fn weight_change_is_one_edit_dest() {
    let observed = state([web("10.0.0.1", "rr", &[("10.0.1.1", 1), ("10.0.1.2", 1)])]);
    let desired = state([web("10.0.0.1", "rr", &[("10.0.1.1", 1), ("10.0.1.2", 0)])]);
    let (ops, _) = reconcile(&desired, &observed, &OwnedSet::from_state(&desired));
    assert_eq!(
        ops,
        vec![Op::EditDest(
            tcp("10.0.0.1", 80),
            dk("10.0.1.2", 80),
            DestSpec::new(Fwd::Masq, 0)
        )]
    );
}

#[test]
fn threshold_and_forwarding_changes_are_edits() {
    let observed = state([web("10.0.0.1", "rr", &[("10.0.1.1", 1), ("10.0.1.2", 1)])]);
    let mut desired = observed.clone();
    let svc = desired.services.get_mut(&tcp("10.0.0.1", 80)).unwrap();
    svc.dests.get_mut(&dk("10.0.1.1", 80)).unwrap().fwd = Fwd::Route;
    let d2 = svc.dests.get_mut(&dk("10.0.1.2", 80)).unwrap();
    d2.u_threshold = 100;
    d2.l_threshold = 50;
    let (ops, _) = reconcile(&desired, &observed, &OwnedSet::new());
    assert_eq!(ops.len(), 2);
    assert!(ops.iter().all(|o| matches!(o, Op::EditDest(..))));
}

#[test]
fn tunnel_settings_change_is_an_edit() {
    let key = tcp("10.0.0.1", 80);
    let mut t = DestSpec::new(Fwd::Tunnel, 1);
    let observed = state([Service::new(key.clone(), ServiceSpec::new("rr", Af::V4))
        .with_dest(dk("10.0.1.1", 80), t.clone())]);
    t.tun_type = Some(TunType::Gue);
    t.tun_port = Some(6080);
    t.tun_flags = Some(TUN_F_CSUM);
    let desired = state([Service::new(key.clone(), ServiceSpec::new("rr", Af::V4))
        .with_dest(dk("10.0.1.1", 80), t.clone())]);
    let (ops, _) = reconcile(&desired, &observed, &OwnedSet::new());
    assert_eq!(ops, vec![Op::EditDest(key, dk("10.0.1.1", 80), t)]);
}

#[test]
fn scheduler_change_is_one_edit_service() {
    let observed = state([web("10.0.0.1", "rr", &[("10.0.1.1", 1)])]);
    let desired = state([web("10.0.0.1", "sh", &[("10.0.1.1", 1)])]);
    let (ops, _) = reconcile(&desired, &observed, &OwnedSet::new());
    assert_eq!(
        ops,
        vec![Op::EditService(
            tcp("10.0.0.1", 80),
            ServiceSpec::new("sh", Af::V4)
        )]
    );
}

#[test]
fn scheduler_flag_change_is_one_edit_service() {
    let observed = state([web("10.0.0.1", "sh", &[])]);
    let mut desired = observed.clone();
    desired
        .services
        .get_mut(&tcp("10.0.0.1", 80))
        .unwrap()
        .spec
        .flags = IP_VS_SVC_F_SCHED_SH_PORT;
    let (ops, _) = reconcile(&desired, &observed, &OwnedSet::new());
    assert_eq!(ops.len(), 1);
    assert!(matches!(ops[0], Op::EditService(..)));
}

#[test]
fn persistence_changes() {
    let key = tcp("10.0.0.1", 443);
    let mk = |p: Option<u32>, mask: u32, pe: Option<&str>| {
        let mut s = ServiceSpec::new("wlc", Af::V4);
        s.persistence = p;
        s.netmask = mask;
        s.pe_name = pe.map(String::from);
        state([Service::new(key.clone(), s)])
    };
    let full = 0xffff_ffff;
    let c24 = 0xffff_ff00;
    let cases = [
        // (observed, desired, ops expected)
        (mk(None, full, None), mk(Some(300), full, None), 1),
        (mk(Some(300), full, None), mk(None, full, None), 1),
        (mk(Some(300), full, None), mk(Some(600), full, None), 1),
        (mk(Some(300), full, None), mk(Some(300), c24, None), 1),
        (
            mk(Some(300), full, None),
            mk(Some(300), full, Some("sip")),
            1,
        ),
        // Granularity without persistence does nothing in the kernel.
        (mk(None, full, None), mk(None, c24, None), 0),
        (mk(Some(300), c24, None), mk(Some(300), c24, None), 0),
    ];
    for (i, (observed, desired, n)) in cases.iter().enumerate() {
        let (ops, _) = reconcile(desired, observed, &OwnedSet::new());
        assert_eq!(ops.len(), *n, "case {i}: {ops:?}");
        assert!(
            ops.iter().all(|o| matches!(o, Op::EditService(..))),
            "case {i}"
        );
    }
}

#[test]
fn dest_add_and_remove() {
    let observed = state([web("10.0.0.1", "rr", &[("10.0.1.1", 1), ("10.0.1.2", 1)])]);
    let desired = state([web("10.0.0.1", "rr", &[("10.0.1.2", 1), ("10.0.1.3", 1)])]);
    let k = tcp("10.0.0.1", 80);
    let (ops, after) = reconcile(&desired, &observed, &OwnedSet::new());
    assert_eq!(
        ops,
        vec![
            Op::DelDest(k.clone(), dk("10.0.1.1", 80)),
            Op::AddDest(k, dk("10.0.1.3", 80), DestSpec::new(Fwd::Masq, 1)),
        ]
    );
    assert_eq!(after, desired);
}

#[test]
fn dest_port_change_is_del_plus_add() {
    let k = tcp("10.0.0.1", 80);
    let observed = state([Service::new(k.clone(), ServiceSpec::new("rr", Af::V4))
        .with_dest(dk("10.0.1.1", 80), DestSpec::new(Fwd::Route, 1))]);
    let desired = state([Service::new(k.clone(), ServiceSpec::new("rr", Af::V4))
        .with_dest(dk("10.0.1.1", 8080), DestSpec::new(Fwd::Route, 1))]);
    let (ops, _) = reconcile(&desired, &observed, &OwnedSet::new());
    assert_eq!(
        ops,
        vec![
            Op::DelDest(k.clone(), dk("10.0.1.1", 80)),
            Op::AddDest(k, dk("10.0.1.1", 8080), DestSpec::new(Fwd::Route, 1)),
        ]
    );
}

#[test]
fn drift_in_an_owned_service_is_repaired() {
    // Someone ran `ipvsadm -d` on one backend and `ipvsadm -a` for another.
    let desired = state([web("10.0.0.1", "rr", &[("10.0.1.1", 1), ("10.0.1.2", 1)])]);
    let observed = state([web("10.0.0.1", "rr", &[("10.0.1.1", 1), ("10.0.1.66", 1)])]);
    let (ops, after) = reconcile(&desired, &observed, &OwnedSet::from_state(&desired));
    assert_eq!(ops.len(), 2);
    assert_eq!(after, desired);
}

#[test]
fn fwmark_and_ipv6_services() {
    let fw4 = ServiceKey::fwmark(Af::V4, 10);
    let fw6 = ServiceKey::fwmark(Af::V6, 10);
    let v6 = ServiceKey::addr(Protocol::Udp, ip("fd00::53"), 53);
    let mut spec6 = ServiceSpec::new("sh", Af::V6);
    spec6.persistence = Some(60);
    spec6.netmask = 64;
    let desired = state([
        Service::new(fw4.clone(), ServiceSpec::new("rr", Af::V4))
            .with_dest(dk("10.0.1.1", 0), DestSpec::new(Fwd::Route, 1)),
        Service::new(fw6.clone(), ServiceSpec::new("rr", Af::V6))
            .with_dest(dk("fd00::10", 0), DestSpec::new(Fwd::Route, 1)),
        Service::new(v6.clone(), spec6.clone())
            .with_dest(dk("fd00::11", 53), DestSpec::new(Fwd::Masq, 1)),
    ]);
    assert_eq!(desired.validate(), Ok(()));
    let owned = OwnedSet::from_state(&desired);
    let (ops, after) = reconcile(&desired, &IpvsState::new(), &owned);
    assert_eq!(ops.len(), 6);
    assert_eq!(after, desired);
    // Same mark, other family: a different service.
    assert_ne!(fw4, fw6);
    // v6 prefix change while persistent is an edit.
    let mut d2 = desired.clone();
    d2.services.get_mut(&v6).unwrap().spec.netmask = 48;
    let (ops, _) = reconcile(&d2, &after, &owned);
    assert_eq!(ops.len(), 1);
    assert!(matches!(&ops[0], Op::EditService(k, s) if *k == v6 && s.netmask == 48));
}

#[test]
fn service_key_change_is_delete_then_add() {
    let observed = state([web("10.0.0.1", "rr", &[("10.0.1.1", 1)])]);
    let desired = state([web("10.0.0.2", "rr", &[("10.0.1.1", 1)])]);
    let mut owned = OwnedSet::from_state(&observed);
    owned.extend(desired.services.keys().cloned());
    let (ops, after) = reconcile(&desired, &observed, &owned);
    assert_eq!(
        ops,
        vec![
            Op::DelService(tcp("10.0.0.1", 80)),
            Op::AddService(Service::new(
                tcp("10.0.0.2", 80),
                ServiceSpec::new("rr", Af::V4)
            )),
            Op::AddDest(
                tcp("10.0.0.2", 80),
                dk("10.0.1.1", 80),
                DestSpec::new(Fwd::Masq, 1)
            ),
        ]
    );
    assert_eq!(after, desired);
}

#[test]
fn protocol_change_is_delete_then_add() {
    let k_tcp = tcp("10.0.0.1", 53);
    let k_udp = ServiceKey::addr(Protocol::Udp, ip("10.0.0.1"), 53);
    let observed = state([Service::new(k_tcp.clone(), ServiceSpec::new("rr", Af::V4))]);
    let desired = state([Service::new(k_udp.clone(), ServiceSpec::new("rr", Af::V4))]);
    let owned: OwnedSet = [k_tcp.clone(), k_udp.clone()].into_iter().collect();
    let (ops, _) = reconcile(&desired, &observed, &owned);
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[0], Op::DelService(k_tcp));
    assert!(matches!(&ops[1], Op::AddService(s) if s.key == k_udp));
}

#[test]
fn owned_key_absent_everywhere_is_a_no_op() {
    let owned: OwnedSet = [tcp("10.0.0.1", 80)].into_iter().collect();
    assert_eq!(diff(&IpvsState::new(), &IpvsState::new(), &owned), vec![]);
}

#[test]
fn apply_refuses_what_the_kernel_refuses() {
    let k = tcp("10.0.0.1", 80);
    let d = dk("10.0.1.1", 80);
    let spec = DestSpec::new(Fwd::Masq, 1);
    let mut s = IpvsState::new();
    assert_eq!(
        apply(&mut s, &[Op::AddDest(k.clone(), d, spec.clone())]),
        Err(ApplyError::NoService {
            index: 0,
            service: k.clone()
        })
    );
    let add = Op::AddService(Service::new(k.clone(), ServiceSpec::new("rr", Af::V4)));
    assert!(matches!(
        apply(&mut s, &[add.clone(), add.clone()]),
        Err(ApplyError::ServiceExists { index: 1, .. })
    ));
    assert!(matches!(
        apply(&mut s, &[Op::EditDest(k.clone(), d, spec.clone())]),
        Err(ApplyError::NoDest { index: 0, .. })
    ));
    assert!(matches!(
        apply(
            &mut s,
            &[
                Op::AddDest(k.clone(), d, spec.clone()),
                Op::AddDest(k.clone(), d, spec)
            ]
        ),
        Err(ApplyError::DestExists { index: 1, .. })
    ));
    assert!(matches!(
        apply(
            &mut s,
            &[Op::DelService(k.clone()), Op::DelService(k.clone())]
        ),
        Err(ApplyError::NoService { index: 1, .. })
    ));
    assert!(ApplyError::NoDest {
        index: 3,
        service: k,
        dest: d
    }
    .to_string()
    .contains("TCP 10.0.0.1:80"));
}

/// Checks the kernel-order rules on a list of ops.
fn assert_ordering(ops: &[Op]) {
    let mut added = BTreeSet::new();
    let mut seen_non_delete = false;
    let mut touched_dests = BTreeSet::new();
    for op in ops {
        match op {
            Op::DelService(k) => {
                assert!(!seen_non_delete, "service deletion after other ops");
                assert!(
                    !ops.iter().any(|o| matches!(o, Op::DelDest(s, _) if s == k)),
                    "DelDest before DelService of {k}"
                );
            }
            Op::AddService(s) => {
                seen_non_delete = true;
                added.insert(s.key.clone());
            }
            Op::AddDest(k, d, _) | Op::EditDest(k, d, _) | Op::DelDest(k, d) => {
                seen_non_delete = true;
                if ops
                    .iter()
                    .any(|o| matches!(o, Op::AddService(s) if &s.key == k))
                {
                    assert!(added.contains(k), "dest op before its AddService");
                }
                assert!(touched_dests.insert((k.clone(), *d)), "dest touched twice");
            }
            Op::EditService(..) => seen_non_delete = true,
        }
    }
}

#[test]
fn ordering_constraints_hold() {
    let observed = state([
        web("10.0.0.1", "rr", &[("10.0.1.1", 1), ("10.0.1.2", 1)]),
        web("10.0.0.2", "rr", &[("10.0.1.1", 1)]),
        web("10.0.0.3", "rr", &[("10.0.1.1", 1)]),
    ]);
    let desired = state([
        web("10.0.0.1", "wrr", &[("10.0.1.2", 3), ("10.0.1.3", 1)]),
        web("10.0.0.4", "rr", &[("10.0.1.1", 1), ("10.0.1.2", 1)]),
    ]);
    let owned: OwnedSet = observed
        .services
        .keys()
        .chain(desired.services.keys())
        .cloned()
        .collect();
    let (ops, after) = reconcile(&desired, &observed, &owned);
    assert_ordering(&ops);
    assert_eq!(after, desired);
    assert_eq!(ops.len(), 2 + 1 + 1 + 1 + 1 + 3);
}

#[test]
fn one_change_among_ten_thousand_services_is_o1() {
    let mut desired = IpvsState::new();
    for i in 0..10_000u32 {
        let vip = Ipv4Addr::from(0x0a00_0000 + i);
        let key = ServiceKey::addr(Protocol::Tcp, IpAddr::V4(vip), 80);
        let svc = Service::new(key, ServiceSpec::new("wlc", Af::V4))
            .with_dest(
                DestKey::new(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + 2 * i)), 80),
                DestSpec::new(Fwd::Masq, 1),
            )
            .with_dest(
                DestKey::new(IpAddr::V4(Ipv4Addr::from(0x0b00_0001 + 2 * i)), 80),
                DestSpec::new(Fwd::Masq, 1),
            );
        desired.insert(svc);
    }
    let owned = OwnedSet::from_state(&desired);
    let observed = desired.clone();
    assert_eq!(diff(&desired, &observed, &owned).len(), 0);

    // One weight.
    let mut d1 = desired.clone();
    let k = ServiceKey::addr(Protocol::Tcp, IpAddr::V4(Ipv4Addr::from(0x0a00_1234)), 80);
    let svc = d1.services.get_mut(&k).unwrap();
    let first = *svc.dests.keys().next().unwrap();
    svc.dests.get_mut(&first).unwrap().weight = 7;
    assert_eq!(diff(&d1, &observed, &owned).len(), 1);

    // One scheduler.
    let mut d2 = desired.clone();
    d2.services.get_mut(&k).unwrap().spec.scheduler = "rr".into();
    assert_eq!(diff(&d2, &observed, &owned).len(), 1);

    // One service replaced by another VIP: del + add + 2 dests.
    let mut d3 = desired.clone();
    let mut moved = d3.services.remove(&k).unwrap();
    moved.key = tcp("172.16.0.1", 80);
    d3.insert(moved);
    let mut owned3 = owned.clone();
    owned3.extend(d3.services.keys().cloned());
    let (ops, _) = reconcile(&d3, &observed, &owned3);
    assert_eq!(ops.len(), 4);
}

/// xorshift64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn key_pool() -> Vec<ServiceKey> {
    let mut keys = Vec::new();
    for (i, proto) in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp]
        .into_iter()
        .enumerate()
    {
        keys.push(ServiceKey::addr(proto, ip("10.0.0.1"), 80));
        keys.push(ServiceKey::addr(proto, ip("10.0.0.2"), 443 + i as u16));
        keys.push(ServiceKey::addr(proto, ip("fd00::1"), 80));
    }
    keys.push(ServiceKey::fwmark(Af::V4, 1));
    keys.push(ServiceKey::fwmark(Af::V4, 2));
    keys.push(ServiceKey::fwmark(Af::V6, 1));
    keys
}

fn random_spec(rng: &mut Rng, af: Af, observed: bool) -> ServiceSpec {
    let mut s = ServiceSpec::new(*rng.pick(&["rr", "wrr", "sh", "mh"]), af);
    s.flags = *rng.pick(&[
        0,
        IP_VS_SVC_F_SCHED1,
        IP_VS_SVC_F_SCHED2 | IP_VS_SVC_F_ONEPACKET,
    ]);
    if rng.chance(40) {
        s.persistence = Some(*rng.pick(&[60, 300]));
        s.netmask = match af {
            Af::V4 => *rng.pick(&[0xffff_ffff, 0xffff_ff00]),
            Af::V6 => *rng.pick(&[128, 64]),
        };
        if rng.chance(20) {
            s.pe_name = Some("sip".into());
        }
    } else if observed && rng.chance(30) {
        // Leftovers a dump may show that do not matter.
        s.netmask = match af {
            Af::V4 => 0xffff_0000,
            Af::V6 => 96,
        };
        if rng.chance(50) {
            s.pe_name = Some(String::new());
        }
    }
    s
}

fn random_dest(rng: &mut Rng, observed: bool) -> DestSpec {
    let fwd = *rng.pick(&[Fwd::Masq, Fwd::Route, Fwd::Tunnel]);
    let mut d = DestSpec::new(fwd, rng.below(4) as u32);
    if rng.chance(20) {
        d.u_threshold = 100;
        d.l_threshold = *rng.pick(&[0, 50]);
    }
    if fwd == Fwd::Tunnel && rng.chance(50) {
        d.tun_type = Some(TunType::Gue);
        d.tun_port = Some(*rng.pick(&[6080, 6081]));
    } else if observed && rng.chance(50) {
        // What the kernel reports for a destination with default tunnel info.
        d.tun_type = Some(TunType::Ipip);
        d.tun_port = Some(0);
        d.tun_flags = Some(TUN_F_NOCSUM);
    }
    d
}

fn random_state(rng: &mut Rng, keys: &[ServiceKey], observed: bool) -> IpvsState {
    let mut st = IpvsState::new();
    for key in keys {
        if !rng.chance(50) {
            continue;
        }
        let af = key.af();
        let mut svc = Service::new(key.clone(), random_spec(rng, af, observed));
        let pool: &[&str] = match af {
            Af::V4 => &["10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.4"],
            Af::V6 => &["fd00::a", "fd00::b", "fd00::c"],
        };
        for a in pool {
            if rng.chance(50) {
                let port = *rng.pick(&[80u16, 8080]);
                svc.dests.insert(dk(a, port), random_dest(rng, observed));
            }
        }
        st.insert(svc);
    }
    st
}

#[test]
fn random_pairs_converge_and_respect_ownership() {
    let keys = key_pool();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut total_ops = 0;
    for round in 0..1000 {
        let desired = random_state(&mut rng, &keys, false);
        let observed = random_state(&mut rng, &keys, true);
        assert_eq!(desired.validate(), Ok(()), "round {round}");
        let mut owned = OwnedSet::new();
        for k in observed.services.keys() {
            if rng.chance(60) {
                owned.insert(k.clone());
            }
        }
        if rng.chance(50) {
            owned.extend(desired.services.keys().cloned());
        }

        let (ops, after) = reconcile(&desired, &observed, &owned);
        assert_ordering(&ops);
        total_ops += ops.len();

        for (k, svc) in &observed.services {
            let managed = owned.contains(k) || desired.services.contains_key(k);
            if !managed {
                assert!(
                    ops.iter().all(|o| o.service() != k),
                    "round {round}: foreign {k} touched"
                );
                assert_eq!(after.services.get(k), Some(svc), "round {round}");
            }
        }
        for (k, want) in &desired.services {
            let got = after.services.get(k).unwrap();
            assert!(got.spec.equivalent(&want.spec, k.af()), "round {round}");
            assert_eq!(
                got.dests.keys().collect::<Vec<_>>(),
                want.dests.keys().collect::<Vec<_>>()
            );
            for (d, ds) in &want.dests {
                assert!(got.dests[d].equivalent(ds), "round {round}");
            }
        }
        for k in owned.iter() {
            if !desired.services.contains_key(k) {
                assert!(!after.services.contains_key(k), "round {round}");
            }
        }
        // Minimal: a second pass from the converged state is empty (checked
        // in reconcile) and no op is a no-op on its own.
        for op in &ops {
            match op {
                Op::EditService(k, s) => {
                    assert!(!observed.services[k].spec.equivalent(s, k.af()))
                }
                Op::EditDest(k, d, s) => assert!(!observed.services[k].dests[d].equivalent(s)),
                _ => {}
            }
        }
    }
    assert!(total_ops > 1000, "generator too tame: {total_ops}");
}

#[test]
fn spec_kernel_round_trip() {
    let mut s = ServiceSpec::new("sh", Af::V4);
    s.flags = IP_VS_SVC_F_SCHED_SH_FALLBACK | IP_VS_SVC_F_SCHED_SH_PORT;
    s.persistence = Some(300);
    s.netmask = 0xffff_ff00;
    let flags = s.kernel_flags();
    assert_eq!(flags, 0x0008 | 0x0010 | 0x0001);
    assert_eq!(flags & IP_VS_SVC_F_HASHED, 0);
    let back = ServiceSpec::from_kernel(
        "sh",
        flags | IP_VS_SVC_F_HASHED,
        s.kernel_timeout(),
        s.netmask,
        None,
    );
    assert_eq!(back, s);
    let plain = ServiceSpec::new("rr", Af::V6);
    assert_eq!(plain.kernel_flags(), 0);
    assert_eq!(plain.kernel_timeout(), 0);
    assert_eq!(plain.netmask, 128);
}

#[test]
fn kernel_codes() {
    for f in [Fwd::Masq, Fwd::Local, Fwd::Tunnel, Fwd::Route, Fwd::Bypass] {
        assert_eq!(Fwd::from_kernel(f.to_kernel()), Some(f));
    }
    assert_eq!(Fwd::from_kernel(0x0103), Some(Fwd::Route));
    assert_eq!(Fwd::from_kernel(7), None);
    for p in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
        assert_eq!(Protocol::from_kernel(p.to_kernel()), Some(p));
    }
    assert_eq!(Protocol::from_kernel(1), None);
    for t in [TunType::Ipip, TunType::Gue, TunType::Gre] {
        assert_eq!(TunType::from_kernel(t.to_kernel()), Some(t));
    }
    assert_eq!(TunType::from_kernel(3), None);
    assert_eq!(Af::from_kernel(2), Some(Af::V4));
    assert_eq!(Af::from_kernel(10), Some(Af::V6));
    assert_eq!(Af::from_kernel(0), None);
    assert_eq!(Af::V6.to_kernel(), 10);
    assert_eq!(
        IpvsInfo {
            version: 0x010201,
            conn_tab_size: 4096
        }
        .version_string(),
        "1.2.1"
    );
}

#[test]
fn validation() {
    let k = tcp("10.0.0.1", 80);
    let good = || Service::new(k.clone(), ServiceSpec::new("rr", Af::V4));
    let check = |svc: Service| state([svc]).validate().map_err(|e| e.kind);
    assert_eq!(check(good()), Ok(()));

    let mut s = good();
    s.spec.scheduler = "roundrobin".into();
    assert!(matches!(check(s), Err(ModelErrorKind::UnknownScheduler(_))));
    let mut s = good();
    s.spec.flags = IP_VS_SVC_F_HASHED;
    assert_eq!(check(s), Err(ModelErrorKind::Flags(IP_VS_SVC_F_HASHED)));
    let mut s = good();
    s.spec.flags = IP_VS_SVC_F_PERSISTENT;
    assert!(check(s).is_err());
    let mut s = good();
    s.spec.persistence = Some(0);
    assert_eq!(check(s), Err(ModelErrorKind::PersistenceZero));
    let mut s = good();
    s.spec.pe_name = Some("x".repeat(17));
    assert!(matches!(check(s), Err(ModelErrorKind::PeName(_))));

    let v6 = Service::new(
        ServiceKey::addr(Protocol::Tcp, ip("fd00::1"), 80),
        ServiceSpec::new("rr", Af::V6),
    );
    assert_eq!(check(v6.clone()), Ok(()));
    for bad in [0, 129, 0xffff_ffff] {
        let mut s = v6.clone();
        s.spec.netmask = bad;
        assert_eq!(check(s), Err(ModelErrorKind::V6Netmask(bad)));
    }

    let fw0 = Service::new(
        ServiceKey::fwmark(Af::V4, 0),
        ServiceSpec::new("rr", Af::V4),
    );
    assert_eq!(check(fw0), Err(ModelErrorKind::FwmarkZero));

    let with = |d: DestSpec| good().with_dest(dk("10.0.1.1", 80), d);
    assert_eq!(
        check(with(DestSpec::new(Fwd::Masq, i32::MAX as u32 + 1))),
        Err(ModelErrorKind::Weight(i32::MAX as u32 + 1))
    );
    let mut d = DestSpec::new(Fwd::Masq, 1);
    d.l_threshold = 5;
    assert_eq!(
        check(with(d.clone())),
        Err(ModelErrorKind::Thresholds { l: 5, u: 0 })
    );
    d.u_threshold = 5;
    assert_eq!(check(with(d)), Ok(()));
    let mut d = DestSpec::new(Fwd::Masq, 1);
    d.tun_type = Some(TunType::Gre);
    assert_eq!(check(with(d)), Err(ModelErrorKind::TunnelOptions));
    let mut d = DestSpec::new(Fwd::Tunnel, 1);
    d.tun_type = Some(TunType::Gue);
    assert_eq!(check(with(d.clone())), Err(ModelErrorKind::GuePort));
    d.tun_port = Some(6080);
    d.tun_flags = Some(TUN_F_REMCSUM);
    assert_eq!(check(with(d.clone())), Ok(()));
    d.tun_flags = Some(0x10);
    assert_eq!(check(with(d)), Err(ModelErrorKind::TunnelFlags(0x10)));

    // v6 backend behind a v4 service: tunnel only.
    let mixed = |fwd| good().with_dest(dk("fd00::1", 80), DestSpec::new(fwd, 1));
    assert_eq!(check(mixed(Fwd::Route)), Err(ModelErrorKind::MixedFamily));
    assert_eq!(check(mixed(Fwd::Tunnel)), Ok(()));

    let err = state([with(DestSpec::new(Fwd::Masq, u32::MAX))])
        .validate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "TCP 10.0.0.1:80 -> 10.0.1.1:80: weight 4294967295 is above 2147483647"
    );
}

#[test]
fn key_display_and_family() {
    assert_eq!(tcp("10.0.0.1", 80).to_string(), "TCP 10.0.0.1:80");
    let k6 = ServiceKey::addr(Protocol::Sctp, IpAddr::V6(Ipv6Addr::LOCALHOST), 9);
    assert_eq!(k6.to_string(), "SCTP [::1]:9");
    assert_eq!(k6.af(), Af::V6);
    assert_eq!(ServiceKey::fwmark(Af::V6, 5).to_string(), "FWM 5 IPv6");
    assert_eq!(ServiceKey::fwmark(Af::V4, 5).af(), Af::V4);
}
