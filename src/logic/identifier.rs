//! Instance identifiers (`code` / `code@tag`) and caller patterns (`code@*`):
//! `switchyard_bridge::identifier`, re-exported so the operator's paths stay.

pub use switchyard_bridge::identifier::*;
