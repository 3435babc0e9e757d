//! Pure, I/O-free code: every decision the controllers make, testable with plain values.

pub mod allowlist;
pub mod bridge_secret;
pub mod duration;
pub mod identifier;
pub mod signing;
