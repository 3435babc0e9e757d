//! Every client operation against the in-process simulator over real HTTP.

mod forge_support;

use forge_support::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard::forge::ensure::{self, wait_until};
use switchyard::forge::*;
use switchyard_sim::forge::TokenSpec;
use switchyard_sim::forge::faults::{FaultAction, FaultSpec};

const SERVER: u64 = 1;

fn preview_site(label: &str) -> CreateSite {
    CreateSite {
        repository: Some("acme/app".into()),
        branch: Some("main".into()),
        source_control_provider: Some("github".into()),
        tags: Some(vec!["switchyard".into(), "preview".into()]),
        php_version: Some("php84".into()),
        ..CreateSite::on_forge(label, "laravel")
    }
}

#[tokio::test]
async fn user_organization_and_servers() {
    let (_sim, api, _) = setup("basics").await;
    assert_eq!(api.current_user().await.unwrap().id, 1);
    let org = api.get_organization().await.unwrap();
    assert_eq!(org.slug, "demo");
    let servers = api.list_servers().await.unwrap();
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0].id, SERVER);
    let server = api.get_server(SERVER).await.unwrap();
    assert!(server.is_ready);
    assert_eq!(server.ip_address.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn site_create_read_update_delete_with_tags() {
    let (_sim, api, _) = setup("sites").await;
    let site = api.create_site(SERVER, &preview_site("pr-7")).await.unwrap();
    assert_eq!(site.status, "installing");
    // The create answer carries no relationships (the document declares no `include`).
    assert!(site.tags.is_empty());
    assert_eq!(site.repository.as_ref().and_then(|r| r.status.as_deref()), Some("installing"));

    let ready = wait_until(async || api.get_site(site.id).await, Site::is_ready, fast_poll()).await.unwrap();
    assert_eq!(ready.repository.unwrap().status.as_deref(), Some("installed"));
    // A single site read names no server: the document declares no `include` for it.
    assert_eq!(ready.server_id, None);

    let listed = api.list_sites(Some("pr-7")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].tags, vec!["switchyard", "preview"]);
    assert_eq!(listed[0].server_id, Some(SERVER));
    assert_eq!(api.list_server_sites(SERVER, None).await.unwrap().len(), 1);

    api.update_site(SERVER, site.id, &UpdateSite { php_version: Some("php83".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(api.get_site(site.id).await.unwrap().php_version.as_deref(), Some("php83"));

    api.delete_site(SERVER, site.id).await.unwrap();
    assert_eq!(api.get_site(site.id).await.unwrap().status, "removing");
    let gone = wait_until(
        async || Ok(api.get_site(site.id).await.err()),
        |e| e.as_ref().is_some_and(ForgeError::is_not_found),
        fast_poll(),
    )
    .await;
    assert!(gone.is_ok());
}

#[tokio::test]
async fn environment_round_trip() {
    let (_sim, api, _) = setup("env").await;
    let site = api.create_site(SERVER, &preview_site("pr-8")).await.unwrap();
    let env = "APP_KEY=base64:abc\nDB_DATABASE=pr_8\n".to_string();
    api.put_environment(SERVER, site.id, &PutEnvironment { environment: env.clone(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(api.get_environment(SERVER, site.id).await.unwrap(), env);
}

#[tokio::test]
async fn deployments_script_status_log_and_push_to_deploy() {
    let (sim, api, _) = setup("deploy").await;
    let site = api.create_site(SERVER, &preview_site("pr-9")).await.unwrap();

    let script =
        api.put_deployment_script(SERVER, site.id, "cd $FORGE_SITE_PATH\ngit pull", Some(false)).await.unwrap();
    assert_eq!(script.content.as_deref(), Some("cd $FORGE_SITE_PATH\ngit pull"));
    assert!(!api.get_deployment_script(SERVER, site.id).await.unwrap().auto_source);

    assert_eq!(api.deployment_status(SERVER, site.id).await.unwrap().status, None);
    let first = api.trigger_deployment(SERVER, site.id).await.unwrap();
    assert_eq!(first.status, "queued");
    assert!(first.started_at.is_none());
    assert!(api.deployment_status(SERVER, site.id).await.unwrap().status.is_some());
    let done =
        wait_until(async || api.get_deployment(SERVER, site.id, first.id).await, Deployment::is_terminal, fast_poll())
            .await
            .unwrap();
    assert!(done.succeeded());
    assert!(done.ended_at.is_some());
    assert!(api.deployment_log(SERVER, site.id, first.id).await.unwrap().contains("finished"));

    sim.inject_fault(FaultSpec::new(FaultAction::DeploymentFailure).times(1));
    let second = api.trigger_deployment(SERVER, site.id).await.unwrap();
    let failed =
        wait_until(async || api.get_deployment(SERVER, site.id, second.id).await, Deployment::is_terminal, fast_poll())
            .await
            .unwrap();
    assert_eq!(failed.status, "failed");

    let newest_first = api.list_deployments(SERVER, site.id, None).await.unwrap();
    assert_eq!(newest_first.iter().map(|d| d.id).collect::<Vec<_>>(), vec![second.id, first.id]);
    assert_eq!(api.list_deployments(SERVER, site.id, Some(1)).await.unwrap()[0].id, second.id);

    api.set_push_to_deploy(SERVER, site.id, true).await.unwrap();
    assert!(api.get_site(site.id).await.unwrap().quick_deploy);
    api.set_push_to_deploy(SERVER, site.id, false).await.unwrap();
    assert!(!api.get_site(site.id).await.unwrap().quick_deploy);
}

#[tokio::test]
async fn domains_and_lets_encrypt_certificates() {
    let (sim, api, _) = setup("certs").await;
    let site = api.create_site(SERVER, &preview_site("pr-10")).await.unwrap();
    let primary = api.list_domains(SERVER, site.id).await.unwrap();
    assert_eq!(primary.len(), 1);
    assert_eq!(primary[0].kind, "primary");

    let req = CreateDomain {
        name: "pr-10.preview.example.com".into(),
        allow_wildcard_subdomains: false,
        www_redirect_type: "none".into(),
    };
    let domain = api.create_domain(SERVER, site.id, &req).await.unwrap();
    assert_eq!(domain.status, "pending");
    assert_eq!(domain.kind, "alias");
    wait_until(async || api.get_domain(SERVER, site.id, domain.id).await, |d| d.status == "enabled", fast_poll())
        .await
        .unwrap();

    assert_eq!(api.active_certificate(SERVER, site.id, domain.id).await.unwrap(), None);
    let cert = api.request_certificate(SERVER, site.id, domain.id, &RequestCertificate::letsencrypt()).await.unwrap();
    assert_eq!(cert.request_status.as_deref(), Some("verifying"));
    let installed = wait_until(
        async || api.get_certificate(SERVER, site.id, domain.id, cert.id).await,
        Certificate::is_active,
        fast_poll(),
    )
    .await
    .unwrap();
    assert_eq!(installed.request_status.as_deref(), Some("created"));
    assert_eq!(api.active_certificate(SERVER, site.id, domain.id).await.unwrap().map(|c| c.id), Some(cert.id));
    assert!(api.get_site(site.id).await.unwrap().https);

    // A failed Let's Encrypt request ends in status failed (and never becomes active).
    sim.inject_fault(FaultSpec::new(FaultAction::CertificateFailure).times(1));
    let bad = api.request_certificate(SERVER, site.id, domain.id, &RequestCertificate::letsencrypt()).await.unwrap();
    let failed = wait_until(
        async || api.get_certificate(SERVER, site.id, domain.id, bad.id).await,
        |c| c.status != "installing",
        fast_poll(),
    )
    .await
    .unwrap();
    assert!(failed.is_failed(), "{failed:?}");
    assert!(!failed.active);
    assert_eq!(api.active_certificate(SERVER, site.id, domain.id).await.unwrap().map(|c| c.id), Some(cert.id));

    assert_eq!(api.list_certificates(SERVER, site.id, Some(domain.id)).await.unwrap().len(), 2);
    assert_eq!(api.list_certificates(SERVER, site.id, None).await.unwrap().len(), 2);

    api.delete_certificate(SERVER, site.id, domain.id, bad.id).await.unwrap();
    wait_until(
        async || Ok(api.get_certificate(SERVER, site.id, domain.id, bad.id).await.err()),
        |e| e.as_ref().is_some_and(ForgeError::is_not_found),
        fast_poll(),
    )
    .await
    .unwrap();
    api.delete_domain(SERVER, site.id, domain.id).await.unwrap();
    wait_until(async || api.list_domains(SERVER, site.id).await, |ds| ds.len() == 1, fast_poll()).await.unwrap();
}

#[tokio::test]
async fn database_schemas_and_users() {
    let (_sim, api, _) = setup("db").await;
    let db =
        api.create_database(SERVER, &CreateDatabase { name: "pr_11_app".into(), ..Default::default() }).await.unwrap();
    assert_eq!(db.status, "installing");
    wait_until(async || api.get_database(SERVER, db.id).await, |d| d.status == "installed", fast_poll()).await.unwrap();
    assert_eq!(api.list_databases(SERVER, Some("pr_11_app")).await.unwrap().len(), 1);

    let req = CreateDatabaseUser {
        name: "pr_11".into(),
        password: Password::new("s3cret"),
        database_ids: vec![db.id],
        read_only: None,
    };
    let user = api.create_database_user(SERVER, &req).await.unwrap();
    assert_eq!(user.status, "installing");
    wait_until(async || api.get_database_user(SERVER, user.id).await, |u| u.status == "installed", fast_poll())
        .await
        .unwrap();
    api.update_database_user(
        SERVER,
        user.id,
        &UpdateDatabaseUser { password: Some(Password::new("n3w")), database_ids: Some(vec![db.id]) },
    )
    .await
    .unwrap();
    assert_eq!(api.get_database_user(SERVER, user.id).await.unwrap().status, "updating");
    assert_eq!(api.list_database_users(SERVER, Some("pr_11")).await.unwrap().len(), 1);

    api.delete_database_user(SERVER, user.id).await.unwrap();
    api.delete_database(SERVER, db.id).await.unwrap();
    assert_eq!(api.get_database(SERVER, db.id).await.unwrap().status, "removing");
    wait_until(async || api.list_databases(SERVER, None).await, Vec::is_empty, fast_poll()).await.unwrap();
    wait_until(async || api.list_database_users(SERVER, None).await, Vec::is_empty, fast_poll()).await.unwrap();
}

#[tokio::test]
async fn background_processes_by_site() {
    let (_sim, api, _) = setup("workers").await;
    let site = api.create_site(SERVER, &preview_site("pr-12")).await.unwrap();
    let req = CreateBackgroundProcess {
        name: "pr-12 queue".into(),
        command: "php artisan queue:work --tries=3".into(),
        user: "forge".into(),
        processes: 2,
        site_id: Some(site.id),
        directory: Some("/home/forge/pr-12".into()),
        startsecs: None,
        stopwaitsecs: Some(30),
        stopsignal: None,
    };
    let worker = ensure::ensure_background_process(&api, SERVER, &req, fast_ensure()).await.unwrap();
    assert!(worker.created);
    let again = ensure::ensure_background_process(&api, SERVER, &req, fast_ensure()).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.value.id, worker.value.id);
    assert_eq!(worker.value.processes, 2);
    api.create_background_process(SERVER, &CreateBackgroundProcess { site_id: None, directory: None, ..req.clone() })
        .await
        .unwrap();
    assert_eq!(ensure::workers_for_site(&api, SERVER, site.id).await.unwrap().len(), 1);
    assert_eq!(api.list_background_processes(SERVER, None).await.unwrap().len(), 2);
    wait_until(
        async || api.get_background_process(SERVER, worker.value.id).await,
        |p| p.status == "installed",
        fast_poll(),
    )
    .await
    .unwrap();
    api.update_background_process(
        SERVER,
        worker.value.id,
        &UpdateBackgroundProcess { name: "renamed".into(), config: "[program:x]".into() },
    )
    .await
    .unwrap();
    api.delete_background_process(SERVER, worker.value.id).await.unwrap();
    wait_until(async || ensure::workers_for_site(&api, SERVER, site.id).await, Vec::is_empty, fast_poll())
        .await
        .unwrap();
}

#[tokio::test]
async fn site_commands_are_found_after_an_empty_202() {
    let (sim, api, _) = setup("commands").await;
    let site = api.create_site(SERVER, &preview_site("pr-13")).await.unwrap();
    assert_eq!(api.run_site_command(SERVER, site.id, "php artisan about").await.unwrap(), None);
    let cmd = ensure::run_command(&api, SERVER, site.id, "php artisan migrate --force", fast_ensure()).await.unwrap();
    assert_eq!(cmd.command, "php artisan migrate --force");
    let done =
        wait_until(async || api.get_site_command(SERVER, site.id, cmd.id).await, SiteCommand::is_terminal, fast_poll())
            .await
            .unwrap();
    assert_eq!(done.status, "finished");
    assert_eq!(done.exit_code, Some(0));
    assert!(api.site_command_output(SERVER, site.id, cmd.id).await.unwrap().contains("migrate"));
    assert_eq!(api.list_site_commands(SERVER, site.id, None, None).await.unwrap().len(), 2);
    assert_eq!(sim.count("POST", "/api/orgs/{org}/servers/{server}/sites/{site}/commands"), 2);
}

#[tokio::test]
async fn scheduled_jobs_on_server_and_site() {
    let (_sim, api, _) = setup("jobs").await;
    let site = api.create_site(SERVER, &preview_site("pr-14")).await.unwrap();
    let req = CreateScheduledJob {
        command: "php artisan schedule:run".into(),
        user: "forge".into(),
        frequency: "minutely".into(),
        cron: None,
        name: None,
        heartbeat: None,
    };
    for scope in [JobScope::Server { server: SERVER }, JobScope::Site { server: SERVER, site: site.id }] {
        let job = ensure::ensure_scheduled_job(&api, scope, &req, fast_ensure()).await.unwrap().value;
        assert_eq!(job.cron.as_deref(), Some("* * * * *"));
        assert!(!ensure::ensure_scheduled_job(&api, scope, &req, fast_ensure()).await.unwrap().created);
        assert_eq!(api.get_scheduled_job(scope, job.id).await.unwrap().command, req.command);
        assert_eq!(api.list_scheduled_jobs(scope).await.unwrap().len(), 1);
        api.delete_scheduled_job(scope, job.id).await.unwrap();
        wait_until(async || api.list_scheduled_jobs(scope).await, Vec::is_empty, fast_poll()).await.unwrap();
    }
}

#[tokio::test]
async fn pagination_follows_cursors_over_several_pages() {
    let token = unique_token("pages");
    let sim = sim_with(vec![TokenSpec::all_scopes(token.clone())], |_| {}).await;
    let api = client_with(&sim.base_url(), &token, |c| c.page_size = 5);
    for i in 0..12 {
        api.create_database(SERVER, &CreateDatabase { name: format!("page_db_{i:02}"), ..Default::default() })
            .await
            .unwrap();
    }
    sim.clear_requests();
    let all = api.list_databases(SERVER, None).await.unwrap();
    let names: Vec<_> = all.iter().map(|d| d.name.clone()).collect();
    assert_eq!(names, (0..12).map(|i| format!("page_db_{i:02}")).collect::<Vec<_>>());
    assert_eq!(sim.count("GET", "/api/orgs/{org}/servers/{server}/database/schemas"), 3);
    // filter[name] matches partially on Forge; the exact-name lookup must not be fooled.
    let found = ensure::find_database(&api, SERVER, "page_db_1").await.unwrap();
    assert!(found.is_none());
    assert_eq!(api.list_databases(SERVER, Some("page_db_1")).await.unwrap().len(), 2);
}

// ---- error shapes ----

#[tokio::test]
async fn each_error_shape_maps_to_its_variant() {
    let token = unique_token("errors");
    let scoped = unique_token("scoped");
    let sim = sim_with(
        vec![TokenSpec::all_scopes(token.clone()), TokenSpec::with_scopes(scoped.clone(), &["server:view"])],
        |_| {},
    )
    .await;
    let api = client_with(&sim.base_url(), &token, |c| c.retry.max_retries = 0);

    let bad = client_with(&sim.base_url(), &unique_token("wrong"), |_| {});
    assert!(
        matches!(bad.current_user().await, Err(ForgeError::Unauthorized { message }) if message == "Unauthenticated.")
    );

    let read_only = client_with(&sim.base_url(), &scoped, |_| {});
    assert!(read_only.list_servers().await.is_ok());
    let e = read_only
        .create_database(SERVER, &CreateDatabase { name: "x".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert!(matches!(&e, ForgeError::Forbidden { message } if message == "This action is unauthorized."), "{e:?}");

    assert!(matches!(api.get_site(424_242).await, Err(ForgeError::NotFound { .. })));
    assert!(matches!(api.get_server(2).await, Err(ForgeError::NotFound { .. })));

    let e = api.create_site(SERVER, &CreateSite::default()).await.unwrap_err();
    match &e {
        ForgeError::Validation { message, errors } => {
            assert!(!message.is_empty());
            for field in ["type", "domain_mode", "name"] {
                assert!(errors.contains_key(field), "{field} missing in {errors:?}");
            }
        }
        other => panic!("expected validation, got {other:?}"),
    }
    assert!(!e.is_retryable());

    sim.inject_fault(FaultSpec::new(FaultAction::Status { status: 429, body: None, retry_after: Some(7) }).times(1));
    let e = api.list_servers().await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert!(e.is_retryable());

    let sim2 = sim_with(vec![], |_| {}).await;
    let open = client_with(&sim2.base_url(), &unique_token("open"), |c| c.retry.max_retries = 0);
    sim2.inject_fault(FaultSpec::new(FaultAction::Status { status: 500, body: None, retry_after: None }).times(1));
    assert!(matches!(open.list_servers().await, Err(ForgeError::Server { status: 500, .. })));
    sim2.inject_fault(
        FaultSpec::new(FaultAction::RawBody { status: 200, body: "<html>not json</html>".into(), content_type: None })
            .times(1),
    );
    assert!(matches!(open.list_servers().await, Err(ForgeError::Decode { .. })));

    let closed = client_with("http://127.0.0.1:9/api", &unique_token("closed"), |c| c.retry.max_retries = 0);
    let e = closed.list_servers().await.unwrap_err();
    assert!(matches!(e, ForgeError::Transport { kind: TransportKind::Connect, .. }), "{e:?}");
}

#[tokio::test]
async fn retries_honour_retry_after_then_succeed() {
    let (sim, api, _) = setup("retry-after").await;
    sim.inject_fault(FaultSpec::new(FaultAction::Status { status: 429, body: None, retry_after: Some(1) }).times(1));
    let start = std::time::Instant::now();
    api.list_servers().await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(900), "{:?}", start.elapsed());
    sim.inject_fault(FaultSpec::new(FaultAction::Status { status: 502, body: None, retry_after: None }).times(2));
    api.get_server(SERVER).await.unwrap();
    assert_eq!(sim.status_count(502), 2);
}

#[tokio::test]
async fn non_idempotent_post_is_not_blindly_retried() {
    let (sim, api, _) = setup("no-blind-retry").await;
    sim.inject_fault(
        FaultSpec::new(FaultAction::Status { status: 500, body: None, retry_after: None })
            .method("POST")
            .after_processing()
            .times(1),
    );
    let e =
        api.create_database(SERVER, &CreateDatabase { name: "once".into(), ..Default::default() }).await.unwrap_err();
    assert!(matches!(e, ForgeError::Server { status: 500, .. }));
    assert_eq!(sim.count("POST", "/api/orgs/{org}/servers/{server}/database/schemas"), 1);
    // ensure_* adopts what the lost POST created instead of creating a duplicate.
    let adopted = ensure::ensure_database(
        &api,
        SERVER,
        &CreateDatabase { name: "once".into(), ..Default::default() },
        fast_ensure(),
    )
    .await
    .unwrap();
    assert!(!adopted.created);
    assert_eq!(sim.count("POST", "/api/orgs/{org}/servers/{server}/database/schemas"), 1);
}

// ---- the token never leaks ----

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn token_never_appears_in_errors_debug_or_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let token = unique_token("SECRET-leak-canary");
    let scoped = unique_token("SECRET-scoped-canary");
    let sim = sim_with(
        vec![TokenSpec::all_scopes(token.clone()), TokenSpec::with_scopes(scoped.clone(), &["server:view"])],
        |_| {},
    )
    .await;
    let api = client_with(&sim.base_url(), &token, |c| c.retry.max_retries = 1);
    let scoped_api = client_with(&sim.base_url(), &scoped, |c| c.retry.max_retries = 0);
    let wrong = unique_token("SECRET-wrong-canary");
    let wrong_api = client_with(&sim.base_url(), &wrong, |_| {});
    let closed = client_with("http://127.0.0.1:9/api", &token, |c| c.retry.max_retries = 0);

    let mut errors = vec![
        wrong_api.current_user().await.unwrap_err(),
        scoped_api.delete_database(SERVER, 1).await.unwrap_err(),
        api.get_site(999).await.unwrap_err(),
        api.create_database(SERVER, &CreateDatabase { name: format!("{token}!"), ..Default::default() })
            .await
            .unwrap_err(),
        closed.list_servers().await.unwrap_err(),
    ];
    sim.inject_fault(
        FaultSpec::new(FaultAction::Status {
            status: 500,
            body: Some(serde_json::json!({"message": format!("echo {token}")})),
            retry_after: None,
        })
        .times(2),
    );
    errors.push(api.list_servers().await.unwrap_err());
    sim.inject_fault(
        FaultSpec::new(FaultAction::RawBody { status: 200, body: format!("garbage {token}"), content_type: None })
            .times(1),
    );
    errors.push(api.list_servers().await.unwrap_err());
    sim.inject_fault(FaultSpec::new(FaultAction::Status { status: 429, body: None, retry_after: Some(0) }).times(2));
    errors.push(api.list_servers().await.unwrap_err());

    let labels: std::collections::BTreeSet<_> = errors.iter().map(ForgeError::metric_label).collect();
    for label in
        ["unauthorized", "forbidden", "not_found", "validation", "transport", "server", "decode", "rate_limited"]
    {
        assert!(labels.contains(label), "no {label} error produced: {errors:?}");
    }
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("forge request"), "client logs were not captured");
    for secret in [&token, &scoped, &wrong] {
        for e in &errors {
            assert!(!e.to_string().contains(secret.as_str()), "Display leaks: {e}");
            assert!(!format!("{e:?}").contains(secret.as_str()), "Debug leaks: {e:?}");
        }
        assert!(!logs.contains(secret.as_str()), "logs leak the token");
        assert!(!format!("{api:?}").contains(secret.as_str()));
        assert!(!format!("{:?}", api.config()).contains(secret.as_str()));
    }
}

// ---- one test per documented rule ----

#[tokio::test]
async fn database_name_over_63_and_user_over_32_are_rejected() {
    let (_sim, api, _) = setup("limits").await;
    let e =
        api.create_database(SERVER, &CreateDatabase { name: "d".repeat(64), ..Default::default() }).await.unwrap_err();
    assert!(matches!(&e, ForgeError::Validation { errors, .. } if errors.contains_key("name")), "{e:?}");
    api.create_database(SERVER, &CreateDatabase { name: "d".repeat(63), ..Default::default() }).await.unwrap();
    let user = |name: String| CreateDatabaseUser {
        name,
        password: Password::new("pw"),
        database_ids: vec![],
        read_only: None,
    };
    let e = api.create_database_user(SERVER, &user("u".repeat(33))).await.unwrap_err();
    assert!(matches!(&e, ForgeError::Validation { errors, .. } if errors.contains_key("name")), "{e:?}");
    api.create_database_user(SERVER, &user("u".repeat(32))).await.unwrap();
}

#[tokio::test]
async fn reserved_or_malformed_isolated_users_are_rejected() {
    let (_sim, api, _) = setup("isolated").await;
    let isolated = |user: &str, label: &str| CreateSite {
        is_isolated: Some(true),
        isolated_user: Some(user.into()),
        ..CreateSite::on_forge(label, "laravel")
    };
    for (i, user) in [
        "forge",
        "root",
        "www-data",
        "mysql",
        "redis",
        "backup",
        "admin",
        "nobody",
        "isolated",
        "9lives",
        "Upper",
        &"a".repeat(33),
    ]
    .iter()
    .enumerate()
    {
        let e = api.create_site(SERVER, &isolated(user, &format!("iso-{i}"))).await.unwrap_err();
        assert!(
            matches!(&e, ForgeError::Validation { errors, .. } if errors.contains_key("isolated_user")),
            "{user}: {e:?}"
        );
    }
    let ok = api.create_site(SERVER, &isolated("pr_15-app", "iso-ok")).await.unwrap();
    assert_eq!(ok.user.as_deref(), Some("pr_15-app"));
    assert!(ok.isolated);
}

#[tokio::test]
async fn duplicate_database_name_is_rejected_and_ensure_adopts_it() {
    let (sim, api, _) = setup("dup").await;
    let req = CreateDatabase { name: "pr_16".into(), ..Default::default() };
    let first = api.create_database(SERVER, &req).await.unwrap();
    let e = api.create_database(SERVER, &req).await.unwrap_err();
    assert!(e.is_taken("name"), "{e:?}");
    let ensured = ensure::ensure_database(&api, SERVER, &req, fast_ensure()).await.unwrap();
    assert!(!ensured.created);
    assert_eq!(ensured.value.id, first.id);
    assert_eq!(sim.state().databases.values().filter(|d| d.name == "pr_16").count(), 1);
}

#[tokio::test]
async fn deleting_a_site_keeps_its_database_but_drops_workers_and_jobs() {
    let (sim, api, _) = setup("delete-site").await;
    let db = api
        .create_database(
            SERVER,
            &CreateDatabase { name: "pr_17".into(), user: Some("pr_17".into()), password: Some(Password::new("pw")) },
        )
        .await
        .unwrap();
    let site =
        api.create_site(SERVER, &CreateSite { database_id: Some(db.id), ..preview_site("pr-17") }).await.unwrap();
    let worker = CreateBackgroundProcess {
        name: "q".into(),
        command: "php artisan queue:work".into(),
        user: "forge".into(),
        processes: 1,
        site_id: Some(site.id),
        directory: Some("/home/forge/pr-17".into()),
        startsecs: None,
        stopwaitsecs: None,
        stopsignal: None,
    };
    api.create_background_process(SERVER, &worker).await.unwrap();
    let scope = JobScope::Site { server: SERVER, site: site.id };
    api.create_scheduled_job(
        scope,
        &CreateScheduledJob {
            command: "php artisan schedule:run".into(),
            user: "forge".into(),
            frequency: "minutely".into(),
            cron: None,
            name: None,
            heartbeat: None,
        },
    )
    .await
    .unwrap();

    api.delete_site(SERVER, site.id).await.unwrap();
    wait_until(
        async || Ok(api.get_site(site.id).await.err()),
        |e| e.as_ref().is_some_and(ForgeError::is_not_found),
        fast_poll(),
    )
    .await
    .unwrap();

    assert!(ensure::workers_for_site(&api, SERVER, site.id).await.unwrap().is_empty());
    let state = sim.state();
    assert!(state.scheduled_jobs.values().all(|j| j.site_id != Some(site.id)));
    assert!(state.background_processes.values().all(|p| p.site_id != Some(site.id)));
    assert_eq!(api.get_database(SERVER, db.id).await.unwrap().name, "pr_17");
    assert!(ensure::find_database_user(&api, SERVER, "pr_17").await.unwrap().is_some());
}
