//! Signing and verification of bridge requests: `switchyard_bridge::signing`,
//! re-exported so the operator's paths stay. Only the tests that need allowlists
//! computed from BridgeGrants live here.

pub use switchyard_bridge::signing::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::bridge_grant::{BridgeGrantSpec, SecretRotation};
    use crate::logic::allowlist::effective_allowlist;
    use crate::logic::bridge_secret::SecretKey;
    use crate::logic::identifier::Identifier;
    use jiff::Timestamp;

    const KEY_TEXT: &str = "k3y-for-known-answer-tests-0123456789abcdef";
    const T0: i64 = 1_700_000_000;
    const PATH: &str = "/api/v1/bridge/orders.sync";
    const BODY: &[u8] = br#"{"order":42}"#;

    fn key() -> SecretKey {
        SecretKey::from_text(KEY_TEXT).unwrap()
    }

    fn caller() -> Identifier {
        Identifier::parse("shop@prod").unwrap()
    }

    fn request(body: &[u8]) -> RequestParts<'_> {
        RequestParts { method: "POST", path: PATH, body }
    }

    fn signed() -> Vec<(String, String)> {
        let headers = sign(&key(), Some(1), &caller(), request(BODY), T0, "req-1").unwrap();
        headers.to_pairs().into_iter().map(|(n, v)| (n.to_string(), v)).collect()
    }

    fn grant(from: &[&str], commands: &[&str]) -> BridgeGrantSpec {
        BridgeGrantSpec {
            target: "crm@prod".into(),
            from: from.iter().map(|s| s.to_string()).collect(),
            commands: commands.iter().map(|s| s.to_string()).collect(),
            secret: SecretRotation::default(),
            modules: None,
            protocol: Default::default(),
            replay_window: None,
            bridge_path: "/api/v1/bridge".into(),
            allowlist_config_map: None,
            network_policy: None,
        }
    }

    #[test]
    fn authorisation_uses_the_allowlist() {
        let target = Identifier::parse("crm@prod").unwrap();
        let spec = grant(&["shop@*"], &["orders.sync"]);
        let allowlist = effective_allowlist(&target, [("g", &spec)]).allowlist;
        let key = key();
        let keys_for = |_: &str| vec![VerificationKey { version: None, key: &key }];
        let mut replay = ReplayCache::default();
        let check = |path: &'static str, headers: &Headers, replay: &mut ReplayCache| {
            let request = RequestParts { method: "POST", path, body: BODY };
            verify_and_authorize(request, headers, &allowlist, keys_for, replay, T0)
        };

        assert!(check(PATH, &Headers::from_pairs(signed()), &mut replay).is_ok());

        let delete = "/api/v1/bridge/orders.delete";
        let h =
            sign(&key, None, &caller(), RequestParts { method: "POST", path: delete, body: BODY }, T0, "d").unwrap();
        let err = check(delete, &Headers::from_pairs(h.to_pairs()), &mut replay).unwrap_err();
        assert_eq!(err.kind(), "CommandNotAllowed");
        assert_eq!(err.http_status(), 403);
        assert!(err.to_string().contains("orders.delete"), "{err}");

        let erp = Identifier::parse("erp@prod").unwrap();
        let h = sign(&key, None, &erp, request(BODY), T0, "e").unwrap();
        let err = check(PATH, &Headers::from_pairs(h.to_pairs()), &mut replay).unwrap_err();
        assert_eq!(err.kind(), "UnknownCaller");
        assert_eq!(err.to_string(), "caller erp@prod is not allowed to call crm@prod");
    }

    #[test]
    fn a_caller_whose_grant_was_withdrawn_is_refused_as_revoked() {
        use crate::logic::allowlist::{REVOCATION_RETENTION, carry_revocations};
        let target = Identifier::parse("crm@prod").unwrap();
        let before = effective_allowlist(&target, [("g", &grant(&["shop@*"], &["orders.sync"]))]).allowlist;
        let mut after = effective_allowlist(&target, std::iter::empty()).allowlist;
        carry_revocations(Some(&before), &mut after, Timestamp::from_second(T0).unwrap(), REVOCATION_RETENTION);
        let key = key();
        let err = verify_and_authorize(
            request(BODY),
            &Headers::from_pairs(signed()),
            &after,
            |_: &str| vec![VerificationKey { version: None, key: &key }],
            &mut ReplayCache::default(),
            T0,
        )
        .unwrap_err();
        assert_eq!(err.kind(), "Revoked");
        assert_eq!(err.http_status(), 403);
        assert!(err.to_string().contains("\"orders.sync\" on crm@prod was revoked"), "{err}");
    }
}
