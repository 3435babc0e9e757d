//! The file as users write it: what serde reads, before [`Config::parse`](super::Config::parse)
//! checks and types it. The field docs here are the reference of the file's keys.

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
    /// Where Branches may point the operator's probes and keys.
    #[serde(default)]
    pub branches: Branches,
}

/// `branches:`, the URL policy for Branch objects.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Branches {
    /// Allow `http://` Branch URLs (keys then travel in clear text); default false.
    #[serde(default)]
    pub allow_plain_http: bool,
    /// Allow `spec.tls.insecureSkipVerify: true`; default false.
    #[serde(default)]
    pub allow_insecure_skip_verify: bool,
    /// When not empty, every Branch URL's `scheme://host[:port]` must match one of
    /// these patterns (`*` matches any run of characters), e.g. `https://*.branches.example.com`.
    #[serde(default)]
    pub allowed_urls: Vec<String>,
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
    /// Namespaces whose claims may take from the pool (any type); with
    /// `namespaceSelector`, either admits. Neither: every namespace may.
    pub namespaces: Option<Vec<String>>,
    /// Namespaces (by label) whose claims may take from the pool.
    pub namespace_selector: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
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
