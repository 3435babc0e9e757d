//! The controller kit: what every controller does the same way.
//!
//! Every reconcile has one shape (see `docs/architecture.md`):
//! load (I/O: the object, what it references) → decide (pure, in `crate::logic`)
//! → act (I/O: one small step per remote or child object) → status (one kstatus
//! summary through [`crate::api::conditions::Conditioned::kstatus`]).
//! Errors are one [`Error`] type; [`runner::error_policy`] turns each failure into
//! a Warning Event named after it, and [`runner::reconcile`] times every reconcile,
//! failures included.

pub mod error;
pub mod events;
pub mod k8s;
pub mod runner;
pub mod status;

pub use error::{Error, forge_found, forge_gone};
pub use events::{Failures, publish};
pub use runner::{Kit, Reconciler, error_policy, finalized, reconcile, run};
pub use status::{apply_status, stall};
