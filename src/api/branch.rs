//! `Branch`: one remote instance of the platform, its registration and health.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::{LocalObjectRef, SecretKeyRef};

/// A remote instance of the platform (a top branch or a master branch under it),
/// spoken to over the cross-branch design's API (`/api/v1/cross-branch/...`).
///
/// Who sends which key to whom: every call to a guarded route carries
/// `X-Branch-Origin: <name of the calling Branch>` and `Authorization: Bearer <that
/// Branch's key>`; the receiving instance accepts it when its registry holds that name,
/// active, with that key. So the operator registers (`register-branch`, no credentials:
/// the design keeps registration outside its middleware) this Branch with its parent
/// (`{branch_name: <this>, branch_url, branch_type, api_key: <this key>}`), and this
/// Branch's overseer — its parent, or itself when it has none — with this Branch's own
/// instance. Probes and `sync-organization` to this instance then speak as the overseer;
/// `validate-license` to the parent speaks as this Branch.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "switchyard.dev",
    version = "v1alpha1",
    kind = "Branch",
    namespaced,
    status = "BranchStatus",
    shortname = "br",
    category = "switchyard",
    doc = "A remote instance of the platform, registered with its parent and probed for health.",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "URL", type_ = "string", json_path = ".spec.url"),
    printcolumn(name = "Reachable", type_ = "string", json_path = ".status.conditions[?(@.type==\"Reachable\")].status"),
    printcolumn(name = "Latency", type_ = "integer", json_path = ".status.latencyMs", description = "Last probe latency in milliseconds"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("!has(self.spec.parentRef) || self.spec.parentRef.name != self.metadata.name").message("a Branch cannot be its own parent").field_path(".spec.parentRef.name")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type == 'Master' || !has(self.parentRef)").message("a Top branch has no parent").field_path(".parentRef"))]
pub struct BranchSpec {
    /// Base URL of the instance: https (plain http only if the operator config allows it),
    /// without user info, within the operator config's `branches.allowedUrls` if it lists any.
    #[schemars(regex(pattern = r"^https?://[^\s/]+(/[^\s]*)?$"), length(max = 2048))]
    #[x_kube(validation = Rule::new("!self.matches('^[a-zA-Z]+://[^/]*@')").message("url must not carry user info: the key belongs in credentialsSecretRef"))]
    pub url: String,
    /// Role of the instance.
    #[serde(rename = "type")]
    pub type_: BranchType,
    /// The parent Branch (in this namespace) this one registers with.
    pub parent_ref: Option<LocalObjectRef>,
    /// Secret key holding this Branch's API key: registered as its `api_key` with its
    /// parent and (for a Top, or children naming it as parent) with the instances it
    /// oversees, and sent as `Authorization: Bearer` whenever the operator speaks as it.
    pub credentials_secret_ref: SecretKeyRef,
    /// A ConfigMap or Secret (this namespace) with keys `organization` (JSON object),
    /// `users` (JSON array) and `license` (JSON, or the license key as text): pushed as
    /// `sync-organization` to every accepted child Branch, again whenever it changes.
    pub organization_ref: Option<OrganizationRef>,
    /// How often a Master re-checks its license with its parent (`validate-license`).
    #[serde(default = "default_license_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1s')").message("licenseCheckInterval must be at least 1s"))]
    pub license_check_interval: String,
    /// TLS settings for talking to the instance.
    #[serde(default)]
    pub tls: BranchTls,
    /// Health probing.
    #[serde(default)]
    pub health_check: HealthCheck,
    /// Whether the instance is accepted; `false` stops probing and registration.
    #[serde(default = "default_true")]
    pub accepted: bool,
    /// A cordoned instance keeps being probed but gets no new work.
    #[serde(default)]
    pub cordoned: bool,
}

fn default_true() -> bool {
    true
}

fn default_license_interval() -> String {
    "1h".into()
}

/// The organization source of a Branch.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationRef {
    /// `ConfigMap` or `Secret` (use a Secret when the license is confidential).
    pub kind: OrganizationSourceKind,
    /// Name of the object, in the Branch's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Kinds an organization source can be.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum OrganizationSourceKind {
    ConfigMap,
    Secret,
}

/// Role of an instance.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum BranchType {
    /// The root instance.
    Top,
    /// An instance under a top branch.
    Master,
}

/// TLS for talking to an instance.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(self.insecureSkipVerify && has(self.caSecretRef))").message("caSecretRef and insecureSkipVerify are mutually exclusive").field_path(".insecureSkipVerify"))]
pub struct BranchTls {
    /// Secret key holding a PEM CA bundle to verify the instance against.
    pub ca_secret_ref: Option<SecretKeyRef>,
    /// Skip certificate verification: only if the operator config allows it
    /// (`branches.allowInsecureSkipVerify`). Never use outside development.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// Health probing settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("duration(self.timeout) < duration(self.interval)").message("timeout must be shorter than interval").field_path(".timeout"))]
pub struct HealthCheck {
    /// Path of the health endpoint (the design's `GET /api/v1/cross-branch/health`, behind
    /// its middleware: probes speak as this Branch's overseer).
    #[serde(default = "default_health_path")]
    #[schemars(regex(pattern = r"^/[^\s]*$"))]
    pub path: String,
    /// Time between probes.
    #[serde(default = "default_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1s')").message("interval must be at least 1s"))]
    pub interval: String,
    /// Probe timeout.
    #[serde(default = "default_timeout")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub timeout: String,
    /// Consecutive failures before `Reachable` turns False.
    #[serde(default = "default_failure_threshold")]
    #[schemars(range(min = 1, max = 100))]
    pub failure_threshold: i32,
    /// Consecutive successes before `Reachable` turns True again.
    #[serde(default = "default_success_threshold")]
    #[schemars(range(min = 1, max = 100))]
    pub success_threshold: i32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            path: default_health_path(),
            interval: default_interval(),
            timeout: default_timeout(),
            failure_threshold: default_failure_threshold(),
            success_threshold: default_success_threshold(),
        }
    }
}

fn default_health_path() -> String {
    "/api/v1/cross-branch/health".into()
}
fn default_interval() -> String {
    "30s".into()
}
fn default_timeout() -> String {
    "5s".into()
}
fn default_failure_threshold() -> i32 {
    3
}
fn default_success_threshold() -> i32 {
    1
}

/// Condition: the instance answers its health probes (with hysteresis).
pub const REACHABLE: &str = "Reachable";

/// Observed state of a Branch.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BranchStatus {
    /// `Ready`, `Reconciling`, `Stalled`, `Reachable` (health with hysteresis),
    /// `Registered` (with the parent, and the overseer with this instance), `Cordoned`,
    /// `OrganizationSynced` (when the parent has an `organizationRef`) and
    /// `LicenseValid` (a Master whose parent has an organization license).
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Generation of the spec the status describes.
    pub observed_generation: Option<i64>,
    /// When the last probe ran.
    pub last_probe_at: Option<Time>,
    /// When a probe last succeeded.
    pub last_success_at: Option<Time>,
    /// Latency of the last successful probe in milliseconds.
    pub latency_ms: Option<i64>,
    /// Failed probes in a row.
    pub consecutive_failures: Option<i32>,
    /// Successful probes in a row.
    pub consecutive_successes: Option<i32>,
    /// Version the instance reports.
    pub remote_version: Option<String>,
    /// The hysteresis rule in words.
    pub grace_rule: Option<String>,
    /// When the instance was last registered with its parent.
    pub registered_at: Option<Time>,
    /// Hash of the registrations last accepted, to re-register on change.
    pub registration_hash: Option<String>,
    /// The organization last pushed to this instance with `sync-organization`.
    pub organization_sync: Option<OrganizationSync>,
    /// When the license was last checked with the parent.
    pub license_checked_at: Option<Time>,
}

/// The organization last synced to an instance.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationSync {
    /// `sha256:` digest of the body sent (it reveals nothing of it).
    pub digest: String,
    /// When the instance accepted it.
    pub synced_at: Time,
}
