//! How the simulated instance misbehaves: fail, slow down or flap. A pure state machine,
//! so the HTTP layer only asks it what to do with each request.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What API requests get, besides any added latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Mode {
    /// Every request is served normally.
    #[default]
    Healthy,
    /// Every request fails with `status`.
    Fail { status: u16 },
    /// Requests alternate between served and failing with `status`; `fail_next` says
    /// which comes next.
    Flap { status: u16, fail_next: bool },
    /// The next `remaining` requests fail with `status`, then the instance is healthy again.
    FailNext { status: u16, remaining: u32 },
}

/// The instance's behaviour: a mode, latency added to every API request, and
/// optionally a path prefix limiting both to some endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Behaviour {
    #[serde(flatten)]
    pub mode: Mode,
    /// Added before every affected response.
    #[serde(default)]
    pub latency_ms: u64,
    /// Only requests whose path starts with this are affected; all API requests when absent.
    #[serde(default)]
    pub path_prefix: Option<String>,
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub delay: Duration,
    /// Answer with this status instead of serving the request.
    pub fail: Option<u16>,
}

impl Decision {
    const SERVE: Decision = Decision { delay: Duration::ZERO, fail: None };
}

impl Behaviour {
    /// Decides the fate of a request to `path`, advancing flap and fail-next state.
    pub fn decide(&mut self, path: &str) -> Decision {
        if self.path_prefix.as_deref().is_some_and(|prefix| !path.starts_with(prefix)) {
            return Decision::SERVE;
        }
        let fail = match &mut self.mode {
            Mode::Healthy => None,
            Mode::Fail { status } => Some(*status),
            Mode::Flap { status, fail_next } => {
                let fail = *fail_next;
                *fail_next = !fail;
                fail.then_some(*status)
            }
            Mode::FailNext { status, remaining } => {
                let status = *status;
                *remaining = remaining.saturating_sub(1);
                if *remaining == 0 {
                    self.mode = Mode::Healthy;
                }
                Some(status)
            }
        };
        Decision { delay: Duration::from_millis(self.latency_ms), fail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails(b: &mut Behaviour, n: usize) -> Vec<Option<u16>> {
        (0..n).map(|_| b.decide("/api/v1/cross-branch/health").fail).collect()
    }

    #[test]
    fn healthy_serves_everything_without_delay() {
        let mut b = Behaviour::default();
        assert_eq!(b.decide("/api/v1/cross-branch/health"), Decision::SERVE);
    }

    #[test]
    fn flap_alternates_starting_with_the_configured_side() {
        let mut b = Behaviour { mode: Mode::Flap { status: 503, fail_next: false }, ..Default::default() };
        assert_eq!(fails(&mut b, 4), vec![None, Some(503), None, Some(503)]);
        let mut b = Behaviour { mode: Mode::Flap { status: 500, fail_next: true }, ..Default::default() };
        assert_eq!(fails(&mut b, 3), vec![Some(500), None, Some(500)]);
    }

    #[test]
    fn fail_next_fails_exactly_n_requests_then_heals() {
        let mut b = Behaviour { mode: Mode::FailNext { status: 502, remaining: 2 }, ..Default::default() };
        assert_eq!(fails(&mut b, 4), vec![Some(502), Some(502), None, None]);
        assert_eq!(b.mode, Mode::Healthy);
    }

    #[test]
    fn path_prefix_limits_failures_and_latency_to_matching_requests() {
        let mut b = Behaviour {
            mode: Mode::Fail { status: 503 },
            latency_ms: 250,
            path_prefix: Some("/api/v1/cross-branch/health".into()),
        };
        assert_eq!(b.decide("/api/v1/cross-branch/register-branch"), Decision::SERVE);
        assert_eq!(
            b.decide("/api/v1/cross-branch/health"),
            Decision { delay: Duration::from_millis(250), fail: Some(503) }
        );
    }

    #[test]
    fn behaviour_reads_from_flat_json() {
        let b: Behaviour = serde_json::from_str(r#"{"mode":"flap","status":503,"fail_next":true}"#).unwrap();
        assert_eq!(b.mode, Mode::Flap { status: 503, fail_next: true });
        let b: Behaviour = serde_json::from_str(r#"{"mode":"healthy","latency_ms":100}"#).unwrap();
        assert_eq!(b.latency_ms, 100);
    }
}
