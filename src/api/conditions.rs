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
    fn on_stall(&mut self) {}
}

impl Conditioned for super::BridgeGrantStatus {
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
    fn set_observed_generation(&mut self, generation: Option<i64>) {
        self.observed_generation = generation;
    }
}

impl Conditioned for super::PreviewEnvironmentStatus {
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
    fn set_observed_generation(&mut self, generation: Option<i64>) {
        self.observed_generation = generation;
    }
}

impl Conditioned for super::SharedResourceClaimStatus {
    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.conditions
    }
    fn set_observed_generation(&mut self, generation: Option<i64>) {
        self.observed_generation = generation;
    }
    /// A stalled claim still shows a phase (Pending when it never had one).
    fn on_stall(&mut self) {
        self.phase = Some(self.phase.unwrap_or_default());
    }
}

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

/// Marks an object as stalled (kstatus): `Ready=False` and `Stalled=True` with
/// `reason`, `Reconciling=False`. Returns whether this is a new stall (not yet
/// stalled, or stalled for another reason), the moment to publish a Warning Event.
pub fn set_stalled(
    conditions: &mut Vec<Condition>,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
) -> bool {
    let first = get(conditions, STALLED).is_none_or(|c| c.status != "True" || c.reason != reason);
    set(conditions, READY, Status::False, reason, message, observed_generation);
    set(conditions, STALLED, Status::True, reason, message, observed_generation);
    set(conditions, RECONCILING, Status::False, reason, "", observed_generation);
    first
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
        assert!(set_stalled(&mut conds, "SecretNotFound", "no secret", Some(1)));
        assert!(!set_stalled(&mut conds, "SecretNotFound", "no secret", Some(1)));
        assert!(set_stalled(&mut conds, "SiteNameTaken", "taken", Some(1)));
        assert!(is_true(&conds, STALLED) && !is_true(&conds, READY) && !is_true(&conds, RECONCILING));
    }
}
