//! Verification of a received `signed` request: [`verify_request`] authenticates it
//! against a set of keys, [`verify_and_authorize`] finds the grant whose key verifies
//! it and authorises it by that grant alone.

use hmac::Mac;

use super::canonical::{RequestParts, canonical_string, is_valid_request_id, mac};
use super::headers::{
    HEADER_CALLER, HEADER_KEY_VERSION, HEADER_REQUEST_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, Headers, SIGNATURE_PREFIX,
};
use super::replay::{ReplayCache, TIMESTAMP_TOLERANCE};
use super::verify_error::VerifyError;
use crate::allowlist::{Allowlist, Protocol};
use crate::identifier::Identifier;
use crate::secret::VerificationKey;

/// A request that passed [`verify_request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The authenticated caller (covered by the signature).
    pub caller: Identifier,
    /// Its request id.
    pub request_id: String,
    /// Its timestamp.
    pub timestamp: i64,
    /// Version of the secret that matched, when known.
    pub key_version: Option<i64>,
}

/// A request that passed [`verify_and_authorize`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorized {
    /// What the signature proved.
    pub verified: Verified,
    /// The grant whose secret verified the request, and the only one consulted.
    pub grant: String,
    /// The module the path names, if any.
    pub module: Option<String>,
    /// The command the path names.
    pub command: String,
}

fn malformed(name: &'static str, reason: impl Into<String>) -> VerifyError {
    VerifyError::MalformedHeader { name, reason: reason.into() }
}

/// The headers of a `signed` request, parsed.
struct Parsed<'h> {
    caller: Identifier,
    timestamp: i64,
    request_id: &'h str,
    signature: Vec<u8>,
    version_hint: Option<i64>,
}

impl Parsed<'_> {
    /// The string the sender signed, for this request with these headers.
    fn canonical(&self, request: &RequestParts<'_>) -> String {
        canonical_string(request.method, request.path, self.timestamp, self.request_id, &self.caller, request.body)
    }
}

fn parse(headers: &Headers) -> Result<Parsed<'_>, VerifyError> {
    let caller_text = headers.require(HEADER_CALLER)?;
    let timestamp_text = headers.require(HEADER_TIMESTAMP)?;
    let request_id = headers.require(HEADER_REQUEST_ID)?;
    let signature_text = headers.require(HEADER_SIGNATURE)?;
    let version_text = headers.get(HEADER_KEY_VERSION)?;

    let caller = Identifier::parse(caller_text).map_err(|e| malformed(HEADER_CALLER, e.to_string()))?;
    if timestamp_text.is_empty() || !timestamp_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(HEADER_TIMESTAMP, "expected unix seconds"));
    }
    let timestamp: i64 = timestamp_text.parse().map_err(|_| malformed(HEADER_TIMESTAMP, "out of range"))?;
    if !is_valid_request_id(request_id) {
        return Err(malformed(HEADER_REQUEST_ID, "expected 1-128 of A-Z a-z 0-9 . _ ~ : -"));
    }
    if signature_text.starts_with("v1=") {
        return Err(malformed(HEADER_SIGNATURE, "v1 signatures do not cover the caller and are refused; sign with v2"));
    }
    let signature = signature_text
        .strip_prefix(SIGNATURE_PREFIX)
        .and_then(|hex_text| hex::decode(hex_text).ok())
        .filter(|bytes| bytes.len() == 32)
        .ok_or_else(|| malformed(HEADER_SIGNATURE, "expected v2=<64 hex digits>"))?;
    let version_hint = version_text
        .map(|v| v.parse::<i64>().map_err(|_| malformed(HEADER_KEY_VERSION, "expected a decimal version")))
        .transpose()?;
    Ok(Parsed { caller, timestamp, request_id, signature, version_hint })
}

fn check_fresh(timestamp: i64, now: i64) -> Result<(), VerifyError> {
    let skew = now.abs_diff(timestamp);
    if skew > TIMESTAMP_TOLERANCE.as_secs() {
        return Err(VerifyError::StaleTimestamp {
            timestamp,
            skew_secs: skew,
            tolerance_secs: TIMESTAMP_TOLERANCE.as_secs(),
        });
    }
    Ok(())
}

/// The first of `keys` (tried in the order the version hint suggests) whose MAC of
/// `canonical` is `signature`, compared in constant time.
fn matching<'a, 'k>(
    keys: &'a [VerificationKey<'k>],
    hint: Option<i64>,
    canonical: &str,
    signature: &[u8],
) -> Option<&'a VerificationKey<'k>> {
    // The version header only orders the attempts; every valid key is tried, so a
    // wrong hint costs time, never correctness.
    let mut ordered: Vec<&VerificationKey<'_>> = keys.iter().collect();
    ordered.sort_by_key(|k| hint.is_none() || k.version != hint);
    ordered.into_iter().find(|k| mac(k.key, canonical.as_bytes()).verify_slice(signature).is_ok())
}

/// Authenticates a request: headers, timestamp, signature against any of `keys`, replay.
///
/// `now` is unix seconds. `keys` are the secrets valid now (see
/// `BridgeSecret::valid_keys`). Records (caller, request id) in `replay` on success only.
pub fn verify_request(
    request: RequestParts<'_>,
    headers: &Headers,
    keys: &[VerificationKey<'_>],
    replay: &mut ReplayCache,
    now: i64,
) -> Result<Verified, VerifyError> {
    let parsed = parse(headers)?;
    check_fresh(parsed.timestamp, now)?;
    let canonical = parsed.canonical(&request);
    let matched =
        matching(keys, parsed.version_hint, &canonical, &parsed.signature).ok_or(VerifyError::BadSignature)?;
    replay.check_and_insert(&parsed.caller, parsed.request_id, parsed.timestamp, now)?;
    Ok(Verified {
        caller: parsed.caller,
        request_id: parsed.request_id.into(),
        timestamp: parsed.timestamp,
        key_version: matched.version,
    })
}

/// What the target's bridge endpoint does with a `signed` request: the grants of
/// protocol `signed` that admit the claimed caller are the candidates; the one whose
/// secret (`keys_of(grant)`, valid now) verifies the signature is the grant the
/// request comes through, and it alone decides whether the path's module and
/// command are allowed. The caller is inside the signature, so claiming another
/// caller breaks it; the replay key is the verified (caller, request id).
pub fn verify_and_authorize<'k>(
    request: RequestParts<'_>,
    headers: &Headers,
    allowlist: &Allowlist,
    keys_of: impl Fn(&str) -> Vec<VerificationKey<'k>>,
    replay: &mut ReplayCache,
    now: i64,
) -> Result<Authorized, VerifyError> {
    let parsed = parse(headers)?;
    let (module, command) = allowlist.module_command_for_path(request.path).unwrap_or((None, ""));
    let candidates: Vec<&str> =
        allowlist.grants_for(&parsed.caller, Protocol::Signed).into_iter().map(|(name, _)| name).collect();
    if candidates.is_empty() {
        return Err(allowlist.unknown_caller(&parsed.caller, command).into());
    }
    check_fresh(parsed.timestamp, now)?;
    let canonical = parsed.canonical(&request);
    let (grant, key_version) = candidates
        .into_iter()
        .find_map(|grant| {
            let keys = keys_of(grant);
            let matched = matching(&keys, parsed.version_hint, &canonical, &parsed.signature)?;
            Some((grant, matched.version))
        })
        .ok_or(VerifyError::BadSignature)?;
    replay.check_and_insert(&parsed.caller, parsed.request_id, parsed.timestamp, now)?;
    let entry = allowlist.grants.get(grant).ok_or(VerifyError::BadSignature)?;
    allowlist.authorize_grant(entry, &parsed.caller, module, command)?;
    Ok(Authorized {
        verified: Verified {
            caller: parsed.caller,
            request_id: parsed.request_id.into(),
            timestamp: parsed.timestamp,
            key_version,
        },
        grant: grant.into(),
        module: module.map(str::to_string),
        command: command.into(),
    })
}
