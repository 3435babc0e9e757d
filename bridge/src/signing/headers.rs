//! The `X-Bridge-*` headers: their names, the set a signer adds ([`SignedHeaders`])
//! and the set a verifier received ([`Headers`]).

use super::verify_error::VerifyError;
use crate::identifier::Identifier;

/// Header naming the caller.
pub const HEADER_CALLER: &str = "X-Bridge-Caller";
/// Header with the unix timestamp the request was signed at.
pub const HEADER_TIMESTAMP: &str = "X-Bridge-Timestamp";
/// Header with the request's unique id.
pub const HEADER_REQUEST_ID: &str = "X-Bridge-Request-Id";
/// Header with the `v2=<hex>` signature.
pub const HEADER_SIGNATURE: &str = "X-Bridge-Signature";
/// Optional header with the version of the secret used.
pub const HEADER_KEY_VERSION: &str = "X-Bridge-Key-Version";
/// The `razy` profile's body-only signature header (`crate::razy`); not part of the `signed` profile.
pub const HEADER_RAZY_SIGNATURE: &str = "X-Razy-Signature";

/// What an `X-Bridge-Signature` value starts with.
pub(super) const SIGNATURE_PREFIX: &str = "v2=";

/// The headers a signer adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `X-Bridge-Caller`.
    pub caller: Identifier,
    /// `X-Bridge-Timestamp`.
    pub timestamp: i64,
    /// `X-Bridge-Request-Id`.
    pub request_id: String,
    /// `X-Bridge-Signature`, including `v2=`.
    pub signature: String,
    /// `X-Bridge-Key-Version`.
    pub key_version: Option<i64>,
}

impl SignedHeaders {
    /// (name, value) pairs in a fixed order, ready to add to a request.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            (HEADER_CALLER, self.caller.to_string()),
            (HEADER_TIMESTAMP, self.timestamp.to_string()),
            (HEADER_REQUEST_ID, self.request_id.clone()),
            (HEADER_SIGNATURE, self.signature.clone()),
        ];
        if let Some(version) = self.key_version {
            pairs.push((HEADER_KEY_VERSION, version.to_string()));
        }
        pairs
    }
}

/// Received headers, looked up case-insensitively. A header sent twice is refused
/// rather than guessed at.
#[derive(Clone, Debug, Default)]
// `pub(super)`: the tests in `signing` build variants of a header set from its pairs.
pub struct Headers(pub(super) Vec<(String, String)>);

impl Headers {
    /// From (name, value) pairs as received.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (N, V)>) -> Self {
        Self(pairs.into_iter().map(|(n, v)| (n.into(), v.into())).collect())
    }

    /// The value of `name`, `None` if absent; an error if it was sent more than once.
    pub fn get(&self, name: &'static str) -> Result<Option<&str>, VerifyError> {
        let mut values = self.0.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim());
        let first = values.next();
        if values.next().is_some() {
            return Err(VerifyError::MalformedHeader { name, reason: "sent more than once".into() });
        }
        Ok(first)
    }

    pub(super) fn require(&self, name: &'static str) -> Result<&str, VerifyError> {
        self.get(name)?.ok_or(VerifyError::MissingHeader(name))
    }
}
