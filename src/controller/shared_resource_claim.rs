//! SharedResourceClaim: allocation of pool values recorded in Leases.
//!
//! load: the claim, its pool, the allocation Leases (from a watch cache) and, for
//! Redis pools, the live database count -> decide: `logic::allocation` -> apply:
//! create / compare-and-swap / delete the value's Lease, `FLUSHDB` on release ->
//! status.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::{BoxFuture, Shared};
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ObjectMeta, PostParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::kit::k8s::{is_conflict, is_not_found};
use super::kit::{self, Reconciler};
use super::{Context, Error, apply_status, publish};
use crate::api::PreviewEnvironment;
use crate::api::conditions::{self, Conditioned, Kstatus, RECONCILING, Status};
use crate::api::shared_resource_claim::{
    ClaimPhase, ReclaimPolicy, ResourceType, SharedResourceClaim, SharedResourceClaimStatus,
};
use crate::backends::redis::RedisServer;
use crate::logic::allocation::{
    self, Join, KIND_LABEL, POOL_LABEL, Pool, PoolKind, RECORD_ANNOTATION, Request, ValueRecord,
};
use crate::logic::duration;
use crate::metrics::{ClaimLabels, PoolLabels};

/// Finalizer that releases the held value.
pub const FINALIZER: &str = "switchyard.dev/release";
const MANAGER: &str = "switchyard-claims";
/// How often a claim waiting for a value looks again (Lease deletions also wake it).
const PENDING_RETRY: Duration = Duration::from_secs(15);
/// How long a Redis server's database count is trusted.
const REDIS_COUNT_TTL: Duration = Duration::from_secs(60);

/// What the claim reconciler shares besides the common [`Context`].
pub struct ClaimContext {
    pub ctx: Arc<Context>,
    /// Namespace of the allocation Leases.
    pub namespace: String,
    /// Watch cache of the allocation Leases: a hint of what is taken.
    pub leases: Store<Lease>,
    redis_counts: Mutex<HashMap<String, (u32, Instant)>>,
    /// Lease names a reconcile of this process is writing right now.
    inflight: Mutex<HashSet<String>>,
}

/// Runs the controller until `shutdown` resolves.
pub fn run(ctx: Arc<Context>, namespace: String, shutdown: Shared<BoxFuture<'static, ()>>) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let lease_api: Api<Lease> = Api::namespaced(ctx.client.clone(), &namespace);
        let (reader, writer) = reflector::store();
        let (wake_tx, wake_rx) = mpsc::channel::<()>(1);
        let lease_watch = reflector::reflector(
            writer,
            watcher(lease_api, watcher::Config::default().labels(&format!("{KIND_LABEL}=allocation"))),
        )
        .default_backoff()
        .for_each(move |event| {
            // A deleted Lease is a freed value: wake claims waiting for one.
            if let Ok(watcher::Event::Delete(_)) = event {
                let _ = wake_tx.try_send(());
            }
            futures::future::ready(())
        });
        let claims = ctx.watched::<SharedResourceClaim>();
        let settings = kit::runner::settings(&ctx);
        let cctx = Arc::new(ClaimContext {
            ctx,
            namespace,
            leases: reader.clone(),
            redis_counts: Mutex::default(),
            inflight: Mutex::default(),
        });
        let wake = tokio_stream_from(wake_rx);
        let controller = Controller::new(claims, watcher::Config::default().any_semantic());
        let gauges = export_gauges(cctx.clone(), controller.store());
        let controller = kit::drive(
            ClaimContext::KIND,
            controller.with_config(settings).reconcile_all_on(wake).graceful_shutdown_on(shutdown.clone()).run(
                kit::reconcile,
                kit::error_policy,
                cctx,
            ),
        );
        tokio::select! {
            _ = controller => {}
            _ = lease_watch => {}
            _ = gauges => {}
        }
    })
}

/// Keeps the claim and pool gauges current from the watch caches (no API calls).
async fn export_gauges(cctx: Arc<ClaimContext>, claims: Store<SharedResourceClaim>) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        let metrics = &cctx.ctx.metrics;
        metrics.claims.clear();
        for claim in claims.state() {
            let phase = claim.status.as_ref().and_then(|s| s.phase).unwrap_or_default();
            let labels = ClaimLabels { pool: claim.spec.pool.clone(), phase: format!("{phase:?}") };
            metrics.claims.get_or_create(&labels).inc();
        }
        for pool in &cctx.ctx.config.pools {
            let labels = PoolLabels { pool: pool.name.clone() };
            let held: usize = cctx
                .leases
                .state()
                .iter()
                .filter(|l| l.labels().get(POOL_LABEL) == Some(&pool.name))
                .filter_map(|l| record_of(l))
                .map(|r| r.holders.len())
                .sum();
            metrics.pool_usage.get_or_create(&labels).set(held as i64);
            let redis = cctx.redis_counts.lock().ok().and_then(|m| m.get(&pool.name).map(|(n, _)| *n));
            if let Some(capacity) = allocation::capacity(pool, redis) {
                metrics.pool_capacity.get_or_create(&labels).set(capacity as i64);
            }
        }
    }
}

fn tokio_stream_from(mut rx: mpsc::Receiver<()>) -> impl futures::Stream<Item = ()> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[async_trait::async_trait]
impl Reconciler for ClaimContext {
    type Object = SharedResourceClaim;
    const KIND: &'static str = "SharedResourceClaim";

    fn context(&self) -> &Context {
        &self.ctx
    }

    async fn reconcile(&self, claim: Arc<SharedResourceClaim>) -> Result<Action, Error> {
        let api: Api<SharedResourceClaim> =
            Api::namespaced(self.ctx.client.clone(), &claim.namespace().unwrap_or_default());
        finalizer(&api, FINALIZER, claim, |event| async {
            match event {
                Finalizer::Apply(claim) => apply(&api, &claim, self).await,
                Finalizer::Cleanup(claim) => cleanup(&claim, self).await,
            }
        })
        .await
        .map_err(Error::from)
    }
}

fn request(claim: &SharedResourceClaim) -> Request {
    Request {
        uid: claim.uid().unwrap_or_default(),
        holder: format!("{}/{}", claim.namespace().unwrap_or_default(), claim.name_any()),
        type_: claim.spec.type_,
        value: claim.spec.value.clone(),
        mode: claim.spec.mode,
        capacity: claim.spec.capacity.map(|c| c.max(1) as u32),
        conflict_policy: claim.spec.conflict_policy,
    }
}

/// The outcome of one allocation pass, before it becomes status.
enum Outcome {
    Bound { value: String, lease: String, resolution: Option<String>, bound_at: Timestamp },
    Pending { reason: &'static str, message: String },
    Conflicted { holder: String },
    Expired { value: String },
    Lost { value: String, holder: String },
}

async fn apply(
    api: &Api<SharedResourceClaim>,
    claim: &SharedResourceClaim,
    cctx: &ClaimContext,
) -> Result<Action, Error> {
    let pool_name = claim.spec.pool.as_str();
    let pool = cctx.ctx.config.pool(pool_name);
    let request = request(claim);
    let current = claim.status.clone().unwrap_or_default();
    let generation = claim.metadata.generation;

    let redis = match pool {
        Some(p) if p.type_() == ResourceType::RedisDatabase && request.type_ == ResourceType::RedisDatabase => {
            Some(redis_count(cctx, p).await?)
        }
        _ => None,
    };
    if let Err(invalid) = allocation::validate(pool_name, pool, &request, redis) {
        return stall(api, claim, cctx, invalid.reason(), invalid.to_string()).await;
    }
    let Some(pool) = pool else { return Ok(Action::await_change()) };
    // The schema's pattern and CEL rule reject a bad ttl; one stored before they existed is surfaced.
    let ttl = match claim.spec.ttl.as_deref().map(duration::parse).transpose() {
        Ok(ttl) => ttl,
        Err(e) => return stall(api, claim, cctx, "InvalidTtl", format!("spec.ttl: {e}")).await,
    };

    // An expired claim stays released until it is renewed after the expiry.
    if current.phase == Some(ClaimPhase::Expired) {
        let renewed_after = match (&claim.spec.renewed_at, &current.expires_at) {
            (Some(renewed), Some(expired)) => renewed.0 > expired.0,
            _ => false,
        };
        if !renewed_after {
            return Ok(Action::await_change());
        }
    }

    let outcome = match hold_of(api, claim, cctx, pool).await? {
        Some((lease, record)) => {
            let bound_at = current.bound_at.as_ref().map(|t| t.0).unwrap_or_else(Timestamp::now);
            if is_expired(claim, bound_at, ttl) {
                release(cctx, pool, claim, &lease).await?;
                Outcome::Expired { value: record.value }
            } else {
                Outcome::Bound { value: record.value, lease, resolution: current.resolution.clone(), bound_at }
            }
        }
        None if current.phase == Some(ClaimPhase::Bound) => {
            // Our record vanished (deleted by hand?): take the same value back if it is free.
            let value = raw_value(pool, &current);
            match acquire(cctx, pool, &request, &value).await? {
                Acquired::Yes(lease) => Outcome::Bound {
                    value,
                    lease,
                    resolution: current.resolution.clone(),
                    bound_at: current.bound_at.as_ref().map(|t| t.0).unwrap_or_else(Timestamp::now),
                },
                Acquired::No { holder } => Outcome::Lost { value, holder },
            }
        }
        None => allocate(cctx, pool, claim, &request, redis).await?,
    };

    let mut status = current.clone();
    status.observed_generation = generation;
    let (action, event) = match outcome {
        Outcome::Bound { value, lease, resolution, bound_at } => {
            let display = allocation::display_value(pool, &value);
            let newly = current.phase != Some(ClaimPhase::Bound) || current.value.as_deref() != Some(&display);
            status.phase = Some(ClaimPhase::Bound);
            status.value = Some(display.clone());
            status.lease = Some(lease);
            status.holder = None;
            status.resolution = resolution;
            status.bound_at = Some(Time(bound_at));
            status.expires_at = ttl.map(|ttl| Time(expiry(claim, bound_at, ttl)));
            set_ready(&mut status, generation, Status::True, "Bound", format!("holds {display}"));
            let next = match &status.expires_at {
                Some(at) => {
                    let left = at.0.duration_since(Timestamp::now()).as_secs_f64().max(1.0);
                    cctx.ctx.requeue_interval().min(Duration::from_secs_f64(left))
                }
                None => cctx.ctx.requeue_interval(),
            };
            (Action::requeue(next), newly.then(|| (EventType::Normal, "Bound", format!("holds {display}"))))
        }
        Outcome::Pending { reason, message } => {
            let changed = status.phase != Some(ClaimPhase::Pending);
            status.phase = Some(ClaimPhase::Pending);
            status.value = None;
            status.lease = None;
            set_ready(&mut status, generation, Status::False, reason, message.clone());
            (Action::requeue(PENDING_RETRY), changed.then_some((EventType::Normal, reason, message)))
        }
        Outcome::Conflicted { holder } => {
            let changed = status.phase != Some(ClaimPhase::Conflicted) || status.holder.as_deref() != Some(&holder);
            let message = format!(
                "{} is held by {holder}; conflictPolicy Fail waits for it to be released",
                claim.spec.value.as_deref().unwrap_or_default()
            );
            status.phase = Some(ClaimPhase::Conflicted);
            status.value = None;
            status.lease = None;
            status.holder = Some(holder);
            set_ready(&mut status, generation, Status::False, "Conflicted", message.clone());
            (Action::requeue(PENDING_RETRY), changed.then_some((EventType::Warning, "Conflicted", message)))
        }
        Outcome::Expired { value } => {
            let message = format!("ttl passed; released {}", allocation::display_value(pool, &value));
            status.phase = Some(ClaimPhase::Expired);
            status.value = None;
            status.lease = None;
            status.expires_at = Some(Time(Timestamp::now()));
            set_ready(&mut status, generation, Status::False, "Expired", message.clone());
            (Action::await_change(), Some((EventType::Normal, "Expired", message)))
        }
        Outcome::Lost { value, holder } => {
            let message = format!("the record of this hold vanished and {value} is now held by {holder}");
            let changed = status.phase != Some(ClaimPhase::Lost);
            status.phase = Some(ClaimPhase::Lost);
            status.holder = Some(holder);
            status.lease = None;
            set_ready(&mut status, generation, Status::False, "Lost", message.clone());
            (Action::await_change(), changed.then_some((EventType::Warning, "Lost", message)))
        }
    };
    apply_status(api, claim, claim.status.as_ref(), &status, MANAGER).await?;
    if let Some((type_, reason, note)) = event {
        publish(&cctx.ctx, claim, type_, reason, "Allocate", note).await;
    }
    Ok(action)
}

/// Finds a free value and takes it.
async fn allocate(
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

enum Acquired {
    Yes(String),
    No { holder: String },
}

/// Takes `value` for `request` through the apiserver: create the Lease, or
/// compare-and-swap its holder list. The first attempt trusts the watch cache (no
/// read); a write that loses a race is retried from a fresh read, so the cache can
/// cost a retry but never a double hold.
async fn acquire(cctx: &ClaimContext, pool: &Pool, request: &Request, value: &str) -> Result<Acquired, Error> {
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
async fn acquire_any(
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
async fn release(cctx: &ClaimContext, pool: &Pool, claim: &SharedResourceClaim, name: &str) -> Result<(), Error> {
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

/// Cleans up the data of a value nobody holds any more.
async fn reclaim(cctx: &ClaimContext, pool: &Pool, value: &str) -> Result<(), Error> {
    if pool.type_() != ResourceType::RedisDatabase {
        return Ok(());
    }
    let Ok(db) = value.parse::<u32>() else { return Ok(()) };
    if !allocation::flushable(pool, db) {
        warn!(pool = %pool.name, db, "refusing to flush a reserved database");
        return Ok(());
    }
    redis_server(cctx, pool).await?.flush_database(db).await?;
    info!(pool = %pool.name, db, "flushed released Redis database");
    Ok(())
}

async fn cleanup(claim: &SharedResourceClaim, cctx: &ClaimContext) -> Result<Action, Error> {
    if let Some(env) = live_owner(claim, cctx).await? {
        let message = format!("in use by PreviewEnvironment {env}; released when it is gone");
        let mut status = claim.status.clone().unwrap_or_default();
        conditions::set(
            &mut status.conditions,
            RECONCILING,
            Status::True,
            "InUse",
            message.clone(),
            claim.metadata.generation,
        );
        let api: Api<SharedResourceClaim> =
            Api::namespaced(cctx.ctx.client.clone(), &claim.namespace().unwrap_or_default());
        apply_status(&api, claim, claim.status.as_ref(), &status, MANAGER).await?;
        return Err(Error::Waiting(message));
    }
    let request = request(claim);
    if let Some(pool) = cctx.ctx.config.pool(&claim.spec.pool) {
        let mut leases: Vec<String> = holds(cctx, &pool.name, &request.uid).into_iter().map(|(l, _)| l).collect();
        // The cache may lag behind a bind that just happened: release by name too.
        if let Some(named) = claim.status.as_ref().and_then(|s| s.lease.clone())
            && !leases.contains(&named)
        {
            leases.push(named);
        }
        for lease in &leases {
            release(cctx, pool, claim, lease).await?;
        }
    }
    Ok(Action::await_change())
}

/// The PreviewEnvironment that owns this claim, if it still exists and is not being deleted.
async fn live_owner(claim: &SharedResourceClaim, cctx: &ClaimContext) -> Result<Option<String>, Error> {
    let Some(owner) = claim.owner_references().iter().find(|o| o.kind == "PreviewEnvironment") else {
        return Ok(None);
    };
    let api: Api<PreviewEnvironment> = Api::namespaced(cctx.ctx.client.clone(), &claim.namespace().unwrap_or_default());
    let env = api.get_opt(&owner.name).await?;
    Ok(env
        .filter(|e| e.uid().as_deref() == Some(owner.uid.as_str()) && e.metadata.deletion_timestamp.is_none())
        .map(|e| e.name_any()))
}

async fn stall(
    api: &Api<SharedResourceClaim>,
    claim: &SharedResourceClaim,
    cctx: &ClaimContext,
    reason: &'static str,
    message: String,
) -> Result<Action, Error> {
    let status = claim.status.clone().unwrap_or_default();
    kit::stall(&cctx.ctx, api, claim, claim.status.as_ref(), status, MANAGER, reason, message).await?;
    Ok(Action::await_change())
}

/// The claim's kstatus: Bound is Ready; waiting for a value (pool exhausted, a
/// conflict that may clear) is Reconciling; Expired and Lost are final until changed.
fn set_ready(
    status: &mut SharedResourceClaimStatus,
    generation: Option<i64>,
    ready: Status,
    reason: &str,
    message: String,
) {
    let kstatus = match (ready, reason) {
        (Status::True, _) => Kstatus::Ready,
        (_, "PoolExhausted" | "Conflicted") => Kstatus::Progressing,
        _ => Kstatus::Failed,
    };
    status.kstatus(generation, kstatus, reason, &message);
}

fn is_expired(claim: &SharedResourceClaim, bound_at: Timestamp, ttl: Option<Duration>) -> bool {
    let Some(ttl) = ttl else { return false };
    expiry(claim, bound_at, ttl) <= Timestamp::now()
}

fn expiry(claim: &SharedResourceClaim, bound_at: Timestamp, ttl: Duration) -> Timestamp {
    let renewed = claim.spec.renewed_at.as_ref().map(|t| t.0.as_second());
    let at = allocation::expires_at(bound_at.as_second(), renewed, ttl, Timestamp::now().as_second());
    Timestamp::from_second(at).unwrap_or_else(|_| Timestamp::now())
}

/// The raw value behind a status value (a Domain's label, not the full domain).
fn raw_value(pool: &Pool, status: &SharedResourceClaimStatus) -> String {
    let value = status.value.clone().unwrap_or_default();
    match &pool.kind {
        PoolKind::Domain { base_domain } => {
            value.strip_suffix(&format!(".{base_domain}")).unwrap_or(&value).to_string()
        }
        _ => value,
    }
}

/// The cached Lease of `pool` that lists `uid` as a holder.
/// Every value `uid` holds in `pool`, per the Lease cache.
fn holds(cctx: &ClaimContext, pool: &str, uid: &str) -> Vec<(String, ValueRecord)> {
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
async fn hold_of(
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

fn record_of(lease: &Lease) -> Option<ValueRecord> {
    serde_json::from_str(lease.annotations().get(RECORD_ANNOTATION)?).ok()
}

fn write_record(lease: &mut Lease, record: &ValueRecord) {
    lease.annotations_mut().insert(RECORD_ANNOTATION.into(), serde_json::to_string(record).unwrap_or_default());
    if let Some(spec) = lease.spec.as_mut() {
        spec.holder_identity = record.holders.values().next().cloned();
    }
}

fn lease(namespace: &str, name: &str, pool: &str, record: &ValueRecord) -> Lease {
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

/// The Redis server of a pool, from the Secret its config names.
async fn redis_server(cctx: &ClaimContext, pool: &Pool) -> Result<RedisServer, Error> {
    let PoolKind::RedisDatabase { redis_url_secret_ref: secret_ref, .. } = &pool.kind else {
        return Err(Error::Invalid {
            reason: "PoolMisconfigured",
            message: format!("pool {} is not a RedisDatabase pool", pool.name),
        });
    };
    let secrets: Api<Secret> = Api::namespaced(cctx.ctx.client.clone(), &secret_ref.namespace);
    let missing = || {
        Error::Waiting(format!(
            "Secret {}/{} key {} (the Redis URL of pool {}) is missing",
            secret_ref.namespace, secret_ref.name, secret_ref.key, pool.name
        ))
    };
    let secret = secrets.get_opt(&secret_ref.name).await?.ok_or_else(missing)?;
    let url = secret.data.as_ref().and_then(|d| d.get(&secret_ref.key)).ok_or_else(missing)?;
    let url = String::from_utf8(url.0.clone()).map_err(|_| missing())?;
    Ok(RedisServer::new(url.trim()))
}

async fn redis_count(cctx: &ClaimContext, pool: &Pool) -> Result<u32, Error> {
    if let Some((count, at)) = cctx.redis_counts.lock().ok().and_then(|m| m.get(&pool.name).copied())
        && at.elapsed() < REDIS_COUNT_TTL
    {
        return Ok(count);
    }
    let count = redis_server(cctx, pool).await?.database_count().await?;
    if let Ok(mut m) = cctx.redis_counts.lock() {
        m.insert(pool.name.clone(), (count, Instant::now()));
    }
    Ok(count)
}
