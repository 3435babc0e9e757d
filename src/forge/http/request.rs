//! One Forge request: what it is ([`Call`]), how it is sent (token, `Accept`, limiter),
//! how an answer becomes a [`ForgeError`], and the retries (idempotent calls on any
//! retryable error, creating POSTs only when Forge provably did not process them,
//! never sooner than `Retry-After`).

use super::HttpForgeClient;
use crate::forge::api::ForgeResult;
use crate::forge::error::{ForgeError, TransportKind};
use crate::forge::jsonapi;
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderMap};
use serde::Serialize;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Whether a failed request may be sent again as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Replay {
    /// GET/PUT/PATCH/DELETE: repeating has the same effect.
    Idempotent,
    /// POST that creates something: only when Forge provably did not process it (429,
    /// connect failure). Otherwise the caller looks the resource up before trying again.
    OnlyIfNotProcessed,
}

pub(super) struct Call {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) query: Vec<(String, String)>,
    pub(super) body: Option<Value>,
    pub(super) replay: Replay,
}

impl Call {
    pub(super) fn get(path: String) -> Self {
        Call { method: Method::GET, path, query: vec![], body: None, replay: Replay::Idempotent }
    }
    pub(super) fn with_query(mut self, k: &str, v: impl Into<String>) -> Self {
        self.query.push((k.to_string(), v.into()));
        self
    }
    pub(super) fn send<B: Serialize>(method: Method, path: String, body: Option<&B>) -> Self {
        let replay = if method == Method::POST { Replay::OnlyIfNotProcessed } else { Replay::Idempotent };
        Call { method, path, query: vec![], body: body.and_then(|b| serde_json::to_value(b).ok()), replay }
    }
    /// A POST that toggles state rather than creating (push-to-deploy, actions): safe to repeat.
    pub(super) fn idempotent_post(path: String) -> Self {
        Call { method: Method::POST, path, query: vec![], body: None, replay: Replay::Idempotent }
    }
}

pub(super) fn transport(e: reqwest::Error) -> ForgeError {
    let kind = if e.is_connect() {
        TransportKind::Connect
    } else if e.is_timeout() {
        TransportKind::Timeout
    } else {
        TransportKind::Other
    };
    ForgeError::Transport { kind, message: crate::backends::error_chain(&e) }
}

/// `Retry-After` (seconds), else `X-RateLimit-Reset` read as an epoch when it looks like one
/// (> 1e9) and as a delta otherwise (both readings exist, contract §1).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let num = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|s| s.trim().parse::<u64>().ok());
    if let Some(secs) = num("retry-after") {
        return Some(Duration::from_secs(secs));
    }
    let reset = num("x-ratelimit-reset")?;
    if reset > 1_000_000_000 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
        Some(Duration::from_secs(reset.saturating_sub(now)))
    } else {
        Some(Duration::from_secs(reset))
    }
}

fn error_from(status: u16, headers: &HeaderMap, body: &[u8]) -> ForgeError {
    let (message, errors) = jsonapi::error_body(body);
    match status {
        401 => ForgeError::Unauthorized { message },
        403 => ForgeError::Forbidden { message },
        404 => ForgeError::NotFound { message },
        422 => ForgeError::Validation { message, errors },
        429 => ForgeError::RateLimited { retry_after: retry_after(headers) },
        _ => ForgeError::Server { status, message },
    }
}

impl HttpForgeClient {
    async fn send_once(&self, call: &Call, attempt: usize) -> ForgeResult<Bytes> {
        self.limiter.acquire().await;
        let url = format!("{}{}", self.base, call.path);
        let mut req = self
            .http
            .request(call.method.clone(), &url)
            .bearer_auth(self.config.token.expose())
            .header(ACCEPT, "application/json, application/vnd.api+json");
        if !call.query.is_empty() {
            req = req.query(&call.query);
        }
        if let Some(body) = &call.body {
            req = req.json(body);
        }
        let result = async {
            let resp = req.send().await.map_err(transport)?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp.bytes().await.map_err(transport)?;
            Ok::<_, ForgeError>((status, headers, body))
        }
        .await;
        let (status, headers, body) = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(method = %call.method, path = %call.path, attempt, error = %e, "forge request failed");
                return Err(e.scrub(self.config.token.expose()));
            }
        };
        tracing::debug!(method = %call.method, path = %call.path, status, attempt, token = %self.config.token.fingerprint(), "forge request");
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let err = error_from(status, &headers, &body).scrub(self.config.token.expose());
        if let ForgeError::RateLimited { retry_after } = &err {
            tracing::warn!(token = %self.config.token.fingerprint(), ?retry_after, "Forge answered 429; pausing this token");
            self.limiter.pause_for(retry_after.unwrap_or(Duration::from_secs(1)));
        }
        Err(err)
    }

    /// Send with retries: idempotent calls on any retryable error, creating POSTs only when
    /// Forge provably did not process them. Waits at least `Retry-After` on 429.
    pub(super) async fn send(&self, call: Call) -> ForgeResult<Bytes> {
        let policy = self.config.retry;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_retries)
            .with_jitter();
        let attempts = AtomicUsize::new(0);
        let maybe_processed = AtomicBool::new(false);
        let call = &call;
        let op = || async {
            let n = attempts.fetch_add(1, Ordering::SeqCst);
            match self.send_once(call, n).await {
                // An earlier, ambiguous attempt already deleted it.
                Err(ForgeError::NotFound { .. })
                    if call.method == Method::DELETE && maybe_processed.load(Ordering::SeqCst) =>
                {
                    Ok(Bytes::new())
                }
                Err(e) => {
                    if !e.was_not_processed() {
                        maybe_processed.store(true, Ordering::SeqCst);
                    }
                    Err(e)
                }
                ok => ok,
            }
        };
        op.retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|e: &ForgeError| match call.replay {
                Replay::Idempotent => e.is_retryable(),
                Replay::OnlyIfNotProcessed => e.was_not_processed(),
            })
            .adjust(|e: &ForgeError, d| match (e.retry_after(), d) {
                (Some(ra), Some(d)) => Some(d.max(ra)),
                (_, d) => d,
            })
            .notify(|e: &ForgeError, d| {
                tracing::debug!(method = %call.method, path = %call.path, error = %e, retry_in = ?d, "retrying Forge request");
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn reset_header_epoch_or_delta() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        h.insert("x-ratelimit-reset", HeaderValue::from_str(&(now + 30).to_string()).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(d <= Duration::from_secs(30) && d >= Duration::from_secs(28), "{d:?}");
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
    }
}
