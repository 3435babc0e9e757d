//! Clients of the systems outside Kubernetes, built once per process and shared
//! by every controller through the [`Context`](super::Context): one GitHub
//! integration (with its token and login caches), one Forge client per
//! (URL, organization, token) so every controller shares its rate limiter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backends::BackendError;
use crate::config::ForgeSettings;
use crate::controller::Error;
use crate::forge::{ForgeApi, ForgeClientConfig, ForgeToken, HttpForgeClient, RateLimit};
use crate::github::Github;

/// A Forge client's identity: base URL, organization, SHA-256 of the token.
type ForgeClientKey = (String, String, [u8; 32]);

/// The shared clients.
pub struct Services {
    /// The GitHub integration, when the operator config has a `github` section.
    pub github: Option<Arc<Github>>,
    forge_clients: Mutex<HashMap<ForgeClientKey, Arc<HttpForgeClient>>>,
}

impl Services {
    pub fn new(github: Option<Arc<Github>>) -> Self {
        Self { github, forge_clients: Mutex::default() }
    }

    /// The Forge client for (the config's URL, organization, token), built on first use.
    pub fn forge(
        &self,
        settings: &ForgeSettings,
        organization: &str,
        token: String,
    ) -> Result<Arc<dyn ForgeApi>, Error> {
        let token = ForgeToken::new(token);
        let key = (settings.base_url.to_string(), organization.to_string(), token.digest());
        let mut clients = self.forge_clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let mut config = ForgeClientConfig::new(&settings.base_url, organization, token);
        config.rate_limit = RateLimit::new(settings.rate_limit_per_minute, Duration::from_secs(60));
        config.request_timeout = settings.request_timeout;
        let client = Arc::new(
            HttpForgeClient::new(config).map_err(|e| BackendError { backend: "forge", message: e.to_string() })?,
        );
        clients.insert(key, client.clone());
        Ok(client)
    }
}
