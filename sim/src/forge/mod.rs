//! `switchyard-sim forge`: a stateful simulator of Laravel Forge's organization-scoped API
//! (`/api/orgs/{org}/…`), following `forge-api.md`: JSON:API envelopes, cursor pagination,
//! async status machines, Laravel validation and errors, per-token rate limiting, fault
//! injection and a request log for tests, optional real MariaDB side effects.

mod api;
pub mod faults;
mod handlers;
mod http;
pub mod lifecycle;
pub mod model;
pub mod mysql;
pub mod pagination;
pub mod ratelimit;
pub mod render;
pub mod validation;

pub(crate) use http::bearer;

use chrono::{DateTime, Utc};
use faults::{FaultSet, FaultSpec};
use model::World;
use ratelimit::FixedWindowLimiter;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;

use crate::serve::{RequestLog, Served, read_state, write_state};

/// A bearer token the simulator accepts, optionally limited to some scopes.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSpec {
    pub token: String,
    /// `None` = every scope.
    pub scopes: Option<BTreeSet<String>>,
}

impl std::fmt::Debug for TokenSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSpec").field("token", &fingerprint(&self.token)).field("scopes", &self.scopes).finish()
    }
}

impl TokenSpec {
    pub fn all_scopes(token: impl Into<String>) -> Self {
        Self { token: token.into(), scopes: None }
    }
    pub fn with_scopes(token: impl Into<String>, scopes: &[&str]) -> Self {
        Self { token: token.into(), scopes: Some(scopes.iter().map(|s| s.to_string()).collect()) }
    }
}

/// `TOKEN` or `TOKEN=scope,scope` (Forge tokens never contain `=`).
impl FromStr for TokenSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (token, scopes) = match s.split_once('=') {
            Some((t, sc)) => (t, Some(sc.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())),
            None => (s, None),
        };
        if token.is_empty() {
            return Err("empty token".into());
        }
        Ok(TokenSpec { token: token.to_string(), scopes })
    }
}

/// A short, stable, non-reversible label for a token (logs and rate-limit keys).
pub fn fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    format!("sha256:{}", hex::encode(&digest[..6]))
}

/// Simulator settings (the CLI flags map 1:1).
#[derive(Debug, Clone)]
pub struct ForgeSimConfig {
    pub listen: SocketAddr,
    /// Accepted tokens; empty = accept any bearer token.
    pub tokens: Vec<TokenSpec>,
    pub org: String,
    pub state_file: Option<PathBuf>,
    /// Duration of each async step (installing → installed, queued → deploying → finished, …).
    pub async_delay: Duration,
    /// Per-kind step durations; `None` = every step takes `async_delay`.
    pub timing: Option<lifecycle::Timing>,
    /// Requests per window per token (Forge: 60 per minute).
    pub rate_limit: u32,
    pub rate_window: Duration,
    pub mysql_url: Option<String>,
}

impl ForgeSimConfig {
    /// The step durations in effect.
    pub fn step_timing(&self) -> lifecycle::Timing {
        self.timing.unwrap_or(lifecycle::Timing::uniform(self.async_delay))
    }
}

impl Default for ForgeSimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tokens: vec![],
            org: "demo".into(),
            state_file: None,
            async_delay: Duration::from_millis(300),
            timing: None,
            rate_limit: 60,
            rate_window: Duration::from_secs(60),
            mysql_url: None,
        }
    }
}

pub use crate::serve::LoggedRequest;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot bind {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("state file {0}: {1}")]
    StateFile(PathBuf, String),
    #[error(transparent)]
    Mysql(#[from] mysql::MysqlError),
}

pub(crate) struct Shared {
    pub config: ForgeSimConfig,
    world: Mutex<World>,
    pub limiter: Mutex<FixedWindowLimiter>,
    pub faults: Mutex<FaultSet>,
    pub log: RequestLog,
    pub mysql: Option<mysql::MysqlBackend>,
    persist_lock: Mutex<()>,
}

pub(crate) type Sim = Arc<Shared>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking handler must not take the whole simulator down with a poisoned lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// The world, with finished deletions already applied for `now`.
    pub fn world(&self, now: DateTime<Utc>) -> MutexGuard<'_, World> {
        let mut w = lock(&self.world);
        w.settle(now, self.config.step_timing().step);
        w
    }

    pub fn limiter(&self) -> MutexGuard<'_, FixedWindowLimiter> {
        lock(&self.limiter)
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultSet> {
        lock(&self.faults)
    }

    pub fn log(&self) -> &RequestLog {
        &self.log
    }

    /// Write the state file (atomically: temp file + rename). Errors are logged, not fatal.
    pub fn persist(&self) {
        let Some(path) = &self.config.state_file else {
            return;
        };
        let _guard = lock(&self.persist_lock);
        write_state(path, &*lock(&self.world));
    }

    pub fn reset(&self) {
        *lock(&self.world) = World::new(&self.config.org, Utc::now());
        self.faults().clear();
        self.log().clear();
        self.limiter().reset();
        self.persist();
    }

    pub fn request_summary(&self) -> serde_json::Value {
        self.log.summary()
    }
}

fn load_world(config: &ForgeSimConfig) -> Result<World, SimError> {
    if let Some(path) = &config.state_file
        && let Some(world) = read_state(path).map_err(|e| SimError::StateFile(path.clone(), e))?
    {
        return Ok(world);
    }
    Ok(World::new(&config.org, Utc::now()))
}

/// Entry point: `ForgeSim::start(config).await?` serves until the handle is dropped.
pub struct ForgeSim;

impl ForgeSim {
    pub async fn start(config: ForgeSimConfig) -> Result<ForgeSimHandle, SimError> {
        let world = load_world(&config)?;
        let mysql = config.mysql_url.as_deref().map(mysql::MysqlBackend::new).transpose()?;
        let listener = TcpListener::bind(config.listen).await.map_err(|e| SimError::Bind(config.listen, e))?;
        let addr = listener.local_addr().map_err(|e| SimError::Bind(config.listen, e))?;
        let shared = Arc::new(Shared {
            limiter: Mutex::new(FixedWindowLimiter::new(config.rate_limit, config.rate_window)),
            config,
            world: Mutex::new(world),
            faults: Mutex::new(FaultSet::default()),
            log: RequestLog::default(),
            mysql,
            persist_lock: Mutex::new(()),
        });
        shared.persist();
        let server = Served::spawn(listener, addr, http::router(shared.clone()), "forge");
        Ok(ForgeSimHandle { shared, server })
    }
}

/// A running simulator. Dropping it stops the server (hung requests are aborted).
pub struct ForgeSimHandle {
    shared: Sim,
    server: Served,
}

impl ForgeSimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:PORT/api`, the value for the client's base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/api", self.addr())
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.log().snapshot()
    }

    /// How many requests hit `method route` (route template, e.g. `/api/orgs/{org}/servers/{server}/sites`).
    pub fn count(&self, method: &str, route: &str) -> usize {
        self.shared.log().count(method, route)
    }

    /// How many responses had `status`.
    pub fn status_count(&self, status: u16) -> usize {
        self.shared.log().status_count(status)
    }

    pub fn clear_requests(&self) {
        self.shared.log().clear();
    }

    pub fn inject_fault(&self, fault: FaultSpec) {
        self.shared.faults().add(fault);
    }

    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }

    /// A snapshot of the whole world (finished deletions applied).
    pub fn state(&self) -> World {
        self.shared.world(Utc::now()).clone()
    }

    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stop serving and wait for the server task.
    pub async fn shutdown(mut self) {
        self.server.shutdown().await;
        if let Some(m) = self.shared.mysql.clone() {
            m.disconnect().await;
        }
    }

    /// Serve until the process is stopped (the CLI).
    pub async fn wait(mut self) {
        self.server.wait().await;
    }
}
