//! The bridge endpoint's HTTP side over real HTTP, with a stand-in verifier (the real
//! checks are switchyard's, tested end to end in the operator crate).

use std::net::SocketAddr;
use std::sync::Arc;

use switchyard_sim::bridge::{Accepted, BridgeConfig, BridgeRequest, BridgeSim, Rejected, Verifier};

/// Accepts a call when the mounted file `allow` names the `X-Bridge-Caller`.
fn verifier() -> Verifier {
    Arc::new(|request: &BridgeRequest<'_>| {
        let caller = request.headers.iter().find(|(n, _)| n == "x-bridge-caller").map(|(_, v)| v.clone());
        let allowed = request.mount.get("allow").map(|c| String::from_utf8_lossy(c).trim().to_string());
        match (caller, allowed) {
            (Some(caller), Some(allowed)) if caller == allowed => Ok(Accepted {
                caller,
                command: request.path_and_query.rsplit('/').next().unwrap_or_default().to_string(),
                key_version: Some(1),
            }),
            (_, None) => {
                Err(Rejected { status: 503, kind: "AllowlistUnavailable".into(), message: "nothing mounted".into() })
            }
            _ => Err(Rejected { status: 403, kind: "UnknownCaller".into(), message: "no".into() }),
        }
    })
}

#[tokio::test]
async fn mount_is_read_again_on_every_request_and_outcomes_are_logged() {
    let dir = tempfile::tempdir().unwrap();
    let sim = BridgeSim::start(BridgeConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        mount_dir: dir.path().to_path_buf(),
        bridge_path: "/api/v1/bridge".into(),
        verifier: verifier(),
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/bridge/orders.sync?x=1", sim.base_url());
    let send = || client.post(&url).header("X-Bridge-Caller", "shop@prod").body("{\"n\":1}").send();

    let unmounted = send().await.unwrap();
    assert_eq!(unmounted.status(), 503);
    let body: serde_json::Value = unmounted.json().await.unwrap();
    assert_eq!(body["error"], "AllowlistUnavailable");

    std::fs::write(dir.path().join("allow"), "shop@prod\n").unwrap();
    let ok = send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"ok": true, "command": "orders.sync?x=1", "caller": "shop@prod", "keyVersion": 1, "echo": "{\"n\":1}"})
    );

    std::fs::write(dir.path().join("allow"), "crm@prod\n").unwrap();
    assert_eq!(send().await.unwrap().status(), 403, "the change is seen without a restart");

    let calls: serde_json::Value =
        client.get(format!("{}/_sim/bridge/calls", sim.base_url())).send().await.unwrap().json().await.unwrap();
    let outcomes: Vec<&str> = calls.as_array().unwrap().iter().map(|c| c["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["AllowlistUnavailable", "ok", "UnknownCaller"]);
    assert_eq!(calls[1]["path"], "/api/v1/bridge/orders.sync?x=1");
    assert_eq!(sim.calls().len(), 3);
}

#[tokio::test]
async fn router_merges_into_another_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let state = switchyard_sim::bridge::BridgeState::new(BridgeConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        mount_dir: dir.path().to_path_buf(),
        bridge_path: "/bridge/".into(),
        verifier: verifier(),
    });
    let other = axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
    let app = other.merge(switchyard_sim::bridge::router(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    assert_eq!(client.get(format!("http://{addr}/health")).send().await.unwrap().status(), 200);
    let bridged = client.post(format!("http://{addr}/bridge/x")).send().await.unwrap();
    assert_eq!(bridged.status(), 503, "routed to the bridge (nothing mounted)");
    server.abort();
}
