//! switchyard's simulators: each external system is its own module, usable in-process
//! from Rust tests and as a subcommand of the `switchyard-sim` binary.

pub mod bridge;
pub mod forge;
pub mod github;
pub mod instance;
pub mod serve;
#[cfg(feature = "testsupport")]
pub mod testsupport;
