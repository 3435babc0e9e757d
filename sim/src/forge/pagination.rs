//! Cursor pagination as Forge's API does it (`page[size]`, `page[cursor]`, `links`, `meta`).

use super::model::ApiError;
use super::render::{Rendered, dedupe};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Page size when `page[size]` is absent (D1) and the largest the sim accepts (UNCERTAIN upstream).
pub const DEFAULT_PAGE_SIZE: usize = 30;
pub const MAX_PAGE_SIZE: usize = 200;

#[derive(serde::Serialize, serde::Deserialize)]
struct Cursor {
    id: u64,
    #[serde(rename = "_pointsToNextItems")]
    next: bool,
    offset: usize,
}

fn encode_cursor(c: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(c).unwrap_or_default())
}

fn decode_cursor(s: &str) -> Option<Cursor> {
    let bytes = URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// One page of already filtered and sorted items, Laravel cursor-paginator style.
pub struct PageSlice<T> {
    pub items: Vec<T>,
    pub per_page: usize,
    pub next_cursor: Option<String>,
    pub prev_cursor: Option<String>,
}

/// Cut `items` (sorted) into the page the query asks for.
pub fn paginate<T>(
    items: Vec<T>,
    id_of: impl Fn(&T) -> u64,
    query: &HashMap<String, String>,
) -> Result<PageSlice<T>, ApiError> {
    let per_page = match query.get("page[size]") {
        None => DEFAULT_PAGE_SIZE,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n >= 1 => n.min(MAX_PAGE_SIZE),
            _ => {
                let mut errors = super::validation::FieldErrors::new();
                errors
                    .insert("page.size".into(), vec!["The page.size field must be an integer greater than 0.".into()]);
                return Err(ApiError::Validation(errors));
            }
        },
    };
    let cursor = query.get("page[cursor]").filter(|c| !c.is_empty());
    let (start, end) = match cursor.map(|c| decode_cursor(c)) {
        None => (0, per_page),
        Some(None) => {
            let mut errors = super::validation::FieldErrors::new();
            errors.insert("page.cursor".into(), vec!["The page.cursor is invalid.".into()]);
            return Err(ApiError::Validation(errors));
        }
        Some(Some(c)) => {
            let pos = items.iter().position(|i| id_of(i) == c.id);
            if c.next {
                let start = pos.map(|p| p + 1).unwrap_or(c.offset);
                (start, start + per_page)
            } else {
                let end = pos.unwrap_or(c.offset);
                (end.saturating_sub(per_page), end)
            }
        }
    };
    let total = items.len();
    let start = start.min(total);
    let end = end.min(total);
    let next_cursor = (end < total && end > start)
        .then(|| encode_cursor(&Cursor { id: id_of(&items[end - 1]), next: true, offset: end }));
    let prev_cursor = (start > 0 && start < total)
        .then(|| encode_cursor(&Cursor { id: id_of(&items[start]), next: false, offset: start }));
    let items = items.into_iter().skip(start).take(end - start).collect();
    Ok(PageSlice { items, per_page, next_cursor, prev_cursor })
}

/// The list document for a page whose items were rendered by the caller.
pub fn list_document(path_url: &str, page: PageSlice<Rendered>, query: &HashMap<String, String>) -> Value {
    let link = |cursor: &Option<String>| -> Value {
        match cursor {
            Some(c) => {
                let mut q: Vec<(String, String)> = query
                    .iter()
                    .filter(|(k, _)| k.as_str() != "page[cursor]")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                q.sort();
                q.push(("page[cursor]".into(), c.clone()));
                let qs: Vec<String> = q.iter().map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v))).collect();
                Value::String(format!("{path_url}?{}", qs.join("&")))
            }
            None => Value::Null,
        }
    };
    let mut data = vec![];
    let mut included = vec![];
    for r in page.items {
        data.push(r.data);
        included.extend(r.included);
    }
    let mut doc = json!({
        "data": data,
        "links": {"first": null, "last": null, "prev": link(&page.prev_cursor), "next": link(&page.next_cursor)},
        "meta": {"path": path_url, "per_page": page.per_page, "next_cursor": page.next_cursor, "prev_cursor": page.prev_cursor}
    });
    if !included.is_empty() {
        doc["included"] = Value::Array(dedupe(included));
    }
    doc
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'[' | b']' | b',' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn cursor_pagination_walks_every_item_once() {
        let items: Vec<u64> = (1..=7).collect();
        let mut seen = vec![];
        let mut cursor: Option<String> = None;
        loop {
            let mut query = q(&[("page[size]", "3")]);
            if let Some(c) = &cursor {
                query.insert("page[cursor]".into(), c.clone());
            }
            let page = paginate(items.clone(), |i| *i, &query).unwrap();
            seen.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, items);
    }

    #[test]
    fn first_page_has_no_prev_and_last_has_no_next() {
        let first = paginate((1..=4).collect::<Vec<u64>>(), |i| *i, &q(&[("page[size]", "2")])).unwrap();
        assert!(first.prev_cursor.is_none());
        let next = first.next_cursor.unwrap();
        let last = paginate((1..=4).collect::<Vec<u64>>(), |i| *i, &q(&[("page[size]", "2"), ("page[cursor]", &next)]))
            .unwrap();
        assert_eq!(last.items, vec![3, 4]);
        assert!(last.next_cursor.is_none());
        let prev = last.prev_cursor.unwrap();
        let back = paginate((1..=4).collect::<Vec<u64>>(), |i| *i, &q(&[("page[size]", "2"), ("page[cursor]", &prev)]))
            .unwrap();
        assert_eq!(back.items, vec![1, 2]);
    }

    #[test]
    fn garbage_cursor_and_size_are_validation_errors() {
        assert!(paginate(vec![1u64], |i| *i, &q(&[("page[cursor]", "%%%")])).is_err());
        assert!(paginate(vec![1u64], |i| *i, &q(&[("page[size]", "0")])).is_err());
    }
}
