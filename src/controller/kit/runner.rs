//! The scaffolding every controller shares: a [`Reconciler`] says what one
//! reconcile of its kind does; [`run`] runs it the same way for every kind, with
//! [`reconcile`] and [`error_policy`] around it (timing, metrics, the Warning Event
//! of a failure, retry).

use std::sync::Arc;
use std::time::Instant;

use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Error;
use super::events::publish;
use crate::controller::Context;

/// One kind's reconcile, implemented by the kind's own state (its caches and
/// clients); the shared [`Context`] travels beside it in a [`Kit`].
#[async_trait::async_trait]
pub trait Reconciler: Send + Sync + 'static {
    type Object: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static;
    /// The kind's name in metrics and logs.
    const KIND: &'static str;

    /// One reconcile of `obj`.
    async fn reconcile(&self, obj: Arc<Self::Object>) -> Result<Action, Error>;

    /// Called when a reconcile failed, before the retry is scheduled (forget
    /// per-object caches that may be stale, for example).
    fn failed(&self, _obj: &Self::Object, _error: &Error) {}
}

/// What the controller machinery hands to every reconcile of a kind: the shared
/// context and the kind's [`Reconciler`].
pub struct Kit<R> {
    pub ctx: Arc<Context>,
    pub kind: Arc<R>,
}

impl<R> Kit<R> {
    pub fn new(ctx: Arc<Context>, kind: Arc<R>) -> Arc<Self> {
        Arc::new(Self { ctx, kind })
    }
}

/// Runs one reconcile and records its outcome and real duration, failures included.
pub async fn reconcile<R: Reconciler>(obj: Arc<R::Object>, kit: Arc<Kit<R>>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = kit.kind.reconcile(obj.clone()).await;
    let ctx = &kit.ctx;
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
pub fn error_policy<R: Reconciler>(obj: Arc<R::Object>, error: &Error, kit: Arc<Kit<R>>) -> Action {
    let (name, namespace) = (obj.name_any(), obj.namespace());
    kit.kind.failed(&obj, error);
    if let Error::Waiting(message) = error {
        tracing::debug!(kind = R::KIND, %name, ?namespace, %message, "waiting");
        return Action::requeue(error.retry_after());
    }
    tracing::warn!(kind = R::KIND, %name, ?namespace, error = %error, "reconcile failed");
    let reason = error.reason();
    if kit.ctx.failures.is_new(R::KIND, obj.as_ref(), reason) {
        let note = error.to_string();
        tokio::spawn(async move {
            publish(&kit.ctx, obj.as_ref(), EventType::Warning, reason, "Reconcile", note).await;
        });
    }
    Action::requeue(error.retry_after())
}

/// Drives a controller's result stream to its end, logging what the controller
/// machinery (watches, queue) reports; reconcile errors were handled by
/// [`error_policy`], and a trigger for an object that was just deleted is expected.
async fn drive<T, E1, E2>(
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
fn settings(ctx: &Context) -> controller::Config {
    controller::Config::default().concurrency(ctx.config.controller.concurrency)
}

/// Runs `controller` (its watches already set up) with `kind`'s reconcile until
/// `shutdown` resolves, then drains in-flight reconciles: the one way every kind runs.
pub async fn run<R: Reconciler>(
    controller: Controller<R::Object>,
    ctx: Arc<Context>,
    kind: Arc<R>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let results = controller.with_config(settings(&ctx)).graceful_shutdown_on(shutdown).run(
        reconcile,
        error_policy,
        Kit::new(ctx, kind),
    );
    drive(R::KIND, results).await
}

/// A reconcile behind `finalizer_name`: `apply` while the object lives, `cleanup`
/// once it is being deleted (the finalizer goes when `cleanup` succeeds).
pub async fn finalized<K, A, C, FA, FC>(
    api: &Api<K>,
    finalizer_name: &str,
    obj: Arc<K>,
    apply: A,
    cleanup: C,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + std::fmt::Debug + Send + Sync + 'static,
    A: FnOnce(Arc<K>) -> FA,
    C: FnOnce(Arc<K>) -> FC,
    FA: Future<Output = Result<Action, Error>>,
    FC: Future<Output = Result<Action, Error>>,
{
    finalizer(api, finalizer_name, obj, |event| async move {
        match event {
            Finalizer::Apply(obj) => apply(obj).await,
            Finalizer::Cleanup(obj) => cleanup(obj).await,
        }
    })
    .await
    .map_err(Error::from)
}
