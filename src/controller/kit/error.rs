//! The one error type of every reconcile, and the one place that decides what is
//! retried, how soon, and what the user is told.

use std::time::Duration;

use crate::backends::BackendError;
use crate::forge::ForgeError;

/// Why a reconcile failed. The variant, not the text, decides retry vs `Stalled`;
/// [`Error::reason`] is the Event reason and the metric label.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The spec cannot be acted on until the user changes it.
    #[error("{message}")]
    Invalid { reason: &'static str, message: String },
    /// An external system failed; retried with backoff.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Forge failed in a way worth retrying (terminal Forge errors become `Invalid`).
    #[error(transparent)]
    Forge(ForgeError),
    /// Not an error: waiting on something outside this object (retried quietly).
    #[error("{0}")]
    Waiting(String),
    #[error("finalizer: {0}")]
    Finalizer(Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// An error the user must act on: `Stalled=True` with `reason`.
    pub fn invalid(reason: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid { reason, message: message.into() }
    }

    /// Whether retrying without a user change can succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Error::Invalid { .. })
    }

    /// The stable, CamelCase name of the failure: the variant (an `Invalid`'s own
    /// reason). Event reason and metric label; low cardinality by construction.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeError",
            Error::Invalid { reason, .. } => reason,
            Error::Backend(_) => "BackendError",
            Error::Forge(_) => "ForgeError",
            Error::Waiting(_) => "Waiting",
            Error::Finalizer(_) => "FinalizerError",
        }
    }

    /// How long to wait before the next attempt, with jitter so a burst of
    /// failures does not come back as a burst.
    pub fn retry_after(&self) -> Duration {
        let base: u64 = match self {
            Error::Waiting(_) => 2,
            Error::Invalid { .. } => 300,
            _ => 10,
        };
        Duration::from_millis(base * 1000 + rand::random_range(0..base * 200))
    }
}

impl From<kube::runtime::finalizer::Error<Error>> for Error {
    fn from(e: kube::runtime::finalizer::Error<Error>) -> Self {
        use kube::runtime::finalizer::Error as F;
        match e {
            F::ApplyFailed(inner) | F::CleanupFailed(inner) => inner,
            other => Error::Finalizer(Box::new(other)),
        }
    }
}

/// What Forge will never accept is terminal (`Invalid`, so the object stalls with
/// a reason naming Forge); everything else is retried.
impl From<ForgeError> for Error {
    fn from(e: ForgeError) -> Self {
        match e {
            ForgeError::Unauthorized { .. } => {
                Error::invalid("ForgeUnauthorized", "Forge rejected the API token; update the token Secret")
            }
            ForgeError::Forbidden { message } => {
                Error::invalid("ForgeForbidden", format!("Forge refused: {message} (token scopes?)"))
            }
            ForgeError::Validation { message, errors } => {
                let detail: Vec<String> =
                    errors.iter().map(|(field, msgs)| format!("{field}: {}", msgs.join(" "))).collect();
                Error::invalid("ForgeRejected", format!("{message} {}", detail.join("; ")))
            }
            other => Error::Forge(other),
        }
    }
}

/// `Ok(None)` for a Forge 404 (the object is gone), the error otherwise.
pub fn forge_found<T>(result: Result<T, ForgeError>) -> Result<Option<T>, Error> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A Forge delete whose object is already gone counts as done.
pub fn forge_gone(result: Result<(), ForgeError>) -> Result<(), Error> {
    forge_found(result).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_forge_errors_stall_and_the_rest_retry() {
        let e: Error = ForgeError::Unauthorized { message: "no".into() }.into();
        assert_eq!(e.reason(), "ForgeUnauthorized");
        assert!(!e.is_retryable());
        let e: Error = ForgeError::Validation {
            message: "The given data was invalid.".into(),
            errors: [("name".to_string(), vec!["taken".to_string()])].into(),
        }
        .into();
        assert_eq!(e.reason(), "ForgeRejected");
        assert!(e.to_string().contains("name: taken"), "{e}");
        let e: Error = ForgeError::Server { status: 502, message: "bad gateway".into() }.into();
        assert_eq!(e.reason(), "ForgeError");
        assert!(e.is_retryable());
    }

    #[test]
    fn invalid_waits_long_and_waiting_comes_back_soon() {
        assert!(Error::invalid("X", "y").retry_after() >= Duration::from_secs(300));
        assert!(Error::Waiting("x".into()).retry_after() < Duration::from_secs(3));
    }
}
