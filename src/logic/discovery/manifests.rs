//! Reads Kubernetes manifests (multi-document YAML, `kind: List` included) into what
//! dependency discovery needs: the Services, ConfigMaps and StatefulSets a repository
//! defines, and the strings the containers of every pod-template workload carry (env
//! values, args, command of containers and initContainers; ConfigMaps read through
//! `env`, `envFrom` or volumes) that may name a Service.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml::Value;

use super::compose::scalar;

/// A `kind: Service` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceObject {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`; `None` means "wherever the manifests are applied".
    pub namespace: Option<String>,
}

/// A `kind: ConfigMap` object's string data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMapObject {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// `data`.
    pub data: BTreeMap<String, String>,
}

/// A ConfigMap a workload reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMapUse {
    /// ConfigMap name.
    pub name: String,
    /// How its data reaches the process.
    pub how: ConfigMapRead,
    /// The container, for provenance.
    pub container: String,
}

/// How a workload reads a ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigMapRead {
    /// `valueFrom.configMapKeyRef`: key `key` becomes variable `variable`.
    Key { key: String, variable: String },
    /// `envFrom.configMapRef`: every key becomes a variable of that name (after `prefix`).
    Env { prefix: String },
    /// A `configMap` volume: each key is a file, read as text (URLs and host:port only).
    Volume,
}

/// A string a workload's process reads, with the field it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carried {
    /// An env variable with a literal value: field, name, value.
    Variable { field: String, name: String, value: String },
    /// `command` or `args` words: field, words.
    Command { field: String, words: Vec<String> },
}

/// A Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job,
/// CronJob or Pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// `kind`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// Env values, args and command words of every (init) container.
    pub carried: Vec<Carried>,
    /// ConfigMaps whose data reaches the process.
    pub config_maps: Vec<ConfigMapUse>,
}

/// A StatefulSet's governing Service: its pods are `<name>-<ordinal>.<service>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatefulSetObject {
    /// `metadata.name`.
    pub name: String,
    /// `spec.serviceName`.
    pub service: String,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
}

/// What a manifests file tells about dependencies.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManifestFile {
    /// Services defined.
    pub services: Vec<ServiceObject>,
    /// ConfigMaps defined.
    pub config_maps: Vec<ConfigMapObject>,
    /// Workloads defined.
    pub workloads: Vec<Workload>,
    /// StatefulSets with a `serviceName`.
    pub stateful_sets: Vec<StatefulSetObject>,
}

/// Parses every document; the error names the document and field.
pub fn parse(text: &str) -> Result<ManifestFile, String> {
    let mut file = ManifestFile::default();
    for (i, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(document).map_err(|e| format!("document {}: invalid YAML: {e}", i + 1))?;
        object(&value, &mut file).map_err(|e| format!("document {}: {e}", i + 1))?;
    }
    Ok(file)
}

fn object(value: &Value, file: &mut ManifestFile) -> Result<(), String> {
    if value.is_null() {
        return Ok(());
    }
    if !value.is_mapping() {
        return Err("not a Kubernetes object (expected a mapping)".into());
    }
    let kind = value.get("kind").and_then(scalar).ok_or("no kind")?;
    if kind == "List" {
        for item in value.get("items").and_then(Value::as_sequence).ok_or("List without items")? {
            object(item, file)?;
        }
        return Ok(());
    }
    let metadata = value.get("metadata");
    let name = metadata.and_then(|m| m.get("name")).and_then(scalar);
    let namespace = metadata.and_then(|m| m.get("namespace")).and_then(scalar);
    let pod_spec = match kind.as_str() {
        "Pod" => value.get("spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "ReplicationController" | "Job" => {
            value.get("spec").and_then(|s| s.get("template")).and_then(|t| t.get("spec"))
        }
        "CronJob" => value
            .get("spec")
            .and_then(|s| s.get("jobTemplate"))
            .and_then(|j| j.get("spec"))
            .and_then(|s| s.get("template"))
            .and_then(|t| t.get("spec")),
        "Service" => {
            let name = name.ok_or("Service without metadata.name")?;
            file.services.push(ServiceObject { name, namespace });
            return Ok(());
        }
        "ConfigMap" => {
            let name = name.ok_or("ConfigMap without metadata.name")?;
            let mut data = BTreeMap::new();
            if let Some(map) = value.get("data").filter(|d| !d.is_null()) {
                let map = map.as_mapping().ok_or_else(|| format!("ConfigMap/{name}: data is not a mapping"))?;
                for (k, v) in map {
                    if let (Some(k), Some(v)) = (scalar(k), scalar(v)) {
                        data.insert(k, v);
                    }
                }
            }
            file.config_maps.push(ConfigMapObject { name, namespace, data });
            return Ok(());
        }
        _ => return Ok(()),
    };
    let name = name.ok_or_else(|| format!("{kind} without metadata.name"))?;
    let pod_spec = pod_spec.ok_or_else(|| format!("{kind}/{name}: no pod template spec"))?;
    let service = value.get("spec").and_then(|s| s.get("serviceName")).and_then(scalar);
    if let (true, Some(service)) = (kind == "StatefulSet", service) {
        file.stateful_sets.push(StatefulSetObject { name: name.clone(), service, namespace: namespace.clone() });
    }
    let mut workload = Workload { kind: kind.clone(), name, namespace, carried: Vec::new(), config_maps: Vec::new() };
    for field in ["initContainers", "containers"] {
        let Some(containers) = pod_spec.get(field).filter(|c| !c.is_null()) else {
            continue;
        };
        let containers =
            containers.as_sequence().ok_or_else(|| format!("{kind}/{}: {field} is not a list", workload.name))?;
        for (i, container) in containers.iter().enumerate() {
            let label = container.get("name").and_then(scalar).unwrap_or_else(|| format!("{field}[{i}]"));
            container_values(container, &label, &mut workload)
                .map_err(|e| format!("{kind}/{}: {field}: {e}", workload.name))?;
        }
    }
    if let Some(volumes) = pod_spec.get("volumes").and_then(Value::as_sequence) {
        for volume in volumes {
            if let Some(name) = volume.get("configMap").and_then(|c| c.get("name")).and_then(scalar) {
                let container = volume.get("name").and_then(scalar).unwrap_or_default();
                workload.config_maps.push(ConfigMapUse { name, how: ConfigMapRead::Volume, container });
            }
        }
    }
    file.workloads.push(workload);
    Ok(())
}

fn container_values(container: &Value, label: &str, workload: &mut Workload) -> Result<(), String> {
    for field in ["command", "args"] {
        match container.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Sequence(words)) => workload.carried.push(Carried::Command {
                field: format!("{label}.{field}"),
                words: words.iter().filter_map(scalar).collect(),
            }),
            Some(_) => return Err(format!("{field} is not a list")),
        }
    }
    match container.get("env") {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(vars)) => {
            for var in vars {
                let Some(variable) = var.get("name").and_then(scalar) else {
                    continue;
                };
                if let Some(value) = var.get("value").and_then(scalar) {
                    let field = format!("{label}.env.{variable}");
                    workload.carried.push(Carried::Variable { field, name: variable.clone(), value });
                }
                let key_ref = var.get("valueFrom").and_then(|v| v.get("configMapKeyRef"));
                let name = key_ref.and_then(|r| r.get("name")).and_then(scalar);
                let key = key_ref.and_then(|r| r.get("key")).and_then(scalar);
                if let (Some(name), Some(key)) = (name, key) {
                    let how = ConfigMapRead::Key { key, variable };
                    workload.config_maps.push(ConfigMapUse { name, how, container: label.to_string() });
                }
            }
        }
        Some(_) => return Err("env is not a list".into()),
    }
    match container.get("envFrom") {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(sources)) => {
            for source in sources {
                if let Some(name) = source.get("configMapRef").and_then(|r| r.get("name")).and_then(scalar) {
                    let prefix = source.get("prefix").and_then(scalar).unwrap_or_default();
                    let how = ConfigMapRead::Env { prefix };
                    workload.config_maps.push(ConfigMapUse { name, how, container: label.to_string() });
                }
            }
        }
        Some(_) => return Err("envFrom is not a list".into()),
    }
    Ok(())
}

/// What a host may name: a Service (`svc`, `svc.ns`, `svc.ns.svc`,
/// `svc.ns.svc.cluster.local`) or a StatefulSet pod behind its governing Service
/// (`pod.svc`, `pod.svc.ns`, `pod.svc.ns.svc`, `pod.svc.ns.svc.cluster.local`).
/// `a.b` is either; the caller tries both against what is defined.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServiceHost {
    /// The Service name.
    pub name: String,
    /// The namespace, when the host is qualified.
    pub namespace: Option<String>,
    /// The pod, when the host names a StatefulSet pod.
    pub pod: Option<String>,
}

/// The readings of `host` (already lowercased by the address rules).
pub fn service_hosts(host: &str) -> Vec<ServiceHost> {
    let labels: Vec<&str> = host.split('.').collect();
    if labels.iter().any(|l| l.contains('_')) {
        return Vec::new();
    }
    let svc = |name: &str, ns: Option<&str>| ServiceHost {
        name: name.to_string(),
        namespace: ns.map(str::to_string),
        pod: None,
    };
    let pod = |pod: &str, name: &str, ns: Option<&str>| ServiceHost { pod: Some(pod.to_string()), ..svc(name, ns) };
    match labels.as_slice() {
        [name] => vec![svc(name, None)],
        [a, b] => vec![svc(a, Some(b)), pod(a, b, None)],
        [name, ns, "svc"] | [name, ns, "svc", "cluster", "local"] => vec![svc(name, Some(ns))],
        [p, name, ns] | [p, name, ns, "svc"] | [p, name, ns, "svc", "cluster", "local"] => vec![pod(p, name, Some(ns))],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, ns: Option<&str>) -> ServiceHost {
        ServiceHost { name: name.into(), namespace: ns.map(str::to_string), pod: None }
    }

    fn pod(pod: &str, name: &str, ns: Option<&str>) -> ServiceHost {
        ServiceHost { pod: Some(pod.into()), ..svc(name, ns) }
    }

    #[test]
    fn hosts_are_read_in_every_service_and_pod_dns_form() {
        assert_eq!(service_hosts("redis"), vec![svc("redis", None)]);
        assert_eq!(service_hosts("db.data"), vec![svc("db", Some("data")), pod("db", "data", None)]);
        assert_eq!(service_hosts("db.data.svc"), vec![svc("db", Some("data"))]);
        assert_eq!(service_hosts("db.data.svc.cluster.local"), vec![svc("db", Some("data"))]);
        assert_eq!(service_hosts("db-0.mysql.ns"), vec![pod("db-0", "mysql", Some("ns"))]);
        assert_eq!(service_hosts("db-0.mysql.ns.svc.cluster.local"), vec![pod("db-0", "mysql", Some("ns"))]);
        assert!(service_hosts("a.b.c.d.e.f.g").is_empty());
        assert!(service_hosts("my_db").is_empty(), "not a Kubernetes name");
    }

    #[test]
    fn workloads_of_every_kind_expose_env_args_and_config_maps() {
        let file = parse(
            r#"
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      initContainers:
        - name: wait
          command: ["sh", "-c", "until nc -z db 5432; do sleep 1; done"]
      containers:
        - name: web
          args: ["--api=http://api.shop:80"]
          env:
            - {name: CACHE, value: "redis:6379"}
            - name: SEARCH
              valueFrom: {configMapKeyRef: {name: endpoints, key: search}}
          envFrom:
            - configMapRef: {name: settings}
              prefix: APP_
      volumes:
        - {name: conf, configMap: {name: nginx}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: c, args: ["report"]}]
---
apiVersion: v1
kind: ReplicationController
metadata: {name: legacy}
spec:
  template:
    spec:
      containers: [{name: c, env: [{name: DB_HOST, value: mysql}]}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: mysql
  template:
    spec:
      containers: [{name: c}]
---
kind: List
items:
  - {kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, env: [{name: A, value: "x"}]}]}}
  - {kind: ConfigMap, metadata: {name: settings}, data: {URL: "http://search:9200"}}
---
"#,
        )
        .unwrap();
        assert_eq!(file.services, vec![ServiceObject { name: "api".into(), namespace: Some("shop".into()) }]);
        let web = &file.workloads[0];
        assert_eq!((web.kind.as_str(), web.name.as_str()), ("Deployment", "web"));
        let command = |field: &str, words: &[&str]| Carried::Command {
            field: field.into(),
            words: words.iter().map(|w| w.to_string()).collect(),
        };
        assert_eq!(
            web.carried,
            vec![
                command("wait.command", &["sh", "-c", "until nc -z db 5432; do sleep 1; done"]),
                command("web.args", &["--api=http://api.shop:80"]),
                Carried::Variable { field: "web.env.CACHE".into(), name: "CACHE".into(), value: "redis:6379".into() },
            ]
        );
        let use_ = |name: &str, how: ConfigMapRead, container: &str| ConfigMapUse {
            name: name.into(),
            how,
            container: container.into(),
        };
        assert_eq!(
            web.config_maps,
            vec![
                use_("endpoints", ConfigMapRead::Key { key: "search".into(), variable: "SEARCH".into() }, "web"),
                use_("settings", ConfigMapRead::Env { prefix: "APP_".into() }, "web"),
                use_("nginx", ConfigMapRead::Volume, "conf"),
            ]
        );
        assert_eq!(file.workloads[1].carried, vec![command("c.args", &["report"])]);
        assert_eq!((file.workloads[2].kind.as_str(), file.workloads[2].carried.len()), ("ReplicationController", 1));
        assert_eq!(
            file.stateful_sets,
            vec![StatefulSetObject { name: "db".into(), service: "mysql".into(), namespace: None }]
        );
        assert_eq!(file.workloads[4].kind, "Pod");
        assert_eq!(file.config_maps[0].data["URL"], "http://search:9200");
    }

    #[test]
    fn malformed_documents_are_named() {
        assert!(parse("kind: Service\nmetadata: {name: s}\n---\n- a\n").unwrap_err().starts_with("document 2"));
        assert!(parse("kind: Deployment\nmetadata: {name: d}\nspec: {}\n").unwrap_err().contains("no pod template"));
        assert!(
            parse("kind: Pod\nmetadata: {name: p}\nspec: {containers: {a: 1}}\n")
                .unwrap_err()
                .contains("containers is not a list")
        );
        assert!(parse("a: [\n").unwrap_err().contains("invalid YAML"));
    }
}
