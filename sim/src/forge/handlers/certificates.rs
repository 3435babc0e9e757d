//! Certificates, reachable under a domain or directly under the site: request, list
//! (plain arrays), the active one, show, delete, actions.

use crate::forge::api::{Api, ApiResult, accepted, accepted_empty, body_map, ok};
use crate::forge::faults::OutcomeFault;
use crate::forge::model::{ApiError, World};
use axum::body::Bytes;

pub(super) async fn request_certificate(api: Api, body: Bytes) -> ApiResult {
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

pub(super) async fn list_domain_certificates(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let d = w.domain(api.org(), api.id("server")?, api.id("site")?, api.id("domain")?)?;
    certificate_array(&api, &w, d.site_id, Some(d.id))
}

pub(super) async fn list_site_certificates(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let site = w.site(api.org(), Some(api.id("server")?), api.id("site")?)?.id;
    certificate_array(&api, &w, site, None)
}

pub(super) async fn active_certificate(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let d = w.domain(api.org(), api.id("server")?, api.id("site")?, api.id("domain")?)?;
    match w.active_certificate(d.id, api.ctx.now, api.ctx.timing.certificate_step) {
        Some(c) => ok(serde_json::json!({"data": api.ctx.certificate(&w, c)})),
        None => Err(ApiError::NotFound("No active certificate.".into())),
    }
}

fn domain_param(api: &Api) -> Result<Option<u64>, ApiError> {
    if api.params.contains_key("domain") { api.id("domain").map(Some) } else { Ok(None) }
}

pub(super) async fn get_certificate(api: Api) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    let c =
        w.certificate(api.org(), api.id("server")?, api.id("site")?, domain_param(&api)?, api.id("certificate")?)?;
    ok(serde_json::json!({"data": api.ctx.certificate(&w, c)}))
}

pub(super) async fn delete_certificate(api: Api) -> ApiResult {
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

pub(super) async fn certificate_action(api: Api, body: Bytes) -> ApiResult {
    let w = api.sim.world(api.ctx.now);
    w.certificate(api.org(), api.id("server")?, api.id("site")?, domain_param(&api)?, api.id("certificate")?)?;
    let map = body_map(&body);
    let mut input = crate::forge::validation::Input::new(&map);
    input.one_of("action", true, &["enable", "disable"]);
    input.finish().map_err(ApiError::Validation)?;
    accepted_empty()
}
