//! PreviewEnvironment: one pull request's Forge site, database, Redis database,
//! `.env`, queue workers, certificate and deployment.
//!
//! load (`inputs`: names, Secrets, the Forge client) -> one pass (`pass`: a step
//! per remote object, each in `pass/<step>.rs`, observing before it acts, its
//! decisions in `logic::preview`) -> status (`logic::preview::status`). Deletion
//! runs `teardown` behind a finalizer. What the steps need from Kubernetes goes
//! through `cluster::Cluster`, so they are unit-tested without an apiserver.
//! Every remote object has a deterministic name and is looked up before it is
//! created, so a crash at any point leaves neither a duplicate nor an orphan.

mod children;
mod cluster;
mod gate;
mod inputs;
mod pass;
mod teardown;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, Shared};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::DeleteParams;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

use super::kit::{self, Reconciler};
use super::{Context, Error, publish};
use crate::api::RepoDependencyGraph;
use crate::api::preview_class::PreviewClass;
use crate::api::preview_environment::PreviewEnvironment;
use crate::api::shared_resource_claim::SharedResourceClaim;
use crate::logic::duration;

pub use pass::owner_tag;

/// Finalizer that tears the remote objects down.
pub const FINALIZER: &str = "switchyard.dev/preview-teardown";
const MANAGER: &str = "switchyard-previews";

/// What the PreviewEnvironment reconciler shares besides the common [`Context`].
pub struct PreviewContext {
    pub ctx: Arc<Context>,
    /// Cache of the environments, to map a changed Secret to those that use it.
    store: Store<PreviewEnvironment>,
}

/// Runs the controller until `shutdown` resolves.
pub fn run(ctx: Arc<Context>, shutdown: Shared<BoxFuture<'static, ()>>) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let envs = ctx.watched::<PreviewEnvironment>();
        let (claims, graphs) = (ctx.watched::<SharedResourceClaim>(), ctx.watched::<RepoDependencyGraph>());
        // Metadata only (`PartialObjectMeta`): no Secret's data is cached.
        let secrets: Api<PartialObjectMeta<Secret>> = match &ctx.config.controller.namespace {
            Some(ns) => Api::namespaced(ctx.client.clone(), ns),
            None => Api::all(ctx.client.clone()),
        };
        let classes: Api<PreviewClass> = Api::all(ctx.client.clone());
        let envs_again = envs.clone();
        let controller = Controller::new(envs, watcher::Config::default().any_semantic());
        let store = controller.store();
        let pctx = Arc::new(PreviewContext { ctx, store: store.clone() });
        let (stack_store, graph_store, class_store) = (store.clone(), store.clone(), store.clone());
        let controller = controller
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
            // A class changed (created, its Secrets fixed, marked default): its environments look again.
            .watches(classes, watcher::Config::default().any_semantic(), move |class| {
                let name = class.name_any();
                class_store
                    .state()
                    .into_iter()
                    .filter(|env| inputs::class_name(env).is_none_or(|n| n == name))
                    .map(|env| ObjectRef::from_obj(&*env))
                    .collect::<Vec<_>>()
            })
            // A Secret changed: environments that read it, and those stalled on a
            // missing Secret (a class's, in an admin namespace), may now proceed. Only
            // Secret metadata is watched: the operator caches no Secret data.
            .watches(secrets, watcher::Config::default().any_semantic(), move |secret| {
                let ns = secret.namespace();
                let name = secret.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|env| {
                        (env.namespace() == ns && inputs::secret_names(env).contains(&name)) || stalled_on_a_secret(env)
                    })
                    .map(|env| ObjectRef::from_obj(&*env))
                    .collect::<Vec<_>>()
            });
        kit::run(controller, pctx.ctx.clone(), pctx, shutdown).await;
    })
}

#[async_trait::async_trait]
impl Reconciler for PreviewContext {
    type Object = PreviewEnvironment;
    const KIND: &'static str = "PreviewEnvironment";

    async fn reconcile(&self, env: Arc<PreviewEnvironment>) -> Result<Action, Error> {
        let api = &self.ctx.api_of(env.as_ref());
        let on_apply = |e: Arc<PreviewEnvironment>| async move { self.apply(api, &e).await };
        kit::finalized(api, FINALIZER, env, on_apply, |e| async move { teardown::run(&e, self).await }).await
    }
}

/// Whether the environment waits for a Secret to appear or gain its key.
fn stalled_on_a_secret(env: &PreviewEnvironment) -> bool {
    let conditions = env.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    crate::api::conditions::get(conditions, "Stalled")
        .is_some_and(|c| c.status == "True" && c.reason.starts_with("Secret"))
}

/// When the environment expires, from its creation time and `spec.ttl`. A ttl
/// that does not parse is the user's to fix (the schema's pattern should have
/// refused it): the environment stalls rather than living forever unnoticed.
fn expires_at(env: &PreviewEnvironment) -> Result<Option<Timestamp>, Error> {
    let Some(ttl) = env.spec.ttl.as_deref() else { return Ok(None) };
    let ttl = duration::parse(ttl).map_err(|e| Error::invalid("InvalidTtl", format!("spec.ttl: {e}")))?;
    let Some(created) = env.metadata.creation_timestamp.as_ref() else { return Ok(None) };
    let ttl =
        jiff::SignedDuration::try_from(ttl).map_err(|e| Error::invalid("InvalidTtl", format!("spec.ttl: {e}")))?;
    Ok(created.0.checked_add(ttl).ok())
}

impl PreviewContext {
    /// Deletes `env` when the ttl of `effective` (the spec, or with the class's
    /// default ttl) has passed; `Some` is what the reconcile returns.
    async fn expire(
        &self,
        api: &Api<PreviewEnvironment>,
        env: &PreviewEnvironment,
        effective: &PreviewEnvironment,
    ) -> Result<Result<Option<Timestamp>, Action>, Error> {
        let expiry = match expires_at(effective) {
            Ok(expiry) => expiry,
            Err(Error::Invalid { reason, message }) => return Ok(Err(self.stall(api, env, reason, message).await?)),
            Err(e) => return Err(e),
        };
        if let Some(at) = expiry
            && at <= Timestamp::now()
        {
            let note = format!("ttl passed at {at}; deleting");
            publish(&self.ctx, env, EventType::Normal, "Expired", "Expire", note).await;
            api.delete(&env.name_any(), &DeleteParams::default()).await?;
            return Ok(Err(Action::await_change()));
        }
        Ok(Ok(expiry))
    }

    async fn apply(&self, api: &Api<PreviewEnvironment>, env: &PreviewEnvironment) -> Result<Action, Error> {
        // The environment's own ttl expires it even when its class no longer resolves.
        if let Err(done) = self.expire(api, env, env).await? {
            return Ok(done);
        }
        let inputs = match inputs::load(env, self).await {
            Ok(inputs) => inputs,
            Err(Error::Invalid { reason, message }) => return self.stall(api, env, reason, message).await,
            Err(e) => return Err(e),
        };
        let expiry = match self.expire(api, env, &inputs.effective).await? {
            Ok(expiry) => expiry,
            Err(done) => return Ok(done),
        };
        let mut pass = pass::Pass::new(&inputs.effective, self, &inputs, self.ctx.requeue_interval());
        pass.status.expires_at = expiry.map(Time);
        if env.status.as_ref().and_then(|s| s.target.as_ref()).is_none() {
            // Where it acts is on record before anything remote exists (teardown reads it).
            pass.save().await?;
        }
        match pass.converge().await {
            Ok(mut next) => {
                // Come back at expiry at the latest.
                if let Some(at) = expiry {
                    let left = at.duration_since(Timestamp::now()).as_secs_f64().max(1.0);
                    next = next.min(Duration::from_secs_f64(left));
                }
                pass.finish().await?;
                Ok(Action::requeue(next))
            }
            Err(Error::Invalid { reason, message }) => {
                // Keep the ids recorded so far, then stop until the spec or a Secret changes.
                pass.save().await?;
                self.stall(api, env, reason, message).await
            }
            Err(e) => {
                pass.fail(&e).await?;
                Err(e)
            }
        }
    }

    /// Sets `Stalled=True` with `reason`, publishes a Warning Event on the first
    /// visit, and waits for a change of the spec or a referenced Secret.
    async fn stall(
        &self,
        api: &Api<PreviewEnvironment>,
        env: &PreviewEnvironment,
        reason: &'static str,
        message: String,
    ) -> Result<Action, Error> {
        // Re-read: a step may have just written status.
        let current = api.get_status(&env.name_any()).await?.status.map(pass::without_foreign_fields);
        let status = current.clone().unwrap_or_default();
        kit::stall(&self.ctx, api, env, current.as_ref(), status, MANAGER, reason, message).await?;
        Ok(Action::await_change())
    }
}
