//! The scaffolding every controller shares: a [`Reconciler`] says what one
//! reconcile of its kind does; [`reconcile`] and [`error_policy`] wrap it the same
//! way for every kind (timing, metrics, the Warning Event of a failure, retry), and
//! [`drive`] runs the controller's stream to its end.

use std::sync::Arc;
use std::time::Instant;

use kube::runtime::controller::{self, Action};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use super::Error;
use super::events::publish;
use crate::controller::Context;

/// One kind's reconcile. Implemented by the kind's context type, which the
/// controller machinery hands to every reconcile.
#[async_trait::async_trait]
pub trait Reconciler: Send + Sync + 'static {
    type Object: Resource<DynamicType = ()> + Clone + std::fmt::Debug + Send + Sync + 'static;
    /// The kind's name in metrics and logs.
    const KIND: &'static str;

    fn context(&self) -> &Context;

    /// One reconcile of `obj`.
    async fn reconcile(&self, obj: Arc<Self::Object>) -> Result<Action, Error>;

    /// Called when a reconcile failed, before the retry is scheduled (forget
    /// per-object caches that may be stale, for example).
    fn failed(&self, _obj: &Self::Object, _error: &Error) {}
}

/// Runs one reconcile and records its outcome and real duration, failures included.
pub async fn reconcile<R: Reconciler>(obj: Arc<R::Object>, r: Arc<R>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = r.reconcile(obj.clone()).await;
    let ctx = r.context();
    match &result {
        Ok(_) => {
            ctx.metrics.observe_reconcile(R::KIND, "ok", started.elapsed());
            ctx.failures.clear(R::KIND, obj.as_ref());
        }
        Err(e) => ctx.metrics.observe_reconcile(R::KIND, e.reason(), started.elapsed()),
    }
    result
}

/// After a failed reconcile: log it, publish it as a Warning Event named after the
/// error (once per reason until a reconcile succeeds), and retry with backoff.
/// Waiting is not a failure: it is logged at debug and never published.
pub fn error_policy<R: Reconciler>(obj: Arc<R::Object>, error: &Error, r: Arc<R>) -> Action {
    let (name, namespace) = (obj.name_any(), obj.namespace());
    r.failed(&obj, error);
    if let Error::Waiting(message) = error {
        tracing::debug!(kind = R::KIND, %name, ?namespace, %message, "waiting");
        return Action::requeue(error.retry_after());
    }
    tracing::warn!(kind = R::KIND, %name, ?namespace, error = %error, "reconcile failed");
    let reason = error.reason();
    if r.context().failures.is_new(R::KIND, obj.as_ref(), reason) {
        let note = error.to_string();
        tokio::spawn(async move {
            publish(r.context(), obj.as_ref(), EventType::Warning, reason, "Reconcile", note).await;
        });
    }
    Action::requeue(error.retry_after())
}

/// Drives a controller's result stream to its end, logging what the controller
/// machinery (watches, queue) reports; reconcile errors were handled by
/// [`error_policy`], and a trigger for an object that was just deleted is expected.
pub async fn drive<T, E1, E2>(
    kind: &'static str,
    results: impl futures::Stream<Item = Result<T, controller::Error<E1, E2>>>,
) where
    E1: std::error::Error + 'static,
    E2: std::error::Error + 'static,
{
    use controller::Error as C;
    use futures::StreamExt;
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

/// The controller settings every kind uses (concurrency from the operator config).
pub fn settings(ctx: &Context) -> controller::Config {
    controller::Config::default().concurrency(ctx.config.controller.concurrency)
}
