use super::*;
use crate::api::repo_dependency_graph::{GraphOptions, Repository};
use crate::logic::graph::analyse;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata/compose/");

/// A real compose file from the shared test data; a missing file fails the test.
fn testdata(name: &str) -> String {
    let path = format!("{TESTDATA}{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("test data {path} is required: {e}"))
}

fn compose(repository: &str, file: &str, content: &str) -> SourceFile {
    SourceFile {
        repository: repository.into(),
        file: file.into(),
        format: DiscoveryFormat::Compose,
        content: content.into(),
    }
}

fn manifests(repository: &str, file: &str, content: &str) -> SourceFile {
    SourceFile { format: DiscoveryFormat::Manifests, ..compose(repository, file, content) }
}

fn edges(d: &Discovery) -> Vec<(&str, &str, bool, &str)> {
    d.edges.iter().map(|e| (e.from.as_str(), e.to.as_str(), e.required, e.provenance.as_str())).collect()
}

fn internal<'a>(d: &'a Discovery, repository: &str) -> Vec<(&'a str, &'a str, &'a str)> {
    d.internal.iter().filter(|r| r.repository == repository).map(|r| (r.from.as_str(), r.via, r.to.as_str())).collect()
}

#[test]
fn every_compose_form_produces_an_edge_to_the_owning_repository() {
    let d = discover(&[
        compose(
            "o/web",
            "docker-compose.yml",
            r#"
services:
  web:
    image: acme/base
    depends_on: [db, worker]
    links: ["auth:login"]
    volumes_from: ["assets:ro", "container:legacy"]
    networks: [shared, legacy]
  worker:
    network_mode: "service:vpn"
    depends_on:
      metrics:
        condition: service_started
        required: false
      queue:
        condition: service_healthy
networks:
  shared:
    external: true
  legacy:
    external:
      name: corp_legacy
"#,
        ),
        compose("o/db", "compose.yaml", "services:\n  db: {image: postgres}\n  queue: {image: rabbitmq}\n"),
        compose("o/auth", "compose.yaml", "services:\n  auth: {image: keycloak}\n"),
        compose("o/assets", "compose.yaml", "services:\n  assets: {image: nginx}\n"),
        compose("o/vpn", "compose.yaml", "services:\n  vpn: {image: wireguard}\n"),
        compose("o/metrics", "compose.yaml", "services:\n  metrics: {image: prom}\n"),
        compose(
            "o/net",
            "compose.yaml",
            "services:\n  router: {image: traefik, networks: [shared, legacy]}\nnetworks:\n  shared:\n  legacy:\n    name: corp_legacy\n",
        ),
        compose("o/base", "compose.yaml", "services:\n  base:\n    build: .\n    image: acme/base:latest\n"),
    ]);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    let web = "compose:docker-compose.yml:web";
    let worker = "compose:docker-compose.yml:worker";
    assert_eq!(
        edges(&d),
        vec![
            ("o/web", "o/assets", true, web),
            ("o/web", "o/auth", true, web),
            ("o/web", "o/base", true, web),
            ("o/web", "o/db", true, web),
            ("o/web", "o/db", true, worker),
            ("o/web", "o/metrics", false, worker),
            ("o/web", "o/net", true, web),
            ("o/web", "o/vpn", true, worker),
        ]
    );
    assert_eq!(internal(&d, "o/web"), vec![("web", "depends_on", "worker")]);
}

#[test]
fn own_definitions_win_and_ambiguous_or_unknown_references_are_reported() {
    let d = discover(&[
        compose("o/a", "c.yml", "services:\n  app: {depends_on: [db, cache, ghost]}\n  db: {image: mysql}\n"),
        compose("o/b", "c.yml", "services:\n  db: {image: mysql}\n  cache: {image: redis}\n"),
        compose("o/c", "c.yml", "services:\n  cache: {image: redis}\n"),
    ]);
    assert!(d.edges.is_empty(), "{:?}", d.edges);
    assert_eq!(internal(&d, "o/a"), vec![("app", "depends_on", "db")]);
    assert_eq!(d.errors.len(), 1);
    assert_eq!(d.errors[0].repository, "o/a");
    assert_eq!(
        d.errors[0].message,
        "app: depends_on cache is defined by several repositories (o/b, o/c); app: depends_on ghost is defined by no repository"
    );
}

#[test]
fn a_malformed_file_is_reported_and_the_rest_still_discovered() {
    let files = [
        compose("o/a", "broken.yml", "services:\n  app: [\n"),
        compose("o/a", "good.yml", "services:\n  app: {depends_on: [db]}\n"),
        compose("o/b", "c.yml", "services:\n  db: {}\n"),
        manifests("o/b", "k8s.yaml", "kind: Deployment\nmetadata: {name: x}\nspec: 7\n"),
    ];
    let d = discover(&files);
    assert_eq!(edges(&d), vec![("o/a", "o/b", true, "compose:good.yml:app")]);
    let failed: Vec<(&str, &str)> = d.errors.iter().map(|e| (e.repository.as_str(), e.file.as_str())).collect();
    assert_eq!(failed, vec![("o/a", "broken.yml"), ("o/b", "k8s.yaml")]);
    assert!(d.errors[0].message.starts_with("invalid YAML"), "{}", d.errors[0].message);

    let repos: Vec<Repository> = ["o/a", "o/b"]
        .iter()
        .map(|n| Repository { name: (*n).into(), depends_on: vec![], discovery: vec![] })
        .collect();
    let status = analyse(&repos, &d.edges, &GraphOptions::default()).to_status(&d.errors);
    assert_eq!(status.order, vec!["o/b", "o/a"]);
    assert_eq!(status.discovery_errors.len(), 2);
}

#[test]
fn manifests_reference_services_of_other_repositories_in_every_address_form() {
    let d = discover(&[
        manifests(
            "o/front",
            "deploy/app.yaml",
            r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data:
  SEARCH_URL: "http://search.search.svc.cluster.local:9200"
  MODE: "production"
---
apiVersion: v1
kind: ConfigMap
metadata: {name: endpoints}
data: {billing: "billing:443", unused: "mail"}
---
apiVersion: v1
kind: Service
metadata: {name: front}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: front}
spec:
  template:
    spec:
      containers:
        - name: app
          args: ["--api", "http://api.shop:8080/v1"]
          env:
            - {name: SELF, value: "front"}
            - {name: CACHE, value: "cache.data.svc:6379"}
            - name: BILLING
              valueFrom: {configMapKeyRef: {name: endpoints, key: billing}}
          envFrom: [{configMapRef: {name: settings}}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: r, command: ["report", "--db=postgres://u@db:5432/x"]}]
"#,
        ),
        manifests("o/shop", "k8s.yaml", "kind: Service\nmetadata: {name: api, namespace: shop}\n"),
        manifests("o/search", "k8s.yaml", "kind: Service\nmetadata: {name: search}\n"),
        manifests(
            "o/data",
            "k8s.yaml",
            "kind: Service\nmetadata: {name: cache, namespace: data}\n---\nkind: Service\nmetadata: {name: db}\n",
        ),
        manifests(
            "o/billing",
            "k8s.yaml",
            "kind: Service\nmetadata: {name: billing}\n---\nkind: Service\nmetadata: {name: mail}\n",
        ),
        manifests("o/other", "k8s.yaml", "kind: Service\nmetadata: {name: api, namespace: elsewhere}\n"),
    ]);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    assert_eq!(
        edges(&d),
        vec![
            ("o/front", "o/billing", false, "inferred:deploy/app.yaml:Deployment/front:app.env.BILLING"),
            ("o/front", "o/data", false, "inferred:deploy/app.yaml:CronJob/report:r.command"),
            ("o/front", "o/data", false, "inferred:deploy/app.yaml:Deployment/front:app.env.CACHE"),
            ("o/front", "o/search", false, "inferred:deploy/app.yaml:Deployment/front:app.envFrom.settings.SEARCH_URL"),
            ("o/front", "o/shop", false, "inferred:deploy/app.yaml:Deployment/front:app.args"),
        ]
    );
    assert!(internal(&d, "o/front").is_empty(), "SELF=front names, it does not address: {:?}", d.internal);
}

#[test]
fn real_compose_files_parse_and_yield_their_internal_relations() {
    let names = [
        "Netflix__conductor__docker_docker-compose-postgres.yml",
        "docker__compose__tests_fixtures_networks_external-networks.yml",
        "docker__compose__tests_fixtures_networks_network-mode.yml",
        "getsentry__self-hosted__docker-compose.yml",
        "n8n-io__self-hosted-ai-starter-kit__docker-compose.yml",
        "nginx-proxy__nginx-proxy__docker-compose-separate-containers.yml",
    ];
    let files: Vec<SourceFile> =
        names.iter().enumerate().map(|(i, n)| compose(&format!("o/r{i}"), n, &testdata(n))).collect();
    let d = discover(&files);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    assert!(d.edges.is_empty(), "each file is one repository: {:?}", d.edges);

    let conductor = internal(&d, "o/r0");
    for expected in [
        ("conductor-server", "depends_on", "elasticsearch"),
        ("conductor-server", "depends_on", "postgres"),
        ("conductor-server", "links", "elasticsearch"),
        ("conductor-server", "links", "grafana"),
        ("conductor-server", "links", "postgres"),
        ("conductor-server", "links", "prometheus"),
        ("conductor-ui", "links", "conductor-server"),
    ] {
        assert!(conductor.contains(&expected), "{expected:?} in {conductor:?}");
    }
    // external_links name containers outside compose and are not service references.
    assert!(!conductor.iter().any(|(from, _, _)| *from == "prometheus"), "{conductor:?}");

    assert_eq!(internal(&d, "o/r2"), vec![("service", "network_mode", "bridge")]);

    let sentry = compose::parse(&testdata(names[3])).unwrap();
    assert_eq!(sentry.services.len(), 30);
    let relations = internal(&d, "o/r3");
    let depends = |from: &str| -> Vec<&str> {
        relations.iter().filter(|(f, via, _)| *f == from && *via == "depends_on").map(|(_, _, to)| *to).collect()
    };
    assert_eq!(depends("nginx"), vec!["relay", "web"]);
    assert_eq!(depends("relay"), vec!["kafka", "redis", "web"]);
    assert_eq!(depends("kafka"), vec!["zookeeper"]);
    assert_eq!(depends("snuba-api"), vec!["clickhouse", "kafka", "redis"]);
    assert_eq!(depends("snuba-cleanup"), vec!["clickhouse", "kafka", "redis"], "merged defaults survive a local image");
    let web = depends("web");
    assert_eq!(web.len(), 14, "{web:?}");
    for dep in ["kafka", "memcached", "postgres", "redis", "smtp", "snuba-api", "snuba-replacer", "symbolicator"] {
        assert!(web.contains(&dep), "web depends on {dep}: {web:?}");
    }
    assert!(depends("geoipupdate").is_empty());

    let n8n = internal(&d, "o/r4");
    let n8n_depends: Vec<_> = n8n.iter().filter(|(_, via, _)| *via == "depends_on").copied().collect();
    assert_eq!(
        n8n_depends,
        vec![
            ("n8n", "depends_on", "n8n-import"),
            ("n8n", "depends_on", "postgres"),
            ("n8n-import", "depends_on", "postgres"),
            ("ollama-pull-llama-cpu", "depends_on", "ollama-cpu"),
            ("ollama-pull-llama-gpu", "depends_on", "ollama-gpu"),
            ("ollama-pull-llama-gpu-amd", "depends_on", "ollama-gpu-amd"),
        ]
    );
    assert_eq!(internal(&d, "o/r5"), vec![("dockergen", "volumes_from", "nginx")]);
}

#[test]
fn real_compose_files_split_across_repositories_produce_edges() {
    let d = discover(&[
        compose("o/proxy", "proxy.yml", &testdata("nginx-proxy__nginx-proxy__docker-compose-separate-containers.yml")),
        compose(
            "o/sites",
            "sites.yml",
            "services:\n  site:\n    volumes_from: [\"nginx:ro\"]\n    network_mode: service:dockergen\n",
        ),
        compose("o/ext", "ext.yml", &testdata("docker__compose__tests_fixtures_networks_external-networks.yml")),
        compose("o/netowner", "net.yml", "services: {}\nnetworks:\n  networks_foo:\n  bar:\n    name: networks_bar\n"),
        compose("o/conductor", "conductor.yml", &testdata("Netflix__conductor__docker_docker-compose-postgres.yml")),
        compose("o/n8n", "n8n.yml", &testdata("n8n-io__self-hosted-ai-starter-kit__docker-compose.yml")),
    ]);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    assert_eq!(
        edges(&d),
        vec![
            ("o/ext", "o/netowner", true, "compose:ext.yml:web"),
            ("o/sites", "o/proxy", true, "compose:sites.yml:site")
        ]
    );
    // Both conductor and n8n define `postgres`; each resolves to its own.
    assert!(internal(&d, "o/conductor").contains(&("conductor-server", "depends_on", "postgres")));
    assert!(internal(&d, "o/n8n").contains(&("n8n", "depends_on", "postgres")));
}

#[test]
fn source_labels_name_the_path_or_the_config_map_key() {
    use crate::api::repo_dependency_graph::ConfigMapKeyRef;
    let path = DiscoverySource {
        format: DiscoveryFormat::Compose,
        config_map_ref: None,
        path: Some("a/b.yml".into()),
        r#ref: None,
    };
    assert_eq!(source_label(&path), "a/b.yml");
    let cm = DiscoverySource {
        config_map_ref: Some(ConfigMapKeyRef { name: "deps".into(), key: "compose.yml".into() }),
        path: None,
        ..path
    };
    assert_eq!(source_label(&cm), "configmap/deps/compose.yml");
}

#[test]
fn compose_addresses_in_environment_env_files_commands_and_every_name_form() {
    let d = discover(&[
        compose(
            "o/app",
            "deploy/docker-compose.yml",
            r#"
services:
  web:
    env_file: [.env, {path: ./missing.env, required: false}]
    environment:
      - DATABASE_URL=postgres://app:${PASSWORD}@db:5432/app
      - CACHE=${CACHE_HOST:-redis}:6379
      - OTEL_COLLECTOR_NAME=otel-collector
      - SELF_URL=http://web:8080
    command: ["sh", "-c", "wait-for-it search.internal:9200 -- run"]
    links: ["mq:broker"]
  worker:
    environment:
      QUEUE_HOST: broker
      SEARCH_URL: http://es-node:9200
      MAIL_SERVER: smtp
    entrypoint: pg_isready -h legacy-db
  local:
    image: redis
    hostname: redis
"#,
        ),
        SourceFile { format: DiscoveryFormat::Env, ..compose("o/app", "deploy/.env", "AUTH_URL=https://auth:443/\n") },
        compose(
            "o/data",
            "compose.yaml",
            r#"
services:
  postgres:
    container_name: db
  elastic:
    networks:
      shared: {aliases: [search.internal, es-node]}
  mq: {image: rabbitmq}
  old: {container_name: legacy-db}
  otel: {container_name: otel-collector}
networks:
  shared:
"#,
        ),
        compose("o/auth", "compose.yaml", "services:\n  auth: {image: keycloak}\n"),
        compose("o/mail", "compose.yaml", "services:\n  smtp: {image: postfix}\n"),
    ]);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    let file = "deploy/docker-compose.yml";
    let inferred = |service: &str, field: &str| format!("inferred:{file}:{service}:{field}");
    let found: Vec<(String, String, bool, String)> =
        d.edges.iter().map(|e| (e.from.clone(), e.to.clone(), e.required, e.provenance.clone())).collect();
    let want =
        |to: &str, service: &str, field: &str| ("o/app".to_string(), to.to_string(), false, inferred(service, field));
    assert_eq!(
        found,
        vec![
            want("o/auth", "web", "env_file.AUTH_URL"),
            want("o/data", "web", "command"),
            want("o/data", "worker", "entrypoint"),
            ("o/app".into(), "o/data".into(), true, format!("compose:{file}:web")),
            want("o/mail", "worker", "environment.MAIL_SERVER"),
        ]
    );
    // Several fields of one service naming the same repository leave one edge; the
    // internal relation of `redis` (a hostname in o/app itself) is kept.
    assert_eq!(internal(&d, "o/app"), vec![("web", "address", "local")]);
    let evidence: Vec<&str> = d.edges.iter().map(|e| e.provenance.as_str()).collect();
    assert!(!evidence.iter().any(|p| p.contains("OTEL")), "a name is not an address: {evidence:?}");
}

#[test]
fn statefulset_pod_names_and_replication_controllers_resolve_to_the_governing_service() {
    let d = discover(&[
        manifests(
            "o/app",
            "k8s.yaml",
            r#"
kind: ReplicationController
metadata: {name: legacy, namespace: web}
spec:
  template:
    spec:
      containers:
        - name: c
          env:
            - {name: DB_HOST, value: "db-0.mysql.data.svc.cluster.local"}
            - {name: REPLICA, value: "db-1.mysql.data:3306"}
            - {name: NOT_A_POD, value: "web-0.mysql.data:3306"}
            - {name: OTEL_COLLECTOR_NAME, value: "otel"}
"#,
        ),
        manifests(
            "o/db",
            "k8s.yaml",
            r#"
kind: Service
metadata: {name: mysql, namespace: data}
---
kind: Service
metadata: {name: otel}
---
kind: StatefulSet
metadata: {name: db, namespace: data}
spec:
  serviceName: mysql
  template: {spec: {containers: [{name: mysql}]}}
"#,
        ),
    ]);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    assert_eq!(
        edges(&d),
        vec![("o/app", "o/db", false, "inferred:k8s.yaml:ReplicationController/legacy:c.env.DB_HOST"),]
    );
}

#[test]
fn extends_carries_dependencies_and_environment_and_namespace_sharing_keys_are_edges() {
    let d = discover(&[
        compose(
            "o/app",
            "compose/app.yml",
            r#"
include:
  - common.yml
  - path: [../other/absent.yml]
services:
  base:
    depends_on: [db]
    environment: [CACHE_URL=redis://cache:6379]
  web:
    extends: base
    environment: {EXTRA: "1"}
  api:
    extends: {file: common.yml, service: template}
    profiles: [debug]
  sidecar:
    ipc: service:vpn
    pid: "service:vpn"
    uts: service:vpn
    cgroup: service:vpn
  loop-a: {extends: loop-b}
  loop-b: {extends: loop-a}
  orphan: {extends: {file: nowhere.yml, service: x}}
"#,
        ),
        compose(
            "o/app",
            "compose/common.yml",
            "services:\n  template:\n    depends_on:\n      search: {condition: service_started, required: false}\n    command: [\"run\", \"--queue-url\", \"amqp://mq:5672\"]\n",
        ),
        compose("o/data", "compose.yaml", "services:\n  db: {}\n  cache: {}\n  search: {}\n  mq: {}\n  vpn: {}\n"),
    ]);
    let file = "compose/app.yml";
    let explicit = |service: &str| format!("compose:{file}:{service}");
    let found: Vec<(&str, bool, &str, Vec<String>)> =
        d.edges.iter().map(|e| (e.to.as_str(), e.required, e.provenance.as_str(), e.profiles.clone())).collect();
    let none = Vec::<String>::new;
    assert!(found.iter().all(|(to, ..)| *to == "o/data"), "{found:?}");
    let debug = vec!["debug".to_string()];
    for expected in [
        (false, format!("inferred:{file}:api:command"), debug.clone()),
        (false, explicit("api"), debug.clone()),
        (false, format!("inferred:{file}:base:environment.CACHE_URL"), none()),
        (false, format!("inferred:{file}:web:environment.CACHE_URL"), none()),
        (true, explicit("base"), none()),
        (true, explicit("web"), none()),
        (true, explicit("sidecar"), none()),
    ] {
        let hit = found.iter().any(|(_, r, p, profiles)| (*r, p.to_string(), profiles.clone()) == expected);
        assert!(hit, "{expected:?} in {found:?}");
    }
    let sidecar: Vec<&str> = d.internal.iter().filter(|r| r.from == "sidecar").map(|r| r.via).collect();
    assert!(sidecar.is_empty(), "vpn is in o/data, so these are edges");
    let parsed = compose::parse(
        "services:\n  s:\n    ipc: service:a\n    pid: service:b\n    uts: service:c\n    cgroup: service:d\n",
    )
    .unwrap();
    let kinds: Vec<&str> = parsed.services[0].references.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, vec!["ipc", "pid", "uts", "cgroup"]);

    assert_eq!(d.errors.len(), 1, "{:?}", d.errors);
    let message = &d.errors[0].message;
    for part in [
        "services.loop-a.extends: cycle loop-a -> loop-b -> loop-a",
        "services.orphan.extends: compose/nowhere.yml is not among the repository's discovery sources",
        "include other/absent.yml: not among the repository's discovery sources",
    ] {
        assert!(message.contains(part), "{part} in {message}");
    }
    assert!(!message.contains("common.yml"), "an included source is found: {message}");
}

#[test]
fn malformed_inputs_are_reported_per_file_in_bounded_time_and_never_crash() {
    // "Billion laughs": nine levels of nine-fold aliases would expand to 10^9 nodes.
    let mut bomb = String::from("x0: &a0 [lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        bomb.push_str(&format!("x{i}: &a{i} [{refs}]\n"));
    }
    bomb.push_str("services:\n  s:\n    command: *a9\n");
    let huge = format!("services:\n  s:\n    image: x\n#{}\n", "y".repeat(50 * 1024 * 1024));
    let binary = "services:\n  s: {}\n\u{0}\u{1}\u{2}".to_string();
    let cycle = "services:\n  a: {extends: b, depends_on: [c]}\n  b: {extends: a}\n  c: {}\n".to_string();
    let files = [
        compose("o/a", "bomb.yml", &bomb),
        manifests("o/a", "bomb-k8s.yaml", &bomb.replace("services:", "kind: Pod\nmetadata: {name: p}\nx:")),
        compose("o/a", "huge.yml", &huge),
        compose("o/a", "binary.yml", &binary),
        compose("o/a", "cycle.yml", &cycle),
    ];
    let d = discover(&files);
    let errors: Vec<(&str, &str)> = d.errors.iter().map(|e| (e.file.as_str(), e.message.as_str())).collect();
    assert_eq!(errors.len(), 5, "{errors:?}");
    let message = |file: &str| errors.iter().find(|(f, _)| *f == file).map(|(_, m)| *m).unwrap_or_default();
    assert!(message("bomb.yml").contains("repetition limit"), "{}", message("bomb.yml"));
    assert!(message("bomb-k8s.yaml").contains("invalid YAML"), "{}", message("bomb-k8s.yaml"));
    assert!(message("huge.yml").contains("more than the"), "{}", message("huge.yml"));
    assert!(message("binary.yml").contains("binary"), "{}", message("binary.yml"));
    assert!(message("cycle.yml").contains("cycle a -> b -> a"), "{}", message("cycle.yml"));
    // The cyclic file still yields what does not depend on the cycle.
    assert!(d.internal.iter().any(|r| r.file == "cycle.yml" && r.from == "a" && r.to == "c"), "{:?}", d.internal);
}
