//! The simulator over raw HTTP: envelopes, headers, throttling, control endpoints, persistence.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use switchyard_sim::forge::{ForgeSim, ForgeSimConfig, TokenSpec};

const TOKEN: &str = "sim-http-token";

fn config() -> ForgeSimConfig {
    ForgeSimConfig {
        tokens: vec![TokenSpec::all_scopes(TOKEN)],
        async_delay: Duration::from_millis(50),
        ..Default::default()
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn get(url: String) -> reqwest::Response {
    http().get(url).bearer_auth(TOKEN).send().await.unwrap()
}

#[tokio::test]
async fn throttle_answers_429_with_laravel_headers_and_spares_control_endpoints() {
    let sim = ForgeSim::start(ForgeSimConfig { rate_limit: 3, rate_window: Duration::from_secs(60), ..config() })
        .await
        .unwrap();
    let url = format!("{}/orgs/demo/servers", sim.base_url());
    for remaining in ["2", "1", "0"] {
        let r = get(url.clone()).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-ratelimit-limit"], "3");
        assert_eq!(r.headers()["x-ratelimit-remaining"], remaining);
    }
    let r = get(url.clone()).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    let reset: u64 = r.headers()["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    assert!(reset > 1_000_000_000, "reset is an epoch timestamp");
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"message": "Too Many Attempts."}));

    for _ in 0..10 {
        let r = http().get(format!("http://{}/_sim/requests", sim.addr())).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let summary: Value =
        http().get(format!("http://{}/_sim/requests", sim.addr())).send().await.unwrap().json().await.unwrap();
    assert_eq!(summary["by_status"]["429"], 1);
    assert_eq!(summary["counts"]["GET /api/orgs/{org}/servers"], 4);
    // The token itself is never in the log, only its fingerprint.
    assert!(!summary.to_string().contains(TOKEN));
}

#[tokio::test]
async fn auth_errors_and_unknown_routes() {
    let sim = ForgeSim::start(config()).await.unwrap();
    let r = http().get(format!("{}/me", sim.base_url())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"message": "Unauthenticated."}));
    let r = http().get(format!("{}/me", sim.base_url())).bearer_auth("nope").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = get(format!("{}/v1/servers/1/sites", sim.base_url())).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = get(format!("{}/orgs/other/servers", sim.base_url())).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = get(format!("{}/orgs/demo/sites/abc", sim.base_url())).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn async_writes_answer_202_with_empty_bodies_where_documented() {
    let sim = ForgeSim::start(config()).await.unwrap();
    let base = format!("{}/orgs/demo/servers/1", sim.base_url());
    let r = http()
        .post(format!("{base}/sites"))
        .bearer_auth(TOKEN)
        .json(&json!({"type": "laravel", "domain_mode": "on-forge", "name": "pr-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.headers()["content-type"], "application/vnd.api+json");
    let site: Value = r.json().await.unwrap();
    assert_eq!(site["data"]["type"], "sites");
    assert!(site["data"]["id"].is_string(), "JSON:API ids are strings");
    let id = site["data"]["id"].as_str().unwrap().to_string();

    for (method, path, body) in [
        ("PUT", format!("{base}/sites/{id}/environment"), Some(json!({"environment": "A=1"}))),
        ("POST", format!("{base}/sites/{id}/commands"), Some(json!({"command": "ls"}))),
        ("POST", format!("{base}/sites/{id}/deployments/push-to-deploy"), None),
        ("PUT", format!("{base}/sites/{id}"), Some(json!({"php_version": "php83"}))),
        ("DELETE", format!("{base}/sites/{id}"), None),
    ] {
        let mut req = http().request(method.parse().unwrap(), &path).bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{method} {path}");
        assert!(r.bytes().await.unwrap().is_empty(), "{method} {path} must have an empty body");
    }
    // Environment reads return `content`, not `environment`.
    let env: Value = get(format!("{base}/sites/{id}/environment")).await.json().await.unwrap();
    assert_eq!(env["data"]["attributes"]["content"], "A=1");
}

#[tokio::test]
async fn control_endpoints_inject_faults_dump_state_and_reset() {
    let sim = ForgeSim::start(config()).await.unwrap();
    let control = format!("http://{}/_sim", sim.addr());
    let r = http()
        .post(format!("{control}/faults"))
        .json(&json!({"method": "GET", "route": "*/servers", "action": {"type": "status", "status": 503}, "times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let url = format!("{}/orgs/demo/servers", sim.base_url());
    assert_eq!(get(url.clone()).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(get(url.clone()).await.status(), StatusCode::OK);

    http()
        .post(format!("{control}/faults"))
        .json(&json!({"action": {"type": "status", "status": 500}}))
        .send()
        .await
        .unwrap();
    assert_eq!(get(url.clone()).await.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(http().delete(format!("{control}/faults")).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(get(url.clone()).await.status(), StatusCode::OK);

    let state: Value = http().get(format!("{control}/state")).send().await.unwrap().json().await.unwrap();
    assert_eq!(state["servers"]["1"]["name"], "switchyard-demo");
    assert_eq!(http().post(format!("{control}/reset")).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn state_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("forge.json");
    let cfg = || ForgeSimConfig { state_file: Some(state_file.clone()), ..config() };
    let sim = ForgeSim::start(cfg()).await.unwrap();
    let r = http()
        .post(format!("{}/orgs/demo/servers/1/database/schemas", sim.base_url()))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "kept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    sim.shutdown().await;

    let sim = ForgeSim::start(cfg()).await.unwrap();
    let list: Value = get(format!("{}/orgs/demo/servers/1/database/schemas?filter[name]=kept", sim.base_url()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["attributes"]["name"], "kept");
    assert!(list["meta"]["next_cursor"].is_null());
}
