//! Client of a remote platform instance on the cross-branch design: `register-branch`
//! (no credentials), and the routes behind its middleware (`health`,
//! `sync-organization`, `validate-license`) with `X-Branch-Origin` and a Bearer key,
//! over TLS verified against a given CA.

use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::Value;

use super::BackendError;
use crate::logic::registration::{self, Answer, Payload};

const BACKEND: &str = "instance";
/// The header naming the Branch a call is made as (its name, as registered).
pub const ORIGIN_HEADER: &str = "X-Branch-Origin";
/// Longest version string kept from a health answer.
const MAX_VERSION_LEN: usize = 128;

/// How to verify an instance's certificate.
#[derive(Clone, Copy, Debug)]
pub enum Trust<'a> {
    /// The system's public roots (webpki).
    PublicRoots,
    /// Only this PEM CA bundle.
    Ca(&'a [u8]),
    /// No verification at all (`insecureSkipVerify`).
    Insecure,
}

/// An HTTP client for one instance. Cheap to clone.
#[derive(Clone, Debug)]
pub struct InstanceClient {
    http: reqwest::Client,
}

/// A successful probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Healthy {
    pub latency: Duration,
    /// The `version` the instance reports, if any.
    pub version: Option<String>,
}

/// A failed probe: what went wrong (never a credential) and how long it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unhealthy {
    pub latency: Duration,
    pub message: String,
}

/// Where a call goes and as whom.
pub struct Call<'a> {
    pub base_url: &'a str,
    /// Bearer key of the Branch the call is made as; sent marked sensitive so no HTTP
    /// layer logs it.
    pub key: &'a str,
    /// `X-Branch-Origin`: the name of the Branch the call is made as.
    pub origin: &'a str,
    pub timeout: Duration,
}

/// A guarded call that did not get a 2xx answer, or no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// What went wrong, never a credential.
    pub message: String,
}

impl InstanceClient {
    /// A client trusting `trust`. Redirects are not followed: a health endpoint that
    /// redirects is misconfigured, and the bearer key must not travel further.
    pub fn new(trust: Trust<'_>) -> Result<Self, BackendError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")));
        match trust {
            Trust::PublicRoots => {}
            Trust::Ca(pem) => {
                let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| invalid_ca(&e.to_string()))?;
                if certs.is_empty() {
                    return Err(invalid_ca("no certificate in the bundle"));
                }
                builder = builder.tls_built_in_root_certs(false);
                for cert in certs {
                    builder = builder.add_root_certificate(cert);
                }
            }
            Trust::Insecure => builder = builder.danger_accept_invalid_certs(true),
        }
        let http = builder.build().map_err(|e| invalid_ca(&describe(&e)))?;
        Ok(Self { http })
    }

    /// `GET <base><path>`: healthy on any 2xx answer within the timeout.
    pub async fn health(&self, call: &Call<'_>, path: &str) -> Result<Healthy, Unhealthy> {
        let url = format!("{}{}", call.base_url.trim_end_matches('/'), path);
        let started = Instant::now();
        let fail = |message: String| Unhealthy { latency: started.elapsed(), message };
        let request = self.http.get(&url);
        let response = self.send(request, call).await.map_err(|e| fail(describe_timeout(&e, call.timeout)))?;
        let status = response.status();
        if !status.is_success() {
            // The middleware says why it refused (401: origin or key missing, 403: not registered).
            let text = tokio::time::timeout(call.timeout.saturating_sub(started.elapsed()), response.text()).await;
            let detail = text
                .ok()
                .and_then(Result::ok)
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|v| v.get("message").and_then(Value::as_str).map(|m| format!(": {}", truncate(m, 200))));
            return Err(fail(format!(
                "health endpoint answered HTTP {}{}",
                status.as_u16(),
                detail.unwrap_or_default()
            )));
        }
        let body = tokio::time::timeout(call.timeout.saturating_sub(started.elapsed()), response.bytes())
            .await
            .map_err(|_| fail(format!("no complete answer within {}", seconds(call.timeout))))?
            .map_err(|e| fail(describe(&e)))?;
        Ok(Healthy { latency: started.elapsed(), version: version(&body) })
    }

    /// `POST <base>/api/v1/cross-branch/register-branch` with `payload`, without
    /// credentials (the design keeps registration outside its middleware).
    pub async fn register(&self, base_url: &str, payload: &Payload, timeout: Duration) -> Result<Answer, BackendError> {
        let request = self.http.post(registration::endpoint(base_url)).json(payload).timeout(timeout);
        let response = request.send().await.map_err(|e| BackendError {
            backend: BACKEND,
            message: format!("registering with {base_url}: {}", describe_timeout(&e, timeout)),
        })?;
        let status = response.status().as_u16();
        // The instance's message helps (a 422 names the field); it never echoes our key.
        let text = response.text().await.unwrap_or_default();
        Ok(registration::answer(status, &serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// `POST <base><path>` with a JSON body as `call.origin`: the answer's JSON on 2xx.
    pub async fn post(&self, call: &Call<'_>, path: &str, body: &Value) -> Result<Value, Refused> {
        let url = format!("{}{}", call.base_url.trim_end_matches('/'), path);
        let response = self
            .send(self.http.post(&url).json(body), call)
            .await
            .map_err(|e| Refused { status: None, message: describe_timeout(&e, call.timeout) })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let json = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        let detail = json.get("message").and_then(Value::as_str).map(|m| format!(": {}", truncate(m, 200)));
        Err(Refused {
            status: Some(status.as_u16()),
            message: format!("{path} answered HTTP {}{}", status.as_u16(), detail.unwrap_or_default()),
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder, call: &Call<'_>) -> reqwest::Result<reqwest::Response> {
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", call.key)).unwrap_or(HeaderValue::from_static(""));
        bearer.set_sensitive(true);
        let request = request.header(AUTHORIZATION, bearer).header(ORIGIN_HEADER, call.origin);
        request.header(reqwest::header::ACCEPT, "application/json").timeout(call.timeout).send().await
    }
}

/// Whether `key` can travel as a bearer token (printable ASCII, no spaces).
pub fn is_bearer_token(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_graphic())
}

fn invalid_ca(detail: &str) -> BackendError {
    BackendError { backend: BACKEND, message: format!("invalid CA bundle: {detail}") }
}

/// The `version` of a health answer (a string or a number), if it has one.
fn version(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let version = match value.get("version")? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    Some(truncate(&version, MAX_VERSION_LEN).to_string())
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

fn describe_timeout(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() { format!("no answer within {}", seconds(timeout)) } else { describe(e) }
}

/// The error and its causes, without the URL (it could carry user info).
fn describe(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    let head = if e.is_connect() {
        "cannot connect"
    } else if e.is_request() {
        "request failed"
    } else if e.is_body() || e.is_decode() {
        "bad answer"
    } else {
        "HTTP error"
    };
    if parts.is_empty() { head.to_string() } else { format!("{head}: {}", parts.join(": ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_read_from_strings_and_numbers_and_capped() {
        assert_eq!(version(br#"{"version":"2.4.1"}"#), Some("2.4.1".into()));
        assert_eq!(version(br#"{"version":3}"#), Some("3".into()));
        assert_eq!(version(b"ok"), None);
        assert_eq!(version(br#"{"status":"ok"}"#), None);
        let long = format!(r#"{{"version":"{}"}}"#, "x".repeat(500));
        assert_eq!(version(long.as_bytes()).map(|v| v.len()), Some(MAX_VERSION_LEN));
    }

    #[test]
    fn bearer_tokens_are_printable_ascii_without_spaces() {
        assert!(is_bearer_token("abc.DEF-123_~+/="));
        assert!(!is_bearer_token("two words"));
        assert!(!is_bearer_token("naïve"));
        assert!(!is_bearer_token(""));
    }

    #[test]
    fn a_bundle_without_certificates_is_refused() {
        assert!(InstanceClient::new(Trust::Ca(b"not a certificate")).is_err());
        assert!(InstanceClient::new(Trust::PublicRoots).is_ok());
    }
}
