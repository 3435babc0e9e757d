//! What every list endpoint shares: `filter[...]`, `sort=` and cursor pagination over
//! the world's records, answered the way spatie/laravel-query-builder does.

use crate::forge::api::{Api, ApiResult, ok};
use crate::forge::model::ApiError;
use crate::forge::pagination::{self, list_document, paginate};
use crate::forge::render::Rendered;
use chrono::SecondsFormat;
use std::cmp::Ordering;
use std::collections::HashMap;

pub(super) fn ts_key(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Applies `sort=a,-b` over the allowed fields (spatie/laravel-query-builder: unknown → 400).
pub(super) fn sort<T>(
    items: &mut [&T],
    query: &HashMap<String, String>,
    allowed: &[&str],
    key: impl Fn(&T, &str) -> String,
) -> Result<(), ApiError> {
    let Some(spec) = query.get("sort").filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let fields: Vec<(bool, &str)> =
        spec.split(',').map(|f| f.trim()).map(|f| (f.starts_with('-'), f.trim_start_matches('-'))).collect();
    if let Some((_, bad)) = fields.iter().find(|(_, f)| !allowed.contains(f)) {
        return Err(ApiError::BadRequest(format!(
            "Requested sort(s) `{bad}` is not allowed. Allowed sort(s) are `{}`.",
            allowed.join(", ")
        )));
    }
    items.sort_by(|a, b| {
        fields
            .iter()
            .map(|(desc, f)| {
                let o = key(a, f).cmp(&key(b, f));
                if *desc { o.reverse() } else { o }
            })
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    });
    Ok(())
}

/// `filter[field]`: names match partially and case-insensitively (the query builder's
/// default), everything else exactly. Clients must compare names themselves.
pub(super) fn filter<'a, T>(
    items: Vec<&'a T>,
    query: &HashMap<String, String>,
    allowed: &[&str],
    value: impl Fn(&T, &str) -> Option<String>,
) -> Result<Vec<&'a T>, ApiError> {
    let mut out = items;
    for (k, want) in query {
        let Some(field) = k.strip_prefix("filter[").and_then(|f| f.strip_suffix(']')) else {
            continue;
        };
        if !allowed.contains(&field) {
            return Err(ApiError::BadRequest(format!(
                "Requested filter(s) `{field}` are not allowed. Allowed filter(s) are `{}`.",
                allowed.join(", ")
            )));
        }
        let partial = field == "name" || field == "command" || field == "directory";
        out.retain(|item| match value(item, field) {
            Some(v) if partial => v.to_lowercase().contains(&want.to_lowercase()),
            Some(v) => want.split(',').any(|w| w == v),
            None => false,
        });
    }
    Ok(out)
}

pub(super) fn page_of<T>(
    api: &Api,
    items: Vec<&T>,
    id_of: impl Fn(&T) -> u64,
    render: impl Fn(&T) -> Rendered,
) -> ApiResult {
    let page = paginate(items, |i| id_of(i), &api.query)?;
    let rendered = pagination::PageSlice {
        items: page.items.into_iter().map(render).collect(),
        per_page: page.per_page,
        next_cursor: page.next_cursor,
        prev_cursor: page.prev_cursor,
    };
    ok(list_document(&api.list_url(), rendered, &api.query))
}
