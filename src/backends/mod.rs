//! Clients of systems other than Kubernetes and Forge.

pub mod instance;
pub mod redis;

/// A backend call that failed. The text never contains credentials.
#[derive(Debug, thiserror::Error)]
#[error("{backend}: {message}")]
pub struct BackendError {
    pub backend: &'static str,
    pub message: String,
}
