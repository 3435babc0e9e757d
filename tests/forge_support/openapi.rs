//! Forge's published OpenAPI document as a validator of recorded HTTP exchanges: which
//! operation an exchange is, whether its query parameters are declared, whether its request
//! body and its answer match the schemas the document gives for them.

use super::recorder::Exchange;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const DOCUMENT: &str = include_str!("../testdata/forge-openapi/forge.openapi.json");

/// Where recorded live Forge differs from the document, the client must accept both, so the
/// simulator may answer either way. Every exception is listed here once, with its source
/// (codes as in docs/forge-api.md). The document file itself is never edited: these are
/// applied to the loaded copy.
pub const EXCEPTIONS: &[Exception] = &[
    Exception::Also {
        at: "DeploymentResource/attributes/started_at",
        kind: "null",
        source: "R2 phpdevkits/forge-sdk#24: queued deployments have null started_at",
    },
    Exception::Also {
        at: "DeploymentResource/attributes/ended_at",
        kind: "null",
        source: "R2 phpdevkits/forge-sdk#24: unfinished deployments have null ended_at",
    },
    Exception::Also {
        at: "DeploymentStatusResource/attributes/started_at",
        kind: "null",
        source: "R5 sebastiansulinski/laravel-forge-sdk 'null deployment status': nothing runs, nothing started",
    },
    Exception::Also {
        at: "SiteResource/attributes/aliases",
        kind: "null",
        source: "R2 phpdevkits/forge-sdk#23: freshly created sites return aliases null",
    },
    Exception::Also {
        at: "SiteResource/attributes/deployment_status",
        kind: "null",
        source: "R2 phpdevkits/forge-sdk#23: deployment_status is null when no deployment runs",
    },
    Exception::Also {
        at: "SiteResource/attributes/maintenance_mode/enabled",
        kind: "null",
        source: "R2 phpdevkits/forge-sdk#23: freshly created sites return maintenance_mode.enabled null",
    },
    Exception::Also {
        at: "SiteResource/attributes/php_version",
        kind: "string",
        source: "S1 types php_version null, S2 string (a generator artifact); live sites carry \"php84\" (R2)",
    },
    Exception::PaginationLinksNull {
        source: "D1 pagination: first/last are null on cursor pages, prev/next null at either end (Laravel's cursor paginator)",
    },
    Exception::Status {
        status: 401,
        source: "D1 Forge API introduction: a missing or invalid token is answered 401 {message}",
    },
    Exception::Status { status: 429, source: "D1 Forge API rate limiting: over 60 requests/minute is answered 429" },
];

/// One recorded departure from the document.
pub enum Exception {
    /// The property at `Schema/prop/prop…` (through `properties`) may also be of JSON type `kind`.
    Also { at: &'static str, kind: &'static str, source: &'static str },
    /// A paginated list's `links.first|last|prev|next` may be null.
    PaginationLinksNull { source: &'static str },
    /// Every operation may answer this status with `{message}`, though the document lists it nowhere.
    Status { status: u16, source: &'static str },
}

impl Exception {
    /// Where the departure is recorded.
    pub fn source(&self) -> &'static str {
        match self {
            Exception::Also { source, .. }
            | Exception::PaginationLinksNull { source }
            | Exception::Status { source, .. } => source,
        }
    }
}

fn also(schema: &mut Value, kind: &str) {
    *schema = json!({"anyOf": [schema.clone(), {"type": kind}]});
}

/// Every `links` object of a paginated answer in the document.
fn pagination_links(doc: &mut Value) -> Vec<&mut Value> {
    let mut found = vec![];
    for item in doc["paths"].as_object_mut().into_iter().flat_map(|p| p.values_mut()) {
        for op in item.as_object_mut().into_iter().flat_map(|o| o.values_mut()) {
            let Some(content) = op.pointer_mut("/responses/200/content") else { continue };
            for media in content.as_object_mut().into_iter().flat_map(|c| c.values_mut()) {
                if let Some(links) = media.pointer_mut("/schema/properties/links/properties")
                    && links.get("next").is_some()
                {
                    found.push(links);
                }
            }
        }
    }
    found
}

/// The loaded document with the exceptions applied.
pub struct Spec {
    doc: Value,
    /// Compiled validators by schema text: most exchanges share a handful of schemas.
    validators: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

/// An operation of the document: its method and path template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Operation {
    pub method: String,
    pub template: String,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.template)
    }
}

impl Spec {
    pub fn load() -> Spec {
        let mut doc: Value = serde_json::from_str(DOCUMENT).expect("the OpenAPI document is JSON");
        for e in EXCEPTIONS {
            match e {
                Exception::Also { at, kind, .. } => {
                    let (schema, props) = at.split_once('/').expect("Schema/property");
                    let p = format!("/components/schemas/{schema}/properties/{}", props.replace('/', "/properties/"));
                    also(doc.pointer_mut(&p).unwrap_or_else(|| panic!("exception names a missing property {p}")), kind);
                }
                Exception::PaginationLinksNull { .. } => {
                    let links = pagination_links(&mut doc);
                    assert!(!links.is_empty(), "the document has paginated answers");
                    for l in links {
                        for k in ["first", "last", "prev", "next"] {
                            also(&mut l[k], "null");
                        }
                    }
                }
                Exception::Status { .. } => {}
            }
        }
        Spec { doc, validators: Default::default() }
    }

    /// The operation a request path (below the API base) is, literal segments preferred.
    pub fn operation(&self, method: &str, path: &str) -> Option<Operation> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let method = method.to_ascii_lowercase();
        let mut best: Option<(usize, &str)> = None;
        for (template, item) in self.doc["paths"].as_object()? {
            if item.get(&method).is_none() {
                continue;
            }
            let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
            if parts.len() != segments.len() {
                continue;
            }
            let matches = parts.iter().zip(&segments).all(|(t, s)| t.starts_with('{') || t == s);
            let params = parts.iter().filter(|t| t.starts_with('{')).count();
            if matches && best.is_none_or(|(n, _)| params < n) {
                best = Some((params, template));
            }
        }
        best.map(|(_, t)| Operation { method: method.to_ascii_uppercase(), template: t.to_string() })
    }

    fn op(&self, op: &Operation) -> &Value {
        &self.doc["paths"][&op.template][op.method.to_ascii_lowercase()]
    }

    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => self.doc.pointer(r.trim_start_matches('#')).unwrap_or(&Value::Null),
            None => v,
        }
    }

    /// Every way the exchange departs from the document, as readable sentences.
    pub fn violations(&self, x: &Exchange) -> Vec<String> {
        let Some(op) = self.operation(&x.method, &x.path) else {
            return vec![format!("{} {}: no such operation in the document", x.method, x.path)];
        };
        let mut out = self.query_violations(&op, &x.query);
        out.extend(self.request_violations(&op, x.request.as_ref()));
        out.extend(self.response_violations(&op, x.status, x.response.as_ref()));
        out.into_iter().map(|v| format!("{op} (sent {} {}): {v}", x.method, x.path)).collect()
    }

    fn query_violations(&self, op: &Operation, query: &[(String, String)]) -> Vec<String> {
        let declared: BTreeMap<&str, &Value> = self.op(op)["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| self.resolve(p))
            .filter(|p| p["in"] == "query")
            .filter_map(|p| Some((p["name"].as_str()?, &p["schema"])))
            .collect();
        let mut out = vec![];
        for (name, value) in query {
            let Some(schema) = declared.get(name.as_str()) else {
                out.push(format!("query parameter `{name}` is not declared"));
                continue;
            };
            let instance = match schema["type"].as_str() {
                Some("array") => Value::from(value.split(',').map(str::to_string).collect::<Vec<_>>()),
                Some("integer") => value.parse::<i64>().map(Value::from).unwrap_or(Value::from(value.as_str())),
                _ => Value::from(value.as_str()),
            };
            out.extend(self.schema_errors(schema, &instance).into_iter().map(|e| format!("query `{name}`: {e}")));
        }
        out
    }

    fn request_violations(&self, op: &Operation, body: Option<&Value>) -> Vec<String> {
        let declared = self.resolve(&self.op(op)["requestBody"]);
        match (body, declared.is_null()) {
            (None, true) => vec![],
            (Some(b), true) => vec![format!("sends a body {b} where the document declares none")],
            (None, false) if declared["required"] == true => vec!["sends no body; the document requires one".into()],
            (None, false) => vec![],
            (Some(b), false) => {
                let schema = &declared["content"]["application/json"]["schema"];
                self.schema_errors(schema, b).into_iter().map(|e| format!("request body: {e}")).collect()
            }
        }
    }

    fn response_violations(&self, op: &Operation, status: u16, body: Option<&Value>) -> Vec<String> {
        let responses = &self.op(op)["responses"];
        let declared = match responses.get(status.to_string()) {
            Some(r) => self.resolve(r).clone(),
            None if EXCEPTIONS.iter().any(|e| matches!(e, Exception::Status { status: s, .. } if *s == status)) => {
                json!({"content": {"application/json": {"schema":
                    {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}}}})
            }
            None => return vec![format!("answers {status}, which the document does not list")],
        };
        let schema = declared["content"].as_object().and_then(|c| c.values().next()).map(|m| &m["schema"]);
        match (schema, body) {
            (None, None) => vec![],
            (None, Some(b)) => vec![format!("answers {status} with a body {b} where the document declares none")],
            (Some(_), None) => vec![format!("answers {status} without the body the document declares")],
            (Some(s), Some(b)) => {
                self.schema_errors(s, b).into_iter().map(|e| format!("{status} response: {e}")).collect()
            }
        }
    }

    /// JSON Schema 2020-12 errors of `instance` against `schema`, which may `$ref` into the document.
    pub fn schema_errors(&self, schema: &Value, instance: &Value) -> Vec<String> {
        // The document is the root resource, so `#/components/...` references resolve; its own
        // keys (`openapi`, `paths`, ...) are not JSON Schema keywords and are ignored.
        let validator = self.validator(schema);
        validator.iter_errors(instance).map(|e| format!("at `{}`: {e}", e.instance_path())).collect()
    }

    fn validator(&self, schema: &Value) -> std::sync::Arc<jsonschema::Validator> {
        let mut cache = self.validators.lock().expect("validator cache");
        let entry = cache.entry(schema.to_string()).or_insert_with(|| {
            let mut root = self.doc.clone();
            root.as_object_mut().expect("document is an object").insert("allOf".into(), json!([schema]));
            let built = jsonschema::options().with_draft(jsonschema::Draft::Draft202012).build(&root);
            std::sync::Arc::new(built.unwrap_or_else(|e| panic!("schema compiles: {e}")))
        });
        entry.clone()
    }
}
