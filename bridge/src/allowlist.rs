//! The allowlist document: who may call which bridge commands of one target.
//!
//! The operator publishes it in a ConfigMap with one key, [`CONFIG_MAP_KEY`]
//! (`allowlist.json`); the target instance mounts it and refuses every request it does
//! not allow:
//!
//! ```json
//! {
//!   "version": 1,
//!   "target": "shop@prod",
//!   "bridgePath": "/api/v1/bridge",
//!   "callers": {
//!     "crm@prod": { "commands": ["*"], "grants": ["crm-all"] },
//!     "shop@*": { "commands": ["orders.sync", "stock.get"], "grants": ["a", "b"] }
//!   },
//!   "grants": {
//!     "a": { "protocol": "signed", "from": ["shop@*"], "commands": ["orders.sync"] },
//!     "b": { "protocol": "razy", "from": ["shop@*"], "modules": ["acme/stock"], "commands": ["getData"],
//!            "replayWindowSeconds": 300 },
//!     "crm-all": { "protocol": "signed", "from": ["crm@prod"], "commands": ["*"] }
//!   },
//!   "revoked": {
//!     "erp@prod": { "commands": ["*"], "grants": ["erp-sync"], "revokedAt": "2025-01-31T00:00:00Z" }
//!   }
//! }
//! ```
//!
//! - `version`: format version, [`FORMAT_VERSION`]; a reader must refuse versions it does not know.
//! - `target`: the target, canonical `code@tag`.
//! - `bridgePath`: the path prefix of the bridge endpoint; a request to
//!   `<bridgePath>/<command>` runs `<command>`.
//! - `callers`: caller pattern (canonical `code@tag` or `code@*`) → what it may do,
//!   ordered by code, then tag, with `code@*` after the code's exact tags.
//!   A caller `code@tag` is allowed the union of the commands of the keys `code@tag`
//!   and `code@*`.
//! - `commands`: sorted, unique; `["*"]` means every command (it absorbs the rest).
//! - `grants`: names of the BridgeGrants that contributed the entry (for audit; sorted).
//! - `grants`: grant name → the grant as a verifier needs it, the part that decides:
//!   `protocol` (`signed` or `razy`: which wire the grant's secret signs), `from`
//!   (caller patterns), `commands` (sorted; `["*"]` all), `modules` (absent: any
//!   module or none; else the `vendor/module` names allowed) and, for `razy`,
//!   `replayWindowSeconds`. A request is authorised by the one grant whose secret
//!   verified it, never by the union of the caller's grants: the secret proves which
//!   grant the request comes through. `callers` is the same permissions by caller,
//!   for people and tools that ask "who may call".
//! - `revoked` (absent when empty): caller pattern → commands it was allowed by an earlier
//!   version of this allowlist and no longer is (`["*"]`: everything it is not allowed
//!   now), the grants that had allowed them and when. A reader refuses a request the
//!   `callers` do not allow with "revoked" instead of "unknown caller" or "command not
//!   allowed" when a `revoked` entry names it, so a caller can tell a withdrawn grant from
//!   a mistake. The operator keeps entries for a retention period (seven days) and drops
//!   them as soon as the permission is granted again.
//!
//! The operator computes the document from the BridgeGrants naming the target (the
//! union of their callers and commands) and writes it with [`Allowlist::to_json`]: every
//! collection is sorted, so unchanged grants give byte-identical JSON. Readers use
//! [`Allowlist::from_json`] and [`is_allowed`].

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_with::{DisplayFromStr, serde_as};

use crate::identifier::{CallerPattern, Identifier};

/// The ConfigMap key holding the allowlist JSON.
pub const CONFIG_MAP_KEY: &str = "allowlist.json";

/// Version of the JSON format written under [`CONFIG_MAP_KEY`].
pub const FORMAT_VERSION: u32 = 1;

/// The command wildcard.
pub const ANY_COMMAND: &str = "*";

/// Longest command name, as in the CRD's CEL rule.
pub const MAX_COMMAND_LEN: usize = 128;

/// Longest module name (`vendor/module`), as in the CRD's CEL rule.
pub const MAX_MODULE_LEN: usize = 129;

/// The wire a grant's secret signs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// switchyard's hardened form: `X-Bridge-*` headers, a `v2` HMAC over method, path,
    /// timestamp, request id, caller and body digest (`crate::signing`).
    #[default]
    Signed,
    /// The cross-distributor design: `POST /__internal/bridge`, body
    /// `{caller_dist, module, command, args}`, `X-Razy-Signature` over the raw body (`crate::razy`).
    Razy,
}

impl Protocol {
    /// `signed` or `razy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Signed => "signed",
            Protocol::Razy => "razy",
        }
    }
}

/// One grant, as a verifier needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantEntry {
    /// The wire its secret signs.
    #[serde(default)]
    pub protocol: Protocol,
    /// Callers it lets in.
    pub from: BTreeSet<CallerPattern>,
    /// Commands, sorted; `["*"]` for all.
    pub commands: BTreeSet<String>,
    /// Modules allowed; `None`: any module (or none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules: Option<BTreeSet<String>>,
    /// `razy` only: how long an identical signed body is refused as a replay; 0 turns it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_window_seconds: Option<u64>,
}

impl GrantEntry {
    /// Whether this grant lets `caller` in at all.
    pub fn admits(&self, caller: &Identifier) -> bool {
        self.from.iter().any(|p| p.matches(caller))
    }

    /// Whether this grant allows `command` of `module` (`None`: no module named).
    pub fn allows(&self, module: Option<&str>, command: &str) -> bool {
        self.allows_module(module) && (self.commands.contains(ANY_COMMAND) || self.commands.contains(command))
    }

    /// Whether this grant allows `module` (`None`: no module named).
    pub fn allows_module(&self, module: Option<&str>) -> bool {
        match (&self.modules, module) {
            (None, _) => true,
            (Some(modules), Some(module)) => modules.contains(module),
            (Some(_), None) => false,
        }
    }
}

/// What the target app reads: who may call which of its bridge commands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Allowlist {
    /// Format version, [`FORMAT_VERSION`].
    pub version: u32,
    /// The instance being called.
    pub target: Identifier,
    /// Path prefix of the bridge endpoint.
    pub bridge_path: String,
    /// Caller pattern → its permissions.
    pub callers: BTreeMap<CallerPattern, CallerEntry>,
    /// Grant name → what it allows, the part authorisation uses (see the module documentation).
    #[serde(default)]
    pub grants: BTreeMap<String, GrantEntry>,
    /// Caller pattern → permissions it lost (see the module documentation).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub revoked: BTreeMap<CallerPattern, RevokedEntry>,
}

/// Permissions a caller pattern had and lost.
#[serde_as]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokedEntry {
    /// Commands no longer allowed, sorted; `["*"]` for everything not allowed now.
    pub commands: BTreeSet<String>,
    /// BridgeGrants that had allowed them.
    #[serde(default)]
    pub grants: BTreeSet<String>,
    /// When the latest of these permissions was withdrawn.
    #[serde_as(as = "DisplayFromStr")]
    pub revoked_at: Timestamp,
}

/// The permissions of one caller pattern.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallerEntry {
    /// Allowed commands, sorted; `["*"]` for all.
    pub commands: BTreeSet<String>,
    /// BridgeGrants that contributed this entry.
    #[serde(default)]
    pub grants: BTreeSet<String>,
}

/// Why a request is refused by the allowlist.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Denied {
    /// What is missing.
    pub reason: DenyReason,
}

/// The kinds of refusal.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DenyReason {
    /// No grant names this caller.
    #[error("caller {caller} is not allowed to call {target}")]
    UnknownCaller { caller: String, target: String },
    /// The caller is known but not for this command.
    #[error("caller {caller} is not allowed to run command {command:?} on {target}")]
    CommandNotAllowed { caller: String, command: String, target: String },
    /// The command name is not a valid command at all.
    #[error("{command:?} is not a valid command name")]
    InvalidCommand { command: String },
    /// The grant whose secret verified the request does not allow this module.
    #[error("caller {caller} is not allowed to run module {module:?} on {target}")]
    ModuleNotAllowed { caller: String, module: String, target: String },
    /// The caller was allowed this command until a grant was deleted or narrowed.
    #[error("the permission of {caller} to run command {command:?} on {target} was revoked at {revoked_at}")]
    Revoked { caller: String, command: String, target: String, revoked_at: String },
}

/// Whether `command` matches the CRD's command grammar `^[a-zA-Z][a-zA-Z0-9_.:-]{0,127}$`
/// (the design's camelCase names such as `getData`, and dotted ones such as `orders.sync`).
pub fn is_valid_command(command: &str) -> bool {
    let mut chars = command.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && command.len() <= MAX_COMMAND_LEN
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

/// Whether `module` is `vendor/module` as the CRD's grammar says:
/// `^[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,62}[a-zA-Z0-9])?/[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,62}[a-zA-Z0-9])?$`.
pub fn is_valid_module(module: &str) -> bool {
    let part = |p: &str| {
        let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        (1..=64).contains(&p.len())
            && edge(p.chars().next())
            && edge(p.chars().last())
            && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    };
    module.split_once('/').is_some_and(|(vendor, name)| part(vendor) && part(name))
}

/// Why allowlist JSON could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AllowlistParseError {
    /// Not JSON of the expected shape.
    #[error("allowlist is not valid: {0}")]
    Json(#[from] serde_json::Error),
    /// A format this code does not know.
    #[error("allowlist format version {0} is not supported (expected {FORMAT_VERSION})")]
    Version(u32),
}

impl Allowlist {
    /// The JSON stored under [`CONFIG_MAP_KEY`]: pretty-printed, sorted, newline-terminated.
    pub fn to_json(&self) -> String {
        // Serializing maps with string keys and plain structs cannot fail.
        let mut json = serde_json::to_string_pretty(self).unwrap_or_default();
        json.push('\n');
        json
    }

    /// The ConfigMap `data`: one key, [`CONFIG_MAP_KEY`].
    pub fn to_config_map_data(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(CONFIG_MAP_KEY.to_string(), self.to_json())])
    }

    /// Reads what [`Allowlist::to_json`] wrote (as the target app does); unknown fields
    /// are ignored so that additive changes need no new version.
    pub fn from_json(json: &str) -> Result<Self, AllowlistParseError> {
        let allowlist: Allowlist = serde_json::from_str(json)?;
        if allowlist.version != FORMAT_VERSION {
            return Err(AllowlistParseError::Version(allowlist.version));
        }
        Ok(allowlist)
    }

    /// The command a request path addresses: `<bridgePath>/<command>[?query]` → `command`.
    pub fn command_for_path<'p>(&self, path: &'p str) -> Option<&'p str> {
        match self.module_command_for_path(path)? {
            (None, command) => Some(command),
            (Some(_), _) => None,
        }
    }

    /// The module and command a `signed` request path addresses:
    /// `<bridgePath>/[<vendor>/<module>/]<command>[?query]`.
    pub fn module_command_for_path<'p>(&self, path: &'p str) -> Option<(Option<&'p str>, &'p str)> {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let rest = path.strip_prefix(self.bridge_path.trim_end_matches('/'))?.strip_prefix('/')?;
        match rest.rsplit_once('/') {
            None => (!rest.is_empty()).then_some((None, rest)),
            Some((module, command)) => {
                (is_valid_module(module) && !command.is_empty()).then_some((Some(module), command))
            }
        }
    }

    /// The grants that admit `caller` and sign with `protocol`, by name.
    pub fn grants_for(&self, caller: &Identifier, protocol: Protocol) -> Vec<(&str, &GrantEntry)> {
        self.grants
            .iter()
            .filter(|(_, g)| g.protocol == protocol && g.admits(caller))
            .map(|(name, g)| (name.as_str(), g))
            .collect()
    }

    /// Whether `grant` lets `caller` run `command` of `module`: the check after the
    /// grant's secret verified the request. Refusals say `Revoked` when a `revoked`
    /// entry explains them.
    pub fn authorize_grant(
        &self,
        grant: &GrantEntry,
        caller: &Identifier,
        module: Option<&str>,
        command: &str,
    ) -> Result<(), Denied> {
        if !is_valid_command(command) {
            return Err(Denied { reason: DenyReason::InvalidCommand { command: command.into() } });
        }
        if grant.allows(module, command) {
            return Ok(());
        }
        if let Some(revoked) = self.revoked(caller, command) {
            return Err(revoked);
        }
        let (caller, target) = (caller.to_string(), self.target.to_string());
        let reason = if grant.allows_module(module) {
            DenyReason::CommandNotAllowed { caller, command: command.into(), target }
        } else {
            DenyReason::ModuleNotAllowed { caller, module: module.unwrap_or_default().into(), target }
        };
        Err(Denied { reason })
    }

    /// The refusal for a caller no grant of `protocol` admits: `Revoked` when a
    /// `revoked` entry names it, else `UnknownCaller`.
    pub fn unknown_caller(&self, caller: &Identifier, command: &str) -> Denied {
        self.revoked(caller, command).unwrap_or(Denied {
            reason: DenyReason::UnknownCaller { caller: caller.to_string(), target: self.target.to_string() },
        })
    }

    /// The commands `caller` may run: the union of its exact entry and its `code@*` entry.
    pub fn commands_for(&self, caller: &Identifier) -> Option<BTreeSet<&str>> {
        let exact = CallerPattern::from(caller.clone());
        let any = CallerPattern::parse(&format!("{}@*", caller.code())).ok();
        let entries: Vec<&CallerEntry> =
            [Some(&exact), any.as_ref()].into_iter().flatten().filter_map(|p| self.callers.get(p)).collect();
        if entries.is_empty() {
            return None;
        }
        Some(entries.iter().flat_map(|e| e.commands.iter().map(String::as_str)).collect())
    }

    /// The revocation that explains why `caller` may not run `command`, if any: an
    /// entry of `revoked` whose pattern matches the caller and names the command or `*`.
    pub fn revocation_for(&self, caller: &Identifier, command: &str) -> Option<&RevokedEntry> {
        self.revoked
            .iter()
            .filter(|(pattern, _)| pattern.matches(caller))
            .map(|(_, entry)| entry)
            .filter(|entry| entry.commands.contains(ANY_COMMAND) || entry.commands.contains(command))
            .max_by_key(|entry| entry.revoked_at)
    }

    fn revoked(&self, caller: &Identifier, command: &str) -> Option<Denied> {
        self.revocation_for(caller, command).map(|entry| Denied {
            reason: DenyReason::Revoked {
                caller: caller.to_string(),
                command: command.into(),
                target: self.target.to_string(),
                revoked_at: entry.revoked_at.to_string(),
            },
        })
    }
}

/// Whether `caller` may run `command` on the allowlist's target.
pub fn is_allowed(allowlist: &Allowlist, caller: &Identifier, command: &str) -> Result<(), Denied> {
    if !is_valid_command(command) {
        return Err(Denied { reason: DenyReason::InvalidCommand { command: command.into() } });
    }
    let Some(commands) = allowlist.commands_for(caller) else {
        return Err(allowlist.revoked(caller, command).unwrap_or(Denied {
            reason: DenyReason::UnknownCaller { caller: caller.to_string(), target: allowlist.target.to_string() },
        }));
    };
    if commands.contains(ANY_COMMAND) || commands.contains(command) {
        Ok(())
    } else if let Some(revoked) = allowlist.revoked(caller, command) {
        Err(revoked)
    } else {
        Err(Denied {
            reason: DenyReason::CommandNotAllowed {
                caller: caller.to_string(),
                command: command.into(),
                target: allowlist.target.to_string(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_refuses_unknown_versions_and_bad_keys() {
        let v2 = r#"{"version":2,"target":"shop@prod","bridgePath":"/b","callers":{}}"#;
        assert!(matches!(Allowlist::from_json(v2), Err(AllowlistParseError::Version(2))));
        let bad_key = r#"{"version":1,"target":"shop@prod","bridgePath":"/b","callers":{"sh.op@x":{"commands":[]}}}"#;
        assert!(Allowlist::from_json(bad_key).is_err());
        let extra = r#"{"version":1,"target":"shop@prod","bridgePath":"/b","callers":{},"later":true}"#;
        assert!(Allowlist::from_json(extra).is_ok(), "additive fields must not break readers");
    }

    #[test]
    fn command_grammar_matches_the_crd() {
        for ok in ["a", "orders.sync", "a-b_c:d.e", "getData", "Orders", &format!("a{}", "b".repeat(127))] {
            assert!(is_valid_command(ok), "{ok:?}");
        }
        for bad in ["", "*", "1abc", "a b", "a/b", "_x", &format!("a{}", "b".repeat(128))] {
            assert!(!is_valid_command(bad), "{bad:?}");
        }
        for ok in ["acme/stock", "Acme/Stock.v2", "a/b", &format!("{}/{}", "v".repeat(64), "m".repeat(64))] {
            assert!(is_valid_module(ok), "{ok:?}");
        }
        for bad in
            ["", "acme", "/stock", "acme/", "acme/stock/x", "ac me/stock", "-a/b", &format!("{}/m", "v".repeat(65))]
        {
            assert!(!is_valid_module(bad), "{bad:?}");
        }
    }
}
