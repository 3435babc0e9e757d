//! The happy path, each step's waiting, and how quiet passes are once steps settle.

use super::*;
use crate::api::conditions::{RECONCILING, STALLED};

const STEPS: [&str; 6] =
    ["DatabaseReady", "SiteReady", "EnvironmentReady", "WorkersReady", "CertificateReady", "Deployed"];

fn true_(h: &Harness, type_: &str) -> bool {
    h.cond(type_).0 == "True"
}

#[tokio::test]
async fn repeated_passes_converge_to_ready_creating_one_site_database_and_user() {
    let mut h = Harness::new(spec());
    let passes = h.until_ready(5).await;
    assert!(passes <= 3, "took {passes} passes");
    // Drift checks afterwards create nothing more.
    for _ in 0..3 {
        assert!(h.pass().await.requeue() >= REQUEUE);
        assert!(h.is_ready());
    }
    for (method, n) in [
        ("create_site", 1),
        ("create_database", 1),
        ("create_database_user", 1),
        ("put_environment", 1),
        ("create_background_process", 2),
        ("create_domain", 1),
        ("request_certificate", 1),
        ("put_deployment_script", 1),
        ("trigger_deployment", 1),
    ] {
        assert_eq!(h.forge.count(method), n, "{method}");
    }
    assert_eq!(h.forge.count("update_site"), 0);
    for step in STEPS {
        assert!(true_(&h, step), "{step}: {:?}", h.cond(step));
    }
    assert_eq!(h.cond(RECONCILING).0, "False");
    assert_eq!(h.cond(STALLED).0, "False");

    let status = h.status().clone();
    assert_eq!(status.url.as_deref(), Some("https://pr-1.preview.test"));
    assert_eq!(status.database_name.as_deref(), Some(DATABASE));
    assert_eq!(status.database_user.as_deref(), Some(DATABASE));
    assert_eq!(status.last_deployment.as_ref().map(|d| d.status.as_str()), Some("finished"));
    let site = h.forge.site(h.site_id()).expect("site");
    assert_eq!(site.name, DOMAIN);
    assert!(site.tags.contains(&h.owner_tag()), "{:?}", site.tags);
    assert_eq!(site.php_version.as_deref(), Some("php84"));

    // Workers per spec, in the site's directory, started by a user Forge's API allows
    // (root) and running as the isolated user.
    let workers = h.forge.workers(h.site_id());
    let mut commands: Vec<_> = workers.iter().map(|w| (w.command.clone(), w.processes)).collect();
    commands.sort();
    let drop = "setpriv --reuid=pr1_shop --regid=pr1_shop --init-groups --reset-env --";
    assert_eq!(
        commands,
        [
            (format!("{drop} php artisan queue:work redis --queue=default --name=default"), 1),
            (format!("{drop} php artisan queue:work redis --queue=mail --name=mail"), 2),
        ]
    );
    assert!(workers.iter().all(|w| w.user == "root"));
    let mut ids: Vec<i64> = workers.iter().map(|w| w.id as i64).collect();
    ids.sort();
    let mut recorded = status.worker_ids.clone();
    recorded.sort();
    assert_eq!(recorded, ids);

    let env_file = h.forge.environment(h.site_id()).expect(".env written");
    for line in ["APP_URL=https://pr-1.preview.test", "DB_DATABASE=pr_1_shop", "DB_PASSWORD=db-password-1"] {
        assert!(env_file.lines().any(|l| l == line), "{line} missing from:\n{env_file}");
    }
    assert!(env_file.lines().any(|l| l == "MAIL_MAILER=log"));

    let ready = h.cluster.events_named(READY);
    assert_eq!(ready.len(), 1, "one Ready Event: {:?}", h.cluster.events());
    assert!(!ready[0].warning);
    assert!(h.cluster.events().iter().all(|e| !e.warning), "{:?}", h.cluster.events());
}

/// Must fail if Ready could turn True while WorkersReady is Unknown.
#[tokio::test]
async fn ready_stays_false_across_passes_while_workers_are_installing() {
    let mut h = Harness::new(spec());
    h.forge.knobs(|k| k.worker_status = "installing");
    for n in 0..6 {
        let next = h.pass().await.requeue();
        assert!(next < REQUEUE, "pass {n} asked for the drift interval");
        assert_eq!(h.cond("WorkersReady"), ("Unknown".into(), "WorkersInstalling".into()), "pass {n}");
        assert_eq!(h.cond(READY).0, "False", "pass {n}");
        assert!(h.status().url.is_none(), "pass {n}: no URL before Ready");
        h.assert_invariants();
    }
    // Everything else did converge: only the workers hold Ready back.
    for step in STEPS.iter().filter(|s| **s != "WorkersReady") {
        assert!(true_(&h, step), "{step}: {:?}", h.cond(step));
    }
    assert_eq!(h.cond(READY), ("False".into(), "WorkersInstalling".into()));
    assert_eq!(h.cond(RECONCILING).0, "True");
    assert!(h.cluster.events_named(READY).is_empty());
    assert!(h.cluster.writes().iter().all(|w| !conditions::is_true(&w.status.conditions, READY)));

    h.forge.set_workers_status("installed");
    h.pass().await;
    assert!(h.is_ready());
    assert_eq!(h.forge.count("create_background_process"), 2, "waiting never re-creates");
}

#[tokio::test]
async fn an_installing_site_waits_with_site_installing_and_nothing_is_built_on_it_yet() {
    let mut h = Harness::new(spec());
    h.forge.knobs(|k| k.site_status = "installing");
    for _ in 0..3 {
        assert!(h.pass().await.requeue() < REQUEUE);
        assert_eq!(h.cond("SiteReady"), ("Unknown".into(), "SiteInstalling".into()));
        assert_eq!(h.cond(READY), ("False".into(), "SiteInstalling".into()));
    }
    assert_eq!(h.forge.count("create_site"), 1);
    assert!(h.status().site_id.is_some(), "the id is recorded while it installs");
    for method in ["create_background_process", "create_domain", "put_environment", "trigger_deployment"] {
        assert_eq!(h.forge.count(method), 0, "{method} before the site is installed");
    }
    let id = h.site_id();
    h.forge.set_site(id, |s| s.status = "installed".into());
    h.until_ready(4).await;
    assert_eq!(h.forge.count("create_site"), 1);
    assert_eq!(h.site_id(), id);
}

#[tokio::test]
async fn an_installing_database_waits_with_database_provisioning_and_holds_the_env_file() {
    let mut h = Harness::new(spec());
    h.forge.knobs(|k| {
        k.database_status = "installing";
        k.user_status = "installing";
    });
    for _ in 0..3 {
        h.pass().await.requeue();
        assert_eq!(h.cond("DatabaseReady"), ("Unknown".into(), "DatabaseProvisioning".into()));
        assert_eq!(h.cond(READY), ("False".into(), "DatabaseProvisioning".into()));
    }
    assert_eq!(h.forge.count("create_database"), 1);
    assert_eq!(h.forge.count("create_database_user"), 1);
    assert!(h.status().database_id.is_some() && h.status().database_user_id.is_some());
    assert_eq!(h.forge.count("put_environment"), 0, "the .env names the database: it waits for it");
    assert_eq!(h.forge.count("trigger_deployment"), 0);
    h.forge.set_databases_status("installed");
    h.forge.set_database_users_status("installed");
    h.until_ready(4).await;
    assert_eq!(h.forge.count("create_database"), 1);
    assert_eq!(h.forge.count("put_environment"), 1);
}

#[tokio::test]
async fn a_pending_redis_claim_holds_the_env_file_with_waiting_for_redis() {
    let mut s = spec();
    s.redis = Some(crate::api::preview_environment::RedisSettings { pool: Some("redis-main".into()) });
    let mut h = Harness::new(s);
    for _ in 0..3 {
        h.pass().await.requeue();
        assert_eq!(h.cond("EnvironmentReady"), ("Unknown".into(), "WaitingForRedis".into()));
        assert_eq!(h.cond(READY).0, "False");
    }
    assert_eq!(h.forge.count("put_environment"), 0, "no .env without its Redis database");
    assert_eq!(h.forge.count("trigger_deployment"), 0);
    assert!(h.cluster.redis_pools().iter().all(|p| p == "redis-main"));
    assert_eq!(h.status().redis_claim.as_deref(), Some("pr-1-redis"));
    assert_eq!(h.status().redis_database, None);

    h.cluster.bind_redis(Some("5"));
    h.until_ready(4).await;
    assert_eq!(h.status().redis_database, Some(5));
    assert_eq!(h.forge.count("put_environment"), 1);
    let env_file = h.forge.environment(h.site_id()).expect(".env");
    assert!(env_file.contains("REDIS_DB=5\n") && env_file.contains("REDIS_PREFIX=pr_1_shop_\n"), "{env_file}");
}

#[tokio::test]
async fn a_certificate_is_requested_once_followed_while_issuing_and_ready_when_active() {
    let mut h = Harness::new(spec());
    h.forge.knobs(|k| k.certificate_status = "installing");
    h.pass().await;
    assert_eq!(h.forge.count("request_certificate"), 1);
    assert_eq!(h.cond("CertificateReady"), ("Unknown".into(), "CertificateIssuing".into()));
    let requested = h.status().certificate_id.expect("certificate id recorded");
    for _ in 0..3 {
        h.pass().await;
        assert_eq!(h.cond("CertificateReady"), ("Unknown".into(), "CertificateIssuing".into()));
        let message = &h.condition("CertificateReady").unwrap().message;
        assert!(message.contains("is installing"), "{message}");
    }
    assert_eq!(h.forge.count("request_certificate"), 1, "an issuing certificate is not requested again");
    assert_eq!(h.cond(READY).0, "False");

    h.forge.set_certificates_status("installed");
    h.pass().await;
    assert!(true_(&h, "CertificateReady"));
    assert!(h.is_ready());
    assert_eq!(h.status().certificate_id, Some(requested));
    assert_eq!(h.status().domain_id, Some(h.forge.domains(h.site_id())[0].id as i64));
}

#[tokio::test]
async fn without_tls_no_domain_or_certificate_is_asked_for_and_the_url_is_http() {
    let mut s = spec();
    s.tls.lets_encrypt = false;
    let mut h = Harness::new(s);
    h.until_ready(4).await;
    h.pass().await;
    for method in ["list_domains", "create_domain", "list_certificates", "request_certificate"] {
        assert_eq!(h.forge.count(method), 0, "{method}");
    }
    assert_eq!(h.status().url.as_deref(), Some("http://pr-1.preview.test"));
    assert!(h.forge.environment(h.site_id()).unwrap().contains("APP_URL=http://pr-1.preview.test\n"));
}

#[tokio::test]
async fn settled_steps_cost_no_forge_calls_while_another_step_waits() {
    let mut h = Harness::new(spec());
    h.forge.knobs(|k| k.worker_status = "installing");
    for _ in 0..3 {
        h.pass().await;
    }
    assert_eq!(h.cond("WorkersReady").0, "Unknown");
    for step in ["DatabaseReady", "SiteReady", "EnvironmentReady", "CertificateReady", "Deployed"] {
        assert!(true_(&h, step), "{step}");
    }
    h.forge.clear_calls();
    h.pass().await;
    assert_eq!(h.forge.methods(), ["list_background_processes"], "only the waiting step looks at Forge");
}

#[tokio::test]
async fn a_pass_with_nothing_changed_writes_no_status() {
    let mut h = Harness::new(spec());
    h.forge.knobs(|k| k.worker_status = "installing");
    for _ in 0..3 {
        h.pass().await;
    }
    let writes = h.cluster.write_count();
    h.pass().await;
    h.pass().await;
    assert_eq!(h.cluster.write_count(), writes, "waiting, nothing changed: {:#?}", h.cluster.writes().last());

    h.forge.set_workers_status("installed");
    h.until_ready(2).await;
    h.pass().await;
    let writes = h.cluster.write_count();
    h.pass().await;
    h.pass().await;
    assert_eq!(h.cluster.write_count(), writes, "Ready, nothing drifted");
}

/// Without `spec.database` the DatabaseReady condition does not apply; a pass
/// must not add it in one write and drop it in the next.
#[tokio::test]
async fn a_pass_with_nothing_changed_writes_no_status_without_a_database() {
    let mut s = spec();
    s.database = None;
    let mut h = Harness::new(s);
    h.until_ready(4).await;
    h.pass().await;
    let writes = h.cluster.write_count();
    h.pass().await;
    h.pass().await;
    assert_eq!(h.cluster.write_count(), writes, "{:#?}", h.cluster.writes().iter().rev().take(2).collect::<Vec<_>>());
    assert!(h.cluster.writes().iter().all(|w| conditions::get(&w.status.conditions, "DatabaseReady").is_none()));
}

#[tokio::test]
async fn a_drift_check_with_nothing_drifted_only_reads_and_writes_nothing() {
    let mut h = Harness::new(spec());
    h.until_ready(4).await;
    h.pass().await;
    h.forge.clear_calls();
    let writes = h.cluster.write_count();
    assert!(h.pass().await.requeue() >= REQUEUE);
    let methods = h.forge.methods();
    assert!(methods.iter().all(|m| m.starts_with("get_") || m.starts_with("list_")), "{methods:?}");
    for looked in ["get_site", "get_database", "get_database_user", "list_background_processes", "get_environment"] {
        assert!(methods.contains(&looked), "a drift check looks at {looked}: {methods:?}");
    }
    assert_eq!(h.cluster.write_count(), writes);
}

/// The brief's "a second pass on a Ready environment that is not a drift check
/// makes no Forge calls". `Pass::converge` makes every pass on a Ready
/// environment a drift check (`drift_check = was_ready`), so a pass triggered by a
/// status write or a stack neighbour's change re-reads every step, though
/// `Pass::settled` says such passes spend requests only on unfinished steps.
#[tokio::test]
#[ignore = "finding: every pass on a Ready environment is a drift check (pass.rs, converge: drift_check = was_ready)"]
async fn a_pass_on_a_ready_environment_not_due_for_a_drift_check_makes_no_forge_calls() {
    let mut h = Harness::new(spec());
    h.until_ready(4).await;
    h.forge.clear_calls();
    h.pass().await;
    assert_eq!(h.forge.methods(), Vec::<&str>::new());
}
