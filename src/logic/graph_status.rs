//! The status a RepoDependencyGraph reconcile writes: the analysis, its conditions,
//! the Events worth publishing (transitions only), and trimming so the object stays
//! within what the apiserver stores.
//!
//! Conditions:
//!
//! - `Ready` is True (reason `Analysed`) when the graph has no required cycle, no
//!   required edge to a repository outside it and respects `maxDepth`; otherwise False
//!   with the first of `MaxDepthExceeded`, `CycleDetected`, `DependencyMissing`.
//!   Discovery files that failed never make it False: they are listed in
//!   `status.discoveryErrors` and counted in the message.
//! - `CycleDetected` is True while there are cycles; its message lists every one.
//! - `DependencyMissing` is True while an edge points outside the graph; its message
//!   lists them (optional ones are marked, they block nothing).
//! - `Stalled` is True only for `MaxDepthExceeded` (the spec's own limit); a cycle is
//!   a finished analysis with a bad result, not a controller that cannot progress.
//! - `Reconciling` is True while a source failed in a way a retry may fix.

use std::fmt::Write;

use crate::api::conditions::{self, Conditioned, Kstatus, READY, STALLED, Status};
use crate::api::repo_dependency_graph::{DiscoveryError, RepoDependencyGraphStatus};
use crate::logic::graph::{Analysis, EXPLICIT};

/// Condition type: the graph has cycles.
pub const CYCLE_DETECTED: &str = "CycleDetected";
/// Condition type: edges point to repositories outside the graph.
pub const DEPENDENCY_MISSING: &str = "DependencyMissing";
/// Reason of a Ready graph.
pub const ANALYSED: &str = "Analysed";
/// Reason while sources are retried.
pub const RETRYING_SOURCES: &str = "RetryingSources";
/// Event reason when the set of failed discovery files changes.
pub const DISCOVERY_FAILED: &str = "DiscoveryFailed";

/// Longest condition message; the API allows 32768, but a wall of text helps nobody.
const MAX_CONDITION_MESSAGE: usize = 4096;
/// Longest Event note the API accepts.
const MAX_EVENT_NOTE: usize = 1024;
/// The per-repository transitive lists, first to go when the status is too large.
const TRANSITIVE: [&str; 2] = ["repositories[].transitiveDependents", "repositories[].transitiveDependencies"];
/// Largest object (spec + status + metadata) the controller writes; etcd refuses
/// requests over 1.5 MiB by default, and metadata needs some room.
pub const MAX_OBJECT_BYTES: usize = 1_300_000;

/// What one reconcile observed.
pub struct Observed<'a> {
    /// The analysis of the spec and the discovered edges.
    pub analysis: &'a Analysis,
    /// One entry per discovery source that failed (fetch or parse).
    pub discovery_errors: &'a [DiscoveryError],
    /// Some source failed in a way a retry may fix.
    pub retrying: bool,
    /// `metadata.generation` of the graph.
    pub generation: Option<i64>,
    /// Bytes the status may take (see [`status_budget`]).
    pub budget: usize,
}

/// An Event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Warning (true) or Normal.
    pub warning: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// For humans, at most 1024 bytes.
    pub message: String,
}

/// The status to write and the Events to publish.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The new status (write it only if it differs from the current one).
    pub status: RepoDependencyGraphStatus,
    /// Events for what changed since `previous`.
    pub events: Vec<Note>,
}

/// Bytes left for the status once a spec of `spec_bytes` (serialized JSON) is stored.
pub fn status_budget(spec_bytes: usize) -> usize {
    MAX_OBJECT_BYTES.saturating_sub(spec_bytes)
}

/// The status and Events for `observed`, keeping transition times from `previous`.
pub fn decide(previous: Option<&RepoDependencyGraphStatus>, observed: &Observed<'_>) -> Decision {
    let analysis = observed.analysis;
    let generation = observed.generation;
    // The transitive lists are quadratic: never build them when they alone would not fit.
    let transitive = analysis.transitive_bytes() <= observed.budget;
    let mut status = analysis.status_with(observed.discovery_errors, transitive);
    if !transitive {
        status.omitted.extend(TRANSITIVE.iter().map(|f| f.to_string()));
    }
    status.observed_generation = generation;
    status.conditions = previous.map(|p| p.conditions.clone()).unwrap_or_default();
    fit(&mut status, observed.budget);

    let cycles = analysis.cycles();
    let cycle_message = if cycles.is_empty() {
        String::new()
    } else {
        let paths: Vec<String> = cycles.iter().map(|c| c.join(" -> ")).collect();
        let more = if analysis.cycles_truncated() { " (and more, not listed)" } else { "" };
        capped(
            format!("{} cycle(s){more}, repositories on them cannot deploy: {}", cycles.len(), paths.join("; ")),
            MAX_CONDITION_MESSAGE,
        )
    };
    let missing = analysis.missing();
    let required_missing = missing.iter().filter(|e| e.required).count();
    let missing_message = if missing.is_empty() {
        String::new()
    } else {
        let lines: Vec<String> = missing
            .iter()
            .map(|e| format!("{} -> {}{}", e.from, e.to, if e.required { "" } else { " (optional)" }))
            .collect();
        capped(format!("not repositories of this graph: {}", lines.join(", ")), MAX_CONDITION_MESSAGE)
    };
    let depth = analysis.check().err();

    let summary = {
        let mut s = format!("{} repositories in {} phase(s)", analysis.names().len(), analysis.phases().len());
        if !status.discovery_errors.is_empty() {
            let _ = write!(
                s,
                "; {} discovery source(s) failed (see status.discoveryErrors)",
                status.discovery_errors.len()
            );
        }
        if !status.omitted.is_empty() {
            let _ = write!(s, "; too large to show {} (see status.omitted)", status.omitted.join(", "));
        }
        s
    };
    let (ready, reason, message) = match (&depth, cycles.is_empty(), required_missing) {
        (Some(e), _, _) => (false, e.reason(), e.to_string()),
        (None, false, _) => (false, CYCLE_DETECTED, cycle_message.clone()),
        (None, true, n) if n > 0 => (false, DEPENDENCY_MISSING, missing_message.clone()),
        _ => (true, ANALYSED, summary),
    };

    let before = |type_: &str| previous.and_then(|p| conditions::get(&p.conditions, type_)).cloned();
    let (ready_before, cycle_before, missing_before, stalled_before) =
        (before(READY), before(CYCLE_DETECTED), before(DEPENDENCY_MISSING), before(STALLED));

    // A graph too deep to analyse is stuck until the spec changes; a cycle or a
    // missing dependency is a result, not a stuck controller.
    let kstatus = match (&depth, ready) {
        (Some(_), _) => Kstatus::Stalled,
        (None, true) => Kstatus::Ready,
        (None, false) => Kstatus::Failed,
    };
    status.kstatus(generation, kstatus, reason, &message);
    let c = &mut status.conditions;
    if observed.retrying {
        let m = "some discovery sources failed and are retried (see status.discoveryErrors)";
        conditions::set_reconciling(c, RETRYING_SOURCES, m, generation);
    }
    if cycles.is_empty() {
        conditions::set(c, CYCLE_DETECTED, Status::False, "NoCycles", "", generation);
    } else {
        conditions::set(c, CYCLE_DETECTED, Status::True, CYCLE_DETECTED, cycle_message.clone(), generation);
    }
    if missing.is_empty() {
        conditions::set(c, DEPENDENCY_MISSING, Status::False, "NoneMissing", "", generation);
    } else {
        conditions::set(c, DEPENDENCY_MISSING, Status::True, DEPENDENCY_MISSING, missing_message.clone(), generation);
    }

    let mut events = Vec::new();
    let became = |before: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>, message: &str| {
        before.as_ref().is_none_or(|b| b.status != "True" || b.message != message)
    };
    if let Some(e) = &depth
        && became(&stalled_before, &e.to_string())
    {
        events.push(note(true, e.reason(), e.to_string()));
    }
    if !cycles.is_empty() && became(&cycle_before, &cycle_message) {
        events.push(note(true, CYCLE_DETECTED, cycle_message));
    }
    if !missing.is_empty() && became(&missing_before, &missing_message) {
        events.push(note(required_missing > 0, DEPENDENCY_MISSING, missing_message));
    }
    let errors_before = previous.map(|p| p.discovery_errors.as_slice()).unwrap_or_default();
    if !status.discovery_errors.is_empty() && status.discovery_errors != errors_before {
        let lines: Vec<String> =
            status.discovery_errors.iter().map(|e| format!("{} {}: {}", e.repository, e.file, e.message)).collect();
        events.push(note(true, DISCOVERY_FAILED, lines.join("; ")));
    }
    if ready && ready_before.as_ref().is_none_or(|b| b.status != "True") {
        events.push(note(false, ANALYSED, message));
    }
    Decision { status, events }
}

fn note(warning: bool, reason: &'static str, message: String) -> Note {
    Note { warning, reason, message: capped(message, MAX_EVENT_NOTE) }
}

/// `text` cut to at most `max` bytes (on a character boundary), marked when cut.
fn capped(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    const MARK: &str = " …";
    let mut end = max - MARK.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &text[..end])
}

/// Leaves out the bulkiest fields, least useful first, until `status` serializes to
/// at most `budget` bytes; records what was left out in `omitted`.
///
/// The order keeps what gating and `kubectl get` rely on for as long as possible:
/// transitive lists (derivable from the edges) go first, declared edges (also in
/// the spec) before discovered ones, and `order`, `phases`, `cycles` and
/// `waitingOn` are never dropped.
pub fn fit(status: &mut RepoDependencyGraphStatus, budget: usize) {
    type Step = (&'static str, fn(&mut RepoDependencyGraphStatus));
    const STEPS: [Step; 6] = [
        (TRANSITIVE[0], |s| s.repositories.iter_mut().for_each(|r| r.transitive_dependents.clear())),
        (TRANSITIVE[1], |s| s.repositories.iter_mut().for_each(|r| r.transitive_dependencies.clear())),
        ("mermaid", |s| s.mermaid = None),
        ("repositories[].dependents", |s| s.repositories.iter_mut().for_each(|r| r.dependents.clear())),
        ("repositories[].dependencies", |s| s.repositories.iter_mut().for_each(|r| r.dependencies.clear())),
        ("edges (explicit; see spec)", |s| s.edges.retain(|e| e.provenance != EXPLICIT)),
    ];
    let size = |s: &RepoDependencyGraphStatus| serde_json::to_vec(s).map_or(usize::MAX, |v| v.len());
    for (name, step) in STEPS {
        if status.omitted.iter().any(|o| o == name) {
            continue;
        }
        if size(status) <= budget {
            return;
        }
        step(status);
        status.omitted.push(name.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::conditions::RECONCILING;
    use crate::api::repo_dependency_graph::{Dependency, EdgeStatus, GraphOptions, Repository};
    use crate::logic::graph::analyse;

    fn repo(name: &str, deps: &[(&str, bool)]) -> Repository {
        Repository {
            name: name.into(),
            depends_on: deps
                .iter()
                .map(|(d, required)| Dependency { repository: (*d).into(), required: *required })
                .collect(),
            discovery: vec![],
        }
    }

    fn observe(
        repos: &[Repository],
        options: &GraphOptions,
        errors: &[DiscoveryError],
        previous: Option<&RepoDependencyGraphStatus>,
    ) -> Decision {
        let analysis = analyse(repos, &[], options);
        decide(
            previous,
            &Observed {
                analysis: &analysis,
                discovery_errors: errors,
                retrying: false,
                generation: Some(3),
                budget: usize::MAX,
            },
        )
    }

    fn condition<'a>(s: &'a RepoDependencyGraphStatus, type_: &str) -> (&'a str, &'a str, &'a str) {
        let c = conditions::get(&s.conditions, type_).unwrap_or_else(|| panic!("no {type_} condition"));
        (c.status.as_str(), c.reason.as_str(), c.message.as_str())
    }

    fn reasons(d: &Decision) -> Vec<&'static str> {
        d.events.iter().map(|e| e.reason).collect()
    }

    #[test]
    fn an_acyclic_graph_is_ready_and_says_so_once() {
        let repos = [repo("o/a", &[("o/b", true)]), repo("o/b", &[])];
        let first = observe(&repos, &GraphOptions::default(), &[], None);
        assert_eq!(condition(&first.status, READY), ("True", ANALYSED, "2 repositories in 2 phase(s)"));
        assert_eq!(condition(&first.status, CYCLE_DETECTED).0, "False");
        assert_eq!(condition(&first.status, DEPENDENCY_MISSING).0, "False");
        assert_eq!(condition(&first.status, STALLED).0, "False");
        assert_eq!(condition(&first.status, RECONCILING).0, "False");
        assert_eq!(first.status.observed_generation, Some(3));
        assert_eq!(reasons(&first), vec![ANALYSED]);
        let again = observe(&repos, &GraphOptions::default(), &[], Some(&first.status));
        assert_eq!(again.status, first.status, "a second pass changes nothing, so nothing is written");
        assert!(again.events.is_empty());
    }

    #[test]
    fn every_cycle_is_listed_in_the_condition_and_announced_when_it_changes() {
        let repos = [repo("o/a", &[("o/b", true)]), repo("o/b", &[("o/a", true)]), repo("o/c", &[("o/c", true)])];
        let d = observe(&repos, &GraphOptions::default(), &[], None);
        assert_eq!(condition(&d.status, READY).0, "False");
        assert_eq!(condition(&d.status, READY).1, CYCLE_DETECTED);
        let (status, reason, message) = condition(&d.status, CYCLE_DETECTED);
        assert_eq!((status, reason), ("True", CYCLE_DETECTED));
        assert!(message.contains("o/a -> o/b -> o/a") && message.contains("o/c -> o/c"), "{message}");
        assert_eq!(condition(&d.status, STALLED).0, "False", "a cycle is a result, not a stuck controller");
        assert_eq!(reasons(&d), vec![CYCLE_DETECTED]);
        assert!(d.events[0].warning);
        let same = observe(&repos, &GraphOptions::default(), &[], Some(&d.status));
        assert!(same.events.is_empty());
        let fixed = [repo("o/a", &[("o/b", true)]), repo("o/b", &[]), repo("o/c", &[])];
        let after = observe(&fixed, &GraphOptions::default(), &[], Some(&d.status));
        assert_eq!(condition(&after.status, CYCLE_DETECTED).0, "False");
        assert_eq!(condition(&after.status, READY).0, "True");
        assert_eq!(reasons(&after), vec![ANALYSED]);
    }

    #[test]
    fn only_required_missing_edges_make_the_graph_unready() {
        let optional = [repo("o/a", &[("o/x", false)])];
        let d = observe(&optional, &GraphOptions::default(), &[], None);
        assert_eq!(condition(&d.status, READY).0, "True");
        let (status, _, message) = condition(&d.status, DEPENDENCY_MISSING);
        assert_eq!((status, message), ("True", "not repositories of this graph: o/a -> o/x (optional)"));
        assert!(!d.events.iter().find(|e| e.reason == DEPENDENCY_MISSING).is_some_and(|e| e.warning));

        let required = [repo("o/a", &[("o/x", true)])];
        let d = observe(&required, &GraphOptions::default(), &[], None);
        assert_eq!(
            condition(&d.status, READY),
            ("False", DEPENDENCY_MISSING, "not repositories of this graph: o/a -> o/x")
        );
        assert!(d.events.iter().any(|e| e.reason == DEPENDENCY_MISSING && e.warning));
    }

    #[test]
    fn exceeding_max_depth_stalls() {
        let repos = [repo("o/a", &[("o/b", true)]), repo("o/b", &[("o/c", true)]), repo("o/c", &[])];
        let options = GraphOptions { max_depth: Some(1), allow_parallel: true };
        let d = observe(&repos, &options, &[], None);
        assert_eq!(condition(&d.status, READY).1, "MaxDepthExceeded");
        assert_eq!(condition(&d.status, STALLED).0, "True");
        assert_eq!(d.status.order, vec!["o/c", "o/b", "o/a"], "the analysis is still shown");
        assert_eq!(reasons(&d), vec!["MaxDepthExceeded"]);
    }

    #[test]
    fn discovery_errors_are_reported_without_failing_the_graph() {
        let repos = [repo("o/a", &[])];
        let errors =
            [DiscoveryError { repository: "o/a".into(), file: "configmap/c/k".into(), message: "invalid YAML".into() }];
        let d = observe(&repos, &GraphOptions::default(), &errors, None);
        assert_eq!(condition(&d.status, READY).0, "True");
        assert!(condition(&d.status, READY).2.contains("1 discovery source(s) failed"));
        assert_eq!(reasons(&d), vec![DISCOVERY_FAILED, ANALYSED]);
        let again = observe(&repos, &GraphOptions::default(), &errors, Some(&d.status));
        assert!(again.events.is_empty(), "the same failures are not announced twice");
    }

    #[test]
    fn retried_sources_keep_the_graph_reconciling() {
        let repos = [repo("o/a", &[])];
        let analysis = analyse(&repos, &[], &GraphOptions::default());
        let d = decide(
            None,
            &Observed {
                analysis: &analysis,
                discovery_errors: &[],
                retrying: true,
                generation: Some(1),
                budget: usize::MAX,
            },
        );
        assert_eq!(condition(&d.status, RECONCILING).0, "True");
        assert_eq!(condition(&d.status, RECONCILING).1, RETRYING_SOURCES);
    }

    #[test]
    fn a_status_too_large_drops_the_bulkiest_fields_first() {
        // A chain: transitive lists grow quadratically.
        let names: Vec<String> = (0..300).map(|i| format!("o/r{i:03}")).collect();
        let repos: Vec<Repository> = names
            .iter()
            .enumerate()
            .map(|(i, n)| repo(n, &if i > 0 { vec![(names[i - 1].as_str(), true)] } else { vec![] }))
            .collect();
        let analysis = analyse(
            &repos,
            &[EdgeStatus {
                from: "o/r001".into(),
                to: "o/r000".into(),
                required: false,
                provenance: "compose:f:s".into(),
                profiles: vec![],
            }],
            &GraphOptions::default(),
        );
        let full = analysis.to_status(&[]);
        let full_size = serde_json::to_vec(&full).map(|v| v.len()).unwrap_or_default();
        let d = decide(
            None,
            &Observed {
                analysis: &analysis,
                discovery_errors: &[],
                retrying: false,
                generation: Some(1),
                budget: full_size / 4,
            },
        );
        let size = serde_json::to_vec(&d.status).map(|v| v.len()).unwrap_or_default();
        assert!(size <= full_size / 4 + 4096, "{size} vs budget {}", full_size / 4);
        assert_eq!(
            d.status.omitted[..2],
            ["repositories[].transitiveDependents", "repositories[].transitiveDependencies"]
        );
        assert_eq!(d.status.order, full.order);
        assert_eq!(d.status.phases, full.phases);
        assert!(condition(&d.status, READY).2.contains("see status.omitted"));

        let mut tiny = full.clone();
        fit(&mut tiny, 1);
        assert!(tiny.edges.iter().all(|e| e.provenance != EXPLICIT));
        assert_eq!(tiny.edges.len(), 1, "discovered edges stay: gating needs them");
        assert_eq!(tiny.repositories.len(), 300, "names, phases and waitingOn stay");
        let mut roomy = full.clone();
        fit(&mut roomy, usize::MAX);
        assert_eq!(roomy, full);
    }
}
