//! When a PreviewEnvironment's steps act: whether a site found by name may be
//! adopted, when a failed certificate is requested again, and when to (re)deploy.
//! Pure functions of what was observed and what status recorded.

use std::time::Duration;

/// What the site step does with the site Forge has under the environment's domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteAdoption {
    /// None exists: create it.
    Create,
    /// It carries this environment's owner tag: it is ours (created before a crash).
    Adopt,
    /// Ours, but Forge is still removing it: wait, then create a new one.
    WaitForRemoval,
    /// Someone else's site: never adopted, never deleted.
    Foreign,
}

/// Decides about the site found by name (`tags` and `status` of it, if any).
/// Forge has no labels: the owner tag is the only proof a site is ours.
pub fn site_adoption(found: Option<(&[String], &str)>, owner_tag: &str) -> SiteAdoption {
    match found {
        None => SiteAdoption::Create,
        Some((tags, _)) if !tags.iter().any(|t| t == owner_tag) => SiteAdoption::Foreign,
        Some((_, "removing")) => SiteAdoption::WaitForRemoval,
        Some(_) => SiteAdoption::Adopt,
    }
}

/// The newest certificate of the environment's domain, as the certificate step sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedCertificate {
    pub id: u64,
    pub status: String,
    pub active: bool,
    pub failed: bool,
}

/// What status recorded about the certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordedCertificate {
    pub id: Option<u64>,
    /// Whether the certificate condition already says `CertificateFailed`.
    pub failed: bool,
    /// Consecutive failed certificates.
    pub failures: u32,
    /// Since when the condition has said `CertificateFailed`.
    pub failed_for: Duration,
}

/// What the certificate step does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateAction {
    /// The certificate is active.
    Active,
    /// None exists: request one.
    Request,
    /// Forge is issuing it (`status` as Forge says).
    Issuing { status: String },
    /// A failure newly seen (counted) or still inside its backoff: wait `retry_in`.
    Wait { failures: u32, retry_in: Duration },
    /// The backoff after a known failure passed: delete it and request again.
    Retry { failures: u32 },
}

/// Decides the certificate step. A failure is counted once, when first seen, and
/// retried after [`retry_backoff`] of the failures so far (15 s doubling to 10 min),
/// so a domain whose DNS does not point at the server is not hammered.
pub fn certificate_action(current: Option<&ObservedCertificate>, recorded: &RecordedCertificate) -> CertificateAction {
    let Some(c) = current else { return CertificateAction::Request };
    if c.active {
        return CertificateAction::Active;
    }
    if !c.failed {
        return CertificateAction::Issuing { status: c.status.clone() };
    }
    let known = recorded.id == Some(c.id) && recorded.failed;
    let failures = if known { recorded.failures } else { recorded.failures + 1 }.max(1);
    let backoff = retry_backoff(failures);
    let waited = if known { recorded.failed_for } else { Duration::ZERO };
    if known && waited >= backoff {
        return CertificateAction::Retry { failures };
    }
    CertificateAction::Wait { failures, retry_in: backoff.saturating_sub(waited) }
}

/// What a deployment is for: a change of any of these needs a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployTarget {
    pub sha: Option<String>,
    pub redeploy_token: Option<String>,
    pub environment_hash: Option<String>,
}

/// The last deployment as recorded in status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedDeployment {
    pub target: DeployTarget,
    /// Forge deployment status (`queued`, `deploying`, `finished`, `failed`, ...).
    pub status: String,
    /// Consecutive failed attempts for this target.
    pub attempts: u32,
    /// Seconds since it reached a terminal state, when it did.
    pub finished_ago: Option<Duration>,
}

/// What the deploy step does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployAction {
    /// Trigger a deployment of the target (attempt number given).
    Trigger { attempt: u32 },
    /// A deployment is queued or running: poll it.
    Follow,
    /// The target is deployed.
    Done,
    /// The last attempt failed; retry after this long.
    RetryIn(Duration),
}

/// Terminal Forge deployment states.
pub fn is_terminal(status: &str) -> bool {
    matches!(status, "finished" | "failed" | "failed-build" | "cancelled")
}

/// Decides the deploy step. A running deployment is always followed to its end
/// first, so two never race; a failed one is retried with exponential backoff
/// (15 s doubling to 10 min) until the target changes.
pub fn deploy_action(target: &DeployTarget, last: Option<&RecordedDeployment>) -> DeployAction {
    let Some(last) = last else { return DeployAction::Trigger { attempt: 1 } };
    if !is_terminal(&last.status) {
        return DeployAction::Follow;
    }
    if last.target != *target {
        return DeployAction::Trigger { attempt: 1 };
    }
    if last.status == "finished" {
        return DeployAction::Done;
    }
    let wait = retry_backoff(last.attempts);
    match last.finished_ago {
        Some(ago) if ago < wait => DeployAction::RetryIn(wait - ago),
        _ => DeployAction::Trigger { attempt: last.attempts + 1 },
    }
}

/// Backoff after `failures` consecutive failures: 15 s, 30 s, 60 s ... capped at 10 min.
pub fn retry_backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(6);
    Duration::from_secs(15u64 << exp).min(Duration::from_secs(600))
}

/// How long to wait before looking at something Forge is still doing: a quarter of
/// the time already waited, between 1 s and 30 s, so fast steps are seen quickly
/// and slow ones cost few requests.
pub fn poll_interval(waited: Duration) -> Duration {
    (waited / 4).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_site_is_adopted_only_with_our_tag_and_never_while_removing() {
        let ours = tags(&["switchyard", "switchyard-uid-1"]);
        assert_eq!(site_adoption(None, "switchyard-uid-1"), SiteAdoption::Create);
        assert_eq!(site_adoption(Some((&ours, "installed")), "switchyard-uid-1"), SiteAdoption::Adopt);
        assert_eq!(site_adoption(Some((&ours, "installing")), "switchyard-uid-1"), SiteAdoption::Adopt);
        assert_eq!(site_adoption(Some((&ours, "removing")), "switchyard-uid-1"), SiteAdoption::WaitForRemoval);
        // Another environment's site (another uid), or one made by hand.
        assert_eq!(site_adoption(Some((&ours, "installed")), "switchyard-uid-2"), SiteAdoption::Foreign);
        assert_eq!(site_adoption(Some((&[], "installed")), "switchyard-uid-1"), SiteAdoption::Foreign);
        // A foreign site that is being removed is still not ours to wait for.
        assert_eq!(site_adoption(Some((&tags(&["x"]), "removing")), "switchyard-uid-1"), SiteAdoption::Foreign);
    }

    fn cert(id: u64, status: &str) -> ObservedCertificate {
        ObservedCertificate { id, status: status.into(), active: status == "installed", failed: status == "failed" }
    }

    #[test]
    fn certificates_are_requested_followed_and_retried_with_backoff() {
        let none = RecordedCertificate::default();
        assert_eq!(certificate_action(None, &none), CertificateAction::Request);
        assert_eq!(certificate_action(Some(&cert(1, "installed")), &none), CertificateAction::Active);
        assert_eq!(
            certificate_action(Some(&cert(1, "installing")), &none),
            CertificateAction::Issuing { status: "installing".into() }
        );
        // First sight of a failure: counted, then the first backoff.
        assert_eq!(
            certificate_action(Some(&cert(1, "failed")), &none),
            CertificateAction::Wait { failures: 1, retry_in: Duration::from_secs(15) }
        );
        // Known failure inside its backoff: not counted again.
        let known = RecordedCertificate { id: Some(1), failed: true, failures: 1, failed_for: Duration::from_secs(5) };
        assert_eq!(
            certificate_action(Some(&cert(1, "failed")), &known),
            CertificateAction::Wait { failures: 1, retry_in: Duration::from_secs(10) }
        );
        // Past it: retried.
        let due = RecordedCertificate { failed_for: Duration::from_secs(15), ..known.clone() };
        assert_eq!(certificate_action(Some(&cert(1, "failed")), &due), CertificateAction::Retry { failures: 1 });
        // The retried certificate failing too is a second failure, with a longer backoff.
        assert_eq!(
            certificate_action(Some(&cert(2, "failed")), &due),
            CertificateAction::Wait { failures: 2, retry_in: Duration::from_secs(30) }
        );
    }

    fn target(sha: &str) -> DeployTarget {
        DeployTarget { sha: Some(sha.into()), redeploy_token: None, environment_hash: Some("h".into()) }
    }

    fn recorded(sha: &str, status: &str, attempts: u32, ago: Option<u64>) -> RecordedDeployment {
        RecordedDeployment {
            target: target(sha),
            status: status.into(),
            attempts,
            finished_ago: ago.map(Duration::from_secs),
        }
    }

    #[test]
    fn deploy_decisions() {
        let t = target("abc1234");
        assert_eq!(deploy_action(&t, None), DeployAction::Trigger { attempt: 1 });
        assert_eq!(deploy_action(&t, Some(&recorded("abc1234", "deploying", 1, None))), DeployAction::Follow);
        assert_eq!(deploy_action(&t, Some(&recorded("0000000", "deploying", 1, None))), DeployAction::Follow);
        assert_eq!(deploy_action(&t, Some(&recorded("abc1234", "finished", 1, Some(1)))), DeployAction::Done);
        assert_eq!(
            deploy_action(&t, Some(&recorded("0000000", "finished", 1, Some(1)))),
            DeployAction::Trigger { attempt: 1 }
        );
        assert_eq!(
            deploy_action(&t, Some(&recorded("abc1234", "failed", 1, Some(5)))),
            DeployAction::RetryIn(Duration::from_secs(10))
        );
        assert_eq!(
            deploy_action(&t, Some(&recorded("abc1234", "failed", 2, Some(31)))),
            DeployAction::Trigger { attempt: 3 }
        );
        let mut env_changed = t.clone();
        env_changed.environment_hash = Some("other".into());
        assert_eq!(
            deploy_action(&env_changed, Some(&recorded("abc1234", "finished", 1, Some(1)))),
            DeployAction::Trigger { attempt: 1 }
        );
    }

    #[test]
    fn backoff_and_poll_are_bounded() {
        assert_eq!(retry_backoff(1), Duration::from_secs(15));
        assert_eq!(retry_backoff(2), Duration::from_secs(30));
        assert_eq!(retry_backoff(50), Duration::from_secs(600));
        assert_eq!(poll_interval(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(poll_interval(Duration::from_secs(20)), Duration::from_secs(5));
        assert_eq!(poll_interval(Duration::from_secs(3600)), Duration::from_secs(30));
    }
}
