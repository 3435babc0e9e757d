//! DNS labels (RFC 1123), the grammar of pool names, domain labels and most
//! Kubernetes object names.

/// Whether `s` is a DNS label: 1-63 lowercase letters, digits or `-`, not starting
/// or ending with `-`.
pub fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `s` made into a DNS label: lowercased, other characters replaced by `-`, cut to 63.
pub fn to_label(s: &str) -> String {
    let label: String =
        s.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).take(63).collect();
    label.trim_matches('-').to_string()
}

/// Longest name of most Kubernetes objects (a DNS subdomain).
pub const MAX_OBJECT_NAME: usize = 253;

/// The object name `<base><suffix>` for an object derived from `base`, shortened
/// with a hash of `base` when it would exceed [`MAX_OBJECT_NAME`], so distinct bases
/// keep distinct names.
pub fn derived_name(base: &str, suffix: &str) -> String {
    if base.len() + suffix.len() <= MAX_OBJECT_NAME {
        return format!("{base}{suffix}");
    }
    let digest = <sha2::Sha256 as sha2::Digest>::digest(base.as_bytes());
    let head: String = base.chars().take(MAX_OBJECT_NAME - suffix.len() - 9).collect();
    format!("{}-{}{suffix}", head.trim_end_matches(['-', '.']), &hex::encode(digest)[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert!(is_label("pr-42") && !is_label("-a") && !is_label("A") && !is_label(&"a".repeat(64)));
        assert_eq!(to_label("Feature/Checkout_2"), "feature-checkout-2");
        assert!(is_label(&to_label(&"x".repeat(100))));
    }

    #[test]
    fn derived_names_fit_and_stay_distinct() {
        assert_eq!(derived_name("orders", "-bridge"), "orders-bridge");
        let long = derived_name(&"g".repeat(253), "-bridge");
        assert_eq!(long.len(), 253);
        assert_ne!(long, derived_name(&format!("{}h", "g".repeat(252)), "-bridge"));
    }
}
