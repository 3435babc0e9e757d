//! `PreviewClass`: what a PreviewEnvironment may cost and reach, chosen by the
//! platform team (cluster-scoped, like a StorageClass or cert-manager's
//! ClusterIssuer). Tenants name a class; they never name a server, an organization
//! or a credential.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::preview_environment::CloneStrategy;

/// Annotation that makes a class the one used by environments that name none.
pub const DEFAULT_CLASS_ANNOTATION: &str = "switchyard.dev/is-default-class";

/// Where previews of a class live and what their tenants may choose, set by platform admins.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "switchyard.dev",
    version = "v1alpha1",
    kind = "PreviewClass",
    status = "PreviewClassStatus",
    shortname = "pclass",
    category = "switchyard",
    doc = "Where previews of a class live (Forge organization, server, token, database credentials) and what tenants of the allowed namespaces may choose; written by platform admins.",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Server", type_ = "integer", json_path = ".spec.forge.serverId"),
    printcolumn(name = "Environments", type_ = "integer", json_path = ".status.environments"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct PreviewClassSpec {
    /// The Forge organization, server and token environments of this class use.
    pub forge: ClassForge,

    /// Namespaces whose environments may use this class (by name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub namespaces: Vec<String>,

    /// Namespaces whose environments may use this class (by label). An empty selector
    /// (`{}`) matches every namespace; with neither this nor `namespaces`, none may.
    pub namespace_selector: Option<LabelSelector>,

    /// What tenants may choose for the site.
    #[serde(default)]
    pub site: ClassSite,

    /// The deploy script environments run.
    #[serde(default)]
    pub deploy: ClassDeploy,

    /// Database credentials and what tenants may fill their database from.
    #[serde(default)]
    pub database: ClassDatabase,

    /// The Redis pool environments claim from.
    #[serde(default)]
    pub redis: ClassRedis,

    /// Domains environments get.
    #[serde(default)]
    pub domain: ClassDomain,

    /// Lifetimes.
    #[serde(default)]
    pub limits: ClassLimits,
}

/// A key of a Secret in a given namespace (only admins write classes, so the
/// reference may cross namespaces).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
pub struct ClassSecretKeyRef {
    /// Namespace of the Secret.
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// The Forge organization, server and token of a class.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassForge {
    /// Forge API base URL; the operator config's `forge.baseUrl` when absent.
    #[schemars(regex(pattern = r"^https?://"))]
    pub base_url: Option<String>,
    /// Forge organization slug.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]*$"))]
    pub organization: String,
    /// Forge server id the sites and databases are created on.
    #[schemars(range(min = 1))]
    pub server_id: i64,
    /// The Forge API token (tenants never reference it).
    pub token_secret_ref: ClassSecretKeyRef,
}

/// Whether sites must run as their own Linux user.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Isolation {
    /// Every site runs as its own isolated user; `site.isolated: false` is refused.
    #[default]
    Required,
    /// Tenants may run sites as the shared `forge` user.
    Optional,
}

/// Site rules of a class.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassSite {
    /// PHP versions tenants may pick (`php84`); empty allows any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub php_versions: Vec<String>,
    /// Whether sites must be isolated.
    #[serde(default)]
    pub isolation: Isolation,
    /// Web directory of sites whose spec names none; `/public` when absent.
    #[schemars(regex(pattern = r"^/[^\s]*$"))]
    pub web_directory: Option<String>,
}

/// Deploy rules of a class.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassDeploy {
    /// The deployment script; Forge's default when absent.
    #[schemars(length(max = 65536))]
    pub script: Option<String>,
    /// Whether an environment's `deploy.script` may replace this one. The script runs
    /// on the server as the site's user: allow it only where tenants may run commands there.
    #[serde(default)]
    pub allow_custom_script: bool,
}

/// Database rules of a class.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassDatabase {
    /// Secret with a MySQL admin URL (`mysql://user:pass@host:port`) used by strategy `clone`.
    pub admin_credentials_secret_ref: Option<ClassSecretKeyRef>,
    /// Snapshot databases tenants may fill from; empty allows none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub snapshots: Vec<String>,
    /// Fill strategies tenants may pick; empty allows every one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub strategies: Vec<CloneStrategy>,
}

/// Redis rules of a class.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassRedis {
    /// The `RedisDatabase` pool (operator config) environments claim from; without
    /// one, environments of this class get no Redis database.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 63))]
    pub pool: Option<String>,
}

/// Domain rules of a class.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassDomain {
    /// Domain template (`pr-{number}.preview.example.com`) for environments that set
    /// neither `domain` nor `domainTemplate`.
    #[x_kube(validation = Rule::new("self.contains('{number}') || self.contains('{branch}')").message("template must contain {number} or {branch}"))]
    pub template: Option<String>,
    /// Suffixes (`.preview.example.com`) an environment's domain must end with; empty allows any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub allowed_suffixes: Vec<String>,
}

/// Limits of a class.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassLimits {
    /// Environments of this class existing at once. Not enforced yet (the queue for
    /// environments over the limit belongs to the preview lifecycle).
    #[schemars(range(min = 1))]
    pub max_environments: Option<i32>,
    /// `ttl` of environments that set none.
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub default_ttl: Option<String>,
    /// Longest `ttl` an environment may set.
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub max_ttl: Option<String>,
}

/// Observed state of a PreviewClass.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewClassStatus {
    /// `Ready`, `Reconciling`, `Stalled`, `SecretsResolved`, `TokenAccepted`, `ServerExists`.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Generation of the spec the status describes.
    pub observed_generation: Option<i64>,
    /// Number of PreviewEnvironments using this class.
    pub environments: Option<i32>,
}

impl PreviewClass {
    /// Whether the class carries the default-class annotation.
    pub fn is_default(&self) -> bool {
        self.metadata.annotations.as_ref().and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION)).is_some_and(|v| v == "true")
    }
}
