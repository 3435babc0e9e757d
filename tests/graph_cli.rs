//! `switchyard graph` end to end: the built binary on manifests in a temporary directory.

use std::path::Path;
use std::process::{Command, Output};

const SENTRY: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata/compose/getsentry__self-hosted__docker-compose.yml");

fn graph(manifest: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("graph")
        .arg(manifest)
        .args(args)
        .output()
        .expect("the switchyard binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const PLATFORM: &str = r#"
apiVersion: switchyard.dev/v1alpha1
kind: RepoDependencyGraph
metadata: {name: platform, namespace: default}
spec:
  repositories:
    - name: acme/web
      dependsOn: [{repository: acme/api}]
      discovery:
        - {format: Compose, path: web/docker-compose.yml}
    - name: acme/api
      discovery:
        - format: Manifests
          configMapRef: {name: manifests, key: api.yaml}
    - name: acme/search
      discovery:
        - format: Manifests
          configMapRef: {name: manifests, key: search.yaml}
    - name: acme/sentry
      discovery:
        - {format: Compose, path: sentry.yml}
    - name: acme/broken
      discovery:
        - {format: Compose, path: nowhere.yml}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: manifests}
data:
  api.yaml: |
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: api}
    spec:
      template:
        spec:
          containers:
            - name: api
              env: [{name: SEARCH, value: "http://search.default:9200"}]
  search.yaml: |
    apiVersion: v1
    kind: Service
    metadata: {name: search, namespace: default}
"#;

/// Writes the platform manifest with its compose files; the getsentry file is the real one.
fn platform(dir: &Path) -> std::path::PathBuf {
    let sentry = std::fs::read_to_string(SENTRY).unwrap_or_else(|e| panic!("test data {SENTRY} is required: {e}"));
    std::fs::create_dir_all(dir.join("web")).unwrap();
    std::fs::write(dir.join("web/docker-compose.yml"), "services:\n  web:\n    depends_on: [redis]\n").unwrap();
    std::fs::write(dir.join("sentry.yml"), sentry).unwrap();
    let manifest = dir.join("graph.yaml");
    std::fs::write(&manifest, PLATFORM).unwrap();
    manifest
}

#[test]
fn text_output_orders_declared_and_discovered_dependencies() {
    let dir = tempfile::tempdir().unwrap();
    let out = graph(&platform(dir.path()), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("5 repositories, 3 phases, 0 cycles\n"), "{text}");
    assert!(text.contains("Order: acme/broken, acme/search, acme/sentry, acme/api, acme/web\n"), "{text}");
    assert!(text.contains("acme/web -> acme/sentry (required, compose:web/docker-compose.yml:web)"), "{text}");
    assert!(
        text.contains(
            "acme/api -> acme/search (optional, inferred:configmap/manifests/api.yaml:Deployment/api:api.env.SEARCH)"
        ),
        "{text}"
    );
    assert!(text.contains("acme/broken nowhere.yml: cannot read"), "{text}");
}

#[test]
fn json_output_is_the_status_shape() {
    let dir = tempfile::tempdir().unwrap();
    let out = graph(&platform(dir.path()), &["--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(status["phaseCount"], 3);
    assert_eq!(status["phases"][2], serde_json::json!(["acme/web"]));
    assert_eq!(status["discoveryErrors"][0]["repository"], "acme/broken");
    let web = status["repositories"].as_array().unwrap().iter().find(|r| r["name"] == "acme/web").unwrap();
    assert_eq!(web["transitiveDependencies"], serde_json::json!(["acme/api", "acme/search", "acme/sentry"]));
}

#[test]
fn dot_and_mermaid_outputs_draw_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = platform(dir.path());
    let dot = stdout(&graph(&manifest, &["--format", "dot"]));
    assert!(dot.contains("\"acme/web\" -> \"acme/api\";"), "{dot}");
    let mermaid = stdout(&graph(&manifest, &["--format", "mermaid"]));
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(mermaid.contains("r_acme_web --> r_acme_sentry"), "{mermaid}");
}

const CYCLE: &str = r#"
apiVersion: switchyard.dev/v1alpha1
kind: RepoDependencyGraph
metadata: {name: loop}
spec:
  repositories:
    - {name: acme/a, dependsOn: [{repository: acme/b}]}
    - {name: acme/b, dependsOn: [{repository: acme/a}]}
    - {name: acme/c}
"#;

#[test]
fn cycles_are_reported_and_fail_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("loop.yaml");
    std::fs::write(&manifest, CYCLE).unwrap();
    let out = graph(&manifest, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("  acme/a -> acme/b -> acme/a\n"), "{}", stdout(&out));
    let out = graph(&manifest, &["--fail-on-cycle"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("1 cycle"), "{}", stderr(&out));
}

#[test]
fn exceeding_max_depth_exits_3_with_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("deep.yaml");
    let deep = CYCLE.replace("acme/a}]}\n", "acme/c}]}\n").replace("spec:\n", "spec:\n  options: {maxDepth: 1}\n");
    std::fs::write(&manifest, deep).unwrap();
    let out = graph(&manifest, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(stderr(&out).contains("acme/a -> acme/b -> acme/c"), "{}", stderr(&out));
}

#[test]
fn unreadable_or_invalid_manifests_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = graph(&dir.path().join("absent.yaml"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error: cannot read"), "{}", stderr(&out));

    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "kind: ConfigMap\nmetadata: {name: x}\n").unwrap();
    let out = graph(&empty, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("holds no RepoDependencyGraph"), "{}", stderr(&out));

    let invalid = dir.path().join("invalid.yaml");
    std::fs::write(&invalid, "kind: RepoDependencyGraph\napiVersion: switchyard.dev/v1alpha1\nmetadata: {name: x}\nspec: {repositories: 3}\n").unwrap();
    let out = graph(&invalid, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a valid RepoDependencyGraph"), "{}", stderr(&out));
}
