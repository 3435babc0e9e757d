//! Deployments of a site and the deployment settings under `…/deployments/`: status,
//! script, push-to-deploy, deploy hook.

use super::lists::{filter, page_of, sort, ts_key};
use crate::forge::api::{Api, ApiResult, accepted, accepted_empty, body_map, ok};
use crate::forge::faults::OutcomeFault;
use axum::body::Bytes;

pub(super) async fn trigger_deployment(api: Api) -> ApiResult {
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

pub(super) async fn list_deployments(api: Api) -> ApiResult {
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

pub(super) async fn get_deployment(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let d = w.deployment(api.org(), api.id("server")?, api.id("site")?, api.id("deployment")?)?;
    ok(serde_json::json!({"data": api.ctx.deployment(&w, d)}))
}

pub(super) async fn deployment_log(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let d = w.deployment(api.org(), api.id("server")?, api.id("site")?, api.id("deployment")?)?;
    ok(api.ctx.deployment_log(&w, d))
}

pub(super) async fn deployment_status(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let site = w.site(api.org(), Some(api.id("server")?), api.id("site")?)?;
    ok(api.ctx.deployment_status(&w, site))
}

pub(super) async fn reset_deployment_status(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    w.site(api.org(), Some(api.id("server")?), api.id("site")?)?;
    accepted_empty()
}

pub(super) async fn get_script(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let site = w.site(api.org(), Some(api.id("server")?), api.id("site")?)?;
    ok(serde_json::json!({"data": api.ctx.deployment_script(&w, site)}))
}

pub(super) async fn put_script(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    let (server, site_id) = (api.id("server")?, api.id("site")?);
    w.put_deployment_script(api.org(), server, site_id, &body_map(&body), api.ctx.now)?;
    let site = w.site(api.org(), Some(server), site_id)?;
    ok(serde_json::json!({"data": api.ctx.deployment_script(&w, site)}))
}

pub(super) async fn push_to_deploy_on(api: Api) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.set_push_to_deploy(api.org(), api.id("server")?, api.id("site")?, true, api.ctx.now)?;
    accepted_empty()
}

pub(super) async fn push_to_deploy_off(api: Api) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.set_push_to_deploy(api.org(), api.id("server")?, api.id("site")?, false, api.ctx.now)?;
    accepted_empty()
}

pub(super) async fn get_deploy_hook(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let site = w.site(api.org(), Some(api.id("server")?), api.id("site")?)?;
    ok(api.ctx.deploy_hook(site))
}

pub(super) async fn regenerate_deploy_hook(api: Api) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    let (server, site_id) = (api.id("server")?, api.id("site")?);
    w.regenerate_deploy_hook(api.org(), server, site_id, api.ctx.now)?;
    let site = w.site(api.org(), Some(server), site_id)?;
    ok(api.ctx.deploy_hook(site))
}
