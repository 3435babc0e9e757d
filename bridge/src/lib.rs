//! The bridge's wire contract between switchyard and a target app, free of any
//! Kubernetes type so that the operator, the simulators and a target app's own
//! endpoint share one implementation:
//!
//! - [`identifier`]: instance identifiers (`code@tag`) and caller patterns (`code@*`);
//! - [`allowlist`]: the allowlist document the operator publishes and the target reads;
//! - [`secret`]: a grant's shared secret, as laid out in its Secret's data;
//! - [`signing`]: the `signed` profile: HMAC signing and verification of bridge requests;
//! - [`razy`]: the `razy` profile, the cross-distributor design's wire;
//! - [`endpoint`]: what a target's bridge endpoint does with its mounted allowlist and secrets.
//!
//! What depends on the BridgeGrant CRD (computing the allowlist from grants, naming
//! and rotating Secrets) stays in the operator crate, `switchyard::logic`.

pub mod allowlist;
pub mod endpoint;
pub mod identifier;
pub mod razy;
pub mod secret;
pub mod signing;
