//! Sites (list at token, organization and server level; show, create, update, delete)
//! and their environment file.

use super::lists::{filter, page_of, sort, ts_key};
use crate::forge::api::{Api, ApiResult, accepted, accepted_empty, body_map, ok};
use crate::forge::model::World;
use crate::forge::render::{NO_INCLUDE, document, includes};
use axum::body::Bytes;

fn site_key(w: &World, s: &crate::forge::model::Site, field: &str) -> String {
    let _ = w;
    match field {
        "name" => s.name.clone(),
        "created_at" => ts_key(s.created_at),
        "updated_at" => ts_key(s.updated_at),
        _ => String::new(),
    }
}

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

pub(super) async fn list_sites_token(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    list_sites(&api, &w, None, None)
}

pub(super) async fn list_sites_org(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    w.org(api.org())?;
    list_sites(&api, &w, None, Some(api.org()))
}

pub(super) async fn list_sites_server(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let server = w.server(api.org(), api.id("server")?)?.id;
    list_sites(&api, &w, Some(server), Some(api.org()))
}

pub(super) async fn get_site(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let site = w.site(api.org(), None, api.id("site")?)?;
    ok(document(api.ctx.site(&w, site, NO_INCLUDE)))
}

pub(super) async fn create_site(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    let id = w.create_site(api.org(), api.id("server")?, &body_map(&body), api.ctx.now)?;
    let site = w.site(api.org(), None, id)?;
    accepted(document(api.ctx.site(&w, site, NO_INCLUDE)))
}

pub(super) async fn update_site(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.update_site(api.org(), api.id("server")?, api.id("site")?, &body_map(&body), api.ctx.now)?;
    accepted_empty()
}

pub(super) async fn delete_site(api: Api) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.delete_site(api.org(), api.id("server")?, api.id("site")?, api.ctx.now)?;
    accepted_empty()
}

// ---- environment ----

pub(super) async fn get_environment(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let site = w.site(api.org(), Some(api.id("server")?), api.id("site")?)?;
    ok(serde_json::json!({"data": api.ctx.environment(&w, site)}))
}

pub(super) async fn put_environment(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.put_environment(api.org(), api.id("server")?, api.id("site")?, &body_map(&body), api.ctx.now)?;
    accepted_empty()
}
