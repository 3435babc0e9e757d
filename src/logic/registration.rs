//! Registering Branches in the registries of the cross-branch design: the payload,
//! how an answer is read, the hash that says whether to register again, and
//! parent-loop detection.
//!
//! Two registrations make a Branch's calls acceptable to the design's middleware
//! (which compares `X-Branch-Origin` and the Bearer token with its registry):
//! a child registers itself with its parent (so the parent accepts the child's calls,
//! such as `validate-license`), and the Branch's overseer — its parent, or the Branch
//! itself when it has none — is registered with the Branch's own instance (so it
//! accepts the probes and `sync-organization` the operator sends on the overseer's
//! behalf).

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api::branch::BranchType;

/// Path of the design's registration endpoint (outside its middleware).
pub const REGISTER_PATH: &str = "/api/v1/cross-branch/register-branch";

/// The body of `POST /api/v1/cross-branch/register-branch`.
#[derive(Serialize, Clone, PartialEq, Eq)]
pub struct Payload {
    pub branch_name: String,
    pub branch_url: String,
    /// `top_branch` or `master_branch`.
    pub branch_type: &'static str,
    pub api_key: String,
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Payload")
            .field("branch_name", &self.branch_name)
            .field("branch_url", &self.branch_url)
            .field("branch_type", &self.branch_type)
            .finish()
    }
}

/// The design's name of a branch type.
pub fn branch_type(type_: BranchType) -> &'static str {
    match type_ {
        BranchType::Top => "top_branch",
        BranchType::Master => "master_branch",
    }
}

/// A registration to make: `payload` into the registry of the instance at `at`.
#[derive(Clone)]
pub struct Registration {
    pub at: String,
    pub payload: Payload,
}

/// A digest of every registration a Branch depends on (payloads with keys, and where
/// they go). A change to any of them means registering again. Stored in status: it
/// reveals no key.
pub fn hash(registrations: &[Registration]) -> String {
    let mut digest = Sha256::new();
    let mut part = |text: &str| {
        // Length-prefixed so no two different inputs concatenate alike.
        digest.update((text.len() as u64).to_be_bytes());
        digest.update(text.as_bytes());
    };
    part("switchyard.dev/registration/v2");
    for r in registrations {
        let p = &r.payload;
        for text in [&r.at, &p.branch_name, &p.branch_url, p.branch_type, &p.api_key] {
            part(text);
        }
    }
    format!("sha256:{}", hex::encode(digest.finalize()))
}

/// The full URL of the registration endpoint under `base`.
pub fn endpoint(base: &str) -> String {
    format!("{}{REGISTER_PATH}", base.trim_end_matches('/'))
}

/// What a registration answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 201 (or 200): registered now.
    Created,
    /// 409, or a 422 saying the name is taken: a branch of this name is registered
    /// already, with the URL the answer reports, if it reports one.
    Taken { stored_url: Option<String> },
    /// Anything else: the status and the instance's message.
    Refused { status: u16, message: String },
}

/// Reads the answer to a registration.
pub fn answer(status: u16, body: &Value) -> Answer {
    let message = body.get("message").and_then(Value::as_str).unwrap_or_default();
    let name_error = body.pointer("/errors/branch_name/0").and_then(Value::as_str).unwrap_or_default();
    let taken = |text: &str| {
        let t = text.to_ascii_lowercase();
        t.contains("already") || t.contains("taken") || t.contains("exists")
    };
    match status {
        200 | 201 => Answer::Created,
        409 => Answer::Taken { stored_url: stored_url(body) },
        422 if taken(name_error) || (taken(message) && !message.is_empty()) => {
            Answer::Taken { stored_url: stored_url(body) }
        }
        _ => {
            let detail = if name_error.is_empty() { message } else { name_error };
            Answer::Refused { status, message: detail.chars().take(200).collect() }
        }
    }
}

/// The `branch_url` a conflict answer reports for the registered branch.
fn stored_url(body: &Value) -> Option<String> {
    ["/branch/branch_url", "/branch_url", "/data/branch_url"]
        .iter()
        .find_map(|p| body.pointer(p).and_then(Value::as_str))
        .map(str::to_string)
}

/// Whether two branch URLs name the same instance (a trailing slash aside).
pub fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// The loop `start` is part of, following parents (`start -> parent -> ... -> start`),
/// if there is one. `parent_of` names a Branch's parent, `None` for a Branch without
/// one or that does not exist. A loop further up that `start` only leads into is not
/// `start`'s loop: that Branch reports it itself.
pub fn parent_loop(start: &str, parent_of: impl Fn(&str) -> Option<String>) -> Option<Vec<String>> {
    let mut path = vec![start.to_string()];
    let mut seen: HashSet<String> = path.iter().cloned().collect();
    let mut current = start.to_string();
    while let Some(parent) = parent_of(&current) {
        if parent == start {
            path.push(parent);
            return Some(path);
        }
        if !seen.insert(parent.clone()) {
            return None;
        }
        path.push(parent.clone());
        current = parent;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn payload() -> Payload {
        Payload {
            branch_name: "eu".into(),
            branch_url: "https://eu.example.com".into(),
            branch_type: branch_type(BranchType::Master),
            api_key: "eu-key".into(),
        }
    }

    fn at_top(payload: Payload) -> Registration {
        Registration { at: "https://top.example.com".into(), payload }
    }

    #[test]
    fn hash_changes_with_every_input_and_hides_the_keys() {
        let base = hash(&[at_top(payload())]);
        assert_eq!(base, hash(&[at_top(payload())]), "stable");
        assert!(base.starts_with("sha256:") && !base.contains("eu-key"));
        let changed = [
            hash(&[at_top(Payload { api_key: "rotated".into(), ..payload() })]),
            hash(&[at_top(Payload { branch_url: "https://eu2.example.com".into(), ..payload() })]),
            hash(&[at_top(Payload { branch_name: "eu2".into(), ..payload() })]),
            hash(&[at_top(Payload { branch_type: "top_branch", ..payload() })]),
            hash(&[Registration { at: "https://top2.example.com".into(), payload: payload() }]),
            hash(&[at_top(payload()), at_top(payload())]),
        ];
        for h in &changed {
            assert_ne!(h, &base);
        }
        // Moving a character between fields is a different input, not the same bytes.
        let a = hash(&[at_top(Payload { branch_name: "ab".into(), branch_url: "c".into(), ..payload() })]);
        let b = hash(&[at_top(Payload { branch_name: "a".into(), branch_url: "bc".into(), ..payload() })]);
        assert_ne!(a, b);
    }

    #[test]
    fn payload_serializes_as_the_design_says_and_debug_hides_the_key() {
        let json = serde_json::to_value(payload()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"branch_name": "eu", "branch_url": "https://eu.example.com", "branch_type": "master_branch", "api_key": "eu-key"})
        );
        assert_eq!(branch_type(BranchType::Top), "top_branch");
        assert!(!format!("{:?}", payload()).contains("eu-key"));
        assert_eq!(endpoint("https://top.example.com/"), "https://top.example.com/api/v1/cross-branch/register-branch");
    }

    #[test]
    fn answers_are_read_as_created_taken_or_refused() {
        use serde_json::json;
        assert_eq!(answer(201, &json!({})), Answer::Created);
        assert_eq!(answer(200, &Value::Null), Answer::Created);
        let conflict =
            json!({"message": "Branch already registered.", "branch": {"branch_url": "https://eu.example.com"}});
        assert_eq!(answer(409, &conflict), Answer::Taken { stored_url: Some("https://eu.example.com".into()) });
        let laravel = json!({"message": "The branch name has already been taken.", "errors": {"branch_name": ["The branch name has already been taken."]}});
        assert_eq!(answer(422, &laravel), Answer::Taken { stored_url: None });
        let invalid = json!({"message": "The selected branch type is invalid.", "errors": {"branch_type": ["The selected branch type is invalid."]}});
        assert_eq!(
            answer(422, &invalid),
            Answer::Refused { status: 422, message: "The selected branch type is invalid.".into() }
        );
        assert!(matches!(answer(500, &Value::Null), Answer::Refused { status: 500, .. }));
        assert!(same_url("https://eu.example.com/", "https://EU.example.com"));
    }

    fn parents(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn a_loop_through_start_is_found_with_its_path() {
        let p = parents(&[("a", "b"), ("b", "a")]);
        assert_eq!(parent_loop("a", &p), Some(vec!["a".into(), "b".into(), "a".into()]));
        assert_eq!(parent_loop("b", &p), Some(vec!["b".into(), "a".into(), "b".into()]));
        let p = parents(&[("a", "b"), ("b", "c"), ("c", "a")]);
        assert_eq!(parent_loop("c", &p).map(|l| l.len()), Some(4));
    }

    #[test]
    fn chains_ending_at_a_root_or_in_someone_elses_loop_are_not_start_s_loop() {
        assert_eq!(parent_loop("eu", parents(&[("eu", "top")])), None);
        assert_eq!(parent_loop("top", parents(&[])), None);
        assert_eq!(parent_loop("c", parents(&[("c", "a"), ("a", "b"), ("b", "a")])), None);
    }
}
