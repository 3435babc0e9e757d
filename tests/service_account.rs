//! The operator under the chart's ServiceAccount and RBAC (a token from the
//! TokenRequest API, the chart's rendered rbac.yaml), converging and tearing down an
//! environment without one forbidden response. Its own binary: the chart's
//! ClusterRoleBinding is cluster-wide and names this test's namespace.

mod preview_support;
mod support;

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, PostParams};
use preview_support::{TIMEOUT, World};
use serde_json::json;
use switchyard::api::BridgeGrant;
use switchyard_testenv::wait_for;

async fn apply_chart_rbac(world: &World) {
    let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/switchyard");
    let rendered = world
        .cp
        .helm()
        .args(["template", "switchyard", &chart.display().to_string(), "--namespace", &world.ns])
        .args(["--kube-version", switchyard_testenv::K8S_VERSION])
        .args(["--show-only", "templates/rbac.yaml"])
        .output()
        .await
        .expect("helm runs");
    assert!(rendered.status.success(), "helm: {}", String::from_utf8_lossy(&rendered.stderr));
    let out = world.cp.apply_manifests(&rendered.stdout, &[]).await;
    assert!(out.status.success(), "apply: {}", String::from_utf8_lossy(&out.stderr));
}

/// A kubeconfig holding a TokenRequest token of ServiceAccount `switchyard`.
async fn service_account_kubeconfig(world: &World, dir: &std::path::Path) -> std::path::PathBuf {
    let sas: Api<ServiceAccount> = Api::namespaced(world.cp.client(), &world.ns);
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "switchyard"}})).unwrap();
    sas.create(&PostParams::default(), &sa).await.expect("service account");
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 3600}})).unwrap();
    let issued: TokenRequest =
        sas.create_subresource("token", "switchyard", &PostParams::default(), &request).await.expect("token request");
    let token = issued.status.expect("token").token;
    let ca = dir.join("ca.crt");
    std::fs::write(&ca, world.cp.ca_pem()).unwrap();
    let path = dir.join("kubeconfig");
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"{}\", certificate-authority: \"{}\"}}}}]\n\
         users: [{{name: sa, user: {{token: \"{token}\"}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: sa}}}}]\ncurrent-context: c\n",
        world.cp.server_url(),
        ca.display()
    );
    std::fs::write(&path, config).unwrap();
    path
}

#[tokio::test]
async fn every_controller_runs_under_the_charts_service_account_without_a_forbidden_response() {
    let world = World::new("sa-rbac").await;
    apply_chart_rbac(&world).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = service_account_kubeconfig(&world, dir.path()).await;
    let operator = world.operator_as(&kubeconfig, String::new());
    world.create(world.manifest("pr-51", 51)).await;
    let env = world.wait_ready("pr-51").await;
    assert!(env.status.and_then(|s| s.target).is_some());
    world.delete("pr-51").await;
    world.wait_gone("pr-51").await;

    // A BridgeGrant with a NetworkPolicy: its Secret, ConfigMap and policy are applied,
    // then the policy removed and the grant deleted (its finalizer republishes).
    let grants: Api<BridgeGrant> = Api::namespaced(world.cp.client(), &world.ns);
    let grant: BridgeGrant = serde_json::from_value(json!({
        "apiVersion": "switchyard.dev/v1alpha1", "kind": "BridgeGrant", "metadata": {"name": "crm"},
        "spec": {"target": "billing@prod", "from": ["crm@prod"], "commands": ["orders.sync"],
                 "networkPolicy": {"targetPodLabels": {"app": "billing"}, "callerPodLabels": {"app": "crm"}, "port": 8080}}
    }))
    .unwrap();
    grants.create(&PostParams::default(), &grant).await.expect("grant");
    let ready = |generation: i64| {
        let grants = grants.clone();
        async move {
            let g = grants.get("crm").await.ok()?;
            let status = g.status?;
            (status.observed_generation == Some(generation)
                && switchyard::api::conditions::is_true(&status.conditions, "Ready"))
            .then_some(())
        }
    };
    wait_for(TIMEOUT, "the grant to be Ready", || ready(1)).await.unwrap_or_else(|e| panic!("{e}\n{}", operator.log()));
    let policies: Api<NetworkPolicy> = Api::namespaced(world.cp.client(), &world.ns);
    assert_eq!(policies.list(&Default::default()).await.unwrap().items.len(), 1);
    let patch = json!({"spec": {"networkPolicy": null}});
    grants.patch("crm", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.unwrap();
    wait_for(TIMEOUT, "the policy to go", || async {
        policies.list(&Default::default()).await.ok()?.items.is_empty().then_some(())
    })
    .await
    .unwrap();
    grants.delete("crm", &Default::default()).await.unwrap();
    wait_for(TIMEOUT, "the grant to be gone", || async { grants.get_opt("crm").await.ok()?.is_none().then_some(()) })
        .await
        .unwrap();
    let log = operator.log();
    let forbidden: Vec<&str> =
        log.lines().filter(|l| l.contains("403") || l.to_ascii_lowercase().contains("forbidden")).collect();
    assert!(forbidden.is_empty(), "forbidden responses:\n{}", forbidden.join("\n"));
    assert!(log.contains("leading: starting controllers"), "the operator ran: {log}");
    drop(operator);
}
