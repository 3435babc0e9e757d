//! Tenants as Kubernetes sees them: users impersonated against the real apiserver
//! (RBAC authorization), holding only the chart's `switchyard-edit` role in their
//! namespace, with the chart's ValidatingAdmissionPolicy installed. Its own test
//! binary: the policy applies cluster-wide, and other tests create environments
//! that admission would refuse (to see the operator stall them).

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use switchyard::api::{PreviewClass, PreviewEnvironment};
use switchyard_testenv::{ControlPlane, wait_for};

const TIMEOUT: Duration = Duration::from_secs(60);

/// The chart's tenant roles and admission policy, rendered by helm and applied.
async fn install_chart_parts(cp: &ControlPlane) {
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/switchyard");
    let rendered = cp
        .helm()
        .args(["template", "switchyard", &chart.display().to_string(), "--namespace", "switchyard-system"])
        .args(["--kube-version", switchyard_testenv::K8S_VERSION])
        .args(["--show-only", "templates/tenant-roles.yaml", "--show-only", "templates/admission-policy.yaml"])
        .output()
        .await
        .expect("helm runs");
    assert!(rendered.status.success(), "helm template: {}", String::from_utf8_lossy(&rendered.stderr));
    let out = cp.apply_manifests(&rendered.stdout, &[]).await;
    assert!(out.status.success(), "apply: {}", String::from_utf8_lossy(&out.stderr));
}

/// A client acting as `user` (the admin's credentials, impersonating).
async fn as_user(cp: &ControlPlane, user: &str) -> kube::Client {
    let mut config = cp.config().clone();
    config.auth_info.impersonate = Some(user.into());
    config.auth_info.impersonate_groups = Some(vec!["system:authenticated".into()]);
    kube::Client::try_from(config).expect("impersonating client")
}

async fn bind_edit(cp: &ControlPlane, ns: &str, user: &str) {
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": format!("{user}-edit")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "switchyard-edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(cp.client(), ns).create(&PostParams::default(), &binding).await.expect("binding");
}

async fn class(cp: &ControlPlane, name: &str, spec: Value) {
    let class: PreviewClass = serde_json::from_value(json!({
        "apiVersion": "switchyard.dev/v1alpha1", "kind": "PreviewClass", "metadata": {"name": name}, "spec": spec
    }))
    .unwrap();
    Api::<PreviewClass>::all(cp.client())
        .patch(name, &PatchParams::apply("tests").force(), &Patch::Apply(&class))
        .await
        .expect("class");
}

fn class_spec(namespaces: &[&str]) -> Value {
    json!({
        "forge": {"organization": "acme", "serverId": 1,
                  "tokenSecretRef": {"namespace": "platform", "name": "forge", "key": "token"}},
        "namespaces": namespaces,
        "site": {"phpVersions": ["php84"]},
        "database": {"snapshots": ["shop_snapshot"]},
        "limits": {"maxTtl": "24h"}
    })
}

fn env(name: &str, class: &str, extra: Value) -> PreviewEnvironment {
    let mut spec = json!({"repository": "acme/shop", "pullRequest": 1, "branch": "b", "project": "shop",
                          "className": class, "database": {"strategy": "empty"}});
    spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    serde_json::from_value(json!({"apiVersion": "switchyard.dev/v1alpha1", "kind": "PreviewEnvironment",
                                  "metadata": {"name": name}, "spec": spec}))
    .unwrap()
}

fn refusal(result: Result<PreviewEnvironment, kube::Error>) -> (u16, String) {
    match result {
        Ok(e) => panic!("accepted: {:?}", e.spec),
        Err(kube::Error::Api(s)) => (s.code, s.message),
        Err(e) => panic!("not an API refusal: {e}"),
    }
}

#[tokio::test]
async fn a_tenant_with_switchyard_edit_cannot_reach_past_its_class() {
    let cp = ControlPlane::shared().await.expect("control plane");
    cp.apply_crds(&switchyard::api::all_crds()).await.expect("CRDs");
    install_chart_parts(cp).await;
    let team_a = cp.create_unique_namespace("team-a").await.unwrap();
    let team_b = cp.create_unique_namespace("team-b").await.unwrap();
    let (class_a, class_b) = (format!("{team_a}-class"), format!("{team_b}-class"));
    class(cp, &class_a, class_spec(&[&team_a])).await;
    class(cp, &class_b, class_spec(&[&team_b])).await;
    let user = format!("alice-{team_a}");
    bind_edit(cp, &team_a, &user).await;
    let alice = as_user(cp, &user).await;
    let envs: Api<PreviewEnvironment> = Api::namespaced(alice.clone(), &team_a);
    let dry = PostParams { dry_run: true, ..Default::default() };

    // The policy and the role binding take effect within moments: wait for both.
    wait_for(TIMEOUT, "the admission policy to refuse another team's class", || async {
        match envs.create(&dry, &env("probe", &class_b, json!({}))).await {
            Err(kube::Error::Api(s)) if s.message.contains("spec.className") => Some(()),
            _ => None,
        }
    })
    .await
    .unwrap();

    let cases = [
        (env("other-class", &class_b, json!({})), "spec.className"),
        (env("old-php", &class_a, json!({"site": {"phpVersion": "php74"}})), "spec.site.phpVersion"),
        (
            env("prod-data", &class_a, json!({"database": {"snapshot": "production", "strategy": "dump"}})),
            "spec.database.snapshot",
        ),
        (env("shared-user", &class_a, json!({"site": {"isolated": false}})), "spec.site.isolated"),
        (env("own-script", &class_a, json!({"deploy": {"script": "cat /home/*/.env"}})), "spec.deploy.script"),
        (env("forever", &class_a, json!({"ttl": "720h"})), "spec.ttl"),
    ];
    for (obj, field) in &cases {
        let (code, message) = refusal(envs.create(&PostParams::default(), obj).await);
        assert!(message.contains(field) && (code == 403 || code == 422), "{field}: {code} {message}");
    }

    // What the class allows goes through; then the class cannot change.
    envs.create(&PostParams::default(), &env("ok", &class_a, json!({"ttl": "12h"}))).await.expect("an allowed env");
    let patch = json!({"spec": {"className": class_b}});
    let err = envs.patch("ok", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap_err();
    assert!(err.to_string().contains("className is immutable"), "{err}");
    // Nor the PHP version, past the class.
    let patch = json!({"spec": {"site": {"phpVersion": "php74"}}});
    let err = envs.patch("ok", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap_err();
    assert!(err.to_string().contains("spec.site.phpVersion"), "{err}");

    // RBAC: no status writes (where the target is recorded), no classes, no other namespace.
    let status = json!({"status": {"target": {"className": class_b, "baseUrl": "https://x", "organization": "o", "serverId": 9}}});
    let err = envs.patch_status("ok", &PatchParams::default(), &Patch::Merge(&status)).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 403), "status write: {err}");
    let classes: Api<PreviewClass> = Api::all(alice.clone());
    let own: PreviewClass =
        serde_json::from_value(json!({"apiVersion": "switchyard.dev/v1alpha1", "kind": "PreviewClass",
        "metadata": {"name": format!("{team_a}-mine")}, "spec": class_spec(&[&team_a])}))
        .unwrap();
    let err = classes.create(&PostParams::default(), &own).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 403), "class create: {err}");
    let err = classes
        .patch(&class_b, &PatchParams::default(), &Patch::Merge(&json!({"spec": {"namespaces": [team_a]}})))
        .await
        .unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 403), "class edit: {err}");
    let elsewhere: Api<PreviewEnvironment> = Api::namespaced(alice, &team_b);
    let (code, _) = refusal(elsewhere.create(&PostParams::default(), &env("x", &class_b, json!({}))).await);
    assert_eq!(code, 403, "another team's namespace");
}
