//! Router, the middleware every API request passes (log → auth → scope → throttle →
//! faults) and the `/_sim` control endpoints. The handlers and the `Api` extractor they
//! take live in `handlers` and `api`; this module mounts them.

use super::api::{json_response, message};
use super::faults::{FaultAction, FaultSpec};
use super::ratelimit::Decision;
use super::{Sim, fingerprint, handlers};
use crate::serve::Seen;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

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
