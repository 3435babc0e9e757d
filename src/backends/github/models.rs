//! What switchyard reads from GitHub: pull requests and their sides, accounts,
//! permissions, issue comments and file contents.

use std::fmt;

use serde::Deserialize;

/// `open` or `closed` (merged pull requests are closed with `merged: true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullRequestState {
    Open,
    Closed,
}

/// A GitHub account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    pub login: String,
}

/// A repository as a pull request names it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RepositoryRef {
    pub full_name: String,
    #[serde(default)]
    pub fork: bool,
}

/// One side (head or base) of a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Side {
    #[serde(rename = "ref")]
    pub ref_: String,
    pub sha: String,
    /// `None` when the head's fork was deleted.
    pub repo: Option<RepositoryRef>,
}

/// A pull request (the fields switchyard reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub state: PullRequestState,
    /// Absent from list items; `false` there.
    #[serde(default)]
    pub merged: bool,
    #[serde(default)]
    pub title: String,
    pub html_url: Option<String>,
    pub user: Option<User>,
    pub head: Side,
    pub base: Side,
}

impl PullRequest {
    /// Whether the head branch lives in another repository than the base (a fork), or
    /// in one that no longer exists.
    pub fn is_from_fork(&self) -> bool {
        match (&self.head.repo, &self.base.repo) {
            (Some(head), Some(base)) => !head.full_name.eq_ignore_ascii_case(&base.full_name),
            _ => true,
        }
    }
}

/// A user's permission on a repository (the legacy `permission` field: maintainers
/// report `write`, triagers `read`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Admin,
    Write,
    Read,
    None,
}

impl Permission {
    pub(super) fn parse(s: &str) -> Self {
        match s {
            "admin" => Permission::Admin,
            "write" | "maintain" => Permission::Write,
            "read" | "triage" => Permission::Read,
            _ => Permission::None,
        }
    }

    /// Whether the user may push to the repository.
    pub fn can_write(self) -> bool {
        matches!(self, Permission::Admin | Permission::Write)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Admin => "admin",
            Permission::Write => "write",
            Permission::Read => "read",
            Permission::None => "none",
        }
    }
}

/// A comment on an issue or pull request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IssueComment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    pub user: Option<User>,
    pub html_url: Option<String>,
}

/// A file read through the contents API.
#[derive(Clone, PartialEq, Eq)]
pub struct FileContent {
    pub path: String,
    /// Git blob sha: changes exactly when the content does.
    pub sha: String,
    pub content: Vec<u8>,
}

impl fmt::Debug for FileContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileContent")
            .field("path", &self.path)
            .field("sha", &self.sha)
            .field("bytes", &self.content.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintainers_can_write_and_triagers_cannot() {
        assert!(Permission::parse("maintain").can_write() && Permission::parse("admin").can_write());
        assert!(!Permission::parse("triage").can_write() && !Permission::parse("none").can_write());
    }
}
