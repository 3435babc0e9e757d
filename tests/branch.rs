//! Branch against a real apiserver, the real `switchyard run` binary and simulated
//! platform instances over TLS verified against a generated CA.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::Operator;
use switchyard::api::{self, Branch, conditions};
use switchyard_sim::forge::fingerprint;
use switchyard_sim::instance::{InstanceSim, InstanceSimConfig, InstanceSimHandle, Mode, TestPki};
use switchyard_testenv::{ControlPlane, wait_for};

const TIMEOUT: Duration = Duration::from_secs(60);
const CA_SECRET: &str = "instances-ca";

/// A namespace with its own operator, and a CA every simulated instance is signed by.
struct Setup {
    cp: &'static ControlPlane,
    ns: String,
    pki: TestPki,
    operator: Operator,
}

impl Setup {
    async fn new(prefix: &str) -> Self {
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
"#
            )
        });
        let setup = Self { cp, ns, pki, operator };
        setup.secret(CA_SECRET, "ca.crt", &setup.pki.ca_pem.clone()).await;
        setup
    }

    /// A simulated instance over HTTPS accepting `keys`.
    async fn instance(&self, name: &str, keys: &[&str]) -> InstanceSimHandle {
        let config = InstanceSimConfig {
            name: name.into(),
            version: "2.4.1".into(),
            api_keys: keys.iter().map(|k| k.to_string()).collect(),
            tls: Some(self.pki.material()),
            ..Default::default()
        };
        InstanceSim::start(config).await.expect("instance simulator")
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
    let sim = s.instance("top", &[&key]).await;
    s.secret("top-key", "key", &key).await;
    s.create("top", top_spec(&sim.base_url(), "top-key", 3, "1s")).await;

    let reachable = s.wait_condition("top", "Reachable", "True", Some("ProbeSucceeded")).await;
    s.wait_condition("top", "Ready", "True", Some("Reachable")).await;
    let status = s.branches().get("top").await.expect("branch").status.expect("status");
    assert_eq!(status.remote_version.as_deref(), Some("2.4.1"));
    assert!(status.latency_ms.is_some() && status.last_probe_at.is_some() && status.last_success_at.is_some());
    assert!(status.grace_rule.as_deref().is_some_and(|r| r.contains("3 failed probes in a row")), "{status:?}");
    // Probes carried the key and an origin (the simulator refuses them otherwise).
    let probes = sim.requests();
    assert!(probes.iter().any(|r| r.status == 200 && r.origin.as_deref() == Some(sim.base_url().as_str())));
    s.wait_event("top", "Normal", "Reachable").await;

    sim.set_mode(Mode::Flap { status: 503, fail_next: true });
    let before = sim.count("GET", "/api/v1/health");
    wait_for(TIMEOUT, "8 flapping probes", || async {
        let failed = sim.requests().iter().filter(|r| r.injected.is_some()).count();
        sim.count("GET", "/api/v1/health") >= before + 8 && failed >= 4
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
    let sim = s.instance("top", &[&key]).await;
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

#[tokio::test]
async fn a_master_registers_with_its_parent_after_a_rejection_and_again_when_its_key_changes() {
    let s = Setup::new("branch-register").await;
    let top_key = unique_key(&s, "top-key");
    let wrong_top_key = unique_key(&s, "wrong-top-key");
    let eu_key = unique_key(&s, "eu-key");
    let eu_key_2 = unique_key(&s, "eu-key-rotated");
    let top = s.instance("top", &[&top_key]).await;
    let eu = s.instance("eu", &[&eu_key, &eu_key_2]).await;
    s.secret("top-key", "key", &wrong_top_key).await;
    s.secret("eu-key", "key", &eu_key).await;
    s.create("top", top_spec(&top.base_url(), "top-key", 3, "1s")).await;
    let mut eu_spec = top_spec(&eu.base_url(), "eu-key", 3, "1s");
    eu_spec["type"] = json!("Master");
    eu_spec["parentRef"] = json!({"name": "top"});
    s.create("eu", eu_spec).await;

    // The parent refuses the wrong key: not registered, with a Warning, and retried.
    let refused = s.wait_condition("eu", "Registered", "False", Some("RegistrationFailed")).await;
    assert!(refused.message.contains("HTTP 401"), "{refused:?}");
    s.wait_event("eu", "Warning", "RegistrationFailed").await;
    s.wait_condition("eu", "Ready", "False", Some("RegistrationFailed")).await;
    assert!(top.registrations().is_empty());

    // The right key in the parent's Secret: registered, as the parent simulator saw it.
    s.secret("top-key", "key", &top_key).await;
    s.wait_condition("eu", "Registered", "True", Some("Registered")).await;
    let registrations = top.registrations();
    assert_eq!(registrations.len(), 1, "{registrations:?}");
    let r = &registrations[0];
    assert_eq!((r.name.as_str(), r.url.as_str(), r.type_.as_str()), ("eu", eu.base_url().as_str(), "master"));
    assert_eq!(r.api_key, fingerprint(&eu_key));
    assert_eq!(r.registered_with, fingerprint(&top_key));
    assert_eq!(r.origin, eu.base_url(), "the registering instance is the origin");
    s.wait_condition("eu", "Ready", "True", None).await;
    s.wait_event("eu", "Normal", "Registered").await;
    let hash = s.branches().get("eu").await.expect("eu").status.and_then(|st| st.registration_hash);
    assert!(hash.as_deref().is_some_and(|h| h.starts_with("sha256:")), "{hash:?}");
    // The master's probes speak for its parent.
    assert!(eu.requests().iter().any(|q| q.status == 200 && q.origin.as_deref() == Some(top.base_url().as_str())));

    // A rotated key is registered again, once.
    s.secret("eu-key", "key", &eu_key_2).await;
    wait_for(TIMEOUT, "re-registration with the rotated key", || async {
        top.registrations().first().is_some_and(|r| r.times == 2 && r.api_key == fingerprint(&eu_key_2))
    })
    .await
    .expect("re-registered");
    let probes_after = eu.count("GET", "/api/v1/health") + 3;
    wait_for(TIMEOUT, "three more probes", || async { eu.count("GET", "/api/v1/health") >= probes_after })
        .await
        .expect("probes");
    assert_eq!(top.registrations()[0].times, 2, "nothing changed, nothing re-sent");
    let new_hash = s.branches().get("eu").await.expect("eu").status.and_then(|st| st.registration_hash);
    assert_ne!(new_hash, hash);
    s.assert_never_leaked(&[&top_key, &wrong_top_key, &eu_key, &eu_key_2]).await;
}

#[tokio::test]
async fn a_parent_loop_is_stalled_until_broken() {
    let s = Setup::new("branch-loop").await;
    let key = unique_key(&s, "key");
    let sim = s.instance("loop", &[&key]).await;
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
    assert_eq!(sim.registrations().iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), vec!["a"]);
    s.assert_never_leaked(&[&key]).await;
}

#[tokio::test]
async fn missing_credentials_stall_until_the_secret_appears() {
    let s = Setup::new("branch-creds").await;
    let key = unique_key(&s, "late-key");
    let sim = s.instance("late", &[&key]).await;
    // A long interval: only the Secret watch can bring it back within the test's deadline.
    s.create("late", top_spec(&sim.base_url(), "late-key", 3, "5m")).await;
    let stalled = s.wait_condition("late", "Stalled", "True", Some("CredentialsSecretMissing")).await;
    assert!(stalled.message.contains("late-key"), "{stalled:?}");
    s.wait_condition("late", "Reachable", "Unknown", Some("NotProbed")).await;
    s.wait_event("late", "Warning", "CredentialsSecretMissing").await;
    assert_eq!(sim.count("GET", "/api/v1/health"), 0, "not probed without a key");

    s.secret("late-key", "key", &key).await;
    s.wait_condition("late", "Reachable", "True", None).await;
    s.wait_condition("late", "Stalled", "False", None).await;
    s.assert_never_leaked(&[&key]).await;
}

#[tokio::test]
async fn a_branch_that_is_not_accepted_is_never_probed_and_cordoned_is_shown() {
    let s = Setup::new("branch-accept").await;
    let key = unique_key(&s, "key");
    let sim = s.instance("idle", &[&key]).await;
    s.secret("key", "key", &key).await;
    let mut spec = top_spec(&sim.base_url(), "key", 3, "1s");
    spec["accepted"] = json!(false);
    spec["cordoned"] = json!(true);
    s.create("idle", spec).await;
    let reachable = s.wait_condition("idle", "Reachable", "Unknown", Some("NotAccepted")).await;
    assert!(reachable.message.contains("accepted"), "{reachable:?}");
    s.wait_condition("idle", "Ready", "False", Some("NotAccepted")).await;
    s.wait_condition("idle", "Cordoned", "True", None).await;
    assert_eq!(sim.count("GET", "/api/v1/health"), 0, "not probed while not accepted");

    s.branches()
        .patch("idle", &PatchParams::default(), &Patch::Merge(json!({"spec": {"accepted": true}})))
        .await
        .expect("accept");
    let ready = s.wait_condition("idle", "Ready", "True", None).await;
    assert!(ready.message.contains("cordoned"), "{ready:?}");
    // Only probes after acceptance reached the instance.
    assert!(sim.count("GET", "/api/v1/health") >= 1);
}

#[tokio::test]
async fn a_certificate_outside_the_ca_is_refused_unless_verification_is_skipped() {
    let s = Setup::new("branch-tls").await;
    let key = unique_key(&s, "key");
    let sim = s.instance("tls", &[&key]).await;
    s.secret("key", "key", &key).await;
    let other = TestPki::generate(&["127.0.0.1"]).expect("another CA");
    s.secret("other-ca", "ca.crt", &other.ca_pem).await;
    let mut spec = top_spec(&sim.base_url(), "key", 1, "1s");
    spec["tls"] = json!({"caSecretRef": {"name": "other-ca", "key": "ca.crt"}});
    s.create("tls", spec).await;
    let refused = s.wait_condition("tls", "Reachable", "False", Some("ProbeFailed")).await;
    assert!(refused.message.to_lowercase().contains("certificate"), "{refused:?}");
    assert_eq!(sim.count("GET", "/api/v1/health"), 0, "no request got past the handshake");

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
