//! Shared setup for the Forge client tests: an in-process simulator and a client for it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use switchyard::forge::ensure::{EnsureOptions, PollOptions};
use switchyard::forge::{ForgeClientConfig, ForgeToken, HttpForgeClient, RateLimit, RetryPolicy};
use switchyard_sim::forge::{ForgeSim, ForgeSimConfig, ForgeSimHandle, TokenSpec};

pub const ASYNC_DELAY: Duration = Duration::from_millis(50);

/// A token no other test in this process uses (the limiter registry is process-wide).
pub fn unique_token(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("tok-{name}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// A simulator with generous limits so contract tests are never throttled.
pub async fn sim_with(tokens: Vec<TokenSpec>, tweak: impl FnOnce(&mut ForgeSimConfig)) -> ForgeSimHandle {
    let mut config = ForgeSimConfig {
        tokens,
        async_delay: ASYNC_DELAY,
        rate_limit: 1_000_000,
        rate_window: Duration::from_secs(60),
        ..Default::default()
    };
    tweak(&mut config);
    ForgeSim::start(config).await.expect("simulator starts")
}

pub fn client_with(base_url: &str, token: &str, tweak: impl FnOnce(&mut ForgeClientConfig)) -> HttpForgeClient {
    let mut config = ForgeClientConfig::new(base_url, "demo", ForgeToken::new(token));
    config.rate_limit = RateLimit::new(1_000_000, Duration::from_secs(60));
    config.retry =
        RetryPolicy { max_retries: 3, min_delay: Duration::from_millis(10), max_delay: Duration::from_millis(100) };
    config.request_timeout = Duration::from_secs(5);
    tweak(&mut config);
    HttpForgeClient::new(config).expect("client builds")
}

/// Simulator + client sharing one fresh token.
pub async fn setup(name: &str) -> (ForgeSimHandle, HttpForgeClient, String) {
    let token = unique_token(name);
    let sim = sim_with(vec![TokenSpec::all_scopes(token.clone())], |_| {}).await;
    let api = client_with(&sim.base_url(), &token, |_| {});
    (sim, api, token)
}

pub fn fast_poll() -> PollOptions {
    PollOptions {
        timeout: Duration::from_secs(10),
        min_interval: Duration::from_millis(10),
        max_interval: Duration::from_millis(100),
        tolerate_not_found: false,
    }
}

pub fn fast_ensure() -> EnsureOptions {
    EnsureOptions { attempts: 10, min_backoff: Duration::from_millis(10), max_backoff: Duration::from_millis(200) }
}
