//! What every simulator shares: an axum server that stops when its handle is dropped,
//! the request log behind `GET /_sim/requests`, and the optional state file.

use axum::Router;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One line of the request log (`GET /_sim/requests`).
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub method: String,
    /// Route template (`/api/orgs/{org}/servers/{server}/sites`), or the path when unmatched.
    pub route: String,
    pub path: String,
    pub status: u16,
    /// Token fingerprint, never the token.
    pub token: Option<String>,
    pub fault: Option<String>,
    pub duration_ms: u64,
}

/// A request as the middleware saw it, before it gets its place in the log.
pub struct Seen {
    pub method: String,
    pub route: String,
    pub path: String,
    pub status: u16,
    pub token: Option<String>,
    pub fault: Option<String>,
    pub started: Instant,
}

/// Every API request a simulator answered, in order.
#[derive(Default)]
pub struct RequestLog(Mutex<Vec<LoggedRequest>>);

impl RequestLog {
    fn entries(&self) -> MutexGuard<'_, Vec<LoggedRequest>> {
        // A panicking handler must not take the log down with a poisoned lock.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record(&self, seen: Seen) {
        let mut log = self.entries();
        let seq = log.len() as u64 + 1;
        log.push(LoggedRequest {
            seq,
            at: Utc::now(),
            method: seen.method,
            route: seen.route,
            path: seen.path,
            status: seen.status,
            token: seen.token,
            fault: seen.fault,
            duration_ms: seen.started.elapsed().as_millis() as u64,
        });
    }

    pub fn snapshot(&self) -> Vec<LoggedRequest> {
        self.entries().clone()
    }

    /// How many requests hit `method route` (a route template).
    pub fn count(&self, method: &str, route: &str) -> usize {
        self.entries().iter().filter(|r| r.method.eq_ignore_ascii_case(method) && r.route == route).count()
    }

    /// How many responses had `status`.
    pub fn status_count(&self, status: u16) -> usize {
        self.entries().iter().filter(|r| r.status == status).count()
    }

    pub fn clear(&self) {
        self.entries().clear();
    }

    /// The body of `GET /_sim/requests`: totals per `METHOD route` and per status, and every request.
    pub fn summary(&self) -> serde_json::Value {
        let log = self.entries();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
        for r in log.iter() {
            *counts.entry(format!("{} {}", r.method, r.route)).or_default() += 1;
            *by_status.entry(r.status.to_string()).or_default() += 1;
        }
        serde_json::json!({"total": log.len(), "counts": counts, "by_status": by_status, "requests": &*log})
    }
}

/// A router served on a bound listener until [`Served::stop`], `shutdown` or drop.
pub struct Served {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Served {
    /// Serves `app` on `listener` in a task; `name` labels the log lines.
    /// Any axum listener: plain TCP, or the instance simulator's TLS listener.
    pub fn spawn<L>(listener: L, addr: SocketAddr, app: Router, name: &'static str) -> Self
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
        tracing::info!(%addr, "{name} simulator listening");
        Self { addr, shutdown: Some(tx), task: Some(task) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve until the process is stopped (the CLI).
    pub async fn wait(&mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Stop serving and wait for the server task (hung requests are aborted).
    pub async fn shutdown(&mut self) {
        self.stop();
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Writes `state` to `path` atomically (temp file + rename). Errors are logged, not fatal:
/// a simulator keeps serving when its state file cannot be written.
pub fn write_state<T: Serialize>(path: &Path, state: &T) {
    let json = match serde_json::to_vec_pretty(state) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize state");
            return;
        }
    };
    let tmp = path.with_extension("tmp");
    if let Err(e) = std::fs::write(&tmp, json).and_then(|_| std::fs::rename(&tmp, path)) {
        tracing::error!(error = %e, path = %path.display(), "cannot write state file");
    }
}

/// The state saved at `path`, `None` when there is no file yet.
pub fn read_state<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| e.to_string())
}
