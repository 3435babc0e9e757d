//! Reads Kubernetes manifests (multi-document YAML, `kind: List` included) into what
//! dependency discovery needs: the Services and ConfigMaps a repository defines, and
//! the strings its workloads' containers carry (env values, args, command) that may
//! name a Service.

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

/// A ConfigMap a workload reads into its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMapUse {
    /// ConfigMap name.
    pub name: String,
    /// One key (`valueFrom.configMapKeyRef`), or every key (`envFrom.configMapRef`).
    pub key: Option<String>,
}

/// A Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or Pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// `kind`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// Literal env values, args and command words of every (init) container.
    pub values: Vec<String>,
    /// ConfigMaps whose data reaches the environment.
    pub config_maps: Vec<ConfigMapUse>,
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
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
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
    let mut workload = Workload { kind: kind.clone(), name, namespace, values: Vec::new(), config_maps: Vec::new() };
    for field in ["initContainers", "containers"] {
        let Some(containers) = pod_spec.get(field).filter(|c| !c.is_null()) else {
            continue;
        };
        let containers =
            containers.as_sequence().ok_or_else(|| format!("{kind}/{}: {field} is not a list", workload.name))?;
        for container in containers {
            container_values(container, &mut workload)
                .map_err(|e| format!("{kind}/{}: {field}: {e}", workload.name))?;
        }
    }
    file.workloads.push(workload);
    Ok(())
}

fn container_values(container: &Value, workload: &mut Workload) -> Result<(), String> {
    for field in ["command", "args"] {
        match container.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Sequence(words)) => workload.values.extend(words.iter().filter_map(scalar)),
            Some(_) => return Err(format!("{field} is not a list")),
        }
    }
    match container.get("env") {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(vars)) => {
            for var in vars {
                if let Some(value) = var.get("value").and_then(scalar) {
                    workload.values.push(value);
                }
                let key_ref = var.get("valueFrom").and_then(|v| v.get("configMapKeyRef"));
                let name = key_ref.and_then(|r| r.get("name")).and_then(scalar);
                let key = key_ref.and_then(|r| r.get("key")).and_then(scalar);
                if let (Some(name), Some(key)) = (name, key) {
                    workload.config_maps.push(ConfigMapUse { name, key: Some(key) });
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
                    workload.config_maps.push(ConfigMapUse { name, key: None });
                }
            }
        }
        Some(_) => return Err("envFrom is not a list".into()),
    }
    Ok(())
}

/// A host a string may name: `svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServiceHost {
    /// The Service name.
    pub name: String,
    /// The namespace, when the host is qualified.
    pub namespace: Option<String>,
}

/// Every Service-shaped host in `value`, which may be a bare name, `host:port`, a URL
/// (`http://user:pass@svc:8080/path`), a `key=value` pair or a list of them.
pub fn service_hosts(value: &str) -> Vec<ServiceHost> {
    let separators = |c: char| c.is_whitespace() || ",;'\"()[]{}<>=|`".contains(c);
    let mut hosts: Vec<ServiceHost> = value.split(separators).filter_map(host_of).collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

fn host_of(token: &str) -> Option<ServiceHost> {
    let rest = token.split_once("://").map_or(token, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = host_port.split(':').next().unwrap_or_default().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.starts_with(|c: char| c.is_ascii_lowercase())
    };
    let labels: Vec<&str> = host.split('.').collect();
    if !labels.iter().all(|l| label_ok(l)) {
        return None;
    }
    let qualified = |ns: &str| Some(ServiceHost { name: labels[0].to_string(), namespace: Some(ns.to_string()) });
    match labels.as_slice() {
        [name] => Some(ServiceHost { name: (*name).to_string(), namespace: None }),
        [_, ns] | [_, ns, "svc"] | [_, ns, "svc", "cluster", "local"] => qualified(ns),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, ns: Option<&str>) -> ServiceHost {
        ServiceHost { name: name.into(), namespace: ns.map(str::to_string) }
    }

    #[test]
    fn hosts_are_found_in_every_service_address_form() {
        assert_eq!(service_hosts("redis"), vec![host("redis", None)]);
        assert_eq!(service_hosts("db.data"), vec![host("db", Some("data"))]);
        assert_eq!(service_hosts("db.data.svc"), vec![host("db", Some("data"))]);
        assert_eq!(service_hosts("db.data.svc.cluster.local:5432"), vec![host("db", Some("data"))]);
        assert_eq!(service_hosts("http://api:8080/v1?x=1"), vec![host("api", None)]);
        assert_eq!(service_hosts("postgres://u:p@pg.db:5432/app"), vec![host("pg", Some("db"))]);
        assert_eq!(service_hosts("--broker=kafka:9092,zk:2181"), vec![host("kafka", None), host("zk", None)]);
        assert!(service_hosts("www.example.com").is_empty(), "three labels not ending in svc are not a Service");
        assert!(service_hosts("10.0.0.1 /usr/bin/app 42").is_empty());
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
        assert_eq!(
            web.values,
            vec!["sh", "-c", "until nc -z db 5432; do sleep 1; done", "--api=http://api.shop:80", "redis:6379"]
        );
        assert_eq!(
            web.config_maps,
            vec![
                ConfigMapUse { name: "endpoints".into(), key: Some("search".into()) },
                ConfigMapUse { name: "settings".into(), key: None },
            ]
        );
        assert_eq!(file.workloads[1].values, vec!["report"]);
        assert_eq!(file.workloads[2].kind, "Pod");
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
