//! Renders an [`Analysis`] as text for humans, JSON in the status shape, Graphviz DOT
//! and a Mermaid flowchart.
//!
//! In the drawings an arrow points from the dependent to its dependency, optional
//! edges are dashed, edges on a cycle are red, and repositories missing from the
//! graph are drawn with a dashed border.
//!
//! The status's `mermaid` field is a drawing too, so the status with its chart
//! ([`Analysis::to_status`], [`Analysis::status_with`]) is assembled here, on top of
//! what the analysis decides ([`Analysis::status_without_chart`]): rendering depends
//! on the analysis, never the reverse.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write;

use crate::api::repo_dependency_graph::{DiscoveryError, EdgeStatus, RepoDependencyGraphStatus};
use crate::logic::graph::Analysis;

const CYCLE_COLOUR: &str = "#d00";

/// Most merged edges for which the status carries a Mermaid chart; Mermaid itself
/// refuses to render more than 500 edges by default.
pub const MERMAID_MAX_EDGES: usize = 500;

impl Analysis {
    /// The status fields the analysis decides, with its Mermaid chart; `conditions`
    /// and `observedGeneration` are left for the controller.
    pub fn to_status(&self, discovery_errors: &[DiscoveryError]) -> RepoDependencyGraphStatus {
        self.status_with(discovery_errors, true)
    }

    /// [`Analysis::to_status`], with the per-repository transitive lists left empty
    /// when `transitive` is false (so a large graph never builds them).
    pub fn status_with(&self, discovery_errors: &[DiscoveryError], transitive: bool) -> RepoDependencyGraphStatus {
        let mut status = self.status_without_chart(discovery_errors, transitive);
        status.mermaid = (self.links().len() + self.missing().len() <= MERMAID_MAX_EDGES).then(|| mermaid(self));
        status
    }
}

/// A multi-line summary for a terminal.
pub fn text(analysis: &Analysis, discovery_errors: &[DiscoveryError]) -> String {
    let mut out = String::new();
    let cycles = analysis.cycles();
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let _ = writeln!(
        out,
        "{}, {}, {}{}",
        plural(analysis.names().len(), "repository", "repositories"),
        plural(analysis.phases().len(), "phase", "phases"),
        plural(cycles.len(), "cycle", "cycles"),
        if analysis.cycles_truncated() { " (truncated)" } else { "" },
    );
    let _ = writeln!(out, "\nOrder: {}", analysis.order().join(", "));
    let _ = writeln!(out, "\nPhases:");
    for (i, phase) in analysis.phases().iter().enumerate() {
        let _ = writeln!(out, "  {i}: {}", phase.join(", "));
    }
    if !cycles.is_empty() {
        let _ = writeln!(out, "\nCycles:");
        for cycle in &cycles {
            let _ = writeln!(out, "  {}", cycle.join(" -> "));
        }
    }
    let waiting: Vec<_> = analysis.names().iter().filter(|n| !analysis.waiting_on(n).is_empty()).collect();
    if !waiting.is_empty() {
        let _ = writeln!(out, "\nWithout a phase:");
        for name in waiting {
            let _ = writeln!(out, "  {name} waits on {}", analysis.waiting_on(name).join(", "));
        }
    }
    if !analysis.missing().is_empty() {
        let _ = writeln!(out, "\nMissing:");
        for e in analysis.missing() {
            let _ = writeln!(out, "  {}", edge_line(e));
        }
    }
    let relaxed = analysis.relaxed_edges();
    if !relaxed.is_empty() {
        let _ = writeln!(out, "\nOptional edges ignored because they close a loop:");
        for e in relaxed {
            let _ = writeln!(out, "  {}", edge_line(e));
        }
    }
    match analysis.check() {
        Ok(()) => {
            let _ = writeln!(out, "\nDepth: {} ({})", analysis.depth(), analysis.longest_chain().join(" -> "));
        }
        Err(e) => {
            let _ = writeln!(out, "\nError: {e}");
        }
    }
    if !analysis.edges().is_empty() {
        let _ = writeln!(out, "\nEdges:");
        for e in analysis.edges() {
            let _ = writeln!(out, "  {}", edge_line(e));
        }
    }
    if !discovery_errors.is_empty() {
        let _ = writeln!(out, "\nDiscovery errors:");
        for e in discovery_errors {
            let _ = writeln!(out, "  {} {}: {}", e.repository, e.file, e.message);
        }
    }
    out
}

fn edge_line(e: &EdgeStatus) -> String {
    let kind = if e.required { "required" } else { "optional" };
    format!("{} -> {} ({kind}, {})", e.from, e.to, e.provenance)
}

/// The status (without conditions) as pretty JSON.
pub fn json(analysis: &Analysis, discovery_errors: &[DiscoveryError]) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&analysis.to_status(discovery_errors))
}

/// A drawable edge: the merged links plus the missing edges, merged the same way.
struct Arrow<'a> {
    from: &'a str,
    to: &'a str,
    required: bool,
    in_cycle: bool,
}

fn arrows(analysis: &Analysis) -> (Vec<Arrow<'_>>, BTreeSet<&str>) {
    let names = analysis.names();
    let mut arrows: Vec<Arrow<'_>> = analysis
        .links()
        .iter()
        .map(|l| Arrow { from: &names[l.from], to: &names[l.to], required: l.required, in_cycle: l.in_cycle })
        .collect();
    let known: HashSet<&str> = names.iter().map(String::as_str).collect();
    let mut missing_nodes = BTreeSet::new();
    for e in analysis.missing() {
        for end in [e.from.as_str(), e.to.as_str()] {
            if !known.contains(end) {
                missing_nodes.insert(end);
            }
        }
        match arrows.last_mut() {
            Some(last) if last.from == e.from && last.to == e.to => last.required |= e.required,
            _ => arrows.push(Arrow { from: &e.from, to: &e.to, required: e.required, in_cycle: false }),
        }
    }
    (arrows, missing_nodes)
}

/// A Graphviz digraph.
pub fn dot(analysis: &Analysis) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let (arrows, missing) = arrows(analysis);
    let cyclic: HashSet<&str> = analysis.cycles().into_iter().flatten().collect();
    let mut out = String::from("digraph dependencies {\n  rankdir=LR;\n  node [shape=box];\n");
    for name in analysis.names() {
        let style = if cyclic.contains(name.as_str()) { format!(" [color=\"{CYCLE_COLOUR}\"]") } else { String::new() };
        let _ = writeln!(out, "  {}{style};", quote(name));
    }
    for name in &missing {
        let _ = writeln!(out, "  {} [style=dashed, color=gray];", quote(name));
    }
    for a in &arrows {
        let mut attrs = Vec::new();
        if !a.required {
            attrs.push("style=dashed".to_string());
        }
        if a.in_cycle {
            attrs.push(format!("color=\"{CYCLE_COLOUR}\", penwidth=2"));
        }
        let attrs = if attrs.is_empty() { String::new() } else { format!(" [{}]", attrs.join(", ")) };
        let _ = writeln!(out, "  {} -> {}{attrs};", quote(a.from), quote(a.to));
    }
    out.push_str("}\n");
    out
}

/// A Mermaid `flowchart LR`.
pub fn mermaid(analysis: &Analysis) -> String {
    let (arrows, missing) = arrows(analysis);
    let all: Vec<&str> = analysis.names().iter().map(String::as_str).chain(missing.iter().copied()).collect();
    let ids = node_ids(&all);
    let cyclic: HashSet<&str> = analysis.cycles().into_iter().flatten().collect();
    let mut out = String::from("flowchart LR\n");
    for name in &all {
        let class = if missing.contains(name) {
            ":::missing"
        } else if cyclic.contains(name) {
            ":::cycle"
        } else {
            ""
        };
        let _ = writeln!(out, "  {}[\"{}\"]{class}", ids[name], name.replace('"', "#quot;"));
    }
    let mut cycle_links = Vec::new();
    for (i, a) in arrows.iter().enumerate() {
        let arrow = if a.required { "-->" } else { "-.->" };
        let _ = writeln!(out, "  {} {arrow} {}", ids[a.from], ids[a.to]);
        if a.in_cycle {
            cycle_links.push(i.to_string());
        }
    }
    if !missing.is_empty() {
        out.push_str("  classDef missing stroke-dasharray: 5 5\n");
    }
    if !cyclic.is_empty() {
        let _ = writeln!(out, "  classDef cycle stroke:{CYCLE_COLOUR}");
    }
    if !cycle_links.is_empty() {
        let _ = writeln!(out, "  linkStyle {} stroke:{CYCLE_COLOUR},stroke-width:2px", cycle_links.join(","));
    }
    out
}

/// Mermaid node ids: the name with everything but ASCII letters, digits and `_`
/// replaced by `_`, prefixed so no id is a keyword (`end`) or starts with a digit,
/// and suffixed when two names sanitize alike.
fn node_ids<'a>(names: &[&'a str]) -> HashMap<&'a str, String> {
    let mut taken = HashSet::new();
    let mut ids = HashMap::with_capacity(names.len());
    for &name in names {
        let base: String = std::iter::once("r_")
            .flat_map(str::chars)
            .chain(name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }))
            .collect();
        let mut id = base.clone();
        let mut n = 2;
        while !taken.insert(id.clone()) {
            id = format!("{base}_{n}");
            n += 1;
        }
        ids.insert(name, id);
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::repo_dependency_graph::{Dependency, GraphOptions, Repository};
    use crate::logic::graph::analyse;

    fn repo(name: &str, deps: &[(&str, bool)]) -> Repository {
        Repository {
            name: name.into(),
            depends_on: deps.iter().map(|(d, r)| Dependency { repository: (*d).into(), required: *r }).collect(),
            discovery: vec![],
        }
    }

    fn sample() -> Analysis {
        analyse(
            &[
                repo("o/app", &[("o/api", true), ("o/docs", false), ("x/ghost", true)]),
                repo("o/api", &[("o/db", true)]),
                repo("o/db", &[]),
                repo("o/docs", &[]),
                repo("o/a-b", &[("o/a_b", true)]),
                repo("o/a_b", &[("o/a-b", true)]),
            ],
            &[],
            &GraphOptions::default(),
        )
    }

    #[test]
    fn mermaid_sanitizes_ids_dashes_optional_edges_and_highlights_cycles() {
        let m = mermaid(&sample());
        assert!(m.starts_with("flowchart LR\n"), "{m}");
        assert!(m.contains("  r_o_a_b[\"o/a-b\"]:::cycle\n"), "{m}");
        assert!(m.contains("  r_o_a_b_2[\"o/a_b\"]:::cycle\n"), "{m}");
        assert!(m.contains("  r_o_app -.-> r_o_docs\n"), "{m}");
        assert!(m.contains("  r_o_app --> r_x_ghost\n"), "{m}");
        assert!(m.contains("  r_x_ghost[\"x/ghost\"]:::missing\n"), "{m}");
        // Links are sorted: a-b -> a_b (0), a_b -> a-b (1) are the cycle.
        assert!(m.contains("  linkStyle 0,1 stroke:#d00,stroke-width:2px\n"), "{m}");
    }

    #[test]
    fn dot_quotes_names_and_styles_edges() {
        let d = dot(&sample());
        assert!(d.starts_with("digraph dependencies {"), "{d}");
        assert!(d.contains("  \"o/app\" -> \"o/docs\" [style=dashed];\n"), "{d}");
        assert!(d.contains("  \"o/a-b\" -> \"o/a_b\" [color=\"#d00\", penwidth=2];\n"), "{d}");
        assert!(d.contains("  \"x/ghost\" [style=dashed, color=gray];\n"), "{d}");
    }

    #[test]
    fn text_names_cycles_missing_and_waiting_repositories() {
        let t = text(&sample(), &[]);
        assert!(t.starts_with("6 repositories, 2 phases, 1 cycle\n"), "{t}");
        assert!(t.contains("Order: o/db, o/docs, o/api\n"), "{t}");
        assert!(t.contains("  o/a-b -> o/a_b -> o/a-b\n"), "{t}");
        assert!(t.contains("  o/app waits on x/ghost\n"), "{t}");
        assert!(t.contains("  o/app -> x/ghost (required, explicit)\n"), "{t}");
    }

    #[test]
    fn json_is_the_status_shape() {
        let v: serde_json::Value = serde_json::from_str(&json(&sample(), &[]).unwrap()).unwrap();
        assert_eq!(v["repositoryCount"], 6);
        assert_eq!(v["cycles"][0], serde_json::json!(["o/a-b", "o/a_b", "o/a-b"]));
        assert_eq!(v["missing"][0]["to"], "x/ghost");
        assert!(v["mermaid"].as_str().unwrap().starts_with("flowchart LR"));
    }
}
