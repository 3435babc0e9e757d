//! What a target instance's bridge endpoint does with what is mounted into its pod:
//! `switchyard_bridge::endpoint`, re-exported so the operator's paths stay (the mounted
//! layout is documented there). Only the tests that mount allowlists computed from
//! BridgeGrants live here.

pub use switchyard_bridge::endpoint::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::bridge_grant::{BridgeGrantSpec, SecretRotation};
    use crate::logic::allowlist::Protocol;
    use crate::logic::allowlist::{CONFIG_MAP_KEY, effective_allowlist};
    use crate::logic::bridge_secret::{BridgeSecret, SecretKey};
    use crate::logic::identifier::Identifier;
    use crate::logic::signing::{self, Headers, ReplayCache, RequestParts, VerifyError};
    use jiff::Timestamp;
    use std::collections::BTreeMap;
    use std::time::Duration;

    const T0: i64 = 1_700_000_000;
    const PATH: &str = "/api/v1/bridge/orders.sync";

    fn key(fill: char) -> SecretKey {
        SecretKey::from_text(&fill.to_string().repeat(43)).unwrap()
    }

    fn spec(from: &[&str]) -> BridgeGrantSpec {
        BridgeGrantSpec {
            target: "billing@prod".into(),
            from: from.iter().map(|s| s.to_string()).collect(),
            commands: vec!["orders.sync".into()],
            secret: SecretRotation::default(),
            modules: None,
            protocol: Default::default(),
            replay_window: None,
            bridge_path: "/api/v1/bridge".into(),
            allowlist_config_map: None,
            network_policy: None,
        }
    }

    /// Files as a pod sees them: grant `a` lets shop@* in, grant `b` lets crm@prod in.
    fn files(a: &BridgeSecret, b: &BridgeSecret) -> BTreeMap<String, Vec<u8>> {
        let target = Identifier::parse("billing@prod").unwrap();
        let (sa, sb) = (spec(&["shop@*"]), spec(&["crm@prod"]));
        let allowlist = effective_allowlist(&target, [("a", &sa), ("b", &sb)]).allowlist;
        let mut files = BTreeMap::from([(CONFIG_MAP_KEY.to_string(), allowlist.to_json().into_bytes())]);
        for (grant, secret) in [("a", a), ("b", b)] {
            for (k, v) in secret.to_string_data() {
                files.insert(secret_file(grant, &k), v.into_bytes());
            }
        }
        files
    }

    fn load(files: &BTreeMap<String, Vec<u8>>) -> MountedBridge {
        MountedBridge::load(|p| files.get(p).map(Vec::as_slice)).unwrap()
    }

    fn call(mount: &MountedBridge, caller: &str, key: &SecretKey, id: &str) -> Result<Accepted, VerifyError> {
        let caller = Identifier::parse(caller).unwrap();
        let request = RequestParts { method: "POST", path: PATH, body: b"{}" };
        let signed = signing::sign(key, None, &caller, request, T0, id).unwrap();
        mount.verify(request, &Headers::from_pairs(signed.to_pairs()), &mut ReplayCache::default(), T0)
    }

    fn t0() -> Timestamp {
        Timestamp::from_second(T0).unwrap()
    }

    #[test]
    fn each_caller_is_checked_against_its_own_grants_secret() {
        let (a, b) = (BridgeSecret::initial(key('a'), t0()), BridgeSecret::initial(key('b'), t0()));
        let mount = load(&files(&a, &b));
        let accepted = call(&mount, "shop@eu", &key('a'), "1").unwrap();
        assert_eq!((accepted.caller.to_string(), accepted.command.as_str()), ("shop@eu".into(), "orders.sync"));
        assert_eq!(accepted.grant, "a");
        assert!(call(&mount, "crm@prod", &key('b'), "2").is_ok());
        // The secret of another grant proves nothing for this caller.
        assert_eq!(call(&mount, "shop@eu", &key('b'), "3").unwrap_err(), VerifyError::BadSignature);
        assert_eq!(call(&mount, "hr@prod", &key('a'), "4").unwrap_err().kind(), "UnknownCaller");
    }

    #[test]
    fn previous_secret_counts_until_its_not_after() {
        let rotated = BridgeSecret::initial(key('a'), t0()).rotated(key('n'), t0(), Duration::from_secs(10));
        let b = BridgeSecret::initial(key('b'), t0());
        let mount = load(&files(&rotated, &b));
        assert!(call(&mount, "shop@eu", &key('a'), "old").is_ok(), "previous, during the overlap");
        assert!(call(&mount, "shop@eu", &key('n'), "new").is_ok());
        let caller = Identifier::parse("shop@eu").unwrap();
        let at_end = t0().saturating_add(Duration::from_secs(10)).unwrap();
        assert_eq!(mount.keys_for(&caller, Protocol::Signed, at_end).len(), 1);
    }

    #[test]
    fn a_missing_secret_is_reported_and_its_callers_fail_signature_checks() {
        let (a, b) = (BridgeSecret::initial(key('a'), t0()), BridgeSecret::initial(key('b'), t0()));
        let mut files = files(&a, &b);
        files.retain(|path, _| !path.starts_with("secrets/b/"));
        let mount = load(&files);
        assert_eq!(mount.problems.len(), 1);
        assert_eq!(mount.problems[0].grant, "b");
        assert_eq!(call(&mount, "crm@prod", &key('b'), "1").unwrap_err(), VerifyError::BadSignature);
        assert!(call(&mount, "shop@eu", &key('a'), "2").is_ok());
    }

    /// Grant `a` lets shop@* run orders.sync; grant `p` lets only shop@prod run orders.delete.
    fn wildcard_and_exact_grants(a: &BridgeSecret, p: &BridgeSecret) -> MountedBridge {
        let target = Identifier::parse("billing@prod").unwrap();
        let sa = spec(&["shop@*"]);
        let mut sp = spec(&["shop@prod"]);
        sp.commands = vec!["orders.delete".into()];
        let allowlist = effective_allowlist(&target, [("a", &sa), ("p", &sp)]).allowlist;
        let mut files = BTreeMap::from([(CONFIG_MAP_KEY.to_string(), allowlist.to_json().into_bytes())]);
        for (grant, secret) in [("a", a), ("p", p)] {
            for (k, v) in secret.to_string_data() {
                files.insert(secret_file(grant, &k), v.into_bytes());
            }
        }
        load(&files)
    }

    #[test]
    fn attack_a_wildcard_grants_key_claiming_an_exact_caller_gets_only_its_own_grants_commands() {
        let (a, p) = (BridgeSecret::initial(key('a'), t0()), BridgeSecret::initial(key('p'), t0()));
        let mount = wildcard_and_exact_grants(&a, &p);
        let delete = "/api/v1/bridge/orders.delete";
        let request = RequestParts { method: "POST", path: delete, body: b"{}" };
        let claimed = Identifier::parse("shop@prod").unwrap();
        let forged = signing::sign(&key('a'), None, &claimed, request, T0, "x").unwrap();
        let err = mount.verify(request, &Headers::from_pairs(forged.to_pairs()), &mut ReplayCache::default(), T0);
        assert_eq!(err.unwrap_err().kind(), "CommandNotAllowed", "shop@*'s key must not unlock shop@prod's grant");
        let genuine = signing::sign(&key('p'), None, &claimed, request, T0, "y").unwrap();
        let ok = mount.verify(request, &Headers::from_pairs(genuine.to_pairs()), &mut ReplayCache::default(), T0);
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn attack_a_captured_request_replayed_under_another_tag_is_refused() {
        let (a, p) = (BridgeSecret::initial(key('a'), t0()), BridgeSecret::initial(key('p'), t0()));
        let mount = wildcard_and_exact_grants(&a, &p);
        let request = RequestParts { method: "POST", path: PATH, body: b"{}" };
        let eu = Identifier::parse("shop@eu").unwrap();
        let captured = signing::sign(&key('a'), None, &eu, request, T0, "once").unwrap();
        let mut replay = ReplayCache::default();
        assert!(mount.verify(request, &Headers::from_pairs(captured.to_pairs()), &mut replay, T0).is_ok());
        let mut pairs = captured.to_pairs();
        for (name, value) in &mut pairs {
            if *name == signing::HEADER_CALLER {
                *value = "shop@us".into();
            }
        }
        let err = mount.verify(request, &Headers::from_pairs(pairs), &mut replay, T0 + 1).unwrap_err();
        assert_eq!(err.kind(), "BadSignature", "the caller must be covered by the signature");
    }
}
