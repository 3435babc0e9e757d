//! The GitHub simulator over raw HTTP: auth, errors, pagination, permissions, comments,
//! contents, rate-limit headers and the control endpoints.

mod cli_support;

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use switchyard_sim::github::model::{PullRequestSeed, Role, SideSeed, State};
use switchyard_sim::github::{GithubSim, GithubSimConfig, GithubSimHandle, Token};

const TOKEN: &str = "gh-sim-token";

async fn sim() -> GithubSimHandle {
    let config = GithubSimConfig { tokens: vec![Token::new(TOKEN, "preview-bot")], ..Default::default() };
    GithubSim::start(config).await.unwrap()
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn get(sim: &GithubSimHandle, path: &str) -> reqwest::Response {
    http().get(format!("{}{path}", sim.base_url())).bearer_auth(TOKEN).send().await.unwrap()
}

fn open_pr(sha: &str) -> PullRequestSeed {
    PullRequestSeed {
        user: Some("octocat".into()),
        head: SideSeed { ref_: Some("feature".into()), sha: Some(sha.into()), repo: None },
        ..Default::default()
    }
}

#[tokio::test]
async fn requests_without_a_valid_token_get_401_and_are_logged_without_the_token() {
    let sim = sim().await;
    sim.put_pull_request("octo/hello", 1, open_pr("abc1234")).unwrap();
    let url = format!("{}/repos/octo/hello/pulls/1", sim.base_url());
    let none = http().get(&url).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.json::<Value>().await.unwrap()["message"], "Requires authentication");
    let bad = http().get(&url).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(bad.json::<Value>().await.unwrap()["message"], "Bad credentials");
    // The legacy `token` scheme works too.
    let ok = http().get(&url).header("authorization", format!("token {TOKEN}")).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["x-ratelimit-limit"], "5000");
    assert_eq!(ok.headers()["x-ratelimit-remaining"], "4999");

    assert_eq!(sim.count("GET", "/repos/{owner}/{repo}/pulls/{number}"), 3);
    let log: Value =
        http().get(format!("{}/_sim/requests", sim.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(log["counts"]["GET /repos/{owner}/{repo}/pulls/{number}"], 3);
    assert!(!log.to_string().contains(TOKEN), "the token leaked into the request log");
}

#[tokio::test]
async fn pull_requests_render_like_github_and_list_paginates_with_link_headers() {
    let sim = sim().await;
    for n in 1..=5 {
        sim.put_pull_request("octo/hello", n, open_pr("abc1234")).unwrap();
    }
    sim.put_pull_request("octo/hello", 3, PullRequestSeed { state: Some(State::Closed), ..Default::default() })
        .unwrap();
    let mut fork = open_pr("def5678");
    fork.head.repo = Some("forker/hello".into());
    sim.put_pull_request("octo/hello", 6, fork).unwrap();

    let pr: Value = get(&sim, "/repos/octo/hello/pulls/6").await.json().await.unwrap();
    assert_eq!(pr["number"], 6);
    assert_eq!(pr["state"], "open");
    assert_eq!(pr["merged"], false);
    assert_eq!(pr["head"]["sha"], "def5678");
    assert_eq!(pr["head"]["ref"], "feature");
    assert_eq!(pr["head"]["repo"]["full_name"], "forker/hello");
    assert_eq!(pr["head"]["repo"]["fork"], true);
    assert_eq!(pr["base"]["repo"]["full_name"], "octo/hello");
    assert_eq!(pr["user"]["login"], "octocat");

    let missing = get(&sim, "/repos/octo/hello/pulls/99").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.json::<Value>().await.unwrap()["message"], "Not Found");

    let first = get(&sim, "/repos/octo/hello/pulls?per_page=2").await;
    let link = first.headers()["link"].to_str().unwrap().to_string();
    assert!(link.contains("page=2>; rel=\"next\"") && link.contains("page=3>; rel=\"last\""), "{link}");
    let numbers: Vec<u64> =
        first.json::<Vec<Value>>().await.unwrap().iter().map(|p| p["number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, vec![6, 5], "newest first");
    let next = link.split(", ").find(|l| l.ends_with("rel=\"next\"")).unwrap();
    let next_url = next.trim_start_matches('<').split('>').next().unwrap();
    let second: Vec<Value> = http().get(next_url).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!(second.iter().map(|p| p["number"].as_u64().unwrap()).collect::<Vec<_>>(), vec![4, 2]);
    assert!(second[0].get("merged").is_none(), "list items are the short form");

    let closed: Vec<Value> = get(&sim, "/repos/octo/hello/pulls?state=closed").await.json().await.unwrap();
    assert_eq!(closed.len(), 1);
}

#[tokio::test]
async fn collaborator_permission_reports_legacy_permission_and_role_name() {
    let sim = sim().await;
    sim.put_pull_request("octo/hello", 1, open_pr("abc1234")).unwrap();
    sim.set_role("octo/hello", "maintainer", Role::Maintain).unwrap();
    sim.set_role("octo/hello", "triager", Role::Triage).unwrap();
    for (login, permission, role) in
        [("maintainer", "write", "maintain"), ("triager", "read", "triage"), ("octo", "admin", "admin")]
    {
        let v: Value =
            get(&sim, &format!("/repos/octo/hello/collaborators/{login}/permission")).await.json().await.unwrap();
        assert_eq!((v["permission"].as_str(), v["role_name"].as_str()), (Some(permission), Some(role)), "{login}");
        assert_eq!(v["user"]["login"], login);
    }
}

#[tokio::test]
async fn comments_are_created_as_the_token_user_edited_in_place_and_listed_in_order() {
    let sim = sim().await;
    sim.put_pull_request("octo/hello", 2, open_pr("abc1234")).unwrap();
    let url = format!("{}/repos/octo/hello/issues/2/comments", sim.base_url());
    let created = http().post(&url).bearer_auth(TOKEN).json(&json!({"body": "first"})).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["user"]["login"], "preview-bot");
    let id = created["id"].as_u64().unwrap();

    let edit_url = format!("{}/repos/octo/hello/issues/comments/{id}", sim.base_url());
    let edited = http().patch(&edit_url).bearer_auth(TOKEN).json(&json!({"body": "second"})).send().await.unwrap();
    assert_eq!(edited.status(), StatusCode::OK);
    assert_eq!(edited.json::<Value>().await.unwrap()["body"], "second");

    let no_body = http().patch(&edit_url).bearer_auth(TOKEN).json(&json!({})).send().await.unwrap();
    assert_eq!(no_body.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let on_missing_issue = http()
        .post(format!("{}/repos/octo/hello/issues/9/comments", sim.base_url()))
        .bearer_auth(TOKEN)
        .json(&json!({"body": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(on_missing_issue.status(), StatusCode::NOT_FOUND);

    http().post(&url).bearer_auth(TOKEN).json(&json!({"body": "another"})).send().await.unwrap();
    let list: Vec<Value> = get(&sim, "/repos/octo/hello/issues/2/comments").await.json().await.unwrap();
    assert_eq!(list.iter().map(|c| c["body"].as_str().unwrap()).collect::<Vec<_>>(), vec!["second", "another"]);

    let comments = sim.comments("octo/hello");
    assert_eq!(comments[0].revisions, vec!["first".to_string()]);
    let control: Value = http()
        .get(format!("{}/_sim/repos/octo/hello/comments", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(control[0]["revisions"], json!(["first"]));
}

#[tokio::test]
async fn contents_come_back_base64_in_60_character_lines_with_the_git_blob_sha() {
    let sim = sim().await;
    sim.put_repository("octo/hello", Default::default()).unwrap();
    let compose = "services:\n  web:\n    depends_on: [db]\n  db:\n    image: mariadb\n".repeat(3);
    // Seeded over HTTP, like the CLI user does.
    let put = http()
        .put(format!("{}/_sim/repos/octo/hello/contents/deploy/docker-compose.yml?ref=feature", sim.base_url()))
        .body(compose.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);

    let file: Value =
        get(&sim, "/repos/octo/hello/contents/deploy/docker-compose.yml?ref=feature").await.json().await.unwrap();
    assert_eq!(file["type"], "file");
    assert_eq!(file["encoding"], "base64");
    assert_eq!(file["size"], compose.len());
    let content = file["content"].as_str().unwrap();
    assert!(content.lines().all(|l| l.len() <= 60) && content.contains('\n'));
    let decoded = base64::engine::general_purpose::STANDARD.decode(content.replace('\n', "")).unwrap();
    assert_eq!(decoded, compose.as_bytes());
    assert_eq!(file["sha"].as_str().unwrap().len(), 40);

    let raw = http()
        .get(format!("{}/repos/octo/hello/contents/deploy/docker-compose.yml?ref=feature", sim.base_url()))
        .bearer_auth(TOKEN)
        .header("accept", "application/vnd.github.raw+json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.text().await.unwrap(), compose);

    let dir: Vec<Value> = get(&sim, "/repos/octo/hello/contents/deploy?ref=feature").await.json().await.unwrap();
    assert_eq!(dir[0]["name"], "docker-compose.yml");
    assert_eq!(get(&sim, "/repos/octo/hello/contents/deploy/docker-compose.yml").await.status(), StatusCode::NOT_FOUND);
    let unknown_ref = get(&sim, "/repos/octo/hello/contents/x?ref=nope").await;
    assert_eq!(unknown_ref.status(), StatusCode::NOT_FOUND);
    assert_eq!(unknown_ref.json::<Value>().await.unwrap()["message"], "No commit found for the ref nope");
}

#[tokio::test]
async fn exhausted_rate_limit_answers_403_with_remaining_zero() {
    let config = GithubSimConfig {
        tokens: vec![Token::new(TOKEN, "bot")],
        rate_limit: 2,
        rate_window: Duration::from_secs(3600),
        ..Default::default()
    };
    let sim = GithubSim::start(config).await.unwrap();
    assert_eq!(get(&sim, "/user").await.headers()["x-ratelimit-remaining"], "1");
    assert_eq!(get(&sim, "/user").await.headers()["x-ratelimit-remaining"], "0");
    let limited = get(&sim, "/user").await;
    assert_eq!(limited.status(), StatusCode::FORBIDDEN);
    assert_eq!(limited.headers()["x-ratelimit-remaining"], "0");
    assert!(limited.json::<Value>().await.unwrap()["message"].as_str().unwrap().starts_with("API rate limit exceeded"));
}

#[tokio::test]
async fn control_endpoints_seed_pull_requests_and_permissions() {
    let sim = sim().await;
    let base = sim.base_url();
    let put = |path: &str, body: Value| http().put(format!("{base}{path}")).json(&body).send();
    let pr = put("/_sim/repos/octo/hello/pulls/4", json!({"head": {"ref": "fix", "sha": "0123abc"}})).await.unwrap();
    assert_eq!(pr.status(), StatusCode::OK);
    let bad_sha = put("/_sim/repos/octo/hello/pulls/4", json!({"head": {"sha": "not-a-sha"}})).await.unwrap();
    assert_eq!(bad_sha.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let role = put("/_sim/repos/octo/hello/collaborators/dev", json!({"role": "write"})).await.unwrap();
    assert_eq!(role.status(), StatusCode::OK);
    let v: Value = get(&sim, "/repos/octo/hello/collaborators/dev/permission").await.json().await.unwrap();
    assert_eq!(v["permission"], "write");
    put("/_sim/repos/octo/hello/pulls/4", json!({"merged": true})).await.unwrap();
    let pr: Value = get(&sim, "/repos/octo/hello/pulls/4").await.json().await.unwrap();
    assert_eq!((pr["state"].as_str(), pr["merged"].as_bool()), (Some("closed"), Some(true)));
    assert_eq!(pr["head"]["sha"], "0123abc");
}

/// The CLI serves until killed; killed on drop so a failing test leaves nothing behind.
#[tokio::test]
async fn the_cli_serves_the_simulator_with_the_given_token() {
    let (_child, url) =
        cli_support::start(&["github", "--listen", "127.0.0.1:0", "--token", "cli-token=cli-bot"]).await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let me: Value =
        http().get(format!("{url}/user")).bearer_auth("cli-token").send().await.unwrap().json().await.unwrap();
    assert_eq!(me["login"], "cli-bot");
    let refused = http().get(format!("{url}/user")).bearer_auth("other").send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}
