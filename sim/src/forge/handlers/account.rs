//! The token's user and its organizations (`/api/me`, `/api/user`, `/api/orgs`).

use super::lists::page_of;
use crate::forge::api::{Api, ApiResult, ok};

pub(super) async fn current_user(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    ok(serde_json::json!({"data": api.ctx.user(&w)}))
}

pub(super) async fn list_orgs(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let items: Vec<_> = w.organizations.values().collect();
    page_of(&api, items, |o| o.id, |o| api.ctx.organization(o).into())
}

pub(super) async fn get_org(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    ok(serde_json::json!({"data": api.ctx.organization(w.org(api.org())?)}))
}
