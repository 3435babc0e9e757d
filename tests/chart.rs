//! The Helm chart, rendered by a real `helm` and applied (server-side dry run) to a
//! real apiserver.

use std::path::Path;

use switchyard_testenv::ControlPlane;

fn chart_dir() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/switchyard").display().to_string()
}

async fn render(cp: &ControlPlane, ns: &str, extra: &[&str]) -> std::process::Output {
    cp.helm()
        .args(["template", "switchyard", &chart_dir(), "--namespace", ns, "--include-crds"])
        .args(["--kube-version", switchyard_testenv::K8S_VERSION])
        .args(extra)
        .output()
        .await
        .expect("helm runs")
}

#[tokio::test]
async fn rendered_chart_is_accepted_by_the_apiserver() {
    let cp = ControlPlane::shared().await.expect("control plane");
    let ns = cp.create_unique_namespace("chart").await.expect("namespace");
    let rendered = render(cp, &ns, &[]).await;
    assert!(rendered.status.success(), "helm template: {}", String::from_utf8_lossy(&rendered.stderr));
    let manifests = String::from_utf8(rendered.stdout).expect("utf-8");
    for kind in [
        "CustomResourceDefinition",
        "Deployment",
        "ServiceAccount",
        "ClusterRole",
        "Role",
        "RoleBinding",
        "Service",
        "ConfigMap",
    ] {
        assert!(manifests.contains(&format!("kind: {kind}\n")), "chart renders no {kind}");
    }

    let out = cp.apply_manifests(manifests.as_bytes(), &["--dry-run=server"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "apply failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("deployment.apps/switchyard serverside-applied (server dry run)"), "{stdout}");
}

#[tokio::test]
async fn values_schema_rejects_bad_values() {
    let cp = ControlPlane::shared().await.expect("control plane");
    for bad in [["--set", "replicaCount=0"], ["--set", "image.pullPolicy=Sometimes"], ["--set", "surprise=1"]] {
        let out = render(cp, "default", &bad).await;
        assert!(!out.status.success(), "{bad:?} was accepted");
        assert!(String::from_utf8_lossy(&out.stderr).contains("values don't meet the specifications of the schema"));
    }
}
