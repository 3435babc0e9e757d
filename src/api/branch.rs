//! `Branch`: one remote instance of the platform, its registration and health.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::{LocalObjectRef, SecretKeyRef};

/// A remote instance of the platform (a top branch or a master branch under it),
/// registered with its parent and probed for health.
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
    /// Base URL of the instance.
    #[schemars(regex(pattern = r"^https?://[^\s/]+(/[^\s]*)?$"), length(max = 2048))]
    pub url: String,
    /// Role of the instance.
    #[serde(rename = "type")]
    pub type_: BranchType,
    /// The parent Branch (in this namespace) this one registers with.
    pub parent_ref: Option<LocalObjectRef>,
    /// Secret key holding this instance's API key (sent as a bearer token).
    pub credentials_secret_ref: SecretKeyRef,
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
    /// Skip certificate verification. Never use outside development.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// Health probing settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("duration(self.timeout) < duration(self.interval)").message("timeout must be shorter than interval").field_path(".timeout"))]
pub struct HealthCheck {
    /// Path of the health endpoint.
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
    "/api/v1/health".into()
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
    /// `Registered` (only with a parent) and `Cordoned`.
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
    /// Hash of the registration payload last accepted, to re-register on change.
    pub registration_hash: Option<String>,
}
