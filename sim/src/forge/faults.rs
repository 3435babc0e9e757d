//! Fault injection: tests describe what should go wrong, for which requests, how often.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer with this status and a Laravel-style body (or `body`). 429 adds rate-limit headers.
    Status {
        status: u16,
        #[serde(default)]
        body: Option<Value>,
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Answer with a raw body (e.g. to provoke decode errors).
    RawBody {
        status: u16,
        body: String,
        #[serde(default)]
        content_type: Option<String>,
    },
    /// Delay the request, then handle it normally.
    Latency { ms: u64 },
    /// Never answer in time: sleep `ms` (default one hour), then 504.
    Hang {
        #[serde(default)]
        ms: Option<u64>,
    },
    /// The next matching Let's Encrypt request ends in `status: failed`.
    CertificateFailure,
    /// The next matching deployment ends in `status: failed`.
    DeploymentFailure,
}

/// One fault as a test posts it to `POST /_sim/faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSpec {
    /// Only requests with this method (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Glob (`*` = any run of characters) on the route template
    /// (`/api/orgs/{org}/servers/{server}/sites`) or the concrete path.
    #[serde(default)]
    pub route: Option<String>,
    pub action: FaultAction,
    /// Apply after the request was processed (the state changed, the client sees the fault).
    #[serde(default)]
    pub after_processing: bool,
    /// Chance per matching request (default 1.0).
    #[serde(default)]
    pub probability: Option<f64>,
    /// Fire at most this many times (default unlimited).
    #[serde(default)]
    pub times: Option<u32>,
}

impl FaultSpec {
    pub fn new(action: FaultAction) -> Self {
        Self { method: None, route: None, action, after_processing: false, probability: None, times: None }
    }
    pub fn method(mut self, m: &str) -> Self {
        self.method = Some(m.to_string());
        self
    }
    pub fn route(mut self, r: &str) -> Self {
        self.route = Some(r.to_string());
        self
    }
    pub fn after_processing(mut self) -> Self {
        self.after_processing = true;
        self
    }
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = Some(p);
        self
    }
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    fn matches(&self, method: &str, route: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.route.as_deref().is_none_or(|pat| glob(pat, route) || glob(pat, path))
    }

    fn is_outcome_fault(&self) -> bool {
        matches!(self.action, FaultAction::CertificateFailure | FaultAction::DeploymentFailure)
    }
}

/// Which domain-level failure a handler asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeFault {
    Certificate,
    Deployment,
}

/// `*` matches any run of characters (including `/`).
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// What the middleware does for one request.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    pub latency_ms: u64,
    pub before: Option<FaultAction>,
    pub after: Option<FaultAction>,
}

#[derive(Debug, Default)]
pub struct FaultSet {
    faults: Vec<(FaultSpec, u64)>,
}

impl FaultSet {
    pub fn add(&mut self, spec: FaultSpec) {
        self.faults.push((spec, 0));
    }

    pub fn clear(&mut self) {
        self.faults.clear();
    }

    pub fn list(&self) -> Vec<Value> {
        self.faults.iter().map(|(s, fired)| serde_json::json!({"spec": s, "fired": fired})).collect()
    }

    fn fire(&mut self, idx: usize, roll: &mut dyn FnMut() -> f64) -> bool {
        let (spec, fired) = &mut self.faults[idx];
        if spec.times == Some(0) || roll() >= spec.probability.unwrap_or(1.0) {
            return false;
        }
        *fired += 1;
        if let Some(t) = spec.times.as_mut() {
            *t -= 1;
        }
        true
    }

    fn prune(&mut self) {
        self.faults.retain(|(s, _)| s.times != Some(0));
    }

    /// Decide the transport-level faults for one request. `roll` yields uniform [0,1).
    pub fn plan(&mut self, method: &str, route: &str, path: &str, roll: &mut dyn FnMut() -> f64) -> Plan {
        let mut plan = Plan::default();
        // Faults before processing are decided first: one that fires means the request is
        // never processed, so no after-processing fault may be used up on it.
        let order: Vec<usize> = (0..self.faults.len())
            .filter(|&i| !self.faults[i].0.after_processing)
            .chain((0..self.faults.len()).filter(|&i| self.faults[i].0.after_processing))
            .collect();
        for i in order {
            let spec = &self.faults[i].0;
            if spec.is_outcome_fault() || !spec.matches(method, route, path) {
                continue;
            }
            let after = spec.after_processing;
            let is_latency = matches!(spec.action, FaultAction::Latency { .. });
            let slot_taken = if after { plan.after.is_some() } else { plan.before.is_some() };
            if !is_latency && (slot_taken || plan.before.is_some()) {
                continue;
            }
            if !self.fire(i, roll) {
                continue;
            }
            match self.faults[i].0.action.clone() {
                FaultAction::Latency { ms } => plan.latency_ms += ms,
                action if after => plan.after = Some(action),
                action => plan.before = Some(action),
            }
        }
        self.prune();
        plan
    }

    /// Consume a domain-level failure (certificate or deployment) for this request, if any.
    pub fn take_outcome(
        &mut self,
        kind: OutcomeFault,
        method: &str,
        route: &str,
        path: &str,
        roll: &mut dyn FnMut() -> f64,
    ) -> bool {
        for i in 0..self.faults.len() {
            let spec = &self.faults[i].0;
            let wanted = match kind {
                OutcomeFault::Certificate => matches!(spec.action, FaultAction::CertificateFailure),
                OutcomeFault::Deployment => matches!(spec.action, FaultAction::DeploymentFailure),
            };
            if wanted && spec.matches(method, route, path) && self.fire(i, roll) {
                self.prune();
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn always() -> impl FnMut() -> f64 {
        || 0.0
    }

    #[test]
    fn glob_matches_templates_and_paths() {
        assert!(glob("*/sites", "/api/orgs/{org}/servers/{server}/sites"));
        assert!(glob("/api/orgs/*/database/*", "/api/orgs/demo/servers/1/database/schemas"));
        assert!(!glob("*/sites", "/api/orgs/demo/sites/4"));
        assert!(glob("exact", "exact"));
    }

    #[test]
    fn next_n_faults_expire() {
        let mut set = FaultSet::default();
        set.add(
            FaultSpec::new(FaultAction::Status { status: 500, body: None, retry_after: None }).method("POST").times(2),
        );
        let mut roll = always();
        assert!(set.plan("GET", "/x", "/x", &mut roll).before.is_none());
        assert!(set.plan("POST", "/x", "/x", &mut roll).before.is_some());
        assert!(set.plan("post", "/x", "/x", &mut roll).before.is_some());
        assert!(set.plan("POST", "/x", "/x", &mut roll).before.is_none());
        assert!(set.list().is_empty());
    }

    #[test]
    fn a_fault_before_processing_never_uses_up_one_after_it() {
        let mut set = FaultSet::default();
        set.add(FaultSpec::new(FaultAction::Hang { ms: None }).after_processing().times(1));
        set.add(FaultSpec::new(FaultAction::Status { status: 503, body: None, retry_after: None }).times(1));
        let first = set.plan("POST", "/x", "/x", &mut || 0.0);
        assert!(first.before.is_some() && first.after.is_none());
        let second = set.plan("POST", "/x", "/x", &mut || 0.0);
        assert_eq!(second.after, Some(FaultAction::Hang { ms: None }), "the after fault is still there");
    }

    #[test]
    fn probability_is_rolled_per_request() {
        let mut set = FaultSet::default();
        set.add(FaultSpec::new(FaultAction::Hang { ms: None }).probability(0.2).after_processing());
        assert!(set.plan("GET", "/x", "/x", &mut || 0.5).after.is_none());
        assert_eq!(set.plan("GET", "/x", "/x", &mut || 0.1).after, Some(FaultAction::Hang { ms: None }));
    }

    #[test]
    fn latency_adds_up_and_outcome_faults_are_separate() {
        let mut set = FaultSet::default();
        set.add(FaultSpec::new(FaultAction::Latency { ms: 5 }));
        set.add(FaultSpec::new(FaultAction::Latency { ms: 7 }));
        set.add(FaultSpec::new(FaultAction::CertificateFailure).times(1));
        let mut roll = always();
        let plan = set.plan("GET", "/x", "/x", &mut roll);
        assert_eq!(plan.latency_ms, 12);
        assert!(plan.before.is_none());
        assert!(!set.take_outcome(OutcomeFault::Deployment, "POST", "/x", "/x", &mut roll));
        assert!(set.take_outcome(OutcomeFault::Certificate, "POST", "/x", "/x", &mut roll));
        assert!(!set.take_outcome(OutcomeFault::Certificate, "POST", "/x", "/x", &mut roll));
    }
}
