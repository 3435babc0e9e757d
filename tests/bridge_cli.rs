//! `switchyard bridge sign|verify|call` run as a user would: the built binary, files on disk.

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

use std::path::Path;
use std::process::{Command, Output};

const PATH: &str = "/api/v1/bridge/orders.sync";

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run switchyard")
}

fn write(dir: &Path, name: &str, content: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write fixture");
    path.to_str().expect("utf-8 temp path").to_string()
}

fn sign(secret: &str, body: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["bridge", "sign", "--secret-file", secret, "--caller", "shop@prod"];
    args.extend(["--method", "POST", "--path", PATH, "--body-file", body]);
    args.extend(extra);
    let out = run(&args);
    assert!(out.status.success(), "sign failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").lines().map(str::to_string).collect()
}

fn verify(secret: &str, body: &str, headers: &[String], extra: &[&str]) -> Output {
    let mut args = vec!["bridge", "verify", "--secret-file", secret, "--method", "POST", "--path", PATH];
    args.extend(["--body-file", body]);
    for header in headers {
        args.extend(["--header", header.as_str()]);
    }
    args.extend(extra);
    run(&args)
}

#[test]
fn sign_then_verify_round_trips() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = write(dir.path(), "current", b"cli-test-secret-0123456789abcdefghijkl\n");
    let body = write(dir.path(), "body.json", br#"{"order":42}"#);

    let headers = sign(&secret, &body, &[]);
    let names: Vec<&str> = headers.iter().filter_map(|h| h.split_once(": ").map(|(n, _)| n)).collect();
    assert_eq!(names, ["X-Bridge-Caller", "X-Bridge-Timestamp", "X-Bridge-Request-Id", "X-Bridge-Signature"]);
    assert!(headers[0].ends_with("shop@prod"));

    let out = verify(&secret, &body, &headers, &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}

#[test]
fn verify_with_a_tampered_body_fails_with_exit_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_text = "cli-test-secret-0123456789abcdefghijkl";
    let secret = write(dir.path(), "current", secret_text.as_bytes());
    let body = write(dir.path(), "body.json", br#"{"order":42}"#);
    let tampered = write(dir.path(), "tampered.json", br#"{"order":43}"#);

    let headers = sign(&secret, &body, &[]);
    let out = verify(&secret, &tampered, &headers, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "BadSignature\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(secret_text), "secret leaked: {stderr}");
}

#[test]
fn fixed_timestamp_and_request_id_give_the_known_signature_and_staleness_is_enforced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = write(dir.path(), "current", b"k3y-for-known-answer-tests-0123456789abcdef");
    let body = write(dir.path(), "body.json", br#"{"order":42}"#);
    let headers = sign(&secret, &body, &["--timestamp", "1700000000", "--request-id", "req-1", "--key-version", "3"]);
    assert!(
        headers.contains(
            &"X-Bridge-Signature: v2=40c727b21387687e520c5d0af6a5fa8b70db09f8bc205de7df4a77a747ffbf49".into()
        )
    );
    assert!(headers.contains(&"X-Bridge-Key-Version: 3".into()));

    assert_eq!(verify(&secret, &body, &headers, &["--now", "1700000300"]).status.code(), Some(0));
    let stale = verify(&secret, &body, &headers, &["--now", "1700000301"]);
    assert_eq!(stale.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&stale.stdout), "StaleTimestamp\n");
}

#[test]
fn previous_secret_file_is_accepted_during_rotation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = write(dir.path(), "previous", b"old-secret-0123456789abcdefghijklmnop");
    let new = write(dir.path(), "current", b"new-secret-0123456789abcdefghijklmnop");
    let body = write(dir.path(), "body.json", b"");
    let headers = sign(&old, &body, &[]);
    assert_eq!(verify(&new, &body, &headers, &[]).status.code(), Some(1));
    assert_eq!(verify(&new, &body, &headers, &["--previous-secret-file", &old]).status.code(), Some(0));
}

#[test]
fn missing_header_and_unreadable_secret_are_reported_distinctly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = write(dir.path(), "current", b"cli-test-secret-0123456789abcdefghijkl");
    let body = write(dir.path(), "body.json", b"{}");
    let headers: Vec<String> =
        sign(&secret, &body, &[]).into_iter().filter(|h| !h.starts_with("X-Bridge-Request-Id")).collect();
    let out = verify(&secret, &body, &headers, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "MissingHeader\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("X-Bridge-Request-Id"));

    let missing = dir.path().join("nope");
    let out = verify(missing.to_str().expect("utf-8"), &body, &headers, &[]);
    assert_eq!(out.status.code(), Some(2), "usage errors are not verification failures");
}

/// A mount holding the allowlist of billing@prod (grant `g`: shop@* may run
/// invoices.create) and g's secret, and the bridge endpoint reading it.
async fn endpoint(dir: &Path, secret: &str) -> support::bridge::BridgeInstance {
    use std::collections::BTreeMap;
    use switchyard::api::bridge_grant::{BridgeGrantSpec, SecretRotation};
    use switchyard::logic::allowlist::effective_allowlist;
    use switchyard::logic::bridge_secret::{BridgeSecret, SecretKey};
    use switchyard::logic::identifier::Identifier;

    let spec = BridgeGrantSpec {
        target: "billing@prod".into(),
        from: vec!["shop@*".into()],
        commands: vec!["invoices.create".into()],
        secret: SecretRotation::default(),
        modules: None,
        protocol: Default::default(),
        replay_window: None,
        bridge_path: "/api/v1/bridge".into(),
        allowlist_config_map: None,
        network_policy: None,
    };
    let target = Identifier::parse("billing@prod").expect("target");
    let allowlist = effective_allowlist(&target, [("g", &spec)]).allowlist;
    let key = SecretKey::from_text(secret).expect("secret");
    let data = BridgeSecret::initial(key, jiff::Timestamp::now()).to_string_data();
    let secrets = BTreeMap::from([("g".to_string(), data.into_iter().map(|(k, v)| (k, v.into_bytes())).collect())]);
    support::bridge::write_mount(dir, &allowlist.to_config_map_data(), &secrets);
    support::bridge::start(dir).await
}

async fn call(url: &str, secret: &str, command: &str, extra: &[&str]) -> Output {
    let mut args = vec!["bridge", "call", "--url", url, "--secret-file", secret, "--caller", "shop@eu"];
    args.extend(["--command", command, "--body", r#"{"invoice":1}"#]);
    args.extend(extra);
    tokio::process::Command::new(BIN).args(&args).output().await.expect("run switchyard")
}

#[tokio::test]
async fn call_signs_and_sends_and_its_exit_code_tells_the_outcome() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_text = "cli-call-secret-0123456789abcdefghijklmnop";
    let secret = write(dir.path(), "secret", secret_text.as_bytes());
    let mount = tempfile::tempdir().expect("mount dir");
    let sim = endpoint(mount.path(), secret_text).await;
    let url = sim.base_url();

    let ok = call(&url, &secret, "invoices.create", &[]).await;
    assert_eq!(ok.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&ok.stderr));
    let body: serde_json::Value = serde_json::from_slice(&ok.stdout).expect("JSON answer");
    assert_eq!((body["ok"].as_bool(), body["command"].as_str()), (Some(true), Some("invoices.create")));
    assert_eq!(body["echo"], r#"{"invoice":1}"#);

    let refused = call(&url, &secret, "invoices.void", &[]).await;
    assert_eq!(refused.status.code(), Some(1));
    let body: serde_json::Value = serde_json::from_slice(&refused.stdout).expect("JSON answer");
    assert_eq!(body["error"], "CommandNotAllowed");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("403 Forbidden"));

    let invalid = call(&url, &secret, "1nvoices", &[]).await;
    assert_eq!(invalid.status.code(), Some(2), "a bad command name is a usage error");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let closed_url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let unreachable = call(&closed_url, &secret, "invoices.create", &["--timeout-secs", "5"]).await;
    assert_eq!(unreachable.status.code(), Some(3), "stderr: {}", String::from_utf8_lossy(&unreachable.stderr));

    for out in [ok, refused, invalid, unreachable] {
        for stream in [&out.stdout, &out.stderr] {
            assert!(!String::from_utf8_lossy(stream).contains(secret_text), "secret printed");
        }
    }
    assert_eq!(sim.calls().len(), 2, "only well-formed calls reach the endpoint");
}
