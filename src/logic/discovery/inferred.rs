//! Address-based relations: the hosts a service or workload's process uses (by the
//! rules of [`super::address`]) resolved to what the repositories define.
//!
//! A compose host is matched exactly against every service name, `container_name`,
//! `hostname` and network alias, and the service's own `links` aliases; a Kubernetes
//! host against Services in every DNS form, StatefulSet pod names included
//! ([`manifests::service_hosts`]). The referring repository's own definition wins (an
//! internal relation; a service's address of itself is no relation), else the single
//! other owner gives an edge with provenance `inferred:<file>:<service>:<field>` and
//! `required: false` (an address says "talks to", not "cannot start without"); a host
//! several repositories define is a problem of the file; one nobody defines is an
//! outside address and ignored. Compose hosts resolve against compose names only, and
//! Kubernetes hosts against Services only: the two do not share a DNS.

use std::collections::{BTreeMap, BTreeSet};

use super::compose::{Service, Variable};
use super::manifests::{self, ConfigMapObject, ConfigMapRead, ManifestFile, StatefulSetObject};
use super::{ADDRESS, Collector, Found, InternalRelation, address, owner};
use crate::api::repo_dependency_graph::EdgeStatus;

/// Prefix of the provenance of an address-based edge.
pub const INFERRED: &str = "inferred";

/// Each field of a compose service with the hosts found in it: `env_file.<NAME>`
/// (from `env_vars`, the service's env files), `environment.<NAME>`, `entrypoint`, `command`.
pub(crate) fn compose_addresses<'a>(
    s: &Service,
    env_vars: impl Iterator<Item = &'a Variable>,
) -> Vec<(String, BTreeSet<String>)> {
    let mut found: Vec<(String, BTreeSet<String>)> =
        env_vars.map(|v| (format!("env_file.{}", v.name), address::in_variable(&v.name, &v.value))).collect();
    for v in &s.environment {
        found.push((format!("environment.{}", v.name), address::in_variable(&v.name, &v.value)));
    }
    for (field, words) in &s.commands {
        found.push((field.to_string(), address::in_command(words)));
    }
    found.retain(|(_, hosts)| !hosts.is_empty());
    found
}

/// Records what `host`, found in `field` of compose service `s`, refers to.
pub(crate) fn resolve_compose(
    out: &mut Collector,
    names: &BTreeMap<&str, BTreeSet<(&str, &str)>>,
    (repo, file, s): (&str, &str, &Service),
    field: &str,
    host: &str,
) {
    let host = s.link_aliases.iter().find(|(alias, _)| alias == host).map_or(host, |(_, target)| target.as_str());
    let Some(candidates) = names.get(host) else {
        return;
    };
    let mine: BTreeSet<&str> = candidates.iter().filter(|(r, _)| *r == repo).map(|(_, svc)| *svc).collect();
    if !mine.is_empty() {
        for target in mine.into_iter().filter(|t| *t != s.name) {
            out.internal.insert(InternalRelation {
                repository: repo.to_string(),
                file: file.to_string(),
                from: s.name.clone(),
                to: target.to_string(),
                via: ADDRESS,
                field: field.to_string(),
            });
        }
        return;
    }
    let found = Found {
        repository: repo,
        file,
        from: &s.name,
        to: host,
        via: ADDRESS,
        required: false,
        field,
        profiles: &s.profiles,
    };
    out.resolve(owner(repo, candidates.iter().map(|(r, _)| *r)), found, provenance(file, &s.name, field), None);
}

fn provenance(file: &str, from: &str, field: &str) -> String {
    format!("{INFERRED}:{file}:{from}:{field}")
}

/// What the manifests of every repository define, for resolving Kubernetes hosts.
#[derive(Default)]
pub(crate) struct KubernetesNames<'a> {
    services: BTreeMap<&'a str, Vec<(&'a str, Option<&'a str>)>>,
    stateful_sets: Vec<&'a StatefulSetObject>,
    config_maps: BTreeMap<(&'a str, &'a str), Vec<&'a ConfigMapObject>>,
}

impl<'a> KubernetesNames<'a> {
    pub(crate) fn add(&mut self, repo: &'a str, parsed: &'a ManifestFile) {
        for s in &parsed.services {
            self.services.entry(&s.name).or_default().push((repo, s.namespace.as_deref()));
        }
        self.stateful_sets.extend(&parsed.stateful_sets);
        for cm in &parsed.config_maps {
            self.config_maps.entry((repo, &cm.name)).or_default().push(cm);
        }
    }

    /// The repositories defining what `host` names, seen from namespace `from_ns`,
    /// with the Service's name.
    fn owners(&self, host: &str, from_ns: Option<&str>) -> BTreeSet<(&'a str, String)> {
        let mut owners = BTreeSet::new();
        for reading in manifests::service_hosts(host) {
            let wanted = reading.namespace.as_deref();
            if let Some(pod) = &reading.pod {
                let governed = self.stateful_sets.iter().any(|sts| {
                    sts.service == reading.name
                        && compatible(sts.namespace.as_deref(), wanted.or(from_ns))
                        && pod
                            .strip_prefix(sts.name.as_str())
                            .and_then(|r| r.strip_prefix('-'))
                            .is_some_and(|ordinal| !ordinal.is_empty() && ordinal.chars().all(|c| c.is_ascii_digit()))
                });
                if !governed {
                    continue;
                }
            }
            let defined = self.services.get(reading.name.as_str()).into_iter().flatten();
            for (repo, ns) in defined {
                let visible = match wanted {
                    None => compatible(*ns, from_ns),
                    Some(wanted) => ns.is_none_or(|ns| ns == wanted),
                };
                if visible {
                    owners.insert((*repo, reading.name.clone()));
                }
            }
        }
        owners
    }
}

/// Namespaces match when equal or when either is unset (applied wherever the manifests are).
fn compatible(a: Option<&str>, b: Option<&str>) -> bool {
    a.is_none() || b.is_none() || a == b
}

/// Records the address relations of every workload of `parsed`.
pub(crate) fn manifest_edges(
    out: &mut Collector,
    k8s: &KubernetesNames<'_>,
    (repo, file): (&str, &str),
    parsed: &ManifestFile,
) {
    for w in &parsed.workloads {
        let mut found: Vec<(String, BTreeSet<String>)> = Vec::new();
        for carried in &w.carried {
            match carried {
                manifests::Carried::Variable { field, name, value } => {
                    found.push((field.clone(), address::in_variable(name, value)))
                }
                manifests::Carried::Command { field, words } => found.push((field.clone(), address::in_command(words))),
            }
        }
        for used in &w.config_maps {
            let maps = k8s.config_maps.get(&(repo, used.name.as_str())).into_iter().flatten();
            for cm in maps.filter(|cm| compatible(cm.namespace.as_deref(), w.namespace.as_deref())) {
                match &used.how {
                    ConfigMapRead::Key { key, variable } => {
                        if let Some(value) = cm.data.get(key) {
                            let field = format!("{}.env.{variable}", used.container);
                            found.push((field, address::in_variable(variable, value)));
                        }
                    }
                    ConfigMapRead::Env { prefix } => {
                        for (key, value) in &cm.data {
                            let field = format!("{}.envFrom.{}.{key}", used.container, cm.name);
                            found.push((field, address::in_variable(&format!("{prefix}{key}"), value)));
                        }
                    }
                    ConfigMapRead::Volume => {
                        for (key, value) in &cm.data {
                            found.push((format!("volume.{}.{key}", cm.name), address::in_text(value)));
                        }
                    }
                }
            }
        }
        let from = format!("{}/{}", w.kind, w.name);
        for (field, hosts) in &found {
            for host in hosts {
                let owners = k8s.owners(host, w.namespace.as_deref());
                let Some((_, service)) = owners.iter().next() else {
                    continue;
                };
                let to = format!("Service/{service}");
                let found = Found {
                    repository: repo,
                    file,
                    from: &from,
                    to: &to,
                    via: ADDRESS,
                    required: false,
                    field,
                    profiles: &[],
                };
                let resolved = owner(repo, owners.iter().map(|(r, _)| *r));
                out.resolve(resolved, found, provenance(file, &from, field), None);
            }
        }
    }
}

/// For an inferred edge: what makes two of them the same evidence (file, dependent,
/// target), so only one per pair is kept.
pub(crate) fn evidence_key(e: &EdgeStatus) -> Option<(String, String, String, String)> {
    let mut parts = e.provenance.splitn(4, ':');
    (parts.next() == Some(INFERRED)).then_some(())?;
    let (file, from) = (parts.next()?, parts.next()?);
    Some((e.from.clone(), e.to.clone(), file.to_string(), from.to_string()))
}
