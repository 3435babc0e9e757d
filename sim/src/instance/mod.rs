//! `switchyard-sim instance`: a remote platform instance (a top or master branch)
//! written from the cross-branch design's contract, over HTTP or HTTPS.
//!
//! - `POST /api/v1/cross-branch/register-branch` `{"branch_name", "branch_url",
//!   "branch_type": "top_branch"|"master_branch", "api_key"}`: 201 into a registry
//!   unique on `branch_name`; a name already registered is 409 (or Laravel's 422 for a
//!   taken unique field, with `duplicate_status: 422`); 422 for invalid fields.
//! - every other route under `/api/v1/cross-branch/` passes the design's middleware:
//!   401 when `X-Branch-Origin` or the Bearer token is missing, 403 when the origin is
//!   not the `branch_name` of a registered, active branch or the token is not the
//!   `api_key` it registered: `GET health`, `POST sync-organization` `{"organization",
//!   "users", "license"}`, `POST validate-license` `{"license"}`, `POST share-resource`,
//!   `POST user-authentication`.
//!
//! Control endpoints under `/_sim/` (no auth, not logged) show the registry, syncs and
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

/// Prefix of every route of the design.
pub const PREFIX: &str = "/api/v1/cross-branch";
/// Path of the registration endpoint (outside the middleware).
pub const REGISTER_PATH: &str = "/api/v1/cross-branch/register-branch";
/// Path of the health endpoint.
pub const HEALTH_PATH: &str = "/api/v1/cross-branch/health";
/// Path of the organization sync endpoint.
pub const SYNC_PATH: &str = "/api/v1/cross-branch/sync-organization";
/// Path of the license validation endpoint.
pub const LICENSE_PATH: &str = "/api/v1/cross-branch/validate-license";
/// Path of the resource sharing endpoint.
pub const SHARE_PATH: &str = "/api/v1/cross-branch/share-resource";
/// Path of the user authentication endpoint.
pub const USER_AUTH_PATH: &str = "/api/v1/cross-branch/user-authentication";
/// The header naming the calling branch (its `branch_name`).
pub const ORIGIN_HEADER: &str = "x-branch-origin";

/// A branch in the registry before the instance starts (`--register`).
#[derive(Clone)]
pub struct Seed {
    pub branch_name: String,
    pub branch_url: String,
    /// `top_branch` or `master_branch`.
    pub branch_type: String,
    pub api_key: String,
}

impl std::str::FromStr for Seed {
    type Err = String;

    /// `NAME,URL,TYPE,KEY`.
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.splitn(4, ',').map(str::trim).collect();
        match parts[..] {
            [name, url, type_, key] if !name.is_empty() && !key.is_empty() && http::BRANCH_TYPES.contains(&type_) => {
                Ok(Seed {
                    branch_name: name.into(),
                    branch_url: url.into(),
                    branch_type: type_.into(),
                    api_key: key.into(),
                })
            }
            _ => Err("expected NAME,URL,TYPE,KEY with TYPE top_branch or master_branch".into()),
        }
    }
}

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seed")
            .field("branch_name", &self.branch_name)
            .field("branch_url", &self.branch_url)
            .field("branch_type", &self.branch_type)
            .field("api_key", &crate::forge::fingerprint(&self.api_key))
            .finish()
    }
}

/// Simulator settings (the CLI flags map 1:1).
#[derive(Clone)]
pub struct InstanceSimConfig {
    pub listen: SocketAddr,
    /// The instance's name, reported by the health endpoint.
    pub name: String,
    /// The version the health endpoint reports.
    pub version: String,
    /// Branches registered from the start.
    pub registered: Vec<Seed>,
    /// Licenses `validate-license` calls valid.
    pub licenses: Vec<String>,
    /// Status of a registration under a name already registered: 409, or 422 as
    /// Laravel's `unique` rule answers.
    pub duplicate_status: u16,
    /// Serve HTTPS with this certificate; plain HTTP when absent.
    pub tls: Option<TlsMaterial>,
}

impl std::fmt::Debug for InstanceSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceSimConfig")
            .field("listen", &self.listen)
            .field("name", &self.name)
            .field("version", &self.version)
            .field("registered", &self.registered)
            .field("licenses", &self.licenses.len())
            .field("duplicate_status", &self.duplicate_status)
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
            registered: vec![],
            licenses: vec![],
            duplicate_status: 409,
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

/// A branch in the registry, as `GET /_sim/registrations` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Registration {
    pub branch_name: String,
    pub branch_url: String,
    pub branch_type: String,
    /// Fingerprint of the registered API key, never the key.
    pub api_key: String,
    /// The middleware lets an inactive branch's calls through as 403.
    pub is_active: bool,
    pub registered_at: DateTime<Utc>,
    /// Registrations refused because this name was taken.
    pub duplicates: u32,
}

/// A registry entry: what is shown, and the key the middleware compares.
struct Entry {
    shown: Registration,
    key: String,
}

/// A received call of a recorded kind (`sync-organization`, `validate-license`,
/// `share-resource`, `user-authentication`).
#[derive(Debug, Clone, Serialize)]
pub struct Sync {
    /// The `X-Branch-Origin` the middleware accepted.
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
    #[error("invalid duplicate status {0}: 409 or 422")]
    DuplicateStatus(u16),
}

/// The simulator's state, shared by every handler.
pub struct InstanceState {
    pub config: InstanceSimConfig,
    behaviour: Mutex<Behaviour>,
    log: Mutex<Vec<LoggedRequest>>,
    registry: Mutex<Vec<Entry>>,
    syncs: Mutex<Vec<Sync>>,
    license_checks: Mutex<Vec<Sync>>,
    shares: Mutex<Vec<Sync>>,
}

/// A handle on the shared state.
pub type Instance = Arc<InstanceState>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking handler must not take the whole simulator down with a poisoned lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl InstanceState {
    pub fn new(config: InstanceSimConfig) -> Instance {
        let state = Arc::new(Self {
            config,
            behaviour: Mutex::default(),
            log: Mutex::default(),
            registry: Mutex::default(),
            syncs: Mutex::default(),
            license_checks: Mutex::default(),
            shares: Mutex::default(),
        });
        state.seed();
        state
    }

    fn seed(&self) {
        let now = Utc::now();
        let mut registry = lock(&self.registry);
        for s in &self.config.registered {
            registry.push(Entry {
                shown: Registration {
                    branch_name: s.branch_name.clone(),
                    branch_url: s.branch_url.clone(),
                    branch_type: s.branch_type.clone(),
                    api_key: crate::forge::fingerprint(&s.api_key),
                    is_active: true,
                    registered_at: now,
                    duplicates: 0,
                },
                key: s.api_key.clone(),
            });
        }
    }

    pub fn behaviour(&self) -> MutexGuard<'_, Behaviour> {
        lock(&self.behaviour)
    }

    pub fn log(&self) -> MutexGuard<'_, Vec<LoggedRequest>> {
        lock(&self.log)
    }

    pub fn registrations(&self) -> Vec<Registration> {
        lock(&self.registry).iter().map(|e| e.shown.clone()).collect()
    }

    /// Marks a registered branch active or not; false when it is not registered.
    pub fn set_active(&self, name: &str, active: bool) -> bool {
        let mut registry = lock(&self.registry);
        registry.iter_mut().find(|e| e.shown.branch_name == name).map(|e| e.shown.is_active = active).is_some()
    }

    /// Removes a branch from the registry (what an administrator of the instance does
    /// by hand: the design has no route for it); false when it was not registered.
    pub fn deregister(&self, name: &str) -> bool {
        let mut registry = lock(&self.registry);
        let before = registry.len();
        registry.retain(|e| e.shown.branch_name != name);
        registry.len() != before
    }

    pub fn syncs(&self) -> MutexGuard<'_, Vec<Sync>> {
        lock(&self.syncs)
    }

    pub fn license_checks(&self) -> MutexGuard<'_, Vec<Sync>> {
        lock(&self.license_checks)
    }

    pub fn shares(&self) -> MutexGuard<'_, Vec<Sync>> {
        lock(&self.shares)
    }

    /// Healthy again, only the seeded branches registered, nothing synced or logged.
    pub fn reset(&self) {
        *self.behaviour() = Behaviour::default();
        self.log().clear();
        lock(&self.registry).clear();
        self.seed();
        self.syncs().clear();
        self.license_checks().clear();
        self.shares().clear();
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
        if ![409, 422].contains(&config.duplicate_status) {
            return Err(InstanceSimError::DuplicateStatus(config.duplicate_status));
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
        self.state.registrations()
    }

    /// The registry entry of `name`.
    pub fn registration(&self, name: &str) -> Option<Registration> {
        self.state.registrations().into_iter().find(|r| r.branch_name == name)
    }

    /// Every accepted `sync-organization` call.
    pub fn syncs(&self) -> Vec<Sync> {
        self.state.syncs().clone()
    }

    /// Every answered `validate-license` call.
    pub fn license_checks(&self) -> Vec<Sync> {
        self.state.license_checks().clone()
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
