//! Why a GitHub call failed ([`GithubError`]) and how an HTTP answer or a transport
//! failure becomes one: 401, a 403/429 with an exhausted rate limit (and when it
//! resets), a plain 403, 404, 422, anything else.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::backends::{BackendError, error_chain};

/// Why a GitHub call failed. No variant carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GithubError {
    #[error("GitHub rejected the token (401 {message})")]
    Unauthorized { message: String },
    #[error("GitHub refused the request (403): {message}")]
    Forbidden { message: String },
    #[error("GitHub rate limit exhausted{}", .reset_in.map(|d| format!("; resets in {}s", d.as_secs())).unwrap_or_default())]
    RateLimited { reset_in: Option<Duration> },
    #[error("not found on GitHub: {what}")]
    NotFound { what: String },
    #[error("GitHub rejected the request (422): {message}")]
    Validation { message: String },
    #[error("GitHub answered {status}: {message}")]
    Server { status: u16, message: String },
    #[error("cannot reach GitHub: {message}")]
    Transport { message: String, connect: bool },
    #[error("unexpected answer from GitHub: {message}")]
    Decode { message: String },
    #[error("{0:?} is not a repository in owner/name form")]
    InvalidRepository(String),
    #[error("{path} is a directory, not a file")]
    NotAFile { path: String },
}

impl GithubError {
    /// Whether sending the same request again can succeed without a change elsewhere.
    pub fn is_transient(&self) -> bool {
        match self {
            GithubError::Server { status, .. } => *status >= 500,
            GithubError::Transport { .. } => true,
            _ => false,
        }
    }

    /// A stable, low-cardinality label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            GithubError::Unauthorized { .. } => "Unauthorized",
            GithubError::Forbidden { .. } => "Forbidden",
            GithubError::RateLimited { .. } => "RateLimited",
            GithubError::NotFound { .. } => "NotFound",
            GithubError::Validation { .. } => "Validation",
            GithubError::Server { .. } => "ServerError",
            GithubError::Transport { .. } => "Transport",
            GithubError::Decode { .. } => "Decode",
            GithubError::InvalidRepository(_) => "InvalidRepository",
            GithubError::NotAFile { .. } => "NotAFile",
        }
    }
}

impl From<GithubError> for BackendError {
    fn from(e: GithubError) -> Self {
        BackendError { backend: "github", message: e.to_string() }
    }
}

pub(super) fn transport(e: reqwest::Error) -> GithubError {
    // reqwest's text names the URL (never the token, which travels in a header).
    GithubError::Transport { message: error_chain(&e), connect: e.is_connect() }
}

fn header_secs(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

pub(super) fn error_from(status: StatusCode, headers: &HeaderMap, body: &[u8], what: &str) -> GithubError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    let exhausted = header_secs(headers, "x-ratelimit-remaining") == Some(0);
    let retry_after = header_secs(headers, "retry-after");
    match status.as_u16() {
        401 => GithubError::Unauthorized { message },
        403 | 429 if exhausted || retry_after.is_some() => {
            let reset_in = retry_after.map(Duration::from_secs).or_else(|| {
                let reset = header_secs(headers, "x-ratelimit-reset")?;
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
                Some(Duration::from_secs(reset.saturating_sub(now)))
            });
            GithubError::RateLimited { reset_in }
        }
        403 => GithubError::Forbidden { message },
        404 => GithubError::NotFound { what: what.to_string() },
        422 => GithubError::Validation { message },
        s => GithubError::Server { status: s, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn rate_limit_and_plain_forbidden_are_told_apart() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        assert!(matches!(error_from(StatusCode::FORBIDDEN, &h, b"{}", "x"), GithubError::RateLimited { .. }));
        let plain = error_from(StatusCode::FORBIDDEN, &HeaderMap::new(), br#"{"message":"nope"}"#, "x");
        assert_eq!(plain, GithubError::Forbidden { message: "nope".into() });
    }
}
