//! Reads a docker-compose file into what dependency discovery needs: each service's
//! references to other services, the networks it joins, and the image it uses or builds.
//!
//! Understood forms: `depends_on` as a list or as a map (long form; `required: false`
//! makes the reference optional), `links` (`service` or `service:alias`),
//! `volumes_from` (`service`, `service:ro|rw`; `container:…` is ignored: it names a
//! container, not a service), `network_mode: service:x`, service `networks` (list or
//! map; a service without `networks` or `network_mode` joins `default`), top-level
//! `networks` with `external: true`, `external: {name: …}` or `name:`, and
//! `image`/`build`. YAML anchors and `<<` merge keys are resolved first, as compose does.

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
}

impl ReferenceKind {
    /// The compose key the reference came from.
    pub fn as_str(self) -> &'static str {
        match self {
            ReferenceKind::DependsOn => "depends_on",
            ReferenceKind::Link => "links",
            ReferenceKind::VolumesFrom => "volumes_from",
            ReferenceKind::NetworkMode => "network_mode",
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

/// One service of a compose file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Service {
    /// Service name (key under `services`).
    pub name: String,
    /// References to other services.
    pub references: Vec<Reference>,
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
}

impl ComposeFile {
    /// The declared network with this key.
    pub fn network(&self, key: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.key == key)
    }
}

/// Parses compose YAML; the error names the offending key.
pub fn parse(text: &str) -> Result<ComposeFile, String> {
    let mut root: Value = serde_yaml::from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
    resolve_merge_keys(&mut root)?;
    let root = match root {
        Value::Mapping(m) => m,
        Value::Null => return Err("the file is empty".into()),
        _ => return Err("the top level is not a mapping".into()),
    };
    let mut file = ComposeFile::default();
    if let Some(networks) = root.get("networks").filter(|v| !v.is_null()) {
        let networks = networks.as_mapping().ok_or("networks: expected a mapping")?;
        for (key, decl) in networks {
            let key = scalar(key).ok_or("networks: a key is not a string")?;
            file.networks.push(network(&key, decl)?);
        }
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
            file.services.push(service(&name, body)?);
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

fn service(name: &str, body: &Mapping) -> Result<Service, String> {
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
    for link in strings(body.get("links"), &at("links"))? {
        // `service:alias`: the alias is the hostname the linking service sees.
        let target = link.split(':').next().unwrap_or_default().to_string();
        references.push(Reference { kind: ReferenceKind::Link, service: target, required: true });
    }
    for source in strings(body.get("volumes_from"), &at("volumes_from"))? {
        if source.starts_with("container:") {
            continue;
        }
        let target = source.strip_prefix("service:").unwrap_or(&source);
        let target = target.split(':').next().unwrap_or_default().to_string();
        references.push(Reference { kind: ReferenceKind::VolumesFrom, service: target, required: true });
    }
    let network_mode = match body.get("network_mode") {
        None | Some(Value::Null) => None,
        Some(v) => Some(scalar(v).ok_or_else(|| format!("{}: expected a string", at("network_mode")))?),
    };
    if let Some(target) = network_mode.as_deref().and_then(|m| m.strip_prefix("service:")) {
        references.push(Reference { kind: ReferenceKind::NetworkMode, service: target.to_string(), required: true });
    }
    references.retain(|r| !r.service.is_empty());

    let networks = match body.get("networks") {
        None | Some(Value::Null) if network_mode.is_none() => vec!["default".to_string()],
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(_)) => strings(body.get("networks"), &at("networks"))?,
        Some(Value::Mapping(map)) => map
            .keys()
            .map(|k| scalar(k).ok_or_else(|| format!("{}: a key is not a string", at("networks"))))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(format!("{}: expected a list or a mapping", at("networks"))),
    };
    let image = match body.get("image") {
        None | Some(Value::Null) => None,
        Some(v) => Some(scalar(v).ok_or_else(|| format!("{}: expected a string", at("image")))?),
    };
    Ok(Service {
        name: name.to_string(),
        references,
        networks,
        image: image.filter(|i| !i.contains('$')).map(|i| normalize_image(&i)),
        builds: body.get("build").is_some_and(|b| !b.is_null()),
    })
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
mod tests {
    use super::*;

    fn refs(service: &Service) -> Vec<(ReferenceKind, &str, bool)> {
        service.references.iter().map(|r| (r.kind, r.service.as_str(), r.required)).collect()
    }

    #[test]
    fn every_reference_form_is_read() {
        let file = parse(
            r#"
services:
  web:
    build: .
    image: acme/web
    depends_on: [db, cache]
    links: ["auth:login", search]
    volumes_from: [assets, "logs:ro", "container:sidecar", "container:other:rw", "service:media:rw"]
    networks: [front, shared]
  worker:
    network_mode: "service:web"
    depends_on:
      queue:
        condition: service_healthy
      metrics:
        condition: service_started
        required: false
  lone:
    image: "$IMAGE"
    network_mode: "container:abc"
networks:
  front:
  shared:
    external: true
  legacy:
    external:
      name: corp_legacy
  renamed:
    external: true
    name: corp_renamed
  owned:
    name: corp_owned
"#,
        )
        .unwrap();
        let web = &file.services[0];
        use ReferenceKind::*;
        assert_eq!(
            refs(web),
            vec![
                (DependsOn, "db", true),
                (DependsOn, "cache", true),
                (Link, "auth", true),
                (Link, "search", true),
                (VolumesFrom, "assets", true),
                (VolumesFrom, "logs", true),
                (VolumesFrom, "media", true),
            ]
        );
        assert_eq!(web.networks, vec!["front", "shared"]);
        assert_eq!(web.image.as_deref(), Some("acme/web:latest"));
        assert!(web.builds);
        let worker = &file.services[1];
        assert_eq!(
            refs(worker),
            vec![(DependsOn, "queue", true), (DependsOn, "metrics", false), (NetworkMode, "web", true)]
        );
        assert!(worker.networks.is_empty(), "network_mode replaces networks");
        let lone = &file.services[2];
        assert!(lone.references.is_empty());
        assert_eq!(lone.image, None, "interpolated images cannot be matched");
        let names: Vec<(&str, &str, bool)> =
            file.networks.iter().map(|n| (n.key.as_str(), n.name.as_str(), n.external)).collect();
        assert_eq!(
            names,
            vec![
                ("front", "front", false),
                ("shared", "shared", true),
                ("legacy", "corp_legacy", true),
                ("renamed", "corp_renamed", true),
                ("owned", "corp_owned", false),
            ]
        );
    }

    #[test]
    fn service_without_networks_joins_default() {
        let file = parse("services:\n  a:\n    image: x\n").unwrap();
        assert_eq!(file.services[0].networks, vec!["default"]);
    }

    #[test]
    fn nested_merge_keys_resolve_and_local_keys_win() {
        let file = parse(
            r#"
x-restart: &restart
  restart: always
  depends_on: [base]
x-defaults: &defaults
  <<: *restart
  image: shared:1
  depends_on:
    db:
      <<: &healthy { condition: service_healthy }
services:
  a:
    <<: *defaults
  b:
    <<: [*defaults]
    image: own:2
    depends_on: [other]
"#,
        )
        .unwrap();
        assert_eq!(file.services[0].references[0].service, "db");
        assert_eq!(file.services[0].image.as_deref(), Some("shared:1"));
        assert_eq!(file.services[1].references[0].service, "other");
        assert_eq!(file.services[1].image.as_deref(), Some("own:2"));
    }

    #[test]
    fn images_normalize_the_latest_tag_but_keep_registry_ports_and_digests() {
        assert_eq!(normalize_image("app"), "app:latest");
        assert_eq!(normalize_image("registry:5000/team/app"), "registry:5000/team/app:latest");
        assert_eq!(normalize_image("registry:5000/team/app:1.2"), "registry:5000/team/app:1.2");
        assert_eq!(normalize_image("app@sha256:abc"), "app@sha256:abc");
    }

    #[test]
    fn malformed_files_name_the_offending_key() {
        assert!(parse("services: [a, b]").unwrap_err().contains("services: expected a mapping"));
        assert!(parse("services:\n  a:\n    depends_on: 3\n").unwrap_err().contains("services.a.depends_on"));
        assert!(parse("services:\n  a: {links: [{x: 1}]}\n").unwrap_err().contains("services.a.links"));
        assert!(parse("services:\n  a: [\n").unwrap_err().starts_with("invalid YAML"));
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("networks:\n  n:\n    external: maybe-ish\n").unwrap_err().contains("networks.n.external"));
    }
}
