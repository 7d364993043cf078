//! The instance state machine, one module per state, driven with simulated
//! time through the small helpers below.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use lbd_vrrp::instance::{Action, GarpTiming, Input, Instance, InstanceConfig, Reason, State};
use lbd_vrrp::Version;

const OURS: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5));
const LOWER_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 4));
const HIGHER_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 6));

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// v3, 1 s, priority 100, preempt, no GARP delay/refresh, 2 GARPs per burst.
fn cfg(priority: u8) -> InstanceConfig {
    InstanceConfig {
        vrid: 51,
        version: Version::V3,
        priority,
        advert_int: secs(1),
        preempt: true,
        preempt_delay: Duration::ZERO,
        initial_master: false,
        primary_addr: OURS,
        garp: GarpTiming {
            master_delay: Duration::ZERO,
            master_repeat: 2,
            master_refresh: Duration::ZERO,
            master_refresh_repeat: 1,
        },
    }
}

/// An instance with its own simulated clock.
struct T {
    i: Instance,
    t0: Instant,
    now: Instant,
}

impl T {
    fn new(cfg: InstanceConfig) -> Self {
        let t0 = Instant::now();
        Self {
            i: Instance::new(cfg),
            t0,
            now: t0,
        }
    }

    /// Started, actions drained.
    fn started(cfg: InstanceConfig) -> Self {
        let mut t = Self::new(cfg);
        t.input(Input::Startup);
        t
    }

    /// Started as Master (owner-free path: the down timer expires).
    fn master(cfg: InstanceConfig) -> Self {
        let mut t = Self::started(cfg);
        t.fire();
        assert_eq!(t.i.state(), State::Master);
        t
    }

    fn drain(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.i.poll_action()).collect()
    }

    fn input(&mut self, input: Input) -> Vec<Action> {
        self.i.handle(self.now, input);
        self.drain()
    }

    fn advert(&mut self, src: IpAddr, priority: u8) -> Vec<Action> {
        self.advert_int(src, priority, 100)
    }

    fn advert_int(&mut self, src: IpAddr, priority: u8, interval_cs: u16) -> Vec<Action> {
        self.input(Input::Advert {
            src,
            priority,
            interval_cs,
        })
    }

    /// Move the clock forward without firing anything.
    fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Time since the start of the test.
    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Pending timer, relative to now.
    fn timeout_in(&self) -> Option<Duration> {
        self.i.poll_timeout().map(|at| at - self.now)
    }

    /// Jump to the next timer and fire it.
    fn fire(&mut self) -> Vec<Action> {
        match self.i.poll_timeout() {
            Some(at) => {
                self.now = self.now.max(at);
                self.i.handle_timeout(self.now);
                self.drain()
            }
            None => Vec::new(),
        }
    }

    /// Fire every timer up to `now + d`, returning (time since t0, action).
    fn run_for(&mut self, d: Duration) -> Vec<(Duration, Action)> {
        let end = self.now + d;
        let mut out = Vec::new();
        while let Some(at) = self.i.poll_timeout().filter(|&at| at <= end) {
            self.now = self.now.max(at);
            self.i.handle_timeout(self.now);
            let rel = self.elapsed();
            out.extend(self.drain().into_iter().map(|a| (rel, a)));
        }
        self.now = end;
        out
    }
}

fn change(from: State, to: State, reason: Reason) -> Action {
    Action::StateChange { from, to, reason }
}

fn advert(priority: u8) -> Action {
    Action::SendAdvert { priority }
}

fn become_master(priority: u8, from: State, reason: Reason) -> Vec<Action> {
    vec![
        Action::AddVips,
        advert(priority),
        Action::SendGarp { count: 2 },
        change(from, State::Master, reason),
    ]
}

mod timers {
    use super::*;

    #[test]
    fn v2_skew_for_priority_100_is_0_609375s() {
        let i = Instance::new(InstanceConfig {
            version: Version::V2,
            ..cfg(100)
        });
        assert_eq!(i.master_adver_interval(), secs(1));
        assert_eq!(i.skew_time(), Duration::from_nanos(609_375_000));
        assert_eq!(
            i.master_down_interval(),
            Duration::from_nanos(3_609_375_000)
        );
    }

    #[test]
    fn v2_skew_does_not_scale_with_the_interval() {
        // RFC 3768 §6.1: Skew_Time = (256 - Priority) / 256 seconds.
        let i = Instance::new(InstanceConfig {
            version: Version::V2,
            advert_int: secs(3),
            ..cfg(200)
        });
        assert_eq!(i.skew_time(), Duration::from_nanos(218_750_000));
        assert_eq!(
            i.master_down_interval(),
            Duration::from_nanos(9_218_750_000)
        );
    }

    #[test]
    fn v3_skew_scales_with_master_adver_interval() {
        let i = Instance::new(cfg(100));
        assert_eq!(i.skew_time(), Duration::from_nanos(609_375_000));
        let i = Instance::new(InstanceConfig {
            advert_int: secs(2),
            ..cfg(100)
        });
        assert_eq!(i.skew_time(), Duration::from_nanos(1_218_750_000));
        assert_eq!(
            i.master_down_interval(),
            Duration::from_nanos(7_218_750_000)
        );
        let i = Instance::new(InstanceConfig {
            advert_int: ms(100),
            ..cfg(254)
        });
        // (256 - 254) * 100 ms / 256
        assert_eq!(i.skew_time(), Duration::from_nanos(781_250));
    }

    #[test]
    fn owner_skew_is_one_256th() {
        let i = Instance::new(cfg(255));
        assert_eq!(i.skew_time(), Duration::from_nanos(3_906_250));
    }

    #[test]
    fn skew_follows_the_effective_priority() {
        let mut t = T::new(cfg(100));
        t.input(Input::PriorityAdjust(50));
        assert_eq!(t.i.effective_priority(), 150);
        assert_eq!(t.i.skew_time(), Duration::from_nanos(414_062_500));
    }

    #[test]
    fn zero_advert_interval_is_floored_not_spinning() {
        let mut t = T::started(InstanceConfig {
            advert_int: Duration::ZERO,
            ..cfg(100)
        });
        assert_eq!(t.i.master_adver_interval(), ms(10));
        t.fire();
        assert_eq!(t.i.state(), State::Master);
        assert_eq!(t.timeout_in(), Some(ms(10)));
    }
}

mod initialize {
    use super::*;

    #[test]
    fn owner_goes_master_at_once() {
        let mut t = T::new(cfg(255));
        assert_eq!(
            t.input(Input::Startup),
            become_master(255, State::Initialize, Reason::Startup)
        );
        assert_eq!(t.timeout_in(), Some(secs(1)));
    }

    #[test]
    fn backup_with_master_down_timer() {
        let mut t = T::new(cfg(100));
        assert_eq!(
            t.input(Input::Startup),
            vec![change(State::Initialize, State::Backup, Reason::Startup)]
        );
        assert_eq!(t.timeout_in(), Some(Duration::from_nanos(3_609_375_000)));
    }

    #[test]
    fn initial_master_waits_one_interval_then_takes_over() {
        // keepalived `state MASTER`: Backup with Master_Adver_Interval plus the
        // minimal skew, to hear any existing master first.
        let mut t = T::new(InstanceConfig {
            initial_master: true,
            ..cfg(100)
        });
        assert_eq!(
            t.input(Input::Startup),
            vec![change(State::Initialize, State::Backup, Reason::Startup)]
        );
        assert_eq!(t.timeout_in(), Some(Duration::from_nanos(1_003_906_250)));
        assert_eq!(
            t.fire(),
            become_master(100, State::Backup, Reason::MasterDown)
        );
    }

    #[test]
    fn initial_master_yields_to_a_running_higher_master() {
        let mut t = T::started(InstanceConfig {
            initial_master: true,
            ..cfg(100)
        });
        t.advance(ms(500));
        assert_eq!(t.advert(HIGHER_ADDR, 200), vec![]);
        assert_eq!(t.i.state(), State::Backup);
        assert_eq!(t.timeout_in(), Some(t.i.master_down_interval()));
    }

    #[test]
    fn faulted_before_startup_starts_in_fault() {
        let mut t = T::new(cfg(100));
        assert_eq!(t.input(Input::Fault(true)), vec![]);
        assert_eq!(
            t.input(Input::Startup),
            vec![change(State::Initialize, State::Fault, Reason::Startup)]
        );
        assert_eq!(t.i.poll_timeout(), None);
    }

    #[test]
    fn ignores_adverts_and_has_no_timers() {
        let mut t = T::new(cfg(100));
        assert_eq!(t.advert(HIGHER_ADDR, 0), vec![]);
        assert_eq!(t.advert(LOWER_ADDR, 50), vec![]);
        assert_eq!(t.input(Input::ForceMaster), vec![]);
        assert_eq!(t.input(Input::ForceBackup), vec![]);
        assert_eq!(t.input(Input::Shutdown), vec![]);
        assert_eq!(t.i.state(), State::Initialize);
        assert_eq!(t.i.poll_timeout(), None);
        assert_eq!(t.fire(), vec![]);
    }

    #[test]
    fn second_startup_is_a_no_op() {
        let mut t = T::started(cfg(100));
        assert_eq!(t.input(Input::Startup), vec![]);
    }
}

mod backup {
    use super::*;

    #[test]
    fn master_down_timer_expiry_becomes_master() {
        let mut t = T::started(cfg(100));
        let acts = t.run_for(secs(10));
        let at = Duration::from_nanos(3_609_375_000);
        let want: Vec<_> = become_master(100, State::Backup, Reason::MasterDown)
            .into_iter()
            .map(|a| (at, a))
            .collect();
        assert_eq!(&acts[..4], &want[..]);
        assert_eq!(t.i.state(), State::Master);
    }

    #[test]
    fn higher_priority_advert_resets_the_timer() {
        let mut t = T::started(cfg(100));
        t.advance(secs(3));
        assert_eq!(t.advert(HIGHER_ADDR, 200), vec![]);
        assert_eq!(t.timeout_in(), Some(Duration::from_nanos(3_609_375_000)));
        assert_eq!(t.i.state(), State::Backup);
    }

    #[test]
    fn equal_priority_advert_resets_the_timer() {
        let mut t = T::started(cfg(100));
        t.advance(secs(3));
        t.advert(LOWER_ADDR, 100);
        assert_eq!(t.timeout_in(), Some(t.i.master_down_interval()));
    }

    #[test]
    fn lower_priority_advert_is_discarded_with_preempt() {
        let mut t = T::started(cfg(100));
        t.advance(secs(3));
        t.advert(LOWER_ADDR, 50);
        // The timer still runs from startup: 0.609375 s left.
        assert_eq!(t.timeout_in(), Some(Duration::from_nanos(609_375_000)));
        t.fire();
        assert_eq!(t.i.state(), State::Master);
        assert_eq!(t.elapsed(), Duration::from_nanos(3_609_375_000));
    }

    #[test]
    fn lower_priority_advert_resets_the_timer_without_preempt() {
        let mut t = T::started(InstanceConfig {
            preempt: false,
            ..cfg(100)
        });
        for _ in 0..10 {
            t.advance(secs(1));
            t.advert(LOWER_ADDR, 50);
            assert_eq!(t.timeout_in(), Some(t.i.master_down_interval()));
        }
        assert_eq!(t.i.state(), State::Backup);
    }

    #[test]
    fn priority_zero_sets_the_timer_to_skew_time() {
        let mut t = T::started(cfg(100));
        t.advance(secs(1));
        t.advert(HIGHER_ADDR, 200);
        t.advance(ms(300));
        assert_eq!(t.advert(HIGHER_ADDR, 0), vec![]);
        assert_eq!(t.timeout_in(), Some(Duration::from_nanos(609_375_000)));
        assert_eq!(t.fire()[0], Action::AddVips);
    }

    #[test]
    fn v3_learns_the_master_interval() {
        let mut t = T::started(cfg(100));
        t.advert_int(HIGHER_ADDR, 200, 200);
        assert_eq!(t.i.master_adver_interval(), secs(2));
        assert_eq!(t.timeout_in(), Some(Duration::from_nanos(7_218_750_000)));
        // Back to our own interval once master.
        t.fire();
        assert_eq!(t.i.master_adver_interval(), secs(1));
    }

    #[test]
    fn v3_does_not_learn_from_a_discarded_advert() {
        let mut t = T::started(cfg(100));
        t.advert_int(LOWER_ADDR, 50, 300);
        assert_eq!(t.i.master_adver_interval(), secs(1));
    }

    #[test]
    fn v2_keeps_its_own_interval() {
        let mut t = T::started(InstanceConfig {
            version: Version::V2,
            ..cfg(100)
        });
        t.advert_int(HIGHER_ADDR, 200, 300);
        assert_eq!(t.i.master_adver_interval(), secs(1));
    }

    #[test]
    fn preempt_delay_accepts_lower_master_for_the_delay() {
        let mut t = T::started(InstanceConfig {
            preempt_delay: secs(10),
            ..cfg(100)
        });
        // A lower master advertising every second from t=1 s: the window
        // opens at the first advert and ends at 11 s.
        let mut took_over = None;
        for n in 1..30u64 {
            let acts = t.run_for(secs(n) - t.elapsed());
            if acts.iter().any(|(_, a)| *a == Action::AddVips) {
                took_over = acts.first().map(|(at, _)| *at);
                break;
            }
            t.advert(LOWER_ADDR, 50);
        }
        // Last accepted advert at 10 s (the window ends at 11 s, exclusive
        // of adverts at 11 s and later), so takeover at 10 s + MDI.
        assert_eq!(
            took_over,
            Some(secs(10) + Duration::from_nanos(3_609_375_000))
        );
    }

    #[test]
    fn preempt_delay_window_closes_on_a_higher_advert() {
        let mut t = T::started(InstanceConfig {
            preempt_delay: secs(10),
            ..cfg(100)
        });
        t.advance(secs(1));
        t.advert(LOWER_ADDR, 50); // window 1..11 s
        t.advance(secs(1));
        t.advert(HIGHER_ADDR, 200); // window closed
        t.advance(secs(1));
        t.advert(LOWER_ADDR, 50); // new window 3..13 s: accepted
        assert_eq!(t.timeout_in(), Some(t.i.master_down_interval()));
        t.advance(secs(10));
        t.advert(LOWER_ADDR, 50); // at 13 s: window over, discarded
        assert!(t.timeout_in() < Some(t.i.master_down_interval()));
    }

    #[test]
    fn priority_adjust_shifts_the_running_timer_by_the_skew_change() {
        let mut t = T::started(cfg(100));
        let before = t.timeout_in();
        t.input(Input::PriorityAdjust(100)); // 200: skew 0.21875 s
        assert_eq!(t.i.effective_priority(), 200);
        assert_eq!(
            t.timeout_in(),
            before.map(|d| d - Duration::from_nanos(609_375_000 - 218_750_000))
        );
        t.input(Input::PriorityAdjust(0));
        assert_eq!(t.timeout_in(), before);
    }

    #[test]
    fn priority_adjust_clamps_to_1_and_254() {
        let mut t = T::started(cfg(100));
        t.input(Input::PriorityAdjust(-500));
        assert_eq!(t.i.effective_priority(), 1);
        t.input(Input::PriorityAdjust(i32::MAX));
        assert_eq!(t.i.effective_priority(), 254);
        t.input(Input::PriorityAdjust(i32::MIN));
        assert_eq!(t.i.effective_priority(), 1);
    }

    #[test]
    fn owner_priority_is_not_adjusted() {
        let mut t = T::new(cfg(255));
        t.input(Input::PriorityAdjust(-50));
        assert_eq!(t.i.effective_priority(), 255);
    }

    #[test]
    fn raised_priority_then_preempts_the_master() {
        let mut t = T::started(cfg(100));
        t.advert(HIGHER_ADDR, 150);
        t.input(Input::PriorityAdjust(100));
        t.advance(secs(1));
        t.advert(HIGHER_ADDR, 150); // now lower than us: discarded
        let left = t.timeout_in();
        assert!(left < Some(t.i.master_down_interval()));
    }

    #[test]
    fn fault_goes_to_fault_and_stops_timers() {
        let mut t = T::started(cfg(100));
        assert_eq!(
            t.input(Input::Fault(true)),
            vec![change(State::Backup, State::Fault, Reason::Fault)]
        );
        assert_eq!(t.i.poll_timeout(), None);
    }

    #[test]
    fn shutdown_touches_no_vips() {
        let mut t = T::started(cfg(100));
        assert_eq!(
            t.input(Input::Shutdown),
            vec![change(State::Backup, State::Initialize, Reason::Shutdown)]
        );
        assert_eq!(t.i.poll_timeout(), None);
    }

    #[test]
    fn force_master_takes_over_now() {
        let mut t = T::started(cfg(100));
        assert_eq!(
            t.input(Input::ForceMaster),
            become_master(100, State::Backup, Reason::Sync)
        );
    }

    #[test]
    fn force_backup_is_a_no_op() {
        let mut t = T::started(cfg(100));
        assert_eq!(t.input(Input::ForceBackup), vec![]);
    }
}

mod master {
    use super::*;

    #[test]
    fn advertises_every_interval() {
        let mut t = T::master(cfg(100));
        let start = t.elapsed();
        let acts = t.run_for(ms(3500));
        assert_eq!(
            acts,
            vec![
                (start + secs(1), advert(100)),
                (start + secs(2), advert(100)),
                (start + secs(3), advert(100)),
            ]
        );
    }

    #[test]
    fn late_timer_does_not_burst() {
        let mut t = T::master(cfg(100));
        t.advance(secs(5));
        t.i.handle_timeout(t.now);
        assert_eq!(t.drain(), vec![advert(100)]);
        assert_eq!(t.timeout_in(), Some(secs(1)));
    }

    #[test]
    fn garp_second_burst_and_refresh() {
        let mut t = T::new(InstanceConfig {
            advert_int: secs(100),
            garp: GarpTiming {
                master_delay: secs(5),
                master_repeat: 3,
                master_refresh: secs(60),
                master_refresh_repeat: 2,
            },
            ..cfg(255)
        });
        let acts = t.input(Input::Startup);
        assert_eq!(acts[2], Action::SendGarp { count: 3 });
        let acts = t.run_for(secs(130));
        assert_eq!(
            acts,
            vec![
                (secs(5), Action::SendGarp { count: 3 }),
                (secs(65), Action::SendGarp { count: 2 }),
                (secs(100), advert(255)),
                (secs(125), Action::SendGarp { count: 2 }),
            ]
        );
    }

    #[test]
    fn no_garp_bursts_after_leaving_master() {
        let mut t = T::new(InstanceConfig {
            garp: GarpTiming {
                master_delay: secs(5),
                master_repeat: 1,
                master_refresh: secs(60),
                master_refresh_repeat: 1,
            },
            ..cfg(255)
        });
        t.input(Input::Startup);
        t.input(Input::Fault(true));
        assert_eq!(t.i.poll_timeout(), None);
    }

    #[test]
    fn priority_zero_advert_is_answered_at_once() {
        let mut t = T::master(cfg(100));
        t.advance(ms(400));
        assert_eq!(t.advert(HIGHER_ADDR, 0), vec![advert(100)]);
        assert_eq!(t.timeout_in(), Some(secs(1)));
        assert_eq!(t.i.state(), State::Master);
    }

    #[test]
    fn higher_priority_advert_goes_backup() {
        let mut t = T::master(cfg(100));
        assert_eq!(
            t.advert_int(LOWER_ADDR, 101, 200),
            vec![
                Action::RemoveVips,
                change(State::Master, State::Backup, Reason::HigherPriority)
            ]
        );
        // v3: the new master's interval is learnt (RFC 9568 §6.4.3).
        assert_eq!(t.i.master_adver_interval(), secs(2));
        assert_eq!(t.timeout_in(), Some(t.i.master_down_interval()));
    }

    #[test]
    fn equal_priority_higher_address_goes_backup() {
        let mut t = T::master(cfg(100));
        assert_eq!(t.advert(HIGHER_ADDR, 100)[0], Action::RemoveVips);
        assert_eq!(t.i.state(), State::Backup);
    }

    #[test]
    fn equal_priority_lower_address_is_asserted_against() {
        let mut t = T::master(cfg(100));
        assert_eq!(
            t.advert(LOWER_ADDR, 100),
            vec![advert(100), Action::SendGarp { count: 2 }]
        );
        assert_eq!(t.i.state(), State::Master);
    }

    #[test]
    fn lower_priority_advert_is_asserted_against() {
        let mut t = T::master(cfg(100));
        t.advance(ms(300));
        assert_eq!(
            t.advert(HIGHER_ADDR, 99),
            vec![advert(100), Action::SendGarp { count: 2 }]
        );
        assert_eq!(t.timeout_in(), Some(secs(1)));
    }

    #[test]
    fn own_looped_advert_is_ignored() {
        let mut t = T::master(cfg(100));
        assert_eq!(t.advert(OURS, 100), vec![]);
        assert_eq!(t.i.state(), State::Master);
    }

    #[test]
    fn ipv6_address_tie_break() {
        let lo = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
        let hi = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2));
        let mut t = T::master(InstanceConfig {
            primary_addr: lo,
            ..cfg(100)
        });
        t.advert(hi, 100);
        assert_eq!(t.i.state(), State::Backup);
    }

    #[test]
    fn shutdown_resigns_with_priority_zero() {
        let mut t = T::master(cfg(100));
        assert_eq!(
            t.input(Input::Shutdown),
            vec![
                advert(0),
                Action::RemoveVips,
                change(State::Master, State::Initialize, Reason::Shutdown)
            ]
        );
        assert_eq!(t.i.poll_timeout(), None);
    }

    #[test]
    fn fault_resigns_with_priority_zero() {
        let mut t = T::master(cfg(100));
        assert_eq!(
            t.input(Input::Fault(true)),
            vec![
                advert(0),
                Action::RemoveVips,
                change(State::Master, State::Fault, Reason::Fault)
            ]
        );
        assert_eq!(t.i.poll_timeout(), None);
    }

    #[test]
    fn priority_adjust_shows_in_the_next_advert() {
        let mut t = T::master(cfg(100));
        assert_eq!(t.input(Input::PriorityAdjust(-30)), vec![]);
        assert_eq!(t.fire(), vec![advert(70)]);
    }

    #[test]
    fn force_backup_leaves_without_priority_zero() {
        let mut t = T::master(cfg(100));
        assert_eq!(
            t.input(Input::ForceBackup),
            vec![
                Action::RemoveVips,
                change(State::Master, State::Backup, Reason::Sync)
            ]
        );
        assert_eq!(t.timeout_in(), Some(t.i.master_down_interval()));
    }

    #[test]
    fn force_master_is_a_no_op() {
        let mut t = T::master(cfg(100));
        assert_eq!(t.input(Input::ForceMaster), vec![]);
    }

    #[test]
    fn zero_garp_repeat_sends_no_garp() {
        let mut t = T::new(InstanceConfig {
            garp: GarpTiming {
                master_repeat: 0,
                ..cfg(255).garp
            },
            ..cfg(255)
        });
        assert!(!t
            .input(Input::Startup)
            .iter()
            .any(|a| matches!(a, Action::SendGarp { .. })));
    }
}

mod fault {
    use super::*;

    fn faulted(cfg: InstanceConfig) -> T {
        let mut t = T::started(cfg);
        t.input(Input::Fault(true));
        assert_eq!(t.i.state(), State::Fault);
        t
    }

    #[test]
    fn ignores_adverts_and_sync_forcing() {
        let mut t = faulted(cfg(100));
        assert_eq!(t.advert(HIGHER_ADDR, 0), vec![]);
        assert_eq!(t.advert(LOWER_ADDR, 50), vec![]);
        assert_eq!(t.input(Input::ForceMaster), vec![]);
        assert_eq!(t.input(Input::ForceBackup), vec![]);
        assert_eq!(t.i.poll_timeout(), None);
    }

    #[test]
    fn cleared_goes_backup_with_own_interval() {
        let mut t = T::started(cfg(100));
        t.advert_int(HIGHER_ADDR, 200, 300);
        t.input(Input::Fault(true));
        assert_eq!(
            t.input(Input::Fault(false)),
            vec![change(State::Fault, State::Backup, Reason::FaultCleared)]
        );
        assert_eq!(t.i.master_adver_interval(), secs(1));
        assert_eq!(t.timeout_in(), Some(Duration::from_nanos(3_609_375_000)));
    }

    #[test]
    fn owner_cleared_goes_master() {
        let mut t = faulted(cfg(255));
        assert_eq!(
            t.input(Input::Fault(false)),
            become_master(255, State::Fault, Reason::FaultCleared)
        );
    }

    #[test]
    fn own_and_forced_faults_must_both_clear() {
        let mut t = faulted(cfg(100));
        assert_eq!(t.input(Input::ForceFault(true)), vec![]);
        assert_eq!(t.input(Input::Fault(false)), vec![]);
        assert_eq!(t.i.state(), State::Fault);
        assert_eq!(t.input(Input::ForceFault(false)).len(), 1);
        assert_eq!(t.i.state(), State::Backup);
    }

    #[test]
    fn forced_fault_from_master_resigns() {
        let mut t = T::master(cfg(100));
        assert_eq!(t.input(Input::ForceFault(true))[0], advert(0));
        assert_eq!(t.i.state(), State::Fault);
    }

    #[test]
    fn shutdown_from_fault() {
        let mut t = faulted(cfg(100));
        assert_eq!(
            t.input(Input::Shutdown),
            vec![change(State::Fault, State::Initialize, Reason::Shutdown)]
        );
        // The fault condition is remembered across a restart.
        assert_eq!(
            t.input(Input::Startup),
            vec![change(State::Initialize, State::Fault, Reason::Startup)]
        );
    }

    #[test]
    fn priority_adjust_in_fault_is_kept() {
        let mut t = faulted(cfg(100));
        t.input(Input::PriorityAdjust(20));
        t.input(Input::Fault(false));
        assert_eq!(t.i.effective_priority(), 120);
    }
}
