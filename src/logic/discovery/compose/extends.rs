//! `extends`: a service built on another one, in the same file or in `file:`, and the
//! paths compose files name relative to themselves.
//!
//! The base is resolved first (it may extend another), then merged under the service
//! as compose merges: mappings key by key with the service's own keys winning
//! (`environment` and `labels` in list form are read as mappings first, `depends_on`
//! lists as mappings of service names), sequences concatenated without duplicates,
//! scalars replaced. So the base's dependencies and environment are carried. A chain
//! longer than [`MAX_CHAIN`], a cycle, or a base that is not there is a problem of the
//! file; the service is then read without its base.

use std::borrow::Cow;

use serde_yaml::{Mapping, Value};

use super::{Document, scalar};

/// Longest `extends` chain followed.
pub const MAX_CHAIN: usize = 16;

/// The body of `name` with its `extends` chain merged in.
pub fn resolve<'a, 'b>(
    doc: &'a Document,
    label: &str,
    name: &str,
    body: &'b Mapping,
    lookup: &dyn Fn(&str) -> Option<&'a Document>,
) -> Result<Cow<'b, Mapping>, String> {
    if body.get("extends").is_none_or(Value::is_null) {
        return Ok(Cow::Borrowed(body));
    }
    let mut chain = vec![(label.to_string(), name.to_string())];
    Ok(Cow::Owned(resolved(doc, label, body, lookup, &mut chain)?))
}

fn resolved<'a>(
    doc: &'a Document,
    label: &str,
    body: &Mapping,
    lookup: &dyn Fn(&str) -> Option<&'a Document>,
    chain: &mut Vec<(String, String)>,
) -> Result<Mapping, String> {
    let Some(extends) = body.get("extends").filter(|v| !v.is_null()) else {
        return Ok(body.clone());
    };
    let me = chain.first().map(|(_, s)| s.clone()).unwrap_or_default();
    let (file, service) = match extends {
        Value::Mapping(m) => (m.get("file").and_then(scalar), m.get("service").and_then(scalar)),
        v => (None, scalar(v)),
    };
    let service = service.ok_or_else(|| format!("services.{me}.extends: no service named"))?;
    let (base_label, base_doc) = match file {
        None => (label.to_string(), doc),
        Some(file) => {
            let base_label = join(label, &file);
            let base_doc = lookup(&base_label).ok_or_else(|| {
                format!("services.{me}.extends: {base_label} is not among the repository's discovery sources")
            })?;
            (base_label, base_doc)
        }
    };
    let link = (base_label.clone(), service.clone());
    if chain.contains(&link) {
        chain.push(link);
        let path: Vec<String> =
            chain.iter().map(|(f, s)| if f == label { s.clone() } else { format!("{f}:{s}") }).collect();
        return Err(format!("services.{me}.extends: cycle {}", path.join(" -> ")));
    }
    if chain.len() >= MAX_CHAIN {
        return Err(format!("services.{me}.extends: chain longer than {MAX_CHAIN}"));
    }
    let base = base_doc
        .service(&service)
        .ok_or_else(|| format!("services.{me}.extends: {base_label} has no service {service}"))?;
    chain.push(link);
    let base = resolved(base_doc, &base_label, base, lookup, chain)?;
    let mut own = body.clone();
    own.shift_remove("extends");
    Ok(merge(base, own))
}

/// `own` over `base`, as compose merges an extended service.
fn merge(base: Mapping, own: Mapping) -> Mapping {
    let mut out = base;
    out.shift_remove("extends");
    for (key, value) in own {
        let field = key.as_str().unwrap_or_default().to_string();
        let merged = match out.shift_remove(&key) {
            None => value,
            Some(old) => merge_value(&field, old, value),
        };
        out.insert(key, merged);
    }
    out
}

fn merge_value(field: &str, base: Value, own: Value) -> Value {
    let as_map = |v: Value| match (field, v) {
        ("environment" | "labels", Value::Sequence(list)) => Value::Mapping(
            list.iter()
                .filter_map(scalar)
                .map(|item| {
                    let (k, v) = item.split_once('=').unwrap_or((&item, ""));
                    (Value::String(k.to_string()), Value::String(v.to_string()))
                })
                .collect(),
        ),
        ("depends_on", Value::Sequence(list)) => {
            Value::Mapping(list.into_iter().map(|s| (s, Value::Mapping(Mapping::new()))).collect())
        }
        (_, v) => v,
    };
    match (as_map(base), as_map(own)) {
        (Value::Mapping(base), Value::Mapping(own)) => Value::Mapping(merge(base, own)),
        (Value::Sequence(mut base), Value::Sequence(own)) if field != "command" && field != "entrypoint" => {
            for item in own {
                if !base.contains(&item) {
                    base.push(item);
                }
            }
            Value::Sequence(base)
        }
        (_, own) => own,
    }
}

/// `path` relative to the directory of the file labelled `label`, normalised
/// (`./`, `..`); an absolute path stays as written, without its leading `/`.
pub fn join(label: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if let (false, Some((dir, _))) = (path.starts_with('/'), label.rsplit_once('/')) {
        parts.extend(dir.split('/').filter(|p| !p.is_empty()));
    }
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}
