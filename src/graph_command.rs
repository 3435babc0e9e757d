//! `switchyard graph`: analyses a RepoDependencyGraph manifest offline.
//!
//! Discovery sources with `path` are read relative to the manifest's directory (the
//! offline stand-in for the GitHub contents API); `configMapRef` sources are looked up
//! in ConfigMap documents of the same YAML stream.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use clap::ValueEnum;
use serde::Deserialize;
use serde_yaml::Value;
use switchyard::api::RepoDependencyGraph;
use switchyard::api::repo_dependency_graph::{DiscoveryError, DiscoverySource};
use switchyard::logic::discovery::{self, SourceFile};
use switchyard::logic::{graph, graph_render};

/// Output format of `switchyard graph`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// A summary for humans.
    Text,
    /// The status the controller would write, as JSON.
    Json,
    /// Graphviz DOT.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
}

/// Exit code when `--fail-on-cycle` is set and the graph has a cycle.
const EXIT_CYCLE: u8 = 2;
/// Exit code when the graph is deeper than its `maxDepth`.
const EXIT_TOO_DEEP: u8 = 3;

/// Runs the command; prints to stdout, problems to stderr.
pub fn run(manifest: &Path, format: Format, fail_on_cycle: bool) -> ExitCode {
    let (graph, config_maps) = match load(manifest) {
        Ok(loaded) => loaded,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let base = manifest.parent().unwrap_or_else(|| Path::new("."));
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for repo in &graph.spec.repositories {
        for source in &repo.discovery {
            let file = discovery::source_label(source);
            match read_source(base, source, &config_maps) {
                Ok(content) => {
                    files.push(SourceFile { repository: repo.name.clone(), file, format: source.format, content })
                }
                Err(message) => errors.push(DiscoveryError { repository: repo.name.clone(), file, message }),
            }
        }
    }
    let discovered = discovery::discover(&files);
    errors.extend(discovered.errors);
    errors.sort_by(|a, b| (&a.repository, &a.file, &a.message).cmp(&(&b.repository, &b.file, &b.message)));
    let analysis = graph::analyse(&graph.spec.repositories, &discovered.edges, &graph.spec.options);

    let rendered = match format {
        Format::Text => graph_render::text(&analysis, &errors),
        Format::Json => match graph_render::json(&analysis, &errors) {
            Ok(json) => json + "\n",
            Err(e) => {
                eprintln!("error: cannot render JSON: {e}");
                return ExitCode::FAILURE;
            }
        },
        Format::Dot => graph_render::dot(&analysis),
        Format::Mermaid => graph_render::mermaid(&analysis),
    };
    print!("{rendered}");

    if let Err(e) = analysis.check() {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_TOO_DEEP);
    }
    if fail_on_cycle && !analysis.cycles().is_empty() {
        eprintln!("error: the graph has {} cycle(s)", analysis.cycles().len());
        return ExitCode::from(EXIT_CYCLE);
    }
    ExitCode::SUCCESS
}

type ConfigMaps = BTreeMap<String, BTreeMap<String, String>>;

/// The one RepoDependencyGraph of the stream, and its ConfigMaps' data by name.
fn load(manifest: &Path) -> Result<(RepoDependencyGraph, ConfigMaps), String> {
    let text = std::fs::read_to_string(manifest).map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let mut graphs = Vec::new();
    let mut config_maps = ConfigMaps::new();
    for (i, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let at = || format!("{} document {}", manifest.display(), i + 1);
        let value = Value::deserialize(document).map_err(|e| format!("{}: invalid YAML: {e}", at()))?;
        match value.get("kind").and_then(Value::as_str) {
            Some("RepoDependencyGraph") => {
                let graph: RepoDependencyGraph = serde_yaml::from_value(value)
                    .map_err(|e| format!("{}: not a valid RepoDependencyGraph: {e}", at()))?;
                graphs.push(graph);
            }
            Some("ConfigMap") => {
                let name = value.get("metadata").and_then(|m| m.get("name")).and_then(Value::as_str);
                let data: BTreeMap<String, String> = match value.get("data") {
                    None | Some(Value::Null) => BTreeMap::new(),
                    Some(data) => serde_yaml::from_value(data.clone())
                        .map_err(|e| format!("{}: ConfigMap data is not a map of strings: {e}", at()))?,
                };
                if let Some(name) = name {
                    config_maps.insert(name.to_string(), data);
                }
            }
            _ => {}
        }
    }
    match graphs.len() {
        1 => Ok((graphs.remove(0), config_maps)),
        0 => Err(format!("{} holds no RepoDependencyGraph", manifest.display())),
        n => Err(format!("{} holds {n} RepoDependencyGraphs; pass one at a time", manifest.display())),
    }
}

fn read_source(base: &Path, source: &DiscoverySource, config_maps: &ConfigMaps) -> Result<String, String> {
    if let Some(path) = &source.path {
        let full = base.join(path);
        return std::fs::read_to_string(&full).map_err(|e| format!("cannot read {}: {e}", full.display()));
    }
    if let Some(r) = &source.config_map_ref {
        let data = config_maps.get(&r.name).ok_or_else(|| format!("no ConfigMap {} in the manifest", r.name))?;
        return data.get(&r.key).cloned().ok_or_else(|| format!("ConfigMap {} has no key {}", r.name, r.key));
    }
    Err("neither path nor configMapRef is set".into())
}
