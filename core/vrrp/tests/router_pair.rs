//! Routers on a simulated LAN, talking ENCODED BYTES (quinn's `Pair`): each
//! `poll_transmit` packet is delivered, after a fixed delay, to the
//! `handle_datagram` of every other router it is addressed to (all of them
//! for the multicast group, the owner of the address for a unicast peer),
//! with a simulated clock driving `poll_timeout` / `handle_timeout`.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use lbd_vrrp::auth::AuthKey;
use lbd_vrrp::codec::{DropReason, MCAST_V4, MCAST_V6};
use lbd_vrrp::instance::{GarpTiming, InstanceConfig, State};
use lbd_vrrp::router::{
    Datagram, Event, OldChecksum, Router, RouterInstanceConfig, SocketConfig, Transmit,
};
use lbd_vrrp::Version;

const DELAY: Duration = Duration::from_millis(1);
const VIP4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100));
const VIP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100));

fn addr4(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, u8::try_from(n + 1).unwrap()))
}

fn addr6(n: usize) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        0,
        0,
        0,
        u16::try_from(n + 1).unwrap(),
    ))
}

/// One instance's configuration on node `n`.
#[derive(Clone)]
struct Spec {
    version: Version,
    v6: bool,
    vrid: u8,
    priority: u8,
    preempt: bool,
    auth: Option<AuthKey>,
    unicast: Option<Vec<usize>>,
    old_checksum: OldChecksum,
}

impl Spec {
    fn new(version: Version, priority: u8) -> Self {
        Spec {
            version,
            v6: false,
            vrid: 7,
            priority,
            preempt: true,
            auth: None,
            unicast: None,
            old_checksum: OldChecksum::Never,
        }
    }

    fn config(&self, n: usize, socket: usize) -> RouterInstanceConfig {
        let primary = if self.v6 { addr6(n) } else { addr4(n) };
        let vip = if self.v6 { VIP6 } else { VIP4 };
        let dsts = match &self.unicast {
            Some(peers) => peers
                .iter()
                .map(|&p| if self.v6 { addr6(p) } else { addr4(p) })
                .collect(),
            None if self.v6 => vec![IpAddr::V6(MCAST_V6)],
            None => vec![IpAddr::V4(MCAST_V4)],
        };
        RouterInstanceConfig {
            name: format!("n{n}-vrid{}", self.vrid),
            fsm: InstanceConfig {
                vrid: self.vrid,
                version: self.version,
                priority: self.priority,
                advert_int: Duration::from_secs(1),
                preempt: self.preempt,
                preempt_delay: Duration::ZERO,
                initial_master: false,
                primary_addr: primary,
                garp: GarpTiming::default(),
            },
            socket,
            unicast_peers: if self.unicast.is_some() {
                dsts.clone()
            } else {
                Vec::new()
            },
            dsts,
            advert_addrs: vec![vip],
            auth: self.auth,
            v3_checksum_as_v2: false,
            check_addrs: true,
            check_unicast_src: true,
            old_checksum: self.old_checksum,
            mcast_group4: MCAST_V4,
        }
    }

    fn socket(&self) -> SocketConfig {
        SocketConfig {
            ipv6: self.v6,
            unicast: self.unicast.is_some(),
            v3_checksum_as_v2: false,
            old_checksum_group: (self.unicast.is_some() && !self.v6).then_some(MCAST_V4),
        }
    }
}

struct Node {
    router: Router,
    /// Address of each instance (for unicast delivery).
    addrs: Vec<IpAddr>,
    /// VIPs held, per instance.
    vips: Vec<bool>,
    events: Vec<(Duration, Event)>,
    /// When each advert (its last packet) left, per instance.
    sent: Vec<Vec<Duration>>,
    alive: bool,
}

struct Net {
    t0: Instant,
    now: Instant,
    nodes: Vec<Node>,
    queue: BTreeMap<(Instant, u64), (usize, usize, IpAddr, Transmit)>,
    seq: u64,
}

impl Net {
    /// `specs[n]` are node n's instances; instance k uses socket k.
    fn new(specs: &[Vec<Spec>]) -> Net {
        let t0 = Instant::now();
        let nodes = specs
            .iter()
            .enumerate()
            .map(|(n, insts)| {
                let mut router = Router::new();
                let mut addrs = Vec::new();
                for (k, s) in insts.iter().enumerate() {
                    router.add_socket(k, s.socket());
                    let c = s.config(n, k);
                    addrs.push(c.fsm.primary_addr);
                    router.add_instance(c).unwrap();
                }
                Node {
                    router,
                    sent: vec![Vec::new(); addrs.len()],
                    vips: vec![false; addrs.len()],
                    addrs,
                    events: Vec::new(),
                    alive: true,
                }
            })
            .collect();
        Net {
            t0,
            now: t0,
            nodes,
            queue: BTreeMap::new(),
            seq: 0,
        }
    }

    fn start(&mut self, n: usize) {
        self.nodes[n].alive = true;
        self.nodes[n].router.startup(self.now);
        self.pump(n);
    }

    fn start_all(&mut self) {
        for n in 0..self.nodes.len() {
            self.start(n);
        }
    }

    /// Collects node n's transmits into the wire queue and its events.
    fn pump(&mut self, n: usize) {
        while let Some(t) = self.nodes[n].router.poll_transmit() {
            if t.last {
                let at = self.now - self.t0;
                self.nodes[n].sent[t.instance].push(at);
            }
            let src = self.nodes[n].addrs[t.socket];
            for m in 0..self.nodes.len() {
                if m == n {
                    continue;
                }
                // Same socket index on the receiver: the instances line up.
                let to_it =
                    t.dst.is_multicast() || self.nodes[m].addrs.get(t.socket) == Some(&t.dst);
                if to_it {
                    self.seq += 1;
                    self.queue
                        .insert((self.now + DELAY, self.seq), (m, n, src, t.clone()));
                }
            }
        }
        while let Some(ev) = self.nodes[n].router.poll_event() {
            assert_ne!(ev, Event::DrainLimit, "node {n}: the router did not settle");
            match ev {
                Event::AddVips { instance } => self.nodes[n].vips[instance] = true,
                Event::RemoveVips { instance } => self.nodes[n].vips[instance] = false,
                _ => {}
            }
            let at = self.now - self.t0;
            self.nodes[n].events.push((at, ev));
        }
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let wire = self.queue.keys().next().map(|k| k.0);
            let timer = self
                .nodes
                .iter()
                .filter(|n| n.alive)
                .filter_map(|n| n.router.poll_timeout())
                .min();
            let Some(next) = [wire, timer].into_iter().flatten().min() else {
                break;
            };
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            if wire == Some(next) {
                let (_, (to, _from, src, t)) = self.queue.pop_first().unwrap();
                if self.nodes[to].alive {
                    let dg = match (src, t.dst) {
                        (IpAddr::V6(s), IpAddr::V6(d)) => Datagram::V6 {
                            payload: &t.bytes,
                            src: s,
                            dst: d,
                            hop_limit: 255,
                        },
                        _ => Datagram::V4(&t.bytes),
                    };
                    self.nodes[to]
                        .router
                        .handle_datagram(self.now, t.socket, dg);
                    self.pump(to);
                }
            } else {
                for n in 0..self.nodes.len() {
                    if self.nodes[n].alive {
                        self.nodes[n].router.handle_timeout(self.now);
                        self.pump(n);
                    }
                }
            }
        }
        self.now = end;
    }

    fn state(&self, n: usize, i: usize) -> State {
        self.nodes[n].router.state(i).unwrap()
    }

    /// Exactly one node is master of instance i and holds its VIPs.
    fn master(&self, i: usize) -> usize {
        let masters: Vec<usize> = (0..self.nodes.len())
            .filter(|&n| self.nodes[n].alive && self.state(n, i) == State::Master)
            .collect();
        assert_eq!(masters.len(), 1, "masters of instance {i}: {masters:?}");
        for n in 0..self.nodes.len() {
            assert_eq!(
                self.nodes[n].vips[i],
                masters[0] == n,
                "node {n} VIPs of instance {i}"
            );
        }
        masters[0]
    }

    fn drops(&self, n: usize) -> Vec<DropReason> {
        self.nodes[n]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Dropped { error, .. } => Some(error.reason),
                _ => None,
            })
            .collect()
    }

    fn accepted(&self, n: usize) -> usize {
        self.nodes[n]
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Accepted { .. }))
            .count()
    }

    fn crash(&mut self, n: usize) {
        self.nodes[n].alive = false;
        self.queue
            .retain(|_, (to, from, _, _)| *to != n && *from != n);
    }

    fn shutdown(&mut self, n: usize) {
        self.nodes[n].router.shutdown(self.now);
        self.pump(n);
        self.nodes[n].alive = false;
    }
}

fn pair(a: Spec, b: Spec) -> Net {
    Net::new(&[vec![a], vec![b]])
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn election_v2_higher_priority_wins_over_bytes() {
    let mut net = pair(Spec::new(Version::V2, 100), Spec::new(Version::V2, 150));
    net.start_all();
    net.run_for(secs(10));
    assert_eq!(net.master(0), 1);
    assert_eq!(net.state(0, 0), State::Backup);
    assert!(net.accepted(0) >= 5, "backup heard the master's adverts");
    assert_eq!(net.drops(0), vec![]);
    assert_eq!(net.drops(1), vec![]);
}

#[test]
fn election_v3_ipv6() {
    let mut a = Spec::new(Version::V3, 200);
    a.v6 = true;
    let mut b = a.clone();
    b.priority = 100;
    let mut net = pair(a, b);
    net.start_all();
    net.run_for(secs(10));
    assert_eq!(net.master(0), 0);
    assert!(net.accepted(1) >= 5);
    assert_eq!(net.drops(1), vec![]);
}

#[test]
fn equal_priority_higher_address_wins() {
    let mut net = pair(Spec::new(Version::V3, 100), Spec::new(Version::V3, 100));
    net.start_all();
    net.run_for(secs(10));
    // RFC 9568 §6.4.3: 10.0.0.2 > 10.0.0.1.
    assert_eq!(net.master(0), 1);
}

#[test]
fn preemption_by_a_higher_router_that_starts_later() {
    let mut net = pair(Spec::new(Version::V3, 100), Spec::new(Version::V3, 150));
    net.nodes[1].alive = false;
    net.start(0);
    net.run_for(secs(10));
    assert_eq!(net.master(0), 0);
    net.start(1);
    net.run_for(secs(10));
    assert_eq!(net.master(0), 1, "RFC 9568 §6.4.2: preempt a lower master");
}

#[test]
fn nopreempt_leaves_the_lower_master_in_place() {
    let mut b = Spec::new(Version::V3, 150);
    b.preempt = false;
    let mut net = pair(Spec::new(Version::V3, 100), b);
    net.nodes[1].alive = false;
    net.start(0);
    net.run_for(secs(10));
    net.start(1);
    net.run_for(secs(20));
    assert_eq!(net.master(0), 0);
    assert_eq!(net.state(1, 0), State::Backup);
}

#[test]
fn priority_zero_release_hands_over_within_skew_time() {
    let mut net = pair(Spec::new(Version::V2, 100), Spec::new(Version::V2, 150));
    net.start_all();
    net.run_for(secs(10));
    assert_eq!(net.master(0), 1);
    let t = net.now - net.t0;
    net.shutdown(1);
    // Skew_Time at priority 100 is 156/256 s; Master_Down_Interval would be
    // over 3 s.
    net.run_for(Duration::from_millis(700));
    assert_eq!(net.state(0, 0), State::Master);
    let took_over = net.nodes[0]
        .events
        .iter()
        .find(|(at, e)| {
            *at >= t
                && matches!(
                    e,
                    Event::StateChange {
                        to: State::Master,
                        ..
                    }
                )
        })
        .map(|(at, _)| *at - t)
        .unwrap();
    assert!(took_over < Duration::from_millis(700), "{took_over:?}");
}

#[test]
fn crashed_master_is_replaced_after_master_down_interval() {
    let mut net = pair(Spec::new(Version::V3, 100), Spec::new(Version::V3, 150));
    net.start_all();
    net.run_for(secs(10));
    net.crash(1);
    net.run_for(secs(2));
    assert_eq!(net.state(0, 0), State::Backup, "3 intervals not yet over");
    net.run_for(secs(2));
    assert_eq!(net.state(0, 0), State::Master);
}

#[test]
fn pass_auth_accepts_the_right_password_only() {
    let mut a = Spec::new(Version::V2, 100);
    a.auth = Some(AuthKey::pass(b"secret"));
    let b = {
        let mut b = a.clone();
        b.priority = 150;
        b
    };
    let mut net = pair(a.clone(), b);
    net.start_all();
    net.run_for(secs(10));
    assert_eq!(net.master(0), 1);
    assert_eq!(net.drops(0), vec![]);

    let mut wrong = a.clone();
    wrong.priority = 150;
    wrong.auth = Some(AuthKey::pass(b"other"));
    let mut net = pair(a, wrong);
    net.start_all();
    net.run_for(secs(10));
    // Neither hears the other: both master.
    assert_eq!(net.state(0, 0), State::Master);
    assert_eq!(net.state(1, 0), State::Master);
    assert!(net.drops(0).contains(&DropReason::AuthPassword));
}

#[test]
fn ah_auth_over_bytes_with_sequence_numbers() {
    let mut a = Spec::new(Version::V2, 100);
    a.auth = Some(AuthKey::ah(b"secret"));
    let mut b = a.clone();
    b.priority = 150;
    let mut net = pair(a.clone(), b);
    net.start_all();
    net.run_for(secs(10));
    assert_eq!(net.master(0), 1);
    assert_eq!(net.drops(0), vec![]);
    assert!(net.accepted(0) >= 5);
    // The backup takes over and continues above the master's sequence
    // numbers (keepalived shares one counter): the old master, back, accepts.
    net.crash(1);
    net.run_for(secs(5));
    assert_eq!(net.state(0, 0), State::Master);

    let mut wrong = a.clone();
    wrong.priority = 150;
    wrong.auth = Some(AuthKey::ah(b"other"));
    let mut net = pair(a, wrong);
    net.start_all();
    net.run_for(secs(10));
    assert_eq!(net.state(0, 0), State::Master);
    assert!(net.drops(0).contains(&DropReason::AhIcv));
}

#[test]
fn unicast_peers_elect_and_foreign_sources_are_dropped() {
    let mut a = Spec::new(Version::V3, 100);
    a.unicast = Some(vec![1]);
    let mut b = Spec::new(Version::V3, 150);
    b.unicast = Some(vec![0]);
    // Node 2 is nobody's peer but sends to node 0.
    let mut c = Spec::new(Version::V3, 200);
    c.unicast = Some(vec![0]);
    let mut net = Net::new(&[vec![a], vec![b], vec![c]]);
    net.start_all();
    net.run_for(secs(10));
    assert_eq!(net.state(0, 0), State::Backup);
    assert_eq!(net.state(1, 0), State::Master);
    assert!(net.drops(0).contains(&DropReason::AddrList));
}

#[test]
fn old_unicast_checksum_is_detected_and_adopted() {
    let mut a = Spec::new(Version::V3, 100);
    a.unicast = Some(vec![1]);
    a.old_checksum = OldChecksum::Auto;
    let mut b = Spec::new(Version::V3, 150);
    b.unicast = Some(vec![0]);
    b.old_checksum = OldChecksum::Always;
    let mut net = pair(a, b);
    net.start_all();
    net.run_for(secs(10));
    assert_eq!(net.master(0), 1);
    let switched = net.nodes[0]
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::OldChecksumSwitch { .. }));
    assert!(switched);
    assert_eq!(net.drops(0), vec![]);
}

#[test]
fn version_mismatch_is_dropped() {
    let mut net = pair(Spec::new(Version::V2, 100), Spec::new(Version::V3, 150));
    net.start_all();
    net.run_for(secs(10));
    assert_eq!(net.state(0, 0), State::Master);
    assert!(net.drops(0).contains(&DropReason::Version));
}

#[test]
fn sync_group_moves_together_on_a_member_fault() {
    let specs = |p: u8| {
        let a = Spec::new(Version::V3, p);
        let mut b = a.clone();
        b.vrid = 8;
        vec![a, b]
    };
    let mut net = Net::new(&[specs(150), specs(100)]);
    for n in 0..2 {
        net.nodes[n].router.add_sync_group(&[0, 1]).unwrap();
    }
    net.start_all();
    net.run_for(secs(10));
    assert_eq!(net.master(0), 0);
    assert_eq!(net.master(1), 0);
    // A fault on one member of the master's group moves both.
    let now = net.now;
    net.nodes[0].router.set_tracking(now, 1, true, 0);
    net.pump(0);
    net.run_for(secs(5));
    assert_eq!(net.state(0, 0), State::Fault);
    assert_eq!(net.state(0, 1), State::Fault);
    assert_eq!(net.master(0), 1);
    assert_eq!(net.master(1), 1);
    let group_backup = net.nodes[1].events.iter().any(|(_, e)| {
        matches!(
            e,
            Event::GroupStateChange {
                to: State::Master,
                ..
            }
        )
    });
    assert!(group_backup, "group notified once all members are master");
    // Cleared: back to Backup, then preempting back to master.
    let now = net.now;
    net.nodes[0].router.set_tracking(now, 1, false, 0);
    net.pump(0);
    net.run_for(secs(10));
    assert_eq!(net.master(0), 0);
    assert_eq!(net.master(1), 0);
}

#[test]
fn priority_adjustment_moves_mastership() {
    let mut net = pair(Spec::new(Version::V3, 150), Spec::new(Version::V3, 100));
    net.start_all();
    net.run_for(secs(10));
    assert_eq!(net.master(0), 0);
    let now = net.now;
    net.nodes[0].router.set_tracking(now, 0, false, -60);
    net.pump(0);
    net.run_for(secs(10));
    assert_eq!(net.master(0), 1, "90 < 100: the backup preempts");
}

// --- reload in place and maintenance (issue 16) ------------------------------

impl Net {
    fn reconfigure(&mut self, n: usize, spec: &Spec) {
        let c = spec.config(n, 0);
        self.nodes[n]
            .router
            .reconfigure_instance(self.now, 0, c)
            .unwrap();
        self.pump(n);
    }

    fn transitions_since(&self, n: usize, t: Duration) -> Vec<State> {
        self.nodes[n]
            .events
            .iter()
            .filter(|(at, _)| *at >= t)
            .filter_map(|(_, e)| match e {
                Event::StateChange { to, .. } => Some(*to),
                _ => None,
            })
            .collect()
    }

    fn since(&self) -> Duration {
        self.now - self.t0
    }
}

#[test]
fn unchanged_reconfigure_keeps_state_and_advert_rhythm() {
    let spec = Spec::new(Version::V2, 150);
    let mut net = pair(Spec::new(Version::V2, 100), spec.clone());
    net.start_all();
    net.run_for(Duration::from_millis(10_500));
    let t = net.since();
    for _ in 0..5 {
        net.reconfigure(1, &spec);
        net.run_for(Duration::from_millis(300));
    }
    net.run_for(secs(5));
    assert_eq!(net.transitions_since(0, t), vec![]);
    assert_eq!(net.transitions_since(1, t), vec![]);
    assert_eq!(net.master(0), 1);
    let sent: Vec<Duration> = net.nodes[1].sent[0]
        .iter()
        .filter(|at| **at >= t)
        .copied()
        .collect();
    // No extra and no missing advert: exactly one per second.
    for w in sent.windows(2) {
        assert_eq!(w[1] - w[0], secs(1), "{sent:?}");
    }
}

#[test]
fn lowered_priority_hands_over_only_by_election() {
    let mut spec = Spec::new(Version::V2, 150);
    let mut net = pair(Spec::new(Version::V2, 100), spec.clone());
    net.start_all();
    net.run_for(secs(10));
    assert_eq!(net.master(0), 1);
    let t = net.since();
    spec.priority = 50;
    net.reconfigure(1, &spec);
    assert_eq!(
        net.transitions_since(1, t),
        vec![],
        "no transition at reload"
    );
    net.run_for(secs(6));
    // The backup (100, preempt) discards the lower adverts and takes over.
    assert_eq!(net.master(0), 0);
    assert_eq!(net.transitions_since(1, t), vec![State::Backup]);
}

#[test]
fn advert_interval_change_moves_the_rhythm_without_transition() {
    let mut spec = Spec::new(Version::V3, 150);
    let mut net = pair(Spec::new(Version::V3, 100), spec.clone());
    net.start_all();
    net.run_for(secs(10));
    let t = net.since();
    spec.priority = 150;
    let mut c = spec.config(1, 0);
    c.fsm.advert_int = Duration::from_millis(250);
    net.nodes[1]
        .router
        .reconfigure_instance(net.now, 0, c)
        .unwrap();
    net.pump(1);
    net.run_for(secs(5));
    assert_eq!(net.transitions_since(0, t), vec![]);
    assert_eq!(net.transitions_since(1, t), vec![]);
    let sent: Vec<Duration> = net.nodes[1].sent[0]
        .iter()
        .filter(|at| **at >= t + secs(1))
        .copied()
        .collect();
    assert!(sent.len() >= 15, "{sent:?}");
    for w in sent.windows(2) {
        assert_eq!(w[1] - w[0], Duration::from_millis(250), "{sent:?}");
    }
    // The v3 backup learnt the new interval (RFC 9568 §6.4.2).
    assert_eq!(
        net.nodes[0]
            .router
            .instance(0)
            .unwrap()
            .master_adver_interval(),
        Duration::from_millis(250)
    );
}

#[test]
fn a_change_of_vrid_is_not_in_place() {
    let mut spec = Spec::new(Version::V2, 150);
    let mut net = pair(Spec::new(Version::V2, 100), spec.clone());
    net.start_all();
    spec.vrid = 8;
    let c = spec.config(1, 0);
    assert!(net.nodes[1]
        .router
        .reconfigure_instance(net.now, 0, c)
        .is_err());
}

#[test]
fn demote_hands_over_within_skew_time_and_promote_takes_back() {
    let mut net = pair(Spec::new(Version::V2, 100), Spec::new(Version::V2, 150));
    net.start_all();
    net.run_for(secs(10));
    assert_eq!(net.master(0), 1);
    let now = net.now;
    net.nodes[1].router.set_demoted(now, 0, true);
    net.pump(1);
    net.run_for(Duration::from_millis(700));
    assert_eq!(
        net.master(0),
        0,
        "priority 0 sent: takeover after Skew_Time"
    );
    net.run_for(secs(20));
    assert_eq!(net.master(0), 0, "a demoted higher router never preempts");
    assert!(net.nodes[1].router.instance(0).unwrap().is_demoted());
    let now = net.now;
    net.nodes[1].router.set_demoted(now, 0, false);
    net.pump(1);
    net.run_for(secs(5));
    assert_eq!(net.master(0), 1, "promoted with preempt: takes back");
}

#[test]
fn removed_instance_resigns_and_an_added_one_starts() {
    let spec = Spec::new(Version::V2, 150);
    let mut net = pair(Spec::new(Version::V2, 100), spec.clone());
    net.start_all();
    net.run_for(secs(10));
    assert_eq!(net.master(0), 1);
    let now = net.now;
    net.nodes[1].router.remove_instance(now, 0);
    net.pump(1);
    assert!(!net.nodes[1].vips[0]);
    assert_eq!(net.nodes[1].router.state(0), None);
    net.run_for(Duration::from_millis(700));
    assert_eq!(net.state(0, 0), State::Master);
    // Added again under a new id on the same socket: preempts the lower master.
    let id = net.nodes[1].router.add_instance(spec.config(1, 0)).unwrap();
    assert_eq!(id, 1);
    net.nodes[1].vips.push(false);
    net.nodes[1].sent.push(Vec::new());
    let now = net.now;
    net.nodes[1].router.start_instance(now, id);
    net.pump(1);
    net.run_for(secs(10));
    assert_eq!(net.nodes[1].router.state(id), Some(State::Master));
    assert_eq!(net.state(0, 0), State::Backup);
}
