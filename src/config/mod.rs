//! The operator's configuration file (YAML, mounted from the chart's ConfigMap).
//!
//! Secrets are referenced, never inlined. [`Config::load`] parses and validates the
//! whole file up front so a bad key stops `switchyard run` with a message naming it,
//! instead of surfacing later inside a reconcile.
//!
//! The file is read into [`raw`] (serde mirrors of what users write: durations as
//! text, a pool's settings side by side whatever its type) and converted, in one
//! step that collects every problem, into the typed [`Config`] the operator uses:
//! durations are [`Duration`]s, the listen address a [`SocketAddr`], and each pool a
//! [`PoolKind`] variant carrying exactly the settings of its resource type. Nothing
//! downstream re-parses or re-checks what loading accepted.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::api::shared_resource_claim::ResourceType;
use crate::logic::{dns, duration, pull_request_environment};

pub use crate::api::NamespacedSecretKeyRef;
pub use crate::logic::allocation::{Claimants, NamedResource, Pool, PoolKind, PortRange};
pub use crate::logic::branch_url::Policy as BranchPolicy;
pub use crate::logic::pull_request_actions::ForkPolicy;
pub use crate::logic::pull_request_environment::RepositoryTemplate;

/// Why the config file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config file {path} is invalid:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { path: String, problems: Vec<String> },
}

/// The whole configuration, validated (see [`raw::Config`] for the file's keys).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Defaults for Forge.
    pub forge: Option<ForgeSettings>,
    /// Pools that SharedResourceClaims allocate from.
    pub pools: Vec<Pool>,
    /// GitHub integration.
    pub github: Option<GithubConfig>,
    /// Controller tuning.
    pub controller: ControllerConfig,
    /// Leader election.
    pub leader_election: LeaderElectionConfig,
    /// HTTP server for metrics, health and webhooks.
    pub server: ServerConfig,
    /// Where Branches may point the operator's probes and keys.
    pub branches: BranchPolicy,
}

/// The `forge:` section: defaults for the Forge clients the operator builds (the
/// client's own settings are `crate::forge`'s).
#[derive(Debug, Clone, PartialEq)]
pub struct ForgeSettings {
    /// API base URL, http(s).
    pub base_url: String,
    /// Organization slug, not empty.
    pub organization: String,
    /// Token used when a PreviewEnvironment names none.
    pub token_secret_ref: Option<NamespacedSecretKeyRef>,
    /// Requests per minute allowed per token, at least 1.
    pub rate_limit_per_minute: u32,
    /// Base domain for `pr-<n>.<baseDomain>` when an environment names no domain.
    pub base_domain: Option<String>,
    /// How long one Forge request may take before it counts as failed.
    pub request_timeout: Duration,
}

/// GitHub integration.
#[derive(Debug, Clone, PartialEq)]
pub struct GithubConfig {
    /// API URL, http(s).
    pub api_url: String,
    pub token_secret_ref: NamespacedSecretKeyRef,
    pub webhook_secret_ref: NamespacedSecretKeyRef,
    pub fork_policy: ForkPolicy,
    /// Polling fallback for missed webhooks, at least 1s.
    pub poll_interval: Duration,
    /// Repositories whose pull requests get previews, each with its environment
    /// template; valid, one entry per repository, names that cannot collide.
    pub repositories: Vec<RepositoryTemplate>,
}

impl GithubConfig {
    /// The template of `repository` (GitHub names are case-insensitive).
    pub fn template(&self, repository: &str) -> Option<&RepositoryTemplate> {
        self.repositories.iter().find(|t| t.repository.eq_ignore_ascii_case(repository))
    }
}

/// Controller tuning.
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerConfig {
    /// Reconciles running at once, per kind; at least 1.
    pub concurrency: u16,
    /// Requeue interval for Ready objects (drift detection).
    pub requeue_interval: Duration,
    /// Namespace to watch; all namespaces when absent.
    pub namespace: Option<String>,
    /// Namespace of the operator's own objects (allocation Leases); see
    /// [`Config::system_namespace`].
    pub system_namespace: Option<String>,
    /// Controllers this process does not run.
    pub disabled: Vec<ControllerKind>,
}

/// A controller `controller.disabled` can name.
#[derive(Debug, Clone, Copy, serde::Deserialize, PartialEq, Eq)]
pub enum ControllerKind {
    PreviewEnvironment,
    SharedResourceClaim,
    RepoDependencyGraph,
    Branch,
    BridgeGrant,
    /// The GitHub poller and the pull request comment (only with a `github` section).
    Github,
}

/// Leader election on a Lease.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderElectionConfig {
    pub enabled: bool,
    pub lease_name: String,
    /// Namespace of the Lease; the pod's namespace (`POD_NAMESPACE`) when absent.
    pub namespace: Option<String>,
    /// How long a leader holds the Lease without renewing.
    pub lease_duration: Duration,
    /// How often the leader renews and standbys retry; shorter than `lease_duration`.
    pub retry_period: Duration,
}

/// HTTP server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
}

impl Default for Config {
    /// What an empty file means.
    fn default() -> Self {
        Self::from_raw(raw::Config::default()).expect("the defaults are a valid config")
    }
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let display = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: display.clone(), source })?;
        Self::parse(&text, &display)
    }

    /// Parses and validates config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let raw: raw::Config = if text.trim().is_empty() {
            raw::Config::default()
        } else {
            serde_yaml::from_str(text)
                .map_err(|e| ConfigError::Parse { path: origin.to_string(), message: e.to_string() })?
        };
        Self::from_raw(raw).map_err(|problems| ConfigError::Invalid { path: origin.to_string(), problems })
    }

    /// Types the file as written, or every semantic problem, each naming its key.
    fn from_raw(raw: raw::Config) -> Result<Self, Vec<String>> {
        let mut out = Vec::new();
        let watched_namespace = raw.controller.namespace.clone();
        let controller = raw.controller.typed(&mut out);
        let leader_election = raw.leader_election.typed(&mut out);
        let server = raw.server.typed(&mut out);
        let forge = match raw.forge {
            Some(forge) => forge.typed(&mut out).map(Some),
            None => Some(None),
        };
        let github = match raw.github {
            Some(github) => github.typed(watched_namespace.as_deref(), &mut out).map(Some),
            None => Some(None),
        };
        let pools = pools(raw.pools, &mut out);
        let branches = raw.branches.typed(&mut out);
        match (forge, pools, github, controller, leader_election, server) {
            (Some(forge), Some(pools), Some(github), Some(controller), Some(leader_election), Some(server))
                if out.is_empty() =>
            {
                Ok(Config { forge, pools, github, controller, leader_election, server, branches })
            }
            _ => Err(out),
        }
    }

    /// Whether this process runs the controller of `kind`.
    pub fn runs(&self, kind: ControllerKind) -> bool {
        !self.controller.disabled.contains(&kind)
    }

    /// The pool named `name`.
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name == name)
    }

    /// Namespace of the operator's own objects: `controller.systemNamespace`, else
    /// the pod's namespace (`POD_NAMESPACE`), else `default`.
    pub fn system_namespace(&self) -> String {
        self.controller
            .system_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into())
    }
}

/// `text` parsed as the duration at `key`, or the problem recorded.
fn duration_at(key: &str, text: &str, out: &mut Vec<String>) -> Option<Duration> {
    match duration::parse(text) {
        Ok(d) => Some(d),
        Err(e) => {
            out.push(format!("{key}: {e}"));
            None
        }
    }
}

fn is_http_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

impl raw::Controller {
    fn typed(self, out: &mut Vec<String>) -> Option<ControllerConfig> {
        let requeue_interval = duration_at("controller.requeueInterval", &self.requeue_interval, out);
        if self.concurrency == 0 {
            out.push("controller.concurrency: must be at least 1".into());
        }
        Some(ControllerConfig {
            concurrency: self.concurrency,
            requeue_interval: requeue_interval?,
            namespace: self.namespace,
            system_namespace: self.system_namespace,
            disabled: self.disabled,
        })
    }
}

impl raw::LeaderElection {
    fn typed(self, out: &mut Vec<String>) -> Option<LeaderElectionConfig> {
        let lease_duration = duration_at("leaderElection.leaseDuration", &self.lease_duration, out);
        let retry_period = duration_at("leaderElection.retryPeriod", &self.retry_period, out);
        if let (Some(lease), Some(retry)) = (lease_duration, retry_period)
            && retry >= lease
        {
            out.push("leaderElection.retryPeriod: must be shorter than leaderElection.leaseDuration".into());
        }
        Some(LeaderElectionConfig {
            enabled: self.enabled,
            lease_name: self.lease_name,
            namespace: self.namespace,
            lease_duration: lease_duration?,
            retry_period: retry_period?,
        })
    }
}

impl raw::Server {
    fn typed(self, out: &mut Vec<String>) -> Option<ServerConfig> {
        match self.listen.parse::<SocketAddr>() {
            Ok(listen) => Some(ServerConfig { listen }),
            Err(_) => {
                out.push(format!("server.listen: {:?} is not an address like 0.0.0.0:8080", self.listen));
                None
            }
        }
    }
}

impl raw::Branches {
    fn typed(self, out: &mut Vec<String>) -> BranchPolicy {
        for (i, pattern) in self.allowed_urls.iter().enumerate() {
            if let Some(problem) = crate::logic::branch_url::pattern_problem(pattern) {
                out.push(format!("branches.allowedUrls[{i}]: {problem}"));
            }
        }
        BranchPolicy {
            allow_plain_http: self.allow_plain_http,
            allow_insecure_skip_verify: self.allow_insecure_skip_verify,
            allowed_urls: self.allowed_urls,
        }
    }
}

impl raw::Forge {
    fn typed(self, out: &mut Vec<String>) -> Option<ForgeSettings> {
        let request_timeout = duration_at("forge.requestTimeout", &self.request_timeout, out);
        if !is_http_url(&self.base_url) {
            out.push(format!("forge.baseUrl: {:?} must be an http(s) URL", self.base_url));
        }
        if self.organization.is_empty() {
            out.push("forge.organization: must not be empty".into());
        }
        if self.rate_limit_per_minute == 0 {
            out.push("forge.rateLimitPerMinute: must be at least 1".into());
        }
        Some(ForgeSettings {
            base_url: self.base_url,
            organization: self.organization,
            token_secret_ref: self.token_secret_ref,
            rate_limit_per_minute: self.rate_limit_per_minute,
            base_domain: self.base_domain,
            request_timeout: request_timeout?,
        })
    }
}

impl raw::Github {
    fn typed(self, watched_namespace: Option<&str>, out: &mut Vec<String>) -> Option<GithubConfig> {
        let poll_interval = duration_at("github.pollInterval", &self.poll_interval, out);
        if !is_http_url(&self.api_url) {
            out.push(format!("github.apiUrl: {:?} must be an http(s) URL", self.api_url));
        }
        if poll_interval.is_some_and(|d| d < Duration::from_secs(1)) {
            out.push("github.pollInterval: must be at least 1s".into());
        }
        let mut seen = BTreeSet::new();
        for (i, template) in self.repositories.iter().enumerate() {
            let key = format!("github.repositories[{i}]");
            if !seen.insert(template.repository.to_ascii_lowercase()) {
                out.push(format!("{key}.repository: {:?} is configured twice", template.repository));
            }
            out.extend(pull_request_environment::template_problems(template).into_iter().map(|p| format!("{key}.{p}")));
            if let Some(watched) = watched_namespace
                && template.namespace != watched
            {
                out.push(format!(
                    "{key}.namespace: {:?} is not controller.namespace {watched:?}, which the operator watches",
                    template.namespace
                ));
            }
        }
        for (i, j) in pull_request_environment::name_collisions(&self.repositories) {
            out.push(format!(
                "github.repositories[{j}].namespace: environments of {:?} would get the names of those of github.repositories[{i}] ({:?}); use another namespace",
                self.repositories[j].repository, self.repositories[i].repository
            ));
        }
        Some(GithubConfig {
            api_url: self.api_url,
            token_secret_ref: self.token_secret_ref,
            webhook_secret_ref: self.webhook_secret_ref,
            fork_policy: self.fork_policy,
            poll_interval: poll_interval?,
            repositories: self.repositories,
        })
    }
}

/// Every pool typed (names unique DNS labels), or `None` when one is not.
fn pools(raw: Vec<raw::Pool>, out: &mut Vec<String>) -> Option<Vec<Pool>> {
    let mut names = BTreeSet::new();
    let mut typed = Vec::new();
    let mut all = true;
    for (i, pool) in raw.into_iter().enumerate() {
        let key = format!("pools[{i}]");
        if !names.insert(pool.name.clone()) {
            out.push(format!("{key}.name: duplicate pool name {:?}", pool.name));
        }
        if !dns::is_label(&pool.name) {
            out.push(format!("{key}.name: {:?} must be a DNS label (lowercase letters, digits, '-')", pool.name));
        }
        match pool.typed(&key, out) {
            Some(pool) => typed.push(pool),
            None => all = false,
        }
    }
    all.then_some(typed)
}

impl raw::Pool {
    /// Each setting's key in the file, and whether it is set.
    fn settings(&self) -> [(&'static str, bool); 9] {
        [
            ("range", self.range.is_some()),
            ("deny", self.deny.is_some()),
            ("dynamicFrom", self.dynamic_from.is_some()),
            ("baseDomain", self.base_domain.is_some()),
            ("redisUrlSecretRef", self.redis_url_secret_ref.is_some()),
            ("reserved", self.reserved.is_some()),
            ("serverId", self.server_id.is_some()),
            ("prefix", self.prefix.is_some()),
            ("resources", self.resources.is_some()),
        ]
    }

    /// The pool as the variant of its type. A setting of another type, a missing
    /// required one and a bad value are each a problem at `key`.
    fn typed(self, key: &str, out: &mut Vec<String>) -> Option<Pool> {
        let type_ = self.type_;
        let own: &[&str] = match type_ {
            ResourceType::Port => &["range", "deny", "dynamicFrom"],
            ResourceType::Domain => &["baseDomain"],
            ResourceType::RedisDatabase => &["redisUrlSecretRef", "reserved"],
            ResourceType::Database => &["serverId", "prefix"],
            ResourceType::Volume | ResourceType::Network => &["resources"],
        };
        let problems = out.len();
        for (field, set) in self.settings() {
            if set && !own.contains(&field) {
                out.push(format!("{key}.{field}: not a setting of a {type_:?} pool (those are {})", own.join(", ")));
            }
        }
        let mut required = |set: bool, field: &str| {
            if !set {
                out.push(format!("{key}.{field}: required for a {type_:?} pool"));
            }
        };
        match type_ {
            ResourceType::Port => required(self.range.is_some(), "range"),
            ResourceType::Domain => required(self.base_domain.is_some(), "baseDomain"),
            ResourceType::RedisDatabase => required(self.redis_url_secret_ref.is_some(), "redisUrlSecretRef"),
            ResourceType::Database => required(self.server_id.is_some(), "serverId"),
            ResourceType::Volume | ResourceType::Network => {
                required(self.resources.as_ref().is_some_and(|r| !r.is_empty()), "resources")
            }
        }
        if let Some(range) = self.range {
            if range.start == 0 || range.end > 65535 || range.start > range.end {
                out.push(format!("{key}.range: {}-{} must satisfy 1 <= start <= end <= 65535", range.start, range.end));
            }
            if let Some(from) = self.dynamic_from
                && (from < range.start || from > range.end)
            {
                out.push(format!("{key}.dynamicFrom: {from} is outside range {}-{}", range.start, range.end));
            }
        }
        for (j, r) in self.resources.iter().flatten().enumerate() {
            if r.capacity == 0 {
                out.push(format!("{key}.resources[{j}].capacity: must be at least 1"));
            }
        }
        if out.len() > problems {
            return None;
        }
        // Checked above: the type's required settings are set, no other is.
        let kind = match type_ {
            ResourceType::Port => PoolKind::Port {
                range: self.range?,
                deny: self.deny.unwrap_or_default(),
                dynamic_from: self.dynamic_from,
            },
            ResourceType::Domain => PoolKind::Domain { base_domain: self.base_domain? },
            ResourceType::RedisDatabase => PoolKind::RedisDatabase {
                redis_url_secret_ref: self.redis_url_secret_ref?,
                reserved: self.reserved.unwrap_or_default(),
            },
            ResourceType::Database => PoolKind::Database { server_id: self.server_id?, prefix: self.prefix },
            ResourceType::Volume => PoolKind::Volume { resources: self.resources? },
            ResourceType::Network => PoolKind::Network { resources: self.resources? },
        };
        let claimants = (self.namespaces.is_some() || self.namespace_selector.is_some())
            .then(|| Claimants { namespaces: self.namespaces.unwrap_or_default(), selector: self.namespace_selector });
        Some(Pool { name: self.name, kind, claimants })
    }
}

mod raw;

#[cfg(test)]
mod tests;
