//! One token bucket per Forge token, shared by every client in the process.
//!
//! Forge counts requests per user in a window anchored at the first request (Laravel's
//! throttle). Requests are paced GCRA-style: after a burst of `burst`, one request per
//! `period` (`per / requests`, plus a safety margin). With burst 1, no window of length `per`
//! ever holds more than `requests`, whichever way the server anchors it.
//!
//! Each caller *reserves* its slot up front and sleeps until it. Unlike a check-then-sleep
//! limiter (governor's GCRA restarts from the time the sleeper woke), a late wake-up does not
//! push every later slot back, so timer granularity does not eat into throughput; the
//! margin covers that lateness on the wire. Reservation order is FIFO, so 300 concurrent
//! callers do not stampede.

use super::config::{ForgeToken, RateLimit};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug)]
struct Schedule {
    /// The earliest slot the next caller may get.
    next_slot: Option<Instant>,
    /// Set by a 429: nobody sends before this.
    paused_until: Option<Instant>,
}

/// The shared pacing state of one token.
#[derive(Debug)]
pub struct TokenLimiter {
    rate: RateLimit,
    period: Duration,
    schedule: Mutex<Schedule>,
}

impl TokenLimiter {
    pub fn new(rate: RateLimit) -> Self {
        Self { rate, period: rate.period(), schedule: Mutex::new(Schedule { next_slot: None, paused_until: None }) }
    }

    pub fn rate(&self) -> RateLimit {
        self.rate
    }

    fn reserve(&self) -> Instant {
        let now = Instant::now();
        let mut s = self.schedule.lock().unwrap_or_else(|e| e.into_inner());
        // Up to `burst` slots may lie in the past (unused credit), never more.
        let credit = self.period * self.rate.burst.saturating_sub(1);
        let earliest = now.checked_sub(credit).unwrap_or(now);
        let mut slot = s.next_slot.map_or(earliest, |n| n.max(earliest));
        if let Some(p) = s.paused_until {
            slot = slot.max(p);
        }
        s.next_slot = Some(slot + self.period);
        slot.max(now)
    }

    fn paused_after(&self, slot: Instant) -> bool {
        let s = self.schedule.lock().unwrap_or_else(|e| e.into_inner());
        s.paused_until.is_some_and(|p| p > slot)
    }

    /// Wait for this caller's turn to send one request.
    pub async fn acquire(&self) {
        loop {
            let slot = self.reserve();
            tokio::time::sleep_until(slot).await;
            // A 429 that arrived while we slept moves us behind the pause.
            if !self.paused_after(slot) {
                return;
            }
        }
    }

    /// Forge said "429, retry after": every caller of this token holds off until then.
    pub fn pause_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut s = self.schedule.lock().unwrap_or_else(|e| e.into_inner());
        if s.paused_until.is_none_or(|cur| cur < until) {
            s.paused_until = Some(until);
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
        assert!(took >= Duration::from_millis(99), "{took:?}");
        assert!(took < Duration::from_millis(400), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_pacing_on_a_fixed_schedule() {
        let rate = RateLimit { requests: 10, per: Duration::from_secs(1), burst: 3, safety_margin: 0.0 };
        let l = TokenLimiter::new(rate);
        let start = Instant::now();
        let mut at = vec![];
        for _ in 0..5 {
            l.acquire().await;
            at.push((Instant::now() - start).as_millis());
        }
        assert_eq!(at, vec![0, 0, 0, 100, 200]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_everyone_including_reserved_slots() {
        let l = Arc::new(TokenLimiter::new(RateLimit {
            requests: 10,
            per: Duration::from_secs(1),
            burst: 1,
            safety_margin: 0.0,
        }));
        let start = Instant::now();
        l.acquire().await;
        // This caller reserves the slot at 100ms, then a 429 pauses the token for 1s.
        let waiter = tokio::spawn({
            let l = l.clone();
            async move {
                l.acquire().await;
                Instant::now()
            }
        });
        tokio::task::yield_now().await;
        l.pause_for(Duration::from_secs(1));
        let sent_at = waiter.await.unwrap() - start;
        assert!(sent_at >= Duration::from_secs(1), "{sent_at:?}");
    }
}
