//! Sync groups: the pure rules, then real instances wired through a group the
//! way the daemon does it (every StateChange fed back, forced inputs applied).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use lbd_vrrp::instance::{Action, GarpTiming, Input, Instance, InstanceConfig, Reason, State};
use lbd_vrrp::sync_group::SyncGroup;
use lbd_vrrp::Version;

mod rules {
    use super::*;

    /// A group of `n` whose members all reported `state`.
    fn group(n: usize, state: State) -> SyncGroup {
        let mut g = SyncGroup::new(n);
        for m in 0..n {
            g.on_state_change(m, state);
        }
        g
    }

    #[test]
    fn one_master_forces_the_backups_master() {
        let mut g = group(3, State::Backup);
        assert_eq!(
            g.on_state_change(1, State::Master),
            vec![(0, Input::ForceMaster), (2, Input::ForceMaster)]
        );
        assert_eq!(g.state(), State::Master);
    }

    #[test]
    fn forced_members_reporting_back_cause_nothing() {
        let mut g = group(3, State::Backup);
        g.on_state_change(1, State::Master);
        assert_eq!(g.on_state_change(0, State::Master), vec![]);
        assert_eq!(g.on_state_change(2, State::Master), vec![]);
    }

    #[test]
    fn one_backup_forces_the_masters_backup() {
        let mut g = group(3, State::Backup);
        g.on_state_change(0, State::Master);
        g.on_state_change(1, State::Master);
        g.on_state_change(2, State::Master);
        assert_eq!(
            g.on_state_change(2, State::Backup),
            vec![(0, Input::ForceBackup), (1, Input::ForceBackup)]
        );
        assert_eq!(g.on_state_change(0, State::Backup), vec![]);
        assert_eq!(g.on_state_change(1, State::Backup), vec![]);
        assert_eq!(g.state(), State::Backup);
    }

    #[test]
    fn one_fault_forces_all_until_every_fault_clears() {
        let mut g = group(3, State::Master);
        assert_eq!(
            g.on_fault(0, true),
            vec![
                (0, Input::Fault(true)),
                (0, Input::ForceFault(true)),
                (1, Input::ForceFault(true)),
                (2, Input::ForceFault(true)),
            ]
        );
        assert_eq!(g.state(), State::Fault);
        // A second member faults: already latched.
        assert_eq!(g.on_fault(2, true), vec![(2, Input::Fault(true))]);
        // The first clears: the group stays down.
        assert_eq!(g.on_fault(0, false), vec![(0, Input::Fault(false))]);
        assert_eq!(g.state(), State::Fault);
        // The last clears: everyone released.
        assert_eq!(
            g.on_fault(2, false),
            vec![
                (2, Input::Fault(false)),
                (0, Input::ForceFault(false)),
                (1, Input::ForceFault(false)),
                (2, Input::ForceFault(false)),
            ]
        );
    }

    #[test]
    fn transitions_while_faulted_propagate_nothing() {
        let mut g = group(2, State::Master);
        g.on_fault(0, true);
        assert_eq!(g.on_state_change(0, State::Fault), vec![]);
        assert_eq!(g.on_state_change(1, State::Fault), vec![]);
        assert_eq!(g.on_state_change(1, State::Initialize), vec![]);
    }

    #[test]
    fn after_a_fault_members_come_back_as_backup_without_forcing() {
        let mut g = group(2, State::Master);
        g.on_fault(1, true);
        g.on_state_change(0, State::Fault);
        g.on_state_change(1, State::Fault);
        g.on_fault(1, false);
        assert_eq!(g.on_state_change(0, State::Backup), vec![]);
        assert_eq!(g.on_state_change(1, State::Backup), vec![]);
        assert_eq!(g.state(), State::Backup);
    }

    #[test]
    fn shutdown_of_a_member_does_not_move_the_others() {
        let mut g = group(2, State::Master);
        assert_eq!(g.on_state_change(0, State::Initialize), vec![]);
        assert_eq!(g.state(), State::Master);
    }

    #[test]
    fn unknown_members_are_ignored() {
        let mut g = SyncGroup::new(2);
        assert_eq!(g.on_state_change(7, State::Master), vec![]);
        assert_eq!(g.on_fault(7, true), vec![]);
        assert_eq!(g.state(), State::Initialize);
    }
}

/// One node's instances wired through one group, as the daemon does.
struct Node {
    now: Instant,
    members: Vec<Instance>,
    group: SyncGroup,
    log: Vec<(usize, Action)>,
}

impl Node {
    fn new(prios: &[u8]) -> Self {
        let members = prios
            .iter()
            .enumerate()
            .map(|(i, &priority)| {
                Instance::new(InstanceConfig {
                    vrid: u8::try_from(i + 1).unwrap_or(1),
                    version: Version::V3,
                    priority,
                    advert_int: Duration::from_secs(1),
                    preempt: true,
                    preempt_delay: Duration::ZERO,
                    initial_master: false,
                    primary_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                    garp: GarpTiming::default(),
                })
            })
            .collect();
        Self {
            now: Instant::now(),
            group: SyncGroup::new(prios.len()),
            members,
            log: Vec::new(),
        }
    }

    /// Apply inputs and everything they cause, with a bound that fails the
    /// test on a ping-pong loop.
    fn apply(&mut self, mut pending: Vec<(usize, Input)>) {
        for _ in 0..100 {
            if pending.is_empty() {
                return;
            }
            let mut next = Vec::new();
            for (m, input) in pending {
                self.members[m].handle(self.now, input);
                next.extend(self.drain(m));
            }
            pending = next;
        }
        panic!("sync group did not settle");
    }

    fn drain(&mut self, m: usize) -> Vec<(usize, Input)> {
        let mut out = Vec::new();
        while let Some(a) = self.members[m].poll_action() {
            if let Action::StateChange { to, .. } = a {
                out.extend(self.group.on_state_change(m, to));
            }
            self.log.push((m, a));
        }
        out
    }

    fn timeout(&mut self) {
        let Some(at) = self.members.iter().filter_map(Instance::poll_timeout).min() else {
            return;
        };
        self.now = self.now.max(at);
        let mut pending = Vec::new();
        for m in 0..self.members.len() {
            if self.members[m]
                .poll_timeout()
                .is_some_and(|t| t <= self.now)
            {
                self.members[m].handle_timeout(self.now);
                pending.extend(self.drain(m));
            }
        }
        self.apply(pending);
    }

    fn fault(&mut self, m: usize, on: bool) {
        let pending = self.group.on_fault(m, on);
        self.apply(pending);
    }

    fn states(&self) -> Vec<State> {
        self.members.iter().map(Instance::state).collect()
    }
}

mod wired {
    use super::*;

    fn started(prios: &[u8]) -> Node {
        let mut n = Node::new(prios);
        n.apply((0..prios.len()).map(|m| (m, Input::Startup)).collect());
        n
    }

    #[test]
    fn first_timer_to_expire_takes_the_whole_group_master() {
        // 200 has the shortest down timer; 100 is forced along.
        let mut n = started(&[100, 200]);
        n.timeout();
        assert_eq!(n.states(), vec![State::Master, State::Master]);
        assert!(n.log.contains(&(
            0,
            Action::StateChange {
                from: State::Backup,
                to: State::Master,
                reason: Reason::Sync
            }
        )));
    }

    #[test]
    fn higher_advert_on_one_member_takes_the_group_backup() {
        let mut n = started(&[100, 100]);
        n.timeout();
        let src = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        n.apply(vec![(
            1,
            Input::Advert {
                src,
                priority: 150,
                interval_cs: 100,
            },
        )]);
        assert_eq!(n.states(), vec![State::Backup, State::Backup]);
    }

    #[test]
    fn fault_of_one_member_faults_the_group_and_recovers_together() {
        let mut n = started(&[100, 100, 100]);
        n.timeout();
        n.log.clear();
        n.fault(2, true);
        assert_eq!(n.states(), vec![State::Fault; 3]);
        // The masters resigned with priority 0 before reporting Fault.
        let zeros = n
            .log
            .iter()
            .filter(|(_, a)| *a == Action::SendAdvert { priority: 0 })
            .count();
        assert_eq!(zeros, 3);
        n.fault(0, true);
        n.fault(2, false);
        assert_eq!(n.states(), vec![State::Fault; 3]);
        n.fault(0, false);
        assert_eq!(n.states(), vec![State::Backup; 3]);
    }

    #[test]
    fn recovered_group_goes_master_again_together() {
        let mut n = started(&[100, 150]);
        n.timeout();
        n.fault(0, true);
        n.fault(0, false);
        n.timeout();
        assert_eq!(n.states(), vec![State::Master, State::Master]);
    }
}
