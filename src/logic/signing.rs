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

use crate::logic::allowlist::{self, Allowlist, DenyReason};
use crate::logic::bridge_secret::SecretKey;
use crate::logic::identifier::Identifier;

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

/// A secret a verifier accepts, with its version when known.
#[derive(Clone, Copy, Debug)]
pub struct VerificationKey<'a> {
    /// The secret's version, if known.
    pub version: Option<i64>,
    /// The secret.
    pub key: &'a SecretKey,
}

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
    #[error(
        "timestamp {timestamp} is {skew_secs}s away from now; at most {tolerance_secs}s allowed"
    )]
    StaleTimestamp {
        timestamp: i64,
        skew_secs: u64,
        tolerance_secs: u64,
    },
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
        }
    }

    /// The HTTP status a bridge endpoint should answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            VerifyError::MissingHeader(_) | VerifyError::MalformedHeader { .. } => 400,
            VerifyError::StaleTimestamp { .. }
            | VerifyError::BadSignature
            | VerifyError::Replayed { .. } => 401,
            VerifyError::UnknownCaller(_) | VerifyError::CommandNotAllowed(_) => 403,
            VerifyError::ReplayCacheFull { .. } => 503,
        }
    }
}

impl From<allowlist::Denied> for VerifyError {
    fn from(denied: allowlist::Denied) -> Self {
        match denied.reason {
            reason @ DenyReason::UnknownCaller { .. } => VerifyError::UnknownCaller(reason),
            reason => VerifyError::CommandNotAllowed(reason),
        }
    }
}

/// `hex(SHA-256(body))`.
pub fn body_digest(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The string the `v1` signature covers.
pub fn canonical_string(
    method: &str,
    path: &str,
    timestamp: i64,
    request_id: &str,
    body: &[u8],
) -> String {
    format!(
        "{}\n{path}\n{timestamp}\n{request_id}\n{}",
        method.to_ascii_uppercase(),
        body_digest(body)
    )
}

fn mac(key: &SecretKey, data: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail; the fallback keeps it panic-free.
    let mut mac = HmacSha256::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| HmacSha256::new(&Default::default()));
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
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b':' | b'-'))
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
    let canonical = canonical_string(
        request.method,
        request.path,
        timestamp,
        request_id,
        request.body,
    );
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
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        )
    }

    /// The value of `name`, `None` if absent; an error if it was sent more than once.
    pub fn get(&self, name: &'static str) -> Result<Option<&str>, VerifyError> {
        let mut values = self
            .0
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim());
        let first = values.next();
        if values.next().is_some() {
            return Err(VerifyError::MalformedHeader {
                name,
                reason: "sent more than once".into(),
            });
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
    VerifyError::MalformedHeader {
        name,
        reason: reason.into(),
    }
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

    let caller =
        Identifier::parse(caller_text).map_err(|e| malformed(HEADER_CALLER, e.to_string()))?;
    if timestamp_text.is_empty() || !timestamp_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(HEADER_TIMESTAMP, "expected unix seconds"));
    }
    let timestamp: i64 = timestamp_text
        .parse()
        .map_err(|_| malformed(HEADER_TIMESTAMP, "out of range"))?;
    if !is_valid_request_id(request_id) {
        return Err(malformed(
            HEADER_REQUEST_ID,
            "expected 1-128 of A-Z a-z 0-9 . _ ~ : -",
        ));
    }
    let signature = signature_text
        .strip_prefix(SIGNATURE_PREFIX)
        .and_then(|hex_text| hex::decode(hex_text).ok())
        .filter(|bytes| bytes.len() == 32)
        .ok_or_else(|| malformed(HEADER_SIGNATURE, "expected v1=<64 hex digits>"))?;
    let version_hint = version_text
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| malformed(HEADER_KEY_VERSION, "expected a decimal version"))
        })
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

    let canonical = canonical_string(
        request.method,
        request.path,
        timestamp,
        request_id,
        request.body,
    );
    // The version header only orders the attempts; every valid key is tried, so a
    // wrong hint costs time, never correctness.
    let mut ordered: Vec<&VerificationKey<'_>> = keys.iter().collect();
    ordered.sort_by_key(|k| version_hint.is_none() || k.version != version_hint);
    let matched = ordered
        .into_iter()
        .find(|k| {
            mac(k.key, canonical.as_bytes())
                .verify_slice(&signature)
                .is_ok()
                && razy
                    .as_ref()
                    .is_none_or(|r| mac(k.key, request.body).verify_slice(r).is_ok())
        })
        .ok_or(VerifyError::BadSignature)?;

    replay.check_and_insert(&caller, request_id, timestamp, now)?;
    Ok(Verified {
        caller,
        request_id: request_id.into(),
        timestamp,
        key_version: matched.version,
    })
}

/// Checks the allowlist for a verified request: may its caller run the command the path names?
pub fn authorize(
    allowlist: &Allowlist,
    verified: &Verified,
    path: &str,
) -> Result<(), VerifyError> {
    let command = allowlist.command_for_path(path).unwrap_or_default();
    allowlist::is_allowed(allowlist, &verified.caller, command)?;
    Ok(())
}

/// What the target's bridge endpoint does: find the caller's secrets, authenticate,
/// then authorise against the allowlist.
///
/// `keys_for` returns the secrets valid now for a caller (those of the grants whose
/// `from` matches it); a caller with none is an `UnknownCaller`.
pub fn verify_and_authorize<'k>(
    request: RequestParts<'_>,
    headers: &Headers,
    allowlist: &Allowlist,
    keys_for: impl FnOnce(&Identifier) -> Vec<VerificationKey<'k>>,
    replay: &mut ReplayCache,
    now: i64,
) -> Result<Verified, VerifyError> {
    let claimed = headers.require(HEADER_CALLER)?;
    let claimed =
        Identifier::parse(claimed).map_err(|e| malformed(HEADER_CALLER, e.to_string()))?;
    if allowlist.commands_for(&claimed).is_none() {
        return Err(VerifyError::UnknownCaller(DenyReason::UnknownCaller {
            caller: claimed.to_string(),
            target: allowlist.target.to_string(),
        }));
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
        Self {
            capacity,
            tolerance: TIMESTAMP_TOLERANCE.as_secs(),
            seen: HashSet::new(),
            by_time: BTreeSet::new(),
        }
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
            return Err(VerifyError::Replayed {
                caller: key.0,
                request_id: key.1,
            });
        }
        if self.seen.len() >= self.capacity {
            return Err(VerifyError::ReplayCacheFull {
                capacity: self.capacity,
            });
        }
        self.by_time
            .insert((timestamp, key.0.clone(), key.1.clone()));
        self.seen.insert(key);
        Ok(())
    }
}
