//! What a target instance's bridge endpoint does with what is mounted into its pod:
//! the allowlist ConfigMap and the Secrets of the grants that name the target.
//!
//! # Mounted layout
//!
//! One directory (for example `/etc/switchyard-bridge`), typically a projected volume:
//!
//! | path | content |
//! |---|---|
//! | `allowlist.json` | key [`CONFIG_MAP_KEY`] of the target's allowlist ConfigMap |
//! | `secrets/<grant>/<key>` | each key of the Secret of BridgeGrant `<grant>` (`<grant>-bridge-secret`) |
//!
//! ```yaml
//! volumes:
//!   - name: bridge
//!     projected:
//!       sources:
//!         - configMap: {name: bridge-allowlist-billing}
//!         - secret:
//!             name: billing-from-shop-bridge-secret
//!             optional: true          # `previous*` keys exist only during a rotation's overlap
//!             items:
//!               - {key: current, path: secrets/billing-from-shop/current}
//!               - {key: current-version, path: secrets/billing-from-shop/current-version}
//!               - {key: current-not-before, path: secrets/billing-from-shop/current-not-before}
//!               - {key: previous, path: secrets/billing-from-shop/previous}
//!               - {key: previous-version, path: secrets/billing-from-shop/previous-version}
//!               - {key: previous-not-after, path: secrets/billing-from-shop/previous-not-after}
//! ```
//!
//! Read it again for every request (or whenever it changes): the kubelet rewrites
//! mounted ConfigMaps and Secrets in place, so rotations and revocations reach the
//! endpoint without a restart. A request is checked against the secrets of the
//! grants (of its profile) that admit its caller; the grant whose secret verifies it
//! is the grant it comes through, and only that grant's commands and modules count.
//! A Secret directory no grant of the allowlist names is never read: a deleted
//! grant's secret is dead the moment the allowlist drops it.
//!
//! [`MountedBridge::verify`] takes both profiles: `POST /__internal/bridge`
//! ([`crate::razy::RAZY_PATH`]) is `razy`, anything under `bridgePath` is `signed`.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use crate::allowlist::{Allowlist, AllowlistParseError, CONFIG_MAP_KEY, Protocol};
use crate::identifier::Identifier;
use crate::razy::{self, RAZY_PATH};
use crate::secret::{BridgeSecret, KEY_CURRENT, SecretDataError};
use crate::signing::{self, Headers, ReplayCache, RequestParts, VerificationKey, VerifyError};

/// An accepted call, whichever profile it came by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The profile.
    pub protocol: Protocol,
    /// The grant whose secret verified it.
    pub grant: String,
    /// The authenticated caller.
    pub caller: Identifier,
    /// The module, when the call names one.
    pub module: Option<String>,
    /// The command.
    pub command: String,
    /// Version of the secret that matched, when known.
    pub key_version: Option<i64>,
}

/// Directory of the grants' Secrets inside the mount.
pub const SECRETS_DIR: &str = "secrets";

/// Path of `key` of grant `grant`'s Secret inside the mount.
pub fn secret_file(grant: &str, key: &str) -> String {
    format!("{SECRETS_DIR}/{grant}/{key}")
}

/// Why the mount cannot be used at all. The endpoint should answer 503: the pod is
/// not (yet) configured, which is no fault of the caller.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// No allowlist file.
    #[error("no {CONFIG_MAP_KEY} is mounted")]
    MissingAllowlist,
    /// The allowlist file does not parse.
    #[error(transparent)]
    InvalidAllowlist(#[from] AllowlistParseError),
}

impl MountError {
    /// Stable CamelCase kind, like [`VerifyError::kind`].
    pub fn kind(&self) -> &'static str {
        "AllowlistUnavailable"
    }
}

/// A grant whose mounted Secret is unusable: its callers' requests fail as `BadSignature`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountProblem {
    /// The grant.
    pub grant: String,
    /// What is wrong (names a key, never a value).
    pub error: SecretDataError,
}

/// The allowlist and secrets as mounted, ready to check requests.
#[derive(Clone, Debug)]
pub struct MountedBridge {
    /// The target's allowlist.
    pub allowlist: Allowlist,
    secrets: BTreeMap<String, BridgeSecret>,
    /// Grants named by the allowlist whose Secret is missing or unreadable.
    pub problems: Vec<MountProblem>,
}

impl MountedBridge {
    /// Reads the layout documented on this module through `get` (relative path → content).
    pub fn load<'a>(get: impl Fn(&str) -> Option<&'a [u8]>) -> Result<Self, MountError> {
        let json = get(CONFIG_MAP_KEY).ok_or(MountError::MissingAllowlist)?;
        let allowlist = Allowlist::from_json(&String::from_utf8_lossy(json))?;
        let grants: BTreeSet<&str> = allowlist.grants.keys().map(String::as_str).collect();
        let mut secrets = BTreeMap::new();
        let mut problems = Vec::new();
        for grant in grants {
            let lookup = |key: &str| get(&secret_file(grant, key));
            match BridgeSecret::from_lookup(lookup) {
                Ok(Some(secret)) => {
                    secrets.insert(grant.to_string(), secret);
                }
                Ok(None) => {
                    problems.push(MountProblem { grant: grant.into(), error: SecretDataError::MissingKey(KEY_CURRENT) })
                }
                Err(error) => problems.push(MountProblem { grant: grant.into(), error }),
            }
        }
        Ok(Self { allowlist, secrets, problems })
    }

    /// The mounted secret of `grant`, if readable.
    pub fn secret(&self, grant: &str) -> Option<&BridgeSecret> {
        self.secrets.get(grant)
    }

    /// The secrets of `grant` valid at `now`, current first.
    pub fn keys_of(&self, grant: &str, now: Timestamp) -> Vec<VerificationKey<'_>> {
        self.secrets.get(grant).map(|s| s.valid_keys(now)).unwrap_or_default()
    }

    /// The secrets valid at `now` of the grants of `protocol` that admit `caller`.
    pub fn keys_for(&self, caller: &Identifier, protocol: Protocol, now: Timestamp) -> Vec<VerificationKey<'_>> {
        self.allowlist
            .grants_for(caller, protocol)
            .into_iter()
            .flat_map(|(grant, _)| self.keys_of(grant, now))
            .collect()
    }

    /// Authenticates and authorises a request at `now` (unix seconds), recording it in
    /// `replay` on success: `POST /__internal/bridge` as `razy`, else as `signed`.
    pub fn verify(
        &self,
        request: RequestParts<'_>,
        headers: &Headers,
        replay: &mut ReplayCache,
        now: i64,
    ) -> Result<Accepted, VerifyError> {
        let at = Timestamp::from_second(now).unwrap_or(Timestamp::UNIX_EPOCH);
        let keys_of = |grant: &str| self.keys_of(grant, at);
        let path = request.path.split_once('?').map_or(request.path, |(p, _)| p);
        if path == RAZY_PATH && request.method.eq_ignore_ascii_case("POST") {
            let ok = razy::verify_and_authorize(request.body, headers, &self.allowlist, keys_of, replay, now)?;
            return Ok(Accepted {
                protocol: Protocol::Razy,
                grant: ok.grant,
                caller: ok.call.caller,
                module: Some(ok.call.module),
                command: ok.call.command,
                key_version: ok.key_version,
            });
        }
        let ok = signing::verify_and_authorize(request, headers, &self.allowlist, keys_of, replay, now)?;
        Ok(Accepted {
            protocol: Protocol::Signed,
            grant: ok.grant,
            caller: ok.verified.caller,
            module: ok.module,
            command: ok.command,
            key_version: ok.verified.key_version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_readable_allowlist_nothing_is_served() {
        let empty = BTreeMap::<String, Vec<u8>>::new();
        let err = MountedBridge::load(|p| empty.get(p).map(Vec::as_slice)).unwrap_err();
        assert!(matches!(err, MountError::MissingAllowlist));
        let garbage = BTreeMap::from([(CONFIG_MAP_KEY.to_string(), b"{".to_vec())]);
        let err = MountedBridge::load(|p| garbage.get(p).map(Vec::as_slice)).unwrap_err();
        assert_eq!(err.kind(), "AllowlistUnavailable");
    }
}
