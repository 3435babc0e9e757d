//! Clients of systems other than Kubernetes and Forge.

pub mod github;
pub mod instance;
pub mod mysql;
pub mod redis;

/// A backend call that failed. The text never contains credentials.
#[derive(Debug, thiserror::Error)]
#[error("{backend}: {message}")]
pub struct BackendError {
    pub backend: &'static str,
    pub message: String,
}

/// `e` and each of its sources, joined with `: ` (HTTP clients hide the cause, such as
/// "connection refused", behind a generic top-level message).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}
