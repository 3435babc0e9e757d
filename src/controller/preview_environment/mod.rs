//! PreviewEnvironment: one pull request's Forge site, database, Redis database,
//! `.env`, queue workers, certificate and deployment.
//!
//! load (`inputs`: names, Secrets, the Forge client) -> provision (`provision`:
//! one idempotent step per remote object, each observing before it acts) ->
//! status. Deletion runs `teardown` behind a finalizer. Every remote object has a
//! deterministic name and is looked up before it is created, so a crash at any
//! point leaves neither a duplicate nor an orphan.

mod gate;
mod inputs;
mod provision;
mod teardown;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, Shared};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::DeleteParams;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use tracing::warn;

use super::{Context, Error, drive, publish, retry_after};
use crate::api::RepoDependencyGraph;
use crate::api::preview_environment::PreviewEnvironment;
use crate::api::shared_resource_claim::SharedResourceClaim;
use crate::forge::HttpForgeClient;
use crate::logic::duration;

/// Finalizer that tears the remote objects down.
pub const FINALIZER: &str = "switchyard.dev/preview-teardown";
const MANAGER: &str = "switchyard-previews";
const KIND: &str = "PreviewEnvironment";

/// A Forge client's identity: base URL, organization, SHA-256 of the token.
type ForgeClientKey = (String, String, [u8; 32]);

/// What the PreviewEnvironment reconciler shares besides the common [`Context`].
pub struct PreviewContext {
    pub ctx: Arc<Context>,
    /// One Forge client per (URL, organization, token); the rate limiter behind
    /// them is per token and process-wide either way.
    forge_clients: Mutex<HashMap<ForgeClientKey, Arc<HttpForgeClient>>>,
    /// Cache of the environments, to map a changed Secret to those that use it.
    store: Store<PreviewEnvironment>,
}

/// Runs the controller until `shutdown` resolves.
pub fn run(ctx: Arc<Context>, shutdown: Shared<BoxFuture<'static, ()>>) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let envs = ctx.watched::<PreviewEnvironment>();
        let (claims, secrets, graphs) =
            (ctx.watched::<SharedResourceClaim>(), ctx.watched::<Secret>(), ctx.watched::<RepoDependencyGraph>());
        let concurrency = ctx.config.controller.concurrency;
        let envs_again = envs.clone();
        let controller = Controller::new(envs, watcher::Config::default().any_semantic());
        let store = controller.store();
        let pctx = Arc::new(PreviewContext { ctx, forge_clients: Mutex::default(), store: store.clone() });
        let (stack_store, graph_store) = (store.clone(), store.clone());
        drive(
            KIND,
            controller
                .owns(claims, watcher::Config::default().any_semantic())
                // Another environment of the stack changed (Ready, deleted): gated ones may proceed.
                .watches(envs_again, watcher::Config::default().any_semantic(), move |env| {
                    gate::wake_stack(&env, &stack_store)
                })
                // The graph changed: environments gated by it look again.
                .watches(graphs, watcher::Config::default().any_semantic(), move |graph| {
                    graph_store
                        .state()
                        .into_iter()
                        .filter(|e| {
                            e.namespace() == graph.namespace()
                                && e.spec.graph_ref.as_ref().is_some_and(|g| g.name == graph.name_any())
                        })
                        .map(|e| ObjectRef::from_obj(&*e))
                        .collect::<Vec<_>>()
                })
                // A Secret an environment reads changed: a Stalled one may now proceed.
                .watches(secrets, watcher::Config::default().any_semantic(), move |secret| {
                    let ns = secret.namespace();
                    let name = secret.name_any();
                    store
                        .state()
                        .into_iter()
                        .filter(|env| env.namespace() == ns && inputs::secret_names(env).contains(&name))
                        .map(|env| ObjectRef::from_obj(&*env))
                        .collect::<Vec<_>>()
                })
                .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
                .graceful_shutdown_on(shutdown)
                .run(reconcile, error_policy, pctx),
        )
        .await;
    })
}

fn error_policy(env: Arc<PreviewEnvironment>, error: &Error, pctx: Arc<PreviewContext>) -> Action {
    match error {
        Error::Waiting(message) => {
            tracing::debug!(env = %env.name_any(), namespace = ?env.namespace(), %message, "waiting")
        }
        _ => warn!(env = %env.name_any(), namespace = ?env.namespace(), error = %error, "reconcile failed"),
    }
    pctx.ctx.metrics.observe_reconcile(KIND, error.metric_label(), Duration::ZERO);
    Action::requeue(retry_after(error))
}

async fn reconcile(env: Arc<PreviewEnvironment>, pctx: Arc<PreviewContext>) -> Result<Action, Error> {
    let started = Instant::now();
    let ns = env.namespace().unwrap_or_default();
    let api: Api<PreviewEnvironment> = Api::namespaced(pctx.ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, env, |event| async {
        match event {
            Finalizer::Apply(env) => apply(&api, &env, &pctx).await,
            Finalizer::Cleanup(env) => teardown::run(&api, &env, &pctx).await,
        }
    })
    .await
    .map_err(Error::from);
    if result.is_ok() {
        pctx.ctx.metrics.observe_reconcile(KIND, "ok", started.elapsed());
    }
    result
}

/// When the environment expires, from its creation time and `spec.ttl`.
fn expires_at(env: &PreviewEnvironment) -> Option<Timestamp> {
    let ttl = duration::parse(env.spec.ttl.as_deref()?).ok()?;
    let created = env.metadata.creation_timestamp.as_ref()?.0;
    created.checked_add(jiff::SignedDuration::try_from(ttl).ok()?).ok()
}

async fn apply(
    api: &Api<PreviewEnvironment>,
    env: &PreviewEnvironment,
    pctx: &PreviewContext,
) -> Result<Action, Error> {
    let expiry = expires_at(env);
    if let Some(at) = expiry
        && at <= Timestamp::now()
    {
        publish(&pctx.ctx, env, EventType::Normal, "Expired", "Expire", format!("ttl passed at {at}; deleting")).await;
        api.delete(&env.name_any(), &DeleteParams::default()).await?;
        return Ok(Action::await_change());
    }
    let inputs = match inputs::load(env, pctx).await {
        Ok(inputs) => inputs,
        Err(Error::Invalid { reason, message }) => return stall(api, env, pctx, reason, message).await,
        Err(e) => return Err(e),
    };
    let mut run = provision::Run::new(api, env, pctx, inputs);
    run.status.expires_at = expiry.map(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time);
    match run.converge().await {
        Ok(mut next) => {
            // Come back at expiry at the latest.
            if let Some(at) = expiry {
                next = next.min(Duration::from_secs_f64(at.duration_since(Timestamp::now()).as_secs_f64().max(1.0)));
            }
            run.finish().await?;
            Ok(Action::requeue(next))
        }
        Err(Error::Invalid { reason, message }) => {
            // Keep the ids recorded so far, then stop until the spec or a Secret changes.
            run.save().await?;
            stall(api, env, pctx, reason, message).await
        }
        Err(e) => {
            run.fail(&e).await?;
            Err(e)
        }
    }
}

/// Sets `Stalled=True` with `reason`, publishes a Warning Event on the first
/// visit, and waits for a change of the spec or a referenced Secret.
async fn stall(
    api: &Api<PreviewEnvironment>,
    env: &PreviewEnvironment,
    pctx: &PreviewContext,
    reason: &'static str,
    message: String,
) -> Result<Action, Error> {
    // Re-read: a step may have just written status.
    let current = api.get_status(&env.name_any()).await?.status.map(provision::without_foreign_fields);
    super::stall(&pctx.ctx, api, env, current, MANAGER, reason, message).await?;
    Ok(Action::await_change())
}
