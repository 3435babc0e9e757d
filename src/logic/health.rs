//! Health of a remote instance with hysteresis: one lost probe does not flip
//! `Reachable`; `failureThreshold` failed probes in a row turn it False and
//! `successThreshold` successful ones turn it True again.

use std::time::Duration;

/// What the probes have established so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reachability {
    /// Not enough probes yet to say.
    Unknown,
    Reachable,
    Unreachable,
}

/// How many probes in a row it takes to change [`Reachability`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub failure: u32,
    pub success: u32,
}

impl Thresholds {
    /// From the CRD's integers, at least 1 each (the schema already says so).
    pub fn new(failure: i32, success: i32) -> Self {
        Self { failure: failure.max(1) as u32, success: success.max(1) as u32 }
    }
}

/// Probes in a row with the same result; one of the two is always 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Streak {
    pub failures: u32,
    pub successes: u32,
}

/// The state after one more probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observed {
    pub reachability: Reachability,
    pub streak: Streak,
    /// Set when `reachability` changed with this probe.
    pub transition: Option<(Reachability, Reachability)>,
}

/// Folds one probe result into the state: a streak reaching its threshold decides,
/// anything shorter leaves the state as it was.
pub fn observe(current: Reachability, streak: Streak, succeeded: bool, thresholds: Thresholds) -> Observed {
    let streak = if succeeded {
        Streak { failures: 0, successes: streak.successes.saturating_add(1) }
    } else {
        Streak { failures: streak.failures.saturating_add(1), successes: 0 }
    };
    let next = if succeeded && streak.successes >= thresholds.success {
        Reachability::Reachable
    } else if !succeeded && streak.failures >= thresholds.failure {
        Reachability::Unreachable
    } else {
        current
    };
    Observed { reachability: next, streak, transition: (next != current).then_some((current, next)) }
}

/// Where registration with the parent stands, as far as readiness is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistrationState {
    /// No parent to register with.
    NotNeeded,
    Registered,
    /// Not registered (yet): why, for the Ready condition.
    Pending {
        reason: String,
        message: String,
    },
}

/// The Ready and Reconciling conditions a Branch gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    pub reason: String,
    pub message: String,
    /// Whether the controller expects progress on its own (kstatus `Reconciling`).
    pub reconciling: bool,
}

/// Ready when reachable and registered (if it has a parent). An unreachable instance
/// says so first: registration against a parent cannot fix that.
pub fn readiness(reachability: Reachability, registration: &RegistrationState, cordoned: bool) -> Readiness {
    let verdict = |ready: bool, reason: &str, message: String, reconciling: bool| Readiness {
        ready,
        reason: reason.to_string(),
        message,
        reconciling,
    };
    match (reachability, registration) {
        (Reachability::Unreachable, _) => {
            verdict(false, "Unreachable", "the instance does not answer its health probes".into(), false)
        }
        (_, RegistrationState::Pending { reason, message }) => verdict(false, reason, message.clone(), true),
        (Reachability::Unknown, _) => verdict(false, "Probing", "waiting for enough health probes".into(), true),
        (Reachability::Reachable, _) => {
            let mut message = "the instance answers its health probes".to_string();
            if cordoned {
                message.push_str("; cordoned: no new work is routed to it");
            }
            verdict(true, "Reachable", message, false)
        }
    }
}

/// The rule above in words, for `status.graceRule`.
pub fn grace_rule(thresholds: Thresholds, interval: Duration) -> String {
    let probes = |n: u32, what: &str| {
        if n == 1 { format!("1 {what} probe") } else { format!("{n} {what} probes in a row") }
    };
    format!(
        "Reachable turns False after {} (about {} at one probe every {}) and True after {}; \
         an unreachable Branch is never deleted or deregistered",
        probes(thresholds.failure, "failed"),
        human(interval * thresholds.failure),
        human(interval),
        probes(thresholds.success, "successful"),
    )
}

/// `90s` as `1m30s`, `1500ms` as `1.5s`: short and exact enough for a sentence.
fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{}s", d.as_secs_f64());
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Reachability::*;
    use super::*;

    const T: Thresholds = Thresholds { failure: 3, success: 2 };

    /// Runs a sequence of probe results from `start`, returning each state.
    fn run(start: Reachability, probes: &[bool]) -> Vec<Reachability> {
        let (mut state, mut streak) = (start, Streak::default());
        probes
            .iter()
            .map(|ok| {
                let o = observe(state, streak, *ok, T);
                (state, streak) = (o.reachability, o.streak);
                state
            })
            .collect()
    }

    #[test]
    fn unknown_until_a_threshold_is_reached() {
        assert_eq!(run(Unknown, &[true, true]), vec![Unknown, Reachable]);
        assert_eq!(run(Unknown, &[false, false, false]), vec![Unknown, Unknown, Unreachable]);
        assert_eq!(run(Unknown, &[true, false, true, false]), vec![Unknown; 4]);
    }

    #[test]
    fn flapping_under_the_thresholds_changes_nothing() {
        let flapping: Vec<bool> = (0..20).map(|i| i % 2 == 0).collect();
        assert!(run(Reachable, &flapping).iter().all(|s| *s == Reachable));
        assert!(run(Unreachable, &flapping).iter().all(|s| *s == Unreachable));
        // Two failures, a success, two failures: never three in a row.
        assert!(run(Reachable, &[false, false, true, false, false]).iter().all(|s| *s == Reachable));
    }

    #[test]
    fn a_sustained_outage_flips_once_and_recovery_needs_the_success_streak() {
        let states = run(Reachable, &[false, false, false, false, true, true]);
        assert_eq!(states, vec![Reachable, Reachable, Unreachable, Unreachable, Unreachable, Reachable]);
    }

    #[test]
    fn transition_is_reported_only_on_the_probe_that_flips() {
        let o = observe(Reachable, Streak { failures: 2, successes: 0 }, false, T);
        assert_eq!(o.transition, Some((Reachable, Unreachable)));
        assert_eq!(o.streak, Streak { failures: 3, successes: 0 });
        let o = observe(Unreachable, o.streak, false, T);
        assert_eq!(o.transition, None);
        assert_eq!(o.streak.failures, 4);
    }

    #[test]
    fn a_success_resets_the_failure_streak_and_vice_versa() {
        let o = observe(Reachable, Streak { failures: 2, successes: 0 }, true, T);
        assert_eq!(o.streak, Streak { failures: 0, successes: 1 });
        let o = observe(Reachable, Streak { failures: 0, successes: 7 }, false, T);
        assert_eq!(o.streak, Streak { failures: 1, successes: 0 });
    }

    #[test]
    fn thresholds_of_one_flip_on_every_change() {
        let t = Thresholds::new(1, 0);
        assert_eq!(t, Thresholds { failure: 1, success: 1 });
        let o = observe(Reachable, Streak::default(), false, t);
        assert_eq!(o.reachability, Unreachable);
        assert_eq!(observe(Unreachable, o.streak, true, t).reachability, Reachable);
    }

    #[test]
    fn ready_needs_reachable_and_registered_and_unreachable_comes_first() {
        let pending = RegistrationState::Pending { reason: "ParentNotFound".into(), message: "no top".into() };
        let r = readiness(Reachable, &RegistrationState::Registered, false);
        assert!(r.ready && !r.reconciling && r.reason == "Reachable");
        assert!(readiness(Reachable, &RegistrationState::NotNeeded, false).ready);
        let r = readiness(Reachable, &pending, false);
        assert_eq!((r.ready, r.reason.as_str(), r.reconciling), (false, "ParentNotFound", true));
        let r = readiness(Unreachable, &pending, false);
        assert_eq!((r.ready, r.reason.as_str(), r.reconciling), (false, "Unreachable", false));
        let r = readiness(Unknown, &RegistrationState::NotNeeded, false);
        assert_eq!((r.ready, r.reason.as_str(), r.reconciling), (false, "Probing", true));
    }

    #[test]
    fn cordoned_stays_ready_and_says_so() {
        let r = readiness(Reachable, &RegistrationState::NotNeeded, true);
        assert!(r.ready);
        assert!(r.message.contains("cordoned"));
    }

    #[test]
    fn grace_rule_reads_as_a_sentence() {
        assert_eq!(
            grace_rule(T, Duration::from_secs(30)),
            "Reachable turns False after 3 failed probes in a row (about 1m30s at one probe every 30s) \
             and True after 2 successful probes in a row; an unreachable Branch is never deleted or deregistered"
        );
        let one = grace_rule(Thresholds::new(1, 1), Duration::from_millis(1500));
        assert!(one.contains("after 1 failed probe (about 1.5s at one probe every 1.5s)"), "{one}");
        assert_eq!(human(Duration::from_secs(3600 + 5)), "1h5s");
    }
}
