//! The bridge endpoint over real HTTP: its HTTP side with a stand-in verifier, then
//! `switchyard-sim instance --bridge-mount-dir` run as a user would, with switchyard's
//! real checks on a mounted allowlist and secret.

mod cli_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_bridge::allowlist::{Allowlist, CONFIG_MAP_KEY, CallerEntry, FORMAT_VERSION, GrantEntry, Protocol};
use switchyard_bridge::endpoint::secret_file;
use switchyard_bridge::identifier::{CallerPattern, Identifier};
use switchyard_bridge::secret::{BridgeSecret, SecretKey};
use switchyard_bridge::signing::{self, RequestParts};
use switchyard_sim::bridge::{Accepted, BridgeConfig, BridgeRequest, BridgeSim, Rejected, Verifier};

/// Accepts a call when the mounted file `allow` names the `X-Bridge-Caller`.
fn verifier() -> Verifier {
    Arc::new(|request: &BridgeRequest<'_>| {
        let caller = request.headers.iter().find(|(n, _)| n == "x-bridge-caller").map(|(_, v)| v.clone());
        let allowed = request.mount.get("allow").map(|c| String::from_utf8_lossy(c).trim().to_string());
        match (caller, allowed) {
            (Some(caller), Some(allowed)) if caller == allowed => Ok(Accepted {
                protocol: "signed".into(),
                grant: "g".into(),
                module: None,
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
        serde_json::json!({"ok": true, "protocol": "signed", "grant": "g", "module": null, "command": "orders.sync?x=1", "caller": "shop@prod", "keyVersion": 1, "echo": "{\"n\":1}"})
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

const SECRET: &str = "cli-bridge-secret-0123456789abcdefghijklmnop";
const BODY: &str = r#"{"invoice":1}"#;

/// What the kubelet would mount into billing@prod's pod: an allowlist letting shop@*
/// run invoices.create through grant `g`, and g's Secret.
fn write_mount(dir: &Path) {
    let entry = CallerEntry { commands: ["invoices.create".into()].into(), grants: ["g".into()].into() };
    let allowlist = Allowlist {
        version: FORMAT_VERSION,
        target: Identifier::parse("billing@prod").unwrap(),
        bridge_path: "/api/v1/bridge".into(),
        callers: BTreeMap::from([(CallerPattern::parse("shop@*").unwrap(), entry)]),
        grants: BTreeMap::from([(
            "g".to_string(),
            GrantEntry {
                protocol: Protocol::Signed,
                from: [CallerPattern::parse("shop@*").unwrap()].into(),
                commands: ["invoices.create".into()].into(),
                modules: None,
                replay_window_seconds: None,
            },
        )]),
        revoked: BTreeMap::new(),
    };
    std::fs::write(dir.join(CONFIG_MAP_KEY), allowlist.to_json()).unwrap();
    let secret = BridgeSecret::initial(SecretKey::from_text(SECRET).unwrap(), jiff::Timestamp::now());
    for (key, value) in secret.to_string_data() {
        let path = dir.join(secret_file("g", &key));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, value).unwrap();
    }
}

/// A call to `command` as `caller`, signed now with `secret`: its path and headers.
fn signed(caller: &str, secret: &str, command: &str, request_id: &str) -> (String, Vec<(&'static str, String)>) {
    let path = format!("/api/v1/bridge/{command}");
    let request = RequestParts { method: "POST", path: &path, body: BODY.as_bytes() };
    let key = SecretKey::from_text(secret).unwrap();
    let caller = Identifier::parse(caller).unwrap();
    let headers = signing::sign(&key, None, &caller, request, jiff::Timestamp::now().as_second(), request_id).unwrap();
    (path, headers.to_pairs())
}

async fn send(
    client: &reqwest::Client,
    base_url: &str,
    (path, headers): &(String, Vec<(&str, String)>),
) -> (u16, Value) {
    let mut request = client.post(format!("{base_url}{path}")).body(BODY);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn cli_instance_serves_the_bridge_enforcing_the_mounted_allowlist_and_secret() {
    let mount = tempfile::tempdir().unwrap();
    write_mount(mount.path());
    let mount_dir = mount.path().to_str().unwrap();
    let (_child, url) =
        cli_support::start(&["instance", "--listen", "127.0.0.1:0", "--bridge-mount-dir", mount_dir]).await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let client = reqwest::Client::new();

    let allowed = signed("shop@eu", SECRET, "invoices.create", "call-1");
    let (status, body) = send(&client, &url, &allowed).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"ok": true, "protocol": "signed", "grant": "g", "module": null, "command": "invoices.create", "caller": "shop@eu", "keyVersion": 1, "echo": BODY})
    );
    let (status, body) = send(&client, &url, &allowed).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("Replayed")), "one replay cache for the process: {body}");

    let forged = signed("shop@eu", "not-the-grant-secret-0123456789abcdefghijkl", "invoices.create", "call-2");
    let (status, body) = send(&client, &url, &forged).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("BadSignature")), "{body}");

    let not_granted = signed("shop@eu", SECRET, "invoices.void", "call-3");
    let (status, body) = send(&client, &url, &not_granted).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("CommandNotAllowed")), "{body}");
    let stranger = signed("hr@prod", SECRET, "invoices.create", "call-4");
    let (status, body) = send(&client, &url, &stranger).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("UnknownCaller")), "{body}");

    let calls: Value = client.get(format!("{url}/_sim/bridge/calls")).send().await.unwrap().json().await.unwrap();
    let outcomes: Vec<&str> = calls.as_array().unwrap().iter().map(|c| c["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["ok", "Replayed", "BadSignature", "CommandNotAllowed", "UnknownCaller"]);
}
