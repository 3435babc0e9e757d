//! The Forge client and simulator held against Forge's published OpenAPI document
//! (tests/testdata/forge-openapi/): every operation the client uses is driven over real HTTP
//! through a recording proxy, and every request (path, query parameters, body) and every
//! answer (status, body), errors included, is validated against the document. Recorded live
//! departures from the document are listed once, with sources, in `openapi::EXCEPTIONS`.

mod forge_support;
#[path = "forge_support/openapi.rs"]
mod openapi;
#[path = "forge_support/recorder.rs"]
mod recorder;

use forge_support::*;
use openapi::{Operation, Spec};
use recorder::{Exchange, Recorder};
use serde_json::json;
use std::collections::BTreeSet;
use switchyard::forge::ensure::wait_until;
use switchyard::forge::*;
use switchyard_sim::forge::TokenSpec;
use switchyard_sim::forge::faults::{FaultAction, FaultSpec};

const SERVER: u64 = 1;

/// The operations switchyard's client uses (`ForgeApi` over HTTP), as the document names them.
const USED: &[&str] = &[
    "GET /me",
    "GET /orgs/{organization}",
    "GET /orgs/{organization}/servers",
    "GET /orgs/{organization}/servers/{server}",
    "GET /orgs/{organization}/sites",
    "GET /orgs/{organization}/sites/{site}",
    "GET /orgs/{organization}/servers/{server}/sites",
    "POST /orgs/{organization}/servers/{server}/sites",
    "PUT /orgs/{organization}/servers/{server}/sites/{site}",
    "DELETE /orgs/{organization}/servers/{server}/sites/{site}",
    "GET /orgs/{organization}/servers/{server}/sites/{site}/environment",
    "PUT /orgs/{organization}/servers/{server}/sites/{site}/environment",
    "GET /orgs/{organization}/servers/{server}/sites/{site}/deployments",
    "POST /orgs/{organization}/servers/{server}/sites/{site}/deployments",
    "GET /orgs/{organization}/servers/{server}/sites/{site}/deployments/{deployment}",
    "GET /orgs/{organization}/servers/{server}/sites/{site}/deployments/{deployment}/log",
    "GET /orgs/{organization}/servers/{server}/sites/{site}/deployments/status",
    "GET /orgs/{organization}/servers/{server}/sites/{site}/deployments/script",
    "PUT /orgs/{organization}/servers/{server}/sites/{site}/deployments/script",
    "POST /orgs/{organization}/servers/{server}/sites/{site}/deployments/push-to-deploy",
    "DELETE /orgs/{organization}/servers/{server}/sites/{site}/deployments/push-to-deploy",
    "GET /orgs/{organization}/servers/{server}/sites/{site}/domains",
    "POST /orgs/{organization}/servers/{server}/sites/{site}/domains",
    "GET /orgs/{organization}/servers/{server}/sites/{site}/domains/{domainRecord}",
    "DELETE /orgs/{organization}/servers/{server}/sites/{site}/domains/{domainRecord}",
    "GET /orgs/{organization}/servers/{server}/sites/{site}/domains/{domainRecord}/certificates",
    "POST /orgs/{organization}/servers/{server}/sites/{site}/domains/{domainRecord}/certificates",
    "GET /orgs/{organization}/servers/{server}/sites/{site}/domains/{domainRecord}/certificates/active",
    "GET /orgs/{organization}/servers/{server}/sites/{site}/domains/{domainRecord}/certificates/{certificate}",
    "DELETE /orgs/{organization}/servers/{server}/sites/{site}/domains/{domainRecord}/certificates/{certificate}",
    "GET /orgs/{organization}/servers/{server}/sites/{site}/certificates",
    "GET /orgs/{organization}/servers/{server}/database/schemas",
    "POST /orgs/{organization}/servers/{server}/database/schemas",
    "GET /orgs/{organization}/servers/{server}/database/schemas/{database}",
    "DELETE /orgs/{organization}/servers/{server}/database/schemas/{database}",
    "GET /orgs/{organization}/servers/{server}/database/users",
    "POST /orgs/{organization}/servers/{server}/database/users",
    "GET /orgs/{organization}/servers/{server}/database/users/{databaseUser}",
    "PUT /orgs/{organization}/servers/{server}/database/users/{databaseUser}",
    "DELETE /orgs/{organization}/servers/{server}/database/users/{databaseUser}",
    "GET /orgs/{organization}/servers/{server}/background-processes",
    "POST /orgs/{organization}/servers/{server}/background-processes",
    "GET /orgs/{organization}/servers/{server}/background-processes/{backgroundProcess}",
    "PUT /orgs/{organization}/servers/{server}/background-processes/{backgroundProcess}",
    "DELETE /orgs/{organization}/servers/{server}/background-processes/{backgroundProcess}",
    "GET /orgs/{organization}/servers/{server}/sites/{site}/commands",
    "POST /orgs/{organization}/servers/{server}/sites/{site}/commands",
    "GET /orgs/{organization}/servers/{server}/sites/{site}/commands/{command}",
    "GET /orgs/{organization}/servers/{server}/sites/{site}/commands/{command}/output",
    "GET /orgs/{organization}/servers/{server}/scheduled-jobs",
    "POST /orgs/{organization}/servers/{server}/scheduled-jobs",
    "GET /orgs/{organization}/servers/{server}/scheduled-jobs/{job}",
    "DELETE /orgs/{organization}/servers/{server}/scheduled-jobs/{job}",
    "GET /orgs/{organization}/servers/{server}/sites/{site}/scheduled-jobs",
    "POST /orgs/{organization}/servers/{server}/sites/{site}/scheduled-jobs",
    "GET /orgs/{organization}/servers/{server}/sites/{site}/scheduled-jobs/{job}",
    "DELETE /orgs/{organization}/servers/{server}/sites/{site}/scheduled-jobs/{job}",
];

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

/// Every client operation once or more, the error answers the document declares, and the
/// transport errors Forge documents elsewhere.
async fn drive(api: &HttpForgeClient, sim: &switchyard_sim::forge::ForgeSimHandle) {
    api.current_user().await.unwrap();
    api.get_organization().await.unwrap();
    api.list_servers().await.unwrap();
    api.get_server(SERVER).await.unwrap();

    let site = api.create_site(SERVER, &preview_site("pr-1")).await.unwrap();
    wait_until(async || api.get_site(site.id).await, Site::is_ready, fast_poll()).await.unwrap();
    api.list_sites(Some("pr-1")).await.unwrap();
    api.list_server_sites(SERVER, Some("pr-1")).await.unwrap();
    api.update_site(SERVER, site.id, &UpdateSite { php_version: Some("php83".into()), ..Default::default() })
        .await
        .unwrap();
    api.put_environment(
        SERVER,
        site.id,
        &PutEnvironment { environment: "APP_ENV=preview\n".into(), ..Default::default() },
    )
    .await
    .unwrap();
    api.get_environment(SERVER, site.id).await.unwrap();

    api.put_deployment_script(SERVER, site.id, "cd $FORGE_SITE_PATH\ngit pull", Some(false)).await.unwrap();
    api.get_deployment_script(SERVER, site.id).await.unwrap();
    api.deployment_status(SERVER, site.id).await.unwrap();
    let deployment = api.trigger_deployment(SERVER, site.id).await.unwrap();
    api.deployment_status(SERVER, site.id).await.unwrap();
    wait_until(async || api.get_deployment(SERVER, site.id, deployment.id).await, Deployment::is_terminal, fast_poll())
        .await
        .unwrap();
    api.deployment_log(SERVER, site.id, deployment.id).await.unwrap();
    api.list_deployments(SERVER, site.id, Some(1)).await.unwrap();
    api.set_push_to_deploy(SERVER, site.id, true).await.unwrap();
    api.set_push_to_deploy(SERVER, site.id, false).await.unwrap();

    api.list_domains(SERVER, site.id).await.unwrap();
    let req = CreateDomain {
        name: "pr-1.preview.test".into(),
        allow_wildcard_subdomains: false,
        www_redirect_type: "none".into(),
    };
    let domain = api.create_domain(SERVER, site.id, &req).await.unwrap();
    wait_until(async || api.get_domain(SERVER, site.id, domain.id).await, |d| d.status == "enabled", fast_poll())
        .await
        .unwrap();
    api.active_certificate(SERVER, site.id, domain.id).await.unwrap();
    let cert = api.request_certificate(SERVER, site.id, domain.id, &RequestCertificate::letsencrypt()).await.unwrap();
    wait_until(
        async || api.get_certificate(SERVER, site.id, domain.id, cert.id).await,
        |c| c.status == "installed",
        fast_poll(),
    )
    .await
    .unwrap();
    api.list_certificates(SERVER, site.id, Some(domain.id)).await.unwrap();
    api.list_certificates(SERVER, site.id, None).await.unwrap();
    api.delete_certificate(SERVER, site.id, domain.id, cert.id).await.unwrap();
    api.delete_domain(SERVER, site.id, domain.id).await.unwrap();

    let db =
        api.create_database(SERVER, &CreateDatabase { name: "pr_1_app".into(), ..Default::default() }).await.unwrap();
    wait_until(async || api.get_database(SERVER, db.id).await, |d| d.status == "installed", fast_poll()).await.unwrap();
    api.list_databases(SERVER, Some("pr_1_app")).await.unwrap();
    let user = api
        .create_database_user(
            SERVER,
            &CreateDatabaseUser {
                name: "pr_1".into(),
                password: Password::new("s3cret-pass"),
                database_ids: vec![db.id],
                read_only: None,
            },
        )
        .await
        .unwrap();
    wait_until(async || api.get_database_user(SERVER, user.id).await, |u| u.status == "installed", fast_poll())
        .await
        .unwrap();
    api.update_database_user(
        SERVER,
        user.id,
        &UpdateDatabaseUser { password: Some(Password::new("n3w-pass")), database_ids: Some(vec![db.id]) },
    )
    .await
    .unwrap();
    api.list_database_users(SERVER, Some("pr_1")).await.unwrap();
    // 422: a duplicate name.
    api.create_database(SERVER, &CreateDatabase { name: "pr_1_app".into(), ..Default::default() }).await.unwrap_err();

    let worker = CreateBackgroundProcess {
        name: "pr-1 queue".into(),
        command: "php artisan queue:work".into(),
        user: "forge".into(),
        processes: 1,
        site_id: Some(site.id),
        directory: Some("/home/forge/pr-1".into()),
        startsecs: None,
        stopwaitsecs: Some(30),
        stopsignal: None,
    };
    let process = api.create_background_process(SERVER, &worker).await.unwrap();
    api.list_background_processes(SERVER, Some(site.id)).await.unwrap();
    wait_until(async || api.get_background_process(SERVER, process.id).await, |p| p.status == "installed", fast_poll())
        .await
        .unwrap();
    api.update_background_process(
        SERVER,
        process.id,
        &UpdateBackgroundProcess { name: "pr-1 queue".into(), config: "[program:worker]\n".into() },
    )
    .await
    .unwrap();
    api.delete_background_process(SERVER, process.id).await.unwrap();

    api.run_site_command(SERVER, site.id, "php artisan about").await.unwrap();
    let commands = api.list_site_commands(SERVER, site.id, Some("php artisan about"), None).await.unwrap();
    let command = commands.first().expect("the command is listed");
    wait_until(async || api.get_site_command(SERVER, site.id, command.id).await, SiteCommand::is_terminal, fast_poll())
        .await
        .unwrap();
    api.site_command_output(SERVER, site.id, command.id).await.unwrap();

    let job = CreateScheduledJob {
        command: "php artisan schedule:run".into(),
        user: "forge".into(),
        frequency: "minutely".into(),
        cron: None,
        name: None,
        heartbeat: None,
    };
    for scope in [JobScope::Server { server: SERVER }, JobScope::Site { server: SERVER, site: site.id }] {
        let created = api.create_scheduled_job(scope, &job).await.unwrap();
        api.get_scheduled_job(scope, created.id).await.unwrap();
        api.list_scheduled_jobs(scope).await.unwrap();
        api.delete_scheduled_job(scope, created.id).await.unwrap();
    }

    // A 404 and a 429 (retried by the client); the 422 was the duplicate database above.
    api.get_site(424_242).await.unwrap_err();
    sim.inject_fault(FaultSpec::new(FaultAction::Status { status: 429, body: None, retry_after: Some(0) }).times(1));
    api.get_server(SERVER).await.unwrap();

    api.delete_database_user(SERVER, user.id).await.unwrap();
    api.delete_database(SERVER, db.id).await.unwrap();
    api.delete_site(SERVER, site.id).await.unwrap();
}

async fn recorded_run() -> (Spec, Vec<Exchange>) {
    let token = unique_token("conformance");
    let scoped = unique_token("conformance-scoped");
    let sim = sim_with(
        vec![TokenSpec::all_scopes(token.clone()), TokenSpec::with_scopes(scoped.clone(), &["server:view"])],
        |_| {},
    )
    .await;
    let proxy = Recorder::start(sim.addr()).await;
    let api = client_with(&proxy.base_url(), &token, |_| {});
    drive(&api, &sim).await;
    // 403: a token without the scope; 401: a token Forge does not know.
    client_with(&proxy.base_url(), &scoped, |_| {}).delete_database(SERVER, 1).await.unwrap_err();
    client_with(&proxy.base_url(), "unknown-token", |_| {}).current_user().await.unwrap_err();
    (Spec::load(), proxy.exchanges())
}

#[tokio::test]
async fn every_exchange_of_every_used_operation_conforms_to_the_published_document() {
    let (spec, exchanges) = recorded_run().await;
    let violations: BTreeSet<String> = exchanges.iter().flat_map(|x| spec.violations(x)).collect();
    let seen: BTreeSet<String> =
        exchanges.iter().filter_map(|x| spec.operation(&x.method, &x.path)).map(|op| op.to_string()).collect();
    let used: BTreeSet<String> = USED.iter().map(|s| s.to_string()).collect();
    let statuses: BTreeSet<u16> = exchanges.iter().map(|x| x.status).collect();
    println!("{} exchanges, {} operations, statuses {statuses:?}", exchanges.len(), seen.len());
    for e in openapi::EXCEPTIONS {
        assert!(!e.source().is_empty(), "every tolerated departure names where it was recorded");
        println!("tolerated: {}", e.source());
    }
    for v in &violations {
        println!("VIOLATION {v}");
    }
    assert!(violations.is_empty(), "{} departures from the document (printed above)", violations.len());
    assert_eq!(seen, used, "the run drives exactly the operations the client uses");
    for status in [401, 403, 404, 422, 429] {
        assert!(statuses.contains(&status), "the run includes a {status} answer");
    }
}

/// The check is only worth something if it catches the two ways drift happens.
#[tokio::test]
async fn the_check_catches_a_dropped_required_field_and_a_renamed_request_field() {
    let spec = Spec::load();
    let op =
        Operation { method: "POST".into(), template: "/orgs/{organization}/servers/{server}/database/schemas".into() };
    assert_eq!(spec.operation("POST", "/orgs/demo/servers/1/database/schemas"), Some(op));
    let good = Exchange {
        method: "POST".into(),
        path: "/orgs/demo/servers/1/database/schemas".into(),
        query: vec![],
        request: Some(json!({"name": "pr_1_app"})),
        status: 202,
        response: Some(json!({"data": {"id": "7", "type": "databases",
            "attributes": {"name": "pr_1_app", "status": "installing",
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"},
            "links": {"self": {"href": "https://forge.laravel.com/api/orgs/demo/servers/1/database/schemas/7"}}}})),
    };
    assert_eq!(spec.violations(&good), Vec::<String>::new());

    let mut renamed = good.clone();
    renamed.request = Some(json!({"database_name": "pr_1_app"}));
    assert!(!spec.violations(&renamed).is_empty(), "a renamed request field is caught");

    let mut dropped = good.clone();
    dropped.response.as_mut().unwrap()["data"]["attributes"].as_object_mut().unwrap().remove("status");
    assert!(!spec.violations(&dropped).is_empty(), "a dropped required response field is caught");

    let mut undeclared = good.clone();
    undeclared.query = vec![("include".into(), "tags".into())];
    assert!(!spec.violations(&undeclared).is_empty(), "an undeclared query parameter is caught");
}

/// The CRD offers exactly the PHP versions Forge's API accepts.
#[test]
fn the_crd_php_versions_are_the_documents() {
    use kube::CustomResourceExt;
    let crd = serde_json::to_value(switchyard::api::preview_environment::PreviewEnvironment::crd()).unwrap();
    let site = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["site"];
    let offered = &site["properties"]["phpVersion"]["enum"];
    let document: serde_json::Value =
        serde_json::from_str(include_str!("testdata/forge-openapi/forge.openapi.json")).unwrap();
    assert_eq!(offered, &document["components"]["schemas"]["PhpVersion"]["enum"]);
}
