//! Pure, I/O-free code: every decision the controllers make, testable with plain values.

pub mod allocation;
pub mod allowlist;
pub mod branch_url;
pub mod bridge_endpoint;
pub mod bridge_grant;
pub mod bridge_secret;
pub mod discovery;
pub mod dns;
pub mod duration;
pub mod gating;
pub mod github_webhook;
pub mod graph;
pub mod graph_render;
pub mod graph_status;
pub mod health;
pub mod identifier;
pub mod organization;
pub mod preview;
pub mod pull_request_actions;
pub mod pull_request_comment;
pub mod pull_request_environment;
pub mod registration;
pub mod signing;
