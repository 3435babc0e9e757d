//! Registering a Branch with its parent: the payload, the hash that says whether it
//! must be sent again, and parent-loop detection.

use std::collections::HashSet;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The body of `POST /api/v1/cross-branch/register-branch` on the parent.
#[derive(Serialize, Clone, PartialEq, Eq)]
pub struct Payload {
    pub name: String,
    pub url: String,
    /// `top` or `master`.
    #[serde(rename = "type")]
    pub type_: String,
    pub api_key: String,
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Payload").field("name", &self.name).field("url", &self.url).field("type", &self.type_).finish()
    }
}

/// Where and as whom the payload is sent.
pub struct Target<'a> {
    pub parent_url: &'a str,
    pub parent_key: &'a str,
}

/// A digest of everything a registration depends on: the payload and the parent
/// it went to, with the parent's key. A change to any of them means registering
/// again. Stored in status: it reveals neither key.
pub fn hash(payload: &Payload, target: &Target<'_>) -> String {
    let mut digest = Sha256::new();
    for part in [
        "switchyard.dev/registration/v1",
        &payload.name,
        &payload.url,
        &payload.type_,
        &payload.api_key,
        target.parent_url,
        target.parent_key,
    ] {
        // Length-prefixed so no two different inputs concatenate alike.
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part.as_bytes());
    }
    format!("sha256:{}", hex::encode(digest.finalize()))
}

/// The full URL of the registration endpoint under `base`.
pub fn endpoint(base: &str) -> String {
    format!("{}/api/v1/cross-branch/register-branch", base.trim_end_matches('/'))
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
            name: "eu".into(),
            url: "https://eu.example.com".into(),
            type_: "master".into(),
            api_key: "eu-key".into(),
        }
    }

    const TOP: Target<'static> = Target { parent_url: "https://top.example.com", parent_key: "top-key" };

    #[test]
    fn hash_changes_with_every_input_and_hides_the_keys() {
        let base = hash(&payload(), &TOP);
        assert_eq!(base, hash(&payload(), &TOP), "stable");
        assert!(base.starts_with("sha256:") && !base.contains("eu-key") && !base.contains("top-key"));
        let changed = [
            hash(&Payload { api_key: "rotated".into(), ..payload() }, &TOP),
            hash(&Payload { url: "https://eu2.example.com".into(), ..payload() }, &TOP),
            hash(&Payload { name: "eu2".into(), ..payload() }, &TOP),
            hash(&payload(), &Target { parent_key: "top-key-2", ..TOP }),
            hash(&payload(), &Target { parent_url: "https://top2.example.com", ..TOP }),
        ];
        for h in &changed {
            assert_ne!(h, &base);
        }
        // Moving a character between fields is a different input, not the same bytes.
        let a = hash(&Payload { name: "ab".into(), url: "c".into(), ..payload() }, &TOP);
        let b = hash(&Payload { name: "a".into(), url: "bc".into(), ..payload() }, &TOP);
        assert_ne!(a, b);
    }

    #[test]
    fn payload_serializes_like_the_platform_expects_and_debug_hides_the_key() {
        let json = serde_json::to_value(payload()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "eu", "url": "https://eu.example.com", "type": "master", "api_key": "eu-key"})
        );
        assert!(!format!("{:?}", payload()).contains("eu-key"));
        assert_eq!(endpoint("https://top.example.com/"), "https://top.example.com/api/v1/cross-branch/register-branch");
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
