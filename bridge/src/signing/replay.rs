//! The replay window: how far a request's timestamp may be from now
//! ([`TIMESTAMP_TOLERANCE`]), and the [`ReplayCache`] that remembers each request for
//! that long so it is accepted once.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use super::verify_error::VerifyError;
use crate::identifier::Identifier;

/// How far a request's timestamp may be from the verifier's clock, either way.
pub const TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(300);

/// Default bound of a [`ReplayCache`].
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// Remembers (verified caller, request id) pairs for as long as a request carrying them could
/// still pass the timestamp check, so each signed request is accepted once.
///
/// Entries are kept until the request's own timestamp plus the tolerance and then
/// forgotten: after that a replay is refused as stale anyway.
/// At most `capacity` entries are kept; when full, new requests are refused
/// ([`VerifyError::ReplayCacheFull`]) rather than forgetting entries early. Pure:
/// the time is always passed in.
#[derive(Clone, Debug)]
pub struct ReplayCache {
    capacity: usize,
    tolerance: u64,
    seen: HashSet<(String, String)>,
    by_time: BTreeSet<(i64, String, String)>,
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::new(DEFAULT_REPLAY_CAPACITY)
    }
}

impl ReplayCache {
    /// An empty cache holding at most `capacity` entries, for [`TIMESTAMP_TOLERANCE`].
    pub fn new(capacity: usize) -> Self {
        Self { capacity, tolerance: TIMESTAMP_TOLERANCE.as_secs(), seen: HashSet::new(), by_time: BTreeSet::new() }
    }

    /// Number of remembered requests.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Forgets requests whose timestamp is outside the window at `now`.
    pub fn prune(&mut self, now: i64) {
        while let Some(first) = self.by_time.first() {
            if now <= first.0 {
                break;
            }
            if let Some((_, caller, id)) = self.by_time.pop_first() {
                self.seen.remove(&(caller, id));
            }
        }
    }

    /// Refuses a (verified caller, request id) pair already seen, otherwise remembers
    /// it until the request's timestamp leaves the tolerance window.
    pub fn check_and_insert(
        &mut self,
        caller: &Identifier,
        request_id: &str,
        timestamp: i64,
        now: i64,
    ) -> Result<(), VerifyError> {
        let tolerance = i64::try_from(self.tolerance).unwrap_or(i64::MAX);
        self.remember(caller.to_string(), request_id.to_string(), timestamp.saturating_add(tolerance), now)
    }

    /// Refuses a (scope, id) pair already seen, otherwise remembers it until `forget_after`
    /// (unix seconds, inclusive). The `razy` profile's digests go through here.
    pub fn remember(&mut self, scope: String, id: String, forget_after: i64, now: i64) -> Result<(), VerifyError> {
        self.prune(now);
        let key = (scope, id);
        if self.seen.contains(&key) {
            return Err(VerifyError::Replayed { caller: key.0, request_id: key.1 });
        }
        if self.seen.len() >= self.capacity {
            return Err(VerifyError::ReplayCacheFull { capacity: self.capacity });
        }
        self.by_time.insert((forget_after, key.0.clone(), key.1.clone()));
        self.seen.insert(key);
        Ok(())
    }
}
