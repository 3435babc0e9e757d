//! switchyard: a Kubernetes operator that converges preview environments, shared
//! resources, repository dependency graphs, remote instances and bridge grants.

pub mod api;
pub mod backends;
pub mod config;
pub mod controller;
pub mod forge;
pub mod github;
pub mod leader;
pub mod logic;
pub mod metrics;
pub mod runtime;
pub mod server;
pub mod telemetry;
