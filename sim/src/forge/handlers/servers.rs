//! Servers of an organization: list, show, update.

use super::lists::{filter, page_of, sort, ts_key};
use crate::forge::api::{Api, ApiResult, body_map, ok};
use crate::forge::render::{NO_INCLUDE, document};
use axum::body::Bytes;

pub(super) async fn list_servers(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    w.org(api.org())?;
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
    page_of(&api, items, |s| s.id, |s| api.ctx.server(&w, s, NO_INCLUDE))
}

pub(super) async fn get_server(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let server = w.server(api.org(), api.id("server")?)?;
    ok(document(api.ctx.server(&w, server, NO_INCLUDE)))
}

pub(super) async fn update_server(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    let id = api.id("server")?;
    w.update_server(api.org(), id, &body_map(&body), api.ctx.now)?;
    let server = w.server(api.org(), id)?;
    ok(document(api.ctx.server(&w, server, &["tags".to_string()])))
}
