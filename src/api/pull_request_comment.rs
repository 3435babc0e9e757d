//! The status record of the GitHub comment that reports a PreviewEnvironment.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The pull request comment created once for an environment and then edited in place.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestComment {
    /// GitHub issue comment id.
    pub id: i64,
    /// SHA-256 (hex) of the body last written, so the comment is edited only when it changes.
    pub body_hash: String,
}
