//! The shared secret of a BridgeGrant and when to rotate it.
//!
//! # Secret data layout
//!
//! The Secret (name: [`secret_name`]) holds one key per field, so the target and the
//! callers can mount single keys as files or environment variables:
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
use k8s_openapi::ByteString;
use rand::TryCryptoRng;
use subtle::ConstantTimeEq;

use crate::api::bridge_grant::SecretRotation;
use crate::logic::duration;
use crate::logic::signing::VerificationKey;

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

/// Name of the Secret holding a grant's shared secret: `<grant>-bridge-secret`,
/// shortened with a hash when that would exceed the 253-character name limit.
pub fn secret_name(grant: &str) -> String {
    crate::logic::dns::derived_name(grant, "-bridge-secret")
}

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

/// Generates a secret from `rng`: [`SECRET_BYTES`] random bytes, base64url-encoded.
///
/// Tests pass a seeded `StdRng`; production uses [`generate_secret_from_os`].
pub fn generate_secret<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<SecretKey, R::Error> {
    let mut bytes = [0u8; SECRET_BYTES];
    rng.try_fill_bytes(&mut bytes)?;
    Ok(SecretKey(URL_SAFE_NO_PAD.encode(bytes)))
}

/// Generates a secret straight from the operating system's random source.
pub fn generate_secret_from_os() -> Result<SecretKey, rand::rngs::SysError> {
    generate_secret(&mut rand::rngs::SysRng)
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

/// The rotation settings of a grant, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationPolicy {
    /// How long a secret is current.
    pub interval: Duration,
    /// How long the previous secret stays valid after a rotation.
    pub overlap: Duration,
}

impl RotationPolicy {
    /// Parses the spec's Go-style durations.
    pub fn from_spec(spec: &SecretRotation) -> Result<Self, String> {
        Ok(Self { interval: duration::parse(&spec.rotation_interval)?, overlap: duration::parse(&spec.overlap)? })
    }
}

/// What the controller should do with a grant's Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotationAction {
    /// Nothing to do.
    Keep,
    /// No secret yet: write [`BridgeSecret::initial`].
    Create,
    /// The current secret is due: write [`BridgeSecret::rotated`] with a fresh secret.
    Rotate {
        /// Version the new secret gets.
        new_version: i64,
    },
    /// The previous secret's overlap is over: write [`BridgeSecret::pruned`].
    PruneExpired,
}

fn after(ts: Timestamp, d: Duration) -> Timestamp {
    ts.saturating_add(d).unwrap_or(Timestamp::MAX)
}

/// Drops sub-second precision so stored times read cleanly.
fn whole_seconds(ts: Timestamp) -> Timestamp {
    Timestamp::from_second(ts.as_second()).unwrap_or(ts)
}

/// Decides what to do with a grant's Secret, from its content, the policy and the time.
///
/// A due rotation wins over pruning (rotating replaces the previous secret anyway).
pub fn decide(secret: Option<&BridgeSecret>, policy: &RotationPolicy, now: Timestamp) -> RotationAction {
    let Some(secret) = secret else {
        return RotationAction::Create;
    };
    if now >= secret.next_rotation_at(policy) {
        return RotationAction::Rotate { new_version: secret.current.version.saturating_add(1) };
    }
    if secret.previous.as_ref().is_some_and(|p| now >= p.not_after) {
        return RotationAction::PruneExpired;
    }
    RotationAction::Keep
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
                not_after: after(now, overlap),
            }),
        }
    }

    /// Without the previous secret.
    pub fn pruned(&self) -> Self {
        Self { current: self.current.clone(), previous: None }
    }

    /// When the current secret is due for rotation.
    pub fn next_rotation_at(&self, policy: &RotationPolicy) -> Timestamp {
        after(self.current.not_before, policy.interval)
    }

    /// When [`decide`] will next return something other than `Keep`: requeue then.
    pub fn next_change_at(&self, policy: &RotationPolicy) -> Timestamp {
        let rotation = self.next_rotation_at(policy);
        self.previous.as_ref().map_or(rotation, |p| p.not_after.min(rotation))
    }

    /// The secrets a verifier accepts at `now`, current first.
    pub fn valid_keys(&self, now: Timestamp) -> Vec<VerificationKey<'_>> {
        let mut keys = vec![VerificationKey { version: Some(self.current.version), key: &self.current.key }];
        if let Some(previous) = self.previous.as_ref().filter(|p| now < p.not_after) {
            keys.push(VerificationKey { version: Some(previous.version), key: &previous.key });
        }
        keys
    }

    /// Reads the data layout documented on this module. `Ok(None)` when there is no
    /// `current` key at all (a new or emptied Secret).
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

    /// Reads a Kubernetes Secret's `data`.
    pub fn from_secret_data(data: &BTreeMap<String, ByteString>) -> Result<Option<Self>, SecretDataError> {
        Self::from_lookup(|key| data.get(key).map(|v| v.0.as_slice()))
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

    /// The Secret's data, as `data` (bytes).
    pub fn to_secret_data(&self) -> BTreeMap<String, ByteString> {
        self.to_string_data().into_iter().map(|(k, v)| (k, ByteString(v.into_bytes()))).collect()
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
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const HOUR: Duration = Duration::from_secs(3600);

    fn policy() -> RotationPolicy {
        RotationPolicy::from_spec(&SecretRotation { rotation_interval: "720h".into(), overlap: "1h".into() }).unwrap()
    }

    fn t(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    #[test]
    fn generated_secrets_are_32_random_bytes_in_base64url() {
        let mut rng = rng();
        let a = generate_secret(&mut rng).unwrap();
        let b = generate_secret(&mut rng).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(a.expose()).unwrap().len(), SECRET_BYTES);
        assert_eq!(generate_secret(&mut StdRng::seed_from_u64(7)).unwrap(), a, "seeded RNG is deterministic");
        assert_ne!(generate_secret_from_os().unwrap(), generate_secret_from_os().unwrap());
    }

    #[test]
    fn secrets_are_never_debug_printed() {
        let key = generate_secret(&mut rng()).unwrap();
        let secret = BridgeSecret::initial(key.clone(), t("2025-01-01T00:00:00Z")).rotated(
            generate_secret(&mut rng()).unwrap(),
            t("2025-02-01T00:00:00Z"),
            HOUR,
        );
        for printed in [format!("{key:?}"), format!("{secret:?}"), format!("{:?}", secret.valid_keys(Timestamp::MIN))] {
            assert!(!printed.contains(key.expose()), "{printed}");
            assert!(printed.contains("<redacted>"));
        }
    }

    #[test]
    fn short_or_non_text_secrets_are_refused_without_echoing_them() {
        let err = SecretKey::from_text("hunter2-is-a-short-secret").unwrap_err();
        assert_eq!(err, SecretKeyError::TooShort { len: 25 });
        assert!(!err.to_string().contains("hunter2"));
        assert_eq!(SecretKey::from_text(&"a b".repeat(20)).unwrap_err(), SecretKeyError::NotText);
        let with_newline = SecretKey::from_text(&format!("{}\n", "k".repeat(40))).unwrap();
        assert_eq!(with_newline.expose(), "k".repeat(40));
    }

    #[test]
    fn rotation_timeline() {
        let policy = policy();
        let t0 = t("2025-01-01T00:00:00Z");
        assert_eq!(decide(None, &policy, t0), RotationAction::Create);

        let mut rng = rng();
        let first = BridgeSecret::initial(generate_secret(&mut rng).unwrap(), t0);
        assert_eq!(first.current.version, 1);
        assert_eq!(first.next_change_at(&policy), t("2025-01-31T00:00:00Z"));

        // Before the interval: keep.
        assert_eq!(decide(Some(&first), &policy, t("2025-01-30T23:59:59Z")), RotationAction::Keep);
        // At the interval: rotate.
        let t1 = t("2025-01-31T00:00:00Z");
        assert_eq!(decide(Some(&first), &policy, t1), RotationAction::Rotate { new_version: 2 });

        let second = first.rotated(generate_secret(&mut rng).unwrap(), t1, policy.overlap);
        assert_eq!(second.current.version, 2);
        assert_eq!(second.current.not_before, t1);
        let previous = second.previous.as_ref().unwrap();
        assert_eq!((previous.version, &previous.key), (1, &first.current.key));
        assert_eq!(previous.not_after, t("2025-01-31T01:00:00Z"), "previous kept until now + overlap");
        assert_eq!(second.next_change_at(&policy), previous.not_after);

        // During the overlap: keep both.
        assert_eq!(decide(Some(&second), &policy, t("2025-01-31T00:59:59Z")), RotationAction::Keep);
        // After the overlap: prune the previous one.
        assert_eq!(decide(Some(&second), &policy, previous.not_after), RotationAction::PruneExpired);
        let pruned = second.pruned();
        assert_eq!(pruned.previous, None);
        assert_eq!(pruned.current, second.current);
        assert_eq!(decide(Some(&pruned), &policy, t("2025-02-15T00:00:00Z")), RotationAction::Keep);
        assert_eq!(
            decide(Some(&pruned), &policy, t("2025-03-02T00:00:00Z")),
            RotationAction::Rotate { new_version: 3 }
        );
    }

    #[test]
    fn overdue_rotation_wins_over_pruning() {
        let mut rng = rng();
        let t0 = t("2025-01-01T00:00:00Z");
        let s = BridgeSecret::initial(generate_secret(&mut rng).unwrap(), t0).rotated(
            generate_secret(&mut rng).unwrap(),
            t0,
            HOUR,
        );
        // The operator was down for longer than the interval.
        assert_eq!(decide(Some(&s), &policy(), t("2025-06-01T00:00:00Z")), RotationAction::Rotate { new_version: 3 });
    }

    #[test]
    fn verifiers_accept_previous_only_before_its_not_after() {
        let mut rng = rng();
        let t1 = t("2025-01-31T00:00:00Z");
        let s = BridgeSecret::initial(generate_secret(&mut rng).unwrap(), t("2025-01-01T00:00:00Z")).rotated(
            generate_secret(&mut rng).unwrap(),
            t1,
            HOUR,
        );
        let versions = |now| s.valid_keys(now).iter().map(|k| k.version).collect::<Vec<_>>();
        assert_eq!(versions(t("2025-01-31T00:59:59Z")), [Some(2), Some(1)]);
        assert_eq!(versions(t("2025-01-31T01:00:00Z")), [Some(2)]);
    }

    #[test]
    fn secret_data_round_trips_through_the_documented_keys() {
        let mut rng = rng();
        let s = BridgeSecret::initial(generate_secret(&mut rng).unwrap(), t("2025-01-01T00:00:00.75Z")).rotated(
            generate_secret(&mut rng).unwrap(),
            t("2025-01-31T00:00:00Z"),
            HOUR,
        );
        let data = s.to_string_data();
        assert_eq!(
            data.keys().map(String::as_str).collect::<Vec<_>>(),
            ["current", "current-not-before", "current-version", "previous", "previous-not-after", "previous-version"]
        );
        assert_eq!(data["current-version"], "2");
        assert_eq!(data["current-not-before"], "2025-01-31T00:00:00Z");
        assert_eq!(data["previous-not-after"], "2025-01-31T01:00:00Z");
        assert_eq!(BridgeSecret::from_secret_data(&s.to_secret_data()).unwrap(), Some(s.clone()));
        assert_eq!(BridgeSecret::from_secret_data(&s.pruned().to_secret_data()).unwrap(), Some(s.pruned()));
        assert_eq!(BridgeSecret::from_secret_data(&BTreeMap::new()).unwrap(), None);
    }

    #[test]
    fn broken_secret_data_names_the_key_but_not_the_value() {
        let s = BridgeSecret::initial(generate_secret(&mut rng()).unwrap(), t("2025-01-01T00:00:00Z"));
        let mut data = s.to_secret_data();
        data.remove(KEY_CURRENT_VERSION);
        assert_eq!(BridgeSecret::from_secret_data(&data), Err(SecretDataError::MissingKey("current-version")));
        data.insert(KEY_CURRENT_VERSION.into(), ByteString(b"two".to_vec()));
        let err = BridgeSecret::from_secret_data(&data).unwrap_err();
        assert!(err.to_string().contains("\"current-version\" is invalid"), "{err}");
        data.insert(KEY_CURRENT_VERSION.into(), ByteString(b"1".to_vec()));
        data.insert(KEY_CURRENT.into(), ByteString(b"short-secret".to_vec()));
        let err = BridgeSecret::from_secret_data(&data).unwrap_err();
        assert!(!err.to_string().contains("short-secret"), "{err}");
    }

    #[test]
    fn secret_names_fit_the_name_limit() {
        assert_eq!(secret_name("orders"), "orders-bridge-secret");
        let long = "g".repeat(253);
        let name = secret_name(&long);
        assert_eq!(name.len(), 253);
        assert_ne!(name, secret_name(&format!("{}h", "g".repeat(252))));
    }
}
