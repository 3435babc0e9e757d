//! RepoDependencyGraph against a real apiserver and a real `switchyard run`: status
//! follows edits of the graph and of the ConfigMaps it discovers from.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::Operator;
use switchyard::api::conditions;
use switchyard::api::repo_dependency_graph::{RepoDependencyGraph, RepoDependencyGraphStatus};
use switchyard::api::{self};
use switchyard::controller::repo_dependency_graph::NEEDS_GITHUB;
use switchyard_testenv::{ControlPlane, wait_for};

const TIMEOUT: Duration = Duration::from_secs(60);
const GITHUB_TOKEN: &str = "rdg-github-token";

/// A namespace and an operator scoped to it.
struct Setup {
    cp: &'static ControlPlane,
    ns: String,
    operator: Operator,
}

impl Setup {
    async fn new(prefix: &str) -> Self {
        Self::with_github(prefix, None).await
    }

    /// With `github_api`, the operator reads repository sources from that GitHub API
    /// (token in the Secret `github`).
    async fn with_github(prefix: &str, github_api: Option<String>) -> Self {
        let cp = ControlPlane::shared().await.expect("control plane");
        cp.apply_crds(&api::all_crds()).await.expect("CRDs");
        let ns = cp.create_unique_namespace(prefix).await.expect("namespace");
        let scope = ns.clone();
        if github_api.is_some() {
            let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
                "metadata": {"name": "github"}, "stringData": {"token": GITHUB_TOKEN, "webhook": "w"}
            }))
            .expect("secret");
            Api::namespaced(cp.client(), &ns).create(&PostParams::default(), &secret).await.expect("secret");
        }
        let operator = Operator::start(cp, move |port| {
            let github = github_api.as_ref().map_or(String::new(), |url| {
                format!(
                    "github: {{apiUrl: \"{url}\", tokenSecretRef: {{namespace: {scope}, name: github, key: token}}, \
                     webhookSecretRef: {{namespace: {scope}, name: github, key: webhook}}}}\n"
                )
            });
            format!(
                "server: {{listen: \"127.0.0.1:{port}\"}}\nleaderElection: {{enabled: false}}\n\
                 controller: {{namespace: {scope}, systemNamespace: {scope}}}\n{github}"
            )
        });
        Self { cp, ns, operator }
    }

    fn graphs(&self) -> Api<RepoDependencyGraph> {
        Api::namespaced(self.cp.client(), &self.ns)
    }

    fn config_maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.cp.client(), &self.ns)
    }

    async fn create_graph(&self, name: &str, repositories: serde_json::Value) {
        let graph: RepoDependencyGraph = serde_json::from_value(json!({
            "apiVersion": "switchyard.dev/v1alpha1", "kind": "RepoDependencyGraph",
            "metadata": {"name": name}, "spec": {"repositories": repositories}
        }))
        .expect("graph");
        self.graphs().create(&PostParams::default(), &graph).await.expect("create graph");
    }

    async fn set_repositories(&self, name: &str, repositories: serde_json::Value) {
        let patch = json!({"spec": {"repositories": repositories}});
        self.graphs().patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patch graph");
    }

    async fn put_config_map(&self, name: &str, data: serde_json::Value) {
        let cm: ConfigMap = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data
        }))
        .expect("configmap");
        self.config_maps()
            .patch(name, &PatchParams::apply("test").force(), &Patch::Apply(&cm))
            .await
            .expect("apply configmap");
    }

    /// The status once it describes the current generation and `done` accepts it.
    async fn wait_status(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(&RepoDependencyGraphStatus) -> bool,
    ) -> RepoDependencyGraphStatus {
        let done = &done;
        let result = wait_for(TIMEOUT, format!("graph {name}: {what}"), || async move {
            let graph = self.graphs().get_opt(name).await.ok()??;
            let status = graph.status?;
            (status.observed_generation == graph.metadata.generation && done(&status)).then_some(status)
        })
        .await;
        match result {
            Ok(status) => status,
            Err(e) => {
                let last = self.graphs().get_opt(name).await.ok().flatten().and_then(|g| g.status);
                panic!("{e}\nlast status: {last:#?}\noperator log:\n{}", self.operator.log())
            }
        }
    }
}

fn condition<'a>(status: &'a RepoDependencyGraphStatus, type_: &str) -> Option<(&'a str, &'a str, &'a str)> {
    conditions::get(&status.conditions, type_).map(|c| (c.status.as_str(), c.reason.as_str(), c.message.as_str()))
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn edges(status: &RepoDependencyGraphStatus) -> Vec<(String, String, bool, String)> {
    status.edges.iter().map(|e| (e.from.clone(), e.to.clone(), e.required, e.provenance.clone())).collect()
}

#[tokio::test]
async fn editing_the_graph_spec_updates_order_phases_and_cycles() {
    let s = Setup::new("rdg-edit").await;
    s.create_graph(
        "platform",
        json!([
            {"name": "acme/shop", "dependsOn": [{"repository": "acme/api"}, {"repository": "acme/auth"}]},
            {"name": "acme/api", "dependsOn": [{"repository": "acme/auth"}]},
            {"name": "acme/auth"},
            {"name": "acme/docs"}
        ]),
    )
    .await;
    let status = s.wait_status("platform", "Ready", |st| condition(st, "Ready").is_some_and(|c| c.0 == "True")).await;
    assert_eq!(status.order, strings(&["acme/auth", "acme/docs", "acme/api", "acme/shop"]));
    assert_eq!(
        status.phases,
        vec![strings(&["acme/auth", "acme/docs"]), strings(&["acme/api"]), strings(&["acme/shop"])]
    );
    assert_eq!((status.repository_count, status.phase_count, status.cycle_count), (Some(4), Some(3), Some(0)));
    let shop = status.repositories.iter().find(|r| r.name == "acme/shop").expect("shop");
    assert_eq!(shop.dependencies, strings(&["acme/api", "acme/auth"]));
    assert_eq!(shop.transitive_dependencies, strings(&["acme/api", "acme/auth"]));
    let auth = status.repositories.iter().find(|r| r.name == "acme/auth").expect("auth");
    assert_eq!(auth.dependents, strings(&["acme/api", "acme/shop"]));
    assert!(status.edges.iter().all(|e| e.provenance == "explicit"), "{:?}", status.edges);
    assert!(status.mermaid.as_deref().is_some_and(|m| m.starts_with("flowchart")), "{:?}", status.mermaid);
    assert_eq!(condition(&status, "CycleDetected").map(|c| c.0), Some("False"));
    assert_eq!(condition(&status, "Stalled").map(|c| c.0), Some("False"));
    assert_eq!(condition(&status, "Reconciling").map(|c| c.0), Some("False"));

    // The printer columns show repositories, phases and cycles.
    let out = s.cp.kubectl().args(["get", "rdg", "platform", "-n", &s.ns]).output().await.expect("kubectl get");
    let table = String::from_utf8_lossy(&out.stdout);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    let row: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header[..6], ["NAME", "READY", "REASON", "REPOSITORIES", "PHASES", "CYCLES"], "{table}");
    assert_eq!(row[..6], ["platform", "True", "Analysed", "4", "3", "0"], "{table}");

    // docs now needs the shop: one more phase.
    s.set_repositories(
        "platform",
        json!([
            {"name": "acme/shop", "dependsOn": [{"repository": "acme/api"}, {"repository": "acme/auth"}]},
            {"name": "acme/api", "dependsOn": [{"repository": "acme/auth"}]},
            {"name": "acme/auth"},
            {"name": "acme/docs", "dependsOn": [{"repository": "acme/shop"}]}
        ]),
    )
    .await;
    let status = s.wait_status("platform", "four phases", |st| st.phase_count == Some(4)).await;
    assert_eq!(status.order, strings(&["acme/auth", "acme/api", "acme/shop", "acme/docs"]));

    // auth now needs the shop: a cycle; docs waits on it, nothing gets past it.
    s.set_repositories(
        "platform",
        json!([
            {"name": "acme/shop", "dependsOn": [{"repository": "acme/api"}, {"repository": "acme/auth"}]},
            {"name": "acme/api", "dependsOn": [{"repository": "acme/auth"}]},
            {"name": "acme/auth", "dependsOn": [{"repository": "acme/shop"}]},
            {"name": "acme/docs", "dependsOn": [{"repository": "acme/shop"}]}
        ]),
    )
    .await;
    let status = s.wait_status("platform", "a cycle", |st| st.cycle_count.unwrap_or(0) > 0).await;
    assert_eq!(
        status.cycles,
        vec![
            strings(&["acme/api", "acme/auth", "acme/shop", "acme/api"]),
            strings(&["acme/auth", "acme/shop", "acme/auth"])
        ]
    );
    assert!(status.order.is_empty(), "{:?}", status.order);
    let docs = status.repositories.iter().find(|r| r.name == "acme/docs").expect("docs");
    assert_eq!(docs.waiting_on, strings(&["acme/api", "acme/auth", "acme/shop"]));
    assert_eq!(condition(&status, "Ready").map(|c| (c.0, c.1)), Some(("False", "CycleDetected")));
}

#[tokio::test]
async fn a_cycle_sets_cycle_detected_listing_every_cycle() {
    let s = Setup::new("rdg-cycle").await;
    s.create_graph(
        "loops",
        json!([
            {"name": "o/a", "dependsOn": [{"repository": "o/b"}]},
            {"name": "o/b", "dependsOn": [{"repository": "o/a"}]},
            {"name": "o/c", "dependsOn": [{"repository": "o/c"}]},
            {"name": "o/d", "dependsOn": [{"repository": "o/a", "required": false}]}
        ]),
    )
    .await;
    let status = s
        .wait_status("loops", "CycleDetected", |st| condition(st, "CycleDetected").is_some_and(|c| c.0 == "True"))
        .await;
    let (_, reason, message) = condition(&status, "CycleDetected").expect("condition");
    assert_eq!(reason, "CycleDetected");
    assert!(message.contains("o/a -> o/b -> o/a") && message.contains("o/c -> o/c"), "{message}");
    assert_eq!(status.cycles, vec![strings(&["o/a", "o/b", "o/a"]), strings(&["o/c", "o/c"])]);
    assert_eq!(status.order, strings(&["o/d"]), "an optional edge into a cycle blocks nothing");
    assert_eq!(condition(&status, "Stalled").map(|c| c.0), Some("False"));

    let events: Api<Event> = Api::namespaced(s.cp.client(), &s.ns);
    let warned = wait_for(TIMEOUT, "a CycleDetected Warning Event", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("CycleDetected") && e.type_.as_deref() == Some("Warning"))
    })
    .await
    .expect("event");
    assert!(warned.note.as_deref().is_some_and(|n| n.contains("o/c -> o/c")), "{:?}", warned.note);

    s.set_repositories(
        "loops",
        json!([
            {"name": "o/a", "dependsOn": [{"repository": "o/b"}]},
            {"name": "o/b", "dependsOn": [{"repository": "o/a", "required": false}]},
            {"name": "o/c"},
            {"name": "o/d", "dependsOn": [{"repository": "o/a", "required": false}]}
        ]),
    )
    .await;
    let status = s
        .wait_status("loops", "cycles gone", |st| condition(st, "CycleDetected").is_some_and(|c| c.0 == "False"))
        .await;
    assert!(status.cycles.is_empty());
    assert_eq!(condition(&status, "Ready").map(|c| c.0), Some("True"));
}

const WEB_COMPOSE: &str =
    "services:\n  web:\n    build: .\n    depends_on:\n      db: {condition: service_healthy}\n    links: [cache]\n";
const DB_COMPOSE: &str = "services:\n  db: {image: mariadb}\n";
const CACHE_COMPOSE: &str = "services:\n  cache: [\n";

fn compose_source(key: &str) -> serde_json::Value {
    json!({"format": "Compose", "configMapRef": {"name": "compose", "key": key}})
}

fn discovering_repositories() -> serde_json::Value {
    json!([
        {"name": "o/web", "discovery": [compose_source("web.yml")]},
        {"name": "o/db", "discovery": [compose_source("db.yml")]},
        {"name": "o/cache", "discovery": [compose_source("cache.yml"), {"format": "Manifests", "path": "deploy/k8s.yaml"}]}
    ])
}

#[tokio::test]
async fn a_config_map_compose_source_contributes_edges_with_provenance_and_a_malformed_file_is_reported() {
    let s = Setup::new("rdg-cm").await;
    s.put_config_map("compose", json!({"web.yml": WEB_COMPOSE, "db.yml": DB_COMPOSE, "cache.yml": CACHE_COMPOSE}))
        .await;
    s.create_graph("discovered", discovering_repositories()).await;
    let status = s.wait_status("discovered", "the compose edge", |st| !st.edges.is_empty()).await;
    assert_eq!(
        edges(&status),
        vec![("o/web".into(), "o/db".into(), true, "compose:configmap/compose/web.yml:web".into())]
    );
    assert_eq!(status.order, strings(&["o/cache", "o/db", "o/web"]));
    let failed: Vec<(&str, &str)> =
        status.discovery_errors.iter().map(|e| (e.repository.as_str(), e.file.as_str())).collect();
    assert_eq!(
        failed,
        vec![
            ("o/cache", "configmap/compose/cache.yml"),
            ("o/cache", "deploy/k8s.yaml"),
            ("o/web", "configmap/compose/web.yml")
        ]
    );
    assert!(status.discovery_errors[0].message.contains("invalid YAML"), "{:?}", status.discovery_errors);
    assert_eq!(status.discovery_errors[1].message, NEEDS_GITHUB);
    // `links: [cache]` names a service of a file that does not parse: reported, not guessed.
    assert_eq!(status.discovery_errors[2].message, "web: links cache is defined by no repository");
    let (ready, reason, message) = condition(&status, "Ready").expect("Ready");
    assert_eq!((ready, reason), ("True", "Analysed"), "a bad file never fails the graph: {message}");
    assert!(message.contains("discovery source(s) failed"), "{message}");
}

#[tokio::test]
async fn editing_a_config_map_updates_the_graph_status() {
    let s = Setup::new("rdg-cm-edit").await;
    s.put_config_map("compose", json!({"web.yml": WEB_COMPOSE, "db.yml": DB_COMPOSE, "cache.yml": CACHE_COMPOSE}))
        .await;
    s.create_graph("discovered", discovering_repositories()).await;
    s.wait_status("discovered", "the compose edge", |st| !st.edges.is_empty()).await;

    // Fixing the cache file resolves the link: a second edge, one fewer error.
    let fixed_cache = "services:\n  cache: {image: redis}\n";
    s.put_config_map("compose", json!({"web.yml": WEB_COMPOSE, "db.yml": DB_COMPOSE, "cache.yml": fixed_cache})).await;
    let status = s.wait_status("discovered", "two compose edges", |st| st.edges.len() == 2).await;
    assert_eq!(
        edges(&status),
        vec![
            ("o/web".into(), "o/cache".into(), true, "compose:configmap/compose/web.yml:web".into()),
            ("o/web".into(), "o/db".into(), true, "compose:configmap/compose/web.yml:web".into()),
        ]
    );
    assert_eq!(status.phases, vec![strings(&["o/cache", "o/db"]), strings(&["o/web"])]);
    let failed: Vec<&str> = status.discovery_errors.iter().map(|e| e.file.as_str()).collect();
    assert_eq!(failed, vec!["deploy/k8s.yaml"]);

    // db now needs web through its compose file: a discovered cycle.
    let db_needs_web = "services:\n  db:\n    image: mariadb\n    volumes_from: [web]\n";
    s.put_config_map("compose", json!({"web.yml": WEB_COMPOSE, "db.yml": db_needs_web, "cache.yml": fixed_cache}))
        .await;
    let status = s.wait_status("discovered", "a discovered cycle", |st| st.cycle_count == Some(1)).await;
    assert_eq!(status.cycles, vec![strings(&["o/db", "o/web", "o/db"])]);
    assert!(status.edges.iter().any(|e| e.from == "o/db" && e.provenance == "compose:configmap/compose/db.yml:db"));

    // Deleting the ConfigMap reports each source and keeps the declared analysis.
    s.config_maps().delete("compose", &Default::default()).await.expect("delete configmap");
    let status = s.wait_status("discovered", "sources missing", |st| st.edges.is_empty()).await;
    assert_eq!(status.discovery_errors.len(), 4, "{:?}", status.discovery_errors);
    assert!(status.discovery_errors.iter().any(|e| e.message == "ConfigMap compose does not exist"));
    assert_eq!(status.order, strings(&["o/cache", "o/db", "o/web"]));
}

#[tokio::test]
async fn repository_path_sources_are_read_through_the_github_contents_api() {
    use switchyard_sim::github::{GithubSim, GithubSimConfig, Token};
    let sim = GithubSim::start(GithubSimConfig {
        tokens: vec![Token::new(GITHUB_TOKEN, "switchyard[bot]")],
        ..Default::default()
    })
    .await
    .expect("github simulator");
    for repo in ["o/web", "o/db", "o/cache"] {
        sim.put_repository(repo, Default::default()).expect("repository");
    }
    sim.put_file("o/web", Some("main"), "deploy/docker-compose.yml", WEB_COMPOSE.as_bytes()).expect("seed web");
    sim.put_file("o/db", None, "docker-compose.yml", DB_COMPOSE.as_bytes()).expect("seed db");
    sim.put_file("o/cache", None, "docker-compose.yml", b"services: [not, a, map").expect("seed cache");
    let s = Setup::with_github("rdg-gh", Some(sim.base_url())).await;
    s.create_graph(
        "fetched",
        json!([
            {"name": "o/web", "discovery": [{"format": "Compose", "path": "deploy/docker-compose.yml", "ref": "main"}]},
            {"name": "o/db", "discovery": [{"format": "Compose", "path": "docker-compose.yml"}]},
            {"name": "o/cache", "discovery": [{"format": "Compose", "path": "docker-compose.yml"},
                                              {"format": "Compose", "path": "missing.yml"}]}
        ]),
    )
    .await;
    let status = s.wait_status("fetched", "edges from the repositories' files", |st| !st.edges.is_empty()).await;
    let found = edges(&status);
    assert!(
        found.iter().any(|(from, to, _, provenance)| from == "o/web"
            && to == "o/db"
            && provenance.contains("deploy/docker-compose.yml")),
        "{found:?}"
    );
    let failed: Vec<(&str, &str)> =
        status.discovery_errors.iter().map(|e| (e.repository.as_str(), e.file.as_str())).collect();
    assert!(
        failed.contains(&("o/cache", "docker-compose.yml")) && failed.contains(&("o/cache", "missing.yml")),
        "{failed:?}"
    );
    assert!(status.discovery_errors.iter().all(|e| e.message != NEEDS_GITHUB));
    assert!(!s.operator.log().contains(GITHUB_TOKEN), "the token stays out of the log");
    let (ready, _, _) = condition(&status, "Ready").expect("Ready");
    assert_eq!(ready, "True", "bad files never fail the graph");
}
