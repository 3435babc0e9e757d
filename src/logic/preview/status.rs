//! The PreviewEnvironment condition state machine, free of I/O: each step's
//! outcome becomes its condition, and the step conditions become Ready,
//! Reconciling and Stalled. `Ready` is True only while every step that applies is.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::api::conditions::{self, Kstatus, READY, Status};

/// A step's condition type. The order is the order the steps run in, and the
/// order in which the first unfinished one names why the environment is not Ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StepCondition {
    DatabaseReady,
    SiteReady,
    EnvironmentReady,
    WorkersReady,
    CertificateReady,
    DependenciesReady,
    Deployed,
}

impl StepCondition {
    /// Every step, in order.
    pub const ALL: [StepCondition; 7] = [
        StepCondition::DatabaseReady,
        StepCondition::SiteReady,
        StepCondition::EnvironmentReady,
        StepCondition::WorkersReady,
        StepCondition::CertificateReady,
        StepCondition::DependenciesReady,
        StepCondition::Deployed,
    ];

    /// The steps that live on the site: a replaced site has none of them yet.
    pub const ON_SITE: [StepCondition; 5] = [
        StepCondition::SiteReady,
        StepCondition::EnvironmentReady,
        StepCondition::WorkersReady,
        StepCondition::CertificateReady,
        StepCondition::Deployed,
    ];

    /// The condition type (API).
    pub fn as_str(self) -> &'static str {
        match self {
            StepCondition::DatabaseReady => "DatabaseReady",
            StepCondition::SiteReady => "SiteReady",
            StepCondition::EnvironmentReady => "EnvironmentReady",
            StepCondition::WorkersReady => "WorkersReady",
            StepCondition::CertificateReady => "CertificateReady",
            StepCondition::DependenciesReady => "DependenciesReady",
            StepCondition::Deployed => "Deployed",
        }
    }

    /// The reason of the condition once the step is done.
    fn done_reason(self) -> Reason {
        match self {
            StepCondition::Deployed => Reason::DeploymentFinished,
            _ => Reason::Ready,
        }
    }
}

/// Why a step's condition says what it says. The strings are API (condition
/// reasons users and tools match on); the enum keeps them in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    Ready,
    DeploymentFinished,
    WaitingForRedis,
    DatabaseProvisioning,
    DatabaseSeeding,
    SiteInstalling,
    SiteRemoving,
    SiteReplaced,
    WorkersInstalling,
    CertificateIssuing,
    CertificateFailed,
    Deploying,
    DeploymentFailed,
    WaitingForDependencies,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Ready => "Ready",
            Reason::DeploymentFinished => "DeploymentFinished",
            Reason::WaitingForRedis => "WaitingForRedis",
            Reason::DatabaseProvisioning => "DatabaseProvisioning",
            Reason::DatabaseSeeding => "DatabaseSeeding",
            Reason::SiteInstalling => "SiteInstalling",
            Reason::SiteRemoving => "SiteRemoving",
            Reason::SiteReplaced => "SiteReplaced",
            Reason::WorkersInstalling => "WorkersInstalling",
            Reason::CertificateIssuing => "CertificateIssuing",
            Reason::CertificateFailed => "CertificateFailed",
            Reason::Deploying => "Deploying",
            Reason::DeploymentFailed => "DeploymentFailed",
            Reason::WaitingForDependencies => "WaitingForDependencies",
        }
    }

    /// A failure waiting out its backoff (condition False, a Warning Event, not
    /// Reconciling) rather than work in progress (condition Unknown).
    pub fn is_failure(self) -> bool {
        matches!(self, Reason::CertificateFailed | Reason::DeploymentFailed)
    }

    /// Whether `reason` (a condition's reason string) is one of the failures.
    pub fn names_failure(reason: &str) -> bool {
        reason == Reason::CertificateFailed.as_str() || reason == Reason::DeploymentFailed.as_str()
    }
}

/// How a step ended on this pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Converged; the message says what is true now.
    Done(String),
    /// Not yet, and why.
    Waiting { reason: Reason, message: String },
}

impl Outcome {
    pub fn waiting(reason: Reason, message: impl Into<String>) -> Self {
        Outcome::Waiting { reason, message: message.into() }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done(_))
    }
}

/// Which steps apply to an environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applicable {
    /// `spec.database` is set.
    pub database: bool,
    /// `spec.graphRef` is set.
    pub dependencies: bool,
}

impl Applicable {
    pub fn contains(self, step: StepCondition) -> bool {
        match step {
            StepCondition::DatabaseReady => self.database,
            StepCondition::DependenciesReady => self.dependencies,
            _ => true,
        }
    }
}

/// Sets a step's condition from its outcome.
pub fn record(conds: &mut Vec<Condition>, step: StepCondition, outcome: Outcome, generation: Option<i64>) {
    match outcome {
        Outcome::Done(message) => {
            conditions::set(conds, step.as_str(), Status::True, step.done_reason().as_str(), message, generation);
        }
        Outcome::Waiting { reason, message } => {
            let status = if reason.is_failure() { Status::False } else { Status::Unknown };
            conditions::set(conds, step.as_str(), status, reason.as_str(), message, generation);
        }
    }
}

/// The first applicable step, in order, whose condition is not True.
pub fn first_unready(conds: &[Condition], applicable: Applicable) -> Option<StepCondition> {
    StepCondition::ALL.into_iter().filter(|s| applicable.contains(*s)).find(|s| !conditions::is_true(conds, s.as_str()))
}

/// Ready, Reconciling and Stalled from the step conditions: Ready (with `url`)
/// when every applicable step is True; otherwise not Ready with the first
/// unfinished step's reason, Reconciling unless that step failed. Conditions of
/// steps that no longer apply are dropped. Returns whether the environment is Ready.
pub fn summarize(conds: &mut Vec<Condition>, applicable: Applicable, url: &str, generation: Option<i64>) -> bool {
    conds.retain(|c| StepCondition::ALL.iter().find(|s| s.as_str() == c.type_).is_none_or(|s| applicable.contains(*s)));
    match first_unready(conds, applicable) {
        None => {
            conditions::set_kstatus(
                conds,
                Kstatus::Ready,
                Reason::Ready.as_str(),
                &format!("{url} is live"),
                generation,
            );
            true
        }
        Some(step) => {
            not_ready(conds, step, generation);
            false
        }
    }
}

/// Takes Ready down when a step it depends on is not True (a drift found
/// mid-pass): no status written in between may say Ready while a step is not.
pub fn guard(conds: &mut Vec<Condition>, applicable: Applicable, generation: Option<i64>) {
    if conditions::is_true(conds, READY)
        && let Some(step) = first_unready(conds, applicable)
    {
        not_ready(conds, step, generation);
    }
}

fn not_ready(conds: &mut Vec<Condition>, step: StepCondition, generation: Option<i64>) {
    let (reason, message) = conditions::get(conds, step.as_str())
        .map(|c| (c.reason.clone(), c.message.clone()))
        .unwrap_or_else(|| ("Provisioning".into(), format!("waiting for {}", step.as_str())));
    let kstatus = if Reason::names_failure(&reason) { Kstatus::Failed } else { Kstatus::Progressing };
    conditions::set_kstatus(conds, kstatus, &reason, &message, generation);
}

/// A retryable failure of the pass itself (Forge or the apiserver unreachable):
/// Reconciling with the error's reason. A Ready environment stays Ready — what
/// failed was looking, not the environment — but one that is not says why.
pub fn failed_pass(conds: &mut Vec<Condition>, reason: &str, message: &str, generation: Option<i64>) {
    if conditions::is_true(conds, READY) {
        conditions::set_reconciling(conds, reason, message, generation);
    } else {
        conditions::set_kstatus(conds, Kstatus::Progressing, reason, message, generation);
    }
}

/// The site is being replaced (deleted out of band, or another one adopted): the
/// conditions that vouched for the old one no longer hold.
pub fn forget_site(conds: &mut Vec<Condition>, generation: Option<i64>) {
    for step in StepCondition::ON_SITE {
        if conditions::is_true(conds, step.as_str()) {
            let reason = Reason::SiteReplaced.as_str();
            conditions::set(conds, step.as_str(), Status::Unknown, reason, "the site is being replaced", generation);
        }
    }
}

/// A step that converged for `generation` (its condition True and observed at
/// it): a pass that is not a drift check need not look at it again.
pub fn settled(conds: &[Condition], step: StepCondition, generation: Option<i64>) -> bool {
    conditions::get(conds, step.as_str()).is_some_and(|c| c.status == "True" && c.observed_generation == generation)
}

/// What changed between two condition lists that deserves an Event: a step or
/// Ready that turned True (Normal), a step that turned False (Warning when it
/// is a failure). `(warning, reason, message)` per change, in step order.
pub fn transitions(before: &[Condition], after: &[Condition]) -> Vec<(bool, String, String)> {
    let types = StepCondition::ALL.iter().map(|s| s.as_str()).chain([READY]);
    let mut out = Vec::new();
    for type_ in types {
        let Some(now) = conditions::get(after, type_) else { continue };
        let old = conditions::get(before, type_);
        if old.is_some_and(|o| o.status == now.status && o.reason == now.reason) {
            continue;
        }
        if now.status == "True" {
            out.push((false, type_.to_string(), now.message.clone()));
        } else if now.status == "False" && type_ != READY {
            out.push((Reason::names_failure(&now.reason), now.reason.clone(), now.message.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::conditions::{RECONCILING, STALLED};

    const ALL: Applicable = Applicable { database: true, dependencies: true };
    const G: Option<i64> = Some(3);

    fn done_all(conds: &mut Vec<Condition>) {
        for s in StepCondition::ALL {
            record(conds, s, Outcome::Done("ok".into()), G);
        }
    }

    fn status_of<'a>(conds: &'a [Condition], t: &str) -> (&'a str, &'a str) {
        let c = conditions::get(conds, t).unwrap_or_else(|| panic!("no {t}"));
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn ready_needs_every_applicable_step() {
        let mut conds = Vec::new();
        done_all(&mut conds);
        assert!(summarize(&mut conds, ALL, "https://x", G));
        assert_eq!(status_of(&conds, READY), ("True", "Ready"));
        assert_eq!(status_of(&conds, RECONCILING).0, "False");
        assert_eq!(status_of(&conds, STALLED).0, "False");
    }

    #[test]
    fn ready_is_never_true_while_a_step_is_unknown() {
        for step in StepCondition::ALL {
            let mut conds = Vec::new();
            done_all(&mut conds);
            record(&mut conds, step, Outcome::waiting(Reason::WorkersInstalling, "1 installing"), G);
            assert!(!summarize(&mut conds, ALL, "https://x", G), "{step:?}");
            assert_eq!(status_of(&conds, READY), ("False", "WorkersInstalling"), "{step:?}");
            assert_eq!(status_of(&conds, RECONCILING), ("True", "WorkersInstalling"));
        }
    }

    #[test]
    fn a_missing_step_condition_is_not_ready_either() {
        let mut conds = Vec::new();
        record(&mut conds, StepCondition::SiteReady, Outcome::Done("ok".into()), G);
        assert!(!summarize(&mut conds, Applicable { database: false, dependencies: false }, "u", G));
        assert_eq!(status_of(&conds, READY), ("False", "Provisioning"));
    }

    #[test]
    fn steps_that_do_not_apply_neither_block_nor_linger() {
        let mut conds = Vec::new();
        done_all(&mut conds);
        record(&mut conds, StepCondition::DatabaseReady, Outcome::waiting(Reason::DatabaseProvisioning, "x"), G);
        let without = Applicable { database: false, dependencies: false };
        assert!(summarize(&mut conds, without, "u", G));
        assert!(conditions::get(&conds, "DatabaseReady").is_none());
        assert!(conditions::get(&conds, "DependenciesReady").is_none());
    }

    #[test]
    fn the_first_unfinished_step_in_order_names_the_reason() {
        let mut conds = Vec::new();
        record(&mut conds, StepCondition::Deployed, Outcome::waiting(Reason::Deploying, "d"), G);
        record(&mut conds, StepCondition::SiteReady, Outcome::waiting(Reason::SiteInstalling, "s"), G);
        summarize(&mut conds, Applicable { database: false, dependencies: false }, "u", G);
        assert_eq!(status_of(&conds, READY), ("False", "SiteInstalling"));
    }

    #[test]
    fn a_failed_step_is_false_and_not_reconciling() {
        let mut conds = Vec::new();
        done_all(&mut conds);
        record(&mut conds, StepCondition::Deployed, Outcome::waiting(Reason::DeploymentFailed, "boom"), G);
        assert_eq!(status_of(&conds, "Deployed"), ("False", "DeploymentFailed"));
        summarize(&mut conds, ALL, "u", G);
        assert_eq!(status_of(&conds, READY), ("False", "DeploymentFailed"));
        assert_eq!(status_of(&conds, RECONCILING).0, "False");
        assert_eq!(status_of(&conds, STALLED).0, "False");
    }

    #[test]
    fn guard_takes_ready_down_mid_pass() {
        let mut conds = Vec::new();
        done_all(&mut conds);
        summarize(&mut conds, ALL, "u", G);
        forget_site(&mut conds, G);
        guard(&mut conds, ALL, G);
        assert_eq!(status_of(&conds, READY), ("False", "SiteReplaced"));
        // The database does not live on the site.
        assert_eq!(status_of(&conds, "DatabaseReady").0, "True");
        assert_eq!(status_of(&conds, "WorkersReady"), ("Unknown", "SiteReplaced"));
    }

    #[test]
    fn a_failed_pass_keeps_ready_but_says_it_is_reconciling() {
        let mut conds = Vec::new();
        done_all(&mut conds);
        summarize(&mut conds, ALL, "u", G);
        failed_pass(&mut conds, "ForgeError", "502", G);
        assert_eq!(status_of(&conds, READY).0, "True");
        assert_eq!(status_of(&conds, RECONCILING), ("True", "ForgeError"));
        let mut fresh = Vec::new();
        failed_pass(&mut fresh, "ForgeError", "502", G);
        assert_eq!(status_of(&fresh, READY), ("False", "ForgeError"));
    }

    #[test]
    fn settled_needs_true_at_this_generation() {
        let mut conds = Vec::new();
        record(&mut conds, StepCondition::SiteReady, Outcome::Done("ok".into()), Some(1));
        assert!(settled(&conds, StepCondition::SiteReady, Some(1)));
        assert!(!settled(&conds, StepCondition::SiteReady, Some(2)));
        assert!(!settled(&conds, StepCondition::WorkersReady, Some(1)));
    }

    #[test]
    fn transitions_name_what_turned_true_or_failed() {
        let before = Vec::new();
        let mut after = Vec::new();
        record(&mut after, StepCondition::SiteReady, Outcome::Done("site up".into()), G);
        record(&mut after, StepCondition::CertificateReady, Outcome::waiting(Reason::CertificateFailed, "dns"), G);
        record(&mut after, StepCondition::WorkersReady, Outcome::waiting(Reason::WorkersInstalling, "w"), G);
        let t = transitions(&before, &after);
        assert_eq!(
            t,
            vec![
                (false, "SiteReady".to_string(), "site up".to_string()),
                (true, "CertificateFailed".to_string(), "dns".to_string())
            ]
        );
        assert!(transitions(&after, &after).is_empty(), "no change, no Event");
    }
}
