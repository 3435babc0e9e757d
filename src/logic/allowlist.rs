//! The effective allowlist of one target: the union of every BridgeGrant naming it.
//!
//! The target instance reads it from a ConfigMap (default name
//! [`default_config_map_name`]) with one key, [`CONFIG_MAP_KEY`] (`allowlist.json`):
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
//! - `revoked` (absent when empty): caller pattern → commands it was allowed by an earlier
//!   version of this allowlist and no longer is (`["*"]`: everything it is not allowed
//!   now), the grants that had allowed them and when. A reader refuses a request the
//!   `callers` do not allow with "revoked" instead of "unknown caller" or "command not
//!   allowed" when a `revoked` entry names it, so a caller can tell a withdrawn grant from
//!   a mistake. Entries are kept for [`REVOCATION_RETENTION`] and dropped as soon as the
//!   permission is granted again. Computed by [`carry_revocations`] from the previously
//!   published allowlist.
//!
//! The output is a pure function of its input and every collection is sorted, so
//! recomputing from unchanged grants yields byte-identical JSON (no spurious
//! updates). Revocation needs no special case: deleting or narrowing a grant and
//! recomputing drops what only that grant allowed; `revoked` only explains it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_with::{DisplayFromStr, serde_as};

use crate::api::bridge_grant::BridgeGrantSpec;
use crate::logic::identifier::{CallerPattern, DEFAULT_TAG, Identifier, IdentifierError};

/// The ConfigMap key holding the allowlist JSON.
pub const CONFIG_MAP_KEY: &str = "allowlist.json";

/// Version of the JSON format written under [`CONFIG_MAP_KEY`].
pub const FORMAT_VERSION: u32 = 1;

/// The command wildcard.
pub const ANY_COMMAND: &str = "*";

/// Longest command name, as in the CRD's CEL rule.
pub const MAX_COMMAND_LEN: usize = 128;

/// How long a revocation stays in the `revoked` section of a published allowlist.
pub const REVOCATION_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

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

/// A grant left out of, or in conflict with, the effective allowlist.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GrantProblem {
    /// The grant's target is not the allowlist's target (the caller grouped wrongly).
    #[error("grant {grant}: target {found:?} is not {expected}")]
    WrongTarget { grant: String, expected: String, found: String },
    /// A caller does not parse; the whole grant is left out.
    #[error("grant {grant}: caller {caller:?}: {source}")]
    InvalidCaller { grant: String, caller: String, source: IdentifierError },
    /// A command does not match the CRD's grammar; the whole grant is left out.
    #[error("grant {grant}: command {command:?} is not a lowercase name or '*'")]
    InvalidCommand { grant: String, command: String },
    /// The grant asks for another bridge path than the one published; its
    /// permissions are still included (the path is where, not who).
    #[error("grant {grant}: bridgePath {found:?} conflicts with {published:?} (from grant {published_by})")]
    BridgePathConflict { grant: String, found: String, published: String, published_by: String },
}

impl GrantProblem {
    /// Name of the grant the problem is about.
    pub fn grant(&self) -> &str {
        match self {
            GrantProblem::WrongTarget { grant, .. }
            | GrantProblem::InvalidCaller { grant, .. }
            | GrantProblem::InvalidCommand { grant, .. }
            | GrantProblem::BridgePathConflict { grant, .. } => grant,
        }
    }

    /// Stable CamelCase reason for a condition or Event.
    pub fn reason(&self) -> &'static str {
        match self {
            GrantProblem::WrongTarget { .. } => "WrongTarget",
            GrantProblem::InvalidCaller { .. } => "InvalidCaller",
            GrantProblem::InvalidCommand { .. } => "InvalidCommand",
            GrantProblem::BridgePathConflict { .. } => "BridgePathConflict",
        }
    }
}

/// The effective allowlist, plus what could not be folded into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectiveAllowlist {
    /// The allowlist to publish.
    pub allowlist: Allowlist,
    /// Grants left out or conflicting, sorted by grant name.
    pub problems: Vec<GrantProblem>,
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
    /// The caller was allowed this command until a grant was deleted or narrowed.
    #[error("the permission of {caller} to run command {command:?} on {target} was revoked at {revoked_at}")]
    Revoked { caller: String, command: String, target: String, revoked_at: String },
}

/// Whether `command` matches the CRD's command grammar `^[a-z][a-z0-9_.:-]{0,127}$`.
pub fn is_valid_command(command: &str) -> bool {
    let mut chars = command.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && command.len() <= MAX_COMMAND_LEN
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | ':' | '-'))
}

/// Default allowlist ConfigMap name for a target when the grant names none.
///
/// `bridge-allowlist-<code>` for a target with the default tag, as documented on the
/// CRD. Other tags would collide on that name, and `_` or upper case are not valid in
/// object names, so those get `bridge-allowlist-<code>-<tag>-<hash>`, lower-cased with
/// `_` turned into `-` and a hash of the exact identifier to keep distinct targets apart.
pub fn default_config_map_name(target: &Identifier) -> String {
    let plain = target.tag() == DEFAULT_TAG && !target.code().contains('_');
    if plain {
        return format!("bridge-allowlist-{}", target.code());
    }
    let clean = |s: &str| s.to_ascii_lowercase().replace(['_', '.'], "-");
    let digest = <sha2::Sha256 as sha2::Digest>::digest(target.to_string().as_bytes());
    let hash = &hex::encode(digest)[..8];
    // At most 17 + 63 + 1 + 63 + 1 + 8 = 153 characters of [a-z0-9-]: always a valid name.
    format!("bridge-allowlist-{}-{}-{hash}", clean(target.code()), clean(target.tag()))
}

/// Computes the effective allowlist of `target` from every grant naming it.
///
/// `grants` is (grant name, spec) for the grants of one target, in any order. Grants
/// with an invalid caller or command are left out whole (the API server's CEL rules
/// normally prevent them) and reported. The published `bridgePath` is that of the
/// first grant by name; grants asking for another path are reported but still count.
pub fn effective_allowlist<'a>(
    target: &Identifier,
    grants: impl IntoIterator<Item = (&'a str, &'a BridgeGrantSpec)>,
) -> EffectiveAllowlist {
    let mut grants: Vec<(&str, &BridgeGrantSpec)> = grants.into_iter().collect();
    grants.sort_by(|a, b| a.0.cmp(b.0));

    let mut callers: BTreeMap<CallerPattern, CallerEntry> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut published: Option<(&str, &str)> = None;

    for (name, spec) in grants {
        if Identifier::parse(&spec.target).ok().as_ref() != Some(target) {
            problems.push(GrantProblem::WrongTarget {
                grant: name.into(),
                expected: target.to_string(),
                found: spec.target.clone(),
            });
            continue;
        }
        let patterns: Result<Vec<CallerPattern>, GrantProblem> = spec
            .from
            .iter()
            .map(|caller| {
                CallerPattern::parse(caller).map_err(|source| GrantProblem::InvalidCaller {
                    grant: name.into(),
                    caller: caller.clone(),
                    source,
                })
            })
            .collect();
        let patterns = match patterns {
            Ok(patterns) => patterns,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        if let Some(bad) = spec.commands.iter().find(|c| *c != ANY_COMMAND && !is_valid_command(c)) {
            problems.push(GrantProblem::InvalidCommand { grant: name.into(), command: bad.clone() });
            continue;
        }
        match published {
            None => published = Some((name, &spec.bridge_path)),
            Some((by, path)) if path != spec.bridge_path => problems.push(GrantProblem::BridgePathConflict {
                grant: name.into(),
                found: spec.bridge_path.clone(),
                published: path.into(),
                published_by: by.into(),
            }),
            Some(_) => {}
        }
        for pattern in patterns {
            let entry = callers.entry(pattern).or_default();
            entry.commands.extend(spec.commands.iter().cloned());
            entry.grants.insert(name.into());
        }
    }

    for entry in callers.values_mut() {
        if entry.commands.contains(ANY_COMMAND) {
            entry.commands = BTreeSet::from([ANY_COMMAND.to_string()]);
        }
    }
    let bridge_path = published.map_or_else(|| "/api/v1/bridge".to_string(), |(_, path)| path.to_string());
    EffectiveAllowlist {
        allowlist: Allowlist {
            version: FORMAT_VERSION,
            target: target.clone(),
            bridge_path,
            callers,
            revoked: BTreeMap::new(),
        },
        problems,
    }
}

/// Fills `next.revoked` from the allowlist published before it: what `previous`
/// allowed and `next` does not becomes revoked at `now`; earlier revocations are
/// kept for `retention` unless granted again. `previous` of another target is ignored.
pub fn carry_revocations(previous: Option<&Allowlist>, next: &mut Allowlist, now: Timestamp, retention: Duration) {
    let mut revoked: BTreeMap<CallerPattern, RevokedEntry> = BTreeMap::new();
    let Some(previous) = previous.filter(|p| p.target == next.target) else {
        next.revoked = revoked;
        return;
    };
    let still_allowed = |pattern: &CallerPattern| next.callers.get(pattern).map(|e| &e.commands);
    for (pattern, entry) in &previous.revoked {
        let fresh = entry.revoked_at.saturating_add(retention).is_ok_and(|until| now < until);
        if fresh {
            revoked.insert(pattern.clone(), entry.clone());
        }
    }
    for (pattern, old) in &previous.callers {
        let lost = lost_commands(&old.commands, still_allowed(pattern));
        if lost.is_empty() {
            continue;
        }
        let entry = revoked.entry(pattern.clone()).or_insert_with(|| RevokedEntry {
            commands: BTreeSet::new(),
            grants: BTreeSet::new(),
            revoked_at: now,
        });
        entry.commands.extend(lost);
        entry.grants.extend(old.grants.iter().cloned());
        entry.revoked_at = now;
    }
    revoked.retain(|pattern, entry| {
        if let Some(allowed) = still_allowed(pattern) {
            if allowed.contains(ANY_COMMAND) {
                return false;
            }
            if !entry.commands.contains(ANY_COMMAND) {
                entry.commands.retain(|c| !allowed.contains(c));
            }
        }
        if entry.commands.contains(ANY_COMMAND) {
            entry.commands = BTreeSet::from([ANY_COMMAND.to_string()]);
        }
        !entry.commands.is_empty()
    });
    next.revoked = revoked;
}

/// The commands of `old` that `new` no longer allows; `{"*"}` when `old` allowed
/// everything and `new` does not.
fn lost_commands(old: &BTreeSet<String>, new: Option<&BTreeSet<String>>) -> BTreeSet<String> {
    let empty = BTreeSet::new();
    let new = new.unwrap_or(&empty);
    if new.contains(ANY_COMMAND) {
        return BTreeSet::new();
    }
    if old.contains(ANY_COMMAND) {
        return BTreeSet::from([ANY_COMMAND.to_string()]);
    }
    old.difference(new).cloned().collect()
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
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let command = path.strip_prefix(self.bridge_path.trim_end_matches('/'))?.strip_prefix('/')?;
        (!command.is_empty() && !command.contains('/')).then_some(command)
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
    use crate::api::bridge_grant::SecretRotation;

    fn spec(target: &str, from: &[&str], commands: &[&str]) -> BridgeGrantSpec {
        BridgeGrantSpec {
            target: target.into(),
            from: from.iter().map(|s| s.to_string()).collect(),
            commands: commands.iter().map(|s| s.to_string()).collect(),
            secret: SecretRotation::default(),
            bridge_path: "/api/v1/bridge".into(),
            allowlist_config_map: None,
            network_policy: None,
        }
    }

    fn target() -> Identifier {
        Identifier::parse("shop@prod").unwrap()
    }

    fn id(s: &str) -> Identifier {
        Identifier::parse(s).unwrap()
    }

    fn compute(grants: &[(&str, BridgeGrantSpec)]) -> EffectiveAllowlist {
        effective_allowlist(&target(), grants.iter().map(|(n, s)| (*n, s)))
    }

    fn commands(allowlist: &Allowlist, pattern: &str) -> Vec<String> {
        let entry = &allowlist.callers[&CallerPattern::parse(pattern).unwrap()];
        entry.commands.iter().cloned().collect()
    }

    #[test]
    fn union_of_grants_merges_commands_per_caller_sorted() {
        let out = compute(&[
            ("b", spec("shop@prod", &["crm@prod"], &["stock.get", "orders.sync"])),
            ("a", spec("shop@prod", &["crm@prod", "erp"], &["orders.sync", "invoices.list"])),
        ]);
        assert!(out.problems.is_empty());
        assert_eq!(commands(&out.allowlist, "crm@prod"), ["invoices.list", "orders.sync", "stock.get"]);
        assert_eq!(commands(&out.allowlist, "erp@default"), ["invoices.list", "orders.sync"]);
        let crm = &out.allowlist.callers[&CallerPattern::parse("crm@prod").unwrap()];
        assert_eq!(crm.grants.iter().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn command_wildcard_absorbs_the_others() {
        let out = compute(&[
            ("a", spec("shop@prod", &["crm@prod"], &["orders.sync"])),
            ("b", spec("shop@prod", &["crm@prod"], &["*", "stock.get"])),
        ]);
        assert_eq!(commands(&out.allowlist, "crm@prod"), ["*"]);
        assert!(is_allowed(&out.allowlist, &id("crm@prod"), "anything.at:all").is_ok());
    }

    #[test]
    fn output_is_deterministic_whatever_the_input_order() {
        let a = ("a", spec("shop@prod", &["crm@*", "erp@x"], &["orders.sync"]));
        let b = ("b", spec("shop@prod", &["crm@prod"], &["stock.get"]));
        let one = compute(&[a.clone(), b.clone()]).allowlist.to_json();
        let two = compute(&[b, a]).allowlist.to_json();
        assert_eq!(one, two);
    }

    #[test]
    fn json_has_the_documented_shape_and_reads_back() {
        let out = compute(&[
            ("shop-sync", spec("shop@prod", &["shop@*"], &["orders.sync"])),
            ("crm-all", spec("shop@prod", &["crm@prod"], &["*"])),
        ]);
        let json: serde_json::Value = serde_json::from_str(&out.allowlist.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "version": 1,
                "target": "shop@prod",
                "bridgePath": "/api/v1/bridge",
                "callers": {
                    "crm@prod": {"commands": ["*"], "grants": ["crm-all"]},
                    "shop@*": {"commands": ["orders.sync"], "grants": ["shop-sync"]}
                }
            })
        );
        let data = out.allowlist.to_config_map_data();
        assert_eq!(data.keys().collect::<Vec<_>>(), [CONFIG_MAP_KEY]);
        assert_eq!(Allowlist::from_json(&data[CONFIG_MAP_KEY]).unwrap(), out.allowlist);
    }

    #[test]
    fn reader_refuses_unknown_versions_and_bad_keys() {
        let v2 = r#"{"version":2,"target":"shop@prod","bridgePath":"/b","callers":{}}"#;
        assert!(matches!(Allowlist::from_json(v2), Err(AllowlistParseError::Version(2))));
        let bad_key = r#"{"version":1,"target":"shop@prod","bridgePath":"/b","callers":{"Shop@x":{"commands":[]}}}"#;
        assert!(Allowlist::from_json(bad_key).is_err());
        let extra = r#"{"version":1,"target":"shop@prod","bridgePath":"/b","callers":{},"later":true}"#;
        assert!(Allowlist::from_json(extra).is_ok(), "additive fields must not break readers");
    }

    #[test]
    fn wildcard_tag_entries_apply_to_every_tag_of_the_code() {
        let out = compute(&[
            ("a", spec("shop@prod", &["crm@*"], &["orders.sync"])),
            ("b", spec("shop@prod", &["crm@prod"], &["stock.get"])),
        ]);
        let allowlist = &out.allowlist;
        assert!(is_allowed(allowlist, &id("crm@staging"), "orders.sync").is_ok());
        assert!(is_allowed(allowlist, &id("crm"), "orders.sync").is_ok());
        assert!(is_allowed(allowlist, &id("crm@prod"), "orders.sync").is_ok(), "union of crm@* and crm@prod");
        assert!(is_allowed(allowlist, &id("crm@prod"), "stock.get").is_ok());
        let denied = is_allowed(allowlist, &id("crm@staging"), "stock.get").unwrap_err();
        assert!(matches!(denied.reason, DenyReason::CommandNotAllowed { .. }), "{denied}");
    }

    #[test]
    fn unknown_callers_and_commands_are_denied_with_distinct_reasons() {
        let out = compute(&[("a", spec("shop@prod", &["crm@prod"], &["orders.sync"]))]);
        let allowlist = &out.allowlist;
        let unknown = is_allowed(allowlist, &id("erp@prod"), "orders.sync").unwrap_err();
        assert_eq!(unknown.reason, DenyReason::UnknownCaller { caller: "erp@prod".into(), target: "shop@prod".into() });
        let other_tag = is_allowed(allowlist, &id("crm@staging"), "orders.sync").unwrap_err();
        assert!(matches!(other_tag.reason, DenyReason::UnknownCaller { .. }));
        let command = is_allowed(allowlist, &id("crm@prod"), "orders.delete").unwrap_err();
        assert_eq!(command.to_string(), "caller crm@prod is not allowed to run command \"orders.delete\" on shop@prod");
        let invalid = is_allowed(allowlist, &id("crm@prod"), "../etc").unwrap_err();
        assert!(matches!(invalid.reason, DenyReason::InvalidCommand { .. }));
    }

    #[test]
    fn narrowing_or_deleting_a_grant_revokes_what_only_it_allowed() {
        let a = ("a", spec("shop@prod", &["crm@prod", "erp@prod"], &["orders.sync", "stock.get"]));
        let b = ("b", spec("shop@prod", &["crm@prod"], &["orders.sync"]));
        let before = compute(&[a.clone(), b.clone()]).allowlist;
        assert!(is_allowed(&before, &id("crm@prod"), "stock.get").is_ok());
        assert!(is_allowed(&before, &id("erp@prod"), "stock.get").is_ok());

        let narrowed = ("a", spec("shop@prod", &["crm@prod"], &["orders.sync"]));
        let after = compute(&[narrowed, b.clone()]).allowlist;
        assert!(is_allowed(&after, &id("crm@prod"), "stock.get").is_err());
        assert!(is_allowed(&after, &id("erp@prod"), "orders.sync").is_err());
        assert!(is_allowed(&after, &id("crm@prod"), "orders.sync").is_ok(), "still granted by b");

        let deleted = compute(&[a]).allowlist;
        assert_eq!(commands(&deleted, "crm@prod"), ["orders.sync", "stock.get"]);
        let none = compute(&[]).allowlist;
        assert!(none.callers.is_empty());
        assert!(is_allowed(&none, &id("crm@prod"), "orders.sync").is_err());
    }

    #[test]
    fn invalid_or_foreign_grants_are_left_out_and_reported() {
        let out = compute(&[
            ("good", spec("shop@prod", &["crm@prod"], &["orders.sync"])),
            ("other-target", spec("shop@staging", &["erp"], &["*"])),
            ("bad-caller", spec("shop@prod", &["erp", "Bad"], &["*"])),
            ("bad-command", spec("shop@prod", &["erp"], &["Orders"])),
        ]);
        let reasons: Vec<(&str, &str)> = out.problems.iter().map(|p| (p.grant(), p.reason())).collect();
        assert_eq!(
            reasons,
            [("bad-caller", "InvalidCaller"), ("bad-command", "InvalidCommand"), ("other-target", "WrongTarget")]
        );
        assert_eq!(out.allowlist.callers.len(), 1, "only the good grant counts");
    }

    #[test]
    fn target_written_without_tag_is_the_default_tag() {
        let target = id("shop");
        let grant = spec("shop@default", &["crm"], &["orders.sync"]);
        let out = effective_allowlist(&target, [("a", &grant)]);
        assert!(out.problems.is_empty());
        assert_eq!(out.allowlist.target.to_string(), "shop@default");
    }

    #[test]
    fn conflicting_bridge_paths_publish_the_first_and_report_the_rest() {
        let mut b = spec("shop@prod", &["erp"], &["x"]);
        b.bridge_path = "/bridge".into();
        let out = compute(&[("b", b), ("a", spec("shop@prod", &["crm"], &["y"]))]);
        assert_eq!(out.allowlist.bridge_path, "/api/v1/bridge");
        assert_eq!(out.problems.len(), 1);
        assert_eq!(out.problems[0].reason(), "BridgePathConflict");
        assert!(is_allowed(&out.allowlist, &id("erp"), "x").is_ok());
    }

    #[test]
    fn command_is_the_path_segment_after_the_bridge_path() {
        let allowlist = compute(&[]).allowlist;
        assert_eq!(allowlist.command_for_path("/api/v1/bridge/orders.sync"), Some("orders.sync"));
        assert_eq!(allowlist.command_for_path("/api/v1/bridge/orders.sync?x=1"), Some("orders.sync"));
        assert_eq!(allowlist.command_for_path("/api/v1/bridge/"), None);
        assert_eq!(allowlist.command_for_path("/api/v1/bridgeorders"), None);
        assert_eq!(allowlist.command_for_path("/api/v1/bridge/a/b"), None);
        assert_eq!(allowlist.command_for_path("/other/orders.sync"), None);
    }

    #[test]
    fn command_grammar_matches_the_crd() {
        for ok in ["a", "orders.sync", "a-b_c:d.e", &format!("a{}", "b".repeat(127))] {
            assert!(is_valid_command(ok), "{ok:?}");
        }
        for bad in ["", "*", "Orders", "1abc", "a b", "a/b", &format!("a{}", "b".repeat(128))] {
            assert!(!is_valid_command(bad), "{bad:?}");
        }
    }

    #[test]
    fn default_config_map_names_are_valid_and_distinct() {
        assert_eq!(default_config_map_name(&id("shop")), "bridge-allowlist-shop");
        let prod = default_config_map_name(&id("shop@prod"));
        let prod_upper = default_config_map_name(&id("shop@PROD"));
        let underscore = default_config_map_name(&id("my_shop"));
        assert!(prod.starts_with("bridge-allowlist-shop-prod-"), "{prod}");
        assert_ne!(prod, prod_upper);
        for name in [prod, prod_upper, underscore, default_config_map_name(&id("a_b@X.y-Z"))] {
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{name}");
            assert!(name.len() <= 253);
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn republish(previous: &Allowlist, grants: &[(&str, BridgeGrantSpec)], now: &str) -> Allowlist {
        let mut next = compute(grants).allowlist;
        carry_revocations(Some(previous), &mut next, at(now), REVOCATION_RETENTION);
        next
    }

    #[test]
    fn narrowing_and_deleting_are_refused_as_revoked_not_as_unknown() {
        let wide = ("a", spec("shop@prod", &["crm@prod", "erp@prod"], &["orders.sync", "stock.get"]));
        let before = compute(&[wide]).allowlist;
        let narrowed =
            republish(&before, &[("a", spec("shop@prod", &["crm@prod"], &["orders.sync"]))], "2025-01-01T00:00:00Z");

        let json: serde_json::Value = serde_json::from_str(&narrowed.to_json()).unwrap();
        assert_eq!(
            json["revoked"],
            serde_json::json!({
                "crm@prod": {"commands": ["stock.get"], "grants": ["a"], "revokedAt": "2025-01-01T00:00:00Z"},
                "erp@prod": {"commands": ["orders.sync", "stock.get"], "grants": ["a"], "revokedAt": "2025-01-01T00:00:00Z"}
            })
        );
        assert_eq!(Allowlist::from_json(&narrowed.to_json()).unwrap(), narrowed, "revocations read back");
        let revoked = is_allowed(&narrowed, &id("crm@prod"), "stock.get").unwrap_err();
        assert!(matches!(revoked.reason, DenyReason::Revoked { .. }), "{revoked}");
        assert!(revoked.to_string().contains("was revoked at 2025-01-01T00:00:00Z"), "{revoked}");
        let erp = is_allowed(&narrowed, &id("erp@prod"), "orders.sync").unwrap_err();
        assert!(matches!(erp.reason, DenyReason::Revoked { .. }), "{erp}");
        // Never granted: still the ordinary refusals.
        let never = is_allowed(&narrowed, &id("crm@prod"), "orders.delete").unwrap_err();
        assert!(matches!(never.reason, DenyReason::CommandNotAllowed { .. }), "{never}");
        let stranger = is_allowed(&narrowed, &id("hr@prod"), "orders.sync").unwrap_err();
        assert!(matches!(stranger.reason, DenyReason::UnknownCaller { .. }), "{stranger}");

        // The last grant goes: everything it allowed is revoked, the rest stays remembered.
        let empty = republish(&narrowed, &[], "2025-01-02T00:00:00Z");
        assert!(empty.callers.is_empty());
        let crm = &empty.revoked[&CallerPattern::parse("crm@prod").unwrap()];
        assert_eq!(crm.commands.iter().collect::<Vec<_>>(), ["orders.sync", "stock.get"]);
        assert_eq!(crm.revoked_at, at("2025-01-02T00:00:00Z"));
        let erp = &empty.revoked[&CallerPattern::parse("erp@prod").unwrap()];
        assert_eq!(erp.revoked_at, at("2025-01-01T00:00:00Z"), "an unchanged revocation keeps its time");
    }

    #[test]
    fn granting_again_clears_the_revocation_and_old_ones_expire() {
        let all = ("a", spec("shop@prod", &["crm@*"], &["*"]));
        let before = compute(std::slice::from_ref(&all)).allowlist;
        let narrowed =
            republish(&before, &[("a", spec("shop@prod", &["crm@*"], &["orders.sync"]))], "2025-01-01T00:00:00Z");
        assert_eq!(narrowed.revoked[&CallerPattern::parse("crm@*").unwrap()].commands.len(), 1);
        assert!(matches!(
            is_allowed(&narrowed, &id("crm@staging"), "stock.get").unwrap_err().reason,
            DenyReason::Revoked { .. }
        ));
        assert!(is_allowed(&narrowed, &id("crm@staging"), "orders.sync").is_ok());

        let regranted = republish(&narrowed, &[all], "2025-01-01T01:00:00Z");
        assert!(regranted.revoked.is_empty(), "{:?}", regranted.revoked);

        let same = [("a", spec("shop@prod", &["crm@*"], &["orders.sync"]))];
        let kept = republish(&narrowed, &same, "2025-01-07T23:59:59Z");
        assert_eq!(kept.revoked, narrowed.revoked, "kept, time unchanged, within the retention");
        assert_eq!(kept.to_json(), republish(&narrowed, &same, "2025-01-07T23:59:59Z").to_json(), "deterministic");
        let expired = republish(&kept, &same, "2025-01-08T00:00:00Z");
        assert!(expired.revoked.is_empty(), "older than the retention: {:?}", expired.revoked);
    }

    #[test]
    fn revocations_of_another_target_are_not_carried() {
        let before = effective_allowlist(&id("crm@prod"), [("x", &spec("crm@prod", &["shop"], &["a"]))]).allowlist;
        let next = republish(&before, &[], "2025-01-01T00:00:00Z");
        assert!(next.revoked.is_empty());
    }
}
