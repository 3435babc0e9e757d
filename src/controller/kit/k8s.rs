//! Small Kubernetes idioms, done one way: reading a Secret key, telling "gone"
//! and "lost a race" apart from real failures, the labels on what we create, and
//! writing owned children with server-side apply.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde::de::DeserializeOwned;

use super::Error;

/// `app.kubernetes.io/managed-by` on everything switchyard creates.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "switchyard";

/// The labels every object switchyard creates carries.
pub fn managed_labels() -> BTreeMap<String, String> {
    [(MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string())].into()
}

/// Whether `e` is the apiserver's 404.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Whether `e` is the apiserver's 409 (already exists, or a stale resourceVersion).
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// A delete (or any call) whose object is already gone counts as done.
pub fn ignore_not_found<T>(result: Result<T, kube::Error>) -> Result<Option<T>, kube::Error> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Why a Secret key could not be read. Never carries the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretProblem {
    #[error("Secret {namespace}/{name} does not exist")]
    Missing { namespace: String, name: String },
    #[error("Secret {namespace}/{name} has no key {key}")]
    MissingKey { namespace: String, name: String, key: String },
    #[error("key {key} of Secret {namespace}/{name} is not UTF-8 text")]
    NotText { namespace: String, name: String, key: String },
}

impl SecretProblem {
    /// The stable reason a stalled object shows.
    pub fn reason(&self) -> &'static str {
        match self {
            SecretProblem::Missing { .. } => "SecretNotFound",
            SecretProblem::MissingKey { .. } => "SecretKeyNotFound",
            SecretProblem::NotText { .. } => "SecretNotText",
        }
    }

    /// `Error::Invalid` for an object that needs this Secret, naming what it is for.
    pub fn invalid(self, what: &str) -> Error {
        Error::invalid(self.reason(), format!("{self} (for the {what})"))
    }
}

/// The text of key `key` of Secret `name` (`data`, else `stringData`), with
/// trailing newlines (`kubectl create secret --from-file`) removed. The outer
/// error is the apiserver failing; the inner one is what the user must fix.
pub async fn read_secret_key(
    api: &Api<Secret>,
    name: &str,
    key: &str,
) -> Result<Result<String, SecretProblem>, kube::Error> {
    match api.get_opt(name).await? {
        // A Secret read from the apiserver carries its own namespace and name.
        Some(secret) => Ok(secret_key(&secret, key)),
        None => Ok(Err(SecretProblem::Missing {
            namespace: api.namespace().unwrap_or_default().to_string(),
            name: name.into(),
        })),
    }
}

/// Key `key` of a Secret already read, as [`read_secret_key`] reads it.
pub fn secret_key(secret: &Secret, key: &str) -> Result<String, SecretProblem> {
    let (namespace, name) = (secret.namespace().unwrap_or_default(), secret.name_any());
    let bytes = secret.data.as_ref().and_then(|d| d.get(key)).map(|b| b.0.clone());
    let bytes = bytes.or_else(|| secret.string_data.as_ref().and_then(|d| d.get(key)).map(|s| s.clone().into_bytes()));
    let bytes = bytes.ok_or_else(|| SecretProblem::MissingKey {
        namespace: namespace.clone(),
        name: name.clone(),
        key: key.into(),
    })?;
    String::from_utf8(bytes).map(|s| s.trim_end_matches(['\n', '\r']).to_string()).map_err(|_| SecretProblem::NotText {
        namespace,
        name,
        key: key.into(),
    })
}

/// Server-side-applies `object` (the whole of a child object we own, as JSON with
/// `apiVersion`, `kind` and `metadata.name`) as `manager`, taking over fields
/// another manager set. With `resource_version` the write is a compare-and-swap:
/// it fails with a 409 if the object changed since it was read (the caller's next
/// reconcile reads it again). Generated values that must never be rewritten
/// (credentials) are created once instead.
pub async fn apply_owned<K>(
    api: &Api<K>,
    name: &str,
    mut object: serde_json::Value,
    resource_version: Option<String>,
    manager: &str,
) -> Result<K, kube::Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    if let Some(rv) = resource_version {
        object["metadata"]["resourceVersion"] = serde_json::json!(rv);
    }
    api.patch(name, &PatchParams::apply(manager).force(), &Patch::Apply(&object)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use kube::api::ObjectMeta;

    fn secret(data: &[(&str, &[u8])]) -> Secret {
        Secret {
            metadata: ObjectMeta { name: Some("s".into()), namespace: Some("ns".into()), ..Default::default() },
            data: Some(data.iter().map(|(k, v)| (k.to_string(), ByteString(v.to_vec()))).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn a_key_is_text_without_its_trailing_newline() {
        assert_eq!(secret_key(&secret(&[("token", b"abc\n")]), "token"), Ok("abc".into()));
    }

    #[test]
    fn each_problem_has_its_own_reason_and_never_the_value() {
        let missing = secret_key(&secret(&[("other", b"hunter2")]), "token").unwrap_err();
        assert_eq!(missing.reason(), "SecretKeyNotFound");
        assert!(!missing.to_string().contains("hunter2"));
        let binary = secret_key(&secret(&[("token", &[0xff, 0xfe])]), "token").unwrap_err();
        assert_eq!(binary.reason(), "SecretNotText");
        let e = binary.invalid("Forge token");
        assert_eq!(e.reason(), "SecretNotText");
        assert!(e.to_string().contains("ns/s") && e.to_string().contains("Forge token"), "{e}");
    }
}
