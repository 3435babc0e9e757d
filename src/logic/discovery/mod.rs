//! Discovers repository dependencies from docker-compose files and Kubernetes
//! manifests, given their text (fetching them is the caller's I/O).
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
//! the file instead of guessing. Hosts in manifests that match no Service are just
//! strings and are ignored; so are external networks and images no repository owns.
//!
//! A file that cannot be parsed yields one [`DiscoveryError`] and contributes nothing;
//! it never fails the graph.

pub mod compose;
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
    /// How: `depends_on`, `links`, `volumes_from`, `network_mode`, `networks`, `image`, `env`.
    pub via: &'static str,
}

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
enum Owner<'a> {
    Itself,
    Other(&'a str),
    Several(Vec<&'a str>),
    Nobody,
}

fn owner<'a>(me: &str, owners: impl IntoIterator<Item = &'a str>) -> Owner<'a> {
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
struct Found<'a> {
    repository: &'a str,
    file: &'a str,
    from: &'a str,
    to: &'a str,
    via: &'static str,
    required: bool,
}

struct Collector {
    edges: BTreeSet<EdgeStatus>,
    internal: BTreeSet<InternalRelation>,
    problems: BTreeMap<(String, String), BTreeSet<String>>,
}

impl Collector {
    /// Records `found` as an internal relation, an edge with `provenance`, or a problem
    /// (`unresolved` is the message when nobody owns the target and that is an error).
    fn resolve(&mut self, resolved: Owner<'_>, found: Found<'_>, provenance: String, unresolved: Option<String>) {
        match resolved {
            Owner::Itself => {
                self.internal.insert(InternalRelation {
                    repository: found.repository.to_string(),
                    file: found.file.to_string(),
                    from: found.from.to_string(),
                    to: found.to.to_string(),
                    via: found.via,
                });
            }
            Owner::Other(other) => {
                self.edges.insert(EdgeStatus {
                    from: found.repository.to_string(),
                    to: other.to_string(),
                    required: found.required,
                    provenance,
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

/// Parses every file and resolves references across repositories.
pub fn discover(files: &[SourceFile]) -> Discovery {
    let mut errors = Vec::new();
    let mut composes = Vec::new();
    let mut manifest_files = Vec::new();
    for f in files {
        let failed =
            |message: String| DiscoveryError { repository: f.repository.clone(), file: f.file.clone(), message };
        match f.format {
            DiscoveryFormat::Compose => match compose::parse(&f.content) {
                Ok(parsed) => composes.push((f, parsed)),
                Err(e) => errors.push(failed(e)),
            },
            DiscoveryFormat::Manifests => match manifests::parse(&f.content) {
                Ok(parsed) => manifest_files.push((f, parsed)),
                Err(e) => errors.push(failed(e)),
            },
        }
    }

    let mut services: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut networks: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut images: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (f, parsed) in &composes {
        let repo = f.repository.as_str();
        for s in &parsed.services {
            services.entry(&s.name).or_default().insert(repo);
            if let (true, Some(image)) = (s.builds, &s.image) {
                images.entry(image).or_default().insert(repo);
            }
        }
        for n in parsed.networks.iter().filter(|n| !n.external && n.explicit_name) {
            networks.entry(&n.name).or_default().insert(repo);
        }
    }
    let mut k8s_services: BTreeMap<&str, Vec<(&str, Option<&str>)>> = BTreeMap::new();
    let mut config_maps: BTreeMap<(&str, &str), Vec<&manifests::ConfigMapObject>> = BTreeMap::new();
    for (f, parsed) in &manifest_files {
        for s in &parsed.services {
            k8s_services.entry(&s.name).or_default().push((&f.repository, s.namespace.as_deref()));
        }
        for cm in &parsed.config_maps {
            config_maps.entry((&f.repository, &cm.name)).or_default().push(cm);
        }
    }

    let mut out = Collector { edges: BTreeSet::new(), internal: BTreeSet::new(), problems: BTreeMap::new() };
    let none = BTreeSet::new();
    for (f, parsed) in &composes {
        let (repo, file) = (f.repository.as_str(), f.file.as_str());
        for s in &parsed.services {
            let provenance = format!("compose:{file}:{}", s.name);
            let at = Found { repository: repo, file, from: &s.name, to: "", via: "", required: true };
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
        }
    }
    for (f, parsed) in &manifest_files {
        let (repo, file) = (f.repository.as_str(), f.file.as_str());
        for w in &parsed.workloads {
            let same_namespace = |a: Option<&str>, b: Option<&str>| a.is_none() || b.is_none() || a == b;
            let mut values: Vec<&str> = w.values.iter().map(String::as_str).collect();
            for used in &w.config_maps {
                let found = config_maps.get(&(repo, used.name.as_str())).into_iter().flatten();
                for cm in found.filter(|cm| same_namespace(cm.namespace.as_deref(), w.namespace.as_deref())) {
                    match &used.key {
                        Some(key) => values.extend(cm.data.get(key).map(String::as_str)),
                        None => values.extend(cm.data.values().map(String::as_str)),
                    }
                }
            }
            let hosts: BTreeSet<manifests::ServiceHost> =
                values.iter().flat_map(|v| manifests::service_hosts(v)).collect();
            let from = format!("{}/{}", w.kind, w.name);
            for host in hosts {
                let candidates =
                    k8s_services.get(host.name.as_str()).into_iter().flatten().filter(|(_, ns)| {
                        match &host.namespace {
                            None => same_namespace(*ns, w.namespace.as_deref()),
                            Some(wanted) => ns.is_none_or(|ns| ns == wanted),
                        }
                    });
                let owners = candidates.map(|(r, _)| *r);
                let to = format!("Service/{}", host.name);
                let found = Found { repository: repo, file, from: &from, to: &to, via: "env", required: true };
                out.resolve(owner(repo, owners), found, format!("manifest:{file}:{from}"), None);
            }
        }
    }

    errors.extend(out.problems.into_iter().map(|((repository, file), messages)| DiscoveryError {
        repository,
        file,
        message: messages.into_iter().collect::<Vec<_>>().join("; "),
    }));
    errors.sort_by(|a, b| (&a.repository, &a.file, &a.message).cmp(&(&b.repository, &b.file, &b.message)));
    Discovery { edges: out.edges.into_iter().collect(), internal: out.internal.into_iter().collect(), errors }
}

#[cfg(test)]
mod tests;
