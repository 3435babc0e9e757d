//! The operator's HTTP server: `/metrics`, `/healthz`, `/readyz`, and GitHub webhooks
//! on `POST /webhooks/github` (the router of `github::webhook`, merged here).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;

use crate::github::Github;
use crate::github::webhook::{self, WebhookState};
use crate::metrics::Metrics;

/// What the HTTP handlers read.
pub struct ServerState {
    pub metrics: Arc<Metrics>,
    /// Set once the CRDs are Established and the client works; the webhook reads it too.
    pub ready: Arc<AtomicBool>,
    /// What `POST /webhooks/github` reads: the GitHub integration, when configured.
    pub webhook: Arc<WebhookState>,
}

impl ServerState {
    pub fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Self::with_github(metrics, None)
    }

    pub fn with_github(metrics: Arc<Metrics>, github: Option<Arc<Github>>) -> Arc<Self> {
        let ready = Arc::new(AtomicBool::new(false));
        let webhook = Arc::new(WebhookState { github, ready: ready.clone() });
        Arc::new(Self { metrics, ready, webhook })
    }
}

/// The router, separate from binding so tests can drive it directly.
pub fn router(state: Arc<ServerState>) -> Router {
    let webhooks = webhook::router(state.webhook.clone());
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
        .merge(webhooks)
}

async fn metrics(State(state): State<Arc<ServerState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode())
}

async fn readyz(State(state): State<Arc<ServerState>>) -> impl IntoResponse {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "waiting for CRDs to be Established")
    }
}

/// Binds `addr` and serves until `shutdown` turns true.
pub async fn serve(
    addr: SocketAddr,
    state: Arc<ServerState>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await
}
