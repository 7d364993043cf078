//! N routers on a simulated LAN: adverts are multicast to every other router
//! after a per-link delay, dropped with a per-link loss probability (seeded
//! xorshift, so every run is the same) or by a partition. A simulated clock
//! drives `poll_timeout` / `handle_timeout`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use lbd_vrrp::instance::{Action, GarpTiming, Input, Instance, InstanceConfig, State};
use lbd_vrrp::Version;

/// xorshift64* — enough randomness for loss, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
}

fn addr(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, u8::try_from(i + 1).unwrap_or(254)))
}

fn node(i: usize, priority: u8) -> InstanceConfig {
    InstanceConfig {
        vrid: 7,
        version: Version::V3,
        priority,
        advert_int: Duration::from_secs(1),
        preempt: true,
        preempt_delay: Duration::ZERO,
        initial_master: false,
        primary_addr: addr(i),
        garp: GarpTiming::default(),
    }
}

struct Sim {
    t0: Instant,
    now: Instant,
    nodes: Vec<Instance>,
    /// Node is running (a crashed node neither sends nor receives).
    alive: Vec<bool>,
    /// Node holds the VIPs (AddVips seen, RemoveVips not yet).
    vips: Vec<bool>,
    loss: Vec<Vec<f64>>,
    delay: Vec<Vec<Duration>>,
    link_up: Vec<Vec<bool>>,
    /// Pending deliveries by (time, sequence for FIFO order).
    queue: BTreeMap<(Instant, u64), (usize, Input)>,
    seq: u64,
    rng: Rng,
    /// (time since t0, node, from, to) of every state change.
    log: Vec<(Duration, usize, State, State)>,
}

impl Sim {
    fn new(cfgs: Vec<InstanceConfig>) -> Self {
        let n = cfgs.len();
        let t0 = Instant::now();
        Self {
            t0,
            now: t0,
            nodes: cfgs.into_iter().map(Instance::new).collect(),
            alive: vec![false; n],
            vips: vec![false; n],
            loss: vec![vec![0.0; n]; n],
            delay: vec![vec![Duration::from_millis(1); n]; n],
            link_up: vec![vec![true; n]; n],
            queue: BTreeMap::new(),
            seq: 0,
            rng: Rng(0x9e37_79b9_7f4a_7c15),
            log: Vec::new(),
        }
    }

    fn with_priorities(prios: &[u8]) -> Self {
        Self::new(prios.iter().enumerate().map(|(i, &p)| node(i, p)).collect())
    }

    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn start(&mut self, i: usize) {
        self.alive[i] = true;
        self.apply(i, Input::Startup);
    }

    fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i);
        }
    }

    /// Power loss: no priority-0 advert, VIPs gone with the box.
    fn crash(&mut self, i: usize) {
        self.alive[i] = false;
        self.vips[i] = false;
    }

    fn set_loss(&mut self, p: f64) {
        for row in &mut self.loss {
            row.fill(p);
        }
    }

    /// Cut (or restore) the links between the two sides, both directions.
    fn partition(&mut self, a: &[usize], b: &[usize], up: bool) {
        for &x in a {
            for &y in b {
                self.link_up[x][y] = up;
                self.link_up[y][x] = up;
            }
        }
    }

    fn apply(&mut self, i: usize, input: Input) {
        if !self.alive[i] && input != Input::Shutdown {
            return;
        }
        self.nodes[i].handle(self.now, input);
        self.drain(i);
    }

    fn drain(&mut self, i: usize) {
        while let Some(action) = self.nodes[i].poll_action() {
            match action {
                Action::SendAdvert { priority } => self.multicast(i, priority),
                Action::AddVips => self.vips[i] = true,
                Action::RemoveVips => self.vips[i] = false,
                Action::SendGarp { .. } => {}
                Action::StateChange { from, to, .. } => {
                    self.log.push((self.now - self.t0, i, from, to));
                }
            }
        }
    }

    fn multicast(&mut self, from: usize, priority: u8) {
        let interval_cs = u16::try_from(self.nodes[from].config().advert_int.as_millis() / 10)
            .unwrap_or(u16::MAX);
        for to in 0..self.nodes.len() {
            if to == from || !self.link_up[from][to] || self.rng.chance(self.loss[from][to]) {
                continue;
            }
            self.seq += 1;
            let input = Input::Advert {
                src: addr(from),
                priority,
                interval_cs,
            };
            self.queue
                .insert((self.now + self.delay[from][to], self.seq), (to, input));
        }
    }

    /// The next event time, if any is before `end`.
    fn next_event(&self, end: Instant) -> Option<Instant> {
        let timers = (0..self.nodes.len())
            .filter(|&i| self.alive[i])
            .filter_map(|i| self.nodes[i].poll_timeout());
        let deliveries = self.queue.keys().next().map(|&(at, _)| at);
        timers.chain(deliveries).min().filter(|&at| at <= end)
    }

    fn step(&mut self, at: Instant) {
        self.now = self.now.max(at);
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let (to, input) = entry.remove();
            self.apply(to, input);
        }
        for i in 0..self.nodes.len() {
            if self.alive[i] && self.nodes[i].poll_timeout().is_some_and(|t| t <= self.now) {
                self.nodes[i].handle_timeout(self.now);
                self.drain(i);
            }
        }
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(at) = self.next_event(end) {
            self.step(at);
        }
        self.now = end;
    }

    /// Run `d`, sampling every 100 ms whether exactly one node is master;
    /// returns the fraction of good samples.
    fn run_sampling(&mut self, d: Duration) -> f64 {
        let tick = Duration::from_millis(100);
        let n = (d.as_millis() / tick.as_millis()).max(1);
        let mut good = 0u32;
        for _ in 0..n {
            self.run_for(tick);
            if self.masters().len() == 1 {
                good += 1;
            }
        }
        f64::from(good) / n as f64
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.alive[i] && self.nodes[i].state() == State::Master)
            .collect()
    }

    fn vip_holders(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.vips[i]).collect()
    }

    /// Exactly `node` is master and holds the VIPs.
    fn assert_sole_master(&self, node: usize) {
        assert_eq!(
            self.masters(),
            vec![node],
            "masters at {:?}",
            self.elapsed()
        );
        assert_eq!(self.vip_holders(), vec![node]);
    }

    /// When `node` last became master.
    fn became_master_at(&self, node: usize) -> Option<Duration> {
        self.log
            .iter()
            .rev()
            .find(|&&(_, n, _, to)| n == node && to == State::Master)
            .map(|&(at, ..)| at)
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn highest_priority_wins_and_stays_alone() {
    let mut sim = Sim::with_priorities(&[100, 200, 150, 50, 120]);
    sim.start_all();
    sim.run_for(secs(10));
    sim.assert_sole_master(1);
    // Converged: nobody flaps afterwards.
    let changes = sim.log.len();
    sim.run_for(secs(60));
    assert_eq!(sim.log.len(), changes);
    sim.assert_sole_master(1);
}

#[test]
fn equal_priorities_elect_the_highest_address() {
    let mut sim = Sim::with_priorities(&[100, 100, 100]);
    sim.start_all();
    sim.run_for(secs(10));
    sim.assert_sole_master(2);
}

#[test]
fn master_crash_is_taken_over_by_the_next_priority() {
    let mut sim = Sim::with_priorities(&[100, 200, 150]);
    sim.start_all();
    sim.run_for(secs(10));
    sim.crash(1);
    let crashed = sim.elapsed();
    sim.run_for(secs(10));
    sim.assert_sole_master(2);
    // After Master_Down_Interval of priority 150 from its last advert.
    let took = sim.became_master_at(2).map(|t| t - crashed);
    assert!(
        took <= Some(Duration::from_nanos(3_414_062_500 + 1_000_000)),
        "{took:?}"
    );
}

#[test]
fn preemption_returns_mastership_to_the_higher_node() {
    let mut sim = Sim::with_priorities(&[100, 200]);
    sim.start(0);
    sim.run_for(secs(10));
    sim.assert_sole_master(0);
    sim.start(1);
    let started = sim.elapsed();
    sim.run_for(secs(10));
    sim.assert_sole_master(1);
    // Node 1 discards node 0's lower adverts and its down timer fires.
    let took = sim.became_master_at(1).map(|t| t - started);
    assert_eq!(took, Some(Duration::from_nanos(3_218_750_000)));
}

#[test]
fn nopreempt_keeps_the_current_master() {
    let mut cfgs = vec![node(0, 100), node(1, 200)];
    cfgs[1].preempt = false;
    let mut sim = Sim::new(cfgs);
    sim.start(0);
    sim.run_for(secs(10));
    sim.start(1);
    sim.run_for(secs(60));
    sim.assert_sole_master(0);
}

#[test]
fn preempt_delay_is_respected() {
    let mut cfgs = vec![node(0, 100), node(1, 200)];
    cfgs[1].preempt_delay = secs(20);
    let mut sim = Sim::new(cfgs);
    sim.start(0);
    sim.run_for(secs(10));
    sim.start(1);
    let started = sim.elapsed();
    sim.run_for(secs(20));
    sim.assert_sole_master(0);
    sim.run_for(secs(10));
    sim.assert_sole_master(1);
    let took = sim.became_master_at(1).map(|t| t - started);
    // First lower advert within 1 s of starting, window 20 s, then MDI.
    assert!(took >= Some(secs(20)), "{took:?}");
    assert!(
        took <= Some(secs(21) + Duration::from_nanos(3_218_750_000)),
        "{took:?}"
    );
}

#[test]
fn split_brain_heals_to_one_master() {
    let mut sim = Sim::with_priorities(&[100, 200, 150]);
    sim.start_all();
    sim.run_for(secs(10));
    sim.assert_sole_master(1);
    sim.partition(&[0, 2], &[1], false);
    sim.run_for(secs(10));
    assert_eq!(sim.masters(), vec![1, 2]);
    sim.partition(&[0, 2], &[1], true);
    sim.run_for(secs(3));
    sim.assert_sole_master(1);
}

#[test]
fn priority_zero_shutdown_is_taken_over_after_skew_time() {
    let mut sim = Sim::with_priorities(&[100, 200]);
    sim.start_all();
    sim.run_for(secs(10));
    sim.assert_sole_master(1);
    sim.apply(1, Input::Shutdown);
    sim.alive[1] = false;
    let stopped = sim.elapsed();
    sim.run_for(secs(10));
    sim.assert_sole_master(0);
    // 1 ms delivery + Skew_Time(100) = 0.609375 s, far below the
    // Master_Down_Interval of 3.609375 s.
    let took = sim.became_master_at(0).map(|t| t - stopped);
    assert_eq!(took, Some(Duration::from_nanos(610_375_000)));
}

#[test]
fn owner_takes_over_at_once_and_keeps_it() {
    let mut sim = Sim::with_priorities(&[200, 255]);
    sim.start(0);
    sim.run_for(secs(10));
    sim.start(1);
    sim.run_for(Duration::from_millis(10));
    sim.assert_sole_master(1);
}

#[test]
fn fault_on_master_fails_over_fast_and_fails_back() {
    let mut sim = Sim::with_priorities(&[100, 200]);
    sim.start_all();
    sim.run_for(secs(10));
    sim.apply(1, Input::Fault(true));
    sim.run_for(secs(1));
    sim.assert_sole_master(0);
    sim.apply(1, Input::Fault(false));
    sim.run_for(secs(5));
    sim.assert_sole_master(1);
}

#[test]
fn tracking_weight_moves_mastership() {
    // The proxy-pair scenario: the master's proxy dies, its track script
    // weight drops it below the peer, which preempts.
    let mut sim = Sim::with_priorities(&[100, 110]);
    sim.start_all();
    sim.run_for(secs(10));
    sim.assert_sole_master(1);
    sim.apply(1, Input::PriorityAdjust(-20));
    sim.run_for(secs(6));
    sim.assert_sole_master(0);
    sim.apply(1, Input::PriorityAdjust(0));
    sim.run_for(secs(6));
    sim.assert_sole_master(1);
}

#[test]
fn one_master_most_of_the_time_with_20_percent_loss() {
    let mut sim = Sim::with_priorities(&[100, 200, 150]);
    sim.set_loss(0.2);
    sim.start_all();
    sim.run_for(secs(10));
    let good = sim.run_sampling(secs(600));
    assert!(good >= 0.95, "exactly one master in {good} of samples");
    sim.set_loss(0.0);
    sim.run_for(secs(5));
    sim.assert_sole_master(1);
}

#[test]
fn delayed_links_still_converge() {
    let mut sim = Sim::with_priorities(&[100, 200, 150]);
    for row in &mut sim.delay {
        row.fill(Duration::from_millis(300));
    }
    sim.start_all();
    sim.run_for(secs(10));
    sim.assert_sole_master(1);
    assert!(sim.run_sampling(secs(60)) == 1.0);
}
