//! Tolerant decoding of Forge's JSON:API documents. Tolerates what the contract marks
//! UNCERTAIN: ids as strings or numbers, `links` as `[]`, strings or `{href}`, missing
//! `meta`, null optional fields, either media type.

use super::error::ForgeError;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;

fn decode_err(message: impl Into<String>) -> ForgeError {
    ForgeError::Decode { message: message.into() }
}

/// Parse a body as JSON (ignores the content type: Forge may send either media type).
pub fn parse(body: &[u8]) -> Result<Value, ForgeError> {
    serde_json::from_slice(body).map_err(|e| decode_err(format!("invalid JSON: {e}")))
}

/// One resource object, typed attributes.
#[derive(Debug, Clone)]
pub struct Resource<A> {
    pub id: u64,
    pub kind: String,
    pub attributes: A,
    pub relationships: Value,
}

/// JSON:API ids are strings (`"123"`); accept numbers too.
pub fn parse_id(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

pub fn resource<A: DeserializeOwned>(obj: &Value) -> Result<Resource<A>, ForgeError> {
    let id = parse_id(&obj["id"]).ok_or_else(|| decode_err("resource without a numeric id"))?;
    let attrs = match &obj["attributes"] {
        Value::Null => Value::Object(Default::default()),
        v => v.clone(),
    };
    let attributes = serde_json::from_value(attrs)
        .map_err(|e| decode_err(format!("{} {id}: {e}", obj["type"].as_str().unwrap_or("resource"))))?;
    Ok(Resource {
        id,
        kind: obj["type"].as_str().unwrap_or_default().to_string(),
        attributes,
        relationships: obj["relationships"].clone(),
    })
}

/// `{data: {...}}`.
pub fn single<A: DeserializeOwned>(doc: &Value) -> Result<Resource<A>, ForgeError> {
    match &doc["data"] {
        Value::Object(_) => resource(&doc["data"]),
        _ => Err(decode_err("expected a single resource in `data`")),
    }
}

/// The attributes of `{data:{attributes:{...}}}` for id-less documents (outputs, statuses).
pub fn attributes<A: DeserializeOwned>(doc: &Value) -> Result<A, ForgeError> {
    let attrs = match &doc["data"]["attributes"] {
        Value::Null => Value::Object(Default::default()),
        v => v.clone(),
    };
    serde_json::from_value(attrs).map_err(|e| decode_err(e.to_string()))
}

/// `included[]`, indexed by (type, id).
pub struct Included(HashMap<(String, u64), Value>);

impl Included {
    pub fn from_doc(doc: &Value) -> Self {
        let mut map = HashMap::new();
        if let Some(items) = doc["included"].as_array() {
            for item in items {
                if let (Some(t), Some(id)) = (item["type"].as_str(), parse_id(&item["id"])) {
                    map.insert((t.to_string(), id), item.clone());
                }
            }
        }
        Included(map)
    }

    pub fn get(&self, kind: &str, id: u64) -> Option<&Value> {
        self.0.get(&(kind.to_string(), id))
    }

    /// Names of the tags a resource's `relationships.tags` points to.
    pub fn tag_names(&self, relationships: &Value) -> Vec<String> {
        relationships["tags"]["data"]
            .as_array()
            .map(|refs| {
                refs.iter()
                    .filter_map(|r| parse_id(&r["id"]))
                    .filter_map(|id| self.get("tags", id))
                    .filter_map(|t| t["attributes"]["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One page of a cursor-paginated list.
pub struct Page {
    pub items: Vec<Value>,
    pub included: Included,
    pub next_cursor: Option<String>,
}

/// Reads `page[cursor]` back out of a `links.next` URL (string or `{href}`).
fn cursor_from_link(link: &Value) -> Option<String> {
    let href = match link {
        Value::String(s) => s.as_str(),
        Value::Object(o) => o.get("href")?.as_str()?,
        _ => return None,
    };
    let query = href.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        let k = k.replace("%5B", "[").replace("%5D", "]").replace("%5b", "[").replace("%5d", "]");
        (k == "page[cursor]").then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Paginate on `meta.next_cursor`; fall back to `links.next` when `meta` is absent.
pub fn page(doc: &Value) -> Result<Page, ForgeError> {
    let items = match &doc["data"] {
        Value::Array(items) => items.clone(),
        Value::Null => vec![],
        _ => return Err(decode_err("expected a list in `data`")),
    };
    let next_cursor = match doc["meta"].get("next_cursor") {
        Some(Value::String(c)) if !c.is_empty() => Some(c.clone()),
        Some(_) => None,
        None => cursor_from_link(&doc["links"]["next"]),
    };
    Ok(Page { items, included: Included::from_doc(doc), next_cursor })
}

/// A Laravel (`{message, errors{field:[..]}}`) or JSON:API (`{errors:[{detail,title,source}]}`)
/// error body, as `(message, field errors)`.
pub fn error_body(body: &[u8]) -> (String, std::collections::BTreeMap<String, Vec<String>>) {
    let mut errors = std::collections::BTreeMap::new();
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return (String::from_utf8_lossy(body).chars().take(200).collect(), errors);
    };
    let mut message = v["message"].as_str().unwrap_or_default().to_string();
    match &v["errors"] {
        Value::Object(map) => {
            for (field, msgs) in map {
                let list = match msgs {
                    Value::Array(a) => a.iter().filter_map(|m| m.as_str().map(str::to_string)).collect(),
                    Value::String(s) => vec![s.clone()],
                    _ => vec![],
                };
                errors.insert(field.clone(), list);
            }
        }
        Value::Array(items) => {
            for item in items {
                let text = item["detail"].as_str().or(item["title"].as_str()).unwrap_or_default().to_string();
                let field = item["source"]["pointer"]
                    .as_str()
                    .map(|p| p.trim_start_matches("/data/attributes/").trim_start_matches('/').replace('/', "."))
                    .or_else(|| item["source"]["parameter"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "general".into());
                if message.is_empty() {
                    message = text.clone();
                }
                errors.entry(field).or_insert_with(Vec::new).push(text);
            }
        }
        _ => {}
    }
    (message, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_as_strings_or_numbers() {
        assert_eq!(parse_id(&json!("42")), Some(42));
        assert_eq!(parse_id(&json!(42)), Some(42));
        assert_eq!(parse_id(&json!(null)), None);
    }

    #[test]
    fn pagination_tolerates_links_shapes() {
        let doc = json!({"data": [], "links": [], "meta": {"next_cursor": null}});
        assert!(page(&doc).unwrap().next_cursor.is_none());
        let doc = json!({"data": [], "links": {"next": "https://f/api/x?page%5Bsize%5D=3&page%5Bcursor%5D=abc%3D"}});
        assert_eq!(page(&doc).unwrap().next_cursor.as_deref(), Some("abc="));
        let doc = json!({"data": [], "links": {"next": {"href": "/api/x?page[cursor]=zz"}}});
        assert_eq!(page(&doc).unwrap().next_cursor.as_deref(), Some("zz"));
        let doc = json!({"data": [], "links": {"next": null}});
        assert!(page(&doc).unwrap().next_cursor.is_none());
    }

    #[test]
    fn both_error_shapes() {
        let (m, e) = error_body(br#"{"message":"The given data was invalid.","errors":{"name":["taken"]}}"#);
        assert_eq!(m, "The given data was invalid.");
        assert_eq!(e["name"], vec!["taken"]);
        let (m, e) = error_body(
            br#"{"errors":[{"title":"Invalid","detail":"name is bad","source":{"pointer":"/data/attributes/name"}}]}"#,
        );
        assert_eq!(m, "name is bad");
        assert_eq!(e["name"], vec!["name is bad"]);
        let (m, _) = error_body(b"<html>oops</html>");
        assert!(m.contains("oops"));
    }

    #[test]
    fn tags_are_joined_from_included() {
        let doc = json!({
            "data": {"id": "1", "type": "sites", "attributes": {}, "relationships": {"tags": {"data": [{"type": "tags", "id": "9"}]}}},
            "included": [{"id": "9", "type": "tags", "attributes": {"name": "preview"}}]
        });
        let inc = Included::from_doc(&doc);
        assert_eq!(inc.tag_names(&doc["data"]["relationships"]), vec!["preview"]);
    }
}
