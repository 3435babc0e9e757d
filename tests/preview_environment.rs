//! PreviewEnvironment against the real control plane, the Forge simulator backed by
//! a real MariaDB, a real redis-server and real `switchyard run` processes.

mod preview_support;
mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use preview_support::{Live, SNAPSHOT, StatusLog, TIMEOUT, TOKEN, World};
use redis::AsyncCommands;
use switchyard::forge::{ForgeApi, ForgeClientConfig, ForgeToken, HttpForgeClient, RateLimit};
use switchyard_sim::forge::faults::{FaultAction, FaultSpec};
use switchyard_testenv::wait_for;

fn client(world: &World) -> HttpForgeClient {
    let mut config = ForgeClientConfig::new(world.forge.base_url(), "demo", ForgeToken::new(TOKEN));
    config.rate_limit = RateLimit::new(100_000, Duration::from_secs(60));
    HttpForgeClient::new(config).expect("client")
}

async fn redis_keys(world: &World, db: i64) -> usize {
    let client = redis::Client::open(format!("{}/{db}", world.redis.url())).expect("redis url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
    let size: usize = redis::cmd("DBSIZE").query_async(&mut conn).await.expect("dbsize");
    size
}

fn one_each(live: &Live, domain: &str, database: &str, workers: usize) {
    assert_eq!(live.sites.get(domain), Some(&1), "exactly one site {domain}: {live:?}");
    assert_eq!(live.databases.get(database), Some(&1), "exactly one schema {database}: {live:?}");
    assert_eq!(live.users.get(database), Some(&1), "exactly one user {database}: {live:?}");
    assert_eq!(live.workers.get(domain), Some(&workers), "worker set of {domain}: {live:?}");
}

#[tokio::test]
async fn apply_converges_to_ready_and_delete_removes_everything() {
    let world = World::new("pe-life").await;
    let operator = world.operator();
    world.create(world.manifest("pr-7", 7)).await;
    let env = world.wait_ready("pr-7").await;
    let status = env.status.clone().expect("status");
    assert_eq!(status.url.as_deref(), Some("https://pr-7.preview.example.com"));
    assert_eq!(status.database_name.as_deref(), Some("pr_7_shop"));
    for step in ["DatabaseReady", "SiteReady", "EnvironmentReady", "WorkersReady", "CertificateReady", "Deployed"] {
        let c = switchyard::api::conditions::get(&status.conditions, step).unwrap_or_else(|| panic!("{step} missing"));
        assert_eq!(c.status, "True", "{step}: {c:?}");
    }
    assert_eq!(status.last_deployment.as_ref().map(|d| d.status.as_str()), Some("finished"));
    assert_eq!(status.last_deployment.as_ref().and_then(|d| d.sha.as_deref()), Some("abc1234"));

    // Exactly one of everything on Forge.
    let live = world.live();
    one_each(&live, "pr-7.preview.example.com", "pr_7_shop", 2);
    assert_eq!(live.certificates, 1);

    // The database holds the snapshot's rows, its view and its trigger.
    assert_eq!(world.table_checksums("pr_7_shop").await, world.table_checksums(SNAPSHOT).await);
    let views =
        world.mariadb.query("SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA='pr_7_shop'").unwrap();
    assert_eq!(views, vec![vec!["big_orders".to_string()]]);
    let triggers = world
        .mariadb
        .query("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='pr_7_shop'")
        .unwrap();
    assert_eq!(triggers, vec![vec!["orders_audit".to_string()]]);

    // The .env carries the generated credentials, the Redis database and the spec's entries.
    let forge = client(&world);
    let site = status.site_id.expect("site id") as u64;
    let dotenv = forge.get_environment(1, site).await.expect("env");
    let secret = Api::<Secret>::namespaced(world.cp.client(), &world.ns).get("pr-7-credentials").await.expect("secret");
    let password = String::from_utf8(secret.data.unwrap()["database-password"].0.clone()).unwrap();
    let redis_db = status.redis_database.expect("redis db");
    for line in [
        "DB_DATABASE=pr_7_shop".to_string(),
        "DB_USERNAME=pr_7_shop".to_string(),
        format!("DB_PASSWORD={password}"),
        format!("REDIS_DB={redis_db}"),
        "REDIS_PREFIX=pr_7_shop_".to_string(),
        "APP_URL=https://pr-7.preview.example.com".to_string(),
        "MAIL_PASSWORD=\"m@il pass\"".to_string(),
    ] {
        assert!(dotenv.lines().any(|l| l == line), "{line} missing from the .env");
    }
    // The generated password really opens the cloned database.
    let user_url = format!("mysql://pr_7_shop:{password}@127.0.0.1:{}/pr_7_shop", world.mariadb.port());
    let mut conn = mysql_async::Conn::from_url(user_url).await.expect("the preview user can log in");
    use mysql_async::prelude::Queryable;
    let n: Option<i64> = conn.query_first("SELECT COUNT(*) FROM orders").await.unwrap();
    assert_eq!(n, Some(4));
    conn.disconnect().await.ok();
    // Nothing secret in status or the operator's log.
    let status_json = serde_json::to_string(&status).unwrap();
    assert!(!status_json.contains(&password) && !status_json.contains(TOKEN));
    assert!(!operator.log().contains(&password) && !operator.log().contains(TOKEN), "secret in the operator log");

    // Data in the preview's Redis database goes with it.
    let redis = redis::Client::open(format!("{}/{redis_db}", world.redis.url())).unwrap();
    let mut rc = redis.get_multiplexed_async_connection().await.unwrap();
    let _: () = rc.set("pr_7_shop_cache", "x").await.unwrap();
    assert_eq!(redis_keys(&world, redis_db as i64).await, 1);

    world.delete("pr-7").await;
    world.wait_gone("pr-7").await;
    let live = world.live();
    assert!(live.sites.is_empty() && live.databases.is_empty() && live.users.is_empty(), "{live:?}");
    assert_eq!((live.all_workers, live.certificates), (0, 0), "{live:?}");
    assert!(!world.mariadb.database_exists("pr_7_shop").unwrap(), "database dropped in MariaDB");
    assert!(world.mariadb.database_exists(SNAPSHOT).unwrap(), "the snapshot stays");
    wait_for(TIMEOUT, "the Redis database to be flushed", || async { redis_keys(&world, redis_db as i64).await == 0 })
        .await
        .unwrap();
    drop(operator);
}

#[tokio::test]
async fn crash_at_random_points_leaves_no_duplicate_and_no_orphan() {
    let world = World::new("pe-crash").await;
    let names: Vec<(String, i64)> = (1..=3).map(|i| (format!("pr-{i}"), 100 + i)).collect();
    for (name, number) in &names {
        world.create(world.manifest(name, *number)).await;
    }
    let mut operator = world.operator();
    // Kill -9 at 20 points spread over provisioning, restarting each time.
    let mut rng_state: u64 = 0x5eed_1234_abcd_0001;
    for _ in 0..20 {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        let pause = Duration::from_millis(150 + rng_state % 900);
        // The pause is where the kill lands, not a synchronisation point.
        tokio::time::sleep(pause).await;
        drop(operator);
        operator = world.operator();
    }
    for (name, _) in &names {
        world.wait_ready(name).await;
    }
    let live = world.live();
    for (_, number) in &names {
        one_each(&live, &format!("pr-{number}.preview.example.com"), &format!("pr_{number}_shop"), 2);
    }
    assert_eq!(live.sites.len(), names.len(), "no orphan site: {live:?}");
    assert_eq!(live.databases.len(), names.len(), "no orphan schema: {live:?}");
    assert_eq!(live.all_workers, 2 * names.len(), "no orphan worker: {live:?}");
    assert_eq!(live.certificates, names.len(), "one certificate each: {live:?}");
    for (_, number) in &names {
        assert_eq!(world.table_checksums(&format!("pr_{number}_shop")).await, world.table_checksums(SNAPSHOT).await);
    }
    drop(operator);
}

#[tokio::test]
async fn ten_environments_become_ready_through_injected_faults_without_duplicates() {
    let mut world = World::new("pe-faults").await;
    // Hung requests time out after 5 s, not 30: the same faults, in less wall time.
    world.request_timeout = "5s".into();
    for (status, after) in [(429, false), (500, false), (500, true), (503, true)] {
        let mut fault =
            FaultSpec::new(FaultAction::Status { status, body: None, retry_after: Some(1) }).probability(0.05);
        if after {
            fault = fault.after_processing();
        }
        world.forge.inject_fault(fault);
    }
    world.forge.inject_fault(FaultSpec::new(FaultAction::Hang { ms: Some(40_000) }).probability(0.02));
    let operator = world.operator();
    let names: Vec<(String, i64)> = (1..=10).map(|i| (format!("f-{i}"), 200 + i)).collect();
    for (name, number) in &names {
        let mut manifest = world.manifest(name, *number);
        manifest["spec"]["database"] = serde_json::json!({"strategy": "empty"});
        world.create(manifest).await;
    }
    for (name, _) in &names {
        world.wait_ready(name).await;
    }
    world.forge.clear_faults();
    let faulted = world.forge.requests().iter().filter(|r| r.fault.is_some()).count();
    assert!(faulted > 0, "faults were injected");
    let live = world.live();
    for (_, number) in &names {
        one_each(&live, &format!("pr-{number}.preview.example.com"), &format!("pr_{number}_shop"), 2);
    }
    assert_eq!(live.sites.len(), 10, "{live:?}");
    drop(operator);
}

/// One line of the operator's Prometheus text: the value of the series `name`.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
}

/// A reconcile that keeps failing is one Warning Event named after its error (not
/// one per retry), each failure is recorded with its real duration, and the next
/// failure after a recovery is news again.
#[tokio::test]
async fn a_failing_reconcile_is_one_warning_event_and_a_timed_failure() {
    let mut world = World::new("pe-err").await;
    world.request_timeout = "2s".into();
    world.forge.inject_fault(FaultSpec::new(FaultAction::Status { status: 503, body: None, retry_after: Some(0) }));
    let operator = world.operator();
    let mut manifest = world.manifest("pr-5", 5);
    manifest["spec"]["database"] = serde_json::json!({"strategy": "empty"});
    world.create(manifest).await;
    let failed = r#"switchyard_reconciles_total{kind="PreviewEnvironment",result="ForgeError"}"#;
    let seconds = r#"switchyard_reconcile_duration_seconds_sum{kind="PreviewEnvironment"}"#;
    let (failures, spent) = wait_for(TIMEOUT, "three failed reconciles", || async {
        let text = operator.get("/metrics").await?.1;
        let failures = metric(&text, failed)?;
        (failures >= 3.0).then(|| (failures, metric(&text, seconds).unwrap_or(0.0)))
    })
    .await
    .unwrap();
    // The client retried each 503 before giving up: a failed reconcile took time.
    assert!(spent > 0.0, "{failures} failed reconciles recorded {spent} s");
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(world.cp.client(), &world.ns);
    let warnings = |list: Vec<k8s_openapi::api::events::v1::Event>| -> Vec<k8s_openapi::api::events::v1::Event> {
        list.into_iter()
            .filter(|e| e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some("ForgeError"))
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("pr-5"))
            .collect()
    };
    let published = warnings(events.list(&ListParams::default()).await.unwrap().items);
    assert_eq!(published.len(), 1, "one Event for {failures} failures: {published:?}");
    assert!(published[0].series.is_none(), "published once, not repeated: {:?}", published[0].series);
    let note = published[0].note.clone().unwrap_or_default();
    assert!(note.contains("503") && !note.contains(TOKEN), "{note}");
    world.forge.clear_faults();
    world.wait_ready("pr-5").await;
    drop(operator);
}

#[tokio::test]
async fn failing_certificate_and_deployment_report_and_recover() {
    let world = World::new("pe-fail").await;
    world.forge.inject_fault(FaultSpec::new(FaultAction::CertificateFailure));
    world.forge.inject_fault(FaultSpec::new(FaultAction::DeploymentFailure));
    let operator = world.operator();
    let mut manifest = world.manifest("pr-9", 9);
    manifest["spec"]["database"] = serde_json::json!({"strategy": "empty"});
    world.create(manifest).await;
    let (_, _, message) = {
        world.wait_condition("pr-9", "CertificateReady", "False", Some("CertificateFailed")).await;
        world.condition("pr-9", "CertificateReady").await.unwrap()
    };
    assert!(message.contains("Let's Encrypt failed"), "{message}");
    world.wait_condition("pr-9", "Deployed", "False", Some("DeploymentFailed")).await;
    let ready = world.condition("pr-9", "Ready").await.unwrap();
    assert_eq!(ready.0, "False");
    // Warning Events name both failures.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(world.cp.client(), &world.ns);
    wait_for(TIMEOUT, "Warning events for the failures", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        let reasons: Vec<String> = list
            .items
            .iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .filter_map(|e| e.reason.clone())
            .collect();
        (reasons.contains(&"CertificateFailed".into()) && reasons.contains(&"DeploymentFailed".into())).then_some(())
    })
    .await
    .unwrap();

    world.forge.clear_faults();
    let env = world.wait_ready("pr-9").await;
    let status = env.status.unwrap();
    assert!(status.last_deployment.as_ref().and_then(|d| d.attempts).unwrap_or(0) >= 2);
    assert_eq!(world.live().certificates, 1, "the failed certificate was replaced, not kept");
    drop(operator);
}

#[tokio::test]
async fn out_of_band_site_deletion_is_repaired() {
    let mut world = World::new("pe-drift").await;
    world.requeue = "3s".into();
    let operator = world.operator();
    let mut manifest = world.manifest("pr-11", 11);
    manifest["spec"]["database"] = serde_json::json!({"strategy": "empty"});
    world.create(manifest).await;
    let env = world.wait_ready("pr-11").await;
    let old_site = env.status.unwrap().site_id.unwrap();
    let log = StatusLog::start(&world, "pr-11").await;
    client(&world).delete_site(1, old_site as u64).await.expect("delete site out of band");
    let repaired = log
        .wait_for("a new site to become Ready", |status| {
            let ready = switchyard::api::conditions::is_true(&status.conditions, "Ready");
            (ready && status.site_id.is_some_and(|id| id != old_site)).then(|| status.clone())
        })
        .await;
    let live = world.live();
    one_each(&live, "pr-11.preview.example.com", "pr_11_shop", 2);
    assert!(repaired.last_deployment.is_some());
    // No status written while the site was replaced claimed Ready early.
    assert_eq!(log.ready_with_unready_steps(), Vec::<String>::new());
    let early: Vec<_> = log
        .all()
        .into_iter()
        .filter(|s| switchyard::api::conditions::is_true(&s.conditions, "Ready"))
        .filter(|s| s.site_id != Some(old_site) && s.worker_ids.len() != 2)
        .collect();
    assert!(early.is_empty(), "Ready for the new site before its workers: {early:?}");
    drop(operator);
}

#[tokio::test]
async fn missing_secret_foreign_site_and_foreign_database_stall_and_are_left_alone() {
    let world = World::new("pe-stall").await;
    let operator = world.operator();
    // A site with the environment's domain that switchyard did not create.
    let forge = client(&world);
    let foreign = switchyard::forge::CreateSite::custom_domain("pr-12.preview.example.com", "laravel");
    forge.create_site(1, &foreign).await.expect("foreign site");
    let mut manifest = world.manifest("pr-12", 12);
    manifest["spec"]["database"] = serde_json::json!({"strategy": "empty"});
    world.create(manifest).await;
    world.wait_condition("pr-12", "Stalled", "True", Some("SiteNameTaken")).await;
    assert_eq!(world.live().sites.get("pr-12.preview.example.com"), Some(&1), "the foreign site is left alone");

    let mut manifest = world.manifest("pr-13", 13);
    manifest["spec"]["env"] = serde_json::json!([
        {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "later", "key": "api-key"}}}
    ]);
    world.create(manifest).await;
    let env = world.wait_condition("pr-13", "Stalled", "True", Some("SecretNotFound")).await;
    assert!(env.status.unwrap().site_id.is_none(), "nothing remote before the inputs are complete");
    // Creating the Secret un-stalls it through the Secret watch (no spec change).
    world.secret("later", "api-key", "k-123").await;
    world.wait_ready("pr-13").await;

    // A database with the environment's name that it did not create: not adopted,
    // and not dropped when the environment is deleted.
    let foreign = switchyard::forge::CreateDatabase { name: "pr_14_shop".into(), ..Default::default() };
    forge.create_database(1, &foreign).await.expect("foreign database");
    let mut manifest = world.manifest("pr-14", 14);
    manifest["spec"]["database"] = serde_json::json!({"strategy": "empty"});
    world.create(manifest).await;
    let env = world.wait_condition("pr-14", "Stalled", "True", Some("DatabaseNameTaken")).await;
    let status = env.status.unwrap();
    assert!(status.database_id.is_none() && status.database_name.is_none(), "nothing claimed: {status:?}");
    world.envs().delete("pr-14", &Default::default()).await.unwrap();
    world.wait_gone("pr-14").await;
    let live = world.live();
    assert_eq!(live.databases.get("pr_14_shop"), Some(&1), "the foreign database is left alone: {live:?}");
    assert_eq!(live.users.get("pr_14_shop"), None, "no user was created for it: {live:?}");
    drop(operator);
}

#[tokio::test]
async fn gating_holds_a_dependent_until_its_dependency_is_ready_and_deletes_dependents_first() {
    let world = World::new("pe-gate").await;
    let graph: switchyard::api::RepoDependencyGraph = serde_json::from_value(serde_json::json!({
        "apiVersion": "switchyard.dev/v1alpha1", "kind": "RepoDependencyGraph",
        "metadata": {"name": "platform"},
        "spec": {"repositories": [
            {"name": "acme/shop", "dependsOn": [{"repository": "acme/api"}]},
            {"name": "acme/api"}
        ]}
    }))
    .unwrap();
    Api::<switchyard::api::RepoDependencyGraph>::namespaced(world.cp.client(), &world.ns)
        .create(&Default::default(), &graph)
        .await
        .unwrap();
    let operator = world.operator();
    let gated = |name: &str, number: i64, repository: &str| {
        let mut m = world.manifest(name, number);
        m["spec"]["repository"] = repository.into();
        m["spec"]["project"] = repository.trim_start_matches("acme/").into();
        m["spec"]["stack"] = "s1".into();
        m["spec"]["graphRef"] = serde_json::json!({"name": "platform"});
        m["spec"]["database"] = serde_json::json!({"strategy": "empty"});
        m
    };
    // The API's environment cannot finish: its Secret does not exist yet.
    let mut api = gated("api", 31, "acme/api");
    api["spec"]["env"] =
        serde_json::json!([{"name": "K", "valueFrom": {"secretKeyRef": {"name": "api-later", "key": "k"}}}]);
    world.create(api).await;
    world.create(gated("shop", 32, "acme/shop")).await;
    let shop = world.wait_condition("shop", "DependenciesReady", "False", Some("DependenciesNotReady")).await;
    let message = switchyard::api::conditions::get(&shop.status.as_ref().unwrap().conditions, "DependenciesReady")
        .unwrap()
        .message
        .clone();
    assert!(message.contains("acme/api"), "names what it waits for: {message}");
    // Provisioned, but not deployed while it waits.
    world.wait_condition("shop", "SiteReady", "True", None).await;
    let deployments = world.forge.state().deployments.len();
    assert_eq!(deployments, 0, "nothing deploys before acme/api is Ready");

    world.secret("api-later", "k", "v").await;
    world.wait_ready("api").await;
    let shop = world.wait_ready("shop").await;
    let api_ready_at = world
        .envs()
        .get("api")
        .await
        .unwrap()
        .status
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .last_transition_time
        .0;
    let shop_deployed_at = shop.status.unwrap().last_deployment.unwrap().started_at.unwrap().0;
    assert!(shop_deployed_at >= api_ready_at, "the dependent deployed after its dependency was Ready");

    // Delete both at once: the API's environment stays until the shop's is gone.
    world.delete("api").await;
    world.delete("shop").await;
    wait_for(TIMEOUT, "shop to be gone, api still present until then", || async {
        let shop = world.envs().get_opt("shop").await.unwrap();
        let api = world.envs().get_opt("api").await.unwrap();
        assert!(!(api.is_none() && shop.is_some()), "api was deleted before its dependent");
        shop.is_none()
    })
    .await
    .unwrap();
    world.wait_gone("api").await;
    drop(operator);
}

#[tokio::test]
async fn spec_changes_apply_and_redeploy_and_a_deleted_worker_comes_back() {
    let mut world = World::new("pe-change").await;
    world.requeue = "3s".into();
    let operator = world.operator();
    let mut manifest = world.manifest("pr-21", 21);
    manifest["spec"]["database"] = serde_json::json!({"strategy": "empty"});
    world.create(manifest).await;
    let first = world.wait_ready("pr-21").await.status.unwrap();
    let first_deployment = first.last_deployment.clone().unwrap();

    // A worker deleted out of band is recreated on the next drift check.
    let forge = client(&world);
    let victim = first.worker_ids[0] as u64;
    let log = StatusLog::start(&world, "pr-21").await;
    forge.delete_background_process(1, victim).await.unwrap();
    log.wait_for("the worker to be recreated", |status| {
        (status.worker_ids.len() == 2
            && !status.worker_ids.contains(&(victim as i64))
            && switchyard::api::conditions::is_true(&status.conditions, "Ready"))
        .then_some(())
    })
    .await;
    assert_eq!(world.live().workers.get("pr-21.preview.example.com"), Some(&2));
    assert_eq!(log.ready_with_unready_steps(), Vec::<String>::new(), "Ready while the worker was reinstalled");

    // Changing an env value rewrites .env and redeploys; dropping a worker removes it.
    let patch = serde_json::json!({"spec": {
        "env": [{"name": "MAIL_HOST", "value": "smtp2.example.com"}],
        "workers": [{"name": "default"}],
        "headSha": "def5678"
    }});
    world.envs().patch("pr-21", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.unwrap();
    let status = wait_for(TIMEOUT, "a redeploy of the new head with the new .env", || async {
        let env = world.envs().get_opt("pr-21").await.ok()??;
        let status = env.status?;
        let d = status.last_deployment.clone()?;
        (d.id != first_deployment.id
            && d.sha.as_deref() == Some("def5678")
            && d.status == "finished"
            && switchyard::api::conditions::is_true(&status.conditions, "Ready")
            && status.observed_generation == env.metadata.generation)
            .then_some(status)
    })
    .await
    .unwrap();
    assert_ne!(status.environment_hash, first.environment_hash);
    let dotenv = forge.get_environment(1, status.site_id.unwrap() as u64).await.unwrap();
    assert!(dotenv.contains("MAIL_HOST=smtp2.example.com") && !dotenv.contains("MAIL_PASSWORD"));
    assert_eq!(world.live().workers.get("pr-21.preview.example.com"), Some(&1));
    drop(operator);
}

#[tokio::test]
async fn orphan_policy_leaves_remote_objects_and_an_unreachable_forge_keeps_the_finalizer() {
    let world = World::new("pe-orphan").await;
    let operator = world.operator();
    let mut orphan = world.manifest("keep", 41);
    orphan["spec"]["database"] = serde_json::json!({"strategy": "empty"});
    orphan["spec"]["deletionPolicy"] = "Orphan".into();
    world.create(orphan).await;
    let mut doomed = world.manifest("doomed", 42);
    doomed["spec"]["database"] = serde_json::json!({"strategy": "empty"});
    world.create(doomed).await;
    world.wait_ready("keep").await;
    world.wait_ready("doomed").await;

    world.delete("keep").await;
    world.wait_gone("keep").await;
    one_each(&world.live(), "pr-41.preview.example.com", "pr_41_shop", 2);

    // Forge down: the finalizer holds the object until teardown can finish.
    world.forge.inject_fault(FaultSpec::new(FaultAction::Status { status: 503, body: None, retry_after: None }));
    world.delete("doomed").await;
    wait_for(TIMEOUT, "teardown attempts against the failing Forge", || async {
        world.forge.requests().iter().filter(|r| r.fault.is_some()).count() >= 10
    })
    .await
    .unwrap();
    let held = world.envs().get("doomed").await.expect("still there while Forge is down");
    assert!(held.metadata.finalizers.unwrap_or_default().iter().any(|f| f == "switchyard.dev/preview-teardown"));
    assert_eq!(world.live().sites.get("pr-42.preview.example.com"), Some(&1));
    world.forge.clear_faults();
    world.wait_gone("doomed").await;
    let live = world.live();
    assert!(
        !live.sites.contains_key("pr-42.preview.example.com") && !live.databases.contains_key("pr_42_shop"),
        "{live:?}"
    );
    drop(operator);
}

#[tokio::test]
async fn ttl_sets_expires_at_and_the_operator_deletes_the_expired_environment() {
    let world = World::new("pe-ttl").await;
    let operator = world.operator();
    let mut manifest = world.manifest("brief", 51);
    manifest["spec"]["database"] = serde_json::json!({"strategy": "empty"});
    manifest["spec"]["ttl"] = "1m".into();
    world.create(manifest).await;
    let env = world.wait_ready("brief").await;
    let created = env.metadata.creation_timestamp.unwrap().0;
    let expires = env.status.unwrap().expires_at.expect("expiresAt").0;
    assert_eq!(expires.duration_since(created).as_secs(), 60);
    world.wait_gone("brief").await;
    assert!(world.live().sites.is_empty(), "expiry tears down like a delete");
    drop(operator);
}
