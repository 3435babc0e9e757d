//! The config file's loading and validation, against strings and the real files in the repository.

use super::*;

#[test]
fn empty_file_gives_defaults() {
    let c = Config::parse("", "t").unwrap();
    assert!(c.leader_election.enabled);
    assert_eq!(c.controller.concurrency, 4);
}

#[test]
fn disabled_controllers_are_named_kinds() {
    let config = Config::parse("controller:\n  disabled: [PreviewEnvironment, Github]\n", "t").unwrap();
    assert!(config.runs(ControllerKind::Branch) && !config.runs(ControllerKind::PreviewEnvironment));
    let err = Config::parse("controller:\n  disabled: [Previews]\n", "t").unwrap_err().to_string();
    assert!(err.contains("Previews"), "{err}");
}

#[test]
fn unknown_key_is_named() {
    let err = Config::parse("controller:\n  concurency: 3\n", "t").unwrap_err().to_string();
    assert!(err.contains("concurency"), "{err}");
}

#[test]
fn github_repository_templates_are_validated_at_load() {
    let text = r#"
github:
  tokenSecretRef: {namespace: sy, name: gh, key: token}
  webhookSecretRef: {namespace: sy, name: gh, key: webhook}
  pollInterval: 0s
  repositories:
    - {repository: acme/shop, namespace: previews, project: shop, className: team-a, spec: {site: {phpVersion: php84}}}
    - {repository: ACME/shop, namespace: Previews, project: Shop, className: Team_A}
    - {repository: acme/web, namespace: other, project: web}
    - repository: acme/api
      namespace: previews
      project: api
      spec: {pullRequest: 3, site: {phpVersion: 8}}
controller: {namespace: previews}
"#;
    let err = Config::parse(text, "t").unwrap_err().to_string();
    for key in [
        "github.pollInterval",
        "github.repositories[1].repository",
        "github.repositories[1].namespace",
        "github.repositories[1].project",
        "github.repositories[1].className",
        "github.repositories[2].namespace",
        "github.repositories[3].spec.pullRequest",
        "github.repositories[3].spec",
    ] {
        assert!(err.contains(key), "missing {key} in {err}");
    }
    assert!(!err.contains("repositories[0]"), "{err}");
}

#[test]
fn semantic_problems_name_their_keys() {
    let text = r#"
pools:
  - name: ports
    type: Port
    range: {start: 9000, end: 8000}
  - name: ports
    type: RedisDatabase
leaderElection:
  leaseDuration: 2s
  retryPeriod: 5s
server:
  listen: nowhere
forge:
  organization: demo
  requestTimeout: soon
"#;
    let err = Config::parse(text, "t").unwrap_err().to_string();
    for key in [
        "pools[0].range",
        "pools[1].name",
        "pools[1].redisUrlSecretRef",
        "leaderElection.retryPeriod",
        "server.listen",
        "forge.requestTimeout",
    ] {
        assert!(err.contains(key), "missing {key} in {err}");
    }
}

/// The problems of `text`, which must not load.
fn problems(text: &str) -> String {
    Config::parse(text, "t").unwrap_err().to_string()
}

#[test]
fn durations_are_parsed_at_load_with_the_documented_defaults() {
    let c = Config::parse("", "t").unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.controller.requeue_interval, Duration::from_secs(600));
    assert_eq!(c.leader_election.lease_duration, Duration::from_secs(15));
    assert_eq!(c.leader_election.retry_period, Duration::from_secs(2));
    assert_eq!(c.server.listen, "0.0.0.0:8080".parse::<SocketAddr>().unwrap());
    let text = r#"
forge: {organization: demo}
github:
  tokenSecretRef: {namespace: sy, name: gh, key: token}
  webhookSecretRef: {namespace: sy, name: gh, key: webhook}
"#;
    let c = Config::parse(text, "t").unwrap();
    let forge = c.forge.unwrap();
    assert_eq!(forge.request_timeout, Duration::from_secs(30));
    assert_eq!((forge.base_url.as_str(), forge.rate_limit_per_minute), ("https://forge.laravel.com/api", 60));
    let github = c.github.unwrap();
    assert_eq!(github.poll_interval, Duration::from_secs(300));
    assert_eq!((github.api_url.as_str(), github.fork_policy), ("https://api.github.com", ForkPolicy::Deny));
    let c = Config::parse("controller: {requeueInterval: 1h30m}\nleaderElection: {retryPeriod: 250ms}\n", "t");
    let c = c.unwrap();
    assert_eq!(c.controller.requeue_interval, Duration::from_secs(5400));
    assert_eq!(c.leader_election.retry_period, Duration::from_millis(250));
}

#[test]
fn an_unparsable_duration_is_a_load_error_naming_its_key() {
    let github = "github:\n  tokenSecretRef: {namespace: sy, name: gh, key: t}\n  webhookSecretRef: {namespace: sy, name: gh, key: w}\n";
    for (text, key) in [
        ("controller:\n  requeueInterval: 5x\n".to_string(), "controller.requeueInterval"),
        ("leaderElection:\n  leaseDuration: 5x\n".to_string(), "leaderElection.leaseDuration"),
        ("leaderElection:\n  retryPeriod: 5x\n".to_string(), "leaderElection.retryPeriod"),
        ("forge:\n  organization: demo\n  requestTimeout: 5x\n".to_string(), "forge.requestTimeout"),
        (format!("{github}  pollInterval: 5x\n"), "github.pollInterval"),
    ] {
        let err = problems(&text);
        assert!(err.contains(&format!("{key}: invalid duration \"5x\"")), "{key}: {err}");
        assert_eq!(err.matches("  - ").count(), 1, "only the duration is wrong: {err}");
    }
}

#[test]
fn pools_load_as_the_variant_of_their_type() {
    let text = r#"
pools:
  - {name: ports, type: Port, range: {start: 8000, end: 8100}, deny: [8080], dynamicFrom: 8050}
  - {name: web, type: Domain, baseDomain: preview.example.com}
  - {name: redis, type: RedisDatabase, redisUrlSecretRef: {namespace: sy, name: redis, key: url}, reserved: [1]}
  - {name: db, type: Database, serverId: 7, prefix: pr_}
  - {name: vols, type: Volume, resources: [{name: vol-a, capacity: 2}, {name: vol-b}]}
  - {name: nets, type: Network, resources: [{name: net-a}]}
"#;
    let c = Config::parse(text, "t").unwrap();
    let kinds: Vec<_> = c.pools.iter().map(|p| p.kind.clone()).collect();
    assert_eq!(
        kinds,
        [
            PoolKind::Port { range: PortRange { start: 8000, end: 8100 }, deny: vec![8080], dynamic_from: Some(8050) },
            PoolKind::Domain { base_domain: "preview.example.com".into() },
            PoolKind::RedisDatabase {
                redis_url_secret_ref: NamespacedSecretKeyRef {
                    namespace: "sy".into(),
                    name: "redis".into(),
                    key: "url".into()
                },
                reserved: vec![1],
            },
            PoolKind::Database { server_id: 7, prefix: Some("pr_".into()) },
            PoolKind::Volume {
                resources: vec![
                    NamedResource { name: "vol-a".into(), capacity: 2 },
                    NamedResource { name: "vol-b".into(), capacity: 1 },
                ],
            },
            PoolKind::Network { resources: vec![NamedResource { name: "net-a".into(), capacity: 1 }] },
        ]
    );
    let types: Vec<_> = c.pools.iter().map(Pool::type_).collect();
    use ResourceType::*;
    assert_eq!(types, [Port, Domain, RedisDatabase, Database, Volume, Network]);
    assert_eq!(c.pool("redis").map(Pool::type_), Some(RedisDatabase));
}

#[test]
fn each_pool_type_needs_its_settings_and_no_other_types() {
    let secret = "redisUrlSecretRef: {namespace: sy, name: redis, key: url}";
    for (pool, problem) in [
        ("{name: p, type: Port}".to_string(), "pools[0].range: required for a Port pool"),
        ("{name: p, type: Domain}".into(), "pools[0].baseDomain: required for a Domain pool"),
        ("{name: p, type: RedisDatabase}".into(), "pools[0].redisUrlSecretRef: required for a RedisDatabase pool"),
        ("{name: p, type: Database}".into(), "pools[0].serverId: required for a Database pool"),
        ("{name: p, type: Volume}".into(), "pools[0].resources: required for a Volume pool"),
        ("{name: p, type: Network, resources: []}".into(), "pools[0].resources: required for a Network pool"),
        (
            "{name: p, type: Port, range: {start: 1, end: 2}, baseDomain: x.example}".into(),
            "pools[0].baseDomain: not a setting of a Port pool",
        ),
        (
            "{name: p, type: Domain, baseDomain: x.example, range: {start: 1, end: 2}}".into(),
            "pools[0].range: not a setting of a Domain pool",
        ),
        (
            format!("{{name: p, type: RedisDatabase, {secret}, deny: [1]}}"),
            "pools[0].deny: not a setting of a RedisDatabase pool",
        ),
        (
            "{name: p, type: Database, serverId: 1, reserved: []}".into(),
            "pools[0].reserved: not a setting of a Database pool",
        ),
        (
            "{name: p, type: Volume, resources: [{name: v}], serverId: 1}".into(),
            "pools[0].serverId: not a setting of a Volume pool",
        ),
        (
            format!("{{name: p, type: Network, resources: [{{name: n}}], {secret}}}"),
            "pools[0].redisUrlSecretRef: not a setting of a Network pool",
        ),
        (
            "{name: p, type: Domain, baseDomain: x.example, prefix: a_}".into(),
            "pools[0].prefix: not a setting of a Domain pool",
        ),
        (
            "{name: p, type: Port, range: {start: 1, end: 2}, dynamicFrom: 3}".into(),
            "pools[0].dynamicFrom: 3 is outside range 1-2",
        ),
        ("{name: p, type: Port, range: {start: 0, end: 2}}".into(), "pools[0].range: 0-2 must satisfy"),
        (
            "{name: p, type: Volume, resources: [{name: v, capacity: 0}]}".into(),
            "pools[0].resources[0].capacity: must be at least 1",
        ),
    ] {
        let err = problems(&format!("pools:\n  - {pool}\n"));
        assert!(err.contains(problem), "{pool}: missing {problem:?} in {err}");
    }
    // Another pool's mistakes do not hide this one's.
    let err = problems("pools:\n  - {name: a, type: Port}\n  - {name: b, type: Domain, range: {start: 1, end: 2}}\n");
    assert!(err.contains("pools[0].range: required") && err.contains("pools[1].range: not a setting"), "{err}");
    assert!(err.contains("pools[1].baseDomain: required"), "{err}");
}

/// A `format!` template with `{{`/`}}` unescaped and every `{name}` taken from `values`.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let (mut out, mut rest) = (String::new(), template);
    while let Some(at) = rest.find(['{', '}']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        let end = tail.find('}').unwrap_or_else(|| panic!("unclosed placeholder in {template}"));
        let name = &tail[1..end];
        let value = values.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no value for {{{name}}}"));
        out.push_str(value.1);
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The raw string literal (`r#"…"#`) of `source` that contains `needle`.
fn raw_string_with<'a>(source: &'a str, needle: &str) -> &'a str {
    let at = source.find(needle).unwrap_or_else(|| panic!("{needle:?} not found"));
    let start = source[..at].rfind("r#\"").expect("raw string start") + 3;
    let end = at + source[at..].find("\"#").expect("raw string end");
    &source[start..end]
}

/// The fenced block of `markdown` that contains `needle`.
fn fenced_block_with<'a>(markdown: &'a str, needle: &str) -> &'a str {
    let at = markdown.find(needle).unwrap_or_else(|| panic!("{needle:?} not found"));
    let start = markdown[..at].rfind("```yaml\n").expect("block start") + "```yaml\n".len();
    let end = at + markdown[at..].find("```").expect("block end");
    &markdown[start..end]
}

#[test]
fn the_example_configs_in_the_repository_load() {
    let values: serde_yaml::Value =
        serde_yaml::from_str(include_str!("../../charts/switchyard/values.yaml")).expect("values.yaml");
    let chart = serde_yaml::to_string(&values["config"]).expect("chart config");
    let readme = include_str!("../../README.md");
    let demo = include_str!("../../e2e/demo.sh");
    let demo = &demo[demo.find("<<YAML\n").expect("demo config") + 7..];
    let demo = demo[..demo.find("\nYAML").expect("demo config end")]
        .replace("$FORGE_PORT", "8081")
        .replace("$OP_PORT", "8082");
    let placeholders = [
        ("ns", "test-ns"),
        ("port", "8080"),
        ("forge", "http://127.0.0.1:8081/api"),
        ("rate", "60"),
        ("requeue", "10m"),
        ("timeout", "30s"),
        ("extra", ""),
    ];
    let claims = fill(raw_string_with(include_str!("../../tests/claims.rs"), "pools:"), &placeholders);
    let previews = fill(raw_string_with(include_str!("../../tests/preview_support/mod.rs"), "pools:"), &placeholders);
    for (origin, text) in [
        ("charts/switchyard/values.yaml", chart),
        ("README.md Configuration", fenced_block_with(readme, "pools:").to_string()),
        ("README.md GitHub", fenced_block_with(readme, "github:\n").to_string()),
        ("e2e/demo.sh", demo),
        ("tests/claims.rs", claims),
        ("tests/preview_support/mod.rs", previews),
    ] {
        if let Err(e) = Config::parse(&text, origin) {
            panic!("{e}\n---\n{text}");
        }
    }
}

#[test]
fn the_branch_url_policy_is_strict_by_default_and_its_patterns_are_checked() {
    let strict = Config::parse("", "t").unwrap().branches;
    assert!(!strict.allow_plain_http && !strict.allow_insecure_skip_verify && strict.allowed_urls.is_empty());
    let text = "branches:\n  allowPlainHttp: true\n  allowedUrls: ['https://*.example.com', 'http://127.0.0.1:*']\n";
    let policy = Config::parse(text, "t").unwrap().branches;
    assert!(policy.allow_plain_http && policy.allowed_urls.len() == 2);
    let err = problems("branches:\n  allowedUrls: ['*.example.com', 'https://x.example.com/path']\n");
    assert!(err.contains("branches.allowedUrls[0]") && err.contains("branches.allowedUrls[1]"), "{err}");
}
