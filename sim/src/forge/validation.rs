//! Forge's validation rules, with Laravel's message wording, as pure functions.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Field name → messages, exactly the `errors` object of a Laravel 422.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// Longest database (schema) name Forge accepts.
pub const MAX_DATABASE_NAME: usize = 63;
/// Longest database user name Forge accepts.
pub const MAX_DATABASE_USER: usize = 32;
/// Longest isolated site user name Forge accepts.
pub const MAX_ISOLATED_USER: usize = 32;
/// Isolated user names Forge refuses.
pub const RESERVED_USERS: &[&str] =
    &["forge", "root", "www-data", "mysql", "redis", "backup", "admin", "nobody", "isolated"];

pub const SITE_TYPES: &[&str] = &[
    "laravel",
    "symfony",
    "statamic",
    "wordpress",
    "phpmyadmin",
    "php",
    "nextjs",
    "nuxtjs",
    "static-html",
    "other",
    "custom",
];
pub const PHP_VERSIONS: &[&str] = &[
    "php5",
    "php56-old",
    "php56",
    "php70",
    "php71",
    "php72",
    "php73",
    "php74",
    "php80",
    "php81",
    "php82",
    "php83",
    "php84",
    "php85",
];
pub const DOMAIN_MODES: &[&str] = &["on-forge", "custom"];
pub const WWW_REDIRECT_TYPES: &[&str] = &["from-www", "to-www", "none"];
pub const SOURCE_CONTROL_PROVIDERS: &[&str] = &["github", "gitlab", "bitbucket", "gitlab-custom", "custom"];
pub const JOB_FREQUENCIES: &[&str] = &["minutely", "hourly", "nightly", "weekly", "monthly", "reboot", "custom"];
pub const CERTIFICATE_TYPES: &[&str] = &["letsencrypt", "csr", "existing", "clone"];

/// Laravel shows `isolated_user` as "isolated user" in messages.
fn label(field: &str) -> String {
    field.replace('_', " ")
}

/// Reads a JSON request body field by field and collects Laravel-style errors.
pub struct Input<'a> {
    body: &'a Map<String, Value>,
    errors: FieldErrors,
}

impl<'a> Input<'a> {
    pub fn new(body: &'a Map<String, Value>) -> Self {
        Self { body, errors: FieldErrors::new() }
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.entry(field.to_string()).or_default().push(message.into());
    }

    pub fn has_error(&self, field: &str) -> bool {
        self.errors.contains_key(field)
    }

    fn present(&self, field: &str) -> Option<&'a Value> {
        match self.body.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(v) => Some(v),
        }
    }

    pub fn is_present(&self, field: &str) -> bool {
        self.present(field).is_some()
    }

    pub fn string(&mut self, field: &str, required: bool) -> Option<String> {
        match self.present(field) {
            None => {
                if required {
                    self.error(field, format!("The {} field is required.", label(field)));
                }
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.error(field, format!("The {} field must be a string.", label(field)));
                None
            }
        }
    }

    pub fn string_max(&mut self, field: &str, required: bool, max: usize) -> Option<String> {
        let s = self.string(field, required)?;
        if s.chars().count() > max {
            self.error(field, format!("The {} field must not be greater than {max} characters.", label(field)));
            return None;
        }
        Some(s)
    }

    pub fn one_of(&mut self, field: &str, required: bool, allowed: &[&str]) -> Option<String> {
        let s = self.string(field, required)?;
        if !allowed.contains(&s.as_str()) {
            self.error(field, format!("The selected {} is invalid.", label(field)));
            return None;
        }
        Some(s)
    }

    pub fn boolean(&mut self, field: &str, required: bool) -> Option<bool> {
        match self.body.get(field) {
            None | Some(Value::Null) => {
                if required {
                    self.error(field, format!("The {} field is required.", label(field)));
                }
                None
            }
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::Number(n)) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => Some(n.as_u64() == Some(1)),
            Some(_) => {
                self.error(field, format!("The {} field must be true or false.", label(field)));
                None
            }
        }
    }

    pub fn integer(&mut self, field: &str, required: bool, min: i64) -> Option<i64> {
        match self.body.get(field) {
            None | Some(Value::Null) => {
                if required {
                    self.error(field, format!("The {} field is required.", label(field)));
                }
                None
            }
            Some(Value::Number(n)) if n.as_i64().is_some() => {
                let v = n.as_i64().unwrap_or_default();
                if v < min {
                    self.error(field, format!("The {} field must be at least {min}.", label(field)));
                    return None;
                }
                Some(v)
            }
            Some(_) => {
                self.error(field, format!("The {} field must be an integer.", label(field)));
                None
            }
        }
    }

    pub fn string_list(&mut self, field: &str) -> Option<Vec<String>> {
        match self.body.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for item in items {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        _ => {
                            self.error(field, format!("The {} field must be an array of strings.", label(field)));
                            return None;
                        }
                    }
                }
                Some(out)
            }
            Some(_) => {
                self.error(field, format!("The {} field must be an array.", label(field)));
                None
            }
        }
    }

    pub fn id_list(&mut self, field: &str) -> Option<Vec<u64>> {
        match self.body.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let ids: Option<Vec<u64>> = items.iter().map(Value::as_u64).collect();
                if ids.is_none() {
                    self.error(field, format!("The {} field must be an array of integers.", label(field)));
                }
                ids
            }
            Some(_) => {
                self.error(field, format!("The {} field must be an array.", label(field)));
                None
            }
        }
    }

    pub fn object(&self, field: &str) -> Option<&'a Map<String, Value>> {
        self.body.get(field).and_then(Value::as_object)
    }

    pub fn finish(self) -> Result<(), FieldErrors> {
        if self.errors.is_empty() { Ok(()) } else { Err(self.errors) }
    }

    pub fn into_errors(self) -> FieldErrors {
        self.errors
    }
}

/// Laravel's `alpha_dash` (ASCII): letters, digits, `-` and `_`. Keeps identifiers safe to
/// quote and matches what Forge's database forms accept.
pub fn is_alpha_dash(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `^[a-z][-a-z0-9_]*$`
pub fn is_valid_isolated_user_syntax(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Database schema name rules (≤ 63, alpha-dash). `field` names the request key.
pub fn check_database_name(input: &mut Input<'_>, field: &str, name: &str) {
    if name.chars().count() > MAX_DATABASE_NAME {
        input.error(
            field,
            format!("The {} field must not be greater than {MAX_DATABASE_NAME} characters.", label(field)),
        );
    } else if !is_alpha_dash(name) {
        input.error(
            field,
            format!("The {} field must only contain letters, numbers, dashes, and underscores.", label(field)),
        );
    }
}

/// Database user name rules (≤ 32, alpha-dash).
pub fn check_database_user(input: &mut Input<'_>, field: &str, name: &str) {
    if name.chars().count() > MAX_DATABASE_USER {
        input.error(
            field,
            format!("The {} field must not be greater than {MAX_DATABASE_USER} characters.", label(field)),
        );
    } else if !is_alpha_dash(name) {
        input.error(
            field,
            format!("The {} field must only contain letters, numbers, dashes, and underscores.", label(field)),
        );
    }
}

/// Isolated site user rules (regex, ≤ 32, not reserved).
pub fn check_isolated_user(input: &mut Input<'_>, field: &str, name: &str) {
    if name.chars().count() > MAX_ISOLATED_USER {
        input.error(
            field,
            format!("The {} field must not be greater than {MAX_ISOLATED_USER} characters.", label(field)),
        );
    } else if !is_valid_isolated_user_syntax(name) {
        input.error(field, format!("The {} field format is invalid.", label(field)));
    } else if RESERVED_USERS.contains(&name) {
        input.error(field, format!("The {} is reserved.", label(field)));
    }
}

/// "has already been taken", as Laravel's `unique` rule says it.
pub fn taken(input: &mut Input<'_>, field: &str) {
    input.error(field, format!("The {} has already been taken.", label(field)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors_for(body: Value, f: impl FnOnce(&mut Input<'_>)) -> FieldErrors {
        let map = body.as_object().cloned().unwrap_or_default();
        let mut input = Input::new(&map);
        f(&mut input);
        input.into_errors()
    }

    #[test]
    fn database_name_longer_than_63_is_rejected() {
        let ok = "a".repeat(63);
        let long = "a".repeat(64);
        assert!(errors_for(json!({}), |i| check_database_name(i, "name", &ok)).is_empty());
        let errs = errors_for(json!({}), |i| check_database_name(i, "name", &long));
        assert_eq!(errs["name"], vec!["The name field must not be greater than 63 characters."]);
    }

    #[test]
    fn database_user_longer_than_32_is_rejected() {
        assert!(errors_for(json!({}), |i| check_database_user(i, "name", &"u".repeat(32))).is_empty());
        assert!(errors_for(json!({}), |i| check_database_user(i, "name", &"u".repeat(33))).contains_key("name"));
    }

    #[test]
    fn database_identifiers_cannot_carry_quotes() {
        assert!(!errors_for(json!({}), |i| check_database_name(i, "name", "a`; DROP DATABASE x; --")).is_empty());
        assert!(!errors_for(json!({}), |i| check_database_user(i, "name", "a'@'%")).is_empty());
    }

    #[test]
    fn isolated_user_rules() {
        for ok in ["pr42", "a", "pr-42_app", &"a".repeat(32)] {
            assert!(errors_for(json!({}), |i| check_isolated_user(i, "isolated_user", ok)).is_empty(), "{ok}");
        }
        for bad in ["42pr", "Pr42", "-x", "pr.42", "", &"a".repeat(33)] {
            assert!(!errors_for(json!({}), |i| check_isolated_user(i, "isolated_user", bad)).is_empty(), "{bad}");
        }
        for reserved in RESERVED_USERS {
            let errs = errors_for(json!({}), |i| check_isolated_user(i, "isolated_user", reserved));
            assert_eq!(errs["isolated_user"], vec!["The isolated user is reserved."], "{reserved}");
        }
    }

    #[test]
    fn required_fields_are_named() {
        let errs = errors_for(json!({"type": "laravel", "name": ""}), |i| {
            i.string("name", true);
            i.one_of("type", true, SITE_TYPES);
            i.one_of("domain_mode", true, DOMAIN_MODES);
        });
        assert_eq!(errs["name"], vec!["The name field is required."]);
        assert_eq!(errs["domain_mode"], vec!["The domain mode field is required."]);
        assert!(!errs.contains_key("type"));
    }

    #[test]
    fn wrong_types_and_enums_are_reported() {
        let errs = errors_for(json!({"processes": 0, "user": "bob", "tags": [1]}), |i| {
            i.integer("processes", true, 1);
            i.one_of("user", true, &["root", "forge"]);
            i.string_list("tags");
        });
        assert_eq!(errs["processes"], vec!["The processes field must be at least 1."]);
        assert_eq!(errs["user"], vec!["The selected user is invalid."]);
        assert!(errs.contains_key("tags"));
    }
}
