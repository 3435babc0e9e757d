//! Typed client configuration. The token is a type whose `Debug`/`Display` never show it.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::Duration;

/// A Forge API token. Only [`ForgeToken::expose`] reveals it (for the `Authorization` header).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ForgeToken(String);

impl ForgeToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The secret itself. Call sites: building the `Authorization` header, nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A stable, non-reversible label (`sha256:` + 12 hex) safe for logs and metrics.
    pub fn fingerprint(&self) -> String {
        format!("sha256:{}", hex::encode(&self.digest()[..6]))
    }

    /// Key for the process-wide limiter registry.
    pub(crate) fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl fmt::Debug for ForgeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ForgeToken({})", self.fingerprint())
    }
}

impl fmt::Display for ForgeToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A password sent to Forge (database users). Serialized into request bodies, never printed.
#[derive(Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    pub fn new(p: impl Into<String>) -> Self {
        Self(p.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// Forge's per-user request budget and how the client paces itself under it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests allowed per `per` (Forge: 60).
    pub requests: u32,
    /// The window (Forge: one minute).
    pub per: Duration,
    /// Requests that may go out back to back. 1 guarantees that no window of length `per`
    /// ever holds more than `requests`, whichever way the server anchors its window.
    pub burst: u32,
    /// Fraction added to the spacing between requests, so network and scheduling jitter
    /// between client and server cannot push `requests + 1` into one server window.
    pub safety_margin: f64,
}

impl RateLimit {
    /// `requests` per `per`, burst 1, 5% margin.
    pub fn new(requests: u32, per: Duration) -> Self {
        Self { requests: requests.max(1), per, burst: 1, safety_margin: 0.05 }
    }

    /// The spacing the client keeps between requests once its burst is spent.
    pub fn period(&self) -> Duration {
        self.per.div_f64(self.requests.max(1) as f64).mul_f64(1.0 + self.safety_margin.max(0.0))
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::new(60, Duration::from_secs(60))
    }
}

/// Retries of retryable failures (429, 5xx, timeouts): jittered exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub max_retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_retries: 5, min_delay: Duration::from_millis(250), max_delay: Duration::from_secs(30) }
    }
}

/// Everything [`super::HttpForgeClient`] needs.
#[derive(Debug, Clone)]
pub struct ForgeClientConfig {
    /// `https://forge.laravel.com/api` (no trailing slash needed).
    pub base_url: String,
    /// Organization slug.
    pub organization: String,
    pub token: ForgeToken,
    pub rate_limit: RateLimit,
    pub retry: RetryPolicy,
    /// Per-attempt timeout.
    pub request_timeout: Duration,
    /// `page[size]` for list calls (Forge's default is 30; bigger pages save budget).
    pub page_size: u32,
}

impl ForgeClientConfig {
    pub fn new(base_url: impl Into<String>, organization: impl Into<String>, token: ForgeToken) -> Self {
        Self {
            base_url: base_url.into(),
            organization: organization.into(),
            token,
            rate_limit: RateLimit::default(),
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(30),
            page_size: 100,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_never_prints() {
        let t = ForgeToken::new("super-secret-token-value");
        assert!(!format!("{t:?}").contains("super-secret"));
        assert!(!format!("{t}").contains("super-secret"));
        let cfg = ForgeClientConfig::new("http://x/api", "demo", t.clone());
        assert!(!format!("{cfg:?}").contains("super-secret"));
        assert_eq!(t.fingerprint(), ForgeToken::new("super-secret-token-value").fingerprint());
        assert!(!format!("{:?}", Password::new("hunter2")).contains("hunter2"));
    }

    #[test]
    fn period_includes_margin() {
        let r = RateLimit { requests: 60, per: Duration::from_secs(60), burst: 1, safety_margin: 0.0 };
        assert_eq!(r.period(), Duration::from_secs(1));
        let r = RateLimit::new(60, Duration::from_secs(60));
        assert_eq!(r.period(), Duration::from_millis(1050));
    }
}
