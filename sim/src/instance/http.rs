//! Router, the pipeline every API request passes (log → behaviour → key → origin) and
//! the `/_sim` control endpoints.

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::behaviour::{Behaviour, Mode};
use super::{Instance, LoggedRequest, ORIGIN_HEADER, REGISTER_PATH, Registration, SYNC_PATH, Sync};
use crate::forge::{bearer, fingerprint};

fn message(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(json!({"message": msg}))).into_response()
}

fn origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(ORIGIN_HEADER)?.to_str().ok().map(str::trim).filter(|o| !o.is_empty())
}

/// Rejects a request without an accepted key or origin; `None` lets it through.
fn authorize(sim: &Instance, headers: &HeaderMap) -> Option<Response> {
    let accepted = match bearer(headers) {
        None => false,
        Some(key) => sim.config.api_keys.is_empty() || sim.config.api_keys.iter().any(|k| k == key),
    };
    if !accepted {
        return Some(message(StatusCode::UNAUTHORIZED, "Unauthenticated."));
    }
    match origin(headers) {
        None => Some(message(StatusCode::BAD_REQUEST, "The X-Branch-Origin header is required.")),
        Some(o) if !sim.config.allowed_origins.is_empty() && !sim.config.allowed_origins.iter().any(|a| a == o) => {
            Some(message(StatusCode::FORBIDDEN, "This origin is not allowed."))
        }
        Some(_) => None,
    }
}

/// The pipeline every API request goes through.
async fn api_middleware(State(sim): State<Instance>, req: Request, next: Next) -> Response {
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
    } else if let Some(rejected) = authorize(&sim, req.headers()) {
        rejected
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

async fn health(State(sim): State<Instance>) -> Response {
    axum::Json(json!({"status": "ok", "version": sim.config.version, "name": sim.config.name})).into_response()
}

fn body_map(body: &Bytes) -> Map<String, Value> {
    serde_json::from_slice::<Value>(body).ok().and_then(|v| v.as_object().cloned()).unwrap_or_default()
}

/// Laravel-style 422 when fields are missing or malformed.
fn validation(errors: Map<String, Value>) -> Response {
    let first = errors.values().find_map(|v| v[0].as_str()).unwrap_or("The given data was invalid.").to_string();
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({"message": first, "errors": errors}))).into_response()
}

async fn register_branch(State(sim): State<Instance>, headers: HeaderMap, body: Bytes) -> Response {
    let input = body_map(&body);
    let field = |name: &str| input.get(name).and_then(Value::as_str).map(str::trim).unwrap_or_default().to_string();
    let (name, url, type_, api_key) = (field("name"), field("url"), field("type"), field("api_key"));
    let mut errors = Map::new();
    for (key, value) in [("name", &name), ("url", &url), ("type", &type_), ("api_key", &api_key)] {
        if value.is_empty() {
            errors.insert(key.into(), json!([format!("The {key} field is required.")]));
        }
    }
    if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
        errors.insert("url".into(), json!(["The url field must be a valid URL."]));
    }
    if !type_.is_empty() && !matches!(type_.to_ascii_lowercase().as_str(), "top" | "master") {
        errors.insert("type".into(), json!(["The selected type is invalid."]));
    }
    if !errors.is_empty() {
        return validation(errors);
    }
    let now = Utc::now();
    let origin = origin(&headers).unwrap_or_default().to_string();
    let registered_with = bearer(&headers).map(fingerprint).unwrap_or_default();
    let mut registrations = sim.registrations();
    let (status, times) = match registrations.iter_mut().find(|r| r.name == name) {
        Some(existing) => {
            existing.times += 1;
            existing.url = url.clone();
            existing.type_ = type_.clone();
            existing.api_key = fingerprint(&api_key);
            existing.origin = origin;
            existing.registered_with = registered_with;
            existing.registered_at = now;
            (StatusCode::OK, existing.times)
        }
        None => {
            registrations.push(Registration {
                name: name.clone(),
                url: url.clone(),
                type_: type_.clone(),
                api_key: fingerprint(&api_key),
                origin,
                registered_with,
                registered_at: now,
                times: 1,
            });
            (StatusCode::CREATED, 1)
        }
    };
    let body =
        json!({"registered": true, "name": name, "url": url, "type": type_, "registered_at": now, "times": times});
    (status, axum::Json(body)).into_response()
}

async fn sync_organization(State(sim): State<Instance>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(payload @ Value::Object(_)) = serde_json::from_slice::<Value>(&body) else {
        return message(StatusCode::BAD_REQUEST, "The body must be a JSON object.");
    };
    let received_at = Utc::now();
    let origin = origin(&headers).unwrap_or_default().to_string();
    sim.syncs().push(Sync { origin, received_at, payload });
    axum::Json(json!({"synced": true, "received_at": received_at})).into_response()
}

async fn not_found(req: Request) -> Response {
    let path = req.uri().path().trim_start_matches('/').to_string();
    message(StatusCode::NOT_FOUND, &format!("The route {path} could not be found."))
}

// ---- control endpoints (no auth, not logged) ----

async fn control_registrations(State(sim): State<Instance>) -> Response {
    axum::Json(json!({"registrations": *sim.registrations()})).into_response()
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

/// The whole simulator: API endpoints behind the request pipeline, and `/_sim` control
/// endpoints. Other modules add routes with [`Router::merge`].
pub fn router(sim: Instance) -> Router {
    let control = Router::new()
        .route("/_sim/registrations", get(control_registrations))
        .route("/_sim/syncs", get(control_syncs))
        .route("/_sim/requests", get(control_requests).delete(control_clear_requests))
        .route("/_sim/behaviour", get(control_behaviour).put(control_set_behaviour))
        .route("/_sim/fail", post(control_fail))
        .route("/_sim/slow", post(control_slow))
        .route("/_sim/flap", post(control_flap))
        .route("/_sim/heal", post(control_heal))
        .route("/_sim/reset", post(control_reset));
    let api = Router::new()
        .route(&sim.config.health_path, get(health))
        .route(REGISTER_PATH, post(register_branch))
        .route(SYNC_PATH, post(sync_organization))
        .route_layer(middleware::from_fn_with_state(sim.clone(), api_middleware));
    Router::new().merge(control).merge(api).fallback(not_found).with_state(sim)
}
