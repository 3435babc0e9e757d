//! The custom resources of `switchyard.dev/v1alpha1`, one file per kind, and
//! the small types they share.
//!
//! Everything here becomes CRD schema: doc comments are what `kubectl explain`
//! prints, and CEL rules (`x_kube(validation = ...)`) reject what the schema alone
//! cannot express, so bad input fails at `kubectl apply` rather than in a reconcile.

// Several `printcolumn(...)` entries share `type_ = "string"`; clippy mistakes those
// for one attribute given twice.
#![allow(clippy::duplicated_attributes)]

pub mod branch;
pub mod bridge_grant;
pub mod conditions;
pub mod preview_class;
pub mod preview_environment;
pub mod pull_request_comment;
pub mod repo_dependency_graph;
pub mod shared_resource_claim;

pub use branch::{Branch, BranchSpec, BranchStatus};
pub use bridge_grant::{BridgeGrant, BridgeGrantSpec, BridgeGrantStatus};
pub use preview_class::{PreviewClass, PreviewClassSpec, PreviewClassStatus};
pub use preview_environment::{PreviewEnvironment, PreviewEnvironmentSpec, PreviewEnvironmentStatus};
pub use repo_dependency_graph::{RepoDependencyGraph, RepoDependencyGraphSpec, RepoDependencyGraphStatus};
pub use shared_resource_claim::{SharedResourceClaim, SharedResourceClaimSpec, SharedResourceClaimStatus};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of every switchyard resource.
pub const GROUP: &str = "switchyard.dev";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";

/// Every CRD the operator serves, in a stable order (the order of `switchyard crd`).
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    vec![
        Branch::crd(),
        BridgeGrant::crd(),
        PreviewClass::crd(),
        PreviewEnvironment::crd(),
        RepoDependencyGraph::crd(),
        SharedResourceClaim::crd(),
    ]
}

/// All CRDs as one multi-document YAML stream, exactly what `crds/` holds.
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in all_crds() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}

/// A key in a Secret in the object's own namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret, in the same namespace as the referring object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A key in a Secret in a given namespace: how the operator's config, which is
/// cluster-scoped, references Secrets (not part of any CRD).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespacedSecretKeyRef {
    pub namespace: String,
    pub name: String,
    pub key: String,
}

/// A reference to another object of a known kind in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
pub struct LocalObjectRef {
    /// Name of the referenced object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// What happens to remote objects when the Kubernetes object is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete remote objects (sites, databases, workers, certificates) with the object.
    #[default]
    Delete,
    /// Leave remote objects in place; an Event names what was left.
    Orphan,
}

/// Regular expression for a Go-style duration (`90s`, `1h30m`), as the CRDs accept it.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";
