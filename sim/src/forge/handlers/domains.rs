//! Domains of a site: list, create, show, update, delete, actions.

use super::lists::{filter, page_of, sort, ts_key};
use crate::forge::api::{Api, ApiResult, accepted, accepted_empty, body_map, no_content, ok};
use axum::body::Bytes;

pub(super) async fn list_domains(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let site = w.site(api.org(), Some(api.id("server")?), api.id("site")?)?.id;
    let now = api.ctx.now;
    let delay = api.ctx.timing.step;
    let items: Vec<_> = w.domains.values().filter(|d| d.site_id == site).collect();
    let mut items = filter(items, &api.query, &["status", "type", "name"], |d, f| match f {
        "status" => Some(crate::forge::lifecycle::domain_status(d.created_at, d.deleted_at, now, delay).to_string()),
        "type" => Some(if d.primary { "primary" } else { "alias" }.to_string()),
        _ => Some(d.name.clone()),
    })?;
    sort(&mut items, &api.query, &["name", "created_at"], |d, f| {
        if f == "name" { d.name.clone() } else { ts_key(d.created_at) }
    })?;
    page_of(&api, items, |d| d.id, |d| api.ctx.domain(&w, d).into())
}

pub(super) async fn create_domain(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    let id = w.create_domain(api.org(), api.id("server")?, api.id("site")?, &body_map(&body), api.ctx.now)?;
    accepted(serde_json::json!({"data": api.ctx.domain(&w, &w.domains[&id])}))
}

pub(super) async fn get_domain(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let d = w.domain(api.org(), api.id("server")?, api.id("site")?, api.id("domain")?)?;
    ok(serde_json::json!({"data": api.ctx.domain(&w, d)}))
}

pub(super) async fn update_domain(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    let (server, site, domain) = (api.id("server")?, api.id("site")?, api.id("domain")?);
    w.update_domain(api.org(), server, site, domain, &body_map(&body), api.ctx.now)?;
    ok(serde_json::json!({"data": api.ctx.domain(&w, &w.domains[&domain])}))
}

pub(super) async fn delete_domain(api: Api) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.delete_domain(api.org(), api.id("server")?, api.id("site")?, api.id("domain")?, api.ctx.now)?;
    no_content()
}

pub(super) async fn domain_action(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.domain_action(api.org(), api.id("server")?, api.id("site")?, api.id("domain")?, &body_map(&body), api.ctx.now)?;
    accepted_empty()
}
