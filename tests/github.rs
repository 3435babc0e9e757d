//! The GitHub integration end to end: real webhook payloads (octokit/webhooks examples,
//! `tests/testdata/github`), signed the way GitHub signs them, posted to a real
//! `switchyard run` that talks to `switchyard-sim github` over HTTP and to a real
//! apiserver. In most tests the PreviewEnvironment controller is disabled: they assert
//! on the PreviewEnvironment objects and play its part by patching their status; the
//! last one runs it against the Forge simulator, end to end.

mod preview_support;
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::Operator;
use switchyard::api::{self, PreviewEnvironment};
use switchyard_sim::github::model::{PullRequestSeed, SideSeed, State};
use switchyard_sim::github::{GithubSim, GithubSimConfig, GithubSimHandle, Token};
use switchyard_testenv::{ControlPlane, wait_for};

const TIMEOUT: Duration = Duration::from_secs(60);
const REPO: &str = "Codertocat/Hello-World";
/// The environment of pull request #2 of Codertocat/Hello-World (the payloads' PR).
const ENV: &str = "codertocat-hello-world-pr-2";
/// Head of pull request #2 in the payloads.
const PAYLOAD_HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const TOKEN: &str = "ghs_test_token_0123456789";
const WEBHOOK_SECRET: &str = "webhook-secret-for-tests";

fn payload(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/testdata/github/{name}.payload.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A fresh delivery id, like GitHub's GUIDs.
fn delivery_id() -> String {
    static N: AtomicU64 = AtomicU64::new(1);
    format!("{:08x}-0000-4000-8000-{:012x}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// A comment with `body` by `login` on pull request `number`, derived from the real
/// `issue_comment` example (which is on a plain issue) by adding `issue.pull_request`.
fn pr_comment(number: u64, login: &str, body: &str) -> Vec<u8> {
    static COMMENT_ID: AtomicU64 = AtomicU64::new(600_000_000);
    let mut p: Value = serde_json::from_slice(&payload("issue_comment.created")).expect("payload parses");
    let api = "https://api.github.com/repos/Codertocat/Hello-World";
    p["issue"]["number"] = json!(number);
    p["issue"]["pull_request"] = json!({
        "url": format!("{api}/pulls/{number}"),
        "html_url": format!("https://github.com/Codertocat/Hello-World/pull/{number}"),
        "diff_url": format!("https://github.com/Codertocat/Hello-World/pull/{number}.diff"),
        "patch_url": format!("https://github.com/Codertocat/Hello-World/pull/{number}.patch"),
    });
    p["comment"]["id"] = json!(COMMENT_ID.fetch_add(1, Ordering::SeqCst));
    p["comment"]["body"] = json!(body);
    p["comment"]["user"]["login"] = json!(login);
    serde_json::to_vec(&p).expect("serialize")
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, computed here rather than with the
/// operator's own code.
fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

struct Delivery<'a> {
    event: &'a str,
    id: String,
    body: Vec<u8>,
    signature: Option<String>,
}

impl<'a> Delivery<'a> {
    /// Signed with the configured webhook secret, like GitHub sends it.
    fn signed(event: &'a str, body: Vec<u8>) -> Self {
        let signature = Some(github_signature(WEBHOOK_SECRET, &body));
        Self { event, id: delivery_id(), body, signature }
    }
}

/// Posts a delivery to `operator` with GitHub's headers; returns the status and JSON answer.
async fn deliver(http: &reqwest::Client, operator: &Operator, d: &Delivery<'_>) -> (u16, Value) {
    let mut req = http
        .post(operator.url("/webhooks/github"))
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/044aadd")
        .header("x-github-event", d.event)
        .header("x-github-delivery", &d.id)
        .header("x-github-hook-id", "292430182")
        .body(d.body.clone());
    if let Some(sig) = &d.signature {
        req = req.header("x-hub-signature-256", sig);
    }
    let resp = req.send().await.expect("operator answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

struct Setup {
    cp: &'static ControlPlane,
    ns: String,
    sim: GithubSimHandle,
    operator: Operator,
    http: reqwest::Client,
}

impl Setup {
    /// A namespace with the GitHub Secret, a simulator with pull request #2 (from the
    /// payloads) and #3 (from a fork), and an operator polling every `poll`. The
    /// PreviewEnvironment controller is disabled: these tests play it themselves,
    /// writing status under their own field manager.
    async fn new(prefix: &str, poll: &str) -> Self {
        let cp = ControlPlane::shared().await.expect("control plane");
        cp.apply_crds(&api::all_crds()).await.expect("CRDs");
        let ns = cp.create_unique_namespace(prefix).await.expect("namespace");
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "github"},
            "stringData": {"token": TOKEN, "webhookSecret": WEBHOOK_SECRET}
        }))
        .expect("secret");
        Api::<Secret>::namespaced(cp.client(), &ns).create(&PostParams::default(), &secret).await.expect("secret");

        let sim = GithubSim::start(GithubSimConfig {
            tokens: vec![Token::new(TOKEN, "switchyard[bot]")],
            ..Default::default()
        })
        .await
        .expect("github simulator");
        sim.put_pull_request(REPO, 2, head("changes", PAYLOAD_HEAD, None)).expect("seed PR 2");
        sim.put_pull_request(REPO, 3, head("fork-feature", "3333333", Some("forker/Hello-World"))).expect("seed PR 3");

        let api_url = sim.base_url();
        let operator = Operator::start(cp, |port| {
            format!(
                r#"server: {{listen: "127.0.0.1:{port}"}}
leaderElection: {{enabled: false}}
controller: {{namespace: {ns}, systemNamespace: {ns}, disabled: [PreviewEnvironment]}}
github:
  apiUrl: {api_url}
  tokenSecretRef: {{namespace: {ns}, name: github, key: token}}
  webhookSecretRef: {{namespace: {ns}, name: github, key: webhookSecret}}
  pollInterval: {poll}
  repositories:
    - repository: {REPO}
      namespace: {ns}
      project: hello
      className: {ns}
      spec:
        domainTemplate: "pr-{{number}}.preview.example.com"
        site: {{phpVersion: php83}}
        database: {{strategy: empty}}
"#
            )
        });
        wait_for(TIMEOUT, "operator /readyz", || async {
            operator.get("/readyz").await.is_some_and(|(s, _)| s == 200)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", operator.log()));
        Self { cp, ns, sim, operator, http: reqwest::Client::new() }
    }

    fn envs(&self) -> Api<PreviewEnvironment> {
        Api::namespaced(self.cp.client(), &self.ns)
    }

    async fn env(&self, name: &str) -> Option<PreviewEnvironment> {
        self.envs().get_opt(name).await.expect("get PreviewEnvironment")
    }

    async fn env_count(&self) -> usize {
        self.envs().list(&Default::default()).await.expect("list").items.len()
    }

    /// Posts a delivery with GitHub's headers; returns the status and JSON answer.
    async fn deliver(&self, d: &Delivery<'_>) -> (u16, Value) {
        deliver(&self.http, &self.operator, d).await
    }

    /// Delivers and expects `result`/`reason` in the answer.
    async fn expect(&self, d: &Delivery<'_>, status: u16, result: &str, reason: &str) {
        let (got, answer) = self.deliver(d).await;
        assert_eq!(
            (got, answer["result"].as_str(), answer["reason"].as_str()),
            (status, Some(result), Some(reason)),
            "{} delivery {}: {answer}\n{}",
            d.event,
            d.id,
            self.operator.log()
        );
    }

    fn log_has(&self, needle: &str) -> bool {
        self.operator.log().contains(needle)
    }
}

fn head(ref_: &str, sha: &str, repo: Option<&str>) -> PullRequestSeed {
    PullRequestSeed {
        title: Some("Update the README with new information".into()),
        user: Some("Codertocat".into()),
        head: SideSeed { ref_: Some(ref_.into()), sha: Some(sha.into()), repo: repo.map(str::to_string) },
        base: SideSeed { ref_: Some("master".into()), ..Default::default() },
        ..Default::default()
    }
}

fn push(sha: &str) -> PullRequestSeed {
    PullRequestSeed { head: SideSeed { sha: Some(sha.into()), ..Default::default() }, ..Default::default() }
}

#[tokio::test]
async fn pull_request_commands_and_events_create_redeploy_and_delete_the_environment() {
    let s = Setup::new("gh-flow", "1h").await;

    // `/preview` by the owner creates the environment from the template at the API's head.
    s.expect(&Delivery::signed("issue_comment", pr_comment(2, "Codertocat", "/preview")), 200, "accepted", "Created")
        .await;
    let env = s.env(ENV).await.expect("environment created");
    assert_eq!(env.spec.repository, REPO);
    assert_eq!(env.spec.pull_request, 2);
    assert_eq!(env.spec.branch, "changes");
    assert_eq!(env.spec.head_sha.as_deref(), Some(PAYLOAD_HEAD));
    assert_eq!(env.spec.project, "hello");
    assert_eq!(env.spec.class_name.as_deref(), Some(s.ns.as_str()), "the repository entry's class");
    assert_eq!(env.spec.site.php_version, "php83");
    assert_eq!(env.spec.domain_template.as_deref(), Some("pr-{number}.preview.example.com"));
    let labels = env.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["switchyard.dev/github-repository"], "codertocat.hello-world");
    assert_eq!(labels["switchyard.dev/github-pull-request"], "2");
    assert_eq!(env.metadata.annotations.unwrap_or_default()["switchyard.dev/github-repository"], REPO);

    // New commits: the unmodified `synchronize` payload still names the old head; the
    // environment follows the head GitHub's API reports now.
    let pushed = "1111111111111111111111111111111111111111";
    s.sim.put_pull_request(REPO, 2, push(pushed)).expect("push");
    s.expect(&Delivery::signed("pull_request", payload("pull_request.synchronize")), 200, "accepted", "Updated").await;
    let env = s.env(ENV).await.expect("environment");
    assert_eq!(env.spec.head_sha.as_deref(), Some(pushed));
    assert_eq!(env.spec.deploy.redeploy_token, None);

    // `/update` redeploys the same head: a new redeploy token.
    s.expect(&Delivery::signed("issue_comment", pr_comment(2, "Codertocat", "/update")), 200, "accepted", "Updated")
        .await;
    let env = s.env(ENV).await.expect("environment");
    assert_eq!(env.spec.head_sha.as_deref(), Some(pushed));
    let first_token = env.spec.deploy.redeploy_token.clone().expect("redeploy token set");
    s.expect(&Delivery::signed("issue_comment", pr_comment(2, "Codertocat", "/update")), 200, "accepted", "Updated")
        .await;
    let second_token = s.env(ENV).await.expect("environment").spec.deploy.redeploy_token;
    assert!(second_token.is_some() && second_token.as_ref() != Some(&first_token), "each /update bumps the token");

    // `/destroy` deletes it; `/preview` brings it back.
    s.expect(&Delivery::signed("issue_comment", pr_comment(2, "Codertocat", "/destroy")), 200, "accepted", "Deleted")
        .await;
    wait_for(TIMEOUT, "environment deleted by /destroy", || async { s.env(ENV).await.is_none() })
        .await
        .expect("deleted");
    s.expect(&Delivery::signed("issue_comment", pr_comment(2, "Codertocat", "/preview")), 200, "accepted", "Created")
        .await;
    assert!(s.env(ENV).await.is_some());

    // The pull request is closed: the unmodified `closed` payload deletes the environment.
    s.sim
        .put_pull_request(REPO, 2, PullRequestSeed { state: Some(State::Closed), ..Default::default() })
        .expect("close");
    s.expect(&Delivery::signed("pull_request", payload("pull_request.closed")), 200, "accepted", "Deleted").await;
    wait_for(TIMEOUT, "environment deleted on close", || async { s.env(ENV).await.is_none() }).await.expect("deleted");

    // Late deliveries for the closed pull request never bring it back.
    s.expect(
        &Delivery::signed("issue_comment", pr_comment(2, "Codertocat", "/preview")),
        200,
        "rejected",
        "PullRequestClosed",
    )
    .await;
    s.expect(&Delivery::signed("pull_request", payload("pull_request.synchronize")), 200, "ignored", "NoEnvironment")
        .await;
    // `opened` / `reopened` do not create environments by themselves either.
    s.expect(&Delivery::signed("pull_request", payload("pull_request.reopened")), 200, "ignored", "UnsupportedAction")
        .await;
    assert_eq!(s.env_count().await, 0, "a closed pull request got an environment");
    assert!(s.log_has(r#""reason":"PullRequestClosed""#), "{}", s.operator.log());
}

#[tokio::test]
async fn rejected_deliveries_change_nothing_and_are_logged_with_their_reason() {
    let s = Setup::new("gh-reject", "1h").await;
    let preview = pr_comment(2, "Codertocat", "/preview");

    // Unsigned, signed with another secret, and a body changed after signing: 401.
    let unsigned = Delivery { signature: None, ..Delivery::signed("issue_comment", preview.clone()) };
    s.expect(&unsigned, 401, "rejected", "MissingSignature").await;
    let wrong_secret = Delivery {
        signature: Some(github_signature("not-the-secret", &preview)),
        ..Delivery::signed("issue_comment", preview.clone())
    };
    s.expect(&wrong_secret, 401, "rejected", "InvalidSignature").await;
    let mut tampered = Delivery::signed("issue_comment", pr_comment(2, "visitor", "/preview"));
    tampered.body = String::from_utf8(tampered.body).unwrap().replace("\"visitor\"", "\"Codertocat\"").into_bytes();
    s.expect(&tampered, 401, "rejected", "InvalidSignature").await;
    assert_eq!(s.env_count().await, 0);

    // A commenter with read access only.
    s.expect(
        &Delivery::signed("issue_comment", pr_comment(2, "visitor", "/preview")),
        200,
        "rejected",
        "NoWriteAccess",
    )
    .await;
    assert_eq!(s.env_count().await, 0);
    assert!(
        s.log_has(r#""reason":"NoWriteAccess""#) && s.log_has("visitor has read permission"),
        "{}",
        s.operator.log()
    );

    // A fork pull request under the default policy (Deny), even from the owner.
    s.expect(
        &Delivery::signed("issue_comment", pr_comment(3, "Codertocat", "/preview")),
        200,
        "rejected",
        "ForkPullRequestDenied",
    )
    .await;
    assert_eq!(s.env_count().await, 0);

    // The unmodified example comment is on a plain issue and says nothing: ignored.
    s.expect(&Delivery::signed("issue_comment", payload("issue_comment.created")), 200, "ignored", "NotAPullRequest")
        .await;
    s.expect(&Delivery::signed("issue_comment", payload("issue_comment.created.1")), 200, "ignored", "NotAPullRequest")
        .await;
    assert_eq!(s.env_count().await, 0);

    // Replays: a /preview that was undone by /destroy is not acted on again, whether
    // replayed as is or under a new delivery id.
    let first = Delivery::signed("issue_comment", preview.clone());
    s.expect(&first, 200, "accepted", "Created").await;
    s.expect(&Delivery::signed("issue_comment", pr_comment(2, "Codertocat", "/destroy")), 200, "accepted", "Deleted")
        .await;
    wait_for(TIMEOUT, "environment deleted", || async { s.env(ENV).await.is_none() }).await.expect("deleted");
    s.expect(&first, 200, "rejected", "DuplicateDelivery").await;
    s.expect(&Delivery::signed("issue_comment", preview), 200, "rejected", "DuplicateDelivery").await;
    assert_eq!(s.env_count().await, 0, "a replayed delivery recreated the environment");

    let log = s.operator.log();
    for reason in
        ["MissingSignature", "InvalidSignature", "NoWriteAccess", "ForkPullRequestDenied", "DuplicateDelivery"]
    {
        assert!(log.contains(&format!(r#""reason":"{reason}""#)), "{reason} not logged:\n{log}");
    }
    assert!(!log.contains(TOKEN) && !log.contains(WEBHOOK_SECRET), "a secret reached the log");
    let metrics = s.operator.get("/metrics").await.expect("metrics").1;
    for reason in ["InvalidSignature", "NoWriteAccess", "ForkPullRequestDenied", "DuplicateDelivery"] {
        assert!(
            metrics.lines().any(|l| l.starts_with("switchyard_github_events_total{")
                && l.contains(r#"result="rejected""#)
                && l.contains(&format!(r#"reason="{reason}""#))),
            "{reason} not counted:\n{metrics}"
        );
    }
}

/// Plays the PreviewEnvironment controller: applies `status` under its own field manager.
async fn set_status(s: &Setup, status: Value) {
    let patch = json!({"apiVersion": "switchyard.dev/v1alpha1", "kind": "PreviewEnvironment", "status": status});
    s.envs()
        .patch_status(ENV, &PatchParams::apply("test-preview-environment-controller").force(), &Patch::Apply(&patch))
        .await
        .expect("status patch");
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": "2025-01-01T00:00:00Z", "observedGeneration": 1})
}

#[tokio::test]
async fn the_pull_request_comment_is_posted_once_and_edited_on_each_state_change() {
    let s = Setup::new("gh-comment", "1h").await;
    s.expect(&Delivery::signed("issue_comment", pr_comment(2, "Codertocat", "/preview")), 200, "accepted", "Created")
        .await;
    let comment_route = "/repos/{owner}/{repo}/issues/comments/{id}";
    let body_with = |needle: &'static str, revisions: usize| {
        let sim = &s.sim;
        move || {
            let comments = sim.comments(REPO);
            async move {
                comments
                    .first()
                    .filter(|c| c.body.contains(needle) && c.revisions.len() == revisions)
                    .map(|c| c.body.clone())
            }
        }
    };
    let first = wait_for(TIMEOUT, "the comment to be posted", body_with("Pending", 0))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", s.operator.log()));
    assert!(first.contains(&format!("`{}` on `changes`", &PAYLOAD_HEAD[..7])), "{first}");
    let recorded =
        wait_for(TIMEOUT, "the comment id in status", || async { s.env(ENV).await?.status?.pull_request_comment })
            .await
            .expect("status.pullRequestComment");
    assert_eq!(recorded.id as u64, s.sim.comments(REPO)[0].id);

    set_status(
        &s,
        json!({
            "conditions": [condition("Ready", "False", "Provisioning", "creating the site"),
                           condition("Reconciling", "True", "Provisioning", "creating the site")],
            "url": "https://pr-2.preview.example.com",
        }),
    )
    .await;
    wait_for(TIMEOUT, "the comment to show progress", body_with("https://pr-2.preview.example.com", 1))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", s.operator.log()));

    let ready = json!({
        "conditions": [condition("Ready", "True", "Ready", ""), condition("Reconciling", "False", "Ready", "")],
        "url": "https://pr-2.preview.example.com",
        "lastDeployment": {"id": 7, "status": "finished", "sha": PAYLOAD_HEAD},
    });
    set_status(&s, ready.clone()).await;
    wait_for(TIMEOUT, "the comment to show Ready", body_with("#7 finished", 2))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", s.operator.log()));

    // A change the comment does not show is not an edit; the failure after it is.
    let mut unshown = ready;
    unshown["environmentHash"] = json!("0f0f");
    set_status(&s, unshown).await;
    set_status(
        &s,
        json!({
            "conditions": [condition("Ready", "False", "DeploymentFailed", "deployment 8 failed"),
                           condition("Deployed", "False", "DeploymentFailed", "composer install exited with 1")],
            "url": "https://pr-2.preview.example.com",
            "lastDeployment": {"id": 8, "status": "failed", "sha": PAYLOAD_HEAD},
        }),
    )
    .await;
    let failed = wait_for(TIMEOUT, "the comment to show the failure", body_with("What failed", 3))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", s.operator.log()));
    assert!(failed.contains("composer install exited with 1") && failed.contains("Deployment #8"), "{failed}");

    // Settled: still one comment, posted once, edited three times; its hash in status.
    let settled = wait_for(TIMEOUT, "the hash of the last body in status", || async {
        let hash = hex::encode(Sha256::digest(s.sim.comments(REPO)[0].body.as_bytes()));
        s.env(ENV).await?.status?.pull_request_comment.filter(|c| c.body_hash == hash)
    })
    .await
    .expect("bodyHash recorded");
    let comments = s.sim.comments(REPO);
    assert_eq!(comments.len(), 1, "one comment per environment");
    assert_eq!(settled.id as u64, comments[0].id);
    assert_eq!(comments[0].user, "switchyard[bot]");
    assert_eq!(s.sim.count("POST", "/repos/{owner}/{repo}/issues/{number}/comments"), 1);
    assert_eq!(s.sim.count("PATCH", comment_route), 3, "edits: progress, ready, failure");
    for body in comments[0].revisions.iter().chain([&comments[0].body]) {
        assert!(!body.contains(TOKEN) && !body.contains(WEBHOOK_SECRET), "a secret in the comment: {body}");
    }

    // The comment controller owns `status.pullRequestComment` and nothing else.
    let env = s.env(ENV).await.expect("environment");
    let managed = env.metadata.managed_fields.unwrap_or_default();
    let ours = managed.iter().find(|m| m.manager.as_deref() == Some("switchyard-pr-comment")).expect("manager entry");
    let fields = ours.fields_v1.as_ref().map(|f| f.0.clone()).unwrap_or_default();
    assert_eq!(fields, json!({"f:status": {"f:pullRequestComment": {"f:bodyHash": {}, "f:id": {}}}}));
}

#[tokio::test]
async fn polling_catches_up_with_a_missed_push_and_a_missed_close() {
    let s = Setup::new("gh-poll", "1s").await;
    s.expect(&Delivery::signed("issue_comment", pr_comment(2, "Codertocat", "/preview")), 200, "accepted", "Created")
        .await;

    // Commits pushed while the webhook was down.
    let pushed = "2222222222222222222222222222222222222222";
    s.sim.put_pull_request(REPO, 2, push(pushed)).expect("push");
    wait_for(TIMEOUT, "the poller to move the head", || async {
        s.env(ENV).await.and_then(|e| e.spec.head_sha).as_deref() == Some(pushed)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", s.operator.log()));

    // The pull request merged while the webhook was down.
    s.sim.put_pull_request(REPO, 2, PullRequestSeed { merged: Some(true), ..Default::default() }).expect("merge");
    wait_for(TIMEOUT, "the poller to delete the environment", || async { s.env(ENV).await.is_none() })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", s.operator.log()));
    assert!(s.log_has("poll: caught up with a missed event"), "{}", s.operator.log());
    assert!(s.sim.count("GET", "/repos/{owner}/{repo}/pulls") >= 2, "the poller lists open pull requests");
}

/// The whole product path: a `/preview` comment creates the environment from the
/// repository's template, the real PreviewEnvironment controller converges it on the
/// Forge simulator, the PR comment ends up showing its URL, and closing the pull
/// request tears it down.
#[tokio::test]
async fn a_preview_comment_brings_up_a_real_environment_and_closing_the_pr_removes_it() {
    let world = preview_support::World::new("gh-e2e").await;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "github"}, "stringData": {"token": TOKEN, "webhookSecret": WEBHOOK_SECRET}
    }))
    .expect("secret");
    Api::<Secret>::namespaced(world.cp.client(), &world.ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    let sim =
        GithubSim::start(GithubSimConfig { tokens: vec![Token::new(TOKEN, "switchyard[bot]")], ..Default::default() })
            .await
            .expect("github simulator");
    sim.put_pull_request(REPO, 2, head("changes", PAYLOAD_HEAD, None)).expect("seed PR 2");
    let ns = world.ns.clone();
    let operator = world.operator_with(format!(
        r#"github:
  apiUrl: {api}
  tokenSecretRef: {{namespace: {ns}, name: github, key: token}}
  webhookSecretRef: {{namespace: {ns}, name: github, key: webhookSecret}}
  pollInterval: 1h
  repositories:
    - repository: {REPO}
      namespace: {ns}
      project: hello
      className: {ns}
      spec:
        database: {{strategy: empty}}
        workers: [{{name: default}}]
"#,
        api = sim.base_url()
    ));
    wait_for(TIMEOUT, "operator /readyz", || async { operator.get("/readyz").await.is_some_and(|(s, _)| s == 200) })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", operator.log()));
    let http = reqwest::Client::new();
    let preview = Delivery::signed("issue_comment", pr_comment(2, "Codertocat", "/preview"));
    let (status, answer) = deliver(&http, &operator, &preview).await;
    assert_eq!((status, answer["result"].as_str()), (200, Some("accepted")), "{answer}");

    let env = world.wait_ready(ENV).await;
    let url = env.status.as_ref().and_then(|s| s.url.clone()).expect("url");
    assert_eq!(url, "https://pr-2.preview.example.com");
    assert_eq!(env.spec.head_sha.as_deref(), Some(PAYLOAD_HEAD));
    assert_eq!(world.live().sites.get("pr-2.preview.example.com"), Some(&1));
    let comment =
        wait_for(preview_support::TIMEOUT, "the PR comment to show the live URL", || {
            let comments = sim.comments(REPO);
            let url = url.clone();
            async move {
                comments.first().filter(|c| c.body.contains(&url) && c.body.contains("Ready")).map(|c| c.body.clone())
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}: {:?}", sim.comments(REPO)));
    assert_eq!(sim.comments(REPO).len(), 1, "one comment per environment");
    assert!(!comment.contains(TOKEN) && !comment.contains(preview_support::TOKEN));

    sim.put_pull_request(REPO, 2, PullRequestSeed { state: Some(State::Closed), ..Default::default() })
        .expect("close PR");
    let closed = Delivery::signed("pull_request", payload("pull_request.closed"));
    let (status, answer) = deliver(&http, &operator, &closed).await;
    assert_eq!(status, 200, "{answer}");
    world.wait_gone(ENV).await;
    assert!(world.live().sites.is_empty(), "closing the PR removed the site");
}
