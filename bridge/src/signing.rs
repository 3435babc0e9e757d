//! HMAC-SHA256 signing and verification of bridge requests in the `signed` profile,
//! switchyard's hardened form (the default of a BridgeGrant; `crate::razy` is the
//! design's `razy` profile).
//!
//! # Signed request (`v2`)
//!
//! The signature is `hex(HMAC-SHA256(secret, canonical))` where `canonical` is
//!
//! ```text
//! v2\nMETHOD\nPATH\nTIMESTAMP\nREQUEST-ID\nCALLER\nhex(SHA-256(body))
//! ```
//!
//! - `METHOD` upper-cased (`POST`); `PATH` exactly as sent, query string included:
//!   `<bridgePath>/<command>` or `<bridgePath>/<vendor>/<module>/<command>`;
//! - `TIMESTAMP` unix seconds (decimal), `REQUEST-ID` a unique id per request;
//! - `CALLER` the `X-Bridge-Caller` value in canonical `code@tag` form (`shop` → `shop@default`);
//! - hex is lowercase.
//!
//! Headers:
//!
//! | header | value |
//! |---|---|
//! | `X-Bridge-Caller` | the caller, `code@tag` |
//! | `X-Bridge-Timestamp` | `TIMESTAMP` |
//! | `X-Bridge-Request-Id` | `REQUEST-ID`: 1–128 of `A-Z a-z 0-9 . _ ~ : -` |
//! | `X-Bridge-Signature` | `v2=<64 hex digits>` (`v1=`, which did not cover the caller, is refused) |
//! | `X-Bridge-Key-Version` | optional: version of the secret used (a hint only) |
//!
//! # Verification
//!
//! [`verify_and_authorize`] checks, in order: headers present and well-formed; some
//! `signed` grant of the allowlist admits the claimed caller (else `UnknownCaller`, or
//! `Revoked`); timestamp within [`TIMESTAMP_TOLERANCE`] of now (either direction,
//! inclusive); the signature against the still-valid secrets of those grants, in
//! constant time — the grant whose secret matches is the grant the request comes
//! through; the verified (caller, request id) against the [`ReplayCache`]; then that
//! grant, and no other, must allow the path's module and command. The caller is
//! inside the signature, so a `shop@*` grant's secret claiming `shop@prod` signs
//! `shop@prod` and gets `shop@*`'s commands, never those granted to `shop@prod`
//! alone; changing the caller of a captured request breaks its signature. The
//! replay cache is only written after the signature checks out, so unauthenticated
//! traffic cannot fill it. [`verify_request`] is the authentication alone, for
//! tools that hold the keys themselves (`switchyard bridge verify`).

// By concern, each file under signing/: the canonical request, its MACs and `sign`
// (canonical); header names and header sets (headers); verification and
// authorisation (verify); the refusal kinds (verify_error); the timestamp tolerance
// and the replay cache (replay). Every public item is re-exported here, so the paths
// stay `switchyard_bridge::signing::…`.
mod canonical;
mod headers;
mod replay;
mod verify;
mod verify_error;

pub(crate) use self::canonical::mac as mac_of;
pub use self::canonical::{
    MAX_REQUEST_ID_LEN, RequestParts, SignError, body_digest, canonical_string, hmac_hex, is_valid_request_id,
    razy_signature, sign,
};
pub use self::headers::{
    HEADER_CALLER, HEADER_KEY_VERSION, HEADER_RAZY_SIGNATURE, HEADER_REQUEST_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP,
    Headers, SignedHeaders,
};
pub use self::replay::{DEFAULT_REPLAY_CAPACITY, ReplayCache, TIMESTAMP_TOLERANCE};
pub use self::verify::{Authorized, Verified, verify_and_authorize, verify_request};
pub use self::verify_error::VerifyError;
// Defined with the key material it points to; re-exported so this path stays.
pub use crate::secret::VerificationKey;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::*;
    use crate::identifier::Identifier;
    use crate::secret::{BridgeSecret, SecretKey};
    use jiff::Timestamp;

    const KEY_TEXT: &str = "k3y-for-known-answer-tests-0123456789abcdef";
    const OTHER_KEY_TEXT: &str = "another-secret-that-is-long-enough-0123456789";
    const T0: i64 = 1_700_000_000;
    const PATH: &str = "/api/v1/bridge/orders.sync";
    const BODY: &[u8] = br#"{"order":42}"#;

    fn key() -> SecretKey {
        SecretKey::from_text(KEY_TEXT).unwrap()
    }

    fn other_key() -> SecretKey {
        SecretKey::from_text(OTHER_KEY_TEXT).unwrap()
    }

    fn caller() -> Identifier {
        Identifier::parse("shop@prod").unwrap()
    }

    fn request(body: &[u8]) -> RequestParts<'_> {
        RequestParts { method: "POST", path: PATH, body }
    }

    fn signed_with(key: &SecretKey, request_id: &str) -> Vec<(String, String)> {
        let headers = sign(key, Some(1), &caller(), request(BODY), T0, request_id).unwrap();
        headers.to_pairs().into_iter().map(|(n, v)| (n.to_string(), v)).collect()
    }

    fn signed() -> Vec<(String, String)> {
        signed_with(&key(), "req-1")
    }

    fn with(mut pairs: Vec<(String, String)>, name: &str, value: Option<&str>) -> Headers {
        pairs.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if let Some(value) = value {
            pairs.push((name.to_string(), value.to_string()));
        }
        Headers::from_pairs(pairs)
    }

    fn verify_at(headers: &Headers, body: &[u8], now: i64) -> Result<Verified, VerifyError> {
        let key = key();
        let keys = [VerificationKey { version: Some(1), key: &key }];
        verify_request(request(body), headers, &keys, &mut ReplayCache::default(), now)
    }

    #[test]
    fn known_answer_vectors_match_openssl() {
        // printf '{"order":42}' | openssl dgst -sha256
        assert_eq!(body_digest(BODY), "54985dc3c12fada7a1b1db53cf23d3cbd4bcbe64e1cef95071e2073e2ceff4ed");
        // printf 'POST\n/api/v1/bridge/orders.sync\n1700000000\nreq-1\n<digest>' | openssl dgst -sha256 -hmac "$KEY"
        let canonical = canonical_string("post", PATH, T0, "req-1", &caller(), BODY);
        assert_eq!(canonical, format!("v2\nPOST\n{PATH}\n1700000000\nreq-1\nshop@prod\n{}", body_digest(BODY)));
        // printf 'v2\nPOST\n/api/v1/bridge/orders.sync\n1700000000\nreq-1\nshop@prod\n<digest>' | openssl dgst -sha256 -hmac "$KEY"
        assert_eq!(
            hmac_hex(&key(), canonical.as_bytes()),
            "40c727b21387687e520c5d0af6a5fa8b70db09f8bc205de7df4a77a747ffbf49"
        );
        // printf '{"order":42}' | openssl dgst -sha256 -hmac "$KEY"
        assert_eq!(razy_signature(&key(), BODY), "eb8ca6860032da56f136b2ab863d6fc0ecb2e21f0da1b4b77895e6060ba4e910");
    }

    #[test]
    fn signed_headers_carry_the_documented_names_and_values() {
        let pairs = signed();
        let names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "X-Bridge-Caller",
                "X-Bridge-Timestamp",
                "X-Bridge-Request-Id",
                "X-Bridge-Signature",
                "X-Bridge-Key-Version",
            ]
        );
        assert_eq!(pairs[0].1, "shop@prod");
        assert_eq!(pairs[1].1, "1700000000");
        assert_eq!(pairs[3].1, "v2=40c727b21387687e520c5d0af6a5fa8b70db09f8bc205de7df4a77a747ffbf49");
    }

    #[test]
    fn signed_request_verifies() {
        let verified = verify_at(&Headers::from_pairs(signed()), BODY, T0).unwrap();
        assert_eq!(
            verified,
            Verified { caller: caller(), request_id: "req-1".into(), timestamp: T0, key_version: Some(1) }
        );
    }

    #[test]
    fn header_names_are_case_insensitive_and_optional_ones_may_be_absent() {
        let lower: Vec<(String, String)> = signed().into_iter().map(|(n, v)| (n.to_ascii_lowercase(), v)).collect();
        assert!(verify_at(&Headers::from_pairs(lower), BODY, T0).is_ok());
        let minimal = with(signed(), HEADER_KEY_VERSION, None);
        assert!(verify_at(&minimal, BODY, T0).is_ok());
    }

    #[test]
    fn each_missing_header_is_named() {
        for name in [HEADER_CALLER, HEADER_TIMESTAMP, HEADER_REQUEST_ID, HEADER_SIGNATURE] {
            let err = verify_at(&with(signed(), name, None), BODY, T0).unwrap_err();
            assert_eq!(err, VerifyError::MissingHeader(name));
            assert_eq!(err.to_string(), format!("missing header {name}"));
            assert_eq!(err.kind(), "MissingHeader");
        }
    }

    #[test]
    fn malformed_headers_are_refused_before_any_crypto() {
        let sig = "40c727b21387687e520c5d0af6a5fa8b70db09f8bc205de7df4a77a747ffbf49";
        let cases: [(&'static str, String); 11] = [
            (HEADER_CALLER, "shop@*".into()),
            (HEADER_CALLER, "sh.op".into()),
            (HEADER_TIMESTAMP, "-1700000000".into()),
            (HEADER_TIMESTAMP, "17e8".into()),
            (HEADER_TIMESTAMP, "99999999999999999999".into()),
            (HEADER_REQUEST_ID, "has space".into()),
            (HEADER_SIGNATURE, sig.into()),
            (HEADER_SIGNATURE, format!("v1={sig}")),
            (HEADER_SIGNATURE, format!("v2={}", &sig[..62])),
            (HEADER_KEY_VERSION, "one".into()),
            (HEADER_SIGNATURE, format!("v3={sig}")),
        ];
        for (name, value) in cases {
            let err = verify_at(&with(signed(), name, Some(&value)), BODY, T0).unwrap_err();
            assert!(
                matches!(&err, VerifyError::MalformedHeader { name: n, .. } if *n == name),
                "{name}: {value}: {err:?}"
            );
            assert_eq!(err.kind(), "MalformedHeader");
        }
        let mut twice = signed();
        twice.push((HEADER_CALLER.to_ascii_lowercase(), "crm@prod".into()));
        let err = verify_at(&Headers::from_pairs(twice), BODY, T0).unwrap_err();
        assert_eq!(err, VerifyError::MalformedHeader { name: HEADER_CALLER, reason: "sent more than once".into() });
    }

    #[test]
    fn timestamp_tolerance_is_300_seconds_inclusive_both_ways() {
        let headers = Headers::from_pairs(signed());
        assert!(verify_at(&headers, BODY, T0 + 300).is_ok());
        assert!(verify_at(&headers, BODY, T0 - 300).is_ok());
        for now in [T0 + 301, T0 - 301] {
            let err = verify_at(&headers, BODY, now).unwrap_err();
            assert_eq!(err, VerifyError::StaleTimestamp { timestamp: T0, skew_secs: 301, tolerance_secs: 300 });
            assert_eq!(err.kind(), "StaleTimestamp");
        }
    }

    #[test]
    fn any_change_to_a_signed_part_breaks_the_signature() {
        let headers = Headers::from_pairs(signed());
        let key = key();
        let keys = [VerificationKey { version: Some(1), key: &key }];
        let check = |request: RequestParts<'_>, headers: &Headers| {
            verify_request(request, headers, &keys, &mut ReplayCache::default(), T0).unwrap_err()
        };
        assert_eq!(check(request(br#"{"order":43}"#), &headers), VerifyError::BadSignature);
        assert_eq!(check(RequestParts { method: "PUT", path: PATH, body: BODY }, &headers), VerifyError::BadSignature);
        let other_path = RequestParts { method: "POST", path: "/api/v1/bridge/orders.delete", body: BODY };
        assert_eq!(check(other_path, &headers), VerifyError::BadSignature);
        assert_eq!(
            check(request(BODY), &with(signed(), HEADER_TIMESTAMP, Some("1700000001"))),
            VerifyError::BadSignature
        );
        assert_eq!(check(request(BODY), &with(signed(), HEADER_REQUEST_ID, Some("req-2"))), VerifyError::BadSignature);
        // The caller is signed: another tag, or the same code spelled canonically differently, breaks it.
        assert_eq!(check(request(BODY), &with(signed(), HEADER_CALLER, Some("shop@eu"))), VerifyError::BadSignature);
        assert_eq!(check(request(BODY), &with(signed(), HEADER_CALLER, Some("shop"))), VerifyError::BadSignature);
        // Signed with a secret the verifier does not hold.
        let foreign = Headers::from_pairs(signed_with(&other_key(), "req-1"));
        assert_eq!(check(request(BODY), &foreign), VerifyError::BadSignature);
        assert_eq!(VerifyError::BadSignature.kind(), "BadSignature");
    }

    #[test]
    fn a_request_is_accepted_once() {
        let headers = Headers::from_pairs(signed());
        let key = key();
        let keys = [VerificationKey { version: Some(1), key: &key }];
        let mut replay = ReplayCache::default();
        assert!(verify_request(request(BODY), &headers, &keys, &mut replay, T0).is_ok());
        let err = verify_request(request(BODY), &headers, &keys, &mut replay, T0 + 10).unwrap_err();
        assert_eq!(err, VerifyError::Replayed { caller: "shop@prod".into(), request_id: "req-1".into() });
        assert_eq!(err.kind(), "Replayed");
        // Once out of the window, the replay is refused as stale instead.
        let err = verify_request(request(BODY), &headers, &keys, &mut replay, T0 + 301).unwrap_err();
        assert_eq!(err.kind(), "StaleTimestamp");
    }

    #[test]
    fn failed_verifications_do_not_consume_the_request_id() {
        let key = key();
        let keys = [VerificationKey { version: Some(1), key: &key }];
        let mut replay = ReplayCache::default();
        let headers = Headers::from_pairs(signed());
        let tampered = verify_request(request(b"tampered"), &headers, &keys, &mut replay, T0);
        assert_eq!(tampered.unwrap_err(), VerifyError::BadSignature);
        assert!(replay.is_empty());
        assert!(verify_request(request(BODY), &headers, &keys, &mut replay, T0).is_ok());
    }

    #[test]
    fn replay_cache_forgets_after_the_window_and_keys_by_caller() {
        let mut cache = ReplayCache::new(10);
        let shop = caller();
        let crm = Identifier::parse("crm@prod").unwrap();
        cache.check_and_insert(&shop, "r", T0, T0).unwrap();
        cache.check_and_insert(&crm, "r", T0, T0).unwrap();
        assert!(cache.check_and_insert(&shop, "r", T0, T0 + 300).is_err(), "still inside the window");
        cache.prune(T0 + 301);
        assert!(cache.is_empty());
        // Requests dated in the future are remembered until they are stale too.
        cache.check_and_insert(&shop, "f", T0 + 300, T0).unwrap();
        cache.prune(T0 + 600);
        assert_eq!(cache.len(), 1);
        cache.prune(T0 + 601);
        assert!(cache.is_empty());
    }

    #[test]
    fn full_replay_cache_refuses_instead_of_forgetting_early() {
        let mut cache = ReplayCache::new(2);
        let shop = caller();
        cache.check_and_insert(&shop, "a", T0, T0).unwrap();
        cache.check_and_insert(&shop, "b", T0, T0).unwrap();
        let err = cache.check_and_insert(&shop, "c", T0, T0).unwrap_err();
        assert_eq!(err, VerifyError::ReplayCacheFull { capacity: 2 });
        assert_eq!(cache.check_and_insert(&shop, "a", T0, T0).unwrap_err().kind(), "Replayed");
        cache.check_and_insert(&shop, "c", T0 + 301, T0 + 301).unwrap();
    }

    #[test]
    fn both_secrets_verify_during_the_overlap_and_only_the_new_one_after() {
        let t0: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2025-01-31T00:00:00Z".parse().unwrap();
        let old = BridgeSecret::initial(key(), t0);
        let rotated = old.rotated(other_key(), t1, Duration::from_secs(3600));
        let now = t1.as_second() + 1800;
        let sign_with = |key: &SecretKey, id: &str| {
            let h = sign(key, None, &caller(), request(BODY), now, id).unwrap();
            Headers::from_pairs(h.to_pairs())
        };
        let at = |now_secs: i64| Timestamp::from_second(now_secs).unwrap();
        let mut replay = ReplayCache::default();
        let keys = rotated.valid_keys(at(now));
        let by_new = verify_request(request(BODY), &sign_with(&other_key(), "n1"), &keys, &mut replay, now).unwrap();
        assert_eq!(by_new.key_version, Some(2));
        let by_old = verify_request(request(BODY), &sign_with(&key(), "o1"), &keys, &mut replay, now).unwrap();
        assert_eq!(by_old.key_version, Some(1));

        let after = t1.as_second() + 3600;
        let keys = rotated.valid_keys(at(after));
        let old_signed = sign(&key(), None, &caller(), request(BODY), after, "o2").unwrap();
        let err = verify_request(request(BODY), &Headers::from_pairs(old_signed.to_pairs()), &keys, &mut replay, after);
        assert_eq!(err.unwrap_err(), VerifyError::BadSignature);
        let new_signed = sign(&other_key(), None, &caller(), request(BODY), after, "n2").unwrap();
        assert!(
            verify_request(request(BODY), &Headers::from_pairs(new_signed.to_pairs()), &keys, &mut replay, after)
                .is_ok()
        );
    }

    #[test]
    fn a_wrong_key_version_hint_still_verifies() {
        let signed = sign(&key(), Some(2), &caller(), request(BODY), T0, "r").unwrap();
        let (k1, k2) = (key(), other_key());
        let keys = [VerificationKey { version: Some(2), key: &k2 }, VerificationKey { version: Some(1), key: &k1 }];
        let verified = verify_request(
            request(BODY),
            &Headers::from_pairs(signed.to_pairs()),
            &keys,
            &mut ReplayCache::default(),
            T0,
        );
        assert_eq!(verified.unwrap().key_version, Some(1));
    }

    #[test]
    fn signing_refuses_input_that_would_break_the_canonical_string() {
        let sign_req =
            |method, path, id| sign(&key(), None, &caller(), RequestParts { method, path, body: b"" }, T0, id);
        assert_eq!(sign_req("PO ST", "/p", "r"), Err(SignError::Method("PO ST".into())));
        assert_eq!(sign_req("POST", "/p\nx", "r"), Err(SignError::Path("/p\nx".into())));
        assert_eq!(sign_req("POST", "p", "r"), Err(SignError::Path("p".into())));
        assert_eq!(sign_req("POST", "/p", "r\n1"), Err(SignError::RequestId("r\n1".into())));
        assert_eq!(sign_req("POST", "/p", ""), Err(SignError::RequestId(String::new())));
    }

    #[test]
    fn no_error_reveals_the_secret() {
        let key = key();
        let keys = [VerificationKey { version: Some(1), key: &key }];
        let mut errors: Vec<VerifyError> =
            vec![VerifyError::MissingHeader(HEADER_SIGNATURE), VerifyError::ReplayCacheFull { capacity: 1 }];
        for (name, value) in [
            (HEADER_SIGNATURE, Some("v2=zz")),
            (HEADER_TIMESTAMP, Some("1700000999")),
            (HEADER_REQUEST_ID, Some("other")),
            (HEADER_CALLER, None),
        ] {
            let headers = with(signed(), name, value);
            errors.push(verify_request(request(BODY), &headers, &keys, &mut ReplayCache::default(), T0).unwrap_err());
        }
        let mut replay = ReplayCache::default();
        let headers = Headers::from_pairs(signed());
        verify_request(request(BODY), &headers, &keys, &mut replay, T0).unwrap();
        errors.push(verify_request(request(BODY), &headers, &keys, &mut replay, T0).unwrap_err());
        let kinds: BTreeSet<&str> = errors.iter().map(VerifyError::kind).collect();
        assert!(kinds.len() >= 6, "{kinds:?}");
        for err in &errors {
            for printed in [err.to_string(), format!("{err:?}")] {
                assert!(!printed.contains(KEY_TEXT), "{printed}");
            }
        }
        let sign_err = sign(&key, None, &caller(), RequestParts { method: "", path: "/", body: b"" }, T0, "r");
        assert!(!format!("{sign_err:?}").contains(KEY_TEXT));
        assert!(!format!("{keys:?}").contains(KEY_TEXT));
    }
}
