//! The shared secret of a BridgeGrant and when to rotate it.
//!
//! The secret, its Secret's data layout and how a verifier reads it are
//! `switchyard_bridge::secret`, re-exported here. This module adds what only the
//! operator does: naming the Secret ([`secret_name`]), generating secrets
//! ([`generate_secret`]), deciding when to rotate ([`decide`]) and converting to and
//! from a Kubernetes Secret's `data` ([`from_secret_data`], [`to_secret_data`]).

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::ByteString;
use rand::TryCryptoRng;

pub use switchyard_bridge::secret::*;

use crate::api::bridge_grant::SecretRotation;
use crate::logic::duration;

/// Name of the Secret holding a grant's shared secret: `<grant>-bridge-secret`,
/// shortened with a hash when that would exceed the 253-character name limit.
pub fn secret_name(grant: &str) -> String {
    crate::logic::dns::derived_name(grant, "-bridge-secret")
}

/// Generates a secret from `rng`: [`SECRET_BYTES`] random bytes, base64url-encoded.
///
/// Tests pass a seeded `StdRng`; production uses [`generate_secret_from_os`].
pub fn generate_secret<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<SecretKey, R::Error> {
    let mut bytes = [0u8; SECRET_BYTES];
    rng.try_fill_bytes(&mut bytes)?;
    Ok(SecretKey::from_random_bytes(&bytes))
}

/// Generates a secret straight from the operating system's random source.
pub fn generate_secret_from_os() -> Result<SecretKey, rand::rngs::SysError> {
    generate_secret(&mut rand::rngs::SysRng)
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

    /// When `secret`'s current secret is due for rotation.
    pub fn next_rotation_at(&self, secret: &BridgeSecret) -> Timestamp {
        secret.current.not_before.saturating_add(self.interval).unwrap_or(Timestamp::MAX)
    }

    /// When [`decide`] will next return something other than `Keep` for `secret`: requeue then.
    pub fn next_change_at(&self, secret: &BridgeSecret) -> Timestamp {
        let rotation = self.next_rotation_at(secret);
        secret.previous.as_ref().map_or(rotation, |p| p.not_after.min(rotation))
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

/// Decides what to do with a grant's Secret, from its content, the policy and the time.
///
/// A due rotation wins over pruning (rotating replaces the previous secret anyway).
pub fn decide(secret: Option<&BridgeSecret>, policy: &RotationPolicy, now: Timestamp) -> RotationAction {
    let Some(secret) = secret else {
        return RotationAction::Create;
    };
    if now >= policy.next_rotation_at(secret) {
        return RotationAction::Rotate { new_version: secret.current.version.saturating_add(1) };
    }
    if secret.previous.as_ref().is_some_and(|p| now >= p.not_after) {
        return RotationAction::PruneExpired;
    }
    RotationAction::Keep
}

/// Reads a Kubernetes Secret's `data` (see [`BridgeSecret::from_lookup`]).
pub fn from_secret_data(data: &BTreeMap<String, ByteString>) -> Result<Option<BridgeSecret>, SecretDataError> {
    BridgeSecret::from_lookup(|key| data.get(key).map(|v| v.0.as_slice()))
}

/// `secret` as a Kubernetes Secret's `data` (bytes).
pub fn to_secret_data(secret: &BridgeSecret) -> BTreeMap<String, ByteString> {
    secret.to_string_data().into_iter().map(|(k, v)| (k, ByteString(v.into_bytes()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
    fn rotation_timeline() {
        let policy = policy();
        let t0 = t("2025-01-01T00:00:00Z");
        assert_eq!(decide(None, &policy, t0), RotationAction::Create);

        let mut rng = rng();
        let first = BridgeSecret::initial(generate_secret(&mut rng).unwrap(), t0);
        assert_eq!(first.current.version, 1);
        assert_eq!(policy.next_change_at(&first), t("2025-01-31T00:00:00Z"));

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
        assert_eq!(policy.next_change_at(&second), previous.not_after);

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
        assert_eq!(from_secret_data(&to_secret_data(&s)).unwrap(), Some(s.clone()));
        assert_eq!(from_secret_data(&to_secret_data(&s.pruned())).unwrap(), Some(s.pruned()));
        assert_eq!(from_secret_data(&BTreeMap::new()).unwrap(), None);
    }

    #[test]
    fn broken_secret_data_names_the_key_but_not_the_value() {
        let s = BridgeSecret::initial(generate_secret(&mut rng()).unwrap(), t("2025-01-01T00:00:00Z"));
        let mut data = to_secret_data(&s);
        data.remove(KEY_CURRENT_VERSION);
        assert_eq!(from_secret_data(&data), Err(SecretDataError::MissingKey("current-version")));
        data.insert(KEY_CURRENT_VERSION.into(), ByteString(b"two".to_vec()));
        let err = from_secret_data(&data).unwrap_err();
        assert!(err.to_string().contains("\"current-version\" is invalid"), "{err}");
        data.insert(KEY_CURRENT_VERSION.into(), ByteString(b"1".to_vec()));
        data.insert(KEY_CURRENT.into(), ByteString(b"short-secret".to_vec()));
        let err = from_secret_data(&data).unwrap_err();
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
