//! `RepoDependencyGraph`: repositories and their dependencies, analysed into a
//! deployment order, parallel phases and cycles.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// A set of repositories and their dependencies, declared or discovered from
/// docker-compose files and Kubernetes manifests.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "switchyard.dev",
    version = "v1alpha1",
    kind = "RepoDependencyGraph",
    namespaced,
    status = "RepoDependencyGraphStatus",
    shortname = "rdg",
    category = "switchyard",
    doc = "Repositories and their dependencies, analysed into a deployment order, parallel phases and cycles.",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Repositories", type_ = "integer", json_path = ".status.repositoryCount"),
    printcolumn(name = "Phases", type_ = "integer", json_path = ".status.phaseCount"),
    printcolumn(name = "Cycles", type_ = "integer", json_path = ".status.cycleCount"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct RepoDependencyGraphSpec {
    /// The repositories of the graph.
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]), length(min = 1, max = 10000))]
    pub repositories: Vec<Repository>,
    /// Analysis options.
    #[serde(default)]
    pub options: GraphOptions,
}

/// One repository and what it depends on. A repository that depends on itself is
/// accepted and reported as a cycle, like any other.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    /// Repository in `owner/name` form.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$"))]
    pub name: String,
    /// Declared dependencies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["repository"]))]
    pub depends_on: Vec<Dependency>,
    /// Files to discover dependencies from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discovery: Vec<DiscoverySource>,
}

/// A declared dependency.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// The repository depended on (`owner/name`).
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$"))]
    pub repository: String,
    /// A required dependency gates deployment; an optional one only orders it.
    #[serde(default = "default_true")]
    pub required: bool,
}

fn default_true() -> bool {
    true
}

/// Format of a discovery file.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum DiscoveryFormat {
    /// A docker-compose file.
    Compose,
    /// Kubernetes manifests (multi-document YAML).
    Manifests,
    /// A `.env`-style file (`NAME=value` lines): the variables a compose service reads
    /// through `env_file` when its path is this source's.
    Env,
}

/// Where to read a file that reveals dependencies.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.configMapRef) != has(self.path)").message("exactly one of configMapRef and path must be set"))]
pub struct DiscoverySource {
    /// File format.
    pub format: DiscoveryFormat,
    /// A ConfigMap key in this namespace holding the file.
    pub config_map_ref: Option<ConfigMapKeyRef>,
    /// Path of the file in the repository, fetched through the GitHub contents API.
    #[schemars(regex(pattern = r"^[^/\s][^\s]*$"), length(max = 1024))]
    pub path: Option<String>,
    /// Git ref for `path` (default branch when absent).
    #[schemars(length(min = 1, max = 255))]
    pub r#ref: Option<String>,
}

/// A key in a ConfigMap.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
pub struct ConfigMapKeyRef {
    /// ConfigMap name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key in the ConfigMap's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Analysis options.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphOptions {
    /// Longest dependency chain allowed; deeper chains set `Stalled`.
    #[schemars(range(min = 1, max = 1000))]
    pub max_depth: Option<i32>,
    /// Let repositories of one phase deploy in parallel; otherwise one at a time in order.
    #[serde(default = "default_true")]
    pub allow_parallel: bool,
}

impl Default for GraphOptions {
    fn default() -> Self {
        Self { max_depth: None, allow_parallel: true }
    }
}

/// Observed state of a RepoDependencyGraph.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoDependencyGraphStatus {
    /// `Ready`, `Reconciling`, `Stalled`, `CycleDetected`, `DependencyMissing`.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Generation of the spec the status describes.
    pub observed_generation: Option<i64>,
    /// Number of repositories.
    pub repository_count: Option<i32>,
    /// Number of parallel phases.
    pub phase_count: Option<i32>,
    /// Number of cycles.
    pub cycle_count: Option<i32>,
    /// A deployment order: every repository after its dependencies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<String>,
    /// Phases: each holds repositories whose dependencies are all in earlier phases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Vec<String>>,
    /// Every cycle, each as a path that returns to its first repository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cycles: Vec<Vec<String>>,
    /// True when the graph has more cycles than the 1000 listed in `cycles`.
    pub cycles_truncated: Option<bool>,
    /// Per repository: direct and transitive dependencies and dependents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<RepositoryStatus>,
    /// Every edge with its provenance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<EdgeStatus>,
    /// Edges to repositories not in the graph.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<EdgeStatus>,
    /// Files that could not be read or parsed, one entry per file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discovery_errors: Vec<DiscoveryError>,
    /// The graph as a Mermaid flowchart (absent above 500 edges, which Mermaid does not draw).
    pub mermaid: Option<String>,
    /// Status fields left out because the whole object would exceed what the apiserver
    /// stores; `switchyard graph` prints the full analysis offline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub omitted: Vec<String>,
}

/// Dependencies and dependents of one repository.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryStatus {
    /// Repository.
    pub name: String,
    /// Phase index (0-based); absent for repositories in a cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<i32>,
    /// Direct dependencies.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Direct dependents.
    #[serde(default)]
    pub dependents: Vec<String>,
    /// All repositories this one depends on, directly or not.
    #[serde(default)]
    pub transitive_dependencies: Vec<String>,
    /// All repositories that depend on this one, directly or not.
    #[serde(default)]
    pub transitive_dependents: Vec<String>,
    /// Repositories in a cycle or missing from the graph that this one requires,
    /// directly or not (itself included when it is in a cycle); it has no phase until this is empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_on: Vec<String>,
}

/// An edge `from` depends on `to`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EdgeStatus {
    /// The dependent repository.
    pub from: String,
    /// The repository depended on.
    pub to: String,
    /// Whether the edge gates deployment.
    pub required: bool,
    /// Where the edge came from: `explicit`, `compose:<file>:<service>` (a compose key naming
    /// the service), or `inferred:<file>:<service or Kind/name>:<field>` (an address the
    /// process uses, found in that field).
    pub provenance: String,
    /// Compose `profiles` of the dependent service: the edge exists only in a deployment
    /// that enables one of them (empty: always).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
}

/// A discovery file that failed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryError {
    /// Repository whose discovery source failed.
    pub repository: String,
    /// The file (ConfigMap key or repository path).
    pub file: String,
    /// What went wrong.
    pub message: String,
}
