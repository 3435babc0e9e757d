//! Pure, I/O-free code: every decision the controllers make, testable with plain values.

pub mod allocation;
pub mod duration;
