//! `switchyard-sim github`: the parts of GitHub's REST API switchyard uses — pull
//! requests (get, list), collaborator permission, issue comments (create, update,
//! list) and repository contents — with bearer-token auth, GitHub's rate-limit
//! headers, a request log and `/_sim` endpoints to seed repositories, pull requests,
//! permissions and files and to read comments back.

mod http;
pub mod model;
pub mod render;

use crate::forge::fingerprint;
use crate::forge::ratelimit::FixedWindowLimiter;
use crate::serve::{LoggedRequest, RequestLog, Served, read_state, write_state};
use chrono::Utc;
use model::{ApiError, Comment, PullRequest, PullRequestSeed, Repository, RepositorySeed, Role, World};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;

/// Login the simulator acts as for tokens that name none.
pub const DEFAULT_LOGIN: &str = "switchyard[bot]";

/// A bearer token the simulator accepts and the account it authenticates as.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub token: String,
    pub login: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("token", &fingerprint(&self.token)).field("login", &self.login).finish()
    }
}

impl Token {
    pub fn new(token: impl Into<String>, login: impl Into<String>) -> Self {
        Self { token: token.into(), login: login.into() }
    }
}

/// `TOKEN` (acting as [`DEFAULT_LOGIN`]) or `TOKEN=login`.
impl FromStr for Token {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (token, login) = s.split_once('=').unwrap_or((s, DEFAULT_LOGIN));
        if token.is_empty() || login.is_empty() {
            return Err("expected TOKEN or TOKEN=login".into());
        }
        Ok(Token::new(token, login))
    }
}

/// Simulator settings (the CLI flags map 1:1).
#[derive(Debug, Clone)]
pub struct GithubSimConfig {
    pub listen: SocketAddr,
    /// Accepted tokens; empty = any bearer token, acting as [`DEFAULT_LOGIN`].
    pub tokens: Vec<Token>,
    /// Requests per window per token (GitHub: 5,000 per hour).
    pub rate_limit: u32,
    pub rate_window: Duration,
    /// Persist the world here (loaded on start, rewritten on every change).
    pub state_file: Option<PathBuf>,
}

impl Default for GithubSimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tokens: vec![],
            rate_limit: 5000,
            rate_window: Duration::from_secs(3600),
            state_file: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot bind {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("state file {0}: {1}")]
    StateFile(PathBuf, String),
    /// A seed the world refused (bad sha, unknown repository, ...).
    #[error("{0}")]
    Seed(#[from] ApiError),
}

pub(crate) struct Shared {
    pub config: GithubSimConfig,
    world: Mutex<World>,
    limiter: Mutex<FixedWindowLimiter>,
    log: RequestLog,
    persist_lock: Mutex<()>,
}

pub(crate) type Sim = Arc<Shared>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking handler must not take the whole simulator down with a poisoned lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    pub fn limiter(&self) -> MutexGuard<'_, FixedWindowLimiter> {
        lock(&self.limiter)
    }

    pub fn log(&self) -> &RequestLog {
        &self.log
    }

    /// Write the state file (temp file + rename). Errors are logged, not fatal.
    pub fn persist(&self) {
        let Some(path) = &self.config.state_file else { return };
        let _guard = lock(&self.persist_lock);
        write_state(path, &*self.world());
    }

    pub fn reset(&self) {
        *self.world() = World::default();
        self.log().clear();
        self.limiter().reset();
        self.persist();
    }

    /// Applies `change` to the world and persists it.
    fn change<T>(&self, change: impl FnOnce(&mut World) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let out = change(&mut self.world());
        if out.is_ok() {
            self.persist();
        }
        out
    }
}

fn load_world(config: &GithubSimConfig) -> Result<World, SimError> {
    match &config.state_file {
        Some(path) => Ok(read_state(path).map_err(|e| SimError::StateFile(path.clone(), e))?.unwrap_or_default()),
        None => Ok(World::default()),
    }
}

/// Entry point: `GithubSim::start(config).await?` serves until the handle is dropped.
pub struct GithubSim;

impl GithubSim {
    pub async fn start(config: GithubSimConfig) -> Result<GithubSimHandle, SimError> {
        let world = load_world(&config)?;
        let listener = TcpListener::bind(config.listen).await.map_err(|e| SimError::Bind(config.listen, e))?;
        let addr = listener.local_addr().map_err(|e| SimError::Bind(config.listen, e))?;
        let shared = Arc::new(Shared {
            limiter: Mutex::new(FixedWindowLimiter::new(config.rate_limit, config.rate_window)),
            config,
            world: Mutex::new(world),
            log: RequestLog::default(),
            persist_lock: Mutex::new(()),
        });
        let server = Served::spawn(listener, addr, http::router(shared.clone()), "github");
        Ok(GithubSimHandle { shared, server })
    }
}

/// A running simulator. Dropping it stops the server.
pub struct GithubSimHandle {
    shared: Sim,
    server: Served,
}

impl GithubSimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:PORT`, the value for `github.apiUrl` (the API is served at the root,
    /// like `https://api.github.com`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Creates `owner/name` or changes its settings.
    pub fn put_repository(&self, full_name: &str, seed: RepositorySeed) -> Result<Repository, SimError> {
        Ok(self.shared.change(|w| w.put_repository(full_name, seed))?)
    }

    /// Creates pull request `number` (and its repository), or changes the fields given.
    pub fn put_pull_request(
        &self,
        full_name: &str,
        number: u64,
        seed: PullRequestSeed,
    ) -> Result<PullRequest, SimError> {
        Ok(self.shared.change(|w| w.put_pull_request(full_name, number, seed, Utc::now()))?)
    }

    /// Gives `login` `role` on the repository.
    pub fn set_role(&self, full_name: &str, login: &str, role: Role) -> Result<(), SimError> {
        Ok(self.shared.change(|w| w.set_role(full_name, login, role))?)
    }

    /// Stores a file at `path` on `ref_` (the default branch when `None`).
    pub fn put_file(&self, full_name: &str, ref_: Option<&str>, path: &str, content: &[u8]) -> Result<(), SimError> {
        Ok(self.shared.change(|w| w.put_file(full_name, ref_, path, content.to_vec()))?)
    }

    /// Every comment of the repository, oldest first, with earlier revisions.
    pub fn comments(&self, full_name: &str) -> Vec<Comment> {
        let world = self.shared.world();
        let Some((owner, name)) = full_name.split_once('/') else { return vec![] };
        world.repository(owner, name).map(|r| r.comments.values().cloned().collect()).unwrap_or_default()
    }

    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.log().snapshot()
    }

    /// How many requests hit `method route` (route template, e.g.
    /// `/repos/{owner}/{repo}/issues/{number}/comments`).
    pub fn count(&self, method: &str, route: &str) -> usize {
        self.shared.log().count(method, route)
    }

    pub fn clear_requests(&self) {
        self.shared.log().clear();
    }

    /// A snapshot of the whole world.
    pub fn state(&self) -> World {
        self.shared.world().clone()
    }

    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Serve until the process is stopped (the CLI).
    pub async fn wait(mut self) {
        self.server.wait().await;
    }
}
