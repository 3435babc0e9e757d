//! GitHub's REST API, the calls switchyard makes: pull requests (get, list open),
//! collaborator permission, issue comments (create, update, list), repository
//! contents and the authenticated user.
//!
//! The token only ever goes into the `Authorization` header: [`GithubToken`] and
//! [`GithubClient`] print as redacted and no error carries it. Idempotent calls
//! (GET, PATCH) are retried with jittered backoff on 5xx and transport failures;
//! a comment create only when the request provably never left (connect failure),
//! since a second POST would post a second comment. Exhausted rate limits are not
//! retried here: the error says when the limit resets, and the caller requeues.
//!
//! Types: `models` (what the calls return), `error` ([`GithubError`] and how an
//! answer becomes one); this file is the client and its calls.

mod error;
mod models;

pub use error::GithubError;
pub use models::{FileContent, IssueComment, Permission, PullRequest, PullRequestState, RepositoryRef, Side, User};

use std::fmt;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use base64::Engine as _;
use reqwest::header::{ACCEPT, HeaderMap};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use sha2::{Digest, Sha256};

use error::{error_from, transport};

/// GitHub's documented REST API version this client speaks.
pub const API_VERSION: &str = "2022-11-28";
/// Items per page when listing (GitHub's maximum).
const PER_PAGE: &str = "100";
/// Pages followed at most when listing, so a misbehaving server cannot loop us.
const MAX_PAGES: usize = 100;

/// A GitHub token. Only [`GithubToken::expose`] reveals it (for the `Authorization` header).
#[derive(Clone, PartialEq, Eq)]
pub struct GithubToken(String);

impl GithubToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The secret itself. Call sites: building the `Authorization` header, nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A stable, non-reversible label (`sha256:` + 12 hex) safe for logs.
    pub fn fingerprint(&self) -> String {
        format!("sha256:{}", hex::encode(&Sha256::digest(self.0.as_bytes())[..6]))
    }
}

impl fmt::Debug for GithubToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GithubToken({})", self.fingerprint())
    }
}

#[derive(Deserialize)]
struct PermissionBody {
    permission: String,
}

#[derive(Deserialize)]
struct ContentBody {
    #[serde(rename = "type")]
    type_: String,
    path: String,
    sha: String,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    content: Option<String>,
}

/// How often and how fast idempotent calls are retried (the Forge client's policy type).
pub use crate::forge::RetryPolicy;

/// Retries of a GitHub call: a webhook delivery waits for them, so they stay short.
pub const DEFAULT_RETRY: RetryPolicy =
    RetryPolicy { max_retries: 3, min_delay: Duration::from_millis(200), max_delay: Duration::from_secs(5) };

/// GitHub over HTTP. Cheap to clone.
#[derive(Clone)]
pub struct GithubClient {
    http: reqwest::Client,
    base: Url,
    token: GithubToken,
    retry: RetryPolicy,
}

impl fmt::Debug for GithubClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubClient").field("base", &self.base.as_str()).field("token", &self.token).finish()
    }
}

/// `owner` and `name` of `owner/name`, refusing anything that could change the URL's path.
fn split_repository(repo: &str) -> Result<(&str, &str), GithubError> {
    let ok = |s: &str| {
        !s.is_empty() && s != "." && s != ".." && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    match repo.split_once('/') {
        Some((owner, name)) if ok(owner) && ok(name) => Ok((owner, name)),
        _ => Err(GithubError::InvalidRepository(repo.to_string())),
    }
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| url.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

/// Whether sending a failed request again is safe.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// GET/PATCH: repeating has the same effect.
    Idempotent,
    /// A POST that creates: only when the request never reached the server.
    OnlyIfNotSent,
}

impl GithubClient {
    /// A client for the API at `base_url` (`https://api.github.com`, or a GitHub
    /// Enterprise `https://host/api/v3`).
    pub fn new(base_url: &str, token: GithubToken) -> Result<Self, GithubError> {
        let base = Url::parse(base_url)
            .map_err(|e| GithubError::Decode { message: format!("API URL {base_url:?} is not a URL: {e}") })?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(transport)?;
        Ok(Self { http, base, token, retry: DEFAULT_RETRY })
    }

    /// The same client with another retry policy (tests use short delays).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The fingerprint of the token this client sends.
    pub fn token_fingerprint(&self) -> String {
        self.token.fingerprint()
    }

    fn url(&self, segments: &[&str]) -> Result<Url, GithubError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| GithubError::Decode { message: "the API URL cannot have a path".into() })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn repo_url(&self, repo: &str, rest: &[&str]) -> Result<Url, GithubError> {
        let (owner, name) = split_repository(repo)?;
        let mut segments = vec!["repos", owner, name];
        segments.extend_from_slice(rest);
        self.url(&segments)
    }

    /// Whether `url` (from a `Link` header) is on the API's origin, so following it
    /// cannot send the token anywhere else.
    fn same_origin(&self, url: &Url) -> bool {
        url.scheme() == self.base.scheme()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default()
    }

    async fn send_once(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        accept: &str,
        what: &str,
    ) -> Result<(HeaderMap, bytes::Bytes), GithubError> {
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(self.token.expose())
            .header(ACCEPT, accept)
            .header("x-github-api-version", API_VERSION);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(transport)?;
        if status.is_success() { Ok((headers, bytes)) } else { Err(error_from(status, &headers, &bytes, what)) }
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
        accept: &str,
        replay: Replay,
        what: &str,
    ) -> Result<(HeaderMap, bytes::Bytes), GithubError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.max_retries)
            .with_jitter();
        (|| self.send_once(&method, &url, body.as_ref(), accept, what))
            .retry(backoff)
            .when(|e: &GithubError| match replay {
                Replay::Idempotent => e.is_transient(),
                Replay::OnlyIfNotSent => matches!(e, GithubError::Transport { connect: true, .. }),
            })
            .notify(|e, after| tracing::debug!(error = %e, ?after, what, "retrying a GitHub call"))
            .await
    }

    async fn get_json<T: DeserializeOwned>(&self, url: Url, what: &str) -> Result<T, GithubError> {
        let (_, body) =
            self.send(Method::GET, url, None, "application/vnd.github+json", Replay::Idempotent, what).await?;
        decode(&body, what)
    }

    /// Every item of a paginated list, following `Link: rel="next"` on the same origin.
    async fn get_all<T: DeserializeOwned>(&self, mut url: Url, what: &str) -> Result<Vec<T>, GithubError> {
        url.query_pairs_mut().append_pair("per_page", PER_PAGE);
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let (headers, body) = self
                .send(Method::GET, url.clone(), None, "application/vnd.github+json", Replay::Idempotent, what)
                .await?;
            out.extend(decode::<Vec<T>>(&body, what)?);
            let Some(next) = next_link(&headers) else { return Ok(out) };
            let next = Url::parse(&next)
                .map_err(|e| GithubError::Decode { message: format!("bad Link header for {what}: {e}") })?;
            if !self.same_origin(&next) {
                return Err(GithubError::Decode { message: format!("{what}: next page is on another host") });
            }
            url = next;
        }
        Err(GithubError::Decode { message: format!("{what}: more than {MAX_PAGES} pages") })
    }

    /// The account the token belongs to.
    pub async fn authenticated_user(&self) -> Result<User, GithubError> {
        self.get_json(self.url(&["user"])?, "the authenticated user").await
    }

    /// Pull request `number` of `repo` (`owner/name`).
    pub async fn pull_request(&self, repo: &str, number: u64) -> Result<PullRequest, GithubError> {
        let n = number.to_string();
        self.get_json(self.repo_url(repo, &["pulls", &n])?, &format!("pull request {repo}#{number}")).await
    }

    /// Every open pull request of `repo`.
    pub async fn open_pull_requests(&self, repo: &str) -> Result<Vec<PullRequest>, GithubError> {
        let mut url = self.repo_url(repo, &["pulls"])?;
        url.query_pairs_mut().append_pair("state", "open");
        self.get_all(url, &format!("open pull requests of {repo}")).await
    }

    /// `user`'s permission on `repo`.
    pub async fn permission(&self, repo: &str, user: &str) -> Result<Permission, GithubError> {
        let url = self.repo_url(repo, &["collaborators", user, "permission"])?;
        let body: PermissionBody = self.get_json(url, &format!("permission of {user} on {repo}")).await?;
        Ok(Permission::parse(&body.permission))
    }

    /// Every comment of issue or pull request `number`, oldest first.
    pub async fn comments(&self, repo: &str, number: u64) -> Result<Vec<IssueComment>, GithubError> {
        let n = number.to_string();
        self.get_all(self.repo_url(repo, &["issues", &n, "comments"])?, &format!("comments of {repo}#{number}")).await
    }

    /// Sends a comment body and reads the comment back.
    async fn send_comment(
        &self,
        method: Method,
        url: Url,
        body: &str,
        replay: Replay,
        what: &str,
    ) -> Result<IssueComment, GithubError> {
        let (_, resp) =
            self.send(method, url, Some(json!({"body": body})), "application/vnd.github+json", replay, what).await?;
        decode(&resp, what)
    }

    /// Posts a comment on issue or pull request `number`.
    pub async fn create_comment(&self, repo: &str, number: u64, body: &str) -> Result<IssueComment, GithubError> {
        let n = number.to_string();
        let url = self.repo_url(repo, &["issues", &n, "comments"])?;
        self.send_comment(Method::POST, url, body, Replay::OnlyIfNotSent, &format!("{repo}#{number}")).await
    }

    /// Replaces the body of comment `id` of `repo`.
    pub async fn update_comment(&self, repo: &str, id: u64, body: &str) -> Result<IssueComment, GithubError> {
        let i = id.to_string();
        let url = self.repo_url(repo, &["issues", "comments", &i])?;
        self.send_comment(Method::PATCH, url, body, Replay::Idempotent, &format!("comment {id} of {repo}")).await
    }

    /// The file at `path` of `repo` on `ref_` (the default branch when `None`).
    pub async fn file(&self, repo: &str, path: &str, ref_: Option<&str>) -> Result<FileContent, GithubError> {
        let mut segments = vec!["contents"];
        segments.extend(path.split('/').filter(|s| !s.is_empty()));
        let mut url = self.repo_url(repo, &segments)?;
        if let Some(r) = ref_ {
            url.query_pairs_mut().append_pair("ref", r);
        }
        let what = format!("{path} in {repo}{}", ref_.map(|r| format!(" at {r}")).unwrap_or_default());
        let value: serde_json::Value = self.get_json(url.clone(), &what).await?;
        if value.is_array() {
            return Err(GithubError::NotAFile { path: path.to_string() });
        }
        let body: ContentBody =
            serde_json::from_value(value).map_err(|e| GithubError::Decode { message: format!("{what}: {e}") })?;
        if body.type_ != "file" {
            return Err(GithubError::NotAFile { path: path.to_string() });
        }
        let content = match body.encoding.as_deref() {
            Some("base64") => {
                let packed: String = body.content.unwrap_or_default().split_whitespace().collect();
                base64::engine::general_purpose::STANDARD
                    .decode(packed)
                    .map_err(|e| GithubError::Decode { message: format!("{what}: bad base64: {e}") })?
            }
            // Files over 1 MB come without content: fetch them raw.
            _ => {
                let (_, raw) = self
                    .send(Method::GET, url, None, "application/vnd.github.raw+json", Replay::Idempotent, &what)
                    .await?;
                raw.to_vec()
            }
        };
        Ok(FileContent { path: body.path, sha: body.sha, content })
    }
}

fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, GithubError> {
    serde_json::from_slice(body).map_err(|e| GithubError::Decode { message: format!("{what}: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn token_never_prints() {
        let token = GithubToken::new("ghp_supersecret");
        let client = GithubClient::new("https://api.github.com", token.clone()).unwrap();
        for text in [format!("{token:?}"), format!("{client:?}")] {
            assert!(!text.contains("supersecret"), "{text}");
        }
    }

    #[test]
    fn repositories_that_would_change_the_path_are_refused() {
        assert_eq!(split_repository("octo/hello.rs").unwrap(), ("octo", "hello.rs"));
        for bad in ["octo", "octo/hello/x", "../x", "octo/..", "octo/a?b", "octo/"] {
            assert!(split_repository(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_link_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static("<https://x/a?page=1>; rel=\"prev\", <https://x/a?page=3>; rel=\"next\""),
        );
        assert_eq!(next_link(&h).as_deref(), Some("https://x/a?page=3"));
    }
}
