//! Pure status machines: every transitional status is a function of the
//! resource's timestamps, the configured async delay and `now`. Nothing runs in
//! the background, so the same inputs always give the same status (tests can
//! pass any `now`), and a state file reloaded after a restart resumes exactly.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use std::time::Duration;

/// How long each kind of asynchronous step takes. Tests use one short delay for every
/// step ([`Timing::uniform`]); [`Timing::realistic`] uses what Forge takes (site install
/// about 60 s, then the repository about 20 s, a Let's Encrypt certificate about 45 s, a
/// deployment about 90 s), scaled so a benchmark can run it in less time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Every step not named below (schemas, users, processes, domains, commands, removals).
    pub step: Duration,
    /// A site's `installing → installed`.
    pub site_install: Duration,
    /// After the site is installed, its repository's `installing → installed`.
    pub repository: Duration,
    /// Each of a certificate's two steps.
    pub certificate_step: Duration,
    /// Each of a deployment's two steps (`queued → deploying → finished`).
    pub deploy_step: Duration,
}

impl Timing {
    /// Every step takes `delay`; the repository is installed with its site.
    pub fn uniform(delay: Duration) -> Self {
        Timing {
            step: delay,
            site_install: delay,
            repository: Duration::ZERO,
            certificate_step: delay,
            deploy_step: delay,
        }
    }

    /// Forge's own durations multiplied by `scale` (1.0 = real time).
    pub fn realistic(scale: f64) -> Self {
        let s = |secs: f64| Duration::from_secs_f64(secs * scale);
        Timing {
            step: s(5.0),
            site_install: s(60.0),
            repository: s(20.0),
            certificate_step: s(22.5),
            deploy_step: s(45.0),
        }
    }
}

/// A site's repository: `installing` until `repository` after the site is installed.
pub fn repository_status(created_at: DateTime<Utc>, now: DateTime<Utc>, timing: &Timing) -> &'static str {
    if steps_elapsed(created_at, now, timing.site_install + timing.repository, 1) == 0 {
        "installing"
    } else {
        "installed"
    }
}

/// How many whole `delay` steps have passed since `since`, capped at `max`.
pub fn steps_elapsed(since: DateTime<Utc>, now: DateTime<Utc>, delay: Duration, max: u32) -> u32 {
    let elapsed = (now - since).num_milliseconds().max(0) as u128;
    let delay_ms = delay.as_millis().max(1);
    (elapsed / delay_ms).min(max as u128) as u32
}

/// `since + n * delay`, for the timestamps a transition happened at.
pub fn after(since: DateTime<Utc>, delay: Duration, n: u32) -> DateTime<Utc> {
    since + ChronoDuration::milliseconds(delay.as_millis() as i64 * n as i64)
}

/// True once a deletion requested at `deleted_at` has finished (`removing → gone`).
pub fn is_gone(deleted_at: Option<DateTime<Utc>>, now: DateTime<Utc>, delay: Duration) -> bool {
    deleted_at.is_some_and(|d| steps_elapsed(d, now, delay, 1) >= 1)
}

/// Generic provisioning resource (site, schema, user, process, job): `installing → installed`,
/// and `removing` once deleted.
pub fn install_status(
    created_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    delay: Duration,
) -> &'static str {
    if deleted_at.is_some() {
        "removing"
    } else if steps_elapsed(created_at, now, delay, 1) == 0 {
        "installing"
    } else {
        "installed"
    }
}

/// Database user: like [`install_status`], plus `updating → installed` after a PUT.
pub fn database_user_status(
    created_at: DateTime<Utc>,
    updated_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    delay: Duration,
) -> &'static str {
    let base = install_status(created_at, deleted_at, now, delay);
    match (base, updated_at) {
        ("installed", Some(u)) if steps_elapsed(u, now, delay, 1) == 0 => "updating",
        _ => base,
    }
}

/// What a deployment looks like at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentView {
    pub status: &'static str,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// Deployment: `queued → deploying → finished | failed`, one delay per step.
pub fn deployment_view(created_at: DateTime<Utc>, fails: bool, now: DateTime<Utc>, delay: Duration) -> DeploymentView {
    match steps_elapsed(created_at, now, delay, 2) {
        0 => DeploymentView { status: "queued", started_at: None, ended_at: None },
        1 => DeploymentView { status: "deploying", started_at: Some(after(created_at, delay, 1)), ended_at: None },
        _ => DeploymentView {
            status: if fails { "failed" } else { "finished" },
            started_at: Some(after(created_at, delay, 1)),
            ended_at: Some(after(created_at, delay, 2)),
        },
    }
}

/// True for the deployment states nothing moves out of.
pub fn deployment_is_terminal(status: &str) -> bool {
    matches!(status, "finished" | "failed" | "failed-build" | "cancelled")
}

/// Domain record: `pending → enabled`, `removing` once deleted.
pub fn domain_status(
    created_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    delay: Duration,
) -> &'static str {
    if deleted_at.is_some() {
        "removing"
    } else if steps_elapsed(created_at, now, delay, 1) == 0 {
        "pending"
    } else {
        "enabled"
    }
}

/// What a certificate looks like at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateView {
    pub request_status: &'static str,
    pub status: &'static str,
    /// Installed and usable; whether it is *the* active one is decided per domain.
    pub installed: bool,
}

/// Let's Encrypt: `verifying/installing → created/installing → created/installed`; a failing
/// request ends as `verifying/failed`. Deletion shows `deleting` until gone.
pub fn certificate_view(
    created_at: DateTime<Utc>,
    fails: bool,
    deleted_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    delay: Duration,
) -> CertificateView {
    let step = steps_elapsed(created_at, now, delay, 2);
    let mut view = match (fails, step) {
        (_, 0) => CertificateView { request_status: "verifying", status: "installing", installed: false },
        (true, _) => CertificateView { request_status: "verifying", status: "failed", installed: false },
        (false, 1) => CertificateView { request_status: "created", status: "installing", installed: false },
        (false, _) => CertificateView { request_status: "created", status: "installed", installed: true },
    };
    if deleted_at.is_some() {
        view.status = "deleting";
        view.installed = false;
    }
    view
}

/// Site command: `waiting → running → finished | failed`.
pub fn command_status(created_at: DateTime<Utc>, fails: bool, now: DateTime<Utc>, delay: Duration) -> &'static str {
    match steps_elapsed(created_at, now, delay, 2) {
        0 => "waiting",
        1 => "running",
        _ if fails => "failed",
        _ => "finished",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
    }
    fn at(ms: i64) -> DateTime<Utc> {
        t0() + ChronoDuration::milliseconds(ms)
    }
    const D: Duration = Duration::from_millis(100);

    #[test]
    fn realistic_timing_takes_forges_own_durations() {
        let t = Timing::realistic(1.0);
        let s = |secs: i64| at(secs * 1000);
        assert_eq!(install_status(t0(), None, s(59), t.site_install), "installing");
        assert_eq!(install_status(t0(), None, s(60), t.site_install), "installed");
        assert_eq!(repository_status(t0(), s(79), &t), "installing");
        assert_eq!(repository_status(t0(), s(80), &t), "installed");
        assert_eq!(deployment_view(t0(), false, s(89), t.deploy_step).status, "deploying");
        assert_eq!(deployment_view(t0(), false, s(90), t.deploy_step).status, "finished");
        assert!(!certificate_view(t0(), false, None, s(44), t.certificate_step).installed);
        assert!(certificate_view(t0(), false, None, s(45), t.certificate_step).installed);
        let fast = Timing::realistic(0.1);
        assert_eq!(fast.deploy_step, t.deploy_step / 10);
        // One delay for every step: the repository is installed with its site.
        let u = Timing::uniform(Duration::from_millis(100));
        assert_eq!(repository_status(t0(), at(100), &u), "installed");
    }

    #[test]
    fn provisioning_resources_install_after_one_delay() {
        assert_eq!(install_status(t0(), None, at(0), D), "installing");
        assert_eq!(install_status(t0(), None, at(99), D), "installing");
        assert_eq!(install_status(t0(), None, at(100), D), "installed");
        assert_eq!(install_status(t0(), Some(at(500)), at(510), D), "removing");
    }

    #[test]
    fn clock_going_backwards_never_underflows() {
        assert_eq!(install_status(t0(), None, at(-1000), D), "installing");
    }

    #[test]
    fn deletion_is_gone_after_one_delay() {
        assert!(!is_gone(None, at(10_000), D));
        assert!(!is_gone(Some(at(0)), at(99), D));
        assert!(is_gone(Some(at(0)), at(100), D));
    }

    #[test]
    fn deployment_walks_queued_deploying_finished() {
        assert_eq!(
            deployment_view(t0(), false, at(50), D),
            DeploymentView { status: "queued", started_at: None, ended_at: None }
        );
        let deploying = deployment_view(t0(), false, at(150), D);
        assert_eq!(deploying.status, "deploying");
        assert_eq!(deploying.started_at, Some(at(100)));
        assert_eq!(deploying.ended_at, None);
        let done = deployment_view(t0(), false, at(250), D);
        assert_eq!(done.status, "finished");
        assert_eq!(done.ended_at, Some(at(200)));
        assert!(deployment_is_terminal(done.status));
        assert_eq!(deployment_view(t0(), true, at(10_000), D).status, "failed");
    }

    #[test]
    fn certificate_installs_or_fails() {
        assert_eq!(certificate_view(t0(), false, None, at(0), D).request_status, "verifying");
        let mid = certificate_view(t0(), false, None, at(100), D);
        assert_eq!((mid.request_status, mid.status, mid.installed), ("created", "installing", false));
        let done = certificate_view(t0(), false, None, at(200), D);
        assert_eq!((done.request_status, done.status, done.installed), ("created", "installed", true));
        let failed = certificate_view(t0(), true, None, at(200), D);
        assert_eq!((failed.status, failed.installed), ("failed", false));
        assert_eq!(certificate_view(t0(), false, Some(at(300)), at(310), D).status, "deleting");
    }

    #[test]
    fn domain_and_user_update_statuses() {
        assert_eq!(domain_status(t0(), None, at(0), D), "pending");
        assert_eq!(domain_status(t0(), None, at(100), D), "enabled");
        assert_eq!(database_user_status(t0(), Some(at(500)), None, at(550), D), "updating");
        assert_eq!(database_user_status(t0(), Some(at(500)), None, at(600), D), "installed");
    }

    #[test]
    fn commands_finish_or_fail() {
        assert_eq!(command_status(t0(), false, at(0), D), "waiting");
        assert_eq!(command_status(t0(), false, at(100), D), "running");
        assert_eq!(command_status(t0(), false, at(200), D), "finished");
        assert_eq!(command_status(t0(), true, at(200), D), "failed");
    }
}
