//! Router, the middleware every API request passes (log → auth → rate limit), the API
//! handlers, GitHub-style errors and pagination, and the `/_sim` control endpoints.

use super::model::{ApiError, Contents, PullRequestSeed, RepositorySeed, Role, State as PrState};
use super::{DEFAULT_LOGIN, Sim, render};
use crate::forge::fingerprint;
use crate::forge::ratelimit::Decision;
use crate::serve::Seen;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, MatchedPath, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Instant;

const DOCS: &str = "https://docs.github.com/rest";

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    resp
}

/// GitHub's error body: `message`, `documentation_url`, `status` (a string).
fn error(status: StatusCode, message: &str) -> Response {
    json_response(
        status,
        &json!({"message": message, "documentation_url": DOCS, "status": status.as_u16().to_string()}),
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        api_error(self)
    }
}

fn api_error(e: ApiError) -> Response {
    match e {
        ApiError::Unprocessable(m) => json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"message": "Validation Failed", "errors": [{"message": m, "code": "custom"}],
                    "documentation_url": DOCS, "status": "422"}),
        ),
        other => error(StatusCode::from_u16(other.status()).unwrap_or(StatusCode::NOT_FOUND), &other.to_string()),
    }
}

type ApiResult = Result<Response, ApiError>;

/// The authenticated login, set by the middleware.
#[derive(Clone)]
struct Actor(String);

/// What every handler needs: the simulator, the origin for URLs, the caller, the query.
struct Ctx {
    sim: Sim,
    origin: String,
    login: String,
    query: HashMap<String, String>,
    path: String,
}

impl FromRequestParts<Sim> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, sim: &Sim) -> Result<Self, Self::Rejection> {
        let query =
            Query::<HashMap<String, String>>::from_request_parts(parts, sim).await.map(|q| q.0).unwrap_or_default();
        let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        let login = parts.extensions.get::<Actor>().map(|a| a.0.clone()).unwrap_or_else(|| DEFAULT_LOGIN.into());
        Ok(Ctx { sim: sim.clone(), origin: format!("http://{host}"), login, query, path: parts.uri.path().to_string() })
    }
}

/// A path number; GitHub answers 404 for anything that is not one.
fn number(raw: &str) -> Result<u64, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

/// One page of `items` with GitHub's `Link` header (`per_page` ≤ 100, default 30).
fn page(ctx: &Ctx, items: Vec<Value>) -> Response {
    let per_page = ctx.query.get("per_page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(30).clamp(1, 100);
    let page = ctx.query.get("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).max(1);
    let last = items.len().div_ceil(per_page).max(1);
    let chunk: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let mut resp = json_response(StatusCode::OK, &Value::Array(chunk));
    let link_to = |p: usize| {
        let mut q: Vec<(String, String)> =
            ctx.query.iter().filter(|(k, _)| *k != "page").map(|(k, v)| (k.clone(), v.clone())).collect();
        q.sort();
        q.push(("page".into(), p.to_string()));
        let qs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("<{}{}?{}>", ctx.origin, ctx.path, qs.join("&"))
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("{}; rel=\"prev\"", link_to(page - 1)));
        links.push(format!("{}; rel=\"first\"", link_to(1)));
    }
    if page < last {
        links.push(format!("{}; rel=\"next\"", link_to(page + 1)));
        links.push(format!("{}; rel=\"last\"", link_to(last)));
    }
    if !links.is_empty()
        && let Ok(v) = HeaderValue::from_str(&links.join(", "))
    {
        resp.headers_mut().insert(header::LINK, v);
    }
    resp
}

// ---- API handlers ----

async fn authenticated_user(ctx: Ctx) -> ApiResult {
    let user = ctx.sim.world().user(&ctx.login);
    Ok(json_response(StatusCode::OK, &render::user(&ctx.origin, &user)))
}

async fn get_repository(ctx: Ctx, Path((owner, repo)): Path<(String, String)>) -> ApiResult {
    let world = ctx.sim.world();
    let r = world.repository(&owner, &repo)?;
    Ok(json_response(StatusCode::OK, &render::repository(&ctx.origin, &world, r)))
}

async fn list_pulls(ctx: Ctx, Path((owner, repo)): Path<(String, String)>) -> ApiResult {
    let state = ctx.query.get("state").map(String::as_str).unwrap_or("open");
    if !["open", "closed", "all"].contains(&state) {
        return Err(ApiError::Unprocessable(format!("state {state:?} is not open, closed or all")));
    }
    let world = ctx.sim.world();
    let r = world.repository(&owner, &repo)?;
    let ascending = ctx.query.get("direction").is_some_and(|d| d == "asc");
    let mut pulls: Vec<_> = r
        .pulls
        .values()
        .filter(|p| match state {
            "open" => p.state == PrState::Open,
            "closed" => p.state == PrState::Closed,
            _ => true,
        })
        .collect();
    // GitHub's default: newest first.
    pulls.sort_by_key(|p| (p.created_at, p.number));
    if !ascending {
        pulls.reverse();
    }
    let items = pulls.into_iter().map(|p| render::pull_request(&ctx.origin, &world, r, p, false)).collect();
    Ok(page(&ctx, items))
}

async fn get_pull(ctx: Ctx, Path((owner, repo, n)): Path<(String, String, String)>) -> ApiResult {
    let n = number(&n)?;
    let world = ctx.sim.world();
    let r = world.repository(&owner, &repo)?;
    let pr = world.pull_request(&owner, &repo, n)?;
    Ok(json_response(StatusCode::OK, &render::pull_request(&ctx.origin, &world, r, pr, true)))
}

async fn collaborator_permission(ctx: Ctx, Path((owner, repo, login)): Path<(String, String, String)>) -> ApiResult {
    let mut world = ctx.sim.world();
    let role = world.repository(&owner, &repo)?.role_of(&login);
    let user = world.user(&login);
    let body = json!({
        "permission": role.permission(), "role_name": role.name(),
        "user": render::user(&ctx.origin, &user),
    });
    Ok(json_response(StatusCode::OK, &body))
}

#[derive(Deserialize)]
struct CommentBody {
    body: Option<String>,
}

fn comment_body(raw: &Bytes) -> Result<String, ApiError> {
    let parsed: CommentBody =
        serde_json::from_slice(raw).map_err(|_| ApiError::BadRequest("Problems parsing JSON".into()))?;
    parsed.body.ok_or_else(|| ApiError::Unprocessable("\"body\" wasn't supplied.".into()))
}

async fn list_comments(ctx: Ctx, Path((owner, repo, n)): Path<(String, String, String)>) -> ApiResult {
    let n = number(&n)?;
    let world = ctx.sim.world();
    let r = world.repository(&owner, &repo)?;
    let comments = world.comments(&owner, &repo, n)?;
    let items = comments.into_iter().map(|c| render::comment(&ctx.origin, &world, r, c)).collect();
    Ok(page(&ctx, items))
}

async fn create_comment(ctx: Ctx, Path((owner, repo, n)): Path<(String, String, String)>, raw: Bytes) -> ApiResult {
    let n = number(&n)?;
    let body = comment_body(&raw)?;
    let comment = ctx.sim.change(|w| w.create_comment(&owner, &repo, n, &ctx.login, &body, Utc::now()))?;
    let world = ctx.sim.world();
    let r = world.repository(&owner, &repo)?;
    let mut resp = json_response(StatusCode::CREATED, &render::comment(&ctx.origin, &world, r, &comment));
    let location = format!("{}/repos/{}/issues/comments/{}", ctx.origin, r.full_name(), comment.id);
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn get_comment(ctx: Ctx, Path((owner, repo, id)): Path<(String, String, String)>) -> ApiResult {
    let id = number(&id)?;
    let world = ctx.sim.world();
    let r = world.repository(&owner, &repo)?;
    let c = r.comments.get(&id).ok_or(ApiError::NotFound)?;
    Ok(json_response(StatusCode::OK, &render::comment(&ctx.origin, &world, r, c)))
}

async fn update_comment(ctx: Ctx, Path((owner, repo, id)): Path<(String, String, String)>, raw: Bytes) -> ApiResult {
    let id = number(&id)?;
    let body = comment_body(&raw)?;
    let comment = ctx.sim.change(|w| w.update_comment(&owner, &repo, id, &body, Utc::now()))?;
    let world = ctx.sim.world();
    let r = world.repository(&owner, &repo)?;
    Ok(json_response(StatusCode::OK, &render::comment(&ctx.origin, &world, r, &comment)))
}

async fn contents(ctx: Ctx, owner: String, repo: String, path: String, headers: HeaderMap) -> ApiResult {
    let world = ctx.sim.world();
    let r = world.repository(&owner, &repo)?;
    let ref_ = ctx.query.get("ref").filter(|r| !r.is_empty()).cloned().unwrap_or_else(|| r.default_branch.clone());
    let found = world.contents(&owner, &repo, &path, Some(&ref_))?;
    let raw = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/vnd.github.raw"));
    Ok(match found {
        Contents::File { content, .. } if raw => {
            let mut resp = (StatusCode::OK, content).into_response();
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.github.raw"));
            resp
        }
        Contents::File { path, content } => {
            json_response(StatusCode::OK, &render::file(&ctx.origin, r, &ref_, &path, &content))
        }
        Contents::Directory(entries) => {
            json_response(StatusCode::OK, &render::directory(&ctx.origin, r, &ref_, &entries))
        }
    })
}

async fn contents_root(ctx: Ctx, Path((owner, repo)): Path<(String, String)>, headers: HeaderMap) -> ApiResult {
    contents(ctx, owner, repo, String::new(), headers).await
}

async fn contents_path(
    ctx: Ctx,
    Path((owner, repo, path)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    contents(ctx, owner, repo, path, headers).await
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

/// `Authorization: Bearer T` or `Authorization: token T`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// The pipeline every API request goes through: auth, rate limit, handler, log.
async fn api_middleware(State(sim): State<Sim>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_else(|| path.clone());
    let token = bearer(req.headers()).map(str::to_string);
    let fp = token.as_deref().map(fingerprint);

    let response = 'resp: {
        let login = match token.as_deref() {
            None => break 'resp error(StatusCode::UNAUTHORIZED, "Requires authentication"),
            Some(_) if sim.config.tokens.is_empty() => DEFAULT_LOGIN.to_string(),
            Some(t) => match sim.config.tokens.iter().find(|s| s.token == t) {
                Some(s) => s.login.clone(),
                None => break 'resp error(StatusCode::UNAUTHORIZED, "Bad credentials"),
            },
        };
        let decision = sim.limiter().hit(fp.as_deref().unwrap_or_default(), Instant::now());
        let reset_in = |secs: u64| Utc::now().timestamp() as u64 + secs;
        let (limit, remaining, reset) = match decision {
            Decision::Allowed { limit, remaining } => (limit, remaining, reset_in(sim.config.rate_window.as_secs())),
            Decision::Limited { limit, retry_after } => {
                let user_id = sim.world().user(&login).id;
                let mut resp = error(
                    StatusCode::FORBIDDEN,
                    &format!(
                        "API rate limit exceeded for user ID {user_id}. If you reach out to GitHub Support for help, please include the request ID."
                    ),
                );
                rate_headers(resp.headers_mut(), limit, 0, reset_in(retry_after.as_secs().max(1)));
                break 'resp resp;
            }
        };
        req.extensions_mut().insert(Actor(login));
        let mut resp = next.run(req).await;
        rate_headers(resp.headers_mut(), limit, remaining, reset);
        resp
    };

    sim.log().record(Seen {
        method: method.to_string(),
        route,
        path,
        status: response.status().as_u16(),
        token: fp,
        fault: None,
        started,
    });
    response
}

fn rate_headers(h: &mut HeaderMap, limit: u32, remaining: u32, reset: u64) {
    h.insert("x-ratelimit-limit", HeaderValue::from(limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    h.insert("x-ratelimit-used", HeaderValue::from(limit - remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(reset));
    h.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
    h.insert("x-github-media-type", HeaderValue::from_static("github.v3; format=json"));
}

// ---- control endpoints (no auth, not rate limited, not logged) ----

fn control_result<T: serde::Serialize>(status: StatusCode, result: Result<T, ApiError>) -> Response {
    match result {
        Ok(v) => json_response(status, &serde_json::to_value(v).unwrap_or(Value::Null)),
        Err(e) => api_error(e),
    }
}

fn parse_seed<T: serde::de::DeserializeOwned + Default>(raw: &Bytes) -> Result<T, ApiError> {
    if raw.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(raw).map_err(|e| ApiError::Unprocessable(e.to_string()))
}

async fn control_put_repository(State(sim): State<Sim>, Path((o, r)): Path<(String, String)>, raw: Bytes) -> Response {
    let result =
        parse_seed::<RepositorySeed>(&raw).and_then(|seed| sim.change(|w| w.put_repository(&format!("{o}/{r}"), seed)));
    control_result(StatusCode::OK, result)
}

async fn control_put_pull(
    State(sim): State<Sim>,
    Path((o, r, n)): Path<(String, String, String)>,
    raw: Bytes,
) -> Response {
    let result = number(&n).and_then(|n| {
        let seed = parse_seed::<PullRequestSeed>(&raw)?;
        sim.change(|w| w.put_pull_request(&format!("{o}/{r}"), n, seed, Utc::now()))
    });
    control_result(StatusCode::OK, result)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleSeed {
    role: Role,
}

async fn control_put_collaborator(
    State(sim): State<Sim>,
    Path((o, r, login)): Path<(String, String, String)>,
    raw: Bytes,
) -> Response {
    match serde_json::from_slice::<RoleSeed>(&raw) {
        Ok(seed) => control_result(StatusCode::OK, sim.change(|w| w.set_role(&format!("{o}/{r}"), &login, seed.role))),
        Err(e) => api_error(ApiError::Unprocessable(e.to_string())),
    }
}

async fn control_put_file(
    State(sim): State<Sim>,
    Path((o, r, path)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    raw: Bytes,
) -> Response {
    let ref_ = q.get("ref").map(String::as_str);
    control_result(StatusCode::OK, sim.change(|w| w.put_file(&format!("{o}/{r}"), ref_, &path, raw.to_vec())))
}

async fn control_comments(State(sim): State<Sim>, Path((o, r)): Path<(String, String)>) -> Response {
    let world = sim.world();
    control_result(StatusCode::OK, world.repository(&o, &r).map(|repo| repo.comments.values().collect::<Vec<_>>()))
}

async fn control_requests(State(sim): State<Sim>) -> Response {
    json_response(StatusCode::OK, &sim.log().summary())
}

async fn control_clear_requests(State(sim): State<Sim>) -> Response {
    sim.log().clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn control_state(State(sim): State<Sim>) -> Response {
    json_response(StatusCode::OK, &serde_json::to_value(&*sim.world()).unwrap_or(Value::Null))
}

async fn control_reset(State(sim): State<Sim>) -> Response {
    sim.reset();
    StatusCode::NO_CONTENT.into_response()
}

pub fn router(sim: Sim) -> Router {
    const REPO: &str = "/repos/{owner}/{repo}";
    let r = |suffix: &str| format!("{REPO}{suffix}");
    let control = Router::new()
        .route("/_sim/health", get(|| async { "ok" }))
        .route("/_sim/requests", get(control_requests).delete(control_clear_requests))
        .route("/_sim/state", get(control_state))
        .route("/_sim/reset", axum::routing::post(control_reset))
        .route("/_sim/repos/{owner}/{repo}", put(control_put_repository))
        .route("/_sim/repos/{owner}/{repo}/pulls/{number}", put(control_put_pull))
        .route("/_sim/repos/{owner}/{repo}/collaborators/{user}", put(control_put_collaborator))
        .route("/_sim/repos/{owner}/{repo}/contents/{*path}", put(control_put_file))
        .route("/_sim/repos/{owner}/{repo}/comments", get(control_comments));
    let api = Router::new()
        .route("/user", get(authenticated_user))
        .route(REPO, get(get_repository))
        .route(&r("/pulls"), get(list_pulls))
        .route(&r("/pulls/{number}"), get(get_pull))
        .route(&r("/collaborators/{user}/permission"), get(collaborator_permission))
        .route(&r("/issues/{number}/comments"), get(list_comments).post(create_comment))
        .route(&r("/issues/comments/{id}"), get(get_comment).patch(update_comment))
        .route(&r("/contents"), get(contents_root))
        .route(&r("/contents/"), get(contents_root))
        .route(&r("/contents/{*path}"), get(contents_path))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(sim.clone(), api_middleware));
    Router::new().merge(control).merge(api).with_state(sim)
}
