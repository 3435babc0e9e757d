//! Router, the pipeline every API request passes (log → behaviour → the design's
//! middleware for everything but registration) and the `/_sim` control endpoints.

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::behaviour::{Behaviour, Mode};
use super::{
    Entry, HEALTH_PATH, Instance, LICENSE_PATH, LoggedRequest, ORIGIN_HEADER, REGISTER_PATH, Registration, SHARE_PATH,
    SYNC_PATH, Sync, USER_AUTH_PATH, lock,
};
use crate::forge::{bearer, fingerprint};

/// Branch types the design knows.
pub(super) const BRANCH_TYPES: [&str; 2] = ["top_branch", "master_branch"];

fn message(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(json!({"message": msg}))).into_response()
}

fn origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(ORIGIN_HEADER)?.to_str().ok().map(str::trim).filter(|o| !o.is_empty())
}

/// The design's middleware: 401 without an origin or a bearer token, 403 unless the
/// origin is a registered, active branch and the token is the key it registered.
fn authorize(sim: &Instance, headers: &HeaderMap) -> Option<Response> {
    let (Some(origin), Some(key)) = (origin(headers), bearer(headers)) else {
        return Some(message(StatusCode::UNAUTHORIZED, "Missing branch origin or API key."));
    };
    let registry = lock(&sim.registry);
    match registry.iter().find(|e| e.shown.branch_name == origin) {
        Some(e) if e.shown.is_active && e.key == key => None,
        Some(e) if e.shown.is_active => Some(message(StatusCode::FORBIDDEN, "Invalid API key.")),
        _ => Some(message(StatusCode::FORBIDDEN, "Unauthorized branch origin.")),
    }
}

/// Logs every API request and applies the behaviour (fail, slow, flap) before it is served.
async fn api_pipeline(State(sim): State<Instance>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let key = bearer(req.headers()).map(fingerprint);
    let caller = origin(req.headers()).map(str::to_string);
    let decision = sim.behaviour().decide(&path);
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    let mut injected = None;
    let response = if let Some(status) = decision.fail {
        injected = Some(format!("status {status}"));
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        message(code, code.canonical_reason().unwrap_or("Error"))
    } else {
        next.run(req).await
    };
    let mut log = sim.log();
    let seq = log.len() as u64 + 1;
    log.push(LoggedRequest {
        seq,
        at: Utc::now(),
        method,
        path,
        status: response.status().as_u16(),
        key,
        origin: caller,
        injected,
        duration_ms: started.elapsed().as_millis() as u64,
    });
    response
}

async fn middleware_guard(State(sim): State<Instance>, req: Request, next: Next) -> Response {
    match authorize(&sim, req.headers()) {
        Some(rejected) => rejected,
        None => next.run(req).await,
    }
}

async fn health(State(sim): State<Instance>) -> Response {
    let body =
        json!({"status": "ok", "branch": sim.config.name, "version": sim.config.version, "timestamp": Utc::now()});
    axum::Json(body).into_response()
}

fn body_map(body: &Bytes) -> Option<Map<String, Value>> {
    serde_json::from_slice::<Value>(body).ok().and_then(|v| v.as_object().cloned())
}

/// Laravel-style 422 when fields are missing or malformed.
fn validation(errors: Map<String, Value>) -> Response {
    let first = errors.values().find_map(|v| v[0].as_str()).unwrap_or("The given data was invalid.").to_string();
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({"message": first, "errors": errors}))).into_response()
}

fn required(errors: &mut Map<String, Value>, field: &str) {
    let label = field.replace('_', " ");
    errors.insert(field.into(), json!([format!("The {label} field is required.")]));
}

async fn register_branch(State(sim): State<Instance>, body: Bytes) -> Response {
    let input = body_map(&body).unwrap_or_default();
    let field = |name: &str| input.get(name).and_then(Value::as_str).map(str::trim).unwrap_or_default().to_string();
    let (name, url, type_, api_key) =
        (field("branch_name"), field("branch_url"), field("branch_type"), field("api_key"));
    let mut errors = Map::new();
    for (key, value) in [("branch_name", &name), ("branch_url", &url), ("branch_type", &type_), ("api_key", &api_key)] {
        if value.is_empty() {
            required(&mut errors, key);
        }
    }
    if name.len() > 255 {
        errors.insert("branch_name".into(), json!(["The branch name field must not be greater than 255 characters."]));
    }
    if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
        errors.insert("branch_url".into(), json!(["The branch url field must be a valid URL."]));
    }
    if !type_.is_empty() && !BRANCH_TYPES.contains(&type_.as_str()) {
        errors.insert("branch_type".into(), json!(["The selected branch type is invalid."]));
    }
    if !errors.is_empty() {
        return validation(errors);
    }
    let mut registry = lock(&sim.registry);
    if let Some(existing) = registry.iter_mut().find(|e| e.shown.branch_name == name) {
        existing.shown.duplicates += 1;
        if sim.config.duplicate_status == 422 {
            let mut errors = Map::new();
            errors.insert("branch_name".into(), json!(["The branch name has already been taken."]));
            return validation(errors);
        }
        let stored = json!({"branch_name": existing.shown.branch_name, "branch_url": existing.shown.branch_url,
            "branch_type": existing.shown.branch_type, "is_active": existing.shown.is_active});
        let body = json!({"message": "Branch already registered.", "branch": stored});
        return (StatusCode::CONFLICT, axum::Json(body)).into_response();
    }
    let shown = Registration {
        branch_name: name,
        branch_url: url,
        branch_type: type_,
        api_key: fingerprint(&api_key),
        is_active: true,
        registered_at: Utc::now(),
        duplicates: 0,
    };
    let branch = json!({"branch_name": shown.branch_name, "branch_url": shown.branch_url,
        "branch_type": shown.branch_type, "is_active": true});
    registry.push(Entry { shown, key: api_key });
    (StatusCode::CREATED, axum::Json(json!({"message": "Branch registered successfully.", "branch": branch})))
        .into_response()
}

fn caller(headers: &HeaderMap) -> String {
    origin(headers).unwrap_or_default().to_string()
}

async fn sync_organization(State(sim): State<Instance>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(input) = body_map(&body) else {
        return validation(Map::from_iter([("organization".into(), json!(["The organization field is required."]))]));
    };
    let mut errors = Map::new();
    if !input.get("organization").is_some_and(Value::is_object) {
        errors.insert("organization".into(), json!(["The organization field must be an array."]));
    }
    if !input.get("users").is_some_and(Value::is_array) {
        errors.insert("users".into(), json!(["The users field must be an array."]));
    }
    if input.get("license").is_none_or(Value::is_null) {
        required(&mut errors, "license");
    }
    if !errors.is_empty() {
        return validation(errors);
    }
    let users = input["users"].as_array().map_or(0, Vec::len);
    let received_at = Utc::now();
    sim.syncs().push(Sync { origin: caller(&headers), received_at, payload: Value::Object(input) });
    axum::Json(json!({"message": "Organization synced successfully.", "users_synced": users})).into_response()
}

/// The license's text: a string, or an object's `key`.
fn license_text(license: &Value) -> Option<&str> {
    match license {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("key").and_then(Value::as_str),
        _ => None,
    }
}

async fn validate_license(State(sim): State<Instance>, headers: HeaderMap, body: Bytes) -> Response {
    let input = body_map(&body).unwrap_or_default();
    let Some(license) = input.get("license").and_then(license_text) else {
        return validation(Map::from_iter([("license".into(), json!(["The license field is required."]))]));
    };
    let valid = sim.config.licenses.iter().any(|l| l == license);
    sim.license_checks().push(Sync {
        origin: caller(&headers),
        received_at: Utc::now(),
        payload: Value::Object(input),
    });
    let body = if valid {
        json!({"valid": true, "message": "License is valid."})
    } else {
        json!({"valid": false, "message": "License is not valid for this organization."})
    };
    axum::Json(body).into_response()
}

async fn share_resource(State(sim): State<Instance>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(input) = body_map(&body) else {
        return validation(Map::from_iter([("resource_type".into(), json!(["The resource type field is required."]))]));
    };
    sim.shares().push(Sync { origin: caller(&headers), received_at: Utc::now(), payload: Value::Object(input) });
    axum::Json(json!({"message": "Resource shared successfully."})).into_response()
}

/// Whether the user named in the body is among the users of the last organization sync.
async fn user_authentication(State(sim): State<Instance>, body: Bytes) -> Response {
    let input = body_map(&body).unwrap_or_default();
    let Some(email) = input.get("email").and_then(Value::as_str) else {
        return validation(Map::from_iter([("email".into(), json!(["The email field is required."]))]));
    };
    let known = sim.syncs().last().and_then(|s| s.payload["users"].as_array().cloned()).unwrap_or_default();
    let user = known.into_iter().find(|u| u.get("email").and_then(Value::as_str) == Some(email));
    axum::Json(json!({"authenticated": user.is_some(), "user": user})).into_response()
}

async fn not_found(req: Request) -> Response {
    let path = req.uri().path().trim_start_matches('/').to_string();
    message(StatusCode::NOT_FOUND, &format!("The route {path} could not be found."))
}

// ---- control endpoints (no auth, not logged) ----

async fn control_registrations(State(sim): State<Instance>) -> Response {
    axum::Json(json!({"registrations": sim.registrations()})).into_response()
}

async fn control_deregister(State(sim): State<Instance>, Path(name): Path<String>) -> Response {
    if sim.deregister(&name) { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND }.into_response()
}

async fn control_activate(State(sim): State<Instance>, Path(name): Path<String>) -> Response {
    if sim.set_active(&name, true) { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND }.into_response()
}

async fn control_deactivate(State(sim): State<Instance>, Path(name): Path<String>) -> Response {
    if sim.set_active(&name, false) { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND }.into_response()
}

async fn control_license_checks(State(sim): State<Instance>) -> Response {
    axum::Json(json!({"license_checks": *sim.license_checks(), "shares": *sim.shares()})).into_response()
}

async fn control_syncs(State(sim): State<Instance>) -> Response {
    axum::Json(json!({"syncs": *sim.syncs()})).into_response()
}

async fn control_requests(State(sim): State<Instance>) -> Response {
    let log = sim.log();
    axum::Json(json!({"total": log.len(), "requests": *log})).into_response()
}

async fn control_clear_requests(State(sim): State<Instance>) -> Response {
    sim.log().clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn control_behaviour(State(sim): State<Instance>) -> Response {
    axum::Json(json!(*sim.behaviour())).into_response()
}

async fn control_set_behaviour(State(sim): State<Instance>, body: Bytes) -> Response {
    match serde_json::from_slice::<Behaviour>(&body) {
        Ok(b) => {
            *sim.behaviour() = b.clone();
            axum::Json(json!(b)).into_response()
        }
        Err(e) => message(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    }
}

/// Body of the convenience endpoints; every field optional.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ControlInput {
    /// Status of failing responses (default 503).
    status: Option<u16>,
    /// `slow`: added latency.
    ms: Option<u64>,
    /// `flap`: fail exactly this many requests instead of alternating.
    fail_next: Option<u32>,
    /// `flap`: start with a failure (default: start with a success).
    start_failing: bool,
    /// Limit to requests under this path.
    path_prefix: Option<String>,
}

fn control_input(body: &Bytes) -> Result<ControlInput, serde_json::Error> {
    if body.is_empty() {
        return Ok(ControlInput::default());
    }
    serde_json::from_slice(body)
}

/// Applies a control call: a new mode (or latency), keeping what the call does not name.
fn control(sim: &Instance, body: &Bytes, mode: impl FnOnce(&ControlInput) -> Option<Mode>) -> Response {
    let input = match control_input(body) {
        Ok(i) => i,
        Err(e) => return message(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    };
    let mut behaviour = sim.behaviour();
    if let Some(mode) = mode(&input) {
        behaviour.mode = mode;
    }
    if let Some(ms) = input.ms {
        behaviour.latency_ms = ms;
    }
    if input.path_prefix.is_some() {
        behaviour.path_prefix = input.path_prefix;
    }
    axum::Json(json!(*behaviour)).into_response()
}

async fn control_fail(State(sim): State<Instance>, body: Bytes) -> Response {
    control(&sim, &body, |i| Some(Mode::Fail { status: i.status.unwrap_or(503) }))
}

async fn control_slow(State(sim): State<Instance>, body: Bytes) -> Response {
    control(&sim, &body, |_| None)
}

async fn control_flap(State(sim): State<Instance>, body: Bytes) -> Response {
    control(&sim, &body, |i| {
        let status = i.status.unwrap_or(503);
        Some(match i.fail_next {
            Some(n) => Mode::FailNext { status, remaining: n },
            None => Mode::Flap { status, fail_next: i.start_failing },
        })
    })
}

async fn control_heal(State(sim): State<Instance>) -> Response {
    *sim.behaviour() = Behaviour::default();
    axum::Json(json!(Behaviour::default())).into_response()
}

async fn control_reset(State(sim): State<Instance>) -> Response {
    sim.reset();
    StatusCode::NO_CONTENT.into_response()
}

/// The whole simulator: the design's routes (all but registration behind its
/// middleware) behind the request pipeline, and `/_sim` control endpoints. Other
/// modules add routes with [`Router::merge`].
pub fn router(sim: Instance) -> Router {
    let control = Router::new()
        .route("/_sim/registrations", get(control_registrations))
        .route("/_sim/registrations/{name}", delete(control_deregister))
        .route("/_sim/registrations/{name}/activate", post(control_activate))
        .route("/_sim/registrations/{name}/deactivate", post(control_deactivate))
        .route("/_sim/syncs", get(control_syncs))
        .route("/_sim/calls", get(control_license_checks))
        .route("/_sim/requests", get(control_requests).delete(control_clear_requests))
        .route("/_sim/behaviour", get(control_behaviour).put(control_set_behaviour))
        .route("/_sim/fail", post(control_fail))
        .route("/_sim/slow", post(control_slow))
        .route("/_sim/flap", post(control_flap))
        .route("/_sim/heal", post(control_heal))
        .route("/_sim/reset", post(control_reset));
    let guarded = Router::new()
        .route(HEALTH_PATH, get(health))
        .route(SYNC_PATH, post(sync_organization))
        .route(LICENSE_PATH, post(validate_license))
        .route(SHARE_PATH, post(share_resource))
        .route(USER_AUTH_PATH, post(user_authentication))
        .route_layer(middleware::from_fn_with_state(sim.clone(), middleware_guard));
    let api = Router::new()
        .route(REGISTER_PATH, post(register_branch))
        .merge(guarded)
        .route_layer(middleware::from_fn_with_state(sim.clone(), api_pipeline));
    Router::new().merge(control).merge(api).fallback(not_found).with_state(sim)
}
