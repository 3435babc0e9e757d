//! One module per kind, on one [`kit`]: each reconcile is load (I/O) -> decide
//! (pure, in `logic/`) -> act (I/O) -> status (I/O); the modules here stay thin.
//! This module is the one place that wires them: the shared [`Context`] (with the
//! services built once) and [`all`], the controllers `switchyard run` starts.

pub mod branch;
pub mod bridge_grant;
pub mod preview_class;
pub mod preview_environment;
pub mod pull_request_comment;
pub mod repo_dependency_graph;
pub mod services;
pub mod shared_resource_claim;

pub mod kit;
pub use kit::{Error, apply_status, publish, stall};

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, Client, Resource};

use crate::config::Config;
use crate::metrics::Metrics;

/// Everything a reconcile needs, shared by all controllers.
pub struct Context {
    pub client: Client,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    /// Clients of the outside systems, built once per process.
    pub services: services::Services,
    /// Objects whose last reconcile failed (their Warning Event is out).
    pub failures: kit::Failures,
}

impl Context {
    pub fn new(
        client: Client,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        instance: String,
        github: Option<Arc<crate::github::Github>>,
    ) -> Arc<Self> {
        let reporter = Reporter { controller: "switchyard".into(), instance: Some(instance) };
        let recorder = Recorder::new(client.clone(), reporter);
        let services = services::Services::new(github);
        Arc::new(Self { client, config, metrics, recorder, services, failures: kit::Failures::default() })
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

    /// An Api over `obj`'s own namespace.
    pub fn api_of<K>(&self, obj: &K) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &kube::ResourceExt::namespace(obj).unwrap_or_default())
    }

    /// How long a Ready object waits before the next drift check.
    pub fn requeue_interval(&self) -> Duration {
        self.config.controller.requeue_interval
    }
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
        controllers.push(preview_class::run(ctx.clone(), shutdown.clone()));
    }
    if runs(K::RepoDependencyGraph) {
        controllers.push(repo_dependency_graph::run(ctx.clone(), shutdown.clone()));
    }
    if let Some(github) = ctx.services.github.clone().filter(|_| runs(K::Github)) {
        controllers.push(crate::github::poll::run(github.clone(), shutdown.clone()));
        controllers.push(pull_request_comment::run(ctx, github, shutdown));
    }
    controllers
}
