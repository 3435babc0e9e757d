//! The BridgeGrant controller's decisions that need no I/O: which spec can be acted
//! on, what the owned objects are called and look like, when to look again.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::networking::v1::{
    NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::bridge_grant::{BridgeGrantSpec, BridgeNetworkPolicy};
use crate::logic::allowlist::{self, ANY_COMMAND};
use crate::logic::bridge_secret::RotationPolicy;
use crate::logic::identifier::{CallerPattern, Identifier};

/// A spec the controller can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidGrant {
    /// The target, parsed.
    pub target: Identifier,
    /// The rotation settings, parsed.
    pub policy: RotationPolicy,
    /// Name of the allowlist ConfigMap this grant publishes into.
    pub config_map: String,
}

/// Why a spec cannot be acted on (the CRD's schema and CEL rules normally prevent all of these).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidGrant {
    /// Stable CamelCase reason for the `Stalled` condition and the Warning Event.
    pub reason: &'static str,
    /// What to change, for humans.
    pub message: String,
}

fn invalid(reason: &'static str, message: String) -> InvalidGrant {
    InvalidGrant { reason, message }
}

/// Checks what the schema cannot: identifiers, commands, durations and their order.
pub fn validate(spec: &BridgeGrantSpec) -> Result<ValidGrant, InvalidGrant> {
    let target = Identifier::parse(&spec.target).map_err(|e| invalid("InvalidTarget", format!("spec.target: {e}")))?;
    for caller in &spec.from {
        CallerPattern::parse(caller).map_err(|e| invalid("InvalidCaller", format!("spec.from: {e}")))?;
    }
    if let Some(bad) = spec.commands.iter().find(|c| *c != ANY_COMMAND && !allowlist::is_valid_command(c)) {
        return Err(invalid("InvalidCommand", format!("spec.commands: {bad:?} is not a command name or '*'")));
    }
    if let Some(bad) = spec.modules.iter().flatten().find(|m| !allowlist::is_valid_module(m)) {
        return Err(invalid("InvalidModule", format!("spec.modules: {bad:?} is not vendor/module")));
    }
    allowlist::replay_window_seconds(spec)
        .map_err(|e| invalid("InvalidReplayWindow", format!("spec.replayWindow: {e}")))?;
    let policy =
        RotationPolicy::from_spec(&spec.secret).map_err(|e| invalid("InvalidRotation", format!("spec.secret: {e}")))?;
    if policy.interval.is_zero() || policy.overlap >= policy.interval {
        return Err(invalid(
            "InvalidRotation",
            "spec.secret: rotationInterval must be positive and longer than overlap".into(),
        ));
    }
    let config_map = spec.allowlist_config_map.clone().unwrap_or_else(|| allowlist::default_config_map_name(&target));
    Ok(ValidGrant { target, policy, config_map })
}

/// Name of the NetworkPolicy of grant `grant`: `<grant>-bridge`, shortened with a
/// hash when that would exceed the 253-character name limit.
pub fn network_policy_name(grant: &str) -> String {
    crate::logic::dns::derived_name(grant, "-bridge")
}

/// The NetworkPolicy spec: the callers' pods may reach the target's pods on the bridge port (TCP).
///
/// Like every NetworkPolicy, it also makes the target's pods refuse any other ingress
/// that no policy allows, once one policy selects them.
pub fn network_policy_spec(np: &BridgeNetworkPolicy) -> NetworkPolicySpec {
    let selector = |labels: &BTreeMap<String, String>| LabelSelector {
        match_labels: Some(labels.clone()),
        match_expressions: None,
    };
    NetworkPolicySpec {
        pod_selector: Some(selector(&np.target_pod_labels)),
        policy_types: Some(vec!["Ingress".into()]),
        ingress: Some(vec![NetworkPolicyIngressRule {
            from: Some(vec![NetworkPolicyPeer {
                pod_selector: Some(selector(&np.caller_pod_labels)),
                ..Default::default()
            }]),
            ports: Some(vec![NetworkPolicyPort {
                port: Some(IntOrString::Int(np.port)),
                protocol: Some("TCP".into()),
                end_port: None,
            }]),
        }]),
        egress: None,
    }
}

/// How long to wait before looking at a grant again: until its Secret next needs a
/// change (rounded up to whole seconds, at least one), and never longer than `max`.
pub fn requeue_after(next_change: Timestamp, now: Timestamp, max: Duration) -> Duration {
    let left = next_change.duration_since(now).as_secs_f64().max(0.0).ceil() as u64;
    Duration::from_secs(left.max(1)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::bridge_grant::{BridgeProtocol, SecretRotation};

    fn spec() -> BridgeGrantSpec {
        BridgeGrantSpec {
            target: "billing@prod".into(),
            from: vec!["shop@*".into(), "crm@prod".into()],
            commands: vec!["invoices.create".into()],
            modules: None,
            protocol: Default::default(),
            replay_window: None,
            secret: SecretRotation { rotation_interval: "1m".into(), overlap: "20s".into() },
            bridge_path: "/api/v1/bridge".into(),
            allowlist_config_map: None,
            network_policy: None,
        }
    }

    #[test]
    fn a_valid_spec_names_its_target_policy_and_config_map() {
        let valid = validate(&spec()).unwrap();
        assert_eq!(valid.target.to_string(), "billing@prod");
        assert_eq!(valid.policy.interval, Duration::from_secs(60));
        assert_eq!(valid.policy.overlap, Duration::from_secs(20));
        assert!(valid.config_map.starts_with("bridge-allowlist-billing-prod-"), "{}", valid.config_map);
        let mut named = spec();
        named.allowlist_config_map = Some("billing-bridge".into());
        assert_eq!(validate(&named).unwrap().config_map, "billing-bridge");
    }

    #[test]
    fn each_invalid_part_has_its_own_reason() {
        type Break = fn(&mut BridgeGrantSpec);
        let cases: [(Break, &str); 7] = [
            (|s| s.target = "billing@*".into(), "InvalidTarget"),
            (|s| s.from.push("Sh.op".into()), "InvalidCaller"),
            (|s| s.commands.push("1nvoices".into()), "InvalidCommand"),
            (|s| s.modules = Some(vec!["acme".into()]), "InvalidModule"),
            (|s| (s.protocol, s.replay_window) = (BridgeProtocol::Razy, Some("soon".into())), "InvalidReplayWindow"),
            (|s| s.secret.overlap = "2m".into(), "InvalidRotation"),
            (|s| s.secret.rotation_interval = "soon".into(), "InvalidRotation"),
        ];
        for (break_it, reason) in cases {
            let mut s = spec();
            break_it(&mut s);
            let err = validate(&s).unwrap_err();
            assert_eq!(err.reason, reason, "{err}");
            assert!(err.message.starts_with("spec."), "{err}");
        }
    }

    #[test]
    fn network_policy_lets_callers_reach_the_bridge_port_only() {
        let np = BridgeNetworkPolicy {
            target_pod_labels: BTreeMap::from([("app".into(), "billing".into())]),
            caller_pod_labels: BTreeMap::from([("bridge-caller".into(), "true".into())]),
            port: 8443,
        };
        let spec = serde_json::to_value(network_policy_spec(&np)).unwrap();
        assert_eq!(
            spec,
            serde_json::json!({
                "podSelector": {"matchLabels": {"app": "billing"}},
                "policyTypes": ["Ingress"],
                "ingress": [{
                    "from": [{"podSelector": {"matchLabels": {"bridge-caller": "true"}}}],
                    "ports": [{"port": 8443, "protocol": "TCP"}]
                }]
            })
        );
        assert_eq!(network_policy_name("billing-from-shop"), "billing-from-shop-bridge");
        assert_eq!(network_policy_name(&"g".repeat(253)).len(), 253);
    }

    #[test]
    fn requeue_waits_for_the_next_change_within_bounds() {
        let now: Timestamp = "2025-01-01T00:00:00.2Z".parse().unwrap();
        let max = Duration::from_secs(600);
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(requeue_after(at("2025-01-01T00:01:00Z"), now, max), Duration::from_secs(60));
        assert_eq!(requeue_after(at("2025-01-01T00:00:00Z"), now, max), Duration::from_secs(1), "overdue");
        assert_eq!(requeue_after(at("2025-02-01T00:00:00Z"), now, max), max);
    }
}
