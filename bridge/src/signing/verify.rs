//! Verification of a received request: [`verify_request`] authenticates it,
//! [`authorize`] checks it against the allowlist, [`verify_and_authorize`] does both.

use hmac::Mac;

use super::canonical::{RequestParts, canonical_string, is_valid_request_id, mac};
use super::headers::{
    HEADER_CALLER, HEADER_KEY_VERSION, HEADER_RAZY_SIGNATURE, HEADER_REQUEST_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP,
    Headers, SIGNATURE_PREFIX,
};
use super::replay::{ReplayCache, TIMESTAMP_TOLERANCE};
use super::verify_error::VerifyError;
use crate::allowlist::{self, Allowlist, DenyReason};
use crate::identifier::Identifier;
use crate::secret::VerificationKey;

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
