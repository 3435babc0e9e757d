//! Background processes (workers) of a server: list, create, show, update, delete,
//! actions, log.

use super::lists::{filter, page_of, sort};
use crate::forge::api::{Api, ApiResult, accepted, accepted_empty, body_map, ok};
use axum::body::Bytes;

pub(super) async fn list_processes(api: Api) -> ApiResult {
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

pub(super) async fn create_process(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    let id = w.create_background_process(api.org(), api.id("server")?, &body_map(&body), api.ctx.now)?;
    accepted(serde_json::json!({"data": api.ctx.background_process(&w.background_processes[&id])}))
}

pub(super) async fn get_process(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let p = w.background_process(api.org(), api.id("server")?, api.id("process")?)?;
    ok(serde_json::json!({"data": api.ctx.background_process(p)}))
}

pub(super) async fn update_process(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.update_background_process(api.org(), api.id("server")?, api.id("process")?, &body_map(&body), api.ctx.now)?;
    accepted_empty()
}

pub(super) async fn delete_process(api: Api) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.delete_background_process(api.org(), api.id("server")?, api.id("process")?, api.ctx.now)?;
    accepted_empty()
}

pub(super) async fn process_action(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.background_process_action(
        api.org(),
        api.id("server")?,
        api.id("process")?,
        &body_map(&body),
        api.ctx.now,
        api.ctx.timing.step,
    )?;
    accepted_empty()
}

pub(super) async fn process_log(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let p = w.background_process(api.org(), api.id("server")?, api.id("process")?)?;
    ok(
        serde_json::json!({"data": {"id": p.id.to_string(), "type": "backgroundProcessLogs", "attributes": {"content": format!("{} started\n", p.command)}}}),
    )
}
