use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;

use super::*;
use crate::api::repo_dependency_graph::Dependency;

fn repo(name: &str, deps: &[&str]) -> Repository {
    Repository {
        name: name.into(),
        depends_on: deps
            .iter()
            .map(|d| match d.strip_prefix('?') {
                Some(optional) => Dependency { repository: optional.into(), required: false },
                None => Dependency { repository: (*d).into(), required: true },
            })
            .collect(),
        discovery: vec![],
    }
}

fn edge(from: &str, to: &str, required: bool, provenance: &str) -> EdgeStatus {
    EdgeStatus { from: from.into(), to: to.into(), required, provenance: provenance.into(), profiles: vec![] }
}

fn run(repos: &[Repository]) -> Analysis {
    analyse(repos, &[], &GraphOptions::default())
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn diamond_deploys_in_three_phases_with_name_tie_break() {
    let a = run(&[
        repo("o/app", &["o/web", "o/api"]),
        repo("o/web", &["o/db"]),
        repo("o/api", &["o/db"]),
        repo("o/db", &[]),
        repo("o/tools", &[]),
    ]);
    assert_eq!(a.phases(), vec![vec!["o/db", "o/tools"], vec!["o/api", "o/web"], vec!["o/app"]]);
    assert_eq!(a.order(), vec!["o/db", "o/tools", "o/api", "o/web", "o/app"]);
    assert!(a.cycles().is_empty());
    assert_eq!(a.depth(), 2);
    assert_eq!(a.longest_chain(), vec!["o/app", "o/api", "o/db"]);
    let status = a.to_status(&[]);
    assert_eq!(status.phase_count, Some(3));
    assert_eq!(status.repository_count, Some(5));
    let app = &status.repositories[0];
    assert_eq!(app.name, "o/api");
    assert_eq!(app.phase, Some(1));
    assert_eq!(app.dependencies, strings(&["o/db"]));
    assert_eq!(app.dependents, strings(&["o/app"]));
}

#[test]
fn two_cycles_sharing_a_node_are_both_reported() {
    let a = run(&[repo("o/a", &["o/b", "o/c"]), repo("o/b", &["o/a"]), repo("o/c", &["o/a"]), repo("o/d", &["o/c"])]);
    assert_eq!(a.cycles(), vec![vec!["o/a", "o/b", "o/a"], vec!["o/a", "o/c", "o/a"]]);
    assert!(a.order().is_empty(), "every repository is on or behind a cycle");
    assert_eq!(a.waiting_on("o/b"), strings(&["o/a", "o/b", "o/c"]));
    assert_eq!(a.waiting_on("o/d"), strings(&["o/a", "o/b", "o/c"]));
    assert_eq!(a.phase_of("o/d"), None);
    assert!(a.links().iter().filter(|l| l.in_cycle).count() == 4);
    assert!(!a.links().iter().find(|l| a.names()[l.from] == "o/d").unwrap().in_cycle);
}

#[test]
fn self_loop_is_a_cycle_of_one() {
    let a = analyse(
        &[repo("o/s", &[]), repo("o/t", &["o/s"]), repo("o/u", &[])],
        &[edge("o/s", "o/s", true, "compose:docker-compose.yml:web")],
        &GraphOptions::default(),
    );
    assert_eq!(a.cycles(), vec![vec!["o/s", "o/s"]]);
    assert_eq!(a.order(), vec!["o/u"]);
    assert_eq!(a.waiting_on("o/t"), strings(&["o/s"]));
    assert!(a.transitive_dependencies("o/s").is_empty(), "a repository is never its own dependency");
}

#[test]
fn declared_self_dependency_is_a_cycle_too() {
    let a = run(&[repo("o/s", &["o/s"]), repo("o/t", &[])]);
    assert_eq!(a.cycles(), vec![vec!["o/s", "o/s"]]);
    assert_eq!(a.order(), vec!["o/t"]);
    assert_eq!(a.waiting_on("o/s"), strings(&["o/s"]));
}

#[test]
fn nested_cycles_and_chords_yield_every_elementary_cycle() {
    // Outer a→b→c→d→a, inner b→c→b, chord a→c.
    let a = run(&[
        repo("o/a", &["o/b", "o/c"]),
        repo("o/b", &["o/c"]),
        repo("o/c", &["o/d", "o/b"]),
        repo("o/d", &["o/a"]),
    ]);
    assert_eq!(
        a.cycles(),
        vec![vec!["o/a", "o/b", "o/c", "o/d", "o/a"], vec!["o/a", "o/c", "o/d", "o/a"], vec!["o/b", "o/c", "o/b"]]
    );
}

#[test]
fn complete_graph_of_three_has_five_cycles() {
    let a = run(&[repo("o/a", &["o/b", "o/c"]), repo("o/b", &["o/a", "o/c"]), repo("o/c", &["o/a", "o/b"])]);
    assert_eq!(
        a.cycles(),
        vec![
            vec!["o/a", "o/b", "o/a"],
            vec!["o/a", "o/b", "o/c", "o/a"],
            vec!["o/a", "o/c", "o/a"],
            vec!["o/a", "o/c", "o/b", "o/a"],
            vec!["o/b", "o/c", "o/b"],
        ]
    );
}

#[test]
fn cycle_listing_is_capped_and_says_so() {
    // The complete digraph on 8 nodes has 16,064 elementary cycles.
    let names: Vec<String> = (0..8).map(|i| format!("o/k{i}")).collect();
    let repos: Vec<Repository> = names
        .iter()
        .map(|n| {
            let deps: Vec<&str> = names.iter().filter(|d| *d != n).map(String::as_str).collect();
            repo(n, &deps)
        })
        .collect();
    let a = run(&repos);
    assert_eq!(a.cycles().len(), MAX_REPORTED_CYCLES);
    assert!(a.cycles_truncated());
    assert_eq!(a.to_status(&[]).cycles_truncated, Some(true));
    assert_eq!(a.to_status(&[]).cycle_count, Some(1000));
}

#[test]
fn transitive_closure_follows_every_edge_both_ways() {
    let a = run(&[
        repo("o/a", &["o/b"]),
        repo("o/b", &["o/c"]),
        repo("o/c", &[]),
        repo("o/d", &["?o/b"]),
        repo("o/e", &[]),
    ]);
    assert_eq!(a.transitive_dependencies("o/a"), vec!["o/b", "o/c"]);
    assert_eq!(a.transitive_dependents("o/c"), vec!["o/a", "o/b", "o/d"]);
    assert!(a.transitive_dependents("o/e").is_empty());
    let status = a.to_status(&[]);
    let d = status.repositories.iter().find(|r| r.name == "o/d").unwrap();
    assert_eq!(d.transitive_dependencies, strings(&["o/b", "o/c"]));

    // The size estimate counts each entry as its quoted name and a separator.
    let entries: usize =
        status.repositories.iter().map(|r| r.transitive_dependencies.len() + r.transitive_dependents.len()).sum();
    assert_eq!(entries, 10);
    assert_eq!(a.transitive_bytes(), entries * "\"o/a\",".len());
    let lean = a.status_with(&[], false);
    assert!(
        lean.repositories.iter().all(|r| r.transitive_dependencies.is_empty() && r.transitive_dependents.is_empty())
    );
    assert_eq!(
        lean.repositories.iter().map(|r| &r.dependencies).collect::<Vec<_>>(),
        status.repositories.iter().map(|r| &r.dependencies).collect::<Vec<_>>()
    );
}

#[test]
fn closure_through_a_cycle_includes_the_whole_cycle_but_not_itself() {
    let a = run(&[repo("o/a", &["o/b"]), repo("o/b", &["o/c"]), repo("o/c", &["o/b", "o/d"]), repo("o/d", &[])]);
    assert_eq!(a.transitive_dependencies("o/b"), vec!["o/c", "o/d"]);
    assert_eq!(a.transitive_dependencies("o/a"), vec!["o/b", "o/c", "o/d"]);
    assert_eq!(a.transitive_dependents("o/c"), vec!["o/a", "o/b"]);
}

#[test]
fn missing_repositories_are_reported_and_block_only_required_dependents() {
    let a = analyse(
        &[repo("o/a", &["x/gone"]), repo("o/b", &["o/a"]), repo("o/c", &["?x/gone"]), repo("o/d", &["?o/a"])],
        &[edge("o/c", "x/other", true, "manifest:k8s.yaml:Deployment/c")],
        &GraphOptions::default(),
    );
    assert_eq!(
        a.missing(),
        &[
            edge("o/a", "x/gone", true, EXPLICIT),
            edge("o/c", "x/gone", false, EXPLICIT),
            edge("o/c", "x/other", true, "manifest:k8s.yaml:Deployment/c"),
        ]
    );
    assert_eq!(a.waiting_on("o/a"), strings(&["x/gone"]));
    assert_eq!(a.waiting_on("o/b"), strings(&["x/gone"]));
    assert_eq!(a.waiting_on("o/c"), strings(&["x/other"]));
    // o/d only optionally needs o/a, so it does not wait on what o/a waits on.
    assert_eq!(a.order(), vec!["o/d"]);
    assert_eq!(a.to_status(&[]).missing.len(), 3);
}

#[test]
fn optional_edges_order_acyclic_repositories() {
    let a = run(&[repo("o/a", &["?o/b"]), repo("o/b", &[])]);
    assert_eq!(a.phases(), vec![vec!["o/b"], vec!["o/a"]]);
    assert_eq!(a.to_status(&[]).edges, vec![edge("o/a", "o/b", false, EXPLICIT)]);
}

#[test]
fn optional_edge_never_makes_a_repository_wait_on_a_cycle() {
    let a = run(&[repo("o/x", &["?o/c1"]), repo("o/c1", &["o/c2"]), repo("o/c2", &["o/c1"])]);
    assert_eq!(a.order(), vec!["o/x"]);
    assert!(a.waiting_on("o/x").is_empty());
    assert_eq!(a.cycles(), vec![vec!["o/c1", "o/c2", "o/c1"]]);
}

#[test]
fn optional_edges_closing_a_loop_are_relaxed_not_cycles() {
    let a = run(&[repo("o/a", &["o/b"]), repo("o/b", &["?o/a"]), repo("o/p", &["?o/q"]), repo("o/q", &["?o/p"])]);
    assert!(a.cycles().is_empty(), "only required edges make cycles");
    assert_eq!(a.phases(), vec![vec!["o/b", "o/p", "o/q"], vec!["o/a"]]);
    let relaxed: Vec<(&str, &str)> = a.relaxed_edges().iter().map(|e| (e.from.as_str(), e.to.as_str())).collect();
    assert_eq!(relaxed, vec![("o/b", "o/a"), ("o/p", "o/q"), ("o/q", "o/p")]);
}

#[test]
fn parallel_edges_keep_every_provenance_and_merge_requiredness() {
    let a = analyse(
        &[repo("o/a", &["?o/b"]), repo("o/b", &[])],
        &[
            edge("o/a", "o/b", true, "compose:docker-compose.yml:web"),
            edge("o/a", "o/b", true, "compose:docker-compose.yml:web"),
        ],
        &GraphOptions::default(),
    );
    assert_eq!(a.edges().len(), 2, "duplicates collapse, distinct provenances stay");
    assert_eq!(a.links().len(), 1);
    assert!(a.links()[0].required);
}

#[test]
fn max_depth_is_enforced_on_the_longest_chain() {
    let repos =
        [repo("o/a", &["o/b"]), repo("o/b", &["o/c"]), repo("o/c", &["o/d"]), repo("o/d", &[]), repo("o/e", &["o/d"])];
    let with = |max| analyse(&repos, &[], &GraphOptions { max_depth: Some(max), allow_parallel: true });
    assert_eq!(with(3).check(), Ok(()));
    let err = with(2).check().unwrap_err();
    assert_eq!(
        err,
        GraphError::DepthExceeded { depth: 3, max_depth: 2, chain: strings(&["o/a", "o/b", "o/c", "o/d"]) }
    );
    assert_eq!(err.reason(), "MaxDepthExceeded");
    assert_eq!(
        err.to_string(),
        "the longest dependency chain (o/a -> o/b -> o/c -> o/d) has depth 3, more than maxDepth 2"
    );
    assert_eq!(run(&repos).check(), Ok(()));
}

#[test]
fn analysis_does_not_depend_on_input_order() {
    let repos = vec![
        repo("o/a", &["o/b", "?o/c", "x/m"]),
        repo("o/b", &["o/c"]),
        repo("o/c", &["o/b"]),
        repo("o/d", &[]),
        repo("o/e", &["o/d"]),
    ];
    let discovered = vec![edge("o/e", "o/d", true, "compose:f:s"), edge("o/d", "o/zz", false, "manifest:f:Pod/p")];
    let forward = analyse(&repos, &discovered, &GraphOptions::default()).to_status(&[]);
    let mut reversed_repos = repos.clone();
    reversed_repos.reverse();
    let mut reversed_edges = discovered.clone();
    reversed_edges.reverse();
    let backward = analyse(&reversed_repos, &reversed_edges, &GraphOptions::default()).to_status(&[]);
    assert_eq!(forward, backward);
}

#[test]
fn empty_graph_has_no_phases() {
    let a = run(&[]);
    assert!(a.phases().is_empty());
    assert_eq!(a.depth(), 0);
    assert_eq!(a.check(), Ok(()));
}

// ---- properties ----

fn name(i: usize) -> String {
    format!("o/r{i:03}")
}

/// Repositories `0..n` with `(from, to, required)` edges, as spec repositories.
fn build(n: usize, edges: &[(usize, usize, bool)]) -> Vec<Repository> {
    let mut repos: Vec<Repository> = (0..n).map(|i| repo(&name(i), &[])).collect();
    for &(from, to, required) in edges {
        repos[from].depends_on.push(Dependency { repository: name(to), required });
    }
    for r in &mut repos {
        // The CRD keys dependsOn by repository: keep one entry per target.
        r.depends_on.sort_by(|a, b| a.repository.cmp(&b.repository).then(b.required.cmp(&a.required)));
        r.depends_on.dedup_by(|a, b| a.repository == b.repository);
    }
    repos
}

fn dag() -> impl Strategy<Value = (usize, Vec<(usize, usize, bool)>)> {
    (1usize..40).prop_flat_map(|n| {
        let edges = proptest::collection::vec((0..n, 0..n, any::<bool>()), 0..n * 3).prop_map(|es| {
            es.into_iter().filter(|(a, b, _)| a != b).map(|(a, b, r)| (a.max(b), a.min(b), r)).collect()
        });
        (Just(n), edges)
    })
}

fn digraph() -> impl Strategy<Value = (usize, Vec<(usize, usize, bool)>)> {
    (1usize..8)
        .prop_flat_map(|n| (Just(n), proptest::collection::vec((0..n, 0..n, prop::bool::weighted(0.8)), 0..n * 3)))
}

/// Elementary cycles by brute force: from each start, simple paths over larger nodes.
fn brute_force_cycles(n: usize, adjacency: &[BTreeSet<usize>]) -> BTreeSet<Vec<usize>> {
    fn walk(start: usize, path: &mut Vec<usize>, adjacency: &[BTreeSet<usize>], out: &mut BTreeSet<Vec<usize>>) {
        let last = *path.last().unwrap();
        for &next in &adjacency[last] {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start);
                out.insert(cycle);
            } else if next > start && !path.contains(&next) {
                path.push(next);
                walk(start, path, adjacency, out);
                path.pop();
            }
        }
    }
    let mut out = BTreeSet::new();
    for s in 0..n {
        walk(s, &mut vec![s], adjacency, &mut out);
    }
    out
}

proptest! {
    #[test]
    fn on_random_dags_every_edge_goes_from_an_earlier_phase_and_nothing_is_lost((n, edges) in dag()) {
        let repos = build(n, &edges);
        let a = analyse(&repos, &[], &GraphOptions::default());
        prop_assert!(a.cycles().is_empty());
        let order = a.order();
        prop_assert_eq!(order.len(), n);
        let position: HashMap<&str, usize> = order.iter().enumerate().map(|(i, r)| (*r, i)).collect();
        prop_assert_eq!(position.len(), n, "every repository appears exactly once");
        let phased: usize = a.phases().iter().map(Vec::len).sum();
        prop_assert_eq!(phased, n);
        for r in &repos {
            for d in &r.depends_on {
                let (dependent, dependency) = (r.name.as_str(), d.repository.as_str());
                prop_assert!(a.phase_of(dependency).unwrap() < a.phase_of(dependent).unwrap(),
                    "{} (phase {:?}) must come after {} (phase {:?})", dependent, a.phase_of(dependent), dependency, a.phase_of(dependency));
                prop_assert!(position[dependency] < position[dependent]);
                prop_assert!(a.transitive_dependencies(dependent).contains(&dependency));
            }
        }
        // Phases are the earliest possible: anything past phase 0 has a dependency in the phase before.
        for r in &repos {
            let p = a.phase_of(&r.name).unwrap();
            if p > 0 {
                prop_assert!(r.depends_on.iter().any(|d| a.phase_of(&d.repository) == Some(p - 1)));
            }
        }
    }

    #[test]
    fn on_random_digraphs_cycles_are_exactly_the_elementary_required_cycles((n, edges) in digraph()) {
        let mut adjacency = vec![BTreeSet::new(); n];
        let mut discovered = Vec::new();
        for &(from, to, required) in &edges {
            discovered.push(edge(&name(from), &name(to), required, "compose:f:s"));
            if required {
                adjacency[from].insert(to);
            }
        }
        let repos: Vec<Repository> = (0..n).map(|i| repo(&name(i), &[])).collect();
        let a = analyse(&repos, &discovered, &GraphOptions::default());
        let expected: BTreeSet<Vec<String>> =
            brute_force_cycles(n, &adjacency).into_iter().map(|c| c.into_iter().map(name).collect()).collect();
        let found: BTreeSet<Vec<String>> =
            a.cycles().into_iter().map(|c| c.into_iter().map(str::to_string).collect()).collect();
        prop_assert_eq!(found.len(), a.cycles().len(), "no cycle is listed twice");
        prop_assert_eq!(found, expected);
        // Every repository either has a phase or says what it waits on, never both.
        for r in a.names() {
            prop_assert_eq!(a.phase_of(r).is_some(), a.waiting_on(r).is_empty());
        }
        // Every non-relaxed link between phased repositories respects the phases.
        for l in a.links() {
            let (from, to) = (a.phase[l.from], a.phase[l.to]);
            if let (Some(f), Some(t)) = (from, to) {
                if !l.relaxed {
                    prop_assert!(t < f);
                }
            } else if l.required && from.is_some() {
                prop_assert!(false, "a phased repository requires an unphased one");
            }
        }
    }
}
