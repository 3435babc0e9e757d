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
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tokio::sync::mpsc;

use super::kit::{self, Reconciler};
use super::{Context, Error, apply_status, publish};
use crate::api::PreviewEnvironment;
use crate::api::conditions::{self, Conditioned, Kstatus, Status};
use crate::api::shared_resource_claim::{ClaimPhase, ResourceType, SharedResourceClaim, SharedResourceClaimStatus};
use crate::logic::allocation::{self, KIND_LABEL, POOL_LABEL, Pool, PoolKind, Request};
use crate::logic::duration;
use crate::metrics::{ClaimLabels, PoolLabels};

mod leases;
mod redis;

use leases::{Acquired, acquire, allocate, hold_of, holds, record_of, release};
use redis::redis_count;

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
        let controller = kit::run(controller.reconcile_all_on(wake), cctx.ctx.clone(), cctx, shutdown.clone());
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

    async fn reconcile(&self, claim: Arc<SharedResourceClaim>) -> Result<Action, Error> {
        let api = &self.ctx.api_of(claim.as_ref());
        let on_apply = |c: Arc<SharedResourceClaim>| async move { apply(api, &c, self).await };
        kit::finalized(api, FINALIZER, claim, on_apply, |c| async move { cleanup(&c, self).await }).await
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
pub(super) enum Outcome {
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
    if let Some(claimants) = &pool.claimants {
        let ns = claim.namespace().unwrap_or_default();
        let labels = match &claimants.selector {
            Some(_) if !claimants.namespaces.contains(&ns) => {
                let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(cctx.ctx.client.clone());
                namespaces.get_metadata(&ns).await?.metadata.labels.unwrap_or_default()
            }
            _ => Default::default(),
        };
        if !claimants.allow(&ns, &labels) {
            let message = format!("spec.pool: pool {pool_name} does not serve claims from namespace {ns}");
            return stall(api, claim, cctx, "NamespaceNotAllowed", message).await;
        }
    }
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

async fn cleanup(claim: &SharedResourceClaim, cctx: &ClaimContext) -> Result<Action, Error> {
    if let Some(env) = live_owner(claim, cctx).await? {
        let message = format!("in use by PreviewEnvironment {env}; released when it is gone");
        let mut status = claim.status.clone().unwrap_or_default();
        conditions::set_reconciling(&mut status.conditions, "InUse", &message, claim.metadata.generation);
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
