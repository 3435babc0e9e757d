//! The typed GitHub client against `switchyard-sim github` over HTTP: every call the
//! operator makes, pagination, contents decoding, and errors that never carry the token.

use std::time::Duration;

use switchyard::backends::github::{GithubClient, GithubError, GithubToken, Permission, PullRequestState, RetryPolicy};
use switchyard_sim::github::model::{PullRequestSeed, Role, SideSeed, State};
use switchyard_sim::github::{GithubSim, GithubSimConfig, GithubSimHandle, Token};

const TOKEN: &str = "ghp_client_test_secret";

async fn setup() -> (GithubSimHandle, GithubClient) {
    let sim =
        GithubSim::start(GithubSimConfig { tokens: vec![Token::new(TOKEN, "previews[bot]")], ..Default::default() })
            .await
            .expect("simulator");
    let client = GithubClient::new(&sim.base_url(), GithubToken::new(TOKEN)).expect("client").with_retry(RetryPolicy {
        max_retries: 2,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    });
    (sim, client)
}

fn pr(sha: &str, fork: Option<&str>) -> PullRequestSeed {
    PullRequestSeed {
        head: SideSeed { ref_: Some("feature".into()), sha: Some(sha.into()), repo: fork.map(str::to_string) },
        ..Default::default()
    }
}

#[tokio::test]
async fn reads_pull_requests_and_lists_every_open_one_across_pages() {
    let (sim, client) = setup().await;
    for n in 1..=150 {
        sim.put_pull_request("acme/shop", n, pr("abcdef0", None)).expect("seed");
    }
    sim.put_pull_request("acme/shop", 7, PullRequestSeed { state: Some(State::Closed), ..Default::default() })
        .expect("close");
    sim.put_pull_request("acme/shop", 8, pr("abcdef0", Some("someone/shop"))).expect("fork");

    let one = client.pull_request("acme/shop", 8).await.expect("get");
    assert_eq!((one.number, one.state, one.head.sha.as_str()), (8, PullRequestState::Open, "abcdef0"));
    assert!(one.is_from_fork());
    assert!(!client.pull_request("acme/shop", 9).await.expect("get").is_from_fork());
    let closed = client.pull_request("acme/shop", 7).await.expect("get");
    assert_eq!(closed.state, PullRequestState::Closed);

    let open = client.open_pull_requests("acme/shop").await.expect("list");
    assert_eq!(open.len(), 149, "all pages followed, the closed one left out");
    assert_eq!(sim.count("GET", "/repos/{owner}/{repo}/pulls"), 2, "two pages of 100");

    let missing = client.pull_request("acme/shop", 999).await.unwrap_err();
    assert!(matches!(missing, GithubError::NotFound { .. }), "{missing:?}");
}

#[tokio::test]
async fn permissions_follow_roles() {
    let (sim, client) = setup().await;
    sim.put_repository("acme/shop", Default::default()).expect("repo");
    sim.set_role("acme/shop", "dev", Role::Write).expect("role");
    sim.set_role("acme/shop", "lead", Role::Maintain).expect("role");
    assert_eq!(client.permission("acme/shop", "dev").await.unwrap(), Permission::Write);
    assert!(client.permission("acme/shop", "lead").await.unwrap().can_write());
    assert!(client.permission("acme/shop", "acme").await.unwrap().can_write(), "the owner");
    assert!(!client.permission("acme/shop", "visitor").await.unwrap().can_write());
}

#[tokio::test]
async fn comments_are_created_edited_and_listed_as_the_token_user() {
    let (sim, client) = setup().await;
    sim.put_pull_request("acme/shop", 2, pr("abcdef0", None)).expect("seed");
    assert_eq!(client.authenticated_user().await.unwrap().login, "previews[bot]");
    let created = client.create_comment("acme/shop", 2, "first").await.expect("create");
    assert_eq!(created.user.as_ref().map(|u| u.login.as_str()), Some("previews[bot]"));
    let edited = client.update_comment("acme/shop", created.id, "second").await.expect("update");
    assert_eq!((edited.id, edited.body.as_deref()), (created.id, Some("second")));
    for i in 0..120 {
        client.create_comment("acme/shop", 2, &format!("more {i}")).await.expect("create");
    }
    let all = client.comments("acme/shop", 2).await.expect("list");
    assert_eq!(all.len(), 121);
    assert_eq!(all[0].body.as_deref(), Some("second"), "oldest first");
    assert!(matches!(client.update_comment("acme/shop", 424242, "x").await, Err(GithubError::NotFound { .. })));
    let too_long = "x".repeat(70_000);
    assert!(matches!(client.create_comment("acme/shop", 2, &too_long).await, Err(GithubError::Validation { .. })));
}

#[tokio::test]
async fn file_contents_are_decoded_from_base64_on_the_requested_ref() {
    let (sim, client) = setup().await;
    sim.put_repository("acme/shop", Default::default()).expect("repo");
    let compose =
        std::fs::read(format!("{}/tests/testdata/github/pull_request.opened.payload.json", env!("CARGO_MANIFEST_DIR")))
            .expect("some real multi-kilobyte file");
    sim.put_file("acme/shop", Some("feature"), "deploy/compose file.json", &compose).expect("file");
    sim.put_file("acme/shop", None, "README.md", b"main branch\n").expect("file");

    let file = client.file("acme/shop", "deploy/compose file.json", Some("feature")).await.expect("file");
    assert_eq!(file.content, compose);
    assert_eq!(file.path, "deploy/compose file.json");
    assert_eq!(file.sha.len(), 40);
    let readme = client.file("acme/shop", "README.md", None).await.expect("default branch");
    assert_eq!(readme.content, b"main branch\n");
    assert!(matches!(client.file("acme/shop", "deploy", Some("feature")).await, Err(GithubError::NotAFile { .. })));
    assert!(matches!(client.file("acme/shop", "README.md", Some("nope")).await, Err(GithubError::NotFound { .. })));
}

#[tokio::test]
async fn a_rejected_token_is_reported_without_the_token() {
    let (sim, _) = setup().await;
    let wrong = GithubClient::new(&sim.base_url(), GithubToken::new("ghp_wrong_secret_value")).expect("client");
    let err = wrong.pull_request("acme/shop", 1).await.unwrap_err();
    assert!(matches!(err, GithubError::Unauthorized { .. }), "{err:?}");
    let text = format!("{err} {err:?} {wrong:?}");
    assert!(!text.contains("ghp_wrong_secret_value"), "{text}");
    // Unreachable server: a transport error, still without the token.
    let down =
        GithubClient::new("http://127.0.0.1:9", GithubToken::new(TOKEN)).expect("client").with_retry(RetryPolicy {
            max_retries: 1,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        });
    let err = down.open_pull_requests("acme/shop").await.unwrap_err();
    assert!(err.is_transient() && !err.to_string().contains(TOKEN), "{err}");
}
