//! Which Branch URLs the operator may talk to: https only unless the operator's config
//! allows plain http, never with user info, and, when the config lists patterns, only
//! URLs matching one. A namespace user writes `spec.url`; the operator sends probes and
//! keys there, so the platform team decides where that may be.

use url::Url;

/// The operator config's `branches:` policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Allow `http://` Branch URLs (keys then travel in clear text).
    pub allow_plain_http: bool,
    /// Allow `spec.tls.insecureSkipVerify: true`.
    pub allow_insecure_skip_verify: bool,
    /// When not empty, a Branch URL's `scheme://host[:port]` must match one of these
    /// (`*` matches any run of characters).
    pub allowed_urls: Vec<String>,
}

/// Why a URL is refused: a stable reason (the condition's) and a message naming the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub reason: &'static str,
    pub message: String,
}

impl Policy {
    /// `Ok` when the operator may send requests to `url`.
    pub fn check(&self, url: &str) -> Result<(), Violation> {
        let refuse = |reason, message: String| Err(Violation { reason, message });
        let Ok(parsed) = Url::parse(url) else {
            return refuse("URLInvalid", format!("{url:?} is not a URL"));
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return refuse("URLHasUserInfo", "the URL carries user info; keys belong in credentialsSecretRef".into());
        }
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_plain_http => {}
            "http" => {
                return refuse(
                    "PlainHTTPNotAllowed",
                    format!("{url} is plain http, which the operator config does not allow (branches.allowPlainHttp)"),
                );
            }
            other => return refuse("URLInvalid", format!("scheme {other:?} is neither https nor http")),
        }
        let Some(host) = parsed.host_str() else {
            return refuse("URLInvalid", format!("{url:?} names no host"));
        };
        let origin = match parsed.port() {
            Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
            None => format!("{}://{host}", parsed.scheme()),
        };
        if !self.allowed_urls.is_empty() && !self.allowed_urls.iter().any(|p| glob(p, &origin)) {
            return refuse(
                "URLNotAllowed",
                format!("{origin} matches none of the operator config's branches.allowedUrls"),
            );
        }
        Ok(())
    }

    /// `Ok` unless `insecureSkipVerify` is asked for and not allowed.
    pub fn check_insecure(&self, insecure_skip_verify: bool) -> Result<(), Violation> {
        if insecure_skip_verify && !self.allow_insecure_skip_verify {
            return Err(Violation {
                reason: "InsecureSkipVerifyNotAllowed",
                message: "spec.tls.insecureSkipVerify is not allowed by the operator config \
                          (branches.allowInsecureSkipVerify)"
                    .into(),
            });
        }
        Ok(())
    }
}

/// Problems of an `allowedUrls` pattern (for the config loader).
pub fn pattern_problem(pattern: &str) -> Option<String> {
    let rest = pattern.strip_prefix("https://").or_else(|| pattern.strip_prefix("http://"));
    match rest {
        None => Some(format!("{pattern:?} must start with https:// or http://")),
        Some(r) if r.is_empty() || r.contains(['/', '@', '?', '#']) => {
            Some(format!("{pattern:?} must be scheme://host[:port] (with `*` wildcards), no path or user info"))
        }
        Some(_) => None,
    }
}

/// `*` matches any run of characters (case-insensitive: hosts are).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.to_ascii_lowercase(), text.to_ascii_lowercase());
    let parts: Vec<&str> = p.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return p == t;
    }
    if !t.starts_with(first) || !t[first.len()..].ends_with(last) || t.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &t[first.len()..t.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_passes_plain_http_only_when_allowed_and_user_info_never() {
        let strict = Policy::default();
        assert!(strict.check("https://eu.example.com/base").is_ok());
        assert_eq!(strict.check("http://eu.example.com").unwrap_err().reason, "PlainHTTPNotAllowed");
        let lax = Policy { allow_plain_http: true, ..Policy::default() };
        assert!(lax.check("http://127.0.0.1:8910").is_ok());
        assert_eq!(lax.check("https://user:pw@eu.example.com").unwrap_err().reason, "URLHasUserInfo");
        assert!(!lax.check("https://user:pw@eu.example.com").unwrap_err().message.contains("pw"));
        assert_eq!(lax.check("ftp://eu.example.com").unwrap_err().reason, "URLInvalid");
    }

    #[test]
    fn the_allowlist_matches_scheme_host_and_port() {
        let p = Policy {
            allowed_urls: vec!["https://*.branches.example.com".into(), "https://127.0.0.1:*".into()],
            ..Policy::default()
        };
        assert!(p.check("https://eu.branches.example.com/x").is_ok());
        assert!(p.check("https://EU.Branches.Example.com").is_ok());
        assert!(p.check("https://127.0.0.1:8443").is_ok());
        assert_eq!(p.check("https://evil.com").unwrap_err().reason, "URLNotAllowed");
        assert_eq!(p.check("https://eu.branches.example.com.evil.com").unwrap_err().reason, "URLNotAllowed");
        assert_eq!(p.check("https://eu.branches.example.com:8443").unwrap_err().reason, "URLNotAllowed");
        assert!(p.check("https://169.254.169.254").is_err());
    }

    #[test]
    fn insecure_skip_verify_needs_the_config() {
        assert!(Policy::default().check_insecure(true).is_err());
        assert!(Policy::default().check_insecure(false).is_ok());
        assert!(Policy { allow_insecure_skip_verify: true, ..Policy::default() }.check_insecure(true).is_ok());
    }

    #[test]
    fn patterns_are_scheme_host_port_only() {
        assert!(pattern_problem("https://*.example.com").is_none());
        assert!(pattern_problem("*.example.com").is_some());
        assert!(pattern_problem("https://example.com/path").is_some());
        assert!(pattern_problem("https://u@example.com").is_some());
    }
}
