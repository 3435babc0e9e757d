//! Scheduled jobs; server-level and site-level routes share these handlers (the `site`
//! path parameter tells them apart).

use super::lists::{filter, page_of, sort, ts_key};
use crate::forge::api::{Api, ApiResult, accepted, accepted_empty, body_map, ok};
use crate::forge::model::ApiError;
use axum::body::Bytes;

fn site_param(api: &Api) -> Result<Option<u64>, ApiError> {
    if api.params.contains_key("site") { api.id("site").map(Some) } else { Ok(None) }
}

pub(super) async fn list_jobs(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let server = w.server(api.org(), api.id("server")?)?.id;
    let site = site_param(&api)?;
    if let Some(s) = site {
        w.site(api.org(), Some(server), s)?;
    }
    let (now, delay) = (api.ctx.now, api.ctx.timing.step);
    let items: Vec<_> = w.scheduled_jobs.values().filter(|j| j.server_id == server && j.site_id == site).collect();
    let mut items = filter(items, &api.query, &["status", "user"], |j, f| {
        Some(if f == "user" {
            j.user.clone()
        } else {
            crate::forge::lifecycle::install_status(j.created_at, j.deleted_at, now, delay).to_string()
        })
    })?;
    sort(&mut items, &api.query, &["created_at", "updated_at", "status"], |j, _| ts_key(j.created_at))?;
    page_of(&api, items, |j| j.id, |j| api.ctx.job(&w, j).into())
}

pub(super) async fn create_job(api: Api, body: Bytes) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    let id = w.create_job(api.org(), api.id("server")?, site_param(&api)?, &body_map(&body), api.ctx.now)?;
    accepted(serde_json::json!({"data": api.ctx.job(&w, &w.scheduled_jobs[&id])}))
}

pub(super) async fn get_job(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let j = w.job(api.org(), api.id("server")?, site_param(&api)?, api.id("job")?)?;
    ok(serde_json::json!({"data": api.ctx.job(&w, j)}))
}

pub(super) async fn delete_job(api: Api) -> ApiResult {
    let mut w = api.sim.world(api.ctx.now);
    w.delete_job(api.org(), api.id("server")?, site_param(&api)?, api.id("job")?, api.ctx.now)?;
    accepted_empty()
}

pub(super) async fn job_output(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let j = w.job(api.org(), api.id("server")?, site_param(&api)?, api.id("job")?)?;
    ok(api.ctx.job_output(j))
}
