//! A recording HTTP proxy between the Forge client and the simulator: every exchange as it
//! went over the wire (path below `/api`, query, JSON bodies, status), for checks against the
//! published document.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// One request and its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    /// Below the API base: `/orgs/demo/servers/1/sites`.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub request: Option<Value>,
    pub status: u16,
    pub response: Option<Value>,
}

#[derive(Clone)]
struct Upstream {
    base: String,
    http: reqwest::Client,
    seen: Arc<Mutex<Vec<Exchange>>>,
}

/// A running proxy; dropping it stops it.
pub struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Exchange>>>,
    task: JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn json_or_none(bytes: &[u8]) -> Option<Value> {
    if bytes.is_empty() {
        None
    } else {
        Some(serde_json::from_slice(bytes).unwrap_or(Value::String("<not JSON>".into())))
    }
}

async fn forward(State(up): State<Upstream>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 16 << 20).await.unwrap_or_default();
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut out = up.http.request(parts.method.clone(), format!("{}{path_and_query}", up.base));
    for (k, v) in &parts.headers {
        if k != "host" {
            out = out.header(k, v);
        }
    }
    let answer = out.body(body.clone()).send().await.expect("simulator answers");
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    let query = parts
        .uri
        .query()
        .and_then(|q| reqwest::Url::parse(&format!("http://query/?{q}")).ok())
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    up.seen.lock().unwrap().push(Exchange {
        method: parts.method.to_string(),
        path: parts.uri.path().trim_start_matches("/api").to_string(),
        query,
        request: json_or_none(&body),
        status: status.as_u16(),
        response: json_or_none(&bytes),
    });
    let mut resp = Response::builder().status(status);
    for (k, v) in &headers {
        if k != "content-length" && k != "transfer-encoding" {
            resp = resp.header(k, v);
        }
    }
    resp.body(Body::from(bytes)).expect("valid response")
}

impl Recorder {
    /// Proxies `http://127.0.0.1:<port>/…` to `upstream` (the simulator's address, no path).
    pub async fn start(upstream: SocketAddr) -> Recorder {
        let seen = Arc::new(Mutex::new(vec![]));
        let up = Upstream { base: format!("http://{upstream}"), http: reqwest::Client::new(), seen: seen.clone() };
        let app = axum::Router::new().fallback(forward).with_state(up);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("bound address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Recorder { addr, seen, task }
    }

    /// The API base URL to give the client.
    pub fn base_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.seen.lock().unwrap().clone()
    }
}
