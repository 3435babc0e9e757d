//! The operator's configuration file (YAML, mounted from the chart's ConfigMap).
//!
//! Secrets are referenced, never inlined. [`Config::load`] parses and validates the
//! whole file up front so a bad key stops `switchyard run` with a message naming it,
//! instead of surfacing later inside a reconcile.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::api::shared_resource_claim::ResourceType;
use crate::logic::{dns, duration, pull_request_environment};

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

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Defaults for Forge.
    #[serde(default)]
    pub forge: Option<ForgeConfig>,
    /// Pools that SharedResourceClaims allocate from.
    #[serde(default)]
    pub pools: Vec<PoolConfig>,
    /// GitHub integration.
    #[serde(default)]
    pub github: Option<GithubConfig>,
    /// Controller tuning.
    #[serde(default)]
    pub controller: ControllerConfig,
    /// Leader election.
    #[serde(default)]
    pub leader_election: LeaderElectionConfig,
    /// HTTP server for metrics, health and webhooks.
    #[serde(default)]
    pub server: ServerConfig,
}

/// A Secret key in a given namespace (the operator's config is cluster-scoped).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespacedSecretKeyRef {
    pub namespace: String,
    pub name: String,
    pub key: String,
}

/// Forge defaults.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForgeConfig {
    /// API base URL.
    #[serde(default = "default_forge_url")]
    pub base_url: String,
    /// Organization slug.
    pub organization: String,
    /// Token used when a PreviewEnvironment names none.
    pub token_secret_ref: Option<NamespacedSecretKeyRef>,
    /// Requests per minute allowed per token.
    #[serde(default = "default_rate")]
    pub rate_limit_per_minute: u32,
    /// Base domain for `pr-<n>.<baseDomain>` when an environment names no domain.
    pub base_domain: Option<String>,
    /// How long one Forge request may take before it counts as failed; a create
    /// that timed out is looked up before it is sent again, never blindly repeated.
    #[serde(default = "default_forge_timeout")]
    pub request_timeout: String,
}

impl ForgeConfig {
    pub fn request_timeout(&self) -> Duration {
        duration::parse(&self.request_timeout).unwrap_or(Duration::from_secs(30))
    }
}

fn default_forge_url() -> String {
    "https://forge.laravel.com/api".into()
}
fn default_rate() -> u32 {
    60
}
fn default_forge_timeout() -> String {
    "30s".into()
}

/// A pool of allocatable values.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolConfig {
    /// Pool name, referenced by `spec.pool`.
    pub name: String,
    /// The resource type it hands out.
    #[serde(rename = "type")]
    pub type_: ResourceType,
    /// Port: inclusive range.
    pub range: Option<PortRange>,
    /// Port: values never handed out.
    #[serde(default)]
    pub deny: Vec<u32>,
    /// Port: dynamic (unrequested) claims take values from here up, so static
    /// requests below it rarely collide.
    pub dynamic_from: Option<u32>,
    /// Domain: the base domain labels are allocated under.
    pub base_domain: Option<String>,
    /// RedisDatabase: Secret holding the Redis URL.
    pub redis_url_secret_ref: Option<NamespacedSecretKeyRef>,
    /// RedisDatabase: database numbers never handed out (0 is always reserved).
    #[serde(default)]
    pub reserved: Vec<u32>,
    /// Database: Forge server id.
    pub server_id: Option<i64>,
    /// Database: name prefix.
    pub prefix: Option<String>,
    /// Volume and Network: the named resources and their capacity.
    #[serde(default)]
    pub resources: Vec<NamedResource>,
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    pub start: u32,
    pub end: u32,
}

/// A named volume or network.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NamedResource {
    pub name: String,
    #[serde(default = "one")]
    pub capacity: u32,
}

fn one() -> u32 {
    1
}

/// GitHub integration.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GithubConfig {
    #[serde(default = "default_github_url")]
    pub api_url: String,
    pub token_secret_ref: NamespacedSecretKeyRef,
    pub webhook_secret_ref: NamespacedSecretKeyRef,
    #[serde(default)]
    pub fork_policy: ForkPolicy,
    /// Polling fallback for missed webhooks.
    #[serde(default = "default_poll")]
    pub poll_interval: String,
    /// Repositories whose pull requests get previews, each with its environment template.
    #[serde(default)]
    pub repositories: Vec<RepositoryTemplate>,
}

impl GithubConfig {
    /// The template of `repository` (GitHub names are case-insensitive).
    pub fn template(&self, repository: &str) -> Option<&RepositoryTemplate> {
        self.repositories.iter().find(|t| t.repository.eq_ignore_ascii_case(repository))
    }

    /// `pollInterval`, validated at load.
    pub fn poll_interval(&self) -> Duration {
        duration::parse(&self.poll_interval).unwrap_or(Duration::from_secs(300))
    }
}

fn default_github_url() -> String {
    "https://api.github.com".into()
}
fn default_poll() -> String {
    "5m".into()
}

/// Controller tuning.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControllerConfig {
    /// Reconciles running at once, per kind.
    #[serde(default = "default_concurrency")]
    pub concurrency: u16,
    /// Requeue interval for Ready objects (drift detection).
    #[serde(default = "default_requeue")]
    pub requeue_interval: String,
    /// Namespace to watch; all namespaces when absent.
    pub namespace: Option<String>,
    /// Namespace of the operator's own objects (allocation Leases); the pod's
    /// namespace (`POD_NAMESPACE`) when absent, else `default`.
    pub system_namespace: Option<String>,
    /// Controllers this process does not run (all run by default), for splitting
    /// work across deployments or running another implementation of one kind.
    #[serde(default)]
    pub disabled: Vec<ControllerKind>,
}

/// A controller `controller.disabled` can name.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
pub enum ControllerKind {
    PreviewEnvironment,
    SharedResourceClaim,
    RepoDependencyGraph,
    Branch,
    BridgeGrant,
    /// The GitHub poller and the pull request comment (only with a `github` section).
    Github,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            requeue_interval: default_requeue(),
            namespace: None,
            system_namespace: None,
            disabled: Vec::new(),
        }
    }
}

fn default_concurrency() -> u16 {
    4
}
fn default_requeue() -> String {
    "10m".into()
}

/// Leader election on a Lease.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeaderElectionConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_lease_name")]
    pub lease_name: String,
    /// Namespace of the Lease; the pod's namespace (`POD_NAMESPACE`) when absent.
    pub namespace: Option<String>,
    /// How long a leader holds the Lease without renewing.
    #[serde(default = "default_lease_duration")]
    pub lease_duration: String,
    /// How often the leader renews and standbys retry.
    #[serde(default = "default_retry_period")]
    pub retry_period: String,
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            lease_name: default_lease_name(),
            namespace: None,
            lease_duration: default_lease_duration(),
            retry_period: default_retry_period(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_lease_name() -> String {
    "switchyard-leader".into()
}
fn default_lease_duration() -> String {
    "15s".into()
}
fn default_retry_period() -> String {
    "2s".into()
}

/// HTTP server.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { listen: default_listen() }
    }
}

fn default_listen() -> String {
    "0.0.0.0:8080".into()
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
        let config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_yaml::from_str(text)
                .map_err(|e| ConfigError::Parse { path: origin.to_string(), message: e.to_string() })?
        };
        let problems = config.problems();
        if problems.is_empty() { Ok(config) } else { Err(ConfigError::Invalid { path: origin.to_string(), problems }) }
    }

    /// Every semantic problem, each naming its key.
    /// Whether this process runs the controller of `kind`.
    pub fn runs(&self, kind: ControllerKind) -> bool {
        !self.controller.disabled.contains(&kind)
    }

    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut check_duration = |key: &str, value: &str| {
            if let Err(e) = duration::parse(value) {
                out.push(format!("{key}: {e}"));
            }
        };
        check_duration("controller.requeueInterval", &self.controller.requeue_interval);
        check_duration("leaderElection.leaseDuration", &self.leader_election.lease_duration);
        check_duration("leaderElection.retryPeriod", &self.leader_election.retry_period);
        if let Some(forge) = &self.forge {
            check_duration("forge.requestTimeout", &forge.request_timeout);
        }
        if let Some(gh) = &self.github {
            check_duration("github.pollInterval", &gh.poll_interval);
        }
        if let (Ok(lease), Ok(retry)) =
            (duration::parse(&self.leader_election.lease_duration), duration::parse(&self.leader_election.retry_period))
            && retry >= lease
        {
            out.push("leaderElection.retryPeriod: must be shorter than leaderElection.leaseDuration".into());
        }
        if self.controller.concurrency == 0 {
            out.push("controller.concurrency: must be at least 1".into());
        }
        if self.server.listen.parse::<SocketAddr>().is_err() {
            out.push(format!("server.listen: {:?} is not an address like 0.0.0.0:8080", self.server.listen));
        }
        if let Some(forge) = &self.forge {
            if !forge.base_url.starts_with("http://") && !forge.base_url.starts_with("https://") {
                out.push(format!("forge.baseUrl: {:?} must be an http(s) URL", forge.base_url));
            }
            if forge.organization.is_empty() {
                out.push("forge.organization: must not be empty".into());
            }
            if forge.rate_limit_per_minute == 0 {
                out.push("forge.rateLimitPerMinute: must be at least 1".into());
            }
        }
        if let Some(gh) = &self.github {
            out.extend(gh.problems(self.controller.namespace.as_deref()));
        }
        let mut names = BTreeSet::new();
        for (i, pool) in self.pools.iter().enumerate() {
            let key = format!("pools[{i}]");
            if !names.insert(pool.name.as_str()) {
                out.push(format!("{key}.name: duplicate pool name {:?}", pool.name));
            }
            if !dns::is_label(&pool.name) {
                out.push(format!("{key}.name: {:?} must be a DNS label (lowercase letters, digits, '-')", pool.name));
            }
            out.extend(pool.problems(&key));
        }
        out
    }

    /// The pool named `name`.
    pub fn pool(&self, name: &str) -> Option<&PoolConfig> {
        self.pools.iter().find(|p| p.name == name)
    }

    /// Namespace of the operator's own objects.
    pub fn system_namespace(&self) -> String {
        self.controller
            .system_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into())
    }

    /// `controller.requeueInterval`, validated at load.
    pub fn requeue_interval(&self) -> Duration {
        duration::parse(&self.controller.requeue_interval).unwrap_or(Duration::from_secs(600))
    }
}

impl GithubConfig {
    fn problems(&self, watched_namespace: Option<&str>) -> Vec<String> {
        let mut out = Vec::new();
        if !self.api_url.starts_with("http://") && !self.api_url.starts_with("https://") {
            out.push(format!("github.apiUrl: {:?} must be an http(s) URL", self.api_url));
        }
        if duration::parse(&self.poll_interval).is_ok_and(|d| d < Duration::from_secs(1)) {
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
        out
    }
}

impl PoolConfig {
    fn problems(&self, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut require = |present: bool, field: &str| {
            if !present {
                out.push(format!("{key}.{field}: required for a {:?} pool", self.type_));
            }
        };
        match self.type_ {
            ResourceType::Port => require(self.range.is_some(), "range"),
            ResourceType::Domain => require(self.base_domain.is_some(), "baseDomain"),
            ResourceType::RedisDatabase => require(self.redis_url_secret_ref.is_some(), "redisUrlSecretRef"),
            ResourceType::Database => require(self.server_id.is_some(), "serverId"),
            ResourceType::Volume | ResourceType::Network => require(!self.resources.is_empty(), "resources"),
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
        for (j, r) in self.resources.iter().enumerate() {
            if r.capacity == 0 {
                out.push(format!("{key}.resources[{j}].capacity: must be at least 1"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("", "t").unwrap();
        assert!(c.leader_election.enabled);
        assert_eq!(c.controller.concurrency, 4);
    }

    #[test]
    fn disabled_controllers_are_named_kinds() {
        let config = Config::parse("controller:\n  disabled: [PreviewEnvironment, Github]\n", "t").unwrap();
        assert!(config.runs(ControllerKind::Branch) && !config.runs(ControllerKind::PreviewEnvironment));
        let err = Config::parse("controller:\n  disabled: [Previews]\n", "t").unwrap_err().to_string();
        assert!(err.contains("Previews"), "{err}");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse("controller:\n  concurency: 3\n", "t").unwrap_err().to_string();
        assert!(err.contains("concurency"), "{err}");
    }

    #[test]
    fn github_repository_templates_are_validated_at_load() {
        let text = r#"
github:
  tokenSecretRef: {namespace: sy, name: gh, key: token}
  webhookSecretRef: {namespace: sy, name: gh, key: webhook}
  pollInterval: 0s
  repositories:
    - {repository: acme/shop, namespace: previews, project: shop, serverId: 1, spec: {site: {phpVersion: php84}}}
    - {repository: ACME/shop, namespace: Previews, project: Shop, serverId: 0}
    - {repository: acme/web, namespace: other, project: web, serverId: 1}
    - repository: acme/api
      namespace: previews
      project: api
      serverId: 1
      spec: {pullRequest: 3, site: {phpVersion: 8}}
controller: {namespace: previews}
"#;
        let err = Config::parse(text, "t").unwrap_err().to_string();
        for key in [
            "github.pollInterval",
            "github.repositories[1].repository",
            "github.repositories[1].namespace",
            "github.repositories[1].project",
            "github.repositories[1].serverId",
            "github.repositories[2].namespace",
            "github.repositories[3].spec.pullRequest",
            "github.repositories[3].spec",
        ] {
            assert!(err.contains(key), "missing {key} in {err}");
        }
        assert!(!err.contains("repositories[0]"), "{err}");
    }

    #[test]
    fn semantic_problems_name_their_keys() {
        let text = r#"
pools:
  - name: ports
    type: Port
    range: {start: 9000, end: 8000}
  - name: ports
    type: RedisDatabase
leaderElection:
  leaseDuration: 2s
  retryPeriod: 5s
server:
  listen: nowhere
forge:
  organization: demo
  requestTimeout: soon
"#;
        let err = Config::parse(text, "t").unwrap_err().to_string();
        for key in [
            "pools[0].range",
            "pools[1].name",
            "pools[1].redisUrlSecretRef",
            "leaderElection.retryPeriod",
            "server.listen",
            "forge.requestTimeout",
        ] {
            assert!(err.contains(key), "missing {key} in {err}");
        }
    }
}
