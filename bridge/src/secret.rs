//! The shared secret of a BridgeGrant, as its Secret's data holds it.
//!
//! # Secret data layout
//!
//! The Secret (the operator names it `<grant>-bridge-secret`) holds one key per field,
//! so the target and the callers can mount single keys as files or environment
//! variables:
//!
//! | key | value |
//! |---|---|
//! | `current` | the secret: [`SECRET_BYTES`] random bytes, base64url without padding (43 characters) |
//! | `current-version` | decimal version, 1 for the first secret, +1 on each rotation |
//! | `current-not-before` | RFC 3339 time the current secret was generated |
//! | `previous` | the secret before the last rotation (absent when none, or after it expired) |
//! | `previous-version` | its version |
//! | `previous-not-after` | RFC 3339 time after which `previous` must be refused |
//!
//! The HMAC key is the secret's text exactly as stored (its ASCII bytes, not the
//! decoded bytes), so any app, or `openssl dgst -sha256 -hmac "$(cat current)"`,
//! can use the mounted value as is.
//!
//! Signers use `current`. Verifiers accept `current`, and `previous` while the time
//! is before `previous-not-after`, so a rotation never breaks a caller that has not
//! reloaded its secret yet, as long as it does so within the overlap.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use subtle::ConstantTimeEq;

/// Random bytes in a generated secret (256 bits).
pub const SECRET_BYTES: usize = 32;
/// Shortest secret accepted anywhere, in bytes of its text.
pub const MIN_SECRET_LEN: usize = 32;

/// Secret data key of the current secret.
pub const KEY_CURRENT: &str = "current";
/// Secret data key of the current secret's version.
pub const KEY_CURRENT_VERSION: &str = "current-version";
/// Secret data key of the time the current secret became valid.
pub const KEY_CURRENT_NOT_BEFORE: &str = "current-not-before";
/// Secret data key of the previous secret.
pub const KEY_PREVIOUS: &str = "previous";
/// Secret data key of the previous secret's version.
pub const KEY_PREVIOUS_VERSION: &str = "previous-version";
/// Secret data key of the time the previous secret stops being valid.
pub const KEY_PREVIOUS_NOT_AFTER: &str = "previous-not-after";

/// A shared secret. Its `Debug` is redacted and it has no `Display`, so it cannot
/// end up in a log line or an error message by accident.
#[derive(Clone)]
pub struct SecretKey(String);

/// Why a secret value is unusable. Never contains the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretKeyError {
    /// Fewer than [`MIN_SECRET_LEN`] bytes.
    #[error("secret is too short: {len} bytes, at least {MIN_SECRET_LEN} required")]
    TooShort { len: usize },
    /// Not printable ASCII (a secret is text so it can be mounted and pasted).
    #[error("secret must be printable ASCII without spaces")]
    NotText,
}

impl SecretKey {
    /// Accepts a secret's text, e.g. a mounted file's content; a trailing newline is ignored.
    pub fn from_text(text: &str) -> Result<Self, SecretKeyError> {
        let text = text.trim_end_matches(['\n', '\r']);
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SecretKeyError::NotText);
        }
        if text.len() < MIN_SECRET_LEN {
            return Err(SecretKeyError::TooShort { len: text.len() });
        }
        Ok(Self(text.to_string()))
    }

    /// The secret made of `bytes` (drawn from a cryptographic random source by the
    /// caller): their base64url encoding without padding, 43 characters.
    pub fn from_random_bytes(bytes: &[u8; SECRET_BYTES]) -> Self {
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The secret's text, for writing it into the Secret. Handle with care.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key: the text's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl Eq for SecretKey {}

/// A secret a verifier accepts, with its version when known.
#[derive(Clone, Copy, Debug)]
pub struct VerificationKey<'a> {
    /// The secret's version, if known.
    pub version: Option<i64>,
    /// The secret.
    pub key: &'a SecretKey,
}

/// The secret signers use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentSecret {
    /// The secret.
    pub key: SecretKey,
    /// Its version.
    pub version: i64,
    /// When it was generated.
    pub not_before: Timestamp,
}

/// The secret before the last rotation, still accepted until `not_after`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviousSecret {
    /// The secret.
    pub key: SecretKey,
    /// Its version.
    pub version: i64,
    /// From this instant on it is refused.
    pub not_after: Timestamp,
}

/// The content of a grant's Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeSecret {
    /// The secret signers use.
    pub current: CurrentSecret,
    /// The secret still accepted during the overlap after a rotation.
    pub previous: Option<PreviousSecret>,
}

/// Why a Secret's data could not be read. Names the key, never a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretDataError {
    /// A required key is absent.
    #[error("secret data lacks key {0:?}")]
    MissingKey(&'static str),
    /// A key's value does not parse.
    #[error("secret data key {key:?} is invalid: {reason}")]
    InvalidValue { key: &'static str, reason: String },
}

/// Drops sub-second precision so stored times read cleanly.
fn whole_seconds(ts: Timestamp) -> Timestamp {
    Timestamp::from_second(ts.as_second()).unwrap_or(ts)
}

impl BridgeSecret {
    /// The first secret of a grant, version 1.
    pub fn initial(key: SecretKey, now: Timestamp) -> Self {
        Self { current: CurrentSecret { key, version: 1, not_before: whole_seconds(now) }, previous: None }
    }

    /// After a rotation: `key` becomes current (next version), the old current becomes
    /// previous, valid until `now + overlap`.
    pub fn rotated(&self, key: SecretKey, now: Timestamp, overlap: Duration) -> Self {
        let now = whole_seconds(now);
        Self {
            current: CurrentSecret { key, version: self.current.version.saturating_add(1), not_before: now },
            previous: Some(PreviousSecret {
                key: self.current.key.clone(),
                version: self.current.version,
                not_after: now.saturating_add(overlap).unwrap_or(Timestamp::MAX),
            }),
        }
    }

    /// Without the previous secret.
    pub fn pruned(&self) -> Self {
        Self { current: self.current.clone(), previous: None }
    }

    /// The secrets a verifier accepts at `now`, current first.
    pub fn valid_keys(&self, now: Timestamp) -> Vec<VerificationKey<'_>> {
        let mut keys = vec![VerificationKey { version: Some(self.current.version), key: &self.current.key }];
        if let Some(previous) = self.previous.as_ref().filter(|p| now < p.not_after) {
            keys.push(VerificationKey { version: Some(previous.version), key: &previous.key });
        }
        keys
    }

    /// Reads the data layout documented on this module through `get` (key → value),
    /// e.g. a Secret's `data` or the files of a mounted Secret. `Ok(None)` when there
    /// is no `current` key at all (a new or emptied Secret).
    pub fn from_lookup<'a>(get: impl Fn(&str) -> Option<&'a [u8]>) -> Result<Option<Self>, SecretDataError> {
        if get(KEY_CURRENT).is_none() {
            return Ok(None);
        }
        let current = CurrentSecret {
            key: key_at(&get, KEY_CURRENT)?,
            version: parse_at(&get, KEY_CURRENT_VERSION)?,
            not_before: parse_at(&get, KEY_CURRENT_NOT_BEFORE)?,
        };
        let previous = match get(KEY_PREVIOUS) {
            None => None,
            Some(_) => Some(PreviousSecret {
                key: key_at(&get, KEY_PREVIOUS)?,
                version: parse_at(&get, KEY_PREVIOUS_VERSION)?,
                not_after: parse_at(&get, KEY_PREVIOUS_NOT_AFTER)?,
            }),
        };
        Ok(Some(Self { current, previous }))
    }

    /// The Secret's data, as `stringData` (every value is text).
    pub fn to_string_data(&self) -> BTreeMap<String, String> {
        let mut data = BTreeMap::from([
            (KEY_CURRENT.to_string(), self.current.key.expose().to_string()),
            (KEY_CURRENT_VERSION.to_string(), self.current.version.to_string()),
            (KEY_CURRENT_NOT_BEFORE.to_string(), self.current.not_before.to_string()),
        ]);
        if let Some(previous) = &self.previous {
            data.insert(KEY_PREVIOUS.into(), previous.key.expose().to_string());
            data.insert(KEY_PREVIOUS_VERSION.into(), previous.version.to_string());
            data.insert(KEY_PREVIOUS_NOT_AFTER.into(), previous.not_after.to_string());
        }
        data
    }
}

fn text_at<'a>(get: &impl Fn(&str) -> Option<&'a [u8]>, key: &'static str) -> Result<&'a str, SecretDataError> {
    let bytes = get(key).ok_or(SecretDataError::MissingKey(key))?;
    std::str::from_utf8(bytes).map_err(|_| SecretDataError::InvalidValue { key, reason: "not UTF-8".into() })
}

fn key_at<'a>(get: &impl Fn(&str) -> Option<&'a [u8]>, key: &'static str) -> Result<SecretKey, SecretDataError> {
    SecretKey::from_text(text_at(get, key)?).map_err(|e| SecretDataError::InvalidValue { key, reason: e.to_string() })
}

fn parse_at<'a, T>(get: &impl Fn(&str) -> Option<&'a [u8]>, key: &'static str) -> Result<T, SecretDataError>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    text_at(get, key)?.trim().parse().map_err(|e: T::Err| SecretDataError::InvalidValue { key, reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_non_text_secrets_are_refused_without_echoing_them() {
        let err = SecretKey::from_text("hunter2-is-a-short-secret").unwrap_err();
        assert_eq!(err, SecretKeyError::TooShort { len: 25 });
        assert!(!err.to_string().contains("hunter2"));
        assert_eq!(SecretKey::from_text(&"a b".repeat(20)).unwrap_err(), SecretKeyError::NotText);
        let with_newline = SecretKey::from_text(&format!("{}\n", "k".repeat(40))).unwrap();
        assert_eq!(with_newline.expose(), "k".repeat(40));
    }
}
