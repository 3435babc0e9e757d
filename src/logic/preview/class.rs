//! What a PreviewClass allows, free of I/O: which class an environment uses, whether
//! its namespace may use it, whether what the tenant chose is within the class's
//! rules, and the effective spec (the tenant's choices with the class's settings and
//! defaults filled in) that the reconcile works from.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::api::preview_class::{Isolation, PreviewClass, PreviewClassSpec};
use crate::api::preview_environment::PreviewEnvironmentSpec;
use crate::logic::duration;

/// A rule of the class that the environment breaks; `reason` is the Stalled reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub reason: &'static str,
    pub message: String,
}

fn violation(reason: &'static str, message: impl Into<String>) -> Violation {
    Violation { reason, message: message.into() }
}

/// The class an environment uses: the one recorded at its first reconcile, else
/// the one it names, else the single default class.
pub fn select<'a>(
    recorded: Option<&str>,
    named: Option<&str>,
    classes: &'a [PreviewClass],
) -> Result<&'a PreviewClass, Violation> {
    use kube::ResourceExt;
    if let Some(name) = recorded.or(named) {
        return classes.iter().find(|c| c.name_any() == name).ok_or_else(|| {
            violation("ClassNotFound", format!("spec.className: no PreviewClass named {name}; ask a platform admin"))
        });
    }
    let defaults: Vec<&PreviewClass> = classes.iter().filter(|c| c.is_default()).collect();
    match defaults.as_slice() {
        [one] => Ok(one),
        [] => Err(violation(
            "NoDefaultClass",
            "spec.className is unset and no PreviewClass is annotated switchyard.dev/is-default-class: \"true\"",
        )),
        many => {
            let mut names: Vec<String> = many.iter().map(|c| c.name_any()).collect();
            names.sort();
            Err(violation(
                "MultipleDefaultClasses",
                format!(
                    "spec.className is unset and {} PreviewClasses are marked default ({}); a platform admin must keep one",
                    names.len(),
                    names.join(", ")
                ),
            ))
        }
    }
}

/// Whether `selector` matches `labels` (Kubernetes semantics: an empty selector
/// matches everything; an unknown operator matches nothing).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_label = selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let by_expression = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    by_label && by_expression
}

/// Whether environments in `namespace` (with `labels`) may use the class.
pub fn namespace_allowed(class: &PreviewClassSpec, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
    class.namespaces.iter().any(|n| n == namespace)
        || class.namespace_selector.as_ref().is_some_and(|s| selector_matches(s, labels))
}

/// The spec the reconcile works from: `spec` checked against `class` (named
/// `class_name`) and completed with the class's settings. Every broken rule names
/// the field.
pub fn effective_spec(
    class_name: &str,
    class: &PreviewClassSpec,
    namespace: &str,
    namespace_labels: &BTreeMap<String, String>,
    spec: &PreviewEnvironmentSpec,
) -> Result<PreviewEnvironmentSpec, Violation> {
    if !namespace_allowed(class, namespace, namespace_labels) {
        return Err(violation(
            "ClassNotAllowed",
            format!("spec.className: PreviewClass {class_name} may not be used in namespace {namespace}"),
        ));
    }
    let mut out = spec.clone();
    let php = &spec.site.php_version;
    if !class.site.php_versions.is_empty() && !class.site.php_versions.contains(php) {
        return Err(violation(
            "PhpVersionNotAllowed",
            format!(
                "spec.site.phpVersion: {php} is not allowed by PreviewClass {class_name} (allowed: {})",
                class.site.php_versions.join(", ")
            ),
        ));
    }
    if class.site.isolation == Isolation::Required && !spec.site.isolated {
        return Err(violation(
            "IsolationRequired",
            format!("spec.site.isolated: PreviewClass {class_name} requires isolated sites"),
        ));
    }
    if out.site.web_directory.is_none() {
        out.site.web_directory = Some(class.site.web_directory.clone().unwrap_or_else(|| "/public".into()));
    }
    match (&spec.deploy.script, class.deploy.allow_custom_script) {
        (Some(_), false) => {
            return Err(violation(
                "CustomScriptNotAllowed",
                format!("spec.deploy.script: PreviewClass {class_name} does not allow custom deploy scripts"),
            ));
        }
        (Some(_), true) => {}
        (None, _) => out.deploy.script = class.deploy.script.clone(),
    }
    if let Some(db) = &spec.database {
        if let Some(snapshot) = &db.snapshot
            && !class.database.snapshots.contains(snapshot)
        {
            return Err(violation(
                "SnapshotNotAllowed",
                format!("spec.database.snapshot: {snapshot} is not a snapshot PreviewClass {class_name} offers"),
            ));
        }
        if !class.database.strategies.is_empty() && !class.database.strategies.contains(&db.strategy) {
            return Err(violation(
                "StrategyNotAllowed",
                format!("spec.database.strategy: {:?} is not allowed by PreviewClass {class_name}", db.strategy),
            ));
        }
    }
    if let Some(redis) = &mut out.redis {
        match (&redis.pool, &class.redis.pool) {
            (_, None) => {
                return Err(violation(
                    "RedisNotOffered",
                    format!("spec.redis: PreviewClass {class_name} offers no Redis pool"),
                ));
            }
            (Some(mine), Some(theirs)) if mine != theirs => {
                return Err(violation(
                    "RedisPoolNotAllowed",
                    format!("spec.redis.pool: {mine} is not the pool of PreviewClass {class_name} ({theirs})"),
                ));
            }
            (_, Some(theirs)) => redis.pool = Some(theirs.clone()),
        }
    }
    if out.domain.is_none() && out.domain_template.is_none() {
        out.domain_template = class.domain.template.clone();
    }
    if out.ttl.is_none() {
        out.ttl = class.limits.default_ttl.clone();
    }
    if let (Some(ttl), Some(max)) = (&out.ttl, &class.limits.max_ttl) {
        let parse = |t: &str| duration::parse(t).unwrap_or(Duration::MAX);
        if parse(ttl) > parse(max) {
            return Err(violation(
                "TtlTooLong",
                format!("spec.ttl: {ttl} is longer than the {max} PreviewClass {class_name} allows"),
            ));
        }
    }
    Ok(out)
}

/// Whether the class lets an environment have `domain`.
pub fn domain_allowed(class_name: &str, class: &PreviewClassSpec, domain: &str) -> Result<(), Violation> {
    let suffixes = &class.domain.allowed_suffixes;
    let under = |suffix: &String| {
        let suffix = suffix.trim_start_matches('.');
        domain == suffix || domain.strip_suffix(suffix).is_some_and(|head| head.ends_with('.'))
    };
    if suffixes.is_empty() || suffixes.iter().any(under) {
        return Ok(());
    }
    Err(violation(
        "DomainNotAllowed",
        format!(
            "spec.domain: {domain} does not end with a suffix PreviewClass {class_name} allows ({})",
            suffixes.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests;
