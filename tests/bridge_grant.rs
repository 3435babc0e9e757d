//! BridgeGrant against a real apiserver (with the garbage collector), a real
//! `switchyard run`, and calls made by the real `switchyard bridge call` to the bridge
//! endpoint simulator, which reads the Secret and ConfigMap the operator produced
//! from a directory the way a pod reads its mounted volumes.

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::Operator;
use switchyard::api::{self, BridgeGrant, conditions};
use switchyard::logic::allowlist::{Allowlist, CONFIG_MAP_KEY};
use switchyard::logic::identifier::Identifier;
use switchyard_testenv::{ControlPlane, wait_for};

const TIMEOUT: Duration = Duration::from_secs(60);

/// A namespace, an operator watching it, and one target's bridge endpoint.
struct Setup {
    cp: &'static ControlPlane,
    ns: String,
    operator: Operator,
    /// What the target's pod has mounted.
    mount: tempfile::TempDir,
    /// Secret files of callers and request bodies.
    files: tempfile::TempDir,
    sim: support::bridge::BridgeInstance,
}

/// What `switchyard bridge call` did.
#[derive(Debug)]
struct Outcome {
    code: Option<i32>,
    body: Value,
    stderr: String,
}

impl Outcome {
    /// `ok` for an accepted call, else the endpoint's error kind.
    fn kind(&self) -> &str {
        if self.body["ok"] == json!(true) { "ok" } else { self.body["error"].as_str().unwrap_or("<no error kind>") }
    }
}

impl Setup {
    async fn new(prefix: &str) -> Self {
        let cp = ControlPlane::shared().await.expect("control plane");
        cp.apply_crds(&api::all_crds()).await.expect("CRDs");
        let ns = cp.create_unique_namespace(prefix).await.expect("namespace");
        let config_ns = ns.clone();
        let operator = Operator::start(cp, move |port| {
            format!(
                "server: {{listen: \"127.0.0.1:{port}\"}}\nleaderElection: {{enabled: false}}\n\
                 controller: {{namespace: {config_ns}, systemNamespace: {config_ns}}}\n"
            )
        });
        let mount = tempfile::tempdir().expect("mount dir");
        let sim = support::bridge::start(mount.path()).await;
        Self { cp, ns, operator, mount, files: tempfile::tempdir().expect("files dir"), sim }
    }

    fn grants(&self) -> Api<BridgeGrant> {
        Api::namespaced(self.cp.client(), &self.ns)
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.cp.client(), &self.ns)
    }

    fn config_maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.cp.client(), &self.ns)
    }

    async fn create(&self, name: &str, spec: Value) {
        let grant: BridgeGrant = serde_json::from_value(json!({
            "apiVersion": "switchyard.dev/v1alpha1", "kind": "BridgeGrant",
            "metadata": {"name": name}, "spec": spec
        }))
        .expect("grant");
        self.grants().create(&PostParams::default(), &grant).await.expect("create grant");
    }

    async fn patch_spec(&self, name: &str, spec: Value) {
        let patch = Patch::Merge(json!({ "spec": spec }));
        self.grants().patch(name, &PatchParams::default(), &patch).await.expect("patch grant");
    }

    /// Waits until the grant reports `Ready` with `reason` for its current generation.
    async fn wait_condition(&self, name: &str, type_: &str, reason: &str) -> BridgeGrant {
        let found = wait_for(TIMEOUT, format!("{name}: {type_}=True ({reason})"), || async {
            let grant = self.grants().get_opt(name).await.ok()??;
            let status = grant.status.as_ref()?;
            let cond = conditions::get(&status.conditions, type_)?;
            let current = status.observed_generation == grant.metadata.generation;
            (current && cond.status == "True" && cond.reason == reason).then_some(grant)
        })
        .await;
        match found {
            Ok(grant) => grant,
            Err(e) => panic!("{e}: {:?}", self.grants().get_opt(name).await.ok().flatten().and_then(|g| g.status)),
        }
    }

    async fn wait_ready(&self, name: &str) -> BridgeGrant {
        self.wait_condition(name, "Ready", "Published").await
    }

    /// The allowlist currently in ConfigMap `name`, once `check` accepts it.
    async fn wait_allowlist(&self, name: &str, what: &str, check: impl Fn(&Allowlist) -> bool) -> Allowlist {
        wait_for(TIMEOUT, format!("allowlist {name}: {what}"), || async {
            let cm = self.config_maps().get_opt(name).await.ok()??;
            let allowlist = Allowlist::from_json(cm.data?.get(CONFIG_MAP_KEY)?).ok()?;
            check(&allowlist).then_some(allowlist)
        })
        .await
        .expect("allowlist")
    }

    /// The grant's Secret data (text values), once `check` accepts it.
    async fn wait_secret(
        &self,
        grant: &str,
        what: &str,
        check: impl Fn(&BTreeMap<String, String>) -> bool,
    ) -> BTreeMap<String, String> {
        wait_for(TIMEOUT * 2, format!("Secret of {grant}: {what}"), || async {
            let secret = self.secrets().get_opt(&format!("{grant}-bridge-secret")).await.ok()??;
            let data = text_data(&secret);
            check(&data).then_some(data)
        })
        .await
        .expect("secret")
    }

    /// Copies ConfigMap `config_map` and the Secrets of the grants it names into the
    /// mount directory, as the kubelet would.
    async fn sync_mount(&self, config_map: &str) {
        let cm = self.config_maps().get(config_map).await.expect("allowlist ConfigMap");
        let data = cm.data.unwrap_or_default();
        let allowlist = Allowlist::from_json(&data[CONFIG_MAP_KEY]).expect("allowlist JSON");
        let grants: BTreeSet<String> = allowlist.callers.values().flat_map(|e| e.grants.iter().cloned()).collect();
        let mut secrets = BTreeMap::new();
        for grant in grants {
            if let Some(secret) = self.secrets().get_opt(&format!("{grant}-bridge-secret")).await.expect("get secret") {
                let bytes = secret.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
                secrets.insert(grant, bytes);
            }
        }
        support::bridge::write_mount(self.mount.path(), &data, &secrets);
    }

    /// Writes `secret` into a file for `switchyard bridge call --secret-file`.
    fn secret_file(&self, secret: &str) -> PathBuf {
        let path = self.files.path().join(format!("secret-{:016x}", rand_id()));
        std::fs::write(&path, secret).expect("write secret file");
        path
    }

    /// Runs `switchyard bridge call` as `caller` against the endpoint.
    async fn call(&self, caller: &str, command: &str, secret: &Path, extra: &[&str]) -> Outcome {
        let body = self.files.path().join("body.json");
        std::fs::write(&body, br#"{"invoice":42}"#).expect("write body");
        let out = tokio::process::Command::new(BIN)
            .args(["bridge", "call", "--url", &self.sim.base_url(), "--caller", caller, "--command", command])
            .arg("--secret-file")
            .arg(secret)
            .arg("--body-file")
            .arg(&body)
            .args(extra)
            .output()
            .await
            .expect("run switchyard bridge call");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        Outcome {
            code: out.status.code(),
            body: serde_json::from_str(&stdout).unwrap_or(Value::String(stdout)),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn events(&self) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.cp.client(), &self.ns);
        api.list(&ListParams::default()).await.expect("events").items
    }

    async fn wait_event(&self, grant: &str, reason: &str) -> Event {
        wait_for(TIMEOUT, format!("{reason} Event for {grant}"), || async {
            self.events().await.into_iter().find(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(grant)
            })
        })
        .await
        .expect("event")
    }
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn text_data(secret: &Secret) -> BTreeMap<String, String> {
    let data = secret.data.clone().unwrap_or_default();
    data.into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned())).collect()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

fn billing_grant(from: &[&str], commands: &[&str]) -> Value {
    json!({
        "target": "billing@prod",
        "from": from,
        "commands": commands,
        "secret": {"rotationInterval": "720h", "overlap": "1h"}
    })
}

fn allows(allowlist: &Allowlist, caller: &str, command: &str) -> bool {
    switchyard::logic::allowlist::is_allowed(allowlist, &Identifier::parse(caller).expect("caller"), command).is_ok()
}

#[tokio::test]
async fn an_allowed_signed_call_succeeds_and_each_refusal_has_its_own_error() {
    let s = Setup::new("bridge-call").await;
    s.create("billing-from-shop", billing_grant(&["shop@*", "crm@prod"], &["invoices.create"])).await;
    let grant = s.wait_ready("billing-from-shop").await;
    let status = grant.status.clone().expect("status");
    assert_eq!(status.secret_version, Some(1));
    assert_eq!(status.secret_name.as_deref(), Some("billing-from-shop-bridge-secret"));
    assert!(status.rotated_at.is_some() && status.next_rotation_at.is_some());
    let config_map = status.allowlist_config_map.clone().expect("allowlist ConfigMap in status");
    assert!(config_map.starts_with("bridge-allowlist-billing-prod-"), "{config_map}");

    // The Secret: at least 32 random bytes, owned by the grant so the garbage collector removes it.
    let secret = s.secrets().get("billing-from-shop-bridge-secret").await.expect("secret");
    let owner = &secret.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!((owner.kind.as_str(), owner.controller), ("BridgeGrant", Some(true)));
    assert_eq!(owner.uid, grant.metadata.uid.clone().expect("uid"));
    let data = text_data(&secret);
    assert!(data["current"].len() >= 43, "32 bytes in base64url are 43 characters");
    assert_eq!(data["current-version"], "1");
    assert!(!data.contains_key("previous"));

    s.sync_mount(&config_map).await;
    let current = s.secret_file(&data["current"]);
    let ok = s.call("shop@eu", "invoices.create", &current, &[]).await;
    assert_eq!((ok.code, ok.kind()), (Some(0), "ok"), "{ok:?}");
    assert_eq!(ok.body["caller"], "shop@eu");
    assert_eq!(ok.body["command"], "invoices.create");
    assert_eq!(ok.body["keyVersion"], 1, "the version of the mounted secret that matched");
    assert_eq!(ok.body["echo"], r#"{"invoice":42}"#);
    let crm = s.call("crm@prod", "invoices.create", &current, &["--key-version", "1"]).await;
    assert_eq!(crm.kind(), "ok", "{crm:?}");

    let wrong_key = s.secret_file("not-the-grant-secret-0123456789abcdefghijklmn");
    let stale = (unix_now() - 400).to_string();
    let cases = [
        ("erp@prod", "invoices.create", &current, vec![], "UnknownCaller", 403),
        ("shop@eu", "invoices.void", &current, vec![], "CommandNotAllowed", 403),
        ("shop@eu", "invoices.create", &wrong_key, vec![], "BadSignature", 401),
        ("shop@eu", "invoices.create", &current, vec!["--timestamp", &stale], "StaleTimestamp", 401),
    ];
    for (caller, command, key, extra, kind, http) in cases {
        let refused = s.call(caller, command, key, &extra).await;
        assert_eq!((refused.code, refused.kind()), (Some(1), kind), "{caller} {command}: {refused:?}");
        assert!(refused.stderr.contains(&http.to_string()), "{refused:?}");
    }
    let once = s.call("shop@eu", "invoices.create", &current, &["--request-id", "order-42"]).await;
    assert_eq!(once.kind(), "ok", "{once:?}");
    let replayed = s.call("shop@eu", "invoices.create", &current, &["--request-id", "order-42"]).await;
    assert_eq!((replayed.code, replayed.kind()), (Some(1), "Replayed"), "{replayed:?}");

    let outcomes: Vec<String> = s.sim.calls().into_iter().map(|c| c.outcome).collect();
    assert_eq!(
        outcomes,
        ["ok", "ok", "UnknownCaller", "CommandNotAllowed", "BadSignature", "StaleTimestamp", "ok", "Replayed"]
    );
}

#[tokio::test]
async fn deleting_or_narrowing_a_grant_revokes_at_once() {
    let s = Setup::new("bridge-revoke").await;
    s.create("crm-sync", billing_grant(&["crm@prod"], &["orders.sync", "stock.get"])).await;
    s.create("shop-sync", billing_grant(&["shop@*"], &["orders.sync"])).await;
    let crm_grant = s.wait_ready("crm-sync").await;
    s.wait_ready("shop-sync").await;
    let config_map = crm_grant.status.and_then(|st| st.allowlist_config_map).expect("ConfigMap");
    s.wait_allowlist(&config_map, "both grants", |a| {
        allows(a, "crm@prod", "stock.get") && allows(a, "shop@x", "orders.sync")
    })
    .await;
    s.sync_mount(&config_map).await;
    let crm_key = text_data(&s.secrets().get("crm-sync-bridge-secret").await.expect("secret"))["current"].clone();
    let shop_key = text_data(&s.secrets().get("shop-sync-bridge-secret").await.expect("secret"))["current"].clone();
    let (crm_key, shop_key) = (s.secret_file(&crm_key), s.secret_file(&shop_key));
    assert_eq!(s.call("crm@prod", "stock.get", &crm_key, &[]).await.kind(), "ok");
    assert_eq!(s.call("shop@eu", "orders.sync", &shop_key, &[]).await.kind(), "ok");

    // Narrowed: stock.get is revoked, orders.sync stays.
    s.patch_spec("crm-sync", json!({"commands": ["orders.sync"]})).await;
    s.wait_allowlist(&config_map, "crm@prod without stock.get", |a| !allows(a, "crm@prod", "stock.get")).await;
    s.sync_mount(&config_map).await;
    let narrowed = s.call("crm@prod", "stock.get", &crm_key, &[]).await;
    assert_eq!((narrowed.code, narrowed.kind()), (Some(1), "Revoked"), "{narrowed:?}");
    assert!(narrowed.body["message"].as_str().unwrap_or_default().contains("was revoked at"), "{narrowed:?}");
    assert_eq!(s.call("crm@prod", "orders.sync", &crm_key, &[]).await.kind(), "ok");

    // Deleted: the finalizer republishes first, so once the grant is gone the ConfigMap already lacks it.
    s.grants().delete("shop-sync", &DeleteParams::default()).await.expect("delete");
    wait_for(TIMEOUT, "shop-sync gone", || async { s.grants().get_opt("shop-sync").await.map(|g| g.is_none()) })
        .await
        .expect("deleted");
    let cm = s.config_maps().get(&config_map).await.expect("ConfigMap");
    let allowlist = Allowlist::from_json(&cm.data.expect("data")[CONFIG_MAP_KEY]).expect("allowlist");
    assert!(!allows(&allowlist, "shop@eu", "orders.sync"), "revoked before the grant disappeared");
    s.sync_mount(&config_map).await;
    let deleted = s.call("shop@eu", "orders.sync", &shop_key, &[]).await;
    assert_eq!((deleted.code, deleted.kind()), (Some(1), "Revoked"), "{deleted:?}");
    // The garbage collector removes the deleted grant's Secret.
    wait_for(TIMEOUT, "shop-sync's Secret collected", || async {
        s.secrets().get_opt("shop-sync-bridge-secret").await.map(|x| x.is_none())
    })
    .await
    .expect("secret collected");

    // The last grant goes: the ConfigMap stays, listing nobody (deleting it would leave
    // the old content in pods that mount it).
    s.grants().delete("crm-sync", &DeleteParams::default()).await.expect("delete");
    let empty = s.wait_allowlist(&config_map, "nobody allowed", |a| a.callers.is_empty()).await;
    assert!(!empty.revoked.is_empty(), "the revocations are explained");
    s.sync_mount(&config_map).await;
    let last = s.call("crm@prod", "orders.sync", &crm_key, &[]).await;
    assert_eq!(last.kind(), "Revoked", "{last:?}");
    s.wait_event("crm-sync", "Revoked").await;
}

#[tokio::test]
async fn rotation_keeps_the_previous_secret_for_the_overlap_only_and_secrets_never_leak() {
    let s = Setup::new("bridge-rotate").await;
    // The CRD's shortest interval is 1m; the overlap may be shorter.
    let mut spec = billing_grant(&["shop@*"], &["invoices.create"]);
    spec["secret"] = json!({"rotationInterval": "1m", "overlap": "20s"});
    s.create("rotating", spec).await;
    let grant = s.wait_ready("rotating").await;
    let config_map = grant.status.clone().and_then(|st| st.allowlist_config_map).expect("ConfigMap");
    let first =
        s.wait_secret("rotating", "version 1", |d| d.get("current-version").map(String::as_str) == Some("1")).await;
    s.sync_mount(&config_map).await;
    let old_key = s.secret_file(&first["current"]);
    assert_eq!(s.call("shop@eu", "invoices.create", &old_key, &[]).await.kind(), "ok");

    let rotated = s
        .wait_secret("rotating", "version 2 with version 1 as previous", |d| {
            d.get("current-version").map(String::as_str) == Some("2") && d.contains_key("previous")
        })
        .await;
    assert_eq!(rotated["previous"], first["current"]);
    assert_eq!(rotated["previous-version"], "1");
    assert_ne!(rotated["current"], first["current"]);
    let not_after: jiff::Timestamp = rotated["previous-not-after"].parse().expect("not-after");
    let rotated_at: jiff::Timestamp = rotated["current-not-before"].parse().expect("not-before");
    assert_eq!(not_after.duration_since(rotated_at).as_secs(), 20, "previous kept for the overlap");
    s.sync_mount(&config_map).await;
    let new_key = s.secret_file(&rotated["current"]);
    let during_old = s.call("shop@eu", "invoices.create", &old_key, &[]).await;
    assert_eq!(during_old.kind(), "ok", "the previous secret works during the overlap: {during_old:?}");
    assert!(jiff::Timestamp::now() < not_after, "the check above ran inside the overlap");
    assert_eq!(s.call("shop@eu", "invoices.create", &new_key, &[]).await.kind(), "ok");
    s.wait_event("rotating", "SecretRotated").await;
    let grant = s.wait_condition("rotating", "Ready", "Published").await;
    assert_eq!(grant.status.as_ref().and_then(|st| st.secret_version), Some(2));

    let pruned = s.wait_secret("rotating", "previous pruned after the overlap", |d| !d.contains_key("previous")).await;
    assert_eq!(pruned["current"], rotated["current"]);
    s.sync_mount(&config_map).await;
    let after_old = s.call("shop@eu", "invoices.create", &old_key, &[]).await;
    assert_eq!(after_old.kind(), "BadSignature", "{after_old:?}");
    assert_eq!(s.call("shop@eu", "invoices.create", &new_key, &[]).await.kind(), "ok");
    s.wait_event("rotating", "PreviousSecretExpired").await;

    // No secret in the operator's log, any Event, the grant's status or the ConfigMap.
    let secrets = [first["current"].clone(), rotated["current"].clone()];
    let grant = s.grants().get("rotating").await.expect("grant");
    let places = [
        ("operator log", s.operator.log()),
        ("events", serde_json::to_string(&s.events().await).expect("json")),
        ("status", serde_json::to_string(&grant.status).expect("json")),
        ("allowlist", serde_json::to_string(&s.config_maps().get(&config_map).await.expect("cm")).expect("json")),
    ];
    for (place, text) in places {
        assert!(!text.is_empty() || place == "operator log", "{place} is empty");
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a secret appears in the {place}");
        }
    }
    assert!(s.operator.log().contains("leading") || s.operator.log().contains("starting controllers"));
}

#[tokio::test]
async fn network_policy_exists_only_while_the_spec_asks_for_it() {
    let s = Setup::new("bridge-netpol").await;
    let policies: Api<NetworkPolicy> = Api::namespaced(s.cp.client(), &s.ns);
    s.create("plain", billing_grant(&["shop@*"], &["invoices.create"])).await;
    let plain = s.wait_ready("plain").await;
    assert_eq!(plain.status.and_then(|st| st.network_policy), None);
    assert!(policies.get_opt("plain-bridge").await.expect("get").is_none(), "no policy unless asked");

    let mut spec = billing_grant(&["shop@*"], &["invoices.create"]);
    spec["networkPolicy"] =
        json!({"targetPodLabels": {"app": "billing"}, "callerPodLabels": {"bridge-caller": "true"}, "port": 8443});
    s.create("fenced", spec).await;
    let fenced = s.wait_ready("fenced").await;
    assert_eq!(fenced.status.and_then(|st| st.network_policy).as_deref(), Some("fenced-bridge"));
    let policy = policies.get("fenced-bridge").await.expect("policy");
    let spec = serde_json::to_value(policy.spec.expect("spec")).expect("json");
    assert_eq!(spec["podSelector"], json!({"matchLabels": {"app": "billing"}}));
    assert_eq!(spec["ingress"][0]["from"][0]["podSelector"], json!({"matchLabels": {"bridge-caller": "true"}}));
    assert_eq!(spec["ingress"][0]["ports"][0], json!({"port": 8443, "protocol": "TCP"}));
    assert_eq!(policy.metadata.owner_references.expect("owner")[0].name, "fenced");

    // Asked no more: removed.
    let patch = Patch::Merge(json!({"spec": {"networkPolicy": null}}));
    s.grants().patch("fenced", &PatchParams::default(), &patch).await.expect("patch");
    wait_for(TIMEOUT, "fenced-bridge removed", || async {
        policies.get_opt("fenced-bridge").await.map(|p| p.is_none())
    })
    .await
    .expect("removed");
    let fenced = s.wait_ready("fenced").await;
    assert_eq!(fenced.status.and_then(|st| st.network_policy), None);
    s.wait_event("fenced", "NetworkPolicyRemoved").await;
}

#[tokio::test]
async fn objects_in_the_way_stall_the_grant_with_a_warning() {
    let s = Setup::new("bridge-stall").await;
    let foreign: Secret = serde_json::from_value(json!({
        "metadata": {"name": "taken-bridge-secret"}, "stringData": {"current": "someone else's"}
    }))
    .expect("secret");
    s.secrets().create(&PostParams::default(), &foreign).await.expect("foreign secret");
    s.create("taken", billing_grant(&["shop@*"], &["invoices.create"])).await;
    let grant = s.wait_condition("taken", "Stalled", "SecretConflict").await;
    let ready = conditions::get(&grant.status.as_ref().expect("status").conditions, "Ready").expect("Ready").clone();
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "SecretConflict"));
    let event = s.wait_event("taken", "SecretConflict").await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    let untouched = text_data(&s.secrets().get("taken-bridge-secret").await.expect("secret"));
    assert_eq!(untouched["current"], "someone else's", "a Secret the grant does not own is left alone");

    let mine: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "app-config"}, "data": {"x": "1"}})).expect("cm");
    s.config_maps().create(&PostParams::default(), &mine).await.expect("user ConfigMap");
    let mut spec = billing_grant(&["shop@*"], &["invoices.create"]);
    spec["allowlistConfigMap"] = json!("app-config");
    s.create("squatter", spec).await;
    s.wait_condition("squatter", "Stalled", "AllowlistConfigMapConflict").await;
    let cm = s.config_maps().get("app-config").await.expect("cm");
    assert_eq!(cm.data.expect("data").keys().collect::<Vec<_>>(), ["x"], "a user's ConfigMap is not taken over");
}

#[tokio::test]
async fn moving_a_grant_to_another_config_map_takes_it_out_of_the_old_one() {
    let s = Setup::new("bridge-move").await;
    let mut spec = billing_grant(&["shop@*"], &["invoices.create"]);
    spec["allowlistConfigMap"] = json!("billing-bridge-a");
    s.create("mover", spec).await;
    s.wait_ready("mover").await;
    s.wait_allowlist("billing-bridge-a", "shop allowed", |a| allows(a, "shop@eu", "invoices.create")).await;

    s.patch_spec("mover", json!({"allowlistConfigMap": "billing-bridge-b"})).await;
    let moved = s.wait_ready("mover").await;
    assert_eq!(moved.status.and_then(|st| st.allowlist_config_map).as_deref(), Some("billing-bridge-b"));
    s.wait_allowlist("billing-bridge-b", "shop allowed", |a| allows(a, "shop@eu", "invoices.create")).await;
    let old = s.wait_allowlist("billing-bridge-a", "nobody allowed", |a| a.callers.is_empty()).await;
    assert_eq!(old.target.to_string(), "billing@prod");
}
