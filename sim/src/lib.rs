//! switchyard's simulators: each external system is its own module, usable in-process
//! from Rust tests and as a subcommand of the `switchyard-sim` binary.

pub mod forge;
pub mod instance;
mod server;
#[cfg(feature = "testsupport")]
pub mod testsupport;
