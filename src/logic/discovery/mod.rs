//! Discovers repository dependencies from docker-compose files, Kubernetes
//! manifests and env files, given their text (fetching them is the caller's I/O).
//!
//! Two kinds of evidence, kept apart in provenance:
//!
//! - **Explicit** (`compose:<file>:<service>`, `required` as declared): a compose key
//!   that names another service (`depends_on`, `links`, `volumes_from`,
//!   `network_mode`/`ipc`/`pid`/`uts`/`cgroup: service:`), an external network, or an
//!   image another repository builds ([`compose`]).
//! - **Address-based** (`inferred:<file>:<service>:<field>`, `required: false`): a
//!   host the service's or workload's process would connect to, found in its
//!   environment, env files, command or entrypoint (compose), or env, envFrom and
//!   mounted ConfigMaps, args and (init) container commands (Kubernetes). What counts
//!   as an address, and what does not, is in [`address`]; how hosts resolve to
//!   services, aliases, container names and Services (StatefulSet pod names included)
//!   is in [`inferred`]. One edge is kept per file, dependent and dependency: the
//!   alphabetically first field found is its evidence.
//!
//! A service, network or image is *owned* by the repository whose files define it:
//! a compose service by the repository whose compose file declares it; a network by
//! the repository whose compose file declares it non-external (by its `name:`, else
//! its key; the implicit `default` owns nothing); an image by the repository with a
//! service that has both `build:` and `image:`; a Kubernetes Service by the repository
//! whose manifests hold it. A reference resolves to the referring repository's own
//! definition first (an *internal* relation, recorded but not an edge), else to the
//! single other owner (an edge). A compose service reference nobody defines, or any
//! reference several other repositories could satisfy, is reported as a problem of
//! the file instead of guessing. Hosts that match nothing are outside addresses and
//! are ignored; so are external networks and images no repository owns.
//!
//! `extends` (same file or `file:`), `include:` and `env_file` name other files by
//! path relative to the compose file; they are looked up among the same repository's
//! sources (`env_file` in sources of format `Env`). A missing `extends` base, an
//! `extends` cycle or an `include` not among the sources is a problem of the file; a
//! missing env file is not (they are usually not committed).
//!
//! A file that cannot be parsed yields one [`DiscoveryError`] and contributes nothing;
//! it never fails the graph. Files over [`MAX_FILE_BYTES`] or holding NUL bytes are
//! reported without being parsed; the YAML parser refuses alias expansions that
//! outgrow the document ("billion laughs") and nesting deeper than its limit, so
//! every file is read in time and memory bounded by its size.

pub mod address;
pub mod compose;
pub mod env_file;
pub mod inferred;
pub mod manifests;

use std::collections::{BTreeMap, BTreeSet};

use crate::api::repo_dependency_graph::{DiscoveryError, DiscoveryFormat, DiscoverySource, EdgeStatus};

/// One discovery file's text, fetched by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Repository the file belongs to.
    pub repository: String,
    /// Label of the file, from [`source_label`]; used in provenance and errors.
    pub file: String,
    /// How to read it.
    pub format: DiscoveryFormat,
    /// The file's text.
    pub content: String,
}

/// A dependency between two things of the same repository.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct InternalRelation {
    /// The repository.
    pub repository: String,
    /// The file where the reference is.
    pub file: String,
    /// The referring compose service, or `Kind/name` of a workload.
    pub from: String,
    /// The referenced service, network (`network:<name>`), image (`image:<ref>`) or `Service/<name>`.
    pub to: String,
    /// How: `depends_on`, `links`, `volumes_from`, `network_mode`, `ipc`, `pid`, `uts`,
    /// `cgroup`, `networks`, `image`, or [`ADDRESS`] for an address the process uses.
    pub via: &'static str,
    /// For an address: the field it was found in (`environment.DB_HOST`, `app.env.URL`).
    pub field: String,
}

/// `via` of a relation inferred from an address.
pub const ADDRESS: &str = "address";

/// Everything discovered from a set of files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    /// Edges between repositories, sorted and without duplicates.
    pub edges: Vec<EdgeStatus>,
    /// Relations inside one repository, sorted.
    pub internal: Vec<InternalRelation>,
    /// One entry per file that failed to parse or holds unresolvable references, sorted.
    pub errors: Vec<DiscoveryError>,
}

/// The label of a discovery source: its path, or `configmap/<name>/<key>`.
pub fn source_label(source: &DiscoverySource) -> String {
    match (&source.path, &source.config_map_ref) {
        (Some(path), _) => path.clone(),
        (None, Some(r)) => format!("configmap/{}/{}", r.name, r.key),
        (None, None) => String::from("(no file)"),
    }
}

/// Who a reference resolves to.
pub(crate) enum Owner<'a> {
    Itself,
    Other(&'a str),
    Several(Vec<&'a str>),
    Nobody,
}

pub(crate) fn owner<'a>(me: &str, owners: impl IntoIterator<Item = &'a str>) -> Owner<'a> {
    let owners: BTreeSet<&str> = owners.into_iter().collect();
    if owners.contains(me) {
        return Owner::Itself;
    }
    let mut it = owners.iter();
    match (it.next(), it.next()) {
        (None, _) => Owner::Nobody,
        (Some(only), None) => Owner::Other(only),
        _ => Owner::Several(owners.into_iter().collect()),
    }
}

/// One reference found in a file, before resolution.
pub(crate) struct Found<'a> {
    repository: &'a str,
    file: &'a str,
    from: &'a str,
    to: &'a str,
    via: &'static str,
    required: bool,
    field: &'a str,
    profiles: &'a [String],
}

pub(crate) struct Collector {
    edges: BTreeSet<EdgeStatus>,
    internal: BTreeSet<InternalRelation>,
    problems: BTreeMap<(String, String), BTreeSet<String>>,
}

impl Collector {
    /// Records `found` as an internal relation, an edge with `provenance`, or a problem
    /// (`unresolved` is the message when nobody owns the target and that is an error).
    pub(crate) fn resolve(
        &mut self,
        resolved: Owner<'_>,
        found: Found<'_>,
        provenance: String,
        unresolved: Option<String>,
    ) {
        match resolved {
            Owner::Itself => {
                self.internal.insert(InternalRelation {
                    repository: found.repository.to_string(),
                    file: found.file.to_string(),
                    from: found.from.to_string(),
                    to: found.to.to_string(),
                    via: found.via,
                    field: found.field.to_string(),
                });
            }
            Owner::Other(other) => {
                self.edges.insert(EdgeStatus {
                    from: found.repository.to_string(),
                    to: other.to_string(),
                    required: found.required,
                    provenance,
                    profiles: found.profiles.to_vec(),
                });
            }
            Owner::Several(candidates) => {
                let message = format!(
                    "{}: {} {} is defined by several repositories ({})",
                    found.from,
                    found.via,
                    found.to,
                    candidates.join(", ")
                );
                self.problem(found.repository, found.file, message);
            }
            Owner::Nobody => {
                if let Some(message) = unresolved {
                    self.problem(found.repository, found.file, message);
                }
            }
        }
    }

    fn problem(&mut self, repository: &str, file: &str, message: String) {
        self.problems.entry((repository.to_string(), file.to_string())).or_default().insert(message);
    }
}

/// Largest file read; a larger one is reported, not parsed (compose files and
/// manifests are kilobytes; a ConfigMap holds at most 1 MiB).
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// Why a file is not parsed at all: too large or not text.
fn unreadable(content: &str) -> Option<String> {
    if content.len() > MAX_FILE_BYTES {
        return Some(format!("the file has {} bytes, more than the {MAX_FILE_BYTES} read", content.len()));
    }
    let sample = &content.as_bytes()[..content.len().min(64 * 1024)];
    sample.contains(&0).then(|| "the file is binary (it holds NUL bytes), not text".to_string())
}

/// Parses every file and resolves references across repositories.
pub fn discover(files: &[SourceFile]) -> Discovery {
    let mut errors = Vec::new();
    let mut documents = Vec::new();
    let mut manifest_files = Vec::new();
    let mut env_files: BTreeMap<(String, String), Vec<compose::Variable>> = BTreeMap::new();
    for f in files {
        let failed =
            |message: String| DiscoveryError { repository: f.repository.clone(), file: f.file.clone(), message };
        if let Some(message) = unreadable(&f.content) {
            errors.push(failed(message));
            continue;
        }
        match f.format {
            DiscoveryFormat::Compose => match compose::load(&f.content) {
                Ok(doc) => documents.push((f, doc)),
                Err(e) => errors.push(failed(e)),
            },
            DiscoveryFormat::Manifests => match manifests::parse(&f.content) {
                Ok(parsed) => manifest_files.push((f, parsed)),
                Err(e) => errors.push(failed(e)),
            },
            DiscoveryFormat::Env => {
                env_files.insert((f.repository.clone(), f.file.clone()), env_file::parse(&f.content));
            }
        }
    }
    let by_label: BTreeMap<(&str, &str), &compose::Document> =
        documents.iter().map(|(f, doc)| ((f.repository.as_str(), f.file.as_str()), doc)).collect();
    let mut out = Collector { edges: BTreeSet::new(), internal: BTreeSet::new(), problems: BTreeMap::new() };
    let mut composes = Vec::new();
    for (f, doc) in &documents {
        let lookup = |label: &str| by_label.get(&(f.repository.as_str(), label)).copied();
        match compose::read(doc, &f.file, &lookup) {
            Ok(parsed) => {
                for problem in &parsed.problems {
                    out.problem(&f.repository, &f.file, problem.clone());
                }
                for included in parsed.includes.iter().filter(|i| lookup(i).is_none()) {
                    let message = format!("include {included}: not among the repository's discovery sources");
                    out.problem(&f.repository, &f.file, message);
                }
                composes.push((*f, parsed));
            }
            Err(e) => {
                errors.push(DiscoveryError { repository: f.repository.clone(), file: f.file.clone(), message: e })
            }
        }
    }

    let mut services: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut names: BTreeMap<&str, BTreeSet<(&str, &str)>> = BTreeMap::new();
    let mut networks: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut images: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (f, parsed) in &composes {
        let repo = f.repository.as_str();
        for s in &parsed.services {
            services.entry(&s.name).or_default().insert(repo);
            names.entry(&s.name).or_default().insert((repo, &s.name));
            for n in &s.names {
                names.entry(n).or_default().insert((repo, &s.name));
            }
            if let (true, Some(image)) = (s.builds, &s.image) {
                images.entry(image).or_default().insert(repo);
            }
        }
        for n in parsed.networks.iter().filter(|n| !n.external && n.explicit_name) {
            networks.entry(&n.name).or_default().insert(repo);
        }
    }
    let mut k8s = inferred::KubernetesNames::default();
    for (f, parsed) in &manifest_files {
        k8s.add(&f.repository, parsed);
    }

    let none = BTreeSet::new();
    for (f, parsed) in &composes {
        let (repo, file) = (f.repository.as_str(), f.file.as_str());
        for s in &parsed.services {
            let provenance = format!("compose:{file}:{}", s.name);
            let at = Found {
                repository: repo,
                file,
                from: &s.name,
                to: "",
                via: "",
                required: true,
                field: "",
                profiles: &s.profiles,
            };
            for r in &s.references {
                let owners = services.get(r.service.as_str()).unwrap_or(&none).iter().copied();
                let via = r.kind.as_str();
                let unresolved = format!("{}: {via} {} is defined by no repository", s.name, r.service);
                out.resolve(
                    owner(repo, owners),
                    Found { to: &r.service, via, required: r.required, ..at },
                    provenance.clone(),
                    Some(unresolved),
                );
            }
            for key in &s.networks {
                let Some(network) = parsed.network(key).filter(|n| n.external) else {
                    continue;
                };
                let owners = networks.get(network.name.as_str()).unwrap_or(&none).iter().copied();
                let to = format!("network:{}", network.name);
                out.resolve(owner(repo, owners), Found { to: &to, via: "networks", ..at }, provenance.clone(), None);
            }
            if let (false, Some(image)) = (s.builds, &s.image) {
                let owners = images.get(image.as_str()).unwrap_or(&none).iter().copied();
                let to = format!("image:{image}");
                out.resolve(owner(repo, owners), Found { to: &to, via: "image", ..at }, provenance.clone(), None);
            }
            let env = |label: &String| env_files.get(&(repo.to_string(), label.clone()));
            for (field, hosts) in inferred::compose_addresses(s, s.env_files.iter().filter_map(env).flatten()) {
                for host in hosts {
                    inferred::resolve_compose(&mut out, &names, (repo, file, s), &field, &host);
                }
            }
        }
    }
    for (f, parsed) in &manifest_files {
        inferred::manifest_edges(&mut out, &k8s, (&f.repository, &f.file), parsed);
    }

    errors.extend(out.problems.into_iter().map(|((repository, file), messages)| DiscoveryError {
        repository,
        file,
        message: messages.into_iter().collect::<Vec<_>>().join("; "),
    }));
    errors.sort_by(|a, b| (&a.repository, &a.file, &a.message).cmp(&(&b.repository, &b.file, &b.message)));
    let mut edges: Vec<EdgeStatus> = out.edges.into_iter().collect();
    // One inferred edge per (file, dependent, dependency): the first field found is the evidence.
    let mut seen = BTreeSet::new();
    edges.retain(|e| match inferred::evidence_key(e) {
        Some(key) => seen.insert(key),
        None => true,
    });
    Discovery { edges, internal: out.internal.into_iter().collect(), errors }
}

#[cfg(test)]
mod tests;
