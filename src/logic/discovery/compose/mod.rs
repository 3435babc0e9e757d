//! Reads a docker-compose file into what dependency discovery needs: each service's
//! references to other services, the names it can be reached by, the strings its
//! process reads (environment, command), the networks it joins, and the image it uses
//! or builds.
//!
//! Understood forms: `depends_on` as a list or as a map (long form; `required: false`
//! makes the reference optional), `links` (`service` or `service:alias`; the alias is
//! a name of the service for the linking service only), `volumes_from` (`service`,
//! `service:ro|rw`; `container:…` is ignored: it names a container, not a service),
//! `network_mode`, `ipc`, `pid`, `uts` and `cgroup` as `service:x`, service `networks`
//! (list or map, with `aliases`; a service without `networks` or `network_mode` joins
//! `default`), `container_name` and `hostname` (more names of the service), top-level
//! `networks` with `external: true`, `external: {name: …}` or `name:`,
//! `image`/`build`, `environment` (list or map), `env_file` (string, list, or
//! `{path, required}` entries), `command`/`entrypoint` (string or list), `profiles`,
//! `extends` (same file or `file:`; see [`extends`]) and top-level `include:`.
//! YAML anchors and `<<` merge keys are resolved first, as compose does.

pub mod extends;

use serde_yaml::{Mapping, Value};

/// How one service refers to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReferenceKind {
    /// `depends_on`.
    DependsOn,
    /// `links`.
    Link,
    /// `volumes_from`.
    VolumesFrom,
    /// `network_mode: service:x`.
    NetworkMode,
    /// `ipc: service:x`.
    Ipc,
    /// `pid: service:x`.
    Pid,
    /// `uts: service:x`.
    Uts,
    /// `cgroup: service:x`.
    Cgroup,
}

impl ReferenceKind {
    /// The compose key the reference came from.
    pub fn as_str(self) -> &'static str {
        match self {
            ReferenceKind::DependsOn => "depends_on",
            ReferenceKind::Link => "links",
            ReferenceKind::VolumesFrom => "volumes_from",
            ReferenceKind::NetworkMode => "network_mode",
            ReferenceKind::Ipc => "ipc",
            ReferenceKind::Pid => "pid",
            ReferenceKind::Uts => "uts",
            ReferenceKind::Cgroup => "cgroup",
        }
    }
}

/// A reference from one service to another service by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Which key made it.
    pub kind: ReferenceKind,
    /// The referenced service.
    pub service: String,
    /// False only for `depends_on` entries with `required: false`.
    pub required: bool,
}

/// A variable of a service's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// Name.
    pub name: String,
    /// Value (empty for a name without one).
    pub value: String,
}

/// One service of a compose file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Service {
    /// Service name (key under `services`).
    pub name: String,
    /// References to other services.
    pub references: Vec<Reference>,
    /// Other names others reach it by: `container_name`, `hostname`, network aliases (lowercased).
    pub names: Vec<String>,
    /// `links` aliases: names only this service uses for another (`alias`, `service`).
    pub link_aliases: Vec<(String, String)>,
    /// `environment`, in file order (after `extends`).
    pub environment: Vec<Variable>,
    /// `env_file` paths, resolved against the compose file's directory.
    pub env_files: Vec<String>,
    /// `command` and `entrypoint` words, by key.
    pub commands: Vec<(&'static str, Vec<String>)>,
    /// `profiles`: the service runs only when one of them is enabled.
    pub profiles: Vec<String>,
    /// Keys of the networks the service joins.
    pub networks: Vec<String>,
    /// `image:`, when it is a literal (no `$` interpolation), normalized by [`normalize_image`].
    pub image: Option<String>,
    /// The service has `build:`, so it produces `image` rather than pulling it.
    pub builds: bool,
}

/// A top-level network declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// Key under `networks`.
    pub key: String,
    /// The name the network has on the Docker host: `external.name`, else `name`, else
    /// the key (the project-name prefix compose adds is unknown offline and ignored).
    pub name: String,
    /// Declared `external`, i.e. created by someone else.
    pub external: bool,
    /// Declared explicitly (not just the implicit `default`).
    pub explicit_name: bool,
}

/// What a compose file tells about dependencies.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComposeFile {
    /// Services, in file order.
    pub services: Vec<Service>,
    /// Top-level networks, in file order.
    pub networks: Vec<Network>,
    /// `include:` paths, resolved against the file's directory.
    pub includes: Vec<String>,
    /// What could not be applied (an `extends` cycle or missing base); the rest is read.
    pub problems: Vec<String>,
}

impl ComposeFile {
    /// The declared network with this key.
    pub fn network(&self, key: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.key == key)
    }
}

/// A compose file's YAML, anchors and merge keys resolved, not yet interpreted.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    root: Mapping,
}

impl Document {
    /// The body of service `name`, if the file defines it.
    pub fn service(&self, name: &str) -> Option<&Mapping> {
        self.root.get("services").and_then(Value::as_mapping).and_then(|s| s.get(name)).and_then(Value::as_mapping)
    }
}

/// Parses compose YAML into a [`Document`]; the error names the offending key.
pub fn load(text: &str) -> Result<Document, String> {
    let mut root: Value = serde_yaml::from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
    resolve_merge_keys(&mut root)?;
    match root {
        Value::Mapping(root) => Ok(Document { root }),
        Value::Null => Err("the file is empty".into()),
        _ => Err("the top level is not a mapping".into()),
    }
}

/// Parses one compose file on its own (`extends: file:` and `include:` are not followed).
pub fn parse(text: &str) -> Result<ComposeFile, String> {
    read(&load(text)?, "", &|_| None)
}

/// Interprets `doc`, whose label is `label`; `lookup` finds other compose documents of
/// the same repository by label, for `extends: {file: …}`.
pub fn read<'a>(
    doc: &'a Document,
    label: &str,
    lookup: &dyn Fn(&str) -> Option<&'a Document>,
) -> Result<ComposeFile, String> {
    let root = &doc.root;
    let mut file = ComposeFile::default();
    if let Some(networks) = root.get("networks").filter(|v| !v.is_null()) {
        let networks = networks.as_mapping().ok_or("networks: expected a mapping")?;
        for (key, decl) in networks {
            let key = scalar(key).ok_or("networks: a key is not a string")?;
            file.networks.push(network(&key, decl)?);
        }
    }
    match root.get("include") {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(items)) => {
            for item in items {
                let paths = match item {
                    Value::Mapping(m) => match m.get("path") {
                        Some(Value::Sequence(list)) => list.iter().filter_map(scalar).collect(),
                        Some(v) => scalar(v).into_iter().collect(),
                        None => Vec::new(),
                    },
                    v => scalar(v).into_iter().collect::<Vec<_>>(),
                };
                file.includes.extend(paths.iter().map(|p| extends::join(label, p)));
            }
        }
        Some(_) => return Err("include: expected a list".into()),
    }
    if let Some(services) = root.get("services").filter(|v| !v.is_null()) {
        let services = services.as_mapping().ok_or("services: expected a mapping")?;
        for (name, body) in services {
            let name = scalar(name).ok_or("services: a key is not a string")?;
            let body = match body {
                Value::Mapping(m) => m,
                Value::Null => &Mapping::new(),
                _ => return Err(format!("services.{name}: expected a mapping")),
            };
            let body = match extends::resolve(doc, label, &name, body, lookup) {
                Ok(resolved) => resolved,
                Err(problem) => {
                    file.problems.push(problem);
                    std::borrow::Cow::Borrowed(body)
                }
            };
            file.services.push(service(&name, &body, label)?);
        }
    }
    Ok(file)
}

fn network(key: &str, decl: &Value) -> Result<Network, String> {
    let at = |field: &str| format!("networks.{key}.{field}");
    let declared_name = match decl.get("name") {
        None | Some(Value::Null) => None,
        Some(v) => Some(scalar(v).ok_or_else(|| format!("{}: expected a string", at("name")))?),
    };
    let (external, external_name) = match decl.get("external") {
        None | Some(Value::Null) => (false, None),
        Some(Value::Bool(b)) => (*b, None),
        Some(Value::Mapping(m)) => match m.get("name") {
            None => (true, None),
            Some(v) => (true, Some(scalar(v).ok_or_else(|| format!("{}: expected a string", at("external.name")))?)),
        },
        Some(_) => {
            return Err(format!("{}: expected a boolean or a mapping", at("external")));
        }
    };
    let explicit_name = external_name.is_some() || declared_name.is_some() || key != "default";
    let name = external_name.or(declared_name).unwrap_or_else(|| key.to_string());
    Ok(Network { key: key.to_string(), name, external, explicit_name })
}

fn service(name: &str, body: &Mapping, label: &str) -> Result<Service, String> {
    let at = |field: &str| format!("services.{name}.{field}");
    let mut references = Vec::new();
    match body.get("depends_on") {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(list)) => {
            for item in list {
                let target = scalar(item).ok_or_else(|| format!("{}: expected service names", at("depends_on")))?;
                references.push(Reference { kind: ReferenceKind::DependsOn, service: target, required: true });
            }
        }
        Some(Value::Mapping(map)) => {
            for (target, options) in map {
                let target = scalar(target).ok_or_else(|| format!("{}: a key is not a string", at("depends_on")))?;
                let required = match options.get("required") {
                    None | Some(Value::Null) => true,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => {
                        return Err(format!("{}: expected a boolean", at(&format!("depends_on.{target}.required"))));
                    }
                };
                references.push(Reference { kind: ReferenceKind::DependsOn, service: target, required });
            }
        }
        Some(_) => {
            return Err(format!("{}: expected a list or a mapping", at("depends_on")));
        }
    }
    let mut link_aliases = Vec::new();
    for link in strings(body.get("links"), &at("links"))? {
        // `service:alias`: the alias is the hostname the linking service sees.
        let (target, alias) = link.split_once(':').unwrap_or((&link, ""));
        if !alias.is_empty() {
            link_aliases.push((alias.to_ascii_lowercase(), target.to_string()));
        }
        references.push(Reference { kind: ReferenceKind::Link, service: target.to_string(), required: true });
    }
    for source in strings(body.get("volumes_from"), &at("volumes_from"))? {
        if source.starts_with("container:") {
            continue;
        }
        let target = source.strip_prefix("service:").unwrap_or(&source);
        let target = target.split(':').next().unwrap_or_default().to_string();
        references.push(Reference { kind: ReferenceKind::VolumesFrom, service: target, required: true });
    }
    let optional_string = |field: &str| match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => scalar(v).map(Some).ok_or_else(|| format!("{}: expected a string", at(field))),
    };
    let network_mode = optional_string("network_mode")?;
    for (field, kind) in [
        ("network_mode", ReferenceKind::NetworkMode),
        ("ipc", ReferenceKind::Ipc),
        ("pid", ReferenceKind::Pid),
        ("uts", ReferenceKind::Uts),
        ("cgroup", ReferenceKind::Cgroup),
    ] {
        if let Some(target) = optional_string(field)?.as_deref().and_then(|m| m.strip_prefix("service:")) {
            references.push(Reference { kind, service: target.to_string(), required: true });
        }
    }
    references.retain(|r| !r.service.is_empty());

    let mut names: Vec<String> = ["container_name", "hostname"]
        .iter()
        .map(|f| optional_string(f))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .filter(|n| !n.contains('$'))
        .collect();
    let networks = match body.get("networks") {
        None | Some(Value::Null) if network_mode.is_none() => vec!["default".to_string()],
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(_)) => strings(body.get("networks"), &at("networks"))?,
        Some(Value::Mapping(map)) => {
            let mut keys = Vec::new();
            for (k, v) in map {
                keys.push(scalar(k).ok_or_else(|| format!("{}: a key is not a string", at("networks")))?);
                names.extend(strings(v.get("aliases"), &at("networks.aliases"))?);
            }
            keys
        }
        Some(_) => return Err(format!("{}: expected a list or a mapping", at("networks"))),
    };
    let mut names: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).filter(|n| n != name).collect();
    names.sort();
    names.dedup();

    let image = optional_string("image")?;
    let mut env_files = Vec::new();
    match body.get("env_file") {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(list)) => {
            for item in list {
                let path = match item {
                    Value::Mapping(m) => m.get("path").and_then(scalar),
                    v => scalar(v),
                };
                env_files.extend(path.map(|p| extends::join(label, &p)));
            }
        }
        Some(v) => env_files.extend(scalar(v).map(|p| extends::join(label, &p))),
    }
    let mut commands = Vec::new();
    for field in ["entrypoint", "command"] {
        let words = match body.get(field) {
            None | Some(Value::Null) => continue,
            Some(Value::Sequence(list)) => list.iter().filter_map(scalar).collect(),
            Some(v) => {
                scalar(v).map(|s| vec![s]).ok_or_else(|| format!("{}: expected a string or a list", at(field)))?
            }
        };
        commands.push((field, words));
    }
    Ok(Service {
        name: name.to_string(),
        references,
        names,
        link_aliases,
        environment: environment(body.get("environment"), &at("environment"))?,
        env_files,
        commands,
        profiles: strings(body.get("profiles"), &at("profiles"))?,
        networks,
        image: image.filter(|i| !i.contains('$')).map(|i| normalize_image(&i)),
        builds: body.get("build").is_some_and(|b| !b.is_null()),
    })
}

/// `environment` as a list (`NAME=value`, `NAME`) or a mapping.
fn environment(value: Option<&Value>, at: &str) -> Result<Vec<Variable>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(list)) => list
            .iter()
            .map(|item| {
                let item = scalar(item).ok_or_else(|| format!("{at}: expected NAME=value strings"))?;
                let (name, value) = item.split_once('=').unwrap_or((&item, ""));
                Ok(Variable { name: name.to_string(), value: value.to_string() })
            })
            .collect(),
        Some(Value::Mapping(map)) => map
            .iter()
            .map(|(k, v)| {
                let name = scalar(k).ok_or_else(|| format!("{at}: a key is not a string"))?;
                Ok(Variable { name, value: scalar(v).unwrap_or_default() })
            })
            .collect(),
        Some(_) => Err(format!("{at}: expected a list or a mapping")),
    }
}

/// `image` with the implicit `:latest` tag made explicit, so `app` and `app:latest` match.
pub fn normalize_image(image: &str) -> String {
    let last_segment = image.rsplit('/').next().unwrap_or(image);
    if last_segment.contains(':') || last_segment.contains('@') { image.to_string() } else { format!("{image}:latest") }
}

/// A list of strings (absent or null is empty).
fn strings(value: Option<&Value>, at: &str) -> Result<Vec<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(list)) => {
            list.iter().map(|v| scalar(v).ok_or_else(|| format!("{at}: expected a list of strings"))).collect()
        }
        Some(_) => Err(format!("{at}: expected a list")),
    }
}

/// A scalar as text (YAML lets service names and keys be numbers or booleans).
pub(super) fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Applies `<<` merge keys everywhere, innermost first, so merged-in mappings that
/// themselves merge (`<<: *defaults` where defaults has `<<: *restart`) resolve fully.
/// Keys written in the mapping win over merged ones, as YAML specifies.
fn resolve_merge_keys(value: &mut Value) -> Result<(), String> {
    match value {
        Value::Mapping(map) => {
            for v in map.values_mut() {
                resolve_merge_keys(v)?;
            }
            while let Some(merge) = map.shift_remove("<<") {
                let sources = match merge {
                    Value::Mapping(m) => vec![m],
                    Value::Sequence(list) => list
                        .into_iter()
                        .map(|v| match v {
                            Value::Mapping(m) => Ok(m),
                            _ => Err("a `<<` merge list holds something other than mappings".to_string()),
                        })
                        .collect::<Result<_, _>>()?,
                    _ => return Err("a `<<` merge key does not hold a mapping".into()),
                };
                for mut source in sources {
                    let mut source_value = Value::Mapping(std::mem::take(&mut source));
                    resolve_merge_keys(&mut source_value)?;
                    if let Value::Mapping(source) = source_value {
                        for (k, v) in source {
                            map.entry(k).or_insert(v);
                        }
                    }
                }
            }
            Ok(())
        }
        Value::Sequence(list) => list.iter_mut().try_for_each(resolve_merge_keys),
        Value::Tagged(tagged) => resolve_merge_keys(&mut tagged.value),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
