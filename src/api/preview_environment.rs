//! `PreviewEnvironment`: one running preview of one pull request of one repository.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::{DeletionPolicy, LocalObjectRef, SecretKeyRef};

/// A preview of one pull request: a Forge site with its database, Redis database,
/// `.env`, queue workers, certificate and deployment, torn down on delete or expiry.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "switchyard.dev",
    version = "v1alpha1",
    kind = "PreviewEnvironment",
    namespaced,
    status = "PreviewEnvironmentStatus",
    shortname = "pe",
    shortname = "preview",
    category = "switchyard",
    doc = "A preview of one pull request: a Forge site with its database, Redis database, .env, queue workers, certificate and deployment.",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "PR", type_ = "integer", json_path = ".spec.pullRequest"),
    printcolumn(name = "URL", type_ = "string", json_path = ".status.url"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.domain) && has(self.domainTemplate))").message("domain and domainTemplate are mutually exclusive").field_path(".domain"))]
#[x_kube(validation = Rule::new("!has(self.graphRef) || has(self.stack)").message("graphRef requires stack: gating compares environments of the same stack").field_path(".stack"))]
#[x_kube(validation = Rule::new("has(self.className) == has(oldSelf.className)").message("className is immutable").field_path(".className"))]
pub struct PreviewEnvironmentSpec {
    /// GitHub repository in `owner/name` form. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("repository is immutable"))]
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$"))]
    pub repository: String,

    /// Pull request number. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("pullRequest is immutable"))]
    #[schemars(range(min = 1))]
    pub pull_request: i64,

    /// Git branch the site deploys (the pull request's head branch).
    #[schemars(length(min = 1, max = 255))]
    pub branch: String,

    /// Commit SHA of the pull request head. Changing it triggers a redeploy.
    #[schemars(regex(pattern = r"^[0-9a-f]{7,40}$"))]
    pub head_sha: Option<String>,

    /// Short project name; part of the database name (`pr_<n>_<project>`). Immutable:
    /// renaming would leave the old database behind.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]*$"), length(max = 40))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("project is immutable (it names the database)"))]
    pub project: String,

    /// The PreviewClass (cluster-scoped, set up by platform admins) that says which Forge
    /// server, organization, token and database credentials the environment uses and
    /// what it may choose; the class annotated `switchyard.dev/is-default-class: "true"`
    /// when absent. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("className is immutable"))]
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"), length(max = 253))]
    pub class_name: Option<String>,

    /// Full domain of the site. Mutually exclusive with `domainTemplate`; when both are
    /// absent the domain is `pr-<n>.<base domain from the operator config>`.
    #[schemars(regex(pattern = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"))]
    pub domain: Option<String>,

    /// Domain with placeholders `{number}`, `{branch}` and `{project}`, e.g.
    /// `pr-{number}.preview.example.com`.
    #[x_kube(validation = Rule::new("self.contains('{number}') || self.contains('{branch}')").message("domainTemplate must contain {number} or {branch} so environments get distinct domains"))]
    #[schemars(length(min = 1, max = 253))]
    pub domain_template: Option<String>,

    /// Forge site settings.
    #[serde(default)]
    pub site: SiteSettings,

    /// The site's database and how to fill it. Absent means no database.
    pub database: Option<DatabaseSettings>,

    /// A Redis database number for the site, claimed from a pool. Absent means none.
    pub redis: Option<RedisSettings>,

    /// Extra `.env` entries, literal or from Secrets. Generated keys (`APP_URL`, `DB_*`,
    /// `REDIS_*`) are set by the operator and cannot be overridden here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    #[x_kube(validation = Rule::new("self.all(e, !(e.name in ['APP_URL','DB_CONNECTION','DB_HOST','DB_PORT','DB_DATABASE','DB_USERNAME','DB_PASSWORD','REDIS_DB','REDIS_PREFIX']))").message("env must not set keys the operator generates (APP_URL, DB_*, REDIS_DB, REDIS_PREFIX)"))]
    pub env: Vec<EnvVar>,

    /// Queue workers (Forge background processes) running `php artisan queue:work`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]), length(max = 20))]
    pub workers: Vec<QueueWorker>,

    /// TLS for the site's domain.
    #[serde(default)]
    pub tls: TlsSettings,

    /// How the site is deployed.
    #[serde(default)]
    pub deploy: DeploySettings,

    /// Lifetime after creation (`72h`), at most the class's `limits.maxTtl`; the class's
    /// `limits.defaultTtl` when absent. The operator deletes the object when it expires.
    #[x_kube(validation = Rule::new("duration(self) >= duration('1m')").message("ttl must be at least 1m"))]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub ttl: Option<String>,

    /// What happens to remote objects when this object is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Stack this environment belongs to; with `graphRef`, environments of the
    /// repository's dependencies in the same stack must be Ready first.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 63))]
    pub stack: Option<String>,

    /// A RepoDependencyGraph in this namespace that gates this environment.
    pub graph_ref: Option<LocalObjectRef>,
}

/// Forge site type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SiteType {
    #[default]
    Laravel,
    Symfony,
    Statamic,
    Php,
    StaticHtml,
    Other,
}

/// Forge site settings.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.isolatedUser) || self.isolated").message("isolatedUser requires isolated: true").field_path(".isolatedUser"))]
pub struct SiteSettings {
    /// Site type.
    #[serde(rename = "type", default)]
    pub type_: SiteType,
    /// PHP version, as Forge's API names them (its `PhpVersion` enum).
    #[serde(default = "default_php")]
    #[schemars(extend("enum" = [
        "php5", "php56-old", "php56", "php70", "php71", "php72", "php73", "php74",
        "php80", "php81", "php82", "php83", "php84", "php85"
    ]))]
    pub php_version: String,
    /// Web directory relative to the site root; the class's default (else `/public`) when absent.
    #[schemars(regex(pattern = r"^/[^\s]*$"))]
    pub web_directory: Option<String>,
    /// Run the site as its own isolated Linux user; `false` only where the class's
    /// `site.isolation` is `Optional`.
    #[serde(default = "default_true")]
    pub isolated: bool,
    /// Isolated user name; derived from the PR number and project when absent.
    #[schemars(regex(pattern = r"^[a-z][-a-z0-9_]*$"), length(max = 32))]
    #[x_kube(validation = Rule::new("!(self in ['forge','root','www-data','mysql','redis','backup','admin','nobody','isolated'])").message("isolatedUser is a name Forge reserves"))]
    pub isolated_user: Option<String>,
}

impl Default for SiteSettings {
    fn default() -> Self {
        Self {
            type_: SiteType::default(),
            php_version: default_php(),
            web_directory: None,
            isolated: true,
            isolated_user: None,
        }
    }
}

fn default_php() -> String {
    "php84".into()
}
fn default_true() -> bool {
    true
}

/// How a preview database is filled.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CloneStrategy {
    /// Server-side copy over a direct MySQL connection: tables in parallel, views, triggers.
    Clone,
    /// `mysqldump | mysql` run on the server as a Forge site command.
    Dump,
    /// An empty database.
    #[default]
    Empty,
}

/// The environment's database.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.strategy == 'empty' || has(self.snapshot)").message("snapshot is required unless strategy is empty").field_path(".snapshot"))]
pub struct DatabaseSettings {
    /// Name of the snapshot database on the same server to copy from; one of the class's `database.snapshots`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_]{1,63}$"))]
    pub snapshot: Option<String>,
    /// How the database is filled from the snapshot (`clone` uses the class's admin credentials).
    #[serde(default)]
    pub strategy: CloneStrategy,
}

/// The environment's Redis database.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedisSettings {
    /// Name of a `RedisDatabase` pool in the operator config; the class's `redis.pool`
    /// when absent, and only that one when set.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 63))]
    pub pool: Option<String>,
}

/// One `.env` entry.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.value) != has(self.valueFrom)").message("exactly one of value and valueFrom must be set"))]
pub struct EnvVar {
    /// Variable name.
    #[schemars(regex(pattern = r"^[A-Z_][A-Z0-9_]*$"), length(max = 128))]
    pub name: String,
    /// Literal value.
    pub value: Option<String>,
    /// Value from a Secret key.
    pub value_from: Option<EnvVarSource>,
}

/// Where an env value comes from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvVarSource {
    /// A key of a Secret in this namespace.
    pub secret_key_ref: SecretKeyRef,
}

/// A queue worker.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueWorker {
    /// Worker name, unique within the environment.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 40))]
    pub name: String,
    /// Queue connection.
    #[serde(default = "default_connection")]
    #[schemars(regex(pattern = r"^[a-z0-9_-]+$"))]
    pub connection: String,
    /// Comma-separated queue names.
    #[serde(default = "default_queue")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_,:-]+$"))]
    pub queue: String,
    /// Number of processes.
    #[serde(default = "default_processes")]
    #[schemars(range(min = 1, max = 32))]
    pub processes: i32,
    /// Seconds a job may run.
    #[schemars(range(min = 0, max = 86400))]
    pub timeout: Option<i32>,
    /// Attempts before a job fails.
    #[schemars(range(min = 0, max = 100))]
    pub tries: Option<i32>,
}

fn default_connection() -> String {
    "redis".into()
}
fn default_queue() -> String {
    "default".into()
}
fn default_processes() -> i32 {
    1
}

/// TLS for the site.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSettings {
    /// Request a Let's Encrypt certificate for the domain.
    #[serde(default = "default_true")]
    pub lets_encrypt: bool,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self { lets_encrypt: true }
    }
}

/// How the site is deployed.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploySettings {
    /// Deployment script; the class's script when absent. Set only where the class allows
    /// custom scripts (`deploy.allowCustomScript`).
    #[schemars(length(max = 65536))]
    pub script: Option<String>,
    /// Let Forge deploy on every push to the branch.
    #[serde(default)]
    pub push_to_deploy: bool,
    /// Change this value to request a redeploy of the same head.
    #[schemars(length(max = 63))]
    pub redeploy_token: Option<String>,
}

/// Observed state of a PreviewEnvironment.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewEnvironmentStatus {
    /// `Ready`, `Reconciling`, `Stalled`, and one per step: `DatabaseReady`, `SiteReady`,
    /// `EnvironmentReady`, `WorkersReady`, `CertificateReady`, `Deployed`, `DependenciesReady`.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Generation of the spec the status describes.
    pub observed_generation: Option<i64>,
    /// Public URL of the preview.
    pub url: Option<String>,
    /// Where the environment acts, recorded before its first remote object: teardown
    /// acts only there, even if the class changed since.
    pub target: Option<RecordedTarget>,
    /// Domain of the site.
    pub domain: Option<String>,
    /// Forge site id.
    pub site_id: Option<i64>,
    /// Forge database schema id.
    pub database_id: Option<i64>,
    /// Forge database user id.
    pub database_user_id: Option<i64>,
    /// Database name.
    pub database_name: Option<String>,
    /// Database user name.
    pub database_user: Option<String>,
    /// Whether the database was filled from the snapshot (a `clone` or `dump` ran to completion).
    pub database_seeded: Option<bool>,
    /// Secret (owned by this object) holding the generated database password and `APP_KEY`.
    pub credentials_secret: Option<String>,
    /// Redis database number from the claim.
    pub redis_database: Option<i32>,
    /// Name of the SharedResourceClaim holding the Redis database.
    pub redis_claim: Option<String>,
    /// Forge background process ids of the queue workers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub worker_ids: Vec<i64>,
    /// Forge domain record id.
    pub domain_id: Option<i64>,
    /// Forge certificate id.
    pub certificate_id: Option<i64>,
    /// Consecutive failed certificate requests; the next retry waits 15 s doubling to 10 min.
    pub certificate_failures: Option<i32>,
    /// SHA-256 of the last `.env` written, to write only when it differs.
    pub environment_hash: Option<String>,
    /// The most recent deployment.
    pub last_deployment: Option<LastDeployment>,
    /// A deployment about to be triggered, recorded first so that after a crash the
    /// deployment it started is adopted instead of triggering another.
    pub deployment_request: Option<DeploymentRequest>,
    /// When the environment expires (from `spec.ttl`).
    pub expires_at: Option<Time>,
    /// The pull request comment that reports this environment (GitHub integration);
    /// written only by the comment controller, under its own field manager.
    pub pull_request_comment: Option<super::pull_request_comment::PullRequestComment>,
}

/// The class, Forge API, organization and server an environment was first reconciled
/// against.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordedTarget {
    /// The PreviewClass.
    pub class_name: String,
    /// The Forge API base URL.
    pub base_url: String,
    /// The Forge organization.
    pub organization: String,
    /// The Forge server id.
    pub server_id: i64,
}

/// A deployment as observed on Forge.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastDeployment {
    /// Forge deployment id.
    pub id: i64,
    /// Forge deployment status (`queued`, `deploying`, `finished`, `failed`, ...).
    pub status: String,
    /// Commit deployed.
    pub sha: Option<String>,
    /// Redeploy token the deployment answered.
    pub redeploy_token: Option<String>,
    /// Hash of the `.env` the deployment ran with.
    pub environment_hash: Option<String>,
    /// Consecutive attempts for this sha, token and `.env` (failed ones are retried with backoff).
    pub attempts: Option<i32>,
    /// When the deployment started.
    pub started_at: Option<Time>,
    /// When the deployment ended.
    pub finished_at: Option<Time>,
}

/// A deployment the operator is about to trigger.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRequest {
    /// The newest Forge deployment id before triggering; a newer one is the answer.
    pub after_id: Option<i64>,
    /// Commit SHA to deploy.
    pub sha: Option<String>,
    /// Redeploy token being answered.
    pub redeploy_token: Option<String>,
    /// Hash of the `.env` being deployed.
    pub environment_hash: Option<String>,
    /// Attempt number for this target.
    pub attempt: i32,
    /// When the request was made.
    pub requested_at: Option<Time>,
}
