//! Commands run on a site: run, list, show, output, delete.

use super::lists::{filter, page_of, sort, ts_key};
use crate::forge::api::{Api, ApiResult, accepted_empty, body_map, ok};
use crate::forge::render::Rendered;
use axum::body::Bytes;

pub(super) async fn run_command(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.run_command(api.org(), api.id("server")?, api.id("site")?, &body_map(&body), api.ctx.now)?;
    // R3/R4: "The command has been queued", no body.
    accepted_empty()
}

pub(super) async fn list_commands(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let site = w.site(api.org(), Some(api.id("server")?), api.id("site")?)?.id;
    let (now, delay) = (api.ctx.now, api.ctx.timing.step);
    let items: Vec<_> = w.commands.values().filter(|c| c.site_id == site).collect();
    let mut items = filter(items, &api.query, &["user_id", "status", "command"], |c, f| {
        Some(match f {
            "user_id" => c.user_id.to_string(),
            "status" => crate::forge::lifecycle::command_status(c.created_at, c.fails, now, delay).to_string(),
            _ => c.command.clone(),
        })
    })?;
    sort(&mut items, &api.query, &["status", "created_at", "updated_at"], |c, f| {
        if f == "status" {
            crate::forge::lifecycle::command_status(c.created_at, c.fails, now, delay).to_string()
        } else {
            format!("{}#{:020}", ts_key(c.created_at), c.id)
        }
    })?;
    let user = api.ctx.user(&w);
    page_of(&api, items, |c| c.id, |c| Rendered { data: api.ctx.command(&w, c), included: vec![user.clone()] })
}

pub(super) async fn get_command(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let c = w.command(api.org(), api.id("server")?, api.id("site")?, api.id("command")?)?;
    ok(serde_json::json!({"data": api.ctx.command(&w, c)}))
}

pub(super) async fn command_output(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let c = w.command(api.org(), api.id("server")?, api.id("site")?, api.id("command")?)?;
    ok(api.ctx.command_output(&w, c))
}

pub(super) async fn delete_command(api: Api) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.delete_command(api.org(), api.id("server")?, api.id("site")?, api.id("command")?)?;
    accepted_empty()
}
