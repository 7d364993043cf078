//! Sync groups (keepalived `vrrp_sync_group`): instances that fail over
//! together, e.g. the outside VIP and the inside gateway of a NAT load
//! balancer.
//!
//! A pure helper: the daemon feeds it every member's fault condition and every
//! [`Action::StateChange`](crate::instance::Action::StateChange), and applies
//! the returned inputs to the members (in order). Rules (keepalived
//! vrrp_sync.c):
//! - one member faulted: all members Fault, and none leaves Fault until no
//!   member has a fault condition (keepalived `num_member_fault`);
//! - one member to Master: the others in Backup are forced to Master;
//! - one member to Backup: the others in Master are forced to Backup.
//!
//! Ping-pong: like keepalived's `GROUP_STATE` check, the group remembers the
//! state it last synced to and ignores transitions that already match it, so
//! the transitions it forces itself (reported back by the members) cause no
//! further forcing.

use crate::instance::{Input, State};

/// A member index: position in the list the group was built with.
pub type MemberId = usize;

#[derive(Clone, Debug)]
pub struct SyncGroup {
    /// Last state the group synced to (Initialize until the first transition).
    state: State,
    /// The members' last reported states.
    states: Vec<State>,
    /// The members' own fault conditions.
    faults: Vec<bool>,
    /// Group is held in Fault (some member has a fault condition).
    fault_latched: bool,
}

impl SyncGroup {
    pub fn new(members: usize) -> Self {
        Self {
            state: State::Initialize,
            states: vec![State::Initialize; members],
            faults: vec![false; members],
            fault_latched: false,
        }
    }

    /// A group formed over running members (a reload): it starts synced to
    /// their common state, if they share one.
    pub fn seeded(states: Vec<State>) -> Self {
        let common = match states.first() {
            Some(&s) if states.iter().all(|&x| x == s) => s,
            _ => State::Initialize,
        };
        Self {
            state: common,
            faults: vec![false; states.len()],
            states,
            fault_latched: false,
        }
    }

    /// The state the group last synced to.
    pub fn state(&self) -> State {
        if self.fault_latched {
            State::Fault
        } else {
            self.state
        }
    }

    /// A member's own aggregated fault condition changed. Route members'
    /// faults through here instead of sending `Input::Fault` directly: the
    /// returned list includes the member's own `Fault(fault)`.
    pub fn on_fault(&mut self, member: MemberId, fault: bool) -> Vec<(MemberId, Input)> {
        let Some(slot) = self.faults.get_mut(member) else {
            return Vec::new();
        };
        *slot = fault;
        let mut out = vec![(member, Input::Fault(fault))];
        let any = self.faults.iter().any(|&f| f);
        if any != self.fault_latched {
            self.fault_latched = any;
            if any {
                self.state = State::Fault;
            }
            // Every member, the faulted one included: it must stay down after
            // its own fault clears while another member is still faulted.
            out.extend((0..self.faults.len()).map(|m| (m, Input::ForceFault(any))));
        }
        out
    }

    /// A member reported `StateChange { to, .. }`.
    pub fn on_state_change(&mut self, member: MemberId, to: State) -> Vec<(MemberId, Input)> {
        let Some(slot) = self.states.get_mut(member) else {
            return Vec::new();
        };
        *slot = to;
        // While faulted, members only enter Fault (forced) or Initialize
        // (shutdown); nothing to propagate. Fault itself is driven by
        // on_fault, and Initialize (a member shut down) does not move the
        // others.
        if self.fault_latched || matches!(to, State::Fault | State::Initialize) {
            return Vec::new();
        }
        if self.state == to {
            // Already synced there: this is a forced member reporting back.
            return Vec::new();
        }
        self.state = to;
        let (from, input) = match to {
            State::Master => (State::Backup, Input::ForceMaster),
            _ => (State::Master, Input::ForceBackup),
        };
        self.states
            .iter()
            .enumerate()
            .filter(|&(m, &s)| m != member && s == from)
            .map(|(m, _)| (m, input))
            .collect()
    }
}
