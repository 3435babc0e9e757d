//! What a PreviewEnvironment reconcile needs from Kubernetes, as one small port
//! ([`Cluster`]), so the steps and their decisions run against an in-memory
//! stand-in in unit tests. [`PreviewContext`] is the real implementation.

use kube::api::{DeleteParams, PostParams};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::{MANAGER, PreviewContext, children, gate};
use crate::api::preview_environment::{PreviewEnvironment, PreviewEnvironmentStatus};
use crate::api::shared_resource_claim::SharedResourceClaim;
use crate::controller::kit::k8s::{ignore_not_found, is_conflict};
use crate::controller::{Error, apply_status, publish};
use crate::logic::gating::Gate;

/// The Kubernetes side of one environment's reconcile.
#[async_trait::async_trait]
pub trait Cluster: Send + Sync {
    /// Writes `status` to the environment unless it equals `saved`.
    async fn write_status(
        &self,
        env: &PreviewEnvironment,
        saved: Option<&PreviewEnvironmentStatus>,
        status: &PreviewEnvironmentStatus,
    ) -> Result<(), Error>;
    /// The environment's Redis claim on `pool`, created (owned by it) when missing.
    async fn redis_claim(&self, env: &PreviewEnvironment, pool: &str) -> Result<SharedResourceClaim, Error>;
    /// Deletes the Redis claim now (its database is flushed and freed with the environment).
    async fn release_redis(&self, env: &PreviewEnvironment) -> Result<(), Error>;
    /// Whether `env` may deploy; `None` when it names no graph.
    async fn deploy_gate(&self, env: &PreviewEnvironment) -> Result<Option<Gate>, Error>;
    /// Whether `env` may be torn down now.
    async fn delete_gate(&self, env: &PreviewEnvironment) -> Result<Gate, Error>;
    /// Publishes an Event about `env`.
    async fn event(&self, env: &PreviewEnvironment, warning: bool, reason: &str, action: &str, note: String);
}

#[async_trait::async_trait]
impl Cluster for PreviewContext {
    async fn write_status(
        &self,
        env: &PreviewEnvironment,
        saved: Option<&PreviewEnvironmentStatus>,
        status: &PreviewEnvironmentStatus,
    ) -> Result<(), Error> {
        apply_status(&self.ctx.api_of(env), env, saved, status, MANAGER).await
    }

    async fn redis_claim(&self, env: &PreviewEnvironment, pool: &str) -> Result<SharedResourceClaim, Error> {
        let api: Api<SharedResourceClaim> =
            Api::namespaced(self.ctx.client.clone(), &env.namespace().unwrap_or_default());
        let name = children::redis_claim_name(env);
        if let Some(claim) = api.get_opt(&name).await? {
            return Ok(claim);
        }
        match api.create(&PostParams::default(), &children::redis_claim(env, pool)).await {
            Ok(c) => Ok(c),
            Err(e) if is_conflict(&e) => Err(Error::Waiting("claim created concurrently".into())),
            Err(e) => Err(e.into()),
        }
    }

    async fn release_redis(&self, env: &PreviewEnvironment) -> Result<(), Error> {
        let api: Api<SharedResourceClaim> =
            Api::namespaced(self.ctx.client.clone(), &env.namespace().unwrap_or_default());
        ignore_not_found(api.delete(&children::redis_claim_name(env), &DeleteParams::default()).await)?;
        Ok(())
    }

    async fn deploy_gate(&self, env: &PreviewEnvironment) -> Result<Option<Gate>, Error> {
        gate::deploy(env, self).await
    }

    async fn delete_gate(&self, env: &PreviewEnvironment) -> Result<Gate, Error> {
        gate::delete(env, self).await
    }

    async fn event(&self, env: &PreviewEnvironment, warning: bool, reason: &str, action: &str, note: String) {
        let type_ = if warning { EventType::Warning } else { EventType::Normal };
        publish(&self.ctx, env, type_, reason, action, note).await;
    }
}
