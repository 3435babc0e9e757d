//! The simulated GitHub: repositories with their pull requests, collaborators,
//! files and issue comments. Every operation the HTTP layer and the test handle
//! perform is a method here, so the rules live in one place.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why an API operation failed; rendered like GitHub's error bodies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 404 `Not Found` (GitHub also answers 404 for what the token may not see).
    #[error("Not Found")]
    NotFound,
    /// 404 with GitHub's message for an unknown ref of the contents API.
    #[error("No commit found for the ref {0}")]
    NoCommit(String),
    /// 422 `Validation Failed` / `Invalid request.`
    #[error("{0}")]
    Unprocessable(String),
    /// 400, e.g. `Problems parsing JSON`.
    #[error("{0}")]
    BadRequest(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::NotFound | ApiError::NoCommit(_) => 404,
            ApiError::Unprocessable(_) => 422,
            ApiError::BadRequest(_) => 400,
        }
    }
}

/// GitHub's longest comment body, in characters.
pub const MAX_COMMENT_CHARS: usize = 65_536;

/// A collaborator's role. `permission` of the permission endpoint is derived from it
/// the way GitHub does: maintain counts as write, triage as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    None,
    Read,
    Triage,
    Write,
    Maintain,
    Admin,
}

impl Role {
    /// The legacy `permission` value: `admin`, `write`, `read` or `none`.
    pub fn permission(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Maintain | Role::Write => "write",
            Role::Triage | Role::Read => "read",
            Role::None => "none",
        }
    }

    /// The `role_name` value.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Maintain => "maintain",
            Role::Write => "write",
            Role::Triage => "triage",
            Role::Read => "read",
            Role::None => "none",
        }
    }
}

/// A GitHub account, created the first time it is named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub login: String,
}

/// `open` or `closed`; merged pull requests are closed with `merged: true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Open,
    Closed,
}

/// One side of a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Side {
    #[serde(rename = "ref")]
    pub ref_: String,
    pub sha: String,
    /// `owner/name` of the repository the branch lives in (a fork for fork pull requests).
    pub repo: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub id: u64,
    pub number: u64,
    pub title: String,
    pub user: String,
    pub state: State,
    pub merged: bool,
    pub draft: bool,
    pub head: Side,
    pub base: Side,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub merged_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub id: u64,
    /// The issue or pull request number.
    pub issue: u64,
    pub body: String,
    pub user: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Earlier bodies, oldest first (not part of GitHub's API; for tests via `/_sim`).
    #[serde(default)]
    pub revisions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub private: bool,
    pub default_branch: String,
    pub pulls: BTreeMap<u64, PullRequest>,
    /// Lowercased login -> role.
    pub collaborators: BTreeMap<String, Role>,
    /// Ref (branch, tag or sha) -> path -> content.
    pub files: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    pub comments: BTreeMap<u64, Comment>,
}

impl Repository {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// The role of `login`: its collaborator role, else read on a public repository.
    pub fn role_of(&self, login: &str) -> Role {
        match self.collaborators.get(&login.to_ascii_lowercase()) {
            Some(role) => *role,
            None if self.owner.eq_ignore_ascii_case(login) => Role::Admin,
            None if self.private => Role::None,
            None => Role::Read,
        }
    }
}

/// What `PUT /_sim/repos/{owner}/{repo}` accepts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositorySeed {
    pub default_branch: Option<String>,
    pub private: Option<bool>,
}

/// One side of a [`PullRequestSeed`]; absent fields keep their value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SideSeed {
    #[serde(rename = "ref")]
    pub ref_: Option<String>,
    pub sha: Option<String>,
    pub repo: Option<String>,
}

/// What `PUT /_sim/repos/{owner}/{repo}/pulls/{number}` accepts: creates the pull
/// request, or changes only the fields given (close it, push a new head, ...).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullRequestSeed {
    pub title: Option<String>,
    pub user: Option<String>,
    pub state: Option<State>,
    pub merged: Option<bool>,
    pub draft: Option<bool>,
    #[serde(default)]
    pub head: SideSeed,
    #[serde(default)]
    pub base: SideSeed,
}

/// The whole simulated GitHub.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct World {
    /// Lowercased `owner/name` -> repository.
    pub repositories: BTreeMap<String, Repository>,
    /// Lowercased login -> user.
    pub users: BTreeMap<String, User>,
    next_id: u64,
}

fn is_sha(s: &str) -> bool {
    (7..=40).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn split_full_name(full: &str) -> Result<(&str, &str), ApiError> {
    match full.split_once('/') {
        Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => Ok((o, n)),
        _ => Err(ApiError::Unprocessable(format!("{full:?} is not owner/name"))),
    }
}

impl World {
    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The user `login`, created on first use.
    pub fn user(&mut self, login: &str) -> User {
        let key = login.to_ascii_lowercase();
        if let Some(u) = self.users.get(&key) {
            return u.clone();
        }
        let user = User { id: self.next(), login: login.to_string() };
        self.users.insert(key, user.clone());
        user
    }

    /// The user `login` if it exists, else a stand-in (rendering never creates users).
    pub fn user_view(&self, login: &str) -> User {
        self.users.get(&login.to_ascii_lowercase()).cloned().unwrap_or(User { id: 0, login: login.to_string() })
    }

    pub fn repository(&self, owner: &str, name: &str) -> Result<&Repository, ApiError> {
        self.repositories.get(&format!("{owner}/{name}").to_ascii_lowercase()).ok_or(ApiError::NotFound)
    }

    fn repository_mut(&mut self, owner: &str, name: &str) -> Result<&mut Repository, ApiError> {
        self.repositories.get_mut(&format!("{owner}/{name}").to_ascii_lowercase()).ok_or(ApiError::NotFound)
    }

    /// Creates `owner/name`, or changes the settings given.
    pub fn put_repository(&mut self, full: &str, seed: RepositorySeed) -> Result<Repository, ApiError> {
        let (owner, name) = split_full_name(full)?;
        self.user(owner);
        let key = full.to_ascii_lowercase();
        if !self.repositories.contains_key(&key) {
            let id = self.next();
            self.repositories.insert(
                key.clone(),
                Repository {
                    id,
                    owner: owner.to_string(),
                    name: name.to_string(),
                    private: false,
                    default_branch: "main".into(),
                    pulls: BTreeMap::new(),
                    collaborators: BTreeMap::new(),
                    files: BTreeMap::new(),
                    comments: BTreeMap::new(),
                },
            );
        }
        let repo = self.repositories.get_mut(&key).ok_or(ApiError::NotFound)?;
        if let Some(b) = seed.default_branch {
            repo.default_branch = b;
        }
        if let Some(p) = seed.private {
            repo.private = p;
        }
        Ok(repo.clone())
    }

    /// Creates pull request `number` of `full` (creating the repository too), or
    /// changes the fields given. Closing sets `closed_at`; `merged: true` closes.
    pub fn put_pull_request(
        &mut self,
        full: &str,
        number: u64,
        seed: PullRequestSeed,
        now: DateTime<Utc>,
    ) -> Result<PullRequest, ApiError> {
        if number == 0 {
            return Err(ApiError::Unprocessable("pull request numbers start at 1".into()));
        }
        for sha in [&seed.head.sha, &seed.base.sha].into_iter().flatten() {
            if !is_sha(sha) {
                return Err(ApiError::Unprocessable(format!("{sha:?} is not a commit sha")));
            }
        }
        if let Some(fork) = &seed.head.repo {
            split_full_name(fork)?;
        }
        let repo_key = full.to_ascii_lowercase();
        if !self.repositories.contains_key(&repo_key) {
            self.put_repository(full, RepositorySeed::default())?;
        }
        if let Some(login) = &seed.user {
            self.user(login);
        }
        let id = self.next();
        let repo = self.repositories.get_mut(&repo_key).ok_or(ApiError::NotFound)?;
        let full_name = repo.full_name();
        let (owner, default_branch) = (repo.owner.clone(), repo.default_branch.clone());
        let pr = repo.pulls.entry(number).or_insert_with(|| PullRequest {
            id,
            number,
            title: format!("Pull request {number}"),
            user: owner,
            state: State::Open,
            merged: false,
            draft: false,
            head: Side { ref_: format!("pr-{number}"), sha: "0".repeat(40), repo: full_name.clone() },
            base: Side { ref_: default_branch, sha: "0".repeat(40), repo: full_name.clone() },
            created_at: now,
            updated_at: now,
            closed_at: None,
            merged_at: None,
        });
        if let Some(t) = seed.title {
            pr.title = t;
        }
        if let Some(u) = seed.user {
            pr.user = u;
        }
        if let Some(d) = seed.draft {
            pr.draft = d;
        }
        for (side, s) in [(&mut pr.head, seed.head), (&mut pr.base, seed.base)] {
            if let Some(r) = s.ref_ {
                side.ref_ = r;
            }
            if let Some(sha) = s.sha {
                side.sha = sha.to_ascii_lowercase();
            }
            if let Some(repo) = s.repo {
                side.repo = repo;
            }
        }
        if seed.merged == Some(true) && !pr.merged {
            pr.merged = true;
            pr.merged_at = Some(now);
            pr.state = State::Closed;
        }
        match seed.state {
            Some(State::Closed) if pr.closed_at.is_none() => {
                pr.state = State::Closed;
                pr.closed_at = Some(now);
            }
            Some(State::Open) if !pr.merged => {
                pr.state = State::Open;
                pr.closed_at = None;
            }
            Some(State::Open) => {
                return Err(ApiError::Unprocessable("a merged pull request cannot be reopened".into()));
            }
            _ => {}
        }
        if pr.state == State::Closed && pr.closed_at.is_none() {
            pr.closed_at = Some(now);
        }
        pr.updated_at = now;
        Ok(pr.clone())
    }

    pub fn pull_request(&self, owner: &str, name: &str, number: u64) -> Result<&PullRequest, ApiError> {
        self.repository(owner, name)?.pulls.get(&number).ok_or(ApiError::NotFound)
    }

    /// Sets the role of `login` on `full` (`Role::None` removes the collaborator).
    pub fn set_role(&mut self, full: &str, login: &str, role: Role) -> Result<(), ApiError> {
        let (owner, name) = split_full_name(full)?;
        self.user(login);
        let repo = self.repository_mut(owner, name)?;
        repo.collaborators.insert(login.to_ascii_lowercase(), role);
        Ok(())
    }

    /// Stores `content` at `path` on `ref_` (the default branch when `None`).
    pub fn put_file(&mut self, full: &str, ref_: Option<&str>, path: &str, content: Vec<u8>) -> Result<(), ApiError> {
        let (owner, name) = split_full_name(full)?;
        let path = path.trim_matches('/');
        if path.is_empty() || path.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(ApiError::Unprocessable(format!("{path:?} is not a file path")));
        }
        let repo = self.repository_mut(owner, name)?;
        let ref_ = ref_.map(str::to_string).unwrap_or_else(|| repo.default_branch.clone());
        repo.files.entry(ref_).or_default().insert(path.to_string(), content);
        Ok(())
    }

    /// Creates a comment by `login` on issue or pull request `number`.
    pub fn create_comment(
        &mut self,
        owner: &str,
        name: &str,
        number: u64,
        login: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<Comment, ApiError> {
        check_body(body)?;
        self.repository(owner, name)?.pulls.get(&number).ok_or(ApiError::NotFound)?;
        self.user(login);
        let id = self.next();
        let repo = self.repository_mut(owner, name)?;
        let comment = Comment {
            id,
            issue: number,
            body: body.to_string(),
            user: login.to_string(),
            created_at: now,
            updated_at: now,
            revisions: vec![],
        };
        repo.comments.insert(id, comment.clone());
        Ok(comment)
    }

    /// Replaces the body of comment `id` of the repository.
    pub fn update_comment(
        &mut self,
        owner: &str,
        name: &str,
        id: u64,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<Comment, ApiError> {
        check_body(body)?;
        let repo = self.repository_mut(owner, name)?;
        let comment = repo.comments.get_mut(&id).ok_or(ApiError::NotFound)?;
        let previous = std::mem::replace(&mut comment.body, body.to_string());
        comment.revisions.push(previous);
        comment.updated_at = now;
        Ok(comment.clone())
    }

    /// Comments of issue `number`, oldest first.
    pub fn comments(&self, owner: &str, name: &str, number: u64) -> Result<Vec<&Comment>, ApiError> {
        let repo = self.repository(owner, name)?;
        repo.pulls.get(&number).ok_or(ApiError::NotFound)?;
        Ok(repo.comments.values().filter(|c| c.issue == number).collect())
    }

    /// The file at `path` on `ref_`, or the entries of the directory there.
    pub fn contents(&self, owner: &str, name: &str, path: &str, ref_: Option<&str>) -> Result<Contents, ApiError> {
        let repo = self.repository(owner, name)?;
        let ref_ = ref_.filter(|r| !r.is_empty()).unwrap_or(&repo.default_branch);
        let files = match repo.files.get(ref_) {
            Some(files) => files,
            // A known branch without files is an empty tree, anything else an unknown ref.
            None if ref_ == repo.default_branch => &BTreeMap::new(),
            None => return Err(ApiError::NoCommit(ref_.to_string())),
        };
        let path = path.trim_matches('/');
        if let Some(content) = files.get(path) {
            return Ok(Contents::File { path: path.to_string(), content: content.clone() });
        }
        let prefix = if path.is_empty() { String::new() } else { format!("{path}/") };
        let mut entries: BTreeMap<String, Option<usize>> = BTreeMap::new();
        for (p, content) in files.range(prefix.clone()..) {
            let Some(rest) = p.strip_prefix(&prefix) else { break };
            match rest.split_once('/') {
                Some((dir, _)) => entries.entry(format!("{prefix}{dir}")).or_insert(None),
                None => entries.entry(p.clone()).or_insert(Some(content.len())),
            };
        }
        if entries.is_empty() && !path.is_empty() {
            return Err(ApiError::NotFound);
        }
        Ok(Contents::Directory(entries.into_iter().map(|(path, size)| DirEntry { path, size }).collect()))
    }
}

/// What the contents API finds at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contents {
    File { path: String, content: Vec<u8> },
    Directory(Vec<DirEntry>),
}

/// A directory entry: a file (with its size) or a subdirectory (`size: None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub path: String,
    pub size: Option<usize>,
}

fn check_body(body: &str) -> Result<(), ApiError> {
    if body.chars().count() > MAX_COMMENT_CHARS {
        return Err(ApiError::Unprocessable(format!("Body is too long (maximum is {MAX_COMMENT_CHARS} characters)")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        let mut w = World::default();
        w.put_repository("Octo/Hello", RepositorySeed::default()).unwrap();
        w
    }

    #[test]
    fn closing_then_merging_keeps_closed_at_and_merged_cannot_reopen() {
        let mut w = world();
        let t0 = Utc::now();
        w.put_pull_request("octo/hello", 2, PullRequestSeed::default(), t0).unwrap();
        let closed = PullRequestSeed { state: Some(State::Closed), ..Default::default() };
        let pr = w.put_pull_request("octo/hello", 2, closed, t0).unwrap();
        assert_eq!((pr.state, pr.closed_at), (State::Closed, Some(t0)));
        let reopen = PullRequestSeed { state: Some(State::Open), ..Default::default() };
        assert_eq!(w.put_pull_request("octo/hello", 2, reopen.clone(), t0).unwrap().state, State::Open);
        let merged = PullRequestSeed { merged: Some(true), ..Default::default() };
        let pr = w.put_pull_request("octo/hello", 2, merged, t0).unwrap();
        assert!(pr.merged && pr.state == State::Closed && pr.merged_at.is_some());
        assert!(matches!(w.put_pull_request("octo/hello", 2, reopen, t0), Err(ApiError::Unprocessable(_))));
    }

    #[test]
    fn roles_map_to_permissions_like_github() {
        let mut w = world();
        w.set_role("octo/hello", "Maint", Role::Maintain).unwrap();
        let repo = w.repository("octo", "hello").unwrap();
        assert_eq!(repo.role_of("maint").permission(), "write");
        assert_eq!(repo.role_of("octo").permission(), "admin");
        assert_eq!(repo.role_of("stranger").permission(), "read");
        w.put_repository("octo/hello", RepositorySeed { private: Some(true), ..Default::default() }).unwrap();
        assert_eq!(w.repository("octo", "hello").unwrap().role_of("stranger").permission(), "none");
    }

    #[test]
    fn comments_need_an_existing_pull_request_and_keep_revisions() {
        let mut w = world();
        let now = Utc::now();
        assert_eq!(w.create_comment("octo", "hello", 1, "bot", "x", now), Err(ApiError::NotFound));
        w.put_pull_request("octo/hello", 1, PullRequestSeed::default(), now).unwrap();
        let c = w.create_comment("octo", "hello", 1, "bot", "first", now).unwrap();
        let c = w.update_comment("octo", "hello", c.id, "second", now).unwrap();
        assert_eq!((c.body.as_str(), c.revisions.clone()), ("second", vec!["first".to_string()]));
        let long = "x".repeat(MAX_COMMENT_CHARS + 1);
        assert!(matches!(w.update_comment("octo", "hello", c.id, &long, now), Err(ApiError::Unprocessable(_))));
    }

    #[test]
    fn contents_resolve_files_directories_and_refs() {
        let mut w = world();
        w.put_file("octo/hello", None, "deploy/compose.yml", b"services: {}".to_vec()).unwrap();
        w.put_file("octo/hello", Some("feature"), "README.md", b"hi".to_vec()).unwrap();
        assert!(matches!(w.contents("octo", "hello", "deploy/compose.yml", None), Ok(Contents::File { .. })));
        let Ok(Contents::Directory(root)) = w.contents("octo", "hello", "", None) else { panic!("root") };
        assert_eq!(root, vec![DirEntry { path: "deploy".into(), size: None }]);
        assert_eq!(w.contents("octo", "hello", "README.md", None), Err(ApiError::NotFound));
        assert!(matches!(w.contents("octo", "hello", "README.md", Some("feature")), Ok(Contents::File { .. })));
        assert_eq!(w.contents("octo", "hello", "x", Some("nope")), Err(ApiError::NoCommit("nope".into())));
        assert!(w.put_file("octo/hello", None, "../etc/passwd", vec![]).is_err());
    }
}
