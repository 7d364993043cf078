//! The rules of one check: when a checker is up or down and when it runs
//! next, when a script is OK, what a script does to a priority, when a
//! virtual server has lost its quorum.

use std::time::Duration;

/// When the next run of a checker is due, relative to the last result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// The regular `delay_loop`.
    Loop,
    /// A failed check being retried after `delay_before_retry`.
    Retry,
}

/// One real-server checker, keepalived semantics (check_api.c): a failure
/// of an up checker is retried `retry` times before it counts as down; one
/// success brings it back up. `alpha` starts it down.
#[derive(Clone, Debug)]
pub struct Checker {
    up: bool,
    retry: u32,
    failures: u32,
}

impl Checker {
    pub fn new(alpha: bool, retry: u32) -> Self {
        Self::starting(!alpha, retry)
    }

    /// A checker restarted by a reload, from the state the node holds.
    pub fn starting(up: bool, retry: u32) -> Self {
        Checker {
            up,
            retry,
            failures: 0,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Feeds one result; returns the new state when it changed, and when to run next.
    pub fn on_result(&mut self, ok: bool) -> (Option<bool>, Next) {
        if ok {
            self.failures = 0;
            let changed = (!self.up).then_some(true);
            self.up = true;
            return (changed, Next::Loop);
        }
        if !self.up {
            return (None, Next::Loop);
        }
        self.failures += 1;
        if self.failures <= self.retry {
            return (None, Next::Retry);
        }
        self.failures = 0;
        self.up = false;
        (Some(false), Next::Loop)
    }

    pub fn delay(next: Next, delay_loop: Duration, before_retry: Duration) -> Duration {
        match next {
            Next::Loop => delay_loop,
            Next::Retry => before_retry,
        }
    }
}

/// A tracked script (`vrrp_script`): OK after `rise` consecutive successes,
/// failed after `fall` consecutive failures; starts OK unless `init_fail`.
#[derive(Clone, Debug)]
pub struct Script {
    ok: bool,
    rise: u32,
    fall: u32,
    streak: u32,
}

impl Script {
    pub fn new(init_fail: bool, rise: u32, fall: u32) -> Self {
        Self::starting(!init_fail, rise, fall)
    }

    /// A script restarted by a reload, from the status the node holds.
    pub fn starting(ok: bool, rise: u32, fall: u32) -> Self {
        Script {
            ok,
            rise: rise.max(1),
            fall: fall.max(1),
            streak: 0,
        }
    }

    pub fn is_ok(&self) -> bool {
        self.ok
    }

    /// Feeds one result; returns the new status when it changed.
    pub fn on_result(&mut self, ok: bool) -> Option<bool> {
        if ok == self.ok {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if ok { self.rise } else { self.fall };
        if self.streak < needed {
            return None;
        }
        self.streak = 0;
        self.ok = ok;
        Some(ok)
    }
}

/// What a tracked script does to an instance (keepalived vrrp_track.c):
/// weight 0 = fault while failed; a positive weight is added while OK, a
/// negative one while failed; `reverse` flips the sign of the adjustment.
/// Returns (fault, priority adjustment).
pub fn script_effect(weight: i32, reverse: bool, ok: bool) -> (bool, i32) {
    let sign = if reverse { -1 } else { 1 };
    if weight == 0 {
        // Reversed weight 0: a succeeding script is the fault.
        return (ok == reverse, 0);
    }
    let applies = if weight > 0 { ok } else { !ok };
    (false, if applies { weight * sign } else { 0 })
}

/// keepalived's quorum with hysteresis (ipwrapper.c): lost when the live
/// weight drops below `quorum - hysteresis`, regained at `quorum + hysteresis`.
pub fn quorum_up(was_up: bool, live_weight: u64, quorum: u32, hysteresis: u32) -> bool {
    let q = u64::from(quorum);
    let h = u64::from(hysteresis);
    if was_up {
        !(live_weight == 0 || live_weight < q.saturating_sub(h))
    } else {
        live_weight > 0 && live_weight >= q + h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checker_retries_before_down_and_one_success_restores() {
        let mut c = Checker::new(false, 2);
        assert!(c.is_up());
        assert_eq!(c.on_result(false), (None, Next::Retry));
        assert_eq!(c.on_result(false), (None, Next::Retry));
        assert_eq!(c.on_result(false), (Some(false), Next::Loop));
        assert!(!c.is_up());
        // Down: failures are not retried.
        assert_eq!(c.on_result(false), (None, Next::Loop));
        assert_eq!(c.on_result(true), (Some(true), Next::Loop));
        // A success in the middle of retries resets the count.
        assert_eq!(c.on_result(false), (None, Next::Retry));
        assert_eq!(c.on_result(true), (None, Next::Loop));
        assert_eq!(c.on_result(false), (None, Next::Retry));
        assert_eq!(c.on_result(false), (None, Next::Retry));
        assert_eq!(c.on_result(false), (Some(false), Next::Loop));
    }

    #[test]
    fn checker_retry_zero_and_alpha() {
        let mut c = Checker::new(false, 0);
        assert_eq!(c.on_result(false), (Some(false), Next::Loop));
        let mut a = Checker::new(true, 1);
        assert!(!a.is_up());
        assert_eq!(a.on_result(false), (None, Next::Loop));
        assert_eq!(a.on_result(true), (Some(true), Next::Loop));
        assert_eq!(
            Checker::delay(Next::Retry, Duration::from_secs(6), Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn script_rise_fall() {
        let mut s = Script::new(false, 2, 3);
        assert!(s.is_ok());
        assert_eq!(s.on_result(false), None);
        assert_eq!(s.on_result(false), None);
        assert_eq!(s.on_result(true), None); // streak broken
        assert_eq!(s.on_result(false), None);
        assert_eq!(s.on_result(false), None);
        assert_eq!(s.on_result(false), Some(false));
        assert_eq!(s.on_result(true), None);
        assert_eq!(s.on_result(true), Some(true));
        // Restarted failed (a reload): the first pass is a recovery.
        let mut r = Script::starting(false, 1, 3);
        assert_eq!(r.on_result(true), Some(true));
        let mut c = Checker::starting(false, 3);
        assert_eq!(c.on_result(true), (Some(true), Next::Loop));
        let mut f = Script::new(true, 1, 1);
        assert!(!f.is_ok());
        assert_eq!(f.on_result(false), None);
        assert_eq!(f.on_result(true), Some(true));
    }

    #[test]
    fn script_weights() {
        assert_eq!(script_effect(2, false, true), (false, 2));
        assert_eq!(script_effect(2, false, false), (false, 0));
        assert_eq!(script_effect(-20, false, true), (false, 0));
        assert_eq!(script_effect(-20, false, false), (false, -20));
        assert_eq!(script_effect(2, true, true), (false, -2));
        assert_eq!(script_effect(-20, true, false), (false, 20));
        assert_eq!(script_effect(0, false, false), (true, 0));
        assert_eq!(script_effect(0, false, true), (false, 0));
        assert_eq!(script_effect(0, true, true), (true, 0));
    }

    #[test]
    fn quorum_with_hysteresis() {
        // quorum 3, hysteresis 1: lost below 2, regained at 4.
        assert!(quorum_up(true, 2, 3, 1));
        assert!(!quorum_up(true, 1, 3, 1));
        assert!(!quorum_up(false, 3, 3, 1));
        assert!(quorum_up(false, 4, 3, 1));
        assert!(!quorum_up(true, 0, 0, 0));
        assert!(quorum_up(true, 1, 1, 0));
    }
}
