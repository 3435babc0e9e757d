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
pub use crate::logic::allocation::{NamedResource, Pool, PoolKind, PortRange};
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
        match (forge, pools, github, controller, leader_election, server) {
            (Some(forge), Some(pools), Some(github), Some(controller), Some(leader_election), Some(server))
                if out.is_empty() =>
            {
                Ok(Config { forge, pools, github, controller, leader_election, server })
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
        Some(Pool { name: self.name, kind })
    }
}

/// The file as users write it: what serde reads, before [`Config::parse`] checks and
/// types it. The field docs here are the reference of the file's keys.
mod raw {
    use serde::Deserialize;

    use super::{ControllerKind, ForkPolicy, NamedResource, NamespacedSecretKeyRef, PortRange, RepositoryTemplate};
    use crate::api::shared_resource_claim::ResourceType;

    /// The whole file.
    #[derive(Debug, Default, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Config {
        /// Defaults for Forge.
        #[serde(default)]
        pub forge: Option<Forge>,
        /// Pools that SharedResourceClaims allocate from.
        #[serde(default)]
        pub pools: Vec<Pool>,
        /// GitHub integration.
        #[serde(default)]
        pub github: Option<Github>,
        /// Controller tuning.
        #[serde(default)]
        pub controller: Controller,
        /// Leader election.
        #[serde(default)]
        pub leader_election: LeaderElection,
        /// HTTP server for metrics, health and webhooks.
        #[serde(default)]
        pub server: Server,
    }

    /// `forge:`, defaults for Forge.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Forge {
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

    fn default_forge_url() -> String {
        "https://forge.laravel.com/api".into()
    }
    fn default_rate() -> u32 {
        60
    }
    fn default_forge_timeout() -> String {
        "30s".into()
    }

    /// One of `pools:`. Which settings apply depends on `type`.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Pool {
        /// Pool name, referenced by `spec.pool`.
        pub name: String,
        /// The resource type it hands out.
        #[serde(rename = "type")]
        pub type_: ResourceType,
        /// Port (required): inclusive range.
        pub range: Option<PortRange>,
        /// Port: values never handed out.
        pub deny: Option<Vec<u32>>,
        /// Port: dynamic (unrequested) claims take values from here up, so static
        /// requests below it rarely collide.
        pub dynamic_from: Option<u32>,
        /// Domain (required): the base domain labels are allocated under.
        pub base_domain: Option<String>,
        /// RedisDatabase (required): Secret holding the Redis URL.
        pub redis_url_secret_ref: Option<NamespacedSecretKeyRef>,
        /// RedisDatabase: database numbers never handed out (0 is always reserved).
        pub reserved: Option<Vec<u32>>,
        /// Database (required): Forge server id.
        pub server_id: Option<i64>,
        /// Database: name prefix.
        pub prefix: Option<String>,
        /// Volume and Network (required, not empty): the named resources and their capacity.
        pub resources: Option<Vec<NamedResource>>,
    }

    /// `github:`, the GitHub integration.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Github {
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

    fn default_github_url() -> String {
        "https://api.github.com".into()
    }
    fn default_poll() -> String {
        "5m".into()
    }

    /// `controller:`, controller tuning.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Controller {
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

    impl Default for Controller {
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

    /// `leaderElection:`, leader election on a Lease.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct LeaderElection {
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

    impl Default for LeaderElection {
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

    /// `server:`, the HTTP server.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Server {
        #[serde(default = "default_listen")]
        pub listen: String,
    }

    impl Default for Server {
        fn default() -> Self {
            Self { listen: default_listen() }
        }
    }

    fn default_listen() -> String {
        "0.0.0.0:8080".into()
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

    /// The problems of `text`, which must not load.
    fn problems(text: &str) -> String {
        Config::parse(text, "t").unwrap_err().to_string()
    }

    #[test]
    fn durations_are_parsed_at_load_with_the_documented_defaults() {
        let c = Config::parse("", "t").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.controller.requeue_interval, Duration::from_secs(600));
        assert_eq!(c.leader_election.lease_duration, Duration::from_secs(15));
        assert_eq!(c.leader_election.retry_period, Duration::from_secs(2));
        assert_eq!(c.server.listen, "0.0.0.0:8080".parse::<SocketAddr>().unwrap());
        let text = r#"
forge: {organization: demo}
github:
  tokenSecretRef: {namespace: sy, name: gh, key: token}
  webhookSecretRef: {namespace: sy, name: gh, key: webhook}
"#;
        let c = Config::parse(text, "t").unwrap();
        let forge = c.forge.unwrap();
        assert_eq!(forge.request_timeout, Duration::from_secs(30));
        assert_eq!((forge.base_url.as_str(), forge.rate_limit_per_minute), ("https://forge.laravel.com/api", 60));
        let github = c.github.unwrap();
        assert_eq!(github.poll_interval, Duration::from_secs(300));
        assert_eq!((github.api_url.as_str(), github.fork_policy), ("https://api.github.com", ForkPolicy::Deny));
        let c = Config::parse("controller: {requeueInterval: 1h30m}\nleaderElection: {retryPeriod: 250ms}\n", "t");
        let c = c.unwrap();
        assert_eq!(c.controller.requeue_interval, Duration::from_secs(5400));
        assert_eq!(c.leader_election.retry_period, Duration::from_millis(250));
    }

    #[test]
    fn an_unparsable_duration_is_a_load_error_naming_its_key() {
        let github = "github:\n  tokenSecretRef: {namespace: sy, name: gh, key: t}\n  webhookSecretRef: {namespace: sy, name: gh, key: w}\n";
        for (text, key) in [
            ("controller:\n  requeueInterval: 5x\n".to_string(), "controller.requeueInterval"),
            ("leaderElection:\n  leaseDuration: 5x\n".to_string(), "leaderElection.leaseDuration"),
            ("leaderElection:\n  retryPeriod: 5x\n".to_string(), "leaderElection.retryPeriod"),
            ("forge:\n  organization: demo\n  requestTimeout: 5x\n".to_string(), "forge.requestTimeout"),
            (format!("{github}  pollInterval: 5x\n"), "github.pollInterval"),
        ] {
            let err = problems(&text);
            assert!(err.contains(&format!("{key}: invalid duration \"5x\"")), "{key}: {err}");
            assert_eq!(err.matches("  - ").count(), 1, "only the duration is wrong: {err}");
        }
    }

    #[test]
    fn pools_load_as_the_variant_of_their_type() {
        let text = r#"
pools:
  - {name: ports, type: Port, range: {start: 8000, end: 8100}, deny: [8080], dynamicFrom: 8050}
  - {name: web, type: Domain, baseDomain: preview.example.com}
  - {name: redis, type: RedisDatabase, redisUrlSecretRef: {namespace: sy, name: redis, key: url}, reserved: [1]}
  - {name: db, type: Database, serverId: 7, prefix: pr_}
  - {name: vols, type: Volume, resources: [{name: vol-a, capacity: 2}, {name: vol-b}]}
  - {name: nets, type: Network, resources: [{name: net-a}]}
"#;
        let c = Config::parse(text, "t").unwrap();
        let kinds: Vec<_> = c.pools.iter().map(|p| p.kind.clone()).collect();
        assert_eq!(
            kinds,
            [
                PoolKind::Port {
                    range: PortRange { start: 8000, end: 8100 },
                    deny: vec![8080],
                    dynamic_from: Some(8050)
                },
                PoolKind::Domain { base_domain: "preview.example.com".into() },
                PoolKind::RedisDatabase {
                    redis_url_secret_ref: NamespacedSecretKeyRef {
                        namespace: "sy".into(),
                        name: "redis".into(),
                        key: "url".into()
                    },
                    reserved: vec![1],
                },
                PoolKind::Database { server_id: 7, prefix: Some("pr_".into()) },
                PoolKind::Volume {
                    resources: vec![
                        NamedResource { name: "vol-a".into(), capacity: 2 },
                        NamedResource { name: "vol-b".into(), capacity: 1 },
                    ],
                },
                PoolKind::Network { resources: vec![NamedResource { name: "net-a".into(), capacity: 1 }] },
            ]
        );
        let types: Vec<_> = c.pools.iter().map(Pool::type_).collect();
        use ResourceType::*;
        assert_eq!(types, [Port, Domain, RedisDatabase, Database, Volume, Network]);
        assert_eq!(c.pool("redis").map(Pool::type_), Some(RedisDatabase));
    }

    #[test]
    fn each_pool_type_needs_its_settings_and_no_other_types() {
        let secret = "redisUrlSecretRef: {namespace: sy, name: redis, key: url}";
        for (pool, problem) in [
            ("{name: p, type: Port}".to_string(), "pools[0].range: required for a Port pool"),
            ("{name: p, type: Domain}".into(), "pools[0].baseDomain: required for a Domain pool"),
            ("{name: p, type: RedisDatabase}".into(), "pools[0].redisUrlSecretRef: required for a RedisDatabase pool"),
            ("{name: p, type: Database}".into(), "pools[0].serverId: required for a Database pool"),
            ("{name: p, type: Volume}".into(), "pools[0].resources: required for a Volume pool"),
            ("{name: p, type: Network, resources: []}".into(), "pools[0].resources: required for a Network pool"),
            (
                "{name: p, type: Port, range: {start: 1, end: 2}, baseDomain: x.example}".into(),
                "pools[0].baseDomain: not a setting of a Port pool",
            ),
            (
                "{name: p, type: Domain, baseDomain: x.example, range: {start: 1, end: 2}}".into(),
                "pools[0].range: not a setting of a Domain pool",
            ),
            (
                format!("{{name: p, type: RedisDatabase, {secret}, deny: [1]}}"),
                "pools[0].deny: not a setting of a RedisDatabase pool",
            ),
            (
                "{name: p, type: Database, serverId: 1, reserved: []}".into(),
                "pools[0].reserved: not a setting of a Database pool",
            ),
            (
                "{name: p, type: Volume, resources: [{name: v}], serverId: 1}".into(),
                "pools[0].serverId: not a setting of a Volume pool",
            ),
            (
                format!("{{name: p, type: Network, resources: [{{name: n}}], {secret}}}"),
                "pools[0].redisUrlSecretRef: not a setting of a Network pool",
            ),
            (
                "{name: p, type: Domain, baseDomain: x.example, prefix: a_}".into(),
                "pools[0].prefix: not a setting of a Domain pool",
            ),
            (
                "{name: p, type: Port, range: {start: 1, end: 2}, dynamicFrom: 3}".into(),
                "pools[0].dynamicFrom: 3 is outside range 1-2",
            ),
            ("{name: p, type: Port, range: {start: 0, end: 2}}".into(), "pools[0].range: 0-2 must satisfy"),
            (
                "{name: p, type: Volume, resources: [{name: v, capacity: 0}]}".into(),
                "pools[0].resources[0].capacity: must be at least 1",
            ),
        ] {
            let err = problems(&format!("pools:\n  - {pool}\n"));
            assert!(err.contains(problem), "{pool}: missing {problem:?} in {err}");
        }
        // Another pool's mistakes do not hide this one's.
        let err =
            problems("pools:\n  - {name: a, type: Port}\n  - {name: b, type: Domain, range: {start: 1, end: 2}}\n");
        assert!(err.contains("pools[0].range: required") && err.contains("pools[1].range: not a setting"), "{err}");
        assert!(err.contains("pools[1].baseDomain: required"), "{err}");
    }

    /// A `format!` template with `{{`/`}}` unescaped and every `{name}` taken from `values`.
    fn fill(template: &str, values: &[(&str, &str)]) -> String {
        let (mut out, mut rest) = (String::new(), template);
        while let Some(at) = rest.find(['{', '}']) {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                out.push_str(&tail[..1]);
                rest = &tail[2..];
                continue;
            }
            let end = tail.find('}').unwrap_or_else(|| panic!("unclosed placeholder in {template}"));
            let name = &tail[1..end];
            let value = values.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no value for {{{name}}}"));
            out.push_str(value.1);
            rest = &tail[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// The raw string literal (`r#"…"#`) of `source` that contains `needle`.
    fn raw_string_with<'a>(source: &'a str, needle: &str) -> &'a str {
        let at = source.find(needle).unwrap_or_else(|| panic!("{needle:?} not found"));
        let start = source[..at].rfind("r#\"").expect("raw string start") + 3;
        let end = at + source[at..].find("\"#").expect("raw string end");
        &source[start..end]
    }

    /// The fenced block of `markdown` that contains `needle`.
    fn fenced_block_with<'a>(markdown: &'a str, needle: &str) -> &'a str {
        let at = markdown.find(needle).unwrap_or_else(|| panic!("{needle:?} not found"));
        let start = markdown[..at].rfind("```yaml\n").expect("block start") + "```yaml\n".len();
        let end = at + markdown[at..].find("```").expect("block end");
        &markdown[start..end]
    }

    #[test]
    fn the_example_configs_in_the_repository_load() {
        let values: serde_yaml::Value =
            serde_yaml::from_str(include_str!("../charts/switchyard/values.yaml")).expect("values.yaml");
        let chart = serde_yaml::to_string(&values["config"]).expect("chart config");
        let readme = include_str!("../README.md");
        let demo = include_str!("../e2e/demo.sh");
        let demo = &demo[demo.find("<<YAML\n").expect("demo config") + 7..];
        let demo = demo[..demo.find("\nYAML").expect("demo config end")]
            .replace("$FORGE_PORT", "8081")
            .replace("$OP_PORT", "8082");
        let placeholders = [
            ("ns", "test-ns"),
            ("port", "8080"),
            ("forge", "http://127.0.0.1:8081/api"),
            ("rate", "60"),
            ("requeue", "10m"),
            ("timeout", "30s"),
            ("extra", ""),
        ];
        let claims = fill(raw_string_with(include_str!("../tests/claims.rs"), "pools:"), &placeholders);
        let previews = fill(raw_string_with(include_str!("../tests/preview_support/mod.rs"), "pools:"), &placeholders);
        for (origin, text) in [
            ("charts/switchyard/values.yaml", chart),
            ("README.md Configuration", fenced_block_with(readme, "pools:").to_string()),
            ("README.md GitHub", fenced_block_with(readme, "github:\n").to_string()),
            ("e2e/demo.sh", demo),
            ("tests/claims.rs", claims),
            ("tests/preview_support/mod.rs", previews),
        ] {
            if let Err(e) = Config::parse(&text, origin) {
                panic!("{e}\n---\n{text}");
            }
        }
    }
}
