//! `switchyard-sim instance`: a remote platform instance (a top or master branch) for
//! tests and demos, over HTTP or HTTPS.
//!
//! API endpoints (all require `Authorization: Bearer <key>` with an accepted key and an
//! `X-Branch-Origin` header):
//! - `GET <health path>` (default `/api/v1/health`): `{"status": "ok", "version", "name"}`;
//! - `POST /api/v1/cross-branch/register-branch`: `{"name", "url", "type", "api_key"}`,
//!   recorded by name;
//! - `POST /api/v1/cross-branch/sync-organization`: any JSON object, recorded.
//!
//! Control endpoints under `/_sim/` (no auth, not logged) show registrations, syncs and
//! the request log, and make the instance fail, slow down or flap.

pub mod behaviour;
mod http;
pub mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::serve::Served;
pub use behaviour::{Behaviour, Mode};
pub use http::router;
pub use tls::{TestPki, TlsMaterial};

/// Path of the registration endpoint.
pub const REGISTER_PATH: &str = "/api/v1/cross-branch/register-branch";
/// Path of the organization sync endpoint.
pub const SYNC_PATH: &str = "/api/v1/cross-branch/sync-organization";
/// The header naming the calling instance.
pub const ORIGIN_HEADER: &str = "x-branch-origin";

/// Simulator settings (the CLI flags map 1:1).
#[derive(Clone)]
pub struct InstanceSimConfig {
    pub listen: SocketAddr,
    /// The instance's name, reported by the health endpoint.
    pub name: String,
    /// The version the health endpoint reports.
    pub version: String,
    /// Path of the health endpoint.
    pub health_path: String,
    /// Accepted bearer keys; empty = any non-empty key.
    pub api_keys: Vec<String>,
    /// Accepted `X-Branch-Origin` values; empty = any non-empty value.
    pub allowed_origins: Vec<String>,
    /// Serve HTTPS with this certificate; plain HTTP when absent.
    pub tls: Option<TlsMaterial>,
}

impl std::fmt::Debug for InstanceSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceSimConfig")
            .field("listen", &self.listen)
            .field("name", &self.name)
            .field("version", &self.version)
            .field("health_path", &self.health_path)
            .field("api_keys", &self.api_keys.iter().map(|k| crate::forge::fingerprint(k)).collect::<Vec<_>>())
            .field("allowed_origins", &self.allowed_origins)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Default for InstanceSimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            name: "instance".into(),
            version: "1.0.0".into(),
            health_path: "/api/v1/health".into(),
            api_keys: vec![],
            allowed_origins: vec![],
            tls: None,
        }
    }
}

/// One line of the request log (`GET /_sim/requests`).
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Fingerprint of the bearer key, never the key.
    pub key: Option<String>,
    pub origin: Option<String>,
    /// Set when the behaviour (fail, flap) answered instead of the endpoint.
    pub injected: Option<String>,
    pub duration_ms: u64,
}

/// A branch registered through `register-branch`, the latest registration per name.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Registration {
    pub name: String,
    pub url: String,
    #[serde(rename = "type")]
    pub type_: String,
    /// Fingerprint of the registered API key, never the key.
    pub api_key: String,
    /// The `X-Branch-Origin` of the registering call.
    pub origin: String,
    /// Fingerprint of the bearer key the call was made with.
    pub registered_with: String,
    pub registered_at: DateTime<Utc>,
    /// How many times this name was registered.
    pub times: u32,
}

/// A received `sync-organization` call.
#[derive(Debug, Clone, Serialize)]
pub struct Sync {
    pub origin: String,
    pub received_at: DateTime<Utc>,
    pub payload: Value,
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum InstanceSimError {
    #[error("cannot bind {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("invalid health path {0:?}: it must start with / and not be another endpoint's path")]
    HealthPath(String),
}

/// The simulator's state, shared by every handler.
pub struct InstanceState {
    pub config: InstanceSimConfig,
    behaviour: Mutex<Behaviour>,
    log: Mutex<Vec<LoggedRequest>>,
    registrations: Mutex<Vec<Registration>>,
    syncs: Mutex<Vec<Sync>>,
}

/// A handle on the shared state.
pub type Instance = Arc<InstanceState>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking handler must not take the whole simulator down with a poisoned lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl InstanceState {
    pub fn new(config: InstanceSimConfig) -> Instance {
        Arc::new(Self {
            config,
            behaviour: Mutex::default(),
            log: Mutex::default(),
            registrations: Mutex::default(),
            syncs: Mutex::default(),
        })
    }

    pub fn behaviour(&self) -> MutexGuard<'_, Behaviour> {
        lock(&self.behaviour)
    }

    pub fn log(&self) -> MutexGuard<'_, Vec<LoggedRequest>> {
        lock(&self.log)
    }

    pub fn registrations(&self) -> MutexGuard<'_, Vec<Registration>> {
        lock(&self.registrations)
    }

    pub fn syncs(&self) -> MutexGuard<'_, Vec<Sync>> {
        lock(&self.syncs)
    }

    /// Healthy again, and nothing registered, synced or logged.
    pub fn reset(&self) {
        *self.behaviour() = Behaviour::default();
        self.log().clear();
        self.registrations().clear();
        self.syncs().clear();
    }
}

/// Entry point: `InstanceSim::start(config).await?` serves until the handle is dropped.
pub struct InstanceSim;

impl InstanceSim {
    pub async fn start(config: InstanceSimConfig) -> Result<InstanceSimHandle, InstanceSimError> {
        Self::start_with(config, |_| Router::new()).await
    }

    /// Starts with more routes merged into the instance's router (e.g. a bridge endpoint),
    /// built from the shared state.
    pub async fn start_with(
        config: InstanceSimConfig,
        extra: impl FnOnce(&Instance) -> Router,
    ) -> Result<InstanceSimHandle, InstanceSimError> {
        let path = &config.health_path;
        if !path.starts_with('/')
            || path.contains(['{', '}', '*'])
            || [REGISTER_PATH, SYNC_PATH].contains(&path.as_str())
            || path.starts_with("/_sim/")
        {
            return Err(InstanceSimError::HealthPath(path.clone()));
        }
        let acceptor = config.tls.as_ref().map(TlsMaterial::acceptor).transpose()?;
        let listener = TcpListener::bind(config.listen).await.map_err(|e| InstanceSimError::Bind(config.listen, e))?;
        let addr = listener.local_addr().map_err(|e| InstanceSimError::Bind(config.listen, e))?;
        let state = InstanceState::new(config);
        let app = router(state.clone()).merge(extra(&state));
        let https = acceptor.is_some();
        let server = match acceptor {
            Some(acceptor) => {
                let listener =
                    tls::TlsListener::new(listener, acceptor).map_err(|e| InstanceSimError::Bind(addr, e))?;
                Served::spawn(listener, addr, app, "instance")
            }
            None => Served::spawn(listener, addr, app, "instance"),
        };
        tracing::info!(%addr, https, "instance simulator listening");
        Ok(InstanceSimHandle { addr, https, state, server })
    }
}

/// A running simulator. Dropping it stops the server.
pub struct InstanceSimHandle {
    addr: SocketAddr,
    https: bool,
    state: Instance,
    server: Served,
}

impl InstanceSimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT` (or `http://`), the instance's base URL.
    pub fn base_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The shared state (behaviour, logs, registrations).
    pub fn state(&self) -> &Instance {
        &self.state
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.state.log().clone()
    }

    /// How many requests hit `method path`.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.state.log().iter().filter(|r| r.method.eq_ignore_ascii_case(method) && r.path == path).count()
    }

    pub fn registrations(&self) -> Vec<Registration> {
        self.state.registrations().clone()
    }

    pub fn syncs(&self) -> Vec<Sync> {
        self.state.syncs().clone()
    }

    /// Replaces the behaviour (mode, latency, path prefix).
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.state.behaviour() = behaviour;
    }

    /// Sets the mode, keeping latency and path prefix.
    pub fn set_mode(&self, mode: Mode) {
        self.state.behaviour().mode = mode;
    }

    pub fn reset(&self) {
        self.state.reset();
    }

    /// Serve until the process is stopped (the CLI).
    pub async fn wait(mut self) {
        self.server.wait().await;
    }

    /// Stop serving and wait for the server task.
    pub async fn shutdown(mut self) {
        self.server.shutdown().await;
    }
}
