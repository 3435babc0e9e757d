//! Branch against a real apiserver, the real `switchyard run` binary and platform
//! instances written from the cross-branch design (`switchyard-sim instance`: its
//! registry, its middleware's 401/403), over TLS verified against a generated CA.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::Operator;
use switchyard::api::{self, Branch, conditions};
use switchyard_sim::forge::fingerprint;
use switchyard_sim::instance::{Behaviour, InstanceSim, InstanceSimConfig, InstanceSimHandle, Mode, Seed, TestPki};
use switchyard_testenv::{ControlPlane, wait_for};

const TIMEOUT: Duration = Duration::from_secs(60);
const CA_SECRET: &str = "instances-ca";
const HEALTH: &str = "/api/v1/cross-branch/health";
/// The operator config's Branch URL policy most tests run under: https only (the
/// default), and `insecureSkipVerify` allowed for the one test that uses it.
const POLICY: &str = "{allowInsecureSkipVerify: true}";

/// A namespace with its own operator, and a CA every simulated instance is signed by.
struct Setup {
    cp: &'static ControlPlane,
    ns: String,
    pki: TestPki,
    operator: Operator,
}

impl Setup {
    async fn new(prefix: &str) -> Self {
        Self::with_policy(prefix, POLICY).await
    }

    /// A setup whose operator config has `branches: <policy>`.
    async fn with_policy(prefix: &str, policy: &str) -> Self {
        let policy = policy.to_string();
        let cp = ControlPlane::shared().await.expect("control plane");
        cp.apply_crds(&api::all_crds()).await.expect("CRDs");
        let ns = cp.create_unique_namespace(prefix).await.expect("namespace");
        let pki = TestPki::generate(&["127.0.0.1", "localhost"]).expect("test PKI");
        let scope = ns.clone();
        let operator = Operator::start(cp, move |port| {
            format!(
                r#"server: {{listen: "127.0.0.1:{port}"}}
leaderElection: {{enabled: false}}
controller: {{namespace: {scope}, systemNamespace: {scope}}}
branches: {policy}
"#
            )
        });
        let setup = Self { cp, ns, pki, operator };
        setup.secret(CA_SECRET, "ca.crt", &setup.pki.ca_pem.clone()).await;
        setup
    }

    /// A design instance over HTTPS with an empty registry.
    async fn instance(&self, name: &str) -> InstanceSimHandle {
        self.instance_with(name, InstanceSimConfig::default()).await
    }

    /// A design instance over HTTPS, otherwise as `config` says.
    async fn instance_with(&self, name: &str, config: InstanceSimConfig) -> InstanceSimHandle {
        let config =
            InstanceSimConfig { name: name.into(), version: "2.4.1".into(), tls: Some(self.pki.material()), ..config };
        InstanceSim::start(config).await.expect("instance simulator")
    }

    async fn create_config_map(&self, name: &str, data: Value) {
        let cm: ConfigMap = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data
        }))
        .expect("config map");
        Api::<ConfigMap>::namespaced(self.cp.client(), &self.ns)
            .patch(name, &PatchParams::apply("branch-test").force(), &Patch::Apply(&cm))
            .await
            .expect("apply config map");
    }

    async fn status(&self, name: &str) -> switchyard::api::branch::BranchStatus {
        self.branches().get(name).await.expect("branch").status.expect("status")
    }

    fn branches(&self) -> Api<Branch> {
        Api::namespaced(self.cp.client(), &self.ns)
    }

    /// Creates or replaces Secret `name` holding `key: value`.
    async fn secret(&self, name: &str, key: &str, value: &str) {
        let secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {key: value}
        }))
        .expect("secret");
        Api::<Secret>::namespaced(self.cp.client(), &self.ns)
            .patch(name, &PatchParams::apply("branch-test").force(), &Patch::Apply(&secret))
            .await
            .expect("apply secret");
    }

    async fn create(&self, name: &str, spec: Value) {
        let branch: Branch = serde_json::from_value(json!({
            "apiVersion": "switchyard.dev/v1alpha1", "kind": "Branch", "metadata": {"name": name}, "spec": spec
        }))
        .expect("branch");
        self.branches().create(&PostParams::default(), &branch).await.expect("create branch");
    }

    async fn condition(&self, name: &str, type_: &str) -> Option<Condition> {
        let branch = self.branches().get_opt(name).await.ok()??;
        conditions::get(&branch.status?.conditions, type_).cloned()
    }

    /// Waits until `type_` has `status` (and `reason`, if given).
    async fn wait_condition(&self, name: &str, type_: &str, status: &str, reason: Option<&str>) -> Condition {
        let result = wait_for(TIMEOUT, format!("{name} {type_}={status} {reason:?}"), || async {
            self.condition(name, type_).await.filter(|c| c.status == status && reason.is_none_or(|r| c.reason == r))
        })
        .await;
        match result {
            Ok(c) => c,
            Err(e) => panic!("{e}: last status {:?}", self.branches().get_opt(name).await.map(|b| b.map(|b| b.status))),
        }
    }

    async fn events(&self, name: &str) -> Vec<Event> {
        let events: Api<Event> = Api::namespaced(self.cp.client(), &self.ns);
        let all = events.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default();
        all.into_iter().filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)).collect()
    }

    async fn wait_event(&self, name: &str, type_: &str, reason: &str) -> Event {
        wait_for(TIMEOUT, format!("{type_} Event {reason} about {name}"), || async {
            self.events(name)
                .await
                .into_iter()
                .find(|e| e.type_.as_deref() == Some(type_) && e.reason.as_deref() == Some(reason))
        })
        .await
        .expect("event")
    }

    async fn has_event(&self, name: &str, reason: &str) -> bool {
        self.events(name).await.iter().any(|e| e.reason.as_deref() == Some(reason))
    }

    async fn metrics(&self) -> String {
        self.operator.get("/metrics").await.map(|(_, body)| body).unwrap_or_default()
    }

    /// No key appears in any Branch (spec or status), any Event or the operator log.
    async fn assert_never_leaked(&self, keys: &[&str]) {
        let branches = self.branches().list(&ListParams::default()).await.expect("list branches");
        let branches = serde_json::to_string(&branches.items).expect("json");
        let events: Api<Event> = Api::namespaced(self.cp.client(), &self.ns);
        let events =
            serde_json::to_string(&events.list(&ListParams::default()).await.expect("events").items).expect("json");
        let log = self.operator.log();
        assert!(!log.is_empty(), "the operator logged something");
        for key in keys {
            assert!(!branches.contains(key), "a key is in a Branch: {branches}");
            assert!(!events.contains(key), "a key is in an Event: {events}");
            assert!(!log.contains(key), "a key is in the operator log");
        }
    }
}

/// A Top branch's spec: probes every second over TLS verified against the test CA.
fn top_spec(url: &str, secret: &str, failure: i32, interval: &str) -> Value {
    json!({
        "url": url, "type": "Top",
        "credentialsSecretRef": {"name": secret, "key": "key"},
        "tls": {"caSecretRef": {"name": CA_SECRET, "key": "ca.crt"}},
        "healthCheck": {"interval": interval, "timeout": "800ms", "failureThreshold": failure, "successThreshold": 1}
    })
}

fn unique_key(setup: &Setup, what: &str) -> String {
    format!("{what}-{}", fingerprint(&setup.ns).trim_start_matches("sha256:"))
}

#[tokio::test]
async fn branch_over_tls_turns_reachable_and_flapping_under_the_thresholds_does_not_flip_it() {
    let s = Setup::new("branch-flap").await;
    let key = unique_key(&s, "top-key");
    let sim = s.instance("top").await;
    s.secret("top-key", "key", &key).await;
    s.create("top", top_spec(&sim.base_url(), "top-key", 3, "1s")).await;

    let reachable = s.wait_condition("top", "Reachable", "True", Some("ProbeSucceeded")).await;
    s.wait_condition("top", "Ready", "True", Some("Reachable")).await;
    let status = s.branches().get("top").await.expect("branch").status.expect("status");
    assert_eq!(status.remote_version.as_deref(), Some("2.4.1"));
    assert!(status.latency_ms.is_some() && status.last_probe_at.is_some() && status.last_success_at.is_some());
    assert!(status.grace_rule.as_deref().is_some_and(|r| r.contains("3 failed probes in a row")), "{status:?}");
    // A Top is its own overseer: registered with its own instance, probed as itself.
    let registered = sim.registration("top").expect("top in its own registry");
    assert_eq!(
        (registered.branch_type.as_str(), registered.api_key.as_str()),
        ("top_branch", fingerprint(&key).as_str())
    );
    let probes = sim.requests();
    assert!(probes.iter().any(|r| r.path == HEALTH
        && r.status == 200
        && r.origin.as_deref() == Some("top")
        && r.key.as_deref() == Some(fingerprint(&key).as_str())));
    s.wait_event("top", "Normal", "Reachable").await;
    // An instance that loses its registry refuses the next probe (403) and gets the
    // registration again.
    assert!(sim.state().deregister("top"));
    wait_for(TIMEOUT, "top registered again", || async { sim.registration("top").is_some() })
        .await
        .expect("re-registered after a 403");
    let refused = sim.requests().iter().any(|r| r.path == HEALTH && r.status == 403);
    assert!(refused, "the probe after the loss was refused");

    sim.set_mode(Mode::Flap { status: 503, fail_next: true });
    let before = sim.count("GET", HEALTH);
    wait_for(TIMEOUT, "8 flapping probes", || async {
        let failed = sim.requests().iter().filter(|r| r.injected.is_some()).count();
        sim.count("GET", HEALTH) >= before + 8 && failed >= 4
    })
    .await
    .expect("probes while flapping");
    let during = s.condition("top", "Reachable").await.expect("Reachable");
    assert_eq!(during.status, "True", "{during:?}");
    assert_eq!(during.last_transition_time, reachable.last_transition_time, "Reachable never flipped");
    assert!(!s.has_event("top", "Unreachable").await, "no Unreachable Event while flapping");
    let metrics = s.metrics().await;
    let up = format!("switchyard_branch_up{{namespace=\"{}\",branch=\"top\"}} 1", s.ns);
    assert!(metrics.contains(&up), "{metrics}");
    assert!(metrics.contains("switchyard_branch_probe_duration_seconds_count{"), "{metrics}");
    s.assert_never_leaked(&[&key]).await;
}

#[tokio::test]
async fn a_sustained_outage_turns_reachable_false_with_a_warning_event_and_deletes_nothing() {
    let s = Setup::new("branch-outage").await;
    let key = unique_key(&s, "top-key");
    let sim = s.instance("top").await;
    s.secret("top-key", "key", &key).await;
    s.create("top", top_spec(&sim.base_url(), "top-key", 3, "1s")).await;
    s.wait_condition("top", "Reachable", "True", None).await;

    sim.set_mode(Mode::Fail { status: 503 });
    let down = s.wait_condition("top", "Reachable", "False", Some("ProbeFailed")).await;
    assert!(down.message.contains("HTTP 503"), "{down:?}");
    let event = s.wait_event("top", "Warning", "Unreachable").await;
    assert!(event.note.unwrap_or_default().contains("HTTP 503"));
    s.wait_condition("top", "Ready", "False", Some("Unreachable")).await;
    let metrics = s.metrics().await;
    assert!(metrics.contains(&format!("switchyard_branch_up{{namespace=\"{}\",branch=\"top\"}} 0", s.ns)));

    // A long outage (twice the threshold and more) deletes nothing.
    wait_for(TIMEOUT, "7 failed probes in a row", || async {
        let branch = s.branches().get_opt("top").await.ok().flatten();
        branch.and_then(|b| b.status).and_then(|st| st.consecutive_failures).is_some_and(|n| n >= 7)
    })
    .await
    .expect("outage goes on");
    assert!(s.branches().get_opt("top").await.expect("get").is_some());
    assert!(Api::<Secret>::namespaced(s.cp.client(), &s.ns).get_opt("top-key").await.expect("get").is_some());

    sim.set_mode(Mode::Healthy);
    s.wait_condition("top", "Reachable", "True", Some("ProbeSucceeded")).await;
    s.wait_condition("top", "Ready", "True", None).await;
    s.assert_never_leaked(&[&key]).await;
}

/// A Master under a Top, both on design instances: `(setup, top, eu, top_key, eu_key)`.
async fn master_under_top(
    prefix: &str,
    top_config: InstanceSimConfig,
) -> (Setup, InstanceSimHandle, InstanceSimHandle, String, String) {
    let s = Setup::new(prefix).await;
    let top_key = unique_key(&s, "top-key");
    let eu_key = unique_key(&s, "eu-key");
    let top = s.instance_with("top", top_config).await;
    let eu = s.instance("eu").await;
    s.secret("top-key", "key", &top_key).await;
    s.secret("eu-key", "key", &eu_key).await;
    s.create("top", top_spec(&top.base_url(), "top-key", 3, "1s")).await;
    (s, top, eu, top_key, eu_key)
}

fn master_spec(url: &str) -> Value {
    let mut spec = top_spec(url, "eu-key", 3, "1s");
    spec["type"] = json!("Master");
    spec["parentRef"] = json!({"name": "top"});
    spec
}

#[tokio::test]
async fn a_master_and_its_parent_are_registered_in_each_others_registries_and_probes_pass_the_middleware() {
    let (s, top, eu, top_key, eu_key) = master_under_top("branch-register", InstanceSimConfig::default()).await;
    s.create("eu", master_spec(&eu.base_url())).await;
    let registered = s.wait_condition("eu", "Registered", "True", Some("Registered")).await;
    assert!(registered.message.contains("parent top"), "{registered:?}");
    s.wait_condition("eu", "Ready", "True", None).await;
    s.wait_event("eu", "Normal", "Registered").await;

    // The Top's registry holds eu with eu's key, as the design's body said it.
    let r = top.registration("eu").expect("eu registered with top");
    assert_eq!((r.branch_url.as_str(), r.branch_type.as_str()), (eu.base_url().as_str(), "master_branch"));
    assert_eq!(r.api_key, fingerprint(&eu_key));
    // eu's registry holds its overseer, top, with top's key: probes speak as top.
    let r = eu.registration("top").expect("top registered with eu");
    assert_eq!((r.branch_url.as_str(), r.branch_type.as_str()), (top.base_url().as_str(), "top_branch"));
    assert_eq!(r.api_key, fingerprint(&top_key));
    assert!(eu.requests().iter().any(|q| q.path == HEALTH
        && q.status == 200
        && q.origin.as_deref() == Some("top")
        && q.key.as_deref() == Some(fingerprint(&top_key).as_str())));
    // Registration carries no credentials: the design keeps it outside the middleware.
    assert!(top.requests().iter().filter(|q| q.path.ends_with("/register-branch")).all(|q| q.key.is_none()));
    let hash = s.status("eu").await.registration_hash;
    assert!(hash.as_deref().is_some_and(|h| h.starts_with("sha256:")), "{hash:?}");

    // The peer refuses calls without the headers or with the wrong key.
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(s.pki.ca_pem.as_bytes()).expect("CA"))
        .build()
        .expect("client");
    let url = format!("{}{HEALTH}", eu.base_url());
    let no_origin = http.get(&url).bearer_auth(&top_key).send().await.expect("answer");
    assert_eq!(no_origin.status().as_u16(), 401);
    let wrong_key = http.get(&url).bearer_auth(&eu_key).header("X-Branch-Origin", "top").send().await.expect("answer");
    assert_eq!(wrong_key.status().as_u16(), 403);

    // A rotated key cannot replace a registration (the design has no such route):
    // the taken name does not accept the new key, and the condition says so.
    let eu_key_2 = unique_key(&s, "eu-key-rotated");
    s.secret("eu-key", "key", &eu_key_2).await;
    let conflict = s.wait_condition("eu", "Registered", "False", Some("RegistrationConflict")).await;
    assert!(conflict.message.contains("does not accept its current key"), "{conflict:?}");
    s.wait_event("eu", "Warning", "RegistrationConflict").await;
    assert_eq!(top.registration("eu").expect("still registered").api_key, fingerprint(&eu_key));
    // Its administrator removes the old entry: registered again, with the new key.
    assert!(top.state().deregister("eu"));
    s.wait_condition("eu", "Registered", "True", Some("Registered")).await;
    assert_eq!(top.registration("eu").expect("registered again").api_key, fingerprint(&eu_key_2));
    assert_ne!(s.status("eu").await.registration_hash, hash);
    s.assert_never_leaked(&[&top_key, &eu_key, &eu_key_2]).await;
}

#[tokio::test]
async fn a_name_registered_with_another_url_is_a_conflict_naming_it_and_a_taken_422_is_confirmed_by_the_key() {
    let squatter = Seed {
        branch_name: "eu".into(),
        branch_url: "https://elsewhere.example.com".into(),
        branch_type: "master_branch".into(),
        api_key: "someone-elses-key".into(),
    };
    let config = InstanceSimConfig { registered: vec![squatter], duplicate_status: 409, ..Default::default() };
    let (s, top, eu, _top_key, eu_key) = master_under_top("branch-conflict", config).await;
    s.create("eu", master_spec(&eu.base_url())).await;
    let conflict = s.wait_condition("eu", "Registered", "False", Some("RegistrationConflict")).await;
    assert!(conflict.message.contains("https://elsewhere.example.com"), "{conflict:?}");
    s.wait_condition("eu", "Ready", "False", Some("RegistrationConflict")).await;
    assert_eq!(top.registration("eu").expect("squatter").branch_url, "https://elsewhere.example.com");

    // On an instance answering Laravel's 422 for a taken name, a registration already
    // holding this name and key is confirmed through the middleware.
    let late = s
        .instance_with(
            "late-top",
            InstanceSimConfig {
                duplicate_status: 422,
                registered: vec![Seed {
                    branch_name: "late".into(),
                    branch_url: "https://127.0.0.1:1".into(),
                    branch_type: "top_branch".into(),
                    api_key: eu_key.clone(),
                }],
                ..Default::default()
            },
        )
        .await;
    let mut spec = top_spec(&late.base_url(), "eu-key", 3, "1s");
    spec["url"] = json!(late.base_url());
    s.create("late", spec).await;
    let ok = s.wait_condition("late", "Registered", "True", None).await;
    assert!(ok.message.contains("own instance"), "{ok:?}");
    assert_eq!(late.registration("late").expect("kept").duplicates, 1, "the 422 was read as taken and confirmed");
}

#[tokio::test]
async fn the_parents_organization_is_pushed_to_its_child_again_on_change_and_the_license_is_checked() {
    let licensed = InstanceSimConfig { licenses: vec!["LIC-1".into()], ..Default::default() };
    let (s, top, eu, top_key, eu_key) = master_under_top("branch-org", licensed).await;
    let users = r#"[{"email":"ada@example.com"},{"email":"grace@example.com"}]"#;
    s.create_config_map("org", json!({"organization": r#"{"slug":"acme"}"#, "users": users, "license": "LIC-1"})).await;
    s.branches()
        .patch(
            "top",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"organizationRef": {"kind": "ConfigMap", "name": "org"}}})),
        )
        .await
        .expect("organizationRef");
    // The child's instance refuses the first pushes: the failure shows and is retried with backoff.
    eu.set_behaviour(Behaviour {
        mode: Mode::FailNext { status: 503, remaining: 2 },
        latency_ms: 0,
        path_prefix: Some("/api/v1/cross-branch/sync-organization".into()),
    });
    let mut spec = master_spec(&eu.base_url());
    spec["licenseCheckInterval"] = json!("2s");
    s.create("eu", spec).await;
    let failed = s.wait_condition("eu", "OrganizationSynced", "False", Some("SyncFailed")).await;
    assert!(failed.message.contains("HTTP 503"), "{failed:?}");
    s.wait_event("eu", "Warning", "OrganizationSyncFailed").await;
    let synced = s.wait_condition("eu", "OrganizationSynced", "True", Some("Synced")).await;
    assert!(synced.message.contains("2 users"), "{synced:?}");
    let syncs = eu.syncs();
    assert_eq!(syncs.len(), 1, "accepted once");
    assert_eq!(syncs[0].origin, "top", "pushed as the parent");
    assert_eq!(syncs[0].payload["organization"]["slug"], "acme");
    assert_eq!(syncs[0].payload["users"].as_array().map(Vec::len), Some(2));
    assert_eq!(syncs[0].payload["license"], "LIC-1");
    let first = s.status("eu").await.organization_sync.expect("organizationSync");
    assert!(first.digest.starts_with("sha256:"));

    // The license, checked by the Master with its parent, as itself.
    s.wait_condition("eu", "LicenseValid", "True", Some("LicenseValid")).await;
    let checks = top.license_checks();
    assert!(checks.iter().all(|c| c.origin == "eu" && c.payload["license"] == "LIC-1"), "{checks:?}");
    // ... again on its schedule without any change.
    let before = top.license_checks().len();
    wait_for(TIMEOUT, "two scheduled license checks", || async { top.license_checks().len() >= before + 2 })
        .await
        .expect("license re-checked");

    // A changed organization is pushed again; a license the Top does not know is invalid.
    s.create_config_map("org", json!({"organization": r#"{"slug":"acme"}"#, "users": "[]", "license": "LIC-2"})).await;
    wait_for(TIMEOUT, "the changed organization pushed", || async { eu.syncs().len() == 2 }).await.expect("re-push");
    assert_eq!(eu.syncs()[1].payload["license"], "LIC-2");
    let second = wait_for(TIMEOUT, "the new digest in status", || async {
        s.status("eu").await.organization_sync.filter(|o| o.digest != first.digest)
    })
    .await
    .expect("digest");
    assert!(second.synced_at.0 >= first.synced_at.0);
    let invalid = s.wait_condition("eu", "LicenseValid", "False", Some("LicenseInvalid")).await;
    assert!(invalid.message.contains("not valid"), "{invalid:?}");
    s.wait_event("eu", "Warning", "LicenseInvalid").await;
    // Nothing changed since: nothing pushed again.
    let probes = eu.count("GET", HEALTH) + 3;
    wait_for(TIMEOUT, "three more probes", || async { eu.count("GET", HEALTH) >= probes }).await.expect("probes");
    assert_eq!(eu.syncs().len(), 2);
    s.assert_never_leaked(&[&top_key, &eu_key]).await;
}

#[tokio::test]
async fn urls_outside_the_policy_are_stalled_before_any_request_and_user_info_is_refused_by_the_apiserver() {
    let s = Setup::with_policy("branch-policy", r#"{allowedUrls: ["https://127.0.0.1:*"]}"#).await;
    let key = unique_key(&s, "key");
    s.secret("key", "key", &key).await;
    let sim = s.instance("policy").await;
    let port = sim.addr().port();

    let cases = [
        ("plain", format!("http://127.0.0.1:{port}"), json!({}), "PlainHTTPNotAllowed"),
        ("elsewhere", format!("https://localhost:{port}"), json!({}), "URLNotAllowed"),
        ("insecure", sim.base_url(), json!({"insecureSkipVerify": true}), "InsecureSkipVerifyNotAllowed"),
    ];
    for (name, url, tls, _) in &cases {
        let mut spec = top_spec(url, "key", 3, "1s");
        spec["tls"] = tls.clone();
        s.create(name, spec).await;
    }
    for (name, _, _, reason) in &cases {
        let stalled = s.wait_condition(name, "Stalled", "True", Some(reason)).await;
        assert!(stalled.message.contains("no request is sent"), "{stalled:?}");
        s.wait_event(name, "Warning", reason).await;
    }
    // The allowed one works next to them, and no refused one sent anything.
    s.create("allowed", top_spec(&sim.base_url(), "key", 3, "1s")).await;
    s.wait_condition("allowed", "Reachable", "True", None).await;
    let origins: Vec<Option<String>> = sim.requests().into_iter().map(|r| r.origin).collect();
    assert!(origins.iter().all(|o| o.as_deref().is_none_or(|o| o == "allowed")), "{origins:?}");
    assert!(sim.registrations().iter().all(|r| r.branch_name == "allowed"));

    let branch: Branch = serde_json::from_value(json!({
        "apiVersion": "switchyard.dev/v1alpha1", "kind": "Branch", "metadata": {"name": "userinfo"},
        "spec": top_spec(&format!("https://user:pw@127.0.0.1:{port}"), "key", 3, "1s")
    }))
    .expect("branch");
    let refused = s.branches().create(&PostParams::default(), &branch).await.expect_err("user info is refused");
    assert!(refused.to_string().contains("user info"), "{refused}");
}

#[tokio::test]
async fn plain_http_works_where_the_operator_config_allows_it() {
    // Loopback simulators over plain http: the config must say so.
    let s = Setup::with_policy("branch-http", "{allowPlainHttp: true}").await;
    let key = unique_key(&s, "key");
    s.secret("key", "key", &key).await;
    let sim = InstanceSim::start(InstanceSimConfig { name: "plain".into(), ..Default::default() }).await.expect("sim");
    assert!(sim.base_url().starts_with("http://"));
    let mut spec = top_spec(&sim.base_url(), "key", 3, "1s");
    spec["tls"] = json!({});
    s.create("plain", spec).await;
    s.wait_condition("plain", "Reachable", "True", None).await;
    s.wait_condition("plain", "Ready", "True", None).await;
}

#[tokio::test]
async fn a_parent_loop_is_stalled_until_broken() {
    let s = Setup::new("branch-loop").await;
    let key = unique_key(&s, "key");
    let sim = s.instance("loop").await;
    s.secret("key", "key", &key).await;
    for (name, parent) in [("a", "b"), ("b", "a")] {
        let mut spec = top_spec(&sim.base_url(), "key", 3, "1s");
        spec["type"] = json!("Master");
        spec["parentRef"] = json!({"name": parent});
        s.create(name, spec).await;
    }
    let stalled = s.wait_condition("a", "Stalled", "True", Some("ParentLoop")).await;
    assert!(stalled.message.contains("a -> b -> a"), "{stalled:?}");
    s.wait_condition("b", "Stalled", "True", Some("ParentLoop")).await;
    s.wait_condition("a", "Ready", "False", Some("ParentLoop")).await;
    s.wait_event("a", "Warning", "ParentLoop").await;
    assert!(sim.registrations().is_empty(), "nothing registers inside a loop");

    // b becomes a root: the loop is gone, a registers with b.
    s.branches()
        .patch("b", &PatchParams::default(), &Patch::Merge(json!({"spec": {"parentRef": null}})))
        .await
        .expect("break the loop");
    s.wait_condition("b", "Stalled", "False", None).await;
    s.wait_condition("a", "Registered", "True", None).await;
    s.wait_condition("a", "Stalled", "False", None).await;
    let mut names: Vec<String> = sim.registrations().into_iter().map(|r| r.branch_name).collect();
    names.sort();
    assert_eq!(names, vec!["a", "b"], "a with its parent b, b with the instance they share");
    s.assert_never_leaked(&[&key]).await;
}

#[tokio::test]
async fn missing_credentials_stall_until_the_secret_appears() {
    let s = Setup::new("branch-creds").await;
    let key = unique_key(&s, "late-key");
    let sim = s.instance("late").await;
    // A long interval: only the Secret watch can bring it back within the test's deadline.
    s.create("late", top_spec(&sim.base_url(), "late-key", 3, "5m")).await;
    let stalled = s.wait_condition("late", "Stalled", "True", Some("CredentialsSecretMissing")).await;
    assert!(stalled.message.contains("late-key"), "{stalled:?}");
    s.wait_condition("late", "Reachable", "Unknown", Some("NotProbed")).await;
    s.wait_event("late", "Warning", "CredentialsSecretMissing").await;
    assert_eq!(sim.count("GET", HEALTH), 0, "not probed without a key");

    s.secret("late-key", "key", &key).await;
    s.wait_condition("late", "Reachable", "True", None).await;
    s.wait_condition("late", "Stalled", "False", None).await;
    s.assert_never_leaked(&[&key]).await;
}

#[tokio::test]
async fn a_branch_that_is_not_accepted_is_never_probed_and_cordoned_is_shown() {
    let s = Setup::new("branch-accept").await;
    let key = unique_key(&s, "key");
    let sim = s.instance("idle").await;
    s.secret("key", "key", &key).await;
    let mut spec = top_spec(&sim.base_url(), "key", 3, "1s");
    spec["accepted"] = json!(false);
    spec["cordoned"] = json!(true);
    s.create("idle", spec).await;
    let reachable = s.wait_condition("idle", "Reachable", "Unknown", Some("NotAccepted")).await;
    assert!(reachable.message.contains("accepted"), "{reachable:?}");
    s.wait_condition("idle", "Ready", "False", Some("NotAccepted")).await;
    s.wait_condition("idle", "Cordoned", "True", None).await;
    assert_eq!(sim.count("GET", HEALTH), 0, "not probed while not accepted");

    s.branches()
        .patch("idle", &PatchParams::default(), &Patch::Merge(json!({"spec": {"accepted": true}})))
        .await
        .expect("accept");
    let ready = s.wait_condition("idle", "Ready", "True", None).await;
    assert!(ready.message.contains("cordoned"), "{ready:?}");
    // Only probes after acceptance reached the instance.
    assert!(sim.count("GET", HEALTH) >= 1);
}

#[tokio::test]
async fn a_certificate_outside_the_ca_is_refused_unless_verification_is_skipped() {
    let s = Setup::new("branch-tls").await;
    let key = unique_key(&s, "key");
    let sim = s.instance("tls").await;
    s.secret("key", "key", &key).await;
    let other = TestPki::generate(&["127.0.0.1"]).expect("another CA");
    s.secret("other-ca", "ca.crt", &other.ca_pem).await;
    let mut spec = top_spec(&sim.base_url(), "key", 1, "1s");
    spec["tls"] = json!({"caSecretRef": {"name": "other-ca", "key": "ca.crt"}});
    s.create("tls", spec).await;
    let refused = s.wait_condition("tls", "Reachable", "False", Some("ProbeFailed")).await;
    assert!(refused.message.to_lowercase().contains("certificate"), "{refused:?}");
    assert_eq!(sim.count("GET", HEALTH), 0, "no request got past the handshake");

    s.branches()
        .patch(
            "tls",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"tls": {"caSecretRef": null, "insecureSkipVerify": true}}})),
        )
        .await
        .expect("skip verification");
    s.wait_condition("tls", "Reachable", "True", None).await;
}
