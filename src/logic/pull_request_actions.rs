//! What to do with a pull request's PreviewEnvironment, given what a delivery (or the
//! polling fallback) asks for and what GitHub and the apiserver say right now.
//!
//! Facts come from the API at decision time, not from the payload, so deliveries that
//! arrive out of order cannot undo each other: a closed pull request never gets an
//! environment, and an older `synchronize` cannot move the head backwards.

use serde::{Deserialize, Serialize};

use crate::logic::github_webhook::{Command, Trigger};

/// Who may trigger previews of fork pull requests (`github.forkPolicy`).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum ForkPolicy {
    #[default]
    Deny,
    Allow,
}

/// The pull request as the API returns it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestFacts {
    pub open: bool,
    pub merged: bool,
    pub head_sha: String,
    /// The head branch.
    pub head_ref: String,
    /// The head lives in another repository (or a deleted one).
    pub from_fork: bool,
}

/// The commenter of a command and their permission on the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commenter {
    pub login: String,
    /// GitHub's permission name (`admin`, `write`, `read`, `none`), for the log.
    pub permission: String,
    pub can_write: bool,
}

/// The environment as the apiserver has it now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnvironmentFacts {
    pub head_sha: Option<String>,
    pub redeploy_token: Option<String>,
    /// Deletion has started (`metadata.deletionTimestamp`).
    pub deleting: bool,
}

/// Everything [`decide`] looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub pull_request: PullRequestFacts,
    /// Set for commands (the permission is checked through the API).
    pub commenter: Option<Commenter>,
    pub fork_policy: ForkPolicy,
    pub environment: Option<EnvironmentFacts>,
}

/// Why a request is refused. These are logged as warnings and counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("{login} has {permission} permission; commands need write access")]
    NoWriteAccess { login: String, permission: String },
    #[error("the pull request comes from a fork and github.forkPolicy is Deny")]
    ForkPullRequestDenied,
    #[error("the pull request is closed")]
    PullRequestClosed,
}

impl Rejection {
    /// Stable CamelCase reason for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::NoWriteAccess { .. } => "NoWriteAccess",
            Rejection::ForkPullRequestDenied => "ForkPullRequestDenied",
            Rejection::PullRequestClosed => "PullRequestClosed",
        }
    }
}

/// Why nothing needs doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoChange {
    /// `/preview` for an environment that exists.
    AlreadyExists,
    /// Nothing to update or delete.
    NoEnvironment,
    /// The environment already runs the head.
    UpToDate,
    /// A `closed` delivery for a pull request that is open again.
    ReopenedSince,
    /// The environment is being deleted; it is not touched.
    Deleting,
}

impl NoChange {
    pub fn reason(self) -> &'static str {
        match self {
            NoChange::AlreadyExists => "AlreadyExists",
            NoChange::NoEnvironment => "NoEnvironment",
            NoChange::UpToDate => "UpToDate",
            NoChange::ReopenedSince => "ReopenedSince",
            NoChange::Deleting => "Deleting",
        }
    }
}

/// The one thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Create the environment from the repository's template at the pull request's head.
    Create,
    /// Set `spec.headSha`, and `spec.deploy.redeployToken` when given (a redeploy of
    /// the same head).
    Update {
        head_sha: String,
        redeploy_token: Option<String>,
    },
    Delete,
    Nothing(NoChange),
    Reject(Rejection),
}

impl Decision {
    /// Stable label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Create => "Created",
            Decision::Update { .. } => "Updated",
            Decision::Delete => "Deleted",
            Decision::Nothing(n) => n.reason(),
            Decision::Reject(r) => r.reason(),
        }
    }
}

/// The redeploy token an `/update` comment sets: derived from the (signed) comment id,
/// so a replayed delivery asks for the redeploy it already got.
pub fn redeploy_token(comment_id: u64) -> String {
    format!("comment-{comment_id}")
}

/// Commands need write access; an unknown commenter has none.
pub fn authorize(commenter: Option<&Commenter>) -> Result<(), Rejection> {
    match commenter {
        Some(c) if c.can_write => Ok(()),
        Some(c) => Err(Rejection::NoWriteAccess { login: c.login.clone(), permission: c.permission.clone() }),
        None => Err(Rejection::NoWriteAccess { login: String::new(), permission: "unknown".into() }),
    }
}

/// Deletes the environment if there is one (and it is not already going).
fn delete_if_present(env: Option<&EnvironmentFacts>, otherwise: Decision) -> Decision {
    match env {
        Some(e) if e.deleting => Decision::Nothing(NoChange::Deleting),
        Some(_) => Decision::Delete,
        None => otherwise,
    }
}

/// Moves an existing environment to the head; never creates one.
fn follow_head(facts: &Facts, redeploy_token: Option<String>) -> Decision {
    let pr = &facts.pull_request;
    let Some(env) = &facts.environment else { return Decision::Nothing(NoChange::NoEnvironment) };
    if env.deleting {
        return Decision::Nothing(NoChange::Deleting);
    }
    if pr.from_fork && facts.fork_policy == ForkPolicy::Deny {
        return Decision::Reject(Rejection::ForkPullRequestDenied);
    }
    let same_head = env.head_sha.as_deref() == Some(pr.head_sha.as_str());
    let same_token = redeploy_token.is_none() || env.redeploy_token == redeploy_token;
    if same_head && same_token {
        return Decision::Nothing(NoChange::UpToDate);
    }
    Decision::Update { head_sha: pr.head_sha.clone(), redeploy_token }
}

/// The decision for `trigger` given `facts`.
pub fn decide(trigger: &Trigger, facts: &Facts) -> Decision {
    let pr = &facts.pull_request;
    let env = facts.environment.as_ref();
    match trigger {
        Trigger::Command { command, comment_id, .. } => {
            if let Err(rejection) = authorize(facts.commenter.as_ref()) {
                return Decision::Reject(rejection);
            }
            match command {
                Command::Destroy => delete_if_present(env, Decision::Nothing(NoChange::NoEnvironment)),
                // A closed pull request has no environment: commands can only remove one.
                _ if !pr.open => delete_if_present(env, Decision::Reject(Rejection::PullRequestClosed)),
                Command::Preview => {
                    if pr.from_fork && facts.fork_policy == ForkPolicy::Deny {
                        Decision::Reject(Rejection::ForkPullRequestDenied)
                    } else if env.is_some() {
                        Decision::Nothing(NoChange::AlreadyExists)
                    } else {
                        Decision::Create
                    }
                }
                Command::Update => follow_head(facts, Some(redeploy_token(*comment_id))),
            }
        }
        Trigger::Closed if pr.open => Decision::Nothing(NoChange::ReopenedSince),
        Trigger::Closed => delete_if_present(env, Decision::Nothing(NoChange::NoEnvironment)),
        Trigger::Synchronized | Trigger::Poll if !pr.open => {
            delete_if_present(env, Decision::Nothing(NoChange::NoEnvironment))
        }
        Trigger::Synchronized | Trigger::Poll => follow_head(facts, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pr(open: bool) -> PullRequestFacts {
        PullRequestFacts {
            open,
            merged: false,
            head_sha: "bbbbbbb".into(),
            head_ref: "feature".into(),
            from_fork: false,
        }
    }

    fn writer() -> Commenter {
        Commenter { login: "dev".into(), permission: "write".into(), can_write: true }
    }

    fn reader() -> Commenter {
        Commenter { login: "visitor".into(), permission: "read".into(), can_write: false }
    }

    fn env(sha: &str) -> EnvironmentFacts {
        EnvironmentFacts { head_sha: Some(sha.into()), redeploy_token: None, deleting: false }
    }

    fn facts(
        pull_request: PullRequestFacts,
        commenter: Option<Commenter>,
        environment: Option<EnvironmentFacts>,
    ) -> Facts {
        Facts { pull_request, commenter, fork_policy: ForkPolicy::Deny, environment }
    }

    fn cmd(command: Command) -> Trigger {
        Trigger::Command { command, user: "dev".into(), comment_id: 42 }
    }

    #[test]
    fn preview_creates_only_for_writers_on_open_pull_requests() {
        assert_eq!(decide(&cmd(Command::Preview), &facts(pr(true), Some(writer()), None)), Decision::Create);
        assert_eq!(
            decide(&cmd(Command::Preview), &facts(pr(true), Some(reader()), None)),
            Decision::Reject(Rejection::NoWriteAccess { login: "visitor".into(), permission: "read".into() })
        );
        assert!(matches!(
            decide(&cmd(Command::Preview), &facts(pr(true), None, None)),
            Decision::Reject(Rejection::NoWriteAccess { .. })
        ));
        assert_eq!(
            decide(&cmd(Command::Preview), &facts(pr(true), Some(writer()), Some(env("aaaaaaa")))),
            Decision::Nothing(NoChange::AlreadyExists)
        );
    }

    #[test]
    fn closed_pull_requests_never_get_an_environment() {
        for trigger in
            [cmd(Command::Preview), cmd(Command::Update), Trigger::Synchronized, Trigger::Poll, Trigger::Closed]
        {
            let d = decide(&trigger, &facts(pr(false), Some(writer()), None));
            assert!(!matches!(d, Decision::Create | Decision::Update { .. }), "{trigger:?} gave {d:?}");
        }
        assert_eq!(
            decide(&cmd(Command::Preview), &facts(pr(false), Some(writer()), None)),
            Decision::Reject(Rejection::PullRequestClosed)
        );
        // ... and lose the one they have, whatever asks.
        for trigger in
            [cmd(Command::Preview), cmd(Command::Update), Trigger::Synchronized, Trigger::Poll, Trigger::Closed]
        {
            assert_eq!(decide(&trigger, &facts(pr(false), Some(writer()), Some(env("a1b2c3d")))), Decision::Delete);
        }
    }

    #[test]
    fn a_late_closed_delivery_for_a_reopened_pull_request_keeps_the_environment() {
        assert_eq!(
            decide(&Trigger::Closed, &facts(pr(true), None, Some(env("bbbbbbb")))),
            Decision::Nothing(NoChange::ReopenedSince)
        );
    }

    #[test]
    fn fork_pull_requests_follow_the_policy() {
        let fork = PullRequestFacts { from_fork: true, ..pr(true) };
        let deny = facts(fork.clone(), Some(writer()), None);
        assert_eq!(decide(&cmd(Command::Preview), &deny), Decision::Reject(Rejection::ForkPullRequestDenied));
        let allow = Facts { fork_policy: ForkPolicy::Allow, ..deny };
        assert_eq!(decide(&cmd(Command::Preview), &allow), Decision::Create);
        // A fork's existing environment does not follow new commits under Deny, but can be destroyed.
        let existing = facts(fork, Some(writer()), Some(env("aaaaaaa")));
        assert_eq!(decide(&Trigger::Synchronized, &existing), Decision::Reject(Rejection::ForkPullRequestDenied));
        assert_eq!(decide(&cmd(Command::Destroy), &existing), Decision::Delete);
    }

    #[test]
    fn update_redeploys_the_api_head_with_a_token_from_the_comment() {
        let d = decide(&cmd(Command::Update), &facts(pr(true), Some(writer()), Some(env("bbbbbbb"))));
        assert_eq!(d, Decision::Update { head_sha: "bbbbbbb".into(), redeploy_token: Some("comment-42".into()) });
        // The same comment again asks for nothing new.
        let done = EnvironmentFacts { redeploy_token: Some("comment-42".into()), ..env("bbbbbbb") };
        assert_eq!(
            decide(&cmd(Command::Update), &facts(pr(true), Some(writer()), Some(done))),
            Decision::Nothing(NoChange::UpToDate)
        );
        assert_eq!(
            decide(&cmd(Command::Update), &facts(pr(true), Some(writer()), None)),
            Decision::Nothing(NoChange::NoEnvironment)
        );
    }

    #[test]
    fn new_commits_move_an_existing_environment_and_never_create_one() {
        let moved = decide(&Trigger::Synchronized, &facts(pr(true), None, Some(env("aaaaaaa"))));
        assert_eq!(moved, Decision::Update { head_sha: "bbbbbbb".into(), redeploy_token: None });
        assert_eq!(
            decide(&Trigger::Poll, &facts(pr(true), None, Some(env("bbbbbbb")))),
            Decision::Nothing(NoChange::UpToDate)
        );
        assert_eq!(
            decide(&Trigger::Synchronized, &facts(pr(true), None, None)),
            Decision::Nothing(NoChange::NoEnvironment)
        );
    }

    #[test]
    fn destroy_deletes_and_environments_being_deleted_are_left_alone() {
        assert_eq!(
            decide(&cmd(Command::Destroy), &facts(pr(true), Some(writer()), Some(env("bbbbbbb")))),
            Decision::Delete
        );
        assert_eq!(
            decide(&cmd(Command::Destroy), &facts(pr(true), Some(writer()), None)),
            Decision::Nothing(NoChange::NoEnvironment)
        );
        let going = EnvironmentFacts { deleting: true, ..env("aaaaaaa") };
        for trigger in [cmd(Command::Destroy), cmd(Command::Update), Trigger::Synchronized, Trigger::Closed] {
            let open = !matches!(trigger, Trigger::Closed);
            assert_eq!(
                decide(&trigger, &facts(pr(open), Some(writer()), Some(going.clone()))),
                Decision::Nothing(NoChange::Deleting)
            );
        }
    }
}
