//! Why a request is refused: [`VerifyError`], with a stable kind and HTTP status for each case.

use crate::allowlist::{self, DenyReason};

/// Why a request is refused. Each kind is distinct; none carries secret material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is present but unusable (or sent twice).
    #[error("malformed header {name}: {reason}")]
    MalformedHeader { name: &'static str, reason: String },
    /// The timestamp is more than the tolerance away from now.
    #[error("timestamp {timestamp} is {skew_secs}s away from now; at most {tolerance_secs}s allowed")]
    StaleTimestamp { timestamp: i64, skew_secs: u64, tolerance_secs: u64 },
    /// No valid secret produces the signature.
    #[error("signature does not match any valid secret")]
    BadSignature,
    /// The (caller, request id) pair was seen within the tolerance window.
    #[error("request id {request_id:?} from {caller} was already used")]
    Replayed { caller: String, request_id: String },
    /// Too many requests within the tolerance window to remember them all; refused
    /// rather than risk accepting a replay.
    #[error("replay cache is full ({capacity} requests within the tolerance window)")]
    ReplayCacheFull { capacity: usize },
    /// The allowlist names no grant for this caller.
    #[error("{0}")]
    UnknownCaller(DenyReason),
    /// The caller may not run this command (or the path names no valid command).
    #[error("{0}")]
    CommandNotAllowed(DenyReason),
    /// The grant that verified the request does not allow this module.
    #[error("{0}")]
    ModuleNotAllowed(DenyReason),
    /// A `razy` body that is not the design's `{caller_dist, module, command, args}`.
    #[error("malformed body: {0}")]
    MalformedBody(String),
    /// The caller was allowed this command until its grant was deleted or narrowed.
    #[error("{0}")]
    Revoked(DenyReason),
}

impl VerifyError {
    /// Stable CamelCase kind, for the CLI, metrics labels and responses.
    pub fn kind(&self) -> &'static str {
        match self {
            VerifyError::MissingHeader(_) => "MissingHeader",
            VerifyError::MalformedHeader { .. } => "MalformedHeader",
            VerifyError::StaleTimestamp { .. } => "StaleTimestamp",
            VerifyError::BadSignature => "BadSignature",
            VerifyError::Replayed { .. } => "Replayed",
            VerifyError::ReplayCacheFull { .. } => "ReplayCacheFull",
            VerifyError::UnknownCaller(_) => "UnknownCaller",
            VerifyError::CommandNotAllowed(_) => "CommandNotAllowed",
            VerifyError::ModuleNotAllowed(_) => "ModuleNotAllowed",
            VerifyError::MalformedBody(_) => "MalformedBody",
            VerifyError::Revoked(_) => "Revoked",
        }
    }

    /// The HTTP status a bridge endpoint should answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            VerifyError::MissingHeader(_) | VerifyError::MalformedHeader { .. } | VerifyError::MalformedBody(_) => 400,
            VerifyError::StaleTimestamp { .. } | VerifyError::BadSignature | VerifyError::Replayed { .. } => 401,
            VerifyError::UnknownCaller(_)
            | VerifyError::CommandNotAllowed(_)
            | VerifyError::ModuleNotAllowed(_)
            | VerifyError::Revoked(_) => 403,
            VerifyError::ReplayCacheFull { .. } => 503,
        }
    }
}

impl From<allowlist::Denied> for VerifyError {
    fn from(denied: allowlist::Denied) -> Self {
        match denied.reason {
            reason @ DenyReason::UnknownCaller { .. } => VerifyError::UnknownCaller(reason),
            reason @ DenyReason::Revoked { .. } => VerifyError::Revoked(reason),
            reason @ DenyReason::ModuleNotAllowed { .. } => VerifyError::ModuleNotAllowed(reason),
            reason => VerifyError::CommandNotAllowed(reason),
        }
    }
}
