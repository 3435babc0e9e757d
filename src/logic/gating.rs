//! Gating of PreviewEnvironments by a RepoDependencyGraph: which environments of a
//! stack one environment waits for before it deploys, and which must be gone before
//! it is deleted.
//!
//! The PreviewEnvironment controller calls two functions with the graph its
//! `spec.graphRef` names (`None` when that graph does not exist), the environment's
//! repository, and what it observes of the *other* environments of the same
//! `spec.stack`:
//!
//! ```text
//! deploy_gate(graph: Option<&RepoDependencyGraph>, repository: &str,
//!             stack: &BTreeMap<String, bool>)  -> Gate   // repository -> its environment is Ready
//! delete_gate(graph: Option<&RepoDependencyGraph>, repository: &str,
//!             stack: &BTreeSet<String>)        -> Gate   // repositories whose environment still exists
//! ```
//!
//! [`Gate::Open`] means go ahead; [`Gate::Wait`] carries a stable CamelCase
//! [`Wait::reason`] for `DependenciesReady=False`, the repositories waited for
//! ([`Wait::waiting_for`], sorted) and a message for humans. The caller requeues and
//! tries again when an environment of the stack or the graph changes.
//!
//! The rules:
//!
//! - **Deploy**: an environment waits until every environment of the stack whose
//!   repository it *requires*, directly or through other repositories, is Ready.
//!   Required edges are followed even through repositories that have no environment
//!   in the stack (a dependency of a dependency still goes first). A dependency with no
//!   environment in the stack does not gate: the stack uses it from elsewhere.
//!   Optional edges (`required: false`) never gate.
//! - **Cycles** block only the repositories on them: a repository on a required cycle
//!   waits with reason [`DEPENDENCY_CYCLE`] naming the cycle, until the cycle is broken.
//!   A repository that merely requires one of them waits like for any other
//!   dependency that is not Ready (and only when that dependency has an environment
//!   in the stack).
//! - **Graph state**: a graph that does not exist ([`GRAPH_NOT_FOUND`]), whose status
//!   describes an older generation ([`GRAPH_NOT_ANALYSED`]), or that does not list the
//!   repository ([`NOT_IN_GRAPH`]) makes the environment wait: deploying ungated
//!   could break the order the user asked for.
//! - **Delete**: an environment is deleted only after the environments of every
//!   repository that requires it, directly or not, are gone. Repositories on the same
//!   required cycle do not wait for each other (they would wait forever), and nothing
//!   blocks deletion when the graph is missing, stale or does not list the repository:
//!   deletion must always be able to finish.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::api::RepoDependencyGraph;

/// Reason: the repository is on a required dependency cycle.
pub const DEPENDENCY_CYCLE: &str = "DependencyCycle";
/// Reason: environments of required dependencies in the stack are not Ready yet.
pub const DEPENDENCIES_NOT_READY: &str = "DependenciesNotReady";
/// Reason: environments of dependents in the stack still exist (deletion).
pub const DEPENDENTS_EXIST: &str = "DependentsExist";
/// Reason: the graph named by `graphRef` does not exist.
pub const GRAPH_NOT_FOUND: &str = "GraphNotFound";
/// Reason: the graph's status does not describe its current spec yet.
pub const GRAPH_NOT_ANALYSED: &str = "GraphNotAnalysed";
/// Reason: the graph does not list the environment's repository.
pub const NOT_IN_GRAPH: &str = "RepositoryNotInGraph";
/// Reason for `DependenciesReady=True`.
pub const DEPENDENCIES_READY: &str = "DependenciesReady";

/// What gating decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Nothing to wait for.
    Open,
    /// Wait, and say why.
    Wait(Wait),
}

/// Why an environment waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    /// Stable CamelCase reason (one of this module's constants).
    pub reason: &'static str,
    /// Repositories waited for, sorted: dependencies not Ready, dependents still
    /// present, or the other members of the cycle. Empty when the graph itself is the problem.
    pub waiting_for: Vec<String>,
    /// For humans: what is waited for and what would end the wait.
    pub message: String,
}

impl Gate {
    /// Whether the environment may go ahead.
    pub fn is_open(&self) -> bool {
        matches!(self, Gate::Open)
    }

    fn wait(reason: &'static str, waiting_for: Vec<String>, message: String) -> Self {
        Gate::Wait(Wait { reason, waiting_for, message })
    }
}

/// Whether the environment of `repository` may deploy, given the other environments
/// of its stack (`stack`: repository -> that environment is Ready).
pub fn deploy_gate(graph: Option<&RepoDependencyGraph>, repository: &str, stack: &BTreeMap<String, bool>) -> Gate {
    let Some(graph) = graph else {
        return Gate::wait(
            GRAPH_NOT_FOUND,
            Vec::new(),
            "the RepoDependencyGraph named by graphRef does not exist".into(),
        );
    };
    let name = graph.metadata.name.as_deref().unwrap_or_default();
    let edges = match RequiredEdges::of(graph) {
        Ok(edges) => edges,
        Err(stale) => return Gate::wait(GRAPH_NOT_ANALYSED, Vec::new(), format!("{stale} (graph {name})")),
    };
    if !edges.repositories.contains(repository) {
        return Gate::wait(
            NOT_IN_GRAPH,
            Vec::new(),
            format!("{repository} is not a repository of graph {name}; add it to spec.repositories"),
        );
    }
    let cycles = edges.cycles_through(repository);
    if !cycles.is_empty() {
        let members: BTreeSet<String> =
            cycles.iter().flat_map(|c| c.iter()).filter(|r| r.as_str() != repository).cloned().collect();
        let paths: Vec<String> = cycles.iter().map(|c| c.join(" -> ")).collect();
        return Gate::wait(
            DEPENDENCY_CYCLE,
            members.into_iter().collect(),
            format!(
                "{repository} is on a dependency cycle of graph {name} ({}); it cannot deploy until the cycle is \
                 broken (remove an edge or mark one required: false)",
                paths.join("; ")
            ),
        );
    }
    let not_ready: Vec<String> = edges
        .reachable(repository, Direction::Dependencies)
        .into_iter()
        .filter(|r| stack.get(r) == Some(&false))
        .collect();
    if not_ready.is_empty() {
        return Gate::Open;
    }
    let described: Vec<String> = not_ready
        .iter()
        .map(|r| if edges.on_cycle(r) { format!("{r} (on a dependency cycle)") } else { r.clone() })
        .collect();
    Gate::wait(
        DEPENDENCIES_NOT_READY,
        not_ready,
        format!("waiting for the environments of {} in this stack to be Ready", described.join(", ")),
    )
}

/// Whether the environment of `repository` may be deleted, given the repositories
/// whose environments still exist in its stack (`stack`, itself excluded or not).
pub fn delete_gate(graph: Option<&RepoDependencyGraph>, repository: &str, stack: &BTreeSet<String>) -> Gate {
    let Some(edges) = graph.and_then(|g| RequiredEdges::of(g).ok()) else { return Gate::Open };
    if !edges.repositories.contains(repository) {
        return Gate::Open;
    }
    let upstream = edges.reachable(repository, Direction::Dependencies);
    let present: Vec<String> = edges
        .reachable(repository, Direction::Dependents)
        .into_iter()
        .filter(|r| stack.contains(r) && !upstream.contains(r))
        .collect();
    if present.is_empty() {
        return Gate::Open;
    }
    Gate::wait(
        DEPENDENTS_EXIST,
        present.clone(),
        format!("waiting for the environments of {} in this stack to be deleted first", present.join(", ")),
    )
}

#[derive(Clone, Copy)]
enum Direction {
    Dependencies,
    Dependents,
}

/// The required edges of a graph whose status describes its current spec.
struct RequiredEdges<'a> {
    repositories: BTreeSet<&'a str>,
    down: BTreeMap<&'a str, BTreeSet<&'a str>>,
    up: BTreeMap<&'a str, BTreeSet<&'a str>>,
    cycles: &'a [Vec<String>],
    /// Repositories on a required cycle (complete even when `cycles` is truncated).
    cyclic: BTreeSet<&'a str>,
}

impl<'a> RequiredEdges<'a> {
    /// Declared edges come from the spec (the status may leave them out when it is
    /// large), discovered ones from the status; missing ones end outside the graph.
    fn of(graph: &'a RepoDependencyGraph) -> Result<Self, &'static str> {
        let status = graph.status.as_ref().ok_or("the graph has not been analysed yet")?;
        if status.observed_generation.is_none() || status.observed_generation != graph.metadata.generation {
            return Err("the graph's status does not describe its current spec yet");
        }
        let repositories: BTreeSet<&str> = graph.spec.repositories.iter().map(|r| r.name.as_str()).collect();
        let declared = graph.spec.repositories.iter().flat_map(|r| {
            r.depends_on.iter().filter(|d| d.required).map(move |d| (r.name.as_str(), d.repository.as_str()))
        });
        let discovered =
            status.edges.iter().chain(&status.missing).filter(|e| e.required).map(|e| (e.from.as_str(), e.to.as_str()));
        let mut down: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        let mut up: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (from, to) in declared.chain(discovered) {
            down.entry(from).or_default().insert(to);
            up.entry(to).or_default().insert(from);
        }
        let cyclic = status
            .repositories
            .iter()
            .filter(|r| r.waiting_on.contains(&r.name))
            .map(|r| r.name.as_str())
            .chain(status.cycles.iter().flatten().map(String::as_str))
            .collect();
        Ok(Self { repositories, down, up, cycles: &status.cycles, cyclic })
    }

    fn on_cycle(&self, repository: &str) -> bool {
        self.cyclic.contains(repository)
    }

    /// The reported cycles through `repository`; one synthetic entry when it is on a
    /// cycle the (truncated) list leaves out.
    fn cycles_through(&self, repository: &str) -> Vec<Vec<String>> {
        if !self.on_cycle(repository) {
            return Vec::new();
        }
        let listed: Vec<Vec<String>> =
            self.cycles.iter().filter(|c| c.iter().any(|r| r == repository)).cloned().collect();
        if !listed.is_empty() {
            return listed;
        }
        // Its strongly connected component: what it reaches and what reaches it.
        let down = self.reachable(repository, Direction::Dependencies);
        let up = self.reachable(repository, Direction::Dependents);
        let mut members: Vec<String> = down.intersection(&up).cloned().collect();
        members.insert(0, repository.to_string());
        members.push(repository.to_string());
        vec![members]
    }

    /// Every repository reachable from `start` over required edges, `start` excluded
    /// unless it lies on a cycle.
    fn reachable(&self, start: &str, direction: Direction) -> BTreeSet<String> {
        let next = match direction {
            Direction::Dependencies => &self.down,
            Direction::Dependents => &self.up,
        };
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut queue: VecDeque<&str> = VecDeque::from([start]);
        while let Some(r) = queue.pop_front() {
            for &n in next.get(r).into_iter().flatten() {
                if seen.insert(n) {
                    queue.push_back(n);
                }
            }
        }
        seen.into_iter().filter(|r| *r != start).map(str::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::repo_dependency_graph::EdgeStatus;
    use crate::api::repo_dependency_graph::{Dependency, GraphOptions, RepoDependencyGraphSpec, Repository};
    use crate::logic::graph::analyse;

    /// A graph analysed the way the controller does it, `edges` as (from, to, required).
    fn graph(edges: &[(&str, &str, bool)], extra: &[&str]) -> RepoDependencyGraph {
        let mut names: BTreeSet<&str> = extra.iter().copied().collect();
        let mut repositories: BTreeMap<&str, Repository> = BTreeMap::new();
        for &(from, to, required) in edges {
            names.insert(from);
            if !to.starts_with("missing/") {
                names.insert(to);
            }
            repositories
                .entry(from)
                .or_insert_with(|| Repository { name: from.into(), depends_on: vec![], discovery: vec![] })
                .depends_on
                .push(Dependency { repository: to.into(), required });
        }
        let repositories: Vec<Repository> = names
            .iter()
            .map(|n| {
                repositories.remove(n).unwrap_or_else(|| Repository {
                    name: (*n).into(),
                    depends_on: vec![],
                    discovery: vec![],
                })
            })
            .collect();
        let spec = RepoDependencyGraphSpec { repositories, options: GraphOptions::default() };
        let mut status = analyse(&spec.repositories, &[], &spec.options).to_status(&[]);
        status.observed_generation = Some(1);
        let mut g = RepoDependencyGraph::new("platform", spec);
        g.metadata.generation = Some(1);
        g.status = Some(status);
        g
    }

    fn stack(entries: &[(&str, bool)]) -> BTreeMap<String, bool> {
        entries.iter().map(|(r, ready)| (r.to_string(), *ready)).collect()
    }

    fn present(entries: &[&str]) -> BTreeSet<String> {
        entries.iter().map(|r| r.to_string()).collect()
    }

    fn waiting(gate: &Gate) -> (&'static str, Vec<&str>) {
        match gate {
            Gate::Open => ("Open", vec![]),
            Gate::Wait(w) => (w.reason, w.waiting_for.iter().map(String::as_str).collect()),
        }
    }

    #[test]
    fn a_dependent_waits_for_its_dependency_until_it_is_ready() {
        let g = graph(&[("o/web", "o/api", true)], &[]);
        let gate = deploy_gate(Some(&g), "o/web", &stack(&[("o/api", false)]));
        assert_eq!(waiting(&gate), (DEPENDENCIES_NOT_READY, vec!["o/api"]));
        let Gate::Wait(w) = gate else { unreachable!() };
        assert!(w.message.contains("o/api"), "{}", w.message);
        assert!(deploy_gate(Some(&g), "o/web", &stack(&[("o/api", true)])).is_open());
        assert!(
            deploy_gate(Some(&g), "o/api", &stack(&[("o/web", false)])).is_open(),
            "dependents never gate a deploy"
        );
    }

    #[test]
    fn dependencies_without_an_environment_in_the_stack_do_not_gate() {
        let g = graph(&[("o/web", "o/api", true)], &[]);
        assert!(deploy_gate(Some(&g), "o/web", &stack(&[])).is_open());
    }

    #[test]
    fn required_edges_are_followed_through_repositories_outside_the_stack() {
        let g = graph(&[("o/web", "o/api", true), ("o/api", "o/db", true)], &[]);
        let gate = deploy_gate(Some(&g), "o/web", &stack(&[("o/db", false)]));
        assert_eq!(waiting(&gate), (DEPENDENCIES_NOT_READY, vec!["o/db"]));
        let gate = deploy_gate(Some(&g), "o/web", &stack(&[("o/api", false), ("o/db", false)]));
        assert_eq!(waiting(&gate), (DEPENDENCIES_NOT_READY, vec!["o/api", "o/db"]));
    }

    #[test]
    fn optional_edges_never_gate() {
        let g = graph(&[("o/web", "o/analytics", false), ("o/web", "o/api", true), ("o/api", "o/x", false)], &[]);
        let s = stack(&[("o/analytics", false), ("o/x", false), ("o/api", true)]);
        assert!(deploy_gate(Some(&g), "o/web", &s).is_open());
        assert!(delete_gate(Some(&g), "o/analytics", &present(&["o/web"])).is_open());
    }

    #[test]
    fn a_cycle_blocks_only_the_repositories_on_it_with_the_cycle_named() {
        let g = graph(&[("o/a", "o/b", true), ("o/b", "o/a", true), ("o/c", "o/a", true), ("o/d", "o/e", true)], &[]);
        let everything = stack(&[("o/a", false), ("o/b", false), ("o/c", false), ("o/d", false), ("o/e", true)]);
        let gate = deploy_gate(Some(&g), "o/a", &everything);
        assert_eq!(waiting(&gate), (DEPENDENCY_CYCLE, vec!["o/b"]));
        let Gate::Wait(w) = gate else { unreachable!() };
        assert!(w.message.contains("o/a -> o/b -> o/a"), "{}", w.message);
        // Unrelated repositories deploy as usual.
        assert!(deploy_gate(Some(&g), "o/d", &everything).is_open());
        assert!(deploy_gate(Some(&g), "o/e", &everything).is_open());
        // A dependent of the cycle waits only on environments in the stack, and says why.
        let gate = deploy_gate(Some(&g), "o/c", &everything);
        assert_eq!(waiting(&gate), (DEPENDENCIES_NOT_READY, vec!["o/a", "o/b"]));
        let Gate::Wait(w) = gate else { unreachable!() };
        assert!(w.message.contains("o/a (on a dependency cycle)"), "{}", w.message);
        assert!(deploy_gate(Some(&g), "o/c", &stack(&[])).is_open());
    }

    #[test]
    fn a_self_loop_is_a_cycle_too() {
        let g = graph(&[("o/a", "o/a", true)], &[]);
        let gate = deploy_gate(Some(&g), "o/a", &stack(&[]));
        assert_eq!(waiting(&gate), (DEPENDENCY_CYCLE, vec![]));
    }

    #[test]
    fn a_cycle_left_out_of_a_truncated_list_still_blocks_its_members() {
        let mut g = graph(&[("o/a", "o/b", true), ("o/b", "o/a", true)], &[]);
        if let Some(s) = g.status.as_mut() {
            s.cycles.clear();
            s.cycles_truncated = Some(true);
        }
        let gate = deploy_gate(Some(&g), "o/b", &stack(&[]));
        assert_eq!(waiting(&gate), (DEPENDENCY_CYCLE, vec!["o/a"]));
    }

    #[test]
    fn discovered_edges_from_the_status_gate_like_declared_ones() {
        let mut g = graph(&[], &["o/web", "o/db"]);
        let spec = g.spec.clone();
        let discovered = [EdgeStatus {
            from: "o/web".into(),
            to: "o/db".into(),
            required: true,
            provenance: "compose:c.yml:web".into(),
            profiles: vec![],
        }];
        let mut status = analyse(&spec.repositories, &discovered, &spec.options).to_status(&[]);
        status.observed_generation = Some(1);
        g.status = Some(status);
        let gate = deploy_gate(Some(&g), "o/web", &stack(&[("o/db", false)]));
        assert_eq!(waiting(&gate), (DEPENDENCIES_NOT_READY, vec!["o/db"]));
        // Declared edges are read from the spec, so a status that left them out still gates.
        let g = graph(&[("o/web", "o/api", true)], &[]);
        let mut trimmed = g.clone();
        if let Some(s) = trimmed.status.as_mut() {
            s.edges.clear();
        }
        assert_eq!(
            deploy_gate(Some(&trimmed), "o/web", &stack(&[("o/api", false)])),
            deploy_gate(Some(&g), "o/web", &stack(&[("o/api", false)]))
        );
    }

    #[test]
    fn an_environment_of_a_repository_missing_from_the_graph_gates_its_dependents() {
        let g = graph(&[("o/web", "missing/cdn", true)], &[]);
        let gate = deploy_gate(Some(&g), "o/web", &stack(&[("missing/cdn", false)]));
        assert_eq!(waiting(&gate), (DEPENDENCIES_NOT_READY, vec!["missing/cdn"]));
        assert!(deploy_gate(Some(&g), "o/web", &stack(&[])).is_open());
    }

    #[test]
    fn a_missing_stale_or_foreign_graph_holds_deploys_but_never_deletions() {
        let g = graph(&[("o/web", "o/api", true)], &[]);
        assert_eq!(waiting(&deploy_gate(None, "o/web", &stack(&[]))).0, GRAPH_NOT_FOUND);
        assert_eq!(waiting(&deploy_gate(Some(&g), "o/other", &stack(&[]))).0, NOT_IN_GRAPH);
        let mut stale = g.clone();
        stale.metadata.generation = Some(2);
        assert_eq!(waiting(&deploy_gate(Some(&stale), "o/web", &stack(&[]))).0, GRAPH_NOT_ANALYSED);
        let mut fresh = g.clone();
        fresh.status = None;
        assert_eq!(waiting(&deploy_gate(Some(&fresh), "o/web", &stack(&[]))).0, GRAPH_NOT_ANALYSED);

        let dependents = present(&["o/web"]);
        assert!(delete_gate(None, "o/api", &dependents).is_open());
        assert!(delete_gate(Some(&stale), "o/api", &dependents).is_open());
        assert!(delete_gate(Some(&g), "o/other", &dependents).is_open());
    }

    #[test]
    fn dependents_are_deleted_first_transitively() {
        let g = graph(&[("o/web", "o/api", true), ("o/api", "o/db", true), ("o/admin", "o/db", true)], &[]);
        let gate = delete_gate(Some(&g), "o/db", &present(&["o/web", "o/db", "o/admin"]));
        assert_eq!(waiting(&gate), (DEPENDENTS_EXIST, vec!["o/admin", "o/web"]));
        assert!(delete_gate(Some(&g), "o/web", &present(&["o/api", "o/db"])).is_open());
        assert!(delete_gate(Some(&g), "o/db", &present(&["o/db"])).is_open());
    }

    #[test]
    fn members_of_one_cycle_do_not_wait_for_each_other_to_be_deleted() {
        let g = graph(&[("o/a", "o/b", true), ("o/b", "o/a", true), ("o/c", "o/a", true)], &[]);
        assert!(delete_gate(Some(&g), "o/a", &present(&["o/a", "o/b"])).is_open());
        assert_eq!(
            waiting(&delete_gate(Some(&g), "o/b", &present(&["o/a", "o/b", "o/c"]))),
            (DEPENDENTS_EXIST, vec!["o/c"])
        );
    }
}
