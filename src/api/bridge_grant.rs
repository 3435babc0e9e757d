//! `BridgeGrant`: permission for caller instances to call named bridge commands
//! of a target instance, with a rotated shared secret.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;
use std::collections::BTreeMap;

/// Permission for callers (`code@tag`, tag may be `*`) to call named bridge commands
/// of a target instance.
///
/// Each grant has its own secret, and a request is authorised by the one grant whose
/// secret verified it: a caller with several grants signs with the secret of the
/// grant that allows the command.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "switchyard.dev",
    version = "v1alpha1",
    kind = "BridgeGrant",
    namespaced,
    status = "BridgeGrantStatus",
    shortname = "bg",
    category = "switchyard",
    doc = "Permission for caller instances to call named bridge commands of a target instance, with a rotated shared secret.",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Target", type_ = "string", json_path = ".spec.target"),
    printcolumn(name = "Secret-Version", type_ = "integer", json_path = ".status.secretVersion"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct BridgeGrantSpec {
    /// The instance being called, `code` or `code@tag` (no wildcard; `code` means
    /// `code@default`; letters may be upper or lower case and are compared exactly). Immutable.
    #[x_kube(validation = Rule::new("self.matches('^[a-zA-Z0-9]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?(@[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?)?$')").message("target must be code or code@tag: code of letters, digits, '_' or '-', tag of letters, digits, '.', '_' or '-', no wildcard"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("target is immutable"))]
    #[schemars(length(min = 1, max = 127))]
    pub target: String,

    /// Callers allowed, `code`, `code@tag` or `code@*` (any tag). In the `razy`
    /// profile the caller is the body's `caller_dist`; in `signed`, `X-Bridge-Caller`.
    #[schemars(length(min = 1, max = 64), inner(length(max = 127)))]
    #[x_kube(validation = Rule::new("self.all(x, x.matches('^[a-zA-Z0-9]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?(@([a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?|[*]))?$'))").message("each caller must be code, code@tag or code@*; '*' is allowed only as a whole tag"))]
    pub from: Vec<String>,

    /// Bridge commands the callers may run (names such as `getData` or `orders.sync`), or `*` for all.
    #[schemars(length(min = 1, max = 64), inner(length(max = 128)))]
    #[x_kube(validation = Rule::new("self.all(x, x == '*' || x.matches('^[a-zA-Z][a-zA-Z0-9_.:-]{0,127}$'))").message("each command must be a name of letters, digits, '_', '.', ':' or '-' starting with a letter, or '*'"))]
    pub commands: Vec<String>,

    /// Modules (`vendor/module`) whose commands the callers may run; absent: any
    /// module, or none. A call naming a module not listed is refused (`ModuleNotAllowed`).
    #[schemars(length(min = 1, max = 64), inner(length(max = 129)))]
    #[x_kube(validation = Rule::new("self.all(x, x.matches('^[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,62}[a-zA-Z0-9])?/[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,62}[a-zA-Z0-9])?$'))").message("each module must be vendor/module"))]
    pub modules: Option<Vec<String>>,

    /// The wire the grant's secret signs: `signed` (default, switchyard's hardened
    /// form: `X-Bridge-*` headers, an HMAC over method, path, timestamp, request id,
    /// caller and body, replays refused within 5 minutes) or `razy` (the
    /// cross-distributor design: `POST /__internal/bridge` with body `{caller_dist,
    /// module, command, args}` and `X-Razy-Signature` = hex HMAC-SHA256 of the raw body;
    /// no timestamp or nonce, so only byte-identical bodies within `replayWindow` are
    /// refused). A secret verifies requests of its grant's protocol only.
    #[serde(default)]
    pub protocol: BridgeProtocol,

    /// `razy` only: how long a byte-identical body is refused as a replay through this
    /// grant (also refusing a caller's genuine identical call within it); `0s` turns it off. Default `5m`.
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub replay_window: Option<String>,

    /// Shared-secret rotation.
    #[serde(default)]
    pub secret: SecretRotation,

    /// Path prefix of the target's `signed` bridge endpoint, published in the allowlist
    /// (`<bridgePath>/<command>` or `<bridgePath>/<vendor>/<module>/<command>`). `razy`
    /// grants use the design's fixed `/__internal/bridge`.
    #[serde(default = "default_bridge_path")]
    #[schemars(regex(pattern = r"^/[^\s]*$"))]
    pub bridge_path: String,

    /// Name of the allowlist ConfigMap the target mounts; default `bridge-allowlist-<target code>`.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"), length(max = 253))]
    pub allowlist_config_map: Option<String>,

    /// Optionally, a NetworkPolicy letting the callers' pods reach the target's bridge port.
    pub network_policy: Option<BridgeNetworkPolicy>,
}

/// The wire a grant's secret signs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BridgeProtocol {
    /// switchyard's hardened form (`X-Bridge-*` headers, `v2` signature covering the caller).
    #[default]
    Signed,
    /// The cross-distributor design's wire (`POST /__internal/bridge`, `X-Razy-Signature`).
    Razy,
}

fn default_bridge_path() -> String {
    "/api/v1/bridge".into()
}

/// Secret rotation settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("duration(self.overlap) < duration(self.rotationInterval)").message("overlap must be shorter than rotationInterval").field_path(".overlap"))]
pub struct SecretRotation {
    /// How often a new secret is generated.
    #[serde(default = "default_rotation")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1m')").message("rotationInterval must be at least 1m"))]
    pub rotation_interval: String,
    /// How long the previous secret stays valid after a rotation.
    #[serde(default = "default_overlap")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub overlap: String,
}

impl Default for SecretRotation {
    fn default() -> Self {
        Self { rotation_interval: default_rotation(), overlap: default_overlap() }
    }
}

fn default_rotation() -> String {
    "720h".into()
}
fn default_overlap() -> String {
    "1h".into()
}

/// NetworkPolicy settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BridgeNetworkPolicy {
    /// Labels of the target's pods.
    #[schemars(length(min = 1))]
    pub target_pod_labels: BTreeMap<String, String>,
    /// Labels of the callers' pods.
    #[schemars(length(min = 1))]
    pub caller_pod_labels: BTreeMap<String, String>,
    /// The target's bridge port.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

/// Observed state of a BridgeGrant.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BridgeGrantStatus {
    /// `Ready`, `Reconciling`, `Stalled`.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Generation of the spec the status describes.
    pub observed_generation: Option<i64>,
    /// Name of the Secret holding the shared secret(s).
    pub secret_name: Option<String>,
    /// Version of the current secret, incremented on each rotation.
    pub secret_version: Option<i64>,
    /// When the current secret was generated.
    pub rotated_at: Option<Time>,
    /// When the next rotation is due.
    pub next_rotation_at: Option<Time>,
    /// Name of the allowlist ConfigMap.
    pub allowlist_config_map: Option<String>,
    /// Name of the NetworkPolicy, when enabled.
    pub network_policy: Option<String>,
}
