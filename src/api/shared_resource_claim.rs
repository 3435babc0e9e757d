//! `SharedResourceClaim`: a race-free hold on a port, domain, volume, network,
//! Redis database number or database from a pool in the operator config.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// A request for a value from a shared pool, held exclusively or shared up to a capacity.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "switchyard.dev",
    version = "v1alpha1",
    kind = "SharedResourceClaim",
    namespaced,
    status = "SharedResourceClaimStatus",
    shortname = "src",
    shortname = "claim",
    category = "switchyard",
    doc = "A race-free hold on a port, domain, volume, network, Redis database number or database from a pool in the operator config.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Pool", type_ = "string", json_path = ".spec.pool"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Value", type_ = "string", json_path = ".status.value"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type != 'Port' || !has(self.value) || (self.value.matches('^[0-9]{1,5}$') && int(self.value) >= 1 && int(self.value) <= 65535)").message("a Port value must be a number from 1 to 65535").field_path(".value"))]
#[x_kube(validation = Rule::new("self.type != 'RedisDatabase' || !has(self.value) || self.value.matches('^[0-9]{1,5}$')").message("a RedisDatabase value must be a database number").field_path(".value"))]
#[x_kube(validation = Rule::new("self.mode == 'Shared' || !has(self.capacity)").message("capacity applies only to mode Shared").field_path(".capacity"))]
#[x_kube(validation = Rule::new("self.conflictPolicy != 'Reassign' || self.type == 'Port' || self.type == 'RedisDatabase'").message("conflictPolicy Reassign applies only to Port and RedisDatabase claims").field_path(".conflictPolicy"))]
#[x_kube(validation = Rule::new("self.conflictPolicy != 'SubdomainSeparate' || self.type == 'Domain'").message("conflictPolicy SubdomainSeparate applies only to Domain claims").field_path(".conflictPolicy"))]
pub struct SharedResourceClaimSpec {
    /// Kind of resource. Immutable.
    #[serde(rename = "type")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("type is immutable"))]
    pub type_: ResourceType,

    /// Name of a pool of this type in the operator config. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("pool is immutable"))]
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 63))]
    pub pool: String,

    /// A specific value to hold (a port number, domain label, database number or
    /// resource name). Absent: the lowest free value of the pool's dynamic band.
    #[schemars(length(min = 1, max = 253))]
    pub value: Option<String>,

    /// Whether other claims may hold the same value.
    #[serde(default)]
    pub mode: ClaimMode,

    /// With mode Shared: how many claims may hold the value at once.
    #[schemars(range(min = 1, max = 1000))]
    pub capacity: Option<i32>,

    /// The claim expires this long after it was bound unless renewed by changing
    /// `renewedAt` (`24h`).
    #[x_kube(validation = Rule::new("duration(self) >= duration('10s') && duration(self) <= duration('8760h')").message("ttl must be between 10s and 8760h"))]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub ttl: Option<String>,

    /// Renews a claim with a ttl: set to the current time (RFC 3339) to push expiry out.
    pub renewed_at: Option<Time>,

    /// What to do when the requested value is held by another claim.
    #[serde(default)]
    pub conflict_policy: ConflictPolicy,

    /// What happens to the resource's data when the claim is released.
    #[serde(default)]
    pub reclaim_policy: ReclaimPolicy,
}

/// Kind of shared resource.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub enum ResourceType {
    Port,
    Domain,
    Volume,
    Network,
    RedisDatabase,
    Database,
}

/// Exclusive or shared hold.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ClaimMode {
    /// Only this claim holds the value.
    #[default]
    Exclusive,
    /// Up to `capacity` claims hold the value.
    Shared,
}

/// Conflict resolution.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ConflictPolicy {
    /// Report the conflict (phase Conflicted) and wait for the holder to go.
    #[default]
    Fail,
    /// Take the next free value instead.
    Reassign,
    /// Take a distinct label under the same base domain.
    SubdomainSeparate,
}

/// What release does to data.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ReclaimPolicy {
    /// Clean up on release (for a Redis database: `FLUSHDB`).
    #[default]
    Delete,
    /// Leave data in place.
    Retain,
}

/// Lifecycle phase of a claim.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ClaimPhase {
    /// Waiting for a value.
    #[default]
    Pending,
    /// Holding a value.
    Bound,
    /// The requested value is held by another claim.
    Conflicted,
    /// The ttl passed; the value was released.
    Expired,
    /// The value was released.
    Released,
    /// The record of the hold vanished or the value left the pool.
    Lost,
}

/// Observed state of a SharedResourceClaim.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SharedResourceClaimStatus {
    /// `Ready`, `Reconciling`, `Stalled`.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Generation of the spec the status describes.
    pub observed_generation: Option<i64>,
    /// Lifecycle phase.
    pub phase: Option<ClaimPhase>,
    /// The allocated value.
    pub value: Option<String>,
    /// Name of the Lease that records the hold.
    pub lease: Option<String>,
    /// The object holding the requested value, when Conflicted (`namespace/name`).
    pub holder: Option<String>,
    /// How a conflict was resolved (`Reassigned from 8080`, `Separate subdomain`).
    pub resolution: Option<String>,
    /// When the value was bound.
    pub bound_at: Option<Time>,
    /// When the hold expires.
    pub expires_at: Option<Time>,
}
