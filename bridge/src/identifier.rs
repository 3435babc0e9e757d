//! Instance identifiers (`code` / `code@tag`) and caller patterns (`code@*`).
//!
//! The grammar is the cross-distributor design's (distributor codes are written the
//! way the distributors name themselves, in mixed case), and the one the BridgeGrant
//! CRD enforces with CEL, so anything the API server accepted parses here:
//!
//! - code: `[a-zA-Z0-9]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9])?` (1–63 characters);
//! - tag: `[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?` (1–63 characters);
//! - no tag means the tag `default`;
//! - a caller pattern may use `*` as the whole tag (`shop@*`: any tag); a target may not;
//! - comparison is exact: `Shop` and `shop` are two distributors.
//!
//! `Display` always prints the canonical `code@tag` form (`shop` prints as
//! `shop@default`), so equal identifiers have equal strings and parsing what was
//! displayed gives back the same value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Tag of an identifier written without one.
pub const DEFAULT_TAG: &str = "default";

/// Longest code or tag, as in the CRD's CEL rules.
pub const MAX_PART_LEN: usize = 63;

/// One concrete instance: a target, or the caller named in a signed request.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identifier {
    code: String,
    tag: String,
}

/// The tag half of a caller pattern.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TagPattern {
    /// Exactly this tag.
    Exact(String),
    /// `*`: any tag.
    Any,
}

/// A caller allowed by a grant: `code`, `code@tag` or `code@*`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallerPattern {
    code: String,
    tag: TagPattern,
}

/// Which half of an identifier an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The part before `@`.
    Code,
    /// The part after `@`.
    Tag,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Code => "code",
            Part::Tag => "tag",
        })
    }
}

/// Why a string is not a valid identifier or caller pattern.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// Nothing at all.
    #[error("identifier is empty; expected code or code@tag")]
    Empty,
    /// `@` with nothing before or after it.
    #[error("{input:?}: {part} is empty; expected code or code@tag")]
    EmptyPart { input: String, part: Part },
    /// More than one `@`.
    #[error("{input:?}: more than one '@'; expected code or code@tag")]
    MultipleAt { input: String },
    /// Code or tag over 63 characters.
    #[error("{input:?}: {part} is {len} characters long; at most {MAX_PART_LEN} are allowed")]
    TooLong { input: String, part: Part, len: usize },
    /// A character outside the part's alphabet.
    #[error("{input:?}: {part} contains {found:?}; {}", allowed(*part))]
    InvalidChar { input: String, part: Part, found: char },
    /// `_`, `-` or `.` as the first or last character.
    #[error("{input:?}: {part} must start and end with a letter or digit")]
    BadEdge { input: String, part: Part },
    /// `code@*` where one instance must be named.
    #[error("{input:?}: a target names one instance; the wildcard tag '*' is allowed only for callers")]
    WildcardInTarget { input: String },
    /// `*` used as part of a tag, or anywhere in the code.
    #[error("{input:?}: '*' is allowed only as a whole tag, as in code@*")]
    PartialWildcard { input: String },
}

fn allowed(part: Part) -> &'static str {
    match part {
        Part::Code => "a code may contain letters, digits, '_' and '-'",
        Part::Tag => "a tag may contain letters, digits, '.', '_' and '-'",
    }
}

fn check_part(input: &str, part: Part, value: &str) -> Result<(), IdentifierError> {
    if value.is_empty() {
        return Err(IdentifierError::EmptyPart { input: input.into(), part });
    }
    if value.contains('*') {
        return Err(IdentifierError::PartialWildcard { input: input.into() });
    }
    let inner_ok = |c: char| match part {
        Part::Code => c.is_ascii_alphanumeric() || c == '_' || c == '-',
        Part::Tag => c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-',
    };
    if let Some(found) = value.chars().find(|&c| !inner_ok(c)) {
        return Err(IdentifierError::InvalidChar { input: input.into(), part, found });
    }
    let len = value.chars().count();
    if len > MAX_PART_LEN {
        return Err(IdentifierError::TooLong { input: input.into(), part, len });
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge_ok(value.chars().next()) || !edge_ok(value.chars().last()) {
        return Err(IdentifierError::BadEdge { input: input.into(), part });
    }
    Ok(())
}

/// Splits `code[@tag]` and checks the code; the tag is returned unchecked.
fn split(input: &str) -> Result<(&str, Option<&str>), IdentifierError> {
    if input.is_empty() {
        return Err(IdentifierError::Empty);
    }
    let (code, tag) = match input.split_once('@') {
        Some((_, tag)) if tag.contains('@') => {
            return Err(IdentifierError::MultipleAt { input: input.into() });
        }
        Some((code, tag)) => (code, Some(tag)),
        None => (input, None),
    };
    check_part(input, Part::Code, code)?;
    Ok((code, tag))
}

impl Identifier {
    /// Parses a target or caller: `code` or `code@tag`; `*` is rejected.
    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let (code, tag) = split(input)?;
        let tag = match tag {
            None => DEFAULT_TAG,
            Some("*") => {
                return Err(IdentifierError::WildcardInTarget { input: input.into() });
            }
            Some(tag) => {
                check_part(input, Part::Tag, tag)?;
                tag
            }
        };
        Ok(Self { code: code.into(), tag: tag.into() })
    }

    /// The instance's code (the part before `@`).
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The instance's tag (`default` when none was written).
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

impl CallerPattern {
    /// Parses `code`, `code@tag` or `code@*`.
    pub fn parse(input: &str) -> Result<Self, IdentifierError> {
        let (code, tag) = split(input)?;
        let tag = match tag {
            None => TagPattern::Exact(DEFAULT_TAG.into()),
            Some("*") => TagPattern::Any,
            Some(tag) => {
                check_part(input, Part::Tag, tag)?;
                TagPattern::Exact(tag.into())
            }
        };
        Ok(Self { code: code.into(), tag })
    }

    /// The callers' code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The callers' tag, or any tag.
    pub fn tag(&self) -> &TagPattern {
        &self.tag
    }

    /// Whether `caller` is one of the instances this pattern names.
    pub fn matches(&self, caller: &Identifier) -> bool {
        self.code == caller.code
            && match &self.tag {
                TagPattern::Any => true,
                TagPattern::Exact(tag) => *tag == caller.tag,
            }
    }
}

/// Whether `caller` is one of the instances `pattern` names.
pub fn matches(pattern: &CallerPattern, caller: &Identifier) -> bool {
    pattern.matches(caller)
}

impl From<Identifier> for CallerPattern {
    fn from(id: Identifier) -> Self {
        Self { code: id.code, tag: TagPattern::Exact(id.tag) }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.code, self.tag)
    }
}

impl fmt::Display for TagPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagPattern::Exact(tag) => f.write_str(tag),
            TagPattern::Any => f.write_str("*"),
        }
    }
}

impl fmt::Display for CallerPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.code, self.tag)
    }
}

impl FromStr for Identifier {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl FromStr for CallerPattern {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

macro_rules! string_serde {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_serde!(Identifier);
string_serde!(CallerPattern);

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Identifier {
        Identifier::parse(s).unwrap()
    }

    fn pattern(s: &str) -> CallerPattern {
        CallerPattern::parse(s).unwrap()
    }

    #[test]
    fn code_without_tag_gets_the_default_tag() {
        let shop = id("shop");
        assert_eq!((shop.code(), shop.tag()), ("shop", "default"));
        assert_eq!(shop, id("shop@default"));
        assert_eq!(pattern("shop"), pattern("shop@default"));
    }

    #[test]
    fn accepts_every_form_the_crd_accepts() {
        for ok in
            ["a", "0", "shop", "my_shop-2", "shop@prod", "shop@Prod.2024_a-b", "a@B", "MyShop@EU", &"x".repeat(63)]
        {
            assert!(Identifier::parse(ok).is_ok(), "{ok:?}");
            assert!(CallerPattern::parse(ok).is_ok(), "{ok:?}");
        }
        let longest = format!("{}@{}", "c".repeat(63), "T".repeat(63));
        assert_eq!(id(&longest).to_string(), longest);
        assert_eq!(pattern("shop@*").tag(), &TagPattern::Any);
    }

    #[test]
    fn display_is_canonical_and_round_trips() {
        for (input, canonical) in [("shop", "shop@default"), ("shop@prod", "shop@prod"), ("a-b@X.1", "a-b@X.1")] {
            assert_eq!(id(input).to_string(), canonical);
            assert_eq!(id(canonical), id(input));
        }
        for (input, canonical) in [("shop", "shop@default"), ("shop@*", "shop@*"), ("shop@v1", "shop@v1")] {
            assert_eq!(pattern(input).to_string(), canonical);
            assert_eq!(pattern(canonical), pattern(input));
        }
    }

    #[test]
    fn each_invalid_form_has_its_own_error_naming_the_problem() {
        use IdentifierError as E;
        type IsExpected = fn(&IdentifierError) -> bool;
        let cases: Vec<(&str, IsExpected, &str)> = vec![
            ("", |e| matches!(e, E::Empty), "empty"),
            ("@prod", |e| matches!(e, E::EmptyPart { part: Part::Code, .. }), "code is empty"),
            ("shop@", |e| matches!(e, E::EmptyPart { part: Part::Tag, .. }), "tag is empty"),
            ("shop@a@b", |e| matches!(e, E::MultipleAt { .. }), "more than one '@'"),
            ("sh.op", |e| matches!(e, E::InvalidChar { part: Part::Code, found: '.', .. }), "letters, digits"),
            ("shop@pr od", |e| matches!(e, E::InvalidChar { part: Part::Tag, found: ' ', .. }), "tag contains ' '"),
            ("shop@prød", |e| matches!(e, E::InvalidChar { part: Part::Tag, found: 'ø', .. }), "tag contains"),
            ("-shop", |e| matches!(e, E::BadEdge { part: Part::Code, .. }), "start and end"),
            ("shop_", |e| matches!(e, E::BadEdge { part: Part::Code, .. }), "start and end"),
            ("shop@.prod", |e| matches!(e, E::BadEdge { part: Part::Tag, .. }), "tag must start"),
            ("shop@prod-", |e| matches!(e, E::BadEdge { part: Part::Tag, .. }), "tag must start"),
            ("shop@pr*", |e| matches!(e, E::PartialWildcard { .. }), "whole tag"),
            ("shop@**", |e| matches!(e, E::PartialWildcard { .. }), "whole tag"),
            ("*", |e| matches!(e, E::PartialWildcard { .. }), "whole tag"),
            ("*@prod", |e| matches!(e, E::PartialWildcard { .. }), "whole tag"),
        ];
        for (input, is_expected, message) in cases {
            for err in [Identifier::parse(input).unwrap_err(), CallerPattern::parse(input).unwrap_err()] {
                assert!(is_expected(&err), "{input:?}: unexpected {err:?}");
                assert!(err.to_string().contains(message), "{input:?}: {err} lacks {message:?}");
            }
        }
        let long_code = "c".repeat(64);
        let err = Identifier::parse(&long_code).unwrap_err();
        assert_eq!(err, E::TooLong { input: long_code, part: Part::Code, len: 64 });
        assert!(err.to_string().contains("code is 64 characters long"));
        let long_tag = format!("shop@{}", "t".repeat(64));
        assert!(matches!(CallerPattern::parse(&long_tag), Err(E::TooLong { part: Part::Tag, len: 64, .. })));
    }

    #[test]
    fn wildcard_tag_is_for_callers_only() {
        let err = Identifier::parse("shop@*").unwrap_err();
        assert_eq!(err, IdentifierError::WildcardInTarget { input: "shop@*".into() });
        assert!(err.to_string().contains("allowed only for callers"));
    }

    #[test]
    fn patterns_match_by_code_and_tag() {
        assert!(matches(&pattern("shop@*"), &id("shop@prod")));
        assert!(matches(&pattern("shop@*"), &id("shop")));
        assert!(matches(&pattern("shop@prod"), &id("shop@prod")));
        assert!(matches(&pattern("shop"), &id("shop@default")));
        assert!(!matches(&pattern("shop"), &id("shop@prod")));
        assert!(!matches(&pattern("shop@prod"), &id("shop@Prod")), "tags are case-sensitive");
        assert!(!matches(&pattern("shop@*"), &id("Shop@prod")), "codes are case-sensitive");
        assert!(!matches(&pattern("shop@*"), &id("shop2@prod")));
        assert!(!matches(&pattern("crm@prod"), &id("shop@prod")));
    }

    #[test]
    fn serde_uses_the_canonical_string() {
        assert_eq!(serde_json::to_string(&id("shop")).unwrap(), "\"shop@default\"");
        assert_eq!(serde_json::from_str::<CallerPattern>("\"crm@*\"").unwrap(), pattern("crm@*"));
        assert!(serde_json::from_str::<Identifier>("\"crm@*\"").is_err());
    }
}
