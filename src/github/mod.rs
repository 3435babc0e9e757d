//! The GitHub integration of `switchyard run`: webhook deliveries ([`webhook`]) and
//! the polling fallback ([`poll`]) turn pull request commands and events into
//! PreviewEnvironment creates, updates and deletes ([`environments`]); the comment
//! controller (`controller::pull_request_comment`) reports each environment on its
//! pull request.
//!
//! Secrets (the API token, the webhook secret) are read from their Secrets when
//! needed and cached for [`SECRET_TTL`], so a rotation is picked up without a restart.

pub mod environments;
pub mod poll;
pub mod webhook;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::backends::github::{GithubClient, GithubError, GithubToken};
use crate::config::{GithubConfig, NamespacedSecretKeyRef};
use crate::logic::github_webhook::DeliveryLog;
use crate::metrics::{GithubEventLabels, Metrics};

/// How long a Secret's value is trusted before it is read again.
pub const SECRET_TTL: Duration = Duration::from_secs(30);
/// Replay keys remembered per process.
const DELIVERY_LOG_CAPACITY: usize = 10_000;

/// Why the integration could not do its work. Never carries a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Secret {namespace}/{name}: {message}")]
    Secret { namespace: String, name: String, message: String },
    #[error(transparent)]
    Github(#[from] GithubError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Template(String),
    #[error("PreviewEnvironment {namespace}/{name} exists but belongs to {found}, not {expected}")]
    NameTaken { namespace: String, name: String, found: String, expected: String },
}

impl Error {
    /// A stable, low-cardinality label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Error::Secret { .. } => "SecretUnavailable",
            Error::Github(e) => e.label(),
            Error::Kube(_) => "KubeError",
            Error::Template(_) => "InvalidTemplate",
            Error::NameTaken { .. } => "NameTaken",
        }
    }
}

/// A Secret key read through the apiserver and cached for [`SECRET_TTL`].
struct CachedSecret {
    reference: NamespacedSecretKeyRef,
    value: Mutex<Option<(Arc<Vec<u8>>, Instant)>>,
}

impl CachedSecret {
    fn new(reference: NamespacedSecretKeyRef) -> Self {
        Self { reference, value: Mutex::new(None) }
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::Secret {
            namespace: self.reference.namespace.clone(),
            name: self.reference.name.clone(),
            message: message.into(),
        }
    }

    async fn get(&self, kube: &Client) -> Result<Arc<Vec<u8>>, Error> {
        if let Ok(guard) = self.value.lock()
            && let Some((value, at)) = guard.as_ref()
            && at.elapsed() < SECRET_TTL
        {
            return Ok(value.clone());
        }
        let r = &self.reference;
        let secret = Api::<Secret>::namespaced(kube.clone(), &r.namespace)
            .get_opt(&r.name)
            .await
            .map_err(|e| self.error(format!("cannot read it: {e}")))?
            .ok_or_else(|| self.error("not found"))?;
        let bytes = secret
            .data
            .and_then(|mut d| d.remove(&r.key))
            .map(|b| b.0)
            .filter(|b| !b.is_empty())
            .ok_or_else(|| self.error(format!("has no key {:?} (or it is empty)", r.key)))?;
        // Trailing newlines from `kubectl create secret --from-file` are not part of a token.
        let trimmed = bytes.trim_ascii_end().to_vec();
        let value = Arc::new(trimmed);
        if let Ok(mut guard) = self.value.lock() {
            *guard = Some((value.clone(), Instant::now()));
        }
        Ok(value)
    }
}

/// Everything the webhook endpoint, the poller and the comment controller share.
pub struct Github {
    pub kube: Client,
    pub config: GithubConfig,
    pub metrics: Arc<Metrics>,
    token: CachedSecret,
    webhook_secret: CachedSecret,
    /// The client for the current token, and the login it acts as once known.
    client: Mutex<Option<(GithubToken, GithubClient, Option<String>)>>,
    deliveries: Mutex<DeliveryLog>,
}

impl Github {
    pub fn new(kube: Client, config: GithubConfig, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            kube,
            token: CachedSecret::new(config.token_secret_ref.clone()),
            webhook_secret: CachedSecret::new(config.webhook_secret_ref.clone()),
            config,
            metrics,
            client: Mutex::new(None),
            deliveries: Mutex::new(DeliveryLog::new(DELIVERY_LOG_CAPACITY)),
        })
    }

    /// A client with the current token (a new one after the Secret changed).
    pub async fn client(&self) -> Result<GithubClient, Error> {
        let token = GithubToken::new(String::from_utf8_lossy(&self.token.get(&self.kube).await?).into_owned());
        let mut guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((current, client, _)) = guard.as_ref()
            && *current == token
        {
            return Ok(client.clone());
        }
        let client = GithubClient::new(&self.config.api_url, token.clone())?;
        *guard = Some((token, client.clone(), None));
        Ok(client)
    }

    /// The login the token acts as (asked once per token).
    pub async fn login(&self, client: &GithubClient) -> Result<String, Error> {
        let fingerprint = client.token_fingerprint();
        let cached = |guard: &Option<(GithubToken, GithubClient, Option<String>)>| {
            guard.as_ref().filter(|(t, _, _)| t.fingerprint() == fingerprint).and_then(|(_, _, l)| l.clone())
        };
        if let Some(login) = cached(&self.client.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(login);
        }
        let login = client.authenticated_user().await?.login;
        let mut guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((t, _, slot)) = guard.as_mut()
            && t.fingerprint() == fingerprint
        {
            *slot = Some(login.clone());
        }
        Ok(login)
    }

    /// The webhook secret.
    pub async fn webhook_secret(&self) -> Result<Arc<Vec<u8>>, Error> {
        self.webhook_secret.get(&self.kube).await
    }

    /// Records replay keys; false when any was acted on before.
    pub fn record_delivery(&self, keys: &[String]) -> bool {
        self.deliveries.lock().unwrap_or_else(|e| e.into_inner()).record(keys)
    }

    /// Forgets replay keys of a delivery that failed, so its redelivery is acted on.
    pub fn forget_delivery(&self, keys: &[String]) {
        self.deliveries.lock().unwrap_or_else(|e| e.into_inner()).forget(keys);
    }

    /// Counts one outcome: `result` is `accepted`, `ignored`, `rejected` or `failed`.
    pub fn count(&self, source: &str, event: &str, result: &str, reason: &str) {
        let labels = GithubEventLabels {
            source: source.into(),
            event: event.into(),
            result: result.into(),
            reason: reason.into(),
        };
        self.metrics.github_events.get_or_create(&labels).inc();
    }
}
