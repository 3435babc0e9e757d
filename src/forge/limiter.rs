//! One token bucket per Forge token, shared by every client in the process.
//!
//! Forge counts requests per user in a window anchored at the first request (Laravel's
//! throttle). A GCRA bucket with burst 1 keeps every window of length `per` at or below
//! `requests`, whichever way the server anchors it; the safety margin absorbs jitter.
//! Waiters queue FIFO behind a fair mutex, so 300 concurrent callers do not stampede.

use super::config::{ForgeToken, RateLimit};
use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::time::Instant;

type Gcra = RateLimiter<governor::state::NotKeyed, governor::state::InMemoryState, DefaultClock>;

/// The shared pacing state of one token.
pub struct TokenLimiter {
    rate: RateLimit,
    gcra: Gcra,
    clock: DefaultClock,
    queue: tokio::sync::Mutex<()>,
    paused_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for TokenLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenLimiter").field("rate", &self.rate).finish_non_exhaustive()
    }
}

impl TokenLimiter {
    pub fn new(rate: RateLimit) -> Self {
        let period = rate.period().max(Duration::from_nanos(1));
        let burst = NonZeroU32::new(rate.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)).allow_burst(burst);
        let clock = DefaultClock::default();
        Self { rate, gcra: RateLimiter::direct_with_clock(quota, clock.clone()), clock, queue: tokio::sync::Mutex::new(()), paused_until: Mutex::new(None) }
    }

    pub fn rate(&self) -> RateLimit {
        self.rate
    }

    /// Wait for this caller's turn to send one request.
    pub async fn acquire(&self) {
        let _turn = self.queue.lock().await;
        loop {
            let pause = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(until) = pause
                && until > Instant::now()
            {
                tokio::time::sleep_until(until).await;
                continue;
            }
            match self.gcra.check() {
                Ok(()) => return,
                Err(not_until) => tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await,
            }
        }
    }

    /// Forge said "429, retry after": every caller of this token holds off until then.
    pub fn pause_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut p = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_none_or(|cur| cur < until) {
            *p = Some(until);
        }
    }
}

static REGISTRY: LazyLock<Mutex<HashMap<[u8; 32], Arc<TokenLimiter>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The process-wide limiter of `token`, keyed by the token's SHA-256 (never its text).
/// A different `rate` for the same token replaces the bucket for new clients.
pub fn limiter_for(token: &ForgeToken, rate: RateLimit) -> Arc<TokenLimiter> {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let key = token.digest();
    if let Some(existing) = reg.get(&key)
        && existing.rate == rate
    {
        return existing.clone();
    }
    if reg.contains_key(&key) {
        tracing::warn!(token = %token.fingerprint(), "Forge rate limit changed for a token; new clients get a new bucket");
    }
    let limiter = Arc::new(TokenLimiter::new(rate));
    reg.insert(key, limiter.clone());
    limiter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_token_shares_a_bucket() {
        let rate = RateLimit::new(10, Duration::from_secs(1));
        let a = limiter_for(&ForgeToken::new("limiter-test-a"), rate);
        let b = limiter_for(&ForgeToken::new("limiter-test-a"), rate);
        let c = limiter_for(&ForgeToken::new("limiter-test-c"), rate);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }

    #[tokio::test]
    async fn paces_requests_after_the_burst() {
        let rate = RateLimit { requests: 50, per: Duration::from_secs(1), burst: 1, safety_margin: 0.0 };
        let l = TokenLimiter::new(rate);
        let start = std::time::Instant::now();
        for _ in 0..6 {
            l.acquire().await;
        }
        // 1 immediate + 5 × 20ms.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(95), "{took:?}");
        assert!(took < Duration::from_millis(400), "{took:?}");
    }

    #[tokio::test]
    async fn a_pause_holds_everyone() {
        let l = TokenLimiter::new(RateLimit::new(1000, Duration::from_secs(1)));
        l.pause_for(Duration::from_millis(100));
        let start = std::time::Instant::now();
        l.acquire().await;
        assert!(start.elapsed() >= Duration::from_millis(95));
    }
}
