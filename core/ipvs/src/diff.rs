//! Desired vs observed -> the fewest kernel operations, in an order the
//! kernel accepts.

use std::collections::BTreeMap;

use crate::model::{DestKey, DestSpec, IpvsState, OwnedSet, Service, ServiceKey, ServiceSpec};

/// One IPVS netlink request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// NEW_SERVICE. The service's `dests` is always empty: its destinations
    /// follow as `AddDest`.
    AddService(Service),
    /// SET_SERVICE: scheduler, flags, persistence, granularity, PE.
    EditService(ServiceKey, ServiceSpec),
    /// DEL_SERVICE. The kernel unlinks the service's destinations itself, so
    /// no `DelDest` precedes it.
    DelService(ServiceKey),
    /// NEW_DEST.
    AddDest(ServiceKey, DestKey, DestSpec),
    /// SET_DEST: forwarding method, tunnel, weight and thresholds in place.
    EditDest(ServiceKey, DestKey, DestSpec),
    /// DEL_DEST.
    DelDest(ServiceKey, DestKey),
}

impl Op {
    pub fn service(&self) -> &ServiceKey {
        match self {
            Op::AddService(s) => &s.key,
            Op::EditService(k, _)
            | Op::DelService(k)
            | Op::AddDest(k, _, _)
            | Op::EditDest(k, _, _)
            | Op::DelDest(k, _) => k,
        }
    }
}

/// The operations turning `observed` into `desired`.
///
/// - Only owned services are touched: keys in `owned` or in `desired`. A
///   foreign service (and every destination in it) is left alone.
/// - An owned service missing from `desired` is deleted with one
///   `DelService`.
/// - A service whose key is not observed is added, then its destinations.
/// - An adopted service gets `EditService` only if its spec differs
///   (compared in normalized form), then `DelDest`s, `EditDest`s, `AddDest`s
///   for its destinations. Destinations in an owned service that lbd does not
///   want (e.g. added by hand) are removed: that is drift repair.
///
/// Order: all service deletions first, then per desired service (in key
/// order) add/edit of the service followed by its destination changes.
pub fn diff(desired: &IpvsState, observed: &IpvsState, owned: &OwnedSet) -> Vec<Op> {
    let mut ops = Vec::new();

    for key in observed.services.keys() {
        if owned.contains(key) && !desired.services.contains_key(key) {
            ops.push(Op::DelService(key.clone()));
        }
    }

    for (key, want) in &desired.services {
        match observed.services.get(key) {
            None => {
                ops.push(Op::AddService(Service::new(key.clone(), want.spec.clone())));
                for (dk, ds) in &want.dests {
                    ops.push(Op::AddDest(key.clone(), *dk, ds.clone()));
                }
            }
            Some(have) => {
                if !want.spec.equivalent(&have.spec, key.af()) {
                    ops.push(Op::EditService(key.clone(), want.spec.clone()));
                }
                diff_dests(key, &want.dests, &have.dests, &mut ops);
            }
        }
    }
    ops
}

fn diff_dests(
    key: &ServiceKey,
    want: &BTreeMap<DestKey, DestSpec>,
    have: &BTreeMap<DestKey, DestSpec>,
    ops: &mut Vec<Op>,
) {
    for dk in have.keys() {
        if !want.contains_key(dk) {
            ops.push(Op::DelDest(key.clone(), *dk));
        }
    }
    let mut adds = Vec::new();
    for (dk, ds) in want {
        match have.get(dk) {
            None => adds.push(Op::AddDest(key.clone(), *dk, ds.clone())),
            Some(h) if !h.equivalent(ds) => ops.push(Op::EditDest(key.clone(), *dk, ds.clone())),
            Some(_) => {}
        }
    }
    ops.extend(adds);
}

/// Why `apply` refused an operation: the errors the kernel would return.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("op {index}: service {service} already exists (EEXIST)")]
    ServiceExists { index: usize, service: ServiceKey },
    #[error("op {index}: service {service} not found (ESRCH)")]
    NoService { index: usize, service: ServiceKey },
    #[error("op {index}: destination {dest} of {service} already exists (EEXIST)")]
    DestExists {
        index: usize,
        service: ServiceKey,
        dest: DestKey,
    },
    #[error("op {index}: destination {dest} of {service} not found (ENOENT)")]
    NoDest {
        index: usize,
        service: ServiceKey,
        dest: DestKey,
    },
}

/// Applies `ops` to `state` as the kernel would, stopping at the first one
/// the kernel would refuse (the ones before it stay applied). Used by tests
/// to check the order of `diff`'s output, and usable as a model of what a
/// successful batch did to the kernel.
pub fn apply(state: &mut IpvsState, ops: &[Op]) -> Result<(), ApplyError> {
    for (index, op) in ops.iter().enumerate() {
        apply_one(state, index, op)?;
    }
    Ok(())
}

fn apply_one(state: &mut IpvsState, index: usize, op: &Op) -> Result<(), ApplyError> {
    let no_service = |k: &ServiceKey| ApplyError::NoService {
        index,
        service: k.clone(),
    };
    match op {
        Op::AddService(s) => {
            if state.services.contains_key(&s.key) {
                return Err(ApplyError::ServiceExists {
                    index,
                    service: s.key.clone(),
                });
            }
            // NEW_SERVICE carries no destinations whatever the op holds.
            state.insert(Service::new(s.key.clone(), s.spec.clone()));
        }
        Op::EditService(k, spec) => {
            let svc = state.services.get_mut(k).ok_or_else(|| no_service(k))?;
            svc.spec = spec.clone();
        }
        Op::DelService(k) => {
            state.services.remove(k).ok_or_else(|| no_service(k))?;
        }
        Op::AddDest(k, dk, ds) => {
            let svc = state.services.get_mut(k).ok_or_else(|| no_service(k))?;
            if svc.dests.contains_key(dk) {
                return Err(ApplyError::DestExists {
                    index,
                    service: k.clone(),
                    dest: *dk,
                });
            }
            svc.dests.insert(*dk, ds.clone());
        }
        Op::EditDest(k, dk, ds) => {
            let svc = state.services.get_mut(k).ok_or_else(|| no_service(k))?;
            let d = svc.dests.get_mut(dk).ok_or_else(|| ApplyError::NoDest {
                index,
                service: k.clone(),
                dest: *dk,
            })?;
            *d = ds.clone();
        }
        Op::DelDest(k, dk) => {
            let svc = state.services.get_mut(k).ok_or_else(|| no_service(k))?;
            svc.dests.remove(dk).ok_or_else(|| ApplyError::NoDest {
                index,
                service: k.clone(),
                dest: *dk,
            })?;
        }
    }
    Ok(())
}
