//! Laravel Forge client: the [`ForgeApi`] trait, its HTTP implementation, the shared
//! per-token rate limiter, retries, and create-or-adopt helpers.
//!
//! Contract: `forge-api.md` (organization-scoped API, JSON:API, cursor pagination,
//! 60 requests/minute per user).

pub mod api;
pub mod config;
pub mod ensure;
pub mod error;
pub mod http;
pub mod jsonapi;
pub mod limiter;
pub mod models;

pub use api::{ForgeApi, ForgeResult};
pub use config::{ForgeClientConfig, ForgeToken, Password, RateLimit, RetryPolicy};
pub use error::{ForgeError, TransportKind};
pub use http::HttpForgeClient;
pub use models::*;
