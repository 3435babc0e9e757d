//! A spawned axum server that stops when dropped: what every simulator's handle holds.

use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server task. Dropping it stops serving (in-flight requests are aborted).
pub(crate) struct Server {
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `app` on `listener` in its own task; `name` labels the error log.
    pub(crate) fn spawn<L>(listener: L, app: Router, name: &'static str) -> Self
    where
        L: axum::serve::Listener,
        L::Addr: std::fmt::Debug,
    {
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "{name} simulator stopped");
            }
        });
        Self { shutdown: Some(tx), task: Some(task) }
    }

    /// Stops serving and waits for the server task to end.
    pub(crate) async fn shutdown(mut self) {
        self.stop();
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Serves until the process is stopped (the CLI).
    pub(crate) async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
