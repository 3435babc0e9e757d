//! HMAC-SHA256 signing and verification of bridge requests.
//!
//! # Signed request (`v1`)
//!
//! The signature is `hex(HMAC-SHA256(secret, canonical))` where `canonical` is
//!
//! ```text
//! METHOD\nPATH\nTIMESTAMP\nREQUEST-ID\nhex(SHA-256(body))
//! ```
//!
//! - `METHOD` upper-cased (`POST`); `PATH` exactly as sent, query string included;
//! - `TIMESTAMP` unix seconds (decimal), `REQUEST-ID` a unique id per request;
//! - hex is lowercase.
//!
//! Headers:
//!
//! | header | value |
//! |---|---|
//! | `X-Bridge-Caller` | the caller, canonical `code@tag` |
//! | `X-Bridge-Timestamp` | `TIMESTAMP` |
//! | `X-Bridge-Request-Id` | `REQUEST-ID`: 1–128 of `A-Z a-z 0-9 . _ ~ : -` |
//! | `X-Bridge-Signature` | `v1=<64 hex digits>` |
//! | `X-Bridge-Key-Version` | optional: version of the secret used (a hint only) |
//! | `X-Razy-Signature` | optional: `hex(HMAC-SHA256(secret, body))`, the older body-only scheme |
//!
//! The caller is not inside the HMAC: each grant has its own secret, so the secret
//! already binds the caller to the grant, and the allowlist check binds it to
//! commands. The caller is still part of the replay key.
//!
//! # Verification
//!
//! [`verify_request`] checks, in order: headers present and well-formed, timestamp
//! within [`TIMESTAMP_TOLERANCE`] of now (either direction, inclusive), the signature
//! against every still-valid secret in constant time (and `X-Razy-Signature` when
//! sent), then records (caller, request id) in the [`ReplayCache`] so the same
//! request is refused a second time. Authorisation by the allowlist is
//! [`authorize`]; [`verify_and_authorize`] does both. The replay cache is only written
//! after the signature checks out, so unauthenticated traffic cannot fill it.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::allowlist::{self, Allowlist, DenyReason};
use crate::identifier::Identifier;
use crate::secret::SecretKey;
// Defined with the key material it points to; re-exported so this path stays.
pub use crate::secret::VerificationKey;

type HmacSha256 = Hmac<Sha256>;

/// Header naming the caller.
pub const HEADER_CALLER: &str = "X-Bridge-Caller";
/// Header with the unix timestamp the request was signed at.
pub const HEADER_TIMESTAMP: &str = "X-Bridge-Timestamp";
/// Header with the request's unique id.
pub const HEADER_REQUEST_ID: &str = "X-Bridge-Request-Id";
/// Header with the `v1=<hex>` signature.
pub const HEADER_SIGNATURE: &str = "X-Bridge-Signature";
/// Optional header with the version of the secret used.
pub const HEADER_KEY_VERSION: &str = "X-Bridge-Key-Version";
/// Optional header with the body-only signature.
pub const HEADER_RAZY_SIGNATURE: &str = "X-Razy-Signature";

/// How far a request's timestamp may be from the verifier's clock, either way.
pub const TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(300);

/// Longest request id.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Default bound of a [`ReplayCache`].
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

const SIGNATURE_PREFIX: &str = "v1=";

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

/// The headers a signer adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `X-Bridge-Caller`.
    pub caller: Identifier,
    /// `X-Bridge-Timestamp`.
    pub timestamp: i64,
    /// `X-Bridge-Request-Id`.
    pub request_id: String,
    /// `X-Bridge-Signature`, including `v1=`.
    pub signature: String,
    /// `X-Bridge-Key-Version`.
    pub key_version: Option<i64>,
    /// `X-Razy-Signature`.
    pub razy_signature: String,
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
        pairs.push((HEADER_RAZY_SIGNATURE, self.razy_signature.clone()));
        pairs
    }
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
            VerifyError::Revoked(_) => "Revoked",
        }
    }

    /// The HTTP status a bridge endpoint should answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            VerifyError::MissingHeader(_) | VerifyError::MalformedHeader { .. } => 400,
            VerifyError::StaleTimestamp { .. } | VerifyError::BadSignature | VerifyError::Replayed { .. } => 401,
            VerifyError::UnknownCaller(_) | VerifyError::CommandNotAllowed(_) | VerifyError::Revoked(_) => 403,
            VerifyError::ReplayCacheFull { .. } => 503,
        }
    }
}

impl From<allowlist::Denied> for VerifyError {
    fn from(denied: allowlist::Denied) -> Self {
        match denied.reason {
            reason @ DenyReason::UnknownCaller { .. } => VerifyError::UnknownCaller(reason),
            reason @ DenyReason::Revoked { .. } => VerifyError::Revoked(reason),
            reason => VerifyError::CommandNotAllowed(reason),
        }
    }
}

/// `hex(SHA-256(body))`.
pub fn body_digest(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The string the `v1` signature covers.
pub fn canonical_string(method: &str, path: &str, timestamp: i64, request_id: &str, body: &[u8]) -> String {
    format!("{}\n{path}\n{timestamp}\n{request_id}\n{}", method.to_ascii_uppercase(), body_digest(body))
}

fn mac(key: &SecretKey, data: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail; the fallback keeps it panic-free.
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).unwrap_or_else(|_| HmacSha256::new(&Default::default()));
    mac.update(data);
    mac
}

/// `hex(HMAC-SHA256(key, data))`.
pub fn hmac_hex(key: &SecretKey, data: &[u8]) -> String {
    hex::encode(mac(key, data).finalize().into_bytes())
}

/// The body-only `X-Razy-Signature` value: `hex(HMAC-SHA256(key, body))`.
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
    let canonical = canonical_string(request.method, request.path, timestamp, request_id, request.body);
    Ok(SignedHeaders {
        caller: caller.clone(),
        timestamp,
        request_id: request_id.into(),
        signature: format!("{SIGNATURE_PREFIX}{}", hmac_hex(key, canonical.as_bytes())),
        key_version,
        razy_signature: razy_signature(key, request.body),
    })
}

/// Received headers, looked up case-insensitively. A header sent twice is refused
/// rather than guessed at.
#[derive(Clone, Debug, Default)]
pub struct Headers(Vec<(String, String)>);

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

    fn require(&self, name: &'static str) -> Result<&str, VerifyError> {
        self.get(name)?.ok_or(VerifyError::MissingHeader(name))
    }
}

/// A request that passed [`verify_request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The authenticated caller.
    pub caller: Identifier,
    /// Its request id.
    pub request_id: String,
    /// Its timestamp.
    pub timestamp: i64,
    /// Version of the secret that matched, when known.
    pub key_version: Option<i64>,
}

fn malformed(name: &'static str, reason: impl Into<String>) -> VerifyError {
    VerifyError::MalformedHeader { name, reason: reason.into() }
}

/// Authenticates a request: headers, timestamp, signature against any of `keys`, replay.
///
/// `now` is unix seconds. `keys` are the secrets valid now (see
/// `BridgeSecret::valid_keys`). Records the request in `replay` on success only.
pub fn verify_request(
    request: RequestParts<'_>,
    headers: &Headers,
    keys: &[VerificationKey<'_>],
    replay: &mut ReplayCache,
    now: i64,
) -> Result<Verified, VerifyError> {
    let caller_text = headers.require(HEADER_CALLER)?;
    let timestamp_text = headers.require(HEADER_TIMESTAMP)?;
    let request_id = headers.require(HEADER_REQUEST_ID)?;
    let signature_text = headers.require(HEADER_SIGNATURE)?;
    let version_text = headers.get(HEADER_KEY_VERSION)?;
    let razy_text = headers.get(HEADER_RAZY_SIGNATURE)?;

    let caller = Identifier::parse(caller_text).map_err(|e| malformed(HEADER_CALLER, e.to_string()))?;
    if timestamp_text.is_empty() || !timestamp_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(HEADER_TIMESTAMP, "expected unix seconds"));
    }
    let timestamp: i64 = timestamp_text.parse().map_err(|_| malformed(HEADER_TIMESTAMP, "out of range"))?;
    if !is_valid_request_id(request_id) {
        return Err(malformed(HEADER_REQUEST_ID, "expected 1-128 of A-Z a-z 0-9 . _ ~ : -"));
    }
    let signature = signature_text
        .strip_prefix(SIGNATURE_PREFIX)
        .and_then(|hex_text| hex::decode(hex_text).ok())
        .filter(|bytes| bytes.len() == 32)
        .ok_or_else(|| malformed(HEADER_SIGNATURE, "expected v1=<64 hex digits>"))?;
    let version_hint = version_text
        .map(|v| v.parse::<i64>().map_err(|_| malformed(HEADER_KEY_VERSION, "expected a decimal version")))
        .transpose()?;
    let razy = razy_text
        .map(|v| {
            hex::decode(v)
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| malformed(HEADER_RAZY_SIGNATURE, "expected 64 hex digits"))
        })
        .transpose()?;

    let skew = now.abs_diff(timestamp);
    if skew > TIMESTAMP_TOLERANCE.as_secs() {
        return Err(VerifyError::StaleTimestamp {
            timestamp,
            skew_secs: skew,
            tolerance_secs: TIMESTAMP_TOLERANCE.as_secs(),
        });
    }

    let canonical = canonical_string(request.method, request.path, timestamp, request_id, request.body);
    // The version header only orders the attempts; every valid key is tried, so a
    // wrong hint costs time, never correctness.
    let mut ordered: Vec<&VerificationKey<'_>> = keys.iter().collect();
    ordered.sort_by_key(|k| version_hint.is_none() || k.version != version_hint);
    let matched = ordered
        .into_iter()
        .find(|k| {
            mac(k.key, canonical.as_bytes()).verify_slice(&signature).is_ok()
                && razy.as_ref().is_none_or(|r| mac(k.key, request.body).verify_slice(r).is_ok())
        })
        .ok_or(VerifyError::BadSignature)?;

    replay.check_and_insert(&caller, request_id, timestamp, now)?;
    Ok(Verified { caller, request_id: request_id.into(), timestamp, key_version: matched.version })
}

/// Checks the allowlist for a verified request: may its caller run the command the path names?
pub fn authorize(allowlist: &Allowlist, verified: &Verified, path: &str) -> Result<(), VerifyError> {
    let command = allowlist.command_for_path(path).unwrap_or_default();
    allowlist::is_allowed(allowlist, &verified.caller, command)?;
    Ok(())
}

/// What the target's bridge endpoint does: find the caller's secrets, authenticate,
/// then authorise against the allowlist.
///
/// `keys_for` returns the secrets valid now for a caller (those of the grants whose
/// `from` matches it); a caller the allowlist does not name is an `UnknownCaller`, or
/// `Revoked` when its permission was withdrawn (it may no longer have a secret to check).
pub fn verify_and_authorize<'k>(
    request: RequestParts<'_>,
    headers: &Headers,
    allowlist: &Allowlist,
    keys_for: impl FnOnce(&Identifier) -> Vec<VerificationKey<'k>>,
    replay: &mut ReplayCache,
    now: i64,
) -> Result<Verified, VerifyError> {
    let claimed = headers.require(HEADER_CALLER)?;
    let claimed = Identifier::parse(claimed).map_err(|e| malformed(HEADER_CALLER, e.to_string()))?;
    if allowlist.commands_for(&claimed).is_none() {
        let command = allowlist.command_for_path(request.path).unwrap_or_default();
        return Err(match allowlist.revocation_for(&claimed, command) {
            Some(entry) => VerifyError::Revoked(DenyReason::Revoked {
                caller: claimed.to_string(),
                command: command.into(),
                target: allowlist.target.to_string(),
                revoked_at: entry.revoked_at.to_string(),
            }),
            None => VerifyError::UnknownCaller(DenyReason::UnknownCaller {
                caller: claimed.to_string(),
                target: allowlist.target.to_string(),
            }),
        });
    }
    let keys = keys_for(&claimed);
    let verified = verify_request(request, headers, &keys, replay, now)?;
    authorize(allowlist, &verified, request.path)?;
    Ok(verified)
}

/// Remembers (caller, request id) pairs for as long as a request carrying them could
/// still pass the timestamp check, so each signed request is accepted once.
///
/// Entries are keyed by the request's own timestamp and forgotten once
/// `now - timestamp > tolerance`: after that a replay is refused as stale anyway.
/// At most `capacity` entries are kept; when full, new requests are refused
/// ([`VerifyError::ReplayCacheFull`]) rather than forgetting entries early. Pure:
/// the time is always passed in.
#[derive(Clone, Debug)]
pub struct ReplayCache {
    capacity: usize,
    tolerance: u64,
    seen: HashSet<(String, String)>,
    by_time: BTreeSet<(i64, String, String)>,
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::new(DEFAULT_REPLAY_CAPACITY)
    }
}

impl ReplayCache {
    /// An empty cache holding at most `capacity` entries, for [`TIMESTAMP_TOLERANCE`].
    pub fn new(capacity: usize) -> Self {
        Self { capacity, tolerance: TIMESTAMP_TOLERANCE.as_secs(), seen: HashSet::new(), by_time: BTreeSet::new() }
    }

    /// Number of remembered requests.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Forgets requests whose timestamp is outside the window at `now`.
    pub fn prune(&mut self, now: i64) {
        let tolerance = i64::try_from(self.tolerance).unwrap_or(i64::MAX);
        while let Some(first) = self.by_time.first() {
            if now.saturating_sub(first.0) <= tolerance {
                break;
            }
            if let Some((_, caller, id)) = self.by_time.pop_first() {
                self.seen.remove(&(caller, id));
            }
        }
    }

    /// Refuses a pair already seen, otherwise remembers it.
    pub fn check_and_insert(
        &mut self,
        caller: &Identifier,
        request_id: &str,
        timestamp: i64,
        now: i64,
    ) -> Result<(), VerifyError> {
        self.prune(now);
        let key = (caller.to_string(), request_id.to_string());
        if self.seen.contains(&key) {
            return Err(VerifyError::Replayed { caller: key.0, request_id: key.1 });
        }
        if self.seen.len() >= self.capacity {
            return Err(VerifyError::ReplayCacheFull { capacity: self.capacity });
        }
        self.by_time.insert((timestamp, key.0.clone(), key.1.clone()));
        self.seen.insert(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::BridgeSecret;
    use jiff::Timestamp;

    const KEY_TEXT: &str = "k3y-for-known-answer-tests-0123456789abcdef";
    const OTHER_KEY_TEXT: &str = "another-secret-that-is-long-enough-0123456789";
    const T0: i64 = 1_700_000_000;
    const PATH: &str = "/api/v1/bridge/orders.sync";
    const BODY: &[u8] = br#"{"order":42}"#;

    fn key() -> SecretKey {
        SecretKey::from_text(KEY_TEXT).unwrap()
    }

    fn other_key() -> SecretKey {
        SecretKey::from_text(OTHER_KEY_TEXT).unwrap()
    }

    fn caller() -> Identifier {
        Identifier::parse("shop@prod").unwrap()
    }

    fn request(body: &[u8]) -> RequestParts<'_> {
        RequestParts { method: "POST", path: PATH, body }
    }

    fn signed_with(key: &SecretKey, request_id: &str) -> Vec<(String, String)> {
        let headers = sign(key, Some(1), &caller(), request(BODY), T0, request_id).unwrap();
        headers.to_pairs().into_iter().map(|(n, v)| (n.to_string(), v)).collect()
    }

    fn signed() -> Vec<(String, String)> {
        signed_with(&key(), "req-1")
    }

    fn with(mut pairs: Vec<(String, String)>, name: &str, value: Option<&str>) -> Headers {
        pairs.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if let Some(value) = value {
            pairs.push((name.to_string(), value.to_string()));
        }
        Headers::from_pairs(pairs)
    }

    fn verify_at(headers: &Headers, body: &[u8], now: i64) -> Result<Verified, VerifyError> {
        let key = key();
        let keys = [VerificationKey { version: Some(1), key: &key }];
        verify_request(request(body), headers, &keys, &mut ReplayCache::default(), now)
    }

    #[test]
    fn known_answer_vectors_match_openssl() {
        // printf '{"order":42}' | openssl dgst -sha256
        assert_eq!(body_digest(BODY), "54985dc3c12fada7a1b1db53cf23d3cbd4bcbe64e1cef95071e2073e2ceff4ed");
        // printf 'POST\n/api/v1/bridge/orders.sync\n1700000000\nreq-1\n<digest>' | openssl dgst -sha256 -hmac "$KEY"
        let canonical = canonical_string("post", PATH, T0, "req-1", BODY);
        assert_eq!(canonical, format!("POST\n{PATH}\n1700000000\nreq-1\n{}", body_digest(BODY)));
        assert_eq!(
            hmac_hex(&key(), canonical.as_bytes()),
            "25098c8d371c27a607d67938b9e7a1dd84816fd416719fe563fc0e0ee87cdd24"
        );
        // printf '{"order":42}' | openssl dgst -sha256 -hmac "$KEY"
        assert_eq!(razy_signature(&key(), BODY), "eb8ca6860032da56f136b2ab863d6fc0ecb2e21f0da1b4b77895e6060ba4e910");
    }

    #[test]
    fn signed_headers_carry_the_documented_names_and_values() {
        let pairs = signed();
        let names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "X-Bridge-Caller",
                "X-Bridge-Timestamp",
                "X-Bridge-Request-Id",
                "X-Bridge-Signature",
                "X-Bridge-Key-Version",
                "X-Razy-Signature"
            ]
        );
        assert_eq!(pairs[0].1, "shop@prod");
        assert_eq!(pairs[1].1, "1700000000");
        assert_eq!(pairs[3].1, "v1=25098c8d371c27a607d67938b9e7a1dd84816fd416719fe563fc0e0ee87cdd24");
    }

    #[test]
    fn signed_request_verifies() {
        let verified = verify_at(&Headers::from_pairs(signed()), BODY, T0).unwrap();
        assert_eq!(
            verified,
            Verified { caller: caller(), request_id: "req-1".into(), timestamp: T0, key_version: Some(1) }
        );
    }

    #[test]
    fn header_names_are_case_insensitive_and_optional_ones_may_be_absent() {
        let lower: Vec<(String, String)> = signed().into_iter().map(|(n, v)| (n.to_ascii_lowercase(), v)).collect();
        assert!(verify_at(&Headers::from_pairs(lower), BODY, T0).is_ok());
        let minimal = with(signed(), HEADER_RAZY_SIGNATURE, None);
        let minimal = with(minimal.0, HEADER_KEY_VERSION, None);
        assert!(verify_at(&minimal, BODY, T0).is_ok());
    }

    #[test]
    fn each_missing_header_is_named() {
        for name in [HEADER_CALLER, HEADER_TIMESTAMP, HEADER_REQUEST_ID, HEADER_SIGNATURE] {
            let err = verify_at(&with(signed(), name, None), BODY, T0).unwrap_err();
            assert_eq!(err, VerifyError::MissingHeader(name));
            assert_eq!(err.to_string(), format!("missing header {name}"));
            assert_eq!(err.kind(), "MissingHeader");
        }
    }

    #[test]
    fn malformed_headers_are_refused_before_any_crypto() {
        let sig = "25098c8d371c27a607d67938b9e7a1dd84816fd416719fe563fc0e0ee87cdd24";
        let cases: [(&'static str, String); 11] = [
            (HEADER_CALLER, "shop@*".into()),
            (HEADER_CALLER, "Shop".into()),
            (HEADER_TIMESTAMP, "-1700000000".into()),
            (HEADER_TIMESTAMP, "17e8".into()),
            (HEADER_TIMESTAMP, "99999999999999999999".into()),
            (HEADER_REQUEST_ID, "has space".into()),
            (HEADER_SIGNATURE, sig.into()),
            (HEADER_SIGNATURE, format!("v2={sig}")),
            (HEADER_SIGNATURE, format!("v1={}", &sig[..62])),
            (HEADER_KEY_VERSION, "one".into()),
            (HEADER_RAZY_SIGNATURE, "zz".into()),
        ];
        for (name, value) in cases {
            let err = verify_at(&with(signed(), name, Some(&value)), BODY, T0).unwrap_err();
            assert!(
                matches!(&err, VerifyError::MalformedHeader { name: n, .. } if *n == name),
                "{name}: {value}: {err:?}"
            );
            assert_eq!(err.kind(), "MalformedHeader");
        }
        let mut twice = signed();
        twice.push((HEADER_CALLER.to_ascii_lowercase(), "crm@prod".into()));
        let err = verify_at(&Headers::from_pairs(twice), BODY, T0).unwrap_err();
        assert_eq!(err, VerifyError::MalformedHeader { name: HEADER_CALLER, reason: "sent more than once".into() });
    }

    #[test]
    fn timestamp_tolerance_is_300_seconds_inclusive_both_ways() {
        let headers = Headers::from_pairs(signed());
        assert!(verify_at(&headers, BODY, T0 + 300).is_ok());
        assert!(verify_at(&headers, BODY, T0 - 300).is_ok());
        for now in [T0 + 301, T0 - 301] {
            let err = verify_at(&headers, BODY, now).unwrap_err();
            assert_eq!(err, VerifyError::StaleTimestamp { timestamp: T0, skew_secs: 301, tolerance_secs: 300 });
            assert_eq!(err.kind(), "StaleTimestamp");
        }
    }

    #[test]
    fn any_change_to_a_signed_part_breaks_the_signature() {
        let headers = Headers::from_pairs(signed());
        let key = key();
        let keys = [VerificationKey { version: Some(1), key: &key }];
        let check = |request: RequestParts<'_>, headers: &Headers| {
            verify_request(request, headers, &keys, &mut ReplayCache::default(), T0).unwrap_err()
        };
        assert_eq!(check(request(br#"{"order":43}"#), &headers), VerifyError::BadSignature);
        assert_eq!(check(RequestParts { method: "PUT", path: PATH, body: BODY }, &headers), VerifyError::BadSignature);
        let other_path = RequestParts { method: "POST", path: "/api/v1/bridge/orders.delete", body: BODY };
        assert_eq!(check(other_path, &headers), VerifyError::BadSignature);
        assert_eq!(
            check(request(BODY), &with(signed(), HEADER_TIMESTAMP, Some("1700000001"))),
            VerifyError::BadSignature
        );
        assert_eq!(check(request(BODY), &with(signed(), HEADER_REQUEST_ID, Some("req-2"))), VerifyError::BadSignature);
        // A v1 signature that checks out does not excuse a wrong body-only signature.
        let wrong_razy = razy_signature(&key, b"other");
        assert_eq!(
            check(request(BODY), &with(signed(), HEADER_RAZY_SIGNATURE, Some(&wrong_razy))),
            VerifyError::BadSignature
        );
        // Signed with a secret the verifier does not hold.
        let foreign = Headers::from_pairs(signed_with(&other_key(), "req-1"));
        assert_eq!(check(request(BODY), &foreign), VerifyError::BadSignature);
        assert_eq!(VerifyError::BadSignature.kind(), "BadSignature");
    }

    #[test]
    fn a_request_is_accepted_once() {
        let headers = Headers::from_pairs(signed());
        let key = key();
        let keys = [VerificationKey { version: Some(1), key: &key }];
        let mut replay = ReplayCache::default();
        assert!(verify_request(request(BODY), &headers, &keys, &mut replay, T0).is_ok());
        let err = verify_request(request(BODY), &headers, &keys, &mut replay, T0 + 10).unwrap_err();
        assert_eq!(err, VerifyError::Replayed { caller: "shop@prod".into(), request_id: "req-1".into() });
        assert_eq!(err.kind(), "Replayed");
        // Once out of the window, the replay is refused as stale instead.
        let err = verify_request(request(BODY), &headers, &keys, &mut replay, T0 + 301).unwrap_err();
        assert_eq!(err.kind(), "StaleTimestamp");
    }

    #[test]
    fn failed_verifications_do_not_consume_the_request_id() {
        let key = key();
        let keys = [VerificationKey { version: Some(1), key: &key }];
        let mut replay = ReplayCache::default();
        let headers = Headers::from_pairs(signed());
        let tampered = verify_request(request(b"tampered"), &headers, &keys, &mut replay, T0);
        assert_eq!(tampered.unwrap_err(), VerifyError::BadSignature);
        assert!(replay.is_empty());
        assert!(verify_request(request(BODY), &headers, &keys, &mut replay, T0).is_ok());
    }

    #[test]
    fn replay_cache_forgets_after_the_window_and_keys_by_caller() {
        let mut cache = ReplayCache::new(10);
        let shop = caller();
        let crm = Identifier::parse("crm@prod").unwrap();
        cache.check_and_insert(&shop, "r", T0, T0).unwrap();
        cache.check_and_insert(&crm, "r", T0, T0).unwrap();
        assert!(cache.check_and_insert(&shop, "r", T0, T0 + 300).is_err(), "still inside the window");
        cache.prune(T0 + 301);
        assert!(cache.is_empty());
        // Requests dated in the future are remembered until they are stale too.
        cache.check_and_insert(&shop, "f", T0 + 300, T0).unwrap();
        cache.prune(T0 + 600);
        assert_eq!(cache.len(), 1);
        cache.prune(T0 + 601);
        assert!(cache.is_empty());
    }

    #[test]
    fn full_replay_cache_refuses_instead_of_forgetting_early() {
        let mut cache = ReplayCache::new(2);
        let shop = caller();
        cache.check_and_insert(&shop, "a", T0, T0).unwrap();
        cache.check_and_insert(&shop, "b", T0, T0).unwrap();
        let err = cache.check_and_insert(&shop, "c", T0, T0).unwrap_err();
        assert_eq!(err, VerifyError::ReplayCacheFull { capacity: 2 });
        assert_eq!(cache.check_and_insert(&shop, "a", T0, T0).unwrap_err().kind(), "Replayed");
        cache.check_and_insert(&shop, "c", T0 + 301, T0 + 301).unwrap();
    }

    #[test]
    fn both_secrets_verify_during_the_overlap_and_only_the_new_one_after() {
        let t0: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2025-01-31T00:00:00Z".parse().unwrap();
        let old = BridgeSecret::initial(key(), t0);
        let rotated = old.rotated(other_key(), t1, Duration::from_secs(3600));
        let now = t1.as_second() + 1800;
        let sign_with = |key: &SecretKey, id: &str| {
            let h = sign(key, None, &caller(), request(BODY), now, id).unwrap();
            Headers::from_pairs(h.to_pairs())
        };
        let at = |now_secs: i64| Timestamp::from_second(now_secs).unwrap();
        let mut replay = ReplayCache::default();
        let keys = rotated.valid_keys(at(now));
        let by_new = verify_request(request(BODY), &sign_with(&other_key(), "n1"), &keys, &mut replay, now).unwrap();
        assert_eq!(by_new.key_version, Some(2));
        let by_old = verify_request(request(BODY), &sign_with(&key(), "o1"), &keys, &mut replay, now).unwrap();
        assert_eq!(by_old.key_version, Some(1));

        let after = t1.as_second() + 3600;
        let keys = rotated.valid_keys(at(after));
        let old_signed = sign(&key(), None, &caller(), request(BODY), after, "o2").unwrap();
        let err = verify_request(request(BODY), &Headers::from_pairs(old_signed.to_pairs()), &keys, &mut replay, after);
        assert_eq!(err.unwrap_err(), VerifyError::BadSignature);
        let new_signed = sign(&other_key(), None, &caller(), request(BODY), after, "n2").unwrap();
        assert!(
            verify_request(request(BODY), &Headers::from_pairs(new_signed.to_pairs()), &keys, &mut replay, after)
                .is_ok()
        );
    }

    #[test]
    fn a_wrong_key_version_hint_still_verifies() {
        let signed = sign(&key(), Some(2), &caller(), request(BODY), T0, "r").unwrap();
        let (k1, k2) = (key(), other_key());
        let keys = [VerificationKey { version: Some(2), key: &k2 }, VerificationKey { version: Some(1), key: &k1 }];
        let verified = verify_request(
            request(BODY),
            &Headers::from_pairs(signed.to_pairs()),
            &keys,
            &mut ReplayCache::default(),
            T0,
        );
        assert_eq!(verified.unwrap().key_version, Some(1));
    }

    #[test]
    fn signing_refuses_input_that_would_break_the_canonical_string() {
        let sign_req =
            |method, path, id| sign(&key(), None, &caller(), RequestParts { method, path, body: b"" }, T0, id);
        assert_eq!(sign_req("PO ST", "/p", "r"), Err(SignError::Method("PO ST".into())));
        assert_eq!(sign_req("POST", "/p\nx", "r"), Err(SignError::Path("/p\nx".into())));
        assert_eq!(sign_req("POST", "p", "r"), Err(SignError::Path("p".into())));
        assert_eq!(sign_req("POST", "/p", "r\n1"), Err(SignError::RequestId("r\n1".into())));
        assert_eq!(sign_req("POST", "/p", ""), Err(SignError::RequestId(String::new())));
    }

    #[test]
    fn no_error_reveals_the_secret() {
        let key = key();
        let keys = [VerificationKey { version: Some(1), key: &key }];
        let mut errors: Vec<VerifyError> =
            vec![VerifyError::MissingHeader(HEADER_SIGNATURE), VerifyError::ReplayCacheFull { capacity: 1 }];
        for (name, value) in [
            (HEADER_SIGNATURE, Some("v1=zz")),
            (HEADER_TIMESTAMP, Some("1700000999")),
            (HEADER_REQUEST_ID, Some("other")),
            (HEADER_CALLER, None),
        ] {
            let headers = with(signed(), name, value);
            errors.push(verify_request(request(BODY), &headers, &keys, &mut ReplayCache::default(), T0).unwrap_err());
        }
        let mut replay = ReplayCache::default();
        let headers = Headers::from_pairs(signed());
        verify_request(request(BODY), &headers, &keys, &mut replay, T0).unwrap();
        errors.push(verify_request(request(BODY), &headers, &keys, &mut replay, T0).unwrap_err());
        let kinds: BTreeSet<&str> = errors.iter().map(VerifyError::kind).collect();
        assert!(kinds.len() >= 6, "{kinds:?}");
        for err in &errors {
            for printed in [err.to_string(), format!("{err:?}")] {
                assert!(!printed.contains(KEY_TEXT), "{printed}");
            }
        }
        let sign_err = sign(&key, None, &caller(), RequestParts { method: "", path: "/", body: b"" }, T0, "r");
        assert!(!format!("{sign_err:?}").contains(KEY_TEXT));
        assert!(!format!("{keys:?}").contains(KEY_TEXT));
    }
}
