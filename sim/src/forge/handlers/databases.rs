//! Database schemas and users of a server. With `--mysql-url` each change also happens in
//! MariaDB, outside the world lock; a create that MariaDB refuses is dropped from the world.

use super::lists::{filter, page_of, sort, ts_key};
use crate::forge::api::{Api, ApiResult, accepted, accepted_empty, body_map, ok};
use crate::forge::model::{ApiError, World};
use axum::body::Bytes;

fn mysql_failed(e: crate::forge::mysql::MysqlError) -> ApiError {
    tracing::error!(error = %e, "MariaDB side effect failed");
    ApiError::Server("Server Error".into())
}

pub(super) async fn list_databases(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let server = w.server(api.org(), api.id("server")?)?.id;
    let (now, delay) = (api.ctx.now, api.ctx.timing.step);
    let items: Vec<_> = w.databases.values().filter(|d| d.server_id == server).collect();
    let mut items = filter(items, &api.query, &["name", "status"], |d, f| {
        Some(if f == "name" {
            d.name.clone()
        } else {
            crate::forge::lifecycle::install_status(d.created_at, d.deleted_at, now, delay).to_string()
        })
    })?;
    sort(&mut items, &api.query, &["name", "created_at", "updated_at"], |d, f| {
        if f == "name" { d.name.clone() } else { ts_key(d.created_at) }
    })?;
    page_of(&api, items, |d| d.id, |d| api.ctx.database(&w, d).into())
}

pub(super) async fn create_database(api: Api, body: Bytes) -> ApiResult {
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

pub(super) async fn get_database(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let d = w.database(api.org(), api.id("server")?, api.id("database")?)?;
    ok(serde_json::json!({"data": api.ctx.database(&w, d)}))
}

pub(super) async fn delete_database(api: Api) -> ApiResult {
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

pub(super) async fn sync_databases(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    w.server(api.org(), api.id("server")?)?;
    accepted_empty()
}

pub(super) async fn list_database_users(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let server = w.server(api.org(), api.id("server")?)?.id;
    let (now, delay) = (api.ctx.now, api.ctx.timing.step);
    let items: Vec<_> = w.database_users.values().filter(|u| u.server_id == server).collect();
    let mut items = filter(items, &api.query, &["name", "status"], |u, f| {
        Some(if f == "name" {
            u.name.clone()
        } else {
            crate::forge::lifecycle::database_user_status(u.created_at, u.updated_at, u.deleted_at, now, delay)
                .to_string()
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

pub(super) async fn create_database_user(api: Api, body: Bytes) -> ApiResult {
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

pub(super) async fn get_database_user(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let u = w.database_user(api.org(), api.id("server")?, api.id("user")?)?;
    ok(serde_json::json!({"data": api.ctx.database_user(&w, u)}))
}

pub(super) async fn update_database_user(api: Api, body: Bytes) -> ApiResult {
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

pub(super) async fn delete_database_user(api: Api) -> ApiResult {
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
