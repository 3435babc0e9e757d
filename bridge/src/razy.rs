//! The `razy` profile: the cross-distributor design's wire, as the design wrote it.
//!
//! ```text
//! POST /__internal/bridge
//! Content-Type: application/json
//! X-Razy-Signature: <hex(HMAC-SHA256(secret, raw body))>
//!
//! {"caller_dist":"shop@prod","module":"acme/stock","command":"getData","args":{"sku":"A-1"}}
//! ```
//!
//! - the caller is `caller_dist` (`code`, `code@tag`; `code` means `code@default`),
//!   inside the signed body, so it cannot be changed without the secret;
//! - `module` is `vendor/module`, `command` a name such as `getData`
//!   (`crate::allowlist::is_valid_module`, `is_valid_command`); `args` any JSON
//!   (`null` when absent);
//! - the key is the secret of a grant with `protocol: razy` admitting the caller;
//!   the grant whose key verifies decides, alone, whether module and command are allowed.
//!
//! # Replay: what the design allows
//!
//! The design signs the body and nothing else: no timestamp, no nonce, no target.
//! A verifier cannot tell a replay from a repeated call, so all it can do is refuse
//! a byte-identical body (same signature) through the same grant for the grant's
//! `replayWindowSeconds` (default 300, 0 turns it off). That stops an immediate
//! replay; it does not stop one after the window, and it refuses a caller's
//! legitimate identical call within the window (`Replayed`, 401) — a caller that
//! repeats calls must make them differ, which the design does not ask of it. A
//! nonce or timestamp inside `args` would be a private convention, not the design,
//! and this verifier does not look for one. Where replay matters, use `signed`.
//! Since each grant has its own secret and names one target, a body captured at one
//! target does not verify at another.

use hmac::Mac;
use serde_json::Value;

use crate::allowlist::{Allowlist, Protocol, is_valid_command, is_valid_module};
use crate::identifier::Identifier;
use crate::secret::{SecretKey, VerificationKey};
use crate::signing::{HEADER_RAZY_SIGNATURE, Headers, ReplayCache, VerifyError, hmac_hex};

/// The design's endpoint path.
pub const RAZY_PATH: &str = "/__internal/bridge";

/// Default `replayWindowSeconds` of a `razy` grant.
pub const DEFAULT_REPLAY_WINDOW_SECS: u64 = 300;

/// The design's body.
#[derive(Clone, Debug, PartialEq)]
pub struct RazyCall {
    /// `caller_dist`.
    pub caller: Identifier,
    /// `module`, `vendor/module`.
    pub module: String,
    /// `command`.
    pub command: String,
    /// `args`.
    pub args: Value,
}

/// A `razy` request that passed [`verify_and_authorize`].
#[derive(Clone, Debug, PartialEq)]
pub struct RazyAuthorized {
    /// The body's call.
    pub call: RazyCall,
    /// The grant whose secret verified it.
    pub grant: String,
    /// Version of the secret that matched, when known.
    pub key_version: Option<i64>,
}

/// Why a call could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RazySignError {
    /// Not `vendor/module`.
    #[error("module {0:?} is not vendor/module")]
    Module(String),
    /// Not a command name.
    #[error("command {0:?} is not a command name")]
    Command(String),
    /// `args` is not JSON.
    #[error("args are not JSON: {0}")]
    Args(String),
}

fn malformed(reason: impl Into<String>) -> VerifyError {
    VerifyError::MalformedBody(reason.into())
}

/// Reads the design's body.
pub fn parse_body(body: &[u8]) -> Result<RazyCall, VerifyError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| malformed(format!("not JSON: {e}")))?;
    let object = value.as_object().ok_or_else(|| malformed("expected a JSON object"))?;
    let text = |field: &str| {
        object.get(field).and_then(Value::as_str).ok_or_else(|| malformed(format!("{field} must be a string")))
    };
    let caller = Identifier::parse(text("caller_dist")?).map_err(|e| malformed(format!("caller_dist: {e}")))?;
    let module = text("module")?;
    if !is_valid_module(module) {
        return Err(malformed(format!("module {module:?} is not vendor/module")));
    }
    let command = text("command")?;
    if !is_valid_command(command) {
        return Err(malformed(format!("command {command:?} is not a command name")));
    }
    let args = object.get("args").cloned().unwrap_or(Value::Null);
    Ok(RazyCall { caller, module: module.into(), command: command.into(), args })
}

/// The body a caller sends: the design's four fields in the design's order,
/// `caller_dist` canonical, `args_json` (any JSON text) inserted as written.
pub fn body(caller: &Identifier, module: &str, command: &str, args_json: &str) -> Result<Vec<u8>, RazySignError> {
    if !is_valid_module(module) {
        return Err(RazySignError::Module(module.into()));
    }
    if !is_valid_command(command) {
        return Err(RazySignError::Command(command.into()));
    }
    let args = args_json.trim();
    serde_json::from_str::<Value>(args).map_err(|e| RazySignError::Args(e.to_string()))?;
    // The grammars above leave nothing in these three that JSON would escape.
    Ok(format!(r#"{{"caller_dist":"{caller}","module":"{module}","command":"{command}","args":{args}}}"#).into_bytes())
}

/// `X-Razy-Signature`: `hex(HMAC-SHA256(key, body))`.
pub fn signature(key: &SecretKey, body: &[u8]) -> String {
    hmac_hex(key, body)
}

/// What a target's `POST /__internal/bridge` does: reads the body, finds the `razy`
/// grants admitting `caller_dist`, takes the one whose secret (`keys_of(grant)`)
/// made `X-Razy-Signature`, refuses a body that grant saw within its replay window,
/// and authorises module and command by that grant alone.
pub fn verify_and_authorize<'k>(
    body: &[u8],
    headers: &Headers,
    allowlist: &Allowlist,
    keys_of: impl Fn(&str) -> Vec<VerificationKey<'k>>,
    replay: &mut ReplayCache,
    now: i64,
) -> Result<RazyAuthorized, VerifyError> {
    let signature_text =
        headers.get(HEADER_RAZY_SIGNATURE)?.ok_or(VerifyError::MissingHeader(HEADER_RAZY_SIGNATURE))?;
    let signature = hex::decode(signature_text).ok().filter(|b| b.len() == 32).ok_or_else(|| {
        VerifyError::MalformedHeader { name: HEADER_RAZY_SIGNATURE, reason: "expected 64 hex digits".into() }
    })?;
    let call = parse_body(body)?;
    let candidates: Vec<&str> =
        allowlist.grants_for(&call.caller, Protocol::Razy).into_iter().map(|(name, _)| name).collect();
    if candidates.is_empty() {
        return Err(allowlist.unknown_caller(&call.caller, &call.command).into());
    }
    let (grant, key_version) = candidates
        .into_iter()
        .find_map(|grant| {
            let keys = keys_of(grant);
            let matched = keys.iter().find(|k| crate::signing::mac_of(k.key, body).verify_slice(&signature).is_ok())?;
            Some((grant, matched.version))
        })
        .ok_or(VerifyError::BadSignature)?;
    let entry = allowlist.grants.get(grant).ok_or(VerifyError::BadSignature)?;
    let window = entry.replay_window_seconds.unwrap_or(DEFAULT_REPLAY_WINDOW_SECS);
    if window > 0 {
        let until = now.saturating_add(i64::try_from(window).unwrap_or(i64::MAX));
        replay.remember(format!("razy:{grant}"), hex::encode(&signature), until, now)?;
    }
    allowlist.authorize_grant(entry, &call.caller, Some(&call.module), &call.command)?;
    Ok(RazyAuthorized { call, grant: grant.into(), key_version })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::allowlist::{FORMAT_VERSION, GrantEntry};
    use crate::identifier::CallerPattern;

    const T0: i64 = 1_700_000_000;

    fn grant(from: &str, commands: &[&str]) -> GrantEntry {
        GrantEntry {
            protocol: Protocol::Razy,
            from: BTreeSet::from([CallerPattern::parse(from).unwrap()]),
            commands: commands.iter().map(|c| c.to_string()).collect(),
            modules: Some(BTreeSet::from(["acme/stock".to_string()])),
            replay_window_seconds: None,
        }
    }

    fn allowlist() -> Allowlist {
        Allowlist {
            version: FORMAT_VERSION,
            target: Identifier::parse("billing@prod").unwrap(),
            bridge_path: "/api/v1/bridge".into(),
            callers: BTreeMap::new(),
            grants: BTreeMap::from([
                ("any".to_string(), grant("Shop@*", &["getData"])),
                ("prod".to_string(), grant("Shop@prod", &["deleteAll"])),
            ]),
            revoked: BTreeMap::new(),
        }
    }

    fn key(fill: char) -> SecretKey {
        SecretKey::from_text(&fill.to_string().repeat(43)).unwrap()
    }

    fn check(body: &[u8], signed_by: &SecretKey, replay: &mut ReplayCache) -> Result<RazyAuthorized, VerifyError> {
        let (any, prod) = (key('a'), key('p'));
        let headers = Headers::from_pairs([(HEADER_RAZY_SIGNATURE, signature(signed_by, body))]);
        let keys_of = |g: &str| vec![VerificationKey { version: Some(1), key: if g == "any" { &any } else { &prod } }];
        verify_and_authorize(body, &headers, &allowlist(), keys_of, replay, T0)
    }

    #[test]
    fn the_designs_body_is_built_in_order_and_verified_by_its_grant() {
        let caller = Identifier::parse("Shop@eu").unwrap();
        let body = body(&caller, "acme/stock", "getData", r#" {"sku":"A-1"} "#).unwrap();
        assert_eq!(
            body,
            br#"{"caller_dist":"Shop@eu","module":"acme/stock","command":"getData","args":{"sku":"A-1"}}"#
        );
        let ok = check(&body, &key('a'), &mut ReplayCache::default()).unwrap();
        assert_eq!((ok.grant.as_str(), ok.call.command.as_str()), ("any", "getData"));
    }

    #[test]
    fn attacks_are_refused() {
        let prod = Identifier::parse("Shop@prod").unwrap();
        // The wildcard grant's key claiming Shop@prod does not get Shop@prod's command.
        let forged = body(&prod, "acme/stock", "deleteAll", "{}").unwrap();
        let err = check(&forged, &key('a'), &mut ReplayCache::default()).unwrap_err();
        assert_eq!(err.kind(), "CommandNotAllowed");
        assert!(check(&forged, &key('p'), &mut ReplayCache::default()).is_ok());
        // A body changed after signing.
        let genuine = body(&prod, "acme/stock", "getData", "{}").unwrap();
        let headers = Headers::from_pairs([(HEADER_RAZY_SIGNATURE, signature(&key('a'), &genuine))]);
        let changed = body(&Identifier::parse("Shop@eu").unwrap(), "acme/stock", "getData", "{}").unwrap();
        let (a, p) = (key('a'), key('p'));
        let keys_of = |g: &str| vec![VerificationKey { version: None, key: if g == "any" { &a } else { &p } }];
        let err = verify_and_authorize(&changed, &headers, &allowlist(), keys_of, &mut ReplayCache::default(), T0);
        assert_eq!(err.unwrap_err(), VerifyError::BadSignature);
        // The same body again within the window.
        let mut replay = ReplayCache::default();
        assert!(check(&genuine, &key('a'), &mut replay).is_ok());
        assert_eq!(check(&genuine, &key('a'), &mut replay).unwrap_err().kind(), "Replayed");
        // A module the grant does not name.
        let other = body(&prod, "acme/billing", "getData", "{}").unwrap();
        assert_eq!(check(&other, &key('a'), &mut ReplayCache::default()).unwrap_err().kind(), "ModuleNotAllowed");
        // Not the design's body.
        let err = check(br#"{"caller_dist":"Shop@eu"}"#, &key('a'), &mut ReplayCache::default()).unwrap_err();
        assert_eq!(err.kind(), "MalformedBody");
    }
}
