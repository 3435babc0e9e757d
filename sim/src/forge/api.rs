//! What every Forge handler works with: the `Api` extractor (path ids, query, render
//! context), `ApiResult` and its response constructors, and `ApiError` as a Laravel error
//! body. Kept apart from `http` (router and middleware) so handlers do not depend on the
//! router that mounts them.

use super::Sim;
use super::model::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, MatchedPath, Path, Query};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub const JSON_API: &str = "application/vnd.api+json";

pub type ApiResult = Result<Response, ApiError>;

pub(super) fn json_response(status: StatusCode, content_type: &'static str, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub(super) fn message(status: StatusCode, msg: &str) -> Response {
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
            ctx: super::render::Ctx {
                base: format!("{origin}/api"),
                now: Utc::now(),
                timing: sim.config.step_timing(),
            },
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
