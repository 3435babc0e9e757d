//! Dependency-graph analysis: deployment order, parallel phases, every cycle,
//! transitive closure, missing repositories and the depth limit.
//!
//! Edges point from the dependent to the repository it depends on. The rules:
//!
//! - **Missing**: an edge whose end is not a repository of the graph is reported in
//!   `missing`, never dropped. A *required* edge to a missing repository keeps the
//!   dependent (and everything that requires it) out of the order; an optional one
//!   does not.
//! - **Cycles** are cycles of *required* edges: every elementary cycle (Johnson's
//!   algorithm), self-loops included, each as a path back to its first repository,
//!   which is the cycle's alphabetically smallest. At most [`MAX_REPORTED_CYCLES`]
//!   are listed (`cyclesTruncated` says when there are more), because a dense
//!   component can hold exponentially many. Repositories in a cycle, and those that
//!   require one directly or not, get no phase; `waitingOn` names what they wait for.
//! - **Optional edges** order but never block: between two repositories that have a
//!   phase, the dependent goes in a later phase, unless the optional edge closes a loop
//!   with other edges (it lies inside a strongly connected component of the ordering
//!   graph); then it is *relaxed* (ignored for ordering) and listed by
//!   [`Analysis::relaxed_edges`]. An optional edge to a repository without a phase is
//!   ignored for ordering, so it never makes anything wait on a cycle or a missing
//!   repository.
//! - **Phases**: a repository's phase is one more than the highest phase of what it
//!   depends on (0 when nothing), i.e. the earliest phase at which all its
//!   dependencies are in earlier phases. The **order** is the phases concatenated,
//!   each sorted by name, so it is topological, deterministic, and the same sequence
//!   whether or not `allowParallel` is set.
//! - **Depth** is the number of edges in the longest chain of ordering edges, so
//!   `phases = depth + 1`; `maxDepth` is exceeded when `depth > maxDepth`.
//! - **Transitive** dependencies and dependents follow every edge (required and
//!   optional, relaxed or not) and never include the repository itself.
//!
//! Everything is sorted by name so the status does not churn between reconciles.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use fixedbitset::FixedBitSet;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::api::repo_dependency_graph::{
    DiscoveryError, EdgeStatus, GraphOptions, RepoDependencyGraphStatus, Repository, RepositoryStatus,
};

mod closure;
mod cycles;

use closure::closure;
use cycles::elementary_cycles;

/// Most cycles listed in the status; more set `cyclesTruncated`.
pub const MAX_REPORTED_CYCLES: usize = 1000;

/// Provenance of an edge declared in `spec.repositories[].dependsOn`.
pub const EXPLICIT: &str = "explicit";

/// A graph that violates its own options; the controller reports it as `Stalled`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The longest dependency chain is deeper than `spec.options.maxDepth`.
    #[error("the longest dependency chain ({}) has depth {depth}, more than maxDepth {max_depth}", chain.join(" -> "))]
    DepthExceeded {
        /// Depth of the longest chain, in edges.
        depth: usize,
        /// The limit from the spec.
        max_depth: usize,
        /// The chain, dependent first.
        chain: Vec<String>,
    },
}

impl GraphError {
    /// Stable CamelCase reason for conditions and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            GraphError::DepthExceeded { .. } => "MaxDepthExceeded",
        }
    }
}

/// One dependent → dependency pair of the graph, all its provenances merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Index of the dependent in [`Analysis::names`].
    pub from: usize,
    /// Index of the dependency in [`Analysis::names`].
    pub to: usize,
    /// At least one of the merged edges is required.
    pub required: bool,
    /// The link lies on a reported (required) cycle.
    pub in_cycle: bool,
    /// An optional link ignored for ordering because it closes a loop.
    pub relaxed: bool,
}

/// The result of analysing a graph; maps onto [`RepoDependencyGraphStatus`].
#[derive(Debug, Clone)]
pub struct Analysis {
    names: Vec<String>,
    links: Vec<Link>,
    edges: Vec<EdgeStatus>,
    missing: Vec<EdgeStatus>,
    phase: Vec<Option<usize>>,
    phases: Vec<Vec<usize>>,
    cycles: Vec<Vec<usize>>,
    cycles_truncated: bool,
    waiting_on: Vec<Vec<String>>,
    /// Per strongly connected component (of all links): everything reachable.
    closure_down: Vec<FixedBitSet>,
    closure_up: Vec<FixedBitSet>,
    component: Vec<usize>,
    /// Per repository, its direct dependents, sorted.
    dependents: Vec<Vec<usize>>,
    longest_chain: Vec<usize>,
    max_depth: Option<usize>,
}

/// Analyses `repositories` (with their declared `dependsOn`) plus `discovered` edges.
pub fn analyse(repositories: &[Repository], discovered: &[EdgeStatus], options: &GraphOptions) -> Analysis {
    let names: Vec<String> = repositories.iter().map(|r| r.name.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let n = names.len();

    let mut all_edges: Vec<EdgeStatus> = repositories
        .iter()
        .flat_map(|r| {
            r.depends_on.iter().map(|d| EdgeStatus {
                from: r.name.clone(),
                to: d.repository.clone(),
                required: d.required,
                provenance: EXPLICIT.to_string(),
                profiles: Vec::new(),
            })
        })
        .chain(discovered.iter().cloned())
        .collect();
    all_edges.sort();
    all_edges.dedup();
    let (edges, missing): (Vec<_>, Vec<_>) =
        all_edges.into_iter().partition(|e| index.contains_key(e.from.as_str()) && index.contains_key(e.to.as_str()));

    // Merge parallel edges: a pair is required when any of its edges is.
    let mut merged: BTreeMap<(usize, usize), bool> = BTreeMap::new();
    for e in &edges {
        *merged.entry((index[e.from.as_str()], index[e.to.as_str()])).or_insert(false) |= e.required;
    }
    let mut links: Vec<Link> = merged
        .into_iter()
        .map(|((from, to), required)| Link { from, to, required, in_cycle: false, relaxed: false })
        .collect();

    // Required subgraph: cycles and what is blocked by them or by missing repositories.
    let required_graph = graph_of(n, links.iter().filter(|l| l.required));
    let required_sccs = tarjan_scc(&required_graph);
    let mut required_component = vec![0; n];
    for (c, members) in required_sccs.iter().enumerate() {
        for m in members {
            required_component[m.index()] = c;
        }
    }
    let self_loop: Vec<bool> = {
        let mut v = vec![false; n];
        for l in links.iter().filter(|l| l.required && l.from == l.to) {
            v[l.from] = true;
        }
        v
    };
    let cyclic_component: Vec<bool> =
        required_sccs.iter().map(|members| members.len() > 1 || self_loop[members[0].index()]).collect();
    for l in links.iter_mut().filter(|l| l.required) {
        let c = required_component[l.from];
        l.in_cycle = c == required_component[l.to] && cyclic_component[c];
    }

    let (cycles, cycles_truncated) = elementary_cycles(n, &links, MAX_REPORTED_CYCLES);

    let waiting_on =
        waiting_on(&names, &index, &links, &missing, &required_sccs, &required_component, &cyclic_component);
    let schedulable: Vec<bool> = waiting_on.iter().map(Vec::is_empty).collect();

    // Ordering graph: links between schedulable repositories, minus optional links that
    // close a loop (required links among schedulable repositories form no cycle, since
    // a repository on a required cycle is not schedulable).
    let ordering_candidates = |l: &&Link| schedulable[l.from] && schedulable[l.to];
    let loose_graph = graph_of(n, links.iter().filter(ordering_candidates));
    let mut loose_component = vec![0; n];
    for (c, members) in tarjan_scc(&loose_graph).iter().enumerate() {
        for m in members {
            loose_component[m.index()] = c;
        }
    }
    for l in links.iter_mut() {
        l.relaxed =
            !l.required && schedulable[l.from] && schedulable[l.to] && loose_component[l.from] == loose_component[l.to];
    }
    let ordering: Vec<&Link> = links.iter().filter(ordering_candidates).filter(|l| !l.relaxed).collect();
    let ordering_graph = graph_of(n, ordering.iter().copied());

    // tarjan_scc lists components dependencies-first; here every component is one node.
    let mut phase: Vec<Option<usize>> = vec![None; n];
    for members in tarjan_scc(&ordering_graph) {
        for m in members {
            let v = m.index();
            if !schedulable[v] {
                continue;
            }
            let p = ordering_graph.neighbors(m).filter_map(|d| phase[d.index()]).map(|p| p + 1).max().unwrap_or(0);
            phase[v] = Some(p);
        }
    }
    let depth = phase.iter().flatten().copied().max();
    let mut phases: Vec<Vec<usize>> = vec![Vec::new(); depth.map_or(0, |d| d + 1)];
    for (v, p) in phase.iter().enumerate() {
        if let Some(p) = p {
            phases[*p].push(v);
        }
    }
    let longest_chain = match depth {
        None => Vec::new(),
        Some(depth) => {
            let mut current = phase.iter().position(|p| *p == Some(depth));
            let mut chain = Vec::new();
            while let Some(v) = current {
                chain.push(v);
                let wanted = phase[v].and_then(|p| p.checked_sub(1));
                current = wanted.and_then(|w| {
                    ordering.iter().filter(|l| l.from == v && phase[l.to] == Some(w)).map(|l| l.to).min()
                });
            }
            chain
        }
    };

    let (closure_down, closure_up, component) = closure(n, &links);
    // Links are sorted by `from`, so each list comes out sorted.
    let mut dependents = vec![Vec::new(); n];
    for l in &links {
        dependents[l.to].push(l.from);
    }

    Analysis {
        names,
        links,
        edges,
        missing,
        phase,
        phases,
        cycles,
        cycles_truncated,
        waiting_on,
        closure_down,
        closure_up,
        component,
        dependents,
        longest_chain,
        max_depth: options.max_depth.map(|d| usize::try_from(d).unwrap_or(0)),
    }
}

/// A petgraph graph over nodes `0..n` with the given links (node index = repository index).
fn graph_of<'a>(n: usize, links: impl Iterator<Item = &'a Link>) -> DiGraph<(), ()> {
    let mut g = DiGraph::with_capacity(n, 0);
    for _ in 0..n {
        g.add_node(());
    }
    for l in links {
        g.add_edge(NodeIndex::new(l.from), NodeIndex::new(l.to), ());
    }
    g
}

/// Per repository, the cyclic or missing repositories it requires (itself when cyclic).
fn waiting_on(
    names: &[String],
    index: &HashMap<&str, usize>,
    links: &[Link],
    missing: &[EdgeStatus],
    required_sccs: &[Vec<NodeIndex>],
    required_component: &[usize],
    cyclic_component: &[bool],
) -> Vec<Vec<String>> {
    let n = names.len();
    let mut missing_required: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); n];
    for e in missing.iter().filter(|e| e.required) {
        if let Some(&from) = index.get(e.from.as_str()) {
            missing_required[from].insert(e.to.as_str());
        }
    }
    let mut required_out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for l in links.iter().filter(|l| l.required) {
        required_out[l.from].push(l.to);
    }
    // Components come dependencies-first, so every dependency's set is final.
    let mut per_component: Vec<BTreeSet<&str>> = Vec::with_capacity(required_sccs.len());
    for (c, members) in required_sccs.iter().enumerate() {
        let mut set = BTreeSet::new();
        for m in members {
            let v = m.index();
            if cyclic_component[c] {
                set.insert(names[v].as_str());
            }
            set.extend(missing_required[v].iter().copied());
            for &d in &required_out[v] {
                let dc = required_component[d];
                if dc != c {
                    set.extend(per_component[dc].iter().copied());
                }
            }
        }
        per_component.push(set);
    }
    (0..n).map(|v| per_component[required_component[v]].iter().map(|s| s.to_string()).collect()).collect()
}

impl Analysis {
    /// Repository names, sorted; indices into this slice identify repositories.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Merged dependent → dependency links between repositories of the graph, sorted.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// Every edge between repositories of the graph, with its provenance, sorted.
    pub fn edges(&self) -> &[EdgeStatus] {
        &self.edges
    }

    /// Edges with an end outside the graph, sorted.
    pub fn missing(&self) -> &[EdgeStatus] {
        &self.missing
    }

    /// Optional edges ignored for ordering because they close a loop.
    pub fn relaxed_edges(&self) -> Vec<&EdgeStatus> {
        let relaxed: BTreeSet<(&str, &str)> = self
            .links
            .iter()
            .filter(|l| l.relaxed)
            .map(|l| (self.names[l.from].as_str(), self.names[l.to].as_str()))
            .collect();
        self.edges.iter().filter(|e| relaxed.contains(&(e.from.as_str(), e.to.as_str()))).collect()
    }

    /// The deployment order: phase by phase, by name within a phase.
    pub fn order(&self) -> Vec<&str> {
        self.phases.iter().flatten().map(|&v| self.names[v].as_str()).collect()
    }

    /// Parallel phases, each sorted by name.
    pub fn phases(&self) -> Vec<Vec<&str>> {
        self.phases.iter().map(|p| p.iter().map(|&v| self.names[v].as_str()).collect()).collect()
    }

    /// Every cycle (up to [`MAX_REPORTED_CYCLES`]), as paths back to their first repository.
    pub fn cycles(&self) -> Vec<Vec<&str>> {
        self.cycles.iter().map(|c| c.iter().map(|&v| self.names[v].as_str()).collect()).collect()
    }

    /// Whether more cycles exist than [`Analysis::cycles`] lists.
    pub fn cycles_truncated(&self) -> bool {
        self.cycles_truncated
    }

    /// Phase of `repository`; `None` when it waits on a cycle or missing repository, or is unknown.
    pub fn phase_of(&self, repository: &str) -> Option<usize> {
        self.position(repository).and_then(|v| self.phase[v])
    }

    /// Cyclic or missing repositories that `repository` requires (empty when it has a phase).
    pub fn waiting_on(&self, repository: &str) -> &[String] {
        self.position(repository).map_or(&[], |v| &self.waiting_on[v])
    }

    /// Everything `repository` depends on, directly or not, sorted.
    pub fn transitive_dependencies(&self, repository: &str) -> Vec<&str> {
        self.position(repository).map_or_else(Vec::new, |v| self.reach(&self.closure_down, v))
    }

    /// Everything that depends on `repository`, directly or not, sorted.
    pub fn transitive_dependents(&self, repository: &str) -> Vec<&str> {
        self.position(repository).map_or_else(Vec::new, |v| self.reach(&self.closure_up, v))
    }

    /// Number of edges in the longest ordering chain (phases − 1).
    pub fn depth(&self) -> usize {
        self.longest_chain.len().saturating_sub(1)
    }

    /// The longest ordering chain, dependent first.
    pub fn longest_chain(&self) -> Vec<&str> {
        self.longest_chain.iter().map(|&v| self.names[v].as_str()).collect()
    }

    /// `Err` when the graph violates its options (today: `maxDepth`).
    pub fn check(&self) -> Result<(), GraphError> {
        match self.max_depth {
            Some(max_depth) if self.depth() > max_depth => Err(GraphError::DepthExceeded {
                depth: self.depth(),
                max_depth,
                chain: self.longest_chain().into_iter().map(str::to_string).collect(),
            }),
            _ => Ok(()),
        }
    }

    /// Bytes the transitive lists of every repository take in the status as JSON,
    /// counted without building them (they grow with the square of the repositories).
    pub fn transitive_bytes(&self) -> usize {
        let entry = |w: usize| self.names[w].len() + 3;
        (0..self.names.len())
            .map(|v| {
                let c = self.component[v];
                let down: usize = self.closure_down[c].ones().filter(|&w| w != v).map(entry).sum();
                let up: usize = self.closure_up[c].ones().filter(|&w| w != v).map(entry).sum();
                down + up
            })
            .sum()
    }

    /// Per-repository status entry for the repository at `index` of [`Analysis::names`].
    pub fn repository_status(&self, index: usize) -> RepositoryStatus {
        self.repository_entry(index, true)
    }

    fn repository_entry(&self, index: usize, transitive: bool) -> RepositoryStatus {
        let name = |v: usize| self.names[v].clone();
        // Links are sorted by (from, to): a repository's dependencies are one run of them.
        let start = self.links.partition_point(|l| l.from < index);
        let end = self.links.partition_point(|l| l.from <= index);
        let dependencies: Vec<String> = self.links[start..end].iter().map(|l| name(l.to)).collect();
        let dependents: Vec<String> = self.dependents[index].iter().map(|&v| name(v)).collect();
        RepositoryStatus {
            name: name(index),
            phase: self.phase[index].map(|p| i32::try_from(p).unwrap_or(i32::MAX)),
            dependencies,
            dependents,
            transitive_dependencies: if transitive { self.owned_reach(&self.closure_down, index) } else { Vec::new() },
            transitive_dependents: if transitive { self.owned_reach(&self.closure_up, index) } else { Vec::new() },
            waiting_on: self.waiting_on[index].clone(),
        }
    }

    /// The status fields the analysis decides, per-repository transitive lists left
    /// empty when `transitive` is false (so a large graph never builds them).
    /// `conditions` and `observedGeneration` are left for the controller, and `mermaid`
    /// for the renderer: [`Analysis::to_status`] and [`Analysis::status_with`]
    /// (in `graph_render`) fill it.
    pub fn status_without_chart(
        &self,
        discovery_errors: &[DiscoveryError],
        transitive: bool,
    ) -> RepoDependencyGraphStatus {
        let count = |n: usize| Some(i32::try_from(n).unwrap_or(i32::MAX));
        let owned = |v: Vec<Vec<&str>>| -> Vec<Vec<String>> {
            v.into_iter().map(|p| p.into_iter().map(str::to_string).collect()).collect()
        };
        let mut errors = discovery_errors.to_vec();
        errors.sort_by(|a, b| (&a.repository, &a.file, &a.message).cmp(&(&b.repository, &b.file, &b.message)));
        errors.dedup();
        RepoDependencyGraphStatus {
            conditions: Vec::new(),
            observed_generation: None,
            repository_count: count(self.names.len()),
            phase_count: count(self.phases.len()),
            cycle_count: count(self.cycles.len()),
            order: self.order().into_iter().map(str::to_string).collect(),
            phases: owned(self.phases()),
            cycles: owned(self.cycles()),
            cycles_truncated: self.cycles_truncated.then_some(true),
            repositories: (0..self.names.len()).map(|i| self.repository_entry(i, transitive)).collect(),
            edges: self.edges.clone(),
            missing: self.missing.clone(),
            discovery_errors: errors,
            mermaid: None,
            omitted: Vec::new(),
        }
    }

    fn position(&self, repository: &str) -> Option<usize> {
        self.names.binary_search_by(|n| n.as_str().cmp(repository)).ok()
    }

    fn owned_reach(&self, closure: &[FixedBitSet], v: usize) -> Vec<String> {
        self.reach(closure, v).into_iter().map(str::to_string).collect()
    }

    fn reach(&self, closure: &[FixedBitSet], v: usize) -> Vec<&str> {
        closure[self.component[v]].ones().filter(|&w| w != v).map(|w| self.names[w].as_str()).collect()
    }
}

#[cfg(test)]
mod tests;
