//! Laravel's `throttle` middleware: a fixed window per key that starts at the key's first
//! hit and lasts `window`; a rejected request does not count as a hit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The limiter's answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed { limit: u32, remaining: u32 },
    Limited { limit: u32, retry_after: Duration },
}

#[derive(Debug)]
pub struct FixedWindowLimiter {
    limit: u32,
    window: Duration,
    windows: HashMap<String, (Instant, u32)>,
}

impl FixedWindowLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self { limit: limit.max(1), window: window.max(Duration::from_millis(1)), windows: HashMap::new() }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Count one request for `key` at `now`.
    pub fn hit(&mut self, key: &str, now: Instant) -> Decision {
        let entry = self.windows.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            let retry_after = (entry.0 + self.window).saturating_duration_since(now);
            return Decision::Limited { limit: self.limit, retry_after };
        }
        entry.1 += 1;
        Decision::Allowed { limit: self.limit, remaining: self.limit - entry.1 }
    }

    pub fn reset(&mut self) {
        self.windows.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_limit_then_rejects_until_window_ends() {
        let t0 = Instant::now();
        let mut l = FixedWindowLimiter::new(3, Duration::from_secs(60));
        assert_eq!(l.hit("a", t0), Decision::Allowed { limit: 3, remaining: 2 });
        assert_eq!(l.hit("a", t0), Decision::Allowed { limit: 3, remaining: 1 });
        assert_eq!(l.hit("a", t0), Decision::Allowed { limit: 3, remaining: 0 });
        let after_10s = t0 + Duration::from_secs(10);
        assert_eq!(l.hit("a", after_10s), Decision::Limited { limit: 3, retry_after: Duration::from_secs(50) });
        // A rejected request is not a hit: the window still ends at t0 + 60s.
        assert_eq!(l.hit("a", t0 + Duration::from_secs(60)), Decision::Allowed { limit: 3, remaining: 2 });
    }

    #[test]
    fn keys_are_independent() {
        let t0 = Instant::now();
        let mut l = FixedWindowLimiter::new(1, Duration::from_secs(1));
        assert!(matches!(l.hit("a", t0), Decision::Allowed { .. }));
        assert!(matches!(l.hit("a", t0), Decision::Limited { .. }));
        assert!(matches!(l.hit("b", t0), Decision::Allowed { .. }));
    }
}
