//! One handler per Forge operation. Each locks the world once, applies one model
//! operation, renders the result; MariaDB side effects happen outside the lock.

use super::Sim;
use super::api::{Api, ApiResult, accepted, accepted_empty, body_map, no_content, ok};
use super::faults::OutcomeFault;
use super::model::{ApiError, World};
use super::render::{self, Rendered, document, includes, list_document, paginate};
use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use chrono::SecondsFormat;
use std::cmp::Ordering;
use std::collections::HashMap;

const SITE: &str = "/api/orgs/{org}/servers/{server}/sites/{site}";
const SERVER: &str = "/api/orgs/{org}/servers/{server}";

pub fn routes() -> Router<Sim> {
    let s = |suffix: &str| format!("{SITE}{suffix}");
    let srv = |suffix: &str| format!("{SERVER}{suffix}");
    Router::new()
        .route("/api/me", get(current_user))
        .route("/api/user", get(current_user))
        .route("/api/orgs", get(list_orgs))
        .route("/api/orgs/{org}", get(get_org))
        .route("/api/orgs/{org}/servers", get(list_servers))
        .route(SERVER, get(get_server).put(update_server))
        .route("/api/sites", get(list_sites_token))
        .route("/api/orgs/{org}/sites", get(list_sites_org))
        .route("/api/orgs/{org}/sites/{site}", get(get_site))
        .route(&srv("/sites"), get(list_sites_server).post(create_site))
        .route(SITE, axum::routing::put(update_site).delete(delete_site))
        .route(&s("/environment"), get(get_environment).put(put_environment))
        .route(&s("/deployments"), get(list_deployments).post(trigger_deployment))
        .route(&s("/deployments/status"), get(deployment_status).delete(reset_deployment_status))
        .route(&s("/deployments/script"), get(get_script).put(put_script))
        .route(&s("/deployments/push-to-deploy"), post(push_to_deploy_on).delete(push_to_deploy_off))
        .route(&s("/deployments/deploy-hook"), get(get_deploy_hook).put(regenerate_deploy_hook))
        .route(&s("/deployments/{deployment}"), get(get_deployment))
        .route(&s("/deployments/{deployment}/log"), get(deployment_log))
        .route(&s("/domains"), get(list_domains).post(create_domain))
        .route(&s("/domains/{domain}"), get(get_domain).patch(update_domain).delete(delete_domain))
        .route(&s("/domains/{domain}/actions"), post(domain_action))
        .route(&s("/domains/{domain}/certificates"), get(list_domain_certificates).post(request_certificate))
        .route(&s("/domains/{domain}/certificates/active"), get(active_certificate))
        .route(&s("/domains/{domain}/certificate"), get(active_certificate))
        .route(&s("/domains/{domain}/certificates/{certificate}"), get(get_certificate).delete(delete_certificate))
        .route(&s("/domains/{domain}/certificates/{certificate}/actions"), post(certificate_action))
        .route(&s("/certificates"), get(list_site_certificates))
        .route(&s("/certificates/{certificate}"), get(get_certificate).delete(delete_certificate))
        .route(&s("/certificates/{certificate}/actions"), post(certificate_action))
        .route(&s("/commands"), get(list_commands).post(run_command))
        .route(&s("/commands/{command}"), get(get_command).delete(delete_command))
        .route(&s("/commands/{command}/output"), get(command_output))
        .route(&s("/scheduled-jobs"), get(list_jobs).post(create_job))
        .route(&s("/scheduled-jobs/{job}"), get(get_job).delete(delete_job))
        .route(&s("/scheduled-jobs/{job}/output"), get(job_output))
        .route(&srv("/scheduled-jobs"), get(list_jobs).post(create_job))
        .route(&srv("/scheduled-jobs/{job}"), get(get_job).delete(delete_job))
        .route(&srv("/scheduled-jobs/{job}/output"), get(job_output))
        .route(&srv("/database/schemas"), get(list_databases).post(create_database))
        .route(&srv("/database/schemas/synchronizations"), post(sync_databases))
        .route(&srv("/database/schemas/{database}"), get(get_database).delete(delete_database))
        .route(&srv("/database/users"), get(list_database_users).post(create_database_user))
        .route(
            &srv("/database/users/{user}"),
            get(get_database_user).put(update_database_user).delete(delete_database_user),
        )
        .route(&srv("/background-processes"), get(list_processes).post(create_process))
        .route(&srv("/background-processes/{process}"), get(get_process).put(update_process).delete(delete_process))
        .route(&srv("/background-processes/{process}/actions"), post(process_action))
        .route(&srv("/background-processes/{process}/log"), get(process_log))
}

// ---- list helpers: filter, sort, paginate ----

fn ts_key(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Applies `sort=a,-b` over the allowed fields (spatie/laravel-query-builder: unknown → 400).
fn sort<T>(
    items: &mut [&T],
    query: &HashMap<String, String>,
    allowed: &[&str],
    key: impl Fn(&T, &str) -> String,
) -> Result<(), ApiError> {
    let Some(spec) = query.get("sort").filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let fields: Vec<(bool, &str)> =
        spec.split(',').map(|f| f.trim()).map(|f| (f.starts_with('-'), f.trim_start_matches('-'))).collect();
    if let Some((_, bad)) = fields.iter().find(|(_, f)| !allowed.contains(f)) {
        return Err(ApiError::BadRequest(format!(
            "Requested sort(s) `{bad}` is not allowed. Allowed sort(s) are `{}`.",
            allowed.join(", ")
        )));
    }
    items.sort_by(|a, b| {
        fields
            .iter()
            .map(|(desc, f)| {
                let o = key(a, f).cmp(&key(b, f));
                if *desc { o.reverse() } else { o }
            })
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    });
    Ok(())
}

/// `filter[field]`: names match partially and case-insensitively (the query builder's
/// default), everything else exactly. Clients must compare names themselves.
fn filter<'a, T>(
    items: Vec<&'a T>,
    query: &HashMap<String, String>,
    allowed: &[&str],
    value: impl Fn(&T, &str) -> Option<String>,
) -> Result<Vec<&'a T>, ApiError> {
    let mut out = items;
    for (k, want) in query {
        let Some(field) = k.strip_prefix("filter[").and_then(|f| f.strip_suffix(']')) else {
            continue;
        };
        if !allowed.contains(&field) {
            return Err(ApiError::BadRequest(format!(
                "Requested filter(s) `{field}` are not allowed. Allowed filter(s) are `{}`.",
                allowed.join(", ")
            )));
        }
        let partial = field == "name" || field == "command" || field == "directory";
        out.retain(|item| match value(item, field) {
            Some(v) if partial => v.to_lowercase().contains(&want.to_lowercase()),
            Some(v) => want.split(',').any(|w| w == v),
            None => false,
        });
    }
    Ok(out)
}

fn page_of<T>(api: &Api, items: Vec<&T>, id_of: impl Fn(&T) -> u64, render: impl Fn(&T) -> Rendered) -> ApiResult {
    let page = paginate(items, |i| id_of(i), &api.query)?;
    let rendered = render::PageSlice {
        items: page.items.into_iter().map(render).collect(),
        per_page: page.per_page,
        next_cursor: page.next_cursor,
        prev_cursor: page.prev_cursor,
    };
    ok(list_document(&api.list_url(), rendered, &api.query))
}

fn site_key(w: &World, s: &super::model::Site, field: &str) -> String {
    let _ = w;
    match field {
        "name" => s.name.clone(),
        "created_at" => ts_key(s.created_at),
        "updated_at" => ts_key(s.updated_at),
        _ => String::new(),
    }
}

// ---- user, organizations, servers ----

async fn current_user(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    ok(serde_json::json!({"data": api.ctx.user(&w)}))
}

async fn list_orgs(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let items: Vec<_> = w.organizations.values().collect();
    page_of(&api, items, |o| o.id, |o| api.ctx.organization(o).into())
}

async fn get_org(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    ok(serde_json::json!({"data": api.ctx.organization(w.org(api.org())?)}))
}

async fn list_servers(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    w.org(api.org())?;
    let inc = includes(&api.query);
    let items: Vec<_> = w.servers.values().filter(|s| s.organization == api.org()).collect();
    let mut items = filter(
        items,
        &api.query,
        &["name", "ip_address", "region", "size", "provider", "ubuntu_version", "php_version", "database_type"],
        |s, f| match f {
            "name" => Some(s.name.clone()),
            "ip_address" => Some(s.ip_address.clone()),
            "php_version" => Some(s.php_version.clone()),
            "database_type" => Some(s.database_type.clone()),
            _ => None,
        },
    )?;
    sort(
        &mut items,
        &api.query,
        &["name", "created_at", "updated_at", "php_version", "provider", "region", "ubuntu_version"],
        |s, f| match f {
            "name" => s.name.clone(),
            "created_at" => ts_key(s.created_at),
            "updated_at" => ts_key(s.updated_at),
            "php_version" => s.php_version.clone(),
            _ => String::new(),
        },
    )?;
    page_of(&api, items, |s| s.id, |s| api.ctx.server(&w, s, &inc))
}

async fn get_server(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let server = w.server(api.org(), api.id("server")?)?;
    ok(document(api.ctx.server(&w, server, &includes(&api.query))))
}

async fn update_server(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    let id = api.id("server")?;
    w.update_server(api.org(), id, &body_map(&body), api.ctx.now)?;
    let server = w.server(api.org(), id)?;
    ok(document(api.ctx.server(&w, server, &["tags".to_string()])))
}

// ---- sites ----

fn list_sites(api: &Api, w: &World, server: Option<u64>, org: Option<&str>) -> ApiResult {
    let inc = includes(&api.query);
    let items: Vec<_> = w
        .sites
        .values()
        .filter(|s| server.is_none_or(|id| s.server_id == id))
        .filter(|s| org.is_none_or(|o| w.servers.get(&s.server_id).is_some_and(|srv| srv.organization == o)))
        .collect();
    let mut items = filter(items, &api.query, &["name"], |s, _| Some(s.name.clone()))?;
    if server.is_some() {
        sort(&mut items, &api.query, &["name", "created_at", "updated_at"], |s, f| site_key(w, s, f))?;
    }
    page_of(api, items, |s| s.id, |s| api.ctx.site(w, s, &inc))
}

async fn list_sites_token(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    list_sites(&api, &w, None, None)
}

async fn list_sites_org(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    w.org(api.org())?;
    list_sites(&api, &w, None, Some(api.org()))
}

async fn list_sites_server(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let server = w.server(api.org(), api.id("server")?)?.id;
    list_sites(&api, &w, Some(server), Some(api.org()))
}

async fn get_site(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let site = w.site(api.org(), None, api.id("site")?)?;
    ok(document(api.ctx.site(&w, site, &includes(&api.query))))
}

async fn create_site(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    let id = w.create_site(api.org(), api.id("server")?, &body_map(&body), api.ctx.now)?;
    let site = w.site(api.org(), None, id)?;
    accepted(document(api.ctx.site(&w, site, &includes(&api.query))))
}

async fn update_site(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.update_site(api.org(), api.id("server")?, api.id("site")?, &body_map(&body), api.ctx.now)?;
    accepted_empty()
}

async fn delete_site(api: Api) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.delete_site(api.org(), api.id("server")?, api.id("site")?, api.ctx.now)?;
    accepted_empty()
}

// ---- environment ----

async fn get_environment(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let site = w.site(api.org(), Some(api.id("server")?), api.id("site")?)?;
    ok(serde_json::json!({"data": api.ctx.environment(&w, site)}))
}

async fn put_environment(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.put_environment(api.org(), api.id("server")?, api.id("site")?, &body_map(&body), api.ctx.now)?;
    accepted_empty()
}

// ---- deployments ----

async fn trigger_deployment(api: Api) -> ApiResult {
    let fails = {
        let mut rng = rand::rng();
        let mut roll = || rand::RngExt::random::<f64>(&mut rng);
        api.sim.faults().take_outcome(OutcomeFault::Deployment, &api.method, &api.route, &api.path, &mut roll)
    };
    let mut w = api.sim.world(api.ctx.now);
    let id = w.trigger_deployment(api.org(), api.id("server")?, api.id("site")?, fails, api.ctx.now)?;
    let d = &w.deployments[&id];
    accepted(serde_json::json!({"data": api.ctx.deployment(&w, d)}))
}

async fn list_deployments(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let site = w.site(api.org(), Some(api.id("server")?), api.id("site")?)?.id;
    let items: Vec<_> = w.deployments.values().filter(|d| d.site_id == site).collect();
    let mut items = filter(items, &api.query, &["commit_hash", "commit_message", "commit_author"], |d, f| match f {
        "commit_hash" => d.commit_hash.clone(),
        "commit_message" => d.commit_message.clone(),
        _ => d.commit_author.clone(),
    })?;
    // Oldest first by default (R1); `sort=-created_at` for newest first. Ids break ties.
    sort(&mut items, &api.query, &["created_at"], |d, _| format!("{}#{:020}", ts_key(d.created_at), d.id))?;
    page_of(&api, items, |d| d.id, |d| api.ctx.deployment(&w, d).into())
}

async fn get_deployment(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let d = w.deployment(api.org(), api.id("server")?, api.id("site")?, api.id("deployment")?)?;
    ok(serde_json::json!({"data": api.ctx.deployment(&w, d)}))
}

async fn deployment_log(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let d = w.deployment(api.org(), api.id("server")?, api.id("site")?, api.id("deployment")?)?;
    ok(api.ctx.deployment_log(d))
}

async fn deployment_status(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let site = w.site(api.org(), Some(api.id("server")?), api.id("site")?)?;
    ok(api.ctx.deployment_status(&w, site))
}

async fn reset_deployment_status(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    w.site(api.org(), Some(api.id("server")?), api.id("site")?)?;
    accepted_empty()
}

async fn get_script(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let site = w.site(api.org(), Some(api.id("server")?), api.id("site")?)?;
    ok(serde_json::json!({"data": api.ctx.deployment_script(&w, site)}))
}

async fn put_script(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    let (server, site_id) = (api.id("server")?, api.id("site")?);
    w.put_deployment_script(api.org(), server, site_id, &body_map(&body), api.ctx.now)?;
    let site = w.site(api.org(), Some(server), site_id)?;
    ok(serde_json::json!({"data": api.ctx.deployment_script(&w, site)}))
}

async fn push_to_deploy_on(api: Api) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.set_push_to_deploy(api.org(), api.id("server")?, api.id("site")?, true, api.ctx.now)?;
    accepted_empty()
}

async fn push_to_deploy_off(api: Api) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.set_push_to_deploy(api.org(), api.id("server")?, api.id("site")?, false, api.ctx.now)?;
    accepted_empty()
}

async fn get_deploy_hook(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let site = w.site(api.org(), Some(api.id("server")?), api.id("site")?)?;
    ok(api.ctx.deploy_hook(site))
}

async fn regenerate_deploy_hook(api: Api) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    let (server, site_id) = (api.id("server")?, api.id("site")?);
    w.regenerate_deploy_hook(api.org(), server, site_id, api.ctx.now)?;
    let site = w.site(api.org(), Some(server), site_id)?;
    ok(api.ctx.deploy_hook(site))
}

// ---- domains and certificates ----

async fn list_domains(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let site = w.site(api.org(), Some(api.id("server")?), api.id("site")?)?.id;
    let now = api.ctx.now;
    let delay = api.ctx.delay;
    let items: Vec<_> = w.domains.values().filter(|d| d.site_id == site).collect();
    let mut items = filter(items, &api.query, &["status", "type", "name"], |d, f| match f {
        "status" => Some(super::lifecycle::domain_status(d.created_at, d.deleted_at, now, delay).to_string()),
        "type" => Some(if d.primary { "primary" } else { "alias" }.to_string()),
        _ => Some(d.name.clone()),
    })?;
    sort(&mut items, &api.query, &["name", "created_at"], |d, f| {
        if f == "name" { d.name.clone() } else { ts_key(d.created_at) }
    })?;
    page_of(&api, items, |d| d.id, |d| api.ctx.domain(&w, d).into())
}

async fn create_domain(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    let id = w.create_domain(api.org(), api.id("server")?, api.id("site")?, &body_map(&body), api.ctx.now)?;
    accepted(serde_json::json!({"data": api.ctx.domain(&w, &w.domains[&id])}))
}

async fn get_domain(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let d = w.domain(api.org(), api.id("server")?, api.id("site")?, api.id("domain")?)?;
    ok(serde_json::json!({"data": api.ctx.domain(&w, d)}))
}

async fn update_domain(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    let (server, site, domain) = (api.id("server")?, api.id("site")?, api.id("domain")?);
    w.update_domain(api.org(), server, site, domain, &body_map(&body), api.ctx.now)?;
    ok(serde_json::json!({"data": api.ctx.domain(&w, &w.domains[&domain])}))
}

async fn delete_domain(api: Api) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.delete_domain(api.org(), api.id("server")?, api.id("site")?, api.id("domain")?, api.ctx.now)?;
    no_content()
}

async fn domain_action(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.domain_action(api.org(), api.id("server")?, api.id("site")?, api.id("domain")?, &body_map(&body), api.ctx.now)?;
    accepted_empty()
}

async fn request_certificate(api: Api, body: Bytes) -> ApiResult {
    let fails = {
        let mut rng = rand::rng();
        let mut roll = || rand::RngExt::random::<f64>(&mut rng);
        api.sim.faults().take_outcome(OutcomeFault::Certificate, &api.method, &api.route, &api.path, &mut roll)
    };
    let mut w = api.sim.world(api.ctx.now);
    let id = w.request_certificate(
        api.org(),
        api.id("server")?,
        api.id("site")?,
        api.id("domain")?,
        &body_map(&body),
        fails,
        api.ctx.now,
    )?;
    accepted(serde_json::json!({"data": api.ctx.certificate(&w, &w.certificates[&id])}))
}

/// Certificate lists are plain arrays, not paginated (contract §1).
fn certificate_array(api: &Api, w: &World, site: u64, domain: Option<u64>) -> ApiResult {
    let data: Vec<_> = w
        .certificates
        .values()
        .filter(|c| c.site_id == site && domain.is_none_or(|d| c.domain_id == d))
        .map(|c| api.ctx.certificate(w, c))
        .collect();
    ok(serde_json::json!({"data": data}))
}

async fn list_domain_certificates(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let d = w.domain(api.org(), api.id("server")?, api.id("site")?, api.id("domain")?)?;
    certificate_array(&api, &w, d.site_id, Some(d.id))
}

async fn list_site_certificates(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let site = w.site(api.org(), Some(api.id("server")?), api.id("site")?)?.id;
    certificate_array(&api, &w, site, None)
}

async fn active_certificate(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let d = w.domain(api.org(), api.id("server")?, api.id("site")?, api.id("domain")?)?;
    match w.active_certificate(d.id, api.ctx.now, api.ctx.delay) {
        Some(c) => ok(serde_json::json!({"data": api.ctx.certificate(&w, c)})),
        None => Err(ApiError::NotFound("No active certificate.".into())),
    }
}

fn domain_param(api: &Api) -> Result<Option<u64>, ApiError> {
    if api.params.contains_key("domain") { api.id("domain").map(Some) } else { Ok(None) }
}

async fn get_certificate(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let c =
        w.certificate(api.org(), api.id("server")?, api.id("site")?, domain_param(&api)?, api.id("certificate")?)?;
    ok(serde_json::json!({"data": api.ctx.certificate(&w, c)}))
}

async fn delete_certificate(api: Api) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.delete_certificate(
        api.org(),
        api.id("server")?,
        api.id("site")?,
        domain_param(&api)?,
        api.id("certificate")?,
        api.ctx.now,
    )?;
    accepted_empty()
}

async fn certificate_action(api: Api, body: Bytes) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    w.certificate(api.org(), api.id("server")?, api.id("site")?, domain_param(&api)?, api.id("certificate")?)?;
    let map = body_map(&body);
    let mut input = super::validation::Input::new(&map);
    input.one_of("action", true, &["enable", "disable"]);
    input.finish().map_err(ApiError::Validation)?;
    accepted_empty()
}

// ---- databases ----

fn mysql_failed(e: super::mysql::MysqlError) -> ApiError {
    tracing::error!(error = %e, "MariaDB side effect failed");
    ApiError::Server("Server Error".into())
}

async fn list_databases(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let server = w.server(api.org(), api.id("server")?)?.id;
    let (now, delay) = (api.ctx.now, api.ctx.delay);
    let items: Vec<_> = w.databases.values().filter(|d| d.server_id == server).collect();
    let mut items = filter(items, &api.query, &["name", "status"], |d, f| {
        Some(if f == "name" {
            d.name.clone()
        } else {
            super::lifecycle::install_status(d.created_at, d.deleted_at, now, delay).to_string()
        })
    })?;
    sort(&mut items, &api.query, &["name", "created_at", "updated_at"], |d, f| {
        if f == "name" { d.name.clone() } else { ts_key(d.created_at) }
    })?;
    page_of(&api, items, |d| d.id, |d| api.ctx.database(&w, d).into())
}

async fn create_database(api: Api, body: Bytes) -> ApiResult {
    let map = body_map(&body);
    let (id, user_id) = {
        let mut w = api.sim.world(api.ctx.now);
        w.create_database(api.org(), api.id("server")?, &map, api.ctx.now)?
    };
    if let Some(mysql) = &api.sim.mysql {
        let name = map.get("name").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let mut result = mysql.create_database(&name).await;
        if let (Ok(()), Some(user)) = (&result, map.get("user").and_then(|v| v.as_str())) {
            let password = map.get("password").and_then(|v| v.as_str()).unwrap_or_default();
            result = mysql.create_user(user, password, std::slice::from_ref(&name), false).await;
        }
        if let Err(e) = result {
            let mut w = api.sim.world(api.ctx.now);
            w.discard(id);
            if let Some(u) = user_id {
                w.discard(u);
            }
            return Err(mysql_failed(e));
        }
    }
    let w = api.sim.world(api.ctx.now);
    let d = w.databases.get(&id).ok_or_else(|| ApiError::Server("Server Error".into()))?;
    accepted(serde_json::json!({"data": api.ctx.database(&w, d)}))
}

async fn get_database(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let d = w.database(api.org(), api.id("server")?, api.id("database")?)?;
    ok(serde_json::json!({"data": api.ctx.database(&w, d)}))
}

async fn delete_database(api: Api) -> ApiResult {
    let (server, id) = (api.id("server")?, api.id("database")?);
    let name = {
        let mut w = api.sim.world(api.ctx.now);
        w.delete_database(api.org(), server, id, api.ctx.now)?;
        w.databases[&id].name.clone()
    };
    if let Some(mysql) = &api.sim.mysql {
        mysql.drop_database(&name).await.map_err(mysql_failed)?;
    }
    accepted_empty()
}

async fn sync_databases(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    w.server(api.org(), api.id("server")?)?;
    accepted_empty()
}

async fn list_database_users(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let server = w.server(api.org(), api.id("server")?)?.id;
    let (now, delay) = (api.ctx.now, api.ctx.delay);
    let items: Vec<_> = w.database_users.values().filter(|u| u.server_id == server).collect();
    let mut items = filter(items, &api.query, &["name", "status"], |u, f| {
        Some(if f == "name" {
            u.name.clone()
        } else {
            super::lifecycle::database_user_status(u.created_at, u.updated_at, u.deleted_at, now, delay).to_string()
        })
    })?;
    sort(&mut items, &api.query, &["name", "created_at", "updated_at"], |u, f| {
        if f == "name" { u.name.clone() } else { ts_key(u.created_at) }
    })?;
    page_of(&api, items, |u| u.id, |u| api.ctx.database_user(&w, u).into())
}

fn database_names(w: &World, ids: &[u64]) -> Vec<String> {
    ids.iter().filter_map(|id| w.databases.get(id)).map(|d| d.name.clone()).collect()
}

async fn create_database_user(api: Api, body: Bytes) -> ApiResult {
    let map = body_map(&body);
    let (id, dbs, read_only, name) = {
        let mut w = api.sim.world(api.ctx.now);
        let id = w.create_database_user(api.org(), api.id("server")?, &map, api.ctx.now)?;
        let u = &w.database_users[&id];
        (id, database_names(&w, &u.database_ids), u.read_only, u.name.clone())
    };
    if let Some(mysql) = &api.sim.mysql {
        let password = map.get("password").and_then(|v| v.as_str()).unwrap_or_default();
        if let Err(e) = mysql.create_user(&name, password, &dbs, read_only).await {
            api.sim.world(api.ctx.now).discard(id);
            return Err(mysql_failed(e));
        }
    }
    let w = api.sim.world(api.ctx.now);
    let u = w.database_users.get(&id).ok_or_else(|| ApiError::Server("Server Error".into()))?;
    accepted(serde_json::json!({"data": api.ctx.database_user(&w, u)}))
}

async fn get_database_user(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let u = w.database_user(api.org(), api.id("server")?, api.id("user")?)?;
    ok(serde_json::json!({"data": api.ctx.database_user(&w, u)}))
}

async fn update_database_user(api: Api, body: Bytes) -> ApiResult {
    let map = body_map(&body);
    let (name, dbs, read_only) = {
        let mut w = api.sim.world(api.ctx.now);
        let id = api.id("user")?;
        w.update_database_user(api.org(), api.id("server")?, id, &map, api.ctx.now)?;
        let u = &w.database_users[&id];
        (u.name.clone(), database_names(&w, &u.database_ids), u.read_only)
    };
    if let Some(mysql) = &api.sim.mysql {
        let password = map.get("password").and_then(|v| v.as_str());
        let grants = map.contains_key("database_ids").then_some(dbs.as_slice());
        mysql.update_user(&name, password, grants, read_only).await.map_err(mysql_failed)?;
    }
    accepted_empty()
}

async fn delete_database_user(api: Api) -> ApiResult {
    let (server, id) = (api.id("server")?, api.id("user")?);
    let name = {
        let mut w = api.sim.world(api.ctx.now);
        w.delete_database_user(api.org(), server, id, api.ctx.now)?;
        w.database_users[&id].name.clone()
    };
    if let Some(mysql) = &api.sim.mysql {
        mysql.drop_user(&name).await.map_err(mysql_failed)?;
    }
    accepted_empty()
}

// ---- background processes ----

async fn list_processes(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let server = w.server(api.org(), api.id("server")?)?.id;
    let items: Vec<_> = w.background_processes.values().filter(|p| p.server_id == server).collect();
    let mut items = filter(items, &api.query, &["user", "site_id", "directory"], |p, f| match f {
        "user" => Some(p.user.clone()),
        "site_id" => p.site_id.map(|s| s.to_string()),
        _ => p.directory.clone(),
    })?;
    sort(&mut items, &api.query, &["user"], |p, _| p.user.clone())?;
    page_of(&api, items, |p| p.id, |p| api.ctx.background_process(p).into())
}

async fn create_process(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    let id = w.create_background_process(api.org(), api.id("server")?, &body_map(&body), api.ctx.now)?;
    accepted(serde_json::json!({"data": api.ctx.background_process(&w.background_processes[&id])}))
}

async fn get_process(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let p = w.background_process(api.org(), api.id("server")?, api.id("process")?)?;
    ok(serde_json::json!({"data": api.ctx.background_process(p)}))
}

async fn update_process(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.update_background_process(api.org(), api.id("server")?, api.id("process")?, &body_map(&body), api.ctx.now)?;
    accepted_empty()
}

async fn delete_process(api: Api) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.delete_background_process(api.org(), api.id("server")?, api.id("process")?, api.ctx.now)?;
    accepted_empty()
}

async fn process_action(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.background_process_action(
        api.org(),
        api.id("server")?,
        api.id("process")?,
        &body_map(&body),
        api.ctx.now,
        api.ctx.delay,
    )?;
    accepted_empty()
}

async fn process_log(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let p = w.background_process(api.org(), api.id("server")?, api.id("process")?)?;
    ok(
        serde_json::json!({"data": {"id": p.id.to_string(), "type": "backgroundProcessLogs", "attributes": {"content": format!("{} started\n", p.command)}}}),
    )
}

// ---- scheduled jobs (server and site level share handlers) ----

fn site_param(api: &Api) -> Result<Option<u64>, ApiError> {
    if api.params.contains_key("site") { api.id("site").map(Some) } else { Ok(None) }
}

async fn list_jobs(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let server = w.server(api.org(), api.id("server")?)?.id;
    let site = site_param(&api)?;
    if let Some(s) = site {
        w.site(api.org(), Some(server), s)?;
    }
    let (now, delay) = (api.ctx.now, api.ctx.delay);
    let items: Vec<_> = w.scheduled_jobs.values().filter(|j| j.server_id == server && j.site_id == site).collect();
    let mut items = filter(items, &api.query, &["status", "user"], |j, f| {
        Some(if f == "user" {
            j.user.clone()
        } else {
            super::lifecycle::install_status(j.created_at, j.deleted_at, now, delay).to_string()
        })
    })?;
    sort(&mut items, &api.query, &["created_at", "updated_at", "status"], |j, _| ts_key(j.created_at))?;
    page_of(&api, items, |j| j.id, |j| api.ctx.job(&w, j).into())
}

async fn create_job(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    let id = w.create_job(api.org(), api.id("server")?, site_param(&api)?, &body_map(&body), api.ctx.now)?;
    accepted(serde_json::json!({"data": api.ctx.job(&w, &w.scheduled_jobs[&id])}))
}

async fn get_job(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let j = w.job(api.org(), api.id("server")?, site_param(&api)?, api.id("job")?)?;
    ok(serde_json::json!({"data": api.ctx.job(&w, j)}))
}

async fn delete_job(api: Api) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.delete_job(api.org(), api.id("server")?, site_param(&api)?, api.id("job")?, api.ctx.now)?;
    accepted_empty()
}

async fn job_output(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let j = w.job(api.org(), api.id("server")?, site_param(&api)?, api.id("job")?)?;
    ok(api.ctx.job_output(j))
}

// ---- site commands ----

async fn run_command(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.run_command(api.org(), api.id("server")?, api.id("site")?, &body_map(&body), api.ctx.now)?;
    // R3/R4: "The command has been queued", no body.
    accepted_empty()
}

async fn list_commands(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let site = w.site(api.org(), Some(api.id("server")?), api.id("site")?)?.id;
    let (now, delay) = (api.ctx.now, api.ctx.delay);
    let items: Vec<_> = w.commands.values().filter(|c| c.site_id == site).collect();
    let mut items = filter(items, &api.query, &["user_id", "status", "command"], |c, f| {
        Some(match f {
            "user_id" => c.user_id.to_string(),
            "status" => super::lifecycle::command_status(c.created_at, c.fails, now, delay).to_string(),
            _ => c.command.clone(),
        })
    })?;
    sort(&mut items, &api.query, &["status", "created_at", "updated_at"], |c, f| {
        if f == "status" {
            super::lifecycle::command_status(c.created_at, c.fails, now, delay).to_string()
        } else {
            format!("{}#{:020}", ts_key(c.created_at), c.id)
        }
    })?;
    let user = api.ctx.user(&w);
    page_of(&api, items, |c| c.id, |c| Rendered { data: api.ctx.command(&w, c), included: vec![user.clone()] })
}

async fn get_command(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let c = w.command(api.org(), api.id("server")?, api.id("site")?, api.id("command")?)?;
    ok(serde_json::json!({"data": api.ctx.command(&w, c)}))
}

async fn command_output(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let c = w.command(api.org(), api.id("server")?, api.id("site")?, api.id("command")?)?;
    ok(api.ctx.command_output(c))
}

async fn delete_command(api: Api) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.delete_command(api.org(), api.id("server")?, api.id("site")?, api.id("command")?)?;
    accepted_empty()
}
