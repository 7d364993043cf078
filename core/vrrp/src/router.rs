//! The VRRP router: every instance and sync group of a node behind one
//! sans-I/O API in quinn-proto's shape.
//!
//! The daemon gives each receive socket an opaque [`SocketId`], feeds what the
//! sockets deliver to [`Router::handle_datagram`], calls
//! [`Router::handle_timeout`] at [`Router::poll_timeout`], reports what it
//! observes (tracking, shutdown) through the input methods, and then carries
//! out [`Router::poll_transmit`] (encoded packets and where to send them) and
//! [`Router::poll_event`] (VIPs, GARP, state changes, drops) in order. The
//! protocol decisions live here: receive rules per socket and per instance
//! (RFC 3768 §7.1, RFC 9568 §7.1), the unicast-peer source check, AH sequence
//! numbers and IP IDs, keepalived's old unicast checksum, advert encoding and
//! sync-group propagation. Nothing here reads a clock.
//!
//! Ordering: after every input the router drains the instances' actions
//! instance by instance; a transition that moves a sync group queues the
//! forced members' work behind the current instance's, the order the daemon
//! used to execute it in. Transmits and events are two queues: within one
//! instance's transition the advert is queued before the `StateChange` event,
//! and the daemon sends transmits before handling events (so the peer's
//! takeover never waits for hooks).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use crate::auth::{AhReplayState, AuthKey};
use crate::codec::{self, DecodeError, DropReason, InstanceRx, Parsed, RxOpts, TxOpts};
use crate::instance::{Action, Input, Instance, InstanceConfig, Reason, State};
use crate::sync_group::SyncGroup;
use crate::Advert;

/// The daemon's name for one receive socket; opaque to the router.
pub type SocketId = usize;
/// Index of an instance, in the order [`Router::add_instance`] returned it.
pub type InstanceId = usize;
/// Index of a sync group, in the order [`Router::add_sync_group`] returned it.
pub type GroupId = usize;

/// Upper bound on drain passes after one input. Every pass but the last is
/// caused by a sync group forcing members; a group forces only on a
/// transition to a state it has not synced to yet, so with N instances the
/// work settles in a handful of passes. The bound only guards against a
/// future bug turning that into a livelock; hitting it is reported as
/// [`Event::DrainLimit`].
const MAX_DRAIN_PASSES: usize = 64;

/// What the receive sockets' packets look like and which checks apply to
/// them before the instance is known (stage 1 of [`crate::codec`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketConfig {
    pub ipv6: bool,
    /// Receives from unicast peers: TTL is not checked (keepalived; peers may
    /// be routed).
    pub unicast: bool,
    pub v3_checksum_as_v2: bool,
    /// Accept keepalived's old v3 unicast checksum computed over this group.
    pub old_checksum_group: Option<Ipv4Addr>,
}

impl SocketConfig {
    fn rx_opts(&self) -> RxOpts {
        RxOpts {
            v3_checksum_as_v2: self.v3_checksum_as_v2,
            // RFC 9568 §7.1 requires TTL 255; keepalived does not insist on
            // it for unicast peers.
            check_ttl: !self.unicast,
            old_unicast_checksum_group: self.old_checksum_group,
        }
    }
}

/// keepalived `old_unicast_checksum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OldChecksum {
    /// Never send it (still accepted when the socket allows it).
    Never,
    /// Switch to it when a peer is seen using it (keepalived's default).
    Auto,
    /// Always send it.
    Always,
}

/// One instance as the router needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterInstanceConfig {
    /// For log lines only.
    pub name: String,
    pub fsm: InstanceConfig,
    /// The socket its adverts arrive on (and are sent from).
    pub socket: SocketId,
    /// Destinations of adverts: the group, or the unicast peers.
    pub dsts: Vec<IpAddr>,
    /// Addresses carried in adverts (those of the instance's family).
    pub advert_addrs: Vec<IpAddr>,
    /// v2 authentication.
    pub auth: Option<AuthKey>,
    pub v3_checksum_as_v2: bool,
    /// Adverts must carry exactly the configured addresses (keepalived's
    /// default; off with `skip_check_adv_addr`).
    pub check_addrs: bool,
    /// Configured unicast peers; empty for multicast.
    pub unicast_peers: Vec<IpAddr>,
    /// keepalived `check_unicast_src`: drop adverts from other sources.
    pub check_unicast_src: bool,
    pub old_checksum: OldChecksum,
    /// The group keepalived's old unicast checksum is computed over.
    pub mcast_group4: Ipv4Addr,
}

/// A packet to send: raw IPv4 (header included, for `IP_HDRINCL`) or the
/// VRRPv3 message for an IPv6 raw socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub instance: InstanceId,
    pub socket: SocketId,
    pub dst: IpAddr,
    pub bytes: Vec<u8>,
    /// The last packet of one advert (one per destination): the daemon
    /// counts adverts, not packets.
    pub last: bool,
}

/// A received datagram as the socket delivered it.
#[derive(Clone, Copy, Debug)]
pub enum Datagram<'a> {
    /// IPv4 raw socket: the IP header is included (source, destination, TTL
    /// are read from it).
    V4(&'a [u8]),
    /// IPv6 raw socket: the VRRP message; addresses and hop limit from the
    /// socket.
    V6 {
        payload: &'a [u8],
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    AddVips {
        instance: InstanceId,
    },
    RemoveVips {
        instance: InstanceId,
    },
    /// One burst of gratuitous ARP / unsolicited NA.
    SendGarp {
        instance: InstanceId,
        count: u32,
    },
    /// After the transition's critical work (VIPs, adverts, GARP).
    StateChange {
        instance: InstanceId,
        from: State,
        to: State,
        reason: Reason,
        priority: u8,
    },
    /// Every member of a sync group reached `to`.
    GroupStateChange {
        group: GroupId,
        from: Option<State>,
        to: State,
    },
    /// A sync group forced an input on a member (for the debug log).
    GroupForced {
        group: GroupId,
        instance: InstanceId,
        input: Input,
    },
    /// An advert passed the receive checks and went to the instance (which
    /// may still discard it: a preempting backup ignores a lower master,
    /// RFC 9568 §6.4.2).
    Accepted {
        instance: InstanceId,
        src: IpAddr,
    },
    /// A received packet was dropped; `error` names the reason.
    Dropped {
        socket: SocketId,
        instance: Option<InstanceId>,
        error: DecodeError,
    },
    /// A peer uses keepalived's old unicast checksum; we now send it too.
    OldChecksumSwitch {
        instance: InstanceId,
        peer: IpAddr,
    },
    /// [`MAX_DRAIN_PASSES`] was reached: work may be left queued.
    DrainLimit,
}

#[derive(Debug)]
struct Inst {
    cfg: RouterInstanceConfig,
    fsm: Instance,
    group: Option<(GroupId, usize)>,
    /// Advert template: only the priority changes between sends.
    advert: Advert,
    rx: InstanceRx,
    replay: AhReplayState,
    tx: TxOpts,
    /// Removed by a reload: its id stays reserved (ids are indices), it
    /// matches no advert and takes no input.
    removed: bool,
}

#[derive(Debug)]
struct Group {
    members: Vec<InstanceId>,
    sync: SyncGroup,
    notified: Option<State>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Router {
    sockets: Vec<(SocketId, SocketConfig)>,
    insts: Vec<Inst>,
    groups: Vec<Group>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    #[error("instance {0}: socket {1} was not added")]
    UnknownSocket(String, SocketId),
    #[error("sync group member {0} is not an instance")]
    UnknownMember(InstanceId),
    #[error("instance {0} is already in a sync group")]
    AlreadyGrouped(String),
    #[error("instance {0}: socket, VRID, version or address changed: not a change in place")]
    NotInPlace(String),
    #[error("instance {0} does not exist")]
    UnknownInstance(InstanceId),
}

impl Router {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a receive socket (before the instances that use it).
    pub fn add_socket(&mut self, id: SocketId, cfg: SocketConfig) {
        match self.sockets.iter_mut().find(|(s, _)| *s == id) {
            Some(slot) => slot.1 = cfg,
            None => self.sockets.push((id, cfg)),
        }
    }

    pub fn add_instance(&mut self, cfg: RouterInstanceConfig) -> Result<InstanceId, RouterError> {
        if !self.sockets.iter().any(|(s, _)| *s == cfg.socket) {
            return Err(RouterError::UnknownSocket(cfg.name.clone(), cfg.socket));
        }
        let (rx, advert) = wire_settings(&cfg);
        let tx = TxOpts {
            auth: cfg.auth,
            v3_checksum_as_v2: cfg.v3_checksum_as_v2,
            checksum_dst: old_checksum_always(&cfg).then_some(cfg.mcast_group4),
            ..TxOpts::default()
        };
        self.insts.push(Inst {
            fsm: Instance::new(cfg.fsm.clone()),
            cfg,
            group: None,
            advert,
            rx,
            replay: AhReplayState::new(),
            tx,
            removed: false,
        });
        Ok(self.insts.len() - 1)
    }

    /// A reload changed instance `i`'s settings. Only a change in place is
    /// taken (same socket, VRID, version and source address); anything else
    /// is [`RouterError::NotInPlace`]: remove it and add it anew. State,
    /// timers, AH sequence numbers and IP IDs carry over, so an unchanged
    /// instance keeps its advert rhythm exactly.
    pub fn reconfigure_instance(
        &mut self,
        now: Instant,
        i: InstanceId,
        cfg: RouterInstanceConfig,
    ) -> Result<(), RouterError> {
        let inst = self
            .insts
            .get_mut(i)
            .filter(|x| !x.removed)
            .ok_or(RouterError::UnknownInstance(i))?;
        let (a, b) = (&inst.cfg, &cfg);
        if a.socket != b.socket
            || a.fsm.vrid != b.fsm.vrid
            || a.fsm.version != b.fsm.version
            || a.fsm.primary_addr != b.fsm.primary_addr
        {
            return Err(RouterError::NotInPlace(cfg.name.clone()));
        }
        if *a == cfg {
            return Ok(());
        }
        let (rx, advert) = wire_settings(&cfg);
        inst.rx = rx;
        inst.advert = advert;
        // A switch to the old checksum learnt from a peer stays learnt.
        let learnt = inst.tx.checksum_dst.is_some() && cfg.old_checksum == OldChecksum::Auto;
        inst.tx.checksum_dst = (learnt || old_checksum_always(&cfg)).then_some(cfg.mcast_group4);
        inst.tx.auth = cfg.auth;
        inst.tx.v3_checksum_as_v2 = cfg.v3_checksum_as_v2;
        inst.fsm.reconfigure(now, cfg.fsm.clone());
        inst.cfg = cfg;
        self.drain(now);
        Ok(())
    }

    /// Stops instance `i` as at shutdown (a master sends priority 0 and
    /// removes its VIPs) and retires its id. Remove its sync group first.
    pub fn remove_instance(&mut self, now: Instant, i: InstanceId) {
        let Some(inst) = self.insts.get_mut(i).filter(|x| !x.removed) else {
            return;
        };
        inst.fsm.handle(now, Input::Shutdown);
        self.drain(now);
        if let Some(inst) = self.insts.get_mut(i) {
            inst.removed = true;
        }
    }

    /// Starts one instance added after [`Router::startup`] (its tracking
    /// applied first, as at startup).
    pub fn start_instance(&mut self, now: Instant, i: InstanceId) {
        if let Some(inst) = self.insts.get_mut(i).filter(|x| !x.removed) {
            inst.fsm.handle(now, Input::Startup);
        }
        self.drain(now);
    }

    /// Dissolves sync group `g` (a reload changed or removed it): its
    /// members carry on ungrouped; the id stays reserved.
    pub fn remove_sync_group(&mut self, g: GroupId) {
        let Some(group) = self.groups.get_mut(g) else {
            return;
        };
        for m in std::mem::take(&mut group.members) {
            if let Some(inst) = self.insts.get_mut(m) {
                inst.group = None;
            }
        }
    }

    /// Maintenance: demote (`true`) or promote instance `i`.
    pub fn set_demoted(&mut self, now: Instant, i: InstanceId, on: bool) {
        if let Some(inst) = self.insts.get_mut(i).filter(|x| !x.removed) {
            inst.fsm.handle(now, Input::Demote(on));
        }
        self.drain(now);
    }

    /// The instance's settings as last added or reconfigured.
    pub fn instance_config(&self, i: InstanceId) -> Option<&RouterInstanceConfig> {
        self.insts.get(i).filter(|x| !x.removed).map(|x| &x.cfg)
    }

    /// A sync group over instances already added.
    pub fn add_sync_group(&mut self, members: &[InstanceId]) -> Result<GroupId, RouterError> {
        for &m in members {
            let inst = self.insts.get(m).ok_or(RouterError::UnknownMember(m))?;
            if inst.group.is_some() {
                return Err(RouterError::AlreadyGrouped(inst.cfg.name.clone()));
            }
        }
        let gid = self.groups.len();
        for (mid, &m) in members.iter().enumerate() {
            if let Some(inst) = self.insts.get_mut(m) {
                inst.group = Some((gid, mid));
            }
        }
        let states = members
            .iter()
            .filter_map(|&m| self.insts.get(m).map(|x| x.fsm.state()))
            .collect();
        self.groups.push(Group {
            members: members.to_vec(),
            sync: SyncGroup::seeded(states),
            notified: None,
        });
        Ok(gid)
    }

    pub fn instances(&self) -> usize {
        self.insts.len()
    }

    pub fn state(&self, i: InstanceId) -> Option<State> {
        self.insts
            .get(i)
            .filter(|x| !x.removed)
            .map(|x| x.fsm.state())
    }

    pub fn effective_priority(&self, i: InstanceId) -> Option<u8> {
        self.insts.get(i).map(|x| x.fsm.effective_priority())
    }

    pub fn group_of(&self, i: InstanceId) -> Option<GroupId> {
        self.insts.get(i).and_then(|x| x.group.map(|(g, _)| g))
    }

    /// The state a sync group last notified (all members reached it).
    pub fn group_notified(&self, g: GroupId) -> Option<State> {
        self.groups.get(g).and_then(|x| x.notified)
    }

    /// The state machine, for inspection (timers, intervals).
    pub fn instance(&self, i: InstanceId) -> Option<&Instance> {
        self.insts.get(i).map(|x| &x.fsm)
    }

    /// Earliest timer of any instance.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.insts.iter().filter_map(|i| i.fsm.poll_timeout()).min()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for i in &mut self.insts {
            i.fsm.handle_timeout(now);
        }
        self.drain(now);
    }

    /// Starts every instance with its initial tracking already applied
    /// through [`Router::set_tracking`].
    pub fn startup(&mut self, now: Instant) {
        for i in self.insts.iter_mut().filter(|x| !x.removed) {
            i.fsm.handle(now, Input::Startup);
        }
        self.drain(now);
    }

    /// Stops every instance (masters send priority 0, RFC 9568 §6.4.3).
    pub fn shutdown(&mut self, now: Instant) {
        for i in self.insts.iter_mut().filter(|x| !x.removed) {
            i.fsm.handle(now, Input::Shutdown);
        }
        self.drain(now);
    }

    /// What the daemon computed from tracked interfaces and scripts: a fault
    /// condition and the sum of the active weights. A sync group member's
    /// fault goes through the group (keepalived vrrp_sync.c).
    pub fn set_tracking(&mut self, now: Instant, i: InstanceId, fault: bool, adjust: i32) {
        let Some(inst) = self.insts.get_mut(i).filter(|x| !x.removed) else {
            return;
        };
        inst.fsm.handle(now, Input::PriorityAdjust(adjust));
        match inst.group {
            None => inst.fsm.handle(now, Input::Fault(fault)),
            Some((g, mid)) => {
                let inputs = match self.groups.get_mut(g) {
                    Some(grp) => grp.sync.on_fault(mid, fault),
                    None => Vec::new(),
                };
                self.apply_group_inputs(now, g, inputs);
            }
        }
        self.drain(now);
    }

    /// One datagram from socket `socket`.
    pub fn handle_datagram(&mut self, now: Instant, socket: SocketId, dgram: Datagram<'_>) {
        if let Err((instance, error)) = self.receive(now, socket, dgram) {
            self.events.push_back(Event::Dropped {
                socket,
                instance,
                error,
            });
        }
        self.drain(now);
    }

    fn receive(
        &mut self,
        now: Instant,
        socket: SocketId,
        dgram: Datagram<'_>,
    ) -> Result<(), (Option<InstanceId>, DecodeError)> {
        let Some(&(_, scfg)) = self.sockets.iter().find(|(s, _)| *s == socket) else {
            return Err((
                None,
                DecodeError::new(None, DropReason::Protocol, "socket unknown to the router"),
            ));
        };
        let opts = scfg.rx_opts();
        let parsed: Parsed = match dgram {
            Datagram::V4(bytes) if !scfg.ipv6 => codec::parse_ipv4(bytes, &opts),
            Datagram::V6 {
                payload,
                src,
                dst,
                hop_limit,
            } if scfg.ipv6 => codec::parse_ipv6(payload, src, dst, hop_limit, &opts),
            _ => Err(DecodeError::new(
                None,
                DropReason::IpHeader,
                "address family differs from the socket's",
            )),
        }
        .map_err(|e| (None, e))?;
        let vrid = parsed.advert.vrid;
        let id = self
            .insts
            .iter()
            .position(|x| !x.removed && x.cfg.socket == socket && x.cfg.fsm.vrid == vrid)
            .ok_or((None, DecodeError::unknown_vrid(vrid)))?;
        let inst = &mut self.insts[id];
        let cfg = &inst.cfg;
        if cfg.check_unicast_src
            && !cfg.unicast_peers.is_empty()
            && !cfg.unicast_peers.contains(&parsed.src)
        {
            // keepalived vrrp_check_unicast_src; counted as an address-list
            // mismatch.
            return Err((
                Some(id),
                DecodeError::new(
                    Some(vrid),
                    DropReason::AddrList,
                    format!("{} is not a configured unicast peer", parsed.src),
                ),
            ));
        }
        codec::validate(&parsed, &inst.rx, &mut inst.replay).map_err(|e| (Some(id), e))?;
        if parsed.old_unicast_checksum
            && inst.tx.checksum_dst.is_none()
            && inst.cfg.old_checksum == OldChecksum::Auto
        {
            // keepalived switches the same way when it sees such a peer.
            inst.tx.checksum_dst = Some(inst.cfg.mcast_group4);
            self.events.push_back(Event::OldChecksumSwitch {
                instance: id,
                peer: parsed.src,
            });
        }
        self.events.push_back(Event::Accepted {
            instance: id,
            src: parsed.src,
        });
        let a = &parsed.advert;
        inst.fsm.handle(
            now,
            Input::Advert {
                src: parsed.src,
                priority: a.priority,
                interval_cs: a.interval_cs,
            },
        );
        Ok(())
    }

    /// Turns every instance's actions into transmits and events until all
    /// are quiet (see [`MAX_DRAIN_PASSES`]).
    fn drain(&mut self, now: Instant) {
        for _ in 0..MAX_DRAIN_PASSES {
            let mut any = false;
            for i in 0..self.insts.len() {
                while let Some(a) = self.insts[i].fsm.poll_action() {
                    any = true;
                    self.execute(now, i, a);
                }
            }
            if !any {
                return;
            }
        }
        self.events.push_back(Event::DrainLimit);
    }

    fn execute(&mut self, now: Instant, i: InstanceId, action: Action) {
        match action {
            Action::SendAdvert { priority } => self.encode_advert(i, priority),
            Action::AddVips => self.events.push_back(Event::AddVips { instance: i }),
            Action::RemoveVips => self.events.push_back(Event::RemoveVips { instance: i }),
            Action::SendGarp { count } => self
                .events
                .push_back(Event::SendGarp { instance: i, count }),
            Action::StateChange { from, to, reason } => {
                let priority = self.insts[i].fsm.effective_priority();
                self.events.push_back(Event::StateChange {
                    instance: i,
                    from,
                    to,
                    reason,
                    priority,
                });
                self.propagate_sync(now, i, to);
                self.notify_group(i, to);
            }
        }
    }

    /// keepalived vrrp_sync_group: members move together.
    fn propagate_sync(&mut self, now: Instant, i: InstanceId, to: State) {
        let Some((g, mid)) = self.insts[i].group else {
            return;
        };
        let inputs = match self.groups.get_mut(g) {
            Some(grp) => grp.sync.on_state_change(mid, to),
            None => return,
        };
        self.apply_group_inputs(now, g, inputs);
    }

    fn apply_group_inputs(&mut self, now: Instant, g: GroupId, inputs: Vec<(usize, Input)>) {
        for (mid, input) in inputs {
            let Some(&m) = self.groups.get(g).and_then(|x| x.members.get(mid)) else {
                continue;
            };
            self.events.push_back(Event::GroupForced {
                group: g,
                instance: m,
                input,
            });
            if let Some(inst) = self.insts.get_mut(m) {
                inst.fsm.handle(now, input);
            }
        }
    }

    /// A sync group has changed state once all its members are in it.
    fn notify_group(&mut self, i: InstanceId, to: State) {
        let Some((g, _)) = self.insts[i].group else {
            return;
        };
        let Some(group) = self.groups.get(g) else {
            return;
        };
        let all = group
            .members
            .iter()
            .all(|&m| self.insts.get(m).is_some_and(|x| x.fsm.state() == to));
        if !all || group.notified == Some(to) {
            return;
        }
        let from = group.notified;
        if let Some(group) = self.groups.get_mut(g) {
            group.notified = Some(to);
        }
        self.events
            .push_back(Event::GroupStateChange { group: g, from, to });
    }

    /// Encodes one advert per destination from the template.
    fn encode_advert(&mut self, i: InstanceId, priority: u8) {
        let inst = &mut self.insts[i];
        inst.advert.priority = priority;
        let src = inst.cfg.fsm.primary_addr;
        let n = inst.cfg.dsts.len();
        for (k, &dst) in inst.cfg.dsts.iter().enumerate() {
            let bytes = match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    if matches!(inst.tx.auth, Some(AuthKey::Ah(_))) {
                        // Above anything accepted: keepalived shares one
                        // counter for both directions (see crate::auth).
                        inst.tx.ah_seq = inst.replay.next_tx_seq();
                    }
                    inst.tx.ip_id = inst.tx.ip_id.wrapping_add(1);
                    codec::encode_ipv4(s, d, &inst.advert, &inst.tx)
                }
                (IpAddr::V6(s), IpAddr::V6(d)) => codec::encode_ipv6(s, d, &inst.advert),
                // Configuration keeps an instance to one family; a mixed
                // destination cannot be encoded and is skipped.
                _ => continue,
            };
            self.transmits.push_back(Transmit {
                instance: i,
                socket: inst.cfg.socket,
                dst,
                bytes,
                last: k + 1 == n,
            });
        }
    }
}

/// What the wire carries and the receive checks expect, from the settings.
fn wire_settings(cfg: &RouterInstanceConfig) -> (InstanceRx, Advert) {
    let version = cfg.fsm.version;
    let interval_cs = u16::try_from(cfg.fsm.advert_int.as_millis() / 10).unwrap_or(u16::MAX);
    let rx = InstanceRx {
        version,
        interval_cs,
        auth: cfg.auth,
        check_addrs: cfg.check_addrs.then(|| cfg.advert_addrs.clone()),
        own_addr: Some(cfg.fsm.primary_addr),
    };
    let advert = Advert {
        version,
        vrid: cfg.fsm.vrid,
        priority: cfg.fsm.priority,
        interval_cs,
        addrs: cfg.advert_addrs.clone(),
    };
    (rx, advert)
}

fn old_checksum_always(cfg: &RouterInstanceConfig) -> bool {
    !cfg.unicast_peers.is_empty() && cfg.old_checksum == OldChecksum::Always
}
