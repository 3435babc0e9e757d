//! The CRDs against a real kube-apiserver: they install, accept every example,
//! reject invalid input naming the field, and print the documented columns.

use std::path::Path;

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use switchyard::api::{self, Branch, BridgeGrant, PreviewEnvironment, RepoDependencyGraph, SharedResourceClaim};
use switchyard_testenv::ControlPlane;

async fn plane_with_crds() -> &'static ControlPlane {
    let cp = ControlPlane::shared().await.expect("control plane");
    cp.apply_crds(&api::all_crds()).await.expect("CRDs become Established");
    cp
}

fn resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(api::GROUP, api::VERSION, kind))
}

/// A valid object of each kind, the base the invalid cases mutate.
fn valid(kind: &str) -> Value {
    let spec = match kind {
        "PreviewEnvironment" => json!({
            "repository": "acme/shop", "pullRequest": 7, "branch": "feature/x", "project": "shop",
            "className": "team-a",
            "database": {"strategy": "clone", "snapshot": "shop_snap"},
            "env": [{"name": "APP_ENV", "value": "preview"}],
            "workers": [{"name": "default"}],
            "ttl": "24h"
        }),
        "SharedResourceClaim" => json!({"type": "Port", "pool": "ports", "value": "8080"}),
        "RepoDependencyGraph" => json!({"repositories": [
            {"name": "acme/shop", "dependsOn": [{"repository": "acme/api"}],
             "discovery": [{"format": "Compose", "path": "docker-compose.yml"}]},
            {"name": "acme/api"}
        ]}),
        "Branch" => {
            json!({"url": "https://eu.example.com", "type": "Master", "parentRef": {"name": "top"},
                           "credentialsSecretRef": {"name": "k", "key": "key"}})
        }
        "BridgeGrant" => {
            json!({"target": "billing@prod", "from": ["shop@*"], "commands": ["invoices.create"]})
        }
        other => panic!("unknown kind {other}"),
    };
    json!({"apiVersion": "switchyard.dev/v1alpha1", "kind": kind, "metadata": {"name": "x"}, "spec": spec})
}

async fn create(cp: &ControlPlane, ns: &str, obj: &Value) -> Result<DynamicObject, kube::Error> {
    let kind = obj["kind"].as_str().expect("kind");
    let api: Api<DynamicObject> = Api::namespaced_with(cp.client(), ns, &resource(kind));
    let obj: DynamicObject = serde_json::from_value(obj.clone()).expect("object");
    api.create(&PostParams::default(), &obj).await
}

#[tokio::test]
async fn all_crds_install_and_become_established() {
    let cp = plane_with_crds().await;
    let api: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(cp.client());
    for crd in api::all_crds() {
        let name = crd.metadata.name.expect("name");
        let live = api.get(&name).await.expect("CRD exists");
        let established = live.status.and_then(|s| s.conditions).unwrap_or_default();
        assert!(established.iter().any(|c| c.type_ == "Established" && c.status == "True"), "{name} not Established");
    }
}

#[tokio::test]
async fn every_example_is_accepted() {
    let cp = plane_with_crds().await;
    let ns = cp.create_unique_namespace("examples").await.expect("namespace");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut kinds = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("examples/") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read example");
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc).expect("example is YAML");
            let kind = value["kind"].as_str().expect("kind").to_string();
            let ar = if kind == "ConfigMap" {
                ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap"))
            } else {
                resource(&kind)
            };
            // A PreviewClass is cluster-scoped: created, checked, removed (other tests share the plane).
            let cluster_scoped = kind == "PreviewClass";
            let api: Api<DynamicObject> = if cluster_scoped {
                Api::all_with(cp.client(), &ar)
            } else {
                Api::namespaced_with(cp.client(), &ns, &ar)
            };
            let obj: DynamicObject = serde_json::from_value(value).expect("object");
            let created = api
                .create(&PostParams::default(), &obj)
                .await
                .unwrap_or_else(|e| panic!("{} rejected: {e}", path.display()));
            if cluster_scoped {
                api.delete(&created.metadata.name.unwrap_or_default(), &Default::default()).await.expect("delete");
            }
            kinds.insert(kind);
        }
    }
    for kind in
        ["PreviewClass", "PreviewEnvironment", "SharedResourceClaim", "RepoDependencyGraph", "Branch", "BridgeGrant"]
    {
        assert!(kinds.contains(kind), "no example of {kind}");
    }
}

/// Stands for the object's own name in a case's value.
const SELF_NAME: &str = "$self";

/// (kind, JSON pointer into the valid object, new value or null to remove, text the
/// rejection must contain: the field path).
fn invalid_cases() -> Vec<(&'static str, &'static str, Value, &'static str)> {
    vec![
        ("PreviewEnvironment", "/spec/repository", json!("not-a-repo"), "spec.repository"),
        ("PreviewEnvironment", "/spec/pullRequest", json!(0), "spec.pullRequest"),
        ("PreviewEnvironment", "/spec/headSha", json!("XYZ"), "spec.headSha"),
        ("PreviewEnvironment", "/spec/project", json!("Shop!"), "spec.project"),
        ("PreviewEnvironment", "/spec/className", json!("Team_A"), "spec.className"),
        ("PreviewEnvironment", "/spec/domainTemplate", json!("static.example.com"), "spec.domainTemplate"),
        (
            "PreviewEnvironment",
            "/spec/site",
            json!({"isolated": true, "isolatedUser": "root"}),
            "spec.site.isolatedUser",
        ),
        (
            "PreviewEnvironment",
            "/spec/site",
            json!({"isolated": false, "isolatedUser": "pr7"}),
            "spec.site.isolatedUser",
        ),
        ("PreviewEnvironment", "/spec/database/snapshot", Value::Null, "spec.database.snapshot"),
        (
            "PreviewEnvironment",
            "/spec/env",
            json!([{"name": "A", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]),
            "spec.env[0]",
        ),
        ("PreviewEnvironment", "/spec/env", json!([{"name": "DB_PASSWORD", "value": "x"}]), "spec.env"),
        (
            "PreviewEnvironment",
            "/spec/env",
            json!([{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s"}}}]),
            "spec.env[0].valueFrom.secretKeyRef.key",
        ),
        ("PreviewEnvironment", "/spec/workers", json!([{"name": "w", "processes": 100}]), "spec.workers[0].processes"),
        ("PreviewEnvironment", "/spec/ttl", json!("3 days"), "spec.ttl"),
        ("PreviewEnvironment", "/spec/ttl", json!("10s"), "spec.ttl"),
        ("PreviewEnvironment", "/spec/graphRef", json!({"name": "platform"}), "spec.stack"),
        ("SharedResourceClaim", "/spec/value", json!("70000"), "spec.value"),
        ("SharedResourceClaim", "/spec/type", json!("Printer"), "spec.type"),
        ("SharedResourceClaim", "/spec/capacity", json!(3), "spec.capacity"),
        ("SharedResourceClaim", "/spec/conflictPolicy", json!("SubdomainSeparate"), "spec.conflictPolicy"),
        (
            "RepoDependencyGraph",
            "/spec/repositories/0/discovery/0/format",
            json!("Helmfile"),
            "spec.repositories[0].discovery[0].format",
        ),
        (
            "RepoDependencyGraph",
            "/spec/repositories/0/discovery/0/configMapRef",
            json!({"name": "c", "key": "k"}),
            "spec.repositories[0].discovery[0]",
        ),
        ("RepoDependencyGraph", "/spec/repositories", json!([]), "spec.repositories"),
        ("Branch", "/spec/type", json!("Top"), "spec.parentRef"),
        ("Branch", "/spec/url", json!("ftp://x"), "spec.url"),
        (
            "Branch",
            "/spec/tls",
            json!({"insecureSkipVerify": true, "caSecretRef": {"name": "ca", "key": "ca.crt"}}),
            "spec.tls.insecureSkipVerify",
        ),
        ("Branch", "/spec/healthCheck", json!({"interval": "5s", "timeout": "10s"}), "spec.healthCheck.timeout"),
        ("Branch", "/spec/parentRef/name", json!(SELF_NAME), "spec.parentRef.name"),
        ("BridgeGrant", "/spec/from", json!(["shop@pr*"]), "spec.from"),
        ("BridgeGrant", "/spec/target", json!("billing@*"), "spec.target"),
        ("BridgeGrant", "/spec/commands", json!(["Drop Tables"]), "spec.commands"),
        ("BridgeGrant", "/spec/secret", json!({"rotationInterval": "1h", "overlap": "2h"}), "spec.secret.overlap"),
        (
            "BridgeGrant",
            "/spec/networkPolicy",
            json!({"targetPodLabels": {"a": "b"}, "callerPodLabels": {"c": "d"}, "port": 0}),
            "spec.networkPolicy.port",
        ),
    ]
}

fn set_pointer(obj: &mut Value, pointer: &str, value: Value) {
    let (parent, last) = pointer.rsplit_once('/').expect("pointer");
    let parent = obj.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent}"));
    match (parent, value) {
        (Value::Object(map), Value::Null) => {
            map.remove(last);
        }
        (Value::Object(map), v) => {
            map.insert(last.to_string(), v);
        }
        (Value::Array(items), v) => items[last.parse::<usize>().expect("index")] = v,
        _ => panic!("cannot set {pointer}"),
    }
}

#[tokio::test]
async fn invalid_manifests_are_rejected_naming_the_field() {
    let cp = plane_with_crds().await;
    let ns = cp.create_unique_namespace("invalid").await.expect("namespace");
    let cases = invalid_cases();
    assert!(cases.len() >= 20);
    for kind in ["PreviewEnvironment", "SharedResourceClaim", "RepoDependencyGraph", "Branch", "BridgeGrant"] {
        let mut base = valid(kind);
        base["metadata"]["name"] = json!(format!("valid-{}", kind.to_lowercase()));
        create(cp, &ns, &base).await.unwrap_or_else(|e| panic!("the valid {kind} is rejected: {e}"));
    }
    let mut failures = Vec::new();
    for (i, (kind, pointer, value, field)) in cases.into_iter().enumerate() {
        let mut obj = valid(kind);
        let name = format!("bad-{i}");
        obj["metadata"]["name"] = json!(name);
        let value = if value == json!(SELF_NAME) { json!(name) } else { value };
        set_pointer(&mut obj, pointer, value);
        match create(cp, &ns, &obj).await {
            Ok(_) => failures.push(format!("case {i} ({kind} {pointer}) was accepted")),
            Err(kube::Error::Api(e)) if e.code == 422 && e.message.contains(field) => {}
            Err(e) => failures.push(format!("case {i} ({kind} {pointer}): expected a 422 naming {field}, got {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn immutable_fields_cannot_change() {
    let cp = plane_with_crds().await;
    let ns = cp.create_unique_namespace("immutable").await.expect("namespace");
    let api: Api<PreviewEnvironment> = Api::namespaced(cp.client(), &ns);
    let obj: PreviewEnvironment = serde_json::from_value(valid("PreviewEnvironment")).expect("typed");
    api.create(&PostParams::default(), &obj).await.expect("create");
    for (field, value) in [("repository", json!("acme/other")), ("pullRequest", json!(8)), ("project", json!("other"))]
    {
        let patch = json!({"spec": {field: value}});
        let err = api
            .patch("x", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch))
            .await
            .expect_err("immutable field changed");
        assert!(err.to_string().contains(&format!("{field} is immutable")), "{err}");
    }
    // The class cannot be changed, removed, or added to an environment that had none.
    for value in [json!("team-b"), Value::Null] {
        let patch = json!({"spec": {"className": value}});
        let err = api
            .patch("x", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch))
            .await
            .expect_err("className changed");
        assert!(err.to_string().contains("className is immutable"), "{err}");
    }
    let mut classless = valid("PreviewEnvironment");
    classless["metadata"]["name"] = json!("classless");
    classless["spec"].as_object_mut().unwrap().remove("className");
    let classless: PreviewEnvironment = serde_json::from_value(classless).expect("typed");
    api.create(&PostParams::default(), &classless).await.expect("create without a class");
    let patch = json!({"spec": {"className": "team-b"}});
    let err = api
        .patch("classless", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch))
        .await
        .expect_err("className added");
    assert!(err.to_string().contains("className is immutable"), "{err}");
}

#[tokio::test]
async fn printer_columns_show_ready_reason_key_value_and_age() {
    let cp = plane_with_crds().await;
    let ns = cp.create_unique_namespace("columns").await.expect("namespace");
    let expected: [(&str, &str, &[&str]); 5] = [
        ("PreviewEnvironment", PreviewEnvironment::plural(), &["Ready", "Reason", "PR", "URL", "Age"]),
        (
            "SharedResourceClaim",
            SharedResourceClaim::plural(),
            &["Ready", "Reason", "Type", "Pool", "Phase", "Value", "Age"],
        ),
        (
            "RepoDependencyGraph",
            RepoDependencyGraph::plural(),
            &["Ready", "Reason", "Repositories", "Phases", "Cycles", "Age"],
        ),
        ("Branch", Branch::plural(), &["Ready", "Reason", "Type", "URL", "Reachable", "Latency", "Age"]),
        ("BridgeGrant", BridgeGrant::plural(), &["Ready", "Reason", "Target", "Secret-Version", "Age"]),
    ];
    for (kind, plural, columns) in expected {
        create(cp, &ns, &valid(kind)).await.expect("create");
        let request = http::Request::get(format!("/apis/switchyard.dev/v1alpha1/namespaces/{ns}/{plural}"))
            .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
            .body(Vec::new())
            .expect("request");
        let table: Value = cp.client().request(request).await.expect("table");
        let names: Vec<&str> = table["columnDefinitions"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| c["name"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(names, ["Name"].iter().chain(columns).copied().collect::<Vec<_>>(), "{kind}");
        assert_eq!(table["rows"].as_array().map(Vec::len), Some(1), "{kind} row");
    }
}

/// `kind.plural()` without importing the trait at every call site.
trait Plural {
    fn plural() -> &'static str;
}
impl<K: kube::Resource<DynamicType = ()>> Plural for K {
    fn plural() -> &'static str {
        Box::leak(K::plural(&()).into_owned().into_boxed_str())
    }
}

#[test]
fn committed_crds_match_the_code() {
    let generated = api::crds_yaml().expect("render");
    for path in ["crds/switchyard.yaml", "charts/switchyard/crds/switchyard.yaml"] {
        let committed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).expect(path);
        assert!(
            committed == generated,
            "{path} is stale: run `cargo run -- crd > crds/switchyard.yaml && cp crds/switchyard.yaml charts/switchyard/crds/`"
        );
    }
}
