//! Graph analysis at scale: 10,000 repositories, 50,000 edges (a random DAG plus a
//! few cycles). Prints wall time and peak memory, and ratios against two baselines
//! measured in the same run: building the petgraph graph alone, and a naive
//! O(depth·E) phase computation of the DAG without the cycles (phases only).
//!
//! Then discovery over a 5 MB set of manifests and compose files (200 repositories,
//! each defining Services and workloads that address the previous repositories'), with
//! a baseline of parsing the same YAML into values alone.
//!
//! `cargo bench --bench graph` (prints, asserts nothing).

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use petgraph::graph::DiGraph;
use switchyard::api::repo_dependency_graph::DiscoveryFormat;
use switchyard::api::repo_dependency_graph::{Dependency, EdgeStatus, GraphOptions, Repository};
use switchyard::logic::discovery::{SourceFile, discover};
use switchyard::logic::graph::analyse;
use switchyard::logic::graph_status::{self, Observed};

const REPOSITORIES: usize = 10_000;
const EDGES: usize = 50_000;
const CYCLES: usize = 5;
const RUNS: u32 = 5;

/// xorshift64*: deterministic input without depending on rand's API.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

fn name(i: usize) -> String {
    format!("acme/repo-{i:05}")
}

/// Repository `i` depends only on repositories with a smaller index (a DAG), 10% of
/// edges optional; then `CYCLES` triangles `h → h+1 → h+2 → h` near the top, so a few
/// hundred repositories wait on a cycle and the rest still get phases.
fn input() -> (Vec<Repository>, Vec<EdgeStatus>) {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut deps: Vec<Vec<(usize, bool)>> = vec![Vec::new(); REPOSITORIES];
    let mut count = 0;
    while count < EDGES {
        let from = 1 + rng.below(REPOSITORIES - 1);
        let to = rng.below(from);
        if !deps[from].iter().any(|&(t, _)| t == to) {
            deps[from].push((to, rng.below(10) != 0));
            count += 1;
        }
    }
    let repos = deps
        .iter()
        .enumerate()
        .map(|(i, d)| Repository {
            name: name(i),
            depends_on: d.iter().map(|&(t, required)| Dependency { repository: name(t), required }).collect(),
            discovery: vec![],
        })
        .collect();
    let edge = |from: usize, to: usize| EdgeStatus {
        from: name(from),
        to: name(to),
        required: true,
        provenance: "bench".into(),
        profiles: vec![],
    };
    let cycles = (0..CYCLES)
        .flat_map(|k| {
            let h = 9_000 + k * 150;
            [edge(h, h + 1), edge(h + 1, h + 2), edge(h + 2, h)]
        })
        .collect();
    (repos, cycles)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn best_of<T>(mut f: impl FnMut() -> T) -> Duration {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Baseline 1: only turning names into a petgraph graph.
fn build_only(repos: &[Repository], extra: &[EdgeStatus]) -> DiGraph<(), bool> {
    let index: HashMap<&str, usize> = repos.iter().enumerate().map(|(i, r)| (r.name.as_str(), i)).collect();
    let mut g = DiGraph::with_capacity(repos.len(), EDGES + extra.len());
    let nodes: Vec<_> = repos.iter().map(|_| g.add_node(())).collect();
    for r in repos {
        for d in &r.depends_on {
            g.add_edge(nodes[index[r.name.as_str()]], nodes[index[d.repository.as_str()]], d.required);
        }
    }
    for e in extra {
        g.add_edge(nodes[index[e.from.as_str()]], nodes[index[e.to.as_str()]], e.required);
    }
    g
}

/// Baseline 2: naive phases of the DAG alone: each round scans every edge and puts in
/// the next phase every repository whose dependencies all have a phase, O(depth·E).
fn naive_phases(g: &DiGraph<(), bool>) -> Vec<Vec<usize>> {
    let n = g.node_count();
    let mut phase: Vec<Option<usize>> = vec![None; n];
    let mut phases = Vec::new();
    let mut assigned = 0;
    while assigned < n {
        let mut blocked = vec![false; n];
        for e in g.raw_edges() {
            if phase[e.target().index()].is_none() {
                blocked[e.source().index()] = true;
            }
        }
        let round: Vec<usize> = (0..n).filter(|&v| phase[v].is_none() && !blocked[v]).collect();
        if round.is_empty() {
            break;
        }
        for &v in &round {
            phase[v] = Some(phases.len());
        }
        assigned += round.len();
        phases.push(round);
    }
    phases
}

fn main() {
    let (repos, extra) = input();
    let rss_input = peak_rss_kib();
    let options = GraphOptions::default();

    let analysis = analyse(&repos, &extra, &options);
    let rss_analysis = peak_rss_kib();
    let phased: usize = analysis.phases().iter().map(Vec::len).sum();
    let waiting = analysis.names().iter().filter(|n| !analysis.waiting_on(n).is_empty()).count();
    println!(
        "graph: {} repositories, {} edges ({} explicit + {} cycle-closing), {} phases, {} phased, {} waiting, {} cycles{}",
        repos.len(),
        analysis.edges().len(),
        EDGES,
        extra.len(),
        analysis.phases().len(),
        phased,
        waiting,
        analysis.cycles().len(),
        if analysis.cycles_truncated() { " (truncated)" } else { "" },
    );
    let transitive: usize = analysis.names().iter().map(|n| analysis.transitive_dependencies(n).len()).sum();
    println!(
        "status size: {transitive} transitive-dependency entries, {} edges: far beyond the ~1.5 MB an object may hold",
        analysis.edges().len()
    );
    drop(analysis);

    let t_analyse = best_of(|| analyse(&repos, &extra, &options));
    let t_build = best_of(|| build_only(&repos, &extra));
    let dag = build_only(&repos, &[]);
    let naive = naive_phases(&dag);
    let t_naive = best_of(|| naive_phases(&dag));

    println!("analyse (order, phases, cycles, closure, depth): {t_analyse:>10.2?}  (best of {RUNS})");
    println!("baseline: build petgraph only:                   {t_build:>10.2?}");
    println!("baseline: naive O(depth*E) phases of the DAG:    {t_naive:>10.2?}  ({} phases)", naive.len());
    println!("ratio analyse / build-only:   {:.1}x", t_analyse.as_secs_f64() / t_build.as_secs_f64());
    println!("ratio analyse / naive phases: {:.2}x", t_analyse.as_secs_f64() / t_naive.as_secs_f64());
    println!("peak RSS (VmHWM): {} MiB after input, {} MiB after analysis", rss_input / 1024, rss_analysis / 1024);

    // What the controller does after analysing: conditions, and a status that fits the
    // object size limit (never building the quadratic transitive lists when they cannot fit).
    let analysis = analyse(&repos, &extra, &options);
    let spec_bytes = serde_json::to_vec(&repos).map_or(0, |v| v.len());
    let observed = Observed {
        analysis: &analysis,
        discovery_errors: &[],
        retrying: false,
        generation: Some(1),
        budget: graph_status::status_budget(spec_bytes),
    };
    let decision = graph_status::decide(None, &observed);
    let status_bytes = serde_json::to_vec(&decision.status).map_or(0, |v| v.len());
    let t_decide = best_of(|| graph_status::decide(None, &observed));
    println!(
        "status decision: {t_decide:>10.2?}  (best of {RUNS}); spec {} KiB + status {} KiB (budget {} KiB), omitted: {}",
        spec_bytes / 1024,
        status_bytes / 1024,
        observed.budget / 1024,
        decision.status.omitted.join(", ")
    );
    println!("peak RSS (VmHWM) after the status decision: {} MiB", peak_rss_kib() / 1024);
    discovery_bench();
}

/// 200 repositories of ~25 KB each (manifests) plus a compose file each.
fn discovery_input() -> Vec<SourceFile> {
    let mut files = Vec::new();
    for r in 0..200 {
        let mut manifests = String::new();
        let mut compose = String::from("services:\n");
        for w in 0..25 {
            let target = (r + 199) % 200;
            let pad = "p".repeat(700);
            let lines = [
                format!("apiVersion: v1\nkind: Service\nmetadata: {{name: svc-{r}-{w}, namespace: ns{r}}}\n---"),
                format!("apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app-{r}-{w}, namespace: ns{r}}}"),
                "spec:\n  template:\n    spec:\n      containers:\n        - name: app".to_string(),
                format!(
                    "          args: [\"--upstream=http://svc-{target}-{w}.ns{target}.svc.cluster.local:8080/v1\"]"
                ),
                "          env:".to_string(),
                format!("            - {{name: DB_HOST, value: \"svc-{target}-{w}.ns{target}\"}}"),
                format!("            - {{name: OTEL_COLLECTOR_NAME, value: otel-{w}}}"),
                format!("            - {{name: PADDING, value: \"{pad}\"}}\n---\n"),
            ];
            manifests.push_str(&lines.join("\n"));
            compose.push_str(&format!(
                "  c{r}x{w}:\n    environment:\n      - DATABASE_URL=postgres://u:p@c{target}x{w}:5432/db\n    depends_on: [c{r}x{}]\n",
                (w + 1) % 25
            ));
        }
        let repository = format!("acme/repo-{r:03}");
        files.push(SourceFile {
            repository: repository.clone(),
            file: "k8s.yaml".into(),
            format: DiscoveryFormat::Manifests,
            content: manifests,
        });
        files.push(SourceFile {
            repository,
            file: "compose.yaml".into(),
            format: DiscoveryFormat::Compose,
            content: compose,
        });
    }
    files
}

fn discovery_bench() {
    let files = discovery_input();
    let bytes: usize = files.iter().map(|f| f.content.len()).sum();
    let found = discover(&files);
    println!(
        "discovery: {} files, {:.1} MB, {} edges ({} inferred), {} errors",
        files.len(),
        bytes as f64 / 1e6,
        found.edges.len(),
        found.edges.iter().filter(|e| e.provenance.starts_with("inferred:")).count(),
        found.errors.len()
    );
    let t_discover = best_of(|| discover(&files));
    let t_parse = best_of(|| {
        files
            .iter()
            .map(|f| {
                serde_yaml::Deserializer::from_str(&f.content)
                    .filter_map(|d| serde::Deserialize::deserialize(d).ok())
                    .collect::<Vec<serde_yaml::Value>>()
                    .len()
            })
            .sum::<usize>()
    });
    println!("discover (parse, addresses, resolution): {t_discover:>10.2?}  (best of {RUNS})");
    println!("baseline: YAML into values only:         {t_parse:>10.2?}");
    println!("ratio discover / YAML parse: {:.2}x", t_discover.as_secs_f64() / t_parse.as_secs_f64());
}
