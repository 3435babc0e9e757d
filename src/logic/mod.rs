//! Pure, I/O-free code: every decision the controllers make, testable with plain values.

pub mod allocation;
pub mod allowlist;
pub mod bridge_secret;
pub mod discovery;
pub mod dns;
pub mod duration;
pub mod graph;
pub mod graph_render;
pub mod health;
pub mod identifier;
pub mod registration;
pub mod signing;
