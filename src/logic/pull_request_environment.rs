//! The PreviewEnvironment of a pull request: its deterministic name, its labels, and
//! its spec built from the repository's template in the operator config.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use kube::CustomResourceExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::api::{PreviewEnvironment, PreviewEnvironmentSpec};
use crate::logic::dns;
use crate::logic::pull_request_actions::PullRequestFacts;

/// How a repository's pull requests become PreviewEnvironments (an entry of
/// `github.repositories` in the operator config).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositoryTemplate {
    /// `owner/name`.
    pub repository: String,
    /// Namespace the environments are created in.
    pub namespace: String,
    /// `spec.project` of the environments.
    pub project: String,
    /// `spec.className` of the environments: the PreviewClass (server, organization,
    /// token) they use; the default class when absent.
    pub class_name: Option<String>,
    /// The rest of the PreviewEnvironment spec; `repository`, `pullRequest`, `branch`,
    /// `headSha`, `project` and `className` are set by the operator.
    #[serde(default)]
    pub spec: Map<String, Value>,
}

/// Label with the repository (`owner.name`, lowercased; hashed when too long for a label).
pub const REPOSITORY_LABEL: &str = "switchyard.dev/github-repository";
/// Label with the pull request number.
pub const PULL_REQUEST_LABEL: &str = "switchyard.dev/github-pull-request";
/// Annotation with the repository exactly as GitHub spells it.
pub const REPOSITORY_ANNOTATION: &str = "switchyard.dev/github-repository";
/// Field manager of what the GitHub integration writes to PreviewEnvironment specs.
pub const FIELD_MANAGER: &str = "switchyard-github";

/// Spec fields the operator fills from the pull request; a template must not set them.
const OPERATOR_FIELDS: [&str; 6] = ["repository", "pullRequest", "branch", "headSha", "project", "className"];

fn short_hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..4])
}

/// `<owner>-<name>-pr-<number>`, lowercased. When lowercasing and replacing the `/` does
/// not say it all (dots, underscores) or the name would pass 63 characters, a hash of
/// the exact name keeps it unique: `<shortened>-<8 hex>-pr-<number>`.
pub fn environment_name(repository: &str, number: u64) -> String {
    let suffix = format!("-pr-{number}");
    let lower = repository.to_ascii_lowercase();
    let plain = lower.replace('/', "-");
    if dns::is_label(&plain) && plain.len() + suffix.len() <= 63 {
        return format!("{plain}{suffix}");
    }
    let hash = short_hash(&lower);
    let room = 63 - suffix.len() - hash.len() - 1;
    let label = dns::to_label(&plain);
    let prefix: String = label.chars().take(room).collect();
    let prefix = prefix.trim_end_matches('-');
    if prefix.is_empty() { format!("{hash}{suffix}") } else { format!("{prefix}-{hash}{suffix}") }
}

/// The repository label's value: `owner.name` lowercased, or shortened with a hash.
pub fn repository_label(repository: &str) -> String {
    let value = repository.to_ascii_lowercase().replace('/', ".");
    let valid = |v: &str| {
        v.len() <= 63
            && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    if valid(&value) {
        return value;
    }
    let hash = short_hash(&repository.to_ascii_lowercase());
    let prefix: String = value.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(54).collect();
    let prefix = prefix.trim_matches('-');
    if prefix.is_empty() { hash } else { format!("{prefix}-{hash}") }
}

/// Labels every pull request environment carries.
pub fn labels(repository: &str, number: u64) -> BTreeMap<String, String> {
    BTreeMap::from([
        (REPOSITORY_LABEL.to_string(), repository_label(repository)),
        (PULL_REQUEST_LABEL.to_string(), number.to_string()),
    ])
}

/// The spec for pull request `number` of `repository` at `pr`'s head, from `template`.
pub fn build_spec(
    template: &RepositoryTemplate,
    repository: &str,
    number: u64,
    pr: &PullRequestFacts,
) -> Result<PreviewEnvironmentSpec, String> {
    let mut spec = template.spec.clone();
    spec.insert("repository".into(), json!(repository));
    spec.insert("pullRequest".into(), json!(number));
    spec.insert("branch".into(), json!(pr.head_ref));
    spec.insert("headSha".into(), json!(pr.head_sha));
    spec.insert("project".into(), json!(template.project));
    if let Some(class) = &template.class_name {
        spec.insert("className".into(), json!(class));
    }
    serde_json::from_value(Value::Object(spec)).map_err(|e| e.to_string())
}

/// Keys of `value` the CRD schema does not know, as dotted paths.
fn unknown_fields(value: &Value, schema: &JSONSchemaProps, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let Some(properties) = &schema.properties else { return };
            for (key, v) in map {
                let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match properties.get(key) {
                    Some(sub) => unknown_fields(v, sub, &here, out),
                    None => out.push(here),
                }
            }
        }
        Value::Array(items) => {
            use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray;
            if let Some(JSONSchemaPropsOrArray::Schema(item)) = &schema.items {
                for (i, v) in items.iter().enumerate() {
                    unknown_fields(v, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

fn spec_schema() -> Option<JSONSchemaProps> {
    let crd = PreviewEnvironment::crd();
    let version = crd.spec.versions.into_iter().next()?;
    let root = version.schema?.open_api_v3_schema?;
    root.properties?.remove("spec")
}

/// Everything wrong with `template`, each naming its key (relative to the template).
pub fn template_problems(template: &RepositoryTemplate) -> Vec<String> {
    let mut out = Vec::new();
    let (owner, name) = template.repository.split_once('/').unwrap_or(("", ""));
    let owner_ok = (1..=39).contains(&owner.len())
        && owner.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !owner.starts_with('-');
    let name_ok =
        (1..=100).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !owner_ok || !name_ok {
        out.push(format!("repository: {:?} must be owner/name", template.repository));
    }
    if !dns::is_label(&template.namespace) {
        out.push(format!("namespace: {:?} must be a DNS label", template.namespace));
    }
    let project_ok = template.project.len() <= 40
        && template.project.starts_with(|c: char| c.is_ascii_lowercase())
        && template.project.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !project_ok {
        out.push(format!(
            "project: {:?} must be lowercase letters, digits and '_', start with a letter, at most 40",
            template.project
        ));
    }
    if let Some(class) = &template.class_name
        && !(class.len() <= 253 && class.split('.').all(dns::is_label))
    {
        out.push(format!("className: {class:?} must be a PreviewClass name"));
    }
    for field in OPERATOR_FIELDS {
        if template.spec.contains_key(field) {
            out.push(format!("spec.{field}: set by the operator from the pull request; remove it"));
        }
    }
    if let Some(schema) = spec_schema() {
        let mut unknown = Vec::new();
        unknown_fields(&Value::Object(template.spec.clone()), &schema, "", &mut unknown);
        out.extend(unknown.into_iter().map(|path| format!("spec.{path}: not a PreviewEnvironment spec field")));
    }
    let sample = PullRequestFacts {
        open: true,
        merged: false,
        head_sha: "0".repeat(40),
        head_ref: "main".into(),
        from_fork: false,
    };
    let operator_free: Map<String, Value> = template
        .spec
        .iter()
        .filter(|(k, _)| !OPERATOR_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let cleaned = RepositoryTemplate { spec: operator_free, ..template.clone() };
    if let Err(e) = build_spec(&cleaned, "owner/name", 1, &sample) {
        out.push(format!("spec: {e}"));
    }
    out
}

/// Templates whose environments would get the same names in the same namespace.
pub fn name_collisions(templates: &[RepositoryTemplate]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, a) in templates.iter().enumerate() {
        for (j, b) in templates.iter().enumerate().skip(i + 1) {
            if a.namespace == b.namespace
                && !a.repository.eq_ignore_ascii_case(&b.repository)
                && environment_name(&a.repository, 1) == environment_name(&b.repository, 1)
            {
                out.push((i, j));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(spec: Value) -> RepositoryTemplate {
        RepositoryTemplate {
            repository: "Codertocat/Hello-World".into(),
            namespace: "previews".into(),
            project: "hello".into(),
            class_name: Some("team-a".into()),
            spec: spec.as_object().cloned().unwrap_or_default(),
        }
    }

    fn head() -> PullRequestFacts {
        PullRequestFacts {
            open: true,
            merged: false,
            head_sha: "ec26c3e57ca3a959ca5aad62de7213c562f8c821".into(),
            head_ref: "changes".into(),
            from_fork: false,
        }
    }

    #[test]
    fn names_are_readable_when_they_can_be_and_unique_always() {
        assert_eq!(environment_name("Codertocat/Hello-World", 2), "codertocat-hello-world-pr-2");
        let dotted = environment_name("acme/shop.web", 2);
        let dashed = environment_name("acme/shop-web", 2);
        assert_ne!(dotted, dashed);
        assert!(dotted.starts_with("acme-shop-web-") && dotted.ends_with("-pr-2"), "{dotted}");
        let long = environment_name(&format!("acme/{}", "x".repeat(100)), 123456);
        assert!(dns::is_label(&long), "{long}");
        assert_ne!(long, environment_name(&format!("acme/{}y", "x".repeat(99)), 123456));
        assert_eq!(environment_name("A/B", 1), environment_name("a/b", 1), "GitHub names are case-insensitive");
    }

    #[test]
    fn labels_are_valid_label_values() {
        assert_eq!(repository_label("Codertocat/Hello-World"), "codertocat.hello-world");
        let long = repository_label(&format!("acme/{}", "y".repeat(100)));
        assert!(long.len() <= 63 && long.ends_with(|c: char| c.is_ascii_alphanumeric()), "{long}");
        assert_eq!(labels("o/r", 5)[PULL_REQUEST_LABEL], "5");
    }

    #[test]
    fn spec_merges_the_template_with_the_pull_request() {
        let t = template(json!({
            "domainTemplate": "pr-{number}.preview.example.com",
            "site": {"phpVersion": "php83"},
        }));
        let spec = build_spec(&t, "Codertocat/Hello-World", 2, &head()).unwrap();
        assert_eq!(spec.repository, "Codertocat/Hello-World");
        assert_eq!(spec.pull_request, 2);
        assert_eq!(spec.branch, "changes");
        assert_eq!(spec.head_sha.as_deref(), Some("ec26c3e57ca3a959ca5aad62de7213c562f8c821"));
        assert_eq!(spec.project, "hello");
        assert_eq!(spec.class_name.as_deref(), Some("team-a"));
        assert_eq!(spec.site.php_version, "php83");
        assert_eq!(spec.domain_template.as_deref(), Some("pr-{number}.preview.example.com"));
    }

    #[test]
    fn templates_that_set_operator_fields_misspell_keys_or_have_bad_types_are_refused() {
        assert!(template_problems(&template(json!({"site": {"phpVersion": "php84"}}))).is_empty());
        let problems = template_problems(&template(json!({
            "branch": "main", "className": "other", "forge": {"serverId": 3}, "domainTemplat": "x", "site": {"phpVersions": "php84"},
        })));
        for key in ["spec.branch", "spec.className", "spec.forge", "spec.domainTemplat", "spec.site.phpVersions"] {
            assert!(problems.iter().any(|p| p.starts_with(key)), "missing {key} in {problems:?}");
        }
        let typed = template_problems(&template(json!({"workers": "many"})));
        assert!(typed.iter().any(|p| p.starts_with("spec: ")), "{typed:?}");
        let bad = RepositoryTemplate {
            repository: "no-slash".into(),
            namespace: "Previews".into(),
            project: "9x".into(),
            class_name: Some("Not_A_Name".into()),
            ..template(json!({}))
        };
        let problems = template_problems(&bad);
        for key in ["repository", "namespace", "project", "className"] {
            assert!(problems.iter().any(|p| p.starts_with(key)), "missing {key} in {problems:?}");
        }
    }

    #[test]
    fn colliding_names_in_one_namespace_are_found() {
        let a = template(json!({}));
        let b = RepositoryTemplate { repository: "codertocat-hello/world".into(), ..template(json!({})) };
        assert_eq!(name_collisions(&[a.clone(), b.clone()]), vec![(0, 1)]);
        let elsewhere = RepositoryTemplate { namespace: "other".into(), ..b };
        assert!(name_collisions(&[a, elsewhere]).is_empty());
    }
}
