//! The effective allowlist of one target: the union of every BridgeGrant naming it.
//!
//! The document itself (its JSON format, parsing and the checks a target runs) is
//! `switchyard_bridge::allowlist`, re-exported here. This module computes it from the
//! grants: the target instance reads it from a ConfigMap (default name
//! [`default_config_map_name`]) under [`CONFIG_MAP_KEY`]. Revocations are kept for
//! [`REVOCATION_RETENTION`] and computed by [`carry_revocations`] from the previously
//! published allowlist.
//!
//! The output is a pure function of its input and every collection is sorted, so
//! recomputing from unchanged grants yields byte-identical JSON (no spurious
//! updates). Revocation needs no special case: deleting or narrowing a grant and
//! recomputing drops what only that grant allowed; `revoked` only explains it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;

pub use switchyard_bridge::allowlist::*;

use crate::api::bridge_grant::{BridgeGrantSpec, BridgeProtocol};
use crate::logic::identifier::{CallerPattern, DEFAULT_TAG, Identifier, IdentifierError};

/// How long a revocation stays in the `revoked` section of a published allowlist.
pub const REVOCATION_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

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
    #[error("grant {grant}: command {command:?} is not a command name or '*'")]
    InvalidCommand { grant: String, command: String },
    /// A module is not `vendor/module`, or the replay window does not parse; the whole grant is left out.
    #[error("grant {grant}: {message}")]
    InvalidModule { grant: String, message: String },
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
            | GrantProblem::InvalidModule { grant, .. }
            | GrantProblem::BridgePathConflict { grant, .. } => grant,
        }
    }

    /// Stable CamelCase reason for a condition or Event.
    pub fn reason(&self) -> &'static str {
        match self {
            GrantProblem::WrongTarget { .. } => "WrongTarget",
            GrantProblem::InvalidCaller { .. } => "InvalidCaller",
            GrantProblem::InvalidCommand { .. } => "InvalidCommand",
            GrantProblem::InvalidModule { .. } => "InvalidModule",
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

/// Default allowlist ConfigMap name for a target when the grant names none.
///
/// `bridge-allowlist-<code>` for a target with the default tag, as documented on the
/// CRD. Other tags would collide on that name, and `_` or upper case are not valid in
/// object names, so those get `bridge-allowlist-<code>-<tag>-<hash>`, lower-cased with
/// `_` turned into `-` and a hash of the exact identifier to keep distinct targets apart.
pub fn default_config_map_name(target: &Identifier) -> String {
    let plain =
        target.tag() == DEFAULT_TAG && !target.code().contains('_') && !target.code().contains(char::is_uppercase);
    if plain {
        return format!("bridge-allowlist-{}", target.code());
    }
    let clean = |s: &str| s.to_ascii_lowercase().replace(['_', '.'], "-");
    let digest = <sha2::Sha256 as sha2::Digest>::digest(target.to_string().as_bytes());
    let hash = &hex::encode(digest)[..8];
    // At most 17 + 63 + 1 + 63 + 1 + 8 = 153 characters of [a-z0-9-]: always a valid name.
    format!("bridge-allowlist-{}-{}-{hash}", clean(target.code()), clean(target.tag()))
}

/// `spec.replayWindow` in whole seconds, as published for `razy` grants (`None` for `signed`).
pub fn replay_window_seconds(spec: &BridgeGrantSpec) -> Result<Option<u64>, String> {
    if spec.protocol != BridgeProtocol::Razy {
        return Ok(None);
    }
    let Some(text) = &spec.replay_window else {
        return Ok(Some(switchyard_bridge::razy::DEFAULT_REPLAY_WINDOW_SECS));
    };
    Ok(Some(crate::logic::duration::parse(text)?.as_secs()))
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
    let mut entries: BTreeMap<String, GrantEntry> = BTreeMap::new();
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
        if let Some(bad) = spec.modules.iter().flatten().find(|m| !is_valid_module(m)) {
            let message = format!("module {bad:?} is not vendor/module");
            problems.push(GrantProblem::InvalidModule { grant: name.into(), message });
            continue;
        }
        let replay_window_seconds = match replay_window_seconds(spec) {
            Ok(window) => window,
            Err(e) => {
                problems
                    .push(GrantProblem::InvalidModule { grant: name.into(), message: format!("replayWindow: {e}") });
                continue;
            }
        };
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
        let mut commands: BTreeSet<String> = spec.commands.iter().cloned().collect();
        if commands.contains(ANY_COMMAND) {
            commands = BTreeSet::from([ANY_COMMAND.to_string()]);
        }
        entries.insert(
            name.into(),
            GrantEntry {
                protocol: match spec.protocol {
                    BridgeProtocol::Signed => Protocol::Signed,
                    BridgeProtocol::Razy => Protocol::Razy,
                },
                from: patterns.iter().cloned().collect(),
                commands,
                modules: spec.modules.as_ref().map(|m| m.iter().cloned().collect()),
                replay_window_seconds,
            },
        );
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
            grants: entries,
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
            modules: None,
            protocol: Default::default(),
            replay_window: None,
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
                },
                "grants": {
                    "crm-all": {"protocol": "signed", "from": ["crm@prod"], "commands": ["*"]},
                    "shop-sync": {"protocol": "signed", "from": ["shop@*"], "commands": ["orders.sync"]}
                }
            })
        );
        let data = out.allowlist.to_config_map_data();
        assert_eq!(data.keys().collect::<Vec<_>>(), [CONFIG_MAP_KEY]);
        assert_eq!(Allowlist::from_json(&data[CONFIG_MAP_KEY]).unwrap(), out.allowlist);
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
            ("bad-caller", spec("shop@prod", &["erp", "B.ad"], &["*"])),
            ("bad-command", spec("shop@prod", &["erp"], &["1Orders"])),
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
