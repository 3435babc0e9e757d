//! The cross-branch design's organization sync and license check: the
//! `sync-organization` body built from a ConfigMap's or Secret's keys, its digest, the
//! backoff after failed pushes, and how a `validate-license` answer is read.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Path of the design's organization sync endpoint.
pub const SYNC_PATH: &str = "/api/v1/cross-branch/sync-organization";
/// Path of the design's license validation endpoint.
pub const LICENSE_PATH: &str = "/api/v1/cross-branch/validate-license";
/// The keys of an organization source.
pub const KEYS: [&str; 3] = ["organization", "users", "license"];

/// A `sync-organization` body, validated, and its digest.
#[derive(Clone, PartialEq)]
pub struct Organization {
    /// `{"organization": {..}, "users": [..], "license": ..}`.
    pub body: Value,
    /// `sha256:<hex>` of the body; stored in status, it reveals nothing.
    pub digest: String,
    /// How many users it carries.
    pub users: usize,
}

impl std::fmt::Debug for Organization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The license may be a secret.
        f.debug_struct("Organization").field("digest", &self.digest).field("users", &self.users).finish()
    }
}

impl Organization {
    /// The license, as `validate-license` takes it.
    pub fn license(&self) -> &Value {
        &self.body["license"]
    }
}

/// The body from the source's keys: `organization` a JSON object, `users` a JSON
/// array, `license` JSON or, when it does not parse as JSON, the text itself (a
/// license key). The problem names the key, never its value.
pub fn from_source(data: &BTreeMap<String, String>) -> Result<Organization, String> {
    let get = |key: &str| data.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
    let missing: Vec<&str> = KEYS.iter().copied().filter(|k| get(k).is_none()).collect();
    if !missing.is_empty() {
        return Err(format!("missing or empty key(s): {}", missing.join(", ")));
    }
    let organization = match serde_json::from_str::<Value>(get("organization").unwrap_or_default()) {
        Ok(v @ Value::Object(_)) => v,
        _ => return Err("key organization is not a JSON object".into()),
    };
    let users = match serde_json::from_str::<Value>(get("users").unwrap_or_default()) {
        Ok(v @ Value::Array(_)) => v,
        _ => return Err("key users is not a JSON array".into()),
    };
    let text = get("license").unwrap_or_default();
    let license = match serde_json::from_str::<Value>(text) {
        Ok(v @ (Value::Object(_) | Value::String(_))) => v,
        _ => Value::String(text.to_string()),
    };
    let count = users.as_array().map_or(0, Vec::len);
    let body = json!({"organization": organization, "users": users, "license": license});
    // serde_json's maps are ordered by key: the same content is the same bytes.
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(body.to_string().as_bytes())));
    Ok(Organization { body, digest, users: count })
}

/// How long to wait before pushing again after `failures` failed pushes in a row:
/// doubling from 2s, at most 5 minutes.
pub fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(8);
    Duration::from_secs(2u64 << exponent).min(Duration::from_secs(300))
}

/// What a `validate-license` answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenseVerdict {
    Valid,
    Invalid(String),
}

/// Reads a 2xx answer: `{"valid": true|false, "message"}`; anything without
/// `valid: true` is not a valid license.
pub fn license_verdict(body: &Value) -> LicenseVerdict {
    if body.get("valid").and_then(Value::as_bool) == Some(true) {
        return LicenseVerdict::Valid;
    }
    let message = body.get("message").and_then(Value::as_str).unwrap_or("the instance did not call it valid");
    LicenseVerdict::Invalid(message.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_source_becomes_the_designs_body_with_a_stable_digest() {
        let data = source(&[
            ("organization", r#"{"slug":"acme","name":"Acme"}"#),
            ("users", r#"[{"email":"ada@example.com"}]"#),
            ("license", "LIC-123"),
        ]);
        let org = from_source(&data).unwrap();
        assert_eq!(org.body["organization"]["slug"], "acme");
        assert_eq!(org.users, 1);
        assert_eq!(org.license(), &json!("LIC-123"));
        let reordered = source(&[
            ("organization", r#"{ "name": "Acme", "slug": "acme" }"#),
            ("users", r#"[{"email":"ada@example.com"}]"#),
            ("license", "LIC-123"),
        ]);
        assert_eq!(from_source(&reordered).unwrap().digest, org.digest, "the same content, the same digest");
        assert!(from_source(&source(&[("license", "LIC-124")])).is_err(), "organization and users missing");
        let mut other = data.clone();
        other.insert("license".into(), "LIC-124".into());
        assert_ne!(from_source(&other).unwrap().digest, org.digest);
        assert!(!format!("{org:?}").contains("LIC-123"));
    }

    #[test]
    fn problems_name_the_key_never_the_value() {
        let bad = source(&[("organization", "[1]"), ("users", "[]"), ("license", "SECRET-LIC")]);
        let problem = from_source(&bad).unwrap_err();
        assert!(problem.contains("organization") && !problem.contains("SECRET"), "{problem}");
        let problem = from_source(&source(&[("organization", "{}")])).unwrap_err();
        assert!(problem.contains("users") && problem.contains("license"), "{problem}");
        let users = source(&[("organization", "{}"), ("users", "{}"), ("license", "x")]);
        assert!(from_source(&users).unwrap_err().contains("users"));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(40), Duration::from_secs(300));
    }

    #[test]
    fn only_valid_true_is_valid() {
        assert_eq!(license_verdict(&json!({"valid": true})), LicenseVerdict::Valid);
        assert_eq!(
            license_verdict(&json!({"valid": false, "message": "expired"})),
            LicenseVerdict::Invalid("expired".into())
        );
        assert!(matches!(license_verdict(&json!({"valid": "yes"})), LicenseVerdict::Invalid(_)));
    }
}
