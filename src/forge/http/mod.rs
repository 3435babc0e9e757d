//! [`HttpForgeClient`]: the reqwest implementation of [`ForgeApi`], paced by the shared
//! per-token limiter, retrying with jittered exponential backoff where that is safe.
//!
//! - `request`: one HTTP call, its retries and the 429 pause of the token's limiter;
//! - `documents`: JSON:API documents over it, single resources and cursor pagination;
//! - `endpoints`: the [`ForgeApi`] operations, one Forge path each.
//!
//! [`ForgeApi`]: super::api::ForgeApi

mod documents;
mod endpoints;
mod request;

use super::config::ForgeClientConfig;
use super::error::ForgeError;
use super::limiter::{TokenLimiter, limiter_for};
use super::models::JobScope;
use std::sync::Arc;
use std::time::Duration;

/// Forge over HTTP. Cheap to clone; share one per process via `Arc<dyn ForgeApi>`.
#[derive(Clone)]
pub struct HttpForgeClient {
    http: reqwest::Client,
    config: Arc<ForgeClientConfig>,
    base: String,
    limiter: Arc<TokenLimiter>,
}

impl std::fmt::Debug for HttpForgeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpForgeClient")
            .field("base", &self.base)
            .field("organization", &self.config.organization)
            .finish_non_exhaustive()
    }
}

impl HttpForgeClient {
    pub fn new(config: ForgeClientConfig) -> Result<Self, ForgeError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(request::transport)?;
        let limiter = limiter_for(&config.token, config.rate_limit);
        let base = config.base_url.trim_end_matches('/').to_string();
        Ok(Self { http, config: Arc::new(config), base, limiter })
    }

    pub fn config(&self) -> &ForgeClientConfig {
        &self.config
    }

    fn org(&self, rest: &str) -> String {
        format!("/orgs/{}{rest}", self.config.organization)
    }

    fn server_path(&self, server: u64, rest: &str) -> String {
        self.org(&format!("/servers/{server}{rest}"))
    }

    fn site_path(&self, server: u64, site: u64, rest: &str) -> String {
        self.server_path(server, &format!("/sites/{site}{rest}"))
    }

    fn job_path(&self, scope: JobScope, rest: &str) -> String {
        match scope {
            JobScope::Server { server } => self.server_path(server, &format!("/scheduled-jobs{rest}")),
            JobScope::Site { server, site } => self.site_path(server, site, &format!("/scheduled-jobs{rest}")),
        }
    }
}
