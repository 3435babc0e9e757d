//! The instance simulator over real HTTP(S): key and origin checks, registrations,
//! syncs, fault control and TLS.

mod cli_support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_sim::instance::{InstanceSim, InstanceSimConfig, InstanceSimHandle, TestPki};

const KEY: &str = "instance-key-7f3a9c";
const ORIGIN: &str = "https://top.example.com";

fn config() -> InstanceSimConfig {
    InstanceSimConfig {
        api_keys: vec![KEY.into()],
        allowed_origins: vec![ORIGIN.into()],
        version: "2.4.1".into(),
        ..Default::default()
    }
}

async fn health(sim: &InstanceSimHandle, key: Option<&str>, origin: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{}/api/v1/health", sim.base_url()));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(origin) = origin {
        request = request.header("X-Branch-Origin", origin);
    }
    request.send().await.unwrap()
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
    let url = format!("{base_url}/api/v1/health");
    client.get(url).bearer_auth(KEY).header("X-Branch-Origin", ORIGIN).send().await.unwrap()
}

async fn register(sim: &InstanceSimHandle, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/v1/cross-branch/register-branch", sim.base_url()))
        .bearer_auth(KEY)
        .header("X-Branch-Origin", ORIGIN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn control(sim: &InstanceSimHandle, path: &str, body: Value) -> Value {
    let url = format!("{}/_sim/{path}", sim.base_url());
    let response = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "control {path}: {}", response.status());
    response.json().await.unwrap_or(Value::Null)
}

#[tokio::test]
async fn api_requires_an_accepted_key_and_an_allowed_origin() {
    let sim = InstanceSim::start(config()).await.unwrap();
    assert_eq!(health(&sim, None, Some(ORIGIN)).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(health(&sim, Some("wrong"), Some(ORIGIN)).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(health(&sim, Some(KEY), None).await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(health(&sim, Some(KEY), Some("https://evil.example.com")).await.status(), StatusCode::FORBIDDEN);
    let ok = health(&sim, Some(KEY), Some(ORIGIN)).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.json::<Value>().await.unwrap()["version"], "2.4.1");

    // Registration is guarded the same way.
    let unauthenticated = reqwest::Client::new()
        .post(format!("{}/api/v1/cross-branch/register-branch", sim.base_url()))
        .header("X-Branch-Origin", ORIGIN)
        .json(&json!({"name": "eu", "url": "https://eu.example.com", "type": "master", "api_key": "k"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    assert!(sim.registrations().is_empty());

    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![401, 401, 400, 403, 200, 401]);
    let log = reqwest::get(format!("{}/_sim/requests", sim.base_url())).await.unwrap().text().await.unwrap();
    assert!(!log.contains(KEY), "the request log holds fingerprints, never keys");
}

#[tokio::test]
async fn register_branch_validates_and_keeps_the_latest_registration_per_name() {
    let sim = InstanceSim::start(config()).await.unwrap();
    let invalid = register(&sim, json!({"name": "eu", "url": "ftp://x", "type": "branchy"})).await;
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let errors = invalid.json::<Value>().await.unwrap()["errors"].clone();
    for field in ["url", "type", "api_key"] {
        assert!(errors.get(field).is_some(), "{field} is reported: {errors}");
    }

    let body = json!({"name": "eu", "url": "https://eu.example.com", "type": "master", "api_key": "eu-key-1"});
    assert_eq!(register(&sim, body).await.status(), StatusCode::CREATED);
    let body = json!({"name": "eu", "url": "https://eu2.example.com", "type": "master", "api_key": "eu-key-2"});
    let again = register(&sim, body).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["times"], 2);

    let listed: Value =
        reqwest::get(format!("{}/_sim/registrations", sim.base_url())).await.unwrap().json().await.unwrap();
    let registrations = listed["registrations"].as_array().unwrap();
    assert_eq!(registrations.len(), 1);
    assert_eq!(registrations[0]["url"], "https://eu2.example.com");
    assert_eq!(registrations[0]["origin"], ORIGIN);
    assert_eq!(registrations[0]["api_key"], switchyard_sim::forge::fingerprint("eu-key-2"));
    assert!(!listed.to_string().contains("eu-key-2"), "registered keys are shown as fingerprints");
}

#[tokio::test]
async fn sync_organization_is_recorded() {
    let sim = InstanceSim::start(config()).await.unwrap();
    let url = format!("{}/api/v1/cross-branch/sync-organization", sim.base_url());
    let client = reqwest::Client::new();
    let response = client
        .post(&url)
        .bearer_auth(KEY)
        .header("X-Branch-Origin", ORIGIN)
        .json(&json!({"organization": {"slug": "acme", "members": 3}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let not_object =
        client.post(&url).bearer_auth(KEY).header("X-Branch-Origin", ORIGIN).json(&json!([1])).send().await.unwrap();
    assert_eq!(not_object.status(), StatusCode::BAD_REQUEST);
    let syncs = sim.syncs();
    assert_eq!(syncs.len(), 1);
    assert_eq!(syncs[0].payload["organization"]["slug"], "acme");
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

    let stranger = reqwest::Client::new().get(format!("{}/api/v1/health", sim.base_url())).send().await;
    let error = stranger.expect_err("an unknown CA is refused");
    assert!(error.is_connect(), "{error:?}");
    // A refused handshake does not stop the server.
    let again = trusting.get(format!("{}/_sim/requests", sim.base_url())).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_health_path_clashing_with_another_endpoint_is_refused() {
    let clash = InstanceSimConfig { health_path: "/api/v1/cross-branch/register-branch".into(), ..config() };
    assert!(InstanceSim::start(clash).await.is_err());
}

/// Kills the CLI simulator when the test ends, also on panic.
#[tokio::test]
async fn cli_serves_https_with_a_self_signed_ca_it_writes_out() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let ca_arg = ca.to_string_lossy().into_owned();
    let mut args =
        ["instance", "--listen", "127.0.0.1:0", "--api-key", KEY, "--version", "9.9.9", "--self-signed-ca"].to_vec();
    args.push(&ca_arg);
    let (_child, url) = cli_support::start(&args).await;
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let ca_pem = std::fs::read(&ca).unwrap();
    let response = trusted_health(&trusting(&ca_pem), &url).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["version"], "9.9.9");
}
