//! Router, the middleware every API request passes (log → auth → scope → throttle →
//! faults), Laravel-style error bodies and the `/_sim` control endpoints.

use super::faults::{FaultAction, FaultSpec};
use super::model::ApiError;
use super::ratelimit::Decision;
use super::{Sim, fingerprint, handlers};
use crate::serve::Seen;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const JSON_API: &str = "application/vnd.api+json";

pub type ApiResult = Result<Response, ApiError>;

fn json_response(status: StatusCode, content_type: &'static str, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn message(status: StatusCode, msg: &str) -> Response {
    json_response(status, "application/json", &json!({"message": msg}))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::NotFound(m) => message(StatusCode::NOT_FOUND, &m),
            ApiError::Forbidden(m) => message(StatusCode::FORBIDDEN, &m),
            ApiError::BadRequest(m) => message(StatusCode::BAD_REQUEST, &m),
            ApiError::Server(m) => message(StatusCode::INTERNAL_SERVER_ERROR, &m),
            ApiError::Validation(errors) => {
                let first =
                    errors.values().flatten().next().cloned().unwrap_or_else(|| "The given data was invalid.".into());
                let extra = errors.values().map(Vec::len).sum::<usize>().saturating_sub(1);
                let msg = match extra {
                    0 => first,
                    1 => format!("{first} (and 1 more error)"),
                    n => format!("{first} (and {n} more errors)"),
                };
                json_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "application/json",
                    &json!({"message": msg, "errors": errors}),
                )
            }
        }
    }
}

/// 200 with a JSON:API document.
pub fn ok(body: Value) -> ApiResult {
    Ok(json_response(StatusCode::OK, JSON_API, &body))
}

/// 202 with a JSON:API document.
pub fn accepted(body: Value) -> ApiResult {
    Ok(json_response(StatusCode::ACCEPTED, JSON_API, &body))
}

/// 202 with an empty body (∅ in the contract).
pub fn accepted_empty() -> ApiResult {
    Ok(StatusCode::ACCEPTED.into_response())
}

pub fn no_content() -> ApiResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Everything a handler needs from the request, extracted once.
pub struct Api {
    pub sim: Sim,
    pub params: HashMap<String, String>,
    pub query: HashMap<String, String>,
    pub ctx: super::render::Ctx,
    pub method: String,
    pub route: String,
    pub path: String,
    pub origin: String,
}

impl FromRequestParts<Sim> for Api {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, sim: &Sim) -> Result<Self, Self::Rejection> {
        let params =
            Path::<HashMap<String, String>>::from_request_parts(parts, sim).await.map(|p| p.0).unwrap_or_default();
        let query =
            Query::<HashMap<String, String>>::from_request_parts(parts, sim).await.map(|q| q.0).unwrap_or_default();
        let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost").to_string();
        let origin = format!("http://{host}");
        let route = parts.extensions.get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_default();
        Ok(Api {
            sim: sim.clone(),
            params,
            query,
            ctx: super::render::Ctx { base: format!("{origin}/api"), now: Utc::now(), delay: sim.config.async_delay },
            method: parts.method.to_string(),
            route,
            path: parts.uri.path().to_string(),
            origin,
        })
    }
}

impl Api {
    pub fn org(&self) -> &str {
        self.params.get("org").map(String::as_str).unwrap_or_default()
    }

    /// An integer path id; anything else is a 404, as Laravel's route model binding answers.
    pub fn id(&self, name: &str) -> Result<u64, ApiError> {
        let raw = self.params.get(name).map(String::as_str).unwrap_or_default();
        raw.parse().map_err(|_| ApiError::NotFound(format!("No query results for model [{name}] {raw}")))
    }

    pub fn list_url(&self) -> String {
        format!("{}{}", self.origin, self.path)
    }
}

/// The request body as a JSON object. Laravel treats a missing or non-JSON body as no input.
pub fn body_map(body: &Bytes) -> Map<String, Value> {
    serde_json::from_slice::<Value>(body).ok().and_then(|v| v.as_object().cloned()).unwrap_or_default()
}

/// Scope each route needs (`x-permissions`), for tokens created with a scope list.
fn required_scope(method: &Method, route: &str) -> Option<&'static str> {
    let write = *method != Method::GET;
    let r = route;
    Some(if r.contains("/environment") {
        "site:manage-environment"
    } else if r.contains("/deployments") && (write || r.ends_with("/log")) {
        "site:manage-deploys"
    } else if (r.contains("/domains") || r.contains("/certificates")) && write {
        "site:manage-ssl"
    } else if r.contains("/commands") && write {
        "site:manage-commands"
    } else if r.contains("/database/") && *method == Method::DELETE {
        "server:delete-databases"
    } else if r.contains("/database/") && write {
        "server:create-databases"
    } else if r.contains("/background-processes") && *method == Method::DELETE {
        "server:delete-daemons"
    } else if r.contains("/background-processes") && write {
        "server:create-daemons"
    } else if r.contains("/scheduled-jobs") && *method == Method::DELETE {
        "server:delete-schedulers"
    } else if r.contains("/scheduled-jobs") && write {
        "server:create-schedulers"
    } else if r.ends_with("/servers/{server}/sites") && *method == Method::POST {
        "site:create"
    } else if r.ends_with("/sites/{site}") && *method == Method::DELETE {
        "site:delete"
    } else if r.contains("/sites/{site}") && write {
        "site:meta"
    } else if r.ends_with("/servers/{server}") && write {
        "server:manage-meta"
    } else if r.contains("/servers") || r.contains("/sites") {
        "server:view"
    } else {
        return None;
    })
}

/// The bearer token of a request, if it sent one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}

fn fault_response(action: &FaultAction, limit: u32) -> Response {
    match action {
        FaultAction::Status { status, body, retry_after } => {
            let code = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let default_msg = match *status {
                429 => "Too Many Attempts.",
                500 => "Server Error",
                502 => "Bad Gateway",
                503 => "Service Unavailable",
                _ => code.canonical_reason().unwrap_or("Error"),
            };
            let body = body.clone().unwrap_or_else(|| json!({"message": default_msg}));
            let mut resp = json_response(code, "application/json", &body);
            if *status == 429 {
                let secs = retry_after.unwrap_or(1);
                let h = resp.headers_mut();
                h.insert("retry-after", HeaderValue::from(secs));
                h.insert("x-ratelimit-reset", HeaderValue::from(Utc::now().timestamp() as u64 + secs));
                h.insert("x-ratelimit-limit", HeaderValue::from(limit));
                h.insert("x-ratelimit-remaining", HeaderValue::from(0u32));
            }
            resp
        }
        FaultAction::RawBody { status, body, content_type } => {
            let mut resp = (StatusCode::from_u16(*status).unwrap_or(StatusCode::OK), body.clone()).into_response();
            let ct = content_type.clone().unwrap_or_else(|| "application/json".into());
            if let Ok(v) = HeaderValue::from_str(&ct) {
                resp.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            resp
        }
        _ => message(StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout"),
    }
}

async fn hang(action: &FaultAction) {
    if let FaultAction::Hang { ms } = action {
        tokio::time::sleep(Duration::from_millis(ms.unwrap_or(3_600_000))).await;
    }
}

fn fault_name(action: &FaultAction, after: bool) -> String {
    let kind = match action {
        FaultAction::Status { status, .. } => format!("status {status}"),
        FaultAction::RawBody { status, .. } => format!("raw body {status}"),
        FaultAction::Latency { ms } => format!("latency {ms}ms"),
        FaultAction::Hang { .. } => "hang".into(),
        FaultAction::CertificateFailure => "certificate failure".into(),
        FaultAction::DeploymentFailure => "deployment failure".into(),
    };
    if after { format!("{kind} after processing") } else { kind }
}

/// The pipeline every `/api` request goes through.
async fn api_middleware(State(sim): State<Sim>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_else(|| path.clone());
    let token = bearer(req.headers()).map(str::to_string);
    let fp = token.as_deref().map(fingerprint);
    let mut fault_label = None;

    let response = 'resp: {
        let spec = match token.as_deref() {
            None => break 'resp message(StatusCode::UNAUTHORIZED, "Unauthenticated."),
            Some(t) if sim.config.tokens.is_empty() => super::TokenSpec::all_scopes(t),
            Some(t) => match sim.config.tokens.iter().find(|s| s.token == t) {
                Some(s) => s.clone(),
                None => break 'resp message(StatusCode::UNAUTHORIZED, "Unauthenticated."),
            },
        };
        if let (Some(scopes), Some(needed)) = (&spec.scopes, required_scope(&method, &route))
            && !scopes.contains(needed)
        {
            break 'resp message(StatusCode::FORBIDDEN, "This action is unauthorized.");
        }
        let key = fp.clone().unwrap_or_default();
        let decision = sim.limiter().hit(&key, Instant::now());
        let (limit, remaining) = match decision {
            Decision::Allowed { limit, remaining } => (limit, remaining),
            Decision::Limited { limit, retry_after } => {
                let secs = retry_after.as_millis().div_ceil(1000).max(1) as u64;
                let mut resp = message(StatusCode::TOO_MANY_REQUESTS, "Too Many Attempts.");
                let h = resp.headers_mut();
                h.insert("x-ratelimit-limit", HeaderValue::from(limit));
                h.insert("x-ratelimit-remaining", HeaderValue::from(0u32));
                h.insert("retry-after", HeaderValue::from(secs));
                h.insert("x-ratelimit-reset", HeaderValue::from(Utc::now().timestamp() as u64 + secs));
                break 'resp resp;
            }
        };
        let plan = {
            let mut rng = rand::rng();
            let mut roll = || rand::RngExt::random::<f64>(&mut rng);
            sim.faults().plan(method.as_str(), &route, &path, &mut roll)
        };
        if plan.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(plan.latency_ms)).await;
        }
        let mut resp = if let Some(action) = &plan.before {
            fault_label = Some(fault_name(action, false));
            hang(action).await;
            fault_response(action, limit)
        } else {
            // A real server finishes what it started when the client hangs up (a killed
            // operator): run the handler on its own task so a dropped connection cannot
            // stop it between its state change and its MariaDB side effect.
            let resp = match tokio::spawn(next.run(req)).await {
                Ok(resp) => resp,
                Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, Body::from("handler failed")).into_response(),
            };
            if resp.status().is_success() && method != Method::GET {
                sim.persist();
            }
            match &plan.after {
                Some(action) => {
                    fault_label = Some(fault_name(action, true));
                    hang(action).await;
                    fault_response(action, limit)
                }
                None => resp,
            }
        };
        let h = resp.headers_mut();
        h.entry("x-ratelimit-limit").or_insert(HeaderValue::from(limit));
        h.entry("x-ratelimit-remaining").or_insert(HeaderValue::from(remaining));
        resp
    };

    sim.log().record(Seen {
        method: method.to_string(),
        route,
        path,
        status: response.status().as_u16(),
        token: fp,
        fault: fault_label,
        started,
    });
    response
}

async fn not_found(req: Request) -> Response {
    let path = req.uri().path().trim_start_matches('/').to_string();
    message(StatusCode::NOT_FOUND, &format!("The route {path} could not be found."))
}

// ---- control endpoints (no auth, not rate limited, not logged) ----

async fn control_requests(State(sim): State<Sim>) -> Response {
    json_response(StatusCode::OK, "application/json", &sim.request_summary())
}

async fn control_clear_requests(State(sim): State<Sim>) -> Response {
    sim.log().clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn control_faults_list(State(sim): State<Sim>) -> Response {
    json_response(StatusCode::OK, "application/json", &json!({"faults": sim.faults().list()}))
}

async fn control_faults_add(State(sim): State<Sim>, body: Bytes) -> Response {
    // Accept one spec or a list of specs.
    let specs: Result<Vec<FaultSpec>, _> = serde_json::from_slice::<Vec<FaultSpec>>(&body)
        .or_else(|_| serde_json::from_slice::<FaultSpec>(&body).map(|s| vec![s]));
    match specs {
        Ok(specs) => {
            let mut faults = sim.faults();
            for s in specs {
                faults.add(s);
            }
            json_response(StatusCode::CREATED, "application/json", &json!({"faults": faults.list()}))
        }
        Err(e) => {
            json_response(StatusCode::UNPROCESSABLE_ENTITY, "application/json", &json!({"message": e.to_string()}))
        }
    }
}

async fn control_faults_clear(State(sim): State<Sim>) -> Response {
    sim.faults().clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn control_state(State(sim): State<Sim>) -> Response {
    let world = sim.world(Utc::now()).clone();
    json_response(StatusCode::OK, "application/json", &serde_json::to_value(world).unwrap_or(Value::Null))
}

async fn control_reset(State(sim): State<Sim>) -> Response {
    sim.reset();
    StatusCode::NO_CONTENT.into_response()
}

async fn control_health() -> Response {
    (StatusCode::OK, Body::from("ok")).into_response()
}

pub fn router(sim: Sim) -> Router {
    let control = Router::new()
        .route("/_sim/health", get(control_health))
        .route("/_sim/requests", get(control_requests).delete(control_clear_requests))
        .route("/_sim/faults", get(control_faults_list).post(control_faults_add).delete(control_faults_clear))
        .route("/_sim/state", get(control_state))
        .route("/_sim/reset", post(control_reset));
    let api = handlers::routes().fallback(not_found).layer(middleware::from_fn_with_state(sim.clone(), api_middleware));
    Router::new().merge(control).merge(api).with_state(sim)
}
