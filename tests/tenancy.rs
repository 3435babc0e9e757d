//! Multi-team clusters: PreviewClasses chosen by admins, what tenants may not do,
//! and teardown that acts only where an environment recorded acting. Against the
//! real control plane, the Forge simulator over a real MariaDB, and `switchyard run`.

mod preview_support;
mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use preview_support::{TOKEN, World};
use serde_json::json;
use switchyard::forge::{CreateDatabase, ForgeApi, ForgeClientConfig, ForgeToken, HttpForgeClient, RateLimit};
use switchyard_sim::forge::{ForgeSim, ForgeSimConfig, TokenSpec};
use switchyard_testenv::wait_for;

const TIMEOUT: Duration = Duration::from_secs(120);

fn client_for(base_url: String) -> HttpForgeClient {
    let mut config = ForgeClientConfig::new(base_url, "demo", ForgeToken::new(TOKEN));
    config.rate_limit = RateLimit::new(100_000, Duration::from_secs(60));
    HttpForgeClient::new(config).expect("client")
}

/// Forge requests other than the PreviewClass controller's read-only server checks.
fn environment_requests(world: &World) -> Vec<String> {
    acting_requests(&world.forge)
}

fn acting_requests(sim: &switchyard_sim::forge::ForgeSimHandle) -> Vec<String> {
    let requests = sim.requests();
    let acting = requests.iter().filter(|r| !(r.method == "GET" && r.route == "/api/orgs/{org}/servers/{server}"));
    acting.map(|r| format!("{} {}", r.method, r.path)).collect()
}

/// The Warning Events about `name`, as (reason, message).
async fn warnings(world: &World, name: &str) -> Vec<(String, String)> {
    let events: Api<Event> = Api::namespaced(world.cp.client(), &world.ns);
    let list = events.list(&ListParams::default()).await.expect("events");
    list.items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name) && e.type_.as_deref() == Some("Warning"))
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

async fn wait_warning(world: &World, name: &str, reason: &str) -> String {
    wait_for(TIMEOUT, format!("a Warning {reason} about {name}"), || async {
        warnings(world, name).await.into_iter().find(|(r, _)| r == reason).map(|(_, m)| m)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn teardown_drops_only_the_recorded_servers_database_after_the_class_moves() {
    let world = World::new("tn-swap").await;
    // Another Forge server holding a database with the very name the environment will claim.
    let other = ForgeSim::start(ForgeSimConfig {
        tokens: vec![TokenSpec::all_scopes(TOKEN)],
        async_delay: Duration::from_millis(50),
        rate_limit: 100_000,
        rate_window: Duration::from_secs(60),
        ..Default::default()
    })
    .await
    .expect("second forge");
    let other_forge = client_for(other.base_url());
    let precious = CreateDatabase { name: "pr_21_shop".into(), ..Default::default() };
    other_forge.create_database(1, &precious).await.expect("the other server's database");
    other.clear_requests();

    let operator = world.operator();
    let mut manifest = world.manifest("pr-21", 21);
    manifest["spec"]["database"] = json!({"strategy": "empty"});
    world.create(manifest).await;
    let env = world.wait_ready("pr-21").await;
    let status = env.status.expect("status");
    let target = status.target.expect("the target is recorded");
    assert_eq!((target.class_name.as_str(), target.server_id), (world.ns.as_str(), 1));
    assert_eq!(target.base_url, world.forge.base_url());
    assert_eq!(status.database_name.as_deref(), Some("pr_21_shop"));
    assert!(world.mariadb.database_exists("pr_21_shop").unwrap());

    // The tenant cannot move the environment: the class is immutable...
    let patch = json!({"spec": {"className": "elsewhere"}});
    let err = world.envs().patch("pr-21", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap_err();
    assert!(err.to_string().contains("className is immutable"), "{err}");
    // ...and no spec field names a server: an unknown field is refused outright.
    let patch = json!({"spec": {"forge": {"serverId": 2}}});
    let strict = PatchParams { field_validation: Some(kube::api::ValidationDirective::Strict), ..Default::default() };
    let err = world.envs().patch("pr-21", &strict, &Patch::Merge(&patch)).await.unwrap_err();
    assert!(err.to_string().contains("forge"), "{err}");
    // The class itself moves to the other server (an admin's edit, or a compromised one).
    let mut moved = world.class_spec(1);
    moved["forge"]["baseUrl"] = json!(other.base_url());
    world.apply_class(&world.ns, moved).await;
    // A reconcile after the move still acts where it was recorded.
    let patch = json!({"spec": {"deploy": {"redeployToken": "after-move"}}});
    world.envs().patch("pr-21", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    world
        .wait_condition("pr-21", "Ready", "True", None)
        .await
        .status
        .and_then(|s| s.target)
        .filter(|t| t.base_url == world.forge.base_url())
        .expect("the recorded target stays");

    world.delete("pr-21").await;
    world.wait_gone("pr-21").await;
    assert!(!world.mariadb.database_exists("pr_21_shop").unwrap(), "the recorded server's database is dropped");
    let survivors: Vec<_> = other
        .state()
        .databases
        .values()
        .filter(|d| d.name == "pr_21_shop" && d.deleted_at.is_none())
        .cloned()
        .collect();
    assert_eq!(survivors.len(), 1, "the other server's same-named database is intact");
    let requests = acting_requests(&other);
    assert!(requests.is_empty(), "the operator acted on nothing of the other server: {requests:?}");
    drop(operator);
    other.shutdown().await;
}

#[tokio::test]
async fn broken_classes_and_forbidden_choices_stall_with_a_reason_and_touch_nothing_remote() {
    let world = World::new("tn-bad").await;
    let operator = world.operator();
    let ns = world.ns.clone();
    // A strict class beside the world's permissive one.
    let mut strict = world.class_spec(1);
    strict["site"] = json!({"phpVersions": ["php84"], "isolation": "Required"});
    strict["deploy"] = json!({});
    strict["limits"] = json!({"maxTtl": "24h"});
    world.apply_class(&format!("{ns}-strict"), strict).await;
    // A class whose token Secret does not exist.
    let mut broken = world.class_spec(1);
    broken["forge"]["tokenSecretRef"]["name"] = json!("no-such-token");
    world.apply_class(&format!("{ns}-broken"), broken).await;
    // One nobody in this namespace may use.
    let mut foreign = world.class_spec(1);
    foreign["namespaces"] = json!(["someone-else"]);
    world.apply_class(&format!("{ns}-foreign"), foreign).await;
    world.forge.clear_requests();

    let cases = [
        ("missing", json!({"className": format!("{ns}-missing")}), "ClassNotFound"),
        ("secretless", json!({"className": format!("{ns}-broken")}), "SecretNotFound"),
        ("foreign", json!({"className": format!("{ns}-foreign")}), "ClassNotAllowed"),
        ("php", json!({"className": format!("{ns}-strict"), "site": {"phpVersion": "php74"}}), "PhpVersionNotAllowed"),
        ("shared-user", json!({"className": format!("{ns}-strict"), "site": {"isolated": false}}), "IsolationRequired"),
        (
            "script",
            json!({"className": format!("{ns}-strict"), "deploy": {"script": "cat ../*/.env"}}),
            "CustomScriptNotAllowed",
        ),
        ("ttl", json!({"className": format!("{ns}-strict"), "ttl": "720h"}), "TtlTooLong"),
        ("snapshot", json!({"database": {"snapshot": "production", "strategy": "clone"}}), "SnapshotNotAllowed"),
    ];
    for (i, (name, overrides, _)) in cases.iter().enumerate() {
        let mut manifest = world.manifest(name, 100 + i as i64);
        for (k, v) in overrides.as_object().unwrap() {
            manifest["spec"][k] = v.clone();
        }
        world.create(manifest).await;
    }
    for (name, _, reason) in &cases {
        let env = world.wait_condition(name, "Stalled", "True", Some(reason)).await;
        let message = wait_warning(&world, name, reason).await;
        let status = env.status.unwrap();
        assert!(status.target.is_none() && status.site_id.is_none(), "{name}: nothing recorded, nothing created");
        assert!(
            message.starts_with("spec.") || *reason == "SecretNotFound",
            "{name}: the message names the field: {message}"
        );
    }
    let requests = environment_requests(&world);
    assert!(requests.is_empty(), "no Forge request for any of them: {requests:?}");
    // Fixing the class's Secret un-stalls its environment without a spec change.
    world.secret("no-such-token", "token", TOKEN).await;
    world.wait_ready("secretless").await;
    // Stalled environments that never acted are deleted without touching Forge.
    for (name, _, _) in &cases[..3] {
        world.delete(name).await;
        world.wait_gone(name).await;
    }
    drop(operator);
}

#[tokio::test]
async fn an_environment_naming_no_class_uses_the_single_default_and_two_defaults_stall() {
    let world = World::new("tn-default").await;
    let operator = world.operator();
    let classes: Api<switchyard::api::PreviewClass> = Api::all(world.cp.client());
    let annotate =
        |value: Option<&str>| json!({"metadata": {"annotations": {"switchyard.dev/is-default-class": value}}});
    let first = world.ns.clone();
    classes.patch(&first, &PatchParams::default(), &Patch::Merge(&annotate(Some("true")))).await.unwrap();
    let second = format!("{first}-second");
    let mut spec = world.class_spec(1);
    spec["namespaces"] = json!([]);
    world.apply_class(&second, spec).await;
    classes.patch(&second, &PatchParams::default(), &Patch::Merge(&annotate(Some("true")))).await.unwrap();

    let mut manifest = world.manifest("classless", 31);
    manifest["spec"].as_object_mut().unwrap().remove("className");
    manifest["spec"]["database"] = json!({"strategy": "empty"});
    world.create(manifest).await;
    let (_, _, message) = world
        .wait_condition("classless", "Stalled", "True", Some("MultipleDefaultClasses"))
        .await
        .status
        .map(|s| {
            let c = switchyard::api::conditions::get(&s.conditions, "Stalled").unwrap().clone();
            (c.status, c.reason, c.message)
        })
        .unwrap();
    assert!(message.contains(&first) && message.contains(&second), "{message}");
    wait_warning(&world, "classless", "MultipleDefaultClasses").await;
    assert!(environment_requests(&world).is_empty(), "nothing remote while the default is ambiguous");

    // The admin keeps one default: the environment proceeds on it and records it.
    classes.patch(&second, &PatchParams::default(), &Patch::Merge(&annotate(None))).await.unwrap();
    let env = world.wait_ready("classless").await;
    assert_eq!(env.status.and_then(|s| s.target).map(|t| t.class_name), Some(first.clone()));
    classes.patch(&first, &PatchParams::default(), &Patch::Merge(&annotate(None))).await.unwrap();
    drop(operator);
}

#[tokio::test]
async fn a_class_reports_its_secrets_token_server_and_environments() {
    let world = World::new("tn-status").await;
    let operator = world.operator();
    let ns = world.ns.clone();
    let classes: Api<switchyard::api::PreviewClass> = Api::all(world.cp.client());
    let mut no_secret = world.class_spec(1);
    no_secret["database"]["adminCredentialsSecretRef"]["name"] = json!("nowhere");
    world.apply_class(&format!("{ns}-nosecret"), no_secret).await;
    let mut no_server = world.class_spec(1);
    no_server["forge"]["serverId"] = json!(99);
    world.apply_class(&format!("{ns}-noserver"), no_server).await;
    world.secret("stale-token", "token", "not-the-token").await;
    let mut bad_token = world.class_spec(1);
    bad_token["forge"]["tokenSecretRef"]["name"] = json!("stale-token");
    world.apply_class(&format!("{ns}-badtoken"), bad_token).await;

    let condition = |name: String, type_: &'static str| {
        let classes = classes.clone();
        async move {
            let class = classes.get_opt(&name).await.ok()??;
            let c = switchyard::api::conditions::get(&class.status?.conditions, type_)?.clone();
            Some((c.status, c.reason, c.message))
        }
    };
    for (name, type_, status, reason) in [
        (ns.clone(), "Ready", "True", "Ready"),
        (format!("{ns}-nosecret"), "SecretsResolved", "False", "SecretNotFound"),
        (format!("{ns}-nosecret"), "Stalled", "True", "SecretNotFound"),
        (format!("{ns}-noserver"), "ServerExists", "False", "ServerNotFound"),
        (format!("{ns}-noserver"), "TokenAccepted", "True", "Accepted"),
        (format!("{ns}-badtoken"), "TokenAccepted", "False", "TokenRejected"),
    ] {
        let found = wait_for(TIMEOUT, format!("{name} {type_}={status} {reason}"), || {
            let fut = condition(name.clone(), type_);
            async move { fut.await.filter(|(s, r, _)| s == status && r == reason) }
        })
        .await
        .unwrap();
        assert!(!found.2.contains("not-the-token"), "no secret in the condition: {}", found.2);
    }
    // The count follows the environments using the class (refreshed when the class is looked at).
    let mut manifest = world.manifest("counted", 41);
    manifest["spec"]["database"] = json!({"strategy": "empty"});
    world.create(manifest).await;
    world.wait_ready("counted").await;
    classes
        .patch(&ns, &PatchParams::default(), &Patch::Merge(&json!({"metadata": {"labels": {"touched": "yes"}}})))
        .await
        .unwrap();
    wait_for(TIMEOUT, "the class to count one environment", || async {
        let class = classes.get(&ns).await.ok()?;
        (class.status?.environments == Some(1)).then_some(())
    })
    .await
    .unwrap();
    drop(operator);
}
