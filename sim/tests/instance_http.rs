//! The instance simulator over real HTTP(S), on the cross-branch design's contract:
//! registration, the middleware's 401/403, the guarded routes, fault control and TLS.

mod cli_support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_sim::instance::{InstanceSim, InstanceSimConfig, InstanceSimHandle, Seed, TestPki};

const KEY: &str = "instance-key-7f3a9c";
const ORIGIN: &str = "top";
const HEALTH: &str = "/api/v1/cross-branch/health";

fn config() -> InstanceSimConfig {
    InstanceSimConfig {
        registered: vec![Seed {
            branch_name: ORIGIN.into(),
            branch_url: "https://top.example.com".into(),
            branch_type: "top_branch".into(),
            api_key: KEY.into(),
        }],
        licenses: vec!["LIC-1".into()],
        version: "2.4.1".into(),
        ..Default::default()
    }
}

async fn call(
    sim: &InstanceSimHandle,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    origin: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", sim.base_url()));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(origin) = origin {
        request = request.header("X-Branch-Origin", origin);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn health(sim: &InstanceSimHandle, key: Option<&str>, origin: Option<&str>) -> reqwest::Response {
    call(sim, reqwest::Method::GET, HEALTH, key, origin, None).await
}

async fn post(sim: &InstanceSimHandle, path: &str, body: Value) -> reqwest::Response {
    call(sim, reqwest::Method::POST, &format!("/api/v1/cross-branch/{path}"), Some(KEY), Some(ORIGIN), Some(body)).await
}

/// A client that trusts only the given CA (PEM).
fn trusting(ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap())
        .build()
        .unwrap()
}

async fn trusted_health(client: &reqwest::Client, base_url: &str) -> reqwest::Response {
    client.get(format!("{base_url}{HEALTH}")).bearer_auth(KEY).header("X-Branch-Origin", ORIGIN).send().await.unwrap()
}

async fn control(sim: &InstanceSimHandle, path: &str, body: Value) -> Value {
    let url = format!("{}/_sim/{path}", sim.base_url());
    let response = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "control {path}: {}", response.status());
    response.json().await.unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_middleware_answers_401_without_origin_or_token_and_403_for_strangers_wrong_keys_and_inactive_branches() {
    let sim = InstanceSim::start(config()).await.unwrap();
    assert_eq!(health(&sim, None, Some(ORIGIN)).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(health(&sim, Some(KEY), None).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(health(&sim, Some("wrong"), Some(ORIGIN)).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(health(&sim, Some(KEY), Some("stranger")).await.status(), StatusCode::FORBIDDEN);
    // An origin is a branch name, not a URL.
    assert_eq!(health(&sim, Some(KEY), Some("https://top.example.com")).await.status(), StatusCode::FORBIDDEN);
    let ok = health(&sim, Some(KEY), Some(ORIGIN)).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.json::<Value>().await.unwrap()["version"], "2.4.1");
    assert!(sim.state().set_active(ORIGIN, false));
    assert_eq!(health(&sim, Some(KEY), Some(ORIGIN)).await.status(), StatusCode::FORBIDDEN);

    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![401, 401, 403, 403, 403, 200, 403]);
    let log = reqwest::get(format!("{}/_sim/requests", sim.base_url())).await.unwrap().text().await.unwrap();
    assert!(!log.contains(KEY), "the request log holds fingerprints, never keys");
}

#[tokio::test]
async fn register_branch_is_open_validates_and_is_unique_on_the_name() {
    let sim = InstanceSim::start(config()).await.unwrap();
    let register =
        |body: Value| call(&sim, reqwest::Method::POST, "/api/v1/cross-branch/register-branch", None, None, Some(body));
    let invalid = register(json!({"branch_name": "eu", "branch_url": "ftp://x", "branch_type": "master"})).await;
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let errors = invalid.json::<Value>().await.unwrap()["errors"].clone();
    for field in ["branch_url", "branch_type", "api_key"] {
        assert!(errors.get(field).is_some(), "{field} is reported: {errors}");
    }
    // switchyard's old body is not the design's.
    let old = register(json!({"name": "eu", "url": "https://eu.example.com", "type": "master", "api_key": "k"})).await;
    assert_eq!(old.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let body = json!({"branch_name": "eu", "branch_url": "https://eu.example.com", "branch_type": "master_branch", "api_key": "eu-key-1"});
    assert_eq!(register(body).await.status(), StatusCode::CREATED);
    let body = json!({"branch_name": "eu", "branch_url": "https://eu2.example.com", "branch_type": "master_branch", "api_key": "eu-key-2"});
    let again = register(body).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(again.json::<Value>().await.unwrap()["branch"]["branch_url"], "https://eu.example.com");

    // The registered branch is now an origin the middleware accepts, with its key.
    assert_eq!(health(&sim, Some("eu-key-1"), Some("eu")).await.status(), StatusCode::OK);
    assert_eq!(health(&sim, Some("eu-key-2"), Some("eu")).await.status(), StatusCode::FORBIDDEN);

    let listed: Value =
        reqwest::get(format!("{}/_sim/registrations", sim.base_url())).await.unwrap().json().await.unwrap();
    let registrations = listed["registrations"].as_array().unwrap();
    assert_eq!(registrations.len(), 2, "the seeded top and eu");
    let eu = registrations.iter().find(|r| r["branch_name"] == "eu").unwrap();
    assert_eq!(eu["branch_url"], "https://eu.example.com", "the first registration stays");
    assert_eq!(eu["duplicates"], 1);
    assert_eq!(eu["api_key"], switchyard_sim::forge::fingerprint("eu-key-1"));
    assert!(!listed.to_string().contains("eu-key-1"), "registered keys are shown as fingerprints");
}

#[tokio::test]
async fn a_taken_name_can_be_answered_with_laravels_422() {
    let sim = InstanceSim::start(InstanceSimConfig { duplicate_status: 422, ..config() }).await.unwrap();
    let body = json!({"branch_name": ORIGIN, "branch_url": "https://top.example.com", "branch_type": "top_branch", "api_key": KEY});
    let taken = call(&sim, reqwest::Method::POST, "/api/v1/cross-branch/register-branch", None, None, Some(body)).await;
    assert_eq!(taken.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = taken.json::<Value>().await.unwrap();
    assert!(body["errors"]["branch_name"][0].as_str().unwrap().contains("already been taken"), "{body}");
}

#[tokio::test]
async fn guarded_routes_validate_and_record() {
    let sim = InstanceSim::start(config()).await.unwrap();
    let users = json!([{"email": "ada@example.com", "name": "Ada"}]);
    let synced =
        post(&sim, "sync-organization", json!({"organization": {"slug": "acme"}, "users": users, "license": "LIC-1"}))
            .await;
    assert_eq!(synced.status(), StatusCode::OK);
    let partial = post(&sim, "sync-organization", json!({"organization": {"slug": "acme"}})).await;
    assert_eq!(partial.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let syncs = sim.syncs();
    assert_eq!(syncs.len(), 1);
    assert_eq!((syncs[0].origin.as_str(), &syncs[0].payload["organization"]["slug"]), (ORIGIN, &json!("acme")));

    let valid = post(&sim, "validate-license", json!({"license": "LIC-1"})).await.json::<Value>().await.unwrap();
    assert_eq!(valid["valid"], true);
    let invalid =
        post(&sim, "validate-license", json!({"license": {"key": "LIC-2"}})).await.json::<Value>().await.unwrap();
    assert_eq!(invalid["valid"], false);
    assert_eq!(sim.license_checks().len(), 2);

    let known =
        post(&sim, "user-authentication", json!({"email": "ada@example.com"})).await.json::<Value>().await.unwrap();
    assert_eq!(known["authenticated"], true);
    let unknown =
        post(&sim, "user-authentication", json!({"email": "eve@example.com"})).await.json::<Value>().await.unwrap();
    assert_eq!(unknown["authenticated"], false);
    assert_eq!(post(&sim, "share-resource", json!({"resource_type": "file"})).await.status(), StatusCode::OK);
    let anonymous =
        call(&sim, reqwest::Method::POST, "/api/v1/cross-branch/share-resource", None, None, Some(json!({}))).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn fail_slow_and_flap_change_answers_until_healed() {
    let sim = InstanceSim::start(config()).await.unwrap();
    control(&sim, "fail", json!({"status": 502})).await;
    assert_eq!(health(&sim, Some(KEY), Some(ORIGIN)).await.status(), StatusCode::BAD_GATEWAY);

    control(&sim, "flap", json!({"status": 500})).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(health(&sim, Some(KEY), Some(ORIGIN)).await.status().as_u16());
    }
    assert_eq!(statuses, vec![200, 500, 200, 500]);

    control(&sim, "flap", json!({"fail_next": 2})).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(health(&sim, Some(KEY), Some(ORIGIN)).await.status().as_u16());
    }
    assert_eq!(statuses, vec![503, 503, 200]);

    control(&sim, "slow", json!({"ms": 300})).await;
    let started = Instant::now();
    assert_eq!(health(&sim, Some(KEY), Some(ORIGIN)).await.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));

    control(&sim, "heal", json!({})).await;
    let started = Instant::now();
    assert_eq!(health(&sim, Some(KEY), Some(ORIGIN)).await.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_millis(300));
    assert!(sim.requests().iter().filter(|r| r.injected.is_some()).count() == 5);
}

#[tokio::test]
async fn serves_https_trusted_only_through_its_ca() {
    let pki = TestPki::generate(&["127.0.0.1", "localhost"]).unwrap();
    let sim = InstanceSim::start(InstanceSimConfig { tls: Some(pki.material()), ..config() }).await.unwrap();
    assert!(sim.base_url().starts_with("https://127.0.0.1:"));

    let trusting = trusting(pki.ca_pem.as_bytes());
    assert_eq!(trusted_health(&trusting, &sim.base_url()).await.status(), StatusCode::OK);

    let stranger = reqwest::Client::new().get(format!("{}{HEALTH}", sim.base_url())).send().await;
    let error = stranger.expect_err("an unknown CA is refused");
    assert!(error.is_connect(), "{error:?}");
    // A refused handshake does not stop the server.
    let again = trusting.get(format!("{}/_sim/requests", sim.base_url())).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_duplicate_status_other_than_409_or_422_is_refused() {
    assert!(InstanceSim::start(InstanceSimConfig { duplicate_status: 400, ..config() }).await.is_err());
}

/// Kills the CLI simulator when the test ends, also on panic.
#[tokio::test]
async fn cli_serves_https_with_a_self_signed_ca_it_writes_out() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let ca_arg = ca.to_string_lossy().into_owned();
    let seed = format!("{ORIGIN},https://top.example.com,top_branch,{KEY}");
    let mut args =
        ["instance", "--listen", "127.0.0.1:0", "--register", &seed, "--version", "9.9.9", "--self-signed-ca"].to_vec();
    args.push(&ca_arg);
    let (_child, url) = cli_support::start(&args).await;
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let ca_pem = std::fs::read(&ca).unwrap();
    let response = trusted_health(&trusting(&ca_pem), &url).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["version"], "9.9.9");
}
