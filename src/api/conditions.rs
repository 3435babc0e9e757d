//! Condition types, reasons and the kstatus conventions every kind follows.
//!
//! `Ready` says whether the object converged; `Reconciling` is True while work is
//! in progress; `Stalled` is True when the controller cannot make progress without
//! a change from the user. Reasons are CamelCase and stable: they are API.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The object converged to its spec.
pub const READY: &str = "Ready";
/// The controller is working toward the spec.
pub const RECONCILING: &str = "Reconciling";
/// The controller cannot progress until the spec, a referenced Secret or the pool changes.
pub const STALLED: &str = "Stalled";

/// A kind's status: its conditions and the generation they describe.
pub trait Conditioned: Default {
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    fn set_observed_generation(&mut self, generation: Option<i64>);
    /// What a stalled status shows besides its conditions.
    fn on_stall(&mut self, _message: &str) {}

    /// Records `generation` as observed and writes Ready, Reconciling and Stalled
    /// for `kstatus`: the one place every kind's summary conditions are written.
    /// Returns whether the object just entered this state with this reason.
    fn kstatus(&mut self, generation: Option<i64>, kstatus: Kstatus, reason: &str, message: &str) -> bool {
        self.set_observed_generation(generation);
        set_kstatus(self.conditions_mut(), kstatus, reason, message, generation)
    }
}

/// Where an object stands, in kstatus terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kstatus {
    /// Converged: `Ready=True`.
    Ready,
    /// Working toward the spec: `Reconciling=True`, `Ready=False`.
    Progressing,
    /// Not ready and not working on it right now (a failed step waiting out its
    /// backoff, an unreachable peer): `Ready=False`, neither Reconciling nor Stalled.
    Failed,
    /// Cannot progress until the user changes something: `Stalled=True`.
    Stalled,
}

/// Writes Ready, Reconciling and Stalled for `kstatus`, each with `reason`; the
/// message goes on the conditions that are True (and on Ready). Returns whether
/// the condition that defines `kstatus` did not already say so for `reason`.
pub fn set_kstatus(
    conditions: &mut Vec<Condition>,
    kstatus: Kstatus,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
) -> bool {
    let (ready, reconciling, stalled) = match kstatus {
        Kstatus::Ready => (true, false, false),
        Kstatus::Progressing => (false, true, false),
        Kstatus::Failed => (false, false, false),
        Kstatus::Stalled => (false, false, true),
    };
    let defining = match kstatus {
        Kstatus::Ready | Kstatus::Failed => READY,
        Kstatus::Progressing => RECONCILING,
        Kstatus::Stalled => STALLED,
    };
    let wanted = if kstatus == Kstatus::Failed { "False" } else { "True" };
    let first = get(conditions, defining).is_none_or(|c| c.status != wanted || c.reason != reason);
    let text = |on: bool| if on { message } else { "" };
    set(conditions, READY, ready.into(), reason, message, observed_generation);
    set(conditions, RECONCILING, reconciling.into(), reason, text(reconciling), observed_generation);
    set(conditions, STALLED, stalled.into(), reason, text(stalled), observed_generation);
    first
}

/// `Conditioned` for a status with `conditions` and `observedGeneration`, and
/// optionally what its stall shows besides them.
macro_rules! conditioned {
    ($status:ty $(, on_stall($this:ident, $message:ident) $body:block)?) => {
        impl Conditioned for $status {
            fn conditions_mut(&mut self) -> &mut Vec<Condition> {
                &mut self.conditions
            }
            fn set_observed_generation(&mut self, generation: Option<i64>) {
                self.observed_generation = generation;
            }
            $(fn on_stall(&mut self, $message: &str) {
                let $this = self;
                $body
            })?
        }
    };
}

conditioned!(super::BridgeGrantStatus);
conditioned!(super::PreviewClassStatus);
conditioned!(super::PreviewEnvironmentStatus);
conditioned!(super::RepoDependencyGraphStatus);
// A stalled claim still shows a phase (Pending when it never had one).
conditioned!(super::SharedResourceClaimStatus, on_stall(status, _message) {
    status.phase = Some(status.phase.unwrap_or_default());
});
// A stalled Branch is not probed: its reachability is unknown.
conditioned!(super::BranchStatus, on_stall(status, message) {
    let generation = status.observed_generation;
    let message = format!("not probed: {message}");
    set(&mut status.conditions, super::branch::REACHABLE, Status::Unknown, "NotProbed", message, generation);
});

/// Status values of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }
}

impl From<bool> for Status {
    fn from(value: bool) -> Self {
        if value { Status::True } else { Status::False }
    }
}

/// Sets `type_` in `conditions`, keeping `lastTransitionTime` unless the status flips.
///
/// Returns whether anything but timestamps changed, so callers can skip a status
/// write that would only churn the object.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: Status,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
) -> bool {
    let message = message.into();
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == type_) {
        let flipped = existing.status != status.as_str();
        let changed = flipped
            || existing.reason != reason
            || existing.message != message
            || existing.observed_generation != observed_generation;
        if flipped {
            existing.last_transition_time = Time(Timestamp::now());
        }
        existing.status = status.as_str().to_string();
        existing.reason = reason.to_string();
        existing.message = message;
        existing.observed_generation = observed_generation;
        return changed;
    }
    conditions.push(Condition {
        type_: type_.to_string(),
        status: status.as_str().to_string(),
        reason: reason.to_string(),
        message,
        observed_generation,
        last_transition_time: Time(Timestamp::now()),
    });
    true
}

/// `Reconciling=True` (and `Stalled=False`) on an object whose `Ready` stands as it
/// is: a Ready object re-checking itself, or one waiting on something else while it
/// keeps what it has. The only other writer of the summary conditions besides
/// [`set_kstatus`].
pub fn set_reconciling(conditions: &mut Vec<Condition>, reason: &str, message: &str, observed_generation: Option<i64>) {
    set(conditions, RECONCILING, Status::True, reason, message, observed_generation);
    set(conditions, STALLED, Status::False, reason, "", observed_generation);
}

/// The condition of `type_`, if present.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether `type_` is present with status True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    get(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_changes_only_when_status_flips() {
        let mut conds = Vec::new();
        assert!(set(&mut conds, READY, Status::False, "Provisioning", "creating site", Some(1)));
        let first = conds[0].last_transition_time.clone();
        assert!(set(&mut conds, READY, Status::False, "Provisioning", "creating database", Some(1)));
        assert_eq!(conds[0].last_transition_time, first, "same status keeps the time");
        assert!(!set(&mut conds, READY, Status::False, "Provisioning", "creating database", Some(1)));
        set(&mut conds, READY, Status::True, "Ready", "", Some(1));
        assert!(conds[0].last_transition_time.0 >= first.0);
        assert!(is_true(&conds, READY));
        assert_eq!(conds.len(), 1);
    }

    #[test]
    fn stalled_is_new_only_on_a_new_reason() {
        let mut conds = Vec::new();
        assert!(set_kstatus(&mut conds, Kstatus::Stalled, "SecretNotFound", "no secret", Some(1)));
        assert!(!set_kstatus(&mut conds, Kstatus::Stalled, "SecretNotFound", "no secret", Some(1)));
        assert!(set_kstatus(&mut conds, Kstatus::Stalled, "SiteNameTaken", "taken", Some(1)));
        assert!(is_true(&conds, STALLED) && !is_true(&conds, READY) && !is_true(&conds, RECONCILING));
    }
}
