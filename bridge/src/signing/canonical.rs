//! The `v2` canonical request and the MACs over it, and [`sign`], which turns them
//! into the headers a signer adds.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::headers::{SIGNATURE_PREFIX, SignedHeaders};
use crate::identifier::Identifier;
use crate::secret::SecretKey;

type HmacSha256 = Hmac<Sha256>;

/// Longest request id.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The request as the verifier saw it.
#[derive(Clone, Copy, Debug)]
pub struct RequestParts<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path and query, as sent.
    pub path: &'a str,
    /// Raw body.
    pub body: &'a [u8],
}

/// Why a request could not be signed (bad input from the signer's side).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// Method is not an HTTP token.
    #[error("method {0:?} is not an HTTP method")]
    Method(String),
    /// Path does not start with `/` or contains whitespace or control characters.
    #[error("path {0:?} must start with '/' and contain no whitespace")]
    Path(String),
    /// Request id outside the allowed alphabet or length.
    #[error("request id {0:?} must be 1-128 of A-Z a-z 0-9 . _ ~ : -")]
    RequestId(String),
}

/// `hex(SHA-256(body))`.
pub fn body_digest(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The string the `v2` signature covers; `caller` in its canonical `code@tag` form.
pub fn canonical_string(
    method: &str,
    path: &str,
    timestamp: i64,
    request_id: &str,
    caller: &Identifier,
    body: &[u8],
) -> String {
    format!("v2\n{}\n{path}\n{timestamp}\n{request_id}\n{caller}\n{}", method.to_ascii_uppercase(), body_digest(body))
}

/// The HMAC-SHA256 of `data` under `key`, for [`hmac_hex`] and for verifying a
/// received signature in constant time (`Mac::verify_slice`).
pub(crate) fn mac(key: &SecretKey, data: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail; the fallback keeps it panic-free.
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).unwrap_or_else(|_| HmacSha256::new(&Default::default()));
    mac.update(data);
    mac
}

/// `hex(HMAC-SHA256(key, data))`.
pub fn hmac_hex(key: &SecretKey, data: &[u8]) -> String {
    hex::encode(mac(key, data).finalize().into_bytes())
}

/// The `razy` profile's `X-Razy-Signature` value: `hex(HMAC-SHA256(key, body))`.
pub fn razy_signature(key: &SecretKey, body: &[u8]) -> String {
    hmac_hex(key, body)
}

fn is_token(method: &str) -> bool {
    !method.is_empty() && method.bytes().all(|b| b.is_ascii_alphabetic())
}

fn is_valid_path(path: &str) -> bool {
    path.starts_with('/') && path.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `id` is a usable request id.
pub fn is_valid_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b':' | b'-'))
}

/// Signs a request as `caller` with `key` at `timestamp` (unix seconds).
pub fn sign(
    key: &SecretKey,
    key_version: Option<i64>,
    caller: &Identifier,
    request: RequestParts<'_>,
    timestamp: i64,
    request_id: &str,
) -> Result<SignedHeaders, SignError> {
    if !is_token(request.method) {
        return Err(SignError::Method(request.method.into()));
    }
    if !is_valid_path(request.path) {
        return Err(SignError::Path(request.path.into()));
    }
    if !is_valid_request_id(request_id) {
        return Err(SignError::RequestId(request_id.into()));
    }
    let canonical = canonical_string(request.method, request.path, timestamp, request_id, caller, request.body);
    Ok(SignedHeaders {
        caller: caller.clone(),
        timestamp,
        request_id: request_id.into(),
        signature: format!("{SIGNATURE_PREFIX}{}", hmac_hex(key, canonical.as_bytes())),
        key_version,
    })
}
