//! One module per kind. Each reconcile is load (I/O) -> decide (pure, in `logic/`)
//! -> apply (I/O) -> status (I/O); the modules here stay thin.

pub mod branch;
pub mod bridge_grant;
pub mod preview_environment;
pub mod pull_request_comment;
pub mod repo_dependency_graph;
pub mod shared_resource_claim;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;

use crate::api::conditions::{self, Conditioned};
use crate::config::Config;
use crate::metrics::Metrics;

/// Everything a reconcile needs, shared by all controllers.
pub struct Context {
    pub client: Client,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
}

impl Context {
    pub fn new(client: Client, config: Arc<Config>, metrics: Arc<Metrics>, instance: String) -> Arc<Self> {
        let reporter = Reporter { controller: "switchyard".into(), instance: Some(instance) };
        let recorder = Recorder::new(client.clone(), reporter);
        Arc::new(Self { client, config, metrics, recorder })
    }

    /// An Api over the namespace the controllers watch (`controller.namespace`), or all.
    pub fn watched<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match &self.config.controller.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    /// How long a Ready object waits before the next drift check.
    pub fn requeue_interval(&self) -> Duration {
        self.config.controller.requeue_interval
    }
}

/// Why a reconcile failed. The variant, not the text, decides retry vs `Stalled`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The spec cannot be acted on until the user changes it.
    #[error("{message}")]
    Invalid { reason: &'static str, message: String },
    /// An external system failed; retried with backoff.
    #[error(transparent)]
    Backend(#[from] crate::backends::BackendError),
    /// Forge failed in a way worth retrying (terminal Forge errors become `Invalid`).
    #[error(transparent)]
    Forge(crate::forge::ForgeError),
    /// Not an error: waiting on something outside this object (retried quietly).
    #[error("{0}")]
    Waiting(String),
    #[error("finalizer: {0}")]
    Finalizer(Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// Whether retrying without a user change can succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Error::Invalid { .. })
    }

    /// A stable, low-cardinality label for metrics and Event reasons.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeError",
            Error::Invalid { reason, .. } => reason,
            Error::Backend(_) => "BackendError",
            Error::Forge(_) => "ForgeError",
            Error::Waiting(_) => "Waiting",
            Error::Finalizer(_) => "FinalizerError",
        }
    }
}

impl From<kube::runtime::finalizer::Error<Error>> for Error {
    fn from(e: kube::runtime::finalizer::Error<Error>) -> Self {
        use kube::runtime::finalizer::Error as F;
        match e {
            F::ApplyFailed(inner) | F::CleanupFailed(inner) => inner,
            other => Error::Finalizer(Box::new(other)),
        }
    }
}

/// Backoff for a failed reconcile: retryable errors come back soon, with jitter so
/// a burst of failures does not return as a burst.
pub fn retry_after(error: &Error) -> Duration {
    let base: u64 = match error {
        Error::Waiting(_) => 2,
        Error::Invalid { .. } => 300,
        _ => 10,
    };
    Duration::from_millis(base * 1000 + rand::random_range(0..base * 200))
}

/// Drives a controller's result stream to its end, logging what the controller
/// machinery (watches, queue) reports; reconcile errors are logged by each error
/// policy, and a trigger for an object that was just deleted is expected.
pub async fn drive<T, E1, E2>(
    kind: &'static str,
    results: impl futures::Stream<Item = Result<T, kube::runtime::controller::Error<E1, E2>>>,
) where
    E1: std::error::Error + 'static,
    E2: std::error::Error + 'static,
{
    use futures::StreamExt;
    use kube::runtime::controller::Error as C;
    results
        .for_each(|result| {
            match result {
                Ok(_) | Err(C::ReconcilerFailed(..)) => {}
                Err(C::ObjectNotFound(obj)) => tracing::debug!(kind, %obj, "object is gone"),
                Err(other) => tracing::warn!(kind, error = %other, "controller error"),
            }
            futures::future::ready(())
        })
        .await
}

/// Publishes an Event about `obj`. A failure to publish is logged and otherwise
/// ignored: Events are for humans and must not fail a reconcile.
pub async fn publish<K>(ctx: &Context, obj: &K, type_: EventType, reason: &str, action: &str, note: String)
where
    K: Resource<DynamicType = ()>,
{
    let event = Event { type_, reason: reason.into(), note: Some(note), action: action.into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "could not publish an Event");
    }
}

/// Writes `Stalled=True` with `reason` over `current` (the status the apiserver
/// holds) and publishes a Warning Event when the object was not already stalled
/// for that reason.
pub async fn stall<K, S>(
    ctx: &Context,
    api: &Api<K>,
    obj: &K,
    current: Option<S>,
    manager: &str,
    reason: &str,
    message: String,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: Conditioned + Clone + Serialize + PartialEq,
{
    let generation = obj.meta().generation;
    let mut status = current.clone().unwrap_or_default();
    status.set_observed_generation(generation);
    status.on_stall();
    let first = conditions::set_stalled(status.conditions_mut(), reason, &message, generation);
    apply_status(api, obj, current.as_ref(), &status, manager).await?;
    if first {
        publish(ctx, obj, EventType::Warning, reason, "Validate", message).await;
    }
    Ok(())
}

/// Server-side-applies `status` to `obj`'s status subresource as `manager`,
/// unless it equals what the object already shows.
pub async fn apply_status<K, S>(
    api: &Api<K>,
    obj: &K,
    current: Option<&S>,
    status: &S,
    manager: &str,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    if current == Some(status) {
        return Ok(());
    }
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(&obj.name_any(), &PatchParams::apply(manager).force(), &Patch::Apply(&patch)).await?;
    Ok(())
}

/// The controllers `switchyard run` starts once it leads; each future runs until
/// `shutdown` resolves and then drains in-flight reconciles.
pub fn all(
    ctx: Arc<Context>,
    shutdown: futures::future::Shared<BoxFuture<'static, ()>>,
) -> Vec<BoxFuture<'static, ()>> {
    let system_namespace = ctx.config.system_namespace();
    use crate::config::ControllerKind as K;
    let runs = |kind| ctx.config.runs(kind);
    let mut controllers = Vec::new();
    if runs(K::Branch) {
        controllers.push(branch::run(ctx.clone(), shutdown.clone()));
    }
    if runs(K::BridgeGrant) {
        controllers.push(bridge_grant::run(ctx.clone(), shutdown.clone()));
    }
    if runs(K::SharedResourceClaim) {
        controllers.push(shared_resource_claim::run(ctx.clone(), system_namespace, shutdown.clone()));
    }
    if runs(K::PreviewEnvironment) {
        controllers.push(preview_environment::run(ctx.clone(), shutdown.clone()));
    }
    if runs(K::RepoDependencyGraph) {
        controllers.push(repo_dependency_graph::run(ctx.clone(), shutdown.clone()));
    }
    if let Some(config) = ctx.config.github.clone().filter(|_| runs(K::Github)) {
        let github = crate::github::Github::new(ctx.client.clone(), config, ctx.metrics.clone());
        controllers.push(crate::github::poll::run(github.clone(), shutdown.clone()));
        controllers.push(pull_request_comment::run(ctx, github, shutdown));
    }
    controllers
}
