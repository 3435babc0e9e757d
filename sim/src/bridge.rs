//! The bridge endpoint of a platform instance, enforcing the allowlist and secrets
//! mounted into the instance's pod, in both profiles: `POST /__internal/bridge` (the
//! cross-distributor design's `razy` wire: body `{caller_dist, module, command, args}`,
//! `X-Razy-Signature`) and `ANY <bridgePath>/[<vendor>/<module>/]{command}` (`signed`).
//!
//! Like a pod, the simulator sees what the operator produced as files in one
//! directory ([`BridgeConfig::mount_dir`]) — the allowlist ConfigMap's keys and the
//! grants' Secret keys, laid out as `switchyard_bridge::endpoint` documents —
//! and reads it again on every request, so a rotation or a revocation is visible
//! to the next call. Names starting with `..` are skipped and symlinks followed, the
//! way the kubelet's atomic writer lays out a mounted volume.
//!
//! Each request is decided by a [`Verifier`]. [`mounted_verifier`] runs switchyard's
//! own checks, `switchyard_bridge::endpoint::MountedBridge`: the code the operator's
//! signing and allowlist come from and a target app links, not a copy of it. It is
//! what `switchyard-sim instance --bridge-mount-dir` and switchyard's BridgeGrant
//! tests serve; a test of the HTTP side alone can plug in a stand-in.
//!
//! Answers: `200 {"ok":true,"protocol","grant","module","command","caller","keyVersion","echo"}` for an accepted
//! call, else the verifier's status with `{"error": <kind>, "message"}`.
//! `GET /_sim/bridge/calls` lists every call with its outcome.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde::Serialize;
use serde_json::json;
use switchyard_bridge::endpoint::MountedBridge;
use switchyard_bridge::signing::{Headers, ReplayCache, RequestParts};
use tokio::net::TcpListener;

/// The files of the mount directory: relative path (`/`-separated) → content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountedFiles(BTreeMap<String, Vec<u8>>);

impl MountedFiles {
    /// Reads every file under `dir`; a missing directory reads as empty.
    pub fn read(dir: &Path) -> std::io::Result<Self> {
        let mut files = BTreeMap::new();
        if dir.exists() {
            read_into(dir, "", &mut files)?;
        }
        Ok(Self(files))
    }

    /// The content of `path` (relative, `/`-separated), if present.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.0.get(path).map(Vec::as_slice)
    }

    /// Relative paths of every file.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

fn read_into(dir: &Path, prefix: &str, files: &mut BTreeMap<String, Vec<u8>>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("..") {
            continue;
        }
        let path = entry.path();
        let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        // `metadata` follows symlinks, as reading a mounted volume does.
        let metadata = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // replaced while reading
            Err(e) => return Err(e),
        };
        if metadata.is_dir() {
            read_into(&path, &relative, files)?;
        } else {
            match std::fs::read(&path) {
                Ok(content) => {
                    files.insert(relative, content);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// One request as the verifier sees it.
#[derive(Debug)]
pub struct BridgeRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path and query, exactly as received.
    pub path_and_query: &'a str,
    /// Headers as received (values that are not UTF-8 are dropped).
    pub headers: &'a [(String, String)],
    /// Raw body.
    pub body: &'a [u8],
    /// The mount directory's files, read for this request.
    pub mount: &'a MountedFiles,
    /// Unix seconds.
    pub now: i64,
}

/// An accepted call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// `signed` or `razy`.
    pub protocol: String,
    /// The grant whose secret verified it.
    pub grant: String,
    /// The module, when named.
    pub module: Option<String>,
    /// The authenticated caller, `code@tag`.
    pub caller: String,
    /// The command run.
    pub command: String,
    /// Version of the secret that matched, when known.
    pub key_version: Option<i64>,
}

/// A refused call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// HTTP status to answer with.
    pub status: u16,
    /// Stable CamelCase kind (`BadSignature`, `Revoked`, ...).
    pub kind: String,
    /// For humans.
    pub message: String,
}

/// Decides on one request. Stateful checks (replayed request ids) keep their state
/// inside the closure, so they span requests.
pub type Verifier = Arc<dyn Fn(&BridgeRequest<'_>) -> Result<Accepted, Rejected> + Send + Sync>;

/// switchyard's checks, as a target app runs them: the allowlist and secrets are read
/// from the request's mounted files ([`MountedBridge`]), the signature is checked
/// against the secrets of the caller's grants, then the allowlist is consulted. One
/// replay cache spans every request the verifier sees. A mount without a readable
/// allowlist answers 503 (`AllowlistUnavailable`); refusals carry the
/// `switchyard_bridge::signing::VerifyError` kind and status.
pub fn mounted_verifier() -> Verifier {
    let replay = Mutex::new(ReplayCache::default());
    Arc::new(move |request: &BridgeRequest<'_>| {
        let mount = MountedBridge::load(|path| request.mount.get(path)).map_err(|e| Rejected {
            status: 503,
            kind: e.kind().into(),
            message: e.to_string(),
        })?;
        let headers = Headers::from_pairs(request.headers.iter().cloned());
        let parts = RequestParts { method: request.method, path: request.path_and_query, body: request.body };
        let mut replay = replay.lock().unwrap_or_else(|p| p.into_inner());
        match mount.verify(parts, &headers, &mut replay, request.now) {
            Ok(ok) => Ok(Accepted {
                protocol: ok.protocol.as_str().into(),
                grant: ok.grant,
                module: ok.module,
                caller: ok.caller.to_string(),
                command: ok.command,
                key_version: ok.key_version,
            }),
            Err(e) => Err(Rejected { status: e.http_status(), kind: e.kind().into(), message: e.to_string() }),
        }
    })
}

/// Settings of the bridge endpoint.
#[derive(Clone)]
pub struct BridgeConfig {
    /// Address to listen on, for [`BridgeSim::start`] (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Directory holding the mounted allowlist and secrets.
    pub mount_dir: PathBuf,
    /// Path prefix of the endpoint; commands are `<bridge_path>/{command}`.
    pub bridge_path: String,
    /// The checks.
    pub verifier: Verifier,
}

impl std::fmt::Debug for BridgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeConfig")
            .field("listen", &self.listen)
            .field("mount_dir", &self.mount_dir)
            .field("bridge_path", &self.bridge_path)
            .finish_non_exhaustive()
    }
}

/// One call to the endpoint, as `GET /_sim/bridge/calls` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BridgeCall {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The claimed caller, as sent: `X-Bridge-Caller`, or a `razy` body's `caller_dist`.
    pub caller: Option<String>,
    /// HTTP status answered.
    pub status: u16,
    /// `ok`, or the refusal's kind.
    pub outcome: String,
}

/// What the router shares between requests.
pub struct BridgeState {
    config: BridgeConfig,
    calls: Mutex<Vec<BridgeCall>>,
}

impl BridgeState {
    /// State for [`router`].
    pub fn new(config: BridgeConfig) -> Arc<Self> {
        Arc::new(Self { config, calls: Mutex::new(Vec::new()) })
    }

    fn calls_guard(&self) -> MutexGuard<'_, Vec<BridgeCall>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<BridgeCall> {
        self.calls_guard().clone()
    }
}

/// The endpoint's routes: `POST /__internal/bridge`, `ANY <bridge_path>/{command}`,
/// `ANY <bridge_path>/{vendor}/{module}/{command}` and `GET /_sim/bridge/calls`.
/// Self-contained (no fallback), so it can be merged into another simulator's router.
pub fn router(state: Arc<BridgeState>) -> Router {
    let prefix = state.config.bridge_path.trim_end_matches('/').to_string();
    Router::new()
        .route(switchyard_bridge::razy::RAZY_PATH, axum::routing::post(call))
        .route(&format!("{prefix}/{{command}}"), any(call))
        .route(&format!("{prefix}/{{vendor}}/{{module}}/{{command}}"), any(call))
        .route("/_sim/bridge/calls", get(list_calls).delete(clear_calls))
        .with_state(state)
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

async fn call(
    State(state): State<Arc<BridgeState>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let dir = state.config.mount_dir.clone();
    let mount = match tokio::task::spawn_blocking(move || MountedFiles::read(&dir)).await {
        Ok(Ok(mount)) => mount,
        Ok(Err(e)) => return refuse(&state, &method, &uri, &headers, &body, unreadable(e.to_string())),
        Err(e) => return refuse(&state, &method, &uri, &headers, &body, unreadable(e.to_string())),
    };
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let path_and_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let request = BridgeRequest {
        method: method.as_str(),
        path_and_query,
        headers: &pairs,
        body: &body,
        mount: &mount,
        now: unix_now(),
    };
    match (state.config.verifier)(&request) {
        Ok(accepted) => {
            record(&state, &method, &uri, &headers, Some(&body), 200, "ok");
            let echo = String::from_utf8_lossy(&body);
            let answer = json!({
                "ok": true,
                "protocol": accepted.protocol,
                "grant": accepted.grant,
                "module": accepted.module,
                "command": accepted.command,
                "caller": accepted.caller,
                "keyVersion": accepted.key_version,
                "echo": echo,
            });
            (StatusCode::OK, Json(answer)).into_response()
        }
        Err(rejected) => refuse(&state, &method, &uri, &headers, &body, rejected),
    }
}

fn unreadable(message: String) -> Rejected {
    Rejected { status: 503, kind: "MountUnreadable".into(), message }
}

fn refuse(
    state: &BridgeState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
    r: Rejected,
) -> Response {
    record(state, method, uri, headers, Some(body), r.status, &r.kind);
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::FORBIDDEN);
    (status, Json(json!({ "error": r.kind, "message": r.message }))).into_response()
}

fn record(
    state: &BridgeState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: Option<&[u8]>,
    status: u16,
    outcome: &str,
) {
    let from_body = || {
        let value: serde_json::Value = serde_json::from_slice(body?).ok()?;
        Some(value.get("caller_dist")?.as_str()?.to_string())
    };
    let caller = match headers.get("x-bridge-caller").and_then(|v| v.to_str().ok()) {
        Some(caller) => Some(caller.to_string()),
        None if uri.path() == switchyard_bridge::razy::RAZY_PATH => from_body(),
        None => None,
    };
    state.calls_guard().push(BridgeCall {
        method: method.to_string(),
        path: uri.path_and_query().map_or(uri.path(), |pq| pq.as_str()).to_string(),
        caller,
        status,
        outcome: outcome.to_string(),
    });
}

async fn list_calls(State(state): State<Arc<BridgeState>>) -> Json<Vec<BridgeCall>> {
    Json(state.calls())
}

async fn clear_calls(State(state): State<Arc<BridgeState>>) -> StatusCode {
    state.calls_guard().clear();
    StatusCode::NO_CONTENT
}

/// Entry point for tests: `BridgeSim::start(config).await?` serves until the handle is dropped.
pub struct BridgeSim;

impl BridgeSim {
    /// Binds `config.listen` and serves [`router`].
    pub async fn start(config: BridgeConfig) -> std::io::Result<BridgeSimHandle> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let state = BridgeState::new(config);
        let server = crate::serve::Served::spawn(listener, addr, router(state.clone()), "bridge");
        Ok(BridgeSimHandle { state, server })
    }
}

/// A running bridge endpoint. Dropping it stops the server.
pub struct BridgeSimHandle {
    state: Arc<BridgeState>,
    server: crate::serve::Served,
}

impl BridgeSimHandle {
    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:PORT`, the instance's base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<BridgeCall> {
        self.state.calls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_reading_follows_symlinks_and_skips_the_atomic_writer_internals() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("..2025_01_01_00_00_00.000");
        std::fs::create_dir_all(data.join("secrets/g")).unwrap();
        std::fs::write(data.join("allowlist.json"), b"{}").unwrap();
        std::fs::write(data.join("secrets/g/current"), b"k").unwrap();
        std::os::unix::fs::symlink(&data, dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/allowlist.json", dir.path().join("allowlist.json")).unwrap();
        std::os::unix::fs::symlink("..data/secrets", dir.path().join("secrets")).unwrap();
        let files = MountedFiles::read(dir.path()).unwrap();
        assert_eq!(files.paths().collect::<Vec<_>>(), ["allowlist.json", "secrets/g/current"]);
        assert_eq!(files.get("secrets/g/current"), Some(&b"k"[..]));
        assert_eq!(MountedFiles::read(&dir.path().join("absent")).unwrap(), MountedFiles::default());
    }
}
