//! Typed Forge errors, classified once: retryable or terminal, with a stable metric label.

use std::collections::BTreeMap;
use std::time::Duration;

/// What kind of transport failure happened (decides whether a POST may be re-sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// Could not connect: the request never reached Forge.
    Connect,
    /// No answer in time: the request may or may not have been processed.
    Timeout,
    /// Anything else on the wire (reset, broken body): may have been processed.
    Other,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ForgeError {
    #[error("Forge rejected the token (401): {message}")]
    Unauthorized { message: String },
    #[error("Forge refused the operation (403): {message}")]
    Forbidden { message: String },
    #[error("not found in Forge (404): {message}")]
    NotFound { message: String },
    #[error("Forge validation failed (422): {message}")]
    Validation { message: String, errors: BTreeMap<String, Vec<String>> },
    #[error("Forge rate limit hit (429), retry after {retry_after:?}")]
    RateLimited { retry_after: Option<Duration> },
    #[error("Forge server error ({status}): {message}")]
    Server { status: u16, message: String },
    #[error("transport error talking to Forge ({kind:?}): {message}")]
    Transport { kind: TransportKind, message: String },
    #[error("cannot decode Forge response: {message}")]
    Decode { message: String },
}

impl ForgeError {
    /// Worth trying again later: 429, 5xx (and 408/409), transport failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            ForgeError::RateLimited { .. } | ForgeError::Transport { .. } => true,
            ForgeError::Server { status, .. } => *status >= 500 || *status == 408 || *status == 409,
            _ => false,
        }
    }

    /// Proven not processed by Forge, so even a non-idempotent POST may be re-sent.
    pub fn was_not_processed(&self) -> bool {
        matches!(self, ForgeError::RateLimited { .. } | ForgeError::Transport { kind: TransportKind::Connect, .. })
    }

    /// Label for metrics and Event reasons (stable, snake_case).
    pub fn metric_label(&self) -> &'static str {
        match self {
            ForgeError::Unauthorized { .. } => "unauthorized",
            ForgeError::Forbidden { .. } => "forbidden",
            ForgeError::NotFound { .. } => "not_found",
            ForgeError::Validation { .. } => "validation",
            ForgeError::RateLimited { .. } => "rate_limited",
            ForgeError::Server { .. } => "server",
            ForgeError::Transport { .. } => "transport",
            ForgeError::Decode { .. } => "decode",
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, ForgeError::NotFound { .. })
    }

    /// A 422 saying `field` is already taken (e.g. a duplicate database name).
    pub fn is_taken(&self, field: &str) -> bool {
        match self {
            ForgeError::Validation { errors, message } => {
                errors.get(field).is_some_and(|msgs| msgs.iter().any(|m| m.contains("already been taken")))
                    || (errors.is_empty() && message.contains("already been taken"))
            }
            _ => false,
        }
    }

    /// How long the server asked us to wait, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ForgeError::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }

    /// Remove `secret` from every message (defence in depth: servers sometimes echo input).
    pub(crate) fn scrub(self, secret: &str) -> Self {
        if secret.is_empty() {
            return self;
        }
        let s = |m: String| m.replace(secret, "[redacted]");
        match self {
            ForgeError::Unauthorized { message } => ForgeError::Unauthorized { message: s(message) },
            ForgeError::Forbidden { message } => ForgeError::Forbidden { message: s(message) },
            ForgeError::NotFound { message } => ForgeError::NotFound { message: s(message) },
            ForgeError::Validation { message, errors } => ForgeError::Validation {
                message: s(message),
                errors: errors.into_iter().map(|(k, v)| (s(k), v.into_iter().map(s).collect())).collect(),
            },
            ForgeError::Server { status, message } => ForgeError::Server { status, message: s(message) },
            ForgeError::Transport { kind, message } => ForgeError::Transport { kind, message: s(message) },
            ForgeError::Decode { message } => ForgeError::Decode { message: s(message) },
            e @ ForgeError::RateLimited { .. } => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert!(ForgeError::RateLimited { retry_after: None }.is_retryable());
        assert!(ForgeError::Server { status: 503, message: String::new() }.is_retryable());
        assert!(!ForgeError::Validation { message: String::new(), errors: BTreeMap::new() }.is_retryable());
        assert!(ForgeError::Transport { kind: TransportKind::Connect, message: String::new() }.was_not_processed());
        assert!(!ForgeError::Transport { kind: TransportKind::Timeout, message: String::new() }.was_not_processed());
        assert!(!ForgeError::Server { status: 500, message: String::new() }.was_not_processed());
        assert_eq!(ForgeError::NotFound { message: String::new() }.metric_label(), "not_found");
    }

    #[test]
    fn taken_is_detected_per_field() {
        let mut errors = BTreeMap::new();
        errors.insert("name".to_string(), vec!["The name has already been taken.".to_string()]);
        let e = ForgeError::Validation { message: "The name has already been taken.".into(), errors };
        assert!(e.is_taken("name"));
        assert!(!e.is_taken("user"));
    }

    #[test]
    fn scrub_removes_secret() {
        let e = ForgeError::Server { status: 500, message: "bad token abc123".into() }.scrub("abc123");
        assert!(!e.to_string().contains("abc123"));
    }
}
