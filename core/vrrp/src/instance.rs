//! The per-instance VRRP state machine (RFC 9568 §6, which obsoletes RFC 5798;
//! RFC 3768 §6 for v2), with the keepalived 2.x behaviours operators rely on.
//!
//! Sans-I/O: inputs and the current time go in through [`Instance::handle`] and
//! [`Instance::handle_timeout`]; outputs come out of [`Instance::poll_action`] in
//! the order they must be carried out; [`Instance::poll_timeout`] says when to
//! call back. Nothing here reads a clock.
//!
//! Within a transition the critical work (VIPs, adverts, GARP) is queued before
//! the [`Action::StateChange`] that notify hooks hang off (FRRouting's
//! `vrrp_change_state` ordering).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::advert::Version;

/// Priority of the address owner (RFC 9568 §5.2.4).
pub const PRIORITY_OWNER: u8 = 255;
/// Priority announcing that the master stops (RFC 9568 §5.2.4).
pub const PRIORITY_STOP: u8 = 0;

/// The wire resolution of the v3 interval field (RFC 9568 §5.2.7).
const MIN_ADVERT_INT: Duration = Duration::from_millis(10);

/// Gratuitous ARP / unsolicited NA timing after becoming master (keepalived
/// `garp_master_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GarpTiming {
    /// Delay of the second burst after becoming master; zero: no second burst.
    pub master_delay: Duration,
    /// Messages per burst on becoming master (and in the second burst).
    pub master_repeat: u32,
    /// Period of refresh bursts while master; zero: no refresh.
    pub master_refresh: Duration,
    /// Messages per refresh burst.
    pub master_refresh_repeat: u32,
}

impl Default for GarpTiming {
    /// keepalived's defaults (`VRRP_GARP_DELAY`, `VRRP_GARP_REP`,
    /// `VRRP_GARP_REFRESH`, `VRRP_GARP_REFRESH_REP` in vrrp.h).
    fn default() -> Self {
        Self {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: Duration::ZERO,
            master_refresh_repeat: 1,
        }
    }
}

/// Static configuration of one VRRP instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceConfig {
    pub vrid: u8,
    pub version: Version,
    /// Base priority; 255 = address owner (never adjusted by tracking).
    pub priority: u8,
    /// Our Advertisement_Interval. v2 uses whole seconds on the wire.
    pub advert_int: Duration,
    pub preempt: bool,
    /// keepalived `preempt_delay`: see [`Instance`] docs for the exact rule.
    pub preempt_delay: Duration,
    /// keepalived `state MASTER`.
    pub initial_master: bool,
    /// Our primary address, compared with an advert's source on equal
    /// priority (RFC 9568 §6.4.3: the higher address wins).
    pub primary_addr: IpAddr,
    pub garp: GarpTiming,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Initialize,
    Backup,
    Master,
    Fault,
}

/// Why a transition happened; carried to notify hooks and the event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// `Input::Startup`: the owner taking over at once, or entering Backup/Fault.
    Startup,
    Shutdown,
    /// Master_Down_Timer expired (no master heard, or a lower one preempted).
    MasterDown,
    /// An advert with higher priority (or equal priority, higher address).
    HigherPriority,
    /// Own fault condition or one forced by the sync group.
    Fault,
    /// All fault conditions cleared.
    FaultCleared,
    /// Forced by the sync group (`ForceMaster` / `ForceBackup`).
    Sync,
    /// The operator demoted the instance (maintenance) or promoted it back.
    Maintenance,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    Startup,
    Shutdown,
    /// A received advertisement for our VRID, already validated by the codec.
    Advert {
        src: IpAddr,
        priority: u8,
        interval_cs: u16,
    },
    /// Aggregated own fault condition (tracked interface down, own link down).
    Fault(bool),
    /// Sum of the active tracking weights.
    PriorityAdjust(i32),
    /// From the sync group.
    ForceMaster,
    ForceBackup,
    ForceFault(bool),
    /// Maintenance (`lbctl demote` / `promote`): a demoted instance resigns
    /// mastership with a priority-0 advert (RFC 9568 §6.4.3, as at shutdown)
    /// and stays Backup, never taking over, until promoted.
    Demote(bool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    SendAdvert {
        priority: u8,
    },
    AddVips,
    RemoveVips,
    /// One burst of gratuitous ARP / unsolicited NA for the VIPs.
    SendGarp {
        count: u32,
    },
    /// Queued after the critical actions of the transition.
    StateChange {
        from: State,
        to: State,
        reason: Reason,
    },
}

/// One VRRP instance.
///
/// `preempt_delay` follows keepalived's `vrrp_state_backup()`: in Backup the
/// first advert from a lower-priority master is still accepted and starts a
/// window of `preempt_delay`; lower-priority adverts keep being accepted until
/// the window ends, after which they are discarded and the Master_Down_Timer
/// takes us over. An advert of priority >= ours closes the window; entering
/// Backup resets it. So takeover happens about `preempt_delay` +
/// Master_Down_Interval after we first saw the lower master.
#[derive(Debug)]
pub struct Instance {
    cfg: InstanceConfig,
    state: State,
    effective_priority: u8,
    master_adver_interval: Duration,
    own_fault: bool,
    forced_fault: bool,
    /// The last tracking adjustment: a reload that changes the base
    /// priority applies it again.
    adjust: i32,
    demoted: bool,
    adver_timer: Option<Instant>,
    master_down_timer: Option<Instant>,
    garp_delay_timer: Option<Instant>,
    garp_refresh_timer: Option<Instant>,
    /// keepalived `preempt_time`: end of the current preempt-delay window.
    preempt_until: Option<Instant>,
    actions: VecDeque<Action>,
}

impl Instance {
    pub fn new(cfg: InstanceConfig) -> Self {
        // Priority 0 is reserved for "stop" (RFC 9568 §5.2.4): a configured 0
        // would make us announce resignation in every advert.
        let effective_priority = cfg.priority.max(1);
        Self {
            master_adver_interval: cfg.advert_int.max(MIN_ADVERT_INT),
            effective_priority,
            cfg,
            state: State::Initialize,
            own_fault: false,
            forced_fault: false,
            adjust: 0,
            demoted: false,
            adver_timer: None,
            master_down_timer: None,
            garp_delay_timer: None,
            garp_refresh_timer: None,
            preempt_until: None,
            actions: VecDeque::new(),
        }
    }

    /// Our Advertisement_Interval, floored at one centisecond, the wire
    /// resolution (a zero interval would make the timers spin).
    fn advert_int(&self) -> Duration {
        self.cfg.advert_int.max(MIN_ADVERT_INT)
    }

    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }

    /// Demoted by the operator (see [`Input::Demote`]).
    pub fn is_demoted(&self) -> bool {
        self.demoted
    }

    /// The sum of tracking weights last applied.
    pub fn priority_adjust(&self) -> i32 {
        self.adjust
    }

    /// True while an own or a group-forced fault holds the instance down.
    pub fn is_faulted(&self) -> bool {
        self.own_fault || self.forced_fault
    }

    /// Master_Adver_Interval: ours, or (v3 Backup) the one learnt from the
    /// master's advert (RFC 9568 §6.1).
    pub fn master_adver_interval(&self) -> Duration {
        match self.cfg.version {
            // v2 has no per-master interval: mismatches are dropped (RFC 3768 §7.1).
            Version::V2 => self.advert_int(),
            Version::V3 => self.master_adver_interval,
        }
    }

    /// Skew_Time for our current effective priority.
    pub fn skew_time(&self) -> Duration {
        // keepalived VRRP_TIMER_SKEW: effective priority, 255 for the owner.
        let weight = 256 - u32::from(self.effective_priority);
        match self.cfg.version {
            // RFC 3768 §6.1: (256 - Priority) / 256 seconds.
            Version::V2 => Duration::from_secs(u64::from(weight)) / 256,
            // RFC 9568 §6.1: ((256 - Priority) * Master_Adver_Interval) / 256.
            Version::V3 => self.master_adver_interval().saturating_mul(weight) / 256,
        }
    }

    /// Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time.
    pub fn master_down_interval(&self) -> Duration {
        self.master_adver_interval()
            .saturating_mul(3)
            .saturating_add(self.skew_time())
    }

    /// Earliest pending timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.adver_timer,
            self.master_down_timer,
            self.garp_delay_timer,
            self.garp_refresh_timer,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Next action to carry out, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// A reload changed this instance's settings (same VRID, version and
    /// address; anything else is a new instance). State and timers carry
    /// over: an election follows only where the new priorities call for one
    /// (a master keeps its advert rhythm and carries the new priority in its
    /// next advert; a backup's Master_Down_Timer shifts with Skew_Time).
    pub fn reconfigure(&mut self, now: Instant, cfg: InstanceConfig) {
        let old_int = self.advert_int();
        let old_garp = self.cfg.garp;
        self.cfg = cfg;
        let new_int = self.advert_int();
        if new_int != old_int {
            if self.state == State::Master {
                // Keep the phase: the next advert comes one new interval
                // after the last one sent, never in the past.
                if let Some(at) = self.adver_timer {
                    let last = at.checked_sub(old_int).unwrap_or(now);
                    self.adver_timer = Some(after(last, new_int).max(now));
                }
                self.master_adver_interval = new_int;
            } else if self.cfg.version == Version::V2 {
                // v2 has no learnt interval (RFC 3768 §7.1 drops mismatches).
                self.master_adver_interval = new_int;
            }
        }
        if self.state == State::Master && self.cfg.garp != old_garp {
            let g = self.cfg.garp;
            if g.master_refresh.is_zero() {
                self.garp_refresh_timer = None;
            } else if old_garp.master_refresh != g.master_refresh {
                self.garp_refresh_timer = Some(after(now, g.master_refresh));
            }
        }
        // The new base priority with the tracking adjustment in force.
        let new = self.derived_priority();
        self.set_effective_priority(now, new);
    }

    /// Fire every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if due(self.master_down_timer, now) {
            self.master_down_timer = None;
            if self.state == State::Backup && !self.demoted {
                self.become_master(now, State::Backup, Reason::MasterDown);
            }
        }
        if let Some(at) = self.adver_timer.filter(|&at| at <= now) {
            self.push(Action::SendAdvert {
                priority: self.effective_priority,
            });
            self.adver_timer = Some(next_tick(at, self.advert_int(), now));
        }
        if due(self.garp_delay_timer, now) {
            self.garp_delay_timer = None;
            self.garp(self.cfg.garp.master_repeat);
        }
        if let Some(at) = self.garp_refresh_timer.filter(|&at| at <= now) {
            self.garp(self.cfg.garp.master_refresh_repeat);
            self.garp_refresh_timer = Some(next_tick(at, self.cfg.garp.master_refresh, now));
        }
    }

    pub fn handle(&mut self, now: Instant, input: Input) {
        match input {
            Input::Startup => self.startup(now),
            Input::Shutdown => self.shutdown(),
            Input::Advert {
                src,
                priority,
                interval_cs,
            } => self.advert(now, src, priority, interval_cs),
            Input::Fault(on) => {
                self.own_fault = on;
                self.fault_changed(now);
            }
            Input::ForceFault(on) => {
                self.forced_fault = on;
                self.fault_changed(now);
            }
            Input::PriorityAdjust(adj) => self.adjust_priority(now, adj),
            Input::Demote(on) => self.demote(now, on),
            Input::ForceMaster => {
                if self.state == State::Backup {
                    self.become_master(now, State::Backup, Reason::Sync);
                }
            }
            Input::ForceBackup => {
                if self.state == State::Master {
                    // keepalived vrrp_sync_backup -> leave_master(advF=false):
                    // no priority-0 advert, the peer's own timers decide.
                    self.leave_master(now, State::Backup, Reason::Sync, false);
                }
            }
        }
    }

    fn startup(&mut self, now: Instant) {
        if self.state != State::Initialize {
            return;
        }
        if self.is_faulted() {
            self.set_state(State::Fault, Reason::Startup);
        } else if self.cfg.priority == PRIORITY_OWNER {
            // RFC 9568 §6.4.1: the owner goes Master at once.
            self.become_master(now, State::Initialize, Reason::Startup);
        } else if self.cfg.initial_master {
            // keepalived vrrp_init_state(): `state MASTER` below 255 enters
            // Backup with ms_down_timer = Master_Adver_Interval + the minimal
            // skew, so one interval passes to hear any existing master.
            self.enter_backup(now, Reason::Startup);
            let mai = self.master_adver_interval();
            self.master_down_timer = Some(after(now, mai.saturating_add(mai / 256)));
        } else {
            self.enter_backup(now, Reason::Startup);
        }
    }

    fn demote(&mut self, now: Instant, on: bool) {
        if on == self.demoted {
            return;
        }
        self.demoted = on;
        match self.state {
            State::Master if on => {
                self.leave_master(now, State::Backup, Reason::Maintenance, true);
                self.master_down_timer = None;
            }
            // Never takes over while demoted.
            State::Backup if on => self.master_down_timer = None,
            // Promoted: a fresh Master_Down_Interval to hear the master; a
            // higher priority with preempt then takes over (RFC 9568 §6.4.2).
            State::Backup => self.master_down_timer = Some(after(now, self.master_down_interval())),
            State::Initialize | State::Master | State::Fault => {}
        }
    }

    fn shutdown(&mut self) {
        match self.state {
            State::Initialize => {}
            State::Master => {
                // RFC 9568 §6.4.3 "Shutdown": send priority 0 so a backup
                // takes over after Skew_Time.
                self.push(Action::SendAdvert {
                    priority: PRIORITY_STOP,
                });
                self.push(Action::RemoveVips);
                self.stop_timers();
                self.set_state(State::Initialize, Reason::Shutdown);
            }
            State::Backup | State::Fault => {
                self.stop_timers();
                self.set_state(State::Initialize, Reason::Shutdown);
            }
        }
    }

    fn advert(&mut self, now: Instant, src: IpAddr, priority: u8, interval_cs: u16) {
        match self.state {
            // Not participating (RFC 9568 §6.4.1 only processes adverts in
            // Backup and Master).
            State::Initialize | State::Fault => {}
            State::Backup => self.backup_advert(now, priority, interval_cs),
            State::Master => self.master_advert(now, src, priority, interval_cs),
        }
    }

    /// RFC 9568 §6.4.2 with keepalived's preempt_delay (vrrp_state_backup).
    fn backup_advert(&mut self, now: Instant, priority: u8, interval_cs: u16) {
        if priority == PRIORITY_STOP {
            // The master resigned: take over after Skew_Time only.
            self.master_down_timer = Some(after(now, self.skew_time()));
            return;
        }
        let higher_or_equal = priority >= self.effective_priority;
        let in_delay =
            !self.cfg.preempt_delay.is_zero() && self.preempt_until.is_none_or(|until| until > now);
        if self.demoted {
            // Maintenance: follow the master's interval, never take over.
            self.learn_interval(interval_cs);
            return;
        }
        if !self.cfg.preempt || higher_or_equal || in_delay {
            self.learn_interval(interval_cs);
            self.master_down_timer = Some(after(now, self.master_down_interval()));
            if !self.cfg.preempt_delay.is_zero() {
                if higher_or_equal {
                    self.preempt_until = None;
                } else if self.preempt_until.is_none() {
                    self.preempt_until = Some(after(now, self.cfg.preempt_delay));
                }
            }
        }
        // Else: a lower-priority master we preempt. The advert is discarded
        // and the running Master_Down_Timer takes us over.
    }

    /// RFC 9568 §6.4.3, plus keepalived's answer to lower-priority adverts.
    fn master_advert(&mut self, now: Instant, src: IpAddr, priority: u8, interval_cs: u16) {
        if priority == PRIORITY_STOP {
            // A resigning router: assert ourselves at once so backups do not
            // take over after Skew_Time.
            self.send_periodic_advert_now(now);
            return;
        }
        let ours = self.effective_priority;
        let wins =
            priority > ours || (priority == ours && addr_greater(src, self.cfg.primary_addr));
        if wins {
            self.learn_interval(interval_cs);
            self.leave_master(now, State::Backup, Reason::HigherPriority, false);
        } else if priority < ours || addr_greater(self.cfg.primary_addr, src) {
            // keepalived vrrp_state_master_rx(): a lower-priority router went
            // master (a broken link came back); advertise now to force the
            // election and re-announce the VIPs (garp_lower_prio_repeat
            // defaults to garp_master_repeat) since it may have sent GARPs.
            self.send_periodic_advert_now(now);
            self.garp(self.cfg.garp.master_repeat);
        }
        // Equal priority from our own address: our own advert looped back,
        // or a misconfigured peer; nothing sensible to do.
    }

    fn send_periodic_advert_now(&mut self, now: Instant) {
        self.push(Action::SendAdvert {
            priority: self.effective_priority,
        });
        self.adver_timer = Some(after(now, self.advert_int()));
    }

    fn learn_interval(&mut self, interval_cs: u16) {
        // RFC 9568 §6.4.2: Master_Adver_Interval := the advert's interval.
        // A zero interval would make the down timer Skew_Time only; the codec
        // should reject it, ignore it here in case it did not.
        if self.cfg.version == Version::V3 && interval_cs > 0 {
            self.master_adver_interval = Duration::from_millis(u64::from(interval_cs) * 10);
        }
    }

    fn fault_changed(&mut self, now: Instant) {
        let faulted = self.is_faulted();
        match self.state {
            State::Initialize => {} // remembered for Startup
            State::Backup if faulted => {
                self.stop_timers();
                self.set_state(State::Fault, Reason::Fault);
            }
            State::Master if faulted => {
                // keepalived vrrp_state_leave_master(FAULT) sends priority 0
                // so a backup takes over after Skew_Time. If the link is down
                // the daemon's send fails, which is harmless.
                self.leave_master(now, State::Fault, Reason::Fault, true);
            }
            State::Fault if !faulted => {
                // keepalived try_up_instance()/vrrp_state_leave_fault():
                // Master straight away only for the owner.
                self.master_adver_interval = self.advert_int();
                if self.cfg.priority == PRIORITY_OWNER {
                    self.become_master(now, State::Fault, Reason::FaultCleared);
                } else {
                    self.enter_backup(now, Reason::FaultCleared);
                }
            }
            State::Backup | State::Master | State::Fault => {}
        }
    }

    fn adjust_priority(&mut self, now: Instant, adj: i32) {
        self.adjust = adj;
        let new = self.derived_priority();
        self.set_effective_priority(now, new);
    }

    /// keepalived vrrp_set_effective_priority(): the owner is never
    /// adjusted; others are clamped to 1..=254 so tracking can neither
    /// resign (0) nor claim ownership (255).
    fn derived_priority(&self) -> u8 {
        if self.cfg.priority == PRIORITY_OWNER {
            return PRIORITY_OWNER;
        }
        let total = i64::from(self.cfg.priority) + i64::from(self.adjust);
        u8::try_from(total.clamp(1, 254)).unwrap_or(1)
    }

    fn set_effective_priority(&mut self, now: Instant, new: u8) {
        if new == self.effective_priority {
            return;
        }
        let old_down = self.master_down_interval();
        self.effective_priority = new;
        // keepalived shifts a running down timer by the change of
        // Master_Down_Interval (only Skew_Time depends on priority). A
        // Master just carries the new priority in its next advert.
        if self.state == State::Backup {
            if let Some(at) = self.master_down_timer {
                let new_down = self.master_down_interval();
                let shifted = if new_down >= old_down {
                    at.checked_add(new_down - old_down)
                } else {
                    at.checked_sub(old_down - new_down)
                };
                self.master_down_timer = Some(shifted.unwrap_or(now).max(now));
            }
        }
    }

    fn enter_backup(&mut self, now: Instant, reason: Reason) {
        let from = self.state;
        self.stop_timers();
        self.preempt_until = None;
        self.master_down_timer = Some(after(now, self.master_down_interval()));
        if from != State::Backup {
            self.push(Action::StateChange {
                from,
                to: State::Backup,
                reason,
            });
            self.state = State::Backup;
        }
    }

    /// RFC 9568 §6.4.1/§6.4.2 "transition to Master": VIPs, advert, GARP,
    /// then the notification.
    fn become_master(&mut self, now: Instant, from: State, reason: Reason) {
        if self.demoted {
            // Maintenance holds it in Backup (owner start, fault cleared,
            // sync-group force alike).
            self.enter_backup(now, reason);
            self.master_down_timer = None;
            return;
        }
        self.stop_timers();
        self.preempt_until = None;
        self.master_adver_interval = self.advert_int();
        self.state = State::Master;
        self.push(Action::AddVips);
        self.push(Action::SendAdvert {
            priority: self.effective_priority,
        });
        self.garp(self.cfg.garp.master_repeat);
        self.adver_timer = Some(after(now, self.advert_int()));
        let g = self.cfg.garp;
        if !g.master_delay.is_zero() {
            self.garp_delay_timer = Some(after(now, g.master_delay));
        }
        if !g.master_refresh.is_zero() {
            // keepalived: first refresh at garp_delay + garp_refresh.
            self.garp_refresh_timer =
                Some(after(now, g.master_delay.saturating_add(g.master_refresh)));
        }
        self.push(Action::StateChange {
            from,
            to: State::Master,
            reason,
        });
    }

    fn leave_master(&mut self, now: Instant, to: State, reason: Reason, resign: bool) {
        if resign {
            self.push(Action::SendAdvert {
                priority: PRIORITY_STOP,
            });
        }
        self.push(Action::RemoveVips);
        match to {
            State::Backup => self.enter_backup(now, reason),
            _ => {
                self.stop_timers();
                self.set_state(to, reason);
            }
        }
    }

    fn set_state(&mut self, to: State, reason: Reason) {
        let from = self.state;
        self.state = to;
        self.push(Action::StateChange { from, to, reason });
    }

    fn stop_timers(&mut self) {
        self.adver_timer = None;
        self.master_down_timer = None;
        self.garp_delay_timer = None;
        self.garp_refresh_timer = None;
    }

    fn garp(&mut self, count: u32) {
        if count > 0 {
            self.push(Action::SendGarp { count });
        }
    }

    fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }
}

/// `now + d`, falling back to `now` where `Instant` cannot represent the sum
/// (only absurd configured durations get there) instead of panicking.
fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or(now)
}

fn due(timer: Option<Instant>, now: Instant) -> bool {
    timer.is_some_and(|at| at <= now)
}

/// Next deadline of a periodic timer: keep the cadence, but never schedule in
/// the past if the caller was late (no bursts of catch-up adverts).
fn next_tick(at: Instant, period: Duration, now: Instant) -> Instant {
    match at.checked_add(period) {
        Some(next) if next > now => next,
        _ => after(now, period),
    }
}

/// `a > b` for addresses of one family; mixed families never compare greater
/// (an instance is single-family, RFC 9568 §6.4.3 compares like with like).
fn addr_greater(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a > b,
        (IpAddr::V6(a), IpAddr::V6(b)) => a > b,
        _ => false,
    }
}
