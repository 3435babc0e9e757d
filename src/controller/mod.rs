//! One module per kind. Each reconcile is load (I/O) -> decide (pure, in `logic/`)
//! -> apply (I/O) -> status (I/O); the modules here stay thin.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

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
    pub fn new(
        client: Client,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        instance: String,
    ) -> Arc<Self> {
        let reporter = Reporter {
            controller: "switchyard".into(),
            instance: Some(instance),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        Arc::new(Self {
            client,
            config,
            metrics,
            recorder,
        })
    }

    /// How long a Ready object waits before the next drift check.
    pub fn requeue_interval(&self) -> Duration {
        self.config.requeue_interval()
    }
}

/// Why a reconcile failed. The variant, not the text, decides retry vs `Stalled`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The spec cannot be acted on until the user changes it.
    #[error("{message}")]
    Invalid {
        reason: &'static str,
        message: String,
    },
}

impl Error {
    /// Whether retrying without a user change can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Kube(_))
    }

    /// A stable, low-cardinality label for metrics and Event reasons.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeError",
            Error::Invalid { reason, .. } => reason,
        }
    }
}

/// The controllers `switchyard run` starts once it leads; each future runs until
/// `shutdown` resolves and then drains in-flight reconciles.
pub fn all(
    _ctx: Arc<Context>,
    _shutdown: futures::future::Shared<BoxFuture<'static, ()>>,
) -> Vec<BoxFuture<'static, ()>> {
    Vec::new()
}
