use super::*;

fn refs(service: &Service) -> Vec<(ReferenceKind, &str, bool)> {
    service.references.iter().map(|r| (r.kind, r.service.as_str(), r.required)).collect()
}

#[test]
fn every_reference_form_is_read() {
    let file = parse(
        r#"
services:
  web:
    build: .
    image: acme/web
    depends_on: [db, cache]
    links: ["auth:login", search]
    volumes_from: [assets, "logs:ro", "container:sidecar", "container:other:rw", "service:media:rw"]
    networks: [front, shared]
  worker:
    network_mode: "service:web"
    depends_on:
      queue:
        condition: service_healthy
      metrics:
        condition: service_started
        required: false
  lone:
    image: "$IMAGE"
    network_mode: "container:abc"
networks:
  front:
  shared:
    external: true
  legacy:
    external:
      name: corp_legacy
  renamed:
    external: true
    name: corp_renamed
  owned:
    name: corp_owned
"#,
    )
    .unwrap();
    let web = &file.services[0];
    use ReferenceKind::*;
    assert_eq!(
        refs(web),
        vec![
            (DependsOn, "db", true),
            (DependsOn, "cache", true),
            (Link, "auth", true),
            (Link, "search", true),
            (VolumesFrom, "assets", true),
            (VolumesFrom, "logs", true),
            (VolumesFrom, "media", true),
        ]
    );
    assert_eq!(web.networks, vec!["front", "shared"]);
    assert_eq!(web.image.as_deref(), Some("acme/web:latest"));
    assert!(web.builds);
    let worker = &file.services[1];
    assert_eq!(
        refs(worker),
        vec![(DependsOn, "queue", true), (DependsOn, "metrics", false), (NetworkMode, "web", true)]
    );
    assert!(worker.networks.is_empty(), "network_mode replaces networks");
    let lone = &file.services[2];
    assert!(lone.references.is_empty());
    assert_eq!(lone.image, None, "interpolated images cannot be matched");
    let names: Vec<(&str, &str, bool)> =
        file.networks.iter().map(|n| (n.key.as_str(), n.name.as_str(), n.external)).collect();
    assert_eq!(
        names,
        vec![
            ("front", "front", false),
            ("shared", "shared", true),
            ("legacy", "corp_legacy", true),
            ("renamed", "corp_renamed", true),
            ("owned", "corp_owned", false),
        ]
    );
}

#[test]
fn service_without_networks_joins_default() {
    let file = parse("services:\n  a:\n    image: x\n").unwrap();
    assert_eq!(file.services[0].networks, vec!["default"]);
}

#[test]
fn nested_merge_keys_resolve_and_local_keys_win() {
    let file = parse(
        r#"
x-restart: &restart
  restart: always
  depends_on: [base]
x-defaults: &defaults
  <<: *restart
  image: shared:1
  depends_on:
    db:
      <<: &healthy { condition: service_healthy }
services:
  a:
    <<: *defaults
  b:
    <<: [*defaults]
    image: own:2
    depends_on: [other]
"#,
    )
    .unwrap();
    assert_eq!(file.services[0].references[0].service, "db");
    assert_eq!(file.services[0].image.as_deref(), Some("shared:1"));
    assert_eq!(file.services[1].references[0].service, "other");
    assert_eq!(file.services[1].image.as_deref(), Some("own:2"));
}

#[test]
fn images_normalize_the_latest_tag_but_keep_registry_ports_and_digests() {
    assert_eq!(normalize_image("app"), "app:latest");
    assert_eq!(normalize_image("registry:5000/team/app"), "registry:5000/team/app:latest");
    assert_eq!(normalize_image("registry:5000/team/app:1.2"), "registry:5000/team/app:1.2");
    assert_eq!(normalize_image("app@sha256:abc"), "app@sha256:abc");
}

#[test]
fn malformed_files_name_the_offending_key() {
    assert!(parse("services: [a, b]").unwrap_err().contains("services: expected a mapping"));
    assert!(parse("services:\n  a:\n    depends_on: 3\n").unwrap_err().contains("services.a.depends_on"));
    assert!(parse("services:\n  a: {links: [{x: 1}]}\n").unwrap_err().contains("services.a.links"));
    assert!(parse("services:\n  a: [\n").unwrap_err().starts_with("invalid YAML"));
    assert!(parse("").unwrap_err().contains("empty"));
    assert!(parse("networks:\n  n:\n    external: maybe-ish\n").unwrap_err().contains("networks.n.external"));
}
