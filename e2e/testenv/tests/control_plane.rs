//! End-to-end checks of the harness against the real binaries: the API server answers with the
//! expected version, kube-controller-manager's garbage collector and namespace controller work,
//! CRDs get established, and the kubeconfig file works for kubectl.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionSpec,
    CustomResourceDefinitionVersion, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use switchyard_testenv::{ControlPlane, K8S_VERSION, wait_for};

const TIMEOUT: Duration = Duration::from_secs(60);

fn configmap(name: &str, owner: Option<&ConfigMap>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            owner_references: owner.map(|o| {
                vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    name: o.metadata.name.clone().unwrap(),
                    uid: o.metadata.uid.clone().unwrap(),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
        ..Default::default()
    }
}

#[tokio::test]
async fn version_is_pinned() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let info = cp.client().apiserver_version().await?;
    assert_eq!(info.git_version, format!("v{K8S_VERSION}"));
    assert_eq!(info.major, "1");
    assert_eq!(info.minor, "34");
    assert!(cp.server_url().starts_with("https://127.0.0.1:"));
    eprintln!("shared control plane started in {:.2?}", cp.startup_time());
    Ok(())
}

#[tokio::test]
async fn garbage_collector_deletes_dependents() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.create_unique_namespace("gc").await?;
    let cms: Api<ConfigMap> = Api::namespaced(cp.client(), &ns);

    let owner = cms.create(&PostParams::default(), &configmap("owner", None)).await?;
    cms.create(&PostParams::default(), &configmap("dependent", Some(&owner))).await?;
    assert!(cms.get_opt("dependent").await?.is_some());

    // Default propagation for core objects is background: the owner goes at once and the
    // garbage collector (in kube-controller-manager) removes the dependent afterwards.
    cms.delete("owner", &DeleteParams::default()).await?;
    wait_for(TIMEOUT, "the GC to delete the dependent ConfigMap", || async {
        cms.get_opt("dependent").await.map(|cm| cm.is_none())
    })
    .await?;
    assert!(cms.get_opt("owner").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn namespace_deletion_completes() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let ns = cp.create_unique_namespace("ns-delete").await?;
    let cms: Api<ConfigMap> = Api::namespaced(cp.client(), &ns);
    cms.create(&PostParams::default(), &configmap("content", None)).await?;

    let namespaces: Api<Namespace> = Api::all(cp.client());
    namespaces.delete(&ns, &DeleteParams::default()).await?;
    // Without the namespace controller it would stay Terminating forever.
    wait_for(TIMEOUT, format!("namespace {ns} to disappear"), || async {
        namespaces.get_opt(&ns).await.map(|n| n.is_none())
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn crds_are_established() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    let crd = CustomResourceDefinition {
        metadata: ObjectMeta { name: Some("widgets.testenv.switchyard.dev".into()), ..Default::default() },
        spec: CustomResourceDefinitionSpec {
            group: "testenv.switchyard.dev".into(),
            names: CustomResourceDefinitionNames {
                kind: "Widget".into(),
                plural: "widgets".into(),
                ..Default::default()
            },
            scope: "Namespaced".into(),
            versions: vec![CustomResourceDefinitionVersion {
                name: "v1".into(),
                served: true,
                storage: true,
                schema: Some(CustomResourceValidation {
                    open_api_v3_schema: Some(JSONSchemaProps {
                        type_: Some("object".into()),
                        x_kubernetes_preserve_unknown_fields: Some(true),
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }],
            ..Default::default()
        },
        status: None,
    };
    // Applying twice must be fine (idempotent across tests sharing the plane).
    cp.apply_crds(std::slice::from_ref(&crd)).await?;
    cp.apply_crds(&[crd]).await?;

    let ns = cp.create_unique_namespace("crd").await?;
    let gvk = kube::api::GroupVersionKind::gvk("testenv.switchyard.dev", "v1", "Widget");
    let ar = kube::api::ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let widgets: Api<kube::api::DynamicObject> = Api::namespaced_with(cp.client(), &ns, &ar);
    let mut w = kube::api::DynamicObject::new("w1", &ar);
    w.data = serde_json::json!({"spec": {"size": 3}});
    widgets.create(&PostParams::default(), &w).await?;
    let got = widgets.get("w1").await?;
    assert_eq!(got.data["spec"]["size"], 3);
    Ok(())
}

#[tokio::test]
async fn kubeconfig_works_for_kubectl() -> anyhow::Result<()> {
    let cp = ControlPlane::shared().await?;
    if !cp.assets().kubectl.is_file() {
        eprintln!("kubectl not built; skipping");
        return Ok(());
    }
    let out = cp.kubectl().args(["get", "namespace", "kube-system", "-o", "name"]).output().await?;
    assert!(out.status.success(), "kubectl failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "namespace/kube-system");
    Ok(())
}
