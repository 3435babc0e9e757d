//! The allocation records: one Lease per held value in the operator's namespace,
//! taken by create or compare-and-swap, so the apiserver decides every race.

use std::collections::HashSet;
use std::sync::Mutex;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::api::{DeleteParams, ObjectMeta, PostParams, Preconditions};
use kube::{Api, ResourceExt};
use tracing::warn;

use super::redis::reclaim;
use super::{ClaimContext, Outcome};
use crate::api::shared_resource_claim::{ReclaimPolicy, SharedResourceClaim};
use crate::controller::Error;
use crate::controller::kit::k8s::{is_conflict, is_not_found};
use crate::controller::kit::{self};
use crate::logic::allocation::{self, Join, KIND_LABEL, POOL_LABEL, Pool, RECORD_ANNOTATION, Request, ValueRecord};

/// Whether a value's Lease was taken for the claim, or who holds it.
pub(super) enum Acquired {
    Yes(String),
    No { holder: String },
}

/// Finds a free value and takes it.
pub(super) async fn allocate(
    cctx: &ClaimContext,
    pool: &Pool,
    claim: &SharedResourceClaim,
    request: &Request,
    redis: Option<u32>,
) -> Result<Outcome, Error> {
    let now = Timestamp::now();
    if let Some(requested) = &request.value {
        match acquire(cctx, pool, request, requested).await? {
            Acquired::Yes(lease) => {
                return Ok(Outcome::Bound { value: requested.clone(), lease, resolution: None, bound_at: now });
            }
            Acquired::No { holder } => {
                for candidate in allocation::conflict_candidates(pool, request, redis) {
                    if let Acquired::Yes(lease) = acquire(cctx, pool, request, &candidate).await? {
                        let resolution = format!("{requested} is held by {holder}; took {candidate} instead");
                        return Ok(Outcome::Bound {
                            value: candidate,
                            lease,
                            resolution: Some(resolution),
                            bound_at: now,
                        });
                    }
                }
                return Ok(match request.conflict_policy {
                    crate::api::shared_resource_claim::ConflictPolicy::Fail => Outcome::Conflicted { holder },
                    _ => Outcome::Pending {
                        reason: "PoolExhausted",
                        message: format!(
                            "{requested} is held by {holder} and pool {} has no alternative free",
                            pool.name
                        ),
                    },
                });
            }
        }
    }
    let candidates = allocation::dynamic_candidates(pool, request, &claim.name_any(), redis);
    if let Some((value, lease)) = acquire_any(cctx, pool, request, candidates).await? {
        return Ok(Outcome::Bound { value, lease, resolution: None, bound_at: now });
    }
    Ok(Outcome::Pending { reason: "PoolExhausted", message: format!("pool {} has no free value", pool.name) })
}

/// Takes `value` for `request` through the apiserver: create the Lease, or
/// compare-and-swap its holder list. The first attempt trusts the watch cache (no
/// read); a write that loses a race is retried from a fresh read, so the cache can
/// cost a retry but never a double hold.
pub(super) async fn acquire(
    cctx: &ClaimContext,
    pool: &Pool,
    request: &Request,
    value: &str,
) -> Result<Acquired, Error> {
    let name = allocation::lease_name(&pool.name, value);
    let api: Api<Lease> = Api::namespaced(cctx.ctx.client.clone(), &cctx.namespace);
    let mut existing = cctx.leases.find(|l| l.name_any() == name).map(|l| (*l).clone());
    for attempt in 0..5 {
        if attempt > 0 {
            existing = api.get_opt(&name).await?;
        }
        let record = existing.as_ref().and_then(record_of);
        match allocation::join(pool, record.as_ref(), request, value) {
            Join::AlreadyHeld => return Ok(Acquired::Yes(name)),
            Join::Conflict { holder } => return Ok(Acquired::No { holder }),
            Join::Joined(next) => {
                let result = match existing.take() {
                    None => api.create(&PostParams::default(), &lease(&cctx.namespace, &name, &pool.name, &next)).await,
                    Some(mut lease) => {
                        write_record(&mut lease, &next);
                        api.replace(&name, &PostParams::default(), &lease).await
                    }
                };
                match result {
                    Ok(_) => return Ok(Acquired::Yes(name)),
                    // Lost a race (created, changed or deleted since we looked): read again.
                    Err(e) if is_conflict(&e) || is_not_found(&e) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Err(Error::Waiting(format!("value {value} is contended; retrying")))
}

/// Tries dynamic candidates, skipping values another reconcile of this process is
/// taking right now: they would only cost a lost race.
pub(super) async fn acquire_any(
    cctx: &ClaimContext,
    pool: &Pool,
    request: &Request,
    candidates: Vec<String>,
) -> Result<Option<(String, String)>, Error> {
    for candidate in candidates {
        let name = allocation::lease_name(&pool.name, &candidate);
        let Some(_guard) = InFlight::take(&cctx.inflight, &name) else { continue };
        if let Acquired::Yes(lease) = acquire(cctx, pool, request, &candidate).await? {
            return Ok(Some((candidate, lease)));
        }
    }
    Ok(None)
}

/// Marks a Lease name as being written by this process until dropped.
struct InFlight<'a> {
    set: &'a Mutex<HashSet<String>>,
    name: String,
}

impl<'a> InFlight<'a> {
    fn take(set: &'a Mutex<HashSet<String>>, name: &str) -> Option<Self> {
        let mut guard = set.lock().unwrap_or_else(|p| p.into_inner());
        guard.insert(name.to_string()).then(|| InFlight { set, name: name.to_string() })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.name);
    }
}

/// Leaves the value recorded in Lease `name`: flush first (while we still hold it,
/// so no new holder can have written data), then drop our entry, deleting the
/// Lease when no holder is left.
pub(super) async fn release(
    cctx: &ClaimContext,
    pool: &Pool,
    claim: &SharedResourceClaim,
    name: &str,
) -> Result<(), Error> {
    let api: Api<Lease> = Api::namespaced(cctx.ctx.client.clone(), &cctx.namespace);
    let uid = claim.uid().unwrap_or_default();
    for _ in 0..5 {
        let Some(mut lease) = api.get_opt(name).await? else { return Ok(()) };
        let Some(record) = record_of(&lease) else { return Ok(()) };
        if !record.holders.contains_key(&uid) {
            return Ok(());
        }
        let remaining = allocation::leave(&record, &uid);
        if remaining.is_none() && claim.spec.reclaim_policy == ReclaimPolicy::Delete {
            reclaim(cctx, pool, &record.value).await?;
        }
        let result = match remaining {
            Some(next) => {
                write_record(&mut lease, &next);
                api.replace(name, &PostParams::default(), &lease).await.map(|_| ())
            }
            None => {
                let preconditions = Preconditions { resource_version: lease.resource_version(), uid: lease.uid() };
                api.delete(name, &DeleteParams { preconditions: Some(preconditions), ..Default::default() })
                    .await
                    .map(|_| ())
            }
        };
        match result {
            Ok(()) => return Ok(()),
            Err(e) if is_conflict(&e) => continue,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Waiting(format!("lease {name} is contended; retrying release")))
}

/// The cached Lease of `pool` that lists `uid` as a holder.
/// Every value `uid` holds in `pool`, per the Lease cache.
pub(super) fn holds(cctx: &ClaimContext, pool: &str, uid: &str) -> Vec<(String, ValueRecord)> {
    cctx.leases
        .state()
        .iter()
        .filter(|l| l.labels().get(POOL_LABEL).map(String::as_str) == Some(pool))
        .filter_map(|l| record_of(l).filter(|r| r.holders.contains_key(uid)).map(|r| (l.name_any(), r)))
        .collect()
}

/// The value the claim holds. Two writers (a second replica, a leader that has not
/// yet noticed it lost the Lease) reconciling one new claim at once can each take a
/// value for it; the extra one is given back here, keeping the value the claim's
/// status names, read fresh since the cached claim may predate the other's write.
pub(super) async fn hold_of(
    api: &Api<SharedResourceClaim>,
    claim: &SharedResourceClaim,
    cctx: &ClaimContext,
    pool: &Pool,
) -> Result<Option<(String, ValueRecord)>, Error> {
    let mut held = holds(cctx, &pool.name, &claim.uid().unwrap_or_default());
    if held.len() <= 1 {
        return Ok(held.pop());
    }
    let named = api.get_status(&claim.name_any()).await?.status.and_then(|s| s.lease);
    let keep = held.iter().position(|(lease, _)| named.as_deref() == Some(lease.as_str())).unwrap_or(0);
    let kept = held.swap_remove(keep);
    for (lease, _) in &held {
        warn!(claim = %claim.name_any(), %lease, kept = %kept.0, "claim held two values; releasing the one its status does not name");
        release(cctx, pool, claim, lease).await?;
    }
    Ok(Some(kept))
}

pub(super) fn record_of(lease: &Lease) -> Option<ValueRecord> {
    serde_json::from_str(lease.annotations().get(RECORD_ANNOTATION)?).ok()
}

pub(super) fn write_record(lease: &mut Lease, record: &ValueRecord) {
    lease.annotations_mut().insert(RECORD_ANNOTATION.into(), serde_json::to_string(record).unwrap_or_default());
    if let Some(spec) = lease.spec.as_mut() {
        spec.holder_identity = record.holders.values().next().cloned();
    }
}

pub(super) fn lease(namespace: &str, name: &str, pool: &str, record: &ValueRecord) -> Lease {
    let mut lease = Lease {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(
                [
                    (KIND_LABEL.to_string(), "allocation".to_string()),
                    (POOL_LABEL.to_string(), pool.to_string()),
                    (kit::k8s::MANAGED_BY_LABEL.to_string(), kit::k8s::MANAGED_BY.to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        },
        spec: Some(LeaseSpec::default()),
    };
    write_record(&mut lease, record);
    lease
}
