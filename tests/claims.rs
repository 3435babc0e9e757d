//! SharedResourceClaim against a real apiserver, a real redis-server and real
//! `switchyard run` processes.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use support::Operator;
use switchyard::api::shared_resource_claim::{ClaimPhase, SharedResourceClaim};
use switchyard::api::{self, conditions};
use switchyard::backends::redis::RedisServer as RedisClient;
use switchyard_testenv::redis::RedisProcess;
use switchyard_testenv::{ControlPlane, wait_for};

const TIMEOUT: Duration = Duration::from_secs(120);

/// A namespace with the Redis URL Secret, and the operator config for it.
struct Setup {
    cp: &'static ControlPlane,
    ns: String,
    redis: RedisProcess,
}

impl Setup {
    async fn new(prefix: &str, databases: u32) -> Self {
        let cp = ControlPlane::shared().await.expect("control plane");
        cp.apply_crds(&api::all_crds()).await.expect("CRDs");
        let ns = cp.create_unique_namespace(prefix).await.expect("namespace");
        let redis = RedisProcess::start(databases).await.expect("redis-server");
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "redis"},
            "stringData": {"url": redis.url()}
        }))
        .expect("secret");
        Api::<Secret>::namespaced(cp.client(), &ns).create(&PostParams::default(), &secret).await.expect("secret");
        Self { cp, ns, redis }
    }

    /// Starts an operator scoped to this namespace, leader election off (so two can run at once).
    fn operator(&self) -> Operator {
        let ns = self.ns.clone();
        Operator::start(self.cp, move |port| {
            format!(
                r#"server: {{listen: "127.0.0.1:{port}"}}
leaderElection: {{enabled: false}}
controller: {{namespace: {ns}, systemNamespace: {ns}, concurrency: 4}}
pools:
  - name: redis
    type: RedisDatabase
    redisUrlSecretRef: {{namespace: {ns}, name: redis, key: url}}
  - name: ports
    type: Port
    range: {{start: 8000, end: 8100}}
    dynamicFrom: 8050
  - name: previews
    type: Domain
    baseDomain: preview.example.com
  - name: volumes
    type: Volume
    resources: [{{name: vol-a, capacity: 2}}]
  - name: team-b-ports
    type: Port
    range: {{start: 9000, end: 9010}}
    namespaces: [team-b]
  - name: labelled-ports
    type: Port
    range: {{start: 9100, end: 9110}}
    namespaceSelector: {{matchLabels: {{team: b}}}}
  - name: own-ports
    type: Port
    range: {{start: 9200, end: 9210}}
    namespaces: [team-b, {ns}]
"#
            )
        })
    }

    fn claims(&self) -> Api<SharedResourceClaim> {
        Api::namespaced(self.cp.client(), &self.ns)
    }

    async fn create(&self, name: &str, spec: serde_json::Value) {
        let claim: SharedResourceClaim = serde_json::from_value(json!({
            "apiVersion": "switchyard.dev/v1alpha1", "kind": "SharedResourceClaim",
            "metadata": {"name": name}, "spec": spec
        }))
        .expect("claim");
        self.claims().create(&PostParams::default(), &claim).await.expect("create claim");
    }

    async fn status_of(&self, name: &str) -> Option<(ClaimPhase, Option<String>, String)> {
        let claim = self.claims().get_opt(name).await.ok()??;
        let status = claim.status?;
        let reason = conditions::get(&status.conditions, conditions::READY)?.reason.clone();
        Some((status.phase?, status.value, reason))
    }

    async fn wait_phase(&self, name: &str, phase: ClaimPhase) -> (Option<String>, String) {
        let result = wait_for(TIMEOUT, format!("{name} to be {phase:?}"), || async {
            self.status_of(name).await.filter(|(p, _, _)| *p == phase).map(|(_, v, r)| (v, r))
        })
        .await;
        match result {
            Ok(found) => found,
            Err(e) => panic!("{e}: last status {:?}", self.status_of(name).await),
        }
    }

    async fn all_claims(&self) -> Vec<SharedResourceClaim> {
        self.claims().list(&ListParams::default()).await.expect("list").items
    }
}

fn phase(c: &SharedResourceClaim) -> Option<ClaimPhase> {
    c.status.as_ref()?.phase
}

#[tokio::test]
async fn a_second_value_held_for_one_claim_is_given_back() {
    use switchyard::logic::allocation::{RECORD_ANNOTATION, ValueRecord, lease_name};
    let s = Setup::new("double", 13).await;
    let _operator = s.operator();
    s.create("c", json!({"type": "RedisDatabase", "pool": "redis"})).await;
    let (value, _) = s.wait_phase("c", ClaimPhase::Bound).await;
    let value = value.expect("value");
    // What two writers racing for one new claim leave behind: another value's
    // record that also names this claim as its holder.
    let leases: Api<Lease> = Api::namespaced(s.cp.client(), &s.ns);
    let own = s.claims().get("c").await.unwrap().status.unwrap().lease.expect("lease");
    let mut extra = leases.get(&own).await.unwrap();
    let other = if value == "12" { "11" } else { "12" };
    let mut record: ValueRecord = serde_json::from_str(&extra.annotations()[RECORD_ANNOTATION]).unwrap();
    record.value = other.into();
    let extra_name = lease_name("redis", other);
    extra.metadata = kube::api::ObjectMeta {
        name: Some(extra_name.clone()),
        labels: extra.metadata.labels.clone(),
        annotations: Some([(RECORD_ANNOTATION.to_string(), serde_json::to_string(&record).unwrap())].into()),
        ..Default::default()
    };
    leases.create(&PostParams::default(), &extra).await.expect("extra record");
    // The claim's next reconcile (here: a touch) gives back the value its status does not name.
    let touch = json!({"metadata": {"annotations": {"example.com/touched": "1"}}});
    s.claims().patch("c", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&touch)).await.unwrap();
    wait_for(TIMEOUT, "the extra record to be released", || async {
        leases.get_opt(&extra_name).await.map(|l| l.is_none())
    })
    .await
    .expect("released");
    assert_eq!(s.status_of("c").await.map(|(p, v, _)| (p, v)), Some((ClaimPhase::Bound, Some(value))));
    assert!(leases.get_opt(&own).await.unwrap().is_some(), "the value the status names is kept");
}

#[tokio::test]
async fn two_operators_bind_exactly_the_pool_and_rebind_freed_values() {
    // Databases 1-12 are allocatable: 0 is never handed out.
    let s = Setup::new("race", 13).await;
    let a = s.operator();
    let _b = s.operator();
    let names: Vec<String> = (0..200).map(|i| format!("c{i:03}")).collect();
    futures::stream::iter(&names)
        .for_each_concurrent(16, |n| s.create(n, json!({"type": "RedisDatabase", "pool": "redis"})))
        .await;

    let settled = |bound_target: usize| {
        let s = &s;
        move || async move {
            let claims = s.all_claims().await;
            let bound = claims.iter().filter(|c| phase(c) == Some(ClaimPhase::Bound)).count();
            let pending = claims
                .iter()
                .filter(|c| {
                    phase(c) == Some(ClaimPhase::Pending)
                        && c.status
                            .as_ref()
                            .and_then(|st| conditions::get(&st.conditions, "Ready"))
                            .map(|r| r.reason.as_str())
                            == Some("PoolExhausted")
                })
                .count();
            if bound == bound_target && bound + pending == claims.len() {
                return Ok(Some(claims));
            }
            // Named in the timeout message: which claims are neither.
            let others: Vec<String> = claims
                .iter()
                .filter(|c| phase(c) != Some(ClaimPhase::Bound))
                .filter_map(|c| {
                    let ready = c.status.as_ref().and_then(|st| conditions::get(&st.conditions, "Ready"));
                    let reason = ready.map(|r| r.reason.as_str()).unwrap_or("no Ready condition");
                    (reason != "PoolExhausted").then(|| format!("{} {:?} {reason}", c.name_any(), phase(c)))
                })
                .take(10)
                .collect();
            Err(format!("{bound} Bound, {pending} Pending, of {}; others: {others:?}", claims.len()))
        }
    };
    let claims = wait_for(TIMEOUT, "12 Bound and the rest Pending", settled(12)).await.expect("settled");
    let values: Vec<String> = claims
        .iter()
        .filter(|c| phase(c) == Some(ClaimPhase::Bound))
        .filter_map(|c| c.status.as_ref()?.value.clone())
        .collect();
    let unique: BTreeSet<&String> = values.iter().collect();
    assert_eq!(unique.len(), 12, "a value is held twice: {values:?}");
    assert!(!values.contains(&"0".to_string()), "database 0 was handed out");
    let leases: Api<Lease> = Api::namespaced(s.cp.client(), &s.ns);
    let records = leases.list(&ListParams::default().labels("switchyard.dev/record=allocation")).await.expect("leases");
    assert_eq!(records.items.len(), 12, "one Lease per held value");
    wait_for(TIMEOUT, "pool metrics", || async {
        let (_, text) = a.get("/metrics").await?;
        let want = [
            "switchyard_claims{pool=\"redis\",phase=\"Bound\"} 12",
            "switchyard_claims{pool=\"redis\",phase=\"Pending\"} 188",
            "switchyard_pool_capacity{pool=\"redis\"} 12",
            "switchyard_pool_usage{pool=\"redis\"} 12",
        ];
        want.iter().all(|w| text.lines().any(|l| l == *w)).then_some(())
    })
    .await
    .expect("claims and pool gauges");

    // Free 5 values: exactly 5 waiting claims take them.
    let freed: Vec<String> = claims
        .iter()
        .filter(|c| phase(c) == Some(ClaimPhase::Bound))
        .take(5)
        .map(|c| c.metadata.name.clone().unwrap_or_default())
        .collect();
    for name in &freed {
        s.claims().delete(name, &DeleteParams::default()).await.expect("delete");
    }
    let claims = wait_for(TIMEOUT, "5 freed values rebound", || async {
        let claims = settled(12)().await?.ok_or("not settled")?;
        Ok::<_, String>((claims.len() == 195).then_some(claims))
    })
    .await
    .expect("rebound");
    let rebound: BTreeSet<String> = claims
        .iter()
        .filter(|c| phase(c) == Some(ClaimPhase::Bound))
        .filter_map(|c| c.status.as_ref()?.value.clone())
        .collect();
    assert_eq!(rebound.len(), 12);
}

#[tokio::test]
async fn deleting_a_claim_flushes_exactly_its_redis_database() {
    let s = Setup::new("flush", 8).await;
    let _op = s.operator();
    s.create("cache", json!({"type": "RedisDatabase", "pool": "redis", "reclaimPolicy": "Delete"})).await;
    let (value, _) = s.wait_phase("cache", ClaimPhase::Bound).await;
    let db: u32 = value.expect("value").parse().expect("a database number");
    let client = redis::Client::open(s.redis.url()).expect("client");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
    for target in [0, db, db + 1] {
        let _: () = redis::pipe()
            .cmd("SELECT")
            .arg(target)
            .cmd("SET")
            .arg("k")
            .arg("v")
            .cmd("SET")
            .arg("k2")
            .arg("v")
            .query_async(&mut conn)
            .await
            .expect("write keys");
    }
    s.claims().delete("cache", &DeleteParams::default()).await.expect("delete");
    wait_for(TIMEOUT, "the claim to be gone", || async { s.claims().get_opt("cache").await.map(|c| c.is_none()) })
        .await
        .expect("deleted");
    let check = RedisClient::new(s.redis.url());
    assert_eq!(check.key_count(db).await.expect("dbsize"), 0, "the released database still has keys");
    assert_eq!(check.key_count(0).await.expect("dbsize"), 2, "reserved database 0 was touched");
    assert_eq!(check.key_count(db + 1).await.expect("dbsize"), 2, "the neighbouring database was touched");
}

#[tokio::test]
async fn retained_redis_database_keeps_its_keys() {
    let s = Setup::new("retain", 8).await;
    let _op = s.operator();
    s.create("keep", json!({"type": "RedisDatabase", "pool": "redis", "value": "3", "reclaimPolicy": "Retain"})).await;
    s.wait_phase("keep", ClaimPhase::Bound).await;
    let client = redis::Client::open(format!("{}/3", s.redis.url())).expect("client");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
    let _: () = redis::cmd("SET").arg("k").arg("v").query_async(&mut conn).await.expect("set");
    s.claims().delete("keep", &DeleteParams::default()).await.expect("delete");
    wait_for(TIMEOUT, "the claim to be gone", || async { s.claims().get_opt("keep").await.map(|c| c.is_none()) })
        .await
        .expect("deleted");
    assert_eq!(RedisClient::new(s.redis.url()).key_count(3).await.expect("dbsize"), 1);
}

#[tokio::test]
async fn conflicting_exclusive_claim_names_the_holder_then_binds_when_freed() {
    let s = Setup::new("conflict", 4).await;
    let _op = s.operator();
    s.create("first", json!({"type": "Port", "pool": "ports", "value": "8080"})).await;
    assert_eq!(s.wait_phase("first", ClaimPhase::Bound).await.0.as_deref(), Some("8080"));
    s.create("second", json!({"type": "Port", "pool": "ports", "value": "8080"})).await;
    s.wait_phase("second", ClaimPhase::Conflicted).await;
    let holder = s.claims().get("second").await.expect("get").status.and_then(|st| st.holder);
    assert_eq!(holder, Some(format!("{}/first", s.ns)));
    s.claims().delete("first", &DeleteParams::default()).await.expect("delete");
    assert_eq!(s.wait_phase("second", ClaimPhase::Bound).await.0.as_deref(), Some("8080"));
}

#[tokio::test]
async fn reassign_takes_the_next_free_port() {
    let s = Setup::new("reassign", 4).await;
    let _op = s.operator();
    s.create("first", json!({"type": "Port", "pool": "ports", "value": "8080"})).await;
    s.wait_phase("first", ClaimPhase::Bound).await;
    s.create("second", json!({"type": "Port", "pool": "ports", "value": "8080", "conflictPolicy": "Reassign"})).await;
    let (value, _) = s.wait_phase("second", ClaimPhase::Bound).await;
    assert_eq!(value.as_deref(), Some("8081"));
    let resolution = s.claims().get("second").await.expect("get").status.and_then(|st| st.resolution);
    assert!(resolution.is_some_and(|r| r.contains("8080") && r.contains("8081")));
}

#[tokio::test]
async fn subdomain_separation_gives_a_distinct_label() {
    let s = Setup::new("subdomain", 4).await;
    let _op = s.operator();
    s.create("first", json!({"type": "Domain", "pool": "previews", "value": "shop"})).await;
    assert_eq!(s.wait_phase("first", ClaimPhase::Bound).await.0.as_deref(), Some("shop.preview.example.com"));
    s.create(
        "second",
        json!({"type": "Domain", "pool": "previews", "value": "shop", "conflictPolicy": "SubdomainSeparate"}),
    )
    .await;
    assert_eq!(s.wait_phase("second", ClaimPhase::Bound).await.0.as_deref(), Some("shop-2.preview.example.com"));
}

#[tokio::test]
async fn claim_with_ttl_expires_and_releases_its_value() {
    let s = Setup::new("ttl", 4).await;
    let _op = s.operator();
    s.create("short", json!({"type": "Port", "pool": "ports", "value": "8090", "ttl": "10s"})).await;
    s.wait_phase("short", ClaimPhase::Bound).await;
    let expires = s.claims().get("short").await.expect("get").status.and_then(|st| st.expires_at);
    assert!(expires.is_some(), "a claim with a ttl shows expiresAt");
    s.wait_phase("short", ClaimPhase::Expired).await;
    // The value is free again: another claim takes it.
    s.create("next", json!({"type": "Port", "pool": "ports", "value": "8090"})).await;
    assert_eq!(s.wait_phase("next", ClaimPhase::Bound).await.0.as_deref(), Some("8090"));
}

#[tokio::test]
async fn shared_value_admits_up_to_its_capacity() {
    let s = Setup::new("capacity", 4).await;
    let _op = s.operator();
    for name in ["a", "b", "c"] {
        s.create(name, json!({"type": "Volume", "pool": "volumes", "value": "vol-a", "mode": "Shared"})).await;
    }
    let claims = wait_for(TIMEOUT, "2 Bound and 1 Conflicted", || async {
        let claims = s.all_claims().await;
        let bound = claims.iter().filter(|c| phase(c) == Some(ClaimPhase::Bound)).count();
        let conflicted = claims.iter().filter(|c| phase(c) == Some(ClaimPhase::Conflicted)).count();
        (bound == 2 && conflicted == 1).then_some(claims)
    })
    .await
    .expect("capacity respected");
    assert_eq!(claims.len(), 3);
}

#[tokio::test]
async fn a_pool_serves_only_the_namespaces_it_names() {
    let s = Setup::new("pool-ns", 4).await;
    let _op = s.operator();
    s.create("by-name", json!({"type": "Port", "pool": "team-b-ports"})).await;
    s.create("by-label", json!({"type": "Port", "pool": "labelled-ports"})).await;
    s.create("mine", json!({"type": "Port", "pool": "own-ports"})).await;
    for name in ["by-name", "by-label"] {
        let message = wait_for(TIMEOUT, format!("{name} Stalled with NamespaceNotAllowed"), || async {
            let claim = s.claims().get(name).await.ok()?;
            let status = claim.status?;
            let stalled = conditions::get(&status.conditions, conditions::STALLED)?.clone();
            (stalled.status == "True" && stalled.reason == "NamespaceNotAllowed" && status.value.is_none())
                .then_some(stalled.message)
        })
        .await
        .expect("stalled");
        assert!(message.starts_with("spec.pool:") && message.contains(&s.ns), "{message}");
    }
    let (value, _) = s.wait_phase("mine", ClaimPhase::Bound).await;
    assert_eq!(value.as_deref(), Some("9200"), "a namespace the pool names is served");
}

#[tokio::test]
async fn unknown_pool_and_out_of_range_value_stall_with_a_reason() {
    let s = Setup::new("stall", 4).await;
    let _op = s.operator();
    s.create("nopool", json!({"type": "Port", "pool": "nowhere"})).await;
    s.create("outside", json!({"type": "Port", "pool": "ports", "value": "9999"})).await;
    s.create("wrongtype", json!({"type": "Network", "pool": "ports"})).await;
    for (name, reason) in [("nopool", "UnknownPool"), ("outside", "ValueOutOfRange"), ("wrongtype", "PoolTypeMismatch")]
    {
        wait_for(TIMEOUT, format!("{name} Stalled with {reason}"), || async {
            let claim = s.claims().get(name).await.ok()?;
            let stalled = conditions::get(&claim.status?.conditions, conditions::STALLED)?.clone();
            (stalled.status == "True" && stalled.reason == reason).then_some(())
        })
        .await
        .expect("stalled");
    }
}

#[tokio::test]
async fn claim_owned_by_a_live_preview_environment_is_released_only_after_it() {
    let s = Setup::new("inuse", 6).await;
    let _op = s.operator();
    let envs: Api<api::PreviewEnvironment> = Api::namespaced(s.cp.client(), &s.ns);
    let env: api::PreviewEnvironment = serde_json::from_value(json!({
        "apiVersion": "switchyard.dev/v1alpha1", "kind": "PreviewEnvironment",
        "metadata": {"name": "pr-1"},
        "spec": {"repository": "acme/shop", "pullRequest": 1, "branch": "b", "project": "shop",
                 "className": "none", "deletionPolicy": "Orphan"}
    }))
    .expect("env");
    let env = envs.create(&PostParams::default(), &env).await.expect("create env");
    let claim: SharedResourceClaim = serde_json::from_value(json!({
        "apiVersion": "switchyard.dev/v1alpha1", "kind": "SharedResourceClaim",
        "metadata": {"name": "pr-1-redis", "ownerReferences": [{
            "apiVersion": "switchyard.dev/v1alpha1", "kind": "PreviewEnvironment", "name": "pr-1",
            "uid": env.metadata.uid.clone().expect("uid"), "blockOwnerDeletion": true}]},
        "spec": {"type": "RedisDatabase", "pool": "redis"}
    }))
    .expect("claim");
    s.claims().create(&PostParams::default(), &claim).await.expect("create claim");
    s.wait_phase("pr-1-redis", ClaimPhase::Bound).await;

    s.claims().delete("pr-1-redis", &DeleteParams::default()).await.expect("delete claim");
    wait_for(TIMEOUT, "the claim to report it is in use", || async {
        let claim = s.claims().get("pr-1-redis").await.ok()?;
        let reconciling = conditions::get(&claim.status?.conditions, conditions::RECONCILING)?.clone();
        (reconciling.reason == "InUse").then_some(())
    })
    .await
    .expect("InUse");
    let leases: Api<Lease> = Api::namespaced(s.cp.client(), &s.ns);
    let held = leases.list(&ListParams::default().labels("switchyard.dev/record=allocation")).await.expect("leases");
    assert_eq!(held.items.len(), 1, "the value was released while its environment lives");

    envs.delete("pr-1", &DeleteParams::default()).await.expect("delete env");
    wait_for(TIMEOUT, "the claim and its Lease to be gone", || async {
        let claim_gone = s.claims().get_opt("pr-1-redis").await.ok()?.is_none();
        let leases = leases.list(&ListParams::default().labels("switchyard.dev/record=allocation")).await.ok()?;
        (claim_gone && leases.items.is_empty()).then_some(())
    })
    .await
    .expect("released after the environment");
}
